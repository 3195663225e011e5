//! Network and local buffer pools through the C ABI: creation and destruction, requests
//! (non-blocking, per channel, blocking with a timeout), availability (callback and file
//! descriptor), listeners, exclusive segments and stats. Buffers, builders and consumers are in
//! `buffer.rs`.

use std::collections::HashMap;
use std::ffi::c_void;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::args::{checked_out, write_out};
use super::buffer::{memseg_buffer, memseg_buffer_builder, register_buffer, register_builder};
use super::handle::{HandleKind, HandleTable, Ref};
use super::segment::{lend, lent_region, memseg_segment, take_back};
use super::status::{FfiError, memseg_status};
use crate::error::Error;
use crate::ffi_boundary;
use crate::pool::{
    Buffer, BufferListener, ExclusiveSegment, LocalBufferPool, LocalPoolConfig, NetworkBufferPool,
    SegmentMemory,
};

/// A handle to a network buffer pool: a fixed number of segments of one size, allocated once.
///
/// Create with `memseg_network_pool_new()`; the caller owns it and must destroy it with
/// `memseg_network_pool_destroy()` once its local pools are destroyed and its buffers and
/// exclusive segments are back. Thread-safe.
#[allow(non_camel_case_types)]
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct memseg_network_pool {
    /// Opaque: kind tag, generation and slot. Zero is never a valid handle.
    pub bits: u64,
}

/// A handle to a local buffer pool: a share of a network pool between a minimum and a maximum
/// number of buffers.
///
/// Create with `memseg_local_pool_new()`; the caller owns it and must destroy it with
/// `memseg_local_pool_destroy()`. Buffers still out stay valid after that. Thread-safe.
#[allow(non_camel_case_types)]
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct memseg_local_pool {
    /// Opaque: kind tag, generation and slot. Zero is never a valid handle.
    pub bits: u64,
}

/// `memseg_network_pool_new()` flag: allocate the segments from the global allocator instead
/// of off-heap mappings (the default).
pub const MEMSEG_NETWORK_POOL_HEAP: u32 = 1 << 0;

/// "No channel": pass it as the channel of `memseg_local_pool_request_blocking()` and
/// `memseg_local_pool_request_builder()` for a request that names no channel.
pub const MEMSEG_NO_CHANNEL: u32 = u32::MAX;

/// The shape of a local pool (`memseg_local_pool_new()`).
#[allow(non_camel_case_types)]
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct memseg_local_pool_config {
    /// Buffers the pool is guaranteed (reserved in the network pool at creation).
    pub min: usize,
    /// Most buffers the pool may hold besides overdraft buffers; at least 1, at least `min`.
    pub max: usize,
    /// Number of channels a request may name (0: none).
    pub channels: u32,
    /// Most buffers one channel may hold at once (0: no limit); the pool is unavailable while
    /// a channel holds this many.
    pub max_per_channel: u32,
    /// Buffers that may be taken beyond the pool's size when it has none left; at most
    /// 2^31 − 1.
    pub max_overdraft: usize,
}

/// Counters of a network pool (`memseg_network_pool_stats()`).
#[allow(non_camel_case_types)]
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct memseg_network_pool_counters {
    /// Segments the pool owns.
    pub total: usize,
    /// Segments free (in no local pool, buffer or exclusive holder).
    pub available: usize,
    /// Segments reserved by local pools' minimums and exclusive segments.
    pub required: usize,
    /// Exclusive segments out.
    pub exclusive: usize,
    /// Live local pools.
    pub local_pools: usize,
    /// Segment size in bytes.
    pub segment_size: usize,
}

/// Counters of a local pool (`memseg_local_pool_stats()`).
#[allow(non_camel_case_types)]
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct memseg_local_pool_counters {
    /// Current size: the minimum plus a share of the redistributed segments.
    pub size: usize,
    /// Minimum.
    pub min: usize,
    /// Maximum.
    pub max: usize,
    /// Buffers out, overdraft buffers included.
    pub in_use: usize,
    /// Segments held ready for requests.
    pub available: usize,
    /// Overdraft buffers out.
    pub overdraft: usize,
    /// Requests that had to wait.
    pub waited_requests: u64,
}

