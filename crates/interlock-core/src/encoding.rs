//! The canonical, versioned binary encoding.
//!
//! Every value has exactly one encoding: fixed-width big-endian integers, one tag
//! byte per enum variant, `u32` length prefixes, no maps. Deal ids, transaction
//! ids and signatures are computed over these bytes, so two implementations that
//! agree on this file agree on every id. Decoding is total: any byte string either
//! decodes to a value whose re-encoding is the same bytes, or yields a
//! [`DecodeError`]; it never panics and never allocates past the stated limits.

use crate::hash::{DealId, Hash32, ReservationId};
use crate::limits::*;
use crate::types::*;

/// The version byte that starts encoded deal terms without an inspection
/// policy. Such terms encode exactly as they did before inspection existed,
/// so their deal ids are unchanged.
pub const TERMS_VERSION: u8 = 2;
/// The version byte of deal terms with an inspection policy, which follows
/// the nonce.
pub const TERMS_VERSION_INSPECTION: u8 = 3;

#[derive(Clone, PartialEq, Eq, Debug, thiserror::Error)]
pub enum DecodeError {
    #[error("truncated input: expected {expected} more bytes at offset {offset}, found {found}")]
    Truncated { offset: usize, expected: usize, found: usize },
    #[error("invalid {what} tag {tag} at offset {offset}")]
    Tag { what: &'static str, tag: u8, offset: usize },
    #[error("{what} length {length} exceeds the limit {max}")]
    TooLong { what: &'static str, length: usize, max: usize },
    #[error("unsupported {what} version {found}: expected {expected}")]
    Version { what: &'static str, expected: u8, found: u8 },
    #[error("{found} trailing bytes after the {what}")]
    Trailing { what: &'static str, found: usize },
    #[error("invalid {what}: {reason}")]
    Invalid { what: &'static str, reason: String },
}

#[derive(Default)]
pub struct Writer {
    bytes: Vec<u8>,
}

impl Writer {
    pub fn new() -> Writer {
        Writer::default()
    }
    pub fn finish(self) -> Vec<u8> {
        self.bytes
    }
    pub fn u8(&mut self, value: u8) {
        self.bytes.push(value);
    }
    pub fn u64(&mut self, value: u64) {
        self.bytes.extend_from_slice(&value.to_be_bytes());
    }
    pub fn u128(&mut self, value: u128) {
        self.bytes.extend_from_slice(&value.to_be_bytes());
    }
    pub fn fixed(&mut self, value: &[u8]) {
        self.bytes.extend_from_slice(value);
    }
    /// A length-prefixed byte string.
    pub fn bytes(&mut self, value: &[u8]) {
        let length = u32::try_from(value.len()).expect("encoded values are far below 4 GiB");
        self.bytes.extend_from_slice(&length.to_be_bytes());
        self.bytes.extend_from_slice(value);
    }
    pub fn count(&mut self, count: usize) {
        let count = u32::try_from(count).expect("collections are bounded far below 4 Gi");
        self.bytes.extend_from_slice(&count.to_be_bytes());
    }
    pub fn put<T: Encode + ?Sized>(&mut self, value: &T) {
        value.encode(self);
    }
}

pub struct Reader<'a> {
    bytes: &'a [u8],
    offset: usize,
}

impl<'a> Reader<'a> {
    pub fn new(bytes: &'a [u8]) -> Reader<'a> {
        Reader { bytes, offset: 0 }
    }

    pub fn offset(&self) -> usize {
        self.offset
    }

    pub fn take(&mut self, length: usize) -> Result<&'a [u8], DecodeError> {
        let remaining = self.bytes.len() - self.offset;
        if length > remaining {
            return Err(DecodeError::Truncated { offset: self.offset, expected: length, found: remaining });
        }
        let slice = &self.bytes[self.offset..self.offset + length];
        self.offset += length;
        Ok(slice)
    }

    pub fn array<const N: usize>(&mut self) -> Result<[u8; N], DecodeError> {
        Ok(self.take(N)?.try_into().expect("take returned N bytes"))
    }
    pub fn u8(&mut self) -> Result<u8, DecodeError> {
        Ok(self.array::<1>()?[0])
    }
    pub fn u64(&mut self) -> Result<u64, DecodeError> {
        Ok(u64::from_be_bytes(self.array()?))
    }
    pub fn u128(&mut self) -> Result<u128, DecodeError> {
        Ok(u128::from_be_bytes(self.array()?))
    }
    pub fn bytes(&mut self, what: &'static str, max: usize) -> Result<&'a [u8], DecodeError> {
        let length = usize::try_from(u32::from_be_bytes(self.array()?)).unwrap_or(usize::MAX);
        if length > max {
            return Err(DecodeError::TooLong { what, length, max });
        }
        self.take(length)
    }
    pub fn count(&mut self, what: &'static str, max: usize) -> Result<usize, DecodeError> {
        let count = usize::try_from(u32::from_be_bytes(self.array()?)).unwrap_or(usize::MAX);
        if count > max {
            return Err(DecodeError::TooLong { what, length: count, max });
        }
        Ok(count)
    }
    pub fn tag_error(&self, what: &'static str, tag: u8) -> DecodeError {
        DecodeError::Tag { what, tag, offset: self.offset.saturating_sub(1) }
    }
    pub fn get<T: Decode>(&mut self) -> Result<T, DecodeError> {
        T::decode(self)
    }
    /// Fails unless every byte was read.
    pub fn finish(self, what: &'static str) -> Result<(), DecodeError> {
        let found = self.bytes.len() - self.offset;
        if found != 0 {
            return Err(DecodeError::Trailing { what, found });
        }
        Ok(())
    }
}

pub trait Encode {
    fn encode(&self, writer: &mut Writer);

    fn to_bytes(&self) -> Vec<u8> {
        let mut writer = Writer::new();
        self.encode(&mut writer);
        writer.finish()
    }
}

pub trait Decode: Sized {
    fn decode(reader: &mut Reader<'_>) -> Result<Self, DecodeError>;

    /// Decodes exactly one value from all of `bytes`.
    fn from_bytes(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut reader = Reader::new(bytes);
        let value = Self::decode(&mut reader)?;
        reader.finish(std::any::type_name::<Self>())?;
        Ok(value)
    }
}

/// `Encode` and `Decode` for a newtype of `[u8; $len]`: its bytes as they are.
macro_rules! fixed_newtype {
    ($type:ty, $len:literal) => {
        impl Encode for $type {
            fn encode(&self, writer: &mut Writer) {
                writer.fixed(&self.0);
            }
        }
        impl Decode for $type {
            fn decode(reader: &mut Reader<'_>) -> Result<Self, DecodeError> {
                Ok(Self(reader.array::<$len>()?))
            }
        }
    };
}

pub(crate) use fixed_newtype;

fixed_newtype!(Hash32, 32);
fixed_newtype!(PartyId, 32);
fixed_newtype!(ItemId, 32);
fixed_newtype!(NotaryAddress, 20);

macro_rules! hash_newtype {
    ($type:ty) => {
        impl Encode for $type {
            fn encode(&self, writer: &mut Writer) {
                self.0.encode(writer);
            }
        }
        impl Decode for $type {
            fn decode(reader: &mut Reader<'_>) -> Result<Self, DecodeError> {
                Ok(Self(reader.get()?))
            }
        }
    };
}

hash_newtype!(DealId);
hash_newtype!(ReservationId);

impl Encode for u64 {
    fn encode(&self, writer: &mut Writer) {
        writer.u64(*self);
    }
}
impl Decode for u64 {
    fn decode(reader: &mut Reader<'_>) -> Result<Self, DecodeError> {
        reader.u64()
    }
}

impl Encode for NetworkId {
    fn encode(&self, writer: &mut Writer) {
        writer.u64(self.0);
    }
}
impl Decode for NetworkId {
    fn decode(reader: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(NetworkId(reader.u64()?))
    }
}

/// An address is its length in one byte, then its bytes.
impl Encode for Address {
    fn encode(&self, writer: &mut Writer) {
        let bytes = self.as_bytes();
        writer.u8(u8::try_from(bytes.len()).expect("addresses are at most ADDRESS_LEN_MAX bytes"));
        writer.fixed(bytes);
    }
}
impl Decode for Address {
    fn decode(reader: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let length = usize::from(reader.u8()?);
        if !(1..=ADDRESS_LEN_MAX).contains(&length) {
            return Err(DecodeError::Invalid {
                what: "address",
                reason: format!("expected 1 to {ADDRESS_LEN_MAX} bytes, found {length}"),
            });
        }
        let bytes = reader.take(length)?;
        Ok(Address::new(bytes).expect("length checked above"))
    }
}

impl Encode for AssetCode {
    fn encode(&self, writer: &mut Writer) {
        writer.bytes(self.as_str().as_bytes());
    }
}
impl Decode for AssetCode {
    fn decode(reader: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let bytes = reader.bytes("asset code", ASSET_CODE_LEN_MAX)?;
        let text = std::str::from_utf8(bytes)
            .map_err(|_| DecodeError::Invalid { what: "asset code", reason: "not UTF-8".into() })?;
        AssetCode::new(text).map_err(|error| DecodeError::Invalid { what: "asset code", reason: error.to_string() })
    }
}

impl Encode for Asset {
    fn encode(&self, writer: &mut Writer) {
        match self {
            Asset::Fungible { code, amount } => {
                writer.u8(1);
                writer.put(code);
                writer.u128(*amount);
            }
            Asset::Unique { class, item } => {
                writer.u8(2);
                writer.put(class);
                writer.put(item);
            }
        }
    }
}
impl Decode for Asset {
    fn decode(reader: &mut Reader<'_>) -> Result<Self, DecodeError> {
        match reader.u8()? {
            1 => Ok(Asset::Fungible { code: reader.get()?, amount: reader.u128()? }),
            2 => Ok(Asset::Unique { class: reader.get()?, item: reader.get()? }),
            tag => Err(reader.tag_error("asset", tag)),
        }
    }
}

impl Encode for LegKind {
    fn encode(&self, writer: &mut Writer) {
        writer.u8(self.tag());
    }
}
impl Decode for LegKind {
    fn decode(reader: &mut Reader<'_>) -> Result<Self, DecodeError> {
        match reader.u8()? {
            1 => Ok(LegKind::Payment),
            2 => Ok(LegKind::Delivery),
            tag => Err(reader.tag_error("leg", tag)),
        }
    }
}

impl Encode for Leg {
    fn encode(&self, writer: &mut Writer) {
        writer.put(&self.network);
        writer.put(&self.asset);
        writer.put(&self.owner);
        writer.put(&self.beneficiary);
        writer.put(&self.keeper);
    }
}
impl Decode for Leg {
    fn decode(reader: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Leg {
            network: reader.get()?,
            asset: reader.get()?,
            owner: reader.get()?,
            beneficiary: reader.get()?,
            keeper: reader.get()?,
        })
    }
}

impl Encode for Option<Address> {
    fn encode(&self, writer: &mut Writer) {
        match self {
            None => writer.u8(0),
            Some(address) => {
                writer.u8(1);
                writer.put(address);
            }
        }
    }
}
impl Decode for Option<Address> {
    fn decode(reader: &mut Reader<'_>) -> Result<Self, DecodeError> {
        match reader.u8()? {
            0 => Ok(None),
            1 => Ok(Some(reader.get()?)),
            tag => Err(reader.tag_error("optional address", tag)),
        }
    }
}

impl<T: Encode> Encode for Vec<T> {
    fn encode(&self, writer: &mut Writer) {
        writer.count(self.len());
        for item in self {
            item.encode(writer);
        }
    }
}

/// Decodes a list of at most `max` items.
pub fn decode_list<T: Decode>(reader: &mut Reader<'_>, what: &'static str, max: usize) -> Result<Vec<T>, DecodeError> {
    let count = reader.count(what, max)?;
    let mut items = Vec::with_capacity(count);
    for _ in 0..count {
        items.push(reader.get()?);
    }
    Ok(items)
}

impl Encode for Settlement {
    fn encode(&self, writer: &mut Writer) {
        match self {
            Settlement::Hashlock { hash, payment_expiry_ms, delivery_expiry_ms, margin_ms } => {
                writer.u8(1);
                writer.put(hash);
                writer.u64(*payment_expiry_ms);
                writer.u64(*delivery_expiry_ms);
                writer.u64(*margin_ms);
            }
            Settlement::Notary { notaries, threshold, decision_deadline_ms, backstop_expiry_ms } => {
                writer.u8(2);
                writer.put(notaries);
                writer.u8(*threshold);
                writer.u64(*decision_deadline_ms);
                writer.u64(*backstop_expiry_ms);
            }
        }
    }
}
impl Decode for Settlement {
    fn decode(reader: &mut Reader<'_>) -> Result<Self, DecodeError> {
        match reader.u8()? {
            1 => Ok(Settlement::Hashlock {
                hash: reader.get()?,
                payment_expiry_ms: reader.u64()?,
                delivery_expiry_ms: reader.u64()?,
                margin_ms: reader.u64()?,
            }),
            2 => Ok(Settlement::Notary {
                notaries: decode_list(reader, "notaries", NOTARIES_MAX)?,
                threshold: reader.u8()?,
                decision_deadline_ms: reader.u64()?,
                backstop_expiry_ms: reader.u64()?,
            }),
            tag => Err(reader.tag_error("settlement", tag)),
        }
    }
}

impl Encode for Option<u128> {
    fn encode(&self, writer: &mut Writer) {
        match self {
            None => writer.u8(0),
            Some(value) => {
                writer.u8(1);
                writer.u128(*value);
            }
        }
    }
}
fn decode_optional_amount(reader: &mut Reader<'_>, what: &'static str) -> Result<Option<u128>, DecodeError> {
    match reader.u8()? {
        0 => Ok(None),
        1 => Ok(Some(reader.u128()?)),
        tag => Err(reader.tag_error(what, tag)),
    }
}

impl Encode for OnTimeout {
    fn encode(&self, writer: &mut Writer) {
        match self {
            OnTimeout::Refund => writer.u8(1),
            OnTimeout::ExtendOnce { by_ms } => {
                writer.u8(2);
                writer.u64(*by_ms);
            }
        }
    }
}
impl Decode for OnTimeout {
    fn decode(reader: &mut Reader<'_>) -> Result<Self, DecodeError> {
        match reader.u8()? {
            1 => Ok(OnTimeout::Refund),
            2 => Ok(OnTimeout::ExtendOnce { by_ms: reader.u64()? }),
            tag => Err(reader.tag_error("timeout policy", tag)),
        }
    }
}

/// Policy layout: amount limit per deal (option), timeout policy, allowed
/// assets (list), amount limit per party and day (option). The inspection
/// policy is not here: it follows the terms' nonce, in version 3 only.
impl Encode for Policy {
    fn encode(&self, writer: &mut Writer) {
        writer.put(&self.amount_max);
        writer.put(&self.on_timeout);
        writer.put(&self.allowed_assets);
        writer.put(&self.amount_max_per_day);
    }
}
impl Decode for Policy {
    fn decode(reader: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Policy {
            amount_max: decode_optional_amount(reader, "policy amount limit")?,
            on_timeout: reader.get()?,
            allowed_assets: decode_list(reader, "allowed assets", ALLOWED_ASSETS_MAX)?,
            amount_max_per_day: decode_optional_amount(reader, "policy daily limit")?,
            // Read by the terms' decoder: it follows the nonce.
            inspection: None,
        })
    }
}

impl Encode for DealTerms {
    fn encode(&self, writer: &mut Writer) {
        let version = if self.policy.inspection.is_some() { TERMS_VERSION_INSPECTION } else { TERMS_VERSION };
        writer.u8(version);
        writer.put(&self.buyer);
        writer.put(&self.seller);
        writer.put(&self.payment);
        writer.put(&self.delivery);
        writer.put(&self.settlement);
        writer.put(&self.policy);
        writer.put(&self.observers);
        writer.put(&self.dependents);
        writer.u64(self.nonce);
        if let Some(inspection) = &self.policy.inspection {
            writer.put(inspection);
        }
    }
}
impl Decode for DealTerms {
    fn decode(reader: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let version = reader.u8()?;
        if version != TERMS_VERSION && version != TERMS_VERSION_INSPECTION {
            return Err(DecodeError::Version { what: "deal terms", expected: TERMS_VERSION, found: version });
        }
        let mut terms = DealTerms {
            buyer: reader.get()?,
            seller: reader.get()?,
            payment: reader.get()?,
            delivery: reader.get()?,
            settlement: reader.get()?,
            policy: reader.get()?,
            observers: decode_list(reader, "observers", OBSERVERS_MAX)?,
            dependents: decode_list(reader, "dependents", DEPENDENTS_MAX)?,
            nonce: reader.u64()?,
        };
        if version == TERMS_VERSION_INSPECTION {
            terms.policy.inspection = Some(reader.get()?);
        }
        Ok(terms)
    }
}

/// The canonical bytes of deal terms; the deal id is their sha256. Valid terms
/// (see `DealTerms::validate`) encode within `DEAL_TERMS_LEN_MAX`.
pub fn encode_terms(terms: &DealTerms) -> Vec<u8> {
    terms.to_bytes()
}

/// Decodes deal terms received from outside, refusing oversized input first.
pub fn decode_terms(bytes: &[u8]) -> Result<DealTerms, DecodeError> {
    if bytes.len() > DEAL_TERMS_LEN_MAX {
        return Err(DecodeError::TooLong { what: "deal terms", length: bytes.len(), max: DEAL_TERMS_LEN_MAX });
    }
    DealTerms::from_bytes(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn prefixed(prefix: u32, tail: &[u8]) -> Vec<u8> {
        let mut bytes = prefix.to_be_bytes().to_vec();
        bytes.extend_from_slice(tail);
        bytes
    }

    /// A length or count read from the bytes is held to its limit before
    /// anything is allocated or read, and to what the input holds after.
    #[test]
    fn lengths_and_counts_beyond_their_limits_or_the_input_are_refused() {
        let cases: [(&str, Vec<u8>, DecodeError); 6] = [
            (
                "length of four billion",
                prefixed(u32::MAX, &[1, 2, 3]),
                DecodeError::TooLong { what: "asset code", length: 4_294_967_295, max: 64 },
            ),
            (
                "length one past the limit",
                prefixed(65, &[0; 65]),
                DecodeError::TooLong { what: "asset code", length: 65, max: 64 },
            ),
            (
                "length within the limit, past the input",
                prefixed(64, &[7; 10]),
                DecodeError::Truncated { offset: 4, expected: 64, found: 10 },
            ),
            ("a prefix cut short", vec![0, 0, 1], DecodeError::Truncated { offset: 0, expected: 4, found: 3 }),
            (
                "count of four billion",
                prefixed(u32::MAX, &[]),
                DecodeError::TooLong { what: "observers", length: 4_294_967_295, max: 8 },
            ),
            (
                "count past the items",
                prefixed(8, &[0; 32]),
                DecodeError::Truncated { offset: 36, expected: 32, found: 0 },
            ),
        ];
        for (name, bytes, expected) in cases {
            let mut reader = Reader::new(&bytes);
            let found = if name.starts_with("count") {
                decode_list::<PartyId>(&mut reader, "observers", 8).map(|_| ())
            } else {
                reader.bytes("asset code", 64).map(|_| ())
            };
            assert_eq!(found, Err(expected), "{name}");
        }
    }

    #[test]
    fn an_address_length_byte_outside_its_range_is_refused() {
        for length in [0u8, 34, u8::MAX] {
            let mut bytes = vec![length];
            bytes.extend_from_slice(&[0; 255]);
            let error = Reader::new(&bytes).get::<Address>().expect_err("out of range");
            let expected = format!("invalid address: expected 1 to {ADDRESS_LEN_MAX} bytes, found {length}");
            assert_eq!(error.to_string(), expected);
        }
    }
}
