//! Hex forms for the directory's JSON: keys and addresses a person can read and
//! paste, rather than serde's default arrays of numbers.

use interlock_core::hash::{from_hex, to_hex};
use interlock_core::{Address, NetworkId, NotaryAddress, PartyId};
use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serializer};
use std::collections::BTreeMap;

/// Account addresses as text: `0x` and the address's bytes in hex, the same
/// form as `Address`'s `Display`, whatever the platform (which checks the
/// length: `Directory::check_platforms`). Plain hex without `0x` is read too.
pub fn address_to_text(address: &Address) -> String {
    address.to_string()
}

pub fn address_from_text(text: &str) -> Option<Address> {
    let digits = text.strip_prefix("0x").unwrap_or(text);
    Address::new(&from_hex(digits)?)
}

fn bytes_from_text<const N: usize>(text: &str) -> Option<[u8; N]> {
    from_hex(text)?.try_into().ok()
}

pub mod party_id {
    use super::*;

    pub fn serialize<S: Serializer>(party: &PartyId, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&to_hex(&party.0))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<PartyId, D::Error> {
        let text = String::deserialize(deserializer)?;
        match bytes_from_text::<32>(&text) {
            Some(bytes) if !text.starts_with("0x") => Ok(PartyId(bytes)),
            _ => Err(D::Error::custom(format!("invalid party key {text:?}: expected 64 hex digits"))),
        }
    }
}

pub mod notary_address {
    use super::*;

    pub fn serialize<S: Serializer>(address: &NotaryAddress, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&address.to_string())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<NotaryAddress, D::Error> {
        let text = String::deserialize(deserializer)?;
        match text.strip_prefix("0x").and_then(bytes_from_text::<20>) {
            Some(bytes) => Ok(NotaryAddress(bytes)),
            None => Err(D::Error::custom(format!("invalid notary address {text:?}: expected 0x and 40 hex digits"))),
        }
    }
}

pub mod accounts {
    use super::*;

    pub fn serialize<S: Serializer>(accounts: &BTreeMap<NetworkId, Address>, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_map(accounts.iter().map(|(network, address)| (network, address_to_text(address))))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<BTreeMap<NetworkId, Address>, D::Error> {
        let texts = BTreeMap::<NetworkId, String>::deserialize(deserializer)?;
        texts
            .into_iter()
            .map(|(network, text)| match address_from_text(&text) {
                Some(address) => Ok((network, address)),
                None => Err(D::Error::custom(format!(
                    "invalid account address {text:?} on network {}: expected 64 hex digits or 0x and 40 hex digits",
                    network.0
                ))),
            })
            .collect()
    }
}

pub mod signature {
    use super::*;
    use crate::error::IdentityError;

    pub fn serialize<S: Serializer>(signature: &[u8], serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&to_hex(signature))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<u8>, D::Error> {
        let text = String::deserialize(deserializer)?;
        let max = crate::directory::SIGNATURE_LEN_MAX;
        match interlock_core::hash::from_hex(&text) {
            Some(bytes) if !text.starts_with("0x") && !bytes.is_empty() && bytes.len() <= max => Ok(bytes),
            _ => Err(D::Error::custom(IdentityError::SignatureEncoding { found: text.chars().take(160).collect() })),
        }
    }
}
