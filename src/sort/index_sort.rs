//! In-place sort of index entries that lie in several pages.
//!
//! An index entry is the key prefix (`prefix` bytes) followed by the record's pointer (a
//! native `u64`: record page << 32 | offset). Entries are sorted where they are, across page
//! boundaries, by an MSD radix sort on the prefix bytes: count a byte (the buffer counts the
//! first one as records come in), permute the range into its 256 buckets in place, and sort
//! each bucket on the next byte. The permutation uses ska_sort's swap rounds, whose swaps do
//! not wait on one another's loads, and prefetches each bucket's write head. Small ranges that
//! lie in one page are one contiguous array and go to the standard library's unstable sort,
//! on the prefixes alone, then each run of tied prefixes on its records if the key needs them;
//! other small ranges to an introsort (Hoare partition, median of three, insertion sort,
//! heapsort past a depth limit). Ranges whose whole prefixes are equal but whose keys need the
//! records to decide (the rest of the key, or the host's comparison) are sorted by comparison.
//! Nothing is allocated: the radix sort recurses once per prefix byte at most, with 2 KiB of
//! counters per level on the stack.

use std::cell::RefCell;
use std::cmp::Ordering;
use std::ptr;

use super::key::{KeyConfig, MAX_PREFIX};
use super::record_area::{RecordArea, RecordRef};

/// Bytes of the record pointer in an entry.
pub(crate) const POINTER: usize = 8;
const MAX_ENTRY: usize = MAX_PREFIX + POINTER;
/// Ranges shorter than this are sorted by comparisons instead of by a radix pass.
const RADIX_MIN: usize = 64;
/// How many entries ahead of a bucket's write head the permutation prefetches.
const PREFETCH_AHEAD: usize = 32;
/// Ranges shorter than this that lie in one page are sorted as a slice by the standard library.
const SLICE_SORT_MAX: usize = 1024;
/// Ranges shorter than this are insertion-sorted.
const INSERTION_MAX: usize = 16;

/// Asks the CPU to bring the cache line at `p` in; a hint with no effect on the program.
#[inline(always)]
pub(crate) fn prefetch(p: *const u8) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: a prefetch never faults and has no effect on memory, whatever the address.
    unsafe {
        std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(p.cast())
    };
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}

/// The first eight bytes of an entry (its prefix, when that is eight bytes) as a number that
/// orders as the bytes do.
#[inline(always)]
fn prefix_word<const ES: usize>(entry: &[u8; ES]) -> u64 {
    u64::from_be_bytes(
        entry[..8]
            .try_into()
            .expect("entries hold a pointer of eight bytes"),
    )
}

/// The index pages and record pages of a buffer, seen as one array of entries.
pub(crate) struct Entries<'k, const ES: usize> {
    pub(crate) index: Vec<*mut u8>,
    pub(crate) records: RecordArea<'k>,
    pub(crate) entry_size: usize,
    pub(crate) per_page: usize,
    /// `log2(per_page)` when `per_page` is a power of two, else `u32::MAX`.
    pub(crate) shift: u32,
    pub(crate) key: &'k KeyConfig,
    /// Where two records that straddle pages are put together to be compared. Held by
    /// reference, not in place: a struct with a cell inside is one that `&self` does not
    /// promise to keep unchanged, so the compiler would reload every field (the page table,
    /// the shift) after each swap through the index pointers, in the hottest loops.
    pub(crate) scratch: &'k RefCell<(Vec<u8>, Vec<u8>)>,
}

