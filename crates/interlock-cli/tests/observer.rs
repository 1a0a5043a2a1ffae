//! The sandbox's observer: it records every deal the sandbox runs in a chain
//! that `observer verify` accepts, serves it over gRPC (mutual TLS) and as
//! JSON for its page, resumes after a SIGKILL with no record lost or doubled,
//! and `verify` names the one record someone changed in its SQLite file.

mod common;

use common::sandbox::{interlock, json, observer_web_address as web_address, ok, process, propose_to_seller, Sandbox};

use interlock_proto::v1;
use interlock_proto::v1::observer_client::ObserverClient;
use interlock_rpc::server::{lazy_channel, TlsFiles};
use std::io::{Read as _, Write as _};
use std::path::Path;
use std::time::Duration;

/// A plain HTTP/1.1 GET: the status code and the body.
fn http_get(address: &str, path: &str) -> (u16, String) {
    let mut stream = std::net::TcpStream::connect(address).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(stream, "GET {path} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n").unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let (head, body) = response.split_once("\r\n\r\n").unwrap();
    let code = head.split_whitespace().nth(1).unwrap().parse().unwrap();
    (code, body.to_owned())
}

fn client(dir: &Path) -> ObserverClient<tonic::transport::Channel> {
    client_as(dir, "buyer")
}

/// A client with the sandbox's certificate of `name`.
fn client_as(dir: &Path, name: &str) -> ObserverClient<tonic::transport::Channel> {
    let tls = TlsFiles::in_dir(&dir.join("sb/tls"), name);
    let address = process(dir, "observer")["address"].as_str().unwrap().to_owned();
    ObserverClient::new(lazy_channel(&address, &tls).unwrap())
}

