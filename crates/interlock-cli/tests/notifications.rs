//! The sandbox's sample dependent (warranty) and the gateways' durable webhook
//! outbox, through real processes: a deal naming the dependent completes
//! while the dependent is down, both gateways are killed with SIGKILL with the
//! completion still undelivered, everything restarts, and the dependent
//! receives the completion exactly once (both gateways deliver it; it keeps
//! one by its Idempotency-Key). The dependent refuses bad signatures and bad
//! bodies and does not log a duplicate.

mod common;

use common::sandbox::{interlock, Sandbox};

use interlock_core::crypto::{PartyKey, Secret, Token};
use interlock_core::encoding::Encode as _;
use interlock_core::saga::expected_request;
use interlock_core::{
    reservation_id, Address, Asset, AssetCode, DealTerms, EscrowOp, Leg, LegKind, NetworkId, PartyId, Policy,
    Settlement,
};
use interlock_identity::SignedDirectory;
use interlock_ledger::{Op, Transaction};
use interlock_proto::v1;
use interlock_proto::v1::gateway_client::GatewayClient;
use interlock_rpc::server::{lazy_channel, TlsFiles};
use std::io::{Read as _, Write as _};
use std::path::{Path, PathBuf};
use std::time::Duration;
use tonic::transport::Channel;

