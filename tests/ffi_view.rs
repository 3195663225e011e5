//! The view layer's C ABI called from Rust: random writes of every generated accessor (each
//! type, both byte orders), strings, bytes and skips through an output view over segment
//! handles of random sizes, read back through an input view and through the serialization
//! buffer and reader; and the messages a host sees for freed segments and wrong handles.

mod common;

use std::ffi::c_char;

use common::{ALL_PRIMS, Prim, config, encode};
use memseg::ByteOrder;
use memseg::ffi::*;
use memseg::view::utf;
use proptest::prelude::*;

fn heap(size: usize) -> memseg_segment {
    let mut seg = memseg_segment::default();
    // SAFETY: `seg` is a writable out parameter.
    assert_eq!(
        unsafe { memseg_segment_new_heap(size, &mut seg) },
        memseg_status::Ok
    );
    seg
}

#[derive(Debug, Clone)]
enum Op {
    Prim(Prim, ByteOrder, u64),
    Bytes(Vec<u8>),
    Utf(String),
    Skip(usize),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (0..ALL_PRIMS.len(), any::<bool>(), any::<u64>()).prop_map(|(p, le, bits)| {
            let order = if le { ByteOrder::Little } else { ByteOrder::Big };
            Op::Prim(ALL_PRIMS[p], order, ALL_PRIMS[p].canonical(bits))
        }),
        1 => proptest::collection::vec(any::<u8>(), 0..20).prop_map(Op::Bytes),
        1 => "[a\\x00é€😀]{0,6}".prop_map(Op::Utf),
        1 => (0..9usize).prop_map(Op::Skip),
    ]
}

fn len_of(op: &Op) -> usize {
    match op {
        Op::Prim(p, ..) => p.width(),
        Op::Bytes(b) => b.len(),
        Op::Utf(s) => 2 + utf::encoded_len(s),
        Op::Skip(n) => *n,
    }
}

/// Conversions between a value and the canonical bits of the model.
trait Bits: Copy + Default {
    fn from_bits(bits: u64) -> Self;
    fn to_bits(self) -> u64;
}

macro_rules! int_bits {
    ($($t:ty, $u:ty);*) => {$(
        impl Bits for $t {
            fn from_bits(bits: u64) -> Self {
                bits as $u as $t
            }
            fn to_bits(self) -> u64 {
                self as $u as u64
            }
        }
    )*};
}
int_bits!(u8, u8; i8, u8; u16, u16; i16, u16; u32, u32; i32, u32; u64, u64; i64, u64);

impl Bits for bool {
    fn from_bits(bits: u64) -> Self {
        bits != 0
    }
    fn to_bits(self) -> u64 {
        u64::from(self)
    }
}

impl Bits for f32 {
    fn from_bits(bits: u64) -> Self {
        f32::from_bits(bits as u32)
    }
    fn to_bits(self) -> u64 {
        u64::from(f32::to_bits(self))
    }
}

impl Bits for f64 {
    fn from_bits(bits: u64) -> Self {
        f64::from_bits(bits)
    }
    fn to_bits(self) -> u64 {
        f64::to_bits(self)
    }
}

