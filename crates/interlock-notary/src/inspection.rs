//! The notary's side of inspection periods: for each committed deal that has
//! one, the core's [`VerdictDeal`] (release once the window closes undisputed;
//! a party's dispute inside it waits for this notary's operator), with the
//! dispute written to the log before it is acknowledged and the verdict
//! before it is signed. Verdict votes are read like commit votes
//! (`GetVerdict`), by the parties and by the keepers that present them.

use crate::{locked, NotaryLog, NotaryService};
use interlock_core::crypto::{Ed25519Signature, Token, Vote};
use interlock_core::verdict::{Dispute, DisputeError, VerdictDeal, VerdictOutput};
use interlock_core::{DealId, DealTerms, Decision, EscrowEvent, Hash32, PartyId, Settlement};
use interlock_proto::v1;
use interlock_rpc::wire;
use std::sync::Arc;
use tonic::Status;

impl NotaryService {
    /// Opens the window of a deal this notary committed, if it has one and
    /// the window is not open already.
    pub(crate) fn open_window(&self, terms: &Arc<DealTerms>) {
        let Some(deal) = VerdictDeal::open(terms.clone()) else { return };
        locked(&self.shared.joinable).remove(&deal.deal_id());
        locked(&self.shared.verdicts).entry(deal.deal_id()).or_insert(deal);
    }

    /// This notary aborted `terms`' deal: if it has an inspection period,
    /// the others may still have committed it, and until its backstop this
    /// notary watches for its legs held (`join_window`).
    pub(crate) fn may_join(&self, terms: &DealTerms) {
        if let (Some(_), Settlement::Notary { backstop_expiry_ms, .. }) = (terms.policy.inspection, &terms.settlement) {
            locked(&self.shared.joinable).insert(terms.id(), *backstop_expiry_ms);
        }
    }

    /// A leg of a deal this notary did not commit (it aborted, or decided
    /// before the reservations reached it) is held with a valid commit
    /// certificate of the deal's notaries: the others committed it, and this
    /// notary takes part in its verdict. Without it, notaries that saw a
    /// dispute and those that did not could split with no k agreeing.
    pub(crate) fn join_window(&self, event: &EscrowEvent) {
        let EscrowEvent::Held { deal_id, token: Token::Certificate(commit), .. } = event else { return };
        // Every held leg of a deal this notary committed comes by here: its
        // window is open, and there is nothing to check or write.
        if locked(&self.shared.verdicts).contains_key(deal_id) {
            return;
        }
        let terms = match locked(&self.shared.deals).get(deal_id) {
            Some(deal) if deal.terms().policy.inspection.is_some() => deal.terms().clone(),
            _ => return,
        };
        let Settlement::Notary { notaries, threshold, .. } = &terms.settlement else { return };
        if commit.verify(*deal_id, Decision::Commit, notaries, *threshold).is_ok() {
            self.open_window(&terms);
            // Written ahead of the stream's cursor (one writer, in order): a
            // restart past this block opens the window again.
            let deal_id = *deal_id;
            drop(self.shared.writer.submit(move |log: &mut NotaryLog| log.record_joined(deal_id)));
        }
    }

    /// Whether a deal this notary knows could still be held without its
    /// window open here: one with an inspection period that it did not
    /// commit, before its backstop expiry. The notary follows the networks
    /// for their held legs until then.
    /// Called by the idle follower every few milliseconds, so it reads only
    /// the (few) deals waiting to be joined, never every deal held.
    pub(crate) fn awaiting_held(&self) -> bool {
        let now_ms = (self.shared.clock)();
        let mut joinable = locked(&self.shared.joinable);
        joinable.retain(|_, backstop_ms| now_ms < *backstop_ms);
        !joinable.is_empty()
    }

