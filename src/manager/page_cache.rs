//! A lease's cache of released pages: a ring of four page numbers that many threads put into
//! and take from at once, without a lock.
//!
//! Why a ring rather than one word: a release that caches a page and the next allocation
//! that takes it would otherwise both compare-and-swap the same word, and the second waits
//! for the first (on the machines measured, two dependent compare-and-swaps on one word cost
//! about 1.5 times two on different words). Here an allocation moves the `head` and a
//! release the `tail`, on cache lines of their own, as a bounded queue does; each slot holds
//! its sequence number and its page number in one word, so one store fills or empties it.
//!
//! The protocol is Dmitry Vyukov's bounded queue: slot `i` of position `p` (`i = p mod 4`)
//! says `p` when it is empty and ready for the put of `p`, and `p + 1` when it holds that put's
//! page, ready for the take of `p`; the take leaves `p + 4` for the put one lap later.
//! Positions are 64-bit and never wrap; a slot keeps their low 32 bits, which is enough to
//! tell its three states apart.
//!
//! Two additions make it a cache the manager can count on:
//! - **Closed**: the top bit of `tail`. A put after [`close`](PageCache::close) fails (the
//!   caller gives the page back), so nothing is cached after the cache was drained for good.
//!   A cache made closed never caches anything (a lazy manager frees its pages instead).
//! - **Drain** ([`drain`](PageCache::drain)) first does a read-modify-write of `tail`, then
//!   takes every page put before it, waiting out a put that has moved `tail` but not yet
//!   filled its slot. So a put either comes before that write in `tail`'s order (the drain
//!   takes its page) or after it (then the put synchronizes with the drain, and sees whatever
//!   the drainer did before draining: the budget marked short, or the lease closed).

#[cfg(loom)]
use loom::sync::atomic::AtomicU64;
#[cfg(not(loom))]
use std::sync::atomic::AtomicU64;
use std::sync::atomic::Ordering;

/// Pages a cache holds at most.
pub(crate) const CACHE_CAPACITY: usize = 4;
const MASK: u64 = CACHE_CAPACITY as u64 - 1;
/// The top bit of `tail`: the cache takes no more pages.
const CLOSED: u64 = 1 << 63;

/// An atomic word on a cache line of its own.
#[repr(align(64))]
struct Line(AtomicU64);

/// A slot's word: the sequence number (low 32 bits of a position) above the page number.
#[inline(always)]
fn slot_word(sequence: u64, page: u32) -> u64 {
    ((sequence as u32 as u64) << 32) | u64::from(page)
}

#[inline(always)]
fn sequence_of(word: u64) -> u32 {
    (word >> 32) as u32
}

/// Up to [`CACHE_CAPACITY`] page numbers (below 2^32), put and taken by any thread.
#[repr(C)]
pub(crate) struct PageCache {
    /// The next position to take.
    head: Line,
    /// The next position to put, with the [`CLOSED`] bit.
    tail: Line,
    slots: [AtomicU64; CACHE_CAPACITY],
}

impl PageCache {
    /// An empty cache; `closed`: one that never caches a page.
    pub(crate) fn new(closed: bool) -> Self {
        PageCache {
            head: Line(AtomicU64::new(0)),
            tail: Line(AtomicU64::new(if closed { CLOSED } else { 0 })),
            slots: std::array::from_fn(|i| AtomicU64::new(slot_word(i as u64, 0))),
        }
    }

    /// Caches `page`; false (nothing changed) when the cache is full or closed, or another
    /// thread moved the same end meanwhile: the caller gives the page back instead.
    #[inline(always)]
    pub(crate) fn put(&self, page: u32) -> bool {
        // A closed tail has its top bit set, and no slot's sequence matches it.
        let tail = self.tail.0.load(Ordering::Relaxed);
        let slot = &self.slots[(tail & MASK) as usize];
        if sequence_of(slot.load(Ordering::Acquire)) != tail as u32 || tail & CLOSED != 0 {
            return false;
        }
        // SeqCst (a release and an acquire): the page's contents are published by the slot's
        // store below; this one orders the put against a drain's write of `tail`.
        if self
            .tail
            .0
            .compare_exchange(tail, tail + 1, Ordering::SeqCst, Ordering::Relaxed)
            .is_err()
        {
            return false;
        }
        slot.store(slot_word(tail + 1, page), Ordering::Release);
        true
    }

