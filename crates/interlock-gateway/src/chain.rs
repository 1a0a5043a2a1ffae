//! How the gateway follows and keeps its network, on any platform.
//!
//! The gateway is handed a [`Chain`]: a [`Follower`] of the network's escrow,
//! the keeper's [`Submitter`] when it keeps the network, and how parties reach
//! the chain ([`Relay`]). One task polls the follower, watches every registered
//! deal, records each delivered block's events through
//! `Registry::observe_block` (lock assertions and notifications to the peer
//! gateway included), feeds the pure keeper, and sends what the keeper owes
//! through the submitter, acting on the kind of each refusal.
//!
//! Where parties send their transactions to the chain themselves (no relay),
//! the gateway also serves what it followed as a block stream: each block of
//! that stream is one delivered block of the follower, with its height, time
//! and the escrow events since the previous one.

use crate::registry::Observed;
use crate::synthesised::Synthesised;
use crate::{locked, GatewayError, GatewayService};
use interlock_chain::{BlockEvents, Capabilities, ChainErrorKind, ChainEvent, Cursor, Follower, Submitter};
use interlock_core::encoding::Encode;
use interlock_core::{DealTerms, EscrowEvent, EscrowOp, NetworkId};
use interlock_proto::v1;
use interlock_proto::v1::ledger_node_client::LedgerNodeClient;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::watch;
use tonic::transport::Channel;
use tonic::Status;

/// How long the follow task waits after a poll that delivered nothing, or failed.
const POLL_IDLE: Duration = Duration::from_millis(200);
/// How often the follower's cursor is saved while the blocks it reads hold
/// nothing to record.
const CURSOR_SAVE_INTERVAL: Duration = Duration::from_secs(1);

/// How a gateway reaches its network.
pub struct Chain {
    /// The network's escrow events, from where the gateway starts reading.
    pub follower: Box<dyn Follower>,
    /// Signs for the keeper's account, when this gateway keeps the network.
    pub keeper: Option<Arc<dyn Submitter>>,
    pub relay: Relay,
    /// The platform's name and what its escrow can hold: a deal whose legs
    /// here it cannot hold is refused when it is proposed or registered.
    pub platform: String,
    pub capabilities: Capabilities,
}

/// How the parties of a network reach its chain.
pub enum Relay {
    /// Through this gateway: it relays their signed transactions and reads to
    /// the network's ledger node, and streams that node's blocks.
    Node(LedgerNodeClient<Channel>),
    /// Directly: parties sign and send to the chain themselves, at this
    /// endpoint (named in refusals); the gateway streams what it followed.
    Direct { endpoint: String },
}

/// The chain side of a gateway's shared state.
pub(crate) struct ChainShared {
    pub(crate) follower: Mutex<Option<Box<dyn Follower>>>,
    pub(crate) keeper: Option<Arc<dyn Submitter>>,
    pub(crate) relay: Relay,
    pub(crate) platform: String,
    pub(crate) capabilities: Capabilities,
    /// The synthesised block stream (direct networks).
    blocks: Mutex<Synthesised>,
    /// The number the stream's next entry will have.
    newest: watch::Sender<u64>,
}

impl ChainShared {
    pub(crate) fn new(chain: Chain) -> ChainShared {
        ChainShared {
            follower: Mutex::new(Some(chain.follower)),
            keeper: chain.keeper,
            relay: chain.relay,
            platform: chain.platform,
            capabilities: chain.capabilities,
            blocks: Mutex::new(Synthesised::default()),
            newest: watch::channel(0).0,
        }
    }

    pub(crate) fn node(&self) -> Option<&LedgerNodeClient<Channel>> {
        match &self.relay {
            Relay::Node(client) => Some(client),
            Relay::Direct { .. } => None,
        }
    }
}

