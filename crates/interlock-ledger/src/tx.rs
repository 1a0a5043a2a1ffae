//! Signed transactions and their canonical encoding.

use crate::error::LedgerError;
use interlock_core::crypto::{verify_ed25519, Ed25519Signature, PartyKey, PublicKey};
use interlock_core::encoding::{Decode, DecodeError, Encode, Reader, Writer};
use interlock_core::limits::TRANSACTION_LEN_MAX;
use interlock_core::{Address, Asset, EscrowOp, Hash32, NetworkId, PartyId};
use serde::{Deserialize, Serialize};

/// What a transaction does.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub enum Op {
    /// Operator only: admit an account (an ed25519 key) to the network.
    Register { account: PartyId },
    /// Operator only: create new units of a fungible asset, or a new unique item.
    Issue { to: Address, asset: Asset },
    /// Move an asset to another account.
    Transfer { to: Address, asset: Asset },
    /// The escrow module: reserve, execute, cancel.
    Escrow(EscrowOp),
    /// On a chain whose spends pay fees (`Rules::spends_pay_fees`, the
    /// simulator's script chains): the execute or cancel `op`, paying `fee`
    /// units of the leg's asset out of the leg to the network's operator, the
    /// chain's block producer; the payee receives the rest. Like a spend of an
    /// output it takes no account nonce: the leg is spent once, which is all
    /// the replay protection it needs, and a spend that waits for its fee
    /// never blocks its signer's other transactions.
    Spend { op: EscrowOp, fee: u128 },
}

/// A transaction signed by the account it acts for. The signature covers the
/// network id, so a transaction cannot be replayed on another network, and the
/// nonce, so it cannot be replayed on this one.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct Transaction {
    pub network: NetworkId,
    pub signer: PartyId,
    pub nonce: u64,
    pub op: Op,
    pub signature: Ed25519Signature,
}

pub type TxId = Hash32;

const SIGNING_DOMAIN: &[u8; 16] = b"interlock/tx/v1\0";

fn signing_bytes(network: NetworkId, signer: PartyId, nonce: u64, op: &Op) -> Vec<u8> {
    let mut writer = Writer::new();
    writer.fixed(SIGNING_DOMAIN);
    writer.put(&network);
    writer.put(&signer);
    writer.u64(nonce);
    writer.put(op);
    writer.finish()
}

impl Transaction {
    pub fn sign(key: &PartyKey, network: NetworkId, nonce: u64, op: Op) -> Transaction {
        let signer = key.public();
        let signature = key.sign(&signing_bytes(network, signer, nonce, &op));
        Transaction { network, signer, nonce, op, signature }
    }

    /// The account this transaction acts for.
    pub fn sender(&self) -> Address {
        Address::from_bytes(self.signer.0)
    }

    pub fn id(&self) -> TxId {
        Hash32::sha256(&[&self.to_bytes()])
    }

    pub fn verify_signature(&self) -> Result<(), LedgerError> {
        let message = signing_bytes(self.network, self.signer, self.nonce, &self.op);
        verify_ed25519(self.signer, &message, &self.signature)
            .map_err(|_| LedgerError::BadSignature { signer: self.signer })
    }

    /// [`Transaction::verify_signature`] with the signer's key already decoded.
    pub fn verify_signature_with(&self, key: &PublicKey) -> Result<(), LedgerError> {
        assert_eq!(key.party(), self.signer, "the key is the signer's");
        let message = signing_bytes(self.network, self.signer, self.nonce, &self.op);
        key.verify(&message, &self.signature).map_err(|_| LedgerError::BadSignature { signer: self.signer })
    }

    /// Decodes a transaction received from outside, refusing oversized input first.
    pub fn decode_untrusted(bytes: &[u8]) -> Result<Transaction, LedgerError> {
        if bytes.len() > TRANSACTION_LEN_MAX {
            return Err(LedgerError::TooLarge { length: bytes.len(), max: TRANSACTION_LEN_MAX });
        }
        Ok(Transaction::from_bytes(bytes)?)
    }
}

impl Encode for Op {
    fn encode(&self, writer: &mut Writer) {
        match self {
            Op::Register { account } => {
                writer.u8(1);
                writer.put(account);
            }
            Op::Issue { to, asset } => {
                writer.u8(2);
                writer.put(to);
                writer.put(asset);
            }
            Op::Transfer { to, asset } => {
                writer.u8(3);
                writer.put(to);
                writer.put(asset);
            }
            Op::Escrow(op) => {
                writer.u8(4);
                writer.put(op);
            }
            Op::Spend { op, fee } => {
                writer.u8(5);
                writer.put(op);
                writer.u128(*fee);
            }
        }
    }
}

impl Decode for Op {
    fn decode(reader: &mut Reader<'_>) -> Result<Self, DecodeError> {
        match reader.u8()? {
            1 => Ok(Op::Register { account: reader.get()? }),
            2 => Ok(Op::Issue { to: reader.get()?, asset: reader.get()? }),
            3 => Ok(Op::Transfer { to: reader.get()?, asset: reader.get()? }),
            4 => Ok(Op::Escrow(reader.get()?)),
            5 => Ok(Op::Spend { op: reader.get()?, fee: reader.u128()? }),
            tag => Err(reader.tag_error("transaction operation", tag)),
        }
    }
}

impl Encode for Transaction {
    fn encode(&self, writer: &mut Writer) {
        writer.u8(1);
        writer.put(&self.network);
        writer.put(&self.signer);
        writer.u64(self.nonce);
        writer.put(&self.op);
        writer.put(&self.signature);
    }
}

impl Decode for Transaction {
    fn decode(reader: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let version = reader.u8()?;
        if version != 1 {
            return Err(DecodeError::Version { what: "transaction", expected: 1, found: version });
        }
        Ok(Transaction {
            network: reader.get()?,
            signer: reader.get()?,
            nonce: reader.u64()?,
            op: reader.get()?,
            signature: reader.get()?,
        })
    }
}
