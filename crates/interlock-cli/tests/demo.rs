//! The README's first command, run as a user would: the real binary.

use std::path::Path;
use std::process::Command;

/// Runs `interlock demo FLAGS... --json --dir DIR/data`, which must succeed
/// (`needs` says what it takes besides the binary); the deals it reports.
fn demo_deals(dir: &Path, flags: &[&str], needs: &str) -> Vec<serde_json::Value> {
    let output = Command::new(env!("CARGO_BIN_EXE_interlock"))
        .arg("demo")
        .args(flags)
        .args(["--json", "--dir"])
        .arg(dir.join("data"))
        .output()
        .expect("the interlock binary runs");
    let command = std::iter::once("demo").chain(flags.iter().copied()).collect::<Vec<_>>().join(" ");
    assert!(output.status.success(), "{command} failed{needs}: {}", String::from_utf8_lossy(&output.stderr));
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).expect("one JSON object");
    report["deals"].as_array().expect("a deals list").clone()
}

/// Each deal's mode and outcome.
fn summary(deals: &[serde_json::Value]) -> Vec<(&str, &str)> {
    deals.iter().map(|d| (d["mode"].as_str().unwrap(), d["outcome"].as_str().unwrap())).collect()
}

/// Each deal leaves what the buyer and the seller hold together of each
/// `(network, asset)` as it found it.
fn assert_conserved(deals: &[serde_json::Value], assets: &[(&str, &str)]) {
    let total = |balances: &serde_json::Value, network: &str, asset: &str| -> u64 {
        ["buyer", "seller"].iter().map(|p| balances[p][network][asset].as_u64().unwrap_or(0)).sum()
    };
    for deal in deals {
        for (network, asset) in assets {
            assert_eq!(
                total(&deal["balances_before"], network, asset),
                total(&deal["balances_after"], network, asset),
                "{network} {asset} conserved"
            );
        }
    }
}

#[test]
fn demo_settles_two_deals_refunds_the_third_and_reverses_the_fourth_with_balances_conserved() {
    let dir = tempfile::tempdir().unwrap();
    let deals = demo_deals(dir.path(), &[], "");
    assert_eq!(
        summary(&deals),
        [("notary", "completed"), ("hashlock", "completed"), ("notary", "refunded"), ("notary", "reversed")]
    );
    for deal in &deals {
        assert_eq!(deal["id"].as_str().unwrap().len(), 66, "0x and 64 hex digits");
    }
    assert_conserved(&deals, &[("alpha", "USD"), ("beta", "GOLD"), ("beta", "TITLE #1")]);
    // The buyer paid 250 + 100 and got the 75 of the refunded deal back.
    let last = &deals[2]["balances_after"];
    assert_eq!(last["buyer"]["alpha"]["USD"], 650);
    assert_eq!(last["buyer"]["beta"]["TITLE #1"], 1);
    assert_eq!(last["buyer"]["beta"]["GOLD"], 40);
    // The fourth deal was held, disputed and reversed: every balance is back.
    assert_eq!(deals[3]["balances_before"], deals[3]["balances_after"]);
    assert_eq!(deals[3]["balances_after"]["buyer"]["alpha"]["USD"], 650);
    // Running again into the same directory is refused with a clear message.
    let again = Command::new(env!("CARGO_BIN_EXE_interlock"))
        .args(["demo", "--dir"])
        .arg(dir.path().join("data"))
        .output()
        .unwrap();
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("already exists"));
}

/// The deals across platforms: beta is a real anvil with the escrow contract, an
/// ERC-20 and an ERC-721; alpha an embedded ledger.
#[test]
fn demo_evm_settles_across_a_ledger_and_an_evm_chain_and_refunds_on_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let deals = demo_deals(dir.path(), &["--evm"], " (anvil comes from scripts/npm-install)");
    assert_eq!(summary(&deals), [("notary", "completed"), ("hashlock", "completed"), ("notary", "refunded")]);
    assert_conserved(&deals, &[("alpha", "USD"), ("alpha", "GOLD"), ("beta", "USDC"), ("beta", "DEED 1")]);
    let last = &deals[2]["balances_after"];
    // ERC-721 delivered to the buyer, ERC-20 paid to the seller, the refunded 75 back.
    assert_eq!(last["buyer"]["beta"]["DEED 1"], 1);
    assert_eq!(last["seller"]["beta"]["USDC"], 100);
    assert_eq!(last["buyer"]["beta"]["USDC"], 900);
    assert_eq!(last["buyer"]["alpha"]["USD"], 750);
    assert_eq!(last["buyer"]["alpha"]["GOLD"], 40);
}

