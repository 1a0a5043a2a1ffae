//! A hashlock claim's race against its leg's expiry on the script chain, and
//! the one assumption about fees the system states:
//!
//! *A party's fee cap is enough to get its spend mined before the deadline
//! that spend races.* A beneficiary's claim of a hashlock leg (the seller's
//! claim of the payment, or the buyer's claim of the delivery, which reveals
//! the secret) races the leg's expiry: past it the owner may take the leg
//! back, and the saga no longer sends the claim.
//!
//! The simulator holds the parties to everything else: a claim the market
//! merely delayed must still be mined in time. It excuses a deal from
//! atomicity only where the assumption demonstrably failed for one of its
//! claims: at every block the node made from when the claim was first sent
//! until the leg's expiry, the market asked more than the most its sender may
//! pay per vbyte for it (its cap, or what the leg can pay for the claim alone,
//! leaving its payee more than dust), so that no spend of the leg the sender
//! may sign could have entered any of them. A claim sent so late that no
//! block came before the expiry is not excused: nothing priced it out.

use super::fees::{fee_most, CLAIM_VBYTES};
use super::DealInfo;
use interlock_core::{
    Address, Asset, Condition, DealId, EscrowOp, LegKind, Reservation, ReservationId, ReservationState,
};
use interlock_ledger::{Ledger, MemoryStore, State};
use std::collections::BTreeMap;

/// One claim's race, from its first sending until its leg's expiry.
#[derive(Clone, Debug)]
pub struct ClaimRace {
    pub deal_id: DealId,
    pub leg: LegKind,
    pub expiry_ms: u64,
    /// The most the sender may pay per vbyte for the claim: its cap, or
    /// what the leg can pay for the claim alone and keep more than dust.
    pub most_rate: u64,
    /// Blocks made before the expiry whose market asked more than that.
    pub blocks_priced_out: u64,
    /// Blocks made before the expiry whose market asked no more than that:
    /// the claim could have entered any of them within its cap.
    pub blocks_within_cap: u64,
    /// Set once a block came at or past the expiry, or the leg settled.
    pub closed: bool,
}

impl ClaimRace {
    /// The race `op`, sent by `sender`, starts: when it is the
    /// beneficiary's claim of the hashlock leg `reservation`.
    pub(super) fn of(reservation: &Reservation, op: &EscrowOp, sender: Address, cap_rate: u64) -> Option<ClaimRace> {
        let (Condition::Hashlock(_), Asset::Fungible { amount, .. }) = (&reservation.condition, &reservation.asset)
        else {
            return None;
        };
        let claim = matches!(op, EscrowOp::Execute { .. }) && reservation.beneficiary == sender;
        claim.then(|| ClaimRace::new(reservation.deal_id, reservation.leg, reservation.expiry_ms, *amount, cap_rate))
    }

    /// A race for a claim of a leg of `amount` expiring at `expiry_ms`, by
    /// a sender whose cap is `cap_rate`.
    pub(super) fn new(deal_id: DealId, leg: LegKind, expiry_ms: u64, amount: u128, cap_rate: u64) -> ClaimRace {
        let leg_rate = u64::try_from(fee_most(amount) / u128::from(CLAIM_VBYTES)).unwrap_or(u64::MAX);
        ClaimRace {
            deal_id,
            leg,
            expiry_ms,
            most_rate: cap_rate.min(leg_rate),
            blocks_priced_out: 0,
            blocks_within_cap: 0,
            closed: false,
        }
    }

    /// The node makes a block at `block_ms` whose market asks `market`, the
    /// leg still open before it (`open`).
    pub(super) fn block(&mut self, block_ms: u64, market: u64, open: bool) {
        if self.closed {
            return;
        }
        if !open || block_ms >= self.expiry_ms {
            self.closed = true;
            return;
        }
        if market > self.most_rate {
            self.blocks_priced_out += 1;
        } else {
            self.blocks_within_cap += 1;
        }
    }

    /// Whether the stated assumption failed for this claim: the race is
    /// over and every block in it priced the claim out by its cap.
    pub fn cap_exceeded(&self) -> bool {
        self.closed && self.blocks_priced_out > 0 && self.blocks_within_cap == 0
    }
}

