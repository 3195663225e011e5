//! Merging sorted runs: one reader per run, with pages read ahead on a thread when it has more
//! than one, and a tree of losers (Knuth's replacement selection) over the readers' current
//! records: the next record is at the root, and after it is taken only the matches on the
//! path from its run's leaf to the root are played again, one comparison per level.

use std::cmp::Ordering;

use super::key::KeyConfig;
use crate::error::{Error, Result};
use crate::io::{ReadAhead, Run, RunReader};
use crate::segment::Segment;

/// A k-way merge of runs; each record is returned as a slice of its run's read page (or, for
/// one that spans blocks, of its reader's scratch), valid until the next call.
pub struct Merger {
    /// Per run, its reader until the run is read to its end. (Declared before `read_ahead`,
    /// so that they are dropped before the thread is waited for.)
    readers: Vec<Option<RunReader>>,
    /// `tree[0]` is the run whose record comes next; `tree[1..k]` the runs that lost the
    /// match at each inner node (the leaf of run `i` is node `k + i`, the parent of node `n`
    /// is `n / 2`).
    tree: Vec<usize>,
    /// Per run, the first bytes of its current record's key as a big-endian number, so that
    /// most comparisons are one integer comparison; `u64::MAX` for a run read to its end.
    cached: Vec<u64>,
    /// Key bytes in `cached` (at most 8, and no more than the prefix with a host comparison).
    cache_len: usize,
    /// Whether equal cached bytes mean equal keys.
    cache_decides: bool,
    key: KeyConfig,
    advance_top: bool,
    open: usize,
    pages_per_run: usize,
    free_pages: Vec<Segment>,
    read_ahead: Option<ReadAhead>,
}

impl Merger {
    /// Merges `runs`, reading each through `pages_per_run` of `pages` (no fewer than that many
    /// per run; the rest are kept unused). With more than one page per run, a thread reads
    /// each run's next blocks into its other pages while the merge works on one.
    pub fn new(
        runs: Vec<Run>,
        pages: Vec<Segment>,
        key: KeyConfig,
        pages_per_run: usize,
    ) -> Result<Self> {
        let pages_per_run = pages_per_run.max(1);
        let needed = runs.len().saturating_mul(pages_per_run);
        if pages.len() < needed {
            return Err(Error::BudgetExhausted(format!(
                "merging {} runs through {pages_per_run} pages each needs {needed} pages, {} given",
                runs.len(),
                pages.len()
            )));
        }
        let cache_len = if key.compare.is_some() {
            key.prefix_length.min(8)
        } else {
            key.key_length.min(8)
        };
        let read_ahead = if pages_per_run > 1 && !runs.is_empty() {
            Some(ReadAhead::start()?)
        } else {
            None
        };
        let k = runs.len();
        let mut pages = pages;
        let mut merger = Merger {
            readers: Vec::with_capacity(k),
            tree: vec![0; k.max(1)],
            cached: vec![u64::MAX; k],
            cache_len,
            cache_decides: key.compare.is_none() && key.key_length <= 8,
            key,
            advance_top: false,
            open: 0,
            pages_per_run,
            free_pages: Vec::new(),
            read_ahead,
        };
        for run in runs {
            let own = pages.split_off(pages.len() - pages_per_run);
            let reader = match &merger.read_ahead {
                Some(read_ahead) => RunReader::with_read_ahead(run, own, read_ahead)?,
                None => RunReader::new(run, own.into_iter().next().expect("one page"))?,
            };
            merger.readers.push(Some(reader));
        }
        merger.free_pages = pages;
        for i in 0..k {
            merger.open += usize::from(merger.step(i)?);
        }
        if k > 1 {
            merger.tree[0] = merger.build(1);
        }
        Ok(merger)
    }

    /// Moves run `i` to its next record and returns `true`, or retires it at its end.
    fn step(&mut self, i: usize) -> Result<bool> {
        let reader = self.readers[i]
            .as_mut()
            .expect("only live runs are stepped");
        if reader.advance()? {
            self.cache(i);
            return Ok(true);
        }
        self.retire(i);
        self.cached[i] = u64::MAX;
        Ok(false)
    }

    /// Plays the matches below inner node `node`; returns their winner.
    fn build(&mut self, node: usize) -> usize {
        let k = self.readers.len();
        if node >= k {
            return node - k;
        }
        let (a, b) = (self.build(2 * node), self.build(2 * node + 1));
        let (winner, loser) = if self.beats(a, b) { (a, b) } else { (b, a) };
        self.tree[node] = loser;
        winner
    }

    /// Plays again the matches on the path of run `w`, whose record changed.
    #[inline]
    fn replay(&mut self, mut w: usize) {
        let mut node = (w + self.readers.len()) / 2;
        while node > 0 {
            let other = self.tree[node];
            if self.beats(other, w) {
                self.tree[node] = w;
                w = other;
            }
            node /= 2;
        }
        self.tree[0] = w;
    }

    fn current(&self, i: usize) -> &[u8] {
        self.readers[i]
            .as_ref()
            .expect("a run with a record is live")
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
            self.free_pages.extend(reader.into_pages());
        }
    }

    /// Whether run `a`'s record comes before run `b`'s (a run at its end comes after all).
    #[inline(always)]
    fn beats(&self, a: usize, b: usize) -> bool {
        let (ca, cb) = (self.cached[a], self.cached[b]);
        if ca != cb {
            return ca < cb;
        }
        self.beats_tied(a, b)
    }

    fn beats_tied(&self, a: usize, b: usize) -> bool {
        match (&self.readers[a], &self.readers[b]) {
            (None, _) => false,
            (Some(_), None) => true,
            (Some(ra), Some(rb)) => {
                let order = if self.cache_decides {
                    Ordering::Equal
                } else {
                    self.key.compare_records(ra.current(), rb.current())
                };
                match order {
                    Ordering::Less => true,
                    Ordering::Equal => a < b,
                    Ordering::Greater => false,
                }
            }
        }
    }

    /// Runs still being read.
    pub fn open_runs(&self) -> usize {
        self.open
    }

    /// Pages each run is read through.
    pub fn pages_per_run(&self) -> usize {
        self.pages_per_run
    }

    /// The next record in key order, or `None` at the end.
    pub fn next_record(&mut self) -> Result<Option<&[u8]>> {
        if self.advance_top {
            let top = self.tree[0];
            if !self.step(top)? {
                self.open -= 1;
            }
            self.replay(top);
        }
        if self.open == 0 {
            self.advance_top = false;
            return Ok(None);
        }
        self.advance_top = true;
        Ok(Some(self.current(self.tree[0])))
    }

    /// The record the last [`next_record`](Self::next_record) returned, if any.
    pub fn current_record(&self) -> Result<Option<&[u8]>> {
        Ok((self.advance_top && self.open > 0).then(|| self.current(self.tree[0])))
    }

    /// Ends the merge and gives every page back (the runs' files are removed).
    pub fn into_pages(mut self) -> Vec<Segment> {
        for i in 0..self.readers.len() {
            self.retire(i);
        }
        std::mem::take(&mut self.free_pages)
    }
}
