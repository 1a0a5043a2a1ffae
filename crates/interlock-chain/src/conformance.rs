//! The platform conformance suite: one set of checks, written once, that every
//! implementation of the seam passes — the escrow rules as the chain enforces
//! them, the error kinds callers rely on, and a follower that resumes from a
//! persisted cursor with nothing lost or repeated.
//!
//! A platform's tests implement [`Harness`] (a fresh network with three funded
//! accounts, a clock to move, balances to read) and expand
//! [`conformance_suite!`](crate::conformance_suite), which writes one
//! `#[tokio::test]` per check. Each check returns `Err` with what it expected and
//! what it found.

use crate::{
    BoxFuture, Capabilities, ChainError, ChainErrorKind, ChainEvent, Cursor, Follower, NotarySigner, Submitter,
};
use interlock_core::crypto::{Certificate, Decision, NotaryKey, PartyKey, Secret, Token};
use interlock_core::escrow::ReservationState;
use interlock_core::{
    reservation_id, Address, Asset, DealTerms, EscrowEvent, EscrowOp, LegKind, NetworkId, Policy, Settlement,
};
use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

mod inspection;
pub use inspection::{
    inspected_legs_are_held_until_a_release, inspected_legs_go_back_until_held, reverse_verdict_returns_both_legs,
};

/// The accounts a harness funds.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Actor {
    /// Holds at least [`FUNDS`] of the fungible asset.
    Buyer,
    /// Holds unique items 1 to [`ITEMS`] and at least [`FUNDS`] of the fungible asset.
    Seller,
    /// Holds what the buyer holds, and is named by no deal.
    Stranger,
}

/// The fungible amount each actor holds at least.
pub const FUNDS: u128 = 1_000_000;
/// The unique items the seller holds, numbered from 1.
pub const ITEMS: u64 = 8;
/// How long the suite's reservations last unless a check wants them short.
pub const LONG_MS: u64 = 3_600_000;
/// Polls a check makes, at most, to see what it settled.
const POLLS_MAX: usize = 64;

/// A fresh network of the platform under test.
pub trait Harness: Send {
    fn network(&self) -> NetworkId;
    /// What the platform under test can hold. A check of something it cannot
    /// hold checks instead that it refuses it, changing nothing.
    fn capabilities(&self) -> Capabilities {
        Capabilities { relayed: false, ..Capabilities::ALL }
    }
    fn account(&self, actor: Actor) -> Address;
    /// A submitter signing as `actor`.
    fn submitter(&self, actor: Actor) -> Arc<dyn Submitter>;
    /// `amount` of the fungible asset every actor holds.
    fn fungible(&self, amount: u128) -> Asset;
    /// The seller's unique item `number` (1 to [`ITEMS`]).
    fn item(&self, number: u64) -> Asset;
    /// How much of `asset` `actor` holds (1 or 0 for a unique item).
    fn balance(&mut self, actor: Actor, asset: &Asset) -> BoxFuture<'_, Result<u128, ChainError>>;
    /// The time of the chain's newest block, on the clock its escrow uses.
    fn now_ms(&mut self) -> BoxFuture<'_, Result<u64, ChainError>>;
    /// Moves the chain's clock forward by at least `ms` (a new block stamped then).
    fn advance(&mut self, ms: u64) -> BoxFuture<'_, Result<(), ChainError>>;
    /// Makes everything submitted so far final at the followers' depth.
    fn settle(&mut self) -> BoxFuture<'_, Result<(), ChainError>>;
    /// Where a follower that has seen nothing starts.
    fn start(&self) -> Cursor;
    /// A follower of this network from `from`.
    fn follower(&mut self, from: Cursor) -> BoxFuture<'_, Result<Box<dyn Follower>, ChainError>>;
}

