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
//! takes no lock. Objects are held as `Arc`s: control operations clone the `Arc` under the
//! slot's lock and keep the object alive for the call. Segments also publish their pointer
//! and length in the slot, so the typed accessors read two words with no lock and no
//! reference count — a seqlock-style check on the generation proves the pair belongs to
//! the handle.

use std::fmt;
use std::ptr;
use std::sync::atomic::{AtomicPtr, AtomicU64, AtomicUsize, Ordering, fence};
use std::sync::{Arc, Mutex, MutexGuard};

use crossbeam_queue::SegQueue;

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
    fn from_tag(tag: u8) -> Option<HandleKind> {
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

/// A slot's state word: generation << 1 | live.
const LIVE: u64 = 1;

struct Slot<T> {
    state: AtomicU64,
    hot_ptr: AtomicPtr<u8>,
    hot_len: AtomicUsize,
    value: Mutex<Option<Arc<T>>>,
}

impl<T> Slot<T> {
    fn new() -> Self {
        Slot {
            state: AtomicU64::new(1 << 1),
            hot_ptr: AtomicPtr::new(ptr::null_mut()),
            hot_len: AtomicUsize::new(0),
            value: Mutex::new(None),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Option<Arc<T>>> {
        // A panic while holding a slot lock cannot leave the slot half-updated (every
        // update is a single assignment), so a poisoned lock is still consistent.
        self.value.lock().unwrap_or_else(|e| e.into_inner())
    }
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
    free: SegQueue<u32>,
    /// Number of chunks allocated; held while a chunk is added.
    grow: Mutex<usize>,
    live: AtomicUsize,
}

impl<T> HandleTable<T> {
    pub(crate) const fn new(kind: HandleKind) -> Self {
        HandleTable {
            kind,
            chunks: [const { AtomicPtr::new(ptr::null_mut()) }; CHUNK_COUNT],
            free: SegQueue::new(),
            grow: Mutex::new(0),
            live: AtomicUsize::new(0),
        }
    }

    /// Number of objects in the table now.
    pub(crate) fn live_count(&self) -> usize {
        self.live.load(Ordering::Relaxed)
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

    /// Takes a free slot index, adding a chunk when none is free.
    fn take_index(&self) -> Option<usize> {
        if let Some(index) = self.free.pop() {
            return Some(index as usize);
        }
        let mut allocated = self.grow.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(index) = self.free.pop() {
            return Some(index as usize);
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
        for index in first + 1..first + len {
            self.free.push(index as u32);
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
        make: impl FnOnce() -> Result<(Arc<T>, (*mut u8, usize)), E>,
        table_full: impl FnOnce() -> E,
    ) -> Result<u64, E> {
        let Some(index) = self.take_index() else {
            return Err(table_full());
        };
        let (value, hot) = match make() {
            Ok(made) => made,
            Err(e) => {
                self.free.push(index as u32);
                return Err(e);
            }
        };
        let slot = self.slot(index).expect("a taken index has a slot");
        let mut guard = slot.lock();
        let generation = slot.state.load(Ordering::Relaxed) >> 1;
        // Pairs with the Acquire fence in `hot`: a reader that sees these stores also
        // sees the earlier removal's state, and rejects the pair.
        fence(Ordering::Release);
        slot.hot_ptr.store(hot.0, Ordering::Relaxed);
        slot.hot_len.store(hot.1, Ordering::Relaxed);
        *guard = Some(value);
        // Counted before the handle is live: a `remove` (which must see it live, under
        // this lock) then always comes after this increment, so the count never wraps.
        self.live.fetch_add(1, Ordering::Relaxed);
        slot.state.store(generation << 1 | LIVE, Ordering::Release);
        drop(guard);
        Ok(encode(self.kind, generation, index))
    }

    #[cfg(test)]
    fn insert(&self, value: Arc<T>, hot: (*mut u8, usize)) -> Option<u64> {
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
        let expected = parts.generation << 1 | LIVE;
        if slot.state.load(Ordering::Acquire) != expected {
            return None;
        }
        let ptr = slot.hot_ptr.load(Ordering::Relaxed);
        let len = slot.hot_len.load(Ordering::Relaxed);
        fence(Ordering::Acquire);
        if slot.state.load(Ordering::Relaxed) != expected {
            return None;
        }
        Some((ptr, len))
    }

    /// The object of a live handle, kept alive for as long as the caller holds the `Arc`.
    pub(crate) fn get(&self, bits: u64) -> Result<Arc<T>, HandleError> {
        let parts = decode(bits);
        if parts.tag == self.kind as u8 {
            if let Some(slot) = self.slot(parts.index) {
                let guard = slot.lock();
                if slot.state.load(Ordering::Relaxed) == parts.generation << 1 | LIVE {
                    if let Some(value) = guard.as_ref() {
                        return Ok(Arc::clone(value));
                    }
                }
            }
        }
        Err(self.refuse(bits))
    }

    /// Removes the object of a live handle; the handle (and every copy) is stale after.
    pub(crate) fn remove(&self, bits: u64) -> Result<Arc<T>, HandleError> {
        self.remove_if(bits, |_| Ok(()))
    }

    /// The body of every `_free`/`_destroy`: a zero handle is a no-op (`None`); otherwise the
    /// object of a live handle is removed, and a stale, forged or wrong-kind one refused.
    pub(crate) fn free(&self, bits: u64) -> Result<Option<Arc<T>>, HandleError> {
        if bits == 0 {
            return Ok(None);
        }
        self.remove(bits).map(Some)
    }

    /// Removes the object of a live handle if `allow` accepts it; otherwise leaves it in
    /// place and returns `allow`'s error. The check runs under the slot's lock, so no other
    /// thread removes the object between the check and the removal.
    pub(crate) fn remove_if<E: From<HandleError>>(
        &self,
        bits: u64,
        allow: impl FnOnce(&T) -> Result<(), E>,
    ) -> Result<Arc<T>, E> {
        let parts = decode(bits);
        if parts.tag == self.kind as u8 {
            if let Some(slot) = self.slot(parts.index) {
                let mut guard = slot.lock();
                if slot.state.load(Ordering::Relaxed) == parts.generation << 1 | LIVE {
                    allow(guard.as_deref().expect("a live slot holds its object"))?;
                    let next = parts.generation + 1;
                    slot.state.store(next << 1, Ordering::Release);
                    let value = guard.take().expect("a live slot holds its object");
                    drop(guard);
                    self.live.fetch_sub(1, Ordering::Relaxed);
                    if next <= MAX_GENERATION {
                        self.free.push(parts.index as u32);
                    }
                    return Ok(value);
                }
            }
        }
        Err(self.refuse(bits).into())
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
            // one; every generation below it was issued and has been freed.
            Some(state) if parts.generation != 0 && parts.generation < state >> 1 => {
                HandleError::Stale(format!(
                    "{want} handle {bits:#018x} is stale: its {want} was already freed"
                ))
            }
            Some(state) if state >> 1 == parts.generation && state & LIVE == LIVE => {
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

#[cfg(test)]
mod tests {
    use super::*;

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
    fn handles_go_stale_and_slots_are_reused_with_new_generations() {
        let table: HandleTable<u32> = HandleTable::new(HandleKind::Segment);
        let a = table.insert(Arc::new(7), (ptr::null_mut(), 3)).unwrap();
        assert_eq!(*table.get(a).unwrap(), 7);
        assert_eq!(table.hot(a).unwrap().1, 3);
        assert_eq!(table.live_count(), 1);
        assert_eq!(*table.remove(a).unwrap(), 7);
        assert!(matches!(table.get(a), Err(HandleError::Stale(_))));
        assert!(matches!(table.remove(a), Err(HandleError::Stale(_))));
        assert!(table.is_removed(a).unwrap());
        // The free list is first in, first out: the freed slot comes back once the
        // chunk's other free slots have been handed out.
        let b = (0..FIRST_CHUNK)
            .map(|_| table.insert(Arc::new(8), (ptr::null_mut(), 0)).unwrap())
            .find(|&b| decode(b).index == decode(a).index)
            .expect("the slot is reused");
        assert_ne!(a, b);
        assert_eq!(decode(b).generation, decode(a).generation + 1);
        assert!(matches!(table.hot(a), Err(HandleError::Stale(_))));
        assert!(!table.is_removed(b).unwrap());
    }

    #[test]
    fn remove_if_leaves_a_refused_object_in_place() {
        let table: HandleTable<u32> = HandleTable::new(HandleKind::Segment);
        let a = table.insert(Arc::new(7), (ptr::null_mut(), 0)).unwrap();
        let refused = table.remove_if(a, |&v| {
            if v == 7 {
                Err(HandleError::Invalid("kept".into()))
            } else {
                Ok(())
            }
        });
        assert_eq!(refused.unwrap_err(), HandleError::Invalid("kept".into()));
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
        let a = table.insert(Arc::new(1), (ptr::null_mut(), 0)).unwrap();
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
            .map(|_| table.insert(Arc::new(1), (ptr::null_mut(), 0)).unwrap())
            .collect();
        // Age slot 5 to its last generation, then free it.
        let index = decode(first[5]).index;
        let slot = table.slot(index).unwrap();
        slot.state
            .store(MAX_GENERATION << 1 | LIVE, Ordering::Relaxed);
        let last = encode(HandleKind::Segment, MAX_GENERATION, index);
        table.remove(last).unwrap();
        assert!(matches!(table.get(last), Err(HandleError::Stale(_))));
        // The retired slot is not reused: the next handle comes from a new chunk.
        let next = table.insert(Arc::new(2), (ptr::null_mut(), 0)).unwrap();
        assert_eq!(decode(next).index, FIRST_CHUNK);
    }
}
