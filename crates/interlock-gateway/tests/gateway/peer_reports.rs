//! What another network's gateway reports is checked before it is recorded:
//! a lock assertion by its signature and against itself, a notification
//! (which carries no signature of its own) against itself and the
//! reservation the peer asserted for its leg, or the deal's terms while none
//! was asserted. A report that does not decode or does not verify is refused
//! with a status and nothing is recorded; a genuine one is accepted as before.

use super::{certificate, check, gateway_key, notary_settlement, World, ALPHA, BETA};
use interlock_core::crypto::{Certificate, Decision, Secret, Token};
use interlock_core::encoding::Encode;
use interlock_core::saga::expected_request;
use interlock_core::{Address, Asset, DealId, DealTerms, EscrowEvent, Hash32, LegKind, Reservation, ReservationId};
use interlock_gateway::checks::sign_lock_assertion;
use interlock_proto::v1;
use interlock_proto::v1::gateway_peer_client::GatewayPeerClient;
use tonic::transport::Channel;
use tonic::Code;

/// The reservation of `leg` exactly as the deal's terms ask for it.
fn reserved(terms: &DealTerms, leg: LegKind) -> Reservation {
    expected_request(terms, terms.id(), leg).reservation()
}

/// The beneficiary's execution of `reservation` with `secret`.
fn executed(reservation: &Reservation, secret: Secret) -> EscrowEvent {
    reservation.executed(reservation.beneficiary, Token::Secret(secret))
}

fn notification(event_encoded: Vec<u8>) -> v1::Notifications {
    let notification = v1::Notification { network: BETA.0, height: 9, timestamp_ms: 1_000, event_encoded };
    v1::Notifications { notifications: vec![notification] }
}

/// `event` with one field changed by `change`.
fn altered(event: &EscrowEvent, change: impl FnOnce(&mut EscrowEvent)) -> Vec<u8> {
    let mut event = event.clone();
    change(&mut event);
    event.to_bytes()
}

/// `bytes` with one bit of byte `index` flipped (from the end when negative).
fn flipped(bytes: &[u8], index: isize) -> Vec<u8> {
    let mut bytes = bytes.to_vec();
    let index = if index < 0 { bytes.len() - index.unsigned_abs() } else { index.unsigned_abs() };
    bytes[index] ^= 1;
    bytes
}

/// The kinds of the peer's reports the gateway of alpha recorded for the deal.
async fn peer_kinds(world: &World, deal_id: DealId) -> Vec<String> {
    let kinds = world.event_kinds(ALPHA, "buyer", deal_id).await.unwrap();
    kinds.into_iter().filter(|kind| kind.starts_with("peer_")).collect()
}

