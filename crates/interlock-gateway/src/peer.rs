//! The `GatewayPeer` service (what other networks' gateways tell this one) and
//! the sending side of the outbox.
//!
//! Every report is checked before anything is recorded, known deal or not: a
//! forwarded deal by its parties' signatures, a lock assertion by the peer's
//! signature, a notification (which carries no signature of its own) against
//! itself and against the reservation the peer asserted for its leg, or the
//! deal's terms while it asserted none. A report that does not decode or does
//! not verify is refused for the whole call and logged once, naming the peer.

use super::caller::{Caller, Method};
use super::checks::{self, decode_notification, decode_signed_deal, verify_lock_assertion};
use super::error::GatewayError;
use super::registry::{Registry, ASSERT, FORWARD, NOTIFY, PEER_BATCH_MAX};
use super::routing::{self, Opened, ROUTE};
use super::{locked, GatewayService, PEER_CALL_TIMEOUT};
use crate::gateway_store::{EventKind, NoticeKind, OutboxEntry, SignedTerms};
use interlock_core::encoding::Decode;
use interlock_core::escrow::Condition;
use interlock_core::saga::expected_request;
use interlock_core::{
    reservation_id, DealId, DealTerms, Decision, EscrowEvent, LegKind, NetworkId, Reservation, ReservationId, Token,
};
use interlock_identity::GatewayEntry;
use interlock_proto::v1;
use interlock_proto::v1::gateway_peer_client::GatewayPeerClient;
use interlock_proto::v1::gateway_peer_server::GatewayPeer;
use interlock_rpc::wire::stored_integer;
use prost::Message as _;
use tonic::transport::Channel;
use tonic::{Code, Request, Response, Status};

/// Most of a deal's events read back to find the reservation a peer asserted
/// (a deal has about ten).
const DEAL_EVENTS_READ_MAX: usize = 1_000;

/// Refusals that sending the same message again cannot change.
pub(super) fn is_final(code: Code) -> bool {
    matches!(
        code,
        Code::InvalidArgument
            | Code::Unauthenticated
            | Code::PermissionDenied
            | Code::NotFound
            | Code::FailedPrecondition
    )
}

/// Sends one outbox message to its peer.
pub(super) async fn send(mut client: GatewayPeerClient<Channel>, entry: &OutboxEntry) -> Result<(), Status> {
    let corrupt =
        |error: prost::DecodeError| Status::internal(format!("outbox message {} is corrupt: {error}", entry.id));
    let call = async {
        match entry.kind.as_str() {
            FORWARD => client.forward_deal(v1::DealNotice::decode(entry.message.as_slice()).map_err(corrupt)?).await,
            ASSERT => client.assert_locks(v1::LockAssertions::decode(entry.message.as_slice()).map_err(corrupt)?).await,
            NOTIFY => client.notify(v1::Notifications::decode(entry.message.as_slice()).map_err(corrupt)?).await,
            other => Err(Status::invalid_argument(format!("outbox message {} has unknown kind {other:?}", entry.id))),
        }
    };
    match tokio::time::timeout(PEER_CALL_TIMEOUT, call).await {
        Ok(result) => result.map(|_| ()),
        Err(_) => Err(Status::deadline_exceeded(format!("no answer within {PEER_CALL_TIMEOUT:?}"))),
    }
}

/// Hands a routed message to the next hop's gateway. One it handled or took
/// on already counts as delivered.
async fn relay(mut client: GatewayPeerClient<Channel>, message: v1::RoutedMessage) -> Result<(), Status> {
    match tokio::time::timeout(PEER_CALL_TIMEOUT, client.relay(message)).await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(status)) if status.code() == Code::AlreadyExists => Ok(()),
        Ok(Err(status)) => Err(status),
        Err(_) => Err(Status::deadline_exceeded(format!("no answer within {PEER_CALL_TIMEOUT:?}"))),
    }
}

