//! What a seed draws before the first step: the fault rates, the keys, each
//! network's genesis, the deals with their policies, and whether the second
//! network has deep-chain semantics.

use super::ledgers::{DepthSemantics, LedgerNode, ScriptSemantics, DEEP_CHAIN_PER_MILLE, SCRIPT_CHAIN_PER_MILLE};
use super::notaries::NotaryNode;
use super::parties::{PartyDisk, PartyNode};
use super::{address, DealInfo, Faults, Relay, World, NETWORKS, T0_MS};
use crate::checker::Checker;
use crate::rng::Rng;
use interlock_core::crypto::{NotaryKey, PartyKey, Secret};
use interlock_core::notary::SignedDeal;
use interlock_core::saga::{Role, Saga};
use interlock_core::{
    Asset, AssetCode, DealTerms, ItemId, Leg, NetworkId, NotaryAddress, OnTimeout, Policy, Settlement,
};
use interlock_ledger::{Genesis, Ledger, MemoryStore, Op, Transaction};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

/// A policy for a deal: every static rule holds for the deal drawn (the
/// parties would not sign otherwise); the daily limit and the extension are
/// what the notaries and sagas must honour.
/// The seed's deep-chain semantics, from a stream of its own so the other
/// draws of a seed stay as they were: the confirmation depth, reorganisations
/// per mille per step, and whether some reach deeper than the depth.
fn draw_deep_chain(seed: u64) -> Option<(u64, u64, bool)> {
    let mut deep_rng = Rng::new(seed ^ 0x0045_564d_0000_0000);
    if !deep_rng.chance(DEEP_CHAIN_PER_MILLE) {
        return None;
    }
    let depth = deep_rng.range(1, 4);
    // Drawn after the depth from the same stream, so depths stay as they were.
    let reorg_per_mille = if deep_rng.chance(super::reorg::REORG_SEEDS_PER_MILLE) { deep_rng.range(1, 20) } else { 0 };
    // Drawn last from the same stream, so the draws above stay as they were.
    let deep_reorgs = reorg_per_mille > 0 && deep_rng.chance(super::reorg::DEEP_REORG_SEEDS_PER_MILLE);
    Some((depth, reorg_per_mille, deep_reorgs))
}

