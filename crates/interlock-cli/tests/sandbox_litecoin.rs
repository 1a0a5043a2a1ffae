//! `sandbox up --litecoin`: beta is a real regtest litecoind (installed by
//! scripts/litecoind-install) run by the sandbox's chain process, mining a
//! block a second; alpha's ledger node and gateway, beta's gateway following
//! the chain, the notaries and both agents each run as their own process, and
//! the agents send their beta transactions to litecoind with their own keys.
//! A notary deal's beta spends carry the notary services' signatures over
//! each spend, which the agents ask for once the notaries decided.

mod common;

use common::sandbox::{interlock, json, ok, propose_to_seller, Sandbox};
use std::time::{Duration, Instant};

const LTC: u64 = 100_000_000;
/// Each party's coins when the sandbox starts: ten of one LTC.
const START: u64 = 10 * LTC;
/// What network fees may take from a party over this test, at most.
const FEES_MAX: u64 = 200_000;

fn ltc(view: &serde_json::Value, party: &str) -> u64 {
    let text = view[party]["beta"]["LTC"].as_str().unwrap_or_else(|| panic!("no LTC for {party}: {view}"));
    text.parse().unwrap()
}

fn wait_for(dir: &std::path::Path, party: &str, id: &str, what: &str, done: impl Fn(&serde_json::Value) -> bool) {
    let started = Instant::now();
    loop {
        let view = json(&interlock(&["deal", "--sandbox", "sb", "--as", party, "--json", "status", id], dir));
        if done(&view) {
            return;
        }
        assert!(started.elapsed() < Duration::from_secs(60), "{party}: {what} never came: {view}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn litecoin_sandbox_settles_hashlock_and_notary_deals_and_rides_out_a_killed_gateway() {
    let dir = tempfile::tempdir().unwrap();
    let up = interlock(&["sandbox", "up", "--dir", "sb", "--litecoin"], dir.path());
    assert!(
        up.status.success(),
        "sandbox up --litecoin failed (litecoind comes from scripts/litecoind-install): {}",
        String::from_utf8_lossy(&up.stderr)
    );
    let sandbox = Sandbox(dir.path().to_owned());
    let status = json(&interlock(&["sandbox", "status", "--dir", "sb", "--json"], dir.path()));
    assert_eq!(status["healthy"], true, "{status}");
    assert_eq!(status["chains"][0]["platform"], "litecoin-regtest", "{status}");
    let rpc = status["chains"][0]["rpc"].as_str().unwrap().trim_start_matches("http://").to_owned();

    // 0.25 LTC on beta for 10 GOLD on alpha, through every process.
    let deal = json(&interlock(&["sandbox", "deal", "--dir", "sb", "--mode", "hashlock", "--json"], dir.path()));
    assert_eq!(deal["outcome"], "completed", "{deal}");
    let after = &deal["balances_after"];
    assert_eq!(after["buyer"]["alpha"]["GOLD"], "10", "{after}");
    let (buyer, seller) = (ltc(after, "buyer"), ltc(after, "seller"));
    assert!(
        buyer < START - LTC / 4 && buyer > START - LTC / 4 - FEES_MAX,
        "the buyer paid 0.25 LTC and a fee: {after}"
    );
    assert!(
        seller < START + LTC / 4 && seller > START + LTC / 4 - FEES_MAX,
        "the seller got 0.25 LTC less a fee: {after}"
    );

    // The same by 2 of 3 notaries: the seller's claim on beta carries the
    // notary services' signatures over that very spend.
    let deal = json(&interlock(&["sandbox", "deal", "--dir", "sb", "--mode", "notary", "--json"], dir.path()));
    assert_eq!(deal["outcome"], "completed", "{deal}");
    let later = &deal["balances_after"];
    assert_eq!(later["buyer"]["alpha"]["GOLD"], "20", "{later}");
    let (buyer, seller) = (ltc(later, "buyer"), ltc(later, "seller"));
    assert!(
        buyer < START - LTC / 2 && buyer > START - LTC / 2 - FEES_MAX,
        "the buyer paid 0.25 LTC twice and fees: {later}"
    );
    assert!(
        seller < START + LTC / 2 && seller > START + LTC / 2 - FEES_MAX,
        "the seller got 0.25 LTC twice less fees: {later}"
    );

    // beta's gateway is killed with SIGKILL once the buyer's payment is
    // reserved on the chain, and started again while blocks go on: the deal
    // completes.
    let proposed = propose_to_seller(
        dir.path(),
        &["--mode", "hashlock", "--payment", "20000000 LTC@beta", "--delivery", "5 GOLD@alpha", "--window", "40"],
    );
    let id = proposed["deal_id"].as_str().unwrap().to_owned();
    wait_for(dir.path(), "buyer", &id, "the payment's reservation", |view| view["own_leg"] == "reserved");
    ok(&interlock(&["sandbox", "kill", "beta-gateway", "--dir", "sb"], dir.path()));
    std::thread::sleep(Duration::from_secs(3));
    ok(&interlock(&["sandbox", "start", "beta-gateway", "--dir", "sb"], dir.path()));
    for party in ["buyer", "seller"] {
        wait_for(dir.path(), party, &id, "completion", |view| view["state"] == "completed");
    }
    let status = json(&interlock(&["sandbox", "status", "--dir", "sb", "--json"], dir.path()));
    assert_eq!(status["healthy"], true, "{status}");

    // `down` stops the chain process, and litecoind with it.
    drop(sandbox);
    let started = Instant::now();
    while std::net::TcpStream::connect(&rpc).is_ok() {
        assert!(started.elapsed() < Duration::from_secs(20), "litecoind still answers at {rpc} after down");
        std::thread::sleep(Duration::from_millis(200));
    }
}
