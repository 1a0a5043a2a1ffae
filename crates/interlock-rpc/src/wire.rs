//! Domain types to protobuf messages and back. The canonical encodings travel
//! as bytes; the readable fields beside them are for people and other languages.

use interlock_core::encoding::{decode_terms, Encode};
use interlock_core::{DealTerms, Ed25519Signature, EscrowEvent, Reservation, ReservationState, Settlement};
use interlock_ledger::{BlockHeader, LedgerEvent};
use interlock_proto::v1;

pub fn header(header: &BlockHeader) -> v1::BlockHeader {
    v1::BlockHeader {
        network: header.network.0,
        height: header.height,
        parent: header.parent.0.to_vec(),
        timestamp_ms: header.timestamp_ms,
        transactions_root: header.transactions_root.0.to_vec(),
        transaction_count: header.transaction_count,
        hash: header.hash().0.to_vec(),
    }
}

pub fn event_kind(event: &EscrowEvent) -> &'static str {
    match event {
        EscrowEvent::Reserved(_) => "reserved",
        EscrowEvent::Executed { .. } => "executed",
        EscrowEvent::Cancelled { .. } => "cancelled",
        EscrowEvent::Held { .. } => "held",
    }
}

pub fn event(event: &LedgerEvent) -> v1::LedgerEvent {
    v1::LedgerEvent {
        network: event.network.0,
        height: event.height,
        transaction_id: event.transaction.0.to_vec(),
        deal_id: event.event.deal_id().0 .0.to_vec(),
        kind: event_kind(&event.event).into(),
        event_encoded: event.event.to_bytes(),
    }
}

pub fn state(state: ReservationState) -> &'static str {
    match state {
        ReservationState::Reserved => "reserved",
        ReservationState::Executed => "executed",
        ReservationState::Cancelled => "cancelled",
        ReservationState::Held => "held",
    }
}

pub fn reservation(reservation: &Reservation) -> v1::Reservation {
    v1::Reservation {
        reservation_id: reservation.id.0 .0.to_vec(),
        deal_id: reservation.deal_id.0 .0.to_vec(),
        leg: reservation.leg.to_string(),
        state: state(reservation.state).into(),
        expiry_ms: reservation.expiry_ms,
        reservation_encoded: reservation.to_bytes(),
    }
}

/// A 32-byte id from a request field, or a message saying what was found.
pub fn bytes32(field: &'static str, bytes: &[u8]) -> Result<[u8; 32], tonic::Status> {
    bytes
        .try_into()
        .map_err(|_| tonic::Status::invalid_argument(format!("{field} must be 32 bytes, found {}", bytes.len())))
}

/// A deal's terms with the parties' signatures gathered so far, as every
/// service sends it (`SignedDeal`): a missing signature travels as no bytes.
pub fn signed_deal(
    terms: &DealTerms,
    buyer: Option<&Ed25519Signature>,
    seller: Option<&Ed25519Signature>,
) -> v1::SignedDeal {
    let bytes =
        |signature: Option<&Ed25519Signature>| signature.map_or_else(Vec::new, |signature| signature.0.to_vec());
    v1::SignedDeal { terms_encoded: terms.to_bytes(), buyer_signature: bytes(buyer), seller_signature: bytes(seller) }
}

/// What a `SignedDeal`'s bytes say, before anything is verified.
pub struct WireDeal {
    pub terms: DealTerms,
    pub buyer_signature: Option<Ed25519Signature>,
    pub seller_signature: Option<Ed25519Signature>,
}

/// Why a `SignedDeal` (or a request carrying the same fields) cannot be read:
/// the field, and what was wrong with it.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct WireDealError {
    pub field: &'static str,
    pub reason: String,
}

impl std::fmt::Display for WireDealError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "malformed {}: {}", self.field, self.reason)
    }
}

impl From<WireDealError> for tonic::Status {
    fn from(error: WireDealError) -> tonic::Status {
        tonic::Status::invalid_argument(error.to_string())
    }
}

/// Reads a deal's terms and signatures from their wire fields.
pub fn wire_deal(terms: &[u8], buyer: &[u8], seller: &[u8]) -> Result<WireDeal, WireDealError> {
    let malformed = |reason: String| WireDealError { field: "terms_encoded", reason };
    let terms = decode_terms(terms).map_err(|error| malformed(error.to_string()))?;
    terms_in_stored_range(&terms).map_err(|error| malformed(error.to_string()))?;
    Ok(WireDeal {
        terms,
        buyer_signature: optional_signature("buyer_signature", buyer)?,
        seller_signature: optional_signature("seller_signature", seller)?,
    })
}

