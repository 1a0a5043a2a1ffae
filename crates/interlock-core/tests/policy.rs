//! The deal's policy: every approval rule refuses with a message naming it, the
//! notary aborts (with that message) instead of committing a deal that breaks
//! one, and the timeout policy moves the notaries' deadline once and tells
//! each party what happens.

use interlock_core::crypto::{Decision, NotaryKey, PartyKey, Secret};
use interlock_core::escrow::{EscrowEvent, ReserveRequest};
use interlock_core::limits::DAY_MS;
use interlock_core::notary::{NotaryDeal, NotaryOutput, SignedDeal};
use interlock_core::policy::{approve, timeout_notice, Approvals, TimeoutNotice, Unrestricted};
use interlock_core::saga::{expected_request, Role, Saga};
use interlock_core::{Asset, AssetCode, DealTerms, NetworkId, OnTimeout, PartyId, Policy, Settlement};
use std::collections::HashMap;
use std::sync::Arc;

const T0: u64 = 40 * DAY_MS + 1_000;
const DEADLINE: u64 = T0 + 5_000;
const BACKSTOP: u64 = T0 + 20_000;

fn buyer() -> PartyKey {
    PartyKey::from_seed([0xb1; 32])
}
fn seller() -> PartyKey {
    PartyKey::from_seed([0x5e; 32])
}
fn notary() -> NotaryKey {
    NotaryKey::from_seed([7; 32]).expect("valid scalar")
}
fn code(text: &str) -> AssetCode {
    AssetCode::new(text).expect("valid code")
}

/// 100 USD for 5 GOLD in notary mode, under `policy`.
fn terms(policy: Policy) -> DealTerms {
    let asset = |text: &str, amount| Asset::Fungible { code: code(text), amount };
    let settlement = Settlement::Notary {
        notaries: vec![notary().address()],
        threshold: 1,
        decision_deadline_ms: DEADLINE,
        backstop_expiry_ms: BACKSTOP,
    };
    let (payment, delivery) = ((NetworkId(1), asset("USD", 100)), (NetworkId(2), asset("GOLD", 5)));
    DealTerms { policy, ..DealTerms::swap(buyer().public(), seller().public(), payment, delivery, settlement) }
}

fn hashlock(mut terms: DealTerms) -> DealTerms {
    terms.settlement = Settlement::Hashlock {
        hash: Secret([9; 32]).hash(),
        payment_expiry_ms: T0 + 10_000,
        delivery_expiry_ms: T0 + 5_000,
        margin_ms: 5_000,
    };
    terms
}

/// A directory and a notary's daily totals, in memory.
#[derive(Default)]
struct Book {
    registered: Vec<PartyId>,
    moved: HashMap<(PartyId, AssetCode, u64), u128>,
}

impl Book {
    fn both_registered() -> Book {
        Book { registered: vec![buyer().public(), seller().public()], moved: HashMap::new() }
    }
}

impl Approvals for Book {
    fn registered(&self, party: PartyId) -> bool {
        self.registered.contains(&party)
    }
    fn moved_on_day(&self, party: PartyId, asset: &AssetCode, day: u64) -> u128 {
        self.moved.get(&(party, asset.clone(), day)).copied().unwrap_or(0)
    }
}

fn policy(edit: impl FnOnce(&mut Policy)) -> Policy {
    let mut policy = Policy::default();
    edit(&mut policy);
    policy
}

