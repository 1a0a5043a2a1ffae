//! The notary service: one notary of a deal's k-of-n set, over gRPC. It follows
//! every network of the directory through its gateway's block stream, decides with
//! the core's `NotaryDeal`, writes each decision to its `NotaryLog` before it
//! signs, and answers with its vote.
//!
//! Before it commits it evaluates the deal's approval rules (`policy::approve`):
//! the directory's parties and each party's daily totals, which it keeps in
//! memory and, with each commit, in its log. An abort for a broken rule carries
//! the rule's message in the vote, for both parties.
//!
//! Open a [`NotaryService`] over its [`NotaryLog`] (`log`) and [`serve`] it.

// Integers from peers, chains and files are converted with `try_from` and
// checked arithmetic; a cast that could truncate, wrap or drop a sign is a
// build error (an `allow` on the smallest item says why a cast is safe).
#![deny(clippy::cast_possible_truncation, clippy::cast_possible_wrap, clippy::cast_sign_loss)]

mod disputes;
mod inspection;
pub mod log;

pub use disputes::PeerNotary;
pub use log::NotaryLog;

use interlock_chain::{SpendDigest, SpendToSign};
use interlock_core::crypto::{verify_deal_signature, Ed25519Signature, NotaryKey, Vote};
use interlock_core::encoding::Decode;
use interlock_core::notary::{NotaryDeal, NotaryError, NotaryOutput};
use interlock_core::policy::{movements, utc_day, Approvals};
use interlock_core::{
    reservation_id, AssetCode, DealId, DealTerms, Decision, EscrowEvent, Hash32, LegKind, NetworkId, NetworkTiming,
    PartyId, ReservationId,
};
use interlock_identity::{Directory, PeerIdentity};
use interlock_proto::v1;
use interlock_proto::v1::gateway_client::GatewayClient;
use interlock_proto::v1::notary_server::Notary;
use interlock_rpc::repeated::Repeated;
use interlock_rpc::server::{ServeError, TlsFiles, MESSAGE_LEN_MAX};
use interlock_rpc::store::{GroupWriter, StoreError};
use interlock_rpc::wire;
use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tonic::transport::{CertificateDer, Channel};
use tonic::{Request, Response, Status};

/// How often undecided deals are checked against their decision deadline.
const TICK_INTERVAL: Duration = Duration::from_millis(50);
/// How long to wait before following a network again after its gateway's stream broke.
const RECONNECT_AFTER: Duration = Duration::from_millis(300);
/// How often the notary saves the height it follows each network from.
const FOLLOW_SAVE_INTERVAL: Duration = Duration::from_secs(1);
/// How often an idle notary looks for a deal to follow the networks for.
const IDLE_CHECK: Duration = Duration::from_millis(20);
/// How long `SubmitDeal` waits for an undecided deal's decision before it
/// answers without a vote.
const VOTE_WAIT_MAX: Duration = Duration::from_secs(2);
/// Most deals one notary holds in memory.
const DEALS_MAX: usize = 1_000_000;

