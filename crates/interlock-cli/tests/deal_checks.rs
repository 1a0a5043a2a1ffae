//! Through the sandbox's processes: terms that cannot settle as an exchange
//! are refused before anything is signed, and `sandbox deal --count` returns
//! when its deals end.

mod common;

use common::sandbox::{assert_deals_refused, deal_as, interlock, json, proposal, up};
use std::time::Instant;

#[test]
fn unfundable_payments_and_legs_that_do_not_differ_are_refused_before_signing() {
    let dir = tempfile::tempdir().unwrap();
    let _sandbox = up(dir.path(), &["--manual-accept"]);
    let deal = |party: &str, args: &[&str]| deal_as(dir.path(), party, args);
    // The buyer holds 1,000,000 USD on alpha.
    let cases: [(&str, Vec<&str>, &str); 3] = [
        (
            "buyer",
            proposal("seller", "2000000 USD@alpha", "10 GOLD@beta", &[]),
            "refused before signing: the payment of 2000000 USD on alpha is not covered: this party's account there holds 1000000 USD",
        ),
        (
            "buyer",
            proposal("seller", "1 USD@alpha", "1 USD@alpha", &[]),
            "the payment leg (1 USD) and the delivery leg (1 USD) move the same asset on network-1: expected legs that differ in asset or network",
        ),
        // The seller proposing sees the buyer's account through alpha's gateway.
        (
            "seller",
            proposal("buyer", "2000000 USD@alpha", "10 GOLD@beta", &["--role", "seller"]),
            "refused before signing: the payment of 2000000 USD on alpha is not covered: buyer's account there holds 1000000 USD",
        ),
    ];
    assert_deals_refused(dir.path(), &cases);
    for party in ["buyer", "seller"] {
        let list = json(&deal(party, &["list", "--json"]));
        assert_eq!(list["deals"].as_array().unwrap().len(), 0, "nothing was signed at {party}'s agent: {list}");
    }
}

#[test]
fn sandbox_deal_count_returns_when_its_deals_end() {
    let dir = tempfile::tempdir().unwrap();
    let _sandbox = up(dir.path(), &[]);
    let started = Instant::now();
    let args =
        ["sandbox", "deal", "--dir", "sb", "--mode", "notary", "--count", "300", "--concurrency", "50", "--json"];
    let report = json(&interlock(&args, dir.path()));
    let took_s = started.elapsed().as_secs_f64();
    assert_eq!(report["deals"], 300, "{report}");
    assert_eq!(report["not_atomic"], 0, "{report}");
    // The report's time runs from the first proposal to the last end; the
    // command may add its start and the final count, not another run's worth.
    let reported_s = report["seconds"].as_f64().unwrap();
    assert!(took_s < reported_s + 5.0, "reported {reported_s:.1} s, returned after {took_s:.1} s: {report}");
}
