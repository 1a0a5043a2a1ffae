//! The notary decider: it accepts only deals both parties signed and that name it,
//! commits only when both reservations carry exactly the agreed terms before the
//! decision deadline, aborts otherwise, signs nothing before its decision is
//! recorded, and after a restart signs the recorded decision and never the other.

use interlock_core::crypto::{Decision, Ed25519Signature, NotaryKey, PartyKey, SignatureError};
use interlock_core::escrow::{Condition, EscrowEvent, ReserveRequest};
use interlock_core::notary::{NotaryDeal, NotaryError, NotaryOutput, SignedDeal};
use interlock_core::policy::Unrestricted;
use interlock_core::saga::expected_request;
use interlock_core::{
    Address, Asset, AssetCode, DealId, DealTerms, Hash32, ItemId, Leg, LegKind, NetworkId, PartyId, Policy, Settlement,
};
use proptest::prelude::*;
use std::sync::Arc;

const T0: u64 = 1_000_000;
const DEADLINE: u64 = T0 + 5_000;
const BACKSTOP: u64 = T0 + 10_000;
const THRESHOLD: u8 = 2;

fn buyer() -> PartyKey {
    PartyKey::from_seed([0xb1; 32])
}
fn seller() -> PartyKey {
    PartyKey::from_seed([0x5e; 32])
}
fn notary(seed: u8) -> NotaryKey {
    NotaryKey::from_seed([seed; 32]).expect("valid scalar")
}
fn notaries() -> [NotaryKey; 3] {
    [notary(1), notary(2), notary(3)]
}
fn code(text: &str) -> AssetCode {
    AssetCode::new(text).expect("valid code")
}

fn terms() -> DealTerms {
    DealTerms {
        buyer: buyer().public(),
        seller: seller().public(),
        payment: Leg {
            network: NetworkId(1),
            asset: Asset::Fungible { code: code("USD"), amount: 100 },
            owner: Address::from_bytes(buyer().public().0),
            beneficiary: Address::from_bytes(seller().public().0),
            keeper: None,
        },
        delivery: Leg {
            network: NetworkId(2),
            asset: Asset::Unique { class: code("DEED"), item: ItemId::from_u128(42) },
            owner: Address::from_bytes([0x5e; 20]),
            beneficiary: Address::from_bytes([0xb1; 20]),
            keeper: None,
        },
        settlement: Settlement::Notary {
            notaries: notaries().iter().map(NotaryKey::address).collect(),
            threshold: THRESHOLD,
            decision_deadline_ms: DEADLINE,
            backstop_expiry_ms: BACKSTOP,
        },
        policy: Policy::default(),
        observers: vec![],
        dependents: vec![],
        nonce: 1,
    }
}

fn signed(terms: DealTerms) -> SignedDeal {
    let id = terms.id();
    SignedDeal { buyer_signature: buyer().sign_deal(id), seller_signature: seller().sign_deal(id), terms }
}

/// A deal accepted by notary 1 at `T0`, which decided nothing yet.
fn accepted() -> NotaryDeal {
    let (deal, outputs) =
        NotaryDeal::accept(&notaries()[0], &signed(terms()), T0).expect("a well-signed deal is accepted");
    assert_eq!(outputs, vec![], "nothing to decide at acceptance");
    deal
}

/// The Reserved event a ledger publishes for `request`.
fn reserved(request: ReserveRequest) -> EscrowEvent {
    EscrowEvent::Reserved(request.reservation())
}

/// The reservation the terms call for on `leg`.
fn agreed(leg: LegKind) -> ReserveRequest {
    let terms = terms();
    expected_request(&terms, terms.id(), leg)
}

fn record(decision: Decision) -> Vec<NotaryOutput> {
    vec![NotaryOutput::Record { deal_id: terms().id(), decision, reason: None }]
}

