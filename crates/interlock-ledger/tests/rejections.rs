//! Every kind of bad transaction is refused with its typed error and changes
//! nothing: same state digest, same tip, on both stores.

use interlock_core::crypto::{Certificate, Decision, NotaryKey, PartyKey, Secret, Token};
use interlock_core::escrow::{Condition, EscrowError, EscrowOp, ReserveRequest};
use interlock_core::{reservation_id, Address, Asset, AssetCode, DealId, Hash32, ItemId, LegKind, NetworkId};
use interlock_ledger::{Genesis, Ledger, LedgerError, MemoryStore, Op, SqliteStore, Store, Transaction};

const NETWORK: NetworkId = NetworkId(7);
const T0: u64 = 1_000_000;
const EXPIRY: u64 = T0 + 10_000;

struct Fixture<S: Store> {
    ledger: Ledger<S>,
    operator: PartyKey,
    buyer: PartyKey,
    seller: PartyKey,
    mallory: PartyKey,
    nonces: std::collections::HashMap<[u8; 32], u64>,
    secret: Secret,
    deal: DealId,
}

fn usd() -> AssetCode {
    AssetCode::new("USD").unwrap()
}
fn addr(key: &PartyKey) -> Address {
    Address::from_bytes(key.public().0)
}

impl<S: Store> Fixture<S> {
    fn new(store: S) -> Fixture<S> {
        let operator = PartyKey::from_seed([1; 32]);
        let genesis = Genesis { network: NETWORK, operator: operator.public(), timestamp_ms: T0 };
        let ledger = Ledger::open(store, genesis).unwrap();
        let mut fixture = Fixture {
            ledger,
            operator,
            buyer: PartyKey::from_seed([2; 32]),
            seller: PartyKey::from_seed([3; 32]),
            mallory: PartyKey::from_seed([4; 32]),
            nonces: Default::default(),
            secret: Secret([9; 32]),
            deal: DealId(Hash32::sha256(&[b"deal"])),
        };
        for party in [fixture.buyer.clone(), fixture.seller.clone(), fixture.mallory.clone()] {
            fixture.ok(&fixture.operator.clone(), Op::Register { account: party.public() });
        }
        let (buyer, seller) = (addr(&fixture.buyer), addr(&fixture.seller));
        fixture.ok(
            &fixture.operator.clone(),
            Op::Issue { to: buyer, asset: Asset::Fungible { code: usd(), amount: 1000 } },
        );
        fixture.ok(&fixture.operator.clone(), Op::Issue { to: seller, asset: title(1) });
        // An open hashlock reservation: 100 USD from buyer to seller.
        let reserve = fixture.reserve_payment(100, EXPIRY);
        fixture.ok(&fixture.buyer.clone(), reserve);
        fixture
    }

    fn reserve_payment(&self, amount: u128, expiry_ms: u64) -> Op {
        Op::Escrow(EscrowOp::Reserve(ReserveRequest {
            deal_id: self.deal,
            leg: LegKind::Payment,
            asset: Asset::Fungible { code: usd(), amount },
            owner: addr(&self.buyer),
            beneficiary: addr(&self.seller),
            keeper: None,
            condition: Condition::Hashlock(self.secret.hash()),
            expiry_ms,
        }))
    }

    fn sign(&mut self, key: &PartyKey, op: Op) -> Transaction {
        let nonce = self.nonces.entry(key.public().0).or_insert(0);
        *nonce += 1;
        Transaction::sign(key, NETWORK, *nonce, op)
    }

    fn ok(&mut self, key: &PartyKey, op: Op) {
        let tx = self.sign(key, op);
        self.ledger.apply_now(tx, T0).unwrap();
    }

    /// Applies `tx` at `now_ms`, expects a refusal matching `expected`, and checks
    /// that nothing changed.
    fn check(&mut self, name: &str, tx: Transaction, now_ms: u64, expected: impl Fn(&LedgerError) -> bool) {
        let digest = self.ledger.state().digest();
        let tip = self.ledger.tip().clone();
        let error = self.ledger.apply_now(tx, now_ms).expect_err(name);
        assert!(expected(&error), "{name}: unexpected error {error}");
        assert_eq!(self.ledger.state().digest(), digest, "{name}: state changed");
        assert_eq!(self.ledger.tip(), &tip, "{name}: a block was committed");
        assert!(!error.to_string().is_empty());
    }
}

fn title(n: u128) -> Asset {
    Asset::Unique { class: AssetCode::new("TITLE").unwrap(), item: ItemId::from_u128(n) }
}

