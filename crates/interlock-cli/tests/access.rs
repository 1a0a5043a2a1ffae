//! The authorisation matrix, tried from outside as a hostile client would:
//! a certificate for every role calls every method of every service of a
//! running sandbox, and is refused `PERMISSION_DENIED` exactly where
//! `interlock_rpc::access::MATRIX` says so. Then the abuse classes: no
//! certificate, a foreign CA, undecodable bytes, an oversized message, a
//! caller's input echoed back, a tampered signature, a replayed nonce — each
//! answered with its exact status, and the sandbox's ledgers unchanged by all
//! of it.

mod common;

use common::sandbox::{ok, up};
use interlock_identity::{CertificateAuthority, Role, Validity};
use interlock_proto::v1;
use interlock_proto::v1::gateway_client::GatewayClient;
use interlock_rpc::access::{Scope, MATRIX};
use interlock_rpc::server::{lazy_channel, TlsFiles};
use prost::bytes::{Buf, BufMut};
use std::collections::BTreeMap;
use std::path::Path;
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::transport::Channel;
use tonic::{Code, Status};

/// Sends and receives raw bytes, so a test can put anything on the wire.
#[derive(Clone, Default)]
struct RawCodec;

struct RawEncoder;
struct RawDecoder;

impl Codec for RawCodec {
    type Encode = Vec<u8>;
    type Decode = Vec<u8>;
    type Encoder = RawEncoder;
    type Decoder = RawDecoder;
    fn encoder(&mut self) -> RawEncoder {
        RawEncoder
    }
    fn decoder(&mut self) -> RawDecoder {
        RawDecoder
    }
}

impl Encoder for RawEncoder {
    type Item = Vec<u8>;
    type Error = Status;
    fn encode(&mut self, item: Vec<u8>, buf: &mut EncodeBuf<'_>) -> Result<(), Status> {
        buf.put_slice(&item);
        Ok(())
    }
}

impl Decoder for RawDecoder {
    type Item = Vec<u8>;
    type Error = Status;
    fn decode(&mut self, buf: &mut DecodeBuf<'_>) -> Result<Option<Vec<u8>>, Status> {
        let bytes = buf.copy_to_bytes(buf.remaining());
        Ok(Some(bytes.to_vec()))
    }
}

/// Calls `path` with `body` as the one request message, however the method
/// streams, and returns the status the server answered (OK if it started
/// answering).
async fn call(channel: &Channel, path: &str, body: Vec<u8>) -> Status {
    let mut client = tonic::client::Grpc::new(channel.clone()).max_encoding_message_size(64 << 20);
    if let Err(error) = client.ready().await {
        return Status::unavailable(format!("not ready: {error}"));
    }
    let path = tonic::codegen::http::uri::PathAndQuery::try_from(path).unwrap();
    let request = tonic::Request::new(tokio_stream::once(body));
    let answer = tokio::time::timeout(std::time::Duration::from_secs(20), client.streaming(request, path, RawCodec))
        .await
        .expect("the server answers within 20 s");
    match answer {
        Ok(_) => Status::ok(""),
        Err(status) => status,
    }
}

/// The sandbox's servers: which process serves which gRPC service.
fn server_of(service: &str) -> Option<&'static str> {
    match service {
        "interlock.v1.LedgerNode" => Some("alpha-ledger"),
        "interlock.v1.Gateway" | "interlock.v1.GatewayPeer" => Some("alpha-gateway"),
        "interlock.v1.Notary" => Some("n1"),
        "interlock.v1.Observer" => Some("observer"),
        "interlock.v1.Agent" => Some("buyer-agent"),
        _ => None,
    }
}

fn address(dir: &Path, process: &str) -> String {
    common::sandbox::process(dir, process)["address"].as_str().unwrap().to_owned()
}

