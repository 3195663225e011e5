//! Leases: an owner's account at a memory manager.

use std::ptr::NonNull;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use super::budget::{GiveBack, LeasePages, Refused};
use super::manager::{Inner, PageArena};
use super::stats::{FailureCause, LeaseClosed, LeaseUsage};
use crate::error::{Error, Result};
use crate::segment::{PageHome, PageHomePtr, Segment};
use crate::view::SegmentSource;

/// A value given back together with the reason it was refused: nothing changed.
#[derive(Debug)]
pub struct Rejected<T> {
    /// Why the operation was refused.
    pub error: Error,
    /// The value, as it was before the call.
    pub value: T,
}

/// The shared state of a lease: its charges and its identity. Pages have it as their home;
/// while anything is charged to it (pages held or cached) they share one reference to it, so
/// it outlives the [`Lease`] while pages it lent are out.
pub(crate) struct LeaseAccount {
    pages: LeasePages,
    /// The manager's pages, as the fast paths need them.
    arena: PageArena,
    pub(crate) id: u64,
    pub(crate) name: String,
    reserved: AtomicU64,
    pub(crate) manager: Arc<Inner>,
}

impl LeaseAccount {
    pub(crate) fn new(id: u64, name: &str, quota: Option<usize>, manager: Arc<Inner>) -> Self {
        LeaseAccount {
            pages: LeasePages::new(quota, manager.total_pages, manager.is_preallocated()),
            arena: manager.pages,
            id,
            name: name.to_string(),
            reserved: AtomicU64::new(0),
            manager,
        }
    }

    /// Pages cached: charged to the budget but free for this lease's next allocation (and
    /// anyone's, once the budget is short).
    pub(crate) fn cached_pages(&self) -> usize {
        self.pages.cached()
    }

    /// This account as its pages' home.
    #[inline]
    fn home(self: &Arc<Self>) -> PageHomePtr {
        let account: *const LeaseAccount = Arc::as_ptr(self);
        account as PageHomePtr
    }

    /// The first charge: the pages take the reference they share.
    fn share_with_pages(self: &Arc<Self>) {
        // SAFETY: `self` is a live `Arc`, so the count is above zero.
        unsafe { Arc::increment_strong_count(Arc::as_ptr(self)) };
    }

    /// The last charge is gone: the pages' shared reference is released. Never the last
    /// reference, since the caller holds `self`.
    fn unshare_with_pages(self: &Arc<Self>) {
        // SAFETY: the reference taken by `share_with_pages`; `self` keeps the count above
        // zero after it.
        unsafe { Arc::decrement_strong_count(Arc::as_ptr(self)) };
    }

    /// Gives back pages and charges no longer the lease's; true if it was the last charge
    /// (for the caller to release the pages' shared reference).
    #[inline(never)]
    fn give_back(&self, back: &GiveBack) -> bool {
        let manager = &self.manager;
        for &page in back.pages() {
            manager.push_page(page);
        }
        if back.uncharge > 0 {
            manager.uncharge((back.uncharge * manager.page_size) as u64);
        }
        back.last
    }

    /// A page this lease held is back (`None`: a lazy page that freed its memory): kept in the
    /// cache, or given back. True if it was the last charge.
    #[inline]
    fn page_back(&self, ptr: Option<NonNull<u8>>) -> bool {
        let page = ptr.map(|ptr| self.arena.page_number(ptr));
        match self.pages.put(page, &self.manager.budget) {
            None => false,
            Some(back) => self.give_back(&back),
        }
    }

    /// Gives the cached pages back to the manager.
    pub(crate) fn give_back_cached(self: &Arc<Self>) {
        if self.give_back(&self.pages.drain()) {
            self.unshare_with_pages();
        }
    }

    /// Counts `n` pages fewer held, with nothing to give back: an allocation refused or
    /// failed after they were counted, or a page transferred to another lease.
    fn uncount(self: &Arc<Self>, n: usize) {
        if self.pages.sub(n) {
            self.unshare_with_pages();
        }
    }

    pub(crate) fn usage(&self) -> LeaseUsage {
        LeaseUsage {
            id: self.id,
            name: self.name.clone(),
            pages: self.pages.held(),
            peak_pages: self.pages.peak(),
            reserved_bytes: self.reserved.load(Ordering::SeqCst),
            quota_pages: self.pages.quota(),
            closed: self.pages.is_closed(),
        }
    }

