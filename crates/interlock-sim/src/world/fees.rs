//! Fees and dust on the script chain, as a UTXO chain charges them: every
//! spend of a leg (claim or execute, refund or cancel) pays its fee out of the
//! leg's output, so the payee receives the leg less the fee, and the fee
//! leaves the parties for the chain's block producer (the ledger's operator
//! account, which the checker holds to the fees it read in the blocks).
//!
//! The chain has a fee market: the least rate, in units per vbyte, a spend
//! must pay to be mined in a block. A seed's market is calm (the relay
//! minimum throughout) or has spikes of some blocks. The node's pool of
//! spends (`LedgerNode::waiting`) hands a block only the spends priced at the
//! market; the others wait. The party that sent one and submits it again
//! after `replace_after_blocks` raises its rate with a child that spends its
//! own output and pays for both (child pays for parent), within the seed's
//! cap and what the leg can pay. A hashlock spend is priced at the node's
//! estimate (the newest block's market); a notary execute or cancel is
//! signed by the notaries at a fixed rate, so only the payee's child raises
//! it. On the ledger the package is one `Op::Spend` carrying the package's
//! whole fee: what the parent and its children pay together, out of the same
//! output, to the same producer.
//!
//! A leg at or below the dust threshold, or too small to pay its own spend's
//! fee and keep more than that, is refused when the deal is agreed: it is
//! never signed, reserved or run (`leg_refusal`).

use super::{World, NETWORKS};
use crate::rng::Rng;
use interlock_core::{Asset, Condition, DealTerms, EscrowOp, LegKind, NetworkId, ReservationId, ReservationState};
use interlock_ledger::{Op, Transaction, TxId};

/// The node's relay minimum, units per vbyte.
pub(super) const RELAY_MIN_RATE: u64 = 1;
/// The rate every notary execute and cancel is signed at, units per vbyte.
pub(super) const NOTARY_SPEND_RATE: u64 = 2;
/// A hashlock claim's and refund's size, vbytes (as `bench spends` measures
/// the platform's).
pub(super) const CLAIM_VBYTES: u64 = 151;
pub(super) const REFUND_VBYTES: u64 = 143;
/// A one-input, one-output child that pays for its parent, vbytes.
pub(super) const CHILD_VBYTES: u64 = 111;
/// A pay-to-script output of this many units or fewer is dust: the node
/// refuses to make it.
pub(super) const DUST_THRESHOLD: u128 = 330;
/// Script-chain amounts are drawn in thousands of the chain's smallest
/// unit, so fees (a few hundred units and more) are a fraction of a leg.
pub(super) const SCRIPT_AMOUNT_SCALE: u128 = 1_000;
/// Of the script-chain seeds, those whose market has spikes, per mille.
const SPIKY_PER_MILLE: u64 = 650;
/// Most spikes one seed's market has.
const SPIKES_MAX: usize = 4;
/// Of the legs a deal draws on a script chain, the dust ones, per mille.
pub(super) const DUST_LEG_PER_MILLE: u64 = 25;

/// Some consecutive blocks whose market asks `rate`.
#[derive(Clone, Copy, Debug)]
pub struct Spike {
    pub from_height: u64,
    pub blocks: u64,
    pub rate: u64,
}

/// A seed's script-chain fee market and what its spends did there.
#[derive(Clone, Debug)]
pub struct ScriptFees {
    pub spikes: Vec<Spike>,
    /// The most any sender pays per vbyte.
    pub cap_rate: u64,
    /// Blocks a spend waits before its sender raises it.
    pub replace_after_blocks: u64,
    /// Deals refused at agreement for a dust leg.
    pub dust_refused: u64,
    /// Spends that waited at least one block for the market.
    pub spends_waited: u64,
    /// Of those, spends that waited at a block whose market was above the
    /// most their sender could ever pay (its cap, or what the leg holds).
    pub priced_out: u64,
    /// Children sent to raise a waiting spend.
    pub bumps: u64,
    /// The beneficiaries' hashlock claims' races against their legs' expiry.
    pub(super) races: super::races::ClaimRaces,
}

