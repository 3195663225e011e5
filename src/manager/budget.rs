//! The counters every allocation goes through: the manager's budget (bytes charged, never
//! above the limit) and a lease's pages (held, never above its quota, plus a small cache of
//! pages the lease released and keeps charged). Kept apart from the rest so that a loom model
//! checks the very code the manager runs:
//!
//! ```sh
//! RUSTFLAGS="--cfg loom" CARGO_TARGET_DIR=target/loom cargo test --release --lib budget
//! ```
//!
//! Why a cache: a page allocated and released through the budget costs a budget charge and
//! uncharge, the free queue's pop and push, and the lease's count. A page a lease keeps after
//! a release (still charged to it, but not held) is taken back by its next allocation with one
//! compare-and-swap on the lease's own word, and given back with one more. The cache is small
//! and never hides budget from others: a charge that does not fit marks the budget short,
//! takes every lease's cached pages back ([`Budget::charge_or_reclaim`]) and tries again, and
//! while the budget is short a release keeps nothing ([`LeasePages::put`]).

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
pub(crate) const MAX_CACHED_PAGES: usize = 4;

/// Bits of a lease's word that count the pages it holds; the rest is its cache.
const HELD_BITS: u32 = 32;
const HELD_MASK: u64 = (1 << HELD_BITS) - 1;
/// The top bit of a lease's word: the lease is closed (it takes no page, caches none).
const CLOSED: u64 = 1 << 63;
/// Bits of a lease's word for its cache: between the count and the closed bit.
const CACHE_BITS: u32 = 63 - HELD_BITS;

/// Why a lease could not count more pages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refused {
    /// The quota would be exceeded; the lease holds `held` pages.
    Quota { held: usize },
    /// More pages than a lease can count at once (2^32 − 1) were asked for, which no budget
    /// serves either.
    Budget,
    /// The lease is closed.
    Closed,
}

/// What [`LeasePages::take`] counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Take {
    /// The cached page taken (already charged to the budget), or `None`: the pages are still
    /// to be charged to the budget and taken from the free pages.
    pub(crate) cached: Option<usize>,
    /// Nothing was charged to the lease before: its pages now share a reference to it.
    pub(crate) first: bool,
}

/// Pages to give back to the budget (and, those listed, to the free pages).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct GiveBack {
    /// Free pages to put back.
    len: usize,
    pages: [usize; MAX_CACHED_PAGES + 1],
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

/// The pages a lease holds, its peak, its quota, and its cache, in one word so that an
/// allocation from the cache and a release into it are one compare-and-swap each.
///
/// The word: the low 32 bits count pages held (lent out); the next 31 bits hold up to `slots`
/// cached page numbers, `width` bits each, stored as number + 1 (0 is an empty slot), the
/// most recently cached lowest; the top bit says the lease is closed (checked by the same
/// compare-and-swap that takes or caches a page, so no page is cached after a close). Cached pages are charged to the budget but not held: the
/// quota bounds pages held, and a cached page counts as free in the manager's figures.
/// Aligned to its own cache lines so that two leases never share one.
#[repr(align(128))]
pub(crate) struct LeasePages {
    state: AtomicU64,
    peak: AtomicUsize,
    quota: Option<usize>,
    /// The most pages the lease may hold: its quota, and never more than the count's bits.
    max_held: u64,
    width: u32,
    slots: u32,
    /// Where the last slot starts: the cache has room when nothing is there.
    last_slot: u32,
}

impl LeasePages {
    /// Counts for a lease of a manager of `total_pages` pages; `cache`: whether released pages
    /// may be kept (a preallocated manager's; a lazy manager frees them).
    pub(crate) fn new(quota: Option<usize>, total_pages: usize, cache: bool) -> Self {
        let width = (usize::BITS - total_pages.leading_zeros()).max(1);
        let slots = if cache && width <= CACHE_BITS {
            (CACHE_BITS / width).min(MAX_CACHED_PAGES as u32)
        } else {
            0
        };
        LeasePages {
            state: AtomicU64::new(0),
            peak: AtomicUsize::new(0),
            quota,
            max_held: quota.map_or(HELD_MASK, |q| (q as u64).min(HELD_MASK)),
            width,
            slots,
            last_slot: HELD_BITS + slots.saturating_sub(1) * width,
        }
    }

