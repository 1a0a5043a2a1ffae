//! EVM chains behind the platform seam: [`EvmPlatform`] (addresses, the
//! network's configuration, what notaries sign), [`EvmSubmitter`] (one account's
//! escrow operations with typed errors) and the [`Follower`] implementation of
//! [`EvmFollower`].

use crate::chain::{
    core_address, evm_reservation, AssetBinding, AssetMap, ChainError as AdapterError, EvmEscrow, EvmFollower,
    FeePolicy,
};
use crate::client::{connect_trusting, EscrowClient, SlotState};
use crate::error::EvmError;
use alloy::primitives::Address;
use alloy::signers::local::PrivateKeySigner;
use interlock_chain::{
    BlockEvents, BoxFuture, Capabilities, ChainError, ChainEvent, Cursor, Followed, Follower, Platform, Receipt,
    Submitter,
};
use interlock_chain::{Credentials, LiveCheck};
use interlock_core::escrow::ReservationState;
use interlock_core::saga::expected_request;
use interlock_core::{DealId, DealTerms, EscrowOp, Hash32, LegKind, NetworkId, NetworkTiming};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::Arc;

/// An EVM network as its directory entry describes it: the platform-specific
/// part, opaque to everyone but this crate.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EvmConfig {
    /// The node's JSON-RPC endpoint, `http://host:port`.
    pub rpc: String,
    /// The `InterlockEscrow` contract, `0x` and 40 hex digits.
    pub escrow: String,
    /// Blocks that must stand on an event before anyone acts on it (1: its own block).
    pub confirmations: u64,
    /// What each asset code is on chain.
    pub assets: BTreeMap<String, EvmAssetConfig>,
    /// The account the network's gateway keeps deals with, `0x` and 40 hex digits.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keeper: Option<String>,
    /// For an `https://` rpc behind a private CA: that CA's certificate (a PEM
    /// file path), then the only one trusted; the system's roots otherwise.
    /// A setting of the role instance, not of the signed directory.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rpc_ca: Option<String>,
    /// The chain's id (`eth_chainId`), which `interlock directory check`
    /// holds the node to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chain_id: Option<u64>,
    /// The block that holds the escrow's deployment: no escrow event is older,
    /// so a first start reads from there. 0: unknown (a directory written
    /// before it was recorded), read from the genesis.
    #[serde(default)]
    pub deploy_height: u64,
    /// No transaction offers more than this many gwei per gas (max fee and tip).
    #[serde(default = "default_fee_cap_gwei")]
    pub fee_cap_gwei: u64,
    /// A transaction not mined this many blocks after it was sent is replaced
    /// (same nonce) with fees at least 12.5% higher, up to the cap.
    #[serde(default = "default_replace_after_blocks")]
    pub replace_after_blocks: u64,
    /// A claim whose leg expires within this many seconds of the chain's
    /// newest block is urgent: it offers twice the tip, is replaced after
    /// every block it is not mined in, and doubles its fees each time (up to
    /// the cap).
    #[serde(default = "default_urgent_within_s")]
    pub urgent_within_s: u64,
    /// The chain's usual longest time between blocks, in milliseconds.
    #[serde(default = "default_block_interval_ms")]
    pub block_interval_ms: u64,
    /// How far the chain's block timestamps may stray from other clocks, in
    /// milliseconds. With the interval and the depth, what a deal's margins
    /// must cover on this network.
    #[serde(default = "default_time_lag_ms")]
    pub time_lag_ms: u64,
    /// What makes a block's events safe to act on: its depth alone, or also
    /// the node's `finalized` block (a chain with a finality gadget).
    #[serde(default, skip_serializing_if = "Finality::is_depth")]
    pub finality: Finality,
    /// With `finality = "finalized"`: how many blocks the node's finalized
    /// block usually trails its newest, which a deal's margins must cover.
    #[serde(default = "default_finality_blocks")]
    pub finality_blocks: u64,
}

/// When the events of a block are acted on.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Finality {
    /// Once `confirmations` blocks stand on it.
    #[default]
    Depth,
    /// Once `confirmations` blocks stand on it and the node's `finalized`
    /// block is at or past it: a reorganisation can no longer take it away,
    /// whatever its depth (two epochs, some 13 minutes, on Ethereum).
    Finalized,
}

impl Finality {
    fn is_depth(&self) -> bool {
        *self == Finality::Depth
    }
}

/// Ethereum finalises a block two to three epochs of 32 slots after it.
fn default_finality_blocks() -> u64 {
    96
}

