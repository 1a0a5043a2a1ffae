//! `interlock agent`: a party's agent as its own process, and the TLS channels
//! the CLI's clients share.

use crate::settings::LocalNetworks;
use anyhow::Context as _;
use interlock_agent::{AgentConfig, AgentService, AgentStore};
use interlock_core::crypto::PartyKey;
use interlock_proto::v1::gateway_client::GatewayClient;
use interlock_proto::v1::notary_client::NotaryClient;
use interlock_rpc::server::{bind, ServiceFiles, TlsFiles};
use std::collections::HashMap;
use std::io::Write as _;
use std::path::PathBuf;
use std::sync::Arc;
use tonic::transport::Channel;

/// A lazily connected mutual-TLS channel to `endpoint` (`host:port`).
pub(crate) fn channel(tls: &TlsFiles, endpoint: &str) -> anyhow::Result<Channel> {
    Ok(interlock_rpc::server::lazy_channel(endpoint, tls)?)
}

pub struct AgentServe {
    pub data: PathBuf,
    pub key: Option<PathBuf>,
    pub listen: std::net::SocketAddr,
    pub files: ServiceFiles,
    pub auto_accept: bool,
    pub quiet: bool,
    /// How long a withdrawn deal stays in the agent's working set.
    pub withdrawn_retention_ms: u64,
    /// The party's own key on the networks where it signs itself (a 32-byte
    /// seed file), unless its settings for a network name another.
    pub chain_key: Option<PathBuf>,
    /// Its own settings for networks of the directory, merged over the directory's.
    pub networks: LocalNetworks,
}

/// Runs a party's agent until interrupted. Prints `listening on ADDRESS` once it serves.
pub fn agent_serve(options: AgentServe) -> anyhow::Result<()> {
    std::fs::create_dir_all(&options.data).with_context(|| format!("cannot create {}", options.data.display()))?;
    let key_path = options.key.clone().unwrap_or_else(|| options.data.join("party.key"));
    let key = PartyKey::from_seed(crate::services::seed_file(&key_path, "an ed25519 seed")?);
    let tls = options.files.tls();
    let directory = Arc::new(options.files.directory()?);
    options.networks.check_names(directory.networks.iter(), "of the directory")?;
    let store = AgentStore::open(&options.data.join("agent.sqlite"))?;
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(async move {
        let mut gateways = HashMap::new();
        for gateway in &directory.gateways {
            gateways.insert(gateway.network, GatewayClient::new(channel(&tls, &gateway.endpoint)?));
        }
        let notaries = directory
            .notaries
            .iter()
            .map(|notary| channel(&tls, &notary.endpoint).map(NotaryClient::new))
            .collect::<anyhow::Result<Vec<_>>>()?;
        let (keepers, timings) = network_facts(&directory, &options.networks)?;
        let signer: Arc<dyn interlock_chain::NotarySigner> =
            Arc::new(interlock_agent::RemoteNotaries::new(notaries.clone()));
        let config = AgentConfig {
            party: options.files.name.clone(),
            key,
            directory: directory.clone(),
            gateways,
            notaries,
            store,
            clock: crate::setup::now_ms,
            auto_accept: options.auto_accept,
            verbose: !options.quiet,
            submitters: chain_submitters(&directory, &options.files.name, &options, signer).await?,
            keepers,
            timings,
            withdrawn_retention_ms: options.withdrawn_retention_ms,
        };
        let service = AgentService::start(config)?;
        let (listener, address) = bind(options.listen).await?;
        println!(
            "listening on {address} (agent of party {}{})",
            options.files.name,
            if options.auto_accept { ", accepting proposals automatically" } else { "" }
        );
        std::io::stdout().flush()?;
        let shutdown = async {
            let _ = tokio::signal::ctrl_c().await;
        };
        interlock_agent::serve(service, &tls, directory, listener, shutdown).await?;
        anyhow::Ok(())
    })
}

