//! `interlock sandbox`: a multi-process deployment on loopback. `up` issues the
//! certificates, writes and signs the directory, and starts two ledger nodes
//! (networks alpha and beta) and three notaries (2 of 3) as separate OS
//! processes with a log each; `status` shows each process and its health;
//! `deal` runs a deal through them; `down` stops them.

use crate::services::seed_file;
use crate::setup::{code, now_ms, ALPHA, BETA};
use anyhow::Context as _;
use interlock_core::crypto::{NotaryKey, PartyKey, Secret};
use interlock_core::encoding::Encode;
use interlock_core::{Address, Asset, DealTerms, Leg, Mode, NetworkId, Policy, Settlement};
use interlock_identity::{
    CertificateAuthority, Directory, LedgerEntry, NetworkEntry, NetworkKind, NotaryEntry, PartyEntry, Role,
    SignedDirectory, Validity,
};
use interlock_ledger::{Op, Transaction};
use interlock_node::party_driver::{drive, Services, Side, Timing};
use interlock_node::server::TlsFiles;
use interlock_node::stores::AgentStore;
use interlock_proto::v1;
use interlock_proto::v1::ledger_node_client::LedgerNodeClient;
use interlock_proto::v1::notary_client::NotaryClient;
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
/// How long `up` waits for a process to say it listens.
const START_TIME_MAX: Duration = Duration::from_secs(20);

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
}

fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

fn party_key(dir: &Path, name: &str) -> anyhow::Result<PartyKey> {
    Ok(PartyKey::from_seed(seed_file(&dir.join(format!("parties/{name}.key")), "an ed25519 seed")?))
}

