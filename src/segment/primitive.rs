//! The primitive types a segment reads and writes, and the byte orders it uses.

/// Byte order of a typed access.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ByteOrder {
    /// The byte order of the machine the code runs on.
    Native,
    /// Least significant byte first.
    Little,
    /// Most significant byte first: the order of Java's `DataOutput` and of the network.
    Big,
}

mod sealed {
    pub trait Sealed {}
}

/// A fixed-size value a segment can read and write: the integers, `bool`, `f32` and `f64`.
///
/// Java's `char` is a UTF-16 code unit; read and write it as `u16`.
/// `bool` is one byte: writing stores 1 or 0, reading treats every non-zero byte as `true`.
/// Floats are stored as their IEEE 754 bits, so NaN payloads and negative zero survive.
pub trait Primitive: Copy + sealed::Sealed {
    /// Size of the value in bytes.
    const SIZE: usize;

    /// Reads a value from `SIZE` bytes at `src`.
    ///
    /// # Safety
    /// `src` must be valid for reading `SIZE` bytes; no alignment is required.
    unsafe fn load(src: *const u8, order: ByteOrder) -> Self;

    /// Writes the value into `SIZE` bytes at `dst`.
    ///
    /// # Safety
    /// `dst` must be valid for writing `SIZE` bytes; no alignment is required.
    unsafe fn store(self, dst: *mut u8, order: ByteOrder);
}

macro_rules! primitive_via_bytes {
    ($($t:ty),* $(,)?) => {$(
        impl sealed::Sealed for $t {}
        impl Primitive for $t {
            const SIZE: usize = std::mem::size_of::<$t>();

            #[inline(always)]
            unsafe fn load(src: *const u8, order: ByteOrder) -> Self {
                // SAFETY: the caller guarantees `src` is readable for SIZE bytes;
                // `[u8; N]` has alignment 1.
                let bytes = unsafe { src.cast::<[u8; std::mem::size_of::<$t>()]>().read_unaligned() };
                match order {
                    ByteOrder::Native => <$t>::from_ne_bytes(bytes),
                    ByteOrder::Little => <$t>::from_le_bytes(bytes),
                    ByteOrder::Big => <$t>::from_be_bytes(bytes),
                }
            }

            #[inline(always)]
            unsafe fn store(self, dst: *mut u8, order: ByteOrder) {
                let bytes = match order {
                    ByteOrder::Native => self.to_ne_bytes(),
                    ByteOrder::Little => self.to_le_bytes(),
                    ByteOrder::Big => self.to_be_bytes(),
                };
                // SAFETY: the caller guarantees `dst` is writable for SIZE bytes;
                // `[u8; N]` has alignment 1.
                unsafe { dst.cast::<[u8; std::mem::size_of::<$t>()]>().write_unaligned(bytes) }
            }
        }
    )*};
}

primitive_via_bytes!(u8, i8, u16, i16, u32, i32, u64, i64, f32, f64);

impl sealed::Sealed for bool {}
impl Primitive for bool {
    const SIZE: usize = 1;

    #[inline(always)]
    unsafe fn load(src: *const u8, _order: ByteOrder) -> Self {
        // SAFETY: the caller guarantees one readable byte at `src`.
        unsafe { src.read() != 0 }
    }

