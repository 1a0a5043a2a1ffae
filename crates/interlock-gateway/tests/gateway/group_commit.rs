//! Group commit in the gateway: registrations sent at once share commits,
//! each is answered with its own result, a refused one among them takes
//! nothing from the others, and all the acknowledged ones are in the file
//! when the gateway comes back from it.

use super::*;

/// Registrations sent at once.
const WRITERS: u64 = 48;
/// Proposals among them that the write refuses (a margin the chains cannot honour).
const REFUSED: u64 = 8;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_registrations_share_commits_and_survive_a_restart_and_a_refusal_undoes_none() {
    let mut world = World::new().await;
    // Beta's gateway stays down: its messages wait in alpha's outbox, so the
    // only writes to alpha's store are the calls below.
    world.start_gateway(ALPHA).await;
    // One connection, opened before: the calls arrive together, not one
    // handshake apart.
    let client = world.gateway(ALPHA, "buyer");
    let warm_up = client.clone().get_deal(v1::GetDealRequest { deal_id: vec![0; 32] }).await;
    assert_eq!(warm_up.map(|_| ()).unwrap_err().code(), Code::NotFound);
    let commits_before = world.service(ALPHA).group_commits();

    let mut accepted = Vec::new();
    let mut calls = Vec::new();
    for nonce in 1..=WRITERS + REFUSED {
        let mut terms = world.open_terms(nonce, &Secret([13; 32]));
        let refuse = nonce > WRITERS;
        if refuse {
            let Settlement::Hashlock { margin_ms, .. } = &mut terms.settlement else { unreachable!() };
            *margin_ms = 149;
        } else {
            accepted.push(terms.id());
        }
        let signed = world.signed(&terms, true, true);
        let mut gateway = client.clone();
        calls.push((refuse, terms.id(), tokio::spawn(async move { gateway.register_deal(signed).await })));
    }
    for (refuse, deal_id, call) in calls {
        let answer = call.await.unwrap();
        if refuse {
            check("a registration the chains cannot honour", answer, Code::FailedPrecondition, "too little time");
        } else {
            let notice = answer.unwrap_or_else(|status| panic!("registration of {deal_id}: {}", status.message()));
            assert_eq!(notice.into_inner().deal_id, deal_id.0 .0.to_vec(), "each caller gets its own notice");
        }
    }
    let commits = world.service(ALPHA).group_commits() - commits_before;
    // The writes shared commits: fewer commits than writes (about six writes
    // a commit measured on an idle machine; under load, fewer share one, so
    // only the sharing itself is asserted).
    assert!(
        (1..WRITERS + REFUSED).contains(&commits),
        "{} writes waiting together took {commits} commits",
        WRITERS + REFUSED
    );

    // Alpha's gateway comes back from its file: every acknowledged
    // registration is there, no refused one.
    world.stop_gateway(ALPHA).await;
    world.start_gateway(ALPHA).await;
    for deal_id in &accepted {
        let request = v1::GetDealRequest { deal_id: deal_id.0 .0.to_vec() };
        let status = world.gateway(ALPHA, "buyer").get_deal(request).await.unwrap().into_inner();
        assert_eq!(status.state, "registered", "deal {deal_id}");
    }
    for nonce in WRITERS + 1..=WRITERS + REFUSED {
        let mut terms = world.open_terms(nonce, &Secret([13; 32]));
        let Settlement::Hashlock { margin_ms, .. } = &mut terms.settlement else { unreachable!() };
        *margin_ms = 149;
        let request = v1::GetDealRequest { deal_id: terms.id().0 .0.to_vec() };
        let refused = world.gateway(ALPHA, "buyer").get_deal(request).await;
        assert_eq!(refused.map(|_| ()).unwrap_err().code(), Code::NotFound, "a refused deal was not recorded");
    }
}
