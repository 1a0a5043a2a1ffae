//! Reorganisations of the deep-chain network: its newest blocks are replaced
//! by others, and the transactions they held go back to the mempool, to be
//! mined again later (when they still apply) in the order they were sent.
//!
//! Most are shallower than the network's confirmation depth: parties and
//! notaries act only on confirmed blocks, so such a reorganisation must never
//! change what any of them did, and every invariant must hold across it.
//!
//! Some seeds also draw reorganisations deeper than the depth, which take away
//! blocks that parties and notaries already acted on. The roles then do what
//! they do on their gateway's `RolledBack`: an undecided notary stops counting
//! the legs it saw there until the new chain shows them again; each party's
//! sagas with a leg on that network read the leg again and go back to where
//! the chain now stands (running again if they had ended), and their cursors
//! go back to the new chain. What the dropped blocks did is followed until the new
//! chain does it again; a deal whose dropped transaction the new chain did not
//! do again before its deadline is marked `reorg_lost`: no participant can
//! undo what it did on the strength of a block that vanished, and DESIGN.md
//! owes atomicity only where the chain keeps what it confirmed. Every other
//! invariant holds for it, and every invariant for every other deal.

use super::ledgers::Dropped;
use super::{World, NETWORKS};
use interlock_core::saga::Saga;
use interlock_core::{reservation_id, DealId, EscrowEvent, LegKind, ReservationState};
use interlock_ledger::{Ledger, MemoryStore, Transaction};

/// One seed in this many per mille draws reorganisations (when its second
/// network has a confirmation depth above 1).
pub(super) const REORG_SEEDS_PER_MILLE: u64 = 500;
/// Of the seeds with reorganisations, one in this many per mille also has
/// reorganisations deeper than the depth.
pub(super) const DEEP_REORG_SEEDS_PER_MILLE: u64 = 500;
/// In such a seed, one reorganisation in this many per mille is deep.
const DEEP_REORGS_PER_MILLE: u64 = 300;
/// How many blocks past the depth a deep reorganisation reaches, at most.
const DEEP_REORG_EXTRA_BLOCKS: u64 = 30;
/// Most blocks one replay reads back, so a long run stays bounded.
const REPLAY_BLOCKS_MAX: u64 = 1_000_000;

impl World {
    /// Per step, with the seed's rate, drops a random number of the deep-chain
    /// network's newest blocks: fewer than its confirmation depth and never a
    /// block that was ever confirmed (two shallow reorganisations in a row
    /// must not add up to a deep one), or, when the seed allows it, sometimes
    /// up to a few blocks past the depth.
    pub(super) fn maybe_reorganise(&mut self) {
        let Some(deep) = self.deep_chain.as_mut() else { return };
        if deep.reorg_per_mille == 0 || deep.depth < 2 || !deep.rng.chance(deep.reorg_per_mille) {
            return;
        }
        let index = deep.index;
        let Some(ledger) = self.ledgers[index].ledger.as_ref() else { return };
        let tip = ledger.tip().height;
        let most = if deep.deep_reorgs && deep.rng.chance(DEEP_REORGS_PER_MILLE) {
            tip.saturating_sub(deep.floor).min(deep.depth + DEEP_REORG_EXTRA_BLOCKS)
        } else {
            // `cursor` is the highest block confirmed on this chain; the set-up
            // blocks above it (accounts and funds) are never taken either.
            tip.saturating_sub(deep.cursor.max(deep.floor)).min(deep.depth - 1)
        };
        if most == 0 {
            return;
        }
        let blocks = deep.rng.range(1, most);
        deep.reorganisations += 1;
        self.reorganise(index, blocks);
    }

    /// Replaces the newest `blocks` blocks of ledger `index`: the chain is
    /// rebuilt from its genesis up to the block below them, and their
    /// transactions return to the mempool. Confirmed blocks among them are
    /// a deep reorganisation: see [`World::after_deep_reorganisation`].
    pub(super) fn reorganise(&mut self, index: usize, blocks: u64) {
        let Some(ledger) = self.ledgers[index].ledger.take() else { return };
        let genesis = self.ledgers[index].genesis.clone();
        let keep = ledger.tip().height.saturating_sub(blocks);
        let deep = self.deep_chain.as_mut().filter(|deep| deep.index == index && keep < deep.cursor);
        let past_depth = deep.is_some();
        if let Some(deep) = deep {
            deep.deep_reorganisations += 1;
            let limit = usize::try_from(deep.cursor - keep).expect("small");
            for event in ledger.events_from(keep + 1, limit).expect("memory store reads") {
                let (reservation, state) = match &event.event {
                    EscrowEvent::Reserved(reservation) => (reservation.id, ReservationState::Reserved),
                    EscrowEvent::Executed { reservation, .. } => (*reservation, ReservationState::Executed),
                    EscrowEvent::Held { reservation, .. } => (*reservation, ReservationState::Held),
                    EscrowEvent::Cancelled { reservation, .. } => (*reservation, ReservationState::Cancelled),
                };
                let deal_id = event.event.deal_id();
                let expiry = ledger.state().reservation(&reservation).map(|r| r.expiry_ms);
                let deadline_ms = expiry.filter(|_| state != ReservationState::Cancelled);
                deep.dropped.insert(event.transaction, Dropped { deal_id, reservation, state, deadline_ms });
                deep.events_taken += 1;
            }
        }
        let (rebuilt, mut returned) = rebuild(&ledger, genesis, keep, index);
        self.note(|| format!("reorganise network {index}: {blocks} newest blocks dropped, back to {keep}"));
        self.checker.rolled_back(index, &rebuilt, &self.deals);
        let node = &mut self.ledgers[index];
        // The dropped transactions come first, as a node re-adds them on a reorganisation.
        returned.append(&mut node.inbox);
        node.inbox = returned;
        node.committed_digest = rebuilt.state().digest();
        node.ledger = Some(rebuilt);
        if past_depth {
            self.after_deep_reorganisation(index, keep);
        }
    }

