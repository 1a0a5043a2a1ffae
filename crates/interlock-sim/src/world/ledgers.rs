//! The ledger sequencers, each with the keeper that runs in its process, and
//! the deep-chain semantics a seed may give the second network.

use super::{address, local, World, T0_MS};
use interlock_core::crypto::{Decision, Token};
use interlock_core::{EscrowOp, ReservationState, Rules};
use interlock_ledger::{Genesis, Ledger, MemoryStore, Op, Transaction};
use std::collections::HashMap;

/// An idle ledger still produces a block this often, so its time is seen to pass.
const HEARTBEAT_MS: u64 = 200;
/// One seed in this many per mille runs its second network with deep-chain semantics.
pub(super) const DEEP_CHAIN_PER_MILLE: u64 = 500;
/// One seed in this many per mille runs its second network as a script chain.
pub(super) const SCRIPT_CHAIN_PER_MILLE: u64 = 300;

/// Script-chain semantics (a UTXO chain such as Litecoin, where a leg is an
/// output locked to a script): the ledger holds [`Rules::script`] — only the
/// keys a leg names spend it, so no keeper acts there; a beneficiary's claim
/// with the secret is taken after the expiry while the leg is still open;
/// lapsed legs are judged by a median time past `lag_ms` behind the clock,
/// while parties see the blocks' own times, so a refund they send once a
/// block passes the expiry is refused until the median catches up and is
/// sent again. Deals give this network
/// fungible legs with no keeper, and hashlock margins `lag_ms` longer, as the
/// deal check asks of such a chain.
#[derive(Clone, Copy, Debug)]
pub struct ScriptSemantics {
    pub index: usize,
    pub lag_ms: u64,
    /// Claims an adversarial beneficiary sent after the expiry.
    pub late_claims_sent: u64,
}

impl ScriptSemantics {
    /// What ledger `index` holds of the escrow rules when `script` is the
    /// seed's script chain, if it has one.
    pub(super) fn rules_for(script: Option<&ScriptSemantics>, index: usize) -> Rules {
        match script {
            Some(script) if script.index == index => Rules::script(script.lag_ms),
            _ => Rules::ACCOUNTS,
        }
    }
}

/// Deep-chain semantics: a network whose blocks carry whole-second timestamps
/// (an escrow contract's clock is the block's timestamp in seconds, times
/// 1000), and whose events parties and notaries learn of only once `depth`
/// blocks stand on them, as a follower waiting for a confirmation depth does.
#[derive(Clone, Debug)]
pub struct DepthSemantics {
    pub index: usize,
    pub depth: u64,
    /// Every reservation in a confirmed block, as the notaries may see it.
    pub(super) confirmed_reservations: HashMap<interlock_core::ReservationId, interlock_core::Reservation>,
    pub(super) cursor: u64,
    /// Per step, the chance (per mille) that the network reorganises.
    pub reorg_per_mille: u64,
    /// The reorganisations' own draws, so that a seed without them runs as before.
    pub(super) rng: crate::rng::Rng,
    /// How many reorganisations the seed went through.
    pub reorganisations: u64,
    /// Whether this seed's reorganisations may reach deeper than the depth,
    /// taking away blocks that parties and notaries already acted on.
    pub deep_reorgs: bool,
    /// How many of its reorganisations did.
    pub deep_reorganisations: u64,
    /// How many confirmed escrow events they took away.
    pub events_taken: u64,
    /// The chain's height when the world was set up (accounts registered and
    /// funded): no reorganisation reaches below it.
    pub(super) floor: u64,
    /// What the confirmed blocks a deep reorganisation dropped had done to
    /// reservations, by the transaction that did it: each waits until the
    /// new chain does the same, or settles the reservation otherwise.
    pub(super) dropped: HashMap<interlock_ledger::TxId, Dropped>,
}

/// One thing a dropped confirmed block had done to a reservation.
#[derive(Clone, Debug)]
pub(super) struct Dropped {
    pub(super) deal_id: interlock_core::DealId,
    pub(super) reservation: interlock_core::ReservationId,
    pub(super) state: ReservationState,
    /// The reservation's expiry, past which the new chain can no longer make
    /// or execute it (none for a cancellation, which stays possible).
    pub(super) deadline_ms: Option<u64>,
}

