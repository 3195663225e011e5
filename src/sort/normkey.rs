//! Normalized keys: byte strings whose unsigned lexicographic order (`memcmp`) is the order of
//! the values they encode, so that the sorter compares keys as bytes.
//!
//! Each `put_*` writes the key into the front of `dst` and returns the bytes written; a `dst`
//! too short is an error and nothing is written. Integers are big endian (signed ones with the
//! sign bit flipped), floats in IEEE 754 total order (`-NaN < -inf < … < -0.0 < +0.0 < … <
//! +inf < +NaN`, as [`f64::total_cmp`]), byte strings are copied and padded with zeros.
//! [`invert`] turns an ascending key into a descending one.

use crate::error::{Error, Result};

fn target(dst: &mut [u8], len: usize) -> Result<&mut [u8]> {
    let available = dst.len();
    dst.get_mut(..len).ok_or_else(|| {
        Error::invalid(format!(
            "normalized key needs {len} bytes, the destination has {available}"
        ))
    })
}

/// An unsigned integer: 8 bytes, big endian.
pub fn put_u64(dst: &mut [u8], value: u64) -> Result<usize> {
    target(dst, 8)?.copy_from_slice(&value.to_be_bytes());
    Ok(8)
}

/// An unsigned integer: 4 bytes, big endian.
pub fn put_u32(dst: &mut [u8], value: u32) -> Result<usize> {
    target(dst, 4)?.copy_from_slice(&value.to_be_bytes());
    Ok(4)
}

/// A signed integer: 8 bytes, big endian with the sign bit flipped.
pub fn put_i64(dst: &mut [u8], value: i64) -> Result<usize> {
    put_u64(dst, (value as u64) ^ (1 << 63))
}

/// A signed integer: 4 bytes, big endian with the sign bit flipped.
pub fn put_i32(dst: &mut [u8], value: i32) -> Result<usize> {
    put_u32(dst, (value as u32) ^ (1 << 31))
}

/// A double in total order: 8 bytes.
pub fn put_f64(dst: &mut [u8], value: f64) -> Result<usize> {
    let bits = value.to_bits();
    let key = if bits >> 63 == 1 {
        !bits
    } else {
        bits | 1 << 63
    };
    put_u64(dst, key)
}

/// A float in total order: 4 bytes.
pub fn put_f32(dst: &mut [u8], value: f32) -> Result<usize> {
    let bits = value.to_bits();
    let key = if bits >> 31 == 1 {
        !bits
    } else {
        bits | 1 << 31
    };
    put_u32(dst, key)
}

/// A byte string in `len` bytes: copied, cut at `len` or padded with zeros to it. Strings that
/// differ only beyond `len` bytes, or only in trailing zeros, get equal keys.
pub fn put_bytes(dst: &mut [u8], value: &[u8], len: usize) -> Result<usize> {
    let out = target(dst, len)?;
    let n = value.len().min(len);
    out[..n].copy_from_slice(&value[..n]);
    out[n..].fill(0);
    Ok(len)
}

/// Turns a key into its descending counterpart (every byte complemented).
pub fn invert(key: &mut [u8]) {
    key.iter_mut().for_each(|b| *b = !*b);
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn key<T: Copy>(f: fn(&mut [u8], T) -> Result<usize>, v: T) -> Vec<u8> {
        let mut b = [0u8; 8];
        let n = f(&mut b, v).unwrap();
        b[..n].to_vec()
    }

    /// Few cases under Miri, and no failure persistence there (its isolation forbids files).
    fn config() -> ProptestConfig {
        ProptestConfig {
            cases: if cfg!(miri) { 8 } else { 256 },
            failure_persistence: if cfg!(miri) {
                None
            } else {
                ProptestConfig::default().failure_persistence
            },
            ..ProptestConfig::default()
        }
    }

    proptest! {
        #![proptest_config(config())]

        #[test]
        fn integer_keys_order_as_their_values(a: i64, b: i64, c: u64, d: u64, e: i32, f: i32) {
            prop_assert_eq!(key(put_i64, a).cmp(&key(put_i64, b)), a.cmp(&b));
            prop_assert_eq!(key(put_u64, c).cmp(&key(put_u64, d)), c.cmp(&d));
            prop_assert_eq!(key(put_i32, e).cmp(&key(put_i32, f)), e.cmp(&f));
            prop_assert_eq!(key(put_u32, e as u32).cmp(&key(put_u32, f as u32)), (e as u32).cmp(&(f as u32)));
        }

        #[test]
        fn float_keys_follow_total_order(a: f64, b: f64, c: f32, d: f32) {
            prop_assert_eq!(key(put_f64, a).cmp(&key(put_f64, b)), a.total_cmp(&b));
            prop_assert_eq!(key(put_f32, c).cmp(&key(put_f32, d)), c.total_cmp(&d));
        }

        #[test]
        fn byte_keys_order_as_their_padded_prefixes(a: Vec<u8>, b: Vec<u8>, len in 0usize..12) {
            let mut ka = vec![0u8; len];
            let mut kb = vec![0u8; len];
            put_bytes(&mut ka, &a, len).unwrap();
            put_bytes(&mut kb, &b, len).unwrap();
            let pad = |v: &[u8]| { let mut p = v[..v.len().min(len)].to_vec(); p.resize(len, 0); p };
            prop_assert_eq!(ka.cmp(&kb), pad(&a).cmp(&pad(&b)));
            let (mut ia, mut ib) = (ka.clone(), kb.clone());
            invert(&mut ia);
            invert(&mut ib);
            prop_assert_eq!(ia.cmp(&ib), kb.cmp(&ka));
        }
    }

    #[test]
    fn special_floats_and_short_destinations() {
        let order = [
            f64::NEG_INFINITY,
            -1.0,
            -0.0,
            0.0,
            f64::MIN_POSITIVE,
            1.0,
            f64::INFINITY,
            f64::NAN,
        ];
        for w in order.windows(2) {
            assert!(
                key(put_f64, w[0]) < key(put_f64, w[1]),
                "{} < {}",
                w[0],
                w[1]
            );
        }
        let mut short = [9u8; 3];
        assert!(matches!(
            put_u32(&mut short, 1),
            Err(Error::InvalidArgument(_))
        ));
        assert!(put_bytes(&mut short, b"abcd", 4).is_err());
        assert_eq!(short, [9, 9, 9], "nothing written");
    }
}
