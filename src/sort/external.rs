//! The external sorter: sorts more records than its pages hold by spilling sorted runs and
//! merging them.
//!
//! The pages given at creation are all the memory it uses for records, index entries and I/O
//! buffers. One page in 32 (at least one, at most 8) is the spill writer's: it gathers the
//! records of a sorted buffer into blocks, and with more than one page a second thread writes
//! the full blocks behind it (several at a time) while it fills the next. The rest form the
//! sort buffers — two, when there are at least 9 pages, so that the writer spills one full,
//! sorted buffer while the caller fills the other (one buffer otherwise). When a buffer is
//! full it is sorted and handed to the writer. If nothing was spilled,
//! [`finish`](ExternalSorter::finish) sorts the buffer and the records come straight from its
//! pages. Otherwise the last buffer is spilled too and every page becomes a read buffer: with
//! `P` pages, up to `P` runs merge at once into the output, through a tree of losers; while
//! there are more runs than that, passes merge groups of `P - 1` runs into longer runs (written
//! behind as spills are). Each run is read through as many of the pages as there are for it,
//! up to 16: a read-ahead thread reads (and checks) its next blocks into the others, half of
//! them per read, while the merge works on one. Spill files have no name (`O_TMPFILE`, else
//! they are unlinked as soon as they are created: nothing is left in the directory if the
//! process dies) and are closed, which frees their space, as soon as they have been read, on
//! error, and when the sorter is dropped. With
//! large page-aligned pages (off-heap ones), spill files are written and read with direct I/O,
//! bypassing the page cache.
//!
//! Records may be longer than a page, up to [`max_record_len`](ExternalSorter::max_record_len),
//! which grows with the number of pages. They straddle pages in the sort buffer and blocks in
//! spill files, and must be copied whole to be handed out or compared: the scratch for that
//! counts against the pages, which are the budget. A sort buffer keeps back pages for it (see
//! [`buffer`](super::buffer)); when the longest record spans blocks, each run being merged
//! counts as its read page plus as many pages as that record spans (the run's reader puts such
//! records together in a scratch buffer of that size), and merges take fewer runs at a time to
//! leave those pages unused. Pages are separate regions, so they cannot themselves hold a
//! record that spans several of them in one piece; keeping pages unused for the scratch is
//! what keeps the total within the budget.

use std::path::PathBuf;
use std::sync::Arc;

use super::buffer::{SortBuffer, check_pages};
use super::key::KeyConfig;
use super::merge::Merger;
use crate::error::{Error, Result};
use crate::io::spill::DIRECT_IO_ALIGN;
use crate::io::{BackgroundWriter, Run, RunWriter, SpillDir, SpillFile, WriteFault};
use crate::segment::Segment;

/// The fewest pages an external sorter works with: a sort buffer of two (records and index)
/// and a write page; the merge then has three read pages.
pub const MIN_PAGES: usize = 3;
/// How far ahead of the record being read a sorted buffer's reader prefetches.
const PREFETCH_RECORDS: usize = 16;
/// Most pages a run is read through in a merge: one being merged, the others read ahead.
/// Enough to keep the disk busy; more would only delay the first blocks of the last runs,
/// whose reads queue behind the first runs' read-ahead when the merge starts.
const READ_AHEAD_PAGES: usize = 16;
/// From this many pages on, the memory is split into two sort buffers.
const TWO_BUFFERS_FROM: usize = 8;

/// How an external sorter sorts and where it spills.
#[derive(Debug, Clone)]
pub struct SortConfig {
    /// The key and how records compare.
    pub key: KeyConfig,
    /// Directory for spill files; the system's temporary directory if `None`. Each file has
    /// no name (`O_TMPFILE`, else it is unlinked at once), so the directory never lists it.
    pub temp_dir: Option<PathBuf>,
    /// A write failure to inject into the spill files, for fault tests.
    pub write_fault: Option<Arc<WriteFault>>,
    /// When to spill with direct I/O (`O_DIRECT`, bypassing the page cache).
    pub direct_io: DirectIo,
}

/// When spill files bypass the page cache. Direct I/O needs every page aligned to 4 KiB with a
/// size that is a multiple of it (off-heap pages are); where the pages are not, or the file
/// system refuses it, spill files go through the page cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DirectIo {
    /// Always through the page cache.
    Never,
    /// Direct whenever the pages allow it.
    Always,
    /// Direct when the pages allow it and are at least [`DIRECT_IO_MIN_PAGE`] bytes: each
    /// direct write waits for the disk, which only large blocks amortize.
    Auto,
}

