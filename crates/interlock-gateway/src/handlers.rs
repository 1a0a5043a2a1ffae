//! The `Gateway` service: what parties, notaries and observers call.

use super::caller::{Caller, Method, Reader, Watcher};
use super::checks::{self, decode_signed_deal, decode_submission};
use super::error::GatewayError;
use super::registry::{notice_message, signed_deal, Registry};
use super::GatewayService;
use crate::gateway_store::{DealRecord, EventRecord, NoticeKind, SignedTerms, Subscription};
use interlock_core::encoding::Decode;
use interlock_core::{DealId, DealTerms, Reservation};
use interlock_identity::PartyEntry;
use interlock_ledger::Op;
use interlock_proto::v1;
use interlock_proto::v1::gateway_server::Gateway;
use interlock_rpc::store::StoreError;
use interlock_rpc::wire;
use std::pin::Pin;
use std::sync::Arc;
use tokio::sync::{mpsc, watch};
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status};

/// Messages buffered per stream.
const STREAM_BUFFER: usize = 256;
/// Rows read from the store at a time for a stream.
const PAGE_LEN: usize = 256;
/// Most pages of notices one read of an observer's watch goes through.
const SCAN_PAGES_MAX: usize = 16;
/// Most events `GetDeal` returns (a deal has about ten).
const DEAL_EVENTS_MAX: usize = 1_000;

pub(super) type Stream<T> = Pin<Box<dyn tokio_stream::Stream<Item = Result<T, Status>> + Send>>;

fn event_message(event: EventRecord) -> v1::DealEvent {
    v1::DealEvent {
        event_id: event.id,
        seq: event.seq,
        deal_id: event.deal_id.0 .0.to_vec(),
        kind: event.kind,
        network: event.network.0,
        height: event.height,
        timestamp_ms: event.timestamp_ms,
        event_encoded: event.event,
        text: event.text,
    }
}

fn hex(bytes: &[u8]) -> String {
    interlock_core::hash::to_hex(bytes)
}

fn in_deal(party: &PartyEntry, deal: &SignedTerms) -> bool {
    party.key == deal.terms.buyer || party.key == deal.terms.seller
}

impl GatewayService {
    fn caller<T>(&self, request: &Request<T>) -> Result<Caller, GatewayError> {
        Caller::of(request, &self.shared.directory)
    }

    /// The terms' own checks, and that this network's platform can hold
    /// their legs here.
    pub(crate) fn terms_checked(&self, terms: &DealTerms) -> Result<(), GatewayError> {
        checks::check_terms(terms, self.shared.network)?;
        let chain = &self.shared.chain;
        match chain.capabilities.refusal(&chain.platform, terms, self.shared.network) {
            Some(reason) => Err(GatewayError::Unsupported { deal_id: terms.id(), reason }),
            None => Ok(()),
        }
    }

    /// The proposal's checks, all pure (signatures, terms, the caller).
    fn proposal_checked(&self, request: &Request<v1::SignedDeal>) -> Result<SignedTerms, GatewayError> {
        let caller = self.caller(request)?;
        let party = caller.party(Method::ProposeDeal)?;
        let deal = decode_signed_deal(request.get_ref())?;
        self.terms_checked(&deal.terms)?;
        let side = checks::verify_proposal(&deal, &self.shared.directory)?;
        if side.key(&deal.terms) != party.key {
            return Err(GatewayError::Denied(format!(
                "the proposal is signed by the deal's {} {}, but the caller is party {:?} (key {}): a party proposes only for itself",
                side.as_str(),
                hex(&side.key(&deal.terms).0),
                party.name,
                hex(&party.key.0)
            )));
        }
        Ok(deal)
    }

