//! One account's escrow operations on a Litecoin network. The chain enforces
//! the script; this submitter refuses, before anything is signed, what the
//! script would refuse and what the deal's rules forbid that a script cannot
//! express (a claim after the leg's expiry), each with the seam's typed error.

use crate::chain::{Located, Node, SpendIndex};
use crate::leg::LegScript;
use crate::notary::{self, NotaryScript};
use crate::script::HashlockScript;
use crate::tx::{self, Key, Path};
use interlock_chain::{BoxFuture, ChainError, NotarySigner, Receipt, SpendToSign, Submitter};
use interlock_core::crypto::{Decision, Token};
use interlock_core::escrow::ReservationState;
use interlock_core::saga::expected_request;
use interlock_core::{reservation_id, Address, Asset, DealTerms, EscrowOp, LegKind, NetworkId, Settlement};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// How a submitter prices its transactions.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct FeeLimits {
    /// Litoshis per vbyte, at least (the node's relay minimum applies too).
    pub floor_sat_vb: u64,
    /// Litoshis per vbyte, at most.
    pub cap_sat_vb: u64,
    /// A claim or refund still unconfirmed this many blocks after it was sent
    /// (or last bumped) gets a child paying for it when it is submitted again.
    pub replace_after_blocks: u64,
    /// A spend racing a deadline (a claim before its leg's expiry, a notary
    /// execute before the backstop) this close to it, in seconds of the
    /// chain's median time, is urgent: it is priced at the cap, and a child
    /// raises it to the cap as soon as it waits a block.
    pub urgent_within_s: u64,
}

impl FeeLimits {
    /// Whether a spend whose deadline is `deadline_s` is urgent when the
    /// chain's median time is `median_s`.
    fn urgent(&self, deadline_s: Option<u32>, median_s: u64) -> bool {
        deadline_s.is_some_and(|deadline| u64::from(deadline).saturating_sub(median_s) <= self.urgent_within_s)
    }
}

/// A claim or refund this submitter sent, and the children that pay for it
/// while it waits.
#[derive(Clone, Debug)]
struct Sent {
    /// The claim or refund itself.
    transaction: interlock_core::Hash32,
    /// The newest transaction of the package: its output 0 pays this account.
    tip: bitcoin::OutPoint,
    tip_value: u64,
    /// Fees and virtual bytes of the whole package.
    fee: u64,
    vsize: u64,
    /// The package's fee rate, and the height it was last priced at.
    rate: u64,
    height: u64,
    /// The deadline the spend races, if any (unix seconds of median time).
    deadline_s: Option<u32>,
}

/// Signs and sends one account's reservations, claims and refunds.
pub struct LitecoinSubmitter {
    network: NetworkId,
    node: Node,
    key: Key,
    asset: String,
    fees: FeeLimits,
    index: tokio::sync::Mutex<SpendIndex>,
    /// One operation at a time: two reservations must not pick the same coin.
    sending: tokio::sync::Mutex<()>,
    fees_paid: Arc<AtomicU64>,
    /// The spends sent, by reservation id.
    sent: std::sync::Mutex<std::collections::HashMap<[u8; 32], Sent>>,
    /// The compressed keys notary legs name their notaries by.
    notary_keys: Vec<[u8; 33]>,
    /// Where a notary leg's spends get the notaries' signatures.
    notaries: Option<Arc<dyn NotarySigner>>,
}

impl LitecoinSubmitter {
    /// A submitter for `key`'s account; `asset` is the code legs name LTC by,
    /// and the chain's spends are read from block `start_height` on.
    pub fn new(network: NetworkId, node: Node, key: Key, asset: &str, fees: FeeLimits, start_height: u64) -> Self {
        LitecoinSubmitter {
            network,
            node,
            key,
            asset: asset.to_owned(),
            fees,
            index: tokio::sync::Mutex::new(SpendIndex::new(start_height)),
            sending: tokio::sync::Mutex::new(()),
            fees_paid: Arc::new(AtomicU64::new(0)),
            sent: std::sync::Mutex::new(std::collections::HashMap::new()),
            notary_keys: Vec::new(),
            notaries: None,
        }
    }

    /// Settles notary legs too: their scripts name the notaries by `keys`,
    /// and `signer` gets the notaries' signatures over each spend.
    pub fn with_notaries(mut self, keys: Vec<[u8; 33]>, signer: Arc<dyn NotarySigner>) -> Self {
        self.notary_keys = keys;
        self.notaries = Some(signer);
        self
    }

