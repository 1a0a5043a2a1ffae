//! The notary decider: commit iff both reservations are in place with the agreed
//! terms before the decision deadline, abort otherwise; exactly once per deal.
//!
//! A decision goes through two steps. [`NotaryDeal`] first returns
//! [`NotaryOutput::Record`]; the driver writes the decision to durable storage and
//! only then calls [`NotaryDeal::recorded`], which is the only way to obtain a
//! signed [`Vote`]. A deal restored with [`NotaryDeal::restore`] holds its recorded
//! decision, so a notary that crashes and restarts signs the same outcome again and
//! never the other one.

use crate::crypto::{verify_deal_signature, Decision, Ed25519Signature, NotaryKey, SignatureError, Vote};
use crate::escrow::EscrowEvent;
use crate::hash::DealId;
use crate::policy::{approve, Approvals};
use crate::saga::expected_request;
use crate::types::{DealTerms, LegKind, Settlement, TermsError};
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// Both parties' agreement to a deal, as submitted to a notary.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct SignedDeal {
    pub terms: DealTerms,
    pub buyer_signature: Ed25519Signature,
    pub seller_signature: Ed25519Signature,
}

#[derive(Clone, PartialEq, Eq, Debug, thiserror::Error)]
pub enum NotaryError {
    #[error("deal is not in notary mode")]
    NotNotaryMode,
    #[error("this notary {0} is not in the deal's notary set")]
    NotInSet(crate::types::NotaryAddress),
    #[error("buyer signature: {0}")]
    BuyerSignature(SignatureError),
    #[error("seller signature: {0}")]
    SellerSignature(SignatureError),
    #[error(transparent)]
    Terms(#[from] TermsError),
}

#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize)]
enum Phase {
    Watching {
        payment: bool,
        delivery: bool,
    },
    /// Decided; waiting for the driver to persist the decision.
    Recording(Decision),
    /// Persisted: votes may be signed.
    Recorded(Decision),
}

#[derive(Clone, Debug, PartialEq)]
pub enum NotaryOutput {
    /// Persist this decision, then call [`NotaryDeal::recorded`]. An abort for
    /// a broken rule says which (`policy: …`), for the parties.
    Record { deal_id: DealId, decision: Decision, reason: Option<String> },
    /// Send this vote to the deal's parties.
    Vote(Vote),
}

/// One notary's view of one deal.
#[derive(Clone, Debug)]
pub struct NotaryDeal {
    deal_id: DealId,
    terms: Arc<DealTerms>,
    phase: Phase,
    /// Why it aborted, when a rule was broken.
    reason: Option<String>,
}

impl NotaryDeal {
    /// Accepts a deal for decision after checking both signatures, the terms and
    /// that `notary` is in the deal's set. Policy violations decide abort at once.
    pub fn accept(
        notary: &NotaryKey,
        deal: &SignedDeal,
        now_ms: u64,
    ) -> Result<(NotaryDeal, Vec<NotaryOutput>), NotaryError> {
        let terms = Arc::new(deal.terms.clone());
        NotaryDeal::accept_shared(notary, terms, &deal.buyer_signature, &deal.seller_signature, now_ms)
    }

    /// [`NotaryDeal::accept`] for terms the caller already shares.
    pub fn accept_shared(
        notary: &NotaryKey,
        terms: Arc<DealTerms>,
        buyer_signature: &Ed25519Signature,
        seller_signature: &Ed25519Signature,
        now_ms: u64,
    ) -> Result<(NotaryDeal, Vec<NotaryOutput>), NotaryError> {
        let Settlement::Notary { notaries, .. } = &terms.settlement else {
            return Err(NotaryError::NotNotaryMode);
        };
        let address = notary.address();
        if !notaries.contains(&address) {
            return Err(NotaryError::NotInSet(address));
        }
        let deal_id = terms.id();
        verify_deal_signature(terms.buyer, deal_id, buyer_signature).map_err(NotaryError::BuyerSignature)?;
        verify_deal_signature(terms.seller, deal_id, seller_signature).map_err(NotaryError::SellerSignature)?;
        let invalid = terms.validate().err();
        let mut notary_deal =
            NotaryDeal { deal_id, terms, phase: Phase::Watching { payment: false, delivery: false }, reason: None };
        let outputs = match invalid {
            // Nothing is reserved yet, so nothing can be committed: no approvals needed.
            None => notary_deal.tick(now_ms, &crate::policy::Unrestricted),
            // Signed by both but against the rules: abort so both are refunded now.
            Some(error) => notary_deal.decide(Decision::Abort, Some(error.to_string())),
        };
        Ok((notary_deal, outputs))
    }

