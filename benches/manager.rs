//! Memory manager benchmarks (see BENCHMARKS.md): `cargo bench --bench manager`.
//!
//! Allocate + release of one 32 KiB page through a lease of a preallocated manager, against,
//! in the same run: a bare crossbeam `ArrayQueue` pop + push (the floor: the lock-free queue a
//! preallocated manager recycles its pages through; shared by the threads, and also one per
//! thread, uncontended) and glibc `malloc` + `free` of 32 KiB.
//! Each on one thread, and on two threads at once (each with its own lease of the same
//! manager; the queue shared). The lease is measured through the Rust API (`allocate` +
//! `release`, and `allocate` + drop) and through the C ABI functions (`memseg_lease_allocate`
//! + `memseg_lease_release`, called from Rust, which lend and take back a segment handle).
//!
//! The floor passes one word through `black_box`; the lease's headline row passes the whole
//! page (a `Segment`, 40 bytes) by value, which the compiler then copies through memory; the
//! row below it passes only a reference, to show what that copy costs.
//!
//! Variants run interleaved, in an order that rotates every round; each figure is the median
//! over the rounds, and each ratio the median of the per-round ratios. Nothing asserts a
//! time. Without `--bench` (as `cargo test --all-targets` runs it) everything runs once with a
//! few iterations, as a smoke test.

use std::hint::black_box;
use std::sync::Barrier;
use std::time::Instant;

use crossbeam_queue::ArrayQueue;
use memseg::ffi::{
    MEMSEG_MANAGER_PREALLOCATE, memseg_lease, memseg_manager, memseg_manager_close,
    memseg_manager_config_default, memseg_manager_new, memseg_segment, memseg_status,
};
use memseg::ffi::{memseg_lease_allocate, memseg_lease_open, memseg_lease_release};
use memseg::manager::{Allocation, Lease, ManagerConfig, MemoryKind, MemoryManager};

#[path = "common/mod.rs"]
mod common;
use common::median;

const PAGE: usize = 32 * 1024;
const PAGES: usize = 256;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Variant {
    Queue,
    QueueOwn,
    Malloc,
    LeaseRelease,
    LeaseReleaseRef,
    LeaseDrop,
    Abi,
}

const VARIANTS: [Variant; 7] = [
    Variant::Queue,
    Variant::QueueOwn,
    Variant::Malloc,
    Variant::LeaseRelease,
    Variant::LeaseReleaseRef,
    Variant::LeaseDrop,
    Variant::Abi,
];

fn name(v: Variant) -> &'static str {
    match v {
        Variant::Queue => "ArrayQueue pop+push (floor)",
        Variant::QueueOwn => "  the same, a queue per thread",
        Variant::Malloc => "malloc+free 32 KiB",
        Variant::LeaseRelease => "lease allocate+release (Rust)",
        Variant::LeaseReleaseRef => "  the same, page by reference",
        Variant::LeaseDrop => "lease allocate+drop (Rust)",
        Variant::Abi => "memseg_lease_allocate+release (C ABI)",
    }
}

struct Fixture {
    queue: ArrayQueue<usize>,
    manager: MemoryManager,
    c_manager: memseg_manager,
}

/// What one thread uses: its own lease (Rust) and lease handle (C ABI), and a queue of its
/// own (the floor without the contention of a shared queue, as each lease has its own cache).
struct PerThread {
    lease: Lease,
    c_lease: memseg_lease,
    queue: ArrayQueue<usize>,
}

fn per_thread(fixture: &Fixture, t: usize) -> PerThread {
    let mut c_lease = memseg_lease::default();
    let name = std::ffi::CString::new(format!("bench-{t}")).unwrap();
    // SAFETY: a valid name and out pointer.
    let status = unsafe { memseg_lease_open(fixture.c_manager, name.as_ptr(), 0, &mut c_lease) };
    assert_eq!(status, memseg_status::Ok);
    PerThread {
        lease: fixture
            .manager
            .open_lease(&format!("bench-{t}"), None)
            .unwrap(),
        c_lease,
        queue: full_queue(),
    }
}

/// A queue holding the indexes of `PAGES` pages, as the manager's free queue does.
fn full_queue() -> ArrayQueue<usize> {
    let queue = ArrayQueue::new(PAGES);
    for i in 0..PAGES {
        let _ = queue.push(i);
    }
    queue
}

/// Runs `iters` operations of `variant` and returns nanoseconds per operation.
fn run(variant: Variant, fixture: &Fixture, mine: &PerThread, iters: usize) -> f64 {
    let start = Instant::now();
    match variant {
        Variant::Queue => {
            for _ in 0..iters {
                let page = fixture.queue.pop().expect("the queue is never empty");
                let _ = fixture.queue.push(black_box(page));
            }
        }
        Variant::QueueOwn => {
            for _ in 0..iters {
                let page = mine.queue.pop().expect("the queue is never empty");
                let _ = mine.queue.push(black_box(page));
            }
        }
        Variant::Malloc => {
            for _ in 0..iters {
                // SAFETY: malloc/free of a block of our own.
                unsafe {
                    let p = libc::malloc(PAGE);
                    assert!(!p.is_null());
                    libc::free(black_box(p));
                }
            }
        }
        Variant::LeaseRelease => {
            for _ in 0..iters {
                let page = mine.lease.allocate().expect("a page is free");
                mine.lease.release(black_box(page)).expect("held");
            }
        }
        Variant::LeaseReleaseRef => {
            for _ in 0..iters {
                let page = mine.lease.allocate().expect("a page is free");
                black_box(&page);
                mine.lease.release(page).expect("held");
            }
        }
        Variant::LeaseDrop => {
            for _ in 0..iters {
                drop(black_box(mine.lease.allocate().expect("a page is free")));
            }
        }
        Variant::Abi => {
            for _ in 0..iters {
                let mut page = memseg_segment::default();
                // SAFETY: a valid out pointer.
                let status = unsafe { memseg_lease_allocate(mine.c_lease, &mut page) };
                assert_eq!(status, memseg_status::Ok);
                let status = memseg_lease_release(mine.c_lease, black_box(page));
                assert_eq!(status, memseg_status::Ok);
            }
        }
    }
    start.elapsed().as_nanos() as f64 / iters as f64
}

