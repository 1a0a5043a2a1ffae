//! Starting real services on loopback for the tests of this crate and of the
//! roles that talk to a gateway: certificates, TLS channels and gateways.

use crate::gateway_store::GatewayStore;
use crate::{GatewayConfig, GatewayService, GatewayTasks, WebhookPolicy};
use interlock_chain::Cursor;
use interlock_chain::Platform as _;
use interlock_core::crypto::PartyKey;
use interlock_core::encoding::encode_terms;
use interlock_core::{DealTerms, NetworkId, PartyId};
use interlock_identity::{Directory, GatewayEntry, LedgerEntry, NetworkEntry};
use interlock_ledger_node::{LedgerPlatform, NodeFollower, NodeSubmitter};
use interlock_proto::v1;
use interlock_proto::v1::gateway_peer_client::GatewayPeerClient;
use interlock_proto::v1::ledger_node_client::LedgerNodeClient;
use interlock_proto::v1::notary_client::NotaryClient;
use interlock_rpc::server::TlsFiles;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tonic::transport::{Channel, Endpoint};

/// A new CA in `tls` and a certificate (valid for 30 days, issued an hour
/// ago) for each role and name, all written there.
pub fn issue_all(tls: &Path, names: &[(interlock_identity::Role, &str)]) {
    let ca = interlock_identity::CertificateAuthority::init(tls).unwrap();
    let valid = interlock_identity::Validity::days_from(time::OffsetDateTime::now_utc() - time::Duration::hours(1), 30);
    for (role, name) in names {
        ca.issue(*role, name, &["localhost", "127.0.0.1"], valid).unwrap().write(tls).unwrap();
    }
}

/// The deal of `terms`, signed by both parties, as a gateway takes it.
pub fn signed_deal(terms: &DealTerms, buyer: &PartyKey, seller: &PartyKey) -> v1::SignedDeal {
    let deal_id = terms.id();
    v1::SignedDeal {
        terms_encoded: encode_terms(terms),
        buyer_signature: buyer.sign_deal(deal_id).0.to_vec(),
        seller_signature: seller.sign_deal(deal_id).0.to_vec(),
    }
}

pub fn now_ms() -> u64 {
    u64::try_from(std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis()).unwrap()
}

/// A TLS endpoint to a loopback service, as `name` (its certificate in `tls`).
pub fn endpoint(tls: &Path, name: &str, address: SocketAddr) -> Endpoint {
    Channel::from_shared(format!("https://localhost:{}", address.port()))
        .unwrap()
        .tls_config(TlsFiles::in_dir(tls, name).client_config("localhost").unwrap())
        .unwrap()
}

/// A running gateway; dropping it stops its tasks and its server.
pub struct RunningGateway {
    pub service: GatewayService,
    _tasks: GatewayTasks,
    server: Option<JoinHandle<()>>,
}

impl RunningGateway {
    /// Stops the gateway and waits until its listener is closed.
    pub async fn stop(mut self) {
        if let Some(server) = self.server.take() {
            server.abort();
            let _ = server.await;
        }
    }
}

impl Drop for RunningGateway {
    fn drop(&mut self) {
        if let Some(server) = &self.server {
            server.abort();
        }
    }
}

pub struct GatewaySetup<'a> {
    pub tls: &'a Path,
    pub name: &'a str,
    pub key: PartyKey,
    pub network: NetworkId,
    pub ledger: SocketAddr,
    pub peers: Vec<(NetworkId, SocketAddr)>,
    pub directory: Arc<Directory>,
    pub store: &'a Path,
}

/// Opens a gateway over its SQLite file, starts its tasks and serves it on `listener`.
pub fn start_gateway(setup: GatewaySetup<'_>, listener: TcpListener) -> RunningGateway {
    start_gateway_with(setup, listener, WebhookPolicy::default())
}

