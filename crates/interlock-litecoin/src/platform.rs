//! Litecoin behind the platform seam: [`LitecoinPlatform`] (one per chain —
//! main, test, regtest — since each writes its addresses with its own prefix)
//! and the network configuration a directory entry holds for it.

use crate::address::Chain;
use crate::chain::Node;
use crate::follow::LitecoinFollower;
use crate::rpc::Rpc;
use crate::submit::{FeeLimits, LitecoinSubmitter};
use crate::tx::Key;
use interlock_chain::{
    BoxFuture, Capabilities, ChainError, Credentials, Cursor, Follower, LiveCheck, Platform, SpendDigest, Submitter,
};
use interlock_core::{Address, AssetCode, NetworkId, NetworkTiming, PartyId};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::path::Path;
use std::sync::Arc;

/// A Litecoin network as its directory entry describes it.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LitecoinConfig {
    /// litecoind's JSON-RPC endpoint, `http://host:port`.
    pub rpc: String,
    /// The node's cookie file (`<datadir>/.cookie`, `<datadir>/regtest/.cookie`):
    /// a setting of the role instance, not of the signed directory.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rpc_cookie: Option<String>,
    /// Blocks that must stand on an event before anyone acts on it (1: its own block).
    pub confirmations: u64,
    /// The asset code deals name this chain's coin by.
    #[serde(default = "default_asset")]
    pub asset: String,
    /// No escrow output is older than this block: a first start reads from there.
    #[serde(default)]
    pub start_height: u64,
    /// The chain's usual longest time between blocks, in milliseconds.
    #[serde(default = "default_block_interval_ms")]
    pub block_interval_ms: u64,
    /// How far the chain's median time past, which lock times are held to,
    /// trails other clocks, in milliseconds (about six blocks).
    #[serde(default = "default_time_lag_ms")]
    pub time_lag_ms: u64,
    /// Litoshis per vbyte every transaction pays at least (the node's relay
    /// minimum and its fee estimate may ask more).
    #[serde(default = "default_fee_floor")]
    pub fee_floor_sat_vb: u64,
    /// Litoshis per vbyte no transaction pays more than.
    #[serde(default = "default_fee_cap")]
    pub fee_cap_sat_vb: u64,
    /// A claim or refund not confirmed this many blocks after it was sent is
    /// replaced (BIP 125) at a higher fee when it is submitted again.
    #[serde(default = "default_replace_after_blocks")]
    pub replace_after_blocks: u64,
    /// The compressed secp256k1 public keys (66 hex digits each) of the
    /// directory's notaries: a notary leg's script names its notaries by key,
    /// where the deal's terms name them by address. Without them the network
    /// holds hashlock legs only.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notary_keys: Vec<String>,
}

fn default_asset() -> String {
    "LTC".to_owned()
}
fn default_block_interval_ms() -> u64 {
    150_000
}
fn default_time_lag_ms() -> u64 {
    900_000
}
fn default_fee_floor() -> u64 {
    1
}
fn default_fee_cap() -> u64 {
    500
}
fn default_replace_after_blocks() -> u64 {
    3
}

impl LitecoinConfig {
    /// A regtest node of ours at `rpc` (its cookie at `cookie`): events
    /// `confirmations` deep, a block every `block_interval_ms`, median time
    /// about seven blocks behind, the default fee limits.
    pub fn regtest(rpc: String, cookie: &Path, confirmations: u64, block_interval_ms: u64) -> LitecoinConfig {
        LitecoinConfig {
            rpc,
            rpc_cookie: Some(cookie.display().to_string()),
            confirmations,
            asset: default_asset(),
            start_height: crate::regtest::READY_HEIGHT,
            block_interval_ms,
            time_lag_ms: block_interval_ms.saturating_mul(7),
            fee_floor_sat_vb: default_fee_floor(),
            fee_cap_sat_vb: default_fee_cap(),
            replace_after_blocks: default_replace_after_blocks(),
            notary_keys: Vec::new(),
        }
    }

    /// The notaries' keys, each checked to be a compressed public key.
    pub fn notary_keys(&self, network: NetworkId) -> Result<Vec<[u8; 33]>, ChainError> {
        self.notary_keys
            .iter()
            .map(|text| {
                let key = interlock_core::hash::from_hex(text)
                    .and_then(|bytes| <[u8; 33]>::try_from(bytes).ok())
                    .ok_or_else(|| {
                        ChainError::fatal(format!(
                            "{network}: notary key {text:?} must be 66 hex digits (a compressed public key)"
                        ))
                    })?;
                crate::notary::notary_address(&key)
                    .map_err(|error| ChainError::fatal(format!("{network}: {}", error.message)))?;
                Ok(key)
            })
            .collect()
    }

