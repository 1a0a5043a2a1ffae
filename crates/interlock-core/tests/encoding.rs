//! The canonical encoding: every value round-trips exactly, the deal id depends on
//! every field of the terms, and decoding is total — any byte string either decodes
//! to a value whose re-encoding is those same bytes, or is refused; never a panic.

use interlock_core::crypto::{Certificate, Decision, RecoverableSignature, Secret, Token, Vote};
use interlock_core::encoding::{decode_terms, encode_terms, Decode, Encode, TERMS_VERSION, TERMS_VERSION_INSPECTION};
use interlock_core::escrow::{Condition, EscrowOp, ReserveRequest};
use interlock_core::limits::{
    ALLOWED_ASSETS_MAX, ASSET_CODE_LEN_MAX, CERTIFICATE_SIGNATURES_MAX, DEAL_TERMS_LEN_MAX, DEPENDENTS_MAX,
    NOTARIES_MAX, OBSERVERS_MAX,
};
use interlock_core::{
    Address, Asset, AssetCode, DealId, DealTerms, Disputer, Hash32, Inspection, ItemId, Leg, LegKind, NetworkId,
    NotaryAddress, OnTimeout, PartyId, Policy, ReservationId, Settlement,
};
use proptest::collection::vec;
use proptest::prelude::*;
use proptest::sample::Index;
use std::fmt::Debug;

const CASES: u32 = 256;

// ---------------------------------------------------------------------------
// Strategies
// ---------------------------------------------------------------------------

fn hash32() -> impl Strategy<Value = Hash32> {
    any::<[u8; 32]>().prop_map(Hash32)
}

fn deal_id() -> impl Strategy<Value = DealId> {
    hash32().prop_map(DealId)
}

fn reservation_id() -> impl Strategy<Value = ReservationId> {
    hash32().prop_map(ReservationId)
}

fn party() -> impl Strategy<Value = PartyId> {
    any::<[u8; 32]>().prop_map(PartyId)
}

fn address() -> impl Strategy<Value = Address> {
    prop_oneof![
        any::<[u8; 32]>().prop_map(Address::from_bytes::<32>),
        any::<[u8; 20]>().prop_map(Address::from_bytes::<20>),
    ]
}

fn asset_code() -> impl Strategy<Value = AssetCode> {
    vec(0x21u8..=0x7e, 1..=ASSET_CODE_LEN_MAX).prop_map(|bytes| {
        let text = String::from_utf8(bytes).expect("ASCII graphic bytes are UTF-8");
        AssetCode::new(&text).expect("1..=64 ASCII graphic characters are a valid code")
    })
}

fn asset() -> impl Strategy<Value = Asset> {
    prop_oneof![
        (asset_code(), any::<u128>()).prop_map(|(code, amount)| Asset::Fungible { code, amount }),
        (asset_code(), any::<[u8; 32]>()).prop_map(|(class, item)| Asset::Unique { class, item: ItemId(item) }),
    ]
}

fn leg() -> impl Strategy<Value = Leg> {
    (any::<u64>(), asset(), address(), address(), proptest::option::of(address())).prop_map(
        |(network, asset, owner, beneficiary, keeper)| Leg {
            network: NetworkId(network),
            asset,
            owner,
            beneficiary,
            keeper,
        },
    )
}

fn notary_address() -> impl Strategy<Value = NotaryAddress> {
    any::<[u8; 20]>().prop_map(NotaryAddress)
}

fn settlement() -> impl Strategy<Value = Settlement> {
    prop_oneof![
        (hash32(), any::<u64>(), any::<u64>(), any::<u64>()).prop_map(
            |(hash, payment_expiry_ms, delivery_expiry_ms, margin_ms)| Settlement::Hashlock {
                hash,
                payment_expiry_ms,
                delivery_expiry_ms,
                margin_ms,
            }
        ),
        (vec(notary_address(), 0..=NOTARIES_MAX), any::<u8>(), any::<u64>(), any::<u64>(),).prop_map(
            |(notaries, threshold, decision_deadline_ms, backstop_expiry_ms)| {
                Settlement::Notary { notaries, threshold, decision_deadline_ms, backstop_expiry_ms }
            }
        ),
    ]
}

