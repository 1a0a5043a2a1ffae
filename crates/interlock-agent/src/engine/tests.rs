//! The engine against stand-in gateways on loopback (plain HTTP/2, no TLS):
//! each serves the accounts, proposals, registrations, submissions, deal
//! notices and blocks a test gives it, and counts what the agent asked.

use super::{start, AgentConfig, Command, Input, Sending};
use crate::store::AgentStore;
use crate::terms::{draft, Proposer};
use interlock_core::crypto::{PartyKey, Secret};
use interlock_core::{DealId, DealTerms, NetworkId};
use interlock_identity::Directory;
use interlock_proto::v1;
use interlock_proto::v1::gateway_client::GatewayClient;
use interlock_proto::v1::gateway_server::{Gateway, GatewayServer};
use std::collections::HashMap;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{broadcast, mpsc, oneshot};
use tokio_stream::{Stream, StreamExt as _};
use tonic::{Request, Response, Status};

#[path = "../../tests/support/directory.rs"]
mod support;
use support::{ALPHA, BETA};

fn buyer_key() -> PartyKey {
    PartyKey::from_seed([0xb1; 32])
}

fn seller_key() -> PartyKey {
    PartyKey::from_seed([0x5e; 32])
}

fn now_ms() -> u64 {
    u64::try_from(std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis()).unwrap()
}

fn directory() -> Directory {
    support::two_networks(&buyer_key(), &seller_key())
}

/// What a stand-in gateway holds and what it was asked.
#[derive(Default)]
struct Books {
    /// Each account's balances: asset code to amount.
    balances: HashMap<Vec<u8>, Vec<(String, u128)>>,
    /// Answer every proposal with this refusal.
    refuse_proposals: Option<Status>,
    proposals: usize,
    registrations: usize,
    submissions: usize,
}

#[derive(Clone)]
struct StandIn {
    books: Arc<Mutex<Books>>,
    notices: broadcast::Sender<v1::DealNotice>,
    blocks: broadcast::Sender<v1::BlockEvents>,
}

impl StandIn {
    fn books(&self) -> std::sync::MutexGuard<'_, Books> {
        self.books.lock().unwrap()
    }

    fn set_balance(&self, key: &PartyKey, code: &str, amount: u128) {
        self.books().balances.insert(key.public().0.to_vec(), vec![(code.to_owned(), amount)]);
    }
}

type Streamed<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send>>;

fn follow<T: Clone + Send + 'static>(sender: &broadcast::Sender<T>) -> Streamed<T> {
    let stream = tokio_stream::wrappers::BroadcastStream::new(sender.subscribe());
    Box::pin(stream.filter_map(|item| item.ok().map(Ok)))
}

#[tonic::async_trait]
impl Gateway for StandIn {
    async fn propose_deal(&self, _: Request<v1::SignedDeal>) -> Result<Response<v1::DealNotice>, Status> {
        let mut books = self.books();
        books.proposals += 1;
        match &books.refuse_proposals {
            Some(status) => Err(status.clone()),
            None => Ok(Response::new(v1::DealNotice::default())),
        }
    }

    async fn register_deal(&self, _: Request<v1::SignedDeal>) -> Result<Response<v1::DealNotice>, Status> {
        self.books().registrations += 1;
        Ok(Response::new(v1::DealNotice::default()))
    }

    type WatchDealsStream = Streamed<v1::DealNotice>;

    async fn watch_deals(&self, _: Request<v1::WatchDealsRequest>) -> Result<Response<Self::WatchDealsStream>, Status> {
        Ok(Response::new(follow(&self.notices)))
    }

    async fn get_deal(&self, _: Request<v1::GetDealRequest>) -> Result<Response<v1::DealStatus>, Status> {
        Err(Status::unimplemented("not in this stand-in"))
    }

    type WatchDealStream = Streamed<v1::DealEvent>;

    async fn watch_deal(&self, _: Request<v1::WatchDealRequest>) -> Result<Response<Self::WatchDealStream>, Status> {
        Err(Status::unimplemented("not in this stand-in"))
    }

    async fn subscribe(&self, _: Request<v1::SubscribeRequest>) -> Result<Response<v1::SubscribeResponse>, Status> {
        Err(Status::unimplemented("not in this stand-in"))
    }

