//! Property tests of the safe segment API against a `Vec<u8>` model: random sequences of
//! typed and bulk operations on two segments (heap, off-heap, foreign), including
//! out-of-bounds ones, which must fail with `Error::OutOfBounds` and change nothing.

mod common;

use std::ptr::NonNull;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use common::{Done, Fail, Kind, Model, Op, Prim, Spec};
use memseg::{ByteOrder, Error, OffHeapOptions, Segment, SegmentKind};
use proptest::prelude::*;

/// Wraps a copy of `initial` as a foreign segment whose release callback frees the copy and
/// counts the call.
fn foreign(initial: &[u8], releases: &Arc<AtomicUsize>) -> Segment {
    let size = initial.len();
    let memory: Box<[u8]> = initial.into();
    let ptr = NonNull::new(Box::into_raw(memory).cast::<u8>()).unwrap();
    let releases = Arc::clone(releases);
    let address = ptr.as_ptr() as usize;
    let release: memseg::segment::ReleaseFn = Box::new(move |p: *mut u8, n: usize| {
        assert_eq!(
            (p as usize, n),
            (address, size),
            "release gets the wrapped memory back"
        );
        // SAFETY: `p` and `n` are the boxed slice leaked above, handed back once.
        drop(unsafe { Box::from_raw(std::ptr::slice_from_raw_parts_mut(p, n)) });
        releases.fetch_add(1, Ordering::SeqCst);
    });
    // SAFETY: the leaked box is valid for `size` bytes until the release callback frees it,
    // and nothing but the segment uses it.
    unsafe { Segment::wrap_foreign(ptr, size, Some(release)) }.unwrap()
}

fn make(spec: &Spec, releases: &Arc<AtomicUsize>) -> Segment {
    let size = spec.initial.len();
    let segment = match spec.kind {
        Kind::Heap => Segment::allocate_heap(size).unwrap(),
        Kind::OffHeap => Segment::allocate_off_heap(size, OffHeapOptions::default()).unwrap(),
        Kind::Foreign => foreign(&spec.initial, releases),
    };
    let kind = match spec.kind {
        Kind::Heap => SegmentKind::Heap,
        Kind::OffHeap => SegmentKind::OffHeap,
        Kind::Foreign => SegmentKind::Foreign,
    };
    assert_eq!(segment.kind(), kind);
    assert_eq!(segment.size(), size);
    segment
}

fn fail(e: Error) -> Fail {
    match e {
        Error::OutOfBounds { offset, len, size } => Fail::OutOfBounds { offset, len, size },
        Error::InvalidArgument(_) => Fail::InvalidArgument,
        other => panic!("unexpected error {other:?}"),
    }
}

fn put(
    seg: &mut Segment,
    prim: Prim,
    order: ByteOrder,
    offset: usize,
    bits: u64,
) -> Result<(), Error> {
    match prim {
        Prim::U8 => seg.put(offset, bits as u8, order),
        Prim::I8 => seg.put(offset, bits as u8 as i8, order),
        Prim::Bool => seg.put(offset, bits & 1 != 0, order),
        Prim::U16 | Prim::Char => seg.put(offset, bits as u16, order),
        Prim::I16 => seg.put(offset, bits as u16 as i16, order),
        Prim::U32 => seg.put(offset, bits as u32, order),
        Prim::I32 => seg.put(offset, bits as u32 as i32, order),
        Prim::U64 => seg.put(offset, bits, order),
        Prim::I64 => seg.put(offset, bits as i64, order),
        Prim::F32 => seg.put(offset, f32::from_bits(bits as u32), order),
        Prim::F64 => seg.put(offset, f64::from_bits(bits), order),
    }
}

