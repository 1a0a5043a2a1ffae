//! The observer: it follows, through each network's gateway, the deals whose
//! terms name it, and keeps every event of them in an append-only log in
//! SQLite — each record chained to the previous one by hash and signed with
//! the observer's ed25519 key — and serves that log over gRPC (`Observer`)
//! and to people as a web page (`web`).
//!
//! - [`record`]: a record's canonical bytes, hash and signature; what a gateway
//!   event says in a record's body. Pure.
//! - [`log`]: [`ObserverLog`], the records, deals and stream cursors, and
//!   [`verify`](log::verify), which re-checks the whole chain.
//! - [`web`]: the page and its JSON, over axum.
//!
//! One task per gateway follows its `WatchDeals` (the gateway streams the
//! notices of deals that name this observer); one task per deal and network
//! follows its `WatchDeal` until the deal has ended.
//!
//! Open an [`ObserverService`], start its followers with
//! [`start`](ObserverService::start), [`serve`] its gRPC service and
//! [`web::serve`] its page.

// Integers from peers, chains and files are converted with `try_from` and
// checked arithmetic; a cast that could truncate, wrap or drop a sign is a
// build error (an `allow` on the smallest item says why a cast is safe).
#![deny(clippy::cast_possible_truncation, clippy::cast_possible_wrap, clippy::cast_sign_loss)]

pub mod log;
pub mod record;
mod viewer;
pub mod web;

pub use log::{Broken, DealSummary, ObserverLog, Verified};

use interlock_core::encoding::decode_terms;
use interlock_core::{DealId, DealTerms, LegKind, NetworkId, PartyId};
use interlock_identity::Directory;
use interlock_proto::v1;
use interlock_proto::v1::gateway_client::GatewayClient;
use interlock_proto::v1::observer_server::{Observer, ObserverServer};
use interlock_rpc::repeated::Repeated;
use interlock_rpc::server::{ServeError, TlsFiles, MESSAGE_LEN_MAX};
use interlock_rpc::store::{GroupWriter, StoreError};
use interlock_rpc::wire;
use record::GatewayEvent;
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};
use tonic::transport::Channel;
use tonic::{Request, Response, Status};
use viewer::Viewer;

/// How long to wait before following a gateway again after its stream broke.
const RECONNECT_AFTER: Duration = Duration::from_millis(300);
/// How long a deal's stream stays open after the deal ended, for the events
/// that trail its end (a keeper's note, the other gateway's notification).
const LINGER_AFTER_END: Duration = Duration::from_secs(3);
/// Most deals `ListDeals` returns (a larger limit is refused), and its default.
pub const LIST_LIMIT_MAX: usize = 1_000;
pub const LIST_LIMIT_DEFAULT: usize = 100;
/// Most records returned for one deal (a deal has a few dozen).
pub const DEAL_RECORDS_MAX: usize = 10_000;

struct Shared {
    /// Read behind its lock; written only through `writer`.
    log: Arc<Mutex<ObserverLog>>,
    /// Commits the records of the streams followed at once together.
    writer: GroupWriter<ObserverLog>,
    /// The log's key, kept here so reading it never waits on the log's lock.
    key: PartyId,
    directory: Arc<Directory>,
    gateways: HashMap<NetworkId, GatewayClient<Channel>>,
    /// The (network, deal) streams being followed now.
    following: Mutex<HashSet<(NetworkId, DealId)>>,
    /// Failures to reach each gateway: while one is down every stream to it
    /// fails, and the log gets one line for all of them.
    unreachable: Repeated,
    clock: fn() -> u64,
}

/// The observer. Cheap to clone.
#[derive(Clone)]
pub struct ObserverService {
    shared: Arc<Shared>,
}

fn locked<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().expect("observer locks are never poisoned: nothing panics while holding them")
}

fn storage(error: StoreError) -> Status {
    Status::internal(format!("observer storage failed: {error}"))
}

