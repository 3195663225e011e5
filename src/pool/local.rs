//! Local buffer pools: a task's share of a network pool, between a minimum and a maximum
//! number of buffers (Flink's `LocalBufferPool`).
//!
//! The pool keeps the segments it holds and that are not out as buffers in a lock-free queue.
//! A request pops one (or, below the pool's current size, takes one from the network pool's
//! queue, or an overdraft segment); the last release of a buffer pushes it back. Neither takes
//! a lock. Then one load of the attention word (see `availability.rs`) says whether a slow
//! path must run: counting channels or overdraft buffers, waking waiters, serving listeners,
//! publishing availability, returning segments above the pool's size, or returning everything
//! to a destroyed pool's network. The fast paths are inlined into their callers; everything
//! else, error messages included, is out of line.

use std::collections::VecDeque;
use std::fmt;
use std::os::fd::RawFd;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crossbeam_queue::ArrayQueue;

use super::availability::{
    Availability, AvailabilityCallback, CHANNELS, DESTROYED, EXCESS, MAX_OVERDRAFT, NOT_SIGNALLED,
    OVERDRAFT, OVERDRAFT_MASK, WAITER, Waited,
};
use super::buffer::{Buffer, NO_CHANNEL, Slot};
use super::builder::BufferBuilder;
use super::network::NetworkInner;
use crate::error::{Error, Result};

/// The shape of a local pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LocalPoolConfig {
    /// Buffers the pool is guaranteed (reserved in the network pool at creation).
    pub min: usize,
    /// Most buffers the pool may hold (besides overdraft buffers); at least 1.
    pub max: usize,
    /// Number of channels a request may name (0: requests name no channel).
    pub channels: u32,
    /// Most buffers one channel may hold at once (0: no limit). While a channel holds this
    /// many, the pool is unavailable, as in Flink's result partitions.
    pub max_per_channel: u32,
    /// Buffers that may be taken beyond the pool's size when it has none left (from the
    /// network pool's free segments); they go straight back to the network pool. At most
    /// 2^31 − 1.
    pub max_overdraft: usize,
}

impl LocalPoolConfig {
    /// A pool of between `min` and `max` buffers, without channels or overdraft.
    pub fn new(min: usize, max: usize) -> Self {
        LocalPoolConfig {
            min,
            max,
            ..Default::default()
        }
    }

    pub(crate) fn validate(&self) -> Result<()> {
        if self.max == 0 {
            return Err(Error::invalid("a local pool's maximum must be at least 1"));
        }
        if self.min > self.max {
            return Err(Error::invalid(format!(
                "a local pool's minimum {} is above its maximum {}",
                self.min, self.max
            )));
        }
        if self.max_overdraft > MAX_OVERDRAFT {
            return Err(Error::invalid(format!(
                "a local pool's overdraft maximum {} is above {MAX_OVERDRAFT}",
                self.max_overdraft
            )));
        }
        if self.channels == 0 && self.max_per_channel != 0 {
            return Err(Error::invalid(
                "a per-channel maximum needs a number of channels",
            ));
        }
        Ok(())
    }
}

/// A host's interest in buffers of an empty pool (Flink's `BufferListener`).
pub trait BufferListener: Send + Sync {
    /// A buffer was recycled and is handed to this listener, which now owns it. Returns
    /// whether the listener wants more (it then stays registered, at the back of the queue).
    /// Runs on the recycling thread, without the pool's locks held.
    fn buffer_available(&self, buffer: Buffer) -> bool;

    /// The pool was destroyed while the listener was registered.
    fn pool_destroyed(&self) {}
}

/// Counters of a local pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LocalPoolStats {
    /// The pool's current size: its minimum plus its share of the redistributed segments.
    pub size: usize,
    /// Its minimum.
    pub min: usize,
    /// Its maximum.
    pub max: usize,
    /// Buffers out (requested and not yet recycled), overdraft buffers included.
    pub in_use: usize,
    /// Segments the pool holds ready for requests.
    pub available: usize,
    /// Overdraft buffers out.
    pub overdraft: usize,
    /// Requests that had to wait (blocking requests that found no buffer at first).
    pub waited_requests: u64,
}

