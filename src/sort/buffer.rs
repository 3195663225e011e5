//! The in-memory sort buffer: a record area and an index area in the pages it was given.
//!
//! As Flink's `NormalizedKeySorter`: each record is appended to the record area (a native
//! `u32` length, then the bytes, see [`record_area`](super::record_area): a record longer than
//! a page goes on into the next pages), and an index entry of the key prefix and the record's
//! pointer to the index area. Both areas take pages from the same list as they grow; when a
//! record needs a page and none is left, the buffer is full. Sorting moves only index entries
//! ([`index_sort`](super::index_sort)); iterating returns the records in order as
//! [`RecordRef`]s into the record pages, without copying them.
//!
//! A record that straddles pages must be copied to be seen whole: by
//! [`record`](SortBuffer::record), and by the sort when it compares two such records whose
//! prefixes tie. That scratch memory comes out of the buffer's pages: for each straddling record
//! the buffer keeps back, unused, twice as many pages as the longest one spans (two records
//! are compared at a time), so pages in use plus scratch never exceed the pages given.

use std::cell::RefCell;

use super::index_sort::{Entries, POINTER};
use super::key::KeyConfig;
use super::record_area::{LEN, RecordArea, RecordRef};
use crate::error::{Error, Result};
use crate::io::block;
use crate::segment::Segment;

/// Records and their index in a fixed set of equal-size pages.
pub struct SortBuffer {
    key: KeyConfig,
    page_size: usize,
    free: Vec<Segment>,
    records: Vec<Segment>,
    index: Vec<Segment>,
    record_fill: usize,
    count: usize,
    entry_size: usize,
    per_page: usize,
    sorted: bool,
    record_bytes: u64,
    /// Free pages kept back for the scratch of straddling records.
    reserved: usize,
    max_record_len: usize,
    /// Where [`record`](Self::record) puts a straddling record together.
    scratch: Vec<u8>,
    /// Records by the first byte of their key prefix, for the sort's first radix pass.
    first_bytes: [u32; 256],
}

impl std::fmt::Debug for SortBuffer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SortBuffer")
            .field("records", &self.count)
            .field("page_size", &self.page_size)
            .field("pages", &self.total_pages())
            .field("pages_in_use", &self.pages_in_use())
            .finish()
    }
}

/// The smallest page a sorter accepts.
pub const MIN_PAGE_SIZE: usize = 64;

/// Checks that `pages` are at least `min` equal-size pages that fit `key`; returns the size.
pub(crate) fn check_pages(pages: &[Segment], key: &KeyConfig, min: usize) -> Result<usize> {
    key.validate()?;
    if pages.len() < min {
        return Err(Error::BudgetExhausted(format!(
            "{} pages given, the sorter needs at least {min}",
            pages.len()
        )));
    }
    let page_size = pages[0].size();
    if let Some(p) = pages.iter().find(|p| p.size() != page_size) {
        return Err(Error::invalid(format!(
            "pages must have one size: {} and {} bytes given",
            page_size,
            p.size()
        )));
    }
    if page_size < MIN_PAGE_SIZE || page_size > u32::MAX as usize {
        return Err(Error::invalid(format!(
            "page size {page_size} is outside {MIN_PAGE_SIZE}..={}",
            u32::MAX
        )));
    }
    if key.prefix_length + POINTER > page_size {
        return Err(Error::invalid(format!(
            "an index entry of {} bytes does not fit a {page_size}-byte page",
            key.prefix_length + POINTER
        )));
    }
    if key.min_record_len() > block::max_record_len(page_size) {
        return Err(Error::invalid(format!(
            "the key ends at byte {}, beyond the largest record a {page_size}-byte block holds \
             whole ({})",
            key.min_record_len(),
            block::max_record_len(page_size)
        )));
    }
    Ok(page_size)
}

/// Pages of scratch a straddling record of `len` bytes needs kept back: room for two of them.
pub(crate) fn scratch_pages(len: usize, page_size: usize) -> usize {
    2 * len.div_ceil(page_size)
}

/// The longest record an empty buffer of `pages` pages holds: one that fits a page, or, when
/// there are enough pages, one that spans `n` record pages with an index page and `2n` pages
/// kept back for its scratch (never more than `u32::MAX` bytes).
pub(crate) fn max_record_len_in(pages: usize, page_size: usize) -> usize {
    let n = pages.saturating_sub(1) / 3;
    (page_size - LEN)
        .max((n * page_size).saturating_sub(LEN))
        .min(u32::MAX as usize)
}