impl ObserverService {
    /// The observer over `log`, reading each network through its gateway in
    /// `gateways`. Call [`ObserverService::start`] to follow them.
    pub fn new(
        log: ObserverLog,
        directory: Arc<Directory>,
        gateways: HashMap<NetworkId, GatewayClient<Channel>>,
        clock: fn() -> u64,
    ) -> Result<ObserverService, StoreError> {
        let key = log.observer_key();
        let following = Mutex::new(HashSet::new());
        let unreachable = Repeated::new();
        let log = Arc::new(Mutex::new(log));
        let writer = GroupWriter::start("observer-writer", log.clone())?;
        let shared = Shared { log, writer, key, directory, gateways, following, unreachable, clock };
        Ok(ObserverService { shared: Arc::new(shared) })
    }

    /// How many group commits the observer's log writer made.
    pub fn group_commits(&self) -> u64 {
        self.shared.writer.commits()
    }

    pub fn server(&self) -> ObserverServer<ObserverService> {
        ObserverServer::new(self.clone())
    }

    pub fn directory(&self) -> &Directory {
        &self.shared.directory
    }

    /// The log, for reading (the web page, the gRPC service).
    pub fn log(&self) -> MutexGuard<'_, ObserverLog> {
        locked(&self.shared.log)
    }

    /// Whose deals the caller of `request` may read: the caller the access
    /// layer checked, or no one's when a request did not pass it.
    fn viewer<T>(&self, request: &Request<T>) -> Viewer {
        interlock_rpc::access::caller(request).map_or(Viewer::Nobody, |peer| Viewer::of(peer, &self.shared.directory))
    }

    /// The key the observer signs its records with.
    pub(crate) fn observer_key(&self) -> PartyId {
        self.shared.key
    }

    /// Runs `work` on tokio's blocking pool: the log's writes fsync and its
    /// reads may touch disk, and a worker stalled on one (or on the log lock
    /// held across one) stalls every task queued behind it. The error names
    /// `what` when the call never returns.
    pub(crate) async fn blocking<T, F>(&self, what: &'static str, work: F) -> Result<T, String>
    where
        T: Send + 'static,
        F: FnOnce(&ObserverService) -> T + Send + 'static,
    {
        let service = self.clone();
        tokio::task::spawn_blocking(move || work(&service))
            .await
            .map_err(|error| format!("observer storage call {what} did not finish: {error}"))
    }

    /// Follows every gateway's notices, and resumes every deal that had not
    /// ended when the observer stopped.
    pub fn start(&self) -> Result<(), interlock_rpc::store::StoreError> {
        for network in self.shared.gateways.keys() {
            tokio::spawn(self.clone().watch_notices(*network));
        }
        for terms in self.log().open_deals()? {
            self.follow_deal(&terms);
        }
        Ok(())
    }

    /// Follows `network`'s gateway's notices forever, reconnecting when the
    /// stream breaks.
    async fn watch_notices(self, network: NetworkId) {
        loop {
            if let Err(message) = self.watch_notices_once(network).await {
                self.unreachable(network, &format!("notices: {message}"));
            }
            tokio::time::sleep(RECONNECT_AFTER).await;
        }
    }

    async fn watch_notices_once(&self, network: NetworkId) -> Result<(), String> {
        let mut gateway = self.shared.gateways[&network].clone();
        let from_seq = self
            .blocking("reading a notice cursor", move |service| service.log().notice_cursor(network.0))
            .await?
            .map_err(|e| e.to_string())?;
        let mut stream = gateway
            .watch_deals(v1::WatchDealsRequest { from_seq })
            .await
            .map_err(|s| s.message().to_owned())?
            .into_inner();
        self.reachable(network);
        while let Some(notice) = stream.message().await.map_err(|s| s.message().to_owned())? {
            // Before the log sees it: it stores the sequence number plus one.
            let seq = notice_seq(&notice)?;
            let Some(terms) = self.named_terms(&notice) else { continue };
            let now = (self.shared.clock)();
            let (terms, ended) = self
                .shared
                .writer
                .write(move |log: &mut ObserverLog| {
                    log.follow(network.0, seq, &terms, now)?;
                    let deal = log.deal(terms.id())?;
                    Ok::<_, StoreError>((terms, deal.is_some_and(|deal| is_final(&deal.status))))
                })
                .await
                .map_err(|e| e.to_string())?;
            if !ended {
                self.follow_deal(&terms);
            }
        }
        Ok(())
    }

    /// Where `network`'s gateway is, as log lines name it.
    fn gateway_name(&self, network: NetworkId) -> String {
        let entry = self.shared.directory.gateways.iter().find(|entry| entry.network == network);
        match entry {
            Some(entry) => format!("gateway {} of network {network} at {}", entry.name, entry.endpoint),
            None => format!("the gateway of network {network}"),
        }
    }

    /// Logs a failure to follow `network`, once per storm.
    fn unreachable(&self, network: NetworkId, message: &str) {
        let gateway = self.gateway_name(network);
        let line = self.shared.unreachable.failed(&gateway, &format!("observer: {gateway}: {message}"), Instant::now());
        if let Some(line) = line {
            eprintln!("{line}");
        }
    }

    /// Logs that `network`'s gateway answers again, if it had not.
    fn reachable(&self, network: NetworkId) {
        if let Some(line) = self.shared.unreachable.recovered(&self.gateway_name(network)) {
            eprintln!("observer: {line}");
        }
    }

    /// The terms of a notice, if they decode and name this observer (the
    /// gateway sends only those; a gateway that errs is not believed).
    fn named_terms(&self, notice: &v1::DealNotice) -> Option<DealTerms> {
        let terms = decode_terms(&notice.deal.as_ref()?.terms_encoded).ok()?;
        let key = self.observer_key();
        (terms.observers.contains(&key) && terms.id().0 .0.as_slice() == notice.deal_id.as_slice()).then_some(terms)
    }

    /// Follows the deal's events on each of its networks, unless already.
    fn follow_deal(&self, terms: &DealTerms) {
        let deal_id = terms.id();
        let networks: HashSet<NetworkId> =
            [terms.leg(LegKind::Payment).network, terms.leg(LegKind::Delivery).network].into();
        for network in networks {
            if !self.shared.gateways.contains_key(&network) {
                eprintln!("observer: deal {deal_id} is on network {network}, which has no gateway in the directory");
                continue;
            }
            if locked(&self.shared.following).insert((network, deal_id)) {
                tokio::spawn(self.clone().watch_deal(network, deal_id));
            }
        }
    }

    /// Follows one deal's events at one gateway until the deal has ended
    /// (and a little after, for the events that trail its end).
    async fn watch_deal(self, network: NetworkId, deal_id: DealId) {
        loop {
            match self.watch_deal_once(network, deal_id).await {
                Ok(true) => break,
                Ok(false) => {}
                Err(message) => self.unreachable(network, &format!("deal {deal_id}: {message}")),
            }
            let deal = self.blocking("reading a deal", move |service| service.log().deal(deal_id).ok().flatten()).await;
            let ended = deal.ok().flatten().is_some_and(|deal| is_final(&deal.status));
            if ended {
                break;
            }
            tokio::time::sleep(RECONNECT_AFTER).await;
        }
        locked(&self.shared.following).remove(&(network, deal_id));
    }

    /// Ok(true) once the deal ended and lingered; Ok(false) if the stream closed.
    async fn watch_deal_once(&self, network: NetworkId, deal_id: DealId) -> Result<bool, String> {
        let mut gateway = self.shared.gateways[&network].clone();
        let from_seq = self
            .blocking("reading an event cursor", move |service| service.log().event_cursor(network.0, deal_id))
            .await?
            .map_err(|e| e.to_string())?;
        let request = v1::WatchDealRequest { deal_id: deal_id.0 .0.to_vec(), from_seq };
        let mut stream = gateway.watch_deal(request).await.map_err(|s| s.message().to_owned())?.into_inner();
        self.reachable(network);
        let deal = self.blocking("reading a deal", move |service| service.log().deal(deal_id)).await?;
        let ended = deal.map_err(|e| e.to_string())?.is_some_and(|deal| is_final(&deal.status));
        let mut ended_at = ended.then(tokio::time::Instant::now);
        loop {
            let next = match ended_at {
                Some(at) => match tokio::time::timeout_at(at + LINGER_AFTER_END, stream.message()).await {
                    Ok(next) => next,
                    Err(_) => return Ok(true),
                },
                None => stream.message().await,
            };
            let Some(message) = next.map_err(|s| s.message().to_owned())? else { return Ok(false) };
            let now = (self.shared.clock)();
            let event = gateway_event(network, message, now).map_err(|s| s.message().to_owned())?;
            if event.deal_id != deal_id {
                return Err(format!("the gateway sent an event of deal {} on the stream of {deal_id}", event.deal_id));
            }
            // One event at a time, in stream order: the next waits for this commit.
            let status = self.shared.writer.write(move |log: &mut ObserverLog| log.record(&event)).await;
            let status = status.map_err(|e| e.to_string())?;
            if ended_at.is_none() && is_final(&status) {
                ended_at = Some(tokio::time::Instant::now());
            }
        }
    }
}

