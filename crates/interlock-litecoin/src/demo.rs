//! `interlock demo --litecoin`: the demo's external network as a Litecoin
//! chain — a regtest litecoind in the demo's directory, a block every
//! [`BLOCK_TIME_MS`] on the real clock, buyer and seller each holding
//! [`COINS`] coins of one LTC. The runtime submits through
//! [`DemoChain::submitter`] and follows at a depth of [`CONFIRMATIONS`].

use crate::address::{format, Chain};
use crate::chain::Node;
use crate::regtest::{BlockProducer, Regtest};
use crate::submit::{FeeLimits, LitecoinSubmitter};
use crate::tx::Key;
use crate::LitecoinFollower;
use interlock_chain::demo::DemoDeal;
use interlock_chain::{ChainError, Cursor, Follower, NotarySigner, SpendDigest, Submitter};
use interlock_core::crypto::NotaryKey;
use interlock_core::saga::Role;
use interlock_core::{Address, Asset, AssetCode, DealTerms, LegKind, Mode, NetworkId, ReservationState};
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// The chain's block interval.
pub const BLOCK_TIME_MS: u64 = 1_000;
/// Blocks that must stand on an event before a saga hears of it.
pub const CONFIRMATIONS: u64 = 2;
/// Coins of one LTC each party starts with.
pub const COINS: usize = 4;
const FEES: FeeLimits = FeeLimits { floor_sat_vb: 1, cap_sat_vb: 50, replace_after_blocks: 3, urgent_within_s: 14 };

fn ltc(litoshis: u128) -> Asset {
    Asset::Fungible { code: AssetCode::new("LTC").expect("a valid code"), amount: litoshis }
}

/// The demo's Litecoin chain. Dropping it stops the node.
pub struct DemoChain {
    network: NetworkId,
    node: Regtest,
    keys: [Key; 2],
    fees: [Arc<AtomicU64>; 2],
    head: u64,
    /// The notaries' compressed keys, and where the parties' notary spends
    /// get their signatures (none until [`DemoChain::use_notaries`]).
    notary_keys: Vec<[u8; 33]>,
    notaries: Option<Arc<dyn NotarySigner>>,
    _producer: BlockProducer,
}

fn slot(role: Role) -> usize {
    usize::from(role != Role::Buyer)
}

impl DemoChain {
    /// Starts (or reopens) the node in `dir`, funds both parties, and starts
    /// mining a block a second. Must run within a tokio runtime.
    pub async fn start(network: NetworkId, dir: &Path) -> Result<DemoChain, ChainError> {
        let node = Regtest::start(dir).await?;
        let keys = [0xb1u8, 0x51].map(|seed| Key::from_bytes([seed; 32]).expect("a valid key"));
        for key in &keys {
            node.fund(&key.account(), crate::regtest::LITOSHIS_PER_LTC, COINS).await?;
        }
        node.mine(1).await?;
        let head = node.height().await?;
        let producer = node.produce_blocks(Duration::from_millis(BLOCK_TIME_MS));
        Ok(DemoChain {
            network,
            node,
            keys,
            fees: Default::default(),
            head,
            notary_keys: Vec::new(),
            notaries: None,
            _producer: producer,
        })
    }

    pub fn network(&self) -> NetworkId {
        self.network
    }

    pub fn introduce(&self) -> String {
        format!("a Litecoin chain (beta, litecoind regtest at {}, a block a second)", self.node.url())
    }

    pub fn account(&self, role: Role) -> Address {
        self.keys[slot(role)].account()
    }

    /// Settles notary legs named by `notaries`: the digest each of them signs
    /// for a spend (build the signer from it, then [`DemoChain::sign_with`]).
    pub fn notary_digest(&mut self, notaries: &[NotaryKey]) -> SpendDigest {
        self.notary_keys = notaries.iter().map(crate::notary::notary_public_key).collect();
        let keys = self.notary_keys.clone();
        Arc::new(move |request| crate::notary::spend_digest(request, &keys))
    }

    /// Where the parties' notary spends get the notaries' signatures.
    pub fn sign_with(&mut self, signer: Arc<dyn NotarySigner>) {
        self.notaries = Some(signer);
    }

