//! Leases through the C ABI: an owner's account at a memory manager. Pages are lent to the
//! host as segment handles (`ffi::segment::lend`), which go stale when the page goes back.

use std::collections::HashMap;
use std::ffi::{CStr, c_char};
use std::ptr::NonNull;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use super::args::{checked_out, write_out};
use super::handle::{HandleError, HandleKind, HandleTable, Ref};
use super::lender::LenderName;
use super::manager::{close_lease_entry, manager_entry, memseg_manager};
use super::segment::{lend, lent_region, memseg_segment, take_back};
use super::status::{FfiError, memseg_status};
use crate::error::Error;
use crate::ffi_boundary;
use crate::manager::Lease;
use crate::manager::manager::lock;
use crate::segment::Segment;

/// A handle to a lease: an owner's account at a memory manager, which allocates pages,
/// reserves bytes and releases them.
///
/// Open with `memseg_lease_open()`; the caller owns it and must close it with
/// `memseg_lease_close()` (or it is closed with its manager). Thread-safe: every call on a
/// lease may run on many threads at once.
#[allow(non_camel_case_types)]
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct memseg_lease {
    /// Opaque: kind tag, generation and slot. Zero is never a valid handle.
    pub bits: u64,
}

/// What a lease holds now.
#[allow(non_camel_case_types)]
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct memseg_lease_usage {
    /// Pages it holds.
    pub pages: usize,
    /// The most pages it held at once.
    pub peak_pages: usize,
    /// Bytes it has reserved.
    pub reserved_bytes: u64,
    /// Its page quota; 0 for none.
    pub quota_pages: usize,
}

/// What closing a lease reclaimed.
#[allow(non_camel_case_types)]
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct memseg_lease_closed {
    /// Pages taken back (their handles are stale now).
    pub pages_reclaimed: usize,
    /// Reserved bytes given back.
    pub reserved_bytes_reclaimed: u64,
}

/// Hashes a segment handle's bits for the page map: the bits are unique and their low half is
/// a slot index, so one multiply spreads them well (SipHash would cost more than the map).
#[derive(Default)]
struct HandleHasher(u64);

impl std::hash::Hasher for HandleHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 ^ u64::from(b)).wrapping_mul(0x100_0000_01b3);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = (n ^ (n >> 32)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
}

/// The pages a lease lent to the host, by handle bits, and whether the lease was closed
/// (then it lends no more: a page allocated by a call that raced with the close goes back at
/// once instead of into a map nobody will empty).
#[derive(Default)]
struct PageMap {
    lent: HashMap<u64, Segment, std::hash::BuildHasherDefault<HandleHasher>>,
    closed: bool,
}

/// What a lease handle names: the lease and the pages it lent to the host, by handle.
pub(crate) struct LeaseEntry {
    pub(crate) lease: Lease,
    /// The lender identity of its pages in the segment table: unique per lease opened
    /// through the ABI (the lease tag in the top byte, so no other lender's ids collide),
    /// with the lease's name registered under it for messages.
    lender: LenderName,
    /// How the lease is named in messages about its pages.
    what: String,
    manager_bits: u64,
    pages: Mutex<PageMap>,
}

pub(crate) static LEASES: HandleTable<LeaseEntry> = HandleTable::new(HandleKind::Lease);

static NEXT_LENDER: AtomicU64 = AtomicU64::new(1);

fn lease_entry(lease: memseg_lease) -> Result<Ref<'static, LeaseEntry>, FfiError> {
    Ok(LEASES.get(lease.bits)?)
}

impl LeaseEntry {
    fn lender_id(&self) -> u64 {
        self.lender.id()
    }

    /// Lends `page` to the host under a new segment handle, recorded in the lease's map
    /// (`pages` is the map, locked by the caller). If no handle can be made, the page goes
    /// back.
    fn lend_page(&self, pages: &mut PageMap, page: Segment) -> Result<memseg_segment, FfiError> {
        if pages.closed {
            drop(page);
            return Err(closed_error().into());
        }
        // SAFETY: the page's memory stays valid while the segment is in the map, and the map
        // drops it only after `take_back` made the handle stale.
        let handle = unsafe { lend(page.region(), page.kind(), self.lender_id())? };
        pages.lent.insert(handle.bits, page);
        Ok(handle)
    }

