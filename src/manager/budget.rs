//! The counters every allocation goes through: the manager's budget (bytes charged, never
//! above the limit) and a lease's pages (held, plus a small cache of pages the lease released
//! and keeps charged; together never above its quota). Kept apart from the rest so that a loom model
//! checks the very code the manager runs:
//!
//! ```sh
//! RUSTFLAGS="--cfg loom" CARGO_TARGET_DIR=target/loom cargo test --release --lib budget
//! ```
//!
//! Why a cache: a page allocated and released through the budget costs a budget charge and
//! uncharge, the free queue's pop and push, and the lease's count. A page a lease keeps after
//! a release (still charged to it, but not held) is taken back by its next allocation from
//! the lease's own [`PageCache`], one compare-and-swap each way. The cache is small and never
//! hides budget from others: a charge that does not fit marks the budget short, takes every
//! lease's cached pages back ([`Budget::charge_or_reclaim`]) and tries again, and while the
//! budget is short a release keeps nothing ([`LeasePages::put`]).

use super::page_cache::{CACHE_CAPACITY, PageCache};
#[cfg(loom)]
use loom::sync::atomic::{AtomicU64, AtomicUsize};
use std::sync::atomic::Ordering;
#[cfg(not(loom))]
use std::sync::atomic::{AtomicU64, AtomicUsize};

/// Bytes charged against a limit.
pub(crate) struct Budget {
    limit: u64,
    used: AtomicU64,
    /// Threads that found the budget short and are taking cached pages back or waiting for
    /// pages: while there are any, a released page goes back to the budget at once.
    short: AtomicUsize,
}

impl Budget {
    pub(crate) fn new(limit: u64) -> Self {
        Budget {
            limit,
            used: AtomicU64::new(0),
            short: AtomicUsize::new(0),
        }
    }

    pub(crate) fn limit(&self) -> u64 {
        self.limit
    }

    /// Bytes charged now (pages held, pages cached by leases, reservations, shared resources).
    pub(crate) fn used(&self) -> u64 {
        self.used.load(Ordering::SeqCst)
    }

    /// Charges `bytes` if they fit under the limit; never overshoots, even for a moment, so a
    /// concurrent request is never refused because of one that is itself refused.
    #[inline]
    pub(crate) fn try_charge(&self, bytes: u64) -> bool {
        // SeqCst: a waiter that registered (SeqCst) and then finds the budget full is seen
        // by a release that gives bytes back (SeqCst) and then looks for waiters.
        let mut used = self.used.load(Ordering::SeqCst);
        loop {
            let Some(next) = used.checked_add(bytes).filter(|&n| n <= self.limit) else {
                return false;
            };
            match self
                .used
                .compare_exchange_weak(used, next, Ordering::SeqCst, Ordering::Relaxed)
            {
                Ok(_) => return true,
                Err(now) => used = now,
            }
        }
    }

    /// Charges `bytes`; when they do not fit, marks the budget short (releases stop caching),
    /// lets `reclaim` give the leases' cached pages back, and tries once more.
    ///
    /// Every step is SeqCst, as is a release's caching and its look at [`is_short`]: a page
    /// cached by a release that finished before this call began is seen by `reclaim`, and one
    /// cached by a release that sees the mark is given back by that release itself.
    #[inline]
    pub(crate) fn charge_or_reclaim(&self, bytes: u64, reclaim: impl FnOnce()) -> bool {
        self.try_charge(bytes) || self.charge_after_reclaim(bytes, reclaim)
    }

    #[cold]
    fn charge_after_reclaim(&self, bytes: u64, reclaim: impl FnOnce()) -> bool {
        self.enter_short();
        reclaim();
        let charged = self.try_charge(bytes);
        self.leave_short();
        charged
    }

    /// Marks the budget short until the matching [`leave_short`](Self::leave_short).
    pub(crate) fn enter_short(&self) {
        self.short.fetch_add(1, Ordering::SeqCst);
    }

    pub(crate) fn leave_short(&self) {
        self.short.fetch_sub(1, Ordering::SeqCst);
    }