/// Writes one `#[tokio::test]` per conformance check, each on a harness made by
/// `$make` (an `async` expression giving a [`Harness`]).
#[macro_export]
macro_rules! conformance_suite {
    ($make:expr) => {
        $crate::conformance_suite!(@tests $make;
            reserve_is_done_once,
            only_the_owner_reserves,
            execute_by_the_beneficiary_once_with_the_secret,
            cancel_waits_for_expiry_and_pays_the_owner,
            expired_reservation_cannot_be_executed,
            unique_item_moves_once,
            notary_certificate_must_be_a_commit_quorum_of_the_deal,
            abort_certificate_cancels_before_expiry,
            follower_reports_in_order_and_resumes_from_cursor,
            leg_state_follows_the_leg,
            inspected_legs_are_held_until_a_release,
            inspected_legs_go_back_until_held,
            reverse_verdict_returns_both_legs,
        );
    };
    (@tests $make:expr; $($check:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $check() {
                let mut harness = $make.await;
                if let Err(failure) = $crate::conformance::$check(&mut harness).await {
                    panic!("conformance check {} failed: {failure}", stringify!($check));
                }
            }
        )*
    };
}

type Check = Result<(), String>;

/// Every deal of the suite is new: its nonce comes from here.
static NONCE: AtomicU64 = AtomicU64::new(1);

fn party(seed: u8) -> PartyKey {
    PartyKey::from_seed([seed; 32])
}

fn notary(seed: u8) -> NotaryKey {
    NotaryKey::from_seed([seed; 32]).expect("small repeated bytes are valid secp256k1 scalars")
}

/// The deal's notaries (2 of 3) and three others, in that order: a script
/// platform's harness names the notaries' keys in its legs' scripts.
pub fn notary_keys() -> Vec<NotaryKey> {
    (0x41..=0x46).map(notary).collect()
}

/// The suite's notaries as a script platform's submitters reach them
/// ([`NotarySigner`]): each signs the spend of whichever decision it is
/// asked for. The suite's certificates stand for what the notaries decided,
/// and the submitter asks only once a certificate holds, so the suite's
/// certificate checks are the submitter's; a real notary also checks its own
/// record ([`crate::LocalNotaries`]).
pub struct SuiteNotaries {
    digest: crate::SpendDigest,
}

impl SuiteNotaries {
    pub fn new(digest: crate::SpendDigest) -> SuiteNotaries {
        SuiteNotaries { digest }
    }
}

impl NotarySigner for SuiteNotaries {
    fn sign_spend<'a>(
        &'a self,
        request: &'a crate::SpendToSign,
    ) -> BoxFuture<'a, Result<Vec<interlock_core::crypto::RecoverableSignature>, ChainError>> {
        Box::pin(async move {
            let digest = (self.digest)(request)?;
            Ok(notary_keys()[..3].iter().map(|key| key.sign_digest(&digest)).collect())
        })
    }
}

/// A deal with both legs on the harness's network: the buyer pays `payment`,
/// the seller delivers `delivery`.
struct Deal {
    terms: DealTerms,
    secret: Secret,
}

impl Deal {
    fn new<H: Harness>(harness: &H, payment: Asset, delivery: Asset, settlement: Settlement, secret: Secret) -> Deal {
        let network = harness.network();
        let buyer = harness.account(Actor::Buyer);
        let seller = harness.account(Actor::Seller);
        let leg = |asset, owner, beneficiary| interlock_core::Leg { network, asset, owner, beneficiary, keeper: None };
        let terms = DealTerms {
            buyer: party(0xb1).public(),
            seller: party(0x51).public(),
            payment: leg(payment, buyer, seller),
            delivery: leg(delivery, seller, buyer),
            settlement,
            policy: Policy::default(),
            observers: Vec::new(),
            dependents: Vec::new(),
            nonce: NONCE.fetch_add(1, Ordering::Relaxed),
        };
        Deal { terms, secret }
    }

    fn hashlock<H: Harness>(harness: &H, payment: Asset, delivery: Asset, now_ms: u64, expiry_in_ms: u64) -> Deal {
        let secret = Secret(fresh_bytes());
        let settlement = Settlement::Hashlock {
            hash: secret.hash(),
            payment_expiry_ms: now_ms + expiry_in_ms + 60_000,
            delivery_expiry_ms: now_ms + expiry_in_ms,
            margin_ms: 60_000,
        };
        Deal::new(harness, payment, delivery, settlement, secret)
    }

