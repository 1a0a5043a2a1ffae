//! The demo's fourth deal: a notary-mode deal with an inspection period,
//! held on both ledgers after it commits, disputed by the buyer inside the
//! window and reversed by the notaries: both assets go back, and every
//! balance is what it was before the deal.
//!
//! The runtime's notaries are in process, as they are for the other deals:
//! each runs the core's verdict decider (`VerdictDeal`) for the window, takes
//! the buyer's signed dispute and its operator's reverse, records it and
//! signs; the certificate of two of them resolves each held leg on its
//! ledger, checked there by the escrow rules.

use crate::demo::{all_balances, describe, leg_state, outcome_word, short, terms_for, totals, Plan};
use crate::runtime::Runtime;
use crate::setup::{code, now_ms, ALPHA, BETA};
use interlock_core::crypto::{Certificate, Decision};
use interlock_core::verdict::{Dispute, VerdictDeal, VerdictOutput};
use interlock_core::{Asset, Disputer, EscrowOp, Inspection, LegKind, Mode, ReservationState};
use interlock_ledger::SqliteStore;
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::Duration;

pub(crate) const TITLE: &str =
    "notary mode with a 60 s inspection period, disputed by the buyer and reversed: 60 USD on alpha for 5 GOLD on beta";

/// Runs the deal to its reversal; the report and whether every invariant held.
pub(crate) fn run(
    runtime: &mut Runtime<SqliteStore>,
    nonce: u64,
    say: &dyn Fn(String),
) -> anyhow::Result<(Value, bool)> {
    let plan = Plan {
        title: TITLE,
        mode: Mode::Notary,
        payment: (ALPHA, Asset::Fungible { code: code("USD"), amount: 60 }),
        delivery: (BETA, Asset::Fungible { code: code("GOLD"), amount: 5 }),
        seller_withholds: false,
    };
    let (mut terms, _) = terms_for(runtime, None, &plan, nonce)?;
    terms.policy.inspection = Some(Inspection { window_ms: 60_000, disputer: Disputer::Buyer });
    let before = all_balances(runtime, None)?;
    let deal_id = runtime.add_deal(terms.clone(), None, false)?;
    say(format!("agree    {} signed by buyer and seller (notary mode, 60 s inspection period)", short(deal_id)));
    let held = |runtime: &Runtime<SqliteStore>, state: ReservationState| -> anyhow::Result<bool> {
        Ok(leg_state(runtime, None, &terms, deal_id, LegKind::Payment)? == Some(state)
            && leg_state(runtime, None, &terms, deal_id, LegKind::Delivery)? == Some(state))
    };
    let started = std::time::Instant::now();
    while !held(runtime, ReservationState::Held)? {
        anyhow::ensure!(started.elapsed() < Duration::from_secs(30), "deal {deal_id} was not held within 30 s");
        for progress in runtime.round(now_ms())? {
            say(describe(&progress, &terms));
        }
        std::thread::sleep(Duration::from_millis(20));
    }

    // The buyer disputes inside the window; each notary records it, and its
    // operator decides: reverse.
    let reason = "the GOLD assays short";
    let dispute = Dispute::sign(runtime.buyer(), deal_id, reason);
    say(format!("dispute  buyer disputes inside the window: \"{reason}\"; each notary records it before it answers"));
    let shared = Arc::new(terms.clone());
    let mut signatures = Vec::new();
    for (index, key) in runtime.notary_keys().iter().enumerate().take(2) {
        let mut window = VerdictDeal::open(shared.clone()).expect("the deal has an inspection period");
        window.raise(&dispute, now_ms()).map_err(|error| anyhow::anyhow!("notary {}: {error}", index + 1))?;
        let decided = window.decide(Decision::Reverse).map_err(|error| anyhow::anyhow!("{error}"))?;
        anyhow::ensure!(matches!(decided[..], [VerdictOutput::Record { .. }]), "a verdict is recorded first");
        for output in window.recorded(key) {
            if let VerdictOutput::Vote(vote) = output {
                signatures.push(vote.signature);
            }
        }
        say(format!("verdict  notary {}'s operator decides reverse; the notary signs it", index + 1));
    }
    let verdict = Certificate { deal_id, decision: Decision::Reverse, signatures };
    for (leg, network) in [(LegKind::Payment, ALPHA), (LegKind::Delivery, BETA)] {
        let op =
            EscrowOp::Resolve { reservation: interlock_core::reservation_id(deal_id, leg), verdict: verdict.clone() };
        runtime.submit_escrow(network, op)?;
    }
    while !held(runtime, ReservationState::Cancelled)? {
        anyhow::ensure!(started.elapsed() < Duration::from_secs(60), "deal {deal_id} was not reversed within 60 s");
        for progress in runtime.round(now_ms())? {
            say(describe(&progress, &terms));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let after = all_balances(runtime, None)?;
    let restored = before == after;
    let conserved = totals(&before) == totals(&after);
    say(if restored {
        "reverse  both assets are back with their owners: every balance is what it was before the deal".to_owned()
    } else {
        "INVARIANT BROKEN: a reversed deal left balances other than before it".to_owned()
    });
    let (buyer, seller) = runtime.outcome(deal_id).expect("known deal");
    say(format!("notify   buyer told {}, seller told {} (then reversed)", outcome_word(buyer), outcome_word(seller)));
    let report = json!({
        "id": deal_id.to_string(),
        "mode": "notary",
        "outcome": "reversed",
        "balances_before": before,
        "balances_after": after,
    });
    Ok((report, restored && conserved))
}