/// Availability callback: called with `ctx` each time the pool becomes available, on the
/// thread that made it so (a recycling or destroying thread), without memseg's locks held. It
/// may call into memseg; a callback that releases a buffer of this pool makes it available
/// again and is called again, nested, so it should take buffers or wake another thread, not
/// release them.
#[allow(non_camel_case_types)]
pub type memseg_pool_available_fn = Option<unsafe extern "C" fn(ctx: *mut c_void)>;

/// Buffer listener: called with `ctx` and a recycled buffer, which the listener now owns and
/// must release with `memseg_buffer_release()`. Returns whether it wants more buffers (it then
/// stays registered). Called once with a zero buffer if the pool is destroyed while the
/// listener is registered; its return value is then ignored.
#[allow(non_camel_case_types)]
pub type memseg_buffer_listener_fn =
    Option<unsafe extern "C" fn(ctx: *mut c_void, buffer: memseg_buffer) -> bool>;

pub(crate) struct NetworkEntry {
    pool: NetworkBufferPool,
    exclusive: Mutex<HashMap<u64, ExclusiveSegment>>,
}

static NETWORKS: HandleTable<NetworkEntry> = HandleTable::new(HandleKind::NetworkPool);
/// Local pools are `Arc`s: an output view keeps its pool.
static LOCALS: HandleTable<Arc<LocalBufferPool>> = HandleTable::new(HandleKind::LocalPool);

/// The local pool a live handle names (for the output views that take their pages from it).
pub(crate) fn local_pool_of(
    pool: memseg_local_pool,
) -> Result<Ref<'static, Arc<LocalBufferPool>>, FfiError> {
    Ok(LOCALS.get(pool.bits)?)
}

fn no_free_handles(what: &str) -> FfiError {
    FfiError::Core(Error::AllocationFailed {
        size: 0,
        reason: format!("no free {what} handles (2^32 in use)"),
    })
}

fn timeout_of(timeout_ms: i64) -> Option<Duration> {
    u64::try_from(timeout_ms).ok().map(Duration::from_millis)
}

fn channel_of(channel: u32) -> Option<u32> {
    (channel != MEMSEG_NO_CHANNEL).then_some(channel)
}

/// Allocates a network pool of `count` segments of `segment_size` bytes and writes its handle
/// to `*out_pool`. `flags` is 0 (off-heap segments) or `MEMSEG_NETWORK_POOL_HEAP`.
///
/// Fails with `MEMSEG_STATUS_INVALID_ARGUMENT` for a count or size of 0, a count of `UINT32_MAX`
/// or more, or unknown flags, and `MEMSEG_STATUS_ALLOCATION_FAILED` when memory is refused
/// (nothing stays allocated). The caller owns the pool and must destroy it with
/// `memseg_network_pool_destroy()`. Thread-safe.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn memseg_network_pool_new(
    count: usize,
    segment_size: usize,
    flags: u32,
    out_pool: *mut memseg_network_pool,
) -> memseg_status {
    ffi_boundary!({
        let out = checked_out(out_pool, "out_pool")?;
        if flags & !MEMSEG_NETWORK_POOL_HEAP != 0 {
            return Err(Error::invalid(format!(
                "unknown network pool flag bits {:#x}",
                flags & !MEMSEG_NETWORK_POOL_HEAP
            ))
            .into());
        }
        let memory = if flags & MEMSEG_NETWORK_POOL_HEAP != 0 {
            SegmentMemory::Heap
        } else {
            SegmentMemory::default()
        };
        let bits = NETWORKS.insert_with(
            || {
                let pool = NetworkBufferPool::new(count, segment_size, memory)?;
                let entry = NetworkEntry {
                    pool,
                    exclusive: Mutex::new(HashMap::new()),
                };
                Ok::<_, FfiError>((entry, (std::ptr::null_mut(), 0)))
            },
            || no_free_handles("network pool"),
        )?;
        // SAFETY: `out` was checked non-null; the caller promises it is writable.
        unsafe { write_out(out, memseg_network_pool { bits }) };
        Ok(())
    })
}