    /// Takes the page cached first among those cached (`None` when there is none, or one is
    /// still being put, or another thread took it meanwhile).
    #[inline(always)]
    pub(crate) fn take(&self) -> Option<u32> {
        let head = self.head.0.load(Ordering::Relaxed);
        let slot = &self.slots[(head & MASK) as usize];
        // Acquire: the page's contents, written before the put's store.
        let word = slot.load(Ordering::Acquire);
        if sequence_of(word) != (head + 1) as u32 {
            return None;
        }
        self.head
            .0
            .compare_exchange(head, head + 1, Ordering::SeqCst, Ordering::Relaxed)
            .ok()?;
        // Empty for the put one lap on. Until this store nobody else touches the slot: a put
        // of that position waits for this sequence number.
        slot.store(
            slot_word(head + CACHE_CAPACITY as u64, 0),
            Ordering::Release,
        );
        Some(word as u32)
    }

    /// Pages cached now (a snapshot: puts and takes may be under way).
    pub(crate) fn len(&self) -> usize {
        let tail = self.tail.0.load(Ordering::SeqCst) & !CLOSED;
        let head = self.head.0.load(Ordering::SeqCst);
        (tail.saturating_sub(head) as usize).min(CACHE_CAPACITY)
    }

    /// Closes the cache: every later put fails. The caller then [`drain`](Self::drain)s it.
    pub(crate) fn close(&self) {
        self.tail.0.fetch_or(CLOSED, Ordering::SeqCst);
    }

    /// Takes every page put before this call, into `out`; returns how many. Always writes
    /// `tail` first (see the module's documentation), even when the cache looks empty.
    #[cold]
    pub(crate) fn drain(&self, out: &mut [u32; CACHE_CAPACITY]) -> usize {
        let end = self.tail.0.fetch_or(0, Ordering::SeqCst) & !CLOSED;
        let mut n = 0;
        loop {
            let head = self.head.0.load(Ordering::SeqCst);
            if head >= end {
                return n;
            }
            let slot = &self.slots[(head & MASK) as usize];
            let word = slot.load(Ordering::Acquire);
            if sequence_of(word) == (head + 1) as u32 {
                let took = self
                    .head
                    .0
                    .compare_exchange(head, head + 1, Ordering::SeqCst, Ordering::Relaxed)
                    .is_ok();
                if took {
                    slot.store(
                        slot_word(head + CACHE_CAPACITY as u64, 0),
                        Ordering::Release,
                    );
                    out[n] = word as u32;
                    n += 1;
                }
            } else if sequence_of(word) == head as u32 {
                // A put moved `tail` past this position and is about to fill the slot.
                wait_a_moment();
            }
            // Otherwise another thread took the page at `head`: look again.
        }
    }
}