    pub fn from_value(network: NetworkId, config: &Value) -> Result<LitecoinConfig, ChainError> {
        let parsed: LitecoinConfig = serde_json::from_value(config.clone())
            .map_err(|error| ChainError::fatal(format!("{network}: not a Litecoin network configuration: {error}")))?;
        parsed.check(network)?;
        Ok(parsed)
    }

    fn check(&self, network: NetworkId) -> Result<(), ChainError> {
        let wrong = |what: String| Err(ChainError::fatal(format!("{network}: {what}")));
        if !(self.rpc.starts_with("http://") || self.rpc.starts_with("https://")) {
            return wrong(format!("rpc {:?} must start with http:// or https://", self.rpc));
        }
        if self.confirmations == 0 {
            return wrong("confirmations must be at least 1 (an event's own block)".to_owned());
        }
        if AssetCode::new(&self.asset).is_err() {
            return wrong(format!("asset {:?} is not a valid asset code", self.asset));
        }
        if self.fee_floor_sat_vb == 0 || self.fee_floor_sat_vb > self.fee_cap_sat_vb {
            return wrong(format!(
                "fee_floor_sat_vb ({}) must be at least 1 and at most fee_cap_sat_vb ({})",
                self.fee_floor_sat_vb, self.fee_cap_sat_vb
            ));
        }
        if self.block_interval_ms == 0 {
            return wrong("block_interval_ms must be positive".to_owned());
        }
        self.notary_keys(network)?;
        Ok(())
    }

    fn node(&self, network: NetworkId) -> Result<Node, ChainError> {
        let cookie = self.rpc_cookie.as_deref().ok_or_else(|| {
            ChainError::fatal(format!(
                "{network}: set rpc_cookie to litecoind's cookie file (its data directory's .cookie) to reach {}",
                self.rpc
            ))
        })?;
        Ok(Node::new(Rpc::new(&self.rpc, cookie)?))
    }
}

/// A secp256k1 key file: 64 hex digits.
pub fn read_key(path: &Path) -> Result<Key, ChainError> {
    let text = std::fs::read_to_string(path)
        .map_err(|error| ChainError::fatal(format!("cannot read the key file {}: {error}", path.display())))?;
    let bytes = interlock_core::hash::from_hex(text.trim())
        .and_then(|bytes| <[u8; 32]>::try_from(bytes).ok())
        .ok_or_else(|| ChainError::fatal(format!("{} must hold 64 hex digits (a secp256k1 key)", path.display())))?;
    Key::from_bytes(bytes).map_err(|error| ChainError::fatal(format!("{}: {}", path.display(), error.message)))
}

/// One Litecoin chain.
#[derive(Clone, Copy, Debug)]
pub struct LitecoinPlatform {
    chain: Chain,
}

impl LitecoinPlatform {
    pub fn new(chain: Chain) -> LitecoinPlatform {
        LitecoinPlatform { chain }
    }

    pub fn chain(&self) -> Chain {
        self.chain
    }
}

