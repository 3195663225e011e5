//! One pool operation in a loop, for counting instructions with callgrind (load-independent,
//! unlike the timings of `benches/pool.rs`):
//!
//! ```sh
//! cargo build --release --example pool_ops
//! for op in pool queue retain arc; do for n in 0 100000; do
//!   valgrind --tool=callgrind --callgrind-out-file=cg.$op.$n target/release/examples/pool_ops $op $n
//! done; done   # instructions per op = (total at 100000 - total at 0) / 100000
//! ```
//!
//! `pool`: `LocalBufferPool::request` + drop; `queue`: a bare `ArrayQueue` pop + push (the
//! floor); `retain`: `Buffer::retain` + drop; `arc`: `Arc::clone` + drop.

use std::hint::black_box;

use crossbeam_queue::ArrayQueue;
use memseg::pool::{LocalPoolConfig, NetworkBufferPool, SegmentMemory};

fn main() {
    let mut args = std::env::args().skip(1);
    let op = args.next().unwrap_or_else(|| "pool".into());
    let n: usize = args
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or(1_000_000);
    let net = NetworkBufferPool::new(64, 32 * 1024, SegmentMemory::Heap).unwrap();
    let pool = net.create_local_pool(LocalPoolConfig::new(64, 64)).unwrap();
    drop((0..64).map(|_| pool.request().unwrap()).collect::<Vec<_>>());
    let queue = ArrayQueue::<u32>::new(64);
    for i in 0..64 {
        queue.push(i).unwrap();
    }
    let held = pool.request().unwrap();
    let arc = std::sync::Arc::new(1u64);
    match op.as_str() {
        "pool" => {
            for _ in 0..n {
                let b = pool.request().unwrap();
                black_box(&b);
                drop(b);
            }
        }
        "queue" => {
            for _ in 0..n {
                let i = queue.pop().unwrap();
                black_box(i);
                queue.push(i).unwrap();
            }
        }
        "retain" => {
            for _ in 0..n {
                let r = held.retain();
                black_box(&r);
                drop(r);
            }
        }
        "arc" => {
            for _ in 0..n {
                let r = std::sync::Arc::clone(&arc);
                black_box(&r);
                drop(r);
            }
        }
        other => panic!("unknown op {other}: pool, queue, retain or arc"),
    }
}
