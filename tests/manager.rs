//! The memory manager through its Rust API: budget, quota, leases, transfer, reservations,
//! waiting, shared resources, stats, reports and every bad input; and a multi-threaded
//! conservation test.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use memseg::manager::{
    Allocation, FailureCause, ManagerConfig, MemoryKind, MemoryManager, MemoryPlan, PlanConfig,
};
use memseg::{ByteOrder, Error, Segment, SegmentKind};

const PAGE: usize = 4096;

fn configs(pages: u64) -> Vec<ManagerConfig> {
    let mut all = Vec::new();
    for kind in [MemoryKind::Heap, MemoryKind::OffHeap] {
        for allocation in [Allocation::Preallocated, Allocation::Lazy] {
            all.push(
                ManagerConfig::new(pages * PAGE as u64)
                    .with_page_size(PAGE)
                    .with_kind(kind)
                    .with_allocation(allocation),
            );
        }
    }
    all
}

#[test]
fn pages_are_segments_charged_to_their_lease_until_released_or_dropped() {
    for config in configs(4) {
        let manager = MemoryManager::new(config).unwrap();
        let lease = manager.open_lease("sort", None).unwrap();
        let mut page = lease.allocate().unwrap();
        assert_eq!(page.size(), PAGE);
        let expected_kind = match config.kind {
            MemoryKind::Heap => SegmentKind::Heap,
            MemoryKind::OffHeap => SegmentKind::OffHeap,
        };
        assert_eq!(page.kind(), expected_kind);
        page.put(PAGE - 8, 42u64, ByteOrder::Big).unwrap();
        assert_eq!(page.get::<u64>(PAGE - 8, ByteOrder::Big), Ok(42));
        let many = lease.allocate_many(3).unwrap();
        let stats = manager.stats();
        assert_eq!(
            (stats.pages_used, stats.pages_free, stats.pages_total),
            (4, 0, 4)
        );
        assert_eq!(stats.leases[0].pages, 4);
        lease.release(page).unwrap();
        assert_eq!(manager.stats().pages_free, 1);
        drop(many);
        let stats = manager.stats();
        assert_eq!(
            (stats.pages_used, stats.pages_free, stats.used_bytes),
            (0, 4, 0)
        );
        assert_eq!(stats.leases[0].peak_pages, 4);
        let closed = lease.close();
        assert_eq!(closed.pages_outstanding, 0);
        assert!(manager.close().unwrap().is_clean());
    }
}

#[test]
fn allocation_is_all_or_nothing_with_distinct_budget_and_quota_errors() {
    let manager = MemoryManager::new(configs(4)[0]).unwrap();
    let big = manager.open_lease("big", None).unwrap();
    let small = manager.open_lease("small", Some(2)).unwrap();
    let held = big.allocate_many(2).unwrap();
    let err = small.allocate_many(3).unwrap_err();
    assert!(matches!(err, Error::QuotaExhausted(_)), "{err}");
    assert_eq!(manager.last_failure().unwrap().cause, FailureCause::Quota);
    assert_eq!(manager.stats().pages_used, 2, "nothing allocated");
    let two = small.allocate_many(2).unwrap();
    assert!(matches!(small.allocate(), Err(Error::QuotaExhausted(_))));
    assert!(matches!(big.allocate(), Err(Error::BudgetExhausted(_))));
    let snapshot = manager.last_failure().unwrap();
    assert_eq!(snapshot.cause, FailureCause::Budget);
    assert_eq!(snapshot.lease, "big");
    assert_eq!(
        (snapshot.limit_bytes, snapshot.used_bytes),
        (4 * PAGE as u64, 4 * PAGE as u64)
    );
    let names: Vec<&str> = snapshot
        .top_leases
        .iter()
        .map(|l| l.name.as_str())
        .collect();
    assert_eq!(names.len(), 2);
    assert!(
        snapshot
            .to_json()
            .contains("\"cause\":\"budget_exhausted\"")
    );
    // More than the whole budget: budget exhausted at once, even with a timeout.
    assert!(matches!(
        big.allocate_many(5),
        Err(Error::BudgetExhausted(_))
    ));
    assert!(matches!(
        big.allocate_timeout(5, Duration::from_secs(5)),
        Err(Error::BudgetExhausted(_))
    ));
    assert!(matches!(
        big.allocate_many(usize::MAX),
        Err(Error::BudgetExhausted(_))
    ));
    assert!(matches!(
        big.allocate_many(0),
        Err(Error::InvalidArgument(_))
    ));
    drop((held, two));
}

