//! The escrow contract on a real anvil, notary mode: certificates produced by the
//! core's `NotaryKey::sign_decision` execute and cancel; every malformed, short,
//! duplicated, foreign or wrong-decision certificate is refused.

mod common;

use common::{certificate, deal, notaries, notary_condition, outsiders, Net, HOUR_MS};
use interlock_core::{Decision, NotaryKey};
use interlock_evm::alloy::primitives::{Address, Bytes, U256};
use interlock_evm::alloy::sol_types::SolCall;
use interlock_evm::bindings::InterlockEscrow::{self, InterlockEscrowErrors as E};
use interlock_evm::{notary_set_bytes, EvmAsset, EvmError, EvmReservation, SlotState};

async fn commit_executes(net: &Net, asset: EvmAsset) {
    let escrow = &net.devnet.escrow;
    let keys = notaries();
    let reservation = net.reserved(net.notary(asset).await).await;
    let commit = certificate(reservation.deal_id, Decision::Commit, &[&keys[2], &keys[0]]);
    let execute = escrow.present(net.keeper(), &reservation, Decision::Commit, &commit);
    net.paying(net.beneficiary(), &asset, execute).await.expect("execute");
    assert_eq!(escrow.state(&reservation).await.unwrap(), SlotState::Executed);
    let again = escrow.present(net.beneficiary(), &reservation, Decision::Commit, &commit).await;
    assert_refused!(again, E::AlreadyExecuted(_));
}

#[tokio::test]
async fn commit_certificate_executes_native_coin() {
    let net = Net::start().await;
    commit_executes(&net, net.native()).await;
}

#[tokio::test]
async fn commit_certificate_executes_erc20() {
    let net = Net::start().await;
    let asset = net.erc20().await;
    commit_executes(&net, asset).await;
}

#[tokio::test]
async fn commit_certificate_executes_erc721() {
    let net = Net::start().await;
    let asset = net.erc721().await;
    commit_executes(&net, asset).await;
}

#[tokio::test]
async fn abort_certificate_cancels_at_once_for_anyone_and_pays_the_owner() {
    let net = Net::start().await;
    let escrow = &net.devnet.escrow;
    let keys = notaries();
    let asset = net.erc721().await;
    let reservation = net.reserved(net.notary(asset).await).await;
    let abort = certificate(reservation.deal_id, Decision::Abort, &[&keys[0], &keys[1]]);
    // Without the certificate, not before the backstop.
    assert_refused!(escrow.cancel(net.stranger(), &reservation).await, E::NotExpired(_));
    escrow.present(net.stranger(), &reservation, Decision::Abort, &abort).await.expect("cancel");
    assert_eq!(net.holding(net.owner(), &asset).await, U256::from(1));
    assert_eq!(escrow.state(&reservation).await.unwrap(), SlotState::Cancelled);
    let commit = certificate(reservation.deal_id, Decision::Commit, &[&keys[0], &keys[1]]);
    let late = escrow.present(net.beneficiary(), &reservation, Decision::Commit, &commit).await;
    assert_refused!(late, E::AlreadyCancelled(_));
}

#[tokio::test]
async fn backstop_expiry_lets_anyone_cancel_without_a_certificate() {
    let net = Net::start().await;
    let reservation = net.reserved(net.notary(net.native()).await).await;
    net.devnet.advance_s(HOUR_MS / 1000).await.unwrap();
    let cancel = net.devnet.escrow.cancel(net.stranger(), &reservation);
    net.paying(net.owner(), &reservation.asset, cancel).await.expect("cancel after the backstop");
}

/// Reserves a native notary-mode leg of deal `n` and presents `signatures` to execute it.
async fn present(net: &Net, n: u8, signatures: impl Fn(&EvmReservation) -> Vec<[u8; 65]>) -> Result<(), EvmError> {
    let reservation = net.reserved(EvmReservation { deal_id: deal(n), ..net.notary(net.native()).await }).await;
    let certificate = interlock_core::Certificate {
        deal_id: reservation.deal_id,
        decision: Decision::Commit,
        signatures: signatures(&reservation).into_iter().map(interlock_core::crypto::RecoverableSignature).collect(),
    };
    let result = net.devnet.escrow.present(net.beneficiary(), &reservation, Decision::Commit, &certificate).await;
    assert_eq!(net.devnet.escrow.state(&reservation).await.unwrap(), SlotState::Open, "a refusal changes nothing");
    result.map(|_| ())
}

