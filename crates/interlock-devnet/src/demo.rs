//! `interlock demo`: four deals end to end on two embedded ledgers (the fourth
//! held for inspection, disputed and reversed: `demo_inspection.rs`), or three on an
//! embedded ledger and an external chain (see [`crate::demo_external`]).

use crate::demo_external::{ExternalKind, ExternalWorld};
use crate::runtime::{Progress, Runtime};
use crate::setup::{self, address, code, network_name, now_ms, ALPHA, BETA};
use interlock_core::crypto::Secret;
use interlock_core::saga::{Outcome, Role};
use interlock_core::{
    reservation_id, Address, Asset, DealId, DealTerms, EscrowEvent, ItemId, Leg, LegKind, Mode, NetworkId, Policy,
    ReservationState, Settlement,
};
use interlock_ledger::SqliteStore;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

/// Longest a demo deal may take before the demo gives up on it.
const DEAL_TIME_MAX: Duration = Duration::from_secs(30);
const ROUND_PAUSE: Duration = Duration::from_millis(20);

pub(crate) type Balances = BTreeMap<String, BTreeMap<String, BTreeMap<String, u128>>>;

pub(crate) type Plan = interlock_chain::demo::DemoDeal;

/// Runs the demo; `external` makes beta a chain of that kind instead of an
/// embedded ledger.
pub fn run(dir: Option<PathBuf>, json: bool, external: Option<ExternalKind>) -> anyhow::Result<bool> {
    let dir = match dir {
        Some(dir) => dir,
        None => tempfile::Builder::new().prefix("interlock-demo-").tempdir()?.keep(),
    };
    let say = |line: String| {
        if !json {
            println!("{line}");
        }
    };
    let (mut runtime, plans, external_world) = if let Some(kind) = external {
        let (runtime, world) = crate::demo_external::world(&dir, kind)?;
        say(format!("Interlock demo: an embedded ledger (alpha) and {}, in {}", world.introduce(), dir.display()));
        say(format!("setup    {}", world.describe()));
        let plans = world.plans();
        (runtime, plans, Some(world))
    } else {
        say(format!("Interlock demo: two embedded ledgers, alpha and beta, in {}", dir.display()));
        let funding = setup::Funding { buyer_usd_on_alpha: 1_000, seller_gold_on_beta: 500, seller_titles_on_beta: 1 };
        let runtime = setup::world(&dir, &funding, 3)?;
        say("setup    registered buyer and seller on both networks; buyer holds 1000 USD on alpha, seller 500 GOLD and TITLE #1 on beta".into());
        (runtime, embedded_plans(), None)
    };
    let mut reports = Vec::new();
    let mut all_held = true;
    for (number, plan) in plans.iter().enumerate() {
        say(String::new());
        say(format!("deal {}: {}", number + 1, plan.title));
        let nonce = u64::try_from(number).expect("small");
        let (report, held) = run_deal(&mut runtime, external_world.as_ref(), plan, nonce, &say)?;
        all_held &= held;
        reports.push(report);
    }
    // On two embedded ledgers, which hold legs for inspection: a fourth deal
    // the buyer disputes and the notaries reverse.
    if external_world.is_none() {
        say(String::new());
        say(format!("deal {}: {}", plans.len() + 1, crate::demo_inspection::TITLE));
        let nonce = u64::try_from(plans.len()).expect("small");
        let (report, held) = crate::demo_inspection::run(&mut runtime, nonce, &say)?;
        all_held &= held;
        reports.push(report);
    }
    if json {
        println!("{}", serde_json::to_string_pretty(&json!({ "deals": reports }))?);
    } else {
        println!();
        print_table(&reports);
        println!();
        println!(
            "{}",
            if all_held {
                "every invariant held: assets conserved on both networks, each deal all-or-nothing"
            } else {
                "INVARIANT BROKEN: see above"
            }
        );
        println!("ledger files: {}", dir.display());
    }
    Ok(all_held)
}

