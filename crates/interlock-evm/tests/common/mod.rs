//! What the contract tests share: a devnet with named accounts, deals, notaries.

#![allow(dead_code)]

use interlock_core::{
    Address as CoreAddress, Asset, AssetCode, Certificate, Condition, DealId, DealTerms, Decision, Hash32, Leg,
    LegKind, NetworkId, NotaryKey, PartyId, Policy, Secret, Settlement,
};
use interlock_evm::alloy::primitives::{Address, Bytes, U256};
use interlock_evm::chain::{core_address, AssetBinding, AssetMap};
use interlock_evm::devnet::Devnet;
use interlock_evm::{EscrowClient, EvmAsset, EvmConfig, EvmReservation};
use std::collections::BTreeMap;
use std::future::Future;

pub const HOUR_MS: u64 = 3_600_000;
pub const AMOUNT: u128 = 5 * 10u128.pow(17);
/// The EVM network's id in the deals of the chain adapter's tests.
pub const EVM: NetworkId = NetworkId(2);
/// The other network of those deals, where the seller delivers.
pub const LEDGER: NetworkId = NetworkId(1);

/// A fresh chain: account 0 deployed the escrow; the others are named below.
pub struct Net {
    pub devnet: Devnet,
}

impl Net {
    pub async fn start() -> Net {
        let devnet = Devnet::start(6).await.unwrap_or_else(|error| panic!("{error}"));
        Net { devnet }
    }

    /// [`Net::start`] as the chain `chain_id` (one block per transaction).
    pub async fn start_chain(chain_id: u64) -> Net {
        let devnet = Devnet::start_chain(6, chain_id, None).await.unwrap_or_else(|error| panic!("{error}"));
        Net { devnet }
    }
    pub fn owner(&self) -> Address {
        self.devnet.accounts[1]
    }
    pub fn beneficiary(&self) -> Address {
        self.devnet.accounts[2]
    }
    pub fn keeper(&self) -> Address {
        self.devnet.accounts[3]
    }
    pub fn stranger(&self) -> Address {
        self.devnet.accounts[4]
    }

    pub async fn now_ms(&self) -> u64 {
        self.devnet.now_ms().await.expect("latest block")
    }

    /// A hashlocked payment leg of `asset` from owner to beneficiary (keeper named),
    /// expiring in an hour.
    pub async fn hashlock(&self, asset: EvmAsset) -> EvmReservation {
        EvmReservation {
            deal_id: deal(1),
            leg: LegKind::Payment,
            asset,
            owner: self.owner(),
            beneficiary: self.beneficiary(),
            keeper: Some(self.keeper()),
            condition: Condition::Hashlock(secret().hash()),
            expiry_ms: self.now_ms().await + HOUR_MS,
        }
    }

    /// The same leg in notary mode, 2 of [`notaries`], backstop in an hour.
    pub async fn notary(&self, asset: EvmAsset) -> EvmReservation {
        EvmReservation { condition: notary_condition(&notaries(), 2), ..self.hashlock(asset).await }
    }

    pub fn native(&self) -> EvmAsset {
        EvmAsset::Native { amount_wei: U256::from(AMOUNT) }
    }

    /// A fresh ERC-20 with `AMOUNT` minted to the owner and approved to the escrow.
    pub async fn erc20(&self) -> EvmAsset {
        let token = self.devnet.deploy_token().await.expect("deploy token");
        self.devnet.fund_token(token, self.owner(), U256::from(AMOUNT)).await.expect("fund owner");
        EvmAsset::Erc20 { token, amount: U256::from(AMOUNT) }
    }

    /// A fresh ERC-721 with item 7 minted to the owner and approved to the escrow.
    pub async fn erc721(&self) -> EvmAsset {
        let items = self.devnet.deploy_items().await.expect("deploy items");
        self.devnet.fund_item(items, self.owner(), U256::from(7)).await.expect("fund owner");
        EvmAsset::Erc721 { token: items, token_id: U256::from(7) }
    }

    /// Who holds `asset` for `account`: wei, token units, or 1 if it owns the item.
    pub async fn holding(&self, account: Address, asset: &EvmAsset) -> U256 {
        match *asset {
            EvmAsset::Native { .. } => self.devnet.balance(account).await.expect("balance"),
            EvmAsset::Erc20 { token, .. } => self.devnet.token_balance(token, account).await.expect("balance"),
            EvmAsset::Erc721 { token, token_id } => {
                let owner = self.devnet.item_owner(token, token_id).await.expect("owner of");
                U256::from(u8::from(owner == account))
            }
        }
    }

    /// `reservation`, reserved by its owner.
    pub async fn reserved(&self, reservation: EvmReservation) -> EvmReservation {
        self.devnet.escrow.reserve(&reservation).await.expect("reserve");
        reservation
    }

    /// Awaits `settle` and asserts that it paid `to` exactly `asset`'s worth (so
    /// `to` must not be the sender of a native-coin transaction: gas would count);
    /// what `settle` returned.
    pub async fn paying<T>(&self, to: Address, asset: &EvmAsset, settle: impl Future<Output = T>) -> T {
        let before = self.holding(to, asset).await;
        let output = settle.await;
        let gained = self.holding(to, asset).await - before;
        assert_eq!(gained, Net::worth(asset), "{to} is paid {}'s worth, once", asset.kind_name());
        output
    }

