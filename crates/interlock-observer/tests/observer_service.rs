//! The observer's gRPC service over mutual TLS: a list limit beyond what it
//! answers with is refused with `INVALID_ARGUMENT` naming the field and its
//! range (not silently shortened), and the log is unchanged.

use interlock_core::crypto::PartyKey;
use interlock_core::{Address, Asset, AssetCode, DealTerms, Leg, NetworkId, Policy, Settlement};
use interlock_identity::{CertificateAuthority, Directory, NetworkEntry, ObserverEntry, PartyEntry, Role, Validity};
use interlock_observer::record::GatewayEvent;
use interlock_observer::{ObserverLog, ObserverService, LIST_LIMIT_MAX};
use interlock_proto::v1;
use interlock_proto::v1::observer_client::ObserverClient;
use interlock_rpc::server::TlsFiles;
use std::collections::HashMap;
use std::sync::Arc;
use tonic::transport::Channel;
use tonic::Code;

fn terms(buyer: &PartyKey, seller: &PartyKey, observer: &PartyKey) -> DealTerms {
    let leg = |network, owner: &PartyKey, beneficiary: &PartyKey| Leg {
        network: NetworkId(network),
        asset: Asset::Fungible { code: AssetCode::new("USD").unwrap(), amount: 5 },
        owner: Address::from_bytes(owner.public().0),
        beneficiary: Address::from_bytes(beneficiary.public().0),
        keeper: None,
    };
    DealTerms {
        buyer: buyer.public(),
        seller: seller.public(),
        payment: leg(1, buyer, seller),
        delivery: leg(2, seller, buyer),
        settlement: Settlement::Hashlock {
            hash: interlock_core::Secret([5; 32]).hash(),
            payment_expiry_ms: 20_000,
            delivery_expiry_ms: 10_000,
            margin_ms: 1_000,
        },
        policy: Policy::default(),
        observers: vec![observer.public()],
        dependents: vec![],
        nonce: 1,
    }
}

fn directory(buyer: &PartyKey, seller: &PartyKey, observer: &PartyKey) -> Directory {
    let party = |name: &str, key: &PartyKey| {
        let account = Address::from_bytes(key.public().0);
        PartyEntry {
            name: name.into(),
            key: key.public(),
            accounts: [(NetworkId(1), account), (NetworkId(2), account)].into(),
        }
    };
    let network = |id, name: &str| NetworkEntry {
        id: NetworkId(id),
        name: name.into(),
        platform: "ledger".into(),
        config: Default::default(),
    };
    Directory {
        networks: vec![network(1, "alpha"), network(2, "beta")],
        parties: vec![party("buyer", buyer), party("seller", seller)],
        observers: vec![ObserverEntry { name: "obs".into(), endpoint: "127.0.0.1:1".into(), key: observer.public() }],
        ..Directory::default()
    }
}

fn now_ms() -> u64 {
    u64::try_from(std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_list_limit_beyond_the_maximum_is_refused_naming_the_field() {
    let dir = tempfile::tempdir().unwrap();
    let tls = dir.path().join("tls");
    let ca = CertificateAuthority::init(&tls).unwrap();
    let valid = Validity::days_from(time::OffsetDateTime::now_utc() - time::Duration::hours(1), 30);
    for (role, name) in [(Role::Observer, "obs"), (Role::Party, "buyer")] {
        ca.issue(role, name, &["localhost", "127.0.0.1"], valid).unwrap().write(&tls).unwrap();
    }
    let (buyer, seller, observer) =
        (PartyKey::from_seed([2; 32]), PartyKey::from_seed([3; 32]), PartyKey::from_seed([11; 32]));
    let terms = terms(&buyer, &seller, &observer);
    let mut log = ObserverLog::open(&dir.path().join("observer.sqlite"), observer.clone()).unwrap();
    log.follow(1, 0, &terms, 1).unwrap();
    log.record(&GatewayEvent {
        gateway_network: 1,
        gateway_seq: 1,
        deal_id: terms.id(),
        kind: "registered".into(),
        network: 1,
        height: 0,
        timestamp_ms: 1_000,
        event_encoded: Vec::new(),
        text: "registered".into(),
        time_from_observer: false,
    })
    .unwrap();
    let records = log.len();

    let directory = Arc::new(directory(&buyer, &seller, &observer));
    let service = ObserverService::new(log, directory.clone(), HashMap::new(), now_ms).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let serving = service.clone();
    let server_tls = TlsFiles::in_dir(&tls, "obs");
    tokio::spawn(async move {
        interlock_observer::serve(serving, &server_tls, directory, listener, std::future::pending()).await.unwrap();
    });
    let channel = Channel::from_shared(format!("https://localhost:{port}"))
        .unwrap()
        .tls_config(TlsFiles::in_dir(&tls, "buyer").client_config("localhost").unwrap())
        .unwrap()
        .connect_lazy();
    let mut client = ObserverClient::new(channel);

    let too_many = u32::try_from(LIST_LIMIT_MAX + 1).unwrap();
    for limit in [too_many, u32::MAX] {
        let status = client.list_deals(v1::ObservedDealsRequest { status: String::new(), limit }).await.unwrap_err();
        assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
        assert_eq!(status.message(), format!("limit out of range: expected 0 to {LIST_LIMIT_MAX}, found {limit}"));
    }
    for limit in [0, 1, too_many - 1] {
        let listed = client.list_deals(v1::ObservedDealsRequest { status: String::new(), limit }).await.unwrap();
        assert_eq!(listed.into_inner().deals.len(), 1, "limit {limit}");
    }
    assert_eq!(service.log().len(), records, "the log is unchanged");
}
