//! Paged output and input views through the C ABI. The typed writes and reads are generated
//! into `view_typed.rs`; strings, bytes, skip, seek and position are here.
//!
//! A view works on segments the host gives by handle. The view wraps their memory for its
//! own use without owning it, and checks before every call that each segment the call may
//! touch is still live, so a view whose segments were freed fails with
//! `MEMSEG_STATUS_STALE_HANDLE` instead of touching freed memory.

use std::collections::{HashMap, VecDeque};
use std::ffi::c_char;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use super::args::{byte_buffer, checked_out, host_bytes, host_bytes_mut, write_out};
use super::buffer::{memseg_buffer, register_buffer};
use super::handle::{HandleError, HandleKind, HandleTable};
use super::lease::{allocate_lent, check_lease, memseg_lease, release_lent};
use super::pool::{local_pool_of, memseg_local_pool};
use super::segment::{lend, memseg_segment, region_of, take_back};
use super::status::{FfiError, memseg_status};
use crate::error::{Error, Result};
use crate::ffi_boundary;
use crate::pool::{Buffer, LocalBufferPool};
use crate::segment::{ByteOrder, Primitive, Segment, SegmentKind};
use crate::view::{DataInput, DataOutput, InputView, OutputView, SegmentSource};

/// A handle to an output view: one stream of writes across a list of segments the host gave.
///
/// Create with `memseg_output_view_new()`; the caller owns the view and must free it with
/// `memseg_output_view_free()`. Thread safety: calls on one view are serialized by the view
/// (a lock), so it may be used from any thread, but the order of writes from several threads
/// is theirs to arrange.
#[allow(non_camel_case_types)]
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct memseg_output_view {
    /// Opaque: kind tag, generation and slot. Zero is never a valid handle.
    pub bits: u64,
}

/// A handle to an input view: one stream of reads across a list of segments the host gave.
///
/// Create with `memseg_input_view_new()`; the caller owns the view and must free it with
/// `memseg_input_view_free()`. Thread safety as `memseg_output_view`.
#[allow(non_camel_case_types)]
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct memseg_input_view {
    /// Opaque: kind tag, generation and slot. Zero is never a valid handle.
    pub bits: u64,
}

/// Wraps a live segment handle's memory as a segment that does not own it.
fn borrow_segment(handle: memseg_segment) -> Result<Segment, FfiError> {
    let region = region_of(handle)?;
    let ptr = NonNull::new(region.as_ptr()).expect("a live segment has memory");
    // SAFETY: the memory belongs to a live segment handle. The host promises (documented on
    // the view constructors) to keep the segment alive while the view uses it, and every view
    // call re-checks the handle before touching the memory. No release callback: dropping
    // this segment leaves the memory alone.
    unsafe { Segment::wrap_foreign(ptr, region.len(), None) }.map_err(FfiError::from)
}

/// Checks that a segment handle a view uses is still live.
fn check_segment(what: &str, index: usize, handle: memseg_segment) -> Result<(), FfiError> {
    region_of(handle).map(|_| ()).map_err(|e| match e {
        FfiError::Handle(HandleError::Stale(_)) => FfiError::Handle(HandleError::Stale(format!(
            "segment {index} of the {what} ({:#018x}) was freed; a view's segments must stay \
             alive while it is used",
            handle.bits
        ))),
        other => other,
    })
}

/// The source of an output view: the host's segment handles, handed out in order, and then
/// whatever its supply lends (pages of a lease, buffers of a local pool), as segment handles.
struct HandleSource {
    pending: VecDeque<memseg_segment>,
    /// Handed out to the view, in order: the view's segments, then its spare ones.
    issued: Vec<memseg_segment>,
    /// A handle failure inside `next_segment`, which the trait's error type cannot carry.
    failure: Option<FfiError>,
    /// Where pages come from once `pending` is used up.
    supply: Supply,
    /// The pages written into, set when the view is freed: they stay with the lease.
    keep: Vec<memseg_segment>,
}

/// Where an output view over handles gets pages beyond those the host listed.
enum Supply {
    /// Nowhere: past the listed segments, writes are `OUT_OF_SEGMENTS`.
    Listed,
    /// A lease: its pages are lent to the host, as `memseg_lease_allocate()` lends them.
    Lease(memseg_lease),
    /// A local buffer pool: its buffers, lent under segment handles while the view writes.
    Pool(PoolPages),
}

impl HandleSource {
    fn new(pending: VecDeque<memseg_segment>, supply: Supply) -> Self {
        HandleSource {
            pending,
            issued: Vec::new(),
            failure: None,
            supply,
            keep: Vec::new(),
        }
    }
}

/// The buffers of a local pool that an output view writes into.
struct PoolPages {
    pool: Arc<LocalBufferPool>,
    /// The lender id of its segments (the output view tag in the top byte, which names it in
    /// messages).
    lender: u64,
    buffers: HashMap<u64, Buffer>,
}

static NEXT_POOL_LENDER: AtomicU64 = AtomicU64::new(1);

impl PoolPages {
    /// Requests a buffer (without waiting) and lends its memory under a new segment handle.
    fn lend_next(&mut self) -> Result<memseg_segment, FfiError> {
        let buffer = self.pool.request()?;
        let region = buffer.region();
        // SAFETY: the buffer keeps its segment's memory valid while it is held here, and it
        // is held until the loan ends (`take_back` in `end_loan`).
        let handle = unsafe { lend(region, SegmentKind::Foreign, self.lender)? };
        self.buffers.insert(handle.bits, buffer);
        Ok(handle)
    }

