//! `interlock sandbox up --evm`: a network of the sandbox as an anvil chain
//! (beta with one `--evm`, alpha too with two).
//!
//! For each such network the sandbox starts its own anvil (mining a block
//! every [`BLOCK_TIME_MS`], chain id [`chain_id`] of the network), deploys the
//! escrow contract, an ERC-20 `USDC` and an ERC-721 collection `DEED`, and
//! gives each party a secp256k1 key of its own on that chain
//! (`parties/NAME.NETWORK.evm-key`) with coin for gas: the buyer gets
//! [`BUYER_USDC`] USDC, the seller DEED #1 to #[`SELLER_DEEDS`]. The network's
//! gateway then follows the contract instead of a ledger node, keeping with
//! its own key (`NETWORK-gateway/evm.key`), and the agents send their
//! transactions on that network to its anvil themselves.
//!
//! The sandbox itself (in interlock-devnet) keeps the party keys' files and
//! hands their seeds in; what it needs back is plain data: the directory
//! entry's platform and configuration, accounts, the arguments the gateway and
//! agents take the keys by, and balances as JSON.

use crate::bindings::{TestItems, TestToken};
use crate::chain::core_address;
use crate::platform::EvmPlatform;
use crate::EscrowClient;
use crate::{EvmAssetConfig, EvmConfig};
use alloy::primitives::{Address as EvmAddress, U256};
use alloy::providers::{DynProvider, Provider as _};
use alloy::signers::local::PrivateKeySigner;
use anyhow::Context as _;
use interlock_chain::Platform as _;
use interlock_core::{Address, NetworkId};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub const BLOCK_TIME_MS: u64 = 500;
/// Blocks that must stand on an event before gateways, agents and notaries act.
pub const CONFIRMATIONS: u64 = 2;
pub const BUYER_USDC: u64 = 1_000_000;
pub const SELLER_DEEDS: u64 = 20;
const GAS_COIN_WEI: u128 = 1_000 * 10u128.pow(18);
/// How far anvil's block times may stray from the ledger's clock: both run
/// on this machine, so at most about a block.
const SANDBOX_TIME_LAG_MS: u64 = 1_000;
/// What the sandbox's transactions offer per gas at most: the default cap.
const SANDBOX_FEE_CAP_GWEI: u64 = 500;
/// The chain id of network 0's anvil; network n's is this plus n.
const CHAIN_ID_BASE: u64 = crate::anvil::ANVIL_CHAIN_ID - 2;

/// The chain id the sandbox gives the anvil of `network`: anvil's own default
/// for beta (network 2), another for each other network, so that no two
/// chains of a sandbox share one (a transaction signed for one chain is then
/// invalid on the other).
pub fn chain_id(network: NetworkId) -> u64 {
    CHAIN_ID_BASE.checked_add(network.0).expect("network ids are small")
}

/// What the sandbox's state file keeps about one of its chains.
#[derive(Clone, Serialize, Deserialize)]
pub struct ChainState {
    /// The name of the network this chain is (`alpha`, `beta`).
    pub network: String,
    /// The anvil the sandbox started, which `down` stops; none when the chain
    /// is a node the sandbox was pointed at (`--evm-rpc`), which it leaves running.
    pub anvil_pid: Option<u32>,
    pub log: Option<PathBuf>,
    pub rpc: String,
    /// What the node answers to `eth_chainId`.
    pub chain_id: u64,
    pub escrow: String,
    /// The block that holds the escrow's deployment (0 in a state file
    /// written before it was recorded: unknown).
    #[serde(default)]
    pub escrow_height: u64,
    pub usdc: String,
    pub deed: String,
    /// Each party's EVM account.
    pub accounts: BTreeMap<String, String>,
    /// The keeper account of the network's gateway (its key is [`keeper_key`]).
    pub keeper: String,
}

