//! The settings of each service role: its flags and the keys of its config
//! file, one struct for both. A field the file may give is an `Option` (or a
//! flag that is off unless given); actions that are no settings (`--print-key`,
//! `--dead-letters`) are flags only.

use super::{over_file, rebase, required, within, LocalNetworks, Over, RoleSettings, SettingsError};
use crate::agent_cmd::AgentServe;
use crate::gateway_cmd::GatewayServe;
use crate::observer_cmd::ObserverServe;
use crate::services::{LedgerServe, NotaryServe};
use interlock_devnet::dependent::DependentServe;
use interlock_rpc::server::ServiceFiles;
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

const LEDGER_LISTEN_DEFAULT: &str = "127.0.0.1:7101";
const NOTARY_LISTEN_DEFAULT: &str = "127.0.0.1:7201";
const GATEWAY_LISTEN_DEFAULT: &str = "127.0.0.1:7301";
const AGENT_LISTEN_DEFAULT: &str = "127.0.0.1:7401";
const DEPENDENT_LISTEN_DEFAULT: &str = "127.0.0.1:7501";
const OBSERVER_LISTEN_DEFAULT: &str = "127.0.0.1:7601";
const OBSERVER_HTTP_DEFAULT: &str = "127.0.0.1:7680";

pub const WEBHOOK_BASE_MS_DEFAULT: u64 = 200;
pub const WEBHOOK_BASE_MS_MAX: u64 = 3_600_000;
pub const WEBHOOK_CAP_MS_DEFAULT: u64 = 10_000;
pub const WEBHOOK_CAP_MS_MAX: u64 = 86_400_000;
pub const WEBHOOK_ATTEMPTS_DEFAULT: u64 = 8;
pub const WEBHOOK_ATTEMPTS_MAX: u64 = interlock_gateway::webhook::ATTEMPTS_MAX as u64;
pub const WEBHOOK_TIMEOUT_MS_DEFAULT: u64 = 5_000;
pub const WEBHOOK_TIMEOUT_MS_MAX: u64 = 600_000;
/// The agent's `keep_withdrawn` unless given: its default retention.
pub const KEEP_WITHDRAWN_DEFAULT_S: u64 = interlock_agent::WITHDRAWN_RETENTION_DEFAULT_MS / 1_000;
/// The agent's `keep_withdrawn`: up to a year.
pub const KEEP_WITHDRAWN_MAX_S: u64 = 31_536_000;

fn address(text: &str) -> SocketAddr {
    text.parse().expect("the default addresses parse")
}

/// The data directory, which every role needs.
fn data_dir(data: Option<PathBuf>, role: &'static str) -> Result<PathBuf, SettingsError> {
    required(data, role, "a data directory", "--data DIR", "data")
}

/// The role's certificates' directory, its name (as its certificate and the
/// directory state it) and the CA-signed directory file.
fn files(
    tls_dir: Option<PathBuf>,
    (name, what, flag): (Option<String>, &'static str, &'static str),
    directory: Option<PathBuf>,
    role: &'static str,
) -> Result<ServiceFiles, SettingsError> {
    Ok(ServiceFiles {
        tls_dir: required(tls_dir, role, "its certificates", "--tls-dir DIR", "tls_dir")?,
        name: required(name, role, what, flag, "name")?,
        directory: required(directory, role, "the signed directory", "--directory FILE", "directory")?,
    })
}

/// A ledger node's settings.
#[derive(clap::Args, Serialize, Deserialize, Clone, Default, Debug)]
#[serde(default, deny_unknown_fields)]
pub struct LedgerArgs {
    /// A TOML file of these settings, keys named as the flags (e.g. `network =
    /// 1`, `tls_dir = "tls"`); a flag given too wins over the file.
    #[arg(long, value_name = "FILE")]
    #[serde(skip)]
    pub config: Option<PathBuf>,
    /// The node's data directory (ledger.sqlite, operator.key); created on first start.
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// The network id this ledger sequences.
    #[arg(long)]
    pub network: Option<u64>,
    /// Address to listen on; port 0 picks a free port (printed on start). Default: 127.0.0.1:7101.
    #[arg(long)]
    pub listen: Option<SocketAddr>,
    /// Directory holding ca.pem and the node's <name>.pem / <name>.key.
    #[arg(long)]
    pub tls_dir: Option<PathBuf>,
    /// The node's name, as its certificate and the directory state it.
    #[arg(long)]
    pub name: Option<String>,
    /// The CA-signed directory file.
    #[arg(long)]
    pub directory: Option<PathBuf>,
    /// Serve Prometheus metrics on http://ADDR/metrics. Prints `metrics on ADDR` to stderr.
    #[arg(long, value_name = "ADDR")]
    pub metrics: Option<SocketAddr>,
    /// Do not cancel expired reservations with the operator's key (leave it
    /// to the network's gateway).
    #[arg(long)]
    pub no_keeper: bool,
}