impl GatewayService {
    /// Follows the network forever. The keeper acts only on blocks stamped
    /// after the gateway started: replayed history triggers nothing.
    pub(crate) async fn follow(self, mut follower: Box<dyn Follower>) {
        let network = self.shared.network;
        let started_ms = (self.shared.clock)();
        let keeping = match &self.shared.chain.keeper {
            Some(keeper) => format!("keeping with {}", keeper.account()),
            None => "not keeping (no keeper key)".to_owned(),
        };
        eprintln!("gateway {network}: following from {}, {keeping}", follower.cursor());
        self.tell_last_rollback().await;
        let mut saving = CursorSaving::new();
        loop {
            let registered = std::mem::take(&mut *locked(&self.shared.to_watch));
            for terms in registered {
                if let Err(error) = follower.watch(&terms) {
                    eprintln!("gateway {network}: deal {} cannot settle here: {error}", terms.id());
                }
            }
            let delivered = match follower.poll().await {
                Ok(delivered) => delivered,
                Err(error) => {
                    eprintln!("gateway {network}: following the network failed: {error}");
                    tokio::time::sleep(POLL_IDLE).await;
                    continue;
                }
            };
            let idle = delivered.is_empty();
            for item in delivered {
                match item {
                    ChainEvent::Block(block) => {
                        let time_ms = block.time_ms;
                        let save_cursor = saving.with_block(block.cursor, !block.events.is_empty());
                        self.record_until_done(block, save_cursor).await;
                        if time_ms >= started_ms {
                            self.keep(time_ms).await;
                        }
                    }
                    ChainEvent::RolledBack { to } => self.rolled_back(to).await,
                }
            }
            if idle {
                if let Some(cursor) = saving.when_quiet() {
                    self.save_cursor(cursor).await;
                }
                tokio::time::sleep(POLL_IDLE).await;
            }
        }
    }

    /// Puts the last rollback recorded before a restart at the head of the
    /// block stream: a party that read the blocks it took away learns of it.
    async fn tell_last_rollback(&self) {
        if !matches!(self.shared.chain.relay, Relay::Direct { .. }) {
            return;
        }
        let last =
            self.blocking("reading the last rollback", |service| Ok(service.registry().store.last_rollback()?));
        match last.await {
            Ok(Some(to)) => self.stream_rollback(to),
            Ok(None) => {}
            Err(error) => eprintln!("gateway {}: {error}", self.shared.network),
        }
    }

    fn stream_rollback(&self, to: Cursor) {
        let chain = &self.shared.chain;
        let next = {
            let mut blocks = locked(&chain.blocks);
            blocks.roll_back(self.shared.network.0, to);
            blocks.next()
        };
        chain.newest.send_replace(next);
    }

    /// Saves the follower's cursor where no block records anything.
    async fn save_cursor(&self, cursor: Cursor) {
        let saved = self.write(move |registry| Ok(registry.observe_block(Vec::new(), Some(cursor))?)).await;
        if let Err(error) = saved {
            // The next save carries a later cursor; a restart re-reads a little more.
            eprintln!("gateway {}: saving the cursor {cursor} failed: {error}", self.shared.network);
        }
    }

    /// Records `block` (one block at a time, in order: the next waits for
    /// this commit), again and again until the store takes it: a block
    /// skipped would be a hole in the record that no restart fills, since the
    /// follower resumes after the saved cursor.
    async fn record_until_done(&self, block: BlockEvents, save_cursor: bool) {
        let network = self.shared.network;
        let mut failures = 0u32;
        loop {
            match self.record_block(block.clone(), save_cursor).await {
                Ok(()) => return,
                Err(error) => {
                    failures = failures.saturating_add(1);
                    if failures.is_power_of_two() {
                        eprintln!(
                            "gateway {network}: recording block {} failed ({failures} times): {error}",
                            block.cursor
                        );
                    }
                    tokio::time::sleep(POLL_IDLE).await;
                }
            }
        }
    }

    /// The chain reorganised below what the follower delivered, deeper than
    /// its confirmation depth: the follower goes on from `to`, and so does the
    /// saved cursor. Events recorded from the dropped blocks stay recorded
    /// (the peer gateway may have acted on them), and those the new chain
    /// holds again are recorded once; the deals they belong to are named in
    /// an alert and counted, for an operator to check. The block stream tells
    /// its readers, so that each party reads where its legs stand now and
    /// sends again what its side lost.
    async fn rolled_back(&self, to: Cursor) {
        let network = self.shared.network;
        interlock_rpc::metrics::metrics().deal_event("gateway", "reorganised_below_depth");
        let saved = self
            .write(move |registry| {
                let deals = registry.store.deals_above(network, to.height)?;
                registry.observe_block(Vec::new(), Some(to))?;
                registry.store.set_last_rollback(to)?;
                Ok(deals)
            })
            .await;
        if matches!(self.shared.chain.relay, Relay::Direct { .. }) {
            self.stream_rollback(to);
        }
        match saved {
            Ok(deals) => {
                let named: Vec<String> = deals.iter().map(ToString::to_string).collect();
                eprintln!(
                    "gateway {network}: ALERT the chain reorganised below the confirmation depth, back to {to}; \
                     deals with events in the dropped blocks: [{}]; following again from {to}; \
                     raise the network's confirmation depth",
                    named.join(", ")
                );
            }
            Err(error) => eprintln!("gateway {network}: ALERT reorganised back to {to}; saving that failed: {error}"),
        }
    }

