//! Two networks, each a ledger node with a gateway in front, over real gRPC and
//! mutual TLS on loopback with SQLite files: deals proposed and registered
//! through the gateways, transactions relayed and refused, lock assertions
//! and notifications between the gateways (and forged ones refused), the
//! keeper's refund and its hashlock execution for an absent seller, and a
//! gateway restarted from its file. `gateway/notifications.rs`: deal streams
//! resumed after a disconnect, webhooks (signed, retried, dead-lettered).
//! `gateway/peer_reports.rs`: altered notifications and assertions refused.
//! `gateway/group_commit.rs`: concurrent registrations share commits.

use interlock_core::crypto::{Certificate, Decision, NotaryKey, PartyKey, Secret, Token};
use interlock_core::encoding::{encode_terms, Decode, Encode};
use interlock_core::saga::expected_request;
use interlock_core::{
    reservation_id, Address, Asset, AssetCode, DealId, DealTerms, EscrowEvent, EscrowOp, Hash32, Leg, LegKind,
    NetworkId, Policy, Settlement,
};
use interlock_gateway::checks::sign_lock_assertion;
use interlock_gateway::testkit::{endpoint, now_ms, Networks};
use interlock_gateway::{GatewayService, WebhookPolicy, GRACE_MS};
use interlock_identity::{DependentEntry, Directory, NotaryEntry, PartyEntry, Role};
use interlock_ledger::{Op, Transaction};
use interlock_proto::v1;
use interlock_proto::v1::gateway_client::GatewayClient;
use interlock_proto::v1::gateway_peer_client::GatewayPeerClient;
use interlock_proto::v1::ledger_node_client::LedgerNodeClient;
use interlock_rpc::server::{TlsFiles, MESSAGE_LEN_MAX};
use std::sync::Arc;
use std::time::Duration;
use tokio_stream::StreamExt as _;
use tonic::transport::Channel;
use tonic::Code;

const ALPHA: NetworkId = NetworkId(1);
const BETA: NetworkId = NetworkId(2);
const FUNDS: u128 = 1_000;

fn usd() -> AssetCode {
    AssetCode::new("USD").unwrap()
}

/// Two ledger nodes (no keeper of their own: the gateways' keepers are under
/// test), two gateways, and the parties buyer, seller and carol, funded on both.
struct World {
    dir: tempfile::TempDir,
    directory: Arc<Directory>,
    networks: Networks,
    operator: PartyKey,
    buyer: PartyKey,
    seller: PartyKey,
    carol: PartyKey,
}

/// The key the directory lists for the observer `obs`.
fn observer_key() -> PartyKey {
    PartyKey::from_seed([11; 32])
}

/// The key deal terms name the dependent "warranty" by.
fn warranty_key() -> PartyKey {
    PartyKey::from_seed([5; 32])
}

/// Fast retries, so the webhook tests see the last attempt soon.
fn test_webhook_policy() -> WebhookPolicy {
    WebhookPolicy {
        base: Duration::from_millis(20),
        cap: Duration::from_millis(200),
        attempts: 4,
        timeout: Duration::from_secs(2),
    }
}

fn gateway_key(network: NetworkId) -> PartyKey {
    PartyKey::from_seed([40 + u8::try_from(network.0).unwrap(); 32])
}

/// The key of the directory's one notary, n1.
fn notary_key() -> NotaryKey {
    NotaryKey::from_seed([9; 32]).unwrap()
}

/// Notary mode under n1 alone (1 of 1): its decision due `deadline_in_ms`
/// from now, the backstop `backstop_in_ms` from now.
fn notary_settlement(deadline_in_ms: u64, backstop_in_ms: u64) -> Settlement {
    let now = now_ms();
    Settlement::Notary {
        notaries: vec![notary_key().address()],
        threshold: 1,
        decision_deadline_ms: now + deadline_in_ms,
        backstop_expiry_ms: now + backstop_in_ms,
    }
}

/// n1's certificate of `decision` on the deal.
fn certificate(deal_id: DealId, decision: Decision) -> Certificate {
    Certificate { deal_id, decision, signatures: vec![notary_key().sign_decision(deal_id, decision).signature] }
}

impl World {
    /// Everything but the gateways, which `start` brings up.
    async fn new() -> World {
        let dir = tempfile::tempdir().unwrap();
        let mut networks = Networks::bind(dir.path(), &[(ALPHA, "alpha"), (BETA, "beta")]).await;
        let others = [
            (Role::Party, "buyer"),
            (Role::Party, "seller"),
            (Role::Party, "carol"),
            (Role::Notary, "n1"),
            (Role::Observer, "obs"),
            (Role::Dependent, "warranty"),
        ];
        networks.issue(&others);
        // A client whose certificate comes from another CA.
        interlock_gateway::testkit::issue_all(&dir.path().join("other"), &[(Role::Party, "buyer")]);

        let operator = PartyKey::from_seed([1; 32]);
        let (buyer, seller, carol) =
            (PartyKey::from_seed([2; 32]), PartyKey::from_seed([3; 32]), PartyKey::from_seed([4; 32]));
        let party = |name: &str, key: &PartyKey| PartyEntry {
            name: name.into(),
            key: key.public(),
            accounts: [(ALPHA, Address::from_bytes(key.public().0)), (BETA, Address::from_bytes(key.public().0))]
                .into(),
        };
        let directory = Arc::new(Directory {
            networks: networks.network_entries(),
            ledgers: networks.ledger_entries(),
            gateways: networks.gateway_entries(gateway_key),
            parties: vec![party("buyer", &buyer), party("seller", &seller), party("carol", &carol)],
            notaries: vec![NotaryEntry {
                name: "n1".into(),
                endpoint: "127.0.0.1:1".into(),
                address: notary_key().address(),
            }],
            observers: vec![interlock_identity::ObserverEntry {
                name: "obs".into(),
                endpoint: "127.0.0.1:1".into(),
                key: observer_key().public(),
            }],
            dependents: vec![DependentEntry { name: "warranty".into(), key: warranty_key().public() }],
            links: None,
        });
        directory.validate().unwrap();
        networks.start_ledger_nodes(operator.public(), &directory);
        let world = World { dir, directory, networks, operator, buyer, seller, carol };
        world.fund().await;
        world
    }

