//! Spill files: temporary files of whole-page blocks, written and read one page at a time.
//!
//! A [`SpillDir`] makes files without a name in a directory (`O_TMPFILE`), or, where the
//! file system cannot, uniquely named files it unlinks right after creating them: a [`SpillFile`] is an open descriptor of a file with no name, whose space the
//! system frees when the descriptor is closed (the file dropped) — on success, on error, on
//! close, and when the process is killed or crashes, which leaves nothing behind in the
//! directory. [`RunWriter`]
//! writes records into blocks through one page; [`RunReader`] reads them back through one
//! page, checking each block, and reports a truncated or corrupted file as
//! [`Error::Corrupted`]. A full disk is [`Error::DiskFull`]; any other failure [`Error::Io`].

use std::fs::{File, OpenOptions};
use std::os::fd::AsRawFd;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use super::block::{self, BLOCK_HEADER, BlockBuilder};
use super::read_ahead::{Feed, ReadAhead};
use super::write_behind::WriteBehind;
use crate::error::{Error, Result};
use crate::segment::Segment;

/// Maps an operating system error on `path` to the library's error: `ENOSPC` and `EDQUOT`
/// are [`Error::DiskFull`], anything else [`Error::Io`].
pub fn io_error(what: &str, path: &Path, e: &std::io::Error) -> Error {
    let text = format!("{what} {}: {e}", path.display());
    match e.raw_os_error() {
        Some(libc::ENOSPC) | Some(libc::EDQUOT) => Error::DiskFull(text),
        _ => Error::Io(text),
    }
}

/// A write failure to inject, for fault tests: once `after_bytes` bytes have been written to
/// the files of a [`SpillDir`], every further write fails with the OS error `errno` (such as
/// `ENOSPC`), as a full disk would.
#[derive(Debug)]
pub struct WriteFault {
    after_bytes: u64,
    errno: i32,
    written: AtomicU64,
}

impl WriteFault {
    /// A fault that strikes after `after_bytes` bytes with the OS error `errno`.
    pub fn new(after_bytes: u64, errno: i32) -> Self {
        WriteFault {
            after_bytes,
            errno,
            written: AtomicU64::new(0),
        }
    }

    fn check(&self, len: usize) -> std::io::Result<()> {
        let before = self.written.fetch_add(len as u64, Ordering::Relaxed);
        if before + len as u64 > self.after_bytes {
            return Err(std::io::Error::from_raw_os_error(self.errno));
        }
        Ok(())
    }
}

/// Where spill files go, and how they are named.
#[derive(Debug)]
pub struct SpillDir {
    dir: PathBuf,
    next: AtomicU64,
    fault: Option<Arc<WriteFault>>,
    direct: bool,
}

/// Blocks of a run the kernel is asked to read ahead of the merge.
const READ_AHEAD_BLOCKS: usize = 2;

/// The alignment direct I/O needs of buffers, offsets and lengths.
pub const DIRECT_IO_ALIGN: usize = 4096;

impl SpillDir {
    /// Spill files in `dir`, which must exist and be a directory.
    pub fn new(dir: impl Into<PathBuf>, fault: Option<Arc<WriteFault>>) -> Result<Self> {
        let dir = dir.into();
        let meta =
            std::fs::metadata(&dir).map_err(|e| io_error("temporary directory", &dir, &e))?;
        if !meta.is_dir() {
            return Err(Error::invalid(format!(
                "temporary directory {} is not a directory",
                dir.display()
            )));
        }
        Ok(SpillDir {
            dir,
            next: AtomicU64::new(0),
            fault,
            direct: false,
        })
    }

    /// Asks for direct I/O (`O_DIRECT`): spill files then bypass the page cache, so that
    /// spilling neither fills it nor pays for its copies. Only for callers whose pages are all
    /// aligned to [`DIRECT_IO_ALIGN`] with sizes a multiple of it. Where the file system
    /// refuses direct I/O, files fall back to buffered I/O.
    pub fn with_direct_io(mut self, direct: bool) -> Self {
        self.direct = direct;
        self
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.dir
    }

    /// Creates a new, empty spill file: a file without a name (`O_TMPFILE`) where the file
    /// system makes them, else one with a name no other file has, removed at once. Either way
    /// nothing is left in the directory once the file is dropped or the process dies.
    pub fn create(&self) -> Result<SpillFile> {
        match self.create_unnamed() {
            Some(spill) => Ok(spill),
            None => self.create_named(),
        }
    }

    /// A file that never has a name, so no crash at any moment leaves it behind; `None` where
    /// the file system (or kernel) has no `O_TMPFILE`, or refuses it for any other reason,
    /// which the named path then reports.
    fn create_unnamed(&self) -> Option<SpillFile> {
        let open = |flags: i32| {
            OpenOptions::new()
                .read(true)
                .write(true)
                .custom_flags(libc::O_TMPFILE | flags)
                .open(&self.dir)
        };
        let mut direct = self.direct;
        let mut opened = open(if direct { libc::O_DIRECT } else { 0 });
        if direct && opened.is_err() {
            direct = false; // perhaps the file system has no direct I/O
            opened = open(0);
        }
        let file = opened.ok()?;
        let mut spill = SpillFile {
            path: self.dir.join("(unnamed spill file)"),
            file,
            len: 0,
            fault: self.fault.clone(),
            direct,
            buffered_reader: None,
            linked: false,
        };
        if direct {
            // The second descriptor can only come through the first one's /proc entry; a
            // direct file without it reads through its own descriptor.
            let through_fd = format!("/proc/self/fd/{}", spill.file.as_raw_fd());
            spill.buffered_reader = File::open(through_fd).ok().map(advise_sequential);
        }
        Some(spill)
    }

