//! How the ledger's refusals become gRPC statuses: the right code, and the
//! ledger's own message, which says what was expected and what was found.

use interlock_core::{EscrowError, ReservationState};
use interlock_ledger::LedgerError;
use tonic::{Code, Status};

/// The status metadata key that carries a refusal's platform error kind
/// (`interlock_chain::ChainErrorKind::wire`): callers act on it, never on text.
pub const KIND_METADATA: &str = "interlock-error-kind";

/// A ledger refusal as a status: its code, its message and its kind.
pub fn ledger_status(error: &LedgerError) -> Status {
    let kind = interlock_ledger::local::chain_error(error).kind;
    let mut status = ledger_code_status(error);
    status.metadata_mut().insert(KIND_METADATA, tonic::metadata::MetadataValue::from_static(kind.wire()));
    status
}

fn ledger_code_status(error: &LedgerError) -> Status {
    let code = match error {
        LedgerError::Decode(_) | LedgerError::TooLarge { .. } | LedgerError::BadAmount => Code::InvalidArgument,
        LedgerError::WrongNetwork { .. } | LedgerError::ForeignAddress(_) => Code::InvalidArgument,
        LedgerError::FeeRequired(_) | LedgerError::NoFees | LedgerError::NotASpend | LedgerError::BadFee { .. } => {
            Code::InvalidArgument
        }
        LedgerError::NoInspection(_) => Code::InvalidArgument,
        LedgerError::BadSignature { .. } => Code::Unauthenticated,
        LedgerError::UnknownAccount(_) | LedgerError::NotOperator(_) => Code::PermissionDenied,
        LedgerError::StaleNonce { .. } | LedgerError::AlreadyRegistered(_) | LedgerError::ItemExists(_) => {
            Code::AlreadyExists
        }
        LedgerError::Escrow(escrow) => escrow_code(escrow),
        LedgerError::MempoolFull(_) => Code::ResourceExhausted,
        LedgerError::Store(_) | LedgerError::StoreNetwork { .. } => Code::Unavailable,
    };
    Status::new(code, error.to_string())
}

fn escrow_code(error: &EscrowError) -> Code {
    match error {
        EscrowError::NotOwner { .. } | EscrowError::NotBeneficiary { .. } => Code::PermissionDenied,
        EscrowError::UnknownReservation(_) | EscrowError::UnknownAsset(_) => Code::NotFound,
        EscrowError::AlreadyReserved(_) | EscrowError::AlreadySettled { .. } => Code::AlreadyExists,
        EscrowError::NotHeld { state: ReservationState::Executed | ReservationState::Cancelled, .. } => {
            Code::AlreadyExists
        }
        EscrowError::NotHeld { .. } => Code::FailedPrecondition,
        EscrowError::WrongSecret(_)
        | EscrowError::BadCertificate { .. }
        | EscrowError::WrongTokenKind { .. }
        | EscrowError::NotAVerdict { .. } => Code::PermissionDenied,
        EscrowError::Expired { .. } | EscrowError::NotExpired { .. } => Code::FailedPrecondition,
        EscrowError::InsufficientFunds { .. } | EscrowError::NotItemOwner { .. } => Code::FailedPrecondition,
        EscrowError::ExpiryInPast { .. }
        | EscrowError::SelfDealing(_)
        | EscrowError::ZeroAmount
        | EscrowError::NotarySet { .. } => Code::InvalidArgument,
    }
}
