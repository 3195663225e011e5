//! # memseg
//!
//! Managed memory for data engines, in the style Apache Flink built on the JVM, with a C
//! ABI so that C, C++, Python and JVM hosts share one allocator.
//!
//! The safe Rust API is first-class; the C ABI in [`ffi`] is a thin skin over it.
//!
//! - [`segment`]: fixed-size memory segments (heap, off-heap or host-provided) with typed,
//!   bounds-checked get/put in explicit byte order and bulk operations.
//! - [`manager`]: a budget of pages with per-owner accounting: [`MemoryManager`], leases,
//!   shared resources, stats and the memory plan.
//! - [`view`]: paged output and input views across segments, serialization buffers and
//!   length-prefixed records spanning buffers, in Java's `DataOutput` byte format.
//! - [`pool`]: network and local buffer pools, reference-counted buffers, read-only slices and
//!   the buffer builder/consumer hand-off.
//! - [`sort`]: the sort buffer on normalized keys and the external sorter that spills.
//! - [`io`]: spill files of checksummed whole-page blocks, run readers and writers, and the
//!   writer thread.

#![warn(missing_docs)]
#![deny(unsafe_op_in_unsafe_fn)]

pub mod error;
pub mod ffi;
pub mod io;
pub mod manager;
pub mod pool;
pub mod segment;
pub mod sort;
pub mod view;

pub use error::{Error, Result};
pub use manager::{Lease, ManagerConfig, MemoryManager};
pub use segment::{ByteOrder, OffHeapOptions, Primitive, Region, Segment, SegmentKind};
