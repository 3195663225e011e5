//! The memory manager: a budget of fixed-size pages shared by leases.

use std::collections::{BTreeMap, HashMap};
use std::ptr::NonNull;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, Weak};

use crossbeam_queue::ArrayQueue;

use super::budget::Budget;
use super::config::{Allocation, ManagerConfig, MemoryKind};
use super::lease::{Lease, LeaseAccount};
use super::shared::SharedSlot;
use super::stats::SNAPSHOT_TOP_LEASES;
use super::stats::{FailureCause, FailureSnapshot, LeakReport, LeaseUsage, ManagerStats};
use crate::error::{Error, Result};
use crate::segment::{OffHeapOptions, Segment, SegmentKind};

/// Locks a mutex whose data stays consistent even if a holder panicked (every update under
/// these locks is a single step).
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

/// The leases of a manager, by id.
pub(crate) struct Registry {
    next_id: u64,
    pub(crate) leases: BTreeMap<u64, Weak<LeaseAccount>>,
}

/// The state a manager shares with its leases and the pages they lend.
pub(crate) struct Inner {
    pub(crate) page_size: usize,
    pub(crate) total_pages: usize,
    pub(crate) kind: MemoryKind,
    pub(crate) allocation: Allocation,
    /// Bytes charged: pages, reservations and shared resources. Never above its limit.
    pub(crate) budget: Budget,
    /// Bytes charged for shared resources.
    pub(crate) shared_bytes: AtomicU64,
    /// Free pages of a preallocated manager, by number (page `i` is at `i` page sizes into
    /// `arena`).
    free: Option<ArrayQueue<usize>>,
    /// The preallocated memory, cut into pages; kept until the last page is dropped.
    arena: Option<Segment>,
    /// Where the arena's pages are (base 0 for a lazy manager).
    pub(crate) pages: PageArena,
    pub(crate) closed: AtomicBool,
    pub(crate) registry: Mutex<Registry>,
    pub(crate) shared: Mutex<HashMap<String, SharedSlot>>,
    /// Threads waiting for pages; a release wakes them only when there are some.
    waiters: AtomicUsize,
    /// Advanced (under `wait_lock`) by every wake-up, so a waiter can tell whether a release
    /// came between its attempt and its wait.
    wakeups: AtomicU64,
    wait_lock: Mutex<()>,
    wait_cv: Condvar,
    last_failure: Mutex<Option<FailureSnapshot>>,
}

/// Where a preallocated manager's pages are: page `i` is at `base + (i << shift)`. Small and
/// copied into every lease, so that a lease finds a page's address and number without a
/// look at the manager.
#[derive(Clone, Copy)]
pub(crate) struct PageArena {
    base: usize,
    shift: u32,
    /// The kind of the pages' segments.
    pub(crate) kind: SegmentKind,
}

impl PageArena {
    /// The address of page number `page`.
    #[inline]
    pub(crate) fn page_ptr(&self, page: usize) -> NonNull<u8> {
        let addr = self.base + (page << self.shift);
        NonNull::new(addr as *mut u8).expect("page addresses are not null")
    }

    /// The number of the page at `ptr`.
    #[inline]
    pub(crate) fn page_number(&self, ptr: NonNull<u8>) -> usize {
        (ptr.as_ptr() as usize - self.base) >> self.shift
    }

    /// The size of a page.
    #[inline]
    pub(crate) fn page_size(&self) -> usize {
        1 << self.shift
    }
}

impl Inner {
    /// Charges `bytes` to the budget if they fit, after taking the pages cached by leases
    /// back if that is what it takes.
    #[inline]
    pub(crate) fn charge(&self, bytes: u64) -> bool {
        self.budget
            .charge_or_reclaim(bytes, || self.reclaim_cached())
    }

    /// Gives every lease's cached pages back to the budget.
    #[cold]
    fn reclaim_cached(&self) {
        for account in self.accounts() {
            account.give_back_cached();
        }
    }