    fn notary<H: Harness>(harness: &H, payment: Asset, delivery: Asset, now_ms: u64) -> Deal {
        let notaries = notary_keys()[..3].iter().map(NotaryKey::address).collect();
        let settlement = Settlement::Notary {
            notaries,
            threshold: 2,
            decision_deadline_ms: now_ms + LONG_MS / 2,
            backstop_expiry_ms: now_ms + LONG_MS,
        };
        Deal::new(harness, payment, delivery, settlement, Secret([0; 32]))
    }

    fn reserve(&self, leg: LegKind) -> EscrowOp {
        let deal_id = self.terms.id();
        EscrowOp::Reserve(interlock_core::saga::expected_request(&self.terms, deal_id, leg))
    }

    fn execute(&self, leg: LegKind, token: Token) -> EscrowOp {
        EscrowOp::Execute { reservation: reservation_id(self.terms.id(), leg), token }
    }

    fn execute_with_secret(&self, leg: LegKind) -> EscrowOp {
        self.execute(leg, Token::Secret(self.secret))
    }

    fn cancel(&self, leg: LegKind, certificate: Option<Certificate>) -> EscrowOp {
        EscrowOp::Cancel { reservation: reservation_id(self.terms.id(), leg), certificate }
    }

    /// A certificate for this deal signed by `signers`.
    fn certificate(&self, decision: Decision, signers: &[NotaryKey]) -> Certificate {
        certificate_for(self.terms.id(), decision, signers)
    }

    /// Certificates that must not count as this deal's `decision`, each with
    /// what is wrong with it: short of the 2-of-3 quorum, signed by notaries
    /// outside the set, one signature twice, a quorum's `decision` for the
    /// `other` deal, and a quorum's `wrong` decision for this one.
    fn not_a_quorum(&self, other: &Deal, decision: Decision, wrong: Decision) -> [(String, Certificate); 5] {
        let keys = notary_keys();
        [
            ("one signature of a 2-of-3 set".into(), self.certificate(decision, &keys[..1])),
            ("two signatures of notaries outside the set".into(), self.certificate(decision, &keys[3..5])),
            ("one signature twice".into(), self.certificate(decision, &[keys[0].clone(), keys[0].clone()])),
            (format!("a quorum's {decision} for another deal"), other.certificate(decision, &keys[..2])),
            (format!("a quorum's {wrong}"), self.certificate(wrong, &keys[..2])),
        ]
    }
}

fn certificate_for(deal_id: interlock_core::DealId, decision: Decision, signers: &[NotaryKey]) -> Certificate {
    let signatures = signers.iter().map(|key| key.sign_decision(deal_id, decision).signature).collect();
    Certificate { deal_id, decision, signatures }
}

/// 32 bytes no earlier call returned: secrets differ between deals without a
/// random source.
fn fresh_bytes() -> [u8; 32] {
    let counter = NONCE.fetch_add(1, Ordering::Relaxed);
    interlock_core::Hash32::sha256(&[b"interlock/conformance/secret", &counter.to_be_bytes()]).0
}

async fn submit(harness: &impl Harness, actor: Actor, deal: &Deal, op: &EscrowOp) -> Result<(), ChainError> {
    harness.submitter(actor).submit(&deal.terms, op).await.map(|_| ())
}

/// Checks that `actor`'s `op` succeeds.
async fn expect_ok(harness: &impl Harness, actor: Actor, deal: &Deal, op: &EscrowOp, what: &str) -> Check {
    submit(harness, actor, deal, op).await.map_err(|error| format!("{what}: expected success, found {error}"))
}

/// Checks that `actor`'s `op` fails with `kind`.
async fn expect_kind(
    harness: &impl Harness,
    actor: Actor,
    deal: &Deal,
    op: &EscrowOp,
    kind: ChainErrorKind,
    what: &str,
) -> Check {
    match submit(harness, actor, deal, op).await {
        Ok(()) => Err(format!("{what}: expected {kind}, but the chain took it")),
        Err(error) if error.kind == kind => Ok(()),
        Err(error) => Err(format!("{what}: expected {kind}, found {error}")),
    }
}

