//! One network's sequencer: takes transactions, orders them into blocks, applies
//! them and commits each block durably before it publishes the block's events.

use crate::block::{Block, BlockHeader, Genesis, LedgerEvent, BLOCK_TRANSACTIONS_MAX};
use crate::error::LedgerError;
use crate::state::{State, Touched, Working};
use crate::store::{Changes, Store};
use crate::tx::{Transaction, TxId};
use interlock_core::crypto::PublicKey;
use interlock_core::encoding::Encode;
use interlock_core::limits::TRANSACTION_LEN_MAX;
use interlock_core::{EscrowEvent, NetworkId, PartyId, Rules};
use std::collections::HashMap;

/// Most transactions waiting for a block.
pub const MEMPOOL_MAX: usize = 400_000;
/// Most decoded signer keys a ledger keeps.
const KEY_CACHE_MAX: usize = 100_000;
/// Below this many transactions a block verifies signatures on one thread.
const PARALLEL_VERIFY_MIN: usize = 128;

pub struct Ledger<S: Store> {
    genesis: Genesis,
    store: S,
    state: State,
    tip: BlockHeader,
    mempool: Vec<Transaction>,
    touched: Touched,
    /// Decoded keys of recent signers.
    keys: HashMap<PartyId, PublicKey>,
    /// What this chain holds of the escrow rules: all of them, unless a
    /// simulation gives it a script chain's.
    rules: Rules,
}

/// A transaction that did not make it into the block, and why.
#[derive(Clone, Debug)]
pub struct Rejection {
    pub transaction: TxId,
    pub signer: PartyId,
    pub nonce: u64,
    pub error: LedgerError,
}

/// What producing one block did.
#[derive(Debug)]
pub struct BlockOutcome {
    pub header: BlockHeader,
    /// The transactions the block holds, in order.
    pub included: Vec<TxId>,
    pub events: Vec<LedgerEvent>,
    pub rejected: Vec<Rejection>,
}

impl<S: Store> Ledger<S> {
    /// Opens the ledger in `store`, initialising it with `genesis` if empty.
    pub fn open(mut store: S, genesis: Genesis) -> Result<Ledger<S>, LedgerError> {
        let (tip, state) = match store.load()? {
            Some(loaded) => {
                if loaded.genesis.network != genesis.network {
                    return Err(LedgerError::StoreNetwork { expected: genesis.network, found: loaded.genesis.network });
                }
                (loaded.tip, loaded.state)
            }
            None => {
                store.init(&genesis)?;
                (genesis.header(), State::default())
            }
        };
        Ok(Ledger {
            genesis,
            store,
            state,
            tip,
            mempool: Vec::new(),
            touched: Touched::default(),
            keys: HashMap::new(),
            rules: Rules::ACCOUNTS,
        })
    }

    /// The ledger holding `rules` from now on (the simulator's script chains).
    pub fn with_rules(mut self, rules: Rules) -> Ledger<S> {
        self.rules = rules;
        self
    }

    pub fn rules(&self) -> Rules {
        self.rules
    }

    pub fn network(&self) -> NetworkId {
        self.genesis.network
    }
    pub fn operator(&self) -> PartyId {
        self.genesis.operator
    }
    pub fn tip(&self) -> &BlockHeader {
        &self.tip
    }
    pub fn state(&self) -> &State {
        &self.state
    }
    pub fn store(&self) -> &S {
        &self.store
    }
    /// Gives the store back, dropping everything not committed (a crash).
    pub fn into_store(self) -> S {
        self.store
    }
    pub fn mempool_len(&self) -> usize {
        self.mempool.len()
    }

    /// Accepts a transaction into the mempool after the checks that need no
    /// signature work; the rest happens when the next block is produced.
    pub fn submit(&mut self, transaction: Transaction) -> Result<TxId, LedgerError> {
        if transaction.network != self.genesis.network {
            return Err(LedgerError::WrongNetwork { expected: self.genesis.network, found: transaction.network });
        }
        let length = transaction.to_bytes().len();
        if length > TRANSACTION_LEN_MAX {
            return Err(LedgerError::TooLarge { length, max: TRANSACTION_LEN_MAX });
        }
        if self.mempool.len() >= MEMPOOL_MAX {
            return Err(LedgerError::MempoolFull(MEMPOOL_MAX));
        }
        let id = transaction.id();
        self.mempool.push(transaction);
        Ok(id)
    }

    /// Orders the waiting transactions into a block stamped `now_ms` (never before
    /// its parent), applies them, and commits the block. Returns `None` when no
    /// transaction was waiting.
    pub fn produce_block(&mut self, now_ms: u64) -> Result<Option<BlockOutcome>, LedgerError> {
        if self.mempool.is_empty() {
            return Ok(None);
        }
        self.seal(now_ms, false).map(Some)
    }

    /// Produces a block even when no transaction waits, so followers see the
    /// network's time move past deadlines.
    pub fn produce_heartbeat(&mut self, now_ms: u64) -> Result<BlockOutcome, LedgerError> {
        self.seal(now_ms, true)
    }

