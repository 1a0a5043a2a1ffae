//! Cross-platform deals through the services: `sandbox up --evm` makes beta a
//! real anvil chain. alpha's ledger node and gateway, beta's gateway following
//! the escrow contract, three notaries and two agents each run as their own
//! process; the agents send their beta transactions to anvil with their own keys.

mod common;

use common::sandbox::{completed_deal, healthy_status, interlock, json, propose_to_seller, up, wait_for};

#[test]
fn evm_sandbox_settles_erc721_delivery_erc20_payment_and_refunds_through_the_services() {
    let dir = tempfile::tempdir().unwrap();
    // anvil comes from scripts/npm-install.
    let _sandbox = up(dir.path(), &["--evm"]);
    healthy_status(dir.path());

    // Notary mode: 25 USD on the ledger for DEED #1, an ERC-721 on the chain.
    let notary = completed_deal(dir.path(), "notary");
    let after = &notary["balances_after"];
    assert_eq!(after["buyer"]["beta"]["DEED"], serde_json::json!([1]), "{after}");
    assert_eq!(after["buyer"]["alpha"]["USD"], "999975");
    assert_eq!(after["seller"]["alpha"]["USD"], "25");

    // Hashlock mode: 25 USDC, an ERC-20 on the chain, for 10 GOLD on the ledger.
    let hashlock = completed_deal(dir.path(), "hashlock");
    let after = &hashlock["balances_after"];
    assert_eq!(after["buyer"]["beta"]["USDC"], "999975", "{after}");
    assert_eq!(after["seller"]["beta"]["USDC"], "25");
    assert_eq!(after["buyer"]["alpha"]["GOLD"], "10");

    // Deadlines the chain cannot honour: a 1 s hashlock margin, where the
    // seller's claim needs two 500 ms blocks and a second of clock lag on
    // beta. The buyer's agent refuses to propose it and says why.
    let args = ["deal", "--sandbox", "sb", "--as", "buyer", "propose", "--to", "seller", "--mode", "hashlock"];
    let short = [&args[..], &["--payment", "5 USDC@beta", "--delivery", "1 GOLD@alpha", "--window", "2"]].concat();
    let refused = interlock(&short, dir.path());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(!refused.status.success(), "{stderr}");
    assert!(
        stderr.contains("the hashlock margin is 1000 ms but these networks need at least 2050 ms")
            && stderr.contains("give it a longer --window"),
        "{stderr}"
    );

    // The seller cannot deliver: the notaries abort at the deadline and the
    // buyer's ERC-20 comes back from the contract.
    let deal = propose_to_seller(
        dir.path(),
        &["--mode", "notary", "--payment", "40 USDC@beta", "--delivery", "99000000 GOLD@alpha", "--window", "6"],
    );
    let id = deal["deal_id"].as_str().unwrap().to_owned();
    let watch = interlock(&["deal", "--sandbox", "sb", "--as", "buyer", "watch", &id], dir.path());
    let text = String::from_utf8_lossy(&watch.stdout);
    assert!(!watch.status.success(), "watch exits non-zero for a deal that did not complete: {text}");
    assert!(text.contains("payment reserved on beta") && text.contains("payment cancelled on beta"), "{text}");
    for party in ["buyer", "seller"] {
        wait_for(dir.path(), party, &id, "the refund", 30, |view| view["state"] == "refunded");
    }
    let again = json(&interlock(&["sandbox", "deal", "--dir", "sb", "--mode", "hashlock", "--json"], dir.path()));
    assert_eq!(
        again["balances_after"]["buyer"]["beta"]["USDC"], "999950",
        "the refunded 40 USDC are back: only the two hashlock payments left"
    );

    // Liveness without the owner: the buyer reserves on the chain and its agent
    // dies; the seller cannot deliver. At the payment expiry beta's gateway
    // keeper cancels, and the USDC go back to the buyer.
    let deal = propose_to_seller(
        dir.path(),
        &["--mode", "hashlock", "--payment", "30 USDC@beta", "--delivery", "99000000 GOLD@alpha", "--window", "8"],
    );
    let id = deal["deal_id"].as_str().unwrap().to_owned();
    let started = std::time::Instant::now();
    loop {
        let view = json(&interlock(&["deal", "--sandbox", "sb", "--as", "buyer", "--json", "status", &id], dir.path()));
        if view["own_leg"] == "reserved" {
            break;
        }
        assert!(started.elapsed().as_secs() < 20, "the buyer never reserved: {view}");
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let kill = interlock(&["sandbox", "kill", "buyer-agent", "--dir", "sb"], dir.path());
    assert!(kill.status.success(), "{}", String::from_utf8_lossy(&kill.stderr));
    let log = dir.path().join("sb/logs/beta-gateway.log");
    let started = std::time::Instant::now();
    loop {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        if text.contains("keeper cancelled reservation") && text.contains(&id) {
            break;
        }
        assert!(started.elapsed().as_secs() < 60, "beta's keeper never cancelled; its log:\n{text}");
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    // The seller never reserved (its agent saw it could not fund the leg) and
    // its deal ended at the deadline; the buyer's agent, back up, finds its
    // payment refunded by the keeper while it was away.
    let seller = json(&interlock(&["deal", "--sandbox", "sb", "--as", "seller", "--json", "status", &id], dir.path()));
    assert_eq!(seller["own_leg"], "never reserved", "{seller}");
    let start = interlock(&["sandbox", "start", "buyer-agent", "--dir", "sb"], dir.path());
    assert!(start.status.success(), "{}", String::from_utf8_lossy(&start.stderr));
    let started = std::time::Instant::now();
    loop {
        let view = json(&interlock(&["deal", "--sandbox", "sb", "--as", "buyer", "--json", "status", &id], dir.path()));
        if view["own_leg"] == "cancelled" && view["state"] == "refunded" {
            break;
        }
        assert!(started.elapsed().as_secs() < 30, "the buyer never saw its payment come back: {view}");
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
}