    /// The leases' accounts, upgraded under the registry's lock. The caller uses (and drops)
    /// them after it: dropping the last reference to an account takes this lock to forget it.
    fn accounts(&self) -> Vec<Arc<LeaseAccount>> {
        lock(&self.registry)
            .leases
            .values()
            .filter_map(Weak::upgrade)
            .collect()
    }

    /// Gives `bytes` back to the budget and wakes waiters, if any.
    #[inline]
    pub(crate) fn uncharge(&self, bytes: u64) {
        self.budget.uncharge(bytes);
        if self.waiters.load(Ordering::SeqCst) > 0 {
            self.wake();
        }
    }

    #[cold]
    pub(crate) fn wake(&self) {
        let _guard = lock(&self.wait_lock);
        self.wakeups.fetch_add(1, Ordering::SeqCst);
        self.wait_cv.notify_all();
    }

    /// Takes a free page of a preallocated manager (its number). The caller has charged the
    /// budget for it, so one is there: pages out of the queue never exceed pages charged (a
    /// page is charged before it is taken and uncharged after it is back in the queue; a
    /// cached page stays charged).
    #[inline]
    pub(crate) fn pop_page(&self) -> usize {
        let free = self
            .free
            .as_ref()
            .expect("a preallocated manager has a queue");
        let mut spins = 0u32;
        loop {
            if let Some(page) = free.pop() {
                return page;
            }
            // Unreachable by the accounting above; wait out a racing push all the same.
            spins += 1;
            if spins < 64 {
                std::hint::spin_loop();
            } else {
                std::thread::yield_now();
            }
        }
    }

    /// Puts a preallocated page (its number) back in the queue.
    #[inline]
    pub(crate) fn push_page(&self, page: usize) {
        let free = self
            .free
            .as_ref()
            .expect("a preallocated manager has a queue");
        if free.push(page).is_err() {
            unreachable!("more pages returned than the manager has");
        }
    }

    #[inline]
    pub(crate) fn is_preallocated(&self) -> bool {
        self.free.is_some()
    }

    /// Allocates one page's memory for a lazy manager (not yet a managed page).
    pub(crate) fn allocate_lazy_page(&self) -> Result<Segment> {
        match self.kind {
            MemoryKind::Heap => Segment::allocate_heap(self.page_size),
            MemoryKind::OffHeap => Segment::allocate_off_heap(
                self.page_size,
                OffHeapOptions {
                    huge_pages: false,
                    prefault: false,
                },
            ),
        }
    }

    /// What each lease holds, and the pages cached by all of them.
    pub(crate) fn usage(&self) -> (Vec<LeaseUsage>, usize) {
        let accounts = self.accounts();
        let cached = accounts.iter().map(|a| a.cached_pages()).sum();
        (accounts.iter().map(|a| a.usage()).collect(), cached)
    }

    /// Bytes charged to pages held, reservations and shared resources: the budget's charge
    /// less the pages leases keep cached (those count as free).
    fn used_bytes(&self, cached_pages: usize) -> u64 {
        let cached = cached_pages as u64 * self.page_size as u64;
        self.budget.used().saturating_sub(cached)
    }

    /// Records why an allocation failed and returns the error to report.
    #[cold]
    pub(crate) fn failure(
        &self,
        cause: FailureCause,
        lease: &str,
        bytes: u64,
        why: String,
    ) -> Error {
        let (mut top, cached) = self.usage();
        top.sort_by_key(|u| std::cmp::Reverse(u.bytes(self.page_size)));
        top.truncate(SNAPSHOT_TOP_LEASES);
        let snapshot = FailureSnapshot {
            cause,
            lease: lease.to_string(),
            requested_bytes: bytes,
            limit_bytes: self.budget.limit(),
            used_bytes: self.used_bytes(cached),
            top_leases: top,
            page_size: self.page_size,
        };
        let message = format!("{why}; {}", snapshot.summary());
        *lock(&self.last_failure) = Some(snapshot);
        match cause {
            FailureCause::Budget => Error::BudgetExhausted(message),
            FailureCause::Quota => Error::QuotaExhausted(message),
            FailureCause::Timeout => Error::Timeout(message),
            FailureCause::AllocationFailed => Error::AllocationFailed {
                size: usize::try_from(bytes).unwrap_or(usize::MAX),
                reason: message,
            },
        }
    }

