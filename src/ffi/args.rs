//! Checks for pointer arguments: a NULL where one is required is an error status, and an
//! out pointer is written only once the call has succeeded.

use std::ptr::NonNull;

use super::status::FfiError;

/// A required out pointer, checked before any work is done.
#[inline(always)]
pub(crate) fn checked_out<T>(ptr: *mut T, name: &'static str) -> Result<NonNull<T>, FfiError> {
    NonNull::new(ptr).ok_or(FfiError::NullArgument(name))
}

/// Writes a result through an out pointer checked by [`checked_out`].
///
/// # Safety
/// `out` must be valid for writing a `T` (it need not be aligned).
#[inline(always)]
pub(crate) unsafe fn write_out<T>(out: NonNull<T>, value: T) {
    // SAFETY: the caller guarantees `out` is writable; unaligned writes are allowed so a
    // misaligned host pointer is not undefined behaviour.
    unsafe { out.as_ptr().write_unaligned(value) }
}

/// The body of a query function: checks the out pointer, computes the answer, and writes it
/// only if that succeeded ("no partial successes").
///
/// # Safety
/// `out` must be NULL or valid for writing a `T` (it need not be aligned).
#[inline(always)]
pub(crate) unsafe fn answer<T>(
    out: *mut T,
    name: &'static str,
    compute: impl FnOnce() -> Result<T, FfiError>,
) -> Result<(), FfiError> {
    let out = checked_out(out, name)?;
    let value = compute()?;
    // SAFETY: `out` was checked non-null; the caller promises it is writable.
    unsafe { write_out(out, value) };
    Ok(())
}

/// A host's `len` readable bytes at `ptr` as a slice (NULL only with `len` 0).
///
/// # Safety
/// `ptr` must be NULL or valid for reading `len` bytes for the lifetime `'a`.
#[inline]
pub(crate) unsafe fn host_bytes<'a>(
    ptr: *const u8,
    len: usize,
    name: &'static str,
) -> Result<&'a [u8], FfiError> {
    let ptr = byte_buffer(ptr, len, name)?;
    // SAFETY: non-null (dangling only for `len` 0); the caller promises `len` readable bytes.
    Ok(unsafe { std::slice::from_raw_parts(ptr, len) })
}

/// A host's `len` writable bytes at `ptr` as a slice (NULL only with `len` 0).
///
/// # Safety
/// `ptr` must be NULL or valid for writing `len` bytes, and not otherwise accessed, for the
/// lifetime `'a`.
#[inline]
pub(crate) unsafe fn host_bytes_mut<'a>(
    ptr: *mut u8,
    len: usize,
    name: &'static str,
) -> Result<&'a mut [u8], FfiError> {
    let ptr = byte_buffer(ptr, len, name)?.cast_mut();
    // SAFETY: non-null (dangling only for `len` 0); the caller promises `len` writable bytes.
    Ok(unsafe { std::slice::from_raw_parts_mut(ptr, len) })
}

/// A host byte buffer given as pointer and length. NULL is accepted only with length 0.
#[inline]
pub(crate) fn byte_buffer(
    ptr: *const u8,
    len: usize,
    name: &'static str,
) -> Result<*const u8, FfiError> {
    match (ptr.is_null(), len) {
        (true, 0) => Ok(NonNull::<u8>::dangling().as_ptr()),
        (true, _) => Err(FfiError::NullArgument(name)),
        (false, _) => Ok(ptr),
    }
}