impl RoleSettings for LedgerArgs {
    const ROLE: &'static str = "ledger node";

    over_file! {
        merged: [data, network, listen, tls_dir, name, directory, metrics, no_keeper],
        flags_only: [],
        file_only: [],
    }

    fn loaded_from(&mut self, _file: &Path, base: &Path) {
        rebase(base, [&mut self.data, &mut self.tls_dir, &mut self.directory]);
    }

    fn with_defaults(mut self) -> LedgerArgs {
        self.listen = self.listen.or(Some(address(LEDGER_LISTEN_DEFAULT)));
        self
    }
}

impl LedgerArgs {
    pub fn resolve(self) -> Result<LedgerServe, SettingsError> {
        let role = Self::ROLE;
        Ok(LedgerServe {
            data: data_dir(self.data, role)?,
            network: required(self.network, role, "its network id", "--network ID", "network")?,
            listen: self.listen.unwrap_or_else(|| address(LEDGER_LISTEN_DEFAULT)),
            files: files(self.tls_dir, (self.name, "its name", "--name NAME"), self.directory, role)?,
            keeper: !self.no_keeper,
        })
    }
}

/// A notary's settings.
#[derive(clap::Args, Serialize, Deserialize, Clone, Default, Debug)]
#[serde(default, deny_unknown_fields)]
pub struct NotaryArgs {
    /// A TOML file of these settings, keys named as the flags (e.g. `name =
    /// "n1"`, `tls_dir = "tls"`); a flag given too wins over the file.
    #[arg(long, value_name = "FILE")]
    #[serde(skip)]
    pub config: Option<PathBuf>,
    /// The notary's data directory (notary.key, notary.sqlite); created on first start.
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// Print the notary's address (for the directory) and exit.
    #[arg(long)]
    #[serde(skip)]
    pub print_address: bool,
    /// Address to listen on; port 0 picks a free port (printed on start). Default: 127.0.0.1:7201.
    #[arg(long)]
    pub listen: Option<SocketAddr>,
    /// Directory holding ca.pem and the notary's <name>.pem / <name>.key.
    #[arg(long)]
    pub tls_dir: Option<PathBuf>,
    /// The notary's name, as its certificate and the directory state it.
    #[arg(long)]
    pub name: Option<String>,
    /// The CA-signed directory file.
    #[arg(long)]
    pub directory: Option<PathBuf>,
    /// Serve Prometheus metrics on http://ADDR/metrics. Prints `metrics on ADDR` to stderr.
    #[arg(long, value_name = "ADDR")]
    pub metrics: Option<SocketAddr>,
}

impl RoleSettings for NotaryArgs {
    const ROLE: &'static str = "notary";

    over_file! {
        merged: [data, listen, tls_dir, name, directory, metrics],
        flags_only: [print_address],
        file_only: [],
    }

    fn loaded_from(&mut self, _file: &Path, base: &Path) {
        rebase(base, [&mut self.data, &mut self.tls_dir, &mut self.directory]);
    }

    fn with_defaults(mut self) -> NotaryArgs {
        self.listen = self.listen.or(Some(address(NOTARY_LISTEN_DEFAULT)));
        self
    }
}

impl NotaryArgs {
    /// The data directory, all that `--print-address` needs.
    pub fn data(&self) -> Result<PathBuf, SettingsError> {
        data_dir(self.data.clone(), Self::ROLE)
    }

