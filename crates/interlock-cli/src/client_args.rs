//! The arguments of the `deal` commands and the values several commands
//! share (the service roles' flags are their settings, in `settings`). Every list of accepted values
//! is the parser's own (a `ValueEnum`), so a help text can never name more or
//! fewer values than the parser accepts.

use clap::builder::PossibleValue;
use clap::{Subcommand, ValueEnum};
use interlock_agent::store::DealState;
use interlock_identity::Role;
use interlock_rpc::server::{lazy_channel, TlsFiles};
use std::path::PathBuf;
use tonic::transport::Channel;

/// Which running service an operator's command speaks to, and as whom.
pub struct Target {
    /// The service's `host:port`; without it, where the sandbox has it.
    pub endpoint: Option<String>,
    /// Holds ca.pem and `<name>.pem` / `<name>.key` (default: the sandbox's tls/).
    pub tls_dir: Option<PathBuf>,
    /// Who acts: a party (to its agent) or a notary (to itself).
    pub name: String,
    pub sandbox: PathBuf,
}

impl Target {
    /// A channel to the service with `name`'s certificate; without an
    /// endpoint, `in_sandbox` finds it from the sandbox's files.
    pub fn channel(&self, in_sandbox: impl FnOnce(&Target) -> anyhow::Result<String>) -> anyhow::Result<Channel> {
        let endpoint = match &self.endpoint {
            Some(endpoint) => endpoint.clone(),
            None => in_sandbox(self)?,
        };
        let tls_dir = self.tls_dir.clone().unwrap_or_else(|| self.sandbox.join("tls"));
        Ok(lazy_channel(&endpoint, &TlsFiles::in_dir(&tls_dir, &self.name))?)
    }
}

#[derive(Clone, Copy, ValueEnum)]
pub enum RoleArg {
    Buyer,
    Seller,
}

impl RoleArg {
    pub fn as_str(self) -> &'static str {
        match self {
            RoleArg::Buyer => "buyer",
            RoleArg::Seller => "seller",
        }
    }
}

#[derive(Clone, Copy, ValueEnum)]
pub enum ModeArg {
    Hashlock,
    Notary,
}

impl From<ModeArg> for interlock_core::Mode {
    fn from(mode: ModeArg) -> interlock_core::Mode {
        match mode {
            ModeArg::Hashlock => interlock_core::Mode::Hashlock,
            ModeArg::Notary => interlock_core::Mode::Notary,
        }
    }
}

/// A clap value for each of `$all`, named as its `as_str` names it: the
/// parser accepts exactly the names the type itself knows.
macro_rules! value_enum_of {
    ($(#[$doc:meta])* $arg:ident($inner:ty), $values:ident = $all:expr) => {
        $(#[$doc])*
        #[derive(Clone, Copy)]
        pub struct $arg(pub $inner);

        const $values: [$arg; $all.len()] = {
            let mut values = [$arg($all[0]); $all.len()];
            let mut index = 1;
            while index < values.len() {
                values[index] = $arg($all[index]);
                index += 1;
            }
            values
        };

        impl ValueEnum for $arg {
            fn value_variants<'a>() -> &'a [$arg] {
                &$values
            }

            fn to_possible_value(&self) -> Option<PossibleValue> {
                Some(PossibleValue::new(self.0.as_str()))
            }
        }
    };
}

value_enum_of! {
    /// A deal state, as the agent names and accepts them (`DealState::ALL`).
    StateArg(DealState), STATES = DealState::ALL
}

value_enum_of! {
    /// A certificate's role, as the certificate authority names and accepts them (`Role::ALL`).
    CertRoleArg(Role), CERT_ROLES = Role::ALL
}

#[derive(Subcommand)]
// Parsed once per run and matched at once: the size of its largest variant costs nothing.
#[allow(clippy::large_enum_variant)]
pub enum DealCommand {
    /// Draft a deal with a counterparty, sign it and send it through the gateways.
    Propose {
        /// The counterparty's name in the directory.
        #[arg(long)]
        to: String,
        /// This party's role: the buyer pays, the seller delivers.
        #[arg(long, value_enum, default_value_t = RoleArg::Buyer)]
        role: RoleArg,
        /// How it settles: notary (the directory's notaries decide, a majority
        /// signs) or hashlock (no third party; the buyer proposes).
        #[arg(long, value_enum, default_value_t = ModeArg::Notary)]
        mode: ModeArg,
        /// What the buyer pays: AMOUNT ASSET@NETWORK.
        #[arg(long)]
        payment: String,
        /// What the seller delivers: AMOUNT ASSET@NETWORK.
        #[arg(long)]
        delivery: String,
        /// Seconds the deal may take before it refunds.
        #[arg(long, default_value_t = 60, value_parser = clap::value_parser!(u64).range(2..=604_800))]
        window: u64,
        /// An observer to name in the terms, by its directory name (repeatable).
        #[arg(long = "observer")]
        observers: Vec<String>,
        /// A dependent to name in the terms (told when the deal completes), by
        /// its directory name (repeatable).
        #[arg(long = "dependent")]
        dependents: Vec<String>,
        #[command(flatten)]
        policy: crate::deal_cmd::PolicyArgs,
    },
    /// Countersign a proposal this party received; the agent then runs the deal.
    Accept { deal: String },
    /// Withdraw from a deal that has not started reserving.
    Cancel { deal: String },
    /// One deal: its legs, state and every step so far.
    Status { deal: String },
    /// The party's deals, newest first.
    List {
        /// Only deals in this state.
        #[arg(long, value_enum)]
        state: Option<StateArg>,
        #[arg(long, default_value_t = 50)]
        limit: u32,
    },
    /// Follow a deal live, one line per step, until it ends. Exits 0 if it completed.
    Watch { deal: String },
    /// Dispute a deal inside its inspection period: its notaries then release
    /// nothing unless their operators decide to; they may reverse both legs.
    Dispute {
        deal: String,
        /// Why, for the notaries' operators.
        #[arg(long)]
        reason: String,
    },
}
