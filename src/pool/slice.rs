//! Read-only slices of a buffer: a window of its bytes that shares the buffer's reference
//! count (Flink's `ReadOnlySlicedNetworkBuffer`).

use std::sync::atomic::{AtomicUsize, Ordering};

use super::buffer::Buffer;
use crate::error::{Error, Result};

/// What a [`Buffer`] reference addresses.
pub(crate) enum View {
    /// The whole segment, with the indices kept in the shared slot.
    Whole {
        /// Writes are refused (a consumer's view of a builder's buffer).
        read_only: bool,
    },
    /// A read-only window `[start, start + len)` of the segment, with its own reader index;
    /// its size is its length.
    Slice {
        start: usize,
        len: usize,
        reader: AtomicUsize,
    },
}

impl View {
    pub(crate) fn read_only(&self) -> bool {
        match self {
            View::Whole { read_only } => *read_only,
            View::Slice { .. } => true,
        }
    }

    /// The same view for another reference (a slice's reader index is copied).
    #[inline]
    pub(crate) fn duplicate(&self) -> View {
        match self {
            View::Whole { read_only } => View::Whole {
                read_only: *read_only,
            },
            View::Slice { start, len, reader } => View::Slice {
                start: *start,
                len: *len,
                reader: AtomicUsize::new(reader.load(Ordering::Relaxed)),
            },
        }
    }

    fn start(&self) -> usize {
        match self {
            View::Whole { .. } => 0,
            View::Slice { start, .. } => *start,
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
        Ok(self.share(View::Slice {
            start: self.view.start() + offset,
            len,
            reader: AtomicUsize::new(0),
        }))
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
        self.share(View::Whole { read_only: true })
    }
}