    fn check_open(&self) -> Result<()> {
        if self.pages.is_closed() {
            return Err(self.closed_error());
        }
        Ok(())
    }

    #[cold]
    fn closed_error(&self) -> Error {
        Error::Closed(format!("lease '{}' is closed", self.name))
    }

    /// The error for pages the lease could not count.
    #[cold]
    fn refused(&self, why: Refused, n: usize) -> Error {
        match why {
            Refused::Quota { held } => self.quota_error(n, held),
            Refused::Budget => self.budget_error(n),
            Refused::Closed => self.closed_error(),
        }
    }

    /// Counts `n` more pages charged to the lease, within its quota. Cached pages count
    /// against the quota too: when it refuses while some are cached, they go back first.
    fn count(self: &Arc<Self>, n: usize) -> Result<()> {
        let first = loop {
            match self.pages.charge(n) {
                Ok(first) => break first,
                Err(Refused::Quota { .. }) if self.pages.cached() > 0 => self.give_back_cached(),
                Err(why) => return Err(self.refused(why, n)),
            }
        };
        if first {
            self.share_with_pages();
        }
        Ok(())
    }

    /// Counts `n` pages and charges them to the budget, for the caller to take from the free
    /// pages (or, for a lazy manager, to allocate).
    #[inline]
    fn charge(self: &Arc<Self>, n: usize) -> Result<()> {
        self.count(n)?;
        if !self.manager.charge((n * self.manager.page_size) as u64) {
            return Err(self.refused_by_budget(n));
        }
        Ok(())
    }

    /// The budget refused `n` pages counted as held: they are counted no more.
    #[cold]
    #[inline(never)]
    fn refused_by_budget(self: &Arc<Self>, n: usize) -> Error {
        self.uncount(n);
        self.budget_error(n)
    }

    #[cold]
    fn quota_error(&self, n: usize, held: usize) -> Error {
        let quota = self.pages.quota().unwrap_or(usize::MAX);
        let bytes = (n as u64).saturating_mul(self.manager.page_size as u64);
        let why = format!(
            "lease '{}' holds {held} of its quota of {quota} pages and asked for {n} more",
            self.name
        );
        self.manager
            .failure(FailureCause::Quota, &self.name, bytes, why)
    }

    #[cold]
    fn budget_error(&self, n: usize) -> Error {
        let m = &self.manager;
        let why = format!(
            "{n} pages of {} bytes do not fit in the budget of {} pages",
            m.page_size, m.total_pages
        );
        m.failure(
            FailureCause::Budget,
            &self.name,
            (n as u64).saturating_mul(m.page_size as u64),
            why,
        )
    }

    /// Allocates `n` pages, all or nothing.
    fn allocate(self: &Arc<Self>, n: usize) -> Result<Vec<Segment>> {
        self.check_open()?;
        if n == 0 {
            return Err(Error::invalid(format!(
                "lease '{}': cannot allocate 0 pages",
                self.name
            )));
        }
        let manager = &self.manager;
        if n > manager.total_pages {
            // Also keeps the byte count below from overflowing.
            return Err(self.budget_error(n));
        }
        // Cached pages go back first, so that the quota counts only pages held and the peak
        // is exact.
        if self.pages.cached() > 0 {
            self.give_back_cached();
        }
        self.charge(n)?;
        let mut pages = Vec::with_capacity(n);
        if manager.is_preallocated() {
            for _ in 0..n {
                pages.push(self.page_at(manager.pop_page()));
            }
            return Ok(pages);
        }
        let mut raw = Vec::with_capacity(n);
        for _ in 0..n {
            match manager.allocate_lazy_page() {
                Ok(segment) => raw.push(segment),
                Err(e) => {
                    drop(raw);
                    manager.uncharge((n * manager.page_size) as u64);
                    self.uncount(n);
                    let why = format!("the operating system refused a page ({e})");
                    let bytes = (n * manager.page_size) as u64;
                    return Err(manager.failure(
                        FailureCause::AllocationFailed,
                        &self.name,
                        bytes,
                        why,
                    ));
                }
            }
        }
        for segment in raw {
            // SAFETY: the page was counted above; the account stays alive while it is.
            match unsafe { segment.into_managed(self.home()) } {
                Ok(page) => pages.push(page),
                Err(_) => unreachable!("a freshly allocated segment owns its memory"),
            }
        }
        Ok(pages)
    }

