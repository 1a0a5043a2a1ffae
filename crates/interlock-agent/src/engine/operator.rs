//! The operator's commands — propose, accept, cancel, show and list deals —
//! and the deal views the engine answers them with.

use super::funds::Draft;
use super::{role_index, signed_deal, status_word, Changes, Command, Engine, Pending, Sending};
use crate::store::{AgentDeal, DealState};
use crate::terms::{draft, Proposer};
use interlock_core::crypto::Secret;
use interlock_core::saga::{LegStatus, Outcome, Role};
use interlock_core::{Asset, DealId, DealTerms, Hash32, LegKind, Settlement};
use interlock_proto::v1;
use interlock_proto::v1::gateway_client::GatewayClient;
use interlock_rpc::wire;
use tonic::transport::Channel;
use tonic::Status;

/// How many deals `ListDeals` answers with when the request does not say.
pub const LIST_LIMIT_DEFAULT: usize = 100;
/// The most deals one `ListDeals` answers with; a larger limit is refused.
pub const LIST_LIMIT_MAX: usize = 1_000;

/// The deal's policy in a line, for its view.
fn policy_text(policy: &interlock_core::Policy) -> String {
    let timeout = match policy.on_timeout {
        interlock_core::OnTimeout::Refund => "refund".to_owned(),
        interlock_core::OnTimeout::ExtendOnce { by_ms } => format!("extend once by {} s", by_ms.div_ceil(1_000)),
    };
    let assets = if policy.allowed_assets.is_empty() {
        "any".to_owned()
    } else {
        interlock_core::assets_text(&policy.allowed_assets)
    };
    let limit = |limit: Option<u128>| limit.map_or_else(|| "none".to_owned(), |max| max.to_string());
    let inspection = policy.inspection.map_or_else(|| "none".to_owned(), |inspection| inspection.to_string());
    format!(
        "on timeout: {timeout}; assets: {assets}; max per deal: {}; max per party per day: {}; inspection: {inspection}",
        limit(policy.amount_max),
        limit(policy.amount_max_per_day)
    )
}

/// A leg's status once its deal ended.
fn ended_word(status: LegStatus) -> &'static str {
    match status {
        LegStatus::Open => "never reserved",
        other => status_word(other),
    }
}

fn steps<'a>(steps: impl Iterator<Item = &'a (u64, String)>) -> Vec<v1::DealStep> {
    steps.map(|(at_ms, text)| v1::DealStep { at_ms: *at_ms, text: text.clone() }).collect()
}

pub(super) fn role_word(role: Role) -> &'static str {
    match role {
        Role::Buyer => "buyer",
        Role::Seller => "seller",
    }
}

impl Engine {
    pub(super) fn on_command(&mut self, command: Command, now: u64, changes: &mut Changes) {
        match command {
            Command::Propose(request, reply) => match self.propose(&request, now) {
                Ok((terms, secret, role)) => {
                    let counterparty = request.counterparty.clone();
                    self.check_draft(Draft { terms, secret, role, counterparty, reply }, now, changes);
                }
                Err(status) => {
                    let _ = reply.send(Err(status));
                }
            },
            Command::Accept(deal, reply) => match self.resolve(&deal).and_then(|id| self.acceptable(id, now)) {
                Ok(deal_id) => self.check_accept(deal_id, Some(reply), now, changes),
                Err(status) => {
                    let _ = reply.send(Err(status));
                }
            },
            Command::Cancel(deal, reply) => match self.resolve(&deal).and_then(|id| self.cancel(id, now, changes)) {
                Ok(deal_id) => changes.replies.push(Pending::View(deal_id, reply)),
                Err(status) => {
                    let _ = reply.send(Err(status));
                }
            },
            Command::Get(deal, reply) => {
                let _ = reply.send(self.resolve(&deal).and_then(|deal_id| self.view(deal_id)));
            }
            Command::List(request, reply) => {
                let _ = reply.send(self.list(&request));
            }
            Command::Dispute(request, reply) => {
                let _ =
                    reply.send(self.resolve(&request.deal).and_then(|deal_id| self.dispute(deal_id, &request.reason)));
            }
        }
    }

    pub(super) fn home_gateway(
        &self,
        terms: &DealTerms,
        role: Role,
    ) -> Result<(GatewayClient<Channel>, String), Status> {
        let network = terms.leg(role.own_leg()).network;
        let client =
            self.gateways.get(&network).cloned().ok_or_else(|| {
                Status::failed_precondition(format!("this agent has no gateway for network {network}"))
            })?;
        Ok((client, self.gateway_name(network)))
    }

