//! The core's escrow operations and events on an EVM network.
//!
//! Two halves, so submitting never waits for following:
//! - [`EvmEscrow`] (cheap to clone, shared by concurrent tasks) turns a saga's
//!   [`EscrowOp`] into a contract call and sends it with a nonce of its own
//!   numbering and EIP-1559 fees, replacing it at higher fees while it waits
//!   (`send.rs`);
//! - [`EvmFollower`] (one owner) reads the contract's logs up to the confirmation
//!   depth and turns them back into the core's [`EscrowEvent`]s.
//!
//! The contract stores only a commitment to a reservation's terms, and its
//! `Reserved` log carries only that commitment. A follower therefore knows the
//! deals it watches ([`EvmFollower::watch`]) and reports a reservation only when the
//! commitment on chain is the one the deal's terms give: a reservation made with
//! other terms is not the deal's reservation, so no saga counts on it.

mod follower;
mod logs;
mod send;

pub use follower::{EvmFollower, Followed, FollowedEvent, LOOKUP_IDS_MAX, UNMATCHED_MAX};
pub use logs::LOG_BLOCKS_MAX;
pub use send::{Fees, REPLACEMENTS_MAX, SEND_BLOCKS_MAX};

use crate::bindings::InterlockEscrow::InterlockEscrowErrors;
use crate::client::{signature_bytes, EscrowClient, SlotState, Submitted};
use crate::error::EvmError;
use crate::reservation::{EvmAsset, EvmReservation};
use alloy::primitives::{Address, B256, U256};
use alloy::providers::DynProvider;
use interlock_core::{
    saga::expected_request, Asset, AssetCode, DealId, DealTerms, Decision, EscrowOp, LegKind, NetworkId, ReservationId,
    ReserveRequest, Token,
};
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};

/// How one of the core's asset codes is held on this network.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum AssetBinding {
    /// The chain's own coin; amounts are in wei.
    Native,
    /// An ERC-20 token; amounts are in its smallest unit.
    Erc20(Address),
    /// An ERC-721 collection; an item's id is the token id.
    Erc721(Address),
}

/// The asset codes a network knows, and what each one is on chain.
#[derive(Clone, Default, Debug)]
pub struct AssetMap {
    bindings: BTreeMap<AssetCode, AssetBinding>,
}

impl AssetMap {
    pub fn new() -> AssetMap {
        AssetMap::default()
    }

    pub fn bind(mut self, code: AssetCode, binding: AssetBinding) -> AssetMap {
        self.bindings.insert(code, binding);
        self
    }

    pub fn binding(&self, code: &AssetCode) -> Option<AssetBinding> {
        self.bindings.get(code).copied()
    }

    /// What `asset` is on chain. A fungible code bound to an ERC-721 (or the
    /// reverse) is refused, so a deal can never name an item by an amount.
    pub fn evm_asset(&self, asset: &Asset) -> Result<EvmAsset, ChainError> {
        let binding = self.binding(asset.code()).ok_or_else(|| ChainError::UnknownAsset(asset.code().to_string()))?;
        match (asset, binding) {
            (Asset::Fungible { amount, .. }, AssetBinding::Native) => {
                Ok(EvmAsset::Native { amount_wei: U256::from(*amount) })
            }
            (Asset::Fungible { amount, .. }, AssetBinding::Erc20(token)) => {
                Ok(EvmAsset::Erc20 { token, amount: U256::from(*amount) })
            }
            (Asset::Unique { item, .. }, AssetBinding::Erc721(token)) => {
                Ok(EvmAsset::Erc721 { token, token_id: U256::from_be_bytes(item.0) })
            }
            (asset, binding) => Err(ChainError::AssetKind { asset: asset.to_string(), binding }),
        }
    }
}

/// An EVM account as the core names it.
pub fn core_address(address: Address) -> interlock_core::Address {
    interlock_core::Address::from_bytes(address.0 .0)
}

