//! Where an output view gets its pages: the [`SegmentSource`] trait and the sources of this
//! layer.
//!
//! The trait is deliberately small so that the layers below (a memory manager's lease, a
//! local buffer pool) can be sources too: they implement it on their own types, handing out
//! the `Segment`s they own and taking them back.

use std::collections::VecDeque;

use crate::error::{Error, Result};
use crate::segment::Segment;

/// Gives an [`OutputView`](super::OutputView) the segments it writes into, and takes back
/// those it no longer needs.
///
/// Contract:
/// - [`next_segment`](Self::next_segment) hands out one segment the view then owns, or fails
///   (`OutOfSegments`, `BudgetExhausted`, `WouldBlock`, …) without side effects; the view
///   passes the error on and stays usable, with everything written so far intact.
/// - [`give_back`](Self::give_back) returns a segment the view got from this source and no
///   longer uses (on [`OutputView::reset`](super::OutputView::reset) and
///   [`OutputView::into_parts`](super::OutputView::into_parts), for segments taken ahead of
///   need). A view gives segments back **last first**, so a source that pushes them to the
///   front of its queue hands them out again in their original order. It cannot fail: a
///   source that cannot keep a segment drops it.
///
/// Segments need not all have the same size. The view calls the source only when a write
/// does not fit in the segments it holds — never on the per-value fast path — so the source
/// may take a lock or allocate.
pub trait SegmentSource {
    /// The next segment to write into.
    fn next_segment(&mut self) -> Result<Segment>;

    /// Takes back a segment that came from [`next_segment`](Self::next_segment).
    fn give_back(&mut self, segment: Segment);
}

impl<S: SegmentSource + ?Sized> SegmentSource for &mut S {
    fn next_segment(&mut self) -> Result<Segment> {
        (**self).next_segment()
    }

    fn give_back(&mut self, segment: Segment) {
        (**self).give_back(segment)
    }
}

impl<S: SegmentSource + ?Sized> SegmentSource for Box<S> {
    fn next_segment(&mut self) -> Result<Segment> {
        (**self).next_segment()
    }

    fn give_back(&mut self, segment: Segment) {
        (**self).give_back(segment)
    }
}

/// A fixed list of segments, handed out in order; once they are used up, `OutOfSegments`.
#[derive(Debug, Default)]
pub struct FixedSource {
    segments: VecDeque<Segment>,
    handed_out: usize,
}

impl FixedSource {
    /// A source of exactly these segments, first to last.
    pub fn new(segments: impl IntoIterator<Item = Segment>) -> Self {
        FixedSource {
            segments: segments.into_iter().collect(),
            handed_out: 0,
        }
    }

    /// Segments not handed out yet.
    pub fn remaining(&self) -> usize {
        self.segments.len()
    }

    /// The segments not handed out (or given back), in order.
    pub fn into_segments(self) -> Vec<Segment> {
        self.segments.into()
    }
}

impl SegmentSource for FixedSource {
    fn next_segment(&mut self) -> Result<Segment> {
        match self.segments.pop_front() {
            Some(segment) => {
                self.handed_out += 1;
                Ok(segment)
            }
            None => Err(Error::OutOfSegments(format!(
                "the fixed list of segments is used up ({} handed out)",
                self.handed_out
            ))),
        }
    }

    fn give_back(&mut self, segment: Segment) {
        self.handed_out = self.handed_out.saturating_sub(1);
        self.segments.push_front(segment);
    }
}

/// Fresh zero-filled heap segments of one size, at most `max_segments` out at a time;
/// segments given back are reused.
#[derive(Debug)]
pub struct HeapSource {
    segment_size: usize,
    max_segments: usize,
    out: usize,
    free: Vec<Segment>,
}

impl HeapSource {
    /// A source of heap segments of `segment_size` bytes, at most `max_segments` out at once.
    /// `InvalidArgument` for a segment size of zero.
    pub fn new(segment_size: usize, max_segments: usize) -> Result<Self> {
        if segment_size == 0 {
            return Err(Error::invalid(
                "a heap source needs a segment size above zero",
            ));
        }
        Ok(HeapSource {
            segment_size,
            max_segments,
            out: 0,
            free: Vec::new(),
        })
    }
}

impl SegmentSource for HeapSource {
    fn next_segment(&mut self) -> Result<Segment> {
        if self.out == self.max_segments {
            return Err(Error::OutOfSegments(format!(
                "the heap source's limit of {} segments of {} bytes is reached",
                self.max_segments, self.segment_size
            )));
        }
        let segment = match self.free.pop() {
            Some(segment) => segment,
            None => Segment::allocate_heap(self.segment_size)?,
        };
        self.out += 1;
        Ok(segment)
    }

    fn give_back(&mut self, segment: Segment) {
        self.out = self.out.saturating_sub(1);
        if segment.size() == self.segment_size {
            self.free.push(segment);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fixed_source_hands_out_its_list_then_runs_out_and_takes_back_to_the_front() {
        let mut source = FixedSource::new([8, 16].map(|n| Segment::allocate_heap(n).unwrap()));
        let a = source.next_segment().unwrap();
        let b = source.next_segment().unwrap();
        assert_eq!((a.size(), b.size()), (8, 16));
        assert!(
            matches!(source.next_segment(), Err(Error::OutOfSegments(m)) if m.contains("2 handed out"))
        );
        source.give_back(b);
        source.give_back(a);
        assert_eq!(source.remaining(), 2);
        let sizes: Vec<usize> = source.into_segments().iter().map(Segment::size).collect();
        assert_eq!(sizes, [8, 16]);
    }

    #[test]
    fn a_heap_source_stops_at_its_limit_and_reuses_what_comes_back() {
        assert!(HeapSource::new(0, 1).is_err());
        let mut source = HeapSource::new(32, 1).unwrap();
        let a = source.next_segment().unwrap();
        let address = a.as_ptr();
        assert!(matches!(
            source.next_segment(),
            Err(Error::OutOfSegments(_))
        ));
        source.give_back(a);
        assert_eq!(source.next_segment().unwrap().as_ptr(), address);
    }
}
