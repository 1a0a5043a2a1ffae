//! The chain adapter on a real anvil: escrow operations from the core's terms,
//! events at a confirmation depth, a reorg shallower and one deeper than that
//! depth (made with anvil's snapshot and revert), concurrent submissions from one
//! account, EIP-1559 fees, and a reservation made with other terms.

use common::{secret, usdc, EVM, HOUR_MS};
use interlock_core::{reservation_id, Asset, AssetCode, DealTerms, EscrowEvent, EscrowOp, LegKind, Settlement, Token};
use interlock_evm::alloy::primitives::{Address, U256};
use interlock_evm::alloy::providers::Provider;
use interlock_evm::chain::{
    core_address, evm_reservation, AssetBinding, AssetMap, ChainError, EvmEscrow, EvmFollower, Followed,
};
use interlock_evm::devnet::Devnet;
use interlock_evm::{EvmAsset, SlotState};

mod common;
mod rpc_proxy;

struct World {
    devnet: Devnet,
    assets: AssetMap,
    escrow: EvmEscrow,
}

impl World {
    async fn start() -> World {
        World::start_mining(None).await
    }

    /// [`World::start`] on a chain that mines a block every `block_time_ms`
    /// (one block per transaction when `None`).
    async fn start_mining(block_time_ms: Option<u64>) -> World {
        let (devnet, assets) = common::usdc_devnet(block_time_ms).await;
        let escrow = EvmEscrow::new(EVM, devnet.escrow.clone(), devnet.provider.clone(), assets.clone());
        World { devnet, assets, escrow }
    }

    fn payer(&self) -> Address {
        self.devnet.accounts[1]
    }
    fn payee(&self) -> Address {
        self.devnet.accounts[2]
    }

    /// A hashlock deal paying `amount` USDC from the payer to the payee ([`common::usdc_terms`]).
    async fn terms(&self, nonce: u64, amount: u128, expiry_in_ms: u64) -> DealTerms {
        common::usdc_terms(&self.devnet, nonce, amount, expiry_in_ms).await
    }

    fn follower(&self, depth: u64) -> EvmFollower {
        EvmFollower::new(EVM, self.devnet.provider.clone(), self.devnet.escrow.address(), self.assets.clone(), depth, 0)
            .expect("depth is positive")
    }

    /// A follower at `depth` that watches `deals`.
    fn watching(&self, depth: u64, deals: &[&DealTerms]) -> EvmFollower {
        let mut follower = self.follower(depth);
        for terms in deals {
            follower.watch(terms).expect("watch");
        }
        follower
    }

    async fn reserve(&self, terms: &DealTerms) {
        let op = EscrowOp::Reserve(interlock_core::saga::expected_request(terms, terms.id(), LegKind::Payment));
        self.escrow.submit(self.payer(), terms, &op).await.expect("reserve");
    }

    async fn rpc(&self, method: &'static str) -> serde_json::Value {
        self.devnet.provider.raw_request(method.into(), ()).await.unwrap_or_else(|error| panic!("{method}: {error}"))
    }

    async fn mine(&self, blocks: usize) {
        for _ in 0..blocks {
            self.rpc("evm_mine").await;
        }
    }

    async fn snapshot(&self) -> serde_json::Value {
        self.rpc("evm_snapshot").await
    }

    async fn revert(&self, snapshot: serde_json::Value) {
        let reverted: bool = self.devnet.provider.raw_request("evm_revert".into(), (snapshot,)).await.expect("revert");
        assert!(reverted, "anvil reverted to the snapshot");
        // The reverted transactions' nonces are free again.
        self.escrow.reset_nonces();
    }
}

fn reserved_ids(followed: &Followed) -> Vec<interlock_core::ReservationId> {
    followed
        .events
        .iter()
        .filter_map(|event| match &event.event {
            EscrowEvent::Reserved(reservation) => Some(reservation.id),
            _ => None,
        })
        .collect()
}

