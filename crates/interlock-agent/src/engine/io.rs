//! What the engine sends and hears, off its own task: transactions to the
//! gateways or to the chains the party signs for itself, requests to the
//! notaries, registrations, and each
//! gateway's block and deal-notice streams, which reach the engine as inputs.

use super::funds::refusal_worth_telling;
use super::{
    deal_span, leg_word, locked, role_index, signed_deal, AgentError, Engine, Input, Sending, RECONNECT_AFTER,
};
use crate::store::DealState;
use interlock_chain::ChainErrorKind;
use interlock_core::crypto::Vote;
use interlock_core::encoding::{Decode, Encode};
use interlock_core::saga::SagaOutput;
use interlock_core::{DealId, EscrowEvent, EscrowOp, Hash32, NetworkId};
use interlock_ledger::{Op, Transaction};
use interlock_proto::v1;
use interlock_proto::v1::gateway_client::GatewayClient;
use std::time::Duration;
use tokio::sync::mpsc;
use tonic::transport::Channel;

impl Engine {
    pub(super) fn act(&mut self, deal_id: DealId, outputs: Vec<SagaOutput>) -> Result<(), AgentError> {
        for output in outputs {
            match output {
                SagaOutput::Submit { network, op } => {
                    let what = match &op {
                        EscrowOp::Reserve(request) => format!("reserve {}", leg_word(request.leg)),
                        EscrowOp::Execute { .. } => "execute".to_owned(),
                        EscrowOp::Cancel { .. } => "cancel".to_owned(),
                        EscrowOp::Resolve { verdict, .. } => verdict.decision.to_string(),
                    };
                    if let EscrowOp::Reserve(request) = &op {
                        self.diagnose_reservation(deal_id, network, request.leg);
                    }
                    // A refused reservation is told to the party, once per reason.
                    let refusal = match &op {
                        EscrowOp::Reserve(_) => {
                            Some((self.inputs.clone(), format!("{what} on {}", self.network_name(network))))
                        }
                        _ => None,
                    };
                    if let Some(submitter) = self.submitters.get(&network).cloned() {
                        let Some(deal) = self.deals.get(&deal_id) else { continue };
                        let terms = deal.terms.clone();
                        self.say(deal_id, &format!("submits {what} on {}", self.network_name(network)));
                        let (permits, verbose, party) = (self.requests.clone(), self.verbose, self.party.name.clone());
                        tokio::spawn(async move {
                            let Ok(_permit) = permits.acquire_owned().await else { return };
                            // As on a ledger: the saga resubmits what does not land.
                            if let Err(error) = submitter.submit(&terms, &op).await {
                                if verbose {
                                    println!("deal={deal_id} party={party} {what} refused: {error}");
                                }
                                let worth =
                                    !matches!(error.kind, ChainErrorKind::AlreadyDone | ChainErrorKind::RetryLater);
                                if let (true, Some((inputs, attempt))) = (worth, refusal) {
                                    let text = format!("{attempt} refused: {}", error.message);
                                    let _ = inputs.send(Input::Refused { deal_id, text }).await;
                                }
                            }
                        });
                        continue;
                    }
                    let Some(gateway) = self.gateways.get(&network).cloned() else {
                        self.say(deal_id, &format!("cannot {what}: no gateway for network {network}"));
                        continue;
                    };
                    let nonce = self.store.next_nonce(network)?;
                    let transaction = Transaction::sign(&self.key, network, nonce, Op::Escrow(op));
                    self.say(deal_id, &format!("submits {what} on {}", self.network_name(network)));
                    let request = v1::SubmitRequest { transaction_encoded: transaction.to_bytes() };
                    let (permits, verbose) = (self.requests.clone(), self.verbose);
                    let span = deal_span(deal_id, &self.party.name);
                    let submit = async move {
                        let Ok(_permit) = permits.acquire_owned().await else { return };
                        let mut gateway = gateway;
                        // The saga resubmits what does not land; a refusal is news, not a failure.
                        if let Err(status) = gateway.submit(request).await {
                            if verbose {
                                tracing::info!("{what} refused: {}", status.message());
                            }
                            if let (true, Some((inputs, attempt))) = (refusal_worth_telling(&status), refusal) {
                                let text = format!("{attempt} refused: {}", status.message());
                                let _ = inputs.send(Input::Refused { deal_id, text }).await;
                            }
                        }
                    };
                    tokio::spawn(tracing::Instrument::instrument(submit, span));
                }
                SagaOutput::AskNotaries => {
                    let Some(deal) = self.deals.get(&deal_id) else { continue };
                    let signed = signed_deal(&deal.terms, &deal.signatures);
                    let submission = v1::SubmitDealRequest {
                        terms_encoded: signed.terms_encoded,
                        buyer_signature: signed.buyer_signature,
                        seller_signature: signed.seller_signature,
                    };
                    for (index, notary) in self.notaries.iter().enumerate() {
                        // A notary holds an undecided request until it decides:
                        // one request per notary and deal at a time.
                        if !locked(&self.asking).insert((deal_id, index)) {
                            continue;
                        }
                        let (mut notary, submission) = (notary.clone(), submission.clone());
                        let (inputs, asking) = (self.inputs.clone(), self.asking.clone());
                        tokio::spawn(async move {
                            let answer = notary.submit_deal(submission).await;
                            locked(&asking).remove(&(deal_id, index));
                            let Ok(answer) = answer else { return };
                            if let Some(vote) = answer.into_inner().vote {
                                if let Some(decoded) = decode_vote(&vote) {
                                    let _ = inputs.send(Input::Vote(decoded, vote.reason)).await;
                                }
                            }
                        });
                    }
                }
                SagaOutput::Finished(_) => {}
            }
        }
        Ok(())
    }

