//! The spends of a notary leg. Execute and cancel are the transactions the
//! notaries sign, so every notary and the party must build the very same
//! bytes from what they all know: [`notary_spend`] takes only the leg's
//! script, its outpoint and value, and the decision. One input (the leg's
//! output, sequence `ENABLE_RBF_NO_LOCKTIME`), lock time 0, version 2, one
//! P2WPKH output paying the beneficiary (commit) or the owner (abort) the
//! leg's value less a fee fixed by rule: [`NOTARY_SPEND_RATE_SAT_VB`] times
//! the spend's virtual size measured with 73-byte placeholders for every
//! signature, the longest a DER signature and its sighash byte can be, so the
//! signed spend pays at least that rate (and so more than the relay minimum
//! of one litoshi per vbyte).
//!
//! A pre-signed spend cannot be re-priced: changing its fee changes what the
//! notaries signed. When the rate proves too low, the payee raises it with a
//! child that spends the payee's output and pays for both (child pays for
//! parent, [`crate::tx::pay_for_parent`]).
//!
//! What a notary signs is the spend's SIGHASH_ALL segwit v0 digest
//! ([`sighash`]): it commits to the outpoint, the value, and the output, so
//! it executes or cancels this leg only, in only the way decided.

use super::{NotaryPath, NotaryScript};
use crate::tx::{kept, one_input, Built, Key};
use bitcoin::absolute::LockTime;
use bitcoin::hashes::Hash as _;
use bitcoin::secp256k1::{ecdsa, Message, PublicKey, Secp256k1};
use bitcoin::sighash::{EcdsaSighashType, SighashCache};
use bitcoin::{Amount, OutPoint, ScriptBuf, Transaction, TxOut, WPubkeyHash};
use interlock_chain::{ChainError, SpendToSign};
use interlock_core::crypto::{Decision, RecoverableSignature};
use interlock_core::limits::CERTIFICATE_SIGNATURES_MAX;

/// The fee rate of every execute and cancel, litoshis per vbyte of the spend
/// measured with the longest signatures: fixed, since the notaries sign the
/// fee with the rest, and twice the relay minimum, so a spend that waits can
/// be raised by a child at a modest cost.
pub const NOTARY_SPEND_RATE_SAT_VB: u64 = 2;
/// A stand-in for a signature while a spend is measured: the longest DER
/// signature with its sighash byte.
const PLACEHOLDER_SIGNATURE: [u8; 73] = [0; 73];
/// A stand-in for the party's key while a spend is measured.
const PLACEHOLDER_KEY: [u8; 33] = [2; 33];

fn pay_to_key_hash(key_hash: [u8; 20], value: u64) -> TxOut {
    TxOut {
        value: Amount::from_sat(value),
        script_pubkey: ScriptBuf::new_p2wpkh(&WPubkeyHash::from_byte_array(key_hash)),
    }
}

/// The fee every execute and cancel of `script`'s leg pays, in litoshis.
pub fn notary_spend_fee(script: &NotaryScript) -> u64 {
    let mut measured = one_input(OutPoint::null(), LockTime::ZERO, pay_to_key_hash(script.beneficiary(), 0));
    let notary_signatures = vec![PLACEHOLDER_SIGNATURE.to_vec(); usize::from(script.threshold())];
    measured.input[0].witness =
        script.notary_witness(Decision::Commit, &PLACEHOLDER_SIGNATURE, &PLACEHOLDER_KEY, &notary_signatures);
    NOTARY_SPEND_RATE_SAT_VB.saturating_mul(measured.vsize() as u64)
}

/// The unsigned spend that carries `decision` out on the leg of `script`
/// whose output `from` holds `value`: what the notaries sign.
pub fn notary_spend(
    script: &NotaryScript,
    from: OutPoint,
    value: u64,
    decision: Decision,
) -> Result<Transaction, ChainError> {
    let path = NotaryPath::of(decision)?;
    let kept = kept(value, notary_spend_fee(script), if path == NotaryPath::Execute { "execute" } else { "cancel" })?;
    Ok(one_input(from, LockTime::ZERO, pay_to_key_hash(script.party(path), kept)))
}

/// The digest every signature of `transaction`'s input 0, a spend of
/// `script`'s output of `value`, signs: SIGHASH_ALL, segwit v0.
pub fn sighash(script: &NotaryScript, transaction: &Transaction, value: u64) -> Result<[u8; 32], ChainError> {
    SighashCache::new(transaction)
        .p2wsh_signature_hash(0, &script.witness_script(), Amount::from_sat(value), EcdsaSighashType::All)
        .map(|sighash| sighash.to_byte_array())
        .map_err(|error| ChainError::fatal(format!("cannot compute the spend's sighash: {error}")))
}