    /// A world with both gateways running.
    async fn start() -> World {
        let mut world = World::new().await;
        world.start_gateway(ALPHA).await;
        world.start_gateway(BETA).await;
        world
    }

    /// Registers the parties and the gateway's key on both networks, and funds the parties.
    async fn fund(&self) {
        for network in [ALPHA, BETA] {
            let mut ops = vec![Op::Register { account: gateway_key(network).public() }];
            for key in [&self.buyer, &self.seller, &self.carol] {
                ops.push(Op::Register { account: key.public() });
                let asset = Asset::Fungible { code: usd(), amount: FUNDS };
                ops.push(Op::Issue { to: Address::from_bytes(key.public().0), asset });
            }
            for (nonce, op) in (1..).zip(ops) {
                let tx = Transaction::sign(&self.operator, network, nonce, op);
                let request = v1::SubmitTransactionRequest { transaction_encoded: tx.to_bytes(), wait: true };
                self.ledger(network).submit_transaction(request).await.unwrap();
            }
        }
    }

    /// Starts (or restarts, from the same SQLite file) the gateway of `network`.
    async fn start_gateway(&mut self, network: NetworkId) {
        self.networks.start_gateway((network, gateway_key(network)), &self.directory, test_webhook_policy()).await;
    }

    async fn stop_gateway(&mut self, network: NetworkId) {
        self.networks.stop_gateway(network).await;
    }

    /// The running gateway of `network`.
    fn service(&self, network: NetworkId) -> &GatewayService {
        &self.networks.running[&network].service
    }

    /// A client of the ledger node of `network`, as that network's gateway:
    /// gateways are the ones that reach a ledger (the transactions carry their
    /// own signers).
    fn ledger(&self, network: NetworkId) -> LedgerNodeClient<Channel> {
        LedgerNodeClient::new(
            endpoint(&self.networks.tls, &self.networks.gateway_name(network), self.networks.ledgers[&network])
                .connect_lazy(),
        )
    }

    /// A client of the gateway of `network` with the certificate of `name`.
    fn gateway(&self, network: NetworkId, name: &str) -> GatewayClient<Channel> {
        GatewayClient::new(endpoint(&self.networks.tls, name, self.networks.gateways[&network]).connect_lazy())
    }

    fn peer(&self, network: NetworkId, name: &str) -> GatewayPeerClient<Channel> {
        GatewayPeerClient::new(endpoint(&self.networks.tls, name, self.networks.gateways[&network]).connect_lazy())
    }

    async fn balance(&self, network: NetworkId, key: &PartyKey) -> u128 {
        let request = v1::GetAccountRequest { account: key.public().0.to_vec() };
        let account = self.ledger(network).get_account(request).await.unwrap().into_inner();
        account.balances.iter().find(|b| b.asset == "USD").map_or(0, |b| b.amount.parse().unwrap())
    }

    /// A hashlock deal: the buyer pays 30 on alpha, the seller delivers 20 on
    /// beta; `keeper` may execute the payment for the seller.
    fn terms(
        &self,
        nonce: u64,
        secret: &Secret,
        keeper: Option<Address>,
        delivery_in_ms: u64,
        payment_in_ms: u64,
    ) -> DealTerms {
        let leg = |network, owner: &PartyKey, beneficiary: &PartyKey, amount, keeper| Leg {
            network,
            asset: Asset::Fungible { code: usd(), amount },
            owner: Address::from_bytes(owner.public().0),
            beneficiary: Address::from_bytes(beneficiary.public().0),
            keeper,
        };
        let now = now_ms();
        DealTerms {
            buyer: self.buyer.public(),
            seller: self.seller.public(),
            payment: leg(ALPHA, &self.buyer, &self.seller, 30, keeper),
            delivery: leg(BETA, &self.seller, &self.buyer, 20, None),
            settlement: Settlement::Hashlock {
                hash: secret.hash(),
                payment_expiry_ms: now + payment_in_ms,
                delivery_expiry_ms: now + delivery_in_ms,
                margin_ms: 200,
            },
            policy: Policy::default(),
            observers: vec![],
            dependents: vec![],
            nonce,
        }
    }

    /// A hashlock deal with time to spare: a minute to the delivery's expiry,
    /// two to the payment's.
    fn open_terms(&self, nonce: u64, secret: &Secret) -> DealTerms {
        self.terms(nonce, secret, None, 60_000, 120_000)
    }

