//! What the engine does when a chain its party signs on reorganised below
//! what the engine read: it asks the chain where each leg there stands now,
//! and each saga goes back where the chain went back (`Saga::rolled_back`),
//! sending again what its own side lost. A deal that had ended runs again.
//!
//! Until every leg was read again, the engine keeps that network's block
//! cursor where it was: an agent restarted meanwhile is told of the rollback
//! again by its gateway, and reads again.

use super::{leg_word, shown, Changes, Engine, Input, Live};
use crate::store::DealState;
use interlock_chain::ChainErrorKind;
use interlock_core::escrow::ReservationState;
use interlock_core::{DealId, LegKind, NetworkId};
use std::time::Duration;

/// How long after a leg's expiry its deal is still read again after a
/// rollback (later, nothing can be sent for it any more).
const READ_AFTER_EXPIRY_MS: u64 = 3_600_000;
/// Attempts at reading one leg while its chain answers "later".
const READ_ATTEMPTS: u32 = 30;
const READ_RETRY: Duration = Duration::from_secs(1);

impl Engine {
    /// `network` reorganised back to height `to`: reads again every leg there
    /// of the deals still running or ended recently enough to change.
    pub(super) fn on_rolled_back(&mut self, network: NetworkId, to: u64, now: u64, changes: &mut Changes) {
        let Some(submitter) = self.submitters.get(&network).cloned() else { return };
        let mut legs = Vec::new();
        for (deal_id, deal) in &self.deals {
            if !matches!(deal.state, DealState::Running | DealState::Ended(_)) {
                continue;
            }
            for leg in LegKind::BOTH {
                let recent = now < deal.terms.expiry_ms(leg).saturating_add(READ_AFTER_EXPIRY_MS);
                if deal.terms.leg(leg).network == network && recent {
                    legs.push((*deal_id, deal.terms.clone(), leg));
                }
            }
        }
        let name = self.network_name(network);
        println!(
            "agent {}: {name} reorganised back to block {to}, below what was read: reading {} legs there again",
            self.party.name,
            legs.len()
        );
        if legs.is_empty() {
            return;
        }
        *self.rechecking.entry(network).or_default() += legs.len();
        for (deal_id, terms, leg) in legs {
            changes.step(
                deal_id,
                now,
                format!("{name} reorganised back to block {to}: reading the {} again", leg_word(leg)),
            );
            let (submitter, inputs) = (submitter.clone(), self.inputs.clone());
            tokio::spawn(async move {
                let mut attempts = 0;
                let state = loop {
                    attempts += 1;
                    match submitter.leg_state(&terms, leg).await {
                        Ok(state) => break Ok(state),
                        Err(error) if error.kind == ChainErrorKind::RetryLater && attempts < READ_ATTEMPTS => {
                            tokio::time::sleep(READ_RETRY).await;
                        }
                        Err(error) => break Err(error.to_string()),
                    }
                };
                let _ = inputs.send(Input::LegOnChain { network, deal_id, leg, state }).await;
            });
        }
    }

    /// Where `leg` of `deal_id` stands on its chain after a rollback: the saga
    /// goes back there if it saw it further along, and runs again if it ended.
    pub(super) fn on_leg_on_chain(
        &mut self,
        read: (NetworkId, DealId, LegKind),
        state: Result<Option<ReservationState>, String>,
        now: u64,
        changes: &mut Changes,
    ) {
        let (network, deal_id, leg) = read;
        if let Some(count) = self.rechecking.get_mut(&network) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                self.rechecking.remove(&network);
            }
        }
        let state = match state {
            Ok(state) => state,
            Err(error) => {
                changes.step(deal_id, now, format!("the {} could not be read again: {error}", leg_word(leg)));
                return;
            }
        };
        if let Some(live) = self.live.get_mut(&deal_id) {
            if live.saga.rolled_back(leg, state) {
                changes.sagas.insert(deal_id);
                changes.outputs.push((deal_id, live.saga.step(now).outputs));
            }
            return;
        }
        let mut saga = match self.store.saga(deal_id) {
            Ok(Some(saga)) => saga,
            Ok(None) => return,
            Err(error) => {
                changes.step(deal_id, now, format!("the {} cannot be run again: {error}", leg_word(leg)));
                return;
            }
        };
        let before = shown(&saga);
        if !saga.rolled_back(leg, state) {
            return;
        }
        if let Some(deal) = self.deals.get_mut(&deal_id) {
            deal.state = DealState::Running;
        }
        self.ended_legs.remove(&deal_id);
        changes.step(deal_id, now, "running again: the chain took back what ended it".to_owned());
        changes.sagas.insert(deal_id);
        changes.outputs.push((deal_id, saga.step(now).outputs));
        self.live.insert(deal_id, Live { saga, saved: Vec::new(), shown: before });
    }
}
