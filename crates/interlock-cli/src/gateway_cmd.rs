//! `interlock gateway`: the gateway in front of one network, as a process.

use crate::services::seed_file;
use anyhow::Context as _;
use interlock_chain::{Credentials, Cursor};
use interlock_core::crypto::PartyKey;
use interlock_core::NetworkId;
use interlock_gateway::gateway_store::GatewayStore;
use interlock_gateway::{Chain, GatewayConfig, GatewayService, Relay, WebhookPolicy};
use interlock_proto::v1::gateway_peer_client::GatewayPeerClient;
use interlock_proto::v1::ledger_node_client::LedgerNodeClient;
use interlock_proto::v1::notary_client::NotaryClient;
use interlock_rpc::server::{bind, lazy_channel, ServiceFiles, TlsFiles};
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
    pub files: ServiceFiles,
    pub webhooks: WebhookPolicy,
    /// On a network where the gateway signs itself: the keeper account's key (a 32-byte seed file).
    pub chain_key: Option<PathBuf>,
    /// Its own settings for its network, merged over the directory's.
    pub networks: crate::settings::LocalNetworks,
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
    let tls = options.files.tls();
    let directory = options.files.directory()?;
    let key_hex = interlock_core::hash::to_hex(&key.public().0);
    match directory.gateways.iter().find(|entry| entry.name == options.files.name) {
        Some(entry) if entry.network != network => anyhow::bail!(
            "the directory lists gateway {} for network {}, not network {}",
            options.files.name,
            entry.network.0,
            network.0
        ),
        Some(entry) if entry.key != key.public() => anyhow::bail!(
            "the directory lists gateway {} with key {}, but its key in {} is {key_hex} (see --print-key)",
            options.files.name,
            interlock_core::hash::to_hex(&entry.key.0),
            options.data.display()
        ),
        Some(_) => {}
        None => anyhow::bail!("the directory lists no gateway named {}", options.files.name),
    }
    let store = GatewayStore::open(&options.data.join(STORE_FILE))?;
    let saved = store.cursor()?;
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(async move {
        let mut peers = HashMap::new();
        for entry in directory.gateways.iter().filter(|entry| entry.network != network) {
            peers.insert(entry.network, GatewayPeerClient::new(lazy_channel(&entry.endpoint, &tls)?));
        }
        // The keeper asks the notaries for the verdicts on legs held for inspection.
        let mut notaries = HashMap::new();
        for entry in &directory.notaries {
            notaries.insert(entry.address, NotaryClient::new(lazy_channel(&entry.endpoint, &tls)?));
        }
        let local = Local { networks: &options.networks, chain_key: options.chain_key.as_deref() };
        let chain =
            chain(network, &directory, (&tls, &options.files.tls_dir, &options.files.name), (&key, local), saved)
                .await?;
        let (_, timings) = crate::agent_cmd::network_facts(&directory, &options.networks)?;
        let directory = Arc::new(directory);
        let config = GatewayConfig {
            key,
            network,
            chain,
            peers,
            notaries,
            directory: directory.clone(),
            clock: crate::setup::now_ms,
            timings,
        };
        let service = GatewayService::open(config, store)?;
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

/// What the gateway's own settings say about its network.
struct Local<'a> {
    networks: &'a crate::settings::LocalNetworks,
    chain_key: Option<&'a Path>,
}

/// How the gateway reaches its network, from the directory entry (with the
/// gateway's own settings merged over it) and its platform: a follower of the network's escrow, from the `saved` cursor (or,
/// on a first start, from where the platform says the escrow begins); the
/// keeper's submitter,
/// signing with the gateway's key (or the chain key file `chain_key`, which
/// must be the keeper account the platform names); and, where parties send
/// through their gateway, the relay to the network's node.
async fn chain(
    network: NetworkId,
    directory: &interlock_identity::Directory,
    tls: (&TlsFiles, &Path, &str),
    (key, local): (&interlock_core::crypto::PartyKey, Local<'_>),
    saved: Option<Cursor>,
) -> anyhow::Result<Chain> {
    let (tls, tls_dir, name) = tls;
    let entry = directory.network(network).with_context(|| format!("the directory lists no network {}", network.0))?;
    local.networks.check_names(std::iter::once(entry), "this gateway fronts")?;
    let config = local.networks.config(entry)?;
    let platforms = interlock_platforms::all();
    let platform = entry.platform_in(&platforms)?;
    platform
        .check_config(network, &config)
        .with_context(|| format!("network {:?} with {}'s settings merged", entry.name, local.networks.origin()))?;
    let chain_key = local.networks.chain_key(&entry.name).or_else(|| local.chain_key.map(Path::to_path_buf));
    if let Some(path) = &chain_key {
        seed_file(path, "a chain key")?;
    }
    let chain_key_given = chain_key.is_some();
    let credentials = Credentials {
        party_key: Some(key.clone()),
        chain_key_file: chain_key,
        tls_dir: Some(tls_dir.to_path_buf()),
        name: Some(name.to_owned()),
        notary_signer: None,
    };
    let from = match saved {
        Some(cursor) => cursor,
        None => platform.first_cursor(network, &config)?,
    };
    let follower = platform.follower(network, &config, &credentials, from).await?;
    let listed = platform.keeper_account(network, &config, key.public())?;
    let keeper = match platform.submitter(network, &config, &credentials).await {
        Ok(submitter) if listed == Some(submitter.account()) => Some(submitter),
        Ok(submitter) => anyhow::bail!(
            "the key is {}'s, but the directory names {} as network {network}'s keeper",
            submitter.account(),
            listed.map_or_else(|| "no account".to_owned(), |account| platform.format_address(&account))
        ),
        // Without its key the gateway follows and records, and keeps nothing.
        Err(error) if error.kind == interlock_chain::ChainErrorKind::Fatal && !chain_key_given => None,
        Err(error) => return Err(error.into()),
    };
    let relay = if platform.capabilities().relayed {
        let node = interlock_ledger_node::LedgerConfig::from_value(network, &config)?.node;
        Relay::Node(LedgerNodeClient::new(lazy_channel(&node, tls)?))
    } else {
        Relay::Direct { endpoint: format!("the {} node its directory entry names", entry.platform) }
    };
    Ok(Chain { follower, keeper, relay, platform: platform.name().to_owned(), capabilities: platform.capabilities() })
}
