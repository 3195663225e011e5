//! The sorter's C ABI called from Rust: a round trip, the host comparison with its context,
//! and every refusal (NULL, bad configuration, order of calls, stale and wrong-kind handles).

#![cfg(not(miri))] // threads, files and mmap

use std::ffi::{CString, c_void};
use std::ptr;

use memseg::ffi::*;

fn config(dir: &CString) -> memseg_sort_config {
    memseg_sort_config {
        memory_size: 8 * 4096,
        page_size: 4096,
        key_offset: 0,
        key_length: 4,
        prefix_length: 4,
        compare: None,
        compare_ctx: ptr::null_mut(),
        temp_dir: dir.as_ptr(),
    }
}

fn new_sorter(c: &memseg_sort_config) -> Result<memseg_sorter, memseg_status> {
    let mut s = memseg_sorter::default();
    // SAFETY: valid pointers.
    match unsafe { memseg_sorter_new(c, &mut s) } {
        memseg_status::Ok => Ok(s),
        e => {
            assert_eq!(s.bits, 0, "nothing written on failure");
            Err(e)
        }
    }
}

fn drain(s: memseg_sorter) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let (mut p, mut n) = (ptr::null(), 0usize);
        // SAFETY: valid out pointers.
        match unsafe { memseg_sorter_next(s, &mut p, &mut n) } {
            // SAFETY: the sorter lends `n` bytes at `p` until the next call.
            memseg_status::Ok => out.push(unsafe { std::slice::from_raw_parts(p, n) }.to_vec()),
            memseg_status::EndOfData => return out,
            e => panic!("{e:?}: {}", last_error_message()),
        }
    }
}

fn temp() -> (tempfile::TempDir, CString) {
    let d = tempfile::tempdir().unwrap();
    let c = CString::new(d.path().to_str().unwrap()).unwrap();
    (d, c)
}

#[test]
fn records_come_back_sorted_after_spilling() {
    let (dir, path) = temp();
    let s = new_sorter(&config(&path)).unwrap();
    let mut expected = Vec::new();
    for i in 0..5000u32 {
        let r = i.wrapping_mul(2_654_435_761).to_be_bytes().repeat(8);
        // SAFETY: `r` is readable for its length.
        assert_eq!(
            unsafe { memseg_sorter_add(s, r.as_ptr(), r.len()) },
            memseg_status::Ok
        );
        expected.push(r);
    }
    assert_eq!(memseg_sorter_finish(s), memseg_status::Ok);
    expected.sort();
    assert_eq!(drain(s), expected);
    let mut stats = memseg_sort_stats::default();
    // SAFETY: valid out pointer.
    assert_eq!(
        unsafe { memseg_sorter_stats(s, &mut stats) },
        memseg_status::Ok
    );
    assert_eq!(stats.records, 5000);
    assert!(stats.spilled_runs > 1, "{stats:?}");
    assert_eq!(stats.memory_bytes, 8 * 4096);
    assert!(stats.peak_memory_bytes <= stats.memory_bytes);
    assert_eq!(memseg_sorter_free(s), memseg_status::Ok);
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
}

unsafe extern "C" fn by_last_byte_descending(
    ctx: *mut c_void,
    a: *const u8,
    a_len: usize,
    b: *const u8,
    b_len: usize,
) -> i32 {
    // SAFETY: the sorter passes valid records and the context given in the configuration.
    unsafe {
        *ctx.cast::<u64>() += 1;
        i32::from(*b.add(b_len - 1)) - i32::from(*a.add(a_len - 1))
    }
}

#[test]
fn the_host_comparison_decides_ties_with_its_context() {
    let (_dir, path) = temp();
    let mut calls = 0u64;
    let c = memseg_sort_config {
        key_length: 2,
        prefix_length: 1,
        compare: Some(by_last_byte_descending),
        compare_ctx: (&raw mut calls).cast(),
        ..config(&path)
    };
    let s = new_sorter(&c).unwrap();
    for i in 0..300u32 {
        let r = [(i % 2) as u8, 0, (i * 7 % 251) as u8];
        // SAFETY: `r` is readable for its length.
        assert_eq!(
            unsafe { memseg_sorter_add(s, r.as_ptr(), 3) },
            memseg_status::Ok
        );
    }
    assert_eq!(memseg_sorter_finish(s), memseg_status::Ok);
    let out = drain(s);
    assert!(calls > 0);
    for w in out.windows(2) {
        assert!(w[0][0] < w[1][0] || (w[0][0] == w[1][0] && w[0][2] >= w[1][2]));
    }
    assert_eq!(memseg_sorter_free(s), memseg_status::Ok);
}