/// Terms within the encoding's limits. Not necessarily valid (`validate`): the
/// encoding must carry any terms a peer might send, so the checks can refuse them.
#[allow(clippy::type_complexity)]
fn policy() -> impl Strategy<Value = (Option<u128>, OnTimeout, Vec<AssetCode>, Option<u128>, Option<Inspection>)> {
    let on_timeout =
        prop_oneof![Just(OnTimeout::Refund), any::<u64>().prop_map(|by_ms| OnTimeout::ExtendOnce { by_ms })];
    let code = "[A-Z]{1,6}".prop_map(|code| AssetCode::new(&code).expect("valid code"));
    (
        proptest::option::of(any::<u128>()),
        on_timeout,
        vec(code, 0..=ALLOWED_ASSETS_MAX),
        proptest::option::of(any::<u128>()),
        proptest::option::of(inspection()),
    )
}

fn inspection() -> impl Strategy<Value = Inspection> {
    let disputer = prop_oneof![Just(Disputer::Buyer), Just(Disputer::Seller), Just(Disputer::Either)];
    (any::<u64>(), disputer).prop_map(|(window_ms, disputer)| Inspection { window_ms, disputer })
}

fn terms() -> impl Strategy<Value = DealTerms> {
    (
        party(),
        party(),
        leg(),
        leg(),
        settlement(),
        policy(),
        vec(party(), 0..=OBSERVERS_MAX),
        vec(party(), 0..=DEPENDENTS_MAX),
        any::<u64>(),
    )
        .prop_map(
            |(
                buyer,
                seller,
                payment,
                delivery,
                settlement,
                (amount_max, on_timeout, allowed_assets, amount_max_per_day, inspection),
                observers,
                dependents,
                nonce,
            )| {
                DealTerms {
                    buyer,
                    seller,
                    payment,
                    delivery,
                    settlement,
                    policy: Policy { amount_max, on_timeout, allowed_assets, amount_max_per_day, inspection },
                    observers,
                    dependents,
                    nonce,
                }
            },
        )
}

fn decision() -> impl Strategy<Value = Decision> {
    prop_oneof![Just(Decision::Commit), Just(Decision::Abort), Just(Decision::Release), Just(Decision::Reverse)]
}

fn recoverable_signature() -> impl Strategy<Value = RecoverableSignature> {
    vec(any::<u8>(), 65).prop_map(|bytes| RecoverableSignature(bytes.try_into().expect("65 bytes")))
}

fn certificate() -> impl Strategy<Value = Certificate> {
    (deal_id(), decision(), vec(recoverable_signature(), 0..=CERTIFICATE_SIGNATURES_MAX))
        .prop_map(|(deal_id, decision, signatures)| Certificate { deal_id, decision, signatures })
}

fn vote() -> impl Strategy<Value = Vote> {
    (deal_id(), decision(), recoverable_signature()).prop_map(|(deal_id, decision, signature)| Vote {
        deal_id,
        decision,
        signature,
    })
}

fn token() -> impl Strategy<Value = Token> {
    prop_oneof![
        any::<[u8; 32]>().prop_map(|secret| Token::Secret(Secret(secret))),
        certificate().prop_map(Token::Certificate),
    ]
}

fn condition() -> impl Strategy<Value = Condition> {
    prop_oneof![
        hash32().prop_map(Condition::Hashlock),
        (vec(notary_address(), 0..=NOTARIES_MAX), any::<u8>())
            .prop_map(|(notaries, threshold)| { Condition::Notary { notaries, threshold } }),
        (vec(notary_address(), 0..=NOTARIES_MAX), any::<u8>())
            .prop_map(|(notaries, threshold)| { Condition::Inspected { notaries, threshold } }),
    ]
}

fn leg_kind() -> impl Strategy<Value = LegKind> {
    prop_oneof![Just(LegKind::Payment), Just(LegKind::Delivery)]
}

fn reserve_request() -> impl Strategy<Value = ReserveRequest> {
    (deal_id(), leg_kind(), asset(), address(), address(), proptest::option::of(address()), condition(), any::<u64>())
        .prop_map(|(deal_id, leg, asset, owner, beneficiary, keeper, condition, expiry_ms)| ReserveRequest {
            deal_id,
            leg,
            asset,
            owner,
            beneficiary,
            keeper,
            condition,
            expiry_ms,
        })
}

