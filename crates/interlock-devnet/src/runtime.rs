//! The in-process runtime: two embedded ledgers, a buyer, a seller and their
//! notaries in one process, driven by the wall clock. The demo and `bench core`
//! run deals through it.
//!
//! Work proceeds in rounds. Each round (1) steps every deal that has news or a
//! due wake-up, in parallel across cores, because deals are independent; (2)
//! numbers, signs and submits the transactions the sagas asked for, signing in
//! parallel; (3) produces a block on each ledger (each ledger verifies its
//! block's signatures on all cores and commits the block to SQLite); (4) routes
//! the blocks' events back to their deals.
//!
//! One network may instead be an external chain ([`ExternalSide`]), reached
//! through the platform seam: its submissions go to each party's
//! [`Submitter`] as concurrent tasks, and each round polls its [`Follower`]
//! and routes the final blocks' events like a ledger block's.

use interlock_chain::{ChainError, ChainEvent, Follower, LocalNotaries, Receipt, SpendDigest, Submitter};
use interlock_core::crypto::{verify_deal_signature, Ed25519Signature, NotaryKey, PartyKey, PublicKey};
use interlock_core::notary::{NotaryDeal, NotaryOutput};
use interlock_core::saga::{Outcome, Role, Saga, SagaOutput};
use interlock_core::{DealId, DealTerms, EscrowOp, NetworkId, Secret, Vote};
use interlock_ledger::{Ledger, LedgerEvent, Op, Store, Transaction};
use std::collections::HashMap;
use std::sync::Arc;

/// Something worth telling the person watching.
// Progress is shown and dropped within a round; nearly all of it is events.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug)]
pub enum Progress {
    Event(LedgerEvent),
    Decided { deal_id: DealId, notary: usize, decision: interlock_core::Decision },
    Finished { role: Role, outcome: Outcome },
}

struct DealRun {
    deal_id: DealId,
    terms: Arc<DealTerms>,
    buyer_signature: Ed25519Signature,
    seller_signature: Ed25519Signature,
    buyer: Saga,
    seller: Saga,
    /// One decider per notary of the deal (notary mode), with its persisted decision.
    notaries: Vec<Option<NotaryDeal>>,
    /// Each notary's signed vote, once it decided.
    votes: Vec<Option<Vote>>,
    events: Vec<LedgerEvent>,
    wake_at_ms: Option<u64>,
    agreed: bool,
}

/// What stepping one deal produced.
#[derive(Default)]
struct DealOutput {
    submits: Vec<(Role, NetworkId, EscrowOp, Arc<DealTerms>)>,
    progress: Vec<Progress>,
}

pub struct Runtime<S: Store> {
    pub ledgers: Vec<Ledger<S>>,
    buyer: PartyKey,
    seller: PartyKey,
    notaries: Arc<Vec<NotaryKey>>,
    /// Boxed: growing the list moves pointers, and leaves no room for
    /// hundreds of bytes per deal unused (`bench core`'s memory figure).
    #[allow(clippy::vec_box)]
    deals: Vec<Box<DealRun>>,
    index: HashMap<DealId, usize>,
    nonces: HashMap<(Role, NetworkId), u64>,
    /// Time up to which every network's blocks were produced and routed.
    chain_time_ms: u64,
    /// Report no chain events from `round` (benchmarks: nobody reads them).
    quiet: bool,
    external: Option<ExternalSide>,
    /// Where the notaries' decisions are also recorded for an external
    /// chain's spends (its escrow takes their signatures over each spend).
    spend_signers: Option<Arc<LocalNotaries>>,
}

/// An external network in the runtime, behind the platform seam: each party's
/// submitter there and a follower of its escrow.
pub struct ExternalSide {
    buyer: Arc<dyn Submitter>,
    seller: Arc<dyn Submitter>,
    follower: Box<dyn Follower>,
    pub tokio: tokio::runtime::Runtime,
    in_flight: tokio::task::JoinSet<Result<Receipt, ChainError>>,
    /// The newest final block's time: every event up to it was routed.
    chain_time_ms: u64,
}

impl ExternalSide {
    /// The parties' submitters and the follower must all be of one network;
    /// `tokio` runs their futures.
    pub fn new(
        buyer: Arc<dyn Submitter>,
        seller: Arc<dyn Submitter>,
        follower: Box<dyn Follower>,
        tokio: tokio::runtime::Runtime,
    ) -> ExternalSide {
        let network = follower.network();
        assert!(buyer.network() == network && seller.network() == network, "one external network");
        ExternalSide { buyer, seller, follower, tokio, in_flight: tokio::task::JoinSet::new(), chain_time_ms: 0 }
    }

