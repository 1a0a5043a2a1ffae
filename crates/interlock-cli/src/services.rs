//! `interlock ca`, `interlock directory` and `interlock ledger`: the identity
//! commands and the ledger node role.

use anyhow::Context as _;
use interlock_core::crypto::PartyKey;
use interlock_core::NetworkId;
use interlock_identity::{CertificateAuthority, Directory, Role, SignedDirectory, Validity};
use interlock_ledger::{Genesis, Ledger, SqliteStore};
use interlock_node::ledger_node::{LedgerNodeService, Pace};
use interlock_node::server::{bind, serve_ledger_node, TlsFiles};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

pub fn ca_init(dir: &Path) -> anyhow::Result<()> {
    let ca = CertificateAuthority::init(dir)?;
    println!("created a certificate authority: {}", ca.certificate_path().display());
    Ok(())
}

pub fn ca_issue(
    dir: &Path,
    role: &str,
    name: &str,
    hosts: &[String],
    days: i64,
    out: Option<&Path>,
) -> anyhow::Result<()> {
    let role: Role = role.parse()?;
    let ca = CertificateAuthority::load(dir)?;
    let hosts: Vec<&str> = hosts.iter().map(String::as_str).collect();
    let validity = Validity::days_from(time::OffsetDateTime::now_utc() - time::Duration::minutes(5), days);
    let issued = ca.issue(role, name, &hosts, validity)?;
    let files = issued.write(out.unwrap_or(dir))?;
    println!(
        "issued {role} certificate for {name}: {} (key {}, mode 0600)",
        files.certificate.display(),
        files.private_key.display()
    );
    Ok(())
}

/// Signs a directory written by hand (JSON) with the CA, after validating it.
pub fn directory_sign(ca_dir: &Path, input: &Path, output: &Path) -> anyhow::Result<()> {
    let ca = CertificateAuthority::load(ca_dir)?;
    let text = std::fs::read(input).with_context(|| format!("cannot read {}", input.display()))?;
    let directory: Directory =
        serde_json::from_slice(&text).with_context(|| format!("{} is not a valid directory", input.display()))?;
    SignedDirectory::sign(directory, &ca)?.save(output)?;
    println!("signed directory written to {}", output.display());
    Ok(())
}

/// Reads the operator key, or creates one (mode 0600) on first start.
fn operator_key(path: &Path) -> anyhow::Result<PartyKey> {
    if path.exists() {
        let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
        let bytes = interlock_core::hash::from_hex(text.trim())
            .filter(|b| b.len() == 32)
            .with_context(|| format!("{} must hold 64 hex digits (an ed25519 seed)", path.display()))?;
        return Ok(PartyKey::from_seed(bytes.try_into().expect("checked length")));
    }
    let key = PartyKey::from_seed(crate::setup::random_bytes()?);
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode_0600()
        .open(path)
        .with_context(|| format!("cannot create {}", path.display()))?;
    writeln!(file, "{}", interlock_core::hash::to_hex(&key.seed()))?;
    Ok(key)
}

trait CreateMode {
    fn mode_0600(&mut self) -> &mut Self;
}

impl CreateMode for std::fs::OpenOptions {
    fn mode_0600(&mut self) -> &mut Self {
        use std::os::unix::fs::OpenOptionsExt as _;
        self.mode(0o600)
    }
}

pub struct LedgerServe {
    pub data: PathBuf,
    pub network: u64,
    pub listen: std::net::SocketAddr,
    pub tls_dir: PathBuf,
    pub name: String,
    pub directory: PathBuf,
}

/// Runs a ledger node until interrupted. Prints `listening on ADDRESS` once it serves.
pub fn ledger_serve(options: LedgerServe) -> anyhow::Result<()> {
    std::fs::create_dir_all(&options.data).with_context(|| format!("cannot create {}", options.data.display()))?;
    let operator = operator_key(&options.data.join("operator.key"))?;
    let tls = TlsFiles::in_dir(&options.tls_dir, &options.name);
    let ca = interlock_identity::load_certificate(&tls.ca_certificate)?;
    let directory = SignedDirectory::load_verified(&options.directory, &ca)?;
    let network = NetworkId(options.network);
    let store = SqliteStore::open(&options.data.join("ledger.sqlite"))?;
    let genesis = Genesis { network, operator: operator.public(), timestamp_ms: crate::setup::now_ms() };
    let ledger = Ledger::open(store, genesis)?;
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(async move {
        let service = LedgerNodeService::new(ledger);
        tokio::spawn(service.clone().produce(Pace::default(), crate::setup::now_ms));
        let (listener, address) = bind(options.listen).await?;
        println!(
            "listening on {address} (network {network}, operator {})",
            interlock_core::hash::to_hex(&operator.public().0)
        );
        std::io::stdout().flush()?;
        let shutdown = async {
            let _ = tokio::signal::ctrl_c().await;
        };
        serve_ledger_node(service, &tls, Arc::new(directory), listener, shutdown).await?;
        anyhow::Ok(())
    })
}
