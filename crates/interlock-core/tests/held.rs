//! The escrow rules of a deal with an inspection period: a commit certificate
//! holds each leg for its beneficiary instead of paying it; the notaries'
//! verdict, presented by anyone, releases both legs to their beneficiaries or
//! reverses both to their owners; a held leg never expires; and a verdict with
//! too few or foreign signatures, for another deal, or of the wrong kind is
//! refused and changes nothing.

mod common;

use common::TestLedger;
use interlock_core::crypto::{Certificate, CertificateError, Decision, NotaryKey, Token};
use interlock_core::escrow::{self, Condition, EscrowContext, EscrowError, EscrowEvent, EscrowOp, ReserveRequest};
use interlock_core::{
    reservation_id, Address, Asset, AssetCode, DealId, Hash32, ItemId, LegKind, ReservationId, ReservationState,
};

const T0: u64 = 1_000_000;
const BACKSTOP_EXPIRY: u64 = T0 + 20_000;
const LATE: u64 = T0 + 1_000_000;

const BUYER: Address = Address::from_bytes([0xb0; 32]);
const SELLER: Address = Address::from_bytes([0x5e; 20]);
const MALLORY: Address = Address::from_bytes([0x66; 32]);

fn code(text: &str) -> AssetCode {
    AssetCode::new(text).expect("valid code")
}
fn dollars() -> Asset {
    Asset::Fungible { code: code("USD"), amount: 100 }
}
fn deed() -> Asset {
    Asset::Unique { class: code("DEED"), item: ItemId::from_u128(42) }
}
fn deal_named(name: &str) -> DealId {
    DealId(Hash32::sha256(&[name.as_bytes()]))
}
fn notaries() -> [NotaryKey; 3] {
    [1, 2, 3].map(|seed| NotaryKey::from_seed([seed; 32]).expect("valid scalar"))
}
fn inspected() -> Condition {
    Condition::Inspected { notaries: notaries().iter().map(NotaryKey::address).collect(), threshold: 2 }
}
fn certificate(deal_id: DealId, decision: Decision, signers: &[&NotaryKey]) -> Certificate {
    let signatures = signers.iter().map(|key| key.sign_decision(deal_id, decision).signature).collect();
    Certificate { deal_id, decision, signatures }
}
/// The deal's certificate deciding `decision`, signed by two of its three notaries.
fn quorum(deal_id: DealId, decision: Decision) -> Certificate {
    let [first, second, _] = notaries();
    certificate(deal_id, decision, &[&first, &second])
}

/// The buyer's 100 USD for the seller's deed, both legs reserved under the
/// inspection condition; `executed` legs executed with the commit certificate.
struct Deal {
    ledger: TestLedger,
    deal_id: DealId,
}

impl Deal {
    fn reserved() -> Deal {
        let deal_id = deal_named("inspected deal");
        let mut ledger = TestLedger::default();
        ledger.issue(BUYER, &dollars());
        ledger.issue(SELLER, &deed());
        let payment = ReserveRequest {
            deal_id,
            leg: LegKind::Payment,
            asset: dollars(),
            owner: BUYER,
            beneficiary: SELLER,
            keeper: None,
            condition: inspected(),
            expiry_ms: BACKSTOP_EXPIRY,
        };
        let delivery = ReserveRequest {
            leg: LegKind::Delivery,
            asset: deed(),
            owner: SELLER,
            beneficiary: BUYER,
            ..payment.clone()
        };
        for request in [payment, delivery] {
            let owner = request.owner;
            escrow::apply(&mut ledger, &owner, &EscrowOp::Reserve(request), T0).expect("valid reservation");
        }
        Deal { ledger, deal_id }
    }

    fn held() -> Deal {
        let mut deal = Deal::reserved();
        for (leg, beneficiary) in [(LegKind::Payment, SELLER), (LegKind::Delivery, BUYER)] {
            let token = Token::Certificate(quorum(deal.deal_id, Decision::Commit));
            let op = EscrowOp::Execute { reservation: deal.id(leg), token };
            let event = escrow::apply(&mut deal.ledger, &beneficiary, &op, T0 + 1).expect("commit holds the leg");
            assert!(matches!(event, EscrowEvent::Held { beneficiary: to, .. } if to == beneficiary), "{event:?}");
        }
        deal
    }

    fn id(&self, leg: LegKind) -> ReservationId {
        reservation_id(self.deal_id, leg)
    }

