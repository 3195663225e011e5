//! `memseg demo`: the library end to end, with built-in defaults.
//!
//! The main job: generates records in the classic sort benchmark's format (100 bytes, 10-byte
//! keys), sorts them with the external sorter under a deliberately small memory budget, so
//! that it spills runs and merges them in more than one pass, and checks that the output is in
//! order and holds exactly the input (count and checksum); it prints records/s, spilled runs,
//! merge passes and peak memory; the sorter's pages come from a memory manager's lease. Before
//! that, a tour of the layers underneath: an output view on a lease and a producer/consumer
//! pipeline through a local buffer pool (`layers.rs`), and the segments:
//!
//! Packs fixed-width records (a big-endian key, a little-endian value, a native counter)
//! into 32 KiB off-heap segments, reads them back and checks every one, moves records
//! between heap and off-heap segments with bulk copies, compares and swaps ranges, and
//! wraps host memory with a release callback. Prints what it did and how fast.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use std::path::PathBuf;

use memseg::{ByteOrder, OffHeapOptions, Segment};

use crate::jobs;
use crate::records::{self, RECORD as SORT_RECORD, Summary, human};

/// Bytes per record: u64 key (big-endian), f64 value (little-endian), u32 counter (native),
/// u32 padding.
const RECORD: usize = 24;

/// Options of `memseg demo`.
#[derive(clap::Args)]
pub struct DemoArgs {
    /// Records to sort (100 bytes each).
    #[arg(long, default_value_t = 1_000_000)]
    records: u64,
    /// The sorter's memory budget, such as 2M: small on purpose, so that it spills.
    #[arg(long, default_value = "2M", value_parser = records::parse_size)]
    memory: usize,
    /// The sorter's page size.
    #[arg(long, default_value = "64K", value_parser = records::parse_size)]
    page_size: usize,
    /// Seed of the generated records.
    #[arg(long, default_value_t = 2026)]
    seed: u64,
    /// Directory for spill files (default: the system's temporary directory).
    #[arg(long)]
    temp_dir: Option<PathBuf>,
    /// Memory for the segment tour, in MiB.
    #[arg(long, default_value_t = 32)]
    megabytes: usize,
    /// Segment size in bytes, for the segment tour.
    #[arg(long, default_value_t = 32 * 1024)]
    segment_size: usize,
}

pub fn run(args: &DemoArgs) -> Result<(), Box<dyn std::error::Error>> {
    println!("memseg {}", env!("CARGO_PKG_VERSION"));
    segment_tour(args)?;
    crate::layers::views_on_a_lease()?;
    crate::layers::records_through_a_pool(20_000)?;
    sort_job(args)?;
    println!("all checks passed");
    Ok(())
}

/// Sorts generated benchmark records under a small budget and checks the result.
fn sort_job(args: &DemoArgs) -> Result<(), Box<dyn std::error::Error>> {
    let n = args.records;
    println!(
        "\nexternal sort: {n} records of {SORT_RECORD} bytes ({}) in a budget of {} ({} pages of {})",
        human(n * SORT_RECORD as u64),
        human(args.memory as u64),
        args.memory / args.page_size.max(1),
        human(args.page_size as u64)
    );
    let started = Instant::now();
    let mut job = jobs::sorter(args.memory, args.page_size, args.temp_dir.as_deref())?;
    let sorter = &mut job.sorter;
    let mut input = Summary::default();
    let mut record = [0u8; SORT_RECORD];
    let pb = jobs::bar(n, "gen+sort", false);
    for i in 0..n {
        records::generate(args.seed, i, false, &mut record);
        input.add(&record);
        sorter.add(&record)?;
        if i % 16384 == 0 {
            pb.set_position(i);
        }
    }
    pb.finish_and_clear();
    let added = started.elapsed();
    jobs::finish_with_spinner(sorter)?;
    let finished = started.elapsed();
    let mut output = Summary::default();
    let pb = jobs::bar(n, "merge+check", false);
    while let Some(record) = sorter.next_record()? {
        output.add(record);
        if output.records % 16384 == 0 {
            pb.set_position(output.records);
        }
    }
    pb.finish_and_clear();
    let elapsed = started.elapsed();
    println!(
        "  generate + add {:.2} s, finish (spill the rest, merge passes) {:.2} s, final merge {:.2} s",
        added.as_secs_f64(),
        (finished - added).as_secs_f64(),
        (elapsed - finished).as_secs_f64()
    );
    jobs::report(&sorter.stats(), elapsed);
    if output.records != input.records {
        return Err(format!(
            "{} records came out of {} put in",
            output.records, input.records
        )
        .into());
    }
    if let Some(i) = output.first_unordered {
        return Err(format!("output record {i} is out of order").into());
    }
    if output.checksum != input.checksum {
        return Err(format!(
            "output checksum {:032x} differs from the input's {:032x}",
            output.checksum, input.checksum
        )
        .into());
    }
    let stats = sorter.stats();
    if stats.peak_memory_bytes > stats.memory_bytes {
        return Err("the sorter used more memory than its budget".into());
    }
    println!(
        "  output in order, {} records, checksum {:032x} equals the input's",
        output.records, output.checksum
    );
    job.close()
}

fn key_of(i: u64) -> u64 {
    // A bijective scramble, so keys are distinct but not in order.
    i.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ (i >> 7)
}