    pub fn resolve(self) -> Result<NotaryServe, SettingsError> {
        let role = Self::ROLE;
        Ok(NotaryServe {
            data: self.data()?,
            listen: self.listen.unwrap_or_else(|| address(NOTARY_LISTEN_DEFAULT)),
            files: files(self.tls_dir, (self.name, "its name", "--name NAME"), self.directory, role)?,
        })
    }
}

/// A gateway's settings.
#[derive(clap::Args, Serialize, Deserialize, Clone, Default, Debug)]
#[serde(default, deny_unknown_fields)]
pub struct GatewayArgs {
    /// A TOML file of these settings, keys named as the flags (e.g. `network =
    /// 1`, `webhook_attempts = 24`), and `[networks.<name>]` tables merged over
    /// the directory's configuration of that network for this gateway (e.g.
    /// its own node endpoint); a flag given too wins over the file.
    #[arg(long, value_name = "FILE")]
    #[serde(skip)]
    pub config: Option<PathBuf>,
    /// The gateway's data directory (gateway.key, gateway.sqlite); created on first start.
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// Print the gateway's public key (for the directory and its account) and exit.
    #[arg(long)]
    #[serde(skip)]
    pub print_key: bool,
    /// Print the webhook deliveries given up after their last attempt and exit.
    #[arg(long)]
    #[serde(skip)]
    pub dead_letters: bool,
    /// With --dead-letters: one JSON object {"dead_letters": [...]}.
    #[arg(long, requires = "dead_letters")]
    #[serde(skip)]
    pub json: bool,
    /// Webhooks: the first retry waits up to this long, each later one up
    /// to twice as long as the one before (full jitter) ... Default: 200.
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=WEBHOOK_BASE_MS_MAX))]
    pub webhook_base_ms: Option<u64>,
    /// ... but never longer than this. Default: 10000.
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=WEBHOOK_CAP_MS_MAX))]
    pub webhook_cap_ms: Option<u64>,
    /// Attempts per webhook before it becomes a dead letter. Default: 8.
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=WEBHOOK_ATTEMPTS_MAX))]
    pub webhook_attempts: Option<u64>,
    /// Longest one webhook POST may take. Default: 5000.
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=WEBHOOK_TIMEOUT_MS_MAX))]
    pub webhook_timeout_ms: Option<u64>,
    /// The network this gateway fronts; its node is the directory's entry for it.
    #[arg(long)]
    pub network: Option<u64>,
    /// Address to listen on; port 0 picks a free port (printed on start). Default: 127.0.0.1:7301.
    #[arg(long)]
    pub listen: Option<SocketAddr>,
    /// Directory holding ca.pem and the gateway's <name>.pem / <name>.key.
    #[arg(long)]
    pub tls_dir: Option<PathBuf>,
    /// The gateway's name, as its certificate and the directory state it.
    #[arg(long)]
    pub name: Option<String>,
    /// The CA-signed directory file.
    #[arg(long)]
    pub directory: Option<PathBuf>,
    /// Serve Prometheus metrics on http://ADDR/metrics. Prints `metrics on ADDR` to stderr.
    #[arg(long, value_name = "ADDR")]
    pub metrics: Option<SocketAddr>,
    // Its flag and help name the platform, so main.rs holds them.
    #[arg(long = crate::CHAIN_KEY_LONG, value_name = "FILE", help = crate::GATEWAY_CHAIN_KEY_HELP)]
    pub chain_key: Option<PathBuf>,
    /// `[networks.<name>]`: this gateway's own settings for its network.
    #[arg(skip)]
    #[serde(skip_serializing_if = "LocalNetworks::is_empty")]
    pub networks: LocalNetworks,
}

impl RoleSettings for GatewayArgs {
    const ROLE: &'static str = "gateway";

    over_file! {
        merged: [
            data, webhook_base_ms, webhook_cap_ms, webhook_attempts, webhook_timeout_ms,
            network, listen, tls_dir, name, directory, metrics, chain_key,
        ],
        flags_only: [print_key, dead_letters, json],
        // Only a file has network tables.
        file_only: [networks],
    }

    fn loaded_from(&mut self, file: &Path, base: &Path) {
        rebase(base, [&mut self.data, &mut self.tls_dir, &mut self.directory, &mut self.chain_key]);
        self.networks.loaded_from(file, base);
    }

