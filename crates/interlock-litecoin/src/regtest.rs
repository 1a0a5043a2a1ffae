//! A private Litecoin chain for tests, the sandbox and the demo: `litecoind
//! -regtest` in a directory of ours on a free port, with a mining wallet,
//! brought to the height where every rule Interlock's scripts use is active
//! (MWEB from block 432, which needs a peg-in in its first block, and
//! `OP_CHECKLOCKTIMEVERIFY` from block 1351).
//!
//! The node runs under a small shell that stops it when its stdin closes, so
//! it ends with the process that started it, however that process ends.

use crate::address::Chain;
use crate::rpc::Rpc;
use interlock_chain::ChainError;
use interlock_core::Address;
use serde_json::{json, Value};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::{Duration, Instant};

/// The height regtest reaches before anything else: `OP_CHECKLOCKTIMEVERIFY`
/// (BIP 65) is enforced from block 1351 on Litecoin's regtest.
pub const READY_HEIGHT: u64 = 1360;
/// Litoshis in one LTC: what the demo and the sandbox give their parties' coins.
pub const LITOSHIS_PER_LTC: u64 = 100_000_000;
/// The first MWEB block on regtest must carry a peg-in.
const MWEB_HEIGHT: u64 = 432;
const MINING_WALLET: &str = "miner";
const STARTUP: Duration = Duration::from_secs(60);

/// How to get litecoind when it is missing.
pub const INSTALL_HINT: &str =
    "litecoind is missing: run scripts/litecoind-install (Debian: apt-get install litecoind), then try again";

/// Where litecoind is: `$LITECOIND`, else on the `PATH`.
pub fn locate() -> Result<PathBuf, ChainError> {
    if let Some(path) = std::env::var_os("LITECOIND") {
        return Ok(PathBuf::from(path));
    }
    std::env::var_os("PATH")
        .into_iter()
        .flat_map(|paths| std::env::split_paths(&paths).collect::<Vec<_>>())
        .map(|dir| dir.join("litecoind"))
        .find(|candidate| candidate.is_file())
        .ok_or_else(|| ChainError::fatal(INSTALL_HINT))
}

/// A running regtest node.
pub struct Regtest {
    shell: Child,
    /// Closing it stops the node.
    stdin: Option<ChildStdin>,
    dir: PathBuf,
    port: u16,
    rpc: Rpc,
    wallet: Rpc,
    miner: String,
}

fn free_port() -> Result<u16, ChainError> {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|address| address.port())
        .map_err(|error| ChainError::fatal(format!("no free port: {error}")))
}

impl Regtest {
    /// Starts a node in `dir` (made if missing; a node that ran there before
    /// keeps its chain) and brings it to [`READY_HEIGHT`].
    pub async fn start(dir: &Path) -> Result<Regtest, ChainError> {
        Regtest::start_on(dir, free_port()?).await
    }

