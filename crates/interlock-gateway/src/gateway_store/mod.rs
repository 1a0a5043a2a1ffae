//! What a gateway persists, in SQLite: the deals it knows (proposals and
//! registrations, each a notice with a sequence number), every event of those
//! deals, the messages owed to the other networks' gateways (the outbox), and
//! the hashlock secrets its keeper learned, the webhook subscriptions of
//! parties and dependents with the deliveries owed to them (a second outbox,
//! written by the same [`Batch`] as the event it announces) and the
//! deliveries that ran out of attempts (dead letters). Writes go through a [`Batch`]: one
//! SQLite savepoint, committed alone or with the other writes of its group
//! (WAL journal, `synchronous = FULL`), so a message is on disk before anyone
//! sends it and a crash loses nothing written.
//!
//! This module holds the schema, the deals, notices, events and secrets;
//! `outbox` holds both outboxes, the subscriptions and the dead letters;
//! `chain_state` the follower's cursor and the events of deals not yet
//! registered, written with the block they come from.

use interlock_core::crypto::{Ed25519Signature, Secret};
use interlock_core::encoding::{decode_terms, encode_terms};
use interlock_core::{DealId, DealTerms, Hash32, NetworkId, PartyId};
use interlock_rpc::store::{collect_rows, StoreError};
use rusqlite::{params, Connection, OptionalExtension};
use std::path::Path;
use std::sync::Arc;

mod chain_state;
mod outbox;
mod routed;

pub use chain_state::{ChainRecord, RecordedChainEvent};

pub use outbox::{DeadLetter, OutboxEntry, Subscription, WebhookDelivery, DEAD_LETTERS_KEPT_MAX};

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS deals (
    deal_id BLOB PRIMARY KEY,
    terms BLOB NOT NULL,
    buyer_signature BLOB NOT NULL,
    seller_signature BLOB NOT NULL,
    registered INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS notices (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    deal_id BLOB NOT NULL,
    kind TEXT NOT NULL,
    buyer BLOB NOT NULL,
    seller BLOB NOT NULL,
    terms BLOB NOT NULL,
    buyer_signature BLOB NOT NULL,
    seller_signature BLOB NOT NULL,
    UNIQUE (deal_id, kind)
);
CREATE INDEX IF NOT EXISTS notices_by_buyer ON notices (buyer, seq);
CREATE INDEX IF NOT EXISTS notices_by_seller ON notices (seller, seq);
CREATE TABLE IF NOT EXISTS events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    deal_id BLOB NOT NULL,
    kind TEXT NOT NULL,
    subject BLOB NOT NULL,
    network INTEGER NOT NULL,
    height INTEGER NOT NULL,
    timestamp_ms INTEGER NOT NULL,
    event BLOB NOT NULL,
    text TEXT NOT NULL,
    UNIQUE (deal_id, kind, subject)
);
CREATE INDEX IF NOT EXISTS events_by_deal ON events (deal_id, seq);
CREATE TABLE IF NOT EXISTS outbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    peer INTEGER NOT NULL,
    kind TEXT NOT NULL,
    message BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS outbox_by_peer ON outbox (peer, id);
