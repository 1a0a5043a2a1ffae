//! The durable store: one SQLite file per network, one SQLite transaction per
//! block, WAL journal with `synchronous = FULL` so a committed block survives a
//! crash of the process or the machine.

use crate::block::{Block, BlockHeader, Genesis, LedgerEvent};
use crate::error::LedgerError;
use crate::state::State;
use crate::store::{Changes, Loaded, Store};
use interlock_core::encoding::{Decode, Encode};
use rusqlite::{params, Connection, OptionalExtension};
use std::path::Path;

pub struct SqliteStore {
    connection: Connection,
}

fn store_error(error: impl std::fmt::Display) -> LedgerError {
    LedgerError::Store(error.to_string())
}

fn decode<T: serde::de::DeserializeOwned>(what: &str, bytes: &[u8]) -> Result<T, LedgerError> {
    postcard::from_bytes(bytes).map_err(|error| LedgerError::Store(format!("corrupt {what}: {error}")))
}

/// The value in column `index` of `row`, a blob `decode` reads as `what`.
fn column<T: serde::de::DeserializeOwned>(row: &rusqlite::Row<'_>, index: usize, what: &str) -> Result<T, LedgerError> {
    let bytes: Vec<u8> = row.get(index).map_err(store_error)?;
    decode(what, &bytes)
}

fn encode<T: serde::Serialize>(value: &T) -> Vec<u8> {
    postcard::to_allocvec(value).expect("ledger values always serialize")
}

const SCHEMA: &str = "
    CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value BLOB NOT NULL);
    CREATE TABLE IF NOT EXISTS blocks (height INTEGER PRIMARY KEY, hash BLOB NOT NULL, header BLOB NOT NULL, body BLOB NOT NULL);
    CREATE TABLE IF NOT EXISTS events (height INTEGER PRIMARY KEY, body BLOB NOT NULL);
    CREATE TABLE IF NOT EXISTS accounts (address BLOB PRIMARY KEY, body BLOB NOT NULL);
    CREATE TABLE IF NOT EXISTS items (key BLOB PRIMARY KEY, holder BLOB NOT NULL);
    CREATE TABLE IF NOT EXISTS reservations (id BLOB PRIMARY KEY, body BLOB NOT NULL);
    CREATE TABLE IF NOT EXISTS supply (code TEXT PRIMARY KEY, amount BLOB NOT NULL);
";

impl SqliteStore {
    pub fn open(path: &Path) -> Result<SqliteStore, LedgerError> {
        let connection = Connection::open(path).map_err(store_error)?;
        connection
            .execute_batch("PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON;")
            .map_err(store_error)?;
        connection.execute_batch(SCHEMA).map_err(store_error)?;
        // Each commit is synced (WAL, synchronous = FULL): count it.
        connection.commit_hook(Some(|| {
            interlock_core::counters::durable_commit();
            false
        }));
        Ok(SqliteStore { connection })
    }

    /// Each row `sql` selects, as `read` makes it.
    fn rows<T>(
        &self,
        sql: &str,
        mut read: impl FnMut(&rusqlite::Row<'_>) -> Result<T, LedgerError>,
    ) -> Result<Vec<T>, LedgerError> {
        let mut statement = self.connection.prepare(sql).map_err(store_error)?;
        let mut rows = statement.query([]).map_err(store_error)?;
        let mut all = Vec::new();
        while let Some(row) = rows.next().map_err(store_error)? {
            all.push(read(row)?);
        }
        Ok(all)
    }

    fn load_state(&self) -> Result<State, LedgerError> {
        let mut state = State::default();
        let accounts = self.rows("SELECT address, body FROM accounts", |row| {
            Ok((column(row, 0, "account address")?, column(row, 1, "account")?))
        })?;
        let items = self.rows("SELECT key, holder FROM items", |row| {
            Ok((column(row, 0, "item key")?, column(row, 1, "item holder")?))
        })?;
        let reservations = self.rows("SELECT body FROM reservations", |row| column(row, 0, "reservation"))?;
        let supply = self.rows("SELECT code, amount FROM supply", |row| {
            let code: String = row.get(0).map_err(store_error)?;
            let code = interlock_core::AssetCode::new(&code).map_err(store_error)?;
            Ok((code, column(row, 1, "supply")?))
        })?;
        state.accounts.extend(accounts);
        state.items.extend(items);
        state.supply.extend(supply);
        for reservation in reservations {
            state.insert_loaded_reservation(reservation);
        }
        Ok(state)
    }
}

impl Store for SqliteStore {
    fn load(&mut self) -> Result<Option<Loaded>, LedgerError> {
        let genesis: Option<Vec<u8>> = self
            .connection
            .query_row("SELECT value FROM meta WHERE key = 'genesis'", [], |row| row.get(0))
            .optional()
            .map_err(store_error)?;
        let Some(genesis) = genesis else {
            return Ok(None);
        };
        let genesis: Genesis = decode("genesis", &genesis)?;
        let tip: Option<Vec<u8>> = self
            .connection
            .query_row("SELECT header FROM blocks ORDER BY height DESC LIMIT 1", [], |row| row.get(0))
            .optional()
            .map_err(store_error)?;
        let tip = match tip {
            Some(bytes) => BlockHeader::from_bytes(&bytes).map_err(store_error)?,
            None => genesis.header(),
        };
        let state = self.load_state()?;
        Ok(Some(Loaded { genesis, tip, state }))
    }