/// The notaries' signatures of `digest` as the script takes them: exactly
/// k of them, one per notary, in the order of the notaries' keys, each in
/// DER (low-s) with the SIGHASH_ALL byte. Refuses a signature that does not
/// recover to one of the leg's notaries over `digest` (another key's, or one
/// of another transaction), and fewer than k distinct notaries; a notary's
/// second signature counts once, and signatures beyond k are left out.
pub fn notary_signatures(
    script: &NotaryScript,
    digest: &[u8; 32],
    signatures: &[RecoverableSignature],
) -> Result<Vec<Vec<u8>>, ChainError> {
    if signatures.len() > CERTIFICATE_SIGNATURES_MAX {
        return Err(ChainError::rejected(format!(
            "{} notary signatures: more than the limit of {CERTIFICATE_SIGNATURES_MAX}",
            signatures.len()
        )));
    }
    let addresses = script.notaries().iter().map(super::notary_address).collect::<Result<Vec<_>, ChainError>>()?;
    let digest_hex = interlock_core::hash::to_hex(digest);
    let secp = Secp256k1::verification_only();
    let mut by_position: Vec<(usize, Vec<u8>)> = Vec::with_capacity(signatures.len());
    for (index, signature) in signatures.iter().enumerate() {
        let signer = signature.recover(digest).ok_or_else(|| {
            ChainError::rejected(format!(
                "notary signature {index} is malformed, high-s, or recovers to no key over the spend's sighash \
                 {digest_hex}"
            ))
        })?;
        let position = addresses.iter().position(|address| *address == signer).ok_or_else(|| {
            ChainError::rejected(format!(
                "notary signature {index} recovers to {signer} over the spend's sighash {digest_hex}: not one of \
                 this leg's notaries (a signature by another key, or of another transaction)"
            ))
        })?;
        if by_position.iter().any(|(seen, _)| *seen == position) {
            continue;
        }
        let mut compact = ecdsa::Signature::from_compact(&signature.0[..64])
            .map_err(|error| ChainError::rejected(format!("notary signature {index}: {error}")))?;
        compact.normalize_s();
        let key = PublicKey::from_slice(&script.notaries()[position]).map_err(|error| {
            ChainError::rejected(format!("notary {signer}'s key in the leg's script is not a valid key: {error}"))
        })?;
        // The recovered address named the key; the script checks the key itself.
        secp.verify_ecdsa(&Message::from_digest(*digest), &compact, &key).map_err(|error| {
            ChainError::fatal(format!("notary signature {index} recovers to {signer} but fails its key: {error}"))
        })?;
        by_position.push((position, bitcoin::ecdsa::Signature::sighash_all(compact).to_vec()));
    }
    let threshold = usize::from(script.threshold());
    if by_position.len() < threshold {
        return Err(ChainError::rejected(format!(
            "{} distinct notaries signed the spend (sighash {digest_hex}): the leg's script needs {threshold} of {}",
            by_position.len(),
            script.notaries().len()
        )));
    }
    by_position.sort_by_key(|(position, _)| *position);
    Ok(by_position.into_iter().take(threshold).map(|(_, signature)| signature).collect())
}

/// The spend that carries `decision` out, signed by `party` (the
/// beneficiary on commit, the owner on abort) and by the notaries whose
/// `signatures` (over its [`sighash`]) come with the decision.
pub fn signed_notary_spend(
    script: &NotaryScript,
    from: OutPoint,
    value: u64,
    decision: Decision,
    party: &Key,
    signatures: &[RecoverableSignature],
) -> Result<Transaction, ChainError> {
    let path = NotaryPath::of(decision)?;
    if crate::address::key_hash(&party.account())? != script.party(path) {
        let who = if path == NotaryPath::Execute { "beneficiary executes" } else { "owner cancels" };
        return Err(ChainError::rejected(format!(
            "only the leg's {who} it with a notary {decision} certificate, not {}",
            party.account()
        )));
    }
    let mut transaction = notary_spend(script, from, value, decision)?;
    let digest = sighash(script, &transaction, value)?;
    let notary_signatures = notary_signatures(script, &digest, signatures)?;
    transaction.input[0].witness =
        script.notary_witness(decision, &party.sign(digest), &party.public_bytes(), &notary_signatures);
    Ok(transaction)
}

/// Where a notary leg sits, as a [`SpendToSign`] carries it: the
/// outpoint's txid (32 bytes as the chain orders them), its output index and
/// its value (each little-endian).
pub fn location_bytes(from: OutPoint, value: u64) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(LOCATION_LEN);
    bytes.extend_from_slice(&from.txid.to_byte_array());
    bytes.extend_from_slice(&from.vout.to_le_bytes());
    bytes.extend_from_slice(&value.to_le_bytes());
    bytes
}

