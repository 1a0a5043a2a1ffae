//! The party saga: one party's side of one deal, in either mode.
//!
//! The saga is a pure state machine. Its driver feeds it the time, chain events
//! from both networks and notary votes ([`Saga::take_news`]), persists [`Saga::to_record`] *before* it
//! carries out the returned [`SagaOutput`]s, and calls [`Saga::step`] again at
//! the returned wake-up time. Every decision is derived from what the saga has
//! seen on chain, so duplicated, reordered or replayed inputs are harmless and a
//! saga restored from its record after a crash picks up where it was: anything it
//! submitted but did not see land is submitted again.

use crate::crypto::{Certificate, Decision, RecoverableSignature, Secret, Token, Vote};
use crate::escrow::{Condition, EscrowEvent, EscrowOp, ReservationState, ReserveRequest};
use crate::hash::DealId;
use crate::limits::{NOTARIES_MAX, RESUBMIT_AFTER_MS};
use crate::types::{reservation_id, DealTerms, LegKind, NetworkId, NotaryAddress, Settlement};
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// Slack the saga allows the ledgers' clocks beyond its own before it treats an
/// expiry as passed on chain.
pub const CLOCK_GRACE_MS: u64 = 50;

#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Serialize, Deserialize)]
pub enum Role {
    Buyer,
    Seller,
}

impl Role {
    /// The leg this role owns (reserves, and gets back on cancel).
    pub fn own_leg(self) -> LegKind {
        match self {
            Role::Buyer => LegKind::Payment,
            Role::Seller => LegKind::Delivery,
        }
    }
    /// The leg this role is the beneficiary of.
    pub fn counter_leg(self) -> LegKind {
        self.own_leg().other()
    }
}

/// What a leg is on chain, as far as this saga has seen.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub enum LegStatus {
    /// No reservation seen.
    Open,
    /// Reserved with exactly the agreed parameters.
    Reserved,
    /// Reserved with other parameters than the terms say: never executed by us.
    Mismatched,
    Executed,
    Cancelled,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize)]
struct LegView {
    status: LegStatus,
    /// When the saga last submitted the operation this leg waits for.
    submitted_at_ms: Option<u64>,
}

impl LegView {
    const OPEN: LegView = LegView { status: LegStatus::Open, submitted_at_ms: None };

    /// Whether to submit (again): nothing in flight, or the leg's network has
    /// produced blocks well past the submission without including it. Judged by
    /// the network's time, not the saga's, so a slow network or a slow reader
    /// never makes the saga flood it with copies.
    fn due(&self, chain_time_ms: u64) -> bool {
        self.submitted_at_ms.is_none_or(|at| chain_time_ms >= at.saturating_add(RESUBMIT_AFTER_MS))
    }
}

/// How a deal ended for one party.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub enum Outcome {
    /// Both legs executed.
    Completed,
    /// Nothing was received and whatever this party locked came back.
    Refunded,
    /// This party received the counter asset and also got its own back: the
    /// counterparty missed its deadline (hashlock mode only).
    Windfall,
    /// This party's asset was taken and it missed the deadline to take the
    /// counter asset (hashlock mode, seller absent past the payment expiry).
    Lost,
}

// Outputs live for one step and are nearly all `Submit`s: boxing the operation
// would add an allocation to the common case to shrink the rare one.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, PartialEq, Debug)]
pub enum SagaOutput {
    /// Sign and submit this operation on `network`.
    Submit { network: NetworkId, op: EscrowOp },
    /// Send the signed terms to every notary (asks for their vote, too).
    AskNotaries,
    /// The deal ended for this party; tell it (and its observers, dependents).
    Finished(Outcome),
}

/// What one call to the saga produced.
#[derive(Debug, Default)]
pub struct Step {
    pub outputs: Vec<SagaOutput>,
    /// When the saga wants to be stepped again, absent new inputs.
    pub wake_at_ms: Option<u64>,
}

#[derive(Clone, Debug)]
pub struct Saga {
    role: Role,
    deal_id: DealId,
    terms: Arc<DealTerms>,
    secret: Option<Secret>,
    own: LegView,
    counter: LegView,
    votes: Vec<(NotaryAddress, Decision, RecoverableSignature)>,
    certificate: Option<Certificate>,
    notaries_asked_at_ms: Option<u64>,
    /// The party chose not to reserve (the demo's unwilling seller).
    withholding: bool,
    /// The latest block time seen on each leg's network (payment, delivery): a
    /// leg still unseen once its network's blocks pass its expiry never will be.
    chain_time_ms: [u64; 2],
    outcome: Option<Outcome>,
}

