//! The escrow contract on a real anvil, hashlock mode: happy paths for every asset
//! kind and every way a hashlocked reservation must refuse.

mod common;

use common::{deal, secret, Net, HOUR_MS};
use interlock_core::{Condition, Hash32, LegKind, Secret};
use interlock_evm::alloy::primitives::Address;
use interlock_evm::alloy::primitives::{B256, U256};
use interlock_evm::alloy::sol_types::SolCall;
use interlock_evm::bindings::InterlockEscrow as E2;
use interlock_evm::bindings::InterlockEscrow::InterlockEscrowErrors as E;
use interlock_evm::{EvmAsset, EvmReservation, SlotState};

/// Reserve, execute by `executor`, and check that exactly the asset moved to the
/// beneficiary and that the secret is published.
async fn execute_pays_beneficiary(net: &Net, asset: EvmAsset, by_keeper: bool) {
    let escrow = &net.devnet.escrow;
    let reservation = net.reserved(net.hashlock(asset).await).await;
    assert_eq!(escrow.state(&reservation).await.unwrap(), SlotState::Open);
    assert_eq!(net.holding(escrow.address(), &asset).await, Net::worth(&asset));

    let executor = if by_keeper { net.keeper() } else { net.beneficiary() };
    let before = net.holding(net.beneficiary(), &asset).await;
    let submitted = escrow.execute_with_secret(executor, &reservation, &secret()).await.expect("execute");
    let after = net.holding(net.beneficiary(), &asset).await;
    if by_keeper || !matches!(asset, EvmAsset::Native { .. }) {
        assert_eq!(after - before, Net::worth(&asset));
    } else {
        // The beneficiary paid the gas itself: it gained the amount less at most the gas.
        assert!(after > before && after - before <= Net::worth(&asset));
    }
    assert_eq!(net.holding(escrow.address(), &asset).await, U256::ZERO);
    assert_eq!(escrow.state(&reservation).await.unwrap(), SlotState::Executed);

    let events = escrow.contract().Executed_filter().from_block(submitted.block_number).query().await.unwrap();
    let (event, _) = events.first().expect("an Executed event");
    assert_eq!(event.secret, B256::from(secret().0));
    assert_eq!(event.reservationId, B256::from(reservation.id().0 .0));
}

#[tokio::test]
async fn native_coin_reserve_and_execute_by_beneficiary() {
    let net = Net::start().await;
    execute_pays_beneficiary(&net, net.native(), false).await;
}

#[tokio::test]
async fn native_coin_executed_by_keeper_still_pays_beneficiary() {
    let net = Net::start().await;
    execute_pays_beneficiary(&net, net.native(), true).await;
}

#[tokio::test]
async fn erc20_reserve_and_execute() {
    let net = Net::start().await;
    let asset = net.erc20().await;
    execute_pays_beneficiary(&net, asset, false).await;
}

#[tokio::test]
async fn erc721_reserve_and_execute() {
    let net = Net::start().await;
    let asset = net.erc721().await;
    execute_pays_beneficiary(&net, asset, true).await;
}

#[tokio::test]
async fn contract_agrees_with_the_core_on_ids_and_commitments() {
    let net = Net::start().await;
    let escrow = &net.devnet.escrow;
    for (n, leg) in [(3, LegKind::Payment), (4, LegKind::Delivery)] {
        for reservation in [net.hashlock(net.native()).await, net.notary(net.erc20().await).await] {
            let reservation = EvmReservation { deal_id: deal(n), leg, ..reservation };
            let n = if reservation.mode() == interlock_evm::MODE_NOTARY { n + 10 } else { n };
            let reservation = EvmReservation { deal_id: deal(n), ..reservation };
            let submitted = escrow.reserve(&reservation).await.expect("reserve");
            let events = escrow.contract().Reserved_filter().from_block(submitted.block_number).query().await.unwrap();
            let (event, _) = events.first().expect("a Reserved event");
            // The contract's id is the core's, and it commits to what the core's terms give.
            assert_eq!(event.reservationId, B256::from(interlock_core::reservation_id(deal(n), leg).0 .0));
            assert_eq!(event.commitment, reservation.commitment());
            assert_eq!(escrow.state(&reservation).await.unwrap(), SlotState::Open);
        }
    }
}

#[tokio::test]
async fn wrong_secret_is_refused() {
    let net = Net::start().await;
    let reservation = net.reserved(net.hashlock(net.native()).await).await;
    // The client refuses it before sending; the contract refuses it too: the hashlock
    // it derives from the secret is not the one committed.
    let result = net.devnet.escrow.execute_with_secret(net.beneficiary(), &reservation, &Secret([1; 32])).await;
    assert!(matches!(result, Err(interlock_evm::EvmError::WrongSecret { .. })), "{result:?}");
    let input = reservation.execute_input(net.beneficiary(), &Secret([1; 32]));
    let call = net.devnet.escrow.call(input).from(net.beneficiary());
    assert_refused!(call.send().await.map_err(interlock_evm::EvmError::from_contract), E::TermsMismatch(_));
    assert_eq!(net.devnet.escrow.state(&reservation).await.unwrap(), SlotState::Open);
}

