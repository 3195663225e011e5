//! Buffers, read-only slices, buffer builders and consumers through the C ABI.
//!
//! A buffer handle carries a reference count of its own, as Flink's `retainBuffer` returns the
//! same buffer: `memseg_buffer_retain()` counts one more, `memseg_buffer_release()` one less,
//! and the last release ends the handle (it is stale from then on) and recycles the segment
//! once no slice shares it either. A slice is a handle of its own that shares the segment.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Mutex, MutexGuard};

use super::args::{answer, byte_buffer, checked_out, host_bytes, host_bytes_mut, write_out};
use super::handle::{HandleError, HandleKind, HandleTable, Ref};
use super::status::{FfiError, memseg_status};
use crate::error::Error;
use crate::ffi_boundary;
use crate::pool::{Buffer, BufferBuilder, BufferConsumer};

/// A handle to a pooled buffer or a read-only slice of one.
///
/// Made by the `memseg_local_pool_request*()` calls, `memseg_buffer_slice()`,
/// `memseg_buffer_consumer_build()` and buffer listeners. The caller owns one reference and
/// must release it with `memseg_buffer_release()`; `memseg_buffer_retain()` adds references
/// to the same handle. After the last release the handle is stale: every call on it returns
/// `MEMSEG_STATUS_STALE_HANDLE`. Calls are thread-safe; the bytes are not synchronized (as in
/// Flink), except through a builder and its consumer.
#[allow(non_camel_case_types)]
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct memseg_buffer {
    /// Opaque: kind tag, generation and slot. Zero is never a valid handle.
    pub bits: u64,
}

/// A handle to a buffer builder: appends bytes to a buffer and commits them to consumers.
/// One writer thread at a time. Free with `memseg_buffer_builder_free()` (which finishes it).
#[allow(non_camel_case_types)]
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct memseg_buffer_builder {
    /// Opaque: kind tag, generation and slot. Zero is never a valid handle.
    pub bits: u64,
}

/// A handle to a buffer consumer: takes read-only slices of what its builder committed. One
/// reader thread at a time, concurrently with the builder's writer. Free with
/// `memseg_buffer_consumer_free()`.
#[allow(non_camel_case_types)]
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct memseg_buffer_consumer {
    /// Opaque: kind tag, generation and slot. Zero is never a valid handle.
    pub bits: u64,
}

/// Buffer tag of data (the tag of a new buffer).
pub const MEMSEG_BUFFER_TAG_DATA: u8 = 0;
/// Buffer tag of an event.
pub const MEMSEG_BUFFER_TAG_EVENT: u8 = 1;

pub(crate) struct BufferEntry {
    buffer: Buffer,
    refs: AtomicU32,
}

static BUFFERS: HandleTable<BufferEntry> = HandleTable::new(HandleKind::Buffer);
static BUILDERS: HandleTable<Mutex<BufferBuilder>> = HandleTable::new(HandleKind::BufferBuilder);
static CONSUMERS: HandleTable<Mutex<BufferConsumer>> = HandleTable::new(HandleKind::BufferConsumer);

fn no_free_handles(what: &str) -> FfiError {
    FfiError::Core(Error::AllocationFailed {
        size: 0,
        reason: format!("no free {what} handles (2^32 in use)"),
    })
}

/// Gives a buffer reference a new handle with a count of one. If no handle can be made, the
/// buffer is released.
pub(crate) fn register_buffer(buffer: Buffer) -> Result<memseg_buffer, FfiError> {
    let bits = BUFFERS.insert_with(
        || {
            Ok::<_, FfiError>((
                BufferEntry {
                    buffer,
                    refs: AtomicU32::new(1),
                },
                (std::ptr::null_mut(), 0),
            ))
        },
        || no_free_handles("buffer"),
    )?;
    Ok(memseg_buffer { bits })
}

pub(crate) fn register_builder(builder: BufferBuilder) -> Result<memseg_buffer_builder, FfiError> {
    let bits = BUILDERS.insert_with(
        || Ok::<_, FfiError>((Mutex::new(builder), (std::ptr::null_mut(), 0))),
        || no_free_handles("buffer builder"),
    )?;
    Ok(memseg_buffer_builder { bits })
}

fn buffer_of(buffer: memseg_buffer) -> Result<Ref<'static, BufferEntry>, FfiError> {
    Ok(BUFFERS.get(buffer.bits)?)
}

