//! `interlock directory …`: sign a directory, check its networks against
//! their live nodes, and show the routes gateway messages take.

use anyhow::{bail, Context as _};
use clap::Subcommand;
use interlock_core::NetworkId;
use interlock_identity::{Directory, SignedDirectory};
use std::path::{Path, PathBuf};

#[derive(Subcommand)]
pub enum DirectoryCommand {
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
    /// Check every network of a signed directory against its live node: its
    /// platform's configuration, then what the platform can check on the
    /// node (for a contract chain: the chain id, the escrow's code at its
    /// address and its deploy height, the confirmation depth and the token
    /// contracts). Exits 1 when a check fails.
    Check {
        /// The signed directory.
        #[arg(long)]
        directory: PathBuf,
        /// The CA directory whose certificate signed it.
        #[arg(long)]
        ca: PathBuf,
        #[arg(long)]
        json: bool,
    },
    /// The routes a gateway message takes from one network's gateway to
    /// another's, best first: the fewest hops, then the lowest sum of the
    /// links' preferences. A directory without `links` is a full mesh (every
    /// gateway calls every other directly). Exits 1 when no route exists.
    #[command(after_help = "Links are listed in the directory as\n  \
        \"links\": [{\"networks\": [1, 2]}, {\"networks\": [2, 3], \"preference\": 5}]\n\
        and are signed with the rest of it. Example:\n  \
        interlock directory routes --directory directory.json --ca tls --from alpha --to gamma")]
    Routes {
        /// The signed directory.
        #[arg(long)]
        directory: PathBuf,
        /// The CA directory whose certificate signed it.
        #[arg(long)]
        ca: PathBuf,
        /// Where the message starts: a network's name or id.
        #[arg(long)]
        from: String,
        /// Where it goes: a network's name or id.
        #[arg(long)]
        to: String,
        /// Most routes to list.
        #[arg(long, default_value_t = 4)]
        most: usize,
        #[arg(long)]
        json: bool,
    },
}

pub fn run(command: DirectoryCommand) -> anyhow::Result<Result<(), u8>> {
    match command {
        DirectoryCommand::Sign { ca, input, output } => crate::services::directory_sign(&ca, &input, &output).map(Ok),
        DirectoryCommand::Check { directory, ca, json } => {
            crate::chain_cmd::directory_check(&directory, &ca, json).map(|ok| ok.then_some(()).ok_or(1))
        }
        DirectoryCommand::Routes { directory, ca, from, to, most, json } => {
            routes(&load(&directory, &ca)?, &from, &to, most, json)
        }
    }
}

/// The directory at `path`, checked against the CA in `ca_dir`.
pub fn load(path: &Path, ca_dir: &Path) -> anyhow::Result<Directory> {
    let ca = interlock_identity::load_certificate(&ca_dir.join(interlock_identity::CA_CERTIFICATE_FILE))?;
    SignedDirectory::load_verified(path, &ca)
        .with_context(|| format!("{} is not a directory the CA in {} signed", path.display(), ca_dir.display()))
}

/// A network of `directory` named by its name or its id.
fn network(directory: &Directory, text: &str) -> anyhow::Result<NetworkId> {
    let found = match text.parse::<u64>() {
        Ok(id) => directory.network(NetworkId(id)),
        Err(_) => directory.networks.iter().find(|entry| entry.name == text),
    };
    match found {
        Some(entry) => Ok(entry.id),
        None => {
            let known: Vec<String> =
                directory.networks.iter().map(|entry| format!("{} ({})", entry.name, entry.id.0)).collect();
            bail!("no network {text:?} in the directory: expected one of {}", known.join(", "))
        }
    }
}

fn routes(directory: &Directory, from: &str, to: &str, most: usize, json: bool) -> anyhow::Result<Result<(), u8>> {
    let (from, to) = (network(directory, from)?, network(directory, to)?);
    if from == to {
        bail!("--from and --to name the same network: a route joins two different ones");
    }
    let name = |id: NetworkId| directory.network(id).map_or_else(|| id.0.to_string(), |entry| entry.name.clone());
    let routes = directory.routes(from, to, most);
    if json {
        let listed: Vec<serde_json::Value> = routes
            .iter()
            .map(|route| {
                serde_json::json!({
                    "networks": route.networks.iter().map(|id| name(*id)).collect::<Vec<_>>(),
                    "ids": route.networks.iter().map(|id| id.0).collect::<Vec<_>>(),
                    "hops": route.hops(),
                    "preference": route.preference,
                })
            })
            .collect();
        let meshed = directory.links.is_none();
        println!(
            "{}",
            serde_json::json!({ "from": name(from), "to": name(to), "full_mesh": meshed, "routes": listed })
        );
    } else if routes.is_empty() {
        println!("no route from {} to {}: no chain of links joins their gateways", name(from), name(to));
    } else {
        println!("routes from {} to {}, best first:", name(from), name(to));
        for (index, route) in routes.iter().enumerate() {
            let path: Vec<String> = route.networks.iter().map(|id| name(*id)).collect();
            let via = if route.hops() == 1 { "direct".to_owned() } else { format!("{} hops", route.hops()) };
            println!("  {}. {}  ({via}, preference {})", index + 1, path.join(" -> "), route.preference);
        }
    }
    Ok(if routes.is_empty() { Err(1) } else { Ok(()) })
}
