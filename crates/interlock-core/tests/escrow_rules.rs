//! The escrow rules, case by case: who may execute or cancel which reservation,
//! with which token and when, where the asset goes, and that a refused operation
//! changes nothing.

mod common;

use common::TestLedger;
use interlock_core::crypto::{Certificate, CertificateError, Decision, NotaryKey, RecoverableSignature, Secret, Token};
use interlock_core::escrow::{self, Condition, EscrowContext, EscrowError, EscrowEvent, EscrowOp, ReserveRequest};
use interlock_core::{
    reservation_id, Address, Asset, AssetCode, DealId, Hash32, ItemId, LegKind, NotaryAddress, ReservationId,
    ReservationState,
};

const T0: u64 = 1_000_000;
/// Expiry of the hashlock reservation.
const HASHLOCK_EXPIRY: u64 = T0 + 10_000;
/// Backstop expiry of the notary reservations.
const BACKSTOP_EXPIRY: u64 = T0 + 20_000;
/// Long after every expiry.
const LATE: u64 = T0 + 1_000_000;

const BUYER: Address = Address::from_bytes([0xb0; 32]);
const SELLER: Address = Address::from_bytes([0x5e; 20]);
const MALLORY: Address = Address::from_bytes([0x66; 32]);

const SECRET: Secret = Secret([0x5c; 32]);
const THRESHOLD: u8 = 2;

fn usd() -> AssetCode {
    AssetCode::new("USD").expect("valid code")
}
fn deed() -> AssetCode {
    AssetCode::new("DEED").expect("valid code")
}
fn dollars(amount: u128) -> Asset {
    Asset::Fungible { code: usd(), amount }
}
fn deed_item() -> Asset {
    Asset::Unique { class: deed(), item: ItemId::from_u128(42) }
}

fn deal(name: &str) -> DealId {
    DealId(Hash32::sha256(&[name.as_bytes()]))
}
fn hashlock_deal() -> DealId {
    deal("hashlock deal")
}
fn notary_deal() -> DealId {
    deal("notary deal")
}

/// The hashlock reservation: 100 USD from the buyer to the seller.
fn hashlock_payment() -> ReservationId {
    reservation_id(hashlock_deal(), LegKind::Payment)
}
/// The notary reservation of fungible funds: 100 USD from the buyer to the seller.
fn notary_payment() -> ReservationId {
    reservation_id(notary_deal(), LegKind::Payment)
}
/// The notary reservation of a unique item: the deed from the seller to the buyer.
fn notary_delivery() -> ReservationId {
    reservation_id(notary_deal(), LegKind::Delivery)
}

fn notary(seed: u8) -> NotaryKey {
    NotaryKey::from_seed([seed; 32]).expect("valid scalar")
}
/// The deal's notary set: three notaries, two of them needed.
fn notaries() -> [NotaryKey; 3] {
    [notary(1), notary(2), notary(3)]
}
fn notary_set() -> Vec<NotaryAddress> {
    notaries().iter().map(NotaryKey::address).collect()
}
fn outsider() -> NotaryKey {
    notary(9)
}

/// A certificate for `deal_id` deciding `decision`, signed by `signers` in order.
fn certificate(deal_id: DealId, decision: Decision, signers: &[&NotaryKey]) -> Certificate {
    Certificate {
        deal_id,
        decision,
        signatures: signers.iter().map(|key| key.sign_decision(deal_id, decision).signature).collect(),
    }
}
/// A certificate of the notary deal signed by the first `count` notaries.
fn quorum(decision: Decision, count: usize) -> Certificate {
    let keys = notaries();
    let signers: Vec<&NotaryKey> = keys.iter().take(count).collect();
    certificate(notary_deal(), decision, &signers)
}

fn notary_condition() -> Condition {
    Condition::Notary { notaries: notary_set(), threshold: THRESHOLD }
}