    /// Takes a page back from the host: its handle goes stale and its segment comes out of
    /// the map. Refused, changing nothing, for a page this lease did not lend.
    fn take_page(&self, pages: &mut PageMap, page: memseg_segment) -> Result<Segment, FfiError> {
        if !pages.lent.contains_key(&page.bits) {
            return Err(self.refuse(page));
        }
        take_back(page, self.lender_id())?;
        Ok(pages.lent.remove(&page.bits).expect("checked above"))
    }
}

impl LeaseEntry {
    /// Why `page`, which is not in this lease's map, cannot be given back through it: a
    /// stale or invalid handle, another owner's page, or a host-allocated segment.
    #[cold]
    fn refuse(&self, page: memseg_segment) -> FfiError {
        match lent_region(page, self.lender_id()) {
            Err(e) => e,
            Ok(_) => Error::invalid(format!(
                "segment handle {:#018x} is not held by {}",
                page.bits, self.what
            ))
            .into(),
        }
    }
}

/// Gives every page the lease lent back (handles stale first, then the memory); returns how
/// many.
pub(crate) fn reclaim_pages(entry: &LeaseEntry, close: bool) -> usize {
    let pages: Vec<(u64, Segment)> = {
        let mut map = lock(&entry.pages);
        map.closed |= close;
        let pages: Vec<_> = map.lent.drain().collect();
        // The handles go stale while the map is locked: a release racing with this one must
        // find its page either in the map or stale, never lent but missing from the map.
        for &(bits, _) in &pages {
            // Every page in the map was lent by this lease, so this cannot be refused.
            let _ = take_back(memseg_segment { bits }, entry.lender_id());
        }
        pages
    };
    // The memory goes back outside the lock.
    pages.len()
}

impl Drop for LeaseEntry {
    /// A safety net: a lease entry is closed (its pages taken back) before its handle goes,
    /// but should one still hold pages, their handles go stale before the memory goes back.
    fn drop(&mut self) {
        reclaim_pages(self, true);
    }
}

fn closed_error() -> HandleError {
    HandleError::Stale("lease handle is stale: its lease was already closed".into())
}

/// Opens a lease on `manager` named `name` (a NUL-terminated string, copied; used in stats and
/// reports) with a quota of `quota_pages` pages (0 for no quota), and writes its handle to
/// `*out_lease`.
///
/// Fails with `MEMSEG_STATUS_NULL_ARGUMENT` for a NULL `name` or `out_lease` and with
/// `MEMSEG_STATUS_CLOSED` while the manager is being closed. The caller owns the lease and
/// must close it with `memseg_lease_close()`; closing the manager closes it too. Thread-safe.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn memseg_lease_open(
    manager: memseg_manager,
    name: *const c_char,
    quota_pages: usize,
    out_lease: *mut memseg_lease,
) -> memseg_status {
    ffi_boundary!({
        let out = checked_out(out_lease, "out_lease")?;
        let name = checked_out(name.cast_mut(), "name")?;
        // SAFETY: checked non-null; the caller promises a NUL-terminated string.
        let name = unsafe { CStr::from_ptr(name.as_ptr()) }
            .to_string_lossy()
            .into_owned();
        let entry = manager_entry(manager)?;
        let mut leases = lock(&entry.leases);
        let quota = (quota_pages != 0).then_some(quota_pages);
        let bits = LEASES.insert_with(
            || {
                let lease = entry.manager.open_lease(&name, quota)?;
                let lender_id =
                    (HandleKind::Lease as u64) << 56 | NEXT_LENDER.fetch_add(1, Ordering::Relaxed);
                let what = format!("lease '{name}'");
                let lease_entry = LeaseEntry {
                    lender: LenderName::register(lender_id, what.clone()),
                    what,
                    lease,
                    manager_bits: manager.bits,
                    pages: Mutex::new(PageMap::default()),
                };
                Ok::<_, FfiError>((lease_entry, (std::ptr::null_mut(), 0)))
            },
            || {
                FfiError::Core(Error::AllocationFailed {
                    size: 0,
                    reason: "no free lease handles".into(),
                })
            },
        )?;
        leases.push(bits);
        // SAFETY: `out` was checked non-null; the caller promises it is writable.
        unsafe { write_out(out, memseg_lease { bits }) };
        Ok(())
    })
}

