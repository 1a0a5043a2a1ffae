//! The agent's gRPC service: the operator's `deal` commands. Only the party the
//! agent acts for may call it.

use super::engine::{self, AgentConfig, AgentError, Command, Input, Reply, Sending};
use interlock_identity::{PeerIdentity, Role};
use interlock_proto::v1;
use interlock_proto::v1::agent_server::Agent;
use std::pin::Pin;
use std::time::Duration;
use tokio::sync::{broadcast, mpsc, oneshot};
use tokio_stream::Stream;
use tonic::{Request, Response, Status};

/// How long the operator waits for a gateway to take a proposal or registration.
const GATEWAY_TIME_MAX: Duration = Duration::from_secs(10);

#[derive(Clone)]
pub struct AgentService {
    party: String,
    inputs: mpsc::Sender<Input>,
    updates: broadcast::Sender<v1::DealView>,
}

fn final_state(state: &str) -> bool {
    matches!(state, "completed" | "refunded" | "withdrawn" | "windfall" | "lost" | "released" | "reversed")
}

impl AgentService {
    /// Starts the agent: resumes every unfinished deal of its store and follows
    /// its gateways. Call within a tokio runtime.
    pub fn start(config: AgentConfig) -> Result<AgentService, AgentError> {
        let party = config.party.clone();
        let (inputs, updates) = engine::start(config)?;
        Ok(AgentService { party, inputs, updates })
    }

    /// The party this agent acts for.
    pub fn party(&self) -> &str {
        &self.party
    }

    pub fn server(self) -> v1::agent_server::AgentServer<AgentService> {
        v1::agent_server::AgentServer::new(self)
    }

    fn check_caller<T>(&self, request: &Request<T>) -> Result<(), Status> {
        let certificates = request.peer_certs();
        let peer = PeerIdentity::from_peer_certificates(certificates.as_deref().map(Vec::as_slice))
            .map_err(|error| Status::unauthenticated(error.to_string()))?;
        if !matches!(peer.role, Role::Party | Role::Agent) || peer.name != self.party {
            return Err(Status::permission_denied(format!(
                "this agent acts for party {}: only {}'s certificate may call it, and the caller is {} {}",
                self.party, self.party, peer.role, peer.name
            )));
        }
        Ok(())
    }

    async fn ask<T>(&self, command: impl FnOnce(Reply<T>) -> Command) -> Result<T, Status> {
        let (reply, answer) = oneshot::channel();
        self.inputs
            .send(Input::Command(command(reply)))
            .await
            .map_err(|_| Status::unavailable("the agent is stopping"))?;
        answer.await.map_err(|_| Status::unavailable("the agent is stopping"))?
    }

    async fn get(&self, deal: String) -> Result<v1::DealView, Status> {
        self.ask(|reply| Command::Get(deal, reply)).await
    }
}

async fn send_proposal(sending: &mut Sending) -> Result<(), Status> {
    let call = sending.gateway.propose_deal(sending.deal.clone());
    match tokio::time::timeout(GATEWAY_TIME_MAX, call).await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(status)) => Err(status),
        Err(_) => Err(Status::deadline_exceeded(format!(
            "{} did not answer within {GATEWAY_TIME_MAX:?}",
            sending.gateway_name
        ))),
    }
}

/// `WatchDeal` of this names every deal: each change of any deal, without its steps.
const EVERY_DEAL: &str = "*";

fn every_change(mut updates: broadcast::Receiver<v1::DealView>) -> ViewStream {
    let (sender, receiver) = mpsc::channel(1_024);
    tokio::spawn(async move {
        loop {
            match updates.recv().await {
                Ok(view) => {
                    if sender.send(Ok(view)).await.is_err() {
                        return;
                    }
                }
                Err(broadcast::error::RecvError::Lagged(missed)) => {
                    let status = Status::data_loss(format!("the watcher fell {missed} changes behind: watch again"));
                    let _ = sender.send(Err(status)).await;
                    return;
                }
                Err(broadcast::error::RecvError::Closed) => return,
            }
        }
    });
    Box::pin(tokio_stream::wrappers::ReceiverStream::new(receiver))
}

type ViewStream = Pin<Box<dyn Stream<Item = Result<v1::DealView, Status>> + Send>>;

#[tonic::async_trait]
impl Agent for AgentService {
    async fn propose_deal(&self, request: Request<v1::ProposeDealRequest>) -> Result<Response<v1::DealView>, Status> {
        self.check_caller(&request)?;
        let request = request.into_inner();
        let (view, mut sending) = self.ask(|reply| Command::Propose(Box::new(request), reply)).await?;
        let deal_id = interlock_core::Hash32::from_hex(&view.deal_id).map(interlock_core::DealId);
        let result = send_proposal(&mut sending).await;
        if let Some(deal_id) = deal_id {
            let gateway = sending.gateway_name.clone();
            let told = result.as_ref().map(|_| ()).map_err(|status| status.message().to_owned());
            let _ = self.inputs.send(Input::Proposed { deal_id, gateway, result: told }).await;
        }
        match result {
            Ok(()) => Ok(Response::new(self.get(view.deal_id).await?)),
            Err(status) => Err(Status::new(
                status.code(),
                format!(
                    "the proposal did not reach {}: {}; deal {} is withdrawn",
                    sending.gateway_name,
                    status.message(),
                    view.deal_id
                ),
            )),
        }
    }

