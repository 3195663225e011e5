//! The configuration of a memory manager: budget, page size, kind and allocation mode.

use crate::error::{Error, Result};

/// Page size of a manager configured with [`ManagerConfig::new`]: 32 KiB, as Flink's default.
pub const DEFAULT_PAGE_SIZE: usize = 32 * 1024;
/// Smallest page size accepted: 4 KiB.
pub const MIN_PAGE_SIZE: usize = 4 * 1024;
/// Largest page size accepted: 1 GiB.
pub const MAX_PAGE_SIZE: usize = 1 << 30;

/// Where a manager's pages live.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MemoryKind {
    /// The process's global allocator.
    Heap,
    /// Anonymous memory mappings (`mmap`), page aligned.
    OffHeap,
}

/// When a manager's pages are allocated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Allocation {
    /// Every page is allocated and pre-faulted when the manager is created, and recycled
    /// through a lock-free queue for the manager's whole life: allocation never asks the
    /// operating system, and never fails for lack of memory once the manager exists.
    Preallocated,
    /// A page is allocated when a lease asks for it and given back to the operating system
    /// when it is released; the budget still bounds how many exist at once.
    Lazy,
}

/// How to build a [`MemoryManager`](super::MemoryManager).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ManagerConfig {
    /// The budget in bytes. Rounded **down** to whole pages: a total that is not a multiple
    /// of the page size leaves the remainder unused. Must give at least one page.
    pub total_bytes: u64,
    /// Page size in bytes: a power of two from [`MIN_PAGE_SIZE`] to [`MAX_PAGE_SIZE`].
    pub page_size: usize,
    /// Heap or off-heap pages.
    pub kind: MemoryKind,
    /// Preallocated or lazy.
    pub allocation: Allocation,
}

impl ManagerConfig {
    /// A budget of `total_bytes` in 32 KiB off-heap pages, allocated lazily (Flink's
    /// defaults).
    pub fn new(total_bytes: u64) -> Self {
        ManagerConfig {
            total_bytes,
            page_size: DEFAULT_PAGE_SIZE,
            kind: MemoryKind::OffHeap,
            allocation: Allocation::Lazy,
        }
    }

    /// The same configuration with another page size.
    pub fn with_page_size(self, page_size: usize) -> Self {
        ManagerConfig { page_size, ..self }
    }

    /// The same configuration with another memory kind.
    pub fn with_kind(self, kind: MemoryKind) -> Self {
        ManagerConfig { kind, ..self }
    }

    /// The same configuration with another allocation mode.
    pub fn with_allocation(self, allocation: Allocation) -> Self {
        ManagerConfig { allocation, ..self }
    }

    /// Checks the configuration and returns the number of pages it gives.
    pub fn pages(&self) -> Result<usize> {
        let page_size = self.page_size;
        if !page_size.is_power_of_two() {
            return Err(Error::invalid(format!(
                "page size {page_size} is not a power of two"
            )));
        }
        if !(MIN_PAGE_SIZE..=MAX_PAGE_SIZE).contains(&page_size) {
            return Err(Error::invalid(format!(
                "page size {page_size} is outside {MIN_PAGE_SIZE}..={MAX_PAGE_SIZE}"
            )));
        }
        if self.total_bytes > isize::MAX as u64 {
            return Err(Error::invalid(format!(
                "total of {} bytes exceeds the largest possible budget ({})",
                self.total_bytes,
                isize::MAX
            )));
        }
        let pages = self.total_bytes / page_size as u64;
        if pages == 0 {
            return Err(Error::invalid(format!(
                "total of {} bytes gives no page of {page_size} bytes",
                self.total_bytes
            )));
        }
        usize::try_from(pages).map_err(|_| Error::invalid("too many pages for this platform"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn totals_round_down_to_whole_pages_and_bad_sizes_are_refused() {
        assert_eq!(ManagerConfig::new(100 * 1024).pages(), Ok(3));
        assert_eq!(ManagerConfig::new(32 * 1024).pages(), Ok(1));
        assert!(ManagerConfig::new(32 * 1024 - 1).pages().is_err());
        assert!(ManagerConfig::new(0).pages().is_err());
        assert!(ManagerConfig::new(u64::MAX).pages().is_err());
        for bad in [0, 1, 2048, 3 * 4096, 1 << 31, usize::MAX] {
            let config = ManagerConfig::new(1 << 32).with_page_size(bad);
            assert!(
                matches!(config.pages(), Err(Error::InvalidArgument(_))),
                "{bad}"
            );
        }
        let config = ManagerConfig::new(1 << 32).with_page_size(MAX_PAGE_SIZE);
        assert_eq!(config.pages(), Ok(4));
        let config = ManagerConfig::new(8192).with_page_size(MIN_PAGE_SIZE);
        assert_eq!(config.pages(), Ok(2));
    }
}