#[tokio::test]
async fn events_wait_for_the_confirmation_depth() {
    let world = World::start().await;
    let terms = world.terms(1, 100, HOUR_MS).await;
    let mut follower = world.watching(3, &[&terms]);
    world.reserve(&terms).await;
    let first = follower.poll().await.expect("poll");
    assert!(first.events.is_empty(), "a reservation one block deep is not yet confirmed at depth 3");
    world.mine(2).await;
    let second = follower.poll().await.expect("poll");
    assert_eq!(reserved_ids(&second), vec![reservation_id(terms.id(), LegKind::Payment)]);
    let EscrowEvent::Reserved(reservation) = &second.events[0].event else { unreachable!() };
    assert!(reservation.matches(&interlock_core::saga::expected_request(&terms, terms.id(), LegKind::Payment)));
    assert!(second.chain_time_ms.is_some());
    // Nothing is delivered twice.
    world.mine(1).await;
    assert!(follower.poll().await.expect("poll").events.is_empty());
}

#[tokio::test]
async fn a_reorg_shallower_than_the_depth_never_shows() {
    let world = World::start().await;
    let gone = world.terms(1, 100, HOUR_MS).await;
    let kept = world.terms(2, 200, HOUR_MS).await;
    let mut follower = world.watching(3, &[&gone, &kept]);
    world.mine(1).await;
    assert!(follower.poll().await.expect("poll").events.is_empty());

    // The reservation of `gone` is mined, then the chain reorganises two blocks deep.
    let snapshot = world.snapshot().await;
    world.reserve(&gone).await;
    world.mine(1).await;
    assert!(follower.poll().await.expect("poll").events.is_empty(), "two blocks deep is not confirmed at depth 3");
    world.revert(snapshot).await;

    // The new branch holds the other deal's reservation instead, and grows past the depth.
    world.reserve(&kept).await;
    world.mine(3).await;
    let followed = follower.poll().await.expect("a reorg within the depth is no error");
    assert_eq!(reserved_ids(&followed), vec![reservation_id(kept.id(), LegKind::Payment)]);
    let state = world.devnet.escrow.state(&evm_reservation(&world.assets, &request(&gone)).unwrap()).await.unwrap();
    assert_eq!(state, SlotState::Empty, "the reorganised reservation is gone from the chain");
}

#[tokio::test]
async fn a_reorg_deeper_than_the_depth_stops_the_follower() {
    let world = World::start().await;
    let terms = world.terms(1, 100, HOUR_MS).await;
    let mut follower = world.watching(1, &[&terms]);
    let snapshot = world.snapshot().await;
    world.reserve(&terms).await;
    let delivered = follower.poll().await.expect("poll");
    assert_eq!(reserved_ids(&delivered).len(), 1, "depth 1 delivers the reservation at once");
    world.revert(snapshot).await;
    world.mine(3).await;
    match follower.poll().await {
        Err(ChainError::ReorgBeyondDepth { height, .. }) => {
            assert!(height >= delivered.events[0].height, "the reorg is named at the delivered block");
            let message = follower.poll().await.unwrap_err().to_string();
            assert!(message.contains("raise the confirmation depth"), "{message}");
        }
        other => panic!("expected a reorg beyond the depth, found {other:?}"),
    }
}

/// Through the platform seam, a reorg deeper than the depth is an ordinary
/// input: the follower says how far it rolled back and reads the new branch.
#[tokio::test]
async fn a_reorg_deeper_than_the_depth_rolls_the_seam_follower_back() {
    use interlock_chain::{ChainEvent, Cursor, Follower};
    let world = World::start().await;
    let gone = world.terms(1, 100, HOUR_MS).await;
    let kept = world.terms(2, 200, HOUR_MS).await;
    let escrow = world.devnet.escrow.address();
    let provider = world.devnet.provider.clone();
    let mut follower = EvmFollower::resume(EVM, provider, escrow, world.assets.clone(), 1, Cursor::start(0)).unwrap();
    Follower::watch(&mut follower, &gone).expect("watch");
    Follower::watch(&mut follower, &kept).expect("watch");
    world.mine(1).await;
    Follower::poll(&mut follower).await.expect("poll");
    let before = Follower::cursor(&follower);
    assert!(!before.is_start(), "a delivered block names its hash");

    let snapshot = world.snapshot().await;
    world.reserve(&gone).await;
    let delivered = Follower::poll(&mut follower).await.expect("poll");
    let [ChainEvent::Block(block)] = delivered.as_slice() else { panic!("one block, found {delivered:?}") };
    assert_eq!(block.events.len(), 1, "depth 1 delivers the reservation at once");
    world.revert(snapshot).await;
    world.mine(3).await;

    let rolled = Follower::poll(&mut follower).await.expect("a deep reorg is an input, not an error");
    assert_eq!(rolled, vec![ChainEvent::RolledBack { to: before }], "back to the newest block still on the chain");
    assert_eq!(Follower::cursor(&follower), before);
    world.reserve(&kept).await;
    let mut reserved = Vec::new();
    for _ in 0..4 {
        for event in Follower::poll(&mut follower).await.expect("poll") {
            let ChainEvent::Block(block) = event else { panic!("one rollback only, found {event:?}") };
            reserved.extend(block.events.into_iter().map(|followed| followed.event.deal_id()));
        }
    }
    assert_eq!(reserved, vec![kept.id()], "the new branch's reservation, and not the one reorganised away");
}

