//! Driving a sandbox from a test as a user would: the real binary, run in a
//! temporary directory, with the sandbox in its `sb/` and stopped however the
//! test ends.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

/// Runs `interlock ARGS` in `dir` and returns what it did, success or not.
pub fn interlock(args: &[&str], dir: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_interlock")).args(args).current_dir(dir).output().unwrap()
}

/// `interlock deal --sandbox sb --as PARTY ARGS...` in `dir`.
pub fn deal_as(dir: &Path, party: &str, args: &[&str]) -> Output {
    let mut all = vec!["deal", "--sandbox", "sb", "--as", party];
    all.extend(args);
    interlock(&all, dir)
}

/// The arguments of `deal propose`: to `to`, paying `payment` for `delivery`
/// (each `AMOUNT ASSET@NETWORK`), then `extra`.
pub fn proposal<'a>(to: &'a str, payment: &'a str, delivery: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec!["propose", "--to", to, "--payment", payment, "--delivery", delivery];
    args.extend(extra);
    args
}

/// Each `(party, args, expected)` of `cases`: `deal_as(dir, party, args)`
/// fails and its standard error says `expected`.
pub fn assert_deals_refused(dir: &Path, cases: &[(&str, Vec<&str>, &str)]) {
    for (party, args, expected) in cases {
        let output = deal_as(dir, party, args);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success() && stderr.contains(expected), "{args:?}: {stderr}");
    }
}

/// Stops the sandbox in `DIR/sb` when dropped.
pub struct Sandbox(pub PathBuf);

impl Drop for Sandbox {
    fn drop(&mut self) {
        let _ = interlock(&["sandbox", "down", "--dir", "sb"], &self.0);
    }
}

/// `sandbox up --dir sb EXTRA...` in `dir`, which must succeed.
pub fn up(dir: &Path, extra: &[&str]) -> Sandbox {
    let mut args = vec!["sandbox", "up", "--dir", "sb"];
    args.extend(extra);
    ok(&interlock(&args, dir));
    Sandbox(dir.to_owned())
}

/// The standard output of a command that must have succeeded.
pub fn ok(output: &Output) -> String {
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(output.status.success(), "{text}{}", String::from_utf8_lossy(&output.stderr));
    text
}

/// The JSON a command that must have succeeded printed.
pub fn json(output: &Output) -> serde_json::Value {
    serde_json::from_str(&ok(output)).unwrap()
}

/// The sandbox's state file entry of process `name`.
pub fn process(dir: &Path, name: &str) -> serde_json::Value {
    let state: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("sb/sandbox.json")).unwrap()).unwrap();
    state["processes"].as_array().unwrap().iter().find(|p| p["name"] == name).unwrap().clone()
}

/// The settings the sandbox started process `name` with: its config file.
pub fn settings(dir: &Path, name: &str) -> toml::Table {
    let args: Vec<String> = serde_json::from_value(process(dir, name)["args"].clone()).unwrap();
    assert_eq!(args.len(), 3, "{name} starts from its config file alone: {args:?}");
    assert_eq!(args[1], "--config", "{args:?}");
    std::fs::read_to_string(dir.join("sb").join(&args[2])).unwrap().parse().unwrap()
}

/// The observer's web address (`host:port`), from its config file.
pub fn observer_web_address(dir: &Path) -> String {
    settings(dir, "observer")["http"].as_str().unwrap().to_owned()
}

/// The buyer proposes a deal to the seller (`deal --as buyer propose --to seller
/// EXTRA...`); the agent's view of the new deal.
pub fn propose_to_seller(dir: &Path, extra: &[&str]) -> serde_json::Value {
    let mut args = vec!["deal", "--sandbox", "sb", "--as", "buyer", "--json", "propose", "--to", "seller"];
    args.extend(extra);
    json(&interlock(&args, dir))
}

/// `sandbox status --json` in `dir`, which must say the sandbox is healthy.
pub fn healthy_status(dir: &Path) -> serde_json::Value {
    let status = json(&interlock(&["sandbox", "status", "--dir", "sb", "--json"], dir));
    assert_eq!(status["healthy"], true, "{status}");
    status
}

/// `sandbox deal --mode MODE --json` in `dir`, whose deal must complete; its report.
pub fn completed_deal(dir: &Path, mode: &str) -> serde_json::Value {
    let deal = json(&interlock(&["sandbox", "deal", "--dir", "sb", "--mode", mode, "--json"], dir));
    assert_eq!(deal["outcome"], "completed", "{deal}");
    deal
}

/// Polls `party`'s view of deal `id` until `done` holds of it, for at most
/// `within_s` seconds; `what` names what the test waits for.
pub fn wait_for(
    dir: &Path,
    party: &str,
    id: &str,
    what: &str,
    within_s: u64,
    done: impl Fn(&serde_json::Value) -> bool,
) {
    let started = Instant::now();
    loop {
        let view = json(&interlock(&["deal", "--sandbox", "sb", "--as", party, "--json", "status", id], dir));
        if done(&view) {
            return;
        }
        assert!(started.elapsed() < Duration::from_secs(within_s), "{party}: {what} never came: {view}");
        std::thread::sleep(Duration::from_millis(200));
    }
}
