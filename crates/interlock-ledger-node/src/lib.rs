//! The ledger node: one network's sequencer behind the `LedgerNode` gRPC
//! service. A producer task seals a block every interval (or a heartbeat block
//! when idle), commits it to SQLite, and only then tells waiters and streams.
//! Its keeper, signing with the operator key, cancels expired reservations.
//!
//! Open a [`LedgerNodeService`], spawn its [`produce`](LedgerNodeService::produce)
//! task, and [`serve`] it.

// Integers from peers, chains and files are converted with `try_from` and
// checked arithmetic; a cast that could truncate, wrap or drop a sign is a
// build error (an `allow` on the smallest item says why a cast is safe).
#![deny(clippy::cast_possible_truncation, clippy::cast_possible_wrap, clippy::cast_sign_loss)]

pub mod platform;

pub use platform::{LedgerConfig, LedgerPlatform, NodeFollower, NodeSubmitter};

use interlock_core::crypto::PartyKey;
use interlock_core::{Address, Hash32, ReservationId};
use interlock_identity::Directory;
use interlock_ledger::{BlockHeader, Ledger, LedgerError, LedgerEvent, Op, SqliteStore, Transaction, TxId};
use interlock_proto::v1;
use interlock_proto::v1::ledger_node_server::{LedgerNode, LedgerNodeServer};
use interlock_rpc::access::{Access, Home};
use interlock_rpc::server::{ServeError, TlsFiles, MESSAGE_LEN_MAX};
use interlock_rpc::status::ledger_status;
use interlock_rpc::wire;
use std::collections::{HashMap, VecDeque};
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::sync::{broadcast, mpsc, watch};
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status};

/// Outcomes of recent transactions kept for callers that wait on them.
const OUTCOMES_MAX: usize = 200_000;
/// Committed blocks buffered for live streams before a slow one must catch up from disk.
const BLOCKS_BUFFER: usize = 1_024;
/// Messages buffered per stream.
const STREAM_BUFFER: usize = 256;
/// Longest a `wait`ing submit waits.
const WAIT_MAX: Duration = Duration::from_secs(30);

/// How the producer paces blocks.
#[derive(Clone, Copy, Debug)]
pub struct Pace {
    /// How often a block is sealed when transactions wait.
    pub block_interval: Duration,
    /// How often an idle network still seals an (empty) block.
    pub heartbeat: Duration,
}

impl Default for Pace {
    fn default() -> Pace {
        Pace { block_interval: Duration::from_millis(50), heartbeat: Duration::from_millis(500) }
    }
}

/// A committed block as streams see it.
#[derive(Debug)]
struct Committed {
    header: BlockHeader,
    events: Vec<LedgerEvent>,
}

/// Cancels expired reservations so every deal ends once its deadlines pass,
/// with nobody online to ask (invariant 7). Anyone may cancel after the expiry,
/// and the asset always returns to its owner, so the keeper needs no trust.
struct Keeper {
    key: PartyKey,
    last_nonce: u64,
    /// When each reservation's cancel was last sent, so one is sent per interval.
    sent_ms: HashMap<ReservationId, u64>,
}

/// Most cancels the keeper adds to one block.
const KEEPER_BATCH_MAX: usize = 1_024;
/// How long the keeper waits before sending a cancel again.
const KEEPER_RETRY_MS: u64 = 1_000;

impl Keeper {
    fn cancel_expired(&mut self, ledger: &mut Ledger<SqliteStore>, now_ms: u64) {
        self.sent_ms.retain(|id, _| {
            ledger.state().reservation(id).is_some_and(|r| r.state == interlock_core::ReservationState::Reserved)
        });
        let expired: Vec<ReservationId> = ledger.state().expired_open(now_ms).take(KEEPER_BATCH_MAX).collect();
        for id in expired {
            if self.sent_ms.get(&id).is_some_and(|at| now_ms < at + KEEPER_RETRY_MS) {
                continue;
            }
            self.last_nonce = self.last_nonce.max(ledger.nonce(self.key.public())) + 1;
            let op = Op::Escrow(interlock_core::EscrowOp::Cancel { reservation: id, certificate: None });
            let tx = Transaction::sign(&self.key, ledger.network(), self.last_nonce, op);
            if ledger.submit(tx).is_ok() {
                self.sent_ms.insert(id, now_ms);
            }
        }
    }
}

