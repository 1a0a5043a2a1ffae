//! Litecoin accounts: a secp256k1 key, named by the hash160 of its compressed
//! public key, written as a segwit v0 address with the chain's own prefix.
//! Outputs are matched by their `scriptPubKey`, never by address text.

use bech32::primitives::hrp::Hrp;
use bitcoin::hashes::{hash160, Hash};
use bitcoin::secp256k1::{PublicKey, Secp256k1, SecretKey};
use bitcoin::{CompressedPublicKey, ScriptBuf, WPubkeyHash};
use interlock_chain::ChainError;
use interlock_core::Address;
use serde::{Deserialize, Serialize};

/// Which Litecoin chain a network is: it picks the address prefix.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Chain {
    Main,
    Test,
    Regtest,
}

impl Chain {
    /// The human-readable part of the chain's segwit addresses.
    pub fn hrp(self) -> &'static str {
        match self {
            Chain::Main => "ltc",
            Chain::Test => "tltc",
            Chain::Regtest => "rltc",
        }
    }

    /// The name `getblockchaininfo` reports for this chain.
    pub fn node_name(self) -> &'static str {
        match self {
            Chain::Main => "main",
            Chain::Test => "test",
            Chain::Regtest => "regtest",
        }
    }
}

/// The account of a secp256k1 public key: its hash160, 20 bytes.
pub fn account_of(key: &PublicKey) -> Address {
    let hash = hash160::Hash::hash(&key.serialize());
    Address::new(hash.as_byte_array()).expect("20 bytes is a valid address length")
}

/// The account of a secret key.
pub fn account_of_secret(secret: &SecretKey) -> Address {
    account_of(&PublicKey::from_secret_key(&Secp256k1::signing_only(), secret))
}

/// The 20-byte key hash an account is, or why `address` is not a Litecoin account.
pub fn key_hash(address: &Address) -> Result<[u8; 20], ChainError> {
    <[u8; 20]>::try_from(address.as_bytes()).map_err(|_| {
        ChainError::fatal(format!(
            "{} is not a Litecoin account: expected a 20-byte key hash, found {} bytes",
            address,
            address.as_bytes().len()
        ))
    })
}

/// The output script that pays an account (pay-to-witness-key-hash).
pub fn pay_to(address: &Address) -> Result<ScriptBuf, ChainError> {
    Ok(ScriptBuf::new_p2wpkh(&WPubkeyHash::from_byte_array(key_hash(address)?)))
}

/// The output script that pays a public key.
pub fn pay_to_key(key: &PublicKey) -> ScriptBuf {
    ScriptBuf::new_p2wpkh(&CompressedPublicKey(*key).wpubkey_hash())
}

/// `address` as `chain` writes it: `rltc1q…` on regtest.
pub fn format(chain: Chain, address: &Address) -> String {
    let hrp = Hrp::parse(chain.hrp()).expect("the chains' prefixes are valid");
    match bech32::segwit::encode(hrp, bech32::segwit::VERSION_0, address.as_bytes()) {
        Ok(text) if address.as_bytes().len() == 20 => text,
        _ => format!("(not a Litecoin account: {address})"),
    }
}

/// Reads a segwit v0 key-hash address of `chain`.
pub fn parse(chain: Chain, text: &str) -> Result<Address, ChainError> {
    let shown: String = text.chars().take(100).collect();
    let (hrp, version, program) = bech32::segwit::decode(text.trim())
        .map_err(|error| ChainError::fatal(format!("{shown:?} is not a segwit address: {error}")))?;
    if !hrp.as_str().eq_ignore_ascii_case(chain.hrp()) {
        return Err(ChainError::fatal(format!(
            "{shown:?} is an address of another chain: expected the prefix {}1 of Litecoin's {} chain",
            chain.hrp(),
            chain.node_name()
        )));
    }
    if version != bech32::segwit::VERSION_0 || program.len() != 20 {
        return Err(ChainError::fatal(format!(
            "{shown:?} is not a key-hash address (segwit v0, 20 bytes): Interlock's Litecoin accounts are keys"
        )));
    }
    Ok(Address::new(&program).expect("20 bytes is a valid address length"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_print_with_the_chain_prefix_and_read_back() {
        let secret = SecretKey::from_slice(&[7; 32]).expect("a valid scalar");
        let account = account_of_secret(&secret);
        for chain in [Chain::Main, Chain::Test, Chain::Regtest] {
            let text = format(chain, &account);
            assert!(text.starts_with(&format!("{}1q", chain.hrp())), "{text}");
            assert_eq!(parse(chain, &text).expect("reads back"), account);
        }
        let main = format(Chain::Main, &account);
        let error = parse(Chain::Regtest, &main).expect_err("a main-net address on regtest");
        assert!(error.message.contains("rltc1"), "{}", error.message);
        assert!(parse(Chain::Regtest, "rltc1qnotanaddress").is_err());
    }

    #[test]
    fn a_known_regtest_address_reads_as_its_key_hash() {
        // From litecoind 0.21 regtest: the coinbase output script
        // 0014 17d70f88e6a5637cf49ae4decd0cdc6422c67767 and its address.
        let account = parse(Chain::Regtest, "rltc1qzltslz8x543heay6un0v6rxuvs3vvam8hmusca").expect("valid");
        let script = pay_to(&account).expect("a key hash");
        assert_eq!(script.to_hex_string(), "001417d70f88e6a5637cf49ae4decd0cdc6422c67767");
    }
}