    async fn submit(&self, _: Request<v1::SubmitRequest>) -> Result<Response<v1::SubmitResponse>, Status> {
        // Taken into the mempool; what its block makes of it, the blocks tell.
        self.books().submissions += 1;
        Ok(Response::new(v1::SubmitResponse::default()))
    }

    async fn get_account(&self, request: Request<v1::GetAccountRequest>) -> Result<Response<v1::Account>, Status> {
        let books = self.books();
        let balances = books.balances.get(&request.get_ref().account).ok_or_else(|| Status::not_found("no account"))?;
        let balances =
            balances.iter().map(|(asset, amount)| v1::Balance { asset: asset.clone(), amount: amount.to_string() });
        Ok(Response::new(v1::Account { registered: true, nonce: 0, balances: balances.collect() }))
    }

    async fn get_reservation(
        &self,
        _: Request<v1::GetReservationRequest>,
    ) -> Result<Response<v1::Reservation>, Status> {
        // No reservation ever lands on the stand-in's chain.
        Err(Status::not_found("no such reservation"))
    }

    type StreamBlocksStream = Streamed<v1::BlockEvents>;

    async fn stream_blocks(
        &self,
        _: Request<v1::StreamBlocksRequest>,
    ) -> Result<Response<Self::StreamBlocksStream>, Status> {
        Ok(Response::new(follow(&self.blocks)))
    }
}

