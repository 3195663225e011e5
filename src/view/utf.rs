//! Java's modified UTF-8, the string format of `DataOutput.writeUTF`.
//!
//! A string is a sequence of UTF-16 code units. Each unit is written as in UTF-8, except
//! that U+0000 takes two bytes (`C0 80`) and a character outside the Basic Multilingual Plane
//! is written as its two surrogates, three bytes each (six bytes, where UTF-8 has four). The
//! encoded bytes follow a big-endian 2-byte length, so a string encodes to at most
//! [`MAX_ENCODED_LEN`] bytes.
//!
//! Decoding accepts what `DataInputStream.readUTF` accepts — one-byte units (including a raw
//! zero byte), two- and three-byte units, overlong forms included — and reports anything else
//! as `Corrupted`.

use crate::error::{Error, Result};

/// The most encoded bytes a string may have: what the 2-byte length can say.
pub const MAX_ENCODED_LEN: usize = u16::MAX as usize;

/// Encoded length of a Rust string in modified UTF-8 (without the 2-byte length).
///
/// Equal to the UTF-8 length, plus one for every NUL and two for every character outside the
/// Basic Multilingual Plane.
#[inline]
pub fn encoded_len(s: &str) -> usize {
    let bytes = s.as_bytes();
    // Four-byte UTF-8 sequences start with 0xF0..=0xF4.
    bytes.len()
        + bytes
            .iter()
            .map(|&b| usize::from(b == 0) + 2 * usize::from(b >= 0xF0))
            .sum::<usize>()
}

/// Encoded length of a sequence of UTF-16 code units in modified UTF-8.
#[inline]
pub fn encoded_len_utf16(units: &[u16]) -> usize {
    units.iter().map(|&u| unit_len(u)).sum()
}

#[inline(always)]
fn unit_len(unit: u16) -> usize {
    match unit {
        1..=0x7F => 1,
        0 | 0x80..=0x7FF => 2,
        _ => 3,
    }
}

/// Checks an encoded length against [`MAX_ENCODED_LEN`].
pub(crate) fn check_len(len: usize) -> Result<u16> {
    u16::try_from(len).map_err(|_| {
        Error::invalid(format!(
            "string needs {len} bytes of modified UTF-8, more than the {MAX_ENCODED_LEN} its \
             2-byte length can say; nothing written"
        ))
    })
}

/// Appends the modified UTF-8 of `unit` to `out`, returning the bytes used.
#[inline(always)]
fn put_unit(unit: u16, out: &mut [u8; 3]) -> usize {
    match unit {
        1..=0x7F => {
            out[0] = unit as u8;
            1
        }
        0 | 0x80..=0x7FF => {
            out[0] = 0xC0 | (unit >> 6) as u8;
            out[1] = 0x80 | (unit & 0x3F) as u8;
            2
        }
        _ => {
            out[0] = 0xE0 | (unit >> 12) as u8;
            out[1] = 0x80 | ((unit >> 6) & 0x3F) as u8;
            out[2] = 0x80 | (unit & 0x3F) as u8;
            3
        }
    }
}

/// Encodes UTF-16 units in chunks of at most `CHUNK` bytes, handing each chunk to `emit`.
/// No allocation.
pub(crate) fn encode_units(
    units: impl Iterator<Item = u16>,
    mut emit: impl FnMut(&[u8]) -> Result<()>,
) -> Result<()> {
    const CHUNK: usize = 256;
    let mut chunk = [0u8; CHUNK];
    let mut fill = 0;
    for unit in units {
        if fill + 3 > CHUNK {
            emit(&chunk[..fill])?;
            fill = 0;
        }
        let mut bytes = [0u8; 3];
        let n = put_unit(unit, &mut bytes);
        chunk[fill..fill + n].copy_from_slice(&bytes[..n]);
        fill += n;
    }
    if fill > 0 {
        emit(&chunk[..fill])?;
    }
    Ok(())
}

/// Encodes a Rust string to modified UTF-8 into a new vector (without the length).
pub fn encode(s: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(encoded_len(s));
    encode_units(s.encode_utf16(), |chunk| {
        out.extend_from_slice(chunk);
        Ok(())
    })
    .expect("encoding into a vector cannot fail");
    out
}

