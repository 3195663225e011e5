//! The C ABI called from Rust: the property test of `segment_props.rs` run through the
//! `extern "C"` functions (including every generated typed accessor), and the bad inputs a
//! host can give: NULL out pointers, zero, stale, double-freed and forged handles, offsets
//! near `usize::MAX`, impossible sizes, the last error message, status names, and foreign
//! memory with its release callback.

mod common;

use std::cmp::Ordering as CmpOrdering;
use std::ffi::{CStr, c_char, c_void};
use std::ptr;
use std::sync::atomic::{AtomicUsize, Ordering};

use common::{Done, Fail, Kind, Model, Op, Prim, Spec};
use memseg::ByteOrder;
use memseg::ffi::status::ALL_STATUSES;
use memseg::ffi::*;
use proptest::prelude::*;

/// Status of a call, and the thread's last error message when it failed.
fn last() -> String {
    last_error_message()
}

fn heap(size: usize) -> memseg_segment {
    let mut seg = memseg_segment::default();
    // SAFETY: `seg` is a writable out parameter.
    let status = unsafe { memseg_segment_new_heap(size, &mut seg) };
    assert_eq!(status, memseg_status::Ok, "{}", last());
    seg
}

fn contents(seg: memseg_segment) -> Vec<u8> {
    let mut size = 0;
    // SAFETY: `size` is a writable out parameter.
    assert_eq!(
        unsafe { memseg_segment_size(seg, &mut size) },
        memseg_status::Ok
    );
    let mut buf = vec![0u8; size];
    // SAFETY: `buf` is writable for `size` bytes.
    let status = unsafe { memseg_segment_get_bytes(seg, 0, buf.as_mut_ptr(), size) };
    assert_eq!(status, memseg_status::Ok, "{}", last());
    buf
}

/// Counts calls of [`count_release`] and remembers the last one.
#[derive(Default)]
struct Releases {
    calls: AtomicUsize,
    last_ptr: AtomicUsize,
    last_size: AtomicUsize,
}

/// A release callback whose context is a [`Releases`].
unsafe extern "C" fn count_release(ctx: *mut c_void, ptr: *mut c_void, size: usize) {
    // SAFETY: every wrap in this file that uses this callback passes a `Releases` that
    // outlives the segment.
    let releases = unsafe { &*ctx.cast::<Releases>() };
    releases.last_ptr.store(ptr as usize, Ordering::SeqCst);
    releases.last_size.store(size, Ordering::SeqCst);
    releases.calls.fetch_add(1, Ordering::SeqCst);
}

/// A release callback that frees a leaked `Box<[u8]>` and counts in a [`Releases`].
unsafe extern "C" fn free_boxed(ctx: *mut c_void, ptr: *mut c_void, size: usize) {
    // SAFETY: the wraps that use this callback pass memory leaked from a `Box<[u8]>` of
    // `size` bytes, handed back exactly once.
    drop(unsafe { Box::from_raw(ptr::slice_from_raw_parts_mut(ptr.cast::<u8>(), size)) });
    // SAFETY: as for `count_release`.
    unsafe { count_release(ctx, ptr, size) };
}

fn ctx(releases: &Releases) -> *mut c_void {
    ptr::from_ref(releases).cast_mut().cast()
}

fn make(spec: &Spec, releases: &Releases) -> memseg_segment {
    let size = spec.initial.len();
    let mut seg = memseg_segment::default();
    // SAFETY: `seg` is a writable out parameter; wrapped memory is a leaked box that the
    // release callback frees.
    let status = unsafe {
        match spec.kind {
            Kind::Heap => memseg_segment_new_heap(size, &mut seg),
            Kind::OffHeap => memseg_segment_new_offheap(size, 0, &mut seg),
            Kind::Foreign => {
                let memory: Box<[u8]> = spec.initial.as_slice().into();
                let memory = Box::into_raw(memory).cast::<c_void>();
                memseg_segment_wrap(memory, size, Some(free_boxed), ctx(releases), &mut seg)
            }
        }
    };
    assert_eq!(status, memseg_status::Ok, "{}", last());
    let mut kind = memseg_memory_kind::Heap;
    // SAFETY: `kind` is a writable out parameter.
    assert_eq!(
        unsafe { memseg_segment_kind(seg, &mut kind) },
        memseg_status::Ok
    );
    let expected = match spec.kind {
        Kind::Heap => memseg_memory_kind::Heap,
        Kind::OffHeap => memseg_memory_kind::Offheap,
        Kind::Foreign => memseg_memory_kind::Foreign,
    };
    assert_eq!(kind, expected);
    seg
}

/// Defines `ffi_put` and `ffi_get`, which call the generated accessor of a primitive and
/// byte order. `ffi_get` reads into an unaligned slot of a guarded buffer, so it can tell
/// that a failed call wrote nothing and a successful one wrote only its value.
macro_rules! typed_ffi {
    ($($prim:ident: $t:ty, |$b:ident| $to:expr, |$v:ident| $from:expr,
        [$g:ident, $gl:ident, $gb:ident], [$p:ident, $pl:ident, $pb:ident];)*) => {
        fn ffi_put(seg: memseg_segment, prim: Prim, order: ByteOrder, offset: usize, bits: u64)
            -> memseg_status
        {
            match prim {
                $(Prim::$prim => {
                    let $b = bits;
                    let value: $t = $to;
                    match order {
                        ByteOrder::Native => $p(seg, offset, value),
                        ByteOrder::Little => $pl(seg, offset, value),
                        ByteOrder::Big => $pb(seg, offset, value),
                    }
                })*
            }
        }

        fn ffi_get(seg: memseg_segment, prim: Prim, order: ByteOrder, offset: usize)
            -> (memseg_status, u64)
        {
            const GUARD: u8 = 0xA5;
            let mut buf = [GUARD; 10];
            match prim {
                $(Prim::$prim => {
                    // One byte in, so that values wider than a byte are misaligned.
                    let out = buf[1..].as_mut_ptr().cast::<$t>();
                    // SAFETY: `out` is writable for a `$t` (unaligned writes are allowed).
                    let status = unsafe {
                        match order {
                            ByteOrder::Native => $g(seg, offset, out),
                            ByteOrder::Little => $gl(seg, offset, out),
                            ByteOrder::Big => $gb(seg, offset, out),
                        }
                    };
                    let width = std::mem::size_of::<$t>();
                    assert_eq!(buf[0], GUARD, "nothing written before the value");
                    assert!(buf[1 + width..].iter().all(|&b| b == GUARD), "nothing after it");
                    if status != memseg_status::Ok {
                        assert!(buf.iter().all(|&b| b == GUARD), "failed get wrote its out value");
                        return (status, 0);
                    }
                    // SAFETY: the call succeeded, so it wrote a valid `$t` there.
                    let $v: $t = unsafe { buf[1..].as_ptr().cast::<$t>().read_unaligned() };
                    (status, $from)
                })*
            }
        }
    };
}