/// The builder a live builder handle names (for the record serializer's
/// `memseg_record_serializer_copy_to_builder()`).
pub(crate) fn builder_of(
    builder: memseg_buffer_builder,
) -> Result<Ref<'static, Mutex<BufferBuilder>>, FfiError> {
    Ok(BUILDERS.get(builder.bits)?)
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Adds a reference to the buffer handle (Flink's `retainBuffer`): one more
/// `memseg_buffer_release()` is needed before it is recycled. Thread-safe.
#[unsafe(no_mangle)]
pub extern "C" fn memseg_buffer_retain(buffer: memseg_buffer) -> memseg_status {
    ffi_boundary!({
        let entry = buffer_of(buffer)?;
        // Counted on the segment too, so that every handle sharing it sees the reference; and
        // first, so that a release racing with this one never takes the segment's count below
        // the handle's (the entry's own reference keeps it above zero meanwhile).
        entry.buffer.retain_counted();
        let counted = entry
            .refs
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |r| {
                (r > 0).then_some(r + 1)
            });
        if counted.is_err() {
            entry.buffer.release_counted();
            return Err(FfiError::Handle(HandleError::Stale(format!(
                "buffer handle {:#018x} is stale: its last reference was released",
                buffer.bits
            ))));
        }
        Ok(())
    })
}

/// Releases one reference of the buffer handle. The last release makes the handle stale and
/// recycles the segment to its pool once no slice shares it. A zero handle is a no-op; a
/// release too many is `MEMSEG_STATUS_STALE_HANDLE`. Thread-safe.
#[unsafe(no_mangle)]
pub extern "C" fn memseg_buffer_release(buffer: memseg_buffer) -> memseg_status {
    ffi_boundary!({
        if buffer.bits == 0 {
            return Ok(());
        }
        let released = BUFFERS.remove_if(buffer.bits, |entry| {
            // Removals of a handle check one at a time: the last reference removes it, others
            // only count down.
            if entry.refs.fetch_sub(1, Ordering::AcqRel) == 1 {
                Ok(())
            } else {
                entry.buffer.release_counted();
                Err(Release::NotLast)
            }
        });
        match released {
            Ok(entry) => drop(entry),
            Err(Release::NotLast) => {}
            Err(Release::Refused(e)) => return Err(e.into()),
        }
        Ok(())
    })
}

/// Why a release did not end the handle.
enum Release {
    NotLast,
    Refused(HandleError),
}

impl From<HandleError> for Release {
    fn from(e: HandleError) -> Self {
        Release::Refused(e)
    }
}

/// Writes the handle's reference count plus those of other handles sharing the segment
/// (slices, consumers) — the segment's reference count — to `*out_count`. Thread-safe.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn memseg_buffer_ref_count(
    buffer: memseg_buffer,
    out_count: *mut u32,
) -> memseg_status {
    ffi_boundary!({
        // SAFETY: the caller promises `out_count` is NULL or writable.
        unsafe {
            answer(out_count, "out_count", || -> Result<u32, FfiError> {
                Ok(buffer_of(buffer)?.buffer.ref_count())
            })
        }
    })
}

/// Writes the buffer's size (its writer index; a slice's length) to `*out_size`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn memseg_buffer_size(
    buffer: memseg_buffer,
    out_size: *mut usize,
) -> memseg_status {
    ffi_boundary!({
        // SAFETY: the caller promises `out_size` is NULL or writable.
        unsafe {
            answer(out_size, "out_size", || -> Result<usize, FfiError> {
                Ok(buffer_of(buffer)?.buffer.size())
            })
        }
    })
}

/// Writes the bytes the handle can address (the segment size; a slice's length).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn memseg_buffer_capacity(
    buffer: memseg_buffer,
    out_capacity: *mut usize,
) -> memseg_status {
    ffi_boundary!({
        // SAFETY: the caller promises `out_capacity` is NULL or writable.
        unsafe {
            answer(out_capacity, "out_capacity", || {
                Ok(buffer_of(buffer)?.buffer.capacity())
            })
        }
    })
}

/// Writes the reader index to `*out_index`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn memseg_buffer_reader_index(
    buffer: memseg_buffer,
    out_index: *mut usize,
) -> memseg_status {
    ffi_boundary!({
        // SAFETY: the caller promises `out_index` is NULL or writable.
        unsafe {
            answer(out_index, "out_index", || -> Result<usize, FfiError> {
                Ok(buffer_of(buffer)?.buffer.reader_index())
            })
        }
    })
}