    /// Runs `attempt` until it succeeds, fails with something other than an exhausted
    /// budget or quota, or `timeout` passes (then `Timeout`, recorded as the failure
    /// snapshot). Requests no release could serve are the caller's to refuse before.
    pub(crate) fn wait_for<T>(
        &self,
        timeout: std::time::Duration,
        mut attempt: impl FnMut() -> Result<T>,
        lease: &str,
        bytes: u64,
    ) -> Result<T> {
        let retryable =
            |e: &Error| matches!(e, Error::BudgetExhausted(_) | Error::QuotaExhausted(_));
        match attempt() {
            Err(e) if retryable(&e) && !timeout.is_zero() => {}
            other => return other,
        }
        let deadline = std::time::Instant::now() + timeout;
        self.waiters.fetch_add(1, Ordering::SeqCst);
        // Short while waiting: releases give their pages back (and wake) instead of caching.
        self.budget.enter_short();
        let result = loop {
            // Registered as a waiter before reading `wakeups` and attempting: a release after
            // this point either is seen by the attempt or advances `wakeups`, so the wait
            // below does not sleep through it. The attempt runs without the lock, since a
            // failing attempt may itself give budget back (and wake).
            let seen = self.wakeups.load(Ordering::SeqCst);
            match attempt() {
                Err(e) if retryable(&e) => {
                    let now = std::time::Instant::now();
                    if now >= deadline {
                        let why = format!("no pages within {timeout:?} ({e})");
                        break Err(self.failure(FailureCause::Timeout, lease, bytes, why));
                    }
                    let guard = lock(&self.wait_lock);
                    if self.wakeups.load(Ordering::SeqCst) == seen {
                        let _ = self
                            .wait_cv
                            .wait_timeout(guard, deadline - now)
                            .unwrap_or_else(|e| e.into_inner());
                    }
                }
                other => break other,
            }
        };
        self.budget.leave_short();
        self.waiters.fetch_sub(1, Ordering::SeqCst);
        result
    }

    pub(crate) fn last_failure(&self) -> Option<FailureSnapshot> {
        lock(&self.last_failure).clone()
    }

    pub(crate) fn open_lease(
        self: &Arc<Self>,
        name: &str,
        quota_pages: Option<usize>,
    ) -> Result<Lease> {
        if quota_pages == Some(0) {
            return Err(Error::invalid(format!(
                "lease '{name}': a page quota of 0 could never allocate; use no quota or at \
                 least 1"
            )));
        }
        let mut registry = lock(&self.registry);
        if self.closed.load(Ordering::SeqCst) {
            return Err(Error::Closed(format!(
                "memory manager is closed; cannot open lease '{name}'"
            )));
        }
        registry.next_id += 1;
        let id = registry.next_id;
        let account = Arc::new(LeaseAccount::new(id, name, quota_pages, Arc::clone(self)));
        registry.leases.insert(id, Arc::downgrade(&account));
        Ok(Lease::from_account(account))
    }

    pub(crate) fn forget_lease(&self, id: u64) {
        lock(&self.registry).leases.remove(&id);
    }
}