fn get(seg: &Segment, prim: Prim, order: ByteOrder, offset: usize) -> Result<u64, Error> {
    Ok(match prim {
        Prim::U8 => u64::from(seg.get::<u8>(offset, order)?),
        Prim::I8 => u64::from(seg.get::<i8>(offset, order)? as u8),
        Prim::Bool => u64::from(seg.get::<bool>(offset, order)?),
        Prim::U16 | Prim::Char => u64::from(seg.get::<u16>(offset, order)?),
        Prim::I16 => u64::from(seg.get::<i16>(offset, order)? as u16),
        Prim::U32 => u64::from(seg.get::<u32>(offset, order)?),
        Prim::I32 => u64::from(seg.get::<i32>(offset, order)? as u32),
        Prim::U64 => seg.get::<u64>(offset, order)?,
        Prim::I64 => seg.get::<i64>(offset, order)? as u64,
        Prim::F32 => u64::from(seg.get::<f32>(offset, order)?.to_bits()),
        Prim::F64 => seg.get::<f64>(offset, order)?.to_bits(),
    })
}

/// Runs `op` on the segments and reports what happened in the model's terms.
fn run(segs: &mut [Segment; 2], op: &Op) -> Result<Done, Fail> {
    let unit = |r: Result<(), Error>| r.map(|()| Done::Unit).map_err(fail);
    match *op {
        Op::Put {
            seg,
            prim,
            order,
            offset,
            bits,
        } => unit(put(&mut segs[seg], prim, order, offset, bits)),
        Op::Get {
            seg,
            prim,
            order,
            offset,
        } => get(&segs[seg], prim, order, offset)
            .map(Done::Bits)
            .map_err(fail),
        Op::GetBytes { seg, offset, len } => {
            // A huge length cannot be a buffer: ask for a short one, whose error then names
            // its own length; the model is asked the same question below.
            let mut buf = vec![0xA5; len];
            segs[seg]
                .get_bytes(offset, &mut buf)
                .map(|()| Done::Bytes(buf))
                .map_err(fail)
        }
        Op::PutBytes {
            seg,
            offset,
            ref data,
        } => unit(segs[seg].put_bytes(offset, data)),
        Op::CopyWithin { seg, src, dst, len } => unit(segs[seg].copy_within(src, dst, len)),
        Op::CopyTo {
            from,
            src,
            dst,
            len,
        } => {
            let [s0, s1] = segs;
            let (s, d) = if from == 0 { (s0, s1) } else { (s1, s0) };
            unit(s.copy_to(src, d, dst, len))
        }
        Op::Compare {
            a,
            a_off,
            b,
            b_off,
            len,
        } => segs[a]
            .compare(a_off, &segs[b], b_off, len)
            .map(Done::Order)
            .map_err(fail),
        Op::Equal {
            a,
            a_off,
            b,
            b_off,
            len,
        } => segs[a]
            .equal(a_off, &segs[b], b_off, len)
            .map(Done::Equal)
            .map_err(fail),
        Op::Swap { a_off, b_off, len } => {
            let [s0, s1] = segs;
            unit(s0.swap_with(a_off, s1, b_off, len))
        }
        Op::SwapWithin {
            seg,
            a_off,
            b_off,
            len,
        } => {
            // Two `&mut` of one segment cannot exist; the region does it, with its check
            // against partly overlapping ranges.
            let region = segs[seg].region();
            unit(region.swap(a_off, &region, b_off, len))
        }
        Op::Fill {
            seg,
            offset,
            len,
            value,
        } => unit(segs[seg].fill(offset, len, value)),
        Op::Raw { seg, offset, value } => {
            let bytes = segs[seg].as_mut_slice();
            let at = offset % bytes.len();
            bytes[at] = value;
            Ok(Done::Unit)
        }
    }
}

/// Keeps huge `GetBytes` lengths from allocating: they are out of bounds anyway, so they
/// are replaced by a length just past the end, which must fail the same way.
fn feasible(op: &Op, sizes: [usize; 2]) -> Op {
    match *op {
        Op::GetBytes { seg, offset, len } if len > common::MAX_SIZE + 8 => Op::GetBytes {
            seg,
            offset,
            len: sizes[seg] + 1,
        },
        ref other => other.clone(),
    }
}