#[test]
fn a_lazy_manager_reports_the_operating_systems_refusal_distinctly() {
    // A lazy budget far beyond what the machine has: the budget allows the request, the
    // operating system refuses it.
    // Off-heap, so that no page is touched (mmap without MAP_POPULATE): the mappings fail
    // once the address space or the kernel's map count runs out.
    let config = ManagerConfig::new(1 << 60)
        .with_page_size(1 << 30)
        .with_kind(MemoryKind::OffHeap)
        .with_allocation(Allocation::Lazy);
    let manager = MemoryManager::new(config).unwrap();
    let lease = manager.open_lease("huge", None).unwrap();
    // 2^18 pages of 1 GiB: 256 TiB, more than a 47-bit address space.
    match lease.allocate_many(1 << 18) {
        Err(Error::AllocationFailed { .. }) => {}
        Err(other) => panic!("{other}"),
        Ok(_) => panic!("a petabyte cannot be allocated"),
    }
    assert_eq!(
        manager.last_failure().unwrap().cause,
        FailureCause::AllocationFailed
    );
    assert_eq!(manager.stats().used_bytes, 0, "nothing stays charged");
}

/// A preallocated lease keeps a few released pages (still charged) for its next allocation;
/// they count as free, and anyone who needs the budget gets them first: an allocation, a
/// reservation, a shared resource or a waiting allocation of another lease.
#[test]
fn pages_a_lease_keeps_are_free_to_everyone() {
    for config in [configs(2)[0], configs(2)[2]] {
        let manager = MemoryManager::new(config).unwrap();
        let (a, b) = (
            manager.open_lease("a", Some(2)).unwrap(),
            manager.open_lease("b", None).unwrap(),
        );
        let page = a.allocate().unwrap();
        let address = page.as_ptr();
        a.release(page).unwrap();
        let stats = manager.stats();
        assert_eq!(
            (stats.pages_used, stats.pages_free, stats.used_bytes),
            (0, 2, 0)
        );
        assert_eq!((stats.leases[0].pages, stats.leases[0].peak_pages), (0, 1));
        // The lease's next page is the one it kept.
        let again = a.allocate().unwrap();
        assert_eq!(again.as_ptr(), address);
        let second = a.allocate().unwrap();
        assert!(matches!(a.allocate(), Err(Error::QuotaExhausted(_))));
        drop((again, second));
        // Both kept by `a`; `b` gets them, then `a` is refused for the budget.
        let both = b.allocate_many(2).unwrap();
        assert!(matches!(a.allocate(), Err(Error::BudgetExhausted(_))));
        assert_eq!(manager.last_failure().unwrap().used_bytes, 2 * PAGE as u64);
        drop(both);
        // Kept by `b` now: a reservation and a shared resource get them.
        assert_eq!(manager.stats().pages_free, 2);
        a.reserve(PAGE as u64).unwrap();
        let cache = manager
            .shared_resource("cache", PAGE as u64, |_| Ok(()), |_| {})
            .unwrap();
        assert_eq!(manager.stats().pages_free, 0);
        drop(cache);
        a.unreserve(PAGE as u64).unwrap();
        // A waiting allocation is served by a release (which keeps nothing while it waits).
        let held = a.allocate_many(2).unwrap();
        std::thread::scope(|s| {
            let waiter = s.spawn(|| b.allocate_timeout(1, Duration::from_secs(10)));
            std::thread::sleep(Duration::from_millis(20));
            drop(held);
            assert_eq!(waiter.join().unwrap().unwrap().len(), 1);
        });
        // Closing gives the kept pages back; a closed lease's pages are not kept.
        let page = b.allocate().unwrap();
        drop(a.close());
        let closed = b.close();
        assert_eq!(closed.pages_outstanding, 1);
        drop(page);
        let stats = manager.stats();
        assert_eq!((stats.pages_free, stats.used_bytes), (2, 0));
        assert!(
            stats.leases.is_empty(),
            "nothing keeps the closed leases' accounts"
        );
        assert!(manager.close().unwrap().is_clean());
    }
}

