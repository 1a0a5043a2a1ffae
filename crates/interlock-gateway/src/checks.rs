//! Everything a gateway decodes and verifies from the network, as pure
//! functions: signed deals, lock assertions, notifications, transactions. Each
//! returns a value that passed every check, or the [`GatewayError`] saying
//! which one failed; none panics on any input (the decoder fuzz tests feed them
//! arbitrary bytes).

use super::error::GatewayError;
use crate::gateway_store::SignedTerms;
use interlock_core::crypto::{Ed25519Signature, PartyKey, PublicKey};
use interlock_core::encoding::{Decode, Encode};
use interlock_core::escrow::{self, EscrowContext};
use interlock_core::limits::TRANSACTION_LEN_MAX;
use interlock_core::{
    Address, Asset, DealId, DealTerms, EscrowError, EscrowEvent, EscrowOp, Hash32, LegKind, NetworkId, PartyId,
    Reservation, ReservationId, ReservationState,
};
use interlock_identity::{Directory, PartyEntry};
use interlock_ledger::{LedgerError, Op, Transaction};
use interlock_proto::v1;
use interlock_rpc::status::ledger_status;
use std::sync::Arc;

/// What a lock assertion's signature starts with, so it can never be mistaken
/// for anything else the gateway key signs (its keeper's transactions).
pub const LOCK_ASSERTION_CONTEXT: &[u8] = b"interlock/lock-assertion/v1";
/// Largest encoded reservation or escrow event a peer may send, in bytes.
pub const ESCROW_ENCODING_LEN_MAX: usize = TRANSACTION_LEN_MAX;

/// Which party of a deal.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Side {
    Buyer,
    Seller,
}

impl Side {
    pub fn as_str(self) -> &'static str {
        match self {
            Side::Buyer => "buyer",
            Side::Seller => "seller",
        }
    }

    pub fn key(self, terms: &DealTerms) -> PartyId {
        match self {
            Side::Buyer => terms.buyer,
            Side::Seller => terms.seller,
        }
    }
}

/// Decodes a signed deal's terms and signatures; verifies nothing yet.
pub fn decode_signed_deal(deal: &v1::SignedDeal) -> Result<SignedTerms, GatewayError> {
    let deal = interlock_rpc::wire::WireDeal::from_message(deal)
        .map_err(|error| GatewayError::malformed(error.field, error.reason))?;
    Ok(SignedTerms {
        terms: Arc::new(deal.terms),
        buyer_signature: deal.buyer_signature,
        seller_signature: deal.seller_signature,
    })
}

/// The networks a deal's legs are on other than `own` (none when both legs
/// are on `own`).
pub fn other_network(terms: &DealTerms, own: NetworkId) -> Option<NetworkId> {
    [terms.payment.network, terms.delivery.network].into_iter().find(|network| *network != own)
}

/// Checks the terms' own consistency and that one of their legs is on `network`.
pub fn check_terms(terms: &DealTerms, network: NetworkId) -> Result<(), GatewayError> {
    terms.validate()?;
    if terms.payment.network != network && terms.delivery.network != network {
        return Err(GatewayError::NotOurDeal { deal_id: terms.id(), network });
    }
    Ok(())
}

/// The directory's party whose key is `key`.
pub fn party_by_key(directory: &Directory, key: PartyId) -> Option<&PartyEntry> {
    directory.parties.iter().find(|party| party.key == key)
}

fn listed(directory: &Directory, terms: &DealTerms, side: Side) -> Result<(), GatewayError> {
    let key = side.key(terms);
    match party_by_key(directory, key) {
        Some(_) => Ok(()),
        None => Err(GatewayError::Denied(format!(
            "the deal's {} {} is not a party in the directory: deals are between registered parties",
            side.as_str(),
            interlock_core::hash::to_hex(&key.0)
        ))),
    }
}

fn verify_side(deal: &SignedTerms, side: Side, signature: &Ed25519Signature) -> Result<(), GatewayError> {
    let deal_id = deal.deal_id();
    let key = side.key(&deal.terms);
    let verified = PublicKey::decode(key).and_then(|key| key.verify_deal(deal_id, signature));
    verified.map_err(|_| {
        GatewayError::Unauthenticated(format!(
            "{} signature does not verify over deal {deal_id} against the {} key {}",
            side.as_str(),
            side.as_str(),
            interlock_core::hash::to_hex(&key.0)
        ))
    })
}

