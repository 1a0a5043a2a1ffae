//! Inspection periods on the real ledgers, through three notaries (2 of 3):
//! a commit holds both legs; an undisputed window ends in a release that pays
//! both beneficiaries; a dispute inside the window, raised by the buyer,
//! waits for the notaries' operators, whose reverse returns both assets (the
//! balances equal to before the deal); a dispute by the wrong party, forged,
//! or after the window, a decision from anyone but the notary's own operator,
//! and a verdict with too few signatures are refused and change nothing; a
//! restarted notary keeps the dispute it recorded; a dispute told to one
//! notary reaches the others.

use super::{certificate, endpoint, vote, Cluster, ALPHA, BETA};
use interlock_core::crypto::{Certificate, PartyKey, Token};
use interlock_core::saga::expected_request;
use interlock_core::verdict::Dispute;
use interlock_core::{
    reservation_id, DealId, DealTerms, Decision, Disputer, EscrowOp, Inspection, LegKind, NetworkId, Settlement,
};
use interlock_gateway::testkit::{now_ms, signed_deal};
use interlock_ledger::{Op, Transaction};
use interlock_proto::v1;
use interlock_proto::v1::notary_client::NotaryClient;
use std::collections::HashMap;
use std::time::Duration;
use tonic::transport::Channel;
use tonic::Code;

const WINDOW_MS: u64 = 3_000;

/// Transactions with each signer's next nonce on each network.
#[derive(Default)]
struct Nonces(HashMap<(interlock_core::PartyId, NetworkId), u64>);

impl Nonces {
    /// The operator's five setup transactions counted: it registered and
    /// funded both parties and registered the gateway on each network.
    fn after_setup(cluster: &Cluster) -> Nonces {
        let mut nonces = Nonces::default();
        for network in [ALPHA, BETA] {
            nonces.0.insert((cluster.operator.public(), network), 5);
        }
        nonces
    }

    async fn send(
        &mut self,
        cluster: &Cluster,
        key: &PartyKey,
        network: NetworkId,
        op: EscrowOp,
    ) -> Result<u64, tonic::Status> {
        let nonce = self.0.entry((key.public(), network)).or_insert(0);
        *nonce += 1;
        let sent = cluster.submit(network, Transaction::sign(key, network, *nonce, Op::Escrow(op))).await;
        if sent.is_err() {
            // Refused: the ledger never took the nonce.
            *nonce -= 1;
        }
        sent
    }
}

async fn usd(cluster: &Cluster, network: NetworkId, key: &PartyKey) -> u128 {
    let request = v1::GetAccountRequest { account: key.public().0.to_vec() };
    let account = cluster.ledger(network).get_account(request).await.unwrap().into_inner();
    account.balances.iter().find(|b| b.asset == "USD").map_or(0, |b| b.amount.parse().unwrap())
}

async fn state(cluster: &Cluster, network: NetworkId, deal_id: DealId, leg: LegKind) -> String {
    let request = v1::GetReservationRequest { reservation_id: reservation_id(deal_id, leg).0 .0.to_vec() };
    cluster.ledger(network).get_reservation(request).await.unwrap().into_inner().state
}

fn inspected(cluster: &Cluster, nonce: u64) -> DealTerms {
    let mut terms = cluster.terms(nonce, now_ms() + 8_000);
    terms.policy.inspection = Some(Inspection { window_ms: WINDOW_MS, disputer: Disputer::Buyer });
    terms
}

/// A deal whose window outlasts the test: nothing is released meanwhile.
fn inspected_long(cluster: &Cluster, nonce: u64) -> DealTerms {
    let mut terms = inspected(cluster, nonce);
    terms.policy.inspection = Some(Inspection { window_ms: 600_000, disputer: Disputer::Buyer });
    terms
}

fn dispute(key: &PartyKey, deal_id: DealId, reason: &str) -> v1::RaiseDisputeRequest {
    let signed = Dispute::sign(key, deal_id, reason);
    v1::RaiseDisputeRequest {
        deal_id: deal_id.0 .0.to_vec(),
        party: signed.by.0.to_vec(),
        reason: signed.reason,
        signature: signed.signature.0.to_vec(),
    }
}