    fn seal(&mut self, now_ms: u64, allow_empty: bool) -> Result<BlockOutcome, LedgerError> {
        let take = self.mempool.len().min(BLOCK_TRANSACTIONS_MAX);
        let mut candidates: Vec<Transaction> = self.mempool.drain(..take).collect();
        order_nonces_per_signer(&mut candidates);
        let timestamp_ms = now_ms.max(self.tip.timestamp_ms);
        let height = self.tip.height + 1;
        let signatures_ok = verify_signatures(&candidates, &mut self.keys);

        self.touched.clear();
        let mut included = Vec::with_capacity(candidates.len());
        let mut applied_events = Vec::new();
        let mut rejected = Vec::new();
        let mut working = Working { state: &mut self.state, touched: &mut self.touched };
        for (transaction, signature_ok) in candidates.into_iter().zip(signatures_ok) {
            let result = if signature_ok {
                working.apply(self.genesis.operator, &transaction, timestamp_ms, self.rules)
            } else {
                Err(LedgerError::BadSignature { signer: transaction.signer })
            };
            match result {
                Ok(event) => {
                    let id = transaction.id();
                    if let Some(event) = event {
                        applied_events.push((id, event));
                    }
                    included.push(transaction);
                }
                Err(error) => rejected.push(Rejection {
                    transaction: transaction.id(),
                    signer: transaction.signer,
                    nonce: transaction.nonce,
                    error,
                }),
            }
        }
        if included.is_empty() && !allow_empty {
            return Ok(BlockOutcome { header: self.tip.clone(), included: Vec::new(), events: Vec::new(), rejected });
        }
        let header = BlockHeader {
            network: self.genesis.network,
            height,
            parent: self.tip.hash(),
            timestamp_ms,
            transactions_root: Block::transactions_root(&included),
            transaction_count: u32::try_from(included.len()).expect("blocks are bounded"),
        };
        let block = Block { header, transactions: included };
        let events: Vec<LedgerEvent> = applied_events
            .into_iter()
            .map(|(transaction, event)| LedgerEvent { network: self.genesis.network, height, transaction, event })
            .collect();
        let changes = Changes::collect(&self.state, &self.touched);
        if let Err(error) = self.store.commit(&block, &events, &changes) {
            // Nothing of this block is durable: go back to what the store holds.
            self.reload()?;
            return Err(error);
        }
        self.tip = block.header.clone();
        let included = block.transactions.iter().map(Transaction::id).collect();
        Ok(BlockOutcome { header: block.header, included, events, rejected })
    }

    fn reload(&mut self) -> Result<(), LedgerError> {
        let loaded = self.store.load()?.expect("an opened store was initialised");
        self.state = loaded.state;
        self.tip = loaded.tip;
        Ok(())
    }

    /// Submits one transaction and produces a block with it, returning its escrow
    /// event or the reason it was refused. For tools and tests.
    pub fn apply_now(&mut self, transaction: Transaction, now_ms: u64) -> Result<Option<EscrowEvent>, LedgerError> {
        assert!(self.mempool.is_empty(), "apply_now needs an empty mempool");
        let id = self.submit(transaction)?;
        let outcome = self.produce_block(now_ms)?.expect("one transaction was waiting");
        if let Some(rejection) = outcome.rejected.into_iter().next() {
            return Err(rejection.error);
        }
        Ok(outcome.events.into_iter().find(|e| e.transaction == id).map(|e| e.event))
    }

    pub fn block(&self, height: u64) -> Result<Option<Block>, LedgerError> {
        self.store.block(height)
    }

    pub fn events_from(&self, from_height: u64, limit: usize) -> Result<Vec<LedgerEvent>, LedgerError> {
        self.store.events_from(from_height, limit)
    }

    /// The highest nonce `signer` has used on this network.
    pub fn nonce(&self, signer: PartyId) -> u64 {
        self.state.account(&interlock_core::Address::from_bytes(signer.0)).map_or(0, |a| a.nonce)
    }
}

/// Verifies every transaction's signature, on all cores for large blocks.
/// Signers' keys are decoded once and kept in `keys`: a ledger sees the same
/// accounts sign again and again.
fn verify_signatures(transactions: &[Transaction], keys: &mut HashMap<PartyId, PublicKey>) -> Vec<bool> {
    if keys.len() > KEY_CACHE_MAX {
        keys.clear();
    }
    for transaction in transactions {
        if let std::collections::hash_map::Entry::Vacant(entry) = keys.entry(transaction.signer) {
            if let Ok(key) = PublicKey::decode(transaction.signer) {
                entry.insert(key);
            }
        }
    }
    let keys = &*keys;
    let verify = |chunk: &[Transaction]| {
        chunk
            .iter()
            .map(|t| keys.get(&t.signer).is_some_and(|key| t.verify_signature_with(key).is_ok()))
            .collect::<Vec<_>>()
    };
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    if transactions.len() < PARALLEL_VERIFY_MIN || threads == 1 {
        return verify(transactions);
    }
    let chunk_len = transactions.len().div_ceil(threads);
    std::thread::scope(|scope| {
        let handles: Vec<_> = transactions.chunks(chunk_len).map(|chunk| scope.spawn(move || verify(chunk))).collect();
        handles.into_iter().flat_map(|h| h.join().expect("verification threads do not panic")).collect()
    })
}

/// Puts each signer's transactions in nonce order within the slots they hold,
/// leaving the order between signers as it arrived. A client that sends several
/// transactions at once over concurrent requests may see them reach the mempool
/// in any order; without this, a later nonce applied first would make the
/// earlier one stale.
fn order_nonces_per_signer(candidates: &mut [Transaction]) {
    let mut slots: std::collections::HashMap<PartyId, Vec<usize>> = std::collections::HashMap::new();
    for (index, transaction) in candidates.iter().enumerate() {
        slots.entry(transaction.signer).or_default().push(index);
    }
    for positions in slots.values().filter(|positions| positions.len() > 1) {
        let sorted = positions.windows(2).all(|pair| candidates[pair[0]].nonce <= candidates[pair[1]].nonce);
        if sorted {
            continue;
        }
        let mut transactions: Vec<Transaction> = positions.iter().map(|&index| candidates[index].clone()).collect();
        transactions.sort_by_key(|transaction| transaction.nonce);
        for (&index, transaction) in positions.iter().zip(transactions) {
            candidates[index] = transaction;
        }
    }
}