    /// Records one delivered block's events (with the block's cursor when
    /// `save_cursor`), then lets the keeper see them and extends the
    /// synthesised stream of a direct network.
    async fn record_block(&self, block: BlockEvents, save_cursor: bool) -> Result<(), GatewayError> {
        let synthesised = match self.shared.chain.relay {
            Relay::Direct { .. } => Some(synthesised_block(self.shared.network, &block)),
            Relay::Node(_) => None,
        };
        let observed: Vec<Observed> = block
            .events
            .into_iter()
            .map(|followed| Observed {
                height: block.cursor.height,
                timestamp_ms: block.time_ms,
                block_hash: block.cursor.hash,
                event: followed.event,
            })
            .collect();
        let events: Vec<EscrowEvent> = observed.iter().map(|item| item.event.clone()).collect();
        let cursor = save_cursor.then_some(block.cursor);
        let committed = self.write(move |registry| Ok(registry.observe_block(observed, cursor)?)).await?;
        {
            let mut keeper = locked(&self.shared.keeper);
            keeper.now_ms = keeper.now_ms.max(block.time_ms);
            for event in &events {
                keeper.observe(event);
            }
        }
        self.announce(&committed);
        if let Some(synthesised) = synthesised {
            let chain = &self.shared.chain;
            let next = {
                let mut blocks = locked(&chain.blocks);
                blocks.push(synthesised);
                blocks.next()
            };
            chain.newest.send_replace(next);
        }
        Ok(())
    }

    /// Sends what the keeper owes at network time `now_ms`, each operation on
    /// its own task so the follower never waits for a submission.
    pub(crate) async fn keep(&self, now_ms: u64) {
        let Some(submitter) = self.shared.chain.keeper.clone() else { return };
        let owed = self.blocking("reading what the keeper owes", move |service| Ok(service.keeper_owes(now_ms)));
        let owed = match owed.await {
            Ok(owed) => owed,
            Err(error) => {
                eprintln!("gateway {}: {error}", self.shared.network);
                return;
            }
        };
        for (op, terms) in owed {
            let (what, done) = match &op {
                EscrowOp::Execute { .. } => ("execute", "executed"),
                EscrowOp::Cancel { .. } => ("cancel", "cancelled"),
                EscrowOp::Reserve(_) => ("reserve", "reserved"),
                EscrowOp::Resolve { .. } => ("resolve", "resolved"),
            };
            let network = self.shared.network;
            let span = tracing::info_span!("deal", deal_id = %terms.id(), network = network.0);
            let submitter = submitter.clone();
            let submit = async move {
                tracing::info!("keeper submits {what}");
                match submitter.submit(&terms, &op).await {
                    Ok(receipt) => eprintln!(
                        "gateway {network}: keeper {done} reservation {} of deal {} (transaction {})",
                        op.reservation_id(),
                        terms.id(),
                        receipt.transaction
                    ),
                    // Losing a race to the beneficiary, the owner or another keeper is the normal case.
                    Err(error) if error.kind == ChainErrorKind::AlreadyDone => {}
                    Err(error) => tracing::warn!("keeper's {what} refused: {error}"),
                }
            };
            tokio::spawn(tracing::Instrument::instrument(submit, span));
        }
    }

    /// The operations the keeper owes at `now_ms`, each with its deal's
    /// terms (an operation whose deal is not registered here is skipped).
    fn keeper_owes(&self, now_ms: u64) -> Vec<(EscrowOp, Arc<DealTerms>)> {
        let actions = locked(&self.shared.keeper).act(now_ms);
        let mut owed = Vec::with_capacity(actions.len());
        for op in actions {
            let deal_id = locked(&self.shared.keeper).deal_of(&op.reservation_id());
            if let Some(terms) = deal_id.and_then(|deal_id| self.registry().registered(deal_id)) {
                owed.push((op, terms));
            }
        }
        owed
    }

