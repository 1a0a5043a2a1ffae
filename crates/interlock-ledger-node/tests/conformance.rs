//! The platform conformance suite on the embedded ledger over gRPC: a real
//! ledger node on loopback with mutual TLS and a SQLite file, reached through
//! the platform's `NodeSubmitter` and `NodeFollower` as a gateway reaches it.
//! The checks move the node's clock, so they run one at a time.

use interlock_chain::conformance::{Actor, Harness, FUNDS, ITEMS};
use interlock_chain::{BoxFuture, ChainError, Credentials, Cursor, Follower, Platform, Submitter};
use interlock_core::crypto::PartyKey;
use interlock_core::encoding::Encode;
use interlock_core::{Address, Asset, AssetCode, ItemId, NetworkId};
use interlock_identity::{CertificateAuthority, Directory, GatewayEntry, LedgerEntry, NetworkEntry, Role, Validity};
use interlock_ledger::{Genesis, Holder, Ledger, Op, SqliteStore, Transaction};
use interlock_ledger_node::{LedgerNodeService, LedgerPlatform, NodeSubmitter, Pace};
use interlock_proto::v1;
use interlock_proto::v1::ledger_node_client::LedgerNodeClient;
use interlock_rpc::server::{bind, lazy_channel, TlsFiles};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tonic::transport::Channel;

const NETWORK: NetworkId = NetworkId(21);

/// How far the node's clock runs ahead of the wall clock.
static AHEAD_MS: AtomicU64 = AtomicU64::new(0);
/// One check at a time: they share the clock.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn clock() -> u64 {
    let wall = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("after 1970");
    u64::try_from(wall.as_millis()).expect("fits") + AHEAD_MS.load(Ordering::SeqCst)
}

struct NodeHarness {
    service: LedgerNodeService,
    client: LedgerNodeClient<Channel>,
    credentials: Credentials,
    config: serde_json::Value,
    operator: PartyKey,
    keys: [PartyKey; 3],
    _one: tokio::sync::MutexGuard<'static, ()>,
    _dir: tempfile::TempDir,
}

fn usd() -> AssetCode {
    AssetCode::new("USD").expect("valid code")
}
fn deed() -> AssetCode {
    AssetCode::new("DEED").expect("valid code")
}

async fn harness() -> NodeHarness {
    let one = ONE_AT_A_TIME.lock().await;
    let dir = tempfile::tempdir().expect("a temporary directory");
    let tls = dir.path().join("tls");
    let ca = CertificateAuthority::init(&tls).expect("a CA");
    let valid = Validity::days_from(time::OffsetDateTime::now_utc() - time::Duration::hours(1), 30);
    for (role, name) in [(Role::Ledger, "net-ledger"), (Role::Gateway, "net-gateway")] {
        let issued = ca.issue(role, name, &["localhost", "127.0.0.1"], valid).expect("a certificate");
        issued.write(&tls).expect("certificate files");
    }
    let operator = PartyKey::from_seed([0x0e; 32]);
    let (listener, address) = bind("127.0.0.1:0".parse().expect("an address")).await.expect("a port");
    let directory = Directory {
        networks: vec![NetworkEntry {
            id: NETWORK,
            name: "net".into(),
            platform: "ledger".into(),
            config: Default::default(),
        }],
        ledgers: vec![LedgerEntry { name: "net-ledger".into(), network: NETWORK, endpoint: address.to_string() }],
        gateways: vec![GatewayEntry {
            name: "net-gateway".into(),
            network: NETWORK,
            endpoint: "127.0.0.1:1".into(),
            key: operator.public(),
        }],
        ..Directory::default()
    };
    let store = SqliteStore::open(&dir.path().join("net.sqlite")).expect("a SQLite file");
    let genesis = Genesis { network: NETWORK, operator: operator.public(), timestamp_ms: clock() };
    // No keeper: the checks cancel and execute themselves after expiries.
    let service = LedgerNodeService::new(Ledger::open(store, genesis).expect("a fresh ledger"));
    let pace = Pace { block_interval: Duration::from_millis(10), heartbeat: Duration::from_millis(40) };
    tokio::spawn(service.clone().produce(pace, clock));
    let files = TlsFiles::in_dir(&tls, "net-ledger");
    let serving = service.clone();
    tokio::spawn(async move {
        let served =
            interlock_ledger_node::serve(serving, &files, Arc::new(directory), listener, std::future::pending());
        served.await.expect("the node serves");
    });
    let client_files = TlsFiles::in_dir(&tls, "net-gateway");
    let client = LedgerNodeClient::new(lazy_channel(&address.to_string(), &client_files).expect("a channel"));
    let credentials =
        Credentials { tls_dir: Some(tls.clone()), name: Some("net-gateway".into()), ..Default::default() };
    let config = serde_json::json!({ "node": address.to_string() });
    LedgerPlatform.check_config(NETWORK, &config).expect("a valid configuration");
    let keys = [PartyKey::from_seed([0xb1; 32]), PartyKey::from_seed([0x51; 32]), PartyKey::from_seed([0x66; 32])];
    let harness = NodeHarness { service, client, credentials, config, operator, keys, _one: one, _dir: dir };
    let mut setup = Vec::new();
    for key in &harness.keys {
        setup.push(Op::Register { account: key.public() });
        let to = Address::from_bytes(key.public().0);
        setup.push(Op::Issue { to, asset: Asset::Fungible { code: usd(), amount: FUNDS } });
    }
    for number in 1..=ITEMS {
        setup.push(Op::Issue { to: harness.account(Actor::Seller), asset: harness.item(number) });
    }
    for (index, op) in setup.into_iter().enumerate() {
        let nonce = u64::try_from(index).expect("few") + 1;
        let transaction = Transaction::sign(&harness.operator, NETWORK, nonce, op);
        let request = v1::SubmitTransactionRequest { transaction_encoded: transaction.to_bytes(), wait: true };
        harness.client.clone().submit_transaction(request).await.expect("the operator's setup applies");
    }
    harness
}

