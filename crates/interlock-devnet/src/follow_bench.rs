//! `interlock bench follow`: how fast a restarted gateway catches up with an
//! anvil chain, and with how many node calls, whatever the chain's length.
//!
//! A gateway (the real `GatewayService`, on its own SQLite file) follows a
//! fresh anvil chain with the escrow deployed while `blocks` empty blocks are
//! mined; it is stopped, 10 more blocks are mined, and it is started again
//! from its saved cursor. The run reports how long the restarted gateway took
//! to save a cursor at the chain's head, and the JSON-RPC calls it made on the
//! way, counted by a proxy between it and the node.

use anyhow::Context as _;
use axum::body::Bytes;
use axum::extract::State;
use interlock_chain::{Credentials, Cursor, Platform};
use interlock_core::crypto::PartyKey;
use interlock_core::NetworkId;
use interlock_gateway::gateway_store::GatewayStore;
use interlock_gateway::{Chain, GatewayConfig, GatewayService, Relay};
use interlock_identity::{Directory, GatewayEntry, NetworkEntry};
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Blocks mined by one `anvil_mine` call while the gateway follows.
const MINE_BATCH_BLOCKS: u64 = 500;
/// Blocks mined while the gateway is down, before it restarts.
const BLOCKS_WHILE_DOWN: u64 = 10;
/// How long the gateway may take to reach the head before the run fails.
const CATCH_UP_TIME_MAX: Duration = Duration::from_secs(120);
const NETWORK: NetworkId = NetworkId(2);

/// What `bench follow` measured.
#[derive(Clone, Debug, serde::Serialize)]
pub struct FollowReport {
    /// Blocks mined while the gateway followed the first time.
    pub blocks: u64,
    /// The chain's height when the restarted gateway caught up.
    pub head: u64,
    /// From the first start until the saved cursor reached the head, ms.
    pub first_follow_ms: u64,
    /// From the restart until the saved cursor reached the new head, ms.
    pub catch_up_ms: u64,
    /// JSON-RPC calls the restarted gateway made until it caught up.
    pub catch_up_rpc_calls: u64,
    /// The same, by method.
    pub catch_up_rpc_calls_by_method: BTreeMap<String, u64>,
}

/// Counts the JSON-RPC calls (single or batched) that pass through it.
struct CountingProxy {
    url: String,
    counts: Arc<Mutex<BTreeMap<String, u64>>>,
    task: tokio::task::JoinHandle<()>,
}

struct ProxyState {
    upstream: String,
    counts: Arc<Mutex<BTreeMap<String, u64>>>,
    client: reqwest::Client,
}

impl Drop for CountingProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl CountingProxy {
    async fn start(upstream: &str) -> anyhow::Result<CountingProxy> {
        let counts = Arc::new(Mutex::new(BTreeMap::new()));
        let state = Arc::new(ProxyState {
            upstream: upstream.to_owned(),
            counts: counts.clone(),
            client: reqwest::Client::new(),
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let url = format!("http://{}", listener.local_addr()?);
        let router = axum::Router::new().route("/", axum::routing::post(forward)).with_state(state);
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        });
        Ok(CountingProxy { url, counts, task })
    }

    /// The calls counted since the last take, by method.
    fn take(&self) -> BTreeMap<String, u64> {
        std::mem::take(&mut *self.counts.lock().unwrap_or_else(std::sync::PoisonError::into_inner))
    }
}

async fn forward(State(state): State<Arc<ProxyState>>, body: Bytes) -> axum::response::Response {
    use axum::response::IntoResponse as _;
    let request: serde_json::Value = serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null);
    let calls = match &request {
        serde_json::Value::Array(calls) => calls.iter().collect(),
        single => vec![single],
    };
    {
        let mut counts = state.counts.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        for call in calls {
            let method = call.get("method").and_then(serde_json::Value::as_str).unwrap_or("?");
            *counts.entry(method.to_owned()).or_default() += 1;
        }
    }
    let sent = state.client.post(&state.upstream).header("content-type", "application/json").body(body).send();
    match sent.await {
        Ok(answer) => {
            let status = answer.status().as_u16();
            let bytes = answer.bytes().await.unwrap_or_default();
            let status = axum::http::StatusCode::from_u16(status).unwrap_or(axum::http::StatusCode::BAD_GATEWAY);
            (status, [("content-type", "application/json")], bytes).into_response()
        }
        Err(error) => (axum::http::StatusCode::BAD_GATEWAY, error.to_string()).into_response(),
    }
}