impl SortBuffer {
    /// A buffer in `pages` (at least 2 of one size: one for records, one for the index).
    pub fn new(pages: Vec<Segment>, key: KeyConfig) -> Result<Self> {
        let page_size = check_pages(&pages, &key, 2)?;
        let entry_size = key.prefix_length + POINTER;
        let max_record_len = max_record_len_in(pages.len(), page_size);
        Ok(SortBuffer {
            key,
            page_size,
            free: pages,
            records: Vec::new(),
            index: Vec::new(),
            record_fill: 0,
            count: 0,
            entry_size,
            per_page: page_size / entry_size,
            sorted: true,
            record_bytes: 0,
            reserved: 0,
            max_record_len,
            scratch: Vec::new(),
            first_bytes: [0; 256],
        })
    }

    /// The longest record the buffer holds (when empty): see the module's documentation.
    pub fn max_record_len(&self) -> usize {
        self.max_record_len
    }

    /// Checks that `record` is one the buffer can ever hold.
    #[inline]
    pub fn check_record(&self, record: &[u8]) -> Result<()> {
        if record.len() < self.key.min_record_len() || record.len() > self.max_record_len {
            return Err(self.bad_record(record.len()));
        }
        Ok(())
    }

    #[cold]
    fn bad_record(&self, len: usize) -> Error {
        if len < self.key.min_record_len() {
            return Error::invalid(format!(
                "record of {len} bytes is shorter than the key's end ({} bytes)",
                self.key.min_record_len()
            ));
        }
        Error::invalid(format!(
            "record of {len} bytes exceeds the largest {} pages of {} bytes hold ({})",
            self.total_pages(),
            self.page_size,
            self.max_record_len
        ))
    }

    /// Appends a record. Returns `Ok(false)`, and stores nothing, when the buffer is full (its
    /// pages are spent); a record that no buffer of this size can hold is an error.
    #[inline]
    pub fn add(&mut self, record: &[u8]) -> Result<bool> {
        self.check_record(record)?;
        let len = record.len();
        let new_index_page = self.count == self.index.len() * self.per_page;
        let (page_no, offset) =
            if !self.records.is_empty() && self.record_fill + LEN + len <= self.page_size {
                // The common case: the record fits what is left of the last page.
                if new_index_page && self.free.len() <= self.reserved {
                    return Ok(false);
                }
                if new_index_page {
                    self.index.push(self.free.pop().expect("counted above"));
                }
                let at = (self.records.len() - 1, self.record_fill);
                self.record_fill += LEN + len;
                at
            } else {
                match self.place_on_new_pages(len, new_index_page) {
                    Some(at) => at,
                    None => return Ok(false),
                }
            };
        self.write_record(page_no, offset, record);

        let pointer = (page_no as u64) << 32 | offset as u64;
        let slot = (self.count % self.per_page) * self.entry_size;
        let entry = &mut self.index.last_mut().expect("pushed above").as_mut_slice()
            [slot..slot + self.entry_size];
        let prefix = self.key.prefix_length;
        entry[..prefix].copy_from_slice(self.key.prefix(record));
        if let Some(&first) = entry.first().filter(|_| prefix > 0) {
            self.first_bytes[first as usize] = self.first_bytes[first as usize].wrapping_add(1);
        }
        entry[prefix..].copy_from_slice(&pointer.to_ne_bytes());
        self.count += 1;
        self.record_bytes += len as u64;
        self.sorted = self.count == 1;
        Ok(true)
    }

    /// Takes the pages for a record of `len` bytes that does not fit what is left of the last
    /// page (and an index page if `new_index_page`): a record that fits a page starts on a new
    /// one; a longer one starts where the area ends, once its length fits, and goes on into
    /// new pages. Returns where its length goes, or `None` (taking nothing) when the pages,
    /// less those kept back for scratch, are too few.
    fn place_on_new_pages(&mut self, len: usize, new_index_page: bool) -> Option<(usize, usize)> {
        let ps = self.page_size;
        let straddles = len > ps - LEN;
        let new_first = self.records.is_empty() || !straddles || self.record_fill + LEN > ps;
        let offset = if new_first { 0 } else { self.record_fill };
        let spanned = (offset + LEN + len).div_ceil(ps).max(1);
        let new_record_pages = spanned - usize::from(!new_first);
        let reserved = if straddles {
            self.reserved.max(scratch_pages(len, ps))
        } else {
            self.reserved
        };
        if self.free.len() < new_record_pages + usize::from(new_index_page) + reserved {
            return None;
        }
        self.reserved = reserved;
        for _ in 0..new_record_pages {
            self.records.push(self.free.pop().expect("counted above"));
        }
        if new_index_page {
            self.index.push(self.free.pop().expect("counted above"));
        }
        self.record_fill = offset + LEN + len - (spanned - 1) * ps;
        Some((self.records.len() - spanned, offset))
    }

