//! The conformance checks of held legs: a deal with an inspection period
//! executes into a hold, and only the notaries' verdict moves the asset.

use super::{
    balance, expect_eq, expect_kind, expect_ok, follow_until, notary_keys, now_ms, Actor, Check, Deal, Harness, Seen,
};
use crate::ChainErrorKind;
use interlock_core::crypto::{Certificate, Decision, Token};
use interlock_core::escrow::ReservationState;
use interlock_core::{reservation_id, Asset, Disputer, EscrowOp, Inspection, LegKind};

/// The window the suite's deals set; the chain never looks at it.
const WINDOW_MS: u64 = 60_000;

impl Deal {
    /// As [`Deal::notary`], with an inspection period.
    fn inspected<H: Harness>(harness: &H, payment: Asset, delivery: Asset, now_ms: u64) -> Deal {
        let mut deal = Deal::notary(harness, payment, delivery, now_ms);
        deal.terms.policy.inspection = Some(Inspection { window_ms: WINDOW_MS, disputer: Disputer::Buyer });
        deal
    }

    fn resolve(&self, leg: LegKind, verdict: Certificate) -> EscrowOp {
        EscrowOp::Resolve { reservation: reservation_id(self.terms.id(), leg), verdict }
    }

    fn owner(leg: LegKind) -> Actor {
        match leg {
            LegKind::Payment => Actor::Buyer,
            LegKind::Delivery => Actor::Seller,
        }
    }
}

/// What the suite's inspected deals trade: 300 of the fungible asset for item
/// 6 (or 7 of the fungible asset where items are not held).
fn inspected_deal<H: Harness>(harness: &H, now: u64) -> Deal {
    let delivery = if harness.capabilities().unique { harness.item(6) } else { harness.fungible(7) };
    Deal::inspected(harness, harness.fungible(300), delivery, now)
}

/// A new inspected deal, or `None` once a platform that cannot hold a leg
/// refused to reserve one (see [`refuses_inspected_legs`]).
async fn inspected_deal_or_refusal(harness: &mut impl Harness) -> Result<Option<Deal>, String> {
    let now = now_ms(harness).await?;
    let deal = inspected_deal(harness, now);
    if harness.capabilities().inspection {
        return Ok(Some(deal));
    }
    refuses_inspected_legs(harness, &deal).await.map(|()| None)
}

/// Each owner reserves its inspected leg.
async fn reserve_both(harness: &mut impl Harness, deal: &Deal) -> Check {
    for leg in LegKind::BOTH {
        let what = format!("reserve the inspected {leg:?} leg");
        expect_ok(harness, Deal::owner(leg), deal, &deal.reserve(leg), &what).await?;
    }
    Ok(())
}

/// Both legs reserved, then executed with a commit quorum: held.
async fn reserve_and_hold(harness: &mut impl Harness, deal: &Deal) -> Check {
    let commit = Token::Certificate(deal.certificate(Decision::Commit, &notary_keys()[..2]));
    reserve_both(harness, deal).await?;
    // Before the commit there is nothing to decide.
    let early = deal.resolve(LegKind::Payment, deal.certificate(Decision::Release, &notary_keys()[..2]));
    let rejected = ChainErrorKind::Rejected;
    expect_kind(harness, Actor::Stranger, deal, &early, rejected, "a release of a leg not yet held").await?;
    for (leg, beneficiary) in [(LegKind::Payment, Actor::Seller), (LegKind::Delivery, Actor::Buyer)] {
        let what = format!("execute the inspected {leg:?} leg with a commit quorum");
        expect_ok(harness, beneficiary, deal, &deal.execute(leg, commit.clone()), &what).await?;
    }
    for leg in LegKind::BOTH {
        let found = harness.submitter(Actor::Stranger).leg_state(&deal.terms, leg).await;
        let found = found.map_err(|error| format!("reading the {leg:?} leg: {error}"))?;
        expect_eq(&format!("the {leg:?} leg after its commit"), Some(ReservationState::Held), found)?;
    }
    Ok(())
}

/// A platform that cannot hold an executed leg refuses to reserve one for an
/// inspection period, and the owner's funds stay where they were.
async fn refuses_inspected_legs(harness: &mut impl Harness, deal: &Deal) -> Check {
    let asset = deal.terms.payment.asset.clone();
    let before = balance(harness, Actor::Buyer, &asset).await?;
    let reserve = deal.reserve(LegKind::Payment);
    expect_kind(harness, Actor::Buyer, deal, &reserve, ChainErrorKind::Fatal, "reserve an inspected leg").await?;
    expect_eq("the owner's funds after the refusal", before, balance(harness, Actor::Buyer, &asset).await?)
}

