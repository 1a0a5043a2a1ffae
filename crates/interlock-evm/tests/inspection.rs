//! The escrow and its inspection module on a real anvil: a leg with an inspection
//! period is reserved, held and settled only through the module, a plain leg only
//! through the escrow's own entry points, and neither path moves the other's
//! reservations, whatever terms or selector a caller sends. (What the module does
//! to the legs it keeps is the platform conformance suite's `inspection` checks.)

mod common;

use common::{certificate, notaries, signature_bytes, Net, HOUR_MS};
use interlock_core::{Certificate, Condition, Decision};
use interlock_evm::alloy::primitives::{Address, Bytes, U256};
use interlock_evm::alloy::sol_types::SolCall;
use interlock_evm::bindings::InterlockEscrow::{self, InterlockEscrowErrors as E};
use interlock_evm::bindings::InterlockInspection::{
    cancelInspectedByNotariesCall as ModuleAbort, holdInspectedByNotariesCall as ModuleHold,
    releaseInspectedByNotariesCall as ModuleRelease, reserveInspectedCall as ModuleReserve,
};
use interlock_evm::{EvmError, EvmReservation, SlotState};

/// The same leg with an inspection period: the same notaries, threshold and terms.
fn inspected(leg: EvmReservation) -> EvmReservation {
    let Condition::Notary { notaries, threshold } = leg.condition else { panic!("a notary-mode leg") };
    EvmReservation { condition: Condition::Inspected { notaries, threshold }, ..leg }
}

/// A certificate of `decision` on `leg`'s deal, signed by two of its notaries.
fn quorum(leg: &EvmReservation, decision: Decision) -> Certificate {
    let keys = notaries();
    certificate(leg.deal_id, decision, &[&keys[0], &keys[1]])
}

/// The input by which `sender` presents [`quorum`]'s certificate of `decision`
/// on `leg`.
fn presented(leg: &EvmReservation, sender: Address, decision: Decision) -> Bytes {
    leg.certificate_input(sender, decision, signature_bytes(&quorum(leg, decision)))
}

/// `input` sent to the escrow as the call of `selector` instead (the same arguments).
async fn send_as(net: &Net, from: Address, input: Bytes, selector: [u8; 4]) -> Result<(), EvmError> {
    send_paying(net, from, input, selector, U256::ZERO).await
}

/// [`send_as`] with `value` wei.
async fn send_paying(net: &Net, from: Address, input: Bytes, selector: [u8; 4], value: U256) -> Result<(), EvmError> {
    let mut input = input.to_vec();
    input[..4].copy_from_slice(&selector);
    let call = net.devnet.escrow.call(input.into()).from(from).value(value);
    call.send().await.map(drop).map_err(EvmError::from_contract)
}

#[tokio::test]
async fn the_escrows_own_entry_points_never_settle_an_inspected_leg() {
    let net = Net::start().await;
    let escrow = &net.devnet.escrow;
    let leg = inspected(net.notary(net.native()).await);

    // Reserved by the plain notary entry point, the inspected mode is refused.
    let (input, value) = (leg.reserve_input(), leg.asset.native_value());
    let refused = send_paying(&net, net.owner(), input, InterlockEscrow::reserveNotaryCall::SELECTOR, value).await;
    assert_refused!(refused, E::WrongMode(_));
    escrow.reserve(&leg).await.expect("reserved through the module");
    assert_eq!(escrow.state(&leg).await.unwrap(), SlotState::Open);

    // A commit certificate presented to the plain execute would pay at once: refused.
    let execute = presented(&leg, net.beneficiary(), Decision::Commit);
    let refused = send_as(&net, net.beneficiary(), execute, InterlockEscrow::executeNotaryCall::SELECTOR).await;
    assert_refused!(refused, E::TermsMismatch(_));
    // So are the plain cancels, with an abort certificate and after the backstop.
    let cancel = presented(&leg, net.stranger(), Decision::Abort);
    let refused = send_as(&net, net.stranger(), cancel, InterlockEscrow::cancelNotaryCall::SELECTOR).await;
    assert_refused!(refused, E::TermsMismatch(_));
    net.devnet.advance_s(HOUR_MS / 1000).await.unwrap();
    let refused =
        send_as(&net, net.stranger(), leg.cancel_input(net.stranger()), InterlockEscrow::cancelCall::SELECTOR).await;
    assert_refused!(refused, E::TermsMismatch(_));
    assert_eq!(escrow.state(&leg).await.unwrap(), SlotState::Open);

    // The module's backstop cancel returns it to its owner.
    let cancel = escrow.cancel(net.stranger(), &leg);
    net.paying(net.owner(), &leg.asset, cancel).await.expect("the module's backstop cancel");
    assert_eq!(escrow.state(&leg).await.unwrap(), SlotState::Cancelled);
}

#[tokio::test]
async fn the_inspection_module_never_settles_a_plain_leg() {
    let net = Net::start().await;
    let escrow = &net.devnet.escrow;
    let leg = net.notary(net.native()).await;

    // Reserved through the module, a plain notary-mode leg is refused.
    let (input, value) = (leg.reserve_input(), leg.asset.native_value());
    let refused = send_paying(&net, net.owner(), input, ModuleReserve::SELECTOR, value).await;
    assert_refused!(refused, E::WrongMode(_));
    escrow.reserve(&leg).await.expect("reserved through the escrow");

    // Neither a hold, an abort, nor a verdict of the module matches its slot.
    let hold = presented(&leg, net.beneficiary(), Decision::Commit);
    assert_refused!(send_as(&net, net.beneficiary(), hold, ModuleHold::SELECTOR).await, E::TermsMismatch(_));
    let cancel = presented(&leg, net.stranger(), Decision::Abort);
    assert_refused!(send_as(&net, net.stranger(), cancel, ModuleAbort::SELECTOR).await, E::TermsMismatch(_));
    let verdict = presented(&leg, net.stranger(), Decision::Release);
    assert_refused!(send_as(&net, net.stranger(), verdict, ModuleRelease::SELECTOR).await, E::TermsMismatch(_));
    assert_eq!(escrow.state(&leg).await.unwrap(), SlotState::Open);

    // The plain commit pays it out, once.
    let commit = quorum(&leg, Decision::Commit);
    let execute = escrow.present(net.keeper(), &leg, Decision::Commit, &commit);
    net.paying(net.beneficiary(), &leg.asset, execute).await.expect("the plain commit");
    assert_eq!(escrow.state(&leg).await.unwrap(), SlotState::Executed);
}

#[tokio::test]
async fn coin_sent_to_the_escrow_without_a_call_is_refused() {
    let net = Net::start().await;
    let escrow = &net.devnet.escrow;
    let before = net.devnet.balance(escrow.address()).await.unwrap();
    let transfer = escrow.call(Bytes::new()).value(Net::worth(&net.native())).from(net.owner());
    assert_refused!(transfer.send().await.map(drop).map_err(EvmError::from_contract), E::UnexpectedCoin(_));
    assert_eq!(net.devnet.balance(escrow.address()).await.unwrap(), before);
}