    /// A file with a name no other file has, whose name is removed as soon as it is open.
    fn create_named(&self) -> Result<SpillFile> {
        static PROCESS_SEQ: AtomicU64 = AtomicU64::new(0);
        loop {
            let name = format!(
                "memseg-spill-{}-{}-{}.run",
                std::process::id(),
                PROCESS_SEQ.fetch_add(1, Ordering::Relaxed),
                self.next.fetch_add(1, Ordering::Relaxed)
            );
            let path = self.dir.join(name);
            let open = |flags: i32| {
                OpenOptions::new()
                    .read(true)
                    .write(true)
                    .create_new(true)
                    .custom_flags(flags)
                    .open(&path)
            };
            let mut direct = self.direct;
            let mut opened = open(if direct { libc::O_DIRECT } else { 0 });
            if direct && matches!(&opened, Err(e) if e.raw_os_error() == Some(libc::EINVAL)) {
                direct = false; // the file system has no direct I/O
                opened = open(0);
            }
            match opened {
                Ok(file) => return SpillFile::unlinked(path, file, direct, self.fault.clone()),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(io_error("creating spill file", &path, &e)),
            }
        }
    }
}

/// `reader` with the advice that it is read from start to end.
fn advise_sequential(reader: File) -> File {
    // SAFETY: an advice call on a descriptor we own; it touches no memory.
    let _ = unsafe { libc::posix_fadvise(reader.as_raw_fd(), 0, 0, libc::POSIX_FADV_SEQUENTIAL) };
    reader
}

/// A temporary file, unlinked as soon as it is created, whose space is freed when it is
/// dropped.
#[derive(Debug)]
pub struct SpillFile {
    path: PathBuf,
    file: File,
    len: u64,
    fault: Option<Arc<WriteFault>>,
    direct: bool,
    /// For a direct file, a second descriptor, opened before the name went, for reading it
    /// back through the page cache, whose read-ahead keeps the merge's many sequential readers
    /// busy without read threads.
    buffered_reader: Option<File>,
    /// Whether the name is still there (its unlinking failed), to be removed on drop.
    linked: bool,
}

impl SpillFile {
    /// Takes a newly created `file` at `path` and removes its name. Where the name cannot be
    /// removed, the file keeps it until it is dropped.
    fn unlinked(
        path: PathBuf,
        file: File,
        direct: bool,
        fault: Option<Arc<WriteFault>>,
    ) -> Result<SpillFile> {
        let mut spill = SpillFile {
            path,
            file,
            len: 0,
            fault,
            direct,
            buffered_reader: None,
            linked: true,
        };
        if direct {
            let reader = File::open(&spill.path)
                .map_err(|e| io_error("opening spill file to read", &spill.path, &e))?;
            spill.buffered_reader = Some(advise_sequential(reader));
        }
        spill.linked = std::fs::remove_file(&spill.path).is_err();
        Ok(spill)
    }

    /// The name the file was created under, for messages: it is removed at once, and no longer
    /// names the file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// A path that opens the file itself while it is open, through its descriptor (Linux's
    /// `/proc/self/fd`), for tests that damage it.
    #[cfg(test)]
    pub(crate) fn descriptor_path(&self) -> PathBuf {
        PathBuf::from(format!("/proc/self/fd/{}", self.file.as_raw_fd()))
    }

    /// Bytes written so far.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether nothing has been written.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Whether the file bypasses the page cache.
    pub fn is_direct(&self) -> bool {
        self.direct
    }

    /// Turns direct I/O off for this file, after the file system refused a direct write.
    fn go_buffered(&mut self) -> std::io::Result<()> {
        let fd = self.file.as_raw_fd();
        // SAFETY: fcntl on a descriptor this file owns; F_GETFL/F_SETFL touch no memory.
        unsafe {
            let flags = libc::fcntl(fd, libc::F_GETFL);
            if flags < 0 || libc::fcntl(fd, libc::F_SETFL, flags & !libc::O_DIRECT) < 0 {
                return Err(std::io::Error::last_os_error());
            }
        }
        self.direct = false;
        Ok(())
    }

    /// Appends one whole page.
    pub fn write_page(&mut self, page: &[u8]) -> Result<()> {
        self.write_pages(&[page])
    }

    /// Appends whole pages, one after the other, with as few system calls as it takes.
    pub fn write_pages(&mut self, pages: &[&[u8]]) -> Result<()> {
        let total: usize = pages.iter().map(|p| p.len()).sum();
        let mut result = match &self.fault {
            Some(fault) => fault.check(total),
            None => Ok(()),
        }
        .and_then(|()| write_all_vectored_at(&self.file, pages, self.len));
        if self.direct && matches!(&result, Err(e) if e.raw_os_error() == Some(libc::EINVAL)) {
            // The file system takes O_DIRECT at open but not this write (its block size is
            // larger than the page's alignment): write through the page cache instead.
            result = self
                .go_buffered()
                .and_then(|()| write_all_vectored_at(&self.file, pages, self.len));
        }
        result.map_err(|e| io_error("writing spill file", &self.path, &e))?;
        self.len += total as u64;
        Ok(())
    }

