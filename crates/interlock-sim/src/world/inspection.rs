//! Inspection periods: some notary-mode deals hold their executed legs for a
//! window. The buyer (or, as the policy says, the seller) may dispute inside
//! it, or too late; each notary runs the core's verdict decider, records a
//! dispute and a verdict before it signs, and crashes like any other time;
//! each notary's operator decides a disputed deal after a while; the keeper
//! presents whichever verdict k notaries signed, on both networks.
//!
//! What the checker holds on top of its usual invariants: a held asset goes
//! to its beneficiary or back to its owner, once, and both legs the same way
//! (atomicity: a release is an execution, a reverse a cancellation); no leg
//! is still held at the end (liveness); and here, a notary never signs a
//! release while a dispute it recorded waits for its operator.

use super::network::{Node, Payload};
use super::{local, World};
use crate::rng::Rng;
use interlock_core::crypto::{Certificate, Decision, Vote};
use interlock_core::verdict::{Dispute, VerdictDeal, VerdictOutput};
use interlock_core::{DealTerms, Disputer, Inspection, Settlement};
use std::collections::BTreeMap;
use std::sync::Arc;

/// Per mille of notary-mode deals (off the script chain) with an inspection period.
const INSPECTED_PER_MILLE: u64 = 300;
/// Per mille of inspected deals whose disputer disputes.
const DISPUTED_PER_MILLE: u64 = 450;
/// Per mille of disputes sent after the window closed.
const LATE_PER_MILLE: u64 = 200;
/// How often a disputer sends its dispute again to notaries that have not
/// recorded it, until the window closes; and how often a notary passes on
/// the disputes it recorded.
const DISPUTE_RESEND_MS: u64 = 300;
/// Per mille of disputers that send once, to one notary, and stop: the
/// notaries pass the dispute on among themselves.
const GIVES_UP_PER_MILLE: u64 = 400;

/// What the seed planned for one inspected deal.
pub(super) struct InspectionPlan {
    /// When the disputer first sends its dispute, if it disputes.
    pub(super) dispute_at_ms: Option<u64>,
    /// The dispute it sends (signed by the party the policy allows, or now
    /// and then by the other one, which the notaries must refuse).
    pub(super) dispute: Option<Arc<Dispute>>,
    /// What every notary's operator decides, and how long after the dispute.
    pub(super) operator_verdict: Decision,
    pub(super) operator_delay_ms: u64,
    /// When the disputer last sent.
    pub(super) last_sent_ms: u64,
    /// The notary a disputer that gives up after one send sends to, if it does.
    pub(super) gives_up: Option<usize>,
}

/// The inspection a deal is drawn with, from the seed's own inspection stream.
pub(super) fn draw_inspection(rng: &mut Rng, terms: &DealTerms) -> Option<Inspection> {
    if !matches!(terms.settlement, Settlement::Notary { .. }) || !rng.chance(INSPECTED_PER_MILLE) {
        return None;
    }
    let disputer = *rng.pick(&[Disputer::Buyer, Disputer::Buyer, Disputer::Seller, Disputer::Either]);
    Some(Inspection { window_ms: rng.range(1_000, 4_000), disputer })
}

/// The disputes and the operators' verdicts of an inspected deal.
pub(super) fn draw_plan(
    rng: &mut Rng,
    terms: &DealTerms,
    parties: [&interlock_core::crypto::PartyKey; 2],
) -> Option<InspectionPlan> {
    let ends_ms = terms.inspection_ends_ms()?;
    let inspection = terms.policy.inspection?;
    let disputes = rng.chance(DISPUTED_PER_MILLE);
    let dispute_at_ms = disputes.then(|| {
        if rng.chance(LATE_PER_MILLE) {
            ends_ms + rng.range(1, 1_500)
        } else {
            ends_ms.saturating_sub(rng.range(200, inspection.window_ms))
        }
    });
    // Mostly the party the policy allows; now and then the other one.
    let [buyer, seller] = parties;
    let allowed = match inspection.disputer {
        Disputer::Seller => seller,
        Disputer::Buyer | Disputer::Either => buyer,
    };
    let other = if std::ptr::eq(allowed, buyer) { seller } else { buyer };
    let by = if inspection.disputer != Disputer::Either && rng.chance(100) { other } else { allowed };
    let dispute = dispute_at_ms.map(|_| Arc::new(Dispute::sign(by, terms.id(), "the goods are not as agreed")));
    let operator_verdict = if rng.chance(500) { Decision::Release } else { Decision::Reverse };
    let notaries = match &terms.settlement {
        Settlement::Notary { notaries, .. } => notaries.len() as u64,
        Settlement::Hashlock { .. } => 1,
    };
    let gives_up = rng.chance(GIVES_UP_PER_MILLE).then(|| rng.range(0, notaries - 1) as usize);
    Some(InspectionPlan {
        dispute_at_ms,
        dispute,
        operator_verdict,
        operator_delay_ms: rng.range(100, 2_000),
        last_sent_ms: 0,
        gives_up,
    })
}