#[test]
fn bad_configurations_are_refused_with_their_status() {
    let (_dir, path) = temp();
    let good = config(&path);
    let cases: Vec<(memseg_sort_config, memseg_status)> = vec![
        (
            memseg_sort_config {
                page_size: 0,
                ..good
            },
            memseg_status::InvalidArgument,
        ),
        (
            memseg_sort_config {
                page_size: 3 << 12,
                ..good
            },
            memseg_status::InvalidArgument,
        ),
        (
            memseg_sort_config {
                page_size: 2 << 30,
                memory_size: 2 << 30,
                ..good
            },
            memseg_status::InvalidArgument,
        ),
        (
            memseg_sort_config {
                memory_size: 8 * 4096 + 8,
                ..good
            },
            memseg_status::InvalidArgument,
        ),
        (
            memseg_sort_config {
                memory_size: usize::MAX & !4095,
                ..good
            },
            memseg_status::InvalidArgument,
        ),
        (
            memseg_sort_config {
                memory_size: 2 * 4096,
                ..good
            },
            memseg_status::BudgetExhausted,
        ),
        (
            memseg_sort_config {
                prefix_length: 5,
                ..good
            },
            memseg_status::InvalidArgument,
        ),
        (
            memseg_sort_config {
                key_offset: 5000,
                ..good
            },
            memseg_status::InvalidArgument,
        ),
    ];
    for (c, status) in cases {
        assert_eq!(
            new_sorter(&c),
            Err(status),
            "{c:?}: {}",
            last_error_message()
        );
    }
    let missing = CString::new("/nonexistent/memseg-sort").unwrap();
    assert_eq!(new_sorter(&config(&missing)), Err(memseg_status::Io));
    let mut s = memseg_sorter::default();
    // SAFETY: NULL is what is being tested.
    assert_eq!(
        unsafe { memseg_sorter_new(ptr::null(), &mut s) },
        memseg_status::NullArgument
    );
    // SAFETY: as above.
    assert_eq!(
        unsafe { memseg_sorter_new(&good, ptr::null_mut()) },
        memseg_status::NullArgument
    );
}

#[test]
fn calls_out_of_order_and_dead_handles_are_refused() {
    let (_dir, path) = temp();
    let s = new_sorter(&config(&path)).unwrap();
    let (mut p, mut n) = (ptr::null(), 0usize);
    // SAFETY: valid pointers throughout; NULLs where tested.
    unsafe {
        assert_eq!(
            memseg_sorter_next(s, &mut p, &mut n),
            memseg_status::InvalidArgument
        );
        assert_eq!(
            memseg_sorter_add(s, [1u8, 2].as_ptr(), 2),
            memseg_status::InvalidArgument
        );
        assert_eq!(
            memseg_sorter_add(s, ptr::null(), 4),
            memseg_status::NullArgument
        );
        assert_eq!(
            memseg_sorter_add(s, [9u8; 4].as_ptr(), 4),
            memseg_status::Ok
        );
        assert_eq!(memseg_sorter_finish(s), memseg_status::Ok);
        assert_eq!(memseg_sorter_finish(s), memseg_status::InvalidArgument);
        assert_eq!(
            memseg_sorter_next(s, ptr::null_mut(), &mut n),
            memseg_status::NullArgument
        );
        assert_eq!(memseg_sorter_next(s, &mut p, &mut n), memseg_status::Ok);
        assert_eq!(std::slice::from_raw_parts(p, n), [9u8; 4]);
        assert_eq!(
            memseg_sorter_next(s, &mut p, &mut n),
            memseg_status::EndOfData
        );
    }
    assert_eq!(
        memseg_sorter_free(memseg_sorter::default()),
        memseg_status::Ok
    );
    assert_eq!(memseg_sorter_free(s), memseg_status::Ok);
    assert_eq!(memseg_sorter_free(s), memseg_status::StaleHandle);
    assert_eq!(memseg_sorter_finish(s), memseg_status::StaleHandle);
    assert_eq!(
        memseg_sorter_finish(memseg_sorter::default()),
        memseg_status::InvalidHandle
    );
    let mut seg = memseg_segment::default();
    // SAFETY: valid out pointer.
    assert_eq!(
        unsafe { memseg_segment_new_heap(8, &mut seg) },
        memseg_status::Ok
    );
    let wrong = memseg_sorter { bits: seg.bits };
    assert_eq!(memseg_sorter_finish(wrong), memseg_status::WrongHandleKind);
    assert!(last_error_message().contains("segment handle"));
    assert_eq!(memseg_segment_free(seg), memseg_status::Ok);
}

#[test]
fn normalized_keys_from_the_abi() {
    let (mut a, mut b) = ([0u8; 8], [0u8; 8]);
    // SAFETY: valid buffers of the lengths given.
    unsafe {
        assert_eq!(
            memseg_normkey_put_f64(a.as_mut_ptr(), 8, f64::NEG_INFINITY),
            memseg_status::Ok
        );
        assert_eq!(
            memseg_normkey_put_f64(b.as_mut_ptr(), 8, -0.0),
            memseg_status::Ok
        );
        assert!(a < b);
        assert_eq!(
            memseg_normkey_put_i64(a.as_mut_ptr(), 8, i64::MAX),
            memseg_status::Ok
        );
        assert_eq!(
            memseg_normkey_put_i64(b.as_mut_ptr(), 8, -1),
            memseg_status::Ok
        );
        assert!(a > b);
        assert_eq!(
            memseg_normkey_put_u32(a.as_mut_ptr(), 3, 1),
            memseg_status::InvalidArgument
        );
        assert_eq!(
            memseg_normkey_put_bytes(a.as_mut_ptr(), 8, b"zz".as_ptr(), 2),
            memseg_status::Ok
        );
        assert_eq!(a, *b"zz\0\0\0\0\0\0");
        assert_eq!(memseg_normkey_invert(a.as_mut_ptr(), 1), memseg_status::Ok);
        assert_eq!(a[0], !b'z');
    }
}
