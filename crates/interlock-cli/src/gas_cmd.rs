//! `interlock bench gas`: the escrow contract's gas per operation, measured by
//! its platform crate, as a table against the contract issue's targets or as JSON.

use interlock_evm::gas::{Row, NOTARIES, THRESHOLD};
use serde_json::json;

/// Targets from the contract issue, hashlock mode: (op, asset, gas).
const HASHLOCK_TARGETS: [(&str, &str, u64); 6] = [
    ("reserve", "native", 47_500),
    ("execute", "native", 32_500),
    ("cancel", "native", 31_500),
    ("reserve", "erc20", 62_000),
    ("execute", "erc20", 42_000),
    ("cancel", "erc20", 42_000),
];
/// Notary-mode execute may cost this much more than hashlock execute, per signature.
const NOTARY_SIGNATURE_ALLOWANCE: u64 = 6_000;

pub fn run(json_output: bool) -> anyhow::Result<()> {
    let (rows, marginal_signature_gas) = interlock_evm::gas::measure()?;
    if json_output {
        let list: Vec<_> = rows
            .iter()
            .map(|row| json!({"op": row.op, "asset": row.asset, "mode": row.mode, "gas_used": row.gas_used}))
            .collect();
        println!("{}", serde_json::to_string_pretty(&list)?);
        return Ok(());
    }
    print_table(&rows, marginal_signature_gas);
    Ok(())
}

fn gas(rows: &[Row], op: &str, asset: &str, mode: &str) -> Option<u64> {
    rows.iter().find(|row| row.op == op && row.asset == asset && row.mode == mode).map(|row| row.gas_used)
}

fn target(rows: &[Row], row: &Row) -> Option<u64> {
    if row.mode == "hashlock" {
        return HASHLOCK_TARGETS.iter().find(|(op, asset, _)| *op == row.op && *asset == row.asset).map(|t| t.2);
    }
    if row.op == "execute" {
        let hashlock = gas(rows, "execute", row.asset, "hashlock")?;
        return Some(hashlock + u64::from(THRESHOLD) * NOTARY_SIGNATURE_ALLOWANCE);
    }
    None
}

fn print_table(rows: &[Row], marginal_signature_gas: u64) {
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
}
