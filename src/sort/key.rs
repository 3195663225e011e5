//! What a record's sort key is, and how two records compare.

use std::cmp::Ordering;
use std::fmt;
use std::sync::Arc;

use crate::error::{Error, Result};

/// A host-defined comparison of two whole records, consulted when their key prefixes tie.
pub type CompareFn = Arc<dyn Fn(&[u8], &[u8]) -> Ordering + Send + Sync>;

/// The longest key prefix an index entry holds.
pub const MAX_PREFIX: usize = 56;

/// Where the key is in a record and how records compare.
///
/// The key is `key_length` bytes at `key_offset` of every record; its first `prefix_length`
/// bytes go into the index entry and are compared as unsigned bytes (a normalized key, see
/// [`normkey`](super::normkey)). When two prefixes tie, `compare` decides if given (it sees
/// both whole records and must agree with the prefix order); otherwise the rest of the key is
/// compared as bytes. With `key_length <= prefix_length` and no `compare`, the prefix alone
/// decides and the sorter never touches the records while sorting.
#[derive(Clone)]
pub struct KeyConfig {
    /// Offset of the key in each record.
    pub key_offset: usize,
    /// Bytes of key; every record must be at least `key_offset + key_length` long.
    pub key_length: usize,
    /// Bytes of the key kept in the index (at most [`MAX_PREFIX`] and at most `key_length`).
    pub prefix_length: usize,
    /// Comparison of whole records for prefixes that tie.
    pub compare: Option<CompareFn>,
}

impl fmt::Debug for KeyConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyConfig")
            .field("key_offset", &self.key_offset)
            .field("key_length", &self.key_length)
            .field("prefix_length", &self.prefix_length)
            .field("compare", &self.compare.as_ref().map(|_| "host function"))
            .finish()
    }
}

impl KeyConfig {
    /// A key of `key_length` bytes at `key_offset`, with an index prefix of up to 8 bytes,
    /// compared as bytes.
    pub fn bytes(key_offset: usize, key_length: usize) -> Self {
        KeyConfig {
            key_offset,
            key_length,
            prefix_length: key_length.min(8),
            compare: None,
        }
    }

    /// Checks the configuration.
    pub fn validate(&self) -> Result<()> {
        if self.prefix_length > MAX_PREFIX {
            return Err(Error::invalid(format!(
                "key prefix of {} bytes exceeds the maximum of {MAX_PREFIX}",
                self.prefix_length
            )));
        }
        if self.prefix_length > self.key_length {
            return Err(Error::invalid(format!(
                "key prefix of {} bytes is longer than the key ({} bytes)",
                self.prefix_length, self.key_length
            )));
        }
        if self
            .key_offset
            .checked_add(self.key_length)
            .is_none_or(|e| e > u32::MAX as usize)
        {
            return Err(Error::invalid(format!(
                "key at offset {} of {} bytes ends beyond any record",
                self.key_offset, self.key_length
            )));
        }
        Ok(())
    }

    /// The shortest record this key fits in.
    pub fn min_record_len(&self) -> usize {
        self.key_offset + self.key_length
    }

    /// Whether ties on the prefix need a look at the records.
    #[inline]
    pub fn needs_full_compare(&self) -> bool {
        self.compare.is_some() || self.key_length > self.prefix_length
    }

    /// The prefix of a record (which is at least [`min_record_len`](Self::min_record_len)).
    #[inline]
    pub fn prefix<'r>(&self, record: &'r [u8]) -> &'r [u8] {
        &record[self.key_offset..self.key_offset + self.prefix_length]
    }

    /// Order of two records whose prefixes tie.
    #[inline]
    pub fn compare_tied(&self, a: &[u8], b: &[u8]) -> Ordering {
        match &self.compare {
            Some(f) => f(a, b),
            None => {
                let from = self.key_offset + self.prefix_length;
                let to = self.key_offset + self.key_length;
                a[from..to].cmp(&b[from..to])
            }
        }
    }

    /// Order of two records.
    #[inline]
    pub fn compare_records(&self, a: &[u8], b: &[u8]) -> Ordering {
        match self.prefix(a).cmp(self.prefix(b)) {
            Ordering::Equal if self.needs_full_compare() => self.compare_tied(a, b),
            order => order,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_compare_by_prefix_then_rest_or_host_function() {
        let k = KeyConfig {
            key_offset: 1,
            key_length: 3,
            prefix_length: 1,
            compare: None,
        };
        k.validate().unwrap();
        assert_eq!(k.compare_records(b"xab1", b"yab1"), Ordering::Equal);
        assert_eq!(k.compare_records(b"xac0", b"xab0"), Ordering::Greater);
        assert_eq!(k.compare_records(b"xbb0", b"xca0"), Ordering::Less);
        let reverse: CompareFn = Arc::new(|a: &[u8], b: &[u8]| b.cmp(a));
        let k = KeyConfig {
            compare: Some(reverse),
            ..k
        };
        assert_eq!(
            k.compare_records(b"xac0", b"xab0"),
            Ordering::Less,
            "host decides ties"
        );
        assert_eq!(
            k.compare_records(b"xbb0", b"xca0"),
            Ordering::Less,
            "prefix first"
        );
    }

    #[test]
    fn bad_configurations_are_refused() {
        let mut k = KeyConfig::bytes(0, 100);
        assert_eq!(k.prefix_length, 8);
        k.prefix_length = 57;
        assert!(k.validate().is_err());
        let k = KeyConfig {
            prefix_length: 4,
            ..KeyConfig::bytes(0, 3)
        };
        assert!(k.validate().is_err());
        assert!(KeyConfig::bytes(usize::MAX, 2).validate().is_err());
    }
}