    /// Reads the block at `offset` into `page` and checks it (see [`block::verify`]).
    pub(crate) fn read_block(
        &self,
        offset: u64,
        page: &mut [u8],
        direct: bool,
    ) -> Result<block::BlockInfo> {
        self.read_page(offset, page, direct)?;
        let name = BlockName(&self.path, offset / page.len() as u64);
        block::verify(page, &name)
    }

    /// Reads the consecutive blocks at `offset` into `pages` (direct I/O where the file has
    /// it), with one system call when they are all there, and checks each; returns each
    /// block's result. After a failed or short read, each block is read on its own, so that
    /// each gets its own error.
    pub(crate) fn read_blocks(
        &self,
        offset: u64,
        pages: &mut [Segment],
    ) -> Vec<Result<block::BlockInfo>> {
        let size = pages.first().map_or(1, Segment::size) as u64;
        let whole = pages.len() > 1 && read_all_vectored_at(&self.file, pages, offset).is_ok();
        pages
            .iter_mut()
            .enumerate()
            .map(|(i, page)| {
                let at = offset + i as u64 * size;
                if whole {
                    block::verify(page.as_mut_slice(), &BlockName(&self.path, at / size))
                } else {
                    self.read_block(at, page.as_mut_slice(), true)
                }
            })
            .collect()
    }

    /// Reads the page at `offset` into `page`; a file too short for it was truncated. A direct
    /// file is read with direct I/O when `direct` says so (a reader that reads ahead on its
    /// own), through the page cache with read-ahead advice otherwise.
    pub(crate) fn read_page(&self, offset: u64, page: &mut [u8], direct: bool) -> Result<()> {
        let truncated = || {
            Error::Corrupted(format!(
                "spill file {} is truncated: the block at byte {offset} is incomplete",
                self.path.display()
            ))
        };
        let file = match &self.buffered_reader {
            Some(reader) if !direct => reader,
            _ => &self.file,
        };
        if self.direct && !direct {
            // Ask the kernel to fetch the next blocks while this one is merged: the merge
            // reads many runs a block at a time, too little for its own read-ahead to keep up.
            let ahead = (page.len() * READ_AHEAD_BLOCKS) as libc::off_t;
            let next = (offset + page.len() as u64) as libc::off_t;
            // SAFETY: an advice call on a descriptor we own; it touches no memory.
            let _ = unsafe {
                libc::posix_fadvise(file.as_raw_fd(), next, ahead, libc::POSIX_FADV_WILLNEED)
            };
        }
        let mut done = 0;
        while done < page.len() {
            match file.read_at(&mut page[done..], offset + done as u64) {
                Ok(0) => return Err(truncated()),
                Ok(n) => done += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => {
                    // A direct read past a shortened end can fail instead of coming up short.
                    let len = self.file.metadata().map(|m| m.len()).unwrap_or(u64::MAX);
                    if len < offset + page.len() as u64 {
                        return Err(truncated());
                    }
                    return Err(io_error("reading spill file", &self.path, &e));
                }
            }
        }
        Ok(())
    }
}

/// Writes all of `bufs`, one after the other, at `offset` of `file` (`pwritev`, again after a
/// short write).
fn write_all_vectored_at(file: &File, bufs: &[&[u8]], offset: u64) -> std::io::Result<()> {
    let regions: Vec<(*mut u8, usize)> = bufs
        .iter()
        .map(|b| (b.as_ptr().cast_mut(), b.len()))
        .collect();
    // SAFETY: the regions are the slices of `bufs`, live for the call; pwritev only reads them.
    unsafe { all_vectored_at(file, &regions, offset, libc::pwritev) }
}

/// Reads `pages`, one after the other, from `offset` of `file` (`preadv`, again after a short
/// read); a file that ends first is an error.
fn read_all_vectored_at(file: &File, pages: &mut [Segment], offset: u64) -> std::io::Result<()> {
    let regions: Vec<(*mut u8, usize)> = pages
        .iter_mut()
        .map(|p| (p.as_mut_ptr(), p.size()))
        .collect();
    // SAFETY: the regions are the pages, borrowed mutably for the call.
    unsafe { all_vectored_at(file, &regions, offset, libc::preadv) }
}