/// Destroys a network pool and frees its memory. Every copy of the handle becomes stale.
///
/// Refused with `MEMSEG_STATUS_IN_USE` while local pools are alive or buffers or exclusive
/// segments are out (the last error message lists them); nothing changes then. A zero handle
/// is a no-op; a second destroy is `MEMSEG_STATUS_STALE_HANDLE`. No other call on the pool may
/// be running.
#[unsafe(no_mangle)]
pub extern "C" fn memseg_network_pool_destroy(pool: memseg_network_pool) -> memseg_status {
    ffi_boundary!({
        if pool.bits == 0 {
            return Ok(());
        }
        let entry = NETWORKS.remove_if(pool.bits, |entry| {
            entry.pool.destroy().map_err(FfiError::from)
        })?;
        drop(entry);
        Ok(())
    })
}

/// Writes the network pool's counters to `*out_stats`. Thread-safe.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn memseg_network_pool_stats(
    pool: memseg_network_pool,
    out_stats: *mut memseg_network_pool_counters,
) -> memseg_status {
    ffi_boundary!({
        let out = checked_out(out_stats, "out_stats")?;
        let s = NETWORKS.get(pool.bits)?.pool.stats();
        let stats = memseg_network_pool_counters {
            total: s.total,
            available: s.available,
            required: s.required,
            exclusive: s.exclusive,
            local_pools: s.local_pools,
            segment_size: s.segment_size,
        };
        // SAFETY: `out` was checked non-null; the caller promises it is writable.
        unsafe { write_out(out, stats) };
        Ok(())
    })
}

/// Takes `count` segments from the network pool for exclusive use, all or nothing, and writes
/// `count` segment handles to `out_segments[0..count]`.
///
/// The count is reserved at once, as a local pool's minimum (`MEMSEG_STATUS_INVALID_ARGUMENT`
/// if it does not fit beside the minimums and other exclusive segments); the segments may still
/// be in local pools shrinking to make room, so this waits up to `timeout_ms` milliseconds
/// (negative: without limit) and fails with `MEMSEG_STATUS_TIMEOUT`, taking nothing. The
/// handles work with every `memseg_segment_*` accessor; the caller must give them back with
/// `memseg_network_pool_recycle_exclusive()` (`memseg_segment_free()` refuses them).
/// Thread-safe.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn memseg_network_pool_request_exclusive(
    pool: memseg_network_pool,
    count: usize,
    timeout_ms: i64,
    out_segments: *mut memseg_segment,
) -> memseg_status {
    ffi_boundary!({
        let out = checked_out(out_segments, "out_segments")?;
        let entry = NETWORKS.get(pool.bits)?;
        let timeout = timeout_of(timeout_ms).unwrap_or(Duration::MAX);
        let segments = entry.pool.request_exclusive(count, timeout)?;
        let mut handles = Vec::with_capacity(count);
        for segment in &segments {
            let region = segment.segment().region();
            // SAFETY: the region stays valid until the loan ends in
            // `memseg_network_pool_recycle_exclusive`, which keeps the exclusive segment (and
            // the network pool's memory) alive until then.
            match unsafe { lend(region, segment.segment().kind(), pool.bits) } {
                Ok(handle) => handles.push(handle),
                Err(e) => {
                    for handle in handles {
                        let _ = take_back(handle, pool.bits);
                    }
                    entry.pool.recycle_exclusive(segments)?;
                    return Err(e);
                }
            }
        }
        let mut map = entry.exclusive.lock().unwrap_or_else(|e| e.into_inner());
        for (i, (handle, segment)) in handles.iter().zip(segments).enumerate() {
            map.insert(handle.bits, segment);
            // SAFETY: the caller promises `out_segments` is writable for `count` handles.
            unsafe { write_out(out.add(i), *handle) };
        }
        Ok(())
    })
}

