//! `interlock`: one binary for every role and operator command.

mod agent_cmd;
mod client_args;
mod deal_cmd;
mod gas_cmd;
mod gateway_cmd;
mod observer_cmd;
mod services;

use clap::{Parser, Subcommand};
use client_args::{CertRoleArg, DealCommand, ModeArg, ServiceArgs};
use interlock_devnet::{bench, demo, dependent, sandbox};
use std::path::PathBuf;
use std::process::ExitCode;

/// The flag the gateway and the agent take their own chain key by.
const CHAIN_KEY_FLAG: &str = "--evm-key";

// The role commands read the clock as `crate::setup::now_ms`.
use interlock_devnet::setup;

#[global_allocator]
static ALLOCATOR: interlock_devnet::alloc::Counting = interlock_devnet::alloc::Counting;

/// Interlock settles a trade across two blockchain networks as one atomic escrow
/// transaction: either both sides are delivered, or both get their assets back.
#[derive(Parser)]
#[command(
    name = "interlock",
    version,
    after_help = "Examples:\n  interlock demo                      three deals on two embedded ledgers\n  interlock demo --json               the same, as one JSON object\n  interlock demo --evm                the deals across an embedded ledger and an EVM chain (anvil)\n  interlock sim --seeds 100000        the simulator over 100,000 seeds\n  interlock sim --from 42 --seeds 1 --trace\n                                      replay one seed, step by step\n  interlock bench core --mode notary  throughput, memory and the signature bound\n  interlock sandbox up                eleven processes on loopback: ledgers, gateways, notaries, agents, a dependent, an observer\n  interlock sandbox deal              a deal through them, step by step\n  interlock deal --as buyer list      the buyer's deals, from its agent"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// For a service role: structured logs, and the metrics endpoint if asked for.
fn start_metrics(command: &Command) -> anyhow::Result<()> {
    let (Command::Ledger { service, .. }
    | Command::Gateway { service, .. }
    | Command::Notary { service, .. }
    | Command::Agent { service, .. }) = command
    else {
        return Ok(());
    };
    interlock_rpc::metrics::init_logs();
    let Some(address) = service.metrics else { return Ok(()) };
    let bound = interlock_rpc::metrics::serve_in_background(address)
        .map_err(|error| anyhow::anyhow!("cannot serve metrics on {address}: {error}"))?;
    eprintln!("metrics on {bound}");
    Ok(())
}