    /// Restores the windows of committed deals from the log, with their
    /// recorded disputes and verdicts; votes for recorded verdicts are signed again.
    pub(crate) fn restore_windows(&self, log: &NotaryLog) -> Result<(), interlock_rpc::store::StoreError> {
        let recorded: std::collections::HashMap<_, _> =
            log.inspections()?.into_iter().map(|(deal_id, dispute, verdict)| (deal_id, (dispute, verdict))).collect();
        let joined = log.joined()?;
        // Windows of the deals it committed, and of those it joined (or
        // recorded a dispute or verdict of); the others it aborted may still
        // be joined.
        let mut committed: Vec<Arc<DealTerms>> = Vec::new();
        for deal in locked(&self.shared.deals).values() {
            let deal_id = deal.deal_id();
            match deal.decision() {
                Some(Decision::Commit) => committed.push(deal.terms().clone()),
                _ if recorded.contains_key(&deal_id) || joined.contains(&deal_id) => {
                    committed.push(deal.terms().clone())
                }
                Some(Decision::Abort) => self.may_join(deal.terms()),
                _ => {}
            }
        }
        let mut verdicts = locked(&self.shared.verdicts);
        let mut votes = locked(&self.shared.verdict_votes);
        for terms in committed {
            let (dispute, verdict) = recorded.get(&terms.id()).cloned().unwrap_or((None, None));
            let Some(deal) = VerdictDeal::restore(terms, dispute, verdict) else { continue };
            if let Some(vote) = deal.vote(&self.shared.key) {
                votes.insert(deal.deal_id(), vote);
            }
            verdicts.insert(deal.deal_id(), deal);
        }
        Ok(())
    }

    /// Releases the undisputed deals whose window has closed.
    pub(crate) async fn tick_windows(&self, now_ms: u64) {
        let due: Vec<(DealId, Vec<VerdictOutput>)> = locked(&self.shared.verdicts)
            .iter_mut()
            .filter(|(_, deal)| deal.wake_at_ms().is_some_and(|at| now_ms >= at))
            .map(|(id, deal)| (*id, deal.tick(now_ms)))
            .collect();
        for (deal_id, outputs) in due {
            if let Err(status) = self.settle_verdict(deal_id, outputs).await {
                eprintln!("notary: {}", status.message());
            }
        }
    }

    /// Writes what `outputs` ask to record, then signs the verdict.
    async fn settle_verdict(&self, deal_id: DealId, outputs: Vec<VerdictOutput>) -> Result<(), Status> {
        for output in outputs {
            match output {
                VerdictOutput::RecordDispute(dispute) => {
                    let now_ms = (self.shared.clock)();
                    let recorded = dispute.clone();
                    self.shared
                        .writer
                        .write(move |log: &mut NotaryLog| log.record_dispute(&recorded, now_ms))
                        .await
                        .map_err(|error| {
                            Status::internal(format!("cannot record the dispute of {deal_id}: {error}"))
                        })?;
                    interlock_rpc::metrics::metrics().deal_event("notary", "disputed");
                    self.pass_on(dispute);
                }
                VerdictOutput::Record { decision, .. } => {
                    self.shared
                        .writer
                        .write(move |log: &mut NotaryLog| log.record_verdict(deal_id, decision))
                        .await
                        .map_err(|error| {
                            Status::internal(format!("cannot record the verdict of {deal_id}: {error}"))
                        })?;
                    interlock_rpc::metrics::metrics().deal_event("notary", decision.as_str());
                    let mut verdicts = locked(&self.shared.verdicts);
                    let deal = verdicts.get_mut(&deal_id).expect("a deciding window is held");
                    for signed in deal.recorded(&self.shared.key) {
                        if let VerdictOutput::Vote(vote) = signed {
                            locked(&self.shared.verdict_votes).insert(deal_id, vote);
                        }
                    }
                }
                VerdictOutput::Vote(vote) => {
                    locked(&self.shared.verdict_votes).insert(deal_id, vote);
                }
            }
        }
        Ok(())
    }

    fn status_of(&self, deal_id: DealId) -> Result<v1::InspectionStatus, Status> {
        let verdicts = locked(&self.shared.verdicts);
        let Some(deal) = verdicts.get(&deal_id) else {
            // Locks are taken deals first, then windows: never the other way.
            drop(verdicts);
            return Err(self.no_window(deal_id));
        };
        let state = match deal.verdict() {
            Some(decision) => decision.as_str(),
            None if deal.dispute().is_some() => "disputed",
            None => "open",
        };
        Ok(v1::InspectionStatus {
            deal_id: deal_id.0 .0.to_vec(),
            state: state.into(),
            ends_ms: deal.ends_ms(),
            reason: deal.dispute().map(|dispute| dispute.reason.clone()).unwrap_or_default(),
        })
    }