/// [`start_gateway`], delivering webhooks by `policy`.
pub fn start_gateway_with(setup: GatewaySetup<'_>, listener: TcpListener, policy: WebhookPolicy) -> RunningGateway {
    let channel = |address| endpoint(setup.tls, setup.name, address).connect_lazy();
    let node = LedgerNodeClient::new(channel(setup.ledger));
    let store = GatewayStore::open(setup.store).unwrap();
    let from = store.cursor().unwrap().unwrap_or(Cursor::start(0));
    let chain = crate::Chain {
        follower: Box::new(NodeFollower::new(setup.network, node.clone(), from)),
        keeper: Some(Arc::new(NodeSubmitter::new(setup.network, node.clone(), setup.key.clone()))),
        relay: crate::Relay::Node(node),
        platform: LedgerPlatform.name().to_owned(),
        capabilities: LedgerPlatform.capabilities(),
    };
    let config = GatewayConfig {
        key: setup.key,
        network: setup.network,
        chain,
        peers: setup
            .peers
            .iter()
            .map(|(network, address)| (*network, GatewayPeerClient::new(channel(*address))))
            .collect(),
        // The directory's notaries that listen on a socket address, for the keeper's verdicts.
        notaries: setup
            .directory
            .notaries
            .iter()
            .filter_map(|notary| {
                let address: SocketAddr = notary.endpoint.parse().ok()?;
                Some((notary.address, NotaryClient::new(channel(address))))
            })
            .collect(),
        directory: setup.directory.clone(),
        clock: now_ms,
        // Each ledger network's pace, as a gateway started from the CLI reads it.
        timings: setup
            .directory
            .networks
            .iter()
            .filter_map(|network| Some((network.id, LedgerPlatform.timing(network.id, &network.config).ok()?)))
            .collect(),
    };
    let service = GatewayService::open(config, store).unwrap();
    let tasks = service.start_with(policy);
    let files = TlsFiles::in_dir(setup.tls, setup.name);
    let (served, directory) = (service.clone(), setup.directory);
    let server = tokio::spawn(async move {
        crate::serve(served, &files, directory, listener, std::future::pending()).await.unwrap();
    });
    RunningGateway { service, _tasks: tasks, server: Some(server) }
}

/// Starts the embedded ledger node of `network` over the SQLite file
/// `store` (a block every 20 ms with transactions, a heartbeat every 100
/// ms, no keeper of its own), serving as `name` on `listener`.
pub fn start_ledger_node(
    tls: &Path,
    name: &str,
    (network, operator): (NetworkId, interlock_core::PartyId),
    store: &Path,
    listener: TcpListener,
    directory: Arc<Directory>,
) {
    let store = interlock_ledger::SqliteStore::open(store).unwrap();
    let genesis = interlock_ledger::Genesis { network, operator, timestamp_ms: now_ms() };
    let service =
        interlock_ledger_node::LedgerNodeService::new(interlock_ledger::Ledger::open(store, genesis).unwrap());
    let pace = interlock_ledger_node::Pace {
        block_interval: std::time::Duration::from_millis(20),
        heartbeat: std::time::Duration::from_millis(100),
    };
    tokio::spawn(service.clone().produce(pace, now_ms));
    let files = TlsFiles::in_dir(tls, name);
    tokio::spawn(async move {
        interlock_ledger_node::serve(service, &files, directory, listener, std::future::pending()).await.unwrap();
    });
}

/// The directory entry of an embedded-ledger network whose node listens at `node`.
pub fn ledger_network(id: NetworkId, name: &str, node: SocketAddr) -> NetworkEntry {
    NetworkEntry {
        id,
        name: name.into(),
        platform: "ledger".into(),
        config: serde_json::json!({ "node": node.to_string() }),
    }
}

/// A listener on a free loopback port, and its address.
pub async fn bind_loopback() -> (TcpListener, SocketAddr) {
    interlock_rpc::server::bind(SocketAddr::from(([127, 0, 0, 1], 0))).await.unwrap()
}