/// Allocates one page and writes its segment handle to `*out_page`. All the segment calls work
/// on it (typed access, `memseg_segment_raw()`, …); it is given back with
/// `memseg_lease_release()` (not `memseg_segment_free()`), after which the handle is stale.
/// A recycled page keeps what its last holder wrote (as in Flink); a fresh one is zeroed.
///
/// Fails with `MEMSEG_STATUS_QUOTA_EXHAUSTED` when the lease's quota is used up,
/// `MEMSEG_STATUS_BUDGET_EXHAUSTED` when the manager's budget is,
/// `MEMSEG_STATUS_ALLOCATION_FAILED` when the operating system refuses a page, and
/// `MEMSEG_STATUS_STALE_HANDLE` after the lease was closed; nothing is allocated then, and
/// `memseg_manager_failure()` tells who holds the memory. The lease owns the page and the
/// caller may use it until it releases it or closes the lease or the manager. Thread-safe.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn memseg_lease_allocate(
    lease: memseg_lease,
    out_page: *mut memseg_segment,
) -> memseg_status {
    ffi_boundary!({
        let out = checked_out(out_page, "out_page")?;
        let handle = allocate_lent(lease)?;
        // SAFETY: `out` was checked non-null; the caller promises it is writable.
        unsafe { write_out(out, handle) };
        Ok(())
    })
}

/// Allocates one page of `lease` and lends it under a new segment handle: the body of
/// `memseg_lease_allocate()`, also used by the output views that take their pages from a
/// lease.
pub(crate) fn allocate_lent(lease: memseg_lease) -> Result<memseg_segment, FfiError> {
    let entry = lease_entry(lease)?;
    let page = entry.lease.allocate().map_err(closed_as_stale)?;
    let mut pages = lock(&entry.pages);
    entry.lend_page(&mut pages, page)
}

/// Runs `f` on the lease `lease` names (for the layers that take their pages from a lease,
/// such as the sorter); a closed lease is a stale handle.
pub(crate) fn with_lease<R>(
    lease: memseg_lease,
    f: impl FnOnce(&Lease) -> Result<R, Error>,
) -> Result<R, FfiError> {
    let entry = lease_entry(lease)?;
    f(&entry.lease).map_err(closed_as_stale)
}

/// Checks that `lease` names an open lease.
pub(crate) fn check_lease(lease: memseg_lease) -> Result<(), FfiError> {
    lease_entry(lease).map(drop)
}

/// Gives a page lent by `lease` back: the body of `memseg_lease_release()`.
pub(crate) fn release_lent(lease: memseg_lease, page: memseg_segment) -> Result<(), FfiError> {
    let entry = lease_entry(lease)?;
    let mut pages = lock(&entry.pages);
    let segment = entry.take_page(&mut pages, page)?;
    drop(pages);
    drop(segment);
    Ok(())
}

/// A closed lease is a stale handle to the host: its handle is removed at close, and a call
/// that raced with the close sees the same status.
fn closed_as_stale(e: Error) -> FfiError {
    match e {
        Error::Closed(_) => closed_error().into(),
        other => other.into(),
    }
}

fn lend_all(
    entry: &LeaseEntry,
    allocated: Vec<Segment>,
    out_pages: NonNull<memseg_segment>,
) -> Result<(), FfiError> {
    let mut pages = lock(&entry.pages);
    let mut handles = Vec::with_capacity(allocated.len());
    for page in allocated {
        match entry.lend_page(&mut pages, page) {
            Ok(handle) => handles.push(handle),
            Err(e) => {
                // All or nothing: give back what was lent so far.
                for handle in handles {
                    if let Ok(page) = entry.take_page(&mut pages, handle) {
                        drop(page);
                    }
                }
                return Err(e);
            }
        }
    }
    drop(pages);
    for (i, handle) in handles.into_iter().enumerate() {
        // SAFETY: the caller promises `out_pages` is writable for `count` handles, and
        // there are `count` of them.
        unsafe { write_out(out_pages.add(i), handle) };
    }
    Ok(())
}

/// Allocates `count` pages, all or nothing, and writes their handles to `out_pages[0..count]`
/// (an array the caller provides). Fails as `memseg_lease_allocate()` does, and with
/// `MEMSEG_STATUS_INVALID_ARGUMENT` for `count` 0; nothing is allocated or written then.
/// Thread-safe.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn memseg_lease_allocate_many(
    lease: memseg_lease,
    count: usize,
    out_pages: *mut memseg_segment,
) -> memseg_status {
    ffi_boundary!({
        let out = checked_out(out_pages, "out_pages")?;
        let entry = lease_entry(lease)?;
        let allocated = entry.lease.allocate_many(count).map_err(closed_as_stale)?;
        lend_all(&entry, allocated, out)
    })
}