    fn init(&mut self, genesis: &Genesis) -> Result<(), LedgerError> {
        self.connection
            .execute("INSERT INTO meta (key, value) VALUES ('genesis', ?1)", params![encode(genesis)])
            .map_err(store_error)?;
        Ok(())
    }

    fn commit(&mut self, block: &Block, events: &[LedgerEvent], changes: &Changes<'_>) -> Result<(), LedgerError> {
        let transaction = self.connection.transaction().map_err(store_error)?;
        {
            let height = i64::try_from(block.header.height).map_err(store_error)?;
            transaction
                .prepare_cached("INSERT INTO blocks (height, hash, header, body) VALUES (?1, ?2, ?3, ?4)")
                .and_then(|mut s| {
                    s.execute(params![
                        height,
                        block.header.hash().0,
                        block.header.to_bytes(),
                        block.transactions.to_bytes()
                    ])
                })
                .map_err(store_error)?;
            transaction
                .prepare_cached("INSERT INTO events (height, body) VALUES (?1, ?2)")
                .and_then(|mut s| s.execute(params![height, encode(&events)]))
                .map_err(store_error)?;
            let mut accounts = transaction
                .prepare_cached("INSERT OR REPLACE INTO accounts (address, body) VALUES (?1, ?2)")
                .map_err(store_error)?;
            for (address, account) in &changes.accounts {
                accounts.execute(params![encode(address), encode(account)]).map_err(store_error)?;
            }
            let mut items = transaction
                .prepare_cached("INSERT OR REPLACE INTO items (key, holder) VALUES (?1, ?2)")
                .map_err(store_error)?;
            for (key, holder) in &changes.items {
                items.execute(params![encode(key), encode(holder)]).map_err(store_error)?;
            }
            let mut reservations = transaction
                .prepare_cached("INSERT OR REPLACE INTO reservations (id, body) VALUES (?1, ?2)")
                .map_err(store_error)?;
            for reservation in &changes.reservations {
                reservations.execute(params![reservation.id.0 .0, encode(reservation)]).map_err(store_error)?;
            }
            let mut supply = transaction
                .prepare_cached("INSERT OR REPLACE INTO supply (code, amount) VALUES (?1, ?2)")
                .map_err(store_error)?;
            for (code, amount) in &changes.supply {
                supply.execute(params![code.as_str(), encode(amount)]).map_err(store_error)?;
            }
        }
        transaction.commit().map_err(store_error)
    }

    fn block(&self, height: u64) -> Result<Option<Block>, LedgerError> {
        let Ok(height) = i64::try_from(height) else {
            return Ok(None);
        };
        let row: Option<(Vec<u8>, Vec<u8>)> = self
            .connection
            .query_row("SELECT header, body FROM blocks WHERE height = ?1", params![height], |row| {
                Ok((row.get(0)?, row.get(1)?))
            })
            .optional()
            .map_err(store_error)?;
        let Some((header, body)) = row else {
            return Ok(None);
        };
        let header = BlockHeader::from_bytes(&header).map_err(store_error)?;
        let mut reader = interlock_core::encoding::Reader::new(&body);
        let transactions = interlock_core::encoding::decode_list(
            &mut reader,
            "block transactions",
            crate::block::BLOCK_TRANSACTIONS_MAX,
        )
        .map_err(store_error)?;
        Ok(Some(Block { header, transactions }))
    }

    fn events_from(&self, from_height: u64, limit: usize) -> Result<Vec<LedgerEvent>, LedgerError> {
        let from = i64::try_from(from_height).unwrap_or(i64::MAX);
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let mut statement = self
            .connection
            .prepare_cached("SELECT body FROM events WHERE height >= ?1 ORDER BY height LIMIT ?2")
            .map_err(store_error)?;
        let mut rows = statement.query(params![from, limit]).map_err(store_error)?;
        let mut events = Vec::new();
        while let Some(row) = rows.next().map_err(store_error)? {
            let body: Vec<u8> = row.get(0).map_err(store_error)?;
            let block_events: Vec<LedgerEvent> = decode("events", &body)?;
            events.extend(block_events);
        }
        Ok(events)
    }
}
