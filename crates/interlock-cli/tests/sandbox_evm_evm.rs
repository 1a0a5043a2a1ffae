//! Both networks EVM chains: `sandbox up --evm --evm` starts two anvils with
//! different chain ids, each with its own escrow, tokens and keeper, the
//! parties holding a key on each. One deal in each mode pays USDC on one chain
//! for a DEED on the other; both legs execute, and `down` stops both anvils.

mod common;

use common::sandbox::{interlock, json, up};
use interlock_evm::alloy::providers::Provider as _;
use serde_json::json;
use std::time::{Duration, Instant};

/// Whether anything still answers JSON-RPC at `rpc`.
fn answers(rpc: &str) -> bool {
    let provider = interlock_evm::http::read_only(rpc, None).unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    runtime
        .block_on(async { tokio::time::timeout(Duration::from_secs(2), provider.get_chain_id()).await })
        .is_ok_and(|answer| answer.is_ok())
}

/// Whether process `pid` runs (exists and is not a zombie waiting to be reaped).
fn runs(pid: u64) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .is_ok_and(|stat| stat.rsplit_once(") ").is_some_and(|(_, rest)| !rest.starts_with(['Z', 'X'])))
}

/// The deal `report` (of `sandbox deal --json`) completed, and both of its
/// legs moved: 25 USDC from the buyer to the seller on `payment`, DEED #1
/// from the seller to the buyer on `delivery`.
fn both_legs_executed(report: &serde_json::Value, payment: &str, delivery: &str) {
    assert_eq!(report["outcome"], "completed", "{report}");
    let after = &report["balances_after"];
    assert_eq!(after["buyer"][payment]["USDC"], "999975", "{after}");
    assert_eq!(after["seller"][payment]["USDC"], "25", "{after}");
    assert_eq!(after["buyer"][delivery]["DEED"], json!([1]), "{after}");
    let left: Vec<u64> = (2..=20).collect();
    assert_eq!(after["seller"][delivery]["DEED"], json!(left), "{after}");
}

#[test]
fn two_evm_chains_settle_a_deal_in_each_mode_and_down_stops_both_anvils() {
    let dir = tempfile::tempdir().unwrap();
    let sandbox = up(dir.path(), &["--evm", "--evm"]);
    let state: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("sb/sandbox.json")).unwrap()).unwrap();
    let (alpha, beta) = (&state["chains"]["alpha"], &state["chains"]["beta"]);
    assert_eq!((alpha["chain_id"].clone(), beta["chain_id"].clone()), (json!(31336), json!(31337)), "{state}");
    assert_ne!(alpha["rpc"], beta["rpc"], "two nodes: {state}");
    assert_ne!(alpha["keeper"], beta["keeper"], "a keeper key per chain: {state}");
    assert_ne!(alpha["accounts"]["buyer"], beta["accounts"]["buyer"], "a key per party per chain: {state}");
    let names: Vec<&str> = state["processes"].as_array().unwrap().iter().map(|p| p["name"].as_str().unwrap()).collect();
    assert!(!names.iter().any(|name| name.ends_with("-ledger")), "no ledger node: {names:?}");
    let directory: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("sb/directory.json")).unwrap()).unwrap();
    let text = directory.to_string();
    assert_eq!(text.matches("\"platform\":\"evm\"").count(), 2, "both networks are EVM chains: {text}");

    let status = json(&interlock(&["sandbox", "status", "--dir", "sb", "--json"], dir.path()));
    assert_eq!(status["healthy"], true, "{status}");
    assert_eq!(status["chains"].as_array().map(Vec::len), Some(2), "{status}");

    // Notary mode: 25 USDC on alpha for DEED #1 on beta; nothing else moved.
    let notary = json(&interlock(&["sandbox", "deal", "--dir", "sb", "--mode", "notary", "--json"], dir.path()));
    both_legs_executed(&notary, "alpha", "beta");
    assert_eq!(notary["balances_after"]["buyer"]["beta"]["USDC"], "1000000", "{notary}");
    assert_eq!(notary["balances_after"]["buyer"]["alpha"]["DEED"], json!([]), "{notary}");

    // Hashlock mode: 25 USDC on beta for DEED #1 on alpha; the first deal stays settled.
    let hashlock = json(&interlock(&["sandbox", "deal", "--dir", "sb", "--mode", "hashlock", "--json"], dir.path()));
    both_legs_executed(&hashlock, "beta", "alpha");
    assert_eq!(hashlock["balances_after"]["buyer"]["alpha"]["USDC"], "999975", "{hashlock}");
    assert_eq!(hashlock["balances_after"]["buyer"]["beta"]["DEED"], json!([1]), "{hashlock}");

    // `down` stops both anvils: neither process runs, neither node answers.
    drop(sandbox);
    for chain in [alpha, beta] {
        let (pid, rpc) = (chain["anvil_pid"].as_u64().unwrap(), chain["rpc"].as_str().unwrap());
        let since = Instant::now();
        while runs(pid) || answers(rpc) {
            assert!(since.elapsed() < Duration::from_secs(10), "{}'s anvil (pid {pid}) still runs", chain["network"]);
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}
