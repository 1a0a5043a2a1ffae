//! The notary's decision log in SQLite: the deals it accepted and, once made,
//! its decision (written before the notary signs), the rule an abort broke,
//! and each party's daily totals of committed deals; and, for deals with an
//! inspection period, the dispute it recorded before acknowledging it and the
//! verdict it recorded before signing it. Each write is whole (a savepoint),
//! committed alone or with the writes of its group
//! ([`GroupWriter`](interlock_rpc::store::GroupWriter)); WAL journal,
//! `synchronous = FULL`: a crash loses nothing written.

use interlock_core::crypto::Ed25519Signature;
use interlock_core::encoding::{decode_terms, encode_terms};
use interlock_core::policy::{movements, utc_day};
use interlock_core::verdict::Dispute;
use interlock_core::{AssetCode, DealId, DealTerms, Decision, NetworkId, PartyId};
use interlock_rpc::store::{collect_rows, deal_from, deal_key, open, StoreError};
use rusqlite::{params, Connection, OptionalExtension};
use std::path::Path;
use std::sync::Arc;

/// An accepted deal's terms and, once recorded, the notary's decision.
pub type LoggedDeal = (Arc<DealTerms>, Option<Decision>);
/// A deal's recorded dispute and verdict.
pub type LoggedInspection = (DealId, Option<Dispute>, Option<Decision>);
/// A party's total of one asset on one UTC day (days since the epoch).
pub type DailyTotal = (PartyId, AssetCode, u64, u128);

/// Adds what each party of a committed deal moves to its daily totals.
fn add_movements(transaction: &rusqlite::Savepoint<'_>, deal_id: DealId, at_ms: u64) -> Result<(), StoreError> {
    let corrupt = |reason: String| StoreError::Corrupt { deal_id: deal_id.to_string(), reason };
    let bytes: Vec<u8> =
        transaction.query_row("SELECT terms FROM deals WHERE deal_id = ?1", [deal_key(deal_id)], |row| row.get(0))?;
    let terms = decode_terms(&bytes).map_err(|e| corrupt(e.to_string()))?;
    let day = i64::try_from(utc_day(at_ms)).unwrap_or(i64::MAX);
    for (_, party, asset, amount) in movements(&terms) {
        let key = params![party.0.to_vec(), asset.as_str(), day];
        let before: Option<String> = transaction
            .query_row("SELECT amount FROM daily_totals WHERE party = ?1 AND asset = ?2 AND day = ?3", key, |row| {
                row.get(0)
            })
            .optional()?;
        let before: u128 = match before {
            Some(text) => text.parse().map_err(|_| corrupt(format!("daily total {text:?}")))?,
            None => 0,
        };
        let total = before.saturating_add(amount).to_string();
        transaction.execute(
            "INSERT OR REPLACE INTO daily_totals (party, asset, day, amount) VALUES (?1, ?2, ?3, ?4)",
            params![party.0.to_vec(), asset.as_str(), day, total],
        )?;
    }
    Ok(())
}

/// A notary's decision log: the deals it accepted and, once made, its decision.
/// [`NotaryLog::record`] refuses to store a decision different from one already
/// stored, so even a confused caller cannot make the notary sign both.
pub struct NotaryLog {
    connection: Connection,
}

fn decision_code(decision: Decision) -> i64 {
    i64::from(decision.code())
}

fn verdict_from(code: i64) -> Option<Decision> {
    match code {
        3 => Some(Decision::Release),
        4 => Some(Decision::Reverse),
        _ => None,
    }
}

fn decision_from(code: i64) -> Option<Decision> {
    match code {
        1 => Some(Decision::Commit),
        2 => Some(Decision::Abort),
        _ => None,
    }
}