    fn with_defaults(mut self) -> GatewayArgs {
        self.listen = self.listen.or(Some(address(GATEWAY_LISTEN_DEFAULT)));
        self.webhook_base_ms = self.webhook_base_ms.or(Some(WEBHOOK_BASE_MS_DEFAULT));
        self.webhook_cap_ms = self.webhook_cap_ms.or(Some(WEBHOOK_CAP_MS_DEFAULT));
        self.webhook_attempts = self.webhook_attempts.or(Some(WEBHOOK_ATTEMPTS_DEFAULT));
        self.webhook_timeout_ms = self.webhook_timeout_ms.or(Some(WEBHOOK_TIMEOUT_MS_DEFAULT));
        self
    }
}

impl GatewayArgs {
    /// The data directory, all that `--print-key` and `--dead-letters` need.
    pub fn data(&self) -> Result<PathBuf, SettingsError> {
        data_dir(self.data.clone(), Self::ROLE)
    }

    pub fn resolve(self) -> Result<GatewayServe, SettingsError> {
        let role = Self::ROLE;
        let millis = |value: Option<u64>, default: u64, max: u64, flag, key| {
            within(value.unwrap_or(default), 1..=max, role, flag, key).map(Duration::from_millis)
        };
        let attempts = self.webhook_attempts.unwrap_or(WEBHOOK_ATTEMPTS_DEFAULT);
        let attempts = within(attempts, 1..=WEBHOOK_ATTEMPTS_MAX, role, "--webhook-attempts", "webhook_attempts")?;
        let webhooks = interlock_gateway::WebhookPolicy {
            base: millis(
                self.webhook_base_ms,
                WEBHOOK_BASE_MS_DEFAULT,
                WEBHOOK_BASE_MS_MAX,
                "--webhook-base-ms",
                "webhook_base_ms",
            )?,
            cap: millis(
                self.webhook_cap_ms,
                WEBHOOK_CAP_MS_DEFAULT,
                WEBHOOK_CAP_MS_MAX,
                "--webhook-cap-ms",
                "webhook_cap_ms",
            )?,
            attempts: u32::try_from(attempts).expect("at most WEBHOOK_ATTEMPTS_MAX"),
            timeout: millis(
                self.webhook_timeout_ms,
                WEBHOOK_TIMEOUT_MS_DEFAULT,
                WEBHOOK_TIMEOUT_MS_MAX,
                "--webhook-timeout-ms",
                "webhook_timeout_ms",
            )?,
        };
        self.networks.check()?;
        Ok(GatewayServe {
            data: self.data()?,
            network: required(self.network, role, "the network it fronts", "--network ID", "network")?,
            listen: self.listen.unwrap_or_else(|| address(GATEWAY_LISTEN_DEFAULT)),
            files: files(self.tls_dir, (self.name, "its name", "--name NAME"), self.directory, role)?,
            webhooks,
            chain_key: self.chain_key,
            networks: self.networks,
        })
    }
}

/// An observer's settings.
#[derive(clap::Args, Serialize, Deserialize, Clone, Default, Debug)]
#[serde(default, deny_unknown_fields)]
pub struct ObserverArgs {
    /// A TOML file of these settings, keys named as the flags (e.g. `http =
    /// "127.0.0.1:7680"`); a flag given too wins over the file.
    #[arg(long, value_name = "FILE")]
    #[serde(skip)]
    pub config: Option<PathBuf>,
    /// The observer's data directory (observer.key, observer.sqlite); created on first start.
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// Print the observer's public key (for the directory) and exit.
    #[arg(long)]
    #[serde(skip)]
    pub print_key: bool,
    /// Address of the gRPC service; port 0 picks a free port (printed on start). Default: 127.0.0.1:7601.
    #[arg(long)]
    pub listen: Option<SocketAddr>,
    /// Address of the web page (plain HTTP: keep it on loopback or behind a
    /// proxy). Default: 127.0.0.1:7680.
    #[arg(long)]
    pub http: Option<SocketAddr>,
    /// Directory holding ca.pem and the observer's <name>.pem / <name>.key.
    #[arg(long)]
    pub tls_dir: Option<PathBuf>,
    /// The observer's name, as its certificate and the directory state it.
    #[arg(long)]
    pub name: Option<String>,
    /// The CA-signed directory file.
    #[arg(long)]
    pub directory: Option<PathBuf>,
}