/// What a notary wrote of one deal's window: the dispute it recorded (with
/// when, by its clock) and its verdict.
pub(super) type VerdictDisk = (Option<(Dispute, u64)>, Option<Decision>);

/// A notary's inspection state: in memory, and on its disk.
#[derive(Default)]
pub(super) struct NotaryInspections {
    pub(super) deals: BTreeMap<interlock_core::DealId, VerdictDeal>,
    /// Recorded disputes (with when) and verdicts: survive a crash.
    pub(super) disk: BTreeMap<interlock_core::DealId, VerdictDisk>,
    pub(super) inbox: Vec<Arc<Dispute>>,
    /// When it last passed its recorded disputes on.
    pub(super) passed_ms: u64,
}

impl World {
    /// Disputers send their disputes to every notary that has not recorded
    /// them, from the planned time until the window closes (late ones once).
    pub(super) fn send_disputes(&mut self) {
        let mut sends = Vec::new();
        for (deal_id, info) in &mut self.deals {
            let Some(plan) = info.inspection.as_mut() else { continue };
            let (Some(at_ms), Some(dispute)) = (plan.dispute_at_ms, plan.dispute.clone()) else { continue };
            let ends_ms = info.terms.inspection_ends_ms().expect("inspected");
            let due = self.now_ms >= at_ms && self.now_ms >= plan.last_sent_ms + DISPUTE_RESEND_MS;
            let again = plan.last_sent_ms == 0 || (self.now_ms < ends_ms && plan.gives_up.is_none());
            if !due || !again {
                continue;
            }
            plan.last_sent_ms = self.now_ms;
            if let Some(only) = plan.gives_up {
                sends.push((only % self.notaries.len(), dispute.clone()));
                continue;
            }
            for (index, notary) in self.notaries.iter().enumerate() {
                let recorded = notary.inspections.disk.get(deal_id).is_some_and(|(dispute, _)| dispute.is_some());
                if !recorded {
                    sends.push((index, dispute.clone()));
                }
            }
        }
        sends.extend(self.disputes_to_pass_on());
        for (index, dispute) in sends {
            self.send(Node::Notary(index), Payload::Dispute(dispute));
        }
        // Notaries that never had a held deal (the parties stop asking once it
        // committed) are given it, as a gateway forwards its deals: they abort
        // it (its deadline passed), see its legs held, and take part in the verdict.
        if self.now_ms < self.deals_resend_ms {
            return;
        }
        self.deals_resend_ms = self.now_ms + DISPUTE_RESEND_MS;
        let mut deals = Vec::new();
        for (deal_id, info) in &self.deals {
            if info.inspection.is_none()
                || self.verdicts.contains_key(deal_id)
                || !self.holds_a_leg(*deal_id, &info.terms)
            {
                continue;
            }
            for (index, notary) in self.notaries.iter().enumerate() {
                if !notary.disk.contains_key(deal_id) {
                    deals.push((index, info.signed.clone()));
                }
            }
        }
        for (index, signed) in deals {
            self.send(Node::Notary(index), Payload::SignedDeal(signed));
        }
    }