/// As `memseg_lease_allocate_many()`, but when the budget or the quota is exhausted it waits
/// up to `timeout_ms` milliseconds for other releases, then fails with
/// `MEMSEG_STATUS_TIMEOUT`. A request no release could serve (more than the quota or the whole
/// budget) fails at once. Blocks the calling thread; thread-safe.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn memseg_lease_allocate_wait(
    lease: memseg_lease,
    count: usize,
    timeout_ms: u64,
    out_pages: *mut memseg_segment,
) -> memseg_status {
    ffi_boundary!({
        let out = checked_out(out_pages, "out_pages")?;
        let entry = lease_entry(lease)?;
        let allocated = entry
            .lease
            .allocate_timeout(count, Duration::from_millis(timeout_ms))
            .map_err(closed_as_stale)?;
        lend_all(&entry, allocated, out)
    })
}

/// Gives a page back to the manager: its handle (and every copy) is stale from now on.
///
/// Fails with `MEMSEG_STATUS_STALE_HANDLE` for a page already released (double release), and
/// with `MEMSEG_STATUS_INVALID_ARGUMENT` for a page this lease does not hold (another lease's,
/// naming it, or a segment the host allocated); nothing changes then. Thread-safe, but no
/// other call on the same page may be running.
#[unsafe(no_mangle)]
pub extern "C" fn memseg_lease_release(lease: memseg_lease, page: memseg_segment) -> memseg_status {
    ffi_boundary!({ release_lent(lease, page) })
}

/// Gives back the `count` pages in `pages[0..count]`, all or nothing: if one is not held by
/// this lease (or appears twice), none is released and the call fails as
/// `memseg_lease_release()` does. `pages` may be NULL when `count` is 0. Thread-safe.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn memseg_lease_release_many(
    lease: memseg_lease,
    pages: *const memseg_segment,
    count: usize,
) -> memseg_status {
    ffi_boundary!({
        let entry = lease_entry(lease)?;
        if count == 0 {
            return Ok(());
        }
        let list = checked_out(pages.cast_mut(), "pages")?;
        // SAFETY: the caller promises `pages` holds `count` handles.
        let list: Vec<memseg_segment> = (0..count)
            .map(|i| unsafe { list.as_ptr().add(i).read_unaligned() })
            .collect();
        let mut map = lock(&entry.pages);
        let mut seen = std::collections::HashSet::with_capacity(count);
        for page in &list {
            if !map.lent.contains_key(&page.bits) {
                return Err(entry.refuse(*page));
            }
            if !seen.insert(page.bits) {
                return Err(Error::invalid(format!(
                    "segment handle {:#018x} appears twice in the list",
                    page.bits
                ))
                .into());
            }
        }
        let mut released = Vec::with_capacity(count);
        for page in list {
            released.push(entry.take_page(&mut map, page)?);
        }
        drop(map);
        drop(released);
        Ok(())
    })
}

/// Gives back every page the lease holds (their handles become stale) and writes how many to
/// `*out_count` if that is not NULL. The lease stays open. Thread-safe.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn memseg_lease_release_all(
    lease: memseg_lease,
    out_count: *mut usize,
) -> memseg_status {
    ffi_boundary!({
        let entry = lease_entry(lease)?;
        let n = reclaim_pages(&entry, false);
        if let Some(out) = NonNull::new(out_count) {
            // SAFETY: non-null; the caller promises it is writable.
            unsafe { write_out(out, n) };
        }
        Ok(())
    })
}

/// Reserves `bytes` of the manager's budget for memory the host allocates itself (Flink's
/// `reserveMemory`, as for an embedded RocksDB), charged to this lease. Fails with
/// `MEMSEG_STATUS_INVALID_ARGUMENT` for 0 and `MEMSEG_STATUS_BUDGET_EXHAUSTED` when they do not
/// fit; nothing changes then. Thread-safe.
#[unsafe(no_mangle)]
pub extern "C" fn memseg_lease_reserve(lease: memseg_lease, bytes: u64) -> memseg_status {
    ffi_boundary!({
        let entry = lease_entry(lease)?;
        entry.lease.reserve(bytes).map_err(closed_as_stale)
    })
}

/// Gives back `bytes` of this lease's reservations. Fails with
/// `MEMSEG_STATUS_INVALID_ARGUMENT` for 0 or more than the lease has reserved; nothing changes
/// then. Thread-safe.
#[unsafe(no_mangle)]
pub extern "C" fn memseg_lease_unreserve(lease: memseg_lease, bytes: u64) -> memseg_status {
    ffi_boundary!({
        let entry = lease_entry(lease)?;
        entry.lease.unreserve(bytes).map_err(closed_as_stale)
    })
}