/// The smallest page with which [`DirectIo::Auto`] spills directly.
pub const DIRECT_IO_MIN_PAGE: usize = 128 * 1024;

impl SortConfig {
    /// Sorting by `key`, spilling to the system's temporary directory.
    pub fn new(key: KeyConfig) -> Self {
        SortConfig {
            key,
            temp_dir: None,
            write_fault: None,
            direct_io: DirectIo::Auto,
        }
    }
}

/// What a sorter did; exact at any moment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SortStats {
    /// Records added.
    pub records: u64,
    /// Bytes of the records added.
    pub record_bytes: u64,
    /// Sorted runs spilled from the sort buffers (before any merge).
    pub spilled_runs: u64,
    /// Bytes written to spill files, in all passes.
    pub spilled_bytes: u64,
    /// Merge passes: 0 for a sort in memory, 1 when all runs merged at once into the output,
    /// more when runs outnumbered the read pages.
    pub merge_passes: u64,
    /// Most bytes of pages holding records, index entries or I/O blocks at any one time.
    pub peak_memory_bytes: u64,
    /// Bytes of all pages given to the sorter: the ceiling of `peak_memory_bytes`.
    pub memory_bytes: u64,
}

type SpillJob = (SortBuffer, SpillFile);
type SpillDone = (SortBuffer, Result<Run>);

enum Output {
    None,
    Memory {
        buffer: Box<SortBuffer>,
        next: usize,
    },
    Merge(Merger),
}

#[derive(Debug)]
enum Phase {
    Adding,
    Finished,
    Failed(Error),
}

/// Sorts records in a fixed set of pages, spilling to disk when they are full.
pub struct ExternalSorter {
    key: KeyConfig,
    page_size: usize,
    max_record_len: usize,
    /// The longest record added.
    longest: usize,
    /// Pages each run being merged counts for its scratch (0 while no record spans blocks).
    merge_scratch_pages: usize,
    dir: SpillDir,
    current: Option<SortBuffer>,
    idle: Vec<SortBuffer>,
    /// The spill writer's pages, until its thread starts.
    write_pages: Vec<Segment>,
    /// How many pages the spill writer has.
    write_page_count: usize,
    writer: Option<BackgroundWriter<SpillJob, SpillDone>>,
    in_flight_pages: usize,
    runs: Vec<Run>,
    phase: Phase,
    output: Output,
    stats: SortStats,
}

impl std::fmt::Debug for ExternalSorter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ExternalSorter")
            .field("phase", &self.phase)
            .field("stats", &self.stats)
            .finish()
    }
}

impl ExternalSorter {
    /// A sorter in `pages` (at least [`MIN_PAGES`], all of one size). Fails with
    /// `BudgetExhausted` for fewer pages, and with `InvalidArgument` for pages of mixed sizes,
    /// a key that does not fit a page, or a temporary directory that is not one (`Io` if it
    /// cannot be examined).
    pub fn new(pages: Vec<Segment>, config: SortConfig) -> Result<Self> {
        let page_size = check_pages(&pages, &config.key, MIN_PAGES).map_err(|e| match e {
            Error::BudgetExhausted(m) => Error::BudgetExhausted(format!(
                "{m}: a sort buffer needs 2 pages (records and index) and spilling a write \
                 page; merging reads each run through a page of its own"
            )),
            e => e,
        })?;
        let aligned = page_size % DIRECT_IO_ALIGN == 0
            && pages
                .iter()
                .all(|p| (p.as_ptr() as usize) % DIRECT_IO_ALIGN == 0);
        let dir = SpillDir::new(
            config.temp_dir.clone().unwrap_or_else(std::env::temp_dir),
            config.write_fault.clone(),
        )?
        .with_direct_io(match config.direct_io {
            DirectIo::Never => false,
            DirectIo::Always => aligned,
            DirectIo::Auto => aligned && page_size >= DIRECT_IO_MIN_PAGE,
        });
        let total_pages = pages.len();
        let mut pages = pages;
        let write_page_count = write_pages_for(total_pages);
        let write_pages = pages.split_off(pages.len() - write_page_count);
        let mut buffers = Vec::new();
        if pages.len() >= TWO_BUFFERS_FROM {
            let second = pages.split_off(pages.len() / 2);
            buffers.push(SortBuffer::new(second, config.key.clone())?);
        }
        let current = SortBuffer::new(pages, config.key.clone())?;
        let smallest_buffer = buffers
            .iter()
            .map(SortBuffer::total_pages)
            .fold(current.total_pages(), usize::min);
        Ok(ExternalSorter {
            key: config.key,
            page_size,
            max_record_len: max_record_len(total_pages, smallest_buffer, page_size),
            longest: 0,
            merge_scratch_pages: 0,
            dir,
            current: Some(current),
            idle: buffers,
            write_pages,
            write_page_count,
            writer: None,
            in_flight_pages: 0,
            runs: Vec::new(),
            phase: Phase::Adding,
            output: Output::None,
            stats: SortStats {
                memory_bytes: (total_pages * page_size) as u64,
                ..SortStats::default()
            },
        })
    }