    /// What the running notaries pass on, as `disputes.rs` does: each dispute
    /// it recorded whose deal it has not decided, to every other notary that
    /// has not recorded it, until the window closes by its clock.
    fn disputes_to_pass_on(&mut self) -> Vec<(usize, Arc<Dispute>)> {
        let mut sends = Vec::new();
        for index in 0..self.notaries.len() {
            let now_ms = local(self.now_ms, self.notaries[index].skew_ms);
            let node = &self.notaries[index];
            if !node.online || now_ms < node.inspections.passed_ms + DISPUTE_RESEND_MS {
                continue;
            }
            for (deal_id, (dispute, verdict)) in &node.inspections.disk {
                let (Some((dispute, _)), None) = (dispute, verdict) else { continue };
                let ends_ms = self.deals[deal_id].terms.inspection_ends_ms().expect("inspected");
                if now_ms >= ends_ms {
                    continue;
                }
                for (other, peer) in self.notaries.iter().enumerate() {
                    let recorded = peer.inspections.disk.get(deal_id).is_some_and(|(dispute, _)| dispute.is_some());
                    if other != index && !recorded {
                        sends.push((other, Arc::new(dispute.clone())));
                    }
                }
            }
            self.notaries[index].inspections.passed_ms = now_ms;
        }
        self.disputes_passed_on += sends.len() as u64;
        sends
    }

    /// Notary `index`'s inspection windows: opens one for each inspected deal
    /// it recorded a commit for, takes disputes, asks its operator, releases.
    pub(super) fn run_verdicts(&mut self, index: usize) -> Result<(), String> {
        let now_ms = local(self.now_ms, self.notaries[index].skew_ms);
        let mut outputs = Vec::new();
        // A deal is committed for this notary when it recorded the commit, or
        // when the chain holds one of its legs: the other notaries committed
        // it. Every notary of the set takes part in the verdict, or a split
        // between those that saw a dispute and those that did not could leave
        // no k agreeing.
        let committed: Vec<_> = self.notaries[index]
            .disk
            .iter()
            .filter(|(id, (terms, decision))| {
                terms.policy.inspection.is_some()
                    && !self.notaries[index].inspections.deals.contains_key(*id)
                    && (*decision == Some(Decision::Commit) || self.holds_a_leg(**id, terms))
            })
            .map(|(id, (terms, _))| (*id, terms.clone()))
            .collect();
        for (deal_id, terms) in committed {
            let node = &mut self.notaries[index].inspections;
            let (dispute, verdict) = node.disk.get(&deal_id).cloned().unwrap_or((None, None));
            let deal = VerdictDeal::restore(terms, dispute.map(|(dispute, _)| dispute), verdict).expect("inspected");
            outputs.extend(deal.vote(&self.notaries[index].key).map(VerdictOutput::Vote));
            self.notaries[index].inspections.deals.insert(deal_id, deal);
        }
        for dispute in std::mem::take(&mut self.notaries[index].inspections.inbox) {
            let Some(deal) = self.notaries[index].inspections.deals.get_mut(&dispute.deal_id) else { continue };
            // Refused disputes (late, by the wrong party) change nothing.
            match deal.raise(&dispute, now_ms) {
                Ok(raised) => outputs.extend(raised),
                Err(error) => {
                    self.disputes_refused += 1;
                    self.note(|| format!("notary {index} refuses a dispute of {:?}: {error}", dispute.deal_id));
                }
            }
        }
        let deal_ids: Vec<_> = self.notaries[index].inspections.deals.keys().copied().collect();
        for deal_id in deal_ids {
            let plan = self.deals[&deal_id].inspection.as_ref().expect("inspected");
            let (verdict, delay_ms) = (plan.operator_verdict, plan.operator_delay_ms);
            let node = &mut self.notaries[index].inspections;
            let disputed_at = node.disk.get(&deal_id).and_then(|(dispute, _)| dispute.as_ref().map(|(_, at)| *at));
            let deal = node.deals.get_mut(&deal_id).expect("listed");
            outputs.extend(deal.tick(now_ms));
            if deal.awaiting_operator() && disputed_at.is_some_and(|at| now_ms >= at + delay_ms) {
                outputs.extend(deal.decide(verdict).map_err(|error| format!("notary {index}'s operator: {error}"))?);
            }
        }
        self.verdict_outputs(index, outputs)
    }

    /// How many deals have an inspection period.
    pub fn inspected(&self) -> usize {
        self.deals.values().filter(|info| info.inspection.is_some()).count()
    }

