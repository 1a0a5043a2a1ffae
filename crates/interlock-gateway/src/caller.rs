//! Who is calling, from the certificate the TLS handshake verified, and what
//! of a deal each caller may see. The `interlock_rpc::access` layer already
//! refused callers the directory does not list and roles the authorisation
//! matrix does not let call a method; this narrows each method to the
//! caller's own party, deals and network.

use super::error::GatewayError;
use interlock_core::{DealTerms, PartyId};
use interlock_identity::{DependentEntry, Directory, GatewayEntry, ObserverEntry, PartyEntry, PeerIdentity, Role};
use tonic::Request;

/// The methods of `Gateway` and `GatewayPeer`, for authorisation and messages.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Method {
    ProposeDeal,
    RegisterDeal,
    WatchDeals,
    GetDeal,
    WatchDeal,
    Submit,
    GetAccount,
    GetReservation,
    StreamBlocks,
    Subscribe,
    ForwardDeal,
    AssertLocks,
    Notify,
    Relay,
}

/// Which callers a method is for.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Audience {
    /// Parties and the agents acting for them.
    Parties,
    /// Parties, and observers for the deals that name them.
    Watchers,
    /// Parties, notaries and observers: read-only methods.
    Readers,
    /// The gateways of other networks.
    Gateways,
    /// Parties and dependents: who deal terms name and may be told of them.
    Subscribers,
}

impl Method {
    fn audience(self) -> Audience {
        match self {
            Method::ProposeDeal | Method::RegisterDeal | Method::Submit => Audience::Parties,
            Method::WatchDeals => Audience::Watchers,
            Method::GetDeal
            | Method::WatchDeal
            | Method::GetAccount
            | Method::GetReservation
            | Method::StreamBlocks => Audience::Readers,
            Method::ForwardDeal | Method::AssertLocks | Method::Notify | Method::Relay => Audience::Gateways,
            Method::Subscribe => Audience::Subscribers,
        }
    }
}

impl std::fmt::Display for Method {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(self, f)
    }
}

impl Audience {
    fn describe(self) -> &'static str {
        match self {
            Audience::Parties => "parties (and their agents)",
            Audience::Watchers => "parties (and their agents) and observers",
            Audience::Readers => "parties, notaries and observers",
            Audience::Gateways => "the gateways of other networks",
            Audience::Subscribers => "parties and dependents",
        }
    }
}

/// A caller as the directory knows it.
#[derive(Clone, Debug)]
pub(crate) enum Caller {
    Party(PartyEntry),
    Gateway(GatewayEntry),
    Dependent(DependentEntry),
    /// An observer: reads the deals that name it.
    Observer(ObserverEntry),
    /// A notary: may read.
    Reader {
        role: Role,
        name: String,
    },
    /// Listed, but with no business here (a ledger node).
    Other {
        role: Role,
        name: String,
    },
}

impl Caller {
    /// Reads the caller's certificate and finds it in `directory`.
    pub(crate) fn of<T>(request: &Request<T>, directory: &Directory) -> Result<Caller, GatewayError> {
        let certificates = request.peer_certs();
        let peer = PeerIdentity::from_peer_certificates(certificates.as_deref().map(Vec::as_slice))
            .map_err(|error| GatewayError::Unauthenticated(error.to_string()))?;
        let unlisted = || GatewayError::Denied(format!("{} {:?} is not in the directory", peer.role, peer.name));
        Ok(match peer.role {
            Role::Party | Role::Agent => Caller::Party(directory.party(&peer.name).ok_or_else(unlisted)?.clone()),
            Role::Gateway => Caller::Gateway(
                directory.gateways.iter().find(|entry| entry.name == peer.name).ok_or_else(unlisted)?.clone(),
            ),
            Role::Dependent => Caller::Dependent(directory.dependent(&peer.name).ok_or_else(unlisted)?.clone()),
            Role::Observer => Caller::Observer(directory.observer(&peer.name).ok_or_else(unlisted)?.clone()),
            Role::Notary => Caller::Reader { role: peer.role, name: peer.name },
            Role::Ledger => Caller::Other { role: peer.role, name: peer.name },
        })
    }

