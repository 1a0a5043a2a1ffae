//! The canonical encoding of the escrow's operations, reservations and events.

use super::{Condition, EscrowEvent, EscrowOp, Reservation, ReservationState, ReserveRequest};
use crate::encoding::{decode_list, Decode, DecodeError, Encode, Reader, Writer};
use crate::limits::NOTARIES_MAX;
use crate::types::reservation_id;

impl Encode for Condition {
    fn encode(&self, writer: &mut Writer) {
        match self {
            Condition::Hashlock(hash) => {
                writer.u8(1);
                writer.put(hash);
            }
            Condition::Notary { notaries, threshold } => {
                writer.u8(2);
                writer.put(notaries);
                writer.u8(*threshold);
            }
            Condition::Inspected { notaries, threshold } => {
                writer.u8(3);
                writer.put(notaries);
                writer.u8(*threshold);
            }
        }
    }
}
impl Decode for Condition {
    fn decode(reader: &mut Reader<'_>) -> Result<Self, DecodeError> {
        match reader.u8()? {
            1 => Ok(Condition::Hashlock(reader.get()?)),
            2 => Ok(Condition::Notary {
                notaries: decode_list(reader, "notaries", NOTARIES_MAX)?,
                threshold: reader.u8()?,
            }),
            3 => Ok(Condition::Inspected {
                notaries: decode_list(reader, "notaries", NOTARIES_MAX)?,
                threshold: reader.u8()?,
            }),
            tag => Err(reader.tag_error("condition", tag)),
        }
    }
}
impl Encode for ReserveRequest {
    fn encode(&self, writer: &mut Writer) {
        writer.put(&self.deal_id);
        writer.put(&self.leg);
        writer.put(&self.asset);
        writer.put(&self.owner);
        writer.put(&self.beneficiary);
        writer.put(&self.keeper);
        writer.put(&self.condition);
        writer.u64(self.expiry_ms);
    }
}
impl Decode for ReserveRequest {
    fn decode(reader: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(ReserveRequest {
            deal_id: reader.get()?,
            leg: reader.get()?,
            asset: reader.get()?,
            owner: reader.get()?,
            beneficiary: reader.get()?,
            keeper: reader.get()?,
            condition: reader.get()?,
            expiry_ms: reader.u64()?,
        })
    }
}
impl Encode for EscrowOp {
    fn encode(&self, writer: &mut Writer) {
        match self {
            EscrowOp::Reserve(request) => {
                writer.u8(1);
                writer.put(request);
            }
            EscrowOp::Execute { reservation, token } => {
                writer.u8(2);
                writer.put(reservation);
                writer.put(token);
            }
            EscrowOp::Cancel { reservation, certificate } => {
                writer.u8(3);
                writer.put(reservation);
                match certificate {
                    None => writer.u8(0),
                    Some(certificate) => {
                        writer.u8(1);
                        writer.put(certificate);
                    }
                }
            }
            EscrowOp::Resolve { reservation, verdict } => {
                writer.u8(4);
                writer.put(reservation);
                writer.put(verdict);
            }
        }
    }
}
impl Decode for EscrowOp {
    fn decode(reader: &mut Reader<'_>) -> Result<Self, DecodeError> {
        match reader.u8()? {
            1 => Ok(EscrowOp::Reserve(reader.get()?)),
            2 => Ok(EscrowOp::Execute { reservation: reader.get()?, token: reader.get()? }),
            3 => {
                let reservation = reader.get()?;
                let certificate = match reader.u8()? {
                    0 => None,
                    1 => Some(reader.get()?),
                    tag => return Err(reader.tag_error("optional certificate", tag)),
                };
                Ok(EscrowOp::Cancel { reservation, certificate })
            }
            4 => Ok(EscrowOp::Resolve { reservation: reader.get()?, verdict: reader.get()? }),
            tag => Err(reader.tag_error("escrow operation", tag)),
        }
    }
}