/// Moves all of `regions` (pointer, length), one after the other, at `offset` of `file` with
/// `op` (`preadv` or `pwritev`), again after a short transfer.
///
/// # Safety
/// Every region must be valid for `op` (readable for `pwritev`, writable for `preadv`) and
/// not otherwise accessed during the call.
unsafe fn all_vectored_at(
    file: &File,
    regions: &[(*mut u8, usize)],
    offset: u64,
    op: unsafe extern "C" fn(libc::c_int, *const libc::iovec, libc::c_int, libc::off_t) -> isize,
) -> std::io::Result<()> {
    let (mut regions, mut skip, mut offset) = (regions, 0usize, offset);
    while let Some(&(first, first_len)) = regions.first() {
        if skip == first_len {
            regions = &regions[1..];
            skip = 0;
            continue;
        }
        let iov: Vec<libc::iovec> = std::iter::once((first.wrapping_add(skip), first_len - skip))
            .chain(regions[1..].iter().copied())
            .take(64)
            .map(|(base, len)| libc::iovec {
                iov_base: base.cast(),
                iov_len: len,
            })
            .collect();
        // SAFETY: the caller vouches for the regions; the descriptor is `file`'s own.
        let n = unsafe {
            op(
                file.as_raw_fd(),
                iov.as_ptr(),
                iov.len() as libc::c_int,
                offset as libc::off_t,
            )
        };
        if n < 0 {
            let e = std::io::Error::last_os_error();
            if e.kind() == std::io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        let mut n = n as usize;
        offset += n as u64;
        while n > 0 {
            let left = regions[0].1 - skip;
            if n < left {
                skip += n;
                break;
            }
            n -= left;
            regions = &regions[1..];
            skip = 0;
        }
    }
    Ok(())
}

impl Drop for SpillFile {
    fn drop(&mut self) {
        if self.linked {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// A sorted run on disk: its file and what was written to it.
#[derive(Debug)]
pub struct Run {
    file: Arc<SpillFile>,
    page_size: usize,
    blocks: u64,
    records: u64,
}

impl Run {
    /// Number of records.
    pub fn records(&self) -> u64 {
        self.records
    }

    /// Number of blocks (pages) in the file.
    pub fn blocks(&self) -> u64 {
        self.blocks
    }

    /// The name the run's file was created under (removed at once), for messages.
    pub fn path(&self) -> &Path {
        self.file.path()
    }

    /// Bytes on disk.
    pub fn bytes(&self) -> u64 {
        self.blocks * self.page_size as u64
    }
}

/// Writes records into a new run, block by block, through the pages it is given: with one, it
/// writes each block when it is full and then fills the page again; with more, a thread
/// writes full blocks behind it while it fills the next page.
pub struct RunWriter {
    sink: Sink,
    page: Segment,
    block: BlockBuilder,
    blocks: u64,
    records: u64,
}

/// Where a run writer's full blocks go.
enum Sink {
    Now(SpillFile),
    Behind(WriteBehind),
}

impl RunWriter {
    /// A writer of `file` through `pages` (at least one, all of the block size). Dropping the
    /// writer before [`finish`](Self::finish), as on an error, drops its pages and its file.
    pub fn new(file: SpillFile, pages: Vec<Segment>) -> Result<Self> {
        let mut pages = pages;
        let page = pages
            .pop()
            .ok_or_else(|| Error::invalid("a run writer needs a page"))?;
        if let Some(p) = pages.iter().find(|p| p.size() != page.size()) {
            return Err(Error::invalid(format!(
                "write pages of {} and {} bytes given; blocks have one size",
                page.size(),
                p.size()
            )));
        }
        let sink = if pages.is_empty() {
            Sink::Now(file)
        } else {
            Sink::Behind(WriteBehind::start(file, pages)?)
        };
        Ok(RunWriter {
            sink,
            page,
            block: BlockBuilder::new(),
            blocks: 0,
            records: 0,
        })
    }

    /// Appends a record; writes the block when it is full. A record that fits a block goes
    /// whole into one; a longer one spans blocks (see [`push_parts`](Self::push_parts)).
    #[inline]
    pub fn push(&mut self, record: &[u8]) -> Result<()> {
        if self.block.push(self.page.as_mut_slice(), record) {
            self.records += 1;
            return Ok(());
        }
        if record.len() > block::max_record_len(self.page.size()) {
            return self.push_parts(record.len(), [record]);
        }
        self.flush()?;
        let pushed = self.block.push(self.page.as_mut_slice(), record);
        debug_assert!(
            pushed,
            "a record no longer than max_record_len fits an empty block"
        );
        self.records += 1;
        Ok(())
    }

    /// Appends a record of `len` bytes given as the consecutive `parts` (which must add up to
    /// `len`), starting in the current block and going on into as many blocks as it needs.
    pub fn push_parts<'r>(
        &mut self,
        len: usize,
        parts: impl IntoIterator<Item = &'r [u8]>,
    ) -> Result<()> {
        let len32 = u32::try_from(len)
            .map_err(|_| Error::invalid(format!("record of {len} bytes exceeds u32::MAX")))?;
        if !self.block.start(self.page.as_mut_slice(), len32) {
            self.flush()?;
            let started = self.block.start(self.page.as_mut_slice(), len32);
            debug_assert!(started, "a length fits an empty block");
        }
        let mut continuing = false;
        let mut written = 0;
        for part in parts {
            let mut rest = part;
            while !rest.is_empty() {
                let n = self
                    .block
                    .append(self.page.as_mut_slice(), rest, continuing);
                rest = &rest[n..];
                written += n;
                if !rest.is_empty() {
                    self.flush()?;
                    continuing = true;
                }
            }
        }
        debug_assert_eq!(written, len, "the parts add up to the length");
        self.records += 1;
        Ok(())
    }

    fn flush(&mut self) -> Result<()> {
        self.block.seal(self.page.as_mut_slice());
        match &mut self.sink {
            Sink::Now(file) => file.write_page(self.page.as_slice())?,
            Sink::Behind(behind) => {
                let next = behind.free_page()?;
                behind.submit(std::mem::replace(&mut self.page, next))?;
            }
        }
        self.blocks += 1;
        Ok(())
    }

    /// Writes the last block and returns the run, and the pages in any case.
    pub fn finish(mut self) -> (Result<Run>, Vec<Segment>) {
        let flushed = if self.block.is_empty() {
            Ok(())
        } else {
            self.flush()
        };
        let page_size = self.page.size();
        let (file, mut pages) = match self.sink {
            Sink::Now(file) => (Ok(file), Vec::new()),
            Sink::Behind(behind) => behind.finish(),
        };
        pages.push(self.page);
        let run = flushed.and(file).map(|file| Run {
            page_size,
            file: Arc::new(file),
            blocks: self.blocks,
            records: self.records,
        });
        (run, pages)
    }
}

/// Reads a run back, block by block, through pages it owns: one, read when its block is
/// needed, or several, whose blocks a [`ReadAhead`] thread reads ahead of the merge. A record
/// within one block is a slice of its page; one that spans blocks is put together in a scratch
/// buffer of the reader's (as long as the longest such record). Either is valid until the next
/// call.
pub struct RunReader {
    run: Run,
    page: Segment,
    feed: Option<Feed>,
    /// The next block to lend a page for, with read-ahead.
    next_request: u64,
    block: u64,
    pos: usize,
    payload_end: usize,
    left_in_block: u32,
    records_read: u64,
    current: (usize, usize),
    /// Whether the current record is in `scratch` rather than in the page.
    in_scratch: bool,
    scratch: Vec<u8>,
}

struct BlockName<'a>(&'a Path, u64);

impl std::fmt::Display for BlockName<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "spill file {}, block {}", self.0.display(), self.1)
    }
}

