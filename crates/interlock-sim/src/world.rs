//! The simulated world: two networks, a buyer, a seller, notaries, a keeper per
//! network and an adversary, connected by a lossy network, all under one seeded
//! clock. Every participant runs the real core and ledger code; only time, the
//! network and the disks are simulated.

use crate::checker::Checker;
use crate::rng::Rng;
use interlock_core::crypto::{Decision, NotaryKey, PartyKey, Secret, Token, Vote};
use interlock_core::notary::{NotaryDeal, NotaryOutput, SignedDeal};
use interlock_core::policy::{movements, utc_day, Approvals};
use interlock_core::saga::{Outcome, Role, Saga, SagaOutput};
use interlock_core::{
    reservation_id, Address, Asset, AssetCode, DealId, DealTerms, EscrowOp, ItemId, Leg, LegKind, NetworkId,
    NotaryAddress, OnTimeout, PartyId, Policy, ReservationState, Settlement,
};
use interlock_ledger::{Genesis, Ledger, MemoryStore, Op, Transaction};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

pub const T0_MS: u64 = 1_000_000_000;
pub const NETWORKS: [NetworkId; 2] = [NetworkId(1), NetworkId(2)];
/// Simulated time after the last deadline by which every deal must have ended.
pub const LIVENESS_SLACK_MS: u64 = 30_000;
/// Most steps one seed may take.
pub const STEPS_MAX: usize = 40_000;
/// An idle ledger still produces a block this often, so its time is seen to pass.
const HEARTBEAT_MS: u64 = 200;
/// Blocks a participant reads per poll.
const EVENT_BLOCKS_PER_POLL: usize = 8;
/// One seed in this many per mille runs its second network with EVM semantics.
const EVM_PER_MILLE: u64 = 500;

/// A network that behaves like an EVM chain: its blocks carry whole-second
/// timestamps (the contract's clock is `block.timestamp * 1000`), and parties and
/// notaries learn of a block only once `depth` blocks stand on it, as the EVM
/// adapter's follower does.
#[derive(Clone, Debug)]
pub struct EvmSemantics {
    pub index: usize,
    pub depth: u64,
    /// Every reservation in a confirmed block, as the notaries may see it.
    confirmed_reservations: HashMap<interlock_core::ReservationId, interlock_core::Reservation>,
    cursor: u64,
}

/// The fault rates one seed draws.
#[derive(Clone, Debug)]
pub struct Faults {
    pub loss_per_mille: u64,
    pub duplicate_per_mille: u64,
    pub delay_max_ms: u64,
    pub crash_per_mille: u64,
    pub skew_max_ms: u64,
    pub adversary: bool,
    pub absence: bool,
}

// Most messages in flight are transactions; boxing them would not save memory.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug)]
enum Payload {
    Transaction(Transaction),
    SignedDeal(Arc<SignedDeal>),
    Vote(Vote),
}

#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
enum Node {
    Ledger(usize),
    Party(usize),
    Notary(usize),
}

struct Message {
    deliver_at_ms: u64,
    to: Node,
    payload: Payload,
}

/// What each participant keeps on its disk: survives its crashes.
#[derive(Default)]
struct PartyDisk {
    sagas: BTreeMap<DealId, Vec<u8>>,
    nonces: HashMap<NetworkId, u64>,
    cursors: HashMap<NetworkId, u64>,
}

struct PartyNode {
    key: PartyKey,
    skew_ms: i64,
    online: bool,
    down_until_ms: u64,
    sagas: BTreeMap<DealId, (Saga, Option<u64>)>,
    disk: PartyDisk,
    inbox: Vec<Vote>,
}

struct NotaryNode {
    key: NotaryKey,
    skew_ms: i64,
    online: bool,
    down_until_ms: u64,
    deals: BTreeMap<DealId, NotaryDeal>,
    /// Terms of accepted deals and their recorded decisions.
    disk: BTreeMap<DealId, (Arc<DealTerms>, Option<Decision>)>,
    /// What each party moved per asset and UTC day in the deals this notary
    /// committed: on disk, written with the commit.
    moved: DailyTotals,
    /// Commits decided but not written yet: they count at once, so deals
    /// decided in one step see each other; lost with a crash, like the decision.
    pending: DailyTotals,
    inbox: Vec<Arc<SignedDeal>>,
}

type DailyTotals = BTreeMap<(PartyId, AssetCode, u64), u128>;

/// A notary's approvals: every simulated party is registered; the daily totals
/// are the notary's own, written and pending.
struct NotaryApprovals<'a>(&'a DailyTotals, &'a DailyTotals);

impl Approvals for NotaryApprovals<'_> {
    fn registered(&self, _party: PartyId) -> bool {
        true
    }
    fn moved_on_day(&self, party: PartyId, asset: &AssetCode, day: u64) -> u128 {
        let key = (party, asset.clone(), day);
        self.0.get(&key).copied().unwrap_or(0) + self.1.get(&key).copied().unwrap_or(0)
    }
}

/// Adds a deal's movements on `day` to `totals` if `outputs` commit it.
fn count_commit(totals: &mut DailyTotals, terms: &DealTerms, outputs: &[NotaryOutput], day: u64) {
    if outputs.iter().any(|o| matches!(o, NotaryOutput::Record { decision: Decision::Commit, .. })) {
        for (_, party, asset, amount) in movements(terms) {
            *totals.entry((party, asset, day)).or_default() += amount;
        }
    }
}