/// Gives back `count` exclusive segments (`segments[0..count]`) of this network pool: their
/// handles become stale and the pool redistributes. All or nothing: a handle that is not an
/// exclusive segment of this pool, or one listed twice, fails the call
/// (`MEMSEG_STATUS_INVALID_ARGUMENT` or a handle status) and nothing is given back.
/// `segments` may be NULL when `count` is 0. Thread-safe.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn memseg_network_pool_recycle_exclusive(
    pool: memseg_network_pool,
    segments: *const memseg_segment,
    count: usize,
) -> memseg_status {
    ffi_boundary!({
        let entry = NETWORKS.get(pool.bits)?;
        if count == 0 {
            return Ok(());
        }
        if segments.is_null() {
            return Err(FfiError::NullArgument("segments"));
        }
        // SAFETY: the caller promises `segments` is readable for `count` handles.
        let list = unsafe { std::slice::from_raw_parts(segments, count) };
        let mut map = entry.exclusive.lock().unwrap_or_else(|e| e.into_inner());
        let mut seen = std::collections::HashSet::new();
        for handle in list {
            lent_region(*handle, pool.bits)?;
            if !seen.insert(handle.bits) || !map.contains_key(&handle.bits) {
                return Err(Error::invalid(format!(
                    "segment handle {:#018x} is listed twice",
                    handle.bits
                ))
                .into());
            }
        }
        let mut back = Vec::with_capacity(count);
        for handle in list {
            take_back(*handle, pool.bits)?;
            back.push(map.remove(&handle.bits).expect("checked above"));
        }
        drop(map);
        entry.pool.recycle_exclusive(back)?;
        Ok(())
    })
}

/// Creates a local pool of the network pool, shaped by `*config`, and writes its handle to
/// `*out_pool`. The segments above all pools' minimums are redistributed.
///
/// Fails with `MEMSEG_STATUS_INVALID_ARGUMENT` if `min > max`, `max` is 0, a per-channel
/// maximum is given without channels, or the minimum does not fit beside the other pools'
/// minimums and the exclusive segments ("insufficient network buffers"). The caller owns the
/// pool and must destroy it with `memseg_local_pool_destroy()`. Thread-safe.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn memseg_local_pool_new(
    network: memseg_network_pool,
    config: *const memseg_local_pool_config,
    out_pool: *mut memseg_local_pool,
) -> memseg_status {
    ffi_boundary!({
        let out = checked_out(out_pool, "out_pool")?;
        if config.is_null() {
            return Err(FfiError::NullArgument("config"));
        }
        // SAFETY: checked non-null; the caller promises it points to a config.
        let c = unsafe { config.read_unaligned() };
        let entry = NETWORKS.get(network.bits)?;
        let bits = LOCALS.insert_with(
            || {
                let pool = entry.pool.create_local_pool(LocalPoolConfig {
                    min: c.min,
                    max: c.max,
                    channels: c.channels,
                    max_per_channel: c.max_per_channel,
                    max_overdraft: c.max_overdraft,
                })?;
                Ok::<_, FfiError>((Arc::new(pool), (std::ptr::null_mut(), 0)))
            },
            || no_free_handles("local pool"),
        )?;
        // SAFETY: `out` was checked non-null; the caller promises it is writable.
        unsafe { write_out(out, memseg_local_pool { bits }) };
        Ok(())
    })
}

/// Destroys a local pool: its free segments go back to the network pool, buffers still out
/// stay valid and go back on their last release, listeners are told, blocked requests return
/// `MEMSEG_STATUS_CLOSED`, and its file descriptor is closed. Every copy of the handle becomes
/// stale. A zero handle is a no-op; a second destroy is `MEMSEG_STATUS_STALE_HANDLE`.
#[unsafe(no_mangle)]
pub extern "C" fn memseg_local_pool_destroy(pool: memseg_local_pool) -> memseg_status {
    ffi_boundary!({
        if let Some(entry) = LOCALS.free(pool.bits)? {
            // Destroy now, even if another thread's call still holds the pool for a moment.
            let _ = entry.destroy();
        }
        Ok(())
    })
}

fn request_into(
    out_buffer: *mut memseg_buffer,
    request: impl FnOnce() -> Result<Buffer, Error>,
) -> Result<(), FfiError> {
    let out = checked_out(out_buffer, "out_buffer")?;
    let handle = register_buffer(request()?)?;
    // SAFETY: `out` was checked non-null; the caller promises it is writable.
    unsafe { write_out(out, handle) };
    Ok(())
}

/// Requests a buffer without waiting and writes its handle to `*out_buffer`;
/// `MEMSEG_STATUS_WOULD_BLOCK` when none is free (overdraft buffers included),
/// `MEMSEG_STATUS_CLOSED` after destroy. The caller owns the buffer and must release it with
/// `memseg_buffer_release()`. Thread-safe.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn memseg_local_pool_request(
    pool: memseg_local_pool,
    out_buffer: *mut memseg_buffer,
) -> memseg_status {
    ffi_boundary!({
        let pool = LOCALS.get(pool.bits)?;
        request_into(out_buffer, || pool.request())
    })
}