struct Shared {
    ledger: Mutex<Ledger<SqliteStore>>,
    keeper: Mutex<Option<Keeper>>,
    outcomes: Mutex<Outcomes>,
    blocks: broadcast::Sender<Arc<Committed>>,
    tip: watch::Sender<u64>,
}

#[derive(Default)]
struct Outcomes {
    by_id: HashMap<TxId, Result<u64, LedgerError>>,
    order: VecDeque<TxId>,
}

impl Outcomes {
    fn record(&mut self, id: TxId, outcome: Result<u64, LedgerError>) {
        if self.by_id.insert(id, outcome).is_none() {
            self.order.push_back(id);
        }
        while self.order.len() > OUTCOMES_MAX {
            let oldest = self.order.pop_front().expect("non-empty");
            self.by_id.remove(&oldest);
        }
    }
}

/// The gRPC service of one ledger node. Cheap to clone.
#[derive(Clone)]
pub struct LedgerNodeService {
    shared: Arc<Shared>,
}

impl LedgerNodeService {
    pub fn new(ledger: Ledger<SqliteStore>) -> LedgerNodeService {
        let (blocks, _) = broadcast::channel(BLOCKS_BUFFER);
        let (tip, _) = watch::channel(ledger.tip().height);
        let shared =
            Shared { ledger: Mutex::new(ledger), keeper: Mutex::new(None), outcomes: Mutex::default(), blocks, tip };
        LedgerNodeService { shared: Arc::new(shared) }
    }

    /// Runs a keeper that signs with `key` (an account the ledger admits: the
    /// operator, or a registered one) and cancels every expired reservation.
    pub fn with_keeper(self, key: PartyKey) -> LedgerNodeService {
        *self.shared.keeper.lock().expect("keeper lock is never poisoned") =
            Some(Keeper { key, last_nonce: 0, sent_ms: HashMap::new() });
        self
    }

    /// Reads the ledger's committed state in process (tools and tests; remote
    /// callers use the service).
    pub fn read_state<T>(&self, read: impl FnOnce(&interlock_ledger::State) -> T) -> T {
        read(self.ledger().state())
    }

    pub fn server(&self) -> LedgerNodeServer<LedgerNodeService> {
        LedgerNodeServer::new(self.clone())
    }

