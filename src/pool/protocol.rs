//! The two lock-free protocols of a buffer, kept apart so that `tests/loom_pool.rs` can
//! model-check this very file with loom's atomics: it includes it with `#[path]` beside a
//! `sync` module of its own, where the library's `sync` re-exports the standard atomics.
//!
//! - [`RefCount`]: the reference count of a pooled buffer. The last release, and only it,
//!   returns `true`, after which the releasing thread owns the buffer alone and sees every
//!   write made through the other references before they were released.
//! - [`CommitWord`]: a buffer's writer index, which is also the builder → consumer hand-off:
//!   bytes below the published end were written before it was published; the top bit says the
//!   builder finished.

use super::sync::{AtomicU32, AtomicUsize, Ordering, fence};

/// The reference count of a pooled buffer.
pub(crate) struct RefCount(AtomicU32);

impl RefCount {
    /// A count of zero (a buffer in a pool).
    #[inline]
    pub(crate) fn new() -> Self {
        RefCount(AtomicU32::new(0))
    }

    /// Starts a buffer's life with one reference (the requester's, who holds it alone).
    #[inline]
    pub(crate) fn start(&self) {
        self.0.store(1, Ordering::Relaxed);
    }

    /// One more reference, made from an existing one (so the count cannot be zero meanwhile,
    /// and no ordering is needed, as in `Arc::clone`). Returns the count before.
    #[inline]
    pub(crate) fn retain(&self) -> u32 {
        self.0.fetch_add(1, Ordering::Relaxed)
    }

    /// Drops one reference; `true` if it was the last.
    ///
    /// A count of 1 seen with an acquire load means the caller holds the only reference: no
    /// other can be made or dropped meanwhile, so no read-modify-write is needed. Otherwise a
    /// release decrement, and the thread that takes the count to zero synchronizes with every
    /// earlier release through the acquire fence.
    #[inline]
    pub(crate) fn release(&self) -> bool {
        let last =
            self.0.load(Ordering::Acquire) == 1 || self.0.fetch_sub(1, Ordering::Release) == 1;
        if last {
            fence(Ordering::Acquire);
            self.0.store(0, Ordering::Relaxed);
        }
        last
    }

    /// The count now.
    #[inline]
    pub(crate) fn get(&self) -> u32 {
        self.0.load(Ordering::Acquire)
    }
}

/// The bit of [`CommitWord`] that a finished builder sets.
pub(crate) const FINISHED: usize = 1 << (usize::BITS - 1);

/// A buffer's writer index: its size, and for a builder's buffer the committed end.
pub(crate) struct CommitWord(AtomicUsize);

impl CommitWord {
    #[inline]
    pub(crate) fn new() -> Self {
        CommitWord(AtomicUsize::new(0))
    }

    /// Publishes `end`: every byte written below it before this call is visible to a thread
    /// that [`read`](Self::read)s this end (or a later one).
    #[inline]
    pub(crate) fn publish(&self, end: usize) {
        self.0.store(end, Ordering::Release);
    }

    /// Publishes `end` and marks the end of the data.
    #[inline]
    pub(crate) fn finish(&self, end: usize) {
        self.0.store(end | FINISHED, Ordering::Release);
    }

    /// The published end, and whether the writer finished.
    #[inline]
    pub(crate) fn read(&self) -> (usize, bool) {
        let word = self.0.load(Ordering::Acquire);
        (word & !FINISHED, word & FINISHED != 0)
    }
}