struct Shared {
    key: NotaryKey,
    /// Read behind its lock; written only through `writer`.
    log: Arc<Mutex<NotaryLog>>,
    /// Commits the decisions (and accepted deals) recorded at once together.
    writer: GroupWriter<NotaryLog>,
    deals: Mutex<HashMap<DealId, NotaryDeal>>,
    /// The parties' signatures each held deal was submitted with and that
    /// verified: the same bytes again need no second check.
    signed: Mutex<HashMap<DealId, [Ed25519Signature; 2]>>,
    votes: Mutex<HashMap<DealId, Vote>>,
    /// Callers waiting for a deal's decision.
    waiting: Mutex<HashMap<DealId, Arc<tokio::sync::Notify>>>,
    gateways: HashMap<NetworkId, GatewayClient<Channel>>,
    clock: fn() -> u64,
    /// The parties the directory lists.
    registered: HashSet<PartyId>,
    /// What each party moved per asset and UTC day in the deals this notary
    /// committed; counted when it decides, so two deals deciding at once see
    /// each other, and written to the log with each commit.
    moved: Mutex<DailyTotals>,
    /// Why deals aborted, when they broke a rule.
    reasons: Mutex<HashMap<DealId, String>>,
    /// How log lines name each network's gateway (its name and address).
    gateway_names: Mutex<HashMap<NetworkId, String>>,
    /// Failures to follow each gateway: one line per outage, not per retry.
    unreachable: Repeated,
    /// Where this notary saw each leg of its undecided deals reserved, from
    /// its gateway streams: a reorganisation below that height takes it away.
    seen_at: Mutex<HashMap<(DealId, LegKind), (NetworkId, u64)>>,
    /// How fast each network's chain moves: a new deal must leave room
    /// between the decision deadline and the backstop for an execution to be
    /// mined, or a commit could reach one chain and not the other.
    timings: HashMap<NetworkId, NetworkTiming>,
    /// The networks whose escrow takes the notaries' signatures over each
    /// spend, with what the notary signs for one ([`Platform::spend_digest`](interlock_chain::Platform::spend_digest)).
    spend_digests: Mutex<HashMap<NetworkId, SpendDigest>>,
    /// The inspection windows of committed deals that have one
    /// (`inspection.rs`). Locked after `deals` when both are held.
    verdicts: Mutex<HashMap<DealId, interlock_core::verdict::VerdictDeal>>,
    /// This notary's recorded verdict votes.
    verdict_votes: Mutex<HashMap<DealId, Vote>>,
    /// Deals with an inspection period that this notary aborted, with their
    /// backstop expiry: until then it watches for their legs held.
    joinable: Mutex<HashMap<DealId, u64>>,
    /// The other notaries, which hear each dispute this one records (`disputes.rs`).
    peers: Mutex<Vec<PeerNotary>>,
}

/// The longest leg location a spend request may carry.
const LOCATION_LEN_MAX: usize = 256;

type DailyTotals = HashMap<(PartyId, AssetCode, u64), u128>;

/// The notary's side of the approval rules.
struct ServiceApprovals<'a> {
    registered: &'a HashSet<PartyId>,
    moved: &'a DailyTotals,
}

impl Approvals for ServiceApprovals<'_> {
    fn registered(&self, party: PartyId) -> bool {
        self.registered.contains(&party)
    }
    fn moved_on_day(&self, party: PartyId, asset: &AssetCode, day: u64) -> u128 {
        self.moved.get(&(party, asset.clone(), day)).copied().unwrap_or(0)
    }
}

/// Counts a commit among `outputs` into the daily totals at once.
fn count_commits(moved: &mut DailyTotals, deal: &NotaryDeal, outputs: &[NotaryOutput], now_ms: u64) {
    let commits = outputs.iter().any(|o| matches!(o, NotaryOutput::Record { decision: Decision::Commit, .. }));
    if commits {
        for (_, party, asset, amount) in movements(deal.terms()) {
            let total = moved.entry((party, asset, utc_day(now_ms))).or_default();
            *total = total.saturating_add(amount);
        }
    }
}

#[derive(Clone)]
pub struct NotaryService {
    shared: Arc<Shared>,
}

fn locked<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().expect("notary locks are never poisoned: nothing panics while holding them")
}

impl NotaryService {
    /// Restores every deal of `log` (decided ones sign their recorded decision
    /// again) and follows each network through its gateway in `gateways`.
    /// `registered` are the parties of the directory: only their deals commit.
    /// `timings` are the networks' paces that new deals are held to (a
    /// network it does not list is not checked).
    pub fn open(
        key: NotaryKey,
        log: NotaryLog,
        gateways: HashMap<NetworkId, GatewayClient<Channel>>,
        registered: HashSet<PartyId>,
        timings: HashMap<NetworkId, NetworkTiming>,
        clock: fn() -> u64,
    ) -> Result<NotaryService, StoreError> {
        let mut deals = HashMap::new();
        let mut votes = HashMap::new();
        let reasons: HashMap<DealId, String> = log.reasons()?.into_iter().collect();
        let moved: DailyTotals =
            log.daily_totals()?.into_iter().map(|(party, asset, day, amount)| ((party, asset, day), amount)).collect();
        for (terms, decision) in log.load()? {
            let deal = NotaryDeal::restore(terms, decision);
            if let Some(vote) = deal.vote(&key) {
                votes.insert(deal.deal_id(), vote);
            }
            deals.insert(deal.deal_id(), deal);
        }
        let log = Arc::new(Mutex::new(log));
        let writer = GroupWriter::start("notary-writer", log.clone())?;
        let shared = Shared {
            key,
            log,
            writer,
            deals: Mutex::new(deals),
            signed: Mutex::new(HashMap::new()),
            votes: Mutex::new(votes),
            waiting: Mutex::new(HashMap::new()),
            gateways,
            clock,
            registered,
            moved: Mutex::new(moved),
            reasons: Mutex::new(reasons),
            gateway_names: Mutex::default(),
            unreachable: Repeated::new(),
            seen_at: Mutex::default(),
            timings,
            spend_digests: Mutex::default(),
            verdicts: Mutex::default(),
            verdict_votes: Mutex::default(),
            joinable: Mutex::default(),
            peers: Mutex::default(),
        };
        let service = NotaryService { shared: Arc::new(shared) };
        service.restore_windows(&locked(&service.shared.log))?;
        Ok(service)
    }