#[tokio::test]
async fn only_beneficiary_or_keeper_executes() {
    let net = Net::start().await;
    let reservation = net.reserved(net.hashlock(net.native()).await).await;
    // The sender stands for the beneficiary (or, through `executeAsKeeper`, the keeper)
    // in the commitment: anyone else presents terms the owner never committed to.
    for sender in [net.stranger(), net.owner(), net.devnet.accounts[0]] {
        let result = net.devnet.escrow.execute_with_secret(sender, &reservation, &secret()).await;
        assert_refused!(result, E::TermsMismatch(_));
        let (id, secret, held) = (B256::from(reservation.id().0 .0), B256::from(secret().0), reservation.held());
        let (token, value, beneficiary) = (Address::ZERO, U256::from(common::AMOUNT), net.beneficiary());
        let as_keeper = E2::executeAsKeeperCall { id, secret, held, token, value, beneficiary }.abi_encode();
        let call = net.devnet.escrow.call(as_keeper.into()).from(sender);
        assert_refused!(call.send().await.map_err(interlock_evm::EvmError::from_contract), E::TermsMismatch(_));
    }
    // Naming the stranger as beneficiary in the terms presented does not help: the
    // terms no longer match what the owner committed to.
    let forged = EvmReservation { beneficiary: net.stranger(), ..reservation.clone() };
    let result = net.devnet.escrow.execute_with_secret(net.stranger(), &forged, &secret()).await;
    assert_refused!(result, E::TermsMismatch(_));
    assert_eq!(net.devnet.escrow.state(&reservation).await.unwrap(), SlotState::Open);
}

#[tokio::test]
async fn a_reservation_executes_once_and_is_never_reserved_again() {
    let net = Net::start().await;
    let escrow = &net.devnet.escrow;
    let reservation = net.reserved(net.hashlock(net.native()).await).await;
    escrow.execute_with_secret(net.keeper(), &reservation, &secret()).await.unwrap();
    let again = escrow.execute_with_secret(net.beneficiary(), &reservation, &secret()).await;
    assert_refused!(again, E::AlreadyExecuted(_));
    net.devnet.advance_s(2 * HOUR_MS / 1000).await.unwrap();
    assert_refused!(escrow.cancel(net.stranger(), &reservation).await, E::AlreadyExecuted(_));
    // The same deal leg, even with a fresh expiry, cannot be locked again.
    let fresh = EvmReservation { expiry_ms: net.now_ms().await + HOUR_MS, ..reservation };
    assert_refused!(escrow.reserve(&fresh).await, E::AlreadyReserved(_));
}

#[tokio::test]
async fn execute_after_expiry_is_refused() {
    let net = Net::start().await;
    let reservation = net.reserved(net.hashlock(net.native()).await).await;
    net.devnet.advance_s(HOUR_MS / 1000).await.unwrap();
    let result = net.devnet.escrow.execute_with_secret(net.beneficiary(), &reservation, &secret()).await;
    assert_refused!(result, E::Expired(_));
}

#[tokio::test]
async fn cancel_before_expiry_is_refused_even_for_the_owner() {
    let net = Net::start().await;
    let reservation = net.reserved(net.hashlock(net.native()).await).await;
    for sender in [net.owner(), net.beneficiary(), net.stranger()] {
        assert_refused!(net.devnet.escrow.cancel(sender, &reservation).await, E::NotExpired(_));
    }
}

#[tokio::test]
async fn cancel_by_a_stranger_pays_the_owner_for_every_asset_kind() {
    let net = Net::start().await;
    let assets = [net.native(), net.erc20().await, net.erc721().await];
    let escrow = &net.devnet.escrow;
    let mut reservations = Vec::new();
    for (index, asset) in assets.iter().enumerate() {
        let n = u8::try_from(index).unwrap() + 10;
        reservations.push(net.reserved(EvmReservation { deal_id: deal(n), ..net.hashlock(*asset).await }).await);
    }
    net.devnet.advance_s(HOUR_MS / 1000).await.unwrap();
    for reservation in &reservations {
        let cancel = escrow.cancel(net.stranger(), reservation);
        net.paying(net.owner(), &reservation.asset, cancel).await.expect("cancel after expiry");
        assert_eq!(escrow.state(reservation).await.unwrap(), SlotState::Cancelled);
        assert_refused!(escrow.cancel(net.owner(), reservation).await, E::AlreadyCancelled(_));
        let late = escrow.execute_with_secret(net.beneficiary(), reservation, &secret()).await;
        assert_refused!(late, E::AlreadyCancelled(_));
        let fresh = EvmReservation { expiry_ms: net.now_ms().await + HOUR_MS, ..reservation.clone() };
        assert_refused!(escrow.reserve(&fresh).await, E::AlreadyReserved(_));
    }
}

