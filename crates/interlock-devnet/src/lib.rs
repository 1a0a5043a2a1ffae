//! The development networks behind the `interlock` command: two funded
//! networks in process and the runtime that drives deals over them, the demo,
//! the benchmarks, the multi-process sandbox and the sample dependent it runs.
//! The binary parses arguments and calls these; what they report they print.

pub mod alloc;
pub mod bench;
pub mod demo;
mod demo_external;
mod demo_inspection;
pub mod demo_routed;
pub use demo_external::ExternalKind;
pub mod dependent;
pub mod follow_bench;
pub mod role_costs;
pub mod runtime;
pub mod sandbox;
pub mod setup;
