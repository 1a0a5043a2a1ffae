//! One account's escrow operations on a Litecoin network. The chain enforces
//! the script; this submitter refuses, before anything is signed, what the
//! script would refuse and what the deal's rules forbid that a script cannot
//! express (a claim after the leg's expiry), each with the seam's typed error.

use crate::chain::{Located, Node, SpendIndex};
use crate::script::{HashlockScript, Spend};
use crate::tx::{self, Key, Path};
use interlock_chain::{BoxFuture, ChainError, Receipt, Submitter};
use interlock_core::crypto::Token;
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
        }
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
    fn script_of(&self, terms: &DealTerms, kind: LegKind) -> Result<(HashlockScript, u64), ChainError> {
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
        if !matches!(terms.settlement, Settlement::Hashlock { .. }) {
            return Err(ChainError::fatal(
                "platform litecoin settles hashlock deals only: its notary legs are not built yet",
            ));
        }
        if leg.keeper.is_some() {
            return Err(ChainError::fatal("a Litecoin leg names no keeper: its script pays only the keys it names"));
        }
        Ok((HashlockScript::of(terms, kind)?, amount))
    }

    async fn locate(&self, script: &HashlockScript, amount: u64) -> Result<Located, ChainError> {
        let mut index = self.index.lock().await;
        self.node.locate(&mut index, script, amount).await
    }

    async fn send(&self, built: tx::Built) -> Result<Receipt, ChainError> {
        let transaction = self.node.send(&built.transaction).await?;
        self.fees_paid.fetch_add(built.fee, Ordering::Relaxed);
        Ok(Receipt { transaction, height: None })
    }

    /// Sends a claim or refund at `rate` and remembers it for replacement.
    async fn spend(
        &self,
        script: &HashlockScript,
        from: bitcoin::OutPoint,
        value: u64,
        to: bitcoin::ScriptBuf,
        path: Path,
        rate: u64,
    ) -> Result<Receipt, ChainError> {
        let built = tx::spend(&self.key, script, from, value, to, path, rate)?;
        let (fee, vsize) = (built.fee, built.transaction.vsize() as u64);
        let tip = bitcoin::OutPoint { txid: built.transaction.compute_txid(), vout: 0 };
        let tip_value = built.transaction.output[0].value.to_sat();
        let height = self.node.tip().await?;
        let receipt = self.send(built).await?;
        let sent = Sent { transaction: receipt.transaction, tip, tip_value, fee, vsize, rate, height };
        self.sent.lock().unwrap_or_else(std::sync::PoisonError::into_inner).insert(script.reservation, sent);
        Ok(receipt)
    }

    /// Bumps this submitter's own claim or refund `pending` in the mempool
    /// when it has waited `replace_after_blocks` blocks: a child spending its
    /// output back to this account pays for the package at the node's current
    /// estimate, and at least a quarter (and one litoshi per vbyte) above the
    /// last rate, within the cap (child pays for parent: litecoind takes no
    /// replacements by default). `None` when there is nothing to bump yet.
    async fn bump_if_stuck(
        &self,
        script: &HashlockScript,
        pending: interlock_core::Hash32,
    ) -> Result<Option<Receipt>, ChainError> {
        let sent =
            self.sent.lock().unwrap_or_else(std::sync::PoisonError::into_inner).get(&script.reservation).cloned();
        let Some(sent) = sent.filter(|sent| sent.transaction == pending) else { return Ok(None) };
        let height = self.node.tip().await?;
        if height < sent.height.saturating_add(self.fees.replace_after_blocks) {
            return Ok(None);
        }
        let estimate = self.node.fee_rate(self.fees.floor_sat_vb, self.fees.cap_sat_vb).await?;
        let rate = estimate.max(sent.rate + (sent.rate / 4).max(1)).min(self.fees.cap_sat_vb);
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
        self.sent.lock().unwrap_or_else(std::sync::PoisonError::into_inner).insert(script.reservation, bumped);
        // The operation is still the claim or refund; the child only pays for it.
        Ok(Some(Receipt { transaction: pending, height: None }))
    }

    async fn run(&self, terms: &DealTerms, op: &EscrowOp) -> Result<Receipt, ChainError> {
        let kind = self.leg_of(terms, op)?;
        let (script, amount) = self.script_of(terms, kind)?;
        let leg = terms.leg(kind);
        let _one_at_a_time = self.sending.lock().await;
        let located = self.locate(&script, amount).await?;
        if let Located::Spent { transaction, pending: true, .. } = located {
            if let Some(receipt) = self.bump_if_stuck(&script, transaction).await? {
                return Ok(receipt);
            }
        }
        if let Located::Spent { spend, .. } = located {
            let how = match spend {
                Spend::Claim { .. } => "executed",
                Spend::Refund { .. } => "cancelled",
            };
            return Err(ChainError::already_done(format!("the {kind:?} leg is already {how}")));
        }
        match op {
            EscrowOp::Reserve(request) => {
                if *request != expected_request(terms, terms.id(), kind) {
                    return Err(ChainError::rejected("the reserve request does not match the deal's terms"));
                }
                if self.key.account() != leg.owner {
                    return Err(ChainError::rejected(format!(
                        "only the leg's owner reserves it, not {}",
                        self.account()
                    )));
                }
                if located != Located::Nothing {
                    return Err(ChainError::already_done(format!("the {kind:?} leg is already reserved")));
                }
                let coins = self.node.unspent(&self.key.script_pubkey()).await?;
                let rate = self.node.fee_rate(self.fees.floor_sat_vb, self.fees.cap_sat_vb).await?;
                let built = tx::reserve(&self.key, &coins, script.script_pubkey(), amount, rate)?;
                self.send(built).await
            }
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
                if self.key.account() != leg.beneficiary {
                    return Err(ChainError::rejected(format!(
                        "only the leg's beneficiary executes it on this chain, not {}",
                        self.account()
                    )));
                }
                let Located::Unspent { outpoint, value } = located else {
                    return Err(ChainError::rejected(format!("the {kind:?} leg is not reserved")));
                };
                let median = self.node.median_time().await?;
                if median >= u64::from(script.expiry_s) {
                    return Err(ChainError::rejected(format!(
                        "the {kind:?} leg expired at {} (the chain's median time is {median}): it can no longer be executed",
                        script.expiry_s
                    )));
                }
                let rate = self.node.fee_rate(self.fees.floor_sat_vb, self.fees.cap_sat_vb).await?;
                let to = crate::address::pay_to(&leg.beneficiary)?;
                self.spend(&script, outpoint, value, to, Path::Claim { secret }, rate).await
            }
            EscrowOp::Cancel { certificate, .. } => {
                if certificate.is_some() {
                    return Err(ChainError::rejected(
                        "a hashlock leg is cancelled after its expiry, not by certificate",
                    ));
                }
                let Located::Unspent { outpoint, value } = located else {
                    return Err(ChainError::rejected(format!("the {kind:?} leg is not reserved: nothing to cancel")));
                };
                if self.key.account() != leg.owner {
                    return Err(ChainError::rejected(format!(
                        "on this chain only the owner's key takes a lapsed leg back, not {}",
                        self.account()
                    )));
                }
                let median = self.node.median_time().await?;
                if median <= u64::from(script.expiry_s) {
                    return Err(ChainError::rejected(format!(
                        "the {kind:?} leg expires at {} and the chain's median time is {median}: not yet cancellable",
                        script.expiry_s
                    )));
                }
                let rate = self.node.fee_rate(self.fees.floor_sat_vb, self.fees.cap_sat_vb).await?;
                let to = crate::address::pay_to(&leg.owner)?;
                self.spend(&script, outpoint, value, to, Path::Refund, rate).await
            }
        }
    }
}

impl Submitter for LitecoinSubmitter {
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
                Located::Spent { spend: Spend::Claim { .. }, .. } => Some(ReservationState::Executed),
                Located::Spent { spend: Spend::Refund { .. }, .. } => Some(ReservationState::Cancelled),
            })
        })
    }
}
