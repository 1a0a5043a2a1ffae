//! Re-entrancy on a real anvil: a malicious ERC-721 receiver, a malicious native-coin
//! receiver and a malicious ERC-20 call back into the escrow from the middle of the
//! transfer that pays them. The escrow records the settlement before it transfers, so
//! the replayed call finds the reservation settled, and the attacker is paid once.

mod common;

use common::{deal, secret, Net};
use interlock_core::Decision;
use interlock_evm::alloy::primitives::{Address, Bytes, U256};
use interlock_evm::alloy::providers::DynProvider;
use interlock_evm::alloy::sol_types::SolInterface;
use interlock_evm::bindings::InterlockEscrow::InterlockEscrowErrors as E;
use interlock_evm::bindings::{ReentrantReceiver, ReentrantToken};
use interlock_evm::{EvmAsset, EvmReservation, SlotState};

/// The replay hooks of the attacker at `attacker`: every attacker inherits them from
/// `contracts/test/Replayer.sol`, so any attacker's binding reaches them.
fn replayer(net: &Net, attacker: Address) -> ReentrantReceiver::ReentrantReceiverInstance<DynProvider> {
    ReentrantReceiver::new(attacker, net.devnet.provider.clone())
}

/// Arms `attacker` to send `input` to the escrow again from inside the transfer that pays it.
async fn arm(net: &Net, attacker: Address, input: Bytes) {
    let replayer = replayer(net, attacker);
    replayer.arm(net.devnet.escrow.address(), input).send().await.unwrap().get_receipt().await.unwrap();
}

/// The escrow's refusal of the call `attacker` replayed.
async fn replay_refusal(net: &Net, attacker: Address) -> E {
    let replayer = replayer(net, attacker);
    let succeeded = replayer.replaySucceeded().call().await.unwrap();
    assert!(!succeeded, "the replayed call into the escrow succeeded");
    let revert_data = replayer.replayRevertData().call().await.unwrap();
    E::abi_decode(&revert_data).unwrap_or_else(|_| panic!("replay reverted with undecoded data {revert_data}"))
}

/// Arms `attacker` to execute `reservation` again from inside the transfer that pays
/// it; the execute call that starts the attack.
async fn arm_execute(net: &Net, attacker: Address, reservation: &EvmReservation) -> Bytes {
    let execute = reservation.execute_input(attacker, &secret());
    arm(net, attacker, execute.clone()).await;
    execute
}

/// Reserves a hashlocked leg of `asset` that pays `attacker`, with no keeper.
async fn reserve_paying(net: &Net, attacker: Address, asset: EvmAsset) -> EvmReservation {
    net.reserved(EvmReservation { beneficiary: attacker, keeper: None, ..net.hashlock(asset).await }).await
}

/// Reserves an honest hashlocked leg of `asset` for `deal(n)`, which must stay
/// locked through the attack.
async fn reserve_bystander(net: &Net, n: u8, asset: EvmAsset) -> EvmReservation {
    net.reserved(EvmReservation { deal_id: deal(n), ..net.hashlock(asset).await }).await
}

/// A fresh re-entrant ERC-20 with twice `AMOUNT` minted to the owner and approved
/// to the escrow, and the asset of `AMOUNT` of it.
async fn reentrant_token(net: &Net) -> (ReentrantToken::ReentrantTokenInstance<DynProvider>, EvmAsset) {
    let token = ReentrantToken::deploy(net.devnet.provider.clone()).await.unwrap();
    let amount = U256::from(common::AMOUNT);
    token.mint(net.owner(), amount * U256::from(2)).send().await.unwrap().get_receipt().await.unwrap();
    let approve = token.approve(net.devnet.escrow.address(), U256::MAX).from(net.owner());
    approve.send().await.unwrap().get_receipt().await.unwrap();
    let asset = EvmAsset::Erc20 { token: *token.address(), amount };
    (token, asset)
}

#[tokio::test]
async fn malicious_erc721_receiver_cannot_execute_twice() {
    let net = Net::start().await;
    let escrow = &net.devnet.escrow;
    let receiver = ReentrantReceiver::deploy(net.devnet.provider.clone()).await.unwrap();
    let asset = net.erc721().await;
    let reservation = reserve_paying(&net, *receiver.address(), asset).await;

    let execute = arm_execute(&net, *receiver.address(), &reservation).await;
    let receipt = receiver.act(escrow.address(), execute).send().await.unwrap().get_receipt().await.unwrap();
    assert!(receipt.status());

    assert!(receiver.replayed().call().await.unwrap(), "onERC721Received ran");
    let refusal = replay_refusal(&net, *receiver.address()).await;
    assert!(matches!(refusal, E::AlreadyExecuted(_)), "{refusal:?}");
    assert_eq!(net.holding(*receiver.address(), &asset).await, U256::from(1));
    assert_eq!(escrow.state(&reservation).await.unwrap(), SlotState::Executed);
}

