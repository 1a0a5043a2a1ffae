//! The decoders that read bytes from the network never panic, and what they
//! accept re-encodes to the same bytes: random input, and mutations of valid
//! transactions (flipped bits, cuts, insertions).

use interlock_core::crypto::{PartyKey, Secret, Token};
use interlock_core::encoding::{Decode, Encode};
use interlock_core::{EscrowOp, Hash32, NetworkId, ReservationId};
use interlock_ledger::{Block, BlockHeader, Op, Transaction};
use proptest::prelude::*;

fn valid_transaction(nonce: u64) -> Vec<u8> {
    let key = PartyKey::from_seed([4; 32]);
    let op = Op::Escrow(EscrowOp::Execute {
        reservation: ReservationId(Hash32([9; 32])),
        token: Token::Secret(Secret([1; 32])),
    });
    Transaction::sign(&key, NetworkId(1), nonce, op).to_bytes()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
        if let Ok(tx) = Transaction::decode_untrusted(&bytes) {
            prop_assert_eq!(tx.to_bytes(), bytes.clone());
        }
        if let Ok(header) = BlockHeader::from_bytes(&bytes) {
            prop_assert_eq!(header.to_bytes(), bytes.clone());
        }
        let _ = Block::from_bytes(&bytes);
    }

    #[test]
    fn mutated_transactions_never_panic(nonce in any::<u64>(), flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..6), cut in any::<usize>(), insert in any::<(usize, u8)>()) {
        let valid = valid_transaction(nonce);
        let mut flipped = valid.clone();
        for (index, mask) in flips {
            let index = index % flipped.len();
            flipped[index] ^= mask.max(1);
        }
        let mut inserted = valid.clone();
        inserted.insert(insert.0 % (valid.len() + 1), insert.1);
        for bytes in [flipped, valid[..cut % valid.len()].to_vec(), inserted] {
            if let Ok(tx) = Transaction::decode_untrusted(&bytes) {
                prop_assert_eq!(tx.to_bytes(), bytes);
                // Whatever decodes still has to pass its signature check to apply.
                let _ = tx.verify_signature();
            }
        }
    }
}