/// A policy for a deal: every static rule holds for the deal drawn (the
/// parties would not sign otherwise); the daily limit and the extension are
/// what the notaries and sagas must honour.
fn draw_policy(rng: &mut Rng, notary_mode: bool, codes: &[AssetCode]) -> Policy {
    let mut policy = Policy::default();
    if notary_mode && rng.chance(300) {
        policy.on_timeout = OnTimeout::ExtendOnce { by_ms: rng.range(300, 3_000) };
    }
    if rng.chance(300) {
        policy.allowed_assets = codes.to_vec();
    }
    if rng.chance(200) {
        policy.amount_max = Some(500);
    }
    if rng.chance(300) {
        policy.amount_max_per_day = Some(u128::from(rng.range(300, 2_000)));
    }
    policy
}

struct LedgerNode {
    genesis: Genesis,
    skew_ms: i64,
    ledger: Option<Ledger<MemoryStore>>,
    disk: Option<MemoryStore>,
    down_until_ms: u64,
    inbox: Vec<Transaction>,
    committed_digest: interlock_core::Hash32,
    keeper_sent: HashMap<interlock_core::ReservationId, u64>,
}

pub struct DealInfo {
    pub terms: Arc<DealTerms>,
    pub signed: Arc<SignedDeal>,
    /// Hashlock: the seller's side (the seller and the payment network) was never
    /// up for [`SELLER_FAIR_WINDOW_MS`] in one stretch between the reveal and the
    /// payment expiry. DESIGN.md promises hashlock atomicity only when it was.
    pub seller_absent: bool,
    /// The current and the longest stretch of the seller's side being up since
    /// the reveal, in milliseconds.
    seller_up_ms: (u64, u64),
}

/// How long the seller's side must be up in one stretch after the reveal for
/// hashlock atomicity to be owed: a few message delays and resubmissions.
pub const SELLER_FAIR_WINDOW_MS: u64 = 2_000;

pub struct World {
    pub seed: u64,
    pub now_ms: u64,
    pub step: usize,
    rng: Rng,
    pub faults: Faults,
    ledgers: Vec<LedgerNode>,
    parties: Vec<PartyNode>,
    notaries: Vec<NotaryNode>,
    keeper: PartyKey,
    mallory: PartyKey,
    keeper_nonce: HashMap<NetworkId, u64>,
    mallory_nonce: HashMap<NetworkId, u64>,
    network: Vec<Message>,
    pub deals: BTreeMap<DealId, DealInfo>,
    pub checker: Checker,
    pub last_deadline_ms: u64,
    /// Faults are drawn until every deal's outcome is decided on chain: the
    /// hashlock payment expiry, the notary decision deadline plus a few seconds.
    pub faults_until_ms: u64,
    /// Adversarial transactions that must never apply.
    forbidden: HashSet<interlock_ledger::TxId>,
    pub outcomes: BTreeMap<(DealId, usize), Outcome>,
    /// Votes each notary ever sent, per deal.
    votes_sent: HashMap<(usize, DealId), Decision>,
    /// Print what happens, for replaying a failing seed.
    pub trace: bool,
    /// Tokens the adversary has seen revealed on chain, by deal.
    revealed: HashMap<DealId, Token>,
    /// Set when the second network follows EVM semantics in this seed.
    pub evm: Option<EvmSemantics>,
}

fn address(key: &PartyKey) -> Address {
    Address::Ledger(key.public().0)
}

fn local(now_ms: u64, skew_ms: i64) -> u64 {
    now_ms.saturating_add_signed(skew_ms)
}

