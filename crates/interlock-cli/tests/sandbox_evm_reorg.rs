//! A reorganisation deeper than the confirmation depth, on the real anvil
//! chain of `sandbox up --evm`, after a hashlock deal completed: the chain goes
//! back to before the buyer's payment reservation, so the reservation and the
//! seller's execution of it (with the secret the buyer revealed on the ledger)
//! are both gone, while the buyer keeps the goods on the ledger. That is the
//! one-sided end a reorganisation must never leave. The gateway alerts and
//! tells the agents; each reads its legs on the chain again, the buyer's agent
//! reserves the payment again (with a nonce the node can reach) and the
//! seller's executes it again, so the seller is paid after all. Then the
//! same with the delivery on the chain: the reorganisation takes away the
//! seller's reservation of the deed and the buyer's execution that revealed
//! the secret; the seller reserves again and the buyer executes again.

mod common;

use common::sandbox::{interlock, json, propose_to_seller, up};
use interlock_evm::alloy::providers::{DynProvider, Provider};
use std::time::{Duration, Instant};

fn rpc(provider: &DynProvider, runtime: &tokio::runtime::Runtime, method: &'static str) -> serde_json::Value {
    runtime.block_on(provider.raw_request(method.into(), ())).unwrap_or_else(|error| panic!("{method}: {error}"))
}

#[test]
fn a_deal_whose_payment_a_reorganisation_took_away_is_paid_again() {
    let dir = tempfile::tempdir().unwrap();
    // anvil comes from scripts/npm-install.
    let _sandbox = up(dir.path(), &["--evm"]);
    let state: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("sb/sandbox.json")).unwrap()).unwrap();
    let provider = interlock_evm::http::read_only(state["chains"]["beta"]["rpc"].as_str().unwrap(), None).unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();

    let snapshot = rpc(&provider, &runtime, "evm_snapshot");
    // 25 USDC on beta (the chain) for 10 GOLD on alpha (the ledger).
    let deal = json(&interlock(&["sandbox", "deal", "--dir", "sb", "--mode", "hashlock", "--json"], dir.path()));
    assert_eq!(deal["outcome"], "completed", "{deal}");
    assert_eq!(deal["balances_after"]["seller"]["beta"]["USDC"], "25", "{deal}");
    let id = deal["id"].as_str().unwrap().to_owned();
    reorganise(&provider, &runtime, snapshot);
    completed_again(dir.path(), &id);

    // 10 USD on alpha for DEED #2 on beta: the secret is revealed on the chain.
    let snapshot = rpc(&provider, &runtime, "evm_snapshot");
    let proposed = propose_to_seller(
        dir.path(),
        &["--mode", "hashlock", "--payment", "10 USD@alpha", "--delivery", "#2 DEED@beta", "--window", "90"],
    );
    let id = proposed["deal_id"].as_str().unwrap().to_owned();
    for party in ["buyer", "seller"] {
        wait_for(dir.path(), party, &id, |view| view["state"] == "completed");
    }
    reorganise(&provider, &runtime, snapshot);
    completed_again(dir.path(), &id);

    // On the chain: the seller holds the 25 USDC again, and the next deal adds 25 more.
    let next = json(&interlock(&["sandbox", "deal", "--dir", "sb", "--mode", "hashlock", "--json"], dir.path()));
    assert_eq!(next["outcome"], "completed", "{next}");
    let after = &next["balances_after"];
    assert_eq!(after["seller"]["beta"]["USDC"], "50", "{next}");
    assert_eq!(after["buyer"]["alpha"]["GOLD"], "20", "{next}");
    assert_eq!(after["buyer"]["beta"]["DEED"], serde_json::json!([2]), "{next}");
    assert_eq!(after["seller"]["alpha"]["USD"], "10", "{next}");
}

/// Reverts anvil to `snapshot` (before the deal) and mines past the height
/// it had, so the chain without the deal is the longer one.
fn reorganise(provider: &DynProvider, runtime: &tokio::runtime::Runtime, snapshot: serde_json::Value) {
    let height = runtime.block_on(provider.get_block_number()).unwrap();
    let reverted: bool = runtime.block_on(provider.raw_request("evm_revert".into(), (snapshot,))).unwrap();
    assert!(reverted, "anvil reverted to the snapshot");
    let _: serde_json::Value = runtime.block_on(provider.raw_request("anvil_mine".into(), (height + 4,))).unwrap();
}

/// Beta's gateway names deal `id` in its alert, and both parties run it
/// again and end it completed, with both legs executed.
fn completed_again(dir: &std::path::Path, id: &str) {
    let log = dir.join("sb/logs/beta-gateway.log");
    let started = Instant::now();
    loop {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        let alerts = text.lines().filter(|line| line.contains("ALERT the chain reorganised") && line.contains(id));
        if alerts.count() > 0 {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(60), "beta's gateway never named {id}; its log:\n{text}");
        std::thread::sleep(Duration::from_millis(200));
    }
    for party in ["buyer", "seller"] {
        let view = wait_for(dir, party, id, |view| {
            view["state"] == "completed" && view["steps"].to_string().contains("running again")
        });
        assert_eq!((&view["own_leg"], &view["counter_leg"]), (&"executed".into(), &"executed".into()), "{view}");
    }
}

fn wait_for(
    dir: &std::path::Path,
    party: &str,
    id: &str,
    done: impl Fn(&serde_json::Value) -> bool,
) -> serde_json::Value {
    let started = Instant::now();
    loop {
        let view = json(&interlock(&["deal", "--sandbox", "sb", "--as", party, "--json", "status", id], dir));
        if done(&view) {
            return view;
        }
        assert!(started.elapsed() < Duration::from_secs(90), "{party}'s deal {id} never got there: {view}");
        std::thread::sleep(Duration::from_millis(300));
    }
}
