//! The model shared by the property tests of the safe API (`segment_props.rs`) and of the C
//! ABI (`ffi_segment.rs`): two segments are modelled as two `Vec<u8>`, every operation is
//! applied to the model first, and the test compares the outcome and the whole contents.

#![allow(dead_code)] // each test binary uses a different part of the model

use std::cmp::Ordering;

use memseg::ByteOrder;
use proptest::prelude::*;

/// Proptest settings: few cases under Miri (it interprets every instruction), and no
/// failure persistence there (Miri's isolation forbids file access).
pub fn config() -> ProptestConfig {
    ProptestConfig {
        cases: if cfg!(miri) { 8 } else { 256 },
        failure_persistence: if cfg!(miri) {
            None
        } else {
            ProptestConfig::default().failure_persistence
        },
        ..ProptestConfig::default()
    }
}

/// Largest segment the property tests make, and longest operation sequence.
pub const MAX_SIZE: usize = if cfg!(miri) { 32 } else { 160 };
pub const MAX_OPS: usize = if cfg!(miri) { 16 } else { 64 };

/// Every primitive of the typed accessors. `Char` is Java's `char` (a UTF-16 code unit),
/// a `u16` in the safe API and its own accessors in the C ABI.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Prim {
    U8,
    I8,
    Bool,
    U16,
    I16,
    Char,
    U32,
    I32,
    U64,
    I64,
    F32,
    F64,
}

pub const ALL_PRIMS: [Prim; 12] = [
    Prim::U8,
    Prim::I8,
    Prim::Bool,
    Prim::U16,
    Prim::I16,
    Prim::Char,
    Prim::U32,
    Prim::I32,
    Prim::U64,
    Prim::I64,
    Prim::F32,
    Prim::F64,
];

pub const ALL_ORDERS: [ByteOrder; 3] = [ByteOrder::Native, ByteOrder::Little, ByteOrder::Big];

impl Prim {
    pub fn width(self) -> usize {
        match self {
            Prim::U8 | Prim::I8 | Prim::Bool => 1,
            Prim::U16 | Prim::I16 | Prim::Char => 2,
            Prim::U32 | Prim::I32 | Prim::F32 => 4,
            Prim::U64 | Prim::I64 | Prim::F64 => 8,
        }
    }

    /// Keeps the bits a value of this type has (a bool is 0 or 1).
    pub fn canonical(self, bits: u64) -> u64 {
        match self {
            Prim::Bool => bits & 1,
            _ if self.width() == 8 => bits,
            _ => bits & ((1u64 << (8 * self.width())) - 1),
        }
    }
}

/// Whether `order` stores the least significant byte first on this machine.
pub fn little_first(order: ByteOrder) -> bool {
    match order {
        ByteOrder::Little => true,
        ByteOrder::Big => false,
        ByteOrder::Native => cfg!(target_endian = "little"),
    }
}

/// The bytes a value with (canonical) `bits` is stored as.
pub fn encode(prim: Prim, order: ByteOrder, bits: u64) -> Vec<u8> {
    let mut bytes = bits.to_le_bytes()[..prim.width()].to_vec();
    if !little_first(order) {
        bytes.reverse();
    }
    bytes
}

/// The (canonical) bits of the value stored as `bytes`; any non-zero byte is `true`.
pub fn decode(prim: Prim, order: ByteOrder, bytes: &[u8]) -> u64 {
    assert_eq!(bytes.len(), prim.width());
    if prim == Prim::Bool {
        return u64::from(bytes[0] != 0);
    }
    let mut le = [0u8; 8];
    le[..bytes.len()].copy_from_slice(bytes);
    if !little_first(order) {
        le[..bytes.len()].reverse();
    }
    u64::from_le_bytes(le)
}

/// How an operation failed, in the model's terms.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fail {
    OutOfBounds {
        offset: usize,
        len: usize,
        size: usize,
    },
    InvalidArgument,
}