/// In declaration order: what the fast paths read besides the queue (the attention word and
/// the slots) shares the first cache line; the queue's head and tail have lines of their own.
#[repr(C)]
pub(crate) struct LocalInner {
    /// What the fast paths check; also the overdraft count (see `availability.rs`).
    attention: AtomicU64,
    /// The network pool's slots (`network.slots`), reached without going through the network.
    slots: NonNull<[Slot]>,
    network: NonNull<NetworkInner>,
    pub(crate) id: u64,
    queue: ArrayQueue<u32>,
    /// Segments the pool holds: in its queue or out as buffers (overdraft not counted).
    requested: AtomicUsize,
    size: AtomicUsize,
    pub(crate) min: usize,
    pub(crate) max: usize,
    max_overdraft: usize,
    channels: Box<[AtomicU32]>,
    max_per_channel: u32,
    blocked_channels: AtomicU32,
    waited: AtomicU64,
    availability: Availability,
    listeners: Mutex<VecDeque<Arc<dyn BufferListener>>>,
}

// SAFETY: the network pointer is only dereferenced as a shared reference; the network pool
// outlives its local pools (it keeps even destroyed ones until it is dropped).
unsafe impl Send for LocalInner {}
// SAFETY: as for Send; everything else is atomic or locked.
unsafe impl Sync for LocalInner {}

impl LocalInner {
    pub(crate) fn new(network: &Arc<NetworkInner>, id: u64, config: &LocalPoolConfig) -> Self {
        let capacity = config.max.min(network.total()).max(1);
        LocalInner {
            id,
            network: NonNull::from(&**network),
            slots: NonNull::from(&*network.slots),
            queue: ArrayQueue::new(capacity),
            requested: AtomicUsize::new(0),
            size: AtomicUsize::new(config.min),
            attention: AtomicU64::new(if config.channels > 0 {
                NOT_SIGNALLED | CHANNELS
            } else {
                NOT_SIGNALLED
            }),
            min: config.min,
            max: config.max,
            max_overdraft: config.max_overdraft,
            channels: (0..config.channels).map(|_| AtomicU32::new(0)).collect(),
            max_per_channel: if config.max_per_channel == 0 {
                u32::MAX
            } else {
                config.max_per_channel
            },
            blocked_channels: AtomicU32::new(0),
            waited: AtomicU64::new(0),
            availability: Availability::new(),
            listeners: Mutex::new(VecDeque::new()),
        }
    }

    #[inline(always)]
    fn network(&self) -> &NetworkInner {
        // SAFETY: the network pool outlives its local pools (see the Send impl).
        unsafe { self.network.as_ref() }
    }

    /// The slot of segment `index`, which came from this network pool's queues.
    #[inline(always)]
    fn slot(&self, index: u32) -> &Slot {
        // SAFETY: the slots live as long as the network pool (see the Send impl); indices in
        // the queues are below the slot count, checked in debug builds.
        unsafe {
            debug_assert!((index as usize) < self.slots.len());
            &*self.slots.as_ptr().cast::<Slot>().add(index as usize)
        }
    }

    fn lock_listeners(&self) -> MutexGuard<'_, VecDeque<Arc<dyn BufferListener>>> {
        self.listeners.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn destroyed(&self) -> bool {
        self.attention.load(Ordering::SeqCst) & DESTROYED != 0
    }

    /// Overdraft buffers out.
    fn overdraft(&self) -> usize {
        ((self.attention.load(Ordering::SeqCst) & OVERDRAFT_MASK) / OVERDRAFT) as usize
    }

    pub(crate) fn holds_segments(&self) -> bool {
        self.requested.load(Ordering::SeqCst) > 0 || self.overdraft() > 0
    }

    pub(crate) fn set_size(&self, size: usize) {
        self.size.store(size, Ordering::SeqCst);
        self.sync_excess();
    }