    /// Ends the loan of `handle` (every copy goes stale) and returns its buffer.
    fn end_loan(&mut self, handle: memseg_segment) -> Option<Buffer> {
        let buffer = self.buffers.remove(&handle.bits)?;
        // The handle was lent here, so this is refused only if it was never lent.
        let _ = take_back(handle, self.lender);
        Some(buffer)
    }
}

impl Drop for PoolPages {
    /// Buffers not taken out with `memseg_output_view_take_buffers()` go back to the pool.
    fn drop(&mut self) {
        let handles: Vec<u64> = self.buffers.keys().copied().collect();
        for bits in handles {
            drop(self.end_loan(memseg_segment { bits }));
        }
    }
}

impl HandleSource {
    /// The next handle to write into: a pending one, or a new page of the lease.
    fn next_handle(&mut self) -> Result<memseg_segment, FfiError> {
        if let Some(&handle) = self.pending.front() {
            return Ok(handle);
        }
        let page = match &mut self.supply {
            Supply::Pool(pages) => pages.lend_next()?,
            Supply::Lease(lease) => allocate_lent(*lease)?,
            Supply::Listed => {
                return Err(Error::OutOfSegments(format!(
                    "all {} segments given to the output view are taken",
                    self.issued.len()
                ))
                .into());
            }
        };
        self.pending.push_back(page);
        Ok(page)
    }
}

impl Drop for HandleSource {
    /// Pages a lease gave the view that it never wrote into go back to the lease; the pages
    /// written stay with the lease (and the host), listed by `memseg_output_view_segments()`.
    fn drop(&mut self) {
        if let Supply::Lease(lease) = self.supply {
            for page in self.pending.drain(..).filter(|p| !self.keep.contains(p)) {
                // Refused only if the host released the page or closed the lease already.
                let _ = release_lent(lease, page);
            }
        }
    }
}

impl SegmentSource for HandleSource {
    fn next_segment(&mut self) -> Result<Segment> {
        let handle = match self.next_handle() {
            Ok(handle) => handle,
            Err(FfiError::Core(e @ Error::OutOfSegments(_))) => return Err(e),
            Err(e) => {
                let message = e.message();
                self.failure = Some(e);
                return Err(Error::invalid(message));
            }
        };
        match borrow_segment(handle) {
            Ok(segment) => {
                self.pending.pop_front();
                self.issued.push(handle);
                Ok(segment)
            }
            Err(e) => {
                let message = e.message();
                self.failure = Some(e);
                Err(Error::invalid(message))
            }
        }
    }

    fn give_back(&mut self, _segment: Segment) {
        // The view gives segments back last first: the last issued handle.
        if let Some(handle) = self.issued.pop() {
            self.pending.push_front(handle);
        }
    }
}

struct FfiOutputView {
    view: OutputView<HandleSource>,
}

impl Drop for FfiOutputView {
    /// Runs before the view gives its segments back to the source (as dropping it does), so
    /// that the source knows which of them hold data.
    fn drop(&mut self) {
        let written = self.view.segments().len();
        let source = self.view.source_mut();
        source.keep = source.issued[..written.min(source.issued.len())].to_vec();
    }
}

struct FfiInputView {
    view: InputView<Segment>,
    handles: Vec<memseg_segment>,
}

static OUTPUT_VIEWS: HandleTable<Mutex<FfiOutputView>> = HandleTable::new(HandleKind::OutputView);
static INPUT_VIEWS: HandleTable<Mutex<FfiInputView>> = HandleTable::new(HandleKind::InputView);

fn no_free_handles(what: &str) -> FfiError {
    FfiError::Core(Error::AllocationFailed {
        size: 0,
        reason: format!("no free {what} handles"),
    })
}

fn lock<T>(object: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic inside a call is caught at the boundary; the object's own operations leave it
    // consistent, so a poisoned lock is still usable.
    object.lock().unwrap_or_else(|e| e.into_inner())
}

/// The host's list of segment handles (NULL only with a count of 0).
///
/// # Safety
/// `segments` must be NULL or readable for `count` handles.
unsafe fn handle_list<'a>(
    segments: *const memseg_segment,
    count: usize,
) -> Result<&'a [memseg_segment], FfiError> {
    if count == 0 {
        return Ok(&[]);
    }
    if segments.is_null() {
        return Err(FfiError::NullArgument("segments"));
    }
    if !segments.is_aligned() {
        return Err(
            Error::invalid("the segment handle list is not aligned for memseg_segment").into(),
        );
    }
    // SAFETY: non-null and aligned, and the caller promises `count` readable handles.
    Ok(unsafe { std::slice::from_raw_parts(segments, count) })
}

/// Runs `f` on a live output view whose segments are live, turning a segment handle failure
/// inside the source into its own status.
fn with_output<R>(
    view: memseg_output_view,
    f: impl FnOnce(&mut OutputView<HandleSource>) -> Result<R>,
) -> Result<R, FfiError> {
    with_output_checked(view, true, f)
}

/// [`with_output`], checking the segments only if the call may touch them (`writes`).
fn with_output_checked<R>(
    view: memseg_output_view,
    writes: bool,
    f: impl FnOnce(&mut OutputView<HandleSource>) -> Result<R>,
) -> Result<R, FfiError> {
    let object = OUTPUT_VIEWS.get(view.bits)?;
    let mut guard = lock(&object);
    let inner = &mut guard.view;
    if writes {
        let current = inner.position().0;
        for (i, &handle) in inner.source().issued.iter().enumerate().skip(current) {
            check_segment("output view", i, handle)?;
        }
    }
    let result = f(inner);
    let failure = inner.source_mut().failure.take();
    match (result, failure) {
        (Err(_), Some(failure)) => Err(failure),
        (result, _) => result.map_err(FfiError::from),
    }
}

