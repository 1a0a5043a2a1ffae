//! Keys and signatures: ed25519 for parties and ledger accounts, secp256k1 over an
//! EIP-712 digest for notaries (so a smart contract can check a certificate with
//! `ecrecover`), and the hashlock.

use crate::encoding::{decode_list, fixed_newtype, Decode, DecodeError, Encode, Reader, Writer};
use crate::hash::{DealId, Hash32};
use crate::limits::CERTIFICATE_SIGNATURES_MAX;
use crate::types::{NotaryAddress, PartyId};
use ed25519_dalek::Signer as _;
use k256::ecdsa::{RecoveryId, Signature as EcdsaSignature, SigningKey, VerifyingKey};
use serde::{Deserialize, Serialize};
use sha3::{Digest as _, Keccak256};
use std::fmt;

/// A party's (or ledger account's) ed25519 signing key.
#[derive(Clone)]
pub struct PartyKey(ed25519_dalek::SigningKey);

impl PartyKey {
    /// The key whose 32-byte seed is `seed`. Randomness is the caller's business.
    pub fn from_seed(seed: [u8; 32]) -> PartyKey {
        PartyKey(ed25519_dalek::SigningKey::from_bytes(&seed))
    }
    pub fn seed(&self) -> [u8; 32] {
        self.0.to_bytes()
    }
    pub fn public(&self) -> PartyId {
        PartyId(self.0.verifying_key().to_bytes())
    }
    pub fn public_key(&self) -> PublicKey {
        PublicKey(self.0.verifying_key())
    }
    pub fn sign(&self, message: &[u8]) -> Ed25519Signature {
        Ed25519Signature(self.0.sign(message).to_bytes())
    }
    /// The party's signature over a deal id: its agreement to the terms.
    pub fn sign_deal(&self, deal_id: DealId) -> Ed25519Signature {
        self.sign(&deal_signing_message(deal_id))
    }
}

impl fmt::Debug for PartyKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PartyKey({:?})", self.public())
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Ed25519Signature(#[serde(with = "serde_bytes_64")] pub [u8; 64]);

impl fmt::Debug for Ed25519Signature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ed25519:{}", &crate::hash::to_hex(&self.0)[..8])
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug, thiserror::Error)]
pub enum SignatureError {
    #[error("invalid ed25519 public key")]
    PublicKey,
    #[error("ed25519 signature does not verify against {0:?}")]
    Mismatch(PartyId),
}

/// Verifies an ed25519 signature by `signer` over `message`. Strict: rejects
/// non-canonical and small-order encodings.
pub fn verify_ed25519(signer: PartyId, message: &[u8], signature: &Ed25519Signature) -> Result<(), SignatureError> {
    PublicKey::decode(signer)?.verify(message, signature)
}

/// A decoded ed25519 public key. Decoding is a fifth of a verification; a
/// verifier that sees the same signer often keeps this instead of the bytes.
#[derive(Clone, Copy, Debug)]
pub struct PublicKey(ed25519_dalek::VerifyingKey);

impl PublicKey {
    pub fn decode(party: PartyId) -> Result<PublicKey, SignatureError> {
        ed25519_dalek::VerifyingKey::from_bytes(&party.0).map(PublicKey).map_err(|_| SignatureError::PublicKey)
    }

    pub fn party(&self) -> PartyId {
        PartyId(self.0.to_bytes())
    }

    /// The same strict check as [`verify_ed25519`].
    pub fn verify(&self, message: &[u8], signature: &Ed25519Signature) -> Result<(), SignatureError> {
        let signature = ed25519_dalek::Signature::from_bytes(&signature.0);
        crate::counters::ed25519_verified();
        self.0.verify_strict(message, &signature).map_err(|_| SignatureError::Mismatch(self.party()))
    }

    /// [`verify_deal_signature`] with this key.
    pub fn verify_deal(&self, deal_id: DealId, signature: &Ed25519Signature) -> Result<(), SignatureError> {
        self.verify(&deal_signing_message(deal_id), signature)
    }
}

