//! Drives deals' sagas against real services: both networks' ledger nodes
//! (block streams in, signed transactions out) and the notaries (the signed deal
//! in, votes out), for a buyer and a seller, many deals at once. Each saga is
//! written to its party's `AgentStore` before the driver acts on what a step
//! returned, and each party's chain cursor after the block is processed. The
//! sandbox's `deal` runs through this; the party agent service will, one party
//! per process.

use crate::stores::AgentStore;
use interlock_core::crypto::{PartyKey, Secret, Vote};
use interlock_core::encoding::{encode_terms, Decode, Encode};
use interlock_core::saga::{Outcome, Role, Saga, SagaOutput};
use interlock_core::{DealId, DealTerms, EscrowEvent, NetworkId};
use interlock_ledger::{Op, Transaction};
use interlock_proto::v1;
use interlock_proto::v1::ledger_node_client::LedgerNodeClient;
use interlock_proto::v1::notary_client::NotaryClient;
use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tonic::transport::Channel;

/// How often the driver steps the sagas when nothing arrives.
const STEP_INTERVAL: Duration = Duration::from_millis(50);
/// Buffered inputs from the streams and the notaries.
const INPUTS_BUFFER: usize = 4_096;
/// Most deals one driver runs at once.
pub const CONCURRENCY_MAX: usize = 10_000;

enum Input {
    Block { network: NetworkId, height: u64, timestamp_ms: u64, events: Vec<EscrowEvent> },
    Vote(Vote),
}

