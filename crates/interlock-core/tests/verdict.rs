//! One notary's verdict on a deal with an inspection period: release once the
//! window closes undisputed; a dispute inside the window, by the party the
//! policy names, waits for the operator's release or reverse; a verdict is
//! recorded before it is signed, made once, and survives a restart.

use interlock_core::crypto::{Decision, NotaryKey, PartyKey};
use interlock_core::limits::DISPUTE_REASON_LEN_MAX;
use interlock_core::verdict::{Dispute, DisputeError, VerdictDeal, VerdictOutput};
use interlock_core::{Asset, AssetCode, DealTerms, Disputer, Inspection, NetworkId, Settlement};
use std::sync::Arc;

const DEADLINE: u64 = 5_000;
const WINDOW: u64 = 60_000;
const ENDS: u64 = DEADLINE + WINDOW;

fn buyer() -> PartyKey {
    PartyKey::from_seed([0xb1; 32])
}
fn seller() -> PartyKey {
    PartyKey::from_seed([0x5e; 32])
}
fn notary() -> NotaryKey {
    NotaryKey::from_seed([7; 32]).unwrap()
}

fn terms(disputer: Disputer) -> Arc<DealTerms> {
    let asset = |text: &str, amount| Asset::Fungible { code: AssetCode::new(text).unwrap(), amount };
    let settlement = Settlement::Notary {
        notaries: vec![notary().address()],
        threshold: 1,
        decision_deadline_ms: DEADLINE,
        backstop_expiry_ms: 20_000,
    };
    let (payment, delivery) = ((NetworkId(1), asset("USD", 100)), (NetworkId(2), asset("GOLD", 5)));
    let mut terms = DealTerms::swap(buyer().public(), seller().public(), payment, delivery, settlement);
    terms.policy.inspection = Some(Inspection { window_ms: WINDOW, disputer });
    Arc::new(terms)
}

fn opened() -> VerdictDeal {
    VerdictDeal::open(terms(Disputer::Buyer)).expect("the deal has an inspection period")
}

/// Records whatever `outputs` ask to record and returns the signed vote.
fn record(deal: &mut VerdictDeal, outputs: Vec<VerdictOutput>) -> Option<Decision> {
    let mut vote = None;
    for output in outputs {
        if let VerdictOutput::Record { .. } = output {
            for signed in deal.recorded(&notary()) {
                let VerdictOutput::Vote(signed) = signed else { panic!("{signed:?}") };
                assert_eq!(signed.signer(), Some(notary().address()));
                vote = Some(signed.decision);
            }
        }
    }
    vote
}

#[test]
fn an_undisputed_window_ends_in_release_and_not_before() {
    let mut deal = opened();
    assert_eq!(deal.wake_at_ms(), Some(ENDS));
    assert!(deal.tick(ENDS - 1).is_empty(), "nothing is released inside the window");
    assert_eq!(deal.vote(&notary()), None);
    let outputs = deal.tick(ENDS);
    assert_eq!(outputs, vec![VerdictOutput::Record { deal_id: deal.deal_id(), decision: Decision::Release }]);
    assert_eq!(deal.vote(&notary()), None, "nothing is signed before it is recorded");
    assert_eq!(record(&mut deal, outputs), Some(Decision::Release));
    assert_eq!((deal.verdict(), deal.wake_at_ms()), (Some(Decision::Release), None));

    // Final: a late dispute and an operator's reverse are refused.
    let late = deal.raise(&Dispute::sign(&buyer(), deal.deal_id(), "too late"), ENDS + 1);
    assert_eq!(late, Err(DisputeError::Decided(Decision::Release)));
    assert_eq!(deal.decide(Decision::Reverse), Err(DisputeError::Decided(Decision::Release)));
    assert_eq!(deal.vote(&notary()).map(|vote| vote.decision), Some(Decision::Release));
}

