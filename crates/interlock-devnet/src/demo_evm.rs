//! `interlock demo --evm`: the demo's world with beta as an EVM chain.
//!
//! alpha stays an embedded ledger (buyer holds USD, seller GOLD). beta is a fresh
//! anvil mining a block every [`BLOCK_TIME_MS`], with the escrow contract, an
//! ERC-20 `USDC` (buyer holds 1,000) and an ERC-721 collection `DEED` (seller
//! holds item #1). The runtime follows beta at a depth of [`CONFIRMATIONS`].

use crate::demo::Plan;
use crate::runtime::{EvmSide, Runtime};
use crate::setup::{self, code, Holder, ALPHA, BETA};
use anyhow::Context as _;
use interlock_core::saga::{expected_request, Role};
use interlock_core::{Address, Asset, DealTerms, ItemId, LegKind, Mode, NetworkId, ReservationState};
use interlock_evm::alloy::primitives::{Address as EvmAddress, U256};
use interlock_evm::alloy::providers::Provider;
use interlock_evm::chain::{core_address, evm_reservation, AssetBinding, AssetMap, EvmEscrow, EvmFollower};
use interlock_evm::devnet::Devnet;
use interlock_evm::SlotState;
use interlock_ledger::SqliteStore;
use std::collections::BTreeMap;
use std::path::Path;

/// beta's block interval.
pub const BLOCK_TIME_MS: u64 = 500;
/// Blocks that must stand on an event before a saga hears of it (1: its own block).
pub const CONFIRMATIONS: u64 = 2;
const BUYER_USDC: u64 = 1_000;

/// beta as the demo sees it. Dropping it stops anvil.
pub struct EvmWorld {
    devnet: Devnet,
    assets: AssetMap,
    token: EvmAddress,
    items: EvmAddress,
}

impl EvmWorld {
    pub fn network(&self) -> NetworkId {
        BETA
    }

    pub fn endpoint(&self) -> &str {
        self.devnet.anvil.endpoint()
    }

    pub fn account(&self, role: Role) -> Address {
        core_address(self.evm_account(role))
    }

    fn evm_account(&self, role: Role) -> EvmAddress {
        self.devnet.accounts[if role == Role::Buyer { 1 } else { 2 }]
    }

    pub fn describe(&self) -> String {
        format!(
            "buyer holds 1000 USD on alpha and {BUYER_USDC} USDC (ERC-20 {}) on beta; seller holds 500 GOLD on alpha and DEED #1 (ERC-721 {}) on beta; escrow contract {}",
            self.token,
            self.items,
            self.devnet.escrow.address()
        )
    }

    /// Both parties' USDC and DEED #1 on beta: party, then asset.
    pub fn balances(&self, runtime: &Runtime<SqliteStore>) -> anyhow::Result<BTreeMap<String, BTreeMap<String, u128>>> {
        let tokio = &runtime.evm().context("the runtime has an EVM network")?.tokio;
        let owner = tokio.block_on(self.devnet.item_owner(self.items, U256::from(1u64)))?;
        let mut out = BTreeMap::new();
        for (party, role) in [("buyer", Role::Buyer), ("seller", Role::Seller)] {
            let account = self.evm_account(role);
            let usdc = tokio.block_on(self.devnet.token_balance(self.token, account))?;
            let assets = BTreeMap::from([
                ("USDC".to_owned(), usdc.to::<u128>()),
                ("DEED 1".to_owned(), u128::from(owner == account)),
            ]);
            out.insert(party.to_owned(), assets);
        }
        Ok(out)
    }

    /// The contract's slot for one leg of `terms`.
    pub fn leg_state(
        &self,
        runtime: &Runtime<SqliteStore>,
        terms: &DealTerms,
        leg: LegKind,
    ) -> anyhow::Result<Option<ReservationState>> {
        let tokio = &runtime.evm().context("the runtime has an EVM network")?.tokio;
        let reservation = evm_reservation(&self.assets, &expected_request(terms, terms.id(), leg))?;
        Ok(match tokio.block_on(self.devnet.escrow.state(&reservation))? {
            SlotState::Empty | SlotState::OpenWithOtherTerms => None,
            SlotState::Open => Some(ReservationState::Reserved),
            SlotState::Executed => Some(ReservationState::Executed),
            SlotState::Cancelled => Some(ReservationState::Cancelled),
        })
    }
}