/// The observer's deals once `count` of them have ended and stayed quiet
/// (the events that trail a deal's end recorded too).
async fn ended_deals(
    client: &mut ObserverClient<tonic::transport::Channel>,
    count: usize,
) -> Vec<v1::ObservedDealSummary> {
    let mut last_records = None;
    for _ in 0..300 {
        if let Ok(list) = client.list_deals(v1::ObservedDealsRequest { status: "completed".into(), limit: 0 }).await {
            let deals = list.into_inner().deals;
            let records: u64 = deals.iter().map(|d| d.records).sum();
            if deals.len() == count && last_records == Some(records) {
                return deals;
            }
            last_records = (deals.len() == count).then_some(records);
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    panic!("the observer did not record {count} completed deals");
}

fn verify(dir: &Path) -> (bool, serde_json::Value) {
    let output = interlock(&["observer", "verify", "--data", "sb/observer", "--json"], dir);
    (output.status.success(), serde_json::from_slice(&output.stdout).unwrap())
}

#[test]
fn the_observer_records_verifies_serves_and_resumes_after_a_kill() {
    let dir = tempfile::tempdir().unwrap();
    let up = interlock(&["sandbox", "up", "--dir", "sb"], dir.path());
    ok(&up);
    let _sandbox = Sandbox(dir.path().to_owned());
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let _context = runtime.enter();
    let mut client = client(dir.path());

    for mode in ["notary", "hashlock"] {
        let deal = json(&interlock(&["sandbox", "deal", "--dir", "sb", "--mode", mode, "--json"], dir.path()));
        assert_eq!(deal["outcome"], "completed", "{deal}");
    }
    let deals = runtime.block_on(ended_deals(&mut client, 2));
    let (intact, report) = verify(dir.path());
    assert!(intact, "{report}");
    let records_before = report["records"].as_u64().unwrap();
    assert_eq!(records_before, deals.iter().map(|d| d.records).sum::<u64>(), "{report}");

    // Every step of each deal, on both networks, in one chain.
    for deal in &deals {
        let full = runtime.block_on(client.get_deal(v1::ObservedDealRequest { deal_id: deal.deal_id.clone() }));
        let full = full.unwrap().into_inner();
        let kinds: Vec<(String, u64)> = full.records.iter().map(|r| (r.kind.clone(), r.network)).collect();
        for expected in
            [("proposed", 1), ("registered", 2), ("reserved", 1), ("reserved", 2), ("executed", 1), ("executed", 2)]
        {
            assert!(kinds.contains(&(expected.0.to_owned(), expected.1)), "{expected:?} missing from {kinds:?}");
        }
        // The observer derives the end once (network 0), whatever the gateways report.
        assert_eq!(kinds.iter().filter(|(kind, network)| kind == "completed" && *network == 0).count(), 1, "{kinds:?}");
        let decided = kinds.iter().any(|(kind, _)| kind == "decided");
        assert_eq!(decided, full.summary.as_ref().unwrap().mode == "notary", "{kinds:?}");
        assert!(full.records.windows(2).all(|w| w[0].seq < w[1].seq), "records in log order");
        assert!(full.records.iter().all(|r| r.signature.len() == 64 && r.hash.len() == 32));
    }
    // A caller sees only the deals it is part of: a notary the notary-mode
    // deal, not the hashlock one (which reads as absent); a ledger node none.
    let all = || v1::ObservedDealsRequest { status: String::new(), limit: 0 };
    let mut notary = client_as(dir.path(), "n1");
    let seen = runtime.block_on(notary.list_deals(all())).unwrap().into_inner().deals;
    assert_eq!(seen.iter().map(|d| d.mode.as_str()).collect::<Vec<_>>(), ["notary"], "{seen:?}");
    let hashlock = deals.iter().find(|d| d.mode == "hashlock").unwrap().deal_id.clone();
    let hidden = runtime.block_on(notary.get_deal(v1::ObservedDealRequest { deal_id: hashlock })).unwrap_err();
    assert_eq!(hidden.code(), tonic::Code::NotFound, "{}", hidden.message());
    let mut ledger = client_as(dir.path(), "alpha-ledger");
    let refused = runtime.block_on(ledger.list_deals(all())).unwrap_err();
    assert_eq!(refused.code(), tonic::Code::PermissionDenied, "{}", refused.message());

    let refunded =
        runtime.block_on(client.list_deals(v1::ObservedDealsRequest { status: "refunded".into(), limit: 0 }));
    assert!(refunded.unwrap().into_inner().deals.is_empty());

    // A proposal names observers and dependents by their directory names; an
    // unknown name is refused with the names the directory has.
    for (flag, what) in [("--observer", "observer"), ("--dependent", "dependent")] {
        let propose = [
            "deal",
            "--sandbox",
            "sb",
            "--as",
            "buyer",
            "propose",
            "--to",
            "seller",
            "--payment",
            "25 USD@alpha",
            "--delivery",
            "10 GOLD@beta",
            flag,
            "nobody",
        ];
        let refused = interlock(&propose, dir.path());
        let message = String::from_utf8_lossy(&refused.stderr);
        assert!(!refused.status.success(), "{message}");
        assert!(message.contains(&format!("no {what} \"nobody\" in the directory; it lists")), "{message}");
    }

    // What a caller gets wrong is refused with the right status.
    let bad_status = runtime.block_on(client.list_deals(v1::ObservedDealsRequest { status: "done".into(), limit: 0 }));
    let bad_status = bad_status.unwrap_err();
    assert_eq!(bad_status.code(), tonic::Code::InvalidArgument);
    assert!(bad_status.message().contains("expected one of"), "{}", bad_status.message());
    let short = runtime.block_on(client.get_deal(v1::ObservedDealRequest { deal_id: vec![1, 2, 3] })).unwrap_err();
    assert_eq!(short.code(), tonic::Code::InvalidArgument, "{}", short.message());
    let unknown = runtime.block_on(client.get_deal(v1::ObservedDealRequest { deal_id: vec![7; 32] })).unwrap_err();
    assert_eq!(unknown.code(), tonic::Code::NotFound, "{}", unknown.message());

    // The page's JSON, and its refusals.
    let web = web_address(dir.path());
    let id = interlock_core::hash::to_hex(&deals[0].deal_id);
    let (code, body) = http_get(&web, &format!("/api/deals/{id}"));
    assert_eq!(code, 200, "{body}");
    let page: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(page["status"], "completed");
    assert_eq!(page["deadlines"].as_array().unwrap().len(), 2, "{page}");
    assert_eq!(http_get(&web, "/api/deals/not-hex").0, 400);
    assert_eq!(http_get(&web, &format!("/api/deals/{}", "ab".repeat(32))).0, 404);
    assert_eq!(http_get(&web, "/api/deals?status=nonsense").0, 400);
    let (code, list) = http_get(&web, "/api/deals");
    assert_eq!(code, 200);
    assert_eq!(serde_json::from_str::<serde_json::Value>(&list).unwrap()["deals"].as_array().unwrap().len(), 2);

    // Killed, it misses a whole deal; restarted, it records that deal from
    // the gateways and nothing of the earlier ones twice.
    ok(&interlock(&["sandbox", "kill", "--dir", "sb", "observer"], dir.path()));
    let deal = json(&interlock(&["sandbox", "deal", "--dir", "sb", "--mode", "notary", "--json"], dir.path()));
    assert_eq!(deal["outcome"], "completed", "{deal}");
    ok(&interlock(&["sandbox", "start", "--dir", "sb", "observer"], dir.path()));
    let mut client = self::client(dir.path());
    let after = runtime.block_on(ended_deals(&mut client, 3));
    for deal in &deals {
        let again = after.iter().find(|d| d.deal_id == deal.deal_id).unwrap();
        assert_eq!(again.records, deal.records, "deal {} gained records after the restart", again.status);
    }
    let (intact, report) = verify(dir.path());
    assert!(intact, "{report}");
    assert_eq!(report["records"].as_u64().unwrap(), after.iter().map(|d| d.records).sum::<u64>(), "{report}");
    assert!(report["records"].as_u64().unwrap() > records_before);

    // A deal proposed from the command line carries the observer and a
    // dependent, by directory name, into its signed terms.
    let view = propose_to_seller(
        dir.path(),
        &["--payment", "25 USD@alpha", "--delivery", "10 GOLD@beta", "--observer", "observer", "--dependent", "seller"],
    );
    let deal_id = interlock_core::hash::from_hex(view["deal_id"].as_str().unwrap()).unwrap();
    runtime.block_on(ended_deals(&mut client, 4));
    let full = runtime.block_on(client.get_deal(v1::ObservedDealRequest { deal_id })).unwrap().into_inner();
    let terms = interlock_core::encoding::decode_terms(&full.terms_encoded).unwrap();
    let directory: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("sb/directory.json")).unwrap()).unwrap();
    let listed = |list: &str, name: &str| {
        let text = directory.to_string();
        let entries = directory["directory"][list].as_array().unwrap_or_else(|| panic!("no {list} in {text}"));
        let entry = entries.iter().find(|e| e["name"] == name).unwrap();
        interlock_core::hash::to_hex(&interlock_core::hash::from_hex(entry["key"].as_str().unwrap()).unwrap())
    };
    let hex =
        |keys: &[interlock_core::PartyId]| keys.iter().map(|k| interlock_core::hash::to_hex(&k.0)).collect::<Vec<_>>();
    assert_eq!(hex(&terms.observers), [listed("observers", "observer")]);
    assert_eq!(hex(&terms.dependents), [listed("parties", "seller")]);

    // No gateway event recorded twice: each (gateway network, gateway seq) once.
    ok(&interlock(&["sandbox", "down", "--dir", "sb"], dir.path()));
    let path = dir.path().join("sb/observer/observer.sqlite");
    let connection = rusqlite::Connection::open(&path).unwrap();
    let sources: Vec<(i64, i64)> = connection
        .prepare("SELECT json_extract(body, '$.gateway_network'), json_extract(body, '$.gateway_seq') FROM records WHERE json_extract(body, '$.gateway_seq') IS NOT NULL")
        .unwrap()
        .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let unique: std::collections::HashSet<_> = sources.iter().collect();
    assert_eq!(unique.len(), sources.len(), "a gateway event recorded twice");

    // Changing one stored record breaks the chain at exactly that record.
    let (seq, deal_id): (i64, Vec<u8>) = connection
        .query_row("SELECT seq, deal_id FROM records WHERE kind = 'executed' ORDER BY seq LIMIT 1", [], |row| {
            Ok((row.get(0)?, row.get(1)?))
        })
        .unwrap();
    connection.execute("UPDATE records SET body = body || ' ' WHERE seq = ?1", [seq]).unwrap();
    drop(connection);
    let (intact, report) = verify(dir.path());
    assert!(!intact, "{report}");
    assert_eq!(report["broken"]["seq"].as_i64(), Some(seq), "{report}");
    assert_eq!(report["broken"]["deal_id"], interlock_core::hash::to_hex(&deal_id), "{report}");
    assert!(report["broken"]["problem"].as_str().unwrap().contains("does not match its contents"), "{report}");
    let text = interlock(&["observer", "verify", "--data", "sb/observer"], dir.path());
    assert_eq!(text.status.code(), Some(1));
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(
        text.contains(&format!("record {seq} (deal {}) is broken", interlock_core::hash::to_hex(&deal_id))),
        "{text}"
    );
}
