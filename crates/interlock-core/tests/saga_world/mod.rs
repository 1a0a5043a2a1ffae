//! The world the saga tests run in: two in-memory ledgers (the core's escrow
//! rules over a test context), the notaries, a buyer and a seller saga, and a
//! manual clock.
#![allow(dead_code, unused_imports)]

pub use crate::common::{Holder, TestLedger};
pub use interlock_core::crypto::{NotaryKey, PartyKey, Secret, Token, Vote};
pub use interlock_core::escrow::{self, EscrowError, EscrowEvent, EscrowOp};
pub use interlock_core::notary::{NotaryDeal, NotaryOutput, SignedDeal};
pub use interlock_core::policy::Unrestricted;
pub use interlock_core::saga::{LegStatus, Outcome, Role, Saga, SagaError, SagaOutput};
pub use interlock_core::{
    Address, Asset, AssetCode, DealTerms, ItemId, Leg, LegKind, NetworkId, Policy, Settlement, TermsError,
};
pub use std::collections::{BTreeMap, VecDeque};
pub use std::sync::Arc;

pub const T0: u64 = 1_000_000;
/// The manual clock's tick.
pub const STEP_MS: u64 = 10;
/// Every test deal has ended long before this.
pub const END: u64 = T0 + 60_000;

pub const PAYMENT_NETWORK: NetworkId = NetworkId(1);
pub const DELIVERY_NETWORK: NetworkId = NetworkId(2);

// Hashlock deadlines.
pub const DELIVERY_EXPIRY: u64 = T0 + 5_000;
pub const MARGIN: u64 = 1_000;
pub const PAYMENT_EXPIRY: u64 = T0 + 10_000;
// Notary deadlines.
pub const DECISION_DEADLINE: u64 = T0 + 5_000;
pub const BACKSTOP_EXPIRY: u64 = T0 + 10_000;

pub const SECRET: Secret = Secret([0x5c; 32]);
pub const PRICE: u128 = 100;
pub const BUYER_FUNDS: u128 = 1_000;
pub const GOLD_DELIVERED: u128 = 5;

pub fn buyer_key() -> PartyKey {
    PartyKey::from_seed([0xb1; 32])
}
pub fn seller_key() -> PartyKey {
    PartyKey::from_seed([0x5e; 32])
}
pub fn notary_keys() -> Vec<NotaryKey> {
    (1..=3).map(|seed| NotaryKey::from_seed([seed; 32]).expect("valid scalar")).collect()
}
pub fn code(text: &str) -> AssetCode {
    AssetCode::new(text).expect("valid code")
}

// The payment network is an embedded ledger (ed25519 accounts), the delivery
// network an EVM chain (20-byte addresses).
pub const BUYER_ON_DELIVERY: Address = Address::from_bytes([0xb1; 20]);
pub const SELLER_ON_DELIVERY: Address = Address::from_bytes([0x5e; 20]);
pub fn buyer_on_payment() -> Address {
    Address::from_bytes(buyer_key().public().0)
}
pub fn seller_on_payment() -> Address {
    Address::from_bytes(seller_key().public().0)
}

pub fn dollars(amount: u128) -> Asset {
    Asset::Fungible { code: code("USD"), amount }
}
pub fn deed() -> Asset {
    Asset::Unique { class: code("DEED"), item: ItemId::from_u128(42) }
}
pub fn gold(amount: u128) -> Asset {
    Asset::Fungible { code: code("GOLD"), amount }
}

