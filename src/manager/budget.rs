//! The two counters every allocation goes through: the manager's budget (bytes charged, never
//! above the limit) and a lease's page count (never above its quota). Kept apart from the rest
//! so that a loom model checks the very code the manager runs:
//!
//! ```sh
//! RUSTFLAGS="--cfg loom" CARGO_TARGET_DIR=target/loom cargo test --release --lib budget
//! ```

#[cfg(loom)]
use loom::sync::atomic::{AtomicU64, AtomicUsize};
use std::sync::atomic::Ordering;
#[cfg(not(loom))]
use std::sync::atomic::{AtomicU64, AtomicUsize};

/// Bytes charged against a limit.
pub(crate) struct Budget {
    limit: u64,
    used: AtomicU64,
}

impl Budget {
    pub(crate) fn new(limit: u64) -> Self {
        Budget {
            limit,
            used: AtomicU64::new(0),
        }
    }

    pub(crate) fn limit(&self) -> u64 {
        self.limit
    }

    /// Bytes charged now.
    pub(crate) fn used(&self) -> u64 {
        self.used.load(Ordering::SeqCst)
    }

    /// Charges `bytes` if they fit under the limit; never overshoots, even for a moment, so a
    /// concurrent request is never refused because of one that is itself refused.
    #[inline]
    pub(crate) fn try_charge(&self, bytes: u64) -> bool {
        let mut used = self.used.load(Ordering::Relaxed);
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

    /// Gives back `bytes` charged before. SeqCst: a waiter registers, then re-reads the budget;
    /// a release subtracts, then looks for waiters (see `Inner::uncharge`).
    #[inline]
    pub(crate) fn uncharge(&self, bytes: u64) {
        let before = self.used.fetch_sub(bytes, Ordering::SeqCst);
        debug_assert!(before >= bytes, "more bytes given back than charged");
    }
}

/// Pages held by a lease, its peak, and its quota.
pub(crate) struct PageCount {
    quota: Option<usize>,
    held: AtomicUsize,
    peak: AtomicUsize,
}

impl PageCount {
    pub(crate) fn new(quota: Option<usize>) -> Self {
        PageCount {
            quota,
            held: AtomicUsize::new(0),
            peak: AtomicUsize::new(0),
        }
    }

    pub(crate) fn quota(&self) -> Option<usize> {
        self.quota
    }

    pub(crate) fn held(&self) -> usize {
        self.held.load(Ordering::SeqCst)
    }

    pub(crate) fn peak(&self) -> usize {
        self.peak.load(Ordering::SeqCst)
    }

    /// Counts `n` more pages if the quota allows; otherwise returns how many are held.
    #[inline]
    pub(crate) fn try_add(&self, n: usize) -> Result<(), usize> {
        let now = match self.quota {
            None => self.held.fetch_add(n, Ordering::Relaxed) + n,
            Some(quota) => {
                let mut held = self.held.load(Ordering::Relaxed);
                loop {
                    let Some(next) = held.checked_add(n).filter(|&next| next <= quota) else {
                        return Err(held);
                    };
                    match self.held.compare_exchange_weak(
                        held,
                        next,
                        Ordering::Relaxed,
                        Ordering::Relaxed,
                    ) {
                        Ok(_) => break next,
                        Err(current) => held = current,
                    }
                }
            }
        };
        if now > self.peak.load(Ordering::Relaxed) {
            self.peak.fetch_max(now, Ordering::Relaxed);
        }
        Ok(())
    }

    /// Counts `n` pages fewer.
    #[inline]
    pub(crate) fn sub(&self, n: usize) {
        let before = self.held.fetch_sub(n, Ordering::Relaxed);
        debug_assert!(before >= n, "more pages given back than held");
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
        let pages = PageCount::new(Some(3));
        assert_eq!(pages.try_add(2), Ok(()));
        assert_eq!(pages.try_add(2), Err(2));
        assert_eq!(pages.try_add(usize::MAX), Err(2));
        pages.sub(1);
        assert_eq!(pages.try_add(2), Ok(()));
        assert_eq!((pages.held(), pages.peak()), (3, 3));
    }
}

/// The loom model: every interleaving of two leases allocating and releasing pages while a
/// third thread reserves and unreserves bytes, against a budget of two pages and a lease quota.
/// Checked in every interleaving with at most three preemptions: the budget is never exceeded, the quota is never exceeded
/// (a witness counts pages held at once), at least one of the two is served, and everything is
/// back at the end.
#[cfg(all(test, loom))]
mod loom_model {
    use super::*;
    use loom::sync::Arc;
    use loom::thread;

    const PAGE: u64 = 4096;

    /// Allocate one page as a lease does: quota first, then budget (quota undone on refusal).
    fn allocate(budget: &Budget, lease: &PageCount) -> bool {
        if lease.try_add(1).is_err() {
            return false;
        }
        if !budget.try_charge(PAGE) {
            lease.sub(1);
            return false;
        }
        true
    }

    fn release(budget: &Budget, lease: &PageCount) {
        lease.sub(1);
        budget.uncharge(PAGE);
    }

    #[test]
    fn accounting_is_exact_in_every_interleaving() {
        // Bounded preemptions (as loom's own docs advise for models of this size): an
        // unbounded search of three threads' CAS loops runs for well over 15 minutes.
        let mut builder = loom::model::Builder::new();
        builder.preemption_bound = Some(3);
        builder.check(|| {
            let budget = Arc::new(Budget::new(2 * PAGE));
            let shared = Arc::new(PageCount::new(Some(1)));
            let out = Arc::new(AtomicUsize::new(0));
            let workers: Vec<_> = (0..2)
                .map(|_| {
                    let (budget, shared, out) = (budget.clone(), shared.clone(), out.clone());
                    thread::spawn(move || {
                        // Both threads use one lease with a quota of one page.
                        if allocate(&budget, &shared) {
                            let now = out.fetch_add(1, Ordering::SeqCst) + 1;
                            assert!(now <= 1, "quota of one page exceeded: {now}");
                            assert!(budget.used() <= budget.limit());
                            out.fetch_sub(1, Ordering::SeqCst);
                            release(&budget, &shared);
                            true
                        } else {
                            false
                        }
                    })
                })
                .collect();
            // A reservation of one page's bytes from another lease, meanwhile. It may be
            // refused: a release gives the quota back before the budget, so for a moment both
            // workers' pages can be charged (loom finds that interleaving).
            if budget.try_charge(PAGE) {
                assert!(budget.used() <= budget.limit());
                budget.uncharge(PAGE);
            }
            let served: Vec<bool> = workers.into_iter().map(|w| w.join().unwrap()).collect();
            // The quota refuses one only while the other holds its page; at least one is served.
            assert!(served.iter().any(|&s| s), "{served:?}");
            assert_eq!(budget.used(), 0);
            assert_eq!(shared.held(), 0);
            assert!(shared.peak() <= 1);
        });
    }
}
