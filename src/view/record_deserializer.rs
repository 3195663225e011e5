//! [`RecordDeserializer`]: whole records back from the buffers a record serializer filled.

use crate::error::{Error, Result};

use super::record_serializer::LENGTH_PREFIX_SIZE;

/// The default bound on a record's length: 64 MiB. A length prefix above the bound is taken
/// for corruption rather than allocated for.
pub const DEFAULT_MAX_RECORD_LEN: usize = 64 << 20;

/// Reassembles the length-prefixed records of a [`RecordSerializer`](super::RecordSerializer)
/// from consecutive buffers (Flink's `SpillingAdaptiveSpanningRecordDeserializer`, without the
/// spilling).
///
/// Give it a buffer with [`set_next_buffer`](Self::set_next_buffer), then call
/// [`next_record`](Self::next_record) until it says it needs more data; then give it the next
/// buffer. A record inside one buffer is handed out in place, without a copy; a record split
/// over several buffers is gathered into an internal buffer. A length prefix above the
/// configured bound is `Corrupted`.
#[derive(Debug)]
pub struct RecordDeserializer<B: AsRef<[u8]>> {
    max_record_len: usize,
    current: Option<B>,
    /// Read position in `current`.
    pos: usize,
    /// Bytes carried over from earlier buffers, starting at a record boundary
    /// (`spill[spill_start..]` is unread).
    spill: Vec<u8>,
    spill_start: usize,
}

impl<B: AsRef<[u8]>> Default for RecordDeserializer<B> {
    fn default() -> Self {
        Self::new(DEFAULT_MAX_RECORD_LEN)
    }
}

impl<B: AsRef<[u8]>> RecordDeserializer<B> {
    /// A deserializer that refuses records longer than `max_record_len` bytes.
    pub fn new(max_record_len: usize) -> Self {
        RecordDeserializer {
            max_record_len,
            current: None,
            pos: 0,
            spill: Vec::new(),
            spill_start: 0,
        }
    }

    /// The bound on a record's length.
    pub fn max_record_len(&self) -> usize {
        self.max_record_len
    }

    /// Reads `buffer` next, and returns the buffer read before (if any), which the
    /// deserializer no longer uses: whatever was left unread in it has been copied.
    ///
    /// `AllocationFailed` (and nothing changes) if copying the unread bytes needs memory the
    /// allocator refuses; the new buffer is then dropped.
    pub fn set_next_buffer(&mut self, buffer: B) -> Result<Option<B>> {
        self.compact();
        if let Some(current) = &self.current {
            let rest = &current.as_ref()[self.pos..];
            if !rest.is_empty() {
                self.spill
                    .try_reserve(rest.len())
                    .map_err(|e| Error::AllocationFailed {
                        size: rest.len(),
                        reason: e.to_string(),
                    })?;
                self.spill.extend_from_slice(rest);
            }
        }
        self.pos = 0;
        Ok(self.current.replace(buffer))
    }

    /// Whether bytes of a record that is not complete yet are held (or a buffer has unread
    /// bytes).
    pub fn has_unread(&self) -> bool {
        self.spill.len() > self.spill_start || self.current_rest().is_some_and(|r| !r.is_empty())
    }

    /// Drops everything held (partial record and the current buffer).
    pub fn clear(&mut self) -> Option<B> {
        self.spill.clear();
        self.spill_start = 0;
        self.pos = 0;
        self.current.take()
    }

    fn current_rest(&self) -> Option<&[u8]> {
        self.current.as_ref().map(|c| &c.as_ref()[self.pos..])
    }

    fn compact(&mut self) {
        if self.spill_start > 0 {
            self.spill.drain(..self.spill_start);
            self.spill_start = 0;
        }
    }

    fn check_len(&self, prefix: [u8; 4]) -> Result<usize> {
        let len = u32::from_be_bytes(prefix) as usize;
        if len > self.max_record_len {
            return Err(Error::Corrupted(format!(
                "a record length prefix of {len} bytes exceeds the bound of {} bytes",
                self.max_record_len
            )));
        }
        Ok(len)
    }

    /// Moves up to `wanted` bytes of the current buffer to the spill buffer; returns whether
    /// all of them were there.
    fn take_into_spill(&mut self, wanted: usize) -> Result<bool> {
        let rest = self
            .current
            .as_ref()
            .map_or(&[][..], |c| &c.as_ref()[self.pos..]);
        let n = wanted.min(rest.len());
        self.spill
            .try_reserve(n)
            .map_err(|e| Error::AllocationFailed {
                size: n,
                reason: e.to_string(),
            })?;
        self.spill.extend_from_slice(&rest[..n]);
        self.pos += n;
        Ok(n == wanted)
    }

