//! Watching a sandbox deal with an inspection period from outside: its legs'
//! states as their gateways report them, and the role processes killed and
//! restarted while the legs are held.

use interlock_core::{DealId, LegKind};
use interlock_proto::v1;
use interlock_proto::v1::gateway_client::GatewayClient;
use interlock_rpc::server::{lazy_channel, TlsFiles};
use std::path::Path;
use std::time::{Duration, Instant};

use super::sandbox::interlock;

/// The buyer's client of `network`'s gateway, and the network's id.
fn gateway(dir: &Path, network: &str) -> (GatewayClient<tonic::transport::Channel>, u64) {
    let directory = interlock_identity::SignedDirectory::load(&dir.join("sb/directory.json")).unwrap().directory;
    let gateway = directory.gateways.iter().find(|gateway| gateway.name == format!("{network}-gateway")).unwrap();
    let tls = TlsFiles::in_dir(&dir.join("sb/tls"), "buyer");
    (GatewayClient::new(lazy_channel(&gateway.endpoint, &tls).unwrap()), gateway.network.0)
}

/// A reservation's state, as the gateway of its network reports it to the
/// buyer: read from the ledger node it fronts, or, on a chain it only follows
/// (which it does not read for others), the last escrow event it recorded there.
pub async fn leg_state(dir: &Path, network: &str, deal_id: DealId, leg: LegKind) -> String {
    let (mut client, network_id) = gateway(dir, network);
    let id = interlock_core::reservation_id(deal_id, leg);
    let request = v1::GetReservationRequest { reservation_id: id.0 .0.to_vec() };
    match client.get_reservation(request).await {
        Ok(answer) => answer.into_inner().state,
        Err(status) if status.code() == tonic::Code::FailedPrecondition => {
            let request = v1::GetDealRequest { deal_id: deal_id.0 .0.to_vec() };
            let Ok(answer) = client.get_deal(request).await else { return status.to_string() };
            let mut recorded = answer.into_inner().events.into_iter().filter(|event| {
                event.network == network_id
                    && ["reserved", "held", "executed", "cancelled"].contains(&event.kind.as_str())
            });
            recorded.next_back().map_or_else(|| "not recorded".to_owned(), |event| event.kind)
        }
        Err(status) => status.to_string(),
    }
}

/// Waits until both legs (the payment on `networks[0]`, the delivery on
/// `networks[1]`) are in `state`, or fails after `within`.
pub async fn both_legs(dir: &Path, networks: [&str; 2], deal_id: DealId, state: &str, within: Duration) {
    let until = Instant::now() + within;
    loop {
        let payment = leg_state(dir, networks[0], deal_id, LegKind::Payment).await;
        let delivery = leg_state(dir, networks[1], deal_id, LegKind::Delivery).await;
        if payment == state && delivery == state {
            return;
        }
        assert!(Instant::now() < until, "legs {payment} and {delivery}, waited for {state}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Waits until `network`'s gateway has recorded a leg of the deal held.
pub async fn recorded_held(dir: &Path, network: &str, deal_id: DealId) {
    let (mut client, _) = gateway(dir, network);
    for _ in 0..200 {
        let request = v1::GetDealRequest { deal_id: deal_id.0 .0.to_vec() };
        let status = client.get_deal(request).await.unwrap().into_inner();
        if status.events.iter().any(|event| event.kind == "held") {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{network}'s gateway never recorded the deal's leg held");
}

/// Waits until `network`'s gateway has recorded an event of `kind` for the
/// deal, and returns its text.
pub async fn recorded(dir: &Path, network: &str, deal_id: DealId, kind: &str, within: Duration) -> String {
    let (mut client, _) = gateway(dir, network);
    let until = Instant::now() + within;
    loop {
        let request = v1::GetDealRequest { deal_id: deal_id.0 .0.to_vec() };
        let status = client.get_deal(request).await.unwrap().into_inner();
        if let Some(event) = status.events.into_iter().find(|event| event.kind == kind) {
            return event.text;
        }
        assert!(Instant::now() < until, "{network}'s gateway never recorded the deal {kind}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The observer's JSON for the deal (`GET /api/deals/ID` on its web address).
pub fn observer_deal(dir: &Path, deal_id: DealId) -> serde_json::Value {
    use std::io::{Read, Write};
    let address = super::sandbox::observer_web_address(dir);
    let mut stream = std::net::TcpStream::connect(&address).unwrap();
    let request = format!("GET /api/deals/{} HTTP/1.0\r\nHost: {address}\r\n\r\n", deal_id.0.to_hex());
    stream.write_all(request.as_bytes()).unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let (head, body) = response.split_once("\r\n\r\n").unwrap();
    assert!(head.starts_with("HTTP/1.1 200") || head.starts_with("HTTP/1.0 200"), "{head}\n{body}");
    serde_json::from_str(body).unwrap()
}

/// `sandbox kill NAME` (SIGKILL), then `sandbox start NAME`.
pub fn kill_and_restart(dir: &Path, name: &str) {
    let killed = interlock(&["sandbox", "kill", "--dir", "sb", name], dir);
    assert!(killed.status.success(), "{}", String::from_utf8_lossy(&killed.stderr));
    std::thread::sleep(Duration::from_millis(300));
    let started = interlock(&["sandbox", "start", "--dir", "sb", name], dir);
    assert!(started.status.success(), "{}", String::from_utf8_lossy(&started.stderr));
}

pub fn deal_id(hex: &str) -> DealId {
    DealId(interlock_core::Hash32::from_hex(hex).unwrap())
}

/// `interlock notary ARGS... --sandbox sb --json`, run by a notary's operator.
pub fn notary(dir: &Path, args: &[&str]) -> std::process::Output {
    let mut all = vec!["notary"];
    all.extend(args);
    all.extend(["--sandbox", "sb", "--json"]);
    interlock(&all, dir)
}

/// Waits until `party`'s agent shows the deal in `state`; its view then.
pub async fn ended_as(dir: &Path, party: &str, deal: &str, state: &str) -> serde_json::Value {
    let mut view = serde_json::Value::Null;
    for _ in 0..100 {
        view = super::sandbox::json(&super::sandbox::deal_as(dir, party, &["status", deal, "--json"]));
        if view["state"] == state {
            return view;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{party}'s agent never showed the deal {state}: {view}");
}
