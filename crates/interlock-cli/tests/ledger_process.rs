//! The ledger node as a real process: identity from the CLI, mutual TLS, and
//! nothing committed lost when the process is killed with SIGKILL.

mod common;

use common::{identities, start_node};
use interlock_core::crypto::PartyKey;
use interlock_core::encoding::Encode;
use interlock_core::NetworkId;
use interlock_ledger::{Op, Transaction};
use interlock_proto::v1;
use interlock_proto::v1::ledger_node_client::LedgerNodeClient;
use std::path::Path;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Identity};

async fn client(dir: &Path, address: &str) -> LedgerNodeClient<Channel> {
    let read = |name: &str| std::fs::read(dir.join("tls").join(name)).unwrap();
    let tls = ClientTlsConfig::new()
        .domain_name("localhost")
        .ca_certificate(Certificate::from_pem(read("ca.pem")))
        .identity(Identity::from_pem(read("alpha-gateway.pem"), read("alpha-gateway.key")));
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
    identities(dir);
    let mode =
        std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(dir.join("tls/buyer.key")).unwrap().permissions());
    assert_eq!(mode & 0o777, 0o600, "private keys are written with mode 0600");
    let party = common::buyer();

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