    /// What the sorter did so far. The peak memory includes the pages in use right now.
    pub fn stats(&self) -> SortStats {
        let mut stats = self.stats;
        let now = match &self.output {
            Output::Memory { buffer, .. } => buffer.pages_in_use(),
            Output::Merge(merger) => {
                merger.open_runs() * (merger.pages_per_run() + self.merge_scratch_pages)
            }
            Output::None => {
                self.current.as_ref().map_or(0, SortBuffer::pages_in_use)
                    + self.in_flight_pages
                    + if self.writer.is_some() {
                        self.write_page_count
                    } else {
                        0
                    }
            }
        };
        stats.peak_memory_bytes = stats.peak_memory_bytes.max((now * self.page_size) as u64);
        stats
    }

    /// The directory spill files go to.
    pub fn temp_dir(&self) -> &std::path::Path {
        self.dir.path()
    }

    /// The longest record the sorter takes: one that fits a spill block whole (the page size
    /// less 24 bytes) with any number of pages, and with more pages one as long as fits a
    /// sort buffer with the pages kept back for its scratch and still lets merges read two
    /// runs at a time with theirs (about a sixth of the memory with 8 pages or more), never
    /// more than `u32::MAX` bytes.
    pub fn max_record_len(&self) -> usize {
        self.max_record_len
    }

    #[inline]
    fn check_phase(&self, reading: bool) -> Result<()> {
        match (&self.phase, reading) {
            (Phase::Adding, false) | (Phase::Finished, true) => Ok(()),
            _ => Err(self.phase_error(reading)),
        }
    }

    #[cold]
    fn phase_error(&self, reading: bool) -> Error {
        match &self.phase {
            Phase::Failed(e) => Error::Closed(format!(
                "the sorter failed earlier and takes no more calls ({e})"
            )),
            Phase::Adding => Error::invalid("call finish before reading sorted records"),
            Phase::Finished if reading => Error::invalid("the sorter is finished"),
            Phase::Finished => Error::invalid(
                "the sorter is finished: no more records can be added, and finish was done",
            ),
        }
    }

    /// Records the error: the sorter takes no more calls, and its spill files are removed.
    fn fail(&mut self, e: Error) -> Error {
        // Dropping the writer waits for its thread and drops the results it holds, files
        // and all.
        self.writer = None;
        self.in_flight_pages = 0;
        self.runs.clear();
        self.output = Output::None;
        self.phase = Phase::Failed(e.clone());
        e
    }

    fn note_pages(&mut self, pages: usize) {
        let bytes = (pages * self.page_size) as u64;
        self.stats.peak_memory_bytes = self.stats.peak_memory_bytes.max(bytes);
    }

    /// Adds a record (copied into the sorter's pages). A record shorter than the key's end or
    /// longer than [`max_record_len`](Self::max_record_len) is refused and changes nothing;
    /// a spill that fails (`Io`, `DiskFull`) ends the sorter.
    pub fn add(&mut self, record: &[u8]) -> Result<()> {
        self.check_phase(false)?;
        if record.len() > self.max_record_len {
            return Err(self.too_long(record.len()));
        }
        loop {
            let current = self.current.as_mut().expect("a buffer while adding");
            if current.add(record)? {
                self.stats.records += 1;
                self.stats.record_bytes += record.len() as u64;
                self.longest = self.longest.max(record.len());
                return Ok(());
            }
            if let Err(e) = self.spill_current() {
                return Err(self.fail(e));
            }
        }
    }

