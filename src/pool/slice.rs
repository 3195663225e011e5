//! Read-only slices of a buffer: a window of its bytes that shares the buffer's reference
//! count (Flink's `ReadOnlySlicedNetworkBuffer`). The window lives in a small heap box, so
//! that a reference to a whole buffer (the common case) is two words; making a slice, or
//! retaining one, allocates it.

use std::sync::atomic::{AtomicUsize, Ordering};

use super::buffer::Buffer;
use crate::error::{Error, Result};

/// The bit of a [`Buffer`]'s slot address that says writes through it are refused (slices, a
/// consumer's view); slots are aligned, so the bit is free.
pub(crate) const READ_ONLY: usize = 1;

/// A slice's window `[start, start + len)` of the segment, with its own reader index (its size
/// is its length). A reference to the whole buffer has none: its indices are in the shared
/// slot.
pub(crate) struct Window {
    pub(crate) start: usize,
    pub(crate) len: usize,
    pub(crate) reader: AtomicUsize,
}

impl Window {
    /// The same window for another reference (a slice's reader index is copied).
    pub(crate) fn duplicate(&self) -> Window {
        Window {
            start: self.start,
            len: self.len,
            reader: AtomicUsize::new(self.reader.load(Ordering::Relaxed)),
        }
    }
}

impl Buffer {
    /// A read-only slice of `len` bytes at `offset` of this reference's written bytes (offset
    /// and length relative to this reference; `offset + len <= size()`). The slice shares the
    /// reference count: the segment is recycled when the buffer and all its slices are gone.
    /// Writing through it fails with [`Error::ReadOnly`].
    pub fn read_only_slice(&self, offset: usize, len: usize) -> Result<Buffer> {
        let size = self.size();
        match offset.checked_add(len) {
            Some(end) if end <= size => {}
            _ => return Err(Error::OutOfBounds { offset, len, size }),
        }
        let base = self.window.as_ref().map_or(0, |w| w.start);
        Ok(self.share(
            true,
            Some(Box::new(Window {
                start: base + offset,
                len,
                reader: AtomicUsize::new(0),
            })),
        ))
    }

    /// A read-only slice of the readable bytes, from the reader index to the size (Flink's
    /// `readOnlySlice()`).
    pub fn readable_slice(&self) -> Buffer {
        let reader = self.reader_index();
        let size = self.size().max(reader);
        self.read_only_slice(reader, size - reader)
            .expect("the readable bytes lie inside the buffer")
    }

    /// A read-only reference to the whole buffer, sharing the indices and the count.
    pub(crate) fn read_only_whole(&self) -> Buffer {
        debug_assert!(
            self.window.is_none(),
            "a whole view is made of a whole view"
        );
        self.share(true, None)
    }
}
