//! Memory segments: one contiguous region of fixed size, owned by the segment.
//!
//! A [`Segment`] is Flink's `MemorySegment` for native hosts. Every kind of memory —
//! heap, off-heap or foreign (host-provided) — is the same type, so the typed accessors
//! have one code path and no dynamic dispatch.

mod backing;
mod primitive;
mod region;

use std::cmp::Ordering;
use std::fmt;
use std::ptr::NonNull;

pub use backing::{OffHeapOptions, ReleaseFn};
pub(crate) use backing::{PageHome, PageHomePtr};
pub use primitive::{ByteOrder, Primitive};
pub use region::Region;

use crate::error::Result;
use backing::{Backing, PageMemory};
use std::mem::ManuallyDrop;

/// Where a segment's memory comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SegmentKind {
    /// The process's global allocator.
    Heap,
    /// An anonymous memory mapping of its own, page aligned.
    OffHeap,
    /// Memory the host owns (a JVM direct buffer, a numpy array, …), released through the
    /// host's callback.
    Foreign,
}

/// One contiguous, fixed-size region of memory and the typed, bounds-checked operations on
/// it.
///
/// New heap and off-heap segments are zero-filled. Dropping a segment returns its memory
/// (or, for foreign memory, calls its release callback exactly once).
pub struct Segment {
    region: Region,
    backing: Backing,
}

// SAFETY: the segment owns its memory exclusively (or, for foreign memory, holds the
// host's promise that nothing else uses it); reads need `&self`, writes `&mut self`.
unsafe impl Send for Segment {}
// SAFETY: as for Send: shared references only read.
unsafe impl Sync for Segment {}

impl Segment {
    /// Allocates `size` zeroed bytes from the global allocator (aligned to 64 bytes).
    ///
    /// Fails with `InvalidArgument` for a size of zero or above `isize::MAX`, and with
    /// `AllocationFailed` when the allocator refuses.
    pub fn allocate_heap(size: usize) -> Result<Segment> {
        let (ptr, backing) = Backing::heap(size)?;
        Ok(Segment::from_backing(ptr, size, backing))
    }

    /// Maps `size` zeroed bytes of anonymous memory, page aligned.
    ///
    /// Fails with `InvalidArgument` for a size of zero or above `isize::MAX`, and with
    /// `AllocationFailed` when the operating system refuses.
    pub fn allocate_off_heap(size: usize, options: OffHeapOptions) -> Result<Segment> {
        let (ptr, backing) = Backing::off_heap(size, options)?;
        Ok(Segment::from_backing(ptr, size, backing))
    }

    /// Wraps `size` bytes of memory the host owns. `release`, if given, runs exactly once,
    /// when the segment is dropped, with the same pointer and size.
    ///
    /// If this fails (`size` of zero or above `isize::MAX`), `release` is dropped without
    /// being called and the memory stays the host's.
    ///
    /// # Safety
    /// Until the segment is dropped, `ptr` must be valid for reads and writes of `size`
    /// bytes, and nothing else may access that memory except through raw pointers lent by
    /// this segment.
    pub unsafe fn wrap_foreign(
        ptr: NonNull<u8>,
        size: usize,
        release: Option<ReleaseFn>,
    ) -> Result<Segment> {
        let backing = Backing::foreign(size, release)?;
        Ok(Segment::from_backing(ptr, size, backing))
    }

    #[inline]
    fn from_backing(ptr: NonNull<u8>, size: usize, backing: Backing) -> Segment {
        // SAFETY: `ptr` addresses `size` bytes owned by `backing`, which lives as long as
        // the region is reachable (both are fields of this segment).
        let region = unsafe { Region::new(ptr, size) };
        Segment { region, backing }
    }

    /// A page of a memory manager's arena: `size` bytes at `ptr` that `home` owns. Dropping
    /// the segment gives the page back to `home` ([`PageHome::page_returned`], `freed` false).
    ///
    /// # Safety
    /// Until the segment is dropped, `ptr` must be valid for reads and writes of `size` bytes
    /// (`home` owns that memory), and nothing else may access it except through raw pointers
    /// lent by this segment. `size` must not be zero. `home` comes from `Arc::as_ptr`, counts
    /// this page from now on, and keeps its strong count above zero (its pages' shared
    /// reference) until its `page_returned` returns true.
    #[inline]
    pub(crate) unsafe fn managed_page(
        ptr: NonNull<u8>,
        size: usize,
        kind: SegmentKind,
        home: PageHomePtr,
    ) -> Segment {
        let backing = Backing::Managed {
            kind,
            memory: PageMemory::Borrowed,
            home,
        };
        Segment::from_backing(ptr, size, backing)
    }

