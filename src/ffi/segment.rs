//! Segments through the C ABI: allocation, queries, the raw fast path and bulk operations.
//! The typed accessors are generated into `segment_typed.rs`.

use std::ffi::c_void;
use std::ptr::NonNull;

use super::args::{byte_buffer, checked_out, write_out};
use super::handle::{HandleKind, HandleTable};
use super::lender::lender_name;
use super::status::{FfiError, memseg_status};
use crate::error::Error;
use crate::ffi_boundary;
use crate::segment::{ByteOrder, OffHeapOptions, Primitive, Region, Segment, SegmentKind};

/// A handle to a memory segment: one contiguous, fixed-size region of memory.
///
/// Create with `memseg_segment_new_heap()`, `memseg_segment_new_offheap()` or
/// `memseg_segment_wrap()`; the caller owns the segment and must free it with
/// `memseg_segment_free()`. A handle is a plain value: copying it does not copy the
/// segment. Every call validates it, so a zeroed, freed or forged handle gives an error
/// status, never undefined behaviour.
///
/// Thread safety: calls on one segment may run on many threads at once. The segment's
/// bytes are not synchronized (as in Flink): concurrent writes to the same bytes are the
/// host's race. Freeing a segment while another thread is still inside a call on it is
/// also the host's race.
#[allow(non_camel_case_types)]
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct memseg_segment {
    /// Opaque: kind tag, generation and slot. Zero is never a valid handle.
    pub bits: u64,
}

/// Where a segment's memory comes from.
#[allow(non_camel_case_types)]
#[repr(i32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum memseg_memory_kind {
    /// The process's global allocator.
    Heap = 1,
    /// An anonymous memory mapping of the segment's own, page aligned.
    Offheap = 2,
    /// Host memory wrapped by `memseg_segment_wrap()`.
    Foreign = 3,
}

impl From<SegmentKind> for memseg_memory_kind {
    fn from(kind: SegmentKind) -> Self {
        match kind {
            SegmentKind::Heap => memseg_memory_kind::Heap,
            SegmentKind::OffHeap => memseg_memory_kind::Offheap,
            SegmentKind::Foreign => memseg_memory_kind::Foreign,
        }
    }
}

/// `memseg_segment_new_offheap()` flag: ask for transparent huge pages (`MADV_HUGEPAGE`).
/// A hint; where the kernel has them disabled the segment uses normal pages.
pub const MEMSEG_OFFHEAP_HUGE_PAGES: u32 = 1 << 0;
/// `memseg_segment_new_offheap()` flag: fault every page in at allocation
/// (`MAP_POPULATE`), so that first access pays no page faults.
pub const MEMSEG_OFFHEAP_PREFAULT: u32 = 1 << 1;
const OFFHEAP_FLAGS: u32 = MEMSEG_OFFHEAP_HUGE_PAGES | MEMSEG_OFFHEAP_PREFAULT;

/// The host's release callback for wrapped memory: called exactly once, when the segment
/// is freed, on the thread that frees it, with the `ctx`, pointer and size given to
/// `memseg_segment_wrap()`. It must not call back into memseg for the same segment.
#[allow(non_camel_case_types)]
pub type memseg_release_fn =
    Option<unsafe extern "C" fn(ctx: *mut c_void, ptr: *mut c_void, size: usize)>;

/// What a segment handle names.
pub(crate) enum SegmentEntry {
    /// A segment the host allocated or wrapped; `memseg_segment_free()` ends it.
    Owned(Segment),
    /// Memory an owner lends out (a lease's page, a pool's exclusive segment). Typed and bulk
    /// access work as on any segment; only the lender ends the loan ([`take_back`]), and
    /// `memseg_segment_free()` refuses it.
    /// `lender`: the id of the owner that lent it (named by `lender::lender_name`).
    Lent { kind: SegmentKind, lender: u64 },
}

impl SegmentEntry {
    fn kind(&self) -> SegmentKind {
        match self {
            SegmentEntry::Owned(segment) => segment.kind(),
            SegmentEntry::Lent { kind, .. } => *kind,
        }
    }
}

static SEGMENTS: HandleTable<SegmentEntry> = HandleTable::new(HandleKind::Segment);