    #[cold]
    fn too_long(&self, len: usize) -> Error {
        Error::invalid(format!(
            "record of {len} bytes exceeds the longest this sorter takes ({} bytes, with {} \
             pages of {} bytes)",
            self.max_record_len,
            self.stats.memory_bytes / self.page_size as u64,
            self.page_size
        ))
    }

    fn spill_current(&mut self) -> Result<()> {
        let mut full = self.current.take().expect("a buffer while adding");
        full.sort();
        self.note_pages(full.pages_in_use() + self.in_flight_pages + self.write_page_count);
        let file = match self.dir.create() {
            Ok(f) => f,
            Err(e) => {
                self.current = Some(full);
                return Err(e);
            }
        };
        if self.writer.is_none() {
            let pages = std::mem::take(&mut self.write_pages);
            self.writer = Some(BackgroundWriter::start(pages, write_run)?);
        }
        let pages = full.pages_in_use();
        self.writer
            .as_mut()
            .expect("started above")
            .submit((full, file))?;
        self.in_flight_pages += pages;
        let next = match self.idle.pop() {
            Some(b) => b,
            None => self.wait_one()?,
        };
        self.current = Some(next);
        Ok(())
    }

    /// Takes the oldest spill's result: its run, and its buffer, emptied.
    fn wait_one(&mut self) -> Result<SortBuffer> {
        let (mut buffer, result) = self.writer.as_mut().expect("a writer").wait()?;
        self.in_flight_pages -= buffer.pages_in_use();
        let run = result?;
        self.stats.spilled_runs += 1;
        self.stats.spilled_bytes += run.bytes();
        self.runs.push(run);
        buffer.clear();
        Ok(buffer)
    }

    /// Ends the input: sorts what is in memory, or spills it and merges the runs until one
    /// pass can merge the rest into the output. Then [`next_record`](Self::next_record)
    /// returns the records in order.
    pub fn finish(&mut self) -> Result<()> {
        self.check_phase(false)?;
        match self.finish_inner() {
            Ok(()) => {
                self.phase = Phase::Finished;
                Ok(())
            }
            Err(e) => Err(self.fail(e)),
        }
    }

    fn finish_inner(&mut self) -> Result<()> {
        if self.writer.is_none() {
            let mut buffer = self.current.take().expect("a buffer while adding");
            buffer.sort();
            self.note_pages(buffer.pages_in_use());
            self.output = Output::Memory {
                buffer: Box::new(buffer),
                next: 0,
            };
            return Ok(());
        }
        if !self
            .current
            .as_ref()
            .expect("a buffer while adding")
            .is_empty()
        {
            self.spill_current()?;
        }
        while self.writer.as_ref().is_some_and(|w| w.pending() > 0) {
            let buffer = self.wait_one()?;
            self.idle.push(buffer);
        }
        let write_pages = self.writer.take().expect("a writer").stop()?;
        let mut all = pages_of(self.current.take());
        for b in self.idle.drain(..) {
            all.extend(b.into_pages());
        }
        if write_pages.len() != self.write_page_count {
            return Err(Error::Io(
                "the spill writer lost pages after a failed write".into(),
            ));
        }
        all.extend(write_pages);
        self.merge(all)
    }

    fn merge(&mut self, mut pages: Vec<Segment>) -> Result<()> {
        let p = pages.len();
        let s = if self.longest > crate::io::block::max_record_len(self.page_size) {
            self.longest.div_ceil(self.page_size)
        } else {
            0
        };
        self.merge_scratch_pages = s;
        // Each run being read counts its page and its scratch; a pass also writes through one
        // page, or more if there are enough to spare.
        let final_fan_in = p / (1 + s);
        let fan_in = (p - 1) / (1 + s);
        debug_assert!(fan_in >= 2, "max_record_len leaves room to merge two runs");
        while self.runs.len() > final_fan_in {
            self.stats.merge_passes += 1;
            let old = std::mem::take(&mut self.runs);
            let mut old = old.into_iter().peekable();
            let mut next = Vec::new();
            while old.peek().is_some() {
                let group: Vec<Run> = old.by_ref().take(fan_in).collect();
                if group.len() == 1 {
                    next.extend(group);
                    continue;
                }
                let writing = write_pages_for(p - group.len() * (1 + s));
                let write_pages = pages.split_off(pages.len() - writing);
                let per_run = read_pages_per_run(p - writing, group.len(), s);
                let read_pages = pages.split_off(pages.len() - group.len() * per_run);
                self.note_pages(group.len() * (per_run + s) + writing);
                let mut merger = Merger::new(group, read_pages, self.key.clone(), per_run)?;
                let mut writer = RunWriter::new(self.dir.create()?, write_pages)?;
                while let Some(record) = merger.next_record()? {
                    writer.push(record)?;
                }
                let (run, write_pages) = writer.finish();
                let run = run?;
                self.stats.spilled_bytes += run.bytes();
                next.push(run);
                pages.extend(merger.into_pages());
                pages.extend(write_pages);
            }
            self.runs = next;
        }
        self.stats.merge_passes += 1;
        let per_run = read_pages_per_run(p, self.runs.len(), s);
        self.note_pages(self.runs.len() * (per_run + s));
        let runs = std::mem::take(&mut self.runs);
        self.output = Output::Merge(Merger::new(runs, pages, self.key.clone(), per_run)?);
        Ok(())
    }