/// A budget of fixed-size pages with exact, per-owner accounting (Flink's `MemoryManager`).
///
/// Owners open [`Lease`]s, which allocate pages (as [`Segment`]s), reserve bytes for
/// memory they allocate themselves, and release them. Every page and reserved byte is
/// charged to exactly one lease. A page goes back to the manager when it is released through
/// its lease or simply dropped, so Rust code cannot leak budget.
///
/// Thread-safe: leases may allocate and release on many threads at once. A preallocated
/// manager takes no lock on that path (its free pages are a lock-free queue, and each lease
/// keeps a few released pages cached in one atomic word of its own, so that a release and the
/// next allocation by the same lease are one compare-and-swap each).
pub struct MemoryManager {
    inner: Arc<Inner>,
}

impl MemoryManager {
    /// Creates a manager. A preallocated one allocates and pre-faults all its pages now.
    ///
    /// Fails with `InvalidArgument` for a page size that is not a power of two or is outside
    /// 4 KiB..=1 GiB, and for a total that gives no page; with `AllocationFailed` when the
    /// operating system refuses the memory of a preallocated manager.
    pub fn new(config: ManagerConfig) -> Result<MemoryManager> {
        let pages = config.pages()?;
        let page_size = config.page_size;
        let limit = pages as u64 * page_size as u64;
        let (mut arena, free) = match config.allocation {
            Allocation::Lazy => (None, None),
            Allocation::Preallocated => {
                let bytes = usize::try_from(limit).map_err(|_| Error::AllocationFailed {
                    size: usize::MAX,
                    reason: "budget larger than the address space".into(),
                })?;
                let mut arena = match config.kind {
                    MemoryKind::OffHeap => Segment::allocate_off_heap(
                        bytes,
                        OffHeapOptions {
                            huge_pages: false,
                            prefault: true,
                        },
                    )?,
                    MemoryKind::Heap => Segment::allocate_heap(bytes)?,
                };
                if config.kind == MemoryKind::Heap {
                    prefault(&mut arena);
                }
                let free = ArrayQueue::new(pages);
                for i in 0..pages {
                    let _ = free.push(i);
                }
                (Some(arena), Some(free))
            }
        };
        let pages_at = PageArena {
            base: arena.as_mut().map_or(0, |a| a.as_mut_ptr() as usize),
            shift: page_size.trailing_zeros(),
            kind: match config.kind {
                MemoryKind::Heap => SegmentKind::Heap,
                MemoryKind::OffHeap => SegmentKind::OffHeap,
            },
        };
        let inner = Inner {
            pages: pages_at,
            page_size,
            total_pages: pages,
            budget: Budget::new(limit),
            kind: config.kind,
            allocation: config.allocation,
            shared_bytes: AtomicU64::new(0),
            free,
            arena,
            closed: AtomicBool::new(false),
            registry: Mutex::new(Registry {
                next_id: 0,
                leases: BTreeMap::new(),
            }),
            shared: Mutex::new(HashMap::new()),
            waiters: AtomicUsize::new(0),
            wakeups: AtomicU64::new(0),
            wait_lock: Mutex::new(()),
            wait_cv: Condvar::new(),
            last_failure: Mutex::new(None),
        };
        Ok(MemoryManager {
            inner: Arc::new(inner),
        })
    }

    pub(crate) fn inner(&self) -> &Arc<Inner> {
        &self.inner
    }

    /// Page size in bytes.
    pub fn page_size(&self) -> usize {
        self.inner.page_size
    }

    /// Pages in the budget.
    pub fn total_pages(&self) -> usize {
        self.inner.total_pages
    }

    /// The configuration's memory kind.
    pub fn kind(&self) -> MemoryKind {
        self.inner.kind
    }

    /// The configuration's allocation mode.
    pub fn allocation(&self) -> Allocation {
        self.inner.allocation
    }

    /// Opens a lease named `name` (for stats and reports), with an optional page quota.
    ///
    /// Fails with `InvalidArgument` for a quota of 0 and `Closed` after [`close`](Self::close).
    pub fn open_lease(&self, name: &str, quota_pages: Option<usize>) -> Result<Lease> {
        self.inner.open_lease(name, quota_pages)
    }

