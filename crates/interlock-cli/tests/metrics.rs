//! `--metrics`: a running ledger node serves Prometheus metrics over HTTP, and
//! its counters move when it commits a transaction.

mod common;

use common::identities;
use interlock_core::crypto::PartyKey;
use interlock_core::encoding::Encode;
use interlock_core::NetworkId;
use interlock_ledger::{Op, Transaction};
use interlock_proto::v1;
use interlock_proto::v1::ledger_node_client::LedgerNodeClient;
use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Command, Stdio};
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Identity};

/// `GET /metrics` over a plain TCP connection: the body.
fn scrape(address: &str) -> String {
    let mut stream = std::net::TcpStream::connect(address).unwrap();
    write!(stream, "GET /metrics HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n").unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let (head, body) = response.split_once("\r\n\r\n").unwrap();
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(head.to_ascii_lowercase().contains("content-type: text/plain"), "{head}");
    body.to_owned()
}

/// The value of the sample named exactly `series` (name and labels), if present.
fn sample(body: &str, series: &str) -> Option<f64> {
    body.lines().find_map(|line| line.strip_prefix(series)?.strip_prefix(' ')?.trim().parse().ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ledger_node_serves_metrics_and_its_counters_move() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    identities(dir);
    let mut node = Command::new(env!("CARGO_BIN_EXE_interlock"))
        .args(["ledger", "--data", "data", "--network", "1", "--listen", "127.0.0.1:0", "--metrics", "127.0.0.1:0"])
        .args(["--tls-dir", "tls", "--name", "alpha-ledger", "--directory", "directory.json"])
        .current_dir(dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = BufReader::new(node.stderr.take().unwrap());
    let mut line = String::new();
    stderr.read_line(&mut line).unwrap();
    let metrics = line.strip_prefix("metrics on ").unwrap_or_else(|| panic!("unexpected {line:?}")).trim().to_owned();
    std::thread::spawn(move || std::io::copy(&mut stderr, &mut std::io::sink()));
    let mut line = String::new();
    BufReader::new(node.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let port =
        line.strip_prefix("listening on ").unwrap().split_whitespace().next().unwrap().rsplit(':').next().unwrap();

    let included = r#"interlock_deal_events_total{role="ledger",event="transaction_included"}"#;
    let before = scrape(&metrics);
    assert_eq!(sample(&before, included), None, "nothing included yet:\n{before}");
    assert_eq!(sample(&before, "interlock_webhook_retries_total"), Some(0.0), "registered:\n{before}");

    let read = |name: &str| std::fs::read(dir.join("tls").join(name)).unwrap();
    let tls = ClientTlsConfig::new()
        .domain_name("localhost")
        .ca_certificate(Certificate::from_pem(read("ca.pem")))
        .identity(Identity::from_pem(read("alpha-gateway.pem"), read("alpha-gateway.key")));
    let channel = Channel::from_shared(format!("https://localhost:{port}")).unwrap().tls_config(tls).unwrap();
    let mut ledger = LedgerNodeClient::new(channel.connect().await.unwrap());
    let seed = std::fs::read_to_string(dir.join("data/operator.key")).unwrap();
    let operator = PartyKey::from_seed(interlock_core::hash::from_hex(seed.trim()).unwrap().try_into().unwrap());
    let register = Transaction::sign(&operator, NetworkId(1), 1, Op::Register { account: common::buyer().public() });
    let request = v1::SubmitTransactionRequest { transaction_encoded: register.to_bytes(), wait: true };
    ledger.submit_transaction(request).await.unwrap();

    let after = scrape(&metrics);
    assert_eq!(sample(&after, included), Some(1.0), "{after}");
    assert!(after.contains(r#"interlock_queue_depth{role="ledger",queue="mempool"}"#), "{after}");
    let sealed = sample(&after, r#"interlock_step_latency_seconds_count{role="ledger",step="seal_block"}"#);
    assert!(sealed >= Some(1.0), "{after}");
    node.kill().unwrap();
    node.wait().unwrap();
}
