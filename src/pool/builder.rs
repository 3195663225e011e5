//! Buffer builder and consumer: one thread appends bytes to a buffer and commits them, another
//! takes read-only slices of what has been committed (Flink's `BufferBuilder` and
//! `BufferConsumer`).
//!
//! The hand-off is one atomic word, the buffer's writer index: the builder writes bytes past
//! it, then publishes the new end with a release store; the consumer reads it with an acquire
//! load and slices only below it. Finishing sets the word's top bit. No locks.

use std::fmt;

use super::buffer::Buffer;
use crate::error::{Error, Result};

/// Appends bytes to a buffer and commits them for its consumers. One writer: the builder is
/// `Send` but its methods take `&mut self`. Dropping it finishes it.
pub struct BufferBuilder {
    buffer: Buffer,
    /// End of the bytes appended so far (committed or not).
    position: usize,
    finished: bool,
}

impl BufferBuilder {
    pub(crate) fn new(buffer: Buffer) -> Self {
        BufferBuilder {
            buffer,
            position: 0,
            finished: false,
        }
    }

    /// A consumer of the bytes committed from now on (Flink's `createBufferConsumer`).
    pub fn create_consumer(&self) -> BufferConsumer {
        let start = self.committed();
        BufferConsumer {
            buffer: self.buffer.read_only_whole(),
            reader: start,
        }
    }

    /// A consumer of every byte committed, from the start of the buffer.
    pub fn create_consumer_from_beginning(&self) -> BufferConsumer {
        BufferConsumer {
            buffer: self.buffer.read_only_whole(),
            reader: 0,
        }
    }

    fn committed(&self) -> usize {
        self.buffer.slot().writer.read().0
    }

    /// Copies as much of `src` as fits after the bytes appended so far and returns how many
    /// bytes it copied (0 when full). The bytes are not visible to consumers until
    /// [`commit`](Self::commit). `Closed` after [`finish`](Self::finish).
    pub fn append(&mut self, src: &[u8]) -> Result<usize> {
        if self.finished {
            return Err(Error::Closed("the buffer builder is finished".into()));
        }
        let n = src.len().min(self.buffer.capacity() - self.position);
        // SAFETY: `src` is valid for `n` bytes; the bytes written lie past the committed end,
        // which no consumer reads.
        unsafe {
            self.buffer
                .region()
                .write_from(self.position, src.as_ptr(), n)?
        };
        self.position += n;
        Ok(n)
    }

    /// Publishes the bytes appended so far to the consumers.
    pub fn commit(&mut self) {
        if !self.finished {
            self.buffer.slot().writer.publish(self.position);
        }
    }

    /// Commits and marks the end: consumers see the buffer finished once they have consumed
    /// every byte. Returns the bytes written. A second call changes nothing.
    pub fn finish(&mut self) -> usize {
        if !self.finished {
            self.finished = true;
            self.buffer.slot().writer.finish(self.position);
        }
        self.position
    }

    /// Whether the buffer is full.
    pub fn is_full(&self) -> bool {
        self.position == self.buffer.capacity()
    }

    /// Bytes that still fit.
    pub fn writable_bytes(&self) -> usize {
        self.buffer.capacity() - self.position
    }

    /// Whether [`finish`](Self::finish) was called.
    pub fn is_finished(&self) -> bool {
        self.finished
    }

    /// Bytes appended so far (committed or not).
    pub fn position(&self) -> usize {
        self.position
    }

    /// The buffer's tag (set it before consumers read).
    pub fn set_tag(&self, tag: u8) -> Result<()> {
        self.buffer.set_tag(tag)
    }
}

impl Drop for BufferBuilder {
    fn drop(&mut self) {
        self.finish();
    }
}

impl fmt::Debug for BufferBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BufferBuilder")
            .field("position", &self.position)
            .field("committed", &self.committed())
            .field("finished", &self.finished)
            .finish()
    }
}

/// Reads what a [`BufferBuilder`] committed, as read-only slices. One reader: methods take
/// `&mut self`.
pub struct BufferConsumer {
    buffer: Buffer,
    reader: usize,
}

impl BufferConsumer {
    fn end(&self) -> (usize, bool) {
        self.buffer.slot().writer.read()
    }

    /// A read-only slice of the bytes committed and not yet consumed (possibly empty); they
    /// count as consumed. The slice shares the buffer's reference count.
    pub fn build(&mut self) -> Buffer {
        let (end, _) = self.end();
        let slice = self
            .buffer
            .read_only_slice(self.reader, end - self.reader)
            .expect("committed bytes lie inside the buffer");
        self.reader = end;
        slice
    }

    /// Whether committed bytes wait to be consumed.
    pub fn is_data_available(&self) -> bool {
        self.end().0 > self.reader
    }

    /// Whether the builder has finished and every byte was consumed.
    pub fn is_finished(&self) -> bool {
        let (end, finished) = self.end();
        finished && end == self.reader
    }

    /// Bytes consumed so far (the position of the next slice).
    pub fn position(&self) -> usize {
        self.reader
    }

    /// The buffer's tag.
    pub fn tag(&self) -> u8 {
        self.buffer.tag()
    }
}

impl fmt::Debug for BufferConsumer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BufferConsumer")
            .field("reader", &self.reader)
            .field("end", &self.end())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use crate::pool::{LocalPoolConfig, NetworkBufferPool, SegmentMemory};

    #[test]
    fn dropping_a_builder_finishes_it_and_consumers_see_only_committed_bytes() {
        let net = NetworkBufferPool::new(1, 16, SegmentMemory::Heap).unwrap();
        let pool = net.create_local_pool(LocalPoolConfig::new(1, 1)).unwrap();
        let mut builder = pool.request_builder(None).unwrap();
        let mut from_start = builder.create_consumer_from_beginning();
        assert_eq!(builder.append(b"abc").unwrap(), 3);
        builder.commit();
        let mut later = builder.create_consumer();
        assert_eq!(builder.append(b"defgh").unwrap(), 5);
        assert!(!later.is_data_available(), "not committed yet");
        assert_eq!(builder.append(&[0; 20]).unwrap(), 8, "only what fits");
        assert!(builder.is_full());
        drop(builder);
        assert!(!from_start.is_finished());
        let slice = from_start.build();
        assert_eq!(slice.size(), 16);
        assert!(from_start.is_finished());
        assert_eq!(from_start.build().size(), 0);
        assert_eq!(later.build().size(), 13);
        assert!(later.is_finished());
        assert_eq!(slice.ref_count(), 3);
        drop((slice, from_start, later));
        assert_eq!(pool.stats().in_use, 0);
    }
}
