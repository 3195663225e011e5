//! Property tests of the view layer: random sequences of writes through an output view over
//! segments of random sizes (tiny ones included, so most values straddle a boundary) read
//! back exactly through an input view, in order and by seeking to recorded positions; the
//! same through the serialization buffer and reader; and records split over buffers of random
//! sizes coming back whole.

mod common;

use common::{ALL_ORDERS, ALL_PRIMS, Prim, config, encode};
use memseg::view::{
    DataInput, DataOutput, FixedSource, InputView, OutputView, RecordDeserializer,
    RecordSerializer, SegmentTarget, SerializationBuffer, SerializationReader, utf,
};
use memseg::{ByteOrder, Error, Segment};
use proptest::prelude::*;

#[derive(Debug, Clone)]
enum Op {
    Prim(Prim, ByteOrder, u64),
    Bytes(Vec<u8>),
    Utf(String),
    Utf16(Vec<u16>),
    Skip(usize),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (0..ALL_PRIMS.len(), 0..3usize, any::<u64>())
            .prop_map(|(p, o, bits)| Op::Prim(ALL_PRIMS[p], ALL_ORDERS[o], ALL_PRIMS[p].canonical(bits))),
        1 => proptest::collection::vec(any::<u8>(), 0..40).prop_map(Op::Bytes),
        1 => any::<String>().prop_map(Op::Utf),
        1 => "[a\\x00é€😀]{0,8}".prop_map(Op::Utf),
        1 => proptest::collection::vec(any::<u16>(), 0..12).prop_map(Op::Utf16),
        1 => (0..20usize).prop_map(Op::Skip),
    ]
}

/// The bytes an op writes (skipped bytes as `None`).
fn expected(op: &Op) -> Vec<Option<u8>> {
    let some = |v: Vec<u8>| v.into_iter().map(Some).collect();
    match op {
        Op::Prim(p, o, bits) => some(encode(*p, *o, *bits)),
        Op::Bytes(b) => some(b.clone()),
        Op::Utf(s) => {
            let mut v = (utf::encoded_len(s) as u16).to_be_bytes().to_vec();
            v.extend(utf::encode(s));
            some(v)
        }
        Op::Utf16(units) => {
            let mut v = (utf::encoded_len_utf16(units) as u16)
                .to_be_bytes()
                .to_vec();
            let mut enc = SerializationBuffer::new(0).unwrap();
            enc.write_utf16(units).unwrap();
            v.extend_from_slice(&enc.as_bytes()[2..]);
            some(v)
        }
        Op::Skip(n) => vec![None; *n],
    }
}

fn write(out: &mut impl DataOutput, op: &Op) -> memseg::Result<()> {
    macro_rules! put {
        ($t:ty, $bits:expr, $o:expr) => {
            out.write::<$t>($bits as $t, $o)
        };
    }
    match op {
        Op::Prim(p, o, bits) => match p {
            Prim::U8 => put!(u8, *bits, *o),
            Prim::I8 => put!(i8, *bits, *o),
            Prim::Bool => out.write(*bits != 0, *o),
            Prim::U16 | Prim::Char => put!(u16, *bits, *o),
            Prim::I16 => put!(i16, *bits, *o),
            Prim::U32 => put!(u32, *bits, *o),
            Prim::I32 => put!(i32, *bits, *o),
            Prim::U64 => put!(u64, *bits, *o),
            Prim::I64 => put!(i64, *bits, *o),
            Prim::F32 => out.write(f32::from_bits(*bits as u32), *o),
            Prim::F64 => out.write(f64::from_bits(*bits), *o),
        },
        Op::Bytes(b) => out.write_bytes(b),
        Op::Utf(s) => out.write_utf(s),
        Op::Utf16(u) => out.write_utf16(u),
        Op::Skip(n) => out.skip_bytes_to_write(*n),
    }
}

