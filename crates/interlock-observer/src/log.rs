//! The observer's log in SQLite: the hash-chained, signed records, the deals
//! they are about, and the cursor of every stream the observer follows. A
//! gateway event's record, the deal's new state, any record it derives and
//! the stream's cursor commit in one transaction, so a restart resumes from
//! the cursor with no record missing and none twice.

use super::record::{self, Entry, GatewayEvent, LegChange, Record};
use interlock_core::crypto::{Ed25519Signature, PartyKey};
use interlock_core::encoding::{decode_terms, encode_terms};
use interlock_core::{DealId, DealTerms, Hash32, LegKind, PartyId};
use interlock_rpc::store::{collect_rows, StoreError};
use rusqlite::{params, Connection, OptionalExtension};
use std::path::Path;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS records (
    seq INTEGER PRIMARY KEY,
    deal_id BLOB NOT NULL,
    kind TEXT NOT NULL,
    network INTEGER NOT NULL,
    height INTEGER NOT NULL,
    timestamp_ms INTEGER NOT NULL,
    body TEXT NOT NULL,
    prev_hash BLOB NOT NULL,
    hash BLOB NOT NULL,
    signature BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS records_by_deal ON records (deal_id, seq);
CREATE TABLE IF NOT EXISTS deals (
    deal_id BLOB PRIMARY KEY,
    terms BLOB NOT NULL,
    registered INTEGER NOT NULL DEFAULT 0,
    payment TEXT NOT NULL DEFAULT 'open',
    delivery TEXT NOT NULL DEFAULT 'open',
    status TEXT NOT NULL DEFAULT 'proposed',
    decided INTEGER NOT NULL DEFAULT 0,
    first_ms INTEGER NOT NULL DEFAULT 0,
    last_ms INTEGER NOT NULL DEFAULT 0,
    records INTEGER NOT NULL DEFAULT 0,
    followed_at INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS deals_by_status ON deals (status, followed_at);
-- Every gateway event recorded, by the gateway's network and sequence number.
CREATE TABLE IF NOT EXISTS seen (network INTEGER NOT NULL, gateway_seq INTEGER NOT NULL, PRIMARY KEY (network, gateway_seq));
-- The next notice to read from each gateway's WatchDeals.
CREATE TABLE IF NOT EXISTS notice_cursors (network INTEGER PRIMARY KEY, next_seq INTEGER NOT NULL);
-- The next event to read from each gateway's WatchDeal of each deal.
CREATE TABLE IF NOT EXISTS event_cursors (network INTEGER NOT NULL, deal_id BLOB NOT NULL, next_seq INTEGER NOT NULL, PRIMARY KEY (network, deal_id));
";

/// Final statuses: nothing more is expected of the deal's legs.
pub const FINAL_STATUSES: [&str; 3] = ["completed", "refunded", "mixed"];

/// A deal as the observer knows it.
#[derive(Clone, Debug)]
pub struct DealSummary {
    pub deal_id: DealId,
    pub terms: DealTerms,
    pub status: String,
    pub first_ms: u64,
    pub last_ms: u64,
    pub records: u64,
}

/// The first record that does not check, and why.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Broken {
    pub seq: u64,
    pub deal_id: Option<DealId>,
    pub problem: String,
}

/// What `verify` found.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Verified {
    pub records: u64,
    pub last_hash: Hash32,
    pub broken: Option<Broken>,
}

pub struct ObserverLog {
    connection: Connection,
    key: PartyKey,
    /// The next record's seq and the last record's hash.
    next_seq: u64,
    last_hash: Hash32,
}

fn to_sql(value: u64) -> i64 {
    i64::try_from(value).expect("observer values stay below 2^63")
}

fn from_sql(value: i64) -> u64 {
    u64::try_from(value).unwrap_or(0)
}

fn corrupt(what: &str, detail: impl Into<String>) -> StoreError {
    StoreError::Corrupt { deal_id: what.to_owned(), reason: detail.into() }
}

