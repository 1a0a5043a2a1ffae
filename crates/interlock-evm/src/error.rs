//! The adapter's one error type, with reverts decoded into words.

use crate::bindings::InterlockEscrow::InterlockEscrowErrors;
use alloy::primitives::{Bytes, B256};
use alloy::sol_types::SolInterface;

alloy::sol! {
    /// The standard token errors (ERC-6093) that OpenZeppelin's ERC-20 and ERC-721 raise;
    /// `SafeERC20` lets them through, so a refused token transfer reads as one of these.
    #[derive(Debug, PartialEq, Eq)]
    interface TokenErrors {
        error ERC20InsufficientBalance(address sender, uint256 balance, uint256 needed);
        error ERC20InsufficientAllowance(address spender, uint256 allowance, uint256 needed);
        error ERC721NonexistentToken(uint256 tokenId);
        error ERC721IncorrectOwner(address sender, uint256 tokenId, address owner);
        error ERC721InsufficientApproval(address operator, uint256 tokenId);
        error ERC721InvalidReceiver(address receiver);
    }
}

#[derive(Debug, thiserror::Error)]
pub enum EvmError {
    /// The escrow contract refused the call with one of its own errors.
    #[error("escrow refused: {}", describe(.0))]
    Escrow(InterlockEscrowErrors),
    /// A token contract refused a transfer the escrow asked for.
    #[error("token refused the transfer: {0:?}")]
    Token(TokenErrors::TokenErrorsErrors),
    /// A hashlock secret refused before sending: its sha256 is not the reservation's
    /// hashlock (the contract would only say the terms presented do not match).
    #[error("invalid hashlock preimage: sha256 does not match reservation {reservation}")]
    WrongSecret { reservation: B256 },
    /// A reserve refused before sending: the contract takes its sender as the owner,
    /// and this sender is not the owner the deal names.
    #[error("reserve must be sent by the owner {owner}, found {sender}")]
    NotOwner { owner: alloy::primitives::Address, sender: alloy::primitives::Address },
    #[error("call reverted with data the escrow's ABI does not describe: {data}")]
    UndecodedRevert { data: Bytes },
    #[error("transaction {tx_hash} was mined but reverted")]
    MinedReverted { tx_hash: B256 },
    #[error("evm node: {0}")]
    Rpc(String),
}

impl EvmError {
    /// Decodes revert data: an escrow error, a token error, or the raw bytes.
    pub fn from_revert_data(data: Bytes) -> EvmError {
        if let Ok(error) = InterlockEscrowErrors::abi_decode(&data) {
            return EvmError::Escrow(error);
        }
        if let Ok(error) = TokenErrors::TokenErrorsErrors::abi_decode(&data) {
            return EvmError::Token(error);
        }
        EvmError::UndecodedRevert { data }
    }

    pub fn from_contract(error: alloy::contract::Error) -> EvmError {
        match error.as_revert_data() {
            Some(data) => EvmError::from_revert_data(data),
            None => EvmError::Rpc(error.to_string()),
        }
    }

    /// The escrow's error, if that is what this is.
    pub fn escrow(&self) -> Option<&InterlockEscrowErrors> {
        match self {
            EvmError::Escrow(error) => Some(error),
            _ => None,
        }
    }
}

/// One line a person can act on, for each of the contract's errors.
pub fn describe(error: &InterlockEscrowErrors) -> String {
    use InterlockEscrowErrors as E;
    match error {
        E::SelfDealing(e) => format!("a reservation may not name its owner {} as beneficiary or keeper", e.owner),
        E::ZeroBeneficiary(_) => "the beneficiary is the zero address".to_owned(),
        E::InvalidLeg(e) => format!("leg {} is neither payment (1) nor delivery (2)", e.leg),
        E::WrongMode(e) => format!("expected a reservation in mode {}, found mode {}", e.expected, e.found),
        E::InvalidAsset(e) => format!(
            "asset kind {} with token {}: expected native (0) with no token, or erc20 (1) / erc721 (2) with one",
            e.assetKind, e.token
        ),
        E::ZeroAmount(_) => "reserved amount must be positive".to_owned(),
        E::WrongNativeValue(e) => format!("expected {} wei sent with the call, found {}", e.expected, e.sent),
        E::ExpiryInPast(e) => format!("expiry {} ms is not in the future (now {} ms)", e.expiryMs, e.nowMs),
        E::InvalidNotarySet(e) => format!(
            "notary threshold {} of {}: expected 1 <= threshold <= notaries <= 16, distinct and non-zero",
            e.threshold, e.count
        ),
        E::AlreadyReserved(e) => format!("reservation {} already exists: each leg is reserved once", e.reservationId),
        E::UnknownReservation(e) => format!("no reservation {}", e.reservationId),
        E::TermsMismatch(e) => format!(
            "the terms presented (with the secret's hash or the notary set's, and the sender as the party it \
             stands for) are not the ones reservation {} committed to",
            e.reservationId
        ),
        E::AlreadyExecuted(e) => format!("reservation {} is already executed: it settles once", e.reservationId),
        E::AlreadyCancelled(e) => format!("reservation {} is already cancelled: it settles once", e.reservationId),
        E::NotBeneficiary(e) => format!(
            "only the beneficiary {} (or the keeper it named) may execute reservation {}, found {}",
            e.beneficiary, e.reservationId, e.sender
        ),
        E::Expired(e) => {
            format!("reservation {} expired at {} ms, now {} ms", e.reservationId, e.expiryMs, e.nowMs)
        }
        E::NotExpired(e) => format!(
            "reservation {} cannot be cancelled before its expiry {} ms (now {} ms) without an abort certificate",
            e.reservationId, e.expiryMs, e.nowMs
        ),
        E::MalformedCertificate(e) => format!(
            "certificate signatures are {} bytes: expected a multiple of 65, at most 16 signatures",
            e.signaturesLength
        ),
        E::BadSignature(e) => format!("certificate signature {} is malformed or does not recover", e.index),
        E::SignerNotInSet(e) => format!(
            "certificate signature {} recovers to {}, who is not in the deal's notary set \
             (a signature over another deal or decision recovers to a stranger)",
            e.index, e.signer
        ),
        E::DuplicateSigner(e) => format!("certificate signature {} repeats notary {}", e.index, e.signer),
        E::BelowThreshold(e) => {
            format!("certificate has {} notary signatures, the deal needs {}", e.signers, e.threshold)
        }
        E::NativeTransferFailed(e) => format!("{} refused the native coin", e.to),
        E::UnexpectedCoin(e) => {
            format!("{} wei sent to the escrow with no call: it takes coin only with a reservation", e.value)
        }
        E::NoInspectionModule(e) => {
            format!("{} holds no contract: the escrow is deployed after its inspection module, naming it", e.module)
        }
        E::NotHeld(e) => format!(
            "reservation {} is open, not held: a verdict comes after the commit certificate executes it",
            e.reservationId
        ),

        E::SafeERC20FailedOperation(e) => format!("token {} failed the transfer without a reason", e.token),
    }
}