#[derive(Subcommand)]
enum Command {
    /// Run three deals end to end on two embedded ledgers: one in notary mode
    /// (2 of 3 notaries), one in hashlock mode, one where the seller never
    /// reserves and the buyer is refunded. Exits non-zero if an invariant breaks.
    Demo {
        /// Where the two ledgers' SQLite files go (default: a new temporary directory).
        #[arg(long)]
        dir: Option<PathBuf>,
        /// Print one JSON object {"deals": [...]} instead of the step-by-step story.
        #[arg(long)]
        json: bool,
        /// Make beta an EVM chain: a local anvil (installed by scripts/npm-install)
        /// with the escrow contract, an ERC-20 and an ERC-721; alpha stays an
        /// embedded ledger. The deals then cross platforms.
        #[arg(long)]
        evm: bool,
    },
    /// Run the deterministic simulator: each seed draws deals and faults, and every
    /// invariant is checked after every step. A failure prints the seed to replay.
    Sim {
        /// How many seeds to run.
        #[arg(long, default_value_t = 1_000, value_parser = clap::value_parser!(u64).range(1..=100_000_000))]
        seeds: u64,
        /// The first seed.
        #[arg(long, default_value_t = 0)]
        from: u64,
        /// Print every step of the run (use with --seeds 1 to replay a failure).
        #[arg(long)]
        trace: bool,
        /// Print one JSON object with the totals.
        #[arg(long)]
        json: bool,
    },
    /// The certificate authority: create it, issue certificates for every role.
    Ca {
        #[command(subcommand)]
        command: CaCommand,
    },
    /// The directory of networks, services and parties, signed by the CA.
    Directory {
        #[command(subcommand)]
        command: DirectoryCommand,
    },
    /// Run a ledger node: one embedded network's sequencer, over gRPC with mutual TLS.
    Ledger {
        #[command(flatten)]
        service: ServiceArgs,
        /// Do not cancel expired reservations with the operator's key (leave it
        /// to the network's gateway).
        #[arg(long)]
        no_keeper: bool,
        /// The node's data directory (ledger.sqlite, operator.key); created on first start.
        #[arg(long)]
        data: PathBuf,
        /// The network id this ledger sequences.
        #[arg(long)]
        network: u64,
        /// Address to listen on; port 0 picks a free port (printed on start).
        #[arg(long, default_value = "127.0.0.1:7101")]
        listen: std::net::SocketAddr,
        /// Directory holding ca.pem and the node's <name>.pem / <name>.key.
        #[arg(long)]
        tls_dir: PathBuf,
        /// The node's name, as its certificate and the directory state it.
        #[arg(long)]
        name: String,
        /// The CA-signed directory file.
        #[arg(long)]
        directory: PathBuf,
    },
    /// Run a notary: one of a deal's k-of-n set, over gRPC with mutual TLS. It
    /// follows the networks of its deals through their gateways and records
    /// each decision before it signs.
    Notary {
        #[command(flatten)]
        service: ServiceArgs,
        /// The notary's data directory (notary.key, notary.sqlite); created on first start.
        #[arg(long)]
        data: PathBuf,
        /// Print the notary's address (for the directory) and exit.
        #[arg(long)]
        print_address: bool,
        /// Address to listen on; port 0 picks a free port (printed on start).
        #[arg(long, default_value = "127.0.0.1:7201")]
        listen: std::net::SocketAddr,
        /// Directory holding ca.pem and the notary's <name>.pem / <name>.key.
        #[arg(long, required_unless_present = "print_address")]
        tls_dir: Option<PathBuf>,
        /// The notary's name, as its certificate and the directory state it.
        #[arg(long, required_unless_present = "print_address")]
        name: Option<String>,
        /// The CA-signed directory file.
        #[arg(long, required_unless_present = "print_address")]
        directory: Option<PathBuf>,
    },
    /// Run a gateway: the service in front of one network, over gRPC with mutual
    /// TLS. Parties submit escrow transactions and register deals through it;
    /// notaries and observers read the network through it; it tells the other
    /// networks' gateways about each deal's reservations, executions and
    /// cancellations, and its keeper cancels expired reservations and executes
    /// revealed hashlocks for absent beneficiaries.
    #[command(after_help = "Setting up a gateway:\n  \
        1. interlock gateway --data gw-alpha --print-key\n     \
           prints the gateway's ed25519 public key (creating gw-alpha/gateway.key, mode 0600)\n  \
        2. interlock ca issue --dir tls --role gateway --name gw-alpha\n  \
        3. list it in the directory (then sign it with `interlock directory sign`):\n     \
           \"gateways\": [{\"name\": \"gw-alpha\", \"network\": 1, \"endpoint\": \"127.0.0.1:7301\", \"key\": \"<the key>\"}]\n     \
           with the network's ledger node under \"ledgers\"\n  \
        4. have the network's operator register the key as an account (Op::Register),\n     \
           so the keeper can sign cancellations and executions\n  \
        5. interlock gateway --data gw-alpha --network 1 --listen 127.0.0.1:7301 \\\n       \
           --tls-dir tls --name gw-alpha --directory directory.json")]
    Gateway {
        #[command(flatten)]
        service: ServiceArgs,
        /// The gateway's data directory (gateway.key, gateway.sqlite); created on first start.
        #[arg(long)]
        data: PathBuf,
        /// Print the gateway's public key (for the directory and its account) and exit.
        #[arg(long)]
        print_key: bool,
        /// Print the webhook deliveries given up after their last attempt and exit.
        #[arg(long)]
        dead_letters: bool,
        /// With --dead-letters: one JSON object {"dead_letters": [...]}.
        #[arg(long, requires = "dead_letters")]
        json: bool,
        /// Webhooks: the first retry waits up to this long, each later one up
        /// to twice as long as the one before (full jitter) ...
        #[arg(long, default_value_t = 200, value_parser = clap::value_parser!(u64).range(1..=3_600_000))]
        webhook_base_ms: u64,
        /// ... but never longer than this.
        #[arg(long, default_value_t = 10_000, value_parser = clap::value_parser!(u64).range(1..=86_400_000))]
        webhook_cap_ms: u64,
        /// Attempts per webhook before it becomes a dead letter.
        #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u32).range(1..=100))]
        webhook_attempts: u32,
        /// Longest one webhook POST may take.
        #[arg(long, default_value_t = 5_000, value_parser = clap::value_parser!(u64).range(1..=600_000))]
        webhook_timeout_ms: u64,
        /// The network this gateway fronts; its ledger node is the directory's entry for it.
        #[arg(long, required_unless_present_any = ["print_key", "dead_letters"])]
        network: Option<u64>,
        /// Address to listen on; port 0 picks a free port (printed on start).
        #[arg(long, default_value = "127.0.0.1:7301")]
        listen: std::net::SocketAddr,
        /// Directory holding ca.pem and the gateway's <name>.pem / <name>.key.
        #[arg(long, required_unless_present_any = ["print_key", "dead_letters"])]
        tls_dir: Option<PathBuf>,
        /// The gateway's name, as its certificate and the directory state it.
        #[arg(long, required_unless_present_any = ["print_key", "dead_letters"])]
        name: Option<String>,
        /// The CA-signed directory file.
        #[arg(long, required_unless_present_any = ["print_key", "dead_letters"])]
        directory: Option<PathBuf>,
        /// On an EVM network: the secp256k1 key file (64 hex digits) of the keeper
        /// account the directory names there. Without it the gateway follows and
        /// records, but keeps nothing.
        #[arg(long = "evm-key", value_name = "EVM_KEY")]
        chain_key: Option<PathBuf>,
    },
    /// Run an observer: it follows, through the gateways, the deals that name
    /// it, records every event of them in a hash-chained log signed with its
    /// key (SQLite), and serves that log over gRPC and as a web page.
    #[command(
        args_conflicts_with_subcommands = true,
        subcommand_negates_reqs = true,
        after_help = "Setting up an observer:\n  \
        1. interlock observer --data obs --print-key\n  \
        2. interlock ca issue --dir tls --role observer --name observer\n  \
        3. list it in the directory: \"observers\": [{\"name\": \"observer\", \"endpoint\": \"127.0.0.1:7601\", \"key\": \"<the key>\"}]\n  \
        4. interlock observer --data obs --listen 127.0.0.1:7601 --http 127.0.0.1:7680 \\\n       \
           --tls-dir tls --name observer --directory directory.json\n  \
        5. deals name it: interlock deal propose ... --observer observer\n  \
        6. interlock observer verify --data obs"
    )]
    Observer {
        #[command(subcommand)]
        command: Option<ObserverCommand>,
        /// The observer's data directory (observer.key, observer.sqlite); created on first start.
        #[arg(long, required = true)]
        data: Option<PathBuf>,
        /// Print the observer's public key (for the directory) and exit.
        #[arg(long)]
        print_key: bool,
        /// Address of the gRPC service; port 0 picks a free port (printed on start).
        #[arg(long, default_value = "127.0.0.1:7601")]
        listen: std::net::SocketAddr,
        /// Address of the web page (plain HTTP: keep it on loopback or behind a proxy).
        #[arg(long, default_value = "127.0.0.1:7680")]
        http: std::net::SocketAddr,
        /// Directory holding ca.pem and the observer's <name>.pem / <name>.key.
        #[arg(long, required_unless_present = "print_key")]
        tls_dir: Option<PathBuf>,
        /// The observer's name, as its certificate and the directory state it.
        #[arg(long, required_unless_present = "print_key")]
        name: Option<String>,
        /// The CA-signed directory file.
        #[arg(long, required_unless_present = "print_key")]
        directory: Option<PathBuf>,
    },
    /// Run a sample dependent (a warranty service): it subscribes its webhook
    /// at every gateway of the directory, checks each POST's HMAC signature,
    /// keeps each event once by its Idempotency-Key, logs the completions it
    /// receives, and lists what it received at GET /received (JSON).
    Dependent {
        /// Its data directory (webhook.secret, dependent.sqlite); created on first start.
        #[arg(long)]
        data: PathBuf,
        /// Address to serve HTTP on; port 0 picks a free port (printed on start).
        #[arg(long, default_value = "127.0.0.1:7501")]
        listen: std::net::SocketAddr,
        /// Directory holding ca.pem and the dependent's <name>.pem / <name>.key.
        #[arg(long)]
        tls_dir: PathBuf,
        /// Its name, as its certificate and the directory's dependents state it.
        #[arg(long)]
        name: String,
        /// The CA-signed directory file.
        #[arg(long)]
        directory: PathBuf,
        /// The URL the gateways POST to (default: http://LISTEN/webhook).
        #[arg(long)]
        url: Option<String>,
        /// An event kind to subscribe to (repeatable; default: every kind).
        #[arg(long = "kind")]
        kinds: Vec<String>,
    },
    /// Run a party's agent: it holds the party's key, runs its deals against the
    /// networks' gateways and the notaries, records every step in SQLite before
    /// acting on it, resumes unfinished deals on restart and refunds at expiry.
    /// The operator drives it with `interlock deal`.
    Agent {
        #[command(flatten)]
        service: ServiceArgs,
        /// The agent's data directory (agent.sqlite, and party.key unless --key); created on first start.
        #[arg(long)]
        data: PathBuf,
        /// The party's ed25519 seed file (64 hex digits; created 0600 if missing). Default: DATA/party.key.
        #[arg(long)]
        key: Option<PathBuf>,
        /// Address to listen on; port 0 picks a free port (printed on start).
        #[arg(long, default_value = "127.0.0.1:7401")]
        listen: std::net::SocketAddr,
        /// Directory holding ca.pem and the party's <name>.pem / <name>.key.
        #[arg(long)]
        tls_dir: PathBuf,
        /// The party's name, as its certificate and the directory state it.
        #[arg(long)]
        name: String,
        /// The CA-signed directory file.
        #[arg(long)]
        directory: PathBuf,
        /// Accept every valid proposal from a party of the directory without asking.
        #[arg(long)]
        auto_accept: bool,
        /// Do not print a line per deal step.
        #[arg(long)]
        quiet: bool,
        /// Seconds a withdrawn deal stays in the agent's lists before only its
        /// history (`deal status`) keeps it.
        #[arg(long, value_name = "SECONDS", default_value_t = client_args::KEEP_WITHDRAWN_DEFAULT_S, value_parser = client_args::keep_withdrawn())]
        keep_withdrawn: u64,
        /// The party's secp256k1 key file (64 hex digits) for the EVM networks of the
        /// directory; its address must be the party's listed account there.
        #[arg(long = "evm-key", value_name = "EVM_KEY")]
        chain_key: Option<PathBuf>,
    },
    /// Propose, accept, follow and cancel deals through a party's agent.
    #[command(
        after_help = "Examples (against a sandbox started with `interlock sandbox up --manual-accept`):\n  interlock deal --as buyer propose --to seller --payment '25 USD@alpha' --delivery '10 GOLD@beta'\n  interlock deal --as seller list --state received\n  interlock deal --as seller accept 3fa2\n  interlock deal --as buyer watch 3fa2\n\nA deal is named by its id or any prefix of it that names one deal."
    )]
    Deal {
        /// The sandbox whose agents to use (when --agent is not given).
        #[arg(long, global = true, default_value = "interlock-sandbox")]
        sandbox: PathBuf,
        /// The party acting: its certificate is used, and its agent is called.
        #[arg(long = "as", global = true, default_value = "buyer")]
        name: String,
        /// The agent's host:port (default: the sandbox's agent of the party).
        #[arg(long, global = true)]
        agent: Option<String>,
        /// Holds ca.pem and <party>.pem / <party>.key (default: the sandbox's tls/).
        #[arg(long, global = true)]
        tls_dir: Option<PathBuf>,
        /// Print JSON instead of text.
        #[arg(long, global = true)]
        json: bool,
        #[command(subcommand)]
        command: DealCommand,
    },
    /// A multi-process deployment on loopback: two ledger nodes, two gateways,
    /// three notaries, two party agents, a sample dependent (warranty) and an
    /// observer.
    Sandbox {
        #[command(subcommand)]
        command: SandboxCommand,
    },
    /// Measure performance.
    Bench {
        #[command(subcommand)]
        target: BenchTarget,
    },
}

