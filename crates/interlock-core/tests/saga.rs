//! A buyer and a seller saga settle deals end to end against two in-memory ledgers
//! (the core's escrow rules over a test context), notaries, and a manual clock:
//! both modes complete, an absent seller leaves the buyer refunded, a saga
//! restored from its record at any point still completes, and the saga refuses
//! hashlock deadlines that leave the seller no margin.

mod common;

use common::{Holder, TestLedger};
use interlock_core::crypto::{NotaryKey, PartyKey, Secret, Token, Vote};
use interlock_core::escrow::{self, EscrowError, EscrowEvent, EscrowOp};
use interlock_core::notary::{NotaryDeal, NotaryOutput, SignedDeal};
use interlock_core::policy::Unrestricted;
use interlock_core::saga::{LegStatus, Outcome, Role, Saga, SagaError, SagaOutput};
use interlock_core::{
    Address, Asset, AssetCode, DealTerms, ItemId, Leg, LegKind, NetworkId, Policy, Settlement, TermsError,
};
use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;

const T0: u64 = 1_000_000;
/// The manual clock's tick.
const STEP_MS: u64 = 10;
/// Every test deal has ended long before this.
const END: u64 = T0 + 60_000;

const PAYMENT_NETWORK: NetworkId = NetworkId(1);
const DELIVERY_NETWORK: NetworkId = NetworkId(2);

// Hashlock deadlines.
const DELIVERY_EXPIRY: u64 = T0 + 5_000;
const MARGIN: u64 = 1_000;
const PAYMENT_EXPIRY: u64 = T0 + 10_000;
// Notary deadlines.
const DECISION_DEADLINE: u64 = T0 + 5_000;
const BACKSTOP_EXPIRY: u64 = T0 + 10_000;

const SECRET: Secret = Secret([0x5c; 32]);
const PRICE: u128 = 100;
const BUYER_FUNDS: u128 = 1_000;
const GOLD_DELIVERED: u128 = 5;

fn buyer_key() -> PartyKey {
    PartyKey::from_seed([0xb1; 32])
}
fn seller_key() -> PartyKey {
    PartyKey::from_seed([0x5e; 32])
}
fn notary_keys() -> Vec<NotaryKey> {
    (1..=3).map(|seed| NotaryKey::from_seed([seed; 32]).expect("valid scalar")).collect()
}
fn code(text: &str) -> AssetCode {
    AssetCode::new(text).expect("valid code")
}

// The payment network is an embedded ledger (ed25519 accounts), the delivery
// network an EVM chain (20-byte addresses).
const BUYER_ON_DELIVERY: Address = Address::from_bytes([0xb1; 20]);
const SELLER_ON_DELIVERY: Address = Address::from_bytes([0x5e; 20]);
fn buyer_on_payment() -> Address {
    Address::from_bytes(buyer_key().public().0)
}
fn seller_on_payment() -> Address {
    Address::from_bytes(seller_key().public().0)
}

fn dollars(amount: u128) -> Asset {
    Asset::Fungible { code: code("USD"), amount }
}
fn deed() -> Asset {
    Asset::Unique { class: code("DEED"), item: ItemId::from_u128(42) }
}
fn gold(amount: u128) -> Asset {
    Asset::Fungible { code: code("GOLD"), amount }
}

/// Terms that buy `delivered` for `PRICE` USD under `settlement`.
fn terms(delivered: Asset, settlement: Settlement) -> DealTerms {
    DealTerms {
        buyer: buyer_key().public(),
        seller: seller_key().public(),
        payment: Leg {
            network: PAYMENT_NETWORK,
            asset: dollars(PRICE),
            owner: buyer_on_payment(),
            beneficiary: seller_on_payment(),
            keeper: None,
        },
        delivery: Leg {
            network: DELIVERY_NETWORK,
            asset: delivered,
            owner: SELLER_ON_DELIVERY,
            beneficiary: BUYER_ON_DELIVERY,
            keeper: None,
        },
        settlement,
        policy: Policy::default(),
        observers: vec![],
        dependents: vec![],
        nonce: 7,
    }
}

fn hashlock_settlement(delivery_expiry_ms: u64, margin_ms: u64, payment_expiry_ms: u64) -> Settlement {
    Settlement::Hashlock { hash: SECRET.hash(), payment_expiry_ms, delivery_expiry_ms, margin_ms }
}

/// A hashlock deal: 100 USD for the deed.
fn hashlock_terms() -> DealTerms {
    terms(deed(), hashlock_settlement(DELIVERY_EXPIRY, MARGIN, PAYMENT_EXPIRY))
}