/// The persisted form of a saga. Versioned so a newer build can migrate it.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SagaRecord {
    pub version: u8,
    pub role: Role,
    pub terms: DealTerms,
    pub secret: Option<Secret>,
    own: LegView,
    counter: LegView,
    votes: Vec<(NotaryAddress, Decision, RecoverableSignature)>,
    certificate: Option<Certificate>,
    notaries_asked_at_ms: Option<u64>,
    withholding: bool,
    chain_time_ms: [u64; 2],
    outcome: Option<Outcome>,
}

pub const SAGA_RECORD_VERSION: u8 = 1;

#[derive(Clone, PartialEq, Eq, Debug, thiserror::Error)]
pub enum SagaError {
    #[error(transparent)]
    Terms(#[from] crate::types::TermsError),
    #[error("hashlock buyer needs the secret whose sha256 the terms name")]
    MissingSecret,
    #[error("secret does not hash to the terms' hashlock")]
    WrongSecret,
    #[error("saga record version {found} is not supported (expected {expected})")]
    RecordVersion { expected: u8, found: u8 },
    #[error("saga record is corrupt: {0}")]
    Corrupt(String),
}

impl Saga {
    /// Starts a saga for agreed terms. A hashlock buyer passes the secret it drew.
    pub fn new(role: Role, terms: Arc<DealTerms>, secret: Option<Secret>) -> Result<Saga, SagaError> {
        terms.validate()?;
        if let Settlement::Hashlock { hash, .. } = &terms.settlement {
            match (role, secret) {
                (Role::Buyer, None) => return Err(SagaError::MissingSecret),
                (_, Some(secret)) if secret.hash() != *hash => return Err(SagaError::WrongSecret),
                _ => {}
            }
        }
        Ok(Saga {
            role,
            deal_id: terms.id(),
            terms,
            secret,
            own: LegView::OPEN,
            counter: LegView::OPEN,
            votes: Vec::new(),
            certificate: None,
            notaries_asked_at_ms: None,
            withholding: false,
            chain_time_ms: [0; 2],
            outcome: None,
        })
    }

    /// A party that agreed but will not reserve its leg (the demo's absent seller).
    pub fn withhold(&mut self) {
        self.withholding = true;
    }

    pub fn role(&self) -> Role {
        self.role
    }
    pub fn deal_id(&self) -> DealId {
        self.deal_id
    }
    pub fn terms(&self) -> &Arc<DealTerms> {
        &self.terms
    }
    pub fn outcome(&self) -> Option<Outcome> {
        self.outcome
    }
    pub fn certificate(&self) -> Option<&Certificate> {
        self.certificate.as_ref()
    }
    pub fn own_status(&self) -> LegStatus {
        self.own.status
    }
    pub fn counter_status(&self) -> LegStatus {
        self.counter.status
    }

    pub fn to_record(&self) -> SagaRecord {
        SagaRecord {
            version: SAGA_RECORD_VERSION,
            role: self.role,
            terms: (*self.terms).clone(),
            secret: self.secret,
            own: self.own,
            counter: self.counter,
            votes: self.votes.clone(),
            certificate: self.certificate.clone(),
            notaries_asked_at_ms: self.notaries_asked_at_ms,
            withholding: self.withholding,
            chain_time_ms: self.chain_time_ms,
            outcome: self.outcome,
        }
    }

    pub fn from_record(record: SagaRecord) -> Result<Saga, SagaError> {
        if record.version != SAGA_RECORD_VERSION {
            return Err(SagaError::RecordVersion { expected: SAGA_RECORD_VERSION, found: record.version });
        }
        if record.votes.len() > NOTARIES_MAX * 2 {
            return Err(SagaError::Corrupt(format!("{} votes", record.votes.len())));
        }
        let mut saga = Saga::new(record.role, Arc::new(record.terms), record.secret)?;
        saga.own = record.own;
        saga.counter = record.counter;
        saga.votes = record.votes;
        saga.certificate = record.certificate;
        saga.notaries_asked_at_ms = record.notaries_asked_at_ms;
        saga.withholding = record.withholding;
        saga.chain_time_ms = record.chain_time_ms;
        saga.outcome = record.outcome;
        Ok(saga)
    }

    pub fn encode_record(&self) -> Vec<u8> {
        postcard::to_allocvec(&self.to_record()).expect("saga records always serialize")
    }

