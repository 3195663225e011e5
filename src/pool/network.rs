//! The network buffer pool: a fixed set of segments of one size, allocated once, shared by
//! local pools and exclusive users (Flink's `NetworkBufferPool`).

use std::cell::UnsafeCell;
use std::fmt;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crossbeam_queue::ArrayQueue;

use super::buffer::Slot;
use super::local::{LocalBufferPool, LocalInner, LocalPoolConfig};
use crate::error::{Error, Result};
use crate::segment::{OffHeapOptions, Segment};

/// Where a network pool's segments are allocated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SegmentMemory {
    /// Anonymous mappings of their own (the default, as Flink's off-heap network memory).
    OffHeap(OffHeapOptions),
    /// The global allocator.
    Heap,
}

impl Default for SegmentMemory {
    fn default() -> Self {
        SegmentMemory::OffHeap(OffHeapOptions::default())
    }
}

struct SegmentCell(UnsafeCell<Segment>);
// SAFETY: a segment is reached either by its exclusive holder (`ExclusiveSegment`), which is
// the only one to hold its index, or through raw regions by buffers; never both at once.
unsafe impl Sync for SegmentCell {}

pub(crate) struct State {
    destroyed: bool,
    /// Sum of the live local pools' minimums plus the exclusive segments out.
    required: usize,
    exclusive_out: usize,
    pub(crate) pools: Vec<Arc<LocalInner>>,
    /// Destroyed pools: kept until the network pool is dropped, since a buffer's last release
    /// may still be running in one of them.
    retired: Vec<Arc<LocalInner>>,
    next_pool_id: u64,
}

pub(crate) struct NetworkInner {
    segment_size: usize,
    segments: Box<[SegmentCell]>,
    pub(crate) slots: Box<[Slot]>,
    pub(crate) free: ArrayQueue<u32>,
    state: Mutex<State>,
    /// Exclusive requests wait here for segments to come back.
    returned: Condvar,
    exclusive_waiters: AtomicUsize,
    /// User handles (network and local pool handles) alive.
    handles: AtomicUsize,
    id: u64,
}

static NEXT_NETWORK_ID: AtomicU64 = AtomicU64::new(1);

impl NetworkInner {
    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn total(&self) -> usize {
        self.slots.len()
    }

    pub(crate) fn segment_size(&self) -> usize {
        self.segment_size
    }

    /// Puts a segment back into the free queue and tells whoever may be waiting for one.
    pub(crate) fn give_back(&self, index: u32) {
        self.free
            .push(index)
            .expect("the free queue holds every segment");
        self.wake();
    }

    /// Lets exclusive requests and local pools see segments that came back.
    pub(crate) fn wake(&self) {
        if self.exclusive_waiters.load(Ordering::SeqCst) > 0 {
            let _guard = self.lock();
            self.returned.notify_all();
        }
        self.sync_pools();
    }

    /// Re-publishes every live pool's availability (after the free queue changed between
    /// empty and not empty, or sizes changed). No lock is held while pools run callbacks.
    pub(crate) fn sync_pools(&self) {
        let pools: Vec<Arc<LocalInner>> = self.lock().pools.clone();
        for pool in pools {
            pool.publish();
        }
    }

    /// Flink's redistribution: every pool gets its minimum; the segments not required by the
    /// minimums and exclusive segments are shared in proportion to each pool's spare capacity
    /// (max − min). Returns the pools, to return excess and publish outside the lock.
    fn redistribute(&self, st: &State) -> Vec<Arc<LocalInner>> {
        let available = self.total() - st.required;
        let excess = |p: &LocalInner| (p.max - p.min).min(available);
        let capacity: usize = st.pools.iter().map(|p| excess(p)).sum();
        let to_distribute = available.min(capacity) as u128;
        let mut parts: u128 = 0;
        let mut distributed: u128 = 0;
        for pool in &st.pools {
            let mine = if capacity == 0 || excess(pool) == 0 {
                0
            } else {
                parts += excess(pool) as u128;
                let upto = to_distribute * parts / capacity as u128;
                let mine = upto - distributed;
                distributed = upto;
                mine as usize
            };
            pool.set_size(pool.min + mine);
        }
        st.pools.clone()
    }