typed_ffi! {
    U8: u8, |b| b as u8, |v| u64::from(v),
        [memseg_segment_get_u8, memseg_segment_get_u8_le, memseg_segment_get_u8_be],
        [memseg_segment_put_u8, memseg_segment_put_u8_le, memseg_segment_put_u8_be];
    I8: i8, |b| b as u8 as i8, |v| u64::from(v as u8),
        [memseg_segment_get_i8, memseg_segment_get_i8_le, memseg_segment_get_i8_be],
        [memseg_segment_put_i8, memseg_segment_put_i8_le, memseg_segment_put_i8_be];
    Bool: bool, |b| b & 1 != 0, |v| u64::from(v),
        [memseg_segment_get_bool, memseg_segment_get_bool_le, memseg_segment_get_bool_be],
        [memseg_segment_put_bool, memseg_segment_put_bool_le, memseg_segment_put_bool_be];
    U16: u16, |b| b as u16, |v| u64::from(v),
        [memseg_segment_get_u16, memseg_segment_get_u16_le, memseg_segment_get_u16_be],
        [memseg_segment_put_u16, memseg_segment_put_u16_le, memseg_segment_put_u16_be];
    I16: i16, |b| b as u16 as i16, |v| u64::from(v as u16),
        [memseg_segment_get_i16, memseg_segment_get_i16_le, memseg_segment_get_i16_be],
        [memseg_segment_put_i16, memseg_segment_put_i16_le, memseg_segment_put_i16_be];
    Char: u16, |b| b as u16, |v| u64::from(v),
        [memseg_segment_get_char, memseg_segment_get_char_le, memseg_segment_get_char_be],
        [memseg_segment_put_char, memseg_segment_put_char_le, memseg_segment_put_char_be];
    U32: u32, |b| b as u32, |v| u64::from(v),
        [memseg_segment_get_u32, memseg_segment_get_u32_le, memseg_segment_get_u32_be],
        [memseg_segment_put_u32, memseg_segment_put_u32_le, memseg_segment_put_u32_be];
    I32: i32, |b| b as u32 as i32, |v| u64::from(v as u32),
        [memseg_segment_get_i32, memseg_segment_get_i32_le, memseg_segment_get_i32_be],
        [memseg_segment_put_i32, memseg_segment_put_i32_le, memseg_segment_put_i32_be];
    U64: u64, |b| b, |v| v,
        [memseg_segment_get_u64, memseg_segment_get_u64_le, memseg_segment_get_u64_be],
        [memseg_segment_put_u64, memseg_segment_put_u64_le, memseg_segment_put_u64_be];
    I64: i64, |b| b as i64, |v| v as u64,
        [memseg_segment_get_i64, memseg_segment_get_i64_le, memseg_segment_get_i64_be],
        [memseg_segment_put_i64, memseg_segment_put_i64_le, memseg_segment_put_i64_be];
    F32: f32, |b| f32::from_bits(b as u32), |v| u64::from(v.to_bits()),
        [memseg_segment_get_f32, memseg_segment_get_f32_le, memseg_segment_get_f32_be],
        [memseg_segment_put_f32, memseg_segment_put_f32_le, memseg_segment_put_f32_be];
    F64: f64, |b| f64::from_bits(b), |v| v.to_bits(),
        [memseg_segment_get_f64, memseg_segment_get_f64_le, memseg_segment_get_f64_be],
        [memseg_segment_put_f64, memseg_segment_put_f64_le, memseg_segment_put_f64_be];
}

/// Turns a call's status into the model's terms; a failure must come with a last error
/// message that names what failed.
fn outcome(status: memseg_status, done: Done, expected: &Result<Done, Fail>) -> Result<Done, Fail> {
    match status {
        memseg_status::Ok => Ok(done),
        memseg_status::OutOfBounds => match expected {
            // The message must name the offset, length and size the model expects.
            Err(Fail::OutOfBounds { offset, len, size }) => {
                let message = last();
                for part in [
                    format!("offset {offset}"),
                    format!("length {len}"),
                    format!("size {size}"),
                ] {
                    assert!(message.contains(&part), "{message:?} lacks {part:?}");
                }
                Err(Fail::OutOfBounds {
                    offset: *offset,
                    len: *len,
                    size: *size,
                })
            }
            _ => panic!("unexpected out of bounds: {}", last()),
        },
        memseg_status::InvalidArgument => {
            assert!(last().contains("overlap"), "{}", last());
            Err(Fail::InvalidArgument)
        }
        other => panic!("unexpected status {other:?}: {}", last()),
    }
}