    /// Deals this party countersigned whose registration a crash may have cut
    /// short: register them again (registration is idempotent).
    pub(super) fn resume_registrations(&self) {
        for (deal_id, deal) in &self.deals {
            let signed = deal.signatures[role_index(deal.role)].is_some();
            if deal.state != DealState::Received || !signed {
                continue;
            }
            if let Ok((gateway, gateway_name)) = self.home_gateway(&deal.terms, deal.role) {
                let sending = Sending { gateway, gateway_name, deal: signed_deal(&deal.terms, &deal.signatures) };
                self.register(*deal_id, sending);
            }
        }
    }

    /// Registers an accepted deal in the background, retrying while the
    /// gateway is unreachable; the engine hears how it went.
    pub(super) fn register(&self, deal_id: DealId, sending: Sending) {
        let inputs = self.inputs.clone();
        let until = self.deals.get(&deal_id).map_or_else(std::time::Instant::now, |deal| {
            // Worth trying until the deal's first deadline: after it, neither party starts.
            let left = match &deal.terms.settlement {
                interlock_core::Settlement::Hashlock { delivery_expiry_ms, .. } => *delivery_expiry_ms,
                interlock_core::Settlement::Notary { decision_deadline_ms, .. } => *decision_deadline_ms,
            };
            std::time::Instant::now() + Duration::from_millis(left.saturating_sub((self.clock)()))
        });
        tokio::spawn(async move {
            let result = register(sending.gateway, sending.deal, until).await;
            let _ = inputs.send(Input::Registered { deal_id, gateway: sending.gateway_name, result }).await;
        });
    }
}