fn signed(keys: &[&NotaryKey], deal_id: interlock_core::DealId, decision: Decision) -> Vec<[u8; 65]> {
    certificate(deal_id, decision, keys).signatures.into_iter().map(|signature| signature.0).collect()
}

/// What `keys` sign for `decision` on the presented reservation's own deal.
fn signed_by<'k>(keys: &'k [&'k NotaryKey], decision: Decision) -> impl Fn(&EvmReservation) -> Vec<[u8; 65]> + 'k {
    move |reservation| signed(keys, reservation.deal_id, decision)
}

#[tokio::test]
async fn one_signature_of_two_is_below_threshold() {
    let net = Net::start().await;
    let keys = notaries();
    assert_refused!(present(&net, 21, signed_by(&[&keys[1]], Decision::Commit)).await, E::BelowThreshold(_));
    assert_refused!(present(&net, 22, |_| Vec::new()).await, E::BelowThreshold(_));
}

#[tokio::test]
async fn a_duplicated_signature_counts_once() {
    let net = Net::start().await;
    let keys = notaries();
    assert_refused!(present(&net, 23, signed_by(&[&keys[1], &keys[1]], Decision::Commit)).await, E::DuplicateSigner(_));
}

#[tokio::test]
async fn a_certificate_for_another_deal_is_refused() {
    let net = Net::start().await;
    let keys = notaries();
    assert_refused!(
        present(&net, 24, |_| signed(&[&keys[0], &keys[1]], deal(99), Decision::Commit)).await,
        E::SignerNotInSet(_)
    );
}

#[tokio::test]
async fn signatures_by_keys_outside_the_set_are_refused() {
    let net = Net::start().await;
    let (keys, strangers) = (notaries(), outsiders());
    assert_refused!(
        present(&net, 25, signed_by(&[&strangers[0], &strangers[1]], Decision::Commit)).await,
        E::SignerNotInSet(_)
    );
    // Enough members signed, but one signature too many is a stranger's: refused whole.
    assert_refused!(
        present(&net, 26, signed_by(&[&keys[0], &keys[1], &strangers[2]], Decision::Commit)).await,
        E::SignerNotInSet(_)
    );
}

#[tokio::test]
async fn an_abort_certificate_does_not_execute_and_a_commit_does_not_cancel() {
    let net = Net::start().await;
    let keys = notaries();
    assert_refused!(present(&net, 27, signed_by(&[&keys[0], &keys[1]], Decision::Abort)).await, E::SignerNotInSet(_));

    let reservation = net.reserved(EvmReservation { deal_id: deal(2), ..net.notary(net.native()).await }).await;
    let commit = certificate(reservation.deal_id, Decision::Commit, &[&keys[0], &keys[1]]);
    let result = net.devnet.escrow.present(net.owner(), &reservation, Decision::Abort, &commit).await;
    assert_refused!(result, E::SignerNotInSet(_));
}

#[tokio::test]
async fn malformed_and_malleated_signatures_are_refused() {
    let net = Net::start().await;
    let keys = notaries();
    // A signature cut short.
    let result = present(&net, 28, |r| {
        let mut signatures = signed(&[&keys[0], &keys[1]], r.deal_id, Decision::Commit);
        signatures[1][64] = 0;
        signatures
    })
    .await;
    assert_refused!(result, E::BadSignature(_));
    // The same signature with s replaced by n - s (and v flipped) recovers the same key;
    // OpenZeppelin's ECDSA refuses the high-s form, so a certificate has one encoding.
    let result = present(&net, 29, |r| {
        let mut signatures = signed(&[&keys[0], &keys[1]], r.deal_id, Decision::Commit);
        let order =
            U256::from_str_radix("fffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141", 16).unwrap();
        let s = U256::from_be_slice(&signatures[0][32..64]);
        signatures[0][32..64].copy_from_slice(&(order - s).to_be_bytes::<32>());
        signatures[0][64] = if signatures[0][64] == 27 { 28 } else { 27 };
        signatures
    })
    .await;
    assert_refused!(result, E::BadSignature(_));

    // Signature bytes that are not a whole number of 65-byte signatures.
    let reservation = net.reserved(EvmReservation { deal_id: deal(5), ..net.notary(net.native()).await }).await;
    let input = reservation.certificate_input(net.beneficiary(), Decision::Commit, Bytes::from(vec![1u8; 64]));
    let call = net.devnet.escrow.call(input).from(net.beneficiary());
    let result = call.send().await.map_err(EvmError::from_contract);
    assert_refused!(result, E::MalformedCertificate(_));
}

#[tokio::test]
async fn a_different_notary_set_than_committed_is_refused() {
    let net = Net::start().await;
    let strangers = outsiders();
    let reservation = net.reserved(net.notary(net.native()).await).await;
    // The stranger presents its own one-of-one set with its own signature: the condition
    // the contract derives from that set is not the one committed.
    let own = notary_set_bytes(&[strangers[0].address()], 1);
    let signature = strangers[0].sign_decision(reservation.deal_id, Decision::Commit).signature.0;
    let input = native_execute(&net, &reservation, [own, signature.to_vec()].concat());
    let call = net.devnet.escrow.call(input).from(net.beneficiary());
    let result = call.send().await.map_err(EvmError::from_contract);
    assert_refused!(result, E::TermsMismatch(_));
    // Or rewrites the terms to name that set: they no longer match the commitment.
    let forged = EvmReservation { condition: notary_condition(&strangers[..1], 1), ..reservation.clone() };
    let commit = certificate(reservation.deal_id, Decision::Commit, &[&strangers[0]]);
    let result = net.devnet.escrow.present(net.beneficiary(), &forged, Decision::Commit, &commit).await;
    assert_refused!(result, E::TermsMismatch(_));
}

#[tokio::test]
async fn reserve_refuses_an_invalid_notary_set() {
    let net = Net::start().await;
    let keys = notaries();
    let duplicated = [keys[0].clone(), keys[0].clone(), keys[1].clone()];
    for (set, threshold) in [(&keys[..], 0u8), (&keys[..], 4), (&duplicated[..], 2)] {
        let reservation =
            EvmReservation { condition: notary_condition(set, threshold), ..net.notary(net.native()).await };
        assert_refused!(net.devnet.escrow.reserve(&reservation).await, E::InvalidNotarySet(_));
    }
    // The packed set's length must be what its count byte says: one byte short, one
    // byte over, and no head at all are refused.
    let reservation = net.notary(net.native()).await;
    let set = reservation.notary_set();
    let (short, long) = (set[..set.len() - 1].to_vec(), [set.clone(), vec![7]].concat());
    for notary_set in [short, long, Vec::new()] {
        let call = InterlockEscrow::reserveNotaryCall {
            dealId: reservation.deal_id.0 .0.into(),
            offer: reservation.offer(),
            keeper: net.keeper(),
            token: Address::ZERO,
            value: U256::from(common::AMOUNT),
            notarySet: notary_set.into(),
        };
        let send = net.devnet.escrow.call(call.abi_encode().into()).from(net.owner());
        let result = send.value(U256::from(common::AMOUNT)).send().await.map_err(EvmError::from_contract);
        assert_refused!(result, E::InvalidNotarySet(_));
    }
}

#[tokio::test]
async fn a_certificate_whose_set_runs_past_its_end_is_refused() {
    let net = Net::start().await;
    let keys = notaries();
    let reservation = net.reserved(net.notary(net.native()).await).await;
    let whole = certificate(reservation.deal_id, Decision::Commit, &[&keys[0], &keys[1]]);
    // A count byte naming more members than the certificate holds, and certificates too
    // short to hold the set's head.
    let mut overlong = [reservation.notary_set(), common::signature_bytes(&whole).to_vec()].concat();
    overlong[1] = 16;
    for certificate in [overlong, vec![2], Vec::new()] {
        let input = native_execute(&net, &reservation, certificate);
        let send = net.devnet.escrow.call(input).from(net.beneficiary());
        assert_refused!(send.send().await.map_err(EvmError::from_contract), E::MalformedCertificate(_));
    }
    // The same set and signatures, whole, execute.
    let execute = net.devnet.escrow.present(net.beneficiary(), &reservation, Decision::Commit, &whole);
    execute.await.expect("the whole certificate executes");
}

/// The calldata of `executeNotary` sent by the beneficiary of a native-coin leg,
/// with `certificate` (a notary set, then signatures) as given.
fn native_execute(net: &Net, reservation: &EvmReservation, certificate: Vec<u8>) -> Bytes {
    let call = InterlockEscrow::executeNotaryCall {
        dealId: reservation.deal_id.0 .0.into(),
        held: reservation.held(),
        token: Address::ZERO,
        value: U256::from(common::AMOUNT),
        beneficiary: Address::ZERO,
        keeper: net.keeper(),
        certificate: certificate.into(),
    };
    call.abi_encode().into()
}
