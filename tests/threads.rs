//! Segments through the C ABI from many threads at once: allocation, access and freeing
//! run concurrently, handles never collide, the live count balances, double frees race
//! to exactly one success, and a reader racing a free sees `Ok` or `StaleHandle`.
//! Buffer handles too: retains and releases racing the owner's release recycle each buffer
//! once.
//!
//! The tests of this file share the process-wide live count, so they take `SERIAL` to run
//! one at a time.

use std::collections::HashSet;
use std::ffi::c_void;
use std::ptr;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Barrier, Mutex, MutexGuard};
use std::thread;

use memseg::ffi::*;

static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

const THREADS: usize = if cfg!(miri) { 3 } else { 4 };
const ROUNDS: usize = if cfg!(miri) { 8 } else { 400 };

fn live_count() -> usize {
    let mut count = 0;
    // SAFETY: `count` is a writable out parameter.
    assert_eq!(
        unsafe { memseg_segment_live_count(&mut count) },
        memseg_status::Ok
    );
    count
}

fn ok(status: memseg_status) {
    assert_eq!(status, memseg_status::Ok, "{}", last_error_message());
}

/// Counts release callbacks; the context of every wrap in this file.
unsafe extern "C" fn count_release(ctx: *mut c_void, _ptr: *mut c_void, _size: usize) {
    // SAFETY: every wrap here passes an `AtomicUsize` that outlives its segments.
    unsafe { &*ctx.cast::<AtomicUsize>() }.fetch_add(1, Ordering::SeqCst);
}

fn ctx(counter: &AtomicUsize) -> *mut c_void {
    ptr::from_ref(counter).cast_mut().cast()
}

#[test]
fn threads_allocate_access_and_free_concurrently_with_distinct_handles() {
    let _serial = serial();
    const HELD: usize = 4;
    let before = live_count();
    let all_holding = Barrier::new(THREADS + 1);
    let counted = Barrier::new(THREADS + 1);
    let issued: Vec<Vec<u64>> = thread::scope(|s| {
        let workers: Vec<_> = (0..THREADS)
            .map(|t| {
                let (all_holding, counted) = (&all_holding, &counted);
                s.spawn(move || {
                    let mut issued = Vec::new();
                    let mut held: Vec<(memseg_segment, u64)> = Vec::new();
                    for round in 0..ROUNDS {
                        let size = 8 + (round * 7 + t) % 64;
                        let mut seg = memseg_segment::default();
                        // SAFETY: `seg` is a writable out parameter.
                        let status = unsafe {
                            if !cfg!(miri) && round % 3 == 1 {
                                memseg_segment_new_offheap(size, 0, &mut seg)
                            } else {
                                memseg_segment_new_heap(size, &mut seg)
                            }
                        };
                        ok(status);
                        issued.push(seg.bits);
                        // A value only this thread and round write, at the end of the segment.
                        let tag = (t as u64) << 48 | round as u64;
                        ok(memseg_segment_put_u64_be(seg, size - 8, tag));
                        held.push((seg, tag));
                        // Everything this thread holds still has its own value.
                        for &(seg, tag) in &held {
                            let (mut size, mut value) = (0, 0);
                            // SAFETY: both out parameters are writable.
                            unsafe {
                                ok(memseg_segment_size(seg, &mut size));
                                ok(memseg_segment_get_u64_be(seg, size - 8, &mut value));
                            }
                            assert_eq!(value, tag);
                        }
                        if held.len() > HELD {
                            let (oldest, _) = held.remove(0);
                            ok(memseg_segment_free(oldest));
                            assert_eq!(memseg_segment_free(oldest), memseg_status::StaleHandle);
                        }
                        if round == ROUNDS / 2 {
                            assert_eq!(held.len(), HELD);
                            all_holding.wait();
                            counted.wait();
                        }
                    }
                    for (seg, _) in held {
                        ok(memseg_segment_free(seg));
                    }
                    issued
                })
            })
            .collect();
        all_holding.wait();
        // Every worker is parked between its barriers holding HELD segments.
        assert_eq!(live_count(), before + THREADS * HELD);
        counted.wait();
        workers.into_iter().map(|w| w.join().unwrap()).collect()
    });
    let total: usize = issued.iter().map(Vec::len).sum();
    let distinct: HashSet<u64> = issued.iter().flatten().copied().collect();
    assert_eq!(total, THREADS * ROUNDS);
    assert_eq!(distinct.len(), total, "a handle value was issued twice");
    assert!(!distinct.contains(&0));
    assert_eq!(live_count(), before, "every segment allocated was freed");
}