#[test]
fn pages_a_lease_keeps_never_count_against_its_quota() {
    let manager = MemoryManager::new(configs(8)[2]).unwrap();
    let (a, b) = (
        manager.open_lease("a", Some(3)).unwrap(),
        manager.open_lease("b", None).unwrap(),
    );
    // `a` keeps three released pages, and holds none.
    drop(a.allocate_many(3).unwrap());
    assert_eq!(manager.stats().leases[0].pages, 0);
    // A request for its whole quota is served: the kept pages go back first.
    let three = a.allocate_many(3).unwrap();
    assert!(matches!(a.allocate(), Err(Error::QuotaExhausted(_))));
    let mut two = three;
    let kept = two.pop().unwrap();
    a.release(kept).unwrap();
    drop(two.pop());
    // One page held and two kept: a transfer in, and then an allocation, fill the quota.
    let mut moved = b.allocate().unwrap();
    b.transfer(&mut moved, &a).unwrap();
    let third = a.allocate().unwrap();
    assert!(matches!(a.allocate(), Err(Error::QuotaExhausted(_))));
    let mut another = b.allocate().unwrap();
    assert!(matches!(
        b.transfer(&mut another, &a),
        Err(Error::QuotaExhausted(_))
    ));
    let usage = &manager.stats().leases[0];
    assert_eq!(
        (usage.name.as_str(), usage.pages, usage.peak_pages),
        ("a", 3, 3)
    );
    drop((two, moved, third, another));
    assert_eq!(manager.stats().pages_used, 0);
}

#[test]
fn bad_configurations_are_refused() {
    for (total, page) in [
        (0, PAGE),
        (PAGE as u64 - 1, PAGE),
        (1 << 20, 3000),
        (1 << 20, 2048),
        (1 << 40, 1 << 31),
        (u64::MAX, PAGE),
    ] {
        let config = ManagerConfig::new(total).with_page_size(page);
        assert!(
            matches!(MemoryManager::new(config), Err(Error::InvalidArgument(_))),
            "{total} {page}"
        );
    }
    // A preallocated budget the machine cannot map.
    let config = ManagerConfig::new(1 << 60)
        .with_page_size(1 << 30)
        .with_allocation(Allocation::Preallocated);
    assert!(matches!(
        MemoryManager::new(config),
        Err(Error::AllocationFailed { .. })
    ));
    // Rounded down to whole pages.
    let manager = MemoryManager::new(ManagerConfig::new(100 * 1024)).unwrap();
    assert_eq!((manager.total_pages(), manager.page_size()), (3, 32 * 1024));
    assert!(matches!(
        manager.open_lease("q", Some(0)),
        Err(Error::InvalidArgument(_))
    ));
}

#[test]
fn release_through_the_wrong_lease_changes_nothing() {
    let manager = MemoryManager::new(configs(4)[0]).unwrap();
    let a = manager.open_lease("a", None).unwrap();
    let b = manager.open_lease("b", None).unwrap();
    let page = a.allocate().unwrap();
    let rejected = b.release(page).unwrap_err();
    assert!(
        rejected.error.to_string().contains("another lease"),
        "{}",
        rejected.error
    );
    let page = rejected.value;
    assert!(a.holds(&page) && !b.holds(&page));
    let foreign = Segment::allocate_heap(PAGE).unwrap();
    let rejected = a.release(foreign).unwrap_err();
    assert!(matches!(rejected.error, Error::InvalidArgument(_)));
    let other = a.allocate().unwrap();
    let rejected = b.release_many(vec![other, page]).unwrap_err();
    assert_eq!(rejected.value.len(), 2);
    assert_eq!(manager.stats().leases[0].pages, 2);
    a.release_many(rejected.value).unwrap();
    assert_eq!(manager.stats().pages_used, 0);
}