impl ScriptFees {
    /// Draws a market whose spikes fall in the first blocks after `floor`,
    /// where a seed's deals live.
    pub(super) fn draw(rng: &mut Rng, floor: u64) -> ScriptFees {
        let mut spikes = Vec::new();
        if rng.chance(SPIKY_PER_MILLE) {
            for _ in 0..rng.range(1, SPIKES_MAX as u64) {
                let from_height = floor + rng.range(0, 70);
                spikes.push(Spike { from_height, blocks: rng.range(3, 40), rate: rng.range(3, 80) });
            }
        }
        ScriptFees {
            spikes,
            cap_rate: rng.range(10, 120),
            replace_after_blocks: rng.range(2, 5),
            dust_refused: 0,
            spends_waited: 0,
            priced_out: 0,
            bumps: 0,
            races: Default::default(),
        }
    }

    /// The least rate a spend must pay to enter block `height`.
    pub fn market_at(&self, height: u64) -> u64 {
        let spiking = self.spikes.iter().filter(|s| (s.from_height..s.from_height + s.blocks).contains(&height));
        spiking.map(|spike| spike.rate).max().unwrap_or(RELAY_MIN_RATE).max(RELAY_MIN_RATE)
    }

    /// The node's fee estimate with `tip` its newest block: that block's
    /// market, within the cap.
    pub fn estimate(&self, tip: u64) -> u64 {
        self.market_at(tip).min(self.cap_rate)
    }
}

/// Whether `op` is a spend that pays a fee.
pub(super) fn is_spend(op: &EscrowOp) -> bool {
    matches!(op, EscrowOp::Execute { .. } | EscrowOp::Cancel { .. })
}

/// The size of `op`'s spend of a leg under `condition`, vbytes. A notary
/// spend carries `threshold` notary signatures, the payee's, and a script
/// naming every notary; estimated from its parts as the platform measures it
/// (a 2-of-3 execute comes to about 183).
pub(super) fn spend_vbytes(op: &EscrowOp, condition: &Condition) -> u64 {
    match (op, condition) {
        (EscrowOp::Execute { .. }, Condition::Hashlock(_)) => CLAIM_VBYTES,
        (
            EscrowOp::Cancel { certificate: Some(_), .. } | EscrowOp::Execute { .. },
            Condition::Notary { notaries, threshold },
        ) => {
            let signatures = u64::from(*threshold) + 1;
            let notaries = u64::try_from(notaries.len()).expect("a few notaries");
            82 + (81 + 74 * signatures + 34 * notaries) / 4
        }
        _ => REFUND_VBYTES,
    }
}

/// Whether `op` under `condition` is signed by the notaries at their fixed rate.
fn presigned(op: &EscrowOp, condition: &Condition) -> bool {
    matches!(condition, Condition::Notary { .. })
        && matches!(op, EscrowOp::Execute { .. } | EscrowOp::Cancel { certificate: Some(_), .. })
}

/// The most a spend of a leg of `amount` may pay: the payee keeps more than dust.
pub(super) fn fee_most(amount: u128) -> u128 {
    amount.saturating_sub(DUST_THRESHOLD + 1)
}

/// Why the deal check refuses `terms` for their legs on the script chain
/// `network`, if it does: a leg at or below the dust threshold, or one that
/// cannot pay its largest spend at the least rate it may be sent at and keep
/// more than dust.
pub(super) fn leg_refusal(terms: &DealTerms, network: NetworkId) -> Option<String> {
    for kind in LegKind::BOTH {
        let leg = terms.leg(kind);
        let Asset::Fungible { amount, .. } = &leg.asset else { continue };
        if leg.network != network {
            continue;
        }
        if *amount <= DUST_THRESHOLD {
            return Some(format!(
                "dust: the {kind:?} leg on {network} moves {amount} units, at or below the dust threshold {DUST_THRESHOLD}"
            ));
        }
        let fee = match &terms.settlement {
            interlock_core::Settlement::Hashlock { .. } => u128::from(CLAIM_VBYTES * RELAY_MIN_RATE),
            interlock_core::Settlement::Notary { notaries, threshold, .. } => {
                let condition = Condition::Notary { notaries: notaries.clone(), threshold: *threshold };
                let execute = EscrowOp::Execute {
                    reservation: ReservationId(interlock_core::Hash32::ZERO),
                    token: interlock_core::crypto::Token::Secret(interlock_core::crypto::Secret([0; 32])),
                };
                u128::from(spend_vbytes(&execute, &condition) * NOTARY_SPEND_RATE)
            }
        };
        if fee > fee_most(*amount) {
            return Some(format!(
                "dust: the {kind:?} leg on {network} moves {amount} units, too little to pay its {fee}-unit spend \
                 and keep more than the dust threshold {DUST_THRESHOLD}"
            ));
        }
    }
    None
}

