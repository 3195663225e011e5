//! Buffer pools through the safe Rust API: sizes and redistribution, requests, waiting,
//! notification, channels, overdraft, listeners, exclusive segments, buffers, slices, the
//! builder/consumer hand-off, destruction, and a multi-threaded stress test.
//!
//! The stress test also runs under ThreadSanitizer:
//!
//! ```sh
//! RUSTFLAGS=-Zsanitizer=thread cargo +nightly test -Zbuild-std \
//!     --target x86_64-unknown-linux-gnu --test pool
//! ```
//!
//! (`rustup component add --toolchain nightly rust-src` first.) The reference count and the
//! builder/consumer hand-off are model-checked in `tests/loom_pool.rs`.

use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use memseg::Error;
use memseg::pool::{
    BUFFER_TAG_EVENT, Buffer, BufferListener, LocalPoolConfig, NetworkBufferPool, SegmentMemory,
};

fn network(count: usize) -> NetworkBufferPool {
    NetworkBufferPool::new(count, 4096, SegmentMemory::default()).unwrap()
}

#[test]
fn bad_configurations_are_refused_and_change_nothing() {
    let net = network(10);
    let e = net
        .create_local_pool(LocalPoolConfig::new(5, 4))
        .unwrap_err();
    assert!(
        matches!(&e, Error::InvalidArgument(m) if m.contains("minimum 5 is above its maximum 4")),
        "{e}"
    );
    assert!(matches!(
        net.create_local_pool(LocalPoolConfig::new(0, 0)),
        Err(Error::InvalidArgument(_))
    ));
    let e = net
        .create_local_pool(LocalPoolConfig {
            max_overdraft: 1 << 31,
            ..LocalPoolConfig::new(1, 1)
        })
        .unwrap_err();
    assert!(
        matches!(&e, Error::InvalidArgument(m) if m.contains("overdraft maximum 2147483648 is above 2147483647")),
        "{e}"
    );
    let a = net.create_local_pool(LocalPoolConfig::new(6, 6)).unwrap();
    let e = net
        .create_local_pool(LocalPoolConfig::new(5, 8))
        .unwrap_err();
    assert!(
        matches!(&e, Error::InvalidArgument(m) if m.contains("insufficient network buffers")),
        "{e}"
    );
    assert_eq!(net.stats().required, 6);
    assert_eq!(net.stats().local_pools, 1);
    drop(a);
    assert!(matches!(
        NetworkBufferPool::new(0, 4096, SegmentMemory::Heap),
        Err(Error::InvalidArgument(_))
    ));
    assert!(matches!(
        NetworkBufferPool::new(1, 0, SegmentMemory::Heap),
        Err(Error::InvalidArgument(_))
    ));
}

#[test]
fn spare_segments_are_shared_in_proportion_to_spare_capacity() {
    let net = network(100);
    let a = net.create_local_pool(LocalPoolConfig::new(10, 50)).unwrap();
    assert_eq!(a.stats().size, 50, "alone, a pool gets up to its maximum");
    let b = net.create_local_pool(LocalPoolConfig::new(10, 90)).unwrap();
    // 80 spare segments, capacities 40 and 80: a gets 80 * 40 / 120 = 26.
    assert_eq!((a.stats().size, b.stats().size), (36, 64));
    let c = net.create_local_pool(LocalPoolConfig::new(5, 5)).unwrap();
    assert_eq!(c.stats().size, 5);
    assert_eq!(a.stats().size + b.stats().size + c.stats().size, 100);
    drop(b);
    assert_eq!(a.stats().size, 50);
    assert_eq!(net.stats().required, 15);
}

#[test]
fn a_shrinking_pool_gives_back_its_excess_as_buffers_come_back() {
    let net = network(8);
    let a = net.create_local_pool(LocalPoolConfig::new(2, 8)).unwrap();
    let held: Vec<Buffer> = (0..8).map(|_| a.request().unwrap()).collect();
    let b = net.create_local_pool(LocalPoolConfig::new(2, 8)).unwrap();
    // 4 spare segments, equal capacities: 2 each.
    assert_eq!(a.stats().size, 4);
    assert!(matches!(b.request(), Err(Error::WouldBlock(_))));
    let waiter = std::thread::spawn(move || {
        let got = b
            .request_blocking(None, Some(Duration::from_secs(10)))
            .map(|b| b.segment_index());
        (got, b)
    });
    std::thread::sleep(Duration::from_millis(20));
    drop(held);
    let (got, b) = waiter.join().unwrap();
    assert!(got.is_ok());
    assert_eq!(b.stats().waited_requests, 1);
    assert_eq!(a.stats().in_use, 0);
    assert!(a.stats().available <= 4);
}

