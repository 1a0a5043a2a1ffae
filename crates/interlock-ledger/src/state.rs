//! The ledger's state and the rules that change it.

use crate::error::LedgerError;
use crate::tx::{Op, Transaction};
use interlock_core::escrow::{self, Condition, EscrowContext, EscrowError, Rules};
use interlock_core::{
    Address, Asset, AssetCode, EscrowEvent, EscrowOp, Hash32, ItemId, PartyId, Reservation, ReservationId,
    ReservationState,
};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

#[derive(Clone, PartialEq, Eq, Debug, Default, Serialize, Deserialize)]
pub struct Account {
    /// Registered accounts may sign; others only receive.
    pub registered: bool,
    /// The highest nonce used so far; the next transaction must carry a larger one.
    pub nonce: u64,
    pub balances: BTreeMap<AssetCode, u128>,
}

/// Who holds a unique item.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub enum Holder {
    Account(Address),
    Escrow(ReservationId),
}

/// Everything a block can change, keyed for the store.
#[derive(Clone, Debug, Default)]
pub struct State {
    pub(crate) accounts: HashMap<Address, Account>,
    pub(crate) items: HashMap<(AssetCode, ItemId), Holder>,
    pub(crate) reservations: HashMap<ReservationId, Reservation>,
    /// Units of each fungible asset ever issued; classes of unique items have an entry of 0.
    pub(crate) supply: BTreeMap<AssetCode, u128>,
    /// Open reservations by expiry, for the keeper.
    pub(crate) open_by_expiry: BTreeSet<(u64, ReservationId)>,
}

/// The keys a block touched, so the store writes only those.
#[derive(Debug, Default)]
pub struct Touched {
    pub accounts: HashSet<Address>,
    pub items: HashSet<(AssetCode, ItemId)>,
    pub reservations: HashSet<ReservationId>,
    pub supply: HashSet<AssetCode>,
}

impl Touched {
    pub fn clear(&mut self) {
        self.accounts.clear();
        self.items.clear();
        self.reservations.clear();
        self.supply.clear();
    }
}

/// The state plus the record of what was touched, as the escrow rules see it.
pub(crate) struct Working<'a> {
    pub state: &'a mut State,
    pub touched: &'a mut Touched,
}

impl State {
    pub fn account(&self, address: &Address) -> Option<&Account> {
        self.accounts.get(address)
    }
    pub fn balance(&self, address: &Address, code: &AssetCode) -> u128 {
        self.accounts.get(address).and_then(|a| a.balances.get(code)).copied().unwrap_or(0)
    }
    pub fn item_holder(&self, class: &AssetCode, item: &ItemId) -> Option<Holder> {
        self.items.get(&(class.clone(), *item)).copied()
    }
    pub fn reservation(&self, id: &ReservationId) -> Option<&Reservation> {
        self.reservations.get(id)
    }
    pub fn supply(&self, code: &AssetCode) -> Option<u128> {
        self.supply.get(code).copied()
    }
    pub fn assets(&self) -> impl Iterator<Item = &AssetCode> {
        self.supply.keys()
    }
    pub fn accounts(&self) -> impl Iterator<Item = (&Address, &Account)> {
        self.accounts.iter()
    }
    pub fn reservations(&self) -> impl Iterator<Item = &Reservation> {
        self.reservations.values()
    }
    pub fn items(&self) -> impl Iterator<Item = (&(AssetCode, ItemId), &Holder)> {
        self.items.iter()
    }
    /// Open reservations whose expiry is at or before `now_ms`.
    pub fn expired_open(&self, now_ms: u64) -> impl Iterator<Item = ReservationId> + '_ {
        self.open_by_expiry.range(..=(now_ms, ReservationId(Hash32([0xff; 32])))).map(|(_, id)| *id)
    }
    pub fn open_reservation_count(&self) -> usize {
        self.open_by_expiry.len()
    }

    /// A digest of the whole state, independent of map order: two ledgers with
    /// the same digest hold the same balances, items, reservations and nonces.
    pub fn digest(&self) -> Hash32 {
        let mut accounts: Vec<_> = self.accounts.iter().collect();
        accounts.sort_by_key(|(address, _)| **address);
        let mut items: Vec<_> = self.items.iter().collect();
        items.sort_by(|a, b| a.0.cmp(b.0));
        let mut reservations: Vec<_> = self.reservations.values().collect();
        reservations.sort_by_key(|r| r.id);
        let bytes =
            postcard::to_allocvec(&(accounts, items, reservations, &self.supply)).expect("state always serializes");
        Hash32::sha256(&[&bytes])
    }

    pub(crate) fn insert_loaded_reservation(&mut self, reservation: Reservation) {
        if reservation.state == ReservationState::Reserved {
            self.open_by_expiry.insert((reservation.expiry_ms, reservation.id));
        }
        self.reservations.insert(reservation.id, reservation);
    }
}

