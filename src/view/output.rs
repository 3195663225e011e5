//! [`OutputView`]: one stream of writes across the segments a source hands out.

use std::collections::VecDeque;
use std::ptr::NonNull;

use crate::error::Result;
use crate::segment::{ByteOrder, Primitive, Region, Segment};

use super::data::DataOutput;
use super::input::InputView;
use super::source::SegmentSource;

/// Writes across a sequence of segments as if they were one stream (Flink's
/// `AbstractPagedOutputView`), asking its [`SegmentSource`] for the next segment when the
/// current one is full.
///
/// - Values that straddle a segment boundary are split transparently; every segment but the
///   last is filled to its end.
/// - A write that does not fit in the segments the view holds takes the segments it needs
///   from the source *before* writing anything: if the source runs out, the write fails with
///   the source's error (`OutOfSegments` for a [`FixedSource`](super::FixedSource)), nothing
///   of it is written, and everything written before stays readable. Segments taken for a
///   failed write are kept for the next one.
/// - The position is (segment index, offset in that segment). When a segment is exactly full
///   the position stays at its end until the next write needs the next segment.
///
/// The fast path of a typed write is one compare, one store and one add: no call, no
/// allocation, no dynamic dispatch. Only a write that crosses into the next segment goes
/// through the slower, out-of-line path.
///
/// Dropping the view gives all its segments back to the source, last first; to keep what
/// was written, take the segments with [`into_parts`](Self::into_parts) or
/// [`into_input_view`](Self::into_input_view).
pub struct OutputView<S: SegmentSource> {
    source: S,
    /// The segments written into; the current one is the last.
    segments: Vec<Segment>,
    /// Segments taken from the source ahead of need, in the order they will be used.
    spare: VecDeque<Segment>,
    spare_bytes: usize,
    /// The current segment's memory (empty before the first segment).
    region: Region,
    /// Offset in the current segment.
    pos: usize,
    /// Bytes in the segments before the current one.
    before: usize,
}

fn empty_region() -> Region {
    // SAFETY: a region of zero bytes is never read or written.
    unsafe { Region::new(NonNull::dangling(), 0) }
}

impl<S: SegmentSource> OutputView<S> {
    /// A view that writes into the segments `source` hands out. Takes no segment until the
    /// first write.
    pub fn new(source: S) -> Self {
        OutputView {
            source,
            segments: Vec::new(),
            spare: VecDeque::new(),
            spare_bytes: 0,
            region: empty_region(),
            pos: 0,
            before: 0,
        }
    }

    /// (segment index, offset in that segment) of the next byte to write; `(0, 0)` before
    /// the first write.
    pub fn position(&self) -> (usize, usize) {
        (self.segments.len().saturating_sub(1), self.pos)
    }

    /// Bytes written so far (skipped bytes included).
    pub fn bytes_written(&self) -> usize {
        self.before + self.pos
    }

    /// The segments written into, in order. All but the last are full; the last holds
    /// [`fill_of_last`](Self::fill_of_last) bytes.
    pub fn segments(&self) -> &[Segment] {
        &self.segments
    }

    /// Bytes written into the last segment.
    pub fn fill_of_last(&self) -> usize {
        self.pos
    }

    /// Segments taken from the source but not written into yet.
    pub fn spare_segments(&self) -> usize {
        self.spare.len()
    }

    /// The source.
    pub fn source(&self) -> &S {
        &self.source
    }

    /// The source, for its own operations; segments it has handed out stay with the view.
    pub fn source_mut(&mut self) -> &mut S {
        &mut self.source
    }

    /// Gives every segment back to the source (last first) and starts over at position
    /// `(0, 0)`.
    pub fn reset(&mut self) {
        while let Some(segment) = self.spare.pop_back() {
            self.source.give_back(segment);
        }
        while let Some(segment) = self.segments.pop() {
            self.source.give_back(segment);
        }
        self.spare_bytes = 0;
        self.region = empty_region();
        self.pos = 0;
        self.before = 0;
    }

    /// Ends the view: the segments written into, the fill of the last one, and the source
    /// (which has had the spare segments back).
    pub fn into_parts(mut self) -> (Vec<Segment>, usize, S) {
        while let Some(segment) = self.spare.pop_back() {
            self.source.give_back(segment);
        }
        self.spare_bytes = 0;
        let segments = std::mem::take(&mut self.segments);
        let fill = self.pos;
        self.region = empty_region();
        self.pos = 0;
        self.before = 0;
        let this = std::mem::ManuallyDrop::new(self);
        // SAFETY: `this` is never used or dropped again; every other field is empty or
        // plain data, so reading the source out of it moves it without duplicating anything.
        let source = unsafe { std::ptr::read(&this.source) };
        // The remaining fields own nothing (empty collections) but drop them anyway.
        // SAFETY: as above; each field is read out once.
        unsafe {
            drop(std::ptr::read(&this.spare));
            drop(std::ptr::read(&this.segments));
        }
        (segments, fill, source)
    }

