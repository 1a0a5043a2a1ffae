//! Every decoder a gateway applies to network input, fed arbitrary bytes and
//! mutations of valid messages: signed deals with their signature checks, lock
//! assertions with theirs, notifications, submitted transactions, and the
//! protobuf envelopes around them. None panics; each answers a typed refusal
//! with a client-error code, or a value that passed every check — and a
//! mutation of anything signed never passes.

use interlock_core::crypto::{PartyKey, Secret, Token};
use interlock_core::encoding::{encode_terms, Encode};
use interlock_core::{
    Address, Asset, AssetCode, DealTerms, EscrowEvent, EscrowOp, Hash32, Leg, LegKind, NetworkId, Policy, Reservation,
    ReservationId, Settlement,
};
use interlock_gateway::checks::{
    check_terms, decode_notification, decode_signed_deal, decode_submission, sign_lock_assertion,
    verify_lock_assertion, verify_proposal, verify_registration,
};
use interlock_gateway::GatewayError;
use interlock_identity::{Directory, GatewayEntry, NetworkEntry, PartyEntry};
use interlock_ledger::{Op, Transaction};
use interlock_proto::v1;
use proptest::prelude::*;
use prost::Message as _;
use tonic::Code;

const ALPHA: NetworkId = NetworkId(1);
const BETA: NetworkId = NetworkId(2);

fn buyer() -> PartyKey {
    PartyKey::from_seed([2; 32])
}
fn seller() -> PartyKey {
    PartyKey::from_seed([3; 32])
}
fn beta_gateway() -> PartyKey {
    PartyKey::from_seed([42; 32])
}

fn directory() -> Directory {
    let party = |name: &str, key: PartyKey| PartyEntry {
        name: name.into(),
        key: key.public(),
        accounts: [(ALPHA, Address::from_bytes(key.public().0))].into(),
    };
    Directory {
        networks: vec![
            NetworkEntry { id: ALPHA, name: "alpha".into(), platform: "ledger".into(), config: Default::default() },
            NetworkEntry { id: BETA, name: "beta".into(), platform: "ledger".into(), config: Default::default() },
        ],
        gateways: vec![GatewayEntry {
            name: "gw-beta".into(),
            network: BETA,
            endpoint: "127.0.0.1:7302".into(),
            key: beta_gateway().public(),
        }],
        parties: vec![party("buyer", buyer()), party("seller", seller())],
        ..Directory::default()
    }
}

fn terms(nonce: u64) -> DealTerms {
    let usd = AssetCode::new("USD").unwrap();
    let leg = |network, owner: &PartyKey, beneficiary: &PartyKey| Leg {
        network,
        asset: Asset::Fungible { code: usd.clone(), amount: 30 },
        owner: Address::from_bytes(owner.public().0),
        beneficiary: Address::from_bytes(beneficiary.public().0),
        keeper: None,
    };
    DealTerms {
        buyer: buyer().public(),
        seller: seller().public(),
        payment: leg(ALPHA, &buyer(), &seller()),
        delivery: leg(BETA, &seller(), &buyer()),
        settlement: Settlement::Hashlock {
            hash: Secret([7; 32]).hash(),
            payment_expiry_ms: 2_000_000,
            delivery_expiry_ms: 1_000_000,
            margin_ms: 1_000,
        },
        policy: Policy::default(),
        observers: vec![],
        dependents: vec![],
        nonce,
    }
}

fn signed_deal(nonce: u64) -> v1::SignedDeal {
    let terms = terms(nonce);
    v1::SignedDeal {
        terms_encoded: encode_terms(&terms),
        buyer_signature: buyer().sign_deal(terms.id()).0.to_vec(),
        seller_signature: seller().sign_deal(terms.id()).0.to_vec(),
    }
}

fn reservation(nonce: u64) -> Reservation {
    let terms = terms(nonce);
    interlock_core::saga::expected_request(&terms, terms.id(), LegKind::Delivery).reservation()
}

fn executed(nonce: u64) -> EscrowEvent {
    let reservation = reservation(nonce);
    reservation.executed(reservation.beneficiary, Token::Secret(Secret([7; 32])))
}

/// A refusal of network input is the caller's fault, never the server's.
fn client_error(error: &GatewayError) -> bool {
    matches!(error.code(), Code::InvalidArgument | Code::Unauthenticated | Code::PermissionDenied)
}

/// Flips, cuts or extends `bytes` as `mutation` says.
fn mutate(bytes: &[u8], mutation: &(u8, usize, u8)) -> Vec<u8> {
    let (how, at, value) = *mutation;
    let mut bytes = bytes.to_vec();
    match how % 3 {
        0 if !bytes.is_empty() => {
            let index = at % bytes.len();
            bytes[index] ^= value.max(1);
        }
        1 => bytes.truncate(at % (bytes.len() + 1)),
        _ => bytes.insert(at % (bytes.len() + 1), value),
    }
    bytes
}

fn mutation() -> impl Strategy<Value = (u8, usize, u8)> {
    (any::<u8>(), any::<usize>(), any::<u8>())
}

fn bytes(max: usize) -> impl Strategy<Value = Vec<u8>> {
    proptest::collection::vec(any::<u8>(), 0..max)
}

