//! `interlock sandbox`: a multi-process deployment on loopback. `up` issues the
//! certificates, writes and signs the directory, and starts as separate OS
//! processes, each with its log: two ledger nodes (networks alpha and beta),
//! a gateway in front of each, three notaries (2 of 3) and the agents of the
//! two parties, buyer and seller, a sample dependent (a warranty service
//! receiving webhooks), and an observer that records every deal the sandbox
//! proposes and shows it on a web page. `status` shows each process and its health;
//! `deal` runs deals through the agents; `kill` and `start` stop and restart a
//! process; `down` stops them all.

use crate::agent_cmd;
use crate::services::seed_file;
use crate::setup::{code, ALPHA, BETA};
use anyhow::Context as _;
use interlock_core::crypto::{NotaryKey, PartyKey};
use interlock_core::encoding::Encode;
use interlock_core::{Address, Asset, Mode, NetworkId, PartyId};
use interlock_identity::{
    CertificateAuthority, DependentEntry, Directory, GatewayEntry, LedgerEntry, NetworkEntry, NetworkKind, NotaryEntry,
    ObserverEntry, PartyEntry, Role, SignedDirectory, Validity,
};
use interlock_ledger::{Op, Transaction};
use interlock_proto::v1;
use interlock_proto::v1::agent_client::AgentClient;
use interlock_proto::v1::gateway_client::GatewayClient;
use interlock_rpc::server::TlsFiles;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;
use tonic::transport::Channel;

const STATE_FILE: &str = "sandbox.json";
/// What `up` issues to the buyer on alpha and to the seller on beta: enough for
/// tens of thousands of the standard deal.
const BUYER_USD: u128 = 1_000_000;
const SELLER_GOLD: u128 = 1_000_000;
const NOTARIES: [&str; 3] = ["n1", "n2", "n3"];
const PARTIES: [&str; 2] = ["buyer", "seller"];
/// The sandbox's observer: its deals name it, and it serves a web page.
pub const OBSERVER: &str = "observer";
/// The sample dependent: deals that name its key are POSTed to it.
const DEPENDENT: &str = "warranty";
/// Webhook attempts of the sandbox's gateways: enough to ride out a
/// dependent stopped for a few minutes (`sandbox kill warranty`).
const SANDBOX_WEBHOOK_ATTEMPTS: &str = "24";
/// How long `up` waits for a process to say it listens.
const START_TIME_MAX: Duration = Duration::from_secs(20);
/// The standard deal: the buyer pays 25 USD on alpha for 10 GOLD on beta.
const PAYMENT: (&str, &str, &str) = ("alpha", "USD", "25");
const DELIVERY: (&str, &str, &str) = ("beta", "GOLD", "10");

#[derive(Serialize, Deserialize)]
struct Process {
    name: String,
    role: String,
    address: String,
    pid: u32,
    log: PathBuf,
    /// How it was started, to start it again.
    args: Vec<String>,
}

#[derive(Serialize, Deserialize)]
struct State {
    processes: Vec<Process>,
    /// The seller's agent waits for `interlock deal accept` instead of accepting by itself.
    #[serde(default)]
    manual_accept: bool,
    /// Set when beta is an anvil chain (`up --evm`).
    #[serde(default)]
    chain: Option<crate::sandbox_evm::ChainState>,
}

/// A port to listen on that nothing holds now. It is drawn below the system's
/// range of ephemeral ports: a port from that range could be taken by some
/// outgoing connection before the process binds it, or when it restarts.
fn free_port() -> anyhow::Result<u16> {
    let range = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range").unwrap_or_default();
    let low = range.split_whitespace().next().and_then(|n| n.parse::<u16>().ok()).unwrap_or(32_768);
    let (first, last) = (10_000u16, low.saturating_sub(1).max(10_001));
    let seed = crate::setup::random_bytes()?;
    let mut draw = u64::from_le_bytes(seed[..8].try_into().expect("8 bytes"));
    for _ in 0..200 {
        draw = draw.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        let port = first + u16::try_from((draw >> 33) % u64::from(last - first)).expect("fits");
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return Ok(port);
        }
    }
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

fn party_key(dir: &Path, name: &str) -> anyhow::Result<PartyKey> {
    Ok(PartyKey::from_seed(seed_file(&dir.join(format!("parties/{name}.key")), "an ed25519 seed")?))
}

/// Starts `interlock ARGS` in `dir` with its output in `logs/NAME.log`, which a
/// restart (`append`) continues instead of starting afresh.
fn spawn(dir: &Path, name: &str, args: &[String], append: bool) -> anyhow::Result<(u32, PathBuf)> {
    use std::os::unix::process::CommandExt as _;
    let log = dir.join("logs").join(format!("{name}.log"));
    let file = std::fs::OpenOptions::new()
        .create(true)
        .write(true)
        .append(append)
        .truncate(!append)
        .open(&log)
        .with_context(|| format!("cannot create {}", log.display()))?;
    let child = std::process::Command::new(std::env::current_exe()?)
        .args(args)
        .current_dir(dir)
        .stdout(file.try_clone()?)
        .stderr(file)
        .stdin(std::process::Stdio::null())
        // Its own process group: the sandbox outlives this command and the terminal's Ctrl-C.
        .process_group(0)
        .spawn()
        .with_context(|| format!("cannot start {name}"))?;
    Ok((child.id(), log))
}