/// Runs `op` through the C ABI.
fn run(segs: [memseg_segment; 2], op: &Op, expected: &Result<Done, Fail>) -> Result<Done, Fail> {
    let unit = |status| outcome(status, Done::Unit, expected);
    match *op {
        Op::Put {
            seg,
            prim,
            order,
            offset,
            bits,
        } => unit(ffi_put(segs[seg], prim, order, offset, bits)),
        Op::Get {
            seg,
            prim,
            order,
            offset,
        } => {
            let (status, bits) = ffi_get(segs[seg], prim, order, offset);
            outcome(status, Done::Bits(bits), expected)
        }
        Op::GetBytes { seg, offset, len } => {
            // A length past any segment is checked before the buffer is touched, so a
            // short buffer stands in for it; an empty read passes NULL.
            let mut buf = vec![0xA5u8; len.min(common::MAX_SIZE + 8)];
            let dst = if len == 0 {
                ptr::null_mut()
            } else {
                buf.as_mut_ptr()
            };
            // SAFETY: `dst` is writable for `len` bytes whenever the range is in bounds
            // (an in-bounds `len` is at most MAX_SIZE); NULL only with `len` 0.
            let status = unsafe { memseg_segment_get_bytes(segs[seg], offset, dst, len) };
            if status != memseg_status::Ok {
                assert!(buf.iter().all(|&b| b == 0xA5), "failed get_bytes wrote");
            }
            outcome(status, Done::Bytes(buf), expected)
        }
        Op::PutBytes {
            seg,
            offset,
            ref data,
        } => {
            let src = if data.is_empty() {
                ptr::null()
            } else {
                data.as_ptr()
            };
            // SAFETY: `src` is readable for `data.len()` bytes, NULL only when empty.
            unit(unsafe { memseg_segment_put_bytes(segs[seg], offset, src, data.len()) })
        }
        Op::CopyWithin { seg, src, dst, len } => {
            unit(memseg_segment_copy(segs[seg], src, segs[seg], dst, len))
        }
        Op::CopyTo {
            from,
            src,
            dst,
            len,
        } => unit(memseg_segment_copy(
            segs[from],
            src,
            segs[1 - from],
            dst,
            len,
        )),
        Op::Compare {
            a,
            a_off,
            b,
            b_off,
            len,
        } => {
            let mut order = 99;
            // SAFETY: `order` is a writable out parameter.
            let status =
                unsafe { memseg_segment_compare(segs[a], a_off, segs[b], b_off, len, &mut order) };
            if status != memseg_status::Ok {
                assert_eq!(order, 99, "failed compare wrote its out value");
            }
            outcome(status, Done::Order(order.cmp(&0)), expected).inspect(|_| {
                assert!(
                    [-1, 0, 1].contains(&order),
                    "compare gives -1, 0 or 1, not {order}"
                );
            })
        }
        Op::Equal {
            a,
            a_off,
            b,
            b_off,
            len,
        } => {
            let mut out = [0xA5u8];
            // SAFETY: `out` is writable for one byte, the size of a `bool`.
            let status = unsafe {
                memseg_segment_equal(segs[a], a_off, segs[b], b_off, len, out.as_mut_ptr().cast())
            };
            if status != memseg_status::Ok {
                assert_eq!(out, [0xA5], "failed equal wrote its out value");
            } else {
                assert!(out[0] <= 1, "equal writes a valid bool");
            }
            outcome(status, Done::Equal(out[0] == 1), expected)
        }
        Op::Swap { a_off, b_off, len } => {
            unit(memseg_segment_swap(segs[0], a_off, segs[1], b_off, len))
        }
        Op::SwapWithin {
            seg,
            a_off,
            b_off,
            len,
        } => unit(memseg_segment_swap(segs[seg], a_off, segs[seg], b_off, len)),
        Op::Fill {
            seg,
            offset,
            len,
            value,
        } => unit(memseg_segment_fill(segs[seg], offset, len, value)),
        Op::Raw { seg, offset, value } => {
            let (mut p, mut n) = (ptr::null_mut(), 0);
            // SAFETY: both out parameters are writable.
            let status = unsafe { memseg_segment_raw(segs[seg], &mut p, &mut n) };
            assert_eq!(status, memseg_status::Ok);
            // SAFETY: the lent pointer is valid for `n` bytes while the segment is live, and
            // nothing else touches the segment during this write.
            unsafe { p.add(offset % n).write(value) };
            Ok(Done::Unit)
        }
    }
}

fn check_sequence(specs: [Spec; 2], ops: Vec<Op>) -> Result<(), TestCaseError> {
    let releases = Releases::default();
    let segs = [make(&specs[0], &releases), make(&specs[1], &releases)];
    let mut model = Model {
        mem: [specs[0].expected_initial(), specs[1].expected_initial()],
    };
    for (step, op) in ops.iter().enumerate() {
        let expected = model.apply(op);
        let actual = run(segs, op, &expected);
        prop_assert_eq!(&actual, &expected, "step {}: {:?}", step, op);
        for (seg, mem) in segs.iter().zip(&model.mem) {
            prop_assert_eq!(&contents(*seg), mem, "step {}: {:?}", step, op);
        }
    }
    // The lent pointer sees the same bytes.
    for (seg, mem) in segs.iter().zip(&model.mem) {
        let (mut p, mut n) = (ptr::null_mut(), 0);
        // SAFETY: both out parameters are writable.
        prop_assert_eq!(
            unsafe { memseg_segment_raw(*seg, &mut p, &mut n) },
            memseg_status::Ok
        );
        // SAFETY: the lent pointer is valid for `n` bytes while the segment is live.
        prop_assert_eq!(unsafe { std::slice::from_raw_parts(p, n) }, &mem[..]);
    }
    for seg in segs {
        prop_assert_eq!(memseg_segment_free(seg), memseg_status::Ok);
        prop_assert_eq!(memseg_segment_free(seg), memseg_status::StaleHandle);
    }
    let foreign = specs.iter().filter(|s| s.kind == Kind::Foreign).count();
    prop_assert_eq!(releases.calls.load(Ordering::SeqCst), foreign);
    Ok(())
}

proptest! {
    #![proptest_config(common::config())]

    #[test]
    fn op_sequences_through_the_c_abi_match_the_model(
        a in common::spec(),
        b in common::spec(),
        ops in common::ops(),
    ) {
        check_sequence([a, b], ops)?;
    }

    /// Any value that is not a live handle is refused by every call, with a status that
    /// says why; nothing is written and nothing is freed.
    #[test]
    fn forged_handles_are_refused(bits in any::<u64>()) {
        let seg = memseg_segment { bits };
        let mut kind = memseg_memory_kind::Heap;
        // SAFETY: `kind` is a writable out parameter.
        let status = unsafe { memseg_segment_kind(seg, &mut kind) };
        prop_assume!(status != memseg_status::Ok, "a live handle of another test");
        // A forged value whose tag names another kind of object is refused as such.
        let refused = [
            memseg_status::InvalidHandle,
            memseg_status::StaleHandle,
            memseg_status::WrongHandleKind,
        ];
        prop_assert!(refused.contains(&status), "{:?}", status);
        prop_assert!(refused.contains(&memseg_segment_put_u32_be(seg, 0, 1)));
        let (status, _) = ffi_get(seg, Prim::U64, ByteOrder::Little, 0);
        prop_assert!(refused.contains(&status));
        prop_assert!(refused.contains(&memseg_segment_fill(seg, 0, 1, 0)));
        let freed = memseg_segment_free(seg);
        prop_assert!(freed == memseg_status::Ok && bits == 0 || refused.contains(&freed));
    }
}