#[derive(Subcommand)]
enum CaCommand {
    /// Create a certificate authority (ca.pem, and ca.key with mode 0600) in DIR.
    Init {
        #[arg(long)]
        dir: PathBuf,
    },
    /// Issue a certificate for one role and name, signed by the CA in DIR.
    Issue {
        #[arg(long)]
        dir: PathBuf,
        #[arg(long, value_enum)]
        role: CertRoleArg,
        /// The holder's name: 1 to 64 of a-z, 0-9 and '-'.
        #[arg(long)]
        name: String,
        /// A DNS name or IP address the holder serves on (repeatable).
        #[arg(long = "host", default_values_t = ["localhost".to_string(), "127.0.0.1".to_string()])]
        hosts: Vec<String>,
        /// Validity in days.
        #[arg(long, default_value_t = 365)]
        days: i64,
        /// Where to write <name>.pem and <name>.key (default: DIR).
        #[arg(long)]
        out: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
enum ObserverCommand {
    /// Re-check the whole log: every record's hash, its link to the previous
    /// record and its signature. Exits 1 naming the first broken record.
    Verify {
        /// The observer's data directory (observer.sqlite and observer.key).
        #[arg(long)]
        data: PathBuf,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
enum SandboxCommand {
    /// Issue certificates, sign the directory, start every process, fund the parties.
    Up {
        #[arg(long, default_value = "interlock-sandbox")]
        dir: PathBuf,
        /// The seller's agent waits for `interlock deal --as seller accept ID`
        /// instead of accepting every valid proposal by itself.
        #[arg(long)]
        manual_accept: bool,
        /// Make beta an EVM chain: a local anvil (from scripts/npm-install) with the
        /// escrow contract, an ERC-20 USDC and an ERC-721 DEED; beta's gateway follows
        /// it, and the agents send their beta transactions to it with their own keys.
        #[arg(long)]
        evm: bool,
    },
    /// Each process: its address, whether it runs, its gRPC health.
    Status {
        #[arg(long, default_value = "interlock-sandbox")]
        dir: PathBuf,
        #[arg(long)]
        json: bool,
    },
    /// Run one deal through the sandbox's services and show it.
    Deal {
        #[arg(long, default_value = "interlock-sandbox")]
        dir: PathBuf,
        #[arg(long, value_enum, default_value_t = ModeArg::Notary)]
        mode: ModeArg,
        /// Run this many deals and report throughput and latency instead of one deal's story.
        #[arg(long, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
        count: Option<u32>,
        /// With --count: deals in flight at once.
        #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u32).range(1..=10_000))]
        concurrency: u32,
        #[arg(long)]
        json: bool,
    },
    /// Kill one process with SIGKILL (to see the others cope, and it recover).
    Kill {
        #[arg(long, default_value = "interlock-sandbox")]
        dir: PathBuf,
        /// The process: alpha-ledger, beta-ledger, alpha-gateway, beta-gateway,
        /// n1, n2, n3, buyer-agent, seller-agent, warranty or observer.
        name: String,
    },
    /// Start a stopped process again, on its address, from its data.
    Start {
        #[arg(long, default_value = "interlock-sandbox")]
        dir: PathBuf,
        name: String,
    },
    /// Stop every process of the sandbox.
    Down {
        #[arg(long, default_value = "interlock-sandbox")]
        dir: PathBuf,
    },
}

#[derive(Subcommand)]
enum DirectoryCommand {
    /// Validate a directory written as JSON and sign it with the CA.
    Sign {
        /// The CA directory.
        #[arg(long)]
        ca: PathBuf,
        #[arg(long)]
        input: PathBuf,
        #[arg(long)]
        output: PathBuf,
    },
}

#[derive(Subcommand)]
enum BenchTarget {
    /// Deals settled per second in process, both ledgers on SQLite; memory per
    /// in-flight deal; and the ratio to the machine's signature-verification bound.
    Core {
        /// Deals to settle for the throughput figure (the figure is meant over at least 10,000).
        #[arg(long, default_value_t = 10_000, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
        deals: u32,
        #[arg(long, value_enum, default_value_t = ModeArg::Hashlock)]
        mode: ModeArg,
        /// Deals held in flight for the memory figure.
        #[arg(long, default_value_t = bench::INFLIGHT_DEALS, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
        inflight: u32,
        /// Print one JSON object.
        #[arg(long)]
        json: bool,
    },
    /// Deals through a fresh multi-process sandbox (mutual TLS, SQLite in every
    /// process): settled deals per second, latency p50/p99, peak memory per
    /// process, and the ratio to the in-process figure measured first in the
    /// same run.
    Sandbox {
        #[arg(long, default_value_t = 2_000, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
        deals: u32,
        /// Deals in flight at once.
        #[arg(long, default_value_t = 200, value_parser = clap::value_parser!(u32).range(1..=10_000))]
        concurrency: u32,
        #[arg(long, value_enum, default_value_t = ModeArg::Hashlock)]
        mode: ModeArg,
        /// Where to put the sandbox (default: a temporary directory, removed after).
        #[arg(long)]
        dir: Option<PathBuf>,
        /// Print one JSON object.
        #[arg(long)]
        json: bool,
    },
    /// The escrow contract's gasUsed for reserve, execute and cancel per asset kind
    /// and mode, steady state, on a fresh anvil (installed by scripts/test).
    Gas {
        /// Print a list of {op, asset, mode, gas_used}.
        #[arg(long)]
        json: bool,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Err(error) = start_metrics(&cli.command) {
        eprintln!("error: {error:#}");
        return ExitCode::from(2);
    }
    let result = match cli.command {
        Command::Demo { dir, json, evm } => demo::run(dir, json, evm).map(|held| held.then_some(()).ok_or(1)),
        Command::Sim { seeds, from, trace, json } => sim(seeds, from, trace, json),
        Command::Ca { command: CaCommand::Init { dir } } => services::ca_init(&dir).map(Ok),
        Command::Ca { command: CaCommand::Issue { dir, role, name, hosts, days, out } } => {
            services::ca_issue(&dir, role.0.as_str(), &name, &hosts, days, out.as_deref()).map(Ok)
        }
        Command::Directory { command: DirectoryCommand::Sign { ca, input, output } } => {
            services::directory_sign(&ca, &input, &output).map(Ok)
        }
        Command::Sandbox { command } => match command {
            SandboxCommand::Up { dir, manual_accept, evm } => sandbox::up(&dir, manual_accept, evm).map(Ok),
            SandboxCommand::Status { dir, json } => sandbox::status(&dir, json).map(|ok| ok.then_some(()).ok_or(1)),
            SandboxCommand::Deal { dir, mode, count, concurrency, json } => {
                let mode = mode.into();
                let to_usize = |n: u32| usize::try_from(n).expect("u32 fits in usize here");
                let result = match count {
                    Some(count) => {
                        sandbox::many(&dir, mode, to_usize(count), to_usize(concurrency), true, json).map(|report| {
                            if json {
                                println!("{report}");
                            }
                            report["not_atomic"] == 0
                        })
                    }
                    None => sandbox::deal(&dir, mode, json),
                };
                result.map(|ok| ok.then_some(()).ok_or(1))
            }
            SandboxCommand::Kill { dir, name } => sandbox::kill(&dir, &name).map(Ok),
            SandboxCommand::Start { dir, name } => sandbox::start(&dir, &name).map(Ok),
            SandboxCommand::Down { dir } => sandbox::down(&dir).map(Ok),
        },
        Command::Notary { data, print_address: true, .. } => services::notary_address(&data).map(Ok),
        Command::Notary { data, listen, tls_dir, name, directory, .. } => {
            let (Some(tls_dir), Some(name), Some(directory)) = (tls_dir, name, directory) else {
                unreachable!("clap requires them unless --print-address")
            };
            services::notary_serve(services::NotaryServe { data, listen, tls_dir, name, directory }).map(Ok)
        }
        Command::Gateway { data, print_key: true, .. } => gateway_cmd::print_key(&data).map(Ok),
        Command::Gateway { data, dead_letters: true, json, .. } => gateway_cmd::dead_letters(&data, json).map(Ok),
        Command::Gateway {
            data,
            network,
            listen,
            tls_dir,
            name,
            directory,
            webhook_base_ms,
            webhook_cap_ms,
            webhook_attempts,
            webhook_timeout_ms,
            chain_key,
            ..
        } => {
            let (Some(network), Some(tls_dir), Some(name), Some(directory)) = (network, tls_dir, name, directory)
            else {
                unreachable!("clap requires them unless --print-key or --dead-letters")
            };
            let webhooks = interlock_gateway::WebhookPolicy {
                base: std::time::Duration::from_millis(webhook_base_ms),
                cap: std::time::Duration::from_millis(webhook_cap_ms),
                attempts: webhook_attempts,
                timeout: std::time::Duration::from_millis(webhook_timeout_ms),
            };
            let options =
                gateway_cmd::GatewayServe { data, network, listen, tls_dir, name, directory, webhooks, chain_key };
            gateway_cmd::serve(options).map(Ok)
        }
        Command::Observer { command: Some(ObserverCommand::Verify { data, json }), .. } => {
            observer_cmd::verify(&data, json).map(|ok| ok.then_some(()).ok_or(1))
        }
        Command::Observer { data: Some(data), print_key: true, .. } => observer_cmd::print_key(&data).map(Ok),
        Command::Observer { command: None, data, listen, http, tls_dir, name, directory, .. } => {
            let (Some(data), Some(tls_dir), Some(name), Some(directory)) = (data, tls_dir, name, directory) else {
                unreachable!("clap requires them unless --print-key")
            };
            let options = observer_cmd::ObserverServe { data, listen, http, tls_dir, name, directory };
            observer_cmd::serve(options).map(Ok)
        }
        Command::Dependent { data, listen, tls_dir, name, directory, url, kinds } => {
            let options = dependent::DependentServe { data, listen, tls_dir, name, directory, url, kinds };
            dependent::serve(options).map(Ok)
        }
        Command::Agent {
            data,
            key,
            listen,
            tls_dir,
            name,
            directory,
            auto_accept,
            quiet,
            keep_withdrawn,
            chain_key,
            ..
        } => {
            let withdrawn_retention_ms = keep_withdrawn.saturating_mul(1_000);
            let options = agent_cmd::AgentServe {
                data,
                key,
                listen,
                tls_dir,
                name,
                directory,
                auto_accept,
                quiet,
                withdrawn_retention_ms,
                chain_key,
            };
            agent_cmd::agent_serve(options).map(Ok)
        }
        Command::Deal { sandbox, name, agent, tls_dir, json, command } => {
            let target = deal_cmd::Target { agent, tls_dir, name, sandbox };
            deal(&target, command, json).map(|ok| ok.then_some(()).ok_or(1))
        }
        Command::Ledger { no_keeper, data, network, listen, tls_dir, name, directory, .. } => {
            let keeper = !no_keeper;
            services::ledger_serve(services::LedgerServe { data, network, listen, tls_dir, name, directory, keeper })
                .map(Ok)
        }
        Command::Bench { target: BenchTarget::Core { deals, mode, inflight, json } } => {
            let mode = mode.into();
            let to_usize = |n: u32| usize::try_from(n).expect("u32 fits in usize here");
            let (deals, inflight) = (to_usize(deals), to_usize(inflight));
            bench::run(&bench::Options { deals, mode, inflight, json }).map(Ok)
        }
        Command::Bench { target: BenchTarget::Sandbox { deals, concurrency, mode, dir, json } } => {
            let mode = mode.into();
            let to_usize = |n: u32| usize::try_from(n).expect("u32 fits in usize here");
            let options =
                bench::SandboxOptions { deals: to_usize(deals), concurrency: to_usize(concurrency), mode, json, dir };
            bench::sandbox(&options).map(|atomic| atomic.then_some(()).ok_or(1))
        }
        Command::Bench { target: BenchTarget::Gas { json } } => gas_cmd::run(json).map(Ok),
    };
    match result {
        Ok(Ok(())) => ExitCode::SUCCESS,
        Ok(Err(code)) => ExitCode::from(code),
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::from(2)
        }
    }
}

fn deal(target: &deal_cmd::Target, command: DealCommand, json: bool) -> anyhow::Result<bool> {
    use deal_cmd::Action;
    let action = match command {
        DealCommand::Propose { to, role, mode, payment, delivery, window, observers, dependents, policy } => {
            Action::Propose {
                request: Box::new(policy.apply(interlock_proto::v1::ProposeDealRequest {
                    counterparty: to,
                    role: role.as_str().into(),
                    mode: interlock_core::Mode::from(mode).to_string(),
                    payment: Some(deal_cmd::leg_spec(&payment)?),
                    delivery: Some(deal_cmd::leg_spec(&delivery)?),
                    window_ms: window * 1_000,
                    observers,
                    dependents,
                    ..Default::default()
                })),
            }
        }
        DealCommand::Accept { deal } => Action::Accept { deal },
        DealCommand::Cancel { deal } => Action::Cancel { deal },
        DealCommand::Status { deal } => Action::Status { deal },
        DealCommand::List { state, limit } => Action::List { state: state.map(|state| state.0.as_str().into()), limit },
        DealCommand::Watch { deal } => Action::Watch { deal },
    };
    deal_cmd::run(target, action, json)
}

fn sim(seeds: u64, from: u64, trace: bool, json: bool) -> anyhow::Result<Result<(), u8>> {
    if trace {
        std::env::set_var("INTERLOCK_SIM_TRACE", "1");
    }
    let started = std::time::Instant::now();
    let done = std::sync::atomic::AtomicU64::new(0);
    let step = (seeds / 20).max(1);
    let progress = |_seed: u64| {
        let finished = done.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
        if !json && finished.is_multiple_of(step) {
            eprintln!("  {finished} of {seeds} seeds passed ({:.0} s)", started.elapsed().as_secs_f64());
        }
    };
    match interlock_sim::run_seeds(from, seeds, &progress) {
        Ok(reports) => {
            let deals: usize = reports.iter().map(|r| r.deals).sum();
            let completed: usize = reports.iter().map(|r| r.completed).sum();
            let refunded: usize = reports.iter().map(|r| r.refunded).sum();
            let steps: usize = reports.iter().map(|r| r.steps).sum();
            let seconds = started.elapsed().as_secs_f64();
            if json {
                let report = serde_json::json!({
                    "seeds": seeds, "from": from, "violations": 0, "deals": deals,
                    "completed": completed, "refunded": refunded, "steps": steps, "seconds": seconds,
                });
                println!("{report}");
            } else {
                println!(
                    "{seeds} seeds from {from}: no invariant broken; {deals} deals ({completed} completed, {refunded} refunded), {steps} steps checked in {seconds:.1} s"
                );
            }
            Ok(Ok(()))
        }
        Err(violation) => {
            if json {
                let report = serde_json::json!({
                    "seeds": seeds, "from": from, "violations": 1,
                    "seed": violation.seed, "step": violation.step, "message": violation.message,
                });
                println!("{report}");
            } else {
                println!("{violation}");
            }
            Ok(Err(1))
        }
    }
}