fn hashlock_request() -> ReserveRequest {
    ReserveRequest {
        deal_id: hashlock_deal(),
        leg: LegKind::Payment,
        asset: dollars(100),
        owner: BUYER,
        beneficiary: SELLER,
        keeper: None,
        condition: Condition::Hashlock(SECRET.hash()),
        expiry_ms: HASHLOCK_EXPIRY,
    }
}

/// A fresh reservation request of a deal not yet reserved anywhere.
fn new_request() -> ReserveRequest {
    ReserveRequest {
        deal_id: deal("new deal"),
        leg: LegKind::Payment,
        asset: dollars(100),
        owner: BUYER,
        beneficiary: SELLER,
        keeper: None,
        condition: notary_condition(),
        expiry_ms: BACKSTOP_EXPIRY,
    }
}

/// The buyer holds 1000 USD and has reserved 100 USD under a hashlock and 100 USD
/// under the notaries; the seller has reserved its deed under the notaries.
fn fixture() -> TestLedger {
    let mut ledger = TestLedger::default();
    ledger.issue(BUYER, &dollars(1_000));
    ledger.issue(SELLER, &deed_item());
    let requests = [
        hashlock_request(),
        ReserveRequest {
            deal_id: notary_deal(),
            condition: notary_condition(),
            expiry_ms: BACKSTOP_EXPIRY,
            ..hashlock_request()
        },
        ReserveRequest {
            deal_id: notary_deal(),
            leg: LegKind::Delivery,
            asset: deed_item(),
            owner: SELLER,
            beneficiary: BUYER,
            keeper: None,
            condition: notary_condition(),
            expiry_ms: BACKSTOP_EXPIRY,
        },
    ];
    for request in requests {
        let signer = request.owner;
        escrow::apply(&mut ledger, &signer, &EscrowOp::Reserve(request), T0).expect("fixture reservations are valid");
    }
    ledger
}

fn execute(reservation: ReservationId, token: Token) -> EscrowOp {
    EscrowOp::Execute { reservation, token }
}
fn cancel(reservation: ReservationId, certificate: Option<Certificate>) -> EscrowOp {
    EscrowOp::Cancel { reservation, certificate }
}

/// What an operation must do.
#[derive(Debug)]
enum Expect {
    /// A new reservation, its asset locked.
    Reserved,
    /// The reserved asset went to the beneficiary.
    Executed,
    /// The reserved asset went back to the owner.
    Cancelled,
    /// Refused with an error this predicate accepts, and nothing changed.
    Refused(fn(&EscrowError) -> bool),
}

/// Applies `op` signed by `signer` at `now_ms` to a fresh [`fixture`] and checks
/// the outcome, the balances, conservation and that a settled reservation settles
/// only once.
fn check(name: &str, signer: Address, op: EscrowOp, now_ms: u64, expect: Expect) {
    let mut ledger = fixture();
    let before = ledger.clone();
    let result = escrow::apply(&mut ledger, &signer, &op, now_ms);
    let id = op.reservation_id();
    match (&expect, &result) {
        (Expect::Refused(is_expected), Err(error)) => {
            assert!(is_expected(error), "{name}: refused for the wrong reason: {error}");
            assert_eq!(ledger, before, "{name}: a refused operation changed the ledger");
        }
        (Expect::Reserved, Ok(EscrowEvent::Reserved(reservation))) => {
            assert_eq!(reservation.id, id, "{name}");
            assert_eq!(ledger.state(&id), Some(ReservationState::Reserved), "{name}");
            let moved = amount(&reservation.asset);
            assert_eq!(
                ledger.holds(&reservation.owner, &reservation.asset),
                before.holds(&reservation.owner, &reservation.asset) - moved,
                "{name}: the owner's asset is locked"
            );
        }
        (Expect::Executed, Ok(EscrowEvent::Executed { to, asset, by, .. })) => {
            let reservation = before.reservation(&id).expect("executed a fixture reservation");
            assert_eq!(*to, reservation.beneficiary, "{name}: executed to the beneficiary");
            assert_eq!(*by, signer, "{name}");
            assert_eq!(*asset, reservation.asset, "{name}");
            check_moved(name, &before, &ledger, to, asset);
            assert_eq!(ledger.state(&id), Some(ReservationState::Executed), "{name}");
            check_settles_once(name, &mut ledger, id);
        }
        (Expect::Cancelled, Ok(EscrowEvent::Cancelled { to, asset, by, .. })) => {
            let reservation = before.reservation(&id).expect("cancelled a fixture reservation");
            assert_eq!(*to, reservation.owner, "{name}: cancelled back to the owner");
            assert_eq!(*by, signer, "{name}");
            assert_eq!(*asset, reservation.asset, "{name}");
            check_moved(name, &before, &ledger, to, asset);
            assert_eq!(ledger.state(&id), Some(ReservationState::Cancelled), "{name}");
            check_settles_once(name, &mut ledger, id);
        }
        _ => panic!("{name}: expected {expect:?}, got {result:?}"),
    }
    for code in [usd(), deed()] {
        assert_eq!(ledger.total(&code), before.total(&code), "{name}: {code} conserved");
    }
}