fn escrow_op() -> impl Strategy<Value = EscrowOp> {
    prop_oneof![
        reserve_request().prop_map(EscrowOp::Reserve),
        (reservation_id(), token()).prop_map(|(reservation, token)| EscrowOp::Execute { reservation, token }),
        (reservation_id(), proptest::option::of(certificate()))
            .prop_map(|(reservation, certificate)| EscrowOp::Cancel { reservation, certificate }),
        (reservation_id(), certificate()).prop_map(|(reservation, verdict)| EscrowOp::Resolve { reservation, verdict }),
    ]
}

/// Random bytes, mostly small values so tags, counts and lengths get past their
/// first check more often than uniform bytes would.
fn noise(length_max: usize) -> impl Strategy<Value = Vec<u8>> {
    vec(prop_oneof![3 => 0u8..=2, 1 => any::<u8>()], 0..=length_max)
}

/// One damage done to an encoding.
#[derive(Clone, Debug)]
enum Mutation {
    FlipBit {
        at: Index,
        bit: u8,
    },
    Truncate {
        at: Index,
    },
    Insert {
        at: Index,
        bytes: Vec<u8>,
    },
    Remove {
        at: Index,
        length: usize,
    },
    /// Overwrites four bytes with a length-like word, to hit the length prefixes.
    Overwrite {
        at: Index,
        word: u32,
    },
}

fn mutation() -> impl Strategy<Value = Mutation> {
    let word = prop_oneof![Just(0u32), 0u32..=100, Just(u32::MAX), Just(u32::MAX / 2 + 1), any::<u32>(),];
    prop_oneof![
        (any::<Index>(), 0u8..8).prop_map(|(at, bit)| Mutation::FlipBit { at, bit }),
        any::<Index>().prop_map(|at| Mutation::Truncate { at }),
        (any::<Index>(), vec(any::<u8>(), 1..8)).prop_map(|(at, bytes)| Mutation::Insert { at, bytes }),
        (any::<Index>(), 1usize..8).prop_map(|(at, length)| Mutation::Remove { at, length }),
        (any::<Index>(), word).prop_map(|(at, word)| Mutation::Overwrite { at, word }),
    ]
}

fn mutate(bytes: &mut Vec<u8>, mutation: &Mutation) {
    match mutation {
        Mutation::FlipBit { at, bit } => {
            if !bytes.is_empty() {
                let index = at.index(bytes.len());
                bytes[index] ^= 1 << bit;
            }
        }
        Mutation::Truncate { at } => {
            let length = at.index(bytes.len() + 1);
            bytes.truncate(length);
        }
        Mutation::Insert { at, bytes: extra } => {
            let index = at.index(bytes.len() + 1);
            bytes.splice(index..index, extra.iter().copied());
        }
        Mutation::Remove { at, length } => {
            if !bytes.is_empty() {
                let start = at.index(bytes.len());
                let end = start.saturating_add(*length).min(bytes.len());
                bytes.drain(start..end);
            }
        }
        Mutation::Overwrite { at, word } => {
            if bytes.len() >= 4 {
                let start = at.index(bytes.len() - 3);
                bytes[start..start + 4].copy_from_slice(&word.to_be_bytes());
            }
        }
    }
}

/// `bytes` after every mutation in turn.
fn mutated(mut bytes: Vec<u8>, mutations: &[Mutation]) -> Vec<u8> {
    for mutation in mutations {
        mutate(&mut bytes, mutation);
    }
    bytes
}

// ---------------------------------------------------------------------------
// Checks
// ---------------------------------------------------------------------------

/// The encoding round-trips exactly.
fn check_round_trip<T: Encode + Decode + PartialEq + Debug>(value: &T) -> Result<(), TestCaseError> {
    let bytes = value.to_bytes();
    let decoded = T::from_bytes(&bytes);
    prop_assert_eq!(decoded.as_ref(), Ok(value));
    Ok(())
}

/// Decoding `bytes` does not panic, and a success is canonical: it re-encodes to
/// exactly `bytes`. (A panic fails the property by itself.)
fn check_total<T: Encode + Decode + Debug>(bytes: &[u8]) -> Result<(), TestCaseError> {
    if let Ok(value) = T::from_bytes(bytes) {
        prop_assert_eq!(value.to_bytes(), bytes, "decoded {:?} but it re-encodes to other bytes", value);
    }
    Ok(())
}

