//! Serving each role: the per-role `serve_*` functions, from the role crates.

pub use interlock_gateway::serve as serve_gateway;
pub use interlock_ledger_node::serve as serve_ledger_node;
