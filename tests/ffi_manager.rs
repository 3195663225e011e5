//! The manager's C ABI called from Rust: the lent pages behave as segments, every bad handle
//! and argument is refused with its status, and closing a manager while other threads
//! allocate and release leaves no handle that names a page: every one is stale. (Reading or
//! writing a page's bytes while another thread closes its lease or manager is the host's race,
//! as freeing a segment during a call on it is.)

use std::ffi::CString;
use std::ptr;

use memseg::ffi::*;

fn manager(pages: u64, flags: u32) -> memseg_manager {
    let mut config = memseg_manager_config_default(pages * 4096);
    config.page_size = 4096;
    config.flags = flags;
    let mut m = memseg_manager::default();
    // SAFETY: valid pointers.
    assert_eq!(
        unsafe { memseg_manager_new(&config, &mut m) },
        memseg_status::Ok
    );
    m
}

fn lease(m: memseg_manager, name: &str, quota: usize) -> memseg_lease {
    let name = CString::new(name).unwrap();
    let mut l = memseg_lease::default();
    // SAFETY: valid pointers.
    assert_eq!(
        unsafe { memseg_lease_open(m, name.as_ptr(), quota, &mut l) },
        memseg_status::Ok
    );
    l
}

fn close(m: memseg_manager) -> String {
    let mut buf = vec![0u8; 4096];
    let mut len = 0usize;
    // SAFETY: `buf` is writable for its length.
    let status = unsafe { memseg_manager_close(m, buf.as_mut_ptr().cast(), buf.len(), &mut len) };
    assert_eq!(status, memseg_status::Ok);
    String::from_utf8(buf[..len].to_vec()).unwrap()
}

fn allocate(l: memseg_lease) -> Result<memseg_segment, memseg_status> {
    let mut page = memseg_segment::default();
    // SAFETY: a valid out pointer.
    match unsafe { memseg_lease_allocate(l, &mut page) } {
        memseg_status::Ok => Ok(page),
        other => Err(other),
    }
}

#[test]
fn a_lent_page_is_a_segment_until_it_goes_back() {
    let m = manager(2, MEMSEG_MANAGER_PREALLOCATE);
    let l = lease(m, "rust", 0);
    let page = allocate(l).unwrap();
    let (mut raw_ptr, mut raw_size) = (ptr::null_mut(), 0usize);
    // SAFETY: valid out pointers.
    assert_eq!(
        unsafe { memseg_segment_raw(page, &mut raw_ptr, &mut raw_size) },
        memseg_status::Ok
    );
    assert!(!raw_ptr.is_null());
    assert_eq!(raw_size, 4096);
    assert_eq!(memseg_segment_put_u64_le(page, 8, 7), memseg_status::Ok);
    assert_eq!(memseg_segment_free(page), memseg_status::InvalidArgument);
    assert!(
        last_error_message().contains("lease 'rust'"),
        "{}",
        last_error_message()
    );
    assert_eq!(memseg_lease_release(l, page), memseg_status::Ok);
    assert_eq!(memseg_lease_release(l, page), memseg_status::StaleHandle);
    assert_eq!(
        memseg_segment_put_u64_le(page, 8, 7),
        memseg_status::StaleHandle
    );
    // SAFETY: NULL out pointer is allowed.
    assert_eq!(
        unsafe { memseg_lease_close(l, ptr::null_mut()) },
        memseg_status::Ok
    );
    // SAFETY: as above.
    assert_eq!(
        unsafe { memseg_lease_close(l, ptr::null_mut()) },
        memseg_status::StaleHandle
    );
    assert_eq!(close(m), "{\"open_leases\":[],\"open_shared\":[]}");
}

#[test]
fn bad_handles_and_arguments_are_refused() {
    let m = manager(2, 0);
    let l = lease(m, "x", 0);
    let mut out = memseg_segment { bits: 0x55 };
    // SAFETY: valid or deliberately NULL pointers.
    unsafe {
        assert_eq!(
            memseg_lease_allocate(memseg_lease::default(), &mut out),
            memseg_status::InvalidHandle
        );
        assert_eq!(
            memseg_lease_allocate(memseg_lease { bits: m.bits }, &mut out),
            memseg_status::WrongHandleKind
        );
        assert_eq!(
            memseg_lease_allocate(l, ptr::null_mut()),
            memseg_status::NullArgument
        );
        assert_eq!(
            memseg_lease_allocate_many(l, 0, &mut out),
            memseg_status::InvalidArgument
        );
        assert_eq!(
            memseg_lease_allocate_many(l, usize::MAX, &mut out),
            memseg_status::BudgetExhausted
        );
        assert_eq!(
            memseg_lease_open(m, ptr::null(), 0, &mut memseg_lease::default()),
            memseg_status::NullArgument
        );
        let mut bad = memseg_manager_config_default(1 << 20);
        bad.page_size = 4097;
        assert_eq!(
            memseg_manager_new(&bad, &mut memseg_manager::default()),
            memseg_status::InvalidArgument
        );
        bad.page_size = 4096;
        bad.kind = 3;
        assert_eq!(
            memseg_manager_new(&bad, &mut memseg_manager::default()),
            memseg_status::InvalidArgument
        );
    }
    assert_eq!(out.bits, 0x55, "nothing written on failure");
    assert_eq!(memseg_lease_reserve(l, 0), memseg_status::InvalidArgument);
    assert_eq!(memseg_lease_unreserve(l, 1), memseg_status::InvalidArgument);
    assert_eq!(
        memseg_lease_reserve(l, u64::MAX),
        memseg_status::BudgetExhausted
    );
    let report = close(m);
    assert!(report.contains("\"name\":\"x\""), "{report}");
    assert_eq!(memseg_lease_reserve(l, 1), memseg_status::StaleHandle);
}

#[test]
fn closing_the_manager_while_threads_work_leaves_only_stale_handles() {
    for round in 0..20 {
        let m = manager(
            32,
            if round % 2 == 0 {
                MEMSEG_MANAGER_PREALLOCATE
            } else {
                0
            },
        );
        let leases: Vec<_> = (0..2).map(|t| lease(m, &format!("t{t}"), 0)).collect();
        let all_pages = std::sync::Mutex::new(Vec::new());
        std::thread::scope(|s| {
            for &l in &leases {
                let all_pages = &all_pages;
                s.spawn(move || {
                    let mut held = Vec::new();
                    for _ in 0..2000 {
                        match allocate(l) {
                            Ok(page) => {
                                held.push(page);
                                all_pages.lock().unwrap().push(page);
                            }
                            Err(memseg_status::StaleHandle) => return,
                            Err(memseg_status::BudgetExhausted) => {}
                            Err(other) => panic!("{other:?}: {}", last_error_message()),
                        }
                        if held.len() > 4 {
                            let page = held.swap_remove(0);
                            let status = memseg_lease_release(l, page);
                            assert!(
                                matches!(status, memseg_status::Ok | memseg_status::StaleHandle),
                                "{status:?}: {}",
                                last_error_message()
                            );
                        }
                    }
                });
            }
            std::thread::sleep(std::time::Duration::from_micros(200 * (round % 5)));
            close(m);
        });
        for &l in &leases {
            assert_eq!(allocate(l), Err(memseg_status::StaleHandle));
        }
        for page in std::mem::take(&mut *all_pages.lock().unwrap()) {
            assert_eq!(
                memseg_segment_put_u8(page, 0, 1),
                memseg_status::StaleHandle,
                "a page lent before the close"
            );
        }
    }
}
