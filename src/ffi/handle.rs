//! Generational handles: the one place where a C handle becomes a Rust object.
//!
//! A handle is 64 bits: a kind tag (8 bits), a generation (24 bits) and a slot index
//! (32 bits). Each slot's generation advances when its object is removed, so a handle
//! that outlived its object (use after free, double free) no longer matches and is
//! reported as stale; a handle of another kind is reported as such; zero is never issued.
//! A slot whose generation is used up is retired rather than reused, so a stale handle can
//! never come to name a newer object.
//!
//! Slots live in chunks that are allocated once and never move, so looking up a handle
//! takes no lock. A lookup enters the slot (one atomic add on its state word, see
//! [`slot_state`](super::slot_state)) and leaves it when the call is done ([`Ref`]); a
//! removal never waits for lookups: the last one out of a removed slot drops the object, so a
//! handle freed by another thread during a call stays valid until the call returns. Free
//! slots are on lock-free stacks, one per group of threads. Segments also publish their pointer and length in the
//! slot, so the typed accessors read two words with no count at all — a seqlock-style check
//! on the state proves the pair belongs to the handle.

use std::cell::{Cell, UnsafeCell};
use std::fmt;
use std::marker::PhantomData;
use std::ops::Deref;
use std::ptr::{self, NonNull};
use std::sync::Mutex;
use std::sync::atomic::{AtomicPtr, AtomicU32, AtomicU64, AtomicUsize, Ordering, fence};

use super::slot_state::{Claim, SlotState};

/// The kinds of object a handle can name. The value is the handle's tag.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub(crate) enum HandleKind {
    Segment = 1,
    Manager = 2,
    Lease = 3,
    SharedResource = 4,
    NetworkPool = 5,
    LocalPool = 6,
    Buffer = 7,
    BufferBuilder = 8,
    BufferConsumer = 9,
    OutputView = 10,
    InputView = 11,
    SerializationBuffer = 12,
    SerializationReader = 13,
    RecordSerializer = 14,
    RecordDeserializer = 15,
    Sorter = 16,
}

impl HandleKind {
    pub(crate) fn from_tag(tag: u8) -> Option<HandleKind> {
        match tag {
            1 => Some(HandleKind::Segment),
            2 => Some(HandleKind::Manager),
            3 => Some(HandleKind::Lease),
            4 => Some(HandleKind::SharedResource),
            5 => Some(HandleKind::NetworkPool),
            6 => Some(HandleKind::LocalPool),
            7 => Some(HandleKind::Buffer),
            8 => Some(HandleKind::BufferBuilder),
            9 => Some(HandleKind::BufferConsumer),
            10 => Some(HandleKind::OutputView),
            11 => Some(HandleKind::InputView),
            12 => Some(HandleKind::SerializationBuffer),
            13 => Some(HandleKind::SerializationReader),
            14 => Some(HandleKind::RecordSerializer),
            15 => Some(HandleKind::RecordDeserializer),
            16 => Some(HandleKind::Sorter),
            _ => None,
        }
    }

    fn name(self) -> &'static str {
        match self {
            HandleKind::Segment => "segment",
            HandleKind::Manager => "manager",
            HandleKind::Lease => "lease",
            HandleKind::SharedResource => "shared resource",
            HandleKind::NetworkPool => "network buffer pool",
            HandleKind::LocalPool => "local buffer pool",
            HandleKind::Buffer => "buffer",
            HandleKind::BufferBuilder => "buffer builder",
            HandleKind::BufferConsumer => "buffer consumer",
            HandleKind::OutputView => "output view",
            HandleKind::InputView => "input view",
            HandleKind::SerializationBuffer => "serialization buffer",
            HandleKind::SerializationReader => "serialization reader",
            HandleKind::RecordSerializer => "record serializer",
            HandleKind::RecordDeserializer => "record deserializer",
            HandleKind::Sorter => "sorter",
        }
    }
}

/// Why a handle was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum HandleError {
    /// Zero, or a value that was never issued.
    Invalid(String),
    /// Issued once, but its object has been freed since.
    Stale(String),
    /// A handle of another kind of object.
    WrongKind(String),
}

impl fmt::Display for HandleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HandleError::Invalid(m) | HandleError::Stale(m) | HandleError::WrongKind(m) => {
                f.write_str(m)
            }
        }
    }
}