fn hash_from(bytes: &[u8]) -> Result<Hash32, StoreError> {
    let bytes: [u8; 32] = bytes.try_into().map_err(|_| corrupt("?", "a hash is not 32 bytes"))?;
    Ok(Hash32(bytes))
}

fn deal_id_from(bytes: &[u8]) -> Result<DealId, StoreError> {
    Ok(DealId(hash_from(bytes)?))
}

fn leg_state(change: LegChange, leg: LegKind, current: &str) -> Option<&'static str> {
    let next = match change {
        LegChange::Reserved(kind) if kind == leg => "reserved",
        LegChange::Held(kind) if kind == leg => "held",
        LegChange::Executed(kind) if kind == leg => "executed",
        LegChange::Cancelled(kind) if kind == leg => "cancelled",
        _ => return None,
    };
    // Only forward: a late assertion of the reservation never undoes its end.
    let rank = |state: &str| match state {
        "open" => 0,
        "reserved" => 1,
        "held" => 2,
        _ => 3,
    };
    (rank(next) > rank(current)).then_some(next)
}

/// A deal's status from its registration and the states of its legs.
fn status_of(registered: bool, payment: &str, delivery: &str) -> &'static str {
    match (payment, delivery) {
        ("executed", "executed") => "completed",
        // A leg never reserved moves nothing: with the other leg cancelled,
        // everything reserved went back to its owner.
        ("cancelled", "cancelled" | "open") | ("open", "cancelled") => "refunded",
        ("executed", "cancelled") | ("cancelled", "executed") => "mixed",
        ("open", "open") if registered => "registered",
        ("open", "open") => "proposed",
        _ => "running",
    }
}

struct DealRow {
    terms: DealTerms,
    registered: bool,
    payment: String,
    delivery: String,
    status: String,
    decided: bool,
    /// The latest event time recorded for the deal so far.
    last_ms: u64,
}

impl ObserverLog {
    /// Opens (creating) the log at `path`, kept and signed by `key`. A log
    /// written under another key is refused.
    pub fn open(path: &Path, key: PartyKey) -> Result<ObserverLog, StoreError> {
        let connection = Connection::open(path)?;
        connection.execute_batch("PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL;")?;
        connection.execute_batch(SCHEMA)?;
        interlock_rpc::store::count_commits(&connection);
        let public = key.public();
        let stored: Option<Vec<u8>> = connection
            .query_row("SELECT value FROM meta WHERE name = 'observer_key'", [], |row| row.get(0))
            .optional()?;
        match stored {
            Some(stored) if stored != public.0 => {
                return Err(corrupt(
                    "log",
                    format!(
                        "it was written by observer key {}, not this observer's key {}",
                        interlock_core::hash::to_hex(&stored),
                        interlock_core::hash::to_hex(&public.0)
                    ),
                ))
            }
            Some(_) => {}
            None => {
                connection.execute("INSERT INTO meta (name, value) VALUES ('observer_key', ?1)", params![public.0])?;
            }
        }
        let mut log = ObserverLog { connection, key, next_seq: 1, last_hash: Hash32([0; 32]) };
        log.reload_tip()?;
        Ok(log)
    }

    fn reload_tip(&mut self) -> Result<(), StoreError> {
        let tip: Option<(i64, Vec<u8>)> = self
            .connection
            .query_row("SELECT seq, hash FROM records ORDER BY seq DESC LIMIT 1", [], |row| {
                Ok((row.get(0)?, row.get(1)?))
            })
            .optional()?;
        (self.next_seq, self.last_hash) = match tip {
            Some((seq, hash)) => (from_sql(seq) + 1, hash_from(&hash)?),
            None => (1, Hash32([0; 32])),
        };
        Ok(())
    }

    pub fn observer_key(&self) -> PartyId {
        self.key.public()
    }

    /// The next notice to read from the gateway of `network`.
    pub fn notice_cursor(&self, network: u64) -> Result<u64, StoreError> {
        let next: Option<i64> = self
            .connection
            .query_row("SELECT next_seq FROM notice_cursors WHERE network = ?1", params![to_sql(network)], |row| {
                row.get(0)
            })
            .optional()?;
        Ok(next.map_or(0, from_sql))
    }

