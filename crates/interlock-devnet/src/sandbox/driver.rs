//! The deal driver: one deal shown step by step, or many at a time with
//! throughput, latency and atomicity measured, through the sandbox's agents.

use super::{agent_endpoint, channel, load, party_key, tls_channel, ChainState, State, DEPENDENT, OBSERVER, PARTIES};
use anyhow::Context as _;
use interlock_core::{Mode, NetworkId};
use interlock_proto::v1;
use interlock_proto::v1::agent_client::AgentClient;
use interlock_proto::v1::gateway_client::GatewayClient;
use interlock_rpc::server::TlsFiles;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;
use tonic::transport::Channel;

/// Deals whose two parties ended differently that a report names, at most.
const MISMATCHED_LISTED_MAX: usize = 10;
/// The standard deal: the buyer pays 25 USD on alpha for 10 GOLD on beta.
const PAYMENT: (&str, &str, &str) = ("alpha", "USD", "25");
const DELIVERY: (&str, &str, &str) = ("beta", "GOLD", "10");
/// Whether the sandbox is routed: it has gamma, linked to alpha only through beta.
fn routed(state: &State) -> bool {
    state.processes.iter().any(|process| process.name == "gamma-gateway")
}

/// The payment of the standard deal when beta is a Litecoin chain: 0.25 LTC, in litoshis.
const LTC_PAYMENT: &str = "25000000";

fn gateways(dir: &Path, state: &State) -> anyhow::Result<HashMap<NetworkId, GatewayClient<Channel>>> {
    let networks = super::directory_networks(dir)?;
    let mut clients = HashMap::new();
    for process in state.processes.iter().filter(|p| p.role == "gateway") {
        let name = process.name.strip_suffix("-gateway").unwrap_or(&process.name);
        let Some((network, _)) = networks.iter().find(|(_, network)| network == name) else { continue };
        clients.insert(*network, GatewayClient::new(channel(dir, &process.address)?));
    }
    Ok(clients)
}

/// The pairs of networks deals run between, by name: (alpha, beta), then
/// (alpha-k, beta-k) for each further pair; (alpha, gamma) when routed.
fn pairs(dir: &Path, state: &State) -> anyhow::Result<Vec<(String, String)>> {
    if routed(state) {
        return Ok(vec![("alpha".into(), "gamma".into())]);
    }
    let names: Vec<String> = super::directory_networks(dir)?.into_iter().map(|(_, name)| name).collect();
    let mut pairs = vec![("alpha".to_owned(), "beta".to_owned())];
    for name in names.iter().filter(|name| name.starts_with("alpha-")) {
        let partner = name.replacen("alpha", "beta", 1);
        if names.contains(&partner) {
            pairs.push((name.clone(), partner));
        }
    }
    Ok(pairs)
}

fn agent(dir: &Path, party: &str) -> anyhow::Result<AgentClient<Channel>> {
    let tls = TlsFiles::in_dir(&dir.join("tls"), party);
    Ok(AgentClient::new(tls_channel(&tls, &agent_endpoint(dir, party)?)?))
}

fn final_state(state: &str) -> bool {
    matches!(state, "completed" | "refunded" | "withdrawn" | "windfall" | "lost")
}

/// The standard deal; `observed` names the sandbox's observer in its terms
/// (every proposal of the sandbox does, unless told otherwise).
fn standard_proposal(mode: Mode, window: Duration, observed: bool) -> v1::ProposeDealRequest {
    let mut request = proposal(mode, window, PAYMENT, DELIVERY);
    if !observed {
        request.observers.clear();
    }
    request
}

/// The buyer's proposal to the seller: `payment` and `delivery` are (network, asset, amount).
fn proposal(
    mode: Mode,
    window: Duration,
    payment: (&str, &str, &str),
    delivery: (&str, &str, &str),
) -> v1::ProposeDealRequest {
    let leg = |(network, asset, amount): (&str, &str, &str)| v1::LegSpec {
        network: network.into(),
        asset: asset.into(),
        amount: amount.into(),
    };
    v1::ProposeDealRequest {
        counterparty: "seller".into(),
        role: "buyer".into(),
        mode: mode.to_string(),
        payment: Some(leg(payment)),
        delivery: Some(leg(delivery)),
        window_ms: u64::try_from(window.as_millis()).unwrap_or(u64::MAX),
        observers: vec![OBSERVER.into()],
        ..Default::default()
    }
}