const INDEX_BITS: u32 = 32;
const GENERATION_BITS: u32 = 24;
const MAX_GENERATION: u64 = (1 << GENERATION_BITS) - 1;
/// Slots in chunk `k` is `FIRST_CHUNK << k`.
const FIRST_CHUNK: usize = 64;
/// Enough chunks for 2^32 - 64 slots: every index fits in 32 bits.
const CHUNK_COUNT: usize = 26;

/// Aligned to a cache line, so that threads using neighbouring handles never share one (two
/// threads making and freeing handles at once ran 3.4 times slower without it). A segment's
/// slot takes 128 bytes.
#[repr(align(64))]
struct Slot<T> {
    state: SlotState,
    /// The next free slot's index + 1 (0: none), while this one is on the free stack.
    next_free: AtomicU32,
    hot_ptr: AtomicPtr<u8>,
    hot_len: AtomicUsize,
    /// Written only by the thread that owns the empty slot (taken from the free stack, or
    /// finishing its removal); read by lookups that entered while it is live.
    value: UnsafeCell<Option<T>>,
}

impl<T> Slot<T> {
    fn new() -> Self {
        Slot {
            // Generation 0 is never issued, so no handle is zero.
            state: SlotState::new(1),
            next_free: AtomicU32::new(0),
            hot_ptr: AtomicPtr::new(ptr::null_mut()),
            hot_len: AtomicUsize::new(0),
            value: UnsafeCell::new(None),
        }
    }
}

/// An object of a [`HandleTable`] in use: the object stays in place until this is dropped.
/// A concurrent free of its handle is finished (the object dropped) by the last `Ref` to go;
/// the `Ref` a removal returns is the removed object, dropped with it unless another call
/// still uses it.
pub(crate) struct Ref<'a, T> {
    // Named apart from any field of `T`, which the `Deref` makes look like fields of `Ref`.
    ref_table: &'a HandleTable<T>,
    ref_slot: &'a Slot<T>,
    ref_index: usize,
    /// A pointer, not a reference: the drop may free the object, which a reference held
    /// across the drop must not see.
    ref_object: NonNull<T>,
    /// The removal that returned this `Ref` had the slot to itself: it owns the object and
    /// the slot, and finishes without leaving.
    ref_owns: bool,
}

impl<T> Deref for Ref<'_, T> {
    type Target = T;

    #[inline(always)]
    fn deref(&self) -> &T {
        // SAFETY: the object stays in its slot while this `Ref` is in it.
        unsafe { self.ref_object.as_ref() }
    }
}

impl<T> Drop for Ref<'_, T> {
    #[inline(always)]
    fn drop(&mut self) {
        if self.ref_owns || self.ref_slot.state.leave() {
            self.ref_table.finish_removal(self.ref_slot, self.ref_index);
        }
    }
}

/// Free stacks per table: a thread frees slots onto its own stack and takes them from it
/// first, so threads that make and free handles at once neither contend on one word nor
/// share the slots they recycle.
const SHARDS: usize = 8;

/// One thread group's free slot indexes, last in first out (a slot just freed is warm in the
/// cache): a Treiber stack threaded through the slots, whose head carries a count against
/// ABA. On cache lines of its own.
#[repr(align(128))]
struct Shard {
    /// pushes and pops so far << 32 | (top index + 1), 0 when empty.
    head: AtomicU64,
}

/// The shard of the calling thread: threads are dealt out round robin on their first call.
#[inline]
fn home_shard() -> usize {
    thread_local! {
        static HOME: Cell<usize> = const { Cell::new(usize::MAX) };
    }
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    // A thread that is exiting (a thread-local destructor freeing a handle) has no home any
    // more: shard 0 serves it.
    HOME.try_with(|home| {
        if home.get() == usize::MAX {
            home.set(NEXT.fetch_add(1, Ordering::Relaxed) % SHARDS);
        }
        home.get()
    })
    .unwrap_or(0)
}

/// The decoded parts of a handle.
#[derive(Clone, Copy)]
struct Parts {
    tag: u8,
    generation: u64,
    index: usize,
}

#[inline(always)]
fn decode(bits: u64) -> Parts {
    Parts {
        tag: (bits >> (INDEX_BITS + GENERATION_BITS)) as u8,
        generation: (bits >> INDEX_BITS) & MAX_GENERATION,
        index: (bits as u32) as usize,
    }
}