fn ok(args: &[&str], dir: &Path) -> String {
    let output = interlock(args, dir);
    assert!(
        output.status.success(),
        "interlock {args:?}: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Polls `probe` every 100 ms until it yields, for at most `seconds`.
fn until<T>(what: &str, seconds: u64, mut probe: impl FnMut() -> Option<T>) -> T {
    let started = std::time::Instant::now();
    loop {
        if let Some(found) = probe() {
            return found;
        }
        assert!(started.elapsed() < Duration::from_secs(seconds), "{what}: not within {seconds} s");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// One HTTP/1.1 request to `address`; returns the status code and the body.
fn http(address: &str, method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> (u16, String) {
    let mut stream = std::net::TcpStream::connect(address).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut request = format!("{method} {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n");
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
    stream.write_all(request.as_bytes()).unwrap();
    stream.write_all(body).unwrap();
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).unwrap();
    let answer = String::from_utf8_lossy(&answer).into_owned();
    let status = answer.split_whitespace().nth(1).and_then(|code| code.parse().ok()).unwrap_or(0);
    let body = answer.split_once("\r\n\r\n").map_or_else(String::new, |(_, body)| body.to_owned());
    (status, body)
}

fn seed(path: &Path) -> [u8; 32] {
    let text = std::fs::read_to_string(path).unwrap();
    interlock_core::hash::from_hex(text.trim()).unwrap().try_into().unwrap()
}

struct World {
    sb: PathBuf,
    directory: interlock_identity::Directory,
    buyer: PartyKey,
    seller: PartyKey,
    alpha: NetworkId,
    beta: NetworkId,
}

impl World {
    fn open(sb: &Path) -> World {
        let directory = SignedDirectory::load(&sb.join("directory.json")).unwrap().directory;
        let network = |name: &str| directory.networks.iter().find(|n| n.name == name).unwrap().id;
        let (alpha, beta) = (network("alpha"), network("beta"));
        let buyer = PartyKey::from_seed(seed(&sb.join("parties/buyer.key")));
        let seller = PartyKey::from_seed(seed(&sb.join("parties/seller.key")));
        World { sb: sb.to_owned(), directory, buyer, seller, alpha, beta }
    }

    fn gateway(&self, network: NetworkId, caller: &str) -> GatewayClient<Channel> {
        let endpoint = &self.directory.gateway_for(network).unwrap().endpoint;
        GatewayClient::new(lazy_channel(endpoint, &TlsFiles::in_dir(&self.sb.join("tls"), caller)).unwrap())
    }

    fn warranty(&self) -> PartyId {
        self.directory.dependent("warranty").unwrap().key
    }

    /// The buyer pays 25 USD on alpha for 10 GOLD on beta, hashlock, naming the warranty dependent.
    fn terms(&self, secret: &Secret) -> DealTerms {
        let leg = |network, code: &str, amount, owner: &PartyKey, beneficiary: &PartyKey| Leg {
            network,
            asset: Asset::Fungible { code: AssetCode::new(code).unwrap(), amount },
            owner: Address::from_bytes(owner.public().0),
            beneficiary: Address::from_bytes(beneficiary.public().0),
            keeper: None,
        };
        let now_ms =
            u64::try_from(std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis())
                .unwrap();
        DealTerms {
            buyer: self.buyer.public(),
            seller: self.seller.public(),
            payment: leg(self.alpha, "USD", 25, &self.buyer, &self.seller),
            delivery: leg(self.beta, "GOLD", 10, &self.seller, &self.buyer),
            settlement: Settlement::Hashlock {
                hash: secret.hash(),
                payment_expiry_ms: now_ms + 120_000,
                delivery_expiry_ms: now_ms + 60_000,
                margin_ms: 1_000,
            },
            policy: Policy::default(),
            observers: vec![],
            dependents: vec![self.warranty()],
            nonce: now_ms,
        }
    }

    async fn submit(&self, network: NetworkId, caller: &str, key: &PartyKey, op: EscrowOp) {
        let mut gateway = self.gateway(network, caller);
        let account = v1::GetAccountRequest { account: key.public().0.to_vec() };
        let nonce = gateway.get_account(account).await.unwrap().into_inner().nonce + 1;
        let tx = Transaction::sign(key, network, nonce, Op::Escrow(op));
        gateway.submit(v1::SubmitRequest { transaction_encoded: tx.to_bytes() }).await.unwrap();
    }

    async fn wait_reservation(&self, network: NetworkId, id: interlock_core::ReservationId, state: &str) {
        for _ in 0..200 {
            let request = v1::GetReservationRequest { reservation_id: id.0 .0.to_vec() };
            if let Ok(found) = self.gateway(network, "buyer").get_reservation(request).await {
                if found.into_inner().state == state {
                    return;
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("reservation {id} not {state} on {network} within 10 s");
    }

    async fn kinds(&self, network: NetworkId, terms: &DealTerms) -> Vec<String> {
        let request = v1::GetDealRequest { deal_id: terms.id().0 .0.to_vec() };
        match self.gateway(network, "buyer").get_deal(request).await {
            Ok(status) => status.into_inner().events.into_iter().map(|event| event.kind).collect(),
            Err(_) => Vec::new(),
        }
    }

    /// Registers the deal and runs it to completion through the gateways.
    async fn run_deal(&self, terms: &DealTerms, secret: Secret) {
        let deal_id = terms.id();
        let signed = v1::SignedDeal {
            terms_encoded: interlock_core::encoding::encode_terms(terms),
            buyer_signature: self.buyer.sign_deal(deal_id).0.to_vec(),
            seller_signature: self.seller.sign_deal(deal_id).0.to_vec(),
        };
        self.gateway(self.alpha, "buyer").register_deal(signed).await.unwrap();
        for _ in 0..200 {
            if !self.kinds(self.beta, terms).await.is_empty() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let (payment, delivery) =
            (reservation_id(deal_id, LegKind::Payment), reservation_id(deal_id, LegKind::Delivery));
        let reserve = |leg| EscrowOp::Reserve(expected_request(terms, deal_id, leg));
        self.submit(self.alpha, "buyer", &self.buyer, reserve(LegKind::Payment)).await;
        self.submit(self.beta, "seller", &self.seller, reserve(LegKind::Delivery)).await;
        self.wait_reservation(self.alpha, payment, "reserved").await;
        self.wait_reservation(self.beta, delivery, "reserved").await;
        let execute = |reservation| EscrowOp::Execute { reservation, token: Token::Secret(secret) };
        self.submit(self.beta, "buyer", &self.buyer, execute(delivery)).await;
        self.wait_reservation(self.beta, delivery, "executed").await;
        self.submit(self.alpha, "seller", &self.seller, execute(payment)).await;
        self.wait_reservation(self.alpha, payment, "executed").await;
    }
}

/// Webhook deliveries waiting in a gateway's SQLite outbox.
fn queued(sb: &Path, gateway: &str) -> i64 {
    let store = rusqlite::Connection::open(sb.join(gateway).join("gateway.sqlite")).unwrap();
    store.query_row("SELECT COUNT(*) FROM webhooks", [], |row| row.get(0)).unwrap()
}

fn warranty_address(sb: &Path) -> String {
    let state: serde_json::Value = serde_json::from_slice(&std::fs::read(sb.join("sandbox.json")).unwrap()).unwrap();
    let processes = state["processes"].as_array().unwrap();
    let warranty = processes.iter().find(|p| p["name"] == "warranty").unwrap();
    warranty["address"].as_str().unwrap().to_owned()
}

fn received(address: &str) -> Vec<serde_json::Value> {
    let (status, body) = http(address, "GET", "/received", &[], b"");
    assert_eq!(status, 200, "{body}");
    serde_json::from_str::<serde_json::Value>(&body).unwrap().as_array().unwrap().clone()
}

fn sign(secret: &[u8], body: &[u8]) -> String {
    interlock_gateway::webhook::signature(secret, body)
}

#[test]
fn the_dependent_gets_a_completion_exactly_once_across_a_gateway_crash_before_delivery() {
    let dir = tempfile::tempdir().unwrap();
    ok(&["sandbox", "up", "--dir", "sb"], dir.path());
    let _sandbox = Sandbox(dir.path().to_owned());
    let sb = dir.path().join("sb");
    let log = sb.join("logs/warranty.log");
    until("the dependent subscribed at both gateways", 20, || {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        (text.matches("subscribed at").count() == 2).then_some(())
    });
    let world = World::open(&sb);

    // The dependent is down while the deal completes: the completion waits
    // in both gateways' outboxes.
    ok(&["sandbox", "kill", "--dir", "sb", "warranty"], dir.path());
    let secret = Secret([0x5a; 32]);
    let terms = world.terms(&secret);
    let deal_id = terms.id();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        world.run_deal(&terms, secret).await;
        for network in [world.alpha, world.beta] {
            for _ in 0..200 {
                if world.kinds(network, &terms).await.iter().any(|kind| kind == "completed") {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            assert!(world.kinds(network, &terms).await.iter().any(|kind| kind == "completed"), "{network}");
        }
    });
    for gateway in ["alpha-gateway", "beta-gateway"] {
        assert_eq!(queued(&sb, gateway), 1, "{gateway} holds the undelivered completion");
    }

    // Both gateways die with it undelivered, and come back.
    for gateway in ["alpha-gateway", "beta-gateway"] {
        ok(&["sandbox", "kill", "--dir", "sb", gateway], dir.path());
    }
    for gateway in ["alpha-gateway", "beta-gateway"] {
        ok(&["sandbox", "start", "--dir", "sb", gateway], dir.path());
    }
    ok(&["sandbox", "start", "--dir", "sb", "warranty"], dir.path());
    let address = warranty_address(&sb);
    let completion = format!("{deal_id}:completed");
    until("both gateways delivered the completion", 60, || {
        let delivered = queued(&sb, "alpha-gateway") == 0 && queued(&sb, "beta-gateway") == 0;
        (delivered && received(&address).iter().any(|event| event["event_id"] == completion.as_str())).then_some(())
    });
    let events = received(&address);
    let ours: Vec<_> = events.iter().filter(|event| event["deal_id"] == deal_id.to_string()).collect();
    assert_eq!(ours.len(), 1, "the completion once, and nothing else of the deal: {events:?}");
    assert_eq!((ours[0]["event_id"].as_str(), ours[0]["kind"].as_str()), (Some(&*completion), Some("completed")));
    let line = format!("warranty: deal {deal_id} completed — starting warranty");
    let text = std::fs::read_to_string(&log).unwrap();
    assert_eq!(text.matches(&line).count(), 1, "{text}");
    let dead = ok(&["gateway", "--data", "sb/alpha-gateway", "--dead-letters", "--json"], dir.path());
    assert_eq!(dead.trim(), r#"{"dead_letters":[]}"#);

    // The dependent checks what it is sent.
    let secret = seed(&sb.join("warranty/webhook.secret"));
    let body = serde_json::json!({
        "event_id": completion.as_str(), "deal_id": deal_id.to_string(), "kind": "completed",
        "network": 1, "height": 1, "timestamp_ms": 1, "text": "again",
    })
    .to_string();
    let post = |body: &[u8], signature: &str, key: &str| {
        let headers =
            [("Interlock-Signature", signature), ("Idempotency-Key", key), ("Content-Type", "application/json")];
        http(&address, "POST", "/webhook", &headers, body).0
    };
    let good = sign(&secret, body.as_bytes());
    assert_eq!(post(body.as_bytes(), &sign(b"not the secret at all", body.as_bytes()), &completion), 401);
    assert_eq!(post(format!("{body} ").as_bytes(), &good, &completion), 401, "a changed body");
    assert_eq!(post(body.as_bytes(), "", &completion), 401, "no signature");
    assert_eq!(post(b"{not json", &sign(&secret, b"{not json"), &completion), 400);
    assert_eq!(post(body.as_bytes(), &good, "another key"), 400, "the key must be the event id");
    assert_eq!(post(body.as_bytes(), &good, &completion), 200, "a duplicate is acknowledged");
    std::thread::sleep(Duration::from_millis(200));
    let text = std::fs::read_to_string(&log).unwrap();
    assert_eq!(text.matches(&line).count(), 1, "a duplicate is not logged again: {text}");
    assert_eq!(received(&address).len(), events.len());
}
