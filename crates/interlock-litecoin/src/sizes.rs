//! How much chain space each spend of a hashlock leg takes, for `interlock
//! bench spends`: the lock (a reservation), the claim and the refund, each
//! built and signed as the platform sends it, beside the same three for the
//! P2WSH swap script the field's swap services use, with the same keys and
//! transaction shape (one input, one P2WPKH output; the lock also keeps
//! change).
//!
//! The reference script, written out from its published form:
//!
//! ```text
//! OP_SIZE 32 OP_EQUAL
//! OP_IF    OP_HASH160 <ripemd160(sha256(secret))> OP_EQUALVERIFY <claim key>
//! OP_ELSE  OP_DROP <lock time> OP_CHECKLOCKTIMEVERIFY OP_DROP <refund key>
//! OP_ENDIF OP_CHECKSIG
//! ```
//!
//! It names keys, not key hashes, so its witnesses carry no key; Interlock's
//! accounts are key hashes (the address a party gives is all the deal's terms
//! hold), so its script checks a key hash and its witnesses carry the key,
//! and its script begins with the leg's reservation id, which makes each
//! leg's output script its own.
//!
//! Notary legs ([`measure_notary`], script `interlock-notary`) have no
//! counterpart in the reference: their rows are the lock, the execute and the
//! cancel (k notary signatures and the party's) and the refund after the
//! backstop, for k of n notaries; [`notary_marginal`] prices one more notary
//! key and one more required signature.

use crate::notary::{notary_public_key, notary_spend, sighash, signed_notary_spend, NotaryScript};
use crate::script::HashlockScript;
use crate::tx::{self, Coin, Key, Path};
use bitcoin::absolute::LockTime;
use bitcoin::blockdata::opcodes::all::{
    OP_CHECKSIG, OP_CLTV, OP_DROP, OP_ELSE, OP_ENDIF, OP_EQUAL, OP_EQUALVERIFY, OP_HASH160, OP_IF, OP_SIZE,
};
use bitcoin::hashes::{ripemd160, sha256, Hash as _};
use bitcoin::script::Builder;
use bitcoin::sighash::{EcdsaSighashType, SighashCache};
use bitcoin::{Amount, OutPoint, ScriptBuf, Transaction, TxOut, Txid, Witness};
use interlock_chain::ChainError;
use interlock_core::crypto::{Decision, NotaryKey};
use interlock_core::limits::NOTARIES_MAX;

/// One spend's size.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SpendSize {
    /// `interlock`, `reference` or `interlock-notary`.
    pub script: &'static str,
    /// `lock`, `claim` or `refund`; `execute` or `cancel` for notary legs.
    pub op: &'static str,
    pub vbytes: u64,
    pub weight: u64,
    /// The witness script's length in bytes.
    pub witness_script_bytes: usize,
    /// What the spend pays at the rate asked for.
    pub fee: u64,
}

const SECRET: [u8; 32] = [0x5e; 32];
const EXPIRY_S: u32 = 1_900_000_000;
const LEG_VALUE: u64 = 100_000_000;

fn key(seed: u8) -> Key {
    Key::from_bytes([seed; 32]).expect("a valid key")
}

fn outpoint(byte: u8) -> OutPoint {
    OutPoint { txid: Txid::from_byte_array([byte; 32]), vout: 0 }
}

/// The sizes of lock, claim and refund for Interlock's hashlock leg and for
/// the reference swap script, fees at `rate_sat_vb` litoshis per vbyte.
pub fn measure(rate_sat_vb: u64) -> Result<Vec<SpendSize>, ChainError> {
    let (owner, beneficiary) = (key(0xb1), key(0x51));
    let leg = HashlockScript {
        reservation: [0x42; 32],
        hash: sha256::Hash::hash(&SECRET).to_byte_array(),
        beneficiary: crate::address::key_hash(&beneficiary.account())?,
        owner: crate::address::key_hash(&owner.account())?,
        expiry_s: EXPIRY_S,
    };
    let row = |script, op, transaction: &Transaction, witness_script: &ScriptBuf| {
        row(script, op, transaction, witness_script, rate_sat_vb)
    };
    let mut rows = Vec::new();
    let ours = leg.witness_script();
    let reference = reference_script(&owner, &beneficiary);
    for (name, script, output) in [
        ("interlock", &ours, leg.script_pubkey()),
        ("reference", &reference, ScriptBuf::new_p2wsh(&reference.wscript_hash())),
    ] {
        let coin = Coin { outpoint: outpoint(1), value: 10 * LEG_VALUE };
        let lock = tx::reserve(&owner, &[coin], output, LEG_VALUE, rate_sat_vb)?.transaction;
        rows.push(row(name, "lock", &lock, script));
    }
    let to = |key: &Key| key.script_pubkey();
    let claim =
        tx::spend(&beneficiary, &leg, outpoint(2), LEG_VALUE, to(&beneficiary), Path::Claim { secret: SECRET }, 1)?;
    rows.insert(1, row("interlock", "claim", &claim.transaction, &ours));
    let refund = tx::spend(&owner, &leg, outpoint(2), LEG_VALUE, to(&owner), Path::Refund, 1)?;
    rows.insert(2, row("interlock", "refund", &refund.transaction, &ours));
    let claim = reference_spend(&beneficiary, &reference, LockTime::ZERO, Some(SECRET));
    rows.push(row("reference", "claim", &claim, &reference));
    let lock_time = LockTime::from_time(EXPIRY_S).map_err(|error| ChainError::fatal(error.to_string()))?;
    let refund = reference_spend(&owner, &reference, lock_time, None);
    rows.push(row("reference", "refund", &refund, &reference));
    Ok(rows)
}

