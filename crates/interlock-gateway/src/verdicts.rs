//! The keeper's verdicts: for every leg of its network held for inspection,
//! the gateway asks the deal's notaries for their verdict votes; once k of
//! them agree it hands the certificate to the keeper, which presents it on
//! each held leg (anyone may; the escrow checks it as it checks a commit).
//! Until then it also asks them whether a party disputed the deal, and
//! records the first dispute a notary reports as the deal's `disputed`
//! event, which the parties' watches and the subscribers' webhooks carry.

use crate::keeper::Held;
use crate::{locked, GatewayService};
use interlock_core::crypto::{Certificate, RecoverableSignature, Vote};
use interlock_core::{DealId, Decision};
use interlock_proto::v1;
use std::collections::HashSet;
use std::time::Duration;

/// How often the gateway asks the notaries about held legs.
const VERDICT_POLL: Duration = Duration::from_millis(300);
/// How long one notary may take to answer.
const NOTARY_CALL_TIMEOUT: Duration = Duration::from_secs(2);

impl GatewayService {
    /// Asks the notaries about the held legs, forever.
    pub(crate) async fn collect_verdicts(self) {
        let mut ticker = tokio::time::interval(VERDICT_POLL);
        // Deals whose dispute is recorded here: not asked about again. A
        // restarted gateway asks once more, and the store keeps one event.
        let mut disputed: HashSet<DealId> = HashSet::new();
        loop {
            ticker.tick().await;
            let awaiting = locked(&self.shared.keeper).awaiting_verdicts();
            disputed.retain(|deal_id| awaiting.iter().any(|held| held.deal_id == *deal_id));
            let mut learned = false;
            for held in awaiting {
                if let Some(verdict) = self.verdict_of(&held).await {
                    tracing::info!(deal_id = %held.deal_id, "keeper holds the {} verdict", verdict.decision);
                    locked(&self.shared.keeper).learn_verdict(held.deal_id, verdict);
                    learned = true;
                } else if !disputed.contains(&held.deal_id) && self.record_dispute(&held).await {
                    disputed.insert(held.deal_id);
                }
            }
            if learned {
                let now_ms = locked(&self.shared.keeper).now_ms;
                self.keep(now_ms).await;
            }
        }
    }

    /// Asks the deal's notaries whether a party disputed it and records the
    /// first dispute one reports. True once a dispute is recorded.
    async fn record_dispute(&self, held: &Held) -> bool {
        let request = v1::GetVoteRequest { deal_id: held.deal_id.0 .0.to_vec() };
        for address in &held.notaries {
            let Some(client) = self.shared.notaries.get(address) else { continue };
            let mut client = client.clone();
            let call = client.get_inspection(request.clone());
            let Ok(Ok(answer)) = tokio::time::timeout(NOTARY_CALL_TIMEOUT, call).await else { continue };
            let answer = answer.into_inner();
            // A recorded dispute: waiting for the operator, or decided (the
            // notary keeps its reason).
            if answer.state != "disputed" && answer.reason.is_empty() {
                continue;
            }
            let notary = self.shared.directory.notaries.iter().find(|notary| notary.address == *address);
            let name = notary.map_or_else(|| address.to_string(), |notary| notary.name.clone());
            let (deal_id, now_ms) = (held.deal_id, (self.shared.clock)());
            let reason = answer.reason;
            let recorded = self.write(move |registry| registry.record_dispute(deal_id, &name, &reason, now_ms)).await;
            return match recorded {
                Ok(committed) => {
                    self.announce(&committed);
                    true
                }
                Err(error) => {
                    tracing::warn!(%deal_id, "cannot record the dispute yet: {error}");
                    false
                }
            };
        }
        false
    }

    /// The verdict k of the deal's notaries signed, if they have.
    async fn verdict_of(&self, held: &Held) -> Option<Certificate> {
        let request = v1::GetVoteRequest { deal_id: held.deal_id.0 .0.to_vec() };
        let mut votes: Vec<Vote> = Vec::new();
        for address in &held.notaries {
            let Some(client) = self.shared.notaries.get(address) else { continue };
            let mut client = client.clone();
            let call = client.get_verdict(request.clone());
            let Ok(Ok(answer)) = tokio::time::timeout(NOTARY_CALL_TIMEOUT, call).await else { continue };
            let answer = answer.into_inner();
            let decision = match answer.decision.as_str() {
                "release" => Decision::Release,
                "reverse" => Decision::Reverse,
                _ => continue,
            };
            let Ok(signature) = <[u8; 65]>::try_from(answer.signature.as_slice()) else { continue };
            let vote = Vote { deal_id: held.deal_id, decision, signature: RecoverableSignature(signature) };
            // A vote counts only if the notary it came from signed it.
            if vote.signer() == Some(*address) {
                votes.push(vote);
            }
        }
        let threshold = usize::from(held.threshold);
        for decision in [Decision::Release, Decision::Reverse] {
            let signatures: Vec<RecoverableSignature> = votes
                .iter()
                .filter(|vote| vote.decision == decision)
                .map(|vote| vote.signature)
                .take(threshold)
                .collect();
            let certificate = Certificate { deal_id: held.deal_id, decision, signatures };
            if certificate.verify(held.deal_id, decision, &held.notaries, held.threshold).is_ok() {
                return Some(certificate);
            }
        }
        None
    }
}
