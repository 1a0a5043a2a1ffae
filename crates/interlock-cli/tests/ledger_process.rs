//! The ledger node as a real process: identity from the CLI, mutual TLS, and
//! nothing committed lost when the process is killed with SIGKILL.

use interlock_core::crypto::PartyKey;
use interlock_core::encoding::Encode;
use interlock_core::NetworkId;
use interlock_ledger::{Op, Transaction};
use interlock_proto::v1;
use interlock_proto::v1::ledger_node_client::LedgerNodeClient;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Identity};

fn interlock(args: &[&str], dir: &Path) {
    let output = Command::new(env!("CARGO_BIN_EXE_interlock")).args(args).current_dir(dir).output().unwrap();
    assert!(output.status.success(), "interlock {args:?}: {}", String::from_utf8_lossy(&output.stderr));
}

/// Starts the node and returns it with the address it printed.
fn start_node(dir: &Path) -> (Child, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_interlock"))
        .args(["ledger", "--data", "data", "--network", "1", "--listen", "127.0.0.1:0"])
        .args(["--tls-dir", "tls", "--name", "alpha-ledger", "--directory", "directory.json"])
        .current_dir(dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let address = line
        .strip_prefix("listening on ")
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
        .to_string();
    (child, address)
}

async fn client(dir: &Path, address: &str) -> LedgerNodeClient<Channel> {
    let read = |name: &str| std::fs::read(dir.join("tls").join(name)).unwrap();
    let tls = ClientTlsConfig::new()
        .domain_name("localhost")
        .ca_certificate(Certificate::from_pem(read("ca.pem")))
        .identity(Identity::from_pem(read("buyer.pem"), read("buyer.key")));
    let port = address.rsplit(':').next().unwrap();
    let channel = Channel::from_shared(format!("https://localhost:{port}"))
        .unwrap()
        .tls_config(tls)
        .unwrap()
        .connect()
        .await
        .unwrap();
    LedgerNodeClient::new(channel)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_ledger_node_restarts_with_everything_it_committed() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    interlock(&["ca", "init", "--dir", "tls"], dir);
    interlock(&["ca", "issue", "--dir", "tls", "--role", "ledger", "--name", "alpha-ledger"], dir);
    interlock(&["ca", "issue", "--dir", "tls", "--role", "party", "--name", "buyer"], dir);
    let mode =
        std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(dir.join("tls/buyer.key")).unwrap().permissions());
    assert_eq!(mode & 0o777, 0o600, "private keys are written with mode 0600");
    let party = PartyKey::from_seed([2; 32]);
    let directory = serde_json::json!({
        "networks": [{"id": 1, "name": "alpha", "kind": "embedded"}],
        "gateways": [],
        "ledgers": [{"name": "alpha-ledger", "network": 1, "endpoint": "127.0.0.1:7101"}],
        "parties": [{"name": "buyer", "key": interlock_core::hash::to_hex(&party.public().0), "accounts": {}}],
        "notaries": [],
        "observers": [],
    });
    std::fs::write(dir.join("plain.json"), directory.to_string()).unwrap();
    interlock(&["directory", "sign", "--ca", "tls", "--input", "plain.json", "--output", "directory.json"], dir);

    let (mut node, address) = start_node(dir);
    let mut ledger = client(dir, &address).await;
    let seed = std::fs::read_to_string(dir.join("data/operator.key")).unwrap();
    let operator = PartyKey::from_seed(interlock_core::hash::from_hex(seed.trim()).unwrap().try_into().unwrap());
    let register = Transaction::sign(&operator, NetworkId(1), 1, Op::Register { account: party.public() });
    let request = v1::SubmitTransactionRequest { transaction_encoded: register.to_bytes(), wait: true };
    let height = ledger.submit_transaction(request.clone()).await.unwrap().into_inner().height;
    assert!(height >= 1);

    node.kill().unwrap(); // SIGKILL: no chance to flush anything
    node.wait().unwrap();

    let (mut node, address) = start_node(dir);
    let mut ledger = client(dir, &address).await;
    let tip = ledger.get_tip(v1::GetTipRequest {}).await.unwrap().into_inner();
    assert!(tip.height >= height, "tip {} lost committed height {height}", tip.height);
    let account = ledger.get_account(v1::GetAccountRequest { account: party.public().0.to_vec() }).await.unwrap();
    assert!(account.into_inner().registered);
    let replay = ledger.submit_transaction(request).await.expect_err("a replay is refused");
    assert_eq!(replay.code(), tonic::Code::AlreadyExists, "{}", replay.message());
    node.kill().unwrap();
    node.wait().unwrap();
}
