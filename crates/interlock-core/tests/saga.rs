//! A buyer and a seller saga settle deals end to end against two in-memory ledgers
//! (the core's escrow rules over a test context), notaries, and a manual clock:
//! both modes complete, an absent seller leaves the buyer refunded, a saga
//! restored from its record at any point still completes, and the saga refuses
//! hashlock deadlines that leave the seller no margin.

mod common;
mod saga_world;

use saga_world::*;

#[test]
fn hashlock_deal_completes() {
    let mut world = World::new(hashlock_terms());
    let ended = world.run();
    check_completed(&world);
    assert_eq!(
        world.delivery_ledger().holder(&code("DEED"), &ItemId::from_u128(42)),
        Some(Holder::Account(BUYER_ON_DELIVERY))
    );
    assert!(ended < DELIVERY_EXPIRY, "completed at {ended}, before any deadline");
    // The seller learned the secret from the chain, as the buyer revealed it.
    let secret_executions = world
        .log
        .iter()
        .filter(|event| matches!(event, EscrowEvent::Executed { token: Token::Secret(s), .. } if *s == SECRET))
        .count();
    assert_eq!(secret_executions, 2);
    assert!(world.refused.is_empty(), "honest parties submit nothing refused: {:?}", world.refused);
}

#[test]
fn notary_deal_completes() {
    let mut world = World::new(notary_terms());
    let ended = world.run();
    check_completed(&world);
    assert!(ended < DECISION_DEADLINE, "completed at {ended}");
    assert!(world.buyer.certificate().is_some() && world.seller.certificate().is_some());
    for deal in world.notary_deals.iter().flatten() {
        assert_eq!(deal.decision(), Some(interlock_core::Decision::Commit));
    }
    assert!(world.refused.is_empty(), "honest parties submit nothing refused: {:?}", world.refused);
}

/// Runs `terms` with a seller that never reserves: both get their own back,
/// nothing is executed and nothing submitted is refused. The time it ended.
fn run_without_the_seller(terms: DealTerms) -> (World, u64) {
    let mut world = World::new(terms);
    world.seller.withhold();
    let ended = world.run();
    check_refunded(&world);
    assert_eq!(executions(&world), 0, "the secret never went on chain");
    assert!(world.refused.is_empty(), "{:?}", world.refused);
    (world, ended)
}

#[test]
fn withholding_seller_leaves_buyer_refunded_after_expiry() {
    let (world, ended) = run_without_the_seller(hashlock_terms());
    assert!(ended >= PAYMENT_EXPIRY, "the buyer's payment is locked until its expiry, refunded at {ended}");
    assert_eq!(world.buyer.own_status(), LegStatus::Cancelled);
    assert_eq!(world.seller.own_status(), LegStatus::Open);
}

#[test]
fn withholding_seller_in_notary_mode_is_refunded_on_the_abort_certificate() {
    let (world, ended) = run_without_the_seller(notary_terms());
    assert!(
        (DECISION_DEADLINE..BACKSTOP_EXPIRY).contains(&ended),
        "refunded at {ended}: after the deadline, on the abort certificate, before the backstop"
    );
    let certificate = world.buyer.certificate().expect("abort certificate");
    assert_eq!(certificate.decision, interlock_core::Decision::Abort);
}

/// The seller reserves, but with a shorter expiry than agreed: the buyer must
/// not reveal the secret for a reservation that could expire under it.
#[test]
fn buyer_never_executes_a_mismatched_reservation() {
    let mut world = World::new(hashlock_terms());
    world.seller.withhold();
    // Let the buyer lock its payment first.
    while world.buyer.own_status() != LegStatus::Reserved {
        world.tick();
    }
    let mut request = world.seller.expected_request(LegKind::Delivery);
    request.expiry_ms = DELIVERY_EXPIRY - 2_000;
    world.submit(Role::Seller, DELIVERY_NETWORK, EscrowOp::Reserve(request));
    world.deliver();
    assert_eq!(world.buyer.counter_status(), LegStatus::Mismatched);
    world.run();
    // Both get their own back: the seller's saga cancels its odd reservation too.
    check_refunded(&world);
    assert_eq!(executions(&world), 0, "the secret never went on chain");
    assert!(world.refused.is_empty(), "{:?}", world.refused);
}

/// Hashlock mode is atomic only while the seller is online before the payment
/// expiry: a seller who reserves and then sleeps through it loses (design §2).
#[test]
fn seller_absent_past_the_payment_expiry_loses() {
    let mut world = World::new(hashlock_terms());
    // The seller goes dark right after it saw its own reservation land.
    while world.seller.own_status() != LegStatus::Reserved {
        world.tick();
    }
    world.offline.push(Role::Seller);
    let record = world.seller.encode_record();
    world.tick_until(PAYMENT_EXPIRY + 1_000);
    assert_eq!(world.buyer.counter_status(), LegStatus::Executed);
    assert_eq!(world.buyer.outcome(), Some(Outcome::Windfall));
    world.offline.clear();
    world.restart(Role::Seller, &record);
    world.run();
    assert_eq!(world.seller.outcome(), Some(Outcome::Lost));
    let delivery = world.delivery_ledger();
    assert_eq!(delivery.holds(&BUYER_ON_DELIVERY, &deed()), 1);
    let payment = world.payment_ledger();
    assert_eq!(payment.balance(&buyer_on_payment(), &code("USD")), BUYER_FUNDS);
}

