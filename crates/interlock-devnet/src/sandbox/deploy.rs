//! What `sandbox up` writes and starts: the certificates, every process's
//! key, the signed directory, each process's config file (`<name>.toml`,
//! which it starts with and nothing else); then it waits for them to listen
//! and funds the parties.

use super::{
    free_port, party_key, save, spawn, tls_channel, wait_listening, ChainState, InProcess, NetworkKind, PortsLock,
    Process, State, Topology, BUYER_USD, DEPENDENT, OBSERVER, PARTIES, ROLES_LOG, SELLER_GOLD, STATE_FILE,
};
use crate::setup::{code, seed_file, ALPHA, BETA};
use anyhow::Context as _;
use interlock_core::crypto::{NotaryKey, PartyKey};
use interlock_core::encoding::Encode;
use interlock_core::{Address, Asset, NetworkId, PartyId};
use interlock_identity::{
    CertificateAuthority, DependentEntry, Directory, GatewayEntry, LedgerEntry, NetworkEntry, NotaryEntry,
    ObserverEntry, PartyEntry, Role, SignedDirectory, Validity,
};
use interlock_ledger::{Op, Transaction};
use interlock_proto::v1;
use interlock_rpc::server::TlsFiles;
use std::collections::{BTreeMap, HashMap};
use std::path::Path;

const NOTARIES: [&str; 3] = ["n1", "n2", "n3"];
/// Webhook attempts of the sandbox's gateways: enough to ride out a
/// dependent stopped for a few minutes (`sandbox kill warranty`).
const SANDBOX_WEBHOOK_ATTEMPTS: i64 = 24;

/// The key a process keeps in `dir/<data>/<file>`, created on first use.
fn data_seed(dir: &Path, data: &str, file: &str, what: &str) -> anyhow::Result<[u8; 32]> {
    std::fs::create_dir_all(dir.join(data))?;
    seed_file(&dir.join(data).join(file), what)
}