/// One round of every variant on `threads` threads; returns ns/op per variant (the mean over
/// the threads of each thread's time per operation).
fn round(
    fixture: &Fixture,
    mine: &[PerThread],
    threads: usize,
    iters: usize,
    order: &[Variant],
) -> Vec<(Variant, f64)> {
    let mut out = Vec::new();
    for &variant in order {
        let barrier = Barrier::new(threads);
        let times: Vec<f64> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..threads)
                .map(|t| {
                    let (barrier, mine) = (&barrier, &mine[t]);
                    s.spawn(move || {
                        run(variant, fixture, mine, iters / 10); // warm
                        barrier.wait();
                        run(variant, fixture, mine, iters)
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        out.push((variant, times.iter().sum::<f64>() / threads as f64));
    }
    out
}

fn main() {
    let smoke = !std::env::args().any(|a| a == "--bench");
    let (iters, rounds) = if smoke { (1_000, 1) } else { (2_000_000, 9) };
    if smoke {
        println!("manager: smoke run (no --bench): few iterations, figures mean nothing");
    }
    println!(
        "machine: {} CPUs; load average at start: {}",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        std::fs::read_to_string("/proc/loadavg")
            .unwrap_or_default()
            .trim()
    );
    let queue = full_queue();
    let config = ManagerConfig::new((PAGES * PAGE) as u64)
        .with_kind(MemoryKind::OffHeap)
        .with_allocation(Allocation::Preallocated);
    let mut c_config = memseg_manager_config_default((PAGES * PAGE) as u64);
    c_config.flags = MEMSEG_MANAGER_PREALLOCATE;
    let mut c_manager = memseg_manager::default();
    // SAFETY: valid pointers.
    assert_eq!(
        unsafe { memseg_manager_new(&c_config, &mut c_manager) },
        memseg_status::Ok
    );
    let fixture = Fixture {
        queue,
        manager: MemoryManager::new(config).unwrap(),
        c_manager,
    };
    let mine: Vec<PerThread> = (0..2).map(|t| per_thread(&fixture, t)).collect();

    for threads in [1, 2] {
        let mut figures: Vec<Vec<f64>> = vec![Vec::new(); VARIANTS.len()];
        let mut ratios: Vec<Vec<f64>> = vec![Vec::new(); VARIANTS.len()];
        for r in 0..rounds {
            let mut order = VARIANTS.to_vec();
            order.rotate_left(r % VARIANTS.len());
            let results = round(&fixture, &mine, threads, iters, &order);
            let floor = results
                .iter()
                .find(|(v, _)| *v == Variant::Queue)
                .unwrap()
                .1;
            for (v, ns) in results {
                let i = VARIANTS.iter().position(|x| *x == v).unwrap();
                figures[i].push(ns);
                ratios[i].push(ns / floor);
            }
        }
        println!(
            "\n{threads} thread(s), {iters} operations per thread, {rounds} rounds (medians):"
        );
        for (i, v) in VARIANTS.iter().enumerate() {
            println!(
                "  {:<42} {:>8.1} ns/op   {:>5.2}x the floor",
                name(*v),
                median(figures[i].clone()),
                median(ratios[i].clone())
            );
        }
        let lease = VARIANTS
            .iter()
            .position(|x| *x == Variant::LeaseRelease)
            .unwrap();
        let target = median(ratios[lease].clone());
        let verdict = if smoke {
            "no verdict in a smoke run"
        } else if target <= 1.5 {
            "met"
        } else {
            "not met"
        };
        println!("  target (lease allocate+release within 1.5x the floor): {verdict}");
        let own = VARIANTS
            .iter()
            .position(|x| *x == Variant::QueueOwn)
            .unwrap();
        let against_own: Vec<f64> = figures[lease]
            .iter()
            .zip(&figures[own])
            .map(|(lease, queue)| lease / queue)
            .collect();
        println!(
            "  lease allocate+release against a queue per thread: {:.2}x",
            median(against_own)
        );
    }
    drop(mine);
    // SAFETY: no report buffer.
    let status = unsafe {
        memseg_manager_close(
            fixture.c_manager,
            std::ptr::null_mut(),
            0,
            std::ptr::null_mut(),
        )
    };
    assert_eq!(status, memseg_status::Ok);
    println!(
        "\nload average at end: {}",
        std::fs::read_to_string("/proc/loadavg")
            .unwrap_or_default()
            .trim()
    );
}