impl RunReader {
    /// A reader of `run` through `page`, which must have the run's block size.
    pub fn new(run: Run, page: Segment) -> Result<Self> {
        Self::build(run, page, None)
    }

    /// A reader of `run` through `pages` (at least one, each of the run's block size), whose
    /// blocks `read_ahead` reads ahead into all but the one being read (with direct I/O where
    /// the file has it); with one page, it reads as [`new`](Self::new) does.
    pub fn with_read_ahead(run: Run, pages: Vec<Segment>, read_ahead: &ReadAhead) -> Result<Self> {
        let mut pages = pages;
        let Some(page) = pages.pop() else {
            return Err(Error::invalid("a run reader needs a page"));
        };
        if pages.is_empty() {
            return Self::build(run, page, None);
        }
        if let Some(p) = pages.iter().find(|p| p.size() != run.page_size) {
            return Err(Error::invalid(format!(
                "read page of {} bytes for a run of {}-byte blocks",
                p.size(),
                run.page_size
            )));
        }
        let mut feed = Feed::new(read_ahead, pages.len().div_ceil(2));
        for p in pages {
            feed.give_back(p);
        }
        let mut reader = Self::build(run, page, Some(feed))?;
        reader.request_pending();
        Ok(reader)
    }

    fn build(run: Run, page: Segment, feed: Option<Feed>) -> Result<Self> {
        if page.size() != run.page_size {
            return Err(Error::invalid(format!(
                "read page of {} bytes for a run of {}-byte blocks",
                page.size(),
                run.page_size
            )));
        }
        Ok(RunReader {
            run,
            page,
            feed,
            next_request: 0,
            block: 0,
            pos: 0,
            payload_end: 0,
            left_in_block: 0,
            records_read: 0,
            current: (0, 0),
            in_scratch: false,
            scratch: Vec::new(),
        })
    }

    /// Moves to the next record; `false` at the end of the run. A block that is missing,
    /// truncated or fails its checksum is [`Error::Corrupted`].
    pub fn advance(&mut self) -> Result<bool> {
        while self.left_in_block == 0 {
            if self.block == self.run.blocks {
                if self.records_read != self.run.records {
                    return Err(Error::Corrupted(format!(
                        "spill file {}: {} records read, {} written",
                        self.run.path().display(),
                        self.records_read,
                        self.run.records
                    )));
                }
                return Ok(false);
            }
            let continued = self.next_block()?;
            if continued != 0 {
                return Err(Error::Corrupted(format!(
                    "{}: {continued} bytes continue a record that no block started",
                    BlockName(self.run.file.path(), self.block - 1)
                )));
            }
        }
        let name = BlockName(self.run.file.path(), self.block - 1);
        let (start, len) =
            block::record_header(self.page.as_slice(), self.pos, self.payload_end, &name)?;
        self.left_in_block -= 1;
        self.records_read += 1;
        if len <= self.payload_end - start {
            self.current = (start, start + len);
            self.in_scratch = false;
            self.pos = start + len;
            return Ok(true);
        }
        if self.left_in_block != 0 {
            return Err(Error::Corrupted(format!(
                "{name}: record of {len} bytes at {} runs past the payload",
                self.pos
            )));
        }
        self.gather(start, len)?;
        Ok(true)
    }