    /// Sets the attention word's excess bit while the pool holds more segments than its size,
    /// so that recycles give them back. The holdings only grow below the size, so they get
    /// above it only when the size is lowered (`set_size`); clearing re-checks afterwards, in
    /// case a lower size was stored meanwhile.
    fn sync_excess(&self) {
        let excess = || self.requested.load(Ordering::SeqCst) > self.size.load(Ordering::SeqCst);
        if excess() {
            self.attention.fetch_or(EXCESS, Ordering::SeqCst);
        } else if self.attention.load(Ordering::SeqCst) & EXCESS != 0 {
            self.attention.fetch_and(!EXCESS, Ordering::SeqCst);
            if excess() {
                self.attention.fetch_or(EXCESS, Ordering::SeqCst);
            }
        }
    }

    /// Whether a request could be served now without overdraft (the pool's availability).
    fn has_buffer(&self) -> bool {
        !self.queue.is_empty()
            || (self.requested.load(Ordering::SeqCst) < self.size.load(Ordering::SeqCst)
                && !self.network().free.is_empty())
    }

    /// The availability the eventfd and the callback publish.
    fn is_available(&self) -> bool {
        !self.destroyed() && self.blocked_channels.load(Ordering::SeqCst) == 0 && self.has_buffer()
    }

    /// Whether a request for `channel` would be served now (overdraft included).
    fn could_serve(&self, channel: u32) -> bool {
        if self.destroyed() {
            return true; // the retry reports Closed
        }
        if channel != NO_CHANNEL
            && self.channels[channel as usize].load(Ordering::SeqCst) >= self.max_per_channel
        {
            return false;
        }
        self.has_buffer()
            || (self.overdraft() < self.max_overdraft && !self.network().free.is_empty())
    }

    pub(crate) fn publish(&self) {
        self.availability
            .sync(&self.attention, || self.is_available());
    }

