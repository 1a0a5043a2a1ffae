//! The simulated world: two networks, a buyer, a seller, notaries, a keeper per
//! network and an adversary, connected by a lossy network, all under one seeded
//! clock. Every participant runs the real core and ledger code; only time, the
//! network and the disks are simulated.

mod adversary;
mod draw;
mod faults;
mod fees;
mod inspection;
mod ledgers;
mod network;
mod notaries;
mod parties;
mod races;
mod relay;
mod reorg;

pub use faults::Faults;
pub use fees::{ScriptFees, Spike};
pub use ledgers::{DepthSemantics, ScriptSemantics};
pub use relay::Relay;

use crate::checker::Checker;
use crate::rng::Rng;
use interlock_core::crypto::{Decision, PartyKey, Token};
use interlock_core::notary::SignedDeal;
use interlock_core::saga::Outcome;
use interlock_core::{reservation_id, Address, DealId, DealTerms, LegKind, NetworkId, ReservationState, Settlement};
use interlock_ledger::{Ledger, MemoryStore};
use ledgers::LedgerNode;
use network::Message;
use notaries::NotaryNode;
use parties::PartyNode;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

pub const T0_MS: u64 = 1_000_000_000;
pub const NETWORKS: [NetworkId; 2] = [NetworkId(1), NetworkId(2)];
/// Simulated time after the last deadline by which every deal must have ended.
pub const LIVENESS_SLACK_MS: u64 = 30_000;
/// Most steps one seed may take.
pub const STEPS_MAX: usize = 40_000;

pub struct DealInfo {
    pub terms: Arc<DealTerms>,
    pub signed: Arc<SignedDeal>,
    /// Hashlock: the seller's side (the seller and the payment network) was never
    /// up for [`SELLER_FAIR_WINDOW_MS`] in one stretch between the reveal and the
    /// payment expiry. DESIGN.md promises hashlock atomicity only when it was.
    pub seller_absent: bool,
    /// The current and the longest stretch of the seller's side being up since
    /// the reveal, in milliseconds.
    seller_up_ms: (u64, u64),
    /// A reorganisation deeper than the confirmation depth took away a block
    /// holding one of the deal's transactions that parties had acted on, and
    /// the new chain did not do it again before its deadline. No
    /// follower can undo what was acted on; atomicity is owed only without
    /// such a loss.
    pub reorg_lost: bool,
    /// On the script chain, the stated assumption about fees failed for one
    /// of the deal's hashlock claims (the seller's claim of the payment, or
    /// the buyer's claim of the delivery, which reveals the secret): at every
    /// block from when it was first sent until its leg's expiry, the market
    /// asked more than the most its sender may pay for it, its cap or what
    /// the leg can pay (`races.rs`). Not merely delayed: no spend its sender
    /// may sign could have been mined in time. A hashlock deal that ends
    /// one-sided so is `fee_lost`, counted, not owed atomicity.
    pub fee_cap_exceeded: bool,
    /// The hashlock secret, which the adversary may use as a misbehaving buyer.
    pub secret: Option<interlock_core::crypto::Secret>,
    /// For a deal with an inspection period: its disputes and verdicts.
    inspection: Option<inspection::InspectionPlan>,
}

/// How long the seller's side must be up in one stretch after the reveal for
/// hashlock atomicity to be owed: a few message delays and resubmissions.
pub const SELLER_FAIR_WINDOW_MS: u64 = 2_000;

pub struct World {
    pub seed: u64,
    pub now_ms: u64,
    pub step: usize,
    rng: Rng,
    pub faults: Faults,
    ledgers: Vec<LedgerNode>,
    parties: Vec<PartyNode>,
    notaries: Vec<NotaryNode>,
    keeper: PartyKey,
    mallory: PartyKey,
    keeper_nonce: HashMap<NetworkId, u64>,
    mallory_nonce: HashMap<NetworkId, u64>,
    network: Vec<Message>,
    pub deals: BTreeMap<DealId, DealInfo>,
    pub checker: Checker,
    pub last_deadline_ms: u64,
    /// Faults are drawn until every deal's outcome is decided on chain: the
    /// hashlock payment expiry, the notary decision deadline plus a few seconds.
    pub faults_until_ms: u64,
    /// Adversarial transactions that must never apply.
    forbidden: HashSet<interlock_ledger::TxId>,
    pub outcomes: BTreeMap<(DealId, usize), Outcome>,
    /// Votes each notary ever sent, per deal.
    votes_sent: HashMap<(usize, DealId), Decision>,
    /// Verdict votes each notary ever sent, per deal.
    verdicts_sent: HashMap<(usize, DealId), Decision>,
    /// The verdict votes the keeper heard, per deal and notary.
    verdict_votes: HashMap<DealId, BTreeMap<usize, interlock_core::crypto::Vote>>,
    /// The verdict certificates the keeper holds and presents.
    verdicts: HashMap<DealId, interlock_core::crypto::Certificate>,
    /// When held deals are next given to the notaries that lack them.
    deals_resend_ms: u64,
    /// Disputes the notaries refused (late, or by the wrong party).
    pub disputes_refused: u64,
    /// Disputes the notaries passed on to one another.
    pub disputes_passed_on: u64,
    /// Print what happens, for replaying a failing seed.
    pub trace: bool,
    /// Tokens the adversary has seen revealed on chain, by deal.
    revealed: HashMap<DealId, Token>,
    /// Set when the second network has deep-chain semantics in this seed.
    pub deep_chain: Option<DepthSemantics>,
    /// Set when the second network is a script chain in this seed.
    pub script_chain: Option<ScriptSemantics>,
    /// The script chain's fee market and what its spends did there.
    pub fees: Option<ScriptFees>,
    /// The size each spend on the script chain was sent with.
    spend_sizes: fees::SpendSizes,
    /// Deals the deal check refused at agreement: never signed, never reserved.
    pub refused_deals: Vec<DealId>,
    /// Set when the networks' gateways are linked only through a relay in
    /// this seed: keepers learn the other network's tokens through it.
    pub relay: Option<Relay>,
}