    /// Drafts a proposal; it is signed once its payment is seen to be covered.
    fn propose(&self, request: &v1::ProposeDealRequest, now: u64) -> Result<(DealTerms, Option<Secret>, Role), Status> {
        let is_buyer = match request.role.as_str() {
            "buyer" | "" => true,
            "seller" => false,
            other => return Err(Status::invalid_argument(format!("role {other:?}: expected buyer or seller"))),
        };
        let random = crate::random_bytes().map_err(|error| Status::internal(format!("no randomness: {error}")))?;
        let nonce = u64::from_be_bytes(random[..8].try_into().expect("8 bytes"));
        let secret = Secret(Hash32::sha256(&[b"interlock/secret", &random]).0);
        let proposer = Proposer { entry: &self.party, is_buyer, keepers: &self.keepers, timings: &self.timings };
        let (terms, secret) = draft(&self.directory, proposer, request, now, nonce, secret)?;
        let role = if is_buyer { Role::Buyer } else { Role::Seller };
        // Before anything is signed: the proposal must have a gateway to go to.
        self.home_gateway(&terms, role)?;
        Ok((terms, secret, role))
    }

    /// `deal_id` if it is a received proposal still in time to accept.
    pub(super) fn acceptable(&self, deal_id: DealId, now: u64) -> Result<DealId, Status> {
        let deal = self.deals.get(&deal_id).ok_or_else(|| Status::not_found(format!("no deal {deal_id}")))?;
        if deal.state != DealState::Received {
            return Err(Status::failed_precondition(format!(
                "deal {deal_id} is {}: only a received proposal can be accepted",
                deal.state.as_str()
            )));
        }
        deal.terms
            .check_fresh(now)
            .map_err(|error| Status::failed_precondition(format!("too late to accept deal {deal_id}: {error}")))?;
        Ok(deal_id)
    }

    /// Countersigns a received proposal.
    pub(super) fn accept(&mut self, deal_id: DealId, now: u64, changes: &mut Changes) -> Result<Sending, Status> {
        self.acceptable(deal_id, now)?;
        let key = self.key.clone();
        let deal = self.deals.get_mut(&deal_id).ok_or_else(|| Status::not_found(format!("no deal {deal_id}")))?;
        deal.signatures[role_index(deal.role)] = Some(key.sign_deal(deal_id));
        let (terms, role, signatures) = (deal.terms.clone(), deal.role, deal.signatures);
        let (gateway, gateway_name) = self.home_gateway(&terms, role)?;
        changes.step(deal_id, now, "accepted".to_owned());
        Ok(Sending { gateway, gateway_name, deal: signed_deal(&terms, &signatures) })
    }

    fn cancel(&mut self, deal_id: DealId, now: u64, changes: &mut Changes) -> Result<DealId, Status> {
        let deal = self.deals.get_mut(&deal_id).ok_or_else(|| Status::not_found(format!("no deal {deal_id}")))?;
        match deal.state {
            DealState::Proposed | DealState::Received => {
                self.withdraw(deal_id, now, changes, "withdrawn by this party");
                Ok(deal_id)
            }
            DealState::Running => Err(Status::failed_precondition(format!(
                "deal {deal_id} is running: its reservations may be on chain, so it cannot be withdrawn; it completes, or refunds by itself at its deadline ({} ms since the epoch)",
                deal.terms.last_deadline_ms()
            ))),
            state => Err(Status::failed_precondition(format!("deal {deal_id} is already {}", state.as_str()))),
        }
    }

