//! Shared resources through the C ABI: one host object per key, made once, charged once to a
//! manager's budget, held through counted handles.

use std::ffi::{CStr, c_char, c_void};
use std::ptr::NonNull;
use std::sync::Mutex;

use super::args::{checked_out, write_out};
use super::handle::{HandleError, HandleKind, HandleTable};
use super::manager::{manager_entry, memseg_manager};
use super::status::{FfiError, memseg_status};
use crate::error::Error;
use crate::ffi_boundary;
use crate::manager::SharedResource;
use crate::manager::manager::lock;

/// A handle to one holder's share of a shared resource.
///
/// Get with `memseg_shared_acquire()`; the caller owns the share and must end it with
/// `memseg_shared_release()`. Thread-safe.
#[allow(non_camel_case_types)]
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct memseg_shared {
    /// Opaque: kind tag, generation and slot. Zero is never a valid handle.
    pub bits: u64,
}

/// Makes a shared resource of `size` bytes: writes it to `*out_resource` and returns 0, or
/// returns non-zero for failure. Called once per key, under the manager's resource lock, on
/// the thread of the first `memseg_shared_acquire()`; it must not call memseg for the same
/// manager.
#[allow(non_camel_case_types)]
pub type memseg_shared_init_fn = Option<
    unsafe extern "C" fn(ctx: *mut c_void, size: u64, out_resource: *mut *mut c_void) -> i32,
>;

/// Ends a shared resource: called once, by the last `memseg_shared_release()`, on its thread,
/// with the `ctx` given to the first `memseg_shared_acquire()`, the resource and its size.
#[allow(non_camel_case_types)]
pub type memseg_shared_release_fn =
    Option<unsafe extern "C" fn(ctx: *mut c_void, resource: *mut c_void, size: u64)>;

/// A host pointer held by memseg and handed back to the host.
struct HostResource(*mut c_void);
// SAFETY: memseg never dereferences the pointer; it only hands it back to the host, whose
// callbacks are documented to run on whichever thread acquires or releases.
unsafe impl Send for HostResource {}
// SAFETY: as for Send.
unsafe impl Sync for HostResource {}

static SHARED: HandleTable<Mutex<Option<SharedResource>>> =
    HandleTable::new(HandleKind::SharedResource);

/// Gets the resource under `key` (a NUL-terminated string) at `manager`, or makes it: charges
/// `size` bytes to the budget once and calls `init(ctx, size, &resource)`; the last
/// `memseg_shared_release()` calls `release(ctx, resource, size)` (if not NULL) and gives the
/// bytes back (Flink's shared managed memory, as RocksDB's block cache uses). Writes this
/// holder's handle to `*out_shared`.
///
/// Fails with `MEMSEG_STATUS_NULL_ARGUMENT` for a NULL `key`, `init` or `out_shared`; with
/// `MEMSEG_STATUS_INVALID_ARGUMENT` for an empty key, a size of 0, or a size other than the
/// existing resource's; with `MEMSEG_STATUS_BUDGET_EXHAUSTED` when the size does not fit; with
/// `MEMSEG_STATUS_CLOSED` after the manager closed; and with
/// `MEMSEG_STATUS_ALLOCATION_FAILED` when `init` returns non-zero (the bytes go back). For an
/// existing key, `init`, `release` and `ctx` are not used. The caller owns the share and must
/// end it with `memseg_shared_release()`. Thread-safe.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn memseg_shared_acquire(
    manager: memseg_manager,
    key: *const c_char,
    size: u64,
    init: memseg_shared_init_fn,
    release: memseg_shared_release_fn,
    ctx: *mut c_void,
    out_shared: *mut memseg_shared,
) -> memseg_status {
    ffi_boundary!({
        let out = checked_out(out_shared, "out_shared")?;
        let key = checked_out(key.cast_mut(), "key")?;
        let init = init.ok_or(FfiError::NullArgument("init"))?;
        // SAFETY: checked non-null; the caller promises a NUL-terminated string.
        let key = unsafe { CStr::from_ptr(key.as_ptr()) }
            .to_string_lossy()
            .into_owned();
        let entry = manager_entry(manager)?;
        let init_context = HostResource(ctx);
        let release_context = HostResource(ctx);
        let bits = SHARED.insert_with(
            || {
                let resource = entry.manager.shared_resource(
                    &key,
                    size,
                    |size| {
                        let mut made: *mut c_void = std::ptr::null_mut();
                        // SAFETY: the host's callback, called as documented with a writable
                        // out pointer.
                        let code = unsafe { init(init_context.0, size, &mut made) };
                        if code != 0 {
                            return Err(Error::AllocationFailed {
                                size: usize::try_from(size).unwrap_or(usize::MAX),
                                reason: format!("the init callback returned {code}"),
                            });
                        }
                        Ok(HostResource(made))
                    },
                    move |made: HostResource| {
                        let context = &release_context;
                        if let Some(release) = release {
                            // SAFETY: the host's callback for this resource, called once.
                            unsafe { release(context.0, made.0, size) };
                        }
                    },
                )?;
                Ok::<_, FfiError>((Mutex::new(Some(resource)), (std::ptr::null_mut(), 0)))
            },
            || {
                FfiError::Core(Error::AllocationFailed {
                    size: 0,
                    reason: "no free shared resource handles".into(),
                })
            },
        )?;
        // SAFETY: `out` was checked non-null; the caller promises it is writable.
        unsafe { write_out(out, memseg_shared { bits }) };
        Ok(())
    })
}

/// Writes the resource (the pointer `init` made) to `*out_resource`. Valid until the last
/// holder releases it. Thread-safe.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn memseg_shared_get(
    shared: memseg_shared,
    out_resource: *mut *mut c_void,
) -> memseg_status {
    ffi_boundary!({
        let out = checked_out(out_resource, "out_resource")?;
        let entry = SHARED.get(shared.bits)?;
        let guard = lock(&entry);
        let resource = guard
            .as_ref()
            .and_then(|r| r.get::<HostResource>())
            .map(|r| r.0)
            .ok_or_else(|| HandleError::Stale("shared resource was released".into()))?;
        // SAFETY: `out` was checked non-null; the caller promises it is writable.
        unsafe { write_out(out, resource) };
        Ok(())
    })
}

/// Ends this holder's share; the handle is stale afterwards. The last holder's release calls
/// the release callback (on this thread) and gives the bytes back to the budget; `*out_last`,
/// if not NULL, says whether this was the last. A zero handle is a no-op returning
/// `MEMSEG_STATUS_OK`; releasing twice returns `MEMSEG_STATUS_STALE_HANDLE`. Thread-safe.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn memseg_shared_release(
    shared: memseg_shared,
    out_last: *mut bool,
) -> memseg_status {
    ffi_boundary!({
        let Some(entry) = SHARED.free(shared.bits)? else {
            return Ok(());
        };
        let resource = lock(&entry).take();
        let last = resource.is_some_and(SharedResource::release);
        if let Some(out) = NonNull::new(out_last) {
            // SAFETY: non-null; the caller promises it is writable.
            unsafe { write_out(out, last) };
        }
        Ok(())
    })
}