    /// Whether some thread found the budget short and has not finished with it.
    #[inline]
    fn is_short(&self) -> bool {
        self.short.load(Ordering::SeqCst) > 0
    }

    /// Gives back `bytes` charged before. SeqCst: a waiter registers, then re-reads the budget;
    /// a release subtracts, then looks for waiters (see `Inner::uncharge`).
    #[inline]
    pub(crate) fn uncharge(&self, bytes: u64) {
        let before = self.used.fetch_sub(bytes, Ordering::SeqCst);
        debug_assert!(before >= bytes, "more bytes given back than charged");
    }
}

/// Most pages a lease keeps cached.
pub(crate) const MAX_CACHED_PAGES: usize = CACHE_CAPACITY;

/// The top bit of a lease's charge word: the lease is closed (it takes no page).
const CLOSED: u64 = 1 << 63;

/// Why a lease could not count more pages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refused {
    /// The quota would be exceeded; the lease holds `held` pages.
    Quota { held: usize },
    /// More pages than a lease can count were asked for, which no budget serves either.
    Budget,
    /// The lease is closed.
    Closed,
}

/// Pages to give back to the budget (and, those listed, to the free pages).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct GiveBack {
    /// Free pages to put back.
    len: usize,
    pages: [usize; MAX_CACHED_PAGES],
    /// Pages whose charge goes back to the budget (the listed ones, and a page that freed
    /// its own memory).
    pub(crate) uncharge: usize,
    /// Nothing is charged to the lease any more: the reference its pages shared is released.
    pub(crate) last: bool,
}

impl GiveBack {
    fn push(&mut self, page: usize) {
        self.pages[self.len] = page;
        self.len += 1;
    }

    /// The free pages to put back.
    pub(crate) fn pages(&self) -> &[usize] {
        &self.pages[..self.len]
    }
}

/// The pages charged to a lease (held, or cached after a release), its peak, its quota, and
/// its cache of released pages.
///
/// The charge word counts pages held plus pages cached, and its top bit says the lease is
/// closed; only the slow paths write it. The fast paths touch only the cache
/// ([`PageCache`]): an allocation takes a cached page (one compare-and-swap of the cache's
/// head) and a release caches it (one of its tail), so neither waits for the other's write.
/// The quota bounds the whole charge, cached pages included: taking a cached page needs no
/// check, and a request the quota refuses while pages are cached gives them back and tries
/// again. A cached page counts as free in the manager's figures.
/// Aligned to its own cache lines so that two leases never share one.
#[repr(C, align(128))]
pub(crate) struct LeasePages {
    cache: PageCache,
    charged: AtomicU64,
    peak: AtomicUsize,
    quota: Option<usize>,
    /// The most pages the lease may be charged: its quota, or what the count can hold.
    max_charged: u64,
}

impl LeasePages {
    /// Counts for a lease of a manager of `total_pages` pages; `cache`: whether released pages
    /// may be kept (a preallocated manager's, whose page numbers fit in 32 bits; a lazy
    /// manager frees them).
    pub(crate) fn new(quota: Option<usize>, total_pages: usize, cache: bool) -> Self {
        let cache = cache && total_pages as u64 <= u64::from(u32::MAX) + 1;
        LeasePages {
            cache: PageCache::new(!cache),
            charged: AtomicU64::new(0),
            peak: AtomicUsize::new(0),
            quota,
            max_charged: quota.map_or(CLOSED - 1, |q| (q as u64).min(CLOSED - 1)),
        }
    }

    pub(crate) fn quota(&self) -> Option<usize> {
        self.quota
    }

    /// Pages charged, held or cached.
    fn charged(&self) -> usize {
        (self.charged.load(Ordering::SeqCst) & !CLOSED) as usize
    }

    /// Pages held (lent out and not yet given back): a snapshot while pages move.
    pub(crate) fn held(&self) -> usize {
        self.charged().saturating_sub(self.cache.len())
    }

    /// Pages cached: charged to the budget, ready for the lease's next allocation.
    pub(crate) fn cached(&self) -> usize {
        self.cache.len()
    }

