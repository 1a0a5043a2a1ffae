//! `interlock deal propose | accept | status | list | watch | cancel | dispute`: the
//! operator's commands, against the agent of the party they act for.

use crate::client_args::Target;
use anyhow::Context as _;
use interlock_proto::v1;
use interlock_proto::v1::agent_client::AgentClient;
use tonic::transport::Channel;

/// The agent of `target`'s party.
fn connect(target: &Target) -> anyhow::Result<AgentClient<Channel>> {
    let channel = target.channel(|target| interlock_devnet::sandbox::agent_endpoint(&target.sandbox, &target.name))?;
    Ok(AgentClient::new(channel).max_decoding_message_size(interlock_rpc::server::MESSAGE_LEN_MAX))
}

/// `AMOUNT ASSET@NETWORK`, e.g. `25 USD@alpha`, or `#ITEM CLASS@NETWORK` for a unique item.
pub fn leg_spec(text: &str) -> anyhow::Result<v1::LegSpec> {
    let expected = || {
        format!(
            "{text:?}: expected AMOUNT ASSET@NETWORK or #ITEM CLASS@NETWORK, e.g. \"25 USD@alpha\" or \"#3 DEED@beta\""
        )
    };
    let (amount, rest) = text.trim().split_once(' ').with_context(expected)?;
    let (asset, network) = rest.trim().split_once('@').with_context(expected)?;
    if amount.is_empty() || asset.is_empty() || network.is_empty() {
        anyhow::bail!(expected());
    }
    Ok(v1::LegSpec { network: network.into(), asset: asset.into(), amount: amount.into() })
}

/// The deal's policy, as `deal propose` takes it.
#[derive(clap::Args)]
pub struct PolicyArgs {
    /// At the deadline: refund, or extend:DURATION to notify both parties and
    /// extend it once (notary mode only; e.g. extend:30s).
    #[arg(long, default_value = "refund")]
    on_timeout: String,
    /// Asset codes either leg may move, comma-separated (default: any).
    #[arg(long, value_delimiter = ',')]
    allow_assets: Vec<String>,
    /// Largest amount a leg may move.
    #[arg(long)]
    max_amount: Option<u128>,
    /// Largest total of one asset a party may move per UTC day in the deals a notary commits.
    #[arg(long)]
    max_per_day: Option<u128>,
    /// Hold the executed legs for an inspection period this long after the
    /// decision deadline (notary mode only; e.g. 30s, 5m): a dispute inside it
    /// waits for the notaries' operators; undisputed, the legs are released.
    #[arg(long, value_name = "DURATION")]
    inspect: Option<String>,
    /// Who may dispute inside the inspection period.
    #[arg(long, value_parser = ["buyer", "seller", "either"], requires = "inspect")]
    disputer: Option<String>,
}

impl PolicyArgs {
    pub fn apply(self, request: v1::ProposeDealRequest) -> v1::ProposeDealRequest {
        let text = |limit: Option<u128>| limit.map(|max| max.to_string()).unwrap_or_default();
        v1::ProposeDealRequest {
            on_timeout: self.on_timeout,
            allow_assets: self.allow_assets,
            max_amount: text(self.max_amount),
            max_per_day: text(self.max_per_day),
            inspect: self.inspect.unwrap_or_default(),
            disputer: self.disputer.unwrap_or_default(),
            ..request
        }
    }
}

pub enum Action {
    Propose { request: Box<v1::ProposeDealRequest> },
    Accept { deal: String },
    Cancel { deal: String },
    Status { deal: String },
    List { state: Option<String>, limit: u32 },
    Watch { deal: String },
    Dispute { deal: String, reason: String },
}

fn time_text(ms: u64) -> String {
    let at = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02}:{:02}.{:03} UTC",
        at.year(),
        u8::from(at.month()),
        at.day(),
        at.hour(),
        at.minute(),
        at.second(),
        at.millisecond()
    )
}

pub fn view_json(view: &v1::DealView) -> serde_json::Value {
    serde_json::json!({
        "deal_id": view.deal_id, "role": view.role, "counterparty": view.counterparty, "mode": view.mode,
        "state": view.state, "payment": view.payment, "delivery": view.delivery,
        "own_leg": view.own_leg, "counter_leg": view.counter_leg, "deadline_ms": view.deadline_ms,
        "notice": view.notice, "policy": view.policy,
        "inspection_ends_ms": view.inspection_ends_ms, "disputer": view.disputer,
        "steps": view.steps.iter().map(|s| serde_json::json!({"at_ms": s.at_ms, "text": s.text})).collect::<Vec<_>>(),
    })
}