fn spawn(dir: &Path, name: &str, args: &[String]) -> anyhow::Result<(u32, PathBuf)> {
    use std::os::unix::process::CommandExt as _;
    let log = dir.join("logs").join(format!("{name}.log"));
    let file = std::fs::File::create(&log).with_context(|| format!("cannot create {}", log.display()))?;
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
    let started = std::time::Instant::now();
    loop {
        let text = std::fs::read_to_string(log).unwrap_or_default();
        if text.contains("listening on") {
            return Ok(());
        }
        if text.contains("error:") || started.elapsed() > START_TIME_MAX {
            anyhow::bail!("{name} did not start; its log {} says:\n{text}", log.display());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

pub fn up(dir: &Path) -> anyhow::Result<()> {
    if dir.join(STATE_FILE).exists() {
        anyhow::bail!(
            "a sandbox is already up in {}: run `interlock sandbox down --dir {}` first",
            dir.display(),
            dir.display()
        );
    }
    for sub in ["tls", "logs", "parties", "agents"] {
        std::fs::create_dir_all(dir.join(sub))?;
    }
    let tls = dir.join("tls");
    let ca = match CertificateAuthority::load(&tls) {
        Ok(ca) => ca,
        Err(_) => CertificateAuthority::init(&tls)?,
    };
    let valid = Validity::days_from(time::OffsetDateTime::now_utc() - time::Duration::minutes(5), 30);
    let mut names: Vec<(Role, &str)> = vec![(Role::Ledger, "alpha-ledger"), (Role::Ledger, "beta-ledger")];
    names.extend(NOTARIES.iter().map(|n| (Role::Notary, *n)));
    names.extend([(Role::Party, "buyer"), (Role::Party, "seller")]);
    for (role, name) in &names {
        if !tls.join(format!("{name}.pem")).exists() {
            ca.issue(*role, name, &["localhost", "127.0.0.1"], valid)?.write(&tls)?;
        }
    }
    let (buyer, seller) = (party_key(dir, "buyer")?, party_key(dir, "seller")?);
    let ledger_ports = [(ALPHA, "alpha", free_port()?), (BETA, "beta", free_port()?)];
    let mut notaries = Vec::new();
    for name in NOTARIES {
        let seed = seed_file(&dir.join(name).join("notary.key"), "a secp256k1 secret key").or_else(|_| {
            std::fs::create_dir_all(dir.join(name))?;
            seed_file(&dir.join(name).join("notary.key"), "a secp256k1 secret key")
        })?;
        let key = NotaryKey::from_seed(seed).context("invalid notary key")?;
        notaries.push((name, key.address(), free_port()?));
    }
    let accounts = |key: &PartyKey| {
        [(ALPHA, Address::Ledger(key.public().0)), (BETA, Address::Ledger(key.public().0))].into_iter().collect()
    };
    let directory = Directory {
        networks: ledger_ports
            .iter()
            .map(|(id, name, _)| NetworkEntry { id: *id, name: (*name).into(), kind: NetworkKind::Embedded })
            .collect(),
        ledgers: ledger_ports
            .iter()
            .map(|(id, name, port)| LedgerEntry {
                name: format!("{name}-ledger"),
                network: *id,
                endpoint: format!("127.0.0.1:{port}"),
            })
            .collect(),
        notaries: notaries
            .iter()
            .map(|(name, address, port)| NotaryEntry {
                name: (*name).into(),
                endpoint: format!("127.0.0.1:{port}"),
                address: *address,
            })
            .collect(),
        parties: vec![
            PartyEntry { name: "buyer".into(), key: buyer.public(), accounts: accounts(&buyer) },
            PartyEntry { name: "seller".into(), key: seller.public(), accounts: accounts(&seller) },
        ],
        ..Directory::default()
    };
    SignedDirectory::sign(directory, &ca)?.save(&dir.join("directory.json"))?;

    let mut processes = Vec::new();
    let common = |name: &str| {
        ["--tls-dir".into(), "tls".into(), "--name".into(), name.into(), "--directory".into(), "directory.json".into()]
    };
    for (network, name, port) in ledger_ports {
        let node = format!("{name}-ledger");
        let mut args: Vec<String> =
            vec!["ledger".into(), "--data".into(), name.into(), "--network".into(), network.0.to_string()];
        args.extend(["--listen".into(), format!("127.0.0.1:{port}")]);
        args.extend(common(&node));
        let (pid, log) = spawn(dir, &node, &args)?;
        processes.push(Process {
            name: node,
            role: "ledger".into(),
            address: format!("127.0.0.1:{port}"),
            pid,
            log,
            args,
        });
    }
    for (name, _, port) in &notaries {
        let mut args: Vec<String> = vec!["notary".into(), "--data".into(), (*name).into()];
        args.extend(["--listen".into(), format!("127.0.0.1:{port}")]);
        args.extend(common(name));
        let (pid, log) = spawn(dir, name, &args)?;
        processes.push(Process {
            name: (*name).into(),
            role: "notary".into(),
            address: format!("127.0.0.1:{port}"),
            pid,
            log,
            args,
        });
    }
    let state = State { processes };
    save(dir, &state)?;
    for process in &state.processes {
        wait_listening(&process.log, &process.name)?;
    }
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(fund(dir, &state, &buyer, &seller))?;
    println!("sandbox up in {}", dir.display());
    print_processes(&state);
    println!(
        "funded: buyer {BUYER_USD} USD on alpha, seller {SELLER_GOLD} GOLD on beta; next: interlock sandbox deal --dir {}",
        dir.display()
    );
    Ok(())
}

fn channel(dir: &Path, address: &str) -> anyhow::Result<Channel> {
    let tls = TlsFiles::in_dir(&dir.join("tls"), "buyer");
    Ok(Channel::from_shared(format!("https://{address}"))?.tls_config(tls.client_config("localhost")?)?.connect_lazy())
}

fn ledgers(dir: &Path, state: &State) -> anyhow::Result<HashMap<NetworkId, LedgerNodeClient<Channel>>> {
    let mut clients = HashMap::new();
    for process in state.processes.iter().filter(|p| p.role == "ledger") {
        let network = if process.name.starts_with("alpha") { ALPHA } else { BETA };
        clients.insert(network, LedgerNodeClient::new(channel(dir, &process.address)?));
    }
    Ok(clients)
}

async fn fund(dir: &Path, state: &State, buyer: &PartyKey, seller: &PartyKey) -> anyhow::Result<()> {
    let clients = ledgers(dir, state)?;
    for (network, name) in [(ALPHA, "alpha"), (BETA, "beta")] {
        let seed = seed_file(&dir.join(name).join("operator.key"), "an ed25519 seed")?;
        let operator = PartyKey::from_seed(seed);
        let mut ops = vec![Op::Register { account: buyer.public() }, Op::Register { account: seller.public() }];
        if network == ALPHA {
            ops.push(Op::Issue {
                to: Address::Ledger(buyer.public().0),
                asset: Asset::Fungible { code: code("USD"), amount: BUYER_USD },
            });
        } else {
            ops.push(Op::Issue {
                to: Address::Ledger(seller.public().0),
                asset: Asset::Fungible { code: code("GOLD"), amount: SELLER_GOLD },
            });
        }
        let mut client = clients[&network].clone();
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
    println!("{:<14} {:<7} {:<17} {:>7}", "process", "role", "address", "pid");
    for process in &state.processes {
        println!("{:<14} {:<7} {:<17} {:>7}", process.name, process.role, process.address, process.pid);
    }
}

pub fn status(dir: &Path, json: bool) -> anyhow::Result<bool> {
    let state = load(dir)?;
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let mut rows = Vec::new();
    for process in &state.processes {
        let health = runtime.block_on(async {
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
        println!("{:<14} {:<7} {:<17} {:>7} {:<6} {:<12} log", "process", "role", "address", "pid", "alive", "health");
        for (process, alive, health) in &rows {
            println!(
                "{:<14} {:<7} {:<17} {:>7} {:<6} {:<12} {}",
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
    let previous = std::fs::read(&process.log).unwrap_or_default();
    let (pid, log) = spawn(dir, name, &process.args)?;
    wait_listening(&log, name)?;
    let current = std::fs::read(&log).unwrap_or_default();
    std::fs::write(&log, [previous, current].concat())?;
    process.pid = pid;
    println!("started {name} again (pid {pid}) on {}", process.address);
    save(dir, &state)
}

pub fn down(dir: &Path) -> anyhow::Result<()> {
    let state = load(dir)?;
    for process in &state.processes {
        if alive(process.pid) {
            let _ = std::process::Command::new("kill").arg(process.pid.to_string()).status();
        }
    }
    std::fs::remove_file(dir.join(STATE_FILE))?;
    println!("sandbox in {} stopped ({} processes)", dir.display(), state.processes.len());
    Ok(())
}

/// The sandbox's standard deal: 25 USD on alpha for 10 GOLD on beta.
fn sandbox_terms(
    directory: &Directory,
    buyer: &PartyKey,
    seller: &PartyKey,
    mode: Mode,
    nonce: u64,
    window: Duration,
) -> anyhow::Result<(DealTerms, Option<Secret>)> {
    let now = now_ms();
    let window_ms = u64::try_from(window.as_millis())?;
    let secret = Secret(crate::setup::random_bytes()?);
    let settlement = match mode {
        Mode::Notary => Settlement::Notary {
            notaries: directory.notaries.iter().map(|n| n.address).collect(),
            threshold: 2,
            decision_deadline_ms: now + window_ms,
            backstop_expiry_ms: now + 20 * window_ms,
        },
        Mode::Hashlock => Settlement::Hashlock {
            hash: secret.hash(),
            delivery_expiry_ms: now + window_ms,
            payment_expiry_ms: now + 2 * window_ms,
            margin_ms: window_ms,
        },
    };
    let leg = |network, owner: &PartyKey, beneficiary: &PartyKey, asset| Leg {
        network,
        asset,
        owner: Address::Ledger(owner.public().0),
        beneficiary: Address::Ledger(beneficiary.public().0),
        keeper: None,
    };
    let terms = DealTerms {
        buyer: buyer.public(),
        seller: seller.public(),
        payment: leg(ALPHA, buyer, seller, Asset::Fungible { code: code("USD"), amount: 25 }),
        delivery: leg(BETA, seller, buyer, Asset::Fungible { code: code("GOLD"), amount: 10 }),
        settlement,
        policy: Policy::default(),
        observers: Vec::new(),
        dependents: Vec::new(),
        nonce,
    };
    Ok((terms, (mode == Mode::Hashlock).then_some(secret)))
}

pub fn deal(dir: &Path, mode: Mode, json: bool) -> anyhow::Result<bool> {
    let state = load(dir)?;
    let (buyer, seller) = (party_key(dir, "buyer")?, party_key(dir, "seller")?);
    let ca = interlock_identity::load_certificate(&dir.join("tls/ca.pem"))?;
    let directory = SignedDirectory::load_verified(&dir.join("directory.json"), &ca)?;
    let (terms, secret) = sandbox_terms(&directory, &buyer, &seller, mode, now_ms(), Duration::from_secs(15))?;
    let deal_id = terms.id();
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(async {
        let services = services(dir, &state)?;
        let store = |name: &str| AgentStore::open(&dir.join("agents").join(format!("{name}.sqlite")));
        let say = |line: String| {
            if !json {
                println!("  {line}");
            }
        };
        if !json {
            println!("deal {deal_id} ({mode} mode): buyer pays 25 USD on alpha for 10 GOLD on beta");
        }
        let started = std::time::Instant::now();
        let (buyer_outcome, seller_outcome) = drive(
            terms,
            secret,
            [Side { key: buyer.clone(), store: store("buyer")? }, Side { key: seller.clone(), store: store("seller")? }],
            &services,
            Timing { clock: now_ms, time_max: Duration::from_secs(120) },
            &say,
        )
        .await?;
        let seconds = started.elapsed().as_secs_f64();
        let mut balances = serde_json::Map::new();
        for (name, key) in [("buyer", &buyer), ("seller", &seller)] {
            let mut networks = serde_json::Map::new();
            for (network, label) in [(ALPHA, "alpha"), (BETA, "beta")] {
                let mut client = services.ledgers[&network].clone();
                let account = client.get_account(v1::GetAccountRequest { account: key.public().0.to_vec() }).await?;
                let assets: serde_json::Map<String, serde_json::Value> =
                    account.into_inner().balances.into_iter().map(|b| (b.asset, serde_json::Value::String(b.amount))).collect();
                networks.insert(label.into(), assets.into());
            }
            balances.insert(name.into(), networks.into());
        }
        let completed = buyer_outcome == interlock_core::saga::Outcome::Completed
            && seller_outcome == interlock_core::saga::Outcome::Completed;
        let report = serde_json::json!({
            "id": deal_id.to_string(), "mode": mode.to_string(),
            "outcome": if completed { "completed" } else { "refunded" },
            "buyer": format!("{buyer_outcome:?}").to_lowercase(), "seller": format!("{seller_outcome:?}").to_lowercase(),
            "seconds": seconds, "balances_after": balances,
        });
        if json {
            println!("{report}");
        } else {
            println!("outcome: buyer {buyer_outcome:?}, seller {seller_outcome:?} in {seconds:.2} s");
            println!("balances after: {}", serde_json::to_string_pretty(&report["balances_after"])?);
        }
        anyhow::Ok(completed)
    })
}

/// Runs `count` deals, `concurrency` at a time, through the sandbox; reports
/// settled deals per second and latency percentiles.
pub fn many(dir: &Path, mode: Mode, count: usize, concurrency: usize, json: bool) -> anyhow::Result<bool> {
    let state = load(dir)?;
    let (buyer, seller) = (party_key(dir, "buyer")?, party_key(dir, "seller")?);
    let ca = interlock_identity::load_certificate(&dir.join("tls/ca.pem"))?;
    let directory = SignedDirectory::load_verified(&dir.join("directory.json"), &ca)?;
    let base = now_ms() * 1_000;
    // Every deal's deadlines leave room for the whole batch ahead of it.
    let window = Duration::from_secs(30) + Duration::from_millis(20) * u32::try_from(count)?;
    let mut deals = Vec::with_capacity(count);
    for index in 0..count {
        let (terms, secret) = sandbox_terms(&directory, &buyer, &seller, mode, base + u64::try_from(index)?, window)?;
        deals.push(interlock_node::party_driver::DealRequest { terms, secret });
    }
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(async {
        let services = services(dir, &state)?;
        let store = |name: &str| AgentStore::open(&dir.join("agents").join(format!("{name}.sqlite")));
        let sides = [Side { key: buyer.clone(), store: store("buyer")? }, Side { key: seller.clone(), store: store("seller")? }];
        let started = std::time::Instant::now();
        let timing = Timing { clock: now_ms, time_max: Duration::from_secs(600) };
        let debug = std::env::var_os("INTERLOCK_DEBUG").is_some();
        let say = move |line: String| {
            if debug {
                eprintln!("{line}");
            }
        };
        let finished = interlock_node::party_driver::drive_many(deals, concurrency, sides, &services, timing, &say).await?;
        let seconds = started.elapsed().as_secs_f64();
        use interlock_core::saga::Outcome;
        let both = |outcome: Outcome| finished.iter().filter(|f| f.buyer == outcome && f.seller == outcome).count();
        let (completed, refunded) = (both(Outcome::Completed), both(Outcome::Refunded));
        // Conservation across the sandbox: what the buyer and seller hold together.
        let mut totals = serde_json::Map::new();
        for (network, label, asset) in [(ALPHA, "alpha", "USD"), (BETA, "beta", "GOLD")] {
            let mut total: u128 = 0;
            for key in [&buyer, &seller] {
                let mut client = services.ledgers[&network].clone();
                let account = client.get_account(v1::GetAccountRequest { account: key.public().0.to_vec() }).await?;
                let balance = account.into_inner().balances.into_iter().find(|b| b.asset == asset);
                total += balance.map_or(Ok(0), |b| b.amount.parse::<u128>())?;
            }
            totals.insert(format!("{label} {asset}"), total.to_string().into());
        }
        let mut latencies: Vec<f64> = finished.iter().map(|f| f.latency.as_secs_f64() * 1_000.0).collect();
        latencies.sort_by(f64::total_cmp);
        let percentile = |p: f64| latencies.get(((latencies.len() as f64 - 1.0) * p).round() as usize).copied().unwrap_or(0.0);
        let report = serde_json::json!({
            "mode": mode.to_string(), "deals": count, "concurrency": concurrency, "completed": completed,
            "refunded": refunded, "not_atomic": count - completed - refunded, "totals_after": totals,
            "seconds": seconds, "deals_per_s": (count as f64 / seconds).round(),
            "latency_ms_p50": percentile(0.5).round(), "latency_ms_p99": percentile(0.99).round(),
        });
        if json {
            println!("{report}");
        } else {
            println!(
                "{count} {mode} deals, {concurrency} at a time: {completed} completed in {seconds:.1} s ({:.0} deals/s), latency p50 {:.0} ms, p99 {:.0} ms",
                count as f64 / seconds,
                percentile(0.5),
                percentile(0.99)
            );
        }
        anyhow::Ok(completed + refunded == count)
    })
}

fn services(dir: &Path, state: &State) -> anyhow::Result<Services> {
    Ok(Services {
        ledgers: ledgers(dir, state)?,
        notaries: state
            .processes
            .iter()
            .filter(|p| p.role == "notary")
            .map(|p| channel(dir, &p.address).map(NotaryClient::new))
            .collect::<anyhow::Result<_>>()?,
    })
}