    pub fn address(&self) -> interlock_core::NotaryAddress {
        self.shared.key.address()
    }

    /// Runs `work` on tokio's blocking pool: the log's writes fsync, and a
    /// worker stalled on one (or on the log lock held across one) stalls every
    /// task queued behind it. `what` names the call if it never returns.
    async fn blocking<T, F>(&self, what: &'static str, work: F) -> Result<T, Status>
    where
        T: Send + 'static,
        F: FnOnce(&NotaryService) -> Result<T, Status> + Send + 'static,
    {
        let notary = self.clone();
        tokio::task::spawn_blocking(move || work(&notary))
            .await
            .map_err(|error| Status::internal(format!("notary storage call {what} did not finish: {error}")))?
    }

    /// How many group commits the notary's log writer made.
    pub fn group_commits(&self) -> u64 {
        self.shared.writer.commits()
    }

    /// Persists each decision of each deal, then signs it. The decisions are
    /// recorded together (one commit for all that wait), and each is signed
    /// only once its commit returned; a decision the log refuses (it holds
    /// the other one) is never signed, and does not hold back the others.
    async fn settle(&self, decided: Vec<(DealId, Vec<NotaryOutput>)>, now_ms: u64) -> Result<(), Status> {
        let mut recording = Vec::new();
        for (deal_id, outputs) in decided {
            for output in outputs {
                let NotaryOutput::Record { decision, reason, .. } = output else { continue };
                interlock_rpc::metrics::metrics().deal_event(
                    "notary",
                    match (decision, &reason) {
                        (Decision::Abort, Some(_)) => "abort_policy",
                        (decision, _) => decision.as_str(),
                    },
                );
                let noted = reason.clone();
                let write = self
                    .shared
                    .writer
                    .submit(move |log: &mut NotaryLog| log.record(deal_id, decision, noted.as_deref(), now_ms));
                recording.push((deal_id, reason, write, std::time::Instant::now()));
            }
        }
        let mut first_failure = Ok(());
        for (deal_id, reason, write, started) in recording {
            match write.wait().await {
                Ok(()) => self.recorded(deal_id, reason, started),
                Err(error) => {
                    let status = Status::internal(format!("cannot record the decision of deal {deal_id}: {error}"));
                    if first_failure.is_ok() {
                        first_failure = Err(status);
                    } else {
                        eprintln!("notary: {}", status.message());
                    }
                }
            }
        }
        first_failure
    }

    /// A decision is durable: sign it and answer whoever waits for it.
    fn recorded(&self, deal_id: DealId, reason: Option<String>, started: std::time::Instant) {
        let metrics = interlock_rpc::metrics::metrics();
        if let Some(reason) = reason {
            locked(&self.shared.reasons).insert(deal_id, reason);
        }
        // Decided for good: no reorganisation changes it now.
        let mut seen_at = locked(&self.shared.seen_at);
        for leg in LegKind::BOTH {
            seen_at.remove(&(deal_id, leg));
        }
        drop(seen_at);
        let mut deals = locked(&self.shared.deals);
        let deal = deals.get_mut(&deal_id).expect("a deciding deal is held");
        for signed in deal.recorded(&self.shared.key) {
            if let NotaryOutput::Vote(vote) = signed {
                locked(&self.shared.votes).insert(deal_id, vote);
                if let Some(waiting) = locked(&self.shared.waiting).remove(&deal_id) {
                    waiting.notify_waiters();
                }
            }
        }
        // A committed deal with an inspection period: its window opens now;
        // an aborted one may be joined if the others committed it.
        match deal.decision() {
            Some(Decision::Commit) => self.open_window(deal.terms()),
            Some(Decision::Abort) => self.may_join(deal.terms()),
            _ => {}
        }
        metrics.step_took("notary", "record_and_sign", started.elapsed());
        // `deals` is still held: count with it (locking it again would deadlock).
        let undecided = deals.len().saturating_sub(locked(&self.shared.votes).len());
        metrics.deals_in_state("notary", "undecided", undecided);
    }

    async fn observe(&self, event: &EscrowEvent) -> Result<(), Status> {
        let deal_id = event.deal_id();
        let now = (self.shared.clock)();
        let outputs = {
            let mut deals = locked(&self.shared.deals);
            let Some(deal) = deals.get_mut(&deal_id) else { return Ok(()) };
            let mut moved = locked(&self.shared.moved);
            let approvals = ServiceApprovals { registered: &self.shared.registered, moved: &moved };
            let outputs = deal.observe(now, event, &approvals);
            count_commits(&mut moved, deal, &outputs, now);
            outputs
        };
        self.settle(vec![(deal_id, outputs)], now).await
    }

    /// Checks undecided deals against their deadlines, forever.
    pub async fn tick(self) {
        let mut ticker = tokio::time::interval(TICK_INTERVAL);
        loop {
            ticker.tick().await;
            let now = (self.shared.clock)();
            self.tick_windows(now).await;
            let decided: Vec<(DealId, Vec<NotaryOutput>)> = {
                let mut deals = locked(&self.shared.deals);
                let mut moved = locked(&self.shared.moved);
                let mut decided = Vec::new();
                for (id, deal) in deals.iter_mut().filter(|(_, deal)| deal.wake_at_ms().is_some_and(|at| now >= at)) {
                    let approvals = ServiceApprovals { registered: &self.shared.registered, moved: &moved };
                    let outputs = deal.tick(now, &approvals);
                    count_commits(&mut moved, deal, &outputs, now);
                    decided.push((*id, outputs));
                }
                decided
            };
            if decided.is_empty() {
                continue;
            }
            if let Err(status) = self.settle(decided, now).await {
                eprintln!("notary: {}", status.message());
            }
        }
    }

    /// Follows one network's blocks through its gateway, forever,
    /// reconnecting when the stream breaks. Reservations are all it needs.
    /// It reads on from the height it saved (at most a FOLLOW_SAVE_INTERVAL
    /// behind what it read), and first asks the gateway for the reservations
    /// of every deal still undecided, which its memory lost with the restart.
    pub async fn follow(self, network: NetworkId) {
        let Some(client) = self.shared.gateways.get(&network).cloned() else { return };
        let saved = self.blocking("reading a follow cursor", move |notary| {
            locked(&notary.shared.log).follow_cursor(network).map_err(|error| Status::internal(error.to_string()))
        });
        let mut next = saved.await.ok().flatten().unwrap_or(1);
        if next > 1 {
            self.catch_up_undecided(network).await;
        }
        let mut saved_at = std::time::Instant::now();
        loop {
            // A notary with every deal decided has nothing to watch for: it
            // stops following until a deal arrives, and resumes where it left.
            while !self.undecided() && !self.awaiting_held() {
                tokio::time::sleep(IDLE_CHECK).await;
            }
            let mut client = client.clone();
            let mut idle = false;
            match client.stream_blocks(v1::StreamBlocksRequest { from_height: next }).await {
                Ok(response) => {
                    if let Some(line) = self.shared.unreachable.recovered(&self.gateway_name(network)) {
                        eprintln!("notary: {line}");
                    }
                    let mut stream = response.into_inner();
                    while let Ok(Some(block)) = stream.message().await {
                        let Some(after) = next_height(&block, next) else {
                            let height = block.header.map_or(0, |header| header.height);
                            self.unreachable(network, &format!("sent a block at height {height}, beyond 2^63 - 1"));
                            break;
                        };
                        self.on_block(network, &block).await;
                        next = after;
                        if saved_at.elapsed() >= FOLLOW_SAVE_INTERVAL {
                            saved_at = std::time::Instant::now();
                            let saving = self
                                .shared
                                .writer
                                .submit(move |log: &mut NotaryLog| log.save_follow_cursor(network, next));
                            // Not waited for: a later save carries a later height.
                            drop(saving);
                        }
                        if !self.undecided() && !self.awaiting_held() {
                            idle = true;
                            break;
                        }
                    }
                }
                Err(status) => self.unreachable(network, status.message()),
            }
            if !idle {
                tokio::time::sleep(RECONNECT_AFTER).await;
            }
        }
    }

    /// One message of `network`'s block stream: a reorganisation first (the
    /// legs seen above the block kept are no longer counted), then the
    /// reservations, each counted at its height.
    async fn on_block(&self, network: NetworkId, block: &v1::BlockEvents) {
        if block.rolled_back {
            self.rolled_back(network, block.header.as_ref().map_or(0, |h| h.height));
        }
        for event in &block.events {
            if event.kind == "held" {
                if let Ok(event) = EscrowEvent::from_bytes(&event.event_encoded) {
                    self.join_window(&event);
                }
                continue;
            }
            if event.kind != "reserved" {
                continue;
            }
            let height = event.height;
            let Ok(event) = EscrowEvent::from_bytes(&event.event_encoded) else { continue };
            let (deal_id, leg) = (event.deal_id(), event.leg());
            let undecided = locked(&self.shared.deals).get(&deal_id).is_some_and(|deal| deal.wake_at_ms().is_some());
            if undecided {
                locked(&self.shared.seen_at).insert((deal_id, leg), (network, height));
            }
            let _ = self.observe(&event).await;
        }
    }

    /// `network` reorganised back to block `to`: every undecided deal's leg
    /// this notary saw reserved above it is no longer counted, until the
    /// stream, which goes on from the new chain, shows it again.
    fn rolled_back(&self, network: NetworkId, to: u64) {
        let mut seen_at = locked(&self.shared.seen_at);
        let gone: Vec<(DealId, LegKind)> =
            seen_at.iter().filter(|(_, (on, height))| *on == network && *height > to).map(|(leg, _)| *leg).collect();
        let mut deals = locked(&self.shared.deals);
        let mut forgotten = Vec::new();
        for (deal_id, leg) in gone {
            seen_at.remove(&(deal_id, leg));
            if deals.get_mut(&deal_id).is_some_and(|deal| deal.rolled_back(leg)) {
                forgotten.push(format!("{deal_id} {leg}"));
            }
        }
        interlock_rpc::metrics::metrics().deal_event("notary", "reorganised");
        eprintln!(
            "notary: {} reorganised back to block {to}; reservations no longer counted: {}",
            self.gateway_name(network),
            if forgotten.is_empty() { "none".to_owned() } else { forgotten.join(", ") }
        );
    }

    /// Signs spends on these networks, whose escrow is a script that takes
    /// the notaries' signatures over the spend itself.
    pub fn sign_spends_on(&self, digests: HashMap<NetworkId, SpendDigest>) {
        *locked(&self.shared.spend_digests) = digests;
    }

    /// Names each network's gateway in log lines (`gateway NAME at HOST:PORT`).
    pub fn name_gateways(&self, names: HashMap<NetworkId, String>) {
        *locked(&self.shared.gateway_names) = names;
    }

    fn gateway_name(&self, network: NetworkId) -> String {
        match locked(&self.shared.gateway_names).get(&network) {
            Some(name) => format!("{name} (network {network})"),
            None => format!("the gateway of network {network}"),
        }
    }

    /// Logs a failure to follow `network`'s gateway, once per outage.
    fn unreachable(&self, network: NetworkId, message: &str) {
        let gateway = self.gateway_name(network);
        let line = format!("notary: following {gateway} failed: {message}");
        if let Some(line) = self.shared.unreachable.failed(&gateway, &line, std::time::Instant::now()) {
            eprintln!("{line}");
        }
    }

    fn vote_message(&self, vote: &Vote) -> v1::NotaryVote {
        vote_message(vote, self.address(), locked(&self.shared.reasons).get(&vote.deal_id))
    }

    /// Whether some deal this notary holds is not decided yet.
    fn undecided(&self) -> bool {
        let deals = locked(&self.shared.deals).len();
        deals > locked(&self.shared.votes).len()
    }

    /// The reservations on `network` of every deal still undecided, from the
    /// gateway: what a restart made the notary forget.
    async fn catch_up_undecided(&self, network: NetworkId) {
        let undecided: Vec<(DealId, [(LegKind, NetworkId); 2])> = {
            let deals = locked(&self.shared.deals);
            let votes = locked(&self.shared.votes);
            deals
                .iter()
                .filter(|(deal_id, _)| !votes.contains_key(deal_id))
                .map(|(deal_id, deal)| {
                    let terms = deal.terms();
                    (*deal_id, [(LegKind::Payment, terms.payment.network), (LegKind::Delivery, terms.delivery.network)])
                })
                .collect()
        };
        for (deal_id, legs) in undecided {
            let here: Vec<(LegKind, NetworkId)> = legs.into_iter().filter(|(_, on)| *on == network).collect();
            self.catch_up(deal_id, &here).await;
        }
    }

    /// Reservations made before the deal reached this notary (their blocks
    /// went by while the deal was unknown here): ask the gateways, again and
    /// again while one is unreachable, until each leg is found, known to be
    /// not reserved yet (the stream will show it), or the deal is decided.
    async fn catch_up(&self, deal_id: DealId, legs: &[(LegKind, NetworkId)]) {
        for &(leg, network) in legs {
            let Some(client) = self.shared.gateways.get(&network).cloned() else { continue };
            let id: ReservationId = reservation_id(deal_id, leg);
            loop {
                if locked(&self.shared.votes).contains_key(&deal_id) {
                    return;
                }
                let request = v1::GetReservationRequest { reservation_id: id.0 .0.to_vec() };
                match client.clone().get_reservation(request).await {
                    Ok(found) => {
                        let encoded = found.into_inner().reservation_encoded;
                        if let Ok(reservation) = interlock_core::Reservation::from_bytes(&encoded) {
                            let event = EscrowEvent::Reserved(reservation);
                            let _ = self.observe(&event).await;
                        }
                        break;
                    }
                    Err(status) if status.code() == tonic::Code::NotFound => break,
                    Err(_) => tokio::time::sleep(RECONNECT_AFTER).await,
                }
            }
        }
    }
}

fn refusal(error: NotaryError) -> Status {
    match error {
        NotaryError::BuyerSignature(_) | NotaryError::SellerSignature(_) => Status::unauthenticated(error.to_string()),
        NotaryError::NotInSet(_) => Status::permission_denied(error.to_string()),
        NotaryError::NotNotaryMode | NotaryError::Terms(_) => Status::invalid_argument(error.to_string()),
    }
}

/// Both parties' signatures over the deal: checked on every submission, of a
/// deal this notary holds already or not, so that only the parties of a deal
/// (or whom they handed both signatures) learn its vote.
fn check_signatures(
    terms: &DealTerms,
    deal_id: DealId,
    buyer_signature: &Ed25519Signature,
    seller_signature: &Ed25519Signature,
) -> Result<(), NotaryError> {
    verify_deal_signature(terms.buyer, deal_id, buyer_signature).map_err(NotaryError::BuyerSignature)?;
    verify_deal_signature(terms.seller, deal_id, seller_signature).map_err(NotaryError::SellerSignature)
}

/// Where to read on after `block`: the height after its own, or `next` for a
/// message without a header. `None` when that height is beyond what the
/// follow cursor's store holds (a gateway that sends one is broken, and its
/// block is not read).
fn next_height(block: &v1::BlockEvents, next: u64) -> Option<u64> {
    match &block.header {
        None => Some(next),
        Some(header) => header.height.checked_add(1).filter(|after| *after <= wire::STORED_INTEGER_MAX),
    }
}

/// Who made a call, for the log: the role and name of its certificate, else
/// its address.
fn caller_name(certificates: Option<&[CertificateDer<'static>]>, address: Option<SocketAddr>) -> String {
    match PeerIdentity::from_peer_certificates(certificates) {
        Ok(peer) => format!("{} {:?}", peer.role, peer.name),
        Err(_) => address.map_or_else(|| "an unknown caller".to_owned(), |address| address.to_string()),
    }
}

fn vote_message(vote: &Vote, notary: interlock_core::NotaryAddress, reason: Option<&String>) -> v1::NotaryVote {
    v1::NotaryVote {
        deal_id: vote.deal_id.0 .0.to_vec(),
        decision: vote.decision.as_str().into(),
        signature: vote.signature.0.to_vec(),
        notary: notary.0.to_vec(),
        reason: reason.cloned().unwrap_or_default(),
    }
}

#[tonic::async_trait]
impl Notary for NotaryService {
    async fn submit_deal(
        &self,
        request: Request<v1::SubmitDealRequest>,
    ) -> Result<Response<v1::SubmitDealResponse>, Status> {
        let (certificates, address) = (request.peer_certs(), request.remote_addr());
        let request = request.into_inner();
        let deal = wire::wire_deal(&request.terms_encoded, &request.buyer_signature, &request.seller_signature)?;
        let (buyer_signature, seller_signature) = deal.both_signatures()?;
        let terms = deal.terms;
        let deal_id = terms.id();
        let signatures = [buyer_signature, seller_signature];
        let refused = |error: NotaryError| {
            let caller = caller_name(certificates.as_deref().map(Vec::as_slice), address);
            tracing::warn!(%caller, %deal_id, "notary: refused a submission whose signatures do not verify: {error}");
            refusal(error)
        };
        // Before anything else, for a known deal too: its recorded vote goes
        // only to a submission both parties signed. A new deal's are checked
        // by `NotaryDeal::accept_shared`, first thing; a known deal's once for
        // each pair of signatures it is submitted with (the other party's
        // submission brings the same bytes).
        let known = locked(&self.shared.deals).contains_key(&deal_id);
        let seen = known && locked(&self.shared.signed).get(&deal_id) == Some(&signatures);
        if known && !seen {
            check_signatures(&terms, deal_id, &buyer_signature, &seller_signature).map_err(refused)?;
            locked(&self.shared.signed).insert(deal_id, signatures);
        }
        if !known {
            let terms = Arc::new(terms);
            let now = (self.shared.clock)();
            let (deal, outputs) =
                NotaryDeal::accept_shared(&self.shared.key, terms.clone(), &buyer_signature, &seller_signature, now)
                    .map_err(|error| match error {
                        NotaryError::BuyerSignature(_) | NotaryError::SellerSignature(_) => refused(error),
                        other => refusal(other),
                    })?;
            terms.check_timing_in(&self.shared.timings).map_err(|error| {
                Status::failed_precondition(format!(
                    "deal {deal_id} leaves its chains too little time to settle: {error}"
                ))
            })?;
            if locked(&self.shared.deals).len() >= DEALS_MAX {
                return Err(Status::resource_exhausted(format!("this notary holds {DEALS_MAX} deals already")));
            }
            let accepted = terms.clone();
            self.shared
                .writer
                .write(move |log: &mut NotaryLog| log.accept(&accepted))
                .await
                .map_err(|error| Status::internal(format!("cannot record the deal: {error}")))?;
            locked(&self.shared.deals).entry(deal_id).or_insert(deal);
            locked(&self.shared.signed).insert(deal_id, signatures);
            interlock_rpc::metrics::metrics().deal_event("notary", "accepted");
            self.settle(vec![(deal_id, outputs)], now).await?;
            let networks = [(LegKind::Payment, terms.payment.network), (LegKind::Delivery, terms.delivery.network)];
            let notary = self.clone();
            tokio::spawn(async move { notary.catch_up(deal_id, &networks).await });
        }
        let mut vote = locked(&self.shared.votes).get(&deal_id).map(|vote| self.vote_message(vote));
        if vote.is_none() {
            // Undecided: answer when it is, or after a while with no vote, so
            // the parties need not poll.
            let waiting = locked(&self.shared.waiting).entry(deal_id).or_default().clone();
            let decided = waiting.notified();
            tokio::pin!(decided);
            decided.as_mut().enable();
            if !locked(&self.shared.votes).contains_key(&deal_id) {
                let _ = tokio::time::timeout(VOTE_WAIT_MAX, decided).await;
            }
            vote = locked(&self.shared.votes).get(&deal_id).map(|vote| self.vote_message(vote));
        }
        Ok(Response::new(v1::SubmitDealResponse { deal_id: deal_id.0 .0.to_vec(), vote }))
    }

    async fn sign_spend(
        &self,
        request: Request<v1::SignSpendRequest>,
    ) -> Result<Response<v1::SignSpendResponse>, Status> {
        let request = request.into_inner();
        let deal_id = DealId(Hash32(wire::bytes32("deal_id", &request.deal_id)?));
        let leg = match request.leg.as_str() {
            "payment" => LegKind::Payment,
            "delivery" => LegKind::Delivery,
            other => return Err(Status::invalid_argument(format!("leg {other:?}: expected payment or delivery"))),
        };
        let decision = match request.decision.as_str() {
            "commit" => Decision::Commit,
            "abort" => Decision::Abort,
            other => return Err(Status::invalid_argument(format!("decision {other:?}: expected commit or abort"))),
        };
        if request.location.len() > LOCATION_LEN_MAX {
            return Err(Status::invalid_argument(format!(
                "a leg's location of {} bytes: at most {LOCATION_LEN_MAX}",
                request.location.len()
            )));
        }
        let terms = locked(&self.shared.deals).get(&deal_id).map(|deal| deal.terms().clone());
        let terms = terms.ok_or_else(|| Status::not_found(format!("this notary has no deal {deal_id}")))?;
        // Only what this notary recorded: its vote exists once the decision is in its log.
        let recorded = locked(&self.shared.votes).get(&deal_id).map(|vote| vote.decision);
        match recorded {
            None => return Err(Status::failed_precondition(format!("deal {deal_id} is not decided yet"))),
            Some(recorded) if recorded != decision => {
                return Err(Status::failed_precondition(format!(
                    "this notary recorded {recorded} on deal {deal_id}: it signs no {decision} spend"
                )))
            }
            Some(_) => {}
        }
        let network = terms.leg(leg).network;
        let digest_of = locked(&self.shared.spend_digests).get(&network).cloned().ok_or_else(|| {
            Status::failed_precondition(format!(
                "network {network}'s escrow checks the decision certificate itself: there is no spend to sign, \
                 present the votes"
            ))
        })?;
        let spend = SpendToSign { terms, leg, decision, location: request.location };
        let digest = digest_of(&spend).map_err(|error| {
            Status::invalid_argument(format!("no {decision} spend of deal {deal_id}'s {leg:?} leg there: {error}"))
        })?;
        interlock_rpc::metrics::metrics().deal_event("notary", "spend_signed");
        Ok(Response::new(v1::SignSpendResponse {
            signature: self.shared.key.sign_digest(&digest).0.to_vec(),
            notary: self.address().0.to_vec(),
        }))
    }

    async fn raise_dispute(
        &self,
        request: Request<v1::RaiseDisputeRequest>,
    ) -> Result<Response<v1::InspectionStatus>, Status> {
        self.raise_dispute(request.into_inner()).await.map(Response::new)
    }

    async fn decide_dispute(
        &self,
        request: Request<v1::DecideDisputeRequest>,
    ) -> Result<Response<v1::InspectionStatus>, Status> {
        self.decide_dispute(request.into_inner()).await.map(Response::new)
    }

    async fn get_inspection(
        &self,
        request: Request<v1::GetVoteRequest>,
    ) -> Result<Response<v1::InspectionStatus>, Status> {
        self.get_inspection(request.into_inner()).map(Response::new)
    }

    async fn get_verdict(&self, request: Request<v1::GetVoteRequest>) -> Result<Response<v1::NotaryVote>, Status> {
        self.get_verdict(request.into_inner()).map(Response::new)
    }

    async fn get_vote(&self, request: Request<v1::GetVoteRequest>) -> Result<Response<v1::NotaryVote>, Status> {
        let deal_id = DealId(Hash32(wire::bytes32("deal_id", &request.into_inner().deal_id)?));
        let vote = locked(&self.shared.votes).get(&deal_id).copied();
        match vote {
            Some(vote) => Ok(Response::new(self.vote_message(&vote))),
            None if locked(&self.shared.deals).contains_key(&deal_id) => {
                Err(Status::failed_precondition(format!("deal {deal_id} is not decided yet")))
            }
            None => Err(Status::not_found(format!("this notary has no deal {deal_id}"))),
        }
    }
}

/// Serves a notary on `listener` until `shutdown` resolves.
pub async fn serve(
    service: NotaryService,
    tls: &TlsFiles,
    directory: Arc<Directory>,
    listener: tokio::net::TcpListener,
    shutdown: impl std::future::Future<Output = ()> + Send,
) -> Result<(), ServeError> {
    // Its operator, holding its own certificate, decides disputes.
    let address = service.address();
    let name = directory.notaries.iter().find(|notary| notary.address == address).map(|notary| notary.name.clone());
    let home =
        name.map_or_else(interlock_rpc::access::Home::default, |name| interlock_rpc::access::Home::itself(&name));
    let access = interlock_rpc::access::Access::new(directory, home);
    let notary =
        interlock_proto::v1::notary_server::NotaryServer::new(service).max_decoding_message_size(MESSAGE_LEN_MAX);
    interlock_rpc::server::serve_with(notary, tls, access, listener, shutdown).await
}

#[cfg(test)]
mod tests;
