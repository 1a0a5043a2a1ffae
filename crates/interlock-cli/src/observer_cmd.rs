//! `interlock observer`: the observer as a process (its gRPC service and its
//! web page), and `interlock observer verify`, which re-checks its log.

use crate::services::seed_file;
use anyhow::Context as _;
use interlock_core::crypto::PartyKey;
use interlock_core::hash::to_hex;
use interlock_observer::{log, ObserverLog, ObserverService};
use interlock_proto::v1::gateway_client::GatewayClient;
use interlock_rpc::server::{bind, lazy_channel, ServiceFiles};
use std::collections::HashMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The observer's ed25519 seed, in its data directory.
const KEY_FILE: &str = "observer.key";
/// The observer's log.
const LOG_FILE: &str = "observer.sqlite";

pub struct ObserverServe {
    pub data: PathBuf,
    pub listen: std::net::SocketAddr,
    pub http: std::net::SocketAddr,
    pub files: ServiceFiles,
}

fn observer_key(data: &Path) -> anyhow::Result<PartyKey> {
    std::fs::create_dir_all(data).with_context(|| format!("cannot create {}", data.display()))?;
    Ok(PartyKey::from_seed(seed_file(&data.join(KEY_FILE), "an ed25519 seed")?))
}

/// Prints the observer's public key (creating its seed on first use), for the directory.
pub fn print_key(data: &Path) -> anyhow::Result<()> {
    println!("{}", to_hex(&observer_key(data)?.public().0));
    Ok(())
}

/// Runs the observer until interrupted: follows the gateways the directory
/// lists, serves `Observer` over gRPC on `listen` and the web page on `http`.
/// Prints `listening on ADDRESS (...)` once both serve.
pub fn serve(options: ObserverServe) -> anyhow::Result<()> {
    let key = observer_key(&options.data)?;
    let key_hex = to_hex(&key.public().0);
    let tls = options.files.tls();
    let directory = options.files.directory()?;
    match directory.observer(&options.files.name) {
        Some(entry) if entry.key != key.public() => anyhow::bail!(
            "the directory lists observer {} with key {}, but its key in {} is {key_hex} (see --print-key)",
            options.files.name,
            to_hex(&entry.key.0),
            options.data.display()
        ),
        Some(_) => {}
        None => anyhow::bail!("the directory lists no observer named {}", options.files.name),
    }
    let log = ObserverLog::open(&options.data.join(LOG_FILE), key)?;
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(async move {
        let mut gateways = HashMap::new();
        for entry in &directory.gateways {
            gateways.insert(entry.network, GatewayClient::new(lazy_channel(&entry.endpoint, &tls)?));
        }
        let directory = Arc::new(directory);
        let service = ObserverService::new(log, directory.clone(), gateways, crate::setup::now_ms)?;
        service.start()?;
        let (listener, address) = bind(options.listen).await?;
        let (http_listener, http_address) = bind(options.http).await?;
        let web = tokio::spawn(interlock_observer::web::serve(service.clone(), http_listener, async {
            let _ = tokio::signal::ctrl_c().await;
        }));
        println!(
            "listening on {address} (observer {}, key {key_hex}; web page on http://{http_address}/)",
            options.files.name
        );
        std::io::stdout().flush()?;
        let shutdown = async {
            let _ = tokio::signal::ctrl_c().await;
        };
        interlock_observer::serve(service, &tls, directory, listener, shutdown).await?;
        web.abort();
        anyhow::Ok(())
    })
}

/// Re-checks the log in `data`; `Ok(false)` (and the first broken record
/// named) when any link, hash or signature does not check.
pub fn verify(data: &Path, json: bool) -> anyhow::Result<bool> {
    let path = data.join(LOG_FILE);
    if !path.exists() {
        anyhow::bail!("no observer log at {}: expected the --data directory of an observer", path.display());
    }
    let key_path = data.join(KEY_FILE);
    let seed = seed_file_existing(&key_path)?;
    let observer = PartyKey::from_seed(seed).public();
    let stored = log::stored_key(&path)?;
    let verified = match stored {
        Some(stored) if stored != observer => log::Verified {
            records: 0,
            last_hash: interlock_core::Hash32([0; 32]),
            broken: Some(log::Broken {
                seq: 0,
                deal_id: None,
                problem: format!(
                    "the log says it was written by key {}, but the observer's key is {}",
                    to_hex(&stored.0),
                    to_hex(&observer.0)
                ),
            }),
        },
        _ => log::verify(&path, observer)?,
    };
    if json {
        let broken = verified.broken.as_ref().map(
            |b| serde_json::json!({"seq": b.seq, "deal_id": b.deal_id.map(|d| d.0.to_hex()), "problem": b.problem}),
        );
        let report = serde_json::json!({
            "ok": broken.is_none(), "records": verified.records, "last_hash": verified.last_hash.to_hex(),
            "observer_key": to_hex(&observer.0), "broken": broken,
        });
        println!("{report}");
    } else {
        match &verified.broken {
            None => println!(
                "observer log {}: {} records, chain intact, every signature by {}; last hash {}",
                path.display(),
                verified.records,
                to_hex(&observer.0),
                verified.last_hash.to_hex()
            ),
            Some(broken) => {
                let deal = broken.deal_id.map_or_else(String::new, |d| format!(" (deal {})", d.0.to_hex()));
                println!(
                    "observer log {}: record {}{deal} is broken: {}; the {} records before it check",
                    path.display(),
                    broken.seq,
                    broken.problem,
                    verified.records
                );
            }
        }
    }
    Ok(verified.broken.is_none())
}

/// The observer's seed; unlike serving, verifying never creates one.
fn seed_file_existing(path: &Path) -> anyhow::Result<[u8; 32]> {
    if !path.exists() {
        anyhow::bail!("no observer key at {}: verify needs the key that signed the log", path.display());
    }
    seed_file(path, "an ed25519 seed")
}
