//! The deal's policy, enforced: the notary's approval rules and what a party is
//! told when its deal times out.
//!
//! The rules that depend only on the signed terms (asset allow-list, amount per
//! deal, the timeout policy's fit within the on-chain expiries) are part of
//! [`DealTerms::validate`]. The rules that need the world — is a party in the
//! directory, how much did it move today — are asked of an [`Approvals`], which
//! the notary's driver implements over its directory and its durable log: this
//! module stays pure.

use crate::hash::to_hex;
use crate::limits::DAY_MS;
use crate::types::{Asset, AssetCode, DealTerms, OnTimeout, PartyId, TermsError};

/// What the notary's driver knows that the terms do not.
pub trait Approvals {
    /// Whether the directory lists `party`.
    fn registered(&self, party: PartyId) -> bool;
    /// How much of `asset` `party` moved in the deals this notary committed on
    /// UTC day `day` (days since the epoch).
    fn moved_on_day(&self, party: PartyId, asset: &AssetCode, day: u64) -> u128;
}

/// Every party registered and nothing moved yet: for drivers without a
/// directory (the in-process demo) and for tests of other rules.
pub struct Unrestricted;

impl Approvals for Unrestricted {
    fn registered(&self, _party: PartyId) -> bool {
        true
    }
    fn moved_on_day(&self, _party: PartyId, _asset: &AssetCode, _day: u64) -> u128 {
        0
    }
}

/// A broken approval rule. Each message starts with `policy:` or names the
/// terms' rule, and says what was found.
#[derive(Clone, PartialEq, Eq, Debug, thiserror::Error)]
pub enum PolicyViolation {
    #[error("policy: the {role} {party} is not registered in the directory")]
    Unregistered { role: &'static str, party: String },
    #[error("policy: the {role} would move {total} {asset} on UTC day {day}, over the deal's maximum {max} per party per day ({already} committed already)")]
    DailyLimit { role: &'static str, asset: AssetCode, day: u64, already: u128, total: u128, max: u128 },
    #[error(transparent)]
    Terms(#[from] TermsError),
}

/// The UTC day (days since the epoch) of `at_ms`.
pub fn utc_day(at_ms: u64) -> u64 {
    at_ms / DAY_MS
}

/// What each party gives up in the deal, for the daily totals: the buyer the
/// payment, the seller the delivery (fungible legs only).
pub fn movements(terms: &DealTerms) -> Vec<(&'static str, PartyId, AssetCode, u128)> {
    let mut moved = Vec::new();
    for (role, party, leg) in [("buyer", terms.buyer, &terms.payment), ("seller", terms.seller, &terms.delivery)] {
        if let Asset::Fungible { code, amount } = &leg.asset {
            moved.push((role, party, code.clone(), *amount));
        }
    }
    moved
}

/// Every approval rule, evaluated at `now_ms` just before a commit.
pub fn approve(terms: &DealTerms, now_ms: u64, approvals: &dyn Approvals) -> Result<(), PolicyViolation> {
    terms.validate()?;
    for (role, party) in [("buyer", terms.buyer), ("seller", terms.seller)] {
        if !approvals.registered(party) {
            return Err(PolicyViolation::Unregistered { role, party: to_hex(&party.0) });
        }
    }
    let Some(max) = terms.policy.amount_max_per_day else { return Ok(()) };
    let day = utc_day(now_ms);
    for (role, party, asset, amount) in movements(terms) {
        let already = approvals.moved_on_day(party, &asset, day);
        let total = already.saturating_add(amount);
        if total > max {
            return Err(PolicyViolation::DailyLimit { role, asset, day, already, total, max });
        }
    }
    Ok(())
}

/// What a party is told when its deal reaches a deadline undecided.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum TimeoutNotice {
    /// The deadline passed; the deal refunds.
    Refund { at_ms: u64 },
    /// The deadline passed; the policy gives the deal `by_ms` more, once.
    Extended { at_ms: u64, by_ms: u64, to_ms: u64 },
    /// The extended deadline passed as well; the deal refunds.
    RefundAfterExtension { at_ms: u64 },
}

impl TimeoutNotice {
    /// How many notices a deal has had once this one is told (1 or 2).
    pub fn ordinal(self) -> u8 {
        match self {
            TimeoutNotice::Refund { .. } | TimeoutNotice::Extended { .. } => 1,
            TimeoutNotice::RefundAfterExtension { .. } => 2,
        }
    }
}

/// The timeout notice due at `now_ms` for an undecided deal that has been told
/// `told` notices so far, if one is due.
pub fn timeout_notice(terms: &DealTerms, now_ms: u64, told: u8) -> Option<TimeoutNotice> {
    let first_ms = terms.timeout_ms();
    match (terms.policy.on_timeout, told) {
        (OnTimeout::Refund, 0) if now_ms >= first_ms => Some(TimeoutNotice::Refund { at_ms: first_ms }),
        (OnTimeout::ExtendOnce { by_ms }, 0) if now_ms >= first_ms => {
            Some(TimeoutNotice::Extended { at_ms: first_ms, by_ms, to_ms: first_ms.saturating_add(by_ms) })
        }
        (OnTimeout::ExtendOnce { by_ms }, 1) if now_ms >= first_ms.saturating_add(by_ms) => {
            Some(TimeoutNotice::RefundAfterExtension { at_ms: first_ms.saturating_add(by_ms) })
        }
        _ => None,
    }
}