/// One case per rule: the terms, the notary's knowledge, and the refusal message.
#[test]
fn each_broken_rule_is_refused_with_a_message_naming_it() {
    let buyer_hex = interlock_core::hash::to_hex(&buyer().public().0);
    let seller_hex = interlock_core::hash::to_hex(&seller().public().0);
    let mut spent = Book::both_registered();
    spent.moved.insert((seller().public(), code("GOLD"), T0 / DAY_MS), 106);
    let only_seller = Book { registered: vec![seller().public()], ..Book::default() };
    let only_buyer = Book { registered: vec![buyer().public()], ..Book::default() };
    let cases: Vec<(&str, DealTerms, Book, String)> = vec![
        (
            "asset allow-list",
            terms(policy(|p| p.allowed_assets = vec![code("USD")])),
            Book::both_registered(),
            "policy: asset GOLD is not in the deal's allow-list [USD]".into(),
        ),
        (
            "amount per deal",
            terms(policy(|p| p.amount_max = Some(99))),
            Book::both_registered(),
            "policy: payment leg amount 100 exceeds the deal's maximum 99 per deal".into(),
        ),
        (
            "buyer registered",
            terms(Policy::default()),
            only_seller,
            format!("policy: the buyer {buyer_hex} is not registered in the directory"),
        ),
        (
            "seller registered",
            terms(Policy::default()),
            only_buyer,
            format!("policy: the seller {seller_hex} is not registered in the directory"),
        ),
        (
            "amount per party per day",
            terms(policy(|p| p.amount_max_per_day = Some(110))),
            spent,
            format!(
                "policy: the seller would move 111 GOLD on UTC day {}, over the deal's maximum 110 per party per day (106 committed already)",
                T0 / DAY_MS
            ),
        ),
        (
            "extend-once in hashlock mode",
            hashlock(terms(policy(|p| p.on_timeout = OnTimeout::ExtendOnce { by_ms: 1_000 }))),
            Book::both_registered(),
            "policy: extend-once on timeout needs notary mode: a hashlock reservation's expiry is fixed on chain when it is reserved and the secret may already be revealed, so there is no deadline to extend; use refund".into(),
        ),
        (
            "extension past the backstop",
            terms(policy(|p| p.on_timeout = OnTimeout::ExtendOnce { by_ms: 15_000 })),
            Book::both_registered(),
            format!(
                "policy: extend-once by 15000 ms moves the decision deadline to {}, but the reservations' backstop expiry {BACKSTOP} must be at least 100 ms after it",
                DEADLINE + 15_000
            ),
        ),
        (
            "extension of zero",
            terms(policy(|p| p.on_timeout = OnTimeout::ExtendOnce { by_ms: 0 })),
            Book::both_registered(),
            "policy: extend-once by 0 ms: expected 1 to 86400000 ms".into(),
        ),
    ];
    for (name, terms, book, expected) in cases {
        let found = approve(&terms, T0, &book).expect_err(name).to_string();
        assert_eq!(found, expected, "{name}");
    }
    // And the same terms within every limit pass.
    let within = terms(policy(|p| {
        p.allowed_assets = vec![code("USD"), code("GOLD")];
        p.amount_max = Some(100);
        p.amount_max_per_day = Some(100);
        p.on_timeout = OnTimeout::ExtendOnce { by_ms: 5_000 };
    }));
    assert_eq!(approve(&within, T0, &Book::both_registered()), Ok(()));
}

/// The daily total counts per UTC day: yesterday's deals do not count today.
#[test]
fn the_daily_limit_counts_only_the_same_utc_day() {
    let terms = terms(policy(|p| p.amount_max_per_day = Some(150)));
    let mut book = Book::both_registered();
    book.moved.insert((buyer().public(), code("USD"), T0 / DAY_MS - 1), 150);
    assert_eq!(approve(&terms, T0, &book), Ok(()), "yesterday's total does not count");
    book.moved.insert((buyer().public(), code("USD"), T0 / DAY_MS), 50);
    assert_eq!(approve(&terms, T0, &book), Ok(()), "50 + 100 is exactly the limit");
    book.moved.insert((buyer().public(), code("USD"), T0 / DAY_MS), 51);
    let refused = approve(&terms, T0, &book).expect_err("over by one").to_string();
    assert!(refused.starts_with("policy: the buyer would move 151 USD"), "{refused}");
}

fn reserved(request: ReserveRequest) -> EscrowEvent {
    EscrowEvent::Reserved(request.reservation())
}

fn signed(terms: DealTerms) -> SignedDeal {
    let id = terms.id();
    SignedDeal { buyer_signature: buyer().sign_deal(id), seller_signature: seller().sign_deal(id), terms }
}

/// Both legs reserved as agreed at `at_ms`: what the notary outputs.
fn both_reserved(terms: &DealTerms, at_ms: u64, approvals: &dyn Approvals) -> Vec<NotaryOutput> {
    let (mut deal, outputs) = NotaryDeal::accept(&notary(), &signed(terms.clone()), T0).expect("accepted");
    assert_eq!(outputs, vec![]);
    let id = terms.id();
    let mut outputs = Vec::new();
    for leg in interlock_core::LegKind::BOTH {
        outputs.extend(deal.observe(at_ms, &reserved(expected_request(terms, id, leg)), approvals));
    }
    outputs
}