fn deal_ref(deal_id: DealId) -> v1::GetVoteRequest {
    v1::GetVoteRequest { deal_id: deal_id.0 .0.to_vec() }
}

/// A client of notary `index` at `address` with the notary's own
/// certificate: its operator.
fn operator(cluster: &Cluster, index: usize, address: std::net::SocketAddr) -> NotaryClient<Channel> {
    let name = format!("n{}", index + 1);
    NotaryClient::new(endpoint(&cluster.networks.tls, &name, address).connect_lazy())
}

/// An operator's `decision` ("release" or "reverse") on the disputed deal.
fn decision(deal_id: DealId, decision: &str) -> v1::DecideDisputeRequest {
    v1::DecideDisputeRequest { deal_id: deal_id.0 .0.to_vec(), decision: decision.into() }
}

/// Polls a notary until it has signed a verdict.
async fn verdict(notary: &mut NotaryClient<Channel>, deal_id: DealId) -> v1::NotaryVote {
    for _ in 0..400 {
        if let Ok(vote) = notary.get_verdict(deal_ref(deal_id)).await {
            return vote.into_inner();
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("no verdict on {deal_id} within 20 s");
}

fn check<T: std::fmt::Debug>(what: &str, result: Result<T, tonic::Status>, code: Code, text: &str) {
    let status = result.expect_err(what);
    assert_eq!(status.code(), code, "{what}: {status:?}");
    assert!(status.message().contains(text), "{what}: {}", status.message());
}

/// Asserts that `notary` refuses a verdict on `deal_id`, as disputed.
async fn no_verdict_while_disputed(what: &str, notary: &mut NotaryClient<Channel>, deal_id: DealId) {
    check(what, notary.get_verdict(deal_ref(deal_id)).await, Code::FailedPrecondition, "disputed");
}

/// Presents `verdict` on both legs, as a stranger to the deal would: anyone may.
async fn resolve(
    cluster: &Cluster,
    nonces: &mut Nonces,
    deal_id: DealId,
    verdict: &Certificate,
) -> Result<(), tonic::Status> {
    for (leg, network, presenter) in
        [(LegKind::Payment, ALPHA, &cluster.operator), (LegKind::Delivery, BETA, &cluster.operator)]
    {
        let op = EscrowOp::Resolve { reservation: reservation_id(deal_id, leg), verdict: verdict.clone() };
        nonces.send(cluster, presenter, network, op).await?;
    }
    Ok(())
}

/// The three notaries started, with their addresses, and the signers' nonces.
async fn started(cluster: &Cluster) -> (Vec<NotaryClient<Channel>>, Vec<std::net::SocketAddr>, Nonces) {
    let (mut notaries, mut addresses) = (Vec::new(), Vec::new());
    for index in 0..3 {
        let (client, address) = cluster.notary_at(index).await;
        notaries.push(client);
        addresses.push(address);
    }
    (notaries, addresses, Nonces::after_setup(cluster))
}

/// Reserves both legs (first: a notary given the deal then finds them and
/// commits at once, where an undecided submission waits up to two seconds),
/// gives the deal to every notary, and has each beneficiary execute with the
/// commit certificate: both legs are held, not paid.
async fn hold(cluster: &Cluster, notaries: &mut [NotaryClient<Channel>], nonces: &mut Nonces, terms: &DealTerms) {
    let deal_id = terms.id();
    for (leg, network, key) in [(LegKind::Payment, ALPHA, &cluster.buyer), (LegKind::Delivery, BETA, &cluster.seller)] {
        nonces.send(cluster, key, network, EscrowOp::Reserve(expected_request(terms, deal_id, leg))).await.unwrap();
    }
    for notary in notaries.iter_mut() {
        notary.submit_deal(cluster.submission(terms)).await.unwrap();
    }
    let votes = [vote(&mut notaries[0], deal_id).await, vote(&mut notaries[1], deal_id).await];
    assert!(votes.iter().all(|vote| vote.decision == "commit"), "{votes:?}");
    let commit = certificate(deal_id, Decision::Commit, &votes);
    for (leg, network, beneficiary) in
        [(LegKind::Payment, ALPHA, &cluster.seller), (LegKind::Delivery, BETA, &cluster.buyer)]
    {
        let op =
            EscrowOp::Execute { reservation: reservation_id(deal_id, leg), token: Token::Certificate(commit.clone()) };
        nonces.send(cluster, beneficiary, network, op).await.unwrap();
        assert_eq!(state(cluster, network, deal_id, leg).await, "held");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn held_legs_are_released_after_the_window_or_reversed_on_a_dispute() {
    let cluster = Cluster::start().await;
    let (mut notaries, addresses, mut nonces) = started(&cluster).await;
    let before = [usd(&cluster, ALPHA, &cluster.buyer).await, usd(&cluster, BETA, &cluster.seller).await];
    let (released, reversed) = (inspected(&cluster, 31), inspected(&cluster, 32));
    for terms in [&released, &reversed] {
        hold(&cluster, &mut notaries, &mut nonces, terms).await;
        let deal_id = terms.id();
        let status = notaries[0].get_inspection(deal_ref(deal_id)).await.unwrap().into_inner();
        assert_eq!(status.state, "open");
        assert_eq!(status.ends_ms, terms.inspection_ends_ms().unwrap());
    }
    assert_eq!(usd(&cluster, ALPHA, &cluster.seller).await, 1_000, "the payment is held, not paid");
    assert_eq!(usd(&cluster, ALPHA, &cluster.buyer).await, before[0] - 60);

    // The buyer disputes the second deal at every notary, inside the window.
    let (release_id, reverse_id) = (released.id(), reversed.id());
    for notary in &mut notaries {
        let status =
            notary.raise_dispute(dispute(&cluster.buyer, reverse_id, "the goods never arrived")).await.unwrap();
        assert_eq!(
            (status.get_ref().state.as_str(), status.get_ref().reason.as_str()),
            ("disputed", "the goods never arrived")
        );
    }
    // The seller may not dispute (the policy names the buyer), a forged
    // dispute does not verify, and a party cannot decide for the notary.
    check(
        "the seller disputing",
        notaries[0].raise_dispute(dispute(&cluster.seller, release_id, "no")).await,
        Code::PermissionDenied,
        "may not dispute",
    );
    let mut forged = dispute(&cluster.seller, release_id, "forged");
    forged.party = cluster.buyer.public().0.to_vec();
    check("a forged dispute", notaries[0].raise_dispute(forged).await, Code::Unauthenticated, "signature");
    check(
        "a party deciding",
        notaries[0].decide_dispute(decision(reverse_id, "reverse")).await,
        Code::PermissionDenied,
        "for notaries only",
    );
    check(
        "a verdict too soon",
        notaries[0].get_verdict(deal_ref(release_id)).await,
        Code::FailedPrecondition,
        "no verdict here yet",
    );

    // The undisputed window closes: k notaries sign a release, which pays both beneficiaries.
    let votes = [verdict(&mut notaries[0], release_id).await, verdict(&mut notaries[2], release_id).await];
    assert!(votes.iter().all(|vote| vote.decision == "release"), "{votes:?}");
    let release = certificate(release_id, Decision::Release, &votes);
    // One signature is not k: refused by the ledger, nothing moves.
    let lone = Certificate { signatures: release.signatures[..1].to_vec(), ..release.clone() };
    check(
        "a verdict with one signature",
        resolve(&cluster, &mut nonces, release_id, &lone).await,
        Code::PermissionDenied,
        "valid notary signatures",
    );
    assert_eq!(state(&cluster, ALPHA, release_id, LegKind::Payment).await, "held");
    resolve(&cluster, &mut nonces, release_id, &release).await.unwrap();
    assert_eq!(usd(&cluster, ALPHA, &cluster.seller).await, 1_030, "the seller is paid");
    assert_eq!(usd(&cluster, BETA, &cluster.buyer).await, 1_020, "the buyer has the delivery");
    // After the window, a dispute is refused and changes nothing.
    check(
        "a late dispute",
        notaries[1].raise_dispute(dispute(&cluster.buyer, release_id, "late")).await,
        Code::FailedPrecondition,
        "",
    );
    assert_eq!(notaries[1].get_inspection(deal_ref(release_id)).await.unwrap().into_inner().state, "release");

    // The disputed deal is not released when its window closes.
    tokio::time::sleep(Duration::from_millis(300)).await;
    no_verdict_while_disputed("a disputed verdict", &mut notaries[2], reverse_id).await;
    // A notary restarted now still holds the dispute it recorded.
    let (mut restarted, restarted_at) = cluster.notary_at(2).await;
    let status = restarted.get_inspection(deal_ref(reverse_id)).await.unwrap().into_inner();
    assert_eq!(status.state, "disputed");
    // Each notary's operator, with the notary's own certificate, decides: reverse.
    for (index, address) in [(0, addresses[0]), (2, restarted_at)] {
        let mut own = operator(&cluster, index, address);
        let decided = own.decide_dispute(decision(reverse_id, "reverse")).await.unwrap().into_inner();
        assert_eq!(decided.state, "reverse");
        check(
            "a second decision",
            own.decide_dispute(decision(reverse_id, "release")).await,
            Code::FailedPrecondition,
            "already reverse",
        );
    }
    let votes = [verdict(&mut notaries[0], reverse_id).await, verdict(&mut restarted, reverse_id).await];
    let reverse = certificate(reverse_id, Decision::Reverse, &votes);
    resolve(&cluster, &mut nonces, reverse_id, &reverse).await.unwrap();
    for (leg, network) in [(LegKind::Payment, ALPHA), (LegKind::Delivery, BETA)] {
        assert_eq!(state(&cluster, network, reverse_id, leg).await, "cancelled");
    }
    // Both assets are back: each party holds what it held before this deal
    // (the first deal's 30 and 20 moved for good).
    assert_eq!(usd(&cluster, ALPHA, &cluster.buyer).await, before[0] - 30);
    assert_eq!(usd(&cluster, BETA, &cluster.seller).await, before[1] - 20);
    // A verdict is final: the release certificate cannot undo the reverse.
    check(
        "a verdict after the verdict",
        resolve(&cluster, &mut nonces, release_id, &release).await,
        Code::AlreadyExists,
        "not held",
    );
}

/// A deal both gateways registered: its legs are held on commit, and once the
/// window closes undisputed each gateway's keeper collects the notaries'
/// release votes and presents the certificate on its network, nobody asking.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_keepers_release_held_legs_when_the_window_closes() {
    let cluster = Cluster::start().await;
    let (mut notaries, _, mut nonces) = started(&cluster).await;
    let terms = inspected(&cluster, 41);
    let deal_id = terms.id();
    let mut gateway = v1::gateway_client::GatewayClient::new(
        endpoint(&cluster.networks.tls, "buyer", cluster.networks.gateways[&ALPHA]).connect_lazy(),
    );
    let signed = signed_deal(&terms, &cluster.buyer, &cluster.seller);
    gateway.register_deal(signed).await.expect("the ledgers hold legs for inspection");
    hold(&cluster, &mut notaries, &mut nonces, &terms).await;
    let seller_before = usd(&cluster, ALPHA, &cluster.seller).await;
    let buyer_before = usd(&cluster, BETA, &cluster.buyer).await;

    // Nobody presents anything: the keepers do, once k notaries released.
    for _ in 0..400 {
        let payment = state(&cluster, ALPHA, deal_id, LegKind::Payment).await;
        let delivery = state(&cluster, BETA, deal_id, LegKind::Delivery).await;
        if payment == "executed" && delivery == "executed" {
            break;
        }
        assert!(now_ms() < terms.inspection_ends_ms().unwrap() + 15_000, "not released: {payment}, {delivery}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(now_ms() >= terms.inspection_ends_ms().unwrap(), "released before the window closed");
    assert_eq!(usd(&cluster, ALPHA, &cluster.seller).await, seller_before + 30);
    assert_eq!(usd(&cluster, BETA, &cluster.buyer).await, buyer_before + 20);
}

/// A dispute freezes the deal past its window; the operators may still decide
/// release, and the release pays both beneficiaries.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_disputed_deal_is_released_when_the_operators_decide_so() {
    let cluster = Cluster::start().await;
    let (mut notaries, addresses, mut nonces) = started(&cluster).await;
    let terms = inspected(&cluster, 51);
    let deal_id = terms.id();
    hold(&cluster, &mut notaries, &mut nonces, &terms).await;
    let (seller_before, buyer_before) =
        (usd(&cluster, ALPHA, &cluster.seller).await, usd(&cluster, BETA, &cluster.buyer).await);
    for notary in &mut notaries {
        notary.raise_dispute(dispute(&cluster.buyer, deal_id, "late paperwork")).await.unwrap();
    }
    // Past the window, still nothing: the dispute waits for the operators.
    while now_ms() < terms.inspection_ends_ms().unwrap() + 300 {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    no_verdict_while_disputed("a disputed deal's verdict", &mut notaries[1], deal_id).await;
    assert_eq!(state(&cluster, ALPHA, deal_id, LegKind::Payment).await, "held");
    for index in [1, 2] {
        let mut own = operator(&cluster, index, addresses[index]);
        assert_eq!(own.decide_dispute(decision(deal_id, "release")).await.unwrap().into_inner().state, "release");
    }
    let votes = [verdict(&mut notaries[1], deal_id).await, verdict(&mut notaries[2], deal_id).await];
    resolve(&cluster, &mut nonces, deal_id, &certificate(deal_id, Decision::Release, &votes)).await.unwrap();
    assert_eq!(usd(&cluster, ALPHA, &cluster.seller).await, seller_before + 30);
    assert_eq!(usd(&cluster, BETA, &cluster.buyer).await, buyer_before + 20);
}

/// A notary given the deal only after its deadline aborts it, yet the others
/// committed: once it sees the legs held with their commit certificate it
/// takes part in the verdict, so a dispute seen by some notaries and not by
/// others can never leave too few to decide.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_notary_that_aborted_joins_the_verdict_once_it_sees_the_legs_held() {
    let cluster = Cluster::start().await;
    let terms = inspected(&cluster, 61);
    let deal_id = terms.id();
    let mut late = held_then_late(&cluster, &terms).await;
    // It has no window until it sees the legs held; then it releases with the others.
    let release = verdict(&mut late, deal_id).await;
    assert_eq!(release.decision, "release");
    assert_eq!(late.get_inspection(deal_ref(deal_id)).await.unwrap().into_inner().state, "release");
    // Restarted, it still holds the verdict of the window it joined.
    let mut restarted = cluster.notary(2).await;
    assert_eq!(verdict(&mut restarted, deal_id).await.signature, release.signature);
}

/// A notary that joined a window and recorded nothing yet (no dispute, no
/// verdict) still has it after a restart, though its streams resume past the
/// block that showed the legs held: the join is in its log.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_notary_keeps_the_window_it_joined_across_a_restart() {
    let cluster = Cluster::start().await;
    let terms = inspected_long(&cluster, 71);
    let deal_id = terms.id();
    let mut late = held_then_late(&cluster, &terms).await;
    let mut state = String::new();
    for _ in 0..100 {
        state = late.get_inspection(deal_ref(deal_id)).await.map(|s| s.into_inner().state).unwrap_or_default();
        if state == "open" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(state, "open", "the late notary joined the window once it saw the legs held");
    // Its streams save their cursors past the held block meanwhile.
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    let mut restarted = cluster.notary(2).await;
    let status = restarted.get_inspection(deal_ref(deal_id)).await.map(|s| s.into_inner());
    assert_eq!(status.map(|s| s.state).ok().as_deref(), Some("open"), "restarted, it has the window it joined");
}

/// The buyer reaches one notary only: it passes the dispute on to the other
/// two, including one not even running yet, which gets it once it runs and
/// has joined the window. So no two notaries can release the deal unaware of
/// the dispute when its window closes, however few the party reached.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dispute_told_to_one_notary_reaches_the_others() {
    let cluster = Cluster::start().await;
    let terms = inspected_long(&cluster, 81);
    let deal_id = terms.id();
    let mut notaries = two_holding(&cluster, &terms).await;
    notaries[0].raise_dispute(dispute(&cluster.buyer, deal_id, "the seal was broken")).await.unwrap();
    assert_eq!(disputed(&mut notaries[1], deal_id).await, "the seal was broken", "n2 heard it from n1");

    // n3 starts only after the decision deadline: it aborts the deal, joins
    // the window when it sees the legs held, and the retries reach it then.
    let mut late = late_notary(&cluster, &terms).await;
    assert_eq!(disputed(&mut late, deal_id).await, "the seal was broken", "n3 heard it once it ran");
}

/// A notary that recorded a dispute and could not pass it on (here: started
/// knowing no peers) passes it on once restarted, from its log: the other
/// notary, which the buyer never reached, then holds it too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_notary_passes_on_the_disputes_it_recorded() {
    let cluster = Cluster::start().await;
    let terms = inspected_long(&cluster, 91);
    let deal_id = terms.id();
    let mut notaries = vec![cluster.start_notary(0, false).await.0, cluster.notary(1).await];
    let mut nonces = Nonces::after_setup(&cluster);
    hold(&cluster, &mut notaries, &mut nonces, &terms).await;
    notaries[0].raise_dispute(dispute(&cluster.buyer, deal_id, "wrong serial numbers")).await.unwrap();
    tokio::time::sleep(Duration::from_millis(1_000)).await;
    let state = notaries[1].get_inspection(deal_ref(deal_id)).await.unwrap().into_inner().state;
    assert_eq!(state, "open", "n1 knew no peers: n2 has not heard of the dispute");
    // n1 again, on the same log: it passes on what it recorded.
    let _restarted = cluster.notary(0).await;
    assert_eq!(disputed(&mut notaries[1], deal_id).await, "wrong serial numbers", "n2 heard it from n1 restarted");
}

/// Polls a notary until its window of `deal_id` is disputed; the reason.
async fn disputed(notary: &mut NotaryClient<Channel>, deal_id: DealId) -> String {
    let mut last = String::new();
    for _ in 0..400 {
        match notary.get_inspection(deal_ref(deal_id)).await {
            Ok(status) if status.get_ref().state == "disputed" => return status.into_inner().reason,
            Ok(status) => last = status.into_inner().state,
            Err(status) => last = status.message().to_owned(),
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{deal_id} not disputed within 20 s: {last}");
}

/// n1 and n2 started, and the legs of `terms` held on their commit.
async fn two_holding(cluster: &Cluster, terms: &DealTerms) -> Vec<NotaryClient<Channel>> {
    let mut notaries = vec![cluster.notary(0).await, cluster.notary(1).await];
    hold(cluster, &mut notaries, &mut Nonces::after_setup(cluster), terms).await;
    notaries
}

/// Two notaries commit `terms` and its legs are held; the third is given the
/// deal only after its decision deadline, aborts it, and is returned.
async fn held_then_late(cluster: &Cluster, terms: &DealTerms) -> NotaryClient<Channel> {
    two_holding(cluster, terms).await;
    late_notary(cluster, terms).await
}

/// n3, started only after the decision deadline of `terms` and given the
/// deal then: it aborts it.
async fn late_notary(cluster: &Cluster, terms: &DealTerms) -> NotaryClient<Channel> {
    let Settlement::Notary { decision_deadline_ms, .. } = terms.settlement else { unreachable!() };
    while now_ms() <= decision_deadline_ms {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let mut late = cluster.notary(2).await;
    let answer = late.submit_deal(cluster.submission(terms)).await.unwrap().into_inner();
    assert_eq!(answer.vote.map(|vote| vote.decision).as_deref(), Some("abort"), "its deadline had passed");
    late
}