    pub(crate) fn quota(&self) -> Option<usize> {
        self.quota
    }

    /// Pages held (lent out and not yet given back).
    pub(crate) fn held(&self) -> usize {
        (self.state.load(Ordering::SeqCst) & HELD_MASK) as usize
    }

    /// Pages cached: charged to the budget, ready for the lease's next allocation.
    pub(crate) fn cached(&self) -> usize {
        self.cached_in(self.state.load(Ordering::SeqCst))
    }

    /// The most pages held at once.
    pub(crate) fn peak(&self) -> usize {
        self.peak.load(Ordering::SeqCst)
    }

    #[inline]
    pub(crate) fn is_closed(&self) -> bool {
        self.state.load(Ordering::SeqCst) & CLOSED != 0
    }

    /// Marks the lease closed (it takes no page and its releases cache nothing from now on);
    /// false if it was closed already. The caller then [`drain`](Self::drain)s the cache.
    pub(crate) fn close(&self) -> bool {
        self.state.fetch_or(CLOSED, Ordering::SeqCst) & CLOSED == 0
    }

    /// Cached pages in `state`: slots fill from the lowest, and each holds a non-zero value,
    /// so the highest set bit tells how many are filled.
    #[inline]
    fn cached_in(&self, state: u64) -> usize {
        let cache = (state & !CLOSED) >> HELD_BITS;
        (u64::BITS - cache.leading_zeros()).div_ceil(self.width) as usize
    }

    /// The bits of one cache slot (only meaningful when there are slots: `width` ≤ 32).
    #[inline]
    fn slot_mask(&self) -> u64 {
        (1u64 << self.width) - 1
    }

    /// Whether the cache of `state` has room for one more page (never when closed: the
    /// closed bit lies above the last slot).
    #[inline]
    fn has_room(&self, state: u64) -> bool {
        self.slots > 0 && state >> self.last_slot == 0
    }

    #[inline]
    fn record_peak(&self, held: usize) {
        if held > self.peak.load(Ordering::Relaxed) {
            self.peak.fetch_max(held, Ordering::Relaxed);
        }
    }

    /// Counts `n` more pages held if the quota allows. One page comes from the cache if there
    /// is one; otherwise the caller charges them to the budget (and gives them back with
    /// [`sub`](Self::sub) if the budget refuses).
    #[inline]
    pub(crate) fn take(&self, n: usize) -> Result<Take, Refused> {
        self.count(n, true)
    }

    /// The fast path of [`take`](Self::take)`(1)`: the most recently cached page, counted as
    /// held, if the lease is open, has a page cached and is under its quota, and nothing
    /// changed the word between its load and the compare-and-swap. `None` decides nothing:
    /// the caller goes on with `take`, which tells why (or serves the page after all).
    #[inline(always)]
    pub(crate) fn take_cached(&self) -> Option<usize> {
        let state = self.state.load(Ordering::Relaxed);
        let held = state & HELD_MASK;
        // The closed bit is part of `cache` here: a closed lease never gets past the check.
        let cache = state >> HELD_BITS;
        if cache == 0 || state & CLOSED != 0 || held >= self.max_held {
            return None;
        }
        let page = (cache & self.slot_mask()) - 1;
        let next = ((cache >> self.width) << HELD_BITS) | (held + 1);
        self.state
            .compare_exchange(state, next, Ordering::SeqCst, Ordering::Relaxed)
            .ok()?;
        self.record_peak(held as usize + 1);
        Some(page as usize)
    }

    /// Counts one page more held, never from the cache: a page transferred to this lease.
    pub(crate) fn add_transferred(&self) -> Result<bool, Refused> {
        self.count(1, false).map(|take| take.first)
    }

