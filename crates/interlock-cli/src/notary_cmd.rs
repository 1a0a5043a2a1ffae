//! `interlock notary decide | inspection`: a notary operator's commands on the
//! inspection periods of the deals its notary committed. They speak to the
//! running notary with its own certificate: only it may decide a dispute.

use interlock_proto::v1;
use interlock_proto::v1::notary_client::NotaryClient;
use interlock_rpc::server::{lazy_channel, TlsFiles};
use std::path::PathBuf;

/// Which notary, as itself.
pub struct Target {
    /// The notary's `host:port`; without it, the directory's endpoint for `name`.
    pub notary: Option<String>,
    /// Holds ca.pem and `<name>.pem` / `<name>.key` (default: the sandbox's tls/).
    pub tls_dir: Option<PathBuf>,
    /// The notary's name in the directory.
    pub name: String,
    pub sandbox: PathBuf,
}

impl Target {
    fn connect(&self) -> anyhow::Result<NotaryClient<tonic::transport::Channel>> {
        let endpoint = match &self.notary {
            Some(endpoint) => endpoint.clone(),
            None => {
                let path = self.sandbox.join("directory.json");
                let directory = interlock_identity::SignedDirectory::load(&path)
                    .map_err(|error| anyhow::anyhow!("{}: {error} (give --notary HOST:PORT)", path.display()))?
                    .directory;
                let entry = directory.notaries.iter().find(|notary| notary.name == self.name).ok_or_else(|| {
                    anyhow::anyhow!("the directory {} lists no notary named {:?}", path.display(), self.name)
                })?;
                entry.endpoint.clone()
            }
        };
        let tls_dir = self.tls_dir.clone().unwrap_or_else(|| self.sandbox.join("tls"));
        Ok(NotaryClient::new(lazy_channel(&endpoint, &TlsFiles::in_dir(&tls_dir, &self.name))?))
    }
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
        let mut notary = target.connect()?;
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