/// Runs `f` on a live input view after checking that the segments a read of `len` bytes from
/// the current position touches are live (none for `len` 0: calls that touch no memory).
fn with_input<R>(
    view: memseg_input_view,
    len: usize,
    f: impl FnOnce(&mut InputView<Segment>) -> Result<R>,
) -> Result<R, FfiError> {
    let object = INPUT_VIEWS.get(view.bits)?;
    let mut guard = lock(&object);
    let FfiInputView { view, handles } = &mut *guard;
    if len > 0 {
        for i in view.segments_touched(len) {
            check_segment("input view", i, handles[i])?;
        }
    }
    Ok(f(view)?)
}

/// Body of every generated typed write of an output view.
#[inline]
pub(crate) fn output_view_write<T: Primitive>(
    view: memseg_output_view,
    order: ByteOrder,
    value: T,
) -> memseg_status {
    ffi_boundary!({ with_output(view, |v| v.write(value, order)) })
}

/// Body of every generated typed read of an input view.
///
/// # Safety
/// `out_value` must be NULL or writable for a `T`.
#[inline]
pub(crate) unsafe fn input_view_read<T: Primitive>(
    view: memseg_input_view,
    order: ByteOrder,
    out_value: *mut T,
) -> memseg_status {
    ffi_boundary!({
        let out = checked_out(out_value, "out_value")?;
        let value = with_input(view, T::SIZE, |v| v.read::<T>(order))?;
        // SAFETY: `out` was checked non-null; the caller promises it is writable.
        unsafe { write_out(out, value) };
        Ok(())
    })
}

/// A UTF-8 string from the host, checked.
///
/// # Safety
/// `text` must be NULL (with `len` 0) or readable for `len` bytes.
pub(crate) unsafe fn host_str<'a>(text: *const c_char, len: usize) -> Result<&'a str, FfiError> {
    let ptr = byte_buffer(text.cast(), len, "utf8")?;
    // SAFETY: the caller promises `len` readable bytes (or `len` is 0 and `ptr` dangling).
    let bytes = unsafe { std::slice::from_raw_parts(ptr, len) };
    std::str::from_utf8(bytes).map_err(|e| {
        Error::invalid(format!(
            "the string is not valid UTF-8 (at byte {}); nothing written",
            e.valid_up_to()
        ))
        .into()
    })
}

/// UTF-16 code units from the host, any alignment.
///
/// # Safety
/// `units` must be NULL (with `len` 0) or readable for `len` code units.
pub(crate) unsafe fn host_units(units: *const u16, len: usize) -> Result<Vec<u16>, FfiError> {
    if len == 0 {
        return Ok(Vec::new());
    }
    if units.is_null() {
        return Err(FfiError::NullArgument("units"));
    }
    let bytes = len
        .checked_mul(2)
        .ok_or_else(|| Error::invalid(format!("{len} UTF-16 code units overflow size_t")))?;
    let mut out = vec![0u16; len];
    // SAFETY: the caller promises `len` readable units; `out` has room for them; byte copies
    // need no alignment.
    unsafe {
        std::ptr::copy_nonoverlapping(units.cast::<u8>(), out.as_mut_ptr().cast::<u8>(), bytes)
    };
    Ok(out)
}

/// Copies a string read as UTF-8 to the host's buffer, or refuses if it does not fit.
///
/// # Safety
/// `buf` must be writable for `buf_len` bytes (or NULL with `buf_len` 0).
pub(crate) unsafe fn copy_text_out(
    text: &[u8],
    buf: *mut c_char,
    buf_len: usize,
) -> Result<(), FfiError> {
    if text.len() > buf_len {
        return Err(Error::OutOfBounds {
            offset: 0,
            len: text.len(),
            size: buf_len,
        }
        .into());
    }
    let dst = byte_buffer(buf.cast_const().cast(), text.len(), "buf")?.cast_mut();
    // SAFETY: `dst` is writable for `buf_len >= text.len()` bytes.
    unsafe { std::ptr::copy_nonoverlapping(text.as_ptr(), dst, text.len()) };
    Ok(())
}

/// Copies UTF-16 code units to the host's buffer (any alignment), or refuses if they do not
/// fit.
///
/// # Safety
/// `buf` must be writable for `buf_len` code units (or NULL with `buf_len` 0).
pub(crate) unsafe fn copy_units_out(
    units: &[u16],
    buf: *mut u16,
    buf_len: usize,
) -> Result<(), FfiError> {
    if units.len() > buf_len {
        return Err(Error::OutOfBounds {
            offset: 0,
            len: units.len(),
            size: buf_len,
        }
        .into());
    }
    if units.is_empty() {
        return Ok(());
    }
    if buf.is_null() {
        return Err(FfiError::NullArgument("buf"));
    }
    // SAFETY: `buf` is writable for `buf_len >= units.len()` units; byte copies need no
    // alignment.
    unsafe {
        std::ptr::copy_nonoverlapping(
            units.as_ptr().cast::<u8>(),
            buf.cast::<u8>(),
            units.len() * 2,
        )
    };
    Ok(())
}

/// Reads the next string with `read` unless it does not fit the host's buffer (checked
/// first, so that nothing is consumed then).
fn read_string_checked<I: DataInput, T>(
    input: &mut I,
    decode: impl FnOnce(&mut I) -> Result<T>,
    fits: impl FnOnce(&T) -> Result<(), FfiError>,
) -> Result<T, FfiError> {
    let mark = input.offset();
    let value = decode(input)?;
    if let Err(e) = fits(&value) {
        input.seek(mark)?;
        return Err(e);
    }
    Ok(value)
}

