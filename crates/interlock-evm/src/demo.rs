//! `interlock demo --evm`: the demo's external network as an EVM chain.
//!
//! A fresh anvil mining a block every [`BLOCK_TIME_MS`], with the escrow
//! contract, an ERC-20 `USDC` (buyer holds [`BUYER_USDC`]) and an ERC-721
//! collection `DEED` (seller holds item #1). The demo's runtime submits through
//! [`DemoChain::submitter`] and follows the chain at a depth of [`CONFIRMATIONS`]
//! through [`DemoChain::follower`]; what it shows comes back as plain data.

use crate::chain::{core_address, evm_reservation, AssetBinding, AssetMap, EvmEscrow, EvmFollower};
use crate::devnet::Devnet;
use crate::{EvmSubmitter, SlotState};
use alloy::primitives::{Address as EvmAddress, U256};
use alloy::providers::Provider as _;
use interlock_chain::{Follower, Submitter};
use interlock_core::saga::{expected_request, Role};
use interlock_core::{Address, Asset, AssetCode, DealTerms, ItemId, LegKind, Mode, NetworkId, ReservationState};
use std::collections::BTreeMap;
use std::sync::Arc;

/// The chain's block interval.
pub const BLOCK_TIME_MS: u64 = 500;
/// Blocks that must stand on an event before a saga hears of it (1: its own block).
pub const CONFIRMATIONS: u64 = 2;
const BUYER_USDC: u64 = 1_000;

/// The demo's chain. Dropping it stops anvil.
pub struct DemoChain {
    network: NetworkId,
    devnet: Devnet,
    assets: AssetMap,
    token: EvmAddress,
    items: EvmAddress,
    /// The block the follower starts after: the chain's head once funded.
    head: u64,
}

pub use interlock_chain::demo::DemoDeal;

fn code(text: &str) -> AssetCode {
    AssetCode::new(text).expect("built-in asset codes are valid")
}

impl DemoChain {
    /// Starts anvil as `network`, deploys the escrow and both tokens, funds the parties.
    pub async fn start(network: NetworkId) -> anyhow::Result<DemoChain> {
        let devnet = Devnet::start_mining(3, Some(BLOCK_TIME_MS)).await?;
        let (buyer, seller) = (devnet.accounts[1], devnet.accounts[2]);
        let token = devnet.deploy_token().await?;
        devnet.fund_token(token, buyer, U256::from(BUYER_USDC)).await?;
        let items = devnet.deploy_items().await?;
        devnet.fund_item(items, seller, U256::from(1u64)).await?;
        let head = devnet.provider.get_block_number().await.map_err(|e| anyhow::anyhow!("evm node: {e}"))?;
        let assets = AssetMap::new()
            .bind(code("USDC"), AssetBinding::Erc20(token))
            .bind(code("DEED"), AssetBinding::Erc721(items));
        Ok(DemoChain { network, devnet, assets, token, items, head })
    }

    pub fn network(&self) -> NetworkId {
        self.network
    }

    /// How the demo introduces the chain.
    pub fn introduce(&self) -> String {
        format!("an EVM chain (beta, anvil at {})", self.devnet.anvil.endpoint())
    }

    pub fn account(&self, role: Role) -> Address {
        core_address(self.evm_account(role))
    }

    fn evm_account(&self, role: Role) -> EvmAddress {
        self.devnet.accounts[if role == Role::Buyer { 1 } else { 2 }]
    }

    /// `role`'s submissions to the escrow contract.
    pub fn submitter(&self, role: Role) -> Arc<dyn Submitter> {
        let escrow =
            EvmEscrow::new(self.network, self.devnet.escrow.clone(), self.devnet.provider.clone(), self.assets.clone());
        Arc::new(EvmSubmitter::new(escrow, self.evm_account(role)))
    }

