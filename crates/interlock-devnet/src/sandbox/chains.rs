//! The sandbox's networks that are chains rather than ledger nodes, as the
//! supervisor and the driver see them: an EVM chain (`--evm`: anvil, the
//! escrow contract and test tokens, `interlock_evm::sandbox`) or a Litecoin
//! regtest chain (`--litecoin`, `interlock_litecoin::sandbox`). Each platform
//! crate starts, funds and describes its own; this file only dispatches.

use super::{free_port, seed_file, spawn, wait_listening, NetworkKind, PARTIES};
use interlock_core::{Address, NetworkId};
use interlock_evm::sandbox as evm;
use interlock_litecoin::sandbox as litecoin;
use serde::{Deserialize, Serialize};
use std::collections::HashSet;
use std::path::Path;

/// One chain of a sandbox. Untagged: a state file written before there was
/// more than one kind reads as EVM.
#[derive(Clone, Serialize, Deserialize)]
#[serde(untagged)]
pub enum ChainState {
    Evm(evm::ChainState),
    Litecoin(litecoin::ChainState),
}

/// Starts (or, for `ChainAt`, joins) the chain `kind` says `network` is, with
/// a key of its own for each party, funded.
pub(super) fn start(
    dir: &Path,
    network: (NetworkId, &str),
    kind: &NetworkKind,
    taken: &mut HashSet<u16>,
) -> anyhow::Result<ChainState> {
    let (_, name) = network;
    match kind {
        NetworkKind::Ledger => anyhow::bail!("{name} is a ledger, not a chain"),
        NetworkKind::NewChain => {
            let seed = |path: &Path| seed_file(path, evm::KEY_KIND);
            Ok(ChainState::Evm(evm::start_chain(dir, network, free_port(taken)?, &PARTIES, &seed)?))
        }
        NetworkKind::ChainAt(rpc) => {
            let seed = |path: &Path| seed_file(path, evm::KEY_KIND);
            Ok(ChainState::Evm(evm::use_chain(dir, network, rpc, &PARTIES, &seed)?))
        }
        NetworkKind::NewLitecoin => start_litecoin(dir, name, free_port(taken)?),
    }
}

/// The chain process of a Litecoin network: `interlock sandbox
/// litecoin-node`, which funds the parties' keys before it says it listens.
fn start_litecoin(dir: &Path, name: &str, port: u16) -> anyhow::Result<ChainState> {
    let mut accounts = Vec::new();
    for party in PARTIES {
        let seed = seed_file(&dir.join(litecoin::party_key(party, name)), litecoin::KEY_KIND)?;
        let key = interlock_litecoin::tx::Key::from_bytes(seed)?;
        accounts.push((party, key.account()));
    }
    // The cookie's path goes into the directory, read by processes that run
    // in the sandbox directory and by commands that run anywhere: absolute.
    let data = std::fs::canonicalize(dir)?.join(litecoin::data_dir(name));
    let process = format!("{name}-litecoin");
    let mut args: Vec<String> = ["sandbox", "litecoin-node", "--data"].map(str::to_owned).to_vec();
    args.push(litecoin::data_dir(name));
    args.extend(["--port".to_owned(), port.to_string()]);
    for (_, account) in &accounts {
        args.extend([
            "--fund".to_owned(),
            interlock_litecoin::address::format(interlock_litecoin::Chain::Regtest, account),
        ]);
    }
    let (pid, log) = spawn(dir, &process, &args, false)?;
    if let Err(error) = wait_listening(&log, &process) {
        stop(pid);
        return Err(error);
    }
    Ok(ChainState::Litecoin(litecoin::ChainState::new(name, (pid, log), port, &data, &accounts)))
}

fn stop(pid: u32) {
    let _ = std::process::Command::new("kill").arg(pid.to_string()).status();
}

