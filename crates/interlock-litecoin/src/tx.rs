//! Building and signing the transactions of a leg: the reservation (the
//! owner's coins into the leg's script), the claim and the refund. Every input
//! signals replacement (BIP 125), so a spend that waits too long can be sent
//! again with a higher fee.

use crate::script::HashlockScript;
use bitcoin::absolute::LockTime;
use bitcoin::hashes::Hash;
use bitcoin::secp256k1::{Message, PublicKey, Secp256k1, SecretKey};
use bitcoin::sighash::{EcdsaSighashType, SighashCache};
use bitcoin::transaction::Version;
use bitcoin::{Amount, OutPoint, ScriptBuf, Sequence, Transaction, TxIn, TxOut, Witness};
use interlock_chain::ChainError;
use interlock_core::Address;

/// Replaceable, and lets the lock time apply.
const REPLACEABLE: Sequence = Sequence::ENABLE_RBF_NO_LOCKTIME;
/// Virtual bytes of a transaction with no inputs or outputs, rounded up.
const BASE_VBYTES: u64 = 11;
/// Virtual bytes a P2WPKH input adds, with a 72-byte signature.
const P2WPKH_INPUT_VBYTES: u64 = 69;
/// Virtual bytes of a P2WSH output and of a P2WPKH output.
const P2WSH_OUTPUT_VBYTES: u64 = 43;
const P2WPKH_OUTPUT_VBYTES: u64 = 31;
/// Change smaller than this goes to the fee instead of making an output
/// nobody could spend profitably.
pub const CHANGE_MIN: u64 = 1_000;

/// One account's signing key.
#[derive(Clone)]
pub struct Key {
    secret: SecretKey,
    public: PublicKey,
}

impl Key {
    pub fn new(secret: SecretKey) -> Key {
        Key { secret, public: PublicKey::from_secret_key(&Secp256k1::signing_only(), &secret) }
    }

    /// A key from its 32 bytes.
    pub fn from_bytes(bytes: [u8; 32]) -> Result<Key, ChainError> {
        SecretKey::from_slice(&bytes)
            .map(Key::new)
            .map_err(|error| ChainError::fatal(format!("not a secp256k1 key: {error}")))
    }

    pub fn account(&self) -> Address {
        crate::address::account_of(&self.public)
    }

    /// The output script that pays this key.
    pub fn script_pubkey(&self) -> ScriptBuf {
        crate::address::pay_to_key(&self.public)
    }

    pub fn public_bytes(&self) -> [u8; 33] {
        self.public.serialize()
    }

    /// A DER signature of `digest` followed by the SIGHASH_ALL byte.
    pub fn sign(&self, digest: [u8; 32]) -> Vec<u8> {
        let signature = Secp256k1::signing_only().sign_ecdsa(&Message::from_digest(digest), &self.secret);
        bitcoin::ecdsa::Signature::sighash_all(signature).to_vec()
    }
}

impl std::fmt::Debug for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Key({})", self.account())
    }
}

/// A spendable output of an account.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Coin {
    pub outpoint: OutPoint,
    pub value: u64,
}

/// A transaction and the fee it pays, in litoshis.
#[derive(Clone, Debug)]
pub struct Built {
    pub transaction: Transaction,
    pub fee: u64,
}

fn fee_at(rate_sat_vb: u64, vbytes: u64) -> u64 {
    rate_sat_vb.saturating_mul(vbytes)
}

/// Moves `amount` of `key`'s `coins` into `to` (a leg's output script), the
/// change back to `key`, paying `rate_sat_vb`. Takes the largest coins first.
pub fn reserve(key: &Key, coins: &[Coin], to: ScriptBuf, amount: u64, rate_sat_vb: u64) -> Result<Built, ChainError> {
    let mut coins = coins.to_vec();
    coins.sort_by(|a, b| b.value.cmp(&a.value).then(a.outpoint.cmp(&b.outpoint)));
    let mut chosen = Vec::new();
    let mut total = 0u64;
    for coin in coins {
        let inputs = chosen.len() as u64 + 1;
        total = total.saturating_add(coin.value);
        chosen.push(coin);
        let vbytes = BASE_VBYTES + inputs * P2WPKH_INPUT_VBYTES + P2WSH_OUTPUT_VBYTES + P2WPKH_OUTPUT_VBYTES;
        let fee = fee_at(rate_sat_vb, vbytes);
        if total >= amount.saturating_add(fee) {
            let change = total - amount - fee;
            let (fee, change) = if change < CHANGE_MIN { (fee + change, None) } else { (fee, Some(change)) };
            let mut output = vec![TxOut { value: Amount::from_sat(amount), script_pubkey: to }];
            if let Some(change) = change {
                output.push(TxOut { value: Amount::from_sat(change), script_pubkey: key.script_pubkey() });
            }
            let input = chosen
                .iter()
                .map(|coin| TxIn {
                    previous_output: coin.outpoint,
                    script_sig: ScriptBuf::new(),
                    sequence: REPLACEABLE,
                    witness: Witness::new(),
                })
                .collect();
            let mut transaction = Transaction { version: Version::TWO, lock_time: LockTime::ZERO, input, output };
            sign_key_inputs(key, &mut transaction, &chosen)?;
            return Ok(Built { transaction, fee });
        }
    }
    Err(ChainError::rejected(format!(
        "the owner's confirmed coins hold {total} litoshis, short of the {amount} to reserve and the fee at \
         {rate_sat_vb} litoshis per vbyte"
    )))
}