    fn resolve(
        &mut self,
        by: Address,
        leg: LegKind,
        verdict: Certificate,
        now_ms: u64,
    ) -> Result<EscrowEvent, EscrowError> {
        let op = EscrowOp::Resolve { reservation: self.id(leg), verdict };
        escrow::apply(&mut self.ledger, &by, &op, now_ms)
    }

    /// (the buyer's USD, the seller's USD, the buyer holds the deed, the seller holds the deed)
    fn holdings(&self) -> (u128, u128, u128, u128) {
        let ledger = &self.ledger;
        (
            ledger.holds(&BUYER, &dollars()),
            ledger.holds(&SELLER, &dollars()),
            ledger.holds(&BUYER, &deed()),
            ledger.holds(&SELLER, &deed()),
        )
    }
}

#[test]
fn a_commit_holds_both_legs_in_escrow_and_a_held_leg_never_expires() {
    let mut deal = Deal::held();
    assert_eq!(deal.holdings(), (0, 0, 0, 0), "both assets stay in escrow");
    assert!(!deal.ledger.escrow_is_empty());
    for leg in [LegKind::Payment, LegKind::Delivery] {
        assert_eq!(deal.ledger.state(&deal.id(leg)), Some(ReservationState::Held));
        let held = deal.ledger.clone();
        let again = [
            (MALLORY, EscrowOp::Cancel { reservation: deal.id(leg), certificate: None }),
            (
                MALLORY,
                EscrowOp::Cancel {
                    reservation: deal.id(leg),
                    certificate: Some(quorum(deal.deal_id, Decision::Abort)),
                },
            ),
            (
                SELLER,
                EscrowOp::Execute {
                    reservation: deal.id(leg),
                    token: Token::Certificate(quorum(deal.deal_id, Decision::Commit)),
                },
            ),
        ];
        for (signer, op) in again {
            // Long after the backstop expiry: held is not reserved, so nothing lapses.
            let result = escrow::apply(&mut deal.ledger, &signer, &op, LATE);
            assert!(
                matches!(result, Err(EscrowError::AlreadySettled { state: ReservationState::Held, .. })),
                "{op:?}: {result:?}"
            );
            assert_eq!(deal.ledger, held, "a refused operation changed the ledger");
        }
    }
}

#[test]
fn a_release_presented_by_anyone_pays_both_beneficiaries_once() {
    let mut deal = Deal::held();
    let release = quorum(deal.deal_id, Decision::Release);
    for (leg, to) in [(LegKind::Payment, SELLER), (LegKind::Delivery, BUYER)] {
        let event = deal.resolve(MALLORY, leg, release.clone(), LATE).expect("a release resolves a held leg");
        let EscrowEvent::Executed { to: paid, by, token, .. } = event else { panic!("{event:?}") };
        assert_eq!((paid, by, token), (to, MALLORY, Token::Certificate(release.clone())));
        assert_eq!(deal.ledger.state(&deal.id(leg)), Some(ReservationState::Executed));
    }
    assert_eq!(deal.holdings(), (0, 100, 1, 0), "each asset reached its beneficiary");
    assert!(deal.ledger.escrow_is_empty());

    // A verdict is final: neither the same one nor the other moves anything again.
    let settled = deal.ledger.clone();
    for decision in [Decision::Release, Decision::Reverse] {
        let again = deal.resolve(BUYER, LegKind::Payment, quorum(deal.deal_id, decision), LATE);
        assert!(matches!(again, Err(EscrowError::NotHeld { state: ReservationState::Executed, .. })), "{again:?}");
        assert_eq!(deal.ledger, settled);
    }
}

#[test]
fn a_reverse_returns_both_assets_to_their_original_owners() {
    let mut deal = Deal::held();
    let reverse = quorum(deal.deal_id, Decision::Reverse);
    for (leg, owner) in [(LegKind::Payment, BUYER), (LegKind::Delivery, SELLER)] {
        let event = deal.resolve(SELLER, leg, reverse.clone(), T0 + 2).expect("a reverse resolves a held leg");
        assert!(matches!(event, EscrowEvent::Cancelled { to, .. } if to == owner), "{event:?}");
        assert_eq!(deal.ledger.state(&deal.id(leg)), Some(ReservationState::Cancelled));
    }
    assert_eq!(deal.holdings(), (100, 0, 0, 1), "balances equal to before the deal");
    assert!(deal.ledger.escrow_is_empty());
}

