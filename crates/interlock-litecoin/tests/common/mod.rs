//! A regtest chain with three funded accounts, for the Litecoin tests.

#![allow(dead_code)]

use bitcoin::{OutPoint, ScriptBuf};
use interlock_chain::conformance::{Actor, FUNDS};
use interlock_chain::{ChainError, Submitter};
use interlock_core::crypto::{PartyKey, Secret};
use interlock_core::{Address, Asset, AssetCode, DealTerms, Leg, NetworkId, NotaryAddress, Policy, Settlement};
use interlock_litecoin::chain::Node;
use interlock_litecoin::regtest::{Regtest, READY_HEIGHT};
use interlock_litecoin::tx::Key;
use interlock_litecoin::{FeeLimits, LitecoinSubmitter};
use serde_json::json;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

pub const NETWORK: NetworkId = NetworkId(3);
/// Litoshis per unit of the conformance suite's amounts: its smallest amounts
/// must stay above the node's dust limit.
pub const UNIT: u128 = 10_000;
/// How close to its deadline a spend is urgent here.
pub const URGENT_WITHIN_S: u64 = 600;
/// Coins each account starts with.
const COINS: usize = 6;

pub fn ltc() -> AssetCode {
    AssetCode::new("LTC").expect("valid code")
}

/// A regtest node, three accounts with coins, and a clock of our own: every
/// block is mined at a time this chain sets (`setmocktime`), one second after
/// the last unless the clock was moved.
pub struct Chain {
    pub node: Regtest,
    _dir: tempfile::TempDir,
    keys: [Key; 3],
    fees: [Arc<AtomicU64>; 3],
    clock_s: u64,
}

fn index(actor: Actor) -> usize {
    match actor {
        Actor::Buyer => 0,
        Actor::Seller => 1,
        Actor::Stranger => 2,
    }
}

impl Chain {
    pub async fn start() -> Chain {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let node = match Regtest::start(dir.path()).await {
            Ok(node) => node,
            Err(error) => panic!("cannot start a regtest litecoind: {error}"),
        };
        let keys = [0xb1u8, 0x51, 0x5e].map(|seed| Key::from_bytes([seed; 32]).expect("a valid key"));
        let tip: serde_json::Value = node
            .rpc()
            .call(
                "getblockheader",
                json!([node.rpc().call::<String>("getbestblockhash", json!([])).await.expect("tip")]),
            )
            .await
            .expect("tip header");
        let clock_s = tip.get("time").and_then(serde_json::Value::as_u64).expect("a block time");
        let mut chain = Chain { node, _dir: dir, keys, fees: Default::default(), clock_s };
        let each = u64::try_from((FUNDS / COINS as u128 + 100) * UNIT).expect("fits");
        for key in &chain.keys {
            chain.node.fund(&key.account(), each, COINS).await.expect("fund an account");
        }
        chain.mine(1).await.expect("confirm the funding");
        chain
    }

    pub fn key(&self, actor: Actor) -> &Key {
        &self.keys[index(actor)]
    }

    pub fn account(&self, actor: Actor) -> Address {
        self.key(actor).account()
    }

    pub fn node(&self) -> Node {
        Node::new(self.node.rpc().clone())
    }

    pub fn submitter(&self, actor: Actor) -> Arc<dyn Submitter> {
        let fees =
            FeeLimits { floor_sat_vb: 1, cap_sat_vb: 100, replace_after_blocks: 2, urgent_within_s: URGENT_WITHIN_S };
        let submitter =
            LitecoinSubmitter::new(NETWORK, self.node(), self.key(actor).clone(), "LTC", fees, READY_HEIGHT)
                .with_fee_counter(self.fees[index(actor)].clone());
        Arc::new(submitter)
    }

    /// `actor`'s submitter for notary legs too, whose scripts name the
    /// notaries by `notary_keys`, with `signer` giving their signatures.
    pub fn notary_submitter(
        &self,
        actor: Actor,
        notary_keys: Vec<[u8; 33]>,
        signer: Arc<dyn interlock_chain::NotarySigner>,
    ) -> Arc<dyn Submitter> {
        let fees =
            FeeLimits { floor_sat_vb: 1, cap_sat_vb: 100, replace_after_blocks: 2, urgent_within_s: URGENT_WITHIN_S };
        let submitter =
            LitecoinSubmitter::new(NETWORK, self.node(), self.key(actor).clone(), "LTC", fees, READY_HEIGHT)
                .with_fee_counter(self.fees[index(actor)].clone())
                .with_notaries(notary_keys, signer);
        Arc::new(submitter)
    }

