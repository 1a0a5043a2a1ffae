//! Interlock's protocol core.
//!
//! Pure and sans-IO: the domain types, the canonical encoding and deal ids,
//! signatures and tokens, and the three state machines (the party [`saga`], the
//! [`notary`] decider and the [`escrow`] rules). Time, randomness, chain events and
//! messages come in as arguments; transactions to submit, messages to send and the
//! next wake-up go out as return values. This crate never reads a clock, draws a
//! random number, opens a socket or touches a file.

// Integers from peers, chains and files are converted with `try_from` and
// checked arithmetic; a cast that could truncate, wrap or drop a sign is a
// build error (an `allow` on the smallest item says why a cast is safe).
#![deny(clippy::cast_possible_truncation, clippy::cast_possible_wrap, clippy::cast_sign_loss)]

pub mod counters;
pub mod crypto;
pub mod encoding;
pub mod escrow;
pub mod hash;
pub mod inspection;
pub mod limits;
pub mod notary;
pub mod policy;
pub mod saga;
mod swap;
pub mod timing;
pub mod types;
pub mod verdict;

pub use crypto::{Certificate, Decision, Ed25519Signature, NotaryKey, PartyKey, Secret, Token, Vote};
pub use escrow::{Condition, EscrowError, EscrowEvent, EscrowOp, Reservation, ReservationState, ReserveRequest, Rules};
pub use hash::{DealId, Hash32, ReservationId};
pub use inspection::{Disputer, Inspection};
pub use timing::NetworkTiming;
pub use types::*;