    /// The next event of `deal_id` to read from the gateway of `network`.
    pub fn event_cursor(&self, network: u64, deal_id: DealId) -> Result<u64, StoreError> {
        let next: Option<i64> = self
            .connection
            .query_row(
                "SELECT next_seq FROM event_cursors WHERE network = ?1 AND deal_id = ?2",
                params![to_sql(network), deal_id.0 .0],
                |row| row.get(0),
            )
            .optional()?;
        Ok(next.map_or(0, from_sql))
    }

    /// Starts following a deal a gateway's notice `notice_seq` told of, and
    /// moves that gateway's notice cursor past it, in one transaction.
    /// Returns true when the deal is new to the observer.
    pub fn follow(
        &mut self,
        network: u64,
        notice_seq: u64,
        terms: &DealTerms,
        now_ms: u64,
    ) -> Result<bool, StoreError> {
        let deal_id = terms.id();
        let transaction = self.connection.savepoint()?;
        let added = transaction.execute(
            "INSERT OR IGNORE INTO deals (deal_id, terms, followed_at) VALUES (?1, ?2, ?3)",
            params![deal_id.0 .0, encode_terms(terms), to_sql(now_ms)],
        )? == 1;
        transaction.execute(
            "INSERT INTO notice_cursors (network, next_seq) VALUES (?1, ?2)
             ON CONFLICT (network) DO UPDATE SET next_seq = max(next_seq, excluded.next_seq)",
            params![to_sql(network), to_sql(notice_seq + 1)],
        )?;
        transaction.commit()?;
        Ok(added)
    }

    /// Records a gateway event of a followed deal (unless that gateway's
    /// event was recorded before), with any record it derives — the notary's
    /// decision, the deal's end — and moves the stream's cursor past it, all
    /// in one transaction. Returns the deal's status after it.
    pub fn record(&mut self, event: &GatewayEvent) -> Result<String, StoreError> {
        let result = self.record_in_transaction(event);
        if result.is_err() {
            // The transaction rolled back: the tip in memory may be ahead of the file.
            self.reload_tip()?;
        }
        result
    }

