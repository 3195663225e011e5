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
