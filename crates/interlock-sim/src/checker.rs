//! The invariants of DESIGN.md §3, checked after every simulated step.

use crate::world::{DealInfo, NETWORKS};
use interlock_core::{
    reservation_id, Asset, AssetCode, DealId, Decision, EscrowEvent, LegKind, ReservationId, ReservationState,
    Settlement, Token,
};
use interlock_ledger::{Holder, Ledger, LedgerEvent, MemoryStore, Op};
use std::collections::{BTreeMap, HashMap};

#[derive(Default)]
pub struct Checker {
    /// Each network's issued supply at the start; no deal may change it.
    supply: Vec<BTreeMap<AssetCode, u128>>,
    /// Every reservation's last seen state: it may only move Reserved -> settled.
    seen: HashMap<ReservationId, ReservationState>,
    /// How far the audit of each network's committed events has read.
    cursors: Vec<u64>,
    /// Reservations with a terminal event, and which one.
    settled_by_event: HashMap<ReservationId, &'static str>,
    /// On networks whose spends pay fees: the fee each settled reservation's
    /// spend paid, as read from the block that holds it, by network.
    fees: HashMap<ReservationId, (usize, AssetCode, u128)>,
}

type Ledgers<'a> = [Option<&'a Ledger<MemoryStore>>];

impl Checker {
    pub fn start(&mut self, ledgers: &[&Ledger<MemoryStore>]) {
        self.supply = ledgers
            .iter()
            .map(|l| l.state().assets().map(|c| (c.clone(), l.state().supply(c).unwrap_or(0))).collect())
            .collect();
        self.cursors = ledgers.iter().map(|l| l.tip().height).collect();
    }

    pub fn check(&mut self, ledgers: &Ledgers<'_>, deals: &BTreeMap<DealId, DealInfo>) -> Result<(), String> {
        for (index, ledger) in ledgers.iter().enumerate() {
            let Some(ledger) = ledger else { continue };
            self.audit_events(index, ledger)?;
            self.conservation(index, ledger)?;
        }
        self.monotonic(ledgers, deals)?;
        self.atomicity(ledgers, deals, false)
    }

    /// Conservation: balances plus escrow equal the issued supply, unchanged; each
    /// item has exactly one holder, and an item in escrow is held by an open
    /// reservation of that item. Where spends pay fees, the fees went to the
    /// block producer (the operator's account) and nowhere else: it holds
    /// exactly the fees the blocks' spends paid, so every payee received its
    /// leg less its fee, to the unit.
    fn conservation(&self, index: usize, ledger: &Ledger<MemoryStore>) -> Result<(), String> {
        let state = ledger.state();
        let network = NETWORKS[index];
        if ledger.rules().spends_pay_fees {
            let mut paid: BTreeMap<&AssetCode, u128> = BTreeMap::new();
            for (_, code, fee) in self.fees.values().filter(|(network, _, _)| *network == index) {
                *paid.entry(code).or_default() += fee;
            }
            let producer = interlock_core::Address::from_bytes(ledger.operator().0);
            for code in state.assets() {
                let (held, paid) = (state.balance(&producer, code), paid.get(code).copied().unwrap_or(0));
                if held != paid {
                    return Err(format!(
                        "conservation: {network}'s block producer holds {held} {code}, its blocks' spends paid {paid} in fees"
                    ));
                }
            }
        }
        let mut totals: BTreeMap<&AssetCode, u128> = BTreeMap::new();
        for (_, account) in state.accounts() {
            for (code, amount) in &account.balances {
                *totals.entry(code).or_default() += amount;
            }
        }
        for reservation in state.reservations() {
            // Reserved and held reservations keep their asset in escrow.
            if !matches!(reservation.state, ReservationState::Reserved | ReservationState::Held) {
                continue;
            }
            match &reservation.asset {
                Asset::Fungible { code, amount } => *totals.entry(code).or_default() += amount,
                Asset::Unique { class, item } => {
                    if state.item_holder(class, item) != Some(Holder::Escrow(reservation.id)) {
                        return Err(format!(
                            "conservation: {network} open reservation {} does not hold {class} {item}",
                            reservation.id
                        ));
                    }
                }
            }
        }
        for (code, supply) in &self.supply[index] {
            let now = state.supply(code).unwrap_or(0);
            if now != *supply {
                return Err(format!("conservation: {network} supply of {code} changed from {supply} to {now}"));
            }
            let total = totals.get(code).copied().unwrap_or(0);
            if total != *supply {
                return Err(format!(
                    "conservation: {network} holds {total} {code} in accounts and escrow, issued {supply}"
                ));
            }
        }
        for ((class, item), holder) in state.items() {
            if let Holder::Escrow(id) = holder {
                let open = state.reservation(id).is_some_and(|r| {
                    matches!(r.state, ReservationState::Reserved | ReservationState::Held)
                        && r.asset == Asset::Unique { class: class.clone(), item: *item }
                });
                if !open {
                    return Err(format!(
                        "conservation: {network} {class} {item} is held by settled or missing reservation {id}"
                    ));
                }
            }
        }
        Ok(())
    }