/// Every call that takes the handle, with valid arguments otherwise: all must return
/// `expected` and write nothing.
fn every_call_is_refused(seg: memseg_segment, expected: memseg_status, message_part: &str) {
    let good = heap(16);
    let check = |what: &str, status: memseg_status| {
        assert_eq!(status, expected, "{what}");
        let message = last();
        assert!(
            message.contains(message_part),
            "{what}: {message:?} lacks {message_part:?}"
        );
    };
    let mut size = 7usize;
    // SAFETY: every out parameter below is writable.
    unsafe {
        check("size", memseg_segment_size(seg, &mut size));
        let mut kind = memseg_memory_kind::Offheap;
        check("kind", memseg_segment_kind(seg, &mut kind));
        assert_eq!(kind, memseg_memory_kind::Offheap);
        let (mut p, mut n) = (ptr::dangling_mut::<u8>(), 7usize);
        check("raw", memseg_segment_raw(seg, &mut p, &mut n));
        assert_eq!((p, n), (ptr::dangling_mut(), 7));
        let mut buf = [0xA5u8; 4];
        check(
            "get_bytes",
            memseg_segment_get_bytes(seg, 0, buf.as_mut_ptr(), 4),
        );
        assert_eq!(buf, [0xA5; 4]);
        check(
            "put_bytes",
            memseg_segment_put_bytes(seg, 0, buf.as_ptr(), 4),
        );
        let mut order = 99;
        check(
            "compare a",
            memseg_segment_compare(seg, 0, good, 0, 1, &mut order),
        );
        check(
            "compare b",
            memseg_segment_compare(good, 0, seg, 0, 1, &mut order),
        );
        assert_eq!(order, 99);
        let mut equal = false;
        check(
            "equal a",
            memseg_segment_equal(seg, 0, good, 0, 1, &mut equal),
        );
        check(
            "equal b",
            memseg_segment_equal(good, 0, seg, 0, 1, &mut equal),
        );
        assert!(!equal);
    }
    assert_eq!(size, 7);
    check("copy from", memseg_segment_copy(seg, 0, good, 0, 1));
    check("copy to", memseg_segment_copy(good, 0, seg, 0, 1));
    check("swap a", memseg_segment_swap(seg, 0, good, 0, 1));
    check("swap b", memseg_segment_swap(good, 0, seg, 0, 1));
    check("fill", memseg_segment_fill(seg, 0, 1, 0xFF));
    for prim in common::ALL_PRIMS {
        for order in common::ALL_ORDERS {
            check("put typed", ffi_put(seg, prim, order, 0, u64::MAX));
            check("get typed", ffi_get(seg, prim, order, 0).0);
        }
    }
    assert_eq!(
        contents(good),
        vec![0; 16],
        "the good segment was not touched"
    );
    assert_eq!(memseg_segment_free(good), memseg_status::Ok);
}

#[test]
fn a_zero_handle_is_invalid_everywhere_and_freeing_it_is_a_no_op() {
    let zero = memseg_segment::default();
    every_call_is_refused(
        zero,
        memseg_status::InvalidHandle,
        "null segment handle (zero)",
    );
    let mut freed = true;
    // SAFETY: `freed` is a writable out parameter.
    let status = unsafe { memseg_segment_is_freed(zero, &mut freed) };
    assert_eq!(status, memseg_status::InvalidHandle);
    assert!(freed, "not written on failure");
    assert_eq!(memseg_segment_free(zero), memseg_status::Ok);
    assert_eq!(memseg_segment_free(zero), memseg_status::Ok);
}

#[test]
fn a_freed_handle_is_stale_everywhere_and_a_second_free_is_refused() {
    let seg = heap(32);
    let mut freed = true;
    // SAFETY: `freed` is a writable out parameter.
    assert_eq!(
        unsafe { memseg_segment_is_freed(seg, &mut freed) },
        memseg_status::Ok
    );
    assert!(!freed);
    assert_eq!(memseg_segment_free(seg), memseg_status::Ok);
    // SAFETY: as above.
    assert_eq!(
        unsafe { memseg_segment_is_freed(seg, &mut freed) },
        memseg_status::Ok
    );
    assert!(freed);
    let named = format!("{:#018x}", seg.bits);
    every_call_is_refused(seg, memseg_status::StaleHandle, &named);
    assert_eq!(memseg_segment_free(seg), memseg_status::StaleHandle);
    assert!(
        last().contains(&named) && last().contains("stale"),
        "{}",
        last()
    );
}

#[test]
fn a_stale_handle_stays_stale_when_its_slot_is_reused() {
    let old = heap(8);
    assert_eq!(memseg_segment_free(old), memseg_status::Ok);
    // Free slots are reused first in, first out: hold new segments until one lands in the
    // old slot (other tests of this binary take slots too, so the count varies).
    let mut held = Vec::new();
    let reused = loop {
        let seg = heap(8);
        held.push(seg);
        if seg.bits as u32 == old.bits as u32 {
            break seg;
        }
        assert!(held.len() < 100_000, "the slot never came back");
    };
    assert_ne!(reused, old, "a new generation");
    assert_eq!(memseg_segment_put_u8(reused, 0, 1), memseg_status::Ok);
    assert_eq!(memseg_segment_put_u8(old, 0, 2), memseg_status::StaleHandle);
    assert_eq!(memseg_segment_free(old), memseg_status::StaleHandle);
    assert_eq!(contents(reused), [1, 0, 0, 0, 0, 0, 0, 0]);
    for seg in held {
        assert_eq!(memseg_segment_free(seg), memseg_status::Ok);
    }
}

#[test]
fn forged_handles_of_every_shape_are_invalid() {
    let live = heap(8);
    let cases = [
        ("a generation from the future", live.bits + (1 << 32)),
        ("generation zero", live.bits & !(0xFF_FFFF << 32)),
        (
            "an index never allocated",
            (live.bits & !0xFFFF_FFFF) | 0xFFFF_FFF0,
        ),
        ("an unknown kind tag", live.bits ^ (0x80 << 56)),
        ("kind tag zero", live.bits & !(0xFF << 56)),
        ("all ones", u64::MAX),
    ];
    for (what, bits) in cases {
        let forged = memseg_segment { bits };
        assert_eq!(
            memseg_segment_put_u8(forged, 0, 1),
            memseg_status::InvalidHandle,
            "{what}"
        );
        assert!(
            last().contains(&format!("{bits:#018x}")),
            "{what}: {}",
            last()
        );
        assert_eq!(
            memseg_segment_free(forged),
            memseg_status::InvalidHandle,
            "{what}"
        );
    }
    assert!(last().contains("unknown kind tag 255"), "{}", last());
    assert_eq!(
        contents(live),
        [0; 8],
        "no forged call reached the live segment"
    );
    assert_eq!(memseg_segment_free(live), memseg_status::Ok);
}

