//! Sending one escrow transaction until it is mined: a nonce from the
//! account's own numbering, EIP-1559 fees, and replacements at higher fees
//! (same nonce) while it waits.
//!
//! A transaction not mined [`FeePolicy::replace_after_blocks`] blocks after it
//! was sent is sent again with the same nonce and calldata, its max fee and
//! tip each at least 12.5% higher (what nodes require of a replacement) and
//! the max fee at least what the current base fee asks, never above
//! [`FeePolicy::fee_cap_wei`]. Whichever of the versions is mined answers.
//!
//! A claim has a deadline: its leg's expiry, after which the owner takes the
//! asset back. Once the newest block's time is within
//! [`FeePolicy::urgent_within_s`] of it the claim is [`Urgency::Urgent`]: it
//! offers twice the tip, is replaced after every block that does not mine it,
//! and doubles its fees each time, up to the cap. A refund has no such race
//! (nothing but the owner can move an expired reservation), so it is priced
//! as any other transaction.
//!
//! Nonces: the first transaction of an account reads the node's pending
//! count (so a restarted submitter neither reuses a nonce its predecessor
//! sent nor skips one), later ones count on from there. A send the node
//! refuses as "nonce too low" (the account sent elsewhere) reads the count
//! again and retries once; any other failure forgets the account's count, so
//! the next transaction reads it again. A transaction whose nonce the node
//! cannot reach (its pending count stays below it for
//! [`NONCE_GAP_BLOCKS`] blocks: a reorganisation took away the transactions
//! before it) is sent again with the node's count.

use super::{EvmEscrow, FeePolicy};
use crate::client::{Submitted, RECEIPT_TIMEOUT_MS};
use crate::error::EvmError;
use crate::provider_error::{classify, Refusal};
use alloy::contract::{CallBuilder, CallDecoder};
use alloy::primitives::{Address, B256};
use alloy::providers::{DynProvider, Provider};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

/// Versions of one transaction sent (the first and its replacements), at most.
pub const REPLACEMENTS_MAX: usize = 32;
/// Blocks a transaction may wait, all its replacements included, before the
/// submission fails (to be retried later).
pub const SEND_BLOCKS_MAX: u64 = 256;
/// How often a waiting submission asks for its receipts and the chain's head.
const RECEIPT_POLL_MS: u64 = 50;
/// Sends of one operation, at most: the first, and one after reading the
/// nonce again.
const NONCE_ATTEMPTS_MAX: usize = 2;
/// New blocks during which the node's pending count stays below a sent
/// transaction's nonce before it counts as unreachable.
pub const NONCE_GAP_BLOCKS: u32 = 2;

/// How pressed a transaction is for time.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Urgency {
    Normal,
    /// A claim near its leg's expiry.
    Urgent,
}

impl Urgency {
    /// A claim expiring at `deadline_ms` (chain time), seen at a block of
    /// `head_ms`: urgent within the policy's window of its deadline.
    pub fn of(policy: &FeePolicy, deadline_ms: Option<u64>, head_ms: u64) -> Urgency {
        let window_ms = policy.urgent_within_s.saturating_mul(1_000);
        match deadline_ms {
            Some(deadline) if head_ms.saturating_add(window_ms) >= deadline => Urgency::Urgent,
            _ => Urgency::Normal,
        }
    }

    /// Blocks a version waits before it is replaced.
    pub fn replace_after_blocks(self, policy: &FeePolicy) -> u64 {
        match self {
            Urgency::Normal => policy.replace_after_blocks,
            Urgency::Urgent => 1,
        }
    }
}

/// What one offer pays per gas.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Fees {
    pub max_fee_wei: u128,
    pub tip_wei: u128,
}

impl Fees {
    /// The first offer: the policy's tip (twice it when urgent), and room for
    /// the base fee to rise.
    pub fn first(policy: &FeePolicy, base_fee_wei: u128, urgency: Urgency) -> Fees {
        let tip = match urgency {
            Urgency::Normal => policy.priority_fee_wei,
            Urgency::Urgent => policy.priority_fee_wei.saturating_mul(2),
        };
        let tip = tip.min(policy.fee_cap_wei);
        let max = base_fee_wei.saturating_mul(policy.base_fee_multiplier).saturating_add(tip);
        Fees { max_fee_wei: max.min(policy.fee_cap_wei), tip_wei: tip }
    }