/// What a successful operation returned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Done {
    Unit,
    Bits(u64),
    Bytes(Vec<u8>),
    Order(Ordering),
    Equal(bool),
}

/// One operation on segment 0 and/or segment 1.
#[derive(Debug, Clone)]
pub enum Op {
    Put {
        seg: usize,
        prim: Prim,
        order: ByteOrder,
        offset: usize,
        bits: u64,
    },
    Get {
        seg: usize,
        prim: Prim,
        order: ByteOrder,
        offset: usize,
    },
    GetBytes {
        seg: usize,
        offset: usize,
        len: usize,
    },
    PutBytes {
        seg: usize,
        offset: usize,
        data: Vec<u8>,
    },
    /// Within one segment; the ranges may overlap.
    CopyWithin {
        seg: usize,
        src: usize,
        dst: usize,
        len: usize,
    },
    /// From segment `from` to the other one.
    CopyTo {
        from: usize,
        src: usize,
        dst: usize,
        len: usize,
    },
    /// `a` and `b` may be the same segment.
    Compare {
        a: usize,
        a_off: usize,
        b: usize,
        b_off: usize,
        len: usize,
    },
    Equal {
        a: usize,
        a_off: usize,
        b: usize,
        b_off: usize,
        len: usize,
    },
    /// Between segment 0 and segment 1.
    Swap {
        a_off: usize,
        b_off: usize,
        len: usize,
    },
    /// Within one segment (the C ABI allows it; the ranges must not partly overlap).
    SwapWithin {
        seg: usize,
        a_off: usize,
        b_off: usize,
        len: usize,
    },
    Fill {
        seg: usize,
        offset: usize,
        len: usize,
        value: u8,
    },
    /// Look at (and write one byte of) the memory through the lent pointer.
    Raw {
        seg: usize,
        offset: usize,
        value: u8,
    },
}

/// The model: the two segments' contents.
#[derive(Debug, Clone)]
pub struct Model {
    pub mem: [Vec<u8>; 2],
}

fn check(size: usize, offset: usize, len: usize) -> Result<(), Fail> {
    match offset.checked_add(len) {
        Some(end) if end <= size => Ok(()),
        _ => Err(Fail::OutOfBounds { offset, len, size }),
    }
}

