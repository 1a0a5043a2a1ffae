//! Transactions that wait: a claim priced below a base fee that jumped is
//! replaced (same nonce, higher fees) until it is mined; a submitter that
//! restarts, or whose account sent elsewhere, neither reuses nor skips a nonce.
//! A claim near its leg's expiry is urgent: replaced after every block.
//! anvil mines only when told to (`evm_setAutomine false`, `evm_mine`).

mod common;

use common::{secret, EVM, HOUR_MS};
use interlock_core::{reservation_id, saga::expected_request, DealTerms, EscrowOp, LegKind, Token};
use interlock_evm::alloy::consensus::Transaction as _;
use interlock_evm::alloy::primitives::{Address, U256};
use interlock_evm::alloy::providers::Provider;
use interlock_evm::chain::{evm_reservation, AssetMap, EvmEscrow, FeePolicy};
use interlock_evm::devnet::Devnet;
use interlock_evm::SlotState;
use interlock_evm::Submitted;
use std::time::Duration;

const GWEI: u128 = 1_000_000_000;
/// The base fee the chain jumps to: far above a first offer on a quiet chain.
const SPIKE_WEI: u128 = 50 * GWEI;
/// Blocks a test mines while waiting for a submission, at most.
const TEST_BLOCKS_MAX: usize = 40;

struct World {
    devnet: Devnet,
    assets: AssetMap,
}

impl World {
    async fn start() -> World {
        let (devnet, assets) = common::usdc_devnet(None).await;
        World { devnet, assets }
    }

    /// A submitter's escrow with its own nonce numbering: a new one is a restart.
    fn escrow(&self, replace_after_blocks: u64) -> EvmEscrow {
        self.escrow_with(FeePolicy { replace_after_blocks, ..FeePolicy::default() })
    }

    fn escrow_with(&self, fees: FeePolicy) -> EvmEscrow {
        EvmEscrow::new(EVM, self.devnet.escrow.clone(), self.devnet.provider.clone(), self.assets.clone())
            .with_fees(fees)
    }

    fn payer(&self) -> Address {
        self.devnet.accounts[1]
    }

    fn payee(&self) -> Address {
        self.devnet.accounts[2]
    }

    /// A hashlock deal paying 100 USDC from the payer to the payee, expiring in an hour.
    async fn terms(&self, nonce: u64) -> DealTerms {
        common::usdc_terms(&self.devnet, nonce, 100, HOUR_MS).await
    }

    async fn call(&self, method: &'static str, params: serde_json::Value) -> serde_json::Value {
        self.devnet
            .provider
            .raw_request(method.into(), params)
            .await
            .unwrap_or_else(|error| panic!("{method}: {error}"))
    }

    async fn automine(&self, on: bool) {
        self.call("evm_setAutomine", serde_json::json!([on])).await;
    }

    async fn mine(&self) {
        self.call("evm_mine", serde_json::json!([])).await;
    }

    async fn nonce(&self, account: Address, pending: bool) -> u64 {
        let count = self.devnet.provider.get_transaction_count(account);
        if pending { count.pending().await } else { count.latest().await }.expect("transaction count")
    }

