//! Notary legs through the platform's own submitter and follower, on a real
//! regtest litecoind: a commit or abort certificate decides, and the spend
//! then takes the notaries' signatures over it, which each notary gives only
//! for the decision it recorded. Fewer than k such notaries, a certificate of
//! the other decision, or a party the script does not name, and nothing is
//! sent; the follower reads each spend back as the event it is.

mod common;

use common::{notary_deal, Chain, NETWORK};
use interlock_chain::conformance::Actor;
use interlock_chain::{ChainErrorKind, ChainEvent, Cursor, Follower, LocalNotaries, Submitter};
use interlock_core::crypto::{Certificate, Decision, NotaryKey, Token};
use interlock_core::saga::expected_request;
use interlock_core::{reservation_id, DealTerms, EscrowEvent, EscrowOp, LegKind, ReservationState};
use interlock_litecoin::notary::{notary_public_key, spend_digest};
use interlock_litecoin::regtest::READY_HEIGHT;
use interlock_litecoin::LitecoinFollower;
use std::sync::Arc;

fn notaries() -> Vec<NotaryKey> {
    [0xa1u8, 0xa2, 0xa3].iter().map(|seed| NotaryKey::from_seed([*seed; 32]).expect("a valid scalar")).collect()
}

fn notary_keys() -> Vec<[u8; 33]> {
    notaries().iter().map(notary_public_key).collect()
}

/// The deal's three notaries in this process, none of them decided yet.
fn local_notaries() -> Arc<LocalNotaries> {
    let keys = notary_keys();
    Arc::new(LocalNotaries::new(notaries(), Arc::new(move |request| spend_digest(request, &keys))))
}

struct Parties {
    buyer: Arc<dyn Submitter>,
    seller: Arc<dyn Submitter>,
}

impl Parties {
    fn of(&self, actor: Actor) -> &Arc<dyn Submitter> {
        if actor == Actor::Buyer {
            &self.buyer
        } else {
            &self.seller
        }
    }
}

async fn start(signers: &Arc<LocalNotaries>) -> (Chain, Parties) {
    let chain = Chain::start().await;
    let parties = Parties {
        buyer: chain.notary_submitter(Actor::Buyer, notary_keys(), signers.clone()),
        seller: chain.notary_submitter(Actor::Seller, notary_keys(), signers.clone()),
    };
    (chain, parties)
}

async fn deal(chain: &Chain, nonce: u64) -> DealTerms {
    let now_ms = chain.node().median_time().await.expect("the chain's time") * 1000;
    let addresses: Vec<_> = notaries().iter().map(NotaryKey::address).collect();
    notary_deal(chain, now_ms, &addresses, 2, chain.fungible(300), chain.fungible(200), nonce)
}

/// Both legs reserved by their owners, each in its own block (a block's
/// producer orders its transactions by fee rate, not as they were sent).
async fn reserve_both(chain: &mut Chain, parties: &Parties, terms: &DealTerms) {
    for (leg, owner) in [(LegKind::Payment, Actor::Buyer), (LegKind::Delivery, Actor::Seller)] {
        let op = EscrowOp::Reserve(expected_request(terms, terms.id(), leg));
        parties.of(owner).submit(terms, &op).await.unwrap_or_else(|error| panic!("reserve the {leg:?}: {error}"));
        chain.mine(1).await.expect("mine the reservation");
    }
}

/// `signers`' notaries at these positions decided `decision`: their certificate.
fn certificate(terms: &DealTerms, decision: Decision, positions: &[usize]) -> Certificate {
    let keys = notaries();
    let signatures = positions.iter().map(|at| keys[*at].sign_decision(terms.id(), decision).signature).collect();
    Certificate { deal_id: terms.id(), decision, signatures }
}

fn execute(terms: &DealTerms, leg: LegKind, certificate: Certificate) -> EscrowOp {
    EscrowOp::Execute { reservation: reservation_id(terms.id(), leg), token: Token::Certificate(certificate) }
}

fn cancel(terms: &DealTerms, leg: LegKind, certificate: Option<Certificate>) -> EscrowOp {
    EscrowOp::Cancel { reservation: reservation_id(terms.id(), leg), certificate }
}

async fn refused(submitter: &Arc<dyn Submitter>, terms: &DealTerms, op: &EscrowOp, expected: &str, what: &str) {
    match submitter.submit(terms, op).await {
        Ok(receipt) => panic!("{what} was sent ({receipt:?}); expected a refusal saying {expected:?}"),
        Err(error) => {
            assert_eq!(error.kind, ChainErrorKind::Rejected, "{what}: {error}");
            assert!(error.message.contains(expected), "{what}: {error}");
        }
    }
}

async fn state(submitter: &Arc<dyn Submitter>, terms: &DealTerms, leg: LegKind) -> Option<ReservationState> {
    submitter.leg_state(terms, leg).await.expect("the leg's state")
}

