//! The external sorter through the C ABI, and the normalized-key helpers.
//!
//! A sorter is created with a memory size and a page size and allocates its own off-heap
//! pages (`memory_size / page_size` of them) when it is created; it never uses more memory for
//! records, index entries and I/O buffers than that, spilling sorted runs to temporary files
//! instead. (Once the memory manager is in, a sorter will take its pages from a lease.)

use std::ffi::{CStr, c_char, c_void};
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};

use super::args::{byte_buffer, checked_out, host_bytes, write_out};
use super::handle::{HandleKind, HandleTable};
use super::lease::{memseg_lease, with_lease};
use super::status::{FfiError, memseg_status};
use crate::error::Error;
use crate::ffi_boundary;
use crate::segment::{OffHeapOptions, Segment};
use crate::sort::{CompareFn, ExternalSorter, KeyConfig, SortConfig, normkey};

/// A handle to an external sorter: records go in with `memseg_sorter_add()`, and after
/// `memseg_sorter_finish()` come out in key order from `memseg_sorter_next()`.
///
/// Create with `memseg_sorter_new()`; the caller owns the sorter and must free it with
/// `memseg_sorter_free()`, which also frees its temporary files (which have no name, or are
/// unlinked as soon as they are created where the file system cannot do that, so a process
/// that dies leaves none behind). Calls on one sorter are serialized by a lock inside it and
/// may come from any thread, but the sorter is a single
/// stream: use it from one thread at a time.
#[allow(non_camel_case_types)]
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct memseg_sorter {
    /// Opaque: kind tag, generation and slot. Zero is never a valid handle.
    pub bits: u64,
}

/// A host comparison of two whole records, for keys that the prefix does not decide: returns
/// a negative number, zero or a positive number as `a` sorts before, with or after `b`. It is
/// called only for records whose key prefixes are equal, so it must agree with the prefix
/// order. It runs on the thread that calls `memseg_sorter_add()`, `memseg_sorter_finish()` or
/// `memseg_sorter_next()`, with the `compare_ctx` of the configuration; the record pointers
/// are valid only during the call. It must not call back into this sorter.
#[allow(non_camel_case_types)]
pub type memseg_sort_compare_fn = Option<
    unsafe extern "C" fn(
        ctx: *mut c_void,
        a: *const u8,
        a_len: usize,
        b: *const u8,
        b_len: usize,
    ) -> i32,
>;

/// How a sorter is built: its memory, its key, and where it spills.
///
/// A sorter made with `memseg_sorter_new()` allocates its own off-heap pages
/// (`memory_size / page_size` of them) when it is created and frees them with the sorter; one
/// made with `memseg_sorter_new_on_lease()` takes them from a lease, charged to the manager's
/// budget. Either way it never uses more memory for records, index entries and I/O buffers
/// than those pages. Spill files use direct I/O when pages are
/// at least 128 KiB (the page cache otherwise).
#[allow(non_camel_case_types)]
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct memseg_sort_config {
    /// Bytes of memory for records, index and I/O buffers: a multiple of `page_size`, at
    /// least 3 pages, at most the machine's physical memory.
    pub memory_size: usize,
    /// Bytes per page: a power of two from 4096 to 1 GiB. Records may be longer than a page,
    /// up to the bound `memseg_sorter_max_record_len()` reports, which grows with the memory.
    pub page_size: usize,
    /// Offset of the key in every record.
    pub key_offset: usize,
    /// Bytes of key; every record must be at least `key_offset + key_length` bytes long.
    pub key_length: usize,
    /// Bytes of the key kept in the index and compared as unsigned bytes (at most 56 and at
    /// most `key_length`); when prefixes tie, `compare` decides, or else the rest of the key
    /// as bytes. Make keys byte-comparable with the `memseg_normkey_*` helpers.
    pub prefix_length: usize,
    /// Comparison for records whose prefixes tie; NULL to compare the rest of the key as bytes.
    pub compare: memseg_sort_compare_fn,
    /// Passed to `compare` as is.
    pub compare_ctx: *mut c_void,
    /// Directory for spill files (a NUL-terminated path, copied); NULL for the system's
    /// temporary directory (`TMPDIR`, else `/tmp`). Each file has no name (or is unlinked as
    /// soon as it is created): the directory does not list it, and holds none after a crash.
    pub temp_dir: *const c_char,
}