impl RoleSettings for ObserverArgs {
    const ROLE: &'static str = "observer";

    over_file! {
        merged: [data, listen, http, tls_dir, name, directory],
        flags_only: [print_key],
        file_only: [],
    }

    fn loaded_from(&mut self, _file: &Path, base: &Path) {
        rebase(base, [&mut self.data, &mut self.tls_dir, &mut self.directory]);
    }

    fn with_defaults(mut self) -> ObserverArgs {
        self.listen = self.listen.or(Some(address(OBSERVER_LISTEN_DEFAULT)));
        self.http = self.http.or(Some(address(OBSERVER_HTTP_DEFAULT)));
        self
    }
}

impl ObserverArgs {
    /// The data directory, all that `--print-key` needs.
    pub fn data(&self) -> Result<PathBuf, SettingsError> {
        data_dir(self.data.clone(), Self::ROLE)
    }

    pub fn resolve(self) -> Result<ObserverServe, SettingsError> {
        let role = Self::ROLE;
        Ok(ObserverServe {
            data: self.data()?,
            listen: self.listen.unwrap_or_else(|| address(OBSERVER_LISTEN_DEFAULT)),
            http: self.http.unwrap_or_else(|| address(OBSERVER_HTTP_DEFAULT)),
            files: files(self.tls_dir, (self.name, "its name", "--name NAME"), self.directory, role)?,
        })
    }
}

/// The sample dependent's settings.
#[derive(clap::Args, Serialize, Deserialize, Clone, Default, Debug)]
#[serde(default, deny_unknown_fields)]
pub struct DependentArgs {
    /// A TOML file of these settings, keys named as the flags (e.g. `kinds =
    /// ["completed"]` for --kind); a flag given too wins over the file.
    #[arg(long, value_name = "FILE")]
    #[serde(skip)]
    pub config: Option<PathBuf>,
    /// Its data directory (webhook.secret, dependent.sqlite); created on first start.
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// Address to serve HTTP on; port 0 picks a free port (printed on start). Default: 127.0.0.1:7501.
    #[arg(long)]
    pub listen: Option<SocketAddr>,
    /// Directory holding ca.pem and the dependent's <name>.pem / <name>.key.
    #[arg(long)]
    pub tls_dir: Option<PathBuf>,
    /// Its name, as its certificate and the directory's dependents state it.
    #[arg(long)]
    pub name: Option<String>,
    /// The CA-signed directory file.
    #[arg(long)]
    pub directory: Option<PathBuf>,
    /// The URL the gateways POST to (default: http://LISTEN/webhook).
    #[arg(long)]
    pub url: Option<String>,
    /// An event kind to subscribe to (repeatable; default: every kind). Key: `kinds`, a list.
    #[arg(long = "kind")]
    pub kinds: Vec<String>,
}

impl RoleSettings for DependentArgs {
    const ROLE: &'static str = "dependent";

    over_file! {
        merged: [data, listen, tls_dir, name, directory, url, kinds],
        flags_only: [],
        file_only: [],
    }

    fn loaded_from(&mut self, _file: &Path, base: &Path) {
        rebase(base, [&mut self.data, &mut self.tls_dir, &mut self.directory]);
    }

    fn with_defaults(mut self) -> DependentArgs {
        self.listen = self.listen.or(Some(address(DEPENDENT_LISTEN_DEFAULT)));
        self
    }
}

impl DependentArgs {
    pub fn resolve(self) -> Result<DependentServe, SettingsError> {
        let role = Self::ROLE;
        Ok(DependentServe {
            data: data_dir(self.data, role)?,
            listen: self.listen.unwrap_or_else(|| address(DEPENDENT_LISTEN_DEFAULT)),
            files: files(self.tls_dir, (self.name, "its name", "--name NAME"), self.directory, role)?,
            url: self.url,
            kinds: self.kinds,
        })
    }
}

