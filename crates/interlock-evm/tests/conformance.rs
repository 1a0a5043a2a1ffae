//! The platform conformance suite on a real anvil: the escrow contract behind
//! the seam, an ERC-20 for amounts and an ERC-721 for unique items, followed at
//! a confirmation depth of 2.

use interlock_chain::conformance::{Actor, Harness, FUNDS, ITEMS};
use interlock_chain::{BoxFuture, ChainError, Cursor, Follower, Submitter};
use interlock_core::{Address as CoreAddress, Asset, AssetCode, ItemId, NetworkId};
use interlock_evm::alloy::primitives::{Address, U256};
use interlock_evm::chain::{core_address, AssetBinding, AssetMap, EvmEscrow, EvmFollower};
use interlock_evm::devnet::Devnet;
use interlock_evm::{evm_error, EvmSubmitter};
use std::sync::Arc;

const NETWORK: NetworkId = NetworkId(2);
const DEPTH: u64 = 2;

struct EvmHarness {
    devnet: Devnet,
    assets: AssetMap,
    token: Address,
    items: Address,
}

fn usdc() -> AssetCode {
    AssetCode::new("USDC").expect("valid code")
}
fn deed() -> AssetCode {
    AssetCode::new("DEED").expect("valid code")
}

fn account(devnet: &Devnet, actor: Actor) -> Address {
    match actor {
        Actor::Buyer => devnet.accounts[1],
        Actor::Seller => devnet.accounts[2],
        Actor::Stranger => devnet.accounts[3],
    }
}

async fn harness() -> EvmHarness {
    let devnet = Devnet::start(4).await.unwrap_or_else(|error| panic!("{error}"));
    let token = devnet.deploy_token().await.expect("deploy the ERC-20");
    let items = devnet.deploy_items().await.expect("deploy the ERC-721");
    for actor in [Actor::Buyer, Actor::Seller, Actor::Stranger] {
        let to = account(&devnet, actor);
        devnet.fund_token(token, to, U256::from(FUNDS)).await.expect("fund with the ERC-20");
    }
    for number in 1..=ITEMS {
        let seller = account(&devnet, Actor::Seller);
        devnet.fund_item(items, seller, U256::from(number)).await.expect("mint an item");
    }
    let assets = AssetMap::new().bind(usdc(), AssetBinding::Erc20(token)).bind(deed(), AssetBinding::Erc721(items));
    EvmHarness { devnet, assets, token, items }
}

fn rpc(error: interlock_evm::EvmError) -> ChainError {
    evm_error(&error)
}

impl Harness for EvmHarness {
    fn network(&self) -> NetworkId {
        NETWORK
    }

    fn account(&self, actor: Actor) -> CoreAddress {
        core_address(account(&self.devnet, actor))
    }

    fn submitter(&self, actor: Actor) -> Arc<dyn Submitter> {
        let escrow =
            EvmEscrow::new(NETWORK, self.devnet.escrow.clone(), self.devnet.provider.clone(), self.assets.clone());
        Arc::new(EvmSubmitter::new(escrow, account(&self.devnet, actor)))
    }

    fn fungible(&self, amount: u128) -> Asset {
        Asset::Fungible { code: usdc(), amount }
    }

    fn item(&self, number: u64) -> Asset {
        Asset::Unique { class: deed(), item: ItemId::from_u128(u128::from(number)) }
    }

    fn balance(&mut self, actor: Actor, asset: &Asset) -> BoxFuture<'_, Result<u128, ChainError>> {
        let holder = account(&self.devnet, actor);
        let asset = asset.clone();
        Box::pin(async move {
            match asset {
                Asset::Fungible { .. } => {
                    let held = self.devnet.token_balance(self.token, holder).await.map_err(rpc)?;
                    u128::try_from(held).map_err(|_| ChainError::fatal("a balance beyond u128"))
                }
                Asset::Unique { item, .. } => {
                    let owner = self.devnet.item_owner(self.items, U256::from_be_bytes(item.0)).await.map_err(rpc)?;
                    Ok(u128::from(owner == holder))
                }
            }
        })
    }

    fn now_ms(&mut self) -> BoxFuture<'_, Result<u64, ChainError>> {
        Box::pin(async move { self.devnet.now_ms().await.map_err(rpc) })
    }

    fn advance(&mut self, ms: u64) -> BoxFuture<'_, Result<(), ChainError>> {
        Box::pin(async move { self.devnet.advance_s(ms.div_ceil(1000)).await.map_err(rpc) })
    }

    /// Mines blocks until the depth stands on every mined transaction.
    fn settle(&mut self) -> BoxFuture<'_, Result<(), ChainError>> {
        Box::pin(async move {
            for _ in 0..DEPTH {
                self.devnet.advance_s(1).await.map_err(rpc)?;
            }
            Ok(())
        })
    }

    fn start(&self) -> Cursor {
        Cursor::start(0)
    }

    fn follower(&mut self, from: Cursor) -> BoxFuture<'_, Result<Box<dyn Follower>, ChainError>> {
        let follower = EvmFollower::resume(
            NETWORK,
            self.devnet.provider.clone(),
            self.devnet.escrow.address(),
            self.assets.clone(),
            DEPTH,
            from,
        );
        Box::pin(async move {
            let follower = follower.map_err(|error| interlock_evm::adapter_error(&error))?;
            Ok(Box::new(follower) as Box<dyn Follower>)
        })
    }
}

interlock_chain::conformance_suite!(harness());