fn encode(kind: HandleKind, generation: u64, index: usize) -> u64 {
    ((kind as u64) << (INDEX_BITS + GENERATION_BITS)) | (generation << INDEX_BITS) | index as u64
}

/// Chunk number and position in it of slot `index`.
#[inline(always)]
fn locate(index: usize) -> (usize, usize) {
    let q = index / FIRST_CHUNK + 1;
    let chunk = (usize::BITS - 1 - q.leading_zeros()) as usize;
    (chunk, index - FIRST_CHUNK * ((1 << chunk) - 1))
}

/// A table of objects of one kind, named by generational handles.
pub(crate) struct HandleTable<T> {
    kind: HandleKind,
    chunks: [AtomicPtr<Slot<T>>; CHUNK_COUNT],
    shards: [Shard; SHARDS],
    /// Number of chunks allocated; held while a chunk is added.
    grow: Mutex<usize>,
    /// The table hands out `&T` to any thread, and drops a `T` on any thread.
    objects: PhantomData<T>,
}

// SAFETY: a slot's object is written only by the one thread that owns the empty slot, and
// shared (as `&T`, and dropped by whichever thread leaves last, hence `T: Send + Sync`) only
// while the slot protocol keeps it in place; every other field is atomic or locked.
unsafe impl<T: Send + Sync> Sync for HandleTable<T> {}
// SAFETY: as above: the table owns `T`s.
unsafe impl<T: Send + Sync> Send for HandleTable<T> {}

impl<T> HandleTable<T> {
    pub(crate) const fn new(kind: HandleKind) -> Self {
        HandleTable {
            kind,
            chunks: [const { AtomicPtr::new(ptr::null_mut()) }; CHUNK_COUNT],
            shards: [const {
                Shard {
                    head: AtomicU64::new(0),
                }
            }; SHARDS],
            grow: Mutex::new(0),
            objects: PhantomData,
        }
    }

    /// Number of objects in the table now (a snapshot while other threads insert and
    /// remove), counted slot by slot: a diagnostic, so the fast paths keep no count.
    pub(crate) fn live_count(&self) -> usize {
        (0..)
            .map_while(|index| self.slot(index))
            .filter(|slot| slot.state.load(Ordering::Acquire).is_live())
            .count()
    }

    #[inline(always)]
    fn slot(&self, index: usize) -> Option<&Slot<T>> {
        let (chunk, pos) = locate(index);
        let base = self.chunks.get(chunk)?.load(Ordering::Acquire);
        if base.is_null() {
            return None;
        }
        // SAFETY: a published chunk holds `FIRST_CHUNK << chunk` initialized slots and
        // is never freed or moved; `locate` keeps `pos` below that count.
        Some(unsafe { &*base.add(pos) })
    }

    /// Puts the empty slot `index` on the calling thread's free stack.
    fn push_free(&self, index: usize) {
        let slot = self.slot(index).expect("a freed index has a slot");
        let free = &self.shards[home_shard()].head;
        let mut head = free.load(Ordering::Relaxed);
        loop {
            slot.next_free.store(head as u32, Ordering::Relaxed);
            let next = (head >> 32).wrapping_add(1) << 32 | (index as u64 + 1);
            // Release: the slot's emptying comes before its next taker's use.
            match free.compare_exchange_weak(head, next, Ordering::Release, Ordering::Relaxed) {
                Ok(_) => return,
                Err(now) => head = now,
            }
        }
    }

    /// Takes an empty slot off the free stack of shard `shard`.
    fn pop_free(&self, shard: usize) -> Option<usize> {
        let free = &self.shards[shard].head;
        let mut head = free.load(Ordering::Acquire);
        loop {
            let index = (head as u32).checked_sub(1)? as usize;
            // Another thread may take this slot (and push it back) first: then `next_free`
            // read here is stale, but the head's count has moved on and the swap fails.
            let below = self
                .slot(index)
                .expect("a free index has a slot")
                .next_free
                .load(Ordering::Relaxed);
            let next = (head >> 32).wrapping_add(1) << 32 | below as u64;
            match free.compare_exchange_weak(head, next, Ordering::Acquire, Ordering::Acquire) {
                Ok(_) => return Some(index),
                Err(now) => head = now,
            }
        }
    }

    /// Takes a free slot index: the calling thread's, else another's, else from a new chunk.
    #[inline]
    fn take_index(&self) -> Option<usize> {
        self.pop_free(home_shard())
            .or_else(|| self.take_index_elsewhere())
    }