fn check_sequence(specs: [Spec; 2], ops: Vec<Op>) -> Result<(), TestCaseError> {
    let releases = Arc::new(AtomicUsize::new(0));
    let mut segs = [make(&specs[0], &releases), make(&specs[1], &releases)];
    let mut model = Model {
        mem: [specs[0].expected_initial(), specs[1].expected_initial()],
    };
    prop_assert_eq!(segs[0].as_slice(), &model.mem[0][..], "initial contents");
    prop_assert_eq!(segs[1].as_slice(), &model.mem[1][..], "initial contents");
    let sizes = [segs[0].size(), segs[1].size()];
    for (step, op) in ops.iter().enumerate() {
        let op = feasible(op, sizes);
        let expected = model.apply(&op);
        let actual = run(&mut segs, &op);
        prop_assert_eq!(&actual, &expected, "step {}: {:?}", step, op);
        prop_assert_eq!(
            segs[0].as_slice(),
            &model.mem[0][..],
            "step {}: {:?}",
            step,
            op
        );
        prop_assert_eq!(
            segs[1].as_slice(),
            &model.mem[1][..],
            "step {}: {:?}",
            step,
            op
        );
    }
    let foreign = specs.iter().filter(|s| s.kind == Kind::Foreign).count();
    prop_assert_eq!(releases.load(Ordering::SeqCst), 0, "no release while alive");
    drop(segs);
    prop_assert_eq!(
        releases.load(Ordering::SeqCst),
        foreign,
        "one release per foreign segment"
    );
    Ok(())
}

proptest! {
    #![proptest_config(common::config())]

    #[test]
    fn op_sequences_match_the_model(a in common::spec(), b in common::spec(), ops in common::ops()) {
        check_sequence([a, b], ops)?;
    }

    #[test]
    fn every_typed_access_past_the_end_fails_and_changes_nothing(
        spec in common::spec(),
        prim in common::prim(),
        order in common::order(),
        bits in common::bits(),
        back in 0usize..8,
    ) {
        let releases = Arc::new(AtomicUsize::new(0));
        let mut seg = make(&spec, &releases);
        let size = seg.size();
        let before = seg.as_slice().to_vec();
        let width = prim.width();
        // Every offset whose access would end past the segment: the last few, and those
        // where `offset + width` overflows.
        for offset in [(size + 1).saturating_sub(width) + back, size + back, usize::MAX - back] {
            let oob = Fail::OutOfBounds { offset, len: width, size };
            prop_assert_eq!(put(&mut seg, prim, order, offset, bits).map_err(fail), Err(oob.clone()));
            prop_assert_eq!(get(&seg, prim, order, offset).map_err(fail), Err(oob));
            prop_assert_eq!(seg.as_slice(), &before[..]);
        }
    }
}

/// Writes `value` in big-endian order and reads it back in little-endian order (and the
/// reverse), and checks native against the machine's order.
macro_rules! order_props {
    ($($name:ident: $t:ty => $swap:expr, $bits:expr;)*) => {
        proptest! {
            #![proptest_config(common::config())]
            $(
                #[test]
                fn $name(value in any::<$t>(), offset in 0usize..16, kind in common::kind()) {
                    let releases = Arc::new(AtomicUsize::new(0));
                    let spec = Spec { kind, initial: vec![0x5A; 24] };
                    let mut seg = make(&spec, &releases);
                    let swap: fn($t) -> $t = $swap;
                    let bits: fn($t) -> u64 = $bits;

                    seg.put(offset, value, ByteOrder::Big).unwrap();
                    let le: $t = seg.get(offset, ByteOrder::Little).unwrap();
                    prop_assert_eq!(bits(le), bits(swap(value)), "BE written, LE read");
                    let be: $t = seg.get(offset, ByteOrder::Big).unwrap();
                    prop_assert_eq!(bits(be), bits(value), "BE round trip keeps the bits");

                    seg.put(offset, value, ByteOrder::Little).unwrap();
                    let be: $t = seg.get(offset, ByteOrder::Big).unwrap();
                    prop_assert_eq!(bits(be), bits(swap(value)), "LE written, BE read");

                    seg.put(offset, value, ByteOrder::Native).unwrap();
                    let machine = if cfg!(target_endian = "little") {
                        ByteOrder::Little
                    } else {
                        ByteOrder::Big
                    };
                    let read: $t = seg.get(offset, machine).unwrap();
                    prop_assert_eq!(bits(read), bits(value), "native is the machine's order");
                    let mut raw = [0u8; std::mem::size_of::<$t>()];
                    seg.get_bytes(offset, &mut raw).unwrap();
                    prop_assert_eq!(raw, value.to_ne_bytes(), "native bytes");
                }
            )*
        }
    };
}