    /// The synthesised blocks from `from_height` on, then each new one.
    pub(crate) fn synthesised_blocks(&self, from_height: u64) -> crate::handlers::Stream<v1::BlockEvents> {
        let service = self.clone();
        let mut newest = self.shared.chain.newest.subscribe();
        let (sender, receiver) = tokio::sync::mpsc::channel(64);
        tokio::spawn(async move {
            let mut next = locked(&service.shared.chain.blocks).start(from_height);
            loop {
                let (ready, end) = {
                    let blocks = locked(&service.shared.chain.blocks);
                    (blocks.from(next), blocks.next())
                };
                for block in ready {
                    if sender.send(Ok(block)).await.is_err() {
                        return;
                    }
                }
                next = end;
                if newest.changed().await.is_err() {
                    return;
                }
            }
        });
        Box::pin(tokio_stream::wrappers::ReceiverStream::new(receiver))
    }

    /// The ledger node parties reach through this gateway, or a refusal of
    /// `what` saying where the network's parties send instead.
    pub(crate) fn relay_node(&self, what: &str) -> Result<LedgerNodeClient<Channel>, Status> {
        match &self.shared.chain.relay {
            Relay::Node(client) => Ok(client.clone()),
            Relay::Direct { endpoint } => Err(Status::failed_precondition(format!(
                "network {}: {what} goes to its node ({endpoint}); this gateway follows it and records deals",
                self.shared.network
            ))),
        }
    }
}

/// When the follower's cursor is saved: with every block that records
/// something; past empty blocks at most once per [`CURSOR_SAVE_INTERVAL`],
/// and once the chain goes quiet, so a restart re-reads at most that much of
/// nothing. The first block after a start is saved at once.
struct CursorSaving {
    last_saved: Option<Instant>,
    /// The newest delivered cursor not saved yet.
    unsaved: Option<Cursor>,
}

impl CursorSaving {
    fn new() -> CursorSaving {
        CursorSaving { last_saved: None, unsaved: None }
    }

    fn due(&self) -> bool {
        self.last_saved.is_none_or(|at| at.elapsed() >= CURSOR_SAVE_INTERVAL)
    }

    /// Whether the block at `cursor` is saved with its events.
    fn with_block(&mut self, cursor: Cursor, has_events: bool) -> bool {
        let save = has_events || self.due();
        if save {
            self.last_saved = Some(Instant::now());
            self.unsaved = None;
        } else {
            self.unsaved = Some(cursor);
        }
        save
    }

    /// On a poll that delivered nothing: the cursor to save now, if one waits.
    fn when_quiet(&mut self) -> Option<Cursor> {
        if !self.due() {
            return None;
        }
        let cursor = self.unsaved.take()?;
        self.last_saved = Some(Instant::now());
        Some(cursor)
    }
}

/// A delivered block as the gateway's block stream carries it.
fn synthesised_block(network: NetworkId, block: &BlockEvents) -> v1::BlockEvents {
    let events: Vec<v1::LedgerEvent> = block
        .events
        .iter()
        .map(|followed| v1::LedgerEvent {
            network: network.0,
            height: block.cursor.height,
            transaction_id: followed.transaction.0.to_vec(),
            deal_id: followed.event.deal_id().0 .0.to_vec(),
            kind: kind(&followed.event).to_owned(),
            event_encoded: followed.event.to_bytes(),
        })
        .collect();
    v1::BlockEvents {
        header: Some(v1::BlockHeader {
            network: network.0,
            height: block.cursor.height,
            parent: Vec::new(),
            timestamp_ms: block.time_ms,
            transactions_root: Vec::new(),
            transaction_count: u32::try_from(events.len()).unwrap_or(u32::MAX),
            hash: block.cursor.hash.0.to_vec(),
        }),
        events,
        rolled_back: false,
    }
}

fn kind(event: &EscrowEvent) -> &'static str {
    match event {
        EscrowEvent::Reserved(_) => "reserved",
        EscrowEvent::Executed { .. } => "executed",
        EscrowEvent::Cancelled { .. } => "cancelled",
        EscrowEvent::Held { .. } => "held",
    }
}
