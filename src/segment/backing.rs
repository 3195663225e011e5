//! What owns a segment's memory, and how it is given back.

use std::alloc::Layout;
use std::ptr::NonNull;
use std::sync::Arc;

use super::SegmentKind;
use crate::error::{Error, Result};

/// Alignment of heap segments: a cache line, so that two segments never share one.
const HEAP_ALIGN: usize = 64;

/// The host's release callback of a foreign segment: called once with the segment's
/// pointer and size when the segment is dropped.
pub type ReleaseFn = Box<dyn FnOnce(*mut u8, usize) + Send>;

/// How an off-heap segment is mapped.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OffHeapOptions {
    /// Ask the kernel to back the mapping with transparent huge pages (`MADV_HUGEPAGE`).
    /// A hint: where the kernel has them disabled, the mapping uses normal pages.
    pub huge_pages: bool,
    /// Fault every page in at allocation (`MAP_POPULATE`), so first access does not pay
    /// for page faults and the memory is really there.
    pub prefault: bool,
}

/// Where a managed page (a page of a memory manager's budget) goes when its segment is
/// released or dropped. Implemented by the memory manager's lease accounts; the segment
/// module only calls it.
///
/// A home lives in an `Arc`. Its pages do not each hold a reference: they share one, which
/// the home takes when it lends its first page and gives up (through the segment of its last
/// page, see [`page_returned`](Self::page_returned)) when none is left — one count for all
/// pages instead of a reference count update per page.
pub(crate) trait PageHome: Send + Sync {
    /// The segment of a page at `ptr` of `size` bytes was dropped. If the segment owned the
    /// memory itself (a lazily allocated page), that memory has already been freed and
    /// `freed` is true; otherwise the memory is the home's to reuse.
    ///
    /// Returns true when the home's pages no longer hold the reference they shared: the
    /// segment then releases it (which may drop the home).
    fn page_returned(&self, ptr: NonNull<u8>, size: usize, freed: bool) -> bool;
}

/// A managed page's home: the pointer of an `Arc<dyn PageHome>` (`Arc::as_ptr`) whose
/// strong count includes the reference the home's pages share.
pub(crate) type PageHomePtr = *const dyn PageHome;

/// The memory under a managed page: borrowed from the home's arena, or owned by the page.
/// An owned page's allocation is exactly the page (its size, and for the heap the segments'
/// alignment), so nothing more is kept: a page's segment stays small to move.
pub(crate) enum PageMemory {
    /// Part of a preallocated arena that the home owns.
    Borrowed,
    /// Allocated for this page alone by [`Backing::heap`] (lazy heap page).
    Heap,
    /// Mapped for this page alone by [`Backing::off_heap`] (lazy off-heap page).
    OffHeap,
}

pub(super) enum Backing {
    Heap(Layout),
    OffHeap {
        mapped_len: usize,
    },
    Foreign(Option<ReleaseFn>),
    /// A page of a memory manager: the release goes to `home` (and frees `memory` first if
    /// the page owns it).
    Managed {
        kind: SegmentKind,
        memory: PageMemory,
        home: PageHomePtr,
    },
}

/// The layout of a heap segment of `size` bytes.
fn heap_layout(size: usize) -> Result<Layout, std::alloc::LayoutError> {
    Layout::from_size_align(size, HEAP_ALIGN)
}

fn check_size(size: usize) -> Result<()> {
    if size == 0 {
        return Err(Error::invalid("segment size must be at least 1 byte"));
    }
    if size > isize::MAX as usize {
        return Err(Error::invalid(format!(
            "segment size {size} exceeds the largest possible allocation ({})",
            isize::MAX
        )));
    }
    Ok(())
}

/// Tells `home` that its page at `ptr` is back, and releases the reference its pages shared
/// if this was the last one.
#[inline]
pub(super) fn return_page(home: PageHomePtr, ptr: *mut u8, size: usize, freed: bool) {
    let ptr = NonNull::new(ptr).expect("a segment's pointer is never null");
    // SAFETY: a home stays alive while it counts a page (the contract of
    // `Segment::managed_page`), and it counts this one until this call.
    let last = unsafe { &*home }.page_returned(ptr, size, freed);
    if last {
        // SAFETY: the reference the home's pages shared, given up by its last page (this
        // one); `home` came from `Arc::as_ptr`.
        drop(unsafe { Arc::from_raw(home) });
    }
}