impl World {
    pub fn new(seed: u64) -> World {
        let mut rng = Rng::new(seed);
        let calm = rng.chance(150);
        let faults = Faults {
            loss_per_mille: if calm { 0 } else { rng.range(0, 150) },
            duplicate_per_mille: if calm { 0 } else { rng.range(0, 100) },
            delay_max_ms: rng.range(5, 300),
            crash_per_mille: if calm { 0 } else { rng.range(0, 8) },
            skew_max_ms: if calm { 0 } else { rng.range(0, 40) },
            adversary: rng.chance(500),
            absence: !calm && rng.chance(300),
        };
        let skew = |rng: &mut Rng| {
            let max = i64::try_from(faults.skew_max_ms).expect("small");
            i64::try_from(rng.range(0, faults.skew_max_ms * 2)).expect("small") - max
        };
        let operator = PartyKey::from_seed(rng.bytes32());
        let keeper = PartyKey::from_seed(rng.bytes32());
        let mallory = PartyKey::from_seed(rng.bytes32());
        let buyer = PartyKey::from_seed(rng.bytes32());
        let seller = PartyKey::from_seed(rng.bytes32());
        let notary_count = if rng.chance(500) { 1 } else { 3 };
        let threshold: u8 = if notary_count == 1 { 1 } else { 2 };
        let notary_keys: Vec<NotaryKey> = (0..notary_count)
            .map(|_| loop {
                if let Some(key) = NotaryKey::from_seed(rng.bytes32()) {
                    break key;
                }
            })
            .collect();
        let notary_set: Vec<NotaryAddress> = notary_keys.iter().map(NotaryKey::address).collect();

        let deal_count = rng.range(2, 8);
        let usd = AssetCode::new("USD").expect("valid");
        let gold = AssetCode::new("GOLD").expect("valid");
        let title = AssetCode::new("TITLE").expect("valid");

        let mut ledgers: Vec<LedgerNode> = NETWORKS
            .iter()
            .map(|network| {
                let genesis = Genesis { network: *network, operator: operator.public(), timestamp_ms: T0_MS };
                let ledger = Ledger::open(MemoryStore::new(), genesis.clone()).expect("fresh store opens");
                LedgerNode {
                    genesis,
                    skew_ms: skew(&mut rng),
                    ledger: Some(ledger),
                    disk: None,
                    down_until_ms: 0,
                    inbox: Vec::new(),
                    committed_digest: interlock_core::Hash32::ZERO,
                    keeper_sent: HashMap::new(),
                }
            })
            .collect();

        // Genesis: register everyone and fund the buyer with USD, the seller with
        // GOLD and one TITLE item per deal, on both networks.
        for node in &mut ledgers {
            let ledger = node.ledger.as_mut().expect("online");
            let mut nonce = 0;
            let mut setup = |op: Op| {
                nonce += 1;
                let tx = Transaction::sign(&operator, ledger.network(), nonce, op);
                ledger.apply_now(tx, T0_MS).expect("genesis transactions apply");
            };
            for key in [&buyer, &seller, &keeper, &mallory] {
                setup(Op::Register { account: key.public() });
            }
            setup(Op::Issue { to: address(&buyer), asset: Asset::Fungible { code: usd.clone(), amount: 1_000_000 } });
            setup(Op::Issue { to: address(&seller), asset: Asset::Fungible { code: gold.clone(), amount: 1_000_000 } });
            // Mallory holds some of both, so her attempts are not stopped by an empty purse.
            setup(Op::Issue { to: address(&mallory), asset: Asset::Fungible { code: usd.clone(), amount: 1_000 } });
            for item in 0..deal_count {
                setup(Op::Issue {
                    to: address(&seller),
                    asset: Asset::Unique { class: title.clone(), item: ItemId::from_u128(item.into()) },
                });
            }
            node.committed_digest = ledger.state().digest();
        }

        // Most seeds' deals name the network keeper as each beneficiary's keeper,
        // as DESIGN.md's hashlock mode asks ("B, or a keeper acting for B"); the
        // rest have none, and run without message loss, where the parties alone
        // must settle everything.
        let keepers_named = faults.loss_per_mille > 0 || rng.chance(700);
        let keeper_for_deals = keepers_named.then(|| address(&keeper));
        let mut deals = BTreeMap::new();
        let mut last_deadline_ms = T0_MS;
        let mut faults_until_ms = T0_MS;
        for index in 0..deal_count {
            let payment_network = *rng.pick(&NETWORKS);
            let delivery_network = *rng.pick(&NETWORKS);
            let delivery_asset = if rng.chance(400) {
                Asset::Unique { class: title.clone(), item: ItemId::from_u128(index.into()) }
            } else {
                Asset::Fungible { code: gold.clone(), amount: u128::from(rng.range(1, 500)) }
            };
            let first_deadline_ms = T0_MS + rng.range(1_500, 6_000);
            let secret = Secret(rng.bytes32());
            let notary_mode = !rng.chance(500);
            let settlement = if !notary_mode {
                let margin_ms = rng.range(800, 2_500);
                Settlement::Hashlock {
                    hash: secret.hash(),
                    delivery_expiry_ms: first_deadline_ms,
                    payment_expiry_ms: first_deadline_ms + margin_ms,
                    margin_ms,
                }
            } else {
                Settlement::Notary {
                    notaries: notary_set.clone(),
                    threshold,
                    decision_deadline_ms: first_deadline_ms,
                    // The backstop is long, as DESIGN.md asks: far beyond any outage
                    // the faults draw, so a committed deal is always executed first.
                    backstop_expiry_ms: first_deadline_ms + rng.range(40_000, 60_000),
                }
            };
            let terms = DealTerms {
                buyer: buyer.public(),
                seller: seller.public(),
                payment: Leg {
                    network: payment_network,
                    asset: Asset::Fungible { code: usd.clone(), amount: u128::from(rng.range(1, 500)) },
                    owner: address(&buyer),
                    beneficiary: address(&seller),
                    keeper: keeper_for_deals,
                },
                delivery: Leg {
                    network: delivery_network,
                    asset: delivery_asset,
                    owner: address(&seller),
                    beneficiary: address(&buyer),
                    keeper: keeper_for_deals,
                },
                settlement,
                policy: draw_policy(&mut rng, notary_mode, &[usd.clone(), gold.clone(), title.clone()]),
                observers: Vec::new(),
                dependents: Vec::new(),
                nonce: seed.wrapping_mul(1000) + index,
            };
            let deal_id = terms.id();
            let signed = Arc::new(SignedDeal {
                terms: terms.clone(),
                buyer_signature: buyer.sign_deal(deal_id),
                seller_signature: seller.sign_deal(deal_id),
            });
            last_deadline_ms = last_deadline_ms.max(terms.last_deadline_ms());
            faults_until_ms = faults_until_ms.max(match &terms.settlement {
                Settlement::Hashlock { payment_expiry_ms, .. } => *payment_expiry_ms,
                Settlement::Notary { .. } => terms.extended_decision_deadline_ms().expect("notary mode") + 5_000,
            });
            let secret = matches!(terms.settlement, Settlement::Hashlock { .. }).then_some(secret);
            deals.insert(deal_id, (Arc::new(terms), signed, secret));
        }

        let mut parties = Vec::new();
        for (key, role) in [(buyer, Role::Buyer), (seller, Role::Seller)] {
            let mut node = PartyNode {
                key,
                skew_ms: skew(&mut rng),
                online: true,
                down_until_ms: 0,
                sagas: BTreeMap::new(),
                disk: PartyDisk::default(),
                inbox: Vec::new(),
            };
            for (deal_id, (terms, _, secret)) in &deals {
                let secret = if role == Role::Buyer { *secret } else { None };
                let saga = Saga::new(role, terms.clone(), secret).expect("generated terms are valid");
                node.disk.sagas.insert(*deal_id, saga.encode_record());
                node.sagas.insert(*deal_id, (saga, Some(0)));
            }
            parties.push(node);
        }
        let notaries = notary_keys
            .into_iter()
            .map(|key| NotaryNode {
                key,
                skew_ms: skew(&mut rng),
                online: true,
                down_until_ms: 0,
                deals: BTreeMap::new(),
                disk: BTreeMap::new(),
                moved: BTreeMap::new(),
                pending: BTreeMap::new(),
                inbox: Vec::new(),
            })
            .collect();
        let deals = deals
            .into_iter()
            .map(|(id, (terms, signed, _))| {
                (id, DealInfo { terms, signed, seller_absent: false, seller_up_ms: (0, 0) })
            })
            .collect();

        let mut world = World {
            seed,
            now_ms: T0_MS,
            step: 0,
            rng,
            faults,
            ledgers,
            parties,
            notaries,
            keeper,
            mallory,
            keeper_nonce: HashMap::new(),
            mallory_nonce: HashMap::new(),
            network: Vec::new(),
            deals,
            checker: Checker::default(),
            last_deadline_ms,
            faults_until_ms,
            forbidden: HashSet::new(),
            outcomes: BTreeMap::new(),
            votes_sent: HashMap::new(),
            trace: std::env::var_os("INTERLOCK_SIM_TRACE").is_some(),
            revealed: HashMap::new(),
            evm: None,
        };
        // Drawn from a stream of its own, so the other draws of a seed stay as they were.
        let mut evm_rng = Rng::new(seed ^ 0x0045_564d_0000_0000);
        if evm_rng.chance(EVM_PER_MILLE) {
            let depth = evm_rng.range(1, 4);
            world.evm = Some(EvmSemantics { index: 1, depth, confirmed_reservations: HashMap::new(), cursor: 0 });
            world.note(|| format!("network 1 has EVM semantics: whole-second blocks, confirmation depth {depth}"));
        }
        let ledgers: Vec<_> = world.ledgers.iter().map(|n| n.ledger.as_ref().expect("online")).collect();
        world.checker.start(&ledgers);
        world
    }