/// A proposal: exactly one signature, valid, by a party of the directory (the
/// counterparty must be listed too). Returns the side that signed.
pub fn verify_proposal(deal: &SignedTerms, directory: &Directory) -> Result<Side, GatewayError> {
    let deal_id = deal.deal_id();
    let (side, signature) = match (deal.buyer_signature, deal.seller_signature) {
        (Some(signature), None) => (Side::Buyer, signature),
        (None, Some(signature)) => (Side::Seller, signature),
        (None, None) => {
            return Err(GatewayError::Unauthenticated(format!(
                "proposal of deal {deal_id} carries no signature: expected its proposer's"
            )))
        }
        (Some(_), Some(_)) => {
            return Err(GatewayError::malformed(
                "deal",
                format!("proposal of deal {deal_id} carries both signatures: register a deal both parties signed with RegisterDeal"),
            ))
        }
    };
    verify_side(deal, side, &signature)?;
    listed(directory, &deal.terms, Side::Buyer)?;
    listed(directory, &deal.terms, Side::Seller)?;
    Ok(side)
}

/// A registration: both signatures present and valid, both parties in the directory.
pub fn verify_registration(deal: &SignedTerms, directory: &Directory) -> Result<(), GatewayError> {
    let deal_id = deal.deal_id();
    for (side, signature) in [(Side::Buyer, deal.buyer_signature), (Side::Seller, deal.seller_signature)] {
        let Some(signature) = signature else {
            return Err(GatewayError::Unauthenticated(format!(
                "deal {deal_id} is not signed by its {}: a registration needs both parties' signatures",
                side.as_str()
            )));
        };
        verify_side(deal, side, &signature)?;
    }
    listed(directory, &deal.terms, Side::Buyer)?;
    listed(directory, &deal.terms, Side::Seller)?;
    Ok(())
}

/// The message a gateway signs to assert a reservation: the context, the
/// network and height (8 bytes big-endian each), the block hash and the
/// sha256 of the reservation's canonical encoding.
pub fn lock_assertion_message(
    network: NetworkId,
    height: u64,
    block_hash: &[u8],
    reservation_encoded: &[u8],
) -> Vec<u8> {
    let digest = Hash32::sha256(&[reservation_encoded]);
    [LOCK_ASSERTION_CONTEXT, &network.0.to_be_bytes(), &height.to_be_bytes(), block_hash, &digest.0].concat()
}

/// Asserts `reservation`, committed in block `block_hash` at `height` of `network`.
pub fn sign_lock_assertion(
    key: &PartyKey,
    network: NetworkId,
    height: u64,
    block_hash: Hash32,
    reservation: &Reservation,
) -> v1::LockAssertion {
    let reservation_encoded = reservation.to_bytes();
    let signature = key.sign(&lock_assertion_message(network, height, &block_hash.0, &reservation_encoded));
    v1::LockAssertion {
        network: network.0,
        height,
        block_hash: block_hash.0.to_vec(),
        reservation_encoded,
        signature: signature.0.to_vec(),
    }
}

/// Checks a lock assertion against the directory's key of the asserting
/// network's gateway, then decodes the reservation it asserts.
pub fn verify_lock_assertion(
    assertion: &v1::LockAssertion,
    directory: &Directory,
) -> Result<Reservation, GatewayError> {
    let network = NetworkId(assertion.network);
    let gateway = directory
        .gateway_for(network)
        .ok_or_else(|| GatewayError::Denied(format!("the directory lists no gateway for {network}")))?;
    fixed::<32>("block_hash", &assertion.block_hash)?;
    if assertion.reservation_encoded.len() > ESCROW_ENCODING_LEN_MAX {
        let length = assertion.reservation_encoded.len();
        return Err(GatewayError::malformed(
            "reservation_encoded",
            format!("{length} bytes exceed the limit {ESCROW_ENCODING_LEN_MAX}"),
        ));
    }
    let signature = fixed("signature", &assertion.signature)?;
    let message =
        lock_assertion_message(network, assertion.height, &assertion.block_hash, &assertion.reservation_encoded);
    PublicKey::decode(gateway.key).and_then(|key| key.verify(&message, &Ed25519Signature(signature))).map_err(
        |_| {
            GatewayError::Unauthenticated(format!(
                "lock assertion at height {} of {network} is not signed by that network's gateway {} (key {})",
                assertion.height,
                gateway.name,
                interlock_core::hash::to_hex(&gateway.key.0)
            ))
        },
    )?;
    let reservation = Reservation::from_bytes(&assertion.reservation_encoded)
        .map_err(|error| GatewayError::malformed("reservation_encoded", error))?;
    if reservation.state != ReservationState::Reserved {
        return Err(GatewayError::malformed(
            "reservation_encoded",
            format!("an asserted reservation is reserved, found {:?}", reservation.state),
        ));
    }
    Ok(reservation)
}

