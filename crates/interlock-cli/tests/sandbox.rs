//! The multi-process sandbox from the CLI: up, status, a deal in each mode
//! through the separate ledger-node and notary processes, down.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn interlock(args: &[&str], dir: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_interlock")).args(args).current_dir(dir).output().unwrap()
}

/// Stops the sandbox however the test ends.
struct Sandbox(PathBuf);

impl Drop for Sandbox {
    fn drop(&mut self) {
        let _ = interlock(&["sandbox", "down", "--dir", "sb"], &self.0);
    }
}

fn json(output: &Output) -> serde_json::Value {
    assert!(
        output.status.success(),
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

#[test]
fn sandbox_runs_deals_in_both_modes_through_separate_processes() {
    let dir = tempfile::tempdir().unwrap();
    let up = interlock(&["sandbox", "up", "--dir", "sb"], dir.path());
    assert!(up.status.success(), "{}", String::from_utf8_lossy(&up.stderr));
    let sandbox = Sandbox(dir.path().to_owned());

    let status = json(&interlock(&["sandbox", "status", "--dir", "sb", "--json"], dir.path()));
    assert_eq!(status["healthy"], true, "{status}");
    let processes = status["processes"].as_array().unwrap();
    assert_eq!(processes.len(), 5, "two ledger nodes and three notaries");
    let pids: Vec<u64> = processes.iter().map(|p| p["pid"].as_u64().unwrap()).collect();
    assert!(pids.iter().all(|pid| *pid != u64::from(std::process::id())), "separate processes");

    let notary = json(&interlock(&["sandbox", "deal", "--dir", "sb", "--mode", "notary", "--json"], dir.path()));
    assert_eq!(notary["outcome"], "completed", "{notary}");
    assert_eq!(notary["balances_after"]["buyer"]["beta"]["GOLD"], "10");
    assert_eq!(notary["balances_after"]["buyer"]["alpha"]["USD"], "999975");
    let hashlock = json(&interlock(&["sandbox", "deal", "--dir", "sb", "--mode", "hashlock", "--json"], dir.path()));
    assert_eq!(hashlock["outcome"], "completed", "{hashlock}");
    assert_eq!(hashlock["balances_after"]["buyer"]["alpha"]["USD"], "999950");
    assert_eq!(hashlock["balances_after"]["seller"]["alpha"]["USD"], "50");

    // A second `up` refuses to start another sandbox over this one.
    let again = interlock(&["sandbox", "up", "--dir", "sb"], dir.path());
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("already up"));

    drop(sandbox);
    std::thread::sleep(std::time::Duration::from_millis(300));
    for pid in pids {
        assert!(!Path::new(&format!("/proc/{pid}/cmdline")).exists() || is_zombie(pid), "process {pid} still runs");
    }
}

/// A stopped child of an exited parent may linger as a zombie until reaped.
fn is_zombie(pid: u64) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).map_or(true, |stat| stat.contains(") Z "))
}

#[test]
fn a_deal_completes_when_a_ledger_node_and_two_notaries_were_killed_and_restarted() {
    let dir = tempfile::tempdir().unwrap();
    let up = interlock(&["sandbox", "up", "--dir", "sb"], dir.path());
    assert!(up.status.success(), "{}", String::from_utf8_lossy(&up.stderr));
    let _sandbox = Sandbox(dir.path().to_owned());
    // Down before the deal starts: the payment network, and two of three
    // notaries, so no quorum can form until they are back.
    for name in ["alpha-ledger", "n1", "n2"] {
        let killed = interlock(&["sandbox", "kill", "--dir", "sb", name], dir.path());
        assert!(killed.status.success(), "{}", String::from_utf8_lossy(&killed.stderr));
    }
    let deal_dir = dir.path().to_owned();
    let deal = std::thread::spawn(move || {
        interlock(&["sandbox", "deal", "--dir", "sb", "--mode", "notary", "--json"], &deal_dir)
    });
    std::thread::sleep(std::time::Duration::from_millis(1_500));
    for name in ["alpha-ledger", "n1", "n2"] {
        let started = interlock(&["sandbox", "start", "--dir", "sb", name], dir.path());
        assert!(started.status.success(), "{}", String::from_utf8_lossy(&started.stderr));
    }
    let report = json(&deal.join().unwrap());
    assert_eq!(report["outcome"], "completed", "{report}");
    // The restarted ledger kept the funding it committed before it was killed.
    assert_eq!(report["balances_after"]["buyer"]["alpha"]["USD"], "999975", "{report}");
    assert_eq!(report["balances_after"]["seller"]["beta"]["GOLD"], "999990", "{report}");
}

#[test]
fn two_hundred_deals_end_atomically_while_ledger_nodes_and_notaries_are_killed() {
    let dir = tempfile::tempdir().unwrap();
    let up = interlock(&["sandbox", "up", "--dir", "sb"], dir.path());
    assert!(up.status.success(), "{}", String::from_utf8_lossy(&up.stderr));
    let _sandbox = Sandbox(dir.path().to_owned());
    let deal_dir = dir.path().to_owned();
    let args =
        ["sandbox", "deal", "--dir", "sb", "--mode", "notary", "--count", "200", "--concurrency", "40", "--json"];
    let deals = std::thread::spawn(move || interlock(&args, &deal_dir));
    // Every kind of service process, killed with SIGKILL mid-run and restarted.
    for name in ["alpha-ledger", "n1", "beta-ledger", "n2", "n3", "alpha-ledger"] {
        std::thread::sleep(std::time::Duration::from_millis(400));
        let killed = interlock(&["sandbox", "kill", "--dir", "sb", name], dir.path());
        assert!(killed.status.success(), "{}", String::from_utf8_lossy(&killed.stderr));
        std::thread::sleep(std::time::Duration::from_millis(300));
        let started = interlock(&["sandbox", "start", "--dir", "sb", name], dir.path());
        assert!(started.status.success(), "{}", String::from_utf8_lossy(&started.stderr));
    }
    let report = json(&deals.join().unwrap());
    assert_eq!(report["deals"], 200);
    assert_eq!(report["not_atomic"], 0, "every deal completed or refunded on both sides: {report}");
    // Nothing created or lost on either network.
    assert_eq!(report["totals_after"]["alpha USD"], "1000000", "{report}");
    assert_eq!(report["totals_after"]["beta GOLD"], "1000000", "{report}");
}