impl ChainState {
    /// The platform the network's directory entry names.
    pub fn platform(&self) -> &'static str {
        EvmPlatform.name()
    }

    /// One line on where the chain runs, for `up`.
    pub fn describe(&self) -> String {
        match (&self.anvil_pid, &self.log) {
            (Some(pid), Some(log)) => {
                format!("anvil at {} (chain id {}, pid {pid}), log {}", self.rpc, self.chain_id, log.display())
            }
            _ => format!(
                "the node at {} (chain id {}), which the sandbox did not start and will not stop",
                self.rpc, self.chain_id
            ),
        }
    }

    /// Whether the node answers, as this chain: `serving`, `another chain`
    /// (it answers with another chain id) or `unreachable`.
    pub async fn health(&self) -> &'static str {
        let Ok(provider) = read_only(&self.rpc) else { return "unreachable" };
        match tokio::time::timeout(Duration::from_secs(3), provider.get_chain_id()).await {
            Ok(Ok(id)) if id == self.chain_id => "serving",
            Ok(Ok(_)) => "another chain",
            Ok(Err(_)) | Err(_) => "unreachable",
        }
    }

    /// How this platform reads in the sandbox's deal stories.
    pub fn platform_label(&self) -> &'static str {
        "EVM"
    }

    /// The network's directory entry's configuration.
    pub fn network_config(&self) -> serde_json::Value {
        serde_json::to_value(self.evm_config()).expect("the configuration serialises")
    }

    fn evm_config(&self) -> EvmConfig {
        EvmConfig {
            rpc: self.rpc.clone(),
            escrow: self.escrow.clone(),
            confirmations: CONFIRMATIONS,
            assets: BTreeMap::from([
                ("ETH".to_owned(), EvmAssetConfig::Native),
                ("USDC".to_owned(), EvmAssetConfig::Erc20(self.usdc.clone())),
                ("DEED".to_owned(), EvmAssetConfig::Erc721(self.deed.clone())),
            ]),
            keeper: Some(self.keeper.clone()),
            rpc_ca: None,
            chain_id: Some(self.chain_id),
            deploy_height: self.escrow_height,
            fee_cap_gwei: SANDBOX_FEE_CAP_GWEI,
            replace_after_blocks: crate::chain::REPLACE_AFTER_BLOCKS,
            urgent_within_s: crate::chain::URGENT_WITHIN_S,
            block_interval_ms: BLOCK_TIME_MS,
            time_lag_ms: SANDBOX_TIME_LAG_MS,
            finality: crate::Finality::Depth,
            finality_blocks: CONFIRMATIONS,
        }
    }

    /// `party`'s account on this chain.
    pub fn account(&self, party: &str) -> anyhow::Result<Address> {
        let text = self.accounts.get(party).with_context(|| format!("no EVM account for {party}"))?;
        Ok(core_address(crate::parse_evm_address(text)?))
    }

    /// Each party's USDC and the DEEDs it holds, as text.
    pub async fn balances(&self, party: &str) -> anyhow::Result<serde_json::Value> {
        let provider = read_only(&self.rpc)?;
        let account = EvmAddress::from(parse(&self.accounts[party])?);
        let usdc = TestToken::new(parse(&self.usdc)?.into(), provider.clone()).balanceOf(account).call().await?;
        let items = TestItems::new(parse(&self.deed)?.into(), provider);
        let mut deeds = Vec::new();
        for item in 1..=SELLER_DEEDS {
            if items.ownerOf(U256::from(item)).call().await? == account {
                deeds.push(item);
            }
        }
        Ok(serde_json::json!({ "USDC": usdc.to_string(), "DEED": deeds }))
    }
}

fn parse(text: &str) -> anyhow::Result<[u8; 20]> {
    Ok(crate::parse_evm_address(text)?.0 .0)
}

fn read_only(rpc: &str) -> anyhow::Result<DynProvider> {
    Ok(crate::http::read_only(rpc, None)?)
}

/// What the keys are, for the sandbox's messages about their files.
pub const KEY_KIND: &str = "a secp256k1 key";

/// The keeper key of `network`'s gateway, relative to the sandbox directory
/// (in the gateway's data directory).
pub fn keeper_key(network: &str) -> String {
    format!("{network}-gateway/evm.key")
}

/// The party's secp256k1 key on `network`, relative to the sandbox directory:
/// one per chain, so an account on one chain says nothing of the other.
pub fn party_key(party: &str, network: &str) -> String {
    format!("parties/{party}.{network}.evm-key")
}

/// The 32-byte seed of the key at a path relative to the sandbox directory,
/// created on first use: the sandbox's own key files.
pub type SeedSource<'a> = &'a dyn Fn(&Path) -> anyhow::Result<[u8; 32]>;

fn signer_at(dir: &Path, relative: &str, seed: SeedSource) -> anyhow::Result<PrivateKeySigner> {
    let path = dir.join(relative);
    let seed = seed(&path)?;
    PrivateKeySigner::from_bytes(&seed.into()).map_err(|error| anyhow::anyhow!("{}: {error}", path.display()))
}

