//! A sandbox whose roles run on threads of the command that starts it rather
//! than as processes of their own (`interlock demo --routed`). Each role runs
//! exactly what `interlock ROLE --config FILE` runs (the binary hands over its
//! own command-line entry, a [`RunRole`]), with its own async runtime, store
//! files, certificate and listening socket: every call between roles is still
//! gRPC over mutual TLS on loopback. They stop together on an interrupt,
//! which is what stops a role process too.

use std::net::ToSocketAddrs as _;
use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Where the roles' output goes, in the sandbox's `logs`: one file for all.
pub const ROLES_LOG: &str = "roles.log";

/// Runs `interlock ARGS` (a role, which returns once interrupted).
pub type RunRole = fn(Vec<String>) -> anyhow::Result<()>;

/// The roles started on threads of this process, to wait for and to stop.
pub struct InProcess {
    run: RunRole,
    roles: Mutex<Vec<RoleThread>>,
}

struct RoleThread {
    name: String,
    handle: JoinHandle<()>,
    /// Why the role returned early, if it failed.
    failure: Arc<Mutex<Option<String>>>,
}

impl InProcess {
    pub fn new(run: RunRole) -> InProcess {
        InProcess { run, roles: Mutex::new(Vec::new()) }
    }

    /// Starts `interlock ARGS` as the thread `name`. A `--config FILE` in
    /// `args` is relative to `dir`, as it is for a process started there.
    pub(super) fn start(&self, dir: &Path, name: &str, args: &[String]) -> anyhow::Result<()> {
        let mut args = args.to_vec();
        if let Some(at) = args.iter().position(|arg| arg == "--config") {
            if let Some(file) = args.get_mut(at + 1) {
                *file = dir.join(&*file).display().to_string();
            }
        }
        let failure = Arc::new(Mutex::new(None));
        let (run, failed) = (self.run, failure.clone());
        let handle = std::thread::Builder::new().name(name.to_owned()).spawn(move || {
            if let Err(error) = run(args) {
                *failed.lock().unwrap_or_else(PoisonError::into_inner) = Some(format!("{error:#}"));
            }
        })?;
        let role = RoleThread { name: name.to_owned(), handle, failure };
        self.roles.lock().unwrap_or_else(PoisonError::into_inner).push(role);
        Ok(())
    }

    /// Waits until the role `name` accepts connections at `address`, or says
    /// why it stopped.
    pub(super) fn wait_serving(&self, name: &str, address: &str) -> anyhow::Result<()> {
        let started = Instant::now();
        let target = address.to_socket_addrs()?.next();
        loop {
            if let Some(target) = target {
                if std::net::TcpStream::connect_timeout(&target, Duration::from_millis(200)).is_ok() {
                    return Ok(());
                }
            }
            if let Some(failure) = self.failure(name) {
                anyhow::bail!("{name} did not start: {failure}");
            }
            if started.elapsed() > super::START_TIME_MAX {
                anyhow::bail!("{name} did not accept connections at {address} within {:?}", super::START_TIME_MAX);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn failure(&self, name: &str) -> Option<String> {
        let roles = self.roles.lock().unwrap_or_else(PoisonError::into_inner);
        let role = roles.iter().find(|role| role.name == name)?;
        let failure = role.failure.lock().unwrap_or_else(PoisonError::into_inner).clone();
        failure.or_else(|| role.handle.is_finished().then(|| "it returned while it should serve".to_owned()))
    }

    /// Interrupts every role (SIGINT, which each serves until) and waits up
    /// to `within` for their threads to end. Returns the names of those that
    /// did not end in time, and the failures of those that did.
    pub fn stop(&self, within: Duration) -> (Vec<String>, Vec<String>) {
        let roles = std::mem::take(&mut *self.roles.lock().unwrap_or_else(PoisonError::into_inner));
        if roles.is_empty() {
            return (Vec::new(), Vec::new());
        }
        // With no handler installed (no role got as far as serving), the
        // interrupt would end this process: install one first. Once it is
        // installed, it stays for the life of the process.
        if let Ok(runtime) = tokio::runtime::Builder::new_current_thread().enable_all().build() {
            let _entered = runtime.enter();
            let _ = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt());
        }
        let _ = rustix::process::kill_process(rustix::process::getpid(), rustix::process::Signal::INT);
        let deadline = Instant::now() + within;
        while Instant::now() < deadline && roles.iter().any(|role| !role.handle.is_finished()) {
            std::thread::sleep(Duration::from_millis(20));
        }
        let (mut running, mut failures) = (Vec::new(), Vec::new());
        for role in roles {
            if !role.handle.is_finished() {
                running.push(role.name);
                continue;
            }
            let _ = role.handle.join();
            if let Some(failure) = role.failure.lock().unwrap_or_else(PoisonError::into_inner).take() {
                failures.push(format!("{}: {failure}", role.name));
            }
        }
        (running, failures)
    }
}

/// This process's standard output and error moved into a file while it
/// lives (the roles' own lines: listening, metrics, logs), and back when it
/// is dropped. [`OutputMoved::terminal`] writes where standard output went
/// before.
pub struct OutputMoved {
    stdout: std::os::fd::OwnedFd,
    stderr: std::os::fd::OwnedFd,
}

impl OutputMoved {
    pub fn to(file: &Path) -> anyhow::Result<OutputMoved> {
        use std::io::Write as _;
        let log = std::fs::OpenOptions::new().create(true).append(true).open(file)?;
        std::io::stdout().flush()?;
        let stdout = rustix::io::dup(std::io::stdout())?;
        let stderr = rustix::io::dup(std::io::stderr())?;
        rustix::stdio::dup2_stdout(&log)?;
        rustix::stdio::dup2_stderr(&log)?;
        Ok(OutputMoved { stdout, stderr })
    }

    /// A writer to the standard output from before the move.
    pub fn terminal(&self) -> anyhow::Result<std::fs::File> {
        Ok(std::fs::File::from(rustix::io::dup(&self.stdout)?))
    }
}

impl Drop for OutputMoved {
    fn drop(&mut self) {
        use std::io::Write as _;
        let _ = std::io::stdout().flush();
        let _ = rustix::stdio::dup2_stdout(&self.stdout);
        let _ = rustix::stdio::dup2_stderr(&self.stderr);
    }
}
