//! [`InputView`]: one stream of reads across a list of segments, with seek.

use std::ptr::NonNull;

use crate::error::{Error, Result};
use crate::segment::{ByteOrder, Primitive, Region, Segment};

use super::data::{DataInput, end_of_data};

/// Something that holds a segment for an [`InputView`]: the segment itself, or a reference
/// to it.
///
/// # Safety
/// [`segment`](Self::segment) must return the same segment every time it is called on the
/// same value, and that segment must stay alive, unchanged in size and place, for as long as
/// the value lives and is not mutated: the view keeps a pointer to its memory between calls.
pub unsafe trait SegmentRef {
    /// The segment.
    fn segment(&self) -> &Segment;
}

// SAFETY: an owned segment is the same, in the same place, while it lives.
unsafe impl SegmentRef for Segment {
    fn segment(&self) -> &Segment {
        self
    }
}

// SAFETY: a shared reference keeps the segment alive and unchanged.
unsafe impl SegmentRef for &Segment {
    fn segment(&self) -> &Segment {
        self
    }
}

// SAFETY: an exclusive reference keeps the segment alive; the view only reads through it.
unsafe impl SegmentRef for &mut Segment {
    fn segment(&self) -> &Segment {
        self
    }
}

// SAFETY: a box owns the segment; moving the box does not move the segment's memory.
unsafe impl SegmentRef for Box<Segment> {
    fn segment(&self) -> &Segment {
        self
    }
}

/// Reads across a list of segments as if they were one stream (Flink's
/// `AbstractPagedInputView`, seekable as its `RandomAccessInputView`).
///
/// Every segment but the last is read to its end; the last up to the fill given at creation
/// (what [`OutputView`](super::OutputView) reports as `fill_of_last`). Reading past the end
/// is `EndOfData` and consumes nothing. The position is (segment index, offset) or an
/// absolute offset from the start; both can be sought.
///
/// The fast path of a typed read is one compare, one load and one add; only a read that
/// crosses into the next segment takes the out-of-line path.
pub struct InputView<P: SegmentRef = Segment> {
    segments: Vec<P>,
    /// Absolute end of each segment's readable bytes.
    ends: Vec<usize>,
    index: usize,
    /// The current segment's readable bytes.
    region: Region,
    pos: usize,
    /// Absolute offset of the current segment's first byte.
    base: usize,
}

impl<P: SegmentRef> InputView<P> {
    /// A view of `segments`, of which the last holds `fill_of_last` bytes.
    ///
    /// `OutOfBounds` if `fill_of_last` exceeds the last segment's size; `InvalidArgument` for
    /// a fill above zero with no segments.
    pub fn new(segments: Vec<P>, fill_of_last: usize) -> Result<Self> {
        let count = segments.len();
        match segments.last() {
            None if fill_of_last > 0 => {
                return Err(Error::invalid(format!(
                    "an input view of no segments cannot hold {fill_of_last} bytes"
                )));
            }
            Some(last) if fill_of_last > last.segment().size() => {
                return Err(Error::OutOfBounds {
                    offset: fill_of_last,
                    len: 0,
                    size: last.segment().size(),
                });
            }
            _ => {}
        }
        let mut ends = Vec::with_capacity(count);
        let mut end = 0usize;
        for (i, p) in segments.iter().enumerate() {
            let limit = if i + 1 == count {
                fill_of_last
            } else {
                p.segment().size()
            };
            end = end
                .checked_add(limit)
                .ok_or_else(|| Error::invalid("segment sizes overflow"))?;
            ends.push(end);
        }
        let mut view = InputView {
            segments,
            ends,
            index: 0,
            region: empty_region(),
            pos: 0,
            base: 0,
        };
        if count > 0 {
            view.enter(0);
        }
        Ok(view)
    }

    fn limit_of(&self, index: usize) -> usize {
        self.ends[index] - if index == 0 { 0 } else { self.ends[index - 1] }
    }

    /// Makes segment `index` the current one, at offset 0.
    fn enter(&mut self, index: usize) {
        let limit = self.limit_of(index);
        let segment = self.segments[index].segment();
        self.index = index;
        self.base = self.ends[index] - limit;
        let ptr = NonNull::new(segment.as_ptr().cast_mut()).expect("segments are never null");
        // SAFETY: the first `limit <= size` bytes of a segment that `SegmentRef` keeps alive
        // and in place while the view holds it.
        self.region = unsafe { Region::new(ptr, limit) };
        self.pos = 0;
    }