    fn ledger(&self) -> MutexGuard<'_, Ledger<SqliteStore>> {
        self.shared.ledger.lock().expect("the ledger lock is never poisoned: ledger calls do not panic")
    }

    /// Seals blocks at `pace` until the process ends. Run it on its own task.
    pub async fn produce(self, pace: Pace, clock: fn() -> u64) {
        let mut ticker = tokio::time::interval(pace.block_interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticker.tick().await;
            let service = self.clone();
            let sealed = tokio::task::spawn_blocking(move || service.seal(clock(), pace)).await;
            match sealed {
                Ok(Ok(())) => {}
                Ok(Err(error)) => eprintln!("ledger node: producing a block failed: {error}"),
                Err(join) => eprintln!("ledger node: block producer task failed: {join}"),
            }
        }
    }

    fn seal(&self, now_ms: u64, pace: Pace) -> Result<(), LedgerError> {
        let started = std::time::Instant::now();
        let metrics = interlock_rpc::metrics::metrics();
        let outcome = {
            let mut ledger = self.ledger();
            metrics.queue_length("ledger", "mempool", ledger.mempool_len());
            if let Some(keeper) = self.shared.keeper.lock().expect("keeper lock is never poisoned").as_mut() {
                keeper.cancel_expired(&mut ledger, now_ms);
            }
            let idle_ms = now_ms.saturating_sub(ledger.tip().timestamp_ms);
            let heartbeat_ms = u64::try_from(pace.heartbeat.as_millis()).unwrap_or(u64::MAX);
            if ledger.mempool_len() > 0 {
                ledger.produce_block(now_ms)?
            } else if idle_ms >= heartbeat_ms {
                Some(ledger.produce_heartbeat(now_ms)?)
            } else {
                None
            }
        };
        let Some(outcome) = outcome else { return Ok(()) };
        metrics.step_took("ledger", "seal_block", started.elapsed());
        for _ in &outcome.included {
            metrics.deal_event("ledger", "transaction_included");
        }
        for _ in &outcome.rejected {
            metrics.deal_event("ledger", "transaction_rejected");
        }
        {
            let mut outcomes = self.shared.outcomes.lock().expect("outcomes lock is never poisoned");
            for id in &outcome.included {
                outcomes.record(*id, Ok(outcome.header.height));
            }
            for rejection in outcome.rejected {
                outcomes.record(rejection.transaction, Err(rejection.error));
            }
        }
        let height = outcome.header.height;
        // Nobody listening is fine: streams catch up from disk.
        let _ = self.shared.blocks.send(Arc::new(Committed { header: outcome.header, events: outcome.events }));
        self.shared.tip.send_replace(height);
        Ok(())
    }

    async fn wait_for(&self, id: TxId) -> Result<u64, Status> {
        let mut tip = self.shared.tip.subscribe();
        let deadline = tokio::time::Instant::now() + WAIT_MAX;
        loop {
            let known = self.shared.outcomes.lock().expect("outcomes lock is never poisoned").by_id.get(&id).cloned();
            match known {
                Some(Ok(height)) => return Ok(height),
                Some(Err(error)) => return Err(ledger_status(&error)),
                None => {}
            }
            match tokio::time::timeout_at(deadline, tip.changed()).await {
                Ok(Ok(())) => continue,
                Ok(Err(_)) => return Err(Status::unavailable("the ledger node is shutting down")),
                Err(_) => {
                    return Err(Status::deadline_exceeded(format!(
                        "transaction {id} was neither committed nor refused within {WAIT_MAX:?}"
                    )))
                }
            }
        }
    }

    /// Blocks `from..=to` with their events, read from the store.
    fn committed_range(&self, from: u64, to: u64) -> Result<Vec<v1::BlockEvents>, Status> {
        let ledger = self.ledger();
        let mut blocks = Vec::new();
        for height in from..=to {
            let block = ledger.block(height).map_err(|e| ledger_status(&e))?;
            let Some(block) = block else { break };
            let events = ledger.events_from(height, 1).map_err(|e| ledger_status(&e))?;
            blocks.push(v1::BlockEvents {
                header: Some(wire::header(&block.header)),
                events: events.iter().filter(|e| e.height == height).map(wire::event).collect(),
                rolled_back: false,
            });
        }
        Ok(blocks)
    }

    /// Feeds `sender` every block from `next` on: from disk while behind, then live.
    async fn stream_from(self, mut next: u64, sender: mpsc::Sender<Result<v1::BlockEvents, Status>>) {
        let mut live = self.shared.blocks.subscribe();
        loop {
            let tip = self.ledger().tip().height;
            while next <= tip {
                let to = tip.min(next + 63);
                let blocks = match self.committed_range(next, to) {
                    Ok(blocks) => blocks,
                    Err(status) => {
                        let _ = sender.send(Err(status)).await;
                        return;
                    }
                };
                for block in blocks {
                    if sender.send(Ok(block)).await.is_err() {
                        return;
                    }
                }
                next = to + 1;
            }
            loop {
                match live.recv().await {
                    Ok(block) if block.header.height < next => continue,
                    Ok(block) if block.header.height == next => {
                        let message = v1::BlockEvents {
                            header: Some(wire::header(&block.header)),
                            events: block.events.iter().map(wire::event).collect(),
                            rolled_back: false,
                        };
                        if sender.send(Ok(message)).await.is_err() {
                            return;
                        }
                        next += 1;
                    }
                    // A gap or a lag: catch up from disk, then listen again.
                    Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => break,
                    Err(broadcast::error::RecvError::Closed) => return,
                }
            }
        }
    }
}

type BlockStream = Pin<Box<dyn tokio_stream::Stream<Item = Result<v1::BlockEvents, Status>> + Send>>;

