//! `interlock config check`: a role's config file, parsed and merged as the
//! role would merge it, without starting anything.

use crate::settings::{self, LocalNetworks, RoleSettings};
use anyhow::Context as _;
use interlock_identity::{NetworkEntry, SignedDirectory};
use interlock_rpc::server::TlsFiles;
use serde::Serialize;
use std::path::Path;

/// The roles that read a config file.
#[derive(Clone, Copy, clap::ValueEnum)]
pub enum Role {
    Ledger,
    Gateway,
    Notary,
    Observer,
    Agent,
    Dependent,
}

/// What a file's `[networks.<name>]` table makes of a network.
#[derive(Serialize)]
struct MergedNetwork {
    name: String,
    platform: String,
    /// The directory's configuration with the file's keys over it: what the
    /// role hands its platform.
    config: serde_json::Value,
    #[serde(skip_serializing_if = "Option::is_none")]
    chain_key: Option<String>,
}

/// Prints the effective settings of `role` from the file at `path`, or fails
/// saying what is wrong.
pub fn check(role: Role, path: &Path, json: bool) -> anyhow::Result<()> {
    let (name, settings, networks) = match role {
        Role::Ledger => plain(path, settings::LedgerArgs::resolve)?,
        Role::Notary => plain(path, settings::NotaryArgs::resolve)?,
        Role::Observer => plain(path, settings::ObserverArgs::resolve)?,
        Role::Dependent => plain(path, settings::DependentArgs::resolve)?,
        Role::Gateway => {
            let settings: settings::GatewayArgs = settings::read(path)?;
            let settings = settings.with_defaults();
            let options = settings.clone().resolve()?;
            let scope = Scope::Only(options.network);
            let place = Place { directory: &options.directory, tls_dir: &options.tls_dir, name: &options.name };
            let networks = merge_networks(&options.networks, &place, scope)?;
            (settings::GatewayArgs::ROLE, toml::Value::try_from(&settings)?, networks)
        }
        Role::Agent => {
            let settings: settings::AgentArgs = settings::read(path)?;
            let settings = settings.with_defaults();
            let options = settings.clone().resolve()?;
            let place = Place { directory: &options.directory, tls_dir: &options.tls_dir, name: &options.name };
            let networks = merge_networks(&options.networks, &place, Scope::All)?;
            (settings::AgentArgs::ROLE, toml::Value::try_from(&settings)?, networks)
        }
    };
    if json {
        let report = serde_json::json!({ "role": name, "settings": settings, "networks": networks });
        println!("{report}");
        return Ok(());
    }
    println!("{}: the {name}'s settings are complete; with no flags they are:", path.display());
    print!("{}", toml::to_string(&settings)?);
    for network in &networks {
        println!(
            "network {:?} (platform {}): the directory's configuration with this file's keys over it:\n  {}",
            network.name, network.platform, network.config
        );
        if let Some(key) = &network.chain_key {
            println!("  signing there with {key}");
        }
    }
    Ok(())
}

/// A role without network tables: its settings, resolved to prove them whole.
fn plain<T: RoleSettings, R>(
    path: &Path,
    resolve: impl FnOnce(T) -> Result<R, settings::SettingsError>,
) -> anyhow::Result<(&'static str, toml::Value, Vec<MergedNetwork>)> {
    let settings: T = settings::read(path)?;
    let settings = settings.with_defaults();
    resolve(settings.clone())?;
    Ok((T::ROLE, toml::Value::try_from(&settings)?, Vec::new()))
}

/// Where a role finds the signed directory and the CA that signed it.
struct Place<'a> {
    directory: &'a Path,
    tls_dir: &'a Path,
    name: &'a str,
}

/// Which networks a file may have tables for.
enum Scope {
    /// A gateway's: only the one it fronts.
    Only(u64),
    /// Any network of the directory.
    All,
}

/// The configuration each table of the file makes of its network, checked by
/// the network's platform. Reads the directory only when there are tables.
fn merge_networks(local: &LocalNetworks, place: &Place<'_>, scope: Scope) -> anyhow::Result<Vec<MergedNetwork>> {
    if local.is_empty() {
        return Ok(Vec::new());
    }
    let tls = TlsFiles::in_dir(place.tls_dir, place.name);
    let ca = interlock_identity::load_certificate(&tls.ca_certificate).with_context(|| {
        format!("merging [networks.*] needs the CA that signed the directory, in {}", tls.ca_certificate.display())
    })?;
    let directory = SignedDirectory::load_verified(place.directory, &ca)?;
    let entries: Vec<&NetworkEntry> = match scope {
        Scope::Only(id) => directory.networks.iter().filter(|entry| entry.id.0 == id).collect(),
        Scope::All => directory.networks.iter().collect(),
    };
    let described = match scope {
        Scope::Only(_) => "this gateway fronts",
        Scope::All => "of the directory",
    };
    local.check_names(entries.iter().copied(), described)?;
    let platforms = interlock_platforms::all();
    let mut merged = Vec::new();
    for entry in entries.into_iter().filter(|entry| local.names().any(|name| name == entry.name)) {
        let config = local.config(entry)?;
        let platform = entry.platform_in(&platforms)?;
        platform
            .check_config(entry.id, &config)
            .with_context(|| format!("network {:?} with {}'s settings merged", entry.name, local.origin()))?;
        let chain_key = local.chain_key(&entry.name).map(|path| path.display().to_string());
        merged.push(MergedNetwork { name: entry.name.clone(), platform: entry.platform.clone(), config, chain_key });
    }
    Ok(merged)
}
