//! Sending one leg's escrow operation.

use crate::{BoxFuture, ChainError};
use interlock_core::escrow::ReservationState;
use interlock_core::{Address, DealTerms, EscrowOp, Hash32, LegKind, NetworkId};

/// What a platform says about an operation it took.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Receipt {
    /// The transaction's id on its chain.
    pub transaction: Hash32,
    /// The block that holds it, once the platform knows.
    pub height: Option<u64>,
}

/// Reserves, executes and cancels legs on one network, signing as one account.
///
/// Contract, checked by the conformance suite:
/// - `submit` refuses an operation the chain's escrow rules would refuse with
///   [`ChainErrorKind::Rejected`](crate::ChainErrorKind::Rejected) and changes nothing;
/// - an operation whose leg is already where it would take it answers
///   [`ChainErrorKind::AlreadyDone`](crate::ChainErrorKind::AlreadyDone), so callers may
///   resend freely;
/// - a transient failure answers
///   [`ChainErrorKind::RetryLater`](crate::ChainErrorKind::RetryLater).
pub trait Submitter: Send + Sync {
    fn network(&self) -> NetworkId;
    /// The account this submitter signs for, as the deal terms name it.
    fn account(&self) -> Address;
    /// Sends `op` for the deal with `terms` (whose leg it names must be on this
    /// network) and answers once the chain took it.
    fn submit<'a>(&'a self, terms: &'a DealTerms, op: &'a EscrowOp) -> BoxFuture<'a, Result<Receipt, ChainError>>;
    /// Where `leg` of the deal with `terms` (a leg on this network) stands in
    /// the chain's newest state: `None` while nothing is reserved for it. A
    /// party reads it after a reorganisation took blocks away, to learn what
    /// its side must send again; it is never a reason to act on the other
    /// leg, which waits for the follower's confirmed events.
    fn leg_state<'a>(
        &'a self,
        terms: &'a DealTerms,
        leg: LegKind,
    ) -> BoxFuture<'a, Result<Option<ReservationState>, ChainError>>;
    /// Whether this network can hold `leg` of `terms` as agreed, asked before
    /// a party signs the deal: `Ok`, or why not (an asset this platform does
    /// not hold, an output its node would refuse as dust, an amount that
    /// cannot pay for its own spend). By default, every leg: the escrow's
    /// rules decide when it is reserved.
    fn check_leg<'a>(&'a self, terms: &'a DealTerms, leg: LegKind) -> BoxFuture<'a, Result<(), ChainError>> {
        let _ = (terms, leg);
        Box::pin(async { Ok(()) })
    }
}
