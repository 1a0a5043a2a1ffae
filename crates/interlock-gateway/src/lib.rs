//! The gateway in front of one network: the `Gateway` service for parties,
//! notaries and observers, and the `GatewayPeer` service for the gateways of
//! other networks.
//!
//! Open a [`GatewayService`] over its [`GatewayStore`], start its tasks with
//! [`start`](GatewayService::start), and [`serve`] it.
//!
//! - [`registry`]: deals (proposals and registrations) and their events in the
//!   gateway's SQLite store ([`gateway_store`]), with the messages owed to
//!   peers in a durable outbox.
//! - [`chain`]: a task follows the network through the platform's
//!   [`Follower`](interlock_chain::Follower), records the escrow events of
//!   registered deals, and queues lock assertions and notifications for the
//!   other leg's gateway; one task per peer delivers the outbox until each
//!   message is acknowledged.
//! - [`keeper`]: cancels expired reservations and executes revealed hashlocks
//!   for absent beneficiaries, through the keeper's
//!   [`Submitter`](interlock_chain::Submitter).
//! - [`webhook`]: subscriptions, and the task that POSTs the webhook
//!   deliveries the store queues with each event (retries, dead letters).
//! - [`checks`]: every decoder and verifier applied to network input, pure.
//! - `handlers` and `peer`: the two gRPC services, each call authorised by the
//!   caller's certificate (`caller`).
//! - `testkit` (feature `testkit`): starting real gateways on loopback, for
//!   the tests of this crate and of the roles that talk to a gateway.

// Integers from peers, chains and files are converted with `try_from` and
// checked arithmetic; a cast that could truncate, wrap or drop a sign is a
// build error (an `allow` on the smallest item says why a cast is safe).
#![deny(clippy::cast_possible_truncation, clippy::cast_possible_wrap, clippy::cast_sign_loss)]

mod caller;
pub mod chain;
pub mod checks;
mod error;
pub mod gateway_store;
mod handlers;
mod keeper;
mod peer;
mod registry;
pub mod routing;
mod synthesised;
#[cfg(any(test, feature = "testkit"))]
pub mod testkit;
mod verdicts;
pub mod webhook;

pub use chain::{Chain, Relay};
pub use error::GatewayError;
pub use keeper::GRACE_MS;
pub use registry::{PEER_BATCH_MAX, PENDING_EVENTS_MAX};
pub use webhook::WebhookPolicy;

use crate::gateway_store::{Committed, GatewayStore};
use interlock_core::crypto::PartyKey;
use interlock_core::{EscrowEvent, NetworkId, PartyId};
use interlock_identity::Directory;
use interlock_proto::v1::gateway_peer_client::GatewayPeerClient;
use interlock_proto::v1::gateway_peer_server::GatewayPeerServer;
use interlock_proto::v1::gateway_server::GatewayServer;
use interlock_proto::v1::notary_client::NotaryClient;
use interlock_rpc::access::{Access, Home};
use interlock_rpc::server::{base_router, serve_router, ServeError, TlsFiles, MESSAGE_LEN_MAX};
use interlock_rpc::store::{GroupWriter, StoreError};
use keeper::Keeper;
use registry::Registry;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::sync::{watch, Notify};
use tokio::task::JoinHandle;
use tonic::transport::Channel;

/// Outbox messages read at a time.
const OUTBOX_BATCH: usize = 16;
/// First and longest wait before delivering to a peer again after a failure.
const RETRY_MIN: Duration = Duration::from_millis(200);
const RETRY_MAX: Duration = Duration::from_secs(5);
/// How often an idle delivery task looks at the outbox anyway.
const OUTBOX_RECHECK: Duration = Duration::from_secs(2);
/// Longest a call to a peer gateway may take.
const PEER_CALL_TIMEOUT: Duration = Duration::from_secs(10);

/// What a gateway needs to run.
pub struct GatewayConfig {
    /// Signs lock assertions and the keeper's transactions; registered as an
    /// account on `network`, and listed as the gateway's key in the directory.
    pub key: PartyKey,
    pub network: NetworkId,
    /// How the gateway follows, keeps and relays to `network`.
    pub chain: Chain,
    /// The gateways of the other networks.
    pub peers: HashMap<NetworkId, GatewayPeerClient<Channel>>,
    /// The directory's notaries, by address: the keeper asks them for the
    /// verdicts that resolve legs held for inspection.
    pub notaries: HashMap<interlock_core::NotaryAddress, NotaryClient<Channel>>,
    pub directory: Arc<Directory>,
    /// Unix milliseconds, for the freshness of new deals.
    pub clock: fn() -> u64,
    /// How fast each network's chain moves: a party's new deal must leave
    /// its chains room to settle. A network not listed is not checked.
    pub timings: HashMap<NetworkId, interlock_core::NetworkTiming>,
}