/// A spend waiting in the script chain node's pool.
pub(super) struct Waiting {
    pub(super) tx: Transaction,
    pub(super) reservation: ReservationId,
    pub(super) fee: u128,
    /// The package's size: the spend and its children.
    pub(super) vbytes: u64,
    /// The node's tip when the package was last sent or raised.
    pub(super) sent_height: u64,
    pub(super) waited: bool,
}

impl Waiting {
    pub(super) fn rate(&self) -> u64 {
        u64::try_from(self.fee / u128::from(self.vbytes)).unwrap_or(u64::MAX)
    }
}

/// The script chain node's pool of spends, in the order they arrived.
#[derive(Default)]
pub(super) struct Pool {
    pub(super) waiting: Vec<Waiting>,
}

impl Pool {
    /// Takes `tx`, a spend of `vbytes` (with its children) seen at `tip`:
    /// beside the spends of the same leg by others, replacing the sender's
    /// own earlier one only when it pays a higher rate (a child raised it),
    /// else refused as a conflict. Under the relay minimum it is refused.
    pub(super) fn admit(&mut self, tx: Transaction, vbytes: u64, tip: u64) {
        let Op::Spend { op, fee } = &tx.op else { panic!("only spends wait in the pool") };
        let (reservation, fee) = (op.reservation_id(), *fee);
        let waiting = Waiting { reservation, fee, vbytes, sent_height: tip, waited: false, tx };
        let signer = waiting.tx.signer;
        match self.waiting.iter().position(|w| w.reservation == reservation && w.tx.signer == signer) {
            Some(at) if self.waiting[at].rate() < waiting.rate() => {
                let waited = self.waiting[at].waited;
                self.waiting[at] = Waiting { waited, ..waiting };
            }
            Some(_) => {}
            None if waiting.rate() >= RELAY_MIN_RATE => self.waiting.push(waiting),
            None => {}
        }
    }

    /// The spends a block whose market asks `market` takes, best rate
    /// first, so that of two spends of one leg the better paid is mined
    /// (the other is then refused); the rest keep waiting.
    pub(super) fn take_mined(&mut self, market: u64) -> Vec<Transaction> {
        let (mut mined, waiting): (Vec<Waiting>, Vec<Waiting>) =
            std::mem::take(&mut self.waiting).into_iter().partition(|w| w.rate() >= market);
        self.waiting = waiting;
        mined.sort_by_key(|w| std::cmp::Reverse(w.rate()));
        mined.into_iter().map(|w| w.tx).collect()
    }

    /// `signer`'s own spend of `reservation`, if it waits here.
    pub(super) fn own(&self, reservation: ReservationId, signer: interlock_core::PartyId) -> Option<&Waiting> {
        self.waiting.iter().find(|w| w.reservation == reservation && w.tx.signer == signer)
    }

    pub(super) fn clear(&mut self) {
        self.waiting.clear();
    }
}

/// The fee and size of the child that raises `waiting` once it waited
/// long enough: the package at the estimate and at least a quarter (and one
/// unit per vbyte) above its rate, within `cap_rate` and what a leg of
/// `amount` can pay. `None` when that raises nothing.
pub(super) fn bump(waiting: &Waiting, estimate: u64, cap_rate: u64, amount: u128) -> Option<(u128, u64)> {
    let last = waiting.rate();
    let rate = estimate.max(last + (last / 4).max(1)).min(cap_rate);
    let vbytes = waiting.vbytes + CHILD_VBYTES;
    let fee = u128::from(rate * vbytes).min(fee_most(amount));
    (fee > waiting.fee && fee / u128::from(vbytes) > u128::from(last)).then_some((fee, vbytes))
}