fn no_free_handles() -> FfiError {
    FfiError::Core(Error::AllocationFailed {
        size: 0,
        reason: "no free segment handles (2^32 in use)".into(),
    })
}

fn register(make: impl FnOnce() -> Result<Segment, Error>) -> Result<memseg_segment, FfiError> {
    let bits = SEGMENTS.insert_with(
        || {
            let segment = make()?;
            let hot = (segment.region().as_ptr(), segment.size());
            Ok::<_, FfiError>((SegmentEntry::Owned(segment), hot))
        },
        no_free_handles,
    )?;
    Ok(memseg_segment { bits })
}

/// Gives `region` a new segment handle on loan from the lender with id `lender`: an identity
/// the owner chooses (for example its own handle bits; the top byte a handle kind tag, see
/// `lender::lender_name`), so that the segment goes back only through that owner.
///
/// # Safety
/// `region` must stay valid for reads and writes until the loan ends with [`take_back`],
/// and nothing but this handle (and raw pointers lent through it) may access it meanwhile.
pub(crate) unsafe fn lend(
    region: Region,
    kind: SegmentKind,
    lender: u64,
) -> Result<memseg_segment, FfiError> {
    let bits = SEGMENTS.insert_with(
        || {
            let entry = SegmentEntry::Lent { kind, lender };
            Ok::<_, FfiError>((entry, (region.as_ptr(), region.len())))
        },
        no_free_handles,
    )?;
    Ok(memseg_segment { bits })
}

/// The region of a segment that `lender` lent, without ending the loan. A segment that is
/// not on loan from `lender` is refused (`INVALID_ARGUMENT`, naming its real owner).
pub(crate) fn lent_region(segment: memseg_segment, lender_id: u64) -> Result<Region, FfiError> {
    let entry = SEGMENTS.get(segment.bits)?;
    check_lender(segment, &entry, lender_id)?;
    region_of(segment)
}

/// Ends a loan made by [`lend`]: every copy of the handle is stale from now on, and the
/// memory is the lender's again. Refuses, and changes nothing, for a segment that is not on
/// loan from `lender_id`.
pub(crate) fn take_back(segment: memseg_segment, lender_id: u64) -> Result<Region, FfiError> {
    let region = region_of(segment)?;
    SEGMENTS.remove_if(segment.bits, |entry| {
        check_lender(segment, entry, lender_id)
    })?;
    Ok(region)
}

fn check_lender(
    segment: memseg_segment,
    entry: &SegmentEntry,
    lender_id: u64,
) -> Result<(), FfiError> {
    match entry {
        SegmentEntry::Lent { lender, .. } if *lender == lender_id => Ok(()),
        SegmentEntry::Lent { lender, .. } => Err(Error::invalid(format!(
            "segment handle {:#018x} belongs to {}, not to the owner it was given back to",
            segment.bits,
            lender_name(*lender)
        ))
        .into()),
        SegmentEntry::Owned(_) => Err(Error::invalid(format!(
            "segment handle {:#018x} was allocated by the host, not lent; free it with \
             memseg_segment_free()",
            segment.bits
        ))
        .into()),
    }
}

/// The memory of a live segment handle, or `None`: the fast path of the typed accessors,
/// the one ABI path called once per access.
///
/// Unlike [`region_of`] it builds no error and cannot panic (nor can [`fits`] and the
/// bounds-checked [`Region::get`]/[`Region::put`] it is used with), so the accessors run it
/// outside the boundary and a call that takes it pays no `catch_unwind`: the compiler does not
/// inline the boundary's closure, whose arguments and result then go through memory, and that
/// was half of a typed call (113 instructions per `memseg_segment_get_u64` under callgrind,
/// 54 without). Every check still runs: a call it does not accept goes on through
/// [`region_of`] inside the boundary and fails there with the usual status and message.
#[inline(always)]
fn hot_region(segment: memseg_segment) -> Option<Region> {
    let (ptr, len) = SEGMENTS.try_hot(segment.bits)?;
    let ptr = NonNull::new(ptr)?;
    // SAFETY: as in `region_of`: the handle is live, so this is its segment's memory.
    Some(unsafe { Region::new(ptr, len) })
}