fn embedded_plans() -> Vec<Plan> {
    let usd = |amount| (ALPHA, Asset::Fungible { code: code("USD"), amount });
    vec![
        Plan {
            title: "notary mode, 2 of 3 notaries: 250 USD on alpha for TITLE #1 on beta",
            mode: Mode::Notary,
            payment: usd(250),
            delivery: (BETA, Asset::Unique { class: code("TITLE"), item: ItemId::from_u128(1) }),
            seller_withholds: false,
        },
        Plan {
            title: "hashlock mode: 100 USD on alpha for 40 GOLD on beta",
            mode: Mode::Hashlock,
            payment: usd(100),
            delivery: (BETA, Asset::Fungible { code: code("GOLD"), amount: 40 }),
            seller_withholds: false,
        },
        Plan {
            title: "notary mode, the seller never reserves: 75 USD on alpha for 10 GOLD on beta",
            mode: Mode::Notary,
            payment: usd(75),
            delivery: (BETA, Asset::Fungible { code: code("GOLD"), amount: 10 }),
            seller_withholds: true,
        },
    ]
}

pub(crate) fn terms_for(
    runtime: &Runtime<SqliteStore>,
    external: Option<&ExternalWorld>,
    plan: &Plan,
    nonce: u64,
) -> anyhow::Result<(DealTerms, Option<Secret>)> {
    let now = now_ms();
    let (buyer, seller) = (runtime.buyer(), runtime.seller());
    // An external chain confirms in seconds, not milliseconds: its deals get longer windows.
    let scale = external.map_or(1, ExternalWorld::time_scale);
    let (settlement, secret) = match plan.mode {
        Mode::Notary => (
            Settlement::Notary {
                notaries: runtime.notary_addresses(),
                threshold: 2,
                decision_deadline_ms: now + 1_500 * scale,
                backstop_expiry_ms: now + 60_000 * scale,
            },
            None,
        ),
        Mode::Hashlock => {
            let secret = Secret(setup::random_bytes()?);
            let settlement = Settlement::Hashlock {
                hash: secret.hash(),
                delivery_expiry_ms: now + 5_000 * scale,
                payment_expiry_ms: now + 8_000 * scale,
                margin_ms: 3_000 * scale,
            };
            (settlement, Some(secret))
        }
    };
    // Each party's account on a network: its ledger key, or its account on the external chain.
    let account = |network: NetworkId, role: Role| -> Address {
        match external {
            Some(world) if world.network() == network => world.account(role),
            _ => address(if role == Role::Buyer { buyer } else { seller }),
        }
    };
    // A leg of `asset` on `network`, from the `owner` party to the other.
    let leg = |(network, asset): &(NetworkId, Asset), owner: Role| {
        let beneficiary = if owner == Role::Buyer { Role::Seller } else { Role::Buyer };
        Leg {
            network: *network,
            asset: asset.clone(),
            owner: account(*network, owner),
            beneficiary: account(*network, beneficiary),
            keeper: None,
        }
    };
    let terms = DealTerms {
        buyer: buyer.public(),
        seller: seller.public(),
        payment: leg(&plan.payment, Role::Buyer),
        delivery: leg(&plan.delivery, Role::Seller),
        settlement,
        policy: Policy::default(),
        observers: Vec::new(),
        dependents: Vec::new(),
        nonce,
    };
    Ok((terms, secret))
}

