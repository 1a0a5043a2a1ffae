//! The ledger node over real gRPC, real mutual TLS, on loopback, with a real
//! SQLite file: what passes, and everything that must be refused.

use interlock_core::crypto::PartyKey;
use interlock_core::encoding::{Decode, Encode};
use interlock_core::{Address, Asset, AssetCode, EscrowEvent, NetworkId};
use interlock_identity::{
    CertificateAuthority, DependentEntry, Directory, GatewayEntry, LedgerEntry, NetworkEntry, PartyEntry, Role,
    Validity,
};
use interlock_ledger::{Genesis, Ledger, Op, SqliteStore, Transaction};
use interlock_ledger_node::{LedgerNodeService, Pace};
use interlock_proto::v1;
use interlock_proto::v1::ledger_node_client::LedgerNodeClient;
use interlock_rpc::server::{bind, TlsFiles};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tonic::transport::Channel;
use tonic::Code;

const NETWORK: NetworkId = NetworkId(1);

fn now_ms() -> u64 {
    u64::try_from(std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis()).unwrap()
}

struct Node {
    address: std::net::SocketAddr,
    tls: std::path::PathBuf,
    operator: PartyKey,
    _dir: tempfile::TempDir,
}

fn issue(ca: &CertificateAuthority, dir: &Path, role: Role, name: &str, validity: Validity) {
    ca.issue(role, name, &["localhost", "127.0.0.1"], validity).unwrap().write(dir).unwrap();
}

async fn start() -> Node {
    let dir = tempfile::tempdir().unwrap();
    let tls = dir.path().join("tls");
    let ca = CertificateAuthority::init(&tls).unwrap();
    let now = time::OffsetDateTime::now_utc();
    let valid = Validity::days_from(now - time::Duration::hours(1), 30);
    issue(&ca, &tls, Role::Ledger, "alpha-ledger", valid);
    issue(&ca, &tls, Role::Gateway, "alpha-gateway", valid);
    issue(&ca, &tls, Role::Gateway, "beta-gateway", valid);
    issue(&ca, &tls, Role::Party, "buyer", valid);
    issue(&ca, &tls, Role::Dependent, "warranty", valid);
    issue(&ca, &tls, Role::Party, "mallory", valid);
    issue(&ca, &tls, Role::Party, "late", Validity::days_from(now - time::Duration::days(10), 2));
    let other = CertificateAuthority::init(&dir.path().join("other")).unwrap();
    issue(&other, &dir.path().join("other"), Role::Party, "buyer", valid);

    let operator = PartyKey::from_seed([1; 32]);
    let directory = Directory {
        networks: vec![NetworkEntry {
            id: NETWORK,
            name: "alpha".into(),
            platform: "ledger".into(),
            config: Default::default(),
        }],
        ledgers: vec![LedgerEntry { name: "alpha-ledger".into(), network: NETWORK, endpoint: "127.0.0.1:0".into() }],
        gateways: [("alpha-gateway", NETWORK), ("beta-gateway", NetworkId(2))]
            .iter()
            .map(|(name, network)| GatewayEntry {
                name: (*name).into(),
                network: *network,
                endpoint: "127.0.0.1:0".into(),
                key: operator.public(),
            })
            .collect(),
        dependents: vec![DependentEntry { name: "warranty".into(), key: operator.public() }],
        parties: ["buyer", "late"]
            .iter()
            .map(|name| PartyEntry { name: (*name).into(), key: operator.public(), accounts: Default::default() })
            .collect(),
        ..Directory::default()
    };
    let store = SqliteStore::open(&dir.path().join("alpha.sqlite")).unwrap();
    let genesis = Genesis { network: NETWORK, operator: operator.public(), timestamp_ms: now_ms() };
    let service = LedgerNodeService::new(Ledger::open(store, genesis).unwrap()).with_keeper(operator.clone());
    let pace = Pace { block_interval: Duration::from_millis(20), heartbeat: Duration::from_millis(200) };
    tokio::spawn(service.clone().produce(pace, now_ms));
    let (listener, address) = bind("127.0.0.1:0".parse().unwrap()).await.unwrap();
    let files = TlsFiles::in_dir(&tls, "alpha-ledger");
    tokio::spawn(async move {
        interlock_ledger_node::serve(service, &files, Arc::new(directory), listener, std::future::pending())
            .await
            .unwrap();
    });
    Node { address, tls, operator, _dir: dir }
}

