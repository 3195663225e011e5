//! The block format of spill files.
//!
//! A spill file is a sequence of blocks, each exactly one page long, so that the writer writes
//! and the reader reads whole pages. A block is a 16-byte header followed by records, each a
//! little-endian `u32` length and the record's bytes; the rest of the page is zero.
//!
//! | offset | field |
//! |---|---|
//! | 0 | magic `MSB1` (`0x3142_534D` little endian) |
//! | 4 | bytes of records after the header (`u32`) |
//! | 8 | number of records (`u32`) |
//! | 12 | CRC-32 (IEEE) of the whole page with this field taken as zero |
//!
//! A record never spans two blocks, so a reader returns every record as one slice of its
//! read page, without copying. Any changed byte of a block fails its checksum, so a corrupted
//! block is reported, never read as data.

use crate::error::{Error, Result};

/// Bytes of the block header.
pub const BLOCK_HEADER: usize = 16;
/// Bytes of the length before each record.
pub const RECORD_HEADER: usize = 4;
const MAGIC: u32 = u32::from_le_bytes(*b"MSB1");

/// The longest record a block of `page_size` bytes holds.
pub fn max_record_len(page_size: usize) -> usize {
    page_size.saturating_sub(BLOCK_HEADER + RECORD_HEADER)
}

/// Fills one page with records, block by block.
#[derive(Debug, Default)]
pub struct BlockBuilder {
    fill: usize,
    count: u32,
}

impl BlockBuilder {
    /// An empty block.
    pub fn new() -> Self {
        BlockBuilder {
            fill: BLOCK_HEADER,
            count: 0,
        }
    }

    /// Number of records in the block.
    pub fn count(&self) -> u32 {
        self.count
    }

    /// Appends `record` to the block in `page`, or returns `false` (and writes nothing) when
    /// the block has no room left for it.
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

    /// Writes the header and checksum and zeroes the unused tail; the page is then one whole
    /// block, ready to write. The builder starts over for the next block.
    pub fn seal(&mut self, page: &mut [u8]) {
        page[self.fill..].fill(0);
        page[0..4].copy_from_slice(&MAGIC.to_le_bytes());
        page[4..8].copy_from_slice(&((self.fill - BLOCK_HEADER) as u32).to_le_bytes());
        page[8..12].copy_from_slice(&self.count.to_le_bytes());
        page[12..16].fill(0);
        let crc = crc32fast::hash(page);
        page[12..16].copy_from_slice(&crc.to_le_bytes());
        *self = BlockBuilder::new();
    }
}

fn u32_at(page: &[u8], offset: usize) -> u32 {
    u32::from_le_bytes(page[offset..offset + 4].try_into().expect("four bytes"))
}

/// Checks a block read into `page` and returns its number of records. `what` names the block
/// in the error ("spill file /tmp/x, block 3").
pub fn verify(page: &mut [u8], what: &dyn std::fmt::Display) -> Result<u32> {
    if u32_at(page, 0) != MAGIC {
        return Err(Error::Corrupted(format!(
            "{what}: not a memseg spill block (bad magic)"
        )));
    }
    let stored = u32_at(page, 12);
    page[12..16].fill(0);
    let crc = crc32fast::hash(page);
    page[12..16].copy_from_slice(&stored.to_le_bytes());
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
    Ok(u32_at(page, 8))
}

/// Reads the record at `pos` of a verified block: returns the record's range in the page and
/// the position of the next record.
#[inline]
pub fn record_at(page: &[u8], pos: usize, what: &dyn std::fmt::Display) -> Result<(usize, usize)> {
    let payload_end = BLOCK_HEADER + u32_at(page, 4) as usize;
    if pos + RECORD_HEADER > payload_end {
        return Err(Error::Corrupted(format!(
            "{what}: record count exceeds the block's payload"
        )));
    }
    let len = u32_at(page, pos) as usize;
    let start = pos + RECORD_HEADER;
    if len > payload_end - start {
        return Err(Error::Corrupted(format!(
            "{what}: record of {len} bytes at {pos} runs past the payload"
        )));
    }
    Ok((start, start + len))
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
        assert_eq!(verify(&mut page, &"t").unwrap(), 3);
        let (s, e) = record_at(&page, BLOCK_HEADER, &"t").unwrap();
        assert_eq!(&page[s..e], b"hello");
        let (s2, e2) = record_at(&page, e, &"t").unwrap();
        assert_eq!(s2, e2);
        let (s3, e3) = record_at(&page, e2, &"t").unwrap();
        assert_eq!(&page[s3..e3], &[7u8; 100]);
        assert!(record_at(&page, e3, &"t").is_err(), "past the payload");
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
    }
}
