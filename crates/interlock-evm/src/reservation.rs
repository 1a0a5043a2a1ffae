//! A deal leg as the escrow contract sees it.

use crate::bindings::InterlockEscrow as E;
use crate::bindings::InterlockInspection as I;
use alloy::primitives::{keccak256, Address, Bytes, B256, U256};
use alloy::sol_types::{SolCall, SolValue};
use interlock_core::{reservation_id, Condition, DealId, Decision, LegKind, NotaryAddress, ReservationId, Secret};

pub const MODE_HASHLOCK: u8 = 1;
pub const MODE_NOTARY: u8 = 2;
/// Notary mode with an inspection period: the legs the escrow's inspection module
/// (`InterlockInspection`) reserves, holds and settles.
pub const MODE_INSPECTED: u8 = 3;
const ASSET_NATIVE: u8 = 0;
const ASSET_ERC20: u8 = 1;
const ASSET_ERC721: u8 = 2;
/// Where the contract's leg word keeps each field (`PARTY_SHIFT` and the rest there).
const PARTY_SHIFT: usize = 96;
const EXPIRY_SHIFT: usize = 32;
const LEG_SHIFT: usize = 16;
const MODE_SHIFT: usize = 8;

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
    /// The core's reservation id, which is also the contract's storage slot.
    pub fn id(&self) -> ReservationId {
        reservation_id(self.deal_id, self.leg)
    }

    pub fn mode(&self) -> u8 {
        match self.condition {
            Condition::Hashlock(_) => MODE_HASHLOCK,
            Condition::Notary { .. } => MODE_NOTARY,
            Condition::Inspected { .. } => MODE_INSPECTED,
        }
    }

    fn inspected(&self) -> bool {
        matches!(self.condition, Condition::Inspected { .. })
    }

    /// The contract's leg word naming `party`: the address in bits 255..96, then the
    /// expiry, leg, mode and asset kind (`PARTY_SHIFT` in the contract).
    fn leg_word(&self, party: Address) -> U256 {
        let (asset_kind, _, _) = self.asset.parts();
        (U256::from_be_slice(party.as_slice()) << PARTY_SHIFT)
            | (U256::from(self.expiry_ms) << EXPIRY_SHIFT)
            | (U256::from(self.leg.tag()) << LEG_SHIFT)
            | (U256::from(self.mode()) << MODE_SHIFT)
            | U256::from(asset_kind)
    }

    /// The leg word a reserve call sends: it names the beneficiary (the owner is the sender).
    pub fn offer(&self) -> U256 {
        self.leg_word(self.beneficiary)
    }

    /// The leg word the commitment covers: it names the owner.
    pub fn held(&self) -> U256 {
        self.leg_word(self.owner)
    }

    /// The held word as `from` sends it: an owner cancelling its own reservation leaves
    /// the address out (the contract takes the sender's).
    fn held_sent_by(&self, from: Address) -> U256 {
        self.leg_word(if from == self.owner { Address::ZERO } else { self.owner })
    }

    /// The hashlock's sha256 hash, or the contract's `notarySetHash` of the set.
    pub fn condition_hash(&self) -> B256 {
        match &self.condition {
            Condition::Hashlock(hash) => B256::from(hash.0),
            Condition::Notary { notaries, threshold } | Condition::Inspected { notaries, threshold } => {
                notary_set_hash(notaries, *threshold)
            }
        }
    }

    fn keeper_address(&self) -> Address {
        self.keeper.unwrap_or(Address::ZERO)
    }

    /// The contract's `_partiesHash`: keccak256(abi.encode(beneficiary, keeper, condition)).
    pub fn parties(&self) -> B256 {
        keccak256((self.beneficiary, self.keeper_address(), self.condition_hash()).abi_encode_params())
    }

    /// What the contract stores while the reservation is open:
    /// keccak256(abi.encode(held, token, value, parties)).
    pub fn commitment(&self) -> B256 {
        let (_, token, value) = self.asset.parts();
        keccak256((self.held(), token, value, self.parties()).abi_encode_params())
    }

    /// What the contract stores while the reservation is open: the commitment, XOR
    /// `INSPECTION_MARK` for a leg with an inspection period.
    pub fn open_slot(&self) -> B256 {
        if self.inspected() {
            self.commitment() ^ inspection_mark()
        } else {
            self.commitment()
        }
    }

    /// What the contract stores while the reservation is held for a verdict: the
    /// commitment XOR `HELD_MARK`.
    pub fn held_commitment(&self) -> B256 {
        self.commitment() ^ held_mark()
    }

    /// The notary set as the contract takes it, packed (`notary_set_bytes`; empty in
    /// hashlock mode).
    pub fn notary_set(&self) -> Vec<u8> {
        match &self.condition {
            Condition::Hashlock(_) => Vec::new(),
            Condition::Notary { notaries, threshold } | Condition::Inspected { notaries, threshold } => {
                notary_set_bytes(notaries, *threshold)
            }
        }
    }

    /// The calldata of the reserve call its owner sends: `reserve` (native coin) or
    /// `reserveToken` in hashlock mode, `reserveNotary` in notary mode, the inspection
    /// module's `reserveInspected` (same arguments) for a leg with an inspection period.
    pub fn reserve_input(&self) -> Bytes {
        let (deal_id, offer, keeper) = (B256::from(self.deal_id.0 .0), self.offer(), self.keeper_address());
        let (_, token, value) = self.asset.parts();
        match (&self.condition, self.asset) {
            (Condition::Hashlock(hash), EvmAsset::Native { .. }) => {
                E::reserveCall { dealId: deal_id, offer, keeper, hashlock: B256::from(hash.0) }.abi_encode()
            }
            (Condition::Hashlock(hash), _) => {
                let hashlock = B256::from(hash.0);
                E::reserveTokenCall { dealId: deal_id, offer, keeper, hashlock, token, value }.abi_encode()
            }
            (Condition::Notary { .. } | Condition::Inspected { .. }, _) => {
                let notary_set = self.notary_set().into();
                let call = E::reserveNotaryCall { dealId: deal_id, offer, keeper, token, value, notarySet: notary_set };
                with_selector(call.abi_encode(), self.inspected().then_some(I::reserveInspectedCall::SELECTOR))
            }
        }
        .into()
    }

    /// The calldata of a hashlock execute sent by `from`: `execute` when it is the
    /// beneficiary, `executeAsKeeper` when it is the keeper. Anyone else gets the
    /// beneficiary's call, which the contract refuses (the terms do not match).
    pub fn execute_input(&self, from: Address, secret: &Secret) -> Bytes {
        let (id, secret) = (B256::from(self.id().0 .0), B256::from(secret.0));
        let (held, (_, token, value)) = (self.held(), self.asset.parts());
        if self.keeper == Some(from) && from != self.beneficiary {
            let beneficiary = self.beneficiary;
            return E::executeAsKeeperCall { id, secret, held, token, value, beneficiary }.abi_encode().into();
        }
        E::executeCall { id, secret, held, token, value, keeper: self.keeper_address() }.abi_encode().into()
    }

    /// The calldata of `executeNotary` (commit) or `cancelNotary` (abort) sent by `from`
    /// with `signatures` (r||s||v each), which follow the notary set in the certificate
    /// the contract takes; for a leg with an inspection period, the
    /// inspection module's `holdInspectedByNotaries`, `cancelInspectedByNotaries`,
    /// `releaseInspectedByNotaries` or `reverseInspectedByNotaries`. The beneficiary
    /// executing, or the owner cancelling, leaves its own address out; a verdict names
    /// every party, since anyone may present it.
    pub fn certificate_input(&self, from: Address, decision: Decision, signatures: Bytes) -> Bytes {
        let (_, token, value) = self.asset.parts();
        let inspected = self.inspected();
        let (held, beneficiary, selector) = match decision {
            Decision::Commit => {
                let beneficiary = if from == self.beneficiary { Address::ZERO } else { self.beneficiary };
                let selector =
                    if inspected { I::holdInspectedByNotariesCall::SELECTOR } else { E::executeNotaryCall::SELECTOR };
                (self.held(), beneficiary, selector)
            }
            Decision::Abort => {
                let selector =
                    if inspected { I::cancelInspectedByNotariesCall::SELECTOR } else { E::cancelNotaryCall::SELECTOR };
                (self.held_sent_by(from), self.beneficiary, selector)
            }
            Decision::Release => (self.held(), self.beneficiary, I::releaseInspectedByNotariesCall::SELECTOR),
            Decision::Reverse => (self.held(), self.beneficiary, I::reverseInspectedByNotariesCall::SELECTOR),
        };
        let call = E::executeNotaryCall {
            dealId: B256::from(self.deal_id.0 .0),
            held,
            token,
            value,
            beneficiary,
            keeper: self.keeper_address(),
            certificate: [self.notary_set(), signatures.to_vec()].concat().into(),
        };
        // All six take the same arguments (the contracts keep them alike so they
        // share their decoding): only the selector differs.
        with_selector(call.abi_encode(), Some(selector)).into()
    }

    /// The calldata of `cancel` (after the expiry or backstop) sent by `from`; the
    /// inspection module's `cancelInspected` (same arguments) for an inspected leg.
    pub fn cancel_input(&self, from: Address) -> Bytes {
        let (_, token, value) = self.asset.parts();
        let (id, held, parties) = (B256::from(self.id().0 .0), self.held_sent_by(from), self.parties());
        let call = E::cancelCall { id, held, token, value, parties };
        with_selector(call.abi_encode(), self.inspected().then_some(I::cancelInspectedCall::SELECTOR)).into()
    }
}

