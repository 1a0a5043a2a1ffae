//! `interlock sandbox up --pairs 2`: two pairs of networks, each with its own
//! ledgers and gateways, the agents and notaries shared; deals take the pairs
//! in turn and every one ends atomically with each network's totals kept.

mod common;

use common::sandbox::{interlock, json, up};

#[test]
fn deals_spread_over_two_pairs_of_networks_end_atomically() {
    let dir = tempfile::tempdir().unwrap();
    let _sandbox = up(dir.path(), &["--pairs", "2"]);
    let status = json(&interlock(&["sandbox", "status", "--dir", "sb", "--json"], dir.path()));
    for process in ["alpha-2-ledger", "beta-2-ledger", "alpha-2-gateway", "beta-2-gateway"] {
        assert!(status.to_string().contains(process), "{process}: {status}");
    }
    for mode in ["hashlock", "notary"] {
        let report = json(&interlock(
            &["sandbox", "deal", "--dir", "sb", "--mode", mode, "--count", "20", "--concurrency", "5", "--json"],
            dir.path(),
        ));
        assert_eq!((report["completed"].as_u64(), report["not_atomic"].as_u64()), (Some(20), Some(0)), "{report}");
        for total in ["alpha USD", "beta GOLD", "alpha-2 USD", "beta-2 GOLD"] {
            assert_eq!(report["totals_after"][total], "1000000", "{total}: {report}");
        }
    }
    // Both pairs carried deals: the seller paid GOLD out on each.
    let balances =
        json(&interlock(&["sandbox", "deal", "--dir", "sb", "--json"], dir.path()))["balances_after"].clone();
    for network in ["beta", "beta-2"] {
        let gold: u128 = balances["buyer"][network]["GOLD"].as_str().unwrap_or("0").parse().unwrap();
        assert!(gold >= 200, "the buyer got GOLD on {network}: {balances}");
    }
}
