//! `interlock demo --routed`: a deal between two networks whose gateways
//! cannot reach each other. It brings up the routed sandbox (three embedded
//! ledgers, alpha's and gamma's gateways linked only to beta's) in a
//! temporary directory, settles one hashlock and one notary deal between
//! alpha and gamma, prints the path every gateway message took, and stops
//! every process it started, however it ends.

use crate::sandbox::{self, Topology};
use interlock_core::Mode;
use interlock_identity::SignedDirectory;
use std::path::{Path, PathBuf};

/// Runs the routed demo in `dir` (default: a new temporary directory).
/// Returns whether both deals completed on both sides.
pub fn run(dir: Option<PathBuf>) -> anyhow::Result<bool> {
    sandbox::own_started_processes();
    let temporary = tempfile::tempdir()?;
    let dir = dir.unwrap_or_else(|| temporary.path().join("sandbox"));
    println!("starting three ledgers, their gateways, notaries and agents in {}", dir.display());
    sandbox::up_quietly_as(&dir, &Topology::ROUTED)?;
    let result = settle_and_show(&dir);
    sandbox::down_quietly(&dir)?;
    result
}

fn settle_and_show(dir: &Path) -> anyhow::Result<bool> {
    let directory = SignedDirectory::load(&dir.join("directory.json"))?.directory;
    let name = |text: &str| -> String {
        let id = text.strip_prefix("network-").and_then(|id| id.parse::<u64>().ok());
        let entry = id.and_then(|id| directory.network(interlock_core::NetworkId(id)));
        entry.map_or_else(|| text.to_owned(), |entry| entry.name.clone())
    };
    let (alpha, gamma) = (crate::setup::ALPHA, crate::setup::GAMMA);
    println!("links: alpha - beta, beta - gamma; alpha's and gamma's gateways are not linked");
    for route in directory.routes(alpha, gamma, 4) {
        let path: Vec<String> = route.networks.iter().map(|id| name(&id.to_string())).collect();
        println!("route alpha to gamma: {} ({} hops)", path.join(" -> "), route.hops());
    }
    let mut completed = true;
    for mode in [Mode::Hashlock, Mode::Notary] {
        println!();
        completed &= sandbox::deal(dir, mode, false)?;
    }
    println!();
    println!("gateway messages, as their destinations received them:");
    for (destination, network) in [("gamma", "gamma-gateway"), ("alpha", "alpha-gateway")] {
        let log = std::fs::read_to_string(dir.join("logs").join(format!("{network}.log"))).unwrap_or_default();
        for line in log.lines() {
            // "routed KIND message ID handled, via A -> B origin=A"
            let Some(rest) = line.split("routed ").nth(1) else { continue };
            let mut words = rest.split_whitespace();
            let (Some(kind), Some(_), Some(id)) = (words.next(), words.next(), words.next()) else { continue };
            let Some(via) = rest.split("via ").nth(1).and_then(|via| via.split(" origin=").next()) else { continue };
            let mut path: Vec<String> = via.split(" -> ").map(name).collect();
            path.push(destination.to_owned());
            println!("  {kind:<8} {}  (message {})", path.join(" -> "), &id[..id.len().min(12)]);
        }
    }
    println!();
    println!("{}", if completed { "both deals completed on both sides" } else { "a deal did not complete" });
    Ok(completed)
}