    /// A replacement's offer: both fees at least 12.5% higher (rounded up;
    /// twice as high when urgent, which the cap may hold to the 12.5% nodes
    /// require), the max fee at least a first offer at `base_fee_wei`; `None`
    /// when the cap leaves no room for the 12.5%.
    pub fn bumped(self, policy: &FeePolicy, base_fee_wei: u128, urgency: Urgency) -> Option<Fees> {
        let least = |wei: u128| wei.saturating_add(wei.div_ceil(8)).max(wei + 1);
        let rise = |wei: u128| match urgency {
            Urgency::Normal => least(wei),
            Urgency::Urgent => wei.saturating_mul(2).max(least(wei)),
        };
        let tip = rise(self.tip_wei);
        let first = Fees::first(policy, base_fee_wei, urgency).max_fee_wei;
        let max = rise(self.max_fee_wei).max(first.saturating_add(tip));
        let capped = Fees { max_fee_wei: max.min(policy.fee_cap_wei), tip_wei: tip.min(policy.fee_cap_wei) };
        let enough = capped.max_fee_wei >= least(self.max_fee_wei) && capped.tip_wei >= least(self.tip_wei);
        enough.then_some(capped)
    }
}

/// What a send reads of the chain's newest block.
struct Head {
    base_fee_wei: u128,
    time_ms: u64,
}

/// Why a send failed.
enum Failed {
    /// The nonce was taken before anything was sent with it.
    NonceTaken,
    /// The nonce is above the node's pending count: nothing before it will
    /// be mined.
    NonceGap,
    Evm(EvmError),
}

impl EvmEscrow {
    /// Estimates gas first (a call that would revert fails here, with its reason,
    /// before it takes a nonce), then numbers, prices and sends it, replacing
    /// it while it waits; `deadline_ms` is a claim's: its leg's expiry.
    pub(super) async fn send<D: CallDecoder + Clone>(
        &self,
        from: Address,
        call: CallBuilder<&DynProvider, D>,
        deadline_ms: Option<u64>,
    ) -> Result<Submitted, EvmError> {
        let call = call.from(from);
        let gas = call.estimate_gas().await.map_err(EvmError::from_contract)?;
        // A 20% margin over the estimate: state can move between estimate and mining.
        let call = call.gas(gas + gas / 5);
        for _ in 0..NONCE_ATTEMPTS_MAX {
            let head = self.head().await?;
            let urgency = Urgency::of(&self.fees, deadline_ms, head.time_ms);
            self.count_offer(urgency);
            let fees = Fees::first(&self.fees, head.base_fee_wei, urgency);
            let nonce = self.take_nonce(from).await?;
            match self.send_until_mined((from, nonce), call.clone().nonce(nonce), fees, deadline_ms).await {
                Ok(submitted) => return Ok(submitted),
                Err(Failed::Evm(error @ EvmError::MinedReverted { .. })) => return Err(error),
                Err(Failed::Evm(error)) => {
                    // The node may not have taken this nonce: ask it for the next one again.
                    self.forget_nonce(from);
                    return Err(error);
                }
                Err(Failed::NonceTaken | Failed::NonceGap) => self.forget_nonce(from),
            }
        }
        Err(EvmError::Rpc(format!("{from}'s nonce was taken elsewhere {NONCE_ATTEMPTS_MAX} times in a row")))
    }

