//! The memory manager through the C ABI: managers, their configuration, stats, the failure
//! snapshot and the close report. Leases are in `lease.rs`, shared resources and the memory
//! plan in `shared.rs` and `plan.rs`.

use std::ffi::c_char;
use std::sync::Mutex;

use super::args::{checked_out, write_out};
use super::handle::{HandleError, HandleKind, HandleTable, Ref};
use super::lease::{LEASES, LeaseEntry, reclaim_pages};
use super::status::{FfiError, memseg_status};
use crate::error::Error;
use crate::ffi_boundary;
use crate::manager::manager::lock;
use crate::manager::{
    Allocation, FailureCause, LeakReport, ManagerConfig, MemoryKind, MemoryManager,
};

/// A handle to a memory manager: a budget of fixed-size pages shared by leases.
///
/// Create with `memseg_manager_new()`; the caller owns it and must close it with
/// `memseg_manager_close()`. Thread-safe: every call on a manager may run on many threads at
/// once.
#[allow(non_camel_case_types)]
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct memseg_manager {
    /// Opaque: kind tag, generation and slot. Zero is never a valid handle.
    pub bits: u64,
}

/// `memseg_manager_config.flags`: allocate and pre-fault every page when the manager is
/// created and recycle them through a lock-free queue (otherwise pages are allocated on demand
/// and given back to the operating system on release).
pub const MEMSEG_MANAGER_PREALLOCATE: u32 = 1 << 0;

/// How to build a memory manager. Start from `memseg_manager_config_default()`.
#[allow(non_camel_case_types)]
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct memseg_manager_config {
    /// The budget in bytes, rounded **down** to whole pages; must give at least one page.
    pub total_bytes: u64,
    /// Page size: a power of two from 4096 to 2^30 (default 32768).
    pub page_size: usize,
    /// `MEMSEG_MEMORY_KIND_HEAP` or `MEMSEG_MEMORY_KIND_OFFHEAP` (as an `int32_t`).
    pub kind: i32,
    /// 0 or `MEMSEG_MANAGER_PREALLOCATE`.
    pub flags: u32,
}

/// A manager's state at one moment (exact when no allocation or release runs meanwhile).
#[allow(non_camel_case_types)]
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct memseg_manager_stats {
    /// Page size in bytes.
    pub page_size: usize,
    /// Pages in the budget.
    pub pages_total: usize,
    /// Pages held by leases.
    pub pages_used: usize,
    /// Pages that can still be allocated (the budget left, in whole pages). Pages a lease
    /// keeps cached after releasing them count as free: any allocation short of budget takes
    /// them back.
    pub pages_free: usize,
    /// The budget in bytes.
    pub limit_bytes: u64,
    /// Bytes charged: pages held, reservations and shared resources (not pages leases keep
    /// cached).
    pub used_bytes: u64,
    /// Bytes reserved by leases.
    pub reserved_bytes: u64,
    /// Bytes charged for shared resources.
    pub shared_bytes: u64,
    /// Leases open (or closed with pages still out).
    pub leases: usize,
}

/// The most recent allocation a manager could not serve.
#[allow(non_camel_case_types)]
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct memseg_failure_snapshot {
    /// The status the failed call returned: `MEMSEG_STATUS_BUDGET_EXHAUSTED`,
    /// `MEMSEG_STATUS_QUOTA_EXHAUSTED`, `MEMSEG_STATUS_ALLOCATION_FAILED` or
    /// `MEMSEG_STATUS_TIMEOUT`.
    pub status: memseg_status,
    /// Bytes asked for.
    pub requested_bytes: u64,
    /// The budget in bytes.
    pub limit_bytes: u64,
    /// Bytes charged at that moment.
    pub used_bytes: u64,
    /// How many leases the JSON form lists (the top leases by bytes, at most 8).
    pub top_leases: usize,
}

/// What a manager handle names: the manager and the leases opened through the ABI.
pub(crate) struct ManagerEntry {
    pub(crate) manager: MemoryManager,
    /// Lease handles opened on this manager and not yet closed. Held while a lease is opened
    /// and while the manager is closed, so that none escapes the close.
    pub(crate) leases: Mutex<Vec<u64>>,
}