CREATE TABLE IF NOT EXISTS deal_audience (
    deal_id BLOB NOT NULL,
    member BLOB NOT NULL,
    PRIMARY KEY (deal_id, member)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS subscriptions (
    subscriber TEXT PRIMARY KEY,
    member BLOB NOT NULL,
    url TEXT NOT NULL,
    secret BLOB NOT NULL,
    kinds TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS subscriptions_by_member ON subscriptions (member);
CREATE TABLE IF NOT EXISTS webhooks (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    subscriber TEXT NOT NULL,
    event_id TEXT NOT NULL,
    body BLOB NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    due_ms INTEGER NOT NULL DEFAULT 0,
    last_error TEXT NOT NULL DEFAULT '',
    UNIQUE (subscriber, event_id)
);
CREATE INDEX IF NOT EXISTS webhooks_by_due ON webhooks (due_ms, id);
CREATE TABLE IF NOT EXISTS dead_letters (
    id INTEGER PRIMARY KEY,
    subscriber TEXT NOT NULL,
    url TEXT NOT NULL,
    event_id TEXT NOT NULL,
    body BLOB NOT NULL,
    attempts INTEGER NOT NULL,
    last_error TEXT NOT NULL,
    failed_ms INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS secrets (
    deal_id BLOB PRIMARY KEY,
    secret BLOB NOT NULL,
    learned_ms INTEGER NOT NULL
);
";

/// Whether a notice is a proposal (one signature) or a registration (both).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum NoticeKind {
    Proposed,
    Registered,
}

impl NoticeKind {
    pub fn as_str(self) -> &'static str {
        match self {
            NoticeKind::Proposed => "proposed",
            NoticeKind::Registered => "registered",
        }
    }

    pub fn parse(text: &str) -> Option<NoticeKind> {
        match text {
            "proposed" => Some(NoticeKind::Proposed),
            "registered" => Some(NoticeKind::Registered),
            _ => None,
        }
    }
}

/// Deal terms with the signatures that came with them (`None`: not signed).
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct SignedTerms {
    pub terms: Arc<DealTerms>,
    pub buyer_signature: Option<Ed25519Signature>,
    pub seller_signature: Option<Ed25519Signature>,
}

impl SignedTerms {
    pub fn deal_id(&self) -> DealId {
        self.terms.id()
    }
}

/// A proposal or registration as recorded, with this gateway's sequence number.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Notice {
    pub seq: u64,
    pub kind: NoticeKind,
    pub deal: SignedTerms,
}

/// A deal as this gateway knows it now.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct DealRecord {
    pub deal: SignedTerms,
    pub registered: bool,
}

/// What happened to a deal, where and when.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum EventKind {
    Proposed,
    Registered,
    Reserved,
    Executed,
    Cancelled,
    PeerReserved,
    PeerExecuted,
    PeerCancelled,
    KeeperExecuted,
    KeeperCancelled,
    /// A leg executed into escrow for an inspection period: paid out or
    /// returned on the notaries' verdict, reported then as executed or cancelled.
    Held,
    /// A party disputed the deal inside its inspection window, as one of the
    /// deal's notaries recorded: its operator decides release or reverse.
    Disputed,
    /// Derived: both legs executed, as this gateway has seen them.
    Completed,
    /// Derived: both legs cancelled, as this gateway has seen them.
    Refunded,
}

impl EventKind {
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Proposed => "proposed",
            EventKind::Registered => "registered",
            EventKind::Reserved => "reserved",
            EventKind::Executed => "executed",
            EventKind::Cancelled => "cancelled",
            EventKind::PeerReserved => "peer_reserved",
            EventKind::PeerExecuted => "peer_executed",
            EventKind::PeerCancelled => "peer_cancelled",
            EventKind::KeeperExecuted => "keeper_executed",
            EventKind::KeeperCancelled => "keeper_cancelled",
            EventKind::Held => "held",
            EventKind::Disputed => "disputed",
            EventKind::Completed => "completed",
            EventKind::Refunded => "refunded",
        }
    }

    pub const ALL: [EventKind; 14] = [
        EventKind::Proposed,
        EventKind::Registered,
        EventKind::Reserved,
        EventKind::Executed,
        EventKind::Cancelled,
        EventKind::PeerReserved,
        EventKind::PeerExecuted,
        EventKind::PeerCancelled,
        EventKind::KeeperExecuted,
        EventKind::KeeperCancelled,
        EventKind::Held,
        EventKind::Disputed,
        EventKind::Completed,
        EventKind::Refunded,
    ];

    pub fn parse(text: &str) -> Option<EventKind> {
        EventKind::ALL.into_iter().find(|kind| kind.as_str() == text)
    }
}

/// The id of an event, the same on every restart and retry: the deal, the
/// kind, and the reservation it is about (none for deal-wide events). The
/// events both gateways derive (`proposed`, `registered`, `completed`,
/// `refunded`) get the same id on both, so a receiver told by both keeps one.
pub fn event_id(deal_id: DealId, kind: &str, subject: &Hash32) -> String {
    if subject.0 == [0; 32] {
        format!("{deal_id}:{kind}")
    } else {
        format!("{deal_id}:{kind}:{}", subject.to_hex())
    }
}