#[derive(Debug, thiserror::Error)]
pub enum DriveError {
    #[error("deals did not all finish within {0:?}")]
    Timeout(Duration),
    #[error("no ledger node for {0}")]
    NoLedger(NetworkId),
    #[error("invalid deal terms: {0}")]
    Terms(#[from] interlock_core::saga::SagaError),
    #[error(transparent)]
    Store(#[from] crate::stores::StoreError),
}

/// The clock the sagas read, and how long the deals may take before the driver gives up.
#[derive(Clone, Copy)]
pub struct Timing {
    pub clock: fn() -> u64,
    pub time_max: Duration,
}

pub struct Services {
    pub ledgers: HashMap<NetworkId, LedgerNodeClient<Channel>>,
    pub notaries: Vec<NotaryClient<Channel>>,
}

/// A deal to run: its terms, and the buyer's secret in hashlock mode.
pub struct DealRequest {
    pub terms: DealTerms,
    pub secret: Option<Secret>,
}

/// How a deal ended, and how long it took from agreement to both outcomes.
#[derive(Clone, Debug)]
pub struct Finished {
    pub deal_id: DealId,
    pub buyer: Outcome,
    pub seller: Outcome,
    pub latency: Duration,
}

/// One party: its key and its store.
pub struct Side {
    pub key: PartyKey,
    pub store: AgentStore,
}

struct Live {
    submission: v1::SubmitDealRequest,
    /// Buyer's and seller's sagas, and the record last written for each.
    sagas: [Saga; 2],
    saved: [Vec<u8>; 2],
    started: Instant,
}

const ROLES: [Role; 2] = [Role::Buyer, Role::Seller];

/// Runs one deal to both outcomes.
pub async fn drive(
    terms: DealTerms,
    secret: Option<Secret>,
    sides: [Side; 2],
    services: &Services,
    timing: Timing,
    say: &(dyn Fn(String) + Sync),
) -> Result<(Outcome, Outcome), DriveError> {
    let finished = drive_many(vec![DealRequest { terms, secret }], 1, sides, services, timing, say).await?;
    let deal = finished.into_iter().next().expect("one deal ran");
    Ok((deal.buyer, deal.seller))
}

/// Runs `deals`, at most `concurrency` at once, to both outcomes each.
pub async fn drive_many(
    deals: Vec<DealRequest>,
    concurrency: usize,
    mut sides: [Side; 2],
    services: &Services,
    timing: Timing,
    say: &(dyn Fn(String) + Sync),
) -> Result<Vec<Finished>, DriveError> {
    let concurrency = concurrency.clamp(1, CONCURRENCY_MAX);
    let mut pending: VecDeque<DealRequest> = deals.into();
    let (sender, mut inputs) = mpsc::channel(INPUTS_BUFFER);
    let mut followers = Vec::new();
    for (network, client) in &services.ledgers {
        let from = sides[0].store.cursor(*network)?.min(sides[1].store.cursor(*network)?) + 1;
        followers.push(tokio::spawn(follow(client.clone(), *network, from, sender.clone())));
    }
    let started = Instant::now();
    let mut ticker = tokio::time::interval(STEP_INTERVAL);
    let mut live: HashMap<DealId, Live> = HashMap::new();
    let mut finished = Vec::new();
    let result = loop {
        while live.len() < concurrency {
            let Some(request) = pending.pop_front() else { break };
            let (deal_id, deal) = start(request, &sides)?;
            live.insert(deal_id, deal);
        }
        if live.is_empty() {
            break Ok(finished);
        }
        if started.elapsed() > timing.time_max {
            break Err(DriveError::Timeout(timing.time_max));
        }
        let input = tokio::select! {
            input = inputs.recv() => input,
            _ = ticker.tick() => None,
        };
        let now = (timing.clock)();
        let (outputs, touched) = feed(&mut live, input.as_ref(), now);
        // Persist before acting on it: every saga that was told something (an
        // event, a vote) or asks for something. A saga that only saw time pass
        // relearns it from the blocks after its cursor.
        for (index, side) in sides.iter_mut().enumerate() {
            let changed: Vec<&Saga> = live
                .iter_mut()
                .filter(|(deal_id, _)| touched.contains(&(**deal_id, index)))
                .filter_map(|(_, deal)| {
                    let record = deal.sagas[index].encode_record();
                    (record != deal.saved[index]).then(|| {
                        deal.saved[index] = record;
                        &deal.sagas[index]
                    })
                })
                .collect();
            if !changed.is_empty() {
                side.store.save(&changed)?;
            }
        }
        for (deal_id, index, outputs) in outputs {
            let submission = &live[&deal_id].submission;
            act(&mut sides[index], ROLES[index], outputs, services, submission, &sender, say).await?;
        }
        if let Some(Input::Block { network, height, .. }) = &input {
            // Every saga has seen this block: resume after it.
            for side in sides.iter_mut() {
                side.store.set_cursor(*network, *height)?;
            }
        }
        let done: Vec<DealId> = live
            .iter()
            .filter(|(_, deal)| deal.sagas.iter().all(|saga| saga.outcome().is_some()))
            .map(|(id, _)| *id)
            .collect();
        for deal_id in done {
            let deal = live.remove(&deal_id).expect("listed");
            finished.push(Finished {
                deal_id,
                buyer: deal.sagas[0].outcome().expect("ended"),
                seller: deal.sagas[1].outcome().expect("ended"),
                latency: deal.started.elapsed(),
            });
        }
    };
    for follower in followers {
        follower.abort();
    }
    result
}

fn start(request: DealRequest, sides: &[Side; 2]) -> Result<(DealId, Live), DriveError> {
    let terms = Arc::new(request.terms);
    let deal_id = terms.id();
    let submission = v1::SubmitDealRequest {
        terms_encoded: encode_terms(&terms),
        buyer_signature: sides[0].key.sign_deal(deal_id).0.to_vec(),
        seller_signature: sides[1].key.sign_deal(deal_id).0.to_vec(),
    };
    let sagas = [Saga::new(Role::Buyer, terms.clone(), request.secret)?, Saga::new(Role::Seller, terms, None)?];
    Ok((deal_id, Live { submission, sagas, saved: [Vec::new(), Vec::new()], started: Instant::now() }))
}

type Outputs = Vec<(DealId, usize, Vec<SagaOutput>)>;

/// Feeds one input (or the passing of time) to the sagas it concerns; returns
/// what each asked for, and which sagas were told something or asked.
fn feed(
    live: &mut HashMap<DealId, Live>,
    input: Option<&Input>,
    now: u64,
) -> (Outputs, std::collections::HashSet<(DealId, usize)>) {
    let mut outputs = Vec::new();
    let mut touched = std::collections::HashSet::new();
    match input {
        Some(Input::Block { network, timestamp_ms, events, .. }) => {
            for event in events {
                if let Some(deal) = live.get_mut(&event.deal_id()) {
                    for (index, saga) in deal.sagas.iter_mut().enumerate() {
                        touched.insert((event.deal_id(), index));
                        outputs.push((event.deal_id(), index, saga.on_chain_event(now, event).outputs));
                    }
                }
            }
            for (deal_id, deal) in live.iter_mut() {
                for (index, saga) in deal.sagas.iter_mut().enumerate() {
                    outputs.push((*deal_id, index, saga.on_chain_time(now, *network, *timestamp_ms).outputs));
                }
            }
        }
        Some(Input::Vote(vote)) => {
            if let Some(deal) = live.get_mut(&vote.deal_id) {
                for (index, saga) in deal.sagas.iter_mut().enumerate() {
                    touched.insert((vote.deal_id, index));
                    outputs.push((vote.deal_id, index, saga.on_vote(now, vote).outputs));
                }
            }
        }
        None => {
            for (deal_id, deal) in live.iter_mut() {
                for (index, saga) in deal.sagas.iter_mut().enumerate() {
                    outputs.push((*deal_id, index, saga.step(now).outputs));
                }
            }
        }
    }
    outputs.retain(|(_, _, list)| !list.is_empty());
    touched.extend(outputs.iter().map(|(deal_id, index, _)| (*deal_id, *index)));
    (outputs, touched)
}

async fn act(
    side: &mut Side,
    role: Role,
    outputs: Vec<SagaOutput>,
    services: &Services,
    submission: &v1::SubmitDealRequest,
    votes: &mpsc::Sender<Input>,
    say: &(dyn Fn(String) + Sync),
) -> Result<(), DriveError> {
    let who = match role {
        Role::Buyer => "buyer",
        Role::Seller => "seller",
    };
    for output in outputs {
        match output {
            SagaOutput::Submit { network, op } => {
                let nonce = side.store.next_nonce(network)?;
                let what = match &op {
                    interlock_core::EscrowOp::Reserve(request) => format!("reserve {}", request.leg),
                    interlock_core::EscrowOp::Execute { .. } => "execute".into(),
                    interlock_core::EscrowOp::Cancel { .. } => "cancel".into(),
                };
                let tx = Transaction::sign(&side.key, network, nonce, Op::Escrow(op));
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
    let deal_id = DealId(interlock_core::Hash32(vote.deal_id.as_slice().try_into().ok()?));
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