pub(crate) static MANAGERS: HandleTable<ManagerEntry> = HandleTable::new(HandleKind::Manager);

pub(crate) fn manager_entry(
    manager: memseg_manager,
) -> Result<Ref<'static, ManagerEntry>, FfiError> {
    Ok(MANAGERS.get(manager.bits)?)
}

/// Copies `text` into a caller buffer (at most `buf_len - 1` bytes and a NUL) and returns
/// its full length. `buf` may be NULL when `buf_len` is 0.
pub(crate) fn copy_text(text: &str, buf: *mut c_char, buf_len: usize) -> Result<usize, FfiError> {
    if buf.is_null() {
        if buf_len != 0 {
            return Err(FfiError::NullArgument("buf"));
        }
        return Ok(text.len());
    }
    if buf_len > 0 {
        let n = text.len().min(buf_len - 1);
        // SAFETY: the caller promises `buf` is writable for `buf_len` bytes and
        // `n + 1 <= buf_len`; `text` is a separate Rust allocation.
        unsafe {
            std::ptr::copy_nonoverlapping(text.as_ptr(), buf.cast::<u8>(), n);
            buf.add(n).write(0);
        }
    }
    Ok(text.len())
}

/// A configuration with the defaults: `total_bytes`, 32 KiB pages, off-heap, allocated on
/// demand (flags 0). Cannot fail. Thread-safe.
#[unsafe(no_mangle)]
pub extern "C" fn memseg_manager_config_default(total_bytes: u64) -> memseg_manager_config {
    let make = move || memseg_manager_config {
        total_bytes,
        page_size: crate::manager::DEFAULT_PAGE_SIZE,
        kind: super::segment::memseg_memory_kind::Offheap as i32,
        flags: 0,
    };
    // Nothing in `make` can panic; the boundary is there as on every exported function.
    crate::ffi_boundary_value!(make(), { make() })
}

fn core_config(config: &memseg_manager_config) -> Result<ManagerConfig, FfiError> {
    let kind = match config.kind {
        1 => MemoryKind::Heap,
        2 => MemoryKind::OffHeap,
        other => {
            return Err(Error::invalid(format!(
                "memory kind {other} is not MEMSEG_MEMORY_KIND_HEAP (1) or \
                 MEMSEG_MEMORY_KIND_OFFHEAP (2)"
            ))
            .into());
        }
    };
    if config.flags & !MEMSEG_MANAGER_PREALLOCATE != 0 {
        return Err(Error::invalid(format!(
            "unknown manager flag bits {:#x}",
            config.flags & !MEMSEG_MANAGER_PREALLOCATE
        ))
        .into());
    }
    let allocation = if config.flags & MEMSEG_MANAGER_PREALLOCATE != 0 {
        Allocation::Preallocated
    } else {
        Allocation::Lazy
    };
    Ok(ManagerConfig {
        total_bytes: config.total_bytes,
        page_size: config.page_size,
        kind,
        allocation,
    })
}

/// Creates a memory manager from `*config` and writes its handle to `*out_manager`. A
/// preallocated manager allocates and pre-faults all its pages now.
///
/// Fails with `MEMSEG_STATUS_NULL_ARGUMENT` for a NULL pointer; with
/// `MEMSEG_STATUS_INVALID_ARGUMENT` for a page size that is not a power of two or is outside
/// 4096..2^30, a total that gives no page (or exceeds `PTRDIFF_MAX`), an unknown kind or flag;
/// with `MEMSEG_STATUS_ALLOCATION_FAILED` when the operating system refuses a preallocated
/// manager's memory. The caller owns the manager and must close it with
/// `memseg_manager_close()`. Thread-safe.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn memseg_manager_new(
    config: *const memseg_manager_config,
    out_manager: *mut memseg_manager,
) -> memseg_status {
    ffi_boundary!({
        let out = checked_out(out_manager, "out_manager")?;
        let config = checked_out(config.cast_mut(), "config")?;
        // SAFETY: checked non-null; the caller promises it points to a config.
        let config = unsafe { config.as_ptr().read_unaligned() };
        let config = core_config(&config)?;
        let bits = MANAGERS.insert_with(
            || {
                let manager = MemoryManager::new(config)?;
                let entry = ManagerEntry {
                    manager,
                    leases: Mutex::new(Vec::new()),
                };
                Ok::<_, FfiError>((entry, (std::ptr::null_mut(), 0)))
            },
            || {
                FfiError::Core(Error::AllocationFailed {
                    size: 0,
                    reason: "no free manager handles".into(),
                })
            },
        )?;
        // SAFETY: `out` was checked non-null; the caller promises it is writable.
        unsafe { write_out(out, memseg_manager { bits }) };
        Ok(())
    })
}