#[test]
fn accept_refuses_bad_signatures_and_outsiders() {
    let good = signed(terms());
    let other_deal = DealId(Hash32::sha256(&[b"another deal"]));
    let mut hashlock_terms = terms();
    hashlock_terms.settlement = Settlement::Hashlock {
        hash: Hash32([1; 32]),
        payment_expiry_ms: BACKSTOP,
        delivery_expiry_ms: DEADLINE,
        margin_ms: 1_000,
    };
    let mut changed_after_signing = good.clone();
    changed_after_signing.terms.nonce += 1;

    // The good deal with one signature replaced.
    let buyer_signed = |buyer_signature| SignedDeal { buyer_signature, ..good.clone() };
    let seller_signed = |seller_signature| SignedDeal { seller_signature, ..good.clone() };
    let mut flipped = good.seller_signature;
    flipped.0[5] ^= 0x10;

    type IsExpected = fn(&NotaryError) -> bool;
    let cases: Vec<(&str, NotaryKey, SignedDeal, IsExpected)> = vec![
        ("buyer signature by the seller", notary(1), buyer_signed(seller().sign_deal(good.terms.id())), |e| {
            matches!(e, NotaryError::BuyerSignature(SignatureError::Mismatch(_)))
        }),
        ("buyer signature over another deal", notary(1), buyer_signed(buyer().sign_deal(other_deal)), |e| {
            matches!(e, NotaryError::BuyerSignature(_))
        }),
        (
            "buyer signature over the raw id instead of the signing message",
            notary(1),
            buyer_signed(buyer().sign(&good.terms.id().0 .0)),
            |e| matches!(e, NotaryError::BuyerSignature(_)),
        ),
        ("seller signature by the buyer", notary(2), seller_signed(buyer().sign_deal(good.terms.id())), |e| {
            matches!(e, NotaryError::SellerSignature(SignatureError::Mismatch(_)))
        }),
        ("seller signature with a flipped bit", notary(2), seller_signed(flipped), |e| {
            matches!(e, NotaryError::SellerSignature(_))
        }),
        (
            "signatures swapped",
            notary(3),
            SignedDeal {
                buyer_signature: good.seller_signature,
                seller_signature: good.buyer_signature,
                ..good.clone()
            },
            |e| matches!(e, NotaryError::BuyerSignature(_)),
        ),
        ("terms changed after signing", notary(1), changed_after_signing, |e| {
            matches!(e, NotaryError::BuyerSignature(_))
        }),
        ("notary not in the set", notary(9), good.clone(), |e| matches!(e, NotaryError::NotInSet(_))),
        ("hashlock deal", notary(1), signed(hashlock_terms), |e| matches!(e, NotaryError::NotNotaryMode)),
    ];
    for (name, key, deal, is_expected) in cases {
        match NotaryDeal::accept(&key, &deal, T0) {
            Err(error) => assert!(is_expected(&error), "{name}: wrong error {error}"),
            Ok((_, outputs)) => panic!("{name}: accepted, outputs {outputs:?}"),
        }
    }
    for key in notaries() {
        assert!(NotaryDeal::accept(&key, &good, T0).is_ok());
    }
}

#[test]
fn commits_only_after_both_matching_reservations() {
    for order in [LegKind::BOTH, [LegKind::Delivery, LegKind::Payment]] {
        let mut deal = accepted();
        assert_eq!(deal.wake_at_ms(), Some(DEADLINE));
        let [first, second] = order;
        assert_eq!(deal.observe(T0 + 1, &reserved(agreed(first)), &Unrestricted), vec![]);
        // A replayed event is not the second leg.
        assert_eq!(deal.observe(T0 + 2, &reserved(agreed(first)), &Unrestricted), vec![]);
        assert_eq!(deal.tick(DEADLINE - 1, &Unrestricted), vec![]);
        assert_eq!(
            deal.observe(DEADLINE - 1, &reserved(agreed(second)), &Unrestricted),
            record(Decision::Commit),
            "{order:?}"
        );
        assert_eq!(deal.wake_at_ms(), None, "decided: no more deadline");
        // Decided but not recorded: nothing is signed, nothing more is decided.
        assert_eq!(deal.decision(), None);
        assert_eq!(deal.vote(&notaries()[0]), None);
        assert_eq!(deal.tick(DEADLINE + 1, &Unrestricted), vec![]);
    }
}

/// A reservation whose block a reorganisation took away no longer counts:
/// the other leg alone commits nothing, and the reservation seen again does.
#[test]
fn a_reservation_taken_away_by_a_reorganisation_no_longer_counts() {
    let mut deal = accepted();
    assert_eq!(deal.observe(T0 + 1, &reserved(agreed(LegKind::Payment)), &Unrestricted), vec![]);
    assert!(deal.rolled_back(LegKind::Payment), "the payment was counted in");
    assert!(!deal.rolled_back(LegKind::Payment), "and is no longer");
    assert!(!deal.rolled_back(LegKind::Delivery), "never seen");
    assert_eq!(deal.observe(T0 + 2, &reserved(agreed(LegKind::Delivery)), &Unrestricted), vec![], "one leg is in");
    assert_eq!(
        deal.observe(T0 + 3, &reserved(agreed(LegKind::Payment)), &Unrestricted),
        record(Decision::Commit),
        "the payment mined again"
    );
    // Decided: a later reorganisation changes nothing.
    deal.recorded(&notaries()[0]);
    assert!(!deal.rolled_back(LegKind::Payment));
    assert_eq!(deal.decision(), Some(Decision::Commit));
}