/// Dispatch to every generated typed accessor of the four families.
macro_rules! accessors {
    ($($p:ident, $le:literal, $t:ty, $ow:ident, $ir:ident, $bw:ident, $rr:ident;)*) => {
        fn view_write(v: memseg_output_view, p: Prim, le: bool, bits: u64) -> memseg_status {
            match (p, le) {
                $((Prim::$p, $le) => $ow(v, <$t as Bits>::from_bits(bits)),)*
            }
        }

        fn view_read(v: memseg_input_view, p: Prim, le: bool) -> (memseg_status, u64) {
            match (p, le) {
                $((Prim::$p, $le) => {
                    let mut out = <$t>::default();
                    // SAFETY: `out` is a writable out parameter.
                    let status = unsafe { $ir(v, &mut out) };
                    (status, Bits::to_bits(out))
                })*
            }
        }

        fn buffer_write(b: memseg_serialization_buffer, p: Prim, le: bool, bits: u64) -> memseg_status {
            match (p, le) {
                $((Prim::$p, $le) => $bw(b, <$t as Bits>::from_bits(bits)),)*
            }
        }

        fn reader_read(r: memseg_serialization_reader, p: Prim, le: bool) -> (memseg_status, u64) {
            match (p, le) {
                $((Prim::$p, $le) => {
                    let mut out = <$t>::default();
                    // SAFETY: `out` is a writable out parameter.
                    let status = unsafe { $rr(r, &mut out) };
                    (status, Bits::to_bits(out))
                })*
            }
        }
    };
}

accessors! {
    U8, false, u8, memseg_output_view_write_u8, memseg_input_view_read_u8, memseg_serialization_buffer_write_u8, memseg_serialization_reader_read_u8;
    U8, true, u8, memseg_output_view_write_u8_le, memseg_input_view_read_u8_le, memseg_serialization_buffer_write_u8_le, memseg_serialization_reader_read_u8_le;
    I8, false, i8, memseg_output_view_write_i8, memseg_input_view_read_i8, memseg_serialization_buffer_write_i8, memseg_serialization_reader_read_i8;
    I8, true, i8, memseg_output_view_write_i8_le, memseg_input_view_read_i8_le, memseg_serialization_buffer_write_i8_le, memseg_serialization_reader_read_i8_le;
    Bool, false, bool, memseg_output_view_write_bool, memseg_input_view_read_bool, memseg_serialization_buffer_write_bool, memseg_serialization_reader_read_bool;
    Bool, true, bool, memseg_output_view_write_bool_le, memseg_input_view_read_bool_le, memseg_serialization_buffer_write_bool_le, memseg_serialization_reader_read_bool_le;
    U16, false, u16, memseg_output_view_write_u16, memseg_input_view_read_u16, memseg_serialization_buffer_write_u16, memseg_serialization_reader_read_u16;
    U16, true, u16, memseg_output_view_write_u16_le, memseg_input_view_read_u16_le, memseg_serialization_buffer_write_u16_le, memseg_serialization_reader_read_u16_le;
    I16, false, i16, memseg_output_view_write_i16, memseg_input_view_read_i16, memseg_serialization_buffer_write_i16, memseg_serialization_reader_read_i16;
    I16, true, i16, memseg_output_view_write_i16_le, memseg_input_view_read_i16_le, memseg_serialization_buffer_write_i16_le, memseg_serialization_reader_read_i16_le;
    Char, false, u16, memseg_output_view_write_char, memseg_input_view_read_char, memseg_serialization_buffer_write_char, memseg_serialization_reader_read_char;
    Char, true, u16, memseg_output_view_write_char_le, memseg_input_view_read_char_le, memseg_serialization_buffer_write_char_le, memseg_serialization_reader_read_char_le;
    U32, false, u32, memseg_output_view_write_u32, memseg_input_view_read_u32, memseg_serialization_buffer_write_u32, memseg_serialization_reader_read_u32;
    U32, true, u32, memseg_output_view_write_u32_le, memseg_input_view_read_u32_le, memseg_serialization_buffer_write_u32_le, memseg_serialization_reader_read_u32_le;
    I32, false, i32, memseg_output_view_write_i32, memseg_input_view_read_i32, memseg_serialization_buffer_write_i32, memseg_serialization_reader_read_i32;
    I32, true, i32, memseg_output_view_write_i32_le, memseg_input_view_read_i32_le, memseg_serialization_buffer_write_i32_le, memseg_serialization_reader_read_i32_le;
    U64, false, u64, memseg_output_view_write_u64, memseg_input_view_read_u64, memseg_serialization_buffer_write_u64, memseg_serialization_reader_read_u64;
    U64, true, u64, memseg_output_view_write_u64_le, memseg_input_view_read_u64_le, memseg_serialization_buffer_write_u64_le, memseg_serialization_reader_read_u64_le;
    I64, false, i64, memseg_output_view_write_i64, memseg_input_view_read_i64, memseg_serialization_buffer_write_i64, memseg_serialization_reader_read_i64;
    I64, true, i64, memseg_output_view_write_i64_le, memseg_input_view_read_i64_le, memseg_serialization_buffer_write_i64_le, memseg_serialization_reader_read_i64_le;
    F32, false, f32, memseg_output_view_write_f32, memseg_input_view_read_f32, memseg_serialization_buffer_write_f32, memseg_serialization_reader_read_f32;
    F32, true, f32, memseg_output_view_write_f32_le, memseg_input_view_read_f32_le, memseg_serialization_buffer_write_f32_le, memseg_serialization_reader_read_f32_le;
    F64, false, f64, memseg_output_view_write_f64, memseg_input_view_read_f64, memseg_serialization_buffer_write_f64, memseg_serialization_reader_read_f64;
    F64, true, f64, memseg_output_view_write_f64_le, memseg_input_view_read_f64_le, memseg_serialization_buffer_write_f64_le, memseg_serialization_reader_read_f64_le;
}