/// Starts `network`'s anvil on `port` (chain id [`chain_id`]) with its log in
/// `dir/logs/NAME-anvil.log`, deploys and funds.
pub fn start_chain(
    dir: &Path,
    network: (NetworkId, &str),
    port: u16,
    parties: &[&str],
    seed: SeedSource,
) -> anyhow::Result<ChainState> {
    use std::os::unix::process::CommandExt as _;
    let anvil = crate::anvil::locate()?;
    let (id, name) = network;
    let log = dir.join("logs").join(format!("{name}-anvil.log"));
    let file = std::fs::File::create(&log).with_context(|| format!("cannot create {}", log.display()))?;
    let block_time = format!("{}.{:03}", BLOCK_TIME_MS / 1000, BLOCK_TIME_MS % 1000);
    let child = std::process::Command::new(&anvil)
        .args(["--host", "127.0.0.1", "--port", &port.to_string(), "--accounts", "0", "--block-time", &block_time])
        .args(["--chain-id", &chain_id(id).to_string()])
        .stdout(file.try_clone()?)
        .stderr(file)
        .stdin(std::process::Stdio::null())
        .process_group(0)
        .spawn()
        .with_context(|| format!("cannot start {}", anvil.display()))?;
    let started = std::time::Instant::now();
    while !std::fs::read_to_string(&log).unwrap_or_default().contains("Listening on") {
        if started.elapsed() > Duration::from_secs(20) {
            let said = std::fs::read_to_string(&log)?;
            anyhow::bail!("{name}'s anvil did not start; its log {} says:\n{said}", log.display());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let mut state = match use_chain(dir, network, &format!("http://127.0.0.1:{port}"), parties, seed) {
        Ok(state) => state,
        Err(error) => {
            let _ = std::process::Command::new("kill").arg(child.id().to_string()).status();
            return Err(error);
        }
    };
    state.anvil_pid = Some(child.id());
    state.log = Some(log);
    Ok(state)
}

/// Deploys and funds, as `network`, on a development node that is already
/// running at `rpc` (one that answers `anvil_setBalance` and mines blocks on
/// its own): the sandbox neither starts nor stops it.
pub fn use_chain(
    dir: &Path,
    network: (NetworkId, &str),
    rpc: &str,
    parties: &[&str],
    seed: SeedSource,
) -> anyhow::Result<ChainState> {
    let (_, name) = network;
    let deployer = PrivateKeySigner::random();
    let mut signers = vec![deployer.clone()];
    for party in parties {
        signers.push(signer_at(dir, &party_key(party, name), seed)?);
    }
    std::fs::create_dir_all(dir.join(format!("{name}-gateway")))?;
    let keeper = signer_at(dir, &keeper_key(name), seed)?;
    signers.push(keeper.clone());
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let (escrow, usdc, deed) = runtime.block_on(deploy_and_fund(rpc, &signers))?;
    let chain_id = runtime
        .block_on(read_only(rpc)?.get_chain_id())
        .with_context(|| format!("the node at {rpc} did not say its chain id"))?;
    let escrow_height = escrow.deploy_height().context("the escrow was deployed here, at a known block")?;
    let escrow = escrow.address();
    let accounts = parties
        .iter()
        .zip(&signers[1..=parties.len()])
        .map(|(party, signer)| ((*party).to_owned(), core_address(signer.address()).to_string()))
        .collect();
    Ok(ChainState {
        network: name.to_owned(),
        anvil_pid: None,
        log: None,
        rpc: rpc.to_owned(),
        chain_id,
        escrow: core_address(escrow).to_string(),
        escrow_height,
        usdc: core_address(usdc).to_string(),
        deed: core_address(deed).to_string(),
        accounts,
        keeper: core_address(keeper.address()).to_string(),
    })
}

/// Deploys the escrow and both test tokens from `signers[0]`; gives every signer
/// coin for gas; the buyer (`signers[1]`) USDC, the seller (`signers[2]`) DEEDs,
/// each approving the escrow.
async fn deploy_and_fund(
    rpc: &str,
    signers: &[PrivateKeySigner],
) -> anyhow::Result<(EscrowClient, EvmAddress, EvmAddress)> {
    let provider = crate::connect(rpc, signers)?;
    for signer in signers {
        let _: () = provider
            .raw_request("anvil_setBalance".into(), (signer.address(), U256::from(GAS_COIN_WEI)))
            .await
            .with_context(|| {
                format!(
                    "the node at {rpc} did not fund the sandbox's accounts (anvil_setBalance): the sandbox \
                     needs a development node such as anvil there"
                )
            })?;
    }
    let deployer = signers[0].address();
    let client = EscrowClient::deploy(provider.clone(), deployer).await?;
    let escrow = client.address();
    let usdc = TestToken::deploy_builder(provider.clone()).from(deployer).deploy().await?;
    let deed = TestItems::deploy_builder(provider.clone()).from(deployer).deploy().await?;
    let (buyer, seller) = (signers[1].address(), signers[2].address());
    let token = TestToken::new(usdc, provider.clone());
    token.mint(buyer, U256::from(BUYER_USDC)).from(buyer).send().await?.get_receipt().await?;
    token.approve(escrow, U256::MAX).from(buyer).send().await?.get_receipt().await?;
    let items = TestItems::new(deed, provider.clone());
    // Sent one after another without waiting, then awaited: one block for all.
    let mut pending = Vec::new();
    for item in 1..=SELLER_DEEDS {
        pending.push(items.mint(seller, U256::from(item)).from(seller).send().await?);
    }
    pending.push(items.setApprovalForAll(escrow, true).from(seller).send().await?);
    for sent in pending {
        sent.get_receipt().await?;
    }
    Ok((client, usdc, deed))
}