/// Closes a manager. Every lease still open is closed first: its pages are taken back (every
/// page handle it lent becomes stale), its reservations returned, and its handle becomes
/// stale. What each such lease held is reported, by name, as JSON copied into `report` (at most
/// `report_len - 1` bytes and a NUL; `report` may be NULL when `report_len` is 0), and the
/// report's full length is written to `*out_report_len` if that is not NULL:
/// `{"open_leases":[{"id":..,"name":"..","pages":..,"peak_pages":..,"reserved_bytes":..,
/// "bytes":..,"quota_pages":..|null,"closed":false},..],"open_shared":["key",..]}`.
/// A leak report: closing never aborts. Shared resources still held stay valid until their
/// last `memseg_shared_release()`.
///
/// A zero handle is a no-op returning `MEMSEG_STATUS_OK` (and writes nothing); closing twice
/// returns `MEMSEG_STATUS_STALE_HANDLE`. Thread-safe: lease calls racing with the close fail
/// with `MEMSEG_STATUS_STALE_HANDLE`, and a page allocated by a call that races with it goes
/// back at once. Reading or writing a page's bytes while another thread closes its manager is
/// the host's race, as freeing a segment during a call on it is.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn memseg_manager_close(
    manager: memseg_manager,
    report: *mut c_char,
    report_len: usize,
    out_report_len: *mut usize,
) -> memseg_status {
    ffi_boundary!({
        if manager.bits == 0 {
            return Ok(());
        }
        if report.is_null() && report_len != 0 {
            return Err(FfiError::NullArgument("report"));
        }
        let entry = MANAGERS.remove(manager.bits)?;
        let text = close_entry(&entry).to_json();
        let len = copy_text(&text, report, report_len)?;
        if let Some(out) = std::ptr::NonNull::new(out_report_len) {
            // SAFETY: non-null; the caller promises it is writable.
            unsafe { write_out(out, len) };
        }
        Ok(())
    })
}

/// Closes the leases opened through the ABI (taking their pages back), then the manager.
fn close_entry(entry: &ManagerEntry) -> LeakReport {
    let mut leases = lock(&entry.leases);
    let mut open = Vec::new();
    for bits in leases.drain(..) {
        let Ok(lease) = LEASES.remove_if(bits, |_| Ok::<(), HandleError>(())) else {
            continue;
        };
        open.push(lease.lease.usage());
        close_lease_entry(&lease);
    }
    let report = entry.manager.close().unwrap_or_else(|_| LeakReport {
        open_leases: Vec::new(),
        open_shared: Vec::new(),
        page_size: entry.manager.page_size(),
    });
    drop(leases);
    LeakReport {
        open_leases: open,
        open_shared: report.open_shared,
        page_size: report.page_size,
    }
}

/// Takes back every page of a lease removed from the handle table and closes it.
pub(crate) fn close_lease_entry(lease: &LeaseEntry) -> crate::manager::LeaseClosed {
    let reclaimed = reclaim_pages(lease, true);
    lease.lease.close_pages(reclaimed)
}

