//! `interlock ca`, `interlock directory` and `interlock ledger`: the identity
//! commands and the ledger node role.

use anyhow::Context as _;
use interlock_core::crypto::PartyKey;
use interlock_core::NetworkId;
use interlock_identity::{CertificateAuthority, Directory, Role, SignedDirectory, Validity};
use interlock_ledger::{Genesis, Ledger, SqliteStore};
use interlock_ledger_node::{LedgerNodeService, Pace};
use interlock_rpc::server::{bind, ServiceFiles};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Where the role commands find the key files' reader (`crate::services::seed_file`).
pub(crate) use interlock_devnet::setup::seed_file;

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
    // Each network's configuration and accounts, as its platform reads them.
    directory.check_platforms(&interlock_platforms::all())?;
    SignedDirectory::sign(directory, &ca)?.save(output)?;
    println!("signed directory written to {}", output.display());
    Ok(())
}

fn operator_key(path: &Path) -> anyhow::Result<PartyKey> {
    Ok(PartyKey::from_seed(seed_file(path, "an ed25519 seed")?))
}

pub struct NotaryServe {
    pub data: PathBuf,
    pub listen: std::net::SocketAddr,
    pub files: ServiceFiles,
}

/// Runs a notary until interrupted. It follows every network through the
/// gateway the directory lists for it. Prints `listening on ADDRESS` once it serves.
pub fn notary_serve(options: NotaryServe) -> anyhow::Result<()> {
    use interlock_notary::NotaryService;
    use interlock_proto::v1::gateway_client::GatewayClient;
    std::fs::create_dir_all(&options.data).with_context(|| format!("cannot create {}", options.data.display()))?;
    let seed = seed_file(&options.data.join("notary.key"), "a secp256k1 secret key")?;
    let key = interlock_core::crypto::NotaryKey::from_seed(seed).with_context(|| {
        format!("{} is not a valid secp256k1 secret key", options.data.join("notary.key").display())
    })?;
    let tls = options.files.tls();
    let directory = options.files.directory()?;
    let listed = directory.notaries.iter().find(|n| n.name == options.files.name);
    match listed {
        Some(entry) if entry.address == key.address() => {}
        Some(entry) => anyhow::bail!(
            "the directory lists notary {} with address {}, but its key in {} has address {}",
            options.files.name,
            entry.address,
            options.data.display(),
            key.address()
        ),
        None => anyhow::bail!("the directory lists no notary named {}", options.files.name),
    }
    let log = interlock_notary::NotaryLog::open(&options.data.join("notary.sqlite"))?;
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(async move {
        let mut gateways = std::collections::HashMap::new();
        for gateway in &directory.gateways {
            let channel = interlock_rpc::server::lazy_channel(&gateway.endpoint, &tls)?;
            gateways.insert(gateway.network, GatewayClient::new(channel));
        }
        let networks: Vec<NetworkId> = gateways.keys().copied().collect();
        let registered = directory.parties.iter().map(|party| party.key).collect();
        let (_, timings) = crate::agent_cmd::network_facts(&directory, &Default::default())?;
        let service = NotaryService::open(key, log, gateways, registered, timings, crate::setup::now_ms)?;
        service.sign_spends_on(crate::agent_cmd::spend_digests(&directory)?);
        service.name_gateways(
            directory
                .gateways
                .iter()
                .map(|gateway| (gateway.network, format!("gateway {} at {}", gateway.name, gateway.endpoint)))
                .collect(),
        );
        // The other notaries hear each dispute this one records.
        let mut peers = Vec::new();
        for notary in &directory.notaries {
            let client = interlock_proto::v1::notary_client::NotaryClient::new(interlock_rpc::server::lazy_channel(
                &notary.endpoint,
                &tls,
            )?);
            peers.push(interlock_notary::PeerNotary { name: notary.name.clone(), address: notary.address, client });
        }
        service.pass_disputes_to(peers);
        tokio::spawn(service.clone().tick());
        for network in networks {
            tokio::spawn(service.clone().follow(network));
        }
        let (listener, address) = bind(options.listen).await?;
        println!("listening on {address} (notary {})", service.address());
        std::io::stdout().flush()?;
        let shutdown = async {
            let _ = tokio::signal::ctrl_c().await;
        };
        interlock_notary::serve(service, &tls, Arc::new(directory), listener, shutdown).await?;
        anyhow::Ok(())
    })
}

/// Prints the address of the notary key in `data` (creating the key on first
/// use), for the directory.
pub fn notary_address(data: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(data).with_context(|| format!("cannot create {}", data.display()))?;
    let seed = seed_file(&data.join("notary.key"), "a secp256k1 secret key")?;
    let key = interlock_core::crypto::NotaryKey::from_seed(seed).context("not a valid secp256k1 secret key")?;
    println!("{}", key.address());
    Ok(())
}

pub struct LedgerServe {
    pub data: PathBuf,
    pub network: u64,
    pub listen: std::net::SocketAddr,
    pub files: ServiceFiles,
    /// Cancel expired reservations with the operator's key.
    pub keeper: bool,
}

/// Runs a ledger node until interrupted. Prints `listening on ADDRESS` once it serves.
pub fn ledger_serve(options: LedgerServe) -> anyhow::Result<()> {
    std::fs::create_dir_all(&options.data).with_context(|| format!("cannot create {}", options.data.display()))?;
    let operator = operator_key(&options.data.join("operator.key"))?;
    let tls = options.files.tls();
    let directory = options.files.directory()?;
    let network = NetworkId(options.network);
    let store = SqliteStore::open(&options.data.join("ledger.sqlite"))?;
    let genesis = Genesis { network, operator: operator.public(), timestamp_ms: crate::setup::now_ms() };
    let ledger = Ledger::open(store, genesis)?;
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(async move {
        // The operator's key may also run a keeper: it cancels expired reservations.
        let service = LedgerNodeService::new(ledger);
        let service = if options.keeper { service.with_keeper(operator.clone()) } else { service };
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
        interlock_ledger_node::serve(service, &tls, Arc::new(directory), listener, shutdown).await?;
        anyhow::Ok(())
    })
}
