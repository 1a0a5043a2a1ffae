//! `bench sandbox`: it reports what each process spends per settled deal,
//! and it owns the sandbox it starts: killed with SIGKILL in the middle of
//! its run, it leaves none of the sandbox's processes behind.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Whether process `pid` runs (a zombie, ended but not yet reaped, does not).
fn alive(pid: u64) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat.rsplit(')').next().and_then(|rest| rest.split_whitespace().next()) != Some("Z"),
        Err(_) => false,
    }
}

/// The pids the sandbox's state file lists, once it lists them.
fn sandbox_pids(state: &std::path::Path) -> Option<Vec<u64>> {
    let state: serde_json::Value = serde_json::from_slice(&std::fs::read(state).ok()?).ok()?;
    let pids: Vec<u64> = state["processes"].as_array()?.iter().filter_map(|process| process["pid"].as_u64()).collect();
    (!pids.is_empty()).then_some(pids)
}

#[test]
fn a_bench_killed_mid_run_leaves_no_sandbox_process_running() {
    let dir = tempfile::tempdir().unwrap();
    let sandbox = dir.path().join("sb");
    let mut bench = Command::new(env!("CARGO_BIN_EXE_interlock"))
        .args(["bench", "sandbox", "--deals", "2000", "--concurrency", "20", "--json", "--dir"])
        .arg(&sandbox)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let started = Instant::now();
    let pids = loop {
        if let Some(pids) = sandbox_pids(&sandbox.join("sandbox.json")) {
            break pids;
        }
        if let Some(status) = bench.try_wait().unwrap() {
            panic!("the bench ended ({status}) before its sandbox was up");
        }
        assert!(started.elapsed() < Duration::from_secs(180), "the bench's sandbox never came up");
        std::thread::sleep(Duration::from_millis(100));
    };
    // The deals are under way: the sandbox's processes run.
    std::thread::sleep(Duration::from_secs(2));
    assert!(pids.iter().all(|pid| alive(*pid)), "the sandbox's processes {pids:?} run while the bench does");
    bench.kill().unwrap();
    bench.wait().unwrap();
    let killed = Instant::now();
    loop {
        let running: Vec<u64> = pids.iter().copied().filter(|pid| alive(*pid)).collect();
        if running.is_empty() {
            break;
        }
        assert!(
            killed.elapsed() < Duration::from_secs(20),
            "processes {running:?} of the sandbox still run 20 s after its bench was killed"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn a_bench_reports_each_processs_cost_per_settled_deal() {
    let output = Command::new(env!("CARGO_BIN_EXE_interlock"))
        .args(["bench", "sandbox", "--deals", "30", "--concurrency", "10", "--json"])
        .output()
        .unwrap();
    assert!(output.status.success(), "bench sandbox failed: {}", String::from_utf8_lossy(&output.stderr));
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).expect("one JSON object");
    assert_eq!(report["completed"], 30, "{report}");
    let costs = &report["per_deal"];
    let figure = |process: &str, what: &str| {
        costs[process][what].as_f64().unwrap_or_else(|| panic!("no {what} for {process}: {costs}"))
    };
    for gateway in ["alpha-gateway", "beta-gateway"] {
        // Each deal is proposed, registered and settled through both gateways,
        // which record it durably and check its parties' signatures.
        assert!(figure(gateway, "grpc_calls") >= 2.0, "{gateway}: {costs}");
        assert!(figure(gateway, "durable_commits") >= 1.0, "{gateway}: {costs}");
        assert!(figure(gateway, "signatures_ed25519") >= 2.0, "{gateway}: {costs}");
        assert!(figure(gateway, "cpu_ms") > 0.0, "{gateway}: {costs}");
    }
    for ledger in ["alpha-ledger", "beta-ledger"] {
        // A reservation and an execution on each network, each a signed transaction.
        assert!(figure(ledger, "signatures_ed25519") >= 2.0, "{ledger}: {costs}");
    }
    // A hashlock deal asks no notary anything.
    assert_eq!(figure("n1", "grpc_calls"), 0.0, "{costs}");
    assert_eq!(figure("n1", "signatures_secp256k1"), 0.0, "{costs}");
}