    /// The state at this moment. Exact when no allocation or release runs meanwhile.
    pub fn stats(&self) -> ManagerStats {
        stats_of(&self.inner)
    }

    /// The snapshot taken at the most recent allocation, reservation or shared resource
    /// this manager could not serve (any lease, any thread); `None` before the first.
    pub fn last_failure(&self) -> Option<FailureSnapshot> {
        self.inner.last_failure()
    }

    /// Closes the manager: no lease can be opened, and every open lease is closed (it
    /// allocates no more; its reservations go back). Returns each lease that was still open,
    /// by name, with what it held — a leak report; it never panics or aborts. Pages still
    /// out stay valid until they are dropped, and then go back.
    ///
    /// Fails with `Closed` if the manager was already closed.
    pub fn close(&self) -> Result<LeakReport> {
        close_inner(&self.inner)
    }
}

pub(crate) fn close_inner(inner: &Arc<Inner>) -> Result<LeakReport> {
    let accounts: Vec<Arc<LeaseAccount>> = {
        let registry = lock(&inner.registry);
        if inner.closed.swap(true, Ordering::SeqCst) {
            return Err(Error::Closed("memory manager is already closed".into()));
        }
        registry.leases.values().filter_map(Weak::upgrade).collect()
    };
    let mut open_leases = Vec::new();
    for account in accounts {
        let usage = account.usage();
        if account.close_account().is_some() {
            open_leases.push(usage);
        }
    }
    let open_shared = lock(&inner.shared).keys().cloned().collect();
    inner.wake();
    Ok(LeakReport {
        open_leases,
        open_shared,
        page_size: inner.page_size,
    })
}

pub(crate) fn stats_of(inner: &Inner) -> ManagerStats {
    let (leases, cached) = inner.usage();
    let used = inner.used_bytes(cached);
    let limit = inner.budget.limit();
    let pages_used: usize = leases.iter().map(|l| l.pages).sum();
    let reserved: u64 = leases.iter().map(|l| l.reserved_bytes).sum();
    ManagerStats {
        page_size: inner.page_size,
        pages_total: inner.total_pages,
        pages_used,
        pages_free: (limit.saturating_sub(used) / inner.page_size as u64) as usize,
        limit_bytes: limit,
        used_bytes: used,
        reserved_bytes: reserved,
        shared_bytes: inner.shared_bytes.load(Ordering::SeqCst),
        shared_resources: lock(&inner.shared).len(),
        leases,
        closed: inner.closed.load(Ordering::SeqCst),
    }
}

impl Drop for MemoryManager {
    /// Closes the manager if [`close`](Self::close) was not called (the report is dropped).
    fn drop(&mut self) {
        if !self.inner.closed.load(Ordering::SeqCst) {
            let _ = close_inner(&self.inner);
        }
    }
}

impl std::fmt::Debug for MemoryManager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryManager")
            .field("page_size", &self.inner.page_size)
            .field("total_pages", &self.inner.total_pages)
            .field("kind", &self.inner.kind)
            .field("allocation", &self.inner.allocation)
            .finish()
    }
}

/// Writes one byte in every 4 KiB of a heap arena, so that the pages are really there.
fn prefault(arena: &mut Segment) {
    let ptr = arena.as_mut_ptr();
    for offset in (0..arena.size()).step_by(4096) {
        // SAFETY: `offset` is inside the arena, which is exclusively borrowed; volatile so
        // the write (of the zero already there) is not optimized away.
        unsafe { ptr.add(offset).write_volatile(0) };
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        // Pages borrow the arena; every page holds the lease account that holds this, so
        // the arena is freed only after the last page is back.
        debug_assert!(
            self.arena.is_none()
                || self
                    .free
                    .as_ref()
                    .is_some_and(|q| q.len() == self.total_pages)
        );
    }
}
