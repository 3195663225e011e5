//! Merging sorted runs: one reader (and one read page) per run, and a binary heap of the
//! readers ordered by their current record.

use std::cmp::Ordering;

use super::key::KeyConfig;
use crate::error::{Error, Result};
use crate::io::{Run, RunReader};
use crate::segment::Segment;

/// A k-way merge of runs; each record is returned as a slice of its run's read page (or, for
/// one that spans blocks, of its reader's scratch), valid until the next call.
pub struct Merger {
    readers: Vec<Option<RunReader>>,
    heap: Vec<usize>,
    /// Per reader, the first bytes of its current record's key as a big-endian number, so
    /// that most comparisons are one integer comparison.
    cached: Vec<u64>,
    /// Key bytes in `cached` (at most 8, and no more than the prefix with a host comparison).
    cache_len: usize,
    /// Whether equal cached bytes mean equal keys.
    cache_decides: bool,
    key: KeyConfig,
    advance_top: bool,
    free_pages: Vec<Segment>,
}

impl Merger {
    /// Merges `runs`, reading each through one of `pages` (one page per run, no fewer).
    pub fn new(runs: Vec<Run>, pages: Vec<Segment>, key: KeyConfig) -> Result<Self> {
        if pages.len() < runs.len() {
            return Err(Error::BudgetExhausted(format!(
                "merging {} runs needs a read page per run, {} given",
                runs.len(),
                pages.len()
            )));
        }
        let mut pages = pages;
        let cache_len = if key.compare.is_some() {
            key.prefix_length.min(8)
        } else {
            key.key_length.min(8)
        };
        let mut merger = Merger {
            readers: Vec::with_capacity(runs.len()),
            heap: Vec::with_capacity(runs.len()),
            cached: vec![0; runs.len()],
            cache_len,
            cache_decides: key.compare.is_none() && key.key_length <= 8,
            key,
            advance_top: false,
            free_pages: Vec::new(),
        };
        for run in runs {
            let page = pages.pop().expect("counted above");
            merger.readers.push(Some(RunReader::new(run, page)?));
        }
        merger.free_pages = pages;
        for i in 0..merger.readers.len() {
            if merger.reader(i).advance()? {
                merger.cache(i);
                merger.heap.push(i);
                let last = merger.heap.len() - 1;
                merger.sift_up(last);
            } else {
                merger.retire(i);
            }
        }
        Ok(merger)
    }

    fn reader(&mut self, i: usize) -> &mut RunReader {
        self.readers[i]
            .as_mut()
            .expect("a reader in the heap is live")
    }

    fn current(&self, i: usize) -> &[u8] {
        self.readers[i]
            .as_ref()
            .expect("a reader in the heap is live")
            .current()
    }

    #[inline]
    fn cache(&mut self, i: usize) {
        let from = self.key.key_offset;
        let mut bytes = [0u8; 8];
        bytes[..self.cache_len].copy_from_slice(&self.current(i)[from..from + self.cache_len]);
        self.cached[i] = u64::from_be_bytes(bytes);
    }

    fn retire(&mut self, i: usize) {
        if let Some(reader) = self.readers[i].take() {
            self.free_pages.push(reader.into_page());
        }
    }

    #[inline]
    fn less(&self, a: usize, b: usize) -> bool {
        let (ia, ib) = (self.heap[a], self.heap[b]);
        let order = match self.cached[ia].cmp(&self.cached[ib]) {
            Ordering::Equal if !self.cache_decides => {
                self.key.compare_records(self.current(ia), self.current(ib))
            }
            order => order,
        };
        match order {
            Ordering::Less => true,
            Ordering::Equal => ia < ib,
            Ordering::Greater => false,
        }
    }

    fn sift_up(&mut self, mut i: usize) {
        while i > 0 {
            let parent = (i - 1) / 2;
            if !self.less(i, parent) {
                return;
            }
            self.heap.swap(i, parent);
            i = parent;
        }
    }

    fn sift_down(&mut self, mut i: usize) {
        let n = self.heap.len();
        loop {
            let mut child = 2 * i + 1;
            if child >= n {
                return;
            }
            if child + 1 < n && self.less(child + 1, child) {
                child += 1;
            }
            if !self.less(child, i) {
                return;
            }
            self.heap.swap(i, child);
            i = child;
        }
    }

    /// Runs still being read.
    pub fn open_runs(&self) -> usize {
        self.heap.len()
    }

    /// The next record in key order, or `None` at the end.
    pub fn next_record(&mut self) -> Result<Option<&[u8]>> {
        if self.advance_top {
            self.advance_top = false;
            let top = self.heap[0];
            if self.reader(top).advance()? {
                self.cache(top);
            } else {
                self.retire(top);
                let last = self.heap.pop().expect("the top was in the heap");
                if self.heap.is_empty() {
                    return Ok(None);
                }
                self.heap[0] = last;
            }
            self.sift_down(0);
        }
        if self.heap.is_empty() {
            return Ok(None);
        }
        self.advance_top = true;
        Ok(Some(self.current(self.heap[0])))
    }

    /// The record the last [`next_record`](Self::next_record) returned, if any.
    pub fn current_record(&self) -> Result<Option<&[u8]>> {
        Ok(self.heap.first().map(|&i| self.current(i)))
    }

    /// Ends the merge and gives every page back (the runs' files are removed).
    pub fn into_pages(mut self) -> Vec<Segment> {
        for i in 0..self.readers.len() {
            self.retire(i);
        }
        self.free_pages
    }
}