/// A commit quorum holds an inspected leg instead of paying it: nothing the
/// owner or the clock does frees it, a verdict short of the deal's own quorum
/// is refused, and a release by anyone pays both beneficiaries, once.
pub async fn inspected_legs_are_held_until_a_release(harness: &mut impl Harness) -> Check {
    let Some(deal) = inspected_deal_or_refusal(harness).await? else { return Ok(()) };
    let (payment, delivery) = (deal.terms.payment.asset.clone(), deal.terms.delivery.asset.clone());
    let seller_before = balance(harness, Actor::Seller, &payment).await?;
    let buyer_before = balance(harness, Actor::Buyer, &delivery).await?;
    reserve_and_hold(harness, &deal).await?;
    expect_eq(
        "the seller's funds while the payment is held",
        seller_before,
        balance(harness, Actor::Seller, &payment).await?,
    )?;
    expect_eq(
        "the buyer's holding while the delivery is held",
        buyer_before,
        balance(harness, Actor::Buyer, &delivery).await?,
    )?;

    let keys = notary_keys();
    let done = ChainErrorKind::AlreadyDone;
    let commit = Token::Certificate(deal.certificate(Decision::Commit, &keys[..2]));
    let again = deal.execute(LegKind::Payment, commit);
    expect_kind(harness, Actor::Seller, &deal, &again, done, "a second commit of a held leg").await?;
    let abort = deal.cancel(LegKind::Payment, Some(deal.certificate(Decision::Abort, &keys[..2])));
    expect_kind(harness, Actor::Buyer, &deal, &abort, done, "an abort quorum on a held leg").await?;
    harness.advance(2 * super::LONG_MS).await.map_err(|error| format!("moving the clock: {error}"))?;
    let lapse = deal.cancel(LegKind::Payment, None);
    expect_kind(harness, Actor::Buyer, &deal, &lapse, done, "a cancel of a held leg past its backstop").await?;

    let now = now_ms(harness).await?;
    let other = inspected_deal(harness, now);
    for (what, verdict) in deal.not_a_quorum(&other, Decision::Release, Decision::Commit) {
        let resolve = deal.resolve(LegKind::Payment, verdict);
        let what = format!("resolve with {what}");
        expect_kind(harness, Actor::Stranger, &deal, &resolve, ChainErrorKind::Rejected, &what).await?;
    }
    expect_eq(
        "the seller's funds after the refusals",
        seller_before,
        balance(harness, Actor::Seller, &payment).await?,
    )?;

    let release = deal.certificate(Decision::Release, &keys[1..3]);
    for leg in LegKind::BOTH {
        let what = format!("release the {leg:?} leg, presented by a stranger");
        expect_ok(harness, Actor::Stranger, &deal, &deal.resolve(leg, release.clone()), &what).await?;
    }
    expect_eq(
        "the seller's funds after the release",
        seller_before + 300,
        balance(harness, Actor::Seller, &payment).await?,
    )?;
    expect_eq(
        "the buyer's holding after the release",
        buyer_before + deal_amount(&delivery),
        balance(harness, Actor::Buyer, &delivery).await?,
    )?;
    expect_kind(harness, Actor::Stranger, &deal, &deal.resolve(LegKind::Payment, release), done, "a second release")
        .await?;
    let reverse = deal.resolve(LegKind::Delivery, deal.certificate(Decision::Reverse, &keys[..2]));
    expect_kind(harness, Actor::Stranger, &deal, &reverse, done, "a reverse after the release").await?;
    let found = harness.submitter(Actor::Buyer).leg_state(&deal.terms, LegKind::Payment).await;
    let found = found.map_err(|error| format!("reading the payment leg: {error}"))?;
    expect_eq("the payment after its release", Some(ReservationState::Executed), found)
}

