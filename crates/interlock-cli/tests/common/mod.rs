//! Setting up a CA, a signed directory and a ledger node process, as a user would.
#![allow(dead_code)]

pub mod inspection;
pub mod sandbox;

use interlock_core::crypto::PartyKey;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};

pub fn interlock(args: &[&str], dir: &Path) {
    let output = Command::new(env!("CARGO_BIN_EXE_interlock")).args(args).current_dir(dir).output().unwrap();
    assert!(output.status.success(), "interlock {args:?}: {}", String::from_utf8_lossy(&output.stderr));
}

/// The party the directory lists as `buyer`.
pub fn buyer() -> PartyKey {
    PartyKey::from_seed([2; 32])
}

/// The gateway of network 1 (alpha), the only role that may call its ledger node.
pub fn gateway() -> PartyKey {
    PartyKey::from_seed([3; 32])
}

/// `tls/` with a CA, the ledger node's, its gateway's (`alpha-gateway`, the
/// caller the node lets in) and the buyer's certificates, and `directory.json`
/// listing them, signed.
pub fn identities(dir: &Path) {
    interlock(&["ca", "init", "--dir", "tls"], dir);
    interlock(&["ca", "issue", "--dir", "tls", "--role", "ledger", "--name", "alpha-ledger"], dir);
    interlock(&["ca", "issue", "--dir", "tls", "--role", "gateway", "--name", "alpha-gateway"], dir);
    interlock(&["ca", "issue", "--dir", "tls", "--role", "party", "--name", "buyer"], dir);
    let directory = serde_json::json!({
        "networks": [{"id": 1, "name": "alpha", "platform": "ledger", "config": {"node": "127.0.0.1:7101"}}],
        "gateways": [{"name": "alpha-gateway", "network": 1, "endpoint": "127.0.0.1:7102",
                      "key": interlock_core::hash::to_hex(&gateway().public().0)}],
        "ledgers": [{"name": "alpha-ledger", "network": 1, "endpoint": "127.0.0.1:7101"}],
        "parties": [{"name": "buyer", "key": interlock_core::hash::to_hex(&buyer().public().0), "accounts": {}}],
        "notaries": [],
        "observers": [],
    });
    std::fs::write(dir.join("plain.json"), directory.to_string()).unwrap();
    interlock(&["directory", "sign", "--ca", "tls", "--input", "plain.json", "--output", "directory.json"], dir);
}

/// Starts the node and returns it with the address it printed.
pub fn start_node(dir: &Path) -> (Child, String) {
    let args = ["ledger", "--data", "data", "--network", "1", "--listen", "127.0.0.1:0"];
    start_listening(
        &[&args[..], &["--tls-dir", "tls", "--name", "alpha-ledger", "--directory", "directory.json"]].concat(),
        dir,
    )
}

/// `interlock ARGS` in `dir`, a service, and the address it printed first.
pub fn start_listening(args: &[&str], dir: &Path) -> (Child, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_interlock"))
        .args(args)
        .current_dir(dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let address = line
        .strip_prefix("listening on ")
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("{args:?} did not start: {line:?}"))
        .to_string();
    (child, address)
}
