//! `interlock directory routes`: the routes a gateway message takes when the
//! directory links gateways, as an operator sees them.

mod common;

use common::interlock;
use interlock_core::PartyKey;
use std::path::Path;
use std::process::Command;

/// alpha, beta, gamma and delta, each with a gateway; alpha and gamma linked
/// only through beta, delta linked to nobody.
fn linked_directory(dir: &Path) {
    interlock(&["ca", "init", "--dir", "tls"], dir);
    let networks: Vec<serde_json::Value> = ["alpha", "beta", "gamma", "delta"]
        .iter()
        .zip(1u8..)
        .map(|(name, id)| serde_json::json!({"id": id, "name": name, "platform": "ledger", "config": {"node": format!("127.0.0.1:71{id}1")}}))
        .collect();
    let gateways: Vec<serde_json::Value> = ["alpha", "beta", "gamma", "delta"]
        .iter()
        .zip(1u8..)
        .map(|(name, id)| {
            let key = interlock_core::hash::to_hex(&PartyKey::from_seed([id; 32]).public().0);
            serde_json::json!({"name": format!("gw-{name}"), "network": id, "endpoint": format!("127.0.0.1:71{id}2"), "key": key})
        })
        .collect();
    let directory = serde_json::json!({
        "networks": networks, "gateways": gateways, "ledgers": [], "parties": [], "notaries": [], "observers": [],
        "links": [{"networks": [1, 2]}, {"networks": [2, 3], "preference": 2}],
    });
    std::fs::write(dir.join("plain.json"), directory.to_string()).unwrap();
    interlock(&["directory", "sign", "--ca", "tls", "--input", "plain.json", "--output", "directory.json"], dir);
}

fn routes(dir: &Path, extra: &[&str]) -> (bool, String, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_interlock"))
        .args(["directory", "routes", "--directory", "directory.json", "--ca", "tls"])
        .args(extra)
        .current_dir(dir)
        .output()
        .unwrap();
    let text = |bytes: Vec<u8>| String::from_utf8(bytes).unwrap();
    (output.status.success(), text(output.stdout), text(output.stderr))
}

#[test]
fn routes_go_through_the_relay_and_say_when_there_is_none() {
    let dir = tempfile::tempdir().unwrap();
    linked_directory(dir.path());

    let (ok, out, _) = routes(dir.path(), &["--from", "alpha", "--to", "gamma"]);
    assert!(ok, "{out}");
    assert!(out.contains("1. alpha -> beta -> gamma  (2 hops, preference 2)"), "{out}");

    let (ok, out, _) = routes(dir.path(), &["--from", "3", "--to", "alpha", "--json"]);
    assert!(ok, "{out}");
    let json: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(json["routes"][0]["networks"], serde_json::json!(["gamma", "beta", "alpha"]), "{json}");
    assert_eq!(json["routes"][0]["hops"], 2);
    assert_eq!(json["full_mesh"], false);

    let (ok, out, _) = routes(dir.path(), &["--from", "alpha", "--to", "delta"]);
    assert!(!ok, "no link reaches delta: {out}");
    assert!(out.contains("no route from alpha to delta"), "{out}");

    let (ok, _, err) = routes(dir.path(), &["--from", "alpha", "--to", "omega"]);
    assert!(!ok);
    assert!(err.contains("no network \"omega\" in the directory: expected one of alpha (1), beta (2)"), "{err}");
}

#[test]
fn a_link_to_a_network_without_a_gateway_is_refused_at_signing() {
    let dir = tempfile::tempdir().unwrap();
    interlock(&["ca", "init", "--dir", "tls"], dir.path());
    let directory = serde_json::json!({
        "networks": [{"id": 1, "name": "alpha", "platform": "ledger", "config": {"node": "127.0.0.1:7101"}}],
        "gateways": [], "ledgers": [], "parties": [], "notaries": [], "observers": [],
        "links": [{"networks": [1, 2]}],
    });
    std::fs::write(dir.path().join("plain.json"), directory.to_string()).unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_interlock"))
        .args(["directory", "sign", "--ca", "tls", "--input", "plain.json", "--output", "directory.json"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(!output.status.success());
    let err = String::from_utf8_lossy(&output.stderr);
    assert!(err.contains("link 1 - 2 names network 1 which has no gateway"), "{err}");
    assert!(!dir.path().join("directory.json").exists(), "nothing signed");
}