    /// A segment when the pool's queue had none: from the network pool within the pool's
    /// size, then (if allowed) an overdraft segment.
    #[cold]
    fn take_segment_slow(&self, overdraft: bool) -> Option<u32> {
        let network = self.network();
        let below_size = self
            .requested
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |r| {
                (r < self.size.load(Ordering::SeqCst)).then_some(r + 1)
            });
        if below_size.is_ok() {
            if let Some(index) = network.free.pop() {
                self.adopt(index);
                if network.free.is_empty() {
                    network.sync_pools();
                }
                return Some(index);
            }
            self.requested.fetch_sub(1, Ordering::SeqCst);
            if let Some(index) = self.queue.pop() {
                return Some(index);
            }
        }
        // Overdraft: the counter goes up only once a segment is really out, since a recycle
        // that sees it above zero sends a segment back to the network pool in its place.
        if overdraft && self.overdraft() < self.max_overdraft {
            if let Some(index) = network.free.pop() {
                let max = self.max_overdraft as u64 * OVERDRAFT;
                let counted = self
                    .attention
                    .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |a| {
                        (a & OVERDRAFT_MASK < max).then_some(a + OVERDRAFT)
                    })
                    .is_ok();
                if counted {
                    self.adopt(index);
                    if network.free.is_empty() {
                        network.sync_pools();
                    }
                    return Some(index);
                }
                network.give_back(index);
            }
        }
        None
    }

    /// Makes this pool the owner of a segment taken from the network pool, the pool its
    /// buffer goes back to. A segment in a pool's queue has that pool as its owner already (it
    /// came back to it), so a request from the queue does not store it again.
    fn adopt(&self, index: u32) {
        let owner: *const LocalInner = self;
        self.slot(index)
            .owner
            .store(owner.cast_mut(), Ordering::Relaxed);
    }

    /// Non-blocking request; `WouldBlock` when no buffer can be served now.
    ///
    /// Inlined: for a request without a channel (a constant at most call sites) the fast path
    /// is one load of the attention word, the queue's pop, the slot's reset and the queue's
    /// emptiness check; the rest is out of line.
    #[inline(always)]
    pub(crate) fn request(&self, channel: u32) -> Result<Buffer> {
        if self.attention.load(Ordering::Relaxed) & DESTROYED != 0 {
            return Err(self.closed());
        }
        let reached_limit = channel != NO_CHANNEL && self.count_channel(channel)?;
        let Some(index) = self.queue.pop() else {
            return self.request_slow(channel, reached_limit);
        };
        Ok(self.hand_out(index, channel, reached_limit))
    }

    /// A request whose pool's queue was empty: from the network pool or as overdraft.
    #[cold]
    #[inline(never)]
    fn request_slow(&self, channel: u32, reached_limit: bool) -> Result<Buffer> {
        match self.take_segment_slow(true) {
            Some(index) => Ok(self.hand_out(index, channel, reached_limit)),
            None => Err(self.no_buffer(channel, reached_limit)),
        }
    }

    /// The buffer of a segment just taken; publishes if the pool became unavailable.
    #[inline(always)]
    fn hand_out(&self, index: u32, channel: u32, reached_limit: bool) -> Buffer {
        let buffer = Buffer::first(self.slot(index), channel);
        if reached_limit || self.queue.is_empty() {
            self.after_take(reached_limit);
        }
        buffer
    }

    /// Counts a buffer for `channel`; whether the channel just reached its limit.
    #[cold]
    #[inline(never)]
    fn count_channel(&self, channel: u32) -> Result<bool> {
        let Some(count) = self.channels.get(channel as usize) else {
            return Err(self.bad_channel(channel));
        };
        let held = count.fetch_add(1, Ordering::SeqCst);
        if held >= self.max_per_channel {
            count.fetch_sub(1, Ordering::SeqCst);
            return Err(Error::WouldBlock(format!(
                "channel {channel} holds its maximum of {} buffers",
                self.max_per_channel
            )));
        }
        if held + 1 == self.max_per_channel {
            self.blocked_channels.fetch_add(1, Ordering::SeqCst);
            return Ok(true);
        }
        Ok(false)
    }

    /// A request found no segment: undoes its channel count, publishes that the pool is
    /// unavailable if that is news, and says why.
    #[cold]
    #[inline(never)]
    fn no_buffer(&self, channel: u32, reached_limit: bool) -> Error {
        if channel != NO_CHANNEL {
            self.channels[channel as usize].fetch_sub(1, Ordering::SeqCst);
            if reached_limit {
                self.blocked_channels.fetch_sub(1, Ordering::SeqCst);
            }
        }
        if self.attention.load(Ordering::SeqCst) & NOT_SIGNALLED == 0 {
            self.publish();
        }
        Error::WouldBlock(format!(
            "local buffer pool {} has no buffer free ({} of {} in use, overdraft {} of {})",
            self.id,
            self.in_use(),
            self.size.load(Ordering::Relaxed),
            self.overdraft(),
            self.max_overdraft
        ))
    }

    /// After a request that emptied the queue or filled its channel: publishes that the pool
    /// became unavailable.
    #[cold]
    #[inline(never)]
    fn after_take(&self, reached_limit: bool) {
        if reached_limit
            || (self.attention.load(Ordering::SeqCst) & NOT_SIGNALLED == 0 && !self.is_available())
        {
            self.publish();
        }
    }

    pub(crate) fn request_blocking(
        &self,
        channel: u32,
        timeout: Option<Duration>,
    ) -> Result<Buffer> {
        let deadline = timeout.and_then(|t| Instant::now().checked_add(t));
        let mut counted = false;
        loop {
            match self.request(channel) {
                Err(Error::WouldBlock(why)) => {
                    if !counted {
                        counted = true;
                        self.waited.fetch_add(1, Ordering::Relaxed);
                    }
                    match self
                        .availability
                        .wait(&self.attention, deadline, || self.could_serve(channel))
                    {
                        Waited::Ready => {}
                        Waited::Closed => return Err(self.closed()),
                        Waited::TimedOut => {
                            return Err(Error::Timeout(format!(
                                "no buffer within {:?}: {why}",
                                timeout.unwrap_or_default()
                            )));
                        }
                    }
                }
                other => return other,
            }
        }
    }

    /// The last release of a buffer of this pool.
    ///
    /// Without channels or overdraft buffers out (the low half of the attention word), the
    /// segment goes back into the queue, and one more load of the attention word says whether
    /// anything else must happen. Not inlined, so that the buffer's drop, which callers inline,
    /// is only the count check and this call.
    #[inline(never)]
    pub(crate) fn recycle(&self, slot: &Slot) {
        if self.attention.load(Ordering::SeqCst) as u32 != 0 {
            self.recycle_counted(slot);
            return;
        }
        self.push_back(slot.index);
        // Sequentially consistent load after the queue's sequentially consistent push: see
        // `availability.rs`.
        if self.attention.load(Ordering::SeqCst) != 0 {
            self.after_recycle();
        }
    }

    #[inline(always)]
    fn push_back(&self, index: u32) {
        if self.queue.push(index).is_err() {
            queue_overflow();
        }
    }

    /// The last release in a pool with channels or overdraft buffers out: the channel's count
    /// goes down, and an overdraft buffer's segment (or one in its place) goes straight back
    /// to the network pool.
    #[cold]
    #[inline(never)]
    fn recycle_counted(&self, slot: &Slot) {
        let index = slot.index;
        let channel = slot.channel.load(Ordering::Relaxed);
        let mut unblocked = false;
        if channel != NO_CHANNEL {
            slot.channel.store(NO_CHANNEL, Ordering::Relaxed);
            let held = self.channels[channel as usize].fetch_sub(1, Ordering::SeqCst);
            if held == self.max_per_channel {
                self.blocked_channels.fetch_sub(1, Ordering::SeqCst);
                unblocked = true;
            }
        }
        if self.overdraft() > 0
            && self
                .attention
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |a| {
                    (a & OVERDRAFT_MASK != 0).then(|| a - OVERDRAFT)
                })
                .is_ok()
        {
            self.network().give_back(index);
            if unblocked {
                self.publish();
            }
            return;
        }
        self.push_back(index);
        if unblocked || self.attention.load(Ordering::SeqCst) & !CHANNELS != 0 {
            self.after_recycle();
        }
    }

    #[cold]
    #[inline(never)]
    fn after_recycle(&self) {
        if self.destroyed() {
            self.drain_to_network();
            return;
        }
        self.return_excess();
        self.serve_listeners();
        self.publish();
    }

    /// Gives back segments held above the pool's size (after it shrank).
    pub(crate) fn return_excess(&self) {
        let mut returned = false;
        while self.requested.load(Ordering::SeqCst) > self.size.load(Ordering::SeqCst) {
            let Some(index) = self.queue.pop() else { break };
            self.requested.fetch_sub(1, Ordering::SeqCst);
            self.network()
                .free
                .push(index)
                .expect("the free queue holds every segment");
            returned = true;
        }
        self.sync_excess();
        if returned {
            self.network().wake();
        }
    }

    fn drain_to_network(&self) {
        let mut returned = false;
        while let Some(index) = self.queue.pop() {
            self.requested.fetch_sub(1, Ordering::SeqCst);
            self.network()
                .free
                .push(index)
                .expect("the free queue holds every segment");
            returned = true;
        }
        if returned {
            self.network().wake();
        }
    }

    /// Hands buffers to registered listeners while both are there. The segment is taken
    /// before the listeners' lock, so that nothing that may run callbacks (publishing other
    /// pools' availability) runs under it.
    fn serve_listeners(&self) {
        loop {
            if self.lock_listeners().is_empty() {
                return;
            }
            let Some(index) = self.queue.pop().or_else(|| self.take_segment_slow(false)) else {
                return;
            };
            let listener = {
                let mut listeners = self.lock_listeners();
                if self.destroyed() {
                    None
                } else {
                    let listener = listeners.pop_front();
                    if listener.is_some() {
                        self.attention.fetch_sub(WAITER, Ordering::SeqCst);
                    }
                    listener
                }
            };
            let Some(listener) = listener else {
                // No listener (any more): the segment goes back where requests find it. A
                // listener registering now re-checks for buffers after registering.
                self.push_back(index);
                if self.destroyed() {
                    self.drain_to_network();
                }
                return;
            };
            let buffer = Buffer::first(self.slot(index), NO_CHANNEL);
            if listener.buffer_available(buffer) {
                let mut listeners = self.lock_listeners();
                if self.destroyed() {
                    drop(listeners);
                    listener.pool_destroyed();
                } else {
                    listeners.push_back(listener);
                    self.attention.fetch_add(WAITER, Ordering::SeqCst);
                }
            }
        }
    }

    fn add_listener(&self, listener: Arc<dyn BufferListener>) -> Result<bool> {
        {
            let mut listeners = self.lock_listeners();
            if self.destroyed() {
                return Err(self.closed());
            }
            if self.has_buffer() {
                return Ok(false);
            }
            listeners.push_back(listener);
            self.attention.fetch_add(WAITER, Ordering::SeqCst);
        }
        // A buffer recycled between the check and the registration did not see the listener.
        if self.has_buffer() {
            self.serve_listeners();
        }
        Ok(true)
    }

    fn destroy(&self) -> Result<()> {
        let before = self.attention.fetch_or(DESTROYED, Ordering::SeqCst);
        if before & DESTROYED != 0 {
            return Err(Error::Closed(format!(
                "local buffer pool {} is already destroyed",
                self.id
            )));
        }
        let listeners: Vec<_> = {
            let mut listeners = self.lock_listeners();
            self.attention
                .fetch_sub(listeners.len() as u64 * WAITER, Ordering::SeqCst);
            listeners.drain(..).collect()
        };
        for listener in listeners {
            listener.pool_destroyed();
        }
        self.availability.close(&self.attention);
        self.drain_to_network();
        self.network().pool_destroyed(self);
        Ok(())
    }

    fn in_use(&self) -> usize {
        (self.requested.load(Ordering::SeqCst) + self.overdraft()).saturating_sub(self.queue.len())
    }

    #[cold]
    #[inline(never)]
    fn closed(&self) -> Error {
        Error::Closed(format!("local buffer pool {} is destroyed", self.id))
    }

    #[cold]
    #[inline(never)]
    fn bad_channel(&self, channel: u32) -> Error {
        Error::invalid(format!(
            "channel {channel} is not one of the pool's {} channels",
            self.channels.len()
        ))
    }
}

