//! The escrow as a script: a hashlock leg is an output locked to a P2WSH
//! script that the beneficiary spends with the secret and its key before the
//! leg's expiry, and the owner spends with its key after it.
//!
//! ```text
//! <reservation id> OP_DROP
//! OP_IF
//!     OP_SIZE 32 OP_EQUALVERIFY OP_SHA256 <hash> OP_EQUALVERIFY
//!     OP_DUP OP_HASH160 <beneficiary key hash>
//! OP_ELSE
//!     <expiry> OP_CHECKLOCKTIMEVERIFY OP_DROP
//!     OP_DUP OP_HASH160 <owner key hash>
//! OP_ENDIF
//! OP_EQUALVERIFY OP_CHECKSIG
//! ```
//!
//! The reservation id makes every leg's script, and so its output script,
//! unique to one leg of one deal: a follower that watches a leg recognises its
//! outputs and their spends by script alone. A claim's witness is
//! `<signature> <key> <secret> 1 <script>`, a refund's `<signature> <key> <> <script>`:
//! the secret is on chain from the claim on.

use bitcoin::blockdata::opcodes::all::{
    OP_CHECKSIG, OP_CLTV, OP_DROP, OP_DUP, OP_ELSE, OP_ENDIF, OP_EQUALVERIFY, OP_HASH160, OP_IF, OP_SHA256, OP_SIZE,
};
use bitcoin::script::{Builder, Instruction};
use bitcoin::{Script, ScriptBuf};
use interlock_chain::ChainError;
use interlock_core::{reservation_id, DealTerms, LegKind, Settlement};

/// One hashlock leg's script parameters.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct HashlockScript {
    pub reservation: [u8; 32],
    pub hash: [u8; 32],
    pub beneficiary: [u8; 20],
    pub owner: [u8; 20],
    /// The leg's expiry in unix seconds: a refund's lock time, checked against
    /// the chain's median time past.
    pub expiry_s: u32,
}

/// How a spend of a leg's output took it.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Spend {
    /// The beneficiary's claim, revealing the secret.
    Claim { secret: [u8; 32], key: [u8; 33] },
    /// The owner's refund after the expiry (a notary leg's: after the backstop).
    Refund { key: [u8; 33] },
    /// A notary leg's execute (commit, the beneficiary's key) or cancel
    /// (abort, the owner's key), with k notaries' signatures.
    Decided { decision: interlock_core::crypto::Decision, key: [u8; 33] },
}

impl Spend {
    /// Whether the spend paid the beneficiary (else the owner).
    pub fn executed(&self) -> bool {
        matches!(self, Spend::Claim { .. } | Spend::Decided { decision: interlock_core::crypto::Decision::Commit, .. })
    }
}

/// A leg's expiry as a script lock time: whole seconds, rounded up, so that
/// the chain never lets the owner refund before the deal's own deadline.
pub fn expiry_seconds(expiry_ms: u64) -> Result<u32, ChainError> {
    let seconds = expiry_ms.div_ceil(1000);
    u32::try_from(seconds)
        .ok()
        .filter(|seconds| *seconds >= bitcoin::absolute::LOCK_TIME_THRESHOLD)
        .ok_or_else(|| ChainError::fatal(format!("expiry {expiry_ms} ms is not a lock time this chain can hold")))
}

impl HashlockScript {
    /// The script of `leg` of a hashlock deal.
    pub fn of(terms: &DealTerms, leg: LegKind) -> Result<HashlockScript, ChainError> {
        let Settlement::Hashlock { hash, payment_expiry_ms, delivery_expiry_ms, .. } = &terms.settlement else {
            return Err(ChainError::fatal("not a hashlock deal"));
        };
        let (expiry_ms, side) = match leg {
            LegKind::Payment => (*payment_expiry_ms, &terms.payment),
            LegKind::Delivery => (*delivery_expiry_ms, &terms.delivery),
        };
        Ok(HashlockScript {
            reservation: reservation_id(terms.id(), leg).0 .0,
            hash: hash.0,
            beneficiary: crate::address::key_hash(&side.beneficiary)?,
            owner: crate::address::key_hash(&side.owner)?,
            expiry_s: expiry_seconds(expiry_ms)?,
        })
    }

    /// The witness script.
    pub fn witness_script(&self) -> ScriptBuf {
        Builder::new()
            .push_slice(self.reservation)
            .push_opcode(OP_DROP)
            .push_opcode(OP_IF)
            .push_opcode(OP_SIZE)
            .push_int(32)
            .push_opcode(OP_EQUALVERIFY)
            .push_opcode(OP_SHA256)
            .push_slice(self.hash)
            .push_opcode(OP_EQUALVERIFY)
            .push_opcode(OP_DUP)
            .push_opcode(OP_HASH160)
            .push_slice(self.beneficiary)
            .push_opcode(OP_ELSE)
            .push_int(i64::from(self.expiry_s))
            .push_opcode(OP_CLTV)
            .push_opcode(OP_DROP)
            .push_opcode(OP_DUP)
            .push_opcode(OP_HASH160)
            .push_slice(self.owner)
            .push_opcode(OP_ENDIF)
            .push_opcode(OP_EQUALVERIFY)
            .push_opcode(OP_CHECKSIG)
            .into_script()
    }

