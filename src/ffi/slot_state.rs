//! The state word of a handle slot: its generation, whether it holds a live object, whether
//! that object is being removed, and how many lookups are using it, in one atomic word.
//!
//! A lookup is one `fetch_add` (enter) and one `fetch_sub` (leave); removing an object never
//! waits for lookups: it marks the slot, and whoever leaves it last (the remover itself when
//! no lookup is in it) finishes the removal, so an object is never dropped while a lookup
//! uses it. Kept apart from the table so that a loom model checks this very protocol:
//!
//! ```sh
//! RUSTFLAGS="--cfg loom" CARGO_TARGET_DIR=target/loom cargo test --release --lib slot_state
//! ```

#[cfg(loom)]
use loom::sync::atomic::AtomicU64;
#[cfg(not(loom))]
use std::sync::atomic::AtomicU64;
use std::sync::atomic::Ordering;

/// Lookups in the slot now (the low 32 bits; never near full: each is a call in progress).
const READERS: u64 = (1 << 32) - 1;
/// The slot holds the object of its generation.
const LIVE: u64 = 1 << 32;
/// The object was removed, but a lookup still uses it: the last one out drops it.
const FREEING: u64 = 1 << 33;
/// A removal is deciding whether to go ahead (lookups go on meanwhile; other removals wait).
const REMOVING: u64 = 1 << 34;
const GENERATION_SHIFT: u32 = 35;

/// What [`SlotState::claim`] found.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Claim {
    /// The remover was the only one in the slot: the slot now shows the next generation, and
    /// the remover takes the object and recycles the slot.
    Alone,
    /// Other lookups are in the slot: it is marked, and whoever leaves last finishes.
    Shared,
}

/// A snapshot of a slot's state word.
#[derive(Clone, Copy)]
pub(crate) struct Snapshot(u64);

impl Snapshot {
    /// The slot's generation: the live object's, or the one it issues next.
    pub(crate) fn generation(self) -> u64 {
        self.0 >> GENERATION_SHIFT
    }

    pub(crate) fn is_live(self) -> bool {
        self.0 & LIVE != 0
    }

    /// Removed, with lookups still in it (its generation has not moved on yet).
    pub(crate) fn is_freeing(self) -> bool {
        self.0 & FREEING != 0
    }

    /// Whether this is the live object of `generation` (lookups and a pending removal aside).
    #[inline(always)]
    pub(crate) fn is_live_as(self, generation: u64) -> bool {
        self.0 & !(READERS | REMOVING) == generation << GENERATION_SHIFT | LIVE
    }
}

pub(crate) struct SlotState(AtomicU64);

impl SlotState {
    /// An empty slot that issues `generation` next.
    pub(crate) fn new(generation: u64) -> Self {
        SlotState(AtomicU64::new(generation << GENERATION_SHIFT))
    }

    #[inline(always)]
    pub(crate) fn load(&self, order: Ordering) -> Snapshot {
        Snapshot(self.0.load(order))
    }

    /// Makes the object just stored in an empty slot live, under the slot's generation.
    /// Release: a lookup that enters sees the object. Lookups that failed on the empty slot
    /// may still be counted in it, so the flag is added, not stored over the count.
    pub(crate) fn publish(&self) -> u64 {
        Snapshot(self.0.fetch_or(LIVE, Ordering::Release)).generation()
    }

    /// Enters the slot as a lookup of `generation`. `Ok` if that is the live object: it stays
    /// in place until [`leave`](Self::leave). Otherwise the lookup has already left, and
    /// `Err(true)` says it left last and must finish a removal (as `leave` does).
    #[inline(always)]
    pub(crate) fn enter(&self, generation: u64) -> Result<(), bool> {
        // Acquire: pairs with `publish`, so the object is seen fully stored.
        let before = Snapshot(self.0.fetch_add(1, Ordering::Acquire));
        if before.is_live_as(generation) {
            Ok(())
        } else {
            Err(self.leave())
        }
    }

    /// Leaves the slot. `true`: this was the last lookup in a removed slot, and the slot now
    /// shows the next generation: the caller drops the object and recycles the slot.
    #[inline(always)]
    pub(crate) fn leave(&self) -> bool {
        // Release: the object's last use here comes before its drop by whoever finishes.
        let before = self.0.fetch_sub(1, Ordering::Release);
        if before & READERS == 1 && before & FREEING != 0 {
            self.finish(before - 1)
        } else {
            false
        }
    }

    /// Moves a removed slot with no lookups left (`expected`) on to its next generation.
    /// Fails if a lookup entered meanwhile: that one finishes when it leaves. Only one
    /// thread can win, as the flag goes with the swap.
    #[cold]
    fn finish(&self, expected: u64) -> bool {
        let next = next_generation(Snapshot(expected).generation());
        // Acquire: every lookup's last use of the object (their Release `leave`s, a chain of
        // read-modify-writes on this word) comes before the drop.
        self.0
            .compare_exchange(expected, next, Ordering::Acquire, Ordering::Relaxed)
            .is_ok()
    }