    fn describe(&self) -> String {
        match self {
            Caller::Party(party) => format!("party {:?}", party.name),
            Caller::Gateway(gateway) => format!("gateway {:?}", gateway.name),
            Caller::Dependent(dependent) => format!("dependent {:?}", dependent.name),
            Caller::Observer(observer) => format!("observer {:?}", observer.name),
            Caller::Reader { role, name } | Caller::Other { role, name } => format!("{role} {name:?}"),
        }
    }

    fn refuse(&self, method: Method) -> GatewayError {
        GatewayError::Denied(format!(
            "{method} is for {}; the caller is {}",
            method.audience().describe(),
            self.describe()
        ))
    }

    /// The calling party, if `method` is for parties and the caller is one.
    pub(crate) fn party(&self, method: Method) -> Result<&PartyEntry, GatewayError> {
        debug_assert_eq!(method.audience(), Audience::Parties);
        match self {
            Caller::Party(party) => Ok(party),
            _ => Err(self.refuse(method)),
        }
    }

    /// Ok for a read-only `method` and a party, notary or observer, with what
    /// it may read (parties and observers read only their own deals).
    pub(crate) fn reader(&self, method: Method) -> Result<Reader<'_>, GatewayError> {
        debug_assert_eq!(method.audience(), Audience::Readers);
        match self {
            Caller::Party(party) => Ok(Reader::Party(party)),
            Caller::Observer(observer) => Ok(Reader::Observer(observer)),
            Caller::Reader { .. } => Ok(Reader::Any),
            _ => Err(self.refuse(method)),
        }
    }

    /// A party, or an observer, that may follow the deal notices meant for it.
    pub(crate) fn watcher(&self, method: Method) -> Result<Watcher, GatewayError> {
        debug_assert_eq!(method.audience(), Audience::Watchers);
        match self {
            Caller::Party(party) => Ok(Watcher::Party(party.key)),
            Caller::Observer(observer) => Ok(Watcher::Observer(observer.key)),
            _ => Err(self.refuse(method)),
        }
    }

    /// The subscriber's name (`party:NAME`, `dependent:NAME`) and the key deal
    /// terms name it by, if `method` is for subscribers and the caller is one.
    pub(crate) fn subscriber(&self, method: Method) -> Result<(String, interlock_core::PartyId), GatewayError> {
        debug_assert_eq!(method.audience(), Audience::Subscribers);
        match self {
            Caller::Party(party) => Ok((format!("party:{}", party.name), party.key)),
            Caller::Dependent(dependent) => Ok((format!("dependent:{}", dependent.name), dependent.key)),
            _ => Err(self.refuse(method)),
        }
    }

    /// The calling gateway, if `method` is for gateways and the caller is one.
    pub(crate) fn gateway(&self, method: Method) -> Result<&GatewayEntry, GatewayError> {
        debug_assert_eq!(method.audience(), Audience::Gateways);
        match self {
            Caller::Gateway(gateway) => Ok(gateway),
            _ => Err(self.refuse(method)),
        }
    }
}

/// What a reading caller may see of deals.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Reader<'a> {
    /// A party: the deals it is the buyer or the seller of.
    Party(&'a PartyEntry),
    /// An observer: the deals whose terms name its key.
    Observer(&'a ObserverEntry),
    /// A notary: every deal.
    Any,
}

impl Reader<'_> {
    /// Why the caller may not read `terms`, or `None` when it may.
    pub(crate) fn refusal(self, terms: &DealTerms) -> Option<String> {
        match self {
            Reader::Party(party) if party.key != terms.buyer && party.key != terms.seller => {
                Some(format!("party {:?} is neither the buyer nor the seller", party.name))
            }
            Reader::Observer(observer) if !terms.observers.contains(&observer.key) => {
                Some(format!("observer {:?} is not among the observers the terms name", observer.name))
            }
            _ => None,
        }
    }
}

/// Whose deal notices a `WatchDeals` stream carries.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Watcher {
    /// The notices of deals the party is the buyer or seller of.
    Party(PartyId),
    /// The notices of deals whose terms name the observer.
    Observer(PartyId),
}
