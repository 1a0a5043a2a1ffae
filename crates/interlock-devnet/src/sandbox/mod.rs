//! `interlock sandbox`: a multi-process deployment on loopback. `up` issues the
//! certificates, writes and signs the directory, and starts as separate OS
//! processes, each with its log: two ledger nodes (networks alpha and beta),
//! a gateway in front of each, three notaries (2 of 3) and the agents of the
//! two parties, buyer and seller, a sample dependent (a warranty service
//! receiving webhooks), and an observer that records every deal the sandbox
//! proposes and shows it on a web page. `status` shows each process and its health;
//! `deal` runs deals through the agents; `kill` and `start` stop and restart a
//! process; `down` stops them all.
//!
//! `deploy.rs` writes what `up` needs (certificates, keys, the signed
//! directory) and starts and funds the processes; `driver.rs` runs deals
//! through the agents. A network that is an external chain (beta, or both,
//! as the [`Topology`] says) is one its platform crate starts and funds
//! (`interlock_evm::sandbox`, `interlock_litecoin::sandbox`; `chains.rs`
//! dispatches), each on its own node. The processes run the
//! executable that calls this: the `interlock` binary.

use crate::setup::{seed_file, ALPHA, BETA, GAMMA};
use anyhow::Context as _;
pub use chains::ChainState;
use interlock_core::crypto::PartyKey;
use interlock_core::NetworkId;
use interlock_rpc::server::TlsFiles;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;
use tonic::transport::Channel;

mod chains;
mod deploy;
mod driver;
mod owned;
mod threads;

pub use driver::{deal, deal_to, many};
pub use owned::{exit_with_owner, own_started_processes};
pub use threads::{InProcess, OutputMoved, RunRole, ROLES_LOG};

const STATE_FILE: &str = "sandbox.json";
/// What `up` issues to the buyer on alpha and to the seller on beta: enough for
/// tens of thousands of the standard deal.
const BUYER_USD: u128 = 1_000_000;
const SELLER_GOLD: u128 = 1_000_000;
const PARTIES: [&str; 2] = ["buyer", "seller"];
/// The sandbox's observer: its deals name it, and it serves a web page.
pub const OBSERVER: &str = "observer";
/// The sample dependent: deals that name its key are POSTed to it.
const DEPENDENT: &str = "warranty";
/// How long `up` waits for a process to say it listens.
const START_TIME_MAX: Duration = Duration::from_secs(20);

#[derive(Serialize, Deserialize)]
struct Process {
    name: String,
    role: String,
    address: String,
    pid: u32,
    log: PathBuf,
    /// How it was started, to start it again: `ROLE --config NAME.toml`.
    args: Vec<String>,
}

#[derive(Serialize, Deserialize)]
struct State {
    processes: Vec<Process>,
    /// The seller's agent waits for `interlock deal accept` instead of accepting by itself.
    #[serde(default)]
    manual_accept: bool,
    /// The networks that are external chains rather than ledger nodes, by name.
    #[serde(default)]
    chains: BTreeMap<String, ChainState>,
}

impl State {
    /// The chain that network `name` is, if it is one.
    fn chain(&self, name: &str) -> Option<&ChainState> {
        self.chains.get(name)
    }
}

/// Held while a sandbox draws its ports and until every process it starts
/// listens on them: two sandboxes started at once on one machine (tests do)
/// would otherwise both find a port free and hand it out, and the second
/// process to bind it would fail. Draws made under it see every port an
/// earlier sandbox took, because those are bound by then. The lock is the
/// operating system's on a file in the temporary directory, so it is let go
/// when its holder exits, however that happens.
pub(super) struct PortsLock {
    _held: std::fs::File,
}

impl PortsLock {
    pub(super) fn take() -> anyhow::Result<PortsLock> {
        let path = std::env::temp_dir().join("interlock-sandbox-ports.lock");
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .with_context(|| format!("cannot open {}", path.display()))?;
        file.lock().with_context(|| format!("cannot lock {}", path.display()))?;
        Ok(PortsLock { _held: file })
    }
}