/// Out of line and without arguments, so that the inlined recycle stays small.
#[cold]
#[inline(never)]
fn queue_overflow() -> ! {
    panic!("a local pool's queue holds every segment it requested")
}

/// A local buffer pool: between a minimum and a maximum number of buffers of its network pool.
///
/// Requests are non-blocking ([`request`](Self::request), `WouldBlock` when none is free) or
/// blocking with a timeout ([`request_blocking`](Self::request_blocking)). Availability can be
/// waited on with a callback or a file descriptor. Dropping (or [destroying](Self::destroy))
/// the pool while buffers are out keeps them valid; each goes back to the network pool on its
/// last release. Thread-safe.
pub struct LocalBufferPool {
    network: Arc<NetworkInner>,
    inner: Arc<LocalInner>,
}

impl LocalBufferPool {
    pub(crate) fn from_parts(network: Arc<NetworkInner>, inner: Arc<LocalInner>) -> Self {
        network.handle_made();
        LocalBufferPool { network, inner }
    }

    /// A buffer, if one is free now (from the pool, the network pool within the pool's size,
    /// or an overdraft buffer); `WouldBlock` otherwise, `Closed` after destroy.
    #[inline]
    pub fn request(&self) -> Result<Buffer> {
        self.inner.request(NO_CHANNEL)
    }