#[test]
fn recorded_decision_is_signed_by_this_notary() {
    let key = &notaries()[0];
    let mut deal = accepted();
    deal.observe(T0 + 1, &reserved(agreed(LegKind::Payment)), &Unrestricted);
    deal.observe(T0 + 2, &reserved(agreed(LegKind::Delivery)), &Unrestricted);
    let outputs = deal.recorded(key);
    let [NotaryOutput::Vote(vote)] = outputs.as_slice() else {
        panic!("expected one vote, got {outputs:?}");
    };
    assert_eq!(vote.deal_id, terms().id());
    assert_eq!(vote.decision, Decision::Commit);
    assert_eq!(vote.signer(), Some(key.address()));
    assert_eq!(deal.decision(), Some(Decision::Commit));
    assert_eq!(deal.vote(key), Some(*vote));
    // Events and the deadline after the decision change nothing.
    assert_eq!(deal.tick(DEADLINE, &Unrestricted), vec![]);
    assert_eq!(deal.observe(DEADLINE + 1, &reserved(agreed(LegKind::Payment)), &Unrestricted), vec![]);
    assert_eq!(deal.vote(key).map(|v| v.decision), Some(Decision::Commit));
}

#[test]
fn mismatched_reservations_do_not_count() {
    let other_terms = DealTerms { nonce: 2, ..terms() };
    let payment = agreed(LegKind::Payment);
    let delivery = agreed(LegKind::Delivery);
    let cases = [
        ("earlier expiry", ReserveRequest { expiry_ms: BACKSTOP - 1, ..delivery.clone() }),
        ("later expiry", ReserveRequest { expiry_ms: BACKSTOP + 1, ..delivery.clone() }),
        ("other beneficiary", ReserveRequest { beneficiary: Address::from_bytes([0x66; 20]), ..delivery.clone() }),
        ("other owner", ReserveRequest { owner: Address::from_bytes([0x66; 20]), ..delivery.clone() }),
        (
            "other item",
            ReserveRequest {
                asset: Asset::Unique { class: code("DEED"), item: ItemId::from_u128(43) },
                ..delivery.clone()
            },
        ),
        (
            "lower threshold",
            ReserveRequest {
                condition: Condition::Notary {
                    notaries: notaries().iter().map(NotaryKey::address).collect(),
                    threshold: 1,
                },
                ..delivery.clone()
            },
        ),
        (
            "other notary set",
            ReserveRequest {
                condition: Condition::Notary {
                    notaries: vec![notary(1).address(), notary(9).address()],
                    threshold: THRESHOLD,
                },
                ..delivery.clone()
            },
        ),
        ("hashlock condition", ReserveRequest { condition: Condition::Hashlock(Hash32([7; 32])), ..delivery.clone() }),
        ("payment's parameters on the delivery leg", ReserveRequest { leg: LegKind::Delivery, ..payment.clone() }),
        ("the same leg of another deal", expected_request(&other_terms, other_terms.id(), LegKind::Delivery)),
    ];
    for (name, mismatched) in cases {
        let mut deal = accepted();
        assert_eq!(deal.observe(T0 + 1, &reserved(payment.clone()), &Unrestricted), vec![]);
        assert_eq!(deal.observe(T0 + 2, &reserved(mismatched.clone()), &Unrestricted), vec![], "{name}: counted");
        assert_eq!(deal.tick(DEADLINE - 1, &Unrestricted), vec![], "{name}");
        assert_eq!(deal.tick(DEADLINE, &Unrestricted), record(Decision::Abort), "{name}");

        // A mismatched reservation does not spoil a matching one seen later.
        let mut deal = accepted();
        deal.observe(T0 + 1, &reserved(payment.clone()), &Unrestricted);
        deal.observe(T0 + 2, &reserved(mismatched), &Unrestricted);
        assert_eq!(
            deal.observe(T0 + 3, &reserved(delivery.clone()), &Unrestricted),
            record(Decision::Commit),
            "{name}"
        );
    }
}

#[test]
fn settlement_events_are_not_reservations() {
    let mut deal = accepted();
    deal.observe(T0 + 1, &reserved(agreed(LegKind::Payment)), &Unrestricted);
    let delivery = agreed(LegKind::Delivery);
    let cancelled = delivery.reservation().cancelled(delivery.owner);
    assert_eq!(deal.observe(T0 + 2, &cancelled, &Unrestricted), vec![]);
    assert_eq!(deal.tick(DEADLINE, &Unrestricted), record(Decision::Abort));
}

