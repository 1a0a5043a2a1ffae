//! Keeping the working set to what matters: proposals nobody agreed to in
//! time are withdrawn, withdrawn deals leave the working set after the
//! configured time (the store keeps their history), and the deals in each
//! state are counted for the metrics.

use super::{Changes, Engine, INPUTS_BUFFER};
use crate::store::DealState;
use interlock_core::DealId;
use std::collections::HashMap;

impl Engine {
    /// Publishes how many deals are in each state, and the engine's queues.
    pub(super) fn count_states(&self) {
        let metrics = interlock_rpc::metrics::metrics();
        let mut counts: HashMap<&'static str, usize> = HashMap::new();
        for deal in self.deals.values() {
            *counts.entry(deal.state.as_str()).or_default() += 1;
        }
        for state in DealState::ALL {
            let state = state.as_str();
            metrics.deals_in_state("agent", state, counts.get(state).copied().unwrap_or(0));
        }
        metrics.queue_length("agent", "inputs", INPUTS_BUFFER.saturating_sub(self.inputs.capacity()));
    }

    /// A proposal nobody agreed to before its first deadline never will be in
    /// time: withdraw it, so it cannot start late.
    pub(super) fn expire_proposals(&mut self, now: u64, changes: &mut Changes) {
        let expired: Vec<DealId> = self
            .deals
            .iter()
            .filter(|(_, deal)| matches!(deal.state, DealState::Proposed | DealState::Received))
            .filter(|(_, deal)| deal.terms.check_fresh(now).is_err())
            .map(|(deal_id, _)| *deal_id)
            .collect();
        for deal_id in expired {
            self.withdraw(deal_id, now, changes, "withdrawn: its deadline passed before both parties agreed");
        }
    }

    /// This party takes no part in the deal any more.
    pub(super) fn withdraw(&mut self, deal_id: DealId, now: u64, changes: &mut Changes, why: &str) {
        if let Some(deal) = self.deals.get_mut(&deal_id) {
            deal.state = DealState::Withdrawn;
            self.withdrawn_at.insert(deal_id, now);
            changes.step(deal_id, now, why.to_owned());
        }
        if self.early.remove(&deal_id).is_some() {
            changes.early_consumed.push(deal_id);
        }
    }

    /// Withdrawn deals older than the retention leave the working set: lists,
    /// metrics and memory no longer hold them, the store keeps their history
    /// (`deal status` still finds them), and notices of them are ignored. A
    /// gateway that refuses every proposal during an outage so leaves no
    /// lasting trace in what the agent works on.
    pub(super) fn retire_withdrawn(&mut self, now: u64) {
        let retention_ms = self.withdrawn_retention_ms;
        let due: Vec<DealId> = self
            .withdrawn_at
            .iter()
            .filter(|(_, at_ms)| at_ms.saturating_add(retention_ms) <= now)
            .map(|(deal_id, _)| *deal_id)
            .collect();
        for deal_id in due {
            self.withdrawn_at.remove(&deal_id);
            let withdrawn = self.deals.get(&deal_id).is_some_and(|deal| deal.state == DealState::Withdrawn);
            if withdrawn {
                self.deals.remove(&deal_id);
                self.steps.remove(&deal_id);
                self.retired.insert(deal_id);
            }
        }
    }
}