/// An event to record. `subject` deduplicates: one event of each kind per
/// deal and subject (the reservation id; zero for proposed and registered).
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct NewEvent {
    pub deal_id: DealId,
    pub kind: EventKind,
    pub subject: Hash32,
    pub network: NetworkId,
    pub height: u64,
    pub timestamp_ms: u64,
    /// The escrow event, canonically encoded (empty for proposed and registered).
    pub event: Vec<u8>,
    pub text: String,
}

impl NewEvent {
    /// An event of the deal itself, not of a chain (proposed, registered,
    /// disputed): no escrow event, no block, recorded at `timestamp_ms` on
    /// this gateway's `network`.
    pub fn of_deal(deal_id: DealId, kind: EventKind, network: NetworkId, timestamp_ms: u64, text: String) -> NewEvent {
        NewEvent { deal_id, kind, subject: Hash32([0; 32]), network, height: 0, timestamp_ms, event: Vec::new(), text }
    }

    pub fn id(&self) -> String {
        event_id(self.deal_id, self.kind.as_str(), &self.subject)
    }
}

/// A recorded event with its sequence number.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct EventRecord {
    pub seq: u64,
    /// Stable across restarts (see [`event_id`]).
    pub id: String,
    pub deal_id: DealId,
    pub kind: String,
    pub network: NetworkId,
    pub height: u64,
    pub timestamp_ms: u64,
    pub event: Vec<u8>,
    pub text: String,
}

/// A recorded execution or cancellation, own or reported by the peer.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct SettledEvent {
    pub kind: String,
    pub network: NetworkId,
    pub height: u64,
    pub timestamp_ms: u64,
    /// The escrow event, canonically encoded.
    pub event: Vec<u8>,
}

/// What a committed batch changed, for whoever waits on it.
#[derive(Clone, Default, PartialEq, Eq, Debug)]
pub struct Committed {
    pub last_notice: Option<u64>,
    pub last_event: Option<u64>,
    /// Peers with new messages in the outbox.
    pub peers: Vec<NetworkId>,
    /// Whether webhook deliveries were queued.
    pub webhooks: bool,
    /// The deal this batch registered, which the network's follower must watch.
    pub registered: Option<std::sync::Arc<interlock_core::DealTerms>>,
}

pub struct GatewayStore {
    connection: Connection,
}