impl ChainState {
    /// The network this chain is (`alpha`, `beta`).
    pub fn network(&self) -> &str {
        match self {
            ChainState::Evm(chain) => &chain.network,
            ChainState::Litecoin(chain) => &chain.network,
        }
    }

    /// The process the sandbox started for the chain, which `down` stops:
    /// none for a node it was pointed at.
    pub fn pid(&self) -> Option<u32> {
        match self {
            ChainState::Evm(chain) => chain.anvil_pid,
            ChainState::Litecoin(chain) => Some(chain.node_pid),
        }
    }

    pub fn platform(&self) -> &'static str {
        match self {
            ChainState::Evm(chain) => chain.platform(),
            ChainState::Litecoin(chain) => chain.platform(),
        }
    }

    pub fn platform_label(&self) -> &'static str {
        match self {
            ChainState::Evm(chain) => chain.platform_label(),
            ChainState::Litecoin(chain) => chain.platform_label(),
        }
    }

    pub fn describe(&self) -> String {
        match self {
            ChainState::Evm(chain) => chain.describe(),
            ChainState::Litecoin(chain) => chain.describe(),
        }
    }

    /// What `up` says the chain holds for the parties.
    pub fn funding(&self) -> String {
        match self {
            ChainState::Evm(chain) => format!(
                "escrow {}, USDC {}, DEED {}; funded: buyer {} USDC, seller DEED #1-#{}",
                chain.escrow,
                chain.usdc,
                chain.deed,
                evm::BUYER_USDC,
                evm::SELLER_DEEDS
            ),
            ChainState::Litecoin(_) => {
                format!("funded: buyer and seller {} coins of 1 LTC each (amounts in litoshis)", litecoin::COINS)
            }
        }
    }

    pub async fn health(&self) -> &'static str {
        match self {
            ChainState::Evm(chain) => chain.health().await,
            ChainState::Litecoin(chain) => chain.health().await,
        }
    }

    /// The network's directory entry's configuration; a script chain's names
    /// the sandbox's `notaries` by key.
    pub fn network_config(&self, notaries: &[interlock_core::crypto::NotaryKey]) -> serde_json::Value {
        match self {
            ChainState::Evm(chain) => chain.network_config(),
            ChainState::Litecoin(chain) => chain.network_config(notaries),
        }
    }

    pub fn account(&self, party: &str) -> anyhow::Result<Address> {
        match self {
            ChainState::Evm(chain) => chain.account(party),
            ChainState::Litecoin(chain) => Ok(chain.account(party)?),
        }
    }

    pub async fn balances(&self, party: &str) -> anyhow::Result<serde_json::Value> {
        match self {
            ChainState::Evm(chain) => chain.balances(party).await,
            ChainState::Litecoin(chain) => Ok(chain.balances(party).await?),
        }
    }

    /// The key file the gateway keeps with on this chain, if it keeps.
    pub fn keeper_key(&self) -> Option<String> {
        match self {
            ChainState::Evm(_) => Some(evm::keeper_key(self.network())),
            ChainState::Litecoin(_) => None,
        }
    }

    /// `party`'s key file on this chain, relative to the sandbox directory.
    pub fn party_key(&self, party: &str) -> String {
        match self {
            ChainState::Evm(_) => evm::party_key(party, self.network()),
            ChainState::Litecoin(_) => litecoin::party_key(party, self.network()),
        }
    }

    /// For status: the RPC endpoint and, on EVM, the chain id.
    pub fn status_json(&self) -> serde_json::Value {
        match self {
            ChainState::Evm(chain) => serde_json::json!({
                "network": chain.network, "platform": self.platform(), "rpc": chain.rpc,
                "chain_id": chain.chain_id, "pid": chain.anvil_pid, "log": chain.log,
            }),
            ChainState::Litecoin(chain) => serde_json::json!({
                "network": chain.network, "platform": self.platform(), "rpc": chain.rpc,
                "pid": chain.node_pid, "log": chain.log,
            }),
        }
    }
}