    /// Writes `record`'s length at `offset` of record page `page_no` and its bytes after it,
    /// on into the next pages.
    #[inline(always)]
    fn write_record(&mut self, page_no: usize, offset: usize, record: &[u8]) {
        let page = self.records[page_no].as_mut_slice();
        page[offset..offset + LEN].copy_from_slice(&(record.len() as u32).to_ne_bytes());
        let start = offset + LEN;
        if start + record.len() <= page.len() {
            page[start..start + record.len()].copy_from_slice(record);
            return;
        }
        let (head, mut rest) = record.split_at(page.len() - start);
        page[start..].copy_from_slice(head);
        for next in &mut self.records[page_no + 1..] {
            let n = rest.len().min(next.size());
            next.as_mut_slice()[..n].copy_from_slice(&rest[..n]);
            rest = &rest[n..];
        }
        debug_assert!(rest.is_empty(), "the pages were counted");
    }

    /// Number of records.
    pub fn len(&self) -> usize {
        self.count
    }

    /// Whether the buffer holds no records.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Bytes of record data held (without lengths or index).
    pub fn record_bytes(&self) -> u64 {
        self.record_bytes
    }

    /// Page size in bytes.
    pub fn page_size(&self) -> usize {
        self.page_size
    }

    /// Pages holding records or index entries, or kept back for the scratch of straddling
    /// records.
    pub fn pages_in_use(&self) -> usize {
        self.records.len() + self.index.len() + self.reserved
    }

    /// All pages of the buffer, used or not.
    pub fn total_pages(&self) -> usize {
        self.records.len() + self.index.len() + self.free.len()
    }

    /// The key configuration.
    pub fn key(&self) -> &KeyConfig {
        &self.key
    }

