//! Buffer pool benchmarks (see BENCHMARKS.md): `cargo bench --bench pool`.
//!
//! Each figure is measured in this run beside its baseline, variants interleaved over several
//! rounds, medians printed with the ratio:
//!
//! 1. request + recycle of a buffer (`LocalBufferPool::request`, drop) against a bare
//!    `crossbeam` `ArrayQueue` pop + push of a segment index (the floor: the pool's own fast
//!    path is one such pop and push), and against glibc `malloc` + `free` of 32 KiB; the same
//!    through the C ABI (`memseg_local_pool_request` + `memseg_buffer_release`), for the record.
//! 2. retain + release of a buffer reference against `Arc::clone` + drop.
//! 3. builder -> consumer throughput across two threads (32 KiB buffers filled in 256-byte
//!    appends, each committed; the consumer copies every slice out) against a bare SPSC hand-off
//!    of the same bytes through pre-allocated 32 KiB regions with one atomic end-of-data word
//!    each.
//!
//! Without `--bench` (as `cargo test --benches` runs it) every part runs briefly as a smoke
//! test; the figures then mean nothing.

use std::hint::black_box;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use crossbeam_queue::ArrayQueue;
use memseg::ffi::{memseg_buffer, memseg_buffer_release, memseg_local_pool_request, memseg_status};
use memseg::pool::{BufferConsumer, LocalPoolConfig, NetworkBufferPool, SegmentMemory};

#[path = "common/mod.rs"]
mod common;
use common::median;

const SEGMENT: usize = 32 * 1024;
const CHUNK: usize = 256;

/// Runs each variant `rounds` times, interleaved, rotating the order; returns the medians of
/// ns per operation.
fn measure(rounds: usize, variants: &mut [(&str, &mut dyn FnMut() -> f64)]) -> Vec<f64> {
    let mut samples = vec![Vec::new(); variants.len()];
    for round in 0..rounds {
        for k in 0..variants.len() {
            let i = (k + round) % variants.len();
            samples[i].push((variants[i].1)());
        }
    }
    samples.into_iter().map(median).collect()
}