    /// The most pages held at once, as counted each time pages are charged (a page another
    /// thread is caching at that moment may count too).
    pub(crate) fn peak(&self) -> usize {
        self.peak.load(Ordering::SeqCst)
    }

    #[inline]
    pub(crate) fn is_closed(&self) -> bool {
        self.charged.load(Ordering::SeqCst) & CLOSED != 0
    }

    /// Marks the lease closed (it takes no page and its releases cache nothing from now on);
    /// false if it was closed already. The caller then [`drain`](Self::drain)s the cache.
    pub(crate) fn close(&self) -> bool {
        let was_open = self.charged.fetch_or(CLOSED, Ordering::SeqCst) & CLOSED == 0;
        self.cache.close();
        was_open
    }

    /// The fast path of an allocation: the page cached longest, if there is one and nothing
    /// else moved the cache's head meanwhile. Already charged, within the quota: taking it is
    /// all there is to do. `None` decides nothing: the caller charges a page instead.
    #[inline(always)]
    pub(crate) fn take_cached(&self) -> Option<usize> {
        self.cache.take().map(|page| page as usize)
    }

    /// Charges `n` more pages to the lease if the quota allows; true if nothing was charged
    /// before (its pages now share a reference to it). The caller charges them to the budget
    /// (and counts them off with [`sub`](Self::sub) if the budget refuses).
    pub(crate) fn charge(&self, n: usize) -> Result<bool, Refused> {
        let mut state = self.charged.load(Ordering::Relaxed);
        loop {
            if state & CLOSED != 0 {
                return Err(Refused::Closed);
            }
            let now = state.checked_add(n as u64).ok_or(Refused::Budget)?;
            if now > self.max_charged {
                return Err(match self.quota {
                    Some(quota) if now > quota as u64 => Refused::Quota {
                        held: (state as usize).saturating_sub(self.cache.len()),
                    },
                    _ => Refused::Budget,
                });
            }
            match self.charged.compare_exchange_weak(
                state,
                now,
                Ordering::SeqCst,
                Ordering::Relaxed,
            ) {
                Ok(_) => {
                    let held = (now as usize).saturating_sub(self.cache.len());
                    self.peak.fetch_max(held, Ordering::Relaxed);
                    return Ok(state == 0);
                }
                Err(seen) => state = seen,
            }
        }
    }

    /// Counts `n` pages fewer charged (given back with their charge by the caller, or
    /// transferred away); true if nothing is charged to the lease any more.
    pub(crate) fn sub(&self, n: usize) -> bool {
        let before = self.charged.fetch_sub(n as u64, Ordering::SeqCst);
        debug_assert!(
            before & !CLOSED >= n as u64,
            "more pages given back than charged"
        );
        before & !CLOSED == n as u64
    }

    /// A page held by the lease is released: `page` is its number among the free pages, or
    /// `None` if it freed its own memory. The page stays cached (charged, not held) if there
    /// is room, the lease is open and the budget is not short (`None`); otherwise the
    /// returned [`GiveBack`] says what to give back.
    #[inline(always)]
    pub(crate) fn put(&self, page: Option<usize>, budget: &Budget) -> Option<GiveBack> {
        // A page number that does not fit 32 bits belongs to a manager whose cache is closed.
        if let Some(page) = page
            && self.cache.put(page as u32)
        {
            return self.after_caching(budget);
        }
        self.put_back(page)
    }

    /// [`put`](Self::put) when the page was not cached: it goes back with its charge.
    #[cold]
    #[inline(never)]
    fn put_back(&self, page: Option<usize>) -> Option<GiveBack> {
        let mut back = GiveBack {
            uncharge: 1,
            last: self.sub(1),
            ..GiveBack::default()
        };
        if let Some(page) = page {
            back.push(page);
        }
        Some(back)
    }

    /// A page was cached: what to give back, if the budget is short. Looked at after caching:
    /// a reclaim that marked the budget short before this look drains the cache after it, or
    /// this release sees the mark (see `PageCache`).
    #[inline(always)]
    fn after_caching(&self, budget: &Budget) -> Option<GiveBack> {
        if budget.is_short() {
            return Some(self.drain());
        }
        None
    }