    pub fn ledgers(&self) -> Vec<Option<&Ledger<MemoryStore>>> {
        self.ledgers.iter().map(|node| node.ledger.as_ref()).collect()
    }

    fn send(&mut self, to: Node, payload: Payload) {
        if self.rng.chance(self.faults.loss_per_mille) {
            return;
        }
        let copies = if self.rng.chance(self.faults.duplicate_per_mille) { 2 } else { 1 };
        for _ in 0..copies {
            let deliver_at_ms = self.now_ms + self.rng.range(1, self.faults.delay_max_ms);
            self.network.push(Message { deliver_at_ms, to, payload: payload.clone() });
        }
    }

    fn ledger_index(network: NetworkId) -> usize {
        NETWORKS.iter().position(|n| *n == network).expect("known network")
    }

    /// One step of simulated time. Returns `Err` with a description on the
    /// first broken invariant.
    pub fn tick(&mut self, faults_on: bool) -> Result<(), String> {
        self.step += 1;
        let elapsed_ms = self.rng.range(1, 60);
        self.now_ms += elapsed_ms;
        self.track_seller_side(elapsed_ms);
        if faults_on {
            self.inject_faults();
        }
        self.restart_due();
        self.deliver();
        for index in 0..self.ledgers.len() {
            self.run_ledger(index)?;
        }
        self.confirm_evm_blocks();
        for index in 0..self.notaries.len() {
            self.run_notary(index)?;
        }
        for index in 0..self.parties.len() {
            self.run_party(index);
        }
        if faults_on && self.faults.adversary && self.rng.chance(60) {
            self.attack();
        }
        let ledgers: Vec<_> = self.ledgers.iter().map(|node| node.ledger.as_ref()).collect();
        self.checker.check(&ledgers, &self.deals)
    }

    /// The highest block of ledger `index` that participants may read: the tip,
    /// or on an EVM network the block `depth - 1` below it.
    fn confirmed_height(&self, index: usize, ledger: &Ledger<MemoryStore>) -> u64 {
        match &self.evm {
            Some(evm) if evm.index == index => ledger.tip().height.saturating_sub(evm.depth - 1),
            _ => ledger.tip().height,
        }
    }

    /// Collects the reservations of newly confirmed EVM blocks.
    fn confirm_evm_blocks(&mut self) {
        let Some(evm) = &self.evm else { return };
        let Some(ledger) = self.ledgers[evm.index].ledger.as_ref() else { return };
        let confirmed = self.confirmed_height(evm.index, ledger);
        let evm = self.evm.as_mut().expect("checked above");
        if confirmed <= evm.cursor {
            return;
        }
        let limit = usize::try_from(confirmed - evm.cursor).expect("small");
        for event in ledger.events_from(evm.cursor + 1, limit).expect("memory store reads") {
            if let interlock_core::EscrowEvent::Reserved(reservation) = event.event {
                evm.confirmed_reservations.insert(reservation.id, reservation);
            }
        }
        evm.cursor = confirmed;
    }

    /// Measures, per hashlock deal, how long the seller's side stayed up in one
    /// stretch between the reveal and the payment expiry.
    fn track_seller_side(&mut self, elapsed_ms: u64) {
        let seller_online = self.parties[1].online;
        for (deal_id, info) in self.deals.iter_mut() {
            let Settlement::Hashlock { payment_expiry_ms, .. } = info.terms.settlement else {
                continue;
            };
            let revealed =
                self.checker.state_of(reservation_id(*deal_id, LegKind::Delivery)) == Some(ReservationState::Executed);
            if !revealed || self.now_ms >= payment_expiry_ms {
                continue;
            }
            let payment_up = self.ledgers[Self::ledger_index(info.terms.payment.network)].ledger.is_some();
            // The seller's side: the seller, or the keeper it named (which lives
            // with the payment network's sequencer), and the payment network.
            let acting = seller_online || info.terms.payment.keeper.is_some();
            let (current, longest) = &mut info.seller_up_ms;
            *current = if acting && payment_up { *current + elapsed_ms } else { 0 };
            *longest = (*longest).max(*current);
            info.seller_absent = *longest < SELLER_FAIR_WINDOW_MS;
        }
    }