const LOCATION_LEN: usize = 44;

/// Reads [`location_bytes`] back.
pub fn read_location(bytes: &[u8]) -> Result<(OutPoint, u64), ChainError> {
    let bytes: &[u8; LOCATION_LEN] = bytes.try_into().map_err(|_| {
        ChainError::rejected(format!(
            "a Litecoin leg's location is {LOCATION_LEN} bytes (txid, output index, value), not {}",
            bytes.len()
        ))
    })?;
    let txid = bitcoin::Txid::from_byte_array(bytes[..32].try_into().expect("32 bytes"));
    let vout = u32::from_le_bytes(bytes[32..36].try_into().expect("4 bytes"));
    let value = u64::from_le_bytes(bytes[36..].try_into().expect("8 bytes"));
    Ok((OutPoint { txid, vout }, value))
}

/// What each notary signs for `request` when the leg's script names the
/// notaries by `notary_keys`: the sighash of the spend that carries the
/// decision out on that leg, at the location the request names.
pub fn spend_digest(request: &SpendToSign, notary_keys: &[[u8; 33]]) -> Result<[u8; 32], ChainError> {
    let script = NotaryScript::of(&request.terms, request.leg, notary_keys)?;
    let (from, value) = read_location(&request.location)?;
    let transaction = notary_spend(&script, from, value, request.decision)?;
    sighash(&script, &transaction, value)
}

/// The owner's refund of the leg whose output `from` holds `value`, once the
/// backstop expiry has passed the chain's median time: paid to `to` at
/// `rate_sat_vb`, with the backstop as its lock time.
pub fn refund(
    key: &Key,
    script: &NotaryScript,
    from: OutPoint,
    value: u64,
    to: ScriptBuf,
    rate_sat_vb: u64,
) -> Result<Built, ChainError> {
    if crate::address::key_hash(&key.account())? != script.owner() {
        return Err(ChainError::rejected(format!(
            "only the leg's owner refunds it after the backstop, not {}",
            key.account()
        )));
    }
    let lock_time = LockTime::from_time(script.backstop_s())
        .map_err(|error| ChainError::fatal(format!("lock time {}: {error}", script.backstop_s())))?;
    let mut measured = one_input(from, lock_time, TxOut { value: Amount::ZERO, script_pubkey: to.clone() });
    measured.input[0].witness = script.refund_witness(&PLACEHOLDER_SIGNATURE, &key.public_bytes());
    let fee = rate_sat_vb.saturating_mul(measured.vsize() as u64);
    let output = TxOut { value: Amount::from_sat(kept(value, fee, "refund")?), script_pubkey: to };
    let mut transaction = one_input(from, lock_time, output);
    let digest = sighash(script, &transaction, value)?;
    transaction.input[0].witness = script.refund_witness(&key.sign(digest), &key.public_bytes());
    Ok(Built { transaction, fee })
}

#[cfg(test)]
mod tests {
    use super::super::tests::notary;
    use super::super::{notary_public_key, read_notary_spend};
    use super::*;
    use bitcoin::Txid;

    const VALUE: u64 = 1_000_000;

    fn outpoint() -> OutPoint {
        OutPoint { txid: Txid::from_byte_array([4; 32]), vout: 1 }
    }

    /// A leg whose beneficiary and owner are keys of ours, 2 of notaries 1..=3.
    fn leg() -> (NotaryScript, Key, Key) {
        let (beneficiary, owner) = (Key::from_bytes([0x51; 32]).unwrap(), Key::from_bytes([0xb1; 32]).unwrap());
        let hash = |key: &Key| crate::address::key_hash(&key.account()).unwrap();
        let keys = (1..=3).map(|seed| notary_public_key(&notary(seed))).collect();
        let script = NotaryScript::new([9; 32], hash(&beneficiary), hash(&owner), keys, 2, 1_800_000_000).unwrap();
        (script, beneficiary, owner)
    }

    fn signatures(script: &NotaryScript, decision: Decision, seeds: &[u8]) -> Vec<RecoverableSignature> {
        let transaction = notary_spend(script, outpoint(), VALUE, decision).expect("a spend");
        let digest = sighash(script, &transaction, VALUE).expect("a sighash");
        seeds.iter().map(|seed| notary(*seed).sign_digest(&digest)).collect()
    }

