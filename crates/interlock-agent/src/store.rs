//! What the party agent persists, in SQLite: its sagas (written before the
//! agent acts on a step), its deals, steps, nonces and cursors. One SQLite
//! transaction per write, WAL journal, `synchronous = FULL`: a crash loses
//! nothing written.

use interlock_core::crypto::{Ed25519Signature, Secret};
use interlock_core::encoding::{decode_terms, encode_terms};
use interlock_core::encoding::{Decode, Encode};
use interlock_core::saga::{LegStatus, Outcome, Role, Saga};
use interlock_core::{DealId, DealTerms, EscrowEvent, NetworkId};
use interlock_rpc::store::StoreError;
use interlock_rpc::store::{collect_rows, deal_from, deal_key, open};
use rusqlite::{params, Connection, OptionalExtension};
use std::path::Path;
use std::sync::Arc;

/// A party agent's durable state: its sagas, the chain cursors it has fully
/// processed, and the nonces it has used.
pub struct AgentStore {
    connection: Connection,
    /// Nonces handed out from a block already reserved on disk: (next, last of the block).
    nonce_blocks: std::collections::HashMap<NetworkId, (u64, u64)>,
}

/// Nonces reserved on disk at a time: one write per block rather than per
/// transaction. After a crash the rest of the block is skipped, which the
/// ledgers allow (a nonce must only grow).
const NONCE_BLOCK: u64 = 256;

impl AgentStore {
    pub fn open(path: &Path) -> Result<AgentStore, StoreError> {
        let connection = open(
            path,
            "CREATE TABLE IF NOT EXISTS sagas (deal_id BLOB NOT NULL, role INTEGER NOT NULL, record BLOB NOT NULL, finished INTEGER NOT NULL, PRIMARY KEY (deal_id, role));
             CREATE TABLE IF NOT EXISTS cursors (network INTEGER PRIMARY KEY, height INTEGER NOT NULL);
             CREATE TABLE IF NOT EXISTS nonces (network INTEGER PRIMARY KEY, nonce INTEGER NOT NULL);
             CREATE TABLE IF NOT EXISTS deals (deal_id BLOB PRIMARY KEY, terms BLOB NOT NULL, buyer_signature BLOB, seller_signature BLOB, role INTEGER NOT NULL, state TEXT NOT NULL, secret BLOB, created_ms INTEGER NOT NULL);
             CREATE TABLE IF NOT EXISTS steps (deal_id BLOB NOT NULL, at_ms INTEGER NOT NULL, text TEXT NOT NULL);
             CREATE INDEX IF NOT EXISTS steps_by_deal ON steps (deal_id);
             CREATE TABLE IF NOT EXISTS notice_cursors (network INTEGER PRIMARY KEY, seq INTEGER NOT NULL);
             CREATE TABLE IF NOT EXISTS early_events (deal_id BLOB NOT NULL, event BLOB NOT NULL);
             CREATE INDEX IF NOT EXISTS early_events_by_deal ON early_events (deal_id);
             CREATE TABLE IF NOT EXISTS deal_notices (deal_id BLOB PRIMARY KEY, notice TEXT NOT NULL, timeouts_told INTEGER NOT NULL);",
        )?;
        Ok(AgentStore { connection, nonce_blocks: std::collections::HashMap::new() })
    }

    /// Writes `sagas` as they are now, in one transaction. Call it after a step
    /// and before carrying out what the step returned.
    pub fn save(&mut self, sagas: &[&Saga]) -> Result<(), StoreError> {
        let transaction = self.connection.transaction()?;
        {
            let mut statement = transaction.prepare_cached(
                "INSERT OR REPLACE INTO sagas (deal_id, role, record, finished) VALUES (?1, ?2, ?3, ?4)",
            )?;
            for saga in sagas {
                let role = match saga.role() {
                    interlock_core::saga::Role::Buyer => 1,
                    interlock_core::saga::Role::Seller => 2,
                };
                statement.execute(params![
                    deal_key(saga.deal_id()),
                    role,
                    saga.encode_record(),
                    saga.outcome().is_some()
                ])?;
            }
        }
        transaction.commit()?;
        Ok(())
    }