/// A certificate for `role` named `name`, issued by the sandbox's CA into a
/// directory of its own (with the CA certificate beside it).
fn issue(dir: &Path, role: Role, name: &str) -> TlsFiles {
    let ca = CertificateAuthority::load(&dir.join("sb/tls")).unwrap();
    let own = dir.join("callers").join(format!("{role}-{name}"));
    std::fs::create_dir_all(&own).unwrap();
    let valid = Validity::days_from(time::OffsetDateTime::now_utc() - time::Duration::minutes(5), 1);
    ca.issue(role, name, &["localhost"], valid).unwrap().write(&own).unwrap();
    std::fs::copy(ca.certificate_path(), own.join(interlock_identity::CA_CERTIFICATE_FILE)).unwrap();
    TlsFiles::in_dir(&own, name)
}

/// Every role under a name the sandbox's directory lists for it, and a few
/// callers whose scope the matrix narrows: another network's gateway, another
/// party.
fn callers(dir: &Path) -> Vec<(Role, &'static str, TlsFiles)> {
    let names: [(Role, &str); 9] = [
        (Role::Party, "buyer"),
        (Role::Party, "seller"),
        (Role::Agent, "buyer"),
        (Role::Gateway, "alpha-gateway"),
        (Role::Gateway, "beta-gateway"),
        (Role::Notary, "n2"),
        (Role::Observer, "observer"),
        (Role::Ledger, "alpha-ledger"),
        (Role::Dependent, "warranty"),
    ];
    names.into_iter().map(|(role, name)| (role, name, issue(dir, role, name))).collect()
}

/// Whether the matrix lets `role` named `name` call `path` on the sandbox's
/// server for it (alpha's ledger node and gateway, the buyer's agent).
fn allowed(path: &str, role: Role, name: &str) -> bool {
    let rule = MATRIX.iter().find(|rule| rule.path == path).unwrap();
    rule.roles.contains(&role)
        && match rule.scope {
            Scope::HomeNetwork => name.starts_with("alpha-"),
            Scope::HomeParty => name == "buyer",
            Scope::Listed | Scope::NamedInDeal => true,
            // The sandbox's directory lists no links, so every two networks' gateways are.
            Scope::Linked => !name.starts_with("alpha-"),
            // The notary's own certificate (n1's) is not among the callers.
            Scope::Itself => name == "n1",
        }
}

/// Every party's account on every network, as its gateway reports it.
async fn ledger_totals(dir: &Path) -> Vec<String> {
    let path = dir.join("sb/directory.json");
    let directory = interlock_identity::SignedDirectory::load(&path).unwrap().directory;
    let tls = TlsFiles::in_dir(&dir.join("sb/tls"), "buyer");
    let mut accounts = Vec::new();
    for gateway in &directory.gateways {
        let mut client = GatewayClient::new(lazy_channel(&gateway.endpoint, &tls).unwrap());
        for party in &directory.parties {
            let Some(address) = party.account(gateway.network) else { continue };
            let request = v1::GetAccountRequest { account: address.as_bytes().to_vec() };
            let account = client.get_account(request).await.unwrap().into_inner();
            accounts.push(format!("{} on {}: {:?}", party.name, gateway.name, account.balances));
        }
    }
    assert!(accounts.len() >= 4, "{accounts:?}");
    accounts
}

/// One sandbox for both halves: two at once would race for free ports.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sandbox_refuses_what_the_matrix_forbids_and_answers_abuse_with_its_exact_status() {
    let temp = tempfile::tempdir().unwrap();
    let dir = temp.path();
    let _sandbox = up(dir, &[]);
    every_role_calls_every_method_and_is_refused_exactly_where_the_matrix_says(dir).await;
    abuse_is_answered_with_its_exact_status_and_changes_nothing(dir).await;
}