    /// The registration's checks, all pure (signatures, terms, the caller).
    fn registration_checked(&self, request: &Request<v1::SignedDeal>) -> Result<SignedTerms, GatewayError> {
        let caller = self.caller(request)?;
        let party = caller.party(Method::RegisterDeal)?;
        let deal = decode_signed_deal(request.get_ref())?;
        self.terms_checked(&deal.terms)?;
        checks::verify_registration(&deal, &self.shared.directory)?;
        if !in_deal(party, &deal) {
            return Err(GatewayError::Denied(format!(
                "party {:?} is neither the buyer nor the seller of deal {}: only they register it",
                party.name,
                deal.deal_id()
            )));
        }
        Ok(deal)
    }

    /// Records a checked deal from a party and queues it for the other
    /// network's gateway. Sent again, it answers with the notice recorded the
    /// first time; new deals must have their deadlines ahead.
    async fn record_from_party(&self, kind: NoticeKind, deal: SignedTerms) -> Result<v1::DealNotice, GatewayError> {
        let service = self.clone();
        let (notice, committed) = self
            .write(move |registry| {
                if let Some(notice) = registry.store.notice(deal.deal_id(), kind)? {
                    return Ok((notice, None));
                }
                let now_ms = (service.shared.clock)();
                service.check_new(kind, &deal, now_ms)?;
                let (notice, committed) = registry.accept(kind, &deal, true, now_ms)?;
                Ok((notice, Some(committed)))
            })
            .await?;
        if let Some(committed) = committed {
            let deal_id = notice.deal.deal_id();
            let _deal = tracing::info_span!("deal", deal_id = %deal_id, network = self.shared.network.0).entered();
            tracing::info!("deal {} by a party, notice {}", kind.as_str(), notice.seq);
            self.announce(&committed);
        }
        Ok(notice_message(&notice))
    }

    /// A deal new to this gateway must have its deadlines ahead, with room
    /// for its chains to settle.
    fn check_new(&self, kind: NoticeKind, deal: &SignedTerms, now_ms: u64) -> Result<(), GatewayError> {
        deal.terms.check_fresh(now_ms).map_err(|error| {
            GatewayError::Precondition(format!("deal {} is too late to {}: {error}", deal.deal_id(), kind.as_str()))
        })?;
        deal.terms.check_timing_in(&self.shared.timings).map_err(|error| {
            GatewayError::Precondition(format!(
                "deal {} leaves its chains too little time to settle: {error}",
                deal.deal_id()
            ))
        })
    }

    /// A deal the caller may read: any deal for notaries, only their own for
    /// parties, only those that name them for observers.
    fn readable_deal(&self, reader: Reader<'_>, deal_id: DealId) -> Result<DealRecord, GatewayError> {
        let record = self
            .registry()
            .store
            .deal(deal_id)?
            .ok_or_else(|| GatewayError::NotFound(format!("this gateway knows no deal {deal_id}")))?;
        if let Some(reason) = reader.refusal(&record.deal.terms) {
            return Err(GatewayError::Denied(format!("{reason} of deal {deal_id}")));
        }
        Ok(record)
    }

    fn get_deal_checked(&self, request: Request<v1::GetDealRequest>) -> Result<v1::DealStatus, GatewayError> {
        let caller = self.caller(&request)?;
        let party = caller.reader(Method::GetDeal)?;
        let deal_id = checks::deal_id("deal_id", &request.get_ref().deal_id)?;
        let record = self.readable_deal(party, deal_id)?;
        let events = self.registry().store.events(deal_id, 0, DEAL_EVENTS_MAX)?;
        let state = if record.registered { NoticeKind::Registered } else { NoticeKind::Proposed };
        Ok(v1::DealStatus {
            deal_id: deal_id.0 .0.to_vec(),
            state: state.as_str().into(),
            deal: Some(signed_deal(&record.deal)),
            events: events.into_iter().map(event_message).collect(),
        })
    }