/// Every check a gateway applies to a signed deal.
fn check_deal(deal: &v1::SignedDeal) -> Result<(), GatewayError> {
    let directory = directory();
    let decoded = decode_signed_deal(deal)?;
    check_terms(&decoded.terms, ALPHA)?;
    let proposal = verify_proposal(&decoded, &directory).map(|_| ());
    if let Err(error) = &proposal {
        assert!(client_error(error), "{error}");
    }
    verify_registration(&decoded, &directory)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn arbitrary_signed_deals_are_refused_cleanly(terms in bytes(600), buyer in bytes(80), seller in bytes(80)) {
        let deal = v1::SignedDeal { terms_encoded: terms, buyer_signature: buyer, seller_signature: seller };
        if let Err(error) = check_deal(&deal) {
            prop_assert!(client_error(&error), "{}", error);
        }
    }

    #[test]
    fn a_mutated_signed_deal_never_registers(nonce in any::<u64>(), field in 0u8..3, change in mutation()) {
        let valid = signed_deal(nonce);
        prop_assert!(check_deal(&valid).is_ok());
        let mut deal = valid.clone();
        match field {
            0 => deal.terms_encoded = mutate(&valid.terms_encoded, &change),
            1 => deal.buyer_signature = mutate(&valid.buyer_signature, &change),
            _ => deal.seller_signature = mutate(&valid.seller_signature, &change),
        }
        match check_deal(&deal) {
            Ok(()) => prop_assert_eq!(deal, valid),
            Err(error) => prop_assert!(client_error(&error), "{}", error),
        }
    }

    #[test]
    fn arbitrary_lock_assertions_are_refused_cleanly(network in 0u64..4, height in any::<u64>(), hash in bytes(40), reservation in bytes(600), signature in bytes(80)) {
        let assertion = v1::LockAssertion { network, height, block_hash: hash, reservation_encoded: reservation, signature };
        if let Err(error) = verify_lock_assertion(&assertion, &directory()) {
            prop_assert!(client_error(&error), "{}", error);
        }
    }

    #[test]
    fn a_mutated_lock_assertion_never_verifies(nonce in any::<u64>(), field in 0u8..5, change in mutation()) {
        let genuine = sign_lock_assertion(&beta_gateway(), BETA, 9, Hash32([4; 32]), &reservation(nonce));
        prop_assert_eq!(verify_lock_assertion(&genuine, &directory()).unwrap(), reservation(nonce));
        let mut assertion = genuine.clone();
        match field {
            0 => assertion.network ^= u64::from(change.2.max(1)),
            1 => assertion.height ^= u64::from(change.2.max(1)),
            2 => assertion.block_hash = mutate(&genuine.block_hash, &change),
            3 => assertion.reservation_encoded = mutate(&genuine.reservation_encoded, &change),
            _ => assertion.signature = mutate(&genuine.signature, &change),
        }
        match verify_lock_assertion(&assertion, &directory()) {
            Ok(_) => prop_assert_eq!(assertion, genuine),
            Err(error) => prop_assert!(client_error(&error), "{}", error),
        }
    }

    #[test]
    fn notifications_decode_to_executions_and_cancellations_only(event in bytes(600), nonce in any::<u64>(), change in mutation()) {
        let valid = executed(nonce).to_bytes();
        for event_encoded in [event, mutate(&valid, &change), valid.clone()] {
            let notification = v1::Notification { network: 2, height: 1, timestamp_ms: 1, event_encoded: event_encoded.clone() };
            match decode_notification(&notification) {
                Ok(event) => {
                    prop_assert!(!matches!(event, EscrowEvent::Reserved(_)));
                    prop_assert_eq!(event.to_bytes(), event_encoded);
                }
                Err(error) => prop_assert!(client_error(&error), "{}", error),
            }
        }
    }

    #[test]
    fn submitted_transactions_pass_only_when_intact(random in bytes(600), nonce in any::<u64>(), change in mutation()) {
        let op = Op::Escrow(EscrowOp::Execute { reservation: ReservationId(Hash32([9; 32])), token: Token::Secret(Secret([1; 32])) });
        let valid = Transaction::sign(&buyer(), ALPHA, nonce, op).to_bytes();
        prop_assert!(decode_submission(&valid).is_ok());
        for bytes in [random, mutate(&valid, &change)] {
            match decode_submission(&bytes) {
                Ok(transaction) => prop_assert_eq!(transaction.to_bytes(), valid.clone()),
                Err(error) => prop_assert!(client_error(&error), "{}", error),
            }
        }
    }

    #[test]
    fn protobuf_envelopes_never_panic(raw in bytes(800), nonce in any::<u64>(), change in mutation()) {
        // Arbitrary bytes and a mutated genuine envelope, through prost and then the checks.
        let genuine = v1::LockAssertions {
            assertions: vec![sign_lock_assertion(&beta_gateway(), BETA, 9, Hash32([4; 32]), &reservation(nonce))],
        }
        .encode_to_vec();
        for bytes in [raw.clone(), mutate(&genuine, &change)] {
            if let Ok(message) = v1::LockAssertions::decode(bytes.as_slice()) {
                for assertion in &message.assertions {
                    let _ = verify_lock_assertion(assertion, &directory());
                }
            }
            if let Ok(message) = v1::Notifications::decode(bytes.as_slice()) {
                for notification in &message.notifications {
                    let _ = decode_notification(notification);
                }
            }
            if let Ok(notice) = v1::DealNotice::decode(bytes.as_slice()) {
                if let Some(deal) = &notice.deal {
                    let _ = check_deal(deal);
                }
            }
            if let Ok(deal) = v1::SignedDeal::decode(bytes.as_slice()) {
                let _ = check_deal(&deal);
            }
            if let Ok(request) = v1::SubmitRequest::decode(bytes.as_slice()) {
                let _ = decode_submission(&request.transaction_encoded);
            }
        }
    }
}
