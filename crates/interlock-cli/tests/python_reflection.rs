//! A generic reflection-based client from another language (Python's
//! grpc-requests) finds and calls the ledger node over mutual TLS.

mod common;

use std::path::PathBuf;
use std::process::Command;

/// The Python that has grpcio and grpc-requests: `INTERLOCK_PYTHON`, or the
/// virtual environment scripts/test installs them into.
fn python() -> PathBuf {
    if let Some(path) = std::env::var_os("INTERLOCK_PYTHON") {
        return path.into();
    }
    let workspace = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let python = workspace.join("target/pyenv/bin/python");
    assert!(
        python.exists(),
        "{} is missing: run scripts/test, which installs grpcio and grpc-requests into target/pyenv \
         (or set INTERLOCK_PYTHON to a Python that has them)",
        python.display()
    );
    python
}

#[test]
fn python_grpc_requests_lists_the_services_and_calls_one() {
    let python = python();
    let dir = tempfile::tempdir().unwrap();
    common::identities(dir.path());
    let (mut node, address) = common::start_node(dir.path());
    let port = address.rsplit(':').next().unwrap();
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/python/reflection.py");
    let output = Command::new(&python)
        .arg(script)
        .arg(format!("localhost:{port}"))
        .arg(dir.path().join("tls"))
        .arg("buyer")
        .output()
        .unwrap();
    node.kill().unwrap();
    node.wait().unwrap();
    assert!(output.status.success(), "python client failed: {}", String::from_utf8_lossy(&output.stderr));
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let services: Vec<&str> = report["services"].as_array().unwrap().iter().map(|s| s.as_str().unwrap()).collect();
    assert!(services.contains(&"interlock.v1.LedgerNode"), "{services:?}");
    assert!(services.contains(&"grpc.health.v1.Health"), "{services:?}");
    assert_eq!(report["tip"]["network"], "1", "{report}");
}