/// Serves a stand-in gateway for `network` on loopback; its blocks, one per
/// 50 ms stamped with the time, move the network's clock.
async fn stand_in(network: NetworkId) -> (StandIn, GatewayClient<tonic::transport::Channel>) {
    let (notices, _) = broadcast::channel(64);
    let (blocks, _) = broadcast::channel(64);
    let gateway = StandIn { books: Arc::default(), notices, blocks };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let served = GatewayServer::new(gateway.clone());
    tokio::spawn(async move {
        let incoming = tokio_stream::wrappers::TcpListenerStream::new(listener);
        tonic::transport::Server::builder().add_service(served).serve_with_incoming(incoming).await.unwrap();
    });
    let blocks = gateway.blocks.clone();
    tokio::spawn(async move {
        for height in 1.. {
            let header = v1::BlockHeader { network: network.0, height, timestamp_ms: now_ms(), ..Default::default() };
            let _ = blocks.send(v1::BlockEvents { header: Some(header), events: Vec::new(), rolled_back: false });
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    });
    let channel = tonic::transport::Channel::from_shared(format!("http://{address}")).unwrap().connect_lazy();
    (gateway, GatewayClient::new(channel))
}

/// A running agent of `party` and the stand-ins of both networks.
struct Agent {
    inputs: mpsc::Sender<Input>,
    alpha: StandIn,
    beta: StandIn,
    _dir: tempfile::TempDir,
}

async fn agent(party: &str, key: PartyKey, auto_accept: bool, withdrawn_retention_ms: u64) -> Agent {
    let dir = tempfile::tempdir().unwrap();
    let ((alpha, alpha_client), (beta, beta_client)) = (stand_in(ALPHA).await, stand_in(BETA).await);
    let config = AgentConfig {
        party: party.into(),
        key,
        directory: Arc::new(directory()),
        gateways: [(ALPHA, alpha_client), (BETA, beta_client)].into(),
        notaries: Vec::new(),
        store: AgentStore::open(&dir.path().join("agent.sqlite")).unwrap(),
        clock: now_ms,
        auto_accept,
        verbose: false,
        submitters: HashMap::new(),
        keepers: HashMap::new(),
        timings: HashMap::new(),
        withdrawn_retention_ms,
    };
    let (inputs, _) = start(config).unwrap();
    // The agent follows the stand-ins' notices from now on.
    tokio::time::sleep(Duration::from_millis(300)).await;
    Agent { inputs, alpha, beta, _dir: dir }
}

fn proposal(payment: &str, delivery: &str, window_ms: u64) -> v1::ProposeDealRequest {
    let leg = |spec: &str| {
        let (amount, rest) = spec.split_once(' ').unwrap();
        let (asset, network) = rest.split_once('@').unwrap();
        v1::LegSpec { network: network.into(), asset: asset.into(), amount: amount.into() }
    };
    v1::ProposeDealRequest {
        counterparty: "seller".into(),
        role: "buyer".into(),
        mode: "hashlock".into(),
        payment: Some(leg(payment)),
        delivery: Some(leg(delivery)),
        window_ms,
        ..Default::default()
    }
}

impl Agent {
    async fn ask<T>(&self, command: impl FnOnce(super::Reply<T>) -> Command) -> Result<T, Status> {
        let (reply, answer) = oneshot::channel();
        self.inputs.send(Input::Command(command(reply))).await.unwrap();
        answer.await.unwrap()
    }

    async fn propose(&self, request: v1::ProposeDealRequest) -> Result<(v1::DealView, Sending), Status> {
        self.ask(|reply| Command::Propose(Box::new(request), reply)).await
    }

    async fn view(&self, deal: &str) -> Result<v1::DealView, Status> {
        self.ask(|reply| Command::Get(deal.to_owned(), reply)).await
    }

    async fn list(&self, state: &str) -> Vec<String> {
        let request = v1::ListDealsRequest { state: state.into(), limit: 1_000 };
        let list = self.ask(|reply| Command::List(request, reply)).await.unwrap();
        list.deals.into_iter().map(|view| view.deal_id).collect()
    }

    /// Polls the view of `deal` until `done` holds, for at most `seconds`.
    async fn until(&self, deal: &str, seconds: u64, done: impl Fn(&v1::DealView) -> bool) -> v1::DealView {
        let started = std::time::Instant::now();
        loop {
            // Not found yet: the notice that brings it may still be on its way.
            let view = self.view(deal).await;
            if let Ok(view) = &view {
                if done(view) {
                    return view.clone();
                }
            }
            assert!(started.elapsed() < Duration::from_secs(seconds), "deal {deal} never got there: {view:?}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

fn steps(view: &v1::DealView) -> Vec<&str> {
    view.steps.iter().map(|step| step.text.as_str()).collect()
}

/// The buyer's terms for `request`, as its agent would draft them.
fn buyers_terms(request: &v1::ProposeDealRequest) -> (DealTerms, Secret) {
    let directory = directory();
    let entry = directory.party("buyer").unwrap().clone();
    let (keepers, timings) = (HashMap::new(), HashMap::new());
    let proposer = Proposer { entry: &entry, is_buyer: true, keepers: &keepers, timings: &timings };
    let (terms, secret) = draft(&directory, proposer, request, now_ms(), 7, Secret([9; 32])).unwrap();
    (terms, secret.unwrap())
}

fn notice(kind: &str, terms: &DealTerms, buyer: bool, seller: bool) -> v1::DealNotice {
    let deal_id = terms.id();
    let buyer = buyer.then(|| buyer_key().sign_deal(deal_id));
    let seller = seller.then(|| seller_key().sign_deal(deal_id));
    v1::DealNotice {
        seq: 1,
        deal_id: deal_id.0 .0.to_vec(),
        kind: kind.into(),
        deal: Some(interlock_rpc::wire::signed_deal(terms, buyer.as_ref(), seller.as_ref())),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_proposal_the_buyers_balance_cannot_cover_is_refused_before_anything_is_signed() {
    let buyer = agent("buyer", buyer_key(), false, 60_000).await;
    buyer.alpha.set_balance(&buyer_key(), "USD", 999_950);

    let refused = buyer.propose(proposal("2000000 USD@alpha", "10 GOLD@beta", 30_000)).await.err().unwrap();
    assert_eq!(refused.code(), tonic::Code::FailedPrecondition, "{refused:?}");
    assert_eq!(
        refused.message(),
        "refused before signing: the payment of 2000000 USD on alpha is not covered: this party's account there holds 999950 USD"
    );
    assert!(buyer.list("").await.is_empty(), "nothing was recorded, let alone signed");

    // What the balance covers is proposed as before.
    let (view, _) = buyer.propose(proposal("25 USD@alpha", "10 GOLD@beta", 30_000)).await.unwrap();
    assert_eq!(view.state, "proposed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_seller_refuses_to_accept_a_payment_it_sees_the_buyer_cannot_fund() {
    let request = proposal("2000000 USD@alpha", "10 GOLD@beta", 30_000);
    let (terms, _) = buyers_terms(&request);
    let deal = terms.id().to_string();

    // By hand: the operator's accept is refused, and nothing is registered.
    let seller = agent("seller", seller_key(), false, 60_000).await;
    seller.alpha.set_balance(&buyer_key(), "USD", 999_950);
    seller.alpha.notices.send(notice("proposed", &terms, true, false)).unwrap();
    seller.until(&deal, 10, |view| view.state == "received").await;
    let refused = seller.ask(|reply| Command::Accept(deal.clone(), reply)).await.err().unwrap();
    assert_eq!(
        refused.message(),
        "refused before signing: the payment of 2000000 USD on alpha is not covered: buyer's account there holds 999950 USD"
    );

    // Accepting by itself: the proposal is withdrawn, saying why.
    let automatic = agent("seller", seller_key(), true, 60_000).await;
    automatic.alpha.set_balance(&buyer_key(), "USD", 999_950);
    automatic.alpha.notices.send(notice("proposed", &terms, true, false)).unwrap();
    let view = automatic.until(&deal, 10, |view| view.state == "withdrawn").await;
    assert!(steps(&view).iter().any(|step| step.ends_with("buyer's account there holds 999950 USD")), "{view:?}");
    for books in [seller.alpha.books(), seller.beta.books(), automatic.alpha.books(), automatic.beta.books()] {
        assert_eq!(books.registrations, 0, "no registration of a deal the buyer cannot fund");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reservation_that_never_lands_says_why_once_and_its_leg_shows_never_reserved() {
    let buyer = agent("buyer", buyer_key(), false, 60_000).await;
    buyer.alpha.set_balance(&buyer_key(), "USD", 999_950);
    let (view, sending) = buyer.propose(proposal("600000 USD@alpha", "10 GOLD@beta", 3_000)).await.unwrap();
    // Another deal takes most of the balance before this one reserves; the
    // ledger then drops each reservation from its block, silently.
    buyer.alpha.set_balance(&buyer_key(), "USD", 399_950);
    let terms = interlock_core::encoding::decode_terms(&sending.deal.terms_encoded).unwrap();
    buyer.alpha.notices.send(notice("registered", &terms, true, true)).unwrap();

    let ended = buyer.until(&view.deal_id, 20, |view| view.state == "refunded").await;
    let told = "notice: reserve payment on alpha refused: the leg needs 600000 USD, and this party's account there holds 399950 USD";
    let steps = steps(&ended);
    assert_eq!(steps.iter().filter(|step| **step == told).count(), 1, "told once: {steps:?}");
    assert!(buyer.alpha.books().submissions > 2, "the saga resubmitted: {steps:?}");
    assert_eq!(ended.own_leg, "never reserved", "{ended:?}");
    assert_eq!(ended.counter_leg, "never reserved", "{ended:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn withdrawn_proposals_leave_the_working_set_after_the_retention_and_stay_in_the_history() {
    let buyer = agent("buyer", buyer_key(), false, 300).await;
    buyer.alpha.set_balance(&buyer_key(), "USD", 999_950);
    buyer.alpha.books().refuse_proposals = Some(Status::unavailable("tcp connect error"));
    let (view, sending) = buyer.propose(proposal("25 USD@alpha", "10 GOLD@beta", 30_000)).await.unwrap();
    // As the service does: the proposal goes to the gateway, which is down.
    let result =
        sending.gateway.clone().propose_deal(sending.deal).await.map(|_| ()).map_err(|s| s.message().to_owned());
    assert!(result.is_err());
    let deal_id = DealId(interlock_core::Hash32::from_hex(&view.deal_id).unwrap());
    let gateway = sending.gateway_name;
    buyer.inputs.send(Input::Proposed { deal_id, gateway, result }).await.unwrap();
    buyer.until(&view.deal_id, 5, |view| view.state == "withdrawn").await;
    assert_eq!(buyer.list("withdrawn").await, vec![view.deal_id.clone()]);

    // After the retention (checked once a second) it leaves the lists ...
    let started = std::time::Instant::now();
    while !buyer.list("").await.is_empty() {
        assert!(started.elapsed() < Duration::from_secs(5), "the withdrawn deal stays in the working set");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(buyer.list("withdrawn").await.is_empty());
    // ... and its history stays: by id and by prefix.
    for name in [view.deal_id.as_str(), &view.deal_id[..10]] {
        let kept = buyer.view(name).await.unwrap();
        assert_eq!(kept.state, "withdrawn");
        assert!(steps(&kept).iter().any(|step| step.starts_with("withdrawn: the proposal did not reach")), "{kept:?}");
    }
}