/// A verdict presented, and what its refusal must say.
type Case = (&'static str, Certificate, Box<dyn Fn(&EscrowError) -> bool>);

#[test]
fn a_bad_verdict_is_refused_and_changes_nothing() {
    let mut deal = Deal::held();
    let id = deal.deal_id;
    let [first, second, _] = notaries();
    let outsider = NotaryKey::from_seed([9; 32]).expect("valid scalar");
    let bad_certificate = |expected: fn(&CertificateError) -> bool| move |error: &EscrowError| matches!(error, EscrowError::BadCertificate { error, .. } if expected(error));
    let cases: Vec<Case> = vec![
        (
            "one signature of two",
            certificate(id, Decision::Release, &[&first]),
            Box::new(bad_certificate(|e| matches!(e, CertificateError::BelowThreshold { .. }))),
        ),
        (
            "a foreign notary",
            certificate(id, Decision::Release, &[&first, &outsider]),
            Box::new(bad_certificate(|e| matches!(e, CertificateError::NotInSet { .. }))),
        ),
        (
            "the same notary twice",
            certificate(id, Decision::Reverse, &[&second, &second]),
            Box::new(bad_certificate(|e| matches!(e, CertificateError::Duplicate { .. }))),
        ),
        (
            "another deal's verdict",
            quorum(deal_named("other deal"), Decision::Release),
            Box::new(bad_certificate(|e| matches!(e, CertificateError::WrongDeal { .. }))),
        ),
        (
            "a commit as a verdict",
            quorum(id, Decision::Commit),
            Box::new(|e: &EscrowError| matches!(e, EscrowError::NotAVerdict { found: Decision::Commit, .. })),
        ),
        (
            "an abort as a verdict",
            quorum(id, Decision::Abort),
            Box::new(|e: &EscrowError| matches!(e, EscrowError::NotAVerdict { found: Decision::Abort, .. })),
        ),
    ];
    // A release signature relabelled as a reverse does not verify.
    let mut relabelled = quorum(id, Decision::Release);
    relabelled.decision = Decision::Reverse;
    let relabelled_case: Case = (
        "a release relabelled as a reverse",
        relabelled,
        Box::new(bad_certificate(|e| {
            matches!(e, CertificateError::NotInSet { .. } | CertificateError::BadSignature { .. })
        })),
    );
    for (name, verdict, expected) in cases.into_iter().chain([relabelled_case]) {
        let before = deal.ledger.clone();
        let result = deal.resolve(BUYER, LegKind::Payment, verdict, T0 + 2);
        let error = result.expect_err(name);
        assert!(expected(&error), "{name}: refused for the wrong reason: {error}");
        assert_eq!(deal.ledger, before, "{name}: a refused verdict changed the ledger");
    }
}

#[test]
fn only_a_held_reservation_takes_a_verdict() {
    // Reserved but not executed: a verdict cannot skip the commit.
    let mut deal = Deal::reserved();
    let before = deal.ledger.clone();
    let early = deal.resolve(SELLER, LegKind::Payment, quorum(deal.deal_id, Decision::Release), T0 + 2);
    assert!(matches!(early, Err(EscrowError::NotHeld { state: ReservationState::Reserved, .. })), "{early:?}");
    let nowhere = reservation_id(deal_named("nowhere"), LegKind::Payment);
    let op = EscrowOp::Resolve { reservation: nowhere, verdict: quorum(deal.deal_id, Decision::Release) };
    let unknown = escrow::apply(&mut deal.ledger, &SELLER, &op, T0 + 2);
    assert!(matches!(unknown, Err(EscrowError::UnknownReservation(id)) if id == nowhere), "{unknown:?}");
    assert_eq!(deal.ledger, before);

    // Before a commit the inspected legs lapse and abort as any notary leg does.
    let abort = quorum(deal.deal_id, Decision::Abort);
    let op = EscrowOp::Cancel { reservation: deal.id(LegKind::Payment), certificate: Some(abort) };
    let event = escrow::apply(&mut deal.ledger, &MALLORY, &op, T0 + 2).expect("an abort cancels an inspected leg");
    assert!(matches!(event, EscrowEvent::Cancelled { to: BUYER, .. }), "{event:?}");
    let op = EscrowOp::Cancel { reservation: deal.id(LegKind::Delivery), certificate: None };
    escrow::apply(&mut deal.ledger, &MALLORY, &op, BACKSTOP_EXPIRY).expect("the backstop cancels an unexecuted leg");
    assert_eq!(deal.holdings(), (100, 0, 0, 1));
    let reservation = deal.ledger.reservation(&deal.id(LegKind::Payment)).expect("reserved");
    assert_eq!(reservation.state, ReservationState::Cancelled);
}