    pub fn decode_record(bytes: &[u8]) -> Result<Saga, SagaError> {
        let record: SagaRecord = postcard::from_bytes(bytes).map_err(|error| SagaError::Corrupt(error.to_string()))?;
        Saga::from_record(record)
    }

    /// The reservation request this deal's `leg` must carry, exactly.
    pub fn expected_request(&self, leg: LegKind) -> ReserveRequest {
        expected_request(&self.terms, self.deal_id, leg)
    }

    /// Hands the saga what its party learned since it last stepped it, then
    /// steps once: `events` (from either network, in chain order; other deals'
    /// are ignored), then `chain_times` (each network read up to a block
    /// stamped that time, every event up to it fed by now), then `votes`
    /// (invalid ones and other deals' are ignored). Every driver feeds a saga
    /// through here (the agent, the in-process runtime, the simulator), so a
    /// batch of news makes one decision from all of it rather than one
    /// decision per input from part of it.
    pub fn take_news<'a>(
        &mut self,
        now_ms: u64,
        events: impl IntoIterator<Item = &'a EscrowEvent>,
        chain_times: &[(NetworkId, u64)],
        votes: impl IntoIterator<Item = &'a Vote>,
    ) -> Step {
        for event in events {
            if event.deal_id() == self.deal_id {
                self.absorb(event);
            }
        }
        for &(network, block_time_ms) in chain_times {
            for (index, leg) in LegKind::BOTH.iter().enumerate() {
                if self.terms.leg(*leg).network == network {
                    self.chain_time_ms[index] = self.chain_time_ms[index].max(block_time_ms);
                }
            }
        }
        for vote in votes {
            self.absorb_vote(vote);
        }
        self.step(now_ms)
    }

    /// [`Saga::take_news`] of one chain event.
    pub fn on_chain_event(&mut self, now_ms: u64, event: &EscrowEvent) -> Step {
        self.take_news(now_ms, [event], &[], [])
    }

    /// [`Saga::take_news`] of one network's progress: it has produced every
    /// block up to one stamped `block_time_ms`, and all of them were fed.
    pub fn on_chain_time(&mut self, now_ms: u64, network: NetworkId, block_time_ms: u64) -> Step {
        self.take_news(now_ms, [], &[(network, block_time_ms)], [])
    }

    fn chain_time(&self, leg: LegKind) -> u64 {
        match leg {
            LegKind::Payment => self.chain_time_ms[0],
            LegKind::Delivery => self.chain_time_ms[1],
        }
    }

    /// [`Saga::take_news`] of one notary's vote.
    pub fn on_vote(&mut self, now_ms: u64, vote: &Vote) -> Step {
        self.take_news(now_ms, [], &[], [vote])
    }

    /// A reorganisation of `leg`'s network took blocks away that this saga
    /// may have read: `on_chain` is where the leg stands on the chain now
    /// (`None`: nothing reserved). A leg the saga saw further along goes back
    /// to it, and only back: what the chain still holds, its follower delivers
    /// again. What the saga sent for the leg may be sent again at once, and a
    /// deal that had ended runs again. Answers whether anything changed.
    pub fn rolled_back(&mut self, leg: LegKind, on_chain: Option<ReservationState>) -> bool {
        let status = match on_chain {
            None => LegStatus::Open,
            Some(ReservationState::Reserved) => LegStatus::Reserved,
            // The saga's part ends at execution: a held leg was executed, and
            // its verdict is the notaries' and the keeper's business.
            Some(ReservationState::Executed | ReservationState::Held) => LegStatus::Executed,
            Some(ReservationState::Cancelled) => LegStatus::Cancelled,
        };
        let view = if leg == self.role.own_leg() { &mut self.own } else { &mut self.counter };
        if rank(status) >= rank(view.status) {
            return false;
        }
        *view = LegView { status, submitted_at_ms: None };
        self.outcome = None;
        true
    }