// ---- output view ----------------------------------------------------------------------------

/// Creates an output view that writes across `count` segments, in the order of the handle
/// list `segments`, and writes its handle to `*out_view`.
///
/// The list is copied; the segments are not. Every segment must be live now and must stay
/// alive (not freed, not given back) for as long as the view is used: each call on the view
/// checks the segments it may touch and fails with `MEMSEG_STATUS_STALE_HANDLE` for one that
/// was freed. `segments` may be NULL only when `count` is 0 (a view with nothing to write
/// into). A handle listed twice is `MEMSEG_STATUS_INVALID_ARGUMENT`.
///
/// Writes that do not fit in the segments left fail with `MEMSEG_STATUS_OUT_OF_SEGMENTS` and
/// write nothing; what was written before stays. The caller owns the view and must free it
/// with `memseg_output_view_free()`; freeing the view leaves the segments and their bytes
/// alone. Thread-safe.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn memseg_output_view_new(
    segments: *const memseg_segment,
    count: usize,
    out_view: *mut memseg_output_view,
) -> memseg_status {
    ffi_boundary!({
        let out = checked_out(out_view, "out_view")?;
        // SAFETY: the caller promises `count` readable handles at `segments`.
        let list = unsafe { handle_list(segments, count)? };
        for (i, &handle) in list.iter().enumerate() {
            check_segment("output view", i, handle)?;
        }
        let mut sorted: Vec<u64> = list.iter().map(|h| h.bits).collect();
        sorted.sort_unstable();
        if let Some(w) = sorted.windows(2).find(|w| w[0] == w[1]) {
            return Err(Error::invalid(format!(
                "segment {:#018x} is listed twice; an output view writes each segment once",
                w[0]
            ))
            .into());
        }
        let source = HandleSource::new(list.iter().copied().collect(), Supply::Listed);
        // SAFETY: `out` was checked non-null; the caller promises it is writable.
        unsafe { write_out(out, register_output_view(source)?) };
        Ok(())
    })
}

fn register_output_view(source: HandleSource) -> Result<memseg_output_view, FfiError> {
    let bits = OUTPUT_VIEWS.insert_with(
        || {
            let view = FfiOutputView {
                view: OutputView::new(source),
            };
            Ok::<_, FfiError>((Mutex::new(view), (std::ptr::null_mut(), 0)))
        },
        || no_free_handles("output view"),
    )?;
    Ok(memseg_output_view { bits })
}

/// Creates an output view that takes its pages from `lease`, one page whenever a write does
/// not fit in the pages it has, and writes its handle to `*out_view`.
///
/// The pages are the lease's, lent to the host as segment handles exactly as
/// `memseg_lease_allocate()` lends them: `memseg_output_view_segments()` lists those written
/// into, `memseg_input_view_new()` reads them back, and the host gives them back with
/// `memseg_lease_release()` (or by closing the lease) once it no longer needs the data. A
/// write that needs a page the lease cannot give fails with the lease's status
/// (`MEMSEG_STATUS_BUDGET_EXHAUSTED`, `MEMSEG_STATUS_QUOTA_EXHAUSTED`, …) and writes nothing;
/// what was written before stays. After the lease is closed its pages are stale and the
/// view's writes fail with `MEMSEG_STATUS_STALE_HANDLE`.
///
/// The caller owns the view and must free it with `memseg_output_view_free()`, which gives
/// pages the view took but never wrote into back to the lease. Thread-safe.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn memseg_output_view_new_on_lease(
    lease: memseg_lease,
    out_view: *mut memseg_output_view,
) -> memseg_status {
    ffi_boundary!({
        let out = checked_out(out_view, "out_view")?;
        check_lease(lease)?;
        let source = HandleSource::new(VecDeque::new(), Supply::Lease(lease));
        // SAFETY: `out` was checked non-null; the caller promises it is writable.
        unsafe { write_out(out, register_output_view(source)?) };
        Ok(())
    })
}

/// Creates an output view that writes into buffers of the local buffer pool `pool`: it
/// requests one (without waiting) whenever a write does not fit in the buffers it has, and
/// writes its handle to `*out_view`.
///
/// While the view writes, its buffers are lent to the host as segment handles
/// (`memseg_output_view_segments()`, `memseg_input_view_new()` read them).
/// `memseg_output_view_take_buffers()` turns what was written into buffer handles (each with
/// its size set to the bytes written in it) to hand on, as a task hands serialized records to
/// the network; freeing the view gives the buffers not taken back to the pool. A write that
/// needs a buffer when none is free fails with `MEMSEG_STATUS_WOULD_BLOCK` and writes nothing;
/// what was written before stays.
///
/// The caller owns the view and must free it with `memseg_output_view_free()`, before the
/// pool is destroyed. Thread-safe.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn memseg_output_view_new_on_local_pool(
    pool: memseg_local_pool,
    out_view: *mut memseg_output_view,
) -> memseg_status {
    ffi_boundary!({
        let out = checked_out(out_view, "out_view")?;
        let pool = local_pool_of(pool)?;
        let id = (HandleKind::OutputView as u64) << 56
            | NEXT_POOL_LENDER.fetch_add(1, Ordering::Relaxed);
        let pages = PoolPages {
            pool: Arc::clone(&pool),
            lender: id,
            buffers: HashMap::new(),
        };
        let source = HandleSource::new(VecDeque::new(), Supply::Pool(pages));
        // SAFETY: `out` was checked non-null; the caller promises it is writable.
        unsafe { write_out(out, register_output_view(source)?) };
        Ok(())
    })
}

