//! How fast each network's chain moves, as its platform reads it from the
//! network's configuration, and what a deal's deadlines must leave room for
//! on those chains. Deadlines are judged by each chain's block time, so a
//! margin must cover the blocks a party waits for and the lag between the
//! two chains' clocks.

use crate::{DealTerms, NetworkId, Settlement, TermsError};
use std::collections::HashMap;

/// Blocks within which a transaction sent at a fair fee is counted on to be
/// mined (its urgent replacements take care of the rest).
pub const INCLUSION_BLOCKS: u64 = 2;

/// One network's pace.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct NetworkTiming {
    /// The usual longest time between two blocks.
    pub block_interval_ms: u64,
    /// Blocks that must stand on an event before a party acts on it.
    pub confirmations: u64,
    /// How far the chain's block time may stray from the other chains' clocks.
    pub time_lag_ms: u64,
}

impl NetworkTiming {
    /// From an event's block until a party may act on it: its confirmations
    /// and the clock lag.
    pub fn final_after_ms(&self) -> u64 {
        self.confirmations.saturating_mul(self.block_interval_ms).saturating_add(self.time_lag_ms)
    }

    /// From sending a transaction until it is mined: [`INCLUSION_BLOCKS`]
    /// blocks and the clock lag.
    pub fn included_within_ms(&self) -> u64 {
        INCLUSION_BLOCKS.saturating_mul(self.block_interval_ms).saturating_add(self.time_lag_ms)
    }
}

impl DealTerms {
    /// Whether the deadlines leave the networks room to settle: in hashlock
    /// mode the margin must let the seller see the buyer's reveal on the
    /// delivery network as final and then get its claim mined on the payment
    /// network; in notary mode the gap between the decision deadline and the
    /// backstop must let the slower network mine an execution.
    pub fn check_timing(&self, payment: &NetworkTiming, delivery: &NetworkTiming) -> Result<(), TermsError> {
        let (what, have_ms, needed_ms, because) = match &self.settlement {
            Settlement::Hashlock { margin_ms, .. } => (
                "the hashlock margin",
                *margin_ms,
                delivery.final_after_ms().saturating_add(payment.included_within_ms()),
                format!(
                    "{} ms until the reveal on {} is final, then {} ms to get the claim mined on {}",
                    delivery.final_after_ms(),
                    self.delivery.network,
                    payment.included_within_ms(),
                    self.payment.network
                ),
            ),
            Settlement::Notary { decision_deadline_ms, backstop_expiry_ms, .. } => (
                "the gap between the notaries' decision deadline and the backstop",
                backstop_expiry_ms.saturating_sub(*decision_deadline_ms),
                payment.included_within_ms().max(delivery.included_within_ms()),
                format!(
                    "an execution must be mined on {} ({} ms) and on {} ({} ms) before the backstop",
                    self.payment.network,
                    payment.included_within_ms(),
                    self.delivery.network,
                    delivery.included_within_ms()
                ),
            ),
        };
        if have_ms < needed_ms {
            return Err(TermsError::Timing { what, have_ms, needed_ms, because });
        }
        Ok(())
    }

    /// [`DealTerms::check_timing`] with each leg's network looked up in
    /// `timings`; terms on a network it does not list are not held to it.
    pub fn check_timing_in(&self, timings: &HashMap<NetworkId, NetworkTiming>) -> Result<(), TermsError> {
        match (timings.get(&self.payment.network), timings.get(&self.delivery.network)) {
            (Some(payment), Some(delivery)) => self.check_timing(payment, delivery),
            _ => Ok(()),
        }
    }
}