    /// A follower of the contract's logs from the funded head on.
    pub fn follower(&self) -> anyhow::Result<Box<dyn Follower>> {
        let follower = EvmFollower::new(
            self.network,
            self.devnet.provider.clone(),
            self.devnet.escrow.address(),
            self.assets.clone(),
            CONFIRMATIONS,
            self.head,
        )?;
        Ok(Box::new(follower))
    }

    /// What the parties hold in the demo's world.
    pub fn describe(&self) -> String {
        format!(
            "buyer holds 1000 USD on alpha and {BUYER_USDC} USDC (ERC-20 {}) on beta; seller holds 500 GOLD on alpha and DEED #1 (ERC-721 {}) on beta; escrow contract {}",
            self.token,
            self.items,
            self.devnet.escrow.address()
        )
    }

    /// Both parties' USDC and DEED #1: party, then asset.
    pub async fn balances(&self) -> anyhow::Result<BTreeMap<String, BTreeMap<String, u128>>> {
        let owner = self.devnet.item_owner(self.items, U256::from(1u64)).await?;
        let mut out = BTreeMap::new();
        for (party, role) in [("buyer", Role::Buyer), ("seller", Role::Seller)] {
            let account = self.evm_account(role);
            let usdc = self.devnet.token_balance(self.token, account).await?;
            let usdc =
                u128::try_from(usdc).map_err(|_| anyhow::anyhow!("{party}'s USDC balance {usdc} exceeds 2^128"))?;
            let assets =
                BTreeMap::from([("USDC".to_owned(), usdc), ("DEED 1".to_owned(), u128::from(owner == account))]);
            out.insert(party.to_owned(), assets);
        }
        Ok(out)
    }

    /// The contract's slot for one leg of `terms`.
    pub async fn leg_state(&self, terms: &DealTerms, leg: LegKind) -> anyhow::Result<Option<ReservationState>> {
        let reservation = evm_reservation(&self.assets, &expected_request(terms, terms.id(), leg))?;
        Ok(match self.devnet.escrow.state(&reservation).await? {
            SlotState::Empty | SlotState::OpenWithOtherTerms => None,
            SlotState::Open => Some(ReservationState::Reserved),
            SlotState::Held => Some(ReservationState::Held),
            SlotState::Executed => Some(ReservationState::Executed),
            SlotState::Cancelled => Some(ReservationState::Cancelled),
        })
    }

    /// The cross-platform deals with `ledger` the other network: an ERC-721
    /// delivery, an ERC-20 payment, and an ERC-20 payment refunded at the
    /// decision deadline.
    pub fn deals(&self, ledger: NetworkId) -> Vec<DemoDeal> {
        let chain = self.network;
        vec![
            DemoDeal {
                title: "notary mode, 2 of 3 notaries: 250 USD on alpha (ledger) for DEED #1 (ERC-721) on beta (EVM)",
                mode: Mode::Notary,
                payment: (ledger, Asset::Fungible { code: code("USD"), amount: 250 }),
                delivery: (chain, Asset::Unique { class: code("DEED"), item: ItemId::from_u128(1) }),
                seller_withholds: false,
            },
            DemoDeal {
                title: "hashlock mode: 100 USDC (ERC-20) on beta (EVM) for 40 GOLD on alpha (ledger)",
                mode: Mode::Hashlock,
                payment: (chain, Asset::Fungible { code: code("USDC"), amount: 100 }),
                delivery: (ledger, Asset::Fungible { code: code("GOLD"), amount: 40 }),
                seller_withholds: false,
            },
            DemoDeal {
                title: "notary mode, the seller never reserves: 75 USDC (ERC-20) on beta (EVM) for 10 GOLD on alpha",
                mode: Mode::Notary,
                payment: (chain, Asset::Fungible { code: code("USDC"), amount: 75 }),
                delivery: (ledger, Asset::Fungible { code: code("GOLD"), amount: 10 }),
                seller_withholds: true,
            },
        ]
    }
}
