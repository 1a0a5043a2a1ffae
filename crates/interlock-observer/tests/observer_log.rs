//! The observer's log on a real SQLite file: records chain and verify, a
//! gateway event seen twice (a resumed stream) is recorded once, the log
//! resumes its chain after reopening, the deal's end is derived once, and a
//! changed row or a foreign key is found by `verify`.

use interlock_core::crypto::PartyKey;
use interlock_core::encoding::Encode;
use interlock_core::{
    Asset, AssetCode, Condition, DealTerms, EscrowEvent, LegKind, NetworkId, Reservation, ReservationState, Settlement,
    Token,
};
use interlock_observer::log::{stored_key, verify};
use interlock_observer::record::GatewayEvent;
use interlock_observer::ObserverLog;

fn terms(observer: &PartyKey) -> DealTerms {
    let (buyer, seller) = (PartyKey::from_seed([2; 32]), PartyKey::from_seed([3; 32]));
    let usd = || Asset::Fungible { code: AssetCode::new("USD").unwrap(), amount: 5 };
    let settlement = Settlement::Hashlock {
        hash: interlock_core::Secret([5; 32]).hash(),
        payment_expiry_ms: 20_000,
        delivery_expiry_ms: 10_000,
        margin_ms: 1_000,
    };
    DealTerms {
        observers: vec![observer.public()],
        ..DealTerms::swap(buyer.public(), seller.public(), (NetworkId(1), usd()), (NetworkId(2), usd()), settlement)
    }
}

fn event(terms: &DealTerms, network: u64, seq: u64, kind: &str, escrow: Option<EscrowEvent>) -> GatewayEvent {
    GatewayEvent {
        gateway_network: network,
        gateway_seq: seq,
        deal_id: terms.id(),
        kind: kind.into(),
        network,
        height: seq,
        timestamp_ms: 1_000 + seq,
        event_encoded: escrow.map(|e| e.to_bytes()).unwrap_or_default(),
        text: format!("{kind} on {network}"),
        time_from_observer: false,
    }
}

/// The beneficiary's execution of the reservation of `leg`, with the secret.
fn executed(terms: &DealTerms, leg: LegKind) -> EscrowEvent {
    let reservation = reservation(terms, leg);
    reservation.executed(reservation.beneficiary, Token::Secret(interlock_core::Secret([5; 32])))
}

fn reserved(terms: &DealTerms, leg: LegKind) -> EscrowEvent {
    EscrowEvent::Reserved(reservation(terms, leg))
}

/// The owner's cancellation of the reservation of `leg`.
fn cancelled(terms: &DealTerms, leg: LegKind) -> EscrowEvent {
    let reservation = reservation(terms, leg);
    reservation.cancelled(reservation.owner)
}

/// The reservation of `leg` as the terms ask for it, locked by the hash of the secret `[5; 32]`.
fn reservation(terms: &DealTerms, leg: LegKind) -> Reservation {
    let deal_id = terms.id();
    let the_leg = terms.leg(leg);
    Reservation {
        id: terms.reservation_id(deal_id, leg),
        deal_id,
        leg,
        asset: the_leg.asset.clone(),
        owner: the_leg.owner,
        beneficiary: the_leg.beneficiary,
        keeper: None,
        condition: Condition::Hashlock(interlock_core::Secret([5; 32]).hash()),
        expiry_ms: terms.expiry_ms(leg),
        state: ReservationState::Reserved,
    }
}

/// The observer the deals name; the log is its.
fn observer() -> PartyKey {
    PartyKey::from_seed([11; 32])
}

/// A fresh directory, removed when dropped, and the path of a log in it.
fn log_file() -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("observer.sqlite");
    (dir, path)
}

/// Opens the observer's log at `path`, or reopens it as a restarted observer does.
fn open(path: &std::path::Path) -> ObserverLog {
    ObserverLog::open(path, observer()).unwrap()
}