/// A party that crashed right after submitting its reservation, and restarts
/// after every deadline, must not count its leg as never reserved: the
/// reservation may have landed unseen, and its asset is still in escrow.
#[test]
fn party_restarted_after_the_deadlines_refunds_its_unseen_reservation() {
    let mut world = World::new(hashlock_terms());
    // The buyer's first step submits its reservation; the driver persisted the
    // record before submitting; the buyer crashes before it sees the event.
    world.tick();
    let record = world.buyer.encode_record();
    world.offline.push(Role::Buyer);
    assert_eq!(
        world.payment_ledger().balance(&buyer_on_payment(), &code("USD")),
        BUYER_FUNDS - PRICE,
        "the reservation landed"
    );
    world.tick_until(PAYMENT_EXPIRY + 1_000);
    assert_eq!(world.seller.outcome(), Some(Outcome::Refunded));
    world.offline.clear();
    // The driver wakes the restored saga, then catches up on the chain.
    world.buyer = Saga::decode_record(&record).expect("decodes");
    let step = world.buyer.step(world.now_ms);
    world.handle(Role::Buyer, step.outputs);
    world.replay(Role::Buyer);
    world.run();
    assert_eq!(world.buyer.outcome(), Some(Outcome::Refunded));
    assert_eq!(
        world.payment_ledger().balance(&buyer_on_payment(), &code("USD")),
        BUYER_FUNDS,
        "the buyer's payment is still locked in escrow"
    );
}

/// The same with the seller, whose deed was taken while it was down: replaying
/// the chain in order tells it `Refunded`, though it lost the deed.
#[test]
fn party_restarted_after_the_deadlines_learns_what_happened_to_its_leg() {
    let mut world = World::new(hashlock_terms());
    // The seller submits its reservation (persisting its record first) and
    // crashes before it sees the reservation land.
    let delivery_reserved = |world: &World| {
        world.log.iter().any(|event| matches!(event, EscrowEvent::Reserved(r) if r.leg == LegKind::Delivery))
    };
    while !delivery_reserved(&world) {
        world.tick();
    }
    assert_eq!(world.seller.own_status(), LegStatus::Open, "not seen yet");
    let record = world.seller.encode_record();
    world.offline.push(Role::Seller);
    world.tick_until(PAYMENT_EXPIRY + 1_000);
    assert_eq!(world.buyer.outcome(), Some(Outcome::Windfall));
    world.offline.clear();
    world.restart(Role::Seller, &record);
    world.run();
    assert_eq!(world.seller.outcome(), Some(Outcome::Lost));
}

/// Runs a deal to the end, restarting both parties from their records after
/// `crash_after` ticks. With `stale` the records are the ones persisted at the
/// start, so everything since must come back from the chain.
fn run_with_restart(terms: DealTerms, crash_after: u64, stale: bool, batched: bool) -> World {
    let mut world = World::new(terms);
    world.batched = batched;
    let mut records = (world.buyer.encode_record(), world.seller.encode_record());
    for _ in 0..crash_after {
        world.tick();
        if !stale {
            records = (world.buyer.encode_record(), world.seller.encode_record());
        }
    }
    world.restart(Role::Buyer, &records.0);
    world.restart(Role::Seller, &records.1);
    world.run();
    world
}

/// Restarts both parties after every tick of a run that ended at `ended_ms`,
/// from fresh and from stale records: the deal completes each time.
fn check_every_restart_completes(terms: &DealTerms, ended_ms: u64, batched: bool) {
    let ticks = (ended_ms - T0) / STEP_MS;
    for crash_after in 0..=ticks {
        for stale in [false, true] {
            let world = run_with_restart(terms.clone(), crash_after, stale, batched);
            check_completed(&world);
        }
    }
}

#[test]
fn sagas_restored_at_any_point_complete() {
    for terms in [hashlock_terms(), notary_terms()] {
        let mut baseline = World::new(terms.clone());
        let ended = baseline.run();
        check_every_restart_completes(&terms, ended, false);
    }
}

/// The drivers hand a saga all it learned at once (`take_news`): a tick's
/// chain events and votes together, a restarted party's whole chain in one
/// batch. Deciding once from all of it settles the deal as deciding after
/// each input does, restarted at any point too, and submits nothing refused.
#[test]
fn sagas_fed_their_news_in_batches_complete() {
    for terms in [hashlock_terms(), notary_terms()] {
        let mut baseline = World::new(terms.clone());
        baseline.batched = true;
        let ended = baseline.run();
        check_completed(&baseline);
        assert!(baseline.refused.is_empty(), "{:?}", baseline.refused);
        check_every_restart_completes(&terms, ended, true);
    }
}