/// Registers a deal at a gateway (registration is idempotent), trying again
/// while the gateway is unreachable or restarting, until `until` passes.
pub(crate) async fn register(
    mut gateway: GatewayClient<Channel>,
    deal: v1::SignedDeal,
    until: std::time::Instant,
) -> Result<(), String> {
    use tonic::Code;
    loop {
        match gateway.register_deal(deal.clone()).await {
            Ok(_) => return Ok(()),
            Err(status) => {
                let refused = matches!(
                    status.code(),
                    Code::InvalidArgument
                        | Code::Unauthenticated
                        | Code::PermissionDenied
                        | Code::FailedPrecondition
                        | Code::NotFound
                        | Code::OutOfRange
                        | Code::ResourceExhausted
                );
                if refused || std::time::Instant::now() >= until {
                    return Err(status.message().to_owned());
                }
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
        }
    }
}

fn decode_vote(vote: &v1::NotaryVote) -> Option<Vote> {
    let deal_id = DealId(Hash32(vote.deal_id.as_slice().try_into().ok()?));
    let decision = match vote.decision.as_str() {
        "commit" => interlock_core::Decision::Commit,
        "abort" => interlock_core::Decision::Abort,
        _ => return None,
    };
    let signature = interlock_core::crypto::RecoverableSignature(vote.signature.as_slice().try_into().ok()?);
    Some(Vote { deal_id, decision, signature })
}

/// Where a stream resumes after a gateway's height or sequence number
/// `value`: `None` when that is beyond what the agent's store keeps as a
/// cursor, so a broken gateway's message is dropped, never wrapped to 0.
fn after(value: u64) -> Option<u64> {
    value.checked_add(1).filter(|next| *next <= interlock_rpc::wire::STORED_INTEGER_MAX)
}

/// Feeds every block of `network` from `from` on to the engine, reconnecting
/// after a broken stream.
pub(super) async fn follow_blocks(
    gateway: GatewayClient<Channel>,
    network: NetworkId,
    from: u64,
    inputs: mpsc::Sender<Input>,
) {
    let open = |from_height| {
        let mut gateway = gateway.clone();
        async move { gateway.stream_blocks(v1::StreamBlocksRequest { from_height }).await }
    };
    follow(network, from, "block height", open, inputs, |block: v1::BlockEvents| {
        let header = block.header?;
        let input = if block.rolled_back {
            Input::RolledBack { network, to: header.height }
        } else {
            let events =
                block.events.iter().filter_map(|event| EscrowEvent::from_bytes(&event.event_encoded).ok()).collect();
            Input::Block { network, height: header.height, timestamp_ms: header.timestamp_ms, events }
        };
        Some((header.height, input))
    })
    .await;
}

/// Feeds the deal notices of one gateway to the engine, from `from` on.
pub(super) async fn follow_notices(
    gateway: GatewayClient<Channel>,
    network: NetworkId,
    from: u64,
    inputs: mpsc::Sender<Input>,
) {
    let open = |from_seq| {
        let mut gateway = gateway.clone();
        async move { gateway.watch_deals(v1::WatchDealsRequest { from_seq }).await }
    };
    follow(network, from, "notice seq", open, inputs, |notice: v1::DealNotice| {
        Some((notice.seq, Input::Notice { network, notice }))
    })
    .await;
}

/// Reads one of a gateway's streams of `network` from position `from` on,
/// opening it again after it breaks: `input` turns each message into its
/// position (`what`, as a log line names it) and the engine's input, or skips
/// it. A position past what is stored ends the stream and opens it again.
/// Returns once the engine is gone.
async fn follow<M, Opened>(
    network: NetworkId,
    mut from: u64,
    what: &str,
    open: impl Fn(u64) -> Opened,
    inputs: mpsc::Sender<Input>,
    input: impl Fn(M) -> Option<(u64, Input)>,
) where
    Opened: std::future::Future<Output = Result<tonic::Response<tonic::Streaming<M>>, tonic::Status>>,
{
    loop {
        if let Ok(response) = open(from).await {
            let mut stream = response.into_inner();
            while let Ok(Some(message)) = stream.message().await {
                let Some((position, input)) = input(message) else { continue };
                let Some(next) = after(position) else {
                    tracing::warn!(%network, "the gateway sent {what} {position}: out of range, reconnecting");
                    break;
                };
                if inputs.send(input).await.is_err() {
                    return;
                }
                from = next;
            }
        }
        tokio::time::sleep(RECONNECT_AFTER).await;
    }
}

#[cfg(test)]
mod stream_cursor_tests {
    use super::after;
    use interlock_rpc::wire::STORED_INTEGER_MAX;

    #[test]
    fn a_gateways_height_or_seq_never_wraps_the_resume_point() {
        assert_eq!(after(0), Some(1));
        assert_eq!(after(STORED_INTEGER_MAX - 1), Some(STORED_INTEGER_MAX));
        assert_eq!(after(STORED_INTEGER_MAX), None);
        assert_eq!(after(u64::MAX), None);
    }
}
