//! The keeper's verdicts: for every leg of its network held for inspection,
//! the gateway asks the deal's notaries where its window stands
//! (`GetInspection`), and reads the verdict vote (`GetVerdict`) only of those
//! that decided; once k agree it hands the certificate to the keeper, which
//! presents it on each held leg (anyone may; the escrow checks it as it
//! checks a commit). The first dispute a notary reports is recorded as the
//! deal's `disputed` event, which the parties' watches and the subscribers'
//! webhooks carry.

use crate::keeper::Held;
use crate::{locked, GatewayService};
use interlock_core::crypto::{Certificate, RecoverableSignature, Vote};
use interlock_core::{DealId, Decision, NotaryAddress};
use interlock_proto::v1;
use interlock_proto::v1::notary_client::NotaryClient;
use std::collections::HashSet;
use std::time::Duration;
use tonic::transport::Channel;

/// How often the gateway asks the notaries about held legs.
const VERDICT_POLL: Duration = Duration::from_millis(300);
/// How long one notary may take to answer.
const NOTARY_CALL_TIMEOUT: Duration = Duration::from_secs(2);

/// What the deal's notaries said in one round.
#[derive(Default)]
struct Round {
    votes: Vec<Vote>,
    /// The first notary that reported a dispute, and its reason.
    dispute: Option<(NotaryAddress, String)>,
}

impl GatewayService {
    /// Asks the notaries about the held legs, forever.
    pub(crate) async fn collect_verdicts(self) {
        let mut ticker = tokio::time::interval(VERDICT_POLL);
        // Deals whose dispute is recorded here: not recorded again. A
        // restarted gateway records it once more, and the store keeps one event.
        let mut disputed: HashSet<DealId> = HashSet::new();
        loop {
            ticker.tick().await;
            let awaiting = locked(&self.shared.keeper).awaiting_verdicts();
            disputed.retain(|deal_id| awaiting.iter().any(|held| held.deal_id == *deal_id));
            let mut learned = false;
            for held in awaiting {
                let round = self.ask_notaries(&held).await;
                if let Some((notary, reason)) = round.dispute.filter(|_| !disputed.contains(&held.deal_id)) {
                    if self.record_dispute(held.deal_id, notary, reason).await {
                        disputed.insert(held.deal_id);
                    }
                }
                if let Some(verdict) = certificate(&held, &round.votes) {
                    tracing::info!(deal_id = %held.deal_id, "keeper holds the {} verdict", verdict.decision);
                    locked(&self.shared.keeper).learn_verdict(held.deal_id, verdict);
                    learned = true;
                }
            }
            if learned {
                let now_ms = locked(&self.shared.keeper).now_ms;
                self.keep(now_ms).await;
            }
        }
    }

    /// One round over the deal's notaries: each is asked where its window
    /// stands, and one that decided for its verdict vote.
    async fn ask_notaries(&self, held: &Held) -> Round {
        let request = v1::GetVoteRequest { deal_id: held.deal_id.0 .0.to_vec() };
        let mut round = Round::default();
        for address in &held.notaries {
            let Some(client) = self.shared.notaries.get(address) else { continue };
            let mut client = client.clone();
            let call = client.get_inspection(request.clone());
            let Ok(Ok(inspection)) = tokio::time::timeout(NOTARY_CALL_TIMEOUT, call).await else { continue };
            let inspection = inspection.into_inner();
            // A recorded dispute: waiting for the operator, or decided (the
            // notary keeps its reason).
            if round.dispute.is_none() && (inspection.state == "disputed" || !inspection.reason.is_empty()) {
                round.dispute = Some((*address, inspection.reason));
            }
            if matches!(inspection.state.as_str(), "release" | "reverse") {
                if let Some(vote) = verdict_vote(&mut client, held.deal_id, *address).await {
                    round.votes.push(vote);
                }
            }
        }
        round
    }

    /// Records the deal's dispute as `notary` reported it. True once recorded.
    async fn record_dispute(&self, deal_id: DealId, notary: NotaryAddress, reason: String) -> bool {
        let entry = self.shared.directory.notaries.iter().find(|entry| entry.address == notary);
        let name = entry.map_or_else(|| notary.to_string(), |entry| entry.name.clone());
        let now_ms = (self.shared.clock)();
        match self.write(move |registry| registry.record_dispute(deal_id, &name, &reason, now_ms)).await {
            Ok(committed) => {
                self.announce(&committed);
                true
            }
            Err(error) => {
                tracing::warn!(%deal_id, "cannot record the dispute yet: {error}");
                false
            }
        }
    }
}

/// The verdict vote on `deal_id` of the notary at `address`, if it signed
/// one: a signature that does not recover to it (over another deal or
/// decision, or by another key) counts for nothing.
async fn verdict_vote(client: &mut NotaryClient<Channel>, deal_id: DealId, address: NotaryAddress) -> Option<Vote> {
    let call = client.get_verdict(v1::GetVoteRequest { deal_id: deal_id.0 .0.to_vec() });
    let answer = tokio::time::timeout(NOTARY_CALL_TIMEOUT, call).await.ok()?.ok()?.into_inner();
    let decision = match answer.decision.as_str() {
        "release" => Decision::Release,
        "reverse" => Decision::Reverse,
        _ => return None,
    };
    let signature = RecoverableSignature(<[u8; 65]>::try_from(answer.signature.as_slice()).ok()?);
    let vote = Vote { deal_id, decision, signature };
    (vote.signer() == Some(address)).then_some(vote)
}

/// The verdict k of the deal's notaries signed, if they have.
fn certificate(held: &Held, votes: &[Vote]) -> Option<Certificate> {
    let threshold = usize::from(held.threshold);
    [Decision::Release, Decision::Reverse].into_iter().find_map(|decision| {
        let signatures: Vec<RecoverableSignature> =
            votes.iter().filter(|vote| vote.decision == decision).map(|vote| vote.signature).take(threshold).collect();
        let certificate = Certificate { deal_id: held.deal_id, decision, signatures };
        certificate.verify(held.deal_id, decision, &held.notaries, held.threshold).is_ok().then_some(certificate)
    })
}
