//! Network buffer pools: Flink's `NetworkBufferPool`, `LocalBufferPool`, `NetworkBuffer` and
//! `BufferBuilder`/`BufferConsumer`, for native hosts.
//!
//! - [`NetworkBufferPool`] (`network.rs`): a fixed number of segments of one size, allocated
//!   once. It hands out local pools and exclusive segments, and redistributes the segments
//!   above the local pools' minimums in proportion to their spare capacity (max − min).
//! - [`LocalBufferPool`] (`local.rs`): a task's share, between a minimum and a maximum:
//!   non-blocking and blocking requests, per-channel limits, overdraft buffers, buffer
//!   listeners. The request/recycle path is lock-free (a `crossbeam` `ArrayQueue` per pool and
//!   one for the network pool); locks are taken only on the slow paths (waiting, notifying,
//!   redistributing).
//! - Availability (`availability.rs`): a callback and an `eventfd` that is readable while a
//!   buffer is available.
//! - [`Buffer`] (`buffer.rs`): a pooled segment with reader and writer indices, a type tag and a
//!   reference count; the last release recycles it. Read-only slices (`slice.rs`) share the
//!   count.
//! - [`BufferBuilder`]/[`BufferConsumer`] (`builder.rs`): one writer and one reader thread,
//!   committed bytes handed over without locks.
//! - `sources.rs`: a local pool as the page source of an output view, and a buffer builder as
//!   the target of the record serializer.

mod availability;
mod buffer;
mod builder;
mod local;
mod network;
mod protocol;
mod slice;
mod sources;

/// The atomics of `protocol.rs` (loom's in `tests/loom_pool.rs`).
mod sync {
    pub(crate) use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering, fence};
}

pub use availability::AvailabilityCallback;
pub use buffer::{BUFFER_TAG_DATA, BUFFER_TAG_EVENT, Buffer};
pub use builder::{BufferBuilder, BufferConsumer};
pub use local::{BufferListener, LocalBufferPool, LocalPoolConfig, LocalPoolStats};
pub use network::{ExclusiveSegment, NetworkBufferPool, NetworkPoolStats, SegmentMemory};
pub use sources::buffer_segment;
