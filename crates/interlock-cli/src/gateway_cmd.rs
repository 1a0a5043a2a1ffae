//! `interlock gateway`: the gateway in front of one network, as a process.

use crate::services::seed_file;
use anyhow::Context as _;
use interlock_core::crypto::PartyKey;
use interlock_core::NetworkId;
use interlock_gateway::evm::EvmLink;
use interlock_gateway::gateway_store::GatewayStore;
use interlock_gateway::{GatewayConfig, GatewayService, WebhookPolicy};
use interlock_identity::SignedDirectory;
use interlock_proto::v1::gateway_peer_client::GatewayPeerClient;
use interlock_proto::v1::ledger_node_client::LedgerNodeClient;
use interlock_rpc::server::{bind, lazy_channel, TlsFiles};
use std::collections::HashMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The gateway's ed25519 seed, in its data directory.
const KEY_FILE: &str = "gateway.key";
/// The gateway's deals, events and outbox.
const STORE_FILE: &str = "gateway.sqlite";
/// Most dead letters listed.
const DEAD_LETTERS_MAX: usize = 10_000;

pub struct GatewayServe {
    pub data: PathBuf,
    pub network: u64,
    pub listen: std::net::SocketAddr,
    pub tls_dir: PathBuf,
    pub name: String,
    pub directory: PathBuf,
    pub webhooks: WebhookPolicy,
    /// On an EVM network: the keeper account's secp256k1 key (a 32-byte seed file).
    pub evm_key: Option<PathBuf>,
}

/// Prints the webhook deliveries the gateway gave up on (read from its data
/// directory; the gateway may be running).
pub fn dead_letters(data: &Path, json: bool) -> anyhow::Result<()> {
    let path = data.join(STORE_FILE);
    if !path.exists() {
        anyhow::bail!("no gateway store at {}", path.display());
    }
    let letters = GatewayStore::open(&path)?.dead_letters(DEAD_LETTERS_MAX)?;
    if json {
        println!("{}", serde_json::json!({ "dead_letters": letters }));
        return Ok(());
    }
    if letters.is_empty() {
        println!("no dead letters");
    }
    for letter in &letters {
        println!(
            "{} to {} ({}): {} attempts, last: {}",
            letter.event_id, letter.subscriber, letter.url, letter.attempts, letter.last_error
        );
    }
    Ok(())
}

fn gateway_key(data: &Path) -> anyhow::Result<PartyKey> {
    std::fs::create_dir_all(data).with_context(|| format!("cannot create {}", data.display()))?;
    Ok(PartyKey::from_seed(seed_file(&data.join(KEY_FILE), "an ed25519 seed")?))
}

/// Prints the gateway's public key (creating its seed on first use), for the
/// directory and for registering it as an account on its network.
pub fn print_key(data: &Path) -> anyhow::Result<()> {
    let key = gateway_key(data)?;
    println!("{}", interlock_core::hash::to_hex(&key.public().0));
    Ok(())
}

/// Runs a gateway until interrupted. Its ledger node and the other networks'
/// gateways come from the directory, which must list this gateway, for this
/// network, with this key. Prints `listening on ADDRESS (...)` once it serves.
pub fn serve(options: GatewayServe) -> anyhow::Result<()> {
    options.webhooks.check().map_err(anyhow::Error::msg)?;
    let key = gateway_key(&options.data)?;
    let network = NetworkId(options.network);
    let tls = TlsFiles::in_dir(&options.tls_dir, &options.name);
    let ca = interlock_identity::load_certificate(&tls.ca_certificate)?;
    let directory = SignedDirectory::load_verified(&options.directory, &ca)?;
    let key_hex = interlock_core::hash::to_hex(&key.public().0);
    match directory.gateways.iter().find(|entry| entry.name == options.name) {
        Some(entry) if entry.network != network => anyhow::bail!(
            "the directory lists gateway {} for network {}, not network {}",
            options.name,
            entry.network.0,
            network.0
        ),
        Some(entry) if entry.key != key.public() => anyhow::bail!(
            "the directory lists gateway {} with key {}, but its key in {} is {key_hex} (see --print-key)",
            options.name,
            interlock_core::hash::to_hex(&entry.key.0),
            options.data.display()
        ),
        Some(_) => {}
        None => anyhow::bail!("the directory lists no gateway named {}", options.name),
    }
    // An EVM network has no ledger node: the gateway follows the chain the
    // directory describes instead.
    let evm = directory.networks.iter().find(|entry| entry.id == network).and_then(|entry| entry.evm.clone());
    let ledger = match &evm {
        Some(_) => None,
        None => Some(
            directory
                .ledgers
                .iter()
                .find(|entry| entry.network == network)
                .with_context(|| format!("the directory lists no ledger node for network {}", network.0))?
                .endpoint
                .clone(),
        ),
    };
    let store = GatewayStore::open(&options.data.join(STORE_FILE))?;
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(async move {
        let mut peers = HashMap::new();
        for entry in directory.gateways.iter().filter(|entry| entry.network != network) {
            peers.insert(entry.network, GatewayPeerClient::new(lazy_channel(&entry.endpoint, &tls)?));
        }
        let directory = Arc::new(directory);
        // Never called on an EVM network; the channel connects lazily, so nothing is dialled.
        let ledger_endpoint = ledger.unwrap_or_else(|| "127.0.0.1:1".to_owned());
        let link = match &evm {
            Some(entry) => {
                let link = EvmLink::from_directory(network, entry).map_err(anyhow::Error::msg)?;
                match &options.evm_key {
                    Some(path) => {
                        let seed = crate::services::seed_file(path, "a secp256k1 key")?;
                        let signer = interlock_evm::alloy::signers::local::PrivateKeySigner::from_bytes(&seed.into())
                            .map_err(|error| anyhow::anyhow!("{}: {error}", path.display()))?;
                        Some(link.with_keeper(network, entry, signer).map_err(anyhow::Error::msg)?)
                    }
                    None => Some(link),
                }
            }
            None => None,
        };
        let config = GatewayConfig {
            key,
            network,
            ledger: LedgerNodeClient::new(lazy_channel(&ledger_endpoint, &tls)?),
            peers,
            directory: directory.clone(),
            clock: crate::setup::now_ms,
        };
        let service = GatewayService::open_with(config, store, link)?;
        let _tasks = service.start_with(options.webhooks);
        let (listener, address) = bind(options.listen).await?;
        println!("listening on {address} (gateway for network {}, key {key_hex})", network.0);
        std::io::stdout().flush()?;
        let shutdown = async {
            let _ = tokio::signal::ctrl_c().await;
        };
        interlock_gateway::serve(service, &tls, directory, listener, shutdown).await?;
        anyhow::Ok(())
    })
}