    /// Applies new sizes: shrinking pools give their excess back, all re-publish.
    fn after_redistribution(&self, pools: Vec<Arc<LocalInner>>) {
        for pool in &pools {
            pool.return_excess();
        }
        for pool in &pools {
            pool.publish();
        }
    }

    pub(crate) fn create_local(
        self: &Arc<Self>,
        config: &LocalPoolConfig,
    ) -> Result<Arc<LocalInner>> {
        config.validate()?;
        let mut st = self.lock();
        if st.destroyed {
            return Err(Error::Closed("the network buffer pool is destroyed".into()));
        }
        let total = self.total();
        if st.required + config.min > total {
            return Err(Error::invalid(format!(
                "insufficient network buffers: a local pool with minimum {} does not fit; {} of \
                 {} segments are required by other pools' minimums and exclusive segments",
                config.min, st.required, total
            )));
        }
        let id = st.next_pool_id;
        st.next_pool_id += 1;
        let pool = Arc::new(LocalInner::new(self, id, config));
        st.required += config.min;
        st.pools.push(Arc::clone(&pool));
        let pools = self.redistribute(&st);
        drop(st);
        self.after_redistribution(pools);
        Ok(pool)
    }

    /// Called by a local pool's destroy, after it has drained its queue.
    pub(crate) fn pool_destroyed(&self, pool: &LocalInner) {
        let mut st = self.lock();
        if let Some(at) = st.pools.iter().position(|p| std::ptr::eq(&**p, pool)) {
            let removed = st.pools.remove(at);
            st.required -= removed.min;
            st.retired.push(removed);
        }
        let pools = self.redistribute(&st);
        drop(st);
        self.after_redistribution(pools);
        self.wake();
    }

    fn release_exclusive(&self, indices: &[u32]) {
        for &index in indices {
            self.free
                .push(index)
                .expect("the free queue holds every segment");
        }
        let mut st = self.lock();
        st.required -= indices.len();
        st.exclusive_out -= indices.len();
        let pools = self.redistribute(&st);
        self.returned.notify_all();
        drop(st);
        self.after_redistribution(pools);
    }

    fn out_report(&self, st: &State) -> Option<String> {
        let out = self.total() - self.free.len();
        let lingering: Vec<u64> = st
            .retired
            .iter()
            .filter(|p| p.holds_segments())
            .map(|p| p.id)
            .collect();
        if st.pools.is_empty() && out == 0 && lingering.is_empty() {
            return None;
        }
        let ids: Vec<String> = st.pools.iter().map(|p| p.id.to_string()).collect();
        Some(format!(
            "network buffer pool {} still has {} local pool(s) [{}], {} of {} segments out ({} \
             exclusive), destroyed pools with buffers out [{}]",
            self.id,
            st.pools.len(),
            ids.join(", "),
            out,
            self.total(),
            st.exclusive_out,
            lingering
                .iter()
                .map(u64::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        ))
    }

    pub(crate) fn handle_dropped(self: &Arc<Self>) {
        if self.handles.fetch_sub(1, Ordering::AcqRel) == 1 {
            let st = self.lock();
            if self.total() != self.free.len() {
                // Buffers are still out and nobody can destroy the pool any more: keep the
                // memory valid for them rather than free it under them.
                drop(st);
                std::mem::forget(Arc::clone(self));
            }
        }
    }

    pub(crate) fn handle_made(&self) {
        self.handles.fetch_add(1, Ordering::Relaxed);
    }
}

/// A network buffer pool: a fixed number of segments of one size, allocated once at creation.
///
/// It hands out [`LocalBufferPool`]s, each with a minimum and a maximum number of buffers, and
/// [`ExclusiveSegment`]s. When local pools come and go, the segments above the minimums are
/// redistributed among the pools in proportion to their spare capacity (max − min), as Flink
/// does. Thread-safe.
pub struct NetworkBufferPool {
    inner: Arc<NetworkInner>,
}

/// Counters of a network pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NetworkPoolStats {
    /// Segments the pool owns.
    pub total: usize,
    /// Segments in the free queue (not in a local pool, a buffer or an exclusive holder).
    pub available: usize,
    /// Segments reserved by live local pools' minimums and exclusive segments.
    pub required: usize,
    /// Exclusive segments out.
    pub exclusive: usize,
    /// Live local pools.
    pub local_pools: usize,
    /// Segment size in bytes.
    pub segment_size: usize,
}