fn deal_signing_message(deal_id: DealId) -> [u8; 56] {
    let mut message = [0u8; 56];
    message[..24].copy_from_slice(b"interlock/deal-terms/v1\0");
    message[24..].copy_from_slice(&deal_id.0 .0);
    message
}

/// Checks `party`'s agreement to the deal `deal_id`.
pub fn verify_deal_signature(
    party: PartyId,
    deal_id: DealId,
    signature: &Ed25519Signature,
) -> Result<(), SignatureError> {
    verify_ed25519(party, &deal_signing_message(deal_id), signature)
}

/// What the notaries decide, exactly once per deal: commit or abort; and for a
/// deal with an inspection period, once more after it commits: release the
/// held legs to their beneficiaries or reverse them to their owners.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Serialize, Deserialize)]
pub enum Decision {
    Commit,
    Abort,
    /// The verdict that pays held legs to their beneficiaries.
    Release,
    /// The verdict that returns held legs to their original owners.
    Reverse,
}

impl Decision {
    /// The `uint8` the EIP-712 struct carries.
    pub fn code(self) -> u8 {
        match self {
            Decision::Commit => 1,
            Decision::Abort => 2,
            Decision::Release => 3,
            Decision::Reverse => 4,
        }
    }

    /// The decision's name, as votes, logs and metrics spell it.
    pub fn as_str(self) -> &'static str {
        match self {
            Decision::Commit => "commit",
            Decision::Abort => "abort",
            Decision::Release => "release",
            Decision::Reverse => "reverse",
        }
    }

    /// True for the verdicts that end an inspection period.
    pub fn is_verdict(self) -> bool {
        matches!(self, Decision::Release | Decision::Reverse)
    }
}

impl fmt::Display for Decision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

fn keccak(parts: &[&[u8]]) -> [u8; 32] {
    let mut hasher = Keccak256::new();
    for part in parts {
        hasher.update(part);
    }
    hasher.finalize().into()
}

/// The EIP-712 domain separator, `EIP712Domain(string name,string version)` with
/// name `Interlock` and version `1`. It names no chain and no contract on purpose:
/// one certificate settles both legs, on two different networks.
pub fn eip712_domain_separator() -> [u8; 32] {
    let type_hash = keccak(&[b"EIP712Domain(string name,string version)"]);
    keccak(&[&type_hash, &keccak(&[b"Interlock"]), &keccak(&[b"1"])])
}

/// The EIP-712 digest a notary signs: `Decision(bytes32 dealId,uint8 decision)`.
pub fn decision_digest(deal_id: DealId, decision: Decision) -> [u8; 32] {
    let type_hash = keccak(&[b"Decision(bytes32 dealId,uint8 decision)"]);
    let mut decision_word = [0u8; 32];
    decision_word[31] = decision.code();
    let struct_hash = keccak(&[&type_hash, &deal_id.0 .0, &decision_word]);
    keccak(&[b"\x19\x01", &eip712_domain_separator(), &struct_hash])
}

/// A notary's secp256k1 key.
#[derive(Clone)]
pub struct NotaryKey(SigningKey);

impl NotaryKey {
    /// The key whose secret scalar is `seed`; `None` if `seed` is not a valid scalar.
    pub fn from_seed(seed: [u8; 32]) -> Option<NotaryKey> {
        SigningKey::from_bytes(&seed.into()).ok().map(NotaryKey)
    }
    pub fn seed(&self) -> [u8; 32] {
        self.0.to_bytes().into()
    }
    pub fn address(&self) -> NotaryAddress {
        evm_address(self.0.verifying_key())
    }
    /// Signs `(deal_id, decision)`. Deterministic (RFC 6979), low-s.
    pub fn sign_decision(&self, deal_id: DealId, decision: Decision) -> Vote {
        let signature = self.sign_digest(&decision_digest(deal_id, decision));
        Vote { deal_id, decision, signature }
    }
    /// Signs a 32-byte digest a platform computed (a spend's sighash, say):
    /// `r || s || v`, deterministic (RFC 6979), low-s, recovering to
    /// [`NotaryKey::address`]. Only for what the notary has decided: the
    /// caller checks that.
    pub fn sign_digest(&self, digest: &[u8; 32]) -> RecoverableSignature {
        let (signature, recovery) =
            self.0.sign_prehash_recoverable(digest).expect("signing a 32-byte prehash cannot fail");
        let mut bytes = [0u8; 65];
        bytes[..64].copy_from_slice(&signature.to_bytes());
        bytes[64] = 27 + recovery.to_byte();
        RecoverableSignature(bytes)
    }
}