    /// Every saga that has not finished, to resume after a restart.
    pub fn unfinished(&self) -> Result<Vec<Saga>, StoreError> {
        let mut statement = self.connection.prepare("SELECT deal_id, record FROM sagas WHERE finished = 0")?;
        collect_rows(&mut statement, [], |row| {
            let deal_id = deal_from(&row.get::<_, Vec<u8>>(0)?)?;
            let record: Vec<u8> = row.get(1)?;
            let saga = Saga::decode_record(&record)
                .map_err(|error| StoreError::Corrupt { deal_id: deal_id.to_string(), reason: error.to_string() })?;
            Ok(saga)
        })
    }

    /// The next nonce on `network`, never one handed out before, even across
    /// crashes: nonces are reserved on disk a block at a time before use.
    pub fn next_nonce(&mut self, network: NetworkId) -> Result<u64, StoreError> {
        if let Some((next, last)) = self.nonce_blocks.get_mut(&network) {
            if *next <= *last {
                *next += 1;
                return Ok(*next - 1);
            }
        }
        let key = i64::try_from(network.0).unwrap_or(i64::MAX);
        let transaction = self.connection.transaction()?;
        let reserved: Option<i64> =
            transaction.query_row("SELECT nonce FROM nonces WHERE network = ?1", [key], |row| row.get(0)).optional()?;
        let first = u64::try_from(reserved.unwrap_or(0)).unwrap_or(0) + 1;
        let last = first + NONCE_BLOCK - 1;
        transaction.execute(
            "INSERT OR REPLACE INTO nonces (network, nonce) VALUES (?1, ?2)",
            params![key, i64::try_from(last).unwrap_or(i64::MAX)],
        )?;
        transaction.commit()?;
        self.nonce_blocks.insert(network, (first + 1, last));
        Ok(first)
    }

    /// The last height of `network` whose events every saga has seen.
    pub fn cursor(&self, network: NetworkId) -> Result<u64, StoreError> {
        self.position("SELECT height FROM cursors WHERE network = ?1", network)
    }

    pub fn set_cursor(&mut self, network: NetworkId, height: u64) -> Result<(), StoreError> {
        self.set_position("INSERT OR REPLACE INTO cursors (network, height) VALUES (?1, ?2)", network, height)
    }

    /// What `select` (`?1` the network) reads for `network`: a position in
    /// one of its streams, 0 before the first.
    fn position(&self, select: &str, network: NetworkId) -> Result<u64, StoreError> {
        let value: Option<i64> = self.connection.query_row(select, [key_of(network.0)], |row| row.get(0)).optional()?;
        Ok(value.map_or(0, |value| u64::try_from(value).unwrap_or(0)))
    }

    /// Records `value` for `network` with `upsert` (`?1` the network, `?2` the value).
    fn set_position(&mut self, upsert: &str, network: NetworkId, value: u64) -> Result<(), StoreError> {
        self.connection.execute(upsert, params![key_of(network.0), key_of(value)])?;
        Ok(())
    }
}

/// A deal as the agent knows it: proposed, received, or agreed and running.
#[derive(Clone, Debug)]
pub struct AgentDeal {
    pub terms: Arc<DealTerms>,
    /// Buyer's and seller's signatures over the deal id, once given.
    pub signatures: [Option<Ed25519Signature>; 2],
    pub role: Role,
    pub state: DealState,
    /// The buyer's hashlock secret, drawn when it proposed.
    pub secret: Option<Secret>,
    pub created_ms: u64,
    /// What the party was last told about how the deal goes.
    pub notice: DealNotice,
}

/// The last notice of a deal (a timeout, a notary's refusal) and how many
/// timeout notices it has had, so each is told once.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DealNotice {
    pub text: String,
    pub timeouts_told: u8,
}

impl AgentDeal {
    pub fn deal_id(&self) -> DealId {
        self.terms.id()
    }
}