/// Each network's ledger node and gateway on loopback: the sockets bound
/// first, so that a directory can list their addresses, then the nodes and
/// gateways started on them; a gateway stopped and started again comes back
/// at the same address. The network `alpha` has the ledger node
/// `alpha-ledger` and the gateway `gw-alpha`, each with its certificate in
/// `tls` and its SQLite file of its name in the test's directory.
pub struct Networks {
    /// The certificates' directory.
    pub tls: PathBuf,
    dir: PathBuf,
    /// Where each network's ledger node listens.
    pub ledgers: HashMap<NetworkId, SocketAddr>,
    /// Where each network's gateway listens.
    pub gateways: HashMap<NetworkId, SocketAddr>,
    /// The gateways running now.
    pub running: HashMap<NetworkId, RunningGateway>,
    names: Vec<(NetworkId, &'static str)>,
    ledger_listeners: HashMap<NetworkId, TcpListener>,
    gateway_listeners: HashMap<NetworkId, TcpListener>,
}

impl Networks {
    /// Binds a socket for the ledger node and one for the gateway of each
    /// network, given with its name; their files go in `dir`, the
    /// certificates in its `tls`.
    pub async fn bind(dir: &Path, names: &[(NetworkId, &'static str)]) -> Networks {
        let mut bound = Networks {
            tls: dir.join("tls"),
            dir: dir.to_owned(),
            ledgers: HashMap::new(),
            gateways: HashMap::new(),
            running: HashMap::new(),
            names: names.to_vec(),
            ledger_listeners: HashMap::new(),
            gateway_listeners: HashMap::new(),
        };
        for (network, _) in names {
            let (listener, address) = bind_loopback().await;
            bound.ledgers.insert(*network, address);
            bound.ledger_listeners.insert(*network, listener);
            let (listener, address) = bind_loopback().await;
            bound.gateways.insert(*network, address);
            bound.gateway_listeners.insert(*network, listener);
        }
        bound
    }

    fn name(&self, network: NetworkId) -> &'static str {
        self.names.iter().find(|(id, _)| *id == network).expect("a network bound here").1
    }

    /// The name of the ledger node of `network`, `{network}-ledger`.
    pub fn ledger_name(&self, network: NetworkId) -> String {
        format!("{}-ledger", self.name(network))
    }

    /// The name of the gateway of `network`, `gw-{network}`.
    pub fn gateway_name(&self, network: NetworkId) -> String {
        format!("gw-{}", self.name(network))
    }

    /// [`issue_all`], for every ledger node and gateway and for `others`.
    pub fn issue(&self, others: &[(interlock_identity::Role, &str)]) {
        let mut names: Vec<(interlock_identity::Role, String)> = Vec::new();
        for (network, _) in &self.names {
            names.push((interlock_identity::Role::Ledger, self.ledger_name(*network)));
            names.push((interlock_identity::Role::Gateway, self.gateway_name(*network)));
        }
        names.extend(others.iter().map(|(role, name)| (*role, (*name).to_owned())));
        let names: Vec<(interlock_identity::Role, &str)> =
            names.iter().map(|(role, name)| (*role, name.as_str())).collect();
        issue_all(&self.tls, &names);
    }

    /// The directory entries of the networks, embedded ledgers (see [`ledger_network`]).
    pub fn network_entries(&self) -> Vec<NetworkEntry> {
        self.names.iter().map(|(network, name)| ledger_network(*network, name, self.ledgers[network])).collect()
    }

    /// The directory entries of the ledger nodes.
    pub fn ledger_entries(&self) -> Vec<LedgerEntry> {
        (self.names.iter())
            .map(|(network, _)| LedgerEntry {
                name: self.ledger_name(*network),
                network: *network,
                endpoint: self.ledgers[network].to_string(),
            })
            .collect()
    }

    /// The directory entries of the gateways, each signing with `key(network)`.
    pub fn gateway_entries(&self, key: impl Fn(NetworkId) -> PartyKey) -> Vec<GatewayEntry> {
        (self.names.iter())
            .map(|(network, _)| GatewayEntry {
                name: self.gateway_name(*network),
                network: *network,
                endpoint: self.gateways[network].to_string(),
                key: key(*network).public(),
            })
            .collect()
    }

    /// Starts the ledger node of every network (see [`start_ledger_node`])
    /// with `operator` in its genesis.
    pub fn start_ledger_nodes(&mut self, operator: PartyId, directory: &Arc<Directory>) {
        for (network, listener) in std::mem::take(&mut self.ledger_listeners) {
            let name = self.ledger_name(network);
            let store = self.dir.join(format!("{name}.sqlite"));
            start_ledger_node(&self.tls, &name, (network, operator), &store, listener, directory.clone());
        }
    }

    /// Starts (or restarts, from the same SQLite file) the gateway of
    /// `network`, signing with `key` and peered with every other network's
    /// gateway, on its socket, delivering webhooks by `policy`.
    pub async fn start_gateway(
        &mut self,
        (network, key): (NetworkId, PartyKey),
        directory: &Arc<Directory>,
        policy: WebhookPolicy,
    ) {
        let listener = match self.gateway_listeners.remove(&network) {
            Some(listener) => listener,
            None => TcpListener::bind(self.gateways[&network]).await.unwrap(),
        };
        let name = self.gateway_name(network);
        let store = self.dir.join(format!("{name}.sqlite"));
        let peers = (self.gateways.iter())
            .filter(|(peer, _)| **peer != network)
            .map(|(peer, address)| (*peer, *address))
            .collect();
        let setup = GatewaySetup {
            tls: &self.tls,
            name: &name,
            key,
            network,
            ledger: self.ledgers[&network],
            peers,
            directory: directory.clone(),
            store: &store,
        };
        let running = start_gateway_with(setup, listener, policy);
        self.running.insert(network, running);
    }

    /// Stops the gateway of `network`, if it runs, and waits until its socket is closed.
    pub async fn stop_gateway(&mut self, network: NetworkId) {
        if let Some(gateway) = self.running.remove(&network) {
            gateway.stop().await;
        }
    }
}
