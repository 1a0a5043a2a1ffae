//! Commands about chains the sandbox does not own: checking a signed
//! directory's networks against their live nodes, deploying the escrow to a
//! node, and the follow benchmark.

use interlock_chain::Platform as _;
use std::io::Write as _;
use std::path::Path;

/// `interlock directory check`: every network of the directory (signed by
/// the CA in `ca_dir`), its configuration checked by its platform and then
/// against its live node. Returns whether everything passed.
pub fn directory_check(directory: &Path, ca_dir: &Path, json: bool) -> anyhow::Result<bool> {
    let directory = crate::directory_cmd::load(directory, ca_dir)?;
    let platforms = interlock_platforms::all();
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let mut report = Vec::new();
    let mut all_passed = true;
    for network in &directory.networks {
        let checks = match network.platform_in(&platforms) {
            Ok(platform) => match platform.check_config(network.id, &network.config) {
                Ok(()) => runtime.block_on(platform.check_live(network.id, &network.config)),
                Err(error) => vec![interlock_chain::LiveCheck::failed("configuration", error.to_string())],
            },
            Err(error) => vec![interlock_chain::LiveCheck::failed("platform", error.to_string())],
        };
        all_passed &= checks.iter().all(|check| check.passed);
        report.push((network, checks));
    }
    if json {
        let networks: Vec<serde_json::Value> = report
            .iter()
            .map(|(network, checks)| {
                serde_json::json!({
                    "network": network.id.0,
                    "name": network.name,
                    "platform": network.platform,
                    "passed": checks.iter().all(|check| check.passed),
                    "checks": checks,
                })
            })
            .collect();
        println!("{}", serde_json::json!({ "passed": all_passed, "networks": networks }));
        return Ok(all_passed);
    }
    for (network, checks) in &report {
        println!("network {} ({}, {}):", network.id.0, network.name, network.platform);
        if checks.is_empty() {
            println!("  no live checks for this platform; its configuration is valid");
        }
        for check in checks {
            let mark = if check.passed { "ok  " } else { "FAIL" };
            println!("  {mark} {}: {}", check.check, check.detail);
        }
    }
    println!("{}", if all_passed { "every check passed" } else { "some checks failed: see FAIL above" });
    Ok(all_passed)
}

/// `interlock deploy …`: deploys the escrow from the key in `key_file` to
/// the node at `rpc` and prints the network's configuration for the
/// directory (as JSON: the stanza's `config`).
pub fn deploy_escrow(rpc: &str, key_file: &Path, rpc_ca: Option<&Path>, confirmations: u64) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let config = runtime.block_on(interlock_evm::live::deploy(rpc, key_file, rpc_ca, confirmations))?;
    let stanza = serde_json::json!({
        "platform": interlock_evm::EvmPlatform.name(),
        "config": config,
    });
    println!("{}", serde_json::to_string_pretty(&stanza)?);
    eprintln!(
        "deployed at block {}: add the stanza to the directory's network (with its id and name, and the assets \
         it trades), sign the directory, and run `interlock directory check`",
        config.deploy_height
    );
    Ok(())
}

/// `interlock bench follow`: see `interlock_devnet::follow_bench`.
pub fn bench_follow(blocks: u64, json: bool) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let progress = |stage: &str| {
        if !json {
            eprintln!("bench follow: {stage}");
        }
    };
    let report = runtime.block_on(interlock_devnet::follow_bench::run(blocks, &progress))?;
    if json {
        println!("{}", serde_json::to_string(&report)?);
        return Ok(());
    }
    let mut out = std::io::stdout().lock();
    writeln!(out, "blocks mined while following   {}", report.blocks)?;
    writeln!(out, "first follow to the head       {} ms", report.first_follow_ms)?;
    writeln!(out, "catch-up after a restart       {} ms (chain height {})", report.catch_up_ms, report.head)?;
    writeln!(out, "node calls during the catch-up {}", report.catch_up_rpc_calls)?;
    for (method, calls) in &report.catch_up_rpc_calls_by_method {
        writeln!(out, "  {method:<28} {calls}")?;
    }
    Ok(())
}