/// Writes what the sandbox needs and starts its roles: each as a process of
/// this executable, or, given `threads`, on threads of this process.
pub(super) fn start_all(
    dir: &Path,
    manual_accept: bool,
    topology: &Topology,
    threads: Option<&InProcess>,
) -> anyhow::Result<State> {
    if dir.join(STATE_FILE).exists() {
        anyhow::bail!(
            "a sandbox is already up in {}: run `interlock sandbox down --dir {}` first",
            dir.display(),
            dir.display()
        );
    }
    for sub in ["tls", "logs", "parties"] {
        std::fs::create_dir_all(dir.join(sub))?;
    }
    let tls = dir.join("tls");
    let ca = match CertificateAuthority::load(&tls) {
        Ok(ca) => ca,
        Err(_) => CertificateAuthority::init(&tls)?,
    };
    let valid = Validity::days_from(time::OffsetDateTime::now_utc() - time::Duration::minutes(5), 30);
    let networks: Vec<(NetworkId, &str)> = topology.networks().into_iter().map(|(id, name, _)| (id, name)).collect();
    // A network that is an external chain has no ledger node of its own.
    let has_ledger = |network: NetworkId| {
        topology.networks().iter().any(|(id, _, kind)| *id == network && **kind == NetworkKind::Ledger)
    };
    let mut names: Vec<(Role, String)> = Vec::new();
    for &(id, network) in &networks {
        if has_ledger(id) {
            names.push((Role::Ledger, format!("{network}-ledger")));
        }
        names.push((Role::Gateway, format!("{network}-gateway")));
    }
    names.extend(NOTARIES.iter().map(|n| (Role::Notary, (*n).to_owned())));
    names.extend(PARTIES.iter().map(|n| (Role::Party, (*n).to_owned())));
    names.push((Role::Observer, OBSERVER.to_owned()));
    names.push((Role::Dependent, DEPENDENT.to_owned()));
    for (role, name) in &names {
        if !tls.join(format!("{name}.pem")).exists() {
            ca.issue(*role, name, &["localhost", "127.0.0.1"], valid)?.write(&tls)?;
        }
    }
    let parties: Vec<(&str, PartyKey)> =
        PARTIES.iter().map(|name| Ok((*name, party_key(dir, name)?))).collect::<anyhow::Result<_>>()?;
    let ports_lock = PortsLock::take()?;
    let mut ports = HashMap::new();
    let mut taken = std::collections::HashSet::new();
    let extra = PARTIES.iter().map(|p| format!("{p}-agent")).chain([format!("{OBSERVER}-http")]);
    for name in names.iter().map(|(_, name)| name.clone()).chain(extra) {
        ports.insert(name, free_port(&mut taken)?);
    }
    let endpoint = |name: &str| format!("127.0.0.1:{}", ports[name]);
    let mut gateway_keys = Vec::new();
    for &(network, name) in &networks {
        let seed = data_seed(dir, &format!("{name}-gateway"), "gateway.key", "an ed25519 seed")?;
        gateway_keys.push((network, PartyKey::from_seed(seed).public()));
    }
    let mut notaries = Vec::new();
    let mut notary_keys = Vec::new();
    for name in NOTARIES {
        let seed = data_seed(dir, name, "notary.key", "a secp256k1 secret key")?;
        let key = NotaryKey::from_seed(seed).context("invalid notary key")?;
        notaries.push((name, key.address()));
        notary_keys.push(key);
    }
    let observer_key = PartyKey::from_seed(data_seed(dir, OBSERVER, "observer.key", "an ed25519 seed")?).public();
    let mut chains = BTreeMap::new();
    for (id, name, kind) in topology.networks() {
        if *kind == NetworkKind::Ledger {
            continue;
        }
        match super::chains::start(dir, (id, name), kind, &mut taken) {
            Ok(chain) => chains.insert(name.to_owned(), chain),
            Err(error) => {
                stop_anvils(&chains);
                return Err(error);
            }
        };
    }
    let chain_of =
        |network: NetworkId| networks.iter().find(|(id, _)| *id == network).and_then(|(_, name)| chains.get(*name));
    let account = |name: &str, key: &PartyKey, network: NetworkId| -> anyhow::Result<Address> {
        match chain_of(network) {
            Some(chain) => chain.account(name),
            None => Ok(Address::from_bytes(key.public().0)),
        }
    };
    let mut party_entries = Vec::new();
    for (name, key) in &parties {
        let accounts =
            networks.iter().map(|(id, _)| Ok((*id, account(name, key, *id)?))).collect::<anyhow::Result<_>>()?;
        party_entries.push(PartyEntry { name: (*name).into(), key: key.public(), accounts });
    }
    let directory = Directory {
        networks: networks
            .iter()
            .map(|(id, name)| match chain_of(*id) {
                Some(chain) => Ok(NetworkEntry {
                    id: *id,
                    name: (*name).into(),
                    platform: chain.platform().into(),
                    config: chain.network_config(&notary_keys),
                }),
                None => Ok(NetworkEntry {
                    id: *id,
                    name: (*name).into(),
                    platform: "ledger".into(),
                    config: serde_json::json!({ "node": endpoint(&format!("{name}-ledger")) }),
                }),
            })
            .collect::<anyhow::Result<_>>()?,
        ledgers: networks
            .iter()
            .filter(|(id, _)| has_ledger(*id))
            .map(|(id, name)| LedgerEntry {
                name: format!("{name}-ledger"),
                network: *id,
                endpoint: endpoint(&format!("{name}-ledger")),
            })
            .collect(),
        gateways: networks
            .iter()
            .zip(&gateway_keys)
            .map(|((id, name), (_, key))| GatewayEntry {
                name: format!("{name}-gateway"),
                network: *id,
                endpoint: endpoint(&format!("{name}-gateway")),
                key: *key,
            })
            .collect(),
        notaries: notaries
            .iter()
            .map(|(name, address)| NotaryEntry { name: (*name).into(), endpoint: endpoint(name), address: *address })
            .collect(),
        parties: party_entries,
        dependents: vec![dependent_entry(dir)?],
        observers: vec![ObserverEntry { name: OBSERVER.into(), endpoint: endpoint(OBSERVER), key: observer_key }],
        links: topology.links(),
    };
    directory.check_platforms(&interlock_platforms::all())?;
    SignedDirectory::sign(directory, &ca)?.save(&dir.join("directory.json"))?;

    let launches = launches(&endpoint, &networks, &chains, manual_accept)?;
    let mut processes = Vec::new();
    for launch in launches {
        let file = format!("{}.toml", launch.name);
        let header = format!(
            "# The settings of the sandbox's {} {}, written by `interlock sandbox up`\n\
             # (docs/configuration.md). It starts as `interlock {} --config {file}`.\n",
            launch.role, launch.name, launch.role
        );
        let text = format!("{header}{}", toml::to_string(&launch.settings)?);
        std::fs::write(dir.join(&file), text).with_context(|| format!("cannot write {}", dir.join(&file).display()))?;
        let args: Vec<String> = vec![launch.role.into(), "--config".into(), file];
        let (pid, log) = match threads {
            Some(threads) => threads
                .start(dir, &launch.name, &args)
                .map(|()| (std::process::id(), dir.join("logs").join(ROLES_LOG)))?,
            None => spawn(dir, &launch.name, &args, false)?,
        };
        let address = launch.settings.get("listen").and_then(toml::Value::as_str).unwrap_or_default().to_owned();
        processes.push(Process { name: launch.name, role: launch.role.into(), address, pid, log, args });
    }
    let state = State { processes, manual_accept, chains };
    save(dir, &state)?;
    for process in &state.processes {
        match threads {
            Some(threads) => threads.wait_serving(&process.name, &process.address)?,
            None => wait_listening(&process.log, &process.name)?,
        }
    }
    drop(ports_lock);
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let keys: Vec<PartyId> =
        parties.iter().map(|(_, key)| key.public()).chain(gateway_keys.iter().map(|(_, key)| *key)).collect();
    runtime.block_on(fund(dir, &state, &networks, (&parties[0].1, &parties[1].1), &keys))?;
    Ok(state)
}