    fn inject_faults(&mut self) {
        let rate = self.faults.crash_per_mille;
        for index in 0..self.ledgers.len() {
            if self.ledgers[index].ledger.is_some() && self.rng.chance(rate) {
                let down_ms = self.rng.range(50, 1_500);
                self.crash_ledger(index, down_ms);
            }
        }
        for index in 0..self.notaries.len() {
            if self.notaries[index].online && self.rng.chance(rate) {
                let down_ms = self.rng.range(50, 1_500);
                self.crash_notary(index, down_ms);
            }
        }
        for index in 0..self.parties.len() {
            if self.parties[index].online && self.rng.chance(rate) {
                let down_ms = self.rng.range(50, 800);
                self.crash_party(index, down_ms);
            }
        }
        // A party absent across a deadline: down from shortly before the first
        // deadline of some deal to well after it.
        if self.faults.absence && self.rng.chance(3) {
            let index = usize::from(self.rng.chance(500));
            if self.parties[index].online {
                let down_ms = self.rng.range(2_000, 6_000);
                self.crash_party(index, down_ms);
            }
        }
    }

    fn note(&self, what: impl FnOnce() -> String) {
        if self.trace {
            eprintln!("[{:>6} ms step {:>5}] {}", self.now_ms - T0_MS, self.step, what());
        }
    }

    fn crash_ledger(&mut self, index: usize, down_ms: u64) {
        self.note(|| format!("crash ledger {index} for {down_ms} ms"));
        let node = &mut self.ledgers[index];
        let ledger = node.ledger.take().expect("online");
        node.committed_digest = ledger.state().digest();
        node.disk = Some(ledger.into_store());
        node.inbox.clear();
        node.down_until_ms = self.now_ms + down_ms;
    }

    fn crash_notary(&mut self, index: usize, down_ms: u64) {
        self.note(|| format!("crash notary {index} for {down_ms} ms"));
        let node = &mut self.notaries[index];
        node.online = false;
        node.deals.clear();
        node.pending.clear();
        node.inbox.clear();
        node.down_until_ms = self.now_ms + down_ms;
    }

    fn crash_party(&mut self, index: usize, down_ms: u64) {
        self.note(|| format!("crash party {index} for {down_ms} ms"));
        let node = &mut self.parties[index];
        node.online = false;
        node.sagas.clear();
        node.inbox.clear();
        node.down_until_ms = self.now_ms + down_ms;
    }

    fn restart_due(&mut self) {
        let now_ms = self.now_ms;
        for node in &mut self.ledgers {
            if node.ledger.is_none() && now_ms >= node.down_until_ms {
                let store = node.disk.take().expect("a crashed ledger left its disk");
                let ledger = Ledger::open(store, node.genesis.clone()).expect("the store reopens");
                assert_eq!(
                    ledger.state().digest(),
                    node.committed_digest,
                    "durability: the ledger lost committed state on restart"
                );
                node.ledger = Some(ledger);
            }
        }
        for node in &mut self.notaries {
            if !node.online && now_ms >= node.down_until_ms {
                node.online = true;
                node.deals = node
                    .disk
                    .iter()
                    .map(|(id, (terms, decision))| (*id, NotaryDeal::restore(terms.clone(), *decision)))
                    .collect();
            }
        }
        for node in &mut self.parties {
            if !node.online && now_ms >= node.down_until_ms {
                node.online = true;
                node.sagas = node
                    .disk
                    .sagas
                    .iter()
                    .map(|(id, bytes)| (*id, (Saga::decode_record(bytes).expect("records decode"), Some(0))))
                    .collect();
            }
        }
    }

    fn deliver(&mut self) {
        let now_ms = self.now_ms;
        let (due, later): (Vec<Message>, Vec<Message>) =
            std::mem::take(&mut self.network).into_iter().partition(|m| m.deliver_at_ms <= now_ms);
        self.network = later;
        for message in due {
            match (message.to, message.payload) {
                (Node::Ledger(index), Payload::Transaction(tx)) => {
                    if self.ledgers[index].ledger.is_some() {
                        self.ledgers[index].inbox.push(tx);
                    }
                }
                (Node::Party(index), Payload::Vote(vote)) => {
                    if self.parties[index].online {
                        self.parties[index].inbox.push(vote);
                    }
                }
                (Node::Notary(index), Payload::SignedDeal(deal)) => {
                    if self.notaries[index].online {
                        self.notaries[index].inbox.push(deal);
                    }
                }
                (to, payload) => unreachable!("no route for {payload:?} to {to:?}"),
            }
        }
    }

