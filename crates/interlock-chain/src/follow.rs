//! Reading a chain's escrow events from a durable cursor.

use crate::{BoxFuture, ChainError, Cursor};
use interlock_core::{DealId, DealTerms, EscrowEvent, Hash32, NetworkId};

/// One escrow event and the transaction that caused it.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Followed {
    pub transaction: Hash32,
    pub event: EscrowEvent,
}

/// One block as a follower delivers it: final at the platform's depth.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct BlockEvents {
    /// This block: persist it with what you derive from `events`.
    pub cursor: Cursor,
    /// The block's time on the chain's own clock (the clock its deadlines use),
    /// unix milliseconds.
    pub time_ms: u64,
    /// The escrow events of watched deals in this block, in chain order.
    pub events: Vec<Followed>,
}

/// What a follower reports.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum ChainEvent {
    Block(BlockEvents),
    /// Blocks after `to` that were delivered are no longer on the chain: undo
    /// what was derived from them. The follower goes on from `to`.
    RolledBack {
        to: Cursor,
    },
}

/// Follows one network's escrow.
///
/// Contract, checked by the conformance suite:
/// - blocks come in height order, each once, after the cursor the follower was
///   made from; every escrow event of a watched deal is in exactly one of them,
///   including events that happened before [`Follower::watch`] was called but
///   after the cursor (a platform may report other deals' events too);
/// - a follower made again from the last delivered block's cursor goes on with
///   the next block: nothing lost, nothing repeated — except that a platform
///   that must be told which deals to watch may deliver once more, with its
///   next block, the earlier events of a deal watched after the restart (it
///   cannot know whether its caller recorded them), so callers record events
///   idempotently;
/// - blocks are delivered only once final at the platform's confirmation depth.
pub trait Follower: Send {
    fn network(&self) -> NetworkId;
    /// The last block delivered (or the cursor the follower started from).
    fn cursor(&self) -> Cursor;
    /// Reports the escrow events of `terms`' legs on this network from now on.
    /// By default nothing to do: a platform that can read every escrow event
    /// reports them all.
    fn watch(&mut self, terms: &DealTerms) -> Result<(), ChainError> {
        let _ = terms;
        Ok(())
    }
    /// Stops reporting a deal (it ended).
    fn forget(&mut self, deal_id: DealId) {
        let _ = deal_id;
    }
    /// What became final since the last poll: zero or more blocks, or a rollback.
    fn poll(&mut self) -> BoxFuture<'_, Result<Vec<ChainEvent>, ChainError>>;
}
