//! `interlock sandbox up --routed`: three ledgers whose directory links
//! alpha's and gamma's gateways only to beta's. Deals between alpha and gamma
//! settle in both modes with every gateway message through beta; with beta's
//! gateway killed (SIGKILL) mid-run, deals still end atomically, and what
//! alpha's gateway owes gamma's arrives once beta's returns.

mod common;

use common::sandbox::{interlock, json, ok, up};
use std::path::Path;

/// Lines of gamma's gateway log saying a message from alpha arrived through beta.
fn routed_from_alpha(dir: &Path) -> usize {
    let log = std::fs::read_to_string(dir.join("sb/logs/gamma-gateway.log")).unwrap();
    log.lines().filter(|line| line.contains("handled, via network-1 -> network-2")).count()
}

#[test]
fn deals_between_networks_linked_through_a_relay_settle_and_survive_the_relay_killed() {
    let dir = tempfile::tempdir().unwrap();
    let _sandbox = up(dir.path(), &["--routed"]);

    let routes = ok(&interlock(
        &[
            "directory",
            "routes",
            "--directory",
            "sb/directory.json",
            "--ca",
            "sb/tls",
            "--from",
            "alpha",
            "--to",
            "gamma",
        ],
        dir.path(),
    ));
    assert!(routes.contains("1. alpha -> beta -> gamma  (2 hops"), "{routes}");
    assert!(!routes.contains("2."), "beta is the only way: {routes}");

    for mode in ["hashlock", "notary"] {
        let deal = json(&interlock(&["sandbox", "deal", "--dir", "sb", "--mode", mode, "--json"], dir.path()));
        assert_eq!(deal["outcome"], "completed", "{deal}");
    }
    let delivered = routed_from_alpha(dir.path());
    assert!(delivered >= 6, "forward, assert and notify from alpha, for each deal, arrived through beta: {delivered}");
    let status = json(&interlock(&["sandbox", "status", "--dir", "sb", "--json"], dir.path()));
    let balances = json(&interlock(&["sandbox", "deal", "--dir", "sb", "--mode", "hashlock", "--json"], dir.path()));
    assert_eq!(
        balances["balances_after"]["buyer"]["gamma"]["GOLD"], "30",
        "three deals of 10 GOLD on gamma: {balances}"
    );
    assert!(status.to_string().contains("gamma-gateway"), "{status}");

    // The relay killed: deals still end on both sides the same way, and
    // nothing alpha's gateway owes gamma's is lost.
    ok(&interlock(&["sandbox", "kill", "--dir", "sb", "beta-gateway"], dir.path()));
    let before = routed_from_alpha(dir.path());
    let report = json(&interlock(
        &["sandbox", "deal", "--dir", "sb", "--mode", "hashlock", "--count", "20", "--concurrency", "5", "--json"],
        dir.path(),
    ));
    assert_eq!(report["not_atomic"], 0, "a relay down delays, never splits a deal: {report}");
    assert_eq!(report["totals_after"]["alpha USD"], "1000000", "{report}");
    assert_eq!(report["totals_after"]["gamma GOLD"], "1000000", "{report}");
    assert_eq!(routed_from_alpha(dir.path()), before, "nothing passes a dead relay");
    ok(&interlock(&["sandbox", "start", "--dir", "sb", "beta-gateway"], dir.path()));
    let started = std::time::Instant::now();
    while routed_from_alpha(dir.path()) < before + 20 {
        assert!(started.elapsed().as_secs() < 60, "alpha's messages for gamma did not arrive after beta returned");
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
}