    /// Counts the fees this submitter pays into `counter` (shared by the
    /// submitters of one account, say) instead of a counter of its own.
    pub fn with_fee_counter(mut self, counter: Arc<AtomicU64>) -> Self {
        self.fees_paid = counter;
        self
    }

    /// Litoshis paid in fees so far.
    pub fn fees_paid(&self) -> u64 {
        self.fees_paid.load(Ordering::Relaxed)
    }

    fn leg_of(&self, terms: &DealTerms, op: &EscrowOp) -> Result<LegKind, ChainError> {
        let deal_id = terms.id();
        let kind = match op {
            EscrowOp::Reserve(request) => request.leg,
            EscrowOp::Resolve { .. } => return Err(no_verdicts()),
            EscrowOp::Execute { reservation, .. } | EscrowOp::Cancel { reservation, .. } => {
                [LegKind::Payment, LegKind::Delivery]
                    .into_iter()
                    .find(|kind| reservation_id(deal_id, *kind) == *reservation)
                    .ok_or_else(|| {
                        ChainError::rejected(format!("reservation {reservation} is not a leg of deal {deal_id}"))
                    })?
            }
        };
        if terms.leg(kind).network != self.network {
            return Err(ChainError::fatal(format!(
                "the {kind:?} leg of deal {deal_id} is on {}, not on this network ({})",
                terms.leg(kind).network,
                self.network
            )));
        }
        Ok(kind)
    }

    /// The leg's script and amount, or why this network cannot hold it.
    fn script_of(&self, terms: &DealTerms, kind: LegKind) -> Result<(LegScript, u64), ChainError> {
        let leg = terms.leg(kind);
        let amount = match &leg.asset {
            Asset::Fungible { code, amount } if code.as_str() == self.asset => u64::try_from(*amount)
                .map_err(|_| ChainError::fatal(format!("{amount} litoshis is more than a Litecoin output holds")))?,
            Asset::Fungible { code, .. } => {
                return Err(ChainError::fatal(format!(
                    "this Litecoin network holds {} only, not {}",
                    self.asset,
                    code.as_str()
                )))
            }
            Asset::Unique { .. } => return Err(ChainError::fatal("platform litecoin cannot hold unique items")),
        };
        if leg.keeper.is_some() {
            return Err(ChainError::fatal("a Litecoin leg names no keeper: its script pays only the keys it names"));
        }
        if matches!(terms.settlement, Settlement::Notary { .. }) && self.notaries.is_none() {
            return Err(ChainError::fatal(
                "this Litecoin submitter reaches no notaries: a notary leg's spends need their signatures",
            ));
        }
        Ok((LegScript::of(terms, kind, &self.notary_keys)?, amount))
    }

    async fn locate(&self, script: &LegScript, amount: u64) -> Result<Located, ChainError> {
        let mut index = self.index.lock().await;
        self.node.locate(&mut index, script, amount).await
    }

    async fn send(&self, built: tx::Built) -> Result<Receipt, ChainError> {
        let transaction = self.node.send(&built.transaction).await?;
        self.fees_paid.fetch_add(built.fee, Ordering::Relaxed);
        Ok(Receipt { transaction, height: None })
    }

    /// Sends a claim or refund of the leg `reservation`, priced at `rate`,
    /// racing `deadline_s` if it races one, and remembers it for
    /// replacement. Its output 0 pays this account.
    async fn spend(
        &self,
        reservation: [u8; 32],
        built: tx::Built,
        rate: u64,
        deadline_s: Option<u32>,
    ) -> Result<Receipt, ChainError> {
        let (fee, vsize) = (built.fee, built.transaction.vsize() as u64);
        let tip = bitcoin::OutPoint { txid: built.transaction.compute_txid(), vout: 0 };
        let tip_value = built.transaction.output[0].value.to_sat();
        let height = self.node.tip().await?;
        let receipt = self.send(built).await?;
        let sent = Sent { transaction: receipt.transaction, tip, tip_value, fee, vsize, rate, height, deadline_s };
        self.sent.lock().unwrap_or_else(std::sync::PoisonError::into_inner).insert(reservation, sent);
        Ok(receipt)
    }