/// Writes the manager's state to `*out_stats`. Thread-safe.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn memseg_manager_get_stats(
    manager: memseg_manager,
    out_stats: *mut memseg_manager_stats,
) -> memseg_status {
    ffi_boundary!({
        let out = checked_out(out_stats, "out_stats")?;
        let stats = manager_entry(manager)?.manager.stats();
        let value = memseg_manager_stats {
            page_size: stats.page_size,
            pages_total: stats.pages_total,
            pages_used: stats.pages_used,
            pages_free: stats.pages_free,
            limit_bytes: stats.limit_bytes,
            used_bytes: stats.used_bytes,
            reserved_bytes: stats.reserved_bytes,
            shared_bytes: stats.shared_bytes,
            leases: stats.leases.len(),
        };
        // SAFETY: `out` was checked non-null; the caller promises it is writable.
        unsafe { write_out(out, value) };
        Ok(())
    })
}

/// Copies the manager's state as JSON into `buf` (at most `buf_len - 1` bytes and a NUL;
/// `buf` may be NULL when `buf_len` is 0) and writes its full length to `*out_len`; a length
/// `>= buf_len` means the text was cut: call again with a buffer of that length + 1. The
/// object has the fields of `memseg_manager_stats` and a `"leases"` array with each lease's
/// `id`, `name`, `pages`, `peak_pages`, `reserved_bytes`, `bytes`, `quota_pages` (or null) and
/// `closed`. Thread-safe.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn memseg_manager_stats_json(
    manager: memseg_manager,
    buf: *mut c_char,
    buf_len: usize,
    out_len: *mut usize,
) -> memseg_status {
    ffi_boundary!({
        let out = checked_out(out_len, "out_len")?;
        let text = manager_entry(manager)?.manager.stats().to_json();
        let len = copy_text(&text, buf, buf_len)?;
        // SAFETY: `out` was checked non-null; the caller promises it is writable.
        unsafe { write_out(out, len) };
        Ok(())
    })
}

fn failure_status(cause: FailureCause) -> memseg_status {
    match cause {
        FailureCause::Budget => memseg_status::BudgetExhausted,
        FailureCause::Quota => memseg_status::QuotaExhausted,
        FailureCause::AllocationFailed => memseg_status::AllocationFailed,
        FailureCause::Timeout => memseg_status::Timeout,
    }
}

/// Writes the snapshot taken at the manager's most recent failed allocation, reservation or
/// shared resource (any lease, any thread) to `*out_snapshot`, and `true` to `*out_present`;
/// before the first failure it writes only `false` to `*out_present`. Thread-safe.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn memseg_manager_failure(
    manager: memseg_manager,
    out_snapshot: *mut memseg_failure_snapshot,
    out_present: *mut bool,
) -> memseg_status {
    ffi_boundary!({
        let out = checked_out(out_snapshot, "out_snapshot")?;
        let present = checked_out(out_present, "out_present")?;
        let failure = manager_entry(manager)?.manager.last_failure();
        if let Some(f) = &failure {
            let value = memseg_failure_snapshot {
                status: failure_status(f.cause),
                requested_bytes: f.requested_bytes,
                limit_bytes: f.limit_bytes,
                used_bytes: f.used_bytes,
                top_leases: f.top_leases.len(),
            };
            // SAFETY: `out` was checked non-null; the caller promises it is writable.
            unsafe { write_out(out, value) };
        }
        // SAFETY: as above.
        unsafe { write_out(present, failure.is_some()) };
        Ok(())
    })
}

/// Copies the snapshot of the manager's most recent failure as JSON into `buf` (as
/// `memseg_manager_stats_json()` does) and writes its full length to `*out_len`:
/// `{"cause":"budget_exhausted"|"quota_exhausted"|"allocation_failed"|"timeout","lease":"..",
/// "requested_bytes":..,"limit_bytes":..,"used_bytes":..,"top_leases":[..]}` with the leases
/// charged the most, largest first; the text is `null` before the first failure. Thread-safe.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn memseg_manager_failure_json(
    manager: memseg_manager,
    buf: *mut c_char,
    buf_len: usize,
    out_len: *mut usize,
) -> memseg_status {
    ffi_boundary!({
        let out = checked_out(out_len, "out_len")?;
        let text = manager_entry(manager)?
            .manager
            .last_failure()
            .map_or_else(|| "null".to_string(), |f| f.to_json());
        let len = copy_text(&text, buf, buf_len)?;
        // SAFETY: `out` was checked non-null; the caller promises it is writable.
        unsafe { write_out(out, len) };
        Ok(())
    })
}
