//! Reading and writing the command's big files with direct I/O (`O_DIRECT`), through
//! page-aligned off-heap segments, so that a sort of gigabytes neither fills the page cache
//! nor pays for its copies. Where the file system refuses direct I/O, the page cache is used.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::sync::mpsc::{Receiver, Sender, channel};
use std::thread::JoinHandle;

use memseg::{OffHeapOptions, Segment};

/// Bytes per direct read or write: a multiple of every block size direct I/O may need.
pub const CHUNK: usize = 1 << 20;

fn aligned_buffer() -> io::Result<Segment> {
    Segment::allocate_off_heap(CHUNK, OffHeapOptions::default())
        .map_err(|e| io::Error::other(e.to_string()))
}

fn open_direct(options: &mut OpenOptions, path: &Path) -> io::Result<File> {
    match options.clone().custom_flags(libc::O_DIRECT).open(path) {
        Err(e) if e.raw_os_error() == Some(libc::EINVAL) => options.open(path),
        other => other,
    }
}

/// Clears `O_DIRECT` on `file`, for a last write whose length is not a block multiple.
fn go_buffered(file: &File) -> io::Result<()> {
    let fd = file.as_raw_fd();
    // SAFETY: fcntl on a descriptor `file` owns; F_GETFL/F_SETFL touch no memory.
    unsafe {
        let flags = libc::fcntl(fd, libc::F_GETFL);
        if flags < 0 || libc::fcntl(fd, libc::F_SETFL, flags & !libc::O_DIRECT) < 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

/// Reads a file in aligned chunks on a reader thread (two buffers: one is read while the
/// other is processed).
pub struct DirectReader {
    len: u64,
    current: Option<(Segment, usize)>,
    to_reader: Option<Sender<Segment>>,
    from_reader: Receiver<io::Result<(Segment, usize)>>,
    thread: Option<JoinHandle<()>>,
}

fn read_chunk(file: &mut File, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match file.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            // After a short read at the end, a direct read at an unaligned place fails.
            Err(e) if e.raw_os_error() == Some(libc::EINVAL) && filled > 0 => break,
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

impl DirectReader {
    pub fn open(path: &Path) -> io::Result<Self> {
        let mut file = open_direct(OpenOptions::new().read(true), path)?;
        let len = file.metadata()?.len();
        let (to_reader, empties) = channel::<Segment>();
        let (full, from_reader) = channel::<io::Result<(Segment, usize)>>();
        to_reader
            .send(aligned_buffer()?)
            .map_err(|_| io::Error::other("reader channel"))?;
        to_reader
            .send(aligned_buffer()?)
            .map_err(|_| io::Error::other("reader channel"))?;
        let thread = std::thread::Builder::new()
            .name("memseg-input".into())
            .spawn(move || {
                for mut buffer in empties {
                    let result = read_chunk(&mut file, buffer.as_mut_slice());
                    let end = !matches!(result, Ok(n) if n > 0);
                    if full.send(result.map(|n| (buffer, n))).is_err() || end {
                        break;
                    }
                }
            })?;
        Ok(DirectReader {
            len,
            current: None,
            to_reader: Some(to_reader),
            from_reader,
            thread: Some(thread),
        })
    }

    pub fn len(&self) -> u64 {
        self.len
    }

    /// The next chunk of the file (a full one unless at the end); empty at the end.
    pub fn next_chunk(&mut self) -> io::Result<&[u8]> {
        if let Some((buffer, _)) = self.current.take() {
            if let Some(tx) = &self.to_reader {
                let _ = tx.send(buffer);
            }
        }
        match self.from_reader.recv() {
            Ok(result) => {
                let (buffer, n) = result?;
                let chunk = self.current.insert((buffer, n));
                Ok(&chunk.0.as_slice()[..chunk.1])
            }
            Err(_) => Ok(&[]), // the reader thread reached the end
        }
    }
}

impl Drop for DirectReader {
    fn drop(&mut self) {
        self.to_reader = None;
        while self.from_reader.try_recv().is_ok() {}
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Reads fixed-size records from a file, in chunks.
pub struct RecordReader {
    reader: DirectReader,
    size: usize,
    carry: Vec<u8>,
}

impl RecordReader {
    pub fn open(path: &Path, size: usize) -> io::Result<Self> {
        Ok(RecordReader {
            reader: DirectReader::open(path)?,
            size,
            carry: Vec::with_capacity(size),
        })
    }

    pub fn len(&self) -> u64 {
        self.reader.len()
    }

    /// Calls `f` on every record of the next chunk and returns the bytes consumed; 0 at the
    /// end. A file that ends inside a record is an error.
    pub fn for_each_in_chunk(
        &mut self,
        mut f: impl FnMut(&[u8]) -> Result<(), Box<dyn std::error::Error>>,
    ) -> Result<usize, Box<dyn std::error::Error>> {
        let size = self.size;
        let chunk = self.reader.next_chunk()?;
        if chunk.is_empty() {
            if !self.carry.is_empty() {
                return Err(format!(
                    "the input ends inside a record (its size is not a multiple of {size})"
                )
                .into());
            }
            return Ok(0);
        }
        let mut rest = chunk;
        if !self.carry.is_empty() {
            let need = (size - self.carry.len()).min(rest.len());
            self.carry.extend_from_slice(&rest[..need]);
            rest = &rest[need..];
            if self.carry.len() == size {
                f(&self.carry)?;
                self.carry.clear();
            }
        }
        let whole = rest.len() / size * size;
        for record in rest[..whole].chunks_exact(size) {
            f(record)?;
        }
        self.carry.extend_from_slice(&rest[whole..]);
        Ok(chunk.len())
    }
}

/// Writes a file in aligned chunks on a writer thread (two buffers: one fills while the
/// other is written); the tail goes through the page cache.
pub struct DirectWriter {
    filling: Segment,
    fill: usize,
    spare: Option<Segment>,
    to_writer: Option<Sender<Segment>>,
    from_writer: Receiver<io::Result<Segment>>,
    thread: Option<JoinHandle<File>>,
}

fn write_chunk(file: &mut File, data: &[u8]) -> io::Result<()> {
    let result = file.write_all(data);
    if matches!(&result, Err(e) if e.raw_os_error() == Some(libc::EINVAL)) {
        go_buffered(file)?;
        return file.write_all(data);
    }
    result
}

impl DirectWriter {
    pub fn create(path: &Path) -> io::Result<Self> {
        let mut file = open_direct(
            OpenOptions::new().write(true).create(true).truncate(true),
            path,
        )?;
        let (to_writer, chunks) = channel::<Segment>();
        let (done, from_writer) = channel::<io::Result<Segment>>();
        let thread = std::thread::Builder::new()
            .name("memseg-output".into())
            .spawn(move || {
                for chunk in chunks {
                    let result = write_chunk(&mut file, chunk.as_slice()).map(|()| chunk);
                    if done.send(result).is_err() {
                        break;
                    }
                }
                file
            })?;
        Ok(DirectWriter {
            filling: aligned_buffer()?,
            fill: 0,
            spare: Some(aligned_buffer()?),
            to_writer: Some(to_writer),
            from_writer,
            thread: Some(thread),
        })
    }

    fn writer_gone() -> io::Error {
        io::Error::other("the output writer thread ended")
    }

    /// Hands the full buffer to the writer thread and takes the other one.
    fn flush_chunk(&mut self) -> io::Result<()> {
        let next = match self.spare.take() {
            Some(buffer) => buffer,
            None => self.from_writer.recv().map_err(|_| Self::writer_gone())??,
        };
        let full = std::mem::replace(&mut self.filling, next);
        self.to_writer
            .as_ref()
            .ok_or_else(Self::writer_gone)?
            .send(full)
            .map_err(|_| Self::writer_gone())?;
        self.fill = 0;
        Ok(())
    }

    /// Writes everything still buffered and closes the file.
    pub fn finish(mut self) -> io::Result<()> {
        self.to_writer = None;
        for result in self.from_writer.iter() {
            result?;
        }
        let mut file = self
            .thread
            .take()
            .ok_or_else(Self::writer_gone)?
            .join()
            .map_err(|_| Self::writer_gone())?;
        if self.fill > 0 {
            go_buffered(&file)?;
            file.write_all(&self.filling.as_slice()[..self.fill])?;
        }
        file.flush()
    }
}

impl Write for DirectWriter {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        let n = data.len().min(CHUNK - self.fill);
        self.filling.as_mut_slice()[self.fill..self.fill + n].copy_from_slice(&data[..n]);
        self.fill += n;
        if self.fill == CHUNK {
            self.flush_chunk()?;
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Drop for DirectWriter {
    fn drop(&mut self) {
        self.to_writer = None;
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