/// `input` with its first four bytes replaced by `selector`, if given: the call of
/// another function that takes the same arguments.
fn with_selector(mut input: Vec<u8>, selector: Option<[u8; 4]>) -> Vec<u8> {
    if let Some(selector) = selector {
        input[..4].copy_from_slice(&selector);
    }
    input
}

/// The contract's `INSPECTION_MARK`: keccak256("interlock/escrow/inspection").
pub fn inspection_mark() -> B256 {
    keccak256(b"interlock/escrow/inspection")
}

/// The contract's `HELD_MARK`: keccak256("interlock/escrow/held").
pub fn held_mark() -> B256 {
    keccak256(b"interlock/escrow/held")
}

/// A notary set as the contract takes it, packed: the threshold, the number of members
/// (one byte each), then each member's 20-byte address.
pub fn notary_set_bytes(notaries: &[NotaryAddress], threshold: u8) -> Vec<u8> {
    // A set of more than 255 members writes a count its length disagrees with, which
    // the contract refuses as an invalid set.
    let count = u8::try_from(notaries.len()).unwrap_or(u8::MAX);
    let mut set = Vec::with_capacity(2 + 20 * notaries.len());
    set.extend_from_slice(&[threshold, count]);
    for notary in notaries {
        set.extend_from_slice(&notary.0);
    }
    set
}

/// The contract's `_notarySetHash`: keccak256 of the packed set.
pub fn notary_set_hash(notaries: &[NotaryAddress], threshold: u8) -> B256 {
    keccak256(notary_set_bytes(notaries, threshold))
}

/// The signatures of a certificate as a certificate entry point takes it (the notary
/// set, then the signatures), or `None` if its count byte runs past its end.
pub fn certificate_signatures(certificate: &[u8]) -> Option<&[u8]> {
    let count = usize::from(*certificate.get(1)?);
    certificate.get(2 + 20 * count..)
}