impl Working<'_> {
    fn account_mut(&mut self, address: &Address) -> &mut Account {
        self.touched.accounts.insert(*address);
        self.state.accounts.entry(*address).or_default()
    }

    fn check_known(&self, asset: &Asset) -> Result<(), EscrowError> {
        if self.state.supply.contains_key(asset.code()) {
            Ok(())
        } else {
            Err(EscrowError::UnknownAsset(asset.code().to_string()))
        }
    }

    /// Applies one verified transaction whose signer is registered and whose nonce
    /// is fresh. Checks everything before it changes anything.
    pub fn apply(
        &mut self,
        operator: PartyId,
        tx: &Transaction,
        now_ms: u64,
        rules: Rules,
    ) -> Result<Option<EscrowEvent>, LedgerError> {
        let sender = tx.sender();
        let account = self.state.accounts.get(&sender);
        let registered = account.is_some_and(|a| a.registered);
        let is_operator = tx.signer == operator;
        if !registered && !is_operator {
            return Err(LedgerError::UnknownAccount(tx.signer));
        }
        if let Op::Spend { op, fee } = &tx.op {
            return self.spend(operator, &sender, op, *fee, now_ms, rules).map(Some);
        }
        let last = account.map_or(0, |a| a.nonce);
        if tx.nonce <= last {
            return Err(LedgerError::StaleNonce { last, found: tx.nonce });
        }
        let event = match &tx.op {
            Op::Register { account } => {
                if !is_operator {
                    return Err(LedgerError::NotOperator("register accounts"));
                }
                let address = Address::from_bytes(account.0);
                if self.state.accounts.get(&address).is_some_and(|a| a.registered) {
                    return Err(LedgerError::AlreadyRegistered(*account));
                }
                self.account_mut(&address).registered = true;
                None
            }
            Op::Issue { to, asset } => {
                if !is_operator {
                    return Err(LedgerError::NotOperator("issue assets"));
                }
                self.issue(to, asset)?;
                None
            }
            Op::Transfer { to, asset } => {
                if to.to_array::<32>().is_none() {
                    return Err(LedgerError::ForeignAddress(*to));
                }
                if let Asset::Fungible { amount: 0, .. } = asset {
                    return Err(LedgerError::BadAmount);
                }
                self.check_known(asset)?;
                self.check_holds(&sender, asset)?;
                self.take(&sender, asset, Holder::Account(*to));
                self.release(to, asset);
                None
            }
            Op::Escrow(EscrowOp::Execute { .. }) if rules.spends_pay_fees => {
                return Err(LedgerError::FeeRequired("execute"))
            }
            Op::Escrow(EscrowOp::Cancel { .. }) if rules.spends_pay_fees => {
                return Err(LedgerError::FeeRequired("cancel"))
            }
            // A script chain's outputs have two spend paths, not three.
            Op::Escrow(EscrowOp::Reserve(request))
                if rules.named_keys_only && matches!(request.condition, Condition::Inspected { .. }) =>
            {
                return Err(LedgerError::NoInspection("reservation under an inspection condition"))
            }
            Op::Escrow(EscrowOp::Resolve { .. }) if rules.named_keys_only => {
                return Err(LedgerError::NoInspection("verdict"))
            }
            Op::Escrow(op) => Some(escrow::apply_under(self, &sender, op, now_ms, rules)?),
            Op::Spend { .. } => unreachable!("spends return above"),
        };
        self.account_mut(&sender).nonce = tx.nonce;
        Ok(event)
    }

    /// [`Op::Spend`]: the escrow rules take `op` as they would alone, then
    /// `fee` moves from the payee to the operator, whose account stands for
    /// the chain's block producers. Checked before anything changes: the leg
    /// is fungible and `fee` is between 1 and the leg's amount less one, so
    /// the payee, who has just received the leg, always holds it.
    fn spend(
        &mut self,
        operator: PartyId,
        sender: &Address,
        op: &EscrowOp,
        fee: u128,
        now_ms: u64,
        rules: Rules,
    ) -> Result<EscrowEvent, LedgerError> {
        if !rules.spends_pay_fees {
            return Err(LedgerError::NoFees);
        }
        let id = match op {
            EscrowOp::Reserve(_) | EscrowOp::Resolve { .. } => return Err(LedgerError::NotASpend),
            EscrowOp::Execute { reservation, .. } | EscrowOp::Cancel { reservation, .. } => *reservation,
        };
        let reservation = self.state.reservations.get(&id).ok_or(EscrowError::UnknownReservation(id))?;
        let (code, amount) = match &reservation.asset {
            Asset::Fungible { code, amount } => (code.clone(), *amount),
            Asset::Unique { .. } => return Err(LedgerError::BadFee { fee, max: 0 }),
        };
        let max = amount.saturating_sub(1);
        if fee == 0 || fee > max {
            return Err(LedgerError::BadFee { fee, max });
        }
        let event = escrow::apply_under(self, sender, op, now_ms, rules)?;
        let payee = match &event {
            EscrowEvent::Executed { to, .. } | EscrowEvent::Cancelled { to, .. } => *to,
            EscrowEvent::Reserved(_) => unreachable!("a spend never reserves"),
            // Refused where spends pay fees: no inspected reservation is made there.
            EscrowEvent::Held { .. } => unreachable!("a script chain holds no inspected reservation"),
        };
        let fee = Asset::Fungible { code, amount: fee };
        self.take(&payee, &fee, Holder::Account(payee));
        self.release(&Address::from_bytes(operator.0), &fee);
        Ok(event)
    }

    fn issue(&mut self, to: &Address, asset: &Asset) -> Result<(), LedgerError> {
        if to.to_array::<32>().is_none() {
            return Err(LedgerError::ForeignAddress(*to));
        }
        match asset {
            Asset::Fungible { code, amount } => {
                let supply = self.state.supply.get(code).copied().unwrap_or(0);
                let new_supply = supply.checked_add(*amount).filter(|_| *amount > 0).ok_or(LedgerError::BadAmount)?;
                let balance = self.state.balance(to, code);
                let new_balance = balance.checked_add(*amount).ok_or(LedgerError::BadAmount)?;
                self.state.supply.insert(code.clone(), new_supply);
                self.touched.supply.insert(code.clone());
                self.account_mut(to).balances.insert(code.clone(), new_balance);
            }
            Asset::Unique { class, item } => {
                let key = (class.clone(), *item);
                if self.state.items.contains_key(&key) {
                    return Err(LedgerError::ItemExists(format!("{class} {item}")));
                }
                if !self.state.supply.contains_key(class) {
                    self.state.supply.insert(class.clone(), 0);
                    self.touched.supply.insert(class.clone());
                }
                self.state.items.insert(key.clone(), Holder::Account(*to));
                self.touched.items.insert(key);
            }
        }
        Ok(())
    }

    /// Removes `asset` from `owner` (already checked) and hands items to `holder`.
    fn take(&mut self, owner: &Address, asset: &Asset, holder: Holder) {
        match asset {
            Asset::Fungible { code, amount } => {
                let account = self.account_mut(owner);
                let balance = account.balances.get_mut(code).expect("checked: owner holds the asset");
                *balance = balance.checked_sub(*amount).expect("checked: balance covers the amount");
            }
            Asset::Unique { class, item } => {
                let key = (class.clone(), *item);
                self.state.items.insert(key.clone(), holder);
                self.touched.items.insert(key);
            }
        }
    }
}

