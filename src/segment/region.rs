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

#[cfg(test)]
mod tests {
    use super::*;

    fn region(buf: &mut [u8]) -> Region {
        // SAFETY: the tests use the region only while `buf` is alive and not otherwise
        // accessed.
        unsafe { Region::new(NonNull::new(buf.as_mut_ptr()).unwrap(), buf.len()) }
    }

    fn oob(offset: usize, len: usize, size: usize) -> Result<()> {
        Err(Error::OutOfBounds { offset, len, size })
    }

    #[test]
    fn check_accepts_exactly_the_ranges_inside() {
        let mut buf = [0u8; 16];
        let r = region(&mut buf);
        assert_eq!(r.check(0, 16), Ok(()));
        assert_eq!(r.check(16, 0), Ok(()), "an empty range at the end");
        assert_eq!(r.check(15, 1), Ok(()));
        assert_eq!(r.check(15, 2), oob(15, 2, 16));
        assert_eq!(r.check(17, 0), oob(17, 0, 16));
        assert_eq!(r.check(1, usize::MAX), oob(1, usize::MAX, 16), "no wrap");
        assert_eq!(r.check(usize::MAX, 1), oob(usize::MAX, 1, 16), "no wrap");
        assert_eq!(r.check(usize::MAX, 0), oob(usize::MAX, 0, 16));
        assert_eq!(r.len(), 16);
        assert!(!r.is_empty());
    }

    #[test]
    fn an_empty_region_allows_only_empty_ranges_at_zero() {
        let mut buf = [0u8; 0];
        let r = region(&mut buf);
        assert!(r.is_empty());
        assert_eq!(r.fill(0, 0, 1), Ok(()));
        assert_eq!(
            r.get::<u8>(0, ByteOrder::Native),
            Err(Error::OutOfBounds {
                offset: 0,
                len: 1,
                size: 0
            })
        );
        assert_eq!(r.compare(0, &r, 0, 0), Ok(Ordering::Equal));
        assert_eq!(r.swap(0, &r, 0, 0), Ok(()));
    }

    #[test]
    fn failed_operations_change_nothing() {
        let mut buf: Vec<u8> = (0..16).collect();
        let r = region(&mut buf);
        assert!(r.put(13, 0xFFFF_FFFFu32, ByteOrder::Big).is_err());
        assert!(r.fill(8, 9, 0xFF).is_err());
        assert!(r.copy_to(0, &r, 9, 8).is_err());
        assert!(r.copy_to(9, &r, 0, 8).is_err());
        assert!(r.swap(0, &r, 9, 8).is_err());
        let mut out = [0xAAu8; 4];
        // SAFETY: `out` is writable for 4 bytes (and the read fails anyway).
        assert!(unsafe { r.read_to(13, out.as_mut_ptr(), 4) }.is_err());
        // SAFETY: `out` is readable for 4 bytes.
        assert!(unsafe { r.write_from(13, out.as_ptr(), 4) }.is_err());
        assert_eq!(out, [0xAA; 4]);
        assert_eq!(buf, (0..16).collect::<Vec<u8>>());
    }

    #[test]
    fn swap_refuses_partly_overlapping_ranges_only() {
        let mut buf: Vec<u8> = (0..16).collect();
        let r = region(&mut buf);
        assert!(
            matches!(r.swap(0, &r, 3, 4), Err(Error::InvalidArgument(m)) if m.contains("overlap"))
        );
        assert!(matches!(
            r.swap(4, &r, 1, 4),
            Err(Error::InvalidArgument(_))
        ));
        assert_eq!(r.swap(5, &r, 5, 4), Ok(()), "a range with itself");
        assert_eq!(r.swap(2, &r, 9, 0), Ok(()), "empty ranges");
        assert_eq!(r.swap(0, &r, 4, 4), Ok(()), "adjacent ranges");
        assert_eq!(buf[..8], [4, 5, 6, 7, 0, 1, 2, 3]);
    }

    #[test]
    fn regions_sharing_memory_copy_like_memmove() {
        let mut buf: Vec<u8> = (0..16).collect();
        let whole = region(&mut buf);
        // SAFETY: a sub-range of the same buffer, used only while it lives.
        let tail = unsafe { Region::new(NonNull::new(whole.as_ptr().add(4)).unwrap(), 12) };
        // Forward overlap: the tail starts inside the source range.
        assert_eq!(whole.copy_to(0, &tail, 0, 8), Ok(()));
        assert_eq!(buf[..12], [0, 1, 2, 3, 0, 1, 2, 3, 4, 5, 6, 7]);
        // Backward overlap.
        let whole = region(&mut buf);
        // SAFETY: as above.
        let tail = unsafe { Region::new(NonNull::new(whole.as_ptr().add(4)).unwrap(), 12) };
        assert_eq!(tail.copy_to(0, &whole, 2, 8), Ok(()));
        assert_eq!(buf[..12], [0, 1, 0, 1, 2, 3, 4, 5, 6, 7, 6, 7]);
        // A swap between regions sharing memory sees their real overlap.
        let whole = region(&mut buf);
        // SAFETY: as above.
        let tail = unsafe { Region::new(NonNull::new(whole.as_ptr().add(4)).unwrap(), 12) };
        assert!(
            whole.swap(2, &tail, 0, 4).is_err(),
            "bytes 4..6 are in both"
        );
        assert_eq!(
            whole.swap(0, &tail, 0, 4),
            Ok(()),
            "0..4 and 4..8 only touch"
        );
        assert_eq!(buf[..8], [2, 3, 4, 5, 0, 1, 0, 1]);
    }

    #[test]
    fn compare_is_memcmp_on_unsigned_bytes() {
        let mut a = [1u8, 0x80, 3];
        let mut b = [1u8, 0x7F, 4];
        let (ra, rb) = (region(&mut a), region(&mut b));
        assert_eq!(ra.compare(0, &rb, 0, 3), Ok(Ordering::Greater));
        assert_eq!(rb.compare(0, &ra, 0, 3), Ok(Ordering::Less));
        assert_eq!(ra.compare(0, &rb, 0, 1), Ok(Ordering::Equal));
        assert_eq!(ra.equal(0, &rb, 0, 1), Ok(true));
        assert_eq!(ra.equal(2, &rb, 2, 1), Ok(false));
        // The first range is checked first; each error names the range that failed.
        let err = |offset, len| Error::OutOfBounds {
            offset,
            len,
            size: 3,
        };
        assert_eq!(ra.compare(3, &rb, 9, 1), Err(err(3, 1)));
        assert_eq!(ra.compare(0, &rb, 2, 2), Err(err(2, 2)));
        assert_eq!(ra.equal(1, &rb, usize::MAX, 2), Err(err(usize::MAX, 2)));
    }
}