async fn every_role_calls_every_method_and_is_refused_exactly_where_the_matrix_says(dir: &Path) {
    let before = ledger_totals(dir).await;
    let servers: BTreeMap<&str, String> =
        MATRIX.iter().filter_map(|rule| server_of(service(rule.path))).map(|p| (p, address(dir, p))).collect();
    let mut wrong = Vec::new();
    let mut calls = 0;
    for (role, name, tls) in callers(dir) {
        let channels: BTreeMap<&str, Channel> =
            servers.iter().map(|(process, address)| (*process, lazy_channel(address, &tls).unwrap())).collect();
        for rule in MATRIX {
            // Health and reflection are on every server; try them on the gateway.
            let process = server_of(service(rule.path)).unwrap_or("alpha-gateway");
            let status = call(&channels[process], rule.path, Vec::new()).await;
            calls += 1;
            let denied = status.code() == Code::PermissionDenied;
            if denied == allowed(rule.path, role, name) || status.code() == Code::Unauthenticated {
                wrong.push(format!("{role} {name} → {}: {:?} {}", rule.path, status.code(), status.message()));
            }
        }
    }
    assert!(wrong.is_empty(), "{} of {calls} calls disagree with the matrix:\n{}", wrong.len(), wrong.join("\n"));
    assert!(calls >= 9 * 30, "{calls} calls");
    assert_eq!(ledger_totals(dir).await, before, "the calls changed what the ledgers hold");
}

/// The server closed the connection before any call reached a service: with
/// TLS 1.3 the client learns it while connecting, on its first write or as a
/// closed connection, so the status is the transport's, never a service's.
fn assert_refused_in_the_handshake(status: &Status) {
    let transport = std::error::Error::source(status)
        .is_some_and(|source| source.downcast_ref::<tonic::transport::Error>().is_some());
    assert!(
        transport && status.code() != Code::Ok,
        "expected the TLS handshake to refuse the caller, found {status:?}"
    );
}

fn service(path: &str) -> &str {
    path.trim_start_matches('/').split('/').next().unwrap()
}