struct Shared {
    key: PartyKey,
    network: NetworkId,
    chain: chain::ChainShared,
    peers: HashMap<NetworkId, GatewayPeerClient<Channel>>,
    notaries: HashMap<interlock_core::NotaryAddress, NotaryClient<Channel>>,
    directory: Arc<Directory>,
    clock: fn() -> u64,
    timings: HashMap<NetworkId, interlock_core::NetworkTiming>,
    /// Read behind its lock; written only through `writer`.
    registry: Arc<Mutex<Registry>>,
    /// Commits the writes of concurrent calls together (group commit).
    writer: GroupWriter<Registry>,
    keeper: Mutex<Keeper>,
    /// The last notice and event sequence numbers, for the watch streams.
    notices: watch::Sender<u64>,
    events: watch::Sender<u64>,
    /// Wakes the delivery task of each peer when its outbox grows.
    outbox_wake: HashMap<NetworkId, Arc<Notify>>,
    /// Wakes the webhook delivery task when deliveries are queued.
    webhook_wake: Notify,
    /// Deals registered since the follow task last looked: it tells its
    /// follower to watch them (every registered deal, at start).
    to_watch: Mutex<Vec<Arc<interlock_core::DealTerms>>>,
}

/// One network's gateway. Cheap to clone.
#[derive(Clone)]
pub struct GatewayService {
    shared: Arc<Shared>,
}

/// The gateway's background tasks; dropping this stops them.
pub struct GatewayTasks {
    handles: Vec<JoinHandle<()>>,
}

impl Drop for GatewayTasks {
    fn drop(&mut self) {
        for handle in &self.handles {
            handle.abort();
        }
    }
}

fn locked<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().expect("gateway locks are never poisoned: nothing panics while holding them")
}

impl GatewayService {
    /// Opens the gateway over `store` (its deals, events, outbox and learned
    /// secrets survive restarts). Call [`GatewayService::start`] to follow the
    /// network and deliver to peers.
    pub fn open(config: GatewayConfig, store: GatewayStore) -> Result<GatewayService, StoreError> {
        let (last_notice, last_event) = store.last_seqs()?;
        let secrets = store.secrets()?;
        // The follower resumes after its saved cursor, so the keeper rebuilds
        // what it knew of the chain from the record instead of a replay.
        let mut chain_events: Vec<EscrowEvent> =
            store.chain_events(config.network)?.into_iter().map(|recorded| recorded.event).collect();
        chain_events.extend(store.pending_events()?.into_iter().map(|pending| pending.event));
        let peers: Vec<NetworkId> = config.peers.keys().copied().collect();
        let keeper_account = config.chain.keeper.as_ref().map(|keeper| keeper.account());
        let mut registry = Registry::open(store, config.network, config.key.clone(), config.directory.clone(), peers)?
            .keeping_with(keeper_account);
        let to_watch = registry.registered_terms();
        // The keeper executes the reservations that name the account it signs for.
        let mut keeper = Keeper::new(keeper_account);
        for (deal_id, secret, learned_ms) in secrets {
            keeper.learn(deal_id, secret, learned_ms);
        }
        for deal_id in registry.committed_deals()? {
            keeper.learn_commit(deal_id);
        }
        for event in &chain_events {
            keeper.observe(event);
        }
        let outbox_wake = config.peers.keys().map(|network| (*network, Arc::new(Notify::new()))).collect();
        let registry = Arc::new(Mutex::new(registry));
        let writer = GroupWriter::start(&format!("gateway-{}-writer", config.network.0), registry.clone())?;
        let shared = Shared {
            key: config.key,
            network: config.network,
            chain: chain::ChainShared::new(config.chain),
            peers: config.peers,
            notaries: config.notaries,
            directory: config.directory,
            clock: config.clock,
            timings: config.timings,
            registry,
            writer,
            keeper: Mutex::new(keeper),
            notices: watch::channel(last_notice).0,
            events: watch::channel(last_event).0,
            outbox_wake,
            webhook_wake: Notify::new(),
            to_watch: Mutex::new(to_watch),
        };
        Ok(GatewayService { shared: Arc::new(shared) })
    }