/// Runs the benchmark with `blocks` blocks mined while the gateway follows;
/// `progress` hears of each stage.
pub async fn run(blocks: u64, progress: &dyn Fn(&str)) -> anyhow::Result<FollowReport> {
    let devnet = interlock_evm::devnet::Devnet::start(1).await.context("starting anvil")?;
    let proxy = CountingProxy::start(devnet.anvil.endpoint()).await?;
    let dir = tempfile::tempdir()?;
    let deploy_height = devnet.escrow.deploy_height().unwrap_or(0);
    let config = serde_json::json!({
        "rpc": proxy.url,
        "escrow": devnet.escrow.address().to_string(),
        "confirmations": 1,
        "assets": {},
        "deploy_height": deploy_height,
    });
    let gateway =
        Following { config, store: dir.path().join("gateway.sqlite"), rpc: devnet.anvil.endpoint().to_owned() };

    progress(&format!("following while {blocks} blocks are mined"));
    let started = Instant::now();
    let running = gateway.start().await?;
    let mut mined = 0;
    while mined < blocks {
        let batch = MINE_BATCH_BLOCKS.min(blocks - mined);
        mine(&devnet, batch).await?;
        mined += batch;
    }
    let head = gateway.head().await?;
    gateway.wait_for(head).await?;
    let first_follow_ms = elapsed_ms(started);
    drop(running);

    progress(&format!("stopped; {BLOCKS_WHILE_DOWN} more blocks, then a restart"));
    mine(&devnet, BLOCKS_WHILE_DOWN).await?;
    let head = gateway.head().await?;
    proxy.take();
    let restarted = Instant::now();
    let running = gateway.start().await?;
    gateway.wait_for(head).await?;
    let catch_up_ms = elapsed_ms(restarted);
    let by_method = proxy.take();
    drop(running);
    Ok(FollowReport {
        blocks,
        head,
        first_follow_ms,
        catch_up_ms,
        catch_up_rpc_calls: by_method.values().sum(),
        catch_up_rpc_calls_by_method: by_method,
    })
}

fn elapsed_ms(since: Instant) -> u64 {
    u64::try_from(since.elapsed().as_millis()).unwrap_or(u64::MAX)
}

async fn mine(devnet: &interlock_evm::devnet::Devnet, blocks: u64) -> anyhow::Result<()> {
    use interlock_evm::alloy::providers::Provider as _;
    let _: serde_json::Value =
        devnet.provider.raw_request("anvil_mine".into(), (format!("0x{blocks:x}"),)).await.context("mining blocks")?;
    Ok(())
}

/// A gateway of the benchmark's chain, started and stopped over one store.
struct Following {
    config: serde_json::Value,
    store: std::path::PathBuf,
    /// The node itself, for its height (not counted).
    rpc: String,
}

impl Following {
    /// Starts the gateway from its saved cursor (or where the escrow begins);
    /// dropping what it returns stops it.
    async fn start(&self) -> anyhow::Result<interlock_gateway::GatewayTasks> {
        let platform = interlock_evm::EvmPlatform;
        let store = GatewayStore::open(&self.store)?;
        let from = match store.cursor()? {
            Some(cursor) => cursor,
            None => platform.first_cursor(NETWORK, &self.config)?,
        };
        let follower = platform.follower(NETWORK, &self.config, &Credentials::default(), from).await?;
        let key = PartyKey::from_seed([9; 32]);
        let directory = Arc::new(directory(&self.config, &key));
        let chain = Chain {
            follower,
            keeper: None,
            relay: Relay::Direct { endpoint: "the bench's anvil".into() },
            platform: platform.name().to_owned(),
            capabilities: platform.capabilities(),
        };
        let config = GatewayConfig {
            key,
            network: NETWORK,
            chain,
            peers: Default::default(),
            notaries: Default::default(),
            directory,
            clock: crate::setup::now_ms,
            timings: Default::default(),
        };
        let service = GatewayService::open(config, store)?;
        Ok(service.start())
    }

    async fn head(&self) -> anyhow::Result<u64> {
        use interlock_evm::alloy::providers::Provider as _;
        let provider = interlock_evm::http::read_only(&self.rpc, None)?;
        Ok(provider.get_block_number().await?)
    }

    /// Waits until the gateway's saved cursor reaches `height`.
    async fn wait_for(&self, height: u64) -> anyhow::Result<()> {
        let deadline = Instant::now() + CATCH_UP_TIME_MAX;
        loop {
            if saved(&self.store)?.is_some_and(|cursor| cursor.height >= height) {
                return Ok(());
            }
            anyhow::ensure!(
                Instant::now() < deadline,
                "the gateway did not reach block {height} in time (its saved cursor: {:?})",
                saved(&self.store)?
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
}

fn saved(path: &Path) -> anyhow::Result<Option<Cursor>> {
    Ok(GatewayStore::open(path)?.cursor()?)
}

/// A directory with the benchmark's one network and its gateway.
fn directory(config: &serde_json::Value, key: &PartyKey) -> Directory {
    Directory {
        networks: vec![NetworkEntry {
            id: NETWORK,
            name: "chain".into(),
            platform: interlock_evm::EvmPlatform.name().into(),
            config: config.clone(),
        }],
        gateways: vec![GatewayEntry {
            name: "chain-gateway".into(),
            network: NETWORK,
            endpoint: "127.0.0.1:1".into(),
            key: key.public(),
        }],
        ..Directory::default()
    }
}