/// As `memseg_local_pool_request()`, for `channel` (below the pool's channel count):
/// also `MEMSEG_STATUS_WOULD_BLOCK` while the channel holds its maximum, and
/// `MEMSEG_STATUS_INVALID_ARGUMENT` for a channel the pool does not have. Thread-safe.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn memseg_local_pool_request_channel(
    pool: memseg_local_pool,
    channel: u32,
    out_buffer: *mut memseg_buffer,
) -> memseg_status {
    ffi_boundary!({
        let pool = LOCALS.get(pool.bits)?;
        request_into(out_buffer, || pool.request_for_channel(channel))
    })
}

/// Requests a buffer for `channel` (or `MEMSEG_NO_CHANNEL`), waiting up to `timeout_ms`
/// milliseconds (negative: without limit) for one; `MEMSEG_STATUS_TIMEOUT` if none came,
/// `MEMSEG_STATUS_CLOSED` if the pool is destroyed meanwhile. The caller owns the buffer and
/// must release it with `memseg_buffer_release()`. Thread-safe.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn memseg_local_pool_request_blocking(
    pool: memseg_local_pool,
    channel: u32,
    timeout_ms: i64,
    out_buffer: *mut memseg_buffer,
) -> memseg_status {
    ffi_boundary!({
        let pool = LOCALS.get(pool.bits)?;
        request_into(out_buffer, || {
            pool.request_blocking(channel_of(channel), timeout_of(timeout_ms))
        })
    })
}

/// Requests a buffer without waiting, for `channel` (or `MEMSEG_NO_CHANNEL`), and writes a
/// builder on it to `*out_builder`. The caller owns the builder and must free it with
/// `memseg_buffer_builder_free()`. Thread-safe.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn memseg_local_pool_request_builder(
    pool: memseg_local_pool,
    channel: u32,
    out_builder: *mut memseg_buffer_builder,
) -> memseg_status {
    ffi_boundary!({
        let out = checked_out(out_builder, "out_builder")?;
        let pool = LOCALS.get(pool.bits)?;
        let builder = pool.request_builder(channel_of(channel))?;
        let handle = register_builder(builder)?;
        // SAFETY: `out` was checked non-null; the caller promises it is writable.
        unsafe { write_out(out, handle) };
        Ok(())
    })
}

/// Requests a buffer for `channel` (or `MEMSEG_NO_CHANNEL`) as
/// `memseg_local_pool_request_blocking()` does, waiting up to `timeout_ms` (negative: without
/// limit), and writes a builder on it to `*out_builder`: `MEMSEG_STATUS_TIMEOUT` when none
/// came back in time, `MEMSEG_STATUS_CLOSED` if the pool is destroyed meanwhile. The caller
/// owns the builder and must free it with `memseg_buffer_builder_free()`. Thread-safe.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn memseg_local_pool_request_builder_blocking(
    pool: memseg_local_pool,
    channel: u32,
    timeout_ms: i64,
    out_builder: *mut memseg_buffer_builder,
) -> memseg_status {
    ffi_boundary!({
        let out = checked_out(out_builder, "out_builder")?;
        let pool = LOCALS.get(pool.bits)?;
        let builder = pool.request_builder_blocking(channel_of(channel), timeout_of(timeout_ms))?;
        let handle = register_builder(builder)?;
        // SAFETY: `out` was checked non-null; the caller promises it is writable.
        unsafe { write_out(out, handle) };
        Ok(())
    })
}

/// Writes whether a buffer can be requested now without waiting and no channel is at its
/// limit. Thread-safe.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn memseg_local_pool_is_available(
    pool: memseg_local_pool,
    out_available: *mut bool,
) -> memseg_status {
    ffi_boundary!({
        let out = checked_out(out_available, "out_available")?;
        let available = LOCALS.get(pool.bits)?.is_available();
        // SAFETY: `out` was checked non-null; the caller promises it is writable.
        unsafe { write_out(out, available) };
        Ok(())
    })
}