    /// Starts a removal of the live object of `generation`, by a caller that has entered
    /// the slot, once no other removal is deciding (it waits for one that is). `None`:
    /// another removal took the object first.
    pub(crate) fn begin_removal(&self, generation: u64) -> Option<Removal<'_>> {
        let mut current = self.0.load(Ordering::Relaxed);
        let mut spins = 0u32;
        loop {
            if !Snapshot(current).is_live_as(generation) {
                return None;
            }
            if current & REMOVING != 0 {
                // Another removal is running its check: short, and never waits for lookups.
                spins += 1;
                wait(spins);
                current = self.0.load(Ordering::Relaxed);
                continue;
            }
            // Acquire: the previous removal's check (it may have changed the object, as a
            // buffer's reference count) comes before this one.
            match self.0.compare_exchange_weak(
                current,
                current | REMOVING,
                Ordering::Acquire,
                Ordering::Relaxed,
            ) {
                Ok(_) => return Some(Removal(self)),
                Err(now) => current = now,
            }
        }
    }

    /// Sets the raw state (tests that age a slot).
    #[cfg(all(test, not(loom)))]
    pub(crate) fn set_live(&self, generation: u64) {
        self.0
            .store(generation << GENERATION_SHIFT | LIVE, Ordering::Relaxed);
    }
}

/// A removal deciding whether to go ahead: [`claim`](Removal::claim) removes the object;
/// dropping it instead (the check refused, or panicked) leaves the object live.
pub(crate) struct Removal<'a>(&'a SlotState);

impl Removal<'_> {
    /// Removes the live object (the caller's entry is given up unless the answer is
    /// [`Claim::Shared`], where the caller leaves as usual).
    pub(crate) fn claim(self) -> Claim {
        let state = std::mem::ManuallyDrop::new(self).0;
        let mut current = state.0.load(Ordering::Relaxed);
        loop {
            debug_assert!(current & REMOVING != 0 && current & LIVE != 0);
            let (next, claim) = if current & READERS == 1 {
                (
                    next_generation(Snapshot(current).generation()),
                    Claim::Alone,
                )
            } else {
                (current & !(LIVE | REMOVING) | FREEING, Claim::Shared)
            };
            // AcqRel: `Alone` drops the object, after every other lookup's last use.
            match state
                .0
                .compare_exchange_weak(current, next, Ordering::AcqRel, Ordering::Relaxed)
            {
                Ok(_) => return claim,
                Err(now) => current = now,
            }
        }
    }
}

impl Drop for Removal<'_> {
    fn drop(&mut self) {
        // Release: this removal's check comes before the next one's.
        self.0.0.fetch_and(!REMOVING, Ordering::Release);
    }
}

/// Waits a little for another thread (a removal's check) to finish.
fn wait(spins: u32) {
    #[cfg(loom)]
    {
        let _ = spins;
        loom::thread::yield_now();
    }
    #[cfg(not(loom))]
    if spins < 64 {
        std::hint::spin_loop();
    } else {
        std::thread::yield_now();
    }
}

/// The empty state that follows `generation`. Past the last generation this is a value no
/// handle can carry: the slot is retired, its handles all stale.
fn next_generation(generation: u64) -> u64 {
    (generation + 1) << GENERATION_SHIFT
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn a_lookup_keeps_a_removed_object_until_it_leaves() {
        let state = SlotState::new(3);
        assert_eq!(state.enter(3), Err(false), "empty slot");
        assert_eq!(state.publish(), 3);
        assert_eq!(state.enter(2), Err(false), "older generation");
        state.enter(3).unwrap();
        state.enter(3).unwrap();
        let removal = state.begin_removal(3).unwrap();
        state
            .enter(3)
            .expect("lookups go on while a removal decides");
        assert!(!state.leave());
        assert_eq!(removal.claim(), Claim::Shared);
        assert!(state.load(Ordering::Relaxed).is_freeing());
        assert!(state.begin_removal(3).is_none(), "removed already");
        assert_eq!(state.enter(3), Err(false), "removed: no new lookups");
        assert!(!state.leave(), "one lookup still in");
        assert!(state.leave(), "the last one out finishes");
        let now = state.load(Ordering::Relaxed);
        assert_eq!(now.generation(), 4);
        assert!(!now.is_live() && !now.is_freeing());
    }

    #[test]
    fn a_remover_alone_finishes_at_once() {
        let state = SlotState::new(1);
        state.publish();
        state.enter(1).unwrap();
        drop(state.begin_removal(1).unwrap());
        assert!(
            state.load(Ordering::Relaxed).is_live_as(1),
            "an abandoned removal"
        );
        assert_eq!(state.begin_removal(1).unwrap().claim(), Claim::Alone);
        assert_eq!(state.load(Ordering::Relaxed).generation(), 2);
        assert_eq!(state.enter(1), Err(false));
    }

    #[test]
    fn the_last_generation_retires_the_slot() {
        let state = SlotState::new(0);
        state.set_live((1 << 24) - 1);
        state.enter((1 << 24) - 1).unwrap();
        let removal = state.begin_removal((1 << 24) - 1).unwrap();
        assert_eq!(removal.claim(), Claim::Alone);
        assert_eq!(state.load(Ordering::Relaxed).generation(), 1 << 24);
    }
}