    fn signed(&self, terms: &DealTerms, buyer: bool, seller: bool) -> v1::SignedDeal {
        let deal_id = terms.id();
        v1::SignedDeal {
            terms_encoded: encode_terms(terms),
            buyer_signature: if buyer { self.buyer.sign_deal(deal_id).0.to_vec() } else { vec![] },
            seller_signature: if seller { self.seller.sign_deal(deal_id).0.to_vec() } else { vec![] },
        }
    }

    /// Submits `op` signed by `key` on `network` through that network's gateway, as `caller`.
    async fn submit(
        &self,
        network: NetworkId,
        caller: &str,
        key: &PartyKey,
        nonce: u64,
        op: EscrowOp,
    ) -> Result<Vec<u8>, tonic::Status> {
        self.submit_signed(network, caller, &Transaction::sign(key, network, nonce, Op::Escrow(op))).await
    }

    /// Submits the signed transaction `tx` through the gateway of `network`,
    /// as `caller`: the id the gateway answers with.
    async fn submit_signed(
        &self,
        network: NetworkId,
        caller: &str,
        tx: &Transaction,
    ) -> Result<Vec<u8>, tonic::Status> {
        let request = v1::SubmitRequest { transaction_encoded: tx.to_bytes() };
        Ok(self.gateway(network, caller).submit(request).await?.into_inner().transaction_id)
    }

    async fn reservation_state(&self, network: NetworkId, id: interlock_core::ReservationId) -> Option<String> {
        let request = v1::GetReservationRequest { reservation_id: id.0 .0.to_vec() };
        let found = self.gateway(network, "buyer").get_reservation(request).await.ok()?;
        Some(found.into_inner().state)
    }

    async fn wait_reservation(&self, network: NetworkId, id: interlock_core::ReservationId, state: &str) {
        until(&format!("reservation {id} {state} on {network}"), || async {
            (self.reservation_state(network, id).await.as_deref() == Some(state)).then_some(())
        })
        .await;
    }

    /// Registers `terms` at alpha's gateway as the buyer, signed by both parties.
    async fn register(&self, terms: &DealTerms) {
        self.gateway(ALPHA, "buyer").register_deal(self.signed(terms, true, true)).await.unwrap();
    }

    /// The buyer reserves the payment of `terms` at alpha (its first
    /// transaction there); the reservation, once the gateway reports it reserved.
    async fn reserve_payment(&self, terms: &DealTerms) -> interlock_core::ReservationId {
        let deal_id = terms.id();
        let reserve = EscrowOp::Reserve(expected_request(terms, deal_id, LegKind::Payment));
        self.submit(ALPHA, "buyer", &self.buyer, 1, reserve).await.unwrap();
        let payment = reservation_id(deal_id, LegKind::Payment);
        self.wait_reservation(ALPHA, payment, "reserved").await;
        payment
    }

    /// Both gateways running, and an open hashlock deal (nonce 1, the secret
    /// `[seed; 32]`) registered at alpha: the world, the secret and the terms.
    async fn with_deal(seed: u8) -> (World, Secret, DealTerms) {
        let world = World::start().await;
        let secret = Secret([seed; 32]);
        let terms = world.open_terms(1, &secret);
        world.register(&terms).await;
        (world, secret, terms)
    }

    /// Registers `terms` at alpha, waits until beta's gateway knows the deal
    /// (it reports on none it does not know), and has both parties reserve
    /// their legs; the payment's and the delivery's reservations, reserved.
    async fn reserve_both(&self, terms: &DealTerms) -> (interlock_core::ReservationId, interlock_core::ReservationId) {
        let deal_id = terms.id();
        self.register(terms).await;
        until("the registration at beta", || async { self.event_kinds(BETA, "seller", deal_id).await.ok() }).await;
        let payment = self.reserve_payment(terms).await;
        let delivery = EscrowOp::Reserve(expected_request(terms, deal_id, LegKind::Delivery));
        self.submit(BETA, "seller", &self.seller, 1, delivery).await.unwrap();
        let delivery = reservation_id(deal_id, LegKind::Delivery);
        self.wait_reservation(BETA, delivery, "reserved").await;
        (payment, delivery)
    }

    /// The kinds of the deal's events at the gateway of `network`, read as `caller`.
    async fn event_kinds(
        &self,
        network: NetworkId,
        caller: &str,
        deal_id: DealId,
    ) -> Result<Vec<String>, tonic::Status> {
        let request = v1::GetDealRequest { deal_id: deal_id.0 .0.to_vec() };
        let status = self.gateway(network, caller).get_deal(request).await?.into_inner();
        Ok(status.events.into_iter().map(|event| event.kind).collect())
    }
}