fn amount(asset: &Asset) -> u128 {
    match asset {
        Asset::Fungible { amount, .. } => *amount,
        Asset::Unique { .. } => 1,
    }
}

/// `asset` left escrow for `to`, and no other account's holding changed.
fn check_moved(name: &str, before: &TestLedger, after: &TestLedger, to: &Address, asset: &Asset) {
    assert_eq!(after.holds(to, asset), before.holds(to, asset) + amount(asset), "{name}: {to:?} received {asset}");
    for other in [BUYER, SELLER, MALLORY].iter().filter(|a| *a != to) {
        assert_eq!(after.holds(other, asset), before.holds(other, asset), "{name}: {other:?} unaffected");
    }
}

/// A settled reservation refuses every further execute and cancel.
fn check_settles_once(name: &str, ledger: &mut TestLedger, id: ReservationId) {
    let settled = ledger.clone();
    let again = [
        (SELLER, execute(id, Token::Secret(SECRET))),
        (SELLER, execute(id, Token::Certificate(quorum(Decision::Commit, 3)))),
        (BUYER, execute(id, Token::Certificate(quorum(Decision::Commit, 3)))),
        (MALLORY, cancel(id, None)),
        (MALLORY, cancel(id, Some(quorum(Decision::Abort, 3)))),
    ];
    for (signer, op) in again {
        let result = escrow::apply(ledger, &signer, &op, LATE);
        assert!(matches!(result, Err(EscrowError::AlreadySettled { .. })), "{name}: {op:?} after settling: {result:?}");
        assert_eq!(*ledger, settled, "{name}: a second settlement changed the ledger");
    }
}

/// Refused with an error that matches the pattern, and nothing changed.
macro_rules! refused {
    ($error:pat) => {
        Expect::Refused(|e| matches!(e, $error))
    };
}

/// Refused for a bad certificate, with a certificate error that matches the
/// pattern, and nothing changed.
macro_rules! bad_certificate {
    ($error:pat) => {
        refused!(EscrowError::BadCertificate { error: $error, .. })
    };
}