    pub fn network(&self) -> NetworkId {
        self.follower.network()
    }

    fn submit(&mut self, role: Role, op: EscrowOp, terms: Arc<DealTerms>) {
        let submitter = if role == Role::Buyer { self.buyer.clone() } else { self.seller.clone() };
        let _guard = self.tokio.enter();
        self.in_flight.spawn(async move { submitter.submit(&terms, &op).await });
    }

    /// Collects finished submissions (a refusal is news, not an error: the saga
    /// resubmits what did not land) and reads the blocks final since the last poll.
    fn follow(&mut self) -> anyhow::Result<Vec<LedgerEvent>> {
        while let Some(done) = self.in_flight.try_join_next() {
            if let Ok(Err(error)) = done {
                if std::env::var_os("INTERLOCK_DEBUG").is_some() {
                    eprintln!("refused on {}: {error}", self.network());
                }
            }
        }
        let network = self.network();
        let mut routed = Vec::new();
        for polled in self.tokio.block_on(self.follower.poll())? {
            let block = match polled {
                ChainEvent::Block(block) => block,
                // The runtime routed those events already and cannot take them back.
                ChainEvent::RolledBack { to } => {
                    anyhow::bail!("{network} reorganised below its confirmation depth, back to block {}", to.height)
                }
            };
            self.chain_time_ms = self.chain_time_ms.max(block.time_ms);
            routed.extend(block.events.into_iter().map(|followed| LedgerEvent {
                network,
                height: block.cursor.height,
                transaction: followed.transaction,
                event: followed.event,
            }));
        }
        Ok(routed)
    }
}

/// How many deals the runtime adds, or steps and submits for, at a time.
const SLICE: usize = 4_096;

fn threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// Runs `work` over `items` split across all cores.
fn parallel<T: Send, R: Send>(items: &mut [T], work: impl Fn(&mut T) -> R + Sync) -> Vec<R> {
    if items.len() < 64 || threads() == 1 {
        return items.iter_mut().map(work).collect();
    }
    let chunk = items.len().div_ceil(threads());
    let work = &work;
    std::thread::scope(|scope| {
        let handles: Vec<_> = items
            .chunks_mut(chunk)
            .map(|part| scope.spawn(move || part.iter_mut().map(work).collect::<Vec<_>>()))
            .collect();
        handles.into_iter().flat_map(|h| h.join().expect("deal steps do not panic")).collect()
    })
}

impl<S: Store + Send> Runtime<S> {
    pub fn new(ledgers: Vec<Ledger<S>>, buyer: PartyKey, seller: PartyKey, notaries: Vec<NotaryKey>) -> Runtime<S> {
        let nonces = ledgers
            .iter()
            .flat_map(|l| {
                [
                    (Role::Buyer, l.network(), l.nonce(buyer.public())),
                    (Role::Seller, l.network(), l.nonce(seller.public())),
                ]
            })
            .map(|(role, network, nonce)| ((role, network), nonce))
            .collect();
        Runtime {
            ledgers,
            buyer,
            seller,
            notaries: Arc::new(notaries),
            deals: Vec::new(),
            index: HashMap::new(),
            nonces,
            chain_time_ms: 0,
            quiet: false,
            external: None,
            spend_signers: None,
        }
    }

    /// The runtime's notaries as an external chain's spends reach them: they
    /// sign the spend `digest` gives for a leg only for the decision they
    /// recorded on its deal. Hand the result to the chain's submitters.
    pub fn spend_signers(&mut self, digest: SpendDigest) -> Arc<LocalNotaries> {
        let signers = Arc::new(LocalNotaries::new(self.notaries.to_vec(), digest));
        self.spend_signers = Some(signers.clone());
        signers
    }

    /// The runtime's notary keys, in the order deals name them.
    pub fn notary_keys(&self) -> &[NotaryKey] {
        &self.notaries
    }

    /// Makes one network an external chain: its legs go through `external`.
    pub fn with_external(mut self, external: ExternalSide) -> Runtime<S> {
        self.external = Some(external);
        self
    }

    pub fn external(&self) -> Option<&ExternalSide> {
        self.external.as_ref()
    }

    /// Stops `round` from reporting chain events, which only a watching person needs.
    pub fn quiet(&mut self) {
        self.quiet = true;
    }

    pub fn buyer(&self) -> &PartyKey {
        &self.buyer
    }
    pub fn seller(&self) -> &PartyKey {
        &self.seller
    }
    pub fn notary_addresses(&self) -> Vec<interlock_core::NotaryAddress> {
        self.notaries.iter().map(NotaryKey::address).collect()
    }

