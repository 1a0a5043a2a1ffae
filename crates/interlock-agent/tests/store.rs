//! The agent's SQLite store: what it writes survives reopening.

use interlock_agent::AgentStore;
use interlock_core::crypto::{PartyKey, Secret};
use interlock_core::saga::{Outcome, Role, Saga};
use interlock_core::{Asset, AssetCode, DealTerms, NetworkId, Settlement};
use std::sync::Arc;

const T0: u64 = 1_000_000;

fn terms(settlement: Settlement) -> DealTerms {
    let (buyer, seller) = (PartyKey::from_seed([1; 32]), PartyKey::from_seed([2; 32]));
    let usd = |amount| Asset::Fungible { code: AssetCode::new("USD").unwrap(), amount };
    DealTerms::swap(buyer.public(), seller.public(), (NetworkId(1), usd(5)), (NetworkId(2), usd(7)), settlement)
}

fn hashlock(secret: Secret) -> Settlement {
    Settlement::Hashlock {
        hash: secret.hash(),
        delivery_expiry_ms: T0 + 5_000,
        payment_expiry_ms: T0 + 8_000,
        margin_ms: 3_000,
    }
}

#[test]
fn the_agent_store_resumes_unfinished_sagas_and_keeps_nonces() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("agent.sqlite");
    let secret = Secret([3; 32]);
    let terms = Arc::new(terms(hashlock(secret)));
    let mut buyer = Saga::new(Role::Buyer, terms.clone(), Some(secret)).unwrap();
    let mut seller = Saga::new(Role::Seller, terms.clone(), None).unwrap();
    seller.withhold();
    let step = buyer.step(T0);
    assert!(!step.outputs.is_empty(), "the buyer reserves");
    // The seller never reserves; once the payment network is past its expiry it is done.
    seller.on_chain_time(T0 + 9_000, NetworkId(1), T0 + 9_000);
    assert_eq!(seller.outcome(), Some(Outcome::Refunded));

    let mut store = AgentStore::open(&path).unwrap();
    store.save(&[&buyer, &seller]).unwrap();
    assert_eq!(store.next_nonce(NetworkId(1)).unwrap(), 1);
    assert_eq!(store.next_nonce(NetworkId(1)).unwrap(), 2);
    assert_eq!(store.next_nonce(NetworkId(2)).unwrap(), 1);
    store.set_cursor(NetworkId(1), 42).unwrap();
    drop(store);

    let mut store = AgentStore::open(&path).unwrap();
    let unfinished = store.unfinished().unwrap();
    assert_eq!(unfinished.len(), 1, "the finished seller is not resumed");
    assert_eq!(unfinished[0].encode_record(), buyer.encode_record(), "the buyer resumes exactly where it was");
    assert!(store.next_nonce(NetworkId(1)).unwrap() > 2, "a used nonce is never handed out again");
    assert_eq!(store.cursor(NetworkId(1)).unwrap(), 42);
    assert_eq!(store.cursor(NetworkId(2)).unwrap(), 0);
}