impl NotaryLog {
    pub fn open(path: &Path) -> Result<NotaryLog, StoreError> {
        let connection = open(
            path,
            "CREATE TABLE IF NOT EXISTS deals (deal_id BLOB PRIMARY KEY, terms BLOB NOT NULL, decision INTEGER);
             CREATE TABLE IF NOT EXISTS reasons (deal_id BLOB PRIMARY KEY, reason TEXT NOT NULL);
             CREATE TABLE IF NOT EXISTS daily_totals (party BLOB NOT NULL, asset TEXT NOT NULL, day INTEGER NOT NULL, amount TEXT NOT NULL, PRIMARY KEY (party, asset, day));
             CREATE TABLE IF NOT EXISTS follow_cursors (network INTEGER PRIMARY KEY, next_height INTEGER NOT NULL);
             CREATE TABLE IF NOT EXISTS disputes (deal_id BLOB PRIMARY KEY, party BLOB NOT NULL, reason TEXT NOT NULL, signature BLOB NOT NULL, at_ms INTEGER NOT NULL);
             CREATE TABLE IF NOT EXISTS verdicts (deal_id BLOB PRIMARY KEY, decision INTEGER NOT NULL);
             CREATE TABLE IF NOT EXISTS joined (deal_id BLOB PRIMARY KEY);",
        )?;
        Ok(NotaryLog { connection })
    }

    /// The height the notary reads `network`'s blocks from after a restart.
    pub fn follow_cursor(&self, network: NetworkId) -> Result<Option<u64>, StoreError> {
        let network = i64::try_from(network.0).unwrap_or(i64::MAX);
        let next: Option<i64> = self
            .connection
            .query_row("SELECT next_height FROM follow_cursors WHERE network = ?1", [network], |row| row.get(0))
            .optional()?;
        Ok(next.map(|next| u64::try_from(next).unwrap_or(1)))
    }

    /// Saves where the notary reads `network`'s blocks from next.
    pub fn save_follow_cursor(&mut self, network: NetworkId, next_height: u64) -> Result<(), StoreError> {
        self.connection.execute(
            "INSERT INTO follow_cursors (network, next_height) VALUES (?1, ?2)
             ON CONFLICT (network) DO UPDATE SET next_height = excluded.next_height",
            params![i64::try_from(network.0).unwrap_or(i64::MAX), i64::try_from(next_height).unwrap_or(i64::MAX)],
        )?;
        Ok(())
    }

    /// Remembers an accepted deal (idempotent).
    pub fn accept(&mut self, terms: &DealTerms) -> Result<(), StoreError> {
        self.connection.execute(
            "INSERT OR IGNORE INTO deals (deal_id, terms, decision) VALUES (?1, ?2, NULL)",
            params![deal_key(terms.id()), encode_terms(terms)],
        )?;
        Ok(())
    }

    /// Records the decision before the notary signs it, with the rule an abort
    /// broke, and for a commit adds what each party moves to its totals of the
    /// UTC day of `at_ms`, in the same transaction. Recording the same
    /// decision again is a no-op; recording the other one is refused.
    pub fn record(
        &mut self,
        deal_id: DealId,
        decision: Decision,
        reason: Option<&str>,
        at_ms: u64,
    ) -> Result<(), StoreError> {
        // A savepoint: a transaction alone, or one write of a group commit.
        let transaction = self.connection.savepoint()?;
        let stored: Option<Option<i64>> = transaction
            .query_row("SELECT decision FROM deals WHERE deal_id = ?1", [deal_key(deal_id)], |row| row.get(0))
            .optional()?;
        match stored {
            None => return Err(StoreError::UnknownDeal(deal_id)),
            Some(Some(code)) => {
                let recorded = decision_from(code).ok_or_else(|| StoreError::Corrupt {
                    deal_id: deal_id.to_string(),
                    reason: format!("decision code {code}"),
                })?;
                if recorded != decision {
                    return Err(StoreError::Contradiction { deal_id, recorded, attempted: decision });
                }
            }
            Some(None) => {
                transaction.execute(
                    "UPDATE deals SET decision = ?2 WHERE deal_id = ?1",
                    params![deal_key(deal_id), decision_code(decision)],
                )?;
                if let Some(reason) = reason {
                    transaction.execute(
                        "INSERT OR REPLACE INTO reasons (deal_id, reason) VALUES (?1, ?2)",
                        params![deal_key(deal_id), reason],
                    )?;
                }
                if decision == Decision::Commit {
                    add_movements(&transaction, deal_id, at_ms)?;
                }
            }
        }
        transaction.commit()?;
        Ok(())
    }