    /// Sends `op` on `network` signed by the buyer, whose account is there
    /// (a verdict may be presented by anyone); it lands with the next round.
    pub fn submit_escrow(&mut self, network: NetworkId, op: EscrowOp) -> anyhow::Result<()> {
        let nonce = self.nonces.entry((Role::Buyer, network)).or_insert(0);
        *nonce += 1;
        let tx = Transaction::sign(&self.buyer, network, *nonce, Op::Escrow(op));
        let ledger = self
            .ledgers
            .iter_mut()
            .find(|l| l.network() == network)
            .ok_or_else(|| anyhow::anyhow!("no ledger {network}"))?;
        ledger.submit(tx)?;
        Ok(())
    }

    /// Both parties sign `terms`; the deal starts on the next round. A seller
    /// that `withholds` agrees but never reserves.
    pub fn add_deal(&mut self, terms: DealTerms, secret: Option<Secret>, withholds: bool) -> anyhow::Result<DealId> {
        let ids = self.add_deals(vec![(terms, secret, withholds)])?;
        Ok(ids[0])
    }

    /// [`Runtime::add_deal`] for many deals, signing them on all cores, a
    /// slice at a time (what waits to be added is held once, not twice).
    pub fn add_deals(&mut self, deals: Vec<(DealTerms, Option<Secret>, bool)>) -> anyhow::Result<Vec<DealId>> {
        self.deals.reserve(deals.len());
        self.index.reserve(deals.len());
        let mut ids = Vec::with_capacity(deals.len());
        let mut deals = deals.into_iter();
        loop {
            let slice: Vec<_> = deals.by_ref().take(SLICE).map(Some).collect();
            if slice.is_empty() {
                return Ok(ids);
            }
            ids.extend(self.add_slice(slice)?);
        }
    }

    fn add_slice(
        &mut self,
        mut requests: Vec<Option<(DealTerms, Option<Secret>, bool)>>,
    ) -> anyhow::Result<Vec<DealId>> {
        let (buyer_key, seller_key) = (&self.buyer, &self.seller);
        let runs = parallel(&mut requests, |request| {
            let (terms, secret, withholds) = request.take().expect("each request is taken once");
            let terms = Arc::new(terms);
            let deal_id = terms.id();
            let buyer = Saga::new(Role::Buyer, terms.clone(), secret)?;
            let mut seller = Saga::new(Role::Seller, terms.clone(), None)?;
            if withholds {
                seller.withhold();
            }
            let notary_count = match &terms.settlement {
                interlock_core::Settlement::Notary { notaries, .. } => notaries.len(),
                interlock_core::Settlement::Hashlock { .. } => 0,
            };
            Ok::<_, anyhow::Error>(Box::new(DealRun {
                deal_id,
                buyer_signature: buyer_key.sign_deal(deal_id),
                seller_signature: seller_key.sign_deal(deal_id),
                terms,
                buyer,
                seller,
                notaries: vec![None; notary_count],
                votes: vec![None; notary_count],
                events: Vec::new(),
                wake_at_ms: Some(0),
                agreed: false,
            }))
        });
        let mut ids = Vec::with_capacity(runs.len());
        for run in runs {
            let run = run?;
            if let Some(external) = self.external.as_mut() {
                external.follower.watch(&run.terms)?;
            }
            ids.push(run.deal_id);
            self.index.insert(run.deal_id, self.deals.len());
            self.deals.push(run);
        }
        Ok(ids)
    }

    pub fn outcome(&self, deal_id: DealId) -> Option<(Option<Outcome>, Option<Outcome>)> {
        let run = &self.deals[*self.index.get(&deal_id)?];
        Some((run.buyer.outcome(), run.seller.outcome()))
    }

    pub fn all_finished(&self) -> bool {
        self.deals.iter().all(|run| run.buyer.outcome().is_some() && run.seller.outcome().is_some())
    }

    pub fn finished_count(&self) -> usize {
        self.deals.iter().filter(|run| run.buyer.outcome().is_some() && run.seller.outcome().is_some()).count()
    }

    /// One round at `now_ms`. Returns what happened, for display.
    pub fn round(&mut self, now_ms: u64) -> anyhow::Result<Vec<Progress>> {
        let mut networks: Vec<(NetworkId, u64)> =
            self.ledgers.iter().map(|ledger| (ledger.network(), self.chain_time_ms)).collect();
        if let Some(external) = &self.external {
            networks.push((external.network(), external.chain_time_ms));
        }
        // The deals are stepped and their transactions signed and submitted
        // a slice at a time: what a step asks for is held only until it is
        // in the mempool, not for every deal at once.
        let mut progress = Vec::new();
        for start in (0..self.deals.len()).step_by(SLICE) {
            self.step_slice(start, &networks, now_ms, &mut progress)?;
        }
        let blocks: Vec<_> = parallel(&mut self.ledgers, |ledger| ledger.produce_block(now_ms));
        self.route(now_ms, blocks, &mut progress)?;
        Ok(progress)
    }