impl fmt::Debug for NotaryKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "NotaryKey({:?})", self.address())
    }
}

fn evm_address(key: &VerifyingKey) -> NotaryAddress {
    let point = key.to_encoded_point(false);
    let hash = keccak(&[&point.as_bytes()[1..]]);
    NotaryAddress(hash[12..].try_into().expect("20 bytes"))
}

/// `r || s || v` with `v` in {27, 28}, as `ecrecover` takes it.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct RecoverableSignature(#[serde(with = "serde_bytes_65")] pub [u8; 65]);

impl fmt::Debug for RecoverableSignature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "secp256k1:{}", &crate::hash::to_hex(&self.0)[..8])
    }
}

impl RecoverableSignature {
    /// The address that signed `digest`, refusing high-s and malformed signatures
    /// (as OpenZeppelin's `ECDSA.recover` does).
    pub fn recover(&self, digest: &[u8; 32]) -> Option<NotaryAddress> {
        crate::counters::secp256k1_recovered();
        let signature = EcdsaSignature::from_slice(&self.0[..64]).ok()?;
        if signature.normalize_s().is_some() {
            return None;
        }
        let recovery = RecoveryId::from_byte(self.0[64].checked_sub(27)?)?;
        if recovery.is_x_reduced() {
            return None;
        }
        let key = VerifyingKey::recover_from_prehash(digest, &signature, recovery).ok()?;
        Some(evm_address(&key))
    }
}

/// One notary's signed decision.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct Vote {
    pub deal_id: DealId,
    pub decision: Decision,
    pub signature: RecoverableSignature,
}

impl Vote {
    /// The notary that signed this vote, if the signature is valid.
    pub fn signer(&self) -> Option<NotaryAddress> {
        self.signature.recover(&decision_digest(self.deal_id, self.decision))
    }
}

/// k of n notary signatures over `(deal id, decision)`: the token of notary mode.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct Certificate {
    pub deal_id: DealId,
    pub decision: Decision,
    pub signatures: Vec<RecoverableSignature>,
}

#[derive(Clone, PartialEq, Eq, Debug, thiserror::Error)]
pub enum CertificateError {
    #[error("certificate is for deal {found}, expected {expected}")]
    WrongDeal { expected: DealId, found: DealId },
    #[error("certificate decides {found}, expected {expected}")]
    WrongDecision { expected: Decision, found: Decision },
    #[error("certificate signature {index} is malformed or does not recover")]
    BadSignature { index: usize },
    #[error("certificate signature {index} is by {signer}, who is not in the deal's notary set")]
    NotInSet { index: usize, signer: NotaryAddress },
    #[error("certificate signature {index} repeats notary {signer}")]
    Duplicate { index: usize, signer: NotaryAddress },
    #[error("certificate has {found} valid notary signatures, the deal needs {threshold}")]
    BelowThreshold { found: usize, threshold: u8 },
    #[error("certificate carries {found} signatures, more than the limit {max}")]
    TooMany { found: usize, max: usize },
}

