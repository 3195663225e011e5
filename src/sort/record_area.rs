//! The record area of a sort buffer: records laid end to end across its pages.
//!
//! Each record is a native `u32` length followed by its bytes. The length never spans two
//! pages; the bytes of a record longer than a page (less the length) go on into the following
//! pages, as Flink's sorter writes records through a paged output view. A record that fits a
//! page never starts on one without room for it, so only records longer than a page straddle,
//! and every other record is one slice of one page. A record is named by a pointer: its page
//! number << 32 | the offset of its length in that page.

use crate::segment::Segment;

/// Bytes of the length before each record.
pub(crate) const LEN: usize = 4;

/// The pages of a record area, in order.
#[derive(Clone, Copy)]
pub(crate) struct RecordArea<'a> {
    pub(crate) pages: &'a [Segment],
    pub(crate) page_size: usize,
}

impl<'a> RecordArea<'a> {
    /// The record `pointer` names (which the sort buffer wrote into these pages).
    #[inline(always)]
    pub(crate) fn get(&self, pointer: u64) -> RecordRef<'a> {
        let page = (pointer >> 32) as usize;
        let offset = (pointer & 0xFFFF_FFFF) as usize;
        let bytes = self.pages[page].as_slice();
        let len =
            u32::from_ne_bytes(bytes[offset..offset + LEN].try_into().expect("four")) as usize;
        let start = offset + LEN;
        let head = &bytes[start..self.page_size.min(start + len)];
        RecordRef {
            head,
            rest: &self.pages[page + 1..],
            len,
        }
    }
}

/// A record in the pages of a sort buffer, not copied: the part in its first page, and the
/// pages it goes on into when it straddles.
#[derive(Clone, Copy)]
pub struct RecordRef<'a> {
    head: &'a [u8],
    rest: &'a [Segment],
    len: usize,
}

impl<'a> RecordRef<'a> {
    /// Bytes in the record.
    #[inline]
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the record is empty.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The record as one slice of its page, or `None` when it straddles pages.
    #[inline(always)]
    pub fn as_slice(&self) -> Option<&'a [u8]> {
        (self.head.len() == self.len).then_some(self.head)
    }

    /// The record's consecutive parts, one per page it lies in.
    pub fn parts(&self) -> impl Iterator<Item = &'a [u8]> + 'a {
        let mut left = self.len - self.head.len();
        let rest = self.rest;
        std::iter::once(self.head).chain(rest.iter().map_while(move |page| {
            if left == 0 {
                return None;
            }
            let n = left.min(page.size());
            left -= n;
            Some(&page.as_slice()[..n])
        }))
    }

    /// Replaces the contents of `out` with the record's first `upto` bytes (all of them if it
    /// is shorter).
    pub fn copy_prefix_into(&self, upto: usize, out: &mut Vec<u8>) {
        out.clear();
        let mut left = upto.min(self.len);
        out.reserve_exact(left);
        for part in self.parts() {
            let n = left.min(part.len());
            out.extend_from_slice(&part[..n]);
            left -= n;
            if left == 0 {
                break;
            }
        }
    }

    /// The record, copied.
    pub fn to_vec(&self) -> Vec<u8> {
        let mut v = Vec::with_capacity(self.len);
        self.copy_prefix_into(self.len, &mut v);
        v
    }
}

impl std::fmt::Debug for RecordRef<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecordRef")
            .field("len", &self.len)
            .field("straddles", &self.as_slice().is_none())
            .finish()
    }
}