    /// Records a dispute before the notary acknowledges it. A deal is
    /// disputed once: a second dispute of it is a no-op.
    pub fn record_dispute(&mut self, dispute: &Dispute, at_ms: u64) -> Result<(), StoreError> {
        self.connection.execute(
            "INSERT OR IGNORE INTO disputes (deal_id, party, reason, signature, at_ms) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![
                deal_key(dispute.deal_id),
                dispute.by.0.to_vec(),
                dispute.reason,
                dispute.signature.0.to_vec(),
                i64::try_from(at_ms).unwrap_or(i64::MAX)
            ],
        )?;
        Ok(())
    }

    /// Records a verdict before the notary signs it. The same verdict again
    /// is a no-op; the other one is refused.
    pub fn record_verdict(&mut self, deal_id: DealId, decision: Decision) -> Result<(), StoreError> {
        let transaction = self.connection.savepoint()?;
        let stored: Option<i64> = transaction
            .query_row("SELECT decision FROM verdicts WHERE deal_id = ?1", [deal_key(deal_id)], |row| row.get(0))
            .optional()?;
        match stored.map(|code| verdict_from(code).ok_or(code)) {
            Some(Ok(recorded)) if recorded != decision => {
                return Err(StoreError::Contradiction { deal_id, recorded, attempted: decision })
            }
            Some(Ok(_)) => {}
            Some(Err(code)) => {
                return Err(StoreError::Corrupt {
                    deal_id: deal_id.to_string(),
                    reason: format!("verdict code {code}"),
                })
            }
            None => {
                transaction.execute(
                    "INSERT INTO verdicts (deal_id, decision) VALUES (?1, ?2)",
                    params![deal_key(deal_id), decision_code(decision)],
                )?;
            }
        }
        transaction.commit()?;
        Ok(())
    }

    /// Records that this notary joined the window of a deal it did not
    /// commit (it saw a leg held with the others' commit certificate), so a
    /// restart past the block that showed it opens the window again.
    pub fn record_joined(&mut self, deal_id: DealId) -> Result<(), StoreError> {
        self.connection.execute("INSERT OR IGNORE INTO joined (deal_id) VALUES (?1)", [deal_key(deal_id)])?;
        Ok(())
    }

    /// The deals whose window this notary joined.
    pub fn joined(&self) -> Result<std::collections::HashSet<DealId>, StoreError> {
        let mut statement = self.connection.prepare("SELECT deal_id FROM joined")?;
        let joined = collect_rows(&mut statement, [], |row| deal_from(&row.get::<_, Vec<u8>>(0)?))?;
        Ok(joined.into_iter().collect())
    }

    /// The recorded disputes and verdicts, to restore the inspection windows.
    pub fn inspections(&self) -> Result<Vec<LoggedInspection>, StoreError> {
        let mut found: std::collections::BTreeMap<DealId, LoggedInspection> = Default::default();
        let mut statement = self.connection.prepare("SELECT deal_id, party, reason, signature FROM disputes")?;
        let mut rows = statement.query([])?;
        while let Some(row) = rows.next()? {
            let deal_id = deal_from(&row.get::<_, Vec<u8>>(0)?)?;
            let corrupt = |reason: &str| StoreError::Corrupt { deal_id: deal_id.to_string(), reason: reason.into() };
            let party: [u8; 32] = row.get::<_, Vec<u8>>(1)?.try_into().map_err(|_| corrupt("dispute party"))?;
            let signature: [u8; 64] = row.get::<_, Vec<u8>>(3)?.try_into().map_err(|_| corrupt("dispute signature"))?;
            let dispute =
                Dispute { deal_id, by: PartyId(party), reason: row.get(2)?, signature: Ed25519Signature(signature) };
            found.entry(deal_id).or_insert((deal_id, None, None)).1 = Some(dispute);
        }
        let mut statement = self.connection.prepare("SELECT deal_id, decision FROM verdicts")?;
        let mut rows = statement.query([])?;
        while let Some(row) = rows.next()? {
            let deal_id = deal_from(&row.get::<_, Vec<u8>>(0)?)?;
            let code: i64 = row.get(1)?;
            let decision = verdict_from(code).ok_or_else(|| StoreError::Corrupt {
                deal_id: deal_id.to_string(),
                reason: format!("verdict code {code}"),
            })?;
            found.entry(deal_id).or_insert((deal_id, None, None)).2 = Some(decision);
        }
        Ok(found.into_values().collect())
    }

    /// The recorded reasons of aborts for broken rules.
    pub fn reasons(&self) -> Result<Vec<(DealId, String)>, StoreError> {
        let mut statement = self.connection.prepare("SELECT deal_id, reason FROM reasons")?;
        collect_rows(&mut statement, [], |row| Ok((deal_from(&row.get::<_, Vec<u8>>(0)?)?, row.get(1)?)))
    }

    /// What each party moved per asset and UTC day in committed deals.
    pub fn daily_totals(&self) -> Result<Vec<DailyTotal>, StoreError> {
        let mut statement = self.connection.prepare("SELECT party, asset, day, amount FROM daily_totals")?;
        collect_rows(&mut statement, [], |row| {
            let corrupt =
                |reason: &str| StoreError::Corrupt { deal_id: "(daily totals)".into(), reason: reason.into() };
            let party: [u8; 32] =
                row.get::<_, Vec<u8>>(0)?.try_into().map_err(|_| corrupt("party key is not 32 bytes"))?;
            let asset = AssetCode::new(&row.get::<_, String>(1)?).map_err(|e| corrupt(&e.to_string()))?;
            let day = u64::try_from(row.get::<_, i64>(2)?).map_err(|_| corrupt("negative day"))?;
            let amount: u128 = row.get::<_, String>(3)?.parse().map_err(|_| corrupt("amount is not a number"))?;
            Ok((PartyId(party), asset, day, amount))
        })
    }

    /// Every accepted deal with its recorded decision, to restore the deciders.
    pub fn load(&self) -> Result<Vec<LoggedDeal>, StoreError> {
        let mut statement = self.connection.prepare("SELECT deal_id, terms, decision FROM deals")?;
        collect_rows(&mut statement, [], |row| {
            let deal_id = deal_from(&row.get::<_, Vec<u8>>(0)?)?;
            let corrupt = |reason: String| StoreError::Corrupt { deal_id: deal_id.to_string(), reason };
            let terms = decode_terms(&row.get::<_, Vec<u8>>(1)?).map_err(|e| corrupt(e.to_string()))?;
            if terms.id() != deal_id {
                return Err(corrupt("terms do not hash to the deal id".into()));
            }
            let decision = match row.get::<_, Option<i64>>(2)? {
                None => None,
                Some(code) => Some(decision_from(code).ok_or_else(|| corrupt(format!("decision code {code}")))?),
            };
            Ok((Arc::new(terms), decision))
        })
    }
}

/// The notary writes its log through one [`GroupWriter`](interlock_rpc::store::GroupWriter).
impl interlock_rpc::store::GroupStore for NotaryLog {
    fn connection(&self) -> &Connection {
        &self.connection
    }

    /// The log keeps nothing in memory: the file is all there is.
    fn reload(&mut self) -> Result<(), StoreError> {
        Ok(())
    }
}