    fn absorb(&mut self, event: &EscrowEvent) {
        let leg = event.leg();
        let view = if leg == self.role.own_leg() { &mut self.own } else { &mut self.counter };
        let next = match event {
            EscrowEvent::Reserved(reservation) => {
                if reservation.id != reservation_id(self.deal_id, leg) {
                    return;
                }
                if reservation.matches(&expected_request(&self.terms, self.deal_id, leg)) {
                    LegStatus::Reserved
                } else {
                    LegStatus::Mismatched
                }
            }
            EscrowEvent::Executed { token, .. } => {
                if let (Token::Secret(secret), None) = (token, self.secret) {
                    self.secret = Some(*secret);
                }
                LegStatus::Executed
            }
            EscrowEvent::Held { .. } => LegStatus::Executed,
            EscrowEvent::Cancelled { .. } => LegStatus::Cancelled,
        };
        // A leg only moves forward: Open -> Reserved/Mismatched -> Executed/Cancelled.
        if rank(next) > rank(view.status) {
            *view = LegView { status: next, submitted_at_ms: None };
        }
    }

    fn absorb_vote(&mut self, vote: &Vote) {
        let Settlement::Notary { notaries, threshold, .. } = &self.terms.settlement else {
            return;
        };
        // A verdict ends an inspection period after the commit; the saga
        // collects only the commit or abort it acts on.
        if vote.deal_id != self.deal_id || self.certificate.is_some() || vote.decision.is_verdict() {
            return;
        }
        let Some(signer) = vote.signer() else { return };
        if !notaries.contains(&signer) {
            return;
        }
        let known = self.votes.iter().any(|(seen, decision, _)| *seen == signer && *decision == vote.decision);
        if known {
            return;
        }
        self.votes.push((signer, vote.decision, vote.signature));
        let agreeing: Vec<RecoverableSignature> = self
            .votes
            .iter()
            .filter(|(_, decision, _)| *decision == vote.decision)
            .map(|(_, _, signature)| *signature)
            .collect();
        if agreeing.len() >= usize::from(*threshold) {
            let certificate = Certificate {
                deal_id: self.deal_id,
                decision: vote.decision,
                signatures: agreeing.into_iter().take(usize::from(*threshold)).collect(),
            };
            debug_assert!(certificate.verify(self.deal_id, vote.decision, notaries, *threshold).is_ok());
            self.certificate = Some(certificate);
            self.votes.clear();
        }
    }

    /// Decides what to do at `now_ms` from what the saga has seen.
    pub fn step(&mut self, now_ms: u64) -> Step {
        let mut step = Step::default();
        if self.outcome.is_some() {
            return step;
        }
        match self.terms.settlement.clone() {
            Settlement::Hashlock { payment_expiry_ms, delivery_expiry_ms, .. } => {
                self.step_hashlock(now_ms, payment_expiry_ms, delivery_expiry_ms, &mut step)
            }
            Settlement::Notary { backstop_expiry_ms, .. } => {
                // A reservation counts until the notaries' deadline, extended
                // once if the policy says so.
                let deadline_ms = self.terms.extended_decision_deadline_ms().expect("notary mode");
                self.step_notary(now_ms, deadline_ms, backstop_expiry_ms, &mut step)
            }
        }
        if let Some(outcome) = self.settled_outcome() {
            self.outcome = Some(outcome);
            step.outputs.push(SagaOutput::Finished(outcome));
            step.wake_at_ms = None;
        }
        step
    }

    fn wake(step: &mut Step, at_ms: u64) {
        step.wake_at_ms = Some(step.wake_at_ms.map_or(at_ms, |current| current.min(at_ms)));
    }

    /// Submits `op` for the leg behind `view` if nothing is in flight for it.
    fn submit_due(&mut self, now_ms: u64, own: bool, op: EscrowOp, step: &mut Step) {
        let leg = if own { self.role.own_leg() } else { self.role.counter_leg() };
        let chain_time_ms = self.chain_time(leg);
        let view = if own { &mut self.own } else { &mut self.counter };
        if view.due(chain_time_ms) {
            view.submitted_at_ms = Some(now_ms);
            step.outputs.push(SagaOutput::Submit { network: self.terms.leg(leg).network, op });
        }
        let at = view.submitted_at_ms.expect("just set or in flight") + RESUBMIT_AFTER_MS;
        Self::wake(step, at);
    }

    fn reserve_op(&self) -> EscrowOp {
        EscrowOp::Reserve(self.expected_request(self.role.own_leg()))
    }

    fn counter_id(&self) -> crate::hash::ReservationId {
        reservation_id(self.deal_id, self.role.counter_leg())
    }

    fn own_id(&self) -> crate::hash::ReservationId {
        reservation_id(self.deal_id, self.role.own_leg())
    }

