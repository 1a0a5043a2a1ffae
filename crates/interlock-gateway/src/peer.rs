//! The `GatewayPeer` service (what other networks' gateways tell this one) and
//! the sending side of the outbox.

use super::caller::{Caller, Method};
use super::checks::{self, decode_notification, decode_signed_deal, verify_lock_assertion};
use super::error::GatewayError;
use super::registry::{ASSERT, FORWARD, NOTIFY, PEER_BATCH_MAX};
use super::{locked, GatewayService, PEER_CALL_TIMEOUT};
use crate::gateway_store::{NoticeKind, OutboxEntry};
use interlock_identity::GatewayEntry;
use interlock_proto::v1;
use interlock_proto::v1::gateway_peer_client::GatewayPeerClient;
use interlock_proto::v1::gateway_peer_server::GatewayPeer;
use prost::Message as _;
use tonic::transport::Channel;
use tonic::{Code, Request, Response, Status};

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

impl GatewayService {
    fn peer_caller<T>(&self, request: &Request<T>, method: Method) -> Result<GatewayEntry, GatewayError> {
        Ok(Caller::of(request, &self.shared.directory)?.gateway(method)?.clone())
    }

    fn forward_deal_checked(&self, request: Request<v1::DealNotice>) -> Result<u32, GatewayError> {
        let caller = self.peer_caller(&request, Method::ForwardDeal)?;
        let notice = request.into_inner();
        let kind = NoticeKind::parse(&notice.kind).ok_or_else(|| {
            GatewayError::malformed("kind", format!("expected \"proposed\" or \"registered\", found {:?}", notice.kind))
        })?;
        let signed = notice.deal.as_ref().ok_or_else(|| GatewayError::malformed("deal", "missing"))?;
        let deal = decode_signed_deal(signed)?;
        let deal_id = deal.deal_id();
        if notice.deal_id != deal_id.0 .0 {
            return Err(GatewayError::malformed("deal_id", format!("the terms hash to {deal_id}")));
        }
        checks::check_terms(&deal.terms, self.shared.network)?;
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
        let now_ms = (self.shared.clock)();
        let (_, committed) = self.registry().accept(kind, &deal, false, now_ms)?;
        self.announce(&committed);
        Ok(u32::from(committed.last_notice.is_some()))
    }

    fn assert_locks_checked(&self, request: Request<v1::LockAssertions>) -> Result<u32, GatewayError> {
        let caller = self.peer_caller(&request, Method::AssertLocks)?;
        let assertions = request.into_inner().assertions;
        if assertions.len() > PEER_BATCH_MAX {
            return Err(GatewayError::TooMany {
                what: "lock assertions",
                count: assertions.len(),
                max: PEER_BATCH_MAX,
            });
        }
        let mut verified = Vec::with_capacity(assertions.len());
        for assertion in &assertions {
            check_fronts(&caller, assertion.network)?;
            verified.push((assertion.height, verify_lock_assertion(assertion, &self.shared.directory)?));
        }
        let (accepted, committed) = self.registry().record_assertions(caller.network, verified)?;
        self.announce(&committed);
        Ok(accepted)
    }

    fn notify_checked(&self, request: Request<v1::Notifications>) -> Result<u32, GatewayError> {
        let caller = self.peer_caller(&request, Method::Notify)?;
        let notifications = request.into_inner().notifications;
        if notifications.len() > PEER_BATCH_MAX {
            let count = notifications.len();
            return Err(GatewayError::TooMany { what: "notifications", count, max: PEER_BATCH_MAX });
        }
        let mut decoded = Vec::with_capacity(notifications.len());
        for notification in &notifications {
            check_fronts(&caller, notification.network)?;
            decoded.push((notification.height, notification.timestamp_ms, decode_notification(notification)?));
        }
        // Network time of this gateway's own network: the keeper's grace
        // period is counted on the clock that decides the expiry.
        let learned_ms = locked(&self.shared.keeper).now_ms;
        let notified = self.registry().record_notifications(caller.network, decoded, learned_ms)?;
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
        let accepted =
            self.blocking("recording a forwarded deal", move |service| service.forward_deal_checked(request)).await?;
        Ok(Response::new(v1::PeerAck { accepted }))
    }

    async fn assert_locks(&self, request: Request<v1::LockAssertions>) -> Result<Response<v1::PeerAck>, Status> {
        let accepted =
            self.blocking("recording lock assertions", move |service| service.assert_locks_checked(request)).await?;
        Ok(Response::new(v1::PeerAck { accepted }))
    }

    async fn notify(&self, request: Request<v1::Notifications>) -> Result<Response<v1::PeerAck>, Status> {
        let accepted = self.blocking("recording notifications", move |service| service.notify_checked(request)).await?;
        Ok(Response::new(v1::PeerAck { accepted }))
    }
}