fn check_terms_total(bytes: &[u8]) -> Result<(), TestCaseError> {
    if let Ok(terms) = decode_terms(bytes) {
        prop_assert_eq!(encode_terms(&terms), bytes, "decoded {:?} but it re-encodes to other bytes", terms);
        // The id of decoded terms is the hash of the very bytes received.
        prop_assert_eq!(terms.id(), DealId(Hash32::sha256(&[bytes])));
    }
    Ok(())
}

/// Changes one field of `terms` (picked by `field`, and within the settlement by
/// `detail`) so that the terms differ.
fn change_field(terms: &mut DealTerms, field: usize, detail: u8) {
    match field {
        0 => terms.buyer.0[0] ^= 1,
        1 => terms.seller.0[31] ^= 0x80,
        2 => terms.payment.network.0 = terms.payment.network.0.wrapping_add(1),
        3 => change_asset(&mut terms.payment.asset, detail),
        4 => change_address(&mut terms.payment.owner, detail),
        5 => change_address(&mut terms.payment.beneficiary, detail),
        6 => terms.delivery.network.0 ^= 1 << (detail % 64),
        7 => change_asset(&mut terms.delivery.asset, detail),
        8 => change_address(&mut terms.delivery.owner, detail),
        9 => change_address(&mut terms.delivery.beneficiary, detail),
        10 => change_settlement(&mut terms.settlement, detail),
        11 => {
            terms.policy.amount_max = match terms.policy.amount_max {
                None => Some(u128::from(detail)),
                Some(_) if detail.is_multiple_of(2) => None,
                Some(max) => Some(max ^ 1),
            }
        }
        12 => change_parties(&mut terms.observers, OBSERVERS_MAX),
        13 => change_parties(&mut terms.dependents, DEPENDENTS_MAX),
        14 => terms.nonce = terms.nonce.wrapping_add(1),
        15 => {
            let inspection = &mut terms.policy.inspection;
            *inspection = match *inspection {
                None => Some(Inspection { window_ms: u64::from(detail), disputer: Disputer::Buyer }),
                Some(_) if detail.is_multiple_of(3) => None,
                Some(Inspection { window_ms, disputer }) if detail.is_multiple_of(2) => {
                    Some(Inspection { window_ms: window_ms ^ 1, disputer })
                }
                Some(Inspection { window_ms, disputer }) => {
                    let disputer = if disputer == Disputer::Seller { Disputer::Either } else { Disputer::Seller };
                    Some(Inspection { window_ms, disputer })
                }
            }
        }
        _ => unreachable!("field {field} out of range"),
    }
}
const FIELD_COUNT: usize = 16;

fn change_asset(asset: &mut Asset, detail: u8) {
    match asset {
        Asset::Fungible { amount, .. } if detail.is_multiple_of(2) => *amount = amount.wrapping_add(1),
        Asset::Unique { item, .. } if detail.is_multiple_of(2) => item.0[detail as usize % 32] ^= 1,
        Asset::Fungible { code, .. } | Asset::Unique { class: code, .. } => {
            // Another code of the same length, so only the code's bytes change.
            let mut text = code.as_str().as_bytes().to_vec();
            text[0] = if text[0] == b'A' { b'B' } else { b'A' };
            let text = String::from_utf8(text).expect("ASCII");
            *code = AssetCode::new(&text).expect("still a valid code");
        }
    }
}

fn change_address(address: &mut Address, detail: u8) {
    let mut bytes = address.as_bytes().to_vec();
    if detail.is_multiple_of(3) {
        // Same leading bytes, another length: the length alone must tell them apart.
        bytes.resize(if bytes.len() == 32 { 20 } else { 32 }, 0);
    } else {
        let index = usize::from(detail) % bytes.len();
        bytes[index] ^= 1;
    }
    *address = Address::new(&bytes).expect("20 or 32 bytes");
}