/// Terms that buy `delivered` for `PRICE` USD under `settlement`.
pub fn terms(delivered: Asset, settlement: Settlement) -> DealTerms {
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

pub fn hashlock_settlement(delivery_expiry_ms: u64, margin_ms: u64, payment_expiry_ms: u64) -> Settlement {
    Settlement::Hashlock { hash: SECRET.hash(), payment_expiry_ms, delivery_expiry_ms, margin_ms }
}

/// A hashlock deal: 100 USD for the deed.
pub fn hashlock_terms() -> DealTerms {
    terms(deed(), hashlock_settlement(DELIVERY_EXPIRY, MARGIN, PAYMENT_EXPIRY))
}

/// A 2-of-3 notary deal: 100 USD for 5 GOLD.
pub fn notary_terms() -> DealTerms {
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
pub enum Message {
    Chain(EscrowEvent),
    Vote(Vote),
}

/// Two ledgers, two parties, the notaries and a manual clock. A message sent
/// during one tick is delivered at the next.
pub struct World {
    pub now_ms: u64,
    pub terms: Arc<DealTerms>,
    pub ledgers: BTreeMap<NetworkId, TestLedger>,
    pub buyer: Saga,
    pub seller: Saga,
    /// A party that is offline neither steps nor hears anything.
    pub offline: Vec<Role>,
    pub notary_keys: Vec<NotaryKey>,
    /// Each notary's view, once a party asked it.
    pub notary_deals: Vec<Option<NotaryDeal>>,
    /// Every chain event, in order: what a restarted driver replays.
    pub log: Vec<EscrowEvent>,
    pub pending: VecDeque<Message>,
    /// Operations the ledgers refused (resubmissions of what already landed, and
    /// any mistake, which the tests look at).
    pub refused: Vec<(Role, EscrowOp, EscrowError)>,
    /// Hand each saga a tick's news (or a replay) in one `take_news`, as the
    /// drivers do, instead of one input at a time.
    pub batched: bool,
}

impl World {
    pub fn new(terms: DealTerms) -> World {
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
            batched: false,
        }
    }

    pub fn saga(&mut self, role: Role) -> &mut Saga {
        match role {
            Role::Buyer => &mut self.buyer,
            Role::Seller => &mut self.seller,
        }
    }

    pub fn online(&self) -> Vec<Role> {
        [Role::Buyer, Role::Seller].into_iter().filter(|role| !self.offline.contains(role)).collect()
    }

    /// The account `role` signs with on `network`.
    pub fn account(&self, role: Role, network: NetworkId) -> Address {
        let own = self.terms.leg(role.own_leg());
        if network == own.network {
            own.owner
        } else {
            self.terms.leg(role.counter_leg()).beneficiary
        }
    }

    pub fn submit(&mut self, role: Role, network: NetworkId, op: EscrowOp) {
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

    pub fn handle(&mut self, role: Role, outputs: Vec<SagaOutput>) {
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
    pub fn ask_notaries(&mut self) {
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

    pub fn observe(&mut self, index: usize, event: &EscrowEvent) {
        let now_ms = self.now_ms;
        if let Some(deal) = self.notary_deals[index].as_mut() {
            let outputs = deal.observe(now_ms, event, &Unrestricted);
            self.handle_notary(index, outputs);
        }
    }

    pub fn handle_notary(&mut self, index: usize, outputs: Vec<NotaryOutput>) {
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
    pub fn deliver(&mut self) {
        let now_ms = self.now_ms;
        if self.batched {
            let (mut events, mut votes) = (Vec::new(), Vec::new());
            for message in std::mem::take(&mut self.pending) {
                match message {
                    Message::Chain(event) => events.push(event),
                    Message::Vote(vote) => votes.push(vote),
                }
            }
            for role in self.online() {
                let step = self.saga(role).take_news(now_ms, &events, &[], &votes);
                self.handle(role, step.outputs);
            }
            for event in &events {
                for index in 0..self.notary_keys.len() {
                    self.observe(index, event);
                }
            }
            return;
        }
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
    pub fn tick(&mut self) {
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

    /// Ticks until the clock reaches `time_ms`, whether or not the deal ended.
    pub fn tick_until(&mut self, time_ms: u64) {
        while self.now_ms < time_ms {
            self.tick();
        }
    }

    pub fn finished(&self) -> bool {
        self.buyer.outcome().is_some() && self.seller.outcome().is_some()
    }

    /// Ticks until both parties finished; the time it took.
    pub fn run(&mut self) -> u64 {
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

    pub fn check_conservation(&self) {
        let payment = &self.ledgers[&PAYMENT_NETWORK];
        assert_eq!(payment.total(&code("USD")), BUYER_FUNDS, "USD conserved");
        let delivery = &self.ledgers[&DELIVERY_NETWORK];
        if let Asset::Fungible { code, .. } = &self.terms.delivery.asset {
            assert_eq!(delivery.total(code), 50, "{code} conserved");
        }
    }

    /// The party restarts from what it persisted (`record`) and its driver replays
    /// the chain to it.
    pub fn restart(&mut self, role: Role, record: &[u8]) {
        let restored = Saga::decode_record(record).expect("a saga record decodes");
        assert_eq!(restored.role(), role);
        assert_eq!(restored.deal_id(), self.terms.id());
        *self.saga(role) = restored;
        self.replay(role);
    }

    /// Feeds every chain event so far to `role`, in chain order.
    pub fn replay(&mut self, role: Role) {
        let now_ms = self.now_ms;
        if self.batched {
            let log = self.log.clone();
            let step = self.saga(role).take_news(now_ms, &log, &[], []);
            self.handle(role, step.outputs);
            return;
        }
        for event in self.log.clone() {
            let step = self.saga(role).on_chain_event(now_ms, &event);
            self.handle(role, step.outputs);
        }
    }

    pub fn payment_ledger(&self) -> &TestLedger {
        &self.ledgers[&PAYMENT_NETWORK]
    }
    pub fn delivery_ledger(&self) -> &TestLedger {
        &self.ledgers[&DELIVERY_NETWORK]
    }
}

/// Both legs moved: the seller was paid and the buyer holds what it bought.
pub fn check_completed(world: &World) {
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
pub fn check_refunded(world: &World) {
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

pub fn executions(world: &World) -> usize {
    world.log.iter().filter(|event| matches!(event, EscrowEvent::Executed { .. })).count()
}
