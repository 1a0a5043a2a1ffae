//! The buyer and the seller: each follows both networks from its persisted
//! cursors, steps its sagas, persists them before acting, and submits.

use super::network::{Node, Payload};
use super::{local, World, NETWORKS};
use interlock_core::crypto::{PartyKey, Vote};
use interlock_core::saga::{Saga, SagaOutput};
use interlock_core::{DealId, EscrowOp, NetworkId};
use interlock_ledger::{Op, Transaction};
use std::collections::{BTreeMap, HashMap};

/// Blocks a participant reads per poll.
const EVENT_BLOCKS_PER_POLL: usize = 8;

/// What each participant keeps on its disk: survives its crashes.
#[derive(Default)]
pub(super) struct PartyDisk {
    pub(super) sagas: BTreeMap<DealId, Vec<u8>>,
    pub(super) nonces: HashMap<NetworkId, u64>,
    pub(super) cursors: HashMap<NetworkId, u64>,
}

pub(super) struct PartyNode {
    pub(super) key: PartyKey,
    pub(super) skew_ms: i64,
    pub(super) online: bool,
    pub(super) down_until_ms: u64,
    pub(super) sagas: BTreeMap<DealId, (Saga, Option<u64>)>,
    pub(super) disk: PartyDisk,
    pub(super) inbox: Vec<Vote>,
}

impl World {
    pub(super) fn run_party(&mut self, index: usize) {
        if !self.parties[index].online {
            return;
        }
        let now_ms = local(self.now_ms, self.parties[index].skew_ms);
        // Follow both networks from the persisted cursors.
        let mut events = Vec::new();
        let mut cursors = Vec::new();
        for network in NETWORKS {
            if !self.rng.chance(700) {
                continue;
            }
            let Some(ledger) = self.ledgers[Self::ledger_index(network)].ledger.as_ref() else {
                continue;
            };
            let cursor = self.parties[index].disk.cursors.get(&network).copied().unwrap_or(0);
            let tip = self.confirmed_height(Self::ledger_index(network), ledger);
            if tip <= cursor {
                continue;
            }
            let to = tip.min(cursor + EVENT_BLOCKS_PER_POLL as u64);
            let limit = usize::try_from(to - cursor).expect("small");
            events.extend(ledger.events_from(cursor + 1, limit).expect("memory store reads"));
            let time_ms =
                ledger.block(to).expect("memory store reads").expect("block below the tip").header.timestamp_ms;
            cursors.push((network, to, time_ms));
        }
        let votes = std::mem::take(&mut self.parties[index].inbox);
        let chain_times: Vec<(NetworkId, u64)> =
            cursors.iter().map(|(network, _, time_ms)| (*network, *time_ms)).collect();
        let deal_ids: Vec<DealId> = self.parties[index].sagas.keys().copied().collect();
        for deal_id in deal_ids {
            let node = &mut self.parties[index];
            let (saga, wake_at) = node.sagas.get_mut(&deal_id).expect("listed");
            let deal_events: Vec<_> =
                events.iter().filter(|e| e.event.deal_id() == deal_id).map(|e| &e.event).collect();
            let deal_votes: Vec<&Vote> = votes.iter().filter(|v| v.deal_id == deal_id).collect();
            let news = !deal_events.is_empty() || !chain_times.is_empty() || !deal_votes.is_empty();
            if !news && !wake_at.is_some_and(|at| now_ms >= at) {
                continue;
            }
            let step = saga.take_news(now_ms, deal_events, &chain_times, deal_votes);
            let outputs = step.outputs;
            *wake_at = step.wake_at_ms;
            // Persist before acting on it.
            let record = saga.encode_record();
            node.disk.sagas.insert(deal_id, record);
            if !outputs.is_empty() && self.rng.chance(self.faults.crash_per_mille * 5) {
                let down_ms = self.rng.range(50, 800);
                self.crash_party(index, down_ms);
                return;
            }
            self.party_outputs(index, deal_id, outputs);
        }
        // Every saga saw these events: only now move the persisted cursors on.
        self.parties[index].disk.cursors.extend(cursors.into_iter().map(|(network, to, _)| (network, to)));
    }

    fn party_outputs(&mut self, index: usize, deal_id: DealId, outputs: Vec<SagaOutput>) {
        for output in outputs {
            self.note(|| {
                format!(
                    "party {index} {deal_id:?}: {}",
                    match &output {
                        SagaOutput::Submit { network, op } => format!(
                            "submit on {network}: {}",
                            match op {
                                EscrowOp::Reserve(r) => format!("reserve {}", r.leg),
                                EscrowOp::Execute { .. } => "execute".into(),
                                EscrowOp::Cancel { .. } => "cancel".into(),
                                EscrowOp::Resolve { verdict, .. } => verdict.decision.to_string(),
                            }
                        ),
                        other => format!("{other:?}"),
                    }
                )
            });
            match output {
                SagaOutput::Submit { network, op }
                    if self.script_chain.is_some_and(|script| NETWORKS[script.index] == network)
                        && super::fees::is_spend(&op) =>
                {
                    self.send_spend(index, network, op);
                }
                SagaOutput::Submit { network, op } => {
                    let node = &mut self.parties[index];
                    let nonce = node.disk.nonces.entry(network).or_insert(0);
                    *nonce += 1;
                    let tx = Transaction::sign(&node.key, network, *nonce, Op::Escrow(op));
                    self.send(Node::Ledger(Self::ledger_index(network)), Payload::Transaction(tx));
                }
                SagaOutput::AskNotaries => {
                    let signed = self.deals[&deal_id].signed.clone();
                    for notary in 0..self.notaries.len() {
                        self.send(Node::Notary(notary), Payload::SignedDeal(signed.clone()));
                    }
                }
                SagaOutput::Finished(outcome) => {
                    self.outcomes.insert((deal_id, index), outcome);
                }
            }
        }
    }
}