    #[cold]
    #[inline(never)]
    fn take_index_elsewhere(&self) -> Option<usize> {
        let home = home_shard();
        let steal = || (1..SHARDS).find_map(|i| self.pop_free((home + i) % SHARDS));
        if let Some(index) = steal() {
            return Some(index);
        }
        let mut allocated = self.grow.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(index) = self.pop_free(home).or_else(steal) {
            return Some(index);
        }
        let chunk = *allocated;
        if chunk == CHUNK_COUNT {
            return None;
        }
        let len = FIRST_CHUNK << chunk;
        let slots: Box<[Slot<T>]> = (0..len).map(|_| Slot::new()).collect();
        let first = FIRST_CHUNK * ((1 << chunk) - 1);
        // Chunks stay for the life of the process: lock-free readers may hold a slot
        // reference at any time.
        let base = Box::leak(slots).as_mut_ptr();
        self.chunks[chunk].store(base, Ordering::Release);
        *allocated += 1;
        // Highest first, so the stack hands the chunk out in index order.
        for index in (first + 1..first + len).rev() {
            self.push_free(index);
        }
        Some(first)
    }

    /// Makes an object with `make` and stores it under a new handle.
    ///
    /// `make` returns the object and the (pointer, length) pair that the lock-free
    /// [`hot`](Self::hot) lookup returns (kinds without one pass `(null, 0)`). A slot is
    /// taken first, so once `make` has run nothing can fail: an object whose drop has
    /// effects (a foreign segment's release callback) is never dropped by a failed insert.
    pub(crate) fn insert_with<E>(
        &self,
        make: impl FnOnce() -> Result<(T, (*mut u8, usize)), E>,
        table_full: impl FnOnce() -> E,
    ) -> Result<u64, E> {
        let Some(index) = self.take_index() else {
            return Err(table_full());
        };
        let (value, hot) = match make() {
            Ok(made) => made,
            Err(e) => {
                self.push_free(index);
                return Err(e);
            }
        };
        let slot = self.slot(index).expect("a taken index has a slot");
        // Pairs with the Acquire fence in `try_hot`: a reader that sees these stores also
        // sees the earlier removal's state, and rejects the pair.
        fence(Ordering::Release);
        slot.hot_ptr.store(hot.0, Ordering::Relaxed);
        slot.hot_len.store(hot.1, Ordering::Relaxed);
        // SAFETY: the slot came off the free stack, so this thread owns its object: it is not
        // live, and lookups that enter it now fail without reading the object.
        unsafe { *slot.value.get() = Some(value) };
        let generation = slot.state.publish();
        Ok(encode(self.kind, generation, index))
    }

    #[cfg(all(test, not(loom)))]
    fn insert(&self, value: T, hot: (*mut u8, usize)) -> Option<u64> {
        self.insert_with(|| Ok::<_, ()>((value, hot)), || ()).ok()
    }

    /// The (pointer, length) pair published for a live handle, without a lock.
    #[inline(always)]
    pub(crate) fn hot(&self, bits: u64) -> Result<(*mut u8, usize), HandleError> {
        match self.try_hot(bits) {
            Some(pair) => Ok(pair),
            None => Err(self.refuse(bits)),
        }
    }

    /// [`hot`](Self::hot) without the explanation: `None` for anything but a live handle.
    ///
    /// Cannot panic (no indexing, no allocation, no arithmetic that can overflow), so the
    /// typed accessors run it outside the panic boundary on their fast path.
    #[inline(always)]
    pub(crate) fn try_hot(&self, bits: u64) -> Option<(*mut u8, usize)> {
        let parts = decode(bits);
        if parts.tag != self.kind as u8 {
            return None;
        }
        let slot = self.slot(parts.index)?;
        if !slot
            .state
            .load(Ordering::Acquire)
            .is_live_as(parts.generation)
        {
            return None;
        }
        let ptr = slot.hot_ptr.load(Ordering::Relaxed);
        let len = slot.hot_len.load(Ordering::Relaxed);
        fence(Ordering::Acquire);
        if !slot
            .state
            .load(Ordering::Relaxed)
            .is_live_as(parts.generation)
        {
            return None;
        }
        Some((ptr, len))
    }