fn segment_tour(args: &DemoArgs) -> Result<(), Box<dyn std::error::Error>> {
    let segment_size = args.segment_size;
    if segment_size < RECORD {
        return Err(format!("--segment-size must be at least {RECORD} bytes").into());
    }
    let count = (args.megabytes << 20) / segment_size;
    if count == 0 {
        return Err("--megabytes is smaller than one segment".into());
    }
    let per_segment = segment_size / RECORD;
    let records = (count * per_segment) as u64;
    println!(
        "segments: {count} off-heap segments of {segment_size} bytes ({} MiB), {records} records of {RECORD} bytes",
        (count * segment_size) >> 20
    );

    let started = Instant::now();
    let options = OffHeapOptions {
        huge_pages: true,
        prefault: true,
    };
    let mut segments = (0..count)
        .map(|_| Segment::allocate_off_heap(segment_size, options))
        .collect::<Result<Vec<_>, _>>()?;
    println!("  allocate + prefault      {:>8.1} ms", ms(started));

    let started = Instant::now();
    let mut expected_sum = 0f64;
    for (s, segment) in segments.iter_mut().enumerate() {
        for r in 0..per_segment {
            let i = (s * per_segment + r) as u64;
            let offset = r * RECORD;
            let value = i as f64 * 0.5;
            expected_sum += value;
            segment.put(offset, key_of(i), ByteOrder::Big)?;
            segment.put(offset + 8, value, ByteOrder::Little)?;
            segment.put(offset + 16, i as u32, ByteOrder::Native)?;
        }
    }
    let write_time = started.elapsed();
    println!(
        "  write records            {:>8.1} ms  ({:.1} M records/s)",
        write_time.as_secs_f64() * 1e3,
        records as f64 / write_time.as_secs_f64() / 1e6
    );

    let started = Instant::now();
    let mut sum = 0f64;
    for (s, segment) in segments.iter().enumerate() {
        for r in 0..per_segment {
            let i = (s * per_segment + r) as u64;
            let offset = r * RECORD;
            let key: u64 = segment.get(offset, ByteOrder::Big)?;
            let counter: u32 = segment.get(offset + 16, ByteOrder::Native)?;
            if key != key_of(i) || counter != i as u32 {
                return Err(
                    format!("record {i} read back wrong: key {key:#x}, counter {counter}").into(),
                );
            }
            // The big-endian key reads back byte-reversed in little-endian.
            let reversed: u64 = segment.get(offset, ByteOrder::Little)?;
            if reversed != key.swap_bytes() {
                return Err(format!("record {i}: byte order mismatch").into());
            }
            sum += segment.get::<f64>(offset + 8, ByteOrder::Little)?;
        }
    }
    let read_time = started.elapsed();
    if sum != expected_sum {
        return Err(format!("value sum {sum} differs from {expected_sum}").into());
    }
    println!(
        "  read + verify records    {:>8.1} ms  ({:.1} M records/s, value sum {sum})",
        read_time.as_secs_f64() * 1e3,
        records as f64 / read_time.as_secs_f64() / 1e6
    );

    // Copy every off-heap segment into one heap segment and back, checking it matches.
    let started = Instant::now();
    let mut staging = Segment::allocate_heap(segment_size)?;
    for segment in &segments {
        segment.copy_to(0, &mut staging, 0, segment_size)?;
        if !staging.equal(0, segment, 0, segment_size)? {
            return Err("heap copy differs from its off-heap source".into());
        }
    }
    let copy_time = started.elapsed();
    println!(
        "  copy + compare segments  {:>8.1} ms  ({:.2} GB/s copied and compared)",
        copy_time.as_secs_f64() * 1e3,
        (count * segment_size) as f64 / copy_time.as_secs_f64() / 1e9
    );

    // Swap the first records of two segments, and check each holds the other's.
    if count >= 2 {
        let (first, rest) = segments.split_at_mut(1);
        let before = first[0].compare(0, &rest[0], 0, RECORD)?;
        first[0].swap_with(0, &mut rest[0], 0, RECORD)?;
        let after = first[0].compare(0, &rest[0], 0, RECORD)?;
        if after != before.reverse() {
            return Err("swap did not exchange the records".into());
        }
        println!("  swap records             ok (order {before:?} became {after:?})");
    }

    // Wrap host memory; the release callback runs exactly once, when the segment drops.
    let released = Arc::new(AtomicUsize::new(0));
    let mut host = vec![0u8; segment_size].into_boxed_slice();
    let host_ptr = std::ptr::NonNull::new(host.as_mut_ptr()).expect("a boxed slice is never null");
    {
        let released = Arc::clone(&released);
        // SAFETY: `host` outlives the segment (dropped at the end of this block) and is not
        // touched while the segment exists.
        let mut foreign = unsafe {
            Segment::wrap_foreign(
                host_ptr,
                segment_size,
                Some(Box::new(move |_, _| {
                    released.fetch_add(1, Ordering::SeqCst);
                })),
            )?
        };
        foreign.fill(0, segment_size, 0xAB)?;
        foreign.put(0, 0xCAFE_F00Du32, ByteOrder::Big)?;
    }
    if released.load(Ordering::SeqCst) != 1
        || host[..4] != [0xCA, 0xFE, 0xF0, 0x0D]
        || host[4] != 0xAB
    {
        return Err("foreign segment: release callback or writes not seen by the host".into());
    }
    println!("  foreign memory           ok (host sees the writes, release callback ran once)");

    drop(segments);
    Ok(())
}

fn ms(started: Instant) -> f64 {
    started.elapsed().as_secs_f64() * 1e3
}