fn print_view(view: &v1::DealView) {
    println!("deal {} ({} mode): {}", view.deal_id, view.mode, view.state);
    println!("  {} with {}", view.role, view.counterparty);
    println!("  payment   {}", view.payment);
    println!("  delivery  {}", view.delivery);
    println!("  legs      own {}, counterparty's {}", view.own_leg, view.counter_leg);
    println!("  deadline  {}", time_text(view.deadline_ms));
    println!("  policy    {}", view.policy);
    if view.inspection_ends_ms > 0 {
        let now_ms = crate::setup::now_ms();
        let left = if now_ms < view.inspection_ends_ms {
            format!("{} s left", (view.inspection_ends_ms - now_ms).div_ceil(1_000))
        } else {
            "closed".to_owned()
        };
        println!(
            "  inspect   window closes {} ({left}); {} may dispute",
            time_text(view.inspection_ends_ms),
            view.disputer
        );
    }
    if !view.notice.is_empty() {
        println!("  notice    {}", view.notice);
    }
    for step in &view.steps {
        println!("  {}  {}", time_text(step.at_ms), step.text);
    }
}

fn failed(status: tonic::Status) -> anyhow::Error {
    match status.code() {
        tonic::Code::Unavailable => anyhow::anyhow!("the agent is unreachable: {}", status.message()),
        _ => anyhow::anyhow!("{}", status.message()),
    }
}

/// Runs one action; `Ok(false)` when a watched deal did not complete.
pub fn run(target: &Target, action: Action, json: bool) -> anyhow::Result<bool> {
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build()?;
    runtime.block_on(async {
        let mut agent = connect(target)?;
        match action {
            Action::Propose { request } => show(agent.propose_deal(*request).await.map_err(failed)?.get_ref(), json),
            Action::Accept { deal } => {
                show(agent.accept_deal(v1::DealRef { deal }).await.map_err(failed)?.get_ref(), json)
            }
            Action::Cancel { deal } => {
                show(agent.cancel_deal(v1::DealRef { deal }).await.map_err(failed)?.get_ref(), json)
            }
            Action::Dispute { deal, reason } => {
                let request = v1::DisputeDealRequest { deal, reason };
                show(agent.dispute_deal(request).await.map_err(failed)?.get_ref(), json)
            }
            Action::Status { deal } => {
                show(agent.get_deal(v1::DealRef { deal }).await.map_err(failed)?.get_ref(), json)
            }
            Action::List { state, limit } => {
                let request = v1::ListDealsRequest { state: state.unwrap_or_default(), limit };
                let list = agent.list_deals(request).await.map_err(failed)?.into_inner();
                if json {
                    let deals: Vec<_> = list.deals.iter().map(view_json).collect();
                    println!("{}", serde_json::json!({ "deals": deals }));
                } else if list.deals.is_empty() {
                    println!("no deals");
                } else {
                    println!("{:<16} {:<8} {:<7} {:<10} {:<24} delivery", "deal", "mode", "role", "state", "payment");
                    for deal in &list.deals {
                        println!(
                            "{:<16} {:<8} {:<7} {:<10} {:<24} {}",
                            &deal.deal_id[..deal.deal_id.len().min(16)],
                            deal.mode,
                            deal.role,
                            deal.state,
                            deal.payment,
                            deal.delivery
                        );
                    }
                }
                Ok(true)
            }
            Action::Watch { deal } => {
                let mut stream = agent.watch_deal(v1::DealRef { deal }).await.map_err(failed)?.into_inner();
                let mut shown = 0;
                let mut last = None;
                while let Some(view) = stream.message().await.map_err(failed)? {
                    if json {
                        println!("{}", view_json(&view));
                    } else {
                        if shown == 0 {
                            println!(
                                "deal {} ({} mode): {} with {}",
                                view.deal_id, view.mode, view.role, view.counterparty
                            );
                            println!("  payment {}; delivery {}", view.payment, view.delivery);
                        }
                        for step in view.steps.iter().skip(shown) {
                            println!("  {}  {}", time_text(step.at_ms), step.text);
                        }
                    }
                    shown = view.steps.len();
                    last = Some(view);
                }
                let last = last.context("the agent closed the watch without a view")?;
                if !json {
                    println!("deal {} is {}", last.deal_id, last.state);
                    if !last.notice.is_empty() {
                        println!("  notice: {}", last.notice);
                    }
                }
                // A deal held for inspection watched past its verdict may
                // end released: it completed as well.
                Ok(matches!(last.state.as_str(), "completed" | "released"))
            }
        }
    })
}

fn show(view: &v1::DealView, json: bool) -> anyhow::Result<bool> {
    if json {
        println!("{}", view_json(view));
    } else {
        print_view(view);
    }
    Ok(true)
}