#[test]
fn null_out_pointers_are_refused_and_nothing_is_written() {
    let seg = heap(16);
    let null_argument = |status: memseg_status, name: &str| {
        assert_eq!(status, memseg_status::NullArgument, "{name}");
        assert!(last().contains(&format!("`{name}`")), "{name}: {}", last());
    };
    let releases = Releases::default();
    let mut memory = [0u8; 8];
    // SAFETY: every pointer passed is NULL or writable/readable for what the call takes;
    // the wraps fail, so `memory` is never used by a segment.
    unsafe {
        null_argument(memseg_segment_new_heap(16, ptr::null_mut()), "out_segment");
        null_argument(
            memseg_segment_new_offheap(16, 0, ptr::null_mut()),
            "out_segment",
        );
        let mut out = memseg_segment { bits: 42 };
        null_argument(
            memseg_segment_wrap(
                ptr::null_mut(),
                8,
                Some(count_release),
                ctx(&releases),
                &mut out,
            ),
            "ptr",
        );
        assert_eq!(out.bits, 42);
        null_argument(
            memseg_segment_wrap(
                memory.as_mut_ptr().cast(),
                8,
                Some(count_release),
                ctx(&releases),
                ptr::null_mut(),
            ),
            "out_segment",
        );
        null_argument(memseg_segment_size(seg, ptr::null_mut()), "out_size");
        null_argument(memseg_segment_kind(seg, ptr::null_mut()), "out_kind");
        null_argument(memseg_segment_is_freed(seg, ptr::null_mut()), "out_freed");
        null_argument(memseg_segment_live_count(ptr::null_mut()), "out_count");
        let mut p = ptr::dangling_mut::<u8>();
        let mut n = 7usize;
        null_argument(memseg_segment_raw(seg, ptr::null_mut(), &mut n), "out_ptr");
        null_argument(memseg_segment_raw(seg, &mut p, ptr::null_mut()), "out_size");
        assert_eq!(
            (p, n),
            (ptr::dangling_mut(), 7),
            "the other out pointer is not written"
        );
        null_argument(
            memseg_segment_compare(seg, 0, seg, 0, 1, ptr::null_mut()),
            "out_order",
        );
        null_argument(
            memseg_segment_equal(seg, 0, seg, 0, 1, ptr::null_mut()),
            "out_equal",
        );
        null_argument(memseg_segment_get_bytes(seg, 0, ptr::null_mut(), 4), "dst");
        null_argument(memseg_segment_put_bytes(seg, 0, ptr::null(), 4), "src");
        // NULL with length 0 is an empty buffer, fine at any in-bounds offset.
        assert_eq!(
            memseg_segment_get_bytes(seg, 16, ptr::null_mut(), 0),
            memseg_status::Ok
        );
        assert_eq!(
            memseg_segment_put_bytes(seg, 0, ptr::null(), 0),
            memseg_status::Ok
        );
        assert_eq!(
            memseg_segment_get_bytes(seg, 17, ptr::null_mut(), 0),
            memseg_status::OutOfBounds
        );
        // Every typed getter.
        macro_rules! null_gets {
            ($($get:ident),*) => {$(
                null_argument($get(seg, 0, ptr::null_mut()), "out_value");
            )*};
        }
        null_gets!(
            memseg_segment_get_u8,
            memseg_segment_get_u8_le,
            memseg_segment_get_u8_be,
            memseg_segment_get_i8,
            memseg_segment_get_i8_le,
            memseg_segment_get_i8_be,
            memseg_segment_get_bool,
            memseg_segment_get_bool_le,
            memseg_segment_get_bool_be,
            memseg_segment_get_u16,
            memseg_segment_get_u16_le,
            memseg_segment_get_u16_be,
            memseg_segment_get_i16,
            memseg_segment_get_i16_le,
            memseg_segment_get_i16_be,
            memseg_segment_get_char,
            memseg_segment_get_char_le,
            memseg_segment_get_char_be,
            memseg_segment_get_u32,
            memseg_segment_get_u32_le,
            memseg_segment_get_u32_be,
            memseg_segment_get_i32,
            memseg_segment_get_i32_le,
            memseg_segment_get_i32_be,
            memseg_segment_get_u64,
            memseg_segment_get_u64_le,
            memseg_segment_get_u64_be,
            memseg_segment_get_i64,
            memseg_segment_get_i64_le,
            memseg_segment_get_i64_be,
            memseg_segment_get_f32,
            memseg_segment_get_f32_le,
            memseg_segment_get_f32_be,
            memseg_segment_get_f64,
            memseg_segment_get_f64_le,
            memseg_segment_get_f64_be
        );
    }
    assert_eq!(
        releases.calls.load(Ordering::SeqCst),
        0,
        "no failed wrap calls release"
    );
    assert_eq!(memory, [0; 8]);
    assert_eq!(contents(seg), [0; 16]);
    assert_eq!(memseg_segment_free(seg), memseg_status::Ok);
}