    /// Sends `call` (its nonce set) at `fees`, then waits, replacing it with
    /// higher fees every [`FeePolicy::replace_after_blocks`] blocks (every
    /// block once it is urgent), until one version is mined.
    async fn send_until_mined<D: CallDecoder + Clone>(
        &self,
        (from, nonce): (Address, u64),
        call: CallBuilder<&DynProvider, D>,
        mut fees: Fees,
        deadline_ms: Option<u64>,
    ) -> Result<Submitted, Failed> {
        let rpc = |error: alloy::transports::TransportError| Failed::Evm(EvmError::Rpc(error.to_string()));
        let mut sent: Vec<B256> = Vec::new();
        let first_block = self.provider.get_block_number().await.map_err(rpc)?;
        let mut head = (first_block, Instant::now());
        let mut gap_blocks = 0;
        loop {
            let offer = call.clone().max_fee_per_gas(fees.max_fee_wei).max_priority_fee_per_gas(fees.tip_wei);
            match offer.send().await {
                Ok(pending) => sent.push(*pending.tx_hash()),
                Err(error) => match (classify(&error.to_string()), sent.is_empty()) {
                    (Refusal::NonceTooLow, true) => return Err(Failed::NonceTaken),
                    // A version sent before may be mined (nonce too low), or
                    // still pending at fees this one does not beat enough:
                    // the receipts below tell.
                    (Refusal::NonceTooLow | Refusal::ReplacementUnderpriced | Refusal::AlreadyKnown, false) => {}
                    _ => return Err(Failed::Evm(EvmError::from_contract(error))),
                },
            }
            let sent_at = head.0;
            let mut priced_at = sent_at;
            loop {
                if let Some(submitted) = self.mined(&sent).await? {
                    return Ok(submitted);
                }
                let now = self.provider.get_block_number().await.map_err(rpc)?;
                if now != head.0 {
                    head = (now, Instant::now());
                    let pending = self.provider.get_transaction_count(from).pending().await.map_err(rpc)?;
                    gap_blocks = if pending < nonce { gap_blocks + 1 } else { 0 };
                    if gap_blocks >= NONCE_GAP_BLOCKS && self.mined(&sent).await?.is_none() {
                        return Err(Failed::NonceGap);
                    }
                }
                if now.saturating_sub(first_block) > SEND_BLOCKS_MAX
                    || head.1.elapsed() > Duration::from_millis(RECEIPT_TIMEOUT_MS)
                {
                    let last = sent.last().map_or_else(|| "nothing".to_owned(), B256::to_string);
                    let waited = now.saturating_sub(first_block);
                    return Err(Failed::Evm(EvmError::Rpc(format!(
                        "transaction {last} not mined after {waited} blocks and {} versions, at most {} wei per gas",
                        sent.len(),
                        fees.max_fee_wei
                    ))));
                }
                // Once per new block: is it time to replace this version?
                if now > priced_at && sent.len() < REPLACEMENTS_MAX {
                    priced_at = now;
                    let block = self.head().await.map_err(Failed::Evm)?;
                    let urgency = Urgency::of(&self.fees, deadline_ms, block.time_ms);
                    let due = now >= sent_at + urgency.replace_after_blocks(&self.fees);
                    if let Some(higher) = due.then(|| fees.bumped(&self.fees, block.base_fee_wei, urgency)).flatten() {
                        fees = higher;
                        self.count_offer(urgency);
                        self.replacements.fetch_add(1, Ordering::Relaxed);
                        break;
                    }
                }
                tokio::time::sleep(Duration::from_millis(RECEIPT_POLL_MS)).await;
            }
        }
    }

    /// The receipt of whichever of `sent` was mined, if one was.
    async fn mined(&self, sent: &[B256]) -> Result<Option<Submitted>, Failed> {
        for hash in sent {
            let receipt = self
                .provider
                .get_transaction_receipt(*hash)
                .await
                .map_err(|error| Failed::Evm(EvmError::Rpc(error.to_string())))?;
            let Some(receipt) = receipt else { continue };
            if !receipt.status() {
                return Err(Failed::Evm(EvmError::MinedReverted { tx_hash: receipt.transaction_hash }));
            }
            return Ok(Some(Submitted {
                tx_hash: receipt.transaction_hash,
                block_number: receipt.block_number.unwrap_or_default(),
                gas_used: receipt.gas_used,
            }));
        }
        Ok(None)
    }

    /// Transactions replaced with higher fees since this escrow was made.
    pub fn replacements(&self) -> u64 {
        self.replacements.load(Ordering::Relaxed)
    }

    /// The newest block's base fee and time.
    async fn head(&self) -> Result<Head, EvmError> {
        let block = crate::client::latest_block(&self.provider).await?;
        Ok(Head {
            base_fee_wei: u128::from(block.header.base_fee_per_gas.unwrap_or(0)),
            time_ms: block.header.timestamp.saturating_mul(1_000),
        })
    }

