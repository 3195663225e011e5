//! The serialization buffer and its reader through the C ABI (Flink's `DataOutputSerializer`
//! and `DataInputDeserializer`). Typed writes and reads are generated into `view_typed.rs`.

use std::ffi::c_char;
use std::sync::{Mutex, MutexGuard};

use super::args::{checked_out, host_bytes, host_bytes_mut, write_out};
use super::handle::{HandleKind, HandleTable};
use super::status::{FfiError, memseg_status};
use super::view::{copy_text_out, copy_units_out, host_str, host_units};
use crate::error::{Error, Result};
use crate::ffi_boundary;
use crate::segment::{ByteOrder, Primitive};
use crate::view::{DataInput, DataOutput, SerializationBuffer, SerializationReader};

/// A handle to a serialization buffer: one growable, contiguous buffer written in Java's
/// `DataOutput` format.
///
/// Create with `memseg_serialization_buffer_new()`; the caller owns it and must free it with
/// `memseg_serialization_buffer_free()`. Thread-safe (calls are serialized by a lock).
#[allow(non_camel_case_types)]
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct memseg_serialization_buffer {
    /// Opaque: kind tag, generation and slot. Zero is never a valid handle.
    pub bits: u64,
}

/// A handle to a serialization reader: reads Java's `DataInput` format from its own copy of
/// a byte buffer.
///
/// Create with `memseg_serialization_reader_new()`; the caller owns it and must free it with
/// `memseg_serialization_reader_free()`. Thread-safe (calls are serialized by a lock).
#[allow(non_camel_case_types)]
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct memseg_serialization_reader {
    /// Opaque: kind tag, generation and slot. Zero is never a valid handle.
    pub bits: u64,
}

pub(crate) static BUFFERS: HandleTable<Mutex<SerializationBuffer>> =
    HandleTable::new(HandleKind::SerializationBuffer);
static READERS: HandleTable<Mutex<SerializationReader<Vec<u8>>>> =
    HandleTable::new(HandleKind::SerializationReader);

fn lock<T>(object: &Mutex<T>) -> MutexGuard<'_, T> {
    object.lock().unwrap_or_else(|e| e.into_inner())
}

pub(crate) fn with_buffer<R>(
    buffer: memseg_serialization_buffer,
    f: impl FnOnce(&mut SerializationBuffer) -> Result<R>,
) -> Result<R, FfiError> {
    let object = BUFFERS.get(buffer.bits)?;
    let mut guard = lock(&object);
    Ok(f(&mut guard)?)
}

fn with_reader<R>(
    reader: memseg_serialization_reader,
    f: impl FnOnce(&mut SerializationReader<Vec<u8>>) -> Result<R, FfiError>,
) -> Result<R, FfiError> {
    let object = READERS.get(reader.bits)?;
    let mut guard = lock(&object);
    f(&mut guard)
}

fn no_free_handles(what: &str) -> FfiError {
    FfiError::Core(Error::AllocationFailed {
        size: 0,
        reason: format!("no free {what} handles"),
    })
}

/// Body of every generated typed write of a serialization buffer.
#[inline]
pub(crate) fn serialization_buffer_write<T: Primitive>(
    buffer: memseg_serialization_buffer,
    order: ByteOrder,
    value: T,
) -> memseg_status {
    ffi_boundary!({ with_buffer(buffer, |b| b.write(value, order)) })
}

/// Body of every generated typed read of a serialization reader.
///
/// # Safety
/// `out_value` must be NULL or writable for a `T`.
#[inline]
pub(crate) unsafe fn serialization_reader_read<T: Primitive>(
    reader: memseg_serialization_reader,
    order: ByteOrder,
    out_value: *mut T,
) -> memseg_status {
    ffi_boundary!({
        let out = checked_out(out_value, "out_value")?;
        let value = with_reader(reader, |r| Ok(r.read::<T>(order)?))?;
        // SAFETY: `out` was checked non-null; the caller promises it is writable.
        unsafe { write_out(out, value) };
        Ok(())
    })
}