order_props! {
    big_endian_u8_reads_back_unchanged_in_little_endian: u8 => |v| v, u64::from;
    big_endian_i8_reads_back_unchanged_in_little_endian: i8 => |v| v, |v| u64::from(v as u8);
    big_endian_u16_reads_back_byte_reversed_in_little_endian: u16 => u16::swap_bytes, u64::from;
    big_endian_i16_reads_back_byte_reversed_in_little_endian: i16 => i16::swap_bytes, |v| u64::from(v as u16);
    big_endian_u32_reads_back_byte_reversed_in_little_endian: u32 => u32::swap_bytes, u64::from;
    big_endian_i32_reads_back_byte_reversed_in_little_endian: i32 => i32::swap_bytes, |v| u64::from(v as u32);
    big_endian_u64_reads_back_byte_reversed_in_little_endian: u64 => u64::swap_bytes, |v| v;
    big_endian_i64_reads_back_byte_reversed_in_little_endian: i64 => i64::swap_bytes, |v| v as u64;
    big_endian_f32_reads_back_byte_reversed_in_little_endian:
        f32 => |v| f32::from_bits(v.to_bits().swap_bytes()), |v| u64::from(v.to_bits());
    big_endian_f64_reads_back_byte_reversed_in_little_endian:
        f64 => |v| f64::from_bits(v.to_bits().swap_bytes()), f64::to_bits;
}

proptest! {
    #![proptest_config(common::config())]

    /// `bool` has one byte and no byte order: `true` is stored as 1, and any non-zero byte
    /// reads as `true` in every order.
    #[test]
    fn bool_is_one_byte_in_every_order(value: bool, byte: u8, offset in 0usize..16, order in common::order()) {
        let releases = Arc::new(AtomicUsize::new(0));
        let mut seg = make(&Spec { kind: Kind::Heap, initial: vec![0; 16] }, &releases);
        seg.put(offset, value, order).unwrap();
        prop_assert_eq!(seg.as_slice()[offset], u8::from(value));
        seg.put(offset, byte, order).unwrap();
        for read in common::ALL_ORDERS {
            prop_assert_eq!(seg.get::<bool>(offset, read).unwrap(), byte != 0);
        }
    }

    /// NaN payloads and signalling NaNs survive a round trip in every order (floats are
    /// moved as bits, never through a float register operation that could quiet them).
    #[test]
    fn float_bits_survive_every_order(bits in common::bits(), order in common::order(), offset in 0usize..8) {
        let releases = Arc::new(AtomicUsize::new(0));
        let mut seg = make(&Spec { kind: Kind::Heap, initial: vec![0; 16] }, &releases);
        seg.put(offset, f64::from_bits(bits), order).unwrap();
        prop_assert_eq!(seg.get::<f64>(offset, order).unwrap().to_bits(), bits);
        seg.put(offset, f32::from_bits(bits as u32), order).unwrap();
        prop_assert_eq!(seg.get::<f32>(offset, order).unwrap().to_bits(), bits as u32);
    }
}

#[test]
fn a_nan_payload_example_is_kept_in_big_endian() {
    let mut seg = Segment::allocate_heap(8).unwrap();
    let snan = f64::from_bits(0x7ff0_0000_0000_0001);
    seg.put(0, snan, ByteOrder::Big).unwrap();
    assert_eq!(seg.as_slice(), &[0x7f, 0xf0, 0, 0, 0, 0, 0, 1]);
    assert_eq!(
        seg.get::<f64>(0, ByteOrder::Big).unwrap().to_bits(),
        0x7ff0_0000_0000_0001
    );
    assert_eq!(
        seg.get::<u64>(0, ByteOrder::Little).unwrap(),
        0x0100_0000_0000_f07f
    );
}