/// The loom model: every interleaving of lookups and removers on one slot. The object is a
/// loom cell that its drop writes, so loom reports a lookup that reads it without the drop
/// coming after (a use after free), and the drop asserts it runs once.
#[cfg(all(test, loom))]
mod loom_model {
    use super::*;
    use loom::cell::UnsafeCell;
    use loom::sync::Arc;
    use loom::thread;

    struct Slot {
        state: SlotState,
        /// 1 while the object exists, 0 once dropped.
        object: UnsafeCell<usize>,
        /// References to the object that each removal counts down (as a buffer's), the last
        /// one removing it: changed only in a removal's check.
        refs: UnsafeCell<usize>,
    }

    // SAFETY: the cell is what the model checks: loom fails any access to it that the slot
    // protocol does not order.
    unsafe impl Sync for Slot {}

    impl Slot {
        fn drop_object(&self) {
            self.object.with_mut(|object| {
                // SAFETY: loom checks that no other access races with this one.
                let object = unsafe { &mut *object };
                assert_eq!(*object, 1, "dropped twice");
                *object = 0;
            });
        }

        fn leave(&self) {
            if self.state.leave() {
                self.drop_object();
            }
        }

        fn lookup(&self) {
            match self.state.enter(1) {
                Ok(()) => {
                    // SAFETY: as above.
                    let alive = self.object.with(|object| unsafe { *object });
                    assert_eq!(alive, 1, "used after drop");
                    self.leave();
                }
                Err(true) => self.drop_object(),
                Err(false) => {}
            }
        }

        fn remove(&self) -> bool {
            match self.state.enter(1) {
                Ok(()) => match self.state.begin_removal(1).map(Removal::claim) {
                    Some(Claim::Alone) => {
                        self.drop_object();
                        true
                    }
                    Some(Claim::Shared) => {
                        self.leave();
                        true
                    }
                    None => {
                        self.leave();
                        false
                    }
                },
                Err(true) => {
                    self.drop_object();
                    false
                }
                Err(false) => false,
            }
        }

        /// Releases one reference: removes the object with the last one.
        fn release(&self) -> bool {
            let Ok(()) = self.state.enter(1) else {
                panic!("released after the last reference");
            };
            let removal = self.state.begin_removal(1).expect("live while referenced");
            let last = self.refs.with_mut(|refs| {
                // SAFETY: loom checks that removals' checks do not overlap.
                let refs = unsafe { &mut *refs };
                *refs -= 1;
                *refs == 0
            });
            if last {
                match removal.claim() {
                    Claim::Alone => self.drop_object(),
                    Claim::Shared => self.leave(),
                }
            } else {
                drop(removal);
                self.leave();
            }
            last
        }

        fn dropped(&self) -> bool {
            // SAFETY: as above.
            self.object.with(|object| unsafe { *object }) == 0
        }
    }

    fn live_slot() -> Arc<Slot> {
        let slot = Arc::new(Slot {
            state: SlotState::new(1),
            object: UnsafeCell::new(1),
            refs: UnsafeCell::new(2),
        });
        slot.state.publish();
        slot
    }

    fn assert_finished(slot: &Slot) {
        assert!(slot.dropped());
        let now = slot.state.load(Ordering::Relaxed);
        assert_eq!(now.generation(), 2);
        assert!(!now.is_live() && !now.is_freeing());
    }

    #[test]
    fn lookups_racing_a_removal_never_see_the_object_dropped() {
        loom::model(|| {
            let slot = live_slot();
            let readers: Vec<_> = (0..2)
                .map(|_| {
                    let slot = Arc::clone(&slot);
                    thread::spawn(move || slot.lookup())
                })
                .collect();
            assert!(slot.remove());
            for r in readers {
                r.join().unwrap();
            }
            assert_finished(&slot);
        });
    }

    /// Two threads run `op` on one live slot at once: exactly one of them removes it.
    fn exactly_one_of_two_removes(op: fn(&Slot) -> bool, what: &'static str) {
        loom::model(move || {
            let slot = live_slot();
            let other = {
                let slot = Arc::clone(&slot);
                thread::spawn(move || op(&slot))
            };
            let here = op(&slot);
            let there = other.join().unwrap();
            assert!(here ^ there, "{what}");
            assert_finished(&slot);
        });
    }

    #[test]
    fn removal_checks_run_one_at_a_time() {
        exactly_one_of_two_removes(Slot::release, "the last reference removes");
    }

    #[test]
    fn two_removers_one_wins() {
        exactly_one_of_two_removes(Slot::remove, "exactly one removal");
    }
}
