//! Pooled buffers: a segment of the network pool with reader and writer indices, a type tag and
//! a reference count.
//!
//! Every segment of a network pool has one [`Slot`], allocated with the pool, that holds the
//! buffer's shared state. A request therefore allocates nothing: it takes a slot index from a
//! lock-free queue and resets the slot. A [`Buffer`] is one counted reference to a slot;
//! dropping the last one recycles the segment to the local pool it came from.

use std::fmt;
use std::mem::ManuallyDrop;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicPtr, AtomicU8, AtomicU32, AtomicUsize, Ordering};

use super::local::LocalInner;
use super::protocol::{CommitWord, RefCount};
use super::slice::{READ_ONLY, Window};
use crate::error::{Error, Result};
use crate::segment::Region;

/// Tag of a buffer that holds data (the default), as Flink's `Buffer.DataType.DATA_BUFFER`.
pub const BUFFER_TAG_DATA: u8 = 0;
/// Tag of a buffer that holds an event, as Flink's `Buffer.DataType.EVENT_BUFFER`.
pub const BUFFER_TAG_EVENT: u8 = 1;

/// "No channel" in a slot's channel field.
pub(crate) const NO_CHANNEL: u32 = u32::MAX;

/// The shared state of the buffer that holds one pooled segment. Its alignment leaves the low
/// bits of its address free for a reference's read-only bit.
#[repr(align(64))]
pub(crate) struct Slot {
    region: Region,
    pub(crate) index: u32,
    refs: RefCount,
    reader: AtomicUsize,
    /// The writer index (the buffer's size); for a builder's buffer, the committed position,
    /// marked finished once the builder has finished.
    pub(crate) writer: CommitWord,
    tag: AtomicU8,
    /// The channel the buffer was requested for; `NO_CHANNEL` while the segment is not out.
    pub(crate) channel: AtomicU32,
    /// The local pool the buffer goes back to; set when a pool takes the segment from the
    /// network pool.
    pub(crate) owner: AtomicPtr<LocalInner>,
}

// SAFETY: the region's memory is owned by the network pool, which outlives every slot; the
// slot's own state is atomic. Who may touch the bytes when is the buffer protocol's business
// (see `Buffer`).
unsafe impl Send for Slot {}
// SAFETY: as for Send.
unsafe impl Sync for Slot {}

impl Slot {
    pub(crate) fn new(region: Region, index: u32) -> Slot {
        Slot {
            region,
            index,
            refs: RefCount::new(),
            reader: AtomicUsize::new(0),
            writer: CommitWord::new(),
            tag: AtomicU8::new(BUFFER_TAG_DATA),
            channel: AtomicU32::new(NO_CHANNEL),
            owner: AtomicPtr::new(std::ptr::null_mut()),
        }
    }
}

/// One counted reference to a pooled segment.
///
/// A buffer has a reader index and a writer index (its size, the bytes written), a small
/// user-defined type tag ([`BUFFER_TAG_DATA`], [`BUFFER_TAG_EVENT`] or any other `u8`) and a
/// reference count. [`retain`](Buffer::retain) makes another reference to the same buffer (the
/// indices and the tag are shared); dropping a reference releases it, and the last release
/// recycles the segment to its local pool. [`read_only_slice`](Buffer::read_only_slice) makes a
/// read-only window that shares the count; writing through it is [`Error::ReadOnly`].
///
/// The bytes are not synchronized (as in Flink): a buffer handed to another thread is read there
/// after the writer is done with it, or through a [`BufferBuilder`](super::BufferBuilder) /
/// [`BufferConsumer`](super::BufferConsumer) pair, which synchronizes the committed bytes.
pub struct Buffer {
    /// The slot's address, with `READ_ONLY` in its low bit: a whole writable buffer is the
    /// plain address.
    tagged: NonNull<Slot>,
    /// A slice's window (on the heap, so that a buffer is two words, passed and returned in
    /// registers); `None` for a reference to the whole buffer. Dropped by the buffer's drop,
    /// out of line, so that dropping a whole buffer is small enough to inline.
    pub(super) window: ManuallyDrop<Option<Box<Window>>>,
}

// SAFETY: a buffer is a counted reference to a slot whose state is atomic; the slot and its
// memory live as long as the network pool, which outlives every buffer it lent.
unsafe impl Send for Buffer {}
// SAFETY: every method takes `&self` and works on atomics or on the unsynchronized bytes, whose
// races are the caller's as documented.
unsafe impl Sync for Buffer {}

