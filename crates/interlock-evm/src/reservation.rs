//! A deal leg as the escrow contract sees it.

use crate::bindings::InterlockEscrow::Terms;
use alloy::primitives::{keccak256, Address, B256, U256};
use alloy::sol_types::SolValue;
use interlock_core::{reservation_id, Condition, DealId, LegKind, NotaryAddress, ReservationId};

pub const MODE_HASHLOCK: u8 = 1;
pub const MODE_NOTARY: u8 = 2;
const ASSET_NATIVE: u8 = 0;
const ASSET_ERC20: u8 = 1;
const ASSET_ERC721: u8 = 2;

/// What one reservation locks.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum EvmAsset {
    Native { amount_wei: U256 },
    Erc20 { token: Address, amount: U256 },
    Erc721 { token: Address, token_id: U256 },
}

impl EvmAsset {
    /// The wei a reserve call must send with it.
    pub fn native_value(&self) -> U256 {
        match self {
            EvmAsset::Native { amount_wei } => *amount_wei,
            EvmAsset::Erc20 { .. } | EvmAsset::Erc721 { .. } => U256::ZERO,
        }
    }

    /// `"native"`, `"erc20"` or `"erc721"`.
    pub fn kind_name(&self) -> &'static str {
        match self {
            EvmAsset::Native { .. } => "native",
            EvmAsset::Erc20 { .. } => "erc20",
            EvmAsset::Erc721 { .. } => "erc721",
        }
    }

    fn parts(&self) -> (u8, Address, U256) {
        match *self {
            EvmAsset::Native { amount_wei } => (ASSET_NATIVE, Address::ZERO, amount_wei),
            EvmAsset::Erc20 { token, amount } => (ASSET_ERC20, token, amount),
            EvmAsset::Erc721 { token, token_id } => (ASSET_ERC721, token, token_id),
        }
    }
}

/// One leg's reservation on an EVM network: everything its commitment covers.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct EvmReservation {
    pub deal_id: DealId,
    pub leg: LegKind,
    pub asset: EvmAsset,
    pub owner: Address,
    pub beneficiary: Address,
    pub keeper: Option<Address>,
    /// The hashlock's sha256 hash, or the notary set and threshold.
    pub condition: Condition,
    /// The hashlock expiry, or the notary-mode backstop expiry (unix milliseconds).
    pub expiry_ms: u64,
}

impl EvmReservation {
    /// The core's reservation id, which is also the contract's storage key.
    pub fn id(&self) -> ReservationId {
        reservation_id(self.deal_id, self.leg)
    }

    pub fn mode(&self) -> u8 {
        match self.condition {
            Condition::Hashlock(_) => MODE_HASHLOCK,
            Condition::Notary { .. } => MODE_NOTARY,
        }
    }

    /// The contract's `Terms` for this reservation.
    pub fn terms(&self) -> Terms {
        let (asset_kind, token, value) = self.asset.parts();
        let condition = match &self.condition {
            Condition::Hashlock(hash) => B256::from(hash.0),
            Condition::Notary { notaries, threshold } => notary_set_hash(notaries, *threshold),
        };
        Terms {
            dealId: B256::from(self.deal_id.0 .0),
            leg: self.leg.tag(),
            mode: self.mode(),
            assetKind: asset_kind,
            token,
            value,
            owner: self.owner,
            beneficiary: self.beneficiary,
            keeper: self.keeper.unwrap_or(Address::ZERO),
            condition,
            expiryMs: self.expiry_ms,
        }
    }

    /// What the contract stores while the reservation is open: keccak256(abi.encode(terms)).
    pub fn commitment(&self) -> B256 {
        keccak256(self.terms().abi_encode())
    }

    /// The notary set as the contract takes it (empty in hashlock mode).
    pub fn notaries(&self) -> (Vec<Address>, u8) {
        match &self.condition {
            Condition::Hashlock(_) => (Vec::new(), 0),
            Condition::Notary { notaries, threshold } => (evm_addresses(notaries), *threshold),
        }
    }
}

/// The contract's `notarySetHash`: keccak256(abi.encode(notaries, threshold)).
pub fn notary_set_hash(notaries: &[NotaryAddress], threshold: u8) -> B256 {
    // A uint8 is ABI-encoded as one 32-byte word, exactly as a uint256 of the same value.
    keccak256((evm_addresses(notaries), U256::from(threshold)).abi_encode_params())
}

fn evm_addresses(notaries: &[NotaryAddress]) -> Vec<Address> {
    notaries.iter().map(|notary| Address::from(notary.0)).collect()
}
