//! `interlock sandbox up --litecoin`: beta as a Litecoin chain. The sandbox
//! starts one process of its own for the chain ([`serve`]: `interlock
//! sandbox litecoin-node`), which runs `litecoind -regtest` in the chain's
//! data directory under the guard that stops it with its parent, funds the
//! parties with [`COINS`] coins of one LTC each, and mines a block every
//! [`BLOCK_TIME_MS`] so that chain time moves. Killing that process stops the
//! node. Each party signs on the chain with a secp256k1 key of its own
//! (`parties/NAME.NETWORK.ltc-key`); beta's gateway follows the chain and
//! keeps nothing (a script pays only the keys it names).
//!
//! The sandbox itself (in interlock-devnet) keeps the key files and starts
//! the process; what it needs back is plain data: the directory entry's
//! platform and configuration, accounts and balances as JSON.

use crate::address::{format, Chain};
use crate::chain::Node;
use crate::platform::LitecoinPlatform;
use crate::regtest::{Regtest, READY_HEIGHT};
use crate::rpc::Rpc;
use crate::LitecoinConfig;
use interlock_chain::{ChainError, Platform as _};
use interlock_core::Address;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The chain's block interval.
pub const BLOCK_TIME_MS: u64 = 1_000;
/// Blocks that must stand on an event before gateways and agents act.
pub const CONFIRMATIONS: u64 = 2;
/// Coins of one LTC each party starts with.
pub const COINS: usize = 10;
/// What the key files are, for the sandbox's messages about them.
pub const KEY_KIND: &str = "a secp256k1 key";

/// The party's secp256k1 key on `network`, relative to the sandbox directory.
pub fn party_key(party: &str, network: &str) -> String {
    format!("parties/{party}.{network}.ltc-key")
}

/// The chain process's data directory, relative to the sandbox directory.
pub fn data_dir(network: &str) -> String {
    format!("{network}-litecoin")
}

/// Runs the sandbox's Litecoin chain until this process is stopped: a
/// regtest node in `data` with its RPC on `port`; on a fresh chain, each of
/// `fund` gets [`COINS`] coins of one LTC; then a block every
/// [`BLOCK_TIME_MS`]. Prints `listening on URL` once the node is ready and
/// funded: what the sandbox waits for.
pub async fn serve(data: &Path, port: u16, fund: &[Address]) -> Result<(), ChainError> {
    let node = Regtest::start_on(data, port).await?;
    if node.height().await? <= READY_HEIGHT {
        for account in fund {
            node.fund(account, crate::regtest::LITOSHIS_PER_LTC, COINS).await?;
        }
        node.mine(1).await?;
    }
    let height = node.height().await?;
    println!("listening on {} (litecoind regtest, height {height}, a block every {BLOCK_TIME_MS} ms)", node.url());
    let _producer = node.produce_blocks(Duration::from_millis(BLOCK_TIME_MS));
    // Until stopped: the node's guard sees this process's pipe close, however
    // it ends, and stops litecoind.
    std::future::pending::<()>().await;
    Ok(())
}

/// What the sandbox's state file keeps about its Litecoin chain.
#[derive(Clone, Serialize, Deserialize)]
pub struct ChainState {
    /// The name of the network this chain is (`beta`).
    pub network: String,
    /// The chain process ([`serve`]); stopping it stops the node.
    pub node_pid: u32,
    pub log: PathBuf,
    pub rpc: String,
    /// litecoind's cookie file, which the gateway and agents authenticate with.
    pub rpc_cookie: PathBuf,
    /// Each party's account, as an `rltc1…` address.
    pub addresses: BTreeMap<String, String>,
}

impl ChainState {
    pub fn new(
        network: &str,
        (node_pid, log): (u32, PathBuf),
        port: u16,
        data: &Path,
        accounts: &[(&str, Address)],
    ) -> ChainState {
        ChainState {
            network: network.to_owned(),
            node_pid,
            log,
            rpc: format!("http://127.0.0.1:{port}"),
            rpc_cookie: data.join("regtest").join(".cookie"),
            addresses: accounts
                .iter()
                .map(|(party, account)| ((*party).to_owned(), format(Chain::Regtest, account)))
                .collect(),
        }
    }

    /// The platform the network's directory entry names.
    pub fn platform(&self) -> &'static str {
        LitecoinPlatform::new(Chain::Regtest).name()
    }

    /// One line on where the chain runs, for `up` and `status`.
    pub fn describe(&self) -> String {
        format!(
            "litecoind regtest at {} (chain process pid {}, a block every {BLOCK_TIME_MS} ms), log {}",
            self.rpc,
            self.node_pid,
            self.log.display()
        )
    }

    fn node(&self) -> Result<Node, ChainError> {
        Ok(Node::new(Rpc::new(&self.rpc, &self.rpc_cookie)?))
    }

    /// Whether the node answers as a regtest chain: `serving`, `another
    /// chain` or `unreachable`.
    pub async fn health(&self) -> &'static str {
        let Ok(node) = self.node() else { return "unreachable" };
        let asked = node.rpc.call::<Value>("getblockchaininfo", json!([]));
        match tokio::time::timeout(Duration::from_secs(3), asked).await {
            Ok(Ok(info)) if info.get("chain").and_then(Value::as_str) == Some(Chain::Regtest.node_name()) => "serving",
            Ok(Ok(_)) => "another chain",
            Ok(Err(_)) | Err(_) => "unreachable",
        }
    }

    /// How this platform reads in the sandbox's deal stories.
    pub fn platform_label(&self) -> &'static str {
        "Litecoin"
    }

    /// The network's directory entry's configuration, naming `notaries` by
    /// their compressed keys for the notary legs' scripts.
    pub fn network_config(&self, notaries: &[interlock_core::crypto::NotaryKey]) -> Value {
        let mut config = LitecoinConfig::regtest(self.rpc.clone(), &self.rpc_cookie, CONFIRMATIONS, BLOCK_TIME_MS);
        config.notary_keys =
            notaries.iter().map(|key| interlock_core::hash::to_hex(&crate::notary::notary_public_key(key))).collect();
        serde_json::to_value(config).expect("the configuration serialises")
    }

    /// `party`'s account on this chain.
    pub fn account(&self, party: &str) -> Result<Address, ChainError> {
        let text =
            self.addresses.get(party).ok_or_else(|| ChainError::fatal(format!("no Litecoin account for {party}")))?;
        crate::address::parse(Chain::Regtest, text)
    }

    /// `party`'s LTC in confirmed coins, in litoshis, as text.
    pub async fn balances(&self, party: &str) -> Result<Value, ChainError> {
        let account = self.account(party)?;
        let coins = self.node()?.unspent(&crate::address::pay_to(&account)?).await?;
        let held: u64 = coins.iter().map(|coin| coin.value).sum();
        Ok(json!({ "LTC": held.to_string() }))
    }
}