    /// What the roles do when their follower reports `RolledBack { to: keep }`:
    /// the confirmed view restarts from the new chain, each party's cursor
    /// goes back to it, and each saga with a leg there reads the leg again.
    fn after_deep_reorganisation(&mut self, index: usize, keep: u64) {
        let network = NETWORKS[index];
        let ledger = self.ledgers[index].ledger.as_ref().expect("just rebuilt");
        let on_chain: Vec<(DealId, LegKind, Option<ReservationState>)> = self
            .deals
            .iter()
            .flat_map(|(deal_id, info)| {
                LegKind::BOTH.into_iter().filter(|leg| info.terms.leg(*leg).network == network).map(|leg| {
                    let state = ledger.state().reservation(&reservation_id(*deal_id, leg)).map(|r| r.state);
                    (*deal_id, leg, state)
                })
            })
            .collect();
        let mut confirmed = std::collections::HashMap::new();
        let limit = usize::try_from(keep).expect("small");
        for event in ledger.events_from(1, limit).expect("memory store reads") {
            if let EscrowEvent::Reserved(reservation) = event.event {
                confirmed.insert(reservation.id, reservation);
            }
        }
        let deep = self.deep_chain.as_mut().expect("a deep-chain network");
        deep.cursor = keep;
        deep.confirmed_reservations = confirmed;
        let dropped = deep.dropped.len();
        self.note(|| {
            format!("deep reorganisation of network {index}: {dropped} escrow events to redo; the roles go back to block {keep}")
        });
        // A notary's undecided deals count no leg there until they see it on
        // the new chain again (their next poll re-reads what is confirmed).
        for notary in &mut self.notaries {
            for (deal_id, leg, _) in &on_chain {
                if let Some(deal) = notary.deals.get_mut(deal_id) {
                    deal.rolled_back(*leg);
                }
            }
        }
        for party in &mut self.parties {
            if let Some(cursor) = party.disk.cursors.get_mut(&network) {
                *cursor = (*cursor).min(keep);
            }
            for (deal_id, leg, state) in &on_chain {
                // The record on disk, and the saga in memory when the party runs.
                if let Some(record) = party.disk.sagas.get_mut(deal_id) {
                    let mut saga = Saga::decode_record(record).expect("records decode");
                    if saga.rolled_back(*leg, *state) {
                        *record = saga.encode_record();
                    }
                }
                if let Some((saga, wake_at)) = party.sagas.get_mut(deal_id) {
                    if saga.rolled_back(*leg, *state) {
                        *wake_at = Some(0);
                    }
                }
            }
        }
    }

    /// Follows what dropped confirmed blocks had done, against the deep
    /// chain now: done again (or the reservation taken further) is
    /// recovered; still not done once the chain's time reached its deadline
    /// (refused as expired, or lost from a crashed node's mempool) is lost,
    /// and so is its deal.
    pub(super) fn follow_dropped(&mut self) {
        let Some(deep) = self.deep_chain.as_mut() else { return };
        let Some(ledger) = self.ledgers[deep.index].ledger.as_ref() else { return };
        let chain_ms = ledger.tip().timestamp_ms;
        let mut lost = Vec::new();
        deep.dropped.retain(|_, dropped| {
            let now = ledger.state().reservation(&dropped.reservation).map(|r| r.state);
            use ReservationState::*;
            let redone = matches!(
                (dropped.state, now),
                (Reserved, Some(_)) | (Executed, Some(Executed)) | (Cancelled, Some(Cancelled))
            );
            if !redone && dropped.deadline_ms.is_some_and(|deadline| chain_ms >= deadline) {
                lost.push(dropped.deal_id);
                return false;
            }
            !redone
        });
        for deal_id in lost {
            self.note(|| format!("{deal_id:?}: a deep reorganisation took away what the new chain can no longer do"));
            if let Some(info) = self.deals.get_mut(&deal_id) {
                info.reorg_lost = true;
            }
        }
    }
}

/// `ledger`'s chain up to block `keep`, replayed from `genesis` (each block
/// must come out the same), and the transactions of the blocks above it.
fn rebuild(
    ledger: &Ledger<MemoryStore>,
    genesis: interlock_ledger::Genesis,
    keep: u64,
    index: usize,
) -> (Ledger<MemoryStore>, Vec<Transaction>) {
    let tip = ledger.tip().height;
    assert!(tip <= REPLAY_BLOCKS_MAX, "a simulated chain stays short");
    let mut rebuilt = Ledger::open(MemoryStore::new(), genesis).expect("a new store opens").with_rules(ledger.rules());
    let mut returned = Vec::new();
    for height in 1..=tip {
        let block = ledger.block(height).expect("memory store reads").expect("every height up to the tip");
        if height > keep {
            returned.extend(block.transactions);
            continue;
        }
        let timestamp_ms = block.header.timestamp_ms;
        let empty = block.transactions.is_empty();
        for tx in block.transactions {
            rebuilt.submit(tx).expect("a committed transaction is admitted again");
        }
        let replayed = if empty {
            rebuilt.produce_heartbeat(timestamp_ms)
        } else {
            rebuilt.produce_block(timestamp_ms).map(|outcome| outcome.expect("transactions to seal"))
        };
        let header = replayed.expect("a replayed block seals").header;
        assert_eq!(header, block.header, "replaying block {height} of network {index} gives the same block");
    }
    (rebuilt, returned)
}