#[test]
fn the_notary_aborts_with_the_rule_instead_of_committing() {
    let terms = terms(policy(|p| p.amount_max_per_day = Some(100)));
    let id = terms.id();
    let committed = both_reserved(&terms, T0 + 1, &Book::both_registered());
    assert_eq!(committed, vec![NotaryOutput::Record { deal_id: id, decision: Decision::Commit, reason: None }]);
    let stranger = Book::default();
    let aborted = both_reserved(&terms, T0 + 1, &stranger);
    let reason = approve(&terms, T0 + 1, &stranger).expect_err("unregistered").to_string();
    assert!(reason.starts_with("policy: the buyer "), "{reason}");
    assert_eq!(aborted, vec![NotaryOutput::Record { deal_id: id, decision: Decision::Abort, reason: Some(reason) }]);
}

#[test]
fn extend_once_moves_the_notaries_deadline_and_refund_does_not() {
    let refund = terms(Policy::default());
    let extend = terms(policy(|p| p.on_timeout = OnTimeout::ExtendOnce { by_ms: 3_000 }));
    assert_eq!(refund.extended_decision_deadline_ms(), Some(DEADLINE));
    assert_eq!(extend.extended_decision_deadline_ms(), Some(DEADLINE + 3_000));
    // Reservations that land after the deadline but within the extension commit...
    let late = DEADLINE + 1_000;
    let outputs = both_reserved(&extend, late, &Unrestricted);
    assert!(matches!(outputs.as_slice(), [NotaryOutput::Record { decision: Decision::Commit, .. }]), "{outputs:?}");
    // ... but abort under refund,
    let outputs = both_reserved(&refund, late, &Unrestricted);
    assert!(matches!(outputs.as_slice(), [NotaryOutput::Record { decision: Decision::Abort, .. }]), "{outputs:?}");
    // and after the extension too.
    let outputs = both_reserved(&extend, DEADLINE + 3_000, &Unrestricted);
    assert!(matches!(outputs.as_slice(), [NotaryOutput::Record { decision: Decision::Abort, .. }]), "{outputs:?}");
    // An undecided notary sleeps until the extended deadline.
    let (deal, _) = NotaryDeal::accept(&notary(), &signed(extend.clone()), T0).expect("accepted");
    assert_eq!(deal.wake_at_ms(), Some(DEADLINE + 3_000));
}

#[test]
fn timeout_notices_follow_the_policy() {
    let refund = terms(Policy::default());
    assert_eq!(timeout_notice(&refund, DEADLINE - 1, 0), None);
    assert_eq!(timeout_notice(&refund, DEADLINE, 0), Some(TimeoutNotice::Refund { at_ms: DEADLINE }));
    assert_eq!(timeout_notice(&refund, DEADLINE + 60_000, 1), None, "told once");
    let extend = terms(policy(|p| p.on_timeout = OnTimeout::ExtendOnce { by_ms: 3_000 }));
    let extended = TimeoutNotice::Extended { at_ms: DEADLINE, by_ms: 3_000, to_ms: DEADLINE + 3_000 };
    assert_eq!(timeout_notice(&extend, DEADLINE, 0), Some(extended));
    assert_eq!(timeout_notice(&extend, DEADLINE + 2_999, 1), None);
    let after = TimeoutNotice::RefundAfterExtension { at_ms: DEADLINE + 3_000 };
    assert_eq!(timeout_notice(&extend, DEADLINE + 3_000, 1), Some(after));
    assert_eq!(timeout_notice(&extend, DEADLINE + 60_000, 2), None, "told twice");
    // A saga with the commit certificate has not timed out; one without has.
    let saga = Saga::new(Role::Buyer, Arc::new(extend), None).expect("valid");
    assert_eq!(saga.timeout_notice(DEADLINE, 0), Some(extended));
    // Hashlock: the delivery expiry is the deadline.
    let hashlock = hashlock(terms(Policy::default()));
    let saga = Saga::new(Role::Seller, Arc::new(hashlock), None).expect("valid");
    assert_eq!(saga.timeout_notice(T0 + 5_000, 0), Some(TimeoutNotice::Refund { at_ms: T0 + 5_000 }));
}
