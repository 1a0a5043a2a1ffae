//! Passing a recorded dispute on to the deal's other notaries.
//!
//! A dispute freezes a deal only at the notaries that recorded it: k notaries
//! that never heard of it would release the deal when its window closes. The
//! disputing party asks every notary, but a party that stops asking (its agent
//! crashed, its link failed) could leave too few of them knowing. So a notary
//! that records a dispute passes it on, as the party signed it, to every other
//! notary of the deal, and retries until each has it, has decided, or the
//! window has closed. A notary cannot forge or alter a dispute it passes on:
//! the receiving notary checks the party's signature, not who delivered it.
//! A notary restarted with a recorded dispute still undecided passes it on
//! again (the receiving end takes the same dispute twice as once).

use crate::{locked, NotaryService};
use interlock_core::verdict::Dispute;
use interlock_core::{DealId, NotaryAddress, Settlement};
use interlock_proto::v1;
use interlock_proto::v1::notary_client::NotaryClient;
use std::time::Duration;
use tonic::transport::Channel;
use tonic::Code;

/// How long one attempt to pass a dispute on waits for its answer.
const ATTEMPT_WITHIN: Duration = Duration::from_secs(2);
/// The pause after a first failed attempt, doubled after each up to [`RETRY_MAX`].
const RETRY_FIRST: Duration = Duration::from_millis(100);
const RETRY_MAX: Duration = Duration::from_secs(2);

/// Another notary of the directory, which this one passes disputes on to.
#[derive(Clone)]
pub struct PeerNotary {
    /// Its name in the directory, for log lines.
    pub name: String,
    pub address: NotaryAddress,
    /// A client holding this notary's own certificate.
    pub client: NotaryClient<Channel>,
}

impl NotaryService {
    /// Sets the other notaries that this one passes the disputes it records
    /// on to (itself, if listed, is left out), and passes on at once every
    /// dispute it recorded before this start whose deal is still undecided.
    pub fn pass_disputes_to(&self, peers: Vec<PeerNotary>) {
        let own = self.address();
        *locked(&self.shared.peers) = peers.into_iter().filter(|peer| peer.address != own).collect();
        let undecided: Vec<Dispute> = locked(&self.shared.verdicts)
            .values()
            .filter(|deal| deal.verdict().is_none())
            .filter_map(|deal| deal.dispute().cloned())
            .collect();
        for dispute in undecided {
            self.pass_on(dispute);
        }
    }

    /// Passes `dispute`, just recorded, on to each other notary of its deal,
    /// each on a task of its own.
    pub(crate) fn pass_on(&self, dispute: Dispute) {
        let deal_id = dispute.deal_id;
        let Some(ends_ms) = locked(&self.shared.verdicts).get(&deal_id).map(|deal| deal.ends_ms()) else { return };
        let notaries = match locked(&self.shared.deals).get(&deal_id).map(|deal| &deal.terms().settlement) {
            Some(Settlement::Notary { notaries, .. }) => notaries.clone(),
            _ => return,
        };
        let peers: Vec<PeerNotary> =
            locked(&self.shared.peers).iter().filter(|peer| notaries.contains(&peer.address)).cloned().collect();
        for peer in peers {
            tokio::spawn(self.clone().pass_to(peer, dispute.clone(), ends_ms));
        }
    }

    async fn pass_to(self, mut peer: PeerNotary, dispute: Dispute, ends_ms: u64) {
        let deal_id = dispute.deal_id;
        let request = v1::RaiseDisputeRequest {
            deal_id: deal_id.0 .0.to_vec(),
            party: dispute.by.0.to_vec(),
            reason: dispute.reason,
            signature: dispute.signature.0.to_vec(),
        };
        let mut pause = RETRY_FIRST;
        loop {
            let why = match tokio::time::timeout(ATTEMPT_WITHIN, peer.client.raise_dispute(request.clone())).await {
                Ok(Ok(_)) => {
                    tracing::info!(%deal_id, notary = %peer.name, "notary: passed the dispute on");
                    return;
                }
                // Refused for what the dispute is, not for when it came: it
                // would be refused again.
                Ok(Err(status))
                    if matches!(
                        status.code(),
                        Code::InvalidArgument | Code::PermissionDenied | Code::Unauthenticated
                    ) =>
                {
                    tracing::warn!(%deal_id, notary = %peer.name, "notary: the dispute was refused: {}", status.message());
                    return;
                }
                Ok(Err(status)) => status.message().to_owned(),
                Err(_) => format!("no answer within {} s", ATTEMPT_WITHIN.as_secs()),
            };
            // Not taken now: the peer may not have the deal's window open yet
            // (it commits, or joins the verdict, when it sees the legs held),
            // or may be past it already.
            if peer_is_past(&mut peer, deal_id).await {
                return;
            }
            if (self.shared.clock)() >= ends_ms {
                tracing::warn!(
                    %deal_id, notary = %peer.name,
                    "notary: the window closed before the dispute could be passed on: {why}"
                );
                return;
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(RETRY_MAX);
        }
    }
}

/// Whether `peer`'s window of `deal_id` is no longer open: disputed already,
/// or decided. Either way there is nothing more to tell it.
async fn peer_is_past(peer: &mut PeerNotary, deal_id: DealId) -> bool {
    let request = v1::GetVoteRequest { deal_id: deal_id.0 .0.to_vec() };
    match tokio::time::timeout(ATTEMPT_WITHIN, peer.client.get_inspection(request)).await {
        Ok(Ok(status)) => status.get_ref().state != "open",
        _ => false,
    }
}