#[test]
fn transfer_moves_the_charge_and_respects_the_target_quota() {
    let manager = MemoryManager::new(configs(4)[1]).unwrap();
    let a = manager.open_lease("a", None).unwrap();
    let b = manager.open_lease("b", Some(1)).unwrap();
    let mut p = a.allocate().unwrap();
    let mut q = a.allocate().unwrap();
    a.transfer(&mut p, &b).unwrap();
    assert!(b.holds(&p));
    assert_eq!((a.usage().pages, b.usage().pages), (1, 1));
    assert!(matches!(
        a.transfer(&mut q, &b),
        Err(Error::QuotaExhausted(_))
    ));
    assert!(
        matches!(a.transfer(&mut p, &b), Err(Error::InvalidArgument(_))),
        "not a's"
    );
    assert!(a.holds(&q));
    let other = MemoryManager::new(configs(4)[1]).unwrap();
    let c = other.open_lease("c", None).unwrap();
    assert!(matches!(
        a.transfer(&mut q, &c),
        Err(Error::InvalidArgument(_))
    ));
    b.release(p).unwrap();
    a.release(q).unwrap();
    assert_eq!(manager.stats().used_bytes, 0);
}

#[test]
fn reservations_share_the_budget() {
    let manager = MemoryManager::new(configs(4)[0]).unwrap();
    let lease = manager.open_lease("rocksdb", None).unwrap();
    lease.reserve(3 * PAGE as u64 + 1).unwrap();
    assert!(matches!(lease.allocate(), Err(Error::BudgetExhausted(_))));
    assert!(matches!(
        lease.reserve(PAGE as u64),
        Err(Error::BudgetExhausted(_))
    ));
    assert!(matches!(lease.reserve(0), Err(Error::InvalidArgument(_))));
    assert!(matches!(lease.unreserve(0), Err(Error::InvalidArgument(_))));
    assert!(matches!(
        lease.unreserve(u64::MAX),
        Err(Error::InvalidArgument(_))
    ));
    lease.unreserve(1).unwrap();
    let page = lease.allocate().unwrap();
    assert_eq!(manager.stats().reserved_bytes, 3 * PAGE as u64);
    let closed = lease.close();
    assert_eq!(closed.reserved_bytes_reclaimed, 3 * PAGE as u64);
    assert_eq!(closed.pages_outstanding, 1);
    assert!(
        manager.stats().leases[0].closed,
        "listed while its page is out"
    );
    drop(page);
    assert_eq!(manager.stats().used_bytes, 0);
    assert!(manager.stats().leases.is_empty());
}

#[test]
fn closed_leases_and_managers_refuse_work_and_report_leaks() {
    let manager = MemoryManager::new(configs(4)[2]).unwrap();
    let leaky = manager.open_lease("leaky \"one\"", None).unwrap();
    let tidy = manager.open_lease("tidy", None).unwrap();
    let pages = leaky.allocate_many(2).unwrap();
    leaky.reserve(10).unwrap();
    tidy.close();
    let report = manager.close().unwrap();
    assert_eq!(report.open_leases.len(), 1);
    assert_eq!(report.open_leases[0].name, "leaky \"one\"");
    assert_eq!(
        (
            report.open_leases[0].pages,
            report.open_leases[0].reserved_bytes
        ),
        (2, 10)
    );
    assert!(report.to_json().contains("\"name\":\"leaky \\\"one\\\"\""));
    assert!(matches!(manager.close(), Err(Error::Closed(_))));
    assert!(matches!(leaky.allocate(), Err(Error::Closed(_))));
    assert!(matches!(leaky.reserve(1), Err(Error::Closed(_))));
    assert!(matches!(
        manager.open_lease("late", None),
        Err(Error::Closed(_))
    ));
    // Pages still out stay valid and go back when dropped.
    assert_eq!(pages[1].get::<u8>(0, ByteOrder::Native), Ok(0));
    drop(pages);
    assert_eq!(manager.stats().used_bytes, 0);
}