#[test]
fn racing_double_frees_free_once_and_release_once() {
    let _serial = serial();
    let before = live_count();
    let releases = AtomicUsize::new(0);
    let mut memory = vec![0u8; 64];
    let memory = memory.as_mut_ptr();
    let start = Barrier::new(THREADS);
    for round in 0..ROUNDS.min(50) {
        let mut seg = memseg_segment::default();
        // SAFETY: `memory` outlives every segment over it (each is freed in this round)
        // and is used through them only; `releases` outlives them too.
        ok(unsafe {
            memseg_segment_wrap(
                memory.cast(),
                64,
                Some(count_release),
                ctx(&releases),
                &mut seg,
            )
        });
        let results: Vec<memseg_status> = thread::scope(|s| {
            let racers: Vec<_> = (0..THREADS)
                .map(|_| {
                    s.spawn(|| {
                        start.wait();
                        memseg_segment_free(seg)
                    })
                })
                .collect();
            racers.into_iter().map(|r| r.join().unwrap()).collect()
        });
        let freed = results.iter().filter(|&&s| s == memseg_status::Ok).count();
        let stale = results
            .iter()
            .filter(|&&s| s == memseg_status::StaleHandle)
            .count();
        assert_eq!(
            (freed, stale),
            (1, THREADS - 1),
            "round {round}: {results:?}"
        );
        assert_eq!(
            releases.load(Ordering::SeqCst),
            round + 1,
            "released exactly once"
        );
    }
    assert_eq!(live_count(), before);
}

/// Foreign segments over memory this test owns and keeps alive, so a reader still inside a
/// call on a segment that another thread frees touches memory that stays valid: the race
/// is on the handle only. The bytes are written once, before any thread starts, and only
/// read after, so no access races with a write.
#[test]
fn a_reader_racing_a_free_sees_ok_or_stale_handle_and_nothing_else() {
    let _serial = serial();
    const SLOTS: usize = 4;
    const CHUNK: usize = 32;
    let before = live_count();
    let mut pool: Vec<u8> = (0..SLOTS * CHUNK).map(|i| (i * 31 % 251) as u8).collect();
    let expected = pool.clone();
    let base = pool.as_mut_ptr();
    let releases = AtomicUsize::new(0);
    let wraps = AtomicUsize::new(0);
    let wrap = |slot: usize| {
        let mut seg = memseg_segment::default();
        // SAFETY: `pool` outlives every segment (all are freed before it is dropped) and
        // is accessed only through them after this point.
        ok(unsafe {
            memseg_segment_wrap(
                base.add(slot * CHUNK).cast(),
                CHUNK,
                Some(count_release),
                ctx(&releases),
                &mut seg,
            )
        });
        wraps.fetch_add(1, Ordering::SeqCst);
        seg.bits
    };
    let handles: Vec<AtomicU64> = (0..SLOTS).map(|slot| AtomicU64::new(wrap(slot))).collect();
    let done = AtomicBool::new(false);
    let mut freed = Vec::new();
    let oks = thread::scope(|s| {
        let readers: Vec<_> = (0..THREADS - 1)
            .map(|r| {
                let (handles, done, expected) = (&handles, &done, &expected);
                s.spawn(move || {
                    let mut oks = 0usize;
                    let mut seen = [0u64; SLOTS];
                    let mut step = r;
                    // Until the freer is done, then one more pass, over the handles it
                    // left, which are live for good.
                    let mut final_steps = 0;
                    loop {
                        let settled = done.load(Ordering::Acquire);
                        if settled {
                            if final_steps == SLOTS {
                                break;
                            }
                            final_steps += 1;
                        }
                        let slot = step % SLOTS;
                        step += 1;
                        let bits = handles[slot].load(Ordering::Acquire);
                        if seen[slot] != 0 && seen[slot] != bits {
                            // The freer frees a handle before it publishes the next one, so
                            // the handle seen before is certainly stale now.
                            let old = memseg_segment { bits: seen[slot] };
                            assert_eq!(
                                memseg_segment_put_u8(old, 0, 0),
                                memseg_status::StaleHandle
                            );
                            let mut freed = false;
                            // SAFETY: `freed` is a writable out parameter.
                            ok(unsafe { memseg_segment_is_freed(old, &mut freed) });
                            assert!(freed);
                        }
                        seen[slot] = bits;
                        let seg = memseg_segment { bits };
                        let want = &expected[slot * CHUNK..(slot + 1) * CHUNK];
                        let mut statuses = Vec::new();
                        let mut buf = [0u8; CHUNK];
                        let (mut value, mut size, mut kind) =
                            (0u64, 0usize, memseg_memory_kind::Heap);
                        let mut order = 99;
                        let neighbour = memseg_segment {
                            bits: handles[(slot + 1) % SLOTS].load(Ordering::Acquire),
                        };
                        // SAFETY: every out parameter is writable for what is written to it.
                        unsafe {
                            let status = memseg_segment_get_u64_be(seg, 8, &mut value);
                            if status == memseg_status::Ok {
                                assert_eq!(value.to_be_bytes(), want[8..16]);
                            }
                            statuses.push(status);
                            let status = memseg_segment_get_bytes(seg, 0, buf.as_mut_ptr(), CHUNK);
                            if status == memseg_status::Ok {
                                assert_eq!(&buf[..], want);
                            }
                            statuses.push(status);
                            let status = memseg_segment_size(seg, &mut size);
                            if status == memseg_status::Ok {
                                assert_eq!(size, CHUNK);
                            }
                            statuses.push(status);
                            let status = memseg_segment_kind(seg, &mut kind);
                            if status == memseg_status::Ok {
                                assert_eq!(kind, memseg_memory_kind::Foreign);
                            }
                            statuses.push(status);
                            statuses.push(memseg_segment_compare(
                                seg, 0, neighbour, 0, CHUNK, &mut order,
                            ));
                            statuses.push(memseg_segment_equal(seg, 0, seg, 0, CHUNK, &mut false));
                        }
                        for status in statuses {
                            if settled {
                                assert_eq!(status, memseg_status::Ok, "{}", last_error_message());
                            }
                            match status {
                                memseg_status::Ok => oks += 1,
                                memseg_status::StaleHandle => {}
                                other => panic!("{other:?}: {}", last_error_message()),
                            }
                        }
                    }
                    oks
                })
            })
            .collect();
        // The freer: frees each slot's segment and wraps the same memory again.
        for round in 0..ROUNDS {
            let slot = round % SLOTS;
            let old = handles[slot].load(Ordering::Acquire);
            ok(memseg_segment_free(memseg_segment { bits: old }));
            freed.push(old);
            handles[slot].store(wrap(slot), Ordering::Release);
        }
        done.store(true, Ordering::Release);
        readers
            .into_iter()
            .map(|r| r.join().unwrap())
            .sum::<usize>()
    });
    for &bits in &freed {
        let mut value = 7u64;
        // SAFETY: `value` is a writable out parameter.
        let status = unsafe { memseg_segment_get_u64(memseg_segment { bits }, 0, &mut value) };
        assert_eq!((status, value), (memseg_status::StaleHandle, 7));
    }
    for handle in &handles {
        ok(memseg_segment_free(memseg_segment {
            bits: handle.load(Ordering::Acquire),
        }));
    }
    // Each reader's last pass read every slot successfully.
    assert!(oks >= (THREADS - 1) * SLOTS * 6, "{oks}");
    assert_eq!(
        releases.load(Ordering::SeqCst),
        wraps.load(Ordering::SeqCst),
        "one release per wrap"
    );
    assert_eq!(live_count(), before);
    assert_eq!(pool, expected, "nobody wrote the host's memory");
}