#[test]
fn the_log_chains_dedupes_resumes_and_finds_a_changed_record() {
    let (_dir, path) = log_file();
    let key = observer();
    let terms = terms(&key);
    let deal_id = terms.id();
    let mut log = open(&path);
    assert!(log.follow(1, 0, &terms, 1).unwrap());
    assert!(!log.follow(2, 0, &terms, 1).unwrap(), "a deal is followed once");
    assert_eq!(log.record(&event(&terms, 1, 1, "proposed", None)).unwrap(), "proposed");
    assert_eq!(log.record(&event(&terms, 1, 2, "registered", None)).unwrap(), "registered");
    assert_eq!(
        log.record(&event(&terms, 1, 3, "reserved", Some(reserved(&terms, LegKind::Payment)))).unwrap(),
        "running"
    );
    // The same gateway event again (a stream resumed from an older cursor): no record.
    assert_eq!(
        log.record(&event(&terms, 1, 3, "reserved", Some(reserved(&terms, LegKind::Payment)))).unwrap(),
        "running"
    );
    assert_eq!(log.len(), 3);
    assert_eq!(log.event_cursor(1, deal_id).unwrap(), 4);
    drop(log);

    // Reopened, the chain goes on from its tip.
    let mut log = open(&path);
    assert_eq!(log.len(), 3);
    assert_eq!(log.notice_cursor(2).unwrap(), 1);
    log.record(&event(&terms, 2, 1, "reserved", Some(reserved(&terms, LegKind::Delivery)))).unwrap();
    let mut late = event(&terms, 2, 2, "executed", Some(executed(&terms, LegKind::Delivery)));
    late.timestamp_ms = 9_000;
    log.record(&late).unwrap();
    let status = log.record(&event(&terms, 1, 4, "executed", Some(executed(&terms, LegKind::Payment)))).unwrap();
    assert_eq!(status, "completed");
    // A trailing event after the end derives no second end.
    log.record(&event(&terms, 2, 3, "peer_executed", Some(executed(&terms, LegKind::Payment)))).unwrap();
    let records = log.records_of(deal_id, 100).unwrap();
    let kinds: Vec<&str> = records.iter().map(|r| r.entry.kind.as_str()).collect();
    assert_eq!(
        kinds,
        ["proposed", "registered", "reserved", "reserved", "executed", "executed", "completed", "peer_executed"]
    );
    assert_eq!(records.iter().map(|r| r.seq).collect::<Vec<_>>(), (1..=8).collect::<Vec<u64>>());
    // The deal completed when its last leg executed.
    assert_eq!(records[6].entry.timestamp_ms, 9_000);
    assert!(log.open_deals().unwrap().is_empty(), "a completed deal is not followed again");
    assert_eq!(log.deals(Some("completed"), 10).unwrap().len(), 1);
    drop(log);

    let verified = verify(&path, key.public()).unwrap();
    assert_eq!((verified.records, verified.broken), (8, None));
    assert_eq!(stored_key(&path).unwrap(), Some(key.public()));
    // Checked against another key, the first signature fails.
    let other = PartyKey::from_seed([12; 32]).public();
    let broken = verify(&path, other).unwrap().broken.unwrap();
    assert_eq!(broken.seq, 1);
    assert!(broken.problem.contains("signature"), "{}", broken.problem);
    assert!(ObserverLog::open(&path, PartyKey::from_seed([12; 32])).is_err(), "a log keeps one observer key");

    // One row changed: the chain breaks there, and only the rows before it check.
    let connection = rusqlite::Connection::open(&path).unwrap();
    connection.execute("UPDATE records SET height = height + 1 WHERE seq = 5", []).unwrap();
    let verified = verify(&path, key.public()).unwrap();
    let broken = verified.broken.unwrap();
    assert_eq!((broken.seq, broken.deal_id, verified.records), (5, Some(deal_id), 4));
    assert!(broken.problem.contains("does not match its contents"), "{}", broken.problem);
    // A record removed: the next one no longer follows.
    connection.execute("UPDATE records SET height = height - 1 WHERE seq = 5", []).unwrap();
    connection.execute("DELETE FROM records WHERE seq = 6", []).unwrap();
    let broken = verify(&path, key.public()).unwrap().broken.unwrap();
    assert_eq!(broken.seq, 7);
    assert!(broken.problem.contains("expected record 6"), "{}", broken.problem);
}

#[test]
fn a_deal_whose_only_reservation_is_cancelled_ends_refunded_once() {
    let (_dir, path) = log_file();
    let key = observer();
    let terms = terms(&key);
    let mut log = open(&path);
    log.follow(1, 0, &terms, 1).unwrap();
    log.record(&event(&terms, 1, 1, "registered", None)).unwrap();
    log.record(&event(&terms, 1, 2, "reserved", Some(reserved(&terms, LegKind::Payment)))).unwrap();
    // The seller never reserved; the payment went back to the buyer after its expiry.
    let mut refund = event(&terms, 1, 3, "cancelled", Some(cancelled(&terms, LegKind::Payment)));
    refund.timestamp_ms = 25_000;
    assert_eq!(log.record(&refund).unwrap(), "refunded");
    // A late reservation of the other leg is recorded; the deal stays ended.
    assert_eq!(
        log.record(&event(&terms, 2, 1, "reserved", Some(reserved(&terms, LegKind::Delivery)))).unwrap(),
        "refunded"
    );
    let records = log.records_of(terms.id(), 100).unwrap();
    let kinds: Vec<&str> = records.iter().map(|r| r.entry.kind.as_str()).collect();
    assert_eq!(kinds, ["registered", "reserved", "cancelled", "refunded", "reserved"]);
    let body: serde_json::Value = serde_json::from_str(&records[2].entry.body).unwrap();
    assert_eq!(body["after_expiry"], true, "{body}");
    drop(log);
    assert_eq!(verify(&path, key.public()).unwrap().broken, None);
}
