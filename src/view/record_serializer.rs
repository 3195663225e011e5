//! [`RecordSerializer`]: length-prefixed records copied into consecutive buffers.

use std::borrow::BorrowMut;

use crate::error::{Error, Result};
use crate::segment::{ByteOrder, Segment};

use super::buffer::SerializationBuffer;
use super::data::DataOutput;

/// Bytes of a record's length prefix: a big-endian `u32` (Java's `writeInt`).
pub const LENGTH_PREFIX_SIZE: usize = 4;

/// The longest record a serializer writes: what a Java `int` length can say.
pub const MAX_RECORD_LEN: usize = i32::MAX as usize;

/// Where a [`RecordSerializer`] copies records: a buffer with room at its end.
///
/// Implemented by [`SegmentTarget`] (a segment and its fill); a buffer builder of the pool
/// layer implements it to write records straight into network buffers.
pub trait RecordTarget {
    /// Appends as many leading bytes of `src` as fit and returns how many that was.
    fn append(&mut self, src: &[u8]) -> usize;

    /// Bytes that still fit.
    fn remaining(&self) -> usize;
}

impl<T: RecordTarget + ?Sized> RecordTarget for &mut T {
    fn append(&mut self, src: &[u8]) -> usize {
        (**self).append(src)
    }

    fn remaining(&self) -> usize {
        (**self).remaining()
    }
}

/// A segment being filled from its start: the plain [`RecordTarget`].
#[derive(Debug)]
pub struct SegmentTarget<S = Segment> {
    segment: S,
    fill: usize,
}

impl<S: BorrowMut<Segment>> SegmentTarget<S> {
    /// An empty target over `segment`.
    pub fn new(segment: S) -> Self {
        SegmentTarget { segment, fill: 0 }
    }

    /// A target over `segment` whose first `fill` bytes are taken already
    /// (`OutOfBounds` beyond its size).
    pub fn with_fill(segment: S, fill: usize) -> Result<Self> {
        let size = segment.borrow().size();
        if fill > size {
            return Err(Error::OutOfBounds {
                offset: fill,
                len: 0,
                size,
            });
        }
        Ok(SegmentTarget { segment, fill })
    }

    /// Bytes filled.
    pub fn fill(&self) -> usize {
        self.fill
    }

    /// The segment.
    pub fn segment(&self) -> &Segment {
        self.segment.borrow()
    }

    /// The segment and its fill.
    pub fn into_parts(self) -> (S, usize) {
        (self.segment, self.fill)
    }
}

impl<S: BorrowMut<Segment>> RecordTarget for SegmentTarget<S> {
    fn append(&mut self, src: &[u8]) -> usize {
        let n = self.remaining().min(src.len());
        self.segment
            .borrow_mut()
            .put_bytes(self.fill, &src[..n])
            .expect("the fill plus what fits is inside the segment");
        self.fill += n;
        n
    }

    fn remaining(&self) -> usize {
        self.segment.borrow().size() - self.fill
    }
}

/// What [`RecordSerializer::copy_to`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CopyResult {
    /// The whole record has been copied (the serializer takes the next one).
    pub record_done: bool,
    /// The target has no room left (the caller moves on to the next buffer).
    pub target_full: bool,
}

/// Serializes records as a 4-byte big-endian length followed by the record's bytes and copies
/// them into consecutive buffers, splitting a record wherever a buffer ends (Flink's
/// `SpanningRecordSerializer`).
///
/// ```
/// use memseg::Segment;
/// use memseg::view::{RecordSerializer, SegmentTarget};
///
/// let mut serializer = RecordSerializer::new();
/// let mut buffers = vec![SegmentTarget::new(Segment::allocate_heap(16)?)];
/// for record in [&b"first record"[..], b"second"] {
///     serializer.serialize_record(record)?;
///     while !serializer.copy_to(buffers.last_mut().unwrap()).record_done {
///         buffers.push(SegmentTarget::new(Segment::allocate_heap(16)?));
///     }
/// }
/// assert_eq!(buffers.len(), 2);
/// # Ok::<(), memseg::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct RecordSerializer {
    buffer: SerializationBuffer,
    copied: usize,
}

impl Default for RecordSerializer {
    fn default() -> Self {
        Self::new()
    }
}

impl RecordSerializer {
    /// A serializer with a 128-byte initial buffer, grown as records need.
    pub fn new() -> Self {
        RecordSerializer {
            buffer: SerializationBuffer::new(128).expect("128 bytes"),
            copied: 0,
        }
    }

    /// Whether part of the current record is still to be copied.
    pub fn has_pending(&self) -> bool {
        self.copied < self.buffer.len()
    }

