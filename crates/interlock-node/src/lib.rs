//! Interlock's services over gRPC with mutual TLS. Each service is a thin driver
//! around the core and the ledger: it decodes requests into domain types at the
//! edge, calls them, and maps their errors to gRPC statuses.

pub mod agent;
pub mod gateway;
pub mod gateway_store;
pub mod ledger_node;
pub mod metrics;
pub mod notary_service;
pub mod observer;
pub mod server;
pub mod status;
pub mod stores;
pub mod wire;