/// Whether a `T` at `offset` is inside `region`: [`Region::check`]'s own test, repeated on
/// the fast path so that the compiler sees the check that follows cannot fail and drops its
/// error path (which would otherwise give the fast path a stack frame).
#[inline(always)]
fn fits<T: Primitive>(region: &Region, offset: usize) -> bool {
    matches!(offset.checked_add(T::SIZE), Some(end) if end <= region.len())
}

/// The segment's memory for one call, found without a lock.
#[inline(always)]
pub(crate) fn region_of(segment: memseg_segment) -> Result<Region, FfiError> {
    let (ptr, len) = SEGMENTS.hot(segment.bits)?;
    let ptr = NonNull::new(ptr).expect("a live segment has a non-null pointer");
    // SAFETY: the handle is live, so `ptr` and `len` are its segment's memory, which stays
    // allocated until the segment is freed. Freeing it during this call, or racing on the
    // same bytes, is the host's race as documented on `memseg_segment`.
    Ok(unsafe { Region::new(ptr, len) })
}

/// Allocates a zero-filled segment of `size` bytes from the global allocator, aligned to
/// 64 bytes, and writes its handle to `*out_segment`.
///
/// Fails with `MEMSEG_STATUS_INVALID_ARGUMENT` for `size` 0 or above `PTRDIFF_MAX`, and with
/// `MEMSEG_STATUS_ALLOCATION_FAILED` when the allocator refuses. The caller owns the segment
/// and must free it with `memseg_segment_free()`. Thread-safe.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn memseg_segment_new_heap(
    size: usize,
    out_segment: *mut memseg_segment,
) -> memseg_status {
    ffi_boundary!({
        let out = checked_out(out_segment, "out_segment")?;
        let segment = register(|| Segment::allocate_heap(size))?;
        // SAFETY: `out` was checked non-null; the caller promises it is writable.
        unsafe { write_out(out, segment) };
        Ok(())
    })
}

/// Maps a zero-filled, page-aligned segment of `size` bytes of anonymous memory and writes
/// its handle to `*out_segment`. `flags` is 0 or a combination of
/// `MEMSEG_OFFHEAP_HUGE_PAGES` and `MEMSEG_OFFHEAP_PREFAULT`.
///
/// Fails with `MEMSEG_STATUS_INVALID_ARGUMENT` for `size` 0 or above `PTRDIFF_MAX` or unknown
/// flag bits, and with `MEMSEG_STATUS_ALLOCATION_FAILED` when the operating system refuses.
/// The caller owns the segment and must free it with `memseg_segment_free()`. Thread-safe.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn memseg_segment_new_offheap(
    size: usize,
    flags: u32,
    out_segment: *mut memseg_segment,
) -> memseg_status {
    ffi_boundary!({
        let out = checked_out(out_segment, "out_segment")?;
        if flags & !OFFHEAP_FLAGS != 0 {
            return Err(Error::invalid(format!(
                "unknown off-heap flag bits {:#x}",
                flags & !OFFHEAP_FLAGS
            ))
            .into());
        }
        let options = OffHeapOptions {
            huge_pages: flags & MEMSEG_OFFHEAP_HUGE_PAGES != 0,
            prefault: flags & MEMSEG_OFFHEAP_PREFAULT != 0,
        };
        let segment = register(|| Segment::allocate_off_heap(size, options))?;
        // SAFETY: `out` was checked non-null; the caller promises it is writable.
        unsafe { write_out(out, segment) };
        Ok(())
    })
}

/// A host context pointer, carried to the release callback on the freeing thread.
struct HostContext(*mut c_void);
// SAFETY: memseg never dereferences the context; it hands it back to the host's callback,
// which the host wrote to be called from whichever thread frees the segment.
unsafe impl Send for HostContext {}

