//! `interlock config check`: a role's config file, parsed and merged as the
//! role would merge it, without starting anything; and the private keys it
//! names (its TLS key, the keys in its data directory, its chain keys), each
//! readable by its owner alone (mode 0600).

use crate::settings::{self, LocalNetworks, RoleSettings};
use anyhow::Context as _;
use interlock_identity::NetworkEntry;
use interlock_rpc::server::{ServiceFiles, TlsFiles};
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
/// `Ok(false)` when the settings are whole but a key file is not private.
pub fn check(role: Role, path: &Path, json: bool) -> anyhow::Result<bool> {
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
            let networks = merge_networks(&options.networks, &options.files, scope)?;
            (settings::GatewayArgs::ROLE, toml::Value::try_from(&settings)?, networks)
        }
        Role::Agent => {
            let settings: settings::AgentArgs = settings::read(path)?;
            let settings = settings.with_defaults();
            let options = settings.clone().resolve()?;
            let networks = merge_networks(&options.networks, &options.files, Scope::All)?;
            (settings::AgentArgs::ROLE, toml::Value::try_from(&settings)?, networks)
        }
    };
    let keys = key_checks(&settings, &networks);
    let keys_ok = keys.iter().all(|key| key.passed);
    if json {
        let report = serde_json::json!({
            "role": name, "settings": settings, "networks": networks, "keys": keys, "passed": keys_ok,
        });
        println!("{report}");
        if !keys_ok {
            eprintln!("error: some key files are not private: see \"keys\"");
        }
        return Ok(keys_ok);
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
    for key in &keys {
        let mark = if key.passed { "ok  " } else { "FAIL" };
        println!("{mark} key {}: {}", key.path, key.detail);
    }
    if !keys_ok {
        eprintln!("error: some key files are not private: see FAIL above");
    }
    Ok(keys_ok)
}

/// One private key file the role reads, and whether it is fit to be one.
#[derive(Serialize)]
struct KeyCheck {
    path: String,
    passed: bool,
    detail: String,
}

/// The private keys a role's settings name: `<tls_dir>/<name>.key`, every
/// `*.key` in its data directory (made on its first start), and each
/// network's chain key.
fn key_checks(settings: &toml::Value, networks: &[MergedNetwork]) -> Vec<KeyCheck> {
    let text = |key: &str| settings.get(key).and_then(toml::Value::as_str);
    let mut paths = Vec::new();
    if let (Some(tls_dir), Some(name)) = (text("tls_dir"), text("name")) {
        paths.push(TlsFiles::in_dir(Path::new(tls_dir), name).private_key);
    }
    if let Some(data) = text("data") {
        if let Ok(entries) = std::fs::read_dir(data) {
            let mut found: Vec<_> = entries
                .filter_map(Result::ok)
                .map(|entry| entry.path())
                .filter(|path| path.extension().is_some_and(|extension| extension == "key"))
                .collect();
            found.sort();
            paths.extend(found);
        }
    }
    paths.extend(networks.iter().filter_map(|network| network.chain_key.as_ref().map(std::path::PathBuf::from)));
    paths
        .into_iter()
        .map(|path| {
            let (passed, detail) = match interlock_identity::check_private_file(&path) {
                Ok(()) => (true, "readable by its owner alone (0600)".to_owned()),
                Err(problem) => (false, problem),
            };
            KeyCheck { path: path.display().to_string(), passed, detail }
        })
        .collect()
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

/// Which networks a file may have tables for.
enum Scope {
    /// A gateway's: only the one it fronts.
    Only(u64),
    /// Any network of the directory.
    All,
}

/// The configuration each table of the file makes of its network, checked by
/// the network's platform. Reads the directory only when there are tables.
fn merge_networks(local: &LocalNetworks, files: &ServiceFiles, scope: Scope) -> anyhow::Result<Vec<MergedNetwork>> {
    if local.is_empty() {
        return Ok(Vec::new());
    }
    let directory = files.directory().with_context(|| {
        format!(
            "merging [networks.*] needs the directory {} and the CA that signed it, in {}",
            files.directory.display(),
            files.tls().ca_certificate.display()
        )
    })?;
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