/// What a sorter did, from `memseg_sorter_stats()`.
#[allow(non_camel_case_types)]
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct memseg_sort_stats {
    /// Records added.
    pub records: u64,
    /// Bytes of the records added.
    pub record_bytes: u64,
    /// Sorted runs spilled to disk from memory (0 when everything fitted).
    pub spilled_runs: u64,
    /// Bytes written to spill files, in all passes.
    pub spilled_bytes: u64,
    /// Merge passes: 0 in memory, 1 when all runs merged at once, more when they outnumbered
    /// the read buffers the memory allows.
    pub merge_passes: u64,
    /// Most bytes of pages in use at once for records, index and I/O buffers.
    pub peak_memory_bytes: u64,
    /// The sorter's memory (`memory_size`): `peak_memory_bytes` never exceeds it.
    pub memory_bytes: u64,
}

static SORTERS: HandleTable<Mutex<ExternalSorter>> = HandleTable::new(HandleKind::Sorter);

const MIN_C_PAGE: usize = 4096;
const MAX_C_PAGE: usize = 1 << 30;

/// The host's comparison and context, callable from the sorter.
struct HostCompare {
    f: unsafe extern "C" fn(*mut c_void, *const u8, usize, *const u8, usize) -> i32,
    ctx: *mut c_void,
}
// SAFETY: memseg never dereferences the context; it hands it to the host's function on the
// threads the host calls the sorter from, as documented on `memseg_sort_compare_fn`.
unsafe impl Send for HostCompare {}
// SAFETY: as above; the sorter's lock serializes the calls.
unsafe impl Sync for HostCompare {}

impl HostCompare {
    fn call(&self, a: &[u8], b: &[u8]) -> std::cmp::Ordering {
        // SAFETY: the host registered `f` for this sorter; the slices are valid records for
        // the duration of the call.
        let r = unsafe { (self.f)(self.ctx, a.as_ptr(), a.len(), b.as_ptr(), b.len()) };
        r.cmp(&0)
    }
}

fn lock(sorter: &Mutex<ExternalSorter>) -> MutexGuard<'_, ExternalSorter> {
    // A panic inside a call is caught at the boundary; the sorter's own state is then either
    // consistent or failed, so a poisoned lock is still usable.
    sorter.lock().unwrap_or_else(|e| e.into_inner())
}

fn physical_memory() -> usize {
    // SAFETY: sysconf has no preconditions.
    let (pages, size) = unsafe {
        (
            libc::sysconf(libc::_SC_PHYS_PAGES),
            libc::sysconf(libc::_SC_PAGESIZE),
        )
    };
    if pages <= 0 || size <= 0 {
        return usize::MAX;
    }
    (pages as usize).saturating_mul(size as usize)
}

/// Where a sorter made through the ABI gets its pages.
enum PageSupply {
    /// Off-heap pages of its own.
    Own,
    /// Pages of a lease, charged to it until the sorter is freed.
    Lease(memseg_lease),
}