/// Writes the type tag (`MEMSEG_BUFFER_TAG_DATA`, `MEMSEG_BUFFER_TAG_EVENT` or the host's
/// own) to `*out_tag`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn memseg_buffer_tag(
    buffer: memseg_buffer,
    out_tag: *mut u8,
) -> memseg_status {
    ffi_boundary!({
        // SAFETY: the caller promises `out_tag` is NULL or writable.
        unsafe {
            answer(out_tag, "out_tag", || -> Result<u8, FfiError> {
                Ok(buffer_of(buffer)?.buffer.tag())
            })
        }
    })
}

/// Writes whether writes through this handle are refused (slices, consumer slices).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn memseg_buffer_is_read_only(
    buffer: memseg_buffer,
    out_read_only: *mut bool,
) -> memseg_status {
    ffi_boundary!({
        // SAFETY: the caller promises `out_read_only` is NULL or writable.
        unsafe {
            answer(out_read_only, "out_read_only", || {
                Ok(buffer_of(buffer)?.buffer.is_read_only())
            })
        }
    })
}

/// Writes the channel the buffer was requested for, or `MEMSEG_NO_CHANNEL`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn memseg_buffer_channel(
    buffer: memseg_buffer,
    out_channel: *mut u32,
) -> memseg_status {
    ffi_boundary!({
        // SAFETY: the caller promises `out_channel` is NULL or writable.
        unsafe {
            answer(out_channel, "out_channel", || -> Result<u32, FfiError> {
                Ok(buffer_of(buffer)?.buffer.channel().unwrap_or(u32::MAX))
            })
        }
    })
}

/// Writes the segment's index in its network pool: no two buffers out at once share one.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn memseg_buffer_segment_index(
    buffer: memseg_buffer,
    out_index: *mut u32,
) -> memseg_status {
    ffi_boundary!({
        // SAFETY: the caller promises `out_index` is NULL or writable.
        unsafe {
            answer(out_index, "out_index", || -> Result<u32, FfiError> {
                Ok(buffer_of(buffer)?.buffer.segment_index())
            })
        }
    })
}

/// Sets the writer index. `MEMSEG_STATUS_READ_ONLY` on a read-only handle,
/// `MEMSEG_STATUS_OUT_OF_BOUNDS` past the capacity, `MEMSEG_STATUS_INVALID_ARGUMENT` below the
/// reader index. Thread-safe.
#[unsafe(no_mangle)]
pub extern "C" fn memseg_buffer_set_size(buffer: memseg_buffer, size: usize) -> memseg_status {
    ffi_boundary!({
        buffer_of(buffer)?.buffer.set_size(size)?;
        Ok(())
    })
}

/// Sets the reader index; `MEMSEG_STATUS_OUT_OF_BOUNDS` past the size. Thread-safe.
#[unsafe(no_mangle)]
pub extern "C" fn memseg_buffer_set_reader_index(
    buffer: memseg_buffer,
    index: usize,
) -> memseg_status {
    ffi_boundary!({
        buffer_of(buffer)?.buffer.set_reader_index(index)?;
        Ok(())
    })
}

/// Sets the type tag; `MEMSEG_STATUS_READ_ONLY` on a read-only handle. Thread-safe.
#[unsafe(no_mangle)]
pub extern "C" fn memseg_buffer_set_tag(buffer: memseg_buffer, tag: u8) -> memseg_status {
    ffi_boundary!({
        buffer_of(buffer)?.buffer.set_tag(tag)?;
        Ok(())
    })
}

/// Lends the memory the handle addresses: its first byte to `*out_ptr` and its capacity to
/// `*out_size`, for hot loops. Valid until the handle's last release; writing through it on a
/// read-only handle is the host's bug (the library cannot see it). Thread-safe.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn memseg_buffer_raw(
    buffer: memseg_buffer,
    out_ptr: *mut *mut u8,
    out_size: *mut usize,
) -> memseg_status {
    ffi_boundary!({
        let out_p = checked_out(out_ptr, "out_ptr")?;
        let out_n = checked_out(out_size, "out_size")?;
        let region = buffer_of(buffer)?.buffer.region();
        // SAFETY: both were checked non-null; the caller promises they are writable.
        unsafe {
            write_out(out_p, region.as_ptr());
            write_out(out_n, region.len());
        }
        Ok(())
    })
}

/// Copies `len` bytes at `offset` (up to the capacity) into `dst`. `dst` may be NULL only when
/// `len` is 0. `MEMSEG_STATUS_OUT_OF_BOUNDS` if the range is outside; nothing is copied then.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn memseg_buffer_get_bytes(
    buffer: memseg_buffer,
    offset: usize,
    dst: *mut u8,
    len: usize,
) -> memseg_status {
    ffi_boundary!({
        let dst = byte_buffer(dst, len, "dst")?.cast_mut();
        let region = buffer_of(buffer)?.buffer.region();
        // SAFETY: the caller promises `dst` is writable for `len` bytes (or `len` is 0).
        unsafe { region.read_to(offset, dst, len)? };
        Ok(())
    })
}