    /// Empties the cache: its pages are to be given back.
    #[cold]
    #[inline(never)]
    pub(crate) fn drain(&self) -> GiveBack {
        let mut pages = [0; MAX_CACHED_PAGES];
        let n = self.cache.drain(&mut pages);
        let mut back = GiveBack {
            uncharge: n,
            last: n > 0 && self.sub(n),
            ..GiveBack::default()
        };
        for &page in &pages[..n] {
            back.push(page as usize);
        }
        back
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn the_budget_and_the_quota_refuse_what_does_not_fit() {
        let budget = Budget::new(10);
        assert!(budget.try_charge(10));
        assert!(!budget.try_charge(1));
        assert!(!budget.try_charge(u64::MAX), "no overflow");
        budget.uncharge(4);
        assert!(budget.try_charge(4));
        assert_eq!(budget.used(), 10);
        let pages = LeasePages::new(Some(3), 8, false);
        assert_eq!(pages.charge(2), Ok(true));
        assert_eq!(pages.charge(2), Err(Refused::Quota { held: 2 }));
        assert_eq!(
            pages.charge(usize::MAX),
            Err(Refused::Budget),
            "no overflow"
        );
        assert!(!pages.sub(1));
        assert_eq!(pages.charge(2), Ok(false));
        assert_eq!((pages.held(), pages.peak()), (3, 3));
        assert!(pages.sub(3), "nothing charged any more");
        let unbounded = LeasePages::new(None, 8, false);
        assert_eq!(
            unbounded.charge(usize::MAX),
            Err(Refused::Budget),
            "beyond 63 bits"
        );
        assert_eq!(unbounded.charge(1), Ok(true));
        assert_eq!(unbounded.charge(usize::MAX), Err(Refused::Budget));
    }

    #[test]
    fn only_a_preallocated_manager_with_32_bit_page_numbers_caches() {
        let budget = Budget::new(u64::MAX);
        for (total, cache, caches) in [
            (1, true, true),
            (1 << 32, true, true),
            ((1 << 32) + 1, true, false),
            (256, false, false),
        ] {
            let pages = LeasePages::new(None, total, cache);
            pages.charge(1).unwrap();
            let back = pages.put(Some(total - 1), &budget);
            assert_eq!(back.is_none(), caches, "{total} {cache}");
            assert_eq!(pages.cached(), usize::from(caches));
        }
    }

    #[test]
    fn released_pages_are_cached_taken_back_and_drained() {
        let budget = Budget::new(u64::MAX);
        let pages = LeasePages::new(Some(6), 256, true);
        assert_eq!(pages.take_cached(), None, "nothing cached");
        assert_eq!(pages.charge(5), Ok(true));
        for page in [255, 0, 7, 3] {
            assert_eq!(pages.put(Some(page), &budget), None);
        }
        assert_eq!((pages.held(), pages.cached()), (1, 4));
        let back = pages.put(Some(11), &budget).unwrap();
        assert_eq!(
            (back.pages(), back.uncharge, back.last),
            (&[11][..], 1, false),
            "the cache is full"
        );
        assert_eq!(pages.take_cached(), Some(255), "cached longest first");
        assert_eq!((pages.held(), pages.cached(), pages.peak()), (1, 3, 5));
        assert_eq!(
            pages.charge(3),
            Err(Refused::Quota { held: 1 }),
            "cached pages count against the quota"
        );
        let back = pages.drain();
        assert_eq!(
            (back.pages(), back.uncharge, back.last),
            (&[0, 7, 3][..], 3, false)
        );
        assert_eq!(pages.drain(), GiveBack::default());
        let back = pages.put(None, &budget).unwrap();
        assert_eq!(
            (back.pages(), back.uncharge, back.last),
            (&[][..], 1, true),
            "freed"
        );
        assert_eq!(pages.charge(1), Ok(true));
        pages.put(Some(5), &budget);
        let back = pages.drain();
        assert_eq!(
            (back.pages(), back.last),
            (&[5][..], true),
            "the last charge"
        );
        assert_eq!(pages.peak(), 5);
    }

    #[test]
    fn a_closed_lease_or_a_short_budget_keeps_nothing() {
        let budget = Budget::new(u64::MAX);
        let pages = LeasePages::new(None, 16, true);
        pages.charge(3).unwrap();
        budget.enter_short();
        let back = pages.put(Some(3), &budget).unwrap();
        assert_eq!(
            (back.pages(), back.uncharge, back.last),
            (&[3][..], 1, false),
            "cached, then drained at once"
        );
        budget.leave_short();
        assert_eq!(pages.put(Some(5), &budget), None);
        assert!(pages.close());
        assert!(!pages.close(), "closed once");
        assert_eq!(pages.charge(1), Err(Refused::Closed));
        let back = pages.put(Some(4), &budget).unwrap();
        assert_eq!(
            (back.pages(), back.uncharge, back.last),
            (&[4][..], 1, false)
        );
        assert_eq!(pages.take_cached(), Some(5), "until the closer drains it");
        let back = pages.put(Some(5), &budget).unwrap();
        assert_eq!((back.pages(), back.last), (&[5][..], true));
        assert_eq!(pages.cached(), 0);
    }

    #[test]
    fn a_charge_that_does_not_fit_reclaims_first() {
        let budget = Budget::new(2);
        assert!(budget.charge_or_reclaim(2, || unreachable!("it fits")));
        let mut reclaimed = false;
        assert!(budget.charge_or_reclaim(1, || {
            assert!(budget.is_short());
            budget.uncharge(1);
            reclaimed = true;
        }));
        assert!(reclaimed && !budget.is_short());
        assert!(!budget.charge_or_reclaim(1, || {}));
        assert_eq!(budget.used(), 2);
    }
}

/// The loom models: every interleaving (up to five preemptions; see `loom_builder`) of the
/// accounting protocol the manager runs: leases
/// taking pages from their cache or from the budget and the free pages, releasing them into
/// the cache or back, charges that do not fit reclaiming every lease's cache, a waiter woken
/// by a release, and a lease closed while it releases.
#[cfg(all(test, loom))]
mod loom_model {
    use super::super::page_cache::loom_model::loom_builder;
    use super::*;
    use loom::sync::atomic::{AtomicBool, AtomicIsize};
    use loom::sync::{Arc, Condvar, Mutex};
    use loom::thread;