/// Writes the pool's file descriptor to `*out_fd`: an eventfd that is readable while the pool
/// is available (`poll`/`epoll` for `POLLIN`). The pool owns it: do not read, write or close
/// it. It is valid until the pool is destroyed (remove it from an epoll set first). The same
/// descriptor is returned each time. Thread-safe.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn memseg_local_pool_fd(
    pool: memseg_local_pool,
    out_fd: *mut i32,
) -> memseg_status {
    ffi_boundary!({
        let out = checked_out(out_fd, "out_fd")?;
        let fd = LOCALS.get(pool.bits)?.fd()?;
        // SAFETY: `out` was checked non-null; the caller promises it is writable.
        unsafe { write_out(out, fd) };
        Ok(())
    })
}

/// A host context pointer, carried to a callback on another thread.
#[derive(Clone, Copy)]
struct HostContext(*mut c_void);
// SAFETY: memseg never dereferences the context; it hands it back to the host's callback,
// which the host wrote to be called from the threads this function's doc names.
unsafe impl Send for HostContext {}
// SAFETY: as for Send.
unsafe impl Sync for HostContext {}

/// Sets the availability callback (NULL `callback` removes it): `callback(ctx)` runs each time
/// the pool becomes available. Thread-safe.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn memseg_local_pool_set_callback(
    pool: memseg_local_pool,
    callback: memseg_pool_available_fn,
    ctx: *mut c_void,
) -> memseg_status {
    ffi_boundary!({
        let pool = LOCALS.get(pool.bits)?;
        let context = HostContext(ctx);
        let callback = callback.map(|f| -> crate::pool::AvailabilityCallback {
            Arc::new(move || {
                let context = context;
                // SAFETY: the host registered `f` for this context.
                unsafe { f(context.0) }
            })
        });
        pool.set_availability_callback(callback)?;
        Ok(())
    })
}

struct HostListener {
    callback: unsafe extern "C" fn(ctx: *mut c_void, buffer: memseg_buffer) -> bool,
    context: HostContext,
}

impl BufferListener for HostListener {
    fn buffer_available(&self, buffer: Buffer) -> bool {
        match register_buffer(buffer) {
            // SAFETY: the host registered the callback for this context; it owns the handle.
            Ok(handle) => unsafe { (self.callback)(self.context.0, handle) },
            Err(_) => false,
        }
    }

    fn pool_destroyed(&self) {
        // SAFETY: as above; a zero handle says the pool is gone.
        unsafe { (self.callback)(self.context.0, memseg_buffer::default()) };
    }
}

/// Registers a listener for the next recycled buffer of an empty pool and writes whether it
/// was registered to `*out_registered`: `false` means a buffer is available now (request it
/// instead) and the listener was not registered, as Flink's `addBufferListener`. A listener is
/// called on the recycling thread (see `memseg_buffer_listener_fn`). Thread-safe.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn memseg_local_pool_add_listener(
    pool: memseg_local_pool,
    listener: memseg_buffer_listener_fn,
    ctx: *mut c_void,
    out_registered: *mut bool,
) -> memseg_status {
    ffi_boundary!({
        let out = checked_out(out_registered, "out_registered")?;
        let callback = listener.ok_or(FfiError::NullArgument("listener"))?;
        let pool = LOCALS.get(pool.bits)?;
        let registered = pool.add_listener(Arc::new(HostListener {
            callback,
            context: HostContext(ctx),
        }))?;
        // SAFETY: `out` was checked non-null; the caller promises it is writable.
        unsafe { write_out(out, registered) };
        Ok(())
    })
}

/// Writes the local pool's counters to `*out_stats`. Thread-safe.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn memseg_local_pool_stats(
    pool: memseg_local_pool,
    out_stats: *mut memseg_local_pool_counters,
) -> memseg_status {
    ffi_boundary!({
        let out = checked_out(out_stats, "out_stats")?;
        let s = LOCALS.get(pool.bits)?.stats();
        let stats = memseg_local_pool_counters {
            size: s.size,
            min: s.min,
            max: s.max,
            in_use: s.in_use,
            available: s.available,
            overdraft: s.overdraft,
            waited_requests: s.waited_requests,
        };
        // SAFETY: `out` was checked non-null; the caller promises it is writable.
        unsafe { write_out(out, stats) };
        Ok(())
    })
}