#[test]
fn hashlock_reservations() {
    let secret = || Token::Secret(SECRET);
    let wrong_secret = Token::Secret(Secret([0x5d; 32]));
    let cases = [
        (
            "beneficiary with the secret before expiry",
            SELLER,
            execute(hashlock_payment(), secret()),
            HASHLOCK_EXPIRY - 1,
            Expect::Executed,
        ),
        (
            "beneficiary with the secret at expiry",
            SELLER,
            execute(hashlock_payment(), secret()),
            HASHLOCK_EXPIRY,
            refused!(EscrowError::Expired { .. }),
        ),
        (
            "beneficiary with a wrong secret",
            SELLER,
            execute(hashlock_payment(), wrong_secret),
            T0,
            refused!(EscrowError::WrongSecret(_)),
        ),
        (
            "owner with the secret",
            BUYER,
            execute(hashlock_payment(), secret()),
            T0,
            refused!(EscrowError::NotBeneficiary { .. }),
        ),
        (
            "stranger with the secret",
            MALLORY,
            execute(hashlock_payment(), secret()),
            T0,
            refused!(EscrowError::NotBeneficiary { .. }),
        ),
        (
            "beneficiary with a certificate",
            SELLER,
            execute(hashlock_payment(), Token::Certificate(quorum(Decision::Commit, 2))),
            T0,
            refused!(EscrowError::WrongTokenKind { .. }),
        ),
        (
            "owner cancels before expiry",
            BUYER,
            cancel(hashlock_payment(), None),
            HASHLOCK_EXPIRY - 1,
            refused!(EscrowError::NotExpired { .. }),
        ),
        ("owner cancels at expiry", BUYER, cancel(hashlock_payment(), None), HASHLOCK_EXPIRY, Expect::Cancelled),
        (
            "stranger cancels after expiry: funds go to the owner",
            MALLORY,
            cancel(hashlock_payment(), None),
            LATE,
            Expect::Cancelled,
        ),
        (
            "beneficiary cancels after expiry: funds go to the owner",
            SELLER,
            cancel(hashlock_payment(), None),
            HASHLOCK_EXPIRY + 1,
            Expect::Cancelled,
        ),
        (
            "cancel with a certificate",
            BUYER,
            cancel(hashlock_payment(), Some(quorum(Decision::Abort, 2))),
            T0,
            refused!(EscrowError::WrongTokenKind { .. }),
        ),
        (
            "unknown reservation",
            SELLER,
            execute(reservation_id(deal("nothing"), LegKind::Payment), secret()),
            T0,
            refused!(EscrowError::UnknownReservation(_)),
        ),
    ];
    for (name, signer, op, now_ms, expect) in cases {
        check(name, signer, op, now_ms, expect);
    }
}

