//! Inspection periods on a real EVM chain, through the real processes: with
//! `sandbox up --evm`, a deal paying USDC (an ERC-20 on anvil) for GOLD on the
//! embedded ledger holds both legs at the commit. Undisputed, the keepers
//! release them when the window closes, though beta's gateway (the one that
//! follows the escrow contract) is killed meanwhile; disputed by the buyer, the
//! notaries' operators release one deal and reverse another (one notary killed
//! while it holds the dispute), and the contract pays the USDC back.

mod common;

use common::inspection::{both_legs, deal_id, ended_as, kill_and_restart, notary, recorded_held};
use common::sandbox::{deal_as, interlock, json, propose_to_seller, up};
use std::time::Duration;

/// The payment's network (anvil), then the delivery's (the embedded ledger).
const LEGS: [&str; 2] = ["beta", "alpha"];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn held_erc20_payments_are_released_or_reversed_on_the_chain() {
    let dir = tempfile::tempdir().unwrap();
    let _sandbox = up(dir.path(), &["--evm"]);
    let run = |inspect: &str| {
        let args = ["--mode", "notary", "--window", "10", "--inspect", inspect];
        let trade = ["--payment", "40 USDC@beta", "--delivery", "10 GOLD@alpha"];
        let proposed = propose_to_seller(dir.path(), &[&args[..], &trade[..]].concat());
        let id = proposed["deal_id"].as_str().unwrap().to_owned();
        let watched = deal_as(dir.path(), "buyer", &["watch", &id, "--json"]);
        assert!(watched.status.success(), "{}", String::from_utf8_lossy(&watched.stderr));
        id
    };

    // Undisputed: held on the contract, released when the window closes. beta's
    // gateway, whose keeper presents the release there, is killed (SIGKILL)
    // once it has recorded the leg held, and restarted.
    let released = run("3s");
    recorded_held(dir.path(), "beta", deal_id(&released)).await;
    kill_and_restart(dir.path(), "beta-gateway");
    both_legs(dir.path(), LEGS, deal_id(&released), "executed", Duration::from_secs(90)).await;

    // Disputed inside a long window: the notaries' operators decide; one
    // deal they release after all, the other they reverse (one notary killed
    // while it holds the dispute).
    let mut decided = Vec::new();
    for (decision, leg_state, kill) in [("release", "executed", None), ("reverse", "cancelled", Some("n2"))] {
        let id = run("5m");
        both_legs(dir.path(), LEGS, deal_id(&id), "held", Duration::from_secs(30)).await;
        let disputed = json(&deal_as(dir.path(), "buyer", &["dispute", &id, "--reason", "short", "--json"]));
        assert!(disputed["notice"].as_str().unwrap().starts_with("dispute recorded by 3 notaries"), "{disputed}");
        if let Some(name) = kill {
            kill_and_restart(dir.path(), name);
        }
        for name in ["n1", "n2"] {
            let verdict = json(&notary(dir.path(), &["decide", &id, "--decision", decision, "--name", name]));
            assert_eq!(verdict["state"], decision, "{verdict}");
        }
        both_legs(dir.path(), LEGS, deal_id(&id), leg_state, Duration::from_secs(60)).await;
        decided.push(id);
    }
    for (deal, state) in [(&released, "released"), (&decided[0], "released"), (&decided[1], "reversed")] {
        ended_as(dir.path(), "buyer", deal, state).await;
    }

    // The balances: one hashlock deal more (25 USDC for 10 GOLD) shows them.
    // The buyer paid the two released 40 USDC and got its reversed 40 back.
    let hashlock = json(&interlock(&["sandbox", "deal", "--dir", "sb", "--mode", "hashlock", "--json"], dir.path()));
    assert_eq!(hashlock["outcome"], "completed", "{hashlock}");
    let after = &hashlock["balances_after"];
    assert_eq!(after["buyer"]["beta"]["USDC"], "999895", "{after}");
    assert_eq!(after["seller"]["beta"]["USDC"], "105", "{after}");
    assert_eq!(after["buyer"]["alpha"]["GOLD"], "30", "{after}");
}