    /// Streams what `fetch` reads from `next` on, then waits for `changes`
    /// and reads again, until the caller hangs up.
    fn stream<T, F>(&self, changes: watch::Receiver<u64>, next: u64, fetch: F) -> Stream<T>
    where
        T: Send + 'static,
        F: Fn(&Registry, u64) -> Result<Page<T>, StoreError> + Send + Sync + 'static,
    {
        let (sender, receiver) = mpsc::channel(STREAM_BUFFER);
        tokio::spawn(self.clone().feed(changes, next, sender, Arc::new(fetch)));
        Box::pin(ReceiverStream::new(receiver))
    }

    async fn feed<T, F>(
        self,
        mut changes: watch::Receiver<u64>,
        mut next: u64,
        sender: mpsc::Sender<Result<T, Status>>,
        fetch: Arc<F>,
    ) where
        T: Send + 'static,
        F: Fn(&Registry, u64) -> Result<Page<T>, StoreError> + Send + Sync + 'static,
    {
        loop {
            // Marked seen before reading: a write after the read wakes us.
            changes.borrow_and_update();
            let fetch_page = fetch.clone();
            let page = self
                .blocking("reading a stream's page", move |service| Ok(fetch_page(&service.registry(), next)?))
                .await;
            let page = match page {
                Ok(page) => page,
                Err(error) => {
                    let _ = sender.send(Err(Status::new(error.code(), error.to_string()))).await;
                    return;
                }
            };
            for (_, item) in page.items {
                if sender.send(Ok(item)).await.is_err() {
                    return;
                }
            }
            // Past all it read, not only past what it found: a filtered
            // stream (an observer's) must not read the same rows again.
            next = page.next;
            if page.more {
                continue;
            }
            tokio::select! {
                changed = changes.changed() => if changed.is_err() { return },
                () = sender.closed() => return,
            }
        }
    }

    async fn subscribe_checked(
        &self,
        request: Request<v1::SubscribeRequest>,
    ) -> Result<v1::SubscribeResponse, GatewayError> {
        let caller = self.caller(&request)?;
        let (subscriber, member) = caller.subscriber(Method::Subscribe)?;
        let request = request.into_inner();
        let kinds = super::webhook::check_subscription(&request.url, &request.secret, &request.kinds)?;
        let subscription =
            Subscription { subscriber: subscriber.clone(), member, url: request.url, secret: request.secret, kinds };
        self.write(move |registry| Ok(registry.store.subscribe(&subscription)?)).await?;
        Ok(v1::SubscribeResponse { subscriber })
    }

    async fn submit_checked(&self, request: Request<v1::SubmitRequest>) -> Result<v1::SubmitResponse, GatewayError> {
        let caller = self.caller(&request)?;
        let party = caller.party(Method::Submit)?.clone();
        let transaction = decode_submission(&request.get_ref().transaction_encoded)?;
        let network = self.shared.network;
        if transaction.network != network {
            return Err(GatewayError::malformed(
                "transaction_encoded",
                format!("the transaction is for {}, this gateway fronts {network}", transaction.network),
            ));
        }
        let signer = transaction.sender();
        let account = party.account(network);
        if account != Some(signer) {
            let theirs =
                account.map_or_else(|| "it has none there".to_string(), |a| format!("its account there is {a}"));
            return Err(GatewayError::Denied(format!(
                "transaction signer {} is not party {:?}'s account on {network} ({theirs}): a party submits only its own transactions",
                hex(&transaction.signer.0),
                party.name
            )));
        }
        let Op::Escrow(op) = &transaction.op else { unreachable!("decode_submission passes escrow operations only") };
        if let Some(reservation) = self.reservation_for_precheck(op).await? {
            checks::precheck(op, signer, reservation)?;
        }
        let relay =
            v1::SubmitTransactionRequest { transaction_encoded: request.into_inner().transaction_encoded, wait: false };
        let mut node = self.relay_node("an escrow transaction").map_err(GatewayError::Ledger)?;
        let response = node.submit_transaction(relay).await.map_err(GatewayError::Ledger)?;
        Ok(v1::SubmitResponse { transaction_id: response.into_inner().transaction_id })
    }

