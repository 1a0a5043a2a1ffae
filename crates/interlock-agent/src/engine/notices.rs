//! Deal notices from the gateways: a proposal this party received, and a deal
//! both parties signed being registered, which starts its saga.

use super::{role_index, signature, Changes, Engine};
use crate::store::{AgentDeal, DealState};
use interlock_core::crypto::verify_deal_signature;
use interlock_core::encoding::decode_terms;
use interlock_core::policy::TimeoutNotice;
use interlock_core::saga::Role;
use interlock_proto::v1;
use std::sync::Arc;

impl Engine {
    pub(super) fn on_notice(&mut self, notice: v1::DealNotice, now: u64, changes: &mut Changes) {
        let Some(signed) = notice.deal else { return };
        let Ok(terms) = decode_terms(&signed.terms_encoded) else { return };
        let deal_id = terms.id();
        // A withdrawn deal that left the working set stays withdrawn.
        if self.retired.contains(&deal_id) {
            return;
        }
        let me = self.key.public();
        let role = if terms.buyer == me {
            Role::Buyer
        } else if terms.seller == me {
            Role::Seller
        } else {
            return;
        };
        let (Some(buyer_signature), Some(seller_signature)) =
            (signature(&signed.buyer_signature), signature(&signed.seller_signature))
        else {
            return;
        };
        let signatures = [buyer_signature, seller_signature];
        // A notice this agent has acted on already (the same one comes from
        // both gateways, and its own proposals come back) needs no more work.
        let known = self.deals.get(&deal_id);
        let moot = match (notice.kind.as_str(), known.map(|deal| deal.state)) {
            ("proposed", Some(_)) => true,
            ("registered", Some(state)) => !matches!(state, DealState::Proposed | DealState::Received),
            _ => false,
        };
        if moot {
            return;
        }
        // Trust the gateway for nothing: check every signature it passed on,
        // but for one this agent made and kept itself.
        let kept = known.map_or([None, None], |deal| deal.signatures);
        for ((party, signature), kept) in [terms.buyer, terms.seller].into_iter().zip(&signatures).zip(kept) {
            if let Some(signature) = signature {
                if kept == Some(*signature) {
                    continue;
                }
                if verify_deal_signature(party, deal_id, signature).is_err() {
                    self.say(deal_id, "ignored a notice with a signature that does not verify");
                    return;
                }
            }
        }
        let mine = role_index(role);
        let counterparty = self.counterparty_name(&terms, role);
        match notice.kind.as_str() {
            "proposed" if !self.deals.contains_key(&deal_id) && signatures[mine].is_none() => {
                let valid = terms.validate().and_then(|()| terms.check_timing_in(&self.timings));
                if let Err(error) = valid {
                    self.say(deal_id, &format!("ignored an invalid proposal from {counterparty}: {error}"));
                    return;
                }
                self.deals.insert(
                    deal_id,
                    AgentDeal {
                        terms: Arc::new(terms),
                        signatures,
                        role,
                        state: DealState::Received,
                        secret: None,
                        created_ms: now,
                        notice: Default::default(),
                    },
                );
                changes.step(deal_id, now, format!("received a proposal from {counterparty}"));
                if self.auto_accept {
                    self.check_accept(deal_id, None, now, changes);
                }
            }
            "registered" if signatures.iter().all(Option::is_some) => {
                let Some(deal) = self.deals.get_mut(&deal_id) else {
                    self.say(deal_id, "a registered deal this agent never signed nor received; ignored");
                    return;
                };
                match deal.state {
                    DealState::Proposed | DealState::Received => {
                        let text = match deal.state {
                            DealState::Proposed => format!("{counterparty} agreed; the deal is registered"),
                            _ => "the deal is registered".to_owned(),
                        };
                        deal.signatures = signatures;
                        changes.step(deal_id, now, text);
                        self.start_saga(deal_id, now, changes);
                    }
                    DealState::Withdrawn => changes.step(
                        deal_id,
                        now,
                        format!("{counterparty} registered the deal after it was withdrawn: this party takes no part, and whatever {counterparty} reserves refunds at expiry"),
                    ),
                    DealState::Running | DealState::Ended(_) | DealState::Released | DealState::Reversed => {}
                }
            }
            _ => {}
        }
    }
}

/// A unix-milliseconds time as people read it, in UTC.
pub(super) fn time_text(at_ms: u64) -> String {
    let at = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(at_ms) * 1_000_000)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    format!("{:02}:{:02}:{:02}.{:03} UTC", at.hour(), at.minute(), at.second(), at.millisecond())
}

/// What a party is told when its deal times out.
pub(super) fn timeout_text(notice: TimeoutNotice) -> String {
    match notice {
        TimeoutNotice::Refund { at_ms } => format!("timed out at {}; policy: refund", time_text(at_ms)),
        TimeoutNotice::Extended { at_ms, by_ms, to_ms } => format!(
            "timed out at {}; policy: extended once by {} s to {}",
            time_text(at_ms),
            by_ms.div_ceil(1_000),
            time_text(to_ms)
        ),
        TimeoutNotice::RefundAfterExtension { at_ms } => {
            format!("timed out again at {}, after the extension; policy: refund", time_text(at_ms))
        }
    }
}