async fn balance(harness: &mut impl Harness, actor: Actor, asset: &Asset) -> Result<u128, String> {
    harness.balance(actor, asset).await.map_err(|error| format!("reading {actor:?}'s {asset}: {error}"))
}

async fn now_ms(harness: &mut impl Harness) -> Result<u64, String> {
    harness.now_ms().await.map_err(|error| format!("reading the chain's time: {error}"))
}

fn expect_eq<T: PartialEq + std::fmt::Debug>(what: &str, expected: T, found: T) -> Check {
    if expected == found {
        Ok(())
    } else {
        Err(format!("{what}: expected {expected:?}, found {found:?}"))
    }
}

/// A second reserve of the same leg is already done, and moves nothing more.
pub async fn reserve_is_done_once(harness: &mut impl Harness) -> Check {
    let amount = harness.fungible(100);
    let now = now_ms(harness).await?;
    let deal = Deal::hashlock(harness, amount.clone(), harness.fungible(1), now, LONG_MS);
    let before = balance(harness, Actor::Buyer, &amount).await?;
    expect_ok(harness, Actor::Buyer, &deal, &deal.reserve(LegKind::Payment), "reserve").await?;
    let reserve = deal.reserve(LegKind::Payment);
    expect_kind(harness, Actor::Buyer, &deal, &reserve, ChainErrorKind::AlreadyDone, "second reserve").await?;
    let after = balance(harness, Actor::Buyer, &amount).await?;
    expect_eq("buyer's funds after reserving 100 twice", before - 100, after)
}

/// Nobody but a leg's owner reserves it.
pub async fn only_the_owner_reserves(harness: &mut impl Harness) -> Check {
    let now = now_ms(harness).await?;
    let deal = Deal::hashlock(harness, harness.fungible(100), harness.fungible(1), now, LONG_MS);
    let reserve = deal.reserve(LegKind::Payment);
    expect_kind(harness, Actor::Stranger, &deal, &reserve, ChainErrorKind::Rejected, "reserve by a stranger").await?;
    expect_kind(harness, Actor::Seller, &deal, &reserve, ChainErrorKind::Rejected, "reserve by the beneficiary").await
}

/// Only the beneficiary executes, only with the right secret, and only once;
/// the asset goes to the beneficiary.
pub async fn execute_by_the_beneficiary_once_with_the_secret(harness: &mut impl Harness) -> Check {
    let amount = harness.fungible(250);
    let now = now_ms(harness).await?;
    let deal = Deal::hashlock(harness, amount.clone(), harness.fungible(1), now, LONG_MS);
    expect_ok(harness, Actor::Buyer, &deal, &deal.reserve(LegKind::Payment), "reserve").await?;
    let seller_before = balance(harness, Actor::Seller, &amount).await?;
    let execute = deal.execute_with_secret(LegKind::Payment);
    let rejected = ChainErrorKind::Rejected;
    expect_kind(harness, Actor::Stranger, &deal, &execute, rejected, "execute by a stranger with the secret").await?;
    expect_kind(harness, Actor::Buyer, &deal, &execute, rejected, "execute by the owner with the secret").await?;
    let wrong = deal.execute(LegKind::Payment, Token::Secret(Secret(fresh_bytes())));
    expect_kind(harness, Actor::Seller, &deal, &wrong, rejected, "execute with a wrong secret").await?;
    let notary_token = Token::Certificate(deal.certificate(Decision::Commit, &notary_keys()[..2]));
    let certificate = deal.execute(LegKind::Payment, notary_token);
    expect_kind(harness, Actor::Seller, &deal, &certificate, rejected, "execute a hashlock with a certificate").await?;
    expect_ok(harness, Actor::Seller, &deal, &execute, "execute by the beneficiary").await?;
    let seller_after = balance(harness, Actor::Seller, &amount).await?;
    expect_eq("seller's funds after the execution", seller_before + 250, seller_after)?;
    let done = ChainErrorKind::AlreadyDone;
    expect_kind(harness, Actor::Seller, &deal, &execute, done, "second execute").await?;
    let cancel = deal.cancel(LegKind::Payment, None);
    expect_kind(harness, Actor::Buyer, &deal, &cancel, done, "cancel after the execution").await
}