    /// What `asset` is worth in the units of [`Net::holding`].
    pub fn worth(asset: &EvmAsset) -> U256 {
        match *asset {
            EvmAsset::Native { amount_wei } => amount_wei,
            EvmAsset::Erc20 { amount, .. } => amount,
            EvmAsset::Erc721 { .. } => U256::from(1),
        }
    }
}

pub fn usdc() -> AssetCode {
    AssetCode::new("USDC").expect("valid code")
}

/// A devnet of four accounts with an ERC-20 bound as USDC, 1,000,000 of it
/// funded to the payer (account 1), mining a block every `block_time_ms` (one
/// block per transaction when `None`): the chain the adapter's tests deal on.
pub async fn usdc_devnet(block_time_ms: Option<u64>) -> (Devnet, AssetMap) {
    let devnet = Devnet::start_mining(4, block_time_ms).await.unwrap_or_else(|error| panic!("{error}"));
    let token = devnet.deploy_token().await.expect("deploy token");
    devnet.fund_token(token, devnet.accounts[1], U256::from(1_000_000u64)).await.expect("fund");
    let assets = AssetMap::new().bind(usdc(), AssetBinding::Erc20(token));
    (devnet, assets)
}

/// A hashlock deal (on [`secret`]) paying `amount` USDC on [`EVM`] from account 1
/// to account 2 of `devnet`, for gold on [`LEDGER`]; the payment expires
/// `expiry_in_ms` after the chain's time.
pub async fn usdc_terms(devnet: &Devnet, nonce: u64, amount: u128, expiry_in_ms: u64) -> DealTerms {
    let now = devnet.now_ms().await.expect("chain time");
    DealTerms {
        buyer: PartyId([1; 32]),
        seller: PartyId([2; 32]),
        payment: Leg {
            network: EVM,
            asset: Asset::Fungible { code: usdc(), amount },
            owner: core_address(devnet.accounts[1]),
            beneficiary: core_address(devnet.accounts[2]),
            keeper: None,
        },
        delivery: Leg {
            network: LEDGER,
            asset: Asset::Fungible { code: AssetCode::new("GOLD").unwrap(), amount: 1 },
            owner: CoreAddress::from_bytes([2; 32]),
            beneficiary: CoreAddress::from_bytes([1; 32]),
            keeper: None,
        },
        settlement: Settlement::Hashlock {
            hash: secret().hash(),
            payment_expiry_ms: now + expiry_in_ms,
            delivery_expiry_ms: now + expiry_in_ms / 2,
            margin_ms: expiry_in_ms / 4,
        },
        policy: Policy::default(),
        observers: vec![],
        dependents: vec![],
        nonce,
    }
}

/// A network's configuration following `escrow` through `rpc` at depth 1, with
/// no assets and the default fees and pace.
pub fn follow_config(rpc: &str, escrow: &EscrowClient) -> EvmConfig {
    EvmConfig {
        rpc: rpc.to_owned(),
        escrow: format!("{}", escrow.address()),
        confirmations: 1,
        assets: BTreeMap::new(),
        keeper: None,
        rpc_ca: None,
        chain_id: None,
        deploy_height: escrow.deploy_height().expect("deployed by the test"),
        fee_cap_gwei: 500,
        replace_after_blocks: 3,
        urgent_within_s: 300,
        block_interval_ms: 1_000,
        time_lag_ms: 1_000,
        finality: interlock_evm::Finality::Depth,
        finality_blocks: 1,
    }
}

pub fn deal(n: u8) -> DealId {
    DealId(Hash32::sha256(&[b"interlock evm test deal", &[n]]))
}

pub fn secret() -> Secret {
    Secret([0x5e; 32])
}

/// The deal's three notaries.
pub fn notaries() -> Vec<NotaryKey> {
    (1..=3u8).map(|n| NotaryKey::from_seed([0x40 + n; 32]).expect("valid scalar")).collect()
}

/// Three keys that are not the deal's notaries.
pub fn outsiders() -> Vec<NotaryKey> {
    (1..=3u8).map(|n| NotaryKey::from_seed([0x70 + n; 32]).expect("valid scalar")).collect()
}

pub fn notary_condition(keys: &[NotaryKey], threshold: u8) -> Condition {
    Condition::Notary { notaries: keys.iter().map(NotaryKey::address).collect(), threshold }
}

/// A certificate for `deal_id` and `decision` signed by `signers`, through the core.
pub fn certificate(deal_id: DealId, decision: Decision, signers: &[&NotaryKey]) -> Certificate {
    Certificate {
        deal_id,
        decision,
        signatures: signers.iter().map(|key| key.sign_decision(deal_id, decision).signature).collect(),
    }
}

/// r||s||v of each of `certificate`'s signatures, concatenated, as the contract takes them.
pub fn signature_bytes(certificate: &Certificate) -> Bytes {
    certificate.signatures.iter().flat_map(|signature| signature.0).collect::<Vec<u8>>().into()
}

/// Asserts that `result` is the escrow's refusal matching `pattern`.
#[macro_export]
macro_rules! assert_refused {
    ($result:expr, $pattern:pat) => {
        match $result {
            Err(interlock_evm::EvmError::Escrow(ref error)) if matches!(error, $pattern) => {}
            other => panic!("expected {}, found {:?}", stringify!($pattern), other.map_err(|error| error.to_string())),
        }
    };
}