    async fn accept_deal(&self, request: Request<v1::DealRef>) -> Result<Response<v1::DealView>, Status> {
        self.check_caller(&request)?;
        let deal = request.into_inner().deal;
        let (deal_id, sending) = self.ask(|reply| Command::Accept(deal, reply)).await?;
        let gateway = sending.gateway_name.clone();
        // The operator waits a while; the agent keeps trying after a restart.
        let until = std::time::Instant::now() + GATEWAY_TIME_MAX;
        let result = engine::register(sending.gateway, sending.deal, until).await;
        let _ = self.inputs.send(Input::Registered { deal_id, gateway: gateway.clone(), result: result.clone() }).await;
        match result {
            Ok(()) => Ok(Response::new(self.get(deal_id.to_string()).await?)),
            Err(reason) => Err(Status::failed_precondition(format!(
                "deal {deal_id} is countersigned, but {gateway} refused to register it: {reason}"
            ))),
        }
    }

    async fn cancel_deal(&self, request: Request<v1::DealRef>) -> Result<Response<v1::DealView>, Status> {
        self.check_caller(&request)?;
        let deal = request.into_inner().deal;
        Ok(Response::new(self.ask(|reply| Command::Cancel(deal, reply)).await?))
    }

    async fn get_deal(&self, request: Request<v1::DealRef>) -> Result<Response<v1::DealView>, Status> {
        self.check_caller(&request)?;
        Ok(Response::new(self.get(request.into_inner().deal).await?))
    }

    async fn list_deals(&self, request: Request<v1::ListDealsRequest>) -> Result<Response<v1::DealList>, Status> {
        self.check_caller(&request)?;
        let request = request.into_inner();
        Ok(Response::new(self.ask(|reply| Command::List(request, reply)).await?))
    }

    async fn dispute_deal(&self, request: Request<v1::DisputeDealRequest>) -> Result<Response<v1::DealView>, Status> {
        self.check_caller(&request)?;
        let request = request.into_inner();
        let disputing = self.ask(|reply| Command::Dispute(request, reply)).await?;
        let (recorded, refusals) = crate::notaries::raise_dispute(&disputing).await;
        let mut view = self.get(disputing.deal_id.to_string()).await?;
        if recorded == 0 {
            let why = refusals.first().cloned().unwrap_or_else(|| "no notary answered".to_owned());
            return Err(Status::failed_precondition(format!(
                "no notary recorded the dispute of deal {}: {why}",
                disputing.deal_id
            )));
        }
        if recorded < disputing.needed {
            return Err(Status::unavailable(format!(
                "the dispute of deal {} was recorded by {recorded} of its notaries, and {} must record it before \
                 no quorum is left to sign a release: run the same dispute again (the notaries that recorded it \
                 keep it){}",
                disputing.deal_id,
                disputing.needed,
                if refusals.is_empty() {
                    String::new()
                } else {
                    format!("; refused by others: {}", refusals.join("; "))
                }
            )));
        }
        view.notice = format!(
            "dispute recorded by {recorded} notaries{}: no release unless their operators decide one",
            if refusals.is_empty() { String::new() } else { format!(" (refused by others: {})", refusals.join("; ")) }
        );
        Ok(Response::new(view))
    }

    type WatchDealStream = ViewStream;

    async fn watch_deal(&self, request: Request<v1::DealRef>) -> Result<Response<ViewStream>, Status> {
        self.check_caller(&request)?;
        // Subscribe before the first look, so no change falls between the two.
        let mut updates = self.updates.subscribe();
        let deal = request.into_inner().deal;
        if deal == EVERY_DEAL {
            return Ok(Response::new(every_change(updates)));
        }
        let first = self.get(deal).await?;
        let service = self.clone();
        let (sender, receiver) = mpsc::channel(64);
        tokio::spawn(async move {
            let deal_id = first.deal_id.clone();
            let mut last = first;
            if sender.send(Ok(last.clone())).await.is_err() || final_state(&last.state) {
                return;
            }
            loop {
                match updates.recv().await {
                    Ok(view) if view.deal_id == deal_id => {}
                    Ok(_) => continue,
                    // Fell behind: look again.
                    Err(broadcast::error::RecvError::Lagged(_)) => {}
                    Err(broadcast::error::RecvError::Closed) => return,
                }
                let Ok(next) = service.get(deal_id.clone()).await else { return };
                if next == last {
                    continue;
                }
                last = next;
                if sender.send(Ok(last.clone())).await.is_err() || final_state(&last.state) {
                    return;
                }
            }
        });
        Ok(Response::new(Box::pin(tokio_stream::wrappers::ReceiverStream::new(receiver))))
    }
}