    /// A buffer for `channel`: also `WouldBlock` while the channel holds its maximum, and
    /// `InvalidArgument` for a channel the pool does not have.
    pub fn request_for_channel(&self, channel: u32) -> Result<Buffer> {
        if channel == NO_CHANNEL {
            return Err(self.inner.bad_channel(channel));
        }
        self.inner.request(channel)
    }

    /// A buffer, waiting for one up to `timeout` (`None`: without limit); `Timeout` if none
    /// came, `Closed` if the pool is destroyed meanwhile. `channel` as in
    /// [`request_for_channel`](Self::request_for_channel).
    pub fn request_blocking(
        &self,
        channel: Option<u32>,
        timeout: Option<Duration>,
    ) -> Result<Buffer> {
        let channel = match channel {
            Some(NO_CHANNEL) => return Err(self.inner.bad_channel(NO_CHANNEL)),
            Some(c) => c,
            None => NO_CHANNEL,
        };
        self.inner.request_blocking(channel, timeout)
    }

    /// A buffer builder on a newly requested buffer (non-blocking, as [`request`](Self::request)).
    pub fn request_builder(&self, channel: Option<u32>) -> Result<BufferBuilder> {
        let buffer = match channel {
            Some(c) => self.request_for_channel(c)?,
            None => self.request()?,
        };
        Ok(BufferBuilder::new(buffer))
    }