fn escrow(error: &LedgerError) -> Option<&EscrowError> {
    match error {
        LedgerError::Escrow(inner) => Some(inner),
        _ => None,
    }
}

fn run_all<S: Store>(mut f: Fixture<S>) {
    let payment = reservation_id(f.deal, LegKind::Payment);
    let (buyer, seller, mallory, operator) = (f.buyer.clone(), f.seller.clone(), f.mallory.clone(), f.operator.clone());

    // Bad signature: flip one bit of an otherwise valid transaction.
    let mut tx = f.sign(&seller, Op::Transfer { to: addr(&buyer), asset: title(1) });
    tx.signature.0[0] ^= 1;
    f.check("bad signature", tx, T0, |e| matches!(e, LedgerError::BadSignature { .. }));

    // Replay: a transaction that already applied, submitted again.
    let tx = f.sign(&buyer, Op::Transfer { to: addr(&seller), asset: Asset::Fungible { code: usd(), amount: 1 } });
    f.ledger.apply_now(tx.clone(), T0).unwrap();
    f.check("replayed transaction", tx, T0, |e| matches!(e, LedgerError::StaleNonce { .. }));

    // Another network's transaction.
    let tx = Transaction::sign(&buyer, NetworkId(8), 1_000, Op::Register { account: buyer.public() });
    f.check("wrong network", tx, T0, |e| matches!(e, LedgerError::WrongNetwork { .. }));

    // An account the operator never registered.
    let stranger = PartyKey::from_seed([5; 32]);
    let tx = Transaction::sign(&stranger, NETWORK, 1, Op::Transfer { to: addr(&buyer), asset: title(1) });
    f.check("unregistered signer", tx, T0, |e| matches!(e, LedgerError::UnknownAccount(_)));

    // Only the operator issues.
    let tx = f.sign(&mallory, Op::Issue { to: addr(&mallory), asset: Asset::Fungible { code: usd(), amount: 5 } });
    f.check("issue by non-operator", tx, T0, |e| matches!(e, LedgerError::NotOperator(_)));
    let tx = f.sign(&operator, Op::Issue { to: addr(&mallory), asset: title(1) });
    f.check("issue an existing item", tx, T0, |e| matches!(e, LedgerError::ItemExists(_)));

    // Insufficient funds, in a transfer and in a reservation.
    let tx = f.sign(&mallory, Op::Transfer { to: addr(&buyer), asset: Asset::Fungible { code: usd(), amount: 1 } });
    f.check("transfer without funds", tx, T0, |e| matches!(escrow(e), Some(EscrowError::InsufficientFunds { .. })));
    let mut other = f.reserve_payment(5_000, EXPIRY);
    if let Op::Escrow(EscrowOp::Reserve(request)) = &mut other {
        request.deal_id = DealId(Hash32::sha256(&[b"other deal"]));
    }
    let tx = f.sign(&buyer, other);
    f.check("reserve without funds", tx, T0, |e| {
        matches!(escrow(e), Some(EscrowError::InsufficientFunds { held: 899, needed: 5000, .. }))
    });

    // Unknown asset.
    let tx = f.sign(
        &buyer,
        Op::Transfer { to: addr(&seller), asset: Asset::Fungible { code: AssetCode::new("EUR").unwrap(), amount: 1 } },
    );
    f.check("unknown asset", tx, T0, |e| matches!(escrow(e), Some(EscrowError::UnknownAsset(code)) if code == "EUR"));

    // An item the sender does not hold.
    let tx = f.sign(&mallory, Op::Transfer { to: addr(&mallory), asset: title(1) });
    f.check("item not owned", tx, T0, |e| matches!(escrow(e), Some(EscrowError::NotItemOwner { .. })));

    // The same leg reserved twice.
    let again = f.reserve_payment(100, EXPIRY);
    let tx = f.sign(&buyer, again);
    f.check("second reservation of a leg", tx, T0, |e| matches!(escrow(e), Some(EscrowError::AlreadyReserved(_))));

    // Reserve in someone else's name.
    let theirs = f.reserve_payment(100, EXPIRY);
    let tx = f.sign(&mallory, theirs);
    f.check("reserve for another owner", tx, T0, |e| matches!(escrow(e), Some(EscrowError::NotOwner { .. })));

    // Wrong beneficiary: mallory presents the right secret.
    let tx = f.sign(&mallory, Op::Escrow(EscrowOp::Execute { reservation: payment, token: Token::Secret(f.secret) }));
    f.check("execute by a stranger", tx, T0, |e| matches!(escrow(e), Some(EscrowError::NotBeneficiary { .. })));

    // Wrong token: a wrong secret, and a certificate for a hashlock.
    let tx =
        f.sign(&seller, Op::Escrow(EscrowOp::Execute { reservation: payment, token: Token::Secret(Secret([0; 32])) }));
    f.check("wrong secret", tx, T0, |e| matches!(escrow(e), Some(EscrowError::WrongSecret(_))));
    let notary = NotaryKey::from_seed([3; 32]).unwrap();
    let vote = notary.sign_decision(f.deal, Decision::Commit);
    let certificate = Certificate { deal_id: f.deal, decision: Decision::Commit, signatures: vec![vote.signature] };
    let tx =
        f.sign(&seller, Op::Escrow(EscrowOp::Execute { reservation: payment, token: Token::Certificate(certificate) }));
    f.check("certificate for a hashlock", tx, T0, |e| matches!(escrow(e), Some(EscrowError::WrongTokenKind { .. })));

    // Too late: the right secret after the expiry.
    let tx = f.sign(&seller, Op::Escrow(EscrowOp::Execute { reservation: payment, token: Token::Secret(f.secret) }));
    f.check("execute after expiry", tx, EXPIRY, |e| matches!(escrow(e), Some(EscrowError::Expired { .. })));

    // Early cancel, by the owner and by a stranger.
    let tx = f.sign(&buyer, Op::Escrow(EscrowOp::Cancel { reservation: payment, certificate: None }));
    f.check("early cancel by owner", tx, EXPIRY - 1, |e| matches!(escrow(e), Some(EscrowError::NotExpired { .. })));
    let tx = f.sign(&mallory, Op::Escrow(EscrowOp::Cancel { reservation: payment, certificate: None }));
    f.check("early cancel by stranger", tx, T0, |e| matches!(escrow(e), Some(EscrowError::NotExpired { .. })));

    // Unknown reservation.
    let tx = f.sign(
        &seller,
        Op::Escrow(EscrowOp::Execute {
            reservation: reservation_id(f.deal, LegKind::Delivery),
            token: Token::Secret(f.secret),
        }),
    );
    f.check("unknown reservation", tx, T0, |e| matches!(escrow(e), Some(EscrowError::UnknownReservation(_))));

    // Now the legitimate execution, then the token reused.
    let tx = f.sign(&seller, Op::Escrow(EscrowOp::Execute { reservation: payment, token: Token::Secret(f.secret) }));
    f.ledger.apply_now(tx, T0 + 1).unwrap();
    assert_eq!(f.ledger.state().balance(&addr(&seller), &usd()), 101);
    let tx = f.sign(&seller, Op::Escrow(EscrowOp::Execute { reservation: payment, token: Token::Secret(f.secret) }));
    f.check("reused token", tx, T0 + 2, |e| matches!(escrow(e), Some(EscrowError::AlreadySettled { .. })));
    let tx = f.sign(&buyer, Op::Escrow(EscrowOp::Cancel { reservation: payment, certificate: None }));
    f.check("cancel after execute", tx, EXPIRY + 1, |e| matches!(escrow(e), Some(EscrowError::AlreadySettled { .. })));
}

