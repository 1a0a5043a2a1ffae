//! Roles started from hand-written config files and nothing else: a ledger
//! node, and a gateway whose file points it at that node although the signed
//! directory names another endpoint. The files live in their own directory
//! and name their paths relative to it; the processes start elsewhere.

mod common;

use common::{buyer, gateway};
use interlock_core::crypto::PartyKey;
use interlock_core::encoding::Encode;
use interlock_core::NetworkId;
use interlock_ledger::{Op, Transaction};
use interlock_proto::v1;
use std::path::Path;
use std::process::{Child, Command};
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Identity};

/// Where the directory says alpha's node is: nothing listens there.
const DIRECTORY_NODE: &str = "127.0.0.1:1";

fn interlock(args: &[&str], dir: &Path) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_interlock")).args(args).current_dir(dir).output().unwrap()
}

fn ok(args: &[&str], dir: &Path) -> String {
    let output = interlock(args, dir);
    assert!(output.status.success(), "interlock {args:?}: {}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// `tls/` with a CA and the node's, the gateway's and the buyer's
/// certificates, and `directory.json` listing alpha's node at [`DIRECTORY_NODE`].
fn identities(dir: &Path) {
    ok(&["ca", "init", "--dir", "tls"], dir);
    for (role, name) in [("ledger", "alpha-ledger"), ("gateway", "alpha-gateway"), ("party", "buyer")] {
        ok(&["ca", "issue", "--dir", "tls", "--role", role, "--name", name], dir);
    }
    let hex = |key: &PartyKey| interlock_core::hash::to_hex(&key.public().0);
    let directory = serde_json::json!({
        "networks": [{"id": 1, "name": "alpha", "platform": "ledger", "config": {"node": DIRECTORY_NODE}}],
        "gateways": [{"name": "alpha-gateway", "network": 1, "endpoint": "127.0.0.1:7102", "key": hex(&gateway())}],
        "ledgers": [{"name": "alpha-ledger", "network": 1, "endpoint": DIRECTORY_NODE}],
        "parties": [{"name": "buyer", "key": hex(&buyer()), "accounts": {}}],
        "notaries": [],
        "observers": [],
    });
    std::fs::write(dir.join("plain.json"), directory.to_string()).unwrap();
    ok(&["directory", "sign", "--ca", "tls", "--input", "plain.json", "--output", "directory.json"], dir);
}

/// `interlock ROLE --config FILE` in `dir`, and the address it printed.
fn start(role: &str, config: &str, dir: &Path) -> (Child, String) {
    common::start_listening(&[role, "--config", config], dir)
}

async fn channel(dir: &Path, holder: &str, address: &str) -> Channel {
    let read = |name: String| std::fs::read(dir.join("tls").join(name)).unwrap();
    let tls = ClientTlsConfig::new()
        .domain_name("localhost")
        .ca_certificate(Certificate::from_pem(read("ca.pem".into())))
        .identity(Identity::from_pem(read(format!("{holder}.pem")), read(format!("{holder}.key"))));
    let port = address.rsplit(':').next().unwrap();
    Channel::from_shared(format!("https://localhost:{port}")).unwrap().tls_config(tls).unwrap().connect().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ledger_node_and_a_gateway_run_from_their_config_files_alone() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    identities(dir);
    std::fs::create_dir_all(dir.join("etc")).unwrap();
    std::fs::create_dir_all(dir.join("run")).unwrap();
    let ledger_file = "# alpha's sequencer\n\
        data = \"../alpha\"\nnetwork = 1\nlisten = \"127.0.0.1:0\"\n\
        tls_dir = \"../tls\"\nname = \"alpha-ledger\"\ndirectory = \"../directory.json\"\n";
    std::fs::write(dir.join("etc/alpha-ledger.toml"), ledger_file).unwrap();
    let (mut node, node_address) = start("ledger", "../etc/alpha-ledger.toml", &dir.join("run"));
    assert!(dir.join("alpha/ledger.sqlite").exists(), "the data directory is the file's ../alpha");

    // The gateway's key, as the directory lists it.
    std::fs::create_dir_all(dir.join("alpha-gateway")).unwrap();
    let seed = interlock_core::hash::to_hex(&[3; 32]);
    std::fs::write(dir.join("alpha-gateway/gateway.key"), seed).unwrap();
    let gateway_file = format!(
        "data = \"../alpha-gateway\"\nnetwork = 1\nlisten = \"127.0.0.1:0\"\ntls_dir = \"../tls\"\n\
         name = \"alpha-gateway\"\ndirectory = \"../directory.json\"\nwebhook_attempts = 3\n\n\
         # This gateway reaches alpha's node at its own address, not the directory's.\n\
         [networks.alpha]\nnode = \"{node_address}\"\n"
    );
    std::fs::write(dir.join("etc/alpha-gateway.toml"), gateway_file).unwrap();
    // A key its group and others may read: the check refuses it and says how
    // to fix it; once it is 0600 the check passes.
    use std::os::unix::fs::PermissionsExt as _;
    let key = dir.join("alpha-gateway/gateway.key");
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
    let check = ["config", "check", "--role", "gateway", "--config", "etc/alpha-gateway.toml", "--json"];
    let refused = interlock(&check, dir);
    assert_eq!(refused.status.code(), Some(1), "{}", String::from_utf8_lossy(&refused.stderr));
    let report: serde_json::Value = serde_json::from_slice(&refused.stdout).unwrap();
    assert_eq!(report["passed"], false);
    let failed: Vec<_> = report["keys"].as_array().unwrap().iter().filter(|key| key["passed"] == false).collect();
    assert_eq!(failed.len(), 1, "only the gateway's key is open: {report}");
    assert!(failed[0]["path"].as_str().unwrap().ends_with("alpha-gateway/gateway.key"), "{report}");
    assert!(
        failed[0]["detail"].as_str().unwrap().contains("mode 0644")
            && failed[0]["detail"].as_str().unwrap().contains("chmod 600"),
        "{report}"
    );
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
    let checked = ok(&["config", "check", "--role", "gateway", "--config", "etc/alpha-gateway.toml", "--json"], dir);
    let checked: serde_json::Value = serde_json::from_str(&checked).unwrap();
    assert_eq!(checked["settings"]["webhook_attempts"], 3);
    assert_eq!(checked["networks"][0]["config"]["node"], node_address.as_str());
    let (mut gateway, gateway_address) = start("gateway", "../etc/alpha-gateway.toml", &dir.join("run"));

    // The operator registers the buyer at the node ...
    let seed = std::fs::read_to_string(dir.join("alpha/operator.key")).unwrap();
    let operator = PartyKey::from_seed(interlock_core::hash::from_hex(seed.trim()).unwrap().try_into().unwrap());
    let register = Transaction::sign(&operator, NetworkId(1), 1, Op::Register { account: buyer().public() });
    let mut ledger = v1::ledger_node_client::LedgerNodeClient::new(channel(dir, "alpha-gateway", &node_address).await);
    let request = v1::SubmitTransactionRequest { transaction_encoded: register.to_bytes(), wait: true };
    ledger.submit_transaction(request).await.unwrap();
    // ... and the buyer reads its account through the gateway, which reaches
    // the node only at the address its file gave.
    let mut client = v1::gateway_client::GatewayClient::new(channel(dir, "buyer", &gateway_address).await);
    let request = v1::GetAccountRequest { account: buyer().public().0.to_vec() };
    let account = client.get_account(request).await.expect("the gateway reaches the node its file names");
    assert!(account.into_inner().registered);

    for child in [&mut gateway, &mut node] {
        child.kill().unwrap();
        child.wait().unwrap();
    }
}

#[test]
fn a_file_that_sets_the_directorys_contract_or_an_unknown_key_is_refused_before_anything_starts() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    let file = "data = \"gw\"\nnetwork = 1\ntls_dir = \"tls\"\nname = \"g\"\ndirectory = \"d.json\"\n\
                [networks.alpha]\nescrow = \"0x5FbDB2315678afecb367f032d93F642f64180aa3\"\n";
    std::fs::write(dir.join("gw.toml"), file).unwrap();
    for args in
        [&["gateway", "--config", "gw.toml"][..], &["config", "check", "--role", "gateway", "--config", "gw.toml"]]
    {
        let refused = interlock(args, dir);
        let stderr = String::from_utf8_lossy(&refused.stderr);
        assert_eq!(refused.status.code(), Some(2), "{stderr}");
        assert!(
            stderr.contains("gw.toml: [networks.alpha] sets `escrow`, which only the directory may set"),
            "{stderr}"
        );
    }
    std::fs::write(dir.join("n1.toml"), "data = \"n1\"\nlisten_on = \"127.0.0.1:7201\"\n").unwrap();
    let refused = interlock(&["notary", "--config", "n1.toml"], dir);
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert_eq!(refused.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("n1.toml") && stderr.contains("unknown field `listen_on`"), "{stderr}");
    assert!(!dir.join("n1").exists(), "nothing was started or created");
}