/// The owner cannot cancel before expiry; after it anyone may, and the asset
/// always goes back to the owner.
pub async fn cancel_waits_for_expiry_and_pays_the_owner(harness: &mut impl Harness) -> Check {
    let amount = harness.fungible(75);
    let now = now_ms(harness).await?;
    let deal = Deal::hashlock(harness, harness.fungible(1), amount.clone(), now, 30_000);
    let before = balance(harness, Actor::Seller, &amount).await?;
    expect_ok(harness, Actor::Seller, &deal, &deal.reserve(LegKind::Delivery), "reserve").await?;
    let cancel = deal.cancel(LegKind::Delivery, None);
    let rejected = ChainErrorKind::Rejected;
    expect_kind(harness, Actor::Seller, &deal, &cancel, rejected, "cancel by the owner before expiry").await?;
    harness.advance(90_000).await.map_err(|error| format!("moving the clock: {error}"))?;
    if harness.capabilities().open_cancel {
        expect_ok(harness, Actor::Stranger, &deal, &cancel, "cancel by a stranger after expiry").await?;
    } else {
        expect_kind(harness, Actor::Stranger, &deal, &cancel, rejected, "cancel by a stranger after expiry").await?;
        expect_ok(harness, Actor::Seller, &deal, &cancel, "cancel by the owner after expiry").await?;
    }
    let after = balance(harness, Actor::Seller, &amount).await?;
    expect_eq("seller's funds after the cancellation", before, after)?;
    let done = ChainErrorKind::AlreadyDone;
    expect_kind(harness, Actor::Seller, &deal, &cancel, done, "second cancel").await?;
    let execute = deal.execute_with_secret(LegKind::Delivery);
    expect_kind(harness, Actor::Buyer, &deal, &execute, done, "execute after the cancellation").await
}

/// After its expiry a reservation can no longer be executed, even with the secret.
pub async fn expired_reservation_cannot_be_executed(harness: &mut impl Harness) -> Check {
    let now = now_ms(harness).await?;
    let deal = Deal::hashlock(harness, harness.fungible(1), harness.fungible(40), now, 30_000);
    expect_ok(harness, Actor::Seller, &deal, &deal.reserve(LegKind::Delivery), "reserve").await?;
    harness.advance(90_000).await.map_err(|error| format!("moving the clock: {error}"))?;
    let execute = deal.execute_with_secret(LegKind::Delivery);
    expect_kind(harness, Actor::Buyer, &deal, &execute, ChainErrorKind::Rejected, "execute after expiry").await
}

/// A unique item goes to the beneficiary once, and is reserved once.
pub async fn unique_item_moves_once(harness: &mut impl Harness) -> Check {
    let item = harness.item(3);
    let now = now_ms(harness).await?;
    let deal = Deal::hashlock(harness, harness.fungible(10), item.clone(), now, LONG_MS);
    if !harness.capabilities().unique {
        let reserve = deal.reserve(LegKind::Delivery);
        return expect_kind(harness, Actor::Seller, &deal, &reserve, ChainErrorKind::Fatal, "reserve a unique item")
            .await;
    }
    expect_eq("the seller holds item 3", 1, balance(harness, Actor::Seller, &item).await?)?;
    expect_ok(harness, Actor::Seller, &deal, &deal.reserve(LegKind::Delivery), "reserve the item").await?;
    expect_eq("the seller holds item 3 once reserved", 0, balance(harness, Actor::Seller, &item).await?)?;
    let other = Deal::hashlock(harness, harness.fungible(10), item.clone(), now, LONG_MS);
    let reserve_again = other.reserve(LegKind::Delivery);
    let rejected = ChainErrorKind::Rejected;
    expect_kind(harness, Actor::Seller, &other, &reserve_again, rejected, "the item in a second deal").await?;
    let execute = deal.execute_with_secret(LegKind::Delivery);
    expect_ok(harness, Actor::Buyer, &deal, &execute, "execute the item").await?;
    expect_eq("the buyer holds item 3", 1, balance(harness, Actor::Buyer, &item).await?)?;
    expect_kind(harness, Actor::Buyer, &deal, &execute, ChainErrorKind::AlreadyDone, "execute it again").await
}

