//! Spill files: temporary files of whole-page blocks, written and read one page at a time.
//!
//! A [`SpillDir`] makes uniquely named files in a directory; a [`SpillFile`] removes its file
//! when dropped, so files go away on success, on error and on close alike. [`RunWriter`]
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

    /// Creates a new, empty spill file with a name no other file has.
    pub fn create(&self) -> Result<SpillFile> {
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
                Ok(file) => {
                    return Ok(SpillFile {
                        path,
                        file,
                        len: 0,
                        fault: self.fault.clone(),
                        direct,
                        buffered_reader: std::sync::OnceLock::new(),
                    });
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(io_error("creating spill file", &path, &e)),
            }
        }
    }
}

/// A temporary file, removed when dropped.
#[derive(Debug)]
pub struct SpillFile {
    path: PathBuf,
    file: File,
    len: u64,
    fault: Option<Arc<WriteFault>>,
    direct: bool,
    /// A second descriptor for reading a direct file back through the page cache, whose
    /// read-ahead keeps the merge's many sequential readers busy without read threads.
    buffered_reader: std::sync::OnceLock<File>,
}

impl SpillFile {
    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
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
        let mut result = match &self.fault {
            Some(fault) => fault.check(page.len()),
            None => Ok(()),
        }
        .and_then(|()| self.file.write_all_at(page, self.len));
        if self.direct && matches!(&result, Err(e) if e.raw_os_error() == Some(libc::EINVAL)) {
            // The file system takes O_DIRECT at open but not this write (its block size is
            // larger than the page's alignment): write through the page cache instead.
            result = self
                .go_buffered()
                .and_then(|()| self.file.write_all_at(page, self.len));
        }
        result.map_err(|e| io_error("writing spill file", &self.path, &e))?;
        self.len += page.len() as u64;
        Ok(())
    }

    /// Reads the page at `offset` into `page`; a file too short for it was truncated.
    fn read_page(&self, offset: u64, page: &mut [u8]) -> Result<()> {
        let truncated = || {
            Error::Corrupted(format!(
                "spill file {} is truncated: the block at byte {offset} is incomplete",
                self.path.display()
            ))
        };
        let file = if self.direct {
            match self.buffered_reader.get() {
                Some(f) => f,
                None => {
                    let f = File::open(&self.path)
                        .map_err(|e| io_error("reopening spill file", &self.path, &e))?;
                    // SAFETY: an advice call on a descriptor we own; it touches no memory.
                    let _ = unsafe {
                        libc::posix_fadvise(f.as_raw_fd(), 0, 0, libc::POSIX_FADV_SEQUENTIAL)
                    };
                    self.buffered_reader.get_or_init(|| f)
                }
            }
        } else {
            &self.file
        };
        if self.direct {
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

impl Drop for SpillFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// A sorted run on disk: its file and what was written to it.
#[derive(Debug)]
pub struct Run {
    file: SpillFile,
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

    /// The file's path.
    pub fn path(&self) -> &Path {
        self.file.path()
    }

    /// Bytes on disk.
    pub fn bytes(&self) -> u64 {
        self.blocks * self.page_size as u64
    }
}

/// Writes records into a new run, block by block, through one page.
pub struct RunWriter<'p> {
    file: SpillFile,
    page: &'p mut Segment,
    block: BlockBuilder,
    blocks: u64,
    records: u64,
}

impl<'p> RunWriter<'p> {
    /// A writer of `file` through `page` (the page's size is the block size).
    pub fn new(file: SpillFile, page: &'p mut Segment) -> Self {
        RunWriter {
            file,
            page,
            block: BlockBuilder::new(),
            blocks: 0,
            records: 0,
        }
    }

    /// Appends a record; writes the block when it is full. A record longer than
    /// [`block::max_record_len`] is refused.
    #[inline]
    pub fn push(&mut self, record: &[u8]) -> Result<()> {
        if self.block.push(self.page.as_mut_slice(), record) {
            self.records += 1;
            return Ok(());
        }
        if record.len() > block::max_record_len(self.page.size()) {
            return Err(Error::invalid(format!(
                "record of {} bytes exceeds the largest a {}-byte page holds ({})",
                record.len(),
                self.page.size(),
                block::max_record_len(self.page.size())
            )));
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

    fn flush(&mut self) -> Result<()> {
        let page = self.page.as_mut_slice();
        self.block.seal(page);
        self.file.write_page(page)?;
        self.blocks += 1;
        Ok(())
    }

    /// Writes the last block and returns the run.
    pub fn finish(mut self) -> Result<Run> {
        if self.block.count() > 0 {
            self.flush()?;
        }
        Ok(Run {
            page_size: self.page.size(),
            file: self.file,
            blocks: self.blocks,
            records: self.records,
        })
    }
}

/// Reads a run back, block by block, through one page it owns; each record is a slice of the
/// page, valid until the next call.
pub struct RunReader {
    run: Run,
    page: Segment,
    block: u64,
    pos: usize,
    left_in_block: u32,
    records_read: u64,
    current: (usize, usize),
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
            block: 0,
            pos: 0,
            left_in_block: 0,
            records_read: 0,
            current: (0, 0),
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
            let offset = self.block * self.run.page_size as u64;
            let name = BlockName(self.run.file.path(), self.block);
            self.run.file.read_page(offset, self.page.as_mut_slice())?;
            self.left_in_block = block::verify(self.page.as_mut_slice(), &name)?;
            self.pos = BLOCK_HEADER;
            self.block += 1;
        }
        let name = BlockName(self.run.file.path(), self.block - 1);
        let (start, end) = block::record_at(self.page.as_slice(), self.pos, &name)?;
        self.current = (start, end);
        self.pos = end;
        self.left_in_block -= 1;
        self.records_read += 1;
        Ok(true)
    }

    /// The record the last successful [`advance`](Self::advance) moved to.
    #[inline]
    pub fn current(&self) -> &[u8] {
        &self.page.as_slice()[self.current.0..self.current.1]
    }

    /// Gives the read page back; the run's file is removed.
    pub fn into_page(self) -> Segment {
        self.page
    }
}

#[cfg(all(test, not(miri)))]
mod tests {
    use super::*;

    fn dir() -> tempfile::TempDir {
        tempfile::tempdir().unwrap()
    }

    fn write_run(spill: &SpillDir, page_size: usize, records: &[Vec<u8>]) -> Run {
        let mut page = Segment::allocate_heap(page_size).unwrap();
        let mut w = RunWriter::new(spill.create().unwrap(), &mut page);
        for r in records {
            w.push(r).unwrap();
        }
        w.finish().unwrap()
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
    fn runs_round_trip_and_their_files_go_away() {
        let d = dir();
        let spill = SpillDir::new(d.path(), None).unwrap();
        let records: Vec<Vec<u8>> = (0..500u32)
            .map(|i| vec![i as u8; (i % 37) as usize])
            .collect();
        let run = write_run(&spill, 256, &records);
        assert_eq!(run.records(), 500);
        assert!(run.blocks() > 10);
        let path = run.path().to_path_buf();
        assert_eq!(std::fs::metadata(&path).unwrap().len(), run.bytes());
        assert_eq!(read_all(run, 256).unwrap(), records);
        assert!(!path.exists(), "removed with the reader");
        assert_eq!(std::fs::read_dir(d.path()).unwrap().count(), 0);
    }

    #[test]
    fn truncation_and_flipped_bytes_are_corruption() {
        let d = dir();
        let spill = SpillDir::new(d.path(), None).unwrap();
        let records: Vec<Vec<u8>> = (0..200u32).map(|i| i.to_be_bytes().repeat(5)).collect();
        let run = write_run(&spill, 512, &records);
        let len = run.bytes();
        let f = OpenOptions::new().write(true).open(run.path()).unwrap();
        f.set_len(len - 100).unwrap();
        let e = read_all(run, 512).unwrap_err();
        assert!(
            matches!(&e, Error::Corrupted(m) if m.contains("truncated")),
            "{e}"
        );

        let run = write_run(&spill, 512, &records);
        let path = run.path().to_path_buf();
        let mut bytes = std::fs::read(&path).unwrap();
        bytes[512 * 3 + 100] ^= 1;
        std::fs::write(&path, &bytes).unwrap();
        let e = read_all(run, 512).unwrap_err();
        assert!(
            matches!(&e, Error::Corrupted(m) if m.contains("checksum") && m.contains("block 3")),
            "{e}"
        );

        let run = write_run(&spill, 512, &records);
        let f = OpenOptions::new().write(true).open(run.path()).unwrap();
        f.set_len(512 * 2).unwrap();
        let e = read_all(run, 512).unwrap_err();
        assert!(matches!(e, Error::Corrupted(_)), "{e}");
    }

    #[test]
    fn an_injected_enospc_is_disk_full_and_other_errors_are_io() {
        let d = dir();
        let fault = Arc::new(WriteFault::new(1024, libc::ENOSPC));
        let spill = SpillDir::new(d.path(), Some(fault)).unwrap();
        let mut page = Segment::allocate_heap(256).unwrap();
        let mut w = RunWriter::new(spill.create().unwrap(), &mut page);
        let e = (0..1000)
            .try_for_each(|i: u32| w.push(&i.to_le_bytes()))
            .unwrap_err();
        assert!(matches!(e, Error::DiskFull(_)), "{e}");
        drop(w);
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
