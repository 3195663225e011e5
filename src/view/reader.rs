//! [`SerializationReader`]: `DataInput` reads over one contiguous buffer.

use crate::error::{Error, Result};
use crate::segment::{ByteOrder, Primitive};

use super::data::{DataInput, end_of_data};

/// Reads Java's `DataInput` format from one contiguous buffer (Flink's
/// `DataInputDeserializer`): borrowed bytes (`&[u8]`), a `Vec<u8>`, or anything else that
/// gives bytes.
#[derive(Debug, Clone)]
pub struct SerializationReader<B: AsRef<[u8]>> {
    data: B,
    pos: usize,
}

impl<B: AsRef<[u8]>> SerializationReader<B> {
    /// A reader at the start of `data`.
    pub fn new(data: B) -> Self {
        SerializationReader { data, pos: 0 }
    }

    /// Reads `data` from its start from now on, and returns the buffer read before.
    pub fn set_buffer(&mut self, data: B) -> B {
        self.pos = 0;
        std::mem::replace(&mut self.data, data)
    }

    /// The buffer.
    pub fn buffer(&self) -> &B {
        &self.data
    }

    /// Ends the reader, giving back its buffer.
    pub fn into_inner(self) -> B {
        self.data
    }

    #[cold]
    #[inline(never)]
    fn short<T>(&self, wanted: usize) -> Result<T> {
        Err(end_of_data(wanted, self.available()))
    }
}

impl<B: AsRef<[u8]>> DataInput for SerializationReader<B> {
    #[inline(always)]
    fn read<T: Primitive>(&mut self, order: ByteOrder) -> Result<T> {
        let data = self.data.as_ref();
        let end = self.pos + T::SIZE;
        if end <= data.len() {
            // SAFETY: `[pos, end)` lies inside `data`.
            let value = unsafe { T::load(data.as_ptr().add(self.pos), order) };
            self.pos = end;
            return Ok(value);
        }
        self.short(T::SIZE)
    }

    fn read_fully(&mut self, dst: &mut [u8]) -> Result<()> {
        let data = self.data.as_ref();
        match data.get(self.pos..self.pos + dst.len()) {
            Some(src) => {
                dst.copy_from_slice(src);
                self.pos += dst.len();
                Ok(())
            }
            None => self.short(dst.len()),
        }
    }

    fn skip_bytes(&mut self, len: usize) -> Result<()> {
        if self.available() < len {
            return self.short(len);
        }
        self.pos += len;
        Ok(())
    }

    fn available(&self) -> usize {
        self.data.as_ref().len() - self.pos
    }

    fn offset(&self) -> usize {
        self.pos
    }

    fn seek(&mut self, offset: usize) -> Result<()> {
        let len = self.data.as_ref().len();
        if offset > len {
            return Err(Error::OutOfBounds {
                offset,
                len: 0,
                size: len,
            });
        }
        self.pos = offset;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::view::{DataOutput, SerializationBuffer};

    #[test]
    fn reads_what_the_buffer_wrote_and_refuses_past_the_end() {
        let mut out = SerializationBuffer::new(8).unwrap();
        out.write_i32(-5).unwrap();
        out.write_f64_le(-0.0).unwrap();
        out.write_utf("héllo\0😀").unwrap();
        out.write_bool(true).unwrap();
        let mut r = SerializationReader::new(out.as_bytes());
        assert_eq!(r.read_i32(), Ok(-5));
        assert_eq!(r.read_f64_le().map(f64::to_bits), Ok((-0.0f64).to_bits()));
        assert_eq!(r.read_utf().as_deref(), Ok("héllo\0😀"));
        assert!(matches!(r.read_u16(), Err(Error::EndOfData(_))));
        assert_eq!(r.read_bool(), Ok(true));
        assert_eq!(r.available(), 0);
        assert!(matches!(
            r.seek(r.offset() + 1),
            Err(Error::OutOfBounds { .. })
        ));
        r.seek(0).unwrap();
        r.skip_bytes(4).unwrap();
        assert!(matches!(r.skip_bytes(100), Err(Error::EndOfData(_))));
        assert_eq!(r.offset(), 4);
        let old = r.set_buffer(&[1, 2]);
        assert_eq!(old.len(), out.len());
        assert_eq!(r.read_u16(), Ok(0x0102));
    }

    #[test]
    fn a_truncated_or_malformed_string_consumes_nothing() {
        let mut r = SerializationReader::new(vec![0, 5, b'a', b'b']);
        assert!(matches!(r.read_utf(), Err(Error::EndOfData(_))));
        assert_eq!(r.offset(), 0);
        let mut r = SerializationReader::new(vec![0, 2, 0xC3, 0x41]);
        assert!(matches!(r.read_utf(), Err(Error::Corrupted(_))));
        let mut units = Vec::new();
        assert!(matches!(r.read_utf16(&mut units), Err(Error::Corrupted(_))));
        assert_eq!((r.offset(), units.len()), (0, 0));
    }
}