#[tonic::async_trait]
impl LedgerNode for LedgerNodeService {
    async fn submit_transaction(
        &self,
        request: Request<v1::SubmitTransactionRequest>,
    ) -> Result<Response<v1::SubmitTransactionResponse>, Status> {
        let request = request.into_inner();
        let transaction = Transaction::decode_untrusted(&request.transaction_encoded).map_err(|e| ledger_status(&e))?;
        let id = transaction.id();
        {
            // A transaction seen before: committed means a replay; refused means
            // the caller tries again, so forget the old refusal.
            let mut outcomes = self.shared.outcomes.lock().expect("outcomes lock is never poisoned");
            if let Some(Ok(height)) = outcomes.by_id.get(&id) {
                return Err(Status::already_exists(format!(
                    "replayed transaction {id}: already committed at height {height} (its nonce is used)"
                )));
            }
            if outcomes.by_id.remove(&id).is_some() {
                // Rare (a refused transaction sent again): keep `order` free of
                // stale copies, so eviction never drops the fresh outcome.
                outcomes.order.retain(|seen| *seen != id);
            }
        }
        self.ledger().submit(transaction).map_err(|e| ledger_status(&e))?;
        let height = if request.wait { self.wait_for(id).await? } else { 0 };
        Ok(Response::new(v1::SubmitTransactionResponse { transaction_id: id.0.to_vec(), height }))
    }

    async fn get_tip(&self, _: Request<v1::GetTipRequest>) -> Result<Response<v1::BlockHeader>, Status> {
        Ok(Response::new(wire::header(self.ledger().tip())))
    }

    async fn get_block(&self, request: Request<v1::GetBlockRequest>) -> Result<Response<v1::Block>, Status> {
        let height = wire::stored_integer("height", request.into_inner().height)?;
        let block = self.ledger().block(height).map_err(|e| ledger_status(&e))?;
        let block = block.ok_or_else(|| Status::not_found(format!("no block at height {height}")))?;
        Ok(Response::new(v1::Block {
            header: Some(wire::header(&block.header)),
            transactions_encoded: block.transactions.iter().map(interlock_core::encoding::Encode::to_bytes).collect(),
        }))
    }

    async fn get_account(&self, request: Request<v1::GetAccountRequest>) -> Result<Response<v1::Account>, Status> {
        let key = wire::bytes32("account", &request.into_inner().account)?;
        let ledger = self.ledger();
        let account = ledger.state().account(&Address::from_bytes(key));
        let account = account.ok_or_else(|| Status::not_found("no such account on this network"))?;
        Ok(Response::new(v1::Account {
            registered: account.registered,
            nonce: account.nonce,
            balances: account
                .balances
                .iter()
                .map(|(asset, amount)| v1::Balance { asset: asset.to_string(), amount: amount.to_string() })
                .collect(),
        }))
    }

    async fn get_reservation(
        &self,
        request: Request<v1::GetReservationRequest>,
    ) -> Result<Response<v1::Reservation>, Status> {
        let id = ReservationId(Hash32(wire::bytes32("reservation_id", &request.into_inner().reservation_id)?));
        let ledger = self.ledger();
        let reservation =
            ledger.state().reservation(&id).ok_or_else(|| Status::not_found(format!("no reservation {id}")))?;
        Ok(Response::new(wire::reservation(reservation)))
    }

    type StreamBlocksStream = BlockStream;

    async fn stream_blocks(
        &self,
        request: Request<v1::StreamBlocksRequest>,
    ) -> Result<Response<Self::StreamBlocksStream>, Status> {
        let from = wire::stored_integer("from_height", request.into_inner().from_height)?.max(1);
        let (sender, receiver) = mpsc::channel(STREAM_BUFFER);
        tokio::spawn(self.clone().stream_from(from, sender));
        Ok(Response::new(Box::pin(ReceiverStream::new(receiver))))
    }
}

/// Serves the ledger node on `listener` until `shutdown` resolves: to its
/// network's gateway (and other ledger nodes of the network) only.
pub async fn serve(
    service: LedgerNodeService,
    tls: &TlsFiles,
    directory: Arc<Directory>,
    listener: tokio::net::TcpListener,
    shutdown: impl std::future::Future<Output = ()> + Send,
) -> Result<(), ServeError> {
    let network = service.ledger().network();
    let access = Access::new(directory, Home::network(network));
    let ledger = service.server().max_decoding_message_size(MESSAGE_LEN_MAX).max_encoding_message_size(MESSAGE_LEN_MAX);
    interlock_rpc::server::serve_with(ledger, tls, access, listener, shutdown).await
}
