//! The layers that take their pages from a memory manager's lease: output views (`&Lease` and
//! `Lease` as a `SegmentSource`; `memseg_output_view_new_on_lease`) and the external sorter
//! (pages from `Lease::allocate_many`; `memseg_sorter_new_on_lease`), in Rust and through the
//! C ABI; and, the same way, output views on a local buffer pool through the C ABI
//! (`memseg_output_view_new_on_local_pool`, `memseg_output_view_take_buffers`).

use memseg::ffi::*;
use memseg::manager::{Allocation, ManagerConfig, MemoryManager};
use memseg::view::{DataInput, DataOutput, OutputView};
use memseg::{Error, Segment};

const PAGE: usize = 4096;

fn manager(pages: u64) -> MemoryManager {
    MemoryManager::new(
        ManagerConfig::new(pages * PAGE as u64)
            .with_page_size(PAGE)
            .with_allocation(Allocation::Preallocated),
    )
    .unwrap()
}

#[test]
fn a_view_on_a_lease_spans_its_pages_and_stops_at_the_budget_keeping_what_it_wrote() {
    let manager = manager(4);
    let lease = manager.open_lease("view", None).unwrap();
    let mut view = OutputView::new(&lease);
    let words = 4 * PAGE / 8;
    for i in 0..words as u64 {
        view.write_u64(i * 3).unwrap();
    }
    assert_eq!(lease.usage().pages, 4);
    match view.write_u8(1) {
        Err(Error::BudgetExhausted(_)) => {}
        other => panic!("expected BudgetExhausted, got {other:?}"),
    }
    // A straddling value that cannot get its second page writes nothing.
    assert_eq!(view.position(), (3, PAGE));

    let (mut input, _lease_ref) = view.into_input_view();
    for i in 0..words as u64 {
        assert_eq!(input.read_u64().unwrap(), i * 3);
    }
    assert!(matches!(input.read_u8(), Err(Error::EndOfData(_))));
    drop(input);
    assert_eq!(lease.usage().pages, 0, "the pages went back with the view");
    assert_eq!(manager.stats().pages_used, 0);
}

#[test]
fn a_view_on_a_lease_with_a_quota_stops_at_the_quota_and_an_owned_lease_comes_back() {
    let manager = manager(8);
    let lease = manager.open_lease("quota", Some(2)).unwrap();
    let mut view = OutputView::new(lease);
    view.write_bytes(&[7u8; 2 * PAGE]).unwrap();
    assert!(matches!(view.write_u8(1), Err(Error::QuotaExhausted(_))));
    let (segments, fill, lease): (Vec<Segment>, usize, _) = view.into_parts();
    assert_eq!((segments.len(), fill), (2, PAGE));
    assert!(segments.iter().all(|s| lease.holds(s)));
    assert!(segments[1].as_slice().iter().all(|&b| b == 7));
    assert_eq!(lease.usage().pages, 2);
    drop(segments);
    assert_eq!(lease.usage().pages, 0);
}

fn ffi_manager(pages: usize) -> (memseg_manager, memseg_lease) {
    let mut config = memseg_manager_config_default((pages * PAGE) as u64);
    config.page_size = PAGE;
    let mut manager = memseg_manager::default();
    // SAFETY: valid pointers to locals.
    assert_eq!(
        unsafe { memseg_manager_new(&config, &mut manager) },
        memseg_status::Ok
    );
    let mut lease = memseg_lease::default();
    // SAFETY: as above; the name is NUL-terminated.
    assert_eq!(
        unsafe { memseg_lease_open(manager, c"ffi-view".as_ptr(), 0, &mut lease) },
        memseg_status::Ok
    );
    (manager, lease)
}

fn usage(lease: memseg_lease) -> memseg_lease_usage {
    let mut usage = memseg_lease_usage::default();
    // SAFETY: a valid out pointer.
    assert_eq!(
        unsafe { memseg_lease_get_usage(lease, &mut usage) },
        memseg_status::Ok
    );
    usage
}