pub(super) struct LedgerNode {
    pub(super) genesis: Genesis,
    pub(super) skew_ms: i64,
    pub(super) ledger: Option<Ledger<MemoryStore>>,
    pub(super) disk: Option<MemoryStore>,
    pub(super) down_until_ms: u64,
    pub(super) inbox: Vec<Transaction>,
    pub(super) committed_digest: interlock_core::Hash32,
    pub(super) keeper_sent: HashMap<interlock_core::ReservationId, u64>,
    /// On the script chain, the node's pool of spends waiting for the fee
    /// market (lost with the node, like its mempool).
    pub(super) pool: super::fees::Pool,
}

impl World {
    /// What ledger `index` holds of the escrow rules.
    pub(super) fn rules_of(&self, index: usize) -> Rules {
        ScriptSemantics::rules_for(self.script_chain.as_ref(), index)
    }

    /// The highest block of ledger `index` that participants may read: the tip,
    /// or on a deep-chain network the block `depth - 1` below it.
    pub(super) fn confirmed_height(&self, index: usize, ledger: &Ledger<MemoryStore>) -> u64 {
        match &self.deep_chain {
            Some(deep) if deep.index == index => ledger.tip().height.saturating_sub(deep.depth - 1),
            _ => ledger.tip().height,
        }
    }

    /// Collects the reservations of newly confirmed deep-chain blocks.
    pub(super) fn confirm_deep_blocks(&mut self) {
        let Some(deep) = &self.deep_chain else { return };
        let Some(ledger) = self.ledgers[deep.index].ledger.as_ref() else { return };
        let confirmed = self.confirmed_height(deep.index, ledger);
        let deep = self.deep_chain.as_mut().expect("checked above");
        if confirmed <= deep.cursor {
            return;
        }
        let limit = usize::try_from(confirmed - deep.cursor).expect("small");
        for event in ledger.events_from(deep.cursor + 1, limit).expect("memory store reads") {
            if let interlock_core::EscrowEvent::Reserved(reservation) = event.event {
                deep.confirmed_reservations.insert(reservation.id, reservation);
            }
        }
        deep.cursor = confirmed;
    }