    /// The reservation an execute or cancel names, as the ledger holds it now.
    async fn reservation_for_precheck(
        &self,
        op: &interlock_core::EscrowOp,
    ) -> Result<Option<Reservation>, GatewayError> {
        if matches!(op, interlock_core::EscrowOp::Reserve(_)) {
            return Ok(None);
        }
        let request = v1::GetReservationRequest { reservation_id: op.reservation_id().0 .0.to_vec() };
        let mut node = self.relay_node("reading a reservation").map_err(GatewayError::Ledger)?;
        let found = node.get_reservation(request).await.map_err(GatewayError::Ledger)?;
        Ok(Reservation::from_bytes(&found.into_inner().reservation_encoded).ok())
    }
}

/// One read of a watch stream: the items found (with their sequence
/// numbers), where the next read starts, and whether more is there to read
/// at once.
struct Page<T> {
    items: Vec<(u64, T)>,
    next: u64,
    more: bool,
}

impl<T> Page<T> {
    /// Items read in order from `from`, at most a page of them.
    fn read(items: Vec<(u64, T)>, from: u64) -> Page<T> {
        let (next, more) = (items.last().map_or(from, |(seq, _)| seq + 1), items.len() == PAGE_LEN);
        Page { items, next, more }
    }
}

/// The notices from `next` on of deals whose terms name `observer`, reading
/// on past notices of other deals (observers are named in few deals, so a
/// page may hold none of theirs) up to [`SCAN_PAGES_MAX`] pages. The page's
/// `next` is past every notice read, so none is read for this watch twice.
fn notices_naming(
    store: &crate::gateway_store::GatewayStore,
    observer: interlock_core::PartyId,
    mut next: u64,
) -> Result<Page<crate::gateway_store::Notice>, StoreError> {
    let mut found = Vec::new();
    for _ in 0..SCAN_PAGES_MAX {
        let page = store.notices_from(next, PAGE_LEN)?;
        let full = page.len() == PAGE_LEN;
        if let Some(last) = page.last() {
            next = last.seq + 1;
        }
        let named = page.into_iter().filter(|notice| notice.deal.terms.observers.contains(&observer));
        found.extend(named.map(|notice| (notice.seq, notice)));
        if !full {
            return Ok(Page { items: found, next, more: false });
        }
        if found.len() >= PAGE_LEN {
            break;
        }
    }
    Ok(Page { items: found, next, more: true })
}

fn reader_of<T>(service: &GatewayService, request: &Request<T>, method: Method) -> Result<(), GatewayError> {
    service.caller(request)?.reader(method).map(|_| ())
}

#[tonic::async_trait]
impl Gateway for GatewayService {
    async fn propose_deal(&self, request: Request<v1::SignedDeal>) -> Result<Response<v1::DealNotice>, Status> {
        let deal = self.proposal_checked(&request)?;
        Ok(Response::new(self.record_from_party(NoticeKind::Proposed, deal).await?))
    }

    async fn register_deal(&self, request: Request<v1::SignedDeal>) -> Result<Response<v1::DealNotice>, Status> {
        let registered = match self.registration_checked(&request) {
            Ok(deal) => self.record_from_party(NoticeKind::Registered, deal).await,
            Err(refused) => Err(refused),
        };
        let event = if registered.is_ok() { "registered" } else { "registration_refused" };
        interlock_rpc::metrics::metrics().deal_event("gateway", event);
        Ok(Response::new(registered?))
    }

    type WatchDealsStream = Stream<v1::DealNotice>;