    /// Bumps this submitter's own claim or refund `pending` in the mempool
    /// when it has waited `replace_after_blocks` blocks: a child spending its
    /// output back to this account pays for the package at the node's current
    /// estimate, and at least a quarter (and one litoshi per vbyte) above the
    /// last rate, within the cap (child pays for parent: litecoind takes no
    /// replacements by default, and the notaries signed a notary spend's fee).
    /// `None` when there is nothing to bump yet.
    async fn bump_if_stuck(
        &self,
        reservation: [u8; 32],
        pending: interlock_core::Hash32,
    ) -> Result<Option<Receipt>, ChainError> {
        let sent = self.sent.lock().unwrap_or_else(std::sync::PoisonError::into_inner).get(&reservation).cloned();
        let Some(sent) = sent.filter(|sent| sent.transaction == pending) else { return Ok(None) };
        let height = self.node.tip().await?;
        // Near its deadline a spend waits one block, not the usual few.
        let urgent = self.fees.urgent(sent.deadline_s, self.node.median_time().await?);
        let wait = if urgent { 1 } else { self.fees.replace_after_blocks };
        if height < sent.height.saturating_add(wait) {
            return Ok(None);
        }
        let estimate = self.node.fee_rate(self.fees.floor_sat_vb, self.fees.cap_sat_vb).await?;
        let rate = if urgent { self.fees.cap_sat_vb } else { estimate.max(sent.rate + (sent.rate / 4).max(1)) };
        let rate = rate.min(self.fees.cap_sat_vb);
        if rate <= sent.rate {
            return Ok(None);
        }
        let vsize = sent.vsize + tx::CHILD_VBYTES;
        let fee = rate.saturating_mul(vsize).saturating_sub(sent.fee);
        let coin = tx::Coin { outpoint: sent.tip, value: sent.tip_value };
        let child = tx::pay_for_parent(&self.key, &coin, fee)?;
        let tip = bitcoin::OutPoint { txid: child.transaction.compute_txid(), vout: 0 };
        let tip_value = child.transaction.output[0].value.to_sat();
        tracing::info!(rate, previous = sent.rate, "a child pays for a spend that waited too long");
        self.send(child).await?;
        let bumped = Sent { tip, tip_value, fee: sent.fee + fee, vsize, rate, height, ..sent };
        self.sent.lock().unwrap_or_else(std::sync::PoisonError::into_inner).insert(reservation, bumped);
        // The operation is still the claim or refund; the child only pays for it.
        Ok(Some(Receipt { transaction: pending, height: None }))
    }

    fn only(&self, who: &Address, what: &str) -> Result<(), ChainError> {
        if self.key.account() != *who {
            return Err(ChainError::rejected(format!("only the leg's {what}, not {}", self.account())));
        }
        Ok(())
    }

    async fn run(&self, terms: &DealTerms, op: &EscrowOp) -> Result<Receipt, ChainError> {
        let kind = self.leg_of(terms, op)?;
        let (script, amount) = self.script_of(terms, kind)?;
        let leg = terms.leg(kind);
        let _one_at_a_time = self.sending.lock().await;
        let located = self.locate(&script, amount).await?;
        if let Located::Spent { transaction, pending: true, .. } = located {
            if let Some(receipt) = self.bump_if_stuck(script.reservation(), transaction).await? {
                return Ok(receipt);
            }
        }
        if let Located::Spent { spend, .. } = located {
            let how = if spend.executed() { "executed" } else { "cancelled" };
            return Err(ChainError::already_done(format!("the {kind:?} leg is already {how}")));
        }
        if let EscrowOp::Reserve(request) = op {
            if *request != expected_request(terms, terms.id(), kind) {
                return Err(ChainError::rejected("the reserve request does not match the deal's terms"));
            }
            self.only(&leg.owner, "owner reserves it")?;
            if located != Located::Nothing {
                return Err(ChainError::already_done(format!("the {kind:?} leg is already reserved")));
            }
            let coins = self.node.unspent(&self.key.script_pubkey()).await?;
            let rate = self.node.fee_rate(self.fees.floor_sat_vb, self.fees.cap_sat_vb).await?;
            let built = tx::reserve(&self.key, &coins, script.script_pubkey(), amount, rate)?;
            return self.send(built).await;
        }
        let Located::Unspent { outpoint, value } = located else {
            return Err(ChainError::rejected(format!("the {kind:?} leg is not reserved: nothing to spend")));
        };
        match script {
            LegScript::Hashlock(script) => self.hashlock(terms, kind, &script, op, outpoint, value).await,
            LegScript::Notary(script) => self.notary(terms, kind, &script, op, outpoint, value).await,
        }
    }