/// Every integer of deal terms that a service keeps as a SQLite integer
/// (each leg's network, every deadline) is within [`STORED_INTEGER_MAX`]: a
/// deal the stores cannot hold exactly is refused before any of them writes it.
pub fn terms_in_stored_range(terms: &DealTerms) -> Result<(), OutOfRange> {
    stored_integer("payment network", terms.payment.network.0)?;
    stored_integer("delivery network", terms.delivery.network.0)?;
    match &terms.settlement {
        Settlement::Hashlock { payment_expiry_ms, delivery_expiry_ms, margin_ms, .. } => {
            stored_integer("payment_expiry_ms", *payment_expiry_ms)?;
            stored_integer("delivery_expiry_ms", *delivery_expiry_ms)?;
            stored_integer("margin_ms", *margin_ms)?;
        }
        Settlement::Notary { decision_deadline_ms, backstop_expiry_ms, .. } => {
            stored_integer("decision_deadline_ms", *decision_deadline_ms)?;
            stored_integer("backstop_expiry_ms", *backstop_expiry_ms)?;
        }
    }
    Ok(())
}

/// A signature field: 64 bytes, or none.
pub fn optional_signature(field: &'static str, bytes: &[u8]) -> Result<Option<Ed25519Signature>, WireDealError> {
    match <[u8; 64]>::try_from(bytes) {
        Ok(bytes) => Ok(Some(Ed25519Signature(bytes))),
        Err(_) if bytes.is_empty() => Ok(None),
        Err(_) => Err(WireDealError { field, reason: format!("expected 64 bytes (or none), found {}", bytes.len()) }),
    }
}

impl WireDeal {
    pub fn from_message(deal: &v1::SignedDeal) -> Result<WireDeal, WireDealError> {
        wire_deal(&deal.terms_encoded, &deal.buyer_signature, &deal.seller_signature)
    }

    /// Both signatures, or which one is missing.
    pub fn both_signatures(&self) -> Result<(Ed25519Signature, Ed25519Signature), WireDealError> {
        let missing = |field| WireDealError { field, reason: "expected 64 bytes, found none".to_owned() };
        Ok((
            self.buyer_signature.ok_or(missing("buyer_signature"))?,
            self.seller_signature.ok_or(missing("seller_signature"))?,
        ))
    }
}

/// The largest sequence number, height or time a service accepts from a
/// peer: every store keeps them as SQLite integers, which are signed 64-bit.
pub const STORED_INTEGER_MAX: u64 = i64::MAX.unsigned_abs();

/// A peer's integer field outside the range the service accepts for it.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct OutOfRange {
    pub field: &'static str,
    pub value: u64,
    pub min: u64,
    pub max: u64,
}

impl OutOfRange {
    /// What was expected and what was found, without the field's name.
    pub fn reason(&self) -> String {
        format!("out of range: expected {} to {}, found {}", self.min, self.max, self.value)
    }
}

impl std::fmt::Display for OutOfRange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.field, self.reason())
    }
}

impl From<OutOfRange> for tonic::Status {
    fn from(error: OutOfRange) -> tonic::Status {
        tonic::Status::invalid_argument(error.to_string())
    }
}

/// `value` of `field` when it lies in `min..=max`.
pub fn in_range(field: &'static str, value: u64, min: u64, max: u64) -> Result<u64, OutOfRange> {
    if (min..=max).contains(&value) {
        Ok(value)
    } else {
        Err(OutOfRange { field, value, min, max })
    }
}

/// A sequence number, height or time a store can hold (see [`STORED_INTEGER_MAX`]).
pub fn stored_integer(field: &'static str, value: u64) -> Result<u64, OutOfRange> {
    in_range(field, value, 0, STORED_INTEGER_MAX)
}

/// A list request's `limit`: 0 asks for `default`, anything else must be at
/// most `max` (a larger one is refused, not silently shortened).
pub fn list_limit(field: &'static str, value: u32, default: usize, max: usize) -> Result<usize, OutOfRange> {
    let refused = || OutOfRange { field, value: u64::from(value), min: 0, max: u64::try_from(max).unwrap_or(u64::MAX) };
    let limit = usize::try_from(value).ok().filter(|limit| *limit <= max).ok_or_else(refused)?;
    Ok(if limit == 0 { default } else { limit })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers_outside_their_range_are_refused_with_the_field_and_range() {
        assert_eq!(stored_integer("height", STORED_INTEGER_MAX), Ok(STORED_INTEGER_MAX));
        let error = stored_integer("height", STORED_INTEGER_MAX + 1).expect_err("beyond i64::MAX");
        assert_eq!(
            error.to_string(),
            "height out of range: expected 0 to 9223372036854775807, found 9223372036854775808"
        );
        let status = tonic::Status::from(error);
        assert_eq!(status.code(), tonic::Code::InvalidArgument);
        assert_eq!(list_limit("limit", 0, 100, 1_000), Ok(100));
        assert_eq!(list_limit("limit", 1_000, 100, 1_000), Ok(1_000));
        let error = list_limit("limit", u32::MAX, 100, 1_000).expect_err("above the maximum");
        assert_eq!(error.to_string(), "limit out of range: expected 0 to 1000, found 4294967295");
    }
}