fn request(terms: &DealTerms) -> interlock_core::ReserveRequest {
    interlock_core::saga::expected_request(terms, terms.id(), LegKind::Payment)
}

#[tokio::test]
async fn concurrent_submissions_from_one_account_all_land_with_eip1559_fees() {
    // Blocks come on their own, as on a live chain. On a chain that mines only
    // when a transaction arrives, a transaction sent just before the one whose
    // nonce it waits for can miss the block that one triggers, and then waits
    // for a block that never comes.
    let world = World::start_mining(Some(200)).await;
    let mut deals = Vec::new();
    for nonce in 0..12 {
        deals.push(world.terms(nonce, 10 + u128::from(nonce), HOUR_MS).await);
    }
    let mut tasks = tokio::task::JoinSet::new();
    for terms in deals.clone() {
        let escrow = world.escrow.clone();
        let payer = world.payer();
        tasks.spawn(async move {
            let op = EscrowOp::Reserve(request(&terms));
            escrow.submit(payer, &terms, &op).await
        });
    }
    let mut hashes = Vec::new();
    while let Some(result) = tasks.join_next().await {
        hashes.push(result.expect("task").expect("every concurrent reserve lands").tx_hash);
    }
    assert_eq!(hashes.len(), deals.len());
    for terms in &deals {
        let reservation = evm_reservation(&world.assets, &request(terms)).unwrap();
        assert_eq!(world.devnet.escrow.state(&reservation).await.unwrap(), SlotState::Open);
    }
    let tx = world.devnet.provider.get_transaction_by_hash(hashes[0]).await.unwrap().expect("known transaction");
    use interlock_evm::alloy::consensus::Transaction as _;
    assert_eq!(tx.inner.tx_type() as u8, 2, "EIP-1559 transaction");
    assert_eq!(tx.inner.max_priority_fee_per_gas(), Some(interlock_evm::chain::PRIORITY_FEE_WEI));
}

#[tokio::test]
async fn execute_reveals_the_secret_and_cancel_names_its_sender() {
    let world = World::start().await;
    let paid = world.terms(1, 100, HOUR_MS).await;
    let refunded = world.terms(2, 50, 2_000).await;
    let mut follower = world.watching(1, &[&paid, &refunded]);
    world.reserve(&paid).await;
    world.reserve(&refunded).await;
    let execute =
        EscrowOp::Execute { reservation: reservation_id(paid.id(), LegKind::Payment), token: Token::Secret(secret()) };
    world.escrow.submit(world.payee(), &paid, &execute).await.expect("the beneficiary executes");
    // A stranger cancels the expired one; the tokens still go to the owner.
    world.devnet.advance_s(5).await.unwrap();
    let cancel = EscrowOp::Cancel { reservation: reservation_id(refunded.id(), LegKind::Payment), certificate: None };
    let stranger = world.devnet.accounts[3];
    world.escrow.submit(stranger, &refunded, &cancel).await.expect("anyone cancels after expiry");

    let events = follower.poll().await.unwrap().events;
    let executed = events.iter().find_map(|e| match &e.event {
        EscrowEvent::Executed { token: Token::Secret(secret), by, .. } => Some((*secret, *by)),
        _ => None,
    });
    assert_eq!(executed, Some((secret(), core_address(world.payee()))));
    let cancelled = events.iter().find_map(|e| match &e.event {
        EscrowEvent::Cancelled { by, to, .. } => Some((*by, *to)),
        _ => None,
    });
    assert_eq!(cancelled, Some((core_address(stranger), core_address(world.payer()))));
}

