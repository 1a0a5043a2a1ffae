//! The agent's engine: the one task that owns the agent's deals, sagas and store.
//!
//! This module holds its state, its rounds (take the inputs waiting, step the
//! sagas they concern, write what changed in one transaction, then act and
//! answer) and what the sagas' changes tell the party. `notices` handles the
//! gateways' deal notices, `operator` the operator's commands and the deal
//! views, and `io` everything the engine sends and hears off its task.

mod funds;
mod housekeeping;
mod io;
mod notices;
use notices::timeout_text;
mod operator;
mod rollback;
#[cfg(test)]
mod tests;
mod verdicts;
mod words;
use words::{leg_word, status_word};

use crate::store::{AgentDeal, AgentStore, AgentWrite, DealState};
use interlock_core::crypto::{Ed25519Signature, PartyKey, Vote};
use interlock_core::saga::{LegStatus, Outcome, Role, Saga, SagaOutput};
use interlock_core::{DealId, DealTerms, EscrowEvent, LegKind, NetworkId};
use interlock_identity::{Directory, PartyEntry};
use interlock_proto::v1;
use interlock_proto::v1::gateway_client::GatewayClient;
use interlock_proto::v1::notary_client::NotaryClient;
use interlock_rpc::store::StoreError;
pub(crate) use io::register;
use io::{follow_blocks, follow_notices};
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
/// How long a withdrawn deal stays in the working set unless configured.
pub const WITHDRAWN_RETENTION_DEFAULT_MS: u64 = 600_000;
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
    /// A round on the blocking pool that never returned (it panicked).
    #[error("the engine's round did not finish: {0}")]
    Round(String),
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
    /// The party's own submitter on each network whose parties send to the
    /// chain themselves (its platform built it from the directory): escrow
    /// transactions for those networks go to the chain from it, not through
    /// the gateway.
    pub submitters: HashMap<NetworkId, Arc<dyn interlock_chain::Submitter>>,
    /// The account each network's gateway keeps deals with (its platform
    /// derives it from the directory): hashlock deals name the payment
    /// network's as the keeper of the seller's leg.
    pub keepers: HashMap<NetworkId, interlock_core::Address>,
    /// How fast each network's chain moves (its platform reads it from the
    /// directory): proposals whose deadlines leave too little room on these
    /// networks are refused, made or received.
    pub timings: HashMap<NetworkId, interlock_core::NetworkTiming>,
    /// How long a withdrawn deal stays in the agent's working set (its
    /// lists and metrics) before only its history keeps it.
    pub withdrawn_retention_ms: u64,
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
    /// Signs a dispute of a deal with an inspection period, for its notaries.
    Dispute(v1::DisputeDealRequest, Reply<Disputing>),
}

