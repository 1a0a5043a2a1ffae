//! The domain: networks, parties, accounts, assets, legs and deal terms.

use crate::hash::{to_hex, DealId, Hash32, ReservationId};
use crate::inspection::Inspection;
use crate::limits::*;
use serde::{Deserialize, Serialize};
use std::fmt;

/// One logical blockchain network (a platform may use the chain's own id).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Serialize, Deserialize)]
pub struct NetworkId(pub u64);

impl fmt::Display for NetworkId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "network-{}", self.0)
    }
}

/// A party's identity: its ed25519 public key.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct PartyId(pub [u8; 32]);

impl fmt::Debug for PartyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "party:{}", &to_hex(&self.0)[..8])
    }
}

/// An account on one network: the bytes its platform names it by (an ed25519
/// key, a 20-byte account, a script's key …), at most [`ADDRESS_LEN_MAX`]. The
/// core only compares, orders, hashes and encodes it; its text form belongs to
/// the network's platform (`interlock_chain::Platform::format_address`). The
/// network is the one of the leg or entry that holds the address.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Address {
    len: u8,
    bytes: [u8; ADDRESS_LEN_MAX],
}

impl Address {
    /// The address made of `bytes`: 1 to [`ADDRESS_LEN_MAX`] of them.
    pub fn new(bytes: &[u8]) -> Option<Address> {
        let len = u8::try_from(bytes.len()).ok().filter(|len| (1..=ADDRESS_LEN_MAX).contains(&usize::from(*len)))?;
        let mut padded = [0u8; ADDRESS_LEN_MAX];
        padded[..bytes.len()].copy_from_slice(bytes);
        Some(Address { len, bytes: padded })
    }

    /// The address made of a fixed-size array (a length checked when compiled).
    pub const fn from_bytes<const N: usize>(bytes: [u8; N]) -> Address {
        const { assert!(N >= 1 && N <= ADDRESS_LEN_MAX, "an address has 1 to ADDRESS_LEN_MAX bytes") };
        let mut padded = [0u8; ADDRESS_LEN_MAX];
        let mut index = 0;
        while index < N {
            padded[index] = bytes[index];
            index += 1;
        }
        // N <= ADDRESS_LEN_MAX < 256, asserted above.
        #[allow(clippy::cast_possible_truncation)]
        Address { len: N as u8, bytes: padded }
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..usize::from(self.len)]
    }

    /// The bytes as an array of `N`, when the address has exactly `N`.
    pub fn to_array<const N: usize>(&self) -> Option<[u8; N]> {
        self.as_bytes().try_into().ok()
    }
}

impl fmt::Debug for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let hex = to_hex(self.as_bytes());
        if hex.len() > 40 {
            write!(f, "0x{}…", &hex[..8])
        } else {
            write!(f, "0x{hex}")
        }
    }
}

/// `0x` and the address's bytes in hex: a neutral form for logs and messages;
/// people read the platform's.
impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "0x{}", to_hex(self.as_bytes()))
    }
}

impl Serialize for Address {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_bytes(self.as_bytes())
    }
}

impl<'de> Deserialize<'de> for Address {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Address, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = Address;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "1 to {ADDRESS_LEN_MAX} address bytes")
            }
            fn visit_bytes<E: serde::de::Error>(self, bytes: &[u8]) -> Result<Address, E> {
                Address::new(bytes).ok_or_else(|| E::invalid_length(bytes.len(), &self))
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Address, A::Error> {
                let mut bytes = Vec::with_capacity(ADDRESS_LEN_MAX);
                while let Some(byte) = seq.next_element::<u8>()? {
                    if bytes.len() == ADDRESS_LEN_MAX {
                        return Err(serde::de::Error::invalid_length(bytes.len() + 1, &self));
                    }
                    bytes.push(byte);
                }
                Address::new(&bytes).ok_or_else(|| serde::de::Error::invalid_length(bytes.len(), &self))
            }
        }
        deserializer.deserialize_bytes(Visitor)
    }
}

/// The name of an asset on its network: a ledger token code such as `USD`, or an
/// ERC-20 / ERC-721 contract address in hex. ASCII graphic characters only.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String")]
pub struct AssetCode(String);