fn wait_listening(log: &Path, name: &str) -> anyhow::Result<()> {
    wait_listening_after(log, name, 0)
}

/// Waits for `listening on` in what the log gained past byte `offset`.
fn wait_listening_after(log: &Path, name: &str, offset: usize) -> anyhow::Result<()> {
    let started = std::time::Instant::now();
    loop {
        let bytes = std::fs::read(log).unwrap_or_default();
        let text = String::from_utf8_lossy(bytes.get(offset..).unwrap_or_default()).into_owned();
        if text.contains("listening on") {
            return Ok(());
        }
        if text.contains("error:") || started.elapsed() > START_TIME_MAX {
            anyhow::bail!("{name} did not start; its log {} says:\n{text}", log.display());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The key a process keeps in `dir/<data>/<file>`, created on first use.
fn data_seed(dir: &Path, data: &str, file: &str, what: &str) -> anyhow::Result<[u8; 32]> {
    std::fs::create_dir_all(dir.join(data))?;
    seed_file(&dir.join(data).join(file), what)
}

pub fn up(dir: &Path, manual_accept: bool, evm: bool) -> anyhow::Result<()> {
    let state = start_all(dir, manual_accept, evm)?;
    println!("sandbox up in {}", dir.display());
    print_processes(&state);
    match &state.chain {
        Some(chain) => println!(
            "beta is an anvil chain at {} (escrow {}, USDC {}, DEED {}); funded: buyer {BUYER_USD} USD on alpha and {} USDC on beta, seller {SELLER_GOLD} GOLD on alpha and DEED #1-#{} on beta; next: interlock sandbox deal --dir {}",
            chain.rpc,
            chain.escrow,
            chain.usdc,
            chain.deed,
            crate::sandbox_evm::BUYER_USDC,
            crate::sandbox_evm::SELLER_DEEDS,
            dir.display()
        ),
        None => println!(
            "funded: buyer {BUYER_USD} USD on alpha, seller {SELLER_GOLD} GOLD on beta; next: interlock sandbox deal --dir {}",
            dir.display()
        ),
    }
    println!("the observer's web page: http://{}/", observer_web(dir)?);
    Ok(())
}

/// The `host:port` of the sandbox observer's web page.
pub fn observer_web(dir: &Path) -> anyhow::Result<String> {
    let state = load(dir)?;
    let observer = state.processes.iter().find(|p| p.name == OBSERVER).context("the sandbox has no observer")?;
    let at = observer.args.iter().position(|a| a == "--http").context("the observer has no --http")?;
    Ok(observer.args[at + 1].clone())
}

/// `up` without a word on standard output (for the benchmark's JSON).
pub fn up_quietly(dir: &Path) -> anyhow::Result<()> {
    start_all(dir, false, false).map(|_| ())
}

/// Every process's name and pid.
pub fn processes(dir: &Path) -> anyhow::Result<Vec<(String, u32)>> {
    Ok(load(dir)?.processes.into_iter().map(|p| (p.name, p.pid)).collect())
}

fn start_all(dir: &Path, manual_accept: bool, evm: bool) -> anyhow::Result<State> {
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
    let networks = [(ALPHA, "alpha"), (BETA, "beta")];
    // With --evm, beta is an anvil chain: no ledger node of its own.
    let has_ledger = |network: NetworkId| !(evm && network == BETA);
    let mut names: Vec<(Role, String)> = Vec::new();
    for (id, network) in networks {
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
    let mut ports = HashMap::new();
    let extra = PARTIES.iter().map(|p| format!("{p}-agent")).chain([format!("{OBSERVER}-http")]);
    for name in names.iter().map(|(_, name)| name.clone()).chain(extra) {
        ports.insert(name, free_port()?);
    }
    let endpoint = |name: &str| format!("127.0.0.1:{}", ports[name]);
    let mut gateway_keys = Vec::new();
    for (network, name) in networks {
        let seed = data_seed(dir, &format!("{name}-gateway"), "gateway.key", "an ed25519 seed")?;
        gateway_keys.push((network, PartyKey::from_seed(seed).public()));
    }
    let mut notaries = Vec::new();
    for name in NOTARIES {
        let seed = data_seed(dir, name, "notary.key", "a secp256k1 secret key")?;
        notaries.push((name, NotaryKey::from_seed(seed).context("invalid notary key")?.address()));
    }
    let observer_key = PartyKey::from_seed(data_seed(dir, OBSERVER, "observer.key", "an ed25519 seed")?).public();
    let chain = if evm { Some(crate::sandbox_evm::start_chain(dir, free_port()?, &PARTIES)?) } else { None };
    let account = |name: &str, key: &PartyKey, network: NetworkId| -> anyhow::Result<Address> {
        match &chain {
            Some(chain) if network == BETA => chain.account(name),
            _ => Ok(Address::Ledger(key.public().0)),
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
            .map(|(id, name)| match &chain {
                Some(chain) if *id == BETA => NetworkEntry {
                    id: *id,
                    name: (*name).into(),
                    kind: NetworkKind::Evm,
                    evm: Some(chain.network_entry()),
                },
                _ => NetworkEntry { id: *id, name: (*name).into(), kind: NetworkKind::Embedded, evm: None },
            })
            .collect(),
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
    };
    SignedDirectory::sign(directory, &ca)?.save(&dir.join("directory.json"))?;

    let common = |name: &str| -> Vec<String> {
        let mut args = vec!["--tls-dir".into(), "tls".into(), "--name".into(), name.into()];
        args.extend(["--directory".into(), "directory.json".into(), "--listen".into(), endpoint(name)]);
        args
    };
    let mut launches: Vec<(String, &str, Vec<String>)> = Vec::new();
    for (network, name) in networks.into_iter().filter(|(id, _)| has_ledger(*id)) {
        let node = format!("{name}-ledger");
        let mut args: Vec<String> = vec!["ledger".into(), "--data".into(), name.into()];
        // The gateways keep the networks: they cancel what expires.
        args.extend(["--network".into(), network.0.to_string(), "--no-keeper".into()]);
        args.extend(common(&node));
        launches.push((node, "ledger", args));
    }
    for (network, name) in networks {
        let gateway = format!("{name}-gateway");
        let mut args: Vec<String> = vec!["gateway".into(), "--data".into(), gateway.clone()];
        args.extend(["--network".into(), network.0.to_string()]);
        if evm && network == BETA {
            args.extend(["--evm-key".into(), crate::sandbox_evm::KEEPER_KEY.into()]);
        }
        args.extend(["--webhook-attempts".into(), SANDBOX_WEBHOOK_ATTEMPTS.into()]);
        args.extend(common(&gateway));
        launches.push((gateway, "gateway", args));
    }
    for name in NOTARIES {
        let mut args: Vec<String> = vec!["notary".into(), "--data".into(), name.into()];
        args.extend(common(name));
        launches.push((name.to_owned(), "notary", args));
    }
    for name in PARTIES {
        let mut args: Vec<String> = vec!["agent".into(), "--data".into(), format!("{name}-agent")];
        args.extend(["--key".into(), format!("parties/{name}.key")]);
        if evm {
            args.extend(["--evm-key".into(), format!("parties/{name}.evm-key")]);
        }
        args.extend(common(name));
        // The agent serves on its own port, under the party's certificate.
        let listen = args.iter().position(|a| a == "--listen").expect("common sets it") + 1;
        args[listen] = endpoint(&format!("{name}-agent"));
        if name == "seller" && !manual_accept {
            args.push("--auto-accept".into());
        }
        launches.push((format!("{name}-agent"), "agent", args));
    }
    let mut args: Vec<String> = vec!["observer".into(), "--data".into(), OBSERVER.into()];
    args.extend(common(OBSERVER));
    args.extend(["--http".into(), endpoint(&format!("{OBSERVER}-http"))]);
    launches.push((OBSERVER.to_owned(), "observer", args));
    launches.push(dependent_launch(common(DEPENDENT)));
    let mut processes = Vec::new();
    for (name, role, args) in launches {
        let (pid, log) = spawn(dir, &name, &args, false)?;
        let address = args.iter().position(|a| a == "--listen").map_or_else(String::new, |i| args[i + 1].clone());
        processes.push(Process { name, role: role.into(), address, pid, log, args });
    }
    let state = State { processes, manual_accept, chain };
    save(dir, &state)?;
    for process in &state.processes {
        wait_listening(&process.log, &process.name)?;
    }
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let keys: Vec<PartyId> =
        parties.iter().map(|(_, key)| key.public()).chain(gateway_keys.iter().map(|(_, key)| *key)).collect();
    runtime.block_on(fund(dir, &state, &parties[0].1, &parties[1].1, &keys))?;
    if let Some(chain) = &state.chain {
        println!("beta: anvil at {} (pid {}), log {}", chain.rpc, chain.anvil_pid, chain.log.display());
    }
    Ok(state)
}

/// The sample dependent in the directory, under a key kept in its data directory.
fn dependent_entry(dir: &Path) -> anyhow::Result<DependentEntry> {
    let seed = data_seed(dir, DEPENDENT, "dependent.key", "an ed25519 seed")?;
    Ok(DependentEntry { name: DEPENDENT.into(), key: PartyKey::from_seed(seed).public() })
}

/// How `up` starts the sample dependent: it subscribes to completions at both gateways.
fn dependent_launch(common: Vec<String>) -> (String, &'static str, Vec<String>) {
    let mut args: Vec<String> = vec!["dependent".into(), "--data".into(), DEPENDENT.into()];
    args.extend(["--kind".into(), "completed".into()]);
    args.extend(common);
    (DEPENDENT.to_owned(), "dependent", args)
}

/// Whether an HTTP process (the dependent) answers `GET /health`.
async fn http_health(address: &str) -> &'static str {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let probe = async {
        let mut stream = tokio::net::TcpStream::connect(address).await?;
        stream.write_all(b"GET /health HTTP/1.1\r\nHost: sandbox\r\nConnection: close\r\n\r\n").await?;
        let mut answer = Vec::new();
        stream.read_to_end(&mut answer).await?;
        std::io::Result::Ok(answer.starts_with(b"HTTP/1.1 200"))
    };
    match tokio::time::timeout(Duration::from_secs(3), probe).await {
        Ok(Ok(true)) => "serving",
        Ok(Ok(false)) => "not serving",
        Ok(Err(_)) | Err(_) => "unreachable",
    }
}

/// A channel to `address` under the buyer's certificate.
fn channel(dir: &Path, address: &str) -> anyhow::Result<Channel> {
    agent_cmd::channel(&TlsFiles::in_dir(&dir.join("tls"), "buyer"), address)
}

fn gateways(dir: &Path, state: &State) -> anyhow::Result<HashMap<NetworkId, GatewayClient<Channel>>> {
    let mut clients = HashMap::new();
    for process in state.processes.iter().filter(|p| p.role == "gateway") {
        let network = if process.name.starts_with("alpha") { ALPHA } else { BETA };
        clients.insert(network, GatewayClient::new(channel(dir, &process.address)?));
    }
    Ok(clients)
}

/// Registers the parties and the gateways' keeper accounts on both networks,
/// and issues the buyer's USD and the seller's GOLD. The operators submit to
/// their ledger nodes directly: they run the networks.
async fn fund(
    dir: &Path,
    state: &State,
    buyer: &PartyKey,
    seller: &PartyKey,
    accounts: &[PartyId],
) -> anyhow::Result<()> {
    let evm = state.chain.is_some();
    for (network, name) in [(ALPHA, "alpha"), (BETA, "beta")] {
        if evm && network == BETA {
            // anvil's accounts were funded when it started.
            continue;
        }
        let seed = seed_file(&dir.join(name).join("operator.key"), "an ed25519 seed")?;
        let operator = PartyKey::from_seed(seed);
        let mut ops: Vec<Op> = accounts.iter().map(|account| Op::Register { account: *account }).collect();
        if network == ALPHA {
            ops.push(Op::Issue {
                to: Address::Ledger(buyer.public().0),
                asset: Asset::Fungible { code: code("USD"), amount: BUYER_USD },
            });
            if evm {
                // The seller's GOLD lives on alpha when beta is a chain.
                ops.push(Op::Issue {
                    to: Address::Ledger(seller.public().0),
                    asset: Asset::Fungible { code: code("GOLD"), amount: SELLER_GOLD },
                });
            }
        } else {
            ops.push(Op::Issue {
                to: Address::Ledger(seller.public().0),
                asset: Asset::Fungible { code: code("GOLD"), amount: SELLER_GOLD },
            });
        }
        let ledger = state.processes.iter().find(|p| p.name == format!("{name}-ledger")).context("no ledger node")?;
        let mut client = v1::ledger_node_client::LedgerNodeClient::new(agent_cmd::channel(
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

fn load(dir: &Path) -> anyhow::Result<State> {
    let path = dir.join(STATE_FILE);
    let bytes = std::fs::read(&path).with_context(|| {
        format!(
            "no sandbox in {} (no {}): run `interlock sandbox up --dir {}`",
            dir.display(),
            STATE_FILE,
            dir.display()
        )
    })?;
    serde_json::from_slice(&bytes).with_context(|| format!("{} is corrupt", path.display()))
}

/// Whether the process runs: it exists and is not a zombie waiting to be reaped.
fn alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // The state follows the parenthesised command name: `pid (name) S ...`.
        Ok(stat) => stat.rsplit_once(") ").is_some_and(|(_, rest)| !rest.starts_with('Z') && !rest.starts_with('X')),
        Err(_) => false,
    }
}

fn print_processes(state: &State) {
    println!("{:<14} {:<9} {:<17} {:>7}", "process", "role", "address", "pid");
    for process in &state.processes {
        println!("{:<14} {:<9} {:<17} {:>7}", process.name, process.role, process.address, process.pid);
    }
}

pub fn status(dir: &Path, json: bool) -> anyhow::Result<bool> {
    let state = load(dir)?;
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let mut rows = Vec::new();
    for process in &state.processes {
        let health = runtime.block_on(async {
            if process.role == "dependent" {
                return anyhow::Ok(http_health(&process.address).await);
            }
            let channel = channel(dir, &process.address)?;
            let mut client = tonic_health::pb::health_client::HealthClient::new(channel);
            let request = tonic_health::pb::HealthCheckRequest { service: String::new() };
            let answer = tokio::time::timeout(Duration::from_secs(3), client.check(request)).await;
            anyhow::Ok(match answer {
                Ok(Ok(response)) if response.get_ref().status == 1 => "serving",
                Ok(Ok(_)) => "not serving",
                Ok(Err(_)) | Err(_) => "unreachable",
            })
        })?;
        rows.push((process, alive(process.pid), health));
    }
    let healthy = rows.iter().all(|(_, alive, health)| *alive && *health == "serving");
    if json {
        let report: Vec<_> = rows
            .iter()
            .map(|(p, alive, health)| serde_json::json!({"name": p.name, "role": p.role, "address": p.address, "pid": p.pid, "alive": alive, "health": health, "log": p.log}))
            .collect();
        println!("{}", serde_json::json!({ "processes": report, "healthy": healthy }));
    } else {
        println!("{:<14} {:<9} {:<17} {:>7} {:<6} {:<12} log", "process", "role", "address", "pid", "alive", "health");
        for (process, alive, health) in &rows {
            println!(
                "{:<14} {:<9} {:<17} {:>7} {:<6} {:<12} {}",
                process.name,
                process.role,
                process.address,
                process.pid,
                if *alive { "yes" } else { "no" },
                health,
                process.log.display()
            );
        }
    }
    Ok(healthy)
}

fn save(dir: &Path, state: &State) -> anyhow::Result<()> {
    std::fs::write(dir.join(STATE_FILE), serde_json::to_vec_pretty(state)?)?;
    Ok(())
}

fn process<'a>(state: &'a mut State, name: &str) -> anyhow::Result<&'a mut Process> {
    let names: Vec<String> = state.processes.iter().map(|p| p.name.clone()).collect();
    state
        .processes
        .iter_mut()
        .find(|p| p.name == name)
        .with_context(|| format!("no process {name} in the sandbox; it has {}", names.join(", ")))
}

/// SIGKILL: the process gets no chance to flush or say goodbye.
pub fn kill(dir: &Path, name: &str) -> anyhow::Result<()> {
    let mut state = load(dir)?;
    let process = process(&mut state, name)?;
    if !alive(process.pid) {
        anyhow::bail!("{name} (pid {}) is not running", process.pid);
    }
    std::process::Command::new("kill").args(["-KILL", &process.pid.to_string()]).status()?;
    println!("killed {name} (pid {}) with SIGKILL", process.pid);
    Ok(())
}

/// Starts a stopped process again, with its data and its address.
pub fn start(dir: &Path, name: &str) -> anyhow::Result<()> {
    let mut state = load(dir)?;
    let process = process(&mut state, name)?;
    if alive(process.pid) {
        anyhow::bail!("{name} (pid {}) is already running", process.pid);
    }
    // Keep the old log: append what the new run says after it.
    let offset = std::fs::metadata(&process.log).map_or(0, |meta| usize::try_from(meta.len()).unwrap_or(usize::MAX));
    let (pid, log) = spawn(dir, name, &process.args, true)?;
    wait_listening_after(&log, name, offset)?;
    process.pid = pid;
    println!("started {name} again (pid {pid}) on {}", process.address);
    save(dir, &state)
}

pub fn down(dir: &Path) -> anyhow::Result<()> {
    let count = down_quietly(dir)?;
    println!("sandbox in {} stopped ({count} processes)", dir.display());
    Ok(())
}

/// `down` without a word; returns how many processes it stopped.
pub fn down_quietly(dir: &Path) -> anyhow::Result<usize> {
    let state = load(dir)?;
    let chain = state.chain.as_ref().map(|chain| chain.anvil_pid);
    for pid in state.processes.iter().map(|process| process.pid).chain(chain) {
        if alive(pid) {
            let _ = std::process::Command::new("kill").arg(pid.to_string()).status();
        }
    }
    std::fs::remove_file(dir.join(STATE_FILE))?;
    Ok(state.processes.len())
}

/// The address of the sandbox's agent of `party`, for `interlock deal`.
pub fn agent_endpoint(dir: &Path, party: &str) -> anyhow::Result<String> {
    let state = load(dir)?;
    let name = format!("{party}-agent");
    let process = state.processes.iter().find(|p| p.name == name).with_context(|| {
        format!(
            "the sandbox in {} has no agent for party {party:?}; its parties are {}",
            dir.display(),
            PARTIES.join(", ")
        )
    })?;
    Ok(process.address.clone())
}

fn agent(dir: &Path, party: &str) -> anyhow::Result<AgentClient<Channel>> {
    let tls = TlsFiles::in_dir(&dir.join("tls"), party);
    Ok(AgentClient::new(agent_cmd::channel(&tls, &agent_endpoint(dir, party)?)?))
}

fn final_state(state: &str) -> bool {
    matches!(state, "completed" | "refunded" | "withdrawn" | "windfall" | "lost")
}

/// The standard deal; `observed` names the sandbox's observer in its terms
/// (every proposal of the sandbox does, unless told otherwise).
fn standard_proposal(mode: Mode, window: Duration, observed: bool) -> v1::ProposeDealRequest {
    let mut request = proposal(mode, window, PAYMENT, DELIVERY);
    if !observed {
        request.observers.clear();
    }
    request
}

/// The buyer's proposal to the seller: `payment` and `delivery` are (network, asset, amount).
fn proposal(
    mode: Mode,
    window: Duration,
    payment: (&str, &str, &str),
    delivery: (&str, &str, &str),
) -> v1::ProposeDealRequest {
    let leg = |(network, asset, amount): (&str, &str, &str)| v1::LegSpec {
        network: network.into(),
        asset: asset.into(),
        amount: amount.into(),
    };
    v1::ProposeDealRequest {
        counterparty: "seller".into(),
        role: "buyer".into(),
        mode: mode.to_string(),
        payment: Some(leg(payment)),
        delivery: Some(leg(delivery)),
        window_ms: u64::try_from(window.as_millis()).unwrap_or(u64::MAX),
        observers: vec![OBSERVER.into()],
        ..Default::default()
    }
}

/// Countersigns `deal` at the seller's agent once the proposal has reached it.
async fn accept_when_received(seller: &mut AgentClient<Channel>, deal: &str) -> anyhow::Result<()> {
    let started = std::time::Instant::now();
    loop {
        match seller.accept_deal(v1::DealRef { deal: deal.into() }).await {
            Ok(_) => return Ok(()),
            Err(status) if status.code() == tonic::Code::NotFound && started.elapsed() < Duration::from_secs(20) => {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(status) => anyhow::bail!("the seller's agent did not accept deal {deal}: {}", status.message()),
        }
    }
}

/// The deal's view at `agent` once it has ended.
async fn ended(agent: &mut AgentClient<Channel>, deal: &str, time_max: Duration) -> anyhow::Result<v1::DealView> {
    let started = std::time::Instant::now();
    loop {
        match agent.get_deal(v1::DealRef { deal: deal.into() }).await {
            Ok(view) if final_state(&view.get_ref().state) => return Ok(view.into_inner()),
            Ok(_) | Err(_) if started.elapsed() < time_max => tokio::time::sleep(Duration::from_millis(100)).await,
            Ok(view) => anyhow::bail!("deal {deal} is still {} after {time_max:?}", view.get_ref().state),
            Err(status) => anyhow::bail!("cannot read deal {deal}: {}", status.message()),
        }
    }
}

async fn balances(dir: &Path, state: &State) -> anyhow::Result<serde_json::Value> {
    let gateways = gateways(dir, state)?;
    let mut balances = serde_json::Map::new();
    for name in PARTIES {
        let key = party_key(dir, name)?;
        let mut networks = serde_json::Map::new();
        for (network, label) in [(ALPHA, "alpha"), (BETA, "beta")] {
            if let Some(chain) = state.chain.as_ref().filter(|_| network == BETA) {
                networks.insert(label.into(), chain.balances(name).await?);
                continue;
            }
            let mut client = gateways.get(&network).cloned().context("no gateway")?;
            let account = client.get_account(v1::GetAccountRequest { account: key.public().0.to_vec() }).await?;
            let assets: serde_json::Map<String, serde_json::Value> = account
                .into_inner()
                .balances
                .into_iter()
                .map(|b| (b.asset, serde_json::Value::String(b.amount)))
                .collect();
            networks.insert(label.into(), assets.into());
        }
        balances.insert(name.into(), networks.into());
    }
    Ok(balances.into())
}

/// Runs one standard deal through the agents and shows it step by step.
pub fn deal(dir: &Path, mode: Mode, json: bool) -> anyhow::Result<bool> {
    let state = load(dir)?;
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(async {
        let (mut buyer, mut seller) = (agent(dir, "buyer")?, agent(dir, "seller")?);
        let started = std::time::Instant::now();
        let window = Duration::from_secs(30);
        let (mut request, story) = match (&state.chain, mode) {
            (None, _) => (standard_proposal(mode, window, true), "buyer pays 25 USD on alpha for 10 GOLD on beta".to_owned()),
            (Some(chain), Mode::Notary) => {
                // The lowest DEED the seller still holds.
                let held = chain.balances("seller").await?;
                let item = held["DEED"].as_array().and_then(|items| items.first()).and_then(|item| item.as_u64());
                let item = item.context("the seller holds no DEED any more: start a new sandbox")?;
                let number = format!("#{item}");
                let request = proposal(mode, window, PAYMENT, ("beta", "DEED", &number));
                (request, format!("buyer pays 25 USD on alpha (ledger) for DEED #{item} (ERC-721) on beta (EVM)"))
            }
            (Some(_), Mode::Hashlock) => (
                proposal(mode, window, ("beta", "USDC", "25"), ("alpha", "GOLD", "10")),
                "buyer pays 25 USDC (ERC-20) on beta (EVM) for 10 GOLD on alpha (ledger)".to_owned(),
            ),
        };
        // One deal, shown step by step: it names the warranty service too, which
        // logs the completion its webhook brings.
        request.dependents = vec![DEPENDENT.into()];
        let view = buyer
            .propose_deal(request)
            .await
            .map_err(|status| anyhow::anyhow!("the buyer's agent refused the proposal: {}", status.message()))?
            .into_inner();
        let deal = view.deal_id.clone();
        if !json {
            println!("deal {deal} ({mode} mode): {story}");
        }
        if state.manual_accept {
            accept_when_received(&mut seller, &deal).await?;
        }
        let mut stream = buyer.watch_deal(v1::DealRef { deal: deal.clone() }).await?.into_inner();
        let mut shown = 0;
        let mut last = view;
        while let Some(view) = stream.message().await? {
            if !json {
                for step in view.steps.iter().skip(shown) {
                    println!("  buyer:  {}", step.text);
                }
            }
            shown = view.steps.len();
            last = view;
        }
        let seller_view = ended(&mut seller, &deal, Duration::from_secs(60)).await?;
        let seconds = started.elapsed().as_secs_f64();
        if !json {
            for step in &seller_view.steps {
                println!("  seller: {}", step.text);
            }
        }
        let balances = balances(dir, &state).await?;
        let completed = last.state == "completed" && seller_view.state == "completed";
        let report = serde_json::json!({
            "id": deal, "mode": mode.to_string(),
            "outcome": if completed { "completed" } else if last.state == "refunded" && seller_view.state == "refunded" { "refunded" } else { "not atomic" },
            "buyer": last.state, "seller": seller_view.state,
            "seconds": seconds, "balances_after": balances,
        });
        if json {
            println!("{report}");
        } else {
            println!("outcome: buyer {}, seller {} in {seconds:.2} s", last.state, seller_view.state);
            println!("balances after: {}", serde_json::to_string_pretty(&report["balances_after"])?);
        }
        anyhow::Ok(completed)
    })
}

/// What the driver of many deals knows, shared with its watcher.
#[derive(Default)]
struct Tally {
    started: HashMap<String, std::time::Instant>,
    finals: HashMap<String, (std::time::Instant, String)>,
    credited: std::collections::HashSet<String>,
}

impl Tally {
    /// Frees a slot for the next deal once a started deal has ended (once).
    fn credit(&mut self, deal: &str, slots: &tokio::sync::Semaphore) {
        if self.started.contains_key(deal) && self.finals.contains_key(deal) && self.credited.insert(deal.to_owned()) {
            slots.add_permits(1);
        }
    }
}

/// Follows every deal of the buyer's agent, reconnecting when it restarts.
async fn watch_all(
    dir: PathBuf,
    tally: std::sync::Arc<std::sync::Mutex<Tally>>,
    slots: std::sync::Arc<tokio::sync::Semaphore>,
) {
    loop {
        if let Ok(mut buyer) = agent(&dir, "buyer") {
            if let Ok(response) = buyer.watch_deal(v1::DealRef { deal: "*".into() }).await {
                let mut stream = response.into_inner();
                while let Ok(Some(view)) = stream.message().await {
                    if final_state(&view.state) {
                        let mut tally = tally.lock().expect("never poisoned");
                        tally.finals.entry(view.deal_id.clone()).or_insert((std::time::Instant::now(), view.state));
                        tally.credit(&view.deal_id, &slots);
                    }
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Looks up, now and then, deals that started and have not been seen to end,
/// in case the watcher missed their end while the agent restarted.
async fn look_up_pending(
    dir: PathBuf,
    tally: std::sync::Arc<std::sync::Mutex<Tally>>,
    slots: std::sync::Arc<tokio::sync::Semaphore>,
) {
    loop {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let pending: Vec<String> = {
            let tally = tally.lock().expect("never poisoned");
            let mut pending: Vec<(&String, &std::time::Instant)> =
                tally.started.iter().filter(|(deal, _)| !tally.finals.contains_key(*deal)).collect();
            pending.sort_by_key(|(_, at)| **at);
            pending.into_iter().take(200).map(|(deal, _)| deal.clone()).collect()
        };
        let Ok(mut buyer) = agent(&dir, "buyer") else { continue };
        for deal in pending {
            if let Ok(view) = buyer.get_deal(v1::DealRef { deal: deal.clone() }).await {
                if final_state(&view.get_ref().state) {
                    let mut tally = tally.lock().expect("never poisoned");
                    tally.finals.entry(deal.clone()).or_insert((std::time::Instant::now(), view.into_inner().state));
                    tally.credit(&deal, &slots);
                }
            }
        }
    }
}

/// Runs `count` standard deals, `concurrency` at a time, through the agents;
/// reports settled deals per second, latency percentiles and whether every
/// deal ended the same way on both sides with the totals unchanged. With
/// `observed`, the deals name the sandbox's observer.
pub fn many(
    dir: &Path,
    mode: Mode,
    count: usize,
    concurrency: usize,
    observed: bool,
    json: bool,
) -> anyhow::Result<serde_json::Value> {
    let state = load(dir)?;
    if state.chain.is_some() {
        anyhow::bail!("many deals run on the two-ledger sandbox; this one's beta is an EVM chain: use `sandbox deal`");
    }
    if state.manual_accept {
        anyhow::bail!(
            "this sandbox's seller accepts by hand (--manual-accept): many deals need `sandbox up` without it"
        );
    }
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(async {
        use std::sync::{Arc, Mutex};
        let tally = Arc::new(Mutex::new(Tally::default()));
        let slots = Arc::new(tokio::sync::Semaphore::new(concurrency));
        let watcher = tokio::spawn(watch_all(dir.to_owned(), tally.clone(), slots.clone()));
        let looker = tokio::spawn(look_up_pending(dir.to_owned(), tally.clone(), slots.clone()));
        // Every deal's deadlines leave room for the whole batch ahead of it.
        let window = Duration::from_secs(30) + Duration::from_millis(20) * u32::try_from(count)?;
        let started = std::time::Instant::now();
        let refusals = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let buyer = agent(dir, "buyer")?;
        let mut proposers = tokio::task::JoinSet::new();
        for _ in 0..count {
            slots.acquire().await?.forget();
            let (mut buyer, tally, slots, refusals) = (buyer.clone(), tally.clone(), slots.clone(), refusals.clone());
            let request = standard_proposal(mode, window, observed);
            proposers.spawn(async move {
                loop {
                    let at = std::time::Instant::now();
                    match buyer.propose_deal(request.clone()).await {
                        Ok(view) => {
                            let mut tally = tally.lock().expect("never poisoned");
                            tally.started.insert(view.get_ref().deal_id.clone(), at);
                            tally.credit(&view.get_ref().deal_id, &slots);
                            return Ok(());
                        }
                        // The agent or a gateway is down (a restart): try again.
                        Err(status) => {
                            let refused = refusals.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
                            if std::env::var_os("INTERLOCK_DEBUG").is_some() {
                                eprintln!("proposal refused: {}", status.message());
                            }
                            if refused > 10_000 {
                                anyhow::bail!("the buyer's agent keeps refusing proposals: {}", status.message());
                            }
                            tokio::time::sleep(Duration::from_millis(100)).await;
                        }
                    }
                }
            });
        }
        while let Some(joined) = proposers.join_next().await {
            joined??;
        }
        let refusals = refusals.load(std::sync::atomic::Ordering::Relaxed);
        // Wait for every deal to end, looking each one up now and then in case
        // the watcher missed its end while the agent restarted.
        let time_max = Duration::from_secs(120) + window * 2;
        loop {
            let pending: Vec<String> = {
                let tally = tally.lock().expect("never poisoned");
                tally.started.keys().filter(|deal| !tally.finals.contains_key(*deal)).cloned().collect()
            };
            if pending.is_empty() {
                break;
            }
            if started.elapsed() > time_max {
                anyhow::bail!("{} deals did not end within {time_max:?}", pending.len());
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        let seconds = started.elapsed().as_secs_f64();
        watcher.abort();
        looker.abort();
        // A proposal whose answer a restart lost may have started a deal the
        // driver does not count: let those end too before the totals.
        for party in PARTIES {
            loop {
                let running = agent(dir, party)?
                    .list_deals(v1::ListDealsRequest { state: "running".into(), limit: 1 })
                    .await
                    .map(|list| list.into_inner().deals.len());
                if running.is_ok_and(|n| n == 0) {
                    break;
                }
                if started.elapsed() > time_max {
                    anyhow::bail!("the {party}'s agent still runs deals after {time_max:?}");
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
        let tally = std::mem::take(&mut *tally.lock().expect("never poisoned"));
        let mut seller = agent(dir, "seller")?;
        let (mut completed, mut refunded) = (0, 0);
        for (deal, (_, buyer_state)) in &tally.finals {
            if !tally.started.contains_key(deal) {
                continue;
            }
            let seller_view = ended(&mut seller, deal, Duration::from_secs(60)).await?;
            match (buyer_state.as_str(), seller_view.state.as_str()) {
                ("completed", "completed") => completed += 1,
                ("refunded", "refunded") => refunded += 1,
                _ => {}
            }
        }
        let mut latencies: Vec<f64> = tally
            .started
            .iter()
            .filter_map(|(deal, at)| tally.finals.get(deal).map(|(end, _)| end.duration_since(*at).as_secs_f64() * 1_000.0))
            .collect();
        latencies.sort_by(f64::total_cmp);
        let percentile =
            |p: f64| latencies.get(((latencies.len() as f64 - 1.0) * p).round() as usize).copied().unwrap_or(0.0);
        // Conservation across the sandbox: what the buyer and seller hold together.
        let balances = balances(dir, &state).await?;
        let mut totals = serde_json::Map::new();
        for (label, asset) in [("alpha", "USD"), ("beta", "GOLD")] {
            let mut total: u128 = 0;
            for party in PARTIES {
                total += balances[party][label][asset].as_str().map_or(Ok(0), str::parse::<u128>)?;
            }
            totals.insert(format!("{label} {asset}"), total.to_string().into());
        }
        let report = serde_json::json!({
            "mode": mode.to_string(), "deals": count, "concurrency": concurrency, "completed": completed,
            "refunded": refunded, "not_atomic": count - completed - refunded, "totals_after": totals,
            "proposals_retried": refusals, "seconds": seconds, "deals_per_s": (count as f64 / seconds).round(),
            "latency_ms_p50": percentile(0.5).round(), "latency_ms_p99": percentile(0.99).round(),
        });
        if !json {
            println!(
                "{count} {mode} deals, {concurrency} at a time: {completed} completed, {refunded} refunded in {seconds:.1} s ({:.0} deals/s), latency p50 {:.0} ms, p99 {:.0} ms",
                count as f64 / seconds,
                percentile(0.5),
                percentile(0.99)
            );
        }
        anyhow::Ok(report)
    })
}
