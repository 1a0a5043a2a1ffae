//! The gateway's keeper (invariant 7 of DESIGN.md): it tracks every open
//! reservation of its network and, by the network's block time, cancels those
//! past their expiry and, in hashlock mode, executes those that name the
//! gateway as keeper once the other network revealed the secret. Pure: it
//! takes blocks and secrets and returns the operations to submit.
//!
//! It never cancels a reservation of a deal the notaries committed (a leg
//! executed with a commit certificate, on this network or, as the other
//! gateway reports, on the other): after a commit, cancelling one leg at its
//! backstop would leave the deal half done. The beneficiary executes it when it
//! comes back, with the same certificate.

use interlock_core::crypto::{Certificate, Secret, Token};
use interlock_core::escrow::Condition;
use interlock_core::{
    reservation_id, Address, DealId, EscrowEvent, EscrowOp, Hash32, LegKind, NotaryAddress, ReservationId,
};
use std::collections::{BTreeSet, HashMap, HashSet};

/// How long after learning a secret the keeper leaves the beneficiary to
/// execute by itself, in network milliseconds.
pub const GRACE_MS: u64 = 1_000;
/// How long the keeper waits before sending the same operation again, in
/// network milliseconds.
pub const RETRY_MS: u64 = 2_000;
/// Most operations the keeper sends for one block.
pub const ACTIONS_PER_BLOCK_MAX: usize = 256;
/// Most open reservations tracked; past it new ones are left to other keepers.
pub const OPEN_MAX: usize = 1_000_000;
/// Most learned secrets held.
pub const SECRETS_MAX: usize = 100_000;

#[derive(Clone, Debug)]
struct Open {
    deal_id: DealId,
    expiry_ms: u64,
    keeper: Option<Address>,
    hashlock: Option<Hash32>,
    /// The notaries whose verdict resolves the leg once it is held (an
    /// inspected leg only).
    verdict_by: Option<(Vec<NotaryAddress>, u8)>,
}

/// A leg held for inspection: whose verdict moves it.
#[derive(Clone, Debug)]
pub(crate) struct Held {
    pub(crate) deal_id: DealId,
    pub(crate) notaries: Vec<NotaryAddress>,
    pub(crate) threshold: u8,
}

#[derive(Clone, Debug)]
pub(crate) struct Keeper {
    /// The account the keeper signs for, when the gateway keeps.
    address: Option<Address>,
    open: HashMap<ReservationId, Open>,
    by_expiry: BTreeSet<(u64, ReservationId)>,
    /// Secrets revealed on other networks, with the network time they were learned.
    secrets: HashMap<DealId, (Secret, u64)>,
    sent_ms: HashMap<ReservationId, u64>,
    /// Deals the notaries committed: their reservations are never cancelled.
    committed: HashSet<DealId>,
    /// The latest block time seen: the clock a learned secret's grace period
    /// is counted on.
    pub(crate) now_ms: u64,
    /// Legs held for inspection, and the verdicts learned for their deals:
    /// the keeper presents a verdict on every held leg of its deal (anyone may).
    held: HashMap<ReservationId, Held>,
    verdicts: HashMap<DealId, Certificate>,
}

impl Keeper {
    pub(crate) fn new(address: Option<Address>) -> Keeper {
        Keeper {
            address,
            open: HashMap::new(),
            by_expiry: BTreeSet::new(),
            secrets: HashMap::new(),
            sent_ms: HashMap::new(),
            committed: HashSet::new(),
            now_ms: 0,
            held: HashMap::new(),
            verdicts: HashMap::new(),
        }
    }

    /// Remembers that the notaries committed `deal_id` (its certificate was
    /// checked where it was used, or by whoever reports it).
    pub(crate) fn learn_commit(&mut self, deal_id: DealId) {
        if self.committed.len() < SECRETS_MAX {
            self.committed.insert(deal_id);
        }
    }