/// The party's own submitter on every network whose parties send to the chain
/// themselves (their platform relays nothing through the gateway), signing with
/// the chain key its settings name for that network (or for all), whose
/// account must be the party's listed one there. Its notary spends there, on
/// a platform whose escrow is a script, get their signatures from `signer`.
async fn chain_submitters(
    directory: &interlock_identity::Directory,
    party: &str,
    options: &AgentServe,
    signer: Arc<dyn interlock_chain::NotarySigner>,
) -> anyhow::Result<HashMap<interlock_core::NetworkId, Arc<dyn interlock_chain::Submitter>>> {
    let platforms = interlock_platforms::all();
    let mut submitters = HashMap::new();
    let entry = directory.party(party).with_context(|| format!("party {party:?} is not in the directory"))?;
    for network in &directory.networks {
        let platform = network.platform_in(&platforms)?;
        let Some(listed) = entry.account(network.id) else { continue };
        if platform.capabilities().relayed {
            continue;
        }
        let path = options.networks.chain_key(&network.name).or_else(|| options.chain_key.clone());
        let path = path.with_context(|| {
            format!(
                "party {party:?} trades on network {:?} (platform {}), where it signs itself: pass {} FILE (its chain \
                 key), or set `chain_key` in the agent's config file (for every such network) or in its [networks.{}] table",
                network.name,
                network.platform,
                crate::CHAIN_KEY_FLAG,
                network.name
            )
        })?;
        crate::services::seed_file(&path, "a chain key")?;
        let config = network_config(network, &options.networks, platform.as_ref())?;
        let credentials = interlock_chain::Credentials {
            chain_key_file: Some(path.clone()),
            notary_signer: Some(signer.clone()),
            ..Default::default()
        };
        let submitter = platform.submitter(network.id, &config, &credentials).await?;
        if listed != submitter.account() {
            anyhow::bail!(
                "{} is the key of {}, but the directory lists {} as {party:?}'s account on {:?}",
                path.display(),
                platform.format_address(&submitter.account()),
                platform.format_address(&listed),
                network.name
            );
        }
        submitters.insert(network.id, submitter);
    }
    Ok(submitters)
}

/// `network`'s configuration with the agent's own settings for it merged
/// over the directory's, as its platform checks it.
fn network_config(
    network: &interlock_identity::NetworkEntry,
    local: &LocalNetworks,
    platform: &dyn interlock_chain::Platform,
) -> anyhow::Result<serde_json::Value> {
    let config = local.config(network)?;
    platform
        .check_config(network.id, &config)
        .with_context(|| format!("network {:?} with {}'s settings merged", network.name, local.origin()))?;
    Ok(config)
}

/// What the agent reads of each network through its platform (with this
/// agent's own settings over the directory's config): the account its
/// gateway keeps deals with, and how fast its chain moves.
type NetworkFacts = (
    HashMap<interlock_core::NetworkId, interlock_core::Address>,
    HashMap<interlock_core::NetworkId, interlock_core::NetworkTiming>,
);

/// What the notaries sign for a spend on each network whose escrow takes
/// their signatures over it (a script platform's), from the directory.
pub(crate) fn spend_digests(
    directory: &interlock_identity::Directory,
) -> anyhow::Result<HashMap<interlock_core::NetworkId, interlock_chain::SpendDigest>> {
    let platforms = interlock_platforms::all();
    let mut digests = HashMap::new();
    for network in &directory.networks {
        let platform = network.platform_in(&platforms)?;
        let config = network_config(network, &LocalNetworks::default(), platform.as_ref())?;
        if let Some(digest) = platform.spend_digest(network.id, &config)? {
            digests.insert(network.id, digest);
        }
    }
    Ok(digests)
}

pub(crate) fn network_facts(
    directory: &interlock_identity::Directory,
    local: &LocalNetworks,
) -> anyhow::Result<NetworkFacts> {
    let platforms = interlock_platforms::all();
    let (mut keepers, mut timings) = (HashMap::new(), HashMap::new());
    for network in &directory.networks {
        let platform = network.platform_in(&platforms)?;
        let config = network_config(network, local, platform.as_ref())?;
        timings.insert(network.id, platform.timing(network.id, &config)?);
        for gateway in directory.gateways.iter().filter(|gateway| gateway.network == network.id) {
            if let Some(account) = platform.keeper_account(network.id, &config, gateway.key)? {
                keepers.insert(network.id, account);
            }
        }
    }
    Ok((keepers, timings))
}
