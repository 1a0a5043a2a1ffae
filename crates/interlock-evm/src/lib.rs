//! Interlock on EVM chains.
//!
//! The escrow itself is the Solidity contract `contracts/InterlockEscrow.sol`; its
//! compiled artifact is committed under `contracts/out` and [`bindings`] turns it into
//! Rust types at build time. [`EscrowClient`] deploys the contract and sends reserve,
//! execute and cancel for one account set; [`EvmReservation`] maps a deal leg (the
//! core's `DealId`, `LegKind`, `Condition`, `Secret`, `Certificate`) onto the
//! contract's `Terms`. [`anvil::Anvil`] starts a local node for tests and benchmarks;
//! [`gas`] measures the contract's gas per operation for `interlock bench gas`;
//! [`demo`] is the demo's chain (`interlock demo --evm`) and [`sandbox`] runs a sandbox network as an anvil chain (`interlock sandbox up --evm`).
//!
//! [`chain`] drives the core's sagas on an EVM network: [`chain::EvmEscrow`] sends
//! their escrow operations (own nonce numbering for concurrent submissions,
//! EIP-1559 fees) and [`chain::EvmFollower`] turns the contract's logs back into
//! escrow events at a confirmation depth, refusing to go on past a deeper reorg.

// Integers from peers, chains and files are converted with `try_from` and
// checked arithmetic; a cast that could truncate, wrap or drop a sign is a
// build error (an `allow` on the smallest item says why a cast is safe).
#![deny(clippy::cast_possible_truncation, clippy::cast_possible_wrap, clippy::cast_sign_loss)]

pub mod anvil;
pub mod bindings;
pub mod chain;
mod client;
pub mod demo;
pub mod devnet;
mod error;
pub mod gas;
pub mod http;
pub mod live;
mod platform;
mod provider_error;
mod reservation;
pub mod sandbox;

pub use client::{connect, connect_trusting, EscrowClient, SlotState, Submitted};
pub use error::{describe, EvmError, TokenErrors};
pub use platform::{
    adapter_error, evm_error, parse_evm_address, read_signer, EvmAssetConfig, EvmConfig, EvmPlatform, EvmSubmitter,
    Finality,
};
pub use reservation::{notary_set_bytes, notary_set_hash, EvmAsset, EvmReservation, MODE_HASHLOCK, MODE_NOTARY};

pub use alloy;