impl GatewayService {
    /// Sends one outbox message for the gateway of `destination`: directly
    /// where the directory links the two, else sealed and through the best
    /// route; when a first hop does not answer, through the next route.
    pub(super) async fn send_entry(&self, destination: NetworkId, entry: &OutboxEntry) -> Result<(), Status> {
        let (here, directory) = (self.shared.network, &self.shared.directory);
        let routed = if entry.kind == ROUTE {
            Some(
                v1::RoutedMessage::decode(entry.message.as_slice())
                    .map_err(|error| Status::internal(format!("outbox message {} is corrupt: {error}", entry.id)))?,
            )
        } else {
            None
        };
        let passed: Vec<NetworkId> = match &routed {
            Some(message) => message.path.iter().map(|network| NetworkId(*network)).collect(),
            None => vec![here],
        };
        let hops = routing::next_hops(directory, here, destination, &passed);
        let mut last = Status::unavailable(format!("no route from {here} to {destination} in the directory's links"));
        for hop in hops {
            let Some(client) = self.shared.peers.get(&hop).cloned() else { continue };
            let result = match (&routed, hop == destination) {
                (None, true) => send(client, entry).await,
                (Some(message), _) => relay(client, message.clone()).await,
                (None, false) => {
                    let id = routing::message_id(here, destination, entry.id, &entry.kind, &entry.message);
                    let message =
                        routing::seal(&self.shared.key, here, destination, id, &entry.kind, entry.message.clone());
                    relay(client, message).await
                }
            };
            match result {
                Ok(()) => return Ok(()),
                Err(status) if is_final(status.code()) => return Err(status),
                Err(status) => {
                    tracing::debug!(%destination, %hop, "no delivery through {hop}: {}", status.message());
                    last = status;
                }
            }
        }
        Err(last)
    }

    fn peer_caller<T>(&self, request: &Request<T>, method: Method) -> Result<GatewayEntry, GatewayError> {
        Ok(Caller::of(request, &self.shared.directory)?.gateway(method)?.clone())
    }

    async fn forward_deal_checked(&self, request: Request<v1::DealNotice>) -> Result<u32, GatewayError> {
        let caller = self.peer_caller(&request, Method::ForwardDeal)?;
        let notice = request.into_inner();
        let received = match self.forwarded_checked(&caller, &notice) {
            Ok((kind, deal)) => self.record_forwarded(kind, deal).await,
            Err(refused) => Err(refused),
        };
        received.inspect_err(|error| log_refusal(&caller, "a forwarded deal", error))
    }

    /// A forwarded deal's checks, all pure: what it is and who signed it.
    fn forwarded_checked(
        &self,
        caller: &GatewayEntry,
        notice: &v1::DealNotice,
    ) -> Result<(NoticeKind, SignedTerms), GatewayError> {
        let kind = NoticeKind::parse(&notice.kind).ok_or_else(|| {
            GatewayError::malformed("kind", format!("expected \"proposed\" or \"registered\", found {:?}", notice.kind))
        })?;
        let signed = notice.deal.as_ref().ok_or_else(|| GatewayError::malformed("deal", "missing"))?;
        let deal = decode_signed_deal(signed)?;
        let deal_id = deal.deal_id();
        if notice.deal_id != deal_id.0 .0 {
            return Err(GatewayError::malformed("deal_id", format!("the terms hash to {deal_id}")));
        }
        self.terms_checked(&deal.terms)?;
        if deal.terms.payment.network != caller.network && deal.terms.delivery.network != caller.network {
            return Err(GatewayError::Denied(format!(
                "gateway {:?} fronts {} and forwards only deals with a leg there; deal {deal_id} has none",
                caller.name, caller.network
            )));
        }
        match kind {
            NoticeKind::Proposed => checks::verify_proposal(&deal, &self.shared.directory).map(|_| ())?,
            NoticeKind::Registered => checks::verify_registration(&deal, &self.shared.directory)?,
        }
        Ok((kind, deal))
    }