fn run_deal(
    runtime: &mut Runtime<SqliteStore>,
    external: Option<&ExternalWorld>,
    plan: &Plan,
    nonce: u64,
    say: &dyn Fn(String),
) -> anyhow::Result<(Value, bool)> {
    let (terms, secret) = terms_for(runtime, external, plan, nonce)?;
    let deal_time_max = if external.is_some() { DEAL_TIME_MAX * 4 } else { DEAL_TIME_MAX };
    let before = all_balances(runtime, external)?;
    let deal_id = runtime.add_deal(terms.clone(), secret, plan.seller_withholds)?;
    say(format!("agree    {} signed by buyer and seller ({} mode)", short(deal_id), terms.mode()));
    let started = std::time::Instant::now();
    while runtime.outcome(deal_id).is_some_and(|(b, s)| b.is_none() || s.is_none()) {
        if started.elapsed() > deal_time_max {
            anyhow::bail!("deal {deal_id} did not finish within {deal_time_max:?}");
        }
        for progress in runtime.round(now_ms())? {
            say(describe(&progress, &terms));
        }
        std::thread::sleep(ROUND_PAUSE);
    }
    let after = all_balances(runtime, external)?;
    let payment = leg_state(runtime, external, &terms, deal_id, LegKind::Payment)?;
    let delivery = leg_state(runtime, external, &terms, deal_id, LegKind::Delivery)?;
    let outcome = match (payment, delivery) {
        (Some(ReservationState::Executed), Some(ReservationState::Executed)) => "completed",
        (p, d) if p != Some(ReservationState::Executed) && d != Some(ReservationState::Executed) => "refunded",
        _ => "broken",
    };
    let conserved = totals(&before) == totals(&after);
    let atomic = outcome != "broken"
        && payment != Some(ReservationState::Reserved)
        && delivery != Some(ReservationState::Reserved);
    if !conserved {
        say("INVARIANT BROKEN: conservation: totals per network and asset changed".into());
    }
    if !atomic {
        say(format!("INVARIANT BROKEN: atomicity: payment {payment:?}, delivery {delivery:?}"));
    }
    let (buyer_outcome, seller_outcome) = runtime.outcome(deal_id).expect("known deal");
    say(format!("notify   buyer told {}, seller told {}", outcome_word(buyer_outcome), outcome_word(seller_outcome)));
    let report = json!({
        "id": deal_id.to_string(),
        "mode": terms.mode().to_string(),
        "outcome": outcome,
        "balances_before": before,
        "balances_after": after,
    });
    Ok((report, conserved && atomic))
}

pub(crate) fn outcome_word(outcome: Option<Outcome>) -> &'static str {
    match outcome {
        Some(Outcome::Completed) => "completed",
        Some(Outcome::Refunded) => "refunded",
        Some(Outcome::Windfall) => "windfall",
        Some(Outcome::Lost) => "lost",
        None => "nothing yet",
    }
}

pub(crate) fn short(deal_id: DealId) -> String {
    format!("deal {}…", &deal_id.0.to_hex()[..12])
}

pub(crate) fn describe(progress: &Progress, terms: &DealTerms) -> String {
    match progress {
        Progress::Event(event) => {
            let network = network_name(event.network);
            let leg = event.event.leg();
            let asset = &terms.leg(leg).asset;
            match &event.event {
                EscrowEvent::Reserved(_) => {
                    format!("reserve  {leg} of {asset} reserved on {network} (block {})", event.height)
                }
                EscrowEvent::Executed { .. } => {
                    let who = if leg == LegKind::Payment { "seller" } else { "buyer" };
                    format!("execute  {who} took the {leg} of {asset} on {network} (block {})", event.height)
                }
                EscrowEvent::Cancelled { .. } => {
                    format!("refund   {leg} of {asset} returned to its owner on {network} (block {})", event.height)
                }
                EscrowEvent::Held { .. } => {
                    format!("hold     {leg} of {asset} held for inspection on {network} (block {})", event.height)
                }
            }
        }
        Progress::Decided { notary, decision, .. } => match decision {
            interlock_core::Decision::Commit => {
                format!("decide   notary {} commits: both reservations are in place", notary + 1)
            }
            interlock_core::Decision::Abort => {
                format!("timeout  notary {} aborts: the decision deadline passed without both reservations", notary + 1)
            }
            verdict @ (interlock_core::Decision::Release | interlock_core::Decision::Reverse) => {
                format!("verdict  notary {} decides {verdict}", notary + 1)
            }
        },
        Progress::Finished { role, outcome, .. } => {
            let who = if *role == Role::Buyer { "buyer" } else { "seller" };
            match outcome {
                Outcome::Completed if terms.policy.inspection.is_some() => {
                    format!("complete {who}: both legs executed, held for the inspection period")
                }
                Outcome::Completed => format!("complete {who}: both legs executed"),
                other => format!("complete {who}: {}", outcome_word(Some(*other))),
            }
        }
    }
}

