//! Serving each role: the per-role `serve_*` functions over
//! [`interlock_rpc::server`].

pub use interlock_gateway::serve as serve_gateway;
pub use interlock_ledger_node::serve as serve_ledger_node;
use interlock_rpc::server::{serve, ServeError, TlsFiles, MESSAGE_LEN_MAX};

use interlock_identity::Directory;
use std::sync::Arc;
use tokio::net::TcpListener;

/// Serves a party's agent on `listener` until `shutdown` resolves.
pub async fn serve_agent(
    service: crate::agent::AgentService,
    tls: &TlsFiles,
    directory: Arc<Directory>,
    listener: TcpListener,
    shutdown: impl std::future::Future<Output = ()> + Send,
) -> Result<(), ServeError> {
    let agent = service.server().max_decoding_message_size(MESSAGE_LEN_MAX);
    serve(agent, tls, directory, listener, shutdown).await
}