impl TryFrom<String> for AssetCode {
    type Error = TermsError;
    fn try_from(code: String) -> Result<AssetCode, TermsError> {
        AssetCode::new(&code)
    }
}

impl AssetCode {
    pub fn new(code: &str) -> Result<AssetCode, TermsError> {
        let valid = !code.is_empty() && code.len() <= ASSET_CODE_LEN_MAX && code.bytes().all(|b| b.is_ascii_graphic());
        if !valid {
            return Err(TermsError::AssetCode(code.chars().take(80).collect()));
        }
        Ok(AssetCode(code.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for AssetCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}
impl fmt::Display for AssetCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The id of a unique item within its class (an ERC-721 token id is 256 bits).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct ItemId(pub [u8; 32]);

impl ItemId {
    pub fn from_u128(value: u128) -> ItemId {
        let mut bytes = [0u8; 32];
        bytes[16..].copy_from_slice(&value.to_be_bytes());
        ItemId(bytes)
    }
}

impl fmt::Debug for ItemId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}
impl fmt::Display for ItemId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0[..16].iter().all(|b| *b == 0) {
            let low: [u8; 16] = self.0[16..].try_into().expect("16 bytes");
            write!(f, "#{}", u128::from_be_bytes(low))
        } else {
            write!(f, "#0x{}", to_hex(&self.0))
        }
    }
}

/// What moves in one leg.
#[derive(Clone, PartialEq, Eq, Hash, Debug, Serialize, Deserialize)]
pub enum Asset {
    /// An amount of a fungible asset, in its smallest unit. Never zero.
    Fungible { code: AssetCode, amount: u128 },
    /// One unique item of a class.
    Unique { class: AssetCode, item: ItemId },
}

impl Asset {
    pub fn code(&self) -> &AssetCode {
        match self {
            Asset::Fungible { code, .. } => code,
            Asset::Unique { class, .. } => class,
        }
    }
}

impl fmt::Display for Asset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Asset::Fungible { code, amount } => write!(f, "{amount} {code}"),
            Asset::Unique { class, item } => write!(f, "{class} {item}"),
        }
    }
}

/// Which side of the deal a leg is.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Serialize, Deserialize)]
pub enum LegKind {
    /// Y from the buyer to the seller.
    Payment,
    /// X from the seller to the buyer.
    Delivery,
}

impl LegKind {
    pub const BOTH: [LegKind; 2] = [LegKind::Payment, LegKind::Delivery];

    pub fn other(self) -> LegKind {
        match self {
            LegKind::Payment => LegKind::Delivery,
            LegKind::Delivery => LegKind::Payment,
        }
    }

    pub fn tag(self) -> u8 {
        match self {
            LegKind::Payment => 1,
            LegKind::Delivery => 2,
        }
    }
}

impl fmt::Display for LegKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            LegKind::Payment => "payment",
            LegKind::Delivery => "delivery",
        })
    }
}

/// One side of the deal on one network.
#[derive(Clone, PartialEq, Eq, Hash, Debug, Serialize, Deserialize)]
pub struct Leg {
    pub network: NetworkId,
    pub asset: Asset,
    /// The account that reserves the asset and gets it back on cancel.
    pub owner: Address,
    /// The account the reservation pays when executed.
    pub beneficiary: Address,
    /// An account the beneficiary authorises to execute for it (a keeper that
    /// stays online when the beneficiary may not); the asset still goes to the
    /// beneficiary. `None`: only the beneficiary executes.
    pub keeper: Option<Address>,
}

/// A 20-byte Ethereum-style address of a notary's secp256k1 key, as `ecrecover`
/// returns it.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct NotaryAddress(pub [u8; 20]);

impl fmt::Debug for NotaryAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "notary:0x{}", &to_hex(&self.0)[..8])
    }
}
impl fmt::Display for NotaryAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "0x{}", to_hex(&self.0))
    }
}