    /// Total bytes the view holds.
    pub fn len(&self) -> usize {
        self.ends.last().copied().unwrap_or(0)
    }

    /// Whether the view holds no bytes.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// (segment index, offset in that segment) of the next byte to read.
    pub fn position(&self) -> (usize, usize) {
        (self.index, self.pos)
    }

    /// The segments, in order.
    pub fn segments(&self) -> &[P] {
        &self.segments
    }

    /// Ends the view, giving back its segments.
    pub fn into_segments(self) -> Vec<P> {
        self.segments
    }

    /// Indices of the segments a read of `len` bytes from the current position touches
    /// (the current one at least, when there is one).
    pub(crate) fn segments_touched(&self, len: usize) -> std::ops::Range<usize> {
        if self.segments.is_empty() {
            return 0..0;
        }
        let last_byte = (self.base + self.pos).saturating_add(len.max(1) - 1);
        let end = self.ends.partition_point(|&e| e <= last_byte) + 1;
        self.index..end.min(self.segments.len())
    }

    /// Moves to offset `offset` of segment `segment`.
    ///
    /// `InvalidArgument` for a segment index beyond the list, `OutOfBounds` for an offset
    /// beyond the segment's readable bytes (an offset equal to them is its end).
    pub fn seek_to(&mut self, segment: usize, offset: usize) -> Result<()> {
        if self.segments.is_empty() && segment == 0 && offset == 0 {
            return Ok(());
        }
        if segment >= self.segments.len() {
            return Err(Error::invalid(format!(
                "segment index {segment} is beyond the view's {} segments",
                self.segments.len()
            )));
        }
        let limit = self.limit_of(segment);
        if offset > limit {
            return Err(Error::OutOfBounds {
                offset,
                len: 0,
                size: limit,
            });
        }
        self.enter(segment);
        self.pos = offset;
        Ok(())
    }

    /// The unread rest of the current segment, to read directly; consume what was read
    /// with [`skip_bytes`](DataInput::skip_bytes). When the current segment is used up the
    /// view first moves to the next one; at the end of the data the window is empty.
    pub fn window(&mut self) -> &[u8] {
        while self.pos == self.region.len() && self.index + 1 < self.segments.len() {
            self.enter(self.index + 1);
        }
        // SAFETY: `[pos, limit)` of the current segment's readable bytes.
        unsafe {
            std::slice::from_raw_parts(
                self.region.as_ptr().add(self.pos),
                self.region.len() - self.pos,
            )
        }
    }

    #[cold]
    #[inline(never)]
    fn read_straddling<T: Primitive>(&mut self, order: ByteOrder) -> Result<T> {
        let mut bytes = [0u8; 8];
        self.read_fully(&mut bytes[..T::SIZE])?;
        // SAFETY: `bytes` holds at least `T::SIZE` readable bytes.
        Ok(unsafe { T::load(bytes.as_ptr(), order) })
    }
}

fn empty_region() -> Region {
    // SAFETY: a region of zero bytes is never read or written.
    unsafe { Region::new(NonNull::dangling(), 0) }
}

impl<P: SegmentRef> DataInput for InputView<P> {
    #[inline(always)]
    fn read<T: Primitive>(&mut self, order: ByteOrder) -> Result<T> {
        let end = self.pos + T::SIZE;
        if end <= self.region.len() {
            // SAFETY: `[pos, end)` lies in the current segment's readable bytes.
            let value = unsafe { T::load(self.region.as_ptr().add(self.pos), order) };
            self.pos = end;
            return Ok(value);
        }
        self.read_straddling(order)
    }

    fn read_fully(&mut self, dst: &mut [u8]) -> Result<()> {
        let available = self.available();
        if available < dst.len() {
            return Err(end_of_data(dst.len(), available));
        }
        let mut done = 0;
        loop {
            let n = (self.region.len() - self.pos).min(dst.len() - done);
            // SAFETY: `[pos, pos + n)` lies in the current segment; `dst[done..]` has room
            // for `n` bytes and, being an exclusive borrow, does not overlap the segment
            // (which the view holds).
            unsafe {
                std::ptr::copy(
                    self.region.as_ptr().add(self.pos),
                    dst.as_mut_ptr().add(done),
                    n,
                )
            };
            self.pos += n;
            done += n;
            if done == dst.len() {
                return Ok(());
            }
            self.enter(self.index + 1);
        }
    }

    fn skip_bytes(&mut self, len: usize) -> Result<()> {
        let available = self.available();
        if available < len {
            return Err(end_of_data(len, available));
        }
        self.seek(self.offset() + len)
    }

