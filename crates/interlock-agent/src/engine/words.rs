//! How the agent's views and log lines spell a leg and its status.

use interlock_core::saga::LegStatus;
use interlock_core::LegKind;

pub(super) fn leg_word(leg: LegKind) -> &'static str {
    match leg {
        LegKind::Payment => "payment",
        LegKind::Delivery => "delivery",
    }
}

pub(super) fn status_word(status: LegStatus) -> &'static str {
    match status {
        LegStatus::Open => "open",
        LegStatus::Reserved => "reserved",
        LegStatus::Mismatched => "mismatched",
        LegStatus::Executed => "executed",
        LegStatus::Cancelled => "cancelled",
    }
}