fn to_sql(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

fn limit_sql(limit: usize) -> i64 {
    i64::try_from(limit).unwrap_or(i64::MAX)
}

fn from_sql(value: i64) -> u64 {
    u64::try_from(value).unwrap_or(0)
}

fn signature_bytes(signature: Option<Ed25519Signature>) -> Vec<u8> {
    signature.map_or_else(Vec::new, |signature| signature.0.to_vec())
}

fn corrupt(deal_id: &[u8], reason: impl Into<String>) -> StoreError {
    StoreError::Corrupt { deal_id: interlock_core::hash::to_hex(deal_id), reason: reason.into() }
}

fn signature_from(deal_id: &[u8], bytes: &[u8]) -> Result<Option<Ed25519Signature>, StoreError> {
    match bytes.len() {
        0 => Ok(None),
        64 => Ok(Some(Ed25519Signature(bytes.try_into().expect("checked length")))),
        other => Err(corrupt(deal_id, format!("signature of {other} bytes"))),
    }
}

fn deal_id_from(bytes: &[u8]) -> Result<DealId, StoreError> {
    let bytes: [u8; 32] = bytes.try_into().map_err(|_| corrupt(bytes, "deal id is not 32 bytes"))?;
    Ok(DealId(Hash32(bytes)))
}

/// Terms read back: they must decode and hash to the id they are stored under.
fn signed_terms(deal_id: &[u8], terms: &[u8], buyer: &[u8], seller: &[u8]) -> Result<SignedTerms, StoreError> {
    let decoded = decode_terms(terms).map_err(|error| corrupt(deal_id, error.to_string()))?;
    if decoded.id().0 .0 != deal_id {
        return Err(corrupt(deal_id, "terms do not hash to the deal id"));
    }
    Ok(SignedTerms {
        terms: Arc::new(decoded),
        buyer_signature: signature_from(deal_id, buyer)?,
        seller_signature: signature_from(deal_id, seller)?,
    })
}

impl GatewayStore {
    pub fn open(path: &Path) -> Result<GatewayStore, StoreError> {
        let connection = Connection::open(path)?;
        connection
            .execute_batch("PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; PRAGMA temp_store = MEMORY;")?;
        connection.execute_batch(SCHEMA)?;
        connection.execute_batch(chain_state::SCHEMA)?;
        connection.execute_batch(routed::SCHEMA)?;
        interlock_rpc::store::count_commits(&connection);
        Ok(GatewayStore { connection })
    }

    /// Starts a batch of writes; nothing is written unless it is committed.
    /// A savepoint: on its own it is a transaction (committing it syncs),
    /// inside a group's transaction ([`interlock_rpc::store::GroupWriter`])
    /// it commits with the group.
    pub fn batch(&mut self) -> Result<Batch<'_>, StoreError> {
        Ok(Batch { transaction: self.connection.savepoint()?, committed: Committed::default() })
    }

    /// The connection, for the group writer's transaction around batches.
    pub fn connection(&self) -> &Connection {
        &self.connection
    }

    /// Every deal, to rebuild the registry after a restart.
    pub fn deals(&self) -> Result<Vec<DealRecord>, StoreError> {
        let mut statement = self
            .connection
            .prepare("SELECT deal_id, terms, buyer_signature, seller_signature, registered FROM deals")?;
        collect_rows(&mut statement, [], |row| {
            let deal_id: Vec<u8> = row.get(0)?;
            let deal = signed_terms(
                &deal_id,
                &row.get::<_, Vec<u8>>(1)?,
                &row.get::<_, Vec<u8>>(2)?,
                &row.get::<_, Vec<u8>>(3)?,
            )?;
            Ok(DealRecord { deal, registered: row.get(4)? })
        })
    }

    pub fn deal(&self, deal_id: DealId) -> Result<Option<DealRecord>, StoreError> {
        let key = deal_id.0 .0;
        let row = self
            .connection
            .prepare_cached(
                "SELECT terms, buyer_signature, seller_signature, registered FROM deals WHERE deal_id = ?1",
            )?
            .query_row([key], |row| {
                Ok((row.get::<_, Vec<u8>>(0)?, row.get::<_, Vec<u8>>(1)?, row.get::<_, Vec<u8>>(2)?, row.get(3)?))
            })
            .optional()?;
        let Some((terms, buyer, seller, registered)) = row else { return Ok(None) };
        Ok(Some(DealRecord { deal: signed_terms(&key, &terms, &buyer, &seller)?, registered }))
    }

    /// The notice of `kind` about `deal_id`, if recorded.
    pub fn notice(&self, deal_id: DealId, kind: NoticeKind) -> Result<Option<Notice>, StoreError> {
        let mut statement = self.connection.prepare_cached(
            "SELECT seq, deal_id, kind, terms, buyer_signature, seller_signature FROM notices WHERE deal_id = ?1 AND kind = ?2",
        )?;
        let mut rows = statement.query(params![deal_id.0 .0, kind.as_str()])?;
        match rows.next()? {
            Some(row) => Ok(Some(notice_from(row)?)),
            None => Ok(None),
        }
    }

    /// Notices about deals `party` is buyer or seller of, from `from_seq` on.
    pub fn notices_for(&self, party: PartyId, from_seq: u64, limit: usize) -> Result<Vec<Notice>, StoreError> {
        let mut statement = self.connection.prepare_cached(
            "SELECT seq, deal_id, kind, terms, buyer_signature, seller_signature FROM notices
             WHERE seq >= ?1 AND (buyer = ?2 OR seller = ?2) ORDER BY seq LIMIT ?3",
        )?;
        collect_rows(&mut statement, params![to_sql(from_seq), party.0, limit_sql(limit)], notice_from)
    }

    /// Every notice from `from_seq` on, in order (observers filter them by terms).
    pub fn notices_from(&self, from_seq: u64, limit: usize) -> Result<Vec<Notice>, StoreError> {
        let mut statement = self.connection.prepare_cached(
            "SELECT seq, deal_id, kind, terms, buyer_signature, seller_signature FROM notices
             WHERE seq >= ?1 ORDER BY seq LIMIT ?2",
        )?;
        collect_rows(&mut statement, params![to_sql(from_seq), limit_sql(limit)], notice_from)
    }

    /// The events of `deal_id` from `from_seq` on, in order.
    pub fn events(&self, deal_id: DealId, from_seq: u64, limit: usize) -> Result<Vec<EventRecord>, StoreError> {
        let mut statement = self.connection.prepare_cached(
            "SELECT seq, deal_id, kind, network, height, timestamp_ms, event, text, subject FROM events
             WHERE deal_id = ?1 AND seq >= ?2 ORDER BY seq LIMIT ?3",
        )?;
        collect_rows(&mut statement, params![deal_id.0 .0, to_sql(from_seq), limit_sql(limit)], |row| {
            let kind: String = row.get(2)?;
            let subject: Vec<u8> = row.get(8)?;
            let subject =
                Hash32(subject.try_into().map_err(|_| corrupt(&deal_id.0 .0, "event subject is not 32 bytes"))?);
            Ok(EventRecord {
                seq: from_sql(row.get(0)?),
                id: event_id(deal_id, &kind, &subject),
                deal_id: deal_id_from(&row.get::<_, Vec<u8>>(1)?)?,
                kind,
                network: NetworkId(from_sql(row.get(3)?)),
                height: from_sql(row.get(4)?),
                timestamp_ms: from_sql(row.get(5)?),
                event: row.get(6)?,
                text: row.get(7)?,
            })
        })
    }

    /// Every learned hashlock secret with the network time it was learned at.
    pub fn secrets(&self) -> Result<Vec<(DealId, Secret, u64)>, StoreError> {
        let mut statement = self.connection.prepare("SELECT deal_id, secret, learned_ms FROM secrets")?;
        collect_rows(&mut statement, [], |row| {
            let deal_id = deal_id_from(&row.get::<_, Vec<u8>>(0)?)?;
            let bytes: Vec<u8> = row.get(1)?;
            let secret: [u8; 32] =
                bytes.as_slice().try_into().map_err(|_| corrupt(&deal_id.0 .0, "secret is not 32 bytes"))?;
            Ok((deal_id, Secret(secret), from_sql(row.get(2)?)))
        })
    }

    /// The last notice and event sequence numbers (0 when none).
    pub fn last_seqs(&self) -> Result<(u64, u64), StoreError> {
        let notice: Option<i64> =
            self.connection.prepare_cached("SELECT MAX(seq) FROM notices")?.query_row([], |row| row.get(0))?;
        let event: Option<i64> =
            self.connection.prepare_cached("SELECT MAX(seq) FROM events")?.query_row([], |row| row.get(0))?;
        Ok((notice.map_or(0, from_sql), event.map_or(0, from_sql)))
    }
}