/// A 12-second slot, as on Ethereum's main net.
fn default_block_interval_ms() -> u64 {
    12_000
}

/// A block's timestamp may lead its producer's clock by up to 15 s.
fn default_time_lag_ms() -> u64 {
    15_000
}

fn default_fee_cap_gwei() -> u64 {
    u64::try_from(crate::chain::FEE_CAP_WEI / GWEI).expect("the default cap fits")
}

fn default_replace_after_blocks() -> u64 {
    crate::chain::REPLACE_AFTER_BLOCKS
}

fn default_urgent_within_s() -> u64 {
    crate::chain::URGENT_WITHIN_S
}

const GWEI: u128 = 1_000_000_000;

/// One asset code on an EVM network.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EvmAssetConfig {
    /// The chain's own coin, in wei.
    Native,
    /// An ERC-20 token at this address.
    Erc20(String),
    /// An ERC-721 collection at this address.
    Erc721(String),
}

impl EvmConfig {
    /// Reads the directory entry's opaque configuration.
    pub fn from_value(network: NetworkId, config: &serde_json::Value) -> Result<EvmConfig, ChainError> {
        serde_json::from_value(config.clone())
            .map_err(|error| ChainError::fatal(format!("{network}: invalid evm configuration: {error}")))
    }

    pub fn escrow_address(&self) -> Result<Address, ChainError> {
        parse_evm_address(&self.escrow)
    }

    pub fn keeper_address(&self) -> Result<Option<Address>, ChainError> {
        self.keeper.as_deref().map(parse_evm_address).transpose()
    }

    /// How the network's submitters price and replace their transactions.
    pub fn fee_policy(&self) -> FeePolicy {
        FeePolicy {
            fee_cap_wei: u128::from(self.fee_cap_gwei) * GWEI,
            replace_after_blocks: self.replace_after_blocks,
            urgent_within_s: self.urgent_within_s,
            ..FeePolicy::default()
        }
    }

    /// The asset bindings as the adapter takes them.
    pub fn asset_map(&self) -> Result<AssetMap, ChainError> {
        let mut assets = AssetMap::new();
        for (code, asset) in &self.assets {
            let code = interlock_core::AssetCode::new(code).map_err(|error| ChainError::fatal(error.to_string()))?;
            let binding = match asset {
                EvmAssetConfig::Native => AssetBinding::Native,
                EvmAssetConfig::Erc20(address) => AssetBinding::Erc20(parse_evm_address(address)?),
                EvmAssetConfig::Erc721(address) => AssetBinding::Erc721(parse_evm_address(address)?),
            };
            assets = assets.bind(code, binding);
        }
        Ok(assets)
    }

    /// The blocks that stand on an event before it is acted on, as a deal's
    /// margins must count them.
    pub fn confirmations_counted(&self) -> u64 {
        match self.finality {
            Finality::Depth => self.confirmations,
            Finality::Finalized => self.confirmations.max(self.finality_blocks),
        }
    }

    fn check(&self, network: NetworkId) -> Result<(), ChainError> {
        let host = self.rpc.strip_prefix("http://").or_else(|| self.rpc.strip_prefix("https://"));
        if host.is_none_or(|host| host.is_empty() || host.starts_with('/')) {
            return Err(ChainError::fatal(format!(
                "{network}: rpc {:?} is not an endpoint: expected http://host:port or https://host:port",
                self.rpc.chars().take(80).collect::<String>()
            )));
        }
        if self.confirmations == 0 {
            return Err(ChainError::fatal(format!(
                "{network}: confirmations must be at least 1 (the block holding the event), found 0"
            )));
        }
        if self.fee_cap_gwei == 0 || self.replace_after_blocks == 0 {
            return Err(ChainError::fatal(format!(
                "{network}: fee_cap_gwei and replace_after_blocks must be at least 1, found {} and {}",
                self.fee_cap_gwei, self.replace_after_blocks
            )));
        }
        self.escrow_address()?;
        self.keeper_address()?;
        self.asset_map()?;
        Ok(())
    }
}

/// Parses `0x` and 40 hex digits.
pub fn parse_evm_address(text: &str) -> Result<Address, ChainError> {
    let digits = text.strip_prefix("0x").filter(|digits| digits.len() == 40);
    let bytes = digits.and_then(interlock_core::hash::from_hex);
    match bytes.and_then(|bytes| <[u8; 20]>::try_from(bytes).ok()) {
        Some(bytes) => Ok(Address::from(bytes)),
        None => Err(ChainError::fatal(format!(
            "{:?} is not an EVM address: expected 0x and 40 hex digits",
            text.chars().take(80).collect::<String>()
        ))),
    }
}