    /// Page number `page` of the arena as a segment whose home is this lease.
    #[inline]
    fn page_at(self: &Arc<Self>, page: usize) -> Segment {
        debug_assert!(page < self.manager.total_pages);
        // SAFETY: the page was taken from the free queue or the cache by this call alone
        // and counted as held; the arena lives as long as the manager, which the home keeps
        // alive, and the home lives while it counts the page.
        unsafe {
            Segment::managed_page(
                self.arena.page_ptr(page),
                self.arena.page_size(),
                self.arena.kind,
                self.home(),
            )
        }
    }

    /// Whether `page` is a page this lease holds.
    #[inline(always)]
    fn holds(self: &Arc<Self>, page: &Segment) -> bool {
        page.page_home()
            .is_some_and(|home| std::ptr::addr_eq(home, Arc::as_ptr(self)))
    }

    #[cold]
    fn not_held(self: &Arc<Self>, page: &Segment) -> Error {
        match page.page_home() {
            None => Error::invalid(format!(
                "segment at {:p} is not a managed page; lease '{}' does not hold it",
                page.as_ptr(),
                self.name
            )),
            Some(_) => Error::invalid(format!(
                "page at {:p} is held by another lease, not by '{}'",
                page.as_ptr(),
                self.name
            )),
        }
    }

    fn reserve(&self, bytes: u64) -> Result<()> {
        self.check_open()?;
        if bytes == 0 {
            return Err(Error::invalid(format!(
                "lease '{}': cannot reserve 0 bytes",
                self.name
            )));
        }
        if !self.manager.charge(bytes) {
            let why = format!("{bytes} bytes do not fit in the budget");
            return Err(self
                .manager
                .failure(FailureCause::Budget, &self.name, bytes, why));
        }
        self.reserved.fetch_add(bytes, Ordering::SeqCst);
        Ok(())
    }

    fn unreserve(&self, bytes: u64) -> Result<()> {
        if bytes == 0 {
            return Err(Error::invalid(format!(
                "lease '{}': cannot release 0 reserved bytes",
                self.name
            )));
        }
        let taken = self
            .reserved
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |r| r.checked_sub(bytes));
        match taken {
            Ok(_) => {
                self.manager.uncharge(bytes);
                Ok(())
            }
            Err(held) => Err(Error::invalid(format!(
                "lease '{}' has {held} bytes reserved; cannot release {bytes}",
                self.name
            ))),
        }
    }

    /// Marks the lease closed and gives its cached pages and its reservations back; `None`
    /// if it was closed already, else the reserved bytes reclaimed.
    pub(crate) fn close_account(self: &Arc<Self>) -> Option<u64> {
        if !self.pages.close() {
            return None;
        }
        self.give_back_cached();
        let reserved = self.reserved.swap(0, Ordering::SeqCst);
        if reserved > 0 {
            self.manager.uncharge(reserved);
        }
        Some(reserved)
    }
}

impl PageHome for LeaseAccount {
    #[inline]
    fn page_returned(&self, ptr: NonNull<u8>, _size: usize, freed: bool) -> bool {
        self.page_back((!freed).then_some(ptr))
    }
}

impl Drop for LeaseAccount {
    fn drop(&mut self) {
        self.manager.forget_lease(self.id);
    }
}

/// An owner's account at a [`MemoryManager`](super::MemoryManager): allocates pages,
/// reserves bytes, releases them, and reports what it holds.
///
/// Pages are [`Segment`]s. Each stays charged to its lease until it is released through the
/// lease, transferred to another lease, or dropped — dropping a page returns it too, so a
/// page cannot leak. Thread-safe: a lease may be shared (`&Lease`) by many threads.
/// Dropping the lease closes it.
pub struct Lease {
    account: Arc<LeaseAccount>,
}

impl Lease {
    pub(crate) fn from_account(account: Arc<LeaseAccount>) -> Lease {
        Lease { account }
    }

    /// The lease's number in its manager.
    pub fn id(&self) -> u64 {
        self.account.id
    }

    /// The lease's name.
    pub fn name(&self) -> &str {
        &self.account.name
    }

    /// What the lease holds now.
    pub fn usage(&self) -> LeaseUsage {
        self.account.usage()
    }

