//! The inspection policy: a window after execution in which the buyer may
//! dispute, and the notaries' verdict that ends it.
//!
//! A deal whose policy carries an [`Inspection`] executes its legs into a
//! *held* state instead of paying out. Held assets move only on a verdict
//! certificate over the deal id ([`Decision::Release`] or [`Decision::Reverse`]),
//! signed by the deal's own notary set, k of n. One certificate settles both
//! legs, so both end the same way: released to their beneficiaries, or
//! reversed to their original owners. The notaries sign a release once the
//! window has passed with no dispute, and decide a dispute raised inside it.
//!
//! [`Decision::Release`]: crate::Decision::Release
//! [`Decision::Reverse`]: crate::Decision::Reverse

use crate::encoding::{Decode, DecodeError, Encode, Reader, Writer};
use crate::limits::{INSPECTION_WINDOW_MAX_MS, INSPECTION_WINDOW_MIN_MS};
use crate::types::{DealTerms, PartyId, Settlement, TermsError};
use serde::{Deserialize, Serialize};
use std::fmt;

/// The policy's inspection period. Who decides a dispute is the deal's notary
/// set; a window that passes with no dispute ends in release.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Serialize, Deserialize)]
pub struct Inspection {
    /// How long after the (extended) decision deadline a dispute may be
    /// raised, in milliseconds: the buyer has at least this long after the
    /// latest moment the notaries could commit.
    pub window_ms: u64,
    #[serde(default)]
    pub disputer: Disputer,
}

/// Who may raise a dispute inside the window.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Default, Serialize, Deserialize)]
pub enum Disputer {
    #[default]
    Buyer,
    Seller,
    Either,
}

impl Disputer {
    /// True when `party` may dispute the deal `terms` under this rule.
    pub fn may_dispute(self, terms: &DealTerms, party: &PartyId) -> bool {
        match self {
            Disputer::Buyer => *party == terms.buyer,
            Disputer::Seller => *party == terms.seller,
            Disputer::Either => *party == terms.buyer || *party == terms.seller,
        }
    }

    fn tag(self) -> u8 {
        match self {
            Disputer::Buyer => 1,
            Disputer::Seller => 2,
            Disputer::Either => 3,
        }
    }
}

impl fmt::Display for Disputer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Disputer::Buyer => "the buyer",
            Disputer::Seller => "the seller",
            Disputer::Either => "either party",
        })
    }
}

impl fmt::Display for Inspection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "inspection for {} ms, disputed by {}, decided by the notaries", self.window_ms, self.disputer)
    }
}

impl DealTerms {
    /// When the inspection window closes: the extended decision deadline plus
    /// the window. `None` for a deal without an inspection policy.
    pub fn inspection_ends_ms(&self) -> Option<u64> {
        let inspection = self.policy.inspection?;
        Some(self.extended_decision_deadline_ms()?.saturating_add(inspection.window_ms))
    }

    /// The inspection rules of [`DealTerms::validate`].
    pub(crate) fn validate_inspection(&self) -> Result<(), TermsError> {
        let Some(inspection) = self.policy.inspection else { return Ok(()) };
        if !matches!(self.settlement, Settlement::Notary { .. }) {
            return Err(TermsError::InspectionNeedsNotaries);
        }
        let window_ms = inspection.window_ms;
        if !(INSPECTION_WINDOW_MIN_MS..=INSPECTION_WINDOW_MAX_MS).contains(&window_ms) {
            return Err(TermsError::InspectionWindow {
                window_ms,
                min_ms: INSPECTION_WINDOW_MIN_MS,
                max_ms: INSPECTION_WINDOW_MAX_MS,
            });
        }
        Ok(())
    }
}

/// Layout: window (u64), disputer tag (1 buyer, 2 seller, 3 either).
impl Encode for Inspection {
    fn encode(&self, writer: &mut Writer) {
        writer.u64(self.window_ms);
        writer.u8(self.disputer.tag());
    }
}
impl Decode for Inspection {
    fn decode(reader: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let window_ms = reader.u64()?;
        let disputer = match reader.u8()? {
            1 => Disputer::Buyer,
            2 => Disputer::Seller,
            3 => Disputer::Either,
            tag => return Err(reader.tag_error("disputer", tag)),
        };
        Ok(Inspection { window_ms, disputer })
    }
}