/// A signed dispute on its way to the deal's notaries.
pub(crate) struct Disputing {
    pub deal_id: DealId,
    pub dispute: interlock_core::verdict::Dispute,
    pub notaries: Vec<NotaryClient<Channel>>,
    /// How many of the deal's notaries must record it to stop a release (n - k + 1).
    pub needed: usize,
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
    /// A chain this party signs on reorganised back to height `to`.
    RolledBack {
        network: NetworkId,
        to: u64,
    },
    /// Where a leg stands on its chain, read again after a rollback.
    LegOnChain {
        network: NetworkId,
        deal_id: DealId,
        leg: LegKind,
        state: Result<Option<interlock_core::escrow::ReservationState>, String>,
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
    /// A proposal's payment was checked (`shortfall` says what is missing).
    Drafted {
        draft: Box<funds::Draft>,
        shortfall: Option<String>,
    },
    /// A received proposal's payment was checked before accepting it.
    Checked {
        deal_id: DealId,
        reply: Option<Reply<(DealId, Sending)>>,
        shortfall: Option<String>,
    },
    /// Why a reservation of this party's was refused or did not land.
    Refused {
        deal_id: DealId,
        text: String,
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
    submitters: HashMap<NetworkId, Arc<dyn interlock_chain::Submitter>>,
    keepers: HashMap<NetworkId, interlock_core::Address>,
    timings: HashMap<NetworkId, interlock_core::NetworkTiming>,
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
    withdrawn_retention_ms: u64,
    /// When each withdrawn deal of the working set was withdrawn (or, for
    /// one withdrawn before this start, when the agent started).
    withdrawn_at: HashMap<DealId, u64>,
    /// Withdrawn deals that left the working set: only the store keeps them,
    /// and notices of them are ignored.
    retired: HashSet<DealId>,
    /// The legs as each ended deal's saga last saw them.
    ended_legs: HashMap<DealId, (LegStatus, LegStatus)>,
    /// Legs still to read again on each network after a rollback.
    rechecking: HashMap<NetworkId, usize>,
    /// The reservation refusals each running deal has told, each once.
    refusals_told: HashMap<DealId, Vec<String>>,
    /// How often each running deal's reservation was submitted.
    reserve_attempts: HashMap<DealId, u8>,
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
    let now = (config.clock)();
    let (mut deals, mut withdrawn_at, mut retired) = (HashMap::new(), HashMap::new(), HashSet::new());
    for deal in config.store.deals()? {
        let deal_id = deal.deal_id();
        if deal.state == DealState::Withdrawn {
            if deal.created_ms.saturating_add(config.withdrawn_retention_ms) <= now {
                retired.insert(deal_id);
                continue;
            }
            withdrawn_at.insert(deal_id, now);
        }
        deals.insert(deal_id, deal);
    }
    let ended_legs = config.store.finished_legs()?.into_iter().map(|(id, own, counter)| (id, (own, counter))).collect();
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
        submitters: config.submitters,
        keepers: config.keepers,
        timings: config.timings,
        deals,
        live,
        steps: HashMap::new(),
        inputs: inputs.clone(),
        updates: updates.clone(),
        requests: Arc::new(Semaphore::new(REQUESTS_IN_FLIGHT)),
        proposals_checked_ms: 0,
        early,
        asking: Arc::default(),
        withdrawn_retention_ms: config.withdrawn_retention_ms,
        withdrawn_at,
        retired,
        ended_legs,
        rechecking: HashMap::new(),
        refusals_told: HashMap::new(),
        reserve_attempts: HashMap::new(),
    };
    if engine.verbose {
        println!("agent {}: resuming {} unfinished deals", engine.party.name, engine.live.len());
    }
    tokio::spawn(engine.run(receiver));
    Ok((inputs, updates))
}

/// The span of one deal's work at this party's agent: every line logged in
/// it carries the deal id.
fn deal_span(deal_id: DealId, party: &str) -> tracing::Span {
    tracing::info_span!("deal", deal_id = %deal_id, party = %party)
}

fn signature(bytes: &[u8]) -> Option<Option<Ed25519Signature>> {
    interlock_rpc::wire::optional_signature("signature", bytes).ok()
}

fn signed_deal(terms: &DealTerms, signatures: &[Option<Ed25519Signature>; 2]) -> v1::SignedDeal {
    interlock_rpc::wire::signed_deal(terms, signatures[0].as_ref(), signatures[1].as_ref())
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
            // The round runs on the blocking pool: its SQLite transaction
            // fsyncs, and a worker stalled on one stalls every task queued
            // behind it. The engine moves there and back, so rounds stay one
            // at a time and in order, each persisting before it acts.
            let round = tokio::task::spawn_blocking(move || {
                let handled = self.handle(inputs);
                (self, handled)
            });
            let handled = match round.await {
                Ok((engine, handled)) => {
                    self = engine;
                    handled
                }
                // The runtime is shutting down: the engine goes with it.
                Err(error) if error.is_cancelled() => return,
                Err(error) => {
                    let error = AgentError::Round(error.to_string());
                    eprintln!("agent: stopping: {error}");
                    std::process::exit(1);
                }
            };
            if let Err(error) = handled {
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
                // Each running saga takes the block's news in one step.
                let mut news: HashMap<DealId, Vec<&EscrowEvent>> = HashMap::new();
                for event in &events {
                    let deal_id = event.deal_id();
                    if self.live.contains_key(&deal_id) {
                        news.entry(deal_id).or_default().push(event);
                    } else if self.is_early(event) {
                        self.early.entry(deal_id).or_default().push(event.clone());
                        changes.early_events.push((deal_id, event.clone()));
                    } else {
                        self.on_verdict_event(event, now, changes);
                    }
                }
                changes.sagas.extend(news.keys().copied());
                for (deal_id, live) in &mut self.live {
                    let step = live.saga.take_news(
                        now,
                        news.remove(deal_id).unwrap_or_default(),
                        &[(network, timestamp_ms)],
                        [],
                    );
                    changes.outputs.push((*deal_id, step.outputs));
                }
                if !self.rechecking.contains_key(&network) {
                    cursors.insert(network, height);
                }
            }
            Some(Input::RolledBack { network, to }) => self.on_rolled_back(network, to, now, changes),
            Some(Input::LegOnChain { network, deal_id, leg, state }) => {
                self.on_leg_on_chain((network, deal_id, leg), state, now, changes)
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
                    let proposed = self.deals.get(&deal_id).is_some_and(|deal| deal.state == DealState::Proposed);
                    let why = format!("withdrawn: the proposal did not reach {gateway}: {reason}");
                    if proposed {
                        self.withdraw(deal_id, now, changes, &why);
                    } else {
                        changes.step(deal_id, now, why);
                    }
                }
            },
            Some(Input::Registered { deal_id, gateway, result }) => match result {
                Ok(()) => {
                    changes.step(deal_id, now, format!("registered at {gateway}"));
                    self.start_saga(deal_id, now, changes);
                }
                Err(reason) => changes.step(deal_id, now, format!("registration at {gateway} refused: {reason}")),
            },
            Some(Input::Drafted { draft, shortfall }) => self.on_drafted(*draft, shortfall, now, changes),
            Some(Input::Checked { deal_id, reply, shortfall }) => {
                self.on_checked(deal_id, reply, shortfall, now, changes)
            }
            Some(Input::Refused { deal_id, text }) => self.on_refused(deal_id, text, now, changes),
            None => {
                for (deal_id, live) in &mut self.live {
                    changes.outputs.push((*deal_id, live.saga.step(now).outputs));
                }
                let live: Vec<DealId> = self.live.keys().copied().collect();
                self.check_timeouts(&live, now, changes);
                if now >= self.proposals_checked_ms + PROPOSALS_CHECK_MS {
                    self.proposals_checked_ms = now;
                    self.expire_proposals(now, changes);
                    self.retire_withdrawn(now);
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
            if let Some(live) = self.live.remove(&deal_id) {
                self.ended_legs.insert(deal_id, (live.saga.own_status(), live.saga.counter_status()));
            }
            self.refusals_told.remove(&deal_id);
            self.reserve_attempts.remove(&deal_id);
        }
        Ok(())
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
            // A new outcome: the first, or another after a rollback.
            if let Some(outcome) = now_shown.outcome.filter(|_| now_shown.outcome != before.outcome) {
                if let Some(deal) = self.deals.get_mut(&deal_id) {
                    deal.state = DealState::Ended(outcome);
                    let metrics = interlock_rpc::metrics::metrics();
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
                let metrics = interlock_rpc::metrics::metrics();
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
}