    #[inline]
    fn count(&self, n: usize, from_cache: bool) -> Result<Take, Refused> {
        let mut state = self.state.load(Ordering::Relaxed);
        loop {
            if state & CLOSED != 0 {
                return Err(Refused::Closed);
            }
            let held = (state & HELD_MASK) as usize;
            let cache = state >> HELD_BITS;
            let now = held.checked_add(n).ok_or(Refused::Budget)?;
            if self.quota.is_some_and(|quota| now > quota) {
                return Err(Refused::Quota { held });
            }
            let (next, take) = if from_cache && n == 1 && cache != 0 {
                let page = (cache & self.slot_mask()) as usize - 1;
                let next = ((cache >> self.width) << HELD_BITS) | (held as u64 + 1);
                let take = Take {
                    cached: Some(page),
                    first: false,
                };
                (next, take)
            } else {
                if now as u64 > HELD_MASK {
                    return Err(Refused::Budget);
                }
                let take = Take {
                    cached: None,
                    // Nothing held or cached: the word is zero.
                    first: state == 0,
                };
                (state + n as u64, take)
            };
            match self
                .state
                .compare_exchange_weak(state, next, Ordering::SeqCst, Ordering::Relaxed)
            {
                Ok(_) => {
                    self.record_peak(held + n);
                    return Ok(take);
                }
                Err(now) => state = now,
            }
        }
    }

    /// Counts `n` pages fewer held (given back with their charge by the caller, or
    /// transferred away); true if nothing is charged to the lease any more.
    pub(crate) fn sub(&self, n: usize) -> bool {
        let before = self.state.fetch_sub(n as u64, Ordering::SeqCst);
        debug_assert!(
            before & HELD_MASK >= n as u64,
            "more pages given back than held"
        );
        before & !CLOSED == n as u64
    }

    /// A page held by the lease is released: `page` is its number among the free pages, or
    /// `None` if it freed its own memory. The page stays cached (charged, not held) if there
    /// is room, the lease is open and the budget is not short (`None`); otherwise the
    /// returned [`GiveBack`] says what to give back.
    #[inline(always)]
    pub(crate) fn put(&self, page: Option<usize>, budget: &Budget) -> Option<GiveBack> {
        // The fast path, inlined: one attempt to cache the page; anything else out of line.
        if let Some(page) = page {
            let state = self.state.load(Ordering::Relaxed);
            if self.has_room(state) {
                debug_assert!(state & HELD_MASK > 0, "a page released that is not held");
                let cache = ((state >> HELD_BITS) << self.width) | (page as u64 + 1);
                let next = (cache << HELD_BITS) | ((state & HELD_MASK) - 1);
                let cached = self
                    .state
                    .compare_exchange(state, next, Ordering::SeqCst, Ordering::Relaxed)
                    .is_ok();
                if cached {
                    return self.after_caching(budget);
                }
            }
        }
        self.put_slowly(page, budget)
    }

    /// [`put`](Self::put) when its one attempt did not cache the page.
    #[inline(never)]
    fn put_slowly(&self, page: Option<usize>, budget: &Budget) -> Option<GiveBack> {
        let mut state = self.state.load(Ordering::Relaxed);
        loop {
            debug_assert!(state & HELD_MASK > 0, "a page released that is not held");
            let cache = (state & !CLOSED) >> HELD_BITS;
            let room = self.has_room(state);
            let next = match page {
                Some(page) if room => {
                    let cache = (cache << self.width) | (page as u64 + 1);
                    (cache << HELD_BITS) | ((state & HELD_MASK) - 1)
                }
                _ => state - 1,
            };
            match self
                .state
                .compare_exchange_weak(state, next, Ordering::SeqCst, Ordering::Relaxed)
            {
                Ok(_) if (next & !CLOSED) >> HELD_BITS != cache => break,
                Ok(_) => {
                    let mut back = GiveBack {
                        uncharge: 1,
                        last: next & !CLOSED == 0,
                        ..GiveBack::default()
                    };
                    if let Some(page) = page {
                        back.push(page);
                    }
                    return Some(back);
                }
                Err(now) => state = now,
            }
        }
        self.after_caching(budget)
    }