/// beta a real regtest litecoind: LTC delivered and paid by hashlock scripts,
/// LTC paid by a notary script whose spend the notaries signed, and a payment
/// refunded after its lock time; LTC conserved once the fees each party paid
/// are counted back in.
#[test]
fn demo_litecoin_settles_across_a_ledger_and_litecoin_and_refunds_after_the_lock_time() {
    let dir = tempfile::tempdir().unwrap();
    let deals = demo_deals(dir.path(), &["--litecoin"], " (litecoind comes from scripts/litecoind-install)");
    assert_eq!(
        summary(&deals),
        [("hashlock", "completed"), ("hashlock", "completed"), ("notary", "completed"), ("hashlock", "refunded")]
    );
    assert_conserved(&deals, &[("alpha", "USD"), ("alpha", "GOLD"), ("beta", "LTC")]);
    let held = |balances: &serde_json::Value, party: &str, network: &str, asset: &str| -> u64 {
        balances[party][network][asset].as_u64().unwrap_or(0)
    };
    let (first, last) = (&deals[0]["balances_before"], &deals[3]["balances_after"]);
    // 0.5 LTC delivered to the buyer, 0.25 and 0.2 LTC paid to the seller, the 0.1 refunded.
    assert_eq!(held(last, "buyer", "beta", "LTC"), held(first, "buyer", "beta", "LTC") + 5_000_000);
    assert_eq!(held(last, "seller", "beta", "LTC"), held(first, "seller", "beta", "LTC") - 5_000_000);
    assert_eq!(held(last, "buyer", "alpha", "USD"), 900);
    assert_eq!(held(last, "buyer", "alpha", "GOLD"), 60);
}

#[test]
fn sim_runs_seeds_from_the_cli_and_reports_json() {
    let output = Command::new(env!("CARGO_BIN_EXE_interlock"))
        .args(["sim", "--seeds", "20", "--from", "5000", "--json"])
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stdout));
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(report["violations"], 0);
    assert_eq!(report["seeds"], 20);
    assert!(report["deals"].as_u64().unwrap() >= 40);
    let fields = ["reorganisations", "deep_reorganisations", "reorg_lost", "reorg_one_sided", "script_chain_seeds"];
    let fee_fields = ["fees_paid", "spends_waited", "fee_bumps", "dust_refused", "fee_cap_exceeded", "fee_lost"];
    for field in fields.into_iter().chain(fee_fields) {
        assert!(report[field].is_u64(), "{field} in {report}");
    }
}

#[test]
fn bench_spends_prints_the_size_of_each_litecoin_spend_beside_the_reference_script() {
    let output = Command::new(env!("CARGO_BIN_EXE_interlock"))
        .args(["bench", "spends", "--rate", "7", "--json"])
        .output()
        .expect("the interlock binary runs");
    assert!(output.status.success(), "bench spends failed: {}", String::from_utf8_lossy(&output.stderr));
    let rows: Vec<serde_json::Value> = serde_json::from_slice(&output.stdout).expect("a JSON list");
    let mut seen: Vec<(String, String)> = Vec::new();
    for row in &rows {
        let vbytes = row["vbytes"].as_u64().expect("vbytes");
        assert!(vbytes > 100 && vbytes < 400, "{row}");
        assert_eq!(row["fee_litoshis"].as_u64(), Some(7 * vbytes), "{row}");
        let script = match row["notaries"].as_u64() {
            Some(notaries) => format!("{} {}-of-{notaries}", row["script"].as_str().unwrap(), row["threshold"]),
            None => row["script"].as_str().unwrap().to_owned(),
        };
        seen.push((script, row["op"].as_str().unwrap().to_owned()));
    }
    seen.sort();
    let mut expected: Vec<(String, String)> = ["interlock", "reference"]
        .iter()
        .flat_map(|script| ["claim", "lock", "refund"].map(|op| (script.to_string(), op.to_owned())))
        .collect();
    for set in ["interlock-notary 2-of-3", "interlock-notary 3-of-5"] {
        expected.extend(["cancel", "execute", "lock", "refund"].map(|op| (set.to_owned(), op.to_owned())));
    }
    expected.sort();
    assert_eq!(seen, expected);
    let vbytes = |set: &str, op: &str| {
        let row =
            rows.iter().find(|row| row["op"] == op && format!("{}-of-{}", row["threshold"], row["notaries"]) == set);
        row.unwrap_or_else(|| panic!("no {op} of {set}"))["vbytes"].as_u64().unwrap()
    };
    assert!(vbytes("3-of-5", "execute") > vbytes("2-of-3", "execute"), "a larger set costs more to execute");
    let refused = Command::new(env!("CARGO_BIN_EXE_interlock"))
        .args(["bench", "spends", "--rate", "0"])
        .output()
        .expect("the interlock binary runs");
    assert!(!refused.status.success(), "a zero fee rate is refused");
}