impl EscrowContext for Working<'_> {
    fn reservation(&self, id: &ReservationId) -> Option<&Reservation> {
        self.state.reservations.get(id)
    }

    fn check_holds(&self, owner: &Address, asset: &Asset) -> Result<(), EscrowError> {
        self.check_known(asset)?;
        match asset {
            Asset::Fungible { code, amount } => {
                let held = self.state.balance(owner, code);
                if held < *amount {
                    return Err(EscrowError::InsufficientFunds {
                        owner: *owner,
                        code: code.to_string(),
                        held,
                        needed: *amount,
                    });
                }
            }
            Asset::Unique { class, item } => {
                if self.state.item_holder(class, item) != Some(Holder::Account(*owner)) {
                    return Err(EscrowError::NotItemOwner {
                        owner: *owner,
                        class: class.to_string(),
                        item: item.to_string(),
                    });
                }
            }
        }
        Ok(())
    }

    fn lock(&mut self, owner: &Address, asset: &Asset) {
        // The reservation id is not known here; items in escrow are keyed by the
        // reservation inserted right after, see `insert_reservation`.
        self.take(owner, asset, Holder::Escrow(ReservationId(Hash32::ZERO)));
    }

    fn release(&mut self, to: &Address, asset: &Asset) {
        match asset {
            Asset::Fungible { code, amount } => {
                let account = self.account_mut(to);
                let balance = account.balances.entry(code.clone()).or_insert(0);
                *balance = balance.checked_add(*amount).expect("balances never exceed the issued supply");
            }
            Asset::Unique { class, item } => {
                let key = (class.clone(), *item);
                self.state.items.insert(key.clone(), Holder::Account(*to));
                self.touched.items.insert(key);
            }
        }
    }

    fn insert_reservation(&mut self, reservation: Reservation) {
        assert_eq!(reservation.state, ReservationState::Reserved);
        if let Asset::Unique { class, item } = &reservation.asset {
            let key = (class.clone(), *item);
            self.state.items.insert(key.clone(), Holder::Escrow(reservation.id));
            self.touched.items.insert(key);
        }
        self.state.open_by_expiry.insert((reservation.expiry_ms, reservation.id));
        self.touched.reservations.insert(reservation.id);
        let previous = self.state.reservations.insert(reservation.id, reservation);
        assert!(previous.is_none(), "a reservation id is used once");
    }

    fn set_state(&mut self, id: &ReservationId, state: ReservationState) {
        let reservation = self.state.reservations.get_mut(id).expect("rules only settle existing reservations");
        // Reserved, then held or settled; held, then settled: each exactly once.
        let allowed = match reservation.state {
            ReservationState::Reserved => state != ReservationState::Reserved,
            ReservationState::Held => matches!(state, ReservationState::Executed | ReservationState::Cancelled),
            ReservationState::Executed | ReservationState::Cancelled => false,
        };
        assert!(allowed, "a reservation settles exactly once: {:?} -> {state:?}", reservation.state);
        reservation.state = state;
        self.state.open_by_expiry.remove(&(reservation.expiry_ms, *id));
        self.touched.reservations.insert(*id);
    }
}