    /// Follows one escrow event of the network.
    pub(crate) fn observe(&mut self, event: &EscrowEvent) {
        match event {
            EscrowEvent::Reserved(reservation) => {
                if self.open.len() >= OPEN_MAX {
                    return;
                }
                let hashlock = match &reservation.condition {
                    Condition::Hashlock(hash) => Some(*hash),
                    Condition::Notary { .. } | Condition::Inspected { .. } => None,
                };
                let verdict_by = match &reservation.condition {
                    Condition::Inspected { notaries, threshold } => Some((notaries.clone(), *threshold)),
                    Condition::Hashlock(_) | Condition::Notary { .. } => None,
                };
                let open = Open {
                    deal_id: reservation.deal_id,
                    expiry_ms: reservation.expiry_ms,
                    keeper: reservation.keeper,
                    hashlock,
                    verdict_by,
                };
                self.by_expiry.insert((open.expiry_ms, reservation.id));
                self.open.insert(reservation.id, open);
            }
            EscrowEvent::Executed { reservation, .. }
            | EscrowEvent::Cancelled { reservation, .. }
            | EscrowEvent::Held { reservation, .. } => {
                // A commit certificate, paid out or held, tells the deal committed.
                if let EscrowEvent::Executed { deal_id, token: Token::Certificate(certificate), .. }
                | EscrowEvent::Held { deal_id, token: Token::Certificate(certificate), .. } = event
                {
                    if certificate.decision == interlock_core::Decision::Commit {
                        self.learn_commit(*deal_id);
                    }
                }
                if let Some(held) = self.held.remove(reservation) {
                    // Resolved: the verdict goes once both legs here are.
                    if !self.held.values().any(|other| other.deal_id == held.deal_id) {
                        self.verdicts.remove(&held.deal_id);
                    }
                }
                if let Some(open) = self.open.remove(reservation) {
                    self.by_expiry.remove(&(open.expiry_ms, *reservation));
                    if let (EscrowEvent::Held { .. }, Some((notaries, threshold))) = (event, open.verdict_by.clone()) {
                        if self.held.len() < OPEN_MAX {
                            self.held.insert(*reservation, Held { deal_id: open.deal_id, notaries, threshold });
                        }
                    }
                    let deal_open =
                        LegKind::BOTH.iter().any(|leg| self.open.contains_key(&reservation_id(open.deal_id, *leg)));
                    if !deal_open {
                        self.secrets.remove(&open.deal_id);
                        self.committed.remove(&open.deal_id);
                    }
                }
                self.sent_ms.remove(reservation);
            }
        }
    }

    /// Remembers a secret revealed on another network, learned at network time `learned_ms`.
    pub(crate) fn learn(&mut self, deal_id: DealId, secret: Secret, learned_ms: u64) {
        if self.secrets.len() < SECRETS_MAX {
            self.secrets.entry(deal_id).or_insert((secret, learned_ms));
        }
    }

    /// The legs held for inspection whose deal has no verdict here yet: the
    /// ones to ask the notaries about.
    pub(crate) fn awaiting_verdicts(&self) -> Vec<Held> {
        let mut deals: Vec<Held> =
            self.held.values().filter(|held| !self.verdicts.contains_key(&held.deal_id)).cloned().collect();
        deals.sort_by_key(|held| held.deal_id);
        deals.dedup_by_key(|held| held.deal_id);
        deals
    }

    /// Remembers the verdict on `deal_id` (checked by whoever assembled it;
    /// the escrow checks it again).
    pub(crate) fn learn_verdict(&mut self, deal_id: DealId, verdict: Certificate) {
        if self.held.values().any(|held| held.deal_id == deal_id) {
            self.verdicts.entry(deal_id).or_insert(verdict);
        }
    }

    /// The deal of an open or held reservation this keeper tracks.
    pub(crate) fn deal_of(&self, id: &ReservationId) -> Option<DealId> {
        self.open.get(id).map(|open| open.deal_id).or_else(|| self.held.get(id).map(|held| held.deal_id))
    }

    fn due(&self, id: &ReservationId, now_ms: u64) -> bool {
        self.sent_ms.get(id).is_none_or(|sent| now_ms >= sent.saturating_add(RETRY_MS))
    }