    /// Steps the deals from `start` (a slice of them), and signs and submits
    /// the transactions they ask for.
    fn step_slice(
        &mut self,
        start: usize,
        networks: &[(NetworkId, u64)],
        now_ms: u64,
        progress: &mut Vec<Progress>,
    ) -> anyhow::Result<()> {
        let notaries = self.notaries.clone();
        let parties = [self.buyer.public_key(), self.seller.public_key()];
        let end = (start + SLICE).min(self.deals.len());
        let outputs =
            parallel(&mut self.deals[start..end], |run| step_deal(run, &notaries, &parties, networks, now_ms));
        let mut unsigned = Vec::new();
        for output in outputs {
            if let Some(signers) = &self.spend_signers {
                for decided in &output.progress {
                    if let Progress::Decided { deal_id, notary, decision } = decided {
                        signers.record(*deal_id, *notary, *decision);
                    }
                }
            }
            progress.extend(output.progress);
            for (role, network, op, terms) in output.submits {
                if let Some(external) = self.external.as_mut().filter(|external| external.network() == network) {
                    external.submit(role, op, terms);
                    continue;
                }
                let nonce = self.nonces.entry((role, network)).or_insert(0);
                *nonce += 1;
                unsigned.push((role, network, *nonce, op));
            }
        }
        let (buyer, seller) = (&self.buyer, &self.seller);
        let signed: Vec<Transaction> = parallel(&mut unsigned, |(role, network, nonce, op)| {
            let key = if *role == Role::Buyer { buyer } else { seller };
            Transaction::sign(key, *network, *nonce, Op::Escrow(op.clone()))
        });
        drop(unsigned);
        for tx in signed {
            let ledger = self.ledgers.iter_mut().find(|l| l.network() == tx.network).expect("deal networks exist");
            ledger.submit(tx)?;
        }
        Ok(())
    }

    /// The ledgers' blocks of this round, and the external chain's, their
    /// events handed to their deals.
    fn route(
        &mut self,
        now_ms: u64,
        blocks: Vec<Result<Option<interlock_ledger::BlockOutcome>, interlock_ledger::LedgerError>>,
        progress: &mut Vec<Progress>,
    ) -> anyhow::Result<()> {
        if self.ledgers.iter().all(|ledger| ledger.mempool_len() == 0) {
            self.chain_time_ms = now_ms;
        }
        let mut routed = Vec::new();
        for block in blocks {
            let Some(block) = block? else { continue };
            for rejection in &block.rejected {
                // A saga resubmits what did not land; a refusal is news, not an error.
                report_rejection(rejection);
            }
            routed.extend(block.events);
        }
        if let Some(external) = self.external.as_mut() {
            routed.extend(external.follow()?);
        }
        {
            for event in routed {
                let Some(&index) = self.index.get(&event.event.deal_id()) else {
                    if !self.quiet {
                        progress.push(Progress::Event(event));
                    }
                    continue;
                };
                let events = &mut self.deals[index].events;
                if events.capacity() == 0 {
                    // A round brings a deal one event per leg at most: room
                    // for two, not the four a first push would make.
                    events.reserve_exact(2);
                }
                if self.quiet {
                    events.push(event);
                } else {
                    events.push(event.clone());
                    progress.push(Progress::Event(event));
                }
            }
        }
        Ok(())
    }
}

fn report_rejection(rejection: &interlock_ledger::Rejection) {
    if std::env::var_os("INTERLOCK_DEBUG").is_some() {
        eprintln!("refused {}: {}", rejection.transaction, rejection.error);
    }
}