/// Stops the chains the sandbox started for `chains`: what a failed `up` leaves.
fn stop_anvils(chains: &BTreeMap<String, ChainState>) {
    for pid in chains.values().filter_map(ChainState::pid) {
        let _ = std::process::Command::new("kill").arg(pid.to_string()).status();
    }
}

/// The sample dependent in the directory, under a key kept in its data directory.
fn dependent_entry(dir: &Path) -> anyhow::Result<DependentEntry> {
    let seed = data_seed(dir, DEPENDENT, "dependent.key", "an ed25519 seed")?;
    Ok(DependentEntry { name: DEPENDENT.into(), key: PartyKey::from_seed(seed).public() })
}

/// Where the settlement roles serve their metrics: a free loopback port each,
/// which the process prints to its log (`metrics on ADDRESS`), for
/// `bench sandbox`'s per-role costs and for anyone curious.
const METRICS_ANYWHERE: &str = "127.0.0.1:0";

/// One process `up` starts, with its settings: what its config file says.
struct Launch {
    name: String,
    role: &'static str,
    settings: toml::Table,
}

impl Launch {
    /// What every role has: its data directory, address, certificates, name
    /// and the directory, paths relative to the sandbox directory (the file's).
    fn new(name: &str, role: &'static str, data: &str, listen: String) -> Launch {
        let mut settings = toml::Table::new();
        settings.insert("data".into(), data.into());
        settings.insert("listen".into(), listen.into());
        settings.insert("tls_dir".into(), "tls".into());
        settings.insert("name".into(), name.into());
        settings.insert("directory".into(), "directory.json".into());
        Launch { name: name.to_owned(), role, settings }
    }

    fn set(mut self, key: &str, value: impl Into<toml::Value>) -> Launch {
        self.settings.insert(key.into(), value.into());
        self
    }
}