fn is_le(order: ByteOrder) -> bool {
    order == ByteOrder::Little
}

/// Writes an op through the output view (or the buffer): the same calls a C host makes.
fn write_view(v: memseg_output_view, op: &Op) -> memseg_status {
    match op {
        Op::Prim(p, o, bits) => view_write(v, *p, is_le(*o), *bits),
        // SAFETY: valid buffers of the given lengths.
        Op::Bytes(b) => unsafe { memseg_output_view_write_bytes(v, b.as_ptr(), b.len()) },
        // SAFETY: as above.
        Op::Utf(s) => unsafe {
            memseg_output_view_write_utf(v, s.as_ptr().cast::<c_char>(), s.len())
        },
        Op::Skip(n) => memseg_output_view_skip(v, *n),
    }
}

fn write_buffer(b: memseg_serialization_buffer, op: &Op) -> memseg_status {
    match op {
        Op::Prim(p, o, bits) => buffer_write(b, *p, is_le(*o), *bits),
        // SAFETY: valid buffers of the given lengths.
        Op::Bytes(x) => unsafe { memseg_serialization_buffer_write_bytes(b, x.as_ptr(), x.len()) },
        // SAFETY: as above.
        Op::Utf(s) => unsafe {
            memseg_serialization_buffer_write_utf(b, s.as_ptr().cast::<c_char>(), s.len())
        },
        Op::Skip(n) => memseg_serialization_buffer_skip(b, *n),
    }
}

fn check_view(v: memseg_input_view, op: &Op) -> Result<(), TestCaseError> {
    match op {
        Op::Prim(p, o, bits) => {
            prop_assert_eq!(view_read(v, *p, is_le(*o)), (memseg_status::Ok, *bits))
        }
        Op::Bytes(b) => {
            let mut got = vec![0u8; b.len()];
            // SAFETY: `got` is writable for its length.
            let status = unsafe { memseg_input_view_read_bytes(v, got.as_mut_ptr(), got.len()) };
            prop_assert_eq!(status, memseg_status::Ok);
            prop_assert_eq!(&got, b);
        }
        Op::Utf(s) => {
            let mut buf = [0u8; 64];
            let mut len = 0;
            // SAFETY: `buf` is writable for its length; `len` is writable.
            let status = unsafe {
                memseg_input_view_read_utf(
                    v,
                    buf.as_mut_ptr().cast::<c_char>(),
                    buf.len(),
                    &mut len,
                )
            };
            prop_assert_eq!(status, memseg_status::Ok);
            prop_assert_eq!(&buf[..len], s.as_bytes());
        }
        Op::Skip(n) => prop_assert_eq!(memseg_input_view_skip(v, *n), memseg_status::Ok),
    }
    Ok(())
}