#[test]
fn routed_demo_settles_both_modes_through_the_relay_in_one_process_and_stops_it_all() {
    let dir = tempfile::tempdir().unwrap();
    let sandbox = dir.path().join("sandbox");
    let output = Command::new(env!("CARGO_BIN_EXE_interlock"))
        .args(["demo", "--routed", "--dir"])
        .arg(&sandbox)
        .output()
        .expect("the interlock binary runs");
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{text}{}", String::from_utf8_lossy(&output.stderr));
    assert!(text.contains("route alpha to gamma: alpha -> beta -> gamma (2 hops)"), "{text}");
    for path in ["alpha -> beta -> gamma", "gamma -> beta -> alpha"] {
        for kind in ["forward", "assert", "notify"] {
            assert!(
                text.lines().any(|line| line.trim_start().starts_with(kind) && line.contains(path)),
                "{kind} {path}: {text}"
            );
        }
    }
    assert!(text.contains("both deals completed on both sides"), "{text}");
    // One process: every role ran on a thread of the demo, its output in one log.
    assert!(text.contains("on threads of this process (pid "), "{text}");
    let roles = std::fs::read_to_string(sandbox.join("logs/roles.log")).unwrap();
    for network in 1..=3 {
        assert!(roles.contains(&format!("(gateway for network {network}, key")), "gateway {network}: {roles}");
    }
    assert!(!text.contains("listening on"), "the roles' own lines stay out of the story: {text}");
    // Nothing the demo started still runs in its directory, and it can hold another.
    assert!(!sandbox.join("sandbox.json").exists(), "the demo took its sandbox down");
    let sandbox = sandbox.canonicalize().unwrap();
    let running = || {
        let entries = std::fs::read_dir("/proc").unwrap().flatten();
        let running_here = |entry: &std::fs::DirEntry| {
            let status = std::fs::read_to_string(entry.path().join("status")).unwrap_or_default();
            std::fs::read_link(entry.path().join("cwd")).is_ok_and(|cwd| cwd == sandbox)
                && !status.contains("State:\tZ")
        };
        entries.filter(running_here).map(|entry| entry.path()).collect::<Vec<_>>()
    };
    let stopping = std::time::Instant::now();
    while !running().is_empty() && stopping.elapsed() < std::time::Duration::from_secs(10) {
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert_eq!(running(), Vec::<std::path::PathBuf>::new(), "processes still run in the demo's sandbox");
}

#[test]
fn routed_demo_in_a_directory_holding_a_sandbox_refuses_and_says_so() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("sandbox.json"), "{}").unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_interlock"))
        .args(["demo", "--routed", "--dir"])
        .arg(dir.path())
        .output()
        .expect("the interlock binary runs");
    let error = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{error}");
    // The error reaches the terminal, not the roles' log the demo's output was moved to.
    assert!(error.contains("a sandbox is already up"), "{error}");
    assert!(error.contains("logs/roles.log"), "{error}");
    assert_eq!(std::fs::read_to_string(dir.path().join("sandbox.json")).unwrap(), "{}", "the sandbox's state is kept");
}

#[test]
fn routed_demo_reports_its_deals_and_every_message_path_as_json() {
    let output = Command::new(env!("CARGO_BIN_EXE_interlock"))
        .args(["demo", "--routed", "--json"])
        .output()
        .expect("the interlock binary runs");
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{text}{}", String::from_utf8_lossy(&output.stderr));
    let report: serde_json::Value =
        serde_json::from_str(text.trim()).unwrap_or_else(|_| panic!("one JSON object: {text}"));
    assert_eq!(report["completed"], true, "{report}");
    assert_eq!(report["routes"][0]["path"], serde_json::json!(["alpha", "beta", "gamma"]), "{report}");
    let outcomes: Vec<&str> =
        report["deals"].as_array().unwrap().iter().map(|d| d["outcome"].as_str().unwrap()).collect();
    assert_eq!(outcomes, ["completed", "completed"], "{report}");
    let messages = report["messages"].as_array().unwrap();
    for kind in ["forward", "assert", "notify"] {
        for path in [["alpha", "beta", "gamma"], ["gamma", "beta", "alpha"]] {
            assert!(
                messages.iter().any(|m| m["kind"] == kind && m["path"] == serde_json::json!(path)),
                "{kind} {path:?}: {report}"
            );
        }
    }
}
