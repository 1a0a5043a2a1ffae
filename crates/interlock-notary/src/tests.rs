//! The service's block-stream handling, driven with stream messages directly:
//! a reorganisation takes away a reservation the notary had counted.

use super::*;
use interlock_core::crypto::PartyKey;
use interlock_core::encoding::{encode_terms, Encode};
use interlock_core::saga::expected_request;
use interlock_core::{Asset, Settlement};

const ALPHA: NetworkId = NetworkId(1);
const BETA: NetworkId = NetworkId(2);

fn now_ms() -> u64 {
    u64::try_from(std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis()).unwrap()
}

fn terms(notary: &NotaryKey, buyer: &PartyKey, seller: &PartyKey) -> DealTerms {
    let usd = |amount| Asset::Fungible { code: AssetCode::new("USD").unwrap(), amount };
    let deadline_ms = now_ms() + 60_000;
    let settlement = Settlement::Notary {
        notaries: vec![notary.address()],
        threshold: 1,
        decision_deadline_ms: deadline_ms,
        backstop_expiry_ms: deadline_ms + 600_000,
    };
    DealTerms::swap(buyer.public(), seller.public(), (ALPHA, usd(30)), (BETA, usd(20)), settlement)
}

/// A stream message: the block at `height` with the reservation of `leg`,
/// or (`rolled_back`) the block kept at `height` after a reorganisation.
fn block(
    network: NetworkId,
    height: u64,
    reserved: Option<(&DealTerms, LegKind)>,
    rolled_back: bool,
) -> v1::BlockEvents {
    let events = reserved
        .map(|(terms, leg)| {
            let reservation = expected_request(terms, terms.id(), leg).reservation();
            v1::LedgerEvent {
                network: network.0,
                height,
                transaction_id: vec![0; 32],
                deal_id: terms.id().0 .0.to_vec(),
                kind: "reserved".into(),
                event_encoded: EscrowEvent::Reserved(reservation).to_bytes(),
            }
        })
        .into_iter()
        .collect();
    let header = v1::BlockHeader { network: network.0, height, ..Default::default() };
    v1::BlockEvents { header: Some(header), events, rolled_back }
}

/// A notary service with one registered buyer and seller, its log in `dir`.
fn service(dir: &std::path::Path) -> (NotaryService, NotaryKey, PartyKey, PartyKey) {
    let notary = NotaryKey::from_seed([5; 32]).unwrap();
    let (buyer, seller) = (PartyKey::from_seed([2; 32]), PartyKey::from_seed([3; 32]));
    let log = NotaryLog::open(&dir.join("notary.sqlite")).unwrap();
    let registered = [buyer.public(), seller.public()].into_iter().collect();
    let service = NotaryService::open(notary.clone(), log, HashMap::new(), registered, HashMap::new(), now_ms).unwrap();
    (service, notary, buyer, seller)
}

