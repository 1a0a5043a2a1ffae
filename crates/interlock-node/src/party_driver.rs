//! Drives a deal's sagas against real services: both networks' ledger nodes
//! (block streams in, signed transactions out) and the notaries (the signed deal
//! in, votes out). Each party's saga is written to its `AgentStore` before the
//! driver acts on what a step returned. The sandbox's `deal` runs through this;
//! the party agent service will, one party per process.

use crate::stores::AgentStore;
use interlock_core::crypto::{PartyKey, Secret, Vote};
use interlock_core::encoding::{encode_terms, Decode, Encode};
use interlock_core::saga::{Outcome, Role, Saga, SagaOutput, Step};
use interlock_core::{DealTerms, EscrowEvent, NetworkId};
use interlock_ledger::{Op, Transaction};
use interlock_proto::v1;
use interlock_proto::v1::ledger_node_client::LedgerNodeClient;
use interlock_proto::v1::notary_client::NotaryClient;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tonic::transport::Channel;

/// How often the driver steps the sagas when nothing arrives.
const STEP_INTERVAL: Duration = Duration::from_millis(50);
/// Buffered inputs from the streams and the notaries.
const INPUTS_BUFFER: usize = 1_024;

/// One party: its key, its store and its saga.
pub struct Party {
    pub key: PartyKey,
    pub store: AgentStore,
    pub saga: Saga,
}

enum Input {
    Block { network: NetworkId, height: u64, timestamp_ms: u64, events: Vec<EscrowEvent> },
    Vote(Vote),
}

