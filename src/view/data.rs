//! The operations every writer and reader of the view layer has, in Java's `DataOutput` and
//! `DataInput` byte format.

use crate::error::{Error, Result};
use crate::segment::{ByteOrder, Primitive};

use super::utf;

macro_rules! named_writes {
    ($($name:ident, $name_le:ident, $t:ty, $java:literal;)*) => {$(
        #[doc = concat!("Writes a `", stringify!($t), "` big-endian, as Java's `DataOutput.", $java, "`.")]
        #[inline(always)]
        fn $name(&mut self, value: $t) -> Result<()> {
            self.write(value, ByteOrder::Big)
        }
        #[doc = concat!("Writes a `", stringify!($t), "` little-endian.")]
        #[inline(always)]
        fn $name_le(&mut self, value: $t) -> Result<()> {
            self.write(value, ByteOrder::Little)
        }
    )*};
}

macro_rules! named_reads {
    ($($name:ident, $name_le:ident, $t:ty, $java:literal;)*) => {$(
        #[doc = concat!("Reads a big-endian `", stringify!($t), "`, as Java's `DataInput.", $java, "`.")]
        #[inline(always)]
        fn $name(&mut self) -> Result<$t> {
            self.read(ByteOrder::Big)
        }
        #[doc = concat!("Reads a little-endian `", stringify!($t), "`.")]
        #[inline(always)]
        fn $name_le(&mut self) -> Result<$t> {
            self.read(ByteOrder::Little)
        }
    )*};
}

/// Writing values: Java's `DataOutput` (big endian by default, little-endian variants).
///
/// A write either succeeds completely or writes nothing: a writer that cannot take the bytes
/// (out of segments, out of memory) fails before touching anything.
pub trait DataOutput {
    /// Writes `value` in `order`.
    fn write<T: Primitive>(&mut self, value: T, order: ByteOrder) -> Result<()>;

    /// Writes the bytes of `src`.
    fn write_bytes(&mut self, src: &[u8]) -> Result<()>;

    /// Makes sure the next `len` bytes of writes cannot fail for lack of room (a view takes
    /// the segments it needs from its source now, a buffer grows now).
    fn reserve(&mut self, len: usize) -> Result<()>;

    /// Skips `len` bytes: advances the position without writing them. The skipped bytes hold
    /// whatever the memory held before.
    fn skip_bytes_to_write(&mut self, len: usize) -> Result<()>;

    named_writes! {
        write_u8, write_u8_le, u8, "writeByte";
        write_i8, write_i8_le, i8, "writeByte";
        write_bool, write_bool_le, bool, "writeBoolean";
        write_u16, write_u16_le, u16, "writeShort";
        write_i16, write_i16_le, i16, "writeShort";
        write_char, write_char_le, u16, "writeChar";
        write_u32, write_u32_le, u32, "writeInt";
        write_i32, write_i32_le, i32, "writeInt";
        write_u64, write_u64_le, u64, "writeLong";
        write_i64, write_i64_le, i64, "writeLong";
        write_f32, write_f32_le, f32, "writeFloat";
        write_f64, write_f64_le, f64, "writeDouble";
    }

    /// Writes a string as Java's `DataOutput.writeUTF`: a big-endian 2-byte length, then the
    /// string in modified UTF-8. A string of more than 65535 encoded bytes is
    /// `InvalidArgument`, and nothing is written.
    fn write_utf(&mut self, s: &str) -> Result<()> {
        let len = utf::encoded_len(s);
        let prefix = utf::check_len(len)?;
        self.reserve(2 + len)?;
        self.write(prefix, ByteOrder::Big)?;
        if len == s.len() {
            // No NUL and nothing outside the BMP: modified UTF-8 is plain UTF-8.
            self.write_bytes(s.as_bytes())
        } else {
            utf::encode_units(s.encode_utf16(), |chunk| self.write_bytes(chunk))
        }
    }