/// The deal as its parties hand it to a notary.
fn submission(terms: &DealTerms, buyer: &PartyKey, seller: &PartyKey) -> Request<v1::SubmitDealRequest> {
    let deal_id = terms.id();
    Request::new(v1::SubmitDealRequest {
        terms_encoded: encode_terms(terms),
        buyer_signature: buyer.sign_deal(deal_id).0.to_vec(),
        seller_signature: seller.sign_deal(deal_id).0.to_vec(),
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reservation_a_reorganisation_took_away_is_not_counted_until_it_is_seen_again() {
    let dir = tempfile::tempdir().unwrap();
    let (service, notary, buyer, seller) = service(dir.path());
    let terms = terms(&notary, &buyer, &seller);
    let deal_id = terms.id();
    let answer = service.submit_deal(submission(&terms, &buyer, &seller)).await.unwrap().into_inner();
    assert!(answer.vote.is_none(), "nothing is reserved yet");
    let vote = |service: &NotaryService| locked(&service.shared.votes).get(&deal_id).map(|vote| vote.decision);

    // The payment is seen at alpha's block 7; alpha then goes back to block 6.
    service.on_block(ALPHA, &block(ALPHA, 7, Some((&terms, LegKind::Payment)), false)).await;
    service.on_block(ALPHA, &block(ALPHA, 6, None, true)).await;
    // The delivery alone commits nothing.
    service.on_block(BETA, &block(BETA, 3, Some((&terms, LegKind::Delivery)), false)).await;
    assert_eq!(vote(&service), None, "committed on a payment the chain no longer holds");
    // A reorganisation above where a leg was seen leaves it counted.
    service.on_block(BETA, &block(BETA, 3, None, true)).await;
    // The payment mined again on the new chain: now both legs are in.
    service.on_block(ALPHA, &block(ALPHA, 7, Some((&terms, LegKind::Payment)), false)).await;
    assert_eq!(vote(&service), Some(Decision::Commit));
}

/// A spend request for `terms`' `leg` as a party sends it.
fn spend_request(terms: &DealTerms, leg: &str, decision: &str) -> v1::SignSpendRequest {
    v1::SignSpendRequest {
        deal_id: terms.id().0 .0.to_vec(),
        leg: leg.into(),
        decision: decision.into(),
        location: vec![7; 44],
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_spend_is_signed_only_for_the_recorded_decision_on_a_network_whose_escrow_takes_it() {
    let dir = tempfile::tempdir().unwrap();
    let (service, notary, buyer, seller) = service(dir.path());
    // beta's escrow takes signatures over each spend: a digest of what was asked.
    let digest: SpendDigest = Arc::new(|spend: &SpendToSign| {
        let mut digest = [0u8; 32];
        digest[0] = u8::from(spend.decision == Decision::Commit);
        digest[1] = u8::from(spend.leg == LegKind::Delivery);
        digest[2..].copy_from_slice(&spend.location[..30]);
        Ok(digest)
    });
    service.sign_spends_on([(BETA, digest.clone())].into_iter().collect());
    let terms = terms(&notary, &buyer, &seller);
    let refused = |status: Result<Response<v1::SignSpendResponse>, Status>, code: tonic::Code, says: &str| {
        let status = status.expect_err("refused");
        assert_eq!(status.code(), code, "{status:?}");
        assert!(status.message().contains(says), "{status:?}");
    };
    let sign = |request| service.sign_spend(Request::new(request));

    refused(sign(spend_request(&terms, "delivery", "commit")).await, tonic::Code::NotFound, "no deal");
    service.submit_deal(submission(&terms, &buyer, &seller)).await.unwrap();
    refused(sign(spend_request(&terms, "delivery", "commit")).await, tonic::Code::FailedPrecondition, "not decided");
    for (network, leg) in [(ALPHA, LegKind::Payment), (BETA, LegKind::Delivery)] {
        service.on_block(network, &block(network, 3, Some((&terms, leg)), false)).await;
    }
    let abort = sign(spend_request(&terms, "delivery", "abort")).await;
    refused(abort, tonic::Code::FailedPrecondition, "recorded commit");
    let alpha = sign(spend_request(&terms, "payment", "commit")).await;
    refused(alpha, tonic::Code::FailedPrecondition, "checks the decision certificate itself");
    refused(sign(spend_request(&terms, "both", "commit")).await, tonic::Code::InvalidArgument, "expected payment");
    refused(sign(spend_request(&terms, "delivery", "maybe")).await, tonic::Code::InvalidArgument, "expected commit");
    let mut long = spend_request(&terms, "delivery", "commit");
    long.location = vec![0; 1_000];
    refused(sign(long).await, tonic::Code::InvalidArgument, "at most");

    let signed = sign(spend_request(&terms, "delivery", "commit")).await.expect("signed").into_inner();
    assert_eq!(signed.notary, notary.address().0.to_vec());
    let expected = digest(&SpendToSign {
        terms: Arc::new(terms.clone()),
        leg: LegKind::Delivery,
        decision: Decision::Commit,
        location: vec![7; 44],
    })
    .unwrap();
    let signature = interlock_core::crypto::RecoverableSignature(signed.signature.try_into().expect("65 bytes"));
    assert_eq!(signature.recover(&expected), Some(notary.address()), "a signature of the spend's digest");
}

#[test]
fn a_block_height_no_store_holds_stops_the_follower_instead_of_wrapping() {
    let block = |height| v1::BlockEvents {
        header: Some(v1::BlockHeader { height, ..Default::default() }),
        ..Default::default()
    };
    assert_eq!(next_height(&block(41), 7), Some(42));
    assert_eq!(next_height(&v1::BlockEvents::default(), 7), Some(7), "no header: read on from where we were");
    assert_eq!(next_height(&block(wire::STORED_INTEGER_MAX), 7), None, "its successor does not fit");
    assert_eq!(next_height(&block(u64::MAX), 7), None);
}

/// `terms` with another nonce and a decision deadline `deadline_in_ms` away.
fn deal_due(terms: &DealTerms, nonce: u64, deadline_in_ms: u64) -> DealTerms {
    let mut deal = terms.clone();
    deal.nonce = nonce;
    if let Settlement::Notary { decision_deadline_ms, .. } = &mut deal.settlement {
        *decision_deadline_ms = now_ms() + deadline_in_ms;
    }
    deal
}

/// Deals submitted at once, decided at once (their deadline passes in the
/// same tick): the accepts share commits, the decisions share commits, each
/// submission gets its own vote, and every decision is in the log reopened.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn decisions_due_together_share_commits_and_each_is_signed_after_it_is_durable() {
    const DEALS: u64 = 24;
    let dir = tempfile::tempdir().unwrap();
    let (service, notary, buyer, seller) = service(dir.path());
    let _tick = tokio::spawn(service.clone().tick());
    let template = terms(&notary, &buyer, &seller);
    let commits_before = service.group_commits();
    let submissions: Vec<_> = (1..=DEALS)
        .map(|nonce| {
            let deal = deal_due(&template, nonce, 400);
            let (service, request) = (service.clone(), submission(&deal, &buyer, &seller));
            (deal.id(), tokio::spawn(async move { service.submit_deal(request).await }))
        })
        .collect();
    for (deal_id, submitted) in submissions {
        let answer = submitted.await.unwrap().unwrap().into_inner();
        assert_eq!(answer.deal_id, deal_id.0 .0.to_vec());
        let vote = answer.vote.unwrap_or_else(|| panic!("deal {deal_id} got no vote"));
        assert_eq!(vote.decision, "abort", "nothing was reserved before the deadline");
    }
    let commits = service.group_commits() - commits_before;
    assert!((1..DEALS).contains(&commits), "{DEALS} accepts and {DEALS} decisions took {commits} commits");

    drop(service);
    let reopened = NotaryLog::open(&dir.path().join("notary.sqlite")).unwrap();
    let logged = reopened.load().unwrap();
    assert_eq!(logged.len(), usize::try_from(DEALS).unwrap());
    assert!(logged.iter().all(|(_, decision)| *decision == Some(Decision::Abort)), "every vote was recorded first");
}

/// A decision the log refuses (a deal it never accepted, the other outcome
/// of a decided deal) fails alone: the decisions beside it in the group stay.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_decision_in_a_group_undoes_none_of_the_others() {
    let dir = tempfile::tempdir().unwrap();
    let (service, notary, buyer, seller) = service(dir.path());
    let template = terms(&notary, &buyer, &seller);
    let deals: Vec<DealTerms> = (1..=4).map(|nonce| deal_due(&template, nonce, 60_000)).collect();
    let writer = service.shared.writer.clone();
    for deal in &deals {
        let accepted = deal.clone();
        writer.write(move |log: &mut NotaryLog| log.accept(&accepted)).await.unwrap();
    }
    let first = deals[0].id();
    writer.write(move |log: &mut NotaryLog| log.record(first, Decision::Commit, None, now_ms())).await.unwrap();

    // Held, so that the five writes wait for the writer together.
    let held = locked(&service.shared.log);
    let unknown = deal_due(&template, 99, 60_000).id();
    let writes = [
        (deals[1].id(), Decision::Commit),
        (unknown, Decision::Commit),
        (deals[2].id(), Decision::Abort),
        (first, Decision::Abort),
        (deals[3].id(), Decision::Commit),
    ]
    .map(|(deal_id, decision)| writer.submit(move |log: &mut NotaryLog| log.record(deal_id, decision, None, now_ms())));
    drop(held);
    let mut answers = Vec::new();
    for write in writes {
        answers.push(write.wait().await);
    }
    assert!(answers[0].is_ok() && answers[2].is_ok() && answers[4].is_ok(), "{answers:?}");
    assert!(matches!(answers[1], Err(StoreError::UnknownDeal(_))), "{:?}", answers[1]);
    assert!(matches!(answers[3], Err(StoreError::Contradiction { .. })), "{:?}", answers[3]);

    drop((writer, service));
    let reopened = NotaryLog::open(&dir.path().join("notary.sqlite")).unwrap();
    let decided: HashMap<DealId, Option<Decision>> =
        reopened.load().unwrap().into_iter().map(|(terms, decision)| (terms.id(), decision)).collect();
    let expected = [Decision::Commit, Decision::Commit, Decision::Abort, Decision::Commit];
    for (deal, decision) in deals.iter().zip(expected) {
        assert_eq!(decided[&deal.id()], Some(decision), "deal {}", deal.id());
    }
    assert!(!decided.contains_key(&unknown));
}