async fn abuse_is_answered_with_its_exact_status_and_changes_nothing(dir: &Path) {
    let before = ledger_totals(dir).await;
    let gateway = address(dir, "alpha-gateway");
    let agent = address(dir, "buyer-agent");
    let buyer = TlsFiles::in_dir(&dir.join("sb/tls"), "buyer");

    // A method no one may call, however listed the caller.
    let channel = lazy_channel(&gateway, &buyer).unwrap();
    let unknown = call(&channel, "/interlock.v1.Gateway/DropTables", Vec::new()).await;
    assert_eq!(unknown.code(), Code::PermissionDenied, "{unknown:?}");

    // Bytes that are not protobuf: the caller's mistake.
    let varint_without_end = vec![0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff];
    let undecodable = call(&channel, "/interlock.v1.Gateway/GetDeal", varint_without_end).await;
    assert_eq!(undecodable.code(), Code::InvalidArgument, "{undecodable:?}");

    // A message over the services' size limit.
    let oversized_body = [vec![0x0a, 0x80, 0x80, 0x80, 0x03], vec![7; 6 << 20]].concat();
    let oversized = call(&channel, "/interlock.v1.Gateway/GetDeal", oversized_body).await;
    assert!(
        matches!(oversized.code(), Code::ResourceExhausted | Code::OutOfRange),
        "an oversized message: {oversized:?}"
    );

    // A 20,000-character counterparty comes back quoted, not whole, and the
    // connection survives to answer the next call.
    let agent_channel = lazy_channel(&agent, &buyer).unwrap();
    let long_name = "m".repeat(20_000);
    let proposal = interlock_proto::v1::ProposeDealRequest { counterparty: long_name, ..Default::default() };
    let echoed =
        call(&agent_channel, "/interlock.v1.Agent/ProposeDeal", prost::Message::encode_to_vec(&proposal)).await;
    assert_eq!(echoed.code(), Code::InvalidArgument, "{echoed:?}");
    // The agent quotes a bounded prefix and the length; the access layer's
    // bound on every status message stays the backstop.
    assert!(echoed.message().contains("… (20000 bytes)"), "{}", echoed.message());
    assert!(echoed.message().len() < 400, "{} bytes: {}", echoed.message().len(), echoed.message());
    let after = call(&agent_channel, "/interlock.v1.Agent/ListDeals", Vec::new()).await;
    assert_eq!(after.code(), Code::Ok, "{after:?}");

    // A transaction whose signature was tampered with: refused as such. The
    // same operation with a nonce the account cannot use (0): refused before
    // the ledger (checked below: nothing moved).
    let seed = std::fs::read_to_string(dir.join("sb/parties/buyer.key")).unwrap();
    let buyer_key = interlock_core::crypto::PartyKey::from_seed(
        interlock_core::hash::from_hex(seed.trim()).unwrap().try_into().unwrap(),
    );
    let cancel = interlock_ledger::Op::Escrow(interlock_core::EscrowOp::Cancel {
        reservation: interlock_core::ReservationId(interlock_core::Hash32([9; 32])),
        certificate: None,
    });
    let mut tampered = interlock_ledger::Transaction::sign(&buyer_key, interlock_core::NetworkId(1), 1, cancel.clone());
    tampered.signature.0[5] ^= 1;
    let tampered = v1::SubmitRequest { transaction_encoded: interlock_core::encoding::Encode::to_bytes(&tampered) };
    let answer = call(&channel, "/interlock.v1.Gateway/Submit", prost::Message::encode_to_vec(&tampered)).await;
    assert_eq!(answer.code(), Code::Unauthenticated, "{answer:?}");
    let replayed = interlock_ledger::Transaction::sign(&buyer_key, interlock_core::NetworkId(1), 0, cancel);
    let replayed = v1::SubmitRequest { transaction_encoded: interlock_core::encoding::Encode::to_bytes(&replayed) };
    let answer = call(&channel, "/interlock.v1.Gateway/Submit", prost::Message::encode_to_vec(&replayed)).await;
    // The gateway checks the operation before relaying it: the reservation
    // does not exist, so it never reaches the ledger, whatever its nonce.
    assert_eq!(answer.code(), Code::NotFound, "{answer:?}");

    // No certificate, and a certificate from another CA: no TLS session.
    let foreign = dir.join("foreign");
    let other_ca = CertificateAuthority::init(&foreign).unwrap();
    let valid = Validity::days_from(time::OffsetDateTime::now_utc() - time::Duration::minutes(5), 1);
    other_ca.issue(Role::Party, "buyer", &["localhost"], valid).unwrap().write(&foreign).unwrap();
    let foreign_files = TlsFiles {
        ca_certificate: dir.join("sb/tls").join(interlock_identity::CA_CERTIFICATE_FILE),
        ..TlsFiles::in_dir(&foreign, "buyer")
    };
    let foreign_channel = lazy_channel(&gateway, &foreign_files).unwrap();
    let foreign_answer = call(&foreign_channel, "/grpc.health.v1.Health/Check", vec![]).await;
    assert_refused_in_the_handshake(&foreign_answer);
    let anonymous = tonic::transport::Channel::from_shared(format!("https://{gateway}"))
        .unwrap()
        .tls_config(
            tonic::transport::ClientTlsConfig::new()
                .domain_name("localhost")
                .ca_certificate(tonic::transport::Certificate::from_pem(std::fs::read(&buyer.ca_certificate).unwrap())),
        )
        .unwrap()
        .connect_lazy();
    let anonymous_answer = call(&anonymous, "/grpc.health.v1.Health/Check", vec![]).await;
    assert_refused_in_the_handshake(&anonymous_answer);

    assert_eq!(ledger_totals(dir).await, before, "the abuse changed what the ledgers hold");
    ok(&common::sandbox::interlock(&["sandbox", "status", "--dir", "sb"], dir));
}
