//! A fresh anvil chain with funded accounts and a deployed escrow: what the contract
//! tests and `interlock bench gas` start from.

use crate::anvil::{Anvil, AnvilError};
use crate::bindings::{TestItems, TestToken};
use crate::client::{connect, submit, EscrowClient};
use crate::error::EvmError;
use alloy::primitives::{Address, B256, U256};
use alloy::providers::{DynProvider, Provider};
use alloy::signers::local::PrivateKeySigner;

/// Accounts the devnet funds, at most.
pub const DEVNET_ACCOUNTS_MAX: usize = 16;
/// What each account starts with: 1,000 coins.
pub const DEVNET_BALANCE_WEI: u128 = 1_000 * 10u128.pow(18);

/// anvil, a provider signing for `accounts`, and an escrow deployed by `accounts[0]`.
pub struct Devnet {
    pub provider: DynProvider,
    pub accounts: Vec<Address>,
    pub escrow: EscrowClient,
    // Last, so the node stops after everything that talks to it is dropped.
    pub anvil: Anvil,
}

impl Devnet {
    /// Starts anvil, funds `account_count` keys derived from fixed seeds, deploys the escrow.
    pub async fn start(account_count: usize) -> Result<Devnet, DevnetError> {
        Devnet::start_mining(account_count, None).await
    }

    /// [`Devnet::start`] on a chain that mines a block every `block_time_ms`
    /// (one block per transaction when `None`).
    pub async fn start_mining(account_count: usize, block_time_ms: Option<u64>) -> Result<Devnet, DevnetError> {
        Devnet::start_chain(account_count, crate::anvil::ANVIL_CHAIN_ID, block_time_ms).await
    }

    /// [`Devnet::start_mining`] as the chain `chain_id`. The same accounts
    /// deploy the same contracts at the same addresses on every devnet: two
    /// devnets with different ids are two chains whose escrows differ only
    /// in the chain they run on.
    pub async fn start_chain(
        account_count: usize,
        chain_id: u64,
        block_time_ms: Option<u64>,
    ) -> Result<Devnet, DevnetError> {
        assert!((1..=DEVNET_ACCOUNTS_MAX).contains(&account_count), "account count {account_count} out of range");
        let anvil = Anvil::start_chain(chain_id, block_time_ms)?;
        let signers: Vec<PrivateKeySigner> = (1..=account_count)
            .map(|index| {
                let seed = B256::repeat_byte(u8::try_from(index).expect("at most 16 accounts"));
                PrivateKeySigner::from_bytes(&seed).expect("a repeated small byte is a valid secp256k1 scalar")
            })
            .collect();
        let accounts: Vec<Address> = signers.iter().map(PrivateKeySigner::address).collect();
        let provider = connect(anvil.endpoint(), &signers)?;
        for account in &accounts {
            let balance = U256::from(DEVNET_BALANCE_WEI);
            let _: () = provider
                .raw_request("anvil_setBalance".into(), (*account, balance))
                .await
                .map_err(|error| EvmError::Rpc(error.to_string()))?;
        }
        let escrow = EscrowClient::deploy(provider.clone(), accounts[0]).await?;
        Ok(Devnet { provider, accounts, escrow, anvil })
    }

    /// The latest block's timestamp, in unix milliseconds.
    pub async fn now_ms(&self) -> Result<u64, EvmError> {
        let block = crate::client::latest_block(&self.provider).await?;
        Ok(block.header.timestamp.saturating_mul(1000))
    }

    /// Moves the chain's clock forward by `seconds` and mines a block.
    pub async fn advance_s(&self, seconds: u64) -> Result<(), EvmError> {
        let _: serde_json::Value = self
            .provider
            .raw_request("evm_increaseTime".into(), (seconds,))
            .await
            .map_err(|error| EvmError::Rpc(error.to_string()))?;
        let _: serde_json::Value =
            self.provider.raw_request("evm_mine".into(), ()).await.map_err(|error| EvmError::Rpc(error.to_string()))?;
        Ok(())
    }

    pub async fn balance(&self, account: Address) -> Result<U256, EvmError> {
        self.provider.get_balance(account).await.map_err(|error| EvmError::Rpc(error.to_string()))
    }

    /// Deploys a mintable ERC-20 from `accounts[0]`.
    pub async fn deploy_token(&self) -> Result<Address, EvmError> {
        self.deploy(TestToken::deploy_builder(self.provider.clone())).await
    }

    /// Deploys a mintable ERC-721 from `accounts[0]`.
    pub async fn deploy_items(&self) -> Result<Address, EvmError> {
        self.deploy(TestItems::deploy_builder(self.provider.clone())).await
    }

    /// Sends `contract`'s deployment from `accounts[0]`; the address it got.
    async fn deploy(&self, contract: alloy::contract::RawCallBuilder<DynProvider>) -> Result<Address, EvmError> {
        contract.from(self.accounts[0]).deploy().await.map_err(EvmError::from_contract)
    }

    /// Mints `amount` of the test ERC-20 `token` to `to` and lets the escrow take all of
    /// `to`'s tokens.
    pub async fn fund_token(&self, token: Address, to: Address, amount: U256) -> Result<(), EvmError> {
        let token = TestToken::new(token, self.provider.clone());
        submit(token.mint(to, amount).from(to)).await?;
        submit(token.approve(self.escrow.address(), U256::MAX).from(to)).await?;
        Ok(())
    }

    /// Mints item `token_id` of the test ERC-721 `items` to `to` and lets the escrow take
    /// all of `to`'s items.
    pub async fn fund_item(&self, items: Address, to: Address, token_id: U256) -> Result<(), EvmError> {
        let items = TestItems::new(items, self.provider.clone());
        submit(items.mint(to, token_id).from(to)).await?;
        submit(items.setApprovalForAll(self.escrow.address(), true).from(to)).await?;
        Ok(())
    }

    pub async fn token_balance(&self, token: Address, account: Address) -> Result<U256, EvmError> {
        TestToken::new(token, self.provider.clone()).balanceOf(account).call().await.map_err(EvmError::from_contract)
    }

    pub async fn item_owner(&self, items: Address, token_id: U256) -> Result<Address, EvmError> {
        TestItems::new(items, self.provider.clone()).ownerOf(token_id).call().await.map_err(EvmError::from_contract)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum DevnetError {
    #[error(transparent)]
    Anvil(#[from] AnvilError),
    #[error(transparent)]
    Evm(#[from] EvmError),
}