#[test]
fn record_round_trips_mid_deal() {
    let mut world = World::new(notary_terms());
    world.tick();
    let record = world.buyer.encode_record();
    let restored = Saga::decode_record(&record).expect("decodes");
    assert_eq!(restored.encode_record(), record);
    assert_eq!(restored.own_status(), world.buyer.own_status());
    assert_eq!(restored.counter_status(), world.buyer.counter_status());
    assert_eq!(restored.outcome(), None);

    assert!(Saga::decode_record(&[]).is_err());
    assert!(matches!(Saga::decode_record(&record[..record.len() / 2]), Err(SagaError::Corrupt(_))));
    let mut other_version = record.clone();
    other_version[0] = 2;
    assert!(matches!(Saga::decode_record(&other_version), Err(SagaError::RecordVersion { expected: 1, found: 2 })));
}

/// Accepts the result `Saga::new` must give.
type SagaCheck = fn(&Result<(), SagaError>) -> bool;

#[test]
fn saga_refuses_hashlock_deadlines_without_margin() {
    let cases: [(&str, u64, u64, u64, SagaCheck); 6] = [
        ("margin fits exactly", 5_000, 1_000, 6_000, |r| r.is_ok()),
        ("margin fits", 5_000, 1_000, 9_000, |r| r.is_ok()),
        ("one millisecond short", 5_000, 1_000, 5_999, |r| {
            matches!(
                r,
                Err(SagaError::Terms(TermsError::HashlockDeadlines {
                    delivery_expiry_ms: 5_000,
                    margin_ms: 1_000,
                    payment_expiry_ms: 5_999,
                }))
            )
        }),
        ("payment expires first", 5_000, 1_000, 4_000, |r| {
            matches!(r, Err(SagaError::Terms(TermsError::HashlockDeadlines { .. })))
        }),
        ("deadline plus margin overflows", u64::MAX - 10, 1_000, u64::MAX, |r| {
            matches!(r, Err(SagaError::Terms(TermsError::HashlockDeadlines { .. })))
        }),
        ("margin below the minimum", 5_000, 1, 9_000, |r| {
            matches!(r, Err(SagaError::Terms(TermsError::HashlockMargin { .. })))
        }),
    ];
    for (name, delivery_expiry_ms, margin_ms, payment_expiry_ms, is_expected) in cases {
        let terms = Arc::new(terms(deed(), hashlock_settlement(delivery_expiry_ms, margin_ms, payment_expiry_ms)));
        for (role, secret) in [(Role::Buyer, Some(SECRET)), (Role::Seller, None)] {
            let result = Saga::new(role, terms.clone(), secret).map(|_| ());
            assert!(is_expected(&result), "{name}, {role:?}: {result:?}");
        }
    }
}

#[test]
fn hashlock_buyer_needs_the_right_secret() {
    let terms = Arc::new(hashlock_terms());
    assert!(matches!(Saga::new(Role::Buyer, terms.clone(), None), Err(SagaError::MissingSecret)));
    for role in [Role::Buyer, Role::Seller] {
        assert!(matches!(Saga::new(role, terms.clone(), Some(Secret([0; 32]))), Err(SagaError::WrongSecret)));
    }
    // A notary-mode buyer has no secret to draw.
    assert!(Saga::new(Role::Buyer, Arc::new(notary_terms()), None).is_ok());
    // Terms that are not valid at all are refused too.
    let mut same_party = hashlock_terms();
    same_party.seller = same_party.buyer;
    assert!(matches!(
        Saga::new(Role::Seller, Arc::new(same_party), None),
        Err(SagaError::Terms(TermsError::SameParty(_)))
    ));
}

/// A record is read back from disk, so a damaged one must be refused with an
/// error. postcard writes a string as a varint length and its bytes; put other
/// asset codes where the terms' "USD" was.
#[test]
fn decode_record_refuses_invalid_asset_codes() {
    let record = World::new(hashlock_terms()).buyer.encode_record();
    let usd = [3, b'U', b'S', b'D'];
    let at = record.windows(usd.len()).position(|window| window == usd).expect("the payment's asset code");
    let with_code = |encoded_code: &[u8]| {
        let mut forged = record[..at].to_vec();
        forged.extend_from_slice(encoded_code);
        forged.extend_from_slice(&record[at + usd.len()..]);
        forged
    };
    // 5000 as a varint is 0x88 0x27.
    let mut long = vec![0x88, 0x27];
    long.extend(std::iter::repeat_n(b'A', 5_000));
    let cases = [
        ("a space in the code", with_code(&[3, b'U', b' ', b'D'])),
        ("empty code", with_code(&[0])),
        ("5000-byte code", with_code(&long)),
    ];
    let wrong: Vec<String> = cases
        .iter()
        .filter_map(|(name, forged)| match std::panic::catch_unwind(|| Saga::decode_record(forged).map(|_| ())) {
            Ok(Err(_)) => None,
            Ok(Ok(())) => Some(format!("{name}: accepted")),
            Err(_) => Some(format!("{name}: panicked")),
        })
        .collect();
    assert!(wrong.is_empty(), "{wrong:?}");
}