/// Countersigns `deal` at the seller's agent once the proposal has reached it.
async fn accept_when_received(seller: &mut AgentClient<Channel>, deal: &str) -> anyhow::Result<()> {
    let started = std::time::Instant::now();
    loop {
        match seller.accept_deal(v1::DealRef { deal: deal.into() }).await {
            Ok(_) => return Ok(()),
            Err(status) if status.code() == tonic::Code::NotFound && started.elapsed() < Duration::from_secs(20) => {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(status) => anyhow::bail!("the seller's agent did not accept deal {deal}: {}", status.message()),
        }
    }
}

/// The deal's view at `agent` once it has ended.
async fn ended(agent: &mut AgentClient<Channel>, deal: &str, time_max: Duration) -> anyhow::Result<v1::DealView> {
    let started = std::time::Instant::now();
    loop {
        match agent.get_deal(v1::DealRef { deal: deal.into() }).await {
            Ok(view) if final_state(&view.get_ref().state) => return Ok(view.into_inner()),
            Ok(_) | Err(_) if started.elapsed() < time_max => tokio::time::sleep(Duration::from_millis(100)).await,
            Ok(view) => anyhow::bail!("deal {deal} is still {} after {time_max:?}", view.get_ref().state),
            Err(status) => anyhow::bail!("cannot read deal {deal}: {}", status.message()),
        }
    }
}

async fn balances(dir: &Path, state: &State) -> anyhow::Result<serde_json::Value> {
    let gateways = gateways(dir, state)?;
    let mut balances = serde_json::Map::new();
    for name in PARTIES {
        let key = party_key(dir, name)?;
        let mut networks = serde_json::Map::new();
        for (network, label) in super::directory_networks(dir)? {
            let label = label.as_str();
            if let Some(chain) = state.chain(label) {
                networks.insert(label.into(), chain.balances(name).await?);
                continue;
            }
            let mut client = gateways.get(&network).cloned().context("no gateway")?;
            let request = v1::GetAccountRequest { account: key.public().0.to_vec() };
            // A network whose gateway is down (killed by hand) shows why
            // instead of failing the whole report.
            let account = match client.get_account(request).await {
                Ok(account) => account,
                Err(status) => {
                    let unreachable = format!("its gateway did not answer: {}", status.message());
                    networks.insert(label.into(), serde_json::json!({ "unreachable": unreachable }));
                    continue;
                }
            };
            let assets: serde_json::Map<String, serde_json::Value> = account
                .into_inner()
                .balances
                .into_iter()
                .map(|b| (b.asset, serde_json::Value::String(b.amount)))
                .collect();
            networks.insert(label.into(), assets.into());
        }
        balances.insert(name.into(), networks.into());
    }
    Ok(balances.into())
}

/// The lowest DEED the seller still holds on `chain`.
async fn lowest_deed(chain: &ChainState) -> anyhow::Result<u64> {
    let held = chain.balances("seller").await?;
    let item = held["DEED"].as_array().and_then(|items| items.first()).and_then(serde_json::Value::as_u64);
    item.with_context(|| format!("the seller holds no DEED on {} any more: start a new sandbox", chain.network()))
}

/// The sandbox's one deal in `mode` and its story: the standard deal between
/// two ledgers; with chains, assets the chains hold.
async fn sandbox_deal(state: &State, mode: Mode, window: Duration) -> anyhow::Result<(v1::ProposeDealRequest, String)> {
    let deal = match (state.chain("alpha"), state.chain("beta"), mode) {
        (None, Some(ChainState::Litecoin(_)), mode) => (
            proposal(mode, window, ("beta", "LTC", LTC_PAYMENT), ("alpha", "GOLD", "10")),
            format!(
                "buyer pays 0.25 LTC (25000000 litoshis) on beta (Litecoin, a P2WSH {}) for 10 GOLD on alpha (ledger)",
                if mode == Mode::Notary { "script whose spends 2 of 3 notaries sign" } else { "hashlock script" }
            ),
        ),
        (None, None, _) if routed(state) => (
            proposal(mode, window, PAYMENT, ("gamma", "GOLD", "10")),
            "buyer pays 25 USD on alpha for 10 GOLD on gamma; alpha's and gamma's gateways talk through beta's"
                .to_owned(),
        ),
        (None, None, _) => {
            (standard_proposal(mode, window, true), "buyer pays 25 USD on alpha for 10 GOLD on beta".to_owned())
        }
        (None, Some(beta), Mode::Notary) => {
            let item = lowest_deed(beta).await?;
            let request = proposal(mode, window, PAYMENT, ("beta", "DEED", &format!("#{item}")));
            let platform = beta.platform_label();
            (request, format!("buyer pays 25 USD on alpha (ledger) for DEED #{item} (ERC-721) on beta ({platform})"))
        }
        (None, Some(beta), Mode::Hashlock) => (
            proposal(mode, window, ("beta", "USDC", "25"), ("alpha", "GOLD", "10")),
            format!("buyer pays 25 USDC (ERC-20) on beta ({}) for 10 GOLD on alpha (ledger)", beta.platform_label()),
        ),
        // Two chains: each leg an asset of its own chain, the payment on
        // alpha in notary mode and on beta in hashlock mode.
        (Some(alpha), Some(beta), mode) => {
            let (payment, delivery) = if mode == Mode::Notary { (alpha, beta) } else { (beta, alpha) };
            let item = lowest_deed(delivery).await?;
            let number = format!("#{item}");
            let request =
                proposal(mode, window, (payment.network(), "USDC", "25"), (delivery.network(), "DEED", &number));
            let on = |chain: &ChainState| {
                let id = chain.status_json()["chain_id"].as_u64().unwrap_or_default();
                format!("on {} ({}, chain {id})", chain.network(), chain.platform_label())
            };
            (
                request,
                format!("buyer pays 25 USDC (ERC-20) {} for DEED {number} (ERC-721) {}", on(payment), on(delivery)),
            )
        }
        (Some(_), None, _) => {
            anyhow::bail!("this sandbox's alpha is a chain and beta a ledger: it has no standard deal")
        }
    };
    Ok(deal)
}

/// Runs one standard deal through the agents and shows it step by step.
pub fn deal(dir: &Path, mode: Mode, json: bool) -> anyhow::Result<bool> {
    deal_to(dir, mode, json, &mut std::io::stdout()).map(|(completed, _)| completed)
}

/// [`deal`], its story (or report) written to `out`; returns whether it
/// completed on both sides, and its report.
pub fn deal_to(
    dir: &Path,
    mode: Mode,
    json: bool,
    out: &mut dyn std::io::Write,
) -> anyhow::Result<(bool, serde_json::Value)> {
    let state = load(dir)?;
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(async {
        let (mut buyer, mut seller) = (agent(dir, "buyer")?, agent(dir, "seller")?);
        let started = std::time::Instant::now();
        let window = Duration::from_secs(30);
        let (mut request, story) = sandbox_deal(&state, mode, window).await?;
        // One deal, shown step by step: it names the warranty service too, which
        // logs the completion its webhook brings.
        request.dependents = vec![DEPENDENT.into()];
        let view = buyer
            .propose_deal(request)
            .await
            .map_err(|status| anyhow::anyhow!("the buyer's agent refused the proposal: {}", status.message()))?
            .into_inner();
        let deal = view.deal_id.clone();
        if !json {
            writeln!(out, "deal {deal} ({mode} mode): {story}")?;
        }
        if state.manual_accept {
            accept_when_received(&mut seller, &deal).await?;
        }
        let mut stream = buyer.watch_deal(v1::DealRef { deal: deal.clone() }).await?.into_inner();
        let mut shown = 0;
        let mut last = view;
        while let Some(view) = stream.message().await? {
            if !json {
                for step in view.steps.iter().skip(shown) {
                    writeln!(out, "  buyer:  {}", step.text)?;
                }
            }
            shown = view.steps.len();
            last = view;
        }
        let seller_view = ended(&mut seller, &deal, Duration::from_secs(60)).await?;
        let seconds = started.elapsed().as_secs_f64();
        if !json {
            for step in &seller_view.steps {
                writeln!(out, "  seller: {}", step.text)?;
            }
        }
        let balances = balances(dir, &state).await?;
        let completed = last.state == "completed" && seller_view.state == "completed";
        let report = serde_json::json!({
            "id": deal, "mode": mode.to_string(),
            "outcome": outcome(&last.state, &seller_view.state),
            "buyer": last.state, "seller": seller_view.state,
            "seconds": seconds, "balances_after": balances,
        });
        if json {
            writeln!(out, "{report}")?;
        } else {
            writeln!(out, "outcome: buyer {}, seller {} in {seconds:.2} s", last.state, seller_view.state)?;
            writeln!(out, "balances after: {}", serde_json::to_string_pretty(&report["balances_after"])?)?;
        }
        anyhow::Ok((completed, report))
    })
}

/// One word for how a deal ended from both parties' states: both legs
/// executed, nothing moved for good (refunded, or withdrawn before anything
/// was reserved), or one side paid without the other.
fn outcome(buyer: &str, seller: &str) -> &'static str {
    match (buyer, seller) {
        ("completed", "completed") => "completed",
        ("withdrawn", "withdrawn") => "withdrawn",
        ("refunded" | "withdrawn", "refunded" | "withdrawn") => "refunded",
        _ => "not atomic",
    }
}