fn change_settlement(settlement: &mut Settlement, detail: u8) {
    match settlement {
        Settlement::Hashlock { hash, payment_expiry_ms, delivery_expiry_ms, margin_ms } => match detail % 4 {
            0 => hash.0[0] ^= 1,
            1 => *payment_expiry_ms = payment_expiry_ms.wrapping_add(1),
            2 => *delivery_expiry_ms = delivery_expiry_ms.wrapping_sub(1),
            _ => *margin_ms ^= 1 << 63,
        },
        Settlement::Notary { notaries, threshold, decision_deadline_ms, backstop_expiry_ms } => match detail % 4 {
            0 if notaries.is_empty() => notaries.push(NotaryAddress([0; 20])),
            0 if notaries.len() == NOTARIES_MAX => {
                notaries.pop();
            }
            0 => notaries[0].0[19] ^= 1,
            1 => *threshold = threshold.wrapping_add(1),
            2 => *decision_deadline_ms = decision_deadline_ms.wrapping_add(1),
            _ => *backstop_expiry_ms = backstop_expiry_ms.wrapping_add(1),
        },
    }
}

fn change_parties(parties: &mut Vec<PartyId>, max: usize) {
    if parties.len() < max {
        parties.push(PartyId([7; 32]));
    } else {
        parties.pop();
    }
}

// ---------------------------------------------------------------------------
// Properties
// ---------------------------------------------------------------------------

proptest! {
    #![proptest_config(ProptestConfig::with_cases(CASES))]

    #[test]
    fn terms_round_trip_exactly(terms in terms()) {
        let bytes = encode_terms(&terms);
        prop_assert!(bytes.len() <= DEAL_TERMS_LEN_MAX);
        let version = if terms.policy.inspection.is_some() { TERMS_VERSION_INSPECTION } else { TERMS_VERSION };
        prop_assert_eq!(bytes[0], version);
        prop_assert_eq!(decode_terms(&bytes), Ok(terms.clone()));
        check_round_trip(&terms)?;
    }

    #[test]
    fn deal_id_is_the_hash_of_the_canonical_bytes(terms in terms()) {
        let id = terms.id();
        prop_assert_eq!(id, terms.clone().id());
        prop_assert_eq!(id, DealId(Hash32::sha256(&[&encode_terms(&terms)])));
        let decoded = decode_terms(&encode_terms(&terms)).expect("own encoding decodes");
        prop_assert_eq!(decoded.id(), id);
    }

    #[test]
    fn deal_id_changes_when_any_field_changes(
        terms in terms(),
        field in 0..FIELD_COUNT,
        detail in any::<u8>(),
    ) {
        let mut changed = terms.clone();
        change_field(&mut changed, field, detail);
        prop_assert_ne!(&changed, &terms, "the test did not change field {}", field);
        prop_assert_ne!(encode_terms(&changed), encode_terms(&terms));
        prop_assert_ne!(changed.id(), terms.id());
        prop_assert_eq!(decode_terms(&encode_terms(&changed)), Ok(changed));
    }

    #[test]
    fn other_values_round_trip_exactly(
        token in token(),
        certificate in certificate(),
        vote in vote(),
        op in escrow_op(),
    ) {
        check_round_trip(&token)?;
        check_round_trip(&certificate)?;
        check_round_trip(&vote)?;
        check_round_trip(&op)?;
    }

    #[test]
    fn decode_terms_is_total_on_random_bytes(bytes in vec(any::<u8>(), 0..=600)) {
        check_terms_total(&bytes)?;
    }

    #[test]
    fn decode_terms_is_total_on_versioned_noise(tail in noise(600)) {
        let mut bytes = vec![TERMS_VERSION];
        bytes.extend(tail);
        check_terms_total(&bytes)?;
    }

    #[test]
    fn decode_terms_is_total_on_damaged_encodings(
        terms in terms(),
        mutations in vec(mutation(), 1..=4),
    ) {
        let bytes = mutated(encode_terms(&terms), &mutations);
        check_terms_total(&bytes)?;
    }

    #[test]
    fn other_decoders_are_total_on_random_bytes(
        bytes in vec(any::<u8>(), 0..=600),
        small in noise(600),
    ) {
        for bytes in [&bytes, &small] {
            check_total::<Token>(bytes)?;
            check_total::<Certificate>(bytes)?;
            check_total::<Vote>(bytes)?;
            check_total::<EscrowOp>(bytes)?;
        }
    }

    #[test]
    fn other_decoders_are_total_on_damaged_encodings(
        token in token(),
        certificate in certificate(),
        op in escrow_op(),
        mutations in vec(mutation(), 1..=4),
    ) {
        check_total::<Token>(&mutated(token.to_bytes(), &mutations))?;
        check_total::<Certificate>(&mutated(certificate.to_bytes(), &mutations))?;
        check_total::<EscrowOp>(&mutated(op.to_bytes(), &mutations))?;
    }
}

