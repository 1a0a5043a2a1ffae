//! Who may call what: the authorisation matrix of every Interlock service,
//! written once, and the [`Guarded`] layer that enforces it in front of every
//! service a role serves.
//!
//! A call passes three checks before a handler sees it:
//!
//! 1. the TLS handshake chained the caller's certificate to the deployment's
//!    CA (no certificate, or one from another CA, never gets this far);
//! 2. the certificate is valid now and the signed directory lists its holder
//!    under the role the certificate names;
//! 3. [`MATRIX`] lets that role call the method, and where the rule says so,
//!    only on the server's own network or for the server's own party.
//!
//! A refusal is `PERMISSION_DENIED` (`UNAUTHENTICATED` when the certificate
//! cannot be read) and names the method, the caller and who may call it.
//! The handler finds the checked caller in the request's extensions
//! ([`caller`]) and narrows what it returns to what that caller may see (an
//! observer shows a deal only to those its terms name).
//!
//! Every answer also passes [`bound_status_message`], so that no error, however
//! much of a caller's input a handler quoted, outgrows [`STATUS_MESSAGE_LEN_MAX`]:
//! a status message travels in an HTTP/2 header, and an oversized header
//! breaks the connection instead of reporting the error.

use interlock_core::NetworkId;
use interlock_identity::{authorise, Directory, Member, PeerIdentity, Role};
use std::convert::Infallible;
use std::sync::Arc;
use tonic::codegen::{http, BoxFuture, Context, Poll, Service};
use tonic::server::NamedService;
use tonic::transport::server::{TcpConnectInfo, TlsConnectInfo};
use tonic::Status;

/// The longest status message a service sends, in bytes. Longer ones are cut
/// at a character boundary and say how long they were.
pub const STATUS_MESSAGE_LEN_MAX: usize = 1024;

/// How much of a caller's input an error message quotes, in characters.
pub const QUOTE_LEN_MAX: usize = 64;

/// Where a rule lets a role call from.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Scope {
    /// Any holder of the role that the directory lists.
    Listed,
    /// A gateway or ledger node of the server's own network only.
    HomeNetwork,
    /// The party (or its agent) the server acts for only.
    HomeParty,
    /// Any holder of the role; the handler shows only the deals whose terms
    /// name the caller.
    NamedInDeal,
    /// A gateway of another network that the directory links to the
    /// server's own (checked by the handler, which reads the directory).
    Linked,
    /// The server's own identity only: its operator, holding its certificate.
    Itself,
}

/// One row of the matrix: a method and the roles that may call it.
#[derive(Clone, Copy, Debug)]
pub struct Rule {
    /// The gRPC path, `/package.Service/Method`.
    pub path: &'static str,
    pub roles: &'static [Role],
    pub scope: Scope,
}

const PARTIES: &[Role] = &[Role::Party, Role::Agent];
const GATEWAYS: &[Role] = &[Role::Gateway];
const LEDGER_READERS: &[Role] = &[Role::Gateway, Role::Ledger];
const DEAL_WATCHERS: &[Role] = &[Role::Party, Role::Agent, Role::Observer];
const DEAL_READERS: &[Role] = &[Role::Party, Role::Agent, Role::Notary, Role::Observer];
const SUBSCRIBERS: &[Role] = &[Role::Party, Role::Agent, Role::Dependent];
const VOTE_READERS: &[Role] = &[Role::Party, Role::Agent, Role::Notary];
const VERDICT_READERS: &[Role] = &[Role::Party, Role::Agent, Role::Notary, Role::Gateway];
const NOTARIES: &[Role] = &[Role::Notary];
const DISPUTERS: &[Role] = &[Role::Party, Role::Agent, Role::Notary];
const RECORD_READERS: &[Role] = &[Role::Party, Role::Agent, Role::Notary, Role::Observer, Role::Dependent];
const EVERYONE: &[Role] = &Role::ALL;

const fn rule(path: &'static str, roles: &'static [Role], scope: Scope) -> Rule {
    Rule { path, roles, scope }
}