/// Only a commit certificate of this deal, signed by a quorum of its own
/// notaries, executes a notary reservation.
pub async fn notary_certificate_must_be_a_commit_quorum_of_the_deal(harness: &mut impl Harness) -> Check {
    let amount = harness.fungible(500);
    let now = now_ms(harness).await?;
    let deal = Deal::notary(harness, amount.clone(), harness.fungible(1), now);
    if !harness.capabilities().notary {
        return refuses_notary_legs(harness, &deal, LegKind::Payment).await;
    }
    expect_ok(harness, Actor::Buyer, &deal, &deal.reserve(LegKind::Payment), "reserve").await?;
    let other_deal = Deal::notary(harness, amount.clone(), harness.fungible(1), now);
    for (what, certificate) in deal.not_a_quorum(&other_deal, Decision::Commit, Decision::Abort) {
        let execute = deal.execute(LegKind::Payment, Token::Certificate(certificate));
        let what = format!("execute with {what}");
        expect_kind(harness, Actor::Seller, &deal, &execute, ChainErrorKind::Rejected, &what).await?;
    }
    let secret = deal.execute_with_secret(LegKind::Payment);
    expect_kind(harness, Actor::Seller, &deal, &secret, ChainErrorKind::Rejected, "execute with a secret").await?;
    let commit = Token::Certificate(deal.certificate(Decision::Commit, &notary_keys()[1..3]));
    let execute = deal.execute(LegKind::Payment, commit.clone());
    let rejected = ChainErrorKind::Rejected;
    expect_kind(harness, Actor::Stranger, &deal, &execute, rejected, "a quorum's commit by a stranger").await?;
    let seller_before = balance(harness, Actor::Seller, &amount).await?;
    expect_ok(harness, Actor::Seller, &deal, &execute, "execute with a quorum's commit").await?;
    let seller_after = balance(harness, Actor::Seller, &amount).await?;
    expect_eq("seller's funds after the execution", seller_before + 500, seller_after)
}

/// An abort certificate cancels before the backstop expiry, and a commit
/// certificate does not.
pub async fn abort_certificate_cancels_before_expiry(harness: &mut impl Harness) -> Check {
    let amount = harness.fungible(60);
    let now = now_ms(harness).await?;
    let deal = Deal::notary(harness, harness.fungible(1), amount.clone(), now);
    if !harness.capabilities().notary {
        return refuses_notary_legs(harness, &deal, LegKind::Delivery).await;
    }
    let before = balance(harness, Actor::Seller, &amount).await?;
    expect_ok(harness, Actor::Seller, &deal, &deal.reserve(LegKind::Delivery), "reserve").await?;
    let keys = notary_keys();
    let rejected = ChainErrorKind::Rejected;
    let commit = deal.cancel(LegKind::Delivery, Some(deal.certificate(Decision::Commit, &keys[..2])));
    expect_kind(harness, Actor::Seller, &deal, &commit, rejected, "cancel with a commit certificate").await?;
    let short = deal.cancel(LegKind::Delivery, Some(deal.certificate(Decision::Abort, &keys[..1])));
    expect_kind(harness, Actor::Seller, &deal, &short, rejected, "cancel with one abort signature").await?;
    let abort = deal.cancel(LegKind::Delivery, Some(deal.certificate(Decision::Abort, &keys[..2])));
    if harness.capabilities().open_cancel {
        expect_ok(harness, Actor::Stranger, &deal, &abort, "cancel with a quorum's abort, by anyone").await?;
    } else {
        let by_stranger = "cancel with a quorum's abort, by a stranger";
        expect_kind(harness, Actor::Stranger, &deal, &abort, rejected, by_stranger).await?;
        expect_ok(harness, Actor::Seller, &deal, &abort, "cancel with a quorum's abort, by the owner").await?;
    }
    let after = balance(harness, Actor::Seller, &amount).await?;
    expect_eq("seller's funds after the abort", before, after)
}