    /// A page was cached (so the lease was open): what to give back, if the budget is short.
    /// Looked at after caching: a reclaim that marked the budget short before this look
    /// drains the cache after it, or this release sees the mark.
    #[inline(always)]
    fn after_caching(&self, budget: &Budget) -> Option<GiveBack> {
        if budget.is_short() {
            return Some(self.drain());
        }
        None
    }

    /// Empties the cache: its pages are to be given back.
    ///
    /// Always a read-modify-write, even of an empty cache: a release that caches a page
    /// after it then reads from it, and so sees the budget marked short by the reclaim that
    /// drains (without relying on sequential consistency between different words).
    #[cold]
    #[inline(never)]
    pub(crate) fn drain(&self) -> GiveBack {
        let state = self.state.fetch_and(HELD_MASK | CLOSED, Ordering::SeqCst);
        let mut cache = (state & !CLOSED) >> HELD_BITS;
        let mut back = GiveBack {
            last: cache != 0 && state & HELD_MASK == 0,
            ..GiveBack::default()
        };
        while cache != 0 {
            back.push((cache & self.slot_mask()) as usize - 1);
            cache >>= self.width;
        }
        back.uncharge = back.len;
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
        assert_eq!(pages.take(2).map(|t| t.first), Ok(true));
        assert_eq!(pages.take(2), Err(Refused::Quota { held: 2 }));
        assert_eq!(pages.take(usize::MAX), Err(Refused::Budget));
        assert!(!pages.sub(1));
        assert_eq!(pages.take(2).map(|t| t.first), Ok(false));
        assert_eq!((pages.held(), pages.peak()), (3, 3));
        assert!(pages.sub(3), "nothing charged any more");
        let unbounded = LeasePages::new(None, 8, false);
        assert_eq!(
            unbounded.take(1 << 32),
            Err(Refused::Budget),
            "beyond 32 bits"
        );
    }

    #[test]
    fn the_cache_size_follows_the_width_of_a_page_number() {
        for (pages, slots) in [
            (1, 4),
            (15, 4),
            (255, 3),
            (4096, 2),
            (65536, 1),
            (1 << 30, 1),
        ] {
            assert_eq!(LeasePages::new(None, pages, true).slots, slots, "{pages}");
        }
        assert_eq!(LeasePages::new(None, 1 << 31, true).slots, 0);
        assert_eq!(LeasePages::new(None, 256, false).slots, 0);
    }

    #[test]
    fn released_pages_are_cached_taken_back_and_drained() {
        let budget = Budget::new(u64::MAX);
        let pages = LeasePages::new(Some(4), 256, true);
        let taken = pages.take(3).unwrap();
        assert_eq!((taken.cached, taken.first), (None, true));
        // Three slots of 9 bits: pages 255, 0 and 7 are kept, the fourth goes back.
        for page in [255, 0, 7] {
            assert_eq!(pages.put(Some(page), &budget), None);
        }
        assert_eq!((pages.held(), pages.cached()), (0, 3));
        assert_eq!(pages.take(1).unwrap().cached, Some(7), "most recent first");
        assert_eq!(
            pages.take(2),
            Ok(Take {
                cached: None,
                first: false
            }),
            "not from the cache"
        );
        assert_eq!((pages.held(), pages.cached()), (3, 2));
        assert_eq!(pages.take(1).unwrap().cached, Some(0));
        assert_eq!(
            pages.take(1),
            Err(Refused::Quota { held: 4 }),
            "even with a page cached"
        );
        assert_eq!((pages.held(), pages.cached(), pages.peak()), (4, 1, 4));
        pages.put(Some(9), &budget);
        pages.put(Some(10), &budget);
        let back = pages.put(Some(11), &budget).unwrap();
        assert_eq!(
            (back.pages(), back.uncharge, back.last),
            (&[11][..], 1, false)
        );
        let back = pages.drain();
        assert_eq!(
            (back.pages(), back.uncharge, back.last),
            (&[10, 9, 255][..], 3, false)
        );
        assert_eq!(pages.drain(), GiveBack::default());
        let back = pages.put(None, &budget).unwrap();
        assert_eq!(
            (back.pages(), back.uncharge, back.last),
            (&[][..], 1, true),
            "freed"
        );
        assert_eq!(
            pages.take(1),
            Ok(Take {
                cached: None,
                first: true
            })
        );
        pages.put(Some(5), &budget);
        let back = pages.drain();
        assert_eq!(
            (back.pages(), back.last),
            (&[5][..], true),
            "the last charge"
        );
    }