/// Every event the follower delivers for `terms` from the chain's start.
async fn events(chain: &Chain, terms: &DealTerms) -> Vec<(&'static str, LegKind)> {
    let mut follower =
        LitecoinFollower::new(NETWORK, chain.node(), 1, Cursor::start(READY_HEIGHT)).with_notary_keys(notary_keys());
    follower.watch(terms).expect("a watched notary deal");
    let mut seen = Vec::new();
    loop {
        let polled = follower.poll().await.expect("a poll");
        if polled.is_empty() {
            return seen;
        }
        for event in polled {
            let ChainEvent::Block(block) = event else { panic!("no reorganisation here") };
            for followed in block.events {
                seen.push(match followed.event {
                    EscrowEvent::Reserved(reservation) => ("reserved", reservation.leg),
                    EscrowEvent::Executed { leg, token: Token::Certificate(_), .. } => ("executed", leg),
                    EscrowEvent::Executed { leg, .. } => ("executed with a secret", leg),
                    EscrowEvent::Cancelled { leg, .. } => ("cancelled", leg),
                    EscrowEvent::Held { leg, .. } => ("held", leg),
                });
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_commit_executes_both_legs_once_k_notaries_recorded_it_and_sign_only_that() {
    let signers = local_notaries();
    let (mut chain, parties) = start(&signers).await;
    let terms = deal(&chain, 1).await;
    reserve_both(&mut chain, &parties, &terms).await;
    let commit = certificate(&terms, Decision::Commit, &[0, 1]);
    let (seller, buyer) = (&parties.seller, &parties.buyer);
    // The payment leg executed with the commit certificate.
    let pay = execute(&terms, LegKind::Payment, commit.clone());

    refused(seller, &terms, &pay, "0 distinct notaries", "no notary recorded").await;
    signers.record(terms.id(), 0, Decision::Commit);
    refused(seller, &terms, &pay, "1 distinct notaries", "k-1 recorded").await;
    signers.record(terms.id(), 1, Decision::Commit);
    let short = certificate(&terms, Decision::Commit, &[0]);
    refused(seller, &terms, &execute(&terms, LegKind::Payment, short), "needs 2", "a certificate of k-1").await;
    let abort = certificate(&terms, Decision::Abort, &[0, 1]);
    let other = execute(&terms, LegKind::Payment, abort.clone());
    refused(seller, &terms, &other, "certificate decides", "an abort certificate presented to execute").await;
    refused(buyer, &terms, &pay, "only the leg's beneficiary", "the owner").await;
    // The notaries recorded a commit: an abort certificate (were there one)
    // gets no notary's signature over the cancel.
    let cancel_payment = cancel(&terms, LegKind::Payment, Some(abort));
    refused(buyer, &terms, &cancel_payment, "0 distinct notaries", "cancel after commit").await;

    seller.submit(&terms, &pay).await.expect("the seller executes");
    chain.mine(1).await.expect("mine the execution");
    buyer.submit(&terms, &execute(&terms, LegKind::Delivery, commit)).await.expect("the buyer executes");
    chain.mine(1).await.expect("mine the execution");
    let again = seller.submit(&terms, &pay).await.expect_err("twice");
    assert_eq!(again.kind, ChainErrorKind::AlreadyDone, "{again}");
    for leg in [LegKind::Payment, LegKind::Delivery] {
        assert_eq!(state(seller, &terms, leg).await, Some(ReservationState::Executed), "{leg:?}");
    }
    assert_eq!(
        events(&chain, &terms).await,
        [
            ("reserved", LegKind::Payment),
            ("reserved", LegKind::Delivery),
            ("executed", LegKind::Payment),
            ("executed", LegKind::Delivery)
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_abort_returns_each_leg_to_its_owner_and_the_backstop_lets_the_owner_alone_refund() {
    let signers = local_notaries();
    let (mut chain, parties) = start(&signers).await;
    let (buyer, seller) = (&parties.buyer, &parties.seller);

    let aborted = deal(&chain, 2).await;
    reserve_both(&mut chain, &parties, &aborted).await;
    let before = chain.holding(Actor::Buyer).await.expect("the buyer's coins");
    for position in [1, 2] {
        signers.record(aborted.id(), position, Decision::Abort);
    }
    let abort = certificate(&aborted, Decision::Abort, &[1, 2]);
    let by_beneficiary = cancel(&aborted, LegKind::Payment, Some(abort.clone()));
    refused(seller, &aborted, &by_beneficiary, "only the leg's owner", "the beneficiary cancelling").await;
    buyer.submit(&aborted, &cancel(&aborted, LegKind::Payment, Some(abort.clone()))).await.expect("buyer cancels");
    seller.submit(&aborted, &cancel(&aborted, LegKind::Delivery, Some(abort))).await.expect("seller cancels");
    let after = chain.holding(Actor::Buyer).await.expect("the buyer's coins");
    assert_eq!(after, before + 300 * common::UNIT, "the payment went back to the buyer");
    for leg in [LegKind::Payment, LegKind::Delivery] {
        assert_eq!(state(buyer, &aborted, leg).await, Some(ReservationState::Cancelled), "{leg:?}");
    }

    // Nobody decides: only the backstop returns the legs, to their owners.
    let undecided = deal(&chain, 3).await;
    reserve_both(&mut chain, &parties, &undecided).await;
    let refund = cancel(&undecided, LegKind::Payment, None);
    refused(buyer, &undecided, &refund, "not yet refundable", "a refund before the backstop").await;
    chain.advance(7_300_000).await.expect("past the backstop");
    refused(seller, &undecided, &refund, "only the leg's owner", "the beneficiary's refund").await;
    let commit = certificate(&undecided, Decision::Commit, &[0, 1]);
    let late = execute(&undecided, LegKind::Payment, commit);
    refused(seller, &undecided, &late, "backstop passed", "an execution after the backstop").await;
    buyer.submit(&undecided, &refund).await.expect("the buyer refunds after the backstop");
    chain.mine(1).await.expect("mine the refund");
    assert_eq!(state(buyer, &undecided, LegKind::Payment).await, Some(ReservationState::Cancelled));
    assert_eq!(state(buyer, &undecided, LegKind::Delivery).await, Some(ReservationState::Reserved));
    let seen = events(&chain, &undecided).await;
    assert_eq!(seen.last(), Some(&("cancelled", LegKind::Payment)), "{seen:?}");
}