    fn step_hashlock(&mut self, now_ms: u64, payment_expiry_ms: u64, delivery_expiry_ms: u64, step: &mut Step) {
        let own_expiry_ms = self.terms.expiry_ms(self.role.own_leg());
        // Reserve: the buyer first; the seller once the payment is locked as
        // agreed. A party whose counter leg it already holds executed owes its
        // own leg until that leg's expiry: only a reorganisation that took the
        // reservation away leaves it open then.
        let owed = self.counter.status == LegStatus::Executed && now_ms < own_expiry_ms;
        let may_reserve = match self.role {
            Role::Buyer => now_ms < delivery_expiry_ms,
            Role::Seller => self.counter.status == LegStatus::Reserved && now_ms < delivery_expiry_ms,
        };
        if self.own.status == LegStatus::Open && (may_reserve || owed) && !self.withholding {
            let op = self.reserve_op();
            self.submit_due(now_ms, true, op, step);
        }
        // Execute the counter leg with the secret: the buyer reveals it only once the
        // delivery is locked as agreed; the seller uses it once revealed.
        let counter_expiry_ms = self.terms.expiry_ms(self.role.counter_leg());
        let counter_ready = self.counter.status == LegStatus::Reserved
            && now_ms < counter_expiry_ms
            && match self.role {
                Role::Buyer => self.own.status == LegStatus::Reserved || self.own.status == LegStatus::Executed,
                Role::Seller => self.own.status == LegStatus::Executed,
            };
        if let (true, Some(secret)) = (counter_ready, self.secret) {
            let op = EscrowOp::Execute { reservation: self.counter_id(), token: Token::Secret(secret) };
            self.submit_due(now_ms, false, op, step);
        }
        // Refund the own leg once it expired.
        if self.own.status == LegStatus::Reserved || self.own.status == LegStatus::Mismatched {
            if now_ms >= own_expiry_ms {
                let op = EscrowOp::Cancel { reservation: self.own_id(), certificate: None };
                self.submit_due(now_ms, true, op, step);
            } else {
                Self::wake(step, own_expiry_ms);
            }
        }
        Self::wake_next(step, now_ms, &[delivery_expiry_ms, payment_expiry_ms]);
    }

    /// Wakes at the first of `deadlines` (or its grace period's end) still ahead.
    fn wake_next(step: &mut Step, now_ms: u64, deadlines: &[u64]) {
        let next =
            deadlines.iter().flat_map(|at| [*at, at.saturating_add(CLOCK_GRACE_MS)]).filter(|at| *at > now_ms).min();
        if let Some(at) = next {
            Self::wake(step, at);
        }
    }

    fn step_notary(&mut self, now_ms: u64, decision_deadline_ms: u64, backstop_expiry_ms: u64, step: &mut Step) {
        if self.certificate.is_none() && self.notaries_asked_at_ms.is_none_or(|at| now_ms >= at + RESUBMIT_AFTER_MS) {
            self.notaries_asked_at_ms = Some(now_ms);
            step.outputs.push(SagaOutput::AskNotaries);
        }
        if self.certificate.is_none() {
            Self::wake(step, self.notaries_asked_at_ms.unwrap_or(now_ms) + RESUBMIT_AFTER_MS);
        }
        let decision = self.certificate.as_ref().map(|certificate| certificate.decision);
        // After a commit, the own leg is owed: only a reorganisation that took
        // the reservation away leaves it open then, and it is sent again.
        let owed = decision == Some(Decision::Commit) && now_ms < backstop_expiry_ms;
        if self.own.status == LegStatus::Open
            && ((decision.is_none() && now_ms < decision_deadline_ms) || owed)
            && !self.withholding
        {
            let op = self.reserve_op();
            self.submit_due(now_ms, true, op, step);
        }
        match decision {
            Some(Decision::Commit) => {
                if self.counter.status == LegStatus::Reserved {
                    let token = Token::Certificate(self.certificate.clone().expect("decided"));
                    let op = EscrowOp::Execute { reservation: self.counter_id(), token };
                    self.submit_due(now_ms, false, op, step);
                }
            }
            Some(Decision::Abort) => {
                if matches!(self.own.status, LegStatus::Reserved | LegStatus::Mismatched) {
                    let op = EscrowOp::Cancel { reservation: self.own_id(), certificate: self.certificate.clone() };
                    self.submit_due(now_ms, true, op, step);
                }
            }
            // Never collected (see `absorb_vote`).
            Some(Decision::Release | Decision::Reverse) => {}
            None => {
                // The backstop: no certificate, so nobody can have executed with one;
                // take the asset back.
                if matches!(self.own.status, LegStatus::Reserved | LegStatus::Mismatched) {
                    if now_ms >= backstop_expiry_ms {
                        let op = EscrowOp::Cancel { reservation: self.own_id(), certificate: None };
                        self.submit_due(now_ms, true, op, step);
                    } else {
                        Self::wake(step, backstop_expiry_ms);
                    }
                }
            }
        }
        Self::wake_next(step, now_ms, &[decision_deadline_ms, backstop_expiry_ms]);
    }

