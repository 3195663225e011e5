//! Sort benchmark (see BENCHMARKS.md): `cargo bench --bench sort`.
//!
//! The in-memory sort of the sort buffer — 10 million 100-byte records with 10-byte random
//! keys (the sort benchmark's format), an 8-byte key prefix in the index, ties decided on the
//! records — against the standard library's `sort_unstable` of (8-byte key prefix, record
//! index) pairs over the same records, measured in the same run. Both sort an index and leave
//! the records where they are; the baseline's pairs are built before its clock starts, as the
//! buffer's index is built by `add` before its clock starts (filling is timed separately).
//! Each side runs `ROUNDS` times on fresh copies; the medians are compared.
//!
//! Without `--bench` (as `cargo test --all-targets` runs it) it sorts 100 000 records once, as
//! a smoke test that checks the order; its figures mean nothing.

use std::hint::black_box;
use std::time::{Duration, Instant};

use memseg::Segment;
use memseg::sort::{KeyConfig, SortBuffer};

const RECORD: usize = 100;
const KEY: usize = 10;
const PAGE: usize = 32 * 1024;

fn splitmix(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

fn records(n: usize) -> Vec<u8> {
    let mut data = vec![0u8; n * RECORD];
    let mut s = 42;
    for (i, r) in data.chunks_exact_mut(RECORD).enumerate() {
        r[..8].copy_from_slice(&splitmix(&mut s).to_le_bytes());
        r[8..10].copy_from_slice(&(splitmix(&mut s) as u16).to_le_bytes());
        r[10..26].copy_from_slice(format!("{i:016x}").as_bytes());
        r[26..].fill(b'A' + (i % 26) as u8);
    }
    data
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let (n, rounds) = if full { (10_000_000, 5) } else { (100_000, 1) };
    if !full {
        println!("sort: smoke run (no --bench): {n} records, figures mean nothing");
    }
    println!(
        "in-memory sort of {n} records of {RECORD} bytes ({KEY}-byte keys, 8-byte prefix), \
         {PAGE}-byte pages, {rounds} round(s)"
    );
    let data = records(n);
    let key = KeyConfig::bytes(0, KEY);

    // Pages for the records (a u32 length + 100 bytes each, never split) and the index.
    let per_page = PAGE / (RECORD + 4);
    let pages_needed = n.div_ceil(per_page) + (n * 16).div_ceil(PAGE) + 1;
    let mut pages: Vec<Segment> = (0..pages_needed)
        .map(|_| Segment::allocate_heap(PAGE).expect("page"))
        .collect();

    // The two sides alternate round by round, so that both see the same machine load.
    let mut ours = Vec::new();
    let mut fills = Vec::new();
    let mut baseline = Vec::new();
    for _ in 0..rounds {
        let mut buffer = SortBuffer::new(pages, key.clone()).expect("buffer");
        let start = Instant::now();
        for r in data.chunks_exact(RECORD) {
            assert!(buffer.add(r).expect("add"), "the pages hold every record");
        }
        fills.push(start.elapsed());
        let start = Instant::now();
        buffer.sort();
        ours.push(start.elapsed());
        let mut previous: &[u8] = &[];
        for r in buffer.iter() {
            let r = r.as_slice().expect("100-byte records lie in one page");
            assert!(
                previous[..previous.len().min(KEY)] <= r[..KEY],
                "out of order"
            );
            previous = r;
        }
        assert_eq!(buffer.len(), n);
        pages = buffer.into_pages();

        let mut pairs: Vec<(u64, u32)> = data
            .chunks_exact(RECORD)
            .enumerate()
            .map(|(i, r)| (u64::from_be_bytes(r[..8].try_into().unwrap()), i as u32))
            .collect();
        let start = Instant::now();
        pairs.sort_unstable();
        baseline.push(start.elapsed());
        black_box(&pairs);
        assert!(pairs.windows(2).all(|w| w[0].0 <= w[1].0));
    }

    let (ours, baseline, fill) = (median(ours), median(baseline), median(fills));
    println!(
        "  SortBuffer::add (copy into pages + index)   {:>8.1} ms  ({:.1} M records/s)",
        fill.as_secs_f64() * 1e3,
        n as f64 / fill.as_secs_f64() / 1e6
    );
    println!(
        "  SortBuffer::sort (radix on index in pages)  {:>8.1} ms",
        ours.as_secs_f64() * 1e3
    );
    println!(
        "  std sort_unstable of (u64 prefix, u32 idx)  {:>8.1} ms",
        baseline.as_secs_f64() * 1e3
    );
    println!(
        "  ratio (std time / memseg time)              {:>8.2}x",
        baseline.as_secs_f64() / ours.as_secs_f64()
    );
}