/// The EVM platform.
#[derive(Clone, Copy, Debug, Default)]
pub struct EvmPlatform;

impl Platform for EvmPlatform {
    fn name(&self) -> &'static str {
        "evm"
    }

    fn capabilities(&self) -> Capabilities {
        // Each party signs and sends its own transactions.
        Capabilities { relayed: false, ..Capabilities::ALL }
    }

    fn parse_address(&self, text: &str) -> Result<interlock_core::Address, ChainError> {
        parse_evm_address(text).map(core_address)
    }

    /// `0x` and the account's bytes in hex (40 digits for an account).
    fn format_address(&self, address: &interlock_core::Address) -> String {
        format!("0x{}", interlock_core::hash::to_hex(address.as_bytes()))
    }

    /// The keeper account the network's configuration names.
    fn keeper_account(
        &self,
        network: NetworkId,
        config: &serde_json::Value,
        _gateway_key: interlock_core::PartyId,
    ) -> Result<Option<interlock_core::Address>, ChainError> {
        Ok(EvmConfig::from_value(network, config)?.keeper_address()?.map(core_address))
    }

    fn check_config(&self, network: NetworkId, config: &serde_json::Value) -> Result<(), ChainError> {
        EvmConfig::from_value(network, config)?.check(network)
    }

    fn timing(&self, network: NetworkId, config: &serde_json::Value) -> Result<NetworkTiming, ChainError> {
        let config = EvmConfig::from_value(network, config)?;
        Ok(NetworkTiming {
            block_interval_ms: config.block_interval_ms,
            confirmations: config.confirmations_counted(),
            time_lag_ms: config.time_lag_ms,
        })
    }

    /// Just before the escrow's deploy block: nothing older can hold its
    /// events (the genesis when the deploy height is unknown).
    fn first_cursor(&self, network: NetworkId, config: &serde_json::Value) -> Result<Cursor, ChainError> {
        let config = EvmConfig::from_value(network, config)?;
        config.check(network)?;
        Ok(Cursor::start(config.deploy_height.saturating_sub(1)))
    }

    /// The node answers as the configured chain, the escrow address holds the
    /// committed contract deployed at the configured height, the depth
    /// allows for reorganisations, and every token address holds a contract.
    fn check_live<'a>(&'a self, network: NetworkId, config: &'a serde_json::Value) -> BoxFuture<'a, Vec<LiveCheck>> {
        Box::pin(async move {
            match EvmConfig::from_value(network, config).and_then(|parsed| parsed.check(network).map(|()| parsed)) {
                Ok(config) => crate::live::check(&config).await,
                Err(error) => vec![LiveCheck::failed("configuration", error.to_string())],
            }
        })
    }

    fn submitter<'a>(
        &'a self,
        network: NetworkId,
        config: &'a serde_json::Value,
        credentials: &'a Credentials,
    ) -> BoxFuture<'a, Result<Arc<dyn Submitter>, ChainError>> {
        Box::pin(async move {
            let config = EvmConfig::from_value(network, config)?;
            config.check(network)?;
            let path = credentials.chain_key_file.as_deref().ok_or_else(|| {
                ChainError::fatal(format!("{network} is an EVM network: a secp256k1 key file is needed to sign there"))
            })?;
            let signer = read_signer(path)?;
            let submitter = EvmSubmitter::connect(network, &config, signer)?;
            Ok(Arc::new(submitter) as Arc<dyn Submitter>)
        })
    }

    fn follower<'a>(
        &'a self,
        network: NetworkId,
        config: &'a serde_json::Value,
        _credentials: &'a Credentials,
        from: Cursor,
    ) -> BoxFuture<'a, Result<Box<dyn Follower>, ChainError>> {
        Box::pin(async move {
            let config = EvmConfig::from_value(network, config)?;
            config.check(network)?;
            let provider = crate::http::read_only(&config.rpc, config.rpc_ca.as_deref().map(std::path::Path::new))
                .map_err(|error| ChainError::fatal(format!("rpc {:?}: {error}", config.rpc)))?;
            let follower = EvmFollower::resume(
                network,
                provider,
                config.escrow_address()?,
                config.asset_map()?,
                config.confirmations,
                from,
            )
            .map_err(|error| adapter_error(&error))?
            .with_origin(config.deploy_height)
            .with_finality(config.finality);
            Ok(Box::new(follower) as Box<dyn Follower>)
        })
    }
}