/// Every method of every service and who may call it. A method that is not
/// here is refused to everyone: a new method is closed until it gets a row.
pub const MATRIX: &[Rule] = &[
    // A ledger node is reached through its network's gateway only.
    rule("/interlock.v1.LedgerNode/SubmitTransaction", GATEWAYS, Scope::HomeNetwork),
    rule("/interlock.v1.LedgerNode/GetTip", LEDGER_READERS, Scope::HomeNetwork),
    rule("/interlock.v1.LedgerNode/GetBlock", LEDGER_READERS, Scope::HomeNetwork),
    rule("/interlock.v1.LedgerNode/GetAccount", LEDGER_READERS, Scope::HomeNetwork),
    rule("/interlock.v1.LedgerNode/GetReservation", LEDGER_READERS, Scope::HomeNetwork),
    rule("/interlock.v1.LedgerNode/StreamBlocks", LEDGER_READERS, Scope::HomeNetwork),
    // The gateway: parties act, readers read the deals they are part of (the
    // handlers narrow to those), other gateways use the peer protocol.
    rule("/interlock.v1.Gateway/ProposeDeal", PARTIES, Scope::NamedInDeal),
    rule("/interlock.v1.Gateway/RegisterDeal", PARTIES, Scope::NamedInDeal),
    rule("/interlock.v1.Gateway/Submit", PARTIES, Scope::Listed),
    rule("/interlock.v1.Gateway/WatchDeals", DEAL_WATCHERS, Scope::NamedInDeal),
    rule("/interlock.v1.Gateway/GetDeal", DEAL_READERS, Scope::NamedInDeal),
    rule("/interlock.v1.Gateway/WatchDeal", DEAL_READERS, Scope::NamedInDeal),
    rule("/interlock.v1.Gateway/GetAccount", DEAL_READERS, Scope::Listed),
    rule("/interlock.v1.Gateway/GetReservation", DEAL_READERS, Scope::Listed),
    rule("/interlock.v1.Gateway/StreamBlocks", DEAL_READERS, Scope::Listed),
    rule("/interlock.v1.Gateway/Subscribe", SUBSCRIBERS, Scope::NamedInDeal),
    rule("/interlock.v1.GatewayPeer/ForwardDeal", GATEWAYS, Scope::Listed),
    rule("/interlock.v1.GatewayPeer/AssertLocks", GATEWAYS, Scope::Listed),
    rule("/interlock.v1.GatewayPeer/Notify", GATEWAYS, Scope::Listed),
    rule("/interlock.v1.GatewayPeer/Relay", GATEWAYS, Scope::Linked),
    // A notary hears deals from their parties; votes are read by parties and
    // by the other notaries.
    rule("/interlock.v1.Notary/SubmitDeal", PARTIES, Scope::NamedInDeal),
    rule("/interlock.v1.Notary/GetVote", VOTE_READERS, Scope::Listed),
    // A party's spend on a script chain takes the notaries' signatures over
    // it; a notary signs only the decision it recorded, which goes on chain.
    rule("/interlock.v1.Notary/SignSpend", PARTIES, Scope::Listed),
    // A deal's parties dispute it (the signature says which), and a notary
    // that recorded a dispute passes it on to the others (still the party's
    // signature); its verdict is read as votes are, and by gateways, whose
    // keepers present it; the notary's operator, holding its certificate,
    // decides a dispute.
    rule("/interlock.v1.Notary/RaiseDispute", DISPUTERS, Scope::NamedInDeal),
    rule("/interlock.v1.Notary/GetInspection", VERDICT_READERS, Scope::Listed),
    rule("/interlock.v1.Notary/GetVerdict", VERDICT_READERS, Scope::Listed),
    rule("/interlock.v1.Notary/DecideDispute", NOTARIES, Scope::Itself),
    // An observer shows a deal to its parties, its notaries and whom its terms name.
    rule("/interlock.v1.Observer/ListDeals", RECORD_READERS, Scope::NamedInDeal),
    rule("/interlock.v1.Observer/GetDeal", RECORD_READERS, Scope::NamedInDeal),
    // A party agent serves its own party's operator only.
    rule("/interlock.v1.Agent/ProposeDeal", PARTIES, Scope::HomeParty),
    rule("/interlock.v1.Agent/AcceptDeal", PARTIES, Scope::HomeParty),
    rule("/interlock.v1.Agent/CancelDeal", PARTIES, Scope::HomeParty),
    rule("/interlock.v1.Agent/GetDeal", PARTIES, Scope::HomeParty),
    rule("/interlock.v1.Agent/ListDeals", PARTIES, Scope::HomeParty),
    rule("/interlock.v1.Agent/WatchDeal", PARTIES, Scope::HomeParty),
    rule("/interlock.v1.Agent/DisputeDeal", PARTIES, Scope::HomeParty),
    // Health and reflection describe the service to anyone listed.
    rule("/grpc.health.v1.Health/Check", EVERYONE, Scope::Listed),
    rule("/grpc.health.v1.Health/Watch", EVERYONE, Scope::Listed),
    rule("/grpc.reflection.v1.ServerReflection/ServerReflectionInfo", EVERYONE, Scope::Listed),
    rule("/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo", EVERYONE, Scope::Listed),
];