/// `count` notaries' keys.
fn notaries(count: u8) -> Result<Vec<NotaryKey>, ChainError> {
    if usize::from(count) > NOTARIES_MAX {
        return Err(ChainError::rejected(format!("{count} notaries: a deal names at most {NOTARIES_MAX}")));
    }
    Ok((0..count).map(|index| NotaryKey::from_seed([0xa0 + index; 32]).expect("a valid scalar")).collect())
}

fn row(
    script: &'static str,
    op: &'static str,
    transaction: &Transaction,
    witness_script: &ScriptBuf,
    rate_sat_vb: u64,
) -> SpendSize {
    SpendSize {
        script,
        op,
        vbytes: transaction.vsize() as u64,
        weight: transaction.weight().to_wu(),
        witness_script_bytes: witness_script.len(),
        fee: rate_sat_vb.saturating_mul(transaction.vsize() as u64),
    }
}

/// The sizes of lock, execute, cancel and refund of a notary leg that
/// `threshold` of `count` notaries decide, fees at `rate_sat_vb` litoshis per
/// vbyte (what an execute or cancel pays is fixed by
/// [`crate::notary::NOTARY_SPEND_RATE_SAT_VB`]; the fee shown is the rate
/// asked for, to compare like with like).
pub fn measure_notary(rate_sat_vb: u64, threshold: u8, count: u8) -> Result<Vec<SpendSize>, ChainError> {
    let (owner, beneficiary) = (key(0xb1), key(0x51));
    let notaries = notaries(count)?;
    let leg = NotaryScript::new(
        [0x42; 32],
        crate::address::key_hash(&beneficiary.account())?,
        crate::address::key_hash(&owner.account())?,
        notaries.iter().map(notary_public_key).collect(),
        threshold,
        EXPIRY_S,
    )?;
    let script = leg.witness_script();
    let coin = Coin { outpoint: outpoint(1), value: 10 * LEG_VALUE };
    let lock = tx::reserve(&owner, &[coin], leg.script_pubkey(), LEG_VALUE, rate_sat_vb)?.transaction;
    let mut rows = vec![row("interlock-notary", "lock", &lock, &script, rate_sat_vb)];
    for (op, decision, party) in [("execute", Decision::Commit, &beneficiary), ("cancel", Decision::Abort, &owner)] {
        let digest = sighash(&leg, &notary_spend(&leg, outpoint(2), LEG_VALUE, decision)?, LEG_VALUE)?;
        let signatures: Vec<_> = notaries.iter().map(|notary| notary.sign_digest(&digest)).collect();
        let spend = signed_notary_spend(&leg, outpoint(2), LEG_VALUE, decision, party, &signatures)?;
        rows.push(row("interlock-notary", op, &spend, &script, rate_sat_vb));
    }
    let refund = crate::notary::refund(&owner, &leg, outpoint(2), LEG_VALUE, owner.script_pubkey(), 1)?;
    rows.push(row("interlock-notary", "refund", &refund.transaction, &script, rate_sat_vb));
    Ok(rows)
}

/// What one more notary adds to a notary leg's execute (and cancel), in
/// weight units (four to a vbyte): its key in the script, and a signature
/// when the threshold rises with it.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct NotaryMarginal {
    /// One more notary key, the same threshold: every spend carries the
    /// script, so the refund pays it too.
    pub per_key_weight: u64,
    /// One more signature required, the same notaries: the longest
    /// signature's (73 bytes and its length byte); real ones are a byte or
    /// two shorter.
    pub per_signature_weight: u64,
}

/// The weight of an execute of a `threshold`-of-`count` leg with the
/// longest signatures, as the fee rule measures it.
fn execute_weight(threshold: u8, count: u8) -> Result<u64, ChainError> {
    let keys = notaries(count)?.iter().map(notary_public_key).collect();
    let leg = NotaryScript::new([0x42; 32], [1; 20], [2; 20], keys, threshold, EXPIRY_S)?;
    let mut execute = notary_spend(&leg, outpoint(2), LEG_VALUE, Decision::Commit)?;
    let longest = [0u8; 73];
    let notary_signatures = vec![longest.to_vec(); usize::from(threshold)];
    execute.input[0].witness = leg.notary_witness(Decision::Commit, &longest, &[2; 33], &notary_signatures);
    Ok(execute.weight().to_wu())
}

