//! What a platform's demo chain proposes to `interlock demo`.

use interlock_core::{Asset, Mode, NetworkId};

/// One cross-platform deal a demo chain runs: which network each leg is on
/// comes from the caller.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct DemoDeal {
    pub title: &'static str,
    pub mode: Mode,
    pub payment: (NetworkId, Asset),
    pub delivery: (NetworkId, Asset),
    /// The seller agrees but never reserves: the buyer must get its asset back.
    pub seller_withholds: bool,
}
