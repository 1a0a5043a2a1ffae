//! Blocks: a header chained to its parent by hash, committing to its
//! transactions with a Merkle root.

use crate::tx::{Transaction, TxId};
use interlock_core::encoding::{decode_list, Decode, DecodeError, Encode, Reader, Writer};
use interlock_core::hash::merkle_root;
use interlock_core::{EscrowEvent, Hash32, NetworkId, PartyId};
use serde::{Deserialize, Serialize};

/// Most transactions one block holds.
pub const BLOCK_TRANSACTIONS_MAX: usize = 20_000;

#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct BlockHeader {
    pub network: NetworkId,
    pub height: u64,
    pub parent: Hash32,
    pub timestamp_ms: u64,
    pub transactions_root: Hash32,
    pub transaction_count: u32,
}

impl BlockHeader {
    pub fn hash(&self) -> Hash32 {
        Hash32::sha256(&[&self.to_bytes()])
    }
}

#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct Block {
    pub header: BlockHeader,
    pub transactions: Vec<Transaction>,
}

impl Block {
    pub fn transactions_root(transactions: &[Transaction]) -> Hash32 {
        let ids: Vec<TxId> = transactions.iter().map(Transaction::id).collect();
        merkle_root(&ids)
    }

    /// True when the header commits to exactly these transactions.
    pub fn is_consistent(&self) -> bool {
        usize::try_from(self.header.transaction_count).is_ok_and(|count| count == self.transactions.len())
            && Block::transactions_root(&self.transactions) == self.header.transactions_root
    }
}

/// The first state of a network: who operates it and when it began.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct Genesis {
    pub network: NetworkId,
    pub operator: PartyId,
    pub timestamp_ms: u64,
}

impl Genesis {
    /// The header every chain of this network starts from (height 0, no transactions).
    pub fn header(&self) -> BlockHeader {
        BlockHeader {
            network: self.network,
            height: 0,
            parent: Hash32::sha256(&[b"interlock/genesis/v1", &self.operator.0]),
            timestamp_ms: self.timestamp_ms,
            transactions_root: merkle_root(&[]),
            transaction_count: 0,
        }
    }
}

/// One escrow event, where it happened.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct LedgerEvent {
    pub network: NetworkId,
    pub height: u64,
    pub transaction: TxId,
    pub event: EscrowEvent,
}

impl Encode for BlockHeader {
    fn encode(&self, writer: &mut Writer) {
        writer.u8(1);
        writer.put(&self.network);
        writer.u64(self.height);
        writer.put(&self.parent);
        writer.u64(self.timestamp_ms);
        writer.put(&self.transactions_root);
        writer.u64(u64::from(self.transaction_count));
    }
}

impl Decode for BlockHeader {
    fn decode(reader: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let version = reader.u8()?;
        if version != 1 {
            return Err(DecodeError::Version { what: "block header", expected: 1, found: version });
        }
        Ok(BlockHeader {
            network: reader.get()?,
            height: reader.u64()?,
            parent: reader.get()?,
            timestamp_ms: reader.u64()?,
            transactions_root: reader.get()?,
            transaction_count: u32::try_from(reader.u64()?).map_err(|_| DecodeError::Invalid {
                what: "block header",
                reason: "transaction count over u32".into(),
            })?,
        })
    }
}

impl Encode for Block {
    fn encode(&self, writer: &mut Writer) {
        writer.put(&self.header);
        writer.put(&self.transactions);
    }
}

impl Decode for Block {
    fn decode(reader: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Block {
            header: reader.get()?,
            transactions: decode_list(reader, "block transactions", BLOCK_TRANSACTIONS_MAX)?,
        })
    }
}