#[test]
fn every_rejection_is_typed_and_changes_nothing_in_memory() {
    run_all(Fixture::new(MemoryStore::new()));
}

#[test]
fn every_rejection_is_typed_and_changes_nothing_in_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    run_all(Fixture::new(SqliteStore::open(&dir.path().join("ledger.sqlite")).unwrap()));
}

#[test]
fn committed_blocks_survive_reopening_the_sqlite_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ledger.sqlite");
    let fixture = Fixture::new(SqliteStore::open(&path).unwrap());
    let digest = fixture.ledger.state().digest();
    let tip = fixture.ledger.tip().clone();
    let genesis = Genesis { network: NETWORK, operator: fixture.operator.public(), timestamp_ms: T0 };
    drop(fixture);
    let reopened = Ledger::open(SqliteStore::open(&path).unwrap(), genesis).unwrap();
    assert_eq!(reopened.state().digest(), digest);
    assert_eq!(reopened.tip(), &tip);
    // The chain links up and every block commits to its transactions.
    let mut parent = reopened.block(1).unwrap().unwrap();
    assert!(parent.is_consistent());
    for height in 2..=tip.height {
        let block = reopened.block(height).unwrap().unwrap();
        assert!(block.is_consistent());
        assert_eq!(block.header.parent, parent.header.hash());
        parent = block;
    }
    let events = reopened.events_from(1, 100).unwrap();
    assert_eq!(events.len(), 1, "one reservation event");
    // A store of another network is refused.
    let other = Genesis { network: NetworkId(99), operator: reopened.operator(), timestamp_ms: T0 };
    drop(reopened);
    let error = Ledger::open(SqliteStore::open(&path).unwrap(), other).err().unwrap();
    assert!(matches!(error, LedgerError::StoreNetwork { .. }));
}