fn check_reader(r: memseg_serialization_reader, op: &Op) -> Result<(), TestCaseError> {
    match op {
        Op::Prim(p, o, bits) => {
            prop_assert_eq!(reader_read(r, *p, is_le(*o)), (memseg_status::Ok, *bits))
        }
        Op::Bytes(b) => {
            let mut got = vec![0u8; b.len()];
            // SAFETY: `got` is writable for its length.
            let status =
                unsafe { memseg_serialization_reader_read_bytes(r, got.as_mut_ptr(), got.len()) };
            prop_assert_eq!(status, memseg_status::Ok);
            prop_assert_eq!(&got, b);
        }
        Op::Utf(s) => {
            let mut units = [0u16; 64];
            let mut len = 0;
            // SAFETY: `units` is writable for its length; `len` is writable.
            let status = unsafe {
                memseg_serialization_reader_read_utf16(r, units.as_mut_ptr(), units.len(), &mut len)
            };
            prop_assert_eq!(status, memseg_status::Ok);
            prop_assert_eq!(
                units[..len].to_vec(),
                s.encode_utf16().collect::<Vec<u16>>()
            );
        }
        Op::Skip(n) => prop_assert_eq!(memseg_serialization_reader_skip(r, *n), memseg_status::Ok),
    }
    Ok(())
}

/// Longest operation sequence: short under Miri, which interprets every instruction.
const MAX_OPS: usize = if cfg!(miri) { 8 } else { 40 };

proptest! {
    #![proptest_config(config())]

    #[test]
    fn every_accessor_round_trips_through_the_c_abi(
        ops in proptest::collection::vec(op(), 0..MAX_OPS),
        sizes in proptest::collection::vec(1..20usize, 1..5),
    ) {
        let total: usize = ops.iter().map(len_of).sum();
        let mut segs = Vec::new();
        let mut capacity = 0;
        for &size in sizes.iter().cycle() {
            if capacity >= total.max(1) {
                break;
            }
            segs.push(heap(size));
            capacity += size;
        }
        let mut out = memseg_output_view::default();
        // SAFETY: a valid list and out parameter.
        prop_assert_eq!(unsafe { memseg_output_view_new(segs.as_ptr(), segs.len(), &mut out) }, memseg_status::Ok);
        let mut buffer = memseg_serialization_buffer::default();
        // SAFETY: a writable out parameter.
        prop_assert_eq!(unsafe { memseg_serialization_buffer_new(3, &mut buffer) }, memseg_status::Ok);
        for op in &ops {
            prop_assert_eq!(write_view(out, op), memseg_status::Ok, "{:?}: {}", op, last_error_message());
            prop_assert_eq!(write_buffer(buffer, op), memseg_status::Ok);
        }
        // The bytes the model expects, where they are not skipped.
        let (mut segment, mut fill) = (0, 0);
        // SAFETY: writable out parameters.
        prop_assert_eq!(unsafe { memseg_output_view_position(out, &mut segment, &mut fill) }, memseg_status::Ok);
        let mut count = 0;
        // SAFETY: NULL with capacity 0 asks for the count.
        prop_assert_eq!(unsafe { memseg_output_view_segments(out, std::ptr::null_mut(), 0, &mut count) }, memseg_status::Ok);
        let used = if total == 0 { 0 } else { segment + 1 };
        prop_assert_eq!(count, used);
        let (mut ptr, mut len) = (std::ptr::null(), 0);
        // SAFETY: writable out parameters.
        prop_assert_eq!(unsafe { memseg_serialization_buffer_bytes(buffer, &mut ptr, &mut len) }, memseg_status::Ok);
        prop_assert_eq!(len, total);
        // SAFETY: the buffer lends `len` bytes until its next change.
        let bytes = unsafe { std::slice::from_raw_parts(ptr, len) }.to_vec();
        let mut at = 0;
        for op in &ops {
            if let Op::Prim(p, o, bits) = op {
                prop_assert_eq!(&bytes[at..at + p.width()], &encode(*p, *o, *bits)[..]);
            }
            at += len_of(op);
        }

        let mut input = memseg_input_view::default();
        // SAFETY: a valid list and out parameter.
        prop_assert_eq!(unsafe { memseg_input_view_new(segs.as_ptr(), used, if used == 0 { 0 } else { fill }, &mut input) }, memseg_status::Ok);
        let mut reader = memseg_serialization_reader::default();
        // SAFETY: `bytes` is readable for its length.
        prop_assert_eq!(unsafe { memseg_serialization_reader_new(bytes.as_ptr(), bytes.len(), &mut reader) }, memseg_status::Ok);
        for op in &ops {
            check_view(input, op)?;
            check_reader(reader, op)?;
        }
        let mut v = 0u8;
        // SAFETY: `v` is writable.
        prop_assert_eq!(unsafe { memseg_input_view_read_u8(input, &mut v) }, memseg_status::EndOfData);
        // SAFETY: as above.
        prop_assert_eq!(unsafe { memseg_serialization_reader_read_u8(reader, &mut v) }, memseg_status::EndOfData);

        prop_assert_eq!(memseg_input_view_free(input), memseg_status::Ok);
        prop_assert_eq!(memseg_output_view_free(out), memseg_status::Ok);
        prop_assert_eq!(memseg_serialization_buffer_free(buffer), memseg_status::Ok);
        prop_assert_eq!(memseg_serialization_reader_free(reader), memseg_status::Ok);
        for s in segs {
            prop_assert_eq!(memseg_segment_free(s), memseg_status::Ok);
        }
    }
}