    #[test]
    fn spends_are_the_same_bytes_for_everyone_and_pay_the_decided_party() {
        let (script, beneficiary, owner) = leg();
        let execute = notary_spend(&script, outpoint(), VALUE, Decision::Commit).unwrap();
        assert_eq!(execute, notary_spend(&script, outpoint(), VALUE, Decision::Commit).unwrap());
        assert_eq!(execute.output[0].script_pubkey, beneficiary.script_pubkey());
        let cancel = notary_spend(&script, outpoint(), VALUE, Decision::Abort).unwrap();
        assert_eq!(cancel.output[0].script_pubkey, owner.script_pubkey());
        assert_eq!(execute.lock_time, LockTime::ZERO);
        assert_eq!(execute.input[0].sequence, bitcoin::Sequence::ENABLE_RBF_NO_LOCKTIME);
        let fee = notary_spend_fee(&script);
        assert_eq!(execute.output[0].value.to_sat(), VALUE - fee);
        assert_ne!(sighash(&script, &execute, VALUE).unwrap(), sighash(&script, &cancel, VALUE).unwrap());

        let signed = signed_notary_spend(
            &script,
            outpoint(),
            VALUE,
            Decision::Commit,
            &beneficiary,
            &signatures(&script, Decision::Commit, &[3, 1]),
        )
        .expect("signed");
        assert_eq!(signed.compute_txid(), execute.compute_txid(), "signing changes only the witness");
        let rate_measured = fee / signed.vsize() as u64;
        assert!(rate_measured >= NOTARY_SPEND_RATE_SAT_VB, "{fee} litoshis for {} vbytes", signed.vsize());
        let items: Vec<Vec<u8>> = signed.input[0].witness.iter().map(<[u8]>::to_vec).collect();
        let (read, spend) = read_notary_spend(&items).expect("a notary spend");
        assert_eq!((read, spend.path, spend.key), (script, NotaryPath::Execute, beneficiary.public_bytes()));
    }

    #[test]
    fn notary_signatures_are_ordered_by_key_and_checked() {
        let (script, _, _) = leg();
        let transaction = notary_spend(&script, outpoint(), VALUE, Decision::Commit).unwrap();
        let digest = sighash(&script, &transaction, VALUE).unwrap();
        let der = |seeds: &[u8]| notary_signatures(&script, &digest, &signatures(&script, Decision::Commit, seeds));
        let in_order = der(&[1, 3]).expect("two notaries");
        assert_eq!(der(&[3, 1]).expect("two notaries"), in_order, "ordered by key, not as given");
        assert_eq!(der(&[3, 3, 1]).expect("a repeat counts once"), in_order);
        assert_eq!(der(&[3, 2, 1]).expect("three notaries").len(), 2, "exactly k");
        assert!(in_order.iter().all(|signature| signature.last() == Some(&1)), "SIGHASH_ALL");

        let short = der(&[2, 2]).expect_err("one notary twice");
        assert!(short.message.contains("1 distinct notaries signed"), "{}", short.message);
        let foreign = der(&[1, 9]).expect_err("a stranger's key");
        assert!(foreign.message.contains(&notary(9).address().to_string()), "{}", foreign.message);
        let other = signatures(&script, Decision::Abort, &[1, 2]);
        let wrong = notary_signatures(&script, &digest, &other).expect_err("signatures of the cancel");
        assert!(wrong.message.contains("not one of this leg's notaries"), "{}", wrong.message);
        let mut no_recovery_id = signatures(&script, Decision::Commit, &[1])[0];
        no_recovery_id.0[64] = 0;
        let malformed = notary_signatures(&script, &digest, &[no_recovery_id]).expect_err("no recovery id");
        assert!(malformed.message.contains("malformed"), "{}", malformed.message);
    }

    #[test]
    fn only_the_decided_party_signs_and_tiny_legs_are_refused() {
        let (script, beneficiary, owner) = leg();
        let commit = signatures(&script, Decision::Commit, &[1, 2]);
        let by_owner = signed_notary_spend(&script, outpoint(), VALUE, Decision::Commit, &owner, &commit);
        assert!(by_owner.expect_err("the owner executing").message.contains("only the leg's beneficiary"));
        let abort = signatures(&script, Decision::Abort, &[1, 2]);
        let by_beneficiary = signed_notary_spend(&script, outpoint(), VALUE, Decision::Abort, &beneficiary, &abort);
        assert!(by_beneficiary.expect_err("the beneficiary cancelling").message.contains("only the leg's owner"));
        signed_notary_spend(&script, outpoint(), VALUE, Decision::Abort, &owner, &abort).expect("the owner cancels");
        let tiny =
            notary_spend(&script, outpoint(), notary_spend_fee(&script) + crate::tx::CHANGE_MIN - 1, Decision::Commit);
        assert!(tiny.expect_err("too small").message.contains("too little"));
        let refund = refund(&owner, &script, outpoint(), VALUE, owner.script_pubkey(), 3).expect("a refund");
        assert_eq!(refund.transaction.lock_time, LockTime::from_time(1_800_000_000).unwrap());
        assert!(super::refund(&beneficiary, &script, outpoint(), VALUE, owner.script_pubkey(), 3).is_err());
    }
}