/// A party's agent's settings.
#[derive(clap::Args, Serialize, Deserialize, Clone, Default, Debug)]
#[serde(default, deny_unknown_fields)]
pub struct AgentArgs {
    /// A TOML file of these settings, keys named as the flags (e.g. `auto_accept
    /// = true`), and `[networks.<name>]` tables merged over the directory's
    /// configuration of that network for this agent; a flag given too wins.
    #[arg(long, value_name = "FILE")]
    #[serde(skip)]
    pub config: Option<PathBuf>,
    /// The agent's data directory (agent.sqlite, and party.key unless --key); created on first start.
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// The party's ed25519 seed file (64 hex digits; created 0600 if missing). Default: DATA/party.key.
    #[arg(long)]
    pub key: Option<PathBuf>,
    /// Address to listen on; port 0 picks a free port (printed on start). Default: 127.0.0.1:7401.
    #[arg(long)]
    pub listen: Option<SocketAddr>,
    /// Directory holding ca.pem and the party's <name>.pem / <name>.key.
    #[arg(long)]
    pub tls_dir: Option<PathBuf>,
    /// The party's name, as its certificate and the directory state it.
    #[arg(long)]
    pub name: Option<String>,
    /// The CA-signed directory file.
    #[arg(long)]
    pub directory: Option<PathBuf>,
    /// Serve Prometheus metrics on http://ADDR/metrics. Prints `metrics on ADDR` to stderr.
    #[arg(long, value_name = "ADDR")]
    pub metrics: Option<SocketAddr>,
    /// Accept every valid proposal from a party of the directory without asking.
    #[arg(long)]
    pub auto_accept: bool,
    /// Do not print a line per deal step.
    #[arg(long)]
    pub quiet: bool,
    /// Seconds a withdrawn deal stays in the agent's lists before only its
    /// history (`deal status`) keeps it. Default: 86400.
    #[arg(long, value_name = "SECONDS", value_parser = clap::value_parser!(u64).range(0..=KEEP_WITHDRAWN_MAX_S))]
    pub keep_withdrawn: Option<u64>,
    // Its flag and help name the platform, so main.rs holds them.
    #[arg(long = crate::CHAIN_KEY_LONG, value_name = "FILE", help = crate::AGENT_CHAIN_KEY_HELP)]
    pub chain_key: Option<PathBuf>,
    /// `[networks.<name>]`: this agent's own settings for networks of the directory.
    #[arg(skip)]
    #[serde(skip_serializing_if = "LocalNetworks::is_empty")]
    pub networks: LocalNetworks,
}

impl RoleSettings for AgentArgs {
    const ROLE: &'static str = "agent";

    over_file! {
        merged: [data, key, listen, tls_dir, name, directory, metrics, auto_accept, quiet, keep_withdrawn, chain_key],
        flags_only: [],
        // Only a file has network tables.
        file_only: [networks],
    }

    fn loaded_from(&mut self, file: &Path, base: &Path) {
        rebase(base, [&mut self.data, &mut self.key, &mut self.tls_dir, &mut self.directory, &mut self.chain_key]);
        self.networks.loaded_from(file, base);
    }

    fn with_defaults(mut self) -> AgentArgs {
        self.listen = self.listen.or(Some(address(AGENT_LISTEN_DEFAULT)));
        self.keep_withdrawn = self.keep_withdrawn.or(Some(KEEP_WITHDRAWN_DEFAULT_S));
        self
    }
}

impl AgentArgs {
    pub fn resolve(self) -> Result<AgentServe, SettingsError> {
        let role = Self::ROLE;
        let keep_withdrawn = self.keep_withdrawn.unwrap_or(KEEP_WITHDRAWN_DEFAULT_S);
        let keep_withdrawn =
            within(keep_withdrawn, 0..=KEEP_WITHDRAWN_MAX_S, role, "--keep-withdrawn", "keep_withdrawn")?;
        self.networks.check()?;
        Ok(AgentServe {
            data: data_dir(self.data, role)?,
            key: self.key,
            listen: self.listen.unwrap_or_else(|| address(AGENT_LISTEN_DEFAULT)),
            files: files(self.tls_dir, (self.name, "its party's name", "--name PARTY"), self.directory, role)?,
            auto_accept: self.auto_accept,
            quiet: self.quiet,
            withdrawn_retention_ms: keep_withdrawn.saturating_mul(1_000),
            chain_key: self.chain_key,
            networks: self.networks,
        })
    }
}