impl World {
    fn script_index(&self) -> Option<usize> {
        self.script_chain.map(|script| script.index)
    }

    /// Hands ledger `index` what arrived for it; on the script chain its
    /// spends go to the node's pool ([`Pool::admit`]).
    pub(super) fn take_inbox(&mut self, index: usize) {
        let node = &mut self.ledgers[index];
        let inbox = std::mem::take(&mut node.inbox);
        let Some(ledger) = node.ledger.as_mut() else { return };
        let tip = ledger.tip().height;
        for tx in inbox {
            if !matches!(tx.op, Op::Spend { .. }) {
                let _ = ledger.submit(tx);
                continue;
            }
            let vbytes = self.spend_sizes.get(&tx.id()).copied().unwrap_or(CLAIM_VBYTES);
            node.pool.admit(tx, vbytes, tip);
        }
    }

    /// Before ledger `index` produces a block: the spends its market takes
    /// go to the ledger, best rate first (of two spends of one leg the
    /// better paid is mined, the other then refused); the rest wait.
    pub(super) fn release_spends(&mut self, index: usize) {
        if self.script_index() != Some(index) {
            return;
        }
        let Some(fees) = self.fees.as_mut() else { return };
        let node = &mut self.ledgers[index];
        let Some(ledger) = node.ledger.as_mut() else { return };
        // The block's time, as the ledger stamps it: never before its tip's.
        let block_ms = super::local(self.now_ms, node.skew_ms).max(ledger.tip().timestamp_ms);
        let market = fees.market_at(ledger.tip().height + 1);
        super::races::observe(&mut fees.races, &mut self.deals, ledger.state(), block_ms, market, self.trace);
        for tx in node.pool.take_mined(market) {
            let _ = ledger.submit(tx);
        }
        for spend in node.pool.waiting.iter_mut().filter(|w| !w.waited) {
            spend.waited = true;
            fees.spends_waited += 1;
            let amount = ledger.state().reservation(&spend.reservation).map_or(0, |r| match &r.asset {
                Asset::Fungible { amount, .. } => *amount,
                Asset::Unique { .. } => 0,
            });
            let most_rate = fee_most(amount) / u128::from(spend.vbytes + CHILD_VBYTES);
            if u128::from(fees.cap_rate).min(most_rate) < u128::from(market) {
                fees.priced_out += 1;
            }
        }
    }

