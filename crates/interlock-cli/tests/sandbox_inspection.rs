//! Inspection periods through the real processes: a deal proposed with
//! `--inspect` completes with both legs held; undisputed, the gateways'
//! keepers release them when the window closes, though one gateway is
//! killed meanwhile; disputed by the buyer from the CLI (the seller may not),
//! it waits for the notaries' operators (one notary killed and restarted
//! still holds the dispute), whose reverse the keepers carry out on both
//! networks.

mod common;

use common::inspection::{
    both_legs, deal_id, ended_as, kill_and_restart, notary, observer_deal, recorded, recorded_held,
};
use common::sandbox::{deal_as, interlock, json, ok, up};
use std::time::Duration;

/// The payment's network, then the delivery's.
const LEGS: [&str; 2] = ["alpha", "beta"];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn held_deals_are_released_by_the_keepers_or_reversed_after_a_dispute() {
    let dir = tempfile::tempdir().unwrap();
    let _sandbox = up(dir.path(), &["--manual-accept"]);
    let deal = |party: &str, args: &[&str]| deal_as(dir.path(), party, args);
    // Proposes, has the seller accept, and watches the deal to its end.
    let run = |inspect: &str| {
        let propose = [
            "propose",
            "--to",
            "seller",
            "--mode",
            "notary",
            "--window",
            "30",
            "--inspect",
            inspect,
            "--json",
            "--payment",
            "25 USD@alpha",
            "--delivery",
            "10 GOLD@beta",
            "--observer",
            "observer",
        ];
        let proposed = json(&deal("buyer", &propose));
        let id = proposed["deal_id"].as_str().unwrap().to_owned();
        assert!(proposed["policy"].as_str().unwrap().contains("inspection for"), "{proposed}");
        let mut accepted = serde_json::Value::Null;
        for _ in 0..100 {
            let answer = deal("seller", &["accept", &id, "--json"]);
            if answer.status.success() {
                accepted = json(&answer);
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        assert_eq!(accepted["state"], "running", "{accepted}");
        let watched = deal("buyer", &["watch", &id, "--json"]);
        assert!(watched.status.success(), "{}", String::from_utf8_lossy(&watched.stderr));
        id
    };

    // Undisputed: both legs held, then released by the keepers once the window closes.
    let released = run("2s");
    let status = json(&deal("buyer", &["status", &released, "--json"]));
    assert!(status["inspection_ends_ms"].as_u64().unwrap() > 0 && status["disputer"] == "the buyer", "{status}");
    let text = String::from_utf8_lossy(&deal("buyer", &["status", &released]).stdout).into_owned();
    assert!(text.contains("inspect   window closes"), "{text}");
    // The payment network's gateway is killed (SIGKILL) while the legs are
    // held, once it has recorded its leg held (and read on past it):
    // restarted, its keeper finds the leg again in its record.
    recorded_held(dir.path(), "alpha", deal_id(&released)).await;
    kill_and_restart(dir.path(), "alpha-gateway");
    both_legs(dir.path(), LEGS, deal_id(&released), "executed", Duration::from_secs(60)).await;
    // Each party's agent shows the verdict, for both legs.
    for party in ["buyer", "seller"] {
        let view = ended_as(dir.path(), party, &released, "released").await;
        let steps = view["steps"].to_string();
        assert!(steps.contains("released: the payment leg") && steps.contains("released: the delivery leg"), "{view}");
    }

    // Disputed by the buyer inside a long window; the seller may not dispute.
    let reversed = run("5m");
    both_legs(dir.path(), LEGS, deal_id(&reversed), "held", Duration::from_secs(10)).await;
    let refused = deal("seller", &["dispute", &reversed, "--reason", "no"]);
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(!refused.status.success() && stderr.contains("lets the buyer dispute"), "{stderr}");
    // With two of the three notaries down, the one that records a dispute
    // cannot stop the other two signing a release: the agent says so, and
    // the same dispute once they are back reaches all three.
    let sandbox = |verb: &str, name: &str| ok(&interlock(&["sandbox", verb, "--dir", "sb", name], dir.path()));
    for name in ["n2", "n3"] {
        sandbox("kill", name);
    }
    let partial = deal("buyer", &["dispute", &reversed, "--reason", "the gold is short"]);
    let stderr = String::from_utf8_lossy(&partial.stderr);
    let says = "was recorded by 1 of its notaries, and 2 must record it";
    assert!(!partial.status.success() && stderr.contains(says), "{stderr}");
    for name in ["n2", "n3"] {
        sandbox("start", name);
    }
    let disputed = json(&deal("buyer", &["dispute", &reversed[..12], "--reason", "the gold is short", "--json"]));
    assert!(disputed["notice"].as_str().unwrap().starts_with("dispute recorded by 3 notaries"), "{disputed}");
    // The dispute reaches the parties' watches and the subscribers' webhooks
    // as the deal's `disputed` event, on both gateways.
    for network in LEGS {
        let text = recorded(dir.path(), network, deal_id(&reversed), "disputed", Duration::from_secs(10)).await;
        assert!(text.contains("the gold is short"), "{text}");
    }
    // The observer's page has the window, its close among the deadlines, and
    // the dispute.
    let mut observed = serde_json::Value::Null;
    for _ in 0..100 {
        observed = observer_deal(dir.path(), deal_id(&reversed));
        if observed["records"].as_array().unwrap().iter().any(|record| record["kind"] == "disputed") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let inspection = &observed["inspection"];
    assert_eq!((inspection["disputer"].as_str(), inspection["window_ms"].as_u64()), (Some("the buyer"), Some(300_000)));
    let closes = observed["deadlines"].as_array().unwrap().iter().find(|d| d["label"] == "inspection window closes");
    assert_eq!(closes.map(|d| d["at_ms"].clone()), Some(inspection["ends_ms"].clone()), "{observed}");
    assert!(observed["records"].as_array().unwrap().iter().any(|record| record["kind"] == "disputed"), "{observed}");
    // A notary killed (SIGKILL) after it acknowledged the dispute still has it.
    kill_and_restart(dir.path(), "n1");

    // Two notaries' operators, each with its notary's own certificate, decide: reverse.
    let notary = |args: &[&str]| notary(dir.path(), args);
    let seen = json(&notary(&["inspection", &reversed, "--name", "n1"]));
    assert_eq!(
        (seen["state"].as_str(), seen["reason"].as_str()),
        (Some("disputed"), Some("the gold is short")),
        "{seen}"
    );
    for name in ["n1", "n2"] {
        let decided = json(&notary(&["decide", &reversed, "--decision", "reverse", "--name", name]));
        assert_eq!(decided["state"], "reverse", "{decided}");
    }
    let again = notary(&["decide", &reversed, "--decision", "release", "--name", "n1"]);
    let stderr = String::from_utf8_lossy(&again.stderr);
    assert!(!again.status.success() && stderr.contains("already reverse"), "{stderr}");
    both_legs(dir.path(), LEGS, deal_id(&reversed), "cancelled", Duration::from_secs(30)).await;
    for party in ["buyer", "seller"] {
        let view = ended_as(dir.path(), party, &reversed, "reversed").await;
        assert_eq!((view["own_leg"].as_str(), view["counter_leg"].as_str()), (Some("returned"), Some("returned")));
    }
}
