//! The gateway's two outboxes: the messages owed to the other networks'
//! gateways, and the webhook deliveries owed to subscribers — with the
//! subscriptions they go to and the dead letters of deliveries that ran out of
//! attempts. Both are written in the [`Batch`] of what they announce.

use super::{from_sql, limit_sql, to_sql, Batch, EventKind, GatewayStore, NewEvent};
use interlock_core::{NetworkId, PartyId};
use interlock_rpc::store::{collect_rows, StoreError};
use rusqlite::params;

/// Dead letters kept; older ones are forgotten past this.
pub const DEAD_LETTERS_KEPT_MAX: usize = 10_000;

/// A message owed to the gateway of network `peer`.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct OutboxEntry {
    pub id: u64,
    pub peer: NetworkId,
    pub kind: String,
    pub message: Vec<u8>,
}

/// Who may receive webhooks: a party or a dependent of the directory, by
/// role and name; `member` is the key deal terms name it by.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Subscription {
    /// `party:NAME` or `dependent:NAME`: one subscription each.
    pub subscriber: String,
    pub member: PartyId,
    pub url: String,
    pub secret: Vec<u8>,
    /// The event kinds wanted; empty for every kind.
    pub kinds: Vec<EventKind>,
}

/// A webhook delivery owed, with where to and with what secret (as the
/// subscription says now).
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct WebhookDelivery {
    pub id: u64,
    pub subscriber: String,
    pub url: String,
    pub secret: Vec<u8>,
    pub event_id: String,
    pub body: Vec<u8>,
    /// Attempts made so far.
    pub attempts: u32,
}

/// A delivery given up after its last attempt.
#[derive(Clone, PartialEq, Eq, Debug, serde::Serialize)]
pub struct DeadLetter {
    pub subscriber: String,
    pub url: String,
    pub event_id: String,
    /// The JSON body that was POSTed.
    pub body: String,
    pub attempts: u32,
    pub last_error: String,
    pub failed_ms: u64,
}

impl GatewayStore {
    /// The oldest messages owed to `peer`, oldest first.
    pub fn outbox(&self, peer: NetworkId, limit: usize) -> Result<Vec<OutboxEntry>, StoreError> {
        let mut statement = self
            .connection
            .prepare_cached("SELECT id, kind, message FROM outbox WHERE peer = ?1 ORDER BY id LIMIT ?2")?;
        collect_rows(&mut statement, params![to_sql(peer.0), limit_sql(limit)], |row| {
            Ok(OutboxEntry { id: from_sql(row.get(0)?), peer, kind: row.get(1)?, message: row.get(2)? })
        })
    }

    /// Forgets a delivered (or undeliverable) message.
    pub fn remove_outbox(&mut self, id: u64) -> Result<(), StoreError> {
        self.connection.prepare_cached("DELETE FROM outbox WHERE id = ?1")?.execute([to_sql(id)])?;
        Ok(())
    }

    /// How many messages wait for `peer`.
    pub fn outbox_len(&self, peer: NetworkId) -> Result<u64, StoreError> {
        let count: i64 = self
            .connection
            .prepare_cached("SELECT COUNT(*) FROM outbox WHERE peer = ?1")?
            .query_row([to_sql(peer.0)], |row| row.get(0))?;
        Ok(from_sql(count))
    }

    /// Records or replaces the webhook of `subscription.subscriber`.
    pub fn subscribe(&mut self, subscription: &Subscription) -> Result<(), StoreError> {
        self.connection
            .prepare_cached(
                "INSERT INTO subscriptions (subscriber, member, url, secret, kinds) VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT (subscriber) DO UPDATE SET
                     member = excluded.member, url = excluded.url, secret = excluded.secret, kinds = excluded.kinds",
            )?
            .execute(params![
                subscription.subscriber,
                subscription.member.0,
                subscription.url,
                subscription.secret,
                kinds_sql(&subscription.kinds)
            ])?;
        Ok(())
    }

    /// Deliveries due at `now_ms` (oldest due first), with their subscription.
    pub fn due_webhooks(&self, now_ms: u64, limit: usize) -> Result<Vec<WebhookDelivery>, StoreError> {
        let mut statement = self.connection.prepare_cached(
            "SELECT w.id, w.subscriber, s.url, s.secret, w.event_id, w.body, w.attempts
             FROM webhooks w JOIN subscriptions s ON s.subscriber = w.subscriber
             WHERE w.due_ms <= ?1 ORDER BY w.due_ms, w.id LIMIT ?2",
        )?;
        collect_rows(&mut statement, params![to_sql(now_ms), limit_sql(limit)], |row| {
            Ok(WebhookDelivery {
                id: from_sql(row.get(0)?),
                subscriber: row.get(1)?,
                url: row.get(2)?,
                secret: row.get(3)?,
                event_id: row.get(4)?,
                body: row.get(5)?,
                attempts: u32::try_from(row.get::<_, i64>(6)?).unwrap_or(u32::MAX),
            })
        })
    }

    /// When the next delivery is due (`None`: none owed).
    pub fn next_webhook_due_ms(&self) -> Result<Option<u64>, StoreError> {
        let due: Option<i64> =
            self.connection.prepare_cached("SELECT MIN(due_ms) FROM webhooks")?.query_row([], |row| row.get(0))?;
        Ok(due.map(from_sql))
    }

    /// Forgets a delivered webhook.
    pub fn webhook_delivered(&mut self, id: u64) -> Result<(), StoreError> {
        self.connection.prepare_cached("DELETE FROM webhooks WHERE id = ?1")?.execute([to_sql(id)])?;
        Ok(())
    }