fn notice_from(row: &rusqlite::Row<'_>) -> Result<Notice, StoreError> {
    let deal_id: Vec<u8> = row.get(1)?;
    let kind: String = row.get(2)?;
    let kind = NoticeKind::parse(&kind).ok_or_else(|| corrupt(&deal_id, format!("notice kind {kind:?}")))?;
    let deal =
        signed_terms(&deal_id, &row.get::<_, Vec<u8>>(3)?, &row.get::<_, Vec<u8>>(4)?, &row.get::<_, Vec<u8>>(5)?)?;
    Ok(Notice { seq: from_sql(row.get(0)?), kind, deal })
}

/// Writes that commit together or not at all.
pub struct Batch<'c> {
    transaction: rusqlite::Savepoint<'c>,
    committed: Committed,
}

impl Batch<'_> {
    /// Records a notice unless one of the same kind about the same deal exists.
    /// Returns its sequence number and whether it is new.
    pub fn add_notice(&mut self, kind: NoticeKind, deal: &SignedTerms) -> Result<(u64, bool), StoreError> {
        let deal_id = deal.deal_id().0 .0;
        let existing: Option<i64> = self
            .transaction
            .prepare_cached("SELECT seq FROM notices WHERE deal_id = ?1 AND kind = ?2")?
            .query_row(params![deal_id, kind.as_str()], |row| row.get(0))
            .optional()?;
        if let Some(seq) = existing {
            return Ok((from_sql(seq), false));
        }
        self.transaction
            .prepare_cached(
                "INSERT INTO notices (deal_id, kind, buyer, seller, terms, buyer_signature, seller_signature)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            )?
            .execute(params![
                deal_id,
                kind.as_str(),
                deal.terms.buyer.0,
                deal.terms.seller.0,
                encode_terms(&deal.terms),
                signature_bytes(deal.buyer_signature),
                signature_bytes(deal.seller_signature)
            ])?;
        let seq = from_sql(self.transaction.last_insert_rowid());
        self.committed.last_notice = Some(seq);
        Ok((seq, true))
    }

    /// Stores the deal, or upgrades a stored proposal to a registration (with
    /// both signatures). A registration is never downgraded.
    pub fn put_deal(&mut self, deal: &SignedTerms, registered: bool) -> Result<(), StoreError> {
        let deal_id = deal.deal_id().0 .0;
        self.transaction
            .prepare_cached(
                "INSERT INTO deals (deal_id, terms, buyer_signature, seller_signature, registered)
             VALUES (?1, ?2, ?3, ?4, ?5)
             ON CONFLICT (deal_id) DO UPDATE SET
                 buyer_signature = excluded.buyer_signature,
                 seller_signature = excluded.seller_signature,
                 registered = 1
             WHERE excluded.registered = 1 AND deals.registered = 0",
            )?
            .execute(params![
                deal_id,
                encode_terms(&deal.terms),
                signature_bytes(deal.buyer_signature),
                signature_bytes(deal.seller_signature),
                registered
            ])?;
        let terms = &deal.terms;
        let mut insert =
            self.transaction.prepare_cached("INSERT OR IGNORE INTO deal_audience (deal_id, member) VALUES (?1, ?2)")?;
        for member in [terms.buyer, terms.seller].iter().chain(&terms.dependents) {
            insert.execute(params![deal_id, member.0])?;
        }
        Ok(())
    }

    /// Records an event unless the same one is recorded; returns its sequence
    /// number when it is new.
    pub fn add_event(&mut self, event: &NewEvent) -> Result<Option<u64>, StoreError> {
        let inserted = self
            .transaction
            .prepare_cached(
                "INSERT OR IGNORE INTO events (deal_id, kind, subject, network, height, timestamp_ms, event, text)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            )?
            .execute(params![
                event.deal_id.0 .0,
                event.kind.as_str(),
                event.subject.0,
                to_sql(event.network.0),
                to_sql(event.height),
                to_sql(event.timestamp_ms),
                event.event,
                event.text
            ])?;
        if inserted == 0 {
            return Ok(None);
        }
        let seq = from_sql(self.transaction.last_insert_rowid());
        self.committed.last_event = Some(seq);
        self.queue_webhooks(event)?;
        Ok(Some(seq))
    }

    /// The executions and cancellations recorded for `deal_id` (own and the
    /// peer's): kind, network, height, time and the escrow event.
    pub fn settlements(&self, deal_id: DealId) -> Result<Vec<SettledEvent>, StoreError> {
        let mut statement = self.transaction.prepare_cached(
            "SELECT kind, network, height, timestamp_ms, event FROM events
             WHERE deal_id = ?1 AND kind IN ('executed', 'cancelled', 'peer_executed', 'peer_cancelled') ORDER BY seq",
        )?;
        collect_rows(&mut statement, [deal_id.0 .0], |row| {
            Ok(SettledEvent {
                kind: row.get(0)?,
                network: NetworkId(from_sql(row.get(1)?)),
                height: from_sql(row.get(2)?),
                timestamp_ms: from_sql(row.get(3)?),
                event: row.get(4)?,
            })
        })
    }

    /// Remembers a hashlock secret revealed on another network (the first one wins).
    pub fn learn_secret(&mut self, deal_id: DealId, secret: Secret, learned_ms: u64) -> Result<bool, StoreError> {
        let inserted = self
            .transaction
            .prepare_cached("INSERT OR IGNORE INTO secrets (deal_id, secret, learned_ms) VALUES (?1, ?2, ?3)")?
            .execute(params![deal_id.0 .0, secret.0, to_sql(learned_ms)])?;
        Ok(inserted == 1)
    }

    pub fn commit(self) -> Result<Committed, StoreError> {
        self.transaction.commit()?;
        Ok(self.committed)
    }
}
