//! Notaries' keys on Litecoin. A deal's terms name each notary by its
//! Ethereum-style address (the last 20 bytes of the keccak-256 of its
//! uncompressed public key, what `ecrecover` returns); a Litecoin script
//! names it by its compressed public key. [`notary_address`] tells which key
//! is which notary's.
//!
//! The core crate hashes with keccak-256 internally but offers no way to
//! derive an address from a public key, and this crate does not depend on a
//! keccak crate, so the hash is computed here: one block of Keccak-f\[1600\]
//! is all a 64-byte key needs.

use bitcoin::secp256k1::{PublicKey, Secp256k1, SecretKey};
use interlock_chain::ChainError;
use interlock_core::crypto::NotaryKey;
use interlock_core::NotaryAddress;

/// Keccak-256 absorbs this many bytes per permutation.
const RATE_BYTES: usize = 136;
const ROUND_CONSTANTS: [u64; 24] = [
    0x0000_0000_0000_0001,
    0x0000_0000_0000_8082,
    0x8000_0000_0000_808a,
    0x8000_0000_8000_8000,
    0x0000_0000_0000_808b,
    0x0000_0000_8000_0001,
    0x8000_0000_8000_8081,
    0x8000_0000_0000_8009,
    0x0000_0000_0000_008a,
    0x0000_0000_0000_0088,
    0x0000_0000_8000_8009,
    0x0000_0000_8000_000a,
    0x0000_0000_8000_808b,
    0x8000_0000_0000_008b,
    0x8000_0000_0000_8089,
    0x8000_0000_0000_8003,
    0x8000_0000_0000_8002,
    0x8000_0000_0000_0080,
    0x0000_0000_0000_800a,
    0x8000_0000_8000_000a,
    0x8000_0000_8000_8081,
    0x8000_0000_0000_8080,
    0x0000_0000_8000_0001,
    0x8000_0000_8000_8008,
];
/// The rotation of each lane along the ρ-π walk, and the lane it moves to.
const RHO: [u32; 24] = [1, 3, 6, 10, 15, 21, 28, 36, 45, 55, 2, 14, 27, 41, 56, 8, 25, 43, 62, 18, 39, 61, 20, 44];
const PI: [usize; 24] = [10, 7, 11, 17, 18, 3, 5, 16, 8, 21, 24, 4, 15, 23, 19, 13, 12, 2, 20, 14, 22, 9, 6, 1];

/// Keccak-f\[1600\] on a state of 25 lanes, lane (x, y) at `x + 5 y`.
fn permute(state: &mut [u64; 25]) {
    for round_constant in ROUND_CONSTANTS {
        // θ: every lane takes the parity of two neighbouring columns.
        let mut parity = [0u64; 5];
        for (index, lane) in state.iter().enumerate() {
            parity[index % 5] ^= lane;
        }
        for (index, lane) in state.iter_mut().enumerate() {
            let x = index % 5;
            *lane ^= parity[(x + 4) % 5] ^ parity[(x + 1) % 5].rotate_left(1);
        }
        // ρ and π: rotate each lane and move it along one cycle of 24 lanes.
        let mut moving = state[1];
        for (rotation, to) in RHO.into_iter().zip(PI) {
            let next = state[to];
            state[to] = moving.rotate_left(rotation);
            moving = next;
        }
        // χ: each row mixes with itself.
        for row in state.chunks_exact_mut(5) {
            let before = [row[0], row[1], row[2], row[3], row[4]];
            for x in 0..5 {
                row[x] = before[x] ^ (!before[(x + 1) % 5] & before[(x + 2) % 5]);
            }
        }
        // ι
        state[0] ^= round_constant;
    }
}

/// Keccak-256 (Ethereum's, with the original 0x01 padding, not SHA3-256's
/// 0x06) of an input that fits one block.
pub(super) fn keccak256_short(input: &[u8]) -> [u8; 32] {
    assert!(input.len() < RATE_BYTES, "one block of keccak-256 holds {} bytes, not {}", RATE_BYTES - 1, input.len());
    let mut block = [0u8; RATE_BYTES];
    block[..input.len()].copy_from_slice(input);
    block[input.len()] ^= 0x01;
    block[RATE_BYTES - 1] ^= 0x80;
    let mut state = [0u64; 25];
    for (lane, bytes) in state.iter_mut().zip(block.chunks_exact(8)) {
        *lane ^= u64::from_le_bytes(bytes.try_into().expect("8 bytes"));
    }
    permute(&mut state);
    let mut digest = [0u8; 32];
    for (bytes, lane) in digest.chunks_exact_mut(8).zip(state) {
        bytes.copy_from_slice(&lane.to_le_bytes());
    }
    digest
}