    /// Enters the slot of a live handle: the object and where it is, or `None`.
    #[inline(always)]
    fn enter(&self, bits: u64) -> Option<Ref<'_, T>> {
        let parts = decode(bits);
        if parts.tag != self.kind as u8 {
            return None;
        }
        let slot = self.slot(parts.index)?;
        match slot.state.enter(parts.generation) {
            Ok(()) => {
                // SAFETY: the slot is live and this lookup is in it, so its object is stored
                // and stays until the `Ref` leaves.
                let value = unsafe { &*slot.value.get() };
                let value = value.as_ref().expect("a live slot holds its object");
                Some(Ref {
                    ref_table: self,
                    ref_slot: slot,
                    ref_index: parts.index,
                    ref_object: NonNull::from(value),
                    ref_owns: false,
                })
            }
            Err(finish) => {
                if finish {
                    self.finish_removal(slot, parts.index);
                }
                None
            }
        }
    }

    /// The object of a live handle, kept in place while the caller holds the [`Ref`].
    #[inline]
    pub(crate) fn get(&self, bits: u64) -> Result<Ref<'_, T>, HandleError> {
        self.enter(bits).ok_or_else(|| self.refuse(bits))
    }

    /// Removes the object of a live handle; the handle (and every copy) is stale after.
    pub(crate) fn remove(&self, bits: u64) -> Result<Ref<'_, T>, HandleError> {
        self.remove_if(bits, |_| Ok(()))
    }

    /// The body of every `_free`/`_destroy`: a zero handle is a no-op (`None`); otherwise the
    /// object of a live handle is removed, and a stale, forged or wrong-kind one refused.
    pub(crate) fn free(&self, bits: u64) -> Result<Option<Ref<'_, T>>, HandleError> {
        if bits == 0 {
            return Ok(None);
        }
        self.remove(bits).map(Some)
    }

    /// Removes the object of a live handle if `allow` accepts it; otherwise leaves it in
    /// place and returns `allow`'s error. Removals of one handle run their `allow` one at a
    /// time (lookups go on meanwhile), so no other thread removes the object between the
    /// check and the removal. The object is returned in use: it is dropped with the `Ref`,
    /// or later by the last call still using it.
    pub(crate) fn remove_if<E: From<HandleError>>(
        &self,
        bits: u64,
        allow: impl FnOnce(&T) -> Result<(), E>,
    ) -> Result<Ref<'_, T>, E> {
        let Some(entered) = self.enter(bits) else {
            return Err(self.refuse(bits).into());
        };
        let Some(removal) = entered
            .ref_slot
            .state
            .begin_removal(decode(bits).generation)
        else {
            drop(entered);
            return Err(self.refuse(bits).into());
        };
        // A refusal (or a panic) drops `removal`, which leaves the object live.
        allow(&entered)?;
        match removal.claim() {
            Claim::Alone => {
                // The claim took this lookup's place in the slot along: the `Ref` now owns
                // the slot and drops the object without leaving.
                let mut owner = entered;
                owner.ref_owns = true;
                Ok(owner)
            }
            // Lookups are in the slot: the last to leave (maybe this one) drops the object.
            Claim::Shared => Ok(entered),
        }
    }

    /// Takes the object out of a slot that was removed and left by every lookup (its state
    /// shows the next generation), and recycles the slot unless its generations are used up.
    fn empty(&self, slot: &Slot<T>, index: usize) -> T {
        // SAFETY: the state moved on from the removed generation with no lookup in the slot,
        // and no other thread owns it until it is pushed below: this thread owns the object.
        let value = unsafe { (*slot.value.get()).take() };
        if slot.state.load(Ordering::Relaxed).generation() <= MAX_GENERATION {
            self.push_free(index);
        }
        value.expect("a removed slot holds its object")
    }

    /// Drops the object of a removed slot that its last lookup has just left.
    #[cold]
    #[inline(never)]
    fn finish_removal(&self, slot: &Slot<T>, index: usize) {
        drop(self.empty(slot, index));
    }

    /// Whether `bits` names an object of this table that was issued and has since been
    /// removed (`Ok(true)`), or is live (`Ok(false)`); any other value is refused.
    pub(crate) fn is_removed(&self, bits: u64) -> Result<bool, HandleError> {
        match self.hot(bits) {
            Ok(_) => Ok(false),
            Err(HandleError::Stale(_)) => Ok(true),
            Err(e) => Err(e),
        }
    }

    /// Explains why `bits` is not a live handle of this table.
    #[cold]
    #[inline(never)]
    fn refuse(&self, bits: u64) -> HandleError {
        let want = self.kind.name();
        if bits == 0 {
            return HandleError::Invalid(format!("null {want} handle (zero)"));
        }
        let parts = decode(bits);
        if parts.tag != self.kind as u8 {
            return match HandleKind::from_tag(parts.tag) {
                Some(other) => HandleError::WrongKind(format!(
                    "handle {bits:#018x} is a {} handle, not a {want} handle",
                    other.name()
                )),
                None => HandleError::Invalid(format!(
                    "{bits:#018x} is not a {want} handle (unknown kind tag {})",
                    parts.tag
                )),
            };
        }
        let current = self
            .slot(parts.index)
            .map(|slot| slot.state.load(Ordering::Acquire));
        match current {
            // A slot's state holds the generation it issues next (not live) or the live
            // one; every generation below it was issued and has been freed, and so has the
            // current one while its removal waits for lookups to leave.
            Some(state)
                if parts.generation != 0
                    && (parts.generation < state.generation()
                        || parts.generation == state.generation() && state.is_freeing()) =>
            {
                HandleError::Stale(format!(
                    "{want} handle {bits:#018x} is stale: its {want} was already freed"
                ))
            }
            Some(state) if state.generation() == parts.generation && state.is_live() => {
                // Live after all: it was freed and re-issued with a newer generation
                // between the lookup and now. Only possible under a host race.
                HandleError::Stale(format!(
                    "{want} handle {bits:#018x} changed while in use (freed by another thread)"
                ))
            }
            _ => HandleError::Invalid(format!("{bits:#018x} was never issued as a {want} handle")),
        }
    }
}