    /// Turns a segment made by [`allocate_heap`](Self::allocate_heap) or
    /// [`allocate_off_heap`](Self::allocate_off_heap) into a managed page that owns its
    /// memory: dropping it frees the memory, then tells `home` (`freed` true). A foreign or
    /// already managed segment is given back unchanged as the error.
    ///
    /// # Safety
    /// As for [`managed_page`](Self::managed_page): `home` counts the page (if it becomes
    /// one) and stays alive until its `page_returned` returns true.
    pub(crate) unsafe fn into_managed(self, home: PageHomePtr) -> Result<Segment, Segment> {
        let this = ManuallyDrop::new(self);
        let region = this.region;
        // SAFETY: `this` is never used or dropped again, so the backing is moved out once.
        let backing = unsafe { std::ptr::read(&this.backing) };
        let kind = backing.kind();
        match backing.into_page_memory(region.len()) {
            Ok(memory) => Ok(Segment {
                region,
                backing: Backing::Managed { kind, memory, home },
            }),
            Err(backing) => Err(Segment { region, backing }),
        }
    }

    /// Ends a managed page whose memory is its home's (a preallocated manager's) without
    /// telling the home: for the home itself, which takes the page back directly. Returns the
    /// page's address; any other segment comes back unchanged.
    #[inline]
    pub(crate) fn into_borrowed_page(self) -> Result<NonNull<u8>, Segment> {
        if let Backing::Managed {
            memory: PageMemory::Borrowed,
            ..
        } = self.backing
        {
            // Nothing to free: the memory is the home's, and the home pointer holds no
            // reference of its own.
            let ptr = self.region.as_ptr();
            std::mem::forget(self);
            return Ok(NonNull::new(ptr).expect("a segment's pointer is never null"));
        }
        Err(self)
    }

    /// The home of a managed page; `None` for any other segment.
    #[inline]
    pub(crate) fn page_home(&self) -> Option<PageHomePtr> {
        match &self.backing {
            Backing::Managed { home, .. } => Some(*home),
            _ => None,
        }
    }

    /// Gives a managed page a new home (the lease it is transferred to) and returns the old
    /// one; a segment that is not a managed page is left alone (`None`).
    ///
    /// # Safety
    /// `new` must meet the contract of [`managed_page`](Self::managed_page). The old home
    /// no longer hears of this page: the caller settles its count.
    pub(crate) unsafe fn replace_page_home(&mut self, new: PageHomePtr) -> Option<PageHomePtr> {
        match &mut self.backing {
            Backing::Managed { home, .. } => Some(std::mem::replace(home, new)),
            _ => None,
        }
    }

    /// Size in bytes.
    #[inline]
    pub fn size(&self) -> usize {
        self.region.len()
    }

    /// Where the memory comes from.
    pub fn kind(&self) -> SegmentKind {
        self.backing.kind()
    }

    /// The segment's memory as a region. The region does not keep the memory alive; it is
    /// valid as long as the segment is.
    #[inline]
    pub fn region(&self) -> Region {
        self.region
    }

    /// First byte of the segment. Valid for `size()` bytes until the segment is dropped.
    #[inline]
    pub fn as_ptr(&self) -> *const u8 {
        self.region.as_ptr()
    }

    /// First byte of the segment, for writing. Valid for `size()` bytes until the segment
    /// is dropped.
    #[inline]
    pub fn as_mut_ptr(&mut self) -> *mut u8 {
        self.region.as_ptr()
    }

    /// The whole segment as bytes.
    pub fn as_slice(&self) -> &[u8] {
        // SAFETY: the region is valid for `len` bytes while `self` lives; `&self` excludes
        // writers in Rust.
        unsafe { std::slice::from_raw_parts(self.region.as_ptr(), self.region.len()) }
    }

    /// The whole segment as mutable bytes.
    pub fn as_mut_slice(&mut self) -> &mut [u8] {
        // SAFETY: as for `as_slice`; `&mut self` makes this the only access.
        unsafe { std::slice::from_raw_parts_mut(self.region.as_ptr(), self.region.len()) }
    }

    /// Reads a `T` at `offset` in the given byte order.
    #[inline(always)]
    pub fn get<T: Primitive>(&self, offset: usize, order: ByteOrder) -> Result<T> {
        self.region.get(offset, order)
    }

    /// Writes `value` at `offset` in the given byte order.
    #[inline(always)]
    pub fn put<T: Primitive>(&mut self, offset: usize, value: T, order: ByteOrder) -> Result<()> {
        self.region.put(offset, value, order)
    }