    /// Size of the pages this lease allocates (its manager's page size).
    pub fn page_size(&self) -> usize {
        self.account.manager.page_size
    }

    /// Allocates one page (zero-filled only when the memory is fresh from the operating
    /// system: a recycled page keeps what its last holder wrote, as in Flink).
    ///
    /// Fails with `QuotaExhausted` when the lease's quota is used up, `BudgetExhausted` when
    /// the manager's budget is, `AllocationFailed` when the operating system refuses a lazy
    /// page, and `Closed` after the lease or its manager was closed. On failure nothing is
    /// charged and the manager keeps a [`FailureSnapshot`](super::FailureSnapshot).
    #[inline]
    pub fn allocate(&self) -> Result<Segment> {
        // Most often a page the lease released before: one compare-and-swap, inlined into
        // the caller; anything else (and the errors) out of line.
        match self.account.pages.take_cached() {
            Some(page) => Ok(self.account.page_at(page)),
            None => self.allocate_uncached(),
        }
    }

    /// [`allocate`](Self::allocate) when the cache does not serve: from the free pages (or
    /// the operating system, for a lazy manager).
    #[inline(never)]
    fn allocate_uncached(&self) -> Result<Segment> {
        let account = &self.account;
        if !account.manager.is_preallocated() {
            let mut pages = account.allocate(1)?;
            return Ok(pages.pop().expect("one page was allocated"));
        }
        account.charge(1)?;
        Ok(account.page_at(account.manager.pop_page()))
    }

    /// Allocates `n` pages, all or nothing. Fails as [`allocate`](Self::allocate) does, and
    /// with `InvalidArgument` for `n` of 0.
    pub fn allocate_many(&self, n: usize) -> Result<Vec<Segment>> {
        self.account.allocate(n)
    }

    /// Allocates `n` pages, waiting up to `timeout` for other leases to release enough when
    /// the budget or the quota is exhausted. Fails with `Timeout` when the time passes, and at
    /// once (without waiting) for a request no release could serve (more than the quota or
    /// the whole budget) and for the other errors of [`allocate_many`](Self::allocate_many).
    pub fn allocate_timeout(&self, n: usize, timeout: Duration) -> Result<Vec<Segment>> {
        let account = &self.account;
        let hopeless =
            n > account.manager.total_pages || account.pages.quota().is_some_and(|q| n > q);
        if hopeless {
            return account.allocate(n);
        }
        let bytes = (n as u64).saturating_mul(account.manager.page_size as u64);
        account
            .manager
            .wait_for(timeout, || account.allocate(n), &account.name, bytes)
    }

    /// Releases a page this lease holds: it goes back to the manager, or (a preallocated
    /// manager's page) stays in the lease's small cache, still charged to the budget but
    /// counted as free, for the lease's next allocation; any allocation, reservation or
    /// shared resource short of budget takes cached pages back first, and while one waits
    /// for pages nothing is cached. A page the lease does not hold (another lease's, or a segment that is not a page) is refused and
    /// given back unchanged.
    #[inline(always)]
    pub fn release(&self, page: Segment) -> Result<(), Rejected<Segment>> {
        if !self.account.holds(&page) {
            return Err(self.refuse(page));
        }
        // A page of the arena comes straight back (no drop through its home pointer).
        match page.into_borrowed_page() {
            Ok(ptr) => {
                if self.account.page_back(Some(ptr)) {
                    self.account.unshare_with_pages();
                }
            }
            Err(page) => drop(page),
        }
        Ok(())
    }

    /// A page this lease does not hold, handed back with the reason.
    #[cold]
    #[inline(never)]
    fn refuse(&self, page: Segment) -> Rejected<Segment> {
        let error = self.account.not_held(&page);
        Rejected { error, value: page }
    }

    /// Releases pages this lease holds, all or nothing: if one is not the lease's, none is
    /// released and all are given back.
    pub fn release_many(&self, pages: Vec<Segment>) -> Result<(), Rejected<Vec<Segment>>> {
        if let Some(page) = pages.iter().find(|p| !self.account.holds(p)) {
            let error = self.account.not_held(page);
            return Err(Rejected {
                error,
                value: pages,
            });
        }
        drop(pages);
        Ok(())
    }

    /// Whether `page` is held by this lease.
    pub fn holds(&self, page: &Segment) -> bool {
        self.account.holds(page)
    }