/// Decodes a notification's escrow event: an execution or a cancellation.
pub fn decode_notification(notification: &v1::Notification) -> Result<EscrowEvent, GatewayError> {
    let length = notification.event_encoded.len();
    if length > ESCROW_ENCODING_LEN_MAX {
        let reason = format!("{length} bytes exceed the limit {ESCROW_ENCODING_LEN_MAX}");
        return Err(GatewayError::malformed("event_encoded", reason));
    }
    let event = EscrowEvent::from_bytes(&notification.event_encoded)
        .map_err(|error| GatewayError::malformed("event_encoded", error))?;
    match event {
        EscrowEvent::Executed { .. } | EscrowEvent::Cancelled { .. } => Ok(event),
        EscrowEvent::Reserved(_) => Err(GatewayError::malformed(
            "event_encoded",
            "a notification carries an execution or a cancellation, found a reservation (assert it with AssertLocks)",
        )),
        // Gateways refuse deals with an inspection period (`terms_checked`),
        // so no peer has a held leg of a deal both gateways registered.
        EscrowEvent::Held { .. } => Err(GatewayError::malformed(
            "event_encoded",
            "a notification carries an execution or a cancellation, found a held execution (inspection periods are not relayed between gateways)",
        )),
    }
}

/// Decodes a submitted transaction and verifies its signature; only escrow
/// operations pass.
pub fn decode_submission(bytes: &[u8]) -> Result<Transaction, GatewayError> {
    let transaction =
        Transaction::decode_untrusted(bytes).map_err(|error| GatewayError::Ledger(ledger_status(&error)))?;
    transaction.verify_signature().map_err(|error| GatewayError::Ledger(ledger_status(&error)))?;
    if !matches!(transaction.op, Op::Escrow(_)) {
        return Err(GatewayError::malformed(
            "transaction_encoded",
            "a gateway relays escrow operations only (reserve, execute, cancel)",
        ));
    }
    Ok(transaction)
}

/// The one reservation an execute or cancel names, as the escrow rules see it:
/// moving assets is the ledger's business, so locking and releasing do nothing.
struct OneReservation(Reservation);

impl EscrowContext for OneReservation {
    fn reservation(&self, id: &ReservationId) -> Option<&Reservation> {
        (self.0.id == *id).then_some(&self.0)
    }
    fn check_holds(&self, _: &Address, _: &Asset) -> Result<(), EscrowError> {
        Ok(())
    }
    fn lock(&mut self, _: &Address, _: &Asset) {}
    fn release(&mut self, _: &Address, _: &Asset) {}
    fn insert_reservation(&mut self, _: Reservation) {}
    fn set_state(&mut self, _: &ReservationId, _: ReservationState) {}
}

/// Runs the core's execute or cancel rule on the reservation as the ledger
/// holds it now, leaving time to the ledger (its block time decides expiry):
/// a wrong secret, a bad certificate, a caller who is not the beneficiary or a
/// reservation already settled is refused before it reaches the network.
pub fn precheck(op: &EscrowOp, signer: Address, reservation: Reservation) -> Result<(), GatewayError> {
    let mut context = OneReservation(reservation);
    let checked = match op {
        EscrowOp::Reserve(_) => return Ok(()),
        EscrowOp::Execute { reservation, token } => escrow::execute(&mut context, &signer, reservation, token, 0),
        EscrowOp::Cancel { reservation, certificate } => {
            escrow::cancel(&mut context, &signer, reservation, certificate.as_ref(), u64::MAX)
        }
        EscrowOp::Resolve { reservation, verdict } => escrow::resolve(&mut context, &signer, reservation, verdict),
    };
    checked.map(|_| ()).map_err(|error| GatewayError::Ledger(ledger_status(&LedgerError::Escrow(error))))
}

/// The network a deal's `leg` is on.
pub fn leg_network(terms: &DealTerms, leg: LegKind) -> NetworkId {
    terms.leg(leg).network
}

/// A 32-byte deal id from a request field.
pub fn deal_id(field: &'static str, bytes: &[u8]) -> Result<DealId, GatewayError> {
    fixed(field, bytes).map(|bytes| DealId(Hash32(bytes)))
}

/// A request field that must be exactly `N` bytes (a hash, an id, a signature).
pub fn fixed<const N: usize>(field: &'static str, bytes: &[u8]) -> Result<[u8; N], GatewayError> {
    bytes.try_into().map_err(|_| GatewayError::malformed(field, format!("expected {N} bytes, found {}", bytes.len())))
}