/// [`NotaryMarginal`], measured from 2 of 3 to 2 of 4 (one more key) and
/// from 2 of 4 to 3 of 4 (one more signature). Not linear beyond: the
/// witness script's length prefix grows by two bytes once the script passes
/// 252 bytes (from 2 of 5 on).
pub fn notary_marginal() -> Result<NotaryMarginal, ChainError> {
    let (two_of_three, two_of_four, three_of_four) =
        (execute_weight(2, 3)?, execute_weight(2, 4)?, execute_weight(3, 4)?);
    Ok(NotaryMarginal {
        per_key_weight: two_of_four.saturating_sub(two_of_three),
        per_signature_weight: three_of_four.saturating_sub(two_of_four),
    })
}

fn reference_script(refund: &Key, claim: &Key) -> ScriptBuf {
    let hash = ripemd160::Hash::hash(sha256::Hash::hash(&SECRET).as_byte_array()).to_byte_array();
    Builder::new()
        .push_opcode(OP_SIZE)
        .push_int(32)
        .push_opcode(OP_EQUAL)
        .push_opcode(OP_IF)
        .push_opcode(OP_HASH160)
        .push_slice(hash)
        .push_opcode(OP_EQUALVERIFY)
        .push_slice(claim.public_bytes())
        .push_opcode(OP_ELSE)
        .push_opcode(OP_DROP)
        .push_int(i64::from(EXPIRY_S))
        .push_opcode(OP_CLTV)
        .push_opcode(OP_DROP)
        .push_slice(refund.public_bytes())
        .push_opcode(OP_ENDIF)
        .push_opcode(OP_CHECKSIG)
        .into_script()
}

/// A claim (with the secret) or refund of the reference script's output.
fn reference_spend(key: &Key, script: &ScriptBuf, lock_time: LockTime, secret: Option<[u8; 32]>) -> Transaction {
    let output = TxOut { value: Amount::from_sat(LEG_VALUE - 1_000), script_pubkey: key.script_pubkey() };
    let mut transaction = tx::one_input(outpoint(3), lock_time, output);
    let sighash = SighashCache::new(&transaction)
        .p2wsh_signature_hash(0, script, Amount::from_sat(LEG_VALUE), EcdsaSighashType::All)
        .expect("one input to sign");
    let signature = key.sign(sighash.to_byte_array());
    let selector: &[u8] = match &secret {
        Some(secret) => secret,
        None => &[],
    };
    transaction.input[0].witness = Witness::from_slice(&[signature.as_slice(), selector, script.as_bytes()]);
    transaction
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_scripts_lock_alike_and_interlock_spends_read_back() {
        let rows = measure(10).expect("measured");
        assert_eq!(rows.len(), 6);
        let size =
            |script: &str, op: &str| rows.iter().find(|row| row.script == script && row.op == op).unwrap().clone();
        // The same transaction shape locks into either script: one P2WSH output.
        assert_eq!(size("interlock", "lock").vbytes, size("reference", "lock").vbytes);
        assert_eq!(size("interlock", "lock").fee, 10 * size("interlock", "lock").vbytes);
        // The reference script is the field's ~100-byte one.
        assert!((95..=110).contains(&size("reference", "claim").witness_script_bytes), "{rows:?}");
        for op in ["claim", "refund"] {
            assert!(size("interlock", op).vbytes > 100, "{rows:?}");
        }
    }

    #[test]
    fn notary_legs_lock_alike_and_grow_with_their_notaries() {
        let hashlock = measure(10).expect("measured");
        let rows = measure_notary(10, 2, 3).expect("measured");
        let size = |rows: &[SpendSize], op: &str| rows.iter().find(|row| row.op == op).unwrap().clone();
        assert_eq!(rows.iter().map(|row| row.op).collect::<Vec<_>>(), ["lock", "execute", "cancel", "refund"]);
        assert!(rows.iter().all(|row| row.script == "interlock-notary" && row.witness_script_bytes == 199));
        assert_eq!(size(&rows, "lock").vbytes, size(&hashlock, "lock").vbytes, "the same P2WSH output");
        let (execute, cancel) = (size(&rows, "execute"), size(&rows, "cancel"));
        assert!(execute.vbytes.abs_diff(cancel.vbytes) <= 1, "{rows:?}");
        assert!(execute.vbytes > size(&rows, "refund").vbytes, "{rows:?}");
        assert_eq!(execute.fee, 10 * execute.vbytes);
        let larger = measure_notary(10, 3, 5).expect("measured");
        assert_eq!(size(&larger, "execute").witness_script_bytes, 199 + 2 * 34);
        let marginal = notary_marginal().expect("measured");
        // A 33-byte key and its push; a DER signature, its sighash byte and its length.
        assert_eq!(marginal, NotaryMarginal { per_key_weight: 34, per_signature_weight: 74 });
    }
}
