//! The memory plan through the C ABI: split a process size into network, managed and the
//! rest, as Flink's TaskExecutor memory model does.

use super::args::{checked_out, write_out};
use super::status::memseg_status;
use crate::error::Error;
use crate::ffi_boundary;
use crate::manager::{JvmShares, MemoryPlan, PlanConfig, Share};

/// One share of memory: an explicit size, or a fraction of a whole within bounds.
#[allow(non_camel_case_types)]
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct memseg_share {
    /// Fraction of the whole, in [0, 1), used when `size` is 0.
    pub fraction: f64,
    /// Least the fraction may give.
    pub min: u64,
    /// Most the fraction may give.
    pub max: u64,
    /// An explicit size in bytes, which takes precedence over the fraction; 0 for none.
    pub size: u64,
}

/// The settings of a memory plan. Start from `memseg_plan_config_default()`.
#[allow(non_camel_case_types)]
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct memseg_plan_config {
    /// The whole process's memory, in bytes.
    pub process_bytes: u64,
    /// 1 for a JVM host (metaspace and overhead come off the top), 0 for a native host.
    pub jvm: u32,
    /// JVM metaspace in bytes (Flink's default 256 MiB); JVM hosts only.
    pub jvm_metaspace: u64,
    /// JVM overhead, a share of the process size (default 10 %, 192 MiB..1 GiB); JVM only.
    pub jvm_overhead: memseg_share,
    /// Network memory, a share of what the JVM leaves (default 10 %, 64 MiB..1 GiB).
    pub network: memseg_share,
    /// Managed memory, a share of the same (default 40 %, unbounded).
    pub managed: memseg_share,
}

/// A process's memory, split. The parts add up to `process_bytes`.
#[allow(non_camel_case_types)]
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct memseg_memory_plan {
    /// The whole process.
    pub process_bytes: u64,
    /// JVM metaspace (0 for native hosts).
    pub jvm_metaspace_bytes: u64,
    /// JVM overhead (0 for native hosts).
    pub jvm_overhead_bytes: u64,
    /// Network buffers: size a buffer pool with it.
    pub network_bytes: u64,
    /// Managed memory: size a manager with it (`memseg_manager_config.total_bytes`).
    pub managed_bytes: u64,
    /// Everything else: the host's own heap and framework memory.
    pub rest_bytes: u64,
}

fn to_c(share: Share) -> memseg_share {
    memseg_share {
        fraction: share.fraction,
        min: share.min,
        max: share.max,
        size: share.size.unwrap_or(0),
    }
}

fn from_c(share: memseg_share) -> Share {
    Share {
        fraction: share.fraction,
        min: share.min,
        max: share.max,
        size: (share.size != 0).then_some(share.size),
    }
}

/// Flink's defaults for a process of `process_bytes`; `jvm` 1 for a JVM host, 0 otherwise.
/// Cannot fail. Thread-safe.
#[unsafe(no_mangle)]
pub extern "C" fn memseg_plan_config_default(process_bytes: u64, jvm: u32) -> memseg_plan_config {
    let make = move || {
        let config = PlanConfig::new(process_bytes);
        let jvm_shares = JvmShares::default();
        memseg_plan_config {
            process_bytes,
            jvm: u32::from(jvm != 0),
            jvm_metaspace: jvm_shares.metaspace,
            jvm_overhead: to_c(jvm_shares.overhead),
            network: to_c(config.network),
            managed: to_c(config.managed),
        }
    };
    // Nothing in `make` can panic; the boundary is there as on every exported function.
    crate::ffi_boundary_value!(make(), { make() })
}

/// Computes the plan of `*config` and writes it to `*out_plan`.
///
/// Fails with `MEMSEG_STATUS_NULL_ARGUMENT` for a NULL pointer and with
/// `MEMSEG_STATUS_INVALID_ARGUMENT` for conflicting settings: a process size of 0, `jvm` other
/// than 0 or 1, a fraction outside [0, 1) (or NaN), a minimum above its maximum, network and
/// managed fractions adding up to 1 or more, JVM metaspace and overhead taking the whole
/// process, or network and managed memory (explicit or derived) exceeding what is available
/// to them. Thread-safe.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn memseg_plan_compute(
    config: *const memseg_plan_config,
    out_plan: *mut memseg_memory_plan,
) -> memseg_status {
    ffi_boundary!({
        let out = checked_out(out_plan, "out_plan")?;
        let config = checked_out(config.cast_mut(), "config")?;
        // SAFETY: checked non-null; the caller promises it points to a config.
        let c = unsafe { config.as_ptr().read_unaligned() };
        let jvm = match c.jvm {
            0 => None,
            1 => Some(JvmShares {
                metaspace: c.jvm_metaspace,
                overhead: from_c(c.jvm_overhead),
            }),
            other => return Err(Error::invalid(format!("jvm must be 0 or 1, not {other}")).into()),
        };
        let plan = MemoryPlan::compute(&PlanConfig {
            process_bytes: c.process_bytes,
            jvm,
            network: from_c(c.network),
            managed: from_c(c.managed),
        })?;
        let value = memseg_memory_plan {
            process_bytes: plan.process_bytes,
            jvm_metaspace_bytes: plan.jvm_metaspace_bytes,
            jvm_overhead_bytes: plan.jvm_overhead_bytes,
            network_bytes: plan.network_bytes,
            managed_bytes: plan.managed_bytes,
            rest_bytes: plan.rest_bytes,
        };
        // SAFETY: `out` was checked non-null; the caller promises it is writable.
        unsafe { write_out(out, value) };
        Ok(())
    })
}
