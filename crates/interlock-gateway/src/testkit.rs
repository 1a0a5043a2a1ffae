//! Starting real services on loopback for the tests of this crate and of the
//! roles that talk to a gateway: certificates, TLS channels and gateways.

use crate::gateway_store::GatewayStore;
use crate::{GatewayConfig, GatewayService, GatewayTasks, WebhookPolicy};
use interlock_chain::Cursor;
use interlock_chain::Platform as _;
use interlock_core::crypto::PartyKey;
use interlock_core::NetworkId;
use interlock_identity::{Directory, NetworkEntry};
use interlock_ledger_node::{LedgerPlatform, NodeFollower, NodeSubmitter};
use interlock_proto::v1::gateway_peer_client::GatewayPeerClient;
use interlock_proto::v1::ledger_node_client::LedgerNodeClient;
use interlock_proto::v1::notary_client::NotaryClient;
use interlock_rpc::server::TlsFiles;
use std::net::SocketAddr;
use std::path::Path;
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
