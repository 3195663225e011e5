//! `memseg_lease_allocate` + `memseg_lease_release` in a loop, for counting instructions with
//! callgrind (load-independent, unlike the timings of `benches/manager.rs`):
//!
//! ```sh
//! cargo build --release --example lease_ops
//! for n in 0 100000; do
//!   valgrind --tool=callgrind --callgrind-out-file=cg.lease.$n target/release/examples/lease_ops $n
//! done   # instructions per pair = (total at 100000 - total at 0) / 100000
//! ```
//!
//! A second argument runs that many threads, each with its own lease (for a profiler:
//! `perf record -g target/release/examples/lease_ops 2000000 2`).
//!
//! The manager is the benchmark's: 256 preallocated pages of 32 KiB (the default page size).

use std::hint::black_box;

use memseg::ffi::{
    MEMSEG_MANAGER_PREALLOCATE, memseg_lease, memseg_lease_allocate, memseg_lease_open,
    memseg_lease_release, memseg_manager, memseg_manager_config_default, memseg_manager_new,
    memseg_segment, memseg_status,
};

fn main() {
    let mut args = std::env::args().skip(1).map(|a| a.parse::<usize>().ok());
    let n = args.next().flatten().unwrap_or(1_000_000);
    let threads = args.next().flatten().unwrap_or(1).max(1);
    let mut config = memseg_manager_config_default(256 * 32 * 1024);
    config.flags = MEMSEG_MANAGER_PREALLOCATE;
    let mut manager = memseg_manager::default();
    // SAFETY: a valid config and out pointer.
    unsafe { assert_eq!(memseg_manager_new(&config, &mut manager), memseg_status::Ok) };
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(move || pairs(manager, n));
        }
    });
}

/// `n` allocate + release pairs through a lease of its own.
fn pairs(manager: memseg_manager, n: usize) {
    let mut lease = memseg_lease::default();
    let name = c"lease_ops";
    // SAFETY: a valid name and out pointer.
    unsafe {
        assert_eq!(
            memseg_lease_open(manager, name.as_ptr(), 0, &mut lease),
            memseg_status::Ok
        );
    }
    for _ in 0..n {
        let mut page = memseg_segment::default();
        // SAFETY: a valid out pointer.
        let status = unsafe { memseg_lease_allocate(lease, &mut page) };
        assert_eq!(status, memseg_status::Ok);
        assert_eq!(
            memseg_lease_release(lease, black_box(page)),
            memseg_status::Ok
        );
    }
}