fn build(config: &memseg_sort_config, supply: PageSupply) -> Result<ExternalSorter, FfiError> {
    let page = match supply {
        PageSupply::Lease(lease) => {
            let lease_page = with_lease(lease, |l| Ok(l.page_size()))?;
            if config.page_size != 0 && config.page_size != lease_page {
                return Err(Error::invalid(format!(
                    "page_size {} differs from the lease's page size {lease_page}; give 0 or \
                     {lease_page}",
                    config.page_size
                ))
                .into());
            }
            lease_page
        }
        PageSupply::Own => config.page_size,
    };
    if !page.is_power_of_two() || !(MIN_C_PAGE..=MAX_C_PAGE).contains(&page) {
        return Err(Error::invalid(format!(
            "page_size {page} is not a power of two from {MIN_C_PAGE} to {MAX_C_PAGE}"
        ))
        .into());
    }
    if config.memory_size % page != 0 {
        return Err(Error::invalid(format!(
            "memory_size {} is not a multiple of page_size {page}",
            config.memory_size
        ))
        .into());
    }
    let physical = physical_memory();
    if matches!(supply, PageSupply::Own) && config.memory_size > physical {
        return Err(Error::invalid(format!(
            "memory_size {} exceeds the machine's physical memory ({physical} bytes)",
            config.memory_size
        ))
        .into());
    }
    let temp_dir = if config.temp_dir.is_null() {
        None
    } else {
        // SAFETY: the caller promises a NUL-terminated string, read here only.
        let bytes = unsafe { CStr::from_ptr(config.temp_dir) }.to_bytes();
        Some(PathBuf::from(std::ffi::OsStr::from_bytes(bytes)))
    };
    let compare = config.compare.map(|f| -> CompareFn {
        let host = HostCompare {
            f,
            ctx: config.compare_ctx,
        };
        Arc::new(move |a: &[u8], b: &[u8]| host.call(a, b))
    });
    let key = KeyConfig {
        key_offset: config.key_offset,
        key_length: config.key_length,
        prefix_length: config.prefix_length,
        compare,
    };
    key.validate()?;
    let count = config.memory_size / page;
    if count < crate::sort::MIN_PAGES {
        return Err(Error::BudgetExhausted(format!(
            "memory_size {} is {count} pages of {page} bytes; a sorter needs at least {} \
             (a sort buffer of 2 and a write buffer; merging reads each run through a page)",
            config.memory_size,
            crate::sort::MIN_PAGES
        ))
        .into());
    }
    let pages = match supply {
        // All or nothing, charged to the lease; the pages go back when the sorter is freed.
        PageSupply::Lease(lease) => with_lease(lease, |l| l.allocate_many(count))?,
        PageSupply::Own => (0..count)
            .map(|_| Segment::allocate_off_heap(page, OffHeapOptions::default()))
            .collect::<Result<Vec<_>, _>>()?,
    };
    Ok(ExternalSorter::new(
        pages,
        SortConfig {
            key,
            temp_dir,
            write_fault: None,
            direct_io: crate::sort::DirectIo::Auto,
        },
    )?)
}

/// Creates a sorter as `*config` describes, allocating its memory (`memory_size` bytes of
/// off-heap pages) now, and writes its handle to `*out_sorter`.
///
/// Fails with `MEMSEG_STATUS_NULL_ARGUMENT` for a NULL `config` or `out_sorter`;
/// `MEMSEG_STATUS_INVALID_ARGUMENT` for a page size that is not a power of two from 4096 to
/// 1 GiB, a memory size that is not a multiple of it or exceeds the physical memory, a prefix
/// longer than 56 bytes or than the key, a key that does not fit a page, or a `temp_dir` that
/// is not a directory; `MEMSEG_STATUS_BUDGET_EXHAUSTED` for fewer than 3 pages;
/// `MEMSEG_STATUS_IO` if `temp_dir` cannot be examined; `MEMSEG_STATUS_ALLOCATION_FAILED` when
/// the operating system refuses the memory. The configuration is copied. The caller owns the
/// sorter and must free it with `memseg_sorter_free()`. Thread-safe.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn memseg_sorter_new(
    config: *const memseg_sort_config,
    out_sorter: *mut memseg_sorter,
) -> memseg_status {
    ffi_boundary!({
        // SAFETY: the caller's promises, as this function's documentation states them.
        unsafe { create(config, out_sorter, PageSupply::Own) }
    })
}

/// The body of both constructors: checks the pointers, builds the sorter on `supply` and
/// writes its handle.
///
/// # Safety
/// `config` is NULL or points to a configuration; `out_sorter` is NULL or writable.
unsafe fn create(
    config: *const memseg_sort_config,
    out_sorter: *mut memseg_sorter,
    supply: PageSupply,
) -> Result<(), FfiError> {
    let out = checked_out(out_sorter, "out_sorter")?;
    let config = checked_out(config.cast_mut(), "config")?;
    // SAFETY: checked non-null; the caller promises it points to a configuration.
    let config = unsafe { config.as_ptr().read_unaligned() };
    // SAFETY: `out` was checked non-null; the caller promises it is writable.
    unsafe { write_out(out, register(&config, supply)?) };
    Ok(())
}

fn register(config: &memseg_sort_config, supply: PageSupply) -> Result<memseg_sorter, FfiError> {
    let bits = SORTERS.insert_with(
        || {
            let sorter = build(config, supply)?;
            Ok::<_, FfiError>((Mutex::new(sorter), (std::ptr::null_mut(), 0)))
        },
        || {
            FfiError::Core(Error::AllocationFailed {
                size: 0,
                reason: "no free sorter handles".into(),
            })
        },
    )?;
    Ok(memseg_sorter { bits })
}