/// A copy of the host's bytes.
///
/// # Safety
/// `data` must be NULL (with `len` 0) or readable for `len` bytes.
unsafe fn host_bytes_copy(data: *const u8, len: usize) -> Result<Vec<u8>, FfiError> {
    // SAFETY: passed on from the caller.
    let bytes = unsafe { host_bytes(data, len, "data")? };
    let mut copy = Vec::new();
    copy.try_reserve_exact(len)
        .map_err(|e| Error::AllocationFailed {
            size: len,
            reason: e.to_string(),
        })?;
    copy.extend_from_slice(bytes);
    Ok(copy)
}

// ---- serialization buffer -------------------------------------------------------------------

/// Creates a serialization buffer of `initial_size` bytes (0 allowed: the first write
/// allocates) and writes its handle to `*out_buffer`. It grows on demand, at least doubling.
///
/// `MEMSEG_STATUS_ALLOCATION_FAILED` when the allocator refuses. The caller owns the buffer
/// and must free it with `memseg_serialization_buffer_free()`. Thread-safe.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn memseg_serialization_buffer_new(
    initial_size: usize,
    out_buffer: *mut memseg_serialization_buffer,
) -> memseg_status {
    ffi_boundary!({
        let out = checked_out(out_buffer, "out_buffer")?;
        let bits = BUFFERS.insert_with(
            || {
                let buffer = SerializationBuffer::new(initial_size)?;
                Ok::<_, FfiError>((Mutex::new(buffer), (std::ptr::null_mut(), 0)))
            },
            || no_free_handles("serialization buffer"),
        )?;
        // SAFETY: `out` was checked non-null; the caller promises it is writable.
        unsafe { write_out(out, memseg_serialization_buffer { bits }) };
        Ok(())
    })
}

/// Frees a serialization buffer; pointers lent by `memseg_serialization_buffer_bytes()` are
/// invalid from then on. A zero handle is a no-op; freeing twice is
/// `MEMSEG_STATUS_STALE_HANDLE`. Thread-safe.
#[unsafe(no_mangle)]
pub extern "C" fn memseg_serialization_buffer_free(
    buffer: memseg_serialization_buffer,
) -> memseg_status {
    ffi_boundary!({
        drop(BUFFERS.free(buffer.bits)?);
        Ok(())
    })
}

/// Appends `len` bytes from `src` (NULL only when `len` is 0). All or nothing
/// (`MEMSEG_STATUS_ALLOCATION_FAILED` if growing is refused). Thread-safe.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn memseg_serialization_buffer_write_bytes(
    buffer: memseg_serialization_buffer,
    src: *const u8,
    len: usize,
) -> memseg_status {
    ffi_boundary!({
        // SAFETY: the caller promises `src` is NULL with `len` 0, or has `len` readable bytes.
        let bytes = unsafe { host_bytes(src, len, "src")? };
        with_buffer(buffer, |b| b.write_bytes(bytes))
    })
}

/// Appends a string as Java's `writeUTF`, from `len` bytes of UTF-8; rules and failures as
/// `memseg_output_view_write_utf()`. Thread-safe.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn memseg_serialization_buffer_write_utf(
    buffer: memseg_serialization_buffer,
    utf8: *const c_char,
    len: usize,
) -> memseg_status {
    ffi_boundary!({
        // SAFETY: the caller promises `len` readable bytes.
        let text = unsafe { host_str(utf8, len)? };
        with_buffer(buffer, |b| b.write_utf(text))
    })
}

/// Appends `len` UTF-16 code units as Java's `writeUTF`; rules and failures as
/// `memseg_output_view_write_utf16()`. Thread-safe.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn memseg_serialization_buffer_write_utf16(
    buffer: memseg_serialization_buffer,
    units: *const u16,
    len: usize,
) -> memseg_status {
    ffi_boundary!({
        // SAFETY: the caller promises `len` readable code units.
        let units = unsafe { host_units(units, len)? };
        with_buffer(buffer, |b| b.write_utf16(&units))
    })
}

/// Appends `len` bytes without writing them (zeros, or bytes of earlier contents after a
/// clear). Thread-safe.
#[unsafe(no_mangle)]
pub extern "C" fn memseg_serialization_buffer_skip(
    buffer: memseg_serialization_buffer,
    len: usize,
) -> memseg_status {
    ffi_boundary!({ with_buffer(buffer, |b| b.skip_bytes_to_write(len)) })
}