/// Starts anvil, deploys and funds beta, opens alpha in `dir`, and returns the
/// runtime over both.
pub fn world(dir: &Path) -> anyhow::Result<(Runtime<SqliteStore>, EvmWorld)> {
    // Submissions run as tasks while the demo's rounds go on: they need worker threads.
    let tokio = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    let (devnet, token, items, head) = tokio.block_on(async {
        let devnet = Devnet::start_mining(3, Some(BLOCK_TIME_MS)).await?;
        let (buyer, seller) = (devnet.accounts[1], devnet.accounts[2]);
        let token = devnet.deploy_token().await?;
        devnet.fund_token(token, buyer, U256::from(BUYER_USDC)).await?;
        let items = devnet.deploy_items().await?;
        devnet.fund_item(items, seller, U256::from(1u64)).await?;
        let head = devnet.provider.get_block_number().await.map_err(|e| anyhow::anyhow!("evm node: {e}"))?;
        Ok::<_, anyhow::Error>((devnet, token, items, head))
    })?;
    let assets =
        AssetMap::new().bind(code("USDC"), AssetBinding::Erc20(token)).bind(code("DEED"), AssetBinding::Erc721(items));
    let escrow = EvmEscrow::new(BETA, devnet.escrow.clone(), devnet.provider.clone(), assets.clone());
    let follower =
        EvmFollower::new(BETA, devnet.provider.clone(), devnet.escrow.address(), assets.clone(), CONFIRMATIONS, head)?;
    let issues = [
        (ALPHA, Holder::Buyer, Asset::Fungible { code: code("USD"), amount: 1_000 }),
        (ALPHA, Holder::Seller, Asset::Fungible { code: code("GOLD"), amount: 500 }),
    ];
    let runtime = setup::world_on(dir, &[ALPHA], &issues, 3)?;
    let (buyer, seller) = (devnet.accounts[1], devnet.accounts[2]);
    let runtime = runtime.with_evm(EvmSide::new(escrow, follower, buyer, seller, tokio));
    Ok((runtime, EvmWorld { devnet, assets, token, items }))
}

/// The cross-platform deals: an ERC-721 delivery, an ERC-20 payment, and an
/// ERC-20 payment refunded at the decision deadline.
pub fn plans() -> Vec<Plan> {
    vec![
        Plan {
            title: "notary mode, 2 of 3 notaries: 250 USD on alpha (ledger) for DEED #1 (ERC-721) on beta (EVM)",
            mode: Mode::Notary,
            payment: (ALPHA, Asset::Fungible { code: code("USD"), amount: 250 }),
            delivery: (BETA, Asset::Unique { class: code("DEED"), item: ItemId::from_u128(1) }),
            seller_withholds: false,
        },
        Plan {
            title: "hashlock mode: 100 USDC (ERC-20) on beta (EVM) for 40 GOLD on alpha (ledger)",
            mode: Mode::Hashlock,
            payment: (BETA, Asset::Fungible { code: code("USDC"), amount: 100 }),
            delivery: (ALPHA, Asset::Fungible { code: code("GOLD"), amount: 40 }),
            seller_withholds: false,
        },
        Plan {
            title: "notary mode, the seller never reserves: 75 USDC (ERC-20) on beta (EVM) for 10 GOLD on alpha",
            mode: Mode::Notary,
            payment: (BETA, Asset::Fungible { code: code("USDC"), amount: 75 }),
            delivery: (ALPHA, Asset::Fungible { code: code("GOLD"), amount: 10 }),
            seller_withholds: true,
        },
    ]
}