/// Wraps `size` bytes of host memory at `ptr` (a JVM direct buffer, a numpy array, …) as a
/// segment and writes its handle to `*out_segment`. The bytes are not copied or cleared.
///
/// `release` may be NULL. Otherwise memseg calls `release(ctx, ptr, size)` exactly once, when
/// the segment is freed. If this call fails, `release` is not called and the memory stays the
/// host's. Fails with `MEMSEG_STATUS_NULL_ARGUMENT` for a NULL `ptr` or `out_segment`, and with
/// `MEMSEG_STATUS_INVALID_ARGUMENT` for `size` 0 or above `PTRDIFF_MAX`.
///
/// Until the segment is freed, `ptr` must stay valid for reading and writing `size` bytes.
/// The caller owns the segment and must free it with `memseg_segment_free()`. Thread-safe.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn memseg_segment_wrap(
    ptr: *mut c_void,
    size: usize,
    release: memseg_release_fn,
    ctx: *mut c_void,
    out_segment: *mut memseg_segment,
) -> memseg_status {
    ffi_boundary!({
        let out = checked_out(out_segment, "out_segment")?;
        let memory = checked_out(ptr.cast::<u8>(), "ptr")?;
        let segment = register(|| {
            let context = HostContext(ctx);
            let release = release.map(|callback| -> crate::segment::ReleaseFn {
                Box::new(move |ptr: *mut u8, size: usize| {
                    let context = context;
                    // SAFETY: the host registered `callback` for exactly this memory and
                    // context; it runs once, from `Segment::drop`.
                    unsafe { callback(context.0, ptr.cast(), size) }
                })
            });
            // SAFETY: the host promises `ptr` is valid for `size` bytes until the segment
            // is freed, which is this function's documented contract.
            unsafe { Segment::wrap_foreign(memory, size, release) }
        })?;
        // SAFETY: `out` was checked non-null; the caller promises it is writable.
        unsafe { write_out(out, segment) };
        Ok(())
    })
}

/// Frees a segment: its memory goes back to the allocator or the operating system, or, for
/// wrapped memory, the release callback runs. Every copy of the handle becomes stale.
///
/// A zero handle is a no-op that returns `MEMSEG_STATUS_OK`. Freeing twice returns
/// `MEMSEG_STATUS_STALE_HANDLE` and changes nothing. Thread-safe, but no other call on the
/// same segment may be running.
#[unsafe(no_mangle)]
pub extern "C" fn memseg_segment_free(segment: memseg_segment) -> memseg_status {
    ffi_boundary!({
        if segment.bits == 0 {
            return Ok(());
        }
        let entry = SEGMENTS.remove_if(segment.bits, |entry| match entry {
            SegmentEntry::Owned(_) => Ok(()),
            SegmentEntry::Lent { lender, .. } => Err(FfiError::Core(Error::invalid(format!(
                "segment handle {:#018x} is lent by {}; give it back there, not to \
                 memseg_segment_free()",
                segment.bits,
                lender_name(*lender)
            )))),
        })?;
        drop(entry);
        Ok(())
    })
}

/// Writes the segment's size in bytes to `*out_size`. Thread-safe.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn memseg_segment_size(
    segment: memseg_segment,
    out_size: *mut usize,
) -> memseg_status {
    ffi_boundary!({
        let out = checked_out(out_size, "out_size")?;
        let region = region_of(segment)?;
        // SAFETY: `out` was checked non-null; the caller promises it is writable.
        unsafe { write_out(out, region.len()) };
        Ok(())
    })
}

/// Writes where the segment's memory comes from to `*out_kind`. Thread-safe.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn memseg_segment_kind(
    segment: memseg_segment,
    out_kind: *mut memseg_memory_kind,
) -> memseg_status {
    ffi_boundary!({
        let out = checked_out(out_kind, "out_kind")?;
        let kind = SEGMENTS.get(segment.bits)?.kind();
        // SAFETY: `out` was checked non-null; the caller promises it is writable.
        unsafe { write_out(out, kind.into()) };
        Ok(())
    })
}

/// Writes `true` to `*out_freed` if the handle named a segment that has been freed since,
/// and `false` if the segment is live. A zero, forged or wrong-kind handle is an error
/// (`MEMSEG_STATUS_INVALID_HANDLE`, `MEMSEG_STATUS_WRONG_HANDLE_KIND`). Thread-safe.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn memseg_segment_is_freed(
    segment: memseg_segment,
    out_freed: *mut bool,
) -> memseg_status {
    ffi_boundary!({
        let out = checked_out(out_freed, "out_freed")?;
        let freed = SEGMENTS.is_removed(segment.bits)?;
        // SAFETY: `out` was checked non-null; the caller promises it is writable.
        unsafe { write_out(out, freed) };
        Ok(())
    })
}