    fn record_in_transaction(&mut self, event: &GatewayEvent) -> Result<String, StoreError> {
        let key = self.key.clone();
        let (mut next_seq, mut last_hash) = (self.next_seq, self.last_hash);
        let transaction = self.connection.savepoint()?;
        let mut deal = load_deal(&transaction, event.deal_id)?
            .ok_or_else(|| corrupt(&event.deal_id.to_string(), "an event of a deal the observer does not follow"))?;
        transaction.execute(
            "INSERT INTO event_cursors (network, deal_id, next_seq) VALUES (?1, ?2, ?3)
             ON CONFLICT (network, deal_id) DO UPDATE SET next_seq = max(next_seq, excluded.next_seq)",
            params![to_sql(event.gateway_network), event.deal_id.0 .0, to_sql(event.gateway_seq + 1)],
        )?;
        let new = transaction.execute(
            "INSERT OR IGNORE INTO seen (network, gateway_seq) VALUES (?1, ?2)",
            params![to_sql(event.gateway_network), to_sql(event.gateway_seq)],
        )? == 1;
        if !new {
            transaction.commit()?;
            return Ok(deal.status);
        }
        let escrow = record::escrow_event(event);
        let mut entries = vec![Entry {
            deal_id: event.deal_id,
            kind: event.kind.clone(),
            network: event.network,
            height: event.height,
            timestamp_ms: event.timestamp_ms,
            body: event_body(event, &deal, escrow.as_ref()),
        }];
        if event.kind == "registered" {
            deal.registered = true;
        }
        if let Some(change) = record::leg_change(escrow.as_ref()) {
            if let Some(state) = leg_state(change, LegKind::Payment, &deal.payment) {
                deal.payment = state.into();
            }
            if let Some(state) = leg_state(change, LegKind::Delivery, &deal.delivery) {
                deal.delivery = state.into();
            }
        }
        if let Some((decision, signatures)) = record::decision(escrow.as_ref()).filter(|_| !deal.decided) {
            deal.decided = true;
            let body = serde_json::json!({
                "text": format!("the notaries decided {decision}: a certificate with {signatures} signatures"),
                "decision": decision, "signatures": signatures,
            });
            entries.push(Entry { kind: "decided".into(), body: body.to_string(), ..entries[0].clone() });
        }
        // An ended deal stays ended: a late event is recorded, not a second end.
        let status = if FINAL_STATUSES.contains(&deal.status.as_str()) {
            deal.status.clone()
        } else {
            status_of(deal.registered, &deal.payment, &deal.delivery).to_owned()
        };
        if status != deal.status && FINAL_STATUSES.contains(&status.as_str()) {
            let text = match status.as_str() {
                "completed" => "both legs executed: the deal completed",
                "refunded" => "every reservation went back to its owner: the deal was refunded",
                _ => "one leg executed and the other cancelled: the deal is not atomic",
            };
            let body = serde_json::json!({ "text": text, "payment": deal.payment, "delivery": deal.delivery });
            // The deal ended when its last leg did, whichever gateway told first.
            let timestamp_ms = deal.last_ms.max(event.timestamp_ms);
            entries.push(Entry {
                kind: status.clone(),
                network: 0,
                height: 0,
                timestamp_ms,
                body: body.to_string(),
                ..entries[0].clone()
            });
        }
        deal.status = status;
        for entry in entries {
            let sealed = Record::seal(&key, next_seq, last_hash, entry);
            insert_record(&transaction, &sealed)?;
            (next_seq, last_hash) = (next_seq + 1, sealed.hash);
        }
        transaction.execute(
            "UPDATE deals SET registered = ?2, payment = ?3, delivery = ?4, status = ?5, decided = ?6,
                 first_ms = CASE WHEN records = 0 OR first_ms > ?7 THEN ?7 ELSE first_ms END,
                 last_ms = max(last_ms, ?7),
                 records = (SELECT count(*) FROM records WHERE deal_id = ?1)
             WHERE deal_id = ?1",
            params![
                event.deal_id.0 .0,
                deal.registered,
                deal.payment,
                deal.delivery,
                deal.status,
                deal.decided,
                to_sql(event.timestamp_ms.max(1))
            ],
        )?;
        transaction.commit()?;
        (self.next_seq, self.last_hash) = (next_seq, last_hash);
        Ok(deal.status)
    }

    /// Deals the observer follows whose legs have not both ended.
    pub fn open_deals(&self) -> Result<Vec<DealTerms>, StoreError> {
        let mut statement = self
            .connection
            .prepare("SELECT deal_id, terms FROM deals WHERE status NOT IN ('completed', 'refunded', 'mixed')")?;
        collect_rows(&mut statement, [], |row| {
            let id: Vec<u8> = row.get(0)?;
            let terms: Vec<u8> = row.get(1)?;
            decode_terms(&terms).map_err(|e| corrupt(&interlock_core::hash::to_hex(&id), e.to_string()))
        })
    }

    /// Deals newest first, only those of `status` when given.
    pub fn deals(&self, status: Option<&str>, limit: usize) -> Result<Vec<DealSummary>, StoreError> {
        let mut statement = self.connection.prepare_cached(
            "SELECT deal_id, terms, status, first_ms, last_ms, records FROM deals
             WHERE ?1 IS NULL OR status = ?1 ORDER BY followed_at DESC, rowid DESC LIMIT ?2",
        )?;
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        collect_rows(&mut statement, params![status, limit], summary_from)
    }