/// Whether nothing more is expected of a deal with this status.
pub fn is_final(status: &str) -> bool {
    log::FINAL_STATUSES.contains(&status)
}

/// The largest integer a gateway may send for a sequence number, a network, a
/// height or a time: the log stores them as SQLite integers (signed 64-bit)
/// and stores a sequence number plus one as a cursor.
pub const PEER_INTEGER_MAX: u64 = i64::MAX.unsigned_abs() - 1;

/// `value` of the field `what` from a peer, when the log can store it.
fn peer_integer(what: &str, value: u64) -> Result<u64, Status> {
    if value > PEER_INTEGER_MAX {
        return Err(Status::invalid_argument(format!(
            "deal event {what} {value} is out of range: expected at most {PEER_INTEGER_MAX}"
        )));
    }
    Ok(value)
}

/// A deal notice's sequence number, when the log can keep it as a cursor; a
/// gateway that sends a larger one is broken, and its stream is dropped.
fn notice_seq(notice: &v1::DealNotice) -> Result<u64, String> {
    if notice.seq > PEER_INTEGER_MAX {
        return Err(format!("deal notice seq {} is out of range: expected at most {PEER_INTEGER_MAX}", notice.seq));
    }
    Ok(notice.seq)
}

/// The longest escrow event a gateway may send for the log: an event is
/// never longer than the transaction that caused it.
pub const EVENT_ENCODING_LEN_MAX: usize = interlock_core::limits::TRANSACTION_LEN_MAX;

