//! The notaries: each accepts signed deals, polls both networks for their
//! reservations, records a decision before it signs, and keeps the daily
//! totals its deals' policies limit.

use super::network::{Node, Payload};
use super::{local, World};
use interlock_core::crypto::{Decision, NotaryKey};
use interlock_core::notary::{NotaryDeal, NotaryOutput, SignedDeal};
use interlock_core::policy::{movements, utc_day, Approvals};
use interlock_core::{reservation_id, AssetCode, DealId, DealTerms, LegKind, PartyId};
use std::collections::BTreeMap;
use std::sync::Arc;

pub(super) struct NotaryNode {
    pub(super) key: NotaryKey,
    pub(super) skew_ms: i64,
    pub(super) online: bool,
    pub(super) down_until_ms: u64,
    pub(super) deals: BTreeMap<DealId, NotaryDeal>,
    /// Terms of accepted deals and their recorded decisions.
    pub(super) disk: BTreeMap<DealId, (Arc<DealTerms>, Option<Decision>)>,
    /// What each party moved per asset and UTC day in the deals this notary
    /// committed: on disk, written with the commit.
    pub(super) moved: DailyTotals,
    /// Commits decided but not written yet: they count at once, so deals
    /// decided in one step see each other; lost with a crash, like the decision.
    pub(super) pending: DailyTotals,
    pub(super) inbox: Vec<Arc<SignedDeal>>,
    /// The inspection windows of its committed deals (`inspection.rs`).
    pub(super) inspections: super::inspection::NotaryInspections,
}

pub(super) type DailyTotals = BTreeMap<(PartyId, AssetCode, u64), u128>;

/// A notary's approvals: every simulated party is registered; the daily totals
/// are the notary's own, written and pending.
struct NotaryApprovals<'a>(&'a DailyTotals, &'a DailyTotals);

impl Approvals for NotaryApprovals<'_> {
    fn registered(&self, _party: PartyId) -> bool {
        true
    }
    fn moved_on_day(&self, party: PartyId, asset: &AssetCode, day: u64) -> u128 {
        let key = (party, asset.clone(), day);
        self.0.get(&key).copied().unwrap_or(0) + self.1.get(&key).copied().unwrap_or(0)
    }
}

/// Adds a deal's movements on `day` to `totals` if `outputs` commit it.
fn count_commit(totals: &mut DailyTotals, terms: &DealTerms, outputs: &[NotaryOutput], day: u64) {
    if outputs.iter().any(|o| matches!(o, NotaryOutput::Record { decision: Decision::Commit, .. })) {
        for (_, party, asset, amount) in movements(terms) {
            *totals.entry((party, asset, day)).or_default() += amount;
        }
    }
}

impl World {
    pub(super) fn run_notary(&mut self, index: usize) -> Result<(), String> {
        if !self.notaries[index].online {
            return Ok(());
        }
        let now_ms = local(self.now_ms, self.notaries[index].skew_ms);
        let inbox = std::mem::take(&mut self.notaries[index].inbox);
        let mut outputs = Vec::new();
        for signed in inbox {
            let deal_id = signed.terms.id();
            let node = &mut self.notaries[index];
            if let Some(deal) = node.deals.get(&deal_id) {
                outputs.extend(deal.vote(&node.key).map(NotaryOutput::Vote));
                continue;
            }
            match NotaryDeal::accept(&node.key, &signed, now_ms) {
                Ok((deal, first)) => {
                    node.disk.insert(deal_id, (deal.terms().clone(), None));
                    node.deals.insert(deal_id, deal);
                    outputs.extend(first);
                }
                Err(error) => return Err(format!("notary {index} refused a valid deal: {error}")),
            }
        }
        // Poll both networks for the reservations of undecided deals.
        let undecided: Vec<DealId> =
            self.notaries[index].deals.iter().filter(|(_, d)| d.wake_at_ms().is_some()).map(|(id, _)| *id).collect();
        for deal_id in undecided {
            let terms = self.deals[&deal_id].terms.clone();
            for leg in LegKind::BOTH {
                let ledger_index = Self::ledger_index(terms.leg(leg).network);
                let Some(ledger) = self.ledgers[ledger_index].ledger.as_ref() else {
                    continue;
                };
                let id = reservation_id(deal_id, leg);
                let reservation = match &self.deep_chain {
                    Some(deep) if deep.index == ledger_index => deep.confirmed_reservations.get(&id),
                    _ => ledger.state().reservation(&id),
                };
                if let Some(reservation) = reservation {
                    let event = interlock_core::EscrowEvent::Reserved(reservation.clone());
                    let node = &mut self.notaries[index];
                    let deal = node.deals.get_mut(&deal_id).expect("listed");
                    let decided = deal.observe(now_ms, &event, &NotaryApprovals(&node.moved, &node.pending));
                    count_commit(&mut node.pending, &terms, &decided, utc_day(now_ms));
                    outputs.extend(decided);
                }
            }
            let node = &mut self.notaries[index];
            let deal = node.deals.get_mut(&deal_id).expect("listed");
            let decided = deal.tick(now_ms, &NotaryApprovals(&node.moved, &node.pending));
            count_commit(&mut node.pending, &terms, &decided, utc_day(now_ms));
            outputs.extend(decided);
        }
        self.notary_outputs(index, outputs)?;
        if self.notaries[index].online {
            self.run_verdicts(index)?;
        }
        Ok(())
    }

    fn notary_outputs(&mut self, index: usize, outputs: Vec<NotaryOutput>) -> Result<(), String> {
        let mut queue: std::collections::VecDeque<NotaryOutput> = outputs.into();
        while let Some(output) = queue.pop_front() {
            match output {
                NotaryOutput::Record { deal_id, decision, .. } => {
                    // A crash before the write loses the decision, which was never signed.
                    if self.rng.chance(self.faults.crash_per_mille * 20) {
                        let down_ms = self.rng.range(50, 1_000);
                        self.crash_notary(index, down_ms);
                        return Ok(());
                    }
                    let now_ms = local(self.now_ms, self.notaries[index].skew_ms);
                    let node = &mut self.notaries[index];
                    node.disk.get_mut(&deal_id).expect("accepted deals are on disk").1 = Some(decision);
                    if decision == Decision::Commit {
                        let terms = node.disk[&deal_id].0.clone();
                        for (_, party, asset, amount) in movements(&terms) {
                            let key = (party, asset.clone(), utc_day(now_ms));
                            if let Some(pending) = node.pending.get_mut(&key) {
                                *pending = pending.saturating_sub(amount);
                            }
                            let total = node.moved.entry(key).or_default();
                            *total += amount;
                            // The approval rule, checked from outside the decider.
                            if terms.policy.amount_max_per_day.is_some_and(|max| *total > max) {
                                return Err(format!(
                                    "notary {index} committed {deal_id:?} over its daily limit: {total} {asset}"
                                ));
                            }
                        }
                    }
                    let deal = node.deals.get_mut(&deal_id).expect("deciding deal exists");
                    queue.extend(deal.recorded(&node.key));
                }
                NotaryOutput::Vote(vote) => {
                    let previous = self.votes_sent.insert((index, vote.deal_id), vote.decision);
                    if previous.is_some_and(|p| p != vote.decision) {
                        return Err(format!("notary {index} signed both commit and abort for {:?}", vote.deal_id));
                    }
                    for party in 0..self.parties.len() {
                        self.send(Node::Party(party), Payload::Vote(vote));
                    }
                }
            }
        }
        Ok(())
    }
}
