//! The platform conformance suite on the embedded ledger in process, once on a
//! SQLite file and once in memory.

use interlock_chain::conformance::{Actor, Harness, FUNDS, ITEMS};
use interlock_chain::{BoxFuture, ChainError, Cursor, Follower, Submitter};
use interlock_core::crypto::PartyKey;
use interlock_core::{Address, Asset, AssetCode, ItemId, NetworkId};
use interlock_ledger::{Genesis, Holder, Ledger, LocalLedger, MemoryStore, Op, SqliteStore, Store, Transaction};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

const NETWORK: NetworkId = NetworkId(11);
const T0: u64 = 1_700_000_000_000;

struct LedgerHarness<S: Store> {
    ledger: LocalLedger<S>,
    clock: Arc<AtomicU64>,
    operator: PartyKey,
    keys: [PartyKey; 3],
    // Keeps the SQLite file's directory until the harness goes.
    _dir: Option<tempfile::TempDir>,
}

fn usd() -> AssetCode {
    AssetCode::new("USD").expect("valid code")
}
fn deed() -> AssetCode {
    AssetCode::new("DEED").expect("valid code")
}

impl<S: Store + Send + 'static> LedgerHarness<S> {
    fn new(store: S, dir: Option<tempfile::TempDir>) -> LedgerHarness<S> {
        let operator = PartyKey::from_seed([0x0e; 32]);
        let genesis = Genesis { network: NETWORK, operator: operator.public(), timestamp_ms: T0 };
        let clock = Arc::new(AtomicU64::new(T0));
        let read = clock.clone();
        let ledger = LocalLedger::new(
            Ledger::open(store, genesis).expect("a fresh store opens"),
            Arc::new(move || read.fetch_add(1, Ordering::Relaxed)),
        );
        let keys = [PartyKey::from_seed([0xb1; 32]), PartyKey::from_seed([0x51; 32]), PartyKey::from_seed([0x66; 32])];
        let harness = LedgerHarness { ledger, clock, operator, keys, _dir: dir };
        for key in &harness.keys {
            harness.operator(Op::Register { account: key.public() });
            let to = Address::from_bytes(key.public().0);
            harness.operator(Op::Issue { to, asset: Asset::Fungible { code: usd(), amount: FUNDS } });
        }
        for number in 1..=ITEMS {
            let to = harness.account(Actor::Seller);
            harness.operator(Op::Issue { to, asset: harness.item(number) });
        }
        harness
    }

    fn operator(&self, op: Op) {
        let mut ledger = self.ledger.lock();
        let nonce = ledger.nonce(self.operator.public()) + 1;
        let transaction = Transaction::sign(&self.operator, NETWORK, nonce, op);
        let now = self.clock.load(Ordering::Relaxed);
        ledger.apply_now(transaction, now).expect("the operator's setup applies");
    }

    fn key(&self, actor: Actor) -> &PartyKey {
        match actor {
            Actor::Buyer => &self.keys[0],
            Actor::Seller => &self.keys[1],
            Actor::Stranger => &self.keys[2],
        }
    }
}

impl<S: Store + Send + 'static> Harness for LedgerHarness<S> {
    fn network(&self) -> NetworkId {
        NETWORK
    }

    fn account(&self, actor: Actor) -> Address {
        Address::from_bytes(self.key(actor).public().0)
    }

    fn submitter(&self, actor: Actor) -> Arc<dyn Submitter> {
        Arc::new(self.ledger.submitter(self.key(actor).clone()))
    }

    fn fungible(&self, amount: u128) -> Asset {
        Asset::Fungible { code: usd(), amount }
    }

    fn item(&self, number: u64) -> Asset {
        Asset::Unique { class: deed(), item: ItemId::from_u128(u128::from(number)) }
    }

    fn balance(&mut self, actor: Actor, asset: &Asset) -> BoxFuture<'_, Result<u128, ChainError>> {
        let account = self.account(actor);
        let ledger = self.ledger.lock();
        let held = match asset {
            Asset::Fungible { code, .. } => ledger.state().balance(&account, code),
            Asset::Unique { class, item } => {
                u128::from(ledger.state().item_holder(class, item) == Some(Holder::Account(account)))
            }
        };
        Box::pin(async move { Ok(held) })
    }

    fn now_ms(&mut self) -> BoxFuture<'_, Result<u64, ChainError>> {
        let now = self.ledger.lock().tip().timestamp_ms;
        Box::pin(async move { Ok(now) })
    }

    fn advance(&mut self, ms: u64) -> BoxFuture<'_, Result<(), ChainError>> {
        let now = self.clock.fetch_add(ms, Ordering::Relaxed) + ms;
        let produced = self.ledger.lock().produce_heartbeat(now).map(|_| ());
        Box::pin(async move { produced.map_err(|error| ChainError::retry_later(error.to_string())) })
    }

    /// Every submission sealed its block: nothing waits.
    fn settle(&mut self) -> BoxFuture<'_, Result<(), ChainError>> {
        Box::pin(async { Ok(()) })
    }

    fn start(&self) -> Cursor {
        Cursor::start(0)
    }

    fn follower(&mut self, from: Cursor) -> BoxFuture<'_, Result<Box<dyn Follower>, ChainError>> {
        let follower: Box<dyn Follower> = Box::new(self.ledger.follower(from));
        Box::pin(async move { Ok(follower) })
    }
}

mod sqlite {
    use super::*;

    async fn harness() -> LedgerHarness<SqliteStore> {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let store = SqliteStore::open(&dir.path().join("ledger.sqlite")).expect("a fresh SQLite file opens");
        LedgerHarness::new(store, Some(dir))
    }

    interlock_chain::conformance_suite!(harness());
}

mod memory {
    use super::*;

    async fn harness() -> LedgerHarness<MemoryStore> {
        LedgerHarness::new(MemoryStore::default(), None)
    }

    interlock_chain::conformance_suite!(harness());
}