    /// Reads the next block into the page, checks it, and returns how many bytes at its
    /// payload's start continue a record of the block before.
    fn next_block(&mut self) -> Result<usize> {
        if self.block == self.run.blocks {
            return Err(Error::Corrupted(format!(
                "spill file {}: the last record goes on past the last block",
                self.run.path().display()
            )));
        }
        let info = match &mut self.feed {
            None => {
                let offset = self.block * self.run.page_size as u64;
                self.run
                    .file
                    .read_block(offset, self.page.as_mut_slice(), false)?
            }
            Some(feed) => {
                // Blocks come back in the order asked for: this one was asked for first.
                let (page, read) = feed.next()?;
                let done = std::mem::replace(&mut self.page, page);
                feed.give_back(done);
                if feed.wants_request() {
                    self.request_pending();
                }
                read?
            }
        };
        self.left_in_block = info.count;
        self.payload_end = info.payload_end;
        self.pos = BLOCK_HEADER + info.continued;
        self.block += 1;
        Ok(info.continued)
    }

    /// Lends the pages given back to the read-ahead thread, for the next blocks not yet asked
    /// for (in one request: one read).
    fn request_pending(&mut self) {
        if let Some(feed) = &mut self.feed {
            let left = self.run.blocks - self.next_request;
            let offset = self.next_request * self.run.page_size as u64;
            self.next_request += feed.request(&self.run.file, offset, left);
        }
    }

    /// Puts together in the scratch buffer a record of `len` bytes that starts at `start` of
    /// the page and goes on into the next blocks.
    #[cold]
    fn gather(&mut self, start: usize, len: usize) -> Result<()> {
        self.scratch.clear();
        self.scratch.reserve_exact(len);
        self.scratch
            .extend_from_slice(&self.page.as_slice()[start..self.payload_end]);
        while self.scratch.len() < len {
            let continued = self.next_block()?;
            let wanted = (len - self.scratch.len()).min(self.run.page_size - BLOCK_HEADER);
            if continued != wanted {
                return Err(Error::Corrupted(format!(
                    "{}: {continued} bytes continue a record that needs {wanted} here",
                    BlockName(self.run.file.path(), self.block - 1)
                )));
            }
            self.scratch
                .extend_from_slice(&self.page.as_slice()[BLOCK_HEADER..BLOCK_HEADER + continued]);
        }
        self.current = (0, len);
        self.in_scratch = true;
        Ok(())
    }

    /// The record the last successful [`advance`](Self::advance) moved to.
    #[inline]
    pub fn current(&self) -> &[u8] {
        if self.in_scratch {
            &self.scratch
        } else {
            &self.page.as_slice()[self.current.0..self.current.1]
        }
    }

    /// Gives the read pages back (waiting for those being read ahead); the run's file is
    /// removed once no read of it is pending.
    pub fn into_pages(self) -> Vec<Segment> {
        let mut pages = self.feed.map(Feed::into_pages).unwrap_or_default();
        pages.push(self.page);
        pages
    }
}

#[cfg(all(test, not(miri)))]
mod tests {
    use super::*;

    fn dir() -> tempfile::TempDir {
        tempfile::tempdir().unwrap()
    }

    impl Run {
        fn descriptor_path(&self) -> PathBuf {
            self.file.descriptor_path()
        }
    }

    /// Whether `fd_path` (a `/proc/self/fd` entry) is still a spill file in the directory of
    /// `name` (the file's name at creation, or its directory's placeholder for an unnamed
    /// file); each test's directory holds its own files alone.
    fn still_open(fd_path: &Path, name: &Path) -> bool {
        let dir = name
            .parent()
            .expect("a spill file's name is in its directory");
        std::fs::read_link(fd_path).is_ok_and(|target| target.starts_with(dir))
    }

    fn heap_pages(n: usize, size: usize) -> Vec<Segment> {
        (0..n)
            .map(|_| Segment::allocate_heap(size).unwrap())
            .collect()
    }

    fn write_run(spill: &SpillDir, page_size: usize, records: &[Vec<u8>]) -> Run {
        write_run_through(spill, heap_pages(1, page_size), records)
    }

    fn write_run_through(spill: &SpillDir, pages: Vec<Segment>, records: &[Vec<u8>]) -> Run {
        let n = pages.len();
        let mut w = RunWriter::new(spill.create().unwrap(), pages).unwrap();
        for r in records {
            w.push(r).unwrap();
        }
        let (run, pages) = w.finish();
        assert_eq!(pages.len(), n, "every page back");
        run.unwrap()
    }

    fn read_all(run: Run, page_size: usize) -> Result<Vec<Vec<u8>>> {
        let mut r = RunReader::new(run, Segment::allocate_heap(page_size).unwrap())?;
        let mut out = Vec::new();
        while r.advance()? {
            out.push(r.current().to_vec());
        }
        Ok(out)
    }

    #[test]
    fn a_named_spill_file_loses_its_name_at_once_and_works() {
        // The path for file systems without O_TMPFILE, which the directories of these tests
        // have, so it is taken here by hand.
        let d = dir();
        let spill = SpillDir::new(d.path(), None).unwrap();
        let mut file = spill.create_named().unwrap();
        let name = file.path().to_path_buf();
        assert!(
            name.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("memseg-spill-")
        );
        assert!(!name.exists(), "unlinked at once");
        assert_eq!(std::fs::read_dir(d.path()).unwrap().count(), 0);
        file.write_page(&[7u8; 512]).unwrap();
        let mut back = [0u8; 512];
        file.read_page(0, &mut back, false).unwrap();
        assert_eq!((file.len(), back), (512, [7u8; 512]));
        let path = file.descriptor_path();
        assert!(still_open(&path, &name));
        drop(file);
        assert!(!still_open(&path, &name), "closed on drop");
    }