    /// The output script a reservation pays: P2WSH of the witness script.
    pub fn script_pubkey(&self) -> ScriptBuf {
        ScriptBuf::new_p2wsh(&self.witness_script().wscript_hash())
    }

    /// The parameters of `script` when it is exactly a hashlock leg's script.
    pub fn parse(script: &Script) -> Option<HashlockScript> {
        let mut pushes = Vec::new();
        for instruction in script.instructions() {
            if let Instruction::PushBytes(bytes) = instruction.ok()? {
                pushes.push(bytes.as_bytes().to_vec());
            }
        }
        let [reservation, _size, hash, beneficiary, expiry, owner] = pushes.as_slice() else {
            return None;
        };
        let expiry = bitcoin::script::read_scriptint(expiry).ok()?;
        let parsed = HashlockScript {
            reservation: reservation.as_slice().try_into().ok()?,
            hash: hash.as_slice().try_into().ok()?,
            beneficiary: beneficiary.as_slice().try_into().ok()?,
            owner: owner.as_slice().try_into().ok()?,
            expiry_s: u32::try_from(expiry).ok()?,
        };
        // Only the exact template counts: rebuilding must give the same bytes.
        (parsed.witness_script().as_script() == script).then_some(parsed)
    }

    /// The witness that claims with `secret`, signed `signature` (DER and the
    /// sighash byte) by `key`.
    pub fn claim_witness(&self, signature: &[u8], key: &[u8; 33], secret: &[u8; 32]) -> bitcoin::Witness {
        let script = self.witness_script();
        bitcoin::Witness::from_slice(&[signature, key.as_slice(), secret.as_slice(), &[1u8], script.as_bytes()])
    }

    /// The witness that refunds, signed `signature` by `key`.
    pub fn refund_witness(&self, signature: &[u8], key: &[u8; 33]) -> bitcoin::Witness {
        refund_witness(&self.witness_script(), signature, key)
    }
}

/// The witness that takes a leg's refund path (the empty selector) of
/// `script`, signed `signature` by the owner's `key`: the same for both
/// settlement modes' scripts.
pub(crate) fn refund_witness(script: &Script, signature: &[u8], key: &[u8; 33]) -> bitcoin::Witness {
    bitcoin::Witness::from_slice(&[signature, key.as_slice(), &[], script.as_bytes()])
}

/// What an input's witness (its items, the witness script last) did to a
/// hashlock leg, when it spends one.
pub fn read_spend(items: &[Vec<u8>]) -> Option<(HashlockScript, Spend)> {
    let script = HashlockScript::parse(Script::from_bytes(items.last()?))?;
    let key: [u8; 33] = items.get(1)?.as_slice().try_into().ok()?;
    match items.len() {
        5 if items[3] == [1] => Some((script, Spend::Claim { secret: items[2].as_slice().try_into().ok()?, key })),
        4 if items[2].is_empty() => Some((script, Spend::Refund { key })),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> HashlockScript {
        HashlockScript {
            reservation: [9; 32],
            hash: [3; 32],
            beneficiary: [1; 20],
            owner: [2; 20],
            expiry_s: 1_800_000_000,
        }
    }

    #[test]
    fn the_script_reads_back_and_nothing_else_does() {
        let script = sample().witness_script();
        assert_eq!(HashlockScript::parse(&script), Some(sample()));
        let mut other = script.to_bytes();
        let last = other.len() - 1;
        other[last] = 0xad; // OP_CHECKSIGVERIFY instead of OP_CHECKSIG
        assert_eq!(HashlockScript::parse(Script::from_bytes(&other)), None);
        assert_eq!(HashlockScript::parse(Script::from_bytes(&[0x51])), None);
    }

    #[test]
    fn claims_and_refunds_read_from_their_witness() {
        let leg = sample();
        let claim = leg.claim_witness(&[0x30; 71], &[2; 33], &[7; 32]);
        let items: Vec<Vec<u8>> = claim.iter().map(<[u8]>::to_vec).collect();
        assert_eq!(read_spend(&items), Some((leg, Spend::Claim { secret: [7; 32], key: [2; 33] })));
        let refund = leg.refund_witness(&[0x30; 71], &[3; 33]);
        let items: Vec<Vec<u8>> = refund.iter().map(<[u8]>::to_vec).collect();
        assert_eq!(read_spend(&items), Some((leg, Spend::Refund { key: [3; 33] })));
        assert_eq!(read_spend(&items[..3]), None);
    }

    #[test]
    fn expiries_round_up_to_whole_seconds() {
        assert_eq!(expiry_seconds(1_800_000_000_001).expect("valid"), 1_800_000_001);
        assert_eq!(expiry_seconds(1_800_000_000_000).expect("valid"), 1_800_000_000);
        assert!(expiry_seconds(1_000).is_err(), "a block height, not a time");
        assert!(expiry_seconds(u64::MAX).is_err());
    }
}