fn sign_key_inputs(key: &Key, transaction: &mut Transaction, coins: &[Coin]) -> Result<(), ChainError> {
    let script_code = key.script_pubkey();
    let mut witnesses = Vec::with_capacity(coins.len());
    {
        let mut cache = SighashCache::new(&*transaction);
        for (index, coin) in coins.iter().enumerate() {
            let sighash = cache
                .p2wpkh_signature_hash(index, &script_code, Amount::from_sat(coin.value), EcdsaSighashType::All)
                .map_err(|error| ChainError::fatal(format!("cannot sign input {index}: {error}")))?;
            let signature = key.sign(sighash.to_byte_array());
            witnesses.push(Witness::from_slice(&[signature.as_slice(), key.public_bytes().as_slice()]));
        }
    }
    for (input, witness) in transaction.input.iter_mut().zip(witnesses) {
        input.witness = witness;
    }
    Ok(())
}

/// Spends `coin` (an unconfirmed output of `key`'s) back to `key`, paying
/// `fee`: a child whose fee pays for its waiting ancestors (CPFP), since
/// litecoind does not take replacements unless told to.
pub fn pay_for_parent(key: &Key, coin: &Coin, fee: u64) -> Result<Built, ChainError> {
    let kept = kept(coin.value, fee, "child paying for its parent")?;
    let output = TxOut { value: Amount::from_sat(kept), script_pubkey: key.script_pubkey() };
    let mut transaction = one_input(coin.outpoint, LockTime::ZERO, output);
    sign_key_inputs(key, &mut transaction, std::slice::from_ref(coin))?;
    Ok(Built { transaction, fee })
}

/// A transaction that spends `from` alone into `output`, replaceable, with
/// `lock_time`: the shape of every claim, refund, execute and cancel.
pub fn one_input(from: OutPoint, lock_time: LockTime, output: TxOut) -> Transaction {
    let input = vec![TxIn {
        previous_output: from,
        script_sig: ScriptBuf::new(),
        sequence: REPLACEABLE,
        witness: Witness::new(),
    }];
    Transaction { version: Version::TWO, lock_time, input, output: vec![output] }
}

/// What a spend of `value` keeps once it paid `fee`; refused when that is
/// less than [`CHANGE_MIN`]. `what` names the spend for the error.
pub fn kept(value: u64, fee: u64, what: &str) -> Result<u64, ChainError> {
    value.checked_sub(fee).filter(|kept| *kept >= CHANGE_MIN).ok_or_else(|| {
        ChainError::rejected(format!(
            "the output holds {value} litoshis: too little for its {what} to pay a {fee}-litoshi fee and keep at \
             least {CHANGE_MIN}"
        ))
    })
}

/// Virtual bytes of a one-input, one-output P2WPKH transaction.
pub const CHILD_VBYTES: u64 = BASE_VBYTES + P2WPKH_INPUT_VBYTES + P2WPKH_OUTPUT_VBYTES;

/// Which way a spend takes a leg's output.
#[derive(Clone, Copy, Debug)]
pub enum Path {
    Claim { secret: [u8; 32] },
    Refund,
}

/// Spends a leg's output `from` (holding `value`) to `to`, signed by `key`,
/// paying `rate_sat_vb` out of the leg's value.
pub fn spend(
    key: &Key,
    leg: &HashlockScript,
    from: OutPoint,
    value: u64,
    to: ScriptBuf,
    path: Path,
    rate_sat_vb: u64,
) -> Result<Built, ChainError> {
    let lock_time = match path {
        Path::Claim { .. } => LockTime::ZERO,
        Path::Refund => LockTime::from_time(leg.expiry_s)
            .map_err(|error| ChainError::fatal(format!("lock time {}: {error}", leg.expiry_s)))?,
    };
    let what = match path {
        Path::Claim { .. } => "claim",
        Path::Refund => "refund",
    };
    let unsigned = |fee: u64| -> Result<Transaction, ChainError> {
        let output = TxOut { value: Amount::from_sat(kept(value, fee, what)?), script_pubkey: to.clone() };
        Ok(one_input(from, lock_time, output))
    };
    let witness_for = |signature: &[u8]| match path {
        Path::Claim { secret } => leg.claim_witness(signature, &key.public_bytes(), &secret),
        Path::Refund => leg.refund_witness(signature, &key.public_bytes()),
    };
    // Measure with a signature of the longest DER size, then sign for real.
    let mut measured = unsigned(0)?;
    measured.input[0].witness = witness_for(&[0u8; 73]);
    let fee = fee_at(rate_sat_vb, measured.vsize() as u64);
    let mut transaction = unsigned(fee)?;
    let script = leg.witness_script();
    let sighash = SighashCache::new(&transaction)
        .p2wsh_signature_hash(0, &script, Amount::from_sat(value), EcdsaSighashType::All)
        .map_err(|error| ChainError::fatal(format!("cannot sign the spend: {error}")))?;
    transaction.input[0].witness = witness_for(&key.sign(sighash.to_byte_array()));
    Ok(Built { transaction, fee })
}