fn gateway_event(network: NetworkId, message: v1::DealEvent, now_ms: u64) -> Result<GatewayEvent, Status> {
    if message.event_encoded.len() > EVENT_ENCODING_LEN_MAX {
        return Err(Status::invalid_argument(format!(
            "event_encoded: expected at most {EVENT_ENCODING_LEN_MAX} bytes, found {}",
            message.event_encoded.len()
        )));
    }
    let time_from_observer = message.timestamp_ms == 0;
    Ok(GatewayEvent {
        gateway_network: peer_integer("gateway network", network.0)?,
        gateway_seq: peer_integer("seq", message.seq)?,
        deal_id: DealId(wire::bytes32("deal_id", &message.deal_id).map(interlock_core::Hash32)?),
        kind: message.kind.chars().take(64).collect(),
        network: peer_integer("network", message.network)?,
        height: peer_integer("height", message.height)?,
        timestamp_ms: peer_integer("timestamp_ms", if time_from_observer { now_ms } else { message.timestamp_ms })?,
        event_encoded: message.event_encoded,
        text: message.text.chars().take(1_000).collect(),
        time_from_observer,
    })
}

/// "25 USD on network 1", with the network's name when the directory has it.
pub fn leg_text(directory: &Directory, terms: &DealTerms, kind: LegKind) -> String {
    let leg = terms.leg(kind);
    match directory.network(leg.network) {
        Some(network) => format!("{} on {}", leg.asset, network.name),
        None => format!("{} on network {}", leg.asset, leg.network),
    }
}