    /// Exactly once and designated party, from the committed events: each
    /// reservation gets one terminal event; an execution was signed by the
    /// beneficiary and paid the beneficiary; a cancellation paid the owner.
    fn audit_events(&mut self, index: usize, ledger: &Ledger<MemoryStore>) -> Result<(), String> {
        let tip = ledger.tip().height;
        let cursor = self.cursors[index];
        if tip <= cursor {
            return Ok(());
        }
        let limit = usize::try_from(tip - cursor).expect("small");
        let events = ledger.events_from(cursor + 1, limit).map_err(|e| e.to_string())?;
        self.cursors[index] = tip;
        for event in events {
            let (id, kind) = match &event.event {
                EscrowEvent::Reserved(_) => continue,
                // Held is not an end: the verdict that follows is.
                EscrowEvent::Held { reservation, by, beneficiary, .. } => {
                    let r = ledger.state().reservation(reservation).ok_or("held reservation missing")?;
                    if (by != &r.beneficiary && Some(*by) != r.keeper) || beneficiary != &r.beneficiary {
                        return Err(format!(
                            "designated party: {reservation} held by {by:?} for {beneficiary:?}, beneficiary {:?}",
                            r.beneficiary
                        ));
                    }
                    continue;
                }
                EscrowEvent::Executed { reservation, by, to, token, .. } => {
                    let r = ledger.state().reservation(reservation).ok_or("executed reservation missing")?;
                    // A script chain takes only the keys a leg names: no keeper.
                    let keeper = r.keeper.filter(|_| !ledger.rules().named_keys_only);
                    // Anyone may present a release verdict; it still pays the beneficiary.
                    let verdict = matches!(token, Token::Certificate(c) if c.decision == Decision::Release);
                    let designated = by == &r.beneficiary || Some(*by) == keeper || verdict;
                    if !designated || to != &r.beneficiary {
                        return Err(format!(
                            "designated party: {} executed by {by:?} paying {to:?}, beneficiary {:?}",
                            reservation, r.beneficiary
                        ));
                    }
                    (*reservation, "executed")
                }
                EscrowEvent::Cancelled { reservation, to, by, .. } => {
                    let r = ledger.state().reservation(reservation).ok_or("cancelled reservation missing")?;
                    if to != &r.owner || (ledger.rules().named_keys_only && by != &r.owner) {
                        return Err(format!(
                            "designated party: {} cancelled paying {to:?}, owner {:?}",
                            reservation, r.owner
                        ));
                    }
                    (*reservation, "cancelled")
                }
            };
            if ledger.rules().spends_pay_fees {
                let fee = spend_fee(ledger, &event)?;
                self.fees.insert(id, (index, fee.0, fee.1));
            }
            if let Some(previous) = self.settled_by_event.insert(id, kind) {
                return Err(format!("exactly once: {id} {kind} after it was already {previous}"));
            }
        }
        Ok(())
    }

    /// Network `index` reorganised down to `ledger`'s new chain: what the
    /// checker saw in the dropped blocks is forgotten, and its view of that
    /// network's reservations restarts from the new chain. Every invariant
    /// holds again from there on; none is relaxed across the new chain.
    pub fn rolled_back(&mut self, index: usize, ledger: &Ledger<MemoryStore>, deals: &BTreeMap<DealId, DealInfo>) {
        self.cursors[index] = self.cursors[index].min(ledger.tip().height);
        for (deal_id, info) in deals {
            for leg in LegKind::BOTH {
                if info.terms.leg(leg).network != NETWORKS[index] {
                    continue;
                }
                let id = reservation_id(*deal_id, leg);
                match ledger.state().reservation(&id).map(|r| r.state) {
                    Some(now) => {
                        self.seen.insert(id, now);
                        if matches!(now, ReservationState::Reserved | ReservationState::Held) {
                            self.settled_by_event.remove(&id);
                            self.fees.remove(&id);
                        }
                    }
                    None => {
                        self.seen.remove(&id);
                        self.settled_by_event.remove(&id);
                        self.fees.remove(&id);
                    }
                }
            }
        }
    }