impl Model {
    /// Applies `op`; on failure the model is unchanged.
    pub fn apply(&mut self, op: &Op) -> Result<Done, Fail> {
        match *op {
            Op::Put {
                seg,
                prim,
                order,
                offset,
                bits,
            } => {
                let m = &mut self.mem[seg];
                check(m.len(), offset, prim.width())?;
                let bytes = encode(prim, order, prim.canonical(bits));
                m[offset..offset + bytes.len()].copy_from_slice(&bytes);
                Ok(Done::Unit)
            }
            Op::Get {
                seg,
                prim,
                order,
                offset,
            } => {
                let m = &self.mem[seg];
                check(m.len(), offset, prim.width())?;
                Ok(Done::Bits(decode(
                    prim,
                    order,
                    &m[offset..offset + prim.width()],
                )))
            }
            Op::GetBytes { seg, offset, len } => {
                let m = &self.mem[seg];
                check(m.len(), offset, len)?;
                Ok(Done::Bytes(m[offset..offset + len].to_vec()))
            }
            Op::PutBytes {
                seg,
                offset,
                ref data,
            } => {
                let m = &mut self.mem[seg];
                check(m.len(), offset, data.len())?;
                m[offset..offset + data.len()].copy_from_slice(data);
                Ok(Done::Unit)
            }
            Op::CopyWithin { seg, src, dst, len } => {
                let m = &mut self.mem[seg];
                check(m.len(), src, len)?;
                check(m.len(), dst, len)?;
                m.copy_within(src..src + len, dst);
                Ok(Done::Unit)
            }
            Op::CopyTo {
                from,
                src,
                dst,
                len,
            } => {
                let [m0, m1] = &mut self.mem;
                let (s, d) = if from == 0 { (m0, m1) } else { (m1, m0) };
                check(s.len(), src, len)?;
                check(d.len(), dst, len)?;
                d[dst..dst + len].copy_from_slice(&s[src..src + len]);
                Ok(Done::Unit)
            }
            Op::Compare {
                a,
                a_off,
                b,
                b_off,
                len,
            } => {
                let (x, y) = self.ranges(a, a_off, b, b_off, len)?;
                Ok(Done::Order(x.cmp(y)))
            }
            Op::Equal {
                a,
                a_off,
                b,
                b_off,
                len,
            } => {
                let (x, y) = self.ranges(a, a_off, b, b_off, len)?;
                Ok(Done::Equal(x == y))
            }
            Op::Swap { a_off, b_off, len } => {
                let [m0, m1] = &mut self.mem;
                check(m0.len(), a_off, len)?;
                check(m1.len(), b_off, len)?;
                m0[a_off..a_off + len].swap_with_slice(&mut m1[b_off..b_off + len]);
                Ok(Done::Unit)
            }
            Op::SwapWithin {
                seg,
                a_off,
                b_off,
                len,
            } => {
                let m = &mut self.mem[seg];
                check(m.len(), a_off, len)?;
                check(m.len(), b_off, len)?;
                if a_off == b_off || len == 0 {
                    return Ok(Done::Unit);
                }
                if a_off.abs_diff(b_off) < len {
                    return Err(Fail::InvalidArgument);
                }
                for i in 0..len {
                    m.swap(a_off + i, b_off + i);
                }
                Ok(Done::Unit)
            }
            Op::Fill {
                seg,
                offset,
                len,
                value,
            } => {
                let m = &mut self.mem[seg];
                check(m.len(), offset, len)?;
                m[offset..offset + len].fill(value);
                Ok(Done::Unit)
            }
            Op::Raw { seg, offset, value } => {
                // Writes one byte at `offset % size`, so it always succeeds.
                let m = &mut self.mem[seg];
                let at = offset % m.len();
                m[at] = value;
                Ok(Done::Unit)
            }
        }
    }

    fn ranges(
        &self,
        a: usize,
        a_off: usize,
        b: usize,
        b_off: usize,
        len: usize,
    ) -> Result<(&[u8], &[u8]), Fail> {
        let (x, y) = (&self.mem[a], &self.mem[b]);
        check(x.len(), a_off, len)?;
        check(y.len(), b_off, len)?;
        Ok((&x[a_off..a_off + len], &y[b_off..b_off + len]))
    }
}

pub fn prim() -> impl Strategy<Value = Prim> {
    proptest::sample::select(ALL_PRIMS.to_vec())
}

pub fn order() -> impl Strategy<Value = ByteOrder> {
    proptest::sample::select(ALL_ORDERS.to_vec())
}

/// Value bits: anything, with the float values that are easy to get wrong (NaNs with
/// payloads, signalling NaNs, negative zero, infinities) made likely.
pub fn bits() -> impl Strategy<Value = u64> {
    prop_oneof![
        6 => any::<u64>(),
        1 => proptest::sample::select(vec![
            0x7ff0_0000_0000_0001u64,   // f64 signalling NaN
            0xfff8_0000_dead_beef,      // f64 negative quiet NaN with payload
            0x8000_0000_0000_0000,      // f64 -0.0
            0x7ff0_0000_0000_0000,      // f64 +inf
            0x7f80_0001,                // f32 signalling NaN
            0xffc0_1234,                // f32 negative quiet NaN with payload
            0x8000_0000,                // f32 -0.0
            0xff80_0000,                // f32 -inf
            0x0001,                     // f32/f64 smallest subnormal
        ]),
    ]
}