    /// Moves `page` and its charge from this lease to `to`. Fails with `InvalidArgument` if
    /// this lease does not hold the page or `to` belongs to another manager, with
    /// `QuotaExhausted` if `to` has no quota left, and with `Closed` if `to` is closed;
    /// nothing changes then. Transferring to the same lease does nothing.
    pub fn transfer(&self, page: &mut Segment, to: &Lease) -> Result<()> {
        if !self.account.holds(page) {
            return Err(self.account.not_held(page));
        }
        if Arc::ptr_eq(&self.account, &to.account) {
            return Ok(());
        }
        if !Arc::ptr_eq(&self.account.manager, &to.account.manager) {
            return Err(Error::invalid(format!(
                "lease '{}' belongs to another memory manager than '{}'",
                to.account.name, self.account.name
            )));
        }
        to.account.check_open()?;
        to.account.count(1)?;
        // SAFETY: `to` counts the page from now on; this lease's count is settled below.
        let _old = unsafe { page.replace_page_home(to.account.home()) };
        self.account.uncount(1);
        Ok(())
    }

    /// Reserves `bytes` of the budget for memory the host allocates itself (Flink's
    /// `reserveMemory`). Fails with `InvalidArgument` for 0, `BudgetExhausted` when they do
    /// not fit, `Closed` after close.
    pub fn reserve(&self, bytes: u64) -> Result<()> {
        self.account.reserve(bytes)
    }

    /// Gives back `bytes` of this lease's reservations. Fails with `InvalidArgument` for 0
    /// or more than the lease has reserved (nothing changes).
    pub fn unreserve(&self, bytes: u64) -> Result<()> {
        self.account.unreserve(bytes)
    }

    /// Closes the lease: its reservations go back, and it allocates no more. Pages it lent
    /// that are still out stay charged to it until they are dropped (then they go back);
    /// the report counts them as outstanding. Use [`close_with`](Self::close_with) to give
    /// pages back in the same step.
    pub fn close(self) -> LeaseClosed {
        self.close_pages(0)
    }

    /// Releases `pages` (all held by this lease, else nothing happens and they are given
    /// back with the lease), then closes the lease.
    pub fn close_with(
        self,
        pages: Vec<Segment>,
    ) -> Result<LeaseClosed, Rejected<(Lease, Vec<Segment>)>> {
        let n = pages.len();
        match self.release_many(pages) {
            Ok(()) => Ok(self.close_pages(n)),
            Err(Rejected { error, value }) => Err(Rejected {
                error,
                value: (self, value),
            }),
        }
    }

    /// Closes the lease in place (for owners that keep it behind a shared reference, such as
    /// the C ABI's handle table), counting `pages_reclaimed` that the owner gave back first.
    pub(crate) fn close_pages(&self, pages_reclaimed: usize) -> LeaseClosed {
        let reserved = self.account.close_account().unwrap_or(0);
        LeaseClosed {
            name: self.account.name.clone(),
            pages_reclaimed,
            reserved_bytes_reclaimed: reserved,
            pages_outstanding: self.account.pages.held(),
        }
    }

    /// Whether the lease (or its manager) was closed.
    pub fn is_closed(&self) -> bool {
        self.account.pages.is_closed()
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        self.account.close_account();
    }
}

impl std::fmt::Debug for Lease {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lease")
            .field("id", &self.account.id)
            .field("name", &self.account.name)
            .finish()
    }
}

/// A lease as the page source of an output view: the view allocates a page whenever a write
/// does not fit, and fails with the lease's error (`BudgetExhausted`, `QuotaExhausted`, …)
/// when none can be had, keeping what it wrote. Pages the view gives back are released.
impl SegmentSource for &Lease {
    fn next_segment(&mut self) -> Result<Segment> {
        self.allocate()
    }

    fn give_back(&mut self, segment: Segment) {
        // A page of another lease is refused and handed back; dropping it returns it to its
        // own lease, which is where it belongs.
        let _ = self.release(segment);
    }
}

/// An owned lease as a page source: as for `&Lease`; the view then owns the lease, and
/// `OutputView::into_parts` gives it back.
impl SegmentSource for Lease {
    fn next_segment(&mut self) -> Result<Segment> {
        (&*self).next_segment()
    }

    fn give_back(&mut self, segment: Segment) {
        (&*self).give_back(segment)
    }
}