    /// Writes UTF-16 code units as Java's `writeUTF` writes a `String` holding them, unpaired
    /// surrogates included. Limits as [`write_utf`](Self::write_utf).
    fn write_utf16(&mut self, units: &[u16]) -> Result<()> {
        let len = utf::encoded_len_utf16(units);
        let prefix = utf::check_len(len)?;
        self.reserve(2 + len)?;
        self.write(prefix, ByteOrder::Big)?;
        utf::encode_units(units.iter().copied(), |chunk| self.write_bytes(chunk))
    }
}

/// Reading values: Java's `DataInput` (big endian by default, little-endian variants).
///
/// A read either succeeds or consumes nothing: reading past the end is `EndOfData`, a
/// malformed string `Corrupted`, and the position stays where it was.
pub trait DataInput {
    /// Reads a `T` in `order`.
    fn read<T: Primitive>(&mut self, order: ByteOrder) -> Result<T>;

    /// Fills `dst` with the next `dst.len()` bytes (Java's `readFully`).
    fn read_fully(&mut self, dst: &mut [u8]) -> Result<()>;

    /// Skips exactly `len` bytes (`EndOfData`, and nothing skipped, if fewer are left).
    fn skip_bytes(&mut self, len: usize) -> Result<()>;

    /// Bytes left to read.
    fn available(&self) -> usize;

    /// Bytes read so far: the absolute position from the start of the data.
    fn offset(&self) -> usize;

    /// Moves to absolute position `offset` (`OutOfBounds` beyond the end of the data).
    fn seek(&mut self, offset: usize) -> Result<()>;

    named_reads! {
        read_u8, read_u8_le, u8, "readUnsignedByte";
        read_i8, read_i8_le, i8, "readByte";
        read_bool, read_bool_le, bool, "readBoolean";
        read_u16, read_u16_le, u16, "readUnsignedShort";
        read_i16, read_i16_le, i16, "readShort";
        read_char, read_char_le, u16, "readChar";
        read_u32, read_u32_le, u32, "readInt";
        read_i32, read_i32_le, i32, "readInt";
        read_u64, read_u64_le, u64, "readLong";
        read_i64, read_i64_le, i64, "readLong";
        read_f32, read_f32_le, f32, "readFloat";
        read_f64, read_f64_le, f64, "readDouble";
    }

    /// The encoded bytes of the next string (Java's `readUTF` format), without its length.
    /// Consumes the string on success only.
    fn read_utf_bytes(&mut self) -> Result<Vec<u8>> {
        let mark = self.offset();
        let len = usize::from(self.read::<u16>(ByteOrder::Big)?);
        if self.available() < len {
            let available = self.available();
            self.seek(mark)?;
            return Err(Error::EndOfData(format!(
                "a string of {len} encoded bytes, but only {available} bytes follow its length"
            )));
        }
        let mut bytes = vec![0u8; len];
        self.read_fully(&mut bytes)?;
        Ok(bytes)
    }

    /// Reads a string written by Java's `writeUTF` (or [`DataOutput::write_utf`]).
    ///
    /// `Corrupted` for malformed modified UTF-8, `InvalidArgument` for a string with an
    /// unpaired surrogate (read it with [`read_utf16`](Self::read_utf16)); nothing is
    /// consumed on error.
    fn read_utf(&mut self) -> Result<String> {
        let mark = self.offset();
        let bytes = self.read_utf_bytes()?;
        utf::decode(&bytes).inspect_err(|_| {
            let _ = self.seek(mark);
        })
    }

    /// Reads a string written by Java's `writeUTF` as UTF-16 code units, appended to `out`,
    /// exactly as Java's `String` would hold them.
    fn read_utf16(&mut self, out: &mut Vec<u16>) -> Result<()> {
        let mark = self.offset();
        let bytes = self.read_utf_bytes()?;
        utf::decode_utf16(&bytes, out).inspect_err(|_| {
            let _ = self.seek(mark);
        })
    }
}

/// `EndOfData` for a read of `wanted` bytes with `available` left.
#[cold]
#[inline(never)]
pub(crate) fn end_of_data(wanted: usize, available: usize) -> Error {
    Error::EndOfData(format!(
        "reading {wanted} bytes, but only {available} are left; nothing was consumed"
    ))
}
