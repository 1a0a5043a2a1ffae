//! The agent's engine: the one task that owns the agent's deals, sagas and store.

use super::terms::{draft, Proposer};
use crate::stores::{AgentDeal, AgentStore, AgentWrite, DealState, StoreError};
use interlock_core::crypto::{verify_deal_signature, Ed25519Signature, PartyKey, Secret, Vote};
use interlock_core::encoding::{decode_terms, encode_terms, Decode, Encode};
use interlock_core::policy::TimeoutNotice;
use interlock_core::saga::{LegStatus, Outcome, Role, Saga, SagaOutput};
use interlock_core::{Asset, DealId, DealTerms, EscrowEvent, EscrowOp, Hash32, LegKind, NetworkId};
use interlock_identity::{Directory, PartyEntry};
use interlock_ledger::{Op, Transaction};
use interlock_proto::v1;
use interlock_proto::v1::gateway_client::GatewayClient;
use interlock_proto::v1::notary_client::NotaryClient;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{broadcast, mpsc, oneshot, Semaphore};
use tonic::transport::Channel;
use tonic::Status;

/// How often the engine steps the sagas when nothing arrives.
const STEP_INTERVAL: Duration = Duration::from_millis(50);
/// Inputs waiting for the engine.
const INPUTS_BUFFER: usize = 8_192;
/// Transactions and notary requests in flight at once.
const REQUESTS_IN_FLIGHT: usize = 512;
/// How long to wait before following a gateway again after its stream broke.
const RECONNECT_AFTER: Duration = Duration::from_millis(300);
/// Most inputs handled in one round (one write).
const BATCH_MAX: usize = 1_024;
/// Deal views kept for watchers that fall behind.
const UPDATES_BUFFER: usize = 32_768;

#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    #[error("the directory lists no party {0}: the agent's certificate name must be a party")]
    NotAParty(String),
    #[error("the agent's key {found} is not party {party}'s key {listed} in the directory")]
    WrongKey { party: String, listed: String, found: String },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What an agent needs to run.
pub struct AgentConfig {
    /// The party's name in the directory.
    pub party: String,
    pub key: PartyKey,
    pub directory: Arc<Directory>,
    /// The gateway of each network, connected as the party.
    pub gateways: HashMap<NetworkId, GatewayClient<Channel>>,
    pub notaries: Vec<NotaryClient<Channel>>,
    pub store: AgentStore,
    pub clock: fn() -> u64,
    /// Accept every valid proposal from a party of the directory without asking.
    pub auto_accept: bool,
    /// Print one line per step and action, with the deal id.
    pub verbose: bool,
    /// The party's signing account on each EVM network: escrow transactions for
    /// those networks go to the chain from it, not through the gateway.
    pub evm: HashMap<NetworkId, EvmAccount>,
}

/// A party's account on an EVM network and the escrow client that signs for it.
#[derive(Clone)]
pub struct EvmAccount {
    pub escrow: interlock_evm::chain::EvmEscrow,
    pub address: interlock_evm::alloy::primitives::Address,
}

pub(crate) type Reply<T> = oneshot::Sender<Result<T, Status>>;

/// What the operator asks of the engine.
pub(crate) enum Command {
    /// Draft, sign and record a proposal; answers the view and what to send to
    /// which gateway.
    Propose(Box<v1::ProposeDealRequest>, Reply<(v1::DealView, Sending)>),
    /// Countersign a received proposal; answers what to register where.
    Accept(String, Reply<(DealId, Sending)>),
    Cancel(String, Reply<v1::DealView>),
    Get(String, Reply<v1::DealView>),
    List(v1::ListDealsRequest, Reply<v1::DealList>),
}

/// A signed deal on its way to a gateway.
pub(crate) struct Sending {
    pub gateway: GatewayClient<Channel>,
    pub gateway_name: String,
    pub deal: v1::SignedDeal,
}

pub(crate) enum Input {
    Block {
        network: NetworkId,
        height: u64,
        timestamp_ms: u64,
        events: Vec<EscrowEvent>,
    },
    Notice {
        network: NetworkId,
        notice: v1::DealNotice,
    },
    /// A notary's vote, with the rule it names when it aborts for one ("" if none).
    Vote(Vote, String),
    Command(Command),
    /// A proposal reached its gateway, or did not.
    Proposed {
        deal_id: DealId,
        gateway: String,
        result: Result<(), String>,
    },
    /// A registration reached its gateway, or did not.
    Registered {
        deal_id: DealId,
        gateway: String,
        result: Result<(), String>,
    },
}

/// What the operator last saw of a saga, to tell the next change as a step.
#[derive(Clone, Copy, PartialEq, Eq)]
struct Shown {
    own: LegStatus,
    counter: LegStatus,
    certificate: bool,
    outcome: Option<Outcome>,
}

struct Live {
    saga: Saga,
    saved: Vec<u8>,
    shown: Shown,
}

fn shown(saga: &Saga) -> Shown {
    Shown {
        own: saga.own_status(),
        counter: saga.counter_status(),
        certificate: saga.certificate().is_some(),
        outcome: saga.outcome(),
    }
}

/// Everything one input changed, written in one transaction before acting.
#[derive(Default)]
struct Changes {
    sagas: HashSet<DealId>,
    deals: HashSet<DealId>,
    steps: Vec<(DealId, u64, String)>,
    outputs: Vec<(DealId, Vec<SagaOutput>)>,
    early_events: Vec<(DealId, EscrowEvent)>,
    early_consumed: Vec<DealId>,
    /// Answers to the operator, sent once the changes are written.
    replies: Vec<Pending>,
}

enum Pending {
    View(DealId, Reply<v1::DealView>),
    Propose(DealId, Sending, Reply<(v1::DealView, Sending)>),
    Accept(DealId, Sending, Reply<(DealId, Sending)>),
}

impl Changes {
    fn step(&mut self, deal_id: DealId, at_ms: u64, text: String) {
        self.deals.insert(deal_id);
        self.steps.push((deal_id, at_ms, text));
    }
}