    async fn record_forwarded(&self, kind: NoticeKind, deal: SignedTerms) -> Result<u32, GatewayError> {
        let now_ms = (self.shared.clock)();
        let committed = self.write(move |registry| Ok(registry.accept(kind, &deal, false, now_ms)?.1)).await?;
        self.announce(&committed);
        Ok(u32::from(committed.last_notice.is_some()))
    }

    async fn assert_locks_checked(&self, request: Request<v1::LockAssertions>) -> Result<u32, GatewayError> {
        let caller = self.peer_caller(&request, Method::AssertLocks)?;
        let assertions = request.into_inner().assertions;
        self.receive_assertions(&caller, &assertions)
            .await
            .inspect_err(|error| log_refusal(&caller, "lock assertions", error))
    }

    async fn receive_assertions(
        &self,
        caller: &GatewayEntry,
        assertions: &[v1::LockAssertion],
    ) -> Result<u32, GatewayError> {
        if assertions.len() > PEER_BATCH_MAX {
            return Err(GatewayError::TooMany {
                what: "lock assertions",
                count: assertions.len(),
                max: PEER_BATCH_MAX,
            });
        }
        let mut verified = Vec::with_capacity(assertions.len());
        for assertion in assertions {
            check_fronts(caller, assertion.network)?;
            let height = stored_integer("height", assertion.height)?;
            verified.push((height, verify_lock_assertion(assertion, &self.shared.directory)?));
        }
        let from = caller.network;
        let (accepted, committed) = self.write(move |registry| registry.record_assertions(from, verified)).await?;
        self.announce(&committed);
        Ok(accepted)
    }

    /// A routed message from a linked gateway: handled here when this is its
    /// destination, else stored for the next hop before it is acknowledged.
    async fn relay_checked(&self, request: Request<v1::RoutedMessage>) -> Result<u32, GatewayError> {
        let caller = self.peer_caller(&request, Method::Relay)?;
        let here = self.shared.network;
        let message = request.into_inner();
        let checked = match self.check_routed(&caller, &message) {
            Ok(opened) if opened.destination == here => self.handle_routed(opened).await,
            Ok(opened) => self.relay_onward(&opened, message).await,
            Err(refused) => Err(refused),
        };
        checked.inspect_err(|error| log_refusal(&caller, "a routed message", error))
    }

    fn check_routed(&self, caller: &GatewayEntry, message: &v1::RoutedMessage) -> Result<Opened, GatewayError> {
        let (here, directory) = (self.shared.network, &self.shared.directory);
        if !directory.linked(caller.network, here) {
            return Err(GatewayError::Denied(format!(
                "gateway {:?} of {} is not linked to {here} in the directory: it may not relay to this gateway",
                caller.name, caller.network
            )));
        }
        let opened = routing::open(message, directory, here)?;
        if opened.path.last() != Some(&caller.network) {
            return Err(GatewayError::malformed(
                "path",
                format!("{:?} does not end with the caller's network {}", message.path, caller.network),
            ));
        }
        Ok(opened)
    }

