//! The adversary: Mallory, or a party's own agent misbehaving, sends
//! transactions the escrow rules must refuse; the world fails the seed if one applies.

use super::network::{Node, Payload};
use super::{local, World};
use interlock_core::crypto::{PartyKey, Secret, Token};
use interlock_core::{reservation_id, DealId, EscrowOp, LegKind, NetworkId, ReservationState};
use interlock_ledger::Transaction;

impl World {
    /// Transactions that must be refused: executing with a wrong secret,
    /// executing a reservation made for someone else, executing twice.
    pub(super) fn attack(&mut self) {
        if self.script_chain.is_some() && self.rng.chance(500) && self.claim_late() {
            return;
        }
        let deal_ids: Vec<DealId> = self.deals.keys().copied().collect();
        if deal_ids.is_empty() {
            return;
        }
        let deal_id = *self.rng.pick(&deal_ids);
        let terms = self.deals[&deal_id].terms.clone();
        let leg = *self.rng.pick(&LegKind::BOTH);
        let network = terms.leg(leg).network;
        let ledger_index = Self::ledger_index(network);
        let Some(ledger) = self.ledgers[ledger_index].ledger.as_ref() else {
            return;
        };
        let id = reservation_id(deal_id, leg);
        let Some(reservation) = ledger.state().reservation(&id) else {
            return;
        };
        let state = reservation.state;
        let expiry_ms = reservation.expiry_ms;
        // The best token the adversary has: one revealed on chain for this deal
        // (a hashlock secret, a commit certificate), else a guess.
        let guess = Token::Secret(Secret(self.rng.bytes32()));
        let seen = self.revealed.get(&deal_id).cloned().unwrap_or_else(|| guess.clone());
        // Who signs: Mallory, or a party's own agent misbehaving (which then uses
        // that party's nonces, as its honest self would).
        const MALLORY: Option<usize> = None;
        let owner = Some(if leg == LegKind::Payment { 0 } else { 1 });
        let beneficiary = Some(if leg == LegKind::Payment { 1 } else { 0 });
        if state == ReservationState::Reserved && self.rng.chance(400) {
            // Cancel early: the owner (after taking the other leg, say) or Mallory.
            let signer = if self.rng.chance(500) { owner } else { MALLORY };
            let ledger_now_ms = local(self.now_ms, self.ledgers[ledger_index].skew_ms);
            // Far from the expiry it must be refused; near it, it may land late and
            // apply lawfully, and the invariants judge the outcome.
            let must_fail = expiry_ms > ledger_now_ms + 5_000;
            let (key, nonce) = self.adversary_signer(signer, network);
            let op = self.adversary_op(network, EscrowOp::Cancel { reservation: id, certificate: None }, None);
            let tx = Transaction::sign(&key, network, nonce, op);
            self.note_spend_size(&tx);
            if must_fail {
                self.forbidden.insert(tx.id());
            }
            self.send(Node::Ledger(ledger_index), Payload::Transaction(tx));
            return;
        }
        let (signer, token) = match self.rng.range(0, 3) {
            // Mallory, front-running the beneficiary with the revealed token.
            0 => (MALLORY, seen),
            // The owner executing its own reservation, not made for it.
            1 => (owner, seen),
            // The beneficiary with a wrong secret.
            2 if state == ReservationState::Reserved => (beneficiary, guess),
            // The beneficiary executing a settled reservation again.
            _ if state != ReservationState::Reserved => (beneficiary, seen),
            _ => return,
        };
        let (key, nonce) = self.adversary_signer(signer, network);
        let op = self.adversary_op(network, EscrowOp::Execute { reservation: id, token }, None);
        let tx = Transaction::sign(&key, network, nonce, op);
        self.note_spend_size(&tx);
        self.forbidden.insert(tx.id());
        self.send(Node::Ledger(ledger_index), Payload::Transaction(tx));
    }

    /// On a script chain a beneficiary's claim with the secret is still taken
    /// after the expiry, until the owner takes the leg back: the buyer, who
    /// holds the secret, or the seller once it is out, claims a lapsed leg
    /// late. It is lawful there; the invariants judge the outcome. Returns
    /// whether it sent one.
    fn claim_late(&mut self) -> bool {
        let Some(script) = self.script_chain else { return false };
        let network = super::NETWORKS[script.index];
        let Some(ledger) = self.ledgers[script.index].ledger.as_ref() else { return false };
        let now_ms = local(self.now_ms, self.ledgers[script.index].skew_ms);
        let mut lapsed = Vec::new();
        for (deal_id, info) in &self.deals {
            for leg in LegKind::BOTH {
                let id = reservation_id(*deal_id, leg);
                let open_and_lapsed = ledger
                    .state()
                    .reservation(&id)
                    .is_some_and(|r| r.state == ReservationState::Reserved && now_ms >= r.expiry_ms);
                let secret = match (leg, self.revealed.get(deal_id)) {
                    (LegKind::Delivery, _) => info.secret,
                    (LegKind::Payment, Some(Token::Secret(secret))) => Some(*secret),
                    _ => None,
                };
                if let (true, Some(secret)) = (open_and_lapsed && info.terms.leg(leg).network == network, secret) {
                    lapsed.push((id, leg, secret));
                }
            }
        }
        if lapsed.is_empty() {
            return false;
        }
        let (id, leg, secret) = *self.rng.pick(&lapsed);
        let beneficiary = Some(if leg == LegKind::Payment { 1 } else { 0 });
        let (key, nonce) = self.adversary_signer(beneficiary, network);
        // Priced at the node's estimate, as a claimant in earnest would.
        let estimate = self
            .fees
            .as_ref()
            .zip(self.ledgers[script.index].ledger.as_ref())
            .map(|(fees, ledger)| fees.estimate(ledger.tip().height));
        let op =
            self.adversary_op(network, EscrowOp::Execute { reservation: id, token: Token::Secret(secret) }, estimate);
        let tx = Transaction::sign(&key, network, nonce, op);
        self.note_spend_size(&tx);
        if let Some(script) = self.script_chain.as_mut() {
            script.late_claims_sent += 1;
        }
        self.send(Node::Ledger(script.index), Payload::Transaction(tx));
        true
    }

    /// The key and next nonce for an adversarial transaction signed by Mallory
    /// (`None`) or by party `index`'s own agent.
    fn adversary_signer(&mut self, signer: Option<usize>, network: NetworkId) -> (PartyKey, u64) {
        match signer {
            None => {
                let nonce = self.mallory_nonce.entry(network).or_insert(0);
                *nonce += 1;
                (self.mallory.clone(), *nonce)
            }
            Some(index) => {
                let node = &mut self.parties[index];
                let nonce = node.disk.nonces.entry(network).or_insert(0);
                *nonce += 1;
                (node.key.clone(), *nonce)
            }
        }
    }
}