    /// Ends the view and reads what it wrote: an input view over the segments written, and
    /// the source.
    pub fn into_input_view(self) -> (InputView<Segment>, S) {
        let (segments, fill, source) = self.into_parts();
        let view = InputView::new(segments, fill).expect("the fill of the last segment fits it");
        (view, source)
    }

    /// The rest of the current segment, to write into directly (the fast path of a host
    /// that writes with its own code); [`commit`](Self::commit) then says how many of its
    /// bytes were written. When the current segment is full (or there is none yet) the view
    /// first moves to the next one, so the window is never empty; that may fail as a write
    /// does (`OutOfSegments`), changing nothing.
    pub fn window(&mut self) -> Result<&mut [u8]> {
        if self.pos == self.region.len() {
            self.reserve(1)?;
            self.advance();
        }
        let len = self.region.len() - self.pos;
        // SAFETY: `[pos, len)` of the current segment, which the view owns; the borrow of
        // `self` keeps every other access out while the slice lives.
        Ok(unsafe { std::slice::from_raw_parts_mut(self.region.as_ptr().add(self.pos), len) })
    }

    /// Advances the position by `len` bytes written through [`window`](Self::window).
    /// `OutOfBounds` beyond the end of the current segment (nothing moves then).
    pub fn commit(&mut self, len: usize) -> Result<()> {
        self.region.check(self.pos, len)?;
        self.pos += len;
        Ok(())
    }

    /// Moves to the next segment, taken by an earlier `reserve`.
    #[inline]
    fn advance(&mut self) {
        let next = self
            .spare
            .pop_front()
            .expect("reserve took the segments this write needs");
        self.spare_bytes -= next.size();
        self.before += self.region.len();
        self.region = next.region();
        self.segments.push(next);
        self.pos = 0;
    }

    /// Writes a value that does not fit in the rest of the current segment, and returns the
    /// position after it (in the segment that is current then).
    #[cold]
    #[inline(never)]
    fn write_straddling<T: Primitive>(&mut self, value: T, order: ByteOrder) -> Result<usize> {
        let mut bytes = [0u8; 8];
        // SAFETY: `bytes` has room for every primitive (at most 8 bytes).
        unsafe { value.store(bytes.as_mut_ptr(), order) };
        self.write_bytes(&bytes[..T::SIZE])?;
        Ok(self.pos)
    }
}

impl<S: SegmentSource> DataOutput for OutputView<S> {
    /// One bounds check, one store, one add. Both paths end by storing `pos` from a
    /// register (the slow one returns it): a caller's loop then keeps `pos` in a register
    /// instead of reading it back from memory for every value (a store-to-load forward on
    /// the loop's critical path).
    #[inline(always)]
    fn write<T: Primitive>(&mut self, value: T, order: ByteOrder) -> Result<()> {
        let pos = self.pos;
        // `pos <= region.len()` always: no underflow.
        if self.region.len() - pos >= T::SIZE {
            // SAFETY: `[pos, pos + SIZE)` lies in the current segment, which `self.segments`
            // owns.
            unsafe { value.store(self.region.as_ptr().add(pos), order) };
            self.pos = pos + T::SIZE;
        } else {
            self.pos = self.write_straddling(value, order)?;
        }
        Ok(())
    }

    fn write_bytes(&mut self, src: &[u8]) -> Result<()> {
        self.reserve(src.len())?;
        let mut rest = src;
        loop {
            let n = (self.region.len() - self.pos).min(rest.len());
            // SAFETY: `[pos, pos + n)` lies in the current segment; `rest` is readable for
            // `n` bytes; `copy` allows a host to pass memory that overlaps the segment.
            unsafe { std::ptr::copy(rest.as_ptr(), self.region.as_ptr().add(self.pos), n) };
            self.pos += n;
            rest = &rest[n..];
            if rest.is_empty() {
                return Ok(());
            }
            self.advance();
        }
    }

    fn reserve(&mut self, len: usize) -> Result<()> {
        let mut room = (self.region.len() - self.pos).saturating_add(self.spare_bytes);
        while room < len {
            let segment = self.source.next_segment()?;
            room = room.saturating_add(segment.size());
            self.spare_bytes += segment.size();
            self.spare.push_back(segment);
        }
        Ok(())
    }

    fn skip_bytes_to_write(&mut self, len: usize) -> Result<()> {
        self.reserve(len)?;
        let mut rest = len;
        loop {
            let n = (self.region.len() - self.pos).min(rest);
            self.pos += n;
            rest -= n;
            if rest == 0 {
                return Ok(());
            }
            self.advance();
        }
    }
}

impl<S: SegmentSource> Drop for OutputView<S> {
    fn drop(&mut self) {
        self.reset();
    }
}

