//! Length-prefixed records spanning buffers through the C ABI: the record serializer copies
//! records into consecutive segments, the record deserializer gives them back whole.

use std::ptr::NonNull;
use std::sync::{Mutex, MutexGuard};

use super::args::{checked_out, host_bytes, write_out};
use super::buffer::{builder_of, memseg_buffer_builder};
use super::handle::{HandleError, HandleKind, HandleTable};
use super::segment::{memseg_segment, region_of};
use super::serialization::{memseg_serialization_buffer, with_buffer};
use super::status::{FfiError, memseg_status};
use crate::error::Error;
use crate::ffi_boundary;
use crate::segment::Region;
use crate::view::{RecordDeserializer, RecordSerializer, RecordTarget};

/// The default bound on a record's length for `memseg_record_deserializer_new()`: 64 MiB.
pub const MEMSEG_RECORD_DEFAULT_MAX_LEN: usize = 64 << 20;

const _: () = assert!(MEMSEG_RECORD_DEFAULT_MAX_LEN == crate::view::DEFAULT_MAX_RECORD_LEN);

/// A handle to a record serializer: it frames records as a 4-byte big-endian length followed
/// by their bytes and copies them into consecutive segments, splitting a record where a
/// segment ends.
///
/// Create with `memseg_record_serializer_new()`; the caller owns it and must free it with
/// `memseg_record_serializer_free()`. Thread-safe (calls are serialized by a lock).
#[allow(non_camel_case_types)]
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct memseg_record_serializer {
    /// Opaque: kind tag, generation and slot. Zero is never a valid handle.
    pub bits: u64,
}

/// A handle to a record deserializer: it reassembles the records of a record serializer from
/// the segments they were copied into.
///
/// Create with `memseg_record_deserializer_new()`; the caller owns it and must free it with
/// `memseg_record_deserializer_free()`. Thread-safe (calls are serialized by a lock).
#[allow(non_camel_case_types)]
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct memseg_record_deserializer {
    /// Opaque: kind tag, generation and slot. Zero is never a valid handle.
    pub bits: u64,
}

/// Bytes of a host segment, read by the deserializer in place.
struct SegmentBytes {
    region: Region,
}

impl AsRef<[u8]> for SegmentBytes {
    fn as_ref(&self) -> &[u8] {
        // SAFETY: the region is part of a segment the host promised to keep alive while the
        // deserializer reads it; every call re-checks the handle before reading.
        unsafe { std::slice::from_raw_parts(self.region.as_ptr(), self.region.len()) }
    }
}

struct FfiDeserializer {
    inner: RecordDeserializer<SegmentBytes>,
    current: Option<memseg_segment>,
}

static SERIALIZERS: HandleTable<Mutex<RecordSerializer>> =
    HandleTable::new(HandleKind::RecordSerializer);
static DESERIALIZERS: HandleTable<Mutex<FfiDeserializer>> =
    HandleTable::new(HandleKind::RecordDeserializer);

fn lock<T>(object: &Mutex<T>) -> MutexGuard<'_, T> {
    object.lock().unwrap_or_else(|e| e.into_inner())
}

fn no_free_handles(what: &str) -> FfiError {
    FfiError::Core(Error::AllocationFailed {
        size: 0,
        reason: format!("no free {what} handles"),
    })
}

/// A segment range being filled by the serializer.
struct RegionTarget {
    region: Region,
    fill: usize,
}

impl RecordTarget for RegionTarget {
    fn append(&mut self, src: &[u8]) -> usize {
        let n = self.remaining().min(src.len());
        // SAFETY: `src` is readable for `n` bytes (it is the serializer's own buffer).
        unsafe { self.region.write_from(self.fill, src.as_ptr(), n) }
            .expect("the fill plus what fits is inside the segment");
        self.fill += n;
        n
    }

    fn remaining(&self) -> usize {
        self.region.len() - self.fill
    }
}

// ---- record serializer ----------------------------------------------------------------------

/// Creates a record serializer and writes its handle to `*out_serializer`. The caller owns it
/// and must free it with `memseg_record_serializer_free()`. Thread-safe.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn memseg_record_serializer_new(
    out_serializer: *mut memseg_record_serializer,
) -> memseg_status {
    ffi_boundary!({
        let out = checked_out(out_serializer, "out_serializer")?;
        let bits = SERIALIZERS.insert_with(
            || {
                let ser = RecordSerializer::new();
                Ok::<_, FfiError>((Mutex::new(ser), (std::ptr::null_mut(), 0)))
            },
            || no_free_handles("record serializer"),
        )?;
        // SAFETY: `out` was checked non-null; the caller promises it is writable.
        unsafe { write_out(out, memseg_record_serializer { bits }) };
        Ok(())
    })
}

/// Frees a record serializer (and any record not fully copied). A zero handle is a no-op;
/// freeing twice is `MEMSEG_STATUS_STALE_HANDLE`. Thread-safe.
#[unsafe(no_mangle)]
pub extern "C" fn memseg_record_serializer_free(
    serializer: memseg_record_serializer,
) -> memseg_status {
    ffi_boundary!({
        drop(SERIALIZERS.free(serializer.bits)?);
        Ok(())
    })
}