async fn refused(peer: &mut GatewayPeerClient<Channel>, cases: Vec<(&str, Vec<u8>, Code, &str)>) {
    for (name, event_encoded, code, text) in cases {
        check(name, peer.notify(notification(event_encoded)).await, code, text);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn altered_notifications_and_assertions_are_refused_and_genuine_ones_accepted() {
    let (world, secret, terms) = World::with_deal(3).await;
    let deal_id = terms.id();
    let mut peer = world.peer(ALPHA, "gw-beta");
    let carol = Address::from_bytes(world.carol.public().0);

    // Beta's gateway asserts the seller's delivery reservation, signed.
    let delivery = reserved(&terms, LegKind::Delivery);
    let block = Hash32([5; 32]);
    let genuine = sign_lock_assertion(&gateway_key(BETA), BETA, 7, block, &delivery);
    let assert = |assertion: v1::LockAssertion| v1::LockAssertions { assertions: vec![assertion] };
    assert_eq!(peer.assert_locks(assert(genuine.clone())).await.unwrap().into_inner().accepted, 1);
    // Known now, an altered copy is still checked; so is a signed reservation
    // that names another deal's reservation id.
    let mut altered_assertion = genuine.clone();
    altered_assertion.reservation_encoded = flipped(&genuine.reservation_encoded, -3);
    let refusal = peer.assert_locks(assert(altered_assertion)).await;
    check("an altered assertion", refusal, Code::Unauthenticated, "not signed by that network's gateway");
    let foreign = Reservation { id: ReservationId(Hash32([8; 32])), ..delivery.clone() };
    let inconsistent = sign_lock_assertion(&gateway_key(BETA), BETA, 7, block, &foreign);
    let refusal = peer.assert_locks(assert(inconsistent)).await;
    let text = "its id is not the one of its deal and leg";
    check("an assertion naming another reservation id", refusal, Code::InvalidArgument, text);
    assert_eq!(peer_kinds(&world, deal_id).await, ["peer_reserved"]);

    // The buyer executes the delivery with the secret; beta's gateway tells alpha's.
    let execution = executed(&delivery, secret);
    let encoded = execution.to_bytes();
    let wrong_asset = Asset::Fungible { code: interlock_core::AssetCode::new("USD").unwrap(), amount: 21 };
    let cancellation = EscrowEvent::Cancelled {
        reservation: delivery.id,
        deal_id,
        leg: LegKind::Delivery,
        by: delivery.owner,
        to: delivery.beneficiary,
        asset: delivery.asset.clone(),
    };
    let cases = vec![
        ("a flipped bit in the reservation id", flipped(&encoded, 10), Code::InvalidArgument, "names reservation"),
        ("a flipped bit in the deal id", flipped(&encoded, 40), Code::InvalidArgument, "names reservation"),
        ("a flipped bit in the secret", flipped(&encoded, -1), Code::Unauthenticated, "does not open"),
        ("truncated", encoded[..encoded.len() - 1].to_vec(), Code::InvalidArgument, "malformed event_encoded"),
        (
            "paid to someone else",
            altered(&execution, |event| {
                if let EscrowEvent::Executed { to, .. } = event {
                    *to = carol;
                }
            }),
            Code::InvalidArgument,
            "does not match",
        ),
        (
            "executed by someone else",
            altered(&execution, |event| {
                if let EscrowEvent::Executed { by, .. } = event {
                    *by = carol;
                }
            }),
            Code::InvalidArgument,
            "does not match",
        ),
        (
            "another amount",
            altered(&execution, |event| {
                if let EscrowEvent::Executed { asset, .. } = event {
                    *asset = wrong_asset.clone();
                }
            }),
            Code::InvalidArgument,
            "does not match",
        ),
        ("a cancellation paid to the beneficiary", cancellation.to_bytes(), Code::InvalidArgument, "does not match"),
    ];
    refused(&mut peer, cases).await;
    assert_eq!(peer_kinds(&world, deal_id).await, ["peer_reserved"], "nothing refused was recorded");

    // The genuine notification is accepted, once; an altered copy of it is
    // refused after it too.
    assert_eq!(peer.notify(notification(encoded.clone())).await.unwrap().into_inner().accepted, 1);
    assert_eq!(peer.notify(notification(encoded.clone())).await.unwrap().into_inner().accepted, 0);
    refused(&mut peer, vec![("an altered copy", flipped(&encoded, -1), Code::Unauthenticated, "does not open")]).await;
    assert_eq!(peer_kinds(&world, deal_id).await, ["peer_reserved", "peer_executed"]);

    // A deal with no assertion yet: a notification is checked against its terms.
    let other = world.open_terms(2, &secret);
    world.register(&other).await;
    let other_delivery = reserved(&other, LegKind::Delivery);
    let unasserted = executed(&other_delivery, secret);
    let cases = vec![(
        "another amount, against the terms",
        altered(&unasserted, |event| {
            if let EscrowEvent::Executed { asset, .. } = event {
                *asset = wrong_asset.clone();
            }
        }),
        Code::InvalidArgument,
        "does not match",
    )];
    refused(&mut peer, cases).await;
    assert_eq!(peer.notify(notification(unasserted.to_bytes())).await.unwrap().into_inner().accepted, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_execution_whose_commit_certificate_does_not_verify_is_refused() {
    let world = World::start().await;
    let mut terms = world.open_terms(1, &Secret([4; 32]));
    terms.settlement = notary_settlement(60_000, 120_000);
    let deal_id = terms.id();
    world.register(&terms).await;
    let mut peer = world.peer(ALPHA, "gw-beta");
    let delivery = reserved(&terms, LegKind::Delivery);
    let assertion = sign_lock_assertion(&gateway_key(BETA), BETA, 7, Hash32([5; 32]), &delivery);
    peer.assert_locks(v1::LockAssertions { assertions: vec![assertion] }).await.unwrap();

    let commit = certificate(deal_id, Decision::Commit);
    let execution = |certificate: Certificate| EscrowEvent::Executed {
        reservation: delivery.id,
        deal_id,
        leg: LegKind::Delivery,
        by: delivery.beneficiary,
        to: delivery.beneficiary,
        asset: delivery.asset.clone(),
        token: Token::Certificate(certificate),
    };
    let genuine = execution(commit.clone()).to_bytes();
    let abort = certificate(deal_id, Decision::Abort);
    let cases = vec![
        ("a flipped bit in the notary's signature", flipped(&genuine, -5), Code::Unauthenticated, "does not open"),
        ("an abort certificate", execution(abort).to_bytes(), Code::Unauthenticated, "does not open"),
        (
            "no signature",
            execution(Certificate { signatures: vec![], ..commit }).to_bytes(),
            Code::Unauthenticated,
            "does not open",
        ),
        ("a secret", executed(&delivery, Secret([4; 32])).to_bytes(), Code::Unauthenticated, "found a secret"),
    ];
    refused(&mut peer, cases).await;
    assert_eq!(peer_kinds(&world, deal_id).await, ["peer_reserved"], "nothing refused was recorded");
    assert_eq!(peer.notify(notification(genuine)).await.unwrap().into_inner().accepted, 1);
    assert_eq!(peer_kinds(&world, deal_id).await, ["peer_reserved", "peer_executed"]);
}
