//! A notary certificate settles its own deal and nothing else, on either of two
//! EVM chains. Two anvils with different chain ids each run the escrow, at the
//! same address (same deployer, same nonce), so neither the chain nor the
//! contract tells the reservations apart, only their deals: deal A has its
//! payment leg on one chain and its delivery leg on the other, and so has deal
//! B. A's commit and abort certificates, presented to execute or to cancel
//! B's reservations, are refused on both chains and change nothing; A's commit
//! executes A's two legs, one on each chain, and B's own abort cancels B's.
//!
//! One certificate settles both legs of its deal, on two networks: that is why
//! the EIP-712 domain names neither a chain nor a contract
//! (`interlock_core::crypto::eip712_domain_separator`). What binds a
//! certificate is the deal id it signs, and a deal id commits to both legs'
//! networks, assets, parties and the notary set.

mod common;

use common::{certificate, deal, notaries, Net};
use interlock_chain::ChainErrorKind;
use interlock_core::{Certificate, DealId, Decision, LegKind};
use interlock_evm::alloy::providers::Provider as _;
use interlock_evm::bindings::InterlockEscrow::InterlockEscrowErrors as E;
use interlock_evm::{evm_error, EvmError, EvmReservation, SlotState};

/// The two chains' ids: neither is anvil's default.
const CHAIN_IDS: [u64; 2] = [31_001, 31_002];

/// Deal `deal_id`'s leg on `net`, native coin, 2 of 3 notaries: the payment
/// from the owner to the beneficiary, the delivery the other way round.
async fn leg(net: &Net, deal_id: DealId, leg: LegKind) -> EvmReservation {
    let notary_leg = net.notary(net.native()).await;
    let (owner, beneficiary) = match leg {
        LegKind::Payment => (net.owner(), net.beneficiary()),
        LegKind::Delivery => (net.beneficiary(), net.owner()),
    };
    let reservation = EvmReservation { deal_id, leg, owner, beneficiary, ..notary_leg };
    net.devnet.escrow.reserve(&reservation).await.expect("reserve");
    reservation
}

/// `certificate` presented to execute (a commit, by the keeper the legs name)
/// or to cancel (an abort, by a stranger: anyone may) `reservation` on `net`;
/// neither pays gas from the accounts the asset moves between.
async fn present(net: &Net, reservation: &EvmReservation, certificate: &Certificate) -> Result<(), EvmError> {
    let escrow = &net.devnet.escrow;
    let sent = match certificate.decision {
        Decision::Commit => escrow.present(net.keeper(), reservation, Decision::Commit, certificate).await,
        Decision::Abort => escrow.present(net.stranger(), reservation, Decision::Abort, certificate).await,
        Decision::Release | Decision::Reverse => unreachable!("this test presents commits and aborts only"),
    };
    sent.map(|_| ())
}

/// Both ways of using `certificate` on `reservation`, which is another
/// deal's, are refused as signed by keys outside the reservation's notary
/// set (the signatures recover other keys over another deal's digest), a
/// rejection by the escrow rules; the reservation stays open.
async fn refused(net: &Net, reservation: &EvmReservation, certificate: &Certificate) {
    for decision in [Decision::Commit, Decision::Abort] {
        // The same signatures, claimed for the other decision too.
        let presented = Certificate { decision, ..certificate.clone() };
        let result = present(net, reservation, &presented).await;
        assert_refused!(result, E::SignerNotInSet(_));
        let kind = evm_error(&result.unwrap_err()).kind;
        assert_eq!(kind, ChainErrorKind::Rejected, "a refusal by the escrow rules: not worth a retry");
        assert_eq!(net.devnet.escrow.state(reservation).await.unwrap(), SlotState::Open, "a refusal changes nothing");
    }
}

#[tokio::test]
async fn a_certificate_of_one_deal_settles_no_reservation_of_another_on_either_chain() {
    let (first, second) = tokio::join!(Net::start_chain(CHAIN_IDS[0]), Net::start_chain(CHAIN_IDS[1]));
    let chains = [first, second];
    for (net, chain_id) in chains.iter().zip(CHAIN_IDS) {
        assert_eq!(net.devnet.provider.get_chain_id().await.unwrap(), chain_id);
    }
    let escrows = chains.each_ref().map(|net| net.devnet.escrow.address());
    assert_eq!(escrows[0], escrows[1], "the same contract address on both chains");

    let (deal_a, deal_b) = (deal(0xa), deal(0xb));
    let legs = [LegKind::Payment, LegKind::Delivery];
    let mut a = Vec::new();
    let mut b = Vec::new();
    for (net, kind) in chains.iter().zip(legs) {
        a.push(leg(net, deal_a, kind).await);
        b.push(leg(net, deal_b, kind).await);
    }
    let keys = notaries();
    let commit_a = certificate(deal_a, Decision::Commit, &[&keys[0], &keys[2]]);
    let abort_a = certificate(deal_a, Decision::Abort, &[&keys[1], &keys[2]]);

    // Deal A's certificates against deal B's reservation on each chain.
    for (net, reservation) in chains.iter().zip(&b) {
        refused(net, reservation, &commit_a).await;
        refused(net, reservation, &abort_a).await;
    }

    // The commit settles what it was signed for: A's two legs, one on each chain.
    for (net, reservation) in chains.iter().zip(&a) {
        let before = net.holding(reservation.beneficiary, &reservation.asset).await;
        present(net, reservation, &commit_a).await.expect("deal A's commit executes deal A's leg");
        let gained = net.holding(reservation.beneficiary, &reservation.asset).await - before;
        assert_eq!(gained, Net::worth(&reservation.asset));
    }

    // Once A has settled, its commit still moves nothing of B; B's own abort
    // cancels B's legs on both chains and pays their owners.
    let abort_b = certificate(deal_b, Decision::Abort, &[&keys[0], &keys[1]]);
    for (net, reservation) in chains.iter().zip(&b) {
        refused(net, reservation, &commit_a).await;
        let before = net.holding(reservation.owner, &reservation.asset).await;
        present(net, reservation, &abort_b).await.expect("deal B's abort cancels deal B's leg");
        assert_eq!(net.devnet.escrow.state(reservation).await.unwrap(), SlotState::Cancelled);
        let returned = net.holding(reservation.owner, &reservation.asset).await - before;
        assert_eq!(returned, Net::worth(&reservation.asset));
    }
}
