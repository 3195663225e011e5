//! The block format of spill files.
//!
//! A spill file is a sequence of blocks, each exactly one page long, so that the writer writes
//! and the reader reads whole pages. A block is a 20-byte header followed by its payload; the
//! rest of the page is zero. The payload is a stream of records, each a little-endian `u32`
//! length and the record's bytes. A record's length never spans two blocks, but its bytes may:
//! a record longer than what is left of a block goes on at the start of the next block's
//! payload (and the next, as long as it needs), where the header says how many bytes continue
//! it.
//!
//! | offset | field |
//! |---|---|
//! | 0 | magic `MSB2` (`0x3242_534D` little endian) |
//! | 4 | bytes of payload after the header (`u32`) |
//! | 8 | number of records whose length is in this block (`u32`) |
//! | 12 | bytes at the payload's start that continue the record before (`u32`) |
//! | 16 | CRC-32 (IEEE) of the whole page with this field taken as zero |
//!
//! A record that fits a block is written whole into one, so a reader returns it as a slice of
//! its read page, without copying; only records longer than a block's payload are split, and
//! their reader puts them together again. Any changed byte of a block fails its checksum, so a
//! corrupted block is reported, never read as data.

use crate::error::{Error, Result};

/// Bytes of the block header.
pub const BLOCK_HEADER: usize = 20;
/// Bytes of the length before each record.
pub const RECORD_HEADER: usize = 4;
const MAGIC: u32 = u32::from_le_bytes(*b"MSB2");

/// The longest record a block of `page_size` bytes holds whole (longer ones span blocks).
pub fn max_record_len(page_size: usize) -> usize {
    page_size.saturating_sub(BLOCK_HEADER + RECORD_HEADER)
}

/// Fills one page with records, block by block.
#[derive(Debug)]
pub struct BlockBuilder {
    fill: usize,
    count: u32,
    continued: u32,
}

impl Default for BlockBuilder {
    fn default() -> Self {
        Self::new()
    }
}

impl BlockBuilder {
    /// An empty block.
    pub fn new() -> Self {
        BlockBuilder {
            fill: BLOCK_HEADER,
            count: 0,
            continued: 0,
        }
    }

    /// Number of records whose length is in the block.
    pub fn count(&self) -> u32 {
        self.count
    }

    /// Whether nothing has been put in the block.
    pub fn is_empty(&self) -> bool {
        self.fill == BLOCK_HEADER
    }

    /// Appends `record` whole to the block in `page`, or returns `false` (and writes nothing)
    /// when the block has no room left for it.
    #[inline]
    pub fn push(&mut self, page: &mut [u8], record: &[u8]) -> bool {
        let end = self.fill + RECORD_HEADER + record.len();
        if end > page.len() {
            return false;
        }
        page[self.fill..self.fill + RECORD_HEADER]
            .copy_from_slice(&(record.len() as u32).to_le_bytes());
        page[self.fill + RECORD_HEADER..end].copy_from_slice(record);
        self.fill = end;
        self.count += 1;
        true
    }

    /// Starts a record of `len` bytes whose bytes follow with [`append`](Self::append), or
    /// returns `false` (and writes nothing) when not even its length fits.
    pub fn start(&mut self, page: &mut [u8], len: u32) -> bool {
        if self.fill + RECORD_HEADER > page.len() {
            return false;
        }
        page[self.fill..self.fill + RECORD_HEADER].copy_from_slice(&len.to_le_bytes());
        self.fill += RECORD_HEADER;
        self.count += 1;
        true
    }

    /// Appends as many of `bytes` as fit and returns how many. `continuing` says that they go
    /// on a record started in an earlier block (the block must hold nothing else before them).
    pub fn append(&mut self, page: &mut [u8], bytes: &[u8], continuing: bool) -> usize {
        let n = bytes.len().min(page.len() - self.fill);
        page[self.fill..self.fill + n].copy_from_slice(&bytes[..n]);
        self.fill += n;
        if continuing {
            debug_assert_eq!(self.fill, BLOCK_HEADER + self.continued as usize + n);
            self.continued += n as u32;
        }
        n
    }

    /// Writes the header and checksum and zeroes the unused tail; the page is then one whole
    /// block, ready to write. The builder starts over for the next block.
    pub fn seal(&mut self, page: &mut [u8]) {
        page[self.fill..].fill(0);
        page[0..4].copy_from_slice(&MAGIC.to_le_bytes());
        page[4..8].copy_from_slice(&((self.fill - BLOCK_HEADER) as u32).to_le_bytes());
        page[8..12].copy_from_slice(&self.count.to_le_bytes());
        page[12..16].copy_from_slice(&self.continued.to_le_bytes());
        page[16..20].fill(0);
        let crc = crc32fast::hash(page);
        page[16..20].copy_from_slice(&crc.to_le_bytes());
        *self = BlockBuilder::new();
    }
}