    /// The next record in key order, or `None` once all were returned. The slice lies in the
    /// sorter's pages and is valid until the next call on the sorter. A spill file found
    /// truncated or corrupted is `Corrupted` and ends the sorter.
    pub fn next_record(&mut self) -> Result<Option<&[u8]>> {
        self.check_phase(true)?;
        let step = match &mut self.output {
            Output::Memory { buffer, next } => {
                if *next == buffer.len() {
                    return Ok(None);
                }
                *next += 1;
                buffer.prefetch(*next + PREFETCH_RECORDS);
                Ok(())
            }
            Output::None => return Ok(None),
            Output::Merge(merger) => merger.next_record().map(|_| ()),
        };
        if let Err(e) = step {
            return Err(self.fail(e));
        }
        // Borrowed again, so that the error path above could take `self`.
        match &mut self.output {
            Output::Memory { buffer, next } => Ok(Some(buffer.record(*next - 1))),
            Output::Merge(merger) => merger.current_record(),
            Output::None => Ok(None),
        }
    }
}

/// Pages each of `runs` runs is read through when `pages` are there for reading and each run
/// also counts `scratch` pages: as many as there are, up to [`READ_AHEAD_PAGES`], at least one.
fn read_pages_per_run(pages: usize, runs: usize, scratch: usize) -> usize {
    (pages / runs.max(1))
        .saturating_sub(scratch)
        .clamp(1, READ_AHEAD_PAGES)
}

/// The longest record a sorter of `pages` pages whose smallest sort buffer has `buffer_pages`
/// takes (see [`ExternalSorter::max_record_len`]).
fn max_record_len(pages: usize, buffer_pages: usize, page_size: usize) -> usize {
    let whole_block = crate::io::block::max_record_len(page_size);
    // Merging two runs, each with a scratch of `s` pages, and writing one page.
    let merge_scratch = pages.saturating_sub(3) / 2;
    if merge_scratch == 0 {
        return whole_block;
    }
    let in_buffer = super::buffer::max_record_len_in(buffer_pages, page_size);
    whole_block.max(in_buffer.min(merge_scratch * page_size))
}

fn pages_of(buffer: Option<SortBuffer>) -> Vec<Segment> {
    buffer.map(SortBuffer::into_pages).unwrap_or_default()
}

/// The spill writer thread's work: the sorted records of `buffer` into `file`, block by block
/// through the thread's `pages` (written behind it when there are several). After a failure,
/// the pages are dropped with the writer.
fn write_run((buffer, file): SpillJob, pages: &mut Vec<Segment>) -> SpillDone {
    let result = (|| {
        let mut writer = RunWriter::new(file, std::mem::take(pages))?;
        for i in 0..buffer.len() {
            buffer.prefetch(i + PREFETCH_RECORDS);
            let record = buffer.get(i);
            match record.as_slice() {
                Some(bytes) => writer.push(bytes)?,
                None => writer.push_parts(record.len(), record.parts())?,
            }
        }
        let (run, back) = writer.finish();
        *pages = back;
        run
    })();
    (buffer, result)
}

/// Pages a sorter of `pages` pages spills through: one per 32 pages (so a small share of the
/// memory), from 1 to 8. With more than one, blocks are written behind the gathering of records
/// into the next, and the disk is kept busy.
fn write_pages_for(pages: usize) -> usize {
    (pages / 32).clamp(1, 8)
}