/// A secp256k1 key file: 64 hex digits.
pub fn read_signer(path: &std::path::Path) -> Result<PrivateKeySigner, ChainError> {
    let text = std::fs::read_to_string(path)
        .map_err(|error| ChainError::fatal(format!("cannot read the key file {}: {error}", path.display())))?;
    let seed = interlock_core::hash::from_hex(text.trim())
        .and_then(|bytes| <[u8; 32]>::try_from(bytes).ok())
        .ok_or_else(|| ChainError::fatal(format!("{} must hold 64 hex digits (a secp256k1 key)", path.display())))?;
    PrivateKeySigner::from_bytes(&seed.into())
        .map_err(|error| ChainError::fatal(format!("{}: not a secp256k1 key: {error}", path.display())))
}

/// Sends one account's escrow operations to a deployed contract.
#[derive(Clone, Debug)]
pub struct EvmSubmitter {
    escrow: EvmEscrow,
    from: Address,
}

impl EvmSubmitter {
    /// A submitter sending from `from` through `escrow` (which must be able to sign for it).
    pub fn new(escrow: EvmEscrow, from: Address) -> EvmSubmitter {
        EvmSubmitter { escrow, from }
    }

    /// A submitter for the network `config` describes, signing with `signer`.
    pub fn connect(
        network: NetworkId,
        config: &EvmConfig,
        signer: PrivateKeySigner,
    ) -> Result<EvmSubmitter, ChainError> {
        let from = signer.address();
        let ca = config.rpc_ca.as_deref().map(std::path::Path::new);
        let provider = connect_trusting(&config.rpc, ca, &[signer]).map_err(|error| evm_error(&error))?;
        let client = EscrowClient::at(config.escrow_address()?, provider.clone());
        let escrow = EvmEscrow::new(network, client, provider, config.asset_map()?).with_fees(config.fee_policy());
        Ok(EvmSubmitter { escrow, from })
    }

    pub fn address(&self) -> Address {
        self.from
    }

    /// Transactions this submitter (and its clones) replaced with higher fees.
    pub fn replacements(&self) -> u64 {
        self.escrow.replacements()
    }
}

impl Submitter for EvmSubmitter {
    fn network(&self) -> NetworkId {
        self.escrow.network()
    }

    fn account(&self) -> interlock_core::Address {
        core_address(self.from)
    }

    fn submit<'a>(&'a self, terms: &'a DealTerms, op: &'a EscrowOp) -> BoxFuture<'a, Result<Receipt, ChainError>> {
        Box::pin(async move {
            let sent = self.escrow.submit(self.from, terms, op).await.map_err(|error| adapter_error(&error))?;
            Ok(Receipt { transaction: Hash32(sent.tx_hash.0), height: Some(sent.block_number) })
        })
    }

    fn leg_state<'a>(
        &'a self,
        terms: &'a DealTerms,
        leg: LegKind,
    ) -> BoxFuture<'a, Result<Option<ReservationState>, ChainError>> {
        Box::pin(async move {
            let request = expected_request(terms, terms.id(), leg);
            let reservation = evm_reservation(self.escrow.assets(), &request).map_err(|error| adapter_error(&error))?;
            let state = self.escrow.client().state(&reservation).await.map_err(|error| evm_error(&error))?;
            Ok(match state {
                SlotState::Empty => None,
                // Reserved, if with other terms: the follower's event says which.
                SlotState::Open | SlotState::OpenWithOtherTerms => Some(ReservationState::Reserved),
                SlotState::Held => Some(ReservationState::Held),
                SlotState::Executed => Some(ReservationState::Executed),
                SlotState::Cancelled => Some(ReservationState::Cancelled),
            })
        })
    }
}

/// What a caller does about the adapter's refusal.
pub fn adapter_error(error: &AdapterError) -> ChainError {
    match error {
        AdapterError::Evm(error) => evm_error(error),
        AdapterError::ReorgBeyondDepth { .. } => ChainError::retry_later(error.to_string()),
        AdapterError::UnknownAsset(_)
        | AdapterError::AssetKind { .. }
        | AdapterError::NotEvmAddress(_)
        | AdapterError::OtherNetwork { .. }
        | AdapterError::UnknownReservation(_)
        | AdapterError::ZeroDepth => ChainError::fatal(error.to_string()),
        AdapterError::NotAVerdict(_) => ChainError::rejected(error.to_string()),
        AdapterError::AwaitingVerdict(_) => ChainError::already_done(error.to_string()),
    }
}

