//! The multi-process sandbox from the CLI: up, status, deals in each mode
//! through the agents, gateways, notaries and ledger nodes (every one its own
//! process), every kind of process killed with SIGKILL mid-run, and down.

mod common;

use common::sandbox::{assert_deals_refused, deal_as, interlock, json, proposal, settings, up};

use std::collections::HashMap;
use std::path::Path;

#[test]
fn sandbox_runs_deals_in_both_modes_through_separate_processes() {
    let dir = tempfile::tempdir().unwrap();
    let sandbox = up(dir.path(), &[]);

    let status = json(&interlock(&["sandbox", "status", "--dir", "sb", "--json"], dir.path()));
    assert_eq!(status["healthy"], true, "{status}");
    let processes = status["processes"].as_array().unwrap();
    let mut roles: Vec<&str> = processes.iter().map(|p| p["role"].as_str().unwrap()).collect();
    roles.sort_unstable();
    let expected = [
        "agent",
        "agent",
        "dependent",
        "gateway",
        "gateway",
        "ledger",
        "ledger",
        "notary",
        "notary",
        "notary",
        "observer",
    ];
    assert_eq!(roles, expected, "{status}");
    let pids: Vec<u64> = processes.iter().map(|p| p["pid"].as_u64().unwrap()).collect();
    assert!(pids.iter().all(|pid| *pid != u64::from(std::process::id())), "separate processes");
    // Each process started from its config file alone, which `config check` accepts as its role's.
    for process in processes {
        let (name, role) = (process["name"].as_str().unwrap(), process["role"].as_str().unwrap());
        assert_eq!(settings(dir.path(), name)["listen"].as_str(), process["address"].as_str(), "{name}");
        let file = format!("sb/{name}.toml");
        let checked = json(&interlock(&["config", "check", "--role", role, "--config", &file, "--json"], dir.path()));
        assert_eq!(checked["settings"]["data"].as_str().map(|data| data.starts_with("sb/")), Some(true), "{checked}");
        assert_eq!(checked["passed"], true, "the sandbox writes its keys 0600: {checked}");
        assert!(!checked["keys"].as_array().unwrap().is_empty(), "{checked}");
    }

    let notary = json(&interlock(&["sandbox", "deal", "--dir", "sb", "--mode", "notary", "--json"], dir.path()));
    assert_eq!(notary["outcome"], "completed", "{notary}");
    assert_eq!(notary["balances_after"]["buyer"]["beta"]["GOLD"], "10");
    assert_eq!(notary["balances_after"]["buyer"]["alpha"]["USD"], "999975");
    let hashlock = json(&interlock(&["sandbox", "deal", "--dir", "sb", "--mode", "hashlock", "--json"], dir.path()));
    assert_eq!(hashlock["outcome"], "completed", "{hashlock}");
    assert_eq!(hashlock["balances_after"]["buyer"]["alpha"]["USD"], "999950");
    assert_eq!(hashlock["balances_after"]["seller"]["alpha"]["USD"], "50");

    // The story, for people.
    let story = interlock(&["sandbox", "deal", "--dir", "sb", "--mode", "hashlock"], dir.path());
    let text = String::from_utf8_lossy(&story.stdout);
    assert!(story.status.success(), "{text}");
    assert!(text.contains("delivery executed on beta") && text.contains("ended: completed"), "{text}");

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

/// Each notary's recorded decisions, by deal id in hex.
fn notary_decisions(dir: &Path) -> Vec<HashMap<String, i64>> {
    ["n1", "n2", "n3"]
        .iter()
        .map(|name| {
            let path = dir.join("sb").join(name).join("notary.sqlite");
            let connection = rusqlite::Connection::open(&path).unwrap();
            let mut statement =
                connection.prepare("SELECT deal_id, decision FROM deals WHERE decision IS NOT NULL").unwrap();
            let rows = statement
                .query_map([], |row| {
                    let id: Vec<u8> = row.get(0)?;
                    Ok((interlock_core::hash::to_hex(&id), row.get::<_, i64>(1)?))
                })
                .unwrap();
            rows.map(Result::unwrap).collect()
        })
        .collect()
}

fn kill_and_restart(dir: &Path, name: &str, down_ms: u64) {
    let killed = interlock(&["sandbox", "kill", "--dir", "sb", name], dir);
    assert!(killed.status.success(), "{}", String::from_utf8_lossy(&killed.stderr));
    std::thread::sleep(std::time::Duration::from_millis(down_ms));
    let started = interlock(&["sandbox", "start", "--dir", "sb", name], dir);
    assert!(started.status.success(), "{}", String::from_utf8_lossy(&started.stderr));
}

#[test]
fn two_hundred_notary_deals_end_atomically_while_every_kind_of_process_is_killed() {
    deals_survive_kills("notary");
}

#[test]
fn two_hundred_hashlock_deals_end_atomically_while_every_kind_of_process_is_killed() {
    deals_survive_kills("hashlock");
}

fn deals_survive_kills(mode: &'static str) {
    let dir = tempfile::tempdir().unwrap();
    let _sandbox = up(dir.path(), &[]);
    let deal_dir = dir.path().to_owned();
    let args = ["sandbox", "deal", "--dir", "sb", "--mode", mode, "--count", "200", "--concurrency", "10", "--json"];
    let deals = std::thread::spawn(move || interlock(&args, &deal_dir));
    // Every kind of process, killed with SIGKILL mid-run and restarted.
    let victims = [
        "alpha-ledger",
        "buyer-agent",
        "n1",
        "alpha-gateway",
        "seller-agent",
        "beta-ledger",
        "n2",
        "observer",
        "beta-gateway",
        "n3",
        "buyer-agent",
    ];
    for name in victims {
        std::thread::sleep(std::time::Duration::from_millis(300));
        kill_and_restart(dir.path(), name, 300);
    }
    assert!(!deals.is_finished(), "the deals must still run when the last process is killed");
    let report = json(&deals.join().unwrap());
    assert_eq!(report["deals"], 200);
    assert_eq!(report["not_atomic"], 0, "every deal completed or refunded on both sides: {report}");
    // Nothing created or lost on either network.
    assert_eq!(report["totals_after"]["alpha USD"], "1000000", "{report}");
    assert_eq!(report["totals_after"]["beta GOLD"], "1000000", "{report}");

    // Every deal either side knows ended; in notary mode, no notary
    // contradicted a quorum: a completed deal has no abort recorded anywhere,
    // a refunded one never reached a commit quorum.
    let decisions = notary_decisions(dir.path());
    let notary = mode == "notary";
    let list = json(&interlock(
        &["deal", "--sandbox", "sb", "--as", "buyer", "list", "--limit", "1000", "--json"],
        dir.path(),
    ));
    let mut seen = 0;
    for deal in list["deals"].as_array().unwrap() {
        let id = deal["deal_id"].as_str().unwrap().trim_start_matches("0x");
        let votes: Vec<i64> = decisions.iter().filter_map(|log| log.get(id).copied()).collect();
        let commits = votes.iter().filter(|v| **v == 1).count();
        match deal["state"].as_str().unwrap() {
            "completed" => {
                assert!(!notary || (commits >= 2 && votes.iter().all(|v| *v == 1)), "deal {id}: {votes:?}");
                seen += 1;
            }
            "refunded" => assert!(!notary || commits < 2, "deal {id} refunded after a commit quorum: {votes:?}"),
            // Proposals a restart cut short: never agreed, nothing reserved.
            other => assert!(other == "withdrawn" || other == "proposed", "deal {id} ended {other}"),
        }
    }
    assert!(seen > 0, "some deals completed: {list}");
    // The observer, killed and restarted too, kept a chain that checks.
    let verify = interlock(&["observer", "verify", "--data", "sb/observer"], dir.path());
    assert!(verify.status.success(), "{}", String::from_utf8_lossy(&verify.stdout));
}

#[test]
fn an_operator_proposes_accepts_watches_and_cancels_deals_from_the_cli() {
    let dir = tempfile::tempdir().unwrap();
    let _sandbox = up(dir.path(), &["--manual-accept"]);
    let deal = |party: &str, args: &[&str]| deal_as(dir.path(), party, args);
    let legs = ["--payment", "25 USD@alpha", "--delivery", "10 GOLD@beta"];
    let mut propose = vec!["propose", "--to", "seller", "--mode", "notary", "--window", "30", "--json"];
    propose.extend(legs);
    let proposed = json(&deal("buyer", &propose));
    assert_eq!(proposed["state"], "proposed", "{proposed}");
    let id = proposed["deal_id"].as_str().unwrap().to_owned();

    // The proposal reaches the seller through the gateways.
    let mut received = serde_json::Value::Null;
    for _ in 0..100 {
        received = json(&deal("seller", &["list", "--state", "received", "--json"]));
        if received["deals"].as_array().unwrap().iter().any(|d| d["deal_id"] == id.as_str()) {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert!(received["deals"].as_array().unwrap().iter().any(|d| d["deal_id"] == id.as_str()), "{received}");

    // Accepted by a prefix of its id; watched live to the end.
    let accepted = json(&deal("seller", &["accept", &id[..12], "--json"]));
    assert_eq!(accepted["state"], "running", "{accepted}");
    let watch = deal("buyer", &["watch", &id, "--json"]);
    assert!(watch.status.success(), "{}", String::from_utf8_lossy(&watch.stderr));
    let lines: Vec<serde_json::Value> =
        String::from_utf8_lossy(&watch.stdout).lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.last().unwrap()["state"], "completed", "{lines:?}");
    let status = deal("buyer", &["status", &id]);
    let text = String::from_utf8_lossy(&status.stdout);
    assert!(text.contains("completed") && text.contains("payment executed on alpha"), "{text}");
    let seller = json(&deal("seller", &["status", &id, "--json"]));
    assert_eq!(seller["state"], "completed", "{seller}");

    // A running or finished deal cannot be withdrawn; a fresh proposal can.
    let late = deal("buyer", &["cancel", &id]);
    assert!(!late.status.success());
    assert!(String::from_utf8_lossy(&late.stderr).contains("already completed"), "{late:?}");
    let second = json(&deal("buyer", &propose));
    let second_id = second["deal_id"].as_str().unwrap();
    let cancelled = json(&deal("buyer", &["cancel", second_id, "--json"]));
    assert_eq!(cancelled["state"], "withdrawn", "{cancelled}");

    // Bad input: each refused with a message that says what was expected.
    let cases: [(&str, Vec<&str>, &str); 5] = [
        ("buyer", vec!["status", "ffffffff"], "no deal starting with ffffffff"),
        ("buyer", vec!["status", "not-hex"], "expected a deal id in hex"),
        ("buyer", proposal("nobody", "25 USD@alpha", "10 GOLD@beta", &[]), "no party \"nobody\""),
        ("buyer", proposal("seller", "25USD", "10 GOLD@beta", &[]), "expected AMOUNT ASSET@NETWORK"),
        (
            "buyer",
            proposal("seller", "25 USD@alpha", "10 GOLD@beta", &["--mode", "hashlock", "--role", "seller"]),
            "the buyer proposes",
        ),
    ];
    assert_deals_refused(dir.path(), &cases);
    // The seller's certificate cannot drive the buyer's agent.
    let status = json(&interlock(&["sandbox", "status", "--dir", "sb", "--json"], dir.path()));
    let buyer_agent = status["processes"].as_array().unwrap().iter().find(|p| p["name"] == "buyer-agent").unwrap();
    let address = buyer_agent["address"].as_str().unwrap();
    let output = interlock(&["deal", "--sandbox", "sb", "--as", "seller", "--agent", address, "list"], dir.path());
    let stderr = String::from_utf8_lossy(&output.stderr);
    let refusal = "/interlock.v1.Agent/ListDeals serves party \"buyer\" only; the caller is party \"seller\"";
    assert!(!output.status.success() && stderr.contains(refusal), "{stderr}");
}

/// The deal's policy through the real processes: a rule broken at proposal is
/// refused to the proposer; a rule the notaries find broken (the daily limit)
/// aborts the deal and both parties are told which; a deal that times out
/// tells both parties and refunds, or is extended once and then refunds.
#[test]
fn policies_are_enforced_and_both_parties_are_told() {
    let dir = tempfile::tempdir().unwrap();
    let _sandbox = up(dir.path(), &["--manual-accept"]);
    let deal = |party: &str, args: &[&str]| deal_as(dir.path(), party, args);
    // Proposes as the buyer, accepts as the seller; returns the deal id.
    let agree = |extra: &[&str]| -> String {
        let mut args = vec!["propose", "--to", "seller", "--mode", "notary", "--json", "--payment", "25 USD@alpha"];
        args.extend(extra);
        let id = json(&deal("buyer", &args))["deal_id"].as_str().unwrap().to_owned();
        for _ in 0..100 {
            let accepted = deal("seller", &["accept", &id, "--json"]);
            if accepted.status.success() {
                return id;
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        panic!("the seller never received deal {id}");
    };
    // Polls both parties' views of `id` until both are `state`.
    let ended = |id: &str, state: &str| -> [serde_json::Value; 2] {
        let mut last = String::new();
        for _ in 0..300 {
            let outputs = ["buyer", "seller"].map(|party| deal(party, &["status", id, "--json"]));
            // A status call can fail while the machine is loaded: ask again, and
            // say what the last answer was if it never settles.
            if outputs.iter().all(|output| output.status.success()) {
                let views = outputs.map(|output| json(&output));
                if views.iter().all(|view| view["state"] == state) {
                    return views;
                }
                last = format!("{views:?}");
            } else {
                last = outputs.iter().map(|o| String::from_utf8_lossy(&o.stderr).into_owned()).collect();
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        panic!("deal {id} did not end {state} for both parties; last: {last}");
    };
    let steps = |view: &serde_json::Value| -> Vec<String> {
        view["steps"].as_array().unwrap().iter().map(|s| s["text"].as_str().unwrap().to_owned()).collect()
    };

    // Refused at proposal, with the rule named.
    let refused = deal(
        "buyer",
        &[
            "propose",
            "--to",
            "seller",
            "--allow-assets",
            "USD",
            "--payment",
            "25 USD@alpha",
            "--delivery",
            "10 GOLD@beta",
        ],
    );
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(!refused.status.success(), "{stderr}");
    assert!(stderr.contains("policy: asset GOLD is not in the deal's allow-list [USD]"), "{stderr}");

    // The daily limit: 25 USD fits into 40 a day; another 25 does not, and the
    // notaries abort with the rule, which both parties see.
    let limited = ["--delivery", "10 GOLD@beta", "--max-per-day", "40"];
    let first = agree(&limited);
    let [buyer, _] = ended(&first, "completed");
    assert!(buyer["policy"].as_str().unwrap().contains("max per party per day: 40"), "{buyer}");
    let second = agree(&limited);
    for view in ended(&second, "refunded") {
        let notice = view["notice"].as_str().unwrap();
        assert!(
            notice.starts_with("policy: the buyer would move 50 USD on UTC day ")
                && notice.ends_with("over the deal's maximum 40 per party per day (25 committed already)"),
            "{view}"
        );
    }

    // Timeouts: the seller cannot reserve (it holds 1,000,000 GOLD), so the
    // deadline passes undecided.
    let short = ["--delivery", "2000000 GOLD@beta", "--window", "3"];
    let refund = agree(&short);
    for view in ended(&refund, "refunded") {
        let notice = view["notice"].as_str().unwrap();
        assert!(notice.starts_with("timed out at ") && notice.ends_with("UTC; policy: refund"), "{view}");
    }
    let mut extend_args = short.to_vec();
    extend_args.extend(["--on-timeout", "extend:2s"]);
    let extend = agree(&extend_args);
    for view in ended(&extend, "refunded") {
        let told: Vec<String> = steps(&view).into_iter().filter(|s| s.starts_with("notice: timed out")).collect();
        assert_eq!(told.len(), 2, "{view}");
        assert!(told[0].contains("; policy: extended once by 2 s to "), "{told:?}");
        assert!(told[1].starts_with("notice: timed out again at ") && told[1].ends_with("policy: refund"), "{told:?}");
        assert!(view["policy"].as_str().unwrap().starts_with("on timeout: extend once by 2 s"), "{view}");
    }
    // The notaries followed the policy: their abort, and the buyer's payment
    // back, came only once the extended deadline passed, not at the first one.
    let buyer = json(&deal("buyer", &["status", &extend, "--json"]));
    let at = |prefix: &str| {
        let step = buyer["steps"].as_array().unwrap().iter().find(|s| s["text"].as_str().unwrap().starts_with(prefix));
        step.unwrap_or_else(|| panic!("no step {prefix}: {buyer}"))["at_ms"].as_u64().unwrap()
    };
    let (first_timeout, second_timeout) = (at("notice: timed out at"), at("notice: timed out again"));
    let (aborted, cancelled) = (at("the notaries' certificate is assembled"), at("payment cancelled"));
    assert!(first_timeout < second_timeout && second_timeout <= aborted && aborted <= cancelled, "{buyer}");
}