#[test]
fn aborts_at_the_deadline() {
    // Only one leg in time.
    let mut deal = accepted();
    deal.observe(T0 + 1, &reserved(agreed(LegKind::Payment)), &Unrestricted);
    assert_eq!(deal.tick(DEADLINE - 1, &Unrestricted), vec![]);
    assert_eq!(deal.tick(DEADLINE, &Unrestricted), record(Decision::Abort));

    // The second leg lands exactly at the deadline: too late.
    let mut deal = accepted();
    deal.observe(T0 + 1, &reserved(agreed(LegKind::Delivery)), &Unrestricted);
    assert_eq!(deal.observe(DEADLINE, &reserved(agreed(LegKind::Payment)), &Unrestricted), record(Decision::Abort));

    // Nothing at all, first heard of past the deadline.
    let mut deal = accepted();
    assert_eq!(deal.tick(DEADLINE + 60_000, &Unrestricted), record(Decision::Abort));

    // Accepted only after the deadline: aborts at once.
    let (_, outputs) = NotaryDeal::accept(&notaries()[1], &signed(terms()), DEADLINE).expect("accepted");
    assert_eq!(outputs, record(Decision::Abort));
}

#[test]
fn terms_against_the_rules_abort_at_once() {
    let mut over_policy = terms();
    over_policy.policy.amount_max = Some(99);
    let mut zero_threshold = terms();
    if let Settlement::Notary { threshold, .. } = &mut zero_threshold.settlement {
        *threshold = 0;
    }
    let mut same_party = terms();
    same_party.seller = same_party.buyer;
    for (name, terms) in [("amount over the policy", over_policy), ("threshold zero", zero_threshold)] {
        let id = terms.id();
        let reason = Some(terms.validate().expect_err(name).to_string());
        let (mut deal, outputs) = NotaryDeal::accept(&notaries()[0], &signed(terms), T0).expect(name);
        assert_eq!(outputs, vec![NotaryOutput::Record { deal_id: id, decision: Decision::Abort, reason }], "{name}");
        // Even both reservations do not turn the abort into a commit.
        let payment = expected_request(deal.terms(), id, LegKind::Payment);
        let delivery = expected_request(deal.terms(), id, LegKind::Delivery);
        assert_eq!(deal.observe(T0 + 1, &reserved(payment), &Unrestricted), vec![]);
        assert_eq!(deal.observe(T0 + 2, &reserved(delivery), &Unrestricted), vec![]);
        let outputs = deal.recorded(&notaries()[0]);
        assert!(
            matches!(outputs.as_slice(), [NotaryOutput::Vote(v)] if v.decision == Decision::Abort),
            "{name}: {outputs:?}"
        );
    }
    // Buyer and seller the same party: signed "by both" with one key.
    let id = same_party.id();
    let deal = SignedDeal {
        buyer_signature: buyer().sign_deal(id),
        seller_signature: buyer().sign_deal(id),
        terms: same_party,
    };
    let reason = Some(deal.terms.validate().expect_err("same party").to_string());
    let (_, outputs) = NotaryDeal::accept(&notaries()[0], &deal, T0).expect("signatures verify");
    assert_eq!(outputs, vec![NotaryOutput::Record { deal_id: id, decision: Decision::Abort, reason }]);
}

#[test]
fn restored_undecided_deal_watches_again() {
    let mut deal = NotaryDeal::restore(Arc::new(terms()), None);
    assert_eq!(deal.deal_id(), terms().id());
    assert_eq!(deal.decision(), None);
    assert_eq!(deal.vote(&notaries()[0]), None);
    deal.observe(T0 + 1, &reserved(agreed(LegKind::Delivery)), &Unrestricted);
    assert_eq!(deal.observe(T0 + 2, &reserved(agreed(LegKind::Payment)), &Unrestricted), record(Decision::Commit));
}

/// An input a notary may get after it restarts.
#[derive(Clone, Debug)]
enum Input {
    Reserved { leg: LegKind, matching: bool },
    Tick,
}

fn input() -> impl Strategy<Value = Input> {
    prop_oneof![
        (any::<bool>(), any::<bool>()).prop_map(|(payment, matching)| Input::Reserved {
            leg: if payment { LegKind::Payment } else { LegKind::Delivery },
            matching,
        }),
        Just(Input::Tick),
    ]
}