/// Polls `probe` every 50 ms until it yields, for at most 10 s.
async fn until<T, F, Fut>(what: &str, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    for _ in 0..200 {
        if let Some(found) = probe().await {
            return found;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{what}: not within 10 s");
}

/// Asserts a refusal's code and that its message says `text`.
fn check<T: std::fmt::Debug>(name: &str, result: Result<T, tonic::Status>, code: Code, text: &str) {
    let status = result.expect_err(name);
    assert_eq!(status.code(), code, "{name}: {}", status.message());
    assert!(status.message().contains(text), "{name}: message {:?} lacks {text:?}", status.message());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proposals_and_registrations_reach_both_gateways_and_only_their_parties() {
    let world = World::start().await;
    let secret = Secret([7; 32]);
    let terms = world.open_terms(1, &secret);
    let deal_id = terms.id();
    let mut seller_watch =
        world.gateway(BETA, "seller").watch_deals(v1::WatchDealsRequest { from_seq: 0 }).await.unwrap().into_inner();
    let mut carol_watch =
        world.gateway(BETA, "carol").watch_deals(v1::WatchDealsRequest { from_seq: 0 }).await.unwrap().into_inner();

    // The buyer proposes at its gateway; the seller sees it at the other one.
    let proposed =
        world.gateway(ALPHA, "buyer").propose_deal(world.signed(&terms, true, false)).await.unwrap().into_inner();
    assert_eq!((proposed.kind.as_str(), proposed.deal_id.as_slice()), ("proposed", &deal_id.0 .0[..]));
    let seen = tokio::time::timeout(Duration::from_secs(10), seller_watch.next()).await.unwrap().unwrap().unwrap();
    assert_eq!((seen.kind.as_str(), seen.deal_id.as_slice()), ("proposed", &deal_id.0 .0[..]));
    assert!(seen.deal.unwrap().seller_signature.is_empty());

    // A party proposes only for itself.
    let as_seller = world.gateway(ALPHA, "buyer").propose_deal(world.signed(&terms, false, true)).await;
    check("proposal signed by another party", as_seller, Code::PermissionDenied, "proposes only for itself");

    // The seller countersigns and registers at its gateway: both gateways have it.
    let registered =
        world.gateway(BETA, "seller").register_deal(world.signed(&terms, true, true)).await.unwrap().into_inner();
    assert_eq!(registered.kind, "registered");
    let seen = tokio::time::timeout(Duration::from_secs(10), seller_watch.next()).await.unwrap().unwrap().unwrap();
    assert_eq!((seen.kind.as_str(), seen.seq), ("registered", registered.seq));
    until("the registration at the buyer's gateway", || async {
        let request = v1::GetDealRequest { deal_id: deal_id.0 .0.to_vec() };
        let status = world.gateway(ALPHA, "buyer").get_deal(request).await.ok()?.into_inner();
        (status.state == "registered").then_some(())
    })
    .await;
    let again =
        world.gateway(BETA, "seller").register_deal(world.signed(&terms, true, true)).await.unwrap().into_inner();
    assert_eq!(again.seq, registered.seq, "registration is idempotent");
    let kinds = world.event_kinds(BETA, "seller", deal_id).await.unwrap();
    assert_eq!(kinds, ["proposed", "registered"]);

    // Carol is in neither: she sees no notice and may not read the deal.
    let nothing = tokio::time::timeout(Duration::from_millis(300), carol_watch.next()).await;
    assert!(nothing.is_err(), "carol saw {nothing:?}");
    let carol = world.event_kinds(ALPHA, "carol", deal_id).await;
    check("a stranger reading a deal", carol, Code::PermissionDenied, "neither the buyer nor the seller");
    // A notary may read it, but not propose.
    assert_eq!(world.event_kinds(ALPHA, "n1", deal_id).await.unwrap()[..2], ["proposed", "registered"]);
    let notary = world.gateway(ALPHA, "n1").propose_deal(world.signed(&terms, true, false)).await;
    check("a notary proposing", notary, Code::PermissionDenied, "ProposeDeal is for parties");

    // Signed by the buyer only: refused, and nothing is recorded at either gateway.
    let lone = world.open_terms(2, &secret);
    let refused = world.gateway(ALPHA, "buyer").register_deal(world.signed(&lone, true, false)).await;
    check("registration with one signature", refused, Code::Unauthenticated, "not signed by its seller");
    let mut forged = world.signed(&lone, true, false);
    forged.seller_signature = world.buyer.sign_deal(lone.id()).0.to_vec();
    let refused = world.gateway(ALPHA, "buyer").register_deal(forged).await;
    check("seller signature by the buyer", refused, Code::Unauthenticated, "seller signature does not verify");
    tokio::time::sleep(Duration::from_millis(300)).await;
    for network in [ALPHA, BETA] {
        let unknown = world.event_kinds(network, "buyer", lone.id()).await;
        check("the refused deal", unknown, Code::NotFound, "knows no deal");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_observer_follows_and_reads_only_the_deals_that_name_it() {
    let world = World::start().await;
    let secret = Secret([8; 32]);
    let unnamed = world.open_terms(11, &secret);
    let mut named = world.open_terms(12, &secret);
    named.observers = vec![observer_key().public()];
    let mut watch =
        world.gateway(ALPHA, "obs").watch_deals(v1::WatchDealsRequest { from_seq: 0 }).await.unwrap().into_inner();
    for terms in [&unnamed, &named] {
        world.gateway(ALPHA, "buyer").propose_deal(world.signed(terms, true, false)).await.unwrap();
    }

    // Its notices carry the deal that names it, and only that one.
    let seen = tokio::time::timeout(Duration::from_secs(10), watch.next()).await.unwrap().unwrap().unwrap();
    assert_eq!((seen.kind.as_str(), seen.deal_id.as_slice()), ("proposed", &named.id().0 .0[..]));
    let nothing = tokio::time::timeout(Duration::from_millis(300), watch.next()).await;
    assert!(nothing.is_err(), "the observer saw {nothing:?}");

    // It reads the deal that names it, and no other.
    assert_eq!(world.event_kinds(ALPHA, "obs", named.id()).await.unwrap(), ["proposed"]);
    let other = world.event_kinds(ALPHA, "obs", unnamed.id()).await;
    check("an observer reading another deal", other, Code::PermissionDenied, "not among the observers");
    let request = v1::WatchDealRequest { deal_id: unnamed.id().0 .0.to_vec(), from_seq: 0 };
    let watched = world.gateway(ALPHA, "obs").watch_deal(request).await.map(|_| ());
    check("an observer watching another deal", watched, Code::PermissionDenied, "not among the observers");
    // And it may not act.
    let proposal = world.gateway(ALPHA, "obs").propose_deal(world.signed(&named, true, false)).await;
    check("an observer proposing", proposal, Code::PermissionDenied, "ProposeDeal is for parties");
}

/// The gateway holds a party's new deal to its chains' pace: on two ledgers
/// (50 ms blocks, final at once) a hashlock margin must cover 50 ms until the
/// reveal is final and two blocks (100 ms) to get the claim mined.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deal_whose_margin_the_chains_cannot_honour_is_refused() {
    let world = World::start().await;
    let mut terms = world.open_terms(1, &Secret([9; 32]));
    let Settlement::Hashlock { margin_ms, .. } = &mut terms.settlement else { unreachable!() };
    *margin_ms = 149;
    let tight = world.gateway(ALPHA, "buyer").propose_deal(world.signed(&terms, true, false)).await;
    check("a margin of 149 ms", tight, Code::FailedPrecondition, "need at least 150 ms");
    let registered = world.gateway(BETA, "seller").register_deal(world.signed(&terms, true, true)).await;
    check("registering it", registered, Code::FailedPrecondition, "too little time to settle");
    let Settlement::Hashlock { margin_ms, .. } = &mut terms.settlement else { unreachable!() };
    *margin_ms = 150;
    world.gateway(ALPHA, "buyer").propose_deal(world.signed(&terms, true, false)).await.expect("150 ms is enough");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn submissions_are_checked_for_signer_replay_and_tokens() {
    let (world, secret, terms) = World::with_deal(8).await;
    let deal_id = terms.id();
    let reserve = EscrowOp::Reserve(expected_request(&terms, deal_id, LegKind::Payment));

    // Signed by another party's account, or not an escrow operation: refused.
    let foreign = world.submit(ALPHA, "buyer", &world.seller, 1, reserve.clone()).await;
    let signer = interlock_core::hash::to_hex(&world.seller.public().0);
    check("another party's transaction", foreign.clone(), Code::PermissionDenied, &signer);
    check("another party's transaction", foreign, Code::PermissionDenied, "\"buyer\"");
    let transfer = Transaction::sign(
        &world.buyer,
        ALPHA,
        1,
        Op::Transfer {
            to: Address::from_bytes(world.seller.public().0),
            asset: Asset::Fungible { code: usd(), amount: 1 },
        },
    );
    let transferred = world.submit_signed(ALPHA, "buyer", &transfer).await;
    check("a transfer", transferred, Code::InvalidArgument, "escrow operations only");
    let mut tampered = Transaction::sign(&world.buyer, ALPHA, 1, Op::Escrow(reserve.clone()));
    tampered.signature.0[0] ^= 1;
    check("a bad signature", world.submit_signed(ALPHA, "buyer", &tampered).await, Code::Unauthenticated, "signature");
    let for_alpha = Transaction::sign(&world.buyer, ALPHA, 1, Op::Escrow(reserve.clone()));
    let elsewhere = world.submit_signed(BETA, "buyer", &for_alpha).await;
    check("another network's transaction", elsewhere, Code::InvalidArgument, "is for network-1");

    // The buyer reserves; the same bytes again are a replay.
    let tx = Transaction::sign(&world.buyer, ALPHA, 1, Op::Escrow(reserve));
    let id = world.submit_signed(ALPHA, "buyer", &tx).await.unwrap();
    assert_eq!(id, tx.id().0.to_vec());
    let payment = reservation_id(deal_id, LegKind::Payment);
    world.wait_reservation(ALPHA, payment, "reserved").await;
    check("a replay", world.submit_signed(ALPHA, "buyer", &tx).await, Code::AlreadyExists, "replayed");

    // A wrong secret, then the right one, then the right one again.
    let execute = |secret| EscrowOp::Execute { reservation: payment, token: Token::Secret(secret) };
    let wrong = world.submit(ALPHA, "seller", &world.seller, 1, execute(Secret([0; 32]))).await;
    check("a wrong secret", wrong, Code::PermissionDenied, "invalid hashlock preimage");
    let by_buyer = world.submit(ALPHA, "buyer", &world.buyer, 2, execute(secret)).await;
    check("the owner executing", by_buyer, Code::PermissionDenied, "only the beneficiary");
    assert_eq!(world.balance(ALPHA, &world.seller).await, FUNDS);
    world.submit(ALPHA, "seller", &world.seller, 2, execute(secret)).await.unwrap();
    world.wait_reservation(ALPHA, payment, "executed").await;
    let twice = world.submit(ALPHA, "seller", &world.seller, 3, execute(secret)).await;
    check("a reused token", twice, Code::AlreadyExists, "settles exactly once");
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(world.balance(ALPHA, &world.seller).await, FUNDS + 30);
    assert_eq!(world.balance(ALPHA, &world.buyer).await, FUNDS - 30);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_lock_assertions_and_peer_calls_are_refused() {
    let (world, _, terms) = World::with_deal(9).await;
    let deal_id = terms.id();
    // A delivery reservation as beta would hold it.
    let reservation = expected_request(&terms, deal_id, LegKind::Delivery).reservation();
    let block = Hash32([5; 32]);
    let genuine = sign_lock_assertion(&gateway_key(BETA), BETA, 7, block, &reservation);
    let assertions = |assertion: v1::LockAssertion| v1::LockAssertions { assertions: vec![assertion] };

    let mut bad_signature = genuine.clone();
    bad_signature.signature[5] ^= 1;
    let by_someone_else = sign_lock_assertion(&world.buyer, BETA, 7, block, &reservation);
    let not_its_network = sign_lock_assertion(&gateway_key(BETA), ALPHA, 7, block, &reservation);
    let mut garbage = genuine.clone();
    garbage.reservation_encoded = vec![3; 40];
    let message = interlock_gateway::checks::lock_assertion_message(BETA, 7, &block.0, &garbage.reservation_encoded);
    garbage.signature = gateway_key(BETA).sign(&message).0.to_vec();
    let cases = [
        ("bad signature", "gw-beta", bad_signature, Code::Unauthenticated, "not signed by that network's gateway"),
        ("another key", "gw-beta", by_someone_else, Code::Unauthenticated, "not signed by that network's gateway"),
        ("not its network", "gw-beta", not_its_network, Code::PermissionDenied, "may not report on network-1"),
        ("undecodable reservation", "gw-beta", garbage, Code::InvalidArgument, "malformed reservation_encoded"),
        ("a party", "buyer", genuine.clone(), Code::PermissionDenied, "AssertLocks is for gateways"),
    ];
    for (name, caller, assertion, code, text) in cases {
        check(name, world.peer(ALPHA, caller).assert_locks(assertions(assertion)).await, code, text);
    }
    let notification = v1::Notification {
        network: ALPHA.0,
        height: 3,
        timestamp_ms: now_ms(),
        event_encoded: reservation.cancelled(reservation.owner).to_bytes(),
    };
    let notify = |n: v1::Notification| v1::Notifications { notifications: vec![n] };
    let wrong_network = world.peer(ALPHA, "gw-beta").notify(notify(notification.clone())).await;
    check("notifying for another network", wrong_network, Code::PermissionDenied, "may not report");
    let party = world.peer(ALPHA, "seller").notify(notify(notification.clone())).await;
    check("a party notifying", party, Code::PermissionDenied, "Notify is for gateways");
    let notice = v1::DealNotice {
        seq: 0,
        deal_id: deal_id.0 .0.to_vec(),
        kind: "registered".into(),
        deal: Some(world.signed(&terms, true, true)),
    };
    let forwarded = world.peer(ALPHA, "buyer").forward_deal(notice).await;
    check("a party forwarding", forwarded, Code::PermissionDenied, "ForwardDeal is for gateways");

    // Nothing was recorded; the genuine assertion is, once.
    let kinds = world.event_kinds(ALPHA, "buyer", deal_id).await.unwrap();
    assert!(!kinds.iter().any(|kind| kind.starts_with("peer_")), "{kinds:?}");
    let ack = world.peer(ALPHA, "gw-beta").assert_locks(assertions(genuine.clone())).await.unwrap().into_inner();
    assert_eq!(ack.accepted, 1);
    let ack = world.peer(ALPHA, "gw-beta").assert_locks(assertions(genuine)).await.unwrap().into_inner();
    assert_eq!(ack.accepted, 0, "an assertion is recorded once");
    let kinds = world.event_kinds(ALPHA, "buyer", deal_id).await.unwrap();
    assert_eq!(kinds.iter().filter(|kind| *kind == "peer_reserved").count(), 1, "{kinds:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_and_oversized_input_is_refused_and_the_gateway_keeps_serving() {
    let world = World::start().await;
    let terms = world.open_terms(1, &Secret([1; 32]));
    let good = world.signed(&terms, true, true);
    let mut buyer = world.gateway(ALPHA, "buyer");
    let mut peer = world.peer(ALPHA, "gw-beta");
    let with = |change: &dyn Fn(&mut v1::SignedDeal)| {
        let mut deal = good.clone();
        change(&mut deal);
        deal
    };
    let bad_deals = [
        ("terms", with(&|d| d.terms_encoded = vec![1, 2, 3])),
        ("terms version", with(&|d| d.terms_encoded[0] = 9)),
        ("terms trailing", with(&|d| d.terms_encoded.push(0))),
        ("buyer signature", with(&|d| d.buyer_signature.truncate(63))),
        ("seller signature", with(&|d| d.seller_signature.push(0))),
    ];
    for (name, deal) in &bad_deals {
        check(name, buyer.register_deal(deal.clone()).await, Code::InvalidArgument, "malformed");
        check(name, buyer.propose_deal(deal.clone()).await, Code::InvalidArgument, "malformed");
        let notice = v1::DealNotice {
            seq: 0,
            deal_id: terms.id().0 .0.to_vec(),
            kind: "registered".into(),
            deal: Some(deal.clone()),
        };
        check(name, peer.forward_deal(notice).await, Code::InvalidArgument, "malformed");
    }
    let short = vec![1u8; 31];
    check(
        "deal id",
        buyer.get_deal(v1::GetDealRequest { deal_id: short.clone() }).await,
        Code::InvalidArgument,
        "deal_id",
    );
    let watch = buyer.watch_deal(v1::WatchDealRequest { deal_id: short.clone(), from_seq: 0 }).await;
    check("watched deal id", watch.map(|_| ()), Code::InvalidArgument, "deal_id");
    let submit = buyer.submit(v1::SubmitRequest { transaction_encoded: vec![1, 0, 0] }).await;
    check("transaction", submit, Code::InvalidArgument, "malformed transaction");
    check(
        "account",
        buyer.get_account(v1::GetAccountRequest { account: short.clone() }).await,
        Code::InvalidArgument,
        "account",
    );
    let reservation = buyer.get_reservation(v1::GetReservationRequest { reservation_id: short.clone() }).await;
    check("reservation id", reservation, Code::InvalidArgument, "reservation_id");
    let notice = v1::DealNotice { seq: 0, deal_id: short.clone(), kind: "registered".into(), deal: Some(good.clone()) };
    check("notice deal id", peer.forward_deal(notice).await, Code::InvalidArgument, "deal_id");
    let notice =
        v1::DealNotice { seq: 0, deal_id: terms.id().0 .0.to_vec(), kind: "agreed".into(), deal: Some(good.clone()) };
    check("notice kind", peer.forward_deal(notice).await, Code::InvalidArgument, "kind");
    let assertion = |change: &dyn Fn(&mut v1::LockAssertion)| {
        let mut assertion = v1::LockAssertion {
            network: BETA.0,
            height: 1,
            block_hash: vec![0; 32],
            reservation_encoded: vec![0; 8],
            signature: vec![0; 64],
        };
        change(&mut assertion);
        v1::LockAssertions { assertions: vec![assertion] }
    };
    for (name, message) in [
        ("block hash", assertion(&|a| a.block_hash.truncate(5))),
        ("assertion signature", assertion(&|a| a.signature.truncate(5))),
        ("huge reservation", assertion(&|a| a.reservation_encoded = vec![0; 100_000])),
    ] {
        check(name, peer.assert_locks(message).await, Code::InvalidArgument, "malformed");
    }
    let notification = v1::Notification { network: BETA.0, height: 1, timestamp_ms: 1, event_encoded: vec![2, 2] };
    let notified = peer.notify(v1::Notifications { notifications: vec![notification] }).await;
    check("notification event", notified, Code::InvalidArgument, "malformed event_encoded");

    // Larger than any message the gateway accepts.
    let huge = v1::SubmitRequest { transaction_encoded: vec![0; MESSAGE_LEN_MAX + 1] };
    let status = buyer.submit(huge).await.expect_err("an oversized message");
    assert!(matches!(status.code(), Code::OutOfRange | Code::ResourceExhausted), "{status:?}");

    // A certificate from another CA: the handshake fails.
    let foreign = TlsFiles::in_dir(&world.dir.path().join("other"), "buyer");
    let connected = Channel::from_shared(format!("https://localhost:{}", world.networks.gateways[&ALPHA].port()))
        .unwrap()
        .tls_config(foreign.client_config("localhost").unwrap())
        .unwrap()
        .connect()
        .await;
    let refused = match connected {
        Err(_) => true,
        Ok(channel) => {
            GatewayClient::new(channel).get_account(v1::GetAccountRequest { account: vec![0; 32] }).await.is_err()
        }
    };
    assert!(refused, "a client of another CA was served");

    // Still serving.
    let account = v1::GetAccountRequest { account: world.buyer.public().0.to_vec() };
    assert!(buyer.get_account(account).await.unwrap().into_inner().registered);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_keeper_refunds_an_expired_reservation_and_tells_the_other_gateway() {
    let world = World::start().await;
    let secret = Secret([10; 32]);
    let terms = world.terms(1, &secret, None, 1_000, 1_500);
    let deal_id = terms.id();
    world.register(&terms).await;
    let payment = world.reserve_payment(&terms).await;
    assert_eq!(world.balance(ALPHA, &world.buyer).await, FUNDS - 30);

    // Nobody asks; the gateway's keeper cancels after the expiry (the ledger nodes run none).
    world.wait_reservation(ALPHA, payment, "cancelled").await;
    assert_eq!(world.balance(ALPHA, &world.buyer).await, FUNDS);
    let kinds = world.event_kinds(ALPHA, "buyer", deal_id).await.unwrap();
    assert_eq!(kinds, ["registered", "reserved", "cancelled", "keeper_cancelled"]);
    until("the other gateway hears of it", || async {
        let kinds = world.event_kinds(BETA, "seller", deal_id).await.ok()?;
        (kinds == ["registered", "peer_reserved", "peer_cancelled"]).then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_payment_gateway_executes_for_an_absent_seller_once_the_secret_is_revealed() {
    let world = World::start().await;
    let secret = Secret([11; 32]);
    let keeper = Address::from_bytes(gateway_key(ALPHA).public().0);
    let terms = world.terms(1, &secret, Some(keeper), 8_000, 12_000);
    let deal_id = terms.id();
    let (payment, delivery) = world.reserve_both(&terms).await;

    // The buyer takes the delivery, revealing the secret; the seller is gone.
    let execute = EscrowOp::Execute { reservation: delivery, token: Token::Secret(secret) };
    world.submit(BETA, "buyer", &world.buyer, 2, execute).await.unwrap();
    let revealed = std::time::Instant::now();
    world.wait_reservation(BETA, delivery, "executed").await;
    world.wait_reservation(ALPHA, payment, "executed").await;
    assert!(revealed.elapsed() >= Duration::from_millis(GRACE_MS / 2), "the keeper left the seller a grace period");
    assert_eq!(world.balance(ALPHA, &world.seller).await, FUNDS + 30, "the seller is paid");
    assert_eq!(world.balance(BETA, &world.buyer).await, FUNDS + 20, "the buyer has the delivery");
    let kinds = world.event_kinds(ALPHA, "seller", deal_id).await.unwrap();
    for kind in ["peer_executed", "executed", "keeper_executed"] {
        assert!(kinds.iter().any(|k| k == kind), "{kind} missing from {kinds:?}");
    }
    let request = v1::GetDealRequest { deal_id: deal_id.0 .0.to_vec() };
    let status = world.gateway(ALPHA, "seller").get_deal(request).await.unwrap().into_inner();
    let executed = status.events.iter().find(|event| event.kind == "executed").unwrap();
    match EscrowEvent::from_bytes(&executed.event_encoded).unwrap() {
        EscrowEvent::Executed { by, to, .. } => {
            assert_eq!((by, to), (keeper, Address::from_bytes(world.seller.public().0)));
        }
        other => panic!("expected an execution, found {other:?}"),
    }
}

/// Notary mode: once the delivery was executed with a commit certificate, the
/// payment gateway's keeper never cancels the payment at its backstop: the
/// absent seller takes it later with the same certificate.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_keeper_never_cancels_a_committed_deals_reservation() {
    let world = World::start().await;
    let mut terms = world.terms(1, &Secret([12; 32]), None, 1_000, 1_500);
    terms.settlement = notary_settlement(800, 1_600);
    let deal_id = terms.id();
    let (payment, delivery) = world.reserve_both(&terms).await;

    // The notary commits; the buyer takes the delivery; the seller is away.
    let certificate = certificate(deal_id, Decision::Commit);
    let execute = EscrowOp::Execute { reservation: delivery, token: Token::Certificate(certificate.clone()) };
    world.submit(BETA, "buyer", &world.buyer, 2, execute).await.unwrap();
    world.wait_reservation(BETA, delivery, "executed").await;
    until("alpha hearing of the execution", || async {
        let kinds = world.event_kinds(ALPHA, "seller", deal_id).await.ok()?;
        kinds.iter().any(|kind| kind == "peer_executed").then_some(())
    })
    .await;

    // Well past the backstop, the payment is still there for the seller.
    tokio::time::sleep(Duration::from_millis(2_500)).await;
    let kinds = world.event_kinds(ALPHA, "seller", deal_id).await.unwrap();
    assert!(!kinds.iter().any(|kind| kind == "cancelled"), "the keeper cancelled a committed payment: {kinds:?}");
    let execute = EscrowOp::Execute { reservation: payment, token: Token::Certificate(certificate) };
    world.submit(ALPHA, "seller", &world.seller, 1, execute).await.unwrap();
    world.wait_reservation(ALPHA, payment, "executed").await;
    assert_eq!(world.balance(ALPHA, &world.seller).await, FUNDS + 30, "the seller is paid, late");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_gateway_keeps_its_deals_and_delivers_its_outbox() {
    let mut world = World::new().await;
    world.start_gateway(ALPHA).await;
    let terms = world.open_terms(1, &Secret([12; 32]));
    let deal_id = terms.id();
    // Beta's gateway is down: the registration waits in alpha's outbox.
    world.register(&terms).await;
    world.reserve_payment(&terms).await;
    until("the reservation recorded", || async {
        let kinds = world.event_kinds(ALPHA, "buyer", deal_id).await.ok()?;
        (kinds == ["registered", "reserved"]).then_some(())
    })
    .await;
    assert!(world.service(ALPHA).outbox_len(BETA).unwrap() >= 2);

    // Alpha's gateway stops and comes back from its file.
    world.stop_gateway(ALPHA).await;
    world.start_gateway(ALPHA).await;
    assert!(world.service(ALPHA).outbox_len(BETA).unwrap() >= 2, "the outbox survived");
    let kinds = world.event_kinds(ALPHA, "buyer", deal_id).await.unwrap();
    assert_eq!(kinds, ["registered", "reserved"], "deals and events survived, and the replay added none");

    // Beta's gateway comes up: alpha delivers the registration, then the assertion.
    world.start_gateway(BETA).await;
    until("beta hears of the deal and its reservation", || async {
        let kinds = world.event_kinds(BETA, "seller", deal_id).await.ok()?;
        (kinds == ["registered", "peer_reserved"]).then_some(())
    })
    .await;
    until("alpha's outbox empties", || async { (world.service(ALPHA).outbox_len(BETA).ok()? == 0).then_some(()) })
        .await;
}

#[path = "gateway/capabilities.rs"]
mod capabilities;
#[path = "gateway/group_commit.rs"]
mod group_commit;
#[path = "gateway/notifications.rs"]
mod notifications;
#[path = "gateway/out_of_range.rs"]
mod out_of_range;
#[path = "gateway/peer_reports.rs"]
mod peer_reports;
#[path = "gateway/resume.rs"]
mod resume;