#[test]
fn requests_would_block_time_out_and_wake_up() {
    let net = network(2);
    let pool = net.create_local_pool(LocalPoolConfig::new(2, 2)).unwrap();
    let one = pool.request().unwrap();
    let two = pool.request().unwrap();
    assert_ne!(one.segment_index(), two.segment_index());
    assert!(matches!(pool.request(), Err(Error::WouldBlock(_))));
    let start = Instant::now();
    let e = pool
        .request_blocking(None, Some(Duration::from_millis(30)))
        .unwrap_err();
    assert!(matches!(e, Error::Timeout(_)), "{e}");
    assert!(start.elapsed() >= Duration::from_millis(30));
    let stats = pool.stats();
    assert_eq!((stats.in_use, stats.waited_requests), (2, 1));
    std::thread::scope(|s| {
        let waiter = s.spawn(|| pool.request_blocking(None, None).map(|b| b.segment_index()));
        std::thread::sleep(Duration::from_millis(20));
        let index = one.segment_index();
        drop(one);
        assert_eq!(waiter.join().unwrap().unwrap(), index);
    });
}

fn readable(fd: i32) -> bool {
    let mut p = libc_poll(fd);
    p.1 = 0;
    p.0
}

fn libc_poll(fd: i32) -> (bool, i32) {
    #[repr(C)]
    struct PollFd {
        fd: i32,
        events: i16,
        revents: i16,
    }
    unsafe extern "C" {
        fn poll(fds: *mut PollFd, n: u64, timeout: i32) -> i32;
    }
    let mut p = PollFd {
        fd,
        events: 1,
        revents: 0,
    };
    // SAFETY: one valid pollfd.
    let n = unsafe { poll(&mut p, 1, 0) };
    (n == 1 && p.revents & 1 != 0, n)
}

#[test]
fn the_fd_and_the_callback_follow_availability() {
    let net = network(2);
    let pool = net.create_local_pool(LocalPoolConfig::new(2, 2)).unwrap();
    let calls = Arc::new(AtomicUsize::new(0));
    let c = Arc::clone(&calls);
    pool.set_availability_callback(Some(Arc::new(move || {
        c.fetch_add(1, Ordering::SeqCst);
    })))
    .unwrap();
    let fd = pool.fd().unwrap();
    assert!(readable(fd));
    let a = pool.request().unwrap();
    assert!(readable(fd));
    let b = pool.request().unwrap();
    assert!(!readable(fd), "no buffer left");
    assert!(!pool.is_available());
    drop(a);
    assert!(readable(fd));
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    drop(b);
    assert_eq!(calls.load(Ordering::SeqCst), 1, "only transitions are told");
    pool.destroy().unwrap();
    assert!(matches!(pool.destroy(), Err(Error::Closed(_))));
    assert!(matches!(pool.request(), Err(Error::Closed(_))));
    assert!(matches!(pool.fd(), Err(Error::Closed(_))));
}

#[test]
fn a_channel_at_its_limit_blocks_and_makes_the_pool_unavailable() {
    let net = network(8);
    let pool = net
        .create_local_pool(LocalPoolConfig {
            min: 8,
            max: 8,
            channels: 2,
            max_per_channel: 2,
            max_overdraft: 0,
        })
        .unwrap();
    let fd = pool.fd().unwrap();
    let a = pool.request_for_channel(0).unwrap();
    assert_eq!(a.channel(), Some(0));
    assert!(readable(fd));
    let b = pool.request_for_channel(0).unwrap();
    assert!(!pool.is_available() && !readable(fd));
    let e = pool.request_for_channel(0).unwrap_err();
    assert!(
        matches!(&e, Error::WouldBlock(m) if m.contains("channel 0")),
        "{e}"
    );
    assert!(pool.request_for_channel(1).is_ok());
    assert!(matches!(
        pool.request_for_channel(2),
        Err(Error::InvalidArgument(_))
    ));
    assert!(matches!(
        pool.request_blocking(Some(0), Some(Duration::from_millis(5))),
        Err(Error::Timeout(_))
    ));
    drop(b);
    assert!(pool.is_available() && readable(fd));
    drop(a);
    // Every segment has been out for a channel; one requested without a channel names none.
    let all: Vec<_> = (0..8).map(|_| pool.request().unwrap()).collect();
    assert!(all.iter().all(|b| b.channel().is_none()));
}