#[test]
fn offsets_and_lengths_near_usize_max_are_out_of_bounds_not_wrapped() {
    let size = 64;
    let seg = heap(size);
    let other = heap(size);
    let oob = |what: &str, status: memseg_status, offset: usize, len: usize| {
        assert_eq!(status, memseg_status::OutOfBounds, "{what}");
        let message = last();
        for part in [
            format!("offset {offset}"),
            format!("length {len}"),
            format!("size {size}"),
        ] {
            assert!(
                message.contains(&part),
                "{what}: {message:?} lacks {part:?}"
            );
        }
    };
    // Every width overflows from these offsets (fewer under Miri, where each formatted
    // error message costs).
    for back in 0..if cfg!(miri) { 2 } else { 9 } {
        let offset = usize::MAX - back;
        for prim in common::ALL_PRIMS {
            for order in common::ALL_ORDERS {
                oob(
                    "put",
                    ffi_put(seg, prim, order, offset, u64::MAX),
                    offset,
                    prim.width(),
                );
                oob(
                    "get",
                    ffi_get(seg, prim, order, offset).0,
                    offset,
                    prim.width(),
                );
            }
        }
    }
    let huge = [usize::MAX, usize::MAX - 1, isize::MAX as usize + 1];
    let mut buf = [0xA5u8; 4];
    // SAFETY: the ranges are out of bounds, which the calls check before touching `buf`
    // (which is why a 4-byte buffer can stand for a huge length here).
    unsafe {
        for len in huge {
            oob(
                "get_bytes len",
                memseg_segment_get_bytes(seg, 1, buf.as_mut_ptr(), len),
                1,
                len,
            );
            oob(
                "put_bytes len",
                memseg_segment_put_bytes(seg, 1, buf.as_ptr(), len),
                1,
                len,
            );
        }
        for offset in huge {
            oob(
                "get_bytes",
                memseg_segment_get_bytes(seg, offset, buf.as_mut_ptr(), 2),
                offset,
                2,
            );
            oob(
                "put_bytes",
                memseg_segment_put_bytes(seg, offset, buf.as_ptr(), 2),
                offset,
                2,
            );
        }
        let mut order = 99;
        let mut equal = [0xA5u8];
        for (a, b, len) in [
            (usize::MAX, 0, 2),
            (0, usize::MAX, 2),
            (1, 0, usize::MAX),
            (0, 1, usize::MAX),
        ] {
            let (bad_offset, bad_len) = if a.checked_add(len).is_none_or(|e| e > size) {
                (a, len)
            } else {
                (b, len)
            };
            oob(
                "compare",
                memseg_segment_compare(seg, a, other, b, len, &mut order),
                bad_offset,
                bad_len,
            );
            oob(
                "equal",
                memseg_segment_equal(seg, a, other, b, len, equal.as_mut_ptr().cast()),
                bad_offset,
                bad_len,
            );
            oob(
                "copy",
                memseg_segment_copy(seg, a, other, b, len),
                bad_offset,
                bad_len,
            );
            oob(
                "copy within",
                memseg_segment_copy(seg, a, seg, b, len),
                bad_offset,
                bad_len,
            );
            oob(
                "swap",
                memseg_segment_swap(seg, a, other, b, len),
                bad_offset,
                bad_len,
            );
            oob(
                "swap within",
                memseg_segment_swap(seg, a, seg, b, len),
                bad_offset,
                bad_len,
            );
        }
        assert_eq!((order, equal), (99, [0xA5]));
    }
    for (offset, len) in [(usize::MAX, 1), (1, usize::MAX), (size, 1), (size + 1, 0)] {
        oob(
            "fill",
            memseg_segment_fill(seg, offset, len, 0xFF),
            offset,
            len,
        );
    }
    assert_eq!(buf, [0xA5; 4]);
    // The last byte, and an empty range at the very end, are in bounds.
    assert_eq!(memseg_segment_fill(seg, size, 0, 0xFF), memseg_status::Ok);
    assert_eq!(
        memseg_segment_put_u8(seg, size - 1, 0xFF),
        memseg_status::Ok
    );
    let mut expected = vec![0; size];
    expected[size - 1] = 0xFF;
    assert_eq!(contents(seg), expected);
    assert_eq!(contents(other), vec![0; size]);
    assert_eq!(memseg_segment_free(seg), memseg_status::Ok);
    assert_eq!(memseg_segment_free(other), memseg_status::Ok);
}

#[test]
fn impossible_sizes_and_flags_are_invalid_arguments() {
    let releases = Releases::default();
    let mut memory = [0u8; 8];
    for size in [0, usize::MAX, isize::MAX as usize + 1] {
        let mut out = memseg_segment { bits: 42 };
        // SAFETY: `out` is writable; the wraps fail on their size before using `memory`.
        unsafe {
            assert_eq!(
                memseg_segment_new_heap(size, &mut out),
                memseg_status::InvalidArgument
            );
            assert!(
                last().contains(&size.to_string()) || size == 0,
                "{}",
                last()
            );
            assert_eq!(
                memseg_segment_new_offheap(size, 0, &mut out),
                memseg_status::InvalidArgument
            );
            let status = memseg_segment_wrap(
                memory.as_mut_ptr().cast(),
                size,
                Some(count_release),
                ctx(&releases),
                &mut out,
            );
            assert_eq!(status, memseg_status::InvalidArgument);
        }
        assert_eq!(out.bits, 42, "size {size}: nothing written");
    }
    assert_eq!(releases.calls.load(Ordering::SeqCst), 0);
    for flags in [1 << 2, u32::MAX, 1 << 31] {
        let mut out = memseg_segment { bits: 42 };
        // SAFETY: `out` is writable.
        let status = unsafe { memseg_segment_new_offheap(4096, flags, &mut out) };
        assert_eq!(status, memseg_status::InvalidArgument, "flags {flags:#x}");
        let unknown = flags & !(MEMSEG_OFFHEAP_HUGE_PAGES | MEMSEG_OFFHEAP_PREFAULT);
        assert!(last().contains(&format!("{unknown:#x}")), "{}", last());
        assert_eq!(out.bits, 42);
    }
}

#[test]
#[cfg_attr(miri, ignore = "Miri cannot model a failing allocation of 2^50 bytes")]
fn a_huge_representable_size_is_an_allocation_failure() {
    let size = 1usize << 50;
    let mut out = memseg_segment { bits: 42 };
    // SAFETY: `out` is writable.
    unsafe {
        assert_eq!(
            memseg_segment_new_heap(size, &mut out),
            memseg_status::AllocationFailed
        );
        assert!(last().contains(&size.to_string()), "{}", last());
        let flags = [0, MEMSEG_OFFHEAP_HUGE_PAGES, MEMSEG_OFFHEAP_PREFAULT];
        for flags in flags {
            let status = memseg_segment_new_offheap(size, flags, &mut out);
            assert_eq!(status, memseg_status::AllocationFailed, "flags {flags}");
            assert!(last().contains(&size.to_string()), "{}", last());
        }
    }
    assert_eq!(out.bits, 42);
}

#[test]
#[cfg_attr(miri, ignore = "Miri emulates neither MAP_POPULATE nor madvise")]
fn off_heap_flags_give_zeroed_page_aligned_segments() {
    for flags in [
        0,
        MEMSEG_OFFHEAP_HUGE_PAGES,
        MEMSEG_OFFHEAP_PREFAULT,
        MEMSEG_OFFHEAP_HUGE_PAGES | MEMSEG_OFFHEAP_PREFAULT,
    ] {
        let mut seg = memseg_segment::default();
        // SAFETY: `seg` is writable.
        assert_eq!(
            unsafe { memseg_segment_new_offheap(1 << 21, flags, &mut seg) },
            memseg_status::Ok
        );
        let (mut p, mut n) = (ptr::null_mut(), 0);
        // SAFETY: both out parameters are writable.
        assert_eq!(
            unsafe { memseg_segment_raw(seg, &mut p, &mut n) },
            memseg_status::Ok
        );
        assert_eq!((p as usize % 4096, n), (0, 1 << 21));
        assert!(contents(seg).iter().all(|&b| b == 0));
        assert_eq!(memseg_segment_free(seg), memseg_status::Ok);
    }
}