    /// Mines `blocks` blocks, each a second after the last.
    pub async fn mine(&mut self, blocks: u64) -> Result<(), ChainError> {
        for _ in 0..blocks {
            self.clock_s += 1;
            self.node.set_time(self.clock_s).await?;
            self.node.mine(1).await?;
        }
        Ok(())
    }

    /// Moves the clock `ms` forward, then mines enough blocks that the
    /// chain's median time past passes it.
    pub async fn advance(&mut self, ms: u64) -> Result<(), ChainError> {
        self.clock_s += ms.div_ceil(1000);
        self.mine(12).await
    }

    /// The litoshis `actor` holds in confirmed coins, plus every fee it paid:
    /// the suite counts assets, not the network's fees.
    pub async fn holding(&mut self, actor: Actor) -> Result<u128, ChainError> {
        self.mine(1).await?;
        let coins = self.node().unspent(&self.key(actor).script_pubkey()).await?;
        let held: u64 = coins.iter().map(|coin| coin.value).sum();
        Ok(u128::from(held) + u128::from(self.fees[index(actor)].load(Ordering::Relaxed)))
    }

    pub fn fungible(&self, amount: u128) -> Asset {
        Asset::Fungible { code: ltc(), amount: amount * UNIT }
    }
}

/// A deal on the chain: the buyer pays `payment`, the seller delivers `delivery`.
fn deal(chain: &Chain, settlement: Settlement, payment: Asset, delivery: Asset, nonce: u64) -> DealTerms {
    let leg = |asset, owner, beneficiary| Leg {
        network: NETWORK,
        asset,
        owner: chain.account(owner),
        beneficiary: chain.account(beneficiary),
        keeper: None,
    };
    DealTerms {
        buyer: PartyKey::from_seed([0xb1; 32]).public(),
        seller: PartyKey::from_seed([0x51; 32]).public(),
        payment: leg(payment, Actor::Buyer, Actor::Seller),
        delivery: leg(delivery, Actor::Seller, Actor::Buyer),
        settlement,
        policy: Policy::default(),
        observers: Vec::new(),
        dependents: Vec::new(),
        nonce,
    }
}

/// A hashlock deal on the chain, the delivery expiring in an hour, the payment in two.
pub fn hashlock_deal(
    chain: &Chain,
    now_ms: u64,
    secret: &Secret,
    payment: Asset,
    delivery: Asset,
    nonce: u64,
) -> DealTerms {
    let settlement = Settlement::Hashlock {
        hash: secret.hash(),
        payment_expiry_ms: now_ms + 7_200_000,
        delivery_expiry_ms: now_ms + 3_600_000,
        margin_ms: 600_000,
    };
    deal(chain, settlement, payment, delivery, nonce)
}

/// A notary deal on the chain: `threshold` of `notaries` decide within the
/// hour, and the reservations' backstop expiry is two hours away.
pub fn notary_deal(
    chain: &Chain,
    now_ms: u64,
    notaries: &[NotaryAddress],
    threshold: u8,
    payment: Asset,
    delivery: Asset,
    nonce: u64,
) -> DealTerms {
    let settlement = Settlement::Notary {
        notaries: notaries.to_vec(),
        threshold,
        decision_deadline_ms: now_ms + 3_600_000,
        backstop_expiry_ms: now_ms + 7_200_000,
    };
    deal(chain, settlement, payment, delivery, nonce)
}

/// Pays `amount` litoshis of `actor`'s coins to `script_pubkey` with a plain
/// transaction (a reservation's shape: the paid output first, change after)
/// and mines it: the paid output and its value.
pub async fn pay_to_script(chain: &mut Chain, actor: Actor, script_pubkey: ScriptBuf, amount: u64) -> (OutPoint, u64) {
    let key = chain.key(actor).clone();
    let coins = chain.node().unspent(&key.script_pubkey()).await.expect("the payer's coins");
    let built = interlock_litecoin::tx::reserve(&key, &coins, script_pubkey, amount, 2).expect("a reservation");
    let txid = built.transaction.compute_txid();
    chain.node().send(&built.transaction).await.expect("the node takes the reservation");
    chain.mine(1).await.expect("mine the reservation");
    (OutPoint { txid, vout: 0 }, amount)
}