impl Backing {
    pub(super) fn heap(size: usize) -> Result<(NonNull<u8>, Backing)> {
        check_size(size)?;
        // A valid size so close to isize::MAX that padding it to the alignment overflows
        // is one no allocator can serve: refused as an allocation, like any other.
        let layout = heap_layout(size).map_err(|_| Error::AllocationFailed {
            size,
            reason: format!("padded to {HEAP_ALIGN}-byte alignment it exceeds isize::MAX"),
        })?;
        // SAFETY: the layout has a non-zero size (checked above).
        let ptr = unsafe { std::alloc::alloc_zeroed(layout) };
        let ptr = NonNull::new(ptr).ok_or_else(|| Error::AllocationFailed {
            size,
            reason: "the global allocator returned no memory".into(),
        })?;
        Ok((ptr, Backing::Heap(layout)))
    }

    pub(super) fn off_heap(size: usize, options: OffHeapOptions) -> Result<(NonNull<u8>, Backing)> {
        check_size(size)?;
        let mut flags = libc::MAP_PRIVATE | libc::MAP_ANONYMOUS;
        if options.prefault {
            flags |= libc::MAP_POPULATE;
        }
        // SAFETY: an anonymous private mapping at an address of the kernel's choosing
        // touches no existing memory.
        let addr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                size,
                libc::PROT_READ | libc::PROT_WRITE,
                flags,
                -1,
                0,
            )
        };
        if addr == libc::MAP_FAILED {
            return Err(Error::AllocationFailed {
                size,
                reason: format!("mmap: {}", std::io::Error::last_os_error()),
            });
        }
        if options.huge_pages {
            // Advisory: an error (THP compiled out or disabled) leaves normal pages, which
            // is what the caller gets on such a kernel anyway.
            // SAFETY: the range is the mapping just created.
            let _ = unsafe { libc::madvise(addr, size, libc::MADV_HUGEPAGE) };
        }
        let ptr = NonNull::new(addr.cast::<u8>()).expect("mmap never maps address zero");
        Ok((ptr, Backing::OffHeap { mapped_len: size }))
    }

    pub(super) fn foreign(size: usize, release: Option<ReleaseFn>) -> Result<Backing> {
        check_size(size)?;
        Ok(Backing::Foreign(release))
    }

    pub(super) fn kind(&self) -> SegmentKind {
        match self {
            Backing::Heap(_) => SegmentKind::Heap,
            Backing::OffHeap { .. } => SegmentKind::OffHeap,
            Backing::Foreign(_) => SegmentKind::Foreign,
            Backing::Managed { kind, .. } => *kind,
        }
    }

    /// The memory of a freshly allocated heap or off-heap backing as a managed page's own
    /// memory; foreign and managed backings (whose memory is not the allocator's) come back
    /// unchanged as the error. `size` is the segment's, which its allocation is.
    pub(super) fn into_page_memory(self, size: usize) -> Result<PageMemory, Backing> {
        match self {
            Backing::Heap(layout) => {
                debug_assert_eq!(Some(layout), heap_layout(size).ok());
                Ok(PageMemory::Heap)
            }
            Backing::OffHeap { mapped_len } => {
                debug_assert_eq!(mapped_len, size);
                Ok(PageMemory::OffHeap)
            }
            other => Err(other),
        }
    }

    /// Gives the memory back. Called once, from `Segment::drop`.
    pub(super) fn release(&mut self, ptr: *mut u8, size: usize) {
        match self {
            // SAFETY: `ptr` came from `alloc_zeroed` with this layout and is freed once.
            Backing::Heap(layout) => unsafe { std::alloc::dealloc(ptr, *layout) },
            Backing::OffHeap { mapped_len } => {
                // SAFETY: `ptr` and `mapped_len` are the mapping made in `off_heap`.
                let rc = unsafe { libc::munmap(ptr.cast(), *mapped_len) };
                debug_assert_eq!(rc, 0, "munmap of a segment's own mapping failed");
            }
            Backing::Foreign(release) => {
                if let Some(release) = release.take() {
                    release(ptr, size);
                }
            }
            Backing::Managed { memory, home, .. } => {
                let freed = match memory {
                    PageMemory::Borrowed => false,
                    PageMemory::Heap => {
                        let layout = heap_layout(size).expect("the layout it was allocated with");
                        // SAFETY: the page's own allocation, made by `alloc_zeroed` with
                        // this layout (`Backing::heap` with the page's size), freed once.
                        unsafe { std::alloc::dealloc(ptr, layout) };
                        true
                    }
                    PageMemory::OffHeap => {
                        // SAFETY: the page's own mapping of its size, made by
                        // `Backing::off_heap`.
                        let rc = unsafe { libc::munmap(ptr.cast(), size) };
                        debug_assert_eq!(rc, 0, "munmap of a page's own mapping failed");
                        true
                    }
                };
                return_page(*home, ptr, size, freed);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    #[test]
    fn sizes_from_one_byte_to_isize_max_are_accepted() {
        assert!(matches!(check_size(0), Err(Error::InvalidArgument(_))));
        assert_eq!(check_size(1), Ok(()));
        assert_eq!(check_size(isize::MAX as usize), Ok(()));
        for size in [isize::MAX as usize + 1, usize::MAX] {
            match check_size(size) {
                Err(Error::InvalidArgument(m)) => assert!(m.contains(&size.to_string()), "{m}"),
                other => panic!("{size}: {other:?}"),
            }
        }
    }

    #[test]
    fn a_heap_size_that_cannot_be_aligned_is_refused_as_an_allocation() {
        // isize::MAX rounded up to the 64-byte alignment exceeds isize::MAX.
        match Backing::heap(isize::MAX as usize) {
            Err(Error::AllocationFailed { size, reason }) => {
                assert_eq!(size, isize::MAX as usize);
                assert!(reason.contains("64-byte alignment"), "{reason}");
            }
            Err(other) => panic!("{other:?}"),
            Ok(_) => panic!("an isize::MAX heap allocation cannot succeed"),
        }
    }

    #[test]
    fn heap_memory_is_aligned_zeroed_and_released() {
        let (ptr, mut backing) = Backing::heap(100).unwrap();
        assert_eq!(ptr.as_ptr() as usize % HEAP_ALIGN, 0);
        assert_eq!(backing.kind(), SegmentKind::Heap);
        // SAFETY: the allocation is 100 bytes and owned here.
        let bytes = unsafe { std::slice::from_raw_parts(ptr.as_ptr(), 100) };
        assert!(bytes.iter().all(|&b| b == 0));
        backing.release(ptr.as_ptr(), 100);
    }

    #[test]
    fn a_foreign_release_runs_once_and_a_refused_one_never() {
        let calls = Arc::new(AtomicUsize::new(0));
        let counter = Arc::clone(&calls);
        let release: ReleaseFn = Box::new(move |p, n| {
            assert_eq!((p as usize, n), (0x1000, 8));
            counter.fetch_add(1, Ordering::SeqCst);
        });
        let mut backing = Backing::foreign(8, Some(release)).unwrap();
        assert_eq!(backing.kind(), SegmentKind::Foreign);
        backing.release(std::ptr::without_provenance_mut(0x1000), 8);
        backing.release(std::ptr::without_provenance_mut(0x1000), 8);
        assert_eq!(calls.load(Ordering::SeqCst), 1);

        let counter = Arc::clone(&calls);
        let release: ReleaseFn = Box::new(move |_, _| {
            counter.fetch_add(1, Ordering::SeqCst);
        });
        assert!(Backing::foreign(0, Some(release)).is_err());
        assert_eq!(calls.load(Ordering::SeqCst), 1, "not called");
        assert_eq!(Arc::strong_count(&calls), 1, "but dropped");
    }
}