    const PAGE: u64 = 4096;

    /// A manager's side: its budget, free pages, and waiters (as `Inner::wait_for` waits:
    /// registered, then woken by a release that gives budget back).
    struct Manager {
        budget: Budget,
        free: Mutex<Vec<usize>>,
        waiters: AtomicUsize,
        wakeups: AtomicUsize,
        wait_lock: Mutex<()>,
        wait_cv: Condvar,
    }

    /// A lease's counts and a witness of the reference its pages share (+1 on `first`, −1 on
    /// `last`): it must never drop below zero.
    struct Lease {
        pages: LeasePages,
        shared: AtomicIsize,
    }

    impl Manager {
        fn new(pages: usize) -> Self {
            Manager {
                budget: Budget::new(pages as u64 * PAGE),
                free: Mutex::new((0..pages).collect()),
                waiters: AtomicUsize::new(0),
                wakeups: AtomicUsize::new(0),
                wait_lock: Mutex::new(()),
                wait_cv: Condvar::new(),
            }
        }

        fn give_back(&self, lease: &Lease, back: GiveBack) {
            self.free.lock().unwrap().extend_from_slice(back.pages());
            if back.uncharge > 0 {
                self.budget.uncharge(back.uncharge as u64 * PAGE);
                if self.waiters.load(Ordering::SeqCst) > 0 {
                    let _guard = self.wait_lock.lock().unwrap();
                    self.wakeups.fetch_add(1, Ordering::SeqCst);
                    self.wait_cv.notify_all();
                }
            }
            if back.last {
                let before = lease.shared.fetch_sub(1, Ordering::SeqCst);
                assert!(
                    before > 0,
                    "a lease's reference released before it was taken"
                );
            }
        }