#[tokio::test]
async fn malicious_native_receiver_cannot_execute_twice() {
    let net = Net::start().await;
    let escrow = &net.devnet.escrow;
    let receiver = ReentrantReceiver::deploy(net.devnet.provider.clone()).await.unwrap();
    // An honest reservation of the same coin stays locked alongside.
    let bystander = reserve_bystander(&net, 40, net.native()).await;
    let reservation = reserve_paying(&net, *receiver.address(), net.native()).await;

    // While being paid, execute again.
    let execute = arm_execute(&net, *receiver.address(), &reservation).await;
    let act = async { receiver.act(escrow.address(), execute).send().await.unwrap().get_receipt().await.unwrap() };
    net.paying(*receiver.address(), &reservation.asset, act).await;
    let refusal = replay_refusal(&net, *receiver.address()).await;
    assert!(matches!(refusal, E::AlreadyExecuted(_)), "{refusal:?}");
    // The bystander's coin is still all there.
    assert_eq!(net.holding(escrow.address(), &bystander.asset).await, Net::worth(&bystander.asset));
}

/// A malicious token that is its own beneficiary: it executes its reservation and, from
/// inside the transfer that pays it, executes it again.
#[tokio::test]
async fn malicious_erc20_cannot_execute_twice_or_drain_other_reservations() {
    let net = Net::start().await;
    let escrow = &net.devnet.escrow;
    let (token, asset) = reentrant_token(&net).await;

    let bystander = reserve_bystander(&net, 41, asset).await;
    let reservation = reserve_paying(&net, *token.address(), asset).await;

    let execute = arm_execute(&net, *token.address(), &reservation).await;
    token.act(escrow.address(), execute).send().await.unwrap().get_receipt().await.unwrap();
    let refusal = replay_refusal(&net, *token.address()).await;
    assert!(matches!(refusal, E::AlreadyExecuted(_)), "{refusal:?}");
    assert_eq!(net.holding(*token.address(), &asset).await, Net::worth(&asset));
    assert_eq!(net.holding(escrow.address(), &asset).await, Net::worth(&asset));
    assert_eq!(escrow.state(&bystander).await.unwrap(), SlotState::Open);
}

/// The same token re-entering a cancellation: the refund to the owner replays the cancel.
#[tokio::test]
async fn malicious_erc20_cannot_cancel_twice() {
    let net = Net::start().await;
    let escrow = &net.devnet.escrow;
    let (token, asset) = reentrant_token(&net).await;
    reserve_bystander(&net, 42, asset).await;
    let reservation = net.reserved(net.hashlock(asset).await).await;
    net.devnet.advance_s(common::HOUR_MS / 1000).await.unwrap();

    let cancel = reservation.cancel_input(*token.address());
    arm(&net, *token.address(), cancel).await;
    escrow.cancel(net.stranger(), &reservation).await.expect("cancel");
    let refusal = replay_refusal(&net, *token.address()).await;
    assert!(matches!(refusal, E::AlreadyCancelled(_)), "{refusal:?}");
    assert_eq!(net.holding(net.owner(), &asset).await, Net::worth(&asset));
    assert_eq!(net.holding(escrow.address(), &asset).await, Net::worth(&asset));
}

/// A malicious beneficiary of a held leg re-enters the release that pays it:
/// the replayed verdict finds the leg released, and it is paid once.
#[tokio::test]
async fn malicious_native_receiver_cannot_be_released_twice() {
    let net = Net::start().await;
    let escrow = &net.devnet.escrow;
    let receiver = ReentrantReceiver::deploy(net.devnet.provider.clone()).await.unwrap();
    let notaries = common::notaries();
    let condition = interlock_core::Condition::Inspected {
        notaries: notaries.iter().map(|key| key.address()).collect(),
        threshold: 2,
    };
    let reservation =
        EvmReservation { beneficiary: *receiver.address(), condition, ..net.hashlock(net.native()).await };
    let reservation = net.reserved(reservation).await;
    let signers = [&notaries[0], &notaries[1]];
    let commit = common::certificate(reservation.deal_id, Decision::Commit, &signers);
    escrow.present(net.keeper(), &reservation, Decision::Commit, &commit).await.expect("the keeper holds the leg");
    assert_eq!(escrow.state(&reservation).await.unwrap(), SlotState::Held);

    let release = common::certificate(reservation.deal_id, Decision::Release, &signers);
    let input = reservation.certificate_input(net.stranger(), Decision::Release, common::signature_bytes(&release));
    arm(&net, *receiver.address(), input).await;
    let resolve = escrow.resolve(net.stranger(), &reservation, &release);
    net.paying(*receiver.address(), &reservation.asset, resolve).await.expect("a stranger presents the release");
    let refusal = replay_refusal(&net, *receiver.address()).await;
    assert!(matches!(refusal, E::AlreadyExecuted(_)), "{refusal:?}");
    assert_eq!(escrow.state(&reservation).await.unwrap(), SlotState::Executed);
}