/// The EVM account behind one of the core's addresses.
pub fn evm_address(address: &interlock_core::Address) -> Result<Address, ChainError> {
    match address {
        address if address.to_array::<20>().is_some() => Ok(Address::from(address.to_array::<20>().expect("checked"))),
        _ => Err(ChainError::NotEvmAddress(*address)),
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ChainError {
    #[error("asset {0} is not known on this EVM network: bind its code to the native coin, an ERC-20 or an ERC-721")]
    UnknownAsset(String),
    #[error(
        "asset {asset} cannot be held as {binding:?}: amounts need the native coin or an ERC-20, items an ERC-721"
    )]
    AssetKind { asset: String, binding: AssetBinding },
    #[error("{0:?} is not an EVM account (0x followed by 20 bytes)")]
    NotEvmAddress(interlock_core::Address),
    #[error("deal leg {leg} is on {found}, not on this network {expected}")]
    OtherNetwork { leg: LegKind, found: NetworkId, expected: NetworkId },
    #[error("reservation {0} belongs to no deal this network was told about")]
    UnknownReservation(ReservationId),
    #[error("the chain reorganised below the confirmation depth: block {height} was {delivered}, is now {now}; raise the confirmation depth")]
    ReorgBeyondDepth { height: u64, delivered: B256, now: B256 },
    #[error("confirmation depth must be at least 1 (the block holding the event), found 0")]
    ZeroDepth,
    #[error("reservation {0} is executed and held for the notaries' verdict: only a release or a reverse moves it")]
    AwaitingVerdict(ReservationId),
    #[error("a {0} certificate is no verdict: a held leg moves on a release or a reverse")]
    NotAVerdict(Decision),
    #[error(transparent)]
    Evm(#[from] EvmError),
}

/// The default priority fee: 1 gwei.
pub const PRIORITY_FEE_WEI: u128 = 1_000_000_000;

/// The default ceiling of a transaction's max fee: 500 gwei.
pub const FEE_CAP_WEI: u128 = 500 * 1_000_000_000;
/// By default a transaction is replaced once this many blocks passed without it.
pub const REPLACE_AFTER_BLOCKS: u64 = 3;
/// How near its leg's expiry a claim becomes urgent, by default: five
/// minutes, some 25 blocks of a 12-second chain.
pub const URGENT_WITHIN_S: u64 = 300;

/// How a submitter prices its transactions (EIP-1559), and raises the price
/// of one that waits.
#[derive(Clone, Copy, Debug)]
pub struct FeePolicy {
    /// The tip to the block producer, per gas, of a first offer.
    pub priority_fee_wei: u128,
    /// The fee cap is this many times the latest base fee, plus the tip: room for
    /// the base fee to rise while the transaction waits.
    pub base_fee_multiplier: u128,
    /// No offer's max fee (nor tip) goes above this, per gas.
    pub fee_cap_wei: u128,
    /// A transaction not mined this many blocks after it was sent is replaced
    /// (same nonce) with fees at least 12.5% higher, up to the cap.
    pub replace_after_blocks: u64,
    /// A claim (an execution) whose leg expires within this many seconds of
    /// the newest block's time is urgent: it pays more and is replaced
    /// after every block that does not mine it.
    pub urgent_within_s: u64,
}

impl Default for FeePolicy {
    fn default() -> FeePolicy {
        FeePolicy {
            priority_fee_wei: PRIORITY_FEE_WEI,
            base_fee_multiplier: 2,
            fee_cap_wei: FEE_CAP_WEI,
            replace_after_blocks: REPLACE_AFTER_BLOCKS,
            urgent_within_s: URGENT_WITHIN_S,
        }
    }
}

/// The legs of `terms` that live on `network`: the core's request and what the
/// contract will see.
pub fn reservations_on(
    network: NetworkId,
    assets: &AssetMap,
    terms: &DealTerms,
) -> Result<Vec<(ReserveRequest, EvmReservation)>, ChainError> {
    let deal_id = terms.id();
    LegKind::BOTH
        .iter()
        .filter(|leg| terms.leg(**leg).network == network)
        .map(|leg| {
            let request = expected_request(terms, deal_id, *leg);
            let reservation = evm_reservation(assets, &request)?;
            Ok((request, reservation))
        })
        .collect()
}

/// A reserve request in the contract's terms.
pub fn evm_reservation(assets: &AssetMap, request: &ReserveRequest) -> Result<EvmReservation, ChainError> {
    Ok(EvmReservation {
        deal_id: request.deal_id,
        leg: request.leg,
        asset: assets.evm_asset(&request.asset)?,
        owner: evm_address(&request.owner)?,
        beneficiary: evm_address(&request.beneficiary)?,
        keeper: request.keeper.as_ref().map(evm_address).transpose()?,
        condition: request.condition.clone(),
        expiry_ms: request.expiry_ms,
    })
}

/// Sends escrow operations to one deployed contract.
#[derive(Clone, Debug)]
pub struct EvmEscrow {
    network: NetworkId,
    client: EscrowClient,
    provider: DynProvider,
    assets: Arc<AssetMap>,
    fees: FeePolicy,
    /// The next nonce of each sending account, numbered here so concurrent
    /// submissions from one account never take the same one.
    nonces: Arc<Mutex<HashMap<Address, u64>>>,
    /// Transactions replaced with higher fees, since this escrow was made.
    replacements: Arc<AtomicU64>,
    /// Offers priced as urgent claims, since this escrow was made.
    urgent_offers: Arc<AtomicU64>,
}

impl EvmEscrow {
    pub fn new(network: NetworkId, client: EscrowClient, provider: DynProvider, assets: AssetMap) -> EvmEscrow {
        EvmEscrow {
            network,
            client,
            provider,
            assets: Arc::new(assets),
            fees: FeePolicy::default(),
            nonces: Arc::new(Mutex::new(HashMap::new())),
            replacements: Arc::new(AtomicU64::new(0)),
            urgent_offers: Arc::new(AtomicU64::new(0)),
        }
    }

    pub fn with_fees(mut self, fees: FeePolicy) -> EvmEscrow {
        self.fees = fees;
        self
    }

    pub fn network(&self) -> NetworkId {
        self.network
    }

    pub fn assets(&self) -> &AssetMap {
        &self.assets
    }

    pub fn client(&self) -> &EscrowClient {
        &self.client
    }

    /// Sends `op` from `from` for a deal with `terms`, and waits until it is mined.
    /// Reverts come back decoded (`EvmError::Reverted`), never as hex.
    pub async fn submit(&self, from: Address, terms: &DealTerms, op: &EscrowOp) -> Result<Submitted, ChainError> {
        let deal_id = terms.id();
        let leg = self.leg_of(terms, deal_id, op.reservation_id())?;
        let request = expected_request(terms, deal_id, leg);
        let reservation = match op {
            EscrowOp::Reserve(asked) => evm_reservation(&self.assets, asked)?,
            _ => evm_reservation(&self.assets, &request)?,
        };
        let call = |input| self.client.call(input);
        // A claim must be mined before its leg expires: past that the owner
        // takes the asset back.
        let claim_deadline = Some(request.expiry_ms);
        let sent = match op {
            EscrowOp::Resolve { verdict, .. } => {
                // A commit or abort presented as a verdict would build the
                // execute or cancel call instead: it is refused here.
                if !verdict.decision.is_verdict() {
                    return Err(ChainError::NotAVerdict(verdict.decision));
                }
                let input = reservation.certificate_input(from, verdict.decision, signature_bytes(verdict));
                self.send(from, call(input), None).await
            }
            EscrowOp::Reserve(_) => {
                // The contract makes the sender the owner: sent by anyone else, the
                // reservation would lock the sender's asset under terms the deal never had.
                if from != reservation.owner {
                    return Err(EvmError::NotOwner { owner: reservation.owner, sender: from }.into());
                }
                let value = reservation.asset.native_value();
                self.send(from, call(reservation.reserve_input()).value(value), None).await
            }
            EscrowOp::Execute { token: Token::Secret(secret), .. } => {
                crate::client::check_secret(&reservation, secret)?;
                self.send(from, call(reservation.execute_input(from, secret)), claim_deadline).await
            }
            EscrowOp::Execute { token: Token::Certificate(certificate), .. } => {
                let input = reservation.certificate_input(from, Decision::Commit, signature_bytes(certificate));
                self.send(from, call(input), claim_deadline).await
            }
            EscrowOp::Cancel { certificate: None, .. } => {
                self.send(from, call(reservation.cancel_input(from)), None).await
            }
            EscrowOp::Cancel { certificate: Some(certificate), .. } => {
                let input = reservation.certificate_input(from, Decision::Abort, signature_bytes(certificate));
                self.send(from, call(input), None).await
            }
        };
        match sent {
            // Terms the slot does not hold: if it holds them marked held, the leg
            // was executed for an inspection period and waits for the verdict, so
            // an execute or cancel of it is done already, as the core's rules say.
            Err(EvmError::Escrow(InterlockEscrowErrors::TermsMismatch(_)))
                if !matches!(op, EscrowOp::Reserve(_) | EscrowOp::Resolve { .. })
                    && self.client.state(&reservation).await? == SlotState::Held =>
            {
                Err(ChainError::AwaitingVerdict(reservation.id()))
            }
            sent => Ok(sent?),
        }
    }

    fn leg_of(&self, terms: &DealTerms, deal_id: DealId, id: ReservationId) -> Result<LegKind, ChainError> {
        let leg = LegKind::BOTH
            .into_iter()
            .find(|leg| interlock_core::reservation_id(deal_id, *leg) == id)
            .ok_or(ChainError::UnknownReservation(id))?;
        let found = terms.leg(leg).network;
        if found != self.network {
            return Err(ChainError::OtherNetwork { leg, found, expected: self.network });
        }
        Ok(leg)
    }
}
