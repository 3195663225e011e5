//! Bounds-checked access to a contiguous region of memory.
//!
//! [`Region`] is the one place where segment bytes are touched. It is a pointer and a
//! length with every operation checked against them (offset plus length without
//! overflow). [`Segment`](super::Segment) uses it for its safe API; the C ABI builds one
//! from a live handle for each call, so both paths share the same checks.

use std::cmp::Ordering;
use std::ptr::NonNull;

use super::primitive::{ByteOrder, Primitive};
use crate::error::{Error, Result};

/// A pointer and a length, with bounds-checked typed and bulk access.
///
/// A `Region` does not own its memory. Its methods take `&self` even when they write,
/// because the bytes are not synchronized (as in Flink): who may write when is decided
/// by the owner of the memory — `&mut Segment` in Rust, the host in C.
#[derive(Debug, Clone, Copy)]
pub struct Region {
    ptr: NonNull<u8>,
    len: usize,
}

impl Region {
    /// Makes a region of `len` bytes at `ptr`.
    ///
    /// # Safety
    /// For as long as the region (or a copy of it) is used, `ptr` must be valid for reads
    /// and writes of `len` bytes, and no access through it may race with a conflicting
    /// access to the same bytes from elsewhere.
    #[inline]
    pub unsafe fn new(ptr: NonNull<u8>, len: usize) -> Self {
        Region { ptr, len }
    }

    /// Size of the region in bytes.
    #[inline]
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the region has no bytes.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// First byte of the region.
    #[inline]
    pub fn as_ptr(&self) -> *mut u8 {
        self.ptr.as_ptr()
    }

    /// Checks that `[offset, offset + len)` lies inside the region, without overflow.
    #[inline(always)]
    pub fn check(&self, offset: usize, len: usize) -> Result<()> {
        match offset.checked_add(len) {
            Some(end) if end <= self.len => Ok(()),
            _ => Err(self.out_of_bounds(offset, len)),
        }
    }

    #[cold]
    #[inline(never)]
    fn out_of_bounds(&self, offset: usize, len: usize) -> Error {
        Error::OutOfBounds {
            offset,
            len,
            size: self.len,
        }
    }

    /// Pointer to `offset`, once `check(offset, _)` has passed.
    #[inline(always)]
    fn at(&self, offset: usize) -> *mut u8 {
        // SAFETY: callers checked `offset <= len`, so the result stays inside (or one
        // past the end of) the allocation that `new` promised.
        unsafe { self.ptr.as_ptr().add(offset) }
    }

    /// Reads a `T` at `offset` in the given byte order.
    #[inline(always)]
    pub fn get<T: Primitive>(&self, offset: usize, order: ByteOrder) -> Result<T> {
        self.check(offset, T::SIZE)?;
        // SAFETY: the range was checked above; validity comes from `new`'s contract.
        Ok(unsafe { T::load(self.at(offset), order) })
    }

    /// Writes `value` at `offset` in the given byte order.
    #[inline(always)]
    pub fn put<T: Primitive>(&self, offset: usize, value: T, order: ByteOrder) -> Result<()> {
        self.check(offset, T::SIZE)?;
        // SAFETY: the range was checked above; validity comes from `new`'s contract.
        unsafe { value.store(self.at(offset), order) };
        Ok(())
    }

    /// Copies `len` bytes at `offset` to `dst`, which may point anywhere, even into this
    /// region.
    ///
    /// # Safety
    /// `dst` must be valid for writing `len` bytes.
    pub unsafe fn read_to(&self, offset: usize, dst: *mut u8, len: usize) -> Result<()> {
        self.check(offset, len)?;
        // SAFETY: source checked above, destination promised by the caller; `copy` allows
        // the two to overlap.
        unsafe { std::ptr::copy(self.at(offset), dst, len) };
        Ok(())
    }

    /// Copies `len` bytes from `src`, which may point anywhere, even into this region, to
    /// `offset`.
    ///
    /// # Safety
    /// `src` must be valid for reading `len` bytes.
    pub unsafe fn write_from(&self, offset: usize, src: *const u8, len: usize) -> Result<()> {
        self.check(offset, len)?;
        // SAFETY: destination checked above, source promised by the caller; `copy`
        // allows the two to overlap.
        unsafe { std::ptr::copy(src, self.at(offset), len) };
        Ok(())
    }

    /// Copies `len` bytes from `src_offset` in this region to `dst_offset` in `dst`.
    /// The two ranges may overlap (the same region, or regions sharing memory).
    pub fn copy_to(
        &self,
        src_offset: usize,
        dst: &Region,
        dst_offset: usize,
        len: usize,
    ) -> Result<()> {
        self.check(src_offset, len)?;
        dst.check(dst_offset, len)?;
        // SAFETY: both ranges were checked; `copy` has memmove semantics.
        unsafe { std::ptr::copy(self.at(src_offset), dst.at(dst_offset), len) };
        Ok(())
    }

    /// Compares `len` bytes at `offset` with `len` bytes at `other_offset` in `other`, as
    /// unsigned bytes (lexicographically, like `memcmp`).
    pub fn compare(
        &self,
        offset: usize,
        other: &Region,
        other_offset: usize,
        len: usize,
    ) -> Result<Ordering> {
        self.check(offset, len)?;
        other.check(other_offset, len)?;
        // SAFETY: both ranges were checked; the shared slices live only for this call.
        let (a, b) = unsafe {
            (
                std::slice::from_raw_parts(self.at(offset), len),
                std::slice::from_raw_parts(other.at(other_offset), len),
            )
        };
        Ok(a.cmp(b))
    }

    /// Whether `len` bytes at `offset` equal `len` bytes at `other_offset` in `other`.
    pub fn equal(
        &self,
        offset: usize,
        other: &Region,
        other_offset: usize,
        len: usize,
    ) -> Result<bool> {
        Ok(self.compare(offset, other, other_offset, len)? == Ordering::Equal)
    }

    /// Exchanges `len` bytes at `offset` with `len` bytes at `other_offset` in `other`.
    ///
    /// The two ranges must not partly overlap; swapping a range with itself does nothing.
    pub fn swap(
        &self,
        offset: usize,
        other: &Region,
        other_offset: usize,
        len: usize,
    ) -> Result<()> {
        self.check(offset, len)?;
        other.check(other_offset, len)?;
        let a = self.at(offset);
        let b = other.at(other_offset);
        if a == b || len == 0 {
            return Ok(());
        }
        let (a_start, b_start) = (a as usize, b as usize);
        if a_start < b_start + len && b_start < a_start + len {
            return Err(Error::invalid(format!(
                "swap ranges overlap: {len} bytes at {a_start:#x} and at {b_start:#x}"
            )));
        }
        // SAFETY: both ranges were checked and do not overlap.
        unsafe { std::ptr::swap_nonoverlapping(a, b, len) };
        Ok(())
    }

    /// Sets `len` bytes at `offset` to `value`.
    pub fn fill(&self, offset: usize, len: usize, value: u8) -> Result<()> {
        self.check(offset, len)?;
        // SAFETY: the range was checked above.
        unsafe { std::ptr::write_bytes(self.at(offset), value, len) };
        Ok(())
    }
}

// SAFETY: a Region is a pointer and a length; `new`'s contract makes the memory valid
// wherever the region is used, and races on the bytes are excluded by that same contract.
unsafe impl Send for Region {}
// SAFETY: as for Send; all methods that write take the byte-level race rule from `new`.
unsafe impl Sync for Region {}
