//! `sandbox up --litecoin`: beta is a real regtest litecoind (installed by
//! scripts/litecoind-install) run by the sandbox's chain process, mining a
//! block a second; alpha's ledger node and gateway, beta's gateway following
//! the chain, the notaries and both agents each run as their own process, and
//! the agents send their beta transactions to litecoind with their own keys.
//! A notary deal's beta spends carry the notary services' signatures over
//! each spend, which the agents ask for once the notaries decided.

mod common;

use common::sandbox::{completed_deal, healthy_status, interlock, ok, propose_to_seller, up, wait_for};
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

/// Asserts that `party` holds `expected` LTC on beta less the network's fees:
/// less than it, but not by more than [`FEES_MAX`].
fn assert_ltc_less_fees(view: &serde_json::Value, party: &str, expected: u64, what: &str) {
    let held = ltc(view, party);
    assert!(held < expected && held > expected - FEES_MAX, "{what}: {view}");
}

#[test]
fn litecoin_sandbox_settles_hashlock_and_notary_deals_and_rides_out_a_killed_gateway() {
    let dir = tempfile::tempdir().unwrap();
    // litecoind comes from scripts/litecoind-install.
    let sandbox = up(dir.path(), &["--litecoin"]);
    let status = healthy_status(dir.path());
    assert_eq!(status["chains"][0]["platform"], "litecoin-regtest", "{status}");
    let rpc = status["chains"][0]["rpc"].as_str().unwrap().trim_start_matches("http://").to_owned();

    // 0.25 LTC on beta for 10 GOLD on alpha, through every process.
    let deal = completed_deal(dir.path(), "hashlock");
    let after = &deal["balances_after"];
    assert_eq!(after["buyer"]["alpha"]["GOLD"], "10", "{after}");
    assert_ltc_less_fees(after, "buyer", START - LTC / 4, "the buyer paid 0.25 LTC and a fee");
    assert_ltc_less_fees(after, "seller", START + LTC / 4, "the seller got 0.25 LTC less a fee");

    // The same by 2 of 3 notaries: the seller's claim on beta carries the
    // notary services' signatures over that very spend.
    let deal = completed_deal(dir.path(), "notary");
    let later = &deal["balances_after"];
    assert_eq!(later["buyer"]["alpha"]["GOLD"], "20", "{later}");
    assert_ltc_less_fees(later, "buyer", START - LTC / 2, "the buyer paid 0.25 LTC twice and fees");
    assert_ltc_less_fees(later, "seller", START + LTC / 2, "the seller got 0.25 LTC twice less fees");

    // 300 litoshis on beta: an output litecoind calls dust. The buyer's agent
    // asks its node before it signs, and nothing is proposed.
    let args = ["deal", "--sandbox", "sb", "--as", "buyer", "propose", "--to", "seller", "--mode", "hashlock"];
    let dust =
        interlock(&[&args[..], &["--payment", "300 LTC@beta", "--delivery", "1 GOLD@alpha"]].concat(), dir.path());
    assert!(!dust.status.success(), "a dust leg was proposed");
    let said = String::from_utf8_lossy(&dust.stderr);
    assert!(said.contains("refused before signing") && said.contains("dust"), "{said}");

    // beta's gateway is killed with SIGKILL once the buyer's payment is
    // reserved on the chain, and started again while blocks go on: the deal
    // completes.
    let proposed = propose_to_seller(
        dir.path(),
        &["--mode", "hashlock", "--payment", "20000000 LTC@beta", "--delivery", "5 GOLD@alpha", "--window", "40"],
    );
    let id = proposed["deal_id"].as_str().unwrap().to_owned();
    wait_for(dir.path(), "buyer", &id, "the payment's reservation", 60, |view| view["own_leg"] == "reserved");
    ok(&interlock(&["sandbox", "kill", "beta-gateway", "--dir", "sb"], dir.path()));
    std::thread::sleep(Duration::from_secs(3));
    ok(&interlock(&["sandbox", "start", "beta-gateway", "--dir", "sb"], dir.path()));
    for party in ["buyer", "seller"] {
        wait_for(dir.path(), party, &id, "completion", 60, |view| view["state"] == "completed");
    }
    healthy_status(dir.path());

    // `down` stops the chain process, and litecoind with it.
    drop(sandbox);
    let started = Instant::now();
    while std::net::TcpStream::connect(&rpc).is_ok() {
        assert!(started.elapsed() < Duration::from_secs(20), "litecoind still answers at {rpc} after down");
        std::thread::sleep(Duration::from_millis(200));
    }
}
