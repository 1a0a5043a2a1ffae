//! `interlock bench gas`'s measurement: the escrow contract's gasUsed for
//! reserve, execute and cancel, per asset kind and settlement mode, on a fresh anvil;
//! for deals with an inspection period, reserve, hold (the commit), release and reverse.
//!
//! Steady state: every figure is the second or later lock of its kind, the escrow
//! already holds another reservation of the same asset (so a token balance never
//! starts or drops to zero), the beneficiary and owner already hold the token, and
//! approvals are made beforehand and not counted. The beneficiary executes and the
//! owner cancels, as in the field's swap contracts whose figures the targets come from;
//! a cancel sent by anyone else (a keeper) is measured on its own, it pays for reaching
//! the owner's account cold.

use crate::devnet::Devnet;
use crate::{EvmAsset, EvmReservation};
use alloy::primitives::{Address, U256};
use interlock_core::crypto::{Certificate, NotaryKey, Secret};
use interlock_core::{Condition, DealId, Decision, Hash32, LegKind};

/// Notaries in a notary-mode reservation, and how many must sign.
pub const NOTARIES: u8 = 3;
pub const THRESHOLD: u8 = 2;
const AMOUNT: u128 = 10u128.pow(18);
/// Hashlock reservations measured for cancel expire this soon, then the clock jumps.
const SHORT_EXPIRY_S: u64 = 60;
const LONG_EXPIRY_MS: u64 = 3_600_000;

/// One measured operation.
pub struct Row {
    pub op: &'static str,
    pub asset: &'static str,
    pub mode: &'static str,
    pub gas_used: u64,
}

/// Everything one run measures.
pub struct Measured {
    pub rows: Vec<Row>,
    /// What one more certificate signature costs (calldata, ecrecover, set lookup).
    pub marginal_signature_gas: u64,
    /// A native hashlock cancel sent by someone other than the owner.
    pub cancel_by_other_gas: u64,
}

/// Measures every row on a fresh anvil.
pub fn measure() -> anyhow::Result<Measured> {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    runtime.block_on(measure_on_anvil())
}

fn notary_keys() -> Vec<NotaryKey> {
    (1..=NOTARIES).map(|n| NotaryKey::from_seed([0x60 + n; 32]).expect("valid scalar")).collect()
}

fn certificate(deal_id: DealId, decision: Decision, keys: &[NotaryKey], count: usize) -> Certificate {
    let signatures = keys[..count].iter().map(|key| key.sign_decision(deal_id, decision).signature).collect();
    Certificate { deal_id, decision, signatures }
}

/// The assets of one kind the run locks, one per reservation (ERC-721 items differ).
struct AssetSource {
    name: &'static str,
    token: Address,
    next_item: u64,
}

impl AssetSource {
    fn next(&mut self) -> EvmAsset {
        match self.name {
            "native" => EvmAsset::Native { amount_wei: U256::from(AMOUNT) },
            "erc20" => EvmAsset::Erc20 { token: self.token, amount: U256::from(AMOUNT) },
            _ => {
                self.next_item += 1;
                EvmAsset::Erc721 { token: self.token, token_id: U256::from(self.next_item) }
            }
        }
    }
}

/// Who the measured payment legs are between.
#[derive(Clone, Copy)]
struct Parties {
    owner: Address,
    beneficiary: Address,
}

impl Parties {
    /// A payment leg of `asset` under `condition`, with no keeper.
    fn payment(self, asset: EvmAsset, deal_id: DealId, condition: Condition, expiry_ms: u64) -> EvmReservation {
        let Parties { owner, beneficiary } = self;
        EvmReservation { deal_id, leg: LegKind::Payment, asset, owner, beneficiary, keeper: None, condition, expiry_ms }
    }
}

