//! Interlock's embedded permissioned ledger.
//!
//! Accounts keyed by ed25519 keys hold balances of fungible assets and unique
//! items. Transactions are signed and carry per-account nonces; one sequencer per
//! network orders them into blocks chained by hash with a Merkle root of their
//! transactions. The escrow module applies the core's rules
//! (`interlock_core::escrow`). Every block is committed to a [`Store`] in one
//! atomic step: [`SqliteStore`] on disk, [`MemoryStore`] for the simulator.

// Integers from peers, chains and files are converted with `try_from` and
// checked arithmetic; a cast that could truncate, wrap or drop a sign is a
// build error (an `allow` on the smallest item says why a cast is safe).
#![deny(clippy::cast_possible_truncation, clippy::cast_possible_wrap, clippy::cast_sign_loss)]

pub mod block;
pub mod error;
pub mod ledger;
pub mod local;
pub mod sqlite;
pub mod state;
pub mod store;
pub mod tx;

pub use block::{Block, BlockHeader, Genesis, LedgerEvent};
pub use error::LedgerError;
pub use ledger::{BlockOutcome, Ledger, Rejection};
pub use local::{LocalFollower, LocalLedger, LocalSubmitter};
pub use sqlite::SqliteStore;
pub use state::{Account, Holder, State};
pub use store::{MemoryStore, Store};
pub use tx::{Op, Transaction, TxId};
