//! A minimal in-memory ledger for the integration tests: fungible balances, unique
//! items and reservations, behind the core's `EscrowContext`.
//!
//! It asserts what the escrow rules promise a context (`lock` only after
//! `check_holds`, `release` only of what escrow holds, a reservation settles once)
//! so a rule that breaks a promise fails the test right where it happens.

// Each test crate that includes this module uses a different part of it.
#![allow(dead_code)]

use interlock_core::escrow::{EscrowContext, EscrowError, Reservation, ReservationState};
use interlock_core::{Address, Asset, AssetCode, ItemId, ReservationId};
use std::collections::BTreeMap;

/// Who holds a unique item.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Holder {
    Account(Address),
    Escrow,
}

#[derive(Clone, PartialEq, Eq, Debug, Default)]
pub struct TestLedger {
    balances: BTreeMap<(Address, AssetCode), u128>,
    escrow_balances: BTreeMap<AssetCode, u128>,
    items: BTreeMap<(AssetCode, ItemId), Holder>,
    reservations: BTreeMap<ReservationId, Reservation>,
}

impl TestLedger {
    /// Credits `asset` to `to` out of thin air (a genesis issue).
    pub fn issue(&mut self, to: Address, asset: &Asset) {
        match asset {
            Asset::Fungible { code, amount } => {
                let balance = self.balances.entry((to, code.clone())).or_default();
                *balance = balance.checked_add(*amount).expect("issue overflows");
            }
            Asset::Unique { class, item } => {
                let previous = self.items.insert((class.clone(), *item), Holder::Account(to));
                assert!(previous.is_none(), "item {class} {item} issued twice");
            }
        }
    }

    pub fn balance(&self, owner: &Address, code: &AssetCode) -> u128 {
        self.balances.get(&(*owner, code.clone())).copied().unwrap_or(0)
    }

    pub fn holder(&self, class: &AssetCode, item: &ItemId) -> Option<Holder> {
        self.items.get(&(class.clone(), *item)).copied()
    }

    /// How much of `asset` (its amount, or 1 for the item) `owner` holds.
    pub fn holds(&self, owner: &Address, asset: &Asset) -> u128 {
        match asset {
            Asset::Fungible { code, .. } => self.balance(owner, code),
            Asset::Unique { class, item } => u128::from(self.holder(class, item) == Some(Holder::Account(*owner))),
        }
    }

    /// Every unit of `code` on this ledger, in accounts and in escrow.
    pub fn total(&self, code: &AssetCode) -> u128 {
        let in_accounts: u128 =
            self.balances.iter().filter(|((_, held), _)| held == code).map(|(_, amount)| *amount).sum();
        in_accounts + self.escrow_balances.get(code).copied().unwrap_or(0)
    }

    /// Whether escrow holds nothing at all.
    pub fn escrow_is_empty(&self) -> bool {
        self.escrow_balances.values().all(|amount| *amount == 0)
            && self.items.values().all(|holder| *holder != Holder::Escrow)
    }

    pub fn state(&self, id: &ReservationId) -> Option<ReservationState> {
        self.reservations.get(id).map(|reservation| reservation.state)
    }
}

impl EscrowContext for TestLedger {
    fn reservation(&self, id: &ReservationId) -> Option<&Reservation> {
        self.reservations.get(id)
    }

    fn check_holds(&self, owner: &Address, asset: &Asset) -> Result<(), EscrowError> {
        match asset {
            Asset::Fungible { code, amount } => {
                let held = self.balance(owner, code);
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
                if self.holder(class, item) != Some(Holder::Account(*owner)) {
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
        match asset {
            Asset::Fungible { code, amount } => {
                let balance = self.balances.get_mut(&(*owner, code.clone())).expect("lock only after check_holds");
                *balance = balance.checked_sub(*amount).expect("lock only after check_holds");
                *self.escrow_balances.entry(code.clone()).or_default() += amount;
            }
            Asset::Unique { class, item } => {
                let holder = self.items.get_mut(&(class.clone(), *item)).expect("lock only after check_holds");
                assert_eq!(*holder, Holder::Account(*owner), "lock of another's item");
                *holder = Holder::Escrow;
            }
        }
    }

    fn release(&mut self, to: &Address, asset: &Asset) {
        match asset {
            Asset::Fungible { code, amount } => {
                let held = self.escrow_balances.get_mut(code).expect("release of an asset escrow never held");
                *held = held.checked_sub(*amount).expect("release of more than escrow holds");
                *self.balances.entry((*to, code.clone())).or_default() += amount;
            }
            Asset::Unique { class, item } => {
                let holder = self.items.get_mut(&(class.clone(), *item)).expect("release of an unknown item");
                assert_eq!(*holder, Holder::Escrow, "release of an item not in escrow");
                *holder = Holder::Account(*to);
            }
        }
    }

    fn insert_reservation(&mut self, reservation: Reservation) {
        assert_eq!(reservation.state, ReservationState::Reserved);
        let previous = self.reservations.insert(reservation.id, reservation);
        assert!(previous.is_none(), "a reservation id is inserted once");
    }

    fn set_state(&mut self, id: &ReservationId, state: ReservationState) {
        let reservation = self.reservations.get_mut(id).expect("set_state of an unknown reservation");
        // Reserved, then held or settled; held, then settled: exactly once each.
        let allowed = match reservation.state {
            ReservationState::Reserved => state != ReservationState::Reserved,
            ReservationState::Held => matches!(state, ReservationState::Executed | ReservationState::Cancelled),
            ReservationState::Executed | ReservationState::Cancelled => false,
        };
        assert!(allowed, "a reservation moves {:?} -> {state:?}: it settles exactly once", reservation.state);
        reservation.state = state;
    }
}