/// Steps one deal: agreement checks, chain events, notary decisions and votes,
/// wake-ups. Pure computation; safe to run on any thread.
fn step_deal(
    run: &mut DealRun,
    notary_keys: &[NotaryKey],
    parties: &[PublicKey],
    networks: &[(NetworkId, u64)],
    now_ms: u64,
) -> DealOutput {
    let mut output = DealOutput::default();
    let events = std::mem::take(&mut run.events);
    let due = run.wake_at_ms.is_some_and(|at| now_ms >= at);
    if events.is_empty() && !due {
        return output;
    }
    if !run.agreed {
        // Each party checks the other's signature before it acts on the terms.
        let terms = &run.terms;
        let check = |party, signature| match parties.iter().find(|key| key.party() == party) {
            Some(key) => key.verify_deal(run.deal_id, signature).is_ok(),
            None => verify_deal_signature(party, run.deal_id, signature).is_ok(),
        };
        let ok = check(terms.seller, &run.seller_signature) && check(terms.buyer, &run.buyer_signature);
        assert!(ok, "the runtime signs its own deals");
        run.agreed = true;
    }
    // The runtime is every embedded ledger's sequencer: after a round it has
    // applied all it was given, and later blocks are stamped later. So its last
    // round's time is each ledger's time as far as any saga could learn. An
    // external network's time is its newest final block's.
    let chain_events = || events.iter().map(|event| &event.event);
    let mut steps = vec![
        (Role::Buyer, run.buyer.take_news(now_ms, chain_events(), networks, [])),
        (Role::Seller, run.seller.take_news(now_ms, chain_events(), networks, [])),
    ];
    let mut new_votes = Vec::new();
    for event in &events {
        for (index, key) in notary_keys.iter().enumerate().take(run.notaries.len()) {
            if let Some(notary) = run.notaries[index].as_mut() {
                let decided = notary.observe(now_ms, &event.event, &interlock_core::policy::Unrestricted);
                record(run, index, decided, key, &mut new_votes, &mut output);
            }
        }
    }
    for (index, key) in notary_keys.iter().enumerate().take(run.notaries.len()) {
        if let Some(notary) = run.notaries[index].as_mut() {
            let decided = notary.tick(now_ms, &interlock_core::policy::Unrestricted);
            record(run, index, decided, key, &mut new_votes, &mut output);
        }
    }
    let mut wake: Option<u64> = None;
    loop {
        for (role, step) in steps.drain(..) {
            if let Some(at) = step.wake_at_ms {
                wake = Some(wake.map_or(at, |w| w.min(at)));
            }
            for out in step.outputs {
                match out {
                    SagaOutput::Submit { network, op } => output.submits.push((role, network, op, run.terms.clone())),
                    SagaOutput::Finished(outcome) => output.progress.push(Progress::Finished { role, outcome }),
                    SagaOutput::AskNotaries => ask_notaries(run, notary_keys, now_ms, &mut new_votes, &mut output),
                }
            }
        }
        if new_votes.is_empty() {
            break;
        }
        steps.push((Role::Buyer, run.buyer.take_news(now_ms, [], &[], &new_votes)));
        steps.push((Role::Seller, run.seller.take_news(now_ms, [], &[], &new_votes)));
        new_votes.clear();
    }
    for notary in run.notaries.iter().flatten() {
        if let Some(at) = notary.wake_at_ms() {
            wake = Some(wake.map_or(at, |w| w.min(at)));
        }
    }
    run.wake_at_ms = wake;
    output
}

/// The parties hand the signed deal to every notary: a notary that has not seen
/// it accepts it (checking both signatures); one that decided answers with its
/// vote again.
fn ask_notaries(
    run: &mut DealRun,
    notary_keys: &[NotaryKey],
    now_ms: u64,
    new_votes: &mut Vec<Vote>,
    output: &mut DealOutput,
) {
    for (index, key) in notary_keys.iter().enumerate().take(run.notaries.len()) {
        if let Some(vote) = run.votes[index] {
            new_votes.push(vote);
            continue;
        }
        if run.notaries[index].is_some() {
            continue;
        }
        let accepted =
            NotaryDeal::accept_shared(key, run.terms.clone(), &run.buyer_signature, &run.seller_signature, now_ms);
        if let Ok((notary, decided)) = accepted {
            run.notaries[index] = Some(notary);
            record(run, index, decided, key, new_votes, output);
        }
    }
}

/// Records a notary's decision (in memory: the in-process notaries live as long
/// as the run) and keeps the vote it then signs.
fn record(
    run: &mut DealRun,
    index: usize,
    outputs: Vec<NotaryOutput>,
    key: &NotaryKey,
    new_votes: &mut Vec<Vote>,
    output: &mut DealOutput,
) {
    for out in outputs {
        if let NotaryOutput::Record { decision, .. } = out {
            let notary = run.notaries[index].as_mut().expect("a deciding notary exists");
            for signed in notary.recorded(key) {
                if let NotaryOutput::Vote(vote) = signed {
                    run.votes[index] = Some(vote);
                    new_votes.push(vote);
                }
            }
            output.progress.push(Progress::Decided { deal_id: run.deal_id, notary: index, decision });
        }
    }
}
