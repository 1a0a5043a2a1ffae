//! What every Interlock service role shares. Each role (the ledger node, the
//! gateway, the notary, the observer, the party agent) is a crate of its own,
//! a thin driver around the core and the ledger: it decodes requests into
//! domain types at the edge, calls them, and maps their errors to gRPC
//! statuses. This crate is the plumbing under all of them:
//!
//! - [`access`]: who may call what — the authorisation matrix of every service
//!   and the [`Guarded`](access::Guarded) layer that enforces it, and the
//!   bounds on what an error may quote of a caller's input.
//! - [`server`]: serving over gRPC with mutual TLS behind that layer, health
//!   and reflection, and channels to other services.
//! - [`metrics`]: the process's Prometheus metrics, their endpoint and the
//!   structured logs.
//! - [`repeated`]: failures that repeat (a peer down), logged once and then
//!   counted.
//! - [`status`]: the ledger's refusals as gRPC statuses.
//! - [`wire`]: domain types to protobuf messages and back.
//! - [`store`]: what every role's SQLite store shares: [`StoreError`](store::StoreError)
//!   and opening a file with WAL and `synchronous = FULL`.

// Integers from peers, chains and files are converted with `try_from` and
// checked arithmetic; a cast that could truncate, wrap or drop a sign is a
// build error (an `allow` on the smallest item says why a cast is safe).
#![deny(clippy::cast_possible_truncation, clippy::cast_possible_wrap, clippy::cast_sign_loss)]

pub mod access;
pub mod metrics;
pub mod repeated;
pub mod server;
pub mod status;
pub mod store;
pub mod wire;
