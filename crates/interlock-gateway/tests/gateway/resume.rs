//! A gateway saves where its follower stands with what it recorded, and a
//! restart resumes after it: nothing recorded twice, nothing skipped —
//! including a reservation seen for a deal not registered yet, which the
//! deal's later registration still records.

use super::{until, World, ALPHA};
use interlock_core::crypto::Secret;
use interlock_core::encoding::Encode;
use interlock_core::saga::expected_request;
use interlock_core::{reservation_id, EscrowOp, LegKind};
use interlock_gateway::gateway_store::GatewayStore;
use interlock_ledger::{Op, Transaction};
use interlock_proto::v1;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_gateway_resumes_after_its_saved_cursor_and_keeps_events_of_unregistered_deals() {
    let mut world = World::new().await;
    world.start_gateway(ALPHA).await;
    let store_path = world.dir.path().join("gw-alpha.sqlite");
    let saved = || GatewayStore::open(&store_path).unwrap().cursor().unwrap();

    // The buyer reserves its payment before the deal is registered here: the
    // gateway keeps the event for a registration that may come.
    let terms = world.open_terms(7, &Secret([21; 32]));
    let deal_id = terms.id();
    let reserve = EscrowOp::Reserve(expected_request(&terms, deal_id, LegKind::Payment));
    let tx = Transaction::sign(&world.buyer, ALPHA, 1, Op::Escrow(reserve));
    let request = v1::SubmitTransactionRequest { transaction_encoded: tx.to_bytes(), wait: true };
    let included = world.ledger(ALPHA).submit_transaction(request).await.unwrap().into_inner().height;
    until("the gateway saves a cursor past the reservation", || async {
        saved().filter(|cursor| cursor.height >= included).map(|_| ())
    })
    .await;
    let pending = GatewayStore::open(&store_path).unwrap().pending_events().unwrap();
    assert_eq!(pending.len(), 1, "the reservation is kept on disk for its deal: {pending:?}");

    // Restarted, the follower goes on after the saved cursor.
    world.stop_gateway(ALPHA).await;
    let before = saved().expect("a saved cursor");
    world.start_gateway(ALPHA).await;
    world.register(&terms).await;
    until("the registration records the reservation seen before the restart", || async {
        let kinds = world.event_kinds(ALPHA, "buyer", deal_id).await.ok()?;
        (kinds == ["registered", "reserved"]).then_some(())
    })
    .await;
    assert!(GatewayStore::open(&store_path).unwrap().pending_events().unwrap().is_empty(), "recorded, so forgotten");
    let after = saved().expect("a saved cursor");
    assert!(after.height >= before.height, "the cursor never goes back: {before} then {after}");
    let state = world.reservation_state(ALPHA, reservation_id(deal_id, LegKind::Payment)).await;
    assert_eq!(state.as_deref(), Some("reserved"));
}