/// What a caller does about a node's or a contract's refusal.
pub fn evm_error(error: &EvmError) -> ChainError {
    use crate::bindings::InterlockEscrow::InterlockEscrowErrors as E;
    let message = error.to_string();
    match error {
        EvmError::Escrow(E::AlreadyReserved(_) | E::AlreadyExecuted(_) | E::AlreadyCancelled(_)) => {
            ChainError::already_done(message)
        }
        EvmError::Escrow(_)
        | EvmError::Token(_)
        | EvmError::WrongSecret { .. }
        | EvmError::NotOwner { .. }
        | EvmError::UndecodedRevert { .. } => ChainError::rejected(message),
        // Mined but reverted: the state moved between the estimate and the block;
        // the next attempt's estimate says what it is now.
        EvmError::MinedReverted { .. } | EvmError::Rpc(_) => ChainError::retry_later(message),
    }
}

impl Follower for EvmFollower {
    fn network(&self) -> NetworkId {
        EvmFollower::network(self)
    }

    fn cursor(&self) -> Cursor {
        self.last_cursor()
    }

    fn watch(&mut self, terms: &DealTerms) -> Result<(), ChainError> {
        EvmFollower::watch(self, terms).map_err(|error| adapter_error(&error))
    }

    fn forget(&mut self, deal_id: DealId) {
        EvmFollower::forget(self, deal_id);
    }

    /// One poll of the chain is one delivered block: the newest confirmed one
    /// (within a bounded range), carrying the events of every block since the
    /// previous cursor and those found for deals watched late.
    fn poll(&mut self) -> BoxFuture<'_, Result<Vec<ChainEvent>, ChainError>> {
        Box::pin(async move {
            let followed = match EvmFollower::poll_block(self).await {
                Ok(Some(followed)) => followed,
                Ok(None) => return Ok(Vec::new()),
                Err(AdapterError::ReorgBeyondDepth { .. }) => {
                    let to = self.roll_back().await.map_err(|error| adapter_error(&error))?;
                    return Ok(vec![ChainEvent::RolledBack { to }]);
                }
                Err(error) => return Err(adapter_error(&error)),
            };
            let Some(time_ms) = followed.chain_time_ms else {
                return Ok(Vec::new());
            };
            let events = followed
                .events
                .into_iter()
                .map(|event| Followed { transaction: Hash32(event.tx_hash.0), event: event.event })
                .collect();
            Ok(vec![ChainEvent::Block(BlockEvents { cursor: self.last_cursor(), time_ms, events })])
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A configuration as a hand-written directory entry gives it: the defaults fill the rest.
    fn config(extra: serde_json::Value) -> serde_json::Value {
        let mut config = serde_json::json!({
            "rpc": "http://127.0.0.1:8545",
            "escrow": format!("0x{}", "11".repeat(20)),
            "confirmations": 3,
            "assets": {},
        });
        config.as_object_mut().expect("an object").extend(extra.as_object().expect("an object").clone());
        config
    }

    #[test]
    fn a_chain_acted_on_at_its_finalized_block_counts_that_wait_in_deal_margins() {
        let network = NetworkId(2);
        let depth = EvmPlatform.timing(network, &config(serde_json::json!({}))).expect("valid");
        assert_eq!((depth.confirmations, depth.block_interval_ms, depth.time_lag_ms), (3, 12_000, 15_000));
        let finalized = EvmPlatform.timing(network, &config(serde_json::json!({ "finality": "finalized" })));
        assert_eq!(finalized.expect("valid").confirmations, 96, "two to three epochs of 32 slots");
        let own = serde_json::json!({ "finality": "finalized", "finality_blocks": 2 });
        assert_eq!(EvmPlatform.timing(network, &config(own)).expect("valid").confirmations, 3, "never below the depth");
        let wrong = EvmPlatform.timing(network, &config(serde_json::json!({ "finality": "safe" })));
        assert!(wrong.unwrap_err().to_string().contains("unknown variant `safe`"));
        // A depth-only configuration reads as it did before the setting existed.
        let written = serde_json::to_value(EvmConfig::from_value(network, &config(serde_json::json!({}))).unwrap());
        assert!(written.unwrap().get("finality").is_none());
    }
}
