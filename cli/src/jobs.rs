//! `memseg gen`, `memseg sort` and `memseg check`, and the sorting shared with the demo.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};
use memseg::manager::{Allocation, Lease, ManagerConfig, MemoryKind, MemoryManager};
use memseg::sort::{ExternalSorter, KeyConfig, SortConfig, SortStats};

use crate::direct::{DirectWriter, RecordReader};
use crate::records::{self, KEY, RECORD, Summary, human};

type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;

/// Ends the sorter's input (the merge, when it spilled) with a spinner on stderr meanwhile.
pub fn finish_with_spinner(sorter: &mut ExternalSorter) -> Result<()> {
    let spinner = ProgressBar::new_spinner();
    spinner.set_message("merging runs");
    spinner.enable_steady_tick(Duration::from_millis(200));
    sorter.finish()?;
    spinner.finish_and_clear();
    Ok(())
}

/// A progress bar on stderr over `len` units (hidden when stderr is not a terminal).
pub fn bar(len: u64, what: &str, bytes: bool) -> ProgressBar {
    let template = if bytes {
        "{msg:>10} [{bar:40}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}"
    } else {
        "{msg:>10} [{bar:40}] {human_pos}/{human_len} {per_sec} eta {eta}"
    };
    let pb = ProgressBar::new(len);
    pb.set_style(
        ProgressStyle::with_template(template)
            .expect("a valid template")
            .progress_chars("=> "),
    );
    pb.set_message(what.to_string());
    pb
}

/// A sort whose memory is a memory manager's budget: the manager holds exactly the sort's
/// memory as pre-faulted off-heap pages, and the sorter gets all of them through one lease,
/// so it cannot use more (the command's own file buffers are outside the budget).
pub struct BudgetedSort {
    /// The sorter, on the lease's pages (declared first: it gives them back when dropped).
    pub sorter: ExternalSorter,
    /// The sort's account at the manager.
    pub lease: Lease,
    /// The budget.
    pub manager: MemoryManager,
}

/// A sorter for benchmark records (10-byte keys, 8 of them in the index) in `memory` bytes of
/// pages of `page_size` bytes from a memory manager of that size.
pub fn sorter(memory: usize, page_size: usize, temp_dir: Option<&Path>) -> Result<BudgetedSort> {
    if page_size == 0 || memory % page_size != 0 {
        return Err(format!(
            "the memory ({memory}) must be a multiple of the page size ({page_size})"
        )
        .into());
    }
    let manager = MemoryManager::new(
        ManagerConfig::new(memory as u64)
            .with_page_size(page_size)
            .with_kind(MemoryKind::OffHeap)
            .with_allocation(Allocation::Preallocated),
    )?;
    let lease = manager.open_lease("sort", None)?;
    let pages = lease.allocate_many(memory / page_size)?;
    let config = SortConfig {
        temp_dir: temp_dir.map(Path::to_path_buf),
        ..SortConfig::new(KeyConfig::bytes(0, KEY))
    };
    Ok(BudgetedSort {
        sorter: ExternalSorter::new(pages, config)?,
        lease,
        manager,
    })
}

impl BudgetedSort {
    /// Prints what the budget saw, then gives the pages back and checks that the manager has
    /// every page again and no lease open.
    pub fn close(self) -> Result<()> {
        let usage = self.lease.usage();
        let stats = self.manager.stats();
        println!(
            "  memory manager: {} pages of {}, lease '{}' held {} (peak {}), {} free",
            stats.pages_total,
            human(stats.page_size as u64),
            self.lease.name(),
            usage.pages,
            usage.peak_pages,
            stats.pages_free
        );
        drop(self.sorter);
        let closed = self.lease.close();
        let report = self.manager.close()?;
        let after = self.manager.stats();
        if after.pages_used != 0 || !report.is_clean() {
            return Err(format!(
                "the budget is not whole again: {} pages used, report {}",
                after.pages_used,
                report.to_json()
            )
            .into());
        }
        println!(
            "  after the sort: every page back ({} reclaimed at close), no lease left open",
            closed.pages_reclaimed
        );
        Ok(())
    }
}

/// Prints what a sort did.
pub fn report(stats: &SortStats, elapsed: Duration) {
    let secs = elapsed.as_secs_f64();
    println!(
        "  {} records ({}) in {:.2} s: {:.2} M records/s, {}/s",
        stats.records,
        human(stats.record_bytes),
        secs,
        stats.records as f64 / secs / 1e6,
        human((stats.record_bytes as f64 / secs) as u64)
    );
    println!(
        "  spilled runs {}, merge passes {}, spilled {}",
        stats.spilled_runs,
        stats.merge_passes,
        human(stats.spilled_bytes)
    );
    println!(
        "  peak memory {} of a budget of {} (pages holding records, index or I/O blocks)",
        human(stats.peak_memory_bytes),
        human(stats.memory_bytes)
    );
    if let Some(rss) = records::peak_rss() {
        println!("  process peak RSS {}", human(rss));
    }
}

