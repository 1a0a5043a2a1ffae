//! Deploying the escrow to a node the project did not start, and checking a
//! network's configuration against its live node: each check passes on what
//! `deploy` wrote and fails, saying why, on each thing a hand-written
//! configuration gets wrong.

use interlock_evm::live;
use std::collections::BTreeMap;

fn failed(checks: &[interlock_chain::LiveCheck]) -> BTreeMap<String, String> {
    checks.iter().filter(|check| !check.passed).map(|check| (check.check.clone(), check.detail.clone())).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deployed_escrow_passes_every_live_check_and_each_mistake_is_named() {
    let devnet = interlock_evm::devnet::Devnet::start(2).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let key_file = dir.path().join("deployer.key");
    std::fs::write(&key_file, "02".repeat(32)).unwrap();

    let config = live::deploy(devnet.anvil.endpoint(), &key_file, None, 2).await.expect("the escrow deploys");
    assert!(config.deploy_height > 0, "{config:?}");
    assert_eq!(config.chain_id, Some(31_337));
    let checks = live::check(&config).await;
    assert!(failed(&checks).is_empty(), "{checks:#?}");
    assert!(checks.len() >= 4, "{checks:#?}");

    let token = devnet.deploy_token().await.unwrap();
    let cases: [(&str, interlock_evm::EvmConfig); 4] = [
        ("escrow code", interlock_evm::EvmConfig { escrow: token.to_string(), ..config.clone() }),
        ("chain id", interlock_evm::EvmConfig { chain_id: Some(1), ..config.clone() }),
        ("deploy height", interlock_evm::EvmConfig { deploy_height: config.deploy_height + 1, ..config.clone() }),
        ("confirmation depth", interlock_evm::EvmConfig { confirmations: 1, ..config.clone() }),
    ];
    for (check, wrong) in cases {
        let found = failed(&live::check(&wrong).await);
        assert!(found.contains_key(check), "{check}: {found:?}");
        // Another contract at the address was deployed in another block too;
        // otherwise the one mistake is the one failure.
        assert!(found.len() == 1 || check == "escrow code", "{check}: {found:?}");
    }
    // The committed escrow's code, but delegating to another contract than the
    // committed inspection module: refused, naming the module.
    let rogue = interlock_evm::bindings::InterlockEscrow::deploy_builder(devnet.provider.clone(), token)
        .from(devnet.accounts[0])
        .deploy()
        .await
        .unwrap();
    let found = failed(&live::check(&interlock_evm::EvmConfig { escrow: rogue.to_string(), ..config.clone() }).await);
    let detail = found.get("escrow code").expect("the escrow code check fails");
    assert!(detail.contains(&format!("inspection module {token}")), "{detail}");
    // A chain acted on at its finalized block: the node must name that block.
    let finalized = interlock_evm::EvmConfig { finality: interlock_evm::Finality::Finalized, ..config.clone() };
    let checks = live::check(&finalized).await;
    let finality = checks.iter().find(|check| check.check == "finality").expect("a finality check");
    assert!(finality.passed && finality.detail.contains("finalized block is"), "{finality:?}");
    assert!(!checks.iter().any(|check| check.check == "finality" && !check.passed));
    assert!(live::check(&config).await.iter().all(|check| check.check != "finality"), "depth alone: no such check");
    // A chain slower than its configuration says: its newest blocks 30 s apart.
    let provider = &devnet.provider;
    use interlock_evm::alloy::providers::Provider as _;
    let (blocks, seconds) =
        (interlock_evm::alloy::primitives::U256::from(20), interlock_evm::alloy::primitives::U256::from(30));
    let _: () = provider.raw_request("anvil_mine".into(), (blocks, seconds)).await.unwrap();
    let found = failed(&live::check(&config).await);
    assert_eq!(found.keys().collect::<Vec<_>>(), ["block interval"], "{found:?}");
    // Thirty seconds apart, give or take the second the first of them may
    // lie after the block before (its time follows the real clock).
    let every: u64 = found["block interval"]
        .split("came every ")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .and_then(|ms| ms.parse().ok())
        .unwrap_or_else(|| panic!("no interval in {found:?}"));
    assert!((30_000..=31_000).contains(&every), "{found:?}");
    let paced = interlock_evm::EvmConfig { block_interval_ms: 30_000, ..config.clone() };
    assert!(failed(&live::check(&paced).await).is_empty());
    let unreachable = interlock_evm::EvmConfig { rpc: "http://127.0.0.1:1".into(), ..config.clone() };
    let found = failed(&live::check(&unreachable).await);
    assert!(found.contains_key("node"), "{found:?}");
}
