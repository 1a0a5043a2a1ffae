//! The notary's SQLite log: what it writes survives reopening, and it never
//! holds two decisions for one deal.

use interlock_core::crypto::{NotaryKey, PartyKey};
use interlock_core::notary::NotaryDeal;
use interlock_core::{Asset, AssetCode, DealTerms, Decision, NetworkId, Settlement};
use interlock_notary::NotaryLog;
use interlock_rpc::store::StoreError;

const T0: u64 = 1_000_000;

fn terms(settlement: Settlement) -> DealTerms {
    let (buyer, seller) = (PartyKey::from_seed([1; 32]), PartyKey::from_seed([2; 32]));
    let usd = |amount| Asset::Fungible { code: AssetCode::new("USD").unwrap(), amount };
    DealTerms::swap(buyer.public(), seller.public(), (NetworkId(1), usd(5)), (NetworkId(2), usd(7)), settlement)
}

/// The notary of these tests.
fn notary() -> NotaryKey {
    NotaryKey::from_seed([5; 32]).unwrap()
}

/// A deal decided by [`notary`] alone.
fn one_notary_terms() -> DealTerms {
    terms(Settlement::Notary {
        notaries: vec![notary().address()],
        threshold: 1,
        decision_deadline_ms: T0 + 1_000,
        backstop_expiry_ms: T0 + 60_000,
    })
}

/// A log's file in a directory of its own, removed with it.
struct LogFile {
    _dir: tempfile::TempDir,
    path: std::path::PathBuf,
}

impl LogFile {
    fn new() -> LogFile {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notary.sqlite");
        LogFile { _dir: dir, path }
    }

    /// Opens the log, or reopens it as a restarted notary does.
    fn open(&self) -> NotaryLog {
        NotaryLog::open(&self.path).unwrap()
    }
}

#[test]
fn the_notary_log_keeps_one_decision_per_deal_across_restarts() {
    let file = LogFile::new();
    let terms = one_notary_terms();
    let deal_id = terms.id();
    let mut log = file.open();
    assert!(matches!(log.record(deal_id, Decision::Commit, None, T0), Err(StoreError::UnknownDeal(_))));
    log.accept(&terms).unwrap();
    log.accept(&terms).unwrap();
    log.record(deal_id, Decision::Commit, None, T0).unwrap();
    log.record(deal_id, Decision::Commit, None, T0).unwrap();
    let error = log.record(deal_id, Decision::Abort, None, T0).expect_err("the other decision is refused");
    assert!(matches!(error, StoreError::Contradiction { recorded: Decision::Commit, attempted: Decision::Abort, .. }));
    assert!(error.to_string().contains("never decides abort"), "{error}");
    drop(log);

    let log = file.open();
    let deals = log.load().unwrap();
    assert_eq!(deals.len(), 1);
    let (restored_terms, decision) = deals.into_iter().next().unwrap();
    assert_eq!(*restored_terms, terms);
    assert_eq!(decision, Some(Decision::Commit));
    let restored = NotaryDeal::restore(restored_terms, decision);
    assert_eq!(
        restored.vote(&notary()).unwrap().decision,
        Decision::Commit,
        "a restarted notary signs what it recorded"
    );
    // The commit added each party's amount to its daily total, once.
    let mut totals = log.daily_totals().unwrap();
    totals.sort();
    let usd = AssetCode::new("USD").unwrap();
    let day = interlock_core::policy::utc_day(T0);
    let mut expected = vec![(terms.buyer, usd.clone(), day, 5), (terms.seller, usd, day, 7)];
    expected.sort();
    assert_eq!(totals, expected);
}

#[test]
fn the_notary_log_keeps_the_reason_of_an_abort() {
    let file = LogFile::new();
    let terms = one_notary_terms();
    let mut log = file.open();
    log.accept(&terms).unwrap();
    log.record(terms.id(), Decision::Abort, Some("policy: a rule"), T0).unwrap();
    drop(log);
    let log = file.open();
    assert_eq!(log.reasons().unwrap(), vec![(terms.id(), "policy: a rule".to_owned())]);
    assert_eq!(log.daily_totals().unwrap(), vec![], "an abort moves nothing");
}

#[test]
fn the_notary_log_keeps_where_it_follows_each_network_from_across_restarts() {
    let file = LogFile::new();
    let (alpha, beta) = (interlock_core::NetworkId(1), interlock_core::NetworkId(2));
    let mut log = file.open();
    assert_eq!(log.follow_cursor(alpha).unwrap(), None, "a new notary reads from the start");
    log.save_follow_cursor(alpha, 120).unwrap();
    log.save_follow_cursor(alpha, 135).unwrap();
    log.save_follow_cursor(beta, 7).unwrap();
    drop(log);
    let log = file.open();
    assert_eq!(log.follow_cursor(alpha).unwrap(), Some(135));
    assert_eq!(log.follow_cursor(beta).unwrap(), Some(7));
}

#[test]
fn the_notary_log_keeps_one_dispute_and_one_verdict_per_deal_across_restarts() {
    let file = LogFile::new();
    let terms = one_notary_terms();
    let deal_id = terms.id();
    let buyer = PartyKey::from_seed([1; 32]);
    let first = interlock_core::verdict::Dispute::sign(&buyer, deal_id, "not as agreed");
    let second = interlock_core::verdict::Dispute::sign(&buyer, deal_id, "a second thought");
    let mut log = file.open();
    log.record_dispute(&first, T0).unwrap();
    log.record_dispute(&second, T0 + 1).unwrap();
    log.record_verdict(deal_id, Decision::Reverse).unwrap();
    log.record_verdict(deal_id, Decision::Reverse).unwrap();
    let error = log.record_verdict(deal_id, Decision::Release).expect_err("the other verdict is refused");
    assert!(matches!(
        error,
        StoreError::Contradiction { recorded: Decision::Reverse, attempted: Decision::Release, .. }
    ));
    drop(log);

    let log = file.open();
    let inspections = log.inspections().unwrap();
    assert_eq!(
        inspections,
        vec![(deal_id, Some(first), Some(Decision::Reverse))],
        "the first dispute, the one verdict"
    );
}