async fn measure_on_anvil() -> anyhow::Result<Measured> {
    let devnet = Devnet::start(4).await?;
    let (owner, beneficiary, stranger) = (devnet.accounts[1], devnet.accounts[2], devnet.accounts[3]);
    let token = devnet.deploy_token().await?;
    let items = devnet.deploy_items().await?;
    // Both parties already hold the token: no balance slot is created by a measured call.
    devnet.fund_token(token, owner, U256::from(AMOUNT) * U256::from(100)).await?;
    devnet.fund_token(token, beneficiary, U256::from(1)).await?;
    for item in 1..=20 {
        devnet.fund_item(items, owner, U256::from(item)).await?;
    }
    let keys = notary_keys();
    let notary_condition =
        Condition::Notary { notaries: keys.iter().map(NotaryKey::address).collect(), threshold: THRESHOLD };
    let secret = Secret([0x33; 32]);
    let mut deal_number = 0u64;
    let mut next_deal = || {
        deal_number += 1;
        DealId(Hash32::sha256(&[b"interlock gas bench", &deal_number.to_be_bytes()]))
    };

    let mut rows = Vec::new();
    let mut marginal_signature_gas = 0;
    let mut cancel_by_other_gas = 0;
    for mode in ["hashlock", "notary"] {
        let condition = if mode == "hashlock" { Condition::Hashlock(secret.hash()) } else { notary_condition.clone() };
        for (name, address) in [("native", Address::ZERO), ("erc20", token), ("erc721", items)] {
            let mut source = AssetSource { name, token: address, next_item: if mode == "hashlock" { 0 } else { 10 } };
            let now_ms = devnet.now_ms().await?;
            let reservation = |asset: EvmAsset, deal_id: DealId, expiry_ms: u64| {
                let parties = Parties { owner, beneficiary };
                parties.payment(asset, deal_id, condition.clone(), expiry_ms)
            };
            // Not measured: the first lock of this asset, left outstanding.
            let outstanding = reservation(source.next(), next_deal(), now_ms + LONG_EXPIRY_MS);
            devnet.escrow.reserve(&outstanding).await?;

            let executed = reservation(source.next(), next_deal(), now_ms + LONG_EXPIRY_MS);
            let reserve_gas = devnet.escrow.reserve(&executed).await?.gas_used;
            let execute_gas = if mode == "hashlock" {
                devnet.escrow.execute_with_secret(beneficiary, &executed, &secret).await?.gas_used
            } else {
                let commit = certificate(executed.deal_id, Decision::Commit, &keys, usize::from(THRESHOLD));
                devnet.escrow.present(beneficiary, &executed, Decision::Commit, &commit).await?.gas_used
            };

            let cancel_gas = if mode == "hashlock" {
                let cancelled = reservation(source.next(), next_deal(), devnet.now_ms().await? + SHORT_EXPIRY_S * 1000);
                devnet.escrow.reserve(&cancelled).await?;
                // The same cancel sent by someone else, for the native coin only.
                let by_other = (name == "native").then(|| reservation(source.next(), next_deal(), cancelled.expiry_ms));
                if let Some(by_other) = &by_other {
                    devnet.escrow.reserve(by_other).await?;
                }
                devnet.advance_s(2 * SHORT_EXPIRY_S).await?;
                if let Some(by_other) = &by_other {
                    cancel_by_other_gas = devnet.escrow.cancel(stranger, by_other).await?.gas_used;
                }
                devnet.escrow.cancel(owner, &cancelled).await?.gas_used
            } else {
                let cancelled = reservation(source.next(), next_deal(), now_ms + LONG_EXPIRY_MS);
                devnet.escrow.reserve(&cancelled).await?;
                let abort = certificate(cancelled.deal_id, Decision::Abort, &keys, usize::from(THRESHOLD));
                devnet.escrow.present(owner, &cancelled, Decision::Abort, &abort).await?.gas_used
            };
            for (op, gas_used) in [("reserve", reserve_gas), ("execute", execute_gas), ("cancel", cancel_gas)] {
                rows.push(Row { op, asset: name, mode, gas_used });
            }

            if mode == "notary" && name == "native" {
                // The same execution with every notary's signature: the marginal signature.
                let full = reservation(source.next(), next_deal(), devnet.now_ms().await? + LONG_EXPIRY_MS);
                devnet.escrow.reserve(&full).await?;
                let commit = certificate(full.deal_id, Decision::Commit, &keys, usize::from(NOTARIES));
                let all_gas = devnet.escrow.present(beneficiary, &full, Decision::Commit, &commit).await?.gas_used;
                marginal_signature_gas = all_gas.saturating_sub(execute_gas);
            }
        }
    }
    // Deals with an inspection period: the commit certificate holds the leg, the
    // verdict (a release to the beneficiary, a reverse to the owner) pays it out.
    let inspected =
        Condition::Inspected { notaries: keys.iter().map(NotaryKey::address).collect(), threshold: THRESHOLD };
    for (name, address) in [("native", Address::ZERO), ("erc20", token), ("erc721", items)] {
        let mut source = AssetSource { name, token: address, next_item: 14 };
        let now_ms = devnet.now_ms().await?;
        let reservation = |asset: EvmAsset, deal_id: DealId| {
            Parties { owner, beneficiary }.payment(asset, deal_id, inspected.clone(), now_ms + LONG_EXPIRY_MS)
        };
        let outstanding = reservation(source.next(), next_deal());
        devnet.escrow.reserve(&outstanding).await?;
        for (verdict, by, op) in [(Decision::Release, beneficiary, "release"), (Decision::Reverse, owner, "reverse")] {
            let held = reservation(source.next(), next_deal());
            let reserve_gas = devnet.escrow.reserve(&held).await?.gas_used;
            let commit = certificate(held.deal_id, Decision::Commit, &keys, usize::from(THRESHOLD));
            let hold_gas = devnet.escrow.present(beneficiary, &held, Decision::Commit, &commit).await?.gas_used;
            let verdict = certificate(held.deal_id, verdict, &keys, usize::from(THRESHOLD));
            let resolve_gas = devnet.escrow.resolve(by, &held, &verdict).await?.gas_used;
            if op == "release" {
                rows.push(Row { op: "reserve", asset: name, mode: "inspected", gas_used: reserve_gas });
                rows.push(Row { op: "hold", asset: name, mode: "inspected", gas_used: hold_gas });
            }
            rows.push(Row { op, asset: name, mode: "inspected", gas_used: resolve_gas });
        }
    }
    Ok(Measured { rows, marginal_signature_gas, cancel_by_other_gas })
}
