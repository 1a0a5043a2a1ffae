//! Inspection periods through the real processes: a deal proposed with
//! `--inspect` completes with both legs held; undisputed, the gateways'
//! keepers release them when the window closes, though one gateway is
//! killed meanwhile; disputed by the buyer from the CLI (the seller may not),
//! it waits for the notaries' operators (one notary killed and restarted
//! still holds the dispute), whose reverse the keepers carry out on both
//! networks.

mod common;

use common::sandbox::{deal_as, interlock, json, up};
use interlock_core::DealId;
use interlock_proto::v1;
use interlock_proto::v1::gateway_client::GatewayClient;
use interlock_rpc::server::{lazy_channel, TlsFiles};
use std::path::Path;
use std::time::{Duration, Instant};

/// A reservation's state, as the gateway of its network reports it to the buyer.
async fn leg_state(dir: &Path, network: &str, deal_id: DealId, leg: interlock_core::LegKind) -> String {
    let directory = interlock_identity::SignedDirectory::load(&dir.join("sb/directory.json")).unwrap().directory;
    let gateway = directory.gateways.iter().find(|gateway| gateway.name == format!("{network}-gateway")).unwrap();
    let tls = TlsFiles::in_dir(&dir.join("sb/tls"), "buyer");
    let mut client = GatewayClient::new(lazy_channel(&gateway.endpoint, &tls).unwrap());
    let id = interlock_core::reservation_id(deal_id, leg);
    let request = v1::GetReservationRequest { reservation_id: id.0 .0.to_vec() };
    client.get_reservation(request).await.map(|r| r.into_inner().state).unwrap_or_else(|status| status.to_string())
}

/// Waits until both legs are in `state`, or fails after `within`.
async fn both_legs(dir: &Path, deal_id: DealId, state: &str, within: Duration) {
    let until = Instant::now() + within;
    loop {
        let payment = leg_state(dir, "alpha", deal_id, interlock_core::LegKind::Payment).await;
        let delivery = leg_state(dir, "beta", deal_id, interlock_core::LegKind::Delivery).await;
        if payment == state && delivery == state {
            return;
        }
        assert!(Instant::now() < until, "legs {payment} and {delivery}, waited for {state}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Waits until alpha's gateway has recorded the deal's payment leg held.
async fn recorded_held(dir: &Path, deal_id: DealId) {
    let directory = interlock_identity::SignedDirectory::load(&dir.join("sb/directory.json")).unwrap().directory;
    let gateway = directory.gateways.iter().find(|gateway| gateway.name == "alpha-gateway").unwrap();
    let tls = TlsFiles::in_dir(&dir.join("sb/tls"), "buyer");
    let mut client = GatewayClient::new(lazy_channel(&gateway.endpoint, &tls).unwrap());
    for _ in 0..100 {
        let request = v1::GetDealRequest { deal_id: deal_id.0 .0.to_vec() };
        let status = client.get_deal(request).await.unwrap().into_inner();
        if status.events.iter().any(|event| event.kind == "held") {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("alpha's gateway never recorded the payment leg held");
}

/// `sandbox kill NAME` (SIGKILL), then `sandbox start NAME`.
fn kill_and_restart(dir: &Path, name: &str) {
    let killed = interlock(&["sandbox", "kill", "--dir", "sb", name], dir);
    assert!(killed.status.success(), "{}", String::from_utf8_lossy(&killed.stderr));
    std::thread::sleep(Duration::from_millis(300));
    let started = interlock(&["sandbox", "start", "--dir", "sb", name], dir);
    assert!(started.status.success(), "{}", String::from_utf8_lossy(&started.stderr));
}

fn deal_id(hex: &str) -> DealId {
    DealId(interlock_core::Hash32::from_hex(hex).unwrap())
}

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
    recorded_held(dir.path(), deal_id(&released)).await;
    kill_and_restart(dir.path(), "alpha-gateway");
    both_legs(dir.path(), deal_id(&released), "executed", Duration::from_secs(60)).await;

    // Disputed by the buyer inside a long window; the seller may not dispute.
    let reversed = run("5m");
    both_legs(dir.path(), deal_id(&reversed), "held", Duration::from_secs(10)).await;
    let refused = deal("seller", &["dispute", &reversed, "--reason", "no"]);
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(!refused.status.success() && stderr.contains("lets the buyer dispute"), "{stderr}");
    let disputed = json(&deal("buyer", &["dispute", &reversed[..12], "--reason", "the gold is short", "--json"]));
    assert!(disputed["notice"].as_str().unwrap().starts_with("dispute recorded by 3 notaries"), "{disputed}");
    // A notary killed (SIGKILL) after it acknowledged the dispute still has it.
    kill_and_restart(dir.path(), "n1");

    // Two notaries' operators, each with its notary's own certificate, decide: reverse.
    let notary = |args: &[&str]| {
        let mut all = vec!["notary"];
        all.extend(args);
        all.extend(["--sandbox", "sb", "--json"]);
        interlock(&all, dir.path())
    };
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
    both_legs(dir.path(), deal_id(&reversed), "cancelled", Duration::from_secs(30)).await;
}