#[test]
fn messages_name_the_freed_segment_and_the_wrong_handle() {
    let segs = [heap(4), heap(4)];
    let mut out = memseg_output_view::default();
    // SAFETY: a valid list and out parameter.
    assert_eq!(
        unsafe { memseg_output_view_new(segs.as_ptr(), 2, &mut out) },
        memseg_status::Ok
    );
    assert_eq!(memseg_output_view_write_u32(out, 1), memseg_status::Ok);
    assert_eq!(memseg_output_view_write_u8(out, 2), memseg_status::Ok);
    // A string beyond the 2-byte length: refused, nothing written.
    let long = "x".repeat(65536);
    let mut written = 0;
    // SAFETY: writable out parameter.
    assert_eq!(
        unsafe { memseg_output_view_bytes_written(out, &mut written) },
        memseg_status::Ok
    );
    // SAFETY: `long` is readable for its length.
    let status =
        unsafe { memseg_output_view_write_utf(out, long.as_ptr().cast::<c_char>(), long.len()) };
    assert_eq!(status, memseg_status::InvalidArgument);
    assert!(
        last_error_message().contains("65536"),
        "{}",
        last_error_message()
    );
    let mut after = 0;
    // SAFETY: writable out parameter.
    assert_eq!(
        unsafe { memseg_output_view_bytes_written(out, &mut after) },
        memseg_status::Ok
    );
    assert_eq!(after, written);

    assert_eq!(memseg_segment_free(segs[1]), memseg_status::Ok);
    assert_eq!(
        memseg_output_view_write_u8(out, 3),
        memseg_status::StaleHandle
    );
    let message = last_error_message();
    assert!(
        message.contains("segment 1 of the output view"),
        "{message}"
    );
    assert!(message.contains("must stay alive"), "{message}");

    let as_input = memseg_input_view { bits: out.bits };
    let mut v = 0u8;
    // SAFETY: `v` is writable.
    assert_eq!(
        unsafe { memseg_input_view_read_u8(as_input, &mut v) },
        memseg_status::WrongHandleKind
    );
    let message = last_error_message();
    assert!(
        message.contains("output view") && message.contains("input view"),
        "{message}"
    );

    assert_eq!(memseg_output_view_free(out), memseg_status::Ok);
    assert_eq!(memseg_segment_free(segs[0]), memseg_status::Ok);

    let mut de = memseg_record_deserializer::default();
    // SAFETY: a writable out parameter.
    assert_eq!(
        unsafe { memseg_record_deserializer_new(16, &mut de) },
        memseg_status::Ok
    );
    let seg = heap(8);
    assert_eq!(
        memseg_segment_put_u32_be(seg, 0, 1 << 20),
        memseg_status::Ok
    );
    assert_eq!(
        memseg_record_deserializer_set_next_buffer(de, seg, 0, 8),
        memseg_status::Ok
    );
    let (mut ptr, mut len) = (std::ptr::null(), 0);
    // SAFETY: writable out parameters.
    let status = unsafe { memseg_record_deserializer_next_record(de, &mut ptr, &mut len) };
    assert_eq!(status, memseg_status::Corrupted);
    assert!(
        last_error_message().contains("1048576") && last_error_message().contains("bound of 16")
    );
    assert!(ptr.is_null() && len == 0, "out parameters untouched");
    assert_eq!(memseg_record_deserializer_free(de), memseg_status::Ok);
    assert_eq!(memseg_segment_free(seg), memseg_status::Ok);
}