impl Buffer {
    /// The first reference to a slot just taken from its owner pool (`owner` set), which the
    /// requester holds alone: the count starts at 1, the indices and the tag are reset.
    #[inline(always)]
    pub(crate) fn first(slot: &Slot, channel: u32) -> Buffer {
        slot.refs.start();
        slot.reader.store(0, Ordering::Relaxed);
        slot.writer.publish(0);
        slot.tag.store(BUFFER_TAG_DATA, Ordering::Relaxed);
        // A slot out of a buffer has no channel (the recycle of a channel's buffer resets it).
        if channel != NO_CHANNEL {
            slot.channel.store(channel, Ordering::Relaxed);
        }
        Buffer {
            tagged: NonNull::from(slot),
            window: ManuallyDrop::new(None),
        }
    }

    #[inline(always)]
    pub(crate) fn slot(&self) -> &Slot {
        // SAFETY: without its view bits, `tagged` is the slot's address; the slot lives as long
        // as the network pool, which outlives every buffer.
        unsafe { &*self.tagged.as_ptr().map_addr(|a| a & !READ_ONLY) }
    }

    /// Another reference to the same memory, sharing the count: read-only if this one is or
    /// `read_only` says so, addressing `window` (`None`: the whole buffer).
    #[inline(always)]
    pub(super) fn share(&self, read_only: bool, window: Option<Box<Window>>) -> Buffer {
        let old = self.slot().refs.retain();
        if old >= u32::MAX / 2 {
            count_overflow();
        }
        Buffer {
            tagged: self
                .tagged
                .map_addr(|a| a | if read_only { READ_ONLY } else { 0 }),
            window: ManuallyDrop::new(window),
        }
    }

    /// Another reference to this buffer (Flink's `retainBuffer`): the same indices, tag and
    /// view; the segment is recycled when every reference is gone.
    #[inline]
    pub fn retain(&self) -> Buffer {
        self.share(false, self.window.as_ref().map(|w| Box::new(w.duplicate())))
    }

    /// Counts one more reference to the segment without a `Buffer` for it, for an owner that
    /// keeps its own count of references to this one (a C handle's retains), so that every
    /// reference sharing the segment sees it in [`ref_count`](Self::ref_count). Paired with
    /// [`release_counted`](Self::release_counted).
    pub(crate) fn retain_counted(&self) {
        if self.slot().refs.retain() >= u32::MAX / 2 {
            count_overflow();
        }
    }

    /// Takes back one reference counted by [`retain_counted`](Self::retain_counted). Never
    /// the segment's last: this buffer holds its own.
    pub(crate) fn release_counted(&self) {
        let last = self.slot().refs.release();
        debug_assert!(!last, "a counted reference outlived its buffer");
    }

    /// Number of references (buffers and slices) to this buffer's segment.
    pub fn ref_count(&self) -> u32 {
        self.slot().refs.get()
    }

    /// The segment's index in its network pool: the same index is never out twice at once.
    pub fn segment_index(&self) -> u32 {
        self.slot().index
    }

    /// Whether writes through this reference are refused (slices, a consumer's view).
    pub fn is_read_only(&self) -> bool {
        self.tagged.addr().get() & READ_ONLY != 0
    }

    /// Bytes this reference can address: the segment size, or a slice's length.
    pub fn capacity(&self) -> usize {
        match &*self.window {
            Some(window) => window.len,
            None => self.slot().region.len(),
        }
    }

    /// The writer index: bytes written so far (a slice's size is its length).
    pub fn size(&self) -> usize {
        match &*self.window {
            Some(window) => window.len,
            None => self.slot().writer.read().0,
        }
    }

    /// Sets the writer index. Fails with `ReadOnly` on a read-only reference, `OutOfBounds`
    /// past the capacity and `InvalidArgument` below the reader index.
    pub fn set_size(&self, size: usize) -> Result<()> {
        self.check_writable("set the size of")?;
        if size > self.capacity() {
            return Err(Error::OutOfBounds {
                offset: size,
                len: 0,
                size: self.capacity(),
            });
        }
        let reader = self.reader_index();
        if size < reader {
            return Err(Error::invalid(format!(
                "size {size} is below the reader index {reader}"
            )));
        }
        self.slot().writer.publish(size);
        Ok(())
    }

    /// The reader index: bytes already read.
    pub fn reader_index(&self) -> usize {
        self.reader().load(Ordering::Relaxed)
    }

    /// Where this reference's reader index lives: the slot, or a slice's window.
    fn reader(&self) -> &AtomicUsize {
        match &*self.window {
            Some(window) => &window.reader,
            None => &self.slot().reader,
        }
    }

    /// Sets the reader index; fails with `OutOfBounds` past the size.
    pub fn set_reader_index(&self, index: usize) -> Result<()> {
        let size = self.size();
        if index > size {
            return Err(Error::OutOfBounds {
                offset: index,
                len: 0,
                size,
            });
        }
        self.reader().store(index, Ordering::Relaxed);
        Ok(())
    }