    #[test]
    fn runs_round_trip_and_their_files_go_away() {
        let d = dir();
        let spill = SpillDir::new(d.path(), None).unwrap();
        let records: Vec<Vec<u8>> = (0..500u32)
            .map(|i| vec![i as u8; (i % 37) as usize])
            .collect();
        let run = write_run(&spill, 256, &records);
        assert_eq!(run.records(), 500);
        assert!(run.blocks() > 10);
        let (name, path) = (run.path().to_path_buf(), run.descriptor_path());
        assert!(!name.exists(), "unlinked at once");
        assert_eq!(std::fs::read_dir(d.path()).unwrap().count(), 0);
        assert_eq!(std::fs::metadata(&path).unwrap().len(), run.bytes());
        assert!(still_open(&path, &name));
        assert_eq!(read_all(run, 256).unwrap(), records);
        assert!(!still_open(&path, &name), "closed with the reader");
    }

    #[test]
    fn records_longer_than_a_block_span_blocks_and_come_back_whole() {
        let d = dir();
        let spill = SpillDir::new(d.path(), None).unwrap();
        // Lengths around the block's payload (232 of 256) and several blocks long, among
        // short ones, so that long records start anywhere in a block and end exactly at one.
        let lens = [5, 232, 233, 236, 1000, 3, 0, 700, 464, 2000, 17, 236, 1];
        let records: Vec<Vec<u8>> = lens
            .iter()
            .enumerate()
            .map(|(i, &n)| (0..n).map(|j| (i * 31 + j) as u8).collect())
            .collect();
        let run = write_run(&spill, 256, &records);
        assert_eq!(run.records(), lens.len() as u64);
        assert_eq!(read_all(run, 256).unwrap(), records);
        // Given in parts, a record is the same.
        let mut w = RunWriter::new(spill.create().unwrap(), heap_pages(1, 256)).unwrap();
        w.push_parts(1000, [&records[4][..300], &[], &records[4][300..]])
            .unwrap();
        w.push(&records[0]).unwrap();
        let run = w.finish().0.unwrap();
        assert_eq!(
            read_all(run, 256).unwrap(),
            vec![records[4].clone(), records[0].clone()]
        );

        // A flipped byte in a block that continues a record, and a file cut inside one.
        let long = vec![vec![9u8; 3000], vec![8u8; 10]];
        let run = write_run(&spill, 256, &long);
        let path = run.descriptor_path();
        let mut bytes = std::fs::read(&path).unwrap();
        bytes[256 * 5 + 50] ^= 1;
        std::fs::write(&path, &bytes).unwrap();
        let e = read_all(run, 256).unwrap_err();
        assert!(
            matches!(&e, Error::Corrupted(m) if m.contains("checksum") && m.contains("block 5")),
            "{e}"
        );
        let run = write_run(&spill, 256, &long);
        let f = OpenOptions::new()
            .write(true)
            .open(run.descriptor_path())
            .unwrap();
        f.set_len(256 * 4).unwrap();
        let e = read_all(run, 256).unwrap_err();
        assert!(
            matches!(&e, Error::Corrupted(m) if m.contains("truncated")),
            "{e}"
        );
    }

    #[test]
    fn pages_written_together_land_one_after_the_other() {
        let d = dir();
        let spill = SpillDir::new(d.path(), None).unwrap();
        let mut f = spill.create().unwrap();
        f.write_page(&[1; 100]).unwrap();
        f.write_pages(&[&[2; 300], &[], &[3; 50]]).unwrap();
        assert_eq!(f.len(), 450);
        let bytes = std::fs::read(f.descriptor_path()).unwrap();
        assert_eq!(bytes.len(), 450);
        assert!(bytes[..100].iter().all(|&b| b == 1));
        assert!(bytes[100..400].iter().all(|&b| b == 2));
        assert!(bytes[400..].iter().all(|&b| b == 3));
    }

    #[test]
    fn a_writer_with_pages_to_spare_writes_behind_the_same_blocks() {
        let d = dir();
        let spill = SpillDir::new(d.path(), None).unwrap();
        let records: Vec<Vec<u8>> = (0..900u32)
            .map(|i| vec![(i * 7) as u8; (i % 400) as usize])
            .collect();
        for n in [2, 3, 8] {
            let run = write_run_through(&spill, heap_pages(n, 256), &records);
            assert!(run.blocks() > 100);
            assert_eq!(read_all(run, 256).unwrap(), records);
        }
        let e = RunWriter::new(spill.create().unwrap(), Vec::new())
            .err()
            .unwrap();
        assert!(matches!(e, Error::InvalidArgument(_)), "{e}");
        let mut mixed = heap_pages(2, 256);
        mixed.push(Segment::allocate_heap(512).unwrap());
        let e = RunWriter::new(spill.create().unwrap(), mixed)
            .err()
            .unwrap();
        assert!(matches!(e, Error::InvalidArgument(_)), "{e}");
        assert_eq!(std::fs::read_dir(d.path()).unwrap().count(), 0);
    }