#[tokio::test]
async fn a_reservation_with_other_terms_is_not_the_deals() {
    let world = World::start().await;
    let terms = world.terms(1, 100, HOUR_MS).await;
    let mut follower = world.watching(1, &[&terms]);
    // The payer locks the same reservation id for a smaller amount.
    let mut other = evm_reservation(&world.assets, &request(&terms)).unwrap();
    let EvmAsset::Erc20 { token, .. } = other.asset else { unreachable!() };
    other.asset = EvmAsset::Erc20 { token, amount: U256::from(1u64) };
    world.devnet.escrow.reserve(&other).await.expect("the contract accepts any terms");
    let followed = follower.poll().await.unwrap();
    assert!(followed.events.is_empty(), "no saga may count on a reservation with other terms");
    assert_eq!(followed.mismatched, vec![reservation_id(terms.id(), LegKind::Payment)]);
}

#[tokio::test]
async fn assets_map_by_kind_and_refuse_the_wrong_one() {
    let assets = AssetMap::new()
        .bind(AssetCode::new("ETH").unwrap(), AssetBinding::Native)
        .bind(AssetCode::new("DEED").unwrap(), AssetBinding::Erc721(Address::repeat_byte(9)));
    let item = Asset::Unique { class: AssetCode::new("DEED").unwrap(), item: interlock_core::ItemId::from_u128(7) };
    assert_eq!(
        assets.evm_asset(&item).unwrap(),
        EvmAsset::Erc721 { token: Address::repeat_byte(9), token_id: U256::from(7u64) }
    );
    let amount_of_items = Asset::Fungible { code: AssetCode::new("DEED").unwrap(), amount: 3 };
    assert!(assets.evm_asset(&amount_of_items).unwrap_err().to_string().contains("items an ERC-721"));
    let unknown = Asset::Fungible { code: AssetCode::new("GOLD").unwrap(), amount: 3 };
    assert!(assets.evm_asset(&unknown).unwrap_err().to_string().contains("not known on this EVM network"));
}

#[tokio::test]
async fn a_deal_watched_after_its_reservation_still_hears_of_it() {
    let world = World::start().await;
    let terms = world.terms(1, 100, HOUR_MS).await;
    let mut follower = world.follower(1);
    world.reserve(&terms).await;
    assert!(follower.poll().await.unwrap().events.is_empty(), "nobody watches the deal yet");
    follower.watch(&terms).unwrap();
    let late = follower.poll().await.unwrap();
    assert_eq!(reserved_ids(&late), vec![reservation_id(terms.id(), LegKind::Payment)]);
    assert!(follower.poll().await.unwrap().events.is_empty(), "delivered once");
}

#[tokio::test]
async fn an_execution_by_certificate_carries_the_certificate_the_contract_checked() {
    use interlock_core::{Certificate, Decision, NotaryKey};
    let world = World::start().await;
    let keys: Vec<NotaryKey> = (1..=3u8).map(|n| NotaryKey::from_seed([0x40 + n; 32]).unwrap()).collect();
    let mut terms = world.terms(1, 100, HOUR_MS).await;
    let now = world.devnet.now_ms().await.unwrap();
    terms.settlement = Settlement::Notary {
        notaries: keys.iter().map(NotaryKey::address).collect(),
        threshold: 2,
        decision_deadline_ms: now + HOUR_MS / 2,
        backstop_expiry_ms: now + HOUR_MS,
    };
    let mut follower = world.watching(1, &[&terms]);
    world.reserve(&terms).await;
    let deal_id = terms.id();
    let signatures = keys[..2].iter().map(|key| key.sign_decision(deal_id, Decision::Commit).signature).collect();
    let certificate = Certificate { deal_id, decision: Decision::Commit, signatures };
    let execute = EscrowOp::Execute {
        reservation: reservation_id(deal_id, LegKind::Payment),
        token: Token::Certificate(certificate.clone()),
    };
    world.escrow.submit(world.payee(), &terms, &execute).await.expect("the beneficiary executes with the certificate");
    let events = follower.poll().await.unwrap().events;
    let found = events.iter().find_map(|e| match &e.event {
        EscrowEvent::Executed { token: Token::Certificate(found), .. } => Some(found.clone()),
        _ => None,
    });
    assert_eq!(found, Some(certificate), "the event carries the certificate from the transaction's calldata");
}