#[test]
fn through_the_abi_a_view_on_a_lease_lends_its_pages_as_segments() {
    let (manager, lease) = ffi_manager(3);
    let mut view = memseg_output_view::default();
    // SAFETY: a valid out pointer.
    assert_eq!(
        unsafe { memseg_output_view_new_on_lease(lease, &mut view) },
        memseg_status::Ok
    );
    assert_eq!(usage(lease).pages, 0, "pages are taken when needed");
    for i in 0..(3 * PAGE / 4) as u32 {
        assert_eq!(memseg_output_view_write_u32(view, i), memseg_status::Ok);
    }
    assert_eq!(
        memseg_output_view_write_u32(view, 1),
        memseg_status::BudgetExhausted
    );
    let mut pages = [memseg_segment::default(); 3];
    let mut count = 0;
    // SAFETY: room for 3 handles and a valid count pointer.
    assert_eq!(
        unsafe { memseg_output_view_segments(view, pages.as_mut_ptr(), 3, &mut count) },
        memseg_status::Ok
    );
    assert_eq!(count, 3);
    let mut last = 0u32;
    // SAFETY: a valid out pointer.
    assert_eq!(
        unsafe { memseg_segment_get_u32_be(pages[2], PAGE - 4, &mut last) },
        memseg_status::Ok
    );
    assert_eq!(last, (3 * PAGE / 4 - 1) as u32);
    assert_eq!(memseg_output_view_free(view), memseg_status::Ok);
    assert_eq!(usage(lease).pages, 3, "written pages stay with the lease");

    // The pages go back through the lease, and are then stale.
    // SAFETY: three valid handles.
    assert_eq!(
        unsafe { memseg_lease_release_many(lease, pages.as_ptr(), 3) },
        memseg_status::Ok
    );
    assert_eq!(usage(lease).pages, 0);
    let mut v = 0u8;
    // SAFETY: a valid out pointer.
    assert_eq!(
        unsafe { memseg_segment_get_u8(pages[0], 0, &mut v) },
        memseg_status::StaleHandle
    );

    // A view on a closed lease: its writes fail as stale, nothing crashes.
    // SAFETY: a valid out pointer.
    assert_eq!(
        unsafe { memseg_output_view_new_on_lease(lease, &mut view) },
        memseg_status::Ok
    );
    assert_eq!(memseg_output_view_write_u64(view, 1), memseg_status::Ok);
    // SAFETY: NULL is allowed for the report.
    assert_eq!(
        unsafe { memseg_lease_close(lease, std::ptr::null_mut()) },
        memseg_status::Ok
    );
    assert_eq!(
        memseg_output_view_write_u64(view, 2),
        memseg_status::StaleHandle
    );
    assert_eq!(memseg_output_view_free(view), memseg_status::Ok);
    // SAFETY: a zero handle and a NULL out pointer are refused, not dereferenced.
    assert_eq!(
        unsafe { memseg_output_view_new_on_lease(lease, &mut view) },
        memseg_status::StaleHandle
    );
    assert_eq!(
        unsafe { memseg_output_view_new_on_lease(memseg_lease::default(), &mut view) },
        memseg_status::InvalidHandle
    );
    assert_eq!(
        unsafe { memseg_output_view_new_on_lease(lease, std::ptr::null_mut()) },
        memseg_status::NullArgument
    );
    // SAFETY: NULL report buffer with length 0.
    assert_eq!(
        unsafe { memseg_manager_close(manager, std::ptr::null_mut(), 0, std::ptr::null_mut()) },
        memseg_status::Ok
    );
}

#[test]
fn an_external_sorter_on_lease_pages_sorts_within_the_budget_and_gives_them_back() {
    use memseg::sort::{ExternalSorter, KeyConfig, SortConfig};
    let manager = manager(32);
    let lease = manager.open_lease("sort", None).unwrap();
    let pages = lease.allocate_many(16).unwrap();
    assert!(matches!(
        lease.allocate_many(17),
        Err(Error::BudgetExhausted(_))
    ));
    let dir = tempfile::tempdir().unwrap();
    let mut config = SortConfig::new(KeyConfig::bytes(0, 8));
    config.temp_dir = Some(dir.path().to_path_buf());
    let mut sorter = ExternalSorter::new(pages, config).unwrap();
    let mut x = 1u64;
    let mut keys = Vec::new();
    for _ in 0..4000 {
        x = x
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let mut record = [0u8; 64];
        record[..8].copy_from_slice(&x.to_be_bytes());
        keys.push(x);
        sorter.add(&record).unwrap();
    }
    assert_eq!(
        lease.usage().pages,
        16,
        "the sorter holds its pages and no more"
    );
    sorter.finish().unwrap();
    keys.sort_unstable();
    let mut got = Vec::new();
    while let Some(r) = sorter.next_record().unwrap() {
        got.push(u64::from_be_bytes(r[..8].try_into().unwrap()));
    }
    assert_eq!(got, keys);
    let stats = sorter.stats();
    assert!(stats.spilled_runs > 1, "{stats:?}");
    assert!(stats.peak_memory_bytes <= 16 * PAGE as u64);
    drop(sorter);
    assert_eq!(lease.usage().pages, 0);
    assert_eq!(manager.stats().pages_used, 0);
}