impl NodeHarness {
    fn key(&self, actor: Actor) -> &PartyKey {
        match actor {
            Actor::Buyer => &self.keys[0],
            Actor::Seller => &self.keys[1],
            Actor::Stranger => &self.keys[2],
        }
    }

    async fn tip_ms(&self) -> Result<u64, ChainError> {
        let tip = self.client.clone().get_tip(v1::GetTipRequest {}).await;
        Ok(tip.map_err(|status| interlock_ledger_node::platform::status_error(&status))?.into_inner().timestamp_ms)
    }
}

impl Harness for NodeHarness {
    fn network(&self) -> NetworkId {
        NETWORK
    }

    fn account(&self, actor: Actor) -> Address {
        Address::from_bytes(self.key(actor).public().0)
    }

    fn submitter(&self, actor: Actor) -> Arc<dyn Submitter> {
        Arc::new(NodeSubmitter::new(NETWORK, self.client.clone(), self.key(actor).clone()))
    }

    fn fungible(&self, amount: u128) -> Asset {
        Asset::Fungible { code: usd(), amount }
    }

    fn item(&self, number: u64) -> Asset {
        Asset::Unique { class: deed(), item: ItemId::from_u128(u128::from(number)) }
    }

    fn balance(&mut self, actor: Actor, asset: &Asset) -> BoxFuture<'_, Result<u128, ChainError>> {
        let account = self.account(actor);
        let held = self.service.read_state(|state| match asset {
            Asset::Fungible { code, .. } => state.balance(&account, code),
            Asset::Unique { class, item } => {
                u128::from(state.item_holder(class, item) == Some(Holder::Account(account)))
            }
        });
        Box::pin(async move { Ok(held) })
    }

    fn now_ms(&mut self) -> BoxFuture<'_, Result<u64, ChainError>> {
        Box::pin(self.tip_ms())
    }

    /// Moves the node's clock and waits for a block stamped after the move.
    fn advance(&mut self, ms: u64) -> BoxFuture<'_, Result<(), ChainError>> {
        let target = clock() + ms;
        AHEAD_MS.fetch_add(ms, Ordering::SeqCst);
        Box::pin(async move {
            while self.tip_ms().await? < target {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            Ok(())
        })
    }

    /// Every submission waited for its block: nothing more to wait for.
    fn settle(&mut self) -> BoxFuture<'_, Result<(), ChainError>> {
        Box::pin(async { Ok(()) })
    }

    fn start(&self) -> Cursor {
        Cursor::start(0)
    }

    fn follower(&mut self, from: Cursor) -> BoxFuture<'_, Result<Box<dyn Follower>, ChainError>> {
        Box::pin(LedgerPlatform.follower(NETWORK, &self.config, &self.credentials, from))
    }
}

interlock_chain::conformance_suite!(harness());