/// Writes the number of segment handles live across the process (segments allocated or
/// wrapped and not yet freed, and pages lent and not yet given back) to `*out_count`: a leak
/// check for tests and shutdown. It looks at every handle slot the process has used, so it
/// is not for hot paths. Thread-safe.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn memseg_segment_live_count(out_count: *mut usize) -> memseg_status {
    ffi_boundary!({
        let out = checked_out(out_count, "out_count")?;
        // SAFETY: `out` was checked non-null; the caller promises it is writable.
        unsafe { write_out(out, SEGMENTS.live_count()) };
        Ok(())
    })
}

/// Lends the segment's memory: writes its first byte's address to `*out_ptr` and its size
/// to `*out_size`, for hot loops that must not pay a call per access (see
/// `memseg_inline.h`).
///
/// The pointer stays valid until the segment is freed; using it after that is the one
/// misuse memseg cannot catch. Both out pointers must be non-NULL; neither is written on
/// failure. Thread-safe.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn memseg_segment_raw(
    segment: memseg_segment,
    out_ptr: *mut *mut u8,
    out_size: *mut usize,
) -> memseg_status {
    ffi_boundary!({
        let out_p = checked_out(out_ptr, "out_ptr")?;
        let out_n = checked_out(out_size, "out_size")?;
        let region = region_of(segment)?;
        // SAFETY: both were checked non-null; the caller promises they are writable.
        unsafe {
            write_out(out_p, region.as_ptr());
            write_out(out_n, region.len());
        }
        Ok(())
    })
}

/// Copies `len` bytes at `offset` of the segment into the host buffer `dst`.
///
/// `dst` may be NULL only when `len` is 0; it may point into any segment, even this one.
/// Fails with `MEMSEG_STATUS_OUT_OF_BOUNDS` unless `offset + len <= size` (without overflow);
/// nothing is copied on failure. Thread-safe as the bytes are.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn memseg_segment_get_bytes(
    segment: memseg_segment,
    offset: usize,
    dst: *mut u8,
    len: usize,
) -> memseg_status {
    ffi_boundary!({
        let dst = byte_buffer(dst, len, "dst")?.cast_mut();
        let region = region_of(segment)?;
        // SAFETY: the caller promises `dst` is writable for `len` bytes (or `len` is 0).
        unsafe { region.read_to(offset, dst, len)? };
        Ok(())
    })
}

/// Copies `len` bytes from the host buffer `src` into the segment at `offset`.
///
/// `src` may be NULL only when `len` is 0; it may point into any segment, even this one.
/// Fails with `MEMSEG_STATUS_OUT_OF_BOUNDS` unless `offset + len <= size` (without overflow);
/// nothing is copied on failure. Thread-safe as the bytes are.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn memseg_segment_put_bytes(
    segment: memseg_segment,
    offset: usize,
    src: *const u8,
    len: usize,
) -> memseg_status {
    ffi_boundary!({
        let src = byte_buffer(src, len, "src")?;
        let region = region_of(segment)?;
        // SAFETY: the caller promises `src` is readable for `len` bytes (or `len` is 0).
        unsafe { region.write_from(offset, src, len)? };
        Ok(())
    })
}

/// Copies `len` bytes at `src_offset` of `src` to `dst_offset` of `dst`. `src` and `dst` may
/// be the same segment and the ranges may overlap (memmove semantics).
///
/// Fails with `MEMSEG_STATUS_OUT_OF_BOUNDS` if either range is out of its segment; nothing is
/// copied on failure. Thread-safe as the bytes are.
#[unsafe(no_mangle)]
pub extern "C" fn memseg_segment_copy(
    src: memseg_segment,
    src_offset: usize,
    dst: memseg_segment,
    dst_offset: usize,
    len: usize,
) -> memseg_status {
    ffi_boundary!({
        let from = region_of(src)?;
        let to = region_of(dst)?;
        from.copy_to(src_offset, &to, dst_offset, len)?;
        Ok(())
    })
}