/// A port to listen on that nothing holds now and that this sandbox has not
/// handed out already (`taken`, which gains it): every process binds its port
/// only later, so a port drawn twice would go to two of them. It is drawn below
/// the system's range of ephemeral ports: a port from that range could be taken
/// by some outgoing connection before the process binds it, or when it restarts.
fn free_port(taken: &mut std::collections::HashSet<u16>) -> anyhow::Result<u16> {
    let range = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range").unwrap_or_default();
    let low = range.split_whitespace().next().and_then(|n| n.parse::<u16>().ok()).unwrap_or(32_768);
    let (first, last) = (10_000u16, low.saturating_sub(1).max(10_001));
    let seed = crate::setup::random_bytes()?;
    let mut draw = u64::from_le_bytes(seed[..8].try_into().expect("8 bytes"));
    for _ in 0..200 {
        draw = draw.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        let port = first + u16::try_from((draw >> 33) % u64::from(last - first)).expect("fits");
        if !taken.contains(&port) && std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            taken.insert(port);
            return Ok(port);
        }
    }
    anyhow::bail!("found no free port between {first} and {last} in 200 draws")
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
    let mut command = std::process::Command::new(std::env::current_exe()?);
    command
        .args(args)
        .current_dir(dir)
        .stdout(file.try_clone()?)
        .stderr(file)
        .stdin(std::process::Stdio::null())
        // Its own process group: the sandbox outlives this command and the
        // terminal's Ctrl-C (unless this command owns it: see `owned`).
        .process_group(0);
    owned::prepare(&mut command);
    let mut child = command.spawn().with_context(|| format!("cannot start {name}"))?;
    owned::keep(&mut child);
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

/// What one network of a sandbox runs on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NetworkKind {
    /// An embedded ledger: a ledger node the sandbox starts.
    Ledger,
    /// A chain the sandbox starts (anvil) and stops with itself.
    NewChain,
    /// A development chain already running at this RPC endpoint: the sandbox
    /// deploys and funds there, and leaves the node running when it stops.
    ChainAt(String),
    /// A Litecoin regtest chain the sandbox starts and stops with itself.
    NewLitecoin,
}

/// What the sandbox's two networks run on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Topology {
    pub alpha: NetworkKind,
    pub beta: NetworkKind,
    /// A third embedded ledger, gamma, whose gateway the directory links to
    /// beta's only: alpha's and gamma's gateways talk through beta's.
    pub routed: bool,
    /// Pairs of embedded ledgers, each with its two gateways (1 to
    /// [`PAIRS_MAX`]): the first is alpha and beta, the k-th alpha-k and
    /// beta-k. Deals run within a pair, spread across them.
    pub pairs: usize,
}

/// Most network pairs a sandbox runs.
pub const PAIRS_MAX: usize = 4;
/// The networks of pairs 2 to 4, by name.
const MORE_PAIRS: [[&str; 2]; PAIRS_MAX - 1] = [["alpha-2", "beta-2"], ["alpha-3", "beta-3"], ["alpha-4", "beta-4"]];

impl Topology {
    /// Two embedded ledgers: the default sandbox.
    pub const LEDGERS: Topology =
        Topology { alpha: NetworkKind::Ledger, beta: NetworkKind::Ledger, routed: false, pairs: 1 };
    /// Three embedded ledgers, alpha and gamma linked only through beta.
    pub const ROUTED: Topology =
        Topology { alpha: NetworkKind::Ledger, beta: NetworkKind::Ledger, routed: true, pairs: 1 };

    /// `pairs` pairs of embedded ledgers.
    pub fn ledger_pairs(pairs: usize) -> anyhow::Result<Topology> {
        if !(1..=PAIRS_MAX).contains(&pairs) {
            anyhow::bail!("a sandbox runs 1 to {PAIRS_MAX} pairs of networks, not {pairs}");
        }
        Ok(Topology { pairs, ..Topology::LEDGERS })
    }