#[test]
fn overdraft_buffers_go_beyond_the_size_and_straight_back() {
    let net = network(4);
    let pool = net
        .create_local_pool(LocalPoolConfig {
            min: 2,
            max: 2,
            max_overdraft: 1,
            ..Default::default()
        })
        .unwrap();
    let held: Vec<Buffer> = (0..3).map(|_| pool.request().unwrap()).collect();
    assert_eq!(pool.stats().overdraft, 1);
    assert!(matches!(pool.request(), Err(Error::WouldBlock(_))));
    assert!(!pool.is_available());
    drop(held);
    let stats = pool.stats();
    assert_eq!((stats.overdraft, stats.in_use, stats.available), (0, 0, 2));
    assert_eq!(net.stats().available, 2);
}

struct Collect(Mutex<Vec<Buffer>>, usize);
impl BufferListener for Collect {
    fn buffer_available(&self, buffer: Buffer) -> bool {
        let mut got = self.0.lock().unwrap();
        got.push(buffer);
        got.len() < self.1
    }
}

#[test]
fn listeners_get_recycled_buffers_in_order_until_they_have_enough() {
    let net = network(2);
    let pool = net.create_local_pool(LocalPoolConfig::new(2, 2)).unwrap();
    let first = Arc::new(Collect(Mutex::new(Vec::new()), 2));
    assert!(
        !pool.add_listener(first.clone()).unwrap(),
        "buffers are available: not registered"
    );
    let a = pool.request().unwrap();
    let b = pool.request().unwrap();
    let second = Arc::new(Collect(Mutex::new(Vec::new()), 1));
    assert!(pool.add_listener(first.clone()).unwrap());
    assert!(pool.add_listener(second.clone()).unwrap());
    drop(a);
    assert_eq!(first.0.lock().unwrap().len(), 1);
    drop(b);
    assert_eq!(
        (
            first.0.lock().unwrap().len(),
            second.0.lock().unwrap().len()
        ),
        (1, 1)
    );
    let taken = std::mem::take(&mut *first.0.lock().unwrap());
    drop(taken);
    assert_eq!(
        first.0.lock().unwrap().len(),
        1,
        "wanted more: got the one just recycled"
    );
    assert_eq!(pool.stats().in_use, 2);
}

#[test]
fn exclusive_segments_are_all_or_nothing() {
    let net = network(4);
    let pool = net.create_local_pool(LocalPoolConfig::new(1, 4)).unwrap();
    let held: Vec<Buffer> = (0..4).map(|_| pool.request().unwrap()).collect();
    assert!(matches!(
        net.request_exclusive(4, Duration::ZERO),
        Err(Error::InvalidArgument(_))
    ));
    let e = net
        .request_exclusive(2, Duration::from_millis(10))
        .unwrap_err();
    assert!(matches!(e, Error::Timeout(_)), "{e}");
    assert_eq!(net.stats().exclusive, 0);
    assert_eq!(pool.stats().size, 4);
    std::thread::scope(|s| {
        let taker = s.spawn(|| net.request_exclusive(2, Duration::from_secs(10)));
        std::thread::sleep(Duration::from_millis(20));
        drop(held);
        let mut got = taker.join().unwrap().unwrap();
        assert_eq!(got.len(), 2);
        assert_eq!(pool.stats().size, 2);
        got[0]
            .segment_mut()
            .put(0, 7u64, memseg::ByteOrder::Big)
            .unwrap();
        assert_eq!(
            got[0].segment().get::<u64>(0, memseg::ByteOrder::Big),
            Ok(7)
        );
        net.recycle_exclusive(got).unwrap();
    });
    assert_eq!(pool.stats().size, 4);
    assert_eq!(net.stats().exclusive, 0);
}

