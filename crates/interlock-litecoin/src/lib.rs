//! Interlock on Litecoin, a chain with no contracts: a leg's escrow is an
//! output locked to a P2WSH script ([`script`]), the single-use token is the
//! unspent output itself (consensus spends it once), and the one party that may
//! take it is the key the script names.
//!
//! - [`LitecoinPlatform`]: the seam's `Platform` for the main, test and regtest
//!   chains (addresses with each chain's prefix, the network's configuration).
//! - [`LitecoinSubmitter`]: one account's reservations, claims and refunds,
//!   built and signed with the `bitcoin` crate, checked by the node
//!   (`testmempoolaccept`) before they are sent.
//! - [`LitecoinFollower`]: blocks read as JSON from a durable cursor, legs
//!   recognised by script, secrets read from claims' witnesses, rollbacks on
//!   a reorganisation.
//! - [`regtest::Regtest`]: a private chain for tests, the sandbox and the demo.

// Integers from peers, chains and files are converted with `try_from` and
// checked arithmetic; a cast that could truncate, wrap or drop a sign is a
// build error (an `allow` on the smallest item says why a cast is safe).
#![deny(clippy::cast_possible_truncation, clippy::cast_possible_wrap, clippy::cast_sign_loss)]

pub mod address;
pub mod chain;
pub mod demo;
mod follow;
pub mod leg;
pub mod notary;
mod platform;
pub mod regtest;
pub mod rpc;
pub mod sandbox;
pub mod script;
pub mod sizes;
mod submit;
pub mod tx;

pub use address::Chain;
pub use follow::LitecoinFollower;
pub use platform::{read_key, LitecoinConfig, LitecoinPlatform};
pub use submit::{FeeLimits, LitecoinSubmitter};