/// Until a commit holds them, inspected legs go back to their owners as plain
/// notary legs do: on an abort quorum at any time, or once their backstop has
/// passed; a commit quorum then finds nothing to hold.
pub async fn inspected_legs_go_back_until_held(harness: &mut impl Harness) -> Check {
    let Some(deal) = inspected_deal_or_refusal(harness).await? else { return Ok(()) };
    let (payment, delivery) = (deal.terms.payment.asset.clone(), deal.terms.delivery.asset.clone());
    let buyer_before = balance(harness, Actor::Buyer, &payment).await?;
    let seller_before = balance(harness, Actor::Seller, &delivery).await?;
    reserve_both(harness, &deal).await?;
    let keys = notary_keys();
    let abort = deal.cancel(LegKind::Payment, Some(deal.certificate(Decision::Abort, &keys[..2])));
    expect_ok(harness, Actor::Buyer, &deal, &abort, "cancel the inspected payment with an abort quorum").await?;
    let early = deal.cancel(LegKind::Delivery, None);
    let rejected = ChainErrorKind::Rejected;
    expect_kind(harness, Actor::Seller, &deal, &early, rejected, "cancel the inspected delivery before its backstop")
        .await?;
    harness.advance(2 * super::LONG_MS).await.map_err(|error| format!("moving the clock: {error}"))?;
    expect_ok(harness, Actor::Seller, &deal, &early, "cancel the inspected delivery past its backstop").await?;
    let commit = Token::Certificate(deal.certificate(Decision::Commit, &keys[..2]));
    let done = ChainErrorKind::AlreadyDone;
    let late = deal.execute(LegKind::Delivery, commit);
    expect_kind(harness, Actor::Buyer, &deal, &late, done, "a commit quorum on a cancelled inspected leg").await?;
    for leg in LegKind::BOTH {
        let found = harness.submitter(Actor::Stranger).leg_state(&deal.terms, leg).await;
        let found = found.map_err(|error| format!("reading the {leg:?} leg: {error}"))?;
        expect_eq(&format!("the {leg:?} leg after its cancel"), Some(ReservationState::Cancelled), found)?;
    }
    expect_eq("the buyer's funds after the abort", buyer_before, balance(harness, Actor::Buyer, &payment).await?)?;
    expect_eq(
        "the seller's holding after the backstop",
        seller_before,
        balance(harness, Actor::Seller, &delivery).await?,
    )
}

/// A reverse verdict pays both held legs back to their owners: balances end
/// as before the deal, and a follower reports each leg reserved, held, then
/// cancelled.
pub async fn reverse_verdict_returns_both_legs(harness: &mut impl Harness) -> Check {
    let Some(deal) = inspected_deal_or_refusal(harness).await? else { return Ok(()) };
    let (payment, delivery) = (deal.terms.payment.asset.clone(), deal.terms.delivery.asset.clone());
    let buyer_before = balance(harness, Actor::Buyer, &payment).await?;
    let seller_before = balance(harness, Actor::Seller, &delivery).await?;
    let start = harness.start();
    let mut follower = harness.follower(start).await.map_err(|error| format!("making a follower: {error}"))?;
    follower.watch(&deal.terms).map_err(|error| format!("watching the deal: {error}"))?;

    reserve_and_hold(harness, &deal).await?;
    let keys = notary_keys();
    let reverse = deal.certificate(Decision::Reverse, &keys[..2]);
    let short = deal.resolve(LegKind::Payment, deal.certificate(Decision::Reverse, &keys[2..3]));
    let rejected = ChainErrorKind::Rejected;
    expect_kind(harness, Actor::Buyer, &deal, &short, rejected, "a reverse with one signature").await?;
    for leg in LegKind::BOTH {
        let what = format!("reverse the {leg:?} leg, presented by a stranger");
        expect_ok(harness, Actor::Stranger, &deal, &deal.resolve(leg, reverse.clone()), &what).await?;
    }
    expect_eq("the buyer's funds after the reverse", buyer_before, balance(harness, Actor::Buyer, &payment).await?)?;
    expect_eq(
        "the seller's holding after the reverse",
        seller_before,
        balance(harness, Actor::Seller, &delivery).await?,
    )?;
    let release = deal.resolve(LegKind::Payment, deal.certificate(Decision::Release, &keys[..2]));
    expect_kind(harness, Actor::Seller, &deal, &release, ChainErrorKind::AlreadyDone, "a release after the reverse")
        .await?;

    harness.settle().await.map_err(|error| format!("settling: {error}"))?;
    let mut seen = Seen::default();
    follow_until(follower.as_mut(), &deal, &mut seen, 6).await?;
    for leg in LegKind::BOTH {
        let kinds: Vec<&str> = seen.events.iter().filter(|(_, of)| *of == leg).map(|(kind, _)| *kind).collect();
        expect_eq(&format!("the {leg:?} leg's events"), vec!["reserved", "held", "cancelled"], kinds)?;
    }
    Ok(())
}

/// What one unit of `asset` is worth in [`Harness::balance`]'s terms.
fn deal_amount(asset: &Asset) -> u128 {
    match asset {
        Asset::Fungible { amount, .. } => *amount,
        Asset::Unique { .. } => 1,
    }
}