    async fn hashlock(
        &self,
        terms: &DealTerms,
        kind: LegKind,
        script: &HashlockScript,
        op: &EscrowOp,
        outpoint: bitcoin::OutPoint,
        value: u64,
    ) -> Result<Receipt, ChainError> {
        let leg = terms.leg(kind);
        let median = self.node.median_time().await?;
        let (to, path, deadline_s) = match op {
            EscrowOp::Reserve(_) => unreachable!("reservations are sent before a leg's spends"),
            EscrowOp::Resolve { .. } => return Err(no_verdicts()),
            EscrowOp::Execute { token, .. } => {
                let secret = match token {
                    Token::Secret(secret) if secret.hash().0 == script.hash => secret.0,
                    Token::Secret(_) => {
                        return Err(ChainError::rejected("the secret does not match the deal's hashlock"))
                    }
                    Token::Certificate(_) => {
                        return Err(ChainError::rejected(
                            "a hashlock leg is executed with its secret, not a certificate",
                        ))
                    }
                };
                self.only(&leg.beneficiary, "beneficiary executes it on this chain")?;
                if median >= u64::from(script.expiry_s) {
                    return Err(ChainError::rejected(format!(
                        "the {kind:?} leg expired at {} (the chain's median time is {median}): it can no longer be executed",
                        script.expiry_s
                    )));
                }
                (leg.beneficiary, Path::Claim { secret }, Some(script.expiry_s))
            }
            EscrowOp::Cancel { certificate, .. } => {
                if certificate.is_some() {
                    return Err(ChainError::rejected(
                        "a hashlock leg is cancelled after its expiry, not by certificate",
                    ));
                }
                self.only(&leg.owner, "owner's key takes a lapsed leg back on this chain")?;
                if median <= u64::from(script.expiry_s) {
                    return Err(ChainError::rejected(format!(
                        "the {kind:?} leg expires at {} and the chain's median time is {median}: not yet cancellable",
                        script.expiry_s
                    )));
                }
                (leg.owner, Path::Refund, None)
            }
        };
        let estimate = self.node.fee_rate(self.fees.floor_sat_vb, self.fees.cap_sat_vb).await?;
        let rate = if self.fees.urgent(deadline_s, median) { self.fees.cap_sat_vb.max(estimate) } else { estimate };
        let to = crate::address::pay_to(&to)?;
        let built = tx::spend(&self.key, script, outpoint, value, to, path, rate)?;
        self.spend(script.reservation, built, rate, deadline_s).await
    }

    /// A notary leg's execute (commit certificate, by the beneficiary),
    /// cancel (abort certificate, by the owner) or refund (no certificate, by
    /// the owner after the backstop). A certificate here is the notaries'
    /// decision, checked against the deal's notary set; the spend then takes
    /// their signatures over it from the notaries, which give them only for
    /// the decision they recorded.
    async fn notary(
        &self,
        terms: &DealTerms,
        kind: LegKind,
        script: &NotaryScript,
        op: &EscrowOp,
        outpoint: bitcoin::OutPoint,
        value: u64,
    ) -> Result<Receipt, ChainError> {
        let leg = terms.leg(kind);
        let Settlement::Notary { notaries, threshold, .. } = &terms.settlement else {
            return Err(ChainError::fatal("a notary leg of a deal not in notary mode"));
        };
        let median = self.node.median_time().await?;
        let (decision, certificate) = match op {
            EscrowOp::Reserve(_) => unreachable!("reservations are sent before a leg's spends"),
            EscrowOp::Resolve { .. } => return Err(no_verdicts()),
            EscrowOp::Execute { token: Token::Certificate(certificate), .. } => {
                self.only(&leg.beneficiary, "beneficiary executes it on this chain")?;
                if median >= u64::from(script.backstop_s()) {
                    return Err(ChainError::rejected(format!(
                        "the deal's backstop passed at {} (the chain's median time is {median}): the leg is the owner's to refund",
                        script.backstop_s()
                    )));
                }
                (Decision::Commit, certificate)
            }
            EscrowOp::Execute { .. } => {
                return Err(ChainError::rejected("a notary leg is executed with a commit certificate, not a secret"))
            }
            EscrowOp::Cancel { certificate: Some(certificate), .. } => {
                self.only(&leg.owner, "owner cancels it on this chain")?;
                (Decision::Abort, certificate)
            }
            EscrowOp::Cancel { certificate: None, .. } => {
                self.only(&leg.owner, "owner takes it back after the backstop")?;
                if median <= u64::from(script.backstop_s()) {
                    return Err(ChainError::rejected(format!(
                        "the deal's backstop is {} and the chain's median time is {median}: without an abort certificate the leg is not yet refundable",
                        script.backstop_s()
                    )));
                }
                let rate = self.node.fee_rate(self.fees.floor_sat_vb, self.fees.cap_sat_vb).await?;
                let built = notary::refund(&self.key, script, outpoint, value, self.key.script_pubkey(), rate)?;
                return self.spend(script.reservation(), built, rate, None).await;
            }
        };
        certificate
            .verify(terms.id(), decision, notaries, *threshold)
            .map_err(|error| ChainError::rejected(format!("the {decision} certificate: {error}")))?;
        let signer = self.notaries.as_ref().ok_or_else(|| ChainError::fatal("no notaries to sign the spend"))?;
        let request = SpendToSign {
            terms: Arc::new(terms.clone()),
            leg: kind,
            decision,
            location: notary::location_bytes(outpoint, value),
        };
        let signatures = signer.sign_spend(&request).await?;
        let transaction = notary::signed_notary_spend(script, outpoint, value, decision, &self.key, &signatures)?;
        let built = tx::Built { transaction, fee: notary::notary_spend_fee(script) };
        // An execute races the backstop; the notaries fixed its own rate, so
        // only a child can hurry it.
        let deadline_s = (decision == Decision::Commit).then_some(script.backstop_s());
        self.spend(script.reservation(), built, notary::NOTARY_SPEND_RATE_SAT_VB, deadline_s).await
    }
}