impl NetworkBufferPool {
    /// Allocates `count` segments of `segment_size` bytes.
    ///
    /// `InvalidArgument` for a count of zero or above `u32::MAX - 1` or a bad segment size;
    /// `AllocationFailed` when memory is refused (nothing stays allocated).
    pub fn new(count: usize, segment_size: usize, memory: SegmentMemory) -> Result<Self> {
        if count == 0 || count >= u32::MAX as usize {
            return Err(Error::invalid(format!(
                "a network buffer pool needs between 1 and {} segments, not {count}",
                u32::MAX - 1
            )));
        }
        let mut segments = Vec::with_capacity(count);
        for _ in 0..count {
            let segment = match memory {
                SegmentMemory::OffHeap(options) => {
                    Segment::allocate_off_heap(segment_size, options)?
                }
                SegmentMemory::Heap => Segment::allocate_heap(segment_size)?,
            };
            segments.push(SegmentCell(UnsafeCell::new(segment)));
        }
        let segments = segments.into_boxed_slice();
        let slots: Box<[Slot]> = segments
            .iter()
            .enumerate()
            // SAFETY: nothing else references the segments yet.
            .map(|(i, cell)| Slot::new(unsafe { &*cell.0.get() }.region(), i as u32))
            .collect();
        let free = ArrayQueue::new(count);
        for i in 0..count {
            free.push(i as u32).expect("capacity is the count");
        }
        Ok(NetworkBufferPool {
            inner: Arc::new(NetworkInner {
                segment_size,
                segments,
                slots,
                free,
                state: Mutex::new(State {
                    destroyed: false,
                    required: 0,
                    exclusive_out: 0,
                    pools: Vec::new(),
                    retired: Vec::new(),
                    next_pool_id: 1,
                }),
                returned: Condvar::new(),
                exclusive_waiters: AtomicUsize::new(0),
                handles: AtomicUsize::new(1),
                id: NEXT_NETWORK_ID.fetch_add(1, Ordering::Relaxed),
            }),
        })
    }

    /// Creates a local pool. `InvalidArgument` if the configuration is inconsistent (min >
    /// max, max 0, channels without a per-channel maximum) or its minimum does not fit beside
    /// the other pools' minimums and the exclusive segments; `Closed` after `destroy`.
    pub fn create_local_pool(&self, config: LocalPoolConfig) -> Result<LocalBufferPool> {
        let inner = self.inner.create_local(&config)?;
        Ok(LocalBufferPool::from_parts(Arc::clone(&self.inner), inner))
    }

    /// Takes `count` segments for exclusive use, all or nothing (Flink's
    /// `requestUnpooledMemorySegments`). Their count is reserved at once, as a local pool's
    /// minimum is (`InvalidArgument` if it does not fit); the segments themselves may still
    /// be in local pools shrinking to make room, so this waits for them up to `timeout`
    /// (`Timeout`, with nothing taken). Each goes back when dropped.
    pub fn request_exclusive(
        &self,
        count: usize,
        timeout: Duration,
    ) -> Result<Vec<ExclusiveSegment>> {
        let inner = &self.inner;
        {
            let mut st = inner.lock();
            if st.destroyed {
                return Err(Error::Closed("the network buffer pool is destroyed".into()));
            }
            if st.required + count > inner.total() {
                return Err(Error::invalid(format!(
                    "insufficient network buffers: {count} exclusive segments do not fit; {} of \
                     {} segments are required by local pools' minimums and exclusive segments",
                    st.required,
                    inner.total()
                )));
            }
            st.required += count;
            st.exclusive_out += count;
            let pools = inner.redistribute(&st);
            drop(st);
            inner.after_redistribution(pools);
        }
        let deadline = Instant::now().checked_add(timeout);
        let mut taken = Vec::with_capacity(count);
        while taken.len() < count {
            if let Some(index) = inner.free.pop() {
                taken.push(index);
                continue;
            }
            let st = inner.lock();
            inner.exclusive_waiters.fetch_add(1, Ordering::SeqCst);
            let now = Instant::now();
            let timed_out = if !inner.free.is_empty() {
                false
            } else {
                match deadline {
                    Some(deadline) if now >= deadline => {
                        drop(st);
                        true
                    }
                    Some(deadline) => {
                        drop(
                            inner
                                .returned
                                .wait_timeout(st, deadline - now)
                                .unwrap_or_else(|e| e.into_inner()),
                        );
                        false
                    }
                    None => {
                        drop(inner.returned.wait(st).unwrap_or_else(|e| e.into_inner()));
                        false
                    }
                }
            };
            inner.exclusive_waiters.fetch_sub(1, Ordering::SeqCst);
            if timed_out {
                let got = taken.len();
                inner.release_exclusive_reserved(&taken, count);
                return Err(Error::Timeout(format!(
                    "{count} exclusive segments requested, {got} came free within {timeout:?}"
                )));
            }
        }
        if inner.free.is_empty() {
            inner.sync_pools();
        }
        Ok(taken
            .into_iter()
            .map(|index| ExclusiveSegment {
                network: Arc::clone(inner),
                index,
            })
            .collect())
    }