// ---------------------------------------------------------------------------
// The byte layout, written out by hand from the format's rules
// ---------------------------------------------------------------------------

/// Builds expected encodings one field at a time.
#[derive(Default)]
struct Bytes(Vec<u8>);

impl Bytes {
    fn tag(mut self, tag: u8) -> Bytes {
        self.0.push(tag);
        self
    }
    fn fixed(mut self, bytes: &[u8]) -> Bytes {
        self.0.extend_from_slice(bytes);
        self
    }
    fn u32(self, value: u32) -> Bytes {
        self.fixed(&value.to_be_bytes())
    }
    fn u64(self, value: u64) -> Bytes {
        self.fixed(&value.to_be_bytes())
    }
    fn u128(self, value: u128) -> Bytes {
        self.fixed(&value.to_be_bytes())
    }
    fn text(self, text: &str) -> Bytes {
        let length = u32::try_from(text.len()).expect("short text");
        self.u32(length).fixed(text.as_bytes())
    }
}

fn code(text: &str) -> AssetCode {
    AssetCode::new(text).expect("valid asset code")
}

/// Terms that use every kind of field: a fungible and a unique leg, 32- and
/// 20-byte addresses, a keeper, a hashlock, a policy and an observer.
fn documented_terms() -> DealTerms {
    DealTerms {
        buyer: PartyId([0x11; 32]),
        seller: PartyId([0x22; 32]),
        payment: Leg {
            network: NetworkId(1),
            asset: Asset::Fungible { code: code("USD"), amount: 100 },
            owner: Address::from_bytes([0xaa; 32]),
            beneficiary: Address::from_bytes([0xbb; 32]),
            keeper: None,
        },
        delivery: Leg {
            network: NetworkId(2),
            asset: Asset::Unique { class: code("DEED"), item: ItemId::from_u128(7) },
            owner: Address::from_bytes([0xcc; 20]),
            beneficiary: Address::from_bytes([0xdd; 20]),
            keeper: Some(Address::from_bytes([0xee; 20])),
        },
        settlement: Settlement::Hashlock {
            hash: Hash32([0x33; 32]),
            payment_expiry_ms: 3_000,
            delivery_expiry_ms: 2_000,
            margin_ms: 500,
        },
        policy: Policy {
            amount_max: Some(1_000),
            on_timeout: OnTimeout::Refund,
            allowed_assets: vec![code("USD"), code("DEED")],
            amount_max_per_day: None,
            inspection: None,
        },
        observers: vec![PartyId([0x44; 32])],
        dependents: vec![],
        nonce: 9,
    }
}

/// The encoding of [`documented_terms`], written out field by field.
fn documented_layout() -> Vec<u8> {
    Bytes::default()
        .tag(TERMS_VERSION)
        .fixed(&[0x11; 32])
        .fixed(&[0x22; 32])
        // payment leg: network, fungible asset, two 32-byte addresses (each its
        // length, then its bytes), no keeper
        .u64(1)
        .tag(1)
        .text("USD")
        .u128(100)
        .tag(32)
        .fixed(&[0xaa; 32])
        .tag(32)
        .fixed(&[0xbb; 32])
        .tag(0)
        // delivery leg: network, unique asset, two 20-byte addresses, a keeper
        .u64(2)
        .tag(2)
        .text("DEED")
        .u128(0)
        .u128(7)
        .tag(20)
        .fixed(&[0xcc; 20])
        .tag(20)
        .fixed(&[0xdd; 20])
        .tag(1)
        .tag(20)
        .fixed(&[0xee; 20])
        // hashlock settlement
        .tag(1)
        .fixed(&[0x33; 32])
        .u64(3_000)
        .u64(2_000)
        .u64(500)
        // policy (amount per deal, timeout, allow-list, amount per day), observers, dependents, nonce
        .tag(1)
        .u128(1_000)
        .tag(1)
        .u32(2)
        .text("USD")
        .text("DEED")
        .tag(0)
        .u32(1)
        .fixed(&[0x44; 32])
        .u32(0)
        .u64(9)
        .0
}

