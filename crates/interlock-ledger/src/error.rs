use interlock_core::encoding::DecodeError;
use interlock_core::{Address, EscrowError, NetworkId, PartyId};

/// Why the ledger refused a transaction or could not do its work. A refused
/// transaction changes nothing.
#[derive(Clone, PartialEq, Eq, Debug, thiserror::Error)]
pub enum LedgerError {
    #[error("malformed transaction: {0}")]
    Decode(#[from] DecodeError),
    #[error("transaction of {length} bytes exceeds the limit {max}")]
    TooLarge { length: usize, max: usize },
    #[error("transaction is for {found}, this ledger is {expected}")]
    WrongNetwork { expected: NetworkId, found: NetworkId },
    #[error("ed25519 signature does not verify for signer {signer:?}")]
    BadSignature { signer: PartyId },
    #[error("account {0:?} is not registered on this network")]
    UnknownAccount(PartyId),
    #[error("account {0:?} is already registered")]
    AlreadyRegistered(PartyId),
    #[error("replayed or stale nonce {found}: expected greater than {last}")]
    StaleNonce { last: u64, found: u64 },
    #[error("only the network operator may {0}")]
    NotOperator(&'static str),
    #[error("{0:?} already exists: a unique item is issued once")]
    ItemExists(String),
    #[error("unique items are issued and moved one at a time, and amounts must be positive")]
    BadAmount,
    #[error(transparent)]
    Escrow(#[from] EscrowError),
    #[error("mempool is full ({0} transactions): try again after the next block")]
    MempoolFull(usize),
    #[error("storage failed: {0}")]
    Store(String),
    #[error("store holds network {found}, expected {expected}")]
    StoreNetwork { expected: NetworkId, found: NetworkId },
    #[error("a spend on this network pays its fee out of the leg: send the {0} as a spend with a fee")]
    FeeRequired(&'static str),
    #[error("spends on this network pay no fee: send the escrow operation itself")]
    NoFees,
    #[error("only an execute or a cancel spends a leg, found a reserve or a verdict")]
    NotASpend,
    #[error(
        "a spend's fee is paid out of a fungible leg and leaves the payee something: expected 1 to {max}, found {fee}"
    )]
    BadFee { fee: u128, max: u128 },
    #[error("this network's escrow cannot hold an executed leg for an inspection period (found a {0})")]
    NoInspection(&'static str),
    #[error("account {0:?} cannot receive: not a ledger account")]
    ForeignAddress(Address),
}
