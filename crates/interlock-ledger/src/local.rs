//! The embedded ledger behind the platform seam, in process: a [`LocalLedger`]
//! shares one [`Ledger`] between submitters (one per signing account) that seal
//! a block for each operation, and followers that read its committed blocks.
//! The in-process demo runtime and the conformance suite use it; services reach
//! a ledger through its node instead.

use crate::error::LedgerError;
use crate::ledger::Ledger;
use crate::store::Store;
use crate::tx::{Op, Transaction};
use interlock_chain::{BlockEvents, BoxFuture, ChainError, ChainEvent, Cursor, Followed, Follower, Receipt, Submitter};
use interlock_core::crypto::PartyKey;
use interlock_core::escrow::{EscrowError, ReservationState};
use interlock_core::{reservation_id, Address, DealTerms, EscrowOp, LegKind, NetworkId};
use std::sync::{Arc, Mutex, MutexGuard};

/// Blocks one poll of a [`LocalFollower`] delivers, at most.
pub const FOLLOW_BLOCKS_MAX: u64 = 256;

/// A clock in unix milliseconds: what stamps the blocks a submitter seals.
pub type Clock = Arc<dyn Fn() -> u64 + Send + Sync>;

/// One embedded ledger shared in process.
pub struct LocalLedger<S: Store> {
    ledger: Arc<Mutex<Ledger<S>>>,
    clock: Clock,
}

impl<S: Store> Clone for LocalLedger<S> {
    fn clone(&self) -> Self {
        LocalLedger { ledger: self.ledger.clone(), clock: self.clock.clone() }
    }
}

impl<S: Store + Send + 'static> LocalLedger<S> {
    pub fn new(ledger: Ledger<S>, clock: Clock) -> LocalLedger<S> {
        LocalLedger { ledger: Arc::new(Mutex::new(ledger)), clock }
    }

    /// The ledger, for reads and for operator transactions.
    pub fn lock(&self) -> MutexGuard<'_, Ledger<S>> {
        self.ledger.lock().expect("nothing panics while holding the ledger")
    }

    pub fn network(&self) -> NetworkId {
        self.lock().network()
    }

    /// A submitter signing as `key`'s account.
    pub fn submitter(&self, key: PartyKey) -> LocalSubmitter<S> {
        LocalSubmitter { ledger: self.clone(), key }
    }

    /// A follower of the committed blocks after `from`.
    pub fn follower(&self, from: Cursor) -> LocalFollower<S> {
        LocalFollower { ledger: self.clone(), cursor: from }
    }
}

/// Signs escrow operations as one account and seals each into a block.
pub struct LocalSubmitter<S: Store> {
    ledger: LocalLedger<S>,
    key: PartyKey,
}

impl<S: Store + Send + 'static> LocalSubmitter<S> {
    fn submit_now(&self, op: &EscrowOp) -> Result<Receipt, ChainError> {
        let mut ledger = self.ledger.lock();
        let nonce = ledger.nonce(self.key.public()) + 1;
        let transaction = Transaction::sign(&self.key, ledger.network(), nonce, Op::Escrow(op.clone()));
        let id = ledger.submit(transaction).map_err(|error| chain_error(&error))?;
        let outcome = ledger.produce_block((self.ledger.clock)()).map_err(|error| chain_error(&error))?;
        let Some(outcome) = outcome else {
            return Err(ChainError::retry_later("the ledger sealed no block"));
        };
        if let Some(rejection) = outcome.rejected.iter().find(|rejection| rejection.transaction == id) {
            return Err(chain_error(&rejection.error));
        }
        Ok(Receipt { transaction: id, height: Some(outcome.header.height) })
    }
}

impl<S: Store + Send + 'static> Submitter for LocalSubmitter<S> {
    fn network(&self) -> NetworkId {
        self.ledger.network()
    }

    fn account(&self) -> Address {
        Address::from_bytes(self.key.public().0)
    }

    fn submit<'a>(&'a self, _terms: &'a DealTerms, op: &'a EscrowOp) -> BoxFuture<'a, Result<Receipt, ChainError>> {
        Box::pin(async move { self.submit_now(op) })
    }

    fn leg_state<'a>(
        &'a self,
        terms: &'a DealTerms,
        leg: LegKind,
    ) -> BoxFuture<'a, Result<Option<ReservationState>, ChainError>> {
        let id = reservation_id(terms.id(), leg);
        let state = self.ledger.lock().state().reservation(&id).map(|reservation| reservation.state);
        Box::pin(async move { Ok(state) })
    }
}