#[test]
fn pages_outlive_their_manager_and_lease_safely() {
    let manager = MemoryManager::new(configs(2)[0]).unwrap();
    let lease = manager.open_lease("l", None).unwrap();
    let mut page = lease.allocate().unwrap();
    drop(lease);
    drop(manager);
    page.put(0, 7u32, ByteOrder::Little).unwrap();
    assert_eq!(page.get::<u32>(0, ByteOrder::Little), Ok(7));
}

#[test]
fn a_waiting_allocation_is_served_by_a_release_or_times_out() {
    let manager = MemoryManager::new(configs(2)[0]).unwrap();
    let a = manager.open_lease("a", None).unwrap();
    let b = manager.open_lease("b", None).unwrap();
    let held = a.allocate_many(2).unwrap();
    let err = b
        .allocate_timeout(1, Duration::from_millis(20))
        .unwrap_err();
    assert!(matches!(err, Error::Timeout(_)), "{err}");
    assert_eq!(manager.last_failure().unwrap().cause, FailureCause::Timeout);
    std::thread::scope(|s| {
        let waiter = s.spawn(|| b.allocate_timeout(2, Duration::from_secs(10)));
        std::thread::sleep(Duration::from_millis(20));
        a.release_many(held).unwrap();
        let got = waiter.join().unwrap().unwrap();
        assert_eq!(got.len(), 2);
    });
}

#[test]
fn shared_resources_are_made_once_charged_once_and_released_by_the_last_holder() {
    let manager = MemoryManager::new(configs(4)[0]).unwrap();
    let inits = Arc::new(AtomicUsize::new(0));
    let releases = Arc::new(AtomicUsize::new(0));
    let get = || {
        let (i, r) = (Arc::clone(&inits), Arc::clone(&releases));
        manager.shared_resource(
            "block-cache",
            2 * PAGE as u64,
            move |size| {
                i.fetch_add(1, Ordering::SeqCst);
                Ok(vec![0u8; size as usize])
            },
            move |cache: Vec<u8>| {
                assert_eq!(cache.len(), 2 * PAGE);
                r.fetch_add(1, Ordering::SeqCst);
            },
        )
    };
    let first = get().unwrap();
    let second = get().unwrap();
    assert_eq!(inits.load(Ordering::SeqCst), 1);
    assert_eq!(first.holders(), 2);
    assert_eq!(second.get::<Vec<u8>>().unwrap().len(), 2 * PAGE);
    assert!(second.get::<String>().is_none());
    assert_eq!(manager.stats().shared_bytes, 2 * PAGE as u64);
    assert_eq!(manager.stats().pages_free, 2);
    let bad_size = manager.shared_resource("block-cache", 1, |_| Ok(()), |_| {});
    assert!(matches!(bad_size, Err(Error::InvalidArgument(_))));
    let bad_type = manager.shared_resource("block-cache", 2 * PAGE as u64, |_| Ok(1u8), |_| {});
    assert!(matches!(bad_type, Err(Error::InvalidArgument(_))));
    assert!(matches!(
        manager.shared_resource("", 1, |_| Ok(()), |_| {}),
        Err(Error::InvalidArgument(_))
    ));
    assert!(matches!(
        manager.shared_resource("z", 0, |_| Ok(()), |_| {}),
        Err(Error::InvalidArgument(_))
    ));
    let too_big = manager.shared_resource("other", 3 * PAGE as u64, |_| Ok(()), |_| {});
    assert!(matches!(too_big, Err(Error::BudgetExhausted(_))));
    let failing =
        manager.shared_resource::<(), _, _>("failing", 1, |_| Err(Error::Io("no".into())), |_| {});
    assert!(matches!(failing, Err(Error::Io(_))));
    let panicked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        manager.shared_resource::<(), _, _>("panics", 1, |_| panic!("init panics"), |_| {})
    }));
    assert!(panicked.is_err());
    assert_eq!(
        manager.stats().used_bytes,
        2 * PAGE as u64,
        "its charge went back"
    );
    assert!(!first.release());
    assert_eq!(releases.load(Ordering::SeqCst), 0);
    assert!(second.release());
    assert_eq!(releases.load(Ordering::SeqCst), 1);
    assert_eq!(manager.stats().used_bytes, 0);
}