async fn client(node: &Node, tls_dir: &Path, name: &str) -> Result<LedgerNodeClient<Channel>, tonic::transport::Error> {
    let files = TlsFiles::in_dir(tls_dir, name);
    let channel = Channel::from_shared(format!("https://localhost:{}", node.address.port()))
        .unwrap()
        .tls_config(files.client_config("localhost").unwrap())?
        .connect()
        .await?;
    Ok(LedgerNodeClient::new(channel))
}

/// 10 USD issued to `key`.
fn ten_usd(key: &PartyKey) -> Op {
    let asset = Asset::Fungible { code: AssetCode::new("USD").unwrap(), amount: 10 };
    Op::Issue { to: Address::from_bytes(key.public().0), asset }
}

/// Submits the operator's `ops` in order (its nonces from 1), each waited for.
async fn as_operator(node: &Node, gateway: &mut LedgerNodeClient<Channel>, ops: impl IntoIterator<Item = Op>) {
    for (nonce, op) in (1..).zip(ops) {
        gateway.submit_transaction(submit(&Transaction::sign(&node.operator, NETWORK, nonce, op), true)).await.unwrap();
    }
}

/// A reservation of 4 USD for the deal named `deal`, by `owner` for
/// `beneficiary`, locked by `hash`, expiring `expiry_in_ms` from now.
fn payment(
    deal: &[u8],
    (owner, beneficiary): (&PartyKey, &PartyKey),
    hash: interlock_core::Hash32,
    expiry_in_ms: u64,
) -> interlock_core::ReserveRequest {
    interlock_core::ReserveRequest {
        deal_id: interlock_core::DealId(interlock_core::Hash32::sha256(&[deal])),
        leg: interlock_core::LegKind::Payment,
        asset: Asset::Fungible { code: AssetCode::new("USD").unwrap(), amount: 4 },
        owner: Address::from_bytes(owner.public().0),
        beneficiary: Address::from_bytes(beneficiary.public().0),
        keeper: None,
        condition: interlock_core::Condition::Hashlock(hash),
        expiry_ms: now_ms() + expiry_in_ms,
    }
}