/// For a view made with `memseg_output_view_new_on_local_pool()`: hands what was written out as
/// buffers. Writes the number of buffers written into to `*out_count` and, if `capacity` is
/// at least that, their handles in order to `out_buffers`, each with its size (writer index)
/// set to the bytes written in it; the view then starts over, empty, and the segment handles
/// it lent are stale. `out_buffers` may be NULL with `capacity` 0, to ask for the count.
///
/// `MEMSEG_STATUS_OUT_OF_BOUNDS` if `capacity` is smaller than the count, and
/// `MEMSEG_STATUS_INVALID_ARGUMENT` for a view that does not write into a pool; nothing
/// changes then. The caller owns the buffers and must release each with
/// `memseg_buffer_release()`. Thread-safe.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn memseg_output_view_take_buffers(
    view: memseg_output_view,
    out_buffers: *mut memseg_buffer,
    capacity: usize,
    out_count: *mut usize,
) -> memseg_status {
    ffi_boundary!({
        let out_n = checked_out(out_count, "out_count")?;
        let object = OUTPUT_VIEWS.get(view.bits)?;
        let mut guard = lock(&object);
        let inner = &mut guard.view;
        if !matches!(inner.source().supply, Supply::Pool(_)) {
            return Err(Error::invalid(
                "the output view does not write into a local buffer pool; only \
                 memseg_output_view_new_on_local_pool() views hand out buffers",
            )
            .into());
        }
        let written = inner.segments().len();
        if out_buffers.is_null() && capacity == 0 {
            // SAFETY: `out_n` was checked non-null; the caller promises it is writable.
            unsafe { write_out(out_n, written) };
            return Ok(());
        }
        if written > capacity {
            return Err(Error::OutOfBounds {
                offset: 0,
                len: written,
                size: capacity,
            }
            .into());
        }
        let out = checked_out(out_buffers, "out_buffers")?;
        let (last, fill) = inner.position();
        let handles: Vec<memseg_segment> = inner.source().issued[..written].to_vec();
        let sizes: Vec<usize> = (0..written)
            .map(|i| {
                if i == last {
                    fill
                } else {
                    inner.segments()[i].size()
                }
            })
            .collect();
        // The view lets go of its segments (they come back to the source's pending list).
        inner.reset();
        let source = inner.source_mut();
        source.pending.retain(|h| !handles.contains(h));
        let Supply::Pool(pages) = &mut source.supply else {
            unreachable!("checked above")
        };
        let mut buffers = Vec::with_capacity(written);
        for (handle, size) in handles.iter().zip(sizes) {
            let buffer = pages
                .end_loan(*handle)
                .expect("a written page was lent here");
            buffer.set_size(size)?;
            buffers.push(buffer);
        }
        drop(guard);
        for (i, buffer) in buffers.into_iter().enumerate() {
            // A buffer that cannot get a handle goes back to the pool (register releases it).
            let handle = register_buffer(buffer)?;
            // SAFETY: the caller promises `capacity >= written` writable handles.
            unsafe { write_out(NonNull::new_unchecked(out.as_ptr().add(i)), handle) };
        }
        // SAFETY: `out_n` was checked non-null; the caller promises it is writable.
        unsafe { write_out(out_n, written) };
        Ok(())
    })
}

/// Frees an output view. The segments and what was written into them stay the host's.
///
/// A zero handle is a no-op; freeing twice is `MEMSEG_STATUS_STALE_HANDLE`. Thread-safe.
#[unsafe(no_mangle)]
pub extern "C" fn memseg_output_view_free(view: memseg_output_view) -> memseg_status {
    ffi_boundary!({
        drop(OUTPUT_VIEWS.free(view.bits)?);
        Ok(())
    })
}

/// Writes `len` bytes from `src` (NULL only when `len` is 0). All or nothing. Thread-safe.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn memseg_output_view_write_bytes(
    view: memseg_output_view,
    src: *const u8,
    len: usize,
) -> memseg_status {
    ffi_boundary!({
        // SAFETY: the caller promises `src` is NULL with `len` 0, or has `len` readable bytes.
        let bytes = unsafe { host_bytes(src, len, "src")? };
        with_output(view, |v| v.write_bytes(bytes))
    })
}

/// Writes a string as Java's `DataOutput.writeUTF`: a big-endian 2-byte length, then the
/// string in modified UTF-8 (NUL as `C0 80`, characters beyond U+FFFF as two 3-byte
/// surrogates). `utf8` holds `len` bytes of UTF-8 (no terminating NUL needed; NUL bytes inside
/// are characters); NULL only when `len` is 0.
///
/// Fails with `MEMSEG_STATUS_INVALID_ARGUMENT` for invalid UTF-8 or a string of more than
/// 65535 encoded bytes, and with `MEMSEG_STATUS_OUT_OF_SEGMENTS` if it does not fit; nothing is
/// written on failure. Thread-safe.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn memseg_output_view_write_utf(
    view: memseg_output_view,
    utf8: *const c_char,
    len: usize,
) -> memseg_status {
    ffi_boundary!({
        // SAFETY: the caller promises `len` readable bytes.
        let text = unsafe { host_str(utf8, len)? };
        with_output(view, |v| v.write_utf(text))
    })
}

/// Writes `len` UTF-16 code units (any alignment; NULL only when `len` is 0) as Java's
/// `writeUTF` writes a `String` holding them, unpaired surrogates included. Limits and
/// failures as `memseg_output_view_write_utf()`. Thread-safe.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn memseg_output_view_write_utf16(
    view: memseg_output_view,
    units: *const u16,
    len: usize,
) -> memseg_status {
    ffi_boundary!({
        // SAFETY: the caller promises `len` readable code units.
        let units = unsafe { host_units(units, len)? };
        with_output(view, |v| v.write_utf16(&units))
    })
}