    fn node(&self) -> Node {
        Node::new(self.node.rpc().clone())
    }

    /// `role`'s reservations, claims and refunds, signed with its key.
    pub fn submitter(&self, role: Role) -> Arc<dyn Submitter> {
        let key = self.keys[slot(role)].clone();
        let mut submitter = LitecoinSubmitter::new(self.network, self.node(), key, "LTC", FEES, self.head)
            .with_fee_counter(self.fees[slot(role)].clone());
        if let Some(signer) = &self.notaries {
            submitter = submitter.with_notaries(self.notary_keys.clone(), signer.clone());
        }
        Arc::new(submitter)
    }

    /// A follower of the chain from the funded head on.
    pub fn follower(&self) -> Box<dyn Follower> {
        let follower = LitecoinFollower::new(self.network, self.node(), CONFIRMATIONS, Cursor::start(self.head));
        Box::new(follower.with_notary_keys(self.notary_keys.clone()))
    }

    pub fn describe(&self) -> String {
        format!(
            "buyer ({}) and seller ({}) each hold {COINS} LTC on beta; LTC balances are in litoshis with the network fees each party paid counted back in",
            format(Chain::Regtest, &self.account(Role::Buyer)),
            format(Chain::Regtest, &self.account(Role::Seller)),
        )
    }

    /// Both parties' LTC in confirmed coins, fees paid counted back in: party, then asset.
    pub async fn balances(&self) -> Result<BTreeMap<String, BTreeMap<String, u128>>, ChainError> {
        let mut out = BTreeMap::new();
        for (party, role) in [("buyer", Role::Buyer), ("seller", Role::Seller)] {
            let coins = self.node().unspent(&self.keys[slot(role)].script_pubkey()).await?;
            let held = coins.iter().map(|coin| u128::from(coin.value)).sum::<u128>();
            let fees = u128::from(self.fees[slot(role)].load(Ordering::Relaxed));
            out.insert(party.to_owned(), BTreeMap::from([("LTC".to_owned(), held + fees)]));
        }
        Ok(out)
    }

    /// Where one leg of `terms` stands on the chain.
    pub async fn leg_state(&self, terms: &DealTerms, leg: LegKind) -> Result<Option<ReservationState>, ChainError> {
        self.submitter(Role::Buyer).leg_state(terms, leg).await
    }

    /// Deals with `ledger` the other network: by hashlock, LTC delivered for
    /// a payment there and LTC paid for a delivery there; by notary, LTC paid
    /// for a delivery there (the notaries sign each spend); and LTC refunded
    /// to the buyer when the seller never reserves.
    pub fn deals(&self, ledger: NetworkId) -> Vec<DemoDeal> {
        let chain = self.network;
        let usd = |amount| Asset::Fungible { code: AssetCode::new("USD").expect("valid"), amount };
        let gold = |amount| Asset::Fungible { code: AssetCode::new("GOLD").expect("valid"), amount };
        vec![
            DemoDeal {
                title: "hashlock mode: 100 USD on alpha (ledger) for 0.5 LTC on beta (Litecoin script)",
                mode: Mode::Hashlock,
                payment: (ledger, usd(100)),
                delivery: (chain, ltc(50_000_000)),
                seller_withholds: false,
            },
            DemoDeal {
                title: "hashlock mode: 0.25 LTC on beta (Litecoin script) for 40 GOLD on alpha (ledger)",
                mode: Mode::Hashlock,
                payment: (chain, ltc(25_000_000)),
                delivery: (ledger, gold(40)),
                seller_withholds: false,
            },
            DemoDeal {
                title: "notary mode, 2 of 3 notaries: 0.2 LTC on beta (Litecoin script) for 20 GOLD on alpha (ledger)",
                mode: Mode::Notary,
                payment: (chain, ltc(20_000_000)),
                delivery: (ledger, gold(20)),
                seller_withholds: false,
            },
            DemoDeal {
                title: "hashlock mode, the seller never reserves: 0.1 LTC on beta refunded after its lock time",
                mode: Mode::Hashlock,
                payment: (chain, ltc(10_000_000)),
                delivery: (ledger, gold(10)),
                seller_withholds: true,
            },
        ]
    }
}