fn u32_at(page: &[u8], offset: usize) -> u32 {
    u32::from_le_bytes(page[offset..offset + 4].try_into().expect("four bytes"))
}

/// What the header of a verified block says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlockInfo {
    /// Number of records whose length is in the block.
    pub count: u32,
    /// Bytes at the payload's start that continue the record of an earlier block.
    pub continued: usize,
    /// End of the payload in the page.
    pub payload_end: usize,
}

/// Checks a block read into `page` and returns what its header says. `what` names the block
/// in the error ("spill file /tmp/x, block 3").
pub fn verify(page: &mut [u8], what: &dyn std::fmt::Display) -> Result<BlockInfo> {
    if u32_at(page, 0) != MAGIC {
        return Err(Error::Corrupted(format!(
            "{what}: not a memseg spill block (bad magic)"
        )));
    }
    let stored = u32_at(page, 16);
    page[16..20].fill(0);
    let crc = crc32fast::hash(page);
    page[16..20].copy_from_slice(&stored.to_le_bytes());
    if crc != stored {
        return Err(Error::Corrupted(format!(
            "{what}: checksum mismatch (stored {stored:#010x}, computed {crc:#010x})"
        )));
    }
    let payload = u32_at(page, 4) as usize;
    if payload > page.len() - BLOCK_HEADER {
        return Err(Error::Corrupted(format!(
            "{what}: payload of {payload} bytes exceeds the block"
        )));
    }
    let continued = u32_at(page, 12) as usize;
    if continued > payload {
        return Err(Error::Corrupted(format!(
            "{what}: {continued} continued bytes exceed the payload of {payload}"
        )));
    }
    Ok(BlockInfo {
        count: u32_at(page, 8),
        continued,
        payload_end: BLOCK_HEADER + payload,
    })
}

/// Reads the length of the record at `pos` of a verified block whose payload ends at
/// `payload_end`: returns where its bytes start and how many there are (they may go on past
/// the payload, into the next blocks).
#[inline]
pub fn record_header(
    page: &[u8],
    pos: usize,
    payload_end: usize,
    what: &dyn std::fmt::Display,
) -> Result<(usize, usize)> {
    if pos + RECORD_HEADER > payload_end {
        return Err(Error::Corrupted(format!(
            "{what}: record count exceeds the block's payload"
        )));
    }
    Ok((pos + RECORD_HEADER, u32_at(page, pos) as usize))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_block_round_trips_and_every_flipped_byte_is_caught() {
        let mut page = vec![0xEEu8; 256];
        let mut b = BlockBuilder::new();
        assert!(b.push(&mut page, b"hello"));
        assert!(b.push(&mut page, b""));
        assert!(b.push(&mut page, &[7u8; 100]));
        assert!(!b.push(&mut page, &[7u8; 200]), "no room");
        assert_eq!(b.count(), 3);
        b.seal(&mut page);
        assert_eq!(b.count(), 0);
        let info = verify(&mut page, &"t").unwrap();
        assert_eq!((info.count, info.continued), (3, 0));
        let end = info.payload_end;
        let (s, n) = record_header(&page, BLOCK_HEADER, end, &"t").unwrap();
        assert_eq!(&page[s..s + n], b"hello");
        let (s2, n2) = record_header(&page, s + n, end, &"t").unwrap();
        assert_eq!(n2, 0);
        let (s3, n3) = record_header(&page, s2, end, &"t").unwrap();
        assert_eq!(&page[s3..s3 + n3], &[7u8; 100]);
        assert!(
            record_header(&page, s3 + n3, end, &"t").is_err(),
            "past the payload"
        );
        for i in 0..page.len() {
            let mut copy = page.clone();
            copy[i] ^= 0x10;
            assert!(
                matches!(verify(&mut copy, &"t"), Err(Error::Corrupted(_))),
                "flip at {i}"
            );
        }
    }

    #[test]
    fn max_record_fills_a_block_exactly() {
        let mut page = vec![0u8; 64];
        let mut b = BlockBuilder::new();
        assert!(b.push(&mut page, &vec![1u8; max_record_len(64)]));
        assert!(!b.push(&mut page, b""));
        assert!(!b.start(&mut page, 1));
    }

    #[test]
    fn a_record_continues_into_the_next_block() {
        let mut first = vec![0u8; 64];
        let mut b = BlockBuilder::new();
        assert!(b.start(&mut first, 100));
        assert_eq!(b.append(&mut first, &[5u8; 100], false), 40);
        b.seal(&mut first);
        let mut second = vec![0u8; 64];
        assert_eq!(b.append(&mut second, &[6u8; 60], true), 44);
        b.seal(&mut second);
        let info = verify(&mut first, &"t").unwrap();
        assert_eq!((info.count, info.continued, info.payload_end), (1, 0, 64));
        let info = verify(&mut second, &"t").unwrap();
        assert_eq!((info.count, info.continued, info.payload_end), (0, 44, 64));
    }
}
