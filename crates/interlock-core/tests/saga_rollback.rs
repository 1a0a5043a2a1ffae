//! A reorganisation deeper than a network's confirmation depth takes away
//! blocks the sagas already acted on. Each party is told where its legs stand
//! on the chain now: a leg goes back only, a deal that had ended runs again,
//! and what a party's own side lost (a reservation, an execution) is sent
//! again, so the deal still ends with both legs executed. Past the deadlines
//! nothing can be sent again, and the outcome says so.

mod common;
mod saga_world;

use interlock_core::types::reservation_id;
use saga_world::*;

/// Puts `network`'s ledger back to `before` (a reorganisation that dropped
/// every block of the deal there) and tells both parties where the leg on it
/// stands now; answers what each made of it.
fn reorganise(world: &mut World, network: NetworkId, before: TestLedger) -> [bool; 2] {
    world.ledgers.insert(network, before);
    let leg = if network == PAYMENT_NETWORK { LegKind::Payment } else { LegKind::Delivery };
    let on_chain = world.ledgers[&network].state(&reservation_id(world.terms.id(), leg));
    [Role::Buyer, Role::Seller].map(|role| world.saga(role).rolled_back(leg, on_chain))
}

/// Runs `terms` to completion; the world, and `network`'s ledger as it stood
/// before the deal (what a reorganisation dropping the deal's blocks leaves).
fn completed_deal(terms: DealTerms, network: NetworkId) -> (World, TestLedger) {
    let mut world = World::new(terms);
    let before = world.ledgers[&network].clone();
    world.run();
    check_completed(&world);
    (world, before)
}

fn events_of(world: &World, leg: LegKind) -> usize {
    world.log.iter().filter(|event| event.leg() == leg).count()
}

#[test]
fn a_dropped_payment_reservation_and_its_execution_are_sent_again() {
    let (mut world, before) = completed_deal(hashlock_terms(), PAYMENT_NETWORK);
    assert_eq!(events_of(&world, LegKind::Payment), 2);
    // Late: the delivery's expiry passed, the payment's has not.
    world.tick_until(DELIVERY_EXPIRY + STEP_MS);

    assert_eq!(reorganise(&mut world, PAYMENT_NETWORK, before), [true, true]);
    assert_eq!(world.buyer.outcome(), None, "the deal runs again");
    assert_eq!(world.seller.counter_status(), LegStatus::Open);
    assert_eq!(world.payment_ledger().balance(&seller_on_payment(), &code("USD")), 0, "the seller is unpaid");

    world.run();
    check_completed(&world);
    assert_eq!(events_of(&world, LegKind::Payment), 4, "the buyer reserved again and the seller executed again");
}

#[test]
fn a_dropped_delivery_and_the_secret_it_revealed_are_sent_again() {
    let (mut world, before) = completed_deal(hashlock_terms(), DELIVERY_NETWORK);

    assert_eq!(reorganise(&mut world, DELIVERY_NETWORK, before), [true, true]);
    assert_eq!(world.delivery_ledger().holds(&BUYER_ON_DELIVERY, &deed()), 0, "the buyer lost the deed");

    world.run();
    check_completed(&world);
    assert_eq!(
        world.delivery_ledger().holder(&code("DEED"), &ItemId::from_u128(42)),
        Some(Holder::Account(BUYER_ON_DELIVERY))
    );
    assert_eq!(events_of(&world, LegKind::Delivery), 4, "the seller reserved again and the buyer executed again");
}

#[test]
fn after_a_commit_a_dropped_reservation_is_sent_again_and_executed_with_the_certificate() {
    let (mut world, before) = completed_deal(notary_terms(), PAYMENT_NETWORK);

    assert_eq!(reorganise(&mut world, PAYMENT_NETWORK, before), [true, true]);
    world.run();
    check_completed(&world);
    assert_eq!(events_of(&world, LegKind::Payment), 4);
}

#[test]
fn a_reorganisation_that_kept_the_leg_changes_nothing() {
    let mut world = World::new(hashlock_terms());
    world.run();
    let kept = world.payment_ledger().clone();
    assert_eq!(reorganise(&mut world, PAYMENT_NETWORK, kept), [false, false]);
    assert_eq!(world.buyer.outcome(), Some(Outcome::Completed));
    assert_eq!(world.seller.outcome(), Some(Outcome::Completed));
}

#[test]
fn a_leg_only_goes_back() {
    let mut world = World::new(hashlock_terms());
    world.run();
    let mut saga = world.seller.clone();
    // The chain cannot be ahead of what the saga saw without the follower
    // delivering it: that is news for the follower, not for a rollback.
    assert!(!saga.rolled_back(LegKind::Payment, Some(interlock_core::escrow::ReservationState::Executed)));
    assert!(saga.rolled_back(LegKind::Payment, Some(interlock_core::escrow::ReservationState::Reserved)));
    assert_eq!(saga.counter_status(), LegStatus::Reserved);
    assert!(!saga.rolled_back(LegKind::Payment, Some(interlock_core::escrow::ReservationState::Reserved)));
}

/// Past the payment's expiry the buyer may no longer reserve it: a
/// reorganisation that deep and that late leaves the deal one-sided, and each
/// party's outcome says which side it is on.
#[test]
fn past_the_deadlines_nothing_is_sent_again_and_the_outcome_says_so() {
    let (mut world, before) = completed_deal(hashlock_terms(), PAYMENT_NETWORK);
    world.tick_until(PAYMENT_EXPIRY + STEP_MS);
    assert_eq!(reorganise(&mut world, PAYMENT_NETWORK, before), [true, true]);
    world.run();
    assert_eq!(world.buyer.outcome(), Some(Outcome::Windfall));
    assert_eq!(world.seller.outcome(), Some(Outcome::Lost));
    assert_eq!(events_of(&world, LegKind::Payment), 2, "nothing sent past the expiry");
}