    async fn handle_routed(&self, opened: Opened) -> Result<u32, GatewayError> {
        let id = interlock_core::hash::to_hex(&opened.message_id);
        let origin = opened.origin.network;
        let message_id = opened.message_id;
        let seen = self
            .blocking("reading the routed messages handled", move |service| {
                Ok(service.registry().store.routed_seen(&message_id)?)
            })
            .await?;
        if seen {
            return Err(GatewayError::Duplicate(format!("routed message {id} from {origin} was handled here already")));
        }
        let payload = |error: prost::DecodeError| GatewayError::malformed("payload", error);
        let accepted = match opened.kind {
            FORWARD => {
                let notice = v1::DealNotice::decode(&opened.payload[..]).map_err(payload)?;
                let (kind, deal) = self.forwarded_checked(&opened.origin, &notice)?;
                self.record_forwarded(kind, deal).await
            }
            ASSERT => {
                let assertions = v1::LockAssertions::decode(&opened.payload[..]).map_err(payload)?.assertions;
                self.receive_assertions(&opened.origin, &assertions).await
            }
            _ => {
                let notifications = v1::Notifications::decode(&opened.payload[..]).map_err(payload)?.notifications;
                self.receive_notifications(&opened.origin, &notifications).await
            }
        }?;
        // Marked after it is handled: a crash between the two hands it over
        // again, and handling is idempotent; marked first, it could be lost.
        let now_ms = (self.shared.clock)();
        self.write(move |registry| {
            let mut batch = registry.store.batch()?;
            batch.mark_routed(&message_id, origin, now_ms)?;
            Ok(batch.commit()?)
        })
        .await?;
        let path: Vec<String> = opened.path.iter().map(ToString::to_string).collect();
        let destination = self.shared.network;
        tracing::info!(%origin, %destination, "routed {} message {id} handled, via {}", opened.kind, path.join(" -> "));
        Ok(accepted)
    }

    async fn relay_onward(&self, opened: &Opened, mut message: v1::RoutedMessage) -> Result<u32, GatewayError> {
        let (here, destination) = (self.shared.network, opened.destination);
        let id = interlock_core::hash::to_hex(&opened.message_id);
        if u32::try_from(message.path.len() + 1).map_or(true, |passed| passed >= message.hops_max) {
            return Err(GatewayError::Precondition(format!(
                "routed message {id} reached its limit of {} gateways at {here}, before {destination}",
                message.hops_max
            )));
        }
        let mut passed = opened.path.clone();
        passed.push(here);
        if routing::next_hops(&self.shared.directory, here, destination, &passed).is_empty() {
            return Err(GatewayError::Precondition(format!(
                "no route from {here} to {destination} avoids the gateways routed message {id} passed"
            )));
        }
        message.path.push(here.0);
        let (now_ms, message_id, origin) = ((self.shared.clock)(), opened.message_id, opened.origin.network);
        let committed = self
            .write(move |registry| {
                let mut batch = registry.store.batch()?;
                if !batch.mark_routed(&message_id, origin, now_ms)? {
                    return Err(GatewayError::Duplicate(format!("routed message {id} was taken on here already")));
                }
                batch.enqueue(destination, ROUTE, &message.encode_to_vec())?;
                Ok(batch.commit()?)
            })
            .await?;
        self.announce(&committed);
        Ok(1)
    }

    async fn notify_checked(&self, request: Request<v1::Notifications>) -> Result<u32, GatewayError> {
        let caller = self.peer_caller(&request, Method::Notify)?;
        let notifications = request.into_inner().notifications;
        self.receive_notifications(&caller, &notifications)
            .await
            .inspect_err(|error| log_refusal(&caller, "notifications", error))
    }

    /// Checks each notification on its own first (pure), then, in the write
    /// (it reads what the peer asserted), against the deal, and records
    /// them all or none.
    async fn receive_notifications(
        &self,
        caller: &GatewayEntry,
        notifications: &[v1::Notification],
    ) -> Result<u32, GatewayError> {
        if notifications.len() > PEER_BATCH_MAX {
            let count = notifications.len();
            return Err(GatewayError::TooMany { what: "notifications", count, max: PEER_BATCH_MAX });
        }
        let mut decoded = Vec::with_capacity(notifications.len());
        for notification in notifications {
            check_fronts(caller, notification.network)?;
            let height = stored_integer("height", notification.height)?;
            let timestamp_ms = stored_integer("timestamp_ms", notification.timestamp_ms)?;
            let event = decode_notification(notification)?;
            decoded.push((height, timestamp_ms, event));
        }
        // Network time of this gateway's own network: the keeper's grace
        // period is counted on the clock that decides the expiry.
        let learned_ms = locked(&self.shared.keeper).now_ms;
        let peer = caller.clone();
        let notified = self
            .write(move |registry| {
                for (_, _, event) in &decoded {
                    verify_notification(registry, &peer, event)?;
                }
                registry.record_notifications(peer.network, decoded, learned_ms)
            })
            .await?;
        self.announce(&notified.committed);
        let mut keeper = locked(&self.shared.keeper);
        for deal_id in notified.commits {
            keeper.learn_commit(deal_id);
        }
        for (deal_id, secret) in notified.learned {
            keeper.learn(deal_id, secret, learned_ms);
        }
        Ok(notified.accepted)
    }
}