    #[test]
    fn the_fast_path_takes_the_latest_cached_page_within_the_quota() {
        let budget = Budget::new(u64::MAX);
        let pages = LeasePages::new(Some(2), 16, true);
        assert_eq!(pages.take_cached(), None, "nothing cached");
        pages.take(2).unwrap();
        assert_eq!(pages.put(Some(3), &budget), None);
        assert_eq!(pages.take_cached(), Some(3));
        assert_eq!((pages.held(), pages.cached(), pages.peak()), (2, 0, 2));
        assert_eq!(pages.put(Some(5), &budget), None);
        assert_eq!(pages.add_transferred(), Ok(false));
        assert_eq!(
            pages.cached(),
            1,
            "the quota's last page was transferred in"
        );
        assert_eq!(pages.take_cached(), None, "the quota is used up");
        assert_eq!(pages.take(1), Err(Refused::Quota { held: 2 }));
        assert_eq!(pages.put(Some(7), &budget), None);
        assert_eq!(pages.take_cached(), Some(7), "most recent first");
        assert!(pages.close());
        assert_eq!(
            pages.take_cached(),
            None,
            "closed, with page 5 still cached"
        );
        assert_eq!(pages.drain().pages(), &[5]);
        let unbounded = LeasePages::new(None, 16, true);
        unbounded.take(1).unwrap();
        assert_eq!(unbounded.put(Some(0), &budget), None);
        assert_eq!(unbounded.take_cached(), Some(0), "page 0 (stored as 1)");
    }

    #[test]
    fn a_closed_lease_or_a_short_budget_keeps_nothing() {
        let budget = Budget::new(u64::MAX);
        let pages = LeasePages::new(None, 16, true);
        pages.take(2).unwrap();
        budget.enter_short();
        let back = pages.put(Some(3), &budget).unwrap();
        assert_eq!((back.pages(), back.last), (&[3][..], false));
        budget.leave_short();
        assert!(pages.close());
        assert!(!pages.close(), "closed once");
        assert_eq!(pages.take(1), Err(Refused::Closed));
        assert_eq!(pages.add_transferred(), Err(Refused::Closed));
        let back = pages.put(Some(4), &budget).unwrap();
        assert_eq!(
            (back.pages(), back.uncharge, back.last),
            (&[4][..], 1, true)
        );
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

/// The loom models: every interleaving (no preemption bound: the models are small enough to
/// search exhaustively, in seconds) of the accounting protocol the manager runs: leases
/// taking pages from their cache or from the budget and the free pages, releasing them into
/// the cache or back, charges that do not fit reclaiming every lease's cache, a waiter woken
/// by a release, and a lease closed while it releases.
#[cfg(all(test, loom))]
mod loom_model {
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
            let take = lease.pages.take(1).ok()?;
            if take.first {
                lease.shared.fetch_add(1, Ordering::SeqCst);
            }
            if let Some(page) = take.cached {
                return Some(page);
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

    /// Every interleaving, whatever `LOOM_MAX_PREEMPTIONS` says.
    fn builder() -> loom::model::Builder {
        let mut builder = loom::model::Builder::new();
        builder.preemption_bound = None;
        builder
    }

    /// Two threads share a lease with a quota of one page, against a budget of two pages,
    /// while a third reserves one page's bytes: the budget and the quota are never exceeded,
    /// at least one thread is served, and everything is back at the end.
    #[test]
    fn budget_and_quota_hold_in_every_interleaving() {
        builder().check(|| {
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
        builder().check(|| {
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
        builder().check(|| {
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
        builder().check(|| {
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
