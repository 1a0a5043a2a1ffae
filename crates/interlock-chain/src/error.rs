//! The one error every platform returns, classified by what the caller should do.

use std::fmt;

/// What a caller does about a [`ChainError`]. A saga, a keeper or an agent decides
/// from the kind alone; the message is for people.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum ChainErrorKind {
    /// A passing condition: the node is unreachable or busy, a nonce raced, the
    /// fee market moved. The same operation may succeed later.
    RetryLater,
    /// The leg is already where this operation would take it, or beyond: reserved
    /// (for a reserve), executed or cancelled (for an execute or a cancel). The
    /// operation is idempotent: nothing is left to do.
    AlreadyDone,
    /// The chain's escrow rules refuse the operation as asked (wrong secret, not
    /// the beneficiary, expired, certificate short of its threshold …). Sending it
    /// again will not help; something else may.
    Rejected,
    /// The platform cannot do this at all here: a misconfiguration, an asset it
    /// does not know, a key for another account. A person must act.
    Fatal,
}

impl ChainErrorKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ChainErrorKind::RetryLater => "retry later",
            ChainErrorKind::AlreadyDone => "already done",
            ChainErrorKind::Rejected => "rejected",
            ChainErrorKind::Fatal => "fatal",
        }
    }
}

impl ChainErrorKind {
    /// The kind's name on the wire (a gRPC status's metadata, a JSON field).
    pub fn wire(self) -> &'static str {
        match self {
            ChainErrorKind::RetryLater => "retry-later",
            ChainErrorKind::AlreadyDone => "already-done",
            ChainErrorKind::Rejected => "rejected",
            ChainErrorKind::Fatal => "fatal",
        }
    }

    /// The kind [`ChainErrorKind::wire`] named, if any.
    pub fn from_wire(text: &str) -> Option<ChainErrorKind> {
        [ChainErrorKind::RetryLater, ChainErrorKind::AlreadyDone, ChainErrorKind::Rejected, ChainErrorKind::Fatal]
            .into_iter()
            .find(|kind| kind.wire() == text)
    }
}

impl fmt::Display for ChainErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A platform's answer that something did not happen, and why.
#[derive(Clone, PartialEq, Eq, Debug, thiserror::Error)]
#[error("{kind}: {message}")]
pub struct ChainError {
    pub kind: ChainErrorKind,
    pub message: String,
}

impl ChainError {
    pub fn new(kind: ChainErrorKind, message: impl Into<String>) -> ChainError {
        ChainError { kind, message: message.into() }
    }
    pub fn retry_later(message: impl Into<String>) -> ChainError {
        ChainError::new(ChainErrorKind::RetryLater, message)
    }
    pub fn already_done(message: impl Into<String>) -> ChainError {
        ChainError::new(ChainErrorKind::AlreadyDone, message)
    }
    pub fn rejected(message: impl Into<String>) -> ChainError {
        ChainError::new(ChainErrorKind::Rejected, message)
    }
    pub fn fatal(message: impl Into<String>) -> ChainError {
        ChainError::new(ChainErrorKind::Fatal, message)
    }

    pub fn is(&self, kind: ChainErrorKind) -> bool {
        self.kind == kind
    }
}