#[test]
fn the_last_error_message_is_copied_truncated_and_measured() {
    let seg = heap(64);
    assert_eq!(
        memseg_segment_put_u64_be(seg, 60, 1),
        memseg_status::OutOfBounds
    );
    let message = last();
    assert_eq!(
        message,
        "out of bounds: offset 60 + length 8 exceeds size 64"
    );
    let len = message.len();
    // SAFETY: every buffer passed is writable for the length given, or NULL with 0.
    unsafe {
        // Length only.
        assert_eq!(memseg_last_error_message(ptr::null_mut(), 0), len);
        let mut buf = [b'#' as c_char; 80];
        assert_eq!(memseg_last_error_message(buf.as_mut_ptr(), 0), len);
        assert!(
            buf.iter().all(|&c| c == b'#' as c_char),
            "buf_len 0 writes nothing"
        );
        // A NULL buffer with a length is not written either.
        assert_eq!(memseg_last_error_message(ptr::null_mut(), 10), len);
        // Exactly enough room.
        assert_eq!(memseg_last_error_message(buf.as_mut_ptr(), len + 1), len);
        assert_eq!(CStr::from_ptr(buf.as_ptr()).to_str().unwrap(), message);
        assert_eq!(buf[len + 1], b'#' as c_char, "nothing past the NUL");
        // Truncated: buf_len - 1 bytes and a NUL, and the full length returned.
        let mut buf = [b'#' as c_char; 80];
        assert_eq!(memseg_last_error_message(buf.as_mut_ptr(), 5), len);
        assert_eq!(
            CStr::from_ptr(buf.as_ptr()).to_bytes(),
            &message.as_bytes()[..4]
        );
        assert!(
            buf[5..].iter().all(|&c| c == b'#' as c_char),
            "nothing past buf_len"
        );
        // Room for the NUL only.
        assert_eq!(memseg_last_error_message(buf.as_mut_ptr(), 1), len);
        assert_eq!(buf[0], 0);
        // One byte short of the full message.
        let mut buf = [b'#' as c_char; 80];
        assert_eq!(memseg_last_error_message(buf.as_mut_ptr(), len), len);
        assert_eq!(
            CStr::from_ptr(buf.as_ptr()).to_bytes(),
            &message.as_bytes()[..len - 1]
        );
    }
    // Successful calls leave it alone.
    assert_eq!(memseg_segment_put_u64_be(seg, 56, 1), memseg_status::Ok);
    assert_eq!(memseg_segment_fill(seg, 0, 64, 0), memseg_status::Ok);
    assert_eq!(last(), message);
    // The next failure replaces it.
    assert_eq!(
        memseg_segment_fill(seg, 65, 0, 0),
        memseg_status::OutOfBounds
    );
    assert_eq!(
        last(),
        "out of bounds: offset 65 + length 0 exceeds size 64"
    );
    // Each thread has its own: a new thread starts empty, and its errors stay its own.
    std::thread::spawn(move || {
        assert_eq!(last(), "");
        let mut buf = [b'#' as c_char; 4];
        // SAFETY: `buf` is writable for 4 bytes.
        assert_eq!(unsafe { memseg_last_error_message(buf.as_mut_ptr(), 4) }, 0);
        assert_eq!(buf[0], 0);
        assert_eq!(
            memseg_segment_put_u8(seg, 64, 0),
            memseg_status::OutOfBounds
        );
        assert!(last().contains("offset 64"));
    })
    .join()
    .unwrap();
    assert_eq!(
        last(),
        "out of bounds: offset 65 + length 0 exceeds size 64"
    );
    assert_eq!(memseg_segment_free(seg), memseg_status::Ok);
}

#[test]
fn every_status_has_its_name_and_unknown_codes_have_one_too() {
    let names = [
        (0, "MEMSEG_STATUS_OK"),
        (1, "MEMSEG_STATUS_NULL_ARGUMENT"),
        (2, "MEMSEG_STATUS_INVALID_ARGUMENT"),
        (3, "MEMSEG_STATUS_OUT_OF_BOUNDS"),
        (4, "MEMSEG_STATUS_INVALID_HANDLE"),
        (5, "MEMSEG_STATUS_STALE_HANDLE"),
        (6, "MEMSEG_STATUS_WRONG_HANDLE_KIND"),
        (7, "MEMSEG_STATUS_ALLOCATION_FAILED"),
        (8, "MEMSEG_STATUS_PANIC"),
        (9, "MEMSEG_STATUS_BUDGET_EXHAUSTED"),
        (10, "MEMSEG_STATUS_QUOTA_EXHAUSTED"),
        (11, "MEMSEG_STATUS_WOULD_BLOCK"),
        (12, "MEMSEG_STATUS_TIMEOUT"),
        (13, "MEMSEG_STATUS_END_OF_DATA"),
        (14, "MEMSEG_STATUS_OUT_OF_SEGMENTS"),
        (15, "MEMSEG_STATUS_IO"),
        (16, "MEMSEG_STATUS_DISK_FULL"),
        (17, "MEMSEG_STATUS_CORRUPTED"),
        (18, "MEMSEG_STATUS_READ_ONLY"),
        (19, "MEMSEG_STATUS_IN_USE"),
        (20, "MEMSEG_STATUS_CLOSED"),
        (21, "MEMSEG_STATUS_NEED_MORE_DATA"),
    ];
    assert_eq!(ALL_STATUSES.len(), names.len());
    for (status, (code, name)) in ALL_STATUSES.iter().zip(names) {
        assert_eq!(*status as i32, code, "{name} keeps its number");
        assert_eq!(memseg_status::from_code(code), Some(*status));
        // SAFETY: the name is a static NUL-terminated string.
        let got = unsafe { CStr::from_ptr(memseg_status_name(code)) };
        assert_eq!(got.to_str().unwrap(), name);
        assert_eq!(status.name(), got);
    }
    for code in [-1, 22, 23, 100, i32::MIN, i32::MAX] {
        // SAFETY: as above.
        let got = unsafe { CStr::from_ptr(memseg_status_name(code)) };
        assert_eq!(got.to_str().unwrap(), "MEMSEG_STATUS_UNKNOWN", "{code}");
        assert_eq!(memseg_status::from_code(code), None);
    }
}