    /// Bytes between the reader and the writer index.
    pub fn readable_bytes(&self) -> usize {
        self.size().saturating_sub(self.reader_index())
    }

    /// The type tag ([`BUFFER_TAG_DATA`] after a request).
    pub fn tag(&self) -> u8 {
        self.slot().tag.load(Ordering::Relaxed)
    }

    /// Sets the type tag; `ReadOnly` on a read-only reference.
    pub fn set_tag(&self, tag: u8) -> Result<()> {
        self.check_writable("tag")?;
        self.slot().tag.store(tag, Ordering::Relaxed);
        Ok(())
    }

    /// The channel the buffer was requested for, if any.
    pub fn channel(&self) -> Option<u32> {
        match self.slot().channel.load(Ordering::Relaxed) {
            NO_CHANNEL => None,
            c => Some(c),
        }
    }

    /// The memory this reference addresses: the whole segment, or the slice's window.
    pub fn region(&self) -> Region {
        let whole = self.slot().region;
        let Some(window) = &*self.window else {
            return whole;
        };
        let (start, len) = (window.start, window.len);
        // SAFETY: a slice's window was checked to lie inside the segment when it was made, and
        // the segment lives as long as the network pool.
        unsafe { Region::new(NonNull::new_unchecked(whole.as_ptr().add(start)), len) }
    }

    pub(super) fn check_writable(&self, what: &str) -> Result<()> {
        if self.is_read_only() {
            return Err(Error::ReadOnly(format!(
                "cannot {what} a read-only buffer reference (segment {})",
                self.slot().index
            )));
        }
        Ok(())
    }

    /// Copies `dst.len()` bytes at `offset` (from the start of this reference's window, up to
    /// its capacity) into `dst`.
    pub fn get_bytes(&self, offset: usize, dst: &mut [u8]) -> Result<()> {
        // SAFETY: `dst` is a valid, exclusively borrowed buffer of `dst.len()` bytes.
        unsafe { self.region().read_to(offset, dst.as_mut_ptr(), dst.len()) }
    }

    /// Copies `src` to `offset` of this buffer (up to its capacity). Does not move the
    /// indices. `ReadOnly` on a read-only reference.
    pub fn put_bytes(&self, offset: usize, src: &[u8]) -> Result<()> {
        self.check_writable("write to")?;
        // SAFETY: `src` is a valid buffer of `src.len()` bytes.
        unsafe { self.region().write_from(offset, src.as_ptr(), src.len()) }
    }

    /// Writes `src` at the writer index and advances it. `OutOfBounds` if it does not fit
    /// (nothing is written); `ReadOnly` on a read-only reference.
    pub fn append(&self, src: &[u8]) -> Result<()> {
        self.check_writable("append to")?;
        let size = self.size();
        // SAFETY: `src` is a valid buffer of `src.len()` bytes.
        unsafe { self.region().write_from(size, src.as_ptr(), src.len())? };
        self.slot().writer.publish(size + src.len());
        Ok(())
    }

    /// Reads `dst.len()` bytes at the reader index and advances it; `EndOfData` if fewer are
    /// readable (nothing is read).
    pub fn read(&self, dst: &mut [u8]) -> Result<()> {
        let reader = self.reader_index();
        let readable = self.readable_bytes();
        if dst.len() > readable {
            return Err(Error::EndOfData(format!(
                "{} bytes asked at reader index {reader}, {readable} readable",
                dst.len()
            )));
        }
        self.get_bytes(reader, dst)?;
        self.set_reader_index(reader + dst.len())
    }
}

/// Out of line, so that a retain stays small.
#[cold]
#[inline(never)]
fn count_overflow() -> ! {
    panic!("buffer reference count overflow")
}

impl Drop for Buffer {
    #[inline(always)]
    fn drop(&mut self) {
        if self.window.is_some() {
            self.drop_window();
        }
        let slot = self.slot();
        if slot.refs.release() {
            let owner = slot.owner.load(Ordering::Relaxed);
            // SAFETY: a local pool lives as long as its network pool (which keeps destroyed
            // pools' bookkeeping), and the network pool lives while any of its buffers is out.
            unsafe { (*owner).recycle(slot) };
        }
    }
}

impl Buffer {
    #[cold]
    #[inline(never)]
    fn drop_window(&mut self) {
        // SAFETY: called once, from the buffer's drop; the window is not used afterwards.
        unsafe { ManuallyDrop::drop(&mut self.window) };
    }
}

impl fmt::Debug for Buffer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Buffer")
            .field("segment", &self.slot().index)
            .field("reader_index", &self.reader_index())
            .field("size", &self.size())
            .field("capacity", &self.capacity())
            .field("tag", &self.tag())
            .field("read_only", &self.is_read_only())
            .field("refs", &self.ref_count())
            .finish()
    }
}