impl<T> Drop for HandleTable<T> {
    /// Frees the chunks (and the objects still in them). The process-wide tables are
    /// statics and never dropped; a table that is dropped (in tests) has no readers left,
    /// because every slot reference borrows the table.
    fn drop(&mut self) {
        for (chunk, base) in self.chunks.iter_mut().enumerate() {
            let base = *base.get_mut();
            if !base.is_null() {
                let slots = ptr::slice_from_raw_parts_mut(base, FIRST_CHUNK << chunk);
                // SAFETY: `base` is the pointer `take_index` leaked from a boxed slice of
                // exactly `FIRST_CHUNK << chunk` slots, and `&mut self` rules out any
                // slot reference still in use; each chunk is freed once.
                drop(unsafe { Box::from_raw(slots) });
            }
        }
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn locate_covers_every_index_once() {
        let mut expected = (0usize, 0usize);
        for index in 0..FIRST_CHUNK * 15 {
            assert_eq!(locate(index), expected, "index {index}");
            expected.1 += 1;
            if expected.1 == FIRST_CHUNK << expected.0 {
                expected = (expected.0 + 1, 0);
            }
        }
        let last = FIRST_CHUNK * ((1 << CHUNK_COUNT) - 1) - 1;
        assert_eq!(
            locate(last),
            (CHUNK_COUNT - 1, (FIRST_CHUNK << (CHUNK_COUNT - 1)) - 1)
        );
        assert!(last <= u32::MAX as usize);
    }

    #[test]
    fn threads_recycle_their_own_slots_take_others_and_count_together() {
        let table: HandleTable<u32> = HandleTable::new(HandleKind::Segment);
        // The first thread's chunk goes to its own free stack; a thread with an empty stack
        // takes slots from it, and frees them onto its own.
        let first = table.insert(1, (ptr::null_mut(), 0)).unwrap();
        let (made_there, index_there) = std::thread::scope(|s| {
            s.spawn(|| {
                let a = table.insert(2, (ptr::null_mut(), 0)).unwrap();
                let index = decode(a).index;
                table.remove(a).unwrap();
                let b = table.insert(3, (ptr::null_mut(), 0)).unwrap();
                assert_eq!(decode(b).index, index, "its own freed slot first");
                // Removed here, made on another thread: counted on both sides.
                table.remove(first).unwrap();
                (b, index)
            })
            .join()
            .unwrap()
        });
        assert_eq!(table.live_count(), 1);
        table.remove(made_there).unwrap();
        assert_eq!(table.live_count(), 0);
        let mut indexes: Vec<usize> = (0..FIRST_CHUNK)
            .map(|i| decode(table.insert(i as u32, (ptr::null_mut(), 0)).unwrap()).index)
            .collect();
        indexes.sort_unstable();
        assert_eq!(
            indexes,
            (0..FIRST_CHUNK).collect::<Vec<_>>(),
            "every slot of the first chunk, wherever it was freed (slot {index_there} too)"
        );
    }

    #[test]
    fn handles_go_stale_and_slots_are_reused_with_new_generations() {
        let table: HandleTable<u32> = HandleTable::new(HandleKind::Segment);
        let a = table.insert(7, (ptr::null_mut(), 3)).unwrap();
        assert_eq!(*table.get(a).unwrap(), 7);
        assert_eq!(table.hot(a).unwrap().1, 3);
        assert_eq!(table.live_count(), 1);
        assert_eq!(*table.remove(a).unwrap(), 7);
        assert!(matches!(table.get(a), Err(HandleError::Stale(_))));
        assert!(matches!(table.remove(a), Err(HandleError::Stale(_))));
        assert!(table.is_removed(a).unwrap());
        // The free stack is last in, first out: the freed slot comes back at once.
        let b = table.insert(8, (ptr::null_mut(), 0)).unwrap();
        assert_eq!(decode(b).index, decode(a).index);
        assert_ne!(a, b);
        assert_eq!(decode(b).generation, decode(a).generation + 1);
        assert!(matches!(table.hot(a), Err(HandleError::Stale(_))));
        assert!(!table.is_removed(b).unwrap());
    }

    /// An object that counts its drops and poisons itself when dropped.
    struct Canary {
        value: AtomicU64,
        drops: Arc<AtomicUsize>,
    }

    impl Canary {
        fn new(value: u64, drops: &Arc<AtomicUsize>) -> Canary {
            Canary {
                value: AtomicU64::new(value),
                drops: Arc::clone(drops),
            }
        }
    }

    impl Drop for Canary {
        fn drop(&mut self) {
            self.value.store(0, Ordering::Relaxed);
            self.drops.fetch_add(1, Ordering::Relaxed);
        }
    }

    #[test]
    fn a_lookup_keeps_its_object_while_the_handle_is_freed() {
        let table: HandleTable<Canary> = HandleTable::new(HandleKind::Segment);
        let drops = Arc::new(AtomicUsize::new(0));
        let a = table
            .insert(Canary::new(42, &drops), (ptr::null_mut(), 0))
            .unwrap();
        let held = table.get(a).unwrap();
        let removed = table.remove(a).unwrap();
        assert!(matches!(table.get(a), Err(HandleError::Stale(_))));
        assert!(matches!(table.remove(a), Err(HandleError::Stale(_))));
        assert!(table.is_removed(a).unwrap());
        assert_eq!(table.live_count(), 0);
        drop(removed);
        assert_eq!(drops.load(Ordering::Relaxed), 0, "the lookup still uses it");
        assert_eq!(held.value.load(Ordering::Relaxed), 42);
        // Its slot is not reused while the lookup is in it.
        let b = table
            .insert(Canary::new(7, &drops), (ptr::null_mut(), 0))
            .unwrap();
        assert_ne!(decode(b).index, decode(a).index);
        drop(held);
        assert_eq!(
            drops.load(Ordering::Relaxed),
            1,
            "the last lookup out drops it"
        );
        let c = table
            .insert(Canary::new(8, &drops), (ptr::null_mut(), 0))
            .unwrap();
        assert_eq!(decode(c).index, decode(a).index);
        assert_eq!(decode(c).generation, decode(a).generation + 1);
        assert!(matches!(table.get(a), Err(HandleError::Stale(_))));
    }

    #[test]
    fn threads_looking_up_and_freeing_the_same_handles_never_see_a_freed_object() {
        const THREADS: usize = if cfg!(miri) { 3 } else { 4 };
        const ROUNDS: u64 = if cfg!(miri) { 40 } else { 20_000 };
        const CELLS: usize = 3;
        let table: HandleTable<Canary> = HandleTable::new(HandleKind::Segment);
        let drops = Arc::new(AtomicUsize::new(0));
        let inserted = AtomicUsize::new(0);
        // Each cell holds a handle whose object's value is the handle itself (`FRESH` until
        // its inserter sets it; a dropped object reads 0).
        const FRESH: u64 = 1;
        let insert = || {
            let made = table
                .insert_with(
                    || {
                        inserted.fetch_add(1, Ordering::Relaxed);
                        Ok::<_, ()>((Canary::new(FRESH, &drops), (ptr::null_mut(), 0)))
                    },
                    || (),
                )
                .unwrap();
            table
                .get(made)
                .unwrap()
                .value
                .store(made, Ordering::Relaxed);
            made
        };
        let cells: Vec<AtomicU64> = (0..CELLS).map(|_| AtomicU64::new(insert())).collect();
        std::thread::scope(|s| {
            for t in 0..THREADS {
                let (table, cells, insert) = (&table, &cells, &insert);
                s.spawn(move || {
                    for round in 0..ROUNDS {
                        let cell = &cells[(round as usize + t) % CELLS];
                        let bits = cell.load(Ordering::Acquire);
                        if (round + t as u64) % 4 == 0 {
                            // Free it and put a new one in its place (one thread wins).
                            match table.remove(bits) {
                                Ok(object) => {
                                    let value = object.value.load(Ordering::Relaxed);
                                    assert!(value == bits || value == FRESH, "{value:#x}");
                                    drop(object);
                                    cell.store(insert(), Ordering::Release);
                                }
                                Err(e) => assert!(matches!(e, HandleError::Stale(_)), "{e}"),
                            }
                        } else {
                            match table.get(bits) {
                                Ok(object) => {
                                    // Set by the inserting thread just after the insert.
                                    let value = object.value.load(Ordering::Relaxed);
                                    assert!(value == bits || value == FRESH, "{value:#x}");
                                    std::hint::spin_loop();
                                    assert_eq!(object.value.load(Ordering::Relaxed), value);
                                }
                                Err(e) => assert!(matches!(e, HandleError::Stale(_)), "{e}"),
                            }
                        }
                    }
                });
            }
        });
        for cell in &cells {
            drop(table.remove(cell.load(Ordering::Relaxed)).unwrap());
        }
        assert_eq!(table.live_count(), 0);
        assert_eq!(
            drops.load(Ordering::Relaxed),
            inserted.load(Ordering::Relaxed),
            "every object dropped once"
        );
    }

    #[test]
    fn remove_if_leaves_a_refused_object_in_place() {
        let table: HandleTable<u32> = HandleTable::new(HandleKind::Segment);
        let a = table.insert(7, (ptr::null_mut(), 0)).unwrap();
        let refused = table.remove_if(a, |&v| {
            if v == 7 {
                Err(HandleError::Invalid("kept".into()))
            } else {
                Ok(())
            }
        });
        assert_eq!(refused.err(), Some(HandleError::Invalid("kept".into())));
        assert_eq!(*table.get(a).unwrap(), 7);
        assert_eq!(table.live_count(), 1);
        assert_eq!(
            *table.remove_if(a, |_| Ok::<_, HandleError>(())).unwrap(),
            7
        );
        assert!(matches!(table.get(a), Err(HandleError::Stale(_))));
    }

    #[test]
    fn zero_forged_and_wrong_kind_handles_are_refused() {
        let table: HandleTable<u32> = HandleTable::new(HandleKind::Segment);
        let a = table.insert(1, (ptr::null_mut(), 0)).unwrap();
        assert!(matches!(table.get(0), Err(HandleError::Invalid(_))));
        // Generation from the future.
        assert!(matches!(
            table.get(a + (1 << INDEX_BITS)),
            Err(HandleError::Invalid(_))
        ));
        // Index never allocated.
        assert!(matches!(
            table.get(a | 0xFFFF_FF00),
            Err(HandleError::Invalid(_))
        ));
        // Unknown tag.
        assert!(matches!(
            table.get(a ^ (0x80 << 56)),
            Err(HandleError::Invalid(_))
        ));
    }

    #[test]
    fn exhausted_generations_retire_the_slot() {
        let table: HandleTable<u32> = HandleTable::new(HandleKind::Segment);
        let first: Vec<u64> = (0..FIRST_CHUNK)
            .map(|_| table.insert(1, (ptr::null_mut(), 0)).unwrap())
            .collect();
        // Age slot 5 to its last generation, then free it.
        let index = decode(first[5]).index;
        table.slot(index).unwrap().state.set_live(MAX_GENERATION);
        let last = encode(HandleKind::Segment, MAX_GENERATION, index);
        table.remove(last).unwrap();
        assert!(matches!(table.get(last), Err(HandleError::Stale(_))));
        // The retired slot is not reused: the next handle comes from a new chunk.
        let next = table.insert(2, (ptr::null_mut(), 0)).unwrap();
        assert_eq!(decode(next).index, FIRST_CHUNK);
    }
}