/// Creates a sorter as `*config` describes, taking its memory from `lease`: `memory_size`
/// bytes of the lease's pages, allocated now (all or nothing) and charged to the lease until
/// the sorter is freed, so the sort never uses more than the manager's budget allows.
/// `page_size` must be 0 or the lease's page size. Writes its handle to `*out_sorter`.
///
/// Fails as `memseg_sorter_new()` does, and with `MEMSEG_STATUS_BUDGET_EXHAUSTED` or
/// `MEMSEG_STATUS_QUOTA_EXHAUSTED` when the lease cannot give the pages (nothing is allocated;
/// `memseg_manager_failure()` tells who holds the memory), `MEMSEG_STATUS_STALE_HANDLE` for a
/// closed lease. The caller owns the sorter and must free it with `memseg_sorter_free()`,
/// which gives the pages back to the lease; close the lease after its sorters. Thread-safe.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn memseg_sorter_new_on_lease(
    lease: memseg_lease,
    config: *const memseg_sort_config,
    out_sorter: *mut memseg_sorter,
) -> memseg_status {
    ffi_boundary!({
        // SAFETY: the caller's promises, as this function's documentation states them.
        unsafe { create(config, out_sorter, PageSupply::Lease(lease)) }
    })
}

/// Adds a record of `len` bytes at `record` (copied into the sorter's memory). When the
/// memory is full, the sorter first spills a sorted run to a temporary file. Records longer
/// than a page span pages in memory and blocks in spill files.
///
/// Fails with `MEMSEG_STATUS_INVALID_ARGUMENT`, changing nothing, for a record shorter than
/// the key's end or longer than `memseg_sorter_max_record_len()`, or after
/// `memseg_sorter_finish()`; `MEMSEG_STATUS_NULL_ARGUMENT` for a NULL `record` with `len > 0`.
/// A spill that fails is `MEMSEG_STATUS_DISK_FULL` (no space left) or `MEMSEG_STATUS_IO`, and
/// ends the sorter: its files are closed (their space freed) and every later call but free fails with
/// `MEMSEG_STATUS_CLOSED`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn memseg_sorter_add(
    sorter: memseg_sorter,
    record: *const u8,
    len: usize,
) -> memseg_status {
    ffi_boundary!({
        // SAFETY: the caller promises `record` is NULL with `len` 0, or has `len` readable bytes.
        let bytes = unsafe { host_bytes(record, len, "record")? };
        let entry = SORTERS.get(sorter.bits)?;
        lock(&entry).add(bytes)?;
        Ok(())
    })
}

/// Ends the input: sorts what is in memory, or spills it and merges the runs (in several
/// passes if there are more runs than pages), so that `memseg_sorter_next()` can return the
/// records in order. Fails with `MEMSEG_STATUS_INVALID_ARGUMENT` when called twice, and with
/// the I/O statuses of `memseg_sorter_add()` (plus `MEMSEG_STATUS_CORRUPTED` for a spill file
/// found damaged), which end the sorter.
#[unsafe(no_mangle)]
pub extern "C" fn memseg_sorter_finish(sorter: memseg_sorter) -> memseg_status {
    ffi_boundary!({
        let entry = SORTERS.get(sorter.bits)?;
        lock(&entry).finish()?;
        Ok(())
    })
}

/// Writes the next record in key order to `*out_record` and `*out_len`, or returns
/// `MEMSEG_STATUS_END_OF_DATA` (writing nothing) once every record was returned.
///
/// The pointer lends the sorter's memory and stays valid until the next call on this sorter or
/// its free. A record that lies in one page (one spill block when merging) is not copied; one
/// that spans pages or blocks is put together in a scratch buffer that the sorter's memory
/// accounts for (see `memseg_sorter_max_record_len()`), and the pointer is into that buffer.
/// Records with equal keys come in no particular order.
/// Fails with `MEMSEG_STATUS_INVALID_ARGUMENT` before `memseg_sorter_finish()`, and with
/// `MEMSEG_STATUS_CORRUPTED` (a truncated or damaged spill file, never read as data) or
/// `MEMSEG_STATUS_IO`, which end the sorter.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn memseg_sorter_next(
    sorter: memseg_sorter,
    out_record: *mut *const u8,
    out_len: *mut usize,
) -> memseg_status {
    ffi_boundary!({
        let out_r = checked_out(out_record, "out_record")?;
        let out_n = checked_out(out_len, "out_len")?;
        let entry = SORTERS.get(sorter.bits)?;
        let mut guard = lock(&entry);
        match guard.next_record()? {
            Some(record) => {
                // SAFETY: both were checked non-null; the caller promises they are writable.
                // The record lies in the sorter's pages, which live until the sorter is freed
                // (the handle table holds it) and are not touched before the next call.
                unsafe {
                    write_out(out_r, record.as_ptr());
                    write_out(out_n, record.len());
                }
                Ok(())
            }
            None => Err(Error::EndOfData("every sorted record has been returned".into()).into()),
        }
    })
}