/// The matrix as the Markdown table `docs/access.md` shows (a test keeps
/// the two equal).
pub fn matrix_markdown() -> String {
    let mut table = String::from("| method | who may call it | where |\n|---|---|---|\n");
    for rule in MATRIX {
        let roles: Vec<&str> = rule.roles.iter().map(|role| role.as_str()).collect();
        let scope = match rule.scope {
            Scope::Listed => "any listed holder of the role",
            Scope::HomeNetwork => "the server's own network only",
            Scope::HomeParty => "the server's own party only",
            Scope::NamedInDeal => "only deals whose terms name the caller",
            Scope::Linked => "a gateway of a network the directory links to the server's",
            Scope::Itself => "the server's own identity only (its operator)",
        };
        table.push_str(&format!("| `{}` | {} | {scope} |\n", rule.path, roles.join(", ")));
    }
    table
}

/// The rule for a gRPC path, if the matrix has one.
pub fn rule_for(path: &str) -> Option<&'static Rule> {
    MATRIX.iter().find(|rule| rule.path == path)
}

/// What the server is, for the rules scoped to it.
#[derive(Clone, Debug, Default)]
pub struct Home {
    /// The network a ledger node or gateway serves.
    pub network: Option<NetworkId>,
    /// The party an agent acts for.
    pub party: Option<String>,
    /// The server's own name in the directory, for [`Scope::Itself`].
    pub name: Option<String>,
}

impl Home {
    pub fn network(network: NetworkId) -> Home {
        Home { network: Some(network), party: None, name: None }
    }

    pub fn party(name: &str) -> Home {
        Home { network: None, party: Some(name.to_owned()), name: None }
    }

    /// A server (a notary) that names itself, so that its operator may call
    /// the methods for [`Scope::Itself`].
    pub fn itself(name: &str) -> Home {
        Home { network: None, party: None, name: Some(name.to_owned()) }
    }
}

/// The checks every call passes: the directory the caller must be listed in,
/// and what the server is.
#[derive(Clone)]
pub struct Access {
    directory: Arc<Directory>,
    home: Arc<Home>,
}

impl Access {
    pub fn new(directory: Arc<Directory>, home: Home) -> Access {
        Access { directory, home: Arc::new(home) }
    }

    /// `service` behind these checks.
    pub fn guard<S>(&self, service: S) -> Guarded<S> {
        Guarded { inner: service, access: self.clone() }
    }

