//! `interlock`: one binary for every role and operator command.

// Integers from peers, chains and files are converted with `try_from` and
// checked arithmetic; a cast that could truncate, wrap or drop a sign is a
// build error (an `allow` on the smallest item says why a cast is safe).
#![deny(clippy::cast_possible_truncation, clippy::cast_possible_wrap, clippy::cast_sign_loss)]

mod agent_cmd;
mod chain_cmd;
mod client_args;
mod config_cmd;
mod deal_cmd;
mod directory_cmd;
mod gas_cmd;
mod gateway_cmd;
mod notary_cmd;
mod observer_cmd;
mod services;
mod settings;
mod sim_cmd;
mod spends_cmd;

use clap::{Parser, Subcommand};
use client_args::{CertRoleArg, DealCommand, ModeArg, Target};
use interlock_devnet::{bench, demo, dependent, sandbox};
use settings::{AgentArgs, DependentArgs, GatewayArgs, LedgerArgs, NotaryArgs, ObserverArgs};
use std::path::PathBuf;
use std::process::ExitCode;

/// The flag the gateway and the agent take their own chain key by (the key
/// `chain_key` of their config files), and its help: they name the platform,
/// so they stay here.
const CHAIN_KEY_FLAG: &str = "--evm-key";
const CHAIN_KEY_LONG: &str = "evm-key";
const GATEWAY_CHAIN_KEY_HELP: &str = "On an EVM network: the secp256k1 key file (64 hex digits) of the keeper \
    account the directory names there. Without it the gateway follows and records, but keeps nothing. Key: chain_key.";
const AGENT_CHAIN_KEY_HELP: &str = "The party's secp256k1 key file (64 hex digits) for the EVM networks of the \
    directory; its address must be the party's listed account there. Key: chain_key.";

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
    after_help = "Examples:\n  interlock demo                      three deals on two embedded ledgers\n  interlock demo --json               the same, as one JSON object\n  interlock demo --evm                the deals across an embedded ledger and an EVM chain (anvil)\n  interlock demo --litecoin           hashlock deals across an embedded ledger and Litecoin (regtest litecoind)\n  interlock sim --seeds 100000        the simulator over 100,000 seeds\n  interlock sim --from 42 --seeds 1 --trace\n                                      replay one seed, step by step\n  interlock bench core --mode notary  throughput, memory and the signature bound\n  interlock sandbox up                eleven processes on loopback: ledgers, gateways, notaries, agents, a dependent, an observer\n  interlock sandbox deal              a deal through them, step by step\n  interlock deal --as buyer list      the buyer's deals, from its agent"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// Runs a role with its resolved `options` until interrupted, its logs set up
