//! Where the gateway's follower stands, persisted with what it derived: the
//! cursor (height and hash of the last block whose events are recorded), and
//! the escrow events it saw for deals not registered here (yet), which a later
//! registration records. Both are written in the [`Batch`] of the block they
//! come from, so a restart resumes exactly where the recorded state ends:
//! nothing read twice into the record, nothing skipped.

use super::{deal_id_from, from_sql, to_sql, Batch, GatewayStore};
use interlock_chain::Cursor;
use interlock_core::encoding::{Decode, Encode};
use interlock_core::{DealId, EscrowEvent, Hash32, NetworkId};
use interlock_rpc::store::{collect_rows, StoreError};
use rusqlite::{params, OptionalExtension};

pub(super) const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS chain_cursor (
    id INTEGER PRIMARY KEY CHECK (id = 0),
    height INTEGER NOT NULL,
    hash BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS pending_events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    deal_id BLOB NOT NULL,
    height INTEGER NOT NULL,
    timestamp_ms INTEGER NOT NULL,
    block_hash BLOB NOT NULL,
    event BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS pending_events_by_deal ON pending_events (deal_id);
CREATE TABLE IF NOT EXISTS chain_rollback (
    id INTEGER PRIMARY KEY CHECK (id = 0),
    height INTEGER NOT NULL,
    hash BLOB NOT NULL
);
";

/// An escrow event seen on chain, with the block it is in.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct ChainRecord {
    pub height: u64,
    pub timestamp_ms: u64,
    pub block_hash: Hash32,
    pub event: EscrowEvent,
}

/// An own-network escrow event recorded for a registered deal.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct RecordedChainEvent {
    pub deal_id: DealId,
    pub height: u64,
    pub event: EscrowEvent,
}

fn hash_from(bytes: &[u8]) -> Result<Hash32, StoreError> {
    let bytes: [u8; 32] = bytes.try_into().map_err(|_| StoreError::Corrupt {
        deal_id: String::new(),
        reason: format!("a block hash of {} bytes", bytes.len()),
    })?;
    Ok(Hash32(bytes))
}

fn event_from(deal_id: DealId, bytes: &[u8]) -> Result<EscrowEvent, StoreError> {
    EscrowEvent::from_bytes(bytes).map_err(|error| StoreError::Corrupt {
        deal_id: interlock_core::hash::to_hex(&deal_id.0 .0),
        reason: format!("a recorded escrow event does not decode: {error}"),
    })
}

impl GatewayStore {
    /// The last block whose events are recorded, if the follower ever recorded one.
    pub fn cursor(&self) -> Result<Option<Cursor>, StoreError> {
        self.read_cursor("SELECT height, hash FROM chain_cursor WHERE id = 0")
    }

    /// Where the chain last reorganised back to, below what was delivered.
    pub fn last_rollback(&self) -> Result<Option<Cursor>, StoreError> {
        self.read_cursor("SELECT height, hash FROM chain_rollback WHERE id = 0")
    }

    /// The block (height, hash) that `query`'s one row names, if there is one.
    fn read_cursor(&self, query: &str) -> Result<Option<Cursor>, StoreError> {
        let row = self
            .connection
            .query_row(query, [], |row| Ok((row.get::<_, i64>(0)?, row.get::<_, Vec<u8>>(1)?)))
            .optional()?;
        row.map(|(height, hash)| Ok(Cursor { height: from_sql(height), hash: hash_from(&hash)? })).transpose()
    }

    /// Records that the chain reorganised back to `to`, so that a restarted
    /// gateway still tells its block stream's readers.
    pub fn set_last_rollback(&mut self, to: Cursor) -> Result<(), StoreError> {
        self.connection.execute(
            "INSERT INTO chain_rollback (id, height, hash) VALUES (0, ?1, ?2)
             ON CONFLICT (id) DO UPDATE SET height = excluded.height, hash = excluded.hash",
            params![to_sql(to.height), to.hash.0],
        )?;
        Ok(())
    }

    /// The events seen for deals not registered here, oldest first.
    pub fn pending_events(&self) -> Result<Vec<ChainRecord>, StoreError> {
        let mut statement = self
            .connection
            .prepare("SELECT deal_id, height, timestamp_ms, block_hash, event FROM pending_events ORDER BY id")?;
        collect_rows(&mut statement, [], |row| {
            let deal_id = deal_id_from(&row.get::<_, Vec<u8>>(0)?)?;
            Ok(ChainRecord {
                height: from_sql(row.get(1)?),
                timestamp_ms: from_sql(row.get(2)?),
                block_hash: hash_from(&row.get::<_, Vec<u8>>(3)?)?,
                event: event_from(deal_id, &row.get::<_, Vec<u8>>(4)?)?,
            })
        })
    }

    /// The escrow events of `network` (the gateway's own) recorded for
    /// registered deals, in record order: what the keeper rebuilds from.
    pub fn chain_events(&self, network: NetworkId) -> Result<Vec<RecordedChainEvent>, StoreError> {
        let mut statement = self.connection.prepare(
            "SELECT deal_id, height, event FROM events
             WHERE network = ?1 AND kind IN ('reserved', 'held', 'executed', 'cancelled') ORDER BY seq",
        )?;
        collect_rows(&mut statement, [to_sql(network.0)], |row| {
            let deal_id = deal_id_from(&row.get::<_, Vec<u8>>(0)?)?;
            let event = event_from(deal_id, &row.get::<_, Vec<u8>>(2)?)?;
            Ok(RecordedChainEvent { deal_id, height: from_sql(row.get(1)?), event })
        })
    }

    /// The deals with own-network events recorded above `height`: what a
    /// reorganisation below it touches.
    pub fn deals_above(&self, network: NetworkId, height: u64) -> Result<Vec<DealId>, StoreError> {
        let mut statement = self.connection.prepare(
            "SELECT DISTINCT deal_id FROM events WHERE network = ?1 AND height > ?2
             AND kind IN ('reserved', 'held', 'executed', 'cancelled')",
        )?;
        collect_rows(&mut statement, params![to_sql(network.0), to_sql(height)], |row| {
            deal_id_from(&row.get::<_, Vec<u8>>(0)?)
        })
    }
}

impl Batch<'_> {
    /// Moves the follower's persisted position to `cursor`.
    pub fn set_cursor(&mut self, cursor: Cursor) -> Result<(), StoreError> {
        self.transaction
            .prepare_cached(
                "INSERT INTO chain_cursor (id, height, hash) VALUES (0, ?1, ?2)
                 ON CONFLICT (id) DO UPDATE SET height = excluded.height, hash = excluded.hash",
            )?
            .execute(params![to_sql(cursor.height), cursor.hash.0])?;
        Ok(())
    }

    /// Keeps an event of a deal not registered here, for its registration.
    pub fn add_pending(&mut self, record: &ChainRecord) -> Result<(), StoreError> {
        self.transaction
            .prepare_cached(
                "INSERT INTO pending_events (deal_id, height, timestamp_ms, block_hash, event)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
            )?
            .execute(params![
                record.event.deal_id().0 .0,
                to_sql(record.height),
                to_sql(record.timestamp_ms),
                record.block_hash.0,
                record.event.to_bytes()
            ])?;
        Ok(())
    }

    /// Forgets the kept events of `deal_id` (registered now, or evicted).
    pub fn forget_pending(&mut self, deal_id: DealId) -> Result<(), StoreError> {
        self.transaction.prepare_cached("DELETE FROM pending_events WHERE deal_id = ?1")?.execute([deal_id.0 .0])?;
        Ok(())
    }
}
