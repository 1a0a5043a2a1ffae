//! `interlock bench spends`: the chain space of a Litecoin hashlock leg's
//! lock, claim and refund, beside the field's usual P2WSH swap script, as a
//! table or as JSON.

use interlock_litecoin::sizes::{self, SpendSize};
use serde_json::json;

pub fn run(rate_sat_vb: u64, json_output: bool) -> anyhow::Result<()> {
    let rows = sizes::measure(rate_sat_vb)?;
    if json_output {
        let list: Vec<_> = rows
            .iter()
            .map(|row| {
                json!({
                    "script": row.script,
                    "op": row.op,
                    "vbytes": row.vbytes,
                    "weight": row.weight,
                    "witness_script_bytes": row.witness_script_bytes,
                    "fee_litoshis": row.fee,
                    "rate_sat_vb": rate_sat_vb,
                })
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&list)?);
        return Ok(());
    }
    println!("Litecoin hashlock legs, fees at {rate_sat_vb} litoshis per vbyte");
    println!("{:<7} {:>17} {:>17} {:>11}", "op", "interlock vbytes", "reference vbytes", "difference");
    for op in ["lock", "claim", "refund"] {
        let (Some(ours), Some(theirs)) = (find(&rows, "interlock", op), find(&rows, "reference", op)) else {
            continue;
        };
        println!(
            "{op:<7} {:>9} ({:>5} fee) {:>9} ({:>5} fee) {:>+11}",
            ours.vbytes,
            ours.fee,
            theirs.vbytes,
            theirs.fee,
            i128::from(ours.vbytes) - i128::from(theirs.vbytes)
        );
    }
    if let (Some(ours), Some(theirs)) = (find(&rows, "interlock", "claim"), find(&rows, "reference", "claim")) {
        println!();
        println!(
            "witness scripts: interlock {} bytes (reservation id, key hashes), reference {} bytes (keys)",
            ours.witness_script_bytes, theirs.witness_script_bytes
        );
    }
    println!("notary legs are not on this platform yet: no notary rows");
    Ok(())
}

fn find<'a>(rows: &'a [SpendSize], script: &str, op: &str) -> Option<&'a SpendSize> {
    rows.iter().find(|row| row.script == script && row.op == op)
}