/// Checks a notification's event against itself and, for a deal
/// registered here, against the reservation `caller` asserted for its leg,
/// or the deal's terms while it asserted none. A deal this gateway does
/// not hold has nothing more to check against; the registry skips it.
fn verify_notification(registry: &Registry, caller: &GatewayEntry, event: &EscrowEvent) -> Result<(), GatewayError> {
    let (deal_id, leg) = (event.deal_id(), event.leg());
    let named = settled_reservation(event);
    let expected = reservation_id(deal_id, leg);
    if named != expected {
        return Err(GatewayError::Contradicted(format!(
            "a notification names reservation {named}, \
             but the {leg} leg of deal {deal_id} is reservation {expected}"
        )));
    }
    let Some(terms) = registry.registered(deal_id) else { return Ok(()) };
    if terms.leg(leg).network != caller.network {
        // The registry refuses the whole batch for it, saying why.
        return Ok(());
    }
    match asserted(registry, deal_id, expected)? {
        Some(reservation) => {
            check_settles(event, &reservation, &format!("the reservation gateway {:?} asserted", caller.name))
        }
        None => check_settles(event, &reserved_by_terms(&terms, leg), "the deal's terms"),
    }
}

/// The reservation `id` as the peer asserted it, if it did.
fn asserted(registry: &Registry, deal_id: DealId, id: ReservationId) -> Result<Option<Reservation>, GatewayError> {
    let events = registry.store.events(deal_id, 0, DEAL_EVENTS_READ_MAX)?;
    let mut reserved = events.iter().filter(|record| record.kind == EventKind::PeerReserved.as_str());
    Ok(reserved.find_map(|record| match EscrowEvent::from_bytes(&record.event) {
        Ok(EscrowEvent::Reserved(reservation)) if reservation.id == id => Some(reservation),
        _ => None,
    }))
}

/// Logs a peer's report refused for what it holds (a fault of this gateway's
/// is not the peer's), once per call, naming the peer gateway.
fn log_refusal(peer: &GatewayEntry, what: &str, error: &GatewayError) {
    if is_final(error.code()) {
        let name = &peer.name;
        tracing::warn!(peer = %name, network = %peer.network, "refused {what} from gateway {name:?}: {error}");
    }
}

/// The reservation an execution or a cancellation settles.
fn settled_reservation(event: &EscrowEvent) -> ReservationId {
    match event {
        EscrowEvent::Reserved(reservation) => reservation.id,
        EscrowEvent::Executed { reservation, .. }
        | EscrowEvent::Cancelled { reservation, .. }
        | EscrowEvent::Held { reservation, .. } => *reservation,
    }
}

/// The reservation of `leg` exactly as the terms ask for it.
fn reserved_by_terms(terms: &DealTerms, leg: LegKind) -> Reservation {
    expected_request(terms, terms.id(), leg).reservation()
}