impl Certificate {
    /// Checks that at least `threshold` distinct members of `notaries` signed
    /// `(expected_deal, expected_decision)`. Every signature present must be
    /// valid and from the set.
    pub fn verify(
        &self,
        expected_deal: DealId,
        expected_decision: Decision,
        notaries: &[NotaryAddress],
        threshold: u8,
    ) -> Result<(), CertificateError> {
        if self.deal_id != expected_deal {
            return Err(CertificateError::WrongDeal { expected: expected_deal, found: self.deal_id });
        }
        if self.decision != expected_decision {
            return Err(CertificateError::WrongDecision { expected: expected_decision, found: self.decision });
        }
        if self.signatures.len() > CERTIFICATE_SIGNATURES_MAX {
            return Err(CertificateError::TooMany { found: self.signatures.len(), max: CERTIFICATE_SIGNATURES_MAX });
        }
        let digest = decision_digest(self.deal_id, self.decision);
        let mut signers: Vec<NotaryAddress> = Vec::with_capacity(self.signatures.len());
        for (index, signature) in self.signatures.iter().enumerate() {
            let signer = signature.recover(&digest).ok_or(CertificateError::BadSignature { index })?;
            if !notaries.contains(&signer) {
                return Err(CertificateError::NotInSet { index, signer });
            }
            if signers.contains(&signer) {
                return Err(CertificateError::Duplicate { index, signer });
            }
            signers.push(signer);
        }
        if signers.len() < usize::from(threshold) {
            return Err(CertificateError::BelowThreshold { found: signers.len(), threshold });
        }
        Ok(())
    }
}

/// The hashlock preimage the buyer draws.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Secret(pub [u8; 32]);

impl Secret {
    pub fn hash(&self) -> Hash32 {
        Hash32::sha256(&[&self.0])
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // A secret is printed only once revealed on chain; never its full value in logs.
        write!(f, "Secret({})", &crate::hash::to_hex(&self.0)[..4])
    }
}

/// The single-use credential that unlocks a reservation.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub enum Token {
    Secret(Secret),
    Certificate(Certificate),
}

fixed_newtype!(Ed25519Signature, 64);
fixed_newtype!(RecoverableSignature, 65);

impl Encode for Decision {
    fn encode(&self, writer: &mut Writer) {
        writer.u8(self.code());
    }
}
impl Decode for Decision {
    fn decode(reader: &mut Reader<'_>) -> Result<Self, DecodeError> {
        match reader.u8()? {
            1 => Ok(Decision::Commit),
            2 => Ok(Decision::Abort),
            3 => Ok(Decision::Release),
            4 => Ok(Decision::Reverse),
            tag => Err(reader.tag_error("decision", tag)),
        }
    }
}
impl Encode for Certificate {
    fn encode(&self, writer: &mut Writer) {
        writer.put(&self.deal_id);
        writer.put(&self.decision);
        writer.put(&self.signatures);
    }
}
impl Decode for Certificate {
    fn decode(reader: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Certificate {
            deal_id: reader.get()?,
            decision: reader.get()?,
            signatures: decode_list(reader, "certificate signatures", CERTIFICATE_SIGNATURES_MAX)?,
        })
    }
}
impl Encode for Vote {
    fn encode(&self, writer: &mut Writer) {
        writer.put(&self.deal_id);
        writer.put(&self.decision);
        writer.put(&self.signature);
    }
}
impl Decode for Vote {
    fn decode(reader: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Vote { deal_id: reader.get()?, decision: reader.get()?, signature: reader.get()? })
    }
}
impl Encode for Token {
    fn encode(&self, writer: &mut Writer) {
        match self {
            Token::Secret(secret) => {
                writer.u8(1);
                writer.fixed(&secret.0);
            }
            Token::Certificate(certificate) => {
                writer.u8(2);
                writer.put(certificate);
            }
        }
    }
}
impl Decode for Token {
    fn decode(reader: &mut Reader<'_>) -> Result<Self, DecodeError> {
        match reader.u8()? {
            1 => Ok(Token::Secret(Secret(reader.array()?))),
            2 => Ok(Token::Certificate(reader.get()?)),
            tag => Err(reader.tag_error("token", tag)),
        }
    }
}