/// Offsets: mostly inside a segment of up to `MAX_SIZE` bytes, some just past it, some
/// near `usize::MAX` (where `offset + len` overflows).
pub fn offset() -> impl Strategy<Value = usize> {
    prop_oneof![
        8 => 0..MAX_SIZE,
        1 => MAX_SIZE..MAX_SIZE + 16,
        1 => (usize::MAX - 16)..=usize::MAX,
    ]
}

/// Lengths: mostly short, some up to a whole segment, some huge.
pub fn len() -> impl Strategy<Value = usize> {
    prop_oneof![
        8 => 0..24usize,
        2 => 0..=MAX_SIZE + 8,
        1 => proptest::sample::select(vec![usize::MAX, usize::MAX - 1, isize::MAX as usize + 1]),
    ]
}

fn seg() -> impl Strategy<Value = usize> {
    0..2usize
}

pub fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (seg(), prim(), order(), offset(), bits()).prop_map(|(seg, prim, order, offset, bits)| {
            Op::Put { seg, prim, order, offset, bits }
        }),
        4 => (seg(), prim(), order(), offset())
            .prop_map(|(seg, prim, order, offset)| Op::Get { seg, prim, order, offset }),
        1 => (seg(), offset(), len()).prop_map(|(seg, offset, len)| Op::GetBytes { seg, offset, len }),
        1 => (seg(), offset(), proptest::collection::vec(any::<u8>(), 0..32))
            .prop_map(|(seg, offset, data)| Op::PutBytes { seg, offset, data }),
        1 => (seg(), offset(), offset(), len())
            .prop_map(|(seg, src, dst, len)| Op::CopyWithin { seg, src, dst, len }),
        1 => (seg(), offset(), offset(), len())
            .prop_map(|(from, src, dst, len)| Op::CopyTo { from, src, dst, len }),
        1 => (seg(), offset(), seg(), offset(), len())
            .prop_map(|(a, a_off, b, b_off, len)| Op::Compare { a, a_off, b, b_off, len }),
        1 => (seg(), offset(), seg(), offset(), len())
            .prop_map(|(a, a_off, b, b_off, len)| Op::Equal { a, a_off, b, b_off, len }),
        1 => (offset(), offset(), len()).prop_map(|(a_off, b_off, len)| Op::Swap { a_off, b_off, len }),
        1 => (seg(), offset(), offset(), len())
            .prop_map(|(seg, a_off, b_off, len)| Op::SwapWithin { seg, a_off, b_off, len }),
        1 => (seg(), offset(), len(), any::<u8>())
            .prop_map(|(seg, offset, len, value)| Op::Fill { seg, offset, len, value }),
        1 => (seg(), any::<usize>(), any::<u8>())
            .prop_map(|(seg, offset, value)| Op::Raw { seg, offset, value }),
    ]
}

pub fn ops() -> impl Strategy<Value = Vec<Op>> {
    proptest::collection::vec(op(), 1..MAX_OPS)
}

/// The kinds of memory a property test runs on. Off-heap segments are mapped without
/// options, which Miri emulates too (it has no `MAP_POPULATE` or `madvise`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Heap,
    OffHeap,
    Foreign,
}

pub fn kind() -> impl Strategy<Value = Kind> {
    proptest::sample::select(vec![Kind::Heap, Kind::OffHeap, Kind::Foreign])
}

/// A segment to make: its kind, size, and (for foreign memory, which is not cleared) its
/// initial contents.
#[derive(Debug, Clone)]
pub struct Spec {
    pub kind: Kind,
    pub initial: Vec<u8>,
}

impl Spec {
    /// What the segment holds right after it is made.
    pub fn expected_initial(&self) -> Vec<u8> {
        match self.kind {
            Kind::Foreign => self.initial.clone(),
            Kind::Heap | Kind::OffHeap => vec![0; self.initial.len()],
        }
    }
}

pub fn spec() -> impl Strategy<Value = Spec> {
    (kind(), proptest::collection::vec(any::<u8>(), 1..=MAX_SIZE))
        .prop_map(|(kind, initial)| Spec { kind, initial })
}