    /// Gives exclusive segments back at once (one redistribution instead of one per drop).
    /// Segments of another network pool are refused (`InvalidArgument`) and nothing changes.
    pub fn recycle_exclusive(&self, segments: Vec<ExclusiveSegment>) -> Result<()> {
        if let Some(other) = segments
            .iter()
            .find(|s| !Arc::ptr_eq(&s.network, &self.inner))
        {
            return Err(Error::invalid(format!(
                "exclusive segment {} belongs to another network buffer pool",
                other.index
            )));
        }
        let indices: Vec<u32> = segments
            .into_iter()
            .map(|segment| {
                let segment = std::mem::ManuallyDrop::new(segment);
                // SAFETY: the `Arc` is read out once and dropped; the segment itself is never
                // used or dropped again (its drop would give it back a second time).
                drop(unsafe { std::ptr::read(&segment.network) });
                segment.index
            })
            .collect();
        self.inner.release_exclusive(&indices);
        Ok(())
    }

    /// Counters, read without stopping the pool.
    pub fn stats(&self) -> NetworkPoolStats {
        let st = self.inner.lock();
        NetworkPoolStats {
            total: self.inner.total(),
            available: self.inner.free.len(),
            required: st.required,
            exclusive: st.exclusive_out,
            local_pools: st.pools.len(),
            segment_size: self.inner.segment_size,
        }
    }

    /// Segment size in bytes.
    pub fn segment_size(&self) -> usize {
        self.inner.segment_size
    }

    /// Ends the pool: no more local pools or exclusive segments. Refused with `InUse` (the
    /// message lists what is out) while local pools, buffers or exclusive segments are out,
    /// and then nothing changes; `Closed` the second time. The memory is freed when the handle
    /// is dropped.
    pub fn destroy(&self) -> Result<()> {
        let mut st = self.inner.lock();
        if st.destroyed {
            return Err(Error::Closed(
                "the network buffer pool is already destroyed".into(),
            ));
        }
        self.check_unused(&st)?;
        st.destroyed = true;
        Ok(())
    }

    fn check_unused(&self, st: &State) -> Result<()> {
        match self.inner.out_report(st) {
            Some(report) => Err(Error::InUse(report)),
            None => Ok(()),
        }
    }
}

impl NetworkInner {
    fn release_exclusive_reserved(&self, taken: &[u32], count: usize) {
        for &index in taken {
            self.free
                .push(index)
                .expect("the free queue holds every segment");
        }
        let mut st = self.lock();
        st.required -= count;
        st.exclusive_out -= count;
        let pools = self.redistribute(&st);
        self.returned.notify_all();
        drop(st);
        self.after_redistribution(pools);
    }
}

impl Drop for NetworkBufferPool {
    fn drop(&mut self) {
        self.inner.handle_dropped();
    }
}

impl Drop for NetworkInner {
    fn drop(&mut self) {
        let st = self.state.get_mut().unwrap_or_else(|e| e.into_inner());
        st.retired.clear();
    }
}