impl LitecoinSubmitter {
    /// `leg` of `terms` as this network would hold it: its script here, an
    /// output the node takes, and an amount whose claim or refund at the fee
    /// floor still leaves the payee an output the node takes.
    async fn check(&self, terms: &DealTerms, kind: LegKind) -> Result<(), ChainError> {
        let (script, amount) = self.script_of(terms, kind)?;
        let locked = bitcoin::TxOut { value: bitcoin::Amount::from_sat(amount), script_pubkey: script.script_pubkey() };
        if let Some(reason) = self.node.dust(vec![locked]).await? {
            return Err(ChainError::rejected(format!(
                "the {kind:?} leg's {amount} litoshis: litecoind calls an output of that amount to the leg's script dust ({reason})"
            )));
        }
        let spend_fee = match &script {
            LegScript::Hashlock(script) => {
                let claim = Path::Claim { secret: [0; 32] };
                let to = self.key.script_pubkey();
                let built =
                    tx::spend(&self.key, script, bitcoin::OutPoint::null(), amount, to, claim, self.fees.floor_sat_vb);
                built
                    .map_err(|error| {
                        ChainError::rejected(format!("the {kind:?} leg cannot be claimed: {}", error.message))
                    })?
                    .fee
            }
            LegScript::Notary(script) => notary::notary_spend_fee(script),
        };
        let kept = amount.saturating_sub(spend_fee);
        let paid = bitcoin::TxOut { value: bitcoin::Amount::from_sat(kept), script_pubkey: self.key.script_pubkey() };
        if kept == 0 || self.node.dust(vec![paid]).await?.is_some() {
            return Err(ChainError::rejected(format!(
                "the {kind:?} leg's {amount} litoshis cannot pay for its own spend: a {spend_fee}-litoshi fee leaves \
                 {kept}, which litecoind calls dust"
            )));
        }
        Ok(())
    }
}

impl Submitter for LitecoinSubmitter {
    fn check_leg<'a>(&'a self, terms: &'a DealTerms, leg: LegKind) -> BoxFuture<'a, Result<(), ChainError>> {
        Box::pin(self.check(terms, leg))
    }

    fn network(&self) -> NetworkId {
        self.network
    }

    fn account(&self) -> Address {
        self.key.account()
    }

    fn submit<'a>(&'a self, terms: &'a DealTerms, op: &'a EscrowOp) -> BoxFuture<'a, Result<Receipt, ChainError>> {
        Box::pin(self.run(terms, op))
    }

    fn leg_state<'a>(
        &'a self,
        terms: &'a DealTerms,
        leg: LegKind,
    ) -> BoxFuture<'a, Result<Option<ReservationState>, ChainError>> {
        Box::pin(async move {
            let (script, amount) = self.script_of(terms, leg)?;
            Ok(match self.locate(&script, amount).await? {
                Located::Nothing => None,
                Located::Unspent { .. } => Some(ReservationState::Reserved),
                Located::Spent { spend, .. } if spend.executed() => Some(ReservationState::Executed),
                Located::Spent { .. } => Some(ReservationState::Cancelled),
            })
        })
    }
}

/// A Litecoin leg is never held, so no verdict resolves one.
fn no_verdicts() -> ChainError {
    ChainError::rejected("a Litecoin leg is never held for an inspection period: there is no verdict to present")
}
