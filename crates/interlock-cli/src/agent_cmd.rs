//! `interlock agent`: a party's agent as its own process, and the TLS channels
//! the CLI's clients share.

use anyhow::Context as _;
use interlock_core::crypto::PartyKey;
use interlock_identity::SignedDirectory;
use interlock_node::agent::{AgentConfig, AgentService};
use interlock_node::server::{bind, TlsFiles};
use interlock_node::stores::AgentStore;
use interlock_proto::v1::gateway_client::GatewayClient;
use interlock_proto::v1::notary_client::NotaryClient;
use std::collections::HashMap;
use std::io::Write as _;
use std::path::PathBuf;
use std::sync::Arc;
use tonic::transport::Channel;

/// A lazily connected mutual-TLS channel to `endpoint` (`host:port`).
pub(crate) fn channel(tls: &TlsFiles, endpoint: &str) -> anyhow::Result<Channel> {
    Ok(interlock_node::server::lazy_channel(endpoint, tls)?)
}

pub struct AgentServe {
    pub data: PathBuf,
    pub key: Option<PathBuf>,
    pub listen: std::net::SocketAddr,
    pub tls_dir: PathBuf,
    pub name: String,
    pub directory: PathBuf,
    pub auto_accept: bool,
    pub quiet: bool,
}

/// Runs a party's agent until interrupted. Prints `listening on ADDRESS` once it serves.
pub fn agent_serve(options: AgentServe) -> anyhow::Result<()> {
    std::fs::create_dir_all(&options.data).with_context(|| format!("cannot create {}", options.data.display()))?;
    let key_path = options.key.clone().unwrap_or_else(|| options.data.join("party.key"));
    let key = PartyKey::from_seed(crate::services::seed_file(&key_path, "an ed25519 seed")?);
    let tls = TlsFiles::in_dir(&options.tls_dir, &options.name);
    let ca = interlock_identity::load_certificate(&tls.ca_certificate)?;
    let directory = Arc::new(SignedDirectory::load_verified(&options.directory, &ca)?);
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
        let config = AgentConfig {
            party: options.name.clone(),
            key,
            directory: directory.clone(),
            gateways,
            notaries,
            store,
            clock: crate::setup::now_ms,
            auto_accept: options.auto_accept,
            verbose: !options.quiet,
        };
        let service = AgentService::start(config)?;
        let (listener, address) = bind(options.listen).await?;
        println!(
            "listening on {address} (agent of party {}{})",
            options.name,
            if options.auto_accept { ", accepting proposals automatically" } else { "" }
        );
        std::io::stdout().flush()?;
        let shutdown = async {
            let _ = tokio::signal::ctrl_c().await;
        };
        interlock_node::server::serve_agent(service, &tls, directory, listener, shutdown).await?;
        anyhow::Ok(())
    })
}