fn summary_message(directory: &Directory, deal: &DealSummary) -> v1::ObservedDealSummary {
    v1::ObservedDealSummary {
        deal_id: deal.deal_id.0 .0.to_vec(),
        status: deal.status.clone(),
        mode: deal.terms.mode().to_string(),
        payment: leg_text(directory, &deal.terms, LegKind::Payment),
        delivery: leg_text(directory, &deal.terms, LegKind::Delivery),
        payment_network: deal.terms.payment.network.0,
        delivery_network: deal.terms.delivery.network.0,
        first_ms: deal.first_ms,
        last_ms: deal.last_ms,
        records: deal.records,
    }
}

fn record_message(record: record::Record) -> v1::ObserverRecord {
    v1::ObserverRecord {
        seq: record.seq,
        deal_id: record.entry.deal_id.0 .0.to_vec(),
        kind: record.entry.kind,
        network: record.entry.network,
        height: record.entry.height,
        timestamp_ms: record.entry.timestamp_ms,
        body_json: record.entry.body,
        prev_hash: record.prev_hash.0.to_vec(),
        hash: record.hash.0.to_vec(),
        signature: record.signature.0.to_vec(),
    }
}

/// Checks a status filter: empty for all, else one of the statuses.
pub fn status_filter(status: &str) -> Result<Option<&str>, String> {
    const STATUSES: [&str; 6] = ["proposed", "registered", "running", "completed", "refunded", "mixed"];
    match status {
        "" => Ok(None),
        s if STATUSES.contains(&s) => Ok(Some(s)),
        other => Err(format!("status {other:?}: expected one of {}", STATUSES.join(", "))),
    }
}

#[tonic::async_trait]
impl Observer for ObserverService {
    async fn list_deals(
        &self,
        request: Request<v1::ObservedDealsRequest>,
    ) -> Result<Response<v1::ObservedDealList>, Status> {
        let viewer = self.viewer(&request);
        let request = request.into_inner();
        let status = status_filter(&request.status).map_err(Status::invalid_argument)?;
        let limit = wire::list_limit("limit", request.limit, LIST_LIMIT_DEFAULT, LIST_LIMIT_MAX)?;
        let status = status.map(str::to_owned);
        let deals = self
            .blocking("listing deals", move |service| {
                service.log().deals_where(status.as_deref(), limit, |terms| viewer.may_see(terms))
            })
            .await
            .map_err(Status::internal)?
            .map_err(storage)?;
        let deals = deals.iter().map(|deal| summary_message(&self.shared.directory, deal)).collect();
        Ok(Response::new(v1::ObservedDealList { deals }))
    }

    async fn get_deal(&self, request: Request<v1::ObservedDealRequest>) -> Result<Response<v1::ObservedDeal>, Status> {
        let viewer = self.viewer(&request);
        let deal_id = DealId(interlock_core::Hash32(wire::bytes32("deal_id", &request.get_ref().deal_id)?));
        let read = self.blocking("reading a deal", move |service| {
            let log = service.log();
            let deal = log.deal(deal_id).map_err(storage)?;
            // A deal the caller is not part of reads as absent: whether it
            // exists is not the caller's to learn either.
            let deal = deal
                .filter(|deal| viewer.may_see(&deal.terms))
                .ok_or_else(|| Status::not_found(format!("this observer records no deal {deal_id} of yours")))?;
            Ok::<_, Status>((deal, log.records_of(deal_id, DEAL_RECORDS_MAX).map_err(storage)?))
        });
        let (deal, records) = read.await.map_err(Status::internal)??;
        Ok(Response::new(v1::ObservedDeal {
            summary: Some(summary_message(&self.shared.directory, &deal)),
            terms_encoded: interlock_core::encoding::encode_terms(&deal.terms),
            records: records.into_iter().map(record_message).collect(),
            observer_key: self.observer_key().0.to_vec(),
        }))
    }
}

