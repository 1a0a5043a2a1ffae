//! A local anvil node on a free loopback port, for tests and the gas benchmark.
//!
//! anvil comes from the npm package `@foundry-rs/anvil`, pinned in the repository's
//! `package-lock.json` and installed by `scripts/test` (through `scripts/npm-install`).

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long anvil may take to print its listening address.
pub const ANVIL_START_TIMEOUT_MS: u64 = 30_000;
/// Output lines read while waiting for the listening address, at most.
const ANVIL_BANNER_LINES_MAX: usize = 1_000;

/// Set to an anvil binary to use it instead of the npm-installed one.
pub const ANVIL_PATH_VARIABLE: &str = "INTERLOCK_ANVIL";

#[derive(Debug, thiserror::Error)]
pub enum AnvilError {
    #[error("anvil not found (looked at {searched}): run scripts/test (it installs anvil from npm), or set {ANVIL_PATH_VARIABLE}")]
    NotFound { searched: String },
    #[error("cannot start anvil at {path}: {error}")]
    Spawn { path: PathBuf, error: std::io::Error },
    #[error("anvil at {path} did not print its listening address within {timeout_ms} ms; last output: {output}")]
    NoAddress { path: PathBuf, timeout_ms: u64, output: String },
}

/// A running anvil, killed when dropped.
#[derive(Debug)]
pub struct Anvil {
    child: Child,
    endpoint: String,
    chain_id: u64,
}

/// The chain id of the anvil nodes started here (anvil's default).
pub const ANVIL_CHAIN_ID: u64 = 31_337;

impl Anvil {
    /// Starts anvil on 127.0.0.1 with a port the OS picks, no prefunded accounts
    /// (tests fund their own keys with `anvil_setBalance`) and instant mining.
    pub fn start() -> Result<Anvil, AnvilError> {
        Anvil::start_mining(None)
    }

    /// [`Anvil::start`], but mining a block every `block_time_ms` (interval mining,
    /// as a real chain does) instead of one per transaction. Confirmation depths
    /// only mean something on such a chain.
    pub fn start_mining(block_time_ms: Option<u64>) -> Result<Anvil, AnvilError> {
        Anvil::start_chain(ANVIL_CHAIN_ID, block_time_ms)
    }

    /// [`Anvil::start_mining`] as the chain `chain_id`: two nodes with
    /// different ids are two chains, whose transactions (EIP-155) and
    /// contracts' `block.chainid` differ.
    pub fn start_chain(chain_id: u64, block_time_ms: Option<u64>) -> Result<Anvil, AnvilError> {
        let path = locate()?;
        let mut command = Command::new(&path);
        command.args(["--host", "127.0.0.1", "--port", "0", "--accounts", "0", "--chain-id"]);
        command.arg(chain_id.to_string());
        if let Some(block_time_ms) = block_time_ms {
            // anvil takes fractional seconds.
            command.arg("--block-time").arg(format!("{}.{:03}", block_time_ms / 1000, block_time_ms % 1000));
        }
        let mut child = command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|error| AnvilError::Spawn { path: path.clone(), error })?;
        let stdout = child.stdout.take().expect("stdout is piped");
        let (sender, receiver) = std::sync::mpsc::channel();
        // Read the banner on a thread so a silent anvil cannot block past the timeout;
        // the thread keeps draining stdout afterwards so anvil never blocks on a full pipe.
        std::thread::spawn(move || {
            let mut lines = BufReader::new(stdout).lines();
            let mut last = String::new();
            for _ in 0..ANVIL_BANNER_LINES_MAX {
                let Some(Ok(line)) = lines.next() else { break };
                if let Some(address) = line.strip_prefix("Listening on ") {
                    let _ = sender.send(Ok(address.trim().to_owned()));
                    for _ in lines.by_ref() {}
                    return;
                }
                last = line;
            }
            let _ = sender.send(Err(last));
        });
        let deadline = Instant::now() + Duration::from_millis(ANVIL_START_TIMEOUT_MS);
        let address = match receiver.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            Ok(Ok(address)) => address,
            Ok(Err(output)) => return Err(no_address(&mut child, path, output)),
            Err(_) => return Err(no_address(&mut child, path, "nothing".to_owned())),
        };
        Ok(Anvil { child, endpoint: format!("http://{address}"), chain_id })
    }

    /// The JSON-RPC endpoint, `http://127.0.0.1:PORT`.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    pub fn chain_id(&self) -> u64 {
        self.chain_id
    }
}

impl Drop for Anvil {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn no_address(child: &mut Child, path: PathBuf, output: String) -> AnvilError {
    let _ = child.kill();
    let _ = child.wait();
    AnvilError::NoAddress { path, timeout_ms: ANVIL_START_TIMEOUT_MS, output }
}

/// `$INTERLOCK_ANVIL`, else the binary npm installed under this repository's
/// `node_modules` (found from the build's source directory, then from the current
/// directory upwards).
pub fn locate() -> Result<PathBuf, AnvilError> {
    if let Some(path) = std::env::var_os(ANVIL_PATH_VARIABLE) {
        let path = PathBuf::from(path);
        if path.is_file() {
            return Ok(path);
        }
        return Err(AnvilError::NotFound { searched: format!("{ANVIL_PATH_VARIABLE}={}", path.display()) });
    }
    let mut roots = vec![Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")];
    if let Ok(current) = std::env::current_dir() {
        roots.extend(current.ancestors().map(Path::to_path_buf));
    }
    let mut searched = Vec::new();
    for root in roots {
        for candidate in npm_binaries(&root) {
            if candidate.is_file() {
                return Ok(candidate);
            }
            searched.push(candidate.display().to_string());
        }
    }
    Err(AnvilError::NotFound { searched: searched.join(", ") })
}

/// The platform package's binary first (no Node.js process in between, so killing it
/// kills anvil), then npm's launcher.
fn npm_binaries(root: &Path) -> [PathBuf; 2] {
    let platform = match (std::env::consts::OS, std::env::consts::ARCH) {
        ("linux", "aarch64") => "anvil-linux-arm64",
        ("macos", "x86_64") => "anvil-darwin-amd64",
        ("macos", "aarch64") => "anvil-darwin-arm64",
        _ => "anvil-linux-amd64",
    };
    let modules = root.join("node_modules");
    [modules.join("@foundry-rs").join(platform).join("bin/anvil"), modules.join(".bin/anvil")]
}