    /// Waits until `account` has `count` transactions pending or mined.
    async fn until_pending(&self, account: Address, count: u64) {
        for _ in 0..200 {
            if self.nonce(account, true).await >= count {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("{account} never had {count} transactions pending");
    }

    async fn state(&self, terms: &DealTerms) -> SlotState {
        let reservation = evm_reservation(&self.assets, &request(terms)).unwrap();
        self.devnet.escrow.state(&reservation).await.unwrap()
    }
}

fn request(terms: &DealTerms) -> interlock_core::ReserveRequest {
    expected_request(terms, terms.id(), LegKind::Payment)
}

fn reserve(terms: &DealTerms) -> EscrowOp {
    EscrowOp::Reserve(request(terms))
}

/// Reserves the payment of `terms`, stops automining, and sends the payee's
/// claim through `escrow` while every block's base fee is [`SPIKE_WEI`];
/// returns the claim's outcome and the blocks mined until it was mined.
async fn claim_under_a_spike(world: &World, terms: &DealTerms, escrow: &EvmEscrow) -> (Submitted, u64, usize) {
    world.escrow(3).submit(world.payer(), terms, &reserve(terms)).await.expect("reserve");
    world.automine(false).await;
    let execute =
        EscrowOp::Execute { reservation: reservation_id(terms.id(), LegKind::Payment), token: Token::Secret(secret()) };
    let payee = world.payee();
    let nonce = world.nonce(payee, false).await;
    let claim = tokio::spawn({
        let (escrow, terms) = (escrow.clone(), terms.clone());
        async move { escrow.submit(payee, &terms, &execute).await }
    });
    // The claim is priced at the quiet chain's base fee; then the base fee jumps.
    world.until_pending(payee, nonce + 1).await;
    let mut mined = 0;
    while !claim.is_finished() && mined < TEST_BLOCKS_MAX {
        world.call("anvil_setNextBlockBaseFeePerGas", serde_json::json!([U256::from(SPIKE_WEI)])).await;
        world.mine().await;
        mined += 1;
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
    let submitted = claim.await.unwrap().expect("the claim is mined, replaced at a higher fee");
    (submitted, nonce, mined)
}

#[tokio::test]
async fn a_claim_priced_below_a_base_fee_spike_is_replaced_until_it_is_mined() {
    let world = World::start().await;
    let terms = world.terms(1).await;
    let escrow = world.escrow(1);
    let (submitted, nonce, mined) = claim_under_a_spike(&world, &terms, &escrow).await;
    let payee = world.payee();
    assert!(escrow.replacements() >= 1, "the first offer was below the spike, so it was replaced");
    assert_eq!(world.state(&terms).await, SlotState::Executed);
    let tx = world.devnet.provider.get_transaction_by_hash(submitted.tx_hash).await.unwrap().expect("mined");
    assert_eq!(tx.inner.nonce(), nonce, "the replacement kept the nonce");
    assert!(tx.inner.max_fee_per_gas() >= SPIKE_WEI, "the mined version pays the spike");
    assert_eq!(world.nonce(payee, false).await, nonce + 1, "one transaction mined, no nonce skipped");
    println!("claim mined after {mined} blocks and {} replacement(s)", escrow.replacements());
    assert_eq!(escrow.urgent_offers(), 0, "an hour from its expiry a claim is not urgent");
}

#[tokio::test]
async fn a_claim_near_its_expiry_is_replaced_after_every_block_it_waits() {
    let world = World::start().await;
    let terms = world.terms(1).await;
    // A patient policy (replace after 20 blocks) that counts the hour left
    // to the payment's expiry as near.
    let fees = FeePolicy { replace_after_blocks: 20, urgent_within_s: 2 * HOUR_MS / 1_000, ..FeePolicy::default() };
    let escrow = world.escrow_with(fees);
    let (submitted, _, mined) = claim_under_a_spike(&world, &terms, &escrow).await;
    assert!(mined <= 5, "urgent: replaced after the first block it waited, not the 20th; mined after {mined}");
    assert!(escrow.replacements() >= 1 && escrow.urgent_offers() >= 2, "the first offer and its replacement");
    let tx = world.devnet.provider.get_transaction_by_hash(submitted.tx_hash).await.unwrap().expect("mined");
    assert!(tx.inner.max_priority_fee_per_gas().unwrap_or_default() >= 4 * GWEI, "twice the tip, doubled: {tx:?}");
    assert_eq!(world.state(&terms).await, SlotState::Executed);
}

#[tokio::test]
async fn a_restarted_submitter_neither_reuses_nor_skips_a_nonce() {
    let world = World::start().await;
    let (first, second) = (world.terms(1).await, world.terms(2).await);
    world.automine(false).await;
    let payer = world.payer();
    let nonce = world.nonce(payer, false).await;
    // The first submitter sends, then stops before its transaction is mined.
    let crashed = tokio::spawn({
        let (escrow, first) = (world.escrow(3), first.clone());
        async move { escrow.submit(payer, &first, &reserve(&first)).await }
    });
    world.until_pending(payer, nonce + 1).await;
    crashed.abort();
    // Its successor reads the pending nonce from the node.
    let restarted = tokio::spawn({
        let (escrow, second) = (world.escrow(3), second.clone());
        async move { escrow.submit(payer, &second, &reserve(&second)).await }
    });
    world.until_pending(payer, nonce + 2).await;
    let mut mined = 0;
    while !restarted.is_finished() && mined < TEST_BLOCKS_MAX {
        world.mine().await;
        mined += 1;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let submitted = restarted.await.unwrap().expect("the restarted submitter's reservation is mined");
    let tx = world.devnet.provider.get_transaction_by_hash(submitted.tx_hash).await.unwrap().expect("mined");
    assert_eq!(tx.inner.nonce(), nonce + 1, "the nonce after the one its predecessor sent");
    assert_eq!(world.nonce(payer, false).await, nonce + 2, "both mined: none reused, none skipped");
    assert_eq!(world.state(&first).await, SlotState::Open);
    assert_eq!(world.state(&second).await, SlotState::Open);
}

#[tokio::test]
async fn a_submitter_whose_account_sent_elsewhere_reads_its_nonce_again() {
    let world = World::start().await;
    let escrow = world.escrow(3);
    let payer = world.payer();
    let first = world.terms(1).await;
    escrow.submit(payer, &first, &reserve(&first)).await.expect("numbers its nonces from the node");
    // The same account reserves through another client: the submitter's count is stale.
    let elsewhere = world.terms(2).await;
    world.devnet.escrow.reserve(&evm_reservation(&world.assets, &request(&elsewhere)).unwrap()).await.unwrap();
    let third = world.terms(3).await;
    let submitted = escrow.submit(payer, &third, &reserve(&third)).await.expect("\"nonce too low\" reads it again");
    let tx = world.devnet.provider.get_transaction_by_hash(submitted.tx_hash).await.unwrap().expect("mined");
    let before = world.nonce(payer, false).await;
    assert_eq!(tx.inner.nonce() + 1, before, "the node's next nonce, none skipped");
    assert_eq!(world.state(&third).await, SlotState::Open);
}