fn time_per_op(ops: usize, f: impl FnOnce()) -> f64 {
    let start = Instant::now();
    f();
    start.elapsed().as_nanos() as f64 / ops as f64
}

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let (ops, rounds, buffers) = if full {
        (2_000_000, 11, 20_000)
    } else {
        println!("pool: smoke run (no --bench): tiny counts, figures mean nothing");
        (1_000, 1, 20)
    };
    println!(
        "machine: {} CPUs; load average at start: {}",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        std::fs::read_to_string("/proc/loadavg")
            .unwrap_or_default()
            .trim()
    );

    // ---- 1. request + recycle --------------------------------------------------------------
    let net = NetworkBufferPool::new(64, SEGMENT, SegmentMemory::default()).unwrap();
    let pool = net.create_local_pool(LocalPoolConfig::new(64, 64)).unwrap();
    // Warm: every segment has been in the pool's own queue once.
    let warm: Vec<_> = (0..64).map(|_| pool.request().unwrap()).collect();
    drop(warm);
    let queue = ArrayQueue::<u32>::new(64);
    for i in 0..64 {
        queue.push(i).unwrap();
    }
    let mut pool_op = || {
        time_per_op(ops, || {
            for _ in 0..ops {
                let b = pool.request().unwrap();
                black_box(&b);
                drop(b);
            }
        })
    };
    let mut queue_op = || {
        time_per_op(ops, || {
            for _ in 0..ops {
                let i = queue.pop().unwrap();
                black_box(i);
                queue.push(i).unwrap();
            }
        })
    };
    let mut malloc_op = || {
        time_per_op(ops, || {
            for _ in 0..ops {
                // SAFETY: plain malloc/free of a block nothing else sees.
                unsafe {
                    let p = libc::malloc(SEGMENT);
                    assert!(!p.is_null());
                    black_box(p);
                    libc::free(p);
                }
            }
        })
    };
    let results = measure(
        rounds,
        &mut [
            ("pool", &mut pool_op),
            ("queue", &mut queue_op),
            ("malloc", &mut malloc_op),
        ],
    );
    let (p, q, m) = (results[0], results[1], results[2]);
    println!("\n1. request + recycle, one thread ({ops} ops x {rounds} rounds, medians)");
    println!("   LocalBufferPool request + drop      {p:7.2} ns");
    println!(
        "   ArrayQueue pop + push (floor)       {q:7.2} ns   pool / floor  = {:.2}x",
        p / q
    );
    println!(
        "   malloc + free 32 KiB                {m:7.2} ns   pool / malloc = {:.2}x",
        p / m
    );

    // The same through the C ABI (handle registry included), measured once beside the floor.
    let ffi_pool = {
        let config = memseg::ffi::memseg_local_pool_config {
            min: 64,
            max: 64,
            ..Default::default()
        };
        let mut netp = memseg::ffi::memseg_network_pool::default();
        // SAFETY: valid out pointers.
        assert_eq!(
            unsafe { memseg::ffi::memseg_network_pool_new(64, SEGMENT, 0, &mut netp) },
            memseg_status::Ok
        );
        let mut lp = memseg::ffi::memseg_local_pool::default();
        // SAFETY: valid config and out pointer.
        assert_eq!(
            unsafe { memseg::ffi::memseg_local_pool_new(netp, &config, &mut lp) },
            memseg_status::Ok
        );
        (netp, lp)
    };
    let mut ffi_op = || {
        time_per_op(ops, || {
            for _ in 0..ops {
                let mut b = memseg_buffer::default();
                // SAFETY: valid out pointer.
                let s = unsafe { memseg_local_pool_request(ffi_pool.1, &mut b) };
                debug_assert_eq!(s, memseg_status::Ok);
                black_box(b);
                memseg_buffer_release(b);
            }
        })
    };
    let mut queue_op2 = || {
        time_per_op(ops, || {
            for _ in 0..ops {
                let i = queue.pop().unwrap();
                black_box(i);
                queue.push(i).unwrap();
            }
        })
    };
    let results = measure(
        rounds,
        &mut [("ffi", &mut ffi_op), ("queue", &mut queue_op2)],
    );
    println!(
        "   C ABI request + release             {:7.2} ns   C ABI / floor = {:.2}x",
        results[0],
        results[0] / results[1]
    );
    memseg::ffi::memseg_local_pool_destroy(ffi_pool.1);
    memseg::ffi::memseg_network_pool_destroy(ffi_pool.0);

    // ---- 2. retain + release ---------------------------------------------------------------
    let held = pool.request().unwrap();
    let arc = Arc::new(0u64);
    let mut retain_op = || {
        time_per_op(ops, || {
            for _ in 0..ops {
                let r = held.retain();
                black_box(&r);
                drop(r);
            }
        })
    };
    let mut arc_op = || {
        time_per_op(ops, || {
            for _ in 0..ops {
                let r = Arc::clone(&arc);
                black_box(&r);
                drop(r);
            }
        })
    };
    let results = measure(
        rounds,
        &mut [("retain", &mut retain_op), ("arc", &mut arc_op)],
    );
    println!("\n2. retain + release of a buffer that stays referenced");
    println!(
        "   Buffer::retain + drop               {:7.2} ns",
        results[0]
    );
    println!(
        "   Arc::clone + drop                   {:7.2} ns   buffer / Arc  = {:.2}x",
        results[1],
        results[0] / results[1]
    );
    drop(held);

    // ---- 3. builder -> consumer ------------------------------------------------------------
    let pool_rate = || builder_consumer(&pool, buffers);
    let bare_rate = || bare_spsc(buffers);
    let mut pool_gbs = Vec::new();
    let mut bare_gbs = Vec::new();
    for round in 0..rounds.min(5) {
        if round % 2 == 0 {
            pool_gbs.push(pool_rate());
            bare_gbs.push(bare_rate());
        } else {
            bare_gbs.push(bare_rate());
            pool_gbs.push(pool_rate());
        }
    }
    let (pg, bg) = (median(pool_gbs), median(bare_gbs));
    println!(
        "\n3. builder -> consumer across two threads ({buffers} buffers of 32 KiB, {CHUNK}-byte commits)"
    );
    println!("   BufferBuilder -> BufferConsumer     {pg:7.2} GB/s");
    println!(
        "   bare SPSC regions + atomic end      {bg:7.2} GB/s   pool / bare   = {:.2}x",
        pg / bg
    );
    println!(
        "\nload average at end: {}",
        std::fs::read_to_string("/proc/loadavg")
            .unwrap_or_default()
            .trim()
    );
}