    /// A deal restored from the notary's log: its terms, and its decision if one
    /// was recorded.
    pub fn restore(terms: Arc<DealTerms>, recorded: Option<Decision>) -> NotaryDeal {
        let phase = match recorded {
            Some(decision) => Phase::Recorded(decision),
            None => Phase::Watching { payment: false, delivery: false },
        };
        NotaryDeal { deal_id: terms.id(), terms, phase, reason: None }
    }

    /// Why the notary aborted, when a rule was broken.
    pub fn reason(&self) -> Option<&str> {
        self.reason.as_deref()
    }

    pub fn deal_id(&self) -> DealId {
        self.deal_id
    }
    pub fn terms(&self) -> &Arc<DealTerms> {
        &self.terms
    }
    /// The decision, once recorded.
    pub fn decision(&self) -> Option<Decision> {
        match self.phase {
            Phase::Recorded(decision) => Some(decision),
            _ => None,
        }
    }

    /// The decision deadline, moved by the policy's extension if it has one.
    fn decision_deadline_ms(&self) -> u64 {
        self.terms.extended_decision_deadline_ms().expect("accepted deals are notary mode")
    }

    fn decide(&mut self, decision: Decision, reason: Option<String>) -> Vec<NotaryOutput> {
        assert!(matches!(self.phase, Phase::Watching { .. }), "a notary decides once");
        self.phase = Phase::Recording(decision);
        self.reason = reason.clone();
        vec![NotaryOutput::Record { deal_id: self.deal_id, decision, reason }]
    }

    /// A chain event from either network. A reservation counts only if it carries
    /// exactly the agreed parameters. `approvals` answers the approval rules
    /// should the deal be ready to commit.
    pub fn observe(&mut self, now_ms: u64, event: &EscrowEvent, approvals: &dyn Approvals) -> Vec<NotaryOutput> {
        let EscrowEvent::Reserved(reservation) = event else {
            return Vec::new();
        };
        if reservation.deal_id != self.deal_id {
            return Vec::new();
        }
        if let Phase::Watching { payment, delivery } = &mut self.phase {
            let expected = expected_request(&self.terms, self.deal_id, reservation.leg);
            if reservation.matches(&expected) {
                match reservation.leg {
                    LegKind::Payment => *payment = true,
                    LegKind::Delivery => *delivery = true,
                }
            }
        }
        self.tick(now_ms, approvals)
    }

    /// A reorganisation took away the block in which this notary saw `leg`
    /// reserved: until it sees the reservation again, the leg is not in, and
    /// nothing is committed on it. A decided deal stays decided (a recorded
    /// decision is final). Answers whether the leg was counted in.
    pub fn rolled_back(&mut self, leg: LegKind) -> bool {
        let Phase::Watching { payment, delivery } = &mut self.phase else {
            return false;
        };
        let seen = match leg {
            LegKind::Payment => payment,
            LegKind::Delivery => delivery,
        };
        std::mem::replace(seen, false)
    }

    /// Decides when it can: commit as soon as both legs are in before the
    /// deadline and the approval rules hold, abort once the deadline (extended
    /// if the policy says so) passed without them, or when a rule is broken.
    pub fn tick(&mut self, now_ms: u64, approvals: &dyn Approvals) -> Vec<NotaryOutput> {
        let Phase::Watching { payment, delivery } = self.phase else {
            return Vec::new();
        };
        let before_deadline = now_ms < self.decision_deadline_ms();
        match (payment && delivery, before_deadline) {
            (true, true) => match approve(&self.terms, now_ms, approvals) {
                Ok(()) => self.decide(Decision::Commit, None),
                Err(violation) => self.decide(Decision::Abort, Some(violation.to_string())),
            },
            (_, false) => self.decide(Decision::Abort, None),
            (false, true) => Vec::new(),
        }
    }

    /// When the notary next needs a tick (its decision deadline), if undecided.
    pub fn wake_at_ms(&self) -> Option<u64> {
        matches!(self.phase, Phase::Watching { .. }).then(|| self.decision_deadline_ms())
    }

    /// The driver persisted the decision: from now on the notary signs it.
    pub fn recorded(&mut self, notary: &NotaryKey) -> Vec<NotaryOutput> {
        let Phase::Recording(decision) = self.phase else {
            panic!("recorded() without a pending decision");
        };
        self.phase = Phase::Recorded(decision);
        self.vote(notary).into_iter().map(NotaryOutput::Vote).collect()
    }

    /// The notary's signed vote, if its decision is recorded. Always the same one.
    pub fn vote(&self, notary: &NotaryKey) -> Option<Vote> {
        let Phase::Recorded(decision) = self.phase else {
            return None;
        };
        Some(notary.sign_decision(self.deal_id, decision))
    }
}