/// Writes to `*out_len` the longest record `memseg_sorter_add()` takes on this sorter.
///
/// Any record that fits a page less 24 bytes is taken. Longer records straddle pages and
/// spill blocks, and to hand one out or compare it the sorter copies it whole into scratch
/// memory, which counts against `memory_size`: the sort buffer keeps back, unused, two pages
/// for each page of its longest record (two records are compared at a time), and each run
/// being merged counts its read page plus the pages of the longest record. So the bound grows
/// with the memory, to about a sixth of it: with `P` pages, of which `W = min(max(P / 32, 1),
/// 8)` are the spill writer's and the smaller sort buffer has `B` (`(P - W) / 2` when
/// `P - W >= 8`, `P - W` below), it is `page_size - 24` for `P < 5`, else the larger of
/// `page_size - 24` and
/// `min(max(page_size - 4, (B - 1) / 3 * page_size - 4), (P - 3) / 2 * page_size)`, and never
/// more than `UINT32_MAX`. Fails with `MEMSEG_STATUS_NULL_ARGUMENT` for a NULL `out_len`.
/// Thread-safe.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn memseg_sorter_max_record_len(
    sorter: memseg_sorter,
    out_len: *mut usize,
) -> memseg_status {
    ffi_boundary!({
        let out = checked_out(out_len, "out_len")?;
        let entry = SORTERS.get(sorter.bits)?;
        let len = lock(&entry).max_record_len();
        // SAFETY: `out` was checked non-null; the caller promises it is writable.
        unsafe { write_out(out, len) };
        Ok(())
    })
}

/// Writes what the sorter did so far to `*out_stats`. Thread-safe.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn memseg_sorter_stats(
    sorter: memseg_sorter,
    out_stats: *mut memseg_sort_stats,
) -> memseg_status {
    ffi_boundary!({
        let out = checked_out(out_stats, "out_stats")?;
        let entry = SORTERS.get(sorter.bits)?;
        let s = lock(&entry).stats();
        let stats = memseg_sort_stats {
            records: s.records,
            record_bytes: s.record_bytes,
            spilled_runs: s.spilled_runs,
            spilled_bytes: s.spilled_bytes,
            merge_passes: s.merge_passes,
            peak_memory_bytes: s.peak_memory_bytes,
            memory_bytes: s.memory_bytes,
        };
        // SAFETY: `out` was checked non-null; the caller promises it is writable.
        unsafe { write_out(out, stats) };
        Ok(())
    })
}

/// Frees a sorter: its memory goes back to the operating system and its temporary files are
/// closed (their space freed); record pointers it lent become invalid and every copy of the handle stale.
///
/// A zero handle is a no-op that returns `MEMSEG_STATUS_OK`; freeing twice returns
/// `MEMSEG_STATUS_STALE_HANDLE`. Thread-safe, but no other call on the same sorter may be
/// running.
#[unsafe(no_mangle)]
pub extern "C" fn memseg_sorter_free(sorter: memseg_sorter) -> memseg_status {
    ffi_boundary!({
        drop(SORTERS.free(sorter.bits)?);
        Ok(())
    })
}

/// Writes `value` as an 8-byte normalized key (big endian) to `dst`, which must hold at
/// least 8 bytes (`dst_len`); unsigned byte order of keys is then numeric order. Thread-safe.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn memseg_normkey_put_u64(
    dst: *mut u8,
    dst_len: usize,
    value: u64,
) -> memseg_status {
    // SAFETY: passed on from the caller.
    unsafe { put_key(dst, dst_len, |d| normkey::put_u64(d, value)) }
}

