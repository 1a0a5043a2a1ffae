//! A reorganisation deeper than the confirmation depth, on the real anvil
//! chain of `sandbox up --evm`, after a hashlock deal completed: the chain goes
//! back to before the buyer's payment reservation, so the reservation and the
//! seller's execution of it (with the secret the buyer revealed on the ledger)
//! are both gone, while the buyer keeps the goods on the ledger. That is the
//! one-sided end a reorganisation must never leave. The gateway alerts and
//! tells the agents; each reads its legs on the chain again, the buyer's agent
//! reserves the payment again (with a nonce the node can reach) and the
//! seller's executes it again, so the seller is paid after all.

mod common;

use common::sandbox::{interlock, json, up};
use interlock_evm::alloy::providers::{DynProvider, Provider};
use std::time::{Duration, Instant};

fn rpc(provider: &DynProvider, runtime: &tokio::runtime::Runtime, method: &'static str) -> serde_json::Value {
    runtime.block_on(provider.raw_request(method.into(), ())).unwrap_or_else(|error| panic!("{method}: {error}"))
}

fn deal_state(dir: &std::path::Path, party: &str, id: &str) -> serde_json::Value {
    json(&interlock(&["deal", "--sandbox", "sb", "--as", party, "--json", "status", id], dir))
}

#[test]
fn a_deal_whose_payment_a_reorganisation_took_away_is_paid_again() {
    let dir = tempfile::tempdir().unwrap();
    // anvil comes from scripts/npm-install.
    let _sandbox = up(dir.path(), &["--evm"]);
    let state: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("sb/sandbox.json")).unwrap()).unwrap();
    let provider = interlock_evm::http::read_only(state["chain"]["rpc"].as_str().unwrap(), None).unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();

    let snapshot = rpc(&provider, &runtime, "evm_snapshot");
    // 25 USDC on beta (the chain) for 10 GOLD on alpha (the ledger).
    let deal = json(&interlock(&["sandbox", "deal", "--dir", "sb", "--mode", "hashlock", "--json"], dir.path()));
    assert_eq!(deal["outcome"], "completed", "{deal}");
    assert_eq!(deal["balances_after"]["seller"]["beta"]["USDC"], "25", "{deal}");
    let id = deal["id"].as_str().unwrap().to_owned();
    let height = runtime.block_on(provider.get_block_number()).unwrap();

    // Back to before the deal, then a longer chain without it.
    let reverted: bool = runtime.block_on(provider.raw_request("evm_revert".into(), (snapshot,))).unwrap();
    assert!(reverted, "anvil reverted to the snapshot");
    let _: serde_json::Value = runtime.block_on(provider.raw_request("anvil_mine".into(), (height + 4,))).unwrap();

    let log = dir.path().join("sb/logs/beta-gateway.log");
    let started = Instant::now();
    loop {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        if text.contains("ALERT the chain reorganised below the confirmation depth") && text.contains(&id) {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(60), "beta's gateway never named the deal; its log:\n{text}");
        std::thread::sleep(Duration::from_millis(200));
    }
    // Both parties run the deal again and end it completed, with both legs executed.
    for party in ["buyer", "seller"] {
        let started = Instant::now();
        loop {
            let view = deal_state(dir.path(), party, &id);
            let steps = view["steps"].to_string();
            if view["state"] == "completed" && steps.contains("running again") {
                assert_eq!((&view["own_leg"], &view["counter_leg"]), (&"executed".into(), &"executed".into()));
                break;
            }
            assert!(started.elapsed() < Duration::from_secs(90), "{party} never completed the deal again: {view}");
            std::thread::sleep(Duration::from_millis(300));
        }
    }
    // On the chain: the seller holds the 25 USDC again, and the next deal adds 25 more.
    let next = json(&interlock(&["sandbox", "deal", "--dir", "sb", "--mode", "hashlock", "--json"], dir.path()));
    assert_eq!(next["outcome"], "completed", "{next}");
    assert_eq!(next["balances_after"]["seller"]["beta"]["USDC"], "50", "{next}");
    assert_eq!(next["balances_after"]["buyer"]["alpha"]["GOLD"], "20", "{next}");
}
