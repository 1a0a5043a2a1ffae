//! A sandbox that one command owns for the length of its run (a bench):
//! every process it starts stops when that command ends, however it ends —
//! Ctrl-C, `timeout`'s SIGTERM, SIGKILL. Each child's stdin is a pipe whose
//! other end only the owner holds; the kernel closes it when the owner goes,
//! and the child, which reads it to its end, exits then. A sandbox started by
//! `sandbox up` is not owned: it outlives the command, by design.

use std::io::Read as _;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{Mutex, PoisonError};

/// Set in an owned child's environment: its stdin is its owner's pipe.
const OWNER_PIPE: &str = "INTERLOCK_OWNER_PIPE";

/// The owner's ends of its children's pipes, held until it exits.
static OWNED: Mutex<Option<Vec<ChildStdin>>> = Mutex::new(None);

/// From now on the sandbox processes this process starts stop when it ends.
pub fn own_started_processes() {
    OWNED.lock().unwrap_or_else(PoisonError::into_inner).get_or_insert_with(Vec::new);
}

/// Gives `command` its owner's pipe, when this process owns what it starts.
pub(super) fn prepare(command: &mut Command) {
    if OWNED.lock().unwrap_or_else(PoisonError::into_inner).is_some() {
        command.stdin(Stdio::piped()).env(OWNER_PIPE, "1");
    }
}

/// Keeps the owner's end of `child`'s pipe open for as long as this process lives.
pub(super) fn keep(child: &mut Child) {
    if let (Some(stdin), Some(owned)) =
        (child.stdin.take(), OWNED.lock().unwrap_or_else(PoisonError::into_inner).as_mut())
    {
        owned.push(stdin);
    }
}

/// In a process an owner started: exits once the owner is gone (its pipe
/// reads to its end). Anything this process acknowledged is already on disk:
/// stopping here is a crash it was built to survive. Elsewhere, nothing.
pub fn exit_with_owner() {
    if std::env::var_os(OWNER_PIPE).is_none() {
        return;
    }
    std::thread::spawn(|| {
        let mut stdin = std::io::stdin().lock();
        let mut sink = [0u8; 64];
        while matches!(stdin.read(&mut sink), Ok(read) if read > 0) {}
        eprintln!("the command that started this sandbox process is gone: stopping");
        std::process::exit(0);
    });
}