    /// How many deals some notary recorded a dispute for.
    pub fn disputed(&self) -> usize {
        self.deals
            .keys()
            .filter(|id| self.notaries.iter().any(|n| n.inspections.disk.get(*id).is_some_and(|(d, _)| d.is_some())))
            .count()
    }

    /// How many deals the keeper holds a `decision` verdict for.
    pub fn verdicts_of(&self, decision: Decision) -> usize {
        self.verdicts.values().filter(|certificate| certificate.decision == decision).count()
    }

    /// Whether either network holds a leg of the deal for inspection.
    fn holds_a_leg(&self, deal_id: interlock_core::DealId, terms: &DealTerms) -> bool {
        interlock_core::LegKind::BOTH.iter().any(|leg| {
            let index = Self::ledger_index(terms.leg(*leg).network);
            self.ledgers[index].ledger.as_ref().is_some_and(|ledger| {
                let id = interlock_core::reservation_id(deal_id, *leg);
                ledger.state().reservation(&id).is_some_and(|r| r.state == interlock_core::ReservationState::Held)
            })
        })
    }

    fn verdict_outputs(&mut self, index: usize, outputs: Vec<VerdictOutput>) -> Result<(), String> {
        let mut queue: std::collections::VecDeque<VerdictOutput> = outputs.into();
        while let Some(output) = queue.pop_front() {
            match output {
                VerdictOutput::RecordDispute(dispute) => {
                    let now_ms = local(self.now_ms, self.notaries[index].skew_ms);
                    self.note(|| format!("notary {index} records a dispute of {:?}", dispute.deal_id));
                    let disk = self.notaries[index].inspections.disk.entry(dispute.deal_id).or_default();
                    disk.0 = Some((dispute, now_ms));
                }
                VerdictOutput::Record { deal_id, decision } => {
                    // A crash before the write loses the verdict, which was never signed.
                    if self.rng.chance(self.faults.crash_per_mille * 20) {
                        let down_ms = self.rng.range(50, 1_000);
                        self.crash_notary(index, down_ms);
                        return Ok(());
                    }
                    let node = &mut self.notaries[index];
                    let disk = node.inspections.disk.entry(deal_id).or_default();
                    let disputed = disk.0.is_some();
                    let operator = self.deals[&deal_id].inspection.as_ref().map(|plan| plan.operator_verdict);
                    if disputed && decision == Decision::Release && operator != Some(Decision::Release) {
                        return Err(format!(
                            "notary {index} released {deal_id:?} while a dispute it recorded was pending"
                        ));
                    }
                    disk.1 = Some(decision);
                    let deal = node.inspections.deals.get_mut(&deal_id).expect("deciding deal exists");
                    queue.extend(deal.recorded(&node.key));
                }
                VerdictOutput::Vote(vote) => self.heard_verdict(index, vote)?,
            }
        }
        Ok(())
    }

    /// The keeper hears notary `index`'s verdict vote; once k agree it holds a
    /// certificate to present on both networks.
    fn heard_verdict(&mut self, index: usize, vote: Vote) -> Result<(), String> {
        let previous = self.verdicts_sent.insert((index, vote.deal_id), vote.decision);
        if previous.is_some_and(|p| p != vote.decision) {
            return Err(format!("notary {index} signed both release and reverse for {:?}", vote.deal_id));
        }
        let Settlement::Notary { threshold, .. } = self.deals[&vote.deal_id].terms.settlement else {
            return Err("a verdict on a hashlock deal".into());
        };
        let heard = self.verdict_votes.entry(vote.deal_id).or_default();
        heard.insert(index, vote);
        let agreeing: Vec<_> =
            heard.values().filter(|seen| seen.decision == vote.decision).map(|seen| seen.signature).collect();
        if agreeing.len() >= usize::from(threshold) && !self.verdicts.contains_key(&vote.deal_id) {
            let signatures = agreeing.into_iter().take(usize::from(threshold)).collect();
            let certificate = Certificate { deal_id: vote.deal_id, decision: vote.decision, signatures };
            self.note(|| format!("the keeper holds a {} certificate for {:?}", vote.decision, vote.deal_id));
            self.verdicts.insert(vote.deal_id, certificate);
        }
        Ok(())
    }
}