#[test]
fn through_the_abi_a_sorter_on_a_lease_is_charged_to_it() {
    let (manager, lease) = ffi_manager(8);
    let dir = tempfile::tempdir().unwrap();
    let dir_c = std::ffi::CString::new(dir.path().to_str().unwrap()).unwrap();
    let config = memseg_sort_config {
        memory_size: 6 * PAGE,
        page_size: 0,
        key_offset: 0,
        key_length: 4,
        prefix_length: 4,
        compare: None,
        compare_ctx: std::ptr::null_mut(),
        temp_dir: dir_c.as_ptr(),
    };
    let mut sorter = memseg_sorter::default();
    // SAFETY: valid pointers to locals.
    assert_eq!(
        unsafe { memseg_sorter_new_on_lease(lease, &config, &mut sorter) },
        memseg_status::Ok
    );
    assert_eq!(usage(lease).pages, 6);
    let mut second = memseg_sorter::default();
    // SAFETY: as above.
    assert_eq!(
        unsafe { memseg_sorter_new_on_lease(lease, &config, &mut second) },
        memseg_status::BudgetExhausted
    );
    assert_eq!(usage(lease).pages, 6, "a refused sorter allocates nothing");
    for k in (0..1000u32).rev() {
        let record = k.to_be_bytes();
        // SAFETY: four readable bytes.
        assert_eq!(
            unsafe { memseg_sorter_add(sorter, record.as_ptr(), 4) },
            memseg_status::Ok
        );
    }
    assert_eq!(memseg_sorter_finish(sorter), memseg_status::Ok);
    let (mut ptr, mut len) = (std::ptr::null(), 0usize);
    for k in 0..1000u32 {
        // SAFETY: valid out pointers.
        assert_eq!(
            unsafe { memseg_sorter_next(sorter, &mut ptr, &mut len) },
            memseg_status::Ok
        );
        // SAFETY: the record is lent for `len` bytes until the next call.
        let record = unsafe { std::slice::from_raw_parts(ptr, len) };
        assert_eq!(record, k.to_be_bytes());
    }
    assert_eq!(memseg_sorter_free(sorter), memseg_status::Ok);
    assert_eq!(usage(lease).pages, 0);
    // SAFETY: NULL report buffer with length 0.
    assert_eq!(
        unsafe { memseg_manager_close(manager, std::ptr::null_mut(), 0, std::ptr::null_mut()) },
        memseg_status::Ok
    );
}

#[test]
fn through_the_abi_a_view_on_a_local_pool_hands_out_what_it_wrote_as_buffers() {
    let mut net = memseg_network_pool::default();
    assert_eq!(
        unsafe { memseg_network_pool_new(2, 4096, 0, &mut net) },
        memseg_status::Ok
    );
    let config = memseg_local_pool_config {
        min: 2,
        max: 2,
        ..Default::default()
    };
    let mut pool = memseg_local_pool::default();
    // SAFETY: valid handles and pointers to live locals.
    assert_eq!(
        unsafe { memseg_local_pool_new(net, &config, &mut pool) },
        memseg_status::Ok
    );
    let mut view = memseg_output_view::default();
    // SAFETY: valid handles and pointers to live locals.
    assert_eq!(
        unsafe { memseg_output_view_new_on_local_pool(pool, &mut view) },
        memseg_status::Ok
    );
    for i in 0..1500u32 {
        assert_eq!(memseg_output_view_write_u32(view, i), memseg_status::Ok);
    }
    let mut buffers = [memseg_buffer::default(); 2];
    let mut count = 0;
    // SAFETY: valid handles and pointers to live locals.
    assert_eq!(
        unsafe { memseg_output_view_take_buffers(view, buffers.as_mut_ptr(), 2, &mut count) },
        memseg_status::Ok
    );
    assert_eq!(count, 2);
    let mut size = 0;
    // SAFETY: valid handles and pointers to live locals.
    assert_eq!(
        unsafe { memseg_buffer_size(buffers[1], &mut size) },
        memseg_status::Ok
    );
    assert_eq!(size, 1500 * 4 - 4096);
    let mut last = [0u8; 4];
    // SAFETY: valid handles and pointers to live locals.
    assert_eq!(
        unsafe { memseg_buffer_get_bytes(buffers[1], size - 4, last.as_mut_ptr(), 4) },
        memseg_status::Ok
    );
    assert_eq!(u32::from_be_bytes(last), 1499);
    assert_eq!(memseg_output_view_free(view), memseg_status::Ok);
    for b in buffers {
        assert_eq!(memseg_buffer_release(b), memseg_status::Ok);
    }
    assert_eq!(memseg_local_pool_destroy(pool), memseg_status::Ok);
    assert_eq!(memseg_network_pool_destroy(net), memseg_status::Ok);
}