fn submit(tx: &Transaction, wait: bool) -> v1::SubmitTransactionRequest {
    v1::SubmitTransactionRequest { transaction_encoded: tx.to_bytes(), wait }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transactions_commit_over_mutual_tls_and_bad_ones_are_refused_with_the_right_status() {
    let node = start().await;
    let mut gateway = client(&node, &node.tls, "alpha-gateway").await.unwrap();
    let party = PartyKey::from_seed([2; 32]);
    let usd = AssetCode::new("USD").unwrap();

    // The operator registers the party and issues it 100 USD; wait for the block.
    let register = Transaction::sign(&node.operator, NETWORK, 1, Op::Register { account: party.public() });
    let issue = Transaction::sign(
        &node.operator,
        NETWORK,
        2,
        Op::Issue { to: Address::from_bytes(party.public().0), asset: Asset::Fungible { code: usd, amount: 100 } },
    );
    let first = gateway.submit_transaction(submit(&register, true)).await.unwrap().into_inner();
    assert!(first.height >= 1);
    assert_eq!(first.transaction_id, register.id().0.to_vec());
    gateway.submit_transaction(submit(&issue, true)).await.unwrap();
    let account =
        gateway.get_account(v1::GetAccountRequest { account: party.public().0.to_vec() }).await.unwrap().into_inner();
    assert!(account.registered);
    assert_eq!(account.balances, vec![v1::Balance { asset: "USD".into(), amount: "100".into() }]);
    let tip = gateway.get_tip(v1::GetTipRequest {}).await.unwrap().into_inner();

    // Each refusal: the right code, a message saying what was wrong, nothing changed.
    let check = |name: &str,
                 result: Result<tonic::Response<v1::SubmitTransactionResponse>, tonic::Status>,
                 code: Code,
                 text: &str| {
        let status = result.expect_err(name);
        assert_eq!(status.code(), code, "{name}: {}", status.message());
        assert!(status.message().contains(text), "{name}: message {:?} lacks {text:?}", status.message());
    };
    check("replay", gateway.submit_transaction(submit(&register, true)).await, Code::AlreadyExists, "nonce");
    let garbage = v1::SubmitTransactionRequest { transaction_encoded: vec![1, 2, 3], wait: true };
    check("malformed", gateway.submit_transaction(garbage).await, Code::InvalidArgument, "malformed");
    let mut forged = Transaction::sign(&party, NETWORK, 1, Op::Register { account: party.public() });
    forged.signature.0[3] ^= 1;
    check("bad signature", gateway.submit_transaction(submit(&forged, true)).await, Code::Unauthenticated, "signature");
    let elsewhere = Transaction::sign(&party, NetworkId(9), 1, Op::Register { account: party.public() });
    check(
        "other network",
        gateway.submit_transaction(submit(&elsewhere, true)).await,
        Code::InvalidArgument,
        "network",
    );
    let not_operator = Transaction::sign(&party, NETWORK, 1, Op::Register { account: node.operator.public() });
    check(
        "not operator",
        gateway.submit_transaction(submit(&not_operator, true)).await,
        Code::PermissionDenied,
        "operator",
    );
    let huge = v1::SubmitTransactionRequest { transaction_encoded: vec![0; 5 << 20], wait: false };
    let status = gateway.submit_transaction(huge).await.expect_err("oversized");
    assert_ne!(status.code(), Code::Ok);

    // Nothing changed, and the node still serves.
    let after =
        gateway.get_account(v1::GetAccountRequest { account: party.public().0.to_vec() }).await.unwrap().into_inner();
    assert_eq!(after, account);
    let missing = gateway.get_account(v1::GetAccountRequest { account: vec![7; 32] }).await.expect_err("unknown");
    assert_eq!(missing.code(), Code::NotFound);
    let short = gateway.get_account(v1::GetAccountRequest { account: vec![7; 3] }).await.expect_err("short key");
    assert_eq!(short.code(), Code::InvalidArgument);
    let block = gateway.get_block(v1::GetBlockRequest { height: tip.height }).await.unwrap().into_inner();
    assert_eq!(block.header.unwrap().hash, tip.hash);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn callers_outside_the_ca_or_the_directory_are_refused() {
    let node = start().await;
    let request = || v1::GetTipRequest {};

    // Listed, valid: served.
    let mut gateway = client(&node, &node.tls, "alpha-gateway").await.unwrap();
    gateway.get_tip(request()).await.unwrap();

    // Listed, but not the network's gateway: a party must go through its
    // gateway, a dependent reads nothing here, another network's gateway is
    // not this network's door.
    let tx = Transaction::sign(&node.operator, NETWORK, 1, Op::Register { account: node.operator.public() });
    for name in ["buyer", "warranty", "beta-gateway"] {
        let mut caller = client(&node, &node.tls, name).await.unwrap();
        let read = caller.get_tip(request()).await.expect_err("a read past the gateway");
        assert_eq!(read.code(), Code::PermissionDenied, "{name}: {}", read.message());
        let write = caller.submit_transaction(submit(&tx, false)).await.expect_err("a write past the gateway");
        assert_eq!(write.code(), Code::PermissionDenied, "{name}: {}", write.message());
        assert!(write.message().contains(name), "{name}: {}", write.message());
    }

    // A CA certificate whose name the directory does not list.
    let mut mallory = client(&node, &node.tls, "mallory").await.unwrap();
    let status = mallory.get_tip(request()).await.expect_err("unlisted");
    assert_eq!(status.code(), Code::PermissionDenied);
    assert!(status.message().contains("mallory"), "{}", status.message());

    // An expired certificate, and one from another CA: the handshake fails.
    for (dir, name) in [(node.tls.clone(), "late"), (node._dir.path().join("other"), "buyer")] {
        let refused = match client(&node, &dir, name).await {
            Err(_) => true,
            Ok(mut client) => client.get_tip(request()).await.is_err(),
        };
        assert!(refused, "{name} from {} was served", dir.display());
    }
    // The node still serves the listed caller.
    gateway.get_tip(request()).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn block_stream_replays_committed_blocks_then_follows_live_and_resumes() {
    use tokio_stream::StreamExt as _;
    let node = start().await;
    let mut gateway = client(&node, &node.tls, "alpha-gateway").await.unwrap();
    let party = PartyKey::from_seed([2; 32]);
    let register = Transaction::sign(&node.operator, NETWORK, 1, Op::Register { account: party.public() });
    let committed = gateway.submit_transaction(submit(&register, true)).await.unwrap().into_inner().height;

    let mut stream = gateway.stream_blocks(v1::StreamBlocksRequest { from_height: 1 }).await.unwrap().into_inner();
    let mut heights = Vec::new();
    while heights.len() < usize::try_from(committed).unwrap() + 2 {
        let block = stream.next().await.unwrap().unwrap();
        heights.push(block.header.unwrap().height);
    }
    // In order, without gaps, past the committed tip into live heartbeats.
    assert_eq!(heights, (1..=u64::try_from(heights.len()).unwrap()).collect::<Vec<_>>());
    drop(stream);

    // Resume from a height: the first block is that one.
    let mut resumed = gateway.stream_blocks(v1::StreamBlocksRequest { from_height: 2 }).await.unwrap().into_inner();
    let first = resumed.next().await.unwrap().unwrap();
    assert_eq!(first.header.unwrap().height, 2);

    // Escrow events decode back into the core's types.
    let issue = Transaction::sign(&node.operator, NETWORK, 2, ten_usd(&party));
    gateway.submit_transaction(submit(&issue, true)).await.unwrap();
    let seller = PartyKey::from_seed([3; 32]);
    let request = payment(b"deal", (&party, &seller), interlock_core::Hash32::sha256(&[b"secret"]), 60_000);
    let reserve = Transaction::sign(&party, NETWORK, 1, Op::Escrow(interlock_core::EscrowOp::Reserve(request.clone())));
    let height = gateway.submit_transaction(submit(&reserve, true)).await.unwrap().into_inner().height;
    let mut from_reserve =
        gateway.stream_blocks(v1::StreamBlocksRequest { from_height: height }).await.unwrap().into_inner();
    let block = from_reserve.next().await.unwrap().unwrap();
    assert_eq!(block.events.len(), 1);
    let event = EscrowEvent::from_bytes(&block.events[0].event_encoded).unwrap();
    match event {
        EscrowEvent::Reserved(reservation) => assert!(reservation.matches(&request)),
        other => panic!("expected a reservation, found {other:?}"),
    }
    assert_eq!(block.events[0].kind, "reserved");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_keeper_refunds_an_expired_reservation_with_nobody_asking() {
    let node = start().await;
    let mut gateway = client(&node, &node.tls, "alpha-gateway").await.unwrap();
    let party = PartyKey::from_seed([2; 32]);
    as_operator(&node, &mut gateway, [Op::Register { account: party.public() }, ten_usd(&party)]).await;
    let request = payment(
        b"lapsing deal",
        (&party, &PartyKey::from_seed([3; 32])),
        interlock_core::Hash32::sha256(&[b"secret"]),
        300,
    );
    let id = interlock_core::reservation_id(request.deal_id, request.leg);
    let reserve = Transaction::sign(&party, NETWORK, 1, Op::Escrow(interlock_core::EscrowOp::Reserve(request)));
    gateway.submit_transaction(submit(&reserve, true)).await.unwrap();
    let query = || v1::GetReservationRequest { reservation_id: id.0 .0.to_vec() };
    let mut state = String::new();
    for _ in 0..100 {
        state = gateway.get_reservation(query()).await.unwrap().into_inner().state;
        if state == "cancelled" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(state, "cancelled", "the keeper cancels once the expiry passed");
    let account = gateway.get_account(v1::GetAccountRequest { account: party.public().0.to_vec() }).await.unwrap();
    assert_eq!(account.into_inner().balances, vec![v1::Balance { asset: "USD".into(), amount: "10".into() }]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_and_reused_tokens_are_refused_over_the_wire() {
    let node = start().await;
    let mut gateway = client(&node, &node.tls, "alpha-gateway").await.unwrap();
    let (party, seller) = (PartyKey::from_seed([2; 32]), PartyKey::from_seed([3; 32]));
    let setup = [Op::Register { account: party.public() }, Op::Register { account: seller.public() }, ten_usd(&party)];
    as_operator(&node, &mut gateway, setup).await;
    let secret = interlock_core::Secret([7; 32]);
    let request = payment(b"token deal", (&party, &seller), secret.hash(), 60_000);
    let id = interlock_core::reservation_id(request.deal_id, request.leg);
    let reserve = Transaction::sign(&party, NETWORK, 1, Op::Escrow(interlock_core::EscrowOp::Reserve(request)));
    gateway.submit_transaction(submit(&reserve, true)).await.unwrap();
    let execute = |nonce, secret| {
        let token = interlock_core::Token::Secret(secret);
        Transaction::sign(
            &seller,
            NETWORK,
            nonce,
            Op::Escrow(interlock_core::EscrowOp::Execute { reservation: id, token }),
        )
    };
    let wrong =
        gateway.submit_transaction(submit(&execute(1, interlock_core::Secret([0; 32])), true)).await.unwrap_err();
    assert_eq!(wrong.code(), Code::PermissionDenied, "{}", wrong.message());
    assert!(wrong.message().contains("invalid hashlock preimage"), "{}", wrong.message());
    gateway.submit_transaction(submit(&execute(2, secret), true)).await.unwrap();
    let reused = gateway.submit_transaction(submit(&execute(3, secret), true)).await.unwrap_err();
    assert_eq!(reused.code(), Code::AlreadyExists, "{}", reused.message());
    assert!(reused.message().contains("settles exactly once"), "{}", reused.message());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_protobuf_is_refused_and_the_node_keeps_serving() {
    let node = start().await;
    let mut gateway = client(&node, &node.tls, "alpha-gateway").await.unwrap();
    // A message whose field 1 is a varint where the server expects bytes.
    #[derive(Clone, PartialEq, prost::Message)]
    struct WrongShape {
        #[prost(uint64, tag = "1")]
        transaction_encoded: u64,
    }
    let files = TlsFiles::in_dir(&node.tls, "alpha-gateway");
    let channel = Channel::from_shared(format!("https://localhost:{}", node.address.port()))
        .unwrap()
        .tls_config(files.client_config("localhost").unwrap())
        .unwrap()
        .connect()
        .await
        .unwrap();
    let path = tonic::codegen::http::uri::PathAndQuery::from_static("/interlock.v1.LedgerNode/SubmitTransaction");
    let mut raw = tonic::client::Grpc::new(channel);
    raw.ready().await.unwrap();
    let shaped = raw
        .unary::<WrongShape, v1::SubmitTransactionResponse, _>(
            tonic::Request::new(WrongShape { transaction_encoded: 42 }),
            path.clone(),
            tonic_prost::ProstCodec::default(),
        )
        .await
        .expect_err("a varint where bytes belong");
    // The caller's mistake, not the node's fault.
    assert_eq!(shaped.code(), Code::InvalidArgument, "{}", shaped.message());
    assert!(shaped.message().contains("decode"), "{}", shaped.message());
    // The node still serves correct requests.
    gateway.get_tip(v1::GetTipRequest {}).await.unwrap();
}