    fn run_ledger(&mut self, index: usize) -> Result<(), String> {
        let now_ms = local(self.now_ms, self.ledgers[index].skew_ms);
        let produce = self.rng.chance(400);
        let node = &mut self.ledgers[index];
        let Some(ledger) = node.ledger.as_mut() else {
            return Ok(());
        };
        for tx in node.inbox.drain(..) {
            let _ = ledger.submit(tx);
        }
        // The keeper, in the ledger node's process. It executes, for their
        // beneficiaries, the reservations that name it once their token is public
        // (a hashlock secret revealed, a commit certificate used on either
        // network), and cancels what has expired and can no longer execute.
        let keeper = address(&self.keeper);
        let mut ops = Vec::new();
        for reservation in ledger.state().reservations() {
            if reservation.state != ReservationState::Reserved {
                continue;
            }
            let token = self.revealed.get(&reservation.deal_id);
            let executable = match (&reservation.condition, token) {
                (interlock_core::Condition::Hashlock(_), Some(token @ Token::Secret(_))) => {
                    (now_ms < reservation.expiry_ms).then(|| token.clone())
                }
                (interlock_core::Condition::Notary { .. }, Some(token @ Token::Certificate(c))) => {
                    (c.decision == Decision::Commit).then(|| token.clone())
                }
                _ => None,
            };
            match executable {
                Some(token) if reservation.keeper == Some(keeper) => {
                    ops.push((reservation.id, EscrowOp::Execute { reservation: reservation.id, token }))
                }
                // Committed: never cancel it, even past the backstop.
                Some(_) => {}
                None if now_ms >= reservation.expiry_ms => {
                    ops.push((reservation.id, EscrowOp::Cancel { reservation: reservation.id, certificate: None }))
                }
                None => {}
            }
        }
        for (id, op) in ops.into_iter().take(64) {
            if node.keeper_sent.get(&id).is_some_and(|at| now_ms < at + 500) {
                continue;
            }
            node.keeper_sent.insert(id, now_ms);
            let nonce = self.keeper_nonce.entry(ledger.network()).or_insert(0);
            *nonce += 1;
            let _ = ledger.submit(Transaction::sign(&self.keeper, ledger.network(), *nonce, Op::Escrow(op)));
        }
        if !produce {
            return Ok(());
        }
        let evm = self.evm.as_ref().is_some_and(|evm| evm.index == index);
        // An EVM block's time is whole seconds.
        let block_ms = if evm { now_ms / 1000 * 1000 } else { now_ms };
        let outcome = if ledger.mempool_len() == 0 && now_ms >= ledger.tip().timestamp_ms + HEARTBEAT_MS {
            ledger.produce_heartbeat(block_ms).map(Some)
        } else {
            ledger.produce_block(block_ms)
        };
        let outcome = outcome.map_err(|e| format!("ledger {index} failed to produce a block: {e}"))?;
        if let Some(outcome) = outcome {
            for event in &outcome.events {
                if let interlock_core::EscrowEvent::Executed { deal_id, token, .. } = &event.event {
                    self.revealed.insert(*deal_id, token.clone());
                }
            }
            if self.trace {
                for event in &outcome.events {
                    eprintln!(
                        "[{:>6} ms step {:>5}] network {index} block {} at {}: {:?} {:?} {}",
                        self.now_ms - T0_MS,
                        self.step,
                        outcome.header.height,
                        outcome.header.timestamp_ms - T0_MS,
                        event.event.deal_id(),
                        event.event.leg(),
                        match &event.event {
                            interlock_core::EscrowEvent::Reserved(_) => "reserved",
                            interlock_core::EscrowEvent::Executed { .. } => "executed",
                            interlock_core::EscrowEvent::Cancelled { .. } => "cancelled",
                        }
                    );
                }
                for rejection in &outcome.rejected {
                    eprintln!(
                        "[{:>6} ms step {:>5}] network {index} rejected: {}",
                        self.now_ms - T0_MS,
                        self.step,
                        rejection.error
                    );
                }
            }
            let block = ledger.block(outcome.header.height).map_err(|e| e.to_string())?;
            if let Some(block) = block {
                for tx in &block.transactions {
                    if self.forbidden.contains(&tx.id()) {
                        return Err(format!(
                            "adversarial transaction applied on network {}: {:?}",
                            ledger.network(),
                            tx.op
                        ));
                    }
                }
            }
            node.committed_digest = ledger.state().digest();
        }
        Ok(())
    }

    fn run_notary(&mut self, index: usize) -> Result<(), String> {
        if !self.notaries[index].online {
            return Ok(());
        }
        let now_ms = local(self.now_ms, self.notaries[index].skew_ms);
        let inbox = std::mem::take(&mut self.notaries[index].inbox);
        let mut outputs = Vec::new();
        for signed in inbox {
            let deal_id = signed.terms.id();
            let node = &mut self.notaries[index];
            if let Some(deal) = node.deals.get(&deal_id) {
                outputs.extend(deal.vote(&node.key).map(NotaryOutput::Vote));
                continue;
            }
            match NotaryDeal::accept(&node.key, &signed, now_ms) {
                Ok((deal, first)) => {
                    node.disk.insert(deal_id, (deal.terms().clone(), None));
                    node.deals.insert(deal_id, deal);
                    outputs.extend(first);
                }
                Err(error) => return Err(format!("notary {index} refused a valid deal: {error}")),
            }
        }
        // Poll both networks for the reservations of undecided deals.
        let undecided: Vec<DealId> =
            self.notaries[index].deals.iter().filter(|(_, d)| d.wake_at_ms().is_some()).map(|(id, _)| *id).collect();
        for deal_id in undecided {
            let terms = self.deals[&deal_id].terms.clone();
            for leg in LegKind::BOTH {
                let ledger_index = Self::ledger_index(terms.leg(leg).network);
                let Some(ledger) = self.ledgers[ledger_index].ledger.as_ref() else {
                    continue;
                };
                let id = reservation_id(deal_id, leg);
                let reservation = match &self.evm {
                    Some(evm) if evm.index == ledger_index => evm.confirmed_reservations.get(&id),
                    _ => ledger.state().reservation(&id),
                };
                if let Some(reservation) = reservation {
                    let event = interlock_core::EscrowEvent::Reserved(reservation.clone());
                    let node = &mut self.notaries[index];
                    let deal = node.deals.get_mut(&deal_id).expect("listed");
                    let decided = deal.observe(now_ms, &event, &NotaryApprovals(&node.moved, &node.pending));
                    count_commit(&mut node.pending, &terms, &decided, utc_day(now_ms));
                    outputs.extend(decided);
                }
            }
            let node = &mut self.notaries[index];
            let deal = node.deals.get_mut(&deal_id).expect("listed");
            let decided = deal.tick(now_ms, &NotaryApprovals(&node.moved, &node.pending));
            count_commit(&mut node.pending, &terms, &decided, utc_day(now_ms));
            outputs.extend(decided);
        }
        self.notary_outputs(index, outputs)
    }