    /// What to submit now that the network's time is `now_ms`: executions of
    /// reservations this gateway keeps whose secret it learned (after the
    /// grace period, or at once when the expiry is closer than that), and
    /// cancellations of reservations past their expiry.
    pub(crate) fn act(&mut self, now_ms: u64) -> Vec<EscrowOp> {
        self.now_ms = self.now_ms.max(now_ms);
        let mut actions = Vec::new();
        let mut executions: Vec<(ReservationId, Secret)> = Vec::new();
        for (deal_id, (secret, learned_ms)) in &self.secrets {
            for leg in LegKind::BOTH {
                let id = reservation_id(*deal_id, leg);
                let Some(open) = self.open.get(&id) else { continue };
                let ours = open.keeper.is_some() && open.keeper == self.address && open.hashlock == Some(secret.hash());
                let waited = now_ms >= learned_ms.saturating_add(GRACE_MS);
                let closing = now_ms.saturating_add(GRACE_MS) >= open.expiry_ms;
                if ours && now_ms < open.expiry_ms && (waited || closing) && self.due(&id, now_ms) {
                    executions.push((id, *secret));
                }
            }
        }
        for (id, secret) in executions.into_iter().take(ACTIONS_PER_BLOCK_MAX) {
            self.sent_ms.insert(id, now_ms);
            actions.push(EscrowOp::Execute { reservation: id, token: Token::Secret(secret) });
        }
        let expired: Vec<ReservationId> = self
            .by_expiry
            .iter()
            .take_while(|(expiry_ms, _)| *expiry_ms <= now_ms)
            .map(|(_, id)| *id)
            .filter(|id| self.open.get(id).is_none_or(|open| !self.committed.contains(&open.deal_id)))
            .filter(|id| self.due(id, now_ms))
            .take(ACTIONS_PER_BLOCK_MAX.saturating_sub(actions.len()))
            .collect();
        for id in expired {
            self.sent_ms.insert(id, now_ms);
            actions.push(EscrowOp::Cancel { reservation: id, certificate: None });
        }
        let mut resolutions: Vec<(ReservationId, Certificate)> = self
            .held
            .iter()
            .filter_map(|(id, held)| self.verdicts.get(&held.deal_id).map(|verdict| (*id, verdict.clone())))
            .filter(|(id, _)| self.due(id, now_ms))
            .collect();
        resolutions.sort_by_key(|(id, _)| *id);
        for (id, verdict) in resolutions.into_iter().take(ACTIONS_PER_BLOCK_MAX.saturating_sub(actions.len())) {
            self.sent_ms.insert(id, now_ms);
            actions.push(EscrowOp::Resolve { reservation: id, verdict });
        }
        actions
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use interlock_core::crypto::Certificate;
    use interlock_core::{Asset, AssetCode, Decision, Reservation, ReservationState};

    fn reservation(deal_id: DealId, leg: LegKind, expiry_ms: u64) -> EscrowEvent {
        EscrowEvent::Reserved(Reservation {
            id: reservation_id(deal_id, leg),
            deal_id,
            leg,
            asset: Asset::Fungible { code: AssetCode::new("USD").unwrap(), amount: 5 },
            owner: Address::from_bytes([1; 32]),
            beneficiary: Address::from_bytes([2; 32]),
            keeper: None,
            condition: Condition::Notary { notaries: vec![], threshold: 1 },
            expiry_ms,
            state: ReservationState::Reserved,
        })
    }

    fn deal(n: u8) -> DealId {
        DealId(Hash32([n; 32]))
    }

    #[test]
    fn an_expired_reservation_is_cancelled_unless_its_deal_committed() {
        let mut keeper = Keeper::new(Some(Address::from_bytes([9; 32])));
        keeper.observe(&reservation(deal(1), LegKind::Payment, 1_000));
        keeper.observe(&reservation(deal(2), LegKind::Payment, 1_000));
        // The other gateway reports deal 2's delivery executed with a commit certificate.
        keeper.learn_commit(deal(2));
        let actions = keeper.act(1_000);
        let cancelled: Vec<ReservationId> = actions.iter().map(EscrowOp::reservation_id).collect();
        assert_eq!(cancelled, vec![reservation_id(deal(1), LegKind::Payment)]);
    }

    #[test]
    fn a_commit_on_this_network_protects_the_deals_other_leg_here() {
        let mut keeper = Keeper::new(Some(Address::from_bytes([9; 32])));
        keeper.observe(&reservation(deal(3), LegKind::Payment, 1_000));
        keeper.observe(&reservation(deal(3), LegKind::Delivery, 1_000));
        let certificate = Certificate { deal_id: deal(3), decision: Decision::Commit, signatures: vec![] };
        keeper.observe(&EscrowEvent::Executed {
            reservation: reservation_id(deal(3), LegKind::Delivery),
            deal_id: deal(3),
            leg: LegKind::Delivery,
            by: Address::from_bytes([1; 32]),
            to: Address::from_bytes([1; 32]),
            asset: Asset::Fungible { code: AssetCode::new("USD").unwrap(), amount: 5 },
            token: Token::Certificate(certificate),
        });
        assert!(keeper.act(5_000).is_empty(), "a committed deal's open leg waits for its beneficiary");
    }

    fn inspected(deal_id: DealId, leg: LegKind) -> EscrowEvent {
        let EscrowEvent::Reserved(mut reservation) = reservation(deal_id, leg, 1_000) else { unreachable!() };
        let notaries = vec![NotaryAddress([7; 20]), NotaryAddress([8; 20])];
        reservation.condition = Condition::Inspected { notaries, threshold: 2 };
        EscrowEvent::Reserved(reservation)
    }

    fn held(deal_id: DealId, leg: LegKind) -> EscrowEvent {
        let certificate = Certificate { deal_id, decision: Decision::Commit, signatures: vec![] };
        EscrowEvent::Held {
            reservation: reservation_id(deal_id, leg),
            deal_id,
            leg,
            by: Address::from_bytes([2; 32]),
            beneficiary: Address::from_bytes([2; 32]),
            asset: Asset::Fungible { code: AssetCode::new("USD").unwrap(), amount: 5 },
            token: Token::Certificate(certificate),
        }
    }

    #[test]
    fn a_held_leg_never_lapses_and_is_resolved_with_the_verdict_once_known() {
        let mut keeper = Keeper::new(Some(Address::from_bytes([9; 32])));
        for leg in LegKind::BOTH {
            keeper.observe(&inspected(deal(4), leg));
            keeper.observe(&held(deal(4), leg));
        }
        let awaiting = keeper.awaiting_verdicts();
        assert_eq!(awaiting.len(), 1, "one deal to ask about, for both its legs");
        assert_eq!((awaiting[0].deal_id, awaiting[0].threshold, awaiting[0].notaries.len()), (deal(4), 2, 2));
        assert!(keeper.act(1_000_000).is_empty(), "no cancel past the expiry, and no verdict yet");

        let verdict = Certificate { deal_id: deal(4), decision: Decision::Reverse, signatures: vec![] };
        keeper.learn_verdict(deal(5), verdict.clone());
        assert!(keeper.act(1_000_001).is_empty(), "a verdict for a deal held nowhere here is ignored");
        keeper.learn_verdict(deal(4), verdict.clone());
        assert!(keeper.awaiting_verdicts().is_empty());
        let actions = keeper.act(1_000_002);
        let resolved: Vec<ReservationId> = actions.iter().map(EscrowOp::reservation_id).collect();
        let mut both: Vec<ReservationId> = LegKind::BOTH.iter().map(|leg| reservation_id(deal(4), *leg)).collect();
        both.sort();
        assert_eq!(resolved, both);
        assert!(actions.iter().all(|op| matches!(op, EscrowOp::Resolve { verdict: v, .. } if *v == verdict)));
        assert!(keeper.act(1_000_003).is_empty(), "sent again only after the retry interval");
        assert_eq!(keeper.act(1_000_002 + RETRY_MS).len(), 2);

        // The reverse lands: nothing is left to do for the deal.
        for leg in LegKind::BOTH {
            keeper.observe(&EscrowEvent::Cancelled {
                reservation: reservation_id(deal(4), leg),
                deal_id: deal(4),
                leg,
                by: Address::from_bytes([9; 32]),
                to: Address::from_bytes([1; 32]),
                asset: Asset::Fungible { code: AssetCode::new("USD").unwrap(), amount: 5 },
            });
        }
        assert!(keeper.act(2_000_000).is_empty());
        assert!(keeper.verdicts.is_empty() && keeper.held.is_empty());
    }
}
