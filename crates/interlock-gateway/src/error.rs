//! Why a gateway refused a call, and the gRPC status each reason becomes.

use interlock_core::{DealId, NetworkId, TermsError};
use interlock_rpc::store::StoreError;
use tonic::{Code, Status};

#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    /// Bytes that do not decode into what the field must hold.
    #[error("malformed {field}: {reason}")]
    Malformed { field: &'static str, reason: String },
    #[error("invalid deal terms: {0}")]
    Terms(#[from] TermsError),
    /// A signature that does not verify, or one that is missing where it must be.
    #[error("{0}")]
    Unauthenticated(String),
    /// A peer's report that decodes but contradicts itself or what this
    /// gateway holds signed for it (the reservation the peer asserted, or the
    /// deal's terms): no event of any chain looks like it.
    #[error("{0}")]
    Contradicted(String),
    /// The caller may not do this.
    #[error("{0}")]
    Denied(String),
    #[error("{0}")]
    NotFound(String),
    /// Well formed and allowed, but not now.
    #[error("{0}")]
    Precondition(String),
    /// Done once already (a routed message handled or relayed before).
    #[error("{0}")]
    Duplicate(String),
    #[error("{what}: {count} exceeds the limit {max}")]
    TooMany { what: &'static str, count: usize, max: usize },
    /// Terms this network's platform cannot hold (a mode, an asset kind, an
    /// inspection period).
    #[error("deal {deal_id} cannot settle here: {reason}")]
    Unsupported { deal_id: DealId, reason: String },
    #[error("deal {deal_id} has no leg on {network}, which this gateway fronts")]
    NotOurDeal { deal_id: DealId, network: NetworkId },
    #[error("gateway storage failed: {0}")]
    Store(#[from] StoreError),
    /// The ledger node's answer, passed through with its code and message.
    #[error("{}", .0.message())]
    Ledger(Status),
    /// A storage call on the blocking pool that never returned (it panicked
    /// or the runtime is shutting down).
    #[error("gateway storage call {what} did not finish: {reason}")]
    Blocking { what: &'static str, reason: String },
}

impl GatewayError {
    pub fn code(&self) -> Code {
        match self {
            GatewayError::Malformed { .. } | GatewayError::Terms(_) | GatewayError::NotOurDeal { .. } => {
                Code::InvalidArgument
            }
            GatewayError::TooMany { .. } | GatewayError::Contradicted(_) | GatewayError::Unsupported { .. } => {
                Code::InvalidArgument
            }
            GatewayError::Unauthenticated(_) => Code::Unauthenticated,
            GatewayError::Denied(_) => Code::PermissionDenied,
            GatewayError::NotFound(_) => Code::NotFound,
            GatewayError::Precondition(_) => Code::FailedPrecondition,
            GatewayError::Duplicate(_) => Code::AlreadyExists,
            GatewayError::Store(_) => Code::Unavailable,
            GatewayError::Ledger(status) => status.code(),
            GatewayError::Blocking { .. } => Code::Internal,
        }
    }

    pub fn malformed(field: &'static str, reason: impl ToString) -> GatewayError {
        GatewayError::Malformed { field, reason: reason.to_string() }
    }
}

/// A peer's integer outside its field's range is malformed input, refused
/// before anything is recorded.
impl From<interlock_rpc::wire::OutOfRange> for GatewayError {
    fn from(error: interlock_rpc::wire::OutOfRange) -> GatewayError {
        GatewayError::Malformed { field: error.field, reason: error.reason() }
    }
}

impl From<GatewayError> for Status {
    fn from(error: GatewayError) -> Status {
        match error {
            GatewayError::Ledger(status) => status,
            other => Status::new(other.code(), other.to_string()),
        }
    }
}