/// Checks an execution or a cancellation against the reservation it settles,
/// as the escrow rules made it: an execution pays the beneficiary, is signed
/// by it or its keeper and carries a token that opens the reservation; a
/// cancellation gives the asset back to the owner (after the expiry anyone
/// may sign one, so its signer tells nothing). `source` says where the
/// reservation comes from.
fn check_settles(event: &EscrowEvent, reservation: &Reservation, source: &str) -> Result<(), GatewayError> {
    let (deal_id, leg) = (event.deal_id(), event.leg());
    let (what, to, owed_to, asset) = match event {
        EscrowEvent::Executed { to, asset, .. } => ("execution", to, &reservation.beneficiary, asset),
        EscrowEvent::Cancelled { to, asset, .. } => ("cancellation", to, &reservation.owner, asset),
        EscrowEvent::Reserved(_) | EscrowEvent::Held { .. } => {
            unreachable!("notifications are decoded as executions or cancellations")
        }
    };
    let contradicted = |found: String| {
        GatewayError::Contradicted(format!(
            "the {what} of the {leg} leg of deal {deal_id} does not match {source}: {found}"
        ))
    };
    if to != owed_to {
        return Err(contradicted(format!("it pays {to}, the reservation pays {owed_to}")));
    }
    if *asset != reservation.asset {
        return Err(contradicted(format!("it moves {asset}, the reservation holds {}", reservation.asset)));
    }
    let EscrowEvent::Executed { by, token, .. } = event else { return Ok(()) };
    if *by != reservation.beneficiary && Some(*by) != reservation.keeper {
        return Err(contradicted(format!("it is signed by {by}, neither the beneficiary nor the keeper")));
    }
    opens(token, &reservation.condition, deal_id).map_err(|reason| {
        GatewayError::Unauthenticated(format!(
            "the execution of the {leg} leg of deal {deal_id} carries a token that does not open {source}: {reason}"
        ))
    })
}

/// Whether `token` opens a reservation of deal `deal_id` held under `condition`.
fn opens(token: &Token, condition: &Condition, deal_id: DealId) -> Result<(), String> {
    match (condition, token) {
        (Condition::Hashlock(hash), Token::Secret(secret)) if secret.hash() == *hash => Ok(()),
        (Condition::Hashlock(_), Token::Secret(_)) => Err("the secret's sha256 is not the hashlock".into()),
        (
            Condition::Notary { notaries, threshold } | Condition::Inspected { notaries, threshold },
            Token::Certificate(certificate),
        ) => certificate.verify(deal_id, Decision::Commit, notaries, *threshold).map_err(|error| error.to_string()),
        (Condition::Hashlock(_), Token::Certificate(_)) => {
            Err("a hashlock opens with a secret, found a certificate".into())
        }
        (Condition::Notary { .. } | Condition::Inspected { .. }, Token::Secret(_)) => {
            Err("a notary reservation opens with a commit certificate, found a secret".into())
        }
    }
}

/// A gateway speaks only for the network it fronts.
fn check_fronts(caller: &GatewayEntry, network: u64) -> Result<(), GatewayError> {
    if caller.network.0 != network {
        return Err(GatewayError::Denied(format!(
            "gateway {:?} fronts {} and may not report on network-{network}",
            caller.name, caller.network
        )));
    }
    Ok(())
}

#[tonic::async_trait]
impl GatewayPeer for GatewayService {
    async fn forward_deal(&self, request: Request<v1::DealNotice>) -> Result<Response<v1::PeerAck>, Status> {
        let accepted = self.forward_deal_checked(request).await?;
        Ok(Response::new(v1::PeerAck { accepted }))
    }

    async fn assert_locks(&self, request: Request<v1::LockAssertions>) -> Result<Response<v1::PeerAck>, Status> {
        let accepted = self.assert_locks_checked(request).await?;
        Ok(Response::new(v1::PeerAck { accepted }))
    }

    async fn notify(&self, request: Request<v1::Notifications>) -> Result<Response<v1::PeerAck>, Status> {
        let accepted = self.notify_checked(request).await?;
        Ok(Response::new(v1::PeerAck { accepted }))
    }

    async fn relay(&self, request: Request<v1::RoutedMessage>) -> Result<Response<v1::PeerAck>, Status> {
        let accepted = self.relay_checked(request).await?;
        Ok(Response::new(v1::PeerAck { accepted }))
    }
}