    #[test]
    fn a_reader_with_read_ahead_reads_the_same_and_gives_every_page_back() {
        let d = dir();
        let spill = SpillDir::new(d.path(), None).unwrap();
        let records: Vec<Vec<u8>> = (0..700u32)
            .map(|i| vec![i as u8; (i % 300) as usize])
            .collect();
        let read_ahead = ReadAhead::start().unwrap();
        for count in [1, 2, 3, 8, 200] {
            let run = write_run(&spill, 256, &records);
            let blocks = run.blocks();
            assert!(blocks > 8 && blocks < 2000, "{blocks}");
            let pages = (0..count)
                .map(|_| Segment::allocate_heap(256).unwrap())
                .collect();
            let mut r = RunReader::with_read_ahead(run, pages, &read_ahead).unwrap();
            let mut out = Vec::new();
            while r.advance().unwrap() {
                out.push(r.current().to_vec());
            }
            assert_eq!(out, records);
            assert_eq!(r.into_pages().len(), count);
        }
        // A damaged block read ahead is reported when the reader comes to it.
        let run = write_run(&spill, 256, &records);
        let (name, path) = (run.path().to_path_buf(), run.descriptor_path());
        let mut bytes = std::fs::read(&path).unwrap();
        bytes[256 * 6 + 30] ^= 4;
        std::fs::write(&path, &bytes).unwrap();
        let pages = (0..4)
            .map(|_| Segment::allocate_heap(256).unwrap())
            .collect();
        let mut r = RunReader::with_read_ahead(run, pages, &read_ahead).unwrap();
        let e = loop {
            match r.advance() {
                Ok(true) => {}
                Ok(false) => panic!("read a damaged run to its end"),
                Err(e) => break e,
            }
        };
        assert!(
            matches!(&e, Error::Corrupted(m) if m.contains("checksum") && m.contains("block 6")),
            "{e}"
        );
        assert_eq!(r.into_pages().len(), 4);
        assert!(!still_open(&path, &name), "closed once no read is pending");
    }

    #[test]
    fn truncation_and_flipped_bytes_are_corruption() {
        let d = dir();
        let spill = SpillDir::new(d.path(), None).unwrap();
        let records: Vec<Vec<u8>> = (0..200u32).map(|i| i.to_be_bytes().repeat(5)).collect();
        let run = write_run(&spill, 512, &records);
        let len = run.bytes();
        let f = OpenOptions::new()
            .write(true)
            .open(run.descriptor_path())
            .unwrap();
        f.set_len(len - 100).unwrap();
        let e = read_all(run, 512).unwrap_err();
        assert!(
            matches!(&e, Error::Corrupted(m) if m.contains("truncated")),
            "{e}"
        );

        let run = write_run(&spill, 512, &records);
        let path = run.descriptor_path();
        let mut bytes = std::fs::read(&path).unwrap();
        bytes[512 * 3 + 100] ^= 1;
        std::fs::write(&path, &bytes).unwrap();
        let e = read_all(run, 512).unwrap_err();
        assert!(
            matches!(&e, Error::Corrupted(m) if m.contains("checksum") && m.contains("block 3")),
            "{e}"
        );

        let run = write_run(&spill, 512, &records);
        let f = OpenOptions::new()
            .write(true)
            .open(run.descriptor_path())
            .unwrap();
        f.set_len(512 * 2).unwrap();
        let e = read_all(run, 512).unwrap_err();
        assert!(matches!(e, Error::Corrupted(_)), "{e}");
    }

    #[test]
    fn an_injected_enospc_is_disk_full_and_other_errors_are_io() {
        let d = dir();
        let fault = Arc::new(WriteFault::new(1024, libc::ENOSPC));
        let spill = SpillDir::new(d.path(), Some(fault)).unwrap();
        let mut w = RunWriter::new(spill.create().unwrap(), heap_pages(1, 256)).unwrap();
        let e = (0..1000)
            .try_for_each(|i: u32| w.push(&i.to_le_bytes()))
            .unwrap_err();
        assert!(matches!(e, Error::DiskFull(_)), "{e}");
        drop(w);
        assert_eq!(std::fs::read_dir(d.path()).unwrap().count(), 0);
        // Written behind, the error comes with a later block or at the end, pages and all.
        let fault = Arc::new(WriteFault::new(1024, libc::ENOSPC));
        let spill = SpillDir::new(d.path(), Some(fault)).unwrap();
        let mut w = RunWriter::new(spill.create().unwrap(), heap_pages(3, 256)).unwrap();
        let pushed = (0..1000).try_for_each(|i: u32| w.push(&i.to_le_bytes()));
        let (run, pages) = w.finish();
        let e = pushed.and(run.map(|_| ())).unwrap_err();
        assert!(matches!(e, Error::DiskFull(_)), "{e}");
        assert_eq!(pages.len(), 3);
        assert_eq!(std::fs::read_dir(d.path()).unwrap().count(), 0);

        let fault = Arc::new(WriteFault::new(0, libc::EIO));
        let spill = SpillDir::new(d.path(), Some(fault)).unwrap();
        let mut f = spill.create().unwrap();
        assert!(matches!(f.write_page(&[0; 8]), Err(Error::Io(_))));
        assert!(matches!(
            SpillDir::new(d.path().join("missing"), None),
            Err(Error::Io(_))
        ));
    }
}