    /// Each network's id, name and kind, alpha first.
    fn networks(&self) -> Vec<(NetworkId, &'static str, &NetworkKind)> {
        let mut networks = vec![(ALPHA, "alpha", &self.alpha), (BETA, "beta", &self.beta)];
        if self.routed {
            networks.push((GAMMA, "gamma", &NetworkKind::Ledger));
        }
        for (pair, names) in (2u64..).zip(MORE_PAIRS.iter().take(self.pairs.saturating_sub(1))) {
            networks.push((NetworkId(2 * pair - 1), names[0], &NetworkKind::Ledger));
            networks.push((NetworkId(2 * pair), names[1], &NetworkKind::Ledger));
        }
        networks
    }

    /// The gateway links of the directory: None (all linked) unless routed.
    fn links(&self) -> Option<Vec<interlock_identity::GatewayLink>> {
        let link = |a, b| interlock_identity::GatewayLink { networks: [a, b], preference: 0 };
        self.routed.then(|| vec![link(ALPHA, BETA), link(BETA, GAMMA)])
    }
}

pub fn up(dir: &Path, manual_accept: bool, topology: &Topology) -> anyhow::Result<()> {
    let state = deploy::start_all(dir, manual_accept, topology, None)?;
    println!("sandbox up in {}", dir.display());
    print_processes(&state);
    for (name, chain) in &state.chains {
        println!("{name} is {}", chain.describe());
        println!("  {}", chain.funding());
    }
    let routed = state.processes.iter().any(|process| process.name == "gamma-gateway");
    let ledgers = match (state.chain("alpha"), state.chain("beta")) {
        (None, None) if routed => {
            println!("alpha's and gamma's gateways are linked only through beta's: their messages go through it");
            format!("funded: buyer {BUYER_USD} USD on alpha, seller {SELLER_GOLD} GOLD on gamma; ")
        }
        (None, None) => format!("funded: buyer {BUYER_USD} USD on alpha, seller {SELLER_GOLD} GOLD on beta; "),
        (None, Some(_)) => format!("funded: buyer {BUYER_USD} USD on alpha, seller {SELLER_GOLD} GOLD on alpha; "),
        (Some(_), None) => format!("funded: seller {SELLER_GOLD} GOLD on beta; "),
        (Some(_), Some(_)) => String::new(),
    };
    println!("{ledgers}next: interlock sandbox deal --dir {}", dir.display());
    println!("the observer's web page: http://{}/", observer_web(dir)?);
    Ok(())
}

/// The `host:port` of the sandbox observer's web page, from its config file.
pub fn observer_web(dir: &Path) -> anyhow::Result<String> {
    let state = load(dir)?;
    let observer = state.processes.iter().find(|p| p.name == OBSERVER).context("the sandbox has no observer")?;
    let settings = settings(dir, observer)?;
    let http = settings.get("http").and_then(toml::Value::as_str);
    Ok(http.with_context(|| format!("the observer's config file sets no http in {}", dir.display()))?.to_owned())
}

/// What a process's config file (its `--config`) says.
fn settings(dir: &Path, process: &Process) -> anyhow::Result<toml::Table> {
    let at = process.args.iter().position(|a| a == "--config");
    let file =
        at.and_then(|at| process.args.get(at + 1)).with_context(|| format!("{} has no config file", process.name))?;
    let path = dir.join(file);
    let text = std::fs::read_to_string(&path).with_context(|| format!("cannot read {}", path.display()))?;
    text.parse().with_context(|| format!("{} is not TOML", path.display()))
}

/// `up` without a word on standard output (for the benchmark's JSON).
pub fn up_quietly(dir: &Path) -> anyhow::Result<()> {
    up_quietly_as(dir, &Topology::LEDGERS)
}