    /// The latest deals (at most `limit`, newest first) in `status` if given,
    /// among those `visible` lets through.
    pub fn deals_where(
        &self,
        status: Option<&str>,
        limit: usize,
        visible: impl Fn(&DealTerms) -> bool,
    ) -> Result<Vec<DealSummary>, StoreError> {
        let mut statement = self.connection.prepare_cached(
            "SELECT deal_id, terms, status, first_ms, last_ms, records FROM deals
             WHERE ?1 IS NULL OR status = ?1 ORDER BY followed_at DESC, rowid DESC",
        )?;
        let mut rows = statement.query(params![status])?;
        let mut deals = Vec::new();
        while deals.len() < limit {
            let Some(row) = rows.next()? else { break };
            let deal = summary_from(row)?;
            if visible(&deal.terms) {
                deals.push(deal);
            }
        }
        Ok(deals)
    }

    pub fn deal(&self, deal_id: DealId) -> Result<Option<DealSummary>, StoreError> {
        let mut statement = self.connection.prepare_cached(
            "SELECT deal_id, terms, status, first_ms, last_ms, records FROM deals WHERE deal_id = ?1",
        )?;
        let mut rows = statement.query(params![deal_id.0 .0])?;
        match rows.next()? {
            Some(row) => Ok(Some(summary_from(row)?)),
            None => Ok(None),
        }
    }

    /// The records of `deal_id`, in log order (at most `limit`).
    pub fn records_of(&self, deal_id: DealId, limit: usize) -> Result<Vec<Record>, StoreError> {
        let mut statement = self.connection.prepare_cached(
            "SELECT seq, deal_id, kind, network, height, timestamp_ms, body, prev_hash, hash, signature
             FROM records WHERE deal_id = ?1 ORDER BY seq LIMIT ?2",
        )?;
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        collect_rows(&mut statement, params![deal_id.0 .0, limit], record_from)
    }

    /// How many records the log holds.
    pub fn len(&self) -> u64 {
        self.next_seq - 1
    }

    pub fn is_empty(&self) -> bool {
        self.next_seq == 1
    }
}

/// Re-checks the whole chain of the log at `path`: every seq in order from 1,
/// every link, every hash, every signature by `observer`. Reads only.
pub fn verify(path: &Path, observer: PartyId) -> Result<Verified, StoreError> {
    let connection = Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)?;
    let mut statement = connection.prepare(
        "SELECT seq, deal_id, kind, network, height, timestamp_ms, body, prev_hash, hash, signature FROM records ORDER BY seq",
    )?;
    let mut rows = statement.query([])?;
    let (mut expected_seq, mut expected_prev) = (1u64, Hash32([0; 32]));
    while let Some(row) = rows.next()? {
        let seq: i64 = row.get(0)?;
        let record = match record_from(row) {
            Ok(record) => record,
            Err(error) => {
                let deal_id = row.get::<_, Vec<u8>>(1).ok().and_then(|bytes| deal_id_from(&bytes).ok());
                let problem = format!("the stored row cannot be read: {error}");
                return Ok(Verified {
                    records: expected_seq - 1,
                    last_hash: expected_prev,
                    broken: Some(Broken { seq: from_sql(seq), deal_id, problem }),
                });
            }
        };
        if let Some(problem) = record.check(expected_seq, expected_prev, observer) {
            let broken = Broken { seq: record.seq, deal_id: Some(record.entry.deal_id), problem };
            return Ok(Verified { records: expected_seq - 1, last_hash: expected_prev, broken: Some(broken) });
        }
        (expected_seq, expected_prev) = (expected_seq + 1, record.hash);
    }
    Ok(Verified { records: expected_seq - 1, last_hash: expected_prev, broken: None })
}

/// The observer key a log was written under.
pub fn stored_key(path: &Path) -> Result<Option<PartyId>, StoreError> {
    let connection = Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)?;
    let stored: Option<Vec<u8>> =
        connection.query_row("SELECT value FROM meta WHERE name = 'observer_key'", [], |row| row.get(0)).optional()?;
    stored
        .map(|bytes| {
            <[u8; 32]>::try_from(bytes.as_slice())
                .map(PartyId)
                .map_err(|_| corrupt("log", "observer key is not 32 bytes"))
        })
        .transpose()
}

