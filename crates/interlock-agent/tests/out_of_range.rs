//! The agent's gRPC service over mutual TLS, as its operator reaches it: an
//! integer outside its field's range (a list limit, a window, a timeout's
//! extension) is refused with `INVALID_ARGUMENT` naming the field and its
//! range, before anything is drafted or recorded, and the agent keeps serving.

use interlock_agent::{AgentConfig, AgentService, AgentStore};
use interlock_core::crypto::{NotaryKey, PartyKey};
use interlock_identity::{CertificateAuthority, Directory, NotaryEntry, Role};
use interlock_identity::{Validity, CA_CERTIFICATE_FILE};
use interlock_proto::v1;
use interlock_proto::v1::agent_client::AgentClient;
use interlock_rpc::server::TlsFiles;
use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use tonic::transport::Channel;
use tonic::Code;

#[path = "support/directory.rs"]
mod support;
use support::{ALPHA, BETA};

fn now_ms() -> u64 {
    u64::try_from(std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis()).unwrap()
}

/// The two networks, whose gateways nobody answers at: every refusal below
/// comes before the agent asks one. A notary, n1, too.
fn directory(buyer: &PartyKey, seller: &PartyKey) -> Directory {
    let notary = NotaryKey::from_seed([0x70; 32]).unwrap();
    Directory {
        notaries: vec![NotaryEntry { name: "n1".into(), endpoint: "127.0.0.1:1".into(), address: notary.address() }],
        ..support::two_networks(buyer, seller)
    }
}

/// The CA in `tls`, the agent's certificate in `tls/agent` and its
/// operator's in `tls/operator`: both are named for the party.
fn issue(tls: &Path) -> (TlsFiles, TlsFiles) {
    let ca = CertificateAuthority::init(tls).unwrap();
    let valid = Validity::days_from(time::OffsetDateTime::now_utc() - time::Duration::hours(1), 30);
    let files = |role, folder: &str| {
        let dir = tls.join(folder);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::copy(tls.join(CA_CERTIFICATE_FILE), dir.join(CA_CERTIFICATE_FILE)).unwrap();
        ca.issue(role, "buyer", &["localhost", "127.0.0.1"], valid).unwrap().write(&dir).unwrap();
        TlsFiles::in_dir(&dir, "buyer")
    };
    (files(Role::Agent, "agent"), files(Role::Party, "operator"))
}

async fn serve_agent(dir: &Path) -> AgentClient<Channel> {
    let (buyer, seller) = (PartyKey::from_seed([0xb1; 32]), PartyKey::from_seed([0x5e; 32]));
    let directory = Arc::new(directory(&buyer, &seller));
    let (server_tls, client_tls) = issue(&dir.join("tls"));
    let lazy = |network| {
        let channel = Channel::from_static("http://127.0.0.1:1").connect_lazy();
        (network, v1::gateway_client::GatewayClient::new(channel))
    };
    let config = AgentConfig {
        party: "buyer".into(),
        key: buyer,
        directory: directory.clone(),
        gateways: [lazy(ALPHA), lazy(BETA)].into(),
        notaries: Vec::new(),
        store: AgentStore::open(&dir.join("agent.sqlite")).unwrap(),
        clock: now_ms,
        auto_accept: false,
        verbose: false,
        submitters: HashMap::new(),
        keepers: HashMap::new(),
        timings: HashMap::new(),
        withdrawn_retention_ms: 60_000,
    };
    let service = AgentService::start(config).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        interlock_agent::serve(service, &server_tls, directory, listener, std::future::pending()).await.unwrap();
    });
    let channel = Channel::from_shared(format!("https://localhost:{port}"))
        .unwrap()
        .tls_config(client_tls.client_config("localhost").unwrap())
        .unwrap()
        .connect_lazy();
    AgentClient::new(channel)
}

fn proposal(mode: &str, window_ms: u64, on_timeout: &str) -> v1::ProposeDealRequest {
    let leg =
        |network: &str, asset: &str| v1::LegSpec { network: network.into(), asset: asset.into(), amount: "10".into() };
    v1::ProposeDealRequest {
        counterparty: "seller".into(),
        role: "buyer".into(),
        mode: mode.into(),
        payment: Some(leg("alpha", "USD")),
        delivery: Some(leg("beta", "GOLD")),
        window_ms,
        on_timeout: on_timeout.into(),
        ..Default::default()
    }
}

/// Asserts a refusal's code and that its message says `text`.
fn check<T: std::fmt::Debug>(name: &str, result: Result<T, tonic::Status>, text: &str) {
    let status = result.expect_err(name);
    assert_eq!(status.code(), Code::InvalidArgument, "{name}: {}", status.message());
    assert!(status.message().contains(text), "{name}: message {:?} lacks {text:?}", status.message());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn out_of_range_integers_are_refused_naming_the_field_and_nothing_is_recorded() {
    let dir = tempfile::tempdir().unwrap();
    let mut agent = serve_agent(dir.path()).await;

    for limit in [1_001, u32::MAX] {
        let listed = agent.list_deals(v1::ListDealsRequest { state: String::new(), limit }).await;
        check("limit", listed, &format!("limit out of range: expected 0 to 1000, found {limit}"));
    }
    let cases = [
        ("window", proposal("notary", u64::MAX, ""), "window 18446744073709551615 ms: expected 2000 to"),
        (
            "extension past 64 bits",
            proposal("notary", 60_000, "extend:18446744073709551615ms"),
            "on_timeout \"extend:18446744073709551615ms\": the extension of 18446744073709551615 ms is out of range: expected 1 to 86400000 ms",
        ),
        (
            "extension past a day",
            proposal("notary", 60_000, "extend:86400001ms"),
            "is out of range: expected 1 to 86400000 ms",
        ),
        ("minutes overflowing", proposal("notary", 60_000, "extend:307445734561825861m"), "on_timeout"),
    ];
    for (name, request, text) in cases {
        check(name, agent.propose_deal(request).await, text);
    }

    // Still serving, and nothing was drafted: the limit's default lists no deal.
    let listed = agent.list_deals(v1::ListDealsRequest { state: String::new(), limit: 0 }).await.unwrap();
    assert!(listed.into_inner().deals.is_empty());
    let listed = agent.list_deals(v1::ListDealsRequest { state: String::new(), limit: 1_000 }).await.unwrap();
    assert!(listed.into_inner().deals.is_empty());
}