#[test]
fn a_dispute_inside_the_window_freezes_the_deal_until_the_operator_decides() {
    let mut deal = opened();
    let dispute = Dispute::sign(&buyer(), deal.deal_id(), "the deed names another parcel");
    let outputs = deal.raise(&dispute, ENDS - 1).expect("the buyer disputes in time");
    assert_eq!(outputs, vec![VerdictOutput::RecordDispute(dispute.clone())]);
    assert!(deal.awaiting_operator());
    assert_eq!(deal.raise(&dispute, ENDS - 1), Ok(vec![]), "the same dispute again changes nothing");
    // Long after the window, a disputed deal is still not released.
    assert!(deal.tick(ENDS * 10).is_empty());
    assert_eq!(deal.wake_at_ms(), None);
    assert_eq!(deal.decide(Decision::Commit), Err(DisputeError::NotAVerdict(Decision::Commit)));

    let outputs = deal.decide(Decision::Reverse).expect("the operator decides");
    assert_eq!(record(&mut deal, outputs), Some(Decision::Reverse));
    assert_eq!(deal.decide(Decision::Release), Err(DisputeError::Decided(Decision::Reverse)));

    // Restored from the log, the notary signs the same verdict and no other.
    let restored =
        VerdictDeal::restore(terms(Disputer::Buyer), Some(dispute.clone()), Some(Decision::Reverse)).unwrap();
    assert_eq!(restored.vote(&notary()).map(|vote| vote.decision), Some(Decision::Reverse));
    // Restored with the dispute but no verdict, it waits for the operator again.
    let mut waiting = VerdictDeal::restore(terms(Disputer::Buyer), Some(dispute), None).unwrap();
    assert!(waiting.tick(ENDS * 10).is_empty() && waiting.awaiting_operator());
}

#[test]
fn a_dispute_late_by_a_stranger_or_forged_is_refused_and_changes_nothing() {
    let mut deal = opened();
    let id = deal.deal_id();
    let mut forged = Dispute::sign(&seller(), id, "not the buyer's");
    forged.by = buyer().public();
    let long = "x".repeat(DISPUTE_REASON_LEN_MAX + 1);
    let stranger = PartyKey::from_seed([3; 32]);
    let cases = [
        ("late", Dispute::sign(&buyer(), id, "late"), ENDS),
        ("by the seller", Dispute::sign(&seller(), id, "the seller"), ENDS - 1),
        ("by a stranger", Dispute::sign(&stranger, id, "a stranger"), ENDS - 1),
        ("forged", forged, ENDS - 1),
        ("too long a reason", Dispute::sign(&buyer(), id, &long), ENDS - 1),
        ("for another deal", Dispute::sign(&buyer(), terms(Disputer::Either).id(), "other"), ENDS - 1),
    ];
    for (name, dispute, now_ms) in cases {
        let refused = deal.raise(&dispute, now_ms);
        let expected = match name {
            "late" => matches!(refused, Err(DisputeError::WindowClosed { ends_ms: ENDS, .. })),
            "by the seller" | "by a stranger" => matches!(refused, Err(DisputeError::NotAllowed { .. })),
            "forged" => matches!(refused, Err(DisputeError::Signature(_))),
            "too long a reason" => matches!(refused, Err(DisputeError::ReasonTooLong { .. })),
            _ => matches!(refused, Err(DisputeError::OtherDeal { .. })),
        };
        assert!(expected, "{name}: {refused:?}");
        assert!(!deal.awaiting_operator() && deal.dispute().is_none(), "{name} changed the deal");
    }
    assert_eq!(deal.decide(Decision::Reverse), Err(DisputeError::NotDisputed { ends_ms: ENDS }));
    let outputs = deal.tick(ENDS);
    assert_eq!(record(&mut deal, outputs), Some(Decision::Release));
}

#[test]
fn the_policy_says_who_disputes_and_a_deal_without_one_has_no_window() {
    for (disputer, party, allowed) in
        [(Disputer::Seller, seller(), true), (Disputer::Seller, buyer(), false), (Disputer::Either, seller(), true)]
    {
        let mut deal = VerdictDeal::open(terms(disputer)).unwrap();
        let raised = deal.raise(&Dispute::sign(&party, deal.deal_id(), "why"), 0);
        assert_eq!(raised.is_ok(), allowed, "{disputer:?}: {raised:?}");
    }
    let mut plain = (*terms(Disputer::Buyer)).clone();
    plain.policy.inspection = None;
    assert!(VerdictDeal::open(Arc::new(plain)).is_none());
}