/// A proposal's record carries the terms in words; others what happened.
fn event_body(event: &GatewayEvent, deal: &DealRow, escrow: Option<&interlock_core::EscrowEvent>) -> String {
    if event.kind == "proposed" {
        let mut body = record::terms_body(&deal.terms);
        body["text"] = event.text.clone().into();
        body["gateway_network"] = event.gateway_network.into();
        body["gateway_seq"] = event.gateway_seq.into();
        return body.to_string();
    }
    record::event_body(event, Some(&deal.terms), escrow)
}

/// terms, registered, payment, delivery, status, decided, last_ms.
type DealColumns = (Vec<u8>, bool, String, String, String, bool, i64);

fn load_deal(transaction: &Connection, deal_id: DealId) -> Result<Option<DealRow>, StoreError> {
    let row: Option<DealColumns> = transaction
        .query_row(
            "SELECT terms, registered, payment, delivery, status, decided, last_ms FROM deals WHERE deal_id = ?1",
            params![deal_id.0 .0],
            |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?, row.get(4)?, row.get(5)?, row.get(6)?)),
        )
        .optional()?;
    let Some((terms, registered, payment, delivery, status, decided, last_ms)) = row else { return Ok(None) };
    let terms = decode_terms(&terms).map_err(|error| corrupt(&deal_id.to_string(), error.to_string()))?;
    let last_ms = from_sql(last_ms);
    Ok(Some(DealRow { terms, registered, payment, delivery, status, decided, last_ms }))
}

fn insert_record(transaction: &Connection, record: &Record) -> Result<(), StoreError> {
    transaction.execute(
        "INSERT INTO records (seq, deal_id, kind, network, height, timestamp_ms, body, prev_hash, hash, signature)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
        params![
            to_sql(record.seq),
            record.entry.deal_id.0 .0,
            record.entry.kind,
            to_sql(record.entry.network),
            to_sql(record.entry.height),
            to_sql(record.entry.timestamp_ms),
            record.entry.body,
            record.prev_hash.0,
            record.hash.0,
            record.signature.0.to_vec()
        ],
    )?;
    Ok(())
}

fn record_from(row: &rusqlite::Row<'_>) -> Result<Record, StoreError> {
    let signature: Vec<u8> = row.get(9)?;
    let signature: [u8; 64] =
        signature.as_slice().try_into().map_err(|_| corrupt("record", "a signature is not 64 bytes"))?;
    let entry = Entry {
        deal_id: deal_id_from(&row.get::<_, Vec<u8>>(1)?)?,
        kind: row.get(2)?,
        network: from_sql(row.get(3)?),
        height: from_sql(row.get(4)?),
        timestamp_ms: from_sql(row.get(5)?),
        body: row.get(6)?,
    };
    Ok(Record {
        seq: from_sql(row.get(0)?),
        entry,
        prev_hash: hash_from(&row.get::<_, Vec<u8>>(7)?)?,
        hash: hash_from(&row.get::<_, Vec<u8>>(8)?)?,
        signature: Ed25519Signature(signature),
    })
}

fn summary_from(row: &rusqlite::Row<'_>) -> Result<DealSummary, StoreError> {
    let deal_id = deal_id_from(&row.get::<_, Vec<u8>>(0)?)?;
    let terms = decode_terms(&row.get::<_, Vec<u8>>(1)?).map_err(|e| corrupt(&deal_id.to_string(), e.to_string()))?;
    Ok(DealSummary {
        deal_id,
        terms,
        status: row.get(2)?,
        first_ms: from_sql(row.get(3)?),
        last_ms: from_sql(row.get(4)?),
        records: from_sql(row.get(5)?),
    })
}

/// The observer writes its log through one [`GroupWriter`](interlock_rpc::store::GroupWriter).
impl interlock_rpc::store::GroupStore for ObserverLog {
    fn connection(&self) -> &Connection {
        &self.connection
    }

    /// A group that did not commit may have moved the chain's tip in memory.
    fn reload(&mut self) -> Result<(), StoreError> {
        self.reload_tip()
    }
}