#[test]
fn stats_are_json_too() {
    let manager = MemoryManager::new(configs(4)[0]).unwrap();
    let lease = manager.open_lease("j", Some(3)).unwrap();
    let page = lease.allocate().unwrap();
    let json = manager.stats().to_json();
    assert!(
        json.starts_with("{\"page_size\":4096,\"pages_total\":4,\"pages_used\":1,\"pages_free\":3"),
        "{json}"
    );
    assert!(json.contains("\"name\":\"j\",\"pages\":1,\"peak_pages\":1,\"reserved_bytes\":0,\"bytes\":4096,\"quota_pages\":3"), "{json}");
    drop(page);
}

#[test]
fn the_memory_plan_sizes_a_manager() {
    let plan = MemoryPlan::compute(&PlanConfig::new(1 << 30)).unwrap();
    let manager = MemoryManager::new(ManagerConfig::new(plan.managed_bytes)).unwrap();
    assert_eq!(
        manager.total_pages() as u64,
        plan.managed_bytes / (32 * 1024)
    );
    assert!(MemoryPlan::compute(&PlanConfig::new(0)).is_err());
}

/// Many threads allocate, transfer and release; at every quiescent point (a barrier), pages
/// out plus pages free equal the total and no page is held twice.
/// Threads share one lease with a quota, allocating and releasing single pages (the lease's
/// cache of released pages, taken and refilled by all of them at once), while another lease
/// takes pages when it can (reclaiming what the shared lease keeps): no page is ever held
/// twice, the quota holds, and every page comes back.
#[test]
fn a_lease_shared_by_threads_never_hands_a_page_out_twice() {
    const THREADS: usize = 3;
    let rounds = if cfg!(miri) { 20 } else { 20_000 };
    let manager = MemoryManager::new(configs(6)[2]).unwrap();
    let shared = manager.open_lease("shared", Some(4)).unwrap();
    let other = manager.open_lease("other", None).unwrap();
    let out = std::sync::Mutex::new(HashSet::new());
    let held_by_shared = AtomicUsize::new(0);
    std::thread::scope(|s| {
        for t in 0..THREADS {
            let (shared, out, held_by_shared) = (&shared, &out, &held_by_shared);
            s.spawn(move || {
                let mut mine: Vec<Segment> = Vec::new();
                for i in 0..rounds {
                    if (i + t) % 3 != 2 {
                        match shared.allocate() {
                            Ok(page) => {
                                let now = held_by_shared.fetch_add(1, Ordering::SeqCst) + 1;
                                assert!(now <= 4, "quota of 4 exceeded: {now}");
                                assert!(out.lock().unwrap().insert(page.as_ptr() as usize));
                                mine.push(page);
                            }
                            Err(Error::QuotaExhausted(_) | Error::BudgetExhausted(_)) => {}
                            Err(e) => panic!("{e}"),
                        }
                    } else if let Some(page) = mine.pop() {
                        assert!(out.lock().unwrap().remove(&(page.as_ptr() as usize)));
                        held_by_shared.fetch_sub(1, Ordering::SeqCst);
                        if i % 2 == 0 {
                            shared.release(page).unwrap();
                        } else {
                            drop(page);
                        }
                    }
                }
                for page in mine {
                    assert!(out.lock().unwrap().remove(&(page.as_ptr() as usize)));
                    held_by_shared.fetch_sub(1, Ordering::SeqCst);
                    shared.release(page).unwrap();
                }
            });
        }
        let (other, out) = (&other, &out);
        s.spawn(move || {
            for _ in 0..rounds / 10 {
                if let Ok(pages) = other.allocate_many(2) {
                    for page in &pages {
                        assert!(out.lock().unwrap().insert(page.as_ptr() as usize));
                    }
                    for page in &pages {
                        assert!(out.lock().unwrap().remove(&(page.as_ptr() as usize)));
                    }
                    other.release_many(pages).unwrap();
                }
            }
        });
    });
    let stats = manager.stats();
    assert_eq!((stats.pages_used, stats.pages_free), (0, 6), "{stats:?}");
    assert!(
        stats
            .leases
            .iter()
            .all(|l| l.pages == 0 && l.peak_pages <= 4 || l.name == "other")
    );
    drop((shared, other));
    assert!(manager.close().unwrap().is_clean());
}