/// A platform that cannot settle by notary refuses to reserve a notary leg,
/// and the owner's funds stay where they were.
async fn refuses_notary_legs(harness: &mut impl Harness, deal: &Deal, leg: LegKind) -> Check {
    let actor = match leg {
        LegKind::Payment => Actor::Buyer,
        LegKind::Delivery => Actor::Seller,
    };
    let asset = deal.terms.leg(leg).asset.clone();
    let before = balance(harness, actor, &asset).await?;
    let reserve = deal.reserve(leg);
    expect_kind(harness, actor, deal, &reserve, ChainErrorKind::Fatal, "reserve a notary leg").await?;
    expect_eq("the owner's funds after the refusal", before, balance(harness, actor, &asset).await?)
}

/// What a follower saw of one deal.
#[derive(Default)]
struct Seen {
    /// `(kind, leg)` of each event of the deal, in the order delivered.
    events: Vec<(&'static str, LegKind)>,
    /// The secret an execution revealed.
    secret: Option<Secret>,
    last: Option<Cursor>,
}

fn kind_of(event: &EscrowEvent) -> &'static str {
    match event {
        EscrowEvent::Reserved(_) => "reserved",
        EscrowEvent::Executed { .. } => "executed",
        EscrowEvent::Cancelled { .. } => "cancelled",
        EscrowEvent::Held { .. } => "held",
    }
}

/// Polls `follower` until it has delivered `want` events of `deal` in all, or
/// it stops moving. Blocks must come in rising height order.
async fn follow_until(follower: &mut dyn Follower, deal: &Deal, seen: &mut Seen, want: usize) -> Check {
    let deal_id = deal.terms.id();
    for _ in 0..POLLS_MAX {
        if seen.events.len() >= want {
            break;
        }
        let reported = follower.poll().await.map_err(|error| format!("follower poll: {error}"))?;
        for item in reported {
            let ChainEvent::Block(block) = item else {
                return Err(format!("the follower rolled back on a chain that did not reorganise: {item:?}"));
            };
            if let Some(last) = seen.last {
                if block.cursor.height <= last.height {
                    return Err(format!("block {} delivered after block {}", block.cursor, last));
                }
            }
            seen.last = Some(block.cursor);
            for followed in block.events.iter().filter(|followed| followed.event.deal_id() == deal_id) {
                seen.events.push((kind_of(&followed.event), followed.event.leg()));
                if let EscrowEvent::Executed { token: Token::Secret(secret), .. } = &followed.event {
                    seen.secret = Some(*secret);
                }
            }
        }
        if follower.cursor() != seen.last.unwrap_or(follower.cursor()) {
            return Err(format!("follower says it is at {}, it delivered {:?}", follower.cursor(), seen.last));
        }
    }
    Ok(())
}