/// A 2-of-3 notary deal: 100 USD for 5 GOLD.
fn notary_terms() -> DealTerms {
    terms(
        gold(GOLD_DELIVERED),
        Settlement::Notary {
            notaries: notary_keys().iter().map(NotaryKey::address).collect(),
            threshold: 2,
            decision_deadline_ms: DECISION_DEADLINE,
            backstop_expiry_ms: BACKSTOP_EXPIRY,
        },
    )
}

/// What travels between the ledgers, the notaries and the sagas.
enum Message {
    Chain(EscrowEvent),
    Vote(Vote),
}

/// Two ledgers, two parties, the notaries and a manual clock. A message sent
/// during one tick is delivered at the next.
struct World {
    now_ms: u64,
    terms: Arc<DealTerms>,
    ledgers: BTreeMap<NetworkId, TestLedger>,
    buyer: Saga,
    seller: Saga,
    /// A party that is offline neither steps nor hears anything.
    offline: Vec<Role>,
    notary_keys: Vec<NotaryKey>,
    /// Each notary's view, once a party asked it.
    notary_deals: Vec<Option<NotaryDeal>>,
    /// Every chain event, in order: what a restarted driver replays.
    log: Vec<EscrowEvent>,
    pending: VecDeque<Message>,
    /// Operations the ledgers refused (resubmissions of what already landed, and
    /// any mistake, which the tests look at).
    refused: Vec<(Role, EscrowOp, EscrowError)>,
}

impl World {
    fn new(terms: DealTerms) -> World {
        let terms = Arc::new(terms);
        let mut payment = TestLedger::default();
        payment.issue(buyer_on_payment(), &dollars(BUYER_FUNDS));
        let mut delivery = TestLedger::default();
        match &terms.delivery.asset {
            Asset::Fungible { code, .. } => {
                delivery.issue(SELLER_ON_DELIVERY, &Asset::Fungible { code: code.clone(), amount: 50 })
            }
            unique => delivery.issue(SELLER_ON_DELIVERY, unique),
        }
        let secret = matches!(terms.settlement, Settlement::Hashlock { .. }).then_some(SECRET);
        let notary_keys = notary_keys();
        World {
            now_ms: T0,
            buyer: Saga::new(Role::Buyer, terms.clone(), secret).expect("valid buyer saga"),
            seller: Saga::new(Role::Seller, terms.clone(), None).expect("valid seller saga"),
            terms,
            ledgers: BTreeMap::from([(PAYMENT_NETWORK, payment), (DELIVERY_NETWORK, delivery)]),
            offline: vec![],
            notary_deals: vec![None; notary_keys.len()],
            notary_keys,
            log: vec![],
            pending: VecDeque::new(),
            refused: vec![],
        }
    }

    fn saga(&mut self, role: Role) -> &mut Saga {
        match role {
            Role::Buyer => &mut self.buyer,
            Role::Seller => &mut self.seller,
        }
    }

    fn online(&self) -> Vec<Role> {
        [Role::Buyer, Role::Seller].into_iter().filter(|role| !self.offline.contains(role)).collect()
    }

    /// The account `role` signs with on `network`.
    fn account(&self, role: Role, network: NetworkId) -> Address {
        let own = self.terms.leg(role.own_leg());
        if network == own.network {
            own.owner
        } else {
            self.terms.leg(role.counter_leg()).beneficiary
        }
    }

    fn submit(&mut self, role: Role, network: NetworkId, op: EscrowOp) {
        let signer = self.account(role, network);
        let ledger = self.ledgers.get_mut(&network).expect("known network");
        match escrow::apply(ledger, &signer, &op, self.now_ms) {
            Ok(event) => {
                self.log.push(event.clone());
                self.pending.push_back(Message::Chain(event));
            }
            Err(error) => self.refused.push((role, op, error)),
        }
    }

    fn handle(&mut self, role: Role, outputs: Vec<SagaOutput>) {
        for output in outputs {
            match output {
                SagaOutput::Submit { network, op } => self.submit(role, network, op),
                SagaOutput::AskNotaries => self.ask_notaries(),
                SagaOutput::Finished(outcome) => {
                    assert_eq!(self.saga(role).outcome(), Some(outcome));
                }
            }
        }
    }

    /// A party sent the signed terms to every notary: a new notary accepts them
    /// and catches up on the chain; one that has decided sends its vote again.
    fn ask_notaries(&mut self) {
        let id = self.terms.id();
        let signed = SignedDeal {
            terms: (*self.terms).clone(),
            buyer_signature: buyer_key().sign_deal(id),
            seller_signature: seller_key().sign_deal(id),
        };
        for index in 0..self.notary_keys.len() {
            let key = self.notary_keys[index].clone();
            match &self.notary_deals[index] {
                None => {
                    let (deal, outputs) = NotaryDeal::accept(&key, &signed, self.now_ms).expect("notary accepts");
                    self.notary_deals[index] = Some(deal);
                    self.handle_notary(index, outputs);
                    for event in self.log.clone() {
                        self.observe(index, &event);
                    }
                }
                Some(deal) => {
                    if let Some(vote) = deal.vote(&key) {
                        self.pending.push_back(Message::Vote(vote));
                    }
                }
            }
        }
    }