/// Lets a thread that is between its two steps of a put finish.
fn wait_a_moment() {
    #[cfg(loom)]
    loom::thread::yield_now();
    #[cfg(not(loom))]
    std::thread::yield_now();
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    fn drained(cache: &PageCache) -> Vec<u32> {
        let mut out = [0; CACHE_CAPACITY];
        let n = cache.drain(&mut out);
        out[..n].to_vec()
    }

    #[test]
    fn pages_come_out_in_the_order_they_went_in_up_to_four() {
        let cache = PageCache::new(false);
        assert_eq!(cache.take(), None, "empty");
        for page in [7, 0, u32::MAX, 3] {
            assert!(cache.put(page));
        }
        assert!(!cache.put(9), "full");
        assert_eq!(cache.len(), 4);
        assert_eq!(cache.take(), Some(7));
        assert!(cache.put(9), "room again, one lap on");
        assert_eq!(drained(&cache), [0, u32::MAX, 3, 9]);
        assert_eq!((cache.len(), cache.take()), (0, None));
        // Many laps: the sequence numbers keep telling the states apart.
        for page in 0..1000 {
            assert!(cache.put(page));
            assert!(cache.put(page + 1));
            assert_eq!(cache.take(), Some(page));
            assert_eq!(cache.take(), Some(page + 1));
        }
    }

    #[test]
    fn a_closed_cache_takes_nothing_and_keeps_what_it_held_for_the_drain() {
        let cache = PageCache::new(false);
        assert!(cache.put(1) && cache.put(2));
        cache.close();
        assert!(!cache.put(3));
        assert_eq!(cache.len(), 2);
        assert_eq!(drained(&cache), [1, 2]);
        assert!(!cache.put(4));
        let never = PageCache::new(true);
        assert!(!never.put(0));
        assert_eq!((never.len(), drained(&never)), (0, vec![]));
    }

    #[test]
    fn concurrent_puts_and_takes_lose_and_duplicate_nothing() {
        let cache = PageCache::new(false);
        let threads = 4;
        let rounds = if cfg!(miri) { 200 } else { 20_000u32 };
        let taken: Vec<Vec<u32>> = std::thread::scope(|s| {
            let workers: Vec<_> = (0..threads)
                .map(|t| {
                    let cache = &cache;
                    s.spawn(move || {
                        let mut mine = Vec::new();
                        let mut pending: Vec<u32> = Vec::new();
                        for i in 0..rounds {
                            let page = t * rounds + i;
                            if !cache.put(page) {
                                pending.push(page);
                            }
                            if let Some(page) = cache.take() {
                                mine.push(page);
                            }
                        }
                        mine.extend(pending);
                        mine
                    })
                })
                .collect();
            workers.into_iter().map(|w| w.join().unwrap()).collect()
        });
        let mut all: Vec<u32> = taken.into_iter().flatten().collect();
        all.extend(drained(&cache));
        all.sort_unstable();
        assert_eq!(all, (0..threads * rounds).collect::<Vec<_>>());
    }
}

/// A loom model of the ring itself: a put and a take racing with a drain, every interleaving.
/// (The accounting around it is modelled in `budget.rs`.)
#[cfg(all(test, loom))]
pub(crate) mod loom_model {
    use super::*;
    use loom::sync::Arc;
    use loom::thread;

    /// Every interleaving with up to `MEMSEG_LOOM_PREEMPTIONS` preemptions (default 5: the
    /// models with the cache in them take seconds so; unbounded, hours).
    pub(crate) fn loom_builder() -> loom::model::Builder {
        let mut builder = loom::model::Builder::new();
        builder.preemption_bound = Some(
            std::env::var("MEMSEG_LOOM_PREEMPTIONS").map_or(5, |v| v.parse().expect("a number")),
        );
        builder
    }

    #[test]
    fn page_cache_drain_takes_every_page_put_before_it() {
        loom_builder().check(|| {
            let cache = Arc::new(PageCache::new(false));
            assert!(cache.put(1));
            let putter = {
                let cache = cache.clone();
                thread::spawn(move || cache.put(2))
            };
            let taker = {
                let cache = cache.clone();
                thread::spawn(move || cache.take())
            };
            let mut out = [0; CACHE_CAPACITY];
            let n = cache.drain(&mut out);
            let put = putter.join().unwrap();
            let took = taker.join().unwrap();
            let mut seen: Vec<u32> = out[..n].to_vec();
            seen.extend(took);
            let mut rest = [0; CACHE_CAPACITY];
            let m = cache.drain(&mut rest);
            seen.extend(&rest[..m]);
            seen.sort_unstable();
            let expected: &[u32] = if put { &[1, 2] } else { &[1] };
            assert_eq!(seen, expected, "every page once");
        });
    }
}
