//! What every role's SQLite store shares: the error type, opening a file (one
//! SQLite transaction per write, WAL journal, `synchronous = FULL`: a crash
//! loses nothing written) and deal ids as keys.

use interlock_core::{DealId, Decision, Hash32};
use rusqlite::Connection;
use std::path::Path;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("storage failed: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("stored record of deal {deal_id} is corrupt: {reason}")]
    Corrupt { deal_id: String, reason: String },
    #[error("notary already recorded {recorded} for deal {deal_id}: it never decides {attempted} as well")]
    Contradiction { deal_id: DealId, recorded: Decision, attempted: Decision },
    #[error("notary has no accepted deal {0}: accept it before deciding it")]
    UnknownDeal(DealId),
}

/// Opens (or creates) the SQLite file at `path` in WAL mode with
/// `synchronous = FULL`, and runs `schema` on it.
pub fn open(path: &Path, schema: &str) -> Result<Connection, StoreError> {
    let connection = Connection::open(path)?;
    connection.execute_batch("PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL;")?;
    connection.execute_batch(schema)?;
    count_commits(&connection);
    Ok(connection)
}

/// Counts every transaction `connection` commits into the process's durable
/// commits ([`interlock_core::counters`]): with the WAL journal and
/// `synchronous = FULL`, each one is synced to disk.
pub fn count_commits(connection: &Connection) {
    connection.commit_hook(Some(|| {
        interlock_core::counters::durable_commit();
        false
    }));
}

/// A deal id as a key column.
pub fn deal_key(deal_id: DealId) -> [u8; 32] {
    deal_id.0 .0
}

/// A deal id back from a key column.
pub fn deal_from(bytes: &[u8]) -> Result<DealId, StoreError> {
    let bytes: [u8; 32] = bytes.try_into().map_err(|_| StoreError::Corrupt {
        deal_id: interlock_core::hash::to_hex(bytes),
        reason: "deal id is not 32 bytes".into(),
    })?;
    Ok(DealId(Hash32(bytes)))
}