/// `memseg gen COUNT OUT`.
#[derive(clap::Args)]
pub struct GenArgs {
    /// Number of 100-byte records.
    count: u64,
    /// Output file.
    out: PathBuf,
    /// Seed of the deterministic sequence.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// ASCII records (printable keys, one line each, as `gensort -a`) instead of binary ones.
    #[arg(long)]
    ascii: bool,
}

pub fn gen_cmd(args: &GenArgs) -> Result<()> {
    let mut out =
        DirectWriter::create(&args.out).map_err(|e| format!("{}: {e}", args.out.display()))?;
    let pb = bar(args.count, "generate", false);
    let mut record = [0u8; RECORD];
    let mut summary = Summary::default();
    for i in 0..args.count {
        records::generate(args.seed, i, args.ascii, &mut record);
        summary.add(&record);
        out.write_all(&record)?;
        if i % 65536 == 0 {
            pb.set_position(i);
        }
    }
    out.finish()?;
    pb.finish_and_clear();
    println!(
        "{}: {} records, checksum {:032x}, duplicate keys {}",
        args.out.display(),
        summary.records,
        summary.checksum,
        summary.duplicate_keys
    );
    Ok(())
}

/// `memseg sort --memory SIZE IN OUT`.
#[derive(clap::Args)]
pub struct SortArgs {
    /// Input file of 100-byte records.
    input: PathBuf,
    /// Output file.
    output: PathBuf,
    /// Memory for the sorter (records, index and I/O buffers), such as 256M.
    #[arg(long, value_parser = records::parse_size)]
    memory: usize,
    /// Page size, such as 256K.
    #[arg(long, default_value = "256K", value_parser = records::parse_size)]
    page_size: usize,
    /// Directory for spill files (default: the system's temporary directory).
    #[arg(long)]
    temp_dir: Option<PathBuf>,
}

pub fn sort_cmd(args: &SortArgs) -> Result<()> {
    let started = Instant::now();
    let mut input = RecordReader::open(&args.input, RECORD)
        .map_err(|e| format!("{}: {e}", args.input.display()))?;
    let len = input.len();
    let mut job = sorter(args.memory, args.page_size, args.temp_dir.as_deref())?;
    let sorter = &mut job.sorter;
    // The command's own I/O buffers, outside the sorter's budget: 1 MiB each way.
    let pb = bar(len, "read+sort", true);
    loop {
        let n = input.for_each_in_chunk(|record| Ok(sorter.add(record)?))?;
        if n == 0 {
            break;
        }
        pb.inc(n as u64);
    }
    pb.finish_and_clear();
    let added = started.elapsed();
    finish_with_spinner(sorter)?;
    let finished = started.elapsed();
    let mut out = DirectWriter::create(&args.output)
        .map_err(|e| format!("{}: {e}", args.output.display()))?;
    let pb = bar(len, "write", true);
    let mut written = 0u64;
    while let Some(record) = sorter.next_record()? {
        out.write_all(record)?;
        written += 1;
        if written % 65536 == 0 {
            pb.set_position(written * RECORD as u64);
        }
    }
    out.finish()?;
    pb.finish_and_clear();
    let elapsed = started.elapsed();
    println!("{} -> {}", args.input.display(), args.output.display());
    println!(
        "  read + add + spill {:.2} s, finish {:.2} s, merge + write {:.2} s",
        added.as_secs_f64(),
        (finished - added).as_secs_f64(),
        (elapsed - finished).as_secs_f64()
    );
    report(&sorter.stats(), elapsed);
    job.close()
}

/// `memseg check IN`.
#[derive(clap::Args)]
pub struct CheckArgs {
    /// File of 100-byte records.
    input: PathBuf,
}

pub fn check_cmd(args: &CheckArgs) -> Result<()> {
    let mut input = RecordReader::open(&args.input, RECORD)
        .map_err(|e| format!("{}: {e}", args.input.display()))?;
    let len = input.len();
    let mut summary = Summary::default();
    let pb = bar(len, "check", true);
    loop {
        let n = input.for_each_in_chunk(|r| {
            summary.add(r);
            Ok(())
        })?;
        if n == 0 {
            break;
        }
        pb.inc(n as u64);
    }
    pb.finish_and_clear();
    println!(
        "{}: {} records, checksum {:032x}, duplicate keys {}",
        args.input.display(),
        summary.records,
        summary.checksum,
        summary.duplicate_keys
    );
    match summary.first_unordered {
        None => {
            println!("  in order");
            Ok(())
        }
        Some(i) => Err(format!(
            "record {i} is out of order (its key is smaller than the one before)"
        )
        .into()),
    }
}