/// Lends the bytes written so far: their address to `*out_ptr` and their count to
/// `*out_len`. The pointer is valid until the next write, clear, prune or free of this buffer;
/// the bytes must not be written through it. Thread-safe.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn memseg_serialization_buffer_bytes(
    buffer: memseg_serialization_buffer,
    out_ptr: *mut *const u8,
    out_len: *mut usize,
) -> memseg_status {
    ffi_boundary!({
        let out_p = checked_out(out_ptr, "out_ptr")?;
        let out_n = checked_out(out_len, "out_len")?;
        let (ptr, len) = with_buffer(buffer, |b| Ok((b.as_bytes().as_ptr(), b.len())))?;
        // SAFETY: both were checked non-null; the caller promises they are writable.
        unsafe {
            write_out(out_p, ptr);
            write_out(out_n, len);
        }
        Ok(())
    })
}

/// Writes the number of bytes written to `*out_len` and the bytes the buffer holds before it
/// must grow to `*out_capacity`. Thread-safe.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn memseg_serialization_buffer_length(
    buffer: memseg_serialization_buffer,
    out_len: *mut usize,
    out_capacity: *mut usize,
) -> memseg_status {
    ffi_boundary!({
        let out_n = checked_out(out_len, "out_len")?;
        let out_c = checked_out(out_capacity, "out_capacity")?;
        let (len, capacity) = with_buffer(buffer, |b| Ok((b.len(), b.capacity())))?;
        // SAFETY: both were checked non-null; the caller promises they are writable.
        unsafe {
            write_out(out_n, len);
            write_out(out_c, capacity);
        }
        Ok(())
    })
}

/// Forgets what was written; the capacity stays. Thread-safe.
#[unsafe(no_mangle)]
pub extern "C" fn memseg_serialization_buffer_clear(
    buffer: memseg_serialization_buffer,
) -> memseg_status {
    ffi_boundary!({
        with_buffer(buffer, |b| {
            b.clear();
            Ok(())
        })
    })
}

/// Forgets what was written and shrinks the buffer back to its initial size if it grew.
/// Thread-safe.
#[unsafe(no_mangle)]
pub extern "C" fn memseg_serialization_buffer_prune(
    buffer: memseg_serialization_buffer,
) -> memseg_status {
    ffi_boundary!({
        with_buffer(buffer, |b| {
            b.prune();
            Ok(())
        })
    })
}

// ---- serialization reader -------------------------------------------------------------------

/// Creates a reader over a copy of the `len` bytes at `data` (NULL only when `len` is 0) and
/// writes its handle to `*out_reader`. The host's bytes are not used after the call.
///
/// The caller owns the reader and must free it with `memseg_serialization_reader_free()`.
/// Thread-safe.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn memseg_serialization_reader_new(
    data: *const u8,
    len: usize,
    out_reader: *mut memseg_serialization_reader,
) -> memseg_status {
    ffi_boundary!({
        let out = checked_out(out_reader, "out_reader")?;
        // SAFETY: the caller promises `len` readable bytes.
        let copy = unsafe { host_bytes_copy(data, len)? };
        let bits = READERS.insert_with(
            || {
                let reader = SerializationReader::new(copy);
                Ok::<_, FfiError>((Mutex::new(reader), (std::ptr::null_mut(), 0)))
            },
            || no_free_handles("serialization reader"),
        )?;
        // SAFETY: `out` was checked non-null; the caller promises it is writable.
        unsafe { write_out(out, memseg_serialization_reader { bits }) };
        Ok(())
    })
}

/// Reads a copy of the `len` bytes at `data` from now on, from their start. Thread-safe.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn memseg_serialization_reader_set_buffer(
    reader: memseg_serialization_reader,
    data: *const u8,
    len: usize,
) -> memseg_status {
    ffi_boundary!({
        // SAFETY: the caller promises `len` readable bytes.
        let copy = unsafe { host_bytes_copy(data, len)? };
        with_reader(reader, |r| {
            r.set_buffer(copy);
            Ok(())
        })
    })
}

/// Frees a reader. A zero handle is a no-op; freeing twice is `MEMSEG_STATUS_STALE_HANDLE`.
/// Thread-safe.
#[unsafe(no_mangle)]
pub extern "C" fn memseg_serialization_reader_free(
    reader: memseg_serialization_reader,
) -> memseg_status {
    ffi_boundary!({
        drop(READERS.free(reader.bits)?);
        Ok(())
    })
}