    fn notary_outputs(&mut self, index: usize, outputs: Vec<NotaryOutput>) -> Result<(), String> {
        let mut queue: std::collections::VecDeque<NotaryOutput> = outputs.into();
        while let Some(output) = queue.pop_front() {
            match output {
                NotaryOutput::Record { deal_id, decision, .. } => {
                    // A crash before the write loses the decision, which was never signed.
                    if self.rng.chance(self.faults.crash_per_mille * 20) {
                        let down_ms = self.rng.range(50, 1_000);
                        self.crash_notary(index, down_ms);
                        return Ok(());
                    }
                    let now_ms = local(self.now_ms, self.notaries[index].skew_ms);
                    let node = &mut self.notaries[index];
                    node.disk.get_mut(&deal_id).expect("accepted deals are on disk").1 = Some(decision);
                    if decision == Decision::Commit {
                        let terms = node.disk[&deal_id].0.clone();
                        for (_, party, asset, amount) in movements(&terms) {
                            let key = (party, asset.clone(), utc_day(now_ms));
                            if let Some(pending) = node.pending.get_mut(&key) {
                                *pending = pending.saturating_sub(amount);
                            }
                            let total = node.moved.entry(key).or_default();
                            *total += amount;
                            // The approval rule, checked from outside the decider.
                            if terms.policy.amount_max_per_day.is_some_and(|max| *total > max) {
                                return Err(format!(
                                    "notary {index} committed {deal_id:?} over its daily limit: {total} {asset}"
                                ));
                            }
                        }
                    }
                    let deal = node.deals.get_mut(&deal_id).expect("deciding deal exists");
                    queue.extend(deal.recorded(&node.key));
                }
                NotaryOutput::Vote(vote) => {
                    let previous = self.votes_sent.insert((index, vote.deal_id), vote.decision);
                    if previous.is_some_and(|p| p != vote.decision) {
                        return Err(format!("notary {index} signed both commit and abort for {:?}", vote.deal_id));
                    }
                    for party in 0..self.parties.len() {
                        self.send(Node::Party(party), Payload::Vote(vote));
                    }
                }
            }
        }
        Ok(())
    }

    fn run_party(&mut self, index: usize) {
        if !self.parties[index].online {
            return;
        }
        let now_ms = local(self.now_ms, self.parties[index].skew_ms);
        // Follow both networks from the persisted cursors.
        let mut events = Vec::new();
        let mut cursors = Vec::new();
        for network in NETWORKS {
            if !self.rng.chance(700) {
                continue;
            }
            let Some(ledger) = self.ledgers[Self::ledger_index(network)].ledger.as_ref() else {
                continue;
            };
            let cursor = self.parties[index].disk.cursors.get(&network).copied().unwrap_or(0);
            let tip = self.confirmed_height(Self::ledger_index(network), ledger);
            if tip <= cursor {
                continue;
            }
            let to = tip.min(cursor + EVENT_BLOCKS_PER_POLL as u64);
            let limit = usize::try_from(to - cursor).expect("small");
            events.extend(ledger.events_from(cursor + 1, limit).expect("memory store reads"));
            let time_ms =
                ledger.block(to).expect("memory store reads").expect("block below the tip").header.timestamp_ms;
            cursors.push((network, to, time_ms));
        }
        let votes = std::mem::take(&mut self.parties[index].inbox);
        let deal_ids: Vec<DealId> = self.parties[index].sagas.keys().copied().collect();
        for deal_id in deal_ids {
            let node = &mut self.parties[index];
            let (saga, wake_at) = node.sagas.get_mut(&deal_id).expect("listed");
            let mut outputs = Vec::new();
            let mut wake = *wake_at;
            let mut touched = false;
            for event in events.iter().filter(|e| e.event.deal_id() == deal_id) {
                let step = saga.on_chain_event(now_ms, &event.event);
                outputs.extend(step.outputs);
                wake = step.wake_at_ms;
                touched = true;
            }
            for (network, _, time_ms) in &cursors {
                let step = saga.on_chain_time(now_ms, *network, *time_ms);
                outputs.extend(step.outputs);
                wake = step.wake_at_ms;
                touched = true;
            }
            for vote in votes.iter().filter(|v| v.deal_id == deal_id) {
                let step = saga.on_vote(now_ms, vote);
                outputs.extend(step.outputs);
                wake = step.wake_at_ms;
                touched = true;
            }
            if !touched && wake.is_some_and(|at| now_ms >= at) {
                let step = saga.step(now_ms);
                outputs.extend(step.outputs);
                wake = step.wake_at_ms;
                touched = true;
            }
            *wake_at = wake;
            if !touched {
                continue;
            }
            // Persist before acting on it.
            let record = saga.encode_record();
            node.disk.sagas.insert(deal_id, record);
            if !outputs.is_empty() && self.rng.chance(self.faults.crash_per_mille * 5) {
                let down_ms = self.rng.range(50, 800);
                self.crash_party(index, down_ms);
                return;
            }
            self.party_outputs(index, deal_id, outputs);
        }
        // Every saga saw these events: only now move the persisted cursors on.
        self.parties[index].disk.cursors.extend(cursors.into_iter().map(|(network, to, _)| (network, to)));
    }