/// The notary address of a compressed secp256k1 public key.
pub fn notary_address(key: &[u8; 33]) -> Result<NotaryAddress, ChainError> {
    let key = PublicKey::from_slice(key).map_err(|error| {
        ChainError::rejected(format!(
            "notary key {} is not a compressed secp256k1 public key: {error}",
            interlock_core::hash::to_hex(key)
        ))
    })?;
    let digest = keccak256_short(&key.serialize_uncompressed()[1..]);
    Ok(NotaryAddress(digest[12..].try_into().expect("20 bytes")))
}

fn secret_of(key: &NotaryKey) -> SecretKey {
    SecretKey::from_slice(&key.seed()).expect("a notary key's seed is a valid secp256k1 scalar")
}

/// A notary's compressed public key: what a leg's script names it by.
pub fn notary_public_key(key: &NotaryKey) -> [u8; 33] {
    PublicKey::from_secret_key(&Secp256k1::signing_only(), &secret_of(key)).serialize()
}

#[cfg(test)]
mod tests {
    use super::*;
    use bitcoin::secp256k1::Message;
    use interlock_core::crypto::{decision_digest, eip712_domain_separator, Decision};
    use interlock_core::{DealId, Hash32};

    fn hex(bytes: &[u8]) -> String {
        interlock_core::hash::to_hex(bytes)
    }

    #[test]
    fn keccak_matches_known_digests_and_the_core_crates_own() {
        assert_eq!(hex(&keccak256_short(b"")), "c5d2460186f7233c927e7db2dcc703c0e500b653ca82273b7bfad8045d85a470");
        assert_eq!(hex(&keccak256_short(b"abc")), "4e03657aea45a94fc7d47ba826c8d667c0d1e6e33a64a036ec44f58fa12d6c45");
        // The core's EIP-712 digests are keccak-256 of inputs up to 66 bytes.
        let type_hash = keccak256_short(b"EIP712Domain(string name,string version)");
        let mut domain = type_hash.to_vec();
        domain.extend(keccak256_short(b"Interlock"));
        domain.extend(keccak256_short(b"1"));
        assert_eq!(keccak256_short(&domain), eip712_domain_separator());
        let deal = DealId(Hash32::sha256(&[b"deal"]));
        let mut word = [0u8; 32];
        word[31] = Decision::Abort.code();
        let mut fields = keccak256_short(b"Decision(bytes32 dealId,uint8 decision)").to_vec();
        fields.extend(deal.0 .0);
        fields.extend(word);
        let mut message = b"\x19\x01".to_vec();
        message.extend(eip712_domain_separator());
        message.extend(keccak256_short(&fields));
        assert_eq!(keccak256_short(&message), decision_digest(deal, Decision::Abort));
    }

    #[test]
    fn a_compressed_key_hashes_to_its_notarys_address() {
        let mut seed = [0u8; 32];
        seed[31] = 1;
        let one = NotaryKey::from_seed(seed).expect("a valid scalar");
        let address = notary_address(&notary_public_key(&one)).expect("a key");
        assert_eq!(address.to_string(), "0x7e5f4552091a69125d5dfcb7b8c2659029395bdf");
        for seed in 1..=20u8 {
            let key = NotaryKey::from_seed([seed; 32]).expect("a valid scalar");
            assert_eq!(notary_address(&notary_public_key(&key)).expect("a key"), key.address());
        }
        let error = notary_address(&[5; 33]).expect_err("not a key");
        assert!(error.message.contains("not a compressed secp256k1 public key"), "{}", error.message);
    }

    #[test]
    fn a_notarys_digest_signature_verifies_under_the_key_the_script_names() {
        let key = NotaryKey::from_seed([7; 32]).expect("a valid scalar");
        let public = PublicKey::from_slice(&notary_public_key(&key)).expect("a key");
        let secp = Secp256k1::verification_only();
        for byte in 0..16u8 {
            let digest = [byte; 32];
            let signature = key.sign_digest(&digest);
            assert_eq!(signature.recover(&digest), Some(key.address()));
            let compact = bitcoin::secp256k1::ecdsa::Signature::from_compact(&signature.0[..64]).expect("r || s");
            secp.verify_ecdsa(&Message::from_digest(digest), &compact, &public).expect("the script's key verifies it");
            assert!(secp.verify_ecdsa(&Message::from_digest([byte ^ 1; 32]), &compact, &public).is_err());
        }
    }
}