#[tokio::test]
async fn reserve_checks_its_terms() {
    let net = Net::start().await;
    let escrow = &net.devnet.escrow;
    let good = net.hashlock(net.native()).await;
    let now_ms = net.now_ms().await;
    let self_dealing = EvmReservation { beneficiary: net.owner(), ..good.clone() };
    assert_refused!(escrow.reserve(&self_dealing).await, E::SelfDealing(_));
    let own_keeper = EvmReservation { keeper: Some(net.owner()), ..good.clone() };
    assert_refused!(escrow.reserve(&own_keeper).await, E::SelfDealing(_));
    let past = EvmReservation { expiry_ms: now_ms - 1, ..good.clone() };
    assert_refused!(escrow.reserve(&past).await, E::ExpiryInPast(_));
    let nothing = EvmReservation { asset: EvmAsset::Native { amount_wei: U256::ZERO }, ..good.clone() };
    assert_refused!(escrow.reserve(&nothing).await, E::ZeroAmount(_));

    // A token kind through the native coin's entry point: it names no token.
    let offer = good.offer() | U256::from(1);
    let hashlock = B256::from(secret().hash().0);
    let (deal_id, keeper) = (B256::from(good.deal_id.0 .0), good.keeper.unwrap_or(Address::ZERO));
    let input = E2::reserveCall { dealId: deal_id, offer, keeper, hashlock }.abi_encode();
    let call = escrow.call(input.into()).value(U256::from(common::AMOUNT)).from(net.owner());
    assert_refused!(call.send().await.map_err(interlock_evm::EvmError::from_contract), E::InvalidAsset(_));
    // A notary-mode reservation cannot come in through the hashlock entry point.
    let offer = good.offer() ^ (U256::from(interlock_evm::MODE_HASHLOCK ^ interlock_evm::MODE_NOTARY) << 8);
    let input = E2::reserveCall { dealId: deal_id, offer, keeper, hashlock }.abi_encode();
    let call = escrow.call(input.into()).value(U256::from(common::AMOUNT)).from(net.owner());
    assert_refused!(call.send().await.map_err(interlock_evm::EvmError::from_contract), E::WrongMode(_));
    // The owner is the sender: the same offer sent by a stranger reserves the leg in the
    // stranger's name, which the deal's commitment does not match (a follower reports
    // it as mismatched), and the leg can never be reserved again.
    // The native amount is the value sent: less coin than the deal names locks that
    // much, under a commitment that is not the deal's.
    let short = EvmReservation { deal_id: deal(8), ..good.clone() };
    let call = escrow.call(short.reserve_input()).value(U256::from(1)).from(net.owner());
    call.send().await.unwrap().get_receipt().await.unwrap();
    assert_eq!(escrow.state(&short).await.unwrap(), SlotState::OpenWithOtherTerms);
    // Where the amount is named (notary mode), the value sent must be it.
    let notary = EvmReservation { deal_id: deal(9), ..net.notary(net.native()).await };
    let call = escrow.call(notary.reserve_input()).value(U256::from(1)).from(net.owner());
    assert_refused!(call.send().await.map_err(interlock_evm::EvmError::from_contract), E::WrongNativeValue(_));
    let call = escrow.call(good.reserve_input()).value(U256::from(common::AMOUNT)).from(net.stranger());
    call.send().await.unwrap().get_receipt().await.unwrap();
    assert_eq!(escrow.state(&good).await.unwrap(), SlotState::OpenWithOtherTerms);
    assert_refused!(escrow.reserve(&good).await, E::AlreadyReserved(_));
    let good = EvmReservation { deal_id: deal(7), ..good };

    escrow.reserve(&good).await.expect("the good terms reserve");
    let twice = EvmReservation { condition: Condition::Hashlock(Hash32([9; 32])), ..good };
    assert_refused!(escrow.reserve(&twice).await, E::AlreadyReserved(_));
}

#[tokio::test]
async fn errors_read_as_words_not_hex() {
    let net = Net::start().await;
    let reservation = net.reserved(net.hashlock(net.native()).await).await;
    let error = net.devnet.escrow.execute_with_secret(net.beneficiary(), &reservation, &Secret([1; 32])).await;
    let message = error.expect_err("wrong secret").to_string();
    assert!(message.contains("invalid hashlock preimage: sha256 does not match reservation 0x"), "{message}");
}