/// How the deal settles, with the deadlines of that mode. Times are unix
/// milliseconds, read from each network's clock (its block timestamps).
#[derive(Clone, PartialEq, Eq, Hash, Debug, Serialize, Deserialize)]
pub enum Settlement {
    /// No third party: both reservations are locked by `sha256(secret)`.
    Hashlock {
        hash: Hash32,
        /// Until then the seller may execute the payment; after it the buyer may cancel.
        payment_expiry_ms: u64,
        /// Until then the buyer may execute the delivery; after it the seller may cancel.
        delivery_expiry_ms: u64,
        /// Time the seller needs between the reveal and the payment expiry.
        margin_ms: u64,
    },
    /// A k-of-n notary set decides commit or abort exactly once.
    Notary {
        notaries: Vec<NotaryAddress>,
        threshold: u8,
        /// The notaries commit only if both reservations are final before this.
        decision_deadline_ms: u64,
        /// After this anyone may cancel a reservation, so assets never stay
        /// locked if the notaries disappear.
        backstop_expiry_ms: u64,
    },
}

impl Settlement {
    pub fn mode(&self) -> Mode {
        match self {
            Settlement::Hashlock { .. } => Mode::Hashlock,
            Settlement::Notary { .. } => Mode::Notary,
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Serialize, Deserialize)]
pub enum Mode {
    Hashlock,
    Notary,
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Mode::Hashlock => "hashlock",
            Mode::Notary => "notary",
        })
    }
}

/// What the parties agreed happens when the deal cannot complete, and the limits
/// a notary checks before it commits. Part of the signed terms: a party that
/// signed the terms signed their policy.
#[derive(Clone, PartialEq, Eq, Hash, Debug, Default, Serialize, Deserialize)]
pub struct Policy {
    /// Largest fungible amount either leg may move; `None` for no limit.
    pub amount_max: Option<u128>,
    /// What happens when the deal's deadline passes before it is decided.
    pub on_timeout: OnTimeout,
    /// The asset codes either leg may move; empty for any.
    pub allowed_assets: Vec<AssetCode>,
    /// Largest total of one asset a party may move in the deals one notary
    /// commits in one UTC day, this deal included; `None` for no limit.
    pub amount_max_per_day: Option<u128>,
    /// An inspection period after execution; `None` pays out at execution.
    #[serde(default)]
    pub inspection: Option<Inspection>,
}

/// The timeout policy.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Default, Serialize, Deserialize)]
pub enum OnTimeout {
    /// Cancel and refund both legs at the deadline.
    #[default]
    Refund,
    /// Notary mode only: at the decision deadline tell both parties, and give
    /// the deal `by_ms` more before the notaries abort. The reservations'
    /// backstop expiry is fixed on chain when they are made, so the extended
    /// deadline must fit before it (see [`DealTerms::validate`]).
    ExtendOnce { by_ms: u64 },
}

impl fmt::Display for OnTimeout {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OnTimeout::Refund => f.write_str("refund"),
            OnTimeout::ExtendOnce { by_ms } => write!(f, "extend once by {by_ms} ms"),
        }
    }
}

/// Lists asset codes as `[USD, GOLD]` for messages.
pub fn assets_text(codes: &[AssetCode]) -> String {
    let names: Vec<&str> = codes.iter().map(AssetCode::as_str).collect();
    format!("[{}]", names.join(", "))
}

/// The canonical terms both parties sign. The deal id is their hash.
#[derive(Clone, PartialEq, Eq, Hash, Debug, Serialize, Deserialize)]
pub struct DealTerms {
    pub buyer: PartyId,
    pub seller: PartyId,
    pub payment: Leg,
    pub delivery: Leg,
    pub settlement: Settlement,
    pub policy: Policy,
    pub observers: Vec<PartyId>,
    pub dependents: Vec<PartyId>,
    /// Distinguishes two deals with otherwise equal terms.
    pub nonce: u64,
}