/// Decodes modified UTF-8 into UTF-16 code units, appended to `out`. On error `out` is left
/// as it was.
pub fn decode_utf16(bytes: &[u8], out: &mut Vec<u16>) -> Result<()> {
    let start = out.len();
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        let (unit, n) = match b >> 4 {
            0..=7 => (u16::from(b), 1),
            12 | 13 => match bytes.get(i + 1) {
                Some(&c) if c & 0xC0 == 0x80 => {
                    ((u16::from(b & 0x1F) << 6) | u16::from(c & 0x3F), 2)
                }
                _ => {
                    return Err(malformed(
                        out,
                        start,
                        i,
                        "a bad second byte of a two-byte unit",
                    ));
                }
            },
            14 => match (bytes.get(i + 1), bytes.get(i + 2)) {
                (Some(&c), Some(&d)) if c & 0xC0 == 0x80 && d & 0xC0 == 0x80 => (
                    (u16::from(b & 0x0F) << 12) | (u16::from(c & 0x3F) << 6) | u16::from(d & 0x3F),
                    3,
                ),
                _ => {
                    return Err(malformed(
                        out,
                        start,
                        i,
                        "a bad continuation of a three-byte unit",
                    ));
                }
            },
            _ => return Err(malformed(out, start, i, "a byte that cannot start a unit")),
        };
        out.push(unit);
        i += n;
    }
    Ok(())
}

#[cold]
fn malformed(out: &mut Vec<u16>, start: usize, at: usize, what: &str) -> Error {
    out.truncate(start);
    Error::Corrupted(format!(
        "malformed modified UTF-8: {what} at byte {at} of the string"
    ))
}

/// Decodes modified UTF-8 into a Rust string.
///
/// Fails with `Corrupted` for malformed input, and with `InvalidArgument` for a string that
/// holds an unpaired surrogate (valid in Java, not representable in UTF-8; read such strings
/// as UTF-16 with [`decode_utf16`]).
pub fn decode(bytes: &[u8]) -> Result<String> {
    // Where the bytes are valid UTF-8, they decode exactly as Java decodes them: UTF-8 forbids
    // the overlong forms (C0 80) and encoded surrogates (ED A0..ED BF) where the two differ.
    if let Ok(s) = std::str::from_utf8(bytes) {
        return Ok(s.to_owned());
    }
    let mut units = Vec::with_capacity(bytes.len());
    decode_utf16(bytes, &mut units)?;
    String::from_utf16(&units).map_err(|_| {
        Error::invalid(
            "the string holds an unpaired surrogate, which UTF-8 cannot represent; read it as \
             UTF-16 code units instead",
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_as_java_does() {
        assert_eq!(encode(""), b"");
        assert_eq!(encode("abc"), b"abc");
        assert_eq!(encode("a\0b"), [b'a', 0xC0, 0x80, b'b']);
        assert_eq!(encode("é"), [0xC3, 0xA9]);
        assert_eq!(encode("€"), [0xE2, 0x82, 0xAC]);
        // U+1F600 is D83D DE00 in UTF-16.
        assert_eq!(encode("😀"), [0xED, 0xA0, 0xBD, 0xED, 0xB8, 0x80]);
        for s in ["", "abc", "a\0b", "é€😀\u{7FF}\u{800}\u{FFFF}\u{10FFFF}"] {
            assert_eq!(encoded_len(s), encode(s).len(), "{s:?}");
            let units: Vec<u16> = s.encode_utf16().collect();
            assert_eq!(encoded_len_utf16(&units), encode(s).len());
            assert_eq!(decode(&encode(s)).unwrap(), s);
        }
    }

    #[test]
    fn decodes_what_java_accepts_and_rejects_the_rest() {
        assert_eq!(decode(&[0x00, b'x']).unwrap(), "\0x", "a raw zero byte");
        assert_eq!(decode(&[0xC1, 0x81]).unwrap(), "A", "an overlong form");
        let mut units = vec![7];
        decode_utf16(&[0xED, 0xA0, 0x80], &mut units).unwrap();
        assert_eq!(units, [7, 0xD800]);
        assert!(matches!(
            decode(&[0xED, 0xA0, 0x80]),
            Err(Error::InvalidArgument(_))
        ));
        for bad in [
            &[0x80][..],
            &[0xF0, 0x80, 0x80, 0x80],
            &[0xC3],
            &[0xE2, 0x82],
            &[0xC3, 0x41],
        ] {
            let mut units = vec![1, 2];
            assert!(
                matches!(decode_utf16(bad, &mut units), Err(Error::Corrupted(_))),
                "{bad:?}"
            );
            assert_eq!(units, [1, 2], "left as it was");
            assert!(matches!(decode(bad), Err(Error::Corrupted(_))));
        }
    }

    #[test]
    fn the_length_limit_is_the_two_byte_length() {
        assert_eq!(check_len(65535), Ok(65535));
        assert!(matches!(check_len(65536), Err(Error::InvalidArgument(_))));
    }
}