    /// The next whole record, or `None` when the buffers given so far end inside a record
    /// (or at a record boundary): give the next buffer, then ask again.
    ///
    /// The record is lent until the next call. `Corrupted` for a length prefix above the
    /// bound (nothing is consumed; the stream cannot be read on).
    pub fn next_record(&mut self) -> Result<Option<&[u8]>> {
        if self.spill_start == self.spill.len() {
            self.spill.clear();
            self.spill_start = 0;
        }
        if self.spill.is_empty() {
            let Some(current) = &self.current else {
                return Ok(None);
            };
            let rest = &current.as_ref()[self.pos..];
            if rest.len() >= LENGTH_PREFIX_SIZE {
                let len = self.check_len(rest[..4].try_into().expect("four bytes"))?;
                if rest.len() - LENGTH_PREFIX_SIZE >= len {
                    let start = self.pos + LENGTH_PREFIX_SIZE;
                    self.pos = start + len;
                    let current = self.current.as_ref().expect("checked above");
                    return Ok(Some(&current.as_ref()[start..start + len]));
                }
            }
            // A partial record: keep its bytes.
            let n = rest.len();
            self.take_into_spill(n)?;
            return Ok(None);
        }
        // Spanning: complete the prefix, then the record, from the current buffer.
        let held = self.spill.len() - self.spill_start;
        if held < LENGTH_PREFIX_SIZE && !self.take_into_spill(LENGTH_PREFIX_SIZE - held)? {
            return Ok(None);
        }
        let prefix = &self.spill[self.spill_start..self.spill_start + LENGTH_PREFIX_SIZE];
        let len = self.check_len(prefix.try_into().expect("four bytes"))?;
        let total = LENGTH_PREFIX_SIZE + len;
        let held = self.spill.len() - self.spill_start;
        if held < total && !self.take_into_spill(total - held)? {
            return Ok(None);
        }
        let start = self.spill_start + LENGTH_PREFIX_SIZE;
        self.spill_start += total;
        Ok(Some(&self.spill[start..start + len]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn framed(records: &[&[u8]]) -> Vec<u8> {
        let mut out = Vec::new();
        for r in records {
            out.extend_from_slice(&(r.len() as u32).to_be_bytes());
            out.extend_from_slice(r);
        }
        out
    }

    fn collect(de: &mut RecordDeserializer<Vec<u8>>, out: &mut Vec<Vec<u8>>) {
        while let Some(r) = de.next_record().unwrap() {
            out.push(r.to_vec());
        }
    }

    #[test]
    fn records_split_anywhere_come_back_whole() {
        let records: [&[u8]; 4] = [b"alpha", b"", b"a much longer record of bytes", b"z"];
        let stream = framed(&records);
        for chunk in 1..=stream.len() {
            let mut de = RecordDeserializer::new(1024);
            let mut got = Vec::new();
            for piece in stream.chunks(chunk) {
                de.set_next_buffer(piece.to_vec()).unwrap();
                collect(&mut de, &mut got);
            }
            assert_eq!(got, records.map(<[u8]>::to_vec), "chunks of {chunk}");
            assert!(!de.has_unread());
        }
    }

    #[test]
    fn a_buffer_set_before_the_last_was_read_keeps_its_records() {
        let stream = framed(&[b"one", b"two", b"three"]);
        let mut de = RecordDeserializer::new(64);
        de.set_next_buffer(stream[..9].to_vec()).unwrap();
        let old = de.set_next_buffer(stream[9..].to_vec()).unwrap();
        assert_eq!(old.unwrap().len(), 9);
        let mut got = Vec::new();
        collect(&mut de, &mut got);
        assert_eq!(got, [b"one".to_vec(), b"two".to_vec(), b"three".to_vec()]);
    }

    #[test]
    fn a_length_beyond_the_bound_is_corrupted_and_consumes_nothing() {
        let mut de = RecordDeserializer::new(8);
        de.set_next_buffer(framed(&[b"123456789"])).unwrap();
        assert!(matches!(de.next_record(), Err(Error::Corrupted(m)) if m.contains("bound of 8")));
        assert!(matches!(de.next_record(), Err(Error::Corrupted(_))));
        // Split prefix.
        let mut de = RecordDeserializer::new(8);
        de.set_next_buffer(vec![0, 0]).unwrap();
        assert_eq!(de.next_record(), Ok(None));
        de.set_next_buffer(vec![1, 0, 0]).unwrap();
        assert!(matches!(de.next_record(), Err(Error::Corrupted(_))));
        assert!(de.clear().is_some());
        assert_eq!(de.next_record(), Ok(None));
        assert_eq!(de.max_record_len(), 8);
    }
}
