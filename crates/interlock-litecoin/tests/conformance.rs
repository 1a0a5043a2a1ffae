//! The platform conformance suite on a real litecoind (regtest): hashlock and
//! notary legs as P2WSH outputs, followed at a confirmation depth of 2. A
//! notary leg's spends take the suite's notaries' signatures over each spend
//! once the submitter holds a valid certificate. The platform holds no unique
//! items, and only an owner takes a lapsed or aborted leg back: the suite
//! checks that those are refused.

mod common;

use common::{Chain, NETWORK, UNIT};
use interlock_chain::conformance::{Actor, Harness, SuiteNotaries};
use interlock_chain::{BoxFuture, Capabilities, ChainError, Cursor, Follower, Platform, SpendDigest, Submitter};
use interlock_core::{Address, Asset, AssetCode, ItemId, NetworkId};
use interlock_litecoin::notary::{notary_public_key, spend_digest};
use interlock_litecoin::regtest::READY_HEIGHT;
use interlock_litecoin::{LitecoinFollower, LitecoinPlatform};
use std::sync::Arc;

const DEPTH: u64 = 2;

/// The suite's notaries' keys, as the legs' scripts name them.
fn notary_keys() -> Vec<[u8; 33]> {
    interlock_chain::conformance::notary_keys().iter().map(notary_public_key).collect()
}

struct LitecoinHarness {
    chain: Chain,
}

async fn harness() -> LitecoinHarness {
    LitecoinHarness { chain: Chain::start().await }
}

impl Harness for LitecoinHarness {
    fn network(&self) -> NetworkId {
        NETWORK
    }

    fn capabilities(&self) -> Capabilities {
        LitecoinPlatform::new(interlock_litecoin::Chain::Regtest).capabilities()
    }

    fn account(&self, actor: Actor) -> Address {
        self.chain.account(actor)
    }

    fn submitter(&self, actor: Actor) -> Arc<dyn Submitter> {
        let keys = notary_keys();
        let digest: SpendDigest = Arc::new(move |request| spend_digest(request, &keys));
        self.chain.notary_submitter(actor, notary_keys(), Arc::new(SuiteNotaries::new(digest)))
    }

    fn fungible(&self, amount: u128) -> Asset {
        self.chain.fungible(amount)
    }

    fn item(&self, number: u64) -> Asset {
        Asset::Unique {
            class: AssetCode::new("DEED").expect("valid code"),
            item: ItemId::from_u128(u128::from(number)),
        }
    }

    /// In the suite's units; fees paid are counted back in (the suite counts
    /// assets), and a holding that is not a whole number of units is an error.
    fn balance(&mut self, actor: Actor, asset: &Asset) -> BoxFuture<'_, Result<u128, ChainError>> {
        let unique = matches!(asset, Asset::Unique { .. });
        Box::pin(async move {
            if unique {
                return Ok(0);
            }
            let held = self.chain.holding(actor).await?;
            if held % UNIT != 0 {
                return Err(ChainError::fatal(format!("{actor:?} holds {held} litoshis: not whole units of {UNIT}")));
            }
            Ok(held / UNIT)
        })
    }

    fn now_ms(&mut self) -> BoxFuture<'_, Result<u64, ChainError>> {
        Box::pin(async move { Ok(self.chain.node.median_time().await? * 1000) })
    }

    fn advance(&mut self, ms: u64) -> BoxFuture<'_, Result<(), ChainError>> {
        Box::pin(self.chain.advance(ms))
    }

    fn settle(&mut self) -> BoxFuture<'_, Result<(), ChainError>> {
        Box::pin(self.chain.mine(DEPTH))
    }

    fn start(&self) -> Cursor {
        Cursor::start(READY_HEIGHT)
    }

    fn follower(&mut self, from: Cursor) -> BoxFuture<'_, Result<Box<dyn Follower>, ChainError>> {
        let follower = LitecoinFollower::new(NETWORK, self.chain.node(), DEPTH, from).with_notary_keys(notary_keys());
        Box::pin(async move { Ok(Box::new(follower) as Box<dyn Follower>) })
    }
}

interlock_chain::conformance_suite!(harness());