/// What a script chain can hold of a deal, as the deal check would ask: its
/// legs there name no keeper and move fungible assets, and a hashlock margin
/// covers the chain's median time lag on top of what it was. Amounts there
/// count the chain's smallest unit, so its fees are a fraction of a leg: a
/// leg is drawn in thousands of them, and the deal's policy limits with it.
/// Now and then (from `fees_rng`) a leg is dust instead, for the deal check
/// to refuse.
fn fit_to_script_chain(
    terms: &mut DealTerms,
    network: NetworkId,
    lag_ms: u64,
    gold: &AssetCode,
    rng: &mut Rng,
    fees_rng: &mut Rng,
) {
    use super::fees::{DUST_LEG_PER_MILLE, DUST_THRESHOLD, SCRIPT_AMOUNT_SCALE};
    for leg in [&mut terms.payment, &mut terms.delivery] {
        if leg.network != network {
            continue;
        }
        leg.keeper = None;
        if matches!(leg.asset, Asset::Unique { .. }) {
            leg.asset = Asset::Fungible { code: gold.clone(), amount: u128::from(rng.range(1, 500)) };
        }
        if let Asset::Fungible { amount, .. } = &mut leg.asset {
            *amount *= SCRIPT_AMOUNT_SCALE;
            if fees_rng.chance(DUST_LEG_PER_MILLE) {
                let dust_max = u64::try_from(DUST_THRESHOLD).expect("small") + 150;
                *amount = u128::from(fees_rng.range(1, dust_max));
            }
        }
    }
    let touches = terms.payment.network == network || terms.delivery.network == network;
    if touches {
        let policy = &mut terms.policy;
        policy.amount_max = policy.amount_max.map(|max| max * SCRIPT_AMOUNT_SCALE);
        policy.amount_max_per_day = policy.amount_max_per_day.map(|max| max * SCRIPT_AMOUNT_SCALE);
    }
    if let Settlement::Hashlock { payment_expiry_ms, margin_ms, .. } = &mut terms.settlement {
        if touches {
            *payment_expiry_ms += lag_ms;
            *margin_ms += lag_ms;
        }
    }
}

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

        // Drawn from a stream of its own, so the other draws of a seed stay as they were.
        let mut script_rng = Rng::new(seed ^ 0x0053_4352_4950_5400);
        // Not on a seed whose deep chain reorganises past its depth: a
        // reservation such a reorganisation makes again after its deal ended
        // is left to a keeper, which a script chain has none of.
        let deep_reorgs = draw_deep_chain(seed).is_some_and(|(_, _, deep_reorgs)| deep_reorgs);
        let script_chain = (script_rng.chance(SCRIPT_CHAIN_PER_MILLE) && !deep_reorgs).then(|| ScriptSemantics {
            index: 1,
            lag_ms: script_rng.range(200, 1_500),
            late_claims_sent: 0,
        });
        let mut ledgers: Vec<LedgerNode> = NETWORKS
            .iter()
            .enumerate()
            .map(|(index, network)| {
                let genesis = Genesis { network: *network, operator: operator.public(), timestamp_ms: T0_MS };
                let rules = ScriptSemantics::rules_for(script_chain.as_ref(), index);
                let ledger =
                    Ledger::open(MemoryStore::new(), genesis.clone()).expect("fresh store opens").with_rules(rules);
                LedgerNode {
                    genesis,
                    skew_ms: skew(&mut rng),
                    ledger: Some(ledger),
                    disk: None,
                    down_until_ms: 0,
                    inbox: Vec::new(),
                    committed_digest: interlock_core::Hash32::ZERO,
                    keeper_sent: HashMap::new(),
                    pool: Default::default(),
                }
            })
            .collect();

        // Genesis: register everyone and fund the buyer with USD, the seller with
        // GOLD and one TITLE item per deal, on both networks (on a script
        // chain in its smallest unit).
        for (index, node) in ledgers.iter_mut().enumerate() {
            let scale = if script_chain.is_some_and(|script| script.index == index) {
                super::fees::SCRIPT_AMOUNT_SCALE
            } else {
                1
            };
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
            let funds = 1_000_000 * scale;
            setup(Op::Issue { to: address(&buyer), asset: Asset::Fungible { code: usd.clone(), amount: funds } });
            setup(Op::Issue { to: address(&seller), asset: Asset::Fungible { code: gold.clone(), amount: funds } });
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
        // The fee market and the dust legs, from a stream of their own, so
        // the script chain's other draws stay as they were.
        let mut fees_rng = Rng::new(seed ^ 0x0046_4545_5300_0000);
        let mut fees = script_chain.map(|script| {
            let floor = ledgers[script.index].ledger.as_ref().map_or(0, |ledger| ledger.tip().height);
            super::fees::ScriptFees::draw(&mut fees_rng, floor)
        });
        let mut refused_deals = Vec::new();
        let mut refusals = Vec::new();

        // Most seeds' deals name the network keeper as each beneficiary's keeper,
        // as DESIGN.md's hashlock mode asks ("B, or a keeper acting for B"); the
        // rest have none, and run without message loss, where the parties alone
        // must settle everything.
        let keepers_named = faults.loss_per_mille > 0 || rng.chance(700);
        let keeper_for_deals = keepers_named.then(|| address(&keeper));
        let mut deals = BTreeMap::new();
        // Drawn from a stream of its own, so the other draws of a seed stay as they were.
        let mut inspection_rng = Rng::new(seed ^ 0x494e_5350_4543_5400);
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
            let mut terms = DealTerms {
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
            if let Some(script) = &script_chain {
                let network = NETWORKS[script.index];
                fit_to_script_chain(&mut terms, network, script.lag_ms, &gold, &mut script_rng, &mut fees_rng);
                if let Some(refusal) = super::fees::leg_refusal(&terms, network) {
                    fees.as_mut().expect("a script chain has fees").dust_refused += 1;
                    refused_deals.push(terms.id());
                    refusals.push(refusal);
                    continue;
                }
            }
            // Never on the script chain, whose outputs cannot hold a leg.
            if script_chain.is_none() {
                terms.policy.inspection = super::inspection::draw_inspection(&mut inspection_rng, &terms);
            }
            let deal_id = terms.id();
            let signed = Arc::new(SignedDeal {
                terms: terms.clone(),
                buyer_signature: buyer.sign_deal(deal_id),
                seller_signature: seller.sign_deal(deal_id),
            });
            last_deadline_ms = last_deadline_ms.max(terms.last_deadline_ms());
            // An inspected deal ends after its window and its operators' verdict.
            if let Some(ends_ms) = terms.inspection_ends_ms() {
                last_deadline_ms = last_deadline_ms.max(ends_ms + 5_000);
                faults_until_ms = faults_until_ms.max(ends_ms + 2_000);
            }
            faults_until_ms = faults_until_ms.max(match &terms.settlement {
                Settlement::Hashlock { payment_expiry_ms, .. } => *payment_expiry_ms,
                Settlement::Notary { .. } => terms.extended_decision_deadline_ms().expect("notary mode") + 5_000,
            });
            let secret = matches!(terms.settlement, Settlement::Hashlock { .. }).then_some(secret);
            let plan = super::inspection::draw_plan(&mut inspection_rng, &terms, [&buyer, &seller]);
            deals.insert(deal_id, (Arc::new(terms), signed, secret, plan));
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
            for (deal_id, (terms, _, secret, _)) in &deals {
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
                inspections: Default::default(),
            })
            .collect();
        let deals = deals
            .into_iter()
            .map(|(id, (terms, signed, secret, inspection))| {
                let info = DealInfo {
                    terms,
                    signed,
                    seller_absent: false,
                    seller_up_ms: (0, 0),
                    reorg_lost: false,
                    fee_cap_exceeded: false,
                    secret,
                    inspection,
                };
                (id, info)
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
            verdicts_sent: HashMap::new(),
            verdict_votes: HashMap::new(),
            verdicts: HashMap::new(),
            deals_resend_ms: 0,
            disputes_refused: 0,
            disputes_passed_on: 0,
            trace: std::env::var_os("INTERLOCK_SIM_TRACE").is_some(),
            revealed: HashMap::new(),
            deep_chain: None,
            script_chain,
            fees,
            spend_sizes: HashMap::new(),
            refused_deals,
            relay: None,
        };
        world.relay = Relay::drawn(seed, world.script_chain.is_some()).then(|| Relay::new(seed));
        if let Some(fees) = &world.fees {
            let (spikes, cap, after) = (fees.spikes.clone(), fees.cap_rate, fees.replace_after_blocks);
            world.note(|| {
                format!("script chain fee market: spikes {spikes:?}, cap {cap} per vbyte, raised after {after} blocks")
            });
        }
        for refusal in refusals {
            world.note(|| format!("deal check refused a deal: {refusal}"));
        }
        if let Some(script) = &world.script_chain {
            let lag = script.lag_ms;
            world.note(|| {
                format!("network 1 is a script chain: named keys only, late claims, median time {lag} ms behind")
            });
        }
        // Drawn from a stream of its own, so the other draws of a seed stay as they were.
        if let Some((depth, reorg_per_mille, deep_reorgs)) = draw_deep_chain(seed) {
            let rng = Rng::new(seed ^ 0x0052_454f_5247_0000);
            world.deep_chain = Some(DepthSemantics {
                index: 1,
                depth,
                confirmed_reservations: HashMap::new(),
                cursor: 0,
                reorg_per_mille,
                rng,
                reorganisations: 0,
                deep_reorgs,
                deep_reorganisations: 0,
                events_taken: 0,
                floor: world.ledgers[1].ledger.as_ref().map_or(0, |ledger| ledger.tip().height),
                dropped: HashMap::new(),
            });
            world.note(|| {
                format!(
                    "network 1 has deep-chain semantics: whole-second blocks, confirmation depth {depth}, \
                     reorganisations {reorg_per_mille} per mille per step{}",
                    if deep_reorgs { ", some deeper than the depth" } else { "" }
                )
            });
        }
        let ledgers: Vec<_> = world.ledgers.iter().map(|n| n.ledger.as_ref().expect("online")).collect();
        world.checker.start(&ledgers);
        world
    }
}
