//! A gateway refuses a deal whose legs on its network its platform's escrow
//! cannot hold, before anything is recorded: here, an inspection period on
//! the embedded ledger, which does not yet hold executed legs.

use super::{check, World, ALPHA, BETA};
use interlock_core::crypto::{NotaryKey, Secret};
use interlock_core::{DealTerms, Disputer, Inspection, Settlement};
use std::time::{SystemTime, UNIX_EPOCH};
use tonic::Code;

fn notary_terms(world: &World, nonce: u64) -> DealTerms {
    let notary = NotaryKey::from_seed([9; 32]).unwrap();
    let mut terms = world.terms(nonce, &Secret([31; 32]), None, 60_000, 120_000);
    let now = u64::try_from(SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis()).unwrap();
    terms.settlement = Settlement::Notary {
        notaries: vec![notary.address()],
        threshold: 1,
        decision_deadline_ms: now + 60_000,
        backstop_expiry_ms: now + 120_000,
    };
    terms
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deal_the_platform_cannot_hold_is_refused_and_nothing_is_recorded() {
    let world = World::start().await;
    let mut inspected = notary_terms(&world, 41);
    inspected.policy.inspection = Some(Inspection { window_ms: 60_000, disputer: Disputer::Buyer });

    let proposed = world.gateway(ALPHA, "buyer").propose_deal(world.signed(&inspected, true, false)).await;
    check("proposing", proposed, Code::InvalidArgument, "cannot hold an executed leg for an inspection period");
    let registered = world.gateway(BETA, "seller").register_deal(world.signed(&inspected, true, true)).await;
    check("registering", registered, Code::InvalidArgument, "cannot hold an executed leg for an inspection period");
    for network in [ALPHA, BETA] {
        let unknown = world.event_kinds(network, "buyer", inspected.id()).await;
        check("the refused deal", unknown, Code::NotFound, "knows no deal");
    }

    // Inspection needs notaries whatever the platform: the terms themselves are refused.
    let mut hashlock = world.terms(42, &Secret([32; 32]), None, 60_000, 120_000);
    hashlock.policy.inspection = Some(Inspection { window_ms: 60_000, disputer: Disputer::Buyer });
    let proposed = world.gateway(ALPHA, "buyer").propose_deal(world.signed(&hashlock, true, false)).await;
    check("inspection in hashlock mode", proposed, Code::InvalidArgument, "an inspection period needs notary mode");

    // The same deal without the policy is welcome.
    let plain = notary_terms(&world, 43);
    world.gateway(ALPHA, "buyer").propose_deal(world.signed(&plain, true, false)).await.expect("no inspection");
}
