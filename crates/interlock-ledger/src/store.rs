//! Where a ledger keeps what it committed. Each block is committed with the state
//! it produced in one atomic step: a crash between blocks loses nothing committed,
//! and a crash inside one loses that whole block, never part of it.

use crate::block::{Block, BlockHeader, Genesis, LedgerEvent};
use crate::error::LedgerError;
use crate::state::{Account, Holder, State, Touched};
use interlock_core::{Address, AssetCode, ItemId, Reservation};

/// What [`Store::load`] returns for a store that was initialised.
pub struct Loaded {
    pub genesis: Genesis,
    pub tip: BlockHeader,
    pub state: State,
}

/// The changed entries of one block, with their new values.
pub struct Changes<'a> {
    pub accounts: Vec<(&'a Address, &'a Account)>,
    pub items: Vec<(&'a (AssetCode, ItemId), &'a Holder)>,
    pub reservations: Vec<&'a Reservation>,
    pub supply: Vec<(&'a AssetCode, u128)>,
}

impl<'a> Changes<'a> {
    pub fn collect(state: &'a State, touched: &Touched) -> Changes<'a> {
        Changes {
            accounts: state.accounts.iter().filter(|(k, _)| touched.accounts.contains(*k)).collect(),
            items: state.items.iter().filter(|(k, _)| touched.items.contains(*k)).collect(),
            reservations: touched.reservations.iter().map(|id| &state.reservations[id]).collect(),
            supply: touched
                .supply
                .iter()
                .map(|code| state.supply.get_key_value(code).map(|(k, v)| (k, *v)).expect("touched supply exists"))
                .collect(),
        }
    }
}

pub trait Store {
    /// The committed genesis, tip and state; `None` if the store is empty.
    fn load(&mut self) -> Result<Option<Loaded>, LedgerError>;
    fn init(&mut self, genesis: &Genesis) -> Result<(), LedgerError>;
    /// Commits one block, its events and the state changes it made, atomically.
    fn commit(&mut self, block: &Block, events: &[LedgerEvent], changes: &Changes<'_>) -> Result<(), LedgerError>;
    fn block(&self, height: u64) -> Result<Option<Block>, LedgerError>;
    /// Events of blocks at `from_height` and above, at most `limit` blocks' worth.
    fn events_from(&self, from_height: u64, limit: usize) -> Result<Vec<LedgerEvent>, LedgerError>;
}

/// A store in memory: the simulator's fast path. It survives a simulated crash of
/// its ledger because the simulator keeps it, like a disk.
#[derive(Default, Clone)]
pub struct MemoryStore {
    genesis: Option<Genesis>,
    blocks: Vec<(Block, Vec<LedgerEvent>)>,
    state: State,
}

impl MemoryStore {
    pub fn new() -> MemoryStore {
        MemoryStore::default()
    }
}

impl Store for MemoryStore {
    fn load(&mut self) -> Result<Option<Loaded>, LedgerError> {
        let Some(genesis) = self.genesis.clone() else {
            return Ok(None);
        };
        let tip = self.blocks.last().map_or_else(|| genesis.header(), |(block, _)| block.header.clone());
        Ok(Some(Loaded { genesis, tip, state: self.state.clone() }))
    }

    fn init(&mut self, genesis: &Genesis) -> Result<(), LedgerError> {
        assert!(self.genesis.is_none(), "init runs on an empty store");
        self.genesis = Some(genesis.clone());
        Ok(())
    }

    fn commit(&mut self, block: &Block, events: &[LedgerEvent], changes: &Changes<'_>) -> Result<(), LedgerError> {
        for (address, account) in &changes.accounts {
            self.state.accounts.insert(**address, (*account).clone());
        }
        for (key, holder) in &changes.items {
            self.state.items.insert((*key).clone(), **holder);
        }
        for reservation in &changes.reservations {
            self.state.open_by_expiry.remove(&(reservation.expiry_ms, reservation.id));
            self.state.insert_loaded_reservation((*reservation).clone());
        }
        for (code, amount) in &changes.supply {
            self.state.supply.insert((*code).clone(), *amount);
        }
        self.blocks.push((block.clone(), events.to_vec()));
        Ok(())
    }

    fn block(&self, height: u64) -> Result<Option<Block>, LedgerError> {
        let index = usize::try_from(height).ok().and_then(|h| h.checked_sub(1));
        Ok(index.and_then(|i| self.blocks.get(i)).map(|(block, _)| block.clone()))
    }

    fn events_from(&self, from_height: u64, limit: usize) -> Result<Vec<LedgerEvent>, LedgerError> {
        let start = usize::try_from(from_height.saturating_sub(1)).unwrap_or(usize::MAX);
        Ok(self.blocks.iter().skip(start).take(limit).flat_map(|(_, events)| events.iter().cloned()).collect())
    }
}
