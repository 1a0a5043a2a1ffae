//! Domain types to protobuf messages and back. The canonical encodings travel
//! as bytes; the readable fields beside them are for people and other languages.

use interlock_core::encoding::Encode;
use interlock_core::{EscrowEvent, Reservation, ReservationState};
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