/// Skips `len` bytes without writing them (they keep what the segments held). All or
/// nothing, as a write. Thread-safe.
#[unsafe(no_mangle)]
pub extern "C" fn memseg_output_view_skip(view: memseg_output_view, len: usize) -> memseg_status {
    ffi_boundary!({ with_output(view, |v| v.skip_bytes_to_write(len)) })
}

/// The fast path for a host's own hot loop: lends the rest of the current segment, from the
/// position to the segment's end, as `*out_ptr` and `*out_len` (never 0: when the current
/// segment is full the view first moves to the next one, which may fail with
/// `MEMSEG_STATUS_OUT_OF_SEGMENTS` as a write does). Write into it — for instance with the
/// `memseg_raw_put_*` accessors of `memseg_inline.h` over `{ptr, len}` — then report how many
/// bytes were written with `memseg_output_view_commit()`. A value that does not fit in the
/// window goes through the view's own write calls, which split it across segments.
///
/// The window is valid until the next call on this view (and while its segment is alive).
/// Thread-safe, but the window is the host's to synchronize.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn memseg_output_view_window(
    view: memseg_output_view,
    out_ptr: *mut *mut u8,
    out_len: *mut usize,
) -> memseg_status {
    ffi_boundary!({
        let out_p = checked_out(out_ptr, "out_ptr")?;
        let out_n = checked_out(out_len, "out_len")?;
        let (ptr, len) = with_output(view, |v| {
            let window = v.window()?;
            Ok((window.as_mut_ptr(), window.len()))
        })?;
        // SAFETY: both were checked non-null; the caller promises they are writable.
        unsafe {
            write_out(out_p, ptr);
            write_out(out_n, len);
        }
        Ok(())
    })
}

/// Advances the position by `len` bytes the host wrote into the window of
/// `memseg_output_view_window()`. `MEMSEG_STATUS_OUT_OF_BOUNDS` beyond the end of the current
/// segment; nothing moves then. Thread-safe.
#[unsafe(no_mangle)]
pub extern "C" fn memseg_output_view_commit(view: memseg_output_view, len: usize) -> memseg_status {
    ffi_boundary!({ with_output(view, |v| v.commit(len)) })
}

/// Writes the position of the next byte to write: the index of its segment in the list
/// given to `memseg_output_view_new()` to `*out_segment`, and the offset in that segment to
/// `*out_offset`. Before the first write it is (0, 0); a segment written to its end stays
/// current (offset = its size) until the next write. Thread-safe.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn memseg_output_view_position(
    view: memseg_output_view,
    out_segment: *mut usize,
    out_offset: *mut usize,
) -> memseg_status {
    ffi_boundary!({
        let out_s = checked_out(out_segment, "out_segment")?;
        let out_o = checked_out(out_offset, "out_offset")?;
        let (segment, offset) = with_output_checked(view, false, |v| Ok(v.position()))?;
        // SAFETY: both were checked non-null; the caller promises they are writable.
        unsafe {
            write_out(out_s, segment);
            write_out(out_o, offset);
        }
        Ok(())
    })
}

/// Writes the number of bytes written so far (skipped bytes included) to `*out_len`.
/// Thread-safe.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn memseg_output_view_bytes_written(
    view: memseg_output_view,
    out_len: *mut usize,
) -> memseg_status {
    ffi_boundary!({
        let out = checked_out(out_len, "out_len")?;
        let len = with_output_checked(view, false, |v| Ok(v.bytes_written()))?;
        // SAFETY: `out` was checked non-null; the caller promises it is writable.
        unsafe { write_out(out, len) };
        Ok(())
    })
}

/// Writes the segments written into so far: their count to `*out_count` and, if
/// `capacity >= count`, their handles in order to `out_segments` (NULL allowed with capacity
/// 0, to ask for the count). All but the last are full; the last holds
/// `memseg_output_view_position()`'s offset bytes. To read them back, pass them and that
/// offset to `memseg_input_view_new()`.
///
/// `MEMSEG_STATUS_OUT_OF_BOUNDS` if `capacity` is smaller than the count (then nothing is
/// written, `*out_count` included). Thread-safe.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn memseg_output_view_segments(
    view: memseg_output_view,
    out_segments: *mut memseg_segment,
    capacity: usize,
    out_count: *mut usize,
) -> memseg_status {
    ffi_boundary!({
        let out_n = checked_out(out_count, "out_count")?;
        let written = with_output_checked(view, false, |v| {
            let count = v.segments().len();
            Ok(v.source().issued[..count].to_vec())
        })?;
        if !out_segments.is_null() || capacity > 0 {
            if written.len() > capacity {
                return Err(Error::OutOfBounds {
                    offset: 0,
                    len: written.len(),
                    size: capacity,
                }
                .into());
            }
            let out = checked_out(out_segments, "out_segments")?;
            for (i, handle) in written.iter().enumerate() {
                // SAFETY: the caller promises `capacity >= written.len()` writable handles.
                unsafe { write_out(NonNull::new_unchecked(out.as_ptr().add(i)), *handle) };
            }
        }
        // SAFETY: `out_n` was checked non-null; the caller promises it is writable.
        unsafe { write_out(out_n, written.len()) };
        Ok(())
    })
}

/// Starts over: the position goes back to (0, 0) and the segments will be written again from
/// the first. Their bytes are not cleared. Thread-safe.
#[unsafe(no_mangle)]
pub extern "C" fn memseg_output_view_reset(view: memseg_output_view) -> memseg_status {
    ffi_boundary!({
        let object = OUTPUT_VIEWS.get(view.bits)?;
        lock(&object).view.reset();
        Ok(())
    })
}