    /// The gateway's public key: its lock assertions verify against it, and
    /// its keeper signs with it.
    pub fn key(&self) -> PartyId {
        self.shared.key.public()
    }

    pub fn network(&self) -> NetworkId {
        self.shared.network
    }

    pub fn servers(&self) -> (GatewayServer<GatewayService>, GatewayPeerServer<GatewayService>) {
        (GatewayServer::new(self.clone()), GatewayPeerServer::new(self.clone()))
    }

    /// Spawns the follower (with the keeper), one delivery task per peer and
    /// the webhook delivery task, with the default [`WebhookPolicy`].
    pub fn start(&self) -> GatewayTasks {
        self.start_with(WebhookPolicy::default())
    }

    /// [`GatewayService::start`] with webhooks delivered by `policy`.
    pub fn start_with(&self, policy: WebhookPolicy) -> GatewayTasks {
        assert!(policy.check().is_ok(), "webhook policy checked by the caller: {policy:?}");
        let follower = locked(&self.shared.chain.follower).take();
        let mut handles = Vec::new();
        match follower {
            Some(follower) => handles.push(tokio::spawn(self.clone().follow(follower))),
            None => eprintln!("gateway {}: started twice: the first start follows the network", self.shared.network),
        }
        for network in self.shared.peers.keys() {
            handles.push(tokio::spawn(self.clone().deliver(*network)));
        }
        handles.push(tokio::spawn(self.clone().deliver_webhooks(policy)));
        if !self.shared.notaries.is_empty() {
            handles.push(tokio::spawn(self.clone().collect_verdicts()));
        }
        GatewayTasks { handles }
    }

    /// How many webhook deliveries wait (for their first or a later attempt).
    pub fn webhooks_len(&self) -> Result<u64, StoreError> {
        self.registry().store.webhooks_len()
    }

    /// The webhook deliveries given up after their last attempt, oldest first.
    pub fn dead_letters(&self, limit: usize) -> Result<Vec<crate::gateway_store::DeadLetter>, StoreError> {
        self.registry().store.dead_letters(limit)
    }

    /// How many messages wait in the outbox for the gateway of `peer`.
    pub fn outbox_len(&self, peer: NetworkId) -> Result<u64, StoreError> {
        self.registry().store.outbox_len(peer)
    }