/// Serves an observer's `Observer` service on `listener` until `shutdown`
/// resolves. Start its followers with [`ObserverService::start`].
pub async fn serve(
    service: ObserverService,
    tls: &TlsFiles,
    directory: Arc<Directory>,
    listener: tokio::net::TcpListener,
    shutdown: impl std::future::Future<Output = ()> + Send,
) -> Result<(), ServeError> {
    let observer =
        service.server().max_decoding_message_size(MESSAGE_LEN_MAX).max_encoding_message_size(MESSAGE_LEN_MAX);
    // No home: any caller the directory lists may read it.
    let access = interlock_rpc::access::Access::new(directory, interlock_rpc::access::Home::default());
    interlock_rpc::server::serve_with(observer, tls, access, listener, shutdown).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(seq: u64, height: u64, timestamp_ms: u64) -> v1::DealEvent {
        v1::DealEvent { seq, height, timestamp_ms, deal_id: vec![7; 32], network: 1, ..Default::default() }
    }

    proptest::proptest! {
        /// Whatever a gateway sends, the observer reads it into an event it
        /// can store, with every text and byte field bounded, or refuses it
        /// as the sender's mistake; it never panics.
        #[test]
        fn any_event_a_gateway_sends_is_bounded_or_refused(
            bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..512),
            seq in proptest::prelude::any::<u64>(),
            event_len in 0usize..(EVENT_ENCODING_LEN_MAX * 2),
            kind_len in 0usize..200,
        ) {
            use prost::Message as _;
            if let Ok(message) = v1::DealEvent::decode(bytes.as_slice()) {
                let _ = gateway_event(NetworkId(1), message, 1_000);
            }
            let message = v1::DealEvent {
                event_encoded: vec![1; event_len],
                kind: "k".repeat(kind_len),
                text: "t".repeat(kind_len * 10),
                ..event(seq, 1, 1)
            };
            match gateway_event(NetworkId(1), message, 1_000) {
                Ok(event) => {
                    proptest::prop_assert!(event.event_encoded.len() <= EVENT_ENCODING_LEN_MAX);
                    proptest::prop_assert!(event.kind.chars().count() <= 64 && event.text.chars().count() <= 1_000);
                }
                Err(status) => proptest::prop_assert_eq!(status.code(), tonic::Code::InvalidArgument),
            }
        }
    }

    #[test]
    fn integers_a_log_cannot_store_are_refused_not_a_panic() {
        let check = |message: v1::DealEvent, field: Option<&str>| {
            let decoded = gateway_event(NetworkId(1), message, 1_000);
            match field {
                None => assert!(decoded.is_ok(), "{decoded:?}"),
                Some(field) => {
                    let status = decoded.expect_err(field);
                    assert_eq!(status.code(), tonic::Code::InvalidArgument);
                    assert!(status.message().contains(field), "{}", status.message());
                }
            }
        };
        check(event(PEER_INTEGER_MAX, PEER_INTEGER_MAX, PEER_INTEGER_MAX), None);
        check(event(u64::MAX, 1, 1), Some("seq"));
        check(event(PEER_INTEGER_MAX + 1, 1, 1), Some("seq"));
        check(event(1, u64::MAX, 1), Some("height"));
        check(event(1, 1, u64::MAX), Some("timestamp_ms"));
        let far_network = v1::DealEvent { network: u64::MAX, ..event(1, 1, 1) };
        check(far_network, Some("network"));
        assert!(
            gateway_event(NetworkId(u64::MAX), event(1, 1, 1), 1).is_err(),
            "a gateway network beyond the log's range"
        );
    }

    /// A notice's sequence number goes to the log as a cursor (plus one), where
    /// u64::MAX overflowed and 2^63 failed the store's conversion: both are
    /// refused before the log is touched.
    #[test]
    fn a_notice_seq_the_log_cannot_keep_is_refused_not_a_panic() {
        let notice = |seq| v1::DealNotice { seq, ..Default::default() };
        assert_eq!(notice_seq(&notice(PEER_INTEGER_MAX)), Ok(PEER_INTEGER_MAX));
        for seq in [PEER_INTEGER_MAX + 1, u64::MAX] {
            let refused = notice_seq(&notice(seq)).expect_err("out of range");
            assert!(refused.starts_with(&format!("deal notice seq {seq} is out of range")), "{refused}");
        }
    }
}