    /// The timeout notice due at `now_ms`, `told` notices in: once the deal's
    /// deadline passed undecided (notary mode: no commit certificate; hashlock
    /// mode: the delivery not executed).
    pub fn timeout_notice(&self, now_ms: u64, told: u8) -> Option<crate::policy::TimeoutNotice> {
        let decided = match &self.terms.settlement {
            Settlement::Notary { .. } => self.certificate.as_ref().is_some_and(|c| c.decision == Decision::Commit),
            Settlement::Hashlock { .. } => {
                let delivery = if self.role.own_leg() == LegKind::Delivery { self.own } else { self.counter };
                delivery.status == LegStatus::Executed
            }
        };
        if decided {
            return None;
        }
        crate::policy::timeout_notice(&self.terms, now_ms, told)
    }

    /// The outcome, once nothing can change any more for this party.
    fn settled_outcome(&self) -> Option<Outcome> {
        use LegStatus::*;
        let own_expiry_ms = self.terms.expiry_ms(self.role.own_leg());
        let counter_expiry_ms = self.terms.expiry_ms(self.role.counter_leg());
        let aborted = self.certificate.as_ref().is_some_and(|c| c.decision == Decision::Abort);
        let never_submitted = self.own.submitted_at_ms.is_none();
        // An open leg is final once its network's blocks passed its expiry (the
        // ledger refuses to reserve after it), or when this party never asked and
        // never will. The saga's own clock is not enough: a reservation it sent
        // may have landed in a block it has not read yet.
        let own_final_open = self.own.status == Open
            && (self.chain_time(self.role.own_leg()) >= own_expiry_ms
                || (never_submitted && (self.withholding || aborted)));
        let counter_expired = self.chain_time(self.role.counter_leg()) >= counter_expiry_ms;
        let counter_dead = match self.counter.status {
            Open => aborted || counter_expired,
            Mismatched | Cancelled => true,
            Reserved => match &self.terms.settlement {
                Settlement::Hashlock { .. } => counter_expired,
                Settlement::Notary { .. } => aborted || self.own.status == Cancelled,
            },
            Executed => false,
        };
        match (self.own.status, self.counter.status) {
            (Executed, Executed) => Some(Outcome::Completed),
            (Cancelled, Executed) => Some(Outcome::Windfall),
            // Only a reorganisation that took the own reservation away after
            // its expiry ends a deal so.
            (Open, Executed) if own_final_open => Some(Outcome::Windfall),
            (Executed, _) if counter_dead => Some(Outcome::Lost),
            (Cancelled, _) if counter_dead => Some(Outcome::Refunded),
            _ if own_final_open && counter_dead => Some(Outcome::Refunded),
            _ => None,
        }
    }
}

/// How far along a leg is: Open, then Reserved or Mismatched, then Executed
/// or Cancelled.
fn rank(status: LegStatus) -> u8 {
    match status {
        LegStatus::Open => 0,
        LegStatus::Reserved | LegStatus::Mismatched => 1,
        LegStatus::Executed | LegStatus::Cancelled => 2,
    }
}

/// The reservation request `leg` of `terms` must carry.
pub fn expected_request(terms: &DealTerms, deal_id: DealId, leg: LegKind) -> ReserveRequest {
    let spec = terms.leg(leg);
    let condition = match &terms.settlement {
        Settlement::Hashlock { hash, .. } => Condition::Hashlock(*hash),
        Settlement::Notary { notaries, threshold, .. } if terms.policy.inspection.is_some() => {
            Condition::Inspected { notaries: notaries.clone(), threshold: *threshold }
        }
        Settlement::Notary { notaries, threshold, .. } => {
            Condition::Notary { notaries: notaries.clone(), threshold: *threshold }
        }
    };
    ReserveRequest {
        deal_id,
        leg,
        asset: spec.asset.clone(),
        owner: spec.owner,
        beneficiary: spec.beneficiary,
        keeper: spec.keeper,
        condition,
        expiry_ms: terms.expiry_ms(leg),
    }
}
