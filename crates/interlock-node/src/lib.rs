//! Interlock's services over gRPC with mutual TLS. Each service is a thin driver
//! around the core and the ledger: it decodes requests into domain types at the
//! edge, calls them, and maps their errors to gRPC statuses.

mod roles;

pub use interlock_gateway as gateway;
pub use interlock_gateway::gateway_store;
pub use interlock_ledger_node as ledger_node;
pub use interlock_rpc::{metrics, status, wire};

/// Serving over gRPC with mutual TLS, and each role's `serve_*` function.
pub mod server {
    pub use crate::roles::*;
    pub use interlock_rpc::server::*;
}