    /// A party's submitter sends `op`, a spend on the script chain: priced
    /// at the node's estimate (a notary spend at its fixed rate) when none of
    /// its own waits in the node's pool; raised by a child once its own has
    /// waited `replace_after_blocks`, to the estimate and at least a quarter
    /// more, within the cap and what the leg holds; otherwise nothing, as
    /// the platform's submitter finds its spend pending. Nothing either when
    /// the node is down or the leg is not open there, as the platform's
    /// submitter gets an error back.
    ///
    /// A beneficiary's hashlock claim that waits near its leg's expiry
    /// ([`super::races::near_deadline`]) is raised by a child straight to
    /// the cap, without waiting `replace_after_blocks`: there is no time left
    /// for raises by a quarter. (The platform's submitter does not do this
    /// yet: it raises a claim as any spend.)
    pub(super) fn send_spend(&mut self, party: usize, network: NetworkId, op: EscrowOp) {
        let Some(fees) = self.fees.as_ref() else { return };
        let index = Self::ledger_index(network);
        let Some(ledger) = self.ledgers[index].ledger.as_ref() else { return };
        let id = op.reservation_id();
        let Some(reservation) = ledger.state().reservation(&id).filter(|r| r.state == ReservationState::Reserved)
        else {
            return;
        };
        let Asset::Fungible { amount, .. } = reservation.asset else { return };
        let tip = ledger.tip().height;
        let sender = super::address(&self.parties[party].key);
        let race = super::races::ClaimRace::of(reservation, &op, sender, fees.cap_rate);
        let urgent =
            race.is_some() && super::races::near_deadline(ledger, reservation.expiry_ms, fees.replace_after_blocks);
        let estimate = fees.estimate(tip);
        let signer = self.parties[party].key.public();
        let (fee, vbytes, raised) = match self.ledgers[index].pool.own(id, signer) {
            Some(waiting) if urgent || tip >= waiting.sent_height + fees.replace_after_blocks => {
                let rate = if urgent { fees.cap_rate } else { estimate };
                let Some((fee, vbytes)) = bump(waiting, rate, fees.cap_rate, amount) else { return };
                (fee, vbytes, true)
            }
            Some(_) => return,
            None => {
                let vbytes = spend_vbytes(&op, &reservation.condition);
                let rate = if presigned(&op, &reservation.condition) { NOTARY_SPEND_RATE } else { estimate };
                (u128::from(rate * vbytes).min(fee_most(amount)), vbytes, false)
            }
        };
        let node = &mut self.parties[party];
        let nonce = node.disk.nonces.entry(network).or_insert(0);
        *nonce += 1;
        let tx = Transaction::sign(&node.key, network, *nonce, Op::Spend { op, fee });
        let fees = self.fees.as_mut().expect("checked above");
        if let Some(race) = race {
            fees.races.entry(id).or_insert(race);
        }
        if raised {
            fees.bumps += 1;
        }
        self.note(|| {
            format!(
                "party {party} spends {id} on {network}: {fee} units for {vbytes} vbytes{}",
                if raised { ", a child raising it" } else { "" }
            )
        });
        self.spend_sizes.insert(tx.id(), vbytes);
        // Straight to the node, not through the lossy network: the
        // platform's submitter sends to its own node, whose answer says
        // whether it took the spend, and the saga tries again if not.
        self.ledgers[index].inbox.push(tx);
    }

    /// The operation an adversary signs for `op` on `network`: on the script
    /// chain a spend pays the relay minimum, or `rate` when given.
    pub(super) fn adversary_op(&mut self, network: NetworkId, op: EscrowOp, rate: Option<u64>) -> Op {
        if self.script_index().is_none_or(|index| NETWORKS[index] != network) || !is_spend(&op) {
            return Op::Escrow(op);
        }
        let fee = u128::from(rate.unwrap_or(RELAY_MIN_RATE) * CLAIM_VBYTES);
        Op::Spend { op, fee }
    }

    /// Remembers the size of a spend an adversary signed.
    pub(super) fn note_spend_size(&mut self, tx: &Transaction) {
        if matches!(tx.op, Op::Spend { .. }) {
            self.spend_sizes.insert(tx.id(), CLAIM_VBYTES);
        }
    }
}