/// The sandbox's networks (id and name) as its directory lists them.
fn directory_networks(dir: &Path) -> anyhow::Result<Vec<(NetworkId, String)>> {
    let directory = interlock_identity::SignedDirectory::load(&dir.join("directory.json"))?.directory;
    Ok(directory.networks.into_iter().map(|entry| (entry.id, entry.name)).collect())
}

/// `up` of `topology`, without a word on standard output.
pub fn up_quietly_as(dir: &Path, topology: &Topology) -> anyhow::Result<()> {
    deploy::start_all(dir, false, topology, None).map(|_| ())
}

/// `up` of `topology` with every role on a thread of this process (see
/// [`InProcess`]), without a word on standard output. Stop them with
/// [`InProcess::stop`]; `sandbox.json` then names this process for each.
pub fn up_in_process(dir: &Path, topology: &Topology, threads: &InProcess) -> anyhow::Result<()> {
    deploy::start_all(dir, false, topology, Some(threads)).map(|_| ())
}

/// Every process's name and pid.
pub fn processes(dir: &Path) -> anyhow::Result<Vec<(String, u32)>> {
    Ok(load(dir)?.processes.into_iter().map(|p| (p.name, p.pid)).collect())
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
    tls_channel(&TlsFiles::in_dir(&dir.join("tls"), "buyer"), address)
}

/// A lazily connected mutual-TLS channel to `endpoint` (`host:port`).
fn tls_channel(tls: &TlsFiles, endpoint: &str) -> anyhow::Result<Channel> {
    Ok(interlock_rpc::server::lazy_channel(endpoint, tls)?)
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
    let mut chains = Vec::new();
    for chain in state.chains.values() {
        let health = runtime.block_on(chain.health());
        // A node the sandbox did not start runs if it answers.
        chains.push((chain, chain.pid().map_or(health == "serving", alive), health));
    }
    let healthy = rows
        .iter()
        .map(|(_, alive, health)| (alive, health))
        .chain(chains.iter().map(|(_, alive, health)| (alive, health)))
        .all(|(alive, health)| *alive && *health == "serving");
    if json {
        let report: Vec<_> = rows
            .iter()
            .map(|(p, alive, health)| serde_json::json!({"name": p.name, "role": p.role, "address": p.address, "pid": p.pid, "alive": alive, "health": health, "log": p.log}))
            .collect();
        let chains: Vec<_> = chains
            .iter()
            .map(|(chain, alive, health)| {
                let mut entry = chain.status_json();
                entry["alive"] = (*alive).into();
                entry["health"] = (*health).into();
                entry
            })
            .collect();
        println!("{}", serde_json::json!({ "processes": report, "chains": chains, "healthy": healthy }));
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
        for (chain, alive, health) in &chains {
            let alive = if *alive { "yes" } else { "no" };
            println!("chain {}: {}; alive {alive}, {health}", chain.network(), chain.describe());
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
    // Keep the old log: append what the new run says after it. Until it
    // listens again, a sandbox drawing ports elsewhere would see its port free.
    let _ports = PortsLock::take()?;
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
    let anvils = state.chains.values().filter_map(ChainState::pid);
    for pid in state.processes.iter().map(|process| process.pid).chain(anvils) {
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

#[cfg(test)]
mod tests {
    #[test]
    fn no_port_is_handed_out_twice_in_one_sandbox() {
        // 500 draws from some 22,000 ports would repeat one almost surely if
        // the draws did not remember each other.
        let mut taken = std::collections::HashSet::new();
        let ports: Vec<u16> = (0..500).map(|_| super::free_port(&mut taken).expect("a free port")).collect();
        let distinct: std::collections::HashSet<u16> = ports.iter().copied().collect();
        assert_eq!(distinct.len(), ports.len());
        assert!(ports.iter().all(|port| *port >= 10_000));
    }
}