    /// A buffer builder on a buffer requested as [`request_blocking`](Self::request_blocking)
    /// does: waiting up to `timeout` (`None`: without limit) for one to come back.
    pub fn request_builder_blocking(
        &self,
        channel: Option<u32>,
        timeout: Option<Duration>,
    ) -> Result<BufferBuilder> {
        Ok(BufferBuilder::new(self.request_blocking(channel, timeout)?))
    }

    /// Whether a buffer can be requested without waiting and no channel is at its limit.
    pub fn is_available(&self) -> bool {
        self.inner.is_available()
    }

    /// Sets (or with `None` removes) the callback run each time the pool becomes available.
    pub fn set_availability_callback(&self, callback: Option<AvailabilityCallback>) -> Result<()> {
        self.inner.availability.set_callback(callback)
    }

    /// An `eventfd` that is readable while the pool is available, for `poll`/`epoll`. The pool
    /// owns it (do not read or close it) and closes it when destroyed.
    pub fn fd(&self) -> Result<RawFd> {
        let fd = self.inner.availability.fd()?;
        self.inner.publish();
        Ok(fd)
    }

    /// Registers a listener for the next recycled buffer. Returns `false`, without
    /// registering, if a buffer is available now (request it instead), as Flink's
    /// `addBufferListener`.
    pub fn add_listener(&self, listener: Arc<dyn BufferListener>) -> Result<bool> {
        self.inner.add_listener(listener)
    }

    /// Counters.
    pub fn stats(&self) -> LocalPoolStats {
        let inner = &self.inner;
        LocalPoolStats {
            size: inner.size.load(Ordering::SeqCst),
            min: inner.min,
            max: inner.max,
            in_use: inner.in_use(),
            available: inner.queue.len(),
            overdraft: inner.overdraft(),
            waited_requests: inner.waited.load(Ordering::Relaxed),
        }
    }

    /// The pool's number within its network pool (used in messages).
    pub fn id(&self) -> u64 {
        self.inner.id
    }

    /// Segment size in bytes.
    pub fn segment_size(&self) -> usize {
        self.network.segment_size()
    }

    /// Destroys the pool: its free segments go back to the network pool at once, buffers still
    /// out stay valid and go back on their last release, listeners are told, waiters get
    /// `Closed`, the eventfd is closed. `Closed` if it was destroyed already. Dropping the
    /// pool destroys it too.
    pub fn destroy(&self) -> Result<()> {
        self.inner.destroy()
    }
}

impl Drop for LocalBufferPool {
    fn drop(&mut self) {
        let _ = self.inner.destroy();
        self.network.handle_dropped();
    }
}

impl fmt::Debug for LocalBufferPool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LocalBufferPool")
            .field("id", &self.inner.id)
            .field("stats", &self.stats())
            .finish()
    }
}
