//! One pool operation in a loop, for counting instructions with callgrind (load-independent,
//! unlike the timings of `benches/pool.rs`):
//!
//! ```sh
//! cargo build --release --example pool_ops
//! for op in pool queue retain arc ffi; do for n in 0 100000; do
//!   valgrind --tool=callgrind --callgrind-out-file=cg.$op.$n target/release/examples/pool_ops $op $n
//! done; done   # instructions per op = (total at 100000 - total at 0) / 100000
//! ```
//!
//! `pool`: `LocalBufferPool::request` + drop; `queue`: a bare `ArrayQueue` pop + push (the
//! floor); `retain`: `Buffer::retain` + drop; `arc`: `Arc::clone` + drop; `ffi`:
//! `memseg_local_pool_request` + `memseg_buffer_release` (the C ABI, handles included).

use std::hint::black_box;

use crossbeam_queue::ArrayQueue;
use memseg::ffi::{
    memseg_buffer, memseg_buffer_release, memseg_local_pool, memseg_local_pool_config,
    memseg_local_pool_destroy, memseg_local_pool_new, memseg_local_pool_request,
    memseg_network_pool, memseg_network_pool_destroy, memseg_network_pool_new, memseg_status,
};
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
        "ffi" => {
            let config = memseg_local_pool_config {
                min: 64,
                max: 64,
                ..Default::default()
            };
            let (mut net, mut local) =
                (memseg_network_pool::default(), memseg_local_pool::default());
            // SAFETY: valid config and out pointers.
            unsafe {
                assert_eq!(
                    memseg_network_pool_new(64, 32 * 1024, 0, &mut net),
                    memseg_status::Ok
                );
                assert_eq!(
                    memseg_local_pool_new(net, &config, &mut local),
                    memseg_status::Ok
                );
            }
            for _ in 0..n {
                let mut b = memseg_buffer::default();
                // SAFETY: a valid out pointer.
                let status = unsafe { memseg_local_pool_request(local, &mut b) };
                assert_eq!(status, memseg_status::Ok);
                black_box(b);
                memseg_buffer_release(b);
            }
            memseg_local_pool_destroy(local);
            memseg_network_pool_destroy(net);
        }
        other => panic!("unknown op {other}: pool, queue, retain, arc or ffi"),
    }
}