macro_rules! serde_fixed_bytes {
    ($module:ident, $len:literal) => {
        mod $module {
            use serde::{Deserialize, Deserializer, Serializer};
            pub fn serialize<S: Serializer>(bytes: &[u8; $len], s: S) -> Result<S::Ok, S::Error> {
                s.serialize_bytes(bytes)
            }
            pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<[u8; $len], D::Error> {
                let bytes: Vec<u8> = Deserialize::deserialize(d)?;
                bytes.try_into().map_err(|_| serde::de::Error::custom("wrong signature length"))
            }
        }
    };
}
serde_fixed_bytes!(serde_bytes_64, 64);
serde_fixed_bytes!(serde_bytes_65, 65);

#[cfg(test)]
mod tests {
    use super::*;

    fn notary(seed: u8) -> NotaryKey {
        NotaryKey::from_seed([seed; 32]).expect("valid scalar")
    }

    #[test]
    fn notary_address_matches_ethereum_derivation() {
        // Private key 1 has the well-known address 0x7e5f4552091a69125d5dfcb7b8c2659029395bdf.
        let mut seed = [0u8; 32];
        seed[31] = 1;
        let key = NotaryKey::from_seed(seed).expect("valid scalar");
        assert_eq!(key.address().to_string(), "0x7e5f4552091a69125d5dfcb7b8c2659029395bdf");
    }

    #[test]
    fn certificate_needs_threshold_distinct_members() {
        let deal = DealId(Hash32::sha256(&[b"deal"]));
        let keys = [notary(1), notary(2), notary(3)];
        let set: Vec<_> = keys.iter().map(NotaryKey::address).collect();
        let vote = |key: &NotaryKey, decision| key.sign_decision(deal, decision).signature;
        let certificate = |signatures| Certificate { deal_id: deal, decision: Decision::Commit, signatures };

        let good = certificate(vec![vote(&keys[0], Decision::Commit), vote(&keys[2], Decision::Commit)]);
        assert_eq!(good.verify(deal, Decision::Commit, &set, 2), Ok(()));
        assert!(matches!(good.verify(deal, Decision::Abort, &set, 2), Err(CertificateError::WrongDecision { .. })));
        let other_deal = DealId(Hash32::sha256(&[b"other"]));
        assert!(matches!(good.verify(other_deal, Decision::Commit, &set, 2), Err(CertificateError::WrongDeal { .. })));

        let duplicated = certificate(vec![vote(&keys[0], Decision::Commit), vote(&keys[0], Decision::Commit)]);
        assert!(matches!(
            duplicated.verify(deal, Decision::Commit, &set, 2),
            Err(CertificateError::Duplicate { index: 1, .. })
        ));

        let short = certificate(vec![vote(&keys[1], Decision::Commit)]);
        assert!(matches!(
            short.verify(deal, Decision::Commit, &set, 2),
            Err(CertificateError::BelowThreshold { found: 1, threshold: 2 })
        ));

        let outsider = certificate(vec![vote(&keys[0], Decision::Commit), vote(&notary(9), Decision::Commit)]);
        assert!(matches!(
            outsider.verify(deal, Decision::Commit, &set, 2),
            Err(CertificateError::NotInSet { index: 1, .. })
        ));

        // An abort vote does not count toward a commit certificate.
        let mixed = certificate(vec![vote(&keys[0], Decision::Commit), vote(&keys[1], Decision::Abort)]);
        assert!(mixed.verify(deal, Decision::Commit, &set, 2).is_err());
    }

    #[test]
    fn deal_signature_binds_party_and_deal() {
        let party = PartyKey::from_seed([7; 32]);
        let deal = DealId(Hash32::sha256(&[b"deal"]));
        let signature = party.sign_deal(deal);
        assert_eq!(verify_deal_signature(party.public(), deal, &signature), Ok(()));
        let other = PartyKey::from_seed([8; 32]).public();
        assert!(verify_deal_signature(other, deal, &signature).is_err());
        let other_deal = DealId(Hash32::sha256(&[b"x"]));
        assert!(verify_deal_signature(party.public(), other_deal, &signature).is_err());
    }
}
