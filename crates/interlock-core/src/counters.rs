//! Process-wide counts of the costly work a role does: signatures checked
//! and durable commits. A role's metrics report them, and `bench sandbox`
//! divides their growth over a run by the deals it settled.

use std::sync::atomic::{AtomicU64, Ordering};

static ED25519_VERIFIED: AtomicU64 = AtomicU64::new(0);
static SECP256K1_RECOVERED: AtomicU64 = AtomicU64::new(0);
static DURABLE_COMMITS: AtomicU64 = AtomicU64::new(0);

/// What this process has done so far.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub struct Counts {
    /// ed25519 signatures verified (deal signatures, transactions).
    pub ed25519_verified: u64,
    /// secp256k1 signatures recovered (notary votes and certificates).
    pub secp256k1_recovered: u64,
    /// Storage transactions committed, each synced to disk before it returns.
    pub durable_commits: u64,
}

pub(crate) fn ed25519_verified() {
    ED25519_VERIFIED.fetch_add(1, Ordering::Relaxed);
}

pub(crate) fn secp256k1_recovered() {
    SECP256K1_RECOVERED.fetch_add(1, Ordering::Relaxed);
}

/// One more storage transaction committed and synced (a store's commit hook calls it).
pub fn durable_commit() {
    DURABLE_COMMITS.fetch_add(1, Ordering::Relaxed);
}

/// The counts so far.
pub fn counts() -> Counts {
    Counts {
        ed25519_verified: ED25519_VERIFIED.load(Ordering::Relaxed),
        secp256k1_recovered: SECP256K1_RECOVERED.load(Ordering::Relaxed),
        durable_commits: DURABLE_COMMITS.load(Ordering::Relaxed),
    }
}