/// Moves `page` and its charge from lease `from` to lease `to`, and writes the page's new
/// handle (lent by `to`) to `*out_page`; the old handle is stale from then on, the memory and
/// its contents are the same.
///
/// Fails with `MEMSEG_STATUS_INVALID_ARGUMENT` if `from` does not hold the page or `to` belongs
/// to another manager, with `MEMSEG_STATUS_QUOTA_EXHAUSTED` if `to` has no quota left, and with
/// `MEMSEG_STATUS_STALE_HANDLE` for a stale handle; nothing changes then. Transferring to the
/// same lease writes the same handle back. Thread-safe.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn memseg_lease_transfer(
    from: memseg_lease,
    page: memseg_segment,
    to: memseg_lease,
    out_page: *mut memseg_segment,
) -> memseg_status {
    ffi_boundary!({
        let out = checked_out(out_page, "out_page")?;
        let source = lease_entry(from)?;
        let target = lease_entry(to)?;
        if std::ptr::eq(&*source, &*target) {
            // Only checks that the lease holds it.
            lent_region(page, source.lender_id())?;
            // SAFETY: `out` was checked non-null; the caller promises it is writable.
            unsafe { write_out(out, page) };
            return Ok(());
        }
        if source.manager_bits != target.manager_bits {
            return Err(Error::invalid(format!(
                "{} belongs to another memory manager than {}",
                target.what, source.what
            ))
            .into());
        }
        // Both maps, in a fixed order, so that two opposite transfers cannot deadlock.
        let (mut src, mut dst) = if source.lender_id() < target.lender_id() {
            let src = lock(&source.pages);
            (src, lock(&target.pages))
        } else {
            let dst = lock(&target.pages);
            (lock(&source.pages), dst)
        };
        if !src.lent.contains_key(&page.bits) {
            return Err(source.refuse(page));
        }
        if dst.closed {
            return Err(closed_error().into());
        }
        {
            let segment = src.lent.get_mut(&page.bits).expect("checked above");
            source
                .lease
                .transfer(segment, &target.lease)
                .map_err(closed_as_stale)?;
        }
        // Charge moved: now move the loan. Neither step below can be refused (the page is
        // in `src` and lent by `source`); a failure to make the new handle gives the page back.
        let segment = source.take_page(&mut src, page)?;
        let handle = target.lend_page(&mut dst, segment)?;
        // SAFETY: `out` was checked non-null; the caller promises it is writable.
        unsafe { write_out(out, handle) };
        Ok(())
    })
}

/// Writes what the lease holds now to `*out_usage`. Thread-safe.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn memseg_lease_get_usage(
    lease: memseg_lease,
    out_usage: *mut memseg_lease_usage,
) -> memseg_status {
    ffi_boundary!({
        let out = checked_out(out_usage, "out_usage")?;
        let usage = lease_entry(lease)?.lease.usage();
        let value = memseg_lease_usage {
            pages: usage.pages,
            peak_pages: usage.peak_pages,
            reserved_bytes: usage.reserved_bytes,
            quota_pages: usage.quota_pages.unwrap_or(0),
        };
        // SAFETY: `out` was checked non-null; the caller promises it is writable.
        unsafe { write_out(out, value) };
        Ok(())
    })
}

/// Closes a lease: every page it holds goes back to the manager (their handles become stale),
/// its reservations are returned, and the lease handle becomes stale. Writes what was
/// reclaimed to `*out_closed` if that is not NULL.
///
/// A zero handle is a no-op returning `MEMSEG_STATUS_OK`; closing twice (or after the manager
/// closed it) returns `MEMSEG_STATUS_STALE_HANDLE`. Thread-safe, but no other call on the
/// lease or its pages may be running.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn memseg_lease_close(
    lease: memseg_lease,
    out_closed: *mut memseg_lease_closed,
) -> memseg_status {
    ffi_boundary!({
        let Some(entry) = LEASES.free(lease.bits)? else {
            return Ok(());
        };
        if let Ok(manager) = manager_entry(memseg_manager {
            bits: entry.manager_bits,
        }) {
            lock(&manager.leases).retain(|&bits| bits != lease.bits);
        }
        let closed = close_lease_entry(&entry);
        if let Some(out) = NonNull::new(out_closed) {
            let value = memseg_lease_closed {
                pages_reclaimed: closed.pages_reclaimed,
                reserved_bytes_reclaimed: closed.reserved_bytes_reclaimed,
            };
            // SAFETY: non-null; the caller promises it is writable.
            unsafe { write_out(out, value) };
        }
        Ok(())
    })
}