/// Copies `len` bytes from `src` to `offset` (up to the capacity) without moving the indices.
/// `MEMSEG_STATUS_READ_ONLY` on a read-only handle, `MEMSEG_STATUS_OUT_OF_BOUNDS` if the
/// range is outside; nothing is written then.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn memseg_buffer_put_bytes(
    buffer: memseg_buffer,
    offset: usize,
    src: *const u8,
    len: usize,
) -> memseg_status {
    ffi_boundary!({
        // SAFETY: the caller promises `src` is NULL with `len` 0, or has `len` readable bytes.
        let bytes = unsafe { host_bytes(src, len, "src")? };
        let entry = buffer_of(buffer)?;
        entry.buffer.put_bytes(offset, bytes)?;
        Ok(())
    })
}

/// Appends `len` bytes from `src` at the writer index and advances it. Out of room is
/// `MEMSEG_STATUS_OUT_OF_BOUNDS` (nothing written); read-only is `MEMSEG_STATUS_READ_ONLY`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn memseg_buffer_append(
    buffer: memseg_buffer,
    src: *const u8,
    len: usize,
) -> memseg_status {
    ffi_boundary!({
        // SAFETY: the caller promises `src` is NULL with `len` 0, or has `len` readable bytes.
        let bytes = unsafe { host_bytes(src, len, "src")? };
        let entry = buffer_of(buffer)?;
        entry.buffer.append(bytes)?;
        Ok(())
    })
}

/// Reads `len` bytes at the reader index into `dst` and advances it;
/// `MEMSEG_STATUS_END_OF_DATA` if fewer are readable (nothing read).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn memseg_buffer_read(
    buffer: memseg_buffer,
    dst: *mut u8,
    len: usize,
) -> memseg_status {
    ffi_boundary!({
        // SAFETY: the caller promises `dst` is NULL with `len` 0, or has `len` writable bytes.
        let bytes = unsafe { host_bytes_mut(dst, len, "dst")? };
        let entry = buffer_of(buffer)?;
        entry.buffer.read(bytes)?;
        Ok(())
    })
}

/// Makes a read-only slice of `len` bytes at `offset` of the handle's written bytes
/// (`offset + len <= size`, else `MEMSEG_STATUS_OUT_OF_BOUNDS`) and writes its handle to
/// `*out_slice`. The slice shares the segment's reference count; the caller owns it and must
/// release it with `memseg_buffer_release()`. Writing through it is `MEMSEG_STATUS_READ_ONLY`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn memseg_buffer_slice(
    buffer: memseg_buffer,
    offset: usize,
    len: usize,
    out_slice: *mut memseg_buffer,
) -> memseg_status {
    ffi_boundary!({
        let out = checked_out(out_slice, "out_slice")?;
        let slice = buffer_of(buffer)?.buffer.read_only_slice(offset, len)?;
        let handle = register_buffer(slice)?;
        // SAFETY: `out` was checked non-null; the caller promises it is writable.
        unsafe { write_out(out, handle) };
        Ok(())
    })
}

/// Copies as much of `src[0..len]` as fits after the bytes appended so far and writes how many
/// bytes were copied to `*out_written` (0 when full). Consumers see them after
/// `memseg_buffer_builder_commit()`. `MEMSEG_STATUS_CLOSED` after finish. One writer thread.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn memseg_buffer_builder_append(
    builder: memseg_buffer_builder,
    src: *const u8,
    len: usize,
    out_written: *mut usize,
) -> memseg_status {
    ffi_boundary!({
        let out = checked_out(out_written, "out_written")?;
        // SAFETY: the caller promises `src` is NULL with `len` 0, or has `len` readable bytes.
        let bytes = unsafe { host_bytes(src, len, "src")? };
        let entry = BUILDERS.get(builder.bits)?;
        let n = lock(&entry).append(bytes)?;
        // SAFETY: `out` was checked non-null; the caller promises it is writable.
        unsafe { write_out(out, n) };
        Ok(())
    })
}

/// Publishes the bytes appended so far to the consumers.
#[unsafe(no_mangle)]
pub extern "C" fn memseg_buffer_builder_commit(builder: memseg_buffer_builder) -> memseg_status {
    ffi_boundary!({
        lock(&*BUILDERS.get(builder.bits)?).commit();
        Ok(())
    })
}