/// Reads `op` back and checks it.
fn read_and_check(input: &mut impl DataInput, op: &Op) -> Result<(), TestCaseError> {
    macro_rules! get {
        ($t:ty, $o:expr) => {
            input.read::<$t>($o).map(|v| v as u64)
        };
    }
    match op {
        Op::Prim(p, o, bits) => {
            let got = match p {
                Prim::U8 => get!(u8, *o),
                Prim::I8 => input.read::<i8>(*o).map(|v| v as u8 as u64),
                Prim::Bool => input.read::<bool>(*o).map(u64::from),
                Prim::U16 | Prim::Char => get!(u16, *o),
                Prim::I16 => input.read::<i16>(*o).map(|v| v as u16 as u64),
                Prim::U32 => get!(u32, *o),
                Prim::I32 => input.read::<i32>(*o).map(|v| v as u32 as u64),
                Prim::U64 => get!(u64, *o),
                Prim::I64 => input.read::<i64>(*o).map(|v| v as u64),
                Prim::F32 => input.read::<f32>(*o).map(|v| u64::from(v.to_bits())),
                Prim::F64 => input.read::<f64>(*o).map(f64::to_bits),
            };
            prop_assert_eq!(got, Ok(*bits), "{:?}", op);
        }
        Op::Bytes(b) => {
            let mut got = vec![0u8; b.len()];
            input.read_fully(&mut got).unwrap();
            prop_assert_eq!(&got, b);
        }
        Op::Utf(s) => {
            let got = input.read_utf();
            prop_assert_eq!(got.as_ref(), Ok(s));
        }
        Op::Utf16(u) => {
            let mut got = Vec::new();
            input.read_utf16(&mut got).unwrap();
            prop_assert_eq!(&got, u);
        }
        Op::Skip(n) => input.skip_bytes(*n).unwrap(),
    }
    Ok(())
}

fn segments(sizes: &[usize], total: usize) -> Vec<Segment> {
    let mut out = Vec::new();
    let mut capacity = 0;
    for &size in sizes.iter().cycle() {
        if capacity >= total {
            break;
        }
        out.push(Segment::allocate_heap(size).unwrap());
        capacity += size;
    }
    out
}

/// Longest operation sequence: short under Miri, which interprets every instruction.
const MAX_OPS: usize = if cfg!(miri) { 8 } else { 40 };