    /// Why a deal has no window here: unknown, not committed (yet), or no
    /// inspection period in its terms.
    fn no_window(&self, deal_id: DealId) -> Status {
        let deals = locked(&self.shared.deals);
        match deals.get(&deal_id) {
            None => Status::not_found(format!("this notary has no deal {deal_id}")),
            Some(deal) if deal.terms().policy.inspection.is_none() => Status::failed_precondition(format!(
                "deal {deal_id} has no inspection period: its legs paid out when they were executed"
            )),
            Some(deal) => match deal.decision() {
                Some(decision) => Status::failed_precondition(format!(
                    "this notary recorded {decision} on deal {deal_id}: only a committed deal is held for inspection"
                )),
                None => Status::failed_precondition(format!(
                    "deal {deal_id} is not decided yet: its window opens when the notaries commit it"
                )),
            },
        }
    }

    pub(crate) async fn raise_dispute(&self, request: v1::RaiseDisputeRequest) -> Result<v1::InspectionStatus, Status> {
        let deal_id = DealId(Hash32(wire::bytes32("deal_id", &request.deal_id)?));
        let by = PartyId(wire::bytes32("party", &request.party)?);
        let signature: [u8; 64] = request.signature.as_slice().try_into().map_err(|_| {
            Status::invalid_argument(format!("signature: expected 64 bytes, found {}", request.signature.len()))
        })?;
        let dispute = Dispute { deal_id, by, reason: request.reason, signature: Ed25519Signature(signature) };
        let now_ms = (self.shared.clock)();
        let outputs = {
            let mut verdicts = locked(&self.shared.verdicts);
            let Some(deal) = verdicts.get_mut(&deal_id) else {
                drop(verdicts);
                return Err(self.no_window(deal_id));
            };
            deal.raise(&dispute, now_ms).map_err(dispute_status)?
        };
        self.settle_verdict(deal_id, outputs).await?;
        self.status_of(deal_id)
    }

    pub(crate) async fn decide_dispute(
        &self,
        request: v1::DecideDisputeRequest,
    ) -> Result<v1::InspectionStatus, Status> {
        let deal_id = DealId(Hash32(wire::bytes32("deal_id", &request.deal_id)?));
        let decision = match request.decision.as_str() {
            "release" => Decision::Release,
            "reverse" => Decision::Reverse,
            other => {
                return Err(Status::invalid_argument(format!(
                    "decision {}: expected release or reverse",
                    interlock_rpc::access::quote(other)
                )))
            }
        };
        let outputs = {
            let mut verdicts = locked(&self.shared.verdicts);
            let Some(deal) = verdicts.get_mut(&deal_id) else {
                drop(verdicts);
                return Err(self.no_window(deal_id));
            };
            deal.decide(decision).map_err(dispute_status)?
        };
        self.settle_verdict(deal_id, outputs).await?;
        self.status_of(deal_id)
    }

    pub(crate) fn get_inspection(&self, request: v1::GetVoteRequest) -> Result<v1::InspectionStatus, Status> {
        let deal_id = DealId(Hash32(wire::bytes32("deal_id", &request.deal_id)?));
        self.status_of(deal_id)
    }

    pub(crate) fn get_verdict(&self, request: v1::GetVoteRequest) -> Result<v1::NotaryVote, Status> {
        let deal_id = DealId(Hash32(wire::bytes32("deal_id", &request.deal_id)?));
        let vote: Option<Vote> = locked(&self.shared.verdict_votes).get(&deal_id).copied();
        match vote {
            Some(vote) => Ok(self.vote_message(&vote)),
            None => {
                let status = self.status_of(deal_id)?;
                Err(Status::failed_precondition(format!(
                    "deal {deal_id} has no verdict here yet: its window is {} and closes at {} ms",
                    status.state, status.ends_ms
                )))
            }
        }
    }
}

/// A refused dispute or decision as a status: who may not, is
/// `PERMISSION_DENIED`; a forged signature `UNAUTHENTICATED`; not now
/// `FAILED_PRECONDITION`; malformed `INVALID_ARGUMENT`.
fn dispute_status(error: DisputeError) -> Status {
    let message = error.to_string();
    match error {
        DisputeError::NotAllowed { .. } => Status::permission_denied(message),
        DisputeError::Signature(_) => Status::unauthenticated(message),
        DisputeError::ReasonTooLong { .. } | DisputeError::OtherDeal { .. } | DisputeError::NotAVerdict(_) => {
            Status::invalid_argument(message)
        }
        DisputeError::NoInspection(_)
        | DisputeError::WindowClosed { .. }
        | DisputeError::Decided(_)
        | DisputeError::NotDisputed { .. } => Status::failed_precondition(message),
    }
}