#[test]
fn terms_encode_to_the_documented_layout() {
    let terms = documented_terms();
    let expected = documented_layout();
    assert_eq!(encode_terms(&terms), expected);
    assert_eq!(terms.id(), DealId(Hash32::sha256(&[&expected])));
    assert_eq!(decode_terms(&expected), Ok(terms));
}

#[test]
fn notary_settlement_encodes_to_the_documented_layout() {
    let settlement = Settlement::Notary {
        notaries: vec![NotaryAddress([0x01; 20]), NotaryAddress([0x02; 20])],
        threshold: 2,
        decision_deadline_ms: 5_000,
        backstop_expiry_ms: 9_000,
    };
    let expected = Bytes::default().tag(2).u32(2).fixed(&[0x01; 20]).fixed(&[0x02; 20]).tag(2).u64(5_000).u64(9_000).0;
    assert_eq!(settlement.to_bytes(), expected);
    assert_eq!(Settlement::from_bytes(&expected), Ok(settlement));
}

/// Inputs that must be refused, each for its own reason, and never by a panic.
#[test]
fn decode_terms_refuses_malformed_input() {
    let valid = documented_layout();
    assert!(decode_terms(&valid).is_ok(), "the base case decodes");
    // Offset of the payment asset code's length prefix: version, two parties,
    // network, asset tag.
    let code_length_at = 1 + 32 + 32 + 8 + 1;
    // Offset of the observer count: before the one observer, the dependents'
    // count and the nonce.
    let observers_at = valid.len() - 8 - 4 - 32 - 4;

    let with = |edit: &dyn Fn(&mut Vec<u8>)| {
        let mut bytes = valid.clone();
        edit(&mut bytes);
        bytes
    };
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("empty", vec![]),
        ("wrong version", with(&|b| b[0] = TERMS_VERSION + 1)),
        ("truncated", with(&|b| b.truncate(b.len() - 1))),
        ("trailing byte", with(&|b| b.push(0))),
        ("empty address", with(&|b| b[code_length_at + 4 + 3 + 16] = 0)),
        ("address longer than the limit", with(&|b| b[code_length_at + 4 + 3 + 16] = 34)),
        ("asset code too long", with(&|b| b[code_length_at..code_length_at + 4].copy_from_slice(&65u32.to_be_bytes()))),
        (
            "empty asset code",
            with(&|b| {
                b[code_length_at..code_length_at + 4].copy_from_slice(&0u32.to_be_bytes());
                b.drain(code_length_at + 4..code_length_at + 7);
            }),
        ),
        ("asset code with a space", with(&|b| b[code_length_at + 4] = b' ')),
        ("asset code not UTF-8", with(&|b| b[code_length_at + 4] = 0xff)),
        (
            "too many observers",
            with(&|b| {
                let count = u32::try_from(OBSERVERS_MAX + 1).expect("small");
                b[observers_at..observers_at + 4].copy_from_slice(&count.to_be_bytes());
            }),
        ),
        (
            "count of four billion",
            with(&|b| b[observers_at..observers_at + 4].copy_from_slice(&u32::MAX.to_be_bytes())),
        ),
        ("oversized", vec![TERMS_VERSION; DEAL_TERMS_LEN_MAX + 1]),
    ];
    for (name, bytes) in cases {
        let result = decode_terms(&bytes);
        assert!(result.is_err(), "{name}: expected a refusal, got {result:?}");
    }
}

mod escrow_events {
    use super::check_total;
    use interlock_core::{EscrowEvent, Reservation};
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        /// Events and reservations arrive from ledger nodes over the network:
        /// decoding never panics, and what decodes re-encodes to the same bytes.
        #[test]
        fn escrow_event_and_reservation_decoders_are_total_and_canonical(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
            check_total::<EscrowEvent>(&bytes)?;
            check_total::<Reservation>(&bytes)?;
        }
    }
}