        /// Charges `bytes`, reclaiming the caches of `leases` if they do not fit.
        fn charge(&self, bytes: u64, leases: &[&Lease]) -> bool {
            self.budget.charge_or_reclaim(bytes, || {
                for lease in leases {
                    self.give_back(lease, lease.pages.drain());
                }
            })
        }

        /// One page for `lease`, as `Lease::allocate` takes it: its fast path first.
        fn allocate(&self, lease: &Lease, leases: &[&Lease]) -> Option<usize> {
            if let Some(page) = lease.pages.take_cached() {
                return Some(page);
            }
            // As `LeaseAccount::count`: cached pages go back when the quota refuses.
            let first = loop {
                match lease.pages.charge(1) {
                    Ok(first) => break first,
                    Err(Refused::Quota { .. }) if lease.pages.cached() > 0 => {
                        self.give_back(lease, lease.pages.drain())
                    }
                    Err(_) => return None,
                }
            };
            if first {
                lease.shared.fetch_add(1, Ordering::SeqCst);
            }
            if !self.charge(PAGE, leases) {
                let last = lease.pages.sub(1);
                self.give_back(
                    lease,
                    GiveBack {
                        last,
                        ..GiveBack::default()
                    },
                );
                return None;
            }
            Some(
                self.free
                    .lock()
                    .unwrap()
                    .pop()
                    .expect("a charged page is free"),
            )
        }

        fn release(&self, lease: &Lease, page: usize) {
            if let Some(back) = lease.pages.put(Some(page), &self.budget) {
                self.give_back(lease, back);
            }
        }

        /// One page for `lease`, waiting for a release as long as it takes.
        fn allocate_waiting(&self, lease: &Lease, leases: &[&Lease]) -> usize {
            self.waiters.fetch_add(1, Ordering::SeqCst);
            self.budget.enter_short();
            let page = loop {
                let seen = self.wakeups.load(Ordering::SeqCst);
                if let Some(page) = self.allocate(lease, leases) {
                    break page;
                }
                let guard = self.wait_lock.lock().unwrap();
                if self.wakeups.load(Ordering::SeqCst) == seen {
                    drop(self.wait_cv.wait(guard).unwrap());
                }
            };
            self.budget.leave_short();
            self.waiters.fetch_sub(1, Ordering::SeqCst);
            page
        }

        /// Everything back: caches drained, then pages free + held + cached = total.
        fn check_quiescent(&self, leases: &[&Lease], total: usize) {
            for lease in leases {
                self.give_back(lease, lease.pages.drain());
                assert_eq!(lease.pages.held(), 0);
                assert_eq!(lease.shared.load(Ordering::SeqCst), 0);
            }
            assert_eq!(self.budget.used(), 0);
            let mut free = self.free.lock().unwrap().clone();
            free.sort_unstable();
            assert_eq!(free, (0..total).collect::<Vec<_>>(), "every page once");
        }
    }

    impl Lease {
        fn new(quota: Option<usize>, total: usize) -> Self {
            Lease {
                pages: LeasePages::new(quota, total, true),
                shared: AtomicIsize::new(0),
            }
        }
    }

