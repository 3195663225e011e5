//! The memory manager: a budget of fixed-size pages with exact, per-owner accounting
//! (Flink's `MemoryManager`), leases, shared resources and the memory plan.
//!
//! - [`config`] holds [`ManagerConfig`] (budget, page size, heap or off-heap, preallocated or lazy).
//! - [`manager`](self::manager) holds [`MemoryManager`].
//! - [`lease`] holds [`Lease`], an owner's account.
//! - [`shared`] holds [`SharedResource`], one object per key held through counted handles.
//! - [`stats`] holds [`ManagerStats`], [`FailureSnapshot`], [`LeakReport`], as structs and JSON.
//! - [`plan`] holds [`MemoryPlan`], Flink's TaskExecutor split of a process size.

mod budget;
pub mod config;
pub mod lease;
#[allow(clippy::module_inception)] // the manager module's central type, as the brief names it
pub mod manager;
mod page_cache;
pub mod plan;
pub mod shared;
pub mod stats;

pub use config::{
    Allocation, DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE, MIN_PAGE_SIZE, ManagerConfig, MemoryKind,
};
pub use lease::{Lease, Rejected};
pub use manager::MemoryManager;
pub use plan::{JvmShares, MemoryPlan, PlanConfig, Share};
pub use shared::SharedResource;
pub use stats::{FailureCause, FailureSnapshot, LeakReport, LeaseClosed, LeaseUsage, ManagerStats};
