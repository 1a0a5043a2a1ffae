//! Putting the escrow on a node the sandbox did not start, as an operator
//! would: `deploy` prints the network's stanza, the operator signs a
//! directory with it, and `directory check` passes it against the live node
//! and names what is wrong in a directory whose contract address is not the
//! escrow's.

mod common;

use common::sandbox::interlock;
use std::path::Path;

/// Signs `directory` (plain JSON) with a CA made in `dir/tls`, into `name`.
fn sign(dir: &Path, directory: &serde_json::Value, name: &str) {
    std::fs::write(dir.join("plain.json"), directory.to_string()).unwrap();
    if !dir.join("tls/ca.pem").exists() {
        common::sandbox::ok(&interlock(&["ca", "init", "--dir", "tls"], dir));
    }
    let signed = interlock(&["directory", "sign", "--ca", "tls", "--input", "plain.json", "--output", name], dir);
    common::sandbox::ok(&signed);
}

fn check(dir: &Path, name: &str) -> (bool, serde_json::Value) {
    let output = interlock(&["directory", "check", "--directory", name, "--ca", "tls", "--json"], dir);
    (output.status.success(), serde_json::from_slice(&output.stdout).unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_escrow_deployed_by_the_cli_passes_the_directory_check_and_a_wrong_address_fails_it() {
    let devnet = interlock_evm::devnet::Devnet::start(1).await.unwrap();
    let temp = tempfile::tempdir().unwrap();
    let dir = temp.path();
    // The devnet funds the account of seed 0x01…01.
    std::fs::write(dir.join("deployer.key"), "01".repeat(32)).unwrap();
    let rpc = devnet.anvil.endpoint();
    let deployed = interlock(&["deploy", "evm", "--rpc", rpc, "--key", "deployer.key", "--confirmations", "3"], dir);
    let stanza: serde_json::Value = serde_json::from_str(&common::sandbox::ok(&deployed)).unwrap();
    let config = stanza["config"].clone();
    assert_eq!(config["confirmations"], 3, "{stanza}");
    assert!(config["deploy_height"].as_u64().unwrap() > 0, "{stanza}");

    let network = |config: &serde_json::Value| {
        serde_json::json!({
            "networks": [{"id": 2, "name": "chain", "platform": stanza["platform"], "config": config}],
            "gateways": [], "ledgers": [], "parties": [], "notaries": [], "observers": [],
        })
    };
    sign(dir, &network(&config), "directory.json");
    let (passed, report) = check(dir, "directory.json");
    assert!(passed, "{report:#}");
    let checks = report["networks"][0]["checks"].as_array().unwrap();
    assert!(checks.iter().any(|c| c["check"] == "escrow code" && c["passed"] == true), "{report:#}");

    // The same directory pointing at another contract (the deployer's own
    // account holds no code at all): refused, and said why.
    let mut wrong = config.clone();
    wrong["escrow"] = serde_json::json!(devnet.accounts[0].to_string());
    sign(dir, &network(&wrong), "wrong.json");
    let (passed, report) = check(dir, "wrong.json");
    assert!(!passed, "{report:#}");
    let failed: Vec<&str> = report["networks"][0]["checks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["passed"] == false)
        .map(|c| c["check"].as_str().unwrap())
        .collect();
    assert!(failed.contains(&"escrow code"), "{report:#}");
}