    fn count_offer(&self, urgency: Urgency) {
        if urgency == Urgency::Urgent {
            self.urgent_offers.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Offers priced as urgent (first offers and replacements) since this
    /// escrow was made.
    pub fn urgent_offers(&self) -> u64 {
        self.urgent_offers.load(Ordering::Relaxed)
    }

    /// The account's next nonce: the node's pending count the first time (and
    /// after it was forgotten), counted on here after that.
    async fn take_nonce(&self, from: Address) -> Result<u64, EvmError> {
        if let Some(nonce) = self.nonces.lock().expect("nonce lock").get_mut(&from) {
            *nonce += 1;
            return Ok(*nonce - 1);
        }
        let pending = self
            .provider
            .get_transaction_count(from)
            .pending()
            .await
            .map_err(|error| EvmError::Rpc(error.to_string()))?;
        let mut nonces = self.nonces.lock().expect("nonce lock");
        // Another task may have asked at the same time: the first answer wins.
        let next = nonces.entry(from).or_insert(pending);
        *next += 1;
        Ok(*next - 1)
    }

    /// Forgets every account's nonce, so the next submission asks the node: after
    /// a reorg took mined transactions away.
    pub fn reset_nonces(&self) {
        self.nonces.lock().expect("nonce lock").clear();
    }

    fn forget_nonce(&self, from: Address) {
        self.nonces.lock().expect("nonce lock").remove(&from);
    }
}

#[cfg(test)]
mod tests {
    use super::{FeePolicy, Fees, Urgency};
    use Urgency::{Normal, Urgent};

    const GWEI: u128 = 1_000_000_000;

    #[test]
    fn a_replacement_pays_at_least_an_eighth_more_and_never_above_the_cap() {
        let policy = FeePolicy { fee_cap_wei: 100 * GWEI, ..FeePolicy::default() };
        let first = Fees::first(&policy, GWEI, Normal);
        assert_eq!(first, Fees { max_fee_wei: 3 * GWEI, tip_wei: GWEI });
        let second = first.bumped(&policy, GWEI, Normal).expect("room under the cap");
        assert_eq!(second.tip_wei, GWEI + GWEI / 8);
        assert!(second.max_fee_wei * 8 >= first.max_fee_wei * 9);
        let spiked = second.bumped(&policy, 40 * GWEI, Normal).expect("room under the cap");
        assert!(spiked.max_fee_wei >= 80 * GWEI + spiked.tip_wei, "follows the base fee: {spiked:?}");
        let capped = spiked.bumped(&policy, 60 * GWEI, Normal).expect("up to the cap");
        assert_eq!(capped.max_fee_wei, 100 * GWEI);
        assert_eq!(capped.bumped(&policy, 60 * GWEI, Normal), None, "no room left under the cap");
        let tiny = Fees { max_fee_wei: 1, tip_wei: 0 };
        assert!(tiny.bumped(&policy, 0, Normal).is_some_and(|fees| fees.max_fee_wei >= 2 && fees.tip_wei >= 1));
    }

    #[test]
    fn a_claim_near_its_expiry_pays_more_and_is_replaced_every_block() {
        let policy =
            FeePolicy { urgent_within_s: 60, replace_after_blocks: 5, fee_cap_wei: 100 * GWEI, ..FeePolicy::default() };
        let deadline = Some(1_000_000);
        assert_eq!(Urgency::of(&policy, deadline, 1_000_000 - 60_001), Normal, "a minute and a bit before");
        assert_eq!(Urgency::of(&policy, deadline, 1_000_000 - 60_000), Urgent, "a minute before");
        assert_eq!(Urgency::of(&policy, deadline, 2_000_000), Urgent, "past it: still trying");
        assert_eq!(Urgency::of(&policy, None, 2_000_000), Normal, "a refund or a reservation has no deadline");
        assert_eq!((Normal.replace_after_blocks(&policy), Urgent.replace_after_blocks(&policy)), (5, 1));

        let first = Fees::first(&policy, GWEI, Urgent);
        assert_eq!(first.tip_wei, 2 * GWEI, "twice the tip");
        let second = first.bumped(&policy, GWEI, Urgent).expect("room under the cap");
        assert_eq!((second.tip_wei, second.max_fee_wei), (4 * GWEI, 2 * first.max_fee_wei), "doubled");
        let mut offer = second;
        while let Some(higher) = offer.bumped(&policy, GWEI, Urgent) {
            offer = higher;
        }
        assert_eq!(offer.max_fee_wei, 100 * GWEI, "up to the cap and no further");
        let near_cap = Fees { max_fee_wei: 80 * GWEI, tip_wei: GWEI };
        let held = near_cap.bumped(&policy, GWEI, Urgent).expect("the cap still leaves 12.5%");
        assert_eq!(held.max_fee_wei, 100 * GWEI, "the cap holds the doubling");
    }
}
