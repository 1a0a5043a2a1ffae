//! The plainest terms: two parties swap two assets, nothing else agreed.

use crate::types::{Address, Asset, DealTerms, Leg, NetworkId, PartyId, Policy, Settlement};

impl DealTerms {
    /// Terms where `buyer` pays `payment.1` on network `payment.0` to
    /// `seller`, who delivers `delivery.1` on network `delivery.0`, under
    /// `settlement`. Each leg moves between the accounts the parties' keys
    /// name (a chain whose accounts are party keys, as the embedded
    /// ledger's are), with no keeper; no observer or dependent, the default
    /// policy, nonce 1.
    ///
    /// Change what a deal needs with struct update syntax:
    /// `DealTerms { nonce: 7, ..DealTerms::swap(…) }`.
    pub fn swap(
        buyer: PartyId,
        seller: PartyId,
        payment: (NetworkId, Asset),
        delivery: (NetworkId, Asset),
        settlement: Settlement,
    ) -> DealTerms {
        let (buyer_account, seller_account) = (Address::from_bytes(buyer.0), Address::from_bytes(seller.0));
        DealTerms {
            buyer,
            seller,
            payment: Leg {
                network: payment.0,
                asset: payment.1,
                owner: buyer_account,
                beneficiary: seller_account,
                keeper: None,
            },
            delivery: Leg {
                network: delivery.0,
                asset: delivery.1,
                owner: seller_account,
                beneficiary: buyer_account,
                keeper: None,
            },
            settlement,
            policy: Policy::default(),
            observers: Vec::new(),
            dependents: Vec::new(),
            nonce: 1,
        }
    }
}
