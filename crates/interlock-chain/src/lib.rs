//! The platform seam: everything Interlock asks of a chain, as a few small traits.
//!
//! - [`Platform`]: what a kind of chain is — its name, how its addresses read and
//!   print, which settlement modes and asset kinds it can hold, what a notary signs
//!   so that its certificate settles a leg there, and how to check a network's
//!   platform-specific configuration.
//! - [`Submitter`]: reserve, execute or cancel one leg as one account, with typed
//!   errors ([`ChainError`]) that callers act on by kind, never by text.
//! - [`Follower`]: the escrow events of the deals it watches, block by block from a
//!   durable [`Cursor`] the caller persists, and [`ChainEvent::RolledBack`] when the
//!   chain reorganised below what it delivered.
//!
//! A platform is a crate that implements these traits and passes the
//! [`conformance`] suite; [`Platforms`] is the registry the binary fills once.
//! This crate names no platform.

// Integers from peers, chains and files are converted with `try_from` and
// checked arithmetic; a cast that could truncate, wrap or drop a sign is a
// build error (an `allow` on the smallest item says why a cast is safe).
#![deny(clippy::cast_possible_truncation, clippy::cast_possible_wrap, clippy::cast_sign_loss)]

pub mod conformance;
mod cursor;
pub mod demo;
mod error;
mod follow;
pub mod notary;
mod platform;
mod submit;

pub use cursor::Cursor;
pub use error::{ChainError, ChainErrorKind};
pub use follow::{BlockEvents, ChainEvent, Followed, Follower};
pub use notary::{LocalNotaries, NotarySigner, SpendDigest, SpendToSign};
pub use platform::{Capabilities, Credentials, LiveCheck, Platform, Platforms};
pub use submit::{Receipt, Submitter};

use std::future::Future;
use std::pin::Pin;

/// A boxed future that may move between threads: what the seam's async methods
/// return, so that the traits stay usable as `dyn` objects.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;