impl<S: SegmentSource> std::fmt::Debug for OutputView<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OutputView")
            .field("position", &self.position())
            .field("bytes_written", &self.bytes_written())
            .field("spare_segments", &self.spare.len())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Error;
    use crate::view::{DataInput, FixedSource};

    fn source(sizes: &[usize]) -> FixedSource {
        FixedSource::new(sizes.iter().map(|&n| Segment::allocate_heap(n).unwrap()))
    }

    #[test]
    fn values_straddle_segments_and_every_segment_but_the_last_is_full() {
        let mut view = OutputView::new(source(&[3, 5, 7, 16]));
        view.write_u64(0x0102_0304_0506_0708).unwrap();
        assert_eq!(view.position(), (1, 5));
        view.write_u32_le(0xA1B2_C3D4).unwrap();
        assert_eq!(view.position(), (2, 4));
        assert_eq!(view.bytes_written(), 12);
        let seg = view.segments();
        assert_eq!(seg[0].as_slice(), [1, 2, 3]);
        assert_eq!(seg[1].as_slice(), [4, 5, 6, 7, 8]);
        assert_eq!(seg[2].as_slice()[..4], [0xD4, 0xC3, 0xB2, 0xA1]);
        let (mut input, _) = view.into_input_view();
        assert_eq!(input.read_u64(), Ok(0x0102_0304_0506_0708));
        assert_eq!(input.read_u32_le(), Ok(0xA1B2_C3D4));
        assert!(matches!(input.read_u8(), Err(Error::EndOfData(_))));
    }

    #[test]
    fn out_of_segments_writes_nothing_and_keeps_what_was_written() {
        let mut view = OutputView::new(source(&[4, 4]));
        view.write_u32(7).unwrap();
        view.write_u16(9).unwrap();
        assert_eq!(view.position(), (1, 2));
        assert!(matches!(view.write_u32(1), Err(Error::OutOfSegments(_))));
        assert!(matches!(
            view.write_bytes(&[1, 2, 3]),
            Err(Error::OutOfSegments(_))
        ));
        assert!(matches!(
            view.write_utf("abc"),
            Err(Error::OutOfSegments(_))
        ));
        assert_eq!(view.position(), (1, 2));
        view.write_u16(0xFFFF).unwrap();
        assert!(matches!(view.write_u8(1), Err(Error::OutOfSegments(_))));
        let (segments, fill, _) = view.into_parts();
        assert_eq!(fill, 4);
        assert_eq!(segments[1].as_slice(), [0, 9, 0xFF, 0xFF]);
    }

    #[test]
    fn segments_taken_for_a_failed_write_serve_the_next_and_go_back_at_the_end() {
        let mut view = OutputView::new(source(&[2, 2, 2]));
        assert!(view.write_bytes(&[0; 7]).is_err());
        assert_eq!((view.position(), view.spare_segments()), ((0, 0), 3));
        view.write_u32(0x0A0B_0C0D).unwrap();
        assert_eq!(view.spare_segments(), 1);
        let (segments, fill, source) = view.into_parts();
        assert_eq!((segments.len(), fill, source.remaining()), (2, 2, 1));
    }

    #[test]
    fn a_string_too_long_is_refused_before_anything_is_taken() {
        let mut view = OutputView::new(source(&[1 << 17]));
        let long = "\u{800}".repeat(21846); // 65538 encoded bytes
        assert!(matches!(
            view.write_utf(&long),
            Err(Error::InvalidArgument(_))
        ));
        assert_eq!(view.segments().len(), 0);
        let max = "a".repeat(65535);
        view.write_utf(&max).unwrap();
        assert_eq!(view.bytes_written(), 65537);
    }

    #[test]
    fn a_window_is_the_rest_of_the_current_segment_and_commit_advances() {
        let mut view = OutputView::new(source(&[4, 3]));
        let window = view.window().unwrap();
        assert_eq!(window.len(), 4);
        window[..2].copy_from_slice(&[7, 8]);
        view.commit(2).unwrap();
        assert!(matches!(view.commit(3), Err(Error::OutOfBounds { .. })));
        view.write_u16(0x090A).unwrap();
        assert_eq!(view.window().unwrap().len(), 3, "moved to the next segment");
        assert_eq!(view.position(), (1, 0));
        view.commit(3).unwrap();
        assert!(matches!(view.window(), Err(Error::OutOfSegments(_))));
        assert_eq!(view.segments()[0].as_slice(), [7, 8, 9, 10]);
    }

    #[test]
    fn skip_reset_and_drop_give_the_segments_back_in_order() {
        let mut fixed = source(&[2, 3, 4]);
        let mut view = OutputView::new(&mut fixed);
        view.skip_bytes_to_write(6).unwrap();
        assert_eq!(view.position(), (2, 1));
        view.reset();
        assert_eq!(view.position(), (0, 0));
        view.write_u8(1).unwrap();
        assert_eq!(view.segments()[0].size(), 2, "the first segment again");
        drop(view);
        let sizes: Vec<usize> = fixed.into_segments().iter().map(Segment::size).collect();
        assert_eq!(sizes, [2, 3, 4]);
    }
}