/// Why terms are not acceptable. Every message names the rule and what was found.
#[derive(Clone, PartialEq, Eq, Debug, thiserror::Error)]
pub enum TermsError {
    #[error("{what} is {have_ms} ms but these networks need at least {needed_ms} ms: {because}")]
    Timing { what: &'static str, have_ms: u64, needed_ms: u64, because: String },
    #[error("invalid asset code {0:?}: expected 1..=64 printable ASCII characters")]
    AssetCode(String),
    #[error("buyer and seller are the same party {0:?}")]
    SameParty(PartyId),
    #[error("{leg} leg moves zero: expected a positive amount")]
    ZeroAmount { leg: LegKind },
    #[error("{leg} leg's owner {owner:?} is also its beneficiary or keeper")]
    SelfDealing { leg: LegKind, owner: Address },
    #[error("the payment leg ({payment}) and the delivery leg ({delivery}) move the same asset on {network}: expected legs that differ in asset or network")]
    SameLegs { network: NetworkId, payment: String, delivery: String },
    #[error("policy: {leg} leg amount {amount} exceeds the deal's maximum {max} per deal")]
    AmountOverPolicy { leg: LegKind, amount: u128, max: u128 },
    #[error("policy: asset {asset} is not in the deal's allow-list {allowed}")]
    AssetNotAllowed { asset: AssetCode, allowed: String },
    #[error("policy: asset {0} is named twice in the allow-list")]
    DuplicateAllowedAsset(AssetCode),
    #[error("policy: extend-once on timeout needs notary mode: a hashlock reservation's expiry is fixed on chain when it is reserved and the secret may already be revealed, so there is no deadline to extend; use refund")]
    ExtendHashlock,
    #[error("policy: extend-once by {by_ms} ms: expected 1 to {max_ms} ms")]
    ExtensionLength { by_ms: u64, max_ms: u64 },
    #[error("policy: extend-once by {by_ms} ms moves the decision deadline to {extended_ms}, but the reservations' backstop expiry {backstop_expiry_ms} must be at least {min_ms} ms after it")]
    ExtensionPastBackstop { by_ms: u64, extended_ms: u64, backstop_expiry_ms: u64, min_ms: u64 },
    #[error("policy: an inspection period needs notary mode: held assets move only on the notaries' release or reverse certificate, and a hashlock deal has no notaries")]
    InspectionNeedsNotaries,
    #[error("policy: inspection window {window_ms} ms: expected {min_ms} to {max_ms} ms")]
    InspectionWindow { window_ms: u64, min_ms: u64, max_ms: u64 },
    #[error("hashlock deadlines break delivery_expiry + margin <= payment_expiry: {delivery_expiry_ms} + {margin_ms} > {payment_expiry_ms}")]
    HashlockDeadlines { delivery_expiry_ms: u64, margin_ms: u64, payment_expiry_ms: u64 },
    #[error("hashlock margin {margin_ms} ms is below the minimum {min_ms} ms")]
    HashlockMargin { margin_ms: u64, min_ms: u64 },
    #[error("notary threshold {threshold} of {count}: expected 1 <= threshold <= notaries <= {max}")]
    NotaryThreshold { threshold: u8, count: usize, max: usize },
    #[error("notary {0} is named twice")]
    DuplicateNotary(NotaryAddress),
    #[error("backstop expiry {backstop_expiry_ms} must be at least {min_ms} ms after the decision deadline {decision_deadline_ms}")]
    Backstop { decision_deadline_ms: u64, backstop_expiry_ms: u64, min_ms: u64 },
    #[error("too many {what}: {count} > {max}")]
    TooMany { what: &'static str, count: usize, max: usize },
    #[error("deadline {at_ms} has already passed (now {now_ms})")]
    DeadlinePassed { at_ms: u64, now_ms: u64 },
}

impl DealTerms {
    /// Checks the terms' own consistency (not time: see [`DealTerms::check_fresh`]).
    pub fn validate(&self) -> Result<(), TermsError> {
        if self.buyer == self.seller {
            return Err(TermsError::SameParty(self.buyer));
        }
        for (kind, leg) in [(LegKind::Payment, &self.payment), (LegKind::Delivery, &self.delivery)] {
            if leg.owner == leg.beneficiary || leg.keeper == Some(leg.owner) {
                return Err(TermsError::SelfDealing { leg: kind, owner: leg.owner });
            }
            let allowed = &self.policy.allowed_assets;
            if !allowed.is_empty() && !allowed.contains(leg.asset.code()) {
                let asset = leg.asset.code().clone();
                return Err(TermsError::AssetNotAllowed { asset, allowed: assets_text(allowed) });
            }
            if let Asset::Fungible { amount, .. } = leg.asset {
                if amount == 0 {
                    return Err(TermsError::ZeroAmount { leg: kind });
                }
                if let Some(max) = self.policy.amount_max {
                    if amount > max {
                        return Err(TermsError::AmountOverPolicy { leg: kind, amount, max });
                    }
                }
            }
        }
        self.validate_legs_differ()?;
        if self.observers.len() > OBSERVERS_MAX {
            let count = self.observers.len();
            return Err(TermsError::TooMany { what: "observers", count, max: OBSERVERS_MAX });
        }
        self.validate_policy()?;
        self.validate_inspection()?;
        if self.dependents.len() > DEPENDENTS_MAX {
            let count = self.dependents.len();
            return Err(TermsError::TooMany { what: "dependents", count, max: DEPENDENTS_MAX });
        }
        let length = crate::encoding::Encode::to_bytes(self).len();
        if length > DEAL_TERMS_LEN_MAX {
            return Err(TermsError::TooMany { what: "bytes of encoded terms", count: length, max: DEAL_TERMS_LEN_MAX });
        }
        match &self.settlement {
            Settlement::Hashlock { payment_expiry_ms, delivery_expiry_ms, margin_ms, .. } => {
                if *margin_ms < HASHLOCK_MARGIN_MIN_MS {
                    return Err(TermsError::HashlockMargin { margin_ms: *margin_ms, min_ms: HASHLOCK_MARGIN_MIN_MS });
                }
                let fits =
                    delivery_expiry_ms.checked_add(*margin_ms).is_some_and(|latest| latest <= *payment_expiry_ms);
                if !fits {
                    return Err(TermsError::HashlockDeadlines {
                        delivery_expiry_ms: *delivery_expiry_ms,
                        margin_ms: *margin_ms,
                        payment_expiry_ms: *payment_expiry_ms,
                    });
                }
            }
            Settlement::Notary { notaries, threshold, decision_deadline_ms, backstop_expiry_ms } => {
                let count = notaries.len();
                if *threshold == 0 || usize::from(*threshold) > count || count > NOTARIES_MAX {
                    return Err(TermsError::NotaryThreshold { threshold: *threshold, count, max: NOTARIES_MAX });
                }
                for (index, notary) in notaries.iter().enumerate() {
                    if notaries[..index].contains(notary) {
                        return Err(TermsError::DuplicateNotary(*notary));
                    }
                }
                let fits = decision_deadline_ms
                    .checked_add(BACKSTOP_MARGIN_MIN_MS)
                    .is_some_and(|earliest| earliest <= *backstop_expiry_ms);
                if !fits {
                    return Err(TermsError::Backstop {
                        decision_deadline_ms: *decision_deadline_ms,
                        backstop_expiry_ms: *backstop_expiry_ms,
                        min_ms: BACKSTOP_MARGIN_MIN_MS,
                    });
                }
            }
        }
        Ok(())
    }

    /// A deal exchanges two different things: legs that move the same
    /// fungible asset on the same network (whatever the amounts) only shift
    /// a balance between the parties, and the same unique item cannot be
    /// both paid and delivered.
    fn validate_legs_differ(&self) -> Result<(), TermsError> {
        let same_asset = match (&self.payment.asset, &self.delivery.asset) {
            (Asset::Fungible { code: paid, .. }, Asset::Fungible { code: delivered, .. }) => paid == delivered,
            (Asset::Unique { .. }, Asset::Unique { .. }) => self.payment.asset == self.delivery.asset,
            _ => false,
        };
        if same_asset && self.payment.network == self.delivery.network {
            return Err(TermsError::SameLegs {
                network: self.payment.network,
                payment: self.payment.asset.to_string(),
                delivery: self.delivery.asset.to_string(),
            });
        }
        Ok(())
    }

    fn validate_policy(&self) -> Result<(), TermsError> {
        let allowed = &self.policy.allowed_assets;
        if allowed.len() > ALLOWED_ASSETS_MAX {
            return Err(TermsError::TooMany { what: "allowed assets", count: allowed.len(), max: ALLOWED_ASSETS_MAX });
        }
        for (index, code) in allowed.iter().enumerate() {
            if allowed[..index].contains(code) {
                return Err(TermsError::DuplicateAllowedAsset(code.clone()));
            }
        }
        let OnTimeout::ExtendOnce { by_ms } = self.policy.on_timeout else {
            return Ok(());
        };
        if by_ms == 0 || by_ms > EXTENSION_MAX_MS {
            return Err(TermsError::ExtensionLength { by_ms, max_ms: EXTENSION_MAX_MS });
        }
        let Settlement::Notary { decision_deadline_ms, backstop_expiry_ms, .. } = &self.settlement else {
            return Err(TermsError::ExtendHashlock);
        };
        let extended_ms = decision_deadline_ms.saturating_add(by_ms);
        let fits =
            extended_ms.checked_add(BACKSTOP_MARGIN_MIN_MS).is_some_and(|earliest| earliest <= *backstop_expiry_ms);
        if !fits {
            return Err(TermsError::ExtensionPastBackstop {
                by_ms,
                extended_ms,
                backstop_expiry_ms: *backstop_expiry_ms,
                min_ms: BACKSTOP_MARGIN_MIN_MS,
            });
        }
        Ok(())
    }

    /// The deadline the deal times out at first: the notaries' decision
    /// deadline, or in hashlock mode the delivery expiry.
    pub fn timeout_ms(&self) -> u64 {
        match &self.settlement {
            Settlement::Hashlock { delivery_expiry_ms, .. } => *delivery_expiry_ms,
            Settlement::Notary { decision_deadline_ms, .. } => *decision_deadline_ms,
        }
    }

    /// The notaries' decision deadline after the policy's extension, if the
    /// deal has one: until then a reservation still counts. `None` in
    /// hashlock mode.
    pub fn extended_decision_deadline_ms(&self) -> Option<u64> {
        let Settlement::Notary { decision_deadline_ms, .. } = &self.settlement else { return None };
        Some(match self.policy.on_timeout {
            OnTimeout::Refund => *decision_deadline_ms,
            OnTimeout::ExtendOnce { by_ms } => decision_deadline_ms.saturating_add(by_ms),
        })
    }

    /// Refuses terms whose first deadline has already passed at `now_ms`.
    pub fn check_fresh(&self, now_ms: u64) -> Result<(), TermsError> {
        let first_deadline_ms = match &self.settlement {
            Settlement::Hashlock { delivery_expiry_ms, .. } => *delivery_expiry_ms,
            Settlement::Notary { decision_deadline_ms, .. } => *decision_deadline_ms,
        };
        if now_ms >= first_deadline_ms {
            return Err(TermsError::DeadlinePassed { at_ms: first_deadline_ms, now_ms });
        }
        Ok(())
    }

    pub fn leg(&self, kind: LegKind) -> &Leg {
        match kind {
            LegKind::Payment => &self.payment,
            LegKind::Delivery => &self.delivery,
        }
    }

    pub fn mode(&self) -> Mode {
        self.settlement.mode()
    }

    pub fn id(&self) -> DealId {
        DealId(Hash32::sha256(&[&crate::encoding::Encode::to_bytes(self)]))
    }

    /// The reservation this deal's `leg` must use, on that leg's network.
    pub fn reservation_id(&self, deal_id: DealId, leg: LegKind) -> ReservationId {
        reservation_id(deal_id, leg)
    }

    /// The expiry a reservation of `leg` carries.
    pub fn expiry_ms(&self, leg: LegKind) -> u64 {
        match (&self.settlement, leg) {
            (Settlement::Hashlock { payment_expiry_ms, .. }, LegKind::Payment) => *payment_expiry_ms,
            (Settlement::Hashlock { delivery_expiry_ms, .. }, LegKind::Delivery) => *delivery_expiry_ms,
            (Settlement::Notary { backstop_expiry_ms, .. }, _) => *backstop_expiry_ms,
        }
    }

    /// The latest of all the deal's deadlines: after it every reservation may be
    /// cancelled by anyone.
    pub fn last_deadline_ms(&self) -> u64 {
        self.expiry_ms(LegKind::Payment).max(self.expiry_ms(LegKind::Delivery))
    }
}

/// The reservation id of `leg` of `deal_id`.
pub fn reservation_id(deal_id: DealId, leg: LegKind) -> ReservationId {
    ReservationId(Hash32::sha256(&[b"interlock/reservation/v1", &deal_id.0 .0, &[leg.tag()]]))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code(text: &str) -> AssetCode {
        AssetCode::new(text).expect("a valid code")
    }

    fn fungible(text: &str, amount: u128) -> Asset {
        Asset::Fungible { code: code(text), amount }
    }

    fn item(class: &str, number: u128) -> Asset {
        Asset::Unique { class: code(class), item: ItemId::from_u128(number) }
    }

    /// Terms where the buyer pays `payment` on network `networks.0` for
    /// `delivery` on network `networks.1`.
    fn terms(payment: Asset, delivery: Asset, networks: (u64, u64)) -> DealTerms {
        let settlement = Settlement::Hashlock {
            hash: Hash32([7; 32]),
            delivery_expiry_ms: 10_000,
            payment_expiry_ms: 20_000,
            margin_ms: HASHLOCK_MARGIN_MIN_MS.max(1_000),
        };
        let (payment, delivery) = ((NetworkId(networks.0), payment), (NetworkId(networks.1), delivery));
        DealTerms::swap(PartyId([0xb1; 32]), PartyId([0x5e; 32]), payment, delivery, settlement)
    }

    /// `validate` of the terms, as its message or "ok".
    fn check(payment: Asset, delivery: Asset, networks: (u64, u64), expected: &str) {
        let found = match terms(payment.clone(), delivery.clone(), networks).validate() {
            Ok(()) => "ok".to_owned(),
            Err(error) => error.to_string(),
        };
        assert_eq!(found, expected, "{payment} on {} for {delivery} on {}", networks.0, networks.1);
    }

    #[test]
    fn a_deal_whose_legs_move_the_same_asset_on_the_same_network_is_refused() {
        let same = |payment: &str, delivery: &str| {
            format!(
                "the payment leg ({payment}) and the delivery leg ({delivery}) move the same asset on network-1: \
                 expected legs that differ in asset or network"
            )
        };
        check(fungible("USD", 1), fungible("USD", 1), (1, 1), &same("1 USD", "1 USD"));
        check(fungible("USD", 5), fungible("USD", 3), (1, 1), &same("5 USD", "3 USD"));
        let deed = item("DEED", 7);
        check(deed.clone(), deed.clone(), (1, 1), &same(&deed.to_string(), &deed.to_string()));
        // Legs that differ in asset, item or network are an exchange.
        check(fungible("USD", 1), fungible("USD", 1), (1, 2), "ok");
        check(fungible("USD", 1), fungible("GOLD", 1), (1, 1), "ok");
        check(item("DEED", 7), item("DEED", 8), (1, 1), "ok");
        check(fungible("DEED", 1), item("DEED", 1), (1, 1), "ok");
    }

    #[test]
    fn deadlines_must_leave_room_for_each_networks_confirmations_and_inclusion() {
        use crate::NetworkTiming;
        // Hashlock: margin 1 s; the delivery network (2) must make the reveal
        // final, then the payment network (1) must mine the claim.
        let deal = terms(fungible("USD", 1), fungible("GOLD", 1), (1, 2));
        let ledger = NetworkTiming { block_interval_ms: 50, confirmations: 1, time_lag_ms: 0 };
        let chain = NetworkTiming { block_interval_ms: 500, confirmations: 2, time_lag_ms: 1_000 };
        assert_eq!(deal.check_timing(&ledger, &ledger), Ok(()), "50 + 100 ms fit in 1 s");
        let refused = deal.check_timing(&ledger, &chain).unwrap_err();
        assert_eq!(
            refused.to_string(),
            "the hashlock margin is 1000 ms but these networks need at least 2100 ms: 2000 ms until the reveal on \
             network-2 is final, then 100 ms to get the claim mined on network-1"
        );
        let mut roomy = deal.clone();
        roomy.settlement = Settlement::Hashlock {
            hash: Hash32([7; 32]),
            delivery_expiry_ms: 10_000,
            payment_expiry_ms: 20_000,
            margin_ms: 2_100,
        };
        assert_eq!(roomy.check_timing(&ledger, &chain), Ok(()), "exactly enough");
        // Notary: the slower network must mine an execution between the
        // decision deadline and the backstop.
        let mut notary = deal;
        notary.settlement = Settlement::Notary {
            notaries: vec![],
            threshold: 1,
            decision_deadline_ms: 10_000,
            backstop_expiry_ms: 11_500,
        };
        assert_eq!(notary.check_timing(&ledger, &ledger), Ok(()));
        let refused = notary.check_timing(&chain, &ledger).unwrap_err().to_string();
        assert!(refused.contains("is 1500 ms but these networks need at least 2000 ms"), "{refused}");
    }
}