/// A JSON-RPC provider for the node behind `url` (a proxy, say).
fn provider_at(url: &str) -> interlock_evm::alloy::providers::DynProvider {
    interlock_evm::http::read_only(url, None).expect("a provider")
}

/// A provider that refuses log queries over more than a few blocks: the
/// follower halves its range until they pass, and every event still comes,
/// once, in order.
#[tokio::test]
async fn log_queries_halve_when_the_provider_refuses_their_range_and_miss_nothing() {
    const LIMIT_BLOCKS: u64 = 10;
    let world = World::start().await;
    let proxy = rpc_proxy::RpcProxy::start(world.devnet.anvil.endpoint()).await;
    proxy.limit_log_blocks(LIMIT_BLOCKS, "query returned more than 10000 results");
    let mut deals = Vec::new();
    for nonce in 0..8 {
        let terms = world.terms(nonce, 10 + u128::from(nonce), HOUR_MS).await;
        world.reserve(&terms).await;
        world.mine(7).await;
        deals.push(terms);
    }
    let escrow = world.devnet.escrow.address();
    let mut follower =
        EvmFollower::new(EVM, provider_at(&proxy.url), escrow, world.assets.clone(), 1, 1).expect("follower");
    for terms in &deals {
        follower.watch(terms).unwrap();
    }
    let head = world.devnet.provider.get_block_number().await.unwrap();
    let mut reserved = Vec::new();
    while follower.confirmed_height() != Some(head) {
        reserved.extend(reserved_ids(&follower.poll().await.expect("a refused range is asked again, smaller")));
    }
    let expected: Vec<_> = deals.iter().map(|terms| reservation_id(terms.id(), LegKind::Payment)).collect();
    assert_eq!(reserved, expected, "every reservation, once, in chain order");

    let ranges = proxy.log_ranges();
    let refused = ranges.iter().filter(|(_, _, refused)| *refused).count();
    assert!(ranges[0].2 && ranges[0].1 == head, "the first query asks for the whole chain: {ranges:?}");
    assert!(refused >= 3, "halved down to the limit, and again after growing past it: {ranges:?}");
    for (from, to, _) in ranges.iter().filter(|(_, _, refused)| !refused) {
        assert!(to + 1 - from <= LIMIT_BLOCKS, "an answered query spans at most the limit: {from}..={to}");
    }
    let mut read = 1;
    for (from, to, _) in ranges.iter().filter(|(_, _, refused)| !refused) {
        assert_eq!(*from, read, "answered ranges tile the chain without a gap");
        read = to + 1;
    }
    assert_eq!(read, head + 1);
    println!(
        "{} blocks, limit {LIMIT_BLOCKS}: {} log queries, {refused} refused; spans asked {:?}",
        head,
        ranges.len(),
        ranges.iter().map(|(from, to, refused)| (to + 1 - from, *refused)).collect::<Vec<_>>()
    );
}