    fn resolve(&self, text: &str) -> Result<DealId, Status> {
        let text = text.trim().to_ascii_lowercase();
        let text = text.strip_prefix("0x").unwrap_or(&text);
        if text.is_empty() || !text.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(Status::invalid_argument(format!(
                "deal {text:?}: expected a deal id in hex (64 digits) or a prefix of one"
            )));
        }
        if let Some(hash) = Hash32::from_hex(text) {
            let deal_id = DealId(hash);
            return if self.deals.contains_key(&deal_id) || self.retired.contains(&deal_id) {
                Ok(deal_id)
            } else {
                Err(Status::not_found(format!("this agent has no deal {deal_id}")))
            };
        }
        let known = self.deals.keys().chain(&self.retired);
        let found: Vec<DealId> = known.filter(|id| id.0.to_hex().starts_with(text)).copied().take(2).collect();
        match found.as_slice() {
            [one] => Ok(*one),
            [] => Err(Status::not_found(format!("this agent has no deal starting with {text}"))),
            _ => Err(Status::invalid_argument(format!("more than one deal starts with {text}: give more digits"))),
        }
    }

    fn leg_text(&self, terms: &DealTerms, leg: LegKind) -> String {
        let leg = terms.leg(leg);
        let asset = match &leg.asset {
            Asset::Fungible { code, amount } => format!("{amount} {}", code.as_str()),
            Asset::Unique { class, item } => format!("{} {item:?}", class.as_str()),
        };
        format!("{asset} on {}", self.network_name(leg.network))
    }

    pub(super) fn view(&mut self, deal_id: DealId) -> Result<v1::DealView, Status> {
        let unreadable =
            |error: interlock_rpc::store::StoreError| Status::internal(format!("cannot read deal {deal_id}: {error}"));
        if !self.deals.contains_key(&deal_id) && self.retired.contains(&deal_id) {
            // Out of the working set: the history has it.
            let deal = self.store.deal(deal_id).map_err(unreadable)?;
            let deal = deal.ok_or_else(|| Status::not_found(format!("no deal {deal_id}")))?;
            let mut view = self.summary(&deal);
            view.steps = steps(self.store.steps(deal_id).map_err(unreadable)?.iter());
            return Ok(view);
        }
        let deal = self.deals.get(&deal_id).ok_or_else(|| Status::not_found(format!("no deal {deal_id}")))?;
        if !self.steps.contains_key(&deal_id) {
            self.steps.insert(deal_id, self.store.steps(deal_id).map_err(unreadable)?);
        }
        let mut view = self.summary(deal);
        view.steps = steps(self.steps[&deal_id].iter());
        Ok(view)
    }

    pub(super) fn summary(&self, deal: &AgentDeal) -> v1::DealView {
        let deal_id = deal.deal_id();
        let (own, counter) = match (self.live.get(&deal_id), self.ended_legs.get(&deal_id)) {
            // The verdict moved both held legs back after the saga ended.
            _ if deal.state == DealState::Reversed => ("returned", "returned"),
            (Some(live), _) => (status_word(live.saga.own_status()), status_word(live.saga.counter_status())),
            // A leg still open when the deal ended was never reserved.
            (None, Some((own, counter))) => (ended_word(*own), ended_word(*counter)),
            (None, None) => match deal.state {
                DealState::Ended(Outcome::Completed) | DealState::Released => ("executed", "executed"),
                DealState::Ended(_) => ("ended", "ended"),
                DealState::Withdrawn => ("never reserved", "never reserved"),
                _ => ("open", "open"),
            },
        };
        v1::DealView {
            deal_id: deal_id.to_string(),
            role: role_word(deal.role).to_owned(),
            counterparty: self.counterparty_name(&deal.terms, deal.role),
            mode: deal.terms.mode().to_string(),
            state: deal.state.as_str().to_owned(),
            payment: self.leg_text(&deal.terms, LegKind::Payment),
            delivery: self.leg_text(&deal.terms, LegKind::Delivery),
            own_leg: own.to_owned(),
            counter_leg: counter.to_owned(),
            deadline_ms: deal.terms.last_deadline_ms(),
            steps: Vec::new(),
            notice: deal.notice.text.clone(),
            policy: policy_text(&deal.terms.policy),
            inspection_ends_ms: deal.terms.inspection_ends_ms().unwrap_or(0),
            disputer: deal
                .terms
                .policy
                .inspection
                .map(|inspection| inspection.disputer.to_string())
                .unwrap_or_default(),
        }
    }

    /// Signs this party's dispute of `deal_id`, if the deal has an inspection
    /// period that lets it dispute (the notaries judge the window).
    fn dispute(&self, deal_id: DealId, reason: &str) -> Result<super::Disputing, Status> {
        let deal = self.deals.get(&deal_id).ok_or_else(|| Status::not_found(format!("no deal {deal_id}")))?;
        let inspection = deal.terms.policy.inspection.ok_or_else(|| {
            Status::failed_precondition(format!(
                "deal {deal_id} has no inspection period: its legs paid out when they were executed"
            ))
        })?;
        if !inspection.disputer.may_dispute(&deal.terms, &self.key.public()) {
            return Err(Status::permission_denied(format!(
                "deal {deal_id}'s policy lets {} dispute, and this party is its {}",
                inspection.disputer,
                role_word(deal.role)
            )));
        }
        if reason.len() > interlock_core::limits::DISPUTE_REASON_LEN_MAX {
            return Err(Status::invalid_argument(format!(
                "reason: {} bytes, at most {}",
                reason.len(),
                interlock_core::limits::DISPUTE_REASON_LEN_MAX
            )));
        }
        // A release needs k signatures: it is stopped only once no k of the n
        // notaries are left without the dispute.
        let needed = match &deal.terms.settlement {
            Settlement::Notary { notaries, threshold, .. } => notaries.len() + 1 - usize::from(*threshold),
            Settlement::Hashlock { .. } => 1,
        };
        let dispute = interlock_core::verdict::Dispute::sign(&self.key, deal_id, reason);
        Ok(super::Disputing { deal_id, dispute, notaries: self.notaries.clone(), needed })
    }

    fn list(&self, request: &v1::ListDealsRequest) -> Result<v1::DealList, Status> {
        if !request.state.is_empty() && DealState::parse(&request.state).is_none() {
            let states: Vec<&str> = DealState::ALL.iter().map(|state| state.as_str()).collect();
            return Err(Status::invalid_argument(format!(
                "state {:?}: expected one of {}",
                request.state,
                states.join(", ")
            )));
        }
        let limit = wire::list_limit("limit", request.limit, LIST_LIMIT_DEFAULT, LIST_LIMIT_MAX)?;
        let mut deals: Vec<&AgentDeal> =
            self.deals.values().filter(|d| request.state.is_empty() || d.state.as_str() == request.state).collect();
        deals.sort_by_key(|d| std::cmp::Reverse((d.created_ms, d.deal_id())));
        Ok(v1::DealList { deals: deals.into_iter().take(limit).map(|d| self.summary(d)).collect() })
    }
}
