//! Hashes and the identifiers derived from them.

use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};
use std::fmt;

/// A 32-byte digest (sha256 unless said otherwise).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize)]
pub struct Hash32(pub [u8; 32]);

impl Hash32 {
    pub const ZERO: Hash32 = Hash32([0; 32]);

    /// sha256 over the concatenation of `parts`.
    pub fn sha256(parts: &[&[u8]]) -> Hash32 {
        let mut hasher = Sha256::new();
        for part in parts {
            hasher.update(part);
        }
        Hash32(hasher.finalize().into())
    }

    pub fn to_hex(&self) -> String {
        to_hex(&self.0)
    }

    /// Parses 64 hex digits, with or without a `0x` prefix.
    pub fn from_hex(text: &str) -> Option<Hash32> {
        let bytes = from_hex(text)?;
        Some(Hash32(bytes.try_into().ok()?))
    }
}

impl fmt::Debug for Hash32 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "0x{}", &self.to_hex()[..12])
    }
}

impl fmt::Display for Hash32 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "0x{}", self.to_hex())
    }
}

pub fn to_hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut text = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        text.push(DIGITS[usize::from(byte >> 4)] as char);
        text.push(DIGITS[usize::from(byte & 0xf)] as char);
    }
    text
}

pub fn from_hex(text: &str) -> Option<Vec<u8>> {
    let text = text.strip_prefix("0x").unwrap_or(text);
    if !text.len().is_multiple_of(2) {
        return None;
    }
    let digit = |c: u8| -> Option<u8> {
        match c {
            b'0'..=b'9' => Some(c - b'0'),
            b'a'..=b'f' => Some(c - b'a' + 10),
            b'A'..=b'F' => Some(c - b'A' + 10),
            _ => None,
        }
    };
    text.as_bytes().chunks(2).map(|pair| Some(digit(pair[0])? << 4 | digit(pair[1])?)).collect()
}

/// The identity of a deal: sha256 of its canonical terms.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct DealId(pub Hash32);

/// The identity of a reservation: derived from its deal and leg, so each leg of a
/// deal can be reserved at most once on its network.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct ReservationId(pub Hash32);

/// An identifier shows as its hash; in debug output, short and after
/// `$kind:`, so a log line says what the hash identifies.
macro_rules! hash_id_formats {
    ($type:ty, $kind:literal) => {
        impl fmt::Debug for $type {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, concat!($kind, ":{:?}"), self.0)
            }
        }
        impl fmt::Display for $type {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(&self.0, f)
            }
        }
    };
}

hash_id_formats!(DealId, "deal");
hash_id_formats!(ReservationId, "reservation");

/// Binary Merkle root over leaf hashes. Leaves and inner nodes are domain
/// separated, and an odd node is promoted rather than paired with itself, so two
/// different leaf lists never share a root.
pub fn merkle_root(leaves: &[Hash32]) -> Hash32 {
    if leaves.is_empty() {
        return Hash32::sha256(&[b"interlock/merkle/empty"]);
    }
    let mut level: Vec<Hash32> = leaves.iter().map(|leaf| Hash32::sha256(&[&[0u8], &leaf.0])).collect();
    while level.len() > 1 {
        level = level
            .chunks(2)
            .map(|pair| match pair {
                [left, right] => Hash32::sha256(&[&[1u8], &left.0, &right.0]),
                [single] => *single,
                _ => unreachable!("chunks(2) yields one or two items"),
            })
            .collect();
    }
    level[0]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trips_and_rejects_bad_digits() {
        let hash = Hash32::sha256(&[b"abc"]);
        assert_eq!(Hash32::from_hex(&hash.to_hex()), Some(hash));
        assert_eq!(Hash32::from_hex(&format!("0x{}", hash.to_hex())), Some(hash));
        assert_eq!(Hash32::from_hex("zz"), None);
        assert_eq!(Hash32::from_hex("abc"), None);
    }

    #[test]
    fn merkle_root_depends_on_every_leaf_and_order() {
        let leaves: Vec<Hash32> = (0u8..5).map(|i| Hash32::sha256(&[&[i]])).collect();
        let root = merkle_root(&leaves);
        let mut swapped = leaves.clone();
        swapped.swap(1, 2);
        assert_ne!(root, merkle_root(&swapped));
        assert_ne!(root, merkle_root(&leaves[..4]));
        // Duplicating the last leaf must not give the same root (CVE-2012-2459 shape).
        let mut duplicated = leaves.clone();
        duplicated.push(leaves[4]);
        assert_ne!(root, merkle_root(&duplicated));
    }
}