/// A reservation confirmed while its deal was not watched, before the
/// follower started (its predecessor kept that log in memory only): once the
/// deal is watched, the next poll looks it up on chain and delivers it.
#[tokio::test]
async fn a_reservation_confirmed_before_a_restart_is_delivered_once_its_deal_is_watched() {
    use interlock_chain::{ChainEvent, Credentials, Cursor, Platform};
    let world = World::start().await;
    let proxy = rpc_proxy::RpcProxy::start(world.devnet.anvil.endpoint()).await;
    let terms = world.terms(1, 100, HOUR_MS).await;
    let other = world.terms(2, 100, HOUR_MS).await;
    world.reserve(&terms).await;
    world.reserve(&other).await;
    world.mine(3).await;
    let head = world.devnet.provider.get_block_number().await.unwrap();
    let block = world.devnet.provider.get_block_by_number(head.into()).await.unwrap().expect("head");
    let saved = Cursor { height: head, hash: interlock_core::Hash32(block.header.hash.0) };

    let Some(AssetBinding::Erc20(token)) = world.assets.binding(&usdc()) else { unreachable!() };
    let config = interlock_evm::EvmConfig {
        assets: [("USDC".to_owned(), interlock_evm::EvmAssetConfig::Erc20(format!("{token}")))].into(),
        ..common::follow_config(&proxy.url, &world.devnet.escrow)
    };
    let config = serde_json::to_value(config).unwrap();
    let platform = interlock_evm::EvmPlatform;
    let mut follower = platform.follower(EVM, &config, &Credentials::default(), saved).await.expect("resumed");
    follower.watch(&terms).unwrap();
    assert!(follower.poll().await.unwrap().is_empty(), "no new block yet: the lookup waits for one");
    world.mine(1).await;
    let delivered = follower.poll().await.expect("poll");
    let [ChainEvent::Block(block)] = delivered.as_slice() else { panic!("one block, found {delivered:?}") };
    assert_eq!(block.cursor.height, head + 1);
    let ids: Vec<_> = block
        .events
        .iter()
        .filter_map(|followed| match &followed.event {
            EscrowEvent::Reserved(reservation) => Some(reservation.id),
            _ => None,
        })
        .collect();
    assert_eq!(ids, vec![reservation_id(terms.id(), LegKind::Payment)], "the watched deal's, not the other's");
    let lookups: Vec<_> = proxy
        .calls()
        .into_iter()
        .filter(|call| call.method == "eth_getLogs" && !call.params[0]["topics"][1].is_null())
        .collect();
    assert_eq!(lookups.len(), 1, "one lookup by reservation id: {lookups:?}");
    world.mine(1).await;
    let again = follower.poll().await.unwrap();
    let [ChainEvent::Block(block)] = again.as_slice() else { panic!("one block, found {again:?}") };
    assert!(block.events.is_empty(), "looked up once");
}

/// With `finality = "finalized"`, a block's events wait for the node's
/// finalized block (anvil's trails its newest by 64): a reorganisation deeper
/// than the depth but above that block never shows, and what survives it is
/// delivered once finalized.
#[tokio::test]
async fn with_the_finalized_tag_a_reservation_waits_for_finality_and_a_deep_reorg_never_shows() {
    let world = World::start().await;
    let gone = world.terms(1, 100, HOUR_MS).await;
    let kept = world.terms(2, 200, HOUR_MS).await;
    let mut at_depth = world.follower(1);
    let mut at_finality = world.follower(1).with_finality(interlock_evm::Finality::Finalized);
    for follower in [&mut at_depth, &mut at_finality] {
        follower.watch(&gone).expect("watch");
        follower.watch(&kept).expect("watch");
    }
    let snapshot = world.snapshot().await;
    world.reserve(&gone).await;
    world.mine(10).await;
    assert_eq!(reserved_ids(&at_depth.poll().await.expect("poll")).len(), 1, "depth 1 delivers at once");
    assert!(at_finality.poll().await.expect("poll").events.is_empty(), "ten blocks deep is not finalized");

    // Eleven blocks reorganised away: far past the depth, above the finalized block.
    world.revert(snapshot).await;
    world.reserve(&kept).await;
    world.mine(12).await;
    assert!(matches!(at_depth.poll().await, Err(ChainError::ReorgBeyondDepth { .. })), "the depth follower was fooled");
    assert!(at_finality.poll().await.expect("poll").events.is_empty(), "the kept reservation is not finalized yet");
    world.mine(64).await;
    let followed = at_finality.poll().await.expect("no reorganisation shows at finality");
    assert_eq!(reserved_ids(&followed), vec![reservation_id(kept.id(), LegKind::Payment)]);
}