/// Writes `value` as an 8-byte normalized key (big endian, sign bit flipped) to `dst`, which
/// must hold at least 8 bytes. Thread-safe.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn memseg_normkey_put_i64(
    dst: *mut u8,
    dst_len: usize,
    value: i64,
) -> memseg_status {
    // SAFETY: passed on from the caller.
    unsafe { put_key(dst, dst_len, |d| normkey::put_i64(d, value)) }
}

/// Writes `value` as a 4-byte normalized key (big endian) to `dst`, which must hold at least
/// 4 bytes. Thread-safe.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn memseg_normkey_put_u32(
    dst: *mut u8,
    dst_len: usize,
    value: u32,
) -> memseg_status {
    // SAFETY: passed on from the caller.
    unsafe { put_key(dst, dst_len, |d| normkey::put_u32(d, value)) }
}

/// Writes `value` as a 4-byte normalized key (big endian, sign bit flipped) to `dst`, which
/// must hold at least 4 bytes. Thread-safe.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn memseg_normkey_put_i32(
    dst: *mut u8,
    dst_len: usize,
    value: i32,
) -> memseg_status {
    // SAFETY: passed on from the caller.
    unsafe { put_key(dst, dst_len, |d| normkey::put_i32(d, value)) }
}

/// Writes `value` as an 8-byte normalized key in IEEE 754 total order (-NaN < -inf < ... <
/// -0.0 < +0.0 < ... < +inf < +NaN) to `dst`, which must hold at least 8 bytes. Thread-safe.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn memseg_normkey_put_f64(
    dst: *mut u8,
    dst_len: usize,
    value: f64,
) -> memseg_status {
    // SAFETY: passed on from the caller.
    unsafe { put_key(dst, dst_len, |d| normkey::put_f64(d, value)) }
}

/// Writes `value` as a 4-byte normalized key in IEEE 754 total order to `dst`, which must
/// hold at least 4 bytes. Thread-safe.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn memseg_normkey_put_f32(
    dst: *mut u8,
    dst_len: usize,
    value: f32,
) -> memseg_status {
    // SAFETY: passed on from the caller.
    unsafe { put_key(dst, dst_len, |d| normkey::put_f32(d, value)) }
}

/// Writes the byte string `src` (`src_len` bytes) as a key of exactly `dst_len` bytes to
/// `dst`: cut at `dst_len`, or padded with zero bytes to it. `src` may be NULL only when
/// `src_len` is 0. Thread-safe.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn memseg_normkey_put_bytes(
    dst: *mut u8,
    dst_len: usize,
    src: *const u8,
    src_len: usize,
) -> memseg_status {
    ffi_boundary!({
        // SAFETY: the caller promises `src` is NULL with `src_len` 0, or has `src_len` readable bytes.
        let value = unsafe { host_bytes(src, src_len, "src")? };
        // SAFETY: passed on from the caller.
        let status = unsafe { put_key(dst, dst_len, |d| normkey::put_bytes(d, value, dst_len)) };
        match status {
            memseg_status::Ok => Ok(()),
            _ => Err(Error::invalid(super::boundary::last_error_message()).into()),
        }
    })
}

/// Complements every byte of the `len`-byte key at `key`, turning an ascending key into a
/// descending one. `key` may be NULL only when `len` is 0. Thread-safe.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn memseg_normkey_invert(key: *mut u8, len: usize) -> memseg_status {
    ffi_boundary!({
        let key = byte_buffer(key, len, "key")?.cast_mut();
        // SAFETY: the caller promises `key` is writable for `len` bytes (or it is 0).
        normkey::invert(unsafe { std::slice::from_raw_parts_mut(key, len) });
        Ok(())
    })
}

/// Runs a key writer on the host buffer `dst` of `dst_len` bytes.
///
/// # Safety
/// `dst` must be NULL or writable for `dst_len` bytes.
unsafe fn put_key(
    dst: *mut u8,
    dst_len: usize,
    put: impl FnOnce(&mut [u8]) -> crate::Result<usize>,
) -> memseg_status {
    ffi_boundary!({
        let dst = byte_buffer(dst, dst_len, "dst")?.cast_mut();
        // SAFETY: the caller promises `dst` is writable for `dst_len` bytes (or it is 0).
        put(unsafe { std::slice::from_raw_parts_mut(dst, dst_len) })?;
        Ok(())
    })
}
