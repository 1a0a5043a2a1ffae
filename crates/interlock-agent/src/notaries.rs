//! The notaries as a party's spends reach them over gRPC: on a platform whose
//! escrow is a script, a decision settles a leg only with k notaries'
//! signatures over the spend itself, which each notary gives for the
//! decision it recorded (`SignSpend`).

use interlock_chain::{BoxFuture, ChainError, NotarySigner, SpendToSign};
use interlock_core::crypto::RecoverableSignature;
use interlock_core::{LegKind, NotaryAddress, Settlement};
use interlock_proto::v1;
use interlock_proto::v1::notary_client::NotaryClient;
use std::time::Duration;
use tonic::transport::Channel;

/// How long one notary has to answer.
const ANSWER_WITHIN: Duration = Duration::from_secs(5);

/// Every notary of the directory, asked in turn.
pub struct RemoteNotaries {
    clients: Vec<NotaryClient<Channel>>,
}

impl RemoteNotaries {
    pub fn new(clients: Vec<NotaryClient<Channel>>) -> RemoteNotaries {
        RemoteNotaries { clients }
    }

    async fn ask(
        client: &NotaryClient<Channel>,
        request: v1::SignSpendRequest,
    ) -> Result<(NotaryAddress, RecoverableSignature), String> {
        let answer = tokio::time::timeout(ANSWER_WITHIN, client.clone().sign_spend(request))
            .await
            .map_err(|_| format!("no answer within {ANSWER_WITHIN:?}"))?
            .map_err(|status| status.message().to_owned())?
            .into_inner();
        let signature = <[u8; 65]>::try_from(answer.signature.as_slice())
            .map_err(|_| format!("a signature of {} bytes, not 65", answer.signature.len()))?;
        let notary = <[u8; 20]>::try_from(answer.notary.as_slice())
            .map_err(|_| format!("a notary address of {} bytes, not 20", answer.notary.len()))?;
        Ok((NotaryAddress(notary), RecoverableSignature(signature)))
    }
}

impl NotarySigner for RemoteNotaries {
    /// The deal's notaries' signatures, or, with fewer than its threshold,
    /// a retry-later error naming each refusal (a notary not yet decided, or
    /// unreachable, may answer later).
    fn sign_spend<'a>(
        &'a self,
        spend: &'a SpendToSign,
    ) -> BoxFuture<'a, Result<Vec<RecoverableSignature>, ChainError>> {
        Box::pin(async move {
            let Settlement::Notary { notaries, threshold, .. } = &spend.terms.settlement else {
                return Err(ChainError::fatal("a hashlock deal has no notaries to sign its spends"));
            };
            let request = v1::SignSpendRequest {
                deal_id: spend.terms.id().0 .0.to_vec(),
                leg: match spend.leg {
                    LegKind::Payment => "payment",
                    LegKind::Delivery => "delivery",
                }
                .to_owned(),
                decision: spend.decision.to_string(),
                location: spend.location.clone(),
            };
            // All at once: a notary that does not answer delays no other.
            let mut asked = tokio::task::JoinSet::new();
            for client in &self.clients {
                let (client, request) = (client.clone(), request.clone());
                asked.spawn(async move { Self::ask(&client, request).await });
            }
            let mut signatures = Vec::new();
            let mut refusals = Vec::new();
            while let Some(answer) = asked.join_next().await {
                match answer {
                    Ok(Ok((notary, signature))) if notaries.contains(&notary) => signatures.push(signature),
                    Ok(Ok((notary, _))) => refusals.push(format!("{notary} is not one of the deal's notaries")),
                    Ok(Err(reason)) => refusals.push(reason),
                    Err(error) => refusals.push(format!("the call did not finish: {error}")),
                }
            }
            if signatures.len() < usize::from(*threshold) {
                return Err(ChainError::retry_later(format!(
                    "{} of the deal's notaries signed the {} spend of its {:?} leg, {threshold} needed: {}",
                    signatures.len(),
                    spend.decision,
                    spend.leg,
                    refusals.join("; ")
                )));
            }
            Ok(signatures)
        })
    }
}

/// Hands `disputing`'s signed dispute to every notary at once: how many
/// recorded it, and what the others answered (a notary not in the deal's set
/// says it has no such deal).
pub(crate) async fn raise_dispute(disputing: &crate::engine::Disputing) -> (usize, Vec<String>) {
    let dispute = &disputing.dispute;
    let request = v1::RaiseDisputeRequest {
        deal_id: dispute.deal_id.0 .0.to_vec(),
        party: dispute.by.0.to_vec(),
        reason: dispute.reason.clone(),
        signature: dispute.signature.0.to_vec(),
    };
    let mut asked = tokio::task::JoinSet::new();
    for client in &disputing.notaries {
        let (mut client, request) = (client.clone(), request.clone());
        asked.spawn(async move { tokio::time::timeout(ANSWER_WITHIN, client.raise_dispute(request)).await });
    }
    let mut recorded = 0;
    let mut refusals = Vec::new();
    while let Some(answer) = asked.join_next().await {
        match answer {
            Ok(Ok(Ok(status))) if status.get_ref().state == "disputed" => recorded += 1,
            Ok(Ok(Ok(status))) => refusals.push(format!("its window is {}", status.get_ref().state)),
            Ok(Ok(Err(status))) if status.code() == tonic::Code::NotFound => {}
            Ok(Ok(Err(status))) => refusals.push(status.message().to_owned()),
            Ok(Err(_)) => refusals.push(format!("no answer within {ANSWER_WITHIN:?}")),
            Err(error) => refusals.push(format!("the call failed: {error}")),
        }
    }
    (recorded, refusals)
}