/// Where a deal stands for one party.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum DealState {
    /// Signed and sent; the counterparty has not countersigned.
    Proposed,
    /// Signed by the counterparty; waiting for this party to accept.
    Received,
    /// This party withdrew before reserving anything.
    Withdrawn,
    /// Both signed: the saga runs.
    Running,
    /// The saga ended so.
    Ended(Outcome),
    /// A deal with an inspection period that completed (both legs held),
    /// then the notaries' verdict released: both legs paid out.
    Released,
    /// The same, but the verdict reversed it: both assets went back to
    /// their owners.
    Reversed,
}

impl DealState {
    pub fn as_str(self) -> &'static str {
        match self {
            DealState::Proposed => "proposed",
            DealState::Received => "received",
            DealState::Withdrawn => "withdrawn",
            DealState::Running => "running",
            DealState::Ended(Outcome::Completed) => "completed",
            DealState::Ended(Outcome::Refunded) => "refunded",
            DealState::Ended(Outcome::Windfall) => "windfall",
            DealState::Ended(Outcome::Lost) => "lost",
            DealState::Released => "released",
            DealState::Reversed => "reversed",
        }
    }

    /// Every state, in the order a deal may pass them.
    pub const ALL: [DealState; 10] = [
        DealState::Proposed,
        DealState::Received,
        DealState::Withdrawn,
        DealState::Running,
        DealState::Ended(Outcome::Completed),
        DealState::Ended(Outcome::Refunded),
        DealState::Ended(Outcome::Windfall),
        DealState::Ended(Outcome::Lost),
        DealState::Released,
        DealState::Reversed,
    ];

    /// The state `as_str` names, if any: exactly the names of [`DealState::ALL`].
    pub fn parse(text: &str) -> Option<DealState> {
        DealState::ALL.into_iter().find(|state| state.as_str() == text)
    }
}

fn role_code(role: Role) -> i64 {
    match role {
        Role::Buyer => 1,
        Role::Seller => 2,
    }
}

/// One write of the agent's loop: sagas after a step, deals whose state
/// changed, and the steps to show for them.
#[derive(Default)]
pub struct AgentWrite<'a> {
    pub sagas: Vec<&'a Saga>,
    pub deals: Vec<&'a AgentDeal>,
    pub steps: Vec<(DealId, u64, String)>,
    /// The last block of each network whose events every saga has seen.
    pub cursors: Vec<(NetworkId, u64)>,
    /// The last deal notice seen from each network's gateway.
    pub notice_cursors: Vec<(NetworkId, u64)>,
    /// Chain events of deals whose saga has not started yet, kept for it.
    pub early_events: Vec<(DealId, &'a EscrowEvent)>,
    /// Deals whose early events their saga has now seen.
    pub early_consumed: Vec<DealId>,
}

impl AgentWrite<'_> {
    pub fn is_empty(&self) -> bool {
        self.sagas.is_empty()
            && self.deals.is_empty()
            && self.steps.is_empty()
            && self.cursors.is_empty()
            && self.notice_cursors.is_empty()
            && self.early_events.is_empty()
            && self.early_consumed.is_empty()
    }
}