pub(crate) struct Engine {
    party: PartyEntry,
    key: PartyKey,
    directory: Arc<Directory>,
    gateways: HashMap<NetworkId, GatewayClient<Channel>>,
    notaries: Vec<NotaryClient<Channel>>,
    store: AgentStore,
    clock: fn() -> u64,
    auto_accept: bool,
    verbose: bool,
    evm: HashMap<NetworkId, EvmAccount>,
    deals: HashMap<DealId, AgentDeal>,
    live: HashMap<DealId, Live>,
    /// Steps of the deals looked at since start; the rest stay on disk.
    steps: HashMap<DealId, Vec<(u64, String)>>,
    inputs: mpsc::Sender<Input>,
    updates: broadcast::Sender<v1::DealView>,
    requests: Arc<Semaphore>,
    /// When unanswered proposals were last checked against their deadlines.
    proposals_checked_ms: u64,
    /// Chain events of this party's deals whose saga has not started yet: the
    /// counterparty may reserve before this agent hears the deal is agreed.
    early: HashMap<DealId, Vec<EscrowEvent>>,
    /// Notary requests in flight, by deal and notary.
    asking: Arc<std::sync::Mutex<HashSet<(DealId, usize)>>>,
}

fn locked<T>(mutex: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().expect("held only for an insert or a remove, which do not panic")
}

/// Most deals with early events kept at once.
const EARLY_DEALS_MAX: usize = 100_000;

/// How often unanswered proposals are checked against their deadlines.
const PROPOSALS_CHECK_MS: u64 = 1_000;

/// Starts the engine and the gateway followers; returns the engine's input
/// channel and the stream of deal views.
pub(crate) fn start(config: AgentConfig) -> Result<(mpsc::Sender<Input>, broadcast::Sender<v1::DealView>), AgentError> {
    let party = config.directory.party(&config.party).cloned().ok_or(AgentError::NotAParty(config.party.clone()))?;
    if party.key != config.key.public() {
        return Err(AgentError::WrongKey {
            party: party.name.clone(),
            listed: interlock_core::hash::to_hex(&party.key.0),
            found: interlock_core::hash::to_hex(&config.key.public().0),
        });
    }
    let (inputs, receiver) = mpsc::channel(INPUTS_BUFFER);
    let (updates, _) = broadcast::channel(UPDATES_BUFFER);
    let mut deals = HashMap::new();
    for deal in config.store.deals()? {
        deals.insert(deal.deal_id(), deal);
    }
    let mut live = HashMap::new();
    for saga in config.store.unfinished()? {
        let saved = saga.encode_record();
        live.insert(saga.deal_id(), Live { shown: shown(&saga), saga, saved });
    }
    for (network, gateway) in &config.gateways {
        let from_height = config.store.cursor(*network)? + 1;
        tokio::spawn(follow_blocks(gateway.clone(), *network, from_height, inputs.clone()));
        let from_seq = config.store.notice_cursor(*network)? + 1;
        tokio::spawn(follow_notices(gateway.clone(), *network, from_seq, inputs.clone()));
    }
    let mut early: HashMap<DealId, Vec<EscrowEvent>> = HashMap::new();
    for (deal_id, event) in config.store.early_events()? {
        early.entry(deal_id).or_default().push(event);
    }
    let engine = Engine {
        party,
        key: config.key,
        directory: config.directory,
        gateways: config.gateways,
        notaries: config.notaries,
        store: config.store,
        clock: config.clock,
        auto_accept: config.auto_accept,
        verbose: config.verbose,
        evm: config.evm,
        deals,
        live,
        steps: HashMap::new(),
        inputs: inputs.clone(),
        updates: updates.clone(),
        requests: Arc::new(Semaphore::new(REQUESTS_IN_FLIGHT)),
        proposals_checked_ms: 0,
        early,
        asking: Arc::default(),
    };
    if engine.verbose {
        println!("agent {}: resuming {} unfinished deals", engine.party.name, engine.live.len());
    }
    tokio::spawn(engine.run(receiver));
    Ok((inputs, updates))
}

fn leg_word(leg: LegKind) -> &'static str {
    match leg {
        LegKind::Payment => "payment",
        LegKind::Delivery => "delivery",
    }
}

fn status_word(status: LegStatus) -> &'static str {
    match status {
        LegStatus::Open => "open",
        LegStatus::Reserved => "reserved",
        LegStatus::Mismatched => "mismatched",
        LegStatus::Executed => "executed",
        LegStatus::Cancelled => "cancelled",
    }
}

/// The span of one deal's work at this party's agent: every line logged in
/// it carries the deal id.
fn deal_span(deal_id: DealId, party: &str) -> tracing::Span {
    tracing::info_span!("deal", deal_id = %deal_id, party = %party)
}

/// A unix-milliseconds time as people read it, in UTC.
pub(crate) fn time_text(at_ms: u64) -> String {
    let at = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(at_ms) * 1_000_000)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    format!("{:02}:{:02}:{:02}.{:03} UTC", at.hour(), at.minute(), at.second(), at.millisecond())
}

/// What a party is told when its deal times out.
fn timeout_text(notice: TimeoutNotice) -> String {
    match notice {
        TimeoutNotice::Refund { at_ms } => format!("timed out at {}; policy: refund", time_text(at_ms)),
        TimeoutNotice::Extended { at_ms, by_ms, to_ms } => format!(
            "timed out at {}; policy: extended once by {} s to {}",
            time_text(at_ms),
            by_ms.div_ceil(1_000),
            time_text(to_ms)
        ),
        TimeoutNotice::RefundAfterExtension { at_ms } => {
            format!("timed out again at {}, after the extension; policy: refund", time_text(at_ms))
        }
    }
}

/// The deal's policy in a line, for its view.
fn policy_text(policy: &interlock_core::Policy) -> String {
    let timeout = match policy.on_timeout {
        interlock_core::OnTimeout::Refund => "refund".to_owned(),
        interlock_core::OnTimeout::ExtendOnce { by_ms } => format!("extend once by {} s", by_ms.div_ceil(1_000)),
    };
    let assets = if policy.allowed_assets.is_empty() {
        "any".to_owned()
    } else {
        interlock_core::assets_text(&policy.allowed_assets)
    };
    let limit = |limit: Option<u128>| limit.map_or_else(|| "none".to_owned(), |max| max.to_string());
    format!(
        "on timeout: {timeout}; assets: {assets}; max per deal: {}; max per party per day: {}",
        limit(policy.amount_max),
        limit(policy.amount_max_per_day)
    )
}