impl fmt::Debug for NetworkBufferPool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NetworkBufferPool")
            .field("id", &self.inner.id)
            .field("stats", &self.stats())
            .finish()
    }
}

/// A segment taken from a network pool for exclusive use; it goes back when dropped (or with
/// [`NetworkBufferPool::recycle_exclusive`]).
pub struct ExclusiveSegment {
    network: Arc<NetworkInner>,
    index: u32,
}

impl ExclusiveSegment {
    /// The segment.
    pub fn segment(&self) -> &Segment {
        // SAFETY: this holder is the only one with the index (taken from the free queue), so
        // no one else touches the segment until it goes back.
        unsafe { &*self.network.segments[self.index as usize].0.get() }
    }

    /// The segment, for writing.
    pub fn segment_mut(&mut self) -> &mut Segment {
        // SAFETY: as in `segment`, and `&mut self` makes this the only access.
        unsafe { &mut *self.network.segments[self.index as usize].0.get() }
    }

    /// The segment's index in its network pool.
    pub fn index(&self) -> u32 {
        self.index
    }
}

impl Drop for ExclusiveSegment {
    fn drop(&mut self) {
        self.network.release_exclusive(&[self.index]);
    }
}

impl fmt::Debug for ExclusiveSegment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ExclusiveSegment")
            .field("index", &self.index)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sizes(net: &NetworkBufferPool, pools: &[&LocalBufferPool]) -> Vec<usize> {
        let _ = net;
        pools.iter().map(|p| p.stats().size).collect()
    }

    #[test]
    fn redistribution_matches_flinks_proportional_shares() {
        // Flink's NetworkBufferPoolTest-style numbers: 10 segments, pools (1, 10) and (2, 4).
        let net = NetworkBufferPool::new(10, 64, SegmentMemory::Heap).unwrap();
        let a = net.create_local_pool(LocalPoolConfig::new(1, 10)).unwrap();
        let b = net.create_local_pool(LocalPoolConfig::new(2, 4)).unwrap();
        // 7 spare; capacities min(9, 7) = 7 and 2: a gets 7 * 7 / 9 = 5, b the other 2.
        assert_eq!(sizes(&net, &[&a, &b]), vec![6, 4]);
        // An exclusive reservation of 3 leaves 4 spare: a 4 * 4 / 6 = 2, b 2.
        let held = net.request_exclusive(3, Duration::ZERO).unwrap();
        assert_eq!(sizes(&net, &[&a, &b]), vec![3, 4]);
        assert_eq!(net.stats().required, 6);
        drop(held);
        assert_eq!(sizes(&net, &[&a, &b]), vec![6, 4]);
        // Pools without spare capacity keep their minimum.
        let c = net.create_local_pool(LocalPoolConfig::new(3, 3)).unwrap();
        assert_eq!(sizes(&net, &[&a, &b, &c]), vec![3, 4, 3]);
    }

    #[test]
    fn a_network_pool_with_everything_back_frees_its_pools_when_dropped() {
        let net = NetworkBufferPool::new(4, 64, SegmentMemory::Heap).unwrap();
        let pool = net.create_local_pool(LocalPoolConfig::new(1, 4)).unwrap();
        let weak = Arc::downgrade(&net.inner);
        drop(pool.request().unwrap());
        drop(pool);
        drop(net);
        assert!(
            weak.upgrade().is_none(),
            "no cycle keeps the network pool alive"
        );
    }

    #[test]
    #[cfg_attr(miri, ignore = "leaks the pool on purpose: nothing can free it safely")]
    fn a_network_pool_dropped_with_buffers_out_keeps_their_memory() {
        let net = NetworkBufferPool::new(2, 64, SegmentMemory::Heap).unwrap();
        let pool = net.create_local_pool(LocalPoolConfig::new(1, 2)).unwrap();
        let buffer = pool.request().unwrap();
        drop(pool);
        drop(net);
        buffer.append(b"alive").unwrap();
        let mut out = [0u8; 5];
        buffer.get_bytes(0, &mut out).unwrap();
        assert_eq!(&out, b"alive");
    }
}
