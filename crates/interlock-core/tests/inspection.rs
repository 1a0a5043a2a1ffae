//! The inspection policy in the signed terms: how it encodes (terms without
//! it keep their bytes and ids), what `validate` refuses, when the window
//! closes, and who may dispute.

use interlock_core::crypto::{NotaryKey, PartyKey, Secret};
use interlock_core::encoding::{decode_terms, encode_terms, TERMS_VERSION, TERMS_VERSION_INSPECTION};
use interlock_core::limits::{INSPECTION_WINDOW_MAX_MS, INSPECTION_WINDOW_MIN_MS};
use interlock_core::{Asset, AssetCode, DealTerms, Disputer, Inspection, NetworkId, OnTimeout, Settlement, TermsError};

const DEADLINE: u64 = 5_000;
const BACKSTOP: u64 = 20_000;

fn buyer() -> PartyKey {
    PartyKey::from_seed([0xb1; 32])
}
fn seller() -> PartyKey {
    PartyKey::from_seed([0x5e; 32])
}

fn notary_terms() -> DealTerms {
    let asset = |text: &str, amount| Asset::Fungible { code: AssetCode::new(text).unwrap(), amount };
    let settlement = Settlement::Notary {
        notaries: vec![NotaryKey::from_seed([7; 32]).unwrap().address()],
        threshold: 1,
        decision_deadline_ms: DEADLINE,
        backstop_expiry_ms: BACKSTOP,
    };
    let (payment, delivery) = ((NetworkId(1), asset("USD", 100)), (NetworkId(2), asset("GOLD", 5)));
    DealTerms::swap(buyer().public(), seller().public(), payment, delivery, settlement)
}

fn inspected(window_ms: u64, disputer: Disputer) -> DealTerms {
    let mut terms = notary_terms();
    terms.policy.inspection = Some(Inspection { window_ms, disputer });
    terms
}

#[test]
fn terms_without_inspection_keep_their_bytes_and_terms_with_it_append_it() {
    let plain = notary_terms();
    let plain_bytes = encode_terms(&plain);
    assert_eq!(plain_bytes[0], TERMS_VERSION);

    let terms = inspected(86_400_000, Disputer::Either);
    let bytes = encode_terms(&terms);
    assert_eq!(bytes[0], TERMS_VERSION_INSPECTION);
    // Everything between the version and the policy's tail is the plain deal's;
    // the inspection follows the nonce: the window, then the disputer's tag.
    let mut tail = 86_400_000u64.to_be_bytes().to_vec();
    tail.push(3);
    assert_eq!(&bytes[1..plain_bytes.len()], &plain_bytes[1..]);
    assert_eq!(&bytes[plain_bytes.len()..], &tail[..]);
    assert_eq!(decode_terms(&bytes), Ok(terms.clone()));
    assert_ne!(terms.id(), plain.id(), "the policy is part of what both parties sign");

    // Version 3 without the inspection, or with an unknown disputer, is refused.
    let mut truncated = bytes.clone();
    truncated.truncate(plain_bytes.len());
    assert!(decode_terms(&truncated).is_err());
    let mut unknown = bytes.clone();
    *unknown.last_mut().unwrap() = 9;
    let refused = decode_terms(&unknown).unwrap_err().to_string();
    assert!(refused.contains("disputer tag 9"), "{refused}");
    // Version 2 with an inspection appended has trailing bytes.
    let mut trailing = bytes;
    trailing[0] = TERMS_VERSION;
    assert!(decode_terms(&trailing).unwrap_err().to_string().contains("trailing"));
}

#[test]
fn validate_refuses_inspection_without_notaries_or_with_a_window_out_of_range() {
    inspected(INSPECTION_WINDOW_MIN_MS, Disputer::Buyer).validate().expect("shortest window");
    inspected(INSPECTION_WINDOW_MAX_MS, Disputer::Buyer).validate().expect("longest window");
    for window_ms in [0, INSPECTION_WINDOW_MIN_MS - 1, INSPECTION_WINDOW_MAX_MS + 1, u64::MAX] {
        let error = inspected(window_ms, Disputer::Buyer).validate().unwrap_err();
        assert!(matches!(error, TermsError::InspectionWindow { .. }), "{window_ms}: {error}");
        assert!(error.to_string().contains(&format!("inspection window {window_ms} ms")), "{error}");
    }

    let mut hashlock = inspected(60_000, Disputer::Buyer);
    hashlock.settlement = Settlement::Hashlock {
        hash: Secret([9; 32]).hash(),
        payment_expiry_ms: 10_000,
        delivery_expiry_ms: 5_000,
        margin_ms: 5_000,
    };
    let error = hashlock.validate().unwrap_err();
    assert_eq!(error, TermsError::InspectionNeedsNotaries);
    assert!(error.to_string().contains("needs notary mode"), "{error}");
}

#[test]
fn the_window_closes_after_the_extended_deadline_and_only_the_named_side_disputes() {
    assert_eq!(notary_terms().inspection_ends_ms(), None);
    let mut terms = inspected(60_000, Disputer::Buyer);
    assert_eq!(terms.inspection_ends_ms(), Some(DEADLINE + 60_000));
    terms.policy.on_timeout = OnTimeout::ExtendOnce { by_ms: 1_000 };
    assert_eq!(terms.inspection_ends_ms(), Some(DEADLINE + 1_000 + 60_000));

    let (buyer, seller, stranger) = (buyer().public(), seller().public(), PartyKey::from_seed([3; 32]).public());
    let may = |disputer: Disputer| {
        [buyer, seller, stranger].map(|party| disputer.may_dispute(&inspected(60_000, disputer), &party))
    };
    assert_eq!(may(Disputer::Buyer), [true, false, false]);
    assert_eq!(may(Disputer::Seller), [false, true, false]);
    assert_eq!(may(Disputer::Either), [true, true, false]);
}