/// Commits and marks the end, and writes the bytes written to `*out_size` (may be NULL).
/// Consumers report finished once they consumed every byte. A second call changes nothing.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn memseg_buffer_builder_finish(
    builder: memseg_buffer_builder,
    out_size: *mut usize,
) -> memseg_status {
    ffi_boundary!({
        let size = lock(&*BUILDERS.get(builder.bits)?).finish();
        if let Some(out) = std::ptr::NonNull::new(out_size) {
            // SAFETY: non-null; the caller promises it is writable.
            unsafe { write_out(out, size) };
        }
        Ok(())
    })
}

/// Makes a consumer of the builder's bytes — from the first byte if `from_beginning`, else from
/// the bytes committed from now on — and writes its handle to `*out_consumer`. The caller owns
/// it and must free it with `memseg_buffer_consumer_free()`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn memseg_buffer_builder_create_consumer(
    builder: memseg_buffer_builder,
    from_beginning: bool,
    out_consumer: *mut memseg_buffer_consumer,
) -> memseg_status {
    ffi_boundary!({
        let out = checked_out(out_consumer, "out_consumer")?;
        let entry = BUILDERS.get(builder.bits)?;
        let consumer = {
            let b = lock(&entry);
            if from_beginning {
                b.create_consumer_from_beginning()
            } else {
                b.create_consumer()
            }
        };
        let bits = CONSUMERS.insert_with(
            || Ok::<_, FfiError>((Mutex::new(consumer), (std::ptr::null_mut(), 0))),
            || no_free_handles("buffer consumer"),
        )?;
        // SAFETY: `out` was checked non-null; the caller promises it is writable.
        unsafe { write_out(out, memseg_buffer_consumer { bits }) };
        Ok(())
    })
}

/// Finishes the builder (if not yet) and frees it; its buffer is recycled once its consumers
/// and slices are gone. A zero handle is a no-op; a second free is
/// `MEMSEG_STATUS_STALE_HANDLE`.
#[unsafe(no_mangle)]
pub extern "C" fn memseg_buffer_builder_free(builder: memseg_buffer_builder) -> memseg_status {
    ffi_boundary!({
        if let Some(entry) = BUILDERS.free(builder.bits)? {
            lock(&entry).finish();
        }
        Ok(())
    })
}

/// Writes a read-only slice of the bytes committed and not yet consumed (possibly empty) to
/// `*out_buffer`; they count as consumed. The caller owns the slice and must release it with
/// `memseg_buffer_release()`. One reader thread.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn memseg_buffer_consumer_build(
    consumer: memseg_buffer_consumer,
    out_buffer: *mut memseg_buffer,
) -> memseg_status {
    ffi_boundary!({
        let out = checked_out(out_buffer, "out_buffer")?;
        let entry = CONSUMERS.get(consumer.bits)?;
        let slice = lock(&entry).build();
        let handle = register_buffer(slice)?;
        // SAFETY: `out` was checked non-null; the caller promises it is writable.
        unsafe { write_out(out, handle) };
        Ok(())
    })
}

/// Writes whether the builder finished and every byte was consumed.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn memseg_buffer_consumer_is_finished(
    consumer: memseg_buffer_consumer,
    out_finished: *mut bool,
) -> memseg_status {
    ffi_boundary!({
        let out = checked_out(out_finished, "out_finished")?;
        let finished = lock(&*CONSUMERS.get(consumer.bits)?).is_finished();
        // SAFETY: `out` was checked non-null; the caller promises it is writable.
        unsafe { write_out(out, finished) };
        Ok(())
    })
}

/// Writes whether committed bytes wait to be consumed.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn memseg_buffer_consumer_is_data_available(
    consumer: memseg_buffer_consumer,
    out_available: *mut bool,
) -> memseg_status {
    ffi_boundary!({
        let out = checked_out(out_available, "out_available")?;
        let available = lock(&*CONSUMERS.get(consumer.bits)?).is_data_available();
        // SAFETY: `out` was checked non-null; the caller promises it is writable.
        unsafe { write_out(out, available) };
        Ok(())
    })
}

/// Frees a consumer (its share of the buffer is released). A zero handle is a no-op; a second
/// free is `MEMSEG_STATUS_STALE_HANDLE`.
#[unsafe(no_mangle)]
pub extern "C" fn memseg_buffer_consumer_free(consumer: memseg_buffer_consumer) -> memseg_status {
    ffi_boundary!({
        drop(CONSUMERS.free(consumer.bits)?);
        Ok(())
    })
}