impl Platform for LitecoinPlatform {
    fn name(&self) -> &'static str {
        match self.chain {
            Chain::Main => "litecoin",
            Chain::Test => "litecoin-test",
            Chain::Regtest => "litecoin-regtest",
        }
    }

    /// Hashlock and notary legs of the chain's coin (a network whose
    /// configuration lists no notary keys refuses notary legs when they are
    /// reserved); each party signs and sends itself; only the owner's key
    /// takes a lapsed leg back (a script cannot say where an unsigned spend
    /// pays).
    fn capabilities(&self) -> Capabilities {
        Capabilities { unique: false, relayed: false, open_cancel: false, inspection: false, ..Capabilities::ALL }
    }

    fn parse_address(&self, text: &str) -> Result<Address, ChainError> {
        crate::address::parse(self.chain, text)
    }

    fn format_address(&self, address: &Address) -> String {
        crate::address::format(self.chain, address)
    }

    /// Litecoin legs name no keeper: a script pays only the keys it names.
    fn keeper_account(&self, network: NetworkId, config: &Value, _: PartyId) -> Result<Option<Address>, ChainError> {
        LitecoinConfig::from_value(network, config)?;
        Ok(None)
    }

    fn timing(&self, network: NetworkId, config: &Value) -> Result<NetworkTiming, ChainError> {
        let config = LitecoinConfig::from_value(network, config)?;
        Ok(NetworkTiming {
            block_interval_ms: config.block_interval_ms,
            confirmations: config.confirmations,
            time_lag_ms: config.time_lag_ms,
        })
    }

    fn check_config(&self, network: NetworkId, config: &Value) -> Result<(), ChainError> {
        LitecoinConfig::from_value(network, config).map(|_| ())
    }

    /// The sighash of the spend that carries a decision out on a leg: the
    /// notaries' signatures over it are this chain's certificate.
    fn spend_digest(&self, network: NetworkId, config: &Value) -> Result<Option<SpendDigest>, ChainError> {
        let keys = LitecoinConfig::from_value(network, config)?.notary_keys(network)?;
        Ok(Some(Arc::new(move |request| crate::notary::spend_digest(request, &keys))))
    }

    fn first_cursor(&self, network: NetworkId, config: &Value) -> Result<Cursor, ChainError> {
        Ok(Cursor::start(LitecoinConfig::from_value(network, config)?.start_height))
    }

    /// The node answers, is the configured chain, has reached the start
    /// height, and enforces `OP_CHECKLOCKTIMEVERIFY`.
    fn check_live<'a>(&'a self, network: NetworkId, config: &'a Value) -> BoxFuture<'a, Vec<LiveCheck>> {
        Box::pin(async move {
            let node = match LitecoinConfig::from_value(network, config).and_then(|parsed| parsed.node(network)) {
                Ok(node) => node,
                Err(error) => return vec![LiveCheck::failed("configuration", error.to_string())],
            };
            let info: Value = match node.rpc.call("getblockchaininfo", json!([])).await {
                Ok(info) => info,
                Err(error) => return vec![LiveCheck::failed("node", error.to_string())],
            };
            let chain = info.get("chain").and_then(Value::as_str).unwrap_or("?");
            let blocks = info.get("blocks").and_then(Value::as_u64).unwrap_or(0);
            let cltv = info.pointer("/softforks/bip65/active").and_then(Value::as_bool).unwrap_or(false);
            let expected = self.chain.node_name();
            vec![
                if chain == expected {
                    LiveCheck::passed("chain", format!("litecoind runs the {chain} chain at height {blocks}"))
                } else {
                    LiveCheck::failed("chain", format!("litecoind runs the {chain} chain, not {expected}"))
                },
                if cltv {
                    LiveCheck::passed("lock times", "OP_CHECKLOCKTIMEVERIFY is enforced")
                } else {
                    LiveCheck::failed("lock times", "OP_CHECKLOCKTIMEVERIFY is not active yet: refunds are not safe")
                },
            ]
        })
    }

    fn submitter<'a>(
        &'a self,
        network: NetworkId,
        config: &'a Value,
        credentials: &'a Credentials,
    ) -> BoxFuture<'a, Result<Arc<dyn Submitter>, ChainError>> {
        Box::pin(async move {
            let config = LitecoinConfig::from_value(network, config)?;
            let path = credentials.chain_key_file.as_deref().ok_or_else(|| {
                ChainError::fatal(format!(
                    "{network} is a Litecoin network: a secp256k1 key file is needed to sign there"
                ))
            })?;
            let key = read_key(path)?;
            let fees = FeeLimits {
                floor_sat_vb: config.fee_floor_sat_vb,
                cap_sat_vb: config.fee_cap_sat_vb,
                replace_after_blocks: config.replace_after_blocks,
                // Twice the median time's lag, and the blocks a spend would
                // otherwise wait before its first raise.
                urgent_within_s: config
                    .time_lag_ms
                    .saturating_mul(2)
                    .saturating_add(config.replace_after_blocks.saturating_mul(config.block_interval_ms))
                    / 1000,
            };
            let mut submitter =
                LitecoinSubmitter::new(network, config.node(network)?, key, &config.asset, fees, config.start_height);
            let notary_keys = config.notary_keys(network)?;
            if let (false, Some(signer)) = (notary_keys.is_empty(), &credentials.notary_signer) {
                submitter = submitter.with_notaries(notary_keys, signer.clone());
            }
            Ok(Arc::new(submitter) as Arc<dyn Submitter>)
        })
    }

    fn follower<'a>(
        &'a self,
        network: NetworkId,
        config: &'a Value,
        _credentials: &'a Credentials,
        from: Cursor,
    ) -> BoxFuture<'a, Result<Box<dyn Follower>, ChainError>> {
        Box::pin(async move {
            let config = LitecoinConfig::from_value(network, config)?;
            let follower = LitecoinFollower::new(network, config.node(network)?, config.confirmations, from)
                .with_notary_keys(config.notary_keys(network)?);
            Ok(Box::new(follower) as Box<dyn Follower>)
        })
    }
}
