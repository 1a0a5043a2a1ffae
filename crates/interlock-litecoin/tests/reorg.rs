//! A reorganisation on a real regtest chain (`invalidateblock`): a follower
//! one block deep delivers a claim, the block goes, and the follower rolls
//! back to the fork and delivers the claim again from the new chain; a
//! follower two blocks deep never delivered the block that went. The deal
//! still settles: both legs end executed and the balances are the deal's.

mod common;

use common::{Chain, NETWORK};
use interlock_chain::conformance::Actor;
use interlock_chain::{ChainEvent, Cursor, Follower};
use interlock_core::crypto::{Secret, Token};
use interlock_core::escrow::ReservationState;
use interlock_core::saga::expected_request;
use interlock_core::{reservation_id, EscrowEvent, EscrowOp, LegKind};
use interlock_litecoin::regtest::READY_HEIGHT;
use interlock_litecoin::LitecoinFollower;

/// Everything `follower` reports now, as (rolled back to, events by kind and leg).
async fn drain(follower: &mut LitecoinFollower) -> (Option<Cursor>, Vec<(&'static str, LegKind, Option<Secret>)>) {
    let mut rolled_back = None;
    let mut events = Vec::new();
    for event in follower.poll().await.expect("poll") {
        match event {
            ChainEvent::RolledBack { to } => rolled_back = Some(to),
            ChainEvent::Block(block) => {
                for followed in block.events {
                    events.push(match followed.event {
                        EscrowEvent::Reserved(reservation) => ("reserved", reservation.leg, None),
                        EscrowEvent::Executed { leg, token: Token::Secret(secret), .. } => {
                            ("executed", leg, Some(secret))
                        }
                        EscrowEvent::Executed { leg, .. } => ("executed", leg, None),
                        EscrowEvent::Cancelled { leg, .. } => ("cancelled", leg, None),
                        EscrowEvent::Held { leg, .. } => ("held", leg, None),
                    });
                }
            }
        }
    }
    (rolled_back, events)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reorganisation_rolls_the_follower_back_and_the_deal_still_settles() {
    let mut chain = Chain::start().await;
    let now_ms = chain.node.median_time().await.expect("time") * 1000;
    let secret = Secret([0x5e; 32]);
    let terms = common::hashlock_deal(&chain, now_ms, &secret, chain.fungible(300), chain.fungible(200), 7);
    let deal_id = terms.id();
    let buyer_before = chain.holding(Actor::Buyer).await.expect("balance");
    let seller_before = chain.holding(Actor::Seller).await.expect("balance");

    let mut shallow = LitecoinFollower::new(NETWORK, chain.node(), 1, Cursor::start(READY_HEIGHT));
    let mut deep = LitecoinFollower::new(NETWORK, chain.node(), 2, Cursor::start(READY_HEIGHT));
    for follower in [&mut shallow, &mut deep] {
        follower.watch(&terms).expect("watch");
    }
    let (buyer, seller) = (chain.submitter(Actor::Buyer), chain.submitter(Actor::Seller));
    for (submitter, leg) in [(&buyer, LegKind::Payment), (&seller, LegKind::Delivery)] {
        let reserve = EscrowOp::Reserve(expected_request(&terms, deal_id, leg));
        submitter.submit(&terms, &reserve).await.expect("reserve");
    }
    chain.mine(2).await.expect("mine");
    let (_, reserved) = drain(&mut shallow).await;
    assert_eq!(reserved.len(), 2, "both reservations: {reserved:?}");
    drain(&mut deep).await;

    // The buyer claims the delivery; the block with the claim is mined.
    let claim =
        EscrowOp::Execute { reservation: reservation_id(deal_id, LegKind::Delivery), token: Token::Secret(secret) };
    buyer.submit(&terms, &claim).await.expect("claim the delivery");
    chain.mine(1).await.expect("mine the claim");
    let claim_height = chain.node.height().await.expect("height");
    let (_, claimed) = drain(&mut shallow).await;
    assert_eq!(claimed, vec![("executed", LegKind::Delivery, Some(secret))]);
    let (_, nothing) = drain(&mut deep).await;
    assert!(nothing.is_empty(), "two blocks deep, the claim is not final yet: {nothing:?}");

    // The claim's block goes: its transaction returns to the mempool.
    chain.node.invalidate_from(claim_height).await.expect("invalidateblock");
    let (rolled_back, again) = drain(&mut shallow).await;
    let to = rolled_back.expect("the shallow follower rolls back");
    assert_eq!(to.height, claim_height - 1, "back to the block before the claim's");
    assert!(again.is_empty(), "{again:?}");
    assert_eq!(
        seller.leg_state(&terms, LegKind::Delivery).await.expect("leg state"),
        Some(ReservationState::Executed),
        "the claim waits in the mempool"
    );

    // The new chain mines the claim again; both followers report it once.
    chain.mine(2).await.expect("mine the new chain");
    let (rolled_back, redone) = drain(&mut shallow).await;
    assert_eq!(rolled_back, None);
    assert_eq!(redone, vec![("executed", LegKind::Delivery, Some(secret))]);
    let (rolled_back, deep_events) = drain(&mut deep).await;
    assert_eq!(rolled_back, None, "the deep follower never delivered the block that went");
    assert_eq!(deep_events, vec![("executed", LegKind::Delivery, Some(secret))]);

    // The seller takes the payment with the secret the chain revealed.
    let take =
        EscrowOp::Execute { reservation: reservation_id(deal_id, LegKind::Payment), token: Token::Secret(secret) };
    seller.submit(&terms, &take).await.expect("claim the payment");
    chain.mine(2).await.expect("mine");
    let (_, paid) = drain(&mut deep).await;
    assert_eq!(paid, vec![("executed", LegKind::Payment, Some(secret))]);
    let unit = common::UNIT;
    assert_eq!(chain.holding(Actor::Buyer).await.expect("balance"), buyer_before - 300 * unit + 200 * unit);
    assert_eq!(chain.holding(Actor::Seller).await.expect("balance"), seller_before + 300 * unit - 200 * unit);
}