    fn available(&self) -> usize {
        self.len() - self.offset()
    }

    fn offset(&self) -> usize {
        self.base + self.pos
    }

    fn seek(&mut self, offset: usize) -> Result<()> {
        let len = self.len();
        if offset > len {
            return Err(Error::OutOfBounds {
                offset,
                len: 0,
                size: len,
            });
        }
        if self.segments.is_empty() {
            return Ok(());
        }
        let index = self
            .ends
            .partition_point(|&e| e <= offset)
            .min(self.segments.len() - 1);
        self.enter(index);
        self.pos = offset - self.base;
        Ok(())
    }
}

impl<P: SegmentRef> std::fmt::Debug for InputView<P> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InputView")
            .field("position", &self.position())
            .field("offset", &self.offset())
            .field("len", &self.len())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn segments(fills: &[&[u8]]) -> Vec<Segment> {
        fills
            .iter()
            .map(|bytes| {
                let mut s = Segment::allocate_heap(bytes.len().max(1)).unwrap();
                s.put_bytes(0, bytes).unwrap();
                s
            })
            .collect()
    }

    #[test]
    fn reads_across_segments_and_stops_at_the_fill_of_the_last() {
        let segs = segments(&[&[0, 0], &[0, 1, 2], &[3, 9, 9]]);
        let mut view = InputView::new(segs.iter().collect(), 1).unwrap();
        assert_eq!(view.len(), 6);
        assert_eq!(view.read_u32(), Ok(1));
        assert_eq!(view.position(), (1, 2));
        assert!(matches!(view.read_u32(), Err(Error::EndOfData(_))));
        assert_eq!(view.offset(), 4, "nothing consumed");
        assert_eq!(view.read_u16(), Ok(0x0203));
        assert!(matches!(view.read_u8(), Err(Error::EndOfData(_))));
        assert_eq!(view.available(), 0);
    }

    #[test]
    fn seek_by_offset_and_by_segment_and_refuse_out_of_range() {
        let mut view = InputView::new(segments(&[&[1, 2], &[3, 4], &[5, 6]]), 2).unwrap();
        view.seek(3).unwrap();
        assert_eq!(view.position(), (1, 1));
        assert_eq!(view.read_u8(), Ok(4));
        view.seek_to(0, 2).unwrap();
        assert_eq!(view.read_u16(), Ok(0x0304));
        view.seek(6).unwrap();
        assert_eq!(view.position(), (2, 2));
        assert!(matches!(
            view.seek(7),
            Err(Error::OutOfBounds { offset: 7, .. })
        ));
        assert!(matches!(view.seek_to(3, 0), Err(Error::InvalidArgument(_))));
        assert!(matches!(view.seek_to(1, 3), Err(Error::OutOfBounds { .. })));
        assert_eq!(view.position(), (2, 2), "failed seeks move nothing");
        view.seek(0).unwrap();
        view.skip_bytes(5).unwrap();
        assert!(matches!(view.skip_bytes(2), Err(Error::EndOfData(_))));
        assert_eq!(view.read_u8(), Ok(6));
        assert_eq!(view.segments_touched(1), 2..3);
        view.seek(0).unwrap();
        assert_eq!(view.segments_touched(3), 0..2);
        assert_eq!(view.segments_touched(100), 0..3);
    }

    #[test]
    fn a_window_is_the_unread_rest_of_the_current_segment() {
        let mut view = InputView::new(segments(&[&[1, 2], &[3, 4, 5], &[6]]), 0).unwrap();
        assert_eq!(view.window(), [1, 2]);
        view.skip_bytes(2).unwrap();
        assert_eq!(view.window(), [3, 4, 5]);
        assert_eq!(view.position(), (1, 0));
        view.skip_bytes(3).unwrap();
        assert_eq!(
            view.window(),
            [] as [u8; 0],
            "the end: the last segment holds nothing"
        );
        assert_eq!(view.position(), (2, 0));
    }

    #[test]
    fn empty_views_and_bad_fills() {
        let mut view: InputView = InputView::new(Vec::new(), 0).unwrap();
        assert!(view.is_empty());
        assert!(matches!(view.read_u8(), Err(Error::EndOfData(_))));
        assert_eq!(view.seek_to(0, 0), Ok(()));
        assert!(InputView::<Segment>::new(Vec::new(), 1).is_err());
        assert!(matches!(
            InputView::new(segments(&[&[1]]), 2),
            Err(Error::OutOfBounds {
                offset: 2,
                len: 0,
                size: 1
            })
        ));
    }
}