/// Compares `len` bytes at `a_offset` of `a` with `len` bytes at `b_offset` of `b` as
/// unsigned bytes, like `memcmp`, and writes -1, 0 or 1 to `*out_order`.
///
/// Fails with `MEMSEG_STATUS_OUT_OF_BOUNDS` if either range is out of its segment. Thread-safe
/// as the bytes are.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn memseg_segment_compare(
    a: memseg_segment,
    a_offset: usize,
    b: memseg_segment,
    b_offset: usize,
    len: usize,
    out_order: *mut i32,
) -> memseg_status {
    ffi_boundary!({
        let out = checked_out(out_order, "out_order")?;
        let order = region_of(a)?.compare(a_offset, &region_of(b)?, b_offset, len)?;
        // SAFETY: `out` was checked non-null; the caller promises it is writable.
        unsafe { write_out(out, order as i32) };
        Ok(())
    })
}

/// Writes whether `len` bytes at `a_offset` of `a` equal `len` bytes at `b_offset` of `b`
/// to `*out_equal`.
///
/// Fails with `MEMSEG_STATUS_OUT_OF_BOUNDS` if either range is out of its segment. Thread-safe
/// as the bytes are.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn memseg_segment_equal(
    a: memseg_segment,
    a_offset: usize,
    b: memseg_segment,
    b_offset: usize,
    len: usize,
    out_equal: *mut bool,
) -> memseg_status {
    ffi_boundary!({
        let out = checked_out(out_equal, "out_equal")?;
        let equal = region_of(a)?.equal(a_offset, &region_of(b)?, b_offset, len)?;
        // SAFETY: `out` was checked non-null; the caller promises it is writable.
        unsafe { write_out(out, equal) };
        Ok(())
    })
}

/// Exchanges `len` bytes at `a_offset` of `a` with `len` bytes at `b_offset` of `b`.
///
/// Swapping a range with itself does nothing. Fails with `MEMSEG_STATUS_OUT_OF_BOUNDS` if
/// either range is out of its segment, and with `MEMSEG_STATUS_INVALID_ARGUMENT` if the two
/// ranges partly overlap; nothing changes on failure. Thread-safe as the bytes are.
#[unsafe(no_mangle)]
pub extern "C" fn memseg_segment_swap(
    a: memseg_segment,
    a_offset: usize,
    b: memseg_segment,
    b_offset: usize,
    len: usize,
) -> memseg_status {
    ffi_boundary!({
        region_of(a)?.swap(a_offset, &region_of(b)?, b_offset, len)?;
        Ok(())
    })
}

/// Sets `len` bytes at `offset` to `value`.
///
/// Fails with `MEMSEG_STATUS_OUT_OF_BOUNDS` unless `offset + len <= size` (without overflow);
/// nothing changes on failure. Thread-safe as the bytes are.
#[unsafe(no_mangle)]
pub extern "C" fn memseg_segment_fill(
    segment: memseg_segment,
    offset: usize,
    len: usize,
    value: u8,
) -> memseg_status {
    ffi_boundary!({
        region_of(segment)?.fill(offset, len, value)?;
        Ok(())
    })
}

/// Body of every generated typed getter.
///
/// The typed accessors are the one ABI path called once per access, so they have a fast path
/// (see [`hot_region`]) that does not enter the panic boundary; whatever it does not accept
/// (a NULL `out_value`, a handle that is not live, an offset out of bounds) goes on to
/// [`get_typed_checked`], whose checks and messages are those of every other call.
///
/// # Safety
/// `out_value` must be NULL or writable for a `T`.
#[inline(always)]
pub(crate) unsafe fn get_typed<T: Primitive>(
    segment: memseg_segment,
    offset: usize,
    order: ByteOrder,
    out_value: *mut T,
) -> memseg_status {
    if let (Some(out), Some(region)) = (NonNull::new(out_value), hot_region(segment)) {
        if fits::<T>(&region, offset) {
            if let Ok(value) = region.get::<T>(offset, order) {
                // SAFETY: `out` is non-null; the caller promises it is writable.
                unsafe { write_out(out, value) };
                return memseg_status::Ok;
            }
        }
    }
    // SAFETY: passed on from the caller.
    unsafe { get_typed_checked(segment, offset, order, out_value) }
}

