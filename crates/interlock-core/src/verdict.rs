//! One notary's verdict on a committed deal with an inspection period.
//!
//! Once a notary has recorded its commit of such a deal, its legs are held,
//! not paid. Until the window closes ([`DealTerms::inspection_ends_ms`]) the
//! party the policy names may raise a signed [`Dispute`]. A window that closes
//! with no dispute ends in [`Decision::Release`]; a disputed deal waits for the
//! notary's operator to decide release or reverse. As with commit and abort,
//! a verdict is recorded before it is signed ([`VerdictOutput::Record`], then
//! [`VerdictDeal::recorded`]), made once, and final: a restored deal signs
//! only its recorded verdict. A dispute is recorded too
//! ([`VerdictOutput::RecordDispute`]), so a notary that restarts inside the
//! window never releases a disputed deal.

use crate::crypto::{verify_ed25519, Decision, Ed25519Signature, NotaryKey, PartyKey, SignatureError, Vote};
use crate::hash::{DealId, Hash32};
use crate::limits::DISPUTE_REASON_LEN_MAX;
use crate::types::{DealTerms, PartyId};
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// A party's signed objection to a deal's delivery, inside its window.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct Dispute {
    pub deal_id: DealId,
    pub by: PartyId,
    pub reason: String,
    pub signature: Ed25519Signature,
}

fn dispute_message(deal_id: DealId, reason: &str) -> Vec<u8> {
    let mut message = b"interlock/dispute/v1\0".to_vec();
    message.extend_from_slice(&deal_id.0 .0);
    message.extend_from_slice(&Hash32::sha256(&[reason.as_bytes()]).0);
    message
}

impl Dispute {
    /// `party`'s dispute of `deal_id`, giving `reason`.
    pub fn sign(party: &PartyKey, deal_id: DealId, reason: &str) -> Dispute {
        let signature = party.sign(&dispute_message(deal_id, reason));
        Dispute { deal_id, by: party.public(), reason: reason.to_owned(), signature }
    }

    /// Checks the signature is `by`'s over this deal and reason.
    pub fn verify(&self) -> Result<(), SignatureError> {
        verify_ed25519(self.by, &dispute_message(self.deal_id, &self.reason), &self.signature)
    }
}

#[derive(Clone, PartialEq, Eq, Debug, thiserror::Error)]
pub enum DisputeError {
    #[error("deal {0} has no inspection period: there is nothing to dispute")]
    NoInspection(DealId),
    #[error("the dispute is for deal {found}, not {expected}")]
    OtherDeal { expected: DealId, found: DealId },
    #[error("party {party:?} may not dispute this deal: its policy lets {disputer} dispute")]
    NotAllowed { party: PartyId, disputer: crate::inspection::Disputer },
    #[error("the dispute's signature: {0}")]
    Signature(SignatureError),
    #[error("the dispute's reason is {length} bytes, more than the limit {max}")]
    ReasonTooLong { length: usize, max: usize },
    #[error("the inspection window closed at {ends_ms} ms (now {now_ms} ms): a dispute comes inside it")]
    WindowClosed { ends_ms: u64, now_ms: u64 },
    #[error("the deal's verdict is already {0}: it is made once")]
    Decided(Decision),
    #[error("{0} is not a verdict: the verdict on a disputed deal is release or reverse")]
    NotAVerdict(Decision),
    #[error("the deal is not disputed: its verdict is release once the window closes at {ends_ms} ms")]
    NotDisputed { ends_ms: u64 },
}

#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
enum Phase {
    /// The window is open and nobody has disputed.
    Open,
    /// Disputed: the operator decides.
    Disputed,
    /// Decided; waiting for the driver to persist the verdict.
    Recording(Decision),
    /// Persisted: votes may be signed.
    Recorded(Decision),
}

#[derive(Clone, Debug, PartialEq)]
pub enum VerdictOutput {
    /// Persist this dispute before acknowledging it.
    RecordDispute(Dispute),
    /// Persist this verdict, then call [`VerdictDeal::recorded`].
    Record { deal_id: DealId, decision: Decision },
    /// Send this vote to the deal's parties and keepers.
    Vote(Vote),
}

/// One notary's view of one committed deal's inspection period.
#[derive(Clone, Debug)]
pub struct VerdictDeal {
    deal_id: DealId,
    terms: Arc<DealTerms>,
    ends_ms: u64,
    phase: Phase,
    dispute: Option<Dispute>,
}

impl VerdictDeal {
    /// The inspection period of a deal this notary committed; `None` for a
    /// deal without one.
    pub fn open(terms: Arc<DealTerms>) -> Option<VerdictDeal> {
        VerdictDeal::restore(terms, None, None)
    }

