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
use interlock_node::party_driver::{drive, Services, Timing};
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
        "funded: buyer 1000 USD on alpha, seller 500 GOLD on beta; next: interlock sandbox deal --dir {}",
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
                asset: Asset::Fungible { code: code("USD"), amount: 1_000 },
            });
        } else {
            ops.push(Op::Issue {
                to: Address::Ledger(seller.public().0),
                asset: Asset::Fungible { code: code("GOLD"), amount: 500 },
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

fn alive(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
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

pub fn deal(dir: &Path, mode: Mode, json: bool) -> anyhow::Result<bool> {
    let state = load(dir)?;
    let (buyer, seller) = (party_key(dir, "buyer")?, party_key(dir, "seller")?);
    let ca = interlock_identity::load_certificate(&dir.join("tls/ca.pem"))?;
    let directory = SignedDirectory::load_verified(&dir.join("directory.json"), &ca)?;
    let now = now_ms();
    let secret = Secret(crate::setup::random_bytes()?);
    let settlement = match mode {
        Mode::Notary => Settlement::Notary {
            notaries: directory.notaries.iter().map(|n| n.address).collect(),
            threshold: 2,
            decision_deadline_ms: now + 15_000,
            backstop_expiry_ms: now + 300_000,
        },
        Mode::Hashlock => Settlement::Hashlock {
            hash: secret.hash(),
            delivery_expiry_ms: now + 15_000,
            payment_expiry_ms: now + 30_000,
            margin_ms: 15_000,
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
        payment: leg(ALPHA, &buyer, &seller, Asset::Fungible { code: code("USD"), amount: 25 }),
        delivery: leg(BETA, &seller, &buyer, Asset::Fungible { code: code("GOLD"), amount: 10 }),
        settlement,
        policy: Policy::default(),
        observers: Vec::new(),
        dependents: Vec::new(),
        nonce: now,
    };
    let deal_id = terms.id();
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(async {
        let services = Services {
            ledgers: ledgers(dir, &state)?,
            notaries: state
                .processes
                .iter()
                .filter(|p| p.role == "notary")
                .map(|p| channel(dir, &p.address).map(NotaryClient::new))
                .collect::<anyhow::Result<_>>()?,
        };
        let store = |name: &str| AgentStore::open(&dir.join("agents").join(format!("{name}.sqlite")));
        let say = |line: String| {
            if !json {
                println!("  {line}");
            }
        };
        if !json {
            println!("deal {deal_id} ({mode} mode): buyer pays 25 USD on alpha for 10 GOLD on beta");
        }
        let secret = (mode == Mode::Hashlock).then_some(secret);
        let started = std::time::Instant::now();
        let (buyer_outcome, seller_outcome) = drive(
            terms,
            secret,
            (buyer.clone(), store("buyer")?),
            (seller.clone(), store("seller")?),
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
