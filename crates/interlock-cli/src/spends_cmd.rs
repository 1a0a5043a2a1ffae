//! `interlock bench spends`: the chain space of a Litecoin hashlock leg's
//! lock, claim and refund, beside the field's usual P2WSH swap script, as a
//! table or as JSON; the table also prices notary legs (2 of 3 and 3 of 5,
//! and what each further notary adds).
//!
//! The JSON lists every row: `script` is `interlock` (hashlock),
//! `reference`, or `interlock-notary` with its `threshold` and `notaries`.

use interlock_litecoin::sizes::{self, SpendSize};
use serde_json::json;

pub fn run(rate_sat_vb: u64, json_output: bool) -> anyhow::Result<()> {
    let rows = sizes::measure(rate_sat_vb)?;
    if json_output {
        let line = |row: &SpendSize| {
            json!({
                "script": row.script,
                "op": row.op,
                "vbytes": row.vbytes,
                "weight": row.weight,
                "witness_script_bytes": row.witness_script_bytes,
                "fee_litoshis": row.fee,
                "rate_sat_vb": rate_sat_vb,
            })
        };
        let mut list: Vec<_> = rows.iter().map(line).collect();
        for (threshold, notaries) in NOTARY_SETS {
            for row in sizes::measure_notary(rate_sat_vb, threshold, notaries)? {
                let mut entry = line(&row);
                entry["threshold"] = threshold.into();
                entry["notaries"] = notaries.into();
                list.push(entry);
            }
        }
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
    println!();
    print_notary(rate_sat_vb)
}

/// The notary sets measured: k of n.
const NOTARY_SETS: [(u8, u8); 2] = [(2, 3), (3, 5)];

/// The notary legs' table: 2 of 3 and 3 of 5 side by side, then the cost of
/// each further notary.
fn print_notary(rate_sat_vb: u64) -> anyhow::Result<()> {
    let [(k_small, n_small), (k_large, n_large)] = NOTARY_SETS;
    let small = sizes::measure_notary(rate_sat_vb, k_small, n_small)?;
    let large = sizes::measure_notary(rate_sat_vb, k_large, n_large)?;
    println!("Litecoin notary legs, fees at {rate_sat_vb} litoshis per vbyte");
    println!("{:<8} {:>21} {:>21} {:>11}", "op", "2-of-3 vbytes", "3-of-5 vbytes", "difference");
    for op in ["lock", "execute", "cancel", "refund"] {
        let (Some(two), Some(three)) = (find(&small, NOTARY, op), find(&large, NOTARY, op)) else {
            continue;
        };
        println!(
            "{op:<8} {:>9} ({:>5} fee) {:>9} ({:>5} fee) {:>+11}",
            two.vbytes,
            two.fee,
            three.vbytes,
            three.fee,
            i128::from(three.vbytes) - i128::from(two.vbytes)
        );
    }
    if let (Some(two), Some(three)) = (find(&small, NOTARY, "execute"), find(&large, NOTARY, "execute")) {
        println!();
        println!(
            "witness scripts: 2 of 3 {} bytes, 3 of 5 {} bytes (reservation id, notary keys, key hashes)",
            two.witness_script_bytes, three.witness_script_bytes
        );
    }
    let marginal = sizes::notary_marginal()?;
    println!(
        "each further notary key: +{} vbytes on every spend of the leg; each further signature required: +{} vbytes \
         on execute and cancel (longest signatures)",
        quarter_units(marginal.per_key_weight),
        quarter_units(marginal.per_signature_weight)
    );
    println!(
        "execute and cancel are signed in advance at {} litoshis per vbyte: a child of the payee's output raises \
         their fee",
        interlock_litecoin::notary::NOTARY_SPEND_RATE_SAT_VB
    );
    Ok(())
}

const NOTARY: &str = "interlock-notary";

/// Weight units as vbytes, to the quarter.
fn quarter_units(weight: u64) -> String {
    let fraction = match weight % 4 {
        1 => ".25",
        2 => ".5",
        3 => ".75",
        _ => "",
    };
    format!("{}{fraction}", weight / 4)
}

fn find<'a>(rows: &'a [SpendSize], script: &str, op: &str) -> Option<&'a SpendSize> {
    rows.iter().find(|row| row.script == script && row.op == op)
}