    /// A deal restored from the notary's log: its recorded dispute and verdict.
    pub fn restore(terms: Arc<DealTerms>, dispute: Option<Dispute>, recorded: Option<Decision>) -> Option<VerdictDeal> {
        let ends_ms = terms.inspection_ends_ms()?;
        let phase = match (recorded, &dispute) {
            (Some(decision), _) => Phase::Recorded(decision),
            (None, Some(_)) => Phase::Disputed,
            (None, None) => Phase::Open,
        };
        Some(VerdictDeal { deal_id: terms.id(), terms, ends_ms, phase, dispute })
    }

    pub fn deal_id(&self) -> DealId {
        self.deal_id
    }
    /// When the window closes.
    pub fn ends_ms(&self) -> u64 {
        self.ends_ms
    }
    /// The dispute this notary recorded, if any.
    pub fn dispute(&self) -> Option<&Dispute> {
        self.dispute.as_ref()
    }
    /// The verdict, once recorded.
    pub fn verdict(&self) -> Option<Decision> {
        match self.phase {
            Phase::Recorded(decision) => Some(decision),
            _ => None,
        }
    }
    /// Whether the deal waits for the operator's verdict.
    pub fn awaiting_operator(&self) -> bool {
        self.phase == Phase::Disputed
    }

    /// A party's dispute. Checked in full first; refused, it changes nothing.
    /// The same dispute again, or a second one after it, is accepted and
    /// changes nothing either: the deal is disputed once.
    pub fn raise(&mut self, dispute: &Dispute, now_ms: u64) -> Result<Vec<VerdictOutput>, DisputeError> {
        if dispute.deal_id != self.deal_id {
            return Err(DisputeError::OtherDeal { expected: self.deal_id, found: dispute.deal_id });
        }
        let inspection = self.terms.policy.inspection.ok_or(DisputeError::NoInspection(self.deal_id))?;
        if !inspection.disputer.may_dispute(&self.terms, &dispute.by) {
            return Err(DisputeError::NotAllowed { party: dispute.by, disputer: inspection.disputer });
        }
        if dispute.reason.len() > DISPUTE_REASON_LEN_MAX {
            let (length, max) = (dispute.reason.len(), DISPUTE_REASON_LEN_MAX);
            return Err(DisputeError::ReasonTooLong { length, max });
        }
        dispute.verify().map_err(DisputeError::Signature)?;
        match self.phase {
            Phase::Recording(decision) | Phase::Recorded(decision) => return Err(DisputeError::Decided(decision)),
            Phase::Disputed => return Ok(Vec::new()),
            Phase::Open => {}
        }
        if now_ms >= self.ends_ms {
            return Err(DisputeError::WindowClosed { ends_ms: self.ends_ms, now_ms });
        }
        self.phase = Phase::Disputed;
        self.dispute = Some(dispute.clone());
        Ok(vec![VerdictOutput::RecordDispute(dispute.clone())])
    }

    /// Releases an undisputed deal once its window has closed.
    pub fn tick(&mut self, now_ms: u64) -> Vec<VerdictOutput> {
        if self.phase != Phase::Open || now_ms < self.ends_ms {
            return Vec::new();
        }
        self.record(Decision::Release)
    }

    /// The operator's verdict on a disputed deal.
    pub fn decide(&mut self, decision: Decision) -> Result<Vec<VerdictOutput>, DisputeError> {
        if !decision.is_verdict() {
            return Err(DisputeError::NotAVerdict(decision));
        }
        match self.phase {
            Phase::Recording(decided) | Phase::Recorded(decided) => Err(DisputeError::Decided(decided)),
            Phase::Open => Err(DisputeError::NotDisputed { ends_ms: self.ends_ms }),
            Phase::Disputed => Ok(self.record(decision)),
        }
    }

    fn record(&mut self, decision: Decision) -> Vec<VerdictOutput> {
        self.phase = Phase::Recording(decision);
        vec![VerdictOutput::Record { deal_id: self.deal_id, decision }]
    }

    /// When the notary next needs a tick: the window's close, while it is open.
    pub fn wake_at_ms(&self) -> Option<u64> {
        (self.phase == Phase::Open).then_some(self.ends_ms)
    }

    /// The driver persisted the verdict: from now on the notary signs it.
    pub fn recorded(&mut self, notary: &NotaryKey) -> Vec<VerdictOutput> {
        let Phase::Recording(decision) = self.phase else {
            panic!("recorded() without a pending verdict");
        };
        self.phase = Phase::Recorded(decision);
        self.vote(notary).into_iter().map(VerdictOutput::Vote).collect()
    }

    /// The notary's signed verdict, once recorded. Always the same one.
    pub fn vote(&self, notary: &NotaryKey) -> Option<Vote> {
        let Phase::Recorded(decision) = self.phase else { return None };
        Some(notary.sign_decision(self.deal_id, decision))
    }
}