    /// Copies `dst.len()` bytes at `offset` into `dst`.
    pub fn get_bytes(&self, offset: usize, dst: &mut [u8]) -> Result<()> {
        // SAFETY: `dst` is a valid, exclusively borrowed buffer of `dst.len()` bytes.
        unsafe { self.region.read_to(offset, dst.as_mut_ptr(), dst.len()) }
    }

    /// Copies `src` into the segment at `offset`.
    pub fn put_bytes(&mut self, offset: usize, src: &[u8]) -> Result<()> {
        // SAFETY: `src` is a valid buffer of `src.len()` bytes.
        unsafe { self.region.write_from(offset, src.as_ptr(), src.len()) }
    }

    /// Copies `len` bytes at `offset` to `target` at `target_offset`.
    pub fn copy_to(
        &self,
        offset: usize,
        target: &mut Segment,
        target_offset: usize,
        len: usize,
    ) -> Result<()> {
        self.region
            .copy_to(offset, &target.region, target_offset, len)
    }

    /// Copies `len` bytes from `src_offset` to `dst_offset` within this segment; the
    /// ranges may overlap.
    pub fn copy_within(&mut self, src_offset: usize, dst_offset: usize, len: usize) -> Result<()> {
        self.region
            .copy_to(src_offset, &self.region, dst_offset, len)
    }

    /// Compares `len` bytes at `offset` with `len` bytes of `other` at `other_offset` as
    /// unsigned bytes.
    pub fn compare(
        &self,
        offset: usize,
        other: &Segment,
        other_offset: usize,
        len: usize,
    ) -> Result<Ordering> {
        self.region
            .compare(offset, &other.region, other_offset, len)
    }

    /// Whether `len` bytes at `offset` equal `len` bytes of `other` at `other_offset`.
    pub fn equal(
        &self,
        offset: usize,
        other: &Segment,
        other_offset: usize,
        len: usize,
    ) -> Result<bool> {
        self.region.equal(offset, &other.region, other_offset, len)
    }

    /// Exchanges `len` bytes at `offset` with `len` bytes of `other` at `other_offset`.
    pub fn swap_with(
        &mut self,
        offset: usize,
        other: &mut Segment,
        other_offset: usize,
        len: usize,
    ) -> Result<()> {
        self.region.swap(offset, &other.region, other_offset, len)
    }

    /// Sets `len` bytes at `offset` to `value`.
    pub fn fill(&mut self, offset: usize, len: usize, value: u8) -> Result<()> {
        self.region.fill(offset, len, value)
    }
}

impl Drop for Segment {
    #[inline]
    fn drop(&mut self) {
        let (ptr, size) = (self.region.as_ptr(), self.region.len());
        // A preallocated manager's page (the most frequent drop on a hot path) goes straight
        // back to its home.
        if let Backing::Managed {
            memory: PageMemory::Borrowed,
            home,
            ..
        } = self.backing
        {
            backing::return_page(home, ptr, size, false);
            return;
        }
        self.backing.release(ptr, size);
    }
}

