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
//! The manager is the benchmark's: 256 preallocated pages of 32 KiB (the default page size).

use std::hint::black_box;

use memseg::ffi::{
    MEMSEG_MANAGER_PREALLOCATE, memseg_lease, memseg_lease_allocate, memseg_lease_open,
    memseg_lease_release, memseg_manager, memseg_manager_config_default, memseg_manager_new,
    memseg_segment, memseg_status,
};

fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or(1_000_000);
    let mut config = memseg_manager_config_default(256 * 32 * 1024);
    config.flags = MEMSEG_MANAGER_PREALLOCATE;
    let (mut manager, mut lease) = (memseg_manager::default(), memseg_lease::default());
    let name = c"lease_ops";
    // SAFETY: a valid config, name and out pointers.
    unsafe {
        assert_eq!(memseg_manager_new(&config, &mut manager), memseg_status::Ok);
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