    /// Counts a failed attempt and schedules the next one.
    pub fn webhook_retry(&mut self, id: u64, attempts: u32, due_ms: u64, error: &str) -> Result<(), StoreError> {
        self.connection
            .prepare_cached("UPDATE webhooks SET attempts = ?2, due_ms = ?3, last_error = ?4 WHERE id = ?1")?
            .execute(params![to_sql(id), attempts, to_sql(due_ms), error])?;
        Ok(())
    }

    /// Moves a delivery that failed its last attempt to the dead letters, in
    /// one transaction (keeping the newest [`DEAD_LETTERS_KEPT_MAX`]).
    pub fn webhook_dead(&mut self, delivery: &WebhookDelivery, error: &str, now_ms: u64) -> Result<(), StoreError> {
        let transaction = self.connection.savepoint()?;
        transaction
            .prepare_cached(
                "INSERT OR REPLACE INTO dead_letters (id, subscriber, url, event_id, body, attempts, last_error, failed_ms)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            )?
            .execute(params![
                to_sql(delivery.id),
                delivery.subscriber,
                delivery.url,
                delivery.event_id,
                delivery.body,
                delivery.attempts.saturating_add(1),
                error,
                to_sql(now_ms)
            ])?;
        transaction.prepare_cached("DELETE FROM webhooks WHERE id = ?1")?.execute([to_sql(delivery.id)])?;
        transaction
            .prepare_cached(
                "DELETE FROM dead_letters WHERE id NOT IN (SELECT id FROM dead_letters ORDER BY id DESC LIMIT ?1)",
            )?
            .execute([limit_sql(DEAD_LETTERS_KEPT_MAX)])?;
        transaction.commit()?;
        Ok(())
    }

    /// How many webhook deliveries are owed.
    pub fn webhooks_len(&self) -> Result<u64, StoreError> {
        let count: i64 =
            self.connection.prepare_cached("SELECT COUNT(*) FROM webhooks")?.query_row([], |row| row.get(0))?;
        Ok(from_sql(count))
    }

    /// The dead letters, oldest first.
    pub fn dead_letters(&self, limit: usize) -> Result<Vec<DeadLetter>, StoreError> {
        let mut statement = self.connection.prepare_cached(
            "SELECT subscriber, url, event_id, body, attempts, last_error, failed_ms FROM dead_letters ORDER BY id LIMIT ?1",
        )?;
        collect_rows(&mut statement, [limit_sql(limit)], |row| {
            Ok(DeadLetter {
                subscriber: row.get(0)?,
                url: row.get(1)?,
                event_id: row.get(2)?,
                body: String::from_utf8_lossy(&row.get::<_, Vec<u8>>(3)?).into_owned(),
                attempts: u32::try_from(row.get::<_, i64>(4)?).unwrap_or(u32::MAX),
                last_error: row.get(5)?,
                failed_ms: from_sql(row.get(6)?),
            })
        })
    }
}

/// `,kind,kind,` (searched with `instr`), or empty for every kind.
fn kinds_sql(kinds: &[EventKind]) -> String {
    if kinds.is_empty() {
        return String::new();
    }
    let mut text = String::from(",");
    for kind in kinds {
        text.push_str(kind.as_str());
        text.push(',');
    }
    text
}

impl NewEvent {
    /// What a webhook POSTs about this event.
    pub(super) fn webhook_body(&self) -> Vec<u8> {
        let body = serde_json::json!({
            "event_id": self.id(),
            "deal_id": self.deal_id.to_string(),
            "kind": self.kind.as_str(),
            "network": self.network.0,
            "height": self.height,
            "timestamp_ms": self.timestamp_ms,
            "text": self.text,
        });
        serde_json::to_vec(&body).expect("a json value always serialises")
    }
}

impl Batch<'_> {
    /// Queues a delivery of `event` for each subscriber the deal names (as
    /// buyer, seller or dependent) that wants its kind: in this transaction,
    /// so a committed event always has its deliveries.
    pub(super) fn queue_webhooks(&mut self, event: &NewEvent) -> Result<(), StoreError> {
        let subscribed: i64 = self
            .transaction
            .prepare_cached(
                "SELECT COUNT(*) FROM subscriptions s JOIN deal_audience a ON a.member = s.member WHERE a.deal_id = ?1",
            )?
            .query_row([event.deal_id.0 .0], |row| row.get(0))?;
        if subscribed == 0 {
            return Ok(());
        }
        let queued = self
            .transaction
            .prepare_cached(
                "INSERT OR IGNORE INTO webhooks (subscriber, event_id, body)
                 SELECT s.subscriber, ?1, ?2 FROM subscriptions s JOIN deal_audience a ON a.member = s.member
                 WHERE a.deal_id = ?3 AND (s.kinds = '' OR instr(s.kinds, ?4) > 0)",
            )?
            .execute(params![
                event.id(),
                event.webhook_body(),
                event.deal_id.0 .0,
                format!(",{},", event.kind.as_str())
            ])?;
        self.committed.webhooks |= queued > 0;
        Ok(())
    }

    /// Queues a message for the gateway of `peer`; it is sent after the commit.
    pub fn enqueue(&mut self, peer: NetworkId, kind: &str, message: &[u8]) -> Result<(), StoreError> {
        self.transaction
            .prepare_cached("INSERT INTO outbox (peer, kind, message) VALUES (?1, ?2, ?3)")?
            .execute(params![to_sql(peer.0), kind, message])?;
        if !self.committed.peers.contains(&peer) {
            self.committed.peers.push(peer);
        }
        Ok(())
    }
}