// ---- input view -----------------------------------------------------------------------------

/// Creates an input view that reads across `count` segments in the order of the handle list
/// `segments`: every segment to its end except the last, which holds `fill_of_last` bytes
/// (what `memseg_output_view_position()` says for a view that wrote them). Writes its handle
/// to `*out_view`.
///
/// The list is copied; the segments are not, and must stay alive while the view is used:
/// each read checks the segments it touches and fails with `MEMSEG_STATUS_STALE_HANDLE` for
/// one that was freed. `segments` may be NULL only when `count` is 0 (an empty view, which
/// then takes `fill_of_last` 0). `fill_of_last` beyond the last segment's size is
/// `MEMSEG_STATUS_OUT_OF_BOUNDS`.
///
/// Reading past the end is `MEMSEG_STATUS_END_OF_DATA` and consumes nothing. The caller owns
/// the view and must free it with `memseg_input_view_free()`. Thread-safe.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn memseg_input_view_new(
    segments: *const memseg_segment,
    count: usize,
    fill_of_last: usize,
    out_view: *mut memseg_input_view,
) -> memseg_status {
    ffi_boundary!({
        let out = checked_out(out_view, "out_view")?;
        // SAFETY: the caller promises `count` readable handles at `segments`.
        let list = unsafe { handle_list(segments, count)? };
        let borrowed = list
            .iter()
            .map(|&h| borrow_segment(h))
            .collect::<Result<Vec<_>, _>>()?;
        let view = InputView::new(borrowed, fill_of_last)?;
        let handles = list.to_vec();
        let bits = INPUT_VIEWS.insert_with(
            || {
                let view = FfiInputView { view, handles };
                Ok::<_, FfiError>((Mutex::new(view), (std::ptr::null_mut(), 0)))
            },
            || no_free_handles("input view"),
        )?;
        // SAFETY: `out` was checked non-null; the caller promises it is writable.
        unsafe { write_out(out, memseg_input_view { bits }) };
        Ok(())
    })
}

/// Frees an input view; the segments stay the host's. A zero handle is a no-op; freeing twice
/// is `MEMSEG_STATUS_STALE_HANDLE`. Thread-safe.
#[unsafe(no_mangle)]
pub extern "C" fn memseg_input_view_free(view: memseg_input_view) -> memseg_status {
    ffi_boundary!({
        drop(INPUT_VIEWS.free(view.bits)?);
        Ok(())
    })
}

/// Reads exactly `len` bytes into `dst` (NULL only when `len` is 0), like Java's
/// `readFully`. `MEMSEG_STATUS_END_OF_DATA` if fewer are left: nothing consumed or written.
/// Thread-safe.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn memseg_input_view_read_bytes(
    view: memseg_input_view,
    dst: *mut u8,
    len: usize,
) -> memseg_status {
    ffi_boundary!({
        // SAFETY: the caller promises `dst` is NULL with `len` 0, or has `len` writable bytes.
        let bytes = unsafe { host_bytes_mut(dst, len, "dst")? };
        with_input(view, len, |v| v.read_fully(bytes))
    })
}

/// Reads a string written by Java's `writeUTF` and copies it as UTF-8 (no terminating NUL)
/// to `buf`, which holds `buf_len` bytes; writes its length in bytes to `*out_len`. A buffer
/// of 65535 bytes always suffices.
///
/// Fails, consuming nothing, with `MEMSEG_STATUS_OUT_OF_BOUNDS` if the string does not fit in
/// `buf_len` bytes, `MEMSEG_STATUS_END_OF_DATA` if the data ends inside it,
/// `MEMSEG_STATUS_CORRUPTED` for malformed modified UTF-8, and
/// `MEMSEG_STATUS_INVALID_ARGUMENT` for a string with an unpaired surrogate (read it with
/// `memseg_input_view_read_utf16()`). Thread-safe.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn memseg_input_view_read_utf(
    view: memseg_input_view,
    buf: *mut c_char,
    buf_len: usize,
    out_len: *mut usize,
) -> memseg_status {
    ffi_boundary!({
        let out = checked_out(out_len, "out_len")?;
        let text = read_string(view, |v| {
            read_string_checked(
                v,
                |v| v.read_utf(),
                |t| {
                    if t.len() > buf_len {
                        return Err(Error::OutOfBounds {
                            offset: 0,
                            len: t.len(),
                            size: buf_len,
                        }
                        .into());
                    }
                    Ok(())
                },
            )
        })?;
        // SAFETY: the caller promises `buf_len` writable bytes; the length was checked.
        unsafe { copy_text_out(text.as_bytes(), buf, buf_len)? };
        // SAFETY: `out` was checked non-null; the caller promises it is writable.
        unsafe { write_out(out, text.len()) };
        Ok(())
    })
}

/// Reads a string written by Java's `writeUTF` as UTF-16 code units, exactly as a Java
/// `String` holds them, into `buf` (room for `buf_len` units, any alignment); writes the
/// number of units to `*out_len`. A buffer of 65535 units always suffices.
///
/// Fails, consuming nothing, as `memseg_input_view_read_utf()` (but never for unpaired
/// surrogates). Thread-safe.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn memseg_input_view_read_utf16(
    view: memseg_input_view,
    buf: *mut u16,
    buf_len: usize,
    out_len: *mut usize,
) -> memseg_status {
    ffi_boundary!({
        let out = checked_out(out_len, "out_len")?;
        let units = read_string(view, |v| {
            read_string_checked(
                v,
                |v| {
                    let mut units = Vec::new();
                    v.read_utf16(&mut units).map(|()| units)
                },
                |u| {
                    if u.len() > buf_len {
                        return Err(Error::OutOfBounds {
                            offset: 0,
                            len: u.len(),
                            size: buf_len,
                        }
                        .into());
                    }
                    Ok(())
                },
            )
        })?;
        // SAFETY: the caller promises `buf_len` writable units; the length was checked.
        unsafe { copy_units_out(&units, buf, buf_len)? };
        // SAFETY: `out` was checked non-null; the caller promises it is writable.
        unsafe { write_out(out, units.len()) };
        Ok(())
    })
}