#[test]
fn notary_reservations() {
    let keys = notaries();
    let commit = |count| Token::Certificate(quorum(Decision::Commit, count));
    let abort = |count| Some(quorum(Decision::Abort, count));
    let cases = [
        (
            "beneficiary with a 2-of-3 commit certificate",
            SELLER,
            execute(notary_payment(), commit(2)),
            T0,
            Expect::Executed,
        ),
        (
            "beneficiary with a 3-of-3 commit certificate",
            SELLER,
            execute(notary_payment(), commit(3)),
            T0,
            Expect::Executed,
        ),
        (
            "commit certificate of the last two notaries",
            SELLER,
            execute(
                notary_payment(),
                Token::Certificate(certificate(notary_deal(), Decision::Commit, &[&keys[2], &keys[1]])),
            ),
            T0,
            Expect::Executed,
        ),
        (
            // The notaries committed, so executing is the agreed outcome even late.
            "commit certificate after the backstop expiry",
            SELLER,
            execute(notary_payment(), commit(2)),
            LATE,
            Expect::Executed,
        ),
        ("unique item with a commit certificate", BUYER, execute(notary_delivery(), commit(2)), T0, Expect::Executed),
        (
            "one signature of two needed",
            SELLER,
            execute(notary_payment(), commit(1)),
            T0,
            bad_certificate!(CertificateError::BelowThreshold { .. }),
        ),
        (
            "no signature at all",
            SELLER,
            execute(notary_payment(), commit(0)),
            T0,
            bad_certificate!(CertificateError::BelowThreshold { .. }),
        ),
        (
            "signer outside the notary set",
            SELLER,
            execute(
                notary_payment(),
                Token::Certificate(certificate(notary_deal(), Decision::Commit, &[&keys[0], &outsider()])),
            ),
            T0,
            bad_certificate!(CertificateError::NotInSet { index: 1, .. }),
        ),
        (
            "outsider added to a valid quorum",
            SELLER,
            execute(
                notary_payment(),
                Token::Certificate(certificate(notary_deal(), Decision::Commit, &[&keys[0], &keys[1], &outsider()])),
            ),
            T0,
            bad_certificate!(CertificateError::NotInSet { .. }),
        ),
        (
            "duplicated signer",
            SELLER,
            execute(
                notary_payment(),
                Token::Certificate(certificate(notary_deal(), Decision::Commit, &[&keys[1], &keys[1]])),
            ),
            T0,
            bad_certificate!(CertificateError::Duplicate { index: 1, .. }),
        ),
        (
            "certificate for another deal",
            SELLER,
            execute(
                notary_payment(),
                Token::Certificate(certificate(deal("another deal"), Decision::Commit, &[&keys[0], &keys[1]])),
            ),
            T0,
            bad_certificate!(CertificateError::WrongDeal { .. }),
        ),
        (
            "another deal's signatures relabelled as this deal's",
            SELLER,
            execute(
                notary_payment(),
                Token::Certificate(Certificate {
                    deal_id: notary_deal(),
                    ..certificate(deal("another deal"), Decision::Commit, &[&keys[0], &keys[1]])
                }),
            ),
            T0,
            refused!(EscrowError::BadCertificate { .. }),
        ),
        (
            "abort signatures relabelled as commit",
            SELLER,
            execute(
                notary_payment(),
                Token::Certificate(Certificate { decision: Decision::Commit, ..quorum(Decision::Abort, 3) }),
            ),
            T0,
            refused!(EscrowError::BadCertificate { .. }),
        ),
        (
            "malformed signature bytes",
            SELLER,
            execute(
                notary_payment(),
                Token::Certificate(Certificate {
                    signatures: vec![RecoverableSignature([0; 65]), quorum(Decision::Commit, 2).signatures[1]],
                    ..quorum(Decision::Commit, 2)
                }),
            ),
            T0,
            bad_certificate!(CertificateError::BadSignature { index: 0 }),
        ),
        (
            "execute with an abort certificate",
            SELLER,
            execute(notary_payment(), Token::Certificate(quorum(Decision::Abort, 3))),
            T0,
            bad_certificate!(CertificateError::WrongDecision { .. }),
        ),
        (
            "owner executes with a commit certificate",
            BUYER,
            execute(notary_payment(), commit(2)),
            T0,
            refused!(EscrowError::NotBeneficiary { .. }),
        ),
        (
            "stranger executes with a commit certificate",
            MALLORY,
            execute(notary_payment(), commit(3)),
            T0,
            refused!(EscrowError::NotBeneficiary { .. }),
        ),
        (
            "execute with a secret",
            SELLER,
            execute(notary_payment(), Token::Secret(SECRET)),
            T0,
            refused!(EscrowError::WrongTokenKind { .. }),
        ),
        (
            "stranger cancels with an abort certificate before expiry",
            MALLORY,
            cancel(notary_payment(), abort(2)),
            T0,
            Expect::Cancelled,
        ),
        (
            "unique item back to its owner on an abort certificate",
            BUYER,
            cancel(notary_delivery(), abort(3)),
            T0,
            Expect::Cancelled,
        ),
        (
            "cancel with a commit certificate",
            BUYER,
            cancel(notary_payment(), Some(quorum(Decision::Commit, 3))),
            T0,
            bad_certificate!(CertificateError::WrongDecision { .. }),
        ),
        (
            "cancel with a commit certificate after the backstop expiry",
            BUYER,
            cancel(notary_payment(), Some(quorum(Decision::Commit, 3))),
            LATE,
            bad_certificate!(CertificateError::WrongDecision { .. }),
        ),
        (
            "cancel with one abort signature of two needed",
            BUYER,
            cancel(notary_payment(), abort(1)),
            T0,
            bad_certificate!(CertificateError::BelowThreshold { .. }),
        ),
        (
            "cancel with an outsider's abort signature",
            BUYER,
            cancel(notary_payment(), Some(certificate(notary_deal(), Decision::Abort, &[&outsider(), &keys[0]]))),
            T0,
            bad_certificate!(CertificateError::NotInSet { index: 0, .. }),
        ),
        (
            "cancel with a duplicated abort signer",
            BUYER,
            cancel(notary_payment(), Some(certificate(notary_deal(), Decision::Abort, &[&keys[2], &keys[2]]))),
            T0,
            bad_certificate!(CertificateError::Duplicate { .. }),
        ),
        (
            "cancel with another deal's abort certificate",
            BUYER,
            cancel(notary_payment(), Some(certificate(deal("another deal"), Decision::Abort, &[&keys[0], &keys[1]]))),
            T0,
            bad_certificate!(CertificateError::WrongDeal { .. }),
        ),
        (
            "owner cancels without a certificate before the backstop",
            BUYER,
            cancel(notary_payment(), None),
            BACKSTOP_EXPIRY - 1,
            refused!(EscrowError::NotExpired { .. }),
        ),
        (
            "stranger cancels at the backstop: funds go to the owner",
            MALLORY,
            cancel(notary_payment(), None),
            BACKSTOP_EXPIRY,
            Expect::Cancelled,
        ),
        (
            "beneficiary cancels the unique item after the backstop",
            BUYER,
            cancel(notary_delivery(), None),
            LATE,
            Expect::Cancelled,
        ),
    ];
    for (name, signer, op, now_ms, expect) in cases {
        check(name, signer, op, now_ms, expect);
    }
}

