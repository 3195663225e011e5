//! Records in the format of the classic sort benchmark (gensort): 100 bytes with a 10-byte
//! key, generated deterministically from a seed; the validator's checks (order, count, and an
//! order-independent checksum: the sum of every record's CRC-32); and sizes such as `256M`.

/// Bytes per record.
pub const RECORD: usize = 100;
/// Bytes of key at the start of each record.
pub const KEY: usize = 10;

fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Writes record number `i` of the sequence of `seed` into `out`.
///
/// Binary form (gensort's default): 10 random key bytes, `00 11`, the record number as 32 hex
/// digits, `88 99 AA BB`, 48 filler bytes, `CC DD EE FF`. ASCII form (`gensort -a`): 10
/// printable key characters, two spaces, the record number in hex, two spaces, 52 filler
/// characters, `\r\n` — one line per record, which line-oriented tools like GNU sort take.
pub fn generate(seed: u64, i: u64, ascii: bool, out: &mut [u8; RECORD]) {
    let a = mix(seed ^ mix(i.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ 0x5EED));
    let b = mix(a ^ 0xD1B5_4A32_D192_ED03);
    let hex = format!("{i:032X}");
    let filler = |k: usize| b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"[(i as usize + k) % 36];
    if ascii {
        for (k, byte) in out[..KEY].iter_mut().enumerate() {
            let r = if k < 8 {
                a >> (8 * k)
            } else {
                b >> (8 * (k - 8))
            };
            *byte = b' ' + ((r & 0xFF) % 95) as u8;
        }
        out[10..12].copy_from_slice(b"  ");
        out[12..44].copy_from_slice(hex.as_bytes());
        out[44..46].copy_from_slice(b"  ");
        for (k, byte) in out[46..98].iter_mut().enumerate() {
            *byte = filler(k);
        }
        out[98..100].copy_from_slice(b"\r\n");
    } else {
        out[..8].copy_from_slice(&a.to_le_bytes());
        out[8..10].copy_from_slice(&(b as u16).to_le_bytes());
        out[10..12].copy_from_slice(&[0x00, 0x11]);
        out[12..44].copy_from_slice(hex.as_bytes());
        out[44..48].copy_from_slice(&[0x88, 0x99, 0xAA, 0xBB]);
        for (k, byte) in out[48..96].iter_mut().enumerate() {
            *byte = filler(k);
        }
        out[96..100].copy_from_slice(&[0xCC, 0xDD, 0xEE, 0xFF]);
    }
}

/// What the validator finds in a sequence of records.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Summary {
    /// Records seen.
    pub records: u64,
    /// Sum of the CRC-32 of every record: equal for the same records in any order.
    pub checksum: u128,
    /// Records whose key equals the previous record's.
    pub duplicate_keys: u64,
    /// Index of the first record whose key is smaller than the previous one's.
    pub first_unordered: Option<u64>,
    previous: Option<[u8; KEY]>,
}

impl Summary {
    /// Takes the next record into account.
    #[inline]
    pub fn add(&mut self, record: &[u8]) {
        self.checksum = self
            .checksum
            .wrapping_add(u128::from(crc32fast::hash(record)));
        let key: [u8; KEY] = record[..KEY].try_into().expect("a record holds a key");
        if let Some(previous) = self.previous {
            if key < previous && self.first_unordered.is_none() {
                self.first_unordered = Some(self.records);
            }
            if key == previous {
                self.duplicate_keys += 1;
            }
        }
        self.previous = Some(key);
        self.records += 1;
    }
}

/// Parses a size: a number with an optional unit `K`, `M`, `G` (powers of 1024; `KiB`, `MB`
/// and the like are read the same way).
pub fn parse_size(text: &str) -> Result<usize, String> {
    let t = text.trim();
    let digits = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (number, unit) = t.split_at(digits);
    let n: usize = number
        .parse()
        .map_err(|_| format!("`{text}` is not a size (such as 4096, 64K, 256M or 1G)"))?;
    let shift = match unit.trim().to_ascii_uppercase().as_str() {
        "" | "B" => 0,
        "K" | "KB" | "KIB" => 10,
        "M" | "MB" | "MIB" => 20,
        "G" | "GB" | "GIB" => 30,
        _ => return Err(format!("`{text}`: unknown unit `{unit}` (use K, M or G)")),
    };
    n.checked_mul(1 << shift)
        .ok_or_else(|| format!("`{text}` is too large"))
}

/// A size in human units.
pub fn human(bytes: u64) -> String {
    let b = bytes as f64;
    if b >= (1u64 << 30) as f64 {
        format!("{:.2} GiB", b / (1u64 << 30) as f64)
    } else if b >= (1u64 << 20) as f64 {
        format!("{:.1} MiB", b / (1u64 << 20) as f64)
    } else if b >= 1024.0 {
        format!("{:.1} KiB", b / 1024.0)
    } else {
        format!("{bytes} B")
    }
}

/// The process's peak resident memory (VmHWM), if the system tells.
pub fn peak_rss() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_are_deterministic_and_in_their_format() {
        let (mut a, mut b) = ([0u8; RECORD], [0u8; RECORD]);
        generate(1, 5, false, &mut a);
        generate(1, 5, false, &mut b);
        assert_eq!(a, b);
        generate(2, 5, false, &mut b);
        assert_ne!(a[..KEY], b[..KEY]);
        assert_eq!(&a[12..44], format!("{:032X}", 5).as_bytes());
        assert_eq!(a[96..], [0xCC, 0xDD, 0xEE, 0xFF]);
        generate(1, 5, true, &mut a);
        assert!(a[..KEY].iter().all(|c| (b' '..=b'~').contains(c)));
        assert_eq!(&a[98..], b"\r\n");
        assert!(!a[..98].contains(&b'\n'));
    }

    #[test]
    fn the_summary_catches_disorder_and_is_order_independent() {
        let mut s = Summary::default();
        let mut t = Summary::default();
        let mut r = [[0u8; RECORD]; 3];
        for (i, rec) in r.iter_mut().enumerate() {
            generate(3, i as u64, false, rec);
        }
        r.sort();
        for rec in &r {
            s.add(rec);
        }
        for rec in r.iter().rev() {
            t.add(rec);
        }
        assert_eq!(s.checksum, t.checksum);
        assert_eq!(s.first_unordered, None);
        assert_eq!(t.first_unordered, Some(1));
    }

    #[test]
    fn sizes_parse() {
        assert_eq!(parse_size("4096"), Ok(4096));
        assert_eq!(parse_size("64K"), Ok(65536));
        assert_eq!(parse_size("256M"), Ok(256 << 20));
        assert_eq!(parse_size("1GiB"), Ok(1 << 30));
        assert!(parse_size("12Q").is_err());
        assert!(parse_size("M").is_err());
    }
}