/// Most blocks back a sender looks to measure the chain's pace.
const PACE_BLOCKS_MAX: u64 = 8;

/// Whether a claim of a leg expiring at `expiry_ms` is near its deadline on
/// `ledger`, as a careful sender judges it: at the chain's recent pace the
/// expiry comes before the sender could raise the claim once more (after
/// `replace_after_blocks`, when its saga sends it again) and see it mined in
/// the next block. Such a claim, once it waits, is raised straight to the
/// most its sender may pay: a raise by a quarter would come too late.
pub(super) fn near_deadline(ledger: &Ledger<MemoryStore>, expiry_ms: u64, replace_after_blocks: u64) -> bool {
    let tip = ledger.tip();
    let back = tip.height.saturating_sub(PACE_BLOCKS_MAX).max(1);
    let then_ms = ledger.block(back).ok().flatten().map_or(tip.timestamp_ms, |block| block.header.timestamp_ms);
    let pace_ms = tip.timestamp_ms.saturating_sub(then_ms) / tip.height.saturating_sub(back).max(1);
    let raise_ms = pace_ms * (replace_after_blocks + 1) + interlock_core::limits::RESUBMIT_AFTER_MS;
    tip.timestamp_ms.saturating_add(raise_ms) >= expiry_ms
}

/// The claims' races on the script chain, by leg.
pub(super) type ClaimRaces = BTreeMap<ReservationId, ClaimRace>;

/// The script chain's node makes a block at `block_ms` whose market asks
/// `market`, over `state`: every race still on counts it, and a deal whose
/// claim a finished race shows priced out by its cap is marked.
pub(super) fn observe(
    races: &mut ClaimRaces,
    deals: &mut BTreeMap<DealId, DealInfo>,
    state: &State,
    block_ms: u64,
    market: u64,
    trace: bool,
) {
    for (id, race) in races.iter_mut().filter(|(_, race)| !race.closed) {
        let open = state.reservation(id).is_some_and(|r| r.state == ReservationState::Reserved);
        race.block(block_ms, market, open);
        let Some(info) = deals.get_mut(&race.deal_id).filter(|_| race.cap_exceeded()) else { continue };
        info.fee_cap_exceeded = true;
        if trace {
            eprintln!(
                "  {:?}: its {:?} claim was priced out by its cap ({} per vbyte) at all {} blocks before the expiry",
                race.deal_id, race.leg, race.most_rate, race.blocks_priced_out
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use interlock_core::Hash32;

    fn race(expiry_ms: u64) -> ClaimRace {
        ClaimRace::new(DealId(Hash32::ZERO), LegKind::Payment, expiry_ms, 100_000, 50)
    }

    #[test]
    fn only_a_claim_priced_out_by_its_cap_at_every_block_before_the_expiry_is_excused() {
        // Market above the cap at every block until the expiry: excused.
        let mut out = race(1_000);
        for at in [100, 400, 900, 1_000] {
            out.block(at, 60, true);
        }
        assert_eq!((out.blocks_priced_out, out.cap_exceeded()), (3, true));
        // One block within the cap before the expiry: the claim could have
        // been mined there, so the deal is owed atomicity.
        let mut delayed = race(1_000);
        for (at, market) in [(100, 60), (400, 50), (900, 60), (1_000, 60)] {
            delayed.block(at, market, true);
        }
        assert!(!delayed.cap_exceeded());
        // No block before the expiry: sent too late, not priced out.
        let mut late = race(1_000);
        late.block(1_200, 60, true);
        assert!(late.closed && !late.cap_exceeded());
        // Not over yet: no verdict.
        let mut on = race(1_000);
        on.block(100, 60, true);
        assert!(!on.cap_exceeded());
        on.block(200, 60, false);
        assert!(on.cap_exceeded(), "the race ends when the leg settles");
    }

    #[test]
    fn the_most_a_sender_pays_is_its_cap_or_what_the_leg_can_pay() {
        assert_eq!(race(0).most_rate, 50);
        let poor = ClaimRace::new(DealId(Hash32::ZERO), LegKind::Delivery, 0, 2_000, 50);
        assert_eq!(poor.most_rate, (2_000 - 331) / CLAIM_VBYTES);
    }
}
