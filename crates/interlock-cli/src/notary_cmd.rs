//! `interlock notary decide | inspection`: a notary operator's commands on the
//! inspection periods of the deals its notary committed. They speak to the
//! running notary with its own certificate: only it may decide a dispute.

use crate::client_args::Target;
use interlock_proto::v1;
use interlock_proto::v1::notary_client::NotaryClient;

/// The notary `target` names, at the endpoint the sandbox's directory gives
/// it unless the target names one.
fn connect(target: &Target) -> anyhow::Result<NotaryClient<tonic::transport::Channel>> {
    let channel = target.channel(|target| {
        let path = target.sandbox.join("directory.json");
        let directory = interlock_identity::SignedDirectory::load(&path)
            .map_err(|error| anyhow::anyhow!("{}: {error} (give --notary HOST:PORT)", path.display()))?
            .directory;
        let entry = directory.notaries.iter().find(|notary| notary.name == target.name).ok_or_else(|| {
            anyhow::anyhow!("the directory {} lists no notary named {:?}", path.display(), target.name)
        })?;
        Ok(entry.endpoint.clone())
    })?;
    Ok(NotaryClient::new(channel))
}

fn deal_bytes(deal: &str) -> anyhow::Result<Vec<u8>> {
    let text = deal.trim().trim_start_matches("0x");
    let hash = interlock_core::Hash32::from_hex(text)
        .ok_or_else(|| anyhow::anyhow!("deal {deal:?}: expected the deal id, 64 hex digits"))?;
    Ok(hash.0.to_vec())
}

fn show(status: &v1::InspectionStatus, json: bool) {
    let deal = interlock_core::hash::to_hex(&status.deal_id);
    if json {
        let value = serde_json::json!({
            "deal_id": deal, "state": status.state, "ends_ms": status.ends_ms, "reason": status.reason,
        });
        println!("{value}");
        return;
    }
    println!("deal {deal}: {} (the window closes at {} ms since the epoch)", status.state, status.ends_ms);
    if !status.reason.is_empty() {
        println!("  disputed: {}", status.reason);
    }
}

/// Decides a disputed deal (`decision` is release or reverse), or with
/// `None` shows where its inspection period stands at this notary.
pub fn run(target: &Target, deal: &str, decision: Option<&str>, json: bool) -> anyhow::Result<()> {
    let deal_id = deal_bytes(deal)?;
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    runtime.block_on(async {
        let mut notary = connect(target)?;
        let answer = match decision {
            Some(decision) => {
                let request = v1::DecideDisputeRequest { deal_id, decision: decision.to_owned() };
                notary.decide_dispute(request).await
            }
            None => notary.get_inspection(v1::GetVoteRequest { deal_id }).await,
        };
        let status = answer.map_err(|status| anyhow::anyhow!("{}", status.message()))?.into_inner();
        show(&status, json);
        Ok(())
    })
}