/// Takes the `len` bytes at `record` (copied; NULL only when `len` is 0) as the next record.
///
/// `MEMSEG_STATUS_INVALID_ARGUMENT` while the previous record is not fully copied, or for a
/// record longer than `INT32_MAX` bytes. Thread-safe.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn memseg_record_serializer_serialize(
    serializer: memseg_record_serializer,
    record: *const u8,
    len: usize,
) -> memseg_status {
    ffi_boundary!({
        // SAFETY: the caller promises `record` is NULL with `len` 0, or has `len` readable bytes.
        let bytes = unsafe { host_bytes(record, len, "record")? };
        let object = SERIALIZERS.get(serializer.bits)?;
        lock(&object).serialize_record(bytes)?;
        Ok(())
    })
}

/// Takes the bytes written into a serialization buffer as the next record (copied; the buffer
/// is left as it is). Failures as `memseg_record_serializer_serialize()`. Thread-safe.
#[unsafe(no_mangle)]
pub extern "C" fn memseg_record_serializer_serialize_buffer(
    serializer: memseg_record_serializer,
    buffer: memseg_serialization_buffer,
) -> memseg_status {
    ffi_boundary!({
        let object = SERIALIZERS.get(serializer.bits)?;
        let mut ser = lock(&object);
        with_buffer(buffer, |b| ser.serialize_record(b.as_bytes()))
    })
}

/// Copies as much of the current record as fits into `segment` from byte `offset` to its end;
/// writes the number of bytes copied to `*out_written` and whether the record is now fully
/// copied to `*out_record_done`. When it is not, call again with the next segment.
///
/// `MEMSEG_STATUS_OUT_OF_BOUNDS` for an offset beyond the segment's size. With no record
/// pending it copies nothing and reports it done. Thread-safe as the segment's bytes are.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn memseg_record_serializer_copy_to_segment(
    serializer: memseg_record_serializer,
    segment: memseg_segment,
    offset: usize,
    out_written: *mut usize,
    out_record_done: *mut bool,
) -> memseg_status {
    ffi_boundary!({
        let out_w = checked_out(out_written, "out_written")?;
        let out_d = checked_out(out_record_done, "out_record_done")?;
        let object = SERIALIZERS.get(serializer.bits)?;
        let region = region_of(segment)?;
        region.check(offset, 0)?;
        let mut target = RegionTarget {
            region,
            fill: offset,
        };
        let result = lock(&object).copy_to(&mut target);
        // SAFETY: both were checked non-null; the caller promises they are writable.
        unsafe {
            write_out(out_w, target.fill - offset);
            write_out(out_d, result.record_done);
        }
        Ok(())
    })
}

/// Copies as much of the current record as fits into `builder` after the bytes it holds, and
/// commits them so that the builder's consumer (on any thread) sees them; writes the number
/// of bytes copied to `*out_written` and whether the record is now fully copied to
/// `*out_record_done`. When it is not, the builder is full: finish it, request the next
/// builder from the local pool and call again. A finished builder takes nothing (0 bytes,
/// not done).
///
/// Records written this way span buffers as Flink's result partitions write them; a record
/// deserializer on the consumer's side gives them back whole. Thread-safe; the builder keeps
/// its one writer.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn memseg_record_serializer_copy_to_builder(
    serializer: memseg_record_serializer,
    builder: memseg_buffer_builder,
    out_written: *mut usize,
    out_record_done: *mut bool,
) -> memseg_status {
    ffi_boundary!({
        let out_w = checked_out(out_written, "out_written")?;
        let out_d = checked_out(out_record_done, "out_record_done")?;
        let object = SERIALIZERS.get(serializer.bits)?;
        let builder = builder_of(builder)?;
        let mut builder = builder.lock().unwrap_or_else(|e| e.into_inner());
        let before = builder.position();
        let result = lock(&object).copy_to(&mut *builder);
        let written = builder.position() - before;
        // SAFETY: both were checked non-null; the caller promises they are writable.
        unsafe {
            write_out(out_w, written);
            write_out(out_d, result.record_done);
        }
        Ok(())
    })
}

/// Writes the number of bytes of the current record (length prefix included) still to be
/// copied to `*out_pending`. Thread-safe.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn memseg_record_serializer_pending(
    serializer: memseg_record_serializer,
    out_pending: *mut usize,
) -> memseg_status {
    ffi_boundary!({
        let out = checked_out(out_pending, "out_pending")?;
        let object = SERIALIZERS.get(serializer.bits)?;
        let pending = lock(&object).pending();
        // SAFETY: `out` was checked non-null; the caller promises it is writable.
        unsafe { write_out(out, pending) };
        Ok(())
    })
}

// ---- record deserializer --------------------------------------------------------------------