    fn registry(&self) -> MutexGuard<'_, Registry> {
        locked(&self.shared.registry)
    }

    /// Runs `work` on tokio's blocking pool. Whatever takes the registry lock
    /// goes through here from async code (writes go through
    /// [`GatewayService::write`]): the writer holds the lock across its
    /// fsync, and a worker stalled on it stalls every task queued behind it.
    /// `what` names the call in the error if it never returns.
    async fn blocking<T, F>(&self, what: &'static str, work: F) -> Result<T, GatewayError>
    where
        T: Send + 'static,
        F: FnOnce(&GatewayService) -> Result<T, GatewayError> + Send + 'static,
    {
        let service = self.clone();
        tokio::task::spawn_blocking(move || work(&service))
            .await
            .map_err(|error| GatewayError::Blocking { what, reason: error.to_string() })?
    }

    /// What a background loop read from its store, or `None` once it has said
    /// why the read failed and waited `pause`: the loop then tries again.
    async fn read_or_pause<T>(&self, read: Result<T, GatewayError>, what: &str, pause: Duration) -> Option<T> {
        match read {
            Ok(value) => Some(value),
            Err(error) => {
                eprintln!("gateway {}: reading {what} failed: {error}", self.shared.network);
                tokio::time::sleep(pause).await;
                None
            }
        }
    }

    /// Runs `work` on the gateway's writer thread, together with the other
    /// writes waiting, in one transaction (its own savepoint: a refusal rolls
    /// back only its own changes) and one fsync; answers once that commit
    /// returned. `work` must not take the registry lock: the writer holds it
    /// and passes the registry in.
    async fn write<T, F>(&self, work: F) -> Result<T, GatewayError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Registry) -> Result<T, GatewayError> + Send + 'static,
    {
        self.shared.writer.write(work).await
    }

    /// How many group commits the gateway's writer made.
    pub fn group_commits(&self) -> u64 {
        self.shared.writer.commits()
    }

    /// Tells streams and delivery tasks what a committed write added.
    fn announce(&self, committed: &Committed) {
        if let Some(seq) = committed.last_notice {
            self.shared.notices.send_replace(seq);
        }
        if let Some(seq) = committed.last_event {
            self.shared.events.send_replace(seq);
        }
        for peer in &committed.peers {
            if let Some(wake) = self.shared.outbox_wake.get(peer) {
                wake.notify_one();
            }
        }
        if committed.webhooks {
            self.shared.webhook_wake.notify_one();
        }
        if let Some(terms) = &committed.registered {
            locked(&self.shared.to_watch).push(terms.clone());
        }
    }

    /// Delivers the outbox of `peer` in order, each message until the peer
    /// acknowledges it. A message the peer refuses for good (it will refuse it
    /// again) is dropped with a log line so it cannot block those behind it.
    async fn deliver(self, peer: NetworkId) {
        let Some(wake) = self.shared.outbox_wake.get(&peer).cloned() else { return };
        let mut retry = RETRY_MIN;
        loop {
            let read = self
                .blocking("reading the outbox", move |service| {
                    let registry = service.registry();
                    let entries = registry.store.outbox(peer, OUTBOX_BATCH)?;
                    Ok((entries, registry.store.outbox_len(peer).ok()))
                })
                .await;
            let read = read.map(|(entries, length)| {
                if let Some(length) = length {
                    interlock_rpc::metrics::metrics().queue_length(
                        "gateway",
                        "outbox",
                        usize::try_from(length).unwrap_or(usize::MAX),
                    );
                }
                entries
            });
            let Some(entries) = self.read_or_pause(read, "the outbox", RETRY_MAX).await else { continue };
            if entries.is_empty() {
                let _ = tokio::time::timeout(OUTBOX_RECHECK, wake.notified()).await;
                continue;
            }
            for entry in entries {
                let started = std::time::Instant::now();
                match self.send_entry(peer, &entry).await {
                    Ok(()) => {
                        retry = RETRY_MIN;
                        interlock_rpc::metrics::metrics().step_took("gateway", "peer_delivery", started.elapsed());
                    }
                    Err(status) if peer::is_final(status.code()) => eprintln!(
                        "gateway {}: the gateway of {peer} refused a {} message for good, dropping it: {}",
                        self.shared.network,
                        entry.kind,
                        status.message()
                    ),
                    Err(status) => {
                        interlock_rpc::metrics::metrics().deal_event("gateway", "peer_delivery_retried");
                        if retry == RETRY_MIN {
                            eprintln!(
                                "gateway {}: delivering to the gateway of {peer} failed, retrying: {}",
                                self.shared.network,
                                status.message()
                            );
                        }
                        tokio::time::sleep(retry).await;
                        retry = (retry * 2).min(RETRY_MAX);
                        break;
                    }
                }
                let id = entry.id;
                let removed = self.write(move |registry| Ok(registry.store.remove_outbox(id)?)).await;
                if let Err(error) = removed {
                    eprintln!("gateway {}: removing a delivered message failed: {error}", self.shared.network);
                }
            }
        }
    }
}

/// Serves a gateway's two services, `Gateway` and `GatewayPeer`, on
/// `listener` until `shutdown` resolves. Start its tasks with
/// [`GatewayService::start`].
pub async fn serve(
    service: GatewayService,
    tls: &TlsFiles,
    directory: Arc<Directory>,
    listener: tokio::net::TcpListener,
    shutdown: impl std::future::Future<Output = ()> + Send,
) -> Result<(), ServeError> {
    let service_network = service.network();
    let (gateway, peer) = service.servers();
    let gateway = gateway.max_decoding_message_size(MESSAGE_LEN_MAX).max_encoding_message_size(MESSAGE_LEN_MAX);
    let peer = peer.max_decoding_message_size(MESSAGE_LEN_MAX).max_encoding_message_size(MESSAGE_LEN_MAX);
    let (health, health_service) = tonic_health::server::health_reporter();
    health.set_serving::<GatewayServer<GatewayService>>().await;
    health.set_serving::<GatewayPeerServer<GatewayService>>().await;
    let access = Access::new(directory, Home::network(service_network));
    let router =
        base_router(tls, &access, health_service)?.add_service(access.guard(gateway)).add_service(access.guard(peer));
    serve_router(router, listener, shutdown).await
}