    async fn watch_deals(
        &self,
        request: Request<v1::WatchDealsRequest>,
    ) -> Result<Response<Self::WatchDealsStream>, Status> {
        let caller = self.caller(&request)?;
        let watcher = caller.watcher(Method::WatchDeals)?;
        let from = wire::stored_integer("from_seq", request.into_inner().from_seq)?;
        let stream = self.stream(self.shared.notices.subscribe(), from, move |registry, next| {
            let notices = match watcher {
                Watcher::Party(party) => {
                    let notices = registry.store.notices_for(party, next, PAGE_LEN)?;
                    Page::read(notices.into_iter().map(|notice| (notice.seq, notice)).collect(), next)
                }
                Watcher::Observer(observer) => notices_naming(&registry.store, observer, next)?,
            };
            let items = notices.items.iter().map(|(seq, notice)| (*seq, notice_message(notice))).collect();
            Ok(Page { items, next: notices.next, more: notices.more })
        });
        Ok(Response::new(stream))
    }

    async fn get_deal(&self, request: Request<v1::GetDealRequest>) -> Result<Response<v1::DealStatus>, Status> {
        let status = self.blocking("reading a deal", move |service| service.get_deal_checked(request));
        Ok(Response::new(status.await?))
    }

    type WatchDealStream = Stream<v1::DealEvent>;

    async fn watch_deal(
        &self,
        request: Request<v1::WatchDealRequest>,
    ) -> Result<Response<Self::WatchDealStream>, Status> {
        let readable = self.blocking("reading a deal", move |service| {
            let caller = service.caller(&request)?;
            let party = caller.reader(Method::WatchDeal)?;
            let deal_id = checks::deal_id("deal_id", &request.get_ref().deal_id)?;
            service.readable_deal(party, deal_id)?;
            Ok((deal_id, wire::stored_integer("from_seq", request.into_inner().from_seq)?))
        });
        let (deal_id, from) = readable.await?;
        let stream = self.stream(self.shared.events.subscribe(), from, move |registry, next| {
            let events = registry.store.events(deal_id, next, PAGE_LEN)?;
            Ok(Page::read(events.into_iter().map(|event| (event.seq, event_message(event))).collect(), next))
        });
        Ok(Response::new(stream))
    }

    async fn subscribe(
        &self,
        request: Request<v1::SubscribeRequest>,
    ) -> Result<Response<v1::SubscribeResponse>, Status> {
        Ok(Response::new(self.subscribe_checked(request).await?))
    }

    async fn submit(&self, request: Request<v1::SubmitRequest>) -> Result<Response<v1::SubmitResponse>, Status> {
        self.relay_node("an escrow transaction")?;
        Ok(Response::new(self.submit_checked(request).await?))
    }

    async fn get_account(&self, request: Request<v1::GetAccountRequest>) -> Result<Response<v1::Account>, Status> {
        reader_of(self, &request, Method::GetAccount)?;
        let mut node = self.relay_node("reading an account")?;
        wire::bytes32("account", &request.get_ref().account)?;
        node.get_account(request.into_inner()).await
    }

    async fn get_reservation(
        &self,
        request: Request<v1::GetReservationRequest>,
    ) -> Result<Response<v1::Reservation>, Status> {
        reader_of(self, &request, Method::GetReservation)?;
        let mut node = self.relay_node("reading a reservation")?;
        wire::bytes32("reservation_id", &request.get_ref().reservation_id)?;
        node.get_reservation(request.into_inner()).await
    }

    type StreamBlocksStream = Stream<v1::BlockEvents>;

    async fn stream_blocks(
        &self,
        request: Request<v1::StreamBlocksRequest>,
    ) -> Result<Response<Self::StreamBlocksStream>, Status> {
        reader_of(self, &request, Method::StreamBlocks)?;
        wire::stored_integer("from_height", request.get_ref().from_height)?;
        let Some(node) = self.shared.chain.node() else {
            return Ok(Response::new(self.synthesised_blocks(request.get_ref().from_height)));
        };
        let blocks = node.clone().stream_blocks(request.into_inner()).await?;
        let stream: Self::StreamBlocksStream = Box::pin(blocks.into_inner());
        Ok(Response::new(stream))
    }
}

#[cfg(test)]
#[path = "handlers_tests.rs"]
mod tests;