proptest! {
    #![proptest_config(config())]

    #[test]
    fn writes_through_an_output_view_read_back_exactly_and_by_seeking(
        ops in proptest::collection::vec(op(), 0..MAX_OPS),
        sizes in proptest::collection::vec(prop_oneof![1..4usize, 1..24usize, 16..200usize], 1..6),
        probes in proptest::collection::vec(any::<prop::sample::Index>(), 0..10),
    ) {
        let bytes: Vec<Vec<Option<u8>>> = ops.iter().map(expected).collect();
        let total: usize = bytes.iter().map(Vec::len).sum();
        let mut view = OutputView::new(FixedSource::new(segments(&sizes, total)));
        let mut positions = Vec::new();
        for op in &ops {
            positions.push((view.position(), view.bytes_written()));
            write(&mut view, op).unwrap();
        }
        prop_assert_eq!(view.bytes_written(), total);
        // The segments hold exactly the model's bytes, every segment but the last full.
        let flat: Vec<u8> = {
            let segs = view.segments();
            let mut flat = Vec::new();
            for (i, s) in segs.iter().enumerate() {
                let n = if i + 1 == segs.len() { view.fill_of_last() } else { s.size() };
                flat.extend_from_slice(&s.as_slice()[..n]);
            }
            flat
        };
        let model: Vec<Option<u8>> = bytes.concat();
        prop_assert_eq!(flat.len(), model.len());
        for (i, (got, want)) in flat.iter().zip(&model).enumerate() {
            if let Some(want) = want {
                prop_assert_eq!(got, want, "byte {}", i);
            }
        }
        let (mut input, _) = view.into_input_view();
        for op in &ops {
            read_and_check(&mut input, op)?;
        }
        prop_assert!(matches!(input.read_u8(), Err(Error::EndOfData(_))));
        prop_assert_eq!(input.offset(), total, "a failed read consumes nothing");
        if !ops.is_empty() {
            for probe in &probes {
                let i = probe.index(ops.len());
                let ((segment, offset), absolute) = positions[i];
                input.seek_to(segment, offset).unwrap();
                prop_assert_eq!(input.offset(), absolute);
                read_and_check(&mut input, &ops[i])?;
                input.seek(absolute).unwrap();
                read_and_check(&mut input, &ops[i])?;
            }
        }
    }

    #[test]
    fn out_of_segments_writes_nothing_and_keeps_everything_before_readable(
        ops in proptest::collection::vec(op(), 1..MAX_OPS),
        sizes in proptest::collection::vec(1..12usize, 1..6),
    ) {
        let capacity: usize = sizes.iter().sum();
        let mut view = OutputView::new(FixedSource::new(
            sizes.iter().map(|&n| Segment::allocate_heap(n).unwrap()),
        ));
        let mut written = Vec::new();
        for op in &ops {
            let before = view.bytes_written();
            match write(&mut view, op) {
                Ok(()) => written.push(op.clone()),
                Err(Error::OutOfSegments(_)) => {
                    prop_assert_eq!(view.bytes_written(), before);
                    prop_assert!(before + expected(op).len() > capacity);
                }
                Err(e) => return Err(TestCaseError::fail(format!("{e}"))),
            }
        }
        let (mut input, _) = view.into_input_view();
        for op in &written {
            read_and_check(&mut input, op)?;
        }
        prop_assert_eq!(input.available(), 0);
    }

    #[test]
    fn the_serialization_buffer_and_reader_round_trip(
        ops in proptest::collection::vec(op(), 0..MAX_OPS),
        initial in 0..64usize,
    ) {
        let mut out = SerializationBuffer::new(initial).unwrap();
        for op in &ops {
            write(&mut out, op).unwrap();
        }
        let mut input = SerializationReader::new(out.as_bytes());
        for op in &ops {
            read_and_check(&mut input, op)?;
        }
        prop_assert_eq!(input.available(), 0);
        out.prune();
        prop_assert_eq!((out.len(), out.capacity()), (0, initial));
    }

    #[test]
    fn records_split_over_buffers_of_random_sizes_come_back_whole(
        records in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..60), 0..20),
        sizes in proptest::collection::vec(1..40usize, 1..8),
    ) {
        let mut ser = RecordSerializer::new();
        let mut full = Vec::new();
        let mut sizes_iter = sizes.iter().cycle();
        let mut target = SegmentTarget::new(Segment::allocate_heap(*sizes_iter.next().unwrap()).unwrap());
        for r in &records {
            ser.serialize_record(r).unwrap();
            loop {
                let result = ser.copy_to(&mut target);
                if result.target_full {
                    let next = SegmentTarget::new(Segment::allocate_heap(*sizes_iter.next().unwrap()).unwrap());
                    full.push(std::mem::replace(&mut target, next).into_parts());
                }
                if result.record_done {
                    break;
                }
            }
        }
        full.push(target.into_parts());
        let mut de = RecordDeserializer::new(1000);
        let mut got = Vec::new();
        for (segment, fill) in full {
            let bytes = segment.as_slice()[..fill].to_vec();
            de.set_next_buffer(bytes).unwrap();
            while let Some(r) = de.next_record().unwrap() {
                got.push(r.to_vec());
            }
        }
        prop_assert_eq!(got, records);
        prop_assert!(!de.has_unread());
    }
}

#[test]
fn an_input_view_reads_borrowed_segments() {
    let mut a = Segment::allocate_heap(3).unwrap();
    a.put_bytes(0, &[0, 0, 1]).unwrap();
    let views: Vec<&Segment> = vec![&a, &a];
    let mut input = InputView::new(views, 1).unwrap();
    assert_eq!(input.read_u32(), Ok(0x0000_0100), "0 0 1 | 0");
    assert!(input.read_u8().is_err());
}