/// What a caller does about a ledger's refusal.
pub fn chain_error(error: &LedgerError) -> ChainError {
    let message = error.to_string();
    match error {
        LedgerError::Escrow(
            EscrowError::AlreadyReserved(_)
            | EscrowError::AlreadySettled { .. }
            | EscrowError::NotHeld { state: ReservationState::Executed | ReservationState::Cancelled, .. },
        ) => ChainError::already_done(message),
        LedgerError::Escrow(_)
        | LedgerError::BadSignature { .. }
        | LedgerError::UnknownAccount(_)
        | LedgerError::AlreadyRegistered(_)
        | LedgerError::NotOperator(_)
        | LedgerError::ItemExists(_)
        | LedgerError::BadAmount
        | LedgerError::FeeRequired(_)
        | LedgerError::NoFees
        | LedgerError::NotASpend
        | LedgerError::NoInspection(_)
        | LedgerError::BadFee { .. }
        | LedgerError::ForeignAddress(_) => ChainError::rejected(message),
        LedgerError::StaleNonce { .. } | LedgerError::MempoolFull(_) | LedgerError::Store(_) => {
            ChainError::retry_later(message)
        }
        LedgerError::Decode(_)
        | LedgerError::TooLarge { .. }
        | LedgerError::WrongNetwork { .. }
        | LedgerError::StoreNetwork { .. } => ChainError::fatal(message),
    }
}

/// Reads a shared ledger's committed blocks. An embedded ledger never
/// reorganises: a cursor whose block is not the ledger's is an error, not a
/// rollback.
pub struct LocalFollower<S: Store> {
    ledger: LocalLedger<S>,
    cursor: Cursor,
}

impl<S: Store + Send + 'static> LocalFollower<S> {
    fn read(&mut self) -> Result<Vec<ChainEvent>, ChainError> {
        let ledger = self.ledger.lock();
        let store_error = |error: LedgerError| ChainError::retry_later(error.to_string());
        if !self.cursor.is_start() {
            let block = ledger.block(self.cursor.height).map_err(store_error)?;
            if block.as_ref().map(|block| block.header.hash()) != Some(self.cursor.hash) {
                return Err(ChainError::fatal(format!(
                    "network {}'s block {} is not the one this follower delivered ({}): wrong ledger or data",
                    ledger.network(),
                    self.cursor.height,
                    self.cursor.hash
                )));
            }
        }
        let first = self.cursor.height + 1;
        let last = ledger.tip().height.min(self.cursor.height + FOLLOW_BLOCKS_MAX);
        if last < first {
            return Ok(Vec::new());
        }
        let block_count = usize::try_from(last - first + 1).expect("bounded by FOLLOW_BLOCKS_MAX");
        let mut events = ledger.events_from(first, block_count).map_err(store_error)?.into_iter().peekable();
        let mut delivered = Vec::with_capacity(block_count);
        for height in first..=last {
            let Some(block) = ledger.block(height).map_err(store_error)? else {
                return Err(ChainError::retry_later(format!("block {height} is not committed yet")));
            };
            let mut followed = Vec::new();
            while let Some(event) = events.next_if(|event| event.height == height) {
                followed.push(Followed { transaction: event.transaction, event: event.event });
            }
            let cursor = Cursor { height, hash: block.header.hash() };
            delivered.push(ChainEvent::Block(BlockEvents {
                cursor,
                time_ms: block.header.timestamp_ms,
                events: followed,
            }));
            self.cursor = cursor;
        }
        Ok(delivered)
    }
}

impl<S: Store + Send + 'static> Follower for LocalFollower<S> {
    fn network(&self) -> NetworkId {
        self.ledger.network()
    }

    fn cursor(&self) -> Cursor {
        self.cursor
    }

    fn poll(&mut self) -> BoxFuture<'_, Result<Vec<ChainEvent>, ChainError>> {
        Box::pin(async move { self.read() })
    }
}
