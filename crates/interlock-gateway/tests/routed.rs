//! Gateways joined only through relays: alpha's and gamma's gateways are not
//! linked, beta's (preferred) and delta's link both. Real ledger nodes and
//! gateways over gRPC and mutual TLS on loopback, with SQLite files.
//!
//! A deal between alpha and gamma reaches gamma's gateway through beta; a
//! routed message altered, forged, redirected, replayed, or sent by a gateway
//! not linked to the receiver is refused and changes nothing; with beta down
//! the message goes through delta; a relay that took a message on delivers
//! it after a restart from its file.

use interlock_core::crypto::PartyKey;
use interlock_core::{Address, Asset, AssetCode, DealTerms, NetworkId, Secret, Settlement};
use interlock_gateway::routing;
use interlock_gateway::testkit::{endpoint, now_ms, signed_deal, Networks};
use interlock_gateway::WebhookPolicy;
use interlock_identity::{Directory, GatewayLink, PartyEntry, Role};
use interlock_proto::v1;
use interlock_proto::v1::gateway_client::GatewayClient;
use interlock_proto::v1::gateway_peer_client::GatewayPeerClient;
use prost::Message as _;
use std::sync::Arc;
use std::time::Duration;
use tonic::transport::Channel;
use tonic::Code;

const ALPHA: NetworkId = NetworkId(1);
const BETA: NetworkId = NetworkId(2);
const GAMMA: NetworkId = NetworkId(3);
const DELTA: NetworkId = NetworkId(4);
const NETWORKS: [(NetworkId, &str); 4] = [(ALPHA, "alpha"), (BETA, "beta"), (GAMMA, "gamma"), (DELTA, "delta")];

fn gateway_key(network: NetworkId) -> PartyKey {
    PartyKey::from_seed([40 + u8::try_from(network.0).unwrap(); 32])
}

struct World {
    /// The files of the nodes and gateways, removed with the world.
    _dir: tempfile::TempDir,
    directory: Arc<Directory>,
    networks: Networks,
    buyer: PartyKey,
    seller: PartyKey,
}

impl World {
    /// Four ledger nodes and their gateways' addresses; links alpha - beta -
    /// gamma (preferred) and alpha - delta - gamma. No gateway runs yet.
    async fn new() -> World {
        let dir = tempfile::tempdir().unwrap();
        let mut networks = Networks::bind(dir.path(), &NETWORKS).await;
        networks.issue(&[(Role::Party, "buyer"), (Role::Party, "seller")]);
        let (buyer, seller) = (PartyKey::from_seed([2; 32]), PartyKey::from_seed([3; 32]));
        let party = |name: &str, key: &PartyKey| PartyEntry {
            name: name.into(),
            key: key.public(),
            accounts: NETWORKS.iter().map(|(network, _)| (*network, Address::from_bytes(key.public().0))).collect(),
        };
        let link = |a, b, preference| GatewayLink { networks: [a, b], preference };
        let directory = Arc::new(Directory {
            networks: networks.network_entries(),
            gateways: networks.gateway_entries(gateway_key),
            parties: vec![party("buyer", &buyer), party("seller", &seller)],
            links: Some(vec![link(ALPHA, BETA, 0), link(BETA, GAMMA, 0), link(ALPHA, DELTA, 1), link(DELTA, GAMMA, 1)]),
            ..Directory::default()
        });
        directory.validate().unwrap();
        let operator = PartyKey::from_seed([1; 32]).public();
        networks.start_ledger_nodes(operator, &directory);
        World { _dir: dir, directory, networks, buyer, seller }
    }

    /// Starts (or restarts, from its SQLite file) the gateway of `network`.
    async fn start(&mut self, network: NetworkId) {
        self.networks.start_gateway((network, gateway_key(network)), &self.directory, WebhookPolicy::default()).await;
    }

    async fn stop(&mut self, network: NetworkId) {
        self.networks.stop_gateway(network).await;
    }

    fn party(&self, network: NetworkId, name: &str) -> GatewayClient<Channel> {
        GatewayClient::new(endpoint(&self.networks.tls, name, self.networks.gateways[&network]).connect_lazy())
    }

    /// A peer client of `network`'s gateway, calling as the gateway `as_network`.
    fn peer(&self, network: NetworkId, as_network: NetworkId) -> GatewayPeerClient<Channel> {
        GatewayPeerClient::new(
            endpoint(&self.networks.tls, &self.networks.gateway_name(as_network), self.networks.gateways[&network])
                .connect_lazy(),
        )
    }

    /// The buyer pays 30 USD on alpha for 20 USD the seller delivers on gamma.
    fn terms(&self, nonce: u64) -> DealTerms {
        let usd = |amount| Asset::Fungible { code: AssetCode::new("USD").unwrap(), amount };
        let now = now_ms();
        let settlement = Settlement::Hashlock {
            hash: Secret([7; 32]).hash(),
            payment_expiry_ms: now + 600_000,
            delivery_expiry_ms: now + 300_000,
            margin_ms: 1_000,
        };
        DealTerms {
            nonce,
            ..DealTerms::swap(self.buyer.public(), self.seller.public(), (ALPHA, usd(30)), (GAMMA, usd(20)), settlement)
        }
    }

    fn signed(&self, terms: &DealTerms) -> v1::SignedDeal {
        signed_deal(terms, &self.buyer, &self.seller)
    }

    /// The deal's state at the gateway of `network`, as the seller sees it.
    async fn state(&self, network: NetworkId, terms: &DealTerms) -> Option<String> {
        let request = v1::GetDealRequest { deal_id: terms.id().0 .0.to_vec() };
        Some(self.party(network, "seller").get_deal(request).await.ok()?.into_inner().state)
    }