impl<const ES: usize> Entries<'_, ES> {
    #[inline(always)]
    fn es(&self) -> usize {
        if ES != 0 { ES } else { self.entry_size }
    }

    #[inline(always)]
    fn prefix(&self) -> usize {
        self.es() - POINTER
    }

    #[inline(always)]
    fn at(&self, i: usize) -> *mut u8 {
        let (page, slot) = if self.shift != u32::MAX {
            (i >> self.shift, i & ((1 << self.shift) - 1))
        } else {
            (i / self.per_page, i % self.per_page)
        };
        // SAFETY: callers pass `i < count`, whose entry lies inside index page `page`.
        unsafe { self.index.get_unchecked(page).add(slot * self.es()) }
    }

    #[inline(always)]
    fn byte(&self, i: usize, depth: usize) -> u8 {
        // SAFETY: `depth < prefix`, inside the entry.
        unsafe { *self.at(i).add(depth) }
    }

    #[inline(always)]
    fn swap(&self, i: usize, j: usize) {
        if i != j {
            // SAFETY: distinct entries never overlap.
            unsafe { ptr::swap_nonoverlapping(self.at(i), self.at(j), self.es()) }
        }
    }

    /// The record of the entry at `e`.
    #[inline(always)]
    fn record(&self, e: *const u8) -> RecordRef<'_> {
        // SAFETY: `e` is an entry (or a copy of one) of `es` bytes, its pointer after the prefix.
        let pointer = unsafe { ptr::read_unaligned(e.add(self.prefix()).cast::<u64>()) };
        self.records.get(pointer)
    }

    /// Order of the records of two entries whose prefixes are equal. Out of line: ties are
    /// rare where the prefix is well chosen, and the comparison loops stay small without it.
    #[cold]
    #[inline(never)]
    fn cmp_tied(&self, a: *const u8, b: *const u8) -> Ordering {
        let (ra, rb) = (self.record(a), self.record(b));
        match (ra.as_slice(), rb.as_slice()) {
            (Some(x), Some(y)) => self.key.compare_tied(x, y),
            _ => self.cmp_tied_straddling(ra, rb),
        }
    }

    /// As [`cmp_tied`](Self::cmp_tied) for records of which one at least straddles pages:
    /// both are copied into the scratch, whole for the host's comparison, else up to the key's
    /// end.
    #[cold]
    fn cmp_tied_straddling(&self, a: RecordRef<'_>, b: RecordRef<'_>) -> Ordering {
        let upto = if self.key.compare.is_some() {
            usize::MAX
        } else {
            self.key.min_record_len()
        };
        let mut scratch = self.scratch.borrow_mut();
        let (x, y) = &mut *scratch;
        a.copy_prefix_into(upto, x);
        b.copy_prefix_into(upto, y);
        self.key.compare_tied(x, y)
    }

    /// Order of two entries whose prefixes agree before `depth`.
    #[inline(always)]
    fn cmp(&self, a: *const u8, b: *const u8, depth: usize) -> Ordering {
        let p = self.prefix();
        let order = if p == 8 {
            // The bytes before `depth` are equal, so comparing whole prefixes is the same,
            // and one big-endian load compares all eight.
            // SAFETY: both are entries with an 8-byte prefix.
            let (x, y) = unsafe {
                (
                    u64::from_be(ptr::read_unaligned(a.cast::<u64>())),
                    u64::from_be(ptr::read_unaligned(b.cast::<u64>())),
                )
            };
            x.cmp(&y)
        } else {
            // SAFETY: both are entries of `es` bytes.
            let (pa, pb) = unsafe {
                (
                    std::slice::from_raw_parts(a.add(depth), p - depth),
                    std::slice::from_raw_parts(b.add(depth), p - depth),
                )
            };
            pa.cmp(pb)
        };
        match order {
            Ordering::Equal if self.key.needs_full_compare() => self.cmp_tied(a, b),
            order => order,
        }
    }

    /// Sorts entries `[0, count)`. `first_bytes`, if given, counts the entries by the first
    /// byte of their prefix (the buffer keeps it as records come in), which saves the first
    /// counting pass.
    pub(crate) fn sort(&self, count: usize, first_bytes: Option<&[u32; 256]>) {
        match first_bytes {
            Some(counts) if self.prefix() > 0 && count >= RADIX_MIN => {
                let mut bounds = [0usize; 257];
                for b in 0..256 {
                    bounds[b + 1] = bounds[b] + counts[b] as usize;
                }
                debug_assert_eq!(bounds[256], count);
                self.radix_with(0, count, 0, Some(bounds));
            }
            _ => self.radix_with(0, count, 0, None),
        }
    }

    fn radix(&self, lo: usize, hi: usize, depth: usize) {
        self.radix_with(lo, hi, depth, None);
    }

    fn radix_with(&self, lo: usize, hi: usize, mut depth: usize, mut known: Option<[usize; 257]>) {
        loop {
            let n = hi - lo;
            if n < 2 {
                return;
            }
            if depth == self.prefix() {
                if self.key.needs_full_compare() {
                    self.quick(lo, hi, depth);
                }
                return;
            }
            if n < SLICE_SORT_MAX && ES != 0 && self.same_page(lo, hi - 1) {
                self.sort_in_page(lo, hi);
                return;
            }
            if n < RADIX_MIN {
                self.quick(lo, hi, depth);
                return;
            }
            let bounds = match known.take() {
                Some(bounds) => bounds,
                None => self.count_buckets(lo, hi, depth),
            };
            if bounds.windows(2).any(|w| w[1] - w[0] == n) {
                depth += 1; // one bucket holds everything: nothing to move at this byte
                continue;
            }
            self.permute(&bounds, depth);
            for b in 0..256 {
                if bounds[b + 1] - bounds[b] > 1 {
                    self.radix(bounds[b], bounds[b + 1], depth + 1);
                }
            }
            return;
        }
    }

    fn same_page(&self, i: usize, j: usize) -> bool {
        if self.shift != u32::MAX {
            i >> self.shift == j >> self.shift
        } else {
            i / self.per_page == j / self.per_page
        }
    }

    /// Sorts `[lo, hi)`, which lie in one page and so are one contiguous array of `ES`-byte
    /// entries, with the standard library's in-place unstable sort: on the prefixes alone,
    /// then, where the key needs the records, each run of tied prefixes on its records.
    ///
    /// The prefix sort's comparison is a load and a compare, which the standard library's
    /// small sort inlines whole. With the call to the records' comparison behind it, even
    /// out of line and never taken, its merge and four-element sort stayed separate calls,
    /// and the ranges took about 30% more time on keys that never tie.
    fn sort_in_page(&self, lo: usize, hi: usize) {
        // SAFETY: `ES != 0` is the entry size; entries `lo..hi` are contiguous in one page
        // (checked by the caller), `[u8; ES]` has alignment 1, and nothing else accesses them
        // during the sort.
        let entries =
            unsafe { std::slice::from_raw_parts_mut(self.at(lo).cast::<[u8; ES]>(), hi - lo) };
        let p = self.prefix();
        // Whole prefixes order the range (their bytes before the radix depth are equal), and
        // a length known at compile time makes the comparison a few loads.
        if p == 8 {
            entries.sort_unstable_by_key(prefix_word);
        } else {
            entries.sort_unstable_by(|a, b| a[..p].cmp(&b[..p]));
        }
        if self.key.needs_full_compare() {
            self.sort_tied_runs(entries);
        }
    }

    /// Sorts each run of entries with equal prefixes in `entries` (sorted by prefix) by their
    /// records. Out of line: runs are rare where the prefix is well chosen.
    #[inline(never)]
    fn sort_tied_runs(&self, entries: &mut [[u8; ES]]) {
        let p = self.prefix();
        let tied = |a: &[u8; ES], b: &[u8; ES]| a[..p] == b[..p];
        let mut from = 0;
        while let Some(at) = entries[from..].windows(2).position(|w| tied(&w[0], &w[1])) {
            let start = from + at;
            let first = entries[start];
            let end = start
                + 2
                + entries[start + 2..]
                    .iter()
                    .take_while(|e| tied(e, &first))
                    .count();
            entries[start..end].sort_unstable_by(|a, b| self.cmp_tied(a.as_ptr(), b.as_ptr()));
            from = end;
        }
    }

    /// Bucket boundaries of byte `depth` over `[lo, hi)`: bucket `b` is `[r[b], r[b + 1])`.
    #[inline(never)]
    fn count_buckets(&self, lo: usize, hi: usize, depth: usize) -> [usize; 257] {
        let mut counts = [0usize; 256];
        let mut i = lo;
        while i < hi {
            // Walk page by page: within a page entries are `es` bytes apart.
            let page_end = if self.shift != u32::MAX {
                ((i >> self.shift) + 1) << self.shift
            } else {
                (i / self.per_page + 1) * self.per_page
            };
            let end = page_end.min(hi);
            let mut p = self.at(i);
            for _ in i..end {
                // SAFETY: entries `i..end` are contiguous in one page.
                unsafe {
                    counts[*p.add(depth) as usize] += 1;
                    p = p.add(self.es());
                }
            }
            i = end;
        }
        let mut bounds = [0usize; 257];
        bounds[0] = lo;
        for b in 0..256 {
            bounds[b + 1] = bounds[b] + counts[b];
        }
        bounds
    }

    /// Moves every entry of `[bounds[0], bounds[256])` into its bucket of byte `depth`.
    ///
    /// `next[v]` is the first slot of bucket `v` not yet holding one of its own entries.
    /// Rounds walk the unplaced slots of every bucket and swap each entry to the first free
    /// slot of its bucket, which places it; the entry swapped back is looked at in a later
    /// round. Every swap places one entry, so all rounds together make at most one swap per
    /// entry, and unlike following one cycle at a time, consecutive swaps do not wait on each
    /// other's loads, so the CPU overlaps their cache misses (the scheme of ska_sort).
    #[inline(never)]
    fn permute(&self, bounds: &[usize; 257], depth: usize) {
        let mut next = [0usize; 256];
        next.copy_from_slice(&bounds[..256]);
        loop {
            let mut done = true;
            for b in 0..256 {
                let end = bounds[b + 1];
                let mut it = next[b];
                if it == end {
                    continue;
                }
                done = false;
                while it < end {
                    let v = self.byte(it, depth) as usize;
                    let j = next[v];
                    next[v] += 1;
                    // The write heads of 256 buckets are too many streams for the hardware
                    // prefetcher: fetch this bucket's next lines ahead of time.
                    if j + PREFETCH_AHEAD < bounds[v + 1] {
                        prefetch(self.at(j + PREFETCH_AHEAD));
                    }
                    self.swap(it, j);
                    it += 1;
                }
            }
            if done {
                return;
            }
        }
    }

    fn quick(&self, lo: usize, hi: usize, depth: usize) {
        let limit = 2 * (usize::BITS - (hi - lo).leading_zeros());
        self.quick_limited(lo, hi, depth, limit);
    }

    /// Quicksort with Hoare's partition (which splits runs of equal entries evenly), the
    /// median of three as pivot, insertion sort for short ranges and heapsort past `limit`.
    fn quick_limited(&self, mut lo: usize, mut hi: usize, depth: usize, mut limit: u32) {
        while hi - lo > INSERTION_MAX {
            if limit == 0 {
                self.heap_sort(lo, hi, depth);
                return;
            }
            limit -= 1;
            let mid = lo + (hi - lo) / 2;
            let m = self.median_of_three(lo, mid, hi - 1, depth);
            self.swap(lo, m);
            let pivot = self.at(lo);
            let (mut i, mut j) = (lo, hi);
            loop {
                i += 1;
                while i < hi && self.cmp(self.at(i), pivot, depth) == Ordering::Less {
                    i += 1;
                }
                j -= 1;
                while self.cmp(self.at(j), pivot, depth) == Ordering::Greater {
                    j -= 1;
                }
                if i >= j {
                    break;
                }
                self.swap(i, j);
            }
            self.swap(lo, j);
            // [lo, j) <= pivot, j holds the pivot, (j, hi) >= pivot.
            if j - lo < hi - j {
                self.quick_limited(lo, j, depth, limit);
                lo = j + 1;
            } else {
                self.quick_limited(j + 1, hi, depth, limit);
                hi = j;
            }
        }
        self.insertion(lo, hi, depth);
    }

    fn median_of_three(&self, a: usize, b: usize, c: usize, depth: usize) -> usize {
        let less = |x: usize, y: usize| self.cmp(self.at(x), self.at(y), depth) == Ordering::Less;
        if less(a, b) {
            if less(b, c) {
                b
            } else if less(a, c) {
                c
            } else {
                a
            }
        } else if less(a, c) {
            a
        } else if less(b, c) {
            c
        } else {
            b
        }
    }

    fn insertion(&self, lo: usize, hi: usize, depth: usize) {
        let es = self.es();
        let mut tmp = [0u8; MAX_ENTRY];
        for i in lo + 1..hi {
            let t = tmp.as_mut_ptr();
            if self.cmp(self.at(i - 1), self.at(i), depth) != Ordering::Greater {
                continue;
            }
            // SAFETY: entries are `es` bytes, `tmp` is at least that; distinct entries and
            // `tmp` never overlap.
            unsafe { ptr::copy_nonoverlapping(self.at(i), t, es) };
            let mut j = i;
            while j > lo && self.cmp(self.at(j - 1), t, depth) == Ordering::Greater {
                // SAFETY: as above.
                unsafe { ptr::copy_nonoverlapping(self.at(j - 1), self.at(j), es) };
                j -= 1;
            }
            // SAFETY: as above.
            unsafe { ptr::copy_nonoverlapping(t, self.at(j), es) };
        }
    }

    pub(crate) fn heap_sort(&self, lo: usize, hi: usize, depth: usize) {
        let n = hi - lo;
        let sift = |mut root: usize, end: usize| loop {
            let mut child = 2 * root + 1;
            if child >= end {
                return;
            }
            if child + 1 < end
                && self.cmp(self.at(lo + child), self.at(lo + child + 1), depth) == Ordering::Less
            {
                child += 1;
            }
            if self.cmp(self.at(lo + root), self.at(lo + child), depth) != Ordering::Less {
                return;
            }
            self.swap(lo + root, lo + child);
            root = child;
        };
        for start in (0..n / 2).rev() {
            sift(start, n);
        }
        for end in (1..n).rev() {
            self.swap(lo, lo + end);
            sift(0, end);
        }
    }
}
