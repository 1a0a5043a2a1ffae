use super::{notices_naming, PAGE_LEN, SCAN_PAGES_MAX};
use crate::gateway_store::{GatewayStore, NoticeKind, SignedTerms};
use interlock_core::crypto::PartyKey;
use interlock_core::{Asset, AssetCode, DealTerms, NetworkId, Secret, Settlement};
use std::sync::Arc;

/// `count` proposed deals in a new store; those whose nonce `names` picks
/// name `observer`.
fn store_with(
    count: u64,
    observer: interlock_core::PartyId,
    names: impl Fn(u64) -> bool,
) -> (tempfile::TempDir, GatewayStore) {
    let dir = tempfile::tempdir().unwrap();
    let mut store = GatewayStore::open(&dir.path().join("gateway.sqlite")).unwrap();
    let (buyer, seller) = (PartyKey::from_seed([1; 32]).public(), PartyKey::from_seed([2; 32]).public());
    let asset = |code: &str| Asset::Fungible { code: AssetCode::new(code).unwrap(), amount: 1 };
    let settlement = Settlement::Hashlock {
        hash: Secret([3; 32]).hash(),
        delivery_expiry_ms: 600_000,
        payment_expiry_ms: 900_000,
        margin_ms: 300_000,
    };
    let mut batch = store.batch().unwrap();
    for nonce in 0..count {
        let swap = DealTerms::swap(
            buyer,
            seller,
            (NetworkId(1), asset("USD")),
            (NetworkId(2), asset("GOLD")),
            settlement.clone(),
        );
        let mut terms = DealTerms { nonce, ..swap };
        if names(nonce) {
            terms.observers = vec![observer];
        }
        let deal = SignedTerms { terms: Arc::new(terms), buyer_signature: None, seller_signature: None };
        batch.add_notice(NoticeKind::Proposed, &deal).unwrap();
    }
    batch.commit().unwrap();
    (dir, store)
}

#[test]
fn an_observers_watch_reads_on_from_past_every_notice_it_read_not_only_its_own() {
    let observer = PartyKey::from_seed([7; 32]).public();
    let (_dir, store) = store_with(600, observer, |nonce| nonce == 449);
    let page = notices_naming(&store, observer, 1).unwrap();
    let nonces: Vec<u64> = page.items.iter().map(|(_, notice)| notice.deal.terms.nonce).collect();
    assert_eq!(nonces, [449]);
    // Past the 600th notice, not past the one it found: the next read starts
    // after what this one went through, so nothing is read twice.
    assert_eq!((page.next, page.more), (601, false));
    let again = notices_naming(&store, observer, page.next).unwrap();
    assert_eq!((again.items.len(), again.next, again.more), (0, 601, false));
}

#[test]
fn one_read_of_an_observers_watch_goes_through_a_bounded_number_of_pages() {
    let observer = PartyKey::from_seed([7; 32]).public();
    let scanned = u64::try_from(SCAN_PAGES_MAX * PAGE_LEN).unwrap();
    let (_dir, store) = store_with(scanned + 10, observer, |nonce| nonce == scanned + 5);
    let first = notices_naming(&store, observer, 1).unwrap();
    assert_eq!((first.items.len(), first.next, first.more), (0, scanned + 1, true));
    let second = notices_naming(&store, observer, first.next).unwrap();
    let nonces: Vec<u64> = second.items.iter().map(|(_, notice)| notice.deal.terms.nonce).collect();
    assert_eq!((nonces, second.next, second.more), (vec![scanned + 5], scanned + 11, false));
}
