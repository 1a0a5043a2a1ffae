//! An EVM network on a chain Interlock did not start: the test runs its own
//! anvil, `sandbox up --evm --evm-rpc URL` deploys and funds there, and then
//! beta's gateway is replaced by one started from a config file written here
//! by hand (its own confirmation depth and key file over the signed
//! directory's entry). Deals in both modes settle between that gateway's
//! chain and the sandbox's ledger; `sandbox down` leaves the chain running.

mod common;

use common::sandbox::{interlock, json, process, up};
use interlock_evm::alloy::providers::Provider as _;
use interlock_evm::anvil::Anvil;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A process started by the test, killed however the test ends.
struct Started(Child);

impl Drop for Started {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn alive(pid: u64) -> bool {
    Command::new("kill").args(["-0", &pid.to_string()]).stderr(Stdio::null()).status().unwrap().success()
}

/// `interlock gateway --config FILE` in `dir`, once it says it listens.
fn start_gateway(dir: &Path, config: &str) -> Started {
    let log = dir.join("gateway.log");
    let file = std::fs::File::create(&log).unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_interlock"))
        .args(["gateway", "--config", config])
        .current_dir(dir)
        .stdout(file.try_clone().unwrap())
        .stderr(file)
        .spawn()
        .unwrap();
    let started = Started(child);
    let since = Instant::now();
    loop {
        let text = std::fs::read_to_string(&log).unwrap();
        if text.contains("listening on") {
            return started;
        }
        assert!(!text.contains("error:") && since.elapsed() < Duration::from_secs(30), "the gateway: {text}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_gateway_from_a_hand_written_file_settles_on_an_anvil_the_sandbox_did_not_start() {
    let anvil = Anvil::start_mining(Some(500)).expect("anvil comes from scripts/npm-install");
    let rpc = anvil.endpoint().to_owned();
    let dir = tempfile::tempdir().unwrap();
    let sandbox = up(dir.path(), &["--evm", "--evm-rpc", &rpc]);
    let state: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("sb/sandbox.json")).unwrap()).unwrap();
    assert_eq!(state["chains"]["beta"]["rpc"], rpc.as_str(), "{state}");
    assert!(state["chains"]["beta"]["anvil_pid"].is_null(), "the sandbox started no chain: {state}");

    // The sandbox's beta gateway stops; one from a hand-written file takes
    // its place, address and data directory.
    let beta = process(dir.path(), "beta-gateway");
    let pid = beta["pid"].as_u64().unwrap();
    assert!(Command::new("kill").arg(pid.to_string()).status().unwrap().success());
    let since = Instant::now();
    while alive(pid) {
        assert!(since.elapsed() < Duration::from_secs(10), "beta-gateway did not stop");
        std::thread::sleep(Duration::from_millis(50));
    }
    let hand = dir.path().join("hand");
    std::fs::create_dir_all(&hand).unwrap();
    let file = format!(
        "# beta's gateway, on a chain run by someone else\n\
         data = \"../sb/beta-gateway\"\nnetwork = 2\nlisten = \"{}\"\ntls_dir = \"../sb/tls\"\n\
         name = \"beta-gateway\"\ndirectory = \"../sb/directory.json\"\n\n\
         [networks.beta]\nrpc = \"{rpc}\"\nconfirmations = 3\nchain_key = \"../sb/beta-gateway/evm.key\"\n",
        beta["address"].as_str().unwrap()
    );
    std::fs::write(hand.join("beta-gateway.toml"), file).unwrap();
    let checked =
        json(&interlock(&["config", "check", "--role", "gateway", "--config", "beta-gateway.toml", "--json"], &hand));
    assert_eq!(checked["passed"], true, "{checked}");
    assert_eq!(
        checked["networks"][0]["config"]["confirmations"], 3,
        "the file's depth over the directory's: {checked}"
    );
    let _gateway = start_gateway(&hand, "beta-gateway.toml");

    // 25 USD on the ledger for DEED #1 on the chain; then 25 USDC for 10 GOLD.
    let notary = json(&interlock(&["sandbox", "deal", "--dir", "sb", "--mode", "notary", "--json"], dir.path()));
    assert_eq!(notary["outcome"], "completed", "{notary}");
    assert_eq!(notary["balances_after"]["buyer"]["beta"]["DEED"], serde_json::json!([1]), "{notary}");
    let hashlock = json(&interlock(&["sandbox", "deal", "--dir", "sb", "--mode", "hashlock", "--json"], dir.path()));
    assert_eq!(hashlock["outcome"], "completed", "{hashlock}");
    assert_eq!(hashlock["balances_after"]["seller"]["beta"]["USDC"], "25", "{hashlock}");
    assert_eq!(hashlock["balances_after"]["buyer"]["alpha"]["GOLD"], "10", "{hashlock}");

    // The sandbox stops what it started and leaves the chain to its owner.
    drop(sandbox);
    let provider = interlock_evm::http::read_only(&rpc, None).unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let height = runtime.block_on(provider.get_block_number()).expect("the chain still runs after sandbox down");
    assert!(height > 0);
}