/// Creates a record deserializer that refuses records longer than `max_record_len` bytes (a
/// length prefix above it is `MEMSEG_STATUS_CORRUPTED`; `MEMSEG_RECORD_DEFAULT_MAX_LEN` is a
/// sane default), and writes its handle to `*out_deserializer`. The caller owns it and must
/// free it with `memseg_record_deserializer_free()`. Thread-safe.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn memseg_record_deserializer_new(
    max_record_len: usize,
    out_deserializer: *mut memseg_record_deserializer,
) -> memseg_status {
    ffi_boundary!({
        let out = checked_out(out_deserializer, "out_deserializer")?;
        let bits = DESERIALIZERS.insert_with(
            || {
                let de = FfiDeserializer {
                    inner: RecordDeserializer::new(max_record_len),
                    current: None,
                };
                Ok::<_, FfiError>((Mutex::new(de), (std::ptr::null_mut(), 0)))
            },
            || no_free_handles("record deserializer"),
        )?;
        // SAFETY: `out` was checked non-null; the caller promises it is writable.
        unsafe { write_out(out, memseg_record_deserializer { bits }) };
        Ok(())
    })
}

/// Frees a record deserializer (and any partial record it holds). A zero handle is a no-op;
/// freeing twice is `MEMSEG_STATUS_STALE_HANDLE`. Thread-safe.
#[unsafe(no_mangle)]
pub extern "C" fn memseg_record_deserializer_free(
    deserializer: memseg_record_deserializer,
) -> memseg_status {
    ffi_boundary!({
        drop(DESERIALIZERS.free(deserializer.bits)?);
        Ok(())
    })
}

fn check_current(de: &FfiDeserializer) -> Result<(), FfiError> {
    match de.current {
        Some(handle) => region_of(handle).map(|_| ()).map_err(|e| match e {
            FfiError::Handle(HandleError::Stale(_)) => {
                FfiError::Handle(HandleError::Stale(format!(
                    "the record deserializer's current segment ({:#018x}) was freed while it was \
                 being read",
                    handle.bits
                )))
            }
            other => other,
        }),
        None => Ok(()),
    }
}

/// Gives the deserializer the next buffer: `len` bytes at byte `offset` of `segment`, read in
/// place. Bytes left unread in the previous buffer are copied first, so the previous segment
/// is the host's again after this call; this one must stay alive until the next call to
/// `memseg_record_deserializer_set_next_buffer()` or `_free()`.
///
/// `MEMSEG_STATUS_OUT_OF_BOUNDS` unless `offset + len <= size`. Thread-safe as the segment's
/// bytes are.
#[unsafe(no_mangle)]
pub extern "C" fn memseg_record_deserializer_set_next_buffer(
    deserializer: memseg_record_deserializer,
    segment: memseg_segment,
    offset: usize,
    len: usize,
) -> memseg_status {
    ffi_boundary!({
        let object = DESERIALIZERS.get(deserializer.bits)?;
        let region = region_of(segment)?;
        region.check(offset, len)?;
        let ptr = NonNull::new(region.as_ptr().wrapping_add(offset)).expect("inside a segment");
        // SAFETY: `[offset, offset + len)` was checked to lie inside the live segment.
        let region = unsafe { Region::new(ptr, len) };
        let mut de = lock(&object);
        check_current(&de)?;
        de.inner.set_next_buffer(SegmentBytes { region })?;
        de.current = Some(segment);
        Ok(())
    })
}

/// Hands out the next whole record: its address to `*out_record` and its length to
/// `*out_len`. The record is lent until the next call on this deserializer (or until its
/// segment is freed); it points into the segment for a record inside one buffer, into the
/// deserializer's own memory for one that spanned buffers.
///
/// `MEMSEG_STATUS_NEED_MORE_DATA` when the buffers given so far end inside a record (or at a
/// record boundary): give the next one with `memseg_record_deserializer_set_next_buffer()` and
/// ask again. `MEMSEG_STATUS_CORRUPTED` for a length prefix above the bound (nothing is
/// consumed), `MEMSEG_STATUS_STALE_HANDLE` if the current segment was freed. Out parameters
/// are written only on success. Thread-safe as the segment's bytes are.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn memseg_record_deserializer_next_record(
    deserializer: memseg_record_deserializer,
    out_record: *mut *const u8,
    out_len: *mut usize,
) -> memseg_status {
    ffi_boundary!({
        let out_r = checked_out(out_record, "out_record")?;
        let out_n = checked_out(out_len, "out_len")?;
        let object = DESERIALIZERS.get(deserializer.bits)?;
        let mut de = lock(&object);
        check_current(&de)?;
        match de.inner.next_record()? {
            Some(record) => {
                // SAFETY: both were checked non-null; the caller promises they are writable.
                unsafe {
                    write_out(out_r, record.as_ptr());
                    write_out(out_n, record.len());
                }
                Ok(())
            }
            None => Err(Error::NeedMoreData(
                "the buffers given so far end inside a record or at its start; give the next \
                 buffer"
                    .into(),
            )
            .into()),
        }
    })
}

/// Drops any partial record and forgets the current buffer. Thread-safe.
#[unsafe(no_mangle)]
pub extern "C" fn memseg_record_deserializer_clear(
    deserializer: memseg_record_deserializer,
) -> memseg_status {
    ffi_boundary!({
        let object = DESERIALIZERS.get(deserializer.bits)?;
        let mut de = lock(&object);
        de.inner.clear();
        de.current = None;
        Ok(())
    })
}
