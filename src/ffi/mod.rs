//! The C ABI: a thin skin over the safe Rust API.
//!
//! Every exported function runs its body inside the boundary (`ffi_boundary!`), which
//! catches panics, maps errors to [`memseg_status`] codes and records the thread's last
//! error message. Handles are validated through [`handle`]'s generational tables, so a
//! zeroed, freed or wrong-kind handle is an error status. One file per layer:
//!
//! - [`status`], [`boundary`], [`version`]: conventions shared by every call.
//! - [`segment`], [`segment_typed`]: memory segments.
//! - [`view`], [`serialization`], [`record`], [`view_typed`]: paged views, the serialization
//!   buffer and reader, and records spanning buffers.
//! - [`manager`], [`lease`]: the memory manager, its leases, shared resources and the plan.
//! - [`pool`], [`buffer`]: network and local buffer pools; buffers, slices, builders and
//!   consumers.
//! - [`sort`]: the external sorter and the normalized-key helpers.
//!
//! The header `include/memseg.h` is generated from these files by cbindgen (see
//! `build.rs`); their doc comments are the header's documentation.

#![allow(clippy::missing_safety_doc)] // the safety contract of each function is in its doc, for C readers

mod args;
pub mod boundary;
pub mod buffer;
pub(crate) mod handle;
pub mod lease;
mod lender;
pub mod manager;
pub mod plan;
pub mod pool;
pub mod record;
pub mod segment;
pub mod segment_typed;
pub mod serialization;
pub mod shared;
mod slot_state;
pub mod sort;
pub mod status;
pub mod version;
pub mod view;
pub mod view_typed;

pub use boundary::{last_error_message, memseg_last_error_message};
pub use buffer::*;
pub use lease::*;
pub use manager::*;
pub use plan::*;
pub use pool::*;
pub use record::*;
pub use segment::*;
pub use segment_typed::*;
pub use serialization::*;
pub use shared::*;
pub use sort::*;
pub use status::{memseg_status, memseg_status_name};
pub use version::{memseg_version, memseg_version_string};
pub use view::*;
pub use view_typed::*;