    /// Bytes of the current record (prefix included) not yet copied.
    pub fn pending(&self) -> usize {
        self.buffer.len() - self.copied
    }

    fn check_idle(&self) -> Result<()> {
        if self.has_pending() {
            return Err(Error::invalid(format!(
                "the previous record still has {} bytes to copy; copy it to a target first",
                self.pending()
            )));
        }
        Ok(())
    }

    /// Takes `record` as the next record to copy. `InvalidArgument` while the previous one is
    /// not fully copied, or for a record longer than [`MAX_RECORD_LEN`].
    pub fn serialize_record(&mut self, record: &[u8]) -> Result<()> {
        self.check_idle()?;
        let len = check_record_len(record.len())?;
        self.buffer.clear();
        self.copied = 0;
        self.buffer.reserve(LENGTH_PREFIX_SIZE + record.len())?;
        self.buffer.write_u32(len)?;
        self.buffer.write_bytes(record)
    }

    /// Takes the next record as whatever `write` writes (with the `DataOutput` operations).
    /// If `write` fails, the record is dropped and its error returned.
    pub fn serialize_with(
        &mut self,
        write: impl FnOnce(&mut SerializationBuffer) -> Result<()>,
    ) -> Result<()> {
        self.check_idle()?;
        self.buffer.clear();
        self.copied = 0;
        let written = self
            .buffer
            .skip_bytes_to_write(LENGTH_PREFIX_SIZE)
            .and_then(|()| write(&mut self.buffer))
            .and_then(|()| check_record_len(self.buffer.len() - LENGTH_PREFIX_SIZE));
        match written {
            Ok(len) => self.buffer.put_at(0, len, ByteOrder::Big),
            Err(e) => {
                self.buffer.clear();
                Err(e)
            }
        }
    }

    /// Copies as much of the current record as fits into `target`.
    pub fn copy_to<T: RecordTarget + ?Sized>(&mut self, target: &mut T) -> CopyResult {
        let rest = &self.buffer.as_bytes()[self.copied..];
        let n = target.append(rest);
        self.copied += n;
        CopyResult {
            record_done: self.copied == self.buffer.len(),
            target_full: target.remaining() == 0,
        }
    }

    /// Drops the current record, copied or not, and shrinks the buffer back.
    pub fn clear(&mut self) {
        self.buffer.prune();
        self.copied = 0;
    }
}

fn check_record_len(len: usize) -> Result<u32> {
    if len > MAX_RECORD_LEN {
        return Err(Error::invalid(format!(
            "a record of {len} bytes is longer than the {MAX_RECORD_LEN} bytes its length \
             prefix can say"
        )));
    }
    Ok(len as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_span_targets_with_a_big_endian_length_prefix() {
        let mut ser = RecordSerializer::new();
        let mut a = SegmentTarget::new(Segment::allocate_heap(6).unwrap());
        let mut b = SegmentTarget::new(Segment::allocate_heap(16).unwrap());
        ser.serialize_record(b"hello").unwrap();
        assert_eq!(
            ser.copy_to(&mut a),
            CopyResult {
                record_done: false,
                target_full: true
            }
        );
        assert!(
            ser.serialize_record(b"x").is_err(),
            "previous record pending"
        );
        assert_eq!(ser.pending(), 3);
        assert_eq!(
            ser.copy_to(&mut b),
            CopyResult {
                record_done: true,
                target_full: false
            }
        );
        ser.serialize_with(|out| out.write_u16(0xABCD)).unwrap();
        assert!(ser.copy_to(&mut b).record_done);
        assert_eq!(a.segment().as_slice(), [0, 0, 0, 5, b'h', b'e']);
        assert_eq!(
            b.segment().as_slice()[..9],
            [b'l', b'l', b'o', 0, 0, 0, 2, 0xAB, 0xCD]
        );
        assert_eq!(b.fill(), 9);
    }

    #[test]
    fn a_failing_writer_drops_its_record() {
        let mut ser = RecordSerializer::new();
        let err = ser.serialize_with(|_| Err(Error::invalid("no")));
        assert!(err.is_err());
        assert!(!ser.has_pending());
        assert!(SegmentTarget::with_fill(Segment::allocate_heap(4).unwrap(), 5).is_err());
        let mut t = SegmentTarget::with_fill(Segment::allocate_heap(4).unwrap(), 4).unwrap();
        ser.serialize_record(b"").unwrap();
        assert_eq!(
            ser.copy_to(&mut t),
            CopyResult {
                record_done: false,
                target_full: true
            }
        );
        ser.clear();
        assert!(!ser.has_pending());
    }
}