impl fmt::Debug for Segment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Segment")
            .field("kind", &self.kind())
            .field("size", &self.size())
            .field("address", &self.region.as_ptr())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Error;
    use std::sync::Arc;

    #[test]
    fn segments_can_move_between_and_be_shared_by_threads() {
        fn send_sync<T: Send + Sync>() {}
        send_sync::<Segment>();
        let mut seg = Segment::allocate_heap(8).unwrap();
        seg.put(0, 0x0102_0304_0506_0708u64, ByteOrder::Big)
            .unwrap();
        let seg = std::thread::spawn(move || seg).join().unwrap();
        std::thread::scope(|s| {
            for _ in 0..2 {
                s.spawn(|| assert_eq!(seg.get::<u8>(7, ByteOrder::Big), Ok(8)));
            }
        });
    }

    #[test]
    fn copy_within_moves_overlapping_ranges_both_ways() {
        let mut seg = Segment::allocate_heap(10).unwrap();
        seg.as_mut_slice()
            .copy_from_slice(&[0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
        seg.copy_within(0, 2, 6).unwrap();
        assert_eq!(seg.as_slice(), [0, 1, 0, 1, 2, 3, 4, 5, 8, 9]);
        seg.copy_within(3, 1, 6).unwrap();
        assert_eq!(seg.as_slice(), [0, 1, 2, 3, 4, 5, 8, 5, 8, 9]);
        assert_eq!(
            seg.copy_within(5, 0, 6),
            Err(Error::OutOfBounds {
                offset: 5,
                len: 6,
                size: 10
            })
        );
        assert_eq!(seg.as_slice(), [0, 1, 2, 3, 4, 5, 8, 5, 8, 9]);
    }

    /// Counts returned pages, as a lease account would. Each page here holds a reference
    /// of its own (a home of one page at a time), so every return gives it up.
    #[derive(Default)]
    struct Home {
        returned: std::sync::atomic::AtomicUsize,
        freed: std::sync::atomic::AtomicUsize,
    }

    impl PageHome for Home {
        fn page_returned(&self, _ptr: NonNull<u8>, size: usize, freed: bool) -> bool {
            assert_eq!(size, 4096);
            self.returned
                .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            if freed {
                self.freed.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            }
            true
        }
    }

    /// A reference to `home` for one page to hold.
    fn page_reference(home: &Arc<Home>) -> PageHomePtr {
        let home: Arc<dyn PageHome> = home.clone();
        Arc::into_raw(home)
    }

    #[test]
    fn a_managed_page_goes_back_to_its_current_home_once() {
        use std::sync::atomic::Ordering::SeqCst;
        let (a, b) = (Arc::new(Home::default()), Arc::new(Home::default()));
        // An owned page (as a lazy manager makes them): freed, then its home told.
        // (Heap, not off-heap, so that Miri, which runs these unit tests, can follow it.)
        let page = Segment::allocate_heap(4096).unwrap();
        // SAFETY: the page holds a reference of its own, released on its return.
        let mut page = unsafe { page.into_managed(page_reference(&a)) }
            .ok()
            .unwrap();
        assert_eq!(page.kind(), SegmentKind::Heap);
        assert!(std::ptr::addr_eq(
            page.page_home().unwrap(),
            Arc::as_ptr(&a)
        ));
        assert_eq!(Arc::strong_count(&a), 2);
        page.put(4088, 1u64, ByteOrder::Big).unwrap();
        // SAFETY: as above; the old reference is released here.
        let old = unsafe { page.replace_page_home(page_reference(&b)) }.unwrap();
        assert!(std::ptr::addr_eq(old, Arc::as_ptr(&a)));
        // SAFETY: the reference the page held, which no longer counts it.
        drop(unsafe { Arc::from_raw(old) });
        drop(page);
        assert_eq!((a.returned.load(SeqCst), b.returned.load(SeqCst)), (0, 1));
        assert_eq!(b.freed.load(SeqCst), 1);
        assert_eq!((Arc::strong_count(&a), Arc::strong_count(&b)), (1, 1));
        // A borrowed page: the memory stays the home's.
        let mut arena = vec![0u8; 4096];
        let ptr = NonNull::new(arena.as_mut_ptr()).unwrap();
        // SAFETY: `arena` outlives the page and is not used while the page lives; the page
        // holds a reference of its own.
        let page =
            unsafe { Segment::managed_page(ptr, 4096, SegmentKind::Heap, page_reference(&a)) };
        assert_eq!(page.kind(), SegmentKind::Heap);
        drop(page);
        assert_eq!((a.returned.load(SeqCst), a.freed.load(SeqCst)), (1, 0));
        assert_eq!(Arc::strong_count(&a), 1);
        // Foreign and plain segments are not pages.
        let reference = page_reference(&a);
        let mut plain = Segment::allocate_heap(8).unwrap();
        assert!(plain.page_home().is_none());
        // SAFETY: a plain segment takes no home.
        assert!(unsafe { plain.replace_page_home(reference) }.is_none());
        let mut host = [0u8; 8];
        // SAFETY: `host` outlives the segment.
        let foreign =
            unsafe { Segment::wrap_foreign(NonNull::new(host.as_mut_ptr()).unwrap(), 8, None) }
                .unwrap();
        // SAFETY: a foreign segment is refused, so it never counts as a page.
        assert!(unsafe { foreign.into_managed(reference) }.is_err());
        assert_eq!(a.returned.load(SeqCst), 1);
        // SAFETY: the reference neither segment took.
        drop(unsafe { Arc::from_raw(reference) });
        assert_eq!(Arc::strong_count(&a), 1);
    }

    #[test]
    fn the_pointers_and_the_slices_are_the_same_memory() {
        let mut seg = Segment::allocate_heap(4).unwrap();
        let p = seg.as_mut_ptr();
        assert_eq!(p.cast_const(), seg.as_ptr());
        assert_eq!(seg.region().as_ptr(), p);
        seg.as_mut_slice()[3] = 9;
        assert_eq!(seg.get::<u32>(0, ByteOrder::Big), Ok(9));
        assert_eq!(seg.region().len(), seg.size());
    }
}
