//! The party agent: holds one party's key, runs its sagas against the networks'
//! gateways and the notaries, and serves the operator's `deal` commands.
//!
//! One task, the engine, owns the agent's state and its store. Everything
//! reaches it as an input on one channel: blocks from each gateway's stream,
//! deal notices (proposals and registrations) from each gateway, notaries'
//! votes, and the operator's commands. For every input it steps the sagas
//! concerned, writes what changed to SQLite in one transaction, and only then
//! acts (submits transactions, asks notaries). Chain cursors advance after a
//! block is fully processed, so a restarted agent replays what it may have
//! missed and resumes every unfinished deal.
//!
//! Open its [`AgentStore`] (`store`), start an [`AgentService`] with an
//! [`AgentConfig`] ([`AgentService::start`]), and [`serve`] it.

// Integers from peers, chains and files are converted with `try_from` and
// checked arithmetic; a cast that could truncate, wrap or drop a sign is a
// build error (an `allow` on the smallest item says why a cast is safe).
#![deny(clippy::cast_possible_truncation, clippy::cast_possible_wrap, clippy::cast_sign_loss)]

mod engine;
pub mod notaries;
mod service;
pub mod store;
pub mod terms;

pub use engine::{AgentConfig, AgentError, WITHDRAWN_RETENTION_DEFAULT_MS};
pub use notaries::RemoteNotaries;
pub use service::AgentService;
pub use store::AgentStore;

use interlock_identity::Directory;
use interlock_rpc::access::{Access, Home};
use interlock_rpc::server::{ServeError, TlsFiles, MESSAGE_LEN_MAX};
use std::sync::Arc;

/// Serves a party's agent on `listener` until `shutdown` resolves.
pub async fn serve(
    service: AgentService,
    tls: &TlsFiles,
    directory: Arc<Directory>,
    listener: tokio::net::TcpListener,
    shutdown: impl std::future::Future<Output = ()> + Send,
) -> Result<(), ServeError> {
    let access = Access::new(directory, Home::party(service.party()));
    let agent = service.server().max_decoding_message_size(MESSAGE_LEN_MAX);
    interlock_rpc::server::serve_with(agent, tls, access, listener, shutdown).await
}

/// Reads 32 bytes from the operating system's random source.
pub(crate) fn random_bytes() -> std::io::Result<[u8; 32]> {
    use std::io::Read as _;
    let mut bytes = [0; 32];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut bytes)?;
    Ok(bytes)
}
