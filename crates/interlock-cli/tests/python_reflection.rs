//! A generic reflection-based client from another language (Python's
//! grpc-requests) finds and calls the sandbox's services over mutual TLS, with
//! the certificates `sandbox up` issued.

use std::path::{Path, PathBuf};
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

fn interlock(args: &[&str], dir: &Path) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_interlock")).args(args).current_dir(dir).output().unwrap()
}

struct Sandbox(PathBuf);

impl Drop for Sandbox {
    fn drop(&mut self) {
        let _ = interlock(&["sandbox", "down", "--dir", "sb"], &self.0);
    }
}

fn call(python: &Path, dir: &Path, (address, name): (&str, &str), service: &str, method: &str) -> serde_json::Value {
    let port = address.rsplit(':').next().unwrap();
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/python/reflection.py");
    let output = Command::new(python)
        .arg(script)
        .arg(format!("localhost:{port}"))
        .arg(dir.join("sb/tls"))
        .args([name, service, method])
        .output()
        .unwrap();
    assert!(output.status.success(), "python client failed: {}", String::from_utf8_lossy(&output.stderr));
    serde_json::from_slice(&output.stdout).unwrap()
}

#[test]
fn python_grpc_requests_lists_the_sandbox_services_and_calls_them() {
    let python = python();
    let dir = tempfile::tempdir().unwrap();
    let up = interlock(&["sandbox", "up", "--dir", "sb"], dir.path());
    assert!(up.status.success(), "{}", String::from_utf8_lossy(&up.stderr));
    let _sandbox = Sandbox(dir.path().to_owned());
    let status = interlock(&["sandbox", "status", "--dir", "sb", "--json"], dir.path());
    let status: serde_json::Value = serde_json::from_slice(&status.stdout).unwrap();
    let address = |name: &str| {
        let processes = status["processes"].as_array().unwrap();
        processes.iter().find(|p| p["name"] == name).unwrap()["address"].as_str().unwrap().to_owned()
    };

    // A ledger node answers its network's gateway only.
    let ledger_address = address("alpha-ledger");
    let ledger = call(&python, dir.path(), (&ledger_address, "alpha-gateway"), "interlock.v1.LedgerNode", "GetTip");
    let services: Vec<&str> = ledger["services"].as_array().unwrap().iter().map(|s| s.as_str().unwrap()).collect();
    assert!(services.contains(&"interlock.v1.LedgerNode"), "{services:?}");
    assert!(services.contains(&"grpc.health.v1.Health"), "{services:?}");
    assert_eq!(ledger["answer"]["network"], "1", "{ledger}");

    let gateway = call(&python, dir.path(), (&address("beta-gateway"), "buyer"), "grpc.health.v1.Health", "Check");
    assert_eq!(gateway["answer"]["status"], "SERVING", "{gateway}");
    let services: Vec<&str> = gateway["services"].as_array().unwrap().iter().map(|s| s.as_str().unwrap()).collect();
    assert!(services.contains(&"interlock.v1.Gateway"), "{services:?}");
    assert!(services.contains(&"interlock.v1.GatewayPeer"), "{services:?}");

    // The buyer's agent answers its own party: no deals yet.
    let agent = call(&python, dir.path(), (&address("buyer-agent"), "buyer"), "interlock.v1.Agent", "ListDeals");
    assert!(agent["services"].as_array().unwrap().iter().any(|s| s == "interlock.v1.Agent"), "{agent}");
    assert!(agent["answer"].get("deals").is_none_or(|deals| deals.as_array().unwrap().is_empty()), "{agent}");
}