/// A follower delivers a deal's events once each, in order, reveals the secret
/// an execution used, and one made again from its last cursor goes on with
/// nothing lost and nothing repeated.
pub async fn follower_reports_in_order_and_resumes_from_cursor(harness: &mut impl Harness) -> Check {
    let now = now_ms(harness).await?;
    let delivery = if harness.capabilities().unique { harness.item(5) } else { harness.fungible(5) };
    let deal = Deal::hashlock(harness, harness.fungible(30), delivery, now, LONG_MS);
    let start = harness.start();
    let mut first = harness.follower(start).await.map_err(|error| format!("making a follower: {error}"))?;
    first.watch(&deal.terms).map_err(|error| format!("watching the deal: {error}"))?;
    expect_ok(harness, Actor::Buyer, &deal, &deal.reserve(LegKind::Payment), "reserve payment").await?;
    // Settled apart: two transactions in one block come in the order its
    // producer chose, which on a UTXO chain need not be the order sent.
    harness.settle().await.map_err(|error| format!("settling: {error}"))?;
    expect_ok(harness, Actor::Seller, &deal, &deal.reserve(LegKind::Delivery), "reserve delivery").await?;
    harness.settle().await.map_err(|error| format!("settling: {error}"))?;
    let mut seen = Seen::default();
    follow_until(first.as_mut(), &deal, &mut seen, 2).await?;
    let cursor = first.cursor();
    drop(first);

    expect_ok(harness, Actor::Buyer, &deal, &deal.execute_with_secret(LegKind::Delivery), "execute delivery").await?;
    let mut resumed = harness.follower(cursor).await.map_err(|error| format!("resuming at {cursor}: {error}"))?;
    resumed.watch(&deal.terms).map_err(|error| format!("watching the deal again: {error}"))?;
    harness.settle().await.map_err(|error| format!("settling: {error}"))?;
    follow_until(resumed.as_mut(), &deal, &mut seen, 3).await?;
    expect_eq("the secret the delivery's execution revealed", Some(deal.secret), seen.secret)?;
    // The seller takes the payment with the secret the follower revealed.
    expect_ok(harness, Actor::Seller, &deal, &deal.execute_with_secret(LegKind::Payment), "execute payment").await?;
    harness.settle().await.map_err(|error| format!("settling: {error}"))?;
    follow_until(resumed.as_mut(), &deal, &mut seen, 4).await?;
    // A few more polls: nothing of the deal may come twice.
    follow_until(resumed.as_mut(), &deal, &mut seen, usize::MAX).await?;
    let expected = vec![
        ("reserved", LegKind::Payment),
        ("reserved", LegKind::Delivery),
        ("executed", LegKind::Delivery),
        ("executed", LegKind::Payment),
    ];
    expect_eq("the deal's events across a stop and a resume", expected, seen.events)?;
    let distinct: HashSet<u64> = seen.last.iter().map(|cursor| cursor.height).collect();
    expect_eq("a last delivered block", 1, distinct.len())
}

/// A leg's state on chain: nothing before the reservation, then reserved,
/// then executed (or cancelled), whoever asks.
pub async fn leg_state_follows_the_leg(harness: &mut impl Harness) -> Check {
    let now = now_ms(harness).await?;
    let deal = Deal::hashlock(harness, harness.fungible(40), harness.fungible(1), now, 30_000);
    let submitters = [Actor::Buyer, Actor::Seller, Actor::Stranger].map(|actor| harness.submitter(actor));
    let state = |actor: Actor, leg: LegKind| {
        let submitter = submitters[actor as usize].clone();
        let terms = deal.terms.clone();
        async move { submitter.leg_state(&terms, leg).await.map_err(|error| format!("reading the {leg:?} leg: {error}")) }
    };
    expect_eq("the payment before its reservation", None, state(Actor::Buyer, LegKind::Payment).await?)?;
    expect_ok(harness, Actor::Buyer, &deal, &deal.reserve(LegKind::Payment), "reserve").await?;
    expect_eq("the payment reserved", Some(ReservationState::Reserved), state(Actor::Seller, LegKind::Payment).await?)?;
    expect_eq("the unreserved delivery", None, state(Actor::Seller, LegKind::Delivery).await?)?;
    expect_ok(harness, Actor::Seller, &deal, &deal.execute_with_secret(LegKind::Payment), "execute").await?;
    expect_eq(
        "the payment executed",
        Some(ReservationState::Executed),
        state(Actor::Stranger, LegKind::Payment).await?,
    )?;
    expect_ok(harness, Actor::Seller, &deal, &deal.reserve(LegKind::Delivery), "reserve the delivery").await?;
    harness.advance(90_000).await.map_err(|error| format!("moving the clock: {error}"))?;
    expect_ok(harness, Actor::Seller, &deal, &deal.cancel(LegKind::Delivery, None), "cancel the delivery").await?;
    expect_eq(
        "the delivery cancelled",
        Some(ReservationState::Cancelled),
        state(Actor::Buyer, LegKind::Delivery).await?,
    )
}