fn key_of(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

impl AgentStore {
    /// Writes everything of `write` in one transaction.
    pub fn write(&mut self, write: &AgentWrite<'_>) -> Result<(), StoreError> {
        let transaction = self.connection.transaction()?;
        {
            let mut sagas = transaction.prepare_cached(
                "INSERT OR REPLACE INTO sagas (deal_id, role, record, finished) VALUES (?1, ?2, ?3, ?4)",
            )?;
            for saga in &write.sagas {
                sagas.execute(params![
                    deal_key(saga.deal_id()),
                    role_code(saga.role()),
                    saga.encode_record(),
                    saga.outcome().is_some()
                ])?;
            }
            let mut deals = transaction.prepare_cached(
                "INSERT OR REPLACE INTO deals (deal_id, terms, buyer_signature, seller_signature, role, state, secret, created_ms)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            )?;
            let mut notices = transaction.prepare_cached(
                "INSERT OR REPLACE INTO deal_notices (deal_id, notice, timeouts_told) VALUES (?1, ?2, ?3)",
            )?;
            for deal in &write.deals {
                deals.execute(params![
                    deal_key(deal.deal_id()),
                    encode_terms(&deal.terms),
                    deal.signatures[0].map(|s| s.0.to_vec()),
                    deal.signatures[1].map(|s| s.0.to_vec()),
                    role_code(deal.role),
                    deal.state.as_str(),
                    deal.secret.map(|s| s.0.to_vec()),
                    i64::try_from(deal.created_ms).unwrap_or(i64::MAX),
                ])?;
                if deal.notice != DealNotice::default() {
                    notices.execute(params![
                        deal_key(deal.deal_id()),
                        deal.notice.text,
                        i64::from(deal.notice.timeouts_told)
                    ])?;
                }
            }
            let mut steps =
                transaction.prepare_cached("INSERT INTO steps (deal_id, at_ms, text) VALUES (?1, ?2, ?3)")?;
            for (deal_id, at_ms, text) in &write.steps {
                steps.execute(params![deal_key(*deal_id), key_of(*at_ms), text])?;
            }
            let mut cursors =
                transaction.prepare_cached("INSERT OR REPLACE INTO cursors (network, height) VALUES (?1, ?2)")?;
            for (network, height) in &write.cursors {
                cursors.execute(params![key_of(network.0), key_of(*height)])?;
            }
            let mut notices =
                transaction.prepare_cached("INSERT OR REPLACE INTO notice_cursors (network, seq) VALUES (?1, ?2)")?;
            for (network, seq) in &write.notice_cursors {
                notices.execute(params![key_of(network.0), key_of(*seq)])?;
            }
            let mut early = transaction.prepare_cached("INSERT INTO early_events (deal_id, event) VALUES (?1, ?2)")?;
            for (deal_id, event) in &write.early_events {
                early.execute(params![deal_key(*deal_id), event.to_bytes()])?;
            }
            let mut consumed = transaction.prepare_cached("DELETE FROM early_events WHERE deal_id = ?1")?;
            for deal_id in &write.early_consumed {
                consumed.execute(params![deal_key(*deal_id)])?;
            }
        }
        transaction.commit()?;
        Ok(())
    }

    /// Every deal the agent knows.
    pub fn deals(&self) -> Result<Vec<AgentDeal>, StoreError> {
        self.deals_where("", [])
    }

    /// The deals `filter` (a WHERE clause over `deals`, or nothing) selects.
    fn deals_where(&self, filter: &str, parameters: impl rusqlite::Params) -> Result<Vec<AgentDeal>, StoreError> {
        let mut statement = self.connection.prepare(&format!(
            "SELECT deals.deal_id, terms, buyer_signature, seller_signature, role, state, secret, created_ms, notice, timeouts_told
             FROM deals LEFT JOIN deal_notices ON deal_notices.deal_id = deals.deal_id {filter}"
        ))?;
        collect_rows(&mut statement, parameters, |row| {
            let deal_id = deal_from(&row.get::<_, Vec<u8>>(0)?)?;
            let corrupt = |reason: &str| StoreError::Corrupt { deal_id: deal_id.to_string(), reason: reason.into() };
            let terms = decode_terms(&row.get::<_, Vec<u8>>(1)?).map_err(|e| corrupt(&e.to_string()))?;
            let signature = |bytes: Option<Vec<u8>>| -> Result<Option<Ed25519Signature>, StoreError> {
                bytes
                    .map(|b| b.try_into().map(Ed25519Signature).map_err(|_| corrupt("signature is not 64 bytes")))
                    .transpose()
            };
            let role = match row.get::<_, i64>(4)? {
                1 => Role::Buyer,
                2 => Role::Seller,
                _ => return Err(corrupt("unknown role")),
            };
            let state = DealState::parse(&row.get::<_, String>(5)?).ok_or_else(|| corrupt("unknown state"))?;
            let secret = row
                .get::<_, Option<Vec<u8>>>(6)?
                .map(|b| b.try_into().map(Secret).map_err(|_| corrupt("secret is not 32 bytes")))
                .transpose()?;
            Ok(AgentDeal {
                terms: Arc::new(terms),
                signatures: [signature(row.get(2)?)?, signature(row.get(3)?)?],
                role,
                state,
                secret,
                created_ms: u64::try_from(row.get::<_, i64>(7)?).unwrap_or(0),
                notice: DealNotice {
                    text: row.get::<_, Option<String>>(8)?.unwrap_or_default(),
                    timeouts_told: u8::try_from(row.get::<_, Option<i64>>(9)?.unwrap_or(0)).unwrap_or(u8::MAX),
                },
            })
        })
    }

    /// The legs' last statuses of every finished saga, for the views of
    /// deals that ended.
    pub fn finished_legs(&self) -> Result<Vec<(DealId, LegStatus, LegStatus)>, StoreError> {
        let mut statement = self.connection.prepare("SELECT deal_id, record FROM sagas WHERE finished = 1")?;
        collect_rows(&mut statement, [], |row| {
            let deal_id = deal_from(&row.get::<_, Vec<u8>>(0)?)?;
            let saga = Saga::decode_record(&row.get::<_, Vec<u8>>(1)?)
                .map_err(|error| StoreError::Corrupt { deal_id: deal_id.to_string(), reason: error.to_string() })?;
            Ok((deal_id, saga.own_status(), saga.counter_status()))
        })
    }

    /// The saga of `deal_id` as last saved, finished or not.
    pub fn saga(&self, deal_id: DealId) -> Result<Option<Saga>, StoreError> {
        let record: Option<Vec<u8>> = self
            .connection
            .query_row("SELECT record FROM sagas WHERE deal_id = ?1", [deal_key(deal_id)], |row| row.get(0))
            .optional()?;
        record
            .map(|record| {
                Saga::decode_record(&record)
                    .map_err(|error| StoreError::Corrupt { deal_id: deal_id.to_string(), reason: error.to_string() })
            })
            .transpose()
    }

    /// One deal, from the history as well as the working set.
    pub fn deal(&self, deal_id: DealId) -> Result<Option<AgentDeal>, StoreError> {
        Ok(self.deals_where("WHERE deals.deal_id = ?1", params![deal_key(deal_id)])?.pop())
    }

    /// Every kept early event, in the order it was seen.
    pub fn early_events(&self) -> Result<Vec<(DealId, EscrowEvent)>, StoreError> {
        let mut statement = self.connection.prepare("SELECT deal_id, event FROM early_events ORDER BY rowid")?;
        collect_rows(&mut statement, [], |row| {
            let deal_id = deal_from(&row.get::<_, Vec<u8>>(0)?)?;
            let event = EscrowEvent::from_bytes(&row.get::<_, Vec<u8>>(1)?)
                .map_err(|error| StoreError::Corrupt { deal_id: deal_id.to_string(), reason: error.to_string() })?;
            Ok((deal_id, event))
        })
    }

    /// The steps recorded for a deal, oldest first.
    pub fn steps(&self, deal_id: DealId) -> Result<Vec<(u64, String)>, StoreError> {
        let mut statement =
            self.connection.prepare_cached("SELECT at_ms, text FROM steps WHERE deal_id = ?1 ORDER BY rowid")?;
        let rows = statement.query_map([deal_key(deal_id)], |row| {
            Ok((u64::try_from(row.get::<_, i64>(0)?).unwrap_or(0), row.get(1)?))
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// The last deal notice seen from the gateway of `network`.
    pub fn notice_cursor(&self, network: NetworkId) -> Result<u64, StoreError> {
        self.position("SELECT seq FROM notice_cursors WHERE network = ?1", network)
    }

    pub fn set_notice_cursor(&mut self, network: NetworkId, seq: u64) -> Result<(), StoreError> {
        self.set_position("INSERT OR REPLACE INTO notice_cursors (network, seq) VALUES (?1, ?2)", network, seq)
    }
}