#[test]
fn new_segments_are_zeroed_and_report_their_kind() {
    let heap = Segment::allocate_heap(4096).unwrap();
    assert_eq!(heap.kind(), SegmentKind::Heap);
    assert!(heap.as_slice().iter().all(|&b| b == 0));
    assert_eq!(
        heap.as_ptr() as usize % 64,
        0,
        "heap segments are cache-line aligned"
    );
    let text = format!("{heap:?}");
    assert!(text.contains("Heap") && text.contains("4096"), "{text}");
}

#[test]
fn off_heap_segments_are_zeroed_page_aligned_with_every_option() {
    // Miri emulates plain anonymous mappings, but neither `MAP_POPULATE` nor `madvise`.
    let options: &[(bool, bool)] = if cfg!(miri) {
        &[(false, false)]
    } else {
        &[(false, false), (false, true), (true, false), (true, true)]
    };
    for &(huge_pages, prefault) in options {
        let options = OffHeapOptions {
            huge_pages,
            prefault,
        };
        let mut seg = Segment::allocate_off_heap(3 * 4096 + 5, options).unwrap();
        assert_eq!(seg.kind(), SegmentKind::OffHeap);
        assert_eq!(seg.size(), 3 * 4096 + 5);
        assert_eq!(seg.as_ptr() as usize % 4096, 0, "page aligned");
        assert!(seg.as_slice().iter().all(|&b| b == 0));
        seg.put(3 * 4096 + 4, 0xEEu8, ByteOrder::Native).unwrap();
        assert_eq!(seg.as_slice()[3 * 4096 + 4], 0xEE);
    }
}

#[test]
fn bad_sizes_are_invalid_arguments() {
    for size in [0, usize::MAX, isize::MAX as usize + 1] {
        assert!(
            matches!(Segment::allocate_heap(size), Err(Error::InvalidArgument(_))),
            "{size}"
        );
        assert!(
            matches!(
                Segment::allocate_off_heap(size, OffHeapOptions::default()),
                Err(Error::InvalidArgument(_))
            ),
            "{size}"
        );
    }
}

#[test]
#[cfg_attr(miri, ignore = "Miri cannot model a failing allocation of 2^50 bytes")]
fn a_huge_representable_size_is_an_allocation_failure() {
    let size = 1usize << 50;
    match Segment::allocate_heap(size) {
        Err(Error::AllocationFailed { size: s, .. }) => assert_eq!(s, size),
        other => panic!("heap: {other:?}"),
    }
    match Segment::allocate_off_heap(size, OffHeapOptions::default()) {
        Err(Error::AllocationFailed { size: s, reason }) => {
            assert_eq!(s, size);
            assert!(reason.contains("mmap"), "{reason}");
        }
        other => panic!("off-heap: {other:?}"),
    }
}

#[test]
fn a_failed_wrap_never_calls_release() {
    let releases = Arc::new(AtomicUsize::new(0));
    let mut memory = [0u8; 4];
    for size in [0, isize::MAX as usize + 1, usize::MAX] {
        let counter = Arc::clone(&releases);
        let release: memseg::segment::ReleaseFn = Box::new(move |_, _| {
            counter.fetch_add(1, Ordering::SeqCst);
        });
        let ptr = NonNull::new(memory.as_mut_ptr()).unwrap();
        // SAFETY: the wrap fails on its size before it could use the memory.
        let result = unsafe { Segment::wrap_foreign(ptr, size, Some(release)) };
        assert!(
            matches!(result, Err(Error::InvalidArgument(_))),
            "{size}: {result:?}"
        );
    }
    assert_eq!(releases.load(Ordering::SeqCst), 0);
    assert_eq!(memory, [0; 4]);
}