/// The size a spend was sent with, by transaction.
pub(super) type SpendSizes = std::collections::HashMap<TxId, u64>;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checker::Checker;
    use interlock_core::crypto::{PartyKey, Secret, Token};
    use interlock_core::{reservation_id, Address, AssetCode, DealId, Hash32, ReserveRequest, Rules};
    use interlock_ledger::{Genesis, Ledger, LedgerError, MemoryStore};
    use std::collections::BTreeMap;

    const T0: u64 = 1_000_000;
    const LEG: u128 = 10_000;

    fn key(byte: u8) -> PartyKey {
        PartyKey::from_seed([byte; 32])
    }
    fn address(key: &PartyKey) -> Address {
        Address::from_bytes(key.public().0)
    }
    fn coin() -> AssetCode {
        AssetCode::new("GOLD").expect("valid")
    }
    fn deal() -> DealId {
        DealId(Hash32::sha256(&[b"fees"]))
    }
    fn claim() -> EscrowOp {
        EscrowOp::Execute {
            reservation: reservation_id(deal(), LegKind::Payment),
            token: Token::Secret(Secret([7; 32])),
        }
    }
    fn spend(signer: &PartyKey, op: EscrowOp, fee: u128) -> Transaction {
        Transaction::sign(signer, NETWORKS[0], 100, Op::Spend { op, fee })
    }

    /// A script chain with one open hashlock leg of `LEG` from the owner
    /// (key 2) to the beneficiary (key 3); and a checker that has seen it start.
    fn script_chain() -> (Ledger<MemoryStore>, Checker) {
        let operator = key(1);
        let genesis = Genesis { network: NETWORKS[0], operator: operator.public(), timestamp_ms: T0 };
        let mut ledger = Ledger::open(MemoryStore::new(), genesis).expect("opens").with_rules(Rules::script(0));
        let (owner, beneficiary) = (key(2), key(3));
        let mut nonce = 0;
        let mut apply = |ledger: &mut Ledger<MemoryStore>, signer: &PartyKey, op: Op| {
            nonce += 1;
            ledger.apply_now(Transaction::sign(signer, NETWORKS[0], nonce, op), T0)
        };
        for party in [&owner, &beneficiary] {
            apply(&mut ledger, &operator, Op::Register { account: party.public() }).expect("registers");
        }
        let funds = Asset::Fungible { code: coin(), amount: 1_000_000 };
        apply(&mut ledger, &operator, Op::Issue { to: address(&owner), asset: funds }).expect("issues");
        let mut checker = Checker::default();
        checker.start(&[&ledger]);
        let reserve = ReserveRequest {
            deal_id: deal(),
            leg: LegKind::Payment,
            asset: Asset::Fungible { code: coin(), amount: LEG },
            owner: address(&owner),
            beneficiary: address(&beneficiary),
            keeper: None,
            condition: Condition::Hashlock(Secret([7; 32]).hash()),
            expiry_ms: T0 + 10_000,
        };
        apply(&mut ledger, &owner, Op::Escrow(EscrowOp::Reserve(reserve))).expect("reserves");
        (ledger, checker)
    }

    fn market(spikes: &[(u64, u64, u64)]) -> ScriptFees {
        let spikes = spikes.iter().map(|&(from_height, blocks, rate)| Spike { from_height, blocks, rate }).collect();
        ScriptFees {
            spikes,
            cap_rate: 50,
            replace_after_blocks: 2,
            dust_refused: 0,
            spends_waited: 0,
            priced_out: 0,
            bumps: 0,
            races: Default::default(),
        }
    }

    #[test]
    fn a_spend_below_the_market_waits_until_the_market_falls() {
        let fees = market(&[(10, 5, 20)]);
        assert_eq!((fees.market_at(9), fees.market_at(10), fees.market_at(14), fees.market_at(15)), (1, 20, 20, 1));
        let mut pool = Pool::default();
        pool.admit(spend(&key(3), claim(), u128::from(5 * CLAIM_VBYTES)), CLAIM_VBYTES, 9);
        for height in 10..15 {
            assert!(pool.take_mined(fees.market_at(height)).is_empty(), "5 per vbyte waits at block {height}");
        }
        assert_eq!(pool.take_mined(fees.market_at(15)).len(), 1, "mined once the spike is over");
        assert!(pool.waiting.is_empty());
    }

    #[test]
    fn a_child_raises_a_waiting_spend_into_the_next_block() {
        let fees = market(&[(10, 30, 20)]);
        let mut pool = Pool::default();
        let notary_rate_fee = u128::from(NOTARY_SPEND_RATE * CLAIM_VBYTES);
        pool.admit(spend(&key(3), claim(), notary_rate_fee), CLAIM_VBYTES, 10);
        assert!(pool.take_mined(fees.market_at(11)).is_empty());
        let waiting = pool.own(claim().reservation_id(), key(3).public()).expect("waits");
        let (fee, vbytes) = bump(waiting, fees.estimate(12), fees.cap_rate, LEG).expect("a child raises it");
        assert_eq!((fee, vbytes), (u128::from(20 * (CLAIM_VBYTES + CHILD_VBYTES)), CLAIM_VBYTES + CHILD_VBYTES));
        pool.admit(spend(&key(3), claim(), fee), vbytes, 12);
        assert_eq!(pool.waiting.len(), 1, "the package replaces the spend it pays for");
        assert_eq!(pool.take_mined(fees.market_at(13)).len(), 1, "and is mined at the market");
        // A cap under the market raises it only to the cap, and a leg pays
        // no more than leaves its payee more than dust.
        pool.admit(spend(&key(3), claim(), notary_rate_fee), CLAIM_VBYTES, 10);
        let waiting = pool.own(claim().reservation_id(), key(3).public()).expect("waits");
        let (capped, _) = bump(waiting, 20, 8, LEG).expect("raised to the cap");
        assert_eq!(capped, u128::from(8 * (CLAIM_VBYTES + CHILD_VBYTES)));
        let (poor, _) = bump(waiting, 20, 50, 2_000).expect("raised to what the leg pays");
        assert_eq!(poor, 2_000 - DUST_THRESHOLD - 1);
        assert!(bump(waiting, 20, 50, 1_000).is_none(), "a leg that pays no better rate is not raised");
        assert!(bump(waiting, 20, 1, LEG).is_none(), "a cap at the spend's own rate raises nothing");
        // Another party's conflicting spend waits beside it; the better paid is mined first.
        let refund = EscrowOp::Cancel { reservation: claim().reservation_id(), certificate: None };
        pool.admit(spend(&key(2), refund, u128::from(30 * REFUND_VBYTES)), REFUND_VBYTES, 11);
        let mined = pool.take_mined(1);
        assert_eq!(mined.iter().map(|tx| tx.signer).collect::<Vec<_>>(), vec![key(2).public(), key(3).public()]);
    }

    #[test]
    fn a_dust_leg_is_refused_when_the_deal_is_agreed() {
        let mut terms = crate::world::World::new(0).deals.values().next().expect("a deal").terms.as_ref().clone();
        terms.settlement = interlock_core::Settlement::Hashlock {
            hash: Hash32::ZERO,
            delivery_expiry_ms: T0,
            payment_expiry_ms: T0 + 5_000,
            margin_ms: 5_000,
        };
        terms.payment.network = NETWORKS[1];
        terms.delivery.network = NETWORKS[0];
        let check = |amount: u128| {
            let mut terms = terms.clone();
            terms.payment.asset = Asset::Fungible { code: coin(), amount };
            leg_refusal(&terms, NETWORKS[1])
        };
        let at_threshold = check(DUST_THRESHOLD).expect("dust");
        assert!(at_threshold.contains("at or below the dust threshold 330"), "{at_threshold}");
        let unpaid = check(DUST_THRESHOLD + u128::from(CLAIM_VBYTES)).expect("cannot pay its claim");
        assert!(unpaid.contains("too little to pay its 151-unit spend"), "{unpaid}");
        assert_eq!(check(DUST_THRESHOLD + u128::from(CLAIM_VBYTES) + 1), None);
        assert_eq!(check(LEG), None);
    }

    #[test]
    fn a_spend_pays_its_fee_out_of_the_leg_and_the_checker_counts_it() {
        let (mut ledger, mut checker) = script_chain();
        let plain = Transaction::sign(&key(3), NETWORKS[0], 1, Op::Escrow(claim()));
        assert!(matches!(ledger.apply_now(plain, T0), Err(LedgerError::FeeRequired("execute"))));
        let greedy = spend(&key(3), claim(), LEG);
        assert!(matches!(ledger.apply_now(greedy, T0), Err(LedgerError::BadFee { .. })), "a fee of the whole leg");
        let fee = u128::from(7 * CLAIM_VBYTES);
        ledger.apply_now(spend(&key(3), claim(), fee), T0).expect("claims");
        assert_eq!(
            ledger.state().balance(&address(&key(3)), &coin()),
            LEG - fee,
            "the payee gets the leg less the fee"
        );
        assert_eq!(ledger.state().balance(&Address::from_bytes(key(1).public().0), &coin()), fee);
        checker.check(&[Some(&ledger)], &BTreeMap::new()).expect("every unit accounted for");
        assert_eq!(checker.fees_paid(), fee);
    }
}