fn address(key: &PartyKey) -> Address {
    Address::from_bytes(key.public().0)
}

fn local(now_ms: u64, skew_ms: i64) -> u64 {
    now_ms.saturating_add_signed(skew_ms)
}

impl World {
    pub fn ledgers(&self) -> Vec<Option<&Ledger<MemoryStore>>> {
        self.ledgers.iter().map(|node| node.ledger.as_ref()).collect()
    }

    fn ledger_index(network: NetworkId) -> usize {
        NETWORKS.iter().position(|n| *n == network).expect("known network")
    }

    /// One step of simulated time. Returns `Err` with a description on the
    /// first broken invariant.
    pub fn tick(&mut self, faults_on: bool) -> Result<(), String> {
        self.step += 1;
        let elapsed_ms = self.rng.range(1, 60);
        self.now_ms += elapsed_ms;
        self.track_seller_side(elapsed_ms);
        if faults_on {
            self.inject_faults();
        }
        self.restart_due();
        self.send_disputes();
        self.deliver();
        self.step_relay(faults_on);
        for index in 0..self.ledgers.len() {
            self.run_ledger(index)?;
        }
        if faults_on {
            self.maybe_reorganise();
        }
        self.confirm_deep_blocks();
        for index in 0..self.notaries.len() {
            self.run_notary(index)?;
        }
        for index in 0..self.parties.len() {
            self.run_party(index);
        }
        if faults_on && self.faults.adversary && self.rng.chance(60) {
            self.attack();
        }
        let ledgers: Vec<_> = self.ledgers.iter().map(|node| node.ledger.as_ref()).collect();
        self.checker.check(&ledgers, &self.deals)
    }

    /// Measures, per hashlock deal, how long the seller's side stayed up in one
    /// stretch between the reveal and the payment expiry.
    fn track_seller_side(&mut self, elapsed_ms: u64) {
        let seller_online = self.parties[1].online;
        let script = self.script_chain.map(|script| (NETWORKS[script.index], script.lag_ms));
        for (deal_id, info) in self.deals.iter_mut() {
            let Settlement::Hashlock { payment_expiry_ms, delivery_expiry_ms, .. } = info.terms.settlement else {
                continue;
            };
            let delivery = info.terms.delivery.network;
            let revealed =
                self.checker.state_of(reservation_id(*deal_id, LegKind::Delivery)) == Some(ReservationState::Executed);
            // On a script chain the buyer can still claim a lapsed delivery
            // until the seller itself takes it back (no keeper can): from the
            // chain's time passing the expiry, the seller's side must be up to
            // refund it, or lose it to a late claim after the payment expired.
            let lapsed = script.is_some_and(|(network, lag_ms)| {
                network == delivery && self.now_ms >= delivery_expiry_ms.saturating_add(lag_ms)
            });
            if !(revealed || lapsed) || self.now_ms >= payment_expiry_ms {
                continue;
            }
            // The seller's side: the seller, or once the secret is out the
            // keeper it named (which lives with the payment network's
            // sequencer), and the network it must act on.
            let network = if revealed { info.terms.payment.network } else { delivery };
            let network_up = self.ledgers[Self::ledger_index(network)].ledger.is_some();
            let acting = seller_online || (revealed && info.terms.payment.keeper.is_some());
            let (current, longest) = &mut info.seller_up_ms;
            *current = if acting && network_up { *current + elapsed_ms } else { 0 };
            *longest = (*longest).max(*current);
            info.seller_absent = *longest < SELLER_FAIR_WINDOW_MS;
        }
    }

    fn note(&self, what: impl FnOnce() -> String) {
        if self.trace {
            eprintln!("[{:>6} ms step {:>5}] {}", self.now_ms - T0_MS, self.step, what());
        }
    }

    /// True once every reservation of every deal settled and every saga ended.
    pub fn quiescent(&self) -> bool {
        let all_settled = self.deals.iter().all(|(deal_id, info)| {
            LegKind::BOTH.iter().all(|leg| {
                let ledger = &self.ledgers[Self::ledger_index(info.terms.leg(*leg).network)];
                ledger.ledger.as_ref().is_some_and(|l| {
                    l.state()
                        .reservation(&reservation_id(*deal_id, *leg))
                        .is_none_or(|r| !matches!(r.state, ReservationState::Reserved | ReservationState::Held))
                })
            })
        });
        let all_ended =
            self.parties.iter().all(|p| p.online && p.sagas.values().all(|(saga, _)| saga.outcome().is_some()));
        all_settled && all_ended
    }

    /// Whether the deal's legs ended one executed and the other not.
    pub fn one_sided(&self, deal_id: DealId) -> bool {
        let executed = LegKind::BOTH
            .iter()
            .filter(|leg| self.checker.state_of(reservation_id(deal_id, **leg)) == Some(ReservationState::Executed))
            .count();
        executed == 1
    }

    /// The final checks, once deadlines have passed and the world is quiet.
    pub fn finish(&self) -> Result<(), String> {
        for deal_id in &self.refused_deals {
            for (index, node) in self.ledgers.iter().enumerate() {
                let Some(ledger) = node.ledger.as_ref() else { continue };
                if LegKind::BOTH.iter().any(|leg| ledger.state().reservation(&reservation_id(*deal_id, *leg)).is_some())
                {
                    return Err(format!("dust: refused deal {deal_id:?} has a reservation on network {index}"));
                }
            }
        }
        self.checker.finish(&self.deals)
    }
}