/// Two threads writing into one view: the view's lock serializes them, so every value lands
/// whole (no torn or lost writes) and the count is exact.
#[test]
#[cfg_attr(miri, ignore)] // slow under Miri; the lock is std's
fn concurrent_writers_on_one_view_lose_nothing() {
    let segs: Vec<memseg_segment> = (0..4).map(|_| heap(4001)).collect();
    let mut out = memseg_output_view::default();
    // SAFETY: a valid list and out parameter.
    assert_eq!(
        unsafe { memseg_output_view_new(segs.as_ptr(), segs.len(), &mut out) },
        memseg_status::Ok
    );
    std::thread::scope(|s| {
        for t in 0..2u32 {
            s.spawn(move || {
                for i in 0..1000u32 {
                    assert_eq!(
                        memseg_output_view_write_u32(out, t << 16 | i),
                        memseg_status::Ok
                    );
                }
            });
        }
    });
    let (mut segment, mut fill, mut written) = (0, 0, 0);
    // SAFETY: writable out parameters.
    unsafe {
        assert_eq!(
            memseg_output_view_position(out, &mut segment, &mut fill),
            memseg_status::Ok
        );
        assert_eq!(
            memseg_output_view_bytes_written(out, &mut written),
            memseg_status::Ok
        );
    }
    assert_eq!(written, 8000);
    let mut input = memseg_input_view::default();
    // SAFETY: a valid list and out parameter.
    assert_eq!(
        unsafe { memseg_input_view_new(segs.as_ptr(), segment + 1, fill, &mut input) },
        memseg_status::Ok
    );
    let mut seen = vec![0u8; 2000];
    for _ in 0..2000 {
        let mut v = 0u32;
        // SAFETY: `v` is writable.
        assert_eq!(
            unsafe { memseg_input_view_read_u32(input, &mut v) },
            memseg_status::Ok
        );
        let (t, i) = ((v >> 16) as usize, (v & 0xFFFF) as usize);
        assert!(t < 2 && i < 1000, "a torn value {v:#x}");
        seen[t * 1000 + i] += 1;
    }
    assert!(seen.iter().all(|&n| n == 1));
    assert_eq!(memseg_input_view_free(input), memseg_status::Ok);
    assert_eq!(memseg_output_view_free(out), memseg_status::Ok);
    for s in segs {
        assert_eq!(memseg_segment_free(s), memseg_status::Ok);
    }
}