    fn monotonic(&mut self, ledgers: &Ledgers<'_>, deals: &BTreeMap<DealId, DealInfo>) -> Result<(), String> {
        for (deal_id, info) in deals {
            for leg in LegKind::BOTH {
                let index = NETWORKS.iter().position(|n| *n == info.terms.leg(leg).network).expect("known");
                let Some(ledger) = ledgers[index] else {
                    continue;
                };
                let id = reservation_id(*deal_id, leg);
                let now = ledger.state().reservation(&id).map(|r| r.state);
                let before = self.seen.get(&id).copied();
                match (before, now) {
                    (Some(before), None) => return Err(format!("durability: reservation {id} ({before:?}) vanished")),
                    // Reserved moves once; held moves once more, to its verdict.
                    (Some(ReservationState::Held), Some(ReservationState::Reserved))
                    | (Some(ReservationState::Executed | ReservationState::Cancelled), Some(_))
                        if before != now =>
                    {
                        return Err(format!("exactly once: reservation {id} went from {before:?} to {now:?}"))
                    }
                    (_, Some(now)) => {
                        self.seen.insert(id, now);
                    }
                    (None, None) => {}
                }
            }
        }
        Ok(())
    }

    /// Atomicity: never one leg executed and the other cancelled. At the end
    /// (`final_check`) also no leg still open and never one leg executed alone.
    fn atomicity(
        &self,
        _ledgers: &Ledgers<'_>,
        deals: &BTreeMap<DealId, DealInfo>,
        final_check: bool,
    ) -> Result<(), String> {
        for (deal_id, info) in deals {
            let state = |leg| self.seen.get(&reservation_id(*deal_id, leg)).copied();
            let (payment, delivery) = (state(LegKind::Payment), state(LegKind::Delivery));
            let hashlock = matches!(info.terms.settlement, Settlement::Hashlock { .. });
            let exempt = (hashlock && (info.seller_absent || info.fee_cap_exceeded)) || info.reorg_lost;
            use ReservationState::*;
            let executed = [payment, delivery].iter().filter(|s| **s == Some(Executed)).count();
            let broken = match (payment, delivery) {
                (Some(Executed), Some(Cancelled)) | (Some(Cancelled), Some(Executed)) => true,
                _ if final_check => executed == 1,
                _ => false,
            };
            if broken && !exempt {
                return Err(format!(
                    "atomicity: {deal_id:?} ({}) ended with payment {payment:?}, delivery {delivery:?}",
                    info.terms.mode()
                ));
            }
            let open = |state| matches!(state, Some(Reserved | Held));
            if final_check && (open(payment) || open(delivery)) {
                return Err(format!("liveness: {deal_id:?} still has an open reservation after every deadline (payment {payment:?}, delivery {delivery:?})"));
            }
        }
        Ok(())
    }

    /// What the spends the checker read paid in fees, in all.
    pub fn fees_paid(&self) -> u128 {
        self.fees.values().map(|(_, _, fee)| fee).sum()
    }

    /// The last state the checker saw for a reservation.
    pub fn state_of(&self, id: ReservationId) -> Option<ReservationState> {
        self.seen.get(&id).copied()
    }

    pub fn finish(&self, deals: &BTreeMap<DealId, DealInfo>) -> Result<(), String> {
        self.atomicity(&[], deals, true)
    }
}

/// The fee the spend behind `event` paid, read from its block: at least 1,
/// less than the leg, in the leg's asset.
fn spend_fee(ledger: &Ledger<MemoryStore>, event: &LedgerEvent) -> Result<(AssetCode, u128), String> {
    let block = ledger.block(event.height).map_err(|e| e.to_string())?.ok_or("a block with events is missing")?;
    let tx =
        block.transactions.iter().find(|tx| tx.id() == event.transaction).ok_or("an event's transaction is missing")?;
    let (EscrowEvent::Executed { reservation, asset, .. } | EscrowEvent::Cancelled { reservation, asset, .. }) =
        &event.event
    else {
        unreachable!("only spends are audited for fees");
    };
    let (Op::Spend { fee, .. }, Asset::Fungible { code, amount }) = (&tx.op, asset) else {
        return Err(format!("fees: {reservation} was spent paying no fee, on a network whose spends pay one"));
    };
    if *fee == 0 || fee >= amount {
        return Err(format!("fees: {reservation} paid {fee} out of a leg of {amount}"));
    }
    Ok((code.clone(), *fee))
}