    pub(super) fn run_ledger(&mut self, index: usize) -> Result<(), String> {
        let now_ms = local(self.now_ms, self.ledgers[index].skew_ms);
        let produce = self.rng.chance(400);
        if self.ledgers[index].ledger.is_none() {
            return Ok(());
        }
        self.take_inbox(index);
        if produce {
            self.release_spends(index);
        }
        let node = &mut self.ledgers[index];
        let ledger = node.ledger.as_mut().expect("checked above");
        // The keeper, in the ledger node's process. It executes, for their
        // beneficiaries, the reservations that name it once their token is public
        // (a hashlock secret revealed, a commit certificate used on either
        // network), and cancels what has expired and can no longer execute.
        let keeper = address(&self.keeper);
        let mut ops = Vec::new();
        // On a script chain only the keys a leg names spend it: no keeper.
        let keeping = !ledger.rules().named_keys_only;
        for reservation in ledger.state().reservations() {
            // A held leg goes where the verdict k notaries signed says; anyone
            // may present it, the keeper does.
            if reservation.state == ReservationState::Held {
                if let Some(verdict) = self.verdicts.get(&reservation.deal_id) {
                    let op = EscrowOp::Resolve { reservation: reservation.id, verdict: verdict.clone() };
                    ops.push((reservation.id, op));
                }
                continue;
            }
            if reservation.state != ReservationState::Reserved || !keeping {
                continue;
            }
            // What this keeper knows: all that is on chain, or, behind a
            // relay, what reached it (`relay.rs`).
            let token = match &self.relay {
                Some(relay) => relay.known(index, &reservation.deal_id),
                None => self.revealed.get(&reservation.deal_id),
            };
            let executable = match (&reservation.condition, token) {
                (interlock_core::Condition::Hashlock(_), Some(token @ Token::Secret(_))) => {
                    (now_ms < reservation.expiry_ms).then(|| token.clone())
                }
                (
                    interlock_core::Condition::Notary { .. } | interlock_core::Condition::Inspected { .. },
                    Some(token @ Token::Certificate(c)),
                ) => (c.decision == Decision::Commit).then(|| token.clone()),
                _ => None,
            };
            match executable {
                Some(token) if reservation.keeper == Some(keeper) => {
                    ops.push((reservation.id, EscrowOp::Execute { reservation: reservation.id, token }))
                }
                // Committed: never cancel it, even past the backstop.
                Some(_) => {}
                None if now_ms >= reservation.expiry_ms => {
                    ops.push((reservation.id, EscrowOp::Cancel { reservation: reservation.id, certificate: None }))
                }
                None => {}
            }
        }
        // In reservation id order, not the state map's: a seed replays the same.
        ops.sort_by_key(|(id, _)| id.0 .0);
        for (id, op) in ops.into_iter().take(64) {
            if node.keeper_sent.get(&id).is_some_and(|at| now_ms < at + 500) {
                continue;
            }
            node.keeper_sent.insert(id, now_ms);
            let nonce = self.keeper_nonce.entry(ledger.network()).or_insert(0);
            *nonce += 1;
            let _ = ledger.submit(Transaction::sign(&self.keeper, ledger.network(), *nonce, Op::Escrow(op)));
        }
        if !produce {
            return Ok(());
        }
        let deep = self.deep_chain.as_ref().is_some_and(|deep| deep.index == index);
        // A deep-chain block's time is whole seconds.
        let block_ms = if deep { now_ms / 1000 * 1000 } else { now_ms };
        let outcome = if ledger.mempool_len() == 0 && now_ms >= ledger.tip().timestamp_ms + HEARTBEAT_MS {
            ledger.produce_heartbeat(block_ms).map(Some)
        } else {
            ledger.produce_block(block_ms)
        };
        let outcome = outcome.map_err(|e| format!("ledger {index} failed to produce a block: {e}"))?;
        if let Some(outcome) = outcome {
            for event in &outcome.events {
                // A held leg reveals the commit as an executed one does; a
                // verdict's certificate is not a token for the other leg.
                if let interlock_core::EscrowEvent::Executed { deal_id, token, .. }
                | interlock_core::EscrowEvent::Held { deal_id, token, .. } = &event.event
                {
                    if matches!(token, Token::Certificate(c) if c.decision.is_verdict()) {
                        continue;
                    }
                    self.revealed.insert(*deal_id, token.clone());
                    if let Some(relay) = self.relay.as_mut() {
                        relay.revealed_on(index, *deal_id, token, now_ms, self.faults.delay_max_ms);
                    }
                }
            }
            if self.trace {
                for event in &outcome.events {
                    eprintln!(
                        "[{:>6} ms step {:>5}] network {index} block {} at {}: {:?} {:?} {}",
                        self.now_ms - T0_MS,
                        self.step,
                        outcome.header.height,
                        outcome.header.timestamp_ms - T0_MS,
                        event.event.deal_id(),
                        event.event.leg(),
                        match &event.event {
                            interlock_core::EscrowEvent::Reserved(_) => "reserved",
                            interlock_core::EscrowEvent::Executed { .. } => "executed",
                            interlock_core::EscrowEvent::Cancelled { .. } => "cancelled",
                            interlock_core::EscrowEvent::Held { .. } => "held",
                        }
                    );
                }
                for rejection in &outcome.rejected {
                    eprintln!(
                        "[{:>6} ms step {:>5}] network {index} rejected: {}",
                        self.now_ms - T0_MS,
                        self.step,
                        rejection.error
                    );
                }
            }
            let block = ledger.block(outcome.header.height).map_err(|e| e.to_string())?;
            if let Some(block) = block {
                for tx in &block.transactions {
                    if self.forbidden.contains(&tx.id()) {
                        return Err(format!(
                            "adversarial transaction applied on network {}: {:?}",
                            ledger.network(),
                            tx.op
                        ));
                    }
                }
            }
            node.committed_digest = ledger.state().digest();
        }
        if deep {
            self.follow_dropped();
        }
        Ok(())
    }
}
