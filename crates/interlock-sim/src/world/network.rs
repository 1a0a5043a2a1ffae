//! The lossy network between participants: messages are lost, duplicated and
//! delayed at the seed's rates, and delivered to a participant only while it is up.

use super::World;
use interlock_core::crypto::Vote;
use interlock_core::notary::SignedDeal;
use interlock_core::verdict::Dispute;
use interlock_ledger::Transaction;
use std::sync::Arc;

// Most messages in flight are transactions; boxing them would not save memory.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug)]
pub(super) enum Payload {
    Transaction(Transaction),
    SignedDeal(Arc<SignedDeal>),
    Vote(Vote),
    Dispute(Arc<Dispute>),
}

#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub(super) enum Node {
    Ledger(usize),
    Party(usize),
    Notary(usize),
}

pub(super) struct Message {
    pub(super) deliver_at_ms: u64,
    pub(super) to: Node,
    pub(super) payload: Payload,
}

impl World {
    pub(super) fn send(&mut self, to: Node, payload: Payload) {
        if self.rng.chance(self.faults.loss_per_mille) {
            return;
        }
        let copies = if self.rng.chance(self.faults.duplicate_per_mille) { 2 } else { 1 };
        for _ in 0..copies {
            let deliver_at_ms = self.now_ms + self.rng.range(1, self.faults.delay_max_ms);
            self.network.push(Message { deliver_at_ms, to, payload: payload.clone() });
        }
    }

    pub(super) fn deliver(&mut self) {
        let now_ms = self.now_ms;
        let (due, later): (Vec<Message>, Vec<Message>) =
            std::mem::take(&mut self.network).into_iter().partition(|m| m.deliver_at_ms <= now_ms);
        self.network = later;
        for message in due {
            match (message.to, message.payload) {
                (Node::Ledger(index), Payload::Transaction(tx)) => {
                    if self.ledgers[index].ledger.is_some() {
                        self.ledgers[index].inbox.push(tx);
                    }
                }
                (Node::Party(index), Payload::Vote(vote)) => {
                    if self.parties[index].online {
                        self.parties[index].inbox.push(vote);
                    }
                }
                (Node::Notary(index), Payload::SignedDeal(deal)) => {
                    if self.notaries[index].online {
                        self.notaries[index].inbox.push(deal);
                    }
                }
                (Node::Notary(index), Payload::Dispute(dispute)) => {
                    if self.notaries[index].online {
                        self.notaries[index].inspections.inbox.push(dispute);
                    }
                }
                (to, payload) => unreachable!("no route for {payload:?} to {to:?}"),
            }
        }
    }
}