#[test]
fn buffers_count_references_and_slices_are_read_only() {
    let net = network(1);
    let pool = net.create_local_pool(LocalPoolConfig::new(1, 1)).unwrap();
    let buffer = pool.request().unwrap();
    assert_eq!(
        (buffer.size(), buffer.capacity(), buffer.tag()),
        (0, 4096, 0)
    );
    buffer.append(b"hello world").unwrap();
    buffer.set_tag(BUFFER_TAG_EVENT).unwrap();
    let again = buffer.retain();
    assert_eq!(buffer.ref_count(), 2);
    let slice = again.read_only_slice(6, 5).unwrap();
    assert_eq!(buffer.ref_count(), 3);
    let mut five = [0u8; 5];
    slice.read(&mut five).unwrap();
    assert_eq!(&five, b"world");
    assert!(matches!(slice.read(&mut five), Err(Error::EndOfData(_))));
    assert!(matches!(slice.put_bytes(0, b"x"), Err(Error::ReadOnly(_))));
    assert!(matches!(slice.set_size(1), Err(Error::ReadOnly(_))));
    assert!(matches!(
        again.read_only_slice(6, 6),
        Err(Error::OutOfBounds { .. })
    ));
    assert!(matches!(
        buffer.set_size(4097),
        Err(Error::OutOfBounds { .. })
    ));
    assert_eq!(slice.tag(), BUFFER_TAG_EVENT);
    drop(buffer);
    drop(again);
    assert!(
        matches!(pool.request(), Err(Error::WouldBlock(_))),
        "the slice holds the segment"
    );
    drop(slice);
    let fresh = pool.request().unwrap();
    assert_eq!(
        (
            fresh.size(),
            fresh.reader_index(),
            fresh.tag(),
            fresh.ref_count()
        ),
        (0, 0, 0, 1)
    );
}

#[test]
fn destroying_a_local_pool_keeps_its_buffers_valid() {
    let net = network(4);
    let pool = net.create_local_pool(LocalPoolConfig::new(2, 4)).unwrap();
    let buffer = pool.request().unwrap();
    buffer.append(b"still here").unwrap();
    let e = net.destroy().unwrap_err();
    assert!(
        matches!(&e, Error::InUse(m) if m.contains("1 local pool")),
        "{e}"
    );
    drop(pool);
    let e = net.destroy().unwrap_err();
    assert!(
        matches!(&e, Error::InUse(m) if m.contains("1 of 4 segments out")),
        "{e}"
    );
    assert_eq!(net.stats().available, 3);
    let mut bytes = [0u8; 10];
    buffer.get_bytes(0, &mut bytes).unwrap();
    assert_eq!(&bytes, b"still here");
    drop(buffer);
    assert_eq!(net.stats().available, 4);
    net.destroy().unwrap();
    assert!(matches!(net.destroy(), Err(Error::Closed(_))));
    assert!(matches!(
        net.create_local_pool(LocalPoolConfig::new(1, 1)),
        Err(Error::Closed(_))
    ));
}

#[test]
fn a_builder_hands_committed_bytes_to_a_consumer_on_another_thread() {
    let net = network(1);
    let pool = net.create_local_pool(LocalPoolConfig::new(1, 1)).unwrap();
    let mut builder = pool.request_builder(None).unwrap();
    let mut consumer = builder.create_consumer();
    let reader = std::thread::spawn(move || {
        let mut got = Vec::new();
        while !consumer.is_finished() {
            let slice = consumer.build();
            let mut bytes = vec![0u8; slice.size()];
            slice.get_bytes(0, &mut bytes).unwrap();
            assert!(slice.is_read_only());
            got.extend_from_slice(&bytes);
            std::hint::spin_loop();
        }
        got
    });
    let mut expected = Vec::new();
    for i in 0..1100u32 {
        let chunk = i.to_be_bytes();
        let n = builder.append(&chunk).unwrap();
        expected.extend_from_slice(&chunk[..n]);
        builder.commit();
    }
    assert!(builder.is_full());
    assert_eq!(builder.append(b"x").unwrap(), 0);
    assert_eq!(builder.finish(), 4096);
    assert_eq!(expected.len(), 4096);
    assert!(matches!(builder.append(b"x"), Err(Error::Closed(_))));
    assert_eq!(reader.join().unwrap(), expected);
    drop(builder);
    assert_eq!(pool.stats().in_use, 0);
}