fn event(leg: LegKind, matching: bool) -> EscrowEvent {
    let mut request = agreed(leg);
    if !matching {
        request.expiry_ms += 1;
    }
    reserved(request)
}

/// Inputs at increasing times from `T0` to well past the deadline.
fn schedule() -> impl Strategy<Value = Vec<(u64, Input)>> {
    proptest::collection::vec((0..2 * (DEADLINE - T0), input()), 0..12).prop_map(|mut inputs| {
        inputs.sort_by_key(|(offset, _)| *offset);
        inputs.into_iter().map(|(offset, input)| (T0 + offset, input)).collect()
    })
}

fn feed(deal: &mut NotaryDeal, now_ms: u64, input: &Input) -> Vec<NotaryOutput> {
    match input {
        Input::Reserved { leg, matching } => deal.observe(now_ms, &event(*leg, *matching), &Unrestricted),
        Input::Tick => deal.tick(now_ms, &Unrestricted),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// After a restart with a recorded decision the notary signs that decision, and
    /// only that one, whatever it sees next.
    #[test]
    fn restored_notary_signs_only_its_recorded_decision(
        commit in any::<bool>(),
        schedule in schedule(),
        signer in 0usize..3,
    ) {
        let recorded = if commit { Decision::Commit } else { Decision::Abort };
        let key = &notaries()[signer];
        let mut deal = NotaryDeal::restore(Arc::new(terms()), Some(recorded));
        prop_assert_eq!(deal.decision(), Some(recorded));
        prop_assert_eq!(deal.wake_at_ms(), None);
        let expected = key.sign_decision(terms().id(), recorded);
        prop_assert_eq!(deal.vote(key), Some(expected));
        for (now_ms, input) in &schedule {
            prop_assert_eq!(feed(&mut deal, *now_ms, input), vec![]);
            prop_assert_eq!(deal.vote(key), Some(expected));
        }
        let vote = deal.vote(key).expect("recorded");
        prop_assert_eq!(vote.decision, recorded);
        prop_assert_eq!(vote.signer(), Some(key.address()));
    }

    /// A fresh notary decides at most once: commit exactly when both matching
    /// reservations arrived before the deadline; abort once anything reaches it
    /// at or after the deadline without them.
    #[test]
    fn notary_decides_once_and_as_the_rule_says(schedule in schedule()) {
        let mut deal = accepted();
        let mut records = Vec::new();
        for (now_ms, input) in &schedule {
            for output in feed(&mut deal, *now_ms, input) {
                match output {
                    NotaryOutput::Record { deal_id, decision, .. } => {
                        prop_assert_eq!(deal_id, terms().id());
                        records.push(decision);
                    }
                    NotaryOutput::Vote(vote) => {
                        prop_assert!(false, "vote {:?} before recording", vote);
                    }
                }
            }
        }
        let in_time = |leg| {
            schedule.iter().any(|(now_ms, input)| {
                matches!(input, Input::Reserved { leg: l, matching: true } if *l == leg)
                    && *now_ms < DEADLINE
            })
        };
        let reached_deadline = schedule.iter().any(|(now_ms, _)| *now_ms >= DEADLINE);
        let expected = if in_time(LegKind::Payment) && in_time(LegKind::Delivery) {
            vec![Decision::Commit]
        } else if reached_deadline {
            vec![Decision::Abort]
        } else {
            vec![]
        };
        prop_assert_eq!(records, expected);
    }
}

/// A party id that is not a valid ed25519 point is refused, not a panic.
#[test]
fn invalid_party_key_is_refused() {
    let mut terms = terms();
    // y = 2 has no x on edwards25519, so these bytes are not a public key.
    let mut bytes = [0u8; 32];
    bytes[0] = 2;
    terms.buyer = PartyId(bytes);
    let deal = signed(terms);
    let result = NotaryDeal::accept(&notaries()[0], &deal, T0);
    assert!(matches!(result, Err(NotaryError::BuyerSignature(SignatureError::PublicKey))), "{result:?}");
}

/// Terms arrive from outside (a `SignedDeal` is `Deserialize`), so terms beyond
/// the limits must be refused with an error. `accept` hashes them before it
/// checks them, and the hash asserts the limits.
#[test]
fn accept_refuses_oversized_terms_without_panicking() {
    let mut terms = terms();
    terms.observers = vec![PartyId([9; 32]); 200];
    let deal =
        SignedDeal { terms, buyer_signature: Ed25519Signature([0; 64]), seller_signature: Ed25519Signature([0; 64]) };
    let result = NotaryDeal::accept(&notaries()[0], &deal, T0);
    assert!(result.is_err(), "{result:?}");
}