/// The typed getter inside the boundary: every check in order, with its status and message.
/// Out of line, so that the fast path of [`get_typed`] needs no stack frame; `extern "C"`
/// (never exported) so that the fast path reaches it by a tail jump.
///
/// # Safety
/// `out_value` must be NULL or writable for a `T`.
#[cold]
#[inline(never)]
#[allow(improper_ctypes_definitions)] // only ever called from Rust
unsafe extern "C" fn get_typed_checked<T: Primitive>(
    segment: memseg_segment,
    offset: usize,
    order: ByteOrder,
    out_value: *mut T,
) -> memseg_status {
    ffi_boundary!({
        let out = checked_out(out_value, "out_value")?;
        let value = region_of(segment)?.get::<T>(offset, order)?;
        // SAFETY: `out` was checked non-null; the caller promises it is writable.
        unsafe { write_out(out, value) };
        Ok(())
    })
}

/// Body of every generated typed setter: a fast path as in [`get_typed`], then
/// [`put_typed_checked`].
#[inline(always)]
pub(crate) fn put_typed<T: Primitive>(
    segment: memseg_segment,
    offset: usize,
    order: ByteOrder,
    value: T,
) -> memseg_status {
    if let Some(region) = hot_region(segment) {
        if fits::<T>(&region, offset) && region.put(offset, value, order).is_ok() {
            return memseg_status::Ok;
        }
    }
    put_typed_checked(segment, offset, order, value)
}

/// The typed setter inside the boundary: every check in order, with its status and message.
/// Out of line and `extern "C"` as [`get_typed_checked`].
#[cold]
#[inline(never)]
#[allow(improper_ctypes_definitions)] // only ever called from Rust
extern "C" fn put_typed_checked<T: Primitive>(
    segment: memseg_segment,
    offset: usize,
    order: ByteOrder,
    value: T,
) -> memseg_status {
    ffi_boundary!({
        region_of(segment)?.put(offset, value, order)?;
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ffi::lender::LenderName;
    use crate::ffi::segment_typed::{memseg_segment_put_u8, memseg_segment_put_u32_be};

    #[test]
    fn a_lent_segment_works_as_a_segment_and_goes_back_only_to_its_lender() {
        let mut memory = vec![0u8; 64];
        let ptr = NonNull::new(memory.as_mut_ptr()).unwrap();
        // SAFETY: `memory` outlives the loan, which ends below with `take_back`.
        let region = unsafe { Region::new(ptr, memory.len()) };
        // SAFETY: as above.
        let _name = LenderName::register(7, "test lender 7".into());
        let seg = unsafe { lend(region, SegmentKind::OffHeap, 7) }.unwrap();

        let mut kind = memseg_memory_kind::Heap;
        // SAFETY: `kind` is a valid out pointer.
        assert_eq!(
            unsafe { memseg_segment_kind(seg, &mut kind) },
            memseg_status::Ok
        );
        assert_eq!(kind, memseg_memory_kind::Offheap);
        assert_eq!(
            memseg_segment_put_u32_be(seg, 60, 0xA1B2_C3D4),
            memseg_status::Ok
        );
        assert_eq!(&memory[60..], [0xA1, 0xB2, 0xC3, 0xD4]);

        assert_eq!(memseg_segment_free(seg), memseg_status::InvalidArgument);
        assert!(crate::ffi::last_error_message().contains("test lender 7"));
        assert!(matches!(
            take_back(seg, 8),
            Err(FfiError::Core(Error::InvalidArgument(_)))
        ));
        assert_eq!(lent_region(seg, 7).unwrap().len(), 64);

        let back = take_back(seg, 7).unwrap();
        assert_eq!((back.as_ptr(), back.len()), (ptr.as_ptr(), 64));
        assert!(matches!(take_back(seg, 7), Err(FfiError::Handle(_))));
        assert_eq!(memseg_segment_put_u8(seg, 0, 1), memseg_status::StaleHandle);
    }

    #[test]
    fn an_owned_segment_is_not_taken_back_by_a_lender() {
        let mut seg = memseg_segment::default();
        // SAFETY: `seg` is a valid out pointer.
        assert_eq!(
            unsafe { memseg_segment_new_heap(8, &mut seg) },
            memseg_status::Ok
        );
        assert!(matches!(
            take_back(seg, 1),
            Err(FfiError::Core(Error::InvalidArgument(_)))
        ));
        assert!(matches!(
            lent_region(seg, 1),
            Err(FfiError::Core(Error::InvalidArgument(_)))
        ));
        assert_eq!(memseg_segment_free(seg), memseg_status::Ok);
    }
}