fn role_word(role: Role) -> &'static str {
    match role {
        Role::Buyer => "buyer",
        Role::Seller => "seller",
    }
}

fn signature(bytes: &[u8]) -> Option<Option<Ed25519Signature>> {
    match bytes.len() {
        0 => Some(None),
        64 => Some(Some(Ed25519Signature(bytes.try_into().ok()?))),
        _ => None,
    }
}

fn signed_deal(terms: &DealTerms, signatures: &[Option<Ed25519Signature>; 2]) -> v1::SignedDeal {
    let bytes = |s: &Option<Ed25519Signature>| s.map(|s| s.0.to_vec()).unwrap_or_default();
    v1::SignedDeal {
        terms_encoded: encode_terms(terms),
        buyer_signature: bytes(&signatures[0]),
        seller_signature: bytes(&signatures[1]),
    }
}

fn role_index(role: Role) -> usize {
    match role {
        Role::Buyer => 0,
        Role::Seller => 1,
    }
}

impl Engine {
    async fn run(mut self, mut receiver: mpsc::Receiver<Input>) {
        self.resume_registrations();
        let mut ticker = tokio::time::interval(STEP_INTERVAL);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let first = tokio::select! {
                input = receiver.recv() => match input {
                    Some(input) => Some(input),
                    None => return,
                },
                _ = ticker.tick() => None,
            };
            // Whatever else is waiting joins this round: one write for all of it.
            let mut inputs = vec![first];
            while inputs.len() < BATCH_MAX {
                match receiver.try_recv() {
                    Ok(input) => inputs.push(Some(input)),
                    Err(_) => break,
                }
            }
            if let Err(error) = self.handle(inputs) {
                // Without its store the agent cannot keep its promise to persist
                // before acting: stop rather than act on unrecorded state.
                eprintln!("agent {}: stopping: {error}", self.party.name);
                std::process::exit(1);
            }
        }
    }

    fn say(&self, deal_id: DealId, text: &str) {
        if self.verbose {
            let _deal = deal_span(deal_id, &self.party.name).entered();
            tracing::info!("{text}");
        }
    }

    fn network_name(&self, network: NetworkId) -> String {
        self.directory.network(network).map_or_else(|| network.to_string(), |n| n.name.clone())
    }

    fn gateway_name(&self, network: NetworkId) -> String {
        self.directory.gateway_for(network).map_or_else(|| format!("the gateway of {network}"), |g| g.name.clone())
    }

    fn handle(&mut self, inputs: Vec<Option<Input>>) -> Result<(), AgentError> {
        let now = (self.clock)();
        let mut changes = Changes::default();
        let mut cursors = HashMap::new();
        let mut notice_cursors = HashMap::new();
        for input in inputs {
            self.absorb(input, now, &mut changes, &mut cursors, &mut notice_cursors);
        }
        self.settle(now, changes, cursors, notice_cursors)
    }

    /// Steps the sagas an input concerns, or all of them when time passed.
    fn absorb(
        &mut self,
        input: Option<Input>,
        now: u64,
        changes: &mut Changes,
        cursors: &mut HashMap<NetworkId, u64>,
        notice_cursors: &mut HashMap<NetworkId, u64>,
    ) {
        match input {
            Some(Input::Block { network, height, timestamp_ms, events }) => {
                for event in &events {
                    let deal_id = event.deal_id();
                    if let Some(live) = self.live.get_mut(&deal_id) {
                        changes.sagas.insert(deal_id);
                        changes.outputs.push((deal_id, live.saga.on_chain_event(now, event).outputs));
                    } else if self.is_early(event) {
                        self.early.entry(deal_id).or_default().push(event.clone());
                        changes.early_events.push((deal_id, event.clone()));
                    }
                }
                for (deal_id, live) in &mut self.live {
                    changes.outputs.push((*deal_id, live.saga.on_chain_time(now, network, timestamp_ms).outputs));
                }
                cursors.insert(network, height);
            }
            Some(Input::Vote(vote, reason)) => {
                if !reason.is_empty() {
                    self.tell_notice(vote.deal_id, now, reason, None, changes);
                }
                if let Some(live) = self.live.get_mut(&vote.deal_id) {
                    changes.sagas.insert(vote.deal_id);
                    changes.outputs.push((vote.deal_id, live.saga.on_vote(now, &vote).outputs));
                }
            }
            Some(Input::Notice { network, notice }) => {
                notice_cursors.insert(network, notice.seq);
                self.on_notice(notice, now, changes);
            }
            Some(Input::Command(command)) => self.on_command(command, now, changes),
            Some(Input::Proposed { deal_id, gateway, result }) => match result {
                Ok(()) => changes.step(deal_id, now, format!("proposal delivered to {gateway}")),
                Err(reason) => {
                    if let Some(deal) = self.deals.get_mut(&deal_id) {
                        if deal.state == DealState::Proposed {
                            deal.state = DealState::Withdrawn;
                        }
                    }
                    changes.step(deal_id, now, format!("withdrawn: the proposal did not reach {gateway}: {reason}"));
                }
            },
            Some(Input::Registered { deal_id, gateway, result }) => match result {
                Ok(()) => {
                    changes.step(deal_id, now, format!("registered at {gateway}"));
                    self.start_saga(deal_id, now, changes);
                }
                Err(reason) => changes.step(deal_id, now, format!("registration at {gateway} refused: {reason}")),
            },
            None => {
                for (deal_id, live) in &mut self.live {
                    changes.outputs.push((*deal_id, live.saga.step(now).outputs));
                }
                let live: Vec<DealId> = self.live.keys().copied().collect();
                self.check_timeouts(&live, now, changes);
                if now >= self.proposals_checked_ms + PROPOSALS_CHECK_MS {
                    self.proposals_checked_ms = now;
                    self.expire_proposals(now, changes);
                    self.count_states();
                }
            }
        }
    }

    /// Writes what the inputs changed, then acts on it and answers.
    fn settle(
        &mut self,
        now: u64,
        mut changes: Changes,
        cursors: HashMap<NetworkId, u64>,
        notice_cursors: HashMap<NetworkId, u64>,
    ) -> Result<(), AgentError> {
        changes.outputs.retain(|(_, outputs)| !outputs.is_empty());
        let asked: Vec<DealId> = changes.outputs.iter().map(|(deal_id, _)| *deal_id).collect();
        changes.sagas.extend(asked);
        self.tell(now, &mut changes);
        // Persist before acting on it.
        let sagas: Vec<DealId> = changes
            .sagas
            .iter()
            .copied()
            .filter(|deal_id| {
                self.live.get_mut(deal_id).is_some_and(|live| {
                    let record = live.saga.encode_record();
                    let changed = record != live.saved;
                    live.saved = record;
                    changed
                })
            })
            .collect();
        let write = AgentWrite {
            sagas: sagas.iter().filter_map(|id| self.live.get(id)).map(|live| &live.saga).collect(),
            deals: changes.deals.iter().filter_map(|id| self.deals.get(id)).collect(),
            steps: changes.steps.clone(),
            early_events: changes.early_events.iter().map(|(deal_id, event)| (*deal_id, event)).collect(),
            early_consumed: changes.early_consumed.clone(),
            cursors: cursors.into_iter().collect(),
            notice_cursors: notice_cursors.into_iter().collect(),
        };
        if !write.is_empty() {
            self.store.write(&write)?;
        }
        for (deal_id, at_ms, text) in &changes.steps {
            self.say(*deal_id, text);
            if let Some(steps) = self.steps.get_mut(deal_id) {
                steps.push((*at_ms, text.clone()));
            }
        }
        for pending in std::mem::take(&mut changes.replies) {
            match pending {
                Pending::View(deal_id, reply) => {
                    let _ = reply.send(self.view(deal_id));
                }
                Pending::Propose(deal_id, sending, reply) => {
                    let _ = reply.send(self.view(deal_id).map(|view| (view, sending)));
                }
                Pending::Accept(deal_id, sending, reply) => {
                    let _ = reply.send(Ok((deal_id, sending)));
                }
            }
        }
        for (deal_id, outputs) in std::mem::take(&mut changes.outputs) {
            self.act(deal_id, outputs)?;
        }
        if self.updates.receiver_count() > 0 {
            // Summaries only: a watcher of one deal looks up its steps.
            for deal_id in &changes.deals {
                if let Some(deal) = self.deals.get(deal_id) {
                    let _ = self.updates.send(self.summary(deal));
                }
            }
        }
        let ended: Vec<DealId> =
            self.live.iter().filter(|(_, live)| live.saga.outcome().is_some()).map(|(id, _)| *id).collect();
        for deal_id in ended {
            self.live.remove(&deal_id);
        }
        Ok(())
    }

    /// Publishes how many deals are in each state, and the engine's queues.
    fn count_states(&self) {
        let metrics = crate::metrics::metrics();
        let mut counts: HashMap<&'static str, usize> = HashMap::new();
        for deal in self.deals.values() {
            *counts.entry(deal.state.as_str()).or_default() += 1;
        }
        for state in ["proposed", "received", "withdrawn", "running", "completed", "refunded", "windfall", "lost"] {
            metrics.deals_in_state("agent", state, counts.get(state).copied().unwrap_or(0));
        }
        metrics.queue_length("agent", "inputs", INPUTS_BUFFER.saturating_sub(self.inputs.capacity()));
    }

    /// Records a notice for the party (once: the same notice from several
    /// notaries is told once) as the deal's notice and as a step.
    fn tell_notice(
        &mut self,
        deal_id: DealId,
        now: u64,
        text: String,
        timeouts_told: Option<u8>,
        changes: &mut Changes,
    ) {
        let Some(deal) = self.deals.get_mut(&deal_id) else { return };
        if deal.notice.text == text {
            return;
        }
        deal.notice.text = text.clone();
        if let Some(told) = timeouts_told {
            deal.notice.timeouts_told = told;
        }
        changes.step(deal_id, now, format!("notice: {text}"));
    }

    /// Tells the party of each deal among `deal_ids` that reached a deadline
    /// undecided, and what its policy does about it.
    fn check_timeouts(&mut self, deal_ids: &[DealId], now: u64, changes: &mut Changes) {
        for deal_id in deal_ids {
            let (Some(live), Some(deal)) = (self.live.get(deal_id), self.deals.get(deal_id)) else { continue };
            let Some(notice) = live.saga.timeout_notice(now, deal.notice.timeouts_told) else { continue };
            let text = timeout_text(notice);
            self.tell_notice(*deal_id, now, text, Some(notice.ordinal()), changes);
        }
    }

    /// Turns what changed in the sagas into steps and deal states.
    fn tell(&mut self, now: u64, changes: &mut Changes) {
        let touched: Vec<DealId> = changes.sagas.iter().copied().collect();
        self.check_timeouts(&touched, now, changes);
        for deal_id in touched {
            let Some(live) = self.live.get_mut(&deal_id) else { continue };
            let now_shown = shown(&live.saga);
            let before = std::mem::replace(&mut live.shown, now_shown);
            if before == now_shown {
                continue;
            }
            let role = live.saga.role();
            let terms = live.saga.terms().clone();
            let mut lines = Vec::new();
            for (leg, was, is) in
                [(role.own_leg(), before.own, now_shown.own), (role.counter_leg(), before.counter, now_shown.counter)]
            {
                if was != is {
                    let network = self.network_name(terms.leg(leg).network);
                    lines.push(format!("{} {} on {network}", leg_word(leg), status_word(is)));
                }
            }
            if now_shown.certificate && !before.certificate {
                lines.push("the notaries' certificate is assembled".to_owned());
            }
            if let (Some(outcome), None) = (now_shown.outcome, before.outcome) {
                if let Some(deal) = self.deals.get_mut(&deal_id) {
                    deal.state = DealState::Ended(outcome);
                    let metrics = crate::metrics::metrics();
                    metrics.deal_event("agent", deal.state.as_str());
                    let took = Duration::from_millis(now.saturating_sub(deal.created_ms));
                    metrics.step_took("agent", "proposal_to_end", took);
                }
                lines.push(format!("ended: {}", DealState::Ended(outcome).as_str()));
            }
            for line in lines {
                changes.step(deal_id, now, line);
            }
        }
    }

    fn act(&mut self, deal_id: DealId, outputs: Vec<SagaOutput>) -> Result<(), AgentError> {
        for output in outputs {
            match output {
                SagaOutput::Submit { network, op } => {
                    let what = match &op {
                        EscrowOp::Reserve(request) => format!("reserve {}", leg_word(request.leg)),
                        EscrowOp::Execute { .. } => "execute".to_owned(),
                        EscrowOp::Cancel { .. } => "cancel".to_owned(),
                    };
                    if let Some(account) = self.evm.get(&network).cloned() {
                        let Some(deal) = self.deals.get(&deal_id) else { continue };
                        let terms = deal.terms.clone();
                        self.say(deal_id, &format!("submits {what} on {}", self.network_name(network)));
                        let (permits, verbose, party) = (self.requests.clone(), self.verbose, self.party.name.clone());
                        tokio::spawn(async move {
                            let Ok(_permit) = permits.acquire_owned().await else { return };
                            // As on a ledger: the saga resubmits what does not land.
                            if let Err(error) = account.escrow.submit(account.address, &terms, &op).await {
                                if verbose {
                                    println!("deal={deal_id} party={party} {what} refused: {error}");
                                }
                            }
                        });
                        continue;
                    }
                    let Some(gateway) = self.gateways.get(&network).cloned() else {
                        self.say(deal_id, &format!("cannot {what}: no gateway for network {network}"));
                        continue;
                    };
                    let nonce = self.store.next_nonce(network)?;
                    let transaction = Transaction::sign(&self.key, network, nonce, Op::Escrow(op));
                    self.say(deal_id, &format!("submits {what} on {}", self.network_name(network)));
                    let request = v1::SubmitRequest { transaction_encoded: transaction.to_bytes() };
                    let (permits, verbose) = (self.requests.clone(), self.verbose);
                    let span = deal_span(deal_id, &self.party.name);
                    let submit = async move {
                        let Ok(_permit) = permits.acquire_owned().await else { return };
                        let mut gateway = gateway;
                        // The saga resubmits what does not land; a refusal is news, not a failure.
                        if let Err(status) = gateway.submit(request).await {
                            if verbose {
                                tracing::info!("{what} refused: {}", status.message());
                            }
                        }
                    };
                    tokio::spawn(tracing::Instrument::instrument(submit, span));
                }
                SagaOutput::AskNotaries => {
                    let Some(deal) = self.deals.get(&deal_id) else { continue };
                    let signed = signed_deal(&deal.terms, &deal.signatures);
                    let submission = v1::SubmitDealRequest {
                        terms_encoded: signed.terms_encoded,
                        buyer_signature: signed.buyer_signature,
                        seller_signature: signed.seller_signature,
                    };
                    for (index, notary) in self.notaries.iter().enumerate() {
                        // A notary holds an undecided request until it decides:
                        // one request per notary and deal at a time.
                        if !locked(&self.asking).insert((deal_id, index)) {
                            continue;
                        }
                        let (mut notary, submission) = (notary.clone(), submission.clone());
                        let (inputs, asking) = (self.inputs.clone(), self.asking.clone());
                        tokio::spawn(async move {
                            let answer = notary.submit_deal(submission).await;
                            locked(&asking).remove(&(deal_id, index));
                            let Ok(answer) = answer else { return };
                            if let Some(vote) = answer.into_inner().vote {
                                if let Some(decoded) = decode_vote(&vote) {
                                    let _ = inputs.send(Input::Vote(decoded, vote.reason)).await;
                                }
                            }
                        });
                    }
                }
                SagaOutput::Finished(_) => {}
            }
        }
        Ok(())
    }

    fn on_notice(&mut self, notice: v1::DealNotice, now: u64, changes: &mut Changes) {
        let Some(signed) = notice.deal else { return };
        let Ok(terms) = decode_terms(&signed.terms_encoded) else { return };
        let deal_id = terms.id();
        let me = self.key.public();
        let role = if terms.buyer == me {
            Role::Buyer
        } else if terms.seller == me {
            Role::Seller
        } else {
            return;
        };
        let (Some(buyer_signature), Some(seller_signature)) =
            (signature(&signed.buyer_signature), signature(&signed.seller_signature))
        else {
            return;
        };
        let signatures = [buyer_signature, seller_signature];
        // A notice this agent has acted on already (the same one comes from
        // both gateways, and its own proposals come back) needs no more work.
        let known = self.deals.get(&deal_id);
        let moot = match (notice.kind.as_str(), known.map(|deal| deal.state)) {
            ("proposed", Some(_)) => true,
            ("registered", Some(state)) => !matches!(state, DealState::Proposed | DealState::Received),
            _ => false,
        };
        if moot {
            return;
        }
        // Trust the gateway for nothing: check every signature it passed on,
        // but for one this agent made and kept itself.
        let kept = known.map_or([None, None], |deal| deal.signatures);
        for ((party, signature), kept) in [terms.buyer, terms.seller].into_iter().zip(&signatures).zip(kept) {
            if let Some(signature) = signature {
                if kept == Some(*signature) {
                    continue;
                }
                if verify_deal_signature(party, deal_id, signature).is_err() {
                    self.say(deal_id, "ignored a notice with a signature that does not verify");
                    return;
                }
            }
        }
        let mine = role_index(role);
        let counterparty = self.counterparty_name(&terms, role);
        match notice.kind.as_str() {
            "proposed" if !self.deals.contains_key(&deal_id) && signatures[mine].is_none() => {
                if let Err(error) = terms.validate() {
                    self.say(deal_id, &format!("ignored an invalid proposal from {counterparty}: {error}"));
                    return;
                }
                self.deals.insert(
                    deal_id,
                    AgentDeal {
                        terms: Arc::new(terms),
                        signatures,
                        role,
                        state: DealState::Received,
                        secret: None,
                        created_ms: now,
                        notice: Default::default(),
                    },
                );
                changes.step(deal_id, now, format!("received a proposal from {counterparty}"));
                if self.auto_accept {
                    match self.accept(deal_id, now, changes) {
                        Ok(sending) => self.register(deal_id, sending),
                        Err(status) => changes.step(deal_id, now, format!("not accepted: {}", status.message())),
                    }
                }
            }
            "registered" if signatures.iter().all(Option::is_some) => {
                let Some(deal) = self.deals.get_mut(&deal_id) else {
                    self.say(deal_id, "a registered deal this agent never signed nor received; ignored");
                    return;
                };
                match deal.state {
                    DealState::Proposed | DealState::Received => {
                        let text = match deal.state {
                            DealState::Proposed => format!("{counterparty} agreed; the deal is registered"),
                            _ => "the deal is registered".to_owned(),
                        };
                        deal.signatures = signatures;
                        changes.step(deal_id, now, text);
                        self.start_saga(deal_id, now, changes);
                    }
                    DealState::Withdrawn => changes.step(
                        deal_id,
                        now,
                        format!("{counterparty} registered the deal after it was withdrawn: this party takes no part, and whatever {counterparty} reserves refunds at expiry"),
                    ),
                    DealState::Running | DealState::Ended(_) => {}
                }
            }
            _ => {}
        }
    }

    /// A proposal nobody agreed to before its first deadline never will be in
    /// time: withdraw it, so it cannot start late.
    fn expire_proposals(&mut self, now: u64, changes: &mut Changes) {
        let expired: Vec<DealId> = self
            .deals
            .iter()
            .filter(|(_, deal)| matches!(deal.state, DealState::Proposed | DealState::Received))
            .filter(|(_, deal)| deal.terms.check_fresh(now).is_err())
            .map(|(deal_id, _)| *deal_id)
            .collect();
        for deal_id in expired {
            self.withdraw(deal_id, now, changes, "withdrawn: its deadline passed before both parties agreed");
        }
    }

    /// This party takes no part in the deal any more.
    fn withdraw(&mut self, deal_id: DealId, now: u64, changes: &mut Changes, why: &str) {
        if let Some(deal) = self.deals.get_mut(&deal_id) {
            deal.state = DealState::Withdrawn;
            changes.step(deal_id, now, why.to_owned());
        }
        if self.early.remove(&deal_id).is_some() {
            changes.early_consumed.push(deal_id);
        }
    }

    /// Whether a chain event with no running saga may matter to one that has
    /// not started yet: a reservation naming one of this party's accounts, or
    /// any later event of a deal this agent knows or kept events of.
    fn is_early(&self, event: &EscrowEvent) -> bool {
        let deal_id = event.deal_id();
        if self.early.contains_key(&deal_id) {
            return true;
        }
        if self.early.len() >= EARLY_DEALS_MAX {
            return false;
        }
        match self.deals.get(&deal_id).map(|deal| deal.state) {
            Some(DealState::Proposed | DealState::Received) => true,
            Some(_) => false,
            None => match event {
                EscrowEvent::Reserved(reservation) => self
                    .party
                    .accounts
                    .values()
                    .any(|account| *account == reservation.owner || *account == reservation.beneficiary),
                _ => false,
            },
        }
    }

    fn counterparty_name(&self, terms: &DealTerms, role: Role) -> String {
        let other = match role {
            Role::Buyer => terms.seller,
            Role::Seller => terms.buyer,
        };
        self.directory
            .parties
            .iter()
            .find(|p| p.key == other)
            .map_or_else(|| format!("party {}", &interlock_core::hash::to_hex(&other.0)[..12]), |p| p.name.clone())
    }

    /// Starts the saga of an agreed deal (once).
    fn start_saga(&mut self, deal_id: DealId, now: u64, changes: &mut Changes) {
        if self.live.contains_key(&deal_id) {
            return;
        }
        let Some(deal) = self.deals.get_mut(&deal_id) else { return };
        if !matches!(deal.state, DealState::Proposed | DealState::Received) {
            return;
        }
        match Saga::new(deal.role, deal.terms.clone(), deal.secret) {
            Ok(mut saga) => {
                deal.state = DealState::Running;
                let metrics = crate::metrics::metrics();
                metrics.deal_event("agent", "running");
                metrics.step_took(
                    "agent",
                    "proposal_to_running",
                    Duration::from_millis(now.saturating_sub(deal.created_ms)),
                );
                let mut outputs = saga.step(now).outputs;
                // What happened on chain before the saga existed.
                if let Some(events) = self.early.remove(&deal_id) {
                    for event in &events {
                        outputs.extend(saga.on_chain_event(now, event).outputs);
                    }
                    changes.early_consumed.push(deal_id);
                }
                let shown = shown(&saga);
                self.live.insert(deal_id, Live { saga, saved: Vec::new(), shown });
                changes.sagas.insert(deal_id);
                changes.outputs.push((deal_id, outputs));
                changes.step(deal_id, now, "running".to_owned());
            }
            Err(error) => changes.step(deal_id, now, format!("cannot run: {error}")),
        }
    }

    fn on_command(&mut self, command: Command, now: u64, changes: &mut Changes) {
        match command {
            Command::Propose(request, reply) => match self.propose(&request, now, changes) {
                Ok((deal_id, sending)) => changes.replies.push(Pending::Propose(deal_id, sending, reply)),
                Err(status) => {
                    let _ = reply.send(Err(status));
                }
            },
            Command::Accept(deal, reply) => {
                match self.resolve(&deal).and_then(|deal_id| Ok((deal_id, self.accept(deal_id, now, changes)?))) {
                    Ok((deal_id, sending)) => changes.replies.push(Pending::Accept(deal_id, sending, reply)),
                    Err(status) => {
                        let _ = reply.send(Err(status));
                    }
                }
            }
            Command::Cancel(deal, reply) => match self.resolve(&deal).and_then(|id| self.cancel(id, now, changes)) {
                Ok(deal_id) => changes.replies.push(Pending::View(deal_id, reply)),
                Err(status) => {
                    let _ = reply.send(Err(status));
                }
            },
            Command::Get(deal, reply) => {
                let _ = reply.send(self.resolve(&deal).and_then(|deal_id| self.view(deal_id)));
            }
            Command::List(request, reply) => {
                let _ = reply.send(self.list(&request));
            }
        }
    }

    fn home_gateway(&self, terms: &DealTerms, role: Role) -> Result<(GatewayClient<Channel>, String), Status> {
        let network = terms.leg(role.own_leg()).network;
        let client =
            self.gateways.get(&network).cloned().ok_or_else(|| {
                Status::failed_precondition(format!("this agent has no gateway for network {network}"))
            })?;
        Ok((client, self.gateway_name(network)))
    }

    fn propose(
        &mut self,
        request: &v1::ProposeDealRequest,
        now: u64,
        changes: &mut Changes,
    ) -> Result<(DealId, Sending), Status> {
        let is_buyer = match request.role.as_str() {
            "buyer" | "" => true,
            "seller" => false,
            other => return Err(Status::invalid_argument(format!("role {other:?}: expected buyer or seller"))),
        };
        let random = super::random_bytes().map_err(|error| Status::internal(format!("no randomness: {error}")))?;
        let nonce = u64::from_be_bytes(random[..8].try_into().expect("8 bytes"));
        let secret = Secret(Hash32::sha256(&[b"interlock/secret", &random]).0);
        let proposer = Proposer { entry: &self.party, is_buyer };
        let (terms, secret) = draft(&self.directory, proposer, request, now, nonce, secret)?;
        let role = if is_buyer { Role::Buyer } else { Role::Seller };
        let deal_id = terms.id();
        let mut signatures = [None, None];
        signatures[role_index(role)] = Some(self.key.sign_deal(deal_id));
        let (gateway, gateway_name) = self.home_gateway(&terms, role)?;
        let deal = signed_deal(&terms, &signatures);
        let counterparty = request.counterparty.clone();
        self.deals.insert(
            deal_id,
            AgentDeal {
                terms: Arc::new(terms),
                signatures,
                role,
                state: DealState::Proposed,
                secret,
                created_ms: now,
                notice: Default::default(),
            },
        );
        self.steps.insert(deal_id, Vec::new());
        changes.step(deal_id, now, format!("drafted for {counterparty} as {}", role_word(role)));
        Ok((deal_id, Sending { gateway, gateway_name, deal }))
    }

    /// Countersigns a received proposal.
    fn accept(&mut self, deal_id: DealId, now: u64, changes: &mut Changes) -> Result<Sending, Status> {
        let key = self.key.clone();
        let deal = self.deals.get_mut(&deal_id).ok_or_else(|| Status::not_found(format!("no deal {deal_id}")))?;
        if deal.state != DealState::Received {
            return Err(Status::failed_precondition(format!(
                "deal {deal_id} is {}: only a received proposal can be accepted",
                deal.state.as_str()
            )));
        }
        deal.terms
            .check_fresh(now)
            .map_err(|error| Status::failed_precondition(format!("too late to accept deal {deal_id}: {error}")))?;
        deal.signatures[role_index(deal.role)] = Some(key.sign_deal(deal_id));
        let (terms, role, signatures) = (deal.terms.clone(), deal.role, deal.signatures);
        let (gateway, gateway_name) = self.home_gateway(&terms, role)?;
        changes.step(deal_id, now, "accepted".to_owned());
        Ok(Sending { gateway, gateway_name, deal: signed_deal(&terms, &signatures) })
    }

    /// Deals this party countersigned whose registration a crash may have cut
    /// short: register them again (registration is idempotent).
    fn resume_registrations(&self) {
        for (deal_id, deal) in &self.deals {
            let signed = deal.signatures[role_index(deal.role)].is_some();
            if deal.state != DealState::Received || !signed {
                continue;
            }
            if let Ok((gateway, gateway_name)) = self.home_gateway(&deal.terms, deal.role) {
                let sending = Sending { gateway, gateway_name, deal: signed_deal(&deal.terms, &deal.signatures) };
                self.register(*deal_id, sending);
            }
        }
    }

    /// Registers an accepted deal in the background, retrying while the
    /// gateway is unreachable; the engine hears how it went.
    fn register(&self, deal_id: DealId, sending: Sending) {
        let inputs = self.inputs.clone();
        let until = self.deals.get(&deal_id).map_or_else(std::time::Instant::now, |deal| {
            // Worth trying until the deal's first deadline: after it, neither party starts.
            let left = match &deal.terms.settlement {
                interlock_core::Settlement::Hashlock { delivery_expiry_ms, .. } => *delivery_expiry_ms,
                interlock_core::Settlement::Notary { decision_deadline_ms, .. } => *decision_deadline_ms,
            };
            std::time::Instant::now() + Duration::from_millis(left.saturating_sub((self.clock)()))
        });
        tokio::spawn(async move {
            let result = register(sending.gateway, sending.deal, until).await;
            let _ = inputs.send(Input::Registered { deal_id, gateway: sending.gateway_name, result }).await;
        });
    }

    fn cancel(&mut self, deal_id: DealId, now: u64, changes: &mut Changes) -> Result<DealId, Status> {
        let deal = self.deals.get_mut(&deal_id).ok_or_else(|| Status::not_found(format!("no deal {deal_id}")))?;
        match deal.state {
            DealState::Proposed | DealState::Received => {
                self.withdraw(deal_id, now, changes, "withdrawn by this party");
                Ok(deal_id)
            }
            DealState::Running => Err(Status::failed_precondition(format!(
                "deal {deal_id} is running: its reservations may be on chain, so it cannot be withdrawn; it completes, or refunds by itself at its deadline ({} ms since the epoch)",
                deal.terms.last_deadline_ms()
            ))),
            state => Err(Status::failed_precondition(format!("deal {deal_id} is already {}", state.as_str()))),
        }
    }

    fn resolve(&self, text: &str) -> Result<DealId, Status> {
        let text = text.trim().to_ascii_lowercase();
        let text = text.strip_prefix("0x").unwrap_or(&text);
        if text.is_empty() || !text.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(Status::invalid_argument(format!(
                "deal {text:?}: expected a deal id in hex (64 digits) or a prefix of one"
            )));
        }
        if let Some(hash) = Hash32::from_hex(text) {
            let deal_id = DealId(hash);
            return if self.deals.contains_key(&deal_id) {
                Ok(deal_id)
            } else {
                Err(Status::not_found(format!("this agent has no deal {deal_id}")))
            };
        }
        let found: Vec<DealId> =
            self.deals.keys().filter(|id| id.0.to_hex().starts_with(text)).copied().take(2).collect();
        match found.as_slice() {
            [one] => Ok(*one),
            [] => Err(Status::not_found(format!("this agent has no deal starting with {text}"))),
            _ => Err(Status::invalid_argument(format!("more than one deal starts with {text}: give more digits"))),
        }
    }

    fn leg_text(&self, terms: &DealTerms, leg: LegKind) -> String {
        let leg = terms.leg(leg);
        let asset = match &leg.asset {
            Asset::Fungible { code, amount } => format!("{amount} {}", code.as_str()),
            Asset::Unique { class, item } => format!("{} {item:?}", class.as_str()),
        };
        format!("{asset} on {}", self.network_name(leg.network))
    }

    fn view(&mut self, deal_id: DealId) -> Result<v1::DealView, Status> {
        let deal = self.deals.get(&deal_id).ok_or_else(|| Status::not_found(format!("no deal {deal_id}")))?;
        if !self.steps.contains_key(&deal_id) {
            let steps =
                self.store.steps(deal_id).map_err(|error| Status::internal(format!("cannot read steps: {error}")))?;
            self.steps.insert(deal_id, steps);
        }
        let mut view = self.summary(deal);
        view.steps = self.steps[&deal_id]
            .iter()
            .map(|(at_ms, text)| v1::DealStep { at_ms: *at_ms, text: text.clone() })
            .collect();
        Ok(view)
    }

    fn summary(&self, deal: &AgentDeal) -> v1::DealView {
        let deal_id = deal.deal_id();
        let (own, counter) = match self.live.get(&deal_id) {
            Some(live) => (status_word(live.saga.own_status()), status_word(live.saga.counter_status())),
            None => match deal.state {
                DealState::Ended(Outcome::Completed) => ("executed", "executed"),
                DealState::Ended(Outcome::Refunded) => ("cancelled", "cancelled"),
                DealState::Ended(_) => ("ended", "ended"),
                _ => ("open", "open"),
            },
        };
        v1::DealView {
            deal_id: deal_id.to_string(),
            role: role_word(deal.role).to_owned(),
            counterparty: self.counterparty_name(&deal.terms, deal.role),
            mode: deal.terms.mode().to_string(),
            state: deal.state.as_str().to_owned(),
            payment: self.leg_text(&deal.terms, LegKind::Payment),
            delivery: self.leg_text(&deal.terms, LegKind::Delivery),
            own_leg: own.to_owned(),
            counter_leg: counter.to_owned(),
            deadline_ms: deal.terms.last_deadline_ms(),
            steps: Vec::new(),
            notice: deal.notice.text.clone(),
            policy: policy_text(&deal.terms.policy),
        }
    }

    fn list(&self, request: &v1::ListDealsRequest) -> Result<v1::DealList, Status> {
        if !request.state.is_empty() && DealState::parse(&request.state).is_none() {
            return Err(Status::invalid_argument(format!(
                "state {:?}: expected proposed, received, withdrawn, running, completed, refunded, windfall or lost",
                request.state
            )));
        }
        let limit = if request.limit == 0 { 100 } else { request.limit as usize };
        let mut deals: Vec<&AgentDeal> =
            self.deals.values().filter(|d| request.state.is_empty() || d.state.as_str() == request.state).collect();
        deals.sort_by_key(|d| std::cmp::Reverse((d.created_ms, d.deal_id())));
        Ok(v1::DealList { deals: deals.into_iter().take(limit).map(|d| self.summary(d)).collect() })
    }
}