/// Every process of the sandbox and its settings; `endpoint` gives each its
/// address, `chains` the networks that are external chains (by name).
fn launches(
    endpoint: &dyn Fn(&str) -> String,
    networks: &[(NetworkId, &str)],
    chains: &BTreeMap<String, ChainState>,
    manual_accept: bool,
) -> anyhow::Result<Vec<Launch>> {
    let network_id = |network: NetworkId| i64::try_from(network.0).context("a network id beyond TOML's integers");
    let mut launches = Vec::new();
    for &(network, name) in networks {
        if chains.contains_key(name) {
            continue;
        }
        let node = format!("{name}-ledger");
        // The gateways keep the networks: they cancel what expires.
        let launch = Launch::new(&node, "ledger", name, endpoint(&node)).set("network", network_id(network)?);
        launches.push(launch.set("no_keeper", true).set("metrics", METRICS_ANYWHERE));
    }
    for &(network, name) in networks {
        let gateway = format!("{name}-gateway");
        let launch =
            Launch::new(&gateway, "gateway", &gateway, endpoint(&gateway)).set("network", network_id(network)?);
        let mut launch = launch.set("webhook_attempts", SANDBOX_WEBHOOK_ATTEMPTS).set("metrics", METRICS_ANYWHERE);
        if let Some(key) = chains.get(name).and_then(ChainState::keeper_key) {
            launch = launch.set("chain_key", key);
        }
        launches.push(launch);
    }
    for name in NOTARIES {
        launches.push(Launch::new(name, "notary", name, endpoint(name)).set("metrics", METRICS_ANYWHERE));
    }
    for name in PARTIES {
        // The agent serves on its own port, under the party's certificate.
        let agent = format!("{name}-agent");
        let mut launch = Launch::new(name, "agent", &agent, endpoint(&agent)).set("key", format!("parties/{name}.key"));
        launch.name = agent;
        // A key of its own on each chain, in that network's table.
        let tables: toml::Table = chains
            .iter()
            .map(|(network, chain)| {
                let table = toml::Table::from_iter([("chain_key".to_owned(), chain.party_key(name).into())]);
                (network.clone(), toml::Value::Table(table))
            })
            .collect();
        if !tables.is_empty() {
            launch = launch.set("networks", tables);
        }
        launches.push(launch.set("auto_accept", name == "seller" && !manual_accept).set("metrics", METRICS_ANYWHERE));
    }
    let observer = Launch::new(OBSERVER, "observer", OBSERVER, endpoint(OBSERVER));
    launches.push(observer.set("http", endpoint(&format!("{OBSERVER}-http"))));
    // The sample dependent subscribes to completions at both gateways.
    let dependent = Launch::new(DEPENDENT, "dependent", DEPENDENT, endpoint(DEPENDENT));
    launches.push(dependent.set("kinds", vec![toml::Value::from("completed")]));
    Ok(launches)
}

/// Registers the parties and the gateways' keeper accounts on every ledger
/// network, and issues the buyer's USD and the seller's GOLD. The operators
/// submit to their ledger nodes directly: they run the networks.
async fn fund(
    dir: &Path,
    state: &State,
    networks: &[(NetworkId, &str)],
    (buyer, seller): (&PartyKey, &PartyKey),
    accounts: &[PartyId],
) -> anyhow::Result<()> {
    // A chain's accounts were funded when it started. The buyer's USD lives
    // on every alpha; the seller's GOLD on every beta, on alpha when beta is
    // a chain, on gamma when there is one.
    let routed = networks.iter().any(|(_, name)| *name == "gamma");
    let usd_on = |network: NetworkId, name: &str| network == ALPHA || name.starts_with("alpha-");
    let gold_on = |network: NetworkId, name: &str| match (routed, state.chain("beta").is_some()) {
        (true, _) => name == "gamma",
        (false, true) => network == ALPHA,
        (false, false) => network == BETA || name.starts_with("beta-"),
    };
    for &(network, name) in networks {
        if state.chain(name).is_some() {
            continue;
        }
        let seed = seed_file(&dir.join(name).join("operator.key"), "an ed25519 seed")?;
        let operator = PartyKey::from_seed(seed);
        let mut ops: Vec<Op> = accounts.iter().map(|account| Op::Register { account: *account }).collect();
        if usd_on(network, name) {
            ops.push(Op::Issue {
                to: Address::from_bytes(buyer.public().0),
                asset: Asset::Fungible { code: code("USD"), amount: BUYER_USD },
            });
        }
        if gold_on(network, name) {
            ops.push(Op::Issue {
                to: Address::from_bytes(seller.public().0),
                asset: Asset::Fungible { code: code("GOLD"), amount: SELLER_GOLD },
            });
        }
        let ledger = state.processes.iter().find(|p| p.name == format!("{name}-ledger")).context("no ledger node")?;
        let mut client = v1::ledger_node_client::LedgerNodeClient::new(tls_channel(
            &TlsFiles::in_dir(&dir.join("tls"), &format!("{name}-gateway")),
            &ledger.address,
        )?);
        let tip = client.get_account(v1::GetAccountRequest { account: operator.public().0.to_vec() }).await;
        let mut nonce = tip.map(|a| a.into_inner().nonce).unwrap_or(0);
        for op in ops {
            nonce += 1;
            let tx = Transaction::sign(&operator, network, nonce, op);
            let request = v1::SubmitTransactionRequest { transaction_encoded: tx.to_bytes(), wait: true };
            client.submit_transaction(request).await.with_context(|| format!("funding on {name}"))?;
        }
    }
    Ok(())
}