/// Writer fills builders in `CHUNK` appends with a commit each; the reader copies each slice
/// out. Consumers travel through a small queue. Returns GB/s.
fn builder_consumer(pool: &memseg::pool::LocalBufferPool, buffers: usize) -> f64 {
    let handoff = ArrayQueue::<BufferConsumer>::new(8);
    let chunk = [7u8; CHUNK];
    let start = Instant::now();
    let copied = std::thread::scope(|s| {
        let reader = s.spawn(|| {
            let mut scratch = vec![0u8; SEGMENT];
            let mut total = 0usize;
            for _ in 0..buffers {
                let mut consumer = loop {
                    if let Some(c) = handoff.pop() {
                        break c;
                    }
                    std::hint::spin_loop();
                };
                let mut at = 0;
                loop {
                    let finished = consumer.is_finished();
                    let slice = consumer.build();
                    let n = slice.size();
                    slice.get_bytes(0, &mut scratch[at..at + n]).unwrap();
                    at += n;
                    if finished && !consumer.is_data_available() {
                        break;
                    }
                    if n == 0 {
                        std::hint::spin_loop();
                    }
                }
                total += at;
                black_box(&scratch);
            }
            total
        });
        for _ in 0..buffers {
            let mut builder = loop {
                match pool.request_builder(None) {
                    Ok(b) => break b,
                    Err(_) => std::hint::spin_loop(),
                }
            };
            let mut consumer = Some(builder.create_consumer());
            while !builder.is_full() {
                builder.append(&chunk).unwrap();
                builder.commit();
                if let Some(c) = consumer.take() {
                    let mut c = c;
                    while let Err(back) = handoff.push(c) {
                        c = back;
                        std::hint::spin_loop();
                    }
                }
            }
            builder.finish();
        }
        reader.join().unwrap()
    });
    assert_eq!(copied, buffers * SEGMENT);
    copied as f64 / start.elapsed().as_secs_f64() / 1e9
}

/// The same bytes through pre-allocated regions: one atomic end word per region (top bit:
/// finished), region indices handed over and back through two queues. Returns GB/s.
fn bare_spsc(buffers: usize) -> f64 {
    const REGIONS: usize = 64;
    const DONE: usize = 1 << 63;
    struct Region {
        bytes: Box<[std::cell::UnsafeCell<u8>]>,
        end: AtomicUsize,
    }
    // SAFETY: bytes below `end` are only read, bytes above only written, by one thread each.
    unsafe impl Sync for Region {}
    let regions: Vec<Region> = (0..REGIONS)
        .map(|_| Region {
            bytes: (0..SEGMENT)
                .map(|_| std::cell::UnsafeCell::new(0))
                .collect(),
            end: AtomicUsize::new(0),
        })
        .collect();
    let free = ArrayQueue::<usize>::new(REGIONS);
    for i in 0..REGIONS {
        free.push(i).unwrap();
    }
    let handoff = ArrayQueue::<usize>::new(8);
    let chunk = [7u8; CHUNK];
    let start = Instant::now();
    let copied = std::thread::scope(|s| {
        let reader = s.spawn(|| {
            let mut scratch = vec![0u8; SEGMENT];
            let mut total = 0usize;
            for _ in 0..buffers {
                let r = loop {
                    if let Some(r) = handoff.pop() {
                        break r;
                    }
                    std::hint::spin_loop();
                };
                let region = &regions[r];
                let mut at = 0;
                loop {
                    let word = region.end.load(Ordering::Acquire);
                    let end = word & !DONE;
                    // SAFETY: bytes below `end` were published by the writer's release store.
                    unsafe {
                        std::ptr::copy_nonoverlapping(
                            region.bytes[at..end].as_ptr().cast::<u8>(),
                            scratch[at..end].as_mut_ptr(),
                            end - at,
                        )
                    };
                    at = end;
                    if word & DONE != 0 {
                        break;
                    }
                    std::hint::spin_loop();
                }
                total += at;
                black_box(&scratch);
                region.end.store(0, Ordering::Relaxed);
                free.push(r).unwrap();
            }
            total
        });
        for _ in 0..buffers {
            let r = loop {
                if let Some(r) = free.pop() {
                    break r;
                }
                std::hint::spin_loop();
            };
            let region = &regions[r];
            let mut at = 0;
            let mut sent = false;
            while at < SEGMENT {
                // SAFETY: bytes at and above the published end are the writer's alone.
                unsafe {
                    std::ptr::copy_nonoverlapping(chunk.as_ptr(), region.bytes[at].get(), CHUNK)
                };
                at += CHUNK;
                region.end.store(at, Ordering::Release);
                if !sent {
                    sent = true;
                    while handoff.push(r).is_err() {
                        std::hint::spin_loop();
                    }
                }
            }
            region.end.store(at | DONE, Ordering::Release);
        }
        reader.join().unwrap()
    });
    assert_eq!(copied, buffers * SEGMENT);
    copied as f64 / start.elapsed().as_secs_f64() / 1e9
}