    fn party_outputs(&mut self, index: usize, deal_id: DealId, outputs: Vec<SagaOutput>) {
        for output in outputs {
            self.note(|| {
                format!(
                    "party {index} {deal_id:?}: {}",
                    match &output {
                        SagaOutput::Submit { network, op } => format!(
                            "submit on {network}: {}",
                            match op {
                                EscrowOp::Reserve(r) => format!("reserve {}", r.leg),
                                EscrowOp::Execute { .. } => "execute".into(),
                                EscrowOp::Cancel { .. } => "cancel".into(),
                            }
                        ),
                        other => format!("{other:?}"),
                    }
                )
            });
            match output {
                SagaOutput::Submit { network, op } => {
                    let node = &mut self.parties[index];
                    let nonce = node.disk.nonces.entry(network).or_insert(0);
                    *nonce += 1;
                    let tx = Transaction::sign(&node.key, network, *nonce, Op::Escrow(op));
                    self.send(Node::Ledger(Self::ledger_index(network)), Payload::Transaction(tx));
                }
                SagaOutput::AskNotaries => {
                    let signed = self.deals[&deal_id].signed.clone();
                    for notary in 0..self.notaries.len() {
                        self.send(Node::Notary(notary), Payload::SignedDeal(signed.clone()));
                    }
                }
                SagaOutput::Finished(outcome) => {
                    self.outcomes.insert((deal_id, index), outcome);
                }
            }
        }
    }

    /// Transactions that must be refused: executing with a wrong secret,
    /// executing a reservation made for someone else, executing twice.
    fn attack(&mut self) {
        let deal_ids: Vec<DealId> = self.deals.keys().copied().collect();
        let deal_id = *self.rng.pick(&deal_ids);
        let terms = self.deals[&deal_id].terms.clone();
        let leg = *self.rng.pick(&LegKind::BOTH);
        let network = terms.leg(leg).network;
        let ledger_index = Self::ledger_index(network);
        let Some(ledger) = self.ledgers[ledger_index].ledger.as_ref() else {
            return;
        };
        let id = reservation_id(deal_id, leg);
        let Some(reservation) = ledger.state().reservation(&id) else {
            return;
        };
        let state = reservation.state;
        // The best token the adversary has: one revealed on chain for this deal
        // (a hashlock secret, a commit certificate), else a guess.
        let guess = Token::Secret(Secret(self.rng.bytes32()));
        let seen = self.revealed.get(&deal_id).cloned().unwrap_or_else(|| guess.clone());
        // Who signs: Mallory, or a party's own agent misbehaving (which then uses
        // that party's nonces, as its honest self would).
        const MALLORY: Option<usize> = None;
        let owner = Some(if leg == LegKind::Payment { 0 } else { 1 });
        let beneficiary = Some(if leg == LegKind::Payment { 1 } else { 0 });
        if state == ReservationState::Reserved && self.rng.chance(400) {
            // Cancel early: the owner (after taking the other leg, say) or Mallory.
            let signer = if self.rng.chance(500) { owner } else { MALLORY };
            let ledger_now_ms = local(self.now_ms, self.ledgers[ledger_index].skew_ms);
            // Far from the expiry it must be refused; near it, it may land late and
            // apply lawfully, and the invariants judge the outcome.
            let must_fail = reservation.expiry_ms > ledger_now_ms + 5_000;
            let (key, nonce) = self.adversary_signer(signer, network);
            let tx = Transaction::sign(
                &key,
                network,
                nonce,
                Op::Escrow(EscrowOp::Cancel { reservation: id, certificate: None }),
            );
            if must_fail {
                self.forbidden.insert(tx.id());
            }
            self.send(Node::Ledger(ledger_index), Payload::Transaction(tx));
            return;
        }
        let (signer, token) = match self.rng.range(0, 3) {
            // Mallory, front-running the beneficiary with the revealed token.
            0 => (MALLORY, seen),
            // The owner executing its own reservation, not made for it.
            1 => (owner, seen),
            // The beneficiary with a wrong secret.
            2 if state == ReservationState::Reserved => (beneficiary, guess),
            // The beneficiary executing a settled reservation again.
            _ if state != ReservationState::Reserved => (beneficiary, seen),
            _ => return,
        };
        let (key, nonce) = self.adversary_signer(signer, network);
        let tx = Transaction::sign(&key, network, nonce, Op::Escrow(EscrowOp::Execute { reservation: id, token }));
        self.forbidden.insert(tx.id());
        self.send(Node::Ledger(ledger_index), Payload::Transaction(tx));
    }

    /// The key and next nonce for an adversarial transaction signed by Mallory
    /// (`None`) or by party `index`'s own agent.
    fn adversary_signer(&mut self, signer: Option<usize>, network: NetworkId) -> (PartyKey, u64) {
        match signer {
            None => {
                let nonce = self.mallory_nonce.entry(network).or_insert(0);
                *nonce += 1;
                (self.mallory.clone(), *nonce)
            }
            Some(index) => {
                let node = &mut self.parties[index];
                let nonce = node.disk.nonces.entry(network).or_insert(0);
                *nonce += 1;
                (node.key.clone(), *nonce)
            }
        }
    }

    /// True once every reservation of every deal settled and every saga ended.
    pub fn quiescent(&self) -> bool {
        let all_settled = self.deals.iter().all(|(deal_id, info)| {
            LegKind::BOTH.iter().all(|leg| {
                let ledger = &self.ledgers[Self::ledger_index(info.terms.leg(*leg).network)];
                ledger.ledger.as_ref().is_some_and(|l| {
                    l.state()
                        .reservation(&reservation_id(*deal_id, *leg))
                        .is_none_or(|r| r.state != ReservationState::Reserved)
                })
            })
        });
        let all_ended =
            self.parties.iter().all(|p| p.online && p.sagas.values().all(|(saga, _)| saga.outcome().is_some()));
        all_settled && all_ended
    }

    /// The final checks, once deadlines have passed and the world is quiet.
    pub fn finish(&self) -> Result<(), String> {
        self.checker.finish(&self.deals)
    }
}
