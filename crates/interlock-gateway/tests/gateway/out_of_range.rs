//! Integers a caller sends are checked against the range the gateway can
//! hold before anything is read or recorded: a sequence number, height or
//! time beyond what its store keeps (signed 64-bit) is refused with
//! `INVALID_ARGUMENT` naming the field, and nothing changes.

use super::{check, gateway_key, World, ALPHA, BETA};
use interlock_core::crypto::Secret;
use interlock_core::encoding::Encode;
use interlock_core::saga::expected_request;
use interlock_core::{reservation_id, EscrowEvent, Hash32, LegKind, Reservation, ReservationState};
use interlock_gateway::checks::sign_lock_assertion;
use interlock_proto::v1;
use tonic::Code;

const BEYOND_I64: u64 = 1 << 63;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn integers_beyond_the_stores_range_are_refused_and_nothing_is_recorded() {
    let world = World::start().await;
    let terms = world.open_terms(1, &Secret([21; 32]));
    let deal_id = terms.id();
    let mut buyer = world.gateway(ALPHA, "buyer");
    buyer.register_deal(world.signed(&terms, true, true)).await.unwrap();
    let before = world.event_kinds(ALPHA, "buyer", deal_id).await.unwrap();

    for from_seq in [BEYOND_I64, u64::MAX] {
        let watched = buyer.watch_deals(v1::WatchDealsRequest { from_seq }).await.map(|_| ());
        check(
            "watch deals",
            watched,
            Code::InvalidArgument,
            "from_seq out of range: expected 0 to 9223372036854775807",
        );
        let request = v1::WatchDealRequest { deal_id: deal_id.0 .0.to_vec(), from_seq };
        let watched = buyer.watch_deal(request).await.map(|_| ());
        check("watch deal", watched, Code::InvalidArgument, "malformed from_seq: out of range: expected 0 to");
        let blocks = buyer.stream_blocks(v1::StreamBlocksRequest { from_height: from_seq }).await.map(|_| ());
        check("stream blocks", blocks, Code::InvalidArgument, "from_height out of range");
    }

    // A lock assertion genuinely signed by beta's gateway, at a height no store holds.
    let request = expected_request(&terms, deal_id, LegKind::Delivery);
    let reservation = Reservation {
        id: reservation_id(deal_id, LegKind::Delivery),
        deal_id,
        leg: LegKind::Delivery,
        asset: request.asset,
        owner: request.owner,
        beneficiary: request.beneficiary,
        keeper: request.keeper,
        condition: request.condition,
        expiry_ms: request.expiry_ms,
        state: ReservationState::Reserved,
    };
    let block = Hash32([6; 32]);
    let mut peer = world.peer(ALPHA, "gw-beta");
    let far = sign_lock_assertion(&gateway_key(BETA), BETA, u64::MAX, block, &reservation);
    let asserted = peer.assert_locks(v1::LockAssertions { assertions: vec![far] }).await;
    check(
        "far assertion",
        asserted,
        Code::InvalidArgument,
        "malformed height: out of range: expected 0 to 9223372036854775807",
    );

    let cancelled = EscrowEvent::Cancelled {
        reservation: reservation.id,
        deal_id,
        leg: LegKind::Delivery,
        by: reservation.owner,
        to: reservation.owner,
        asset: reservation.asset.clone(),
    };
    let notification = |height, timestamp_ms| v1::Notifications {
        notifications: vec![v1::Notification {
            network: BETA.0,
            height,
            timestamp_ms,
            event_encoded: cancelled.to_bytes(),
        }],
    };
    let notified = peer.notify(notification(BEYOND_I64, 1_000)).await;
    check("far notification", notified, Code::InvalidArgument, "malformed height: out of range");
    let notified = peer.notify(notification(3, u64::MAX)).await;
    check("late notification", notified, Code::InvalidArgument, "malformed timestamp_ms: out of range");

    // Terms whose payment expiry no store holds: refused as malformed, not registered.
    let far = world.terms(2, &Secret([22; 32]), None, 60_000, BEYOND_I64);
    far.validate().expect("the core's rules hold: only the range is wrong");
    let text = "malformed terms_encoded: payment_expiry_ms out of range: expected 0 to 9223372036854775807";
    check("far expiry", buyer.register_deal(world.signed(&far, true, true)).await, Code::InvalidArgument, text);
    check("far expiry", buyer.propose_deal(world.signed(&far, true, false)).await, Code::InvalidArgument, text);
    let far_notice = v1::DealNotice {
        seq: 0,
        deal_id: far.id().0 .0.to_vec(),
        kind: "registered".into(),
        deal: Some(world.signed(&far, true, true)),
    };
    check("far expiry forwarded", peer.forward_deal(far_notice).await, Code::InvalidArgument, text);
    let unknown = world.event_kinds(ALPHA, "buyer", far.id()).await;
    check("far deal", unknown, Code::NotFound, "");

    assert_eq!(world.event_kinds(ALPHA, "buyer", deal_id).await.unwrap(), before, "nothing was recorded");
    // The same assertion at an ordinary height is recorded: only the integer was wrong.
    let near = sign_lock_assertion(&gateway_key(BETA), BETA, 7, block, &reservation);
    let ack = peer.assert_locks(v1::LockAssertions { assertions: vec![near] }).await.unwrap().into_inner();
    assert_eq!(ack.accepted, 1);
}