#[test]
fn foreign_memory_is_the_hosts_and_is_released_exactly_once() {
    let releases = Releases::default();
    let mut memory = [1u8, 2, 3, 4, 5, 6, 7, 8];
    let address = memory.as_mut_ptr();
    let mut seg = memseg_segment::default();
    // SAFETY: `memory` outlives the segment (freed below) and is not touched while it is
    // wrapped; `releases` outlives it too.
    let status = unsafe {
        memseg_segment_wrap(
            address.cast(),
            8,
            Some(count_release),
            ctx(&releases),
            &mut seg,
        )
    };
    assert_eq!(status, memseg_status::Ok);
    assert_eq!(
        contents(seg),
        [1, 2, 3, 4, 5, 6, 7, 8],
        "wrapped bytes are not cleared"
    );
    let (mut p, mut n) = (ptr::null_mut(), 0);
    // SAFETY: both out parameters are writable.
    assert_eq!(
        unsafe { memseg_segment_raw(seg, &mut p, &mut n) },
        memseg_status::Ok
    );
    assert_eq!(
        (p, n),
        (address, 8),
        "the segment is the host's memory, not a copy"
    );
    assert_eq!(
        memseg_segment_put_u32_be(seg, 0, 0xDEAD_BEEF),
        memseg_status::Ok
    );
    assert_eq!(releases.calls.load(Ordering::SeqCst), 0);
    // Freed on another thread: the callback runs there, once, with what was wrapped.
    std::thread::scope(|s| {
        s.spawn(|| assert_eq!(memseg_segment_free(seg), memseg_status::Ok));
    });
    assert_eq!(releases.calls.load(Ordering::SeqCst), 1);
    assert_eq!(releases.last_ptr.load(Ordering::SeqCst), address as usize);
    assert_eq!(releases.last_size.load(Ordering::SeqCst), 8);
    assert_eq!(memseg_segment_free(seg), memseg_status::StaleHandle);
    assert_eq!(
        releases.calls.load(Ordering::SeqCst),
        1,
        "not again on a double free"
    );
    assert_eq!(
        memory,
        [0xDE, 0xAD, 0xBE, 0xEF, 5, 6, 7, 8],
        "the host keeps the bytes"
    );

    // Without a callback, freeing just forgets the memory.
    // SAFETY: as above.
    let status = unsafe { memseg_segment_wrap(address.cast(), 8, None, ptr::null_mut(), &mut seg) };
    assert_eq!(status, memseg_status::Ok);
    let mut kind = memseg_memory_kind::Heap;
    // SAFETY: `kind` is writable.
    assert_eq!(
        unsafe { memseg_segment_kind(seg, &mut kind) },
        memseg_status::Ok
    );
    assert_eq!(kind, memseg_memory_kind::Foreign);
    assert_eq!(memseg_segment_free(seg), memseg_status::Ok);
    assert_eq!(releases.calls.load(Ordering::SeqCst), 1);
    assert_eq!(memory, [0xDE, 0xAD, 0xBE, 0xEF, 5, 6, 7, 8]);
}

#[test]
fn swapping_within_one_segment_refuses_partial_overlap() {
    let seg = heap(16);
    let bytes: Vec<u8> = (0..16).collect();
    // SAFETY: `bytes` is readable for 16 bytes.
    assert_eq!(
        unsafe { memseg_segment_put_bytes(seg, 0, bytes.as_ptr(), 16) },
        memseg_status::Ok
    );
    assert_eq!(
        memseg_segment_swap(seg, 0, seg, 3, 4),
        memseg_status::InvalidArgument
    );
    assert!(last().contains("overlap"), "{}", last());
    assert_eq!(
        memseg_segment_swap(seg, 3, seg, 0, 4),
        memseg_status::InvalidArgument
    );
    assert_eq!(contents(seg), bytes, "nothing changes on failure");
    assert_eq!(
        memseg_segment_swap(seg, 2, seg, 2, 8),
        memseg_status::Ok,
        "a range with itself"
    );
    assert_eq!(
        memseg_segment_swap(seg, 0, seg, 4, 4),
        memseg_status::Ok,
        "adjacent ranges"
    );
    assert_eq!(
        contents(seg),
        [4, 5, 6, 7, 0, 1, 2, 3, 8, 9, 10, 11, 12, 13, 14, 15]
    );
    // Overlapping copies are memmove, in both directions.
    assert_eq!(memseg_segment_copy(seg, 0, seg, 2, 6), memseg_status::Ok);
    assert_eq!(&contents(seg)[..8], [4, 5, 4, 5, 6, 7, 0, 1]);
    assert_eq!(memseg_segment_copy(seg, 2, seg, 1, 6), memseg_status::Ok);
    assert_eq!(&contents(seg)[..8], [4, 4, 5, 6, 7, 0, 1, 1]);
    assert_eq!(memseg_segment_free(seg), memseg_status::Ok);
}

#[test]
fn compare_is_unsigned_and_lexicographic() {
    let a = heap(4);
    let b = heap(4);
    let mut order = 99;
    let cmp = |a_off, b_off, len, order: &mut i32| {
        // SAFETY: `order` is writable.
        let status = unsafe { memseg_segment_compare(a, a_off, b, b_off, len, order) };
        assert_eq!(status, memseg_status::Ok);
        (*order).cmp(&0)
    };
    assert_eq!(memseg_segment_put_u8(a, 0, 0x80), memseg_status::Ok);
    assert_eq!(memseg_segment_put_u8(b, 0, 0x7F), memseg_status::Ok);
    assert_eq!(
        cmp(0, 0, 1, &mut order),
        CmpOrdering::Greater,
        "0x80 > 0x7F unsigned"
    );
    assert_eq!(order, 1);
    assert_eq!(cmp(1, 1, 3, &mut order), CmpOrdering::Equal);
    assert_eq!(
        cmp(0, 0, 0, &mut order),
        CmpOrdering::Equal,
        "empty ranges are equal"
    );
    assert_eq!(memseg_segment_put_u8(a, 1, 0), memseg_status::Ok);
    assert_eq!(memseg_segment_put_u8(b, 1, 0xFF), memseg_status::Ok);
    assert_eq!(cmp(1, 1, 3, &mut order), CmpOrdering::Less);
    assert_eq!(order, -1);
    assert_eq!(memseg_segment_free(a), memseg_status::Ok);
    assert_eq!(memseg_segment_free(b), memseg_status::Ok);
}
