//! Whom an observer shows a deal to: its buyer and seller (and their agents),
//! its notaries, and the observers and dependents its terms name. The access
//! layer already checked that the caller's role may read; this narrows what
//! it reads to the deals it is part of.

use interlock_core::{DealTerms, NotaryAddress, PartyId, Settlement};
use interlock_identity::{Directory, Member, PeerIdentity};

/// A caller as the deals it may see know it.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Viewer {
    /// A party: the deals it buys or sells in.
    Party(PartyId),
    /// A notary: the deals whose notary set holds it.
    Notary(NotaryAddress),
    /// An observer: the deals whose terms name it among the observers.
    Observer(PartyId),
    /// A dependent: the deals whose terms name it among the dependents.
    Dependent(PartyId),
    /// Anyone else (a gateway, a ledger node): no deal.
    Nobody,
}

impl Viewer {
    /// The viewer a checked caller is; a caller the directory does not list
    /// (which the access layer refuses first) sees nothing.
    pub(crate) fn of(peer: &PeerIdentity, directory: &Directory) -> Viewer {
        match directory.member(peer.role, &peer.name) {
            Some(Member::Party(party)) => Viewer::Party(party.key),
            Some(Member::Notary(notary)) => Viewer::Notary(notary.address),
            Some(Member::Observer(observer)) => Viewer::Observer(observer.key),
            Some(Member::Dependent(dependent)) => Viewer::Dependent(dependent.key),
            _ => Viewer::Nobody,
        }
    }

    /// Whether the deal of `terms` is this viewer's to see.
    pub(crate) fn may_see(self, terms: &DealTerms) -> bool {
        match self {
            Viewer::Party(key) => terms.buyer == key || terms.seller == key,
            Viewer::Notary(address) => match &terms.settlement {
                Settlement::Notary { notaries, .. } => notaries.contains(&address),
                Settlement::Hashlock { .. } => false,
            },
            Viewer::Observer(key) => terms.observers.contains(&key),
            Viewer::Dependent(key) => terms.dependents.contains(&key),
            Viewer::Nobody => false,
        }
    }
}
