//! The demo with an external chain: beta is a chain, not an embedded ledger.
//!
//! alpha stays an embedded ledger (buyer holds USD, seller GOLD). beta is a
//! chain its platform crate starts and funds (`interlock_evm::demo`); the
//! runtime reaches it through the platform seam only, and what the demo shows
//! of it (accounts, balances, escrow slots) comes back as plain data.

use crate::demo::Plan;
use crate::runtime::{ExternalSide, Runtime};
use crate::setup::{self, code, Holder, ALPHA, BETA};
use anyhow::Context as _;
use interlock_core::saga::Role;
use interlock_core::{Asset, DealTerms, LegKind, ReservationState};
use interlock_evm::demo::DemoChain;
use interlock_ledger::SqliteStore;
use std::collections::BTreeMap;
use std::path::Path;

/// beta as the demo sees it. Dropping it stops the chain.
pub struct ExternalWorld {
    chain: DemoChain,
}

impl ExternalWorld {
    pub fn network(&self) -> interlock_core::NetworkId {
        self.chain.network()
    }

    /// How the demo's first line names beta.
    pub fn introduce(&self) -> String {
        self.chain.introduce()
    }

    pub fn account(&self, role: Role) -> interlock_core::Address {
        self.chain.account(role)
    }

    pub fn describe(&self) -> String {
        self.chain.describe()
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
        let deals = self.chain.deals(ALPHA).into_iter();
        deals
            .map(|deal| Plan {
                title: deal.title,
                mode: deal.mode,
                payment: deal.payment,
                delivery: deal.delivery,
                seller_withholds: deal.seller_withholds,
            })
            .collect()
    }
}

/// Starts beta, opens alpha in `dir`, and returns the runtime over both.
pub fn world(dir: &Path) -> anyhow::Result<(Runtime<SqliteStore>, ExternalWorld)> {
    // Submissions run as tasks while the demo's rounds go on: they need worker threads.
    let tokio = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    let chain = tokio.block_on(DemoChain::start(BETA))?;
    let issues = [
        (ALPHA, Holder::Buyer, Asset::Fungible { code: code("USD"), amount: 1_000 }),
        (ALPHA, Holder::Seller, Asset::Fungible { code: code("GOLD"), amount: 500 }),
    ];
    let runtime = setup::world_on(dir, &[ALPHA], &issues, 3)?;
    let side = ExternalSide::new(chain.submitter(Role::Buyer), chain.submitter(Role::Seller), chain.follower()?, tokio);
    Ok((runtime.with_external(side), ExternalWorld { chain }))
}
