//! The crate's one error type.

use crate::role::Role;
use std::path::PathBuf;
use time::OffsetDateTime;

/// Everything this crate can refuse. The gRPC layer maps [`IdentityError::NotListed`]
/// to `PermissionDenied`, the certificate and peer errors to `Unauthenticated`, and the
/// rest (files, configuration) to `FailedPrecondition` or `Internal` at start-up.
#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    #[error("invalid name {found:?}: expected 1 to {max} characters of a-z, 0-9 and '-'", max = crate::NAME_LEN_MAX)]
    InvalidName { found: String },
    #[error("unknown role {found:?}: expected one of party, gateway, notary, observer, ledger, agent")]
    UnknownRole { found: String },
    #[error("invalid host {found:?}: expected a dns name such as localhost or an ip address such as 127.0.0.1")]
    InvalidHost { found: String },
    #[error("{found} hosts for one certificate: expected at most {max}", max = crate::HOSTS_MAX)]
    TooManyHosts { found: usize },
    #[error("invalid validity: expected not_before {not_before} to be earlier than not_after {not_after}")]
    InvalidValidity { not_before: OffsetDateTime, not_after: OffsetDateTime },
    #[error("validity of {found_days} days is too long: expected at most {max_days} days")]
    ValidityTooLong { found_days: i64, max_days: i64 },
    #[error("a certificate authority already exists at {path}: refusing to overwrite it")]
    CaExists { path: PathBuf },
    #[error("{path} already exists: refusing to overwrite it (remove it first to re-issue)")]
    FileExists { path: PathBuf },
    #[error("cannot {action} {path}: {source}")]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path} holds no usable pem {expected}: {detail}")]
    Pem { path: PathBuf, expected: &'static str, detail: String },
    #[error("certificate generation failed: {0}")]
    Generate(#[from] rcgen::Error),
    #[error("ca key is {found}: expected an ECDSA P-256 key")]
    CaKeyType { found: String },
    #[error("ca certificate does not match the ca key: {problem}")]
    CaMismatch { problem: String },
    #[error("certificate is not valid x509: {detail}")]
    CertificateParse { detail: String },
    #[error("certificate subject has {found} {attribute} attributes: expected exactly one")]
    SubjectAttribute { attribute: &'static str, found: usize },
    #[error("certificate subject {attribute} is not a utf-8 string")]
    SubjectEncoding { attribute: &'static str },
    #[error("ca certificate key is {found}: expected an ECDSA P-256 key")]
    CaCertificateKey { found: String },
    #[error("peer presented no certificate: expected one issued by the interlock ca")]
    NoPeerCertificate,
    #[error("tls configuration refused: {0}")]
    Tls(#[from] rustls::Error),
    #[error("client certificate verifier refused: {0}")]
    ClientVerifier(#[from] rustls::server::VerifierBuilderError),
    #[error("directory file {path} is not valid directory json: {source}")]
    DirectoryJson {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("invalid directory: {problem}")]
    InvalidDirectory { problem: String },
    #[error("invalid directory signature: expected 1 to 72 bytes in hex, found {found:?}")]
    SignatureEncoding { found: String },
    #[error("directory signature does not verify against the ca key: the directory was changed after signing or signed by another ca")]
    DirectorySignature,
    #[error("certificate of {role} {name:?} expired at {not_after}: now is {now}")]
    Expired { role: Role, name: String, not_after: OffsetDateTime, now: OffsetDateTime },
    #[error("certificate of {role} {name:?} is not valid before {not_before}: now is {now}")]
    NotYetValid { role: Role, name: String, not_before: OffsetDateTime, now: OffsetDateTime },
    #[error("{role} {name:?} is not listed in the directory")]
    NotListed { role: Role, name: String },
}

pub type Result<T, E = IdentityError> = std::result::Result<T, E>;