    fn area(&self) -> RecordArea<'_> {
        RecordArea {
            pages: &self.records,
            page_size: self.page_size,
        }
    }

    fn with_entries<const ES: usize>(&mut self, f: impl FnOnce(&Entries<'_, ES>)) {
        let per_page = self.per_page;
        let scratch = RefCell::default();
        let entries = Entries::<ES> {
            index: self.index.iter_mut().map(Segment::as_mut_ptr).collect(),
            records: RecordArea {
                pages: &self.records,
                page_size: self.page_size,
            },
            entry_size: self.entry_size,
            per_page,
            shift: if per_page.is_power_of_two() {
                per_page.trailing_zeros()
            } else {
                u32::MAX
            },
            key: &self.key,
            scratch: &scratch,
        };
        f(&entries);
    }

    /// Sorts the index, so that [`get`](Self::get) and [`iter`](Self::iter) return the records
    /// in key order. Records with equal keys come in no particular order.
    pub fn sort(&mut self) {
        if self.sorted {
            return;
        }
        let n = self.count;
        let counts = (n <= u32::MAX as usize).then_some(self.first_bytes);
        let counts = counts.as_ref();
        match self.entry_size {
            16 => self.with_entries::<16>(|e| e.sort(n, counts)),
            24 => self.with_entries::<24>(|e| e.sort(n, counts)),
            32 => self.with_entries::<32>(|e| e.sort(n, counts)),
            _ => self.with_entries::<0>(|e| e.sort(n, counts)),
        }
        self.sorted = true;
    }

    #[cfg(test)]
    pub(crate) fn heap_sort_for_test(&mut self) {
        let n = self.count;
        self.with_entries::<0>(|e| e.heap_sort(0, n, 0));
        self.sorted = true;
    }

    #[inline(always)]
    fn pointer(&self, i: usize) -> u64 {
        let slot = (i % self.per_page) * self.entry_size + self.key.prefix_length;
        let page = &self.index[i / self.per_page];
        u64::from_ne_bytes(
            page.as_slice()[slot..slot + POINTER]
                .try_into()
                .expect("eight bytes"),
        )
    }

    /// The record at position `i` of the index (in key order once sorted), where it lies in
    /// the record pages. Panics if `i >= len()`.
    #[inline]
    pub fn get(&self, i: usize) -> RecordRef<'_> {
        assert!(i < self.count, "record {i} of {}", self.count);
        self.area().get(self.pointer(i))
    }

    /// The record at position `i` of the index as one slice: of its page, or, for a record
    /// that straddles pages, of the buffer's scratch, where it is copied (valid until the
    /// next call). Panics if `i >= len()`.
    #[inline]
    pub fn record(&mut self, i: usize) -> &[u8] {
        assert!(i < self.count, "record {i} of {}", self.count);
        let pointer = self.pointer(i);
        let area = RecordArea {
            pages: &self.records,
            page_size: self.page_size,
        };
        let record = area.get(pointer);
        match record.as_slice() {
            Some(bytes) => bytes,
            None => {
                record.copy_prefix_into(record.len(), &mut self.scratch);
                &self.scratch
            }
        }
    }

    /// Hints the CPU to fetch the record at position `i` of the index, for a caller about to
    /// read records in index order (which, once sorted, is random order in memory). Does
    /// nothing for `i >= len()`.
    #[inline]
    pub fn prefetch(&self, i: usize) {
        if i < self.count {
            let pointer = self.pointer(i);
            if let Some(page) = self.records.get((pointer >> 32) as usize) {
                let offset = (pointer & 0xFFFF_FFFF) as usize;
                if let Some(bytes) = page.as_slice().get(offset..) {
                    // The length and the first bytes, and the next lines, where a record of a
                    // hundred bytes or so goes on: it spans two or three.
                    for line in [0, 64, 128] {
                        if let Some(at) = bytes.get(line) {
                            super::index_sort::prefetch(at);
                        }
                    }
                }
            }
        }
    }

    /// The records in index order (key order once sorted), where they lie in the record
    /// pages, not copied.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = RecordRef<'_>> + '_ {
        (0..self.count).map(|i| self.get(i))
    }

    /// Empties the buffer; its pages are free again, and its scratch is given back.
    pub fn clear(&mut self) {
        self.free.append(&mut self.records);
        self.free.append(&mut self.index);
        self.record_fill = 0;
        self.count = 0;
        self.record_bytes = 0;
        self.reserved = 0;
        self.scratch = Vec::new();
        self.first_bytes = [0; 256];
        self.sorted = true;
    }

    /// Ends the buffer and gives its pages back.
    pub fn into_pages(mut self) -> Vec<Segment> {
        self.clear();
        self.free
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn pages(n: usize, size: usize) -> Vec<Segment> {
        (0..n)
            .map(|_| Segment::allocate_heap(size).unwrap())
            .collect()
    }

    fn sorted_keys(key: &KeyConfig, records: &[Vec<u8>]) -> Vec<Vec<u8>> {
        let mut r = records.to_vec();
        r.sort_by(|a, b| key.compare_records(a, b));
        r
    }

    fn check(buffer: &SortBuffer, records: &[Vec<u8>]) {
        let key = buffer.key().clone();
        let got: Vec<Vec<u8>> = buffer.iter().map(|r| r.to_vec()).collect();
        for w in got.windows(2) {
            assert_ne!(
                key.compare_records(&w[0], &w[1]),
                std::cmp::Ordering::Greater
            );
        }
        let mut a = got.clone();
        let mut b = records.to_vec();
        a.sort();
        b.sort();
        assert_eq!(a, b, "same records");
        let keys = |v: &[Vec<u8>]| v.iter().map(|r| key.prefix(r).to_vec()).collect::<Vec<_>>();
        assert_eq!(keys(&got), keys(&sorted_keys(&key, records)));
    }

    fn rng(seed: &mut u64) -> u64 {
        *seed = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = *seed;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    #[test]
    fn the_buffer_fills_its_pages_then_reports_full() {
        let mut b = SortBuffer::new(pages(3, 256), KeyConfig::bytes(0, 4)).unwrap();
        let mut n = 0u32;
        while b.add(&n.to_be_bytes().repeat(10)).unwrap() {
            n += 1;
        }
        assert!(n > 5);
        assert_eq!(b.len(), n as usize);
        assert_eq!(b.pages_in_use(), 3);
        assert!(!b.add(&[0; 40]).unwrap(), "still full, nothing stored");
        assert_eq!(b.len(), n as usize);
        assert!(b.add(&[0; 2]).is_err(), "shorter than the key");
        assert!(b.add(&[0; 300]).is_err(), "longer than 3 pages hold");
        b.clear();
        assert_eq!((b.len(), b.pages_in_use()), (0, 0));
        assert_eq!(b.into_pages().len(), 3);
    }

    #[test]
    fn sorts_across_pages_with_every_entry_size_and_key_kind() {
        let mut seed = 7;
        for (prefix, key_len, distinct) in [
            (8, 8, 1000),
            (8, 10, 50),
            (0, 6, 20),
            (3, 6, 5),
            (16, 20, 3),
            (24, 24, 1 << 30),
            (10, 10, 2),
            (1, 1, 256),
        ] {
            let sizes: &[usize] = if cfg!(miri) {
                &[0, 1, 17, 130]
            } else {
                &[0, 1, 2, 17, 95, 96, 97, 700, 3000]
            };
            for &n in sizes {
                let key = KeyConfig {
                    key_offset: 2,
                    key_length: key_len,
                    prefix_length: prefix,
                    compare: None,
                };
                let records: Vec<Vec<u8>> = (0..n)
                    .map(|_| {
                        let len = 2 + key_len + (rng(&mut seed) % 30) as usize;
                        let mut r: Vec<u8> = (0..len).map(|_| rng(&mut seed) as u8).collect();
                        let k = rng(&mut seed) % distinct;
                        for (i, byte) in r[2..2 + key_len].iter_mut().enumerate() {
                            *byte =
                                (k >> (8 * (i % 8))) as u8 & if i % 3 == 0 { 0xFF } else { 0x0F };
                        }
                        r
                    })
                    .collect();
                let mut b =
                    SortBuffer::new(pages(if cfg!(miri) { 60 } else { 1000 }, 512), key).unwrap();
                for r in &records {
                    assert!(b.add(r).unwrap());
                }
                b.sort();
                check(&b, &records);
            }
        }
    }

    #[test]
    fn sorted_reversed_and_equal_inputs_sort_and_the_records_decide_tied_prefixes() {
        let mut b = SortBuffer::new(pages(200, 1024), KeyConfig::bytes(0, 8)).unwrap();
        let n: u64 = if cfg!(miri) { 400 } else { 5000 };
        let up: Vec<Vec<u8>> = (0..n).map(|i| i.to_be_bytes().to_vec()).collect();
        for r in up.iter().rev() {
            assert!(b.add(r).unwrap());
        }
        b.sort();
        assert_eq!(b.iter().map(|r| r.to_vec()).collect::<Vec<_>>(), up);
        b.clear();
        for r in &up {
            assert!(b.add(r).unwrap());
        }
        b.sort();
        assert_eq!(b.iter().map(|r| r.to_vec()).collect::<Vec<_>>(), up);

        // Prefixes of 4 bytes (entries of any size) and of 8 (of 16 bytes, whose ranges in a
        // page are sorted as slices, ties after): 97 first bytes and two last bytes make runs
        // of about 15 equal prefixes, which the first radix pass leaves in ranges of about 30
        // inside an index page. Ties go to the host, which orders by the record's last byte,
        // descending, or to the rest of the key, which ends with that byte.
        for (prefix, host) in [(4, true), (8, true), (4, false), (8, false)] {
            let key = KeyConfig {
                key_offset: 0,
                key_length: if host { prefix } else { prefix + 2 },
                prefix_length: prefix,
                compare: host.then(|| -> super::super::key::CompareFn {
                    Arc::new(move |a: &[u8], b: &[u8]| b[prefix + 1].cmp(&a[prefix + 1]))
                }),
            };
            let mut b = SortBuffer::new(pages(200, 1024), key).unwrap();
            let n = if cfg!(miri) { 600 } else { 3000 };
            for i in 0..n {
                let mut r = vec![0; prefix + 2];
                r[0] = (i % 97) as u8;
                r[prefix - 1] = (i / 97 % 2) as u8;
                r[prefix] = 9;
                r[prefix + 1] = (i * 7 % 256) as u8;
                assert!(b.add(&r).unwrap());
            }
            b.sort();
            let got: Vec<Vec<u8>> = b.iter().map(|r| r.to_vec()).collect();
            assert_eq!(got.len(), n as usize);
            for w in got.windows(2) {
                let (x, y) = (&w[0], &w[1]);
                let last = if host {
                    x[prefix + 1] >= y[prefix + 1]
                } else {
                    x[prefix + 1] <= y[prefix + 1]
                };
                assert!(
                    x[..prefix] < y[..prefix] || (x[..prefix] == y[..prefix] && last),
                    "prefix {prefix}, host {host}: {x:?} before {y:?}"
                );
            }
        }
    }

    #[test]
    fn records_longer_than_a_page_straddle_and_sort_with_keys_across_page_ends() {
        let mut seed = 11;
        let host: super::super::key::CompareFn = Arc::new(|a: &[u8], b: &[u8]| a[6..].cmp(&b[6..]));
        for compare in [None, Some(host)] {
            // Key of 6 bytes at offset 3, 2 of them in the index: ties go to the records.
            let key = KeyConfig {
                key_offset: 3,
                key_length: 6,
                prefix_length: 2,
                compare,
            };
            let mut b =
                SortBuffer::new(pages(if cfg!(miri) { 60 } else { 400 }, 256), key).unwrap();
            assert_eq!(b.max_record_len(), (b.total_pages() - 1) / 3 * 256 - 4);
            let records: Vec<Vec<u8>> = (0..if cfg!(miri) { 12 } else { 120 })
                .map(|_| {
                    let len = match rng(&mut seed) % 4 {
                        0 => 9 + (rng(&mut seed) % 40) as usize,
                        1 => 240 + (rng(&mut seed) % 40) as usize,
                        _ => 256 + (rng(&mut seed) % 1200) as usize,
                    };
                    let mut r: Vec<u8> = (0..len).map(|_| rng(&mut seed) as u8).collect();
                    r[3..9].copy_from_slice(&[(rng(&mut seed) % 2) as u8; 6]);
                    r
                })
                .collect();
            let mut straddling = 0;
            for r in &records {
                assert!(b.add(r).unwrap());
                let got = b.get(b.len() - 1);
                assert_eq!(got.len(), r.len());
                straddling += usize::from(got.as_slice().is_none());
                assert_eq!(got.to_vec(), *r);
            }
            assert!(straddling > records.len() / 3, "{straddling}");
            assert!(
                b.pages_in_use() > b.records.len() + b.index.len(),
                "kept back"
            );
            b.sort();
            check(&b, &records);
            for i in 0..b.len() {
                let whole = b.get(i).to_vec();
                assert_eq!(b.record(i), &whole[..]);
                assert_eq!(
                    b.get(i).parts().map(<[u8]>::len).sum::<usize>(),
                    whole.len()
                );
            }
        }
        // A record as long as the buffer takes fits an empty one, exactly.
        let mut b = SortBuffer::new(pages(10, 256), KeyConfig::bytes(0, 4)).unwrap();
        let longest = vec![3u8; b.max_record_len()];
        assert!(b.add(&longest).unwrap());
        assert_eq!(b.pages_in_use(), 10);
        assert_eq!(b.record(0), &longest[..]);
        assert!(!b.add(&[1; 4]).unwrap(), "full");
        b.clear();
        assert!(b.add(&[1u8; 767]).is_err(), "longer than it takes");
    }

    #[test]
    fn heap_sort_fallback_sorts() {
        let key = KeyConfig::bytes(0, 3);
        let mut b = SortBuffer::new(pages(100, 256), key.clone()).unwrap();
        let mut seed = 3;
        let records: Vec<Vec<u8>> = (0..if cfg!(miri) { 200 } else { 900 })
            .map(|_| (rng(&mut seed) % 5000).to_be_bytes()[5..].to_vec())
            .collect();
        for r in &records {
            assert!(b.add(r).unwrap());
        }
        b.heap_sort_for_test();
        check(&b, &records);
    }

    #[test]
    fn bad_pages_are_refused() {
        let k = KeyConfig::bytes(0, 8);
        assert!(matches!(
            SortBuffer::new(pages(1, 256), k.clone()),
            Err(Error::BudgetExhausted(_))
        ));
        let mut mixed = pages(2, 256);
        mixed.push(Segment::allocate_heap(512).unwrap());
        assert!(matches!(
            SortBuffer::new(mixed, k.clone()),
            Err(Error::InvalidArgument(_))
        ));
        assert!(SortBuffer::new(pages(2, 32), k).is_err());
        assert!(SortBuffer::new(pages(2, 64), KeyConfig::bytes(40, 8)).is_err());
    }
}