/// Reads a string from an input view after checking the segments its length prefix and its
/// bytes touch.
fn read_string<T>(
    view: memseg_input_view,
    read: impl FnOnce(&mut InputView<Segment>) -> Result<T, FfiError>,
) -> Result<T, FfiError> {
    let object = INPUT_VIEWS.get(view.bits)?;
    let mut guard = lock(&object);
    let FfiInputView { view, handles } = &mut *guard;
    for i in view.segments_touched(2) {
        check_segment("input view", i, handles[i])?;
    }
    let mark = view.offset();
    if let Ok(len) = view.read_u16() {
        view.seek(mark)?;
        for i in view.segments_touched(2 + usize::from(len)) {
            check_segment("input view", i, handles[i])?;
        }
    }
    read(view)
}

/// The fast path for a host's own hot loop: lends the unread rest of the current segment as
/// `*out_ptr` and `*out_len` (when the current segment is used up the view first moves to the
/// next one; at the end of the data the length is 0). Read from it — for instance with the
/// `memseg_raw_get_*` accessors of `memseg_inline.h` — then consume what was read with
/// `memseg_input_view_skip()`. A value that straddles the window's end goes through the
/// view's own read calls.
///
/// The window is valid until the next call on this view (and while its segment is alive);
/// `MEMSEG_STATUS_STALE_HANDLE` if that segment was freed. Thread-safe.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn memseg_input_view_window(
    view: memseg_input_view,
    out_ptr: *mut *const u8,
    out_len: *mut usize,
) -> memseg_status {
    ffi_boundary!({
        let out_p = checked_out(out_ptr, "out_ptr")?;
        let out_n = checked_out(out_len, "out_len")?;
        let object = INPUT_VIEWS.get(view.bits)?;
        let mut guard = lock(&object);
        let FfiInputView { view, handles } = &mut *guard;
        let (ptr, len) = {
            let window = view.window();
            (window.as_ptr(), window.len())
        };
        if let Some(&handle) = handles.get(view.position().0) {
            check_segment("input view", view.position().0, handle)?;
        }
        // SAFETY: both were checked non-null; the caller promises they are writable.
        unsafe {
            write_out(out_p, ptr);
            write_out(out_n, len);
        }
        Ok(())
    })
}

/// Skips exactly `len` bytes; `MEMSEG_STATUS_END_OF_DATA` (nothing skipped) if fewer are left.
/// Thread-safe.
#[unsafe(no_mangle)]
pub extern "C" fn memseg_input_view_skip(view: memseg_input_view, len: usize) -> memseg_status {
    ffi_boundary!({ with_input(view, 0, |v| v.skip_bytes(len)) })
}

/// Moves to absolute byte `offset` from the start of the view's data (up to and including its
/// end). `MEMSEG_STATUS_OUT_OF_BOUNDS` beyond the end; the position does not change then.
/// Thread-safe.
#[unsafe(no_mangle)]
pub extern "C" fn memseg_input_view_seek(view: memseg_input_view, offset: usize) -> memseg_status {
    ffi_boundary!({ with_input(view, 0, |v| v.seek(offset)) })
}

/// Moves to byte `offset` of segment `segment` (an index into the view's list).
/// `MEMSEG_STATUS_INVALID_ARGUMENT` for an index beyond the list, `MEMSEG_STATUS_OUT_OF_BOUNDS`
/// for an offset beyond that segment's data; the position does not change then. Thread-safe.
#[unsafe(no_mangle)]
pub extern "C" fn memseg_input_view_seek_to(
    view: memseg_input_view,
    segment: usize,
    offset: usize,
) -> memseg_status {
    ffi_boundary!({ with_input(view, 0, |v| v.seek_to(segment, offset)) })
}

/// Writes the position of the next byte to read: segment index to `*out_segment`, offset in
/// it to `*out_offset`. Thread-safe.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn memseg_input_view_position(
    view: memseg_input_view,
    out_segment: *mut usize,
    out_offset: *mut usize,
) -> memseg_status {
    ffi_boundary!({
        let out_s = checked_out(out_segment, "out_segment")?;
        let out_o = checked_out(out_offset, "out_offset")?;
        let (segment, offset) = with_input(view, 0, |v| Ok(v.position()))?;
        // SAFETY: both were checked non-null; the caller promises they are writable.
        unsafe {
            write_out(out_s, segment);
            write_out(out_o, offset);
        }
        Ok(())
    })
}

/// Writes the absolute position (bytes from the start of the view's data) to `*out_offset`
/// and the bytes left to read to `*out_available`. Thread-safe.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn memseg_input_view_offset(
    view: memseg_input_view,
    out_offset: *mut usize,
    out_available: *mut usize,
) -> memseg_status {
    ffi_boundary!({
        let out_o = checked_out(out_offset, "out_offset")?;
        let out_a = checked_out(out_available, "out_available")?;
        let (offset, available) = with_input(view, 0, |v| Ok((v.offset(), v.available())))?;
        // SAFETY: both were checked non-null; the caller promises they are writable.
        unsafe {
            write_out(out_o, offset);
            write_out(out_a, available);
        }
        Ok(())
    })
}