#[derive(Debug, thiserror::Error)]
pub enum DriveError {
    #[error("deal did not finish within {0:?}")]
    Timeout(Duration),
    #[error("no ledger node for {0}")]
    NoLedger(NetworkId),
    #[error(transparent)]
    Store(#[from] crate::stores::StoreError),
}

/// The clock the sagas read, and how long the deal may take before the driver gives up.
#[derive(Clone, Copy)]
pub struct Timing {
    pub clock: fn() -> u64,
    pub time_max: Duration,
}

pub struct Services {
    pub ledgers: HashMap<NetworkId, LedgerNodeClient<Channel>>,
    pub notaries: Vec<NotaryClient<Channel>>,
}

/// Starts the buyer's and the seller's sagas for `terms` (the buyer with its
/// hashlock secret) and runs them to their outcomes. `say` hears each step.
pub async fn drive(
    terms: DealTerms,
    secret: Option<Secret>,
    buyer: (PartyKey, AgentStore),
    seller: (PartyKey, AgentStore),
    services: &Services,
    timing: Timing,
    say: &(dyn Fn(String) + Sync),
) -> Result<(Outcome, Outcome), DriveError> {
    let Timing { clock, time_max } = timing;
    let terms = Arc::new(terms);
    let deal_id = terms.id();
    let signatures = (buyer.0.sign_deal(deal_id), seller.0.sign_deal(deal_id));
    let mut parties = [
        Party {
            saga: Saga::new(Role::Buyer, terms.clone(), secret).expect("checked terms"),
            key: buyer.0,
            store: buyer.1,
        },
        Party {
            saga: Saga::new(Role::Seller, terms.clone(), None).expect("checked terms"),
            key: seller.0,
            store: seller.1,
        },
    ];
    let (sender, mut inputs) = mpsc::channel(INPUTS_BUFFER);
    let mut followers = Vec::new();
    for network in [terms.payment.network, terms.delivery.network] {
        if followers.iter().any(|(n, _)| *n == network) {
            continue;
        }
        let client = services.ledgers.get(&network).cloned().ok_or(DriveError::NoLedger(network))?;
        let from = parties[0].store.cursor(network)? + 1;
        followers.push((network, tokio::spawn(follow(client, network, from, sender.clone()))));
    }
    let submission = v1::SubmitDealRequest {
        terms_encoded: encode_terms(&terms),
        buyer_signature: signatures.0 .0.to_vec(),
        seller_signature: signatures.1 .0.to_vec(),
    };
    let started = tokio::time::Instant::now();
    let mut ticker = tokio::time::interval(STEP_INTERVAL);
    let result = loop {
        if parties.iter().all(|p| p.saga.outcome().is_some()) {
            break Ok((parties[0].saga.outcome().expect("ended"), parties[1].saga.outcome().expect("ended")));
        }
        if started.elapsed() > time_max {
            break Err(DriveError::Timeout(time_max));
        }
        let input = tokio::select! {
            input = inputs.recv() => input,
            _ = ticker.tick() => None,
        };
        let now = clock();
        for party in parties.iter_mut() {
            let step = match &input {
                Some(Input::Block { network, timestamp_ms, events, .. }) => {
                    let mut outputs = Vec::new();
                    for event in events {
                        outputs.extend(party.saga.on_chain_event(now, event).outputs);
                    }
                    let mut step = party.saga.on_chain_time(now, *network, *timestamp_ms);
                    outputs.append(&mut step.outputs);
                    Step { outputs, wake_at_ms: step.wake_at_ms }
                }
                Some(Input::Vote(vote)) => party.saga.on_vote(now, vote),
                None => party.saga.step(now),
            };
            // Persist before acting on it.
            party.store.save(&[&party.saga])?;
            act(party, step.outputs, services, &submission, &sender, say).await?;
            // The block is fully processed by this party's saga: resume after it.
            if let Some(Input::Block { network, height, .. }) = &input {
                party.store.set_cursor(*network, *height)?;
            }
        }
    };
    for (_, follower) in followers {
        follower.abort();
    }
    result
}

async fn act(
    party: &mut Party,
    outputs: Vec<SagaOutput>,
    services: &Services,
    submission: &v1::SubmitDealRequest,
    votes: &mpsc::Sender<Input>,
    say: &(dyn Fn(String) + Sync),
) -> Result<(), DriveError> {
    let who = match party.saga.role() {
        Role::Buyer => "buyer",
        Role::Seller => "seller",
    };
    for output in outputs {
        match output {
            SagaOutput::Submit { network, op } => {
                let nonce = party.store.next_nonce(network)?;
                let what = match &op {
                    interlock_core::EscrowOp::Reserve(request) => format!("reserve {}", request.leg),
                    interlock_core::EscrowOp::Execute { .. } => "execute".into(),
                    interlock_core::EscrowOp::Cancel { .. } => "cancel".into(),
                };
                let tx = Transaction::sign(&party.key, network, nonce, Op::Escrow(op));
                let mut client = services.ledgers.get(&network).cloned().ok_or(DriveError::NoLedger(network))?;
                let request = v1::SubmitTransactionRequest { transaction_encoded: tx.to_bytes(), wait: false };
                match client.submit_transaction(request).await {
                    Ok(_) => say(format!("{who}: submitted {what} on {network}")),
                    // The saga resubmits what does not land; a refusal is news, not a failure.
                    Err(status) => say(format!("{who}: {what} on {network} refused: {}", status.message())),
                }
            }
            SagaOutput::AskNotaries => {
                for notary in &services.notaries {
                    let mut notary = notary.clone();
                    let sender = votes.clone();
                    let submission = submission.clone();
                    tokio::spawn(async move {
                        let Ok(answer) = notary.submit_deal(submission).await else { return };
                        if let Some(vote) = answer.into_inner().vote.and_then(|v| decode_vote(&v)) {
                            let _ = sender.send(Input::Vote(vote)).await;
                        }
                    });
                }
            }
            SagaOutput::Finished(outcome) => say(format!("{who}: deal ended {outcome:?}")),
        }
    }
    Ok(())
}

fn decode_vote(vote: &v1::NotaryVote) -> Option<Vote> {
    let deal_id = interlock_core::DealId(interlock_core::Hash32(vote.deal_id.as_slice().try_into().ok()?));
    let decision = match vote.decision.as_str() {
        "commit" => interlock_core::Decision::Commit,
        "abort" => interlock_core::Decision::Abort,
        _ => return None,
    };
    let signature = interlock_core::crypto::RecoverableSignature(vote.signature.as_slice().try_into().ok()?);
    Some(Vote { deal_id, decision, signature })
}

/// Feeds every block of `network` from `from` on into `sender`, reconnecting
/// after a broken stream.
async fn follow(client: LedgerNodeClient<Channel>, network: NetworkId, mut from: u64, sender: mpsc::Sender<Input>) {
    loop {
        let mut client = client.clone();
        if let Ok(response) = client.stream_blocks(v1::StreamBlocksRequest { from_height: from }).await {
            let mut stream = response.into_inner();
            while let Ok(Some(block)) = stream.message().await {
                let Some(header) = block.header else { continue };
                let events = block
                    .events
                    .iter()
                    .filter_map(|event| EscrowEvent::from_bytes(&event.event_encoded).ok())
                    .collect();
                let input = Input::Block { network, height: header.height, timestamp_ms: header.timestamp_ms, events };
                if sender.send(input).await.is_err() {
                    return;
                }
                from = header.height + 1;
            }
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}