    async fn until_registered(&self, network: NetworkId, terms: &DealTerms) {
        for _ in 0..300 {
            if self.state(network, terms).await.as_deref() == Some("registered") {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("deal {} never reached the gateway of {network}", terms.id());
    }

    /// alpha's forwarding of `terms` to gamma, sealed by alpha's gateway.
    fn sealed(&self, terms: &DealTerms, outbox_id: u64) -> v1::RoutedMessage {
        let notice = v1::DealNotice {
            kind: "registered".into(),
            deal_id: terms.id().0 .0.to_vec(),
            deal: Some(self.signed(terms)),
            ..Default::default()
        };
        let payload = notice.encode_to_vec();
        let id = routing::message_id(ALPHA, GAMMA, outbox_id, "forward", &payload);
        routing::seal(&gateway_key(ALPHA), ALPHA, GAMMA, id, "forward", payload)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deal_reaches_a_gateway_not_linked_to_its_own_through_a_relay() {
    let mut world = World::new().await;
    for (network, _) in NETWORKS {
        world.start(network).await;
    }
    let terms = world.terms(1);
    world.party(ALPHA, "buyer").register_deal(world.signed(&terms)).await.unwrap();
    world.until_registered(GAMMA, &terms).await;
    assert_eq!(world.state(BETA, &terms).await, None, "the relay carried the deal but does not hold it");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn altered_forged_redirected_replayed_or_unlinked_routed_messages_are_refused() {
    let mut world = World::new().await;
    world.start(GAMMA).await;
    let beta_to_gamma = world.peer(GAMMA, BETA);
    let relayed = |mut message: v1::RoutedMessage| {
        message.path.push(BETA.0);
        message
    };
    let refused = |what: &str, result: Result<tonic::Response<v1::PeerAck>, tonic::Status>, code: Code, says: &str| {
        let status = result.expect_err(what);
        assert_eq!(status.code(), code, "{what}: {status:?}");
        assert!(status.message().contains(says), "{what}: {:?} should say {says:?}", status.message());
    };

    let terms = world.terms(2);
    let mut altered = relayed(world.sealed(&terms, 1));
    altered.payload = v1::DealNotice {
        kind: "registered".into(),
        deal_id: world.terms(3).id().0 .0.to_vec(),
        deal: Some(world.signed(&world.terms(3))),
        ..Default::default()
    }
    .encode_to_vec();
    refused("altered", beta_to_gamma.clone().relay(altered).await, Code::Unauthenticated, "altered or forged");

    let mut redirected = relayed(world.sealed(&terms, 1));
    redirected.destination = DELTA.0;
    refused("redirected", beta_to_gamma.clone().relay(redirected.clone()).await, Code::Unauthenticated, "altered");
    redirected.destination = GAMMA.0;
    redirected.origin = DELTA.0;
    redirected.path = vec![DELTA.0, BETA.0];
    refused(
        "origin changed",
        beta_to_gamma.clone().relay(redirected).await,
        Code::Unauthenticated,
        "altered or forged",
    );

    let mut forged = relayed(world.sealed(&terms, 1));
    let by_beta = routing::seal(&gateway_key(BETA), ALPHA, GAMMA, [9; 32], "forward", forged.payload.clone());
    forged.message_id = by_beta.message_id;
    forged.signature = by_beta.signature;
    refused("signed by the relay", beta_to_gamma.clone().relay(forged).await, Code::Unauthenticated, "gw-alpha");

    let unrelayed = world.sealed(&terms, 1);
    refused(
        "path without the relay",
        beta_to_gamma.clone().relay(unrelayed.clone()).await,
        Code::InvalidArgument,
        "does not end with",
    );
    refused(
        "an unlinked gateway",
        world.peer(GAMMA, ALPHA).relay(unrelayed).await,
        Code::PermissionDenied,
        "not linked",
    );
    let mut bad_kind = relayed(world.sealed(&terms, 1));
    bad_kind.kind = "shout".into();
    refused("unknown kind", beta_to_gamma.clone().relay(bad_kind).await, Code::InvalidArgument, "expected \"forward\"");
    assert_eq!(world.state(GAMMA, &terms).await, None, "nothing refused changed gamma's gateway");

    let genuine = relayed(world.sealed(&terms, 1));
    beta_to_gamma.clone().relay(genuine.clone()).await.unwrap();
    assert_eq!(world.state(GAMMA, &terms).await.as_deref(), Some("registered"));
    refused("replayed", beta_to_gamma.clone().relay(genuine).await, Code::AlreadyExists, "handled here already");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_the_preferred_relay_down_the_other_route_delivers() {
    let mut world = World::new().await;
    for network in [ALPHA, GAMMA, DELTA] {
        world.start(network).await;
    }
    let terms = world.terms(4);
    world.party(ALPHA, "buyer").register_deal(world.signed(&terms)).await.unwrap();
    world.until_registered(GAMMA, &terms).await;
    assert_eq!(world.state(DELTA, &terms).await, None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relay_restarted_after_taking_a_message_on_still_delivers_it() {
    let mut world = World::new().await;
    for network in [ALPHA, BETA] {
        world.start(network).await;
    }
    // gamma is down: beta takes the message on and holds it.
    let terms = world.terms(5);
    world.party(ALPHA, "buyer").register_deal(world.signed(&terms)).await.unwrap();
    let beta = world.networks.running[&BETA].service.clone();
    for _ in 0..300 {
        if beta.outbox_len(GAMMA).unwrap() == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(beta.outbox_len(GAMMA).unwrap(), 1, "beta holds the message for gamma");
    drop(beta);
    world.stop(ALPHA).await;
    world.stop(BETA).await;
    world.start(BETA).await;
    world.start(GAMMA).await;
    world.until_registered(GAMMA, &terms).await;
}
