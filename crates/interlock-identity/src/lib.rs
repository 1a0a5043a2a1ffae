//! Interlock's identity layer: a certificate authority, certificates for every role,
//! mutual-TLS configurations and the CA-signed directory. It knows nothing of gRPC;
//! the services build their TLS from [`server_config`] and [`client_config`] and, after
//! each handshake, turn the peer's certificate into a [`PeerIdentity`] and check it
//! with [`authorise`] (invariant 5 of `DESIGN.md`).
//!
//! # Certificates
//!
//! Every key is **ECDSA P-256 with SHA-256** (rcgen's `PKCS_ECDSA_P256_SHA256`), the
//! CA's and every leaf's: every TLS stack speaks it, including the BoringSSL inside
//! Python's and C++'s gRPC, which refuse ed25519 certificates. rustls 0.23 with the
//! `ring` provider verifies P-256 certificates and signs
//! TLS 1.3 handshakes with them. A leaf certificate states who holds it in its
//! subject: **organizationalUnitName = the [`Role`]** (`gateway`, `party`, …) and
//! **commonName = the holder's name** (`gw-alpha`). It carries subjectAltNames for
//! the hosts it serves, and both the serverAuth and clientAuth extended key usages,
//! so one certificate serves a service's listener and its outgoing calls.
//!
//! # Files
//!
//! A CA directory holds `ca.pem` and `ca.key`; an issued identity is `<name>.pem` and
//! `<name>.key`. Private keys are created with mode 0600, certificates and the
//! directory with mode 0644. Nothing is overwritten except the directory file, which
//! is replaced atomically. Unix only.

// Integers from peers, chains and files are converted with `try_from` and
// checked arithmetic; a cast that could truncate, wrap or drop a sign is a
// build error (an `allow` on the smallest item says why a cast is safe).
#![deny(clippy::cast_possible_truncation, clippy::cast_possible_wrap, clippy::cast_sign_loss)]

mod ca;
mod certificate;
mod directory;
mod error;
mod files;
mod hex;
mod role;
pub mod routes;
mod tls;

pub use ca::{
    CertificateAuthority, IssuedCertificate, IssuedFiles, Validity, CA_BACKDATE, CA_CERTIFICATE_FILE, CA_KEY_FILE,
    CA_VALIDITY_DAYS,
};
pub use certificate::{load_certificate, load_certificate_chain, load_private_key, PeerIdentity, CHAIN_LEN_MAX};
pub use directory::{
    authorise, DependentEntry, Directory, GatewayEntry, LedgerEntry, Member, NetworkEntry, NotaryEntry, ObserverEntry,
    PartyEntry, SignedDirectory,
};
pub use error::{IdentityError, Result};
pub use files::{check_private_file, PRIVATE_KEY_MODE, PUBLIC_FILE_MODE};
pub use role::{validate_name, Role};
pub use routes::{GatewayLink, Route, ROUTE_NETWORKS_MAX};
pub use tls::{
    client_config, client_config_from_files, crypto_provider, install_crypto_provider, server_config,
    server_config_from_files,
};

/// Longest holder or directory name, in bytes.
pub const NAME_LEN_MAX: usize = 64;
/// Most hosts (subjectAltNames) one certificate may name.
pub const HOSTS_MAX: usize = 16;
/// Longest validity of an issued certificate, in days.
pub const LEAF_VALIDITY_DAYS_MAX: i64 = 825;
/// Most entries in each list of the directory.
pub const DIRECTORY_ENTRIES_MAX: usize = 1024;
/// Largest signed directory file, in bytes.
pub const DIRECTORY_FILE_LEN_MAX: usize = 4 << 20;
/// Longest `host:port` endpoint, in bytes.
pub const ENDPOINT_LEN_MAX: usize = 255;