    fn observe(&mut self, index: usize, event: &EscrowEvent) {
        let now_ms = self.now_ms;
        if let Some(deal) = self.notary_deals[index].as_mut() {
            let outputs = deal.observe(now_ms, event, &Unrestricted);
            self.handle_notary(index, outputs);
        }
    }

    fn handle_notary(&mut self, index: usize, outputs: Vec<NotaryOutput>) {
        for output in outputs {
            match output {
                // "Persisted" at once; then the notary signs.
                NotaryOutput::Record { .. } => {
                    let key = self.notary_keys[index].clone();
                    let deal = self.notary_deals[index].as_mut().expect("accepted");
                    let votes = deal.recorded(&key);
                    self.handle_notary(index, votes);
                }
                NotaryOutput::Vote(vote) => self.pending.push_back(Message::Vote(vote)),
            }
        }
    }

    /// Delivers the messages sent before now. What they cause is sent on, to be
    /// delivered at the next tick: every hop takes one tick.
    fn deliver(&mut self) {
        let now_ms = self.now_ms;
        for message in std::mem::take(&mut self.pending) {
            match message {
                Message::Chain(event) => {
                    for role in self.online() {
                        let step = self.saga(role).on_chain_event(now_ms, &event);
                        self.handle(role, step.outputs);
                    }
                    for index in 0..self.notary_keys.len() {
                        self.observe(index, &event);
                    }
                }
                Message::Vote(vote) => {
                    for role in self.online() {
                        let step = self.saga(role).on_vote(now_ms, &vote);
                        self.handle(role, step.outputs);
                    }
                }
            }
        }
    }

    /// One tick of the clock: what was sent during the last tick lands, then every
    /// party and notary steps.
    fn tick(&mut self) {
        self.now_ms += STEP_MS;
        let now_ms = self.now_ms;
        self.deliver();
        // Every block up to the last tick has been delivered: the networks' time
        // as the sagas may know it.
        let networks: Vec<NetworkId> = self.ledgers.keys().copied().collect();
        for role in self.online() {
            for network in &networks {
                let step = self.saga(role).on_chain_time(now_ms, *network, now_ms - STEP_MS);
                self.handle(role, step.outputs);
            }
            let step = self.saga(role).step(now_ms);
            self.handle(role, step.outputs);
        }
        for index in 0..self.notary_keys.len() {
            if let Some(deal) = self.notary_deals[index].as_mut() {
                let outputs = deal.tick(now_ms, &Unrestricted);
                self.handle_notary(index, outputs);
            }
        }
        self.check_conservation();
    }

    fn finished(&self) -> bool {
        self.buyer.outcome().is_some() && self.seller.outcome().is_some()
    }

    /// Ticks until both parties finished; the time it took.
    fn run(&mut self) -> u64 {
        while !self.finished() {
            assert!(
                self.now_ms < END,
                "deal did not end: buyer {:?}/{:?}, seller {:?}/{:?}",
                self.buyer.own_status(),
                self.buyer.counter_status(),
                self.seller.own_status(),
                self.seller.counter_status(),
            );
            self.tick();
        }
        self.now_ms
    }

    fn check_conservation(&self) {
        let payment = &self.ledgers[&PAYMENT_NETWORK];
        assert_eq!(payment.total(&code("USD")), BUYER_FUNDS, "USD conserved");
        let delivery = &self.ledgers[&DELIVERY_NETWORK];
        if let Asset::Fungible { code, .. } = &self.terms.delivery.asset {
            assert_eq!(delivery.total(code), 50, "{code} conserved");
        }
    }

    /// The party restarts from what it persisted (`record`) and its driver replays
    /// the chain to it.
    fn restart(&mut self, role: Role, record: &[u8]) {
        let restored = Saga::decode_record(record).expect("a saga record decodes");
        assert_eq!(restored.role(), role);
        assert_eq!(restored.deal_id(), self.terms.id());
        *self.saga(role) = restored;
        self.replay(role);
    }

    /// Feeds every chain event so far to `role`, in chain order.
    fn replay(&mut self, role: Role) {
        let now_ms = self.now_ms;
        for event in self.log.clone() {
            let step = self.saga(role).on_chain_event(now_ms, &event);
            self.handle(role, step.outputs);
        }
    }