#[test]
fn reserve() {
    let reserve = EscrowOp::Reserve;
    let cases = [
        ("owner reserves", BUYER, reserve(new_request()), T0, Expect::Reserved),
        (
            "owner reserves all it has left",
            BUYER,
            reserve(ReserveRequest { asset: dollars(800), ..new_request() }),
            T0,
            Expect::Reserved,
        ),
        (
            "owner reserves under a hashlock",
            BUYER,
            reserve(ReserveRequest { condition: Condition::Hashlock(SECRET.hash()), ..new_request() }),
            T0,
            Expect::Reserved,
        ),
        (
            "stranger reserves the owner's funds",
            MALLORY,
            reserve(new_request()),
            T0,
            refused!(EscrowError::NotOwner { .. }),
        ),
        (
            "beneficiary reserves the owner's funds",
            SELLER,
            reserve(new_request()),
            T0,
            refused!(EscrowError::NotOwner { .. }),
        ),
        (
            "the same leg twice",
            BUYER,
            reserve(ReserveRequest { deal_id: notary_deal(), ..new_request() }),
            T0,
            refused!(EscrowError::AlreadyReserved(_)),
        ),
        (
            "more than the owner holds",
            BUYER,
            reserve(ReserveRequest { asset: dollars(801), ..new_request() }),
            T0,
            refused!(EscrowError::InsufficientFunds { .. }),
        ),
        (
            "an item already in escrow",
            SELLER,
            reserve(ReserveRequest { asset: deed_item(), owner: SELLER, beneficiary: BUYER, ..new_request() }),
            T0,
            refused!(EscrowError::NotItemOwner { .. }),
        ),
        (
            "zero amount",
            BUYER,
            reserve(ReserveRequest { asset: dollars(0), ..new_request() }),
            T0,
            refused!(EscrowError::ZeroAmount),
        ),
        ("expiry now", BUYER, reserve(new_request()), BACKSTOP_EXPIRY, refused!(EscrowError::ExpiryInPast { .. })),
        (
            "owner as beneficiary",
            BUYER,
            reserve(ReserveRequest { beneficiary: BUYER, ..new_request() }),
            T0,
            refused!(EscrowError::SelfDealing(_)),
        ),
        (
            "threshold zero",
            BUYER,
            reserve(ReserveRequest {
                condition: Condition::Notary { notaries: notary_set(), threshold: 0 },
                ..new_request()
            }),
            T0,
            refused!(EscrowError::NotarySet { .. }),
        ),
        (
            "threshold above the set",
            BUYER,
            reserve(ReserveRequest {
                condition: Condition::Notary { notaries: notary_set(), threshold: 4 },
                ..new_request()
            }),
            T0,
            refused!(EscrowError::NotarySet { .. }),
        ),
        (
            "a notary named twice",
            BUYER,
            reserve(ReserveRequest {
                condition: Condition::Notary { notaries: vec![notary(1).address(), notary(1).address()], threshold: 2 },
                ..new_request()
            }),
            T0,
            refused!(EscrowError::NotarySet { .. }),
        ),
    ];
    for (name, signer, op, now_ms, expect) in cases {
        check(name, signer, op, now_ms, expect);
    }
}