/// What the driver of many deals knows, shared with its watcher.
#[derive(Default)]
struct Tally {
    started: HashMap<String, std::time::Instant>,
    finals: HashMap<String, (std::time::Instant, String)>,
    credited: std::collections::HashSet<String>,
}

impl Tally {
    /// Frees a slot for the next deal once a started deal has ended (once).
    fn credit(&mut self, deal: &str, slots: &tokio::sync::Semaphore) {
        if self.started.contains_key(deal) && self.finals.contains_key(deal) && self.credited.insert(deal.to_owned()) {
            slots.add_permits(1);
        }
    }
}

/// Follows every deal of the buyer's agent, reconnecting when it restarts.
async fn watch_all(
    dir: PathBuf,
    tally: std::sync::Arc<std::sync::Mutex<Tally>>,
    slots: std::sync::Arc<tokio::sync::Semaphore>,
) {
    loop {
        if let Ok(mut buyer) = agent(&dir, "buyer") {
            if let Ok(response) = buyer.watch_deal(v1::DealRef { deal: "*".into() }).await {
                let mut stream = response.into_inner();
                while let Ok(Some(view)) = stream.message().await {
                    if final_state(&view.state) {
                        let mut tally = tally.lock().expect("never poisoned");
                        tally.finals.entry(view.deal_id.clone()).or_insert((std::time::Instant::now(), view.state));
                        tally.credit(&view.deal_id, &slots);
                    }
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Looks up, now and then, deals that started and have not been seen to end,
/// in case the watcher missed their end while the agent restarted.
async fn look_up_pending(
    dir: PathBuf,
    tally: std::sync::Arc<std::sync::Mutex<Tally>>,
    slots: std::sync::Arc<tokio::sync::Semaphore>,
) {
    loop {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let pending: Vec<String> = {
            let tally = tally.lock().expect("never poisoned");
            let mut pending: Vec<(&String, &std::time::Instant)> =
                tally.started.iter().filter(|(deal, _)| !tally.finals.contains_key(*deal)).collect();
            pending.sort_by_key(|(_, at)| **at);
            pending.into_iter().take(200).map(|(deal, _)| deal.clone()).collect()
        };
        let Ok(mut buyer) = agent(&dir, "buyer") else { continue };
        for deal in pending {
            if let Ok(view) = buyer.get_deal(v1::DealRef { deal: deal.clone() }).await {
                if final_state(&view.get_ref().state) {
                    let mut tally = tally.lock().expect("never poisoned");
                    tally.finals.entry(deal.clone()).or_insert((std::time::Instant::now(), view.into_inner().state));
                    tally.credit(&deal, &slots);
                }
            }
        }
    }
}

/// Seller's look-ups in flight at once when the deals of a run are counted.
const LOOKUPS_IN_FLIGHT: usize = 64;

/// How each of `deals` ended at the seller's agent. The look-ups run
/// `LOOKUPS_IN_FLIGHT` at a time: one after another, each a round trip, they
/// took longer than the deals themselves (a thousand deals settled in 23 s
/// were counted for another 45).
async fn seller_states(dir: &Path, deals: Vec<String>) -> anyhow::Result<Vec<(String, String)>> {
    let seller = agent(dir, "seller")?;
    let mut states = Vec::with_capacity(deals.len());
    let mut lookups = tokio::task::JoinSet::new();
    for deal in deals {
        if lookups.len() >= LOOKUPS_IN_FLIGHT {
            states.push(lookups.join_next().await.context("a look-up is in flight")???);
        }
        let mut seller = seller.clone();
        lookups.spawn(async move {
            let view = ended(&mut seller, &deal, Duration::from_secs(60)).await?;
            anyhow::Ok((deal, view.state))
        });
    }
    while let Some(joined) = lookups.join_next().await {
        states.push(joined??);
    }
    Ok(states)
}

/// Runs `count` standard deals, `concurrency` at a time, through the agents;
/// reports settled deals per second, latency percentiles and whether every
/// deal ended the same way on both sides with the totals unchanged. With
/// `observed`, the deals name the sandbox's observer.
pub fn many(
    dir: &Path,
    mode: Mode,
    count: usize,
    concurrency: usize,
    observed: bool,
    json: bool,
) -> anyhow::Result<serde_json::Value> {
    let state = load(dir)?;
    if let Some((name, chain)) = state.chains.iter().next() {
        anyhow::bail!(
            "many deals run on the two-ledger sandbox; this one's {name} is an {} chain: use `sandbox deal`",
            chain.platform_label()
        );
    }
    if state.manual_accept {
        anyhow::bail!(
            "this sandbox's seller accepts by hand (--manual-accept): many deals need `sandbox up` without it"
        );
    }
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(async {
        use std::sync::{Arc, Mutex};
        let tally = Arc::new(Mutex::new(Tally::default()));
        let slots = Arc::new(tokio::sync::Semaphore::new(concurrency));
        let watcher = tokio::spawn(watch_all(dir.to_owned(), tally.clone(), slots.clone()));
        let looker = tokio::spawn(look_up_pending(dir.to_owned(), tally.clone(), slots.clone()));
        // Every deal's deadlines leave room for the whole batch ahead of it.
        let window = Duration::from_secs(30) + Duration::from_millis(20) * u32::try_from(count)?;
        let started = std::time::Instant::now();
        let refusals = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let buyer = agent(dir, "buyer")?;
        // One proposal per pair of networks; deals take them in turn.
        let templates: Vec<v1::ProposeDealRequest> = pairs(dir, &state)?
            .into_iter()
            .map(|(payment, delivery)| {
                let mut request = standard_proposal(mode, window, observed);
                let leg = |network: String, (_, asset, amount): (&str, &str, &str)| v1::LegSpec {
                    network,
                    asset: asset.into(),
                    amount: amount.into(),
                };
                request.payment = Some(leg(payment, PAYMENT));
                request.delivery = Some(leg(delivery, DELIVERY));
                request
            })
            .collect();
        let mut proposers = tokio::task::JoinSet::new();
        for index in 0..count {
            slots.acquire().await?.forget();
            let (mut buyer, tally, slots, refusals) = (buyer.clone(), tally.clone(), slots.clone(), refusals.clone());
            let request = templates[index % templates.len()].clone();
            proposers.spawn(async move {
                loop {
                    let at = std::time::Instant::now();
                    match buyer.propose_deal(request.clone()).await {
                        Ok(view) => {
                            let mut tally = tally.lock().expect("never poisoned");
                            tally.started.insert(view.get_ref().deal_id.clone(), at);
                            tally.credit(&view.get_ref().deal_id, &slots);
                            return Ok(());
                        }
                        // The agent or a gateway is down (a restart): try again.
                        Err(status) => {
                            let refused = refusals.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
                            if std::env::var_os("INTERLOCK_DEBUG").is_some() {
                                eprintln!("proposal refused: {}", status.message());
                            }
                            if refused > 10_000 {
                                anyhow::bail!("the buyer's agent keeps refusing proposals: {}", status.message());
                            }
                            tokio::time::sleep(Duration::from_millis(100)).await;
                        }
                    }
                }
            });
        }
        while let Some(joined) = proposers.join_next().await {
            joined??;
        }
        let refusals = refusals.load(std::sync::atomic::Ordering::Relaxed);
        // Wait for every deal to end, looking each one up now and then in case
        // the watcher missed its end while the agent restarted.
        let time_max = Duration::from_secs(120) + window * 2;
        loop {
            let pending: Vec<String> = {
                let tally = tally.lock().expect("never poisoned");
                tally.started.keys().filter(|deal| !tally.finals.contains_key(*deal)).cloned().collect()
            };
            if pending.is_empty() {
                break;
            }
            if started.elapsed() > time_max {
                anyhow::bail!("{} deals did not end within {time_max:?}", pending.len());
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        let seconds = started.elapsed().as_secs_f64();
        watcher.abort();
        looker.abort();
        // A proposal whose answer a restart lost may have started a deal the
        // driver does not count: let those end too before the totals.
        for party in PARTIES {
            loop {
                let running = agent(dir, party)?
                    .list_deals(v1::ListDealsRequest { state: "running".into(), limit: 1 })
                    .await
                    .map(|list| list.into_inner().deals.len());
                if running.is_ok_and(|n| n == 0) {
                    break;
                }
                if started.elapsed() > time_max {
                    anyhow::bail!("the {party}'s agent still runs deals after {time_max:?}");
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
        let tally = std::mem::take(&mut *tally.lock().expect("never poisoned"));
        let counted: Vec<String> = tally.finals.keys().filter(|deal| tally.started.contains_key(*deal)).cloned().collect();
        let seller_states = seller_states(dir, counted).await?;
        let (mut completed, mut refunded, mut withdrawn) = (0, 0, 0);
        let mut mismatched = Vec::new();
        for (deal, seller_state) in &seller_states {
            let buyer_state = tally.finals.get(deal).map_or("", |(_, state)| state.as_str());
            match (buyer_state, seller_state.as_str()) {
                ("completed", "completed") => completed += 1,
                ("refunded", "refunded") => refunded += 1,
                // A proposal both sides gave up before it was registered (a
                // gateway was down): never a deal, nothing moved.
                ("withdrawn", "withdrawn") => withdrawn += 1,
                (buyer, seller) if mismatched.len() < MISMATCHED_LISTED_MAX => {
                    mismatched.push(serde_json::json!({ "deal": deal, "buyer": buyer, "seller": seller }));
                }
                _ => {}
            }
        }
        let unlooked = tally.finals.len().saturating_sub(seller_states.len());
        let mut latencies: Vec<f64> = tally
            .started
            .iter()
            .filter_map(|(deal, at)| tally.finals.get(deal).map(|(end, _)| end.duration_since(*at).as_secs_f64() * 1_000.0))
            .collect();
        latencies.sort_by(f64::total_cmp);
        let percentile =
            |p: f64| latencies.get(((latencies.len() as f64 - 1.0) * p).round() as usize).copied().unwrap_or(0.0);
        // Conservation across the sandbox: what the buyer and seller hold together.
        let balances = balances(dir, &state).await?;
        let mut totals = serde_json::Map::new();
        let legs: Vec<(String, &str)> = pairs(dir, &state)?
            .into_iter()
            .flat_map(|(payment, delivery)| [(payment, "USD"), (delivery, "GOLD")])
            .collect();
        for (label, asset) in legs {
            let label = label.as_str();
            let mut total: u128 = 0;
            for party in PARTIES {
                total += balances[party][label][asset].as_str().map_or(Ok(0), str::parse::<u128>)?;
            }
            totals.insert(format!("{label} {asset}"), total.to_string().into());
        }
        let report = serde_json::json!({
            "mode": mode.to_string(), "deals": count, "concurrency": concurrency, "completed": completed,
            "refunded": refunded, "withdrawn": withdrawn, "not_atomic": count - completed - refunded - withdrawn,
            "totals_after": totals,
            "not_atomic_deals": mismatched, "seller_states_missing": unlooked,
            "proposals_retried": refusals, "seconds": seconds, "deals_per_s": (count as f64 / seconds).round(),
            "latency_ms_p50": percentile(0.5).round(), "latency_ms_p99": percentile(0.99).round(),
        });
        if !json {
            println!(
                "{count} {mode} deals, {concurrency} at a time: {completed} completed, {refunded} refunded in {seconds:.1} s ({:.0} deals/s), latency p50 {:.0} ms, p99 {:.0} ms",
                count as f64 / seconds,
                percentile(0.5),
                percentile(0.99)
            );
        }
        anyhow::Ok(report)
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_deal_both_parties_withdrew_is_not_called_one_sided() {
        assert_eq!(super::outcome("completed", "completed"), "completed");
        assert_eq!(super::outcome("withdrawn", "withdrawn"), "withdrawn");
        assert_eq!(super::outcome("withdrawn", "refunded"), "refunded");
        assert_eq!(super::outcome("refunded", "refunded"), "refunded");
        assert_eq!(super::outcome("lost", "windfall"), "not atomic");
        assert_eq!(super::outcome("completed", "refunded"), "not atomic");
    }
}
