//! The end of an inspection period as a party sees it: a deal whose legs
//! were executed into the window ended `completed` for the saga, and the
//! notaries' verdict, carried out on the chains after that, moves each held
//! leg once more: paid out on a release, back to its owner on a reverse.

use super::{Changes, Engine};
use crate::store::DealState;
use interlock_core::saga::Outcome;
use interlock_core::EscrowEvent;

impl Engine {
    /// A chain event of a deal no saga runs any more: the verdict on a leg
    /// of a completed deal with an inspection period, which the deal's state
    /// and steps then show.
    pub(super) fn on_verdict_event(&mut self, event: &EscrowEvent, now: u64, changes: &mut Changes) {
        let deal_id = event.deal_id();
        let Some(deal) = self.deals.get_mut(&deal_id) else { return };
        let resolvable =
            matches!(deal.state, DealState::Ended(Outcome::Completed) | DealState::Released | DealState::Reversed);
        if !resolvable || deal.terms.policy.inspection.is_none() {
            return;
        }
        let network = self
            .directory
            .network(deal.terms.leg(event.leg()).network)
            .map_or_else(|| deal.terms.leg(event.leg()).network.to_string(), |entry| entry.name.clone());
        let (state, text) = match event {
            EscrowEvent::Executed { leg, .. } => (
                DealState::Released,
                format!("released: the {leg} leg paid out on {network} at the end of the inspection period"),
            ),
            EscrowEvent::Cancelled { leg, .. } => (
                DealState::Reversed,
                format!("reversed by the notaries' verdict: the {leg} leg went back to its owner on {network}"),
            ),
            EscrowEvent::Reserved(_) | EscrowEvent::Held { .. } => return,
        };
        if deal.state != state {
            deal.state = state;
            interlock_rpc::metrics::metrics().deal_event("agent", state.as_str());
        }
        changes.step(deal_id, now, text);
    }
}
