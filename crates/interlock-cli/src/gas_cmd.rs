//! `interlock bench gas`: the escrow contract's gas per operation, measured by
//! its platform crate, as a table against the contract issue's targets or as JSON.

use interlock_evm::gas::{Row, NOTARIES, THRESHOLD};
use serde_json::json;

/// Targets from the throughput issue, hashlock mode, native coin: (op, gas). The field's
/// leanest swap contract (Boltz's EtherSwap: lock 47,589, claim 32,488, refund 31,644 on
/// the same anvil) plus the 4,800 refund a tombstone forgoes on execute and cancel.
const NATIVE_HASHLOCK_TARGETS: [(&str, u64); 3] = [("reserve", 47_500), ("execute", 37_300), ("cancel", 36_400)];
/// An ERC-20 operation may cost this much more than the same native one.
const ERC20_ALLOWANCE: u64 = 17_000;
/// Notary-mode execute and cancel may cost this much more than hashlock's, per signature.
const NOTARY_SIGNATURE_ALLOWANCE: u64 = 6_000;

pub fn run(json_output: bool) -> anyhow::Result<()> {
    let measured = interlock_evm::gas::measure()?;
    let rows = &measured.rows;
    if json_output {
        let list: Vec<_> = rows
            .iter()
            .map(|row| json!({"op": row.op, "asset": row.asset, "mode": row.mode, "gas_used": row.gas_used}))
            .collect();
        println!("{}", serde_json::to_string_pretty(&list)?);
        return Ok(());
    }
    print_table(rows, measured.marginal_signature_gas, measured.cancel_by_other_gas);
    Ok(())
}

fn gas(rows: &[Row], op: &str, asset: &str, mode: &str) -> Option<u64> {
    rows.iter().find(|row| row.op == op && row.asset == asset && row.mode == mode).map(|row| row.gas_used)
}

fn target(rows: &[Row], row: &Row) -> Option<u64> {
    match (row.mode, row.asset, row.op) {
        ("hashlock", "native", op) => NATIVE_HASHLOCK_TARGETS.iter().find(|(name, _)| *name == op).map(|t| t.1),
        ("hashlock", "erc20", op) => Some(gas(rows, op, "native", "hashlock")? + ERC20_ALLOWANCE),
        ("notary", asset, op @ ("execute" | "cancel")) => {
            Some(gas(rows, op, asset, "hashlock")? + u64::from(THRESHOLD) * NOTARY_SIGNATURE_ALLOWANCE)
        }
        _ => None,
    }
}

fn print_table(rows: &[Row], marginal_signature_gas: u64, cancel_by_other_gas: u64) {
    println!("{:<8} {:<7} {:<9} {:>9} {:>9}", "op", "asset", "mode", "gas_used", "target");
    for row in rows {
        let target = target(rows, row);
        let verdict = match target {
            Some(limit) if row.gas_used <= limit => format!("{limit:>9} met"),
            Some(limit) => format!("{limit:>9} MISSED by {}", row.gas_used - limit),
            None => String::new(),
        };
        println!("{:<8} {:<7} {:<9} {:>9} {verdict}", row.op, row.asset, row.mode, row.gas_used);
    }
    println!();
    println!(
        "notary mode: {THRESHOLD} of {NOTARIES} notaries; certificates are cancelled/executed with {THRESHOLD} signatures."
    );
    if let (Some(notary), Some(hashlock)) =
        (gas(rows, "execute", "native", "notary"), gas(rows, "execute", "native", "hashlock"))
    {
        let per_signature = notary.saturating_sub(hashlock) / u64::from(THRESHOLD);
        println!(
            "notary execute - hashlock execute (native) = {}, {per_signature} per signature (allowance {NOTARY_SIGNATURE_ALLOWANCE})",
            notary.saturating_sub(hashlock)
        );
    }
    println!(
        "one more signature in a certificate (calldata + ecrecover + set lookup) costs {marginal_signature_gas} gas"
    );
    println!("notary cancel is the abort-certificate path; cancel after the backstop costs what hashlock cancel does");
    if let (Some(notary), Some(hold), Some(release), Some(reverse)) = (
        gas(rows, "execute", "native", "notary"),
        gas(rows, "hold", "native", "inspected"),
        gas(rows, "release", "native", "inspected"),
        gas(rows, "reverse", "native", "inspected"),
    ) {
        println!(
            "inspection period (native): hold + release = {}, {} more than a notary execute; hold + reverse = {}",
            hold + release,
            (hold + release).saturating_sub(notary),
            hold + reverse
        );
    }
    println!(
        "the beneficiary executes and the owner cancels; a native cancel sent by anyone else costs {cancel_by_other_gas}"
    );
}
