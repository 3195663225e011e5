//! Loom models of the buffer protocols in `src/pool/protocol.rs`, the very file the library
//! compiles, included here beside loom's atomics:
//!
//! ```sh
//! RUSTFLAGS="--cfg loom" cargo test --release --test loom_pool
//! ```
//!
//! - the reference count: whatever the interleaving, exactly one release is the last, and the
//!   thread that recycles sees every write made through the other references before their
//!   release (loom's `UnsafeCell` reports any access not ordered by happens-before);
//! - the builder → consumer hand-off: the consumer reads only published bytes, sees exactly the
//!   bytes written, and sees the end only after the last byte.

#![cfg(loom)]

mod sync {
    pub(crate) use loom::sync::atomic::{AtomicU32, AtomicUsize, Ordering, fence};
}

#[path = "../src/pool/protocol.rs"]
#[allow(dead_code)]
mod protocol;

use loom::cell::UnsafeCell;
use loom::sync::Arc;
use loom::sync::atomic::{AtomicUsize, Ordering};
use loom::thread;

use protocol::{CommitWord, RefCount};

/// A buffer's shared state in miniature: the count, two cells written through two references,
/// and how many times it was recycled.
struct Shared {
    refs: RefCount,
    cells: [UnsafeCell<u32>; 2],
    recycled: AtomicUsize,
}

impl Shared {
    fn release(&self) {
        if self.refs.release() {
            // The recycler owns the buffer alone: reading every cell must not race.
            let sum: u32 = self.cells.iter().map(|c| c.with(|p| unsafe { *p })).sum();
            assert_eq!(sum, 3, "the recycler sees both writes");
            self.recycled.fetch_add(1, Ordering::Relaxed);
        }
    }
}

#[test]
fn the_last_release_recycles_once_and_sees_every_write() {
    loom::model(|| {
        let shared = Arc::new(Shared {
            refs: RefCount::new(),
            cells: [UnsafeCell::new(0), UnsafeCell::new(0)],
            recycled: AtomicUsize::new(0),
        });
        shared.refs.start();
        shared.refs.retain(); // the second reference, handed to the other thread
        let other = Arc::clone(&shared);
        let t = thread::spawn(move || {
            other.cells[1].with_mut(|p| unsafe { *p = 2 });
            other.release();
        });
        shared.cells[0].with_mut(|p| unsafe { *p = 1 });
        shared.release();
        t.join().unwrap();
        assert_eq!(shared.recycled.load(Ordering::Relaxed), 1);
        assert_eq!(shared.refs.get(), 0);
    });
}

#[test]
fn a_retain_from_a_shared_reference_keeps_the_buffer_until_its_release() {
    loom::model(|| {
        let shared = Arc::new(Shared {
            refs: RefCount::new(),
            cells: [UnsafeCell::new(0), UnsafeCell::new(0)],
            recycled: AtomicUsize::new(0),
        });
        shared.refs.start();
        shared.refs.retain();
        let other = Arc::clone(&shared);
        let t = thread::spawn(move || {
            // A slice made from this thread's reference, then both dropped.
            other.refs.retain();
            other.cells[1].with_mut(|p| unsafe { *p = 2 });
            other.release();
            other.release();
        });
        shared.cells[0].with_mut(|p| unsafe { *p = 1 });
        shared.release();
        t.join().unwrap();
        assert_eq!(shared.recycled.load(Ordering::Relaxed), 1);
    });
}

#[test]
fn the_consumer_reads_exactly_the_committed_bytes_and_then_the_end() {
    const LEN: usize = 3;
    loom::model(|| {
        let bytes: Arc<[UnsafeCell<u8>; LEN]> =
            Arc::new([UnsafeCell::new(0), UnsafeCell::new(0), UnsafeCell::new(0)]);
        let word = Arc::new(CommitWord::new());
        let (b, w) = (Arc::clone(&bytes), Arc::clone(&word));
        let writer = thread::spawn(move || {
            // Two appends and commits, the second of two bytes, then finish.
            b[0].with_mut(|p| unsafe { *p = 10 });
            w.publish(1);
            b[1].with_mut(|p| unsafe { *p = 11 });
            b[2].with_mut(|p| unsafe { *p = 12 });
            w.publish(3);
            w.finish(3);
        });
        let mut read = Vec::new();
        loop {
            let (end, finished) = word.read();
            for cell in &bytes[read.len()..end] {
                read.push(cell.with(|p| unsafe { *p }));
            }
            if finished && read.len() == end {
                break;
            }
            thread::yield_now();
        }
        writer.join().unwrap();
        assert_eq!(read, [10, 11, 12]);
    });
}