    /// Two threads share a lease with a quota of one page, against a budget of two pages,
    /// while a third reserves one page's bytes: the budget and the quota are never exceeded,
    /// at least one thread is served, and everything is back at the end.
    #[test]
    fn budget_and_quota_hold_in_every_interleaving() {
        loom_builder().check(|| {
            let manager = Arc::new(Manager::new(2));
            let lease = Arc::new(Lease::new(Some(1), 2));
            let out = Arc::new(AtomicUsize::new(0));
            let workers: Vec<_> = (0..2)
                .map(|_| {
                    let (manager, lease, out) = (manager.clone(), lease.clone(), out.clone());
                    thread::spawn(move || {
                        let Some(page) = manager.allocate(&lease, &[&lease]) else {
                            return false;
                        };
                        let now = out.fetch_add(1, Ordering::SeqCst) + 1;
                        assert!(now <= 1, "quota of one page exceeded: {now}");
                        assert!(manager.budget.used() <= manager.budget.limit());
                        out.fetch_sub(1, Ordering::SeqCst);
                        manager.release(&lease, page);
                        true
                    })
                })
                .collect();
            // A reservation from another lease, meanwhile: it may be refused while both
            // workers' pages are charged for a moment, never while one sits in the cache.
            if manager.charge(PAGE, &[&lease]) {
                assert!(manager.budget.used() <= manager.budget.limit());
                manager.budget.uncharge(PAGE);
            }
            let served: Vec<bool> = workers.into_iter().map(|w| w.join().unwrap()).collect();
            assert!(served.iter().any(|&s| s), "{served:?}");
            assert!(lease.pages.peak() <= 1);
            manager.check_quiescent(&[&lease], 2);
        });
    }

    /// One page; lease A allocates and releases it (it stays in A's cache), while lease B
    /// asks for a page: if A's release had finished before B asked, B is served (the cached
    /// page is reclaimed, never hidden from B); and no page is lost or given twice.
    #[test]
    fn budget_short_reclaims_every_cached_page() {
        loom_builder().check(|| {
            let manager = Arc::new(Manager::new(1));
            let a = Arc::new(Lease::new(None, 1));
            let b = Arc::new(Lease::new(None, 1));
            let released = Arc::new(AtomicBool::new(false));
            let worker = {
                let (manager, a, b, released) =
                    (manager.clone(), a.clone(), b.clone(), released.clone());
                thread::spawn(move || {
                    if let Some(page) = manager.allocate(&a, &[&a, &b]) {
                        manager.release(&a, page);
                        released.store(true, Ordering::SeqCst);
                    }
                })
            };
            let before = released.load(Ordering::SeqCst);
            match manager.allocate(&b, &[&a, &b]) {
                Some(page) => manager.release(&b, page),
                None => assert!(!before, "refused while a's released page was cached"),
            }
            worker.join().unwrap();
            manager.check_quiescent(&[&a, &b], 1);
        });
    }

    /// One page; lease A allocates and releases it while lease B waits for a page: B is
    /// always served. A release while B waits keeps nothing cached and wakes B; were the page
    /// kept, B would sleep for ever (which loom reports as a deadlock).
    #[test]
    fn budget_short_wakes_a_waiter_instead_of_caching() {
        loom_builder().check(|| {
            let manager = Arc::new(Manager::new(1));
            let a = Arc::new(Lease::new(None, 1));
            let b = Arc::new(Lease::new(None, 1));
            let worker = {
                let (manager, a, b) = (manager.clone(), a.clone(), b.clone());
                thread::spawn(move || {
                    if let Some(page) = manager.allocate(&a, &[&a, &b]) {
                        manager.release(&a, page);
                    }
                })
            };
            let page = manager.allocate_waiting(&b, &[&a, &b]);
            manager.release(&b, page);
            worker.join().unwrap();
            manager.check_quiescent(&[&a, &b], 1);
        });
    }

    /// A lease releases a page while it is closed: the page is never left in the cache of the
    /// closed lease (nobody would take it back), and nothing is lost.
    #[test]
    fn budget_comes_back_from_a_lease_closed_while_it_releases() {
        loom_builder().check(|| {
            let manager = Arc::new(Manager::new(1));
            let a = Arc::new(Lease::new(None, 1));
            let worker = {
                let (manager, a) = (manager.clone(), a.clone());
                thread::spawn(move || {
                    if let Some(page) = manager.allocate(&a, &[&a]) {
                        manager.release(&a, page);
                    }
                })
            };
            if a.pages.close() {
                manager.give_back(&a, a.pages.drain());
            }
            worker.join().unwrap();
            assert_eq!(a.pages.cached(), 0, "a page cached by a closed lease");
            manager.check_quiescent(&[&a], 1);
        });
    }
}
