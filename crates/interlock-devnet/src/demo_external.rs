//! The demo with an external chain: beta is a chain, not an embedded ledger.
//!
//! alpha stays an embedded ledger (buyer holds USD, seller GOLD). beta is a
//! chain its platform crate starts and funds (`interlock_evm::demo`,
//! `interlock_litecoin::demo`); the runtime reaches it through the platform
//! seam only, and what the demo shows of it (accounts, balances, leg states)
//! comes back as plain data.

use crate::demo::Plan;
use crate::runtime::{ExternalSide, Runtime};
use crate::setup::{self, code, Holder, ALPHA, BETA};
use anyhow::Context as _;
use interlock_chain::demo::DemoDeal;
use interlock_chain::{Follower, Submitter};
use interlock_core::saga::Role;
use interlock_core::{Address, Asset, DealTerms, LegKind, NetworkId, ReservationState};
use interlock_ledger::SqliteStore;
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

/// Which platform beta is in the demo.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum ExternalKind {
    /// A local anvil with the escrow contract, an ERC-20 and an ERC-721.
    Contract,
    /// A regtest litecoind, legs as P2WSH scripts.
    Litecoin,
}

/// The chain behind beta, started by its platform crate.
enum ExternalChain {
    Contract(interlock_evm::demo::DemoChain),
    Litecoin(interlock_litecoin::demo::DemoChain),
}

type PartyBalances = BTreeMap<String, BTreeMap<String, u128>>;

impl ExternalChain {
    fn network(&self) -> NetworkId {
        match self {
            ExternalChain::Contract(chain) => chain.network(),
            ExternalChain::Litecoin(chain) => chain.network(),
        }
    }
    fn introduce(&self) -> String {
        match self {
            ExternalChain::Contract(chain) => chain.introduce(),
            ExternalChain::Litecoin(chain) => chain.introduce(),
        }
    }
    fn account(&self, role: Role) -> Address {
        match self {
            ExternalChain::Contract(chain) => chain.account(role),
            ExternalChain::Litecoin(chain) => chain.account(role),
        }
    }
    fn describe(&self) -> String {
        match self {
            ExternalChain::Contract(chain) => chain.describe(),
            ExternalChain::Litecoin(chain) => chain.describe(),
        }
    }
    fn submitter(&self, role: Role) -> Arc<dyn Submitter> {
        match self {
            ExternalChain::Contract(chain) => chain.submitter(role),
            ExternalChain::Litecoin(chain) => chain.submitter(role),
        }
    }
    fn follower(&self) -> anyhow::Result<Box<dyn Follower>> {
        match self {
            ExternalChain::Contract(chain) => chain.follower(),
            ExternalChain::Litecoin(chain) => Ok(chain.follower()),
        }
    }
    async fn balances(&self) -> anyhow::Result<PartyBalances> {
        match self {
            ExternalChain::Contract(chain) => chain.balances().await,
            ExternalChain::Litecoin(chain) => Ok(chain.balances().await?),
        }
    }
    async fn leg_state(&self, terms: &DealTerms, leg: LegKind) -> anyhow::Result<Option<ReservationState>> {
        match self {
            ExternalChain::Contract(chain) => chain.leg_state(terms, leg).await,
            ExternalChain::Litecoin(chain) => Ok(chain.leg_state(terms, leg).await?),
        }
    }
    fn deals(&self, ledger: NetworkId) -> Vec<DemoDeal> {
        match self {
            ExternalChain::Contract(chain) => chain.deals(ledger),
            ExternalChain::Litecoin(chain) => chain.deals(ledger),
        }
    }
}

/// beta as the demo sees it. Dropping it stops the chain.
pub struct ExternalWorld {
    chain: ExternalChain,
}

impl ExternalWorld {
    pub fn network(&self) -> NetworkId {
        self.chain.network()
    }

    /// How the demo's first line names beta.
    pub fn introduce(&self) -> String {
        self.chain.introduce()
    }

    pub fn account(&self, role: Role) -> Address {
        self.chain.account(role)
    }

    pub fn describe(&self) -> String {
        self.chain.describe()
    }

    /// How much longer than on embedded ledgers a deal's windows are here: a
    /// chain confirms in seconds, and a Litecoin lock time is held to the
    /// median time past, which trails the clock by about six blocks.
    pub fn time_scale(&self) -> u64 {
        match self.chain {
            ExternalChain::Contract(_) => 8,
            ExternalChain::Litecoin(_) => 3,
        }
    }
    /// Both parties' assets on beta: party, then asset.
    pub fn balances(&self, runtime: &Runtime<SqliteStore>) -> anyhow::Result<BTreeMap<String, BTreeMap<String, u128>>> {
        let tokio = &runtime.external().context("the runtime has an external network")?.tokio;
        tokio.block_on(self.chain.balances())
    }

    /// beta's escrow slot for one leg of `terms`.
    pub fn leg_state(
        &self,
        runtime: &Runtime<SqliteStore>,
        terms: &DealTerms,
        leg: LegKind,
    ) -> anyhow::Result<Option<ReservationState>> {
        let tokio = &runtime.external().context("the runtime has an external network")?.tokio;
        tokio.block_on(self.chain.leg_state(terms, leg))
    }

    /// The cross-platform deals.
    pub fn plans(&self) -> Vec<Plan> {
        self.chain.deals(ALPHA)
    }
}

/// Starts beta as `kind`, opens alpha in `dir`, and returns the runtime over both.
pub fn world(dir: &Path, kind: ExternalKind) -> anyhow::Result<(Runtime<SqliteStore>, ExternalWorld)> {
    // Submissions run as tasks while the demo's rounds go on: they need worker threads.
    let tokio = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    let mut chain = match kind {
        ExternalKind::Contract => ExternalChain::Contract(tokio.block_on(interlock_evm::demo::DemoChain::start(BETA))?),
        ExternalKind::Litecoin => {
            let node_dir = dir.join("litecoin");
            ExternalChain::Litecoin(tokio.block_on(interlock_litecoin::demo::DemoChain::start(BETA, &node_dir))?)
        }
    };
    let issues = [
        (ALPHA, Holder::Buyer, Asset::Fungible { code: code("USD"), amount: 1_000 }),
        (ALPHA, Holder::Seller, Asset::Fungible { code: code("GOLD"), amount: 500 }),
    ];
    let mut runtime = setup::world_on(dir, &[ALPHA], &issues, 3)?;
    if let ExternalChain::Litecoin(chain) = &mut chain {
        // The chain's escrow takes the notaries' signatures over each spend:
        // the runtime's notaries give them for what they recorded.
        let digest = chain.notary_digest(runtime.notary_keys());
        chain.sign_with(runtime.spend_signers(digest));
    }
    let side = ExternalSide::new(chain.submitter(Role::Buyer), chain.submitter(Role::Seller), chain.follower()?, tokio);
    Ok((runtime.with_external(side), ExternalWorld { chain }))
}
