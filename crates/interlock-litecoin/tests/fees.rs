//! Dust and fee bumping on a real regtest litecoind: a leg too small to be
//! worth spending is refused before the deal is signed (`check_leg`, asking
//! the node's own dust rule) and again when it is reserved, and a claim
//! that waits unconfirmed gets a child paying for it (litecoind takes no
//! replacements by default) when it is submitted again.

mod common;

use common::{Chain, UNIT};
use interlock_chain::conformance::Actor;
use interlock_chain::ChainErrorKind;
use interlock_core::crypto::{Secret, Token};
use interlock_core::escrow::ReservationState;
use interlock_core::saga::expected_request;
use interlock_core::{reservation_id, Asset, EscrowOp, LegKind};
use serde_json::json;

async fn mempool(chain: &Chain) -> Vec<String> {
    chain.node.rpc().call("getrawmempool", json!([])).await.expect("getrawmempool")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dust_is_refused_and_a_waiting_claim_gets_a_child_that_pays_for_it() {
    let mut chain = Chain::start().await;
    let now_ms = chain.node.median_time().await.expect("time") * 1000;
    let secret = Secret([0x77; 32]);
    let (buyer, seller) = (chain.submitter(Actor::Buyer), chain.submitter(Actor::Seller));

    // 100 litoshis in a P2WSH output is dust to litecoind: refused, nothing sent.
    let dust = Asset::Fungible { code: common::ltc(), amount: 100 };
    let tiny = common::hashlock_deal(&chain, now_ms, &secret, dust, chain.fungible(1), 1);
    let before = chain.holding(Actor::Buyer).await.expect("balance");
    let reserve = EscrowOp::Reserve(expected_request(&tiny, tiny.id(), LegKind::Payment));
    let refused = buyer.submit(&tiny, &reserve).await.expect_err("a dust reservation");
    assert_eq!(refused.kind, ChainErrorKind::Rejected, "{refused}");
    assert!(refused.message.contains("dust"), "{refused}");
    assert!(mempool(&chain).await.is_empty(), "nothing was sent");
    assert_eq!(chain.holding(Actor::Buyer).await.expect("balance"), before);

    // A deal whose delivery claim the miner leaves out.
    let terms = common::hashlock_deal(&chain, now_ms, &secret, chain.fungible(300), chain.fungible(200), 2);
    let deal_id = terms.id();
    let buyer_before = chain.holding(Actor::Buyer).await.expect("balance");
    for (submitter, leg) in [(&buyer, LegKind::Payment), (&seller, LegKind::Delivery)] {
        let reserve = EscrowOp::Reserve(expected_request(&terms, deal_id, leg));
        submitter.submit(&terms, &reserve).await.expect("reserve");
    }
    chain.mine(1).await.expect("mine the reservations");
    let claim =
        EscrowOp::Execute { reservation: reservation_id(deal_id, LegKind::Delivery), token: Token::Secret(secret) };
    let first = buyer.submit(&terms, &claim).await.expect("claim").transaction;
    let again = buyer.submit(&terms, &claim).await.expect_err("a claim sent a moment ago is not replaced");
    assert_eq!(again.kind, ChainErrorKind::AlreadyDone, "{again}");
    // The miner ignores it, as if it paid nothing: its fee counts as zero.
    let first_hex = first.to_hex();
    let rpc = chain.node.rpc().clone();
    let entry: serde_json::Value = rpc.call("getmempoolentry", json!([first_hex])).await.expect("entry");
    let fee = (entry["fees"]["base"].as_f64().expect("a fee") * 1e8).round() as i64;
    rpc.call_value("prioritisetransaction", json!([first_hex, 0, -fee])).await.expect("deprioritise");
    chain.mine(2).await.expect("mine without the claim");
    assert_eq!(mempool(&chain).await, vec![first_hex.clone()], "the claim still waits");

    let bumped = buyer.submit(&terms, &claim).await.expect("the waiting claim is bumped").transaction;
    assert_eq!(bumped, first, "the operation is still the claim");
    let waiting = mempool(&chain).await;
    assert_eq!(waiting.len(), 2, "the claim and a child paying for it: {waiting:?}");
    let child = waiting.iter().find(|txid| **txid != first_hex).expect("a child").clone();
    let package: serde_json::Value = rpc.call("getmempoolentry", json!([child])).await.expect("entry");
    assert_eq!(package["depends"], json!([first_hex]), "the child spends the claim: {package}");
    chain.mine(1).await.expect("mine the package");
    assert!(mempool(&chain).await.is_empty(), "the child's fee took the claim into the block");
    let state = seller.leg_state(&terms, LegKind::Delivery).await.expect("leg state");
    assert_eq!(state, Some(ReservationState::Executed));
    // The buyer's holding, the claim's and the child's fees counted back in,
    // is the deal's outcome so far exactly.
    let unit = UNIT;
    assert_eq!(chain.holding(Actor::Buyer).await.expect("balance"), buyer_before - 300 * unit + 200 * unit);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leg_the_node_calls_dust_or_that_cannot_pay_its_spend_is_refused_before_the_deal_is_signed() {
    let chain = Chain::start().await;
    let now_ms = chain.node.median_time().await.expect("time") * 1000;
    let secret = Secret([0x78; 32]);
    let buyer = chain.submitter(Actor::Buyer);
    let litoshis = |amount| Asset::Fungible { code: common::ltc(), amount };
    let check = |amount: u128, nonce: u64| {
        let terms = common::hashlock_deal(&chain, now_ms, &secret, litoshis(amount), chain.fungible(1), nonce);
        let buyer = buyer.clone();
        async move { buyer.check_leg(&terms, LegKind::Payment).await }
    };
    let dust = check(100, 1).await.expect_err("100 litoshis");
    assert_eq!(dust.kind, ChainErrorKind::Rejected, "{dust}");
    assert!(dust.message.contains("dust"), "{dust}");
    // Above the node's dust limit, but its claim's fee would leave the
    // seller too little to keep.
    let unclaimable = check(1_100, 2).await.expect_err("1,100 litoshis");
    assert_eq!(unclaimable.kind, ChainErrorKind::Rejected, "{unclaimable}");
    assert!(unclaimable.message.contains("cannot be claimed") || unclaimable.message.contains("dust"), "{unclaimable}");
    check(1_000_000, 3).await.expect("0.01 LTC is a leg this chain holds");
    let deed = Asset::Unique {
        class: interlock_core::AssetCode::new("DEED").expect("a code"),
        item: interlock_core::ItemId::from_u128(1),
    };
    let unique = common::hashlock_deal(&chain, now_ms, &secret, deed, chain.fungible(1), 4);
    let refused = buyer.check_leg(&unique, LegKind::Payment).await.expect_err("a unique item");
    assert_eq!(refused.kind, ChainErrorKind::Fatal, "{refused}");
    assert!(mempool(&chain).await.is_empty(), "checking sends nothing");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_claim_near_its_expiry_is_priced_at_the_cap_and_one_far_from_it_at_the_estimate() {
    let mut chain = Chain::start().await;
    let now_ms = chain.node.median_time().await.expect("time") * 1000;
    let (buyer, seller) = (chain.submitter(Actor::Buyer), chain.submitter(Actor::Seller));
    let rpc = chain.node.rpc().clone();
    let mut rates = Vec::new();
    // The delivery expires in an hour, then within the urgent window.
    for (nonce, delivery_in_ms) in [(1u64, 3_600_000u64), (2, (common::URGENT_WITHIN_S - 120) * 1000)] {
        let secret = Secret([0x70 + nonce as u8; 32]);
        let mut terms = common::hashlock_deal(&chain, now_ms, &secret, chain.fungible(300), chain.fungible(200), nonce);
        if let interlock_core::Settlement::Hashlock { delivery_expiry_ms, payment_expiry_ms, margin_ms, .. } =
            &mut terms.settlement
        {
            *delivery_expiry_ms = now_ms + delivery_in_ms;
            *payment_expiry_ms = *delivery_expiry_ms + *margin_ms;
        }
        for (submitter, leg) in [(&buyer, LegKind::Payment), (&seller, LegKind::Delivery)] {
            let reserve = EscrowOp::Reserve(expected_request(&terms, terms.id(), leg));
            submitter.submit(&terms, &reserve).await.expect("reserve");
        }
        chain.mine(1).await.expect("mine the reservations");
        let claim = EscrowOp::Execute {
            reservation: reservation_id(terms.id(), LegKind::Delivery),
            token: Token::Secret(secret),
        };
        let txid = buyer.submit(&terms, &claim).await.expect("claim").transaction.to_hex();
        let entry: serde_json::Value = rpc.call("getmempoolentry", json!([txid])).await.expect("entry");
        let fee = (entry["fees"]["base"].as_f64().expect("a fee") * 1e8).round();
        rates.push(fee / entry["vsize"].as_f64().expect("a size"));
        chain.mine(1).await.expect("mine the claim");
    }
    assert!(rates[0] < 90.0, "a claim an hour from its expiry pays the node's estimate, under the cap: {rates:?}");
    assert!(rates[1] >= 99.0, "a claim minutes from its expiry pays the cap of 100: {rates:?}");
}
