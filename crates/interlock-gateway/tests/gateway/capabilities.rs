//! A gateway holds a deal to what its platform's escrow can hold: the
//! embedded ledger holds executed legs for an inspection period, so a
//! notary-mode deal with one is taken; an inspection period without notaries
//! is refused before anything is recorded.

use super::{check, notary_settlement, World, ALPHA, BETA};
use interlock_core::crypto::Secret;
use interlock_core::{DealTerms, Disputer, Inspection};
use tonic::Code;

fn notary_terms(world: &World, nonce: u64) -> DealTerms {
    let mut terms = world.open_terms(nonce, &Secret([31; 32]));
    terms.settlement = notary_settlement(60_000, 120_000);
    terms
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_inspection_period_is_taken_with_notaries_and_refused_without() {
    let world = World::start().await;
    let inspection = Some(Inspection { window_ms: 60_000, disputer: Disputer::Buyer });
    let mut inspected = notary_terms(&world, 41);
    inspected.policy.inspection = inspection;
    world
        .gateway(ALPHA, "buyer")
        .propose_deal(world.signed(&inspected, true, false))
        .await
        .expect("held on the ledger");
    let registered = world.gateway(BETA, "seller").register_deal(world.signed(&inspected, true, true)).await;
    assert_eq!(registered.expect("both gateways take it").into_inner().kind, "registered");

    // Inspection needs notaries whatever the platform: the terms themselves are refused.
    let mut hashlock = world.open_terms(42, &Secret([32; 32]));
    hashlock.policy.inspection = inspection;
    let proposed = world.gateway(ALPHA, "buyer").propose_deal(world.signed(&hashlock, true, false)).await;
    check("inspection in hashlock mode", proposed, Code::InvalidArgument, "an inspection period needs notary mode");
    let unknown = world.event_kinds(ALPHA, "buyer", hashlock.id()).await;
    check("the refused deal", unknown, Code::NotFound, "knows no deal");
}