    /// [`Regtest::start`] with the node's RPC on `port`.
    pub async fn start_on(dir: &Path, port: u16) -> Result<Regtest, ChainError> {
        let binary = locate()?;
        std::fs::create_dir_all(dir)
            .map_err(|error| ChainError::fatal(format!("cannot make {}: {error}", dir.display())))?;
        let arguments = [
            "-regtest".to_owned(),
            format!("-datadir={}", dir.display()),
            format!("-rpcport={port}"),
            "-rpcbind=127.0.0.1".to_owned(),
            "-rpcallowip=127.0.0.1".to_owned(),
            "-listen=0".to_owned(),
            "-server=1".to_owned(),
            "-printtoconsole=0".to_owned(),
            "-fallbackfee=0.0002".to_owned(),
            "-rpcworkqueue=64".to_owned(),
            "-rpcthreads=8".to_owned(),
            // A stopping node waits this long for idle RPC connections to close.
            "-rpcservertimeout=2".to_owned(),
        ];
        // The shell stops the node when our end of its stdin closes.
        let script = r#"node="$1"; shift; "$node" "$@" & child=$!; cat >/dev/null; kill "$child"; wait "$child""#;
        let mut shell = Command::new("sh")
            .arg("-c")
            .arg(script)
            .arg("litecoind-guard")
            .arg(&binary)
            .args(&arguments)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|error| ChainError::fatal(format!("cannot start {}: {error}", binary.display())))?;
        let stdin = shell.stdin.take();
        let cookie = dir.join("regtest").join(".cookie");
        let rpc = Rpc::new(&format!("http://127.0.0.1:{port}"), &cookie)?;
        let wallet = rpc.wallet(MINING_WALLET);
        let mut node = Regtest { shell, stdin, dir: dir.to_owned(), port, rpc, wallet, miner: String::new() };
        node.wait_ready().await?;
        node.open_wallet().await?;
        node.miner = node.wallet.call("getnewaddress", json!(["", "bech32"])).await?;
        node.bootstrap().await?;
        Ok(node)
    }

    async fn wait_ready(&mut self) -> Result<(), ChainError> {
        let started = Instant::now();
        loop {
            if let Ok(Some(status)) = self.shell.try_wait() {
                let mut stderr = String::new();
                if let Some(mut pipe) = self.shell.stderr.take() {
                    let _ = pipe.read_to_string(&mut stderr);
                }
                let log = std::fs::read_to_string(self.dir.join("regtest").join("debug.log")).unwrap_or_default();
                let tail: Vec<&str> = log.lines().rev().take(8).collect();
                return Err(ChainError::fatal(format!(
                    "litecoind exited ({status}) before it answered: {} {}",
                    stderr.trim(),
                    tail.into_iter().rev().collect::<Vec<_>>().join(" | ")
                )));
            }
            match self.rpc.call_value("getblockcount", json!([])).await {
                Ok(_) => return Ok(()),
                Err(error) if started.elapsed() > STARTUP => {
                    return Err(ChainError::fatal(format!("litecoind did not answer within {STARTUP:?}: {error}")))
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
    }

    async fn open_wallet(&self) -> Result<(), ChainError> {
        let loaded: Vec<String> = self.rpc.call("listwallets", json!([])).await?;
        if loaded.iter().any(|name| name == MINING_WALLET) {
            return Ok(());
        }
        if self.rpc.call_value("loadwallet", json!([MINING_WALLET])).await.is_ok() {
            return Ok(());
        }
        self.rpc.call_value("createwallet", json!([MINING_WALLET])).await?;
        Ok(())
    }

    async fn bootstrap(&self) -> Result<(), ChainError> {
        if self.height().await? >= READY_HEIGHT {
            return Ok(());
        }
        // Blocks mined faster than one a second are stamped ahead of the
        // clock (each must follow the median of the last eleven): mine the
        // start of the chain an hour in the past, so that its time is the
        // clock's again once it is ready.
        let now_s = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|elapsed| elapsed.as_secs())
            .unwrap_or(0);
        self.set_time(now_s.saturating_sub(3_600)).await?;
        let height = self.height().await?;
        if height < MWEB_HEIGHT - 1 {
            self.mine(MWEB_HEIGHT - 1 - height).await?;
        }
        if self.height().await? < MWEB_HEIGHT {
            // The first MWEB block must peg coins in.
            let mweb: String = self.wallet.call("getnewaddress", json!(["", "mweb"])).await?;
            self.wallet.call_value("sendtoaddress", json!([mweb, 1])).await?;
        }
        let height = self.height().await?;
        if height < READY_HEIGHT {
            self.mine(READY_HEIGHT - height).await?;
        }
        // Back to the real clock.
        self.set_time(0).await
    }

    pub async fn height(&self) -> Result<u64, ChainError> {
        Ok(self.rpc.call("getblockcount", json!([])).await?)
    }

    /// Mines `blocks` blocks to the mining wallet, with whatever the mempool holds.
    pub async fn mine(&self, blocks: u64) -> Result<(), ChainError> {
        let mut left = blocks;
        while left > 0 {
            let now = left.min(500);
            self.rpc.call_value("generatetoaddress", json!([now, self.miner])).await?;
            left -= now;
        }
        Ok(())
    }

    /// Sends `count` coins of `litoshis` each to `account` from the mining
    /// wallet (confirmed by the next block mined).
    pub async fn fund(&self, account: &Address, litoshis: u64, count: usize) -> Result<(), ChainError> {
        let address = crate::address::format(Chain::Regtest, account);
        let amount = Value::from(litoshis as f64 / 1e8);
        for _ in 0..count {
            self.wallet.call_value("sendtoaddress", json!([address, amount])).await?;
        }
        Ok(())
    }

    /// Sets the node's clock (`setmocktime`, unix seconds): the time the
    /// blocks mined from now on carry.
    pub async fn set_time(&self, unix_s: u64) -> Result<(), ChainError> {
        self.rpc.call_value("setmocktime", json!([unix_s])).await?;
        Ok(())
    }

    /// The chain's median time past, unix seconds.
    pub async fn median_time(&self) -> Result<u64, ChainError> {
        crate::chain::Node::new(self.rpc.clone()).median_time().await
    }

    /// Takes the block at `height` and every later one off the main chain
    /// (`invalidateblock`): a reorganisation, once longer blocks are mined.
    pub async fn invalidate_from(&self, height: u64) -> Result<(), ChainError> {
        let hash: String = self.rpc.call("getblockhash", json!([height])).await?;
        self.rpc.call_value("invalidateblock", json!([hash])).await?;
        Ok(())
    }

    /// Mines a block every `every` on the real clock, until the returned
    /// handle is dropped: chain time moves as it does on a live chain. Must
    /// be called within a tokio runtime.
    pub fn produce_blocks(&self, every: Duration) -> BlockProducer {
        let rpc = self.rpc.clone();
        let miner = self.miner.clone();
        let task = tokio::spawn(async move {
            let mut ticks = tokio::time::interval(every);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                ticks.tick().await;
                if let Err(error) = rpc.call_value("generatetoaddress", json!([1, miner])).await {
                    tracing::warn!(%error, "the block producer could not mine");
                }
            }
        });
        BlockProducer { task }
    }

    /// The node, for reading and sending.
    pub fn rpc(&self) -> &Rpc {
        &self.rpc
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The cookie file the node's RPC clients authenticate with.
    pub fn cookie(&self) -> PathBuf {
        self.dir.join("regtest").join(".cookie")
    }

    /// A network configuration for this node: `confirmations` deep, blocks
    /// expected every `block_interval_ms`.
    pub fn config(&self, confirmations: u64, block_interval_ms: u64) -> Value {
        let config = crate::LitecoinConfig::regtest(self.url(), &self.cookie(), confirmations, block_interval_ms);
        serde_json::to_value(config).expect("the configuration serialises")
    }
}

/// Mines blocks while it lives.
pub struct BlockProducer {
    task: tokio::task::JoinHandle<()>,
}

impl Drop for BlockProducer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Drop for Regtest {
    fn drop(&mut self) {
        // Closing the shell's stdin makes it stop the node and wait for it.
        self.stdin.take();
        let _ = self.shell.wait();
    }
}