    #[inline(always)]
    unsafe fn store(self, dst: *mut u8, _order: ByteOrder) {
        // SAFETY: the caller guarantees one writable byte at `dst`.
        unsafe { dst.write(u8::from(self)) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Stores `value` at every offset of a buffer in `order`, checks the bytes, and loads it
    /// back. Odd offsets make the accesses unaligned, which must be fine (Miri checks).
    fn bytes_of<T: Primitive + PartialEq + std::fmt::Debug>(value: T, order: ByteOrder) -> Vec<u8> {
        let mut buf = [0xEEu8; 24];
        let mut first = None;
        for offset in 0..=buf.len() - T::SIZE {
            buf.fill(0xEE);
            // SAFETY: `offset + SIZE <= buf.len()`.
            unsafe { value.store(buf.as_mut_ptr().add(offset), order) };
            let stored = buf[offset..offset + T::SIZE].to_vec();
            assert!(buf[..offset].iter().all(|&b| b == 0xEE), "nothing before");
            assert!(
                buf[offset + T::SIZE..].iter().all(|&b| b == 0xEE),
                "nothing after"
            );
            // SAFETY: as above.
            let back = unsafe { T::load(buf.as_ptr().add(offset), order) };
            assert_eq!(back, value);
            assert_eq!(*first.get_or_insert_with(|| stored.clone()), stored);
        }
        first.unwrap()
    }

    #[test]
    fn byte_orders_lay_out_the_bytes_as_named() {
        use ByteOrder::{Big, Little, Native};
        assert_eq!(bytes_of(0x0102_0304u32, Big), [1, 2, 3, 4]);
        assert_eq!(bytes_of(0x0102_0304u32, Little), [4, 3, 2, 1]);
        assert_eq!(
            bytes_of(0x0102_0304u32, Native),
            0x0102_0304u32.to_ne_bytes()
        );
        assert_eq!(bytes_of(-2i16, Big), [0xFF, 0xFE]);
        assert_eq!(bytes_of(-2i16, Little), [0xFE, 0xFF]);
        assert_eq!(bytes_of(0xABu8, Big), [0xAB]);
        assert_eq!(bytes_of(-1i8, Little), [0xFF]);
        assert_eq!(bytes_of(1u64, Big), [0, 0, 0, 0, 0, 0, 0, 1]);
        assert_eq!(bytes_of(i64::MIN, Little), [0, 0, 0, 0, 0, 0, 0, 0x80]);
        assert_eq!(bytes_of(1.0f32, Big), [0x3F, 0x80, 0, 0]);
        assert_eq!(bytes_of(-2.0f64, Big), [0xC0, 0, 0, 0, 0, 0, 0, 0]);
        assert_eq!(bytes_of(-0.0f64, Little), [0, 0, 0, 0, 0, 0, 0, 0x80]);
        assert_eq!(bytes_of(true, Big), [1]);
        assert_eq!(bytes_of(false, Little), [0]);
    }

    #[test]
    fn sizes_are_the_types_sizes() {
        assert_eq!(
            [u8::SIZE, i8::SIZE, bool::SIZE, u16::SIZE, i16::SIZE],
            [1, 1, 1, 2, 2]
        );
        assert_eq!([u32::SIZE, i32::SIZE, f32::SIZE], [4, 4, 4]);
        assert_eq!([u64::SIZE, i64::SIZE, f64::SIZE], [8, 8, 8]);
    }

    #[test]
    fn any_non_zero_byte_loads_as_true() {
        for byte in 0..=u8::MAX {
            for order in [ByteOrder::Native, ByteOrder::Little, ByteOrder::Big] {
                // SAFETY: one readable byte.
                assert_eq!(unsafe { bool::load(&byte, order) }, byte != 0);
            }
        }
    }

    #[test]
    fn nan_payloads_survive_a_round_trip() {
        for order in [ByteOrder::Native, ByteOrder::Little, ByteOrder::Big] {
            for bits in [0x7FF0_0000_0000_0001u64, 0xFFF8_0000_DEAD_BEEF] {
                let mut buf = [0u8; 8];
                // SAFETY: eight writable and readable bytes.
                let back = unsafe {
                    f64::from_bits(bits).store(buf.as_mut_ptr(), order);
                    f64::load(buf.as_ptr(), order)
                };
                assert_eq!(back.to_bits(), bits);
            }
            for bits in [0x7F80_0001u32, 0xFFC0_1234] {
                let mut buf = [0u8; 4];
                // SAFETY: four writable and readable bytes.
                let back = unsafe {
                    f32::from_bits(bits).store(buf.as_mut_ptr(), order);
                    f32::load(buf.as_ptr(), order)
                };
                assert_eq!(back.to_bits(), bits);
            }
        }
    }
}