#[test]
fn truncated_and_oversized_transactions_are_refused_by_the_decoder() {
    use interlock_core::encoding::Encode;
    let key = PartyKey::from_seed([2; 32]);
    let tx = Transaction::sign(&key, NETWORK, 1, Op::Register { account: key.public() });
    let bytes = tx.to_bytes();
    assert_eq!(Transaction::decode_untrusted(&bytes).unwrap(), tx);
    for cut in 0..bytes.len() {
        assert!(Transaction::decode_untrusted(&bytes[..cut]).is_err(), "prefix of {cut} bytes");
    }
    let huge = vec![0u8; interlock_core::limits::TRANSACTION_LEN_MAX + 1];
    assert!(matches!(Transaction::decode_untrusted(&huge), Err(LedgerError::TooLarge { .. })));
}

#[test]
fn a_named_keeper_executes_for_the_beneficiary_and_the_asset_still_goes_to_the_beneficiary() {
    let mut f = Fixture::new(MemoryStore::new());
    let keeper = PartyKey::from_seed([6; 32]);
    let operator = f.operator.clone();
    f.ok(&operator, Op::Register { account: keeper.public() });
    let deal = DealId(Hash32::sha256(&[b"kept deal"]));
    let request = ReserveRequest {
        deal_id: deal,
        leg: LegKind::Payment,
        asset: Asset::Fungible { code: usd(), amount: 50 },
        owner: addr(&f.buyer),
        beneficiary: addr(&f.seller),
        keeper: Some(addr(&keeper)),
        condition: Condition::Hashlock(f.secret.hash()),
        expiry_ms: EXPIRY,
    };
    let buyer = f.buyer.clone();
    f.ok(&buyer, Op::Escrow(EscrowOp::Reserve(request)));
    let id = reservation_id(deal, LegKind::Payment);
    // Mallory, with the right secret, is still no keeper.
    let mallory = f.mallory.clone();
    let tx = f.sign(&mallory, Op::Escrow(EscrowOp::Execute { reservation: id, token: Token::Secret(f.secret) }));
    f.check("execute by a stranger", tx, T0, |e| matches!(escrow(e), Some(EscrowError::NotBeneficiary { .. })));
    let before = f.ledger.state().balance(&addr(&f.seller), &usd());
    let tx = f.sign(&keeper, Op::Escrow(EscrowOp::Execute { reservation: id, token: Token::Secret(f.secret) }));
    let event = f.ledger.apply_now(tx, T0 + 1).unwrap().expect("an execution event");
    match event {
        interlock_core::EscrowEvent::Executed { by, to, .. } => {
            assert_eq!(by, addr(&keeper));
            assert_eq!(to, addr(&f.seller));
        }
        other => panic!("expected an execution, found {other:?}"),
    }
    assert_eq!(f.ledger.state().balance(&addr(&f.seller), &usd()), before + 50);
    assert_eq!(f.ledger.state().balance(&addr(&keeper), &usd()), 0, "the keeper takes nothing");
}

#[test]
fn one_signers_transactions_apply_in_nonce_order_whatever_order_they_arrived_in() {
    let operator = PartyKey::from_seed([1; 32]);
    let genesis = Genesis { network: NETWORK, operator: operator.public(), timestamp_ms: T0 };
    let mut ledger = Ledger::open(MemoryStore::default(), genesis).unwrap();
    let accounts: Vec<PartyKey> = (10..13).map(|seed| PartyKey::from_seed([seed; 32])).collect();
    // Nonces 3, 1, 2 of the operator's registrations arrive in that order.
    for (nonce, account) in [(3, &accounts[2]), (1, &accounts[0]), (2, &accounts[1])] {
        let tx = Transaction::sign(&operator, NETWORK, nonce, Op::Register { account: account.public() });
        ledger.submit(tx).unwrap();
    }
    let outcome = ledger.produce_block(T0 + 1).unwrap().unwrap();
    assert!(outcome.rejected.is_empty(), "{:?}", outcome.rejected);
    assert_eq!(outcome.included.len(), 3);
    assert_eq!(ledger.nonce(operator.public()), 3);
}