impl Encode for ReservationState {
    fn encode(&self, writer: &mut Writer) {
        writer.u8(match self {
            ReservationState::Reserved => 1,
            ReservationState::Executed => 2,
            ReservationState::Cancelled => 3,
            ReservationState::Held => 4,
        });
    }
}
impl Decode for ReservationState {
    fn decode(reader: &mut Reader<'_>) -> Result<Self, DecodeError> {
        match reader.u8()? {
            1 => Ok(ReservationState::Reserved),
            2 => Ok(ReservationState::Executed),
            3 => Ok(ReservationState::Cancelled),
            4 => Ok(ReservationState::Held),
            tag => Err(reader.tag_error("reservation state", tag)),
        }
    }
}
impl Encode for Reservation {
    fn encode(&self, writer: &mut Writer) {
        writer.put(&self.id);
        writer.put(&self.deal_id);
        writer.put(&self.leg);
        writer.put(&self.asset);
        writer.put(&self.owner);
        writer.put(&self.beneficiary);
        writer.put(&self.keeper);
        writer.put(&self.condition);
        writer.u64(self.expiry_ms);
        writer.put(&self.state);
    }
}
impl Decode for Reservation {
    fn decode(reader: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let reservation = Reservation {
            id: reader.get()?,
            deal_id: reader.get()?,
            leg: reader.get()?,
            asset: reader.get()?,
            owner: reader.get()?,
            beneficiary: reader.get()?,
            keeper: reader.get()?,
            condition: reader.get()?,
            expiry_ms: reader.u64()?,
            state: reader.get()?,
        };
        if reservation.id != reservation_id(reservation.deal_id, reservation.leg) {
            return Err(DecodeError::Invalid {
                what: "reservation",
                reason: "its id is not the one of its deal and leg".into(),
            });
        }
        Ok(reservation)
    }
}
impl Encode for EscrowEvent {
    fn encode(&self, writer: &mut Writer) {
        match self {
            EscrowEvent::Reserved(reservation) => {
                writer.u8(1);
                writer.put(reservation);
            }
            EscrowEvent::Executed { reservation, deal_id, leg, by, to, asset, token } => {
                writer.u8(2);
                writer.put(reservation);
                writer.put(deal_id);
                writer.put(leg);
                writer.put(by);
                writer.put(to);
                writer.put(asset);
                writer.put(token);
            }
            EscrowEvent::Cancelled { reservation, deal_id, leg, by, to, asset } => {
                writer.u8(3);
                writer.put(reservation);
                writer.put(deal_id);
                writer.put(leg);
                writer.put(by);
                writer.put(to);
                writer.put(asset);
            }
            EscrowEvent::Held { reservation, deal_id, leg, by, beneficiary, asset, token } => {
                writer.u8(4);
                writer.put(reservation);
                writer.put(deal_id);
                writer.put(leg);
                writer.put(by);
                writer.put(beneficiary);
                writer.put(asset);
                writer.put(token);
            }
        }
    }
}
impl Decode for EscrowEvent {
    fn decode(reader: &mut Reader<'_>) -> Result<Self, DecodeError> {
        match reader.u8()? {
            1 => Ok(EscrowEvent::Reserved(reader.get()?)),
            2 => Ok(EscrowEvent::Executed {
                reservation: reader.get()?,
                deal_id: reader.get()?,
                leg: reader.get()?,
                by: reader.get()?,
                to: reader.get()?,
                asset: reader.get()?,
                token: reader.get()?,
            }),
            3 => Ok(EscrowEvent::Cancelled {
                reservation: reader.get()?,
                deal_id: reader.get()?,
                leg: reader.get()?,
                by: reader.get()?,
                to: reader.get()?,
                asset: reader.get()?,
            }),
            4 => Ok(EscrowEvent::Held {
                reservation: reader.get()?,
                deal_id: reader.get()?,
                leg: reader.get()?,
                by: reader.get()?,
                beneficiary: reader.get()?,
                asset: reader.get()?,
                token: reader.get()?,
            }),
            tag => Err(reader.tag_error("escrow event", tag)),
        }
    }
}