/// Reads exactly `len` bytes into `dst` (NULL only when `len` is 0);
/// `MEMSEG_STATUS_END_OF_DATA` (nothing consumed) if fewer are left. Thread-safe.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn memseg_serialization_reader_read_bytes(
    reader: memseg_serialization_reader,
    dst: *mut u8,
    len: usize,
) -> memseg_status {
    ffi_boundary!({
        // SAFETY: the caller promises `dst` is NULL with `len` 0, or has `len` writable bytes.
        let bytes = unsafe { host_bytes_mut(dst, len, "dst")? };
        with_reader(reader, |r| Ok(r.read_fully(bytes)?))
    })
}

/// Reads a string written by Java's `writeUTF` as UTF-8 into `buf`; rules and failures as
/// `memseg_input_view_read_utf()`. Thread-safe.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn memseg_serialization_reader_read_utf(
    reader: memseg_serialization_reader,
    buf: *mut c_char,
    buf_len: usize,
    out_len: *mut usize,
) -> memseg_status {
    ffi_boundary!({
        let out = checked_out(out_len, "out_len")?;
        let n = with_reader(reader, |r| {
            let mark = r.offset();
            let text = r.read_utf()?;
            // SAFETY: the caller promises `buf_len` writable bytes at `buf`.
            if let Err(e) = unsafe { copy_text_out(text.as_bytes(), buf, buf_len) } {
                r.seek(mark)?;
                return Err(e);
            }
            Ok(text.len())
        })?;
        // SAFETY: `out` was checked non-null; the caller promises it is writable.
        unsafe { write_out(out, n) };
        Ok(())
    })
}

/// Reads a string written by Java's `writeUTF` as UTF-16 code units into `buf`; rules and
/// failures as `memseg_input_view_read_utf16()`. Thread-safe.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn memseg_serialization_reader_read_utf16(
    reader: memseg_serialization_reader,
    buf: *mut u16,
    buf_len: usize,
    out_len: *mut usize,
) -> memseg_status {
    ffi_boundary!({
        let out = checked_out(out_len, "out_len")?;
        let n = with_reader(reader, |r| {
            let mark = r.offset();
            let mut units = Vec::new();
            r.read_utf16(&mut units)?;
            // SAFETY: the caller promises `buf_len` writable units at `buf`.
            if let Err(e) = unsafe { copy_units_out(&units, buf, buf_len) } {
                r.seek(mark)?;
                return Err(e);
            }
            Ok(units.len())
        })?;
        // SAFETY: `out` was checked non-null; the caller promises it is writable.
        unsafe { write_out(out, n) };
        Ok(())
    })
}

/// Skips exactly `len` bytes; `MEMSEG_STATUS_END_OF_DATA` (nothing skipped) if fewer are left.
/// Thread-safe.
#[unsafe(no_mangle)]
pub extern "C" fn memseg_serialization_reader_skip(
    reader: memseg_serialization_reader,
    len: usize,
) -> memseg_status {
    ffi_boundary!({ with_reader(reader, |r| Ok(r.skip_bytes(len)?)) })
}

/// Moves to byte `offset` (up to and including the end); `MEMSEG_STATUS_OUT_OF_BOUNDS`
/// beyond it. Thread-safe.
#[unsafe(no_mangle)]
pub extern "C" fn memseg_serialization_reader_seek(
    reader: memseg_serialization_reader,
    offset: usize,
) -> memseg_status {
    ffi_boundary!({ with_reader(reader, |r| Ok(r.seek(offset)?)) })
}

/// Writes the position (bytes read) to `*out_offset` and the bytes left to `*out_available`.
/// Thread-safe.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn memseg_serialization_reader_offset(
    reader: memseg_serialization_reader,
    out_offset: *mut usize,
    out_available: *mut usize,
) -> memseg_status {
    ffi_boundary!({
        let out_o = checked_out(out_offset, "out_offset")?;
        let out_a = checked_out(out_available, "out_available")?;
        let (offset, available) = with_reader(reader, |r| Ok((r.offset(), r.available())))?;
        // SAFETY: both were checked non-null; the caller promises they are writable.
        unsafe {
            write_out(out_o, offset);
            write_out(out_a, available);
        }
        Ok(())
    })
}