    /// The caller of `path`, if the matrix lets it call; the status to answer
    /// otherwise.
    pub fn check(
        &self,
        path: &str,
        certificates: Option<&[tonic::transport::CertificateDer<'static>]>,
    ) -> Result<PeerIdentity, Status> {
        let peer = PeerIdentity::from_peer_certificates(certificates)
            .map_err(|error| Status::unauthenticated(error.to_string()))?;
        authorise(&peer, &self.directory, time::OffsetDateTime::now_utc())
            .map_err(|error| Status::permission_denied(error.to_string()))?;
        let Some(rule) = rule_for(path) else {
            return Err(Status::permission_denied(format!(
                "{} is not a method anyone may call; the caller is {} {:?}",
                quote(path),
                peer.role,
                peer.name
            )));
        };
        if !rule.roles.contains(&peer.role) {
            return Err(Status::permission_denied(format!(
                "{path} is for {}; the caller is {} {:?}",
                describe(rule.roles),
                peer.role,
                peer.name
            )));
        }
        self.check_scope(rule, &peer)?;
        crate::metrics::metrics().grpc_call(rule.path);
        Ok(peer)
    }

    /// The network a gateway or ledger node caller serves.
    fn caller_network(&self, peer: &PeerIdentity) -> Option<NetworkId> {
        match self.directory.member(peer.role, &peer.name) {
            Some(Member::Gateway(gateway)) => Some(gateway.network),
            Some(Member::Ledger(ledger)) => Some(ledger.network),
            _ => None,
        }
    }

    fn check_scope(&self, rule: &Rule, peer: &PeerIdentity) -> Result<(), Status> {
        match rule.scope {
            Scope::Listed | Scope::NamedInDeal => Ok(()),
            Scope::HomeNetwork => match (self.caller_network(peer), self.home.network) {
                (Some(caller), Some(home)) if caller == home => Ok(()),
                (_, None) => Ok(()),
                (caller, Some(home)) => Err(Status::permission_denied(format!(
                    "{} is for the {} of network {home} only; the caller is {} {:?}{}",
                    rule.path,
                    describe(rule.roles),
                    peer.role,
                    peer.name,
                    caller.map(|network| format!(" of network {network}")).unwrap_or_default()
                ))),
            },
            Scope::Linked => match (self.caller_network(peer), self.home.network) {
                (Some(caller), Some(home)) if self.directory.linked(caller, home) => Ok(()),
                (_, None) => Ok(()),
                (caller, Some(home)) => Err(Status::permission_denied(format!(
                    "{} {:?}{} is not linked to network {home} in the directory: {} is for linked gateways only",
                    peer.role,
                    peer.name,
                    caller.map(|network| format!(" of network {network}")).unwrap_or_default(),
                    rule.path,
                ))),
            },
            Scope::Itself => match &self.home.name {
                Some(name) if *name == peer.name => Ok(()),
                _ => Err(Status::permission_denied(format!(
                    "{} is for the server's own operator only; the caller is {} {:?}",
                    rule.path, peer.role, peer.name
                ))),
            },
            Scope::HomeParty => match &self.home.party {
                Some(party) if *party != peer.name => Err(Status::permission_denied(format!(
                    "{} serves party {party:?} only; the caller is {} {:?}",
                    rule.path, peer.role, peer.name
                ))),
                _ => Ok(()),
            },
        }
    }
}

fn describe(roles: &[Role]) -> String {
    let names: Vec<String> = roles
        .iter()
        .map(|role| match role {
            Role::Party => "parties".to_owned(),
            Role::Notary => "notaries".to_owned(),
            other => format!("{other}s"),
        })
        .collect();
    match names.as_slice() {
        [one] => format!("{one} only"),
        [rest @ .., last] => format!("{} and {last}", rest.join(", ")),
        [] => "no one".to_owned(),
    }
}

/// The caller a [`Guarded`] service checked, as its handlers find it.
pub fn caller<T>(request: &tonic::Request<T>) -> Option<&PeerIdentity> {
    request.extensions().get::<PeerIdentity>()
}

/// A caller's text as an error message may quote it: at most
/// [`QUOTE_LEN_MAX`] characters, then how long the whole was.
pub fn quote(input: &str) -> String {
    match input.char_indices().nth(QUOTE_LEN_MAX) {
        None => format!("{input:?}"),
        Some((end, _)) => format!("{:?}… ({} bytes)", &input[..end], input.len()),
    }
}

/// `status`'s message cut to [`STATUS_MESSAGE_LEN_MAX`] bytes.
pub fn bound_status(status: Status) -> Status {
    let message = status.message();
    if message.len() <= STATUS_MESSAGE_LEN_MAX {
        return status;
    }
    let mut end = STATUS_MESSAGE_LEN_MAX - 32;
    while !message.is_char_boundary(end) {
        end -= 1;
    }
    let bounded = format!("{}… ({} bytes)", &message[..end], message.len());
    Status::with_metadata(status.code(), bounded, status.metadata().clone())
}

/// Cuts the status message in a response's headers (where a refusal travels
/// before any body) to [`STATUS_MESSAGE_LEN_MAX`].
pub fn bound_status_message<B>(mut response: http::Response<B>) -> http::Response<B> {
    let long = response.headers().get("grpc-message").is_some_and(|message| message.len() > STATUS_MESSAGE_LEN_MAX);
    if long {
        if let Some(status) = Status::from_header_map(response.headers()) {
            let bounded = bound_status(status);
            if bounded.add_header(response.headers_mut()).is_err() {
                response.headers_mut().remove("grpc-message");
            }
        }
    }
    response
}

/// A service behind [`Access`]: every call is checked against the matrix
/// before the service sees it, and every answer's status message is bounded.
#[derive(Clone)]
pub struct Guarded<S> {
    inner: S,
    access: Access,
}

impl<S: NamedService> NamedService for Guarded<S> {
    const NAME: &'static str = S::NAME;
}

impl<S, B> Service<http::Request<B>> for Guarded<S>
where
    S: Service<http::Request<B>, Response = http::Response<tonic::body::Body>, Error = Infallible>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
    B: Send + 'static,
{
    type Response = http::Response<tonic::body::Body>;
    type Error = Infallible;
    type Future = BoxFuture<Self::Response, Infallible>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: http::Request<B>) -> Self::Future {
        let certificates =
            request.extensions().get::<TlsConnectInfo<TcpConnectInfo>>().and_then(|info| info.peer_certs());
        match self.access.check(request.uri().path(), certificates.as_deref().map(Vec::as_slice)) {
            Ok(peer) => {
                request.extensions_mut().insert(peer);
                // The clone that was polled ready serves this call.
                let clone = self.inner.clone();
                let mut ready = std::mem::replace(&mut self.inner, clone);
                Box::pin(async move {
                    let response = ready.call(request).await?;
                    Ok(bound_status_message(response))
                })
            }
            Err(status) => Box::pin(std::future::ready(Ok(status.into_http()))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_are_bounded() {
        assert_eq!(quote("alice"), "\"alice\"");
        let long = "x".repeat(20_000);
        let quoted = quote(&long);
        assert!(quoted.len() < 100, "{quoted}");
        assert!(quoted.ends_with("… (20000 bytes)"), "{quoted}");
        let wide = "é".repeat(100);
        assert!(quote(&wide).contains("(200 bytes)"));
    }

    #[test]
    fn long_status_messages_are_cut_and_keep_their_code() {
        let status = bound_status(Status::invalid_argument("é".repeat(3_000)));
        assert_eq!(status.code(), tonic::Code::InvalidArgument);
        assert!(status.message().len() <= STATUS_MESSAGE_LEN_MAX, "{}", status.message().len());
        assert!(status.message().ends_with("(6000 bytes)"));
        let short = bound_status(Status::not_found("no such deal"));
        assert_eq!(short.message(), "no such deal");
    }

    #[test]
    fn every_path_has_one_rule_and_every_rule_someone() {
        for (index, rule) in MATRIX.iter().enumerate() {
            assert!(!rule.roles.is_empty(), "{} is for no one", rule.path);
            assert!(MATRIX[index + 1..].iter().all(|other| other.path != rule.path), "{} has two rules", rule.path);
        }
    }

    #[test]
    fn roles_read_as_a_list() {
        assert_eq!(describe(&[Role::Gateway]), "gateways only");
        assert_eq!(describe(&[Role::Party, Role::Agent, Role::Notary]), "parties, agents and notaries");
    }
}