pub(crate) fn leg_state(
    runtime: &Runtime<SqliteStore>,
    external: Option<&ExternalWorld>,
    terms: &DealTerms,
    deal_id: DealId,
    leg: LegKind,
) -> anyhow::Result<Option<ReservationState>> {
    if let Some(world) = external.filter(|world| world.network() == terms.leg(leg).network) {
        return world.leg_state(runtime, terms, leg);
    }
    let Some(ledger) = runtime.ledgers.iter().find(|l| l.network() == terms.leg(leg).network) else {
        return Ok(None);
    };
    Ok(ledger.state().reservation(&reservation_id(deal_id, leg)).map(|r| r.state))
}

/// Both parties' holdings on every network.
pub(crate) fn all_balances(
    runtime: &Runtime<SqliteStore>,
    external: Option<&ExternalWorld>,
) -> anyhow::Result<Balances> {
    let mut out = balances(runtime);
    if let Some(world) = external {
        for (party, assets) in world.balances(runtime)? {
            out.entry(party).or_default().insert(network_name(world.network()), assets);
        }
    }
    Ok(out)
}

fn balances(runtime: &Runtime<SqliteStore>) -> Balances {
    let mut out = Balances::new();
    for (party, key) in [("buyer", runtime.buyer()), ("seller", runtime.seller())] {
        let owner = address(key);
        for ledger in &runtime.ledgers {
            let network = out.entry(party.into()).or_default().entry(network_name(ledger.network())).or_default();
            let state = ledger.state();
            for asset in state.assets() {
                network.insert(asset.to_string(), state.balance(&owner, asset));
            }
            for ((class, item), holder) in state.items() {
                let owned = *holder == interlock_ledger::Holder::Account(owner);
                network.insert(format!("{class} {item}"), u128::from(owned));
            }
            network.retain(|asset, _| asset != "TITLE");
        }
    }
    out
}

/// Totals per network and asset over both parties: what conservation compares.
pub(crate) fn totals(balances: &Balances) -> BTreeMap<(String, String), u128> {
    let mut totals = BTreeMap::new();
    for networks in balances.values() {
        for (network, assets) in networks {
            for (asset, amount) in assets {
                *totals.entry((network.clone(), asset.clone())).or_insert(0) += amount;
            }
        }
    }
    totals
}

fn print_table(reports: &[Value]) {
    println!(
        "{:<6} {:<9} {:<10} {:<7} {:<7} {:<10} {:>8} {:>8}",
        "deal", "mode", "outcome", "party", "network", "asset", "before", "after"
    );
    for (number, report) in reports.iter().enumerate() {
        let before = &report["balances_before"];
        let after = &report["balances_after"];
        let Some(parties) = after.as_object() else { continue };
        for (party, networks) in parties {
            let Some(networks) = networks.as_object() else { continue };
            for (network, assets) in networks {
                let Some(assets) = assets.as_object() else { continue };
                for (asset, amount) in assets {
                    let was = &before[party][network][asset];
                    if was == amount && amount.as_u64() == Some(0) {
                        continue;
                    }
                    println!(
                        "{:<6} {:<9} {:<10} {:<7} {:<7} {:<10} {:>8} {:>8}",
                        number + 1,
                        report["mode"].as_str().unwrap_or(""),
                        report["outcome"].as_str().unwrap_or(""),
                        party,
                        network,
                        asset,
                        was.to_string(),
                        amount.to_string()
                    );
                }
            }
        }
    }
}