/// Producers and consumers across pools, with slices and retains. Every buffer's first 8 bytes
/// name its owner; a segment handed out twice would be seen with two owners at once.
#[test]
fn stress_every_segment_comes_back_and_none_is_out_twice() {
    let rounds = if cfg!(miri) { 20 } else { 3000 };
    let net = NetworkBufferPool::new(32, 1024, SegmentMemory::Heap).unwrap();
    let pools: Vec<_> = (0..3)
        .map(|i| {
            net.create_local_pool(LocalPoolConfig {
                min: 2,
                max: 12,
                channels: 4,
                max_per_channel: 4,
                max_overdraft: i,
            })
            .unwrap()
        })
        .collect();
    let out: Mutex<HashSet<u32>> = Mutex::new(HashSet::new());
    let (tx, rx) = std::sync::mpsc::channel::<(u64, Buffer)>();
    let rx = Mutex::new(rx);
    std::thread::scope(|s| {
        for (t, pool) in pools.iter().enumerate() {
            let tx = tx.clone();
            let out = &out;
            s.spawn(move || {
                for r in 0..rounds {
                    let channel = (r % 4) as u32;
                    let buffer = match r % 3 {
                        0 => pool.request_blocking(Some(channel), Some(Duration::from_secs(10))),
                        1 => pool.request_blocking(None, Some(Duration::from_secs(10))),
                        _ => match pool.request() {
                            Ok(b) => Ok(b),
                            Err(Error::WouldBlock(_)) => continue,
                            Err(e) => Err(e),
                        },
                    }
                    .unwrap();
                    let index = buffer.segment_index();
                    assert!(out.lock().unwrap().insert(index), "handed out twice");
                    let stamp = (t * rounds + r) as u64;
                    buffer.append(&stamp.to_be_bytes()).unwrap();
                    let slice = buffer.read_only_slice(0, 8).unwrap();
                    let extra = buffer.retain();
                    // The segment stays out until the consumers drop both references; a
                    // segment handed out again meanwhile would have its stamp overwritten.
                    out.lock().unwrap().remove(&index);
                    tx.send((stamp, slice)).unwrap();
                    drop(buffer);
                    tx.send((stamp, extra)).unwrap();
                }
            });
        }
        drop(tx);
        for _ in 0..2 {
            let rx = &rx;
            s.spawn(move || {
                loop {
                    let Ok((stamp, b)) = rx.lock().unwrap().recv() else {
                        break;
                    };
                    let mut v = [0u8; 8];
                    b.get_bytes(0, &mut v).unwrap();
                    assert_eq!(
                        u64::from_be_bytes(v),
                        stamp,
                        "segment {} reused while referenced",
                        b.segment_index()
                    );
                }
            });
        }
    });
    for pool in &pools {
        assert_eq!(pool.stats().in_use, 0);
    }
    drop(pools);
    let stats = net.stats();
    assert_eq!((stats.available, stats.total), (32, 32));
    net.destroy().unwrap();
}

/// A listener that registers itself again and requests from the pool inside its callback, and
/// an availability callback that requests: no callback runs under a lock of the pool.
#[test]
fn callbacks_may_call_back_into_the_pool() {
    struct Again {
        pool: Mutex<Option<Arc<memseg::pool::LocalBufferPool>>>,
        got: AtomicUsize,
    }
    impl BufferListener for Again {
        fn buffer_available(&self, buffer: Buffer) -> bool {
            self.got.fetch_add(1, Ordering::SeqCst);
            let pool = self.pool.lock().unwrap().clone().unwrap();
            assert!(matches!(pool.request(), Err(Error::WouldBlock(_))));
            drop(buffer); // straight back: goes to the next listener, or the pool
            false
        }
    }
    let net = network(1);
    let pool = Arc::new(net.create_local_pool(LocalPoolConfig::new(1, 1)).unwrap());
    let held = pool.request().unwrap();
    let listener = Arc::new(Again {
        pool: Mutex::new(Some(pool.clone())),
        got: AtomicUsize::new(0),
    });
    assert!(pool.add_listener(listener.clone()).unwrap());
    // The callback takes the buffer that became available and keeps it (a callback that
    // released it at once would make the pool available again, and be called again).
    let taken: Arc<Mutex<Vec<Buffer>>> = Arc::new(Mutex::new(Vec::new()));
    let (p, t) = (Arc::downgrade(&pool), taken.clone());
    pool.set_availability_callback(Some(Arc::new(move || {
        if let Some(p) = p.upgrade() {
            if let Ok(b) = p.request() {
                t.lock().unwrap().push(b);
            }
        }
    })))
    .unwrap();
    drop(held);
    assert_eq!(listener.got.load(Ordering::SeqCst), 1);
    assert_eq!(
        taken.lock().unwrap().len(),
        1,
        "the callback got the buffer"
    );
    listener.pool.lock().unwrap().take();
    assert_eq!(pool.stats().in_use, 1);
    pool.set_availability_callback(None).unwrap();
    let kept = std::mem::take(&mut *taken.lock().unwrap());
    drop(kept);
    assert_eq!(pool.stats().in_use, 0);
}