/// A duplicated signer must not stand in for a missing one, whatever the order.
#[test]
fn duplicated_signers_never_reach_a_threshold() {
    let keys = notaries();
    for (first, second) in [(0, 0), (1, 1), (2, 2)] {
        for decision in [Decision::Commit, Decision::Abort] {
            let duplicated = certificate(notary_deal(), decision, &[&keys[first], &keys[second]]);
            let result = duplicated.verify(notary_deal(), decision, &notary_set(), THRESHOLD);
            assert!(
                matches!(result, Err(CertificateError::Duplicate { .. })),
                "{decision} by notary {first} twice: {result:?}"
            );
        }
    }
}

/// A script chain's rules (`Rules::script`): a beneficiary's claim with the
/// secret is still taken after the expiry; only the owner takes a lapsed leg
/// back, and only once the lagging chain time has passed the expiry.
#[test]
fn script_chain_rules_take_late_claims_and_refunds_from_the_owner_alone_after_the_lag() {
    use interlock_core::Rules;
    const LAG: u64 = 900;
    let rules = Rules::script(LAG);
    let under = |signer: Address, op: EscrowOp, now_ms: u64| {
        let mut ledger = fixture();
        let result = escrow::apply_under(&mut ledger, &signer, &op, now_ms, rules);
        (result, ledger.state(&op.reservation_id()))
    };
    let late = HASHLOCK_EXPIRY + 5_000;
    let (claimed, state) = under(SELLER, execute(hashlock_payment(), Token::Secret(SECRET)), late);
    assert!(claimed.is_ok(), "a late claim is taken on a script chain: {claimed:?}");
    assert_eq!(state, Some(ReservationState::Executed));
    let claim = execute(hashlock_payment(), Token::Secret(SECRET));
    let refused = escrow::apply(&mut fixture(), &SELLER, &claim, late).expect_err("refused on an account chain");
    assert!(matches!(refused, EscrowError::Expired { .. }), "and refused on an account chain: {refused}");

    let (early, state) = under(BUYER, cancel(hashlock_payment(), None), HASHLOCK_EXPIRY + LAG - 1);
    assert!(matches!(early, Err(EscrowError::NotExpired { .. })), "before the lag passes: {early:?}");
    assert_eq!(state, Some(ReservationState::Reserved));
    let (stranger, _) = under(MALLORY, cancel(hashlock_payment(), None), LATE);
    assert!(matches!(stranger, Err(EscrowError::NotOwner { .. })), "only the owner refunds: {stranger:?}");
    let (refund, state) = under(BUYER, cancel(hashlock_payment(), None), HASHLOCK_EXPIRY + LAG);
    assert!(refund.is_ok(), "the owner once the lag passed: {refund:?}");
    assert_eq!(state, Some(ReservationState::Cancelled));
}
