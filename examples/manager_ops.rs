//! One memory manager operation in a loop, for counting instructions with callgrind
//! (load-independent, unlike the timings of `benches/manager.rs`):
//!
//! ```sh
//! cargo build --release --example manager_ops
//! for op in lease lease-ref drop queue; do for n in 0 100000; do
//!   valgrind --tool=callgrind --callgrind-out-file=cg.$op.$n target/release/examples/manager_ops $op $n
//! done; done   # instructions per op = (total at 100000 - total at 0) / 100000
//! ```
//!
//! `lease`: `Lease::allocate` + `Lease::release` of one page of a preallocated manager, the
//! page passed through `black_box` by value (as `benches/manager.rs` does); `lease-ref`: the
//! same with only a reference through `black_box`; `drop`: `Lease::allocate` + drop; `queue`:
//! a bare `ArrayQueue` pop + push (the floor).

use std::hint::black_box;

use crossbeam_queue::ArrayQueue;
use memseg::manager::{Allocation, ManagerConfig, MemoryKind, MemoryManager};

const PAGE: usize = 32 * 1024;
const PAGES: usize = 256;

fn main() {
    let mut args = std::env::args().skip(1);
    let op = args.next().unwrap_or_else(|| "lease".into());
    let n: usize = args
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or(1_000_000);
    let config = ManagerConfig::new((PAGES * PAGE) as u64)
        .with_kind(MemoryKind::OffHeap)
        .with_allocation(Allocation::Preallocated);
    let manager = MemoryManager::new(config).unwrap();
    let lease = manager.open_lease("ops", None).unwrap();
    // A page released once sits in the lease's cache, as in a steady loop.
    lease.release(lease.allocate().unwrap()).unwrap();
    let queue = ArrayQueue::<usize>::new(PAGES);
    for i in 0..PAGES {
        queue.push(i).unwrap();
    }
    match op.as_str() {
        "lease" => {
            for _ in 0..n {
                let page = lease.allocate().unwrap();
                lease.release(black_box(page)).unwrap();
            }
        }
        "lease-ref" => {
            for _ in 0..n {
                let page = lease.allocate().unwrap();
                black_box(&page);
                lease.release(page).unwrap();
            }
        }
        "drop" => {
            for _ in 0..n {
                drop(black_box(lease.allocate().unwrap()));
            }
        }
        "queue" => {
            for _ in 0..n {
                let page = queue.pop().unwrap();
                let _ = queue.push(black_box(page));
            }
        }
        other => panic!("unknown op {other}: lease, lease-ref, drop or queue"),
    }
}
