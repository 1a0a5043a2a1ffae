//! The routed messages a gateway handled as their destination or took on as
//! a relay, by id: a message is handled once and relayed once, whoever sends
//! it again.

use super::{to_sql, Batch, GatewayStore};
use interlock_core::NetworkId;
use interlock_rpc::store::StoreError;
use rusqlite::{params, OptionalExtension};

pub(super) const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS routed (
    message_id BLOB PRIMARY KEY,
    origin INTEGER NOT NULL,
    at_ms INTEGER NOT NULL
) WITHOUT ROWID;
";

impl GatewayStore {
    /// Whether the routed message `message_id` was handled or relayed here.
    pub fn routed_seen(&self, message_id: &[u8; 32]) -> Result<bool, StoreError> {
        let found = self
            .connection
            .prepare_cached("SELECT 1 FROM routed WHERE message_id = ?1")?
            .query_row([&message_id[..]], |_| Ok(()))
            .optional()?;
        Ok(found.is_some())
    }
}

impl Batch<'_> {
    /// Records the routed message `message_id` from `origin` as handled or
    /// relayed here; false when it already was.
    pub fn mark_routed(&mut self, message_id: &[u8; 32], origin: NetworkId, at_ms: u64) -> Result<bool, StoreError> {
        let inserted = self
            .transaction
            .prepare_cached("INSERT OR IGNORE INTO routed (message_id, origin, at_ms) VALUES (?1, ?2, ?3)")?
            .execute(params![&message_id[..], to_sql(origin.0), to_sql(at_ms)])?;
        Ok(inserted == 1)
    }
}