#[test]
fn conservation_under_contention() {
    const THREADS: usize = 4;
    const ROUNDS: usize = 20;
    for config in configs(64) {
        let manager = MemoryManager::new(config).unwrap();
        let leases: Vec<_> = (0..THREADS)
            .map(|i| manager.open_lease(&format!("t{i}"), Some(24)).unwrap())
            .collect();
        let barrier = std::sync::Barrier::new(THREADS + 1);
        let held: Vec<std::sync::Mutex<Vec<Segment>>> = (0..THREADS)
            .map(|_| std::sync::Mutex::new(Vec::new()))
            .collect();
        std::thread::scope(|s| {
            for t in 0..THREADS {
                let (leases, barrier, held) = (&leases, &barrier, &held);
                s.spawn(move || {
                    let mut rng = t as u64 * 7919 + 1;
                    let mut next = move || {
                        rng ^= rng << 13;
                        rng ^= rng >> 7;
                        rng ^= rng << 17;
                        rng
                    };
                    for _ in 0..ROUNDS {
                        for _ in 0..200 {
                            let mut mine = held[t].lock().unwrap();
                            match next() % 4 {
                                0 | 1 => {
                                    let n = (next() % 4 + 1) as usize;
                                    if let Ok(pages) = leases[t].allocate_many(n) {
                                        mine.extend(pages);
                                    }
                                }
                                2 if !mine.is_empty() => {
                                    let i = (next() as usize) % mine.len();
                                    let page = mine.swap_remove(i);
                                    leases[t].release(page).unwrap();
                                }
                                3 if !mine.is_empty() => {
                                    let to = (t + 1) % THREADS;
                                    let mut page = mine.pop().unwrap();
                                    if leases[t].transfer(&mut page, &leases[to]).is_ok() {
                                        drop(mine);
                                        held[to].lock().unwrap().push(page);
                                    } else {
                                        mine.push(page);
                                    }
                                }
                                _ => {}
                            }
                        }
                        barrier.wait();
                        barrier.wait();
                    }
                });
            }
            for _ in 0..ROUNDS {
                barrier.wait();
                let stats = manager.stats();
                let mut addresses = HashSet::new();
                let mut out = 0;
                for (t, mine) in held.iter().enumerate() {
                    let mine = mine.lock().unwrap();
                    assert_eq!(stats.leases[t].pages, mine.len(), "lease {t}");
                    for page in mine.iter() {
                        assert!(leases[t].holds(page));
                        assert!(
                            addresses.insert(page.as_ptr() as usize),
                            "a page held twice"
                        );
                    }
                    out += mine.len();
                }
                assert_eq!(stats.pages_used, out);
                assert_eq!(stats.pages_used + stats.pages_free, stats.pages_total);
                assert_eq!(stats.used_bytes, (out * PAGE) as u64);
                barrier.wait();
            }
        });
        for mine in &held {
            mine.lock().unwrap().clear();
        }
        assert_eq!(manager.stats().pages_free, 64);
    }
}