    fn payment_ledger(&self) -> &TestLedger {
        &self.ledgers[&PAYMENT_NETWORK]
    }
    fn delivery_ledger(&self) -> &TestLedger {
        &self.ledgers[&DELIVERY_NETWORK]
    }
}

/// Both legs moved: the seller was paid and the buyer holds what it bought.
fn check_completed(world: &World) {
    assert_eq!(world.buyer.outcome(), Some(Outcome::Completed));
    assert_eq!(world.seller.outcome(), Some(Outcome::Completed));
    let payment = world.payment_ledger();
    let usd = code("USD");
    assert_eq!(payment.balance(&buyer_on_payment(), &usd), BUYER_FUNDS - PRICE);
    assert_eq!(payment.balance(&seller_on_payment(), &usd), PRICE);
    let delivered = &world.terms.delivery.asset;
    let delivery = world.delivery_ledger();
    assert_eq!(
        delivery.holds(&BUYER_ON_DELIVERY, delivered),
        match delivered {
            Asset::Fungible { amount, .. } => *amount,
            Asset::Unique { .. } => 1,
        }
    );
    assert!(payment.escrow_is_empty() && delivery.escrow_is_empty());
}

/// Nothing moved: every asset is back with its owner.
fn check_refunded(world: &World) {
    assert_eq!(world.buyer.outcome(), Some(Outcome::Refunded));
    assert_eq!(world.seller.outcome(), Some(Outcome::Refunded));
    let payment = world.payment_ledger();
    let usd = code("USD");
    assert_eq!(payment.balance(&buyer_on_payment(), &usd), BUYER_FUNDS);
    assert_eq!(payment.balance(&seller_on_payment(), &usd), 0);
    let delivery = world.delivery_ledger();
    assert_eq!(delivery.holds(&BUYER_ON_DELIVERY, &world.terms.delivery.asset), 0);
    assert!(payment.escrow_is_empty() && delivery.escrow_is_empty());
}

fn executions(world: &World) -> usize {
    world.log.iter().filter(|event| matches!(event, EscrowEvent::Executed { .. })).count()
}

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

#[test]
fn withholding_seller_leaves_buyer_refunded_after_expiry() {
    let mut world = World::new(hashlock_terms());
    world.seller.withhold();
    let ended = world.run();
    check_refunded(&world);
    assert!(ended >= PAYMENT_EXPIRY, "the buyer's payment is locked until its expiry, refunded at {ended}");
    assert_eq!(executions(&world), 0, "the secret never went on chain");
    assert_eq!(world.buyer.own_status(), LegStatus::Cancelled);
    assert_eq!(world.seller.own_status(), LegStatus::Open);
    assert!(world.refused.is_empty(), "{:?}", world.refused);
}

#[test]
fn withholding_seller_in_notary_mode_is_refunded_on_the_abort_certificate() {
    let mut world = World::new(notary_terms());
    world.seller.withhold();
    let ended = world.run();
    check_refunded(&world);
    assert!(
        (DECISION_DEADLINE..BACKSTOP_EXPIRY).contains(&ended),
        "refunded at {ended}: after the deadline, on the abort certificate, before the backstop"
    );
    let certificate = world.buyer.certificate().expect("abort certificate");
    assert_eq!(certificate.decision, interlock_core::Decision::Abort);
    assert_eq!(executions(&world), 0);
    assert!(world.refused.is_empty(), "{:?}", world.refused);
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
    while world.now_ms < PAYMENT_EXPIRY + 1_000 {
        world.tick();
    }
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
    while world.now_ms < PAYMENT_EXPIRY + 1_000 {
        world.tick();
    }
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
    while world.now_ms < PAYMENT_EXPIRY + 1_000 {
        world.tick();
    }
    assert_eq!(world.buyer.outcome(), Some(Outcome::Windfall));
    world.offline.clear();
    world.restart(Role::Seller, &record);
    world.run();
    assert_eq!(world.seller.outcome(), Some(Outcome::Lost));
}

/// Runs a deal to the end, restarting both parties from their records after
/// `crash_after` ticks. With `stale` the records are the ones persisted at the
/// start, so everything since must come back from the chain.
fn run_with_restart(terms: DealTerms, crash_after: u64, stale: bool) -> World {
    let mut world = World::new(terms);
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

#[test]
fn sagas_restored_at_any_point_complete() {
    for terms in [hashlock_terms(), notary_terms()] {
        let mut baseline = World::new(terms.clone());
        let ended = baseline.run();
        let ticks = (ended - T0) / STEP_MS;
        for crash_after in 0..=ticks {
            for stale in [false, true] {
                let world = run_with_restart(terms.clone(), crash_after, stale);
                check_completed(&world);
            }
        }
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