/// and its metrics served on `metrics` when given: only once its settings
/// have all been checked, so a wrong one binds nothing.
fn run_service<T>(
    metrics: Option<std::net::SocketAddr>,
    options: T,
    serve: fn(T) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    interlock_rpc::metrics::init_logs();
    if let Some(address) = metrics {
        let bound = interlock_rpc::metrics::serve_in_background(address)
            .map_err(|error| anyhow::anyhow!("cannot serve metrics on {address}: {error}"))?;
        eprintln!("metrics on {bound}");
    }
    serve(options)
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
        /// Print one JSON object {"deals": [...]} instead of the step-by-step story
        /// (with --routed also "routes", "messages" and "completed").
        #[arg(long)]
        json: bool,
        /// Make beta an EVM chain: a local anvil (installed by scripts/npm-install)
        /// with the escrow contract, an ERC-20 and an ERC-721; alpha stays an
        /// embedded ledger. The deals then cross platforms.
        #[arg(long, conflicts_with = "litecoin")]
        evm: bool,
        /// Make beta a Litecoin chain: a regtest litecoind (installed by
        /// scripts/litecoind-install) in the demo's directory, mining a block a
        /// second; legs there are P2WSH hashlock scripts. Three hashlock deals:
        /// LTC delivered, LTC paid, and LTC refunded after its lock time.
        #[arg(long)]
        litecoin: bool,
        /// Two networks whose gateways cannot reach each other: runs three
        /// ledgers (alpha's and gamma's gateways linked only to beta's), their
        /// gateways, notaries, agents, observer and dependent on threads of
        /// this one process, talking gRPC over mutual TLS on loopback; settles
        /// a hashlock and a notary deal between alpha and gamma, prints the
        /// path each gateway message took, and stops them all. The roles'
        /// own output goes to DIR/logs/roles.log.
        #[arg(long, conflicts_with_all = ["evm", "litecoin"])]
        routed: bool,
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
        command: directory_cmd::DirectoryCommand,
    },
    /// Run a ledger node: one embedded network's sequencer, over gRPC with mutual TLS.
    #[command(after_help = "Every setting may come from a TOML file instead (--config FILE), keys named as\n\
        the flags: `network = 1`, `tls_dir = \"tls\"`. See docs/configuration.md.")]
    Ledger(LedgerArgs),
    /// Run a notary: one of a deal's k-of-n set, over gRPC with mutual TLS. It
    /// follows the networks of its deals through their gateways and records
    /// each decision before it signs.
    #[command(
        args_conflicts_with_subcommands = true,
        subcommand_negates_reqs = true,
        after_help = "Every setting may come from a TOML file instead (--config FILE), keys named as\n\
        the flags: `name = \"n1\"`, `tls_dir = \"tls\"`. See docs/configuration.md.\n\n\
        Its operator decides disputed deals: interlock notary decide DEAL --decision reverse --name n1"
    )]
    Notary {
        #[command(subcommand)]
        command: Option<NotaryCommand>,
        #[command(flatten)]
        settings: NotaryArgs,
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
           --tls-dir tls --name gw-alpha --directory directory.json\n  \
        or keep the settings of step 5 in a TOML file, keys named as the flags, and start it\n  \
        with `interlock gateway --config gw-alpha.toml`; a [networks.alpha] table there sets\n  \
        this gateway's own settings over the directory's (e.g. `node = \"10.0.0.5:7101\"`).\n  \
        See docs/configuration.md.")]
    Gateway(GatewayArgs),
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
        6. interlock observer verify --data obs\n\n\
        Every setting may come from a TOML file instead (--config FILE), keys named as\n\
        the flags: `http = \"127.0.0.1:7680\"`. See docs/configuration.md."
    )]
    Observer {
        #[command(subcommand)]
        command: Option<ObserverCommand>,
        #[command(flatten)]
        settings: ObserverArgs,
    },
    /// Run a sample dependent (a warranty service): it subscribes its webhook
    /// at every gateway of the directory, checks each POST's HMAC signature,
    /// keeps each event once by its Idempotency-Key, logs the completions it
    /// receives, and lists what it received at GET /received (JSON).
    #[command(after_help = "Every setting may come from a TOML file instead (--config FILE), keys named as\n\
        the flags: `kinds = [\"completed\"]` (for --kind). See docs/configuration.md.")]
    Dependent(DependentArgs),
    /// Run a party's agent: it holds the party's key, runs its deals against the
    /// networks' gateways and the notaries, records every step in SQLite before
    /// acting on it, resumes unfinished deals on restart and refunds at expiry.
    /// The operator drives it with `interlock deal`.
    #[command(after_help = "Every setting may come from a TOML file instead (--config FILE), keys named as\n\
        the flags: `auto_accept = true`, `keep_withdrawn = 3600`, and [networks.NAME] tables\n\
        over the directory's configuration of a network. See docs/configuration.md.")]
    Agent(AgentArgs),
    /// Check a role's config file without starting anything: parse it, merge
    /// it as the role would, and print the effective settings, or say what is
    /// wrong (an unknown key, a missing setting, a bad value, a network key
    /// only the directory may set); then check that every private key it
    /// names is its owner's alone (mode 0600). Exits 1 if a key is not.
    Config {
        #[command(subcommand)]
        command: ConfigCommand,
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
    /// Put the escrow on a chain Interlock does not own.
    Deploy {
        #[command(subcommand)]
        target: DeployTarget,
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
enum ConfigCommand {
    /// Parse FILE as ROLE's config file and merge it as the role would
    /// (with the directory's network configuration where the file has
    /// [networks.NAME] tables); print the effective settings, or exit 2 saying
    /// what is wrong.
    Check {
        #[arg(long, value_enum)]
        role: config_cmd::Role,
        #[arg(long, value_name = "FILE")]
        config: PathBuf,
        /// Print one JSON object {"role", "settings", "networks"}.
        #[arg(long)]
        json: bool,
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

/// A notary operator's commands, run against the notary with its own
/// certificate (`--name`, from `--tls-dir`).
#[derive(Subcommand)]
enum NotaryCommand {
    /// Decide a deal disputed inside its inspection period: release pays both
    /// held legs to their beneficiaries, reverse returns both to their owners.
    /// Made once and final; the notary records it before it signs.
    Decide {
        /// The deal id (64 hex digits).
        deal: String,
        #[arg(long, value_parser = ["release", "reverse"])]
        decision: String,
        #[command(flatten)]
        target: NotaryTarget,
    },
    /// Where a deal's inspection period stands at this notary: open,
    /// disputed (with the reason), release or reverse.
    Inspection {
        deal: String,
        #[command(flatten)]
        target: NotaryTarget,
    },
}

#[derive(clap::Args)]
struct NotaryTarget {
    /// The notary's name in the directory, whose certificate the command uses.
    #[arg(long)]
    name: String,
    /// The notary's host:port (default: its endpoint in the sandbox's directory).
    #[arg(long)]
    notary: Option<String>,
    /// Holds ca.pem and NAME.pem / NAME.key (default: the sandbox's tls/).
    #[arg(long)]
    tls_dir: Option<PathBuf>,
    #[arg(long, default_value = "interlock-sandbox")]
    sandbox: PathBuf,
    #[arg(long)]
    json: bool,
}

impl NotaryTarget {
    fn target(self) -> (Target, bool) {
        let target = Target { endpoint: self.notary, tls_dir: self.tls_dir, name: self.name, sandbox: self.sandbox };
        (target, self.json)
    }
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
        /// Given twice (`--evm --evm`), alpha becomes an EVM chain too: two anvils with
        /// different chain ids (alpha 31336, beta 31337), each with its own escrow,
        /// tokens and keeper key, and a key per party on each; `sandbox deal` then pays
        /// USDC on one chain for a DEED on the other, and `down` stops both anvils.
        #[arg(long, action = clap::ArgAction::Count)]
        evm: u8,
        /// With one --evm: use the development node already running at this URL
        /// instead of starting anvil (it must answer `anvil_setBalance` and mine
        /// blocks on its own, e.g. `anvil --block-time 0.5`); the sandbox
        /// deploys and funds there, and `down` leaves the node running.
        #[arg(long, value_name = "URL", requires = "evm")]
        evm_rpc: Option<String>,
        /// Make beta a Litecoin chain: `litecoind -regtest` (from
        /// scripts/litecoind-install) in the sandbox directory, run by a chain
        /// process that funds each party's key with 10 coins of 1 LTC and mines a
        /// block a second; beta's gateway follows it, and the agents send their
        /// beta transactions to it with their own keys. Hashlock deals only.
        #[arg(long, conflicts_with = "evm")]
        litecoin: bool,
        /// Three embedded ledgers, alpha, beta and gamma, whose directory links
        /// alpha's and gamma's gateways only to beta's: `sandbox deal` then pays
        /// USD on alpha for GOLD on gamma, and every message between their
        /// gateways goes through beta's (`interlock directory routes
        /// --directory DIR/directory.json --ca DIR/tls --from alpha --to gamma`).
        #[arg(long, conflicts_with_all = ["evm", "litecoin"])]
        routed: bool,
        /// Pairs of embedded ledgers (alpha and beta, then alpha-k and beta-k),
        /// each with its gateways; `sandbox deal --count` spreads deals across them.
        #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u8).range(1..=4),
              conflicts_with_all = ["evm", "litecoin", "routed"])]
        pairs: u8,
    },
    /// The chain process of `up --litecoin` (the sandbox starts it): a regtest
    /// litecoind in DATA with its RPC on PORT, funding each --fund address,
    /// mining a block a second until stopped.
    #[command(hide = true)]
    LitecoinNode {
        #[arg(long)]
        data: PathBuf,
        #[arg(long)]
        port: u16,
        /// An rltc1… address to give 10 coins of 1 LTC (on a fresh chain).
        #[arg(long)]
        fund: Vec<String>,
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
enum DeployTarget {
    /// Deploy the escrow contract (the committed artifact) to an EVM node and
    /// print the network's directory stanza (platform and config).
    Evm {
        /// The node's JSON-RPC endpoint, http:// or https://.
        #[arg(long)]
        rpc: String,
        /// The deployer's secp256k1 key: a file of 64 hex digits (mode 0600).
        #[arg(long)]
        key: PathBuf,
        /// For an https:// node behind a private CA: that CA's PEM certificate.
        #[arg(long)]
        rpc_ca: Option<PathBuf>,
        /// Blocks that must stand on an event before anyone acts on it.
        #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u64).range(1..=10_000))]
        confirmations: u64,
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
        /// Pairs of networks, each a ledger node and a gateway per network
        /// (alpha and beta, then alpha-k and beta-k); the deals take the pairs
        /// in turn. 1, 2 and 4 give the scale-out curve.
        #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u8).range(1..=4))]
        pairs: u8,
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
    /// Virtual bytes and fees of a Litecoin hashlock leg's lock, claim and
    /// refund as the platform signs them, beside the field's usual P2WSH swap
    /// script (keys in the script, ~100 bytes). Computed offline: no node.
    Spends {
        /// The fee rate to price each spend at, litoshis per vbyte.
        #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=100_000))]
        rate: u64,
        /// Print a list of {script, op, vbytes, weight, witness_script_bytes, fee_litoshis, rate_sat_vb}.
        #[arg(long)]
        json: bool,
    },
    /// A gateway follows a fresh anvil chain while BLOCKS blocks are mined, is
    /// stopped, 10 more are mined, and is restarted from its saved cursor: how
    /// long the catch-up took and the node calls it made.
    Follow {
        #[arg(long, default_value_t = 10_000, value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
        blocks: u64,
        #[arg(long)]
        json: bool,
    },
}

fn main() -> ExitCode {
    interlock_devnet::sandbox::exit_with_owner();
    match run(Cli::parse().command) {
        Ok(Ok(())) => ExitCode::SUCCESS,
        Ok(Err(code)) => ExitCode::from(code),
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::from(2)
        }
    }
}

/// `interlock ARGS` on a thread of this process: a role of the in-process
/// sandbox (`demo --routed`), run as its own process would run it.
fn run_role(args: Vec<String>) -> anyhow::Result<()> {
    let cli = Cli::try_parse_from(std::iter::once("interlock".to_owned()).chain(args))?;
    match run(cli.command)? {
        Ok(()) => Ok(()),
        Err(code) => anyhow::bail!("exited with status {code}"),
    }
}

/// Runs a command: Ok(Err(code)) for a command that ran and reports a
/// failure by its exit status alone.
fn run(command: Command) -> anyhow::Result<Result<(), u8>> {
    match command {
        Command::Demo { dir, json, routed: true, .. } => {
            interlock_devnet::demo_routed::run(dir, json, run_role).map(|held| held.then_some(()).ok_or(1))
        }
        Command::Demo { dir, json, evm, litecoin, routed: false } => {
            let external = match (evm, litecoin) {
                (true, _) => Some(interlock_devnet::ExternalKind::Contract),
                (_, true) => Some(interlock_devnet::ExternalKind::Litecoin),
                _ => None,
            };
            demo::run(dir, json, external).map(|held| held.then_some(()).ok_or(1))
        }
        Command::Sim { seeds, from, trace, json } => sim_cmd::run(seeds, from, trace, json),
        Command::Ca { command: CaCommand::Init { dir } } => services::ca_init(&dir).map(Ok),
        Command::Ca { command: CaCommand::Issue { dir, role, name, hosts, days, out } } => {
            services::ca_issue(&dir, role.0.as_str(), &name, &hosts, days, out.as_deref()).map(Ok)
        }
        Command::Directory { command } => directory_cmd::run(command),
        Command::Sandbox { command } => match command {
            SandboxCommand::Up { dir, manual_accept, evm, evm_rpc, litecoin, routed, pairs } => {
                let topology = if litecoin {
                    Ok(sandbox::Topology {
                        alpha: sandbox::NetworkKind::Ledger,
                        beta: sandbox::NetworkKind::NewLitecoin,
                        routed: false,
                        pairs: 1,
                    })
                } else if routed {
                    Ok(sandbox::Topology::ROUTED)
                } else if pairs > 1 {
                    sandbox::Topology::ledger_pairs(usize::from(pairs))
                } else {
                    sandbox_topology(evm, evm_rpc)
                };
                topology.and_then(|topology| sandbox::up(&dir, manual_accept, &topology)).map(Ok)
            }
            SandboxCommand::LitecoinNode { data, port, fund } => litecoin_node(&data, port, &fund).map(Ok),
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
        Command::Notary { command: Some(NotaryCommand::Decide { deal, decision, target }), .. } => {
            let (target, json) = target.target();
            notary_cmd::run(&target, &deal, Some(&decision), json).map(Ok)
        }
        Command::Notary { command: Some(NotaryCommand::Inspection { deal, target }), .. } => {
            let (target, json) = target.target();
            notary_cmd::run(&target, &deal, None, json).map(Ok)
        }
        Command::Notary { command: None, settings } => notary(settings).map(Ok),
        Command::Gateway(flags) => gateway(flags).map(Ok),
        Command::Observer { command: Some(ObserverCommand::Verify { data, json }), .. } => {
            observer_cmd::verify(&data, json).map(|ok| ok.then_some(()).ok_or(1))
        }
        Command::Observer { command: None, settings } => observer(settings).map(Ok),
        Command::Dependent(flags) => settings::merged(flags)
            .map_err(anyhow::Error::from)
            .and_then(|settings| dependent::serve(settings.resolve()?))
            .map(Ok),
        Command::Agent(flags) => agent(flags).map(Ok),
        Command::Config { command: ConfigCommand::Check { role, config, json } } => {
            config_cmd::check(role, &config, json).map(|ok| ok.then_some(()).ok_or(1))
        }
        Command::Deal { sandbox, name, agent, tls_dir, json, command } => {
            let target = Target { endpoint: agent, tls_dir, name, sandbox };
            deal(&target, command, json).map(|ok| ok.then_some(()).ok_or(1))
        }
        Command::Ledger(flags) => ledger(flags).map(Ok),
        Command::Bench { target: BenchTarget::Core { deals, mode, inflight, json } } => {
            let mode = mode.into();
            let to_usize = |n: u32| usize::try_from(n).expect("u32 fits in usize here");
            let (deals, inflight) = (to_usize(deals), to_usize(inflight));
            bench::run(&bench::Options { deals, mode, inflight, json }).map(Ok)
        }
        Command::Bench { target: BenchTarget::Sandbox { deals, concurrency, mode, pairs, dir, json } } => {
            let mode = mode.into();
            let to_usize = |n: u32| usize::try_from(n).expect("u32 fits in usize here");
            let (deals, concurrency, pairs) = (to_usize(deals), to_usize(concurrency), usize::from(pairs));
            let options = bench::SandboxOptions { deals, concurrency, mode, pairs, json, dir };
            bench::sandbox(&options).map(|atomic| atomic.then_some(()).ok_or(1))
        }
        Command::Bench { target: BenchTarget::Gas { json } } => gas_cmd::run(json).map(Ok),
        Command::Bench { target: BenchTarget::Spends { rate, json } } => spends_cmd::run(rate, json).map(Ok),
        Command::Bench { target: BenchTarget::Follow { blocks, json } } => {
            chain_cmd::bench_follow(blocks, json).map(Ok)
        }
        Command::Deploy { target: DeployTarget::Evm { rpc, key, rpc_ca, confirmations } } => {
            chain_cmd::deploy_escrow(&rpc, &key, rpc_ca.as_deref(), confirmations).map(Ok)
        }
    }
}

/// `sandbox litecoin-node`: runs until stopped.
fn litecoin_node(data: &std::path::Path, port: u16, fund: &[String]) -> anyhow::Result<()> {
    let chain = interlock_litecoin::Chain::Regtest;
    let accounts =
        fund.iter().map(|text| interlock_litecoin::address::parse(chain, text)).collect::<Result<Vec<_>, _>>()?;
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    Ok(runtime.block_on(interlock_litecoin::sandbox::serve(data, port, &accounts))?)
}

/// The sandbox's networks from `--evm` (how often it was given) and `--evm-rpc`.
fn sandbox_topology(evm: u8, evm_rpc: Option<String>) -> anyhow::Result<sandbox::Topology> {
    use sandbox::NetworkKind::{ChainAt, Ledger, NewChain};
    let (alpha, beta) = match (evm, evm_rpc) {
        (0, _) => (Ledger, Ledger),
        (1, None) => (Ledger, NewChain),
        (1, Some(rpc)) => (Ledger, ChainAt(rpc)),
        (2, None) => (NewChain, NewChain),
        (2, Some(_)) => anyhow::bail!(
            "--evm-rpc names one node for beta, but --evm --evm starts an anvil for each network: give one --evm with it"
        ),
        (many, _) => anyhow::bail!("--evm given {many} times: once makes beta an EVM chain, twice alpha too"),
    };
    Ok(sandbox::Topology { alpha, beta, routed: false, pairs: 1 })
}

/// The role commands: settings from the flags over the `--config` file,
/// checked, then the role runs until interrupted.
fn ledger(flags: LedgerArgs) -> anyhow::Result<()> {
    let settings = settings::merged(flags)?;
    run_service(settings.metrics, settings.resolve()?, services::ledger_serve)
}

fn notary(flags: NotaryArgs) -> anyhow::Result<()> {
    let settings = settings::merged(flags)?;
    if settings.print_address {
        return services::notary_address(&settings.data()?);
    }
    run_service(settings.metrics, settings.resolve()?, services::notary_serve)
}

fn gateway(flags: GatewayArgs) -> anyhow::Result<()> {
    let settings = settings::merged(flags)?;
    if settings.print_key {
        return gateway_cmd::print_key(&settings.data()?);
    }
    if settings.dead_letters {
        return gateway_cmd::dead_letters(&settings.data()?, settings.json);
    }
    run_service(settings.metrics, settings.resolve()?, gateway_cmd::serve)
}

fn observer(flags: ObserverArgs) -> anyhow::Result<()> {
    let settings = settings::merged(flags)?;
    if settings.print_key {
        return observer_cmd::print_key(&settings.data()?);
    }
    observer_cmd::serve(settings.resolve()?)
}

fn agent(flags: AgentArgs) -> anyhow::Result<()> {
    let settings = settings::merged(flags)?;
    run_service(settings.metrics, settings.resolve()?, agent_cmd::agent_serve)
}

fn deal(target: &Target, command: DealCommand, json: bool) -> anyhow::Result<bool> {
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
        DealCommand::Dispute { deal, reason } => Action::Dispute { deal, reason },
        DealCommand::Status { deal } => Action::Status { deal },
        DealCommand::List { state, limit } => Action::List { state: state.map(|state| state.0.as_str().into()), limit },
        DealCommand::Watch { deal } => Action::Watch { deal },
    };
    deal_cmd::run(target, action, json)
}