/// Registers a deal at a gateway (registration is idempotent), trying again
/// while the gateway is unreachable or restarting, until `until` passes.
pub(crate) async fn register(
    mut gateway: GatewayClient<Channel>,
    deal: v1::SignedDeal,
    until: std::time::Instant,
) -> Result<(), String> {
    use tonic::Code;
    loop {
        match gateway.register_deal(deal.clone()).await {
            Ok(_) => return Ok(()),
            Err(status) => {
                let refused = matches!(
                    status.code(),
                    Code::InvalidArgument
                        | Code::Unauthenticated
                        | Code::PermissionDenied
                        | Code::FailedPrecondition
                        | Code::NotFound
                        | Code::OutOfRange
                        | Code::ResourceExhausted
                );
                if refused || std::time::Instant::now() >= until {
                    return Err(status.message().to_owned());
                }
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
        }
    }
}

fn decode_vote(vote: &v1::NotaryVote) -> Option<Vote> {
    let deal_id = DealId(Hash32(vote.deal_id.as_slice().try_into().ok()?));
    let decision = match vote.decision.as_str() {
        "commit" => interlock_core::Decision::Commit,
        "abort" => interlock_core::Decision::Abort,
        _ => return None,
    };
    let signature = interlock_core::crypto::RecoverableSignature(vote.signature.as_slice().try_into().ok()?);
    Some(Vote { deal_id, decision, signature })
}

/// Feeds every block of `network` from `from` on to the engine, reconnecting
/// after a broken stream.
async fn follow_blocks(
    gateway: GatewayClient<Channel>,
    network: NetworkId,
    mut from: u64,
    inputs: mpsc::Sender<Input>,
) {
    loop {
        let mut gateway = gateway.clone();
        if let Ok(response) = gateway.stream_blocks(v1::StreamBlocksRequest { from_height: from }).await {
            let mut stream = response.into_inner();
            while let Ok(Some(block)) = stream.message().await {
                let Some(header) = block.header else { continue };
                let events = block
                    .events
                    .iter()
                    .filter_map(|event| EscrowEvent::from_bytes(&event.event_encoded).ok())
                    .collect();
                let input = Input::Block { network, height: header.height, timestamp_ms: header.timestamp_ms, events };
                if inputs.send(input).await.is_err() {
                    return;
                }
                from = header.height + 1;
            }
        }
        tokio::time::sleep(RECONNECT_AFTER).await;
    }
}

/// Feeds the deal notices of one gateway to the engine, from `from` on.
async fn follow_notices(
    gateway: GatewayClient<Channel>,
    network: NetworkId,
    mut from: u64,
    inputs: mpsc::Sender<Input>,
) {
    loop {
        let mut gateway = gateway.clone();
        if let Ok(response) = gateway.watch_deals(v1::WatchDealsRequest { from_seq: from }).await {
            let mut stream = response.into_inner();
            while let Ok(Some(notice)) = stream.message().await {
                let seq = notice.seq;
                if inputs.send(Input::Notice { network, notice }).await.is_err() {
                    return;
                }
                from = seq + 1;
            }
        }
        tokio::time::sleep(RECONNECT_AFTER).await;
    }
}