/// Buffer handles from a local pool, retained and released by several threads while their
/// owner releases its reference and publishes new ones: a retain sees `Ok` or
/// `StaleHandle`, a release after an `Ok` retain is always `Ok`, and every buffer goes back to
/// the pool exactly once.
#[test]
fn threads_retaining_and_releasing_shared_buffer_handles_recycle_each_buffer_once() {
    let _serial = serial();
    const CELLS: usize = 3;
    let (mut net, mut local) = (memseg_network_pool::default(), memseg_local_pool::default());
    let config = memseg_local_pool_config {
        min: 8,
        max: 8,
        ..Default::default()
    };
    // SAFETY: valid config and out pointers.
    unsafe {
        ok(memseg_network_pool_new(8, 4096, 0, &mut net));
        ok(memseg_local_pool_new(net, &config, &mut local));
    }
    let request = || {
        let mut buffer = memseg_buffer::default();
        // SAFETY: `buffer` is a writable out parameter.
        ok(unsafe { memseg_local_pool_request(local, &mut buffer) });
        buffer.bits
    };
    let in_use = || {
        let mut stats = memseg_local_pool_counters::default();
        // SAFETY: `stats` is a writable out parameter.
        ok(unsafe { memseg_local_pool_stats(local, &mut stats) });
        stats.in_use
    };
    let cells: Vec<AtomicU64> = (0..CELLS).map(|_| AtomicU64::new(request())).collect();
    let done = AtomicBool::new(false);
    thread::scope(|s| {
        for t in 0..THREADS - 1 {
            let (cells, done) = (&cells, &done);
            s.spawn(move || {
                let mut step = t;
                while !done.load(Ordering::Acquire) {
                    let buffer = memseg_buffer {
                        bits: cells[step % CELLS].load(Ordering::Acquire),
                    };
                    step += 1;
                    match memseg_buffer_retain(buffer) {
                        memseg_status::Ok => ok(memseg_buffer_release(buffer)),
                        status => assert_eq!(status, memseg_status::StaleHandle),
                    }
                }
            });
        }
        for round in 0..ROUNDS {
            let cell = &cells[round % CELLS];
            let old = memseg_buffer {
                bits: cell.swap(request(), Ordering::AcqRel),
            };
            ok(memseg_buffer_release(old));
        }
        done.store(true, Ordering::Release);
    });
    assert_eq!(in_use(), CELLS, "only the published buffers are out");
    for cell in &cells {
        ok(memseg_buffer_release(memseg_buffer {
            bits: cell.load(Ordering::Relaxed),
        }));
    }
    assert_eq!(in_use(), 0, "every buffer went back once");
    ok(memseg_local_pool_destroy(local));
    ok(memseg_network_pool_destroy(net));
}
