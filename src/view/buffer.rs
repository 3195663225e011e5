//! [`SerializationBuffer`]: one growable, contiguous buffer with the `DataOutput` writes.

use crate::error::{Error, Result};
use crate::segment::{ByteOrder, Primitive};

use super::data::DataOutput;

/// A growable byte buffer written as Java's `DataOutput` (Flink's `DataOutputSerializer`).
///
/// It grows on demand (at least doubling), [`prune`](Self::prune) brings it back to its
/// initial size, and [`as_bytes`](Self::as_bytes) lends what was written. Growing that the
/// allocator refuses is `AllocationFailed`, with nothing written.
#[derive(Debug, Clone)]
pub struct SerializationBuffer {
    /// The whole capacity, initialized; bytes `..pos` were written.
    buf: Vec<u8>,
    pos: usize,
    initial: usize,
}

impl SerializationBuffer {
    /// A buffer of `initial_size` bytes (it may be 0; the first write then allocates).
    ///
    /// `AllocationFailed` when the allocator refuses.
    pub fn new(initial_size: usize) -> Result<Self> {
        let mut buf = Vec::new();
        grow_to(&mut buf, initial_size)?;
        Ok(SerializationBuffer {
            buf,
            pos: 0,
            initial: initial_size,
        })
    }

    /// Bytes written.
    #[inline]
    pub fn len(&self) -> usize {
        self.pos
    }

    /// Whether nothing was written.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.pos == 0
    }

    /// Bytes the buffer holds before it has to grow.
    pub fn capacity(&self) -> usize {
        self.buf.len()
    }

    /// The size the buffer was created with, which [`prune`](Self::prune) returns to.
    pub fn initial_size(&self) -> usize {
        self.initial
    }

    /// The bytes written so far, lent until the next write.
    #[inline]
    pub fn as_bytes(&self) -> &[u8] {
        &self.buf[..self.pos]
    }

    /// A copy of the bytes written so far.
    pub fn to_vec(&self) -> Vec<u8> {
        self.as_bytes().to_vec()
    }

    /// Forgets what was written; the capacity stays.
    pub fn clear(&mut self) {
        self.pos = 0;
    }

    /// Forgets what was written and shrinks the buffer back to its initial size if it grew.
    pub fn prune(&mut self) {
        self.pos = 0;
        if self.buf.len() > self.initial {
            self.buf.truncate(self.initial);
            self.buf.shrink_to_fit();
        }
    }

    /// Overwrites `value` at `offset` among the bytes already written (to patch a length
    /// written ahead of its data). `OutOfBounds` unless `offset + size <= len()`.
    pub fn put_at<T: Primitive>(
        &mut self,
        offset: usize,
        value: T,
        order: ByteOrder,
    ) -> Result<()> {
        match offset.checked_add(T::SIZE) {
            Some(end) if end <= self.pos => {
                // SAFETY: `[offset, end)` lies inside the written bytes of `buf`.
                unsafe { value.store(self.buf.as_mut_ptr().add(offset), order) };
                Ok(())
            }
            _ => Err(Error::OutOfBounds {
                offset,
                len: T::SIZE,
                size: self.pos,
            }),
        }
    }

    #[cold]
    #[inline(never)]
    fn grow(&mut self, len: usize) -> Result<()> {
        let needed = self
            .pos
            .checked_add(len)
            .ok_or_else(|| Error::AllocationFailed {
                size: usize::MAX,
                reason: format!("{} + {len} bytes overflow", self.pos),
            })?;
        let target = needed.max(self.buf.len().saturating_mul(2)).max(16);
        grow_to(&mut self.buf, target).or_else(|_| grow_to(&mut self.buf, needed))
    }
}

/// Grows `buf` (zero-filled) to `len` bytes, reporting a refusal instead of aborting.
fn grow_to(buf: &mut Vec<u8>, len: usize) -> Result<()> {
    if len <= buf.len() {
        return Ok(());
    }
    buf.try_reserve_exact(len - buf.len())
        .map_err(|e| Error::AllocationFailed {
            size: len,
            reason: e.to_string(),
        })?;
    buf.resize(len, 0);
    Ok(())
}

impl DataOutput for SerializationBuffer {
    /// One bounds check on the room left, then the store. Growing is an out-of-line call
    /// *before* the store, which both paths share (as `Vec::extend_from_slice` does): a slow
    /// path that wrote the value itself would rejoin a caller's loop with `pos` known only in
    /// memory, and the loop would reload and store `pos` on every value, a store-to-load
    /// forward on its critical path. This way `pos` stays in a register across the loop.
    #[inline(always)]
    fn write<T: Primitive>(&mut self, value: T, order: ByteOrder) -> Result<()> {
        // `pos <= buf.len()` always: no underflow.
        if self.buf.len() - self.pos < T::SIZE {
            self.grow(T::SIZE)?;
        }
        // Read before the store: the compiler cannot tell that the store through the
        // buffer's pointer leaves `self.pos` alone, and would read it back from memory.
        let pos = self.pos;
        // SAFETY: `[pos, pos + SIZE)` lies inside `buf`'s initialized length (checked, or
        // grown to it).
        unsafe { value.store(self.buf.as_mut_ptr().add(pos), order) };
        self.pos = pos + T::SIZE;
        Ok(())
    }

    fn write_bytes(&mut self, src: &[u8]) -> Result<()> {
        self.reserve(src.len())?;
        self.buf[self.pos..self.pos + src.len()].copy_from_slice(src);
        self.pos += src.len();
        Ok(())
    }

    fn reserve(&mut self, len: usize) -> Result<()> {
        if self.buf.len() - self.pos < len {
            self.grow(len)?;
        }
        Ok(())
    }

    fn skip_bytes_to_write(&mut self, len: usize) -> Result<()> {
        self.reserve(len)?;
        self.pos += len;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grows_on_demand_and_prunes_back() {
        let mut buf = SerializationBuffer::new(4).unwrap();
        buf.write_u32(1).unwrap();
        assert_eq!(buf.capacity(), 4);
        buf.write_u64_le(2).unwrap();
        assert!(buf.capacity() >= 12);
        buf.write_bytes(&[7; 100]).unwrap();
        assert_eq!(buf.len(), 112);
        assert_eq!(buf.as_bytes()[..5], [0, 0, 0, 1, 2]);
        buf.put_at(0, 0xAABBu16, ByteOrder::Big).unwrap();
        assert_eq!(buf.as_bytes()[..4], [0xAA, 0xBB, 0, 1]);
        assert!(buf.put_at(111, 0u16, ByteOrder::Big).is_err());
        buf.prune();
        assert_eq!((buf.len(), buf.capacity()), (0, 4));
        buf.skip_bytes_to_write(3).unwrap();
        buf.clear();
        assert!(buf.is_empty());
        assert_eq!(buf.initial_size(), 4);
    }

    #[test]
    fn a_zero_size_buffer_grows_and_a_huge_request_fails_cleanly() {
        let mut buf = SerializationBuffer::new(0).unwrap();
        buf.write_u8(5).unwrap();
        assert_eq!(buf.to_vec(), [5]);
        assert!(matches!(
            buf.reserve(usize::MAX),
            Err(Error::AllocationFailed { .. })
        ));
        assert!(matches!(
            buf.skip_bytes_to_write(isize::MAX as usize),
            Err(Error::AllocationFailed { .. })
        ));
        assert_eq!(buf.to_vec(), [5]);
    }
}
