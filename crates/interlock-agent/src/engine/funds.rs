//! Whether the buyer can fund the payment, asked of the payment network's
//! gateway (`Gateway.GetAccount`) before this party signs anything: the buyer
//! looks at its own account when it proposes or accepts, the seller at the
//! buyer's when it accepts. Before that, on each network where this party
//! signs itself, whether that network's platform can hold the deal's leg
//! there at all (a script chain refuses an output its node calls dust). And
//! why a reservation did not land, told once.
//!
//! A check that cannot see the account (a network whose parties send to the
//! chain themselves, a gateway that is down or does not let this party read
//! it) lets the deal go on: the chain refuses what cannot be funded anyway,
//! and the saga refunds.

use super::{leg_word, Changes, Engine, Input, Reply, Sending};
use crate::store::{AgentDeal, DealState};
use interlock_chain::ChainErrorKind;
use interlock_core::crypto::Secret;
use interlock_core::saga::{LegStatus, Role};
use interlock_core::{Asset, AssetCode, DealId, DealTerms, LegKind, NetworkId, ReservationId};
use interlock_proto::v1;
use interlock_proto::v1::gateway_client::GatewayClient;
use std::sync::Arc;
use std::time::Duration;
use tonic::transport::Channel;
use tonic::{Code, Status};

/// How long a funds check waits for the gateway before letting the deal go on.
const FUNDS_CHECK_TIME_MAX: Duration = Duration::from_secs(3);
/// Reservation refusals told per deal (each different reason once).
pub(super) const REFUSALS_TOLD_MAX: usize = 8;
/// Resubmissions of a reservation after which the agent stops asking its
/// gateway why the earlier ones did not land.
const RESERVE_DIAGNOSES_MAX: u8 = 3;

/// A proposal drafted but not signed: it waits for its funds check.
pub(crate) struct Draft {
    pub terms: DealTerms,
    pub secret: Option<Secret>,
    pub role: Role,
    pub counterparty: String,
    pub reply: Reply<(v1::DealView, Sending)>,
}

/// One look at an account: does it hold `amount` of `code`?
struct FundsCheck {
    gateway: GatewayClient<Channel>,
    account: [u8; 32],
    code: AssetCode,
    amount: u128,
    /// Says the shortfall: `short(held)` is the text the party reads.
    short: Box<dyn FnOnce(u128) -> String + Send>,
    /// A reservation that, once found on chain, explains the shortfall: the
    /// funds went into it, landing after the look that missed it.
    landed: Option<ReservationId>,
}

impl FundsCheck {
    /// The shortfall's text, or `None` if the account holds enough or cannot be seen.
    async fn run(mut self) -> Option<String> {
        let request = v1::GetAccountRequest { account: self.account.to_vec() };
        let answer = tokio::time::timeout(FUNDS_CHECK_TIME_MAX, self.gateway.get_account(request)).await.ok()?;
        let held = match answer {
            Ok(account) => held(&account.into_inner(), &self.code)?,
            // The ledger knows no such account: it holds nothing.
            Err(status) if status.code() == Code::NotFound => 0,
            Err(_) => return None,
        };
        if held >= self.amount {
            return None;
        }
        if let Some(reservation) = self.landed {
            let request = v1::GetReservationRequest { reservation_id: reservation.0 .0.to_vec() };
            let found = tokio::time::timeout(FUNDS_CHECK_TIME_MAX, self.gateway.get_reservation(request)).await.ok()?;
            if !matches!(found, Err(status) if status.code() == Code::NotFound) {
                return None;
            }
        }
        Some((self.short)(held))
    }
}

/// One leg the platform of its network checks before this party signs.
type LegCheck = (Arc<dyn interlock_chain::Submitter>, LegKind, String);

/// Why a leg's network refuses it, else the payment's shortfall; `None` when
/// neither is seen (a check that cannot answer lets the deal go on).
async fn refusal(terms: DealTerms, legs: Vec<LegCheck>, funds: Option<FundsCheck>) -> Option<String> {
    for (submitter, leg, network) in legs {
        let checked = tokio::time::timeout(FUNDS_CHECK_TIME_MAX, submitter.check_leg(&terms, leg)).await;
        if let Ok(Err(error)) = checked {
            if matches!(error.kind, ChainErrorKind::Rejected | ChainErrorKind::Fatal) {
                return Some(format!("{network} cannot hold the deal's {} leg: {}", leg_word(leg), error.message));
            }
        }
    }
    match funds {
        Some(check) => check.run().await,
        None => None,
    }
}

/// What `account` holds of `code`; `None` if its answer cannot be read.
fn held(account: &v1::Account, code: &AssetCode) -> Option<u128> {
    let balance = account.balances.iter().find(|balance| balance.asset == code.as_str());
    balance.map_or(Some(0), |balance| balance.amount.parse().ok())
}

impl Engine {
    /// The check of `terms`' payment leg this party can make through its
    /// gateway, or `None` where it cannot see the buyer's account.
    fn payment_check(&self, terms: &DealTerms, role: Role) -> Option<FundsCheck> {
        let leg = terms.leg(LegKind::Payment);
        let Asset::Fungible { code, amount } = &leg.asset else { return None };
        // Where parties send to the chain themselves, the gateway reads no accounts.
        if self.submitters.contains_key(&leg.network) {
            return None;
        }
        let gateway = self.gateways.get(&leg.network)?.clone();
        let account: [u8; 32] = leg.owner.as_bytes().try_into().ok()?;
        let whose = match role {
            Role::Buyer => "this party's account".to_owned(),
            Role::Seller => format!("{}'s account", self.counterparty_name(terms, role)),
        };
        let (network, needed, code_text) = (self.network_name(leg.network), *amount, code.to_string());
        let short = move |held: u128| {
            format!(
                "the payment of {needed} {code_text} on {network} is not covered: {whose} there holds {held} {code_text}"
            )
        };
        Some(FundsCheck { gateway, account, code: code.clone(), amount: *amount, short: Box::new(short), landed: None })
    }

    /// The legs of `terms` on networks where this party signs itself: their
    /// platforms check them before it signs.
    fn leg_checks(&self, terms: &DealTerms) -> Vec<LegCheck> {
        [LegKind::Payment, LegKind::Delivery]
            .into_iter()
            .filter_map(|leg| {
                let network = terms.leg(leg).network;
                self.submitters.get(&network).map(|submitter| (submitter.clone(), leg, self.network_name(network)))
            })
            .collect()
    }

    /// Signs `draft` once its legs' networks can hold them and its payment is
    /// seen to be covered (or either cannot be seen).
    pub(super) fn check_draft(&mut self, draft: Draft, now: u64, changes: &mut Changes) {
        let legs = self.leg_checks(&draft.terms);
        let check = self.payment_check(&draft.terms, draft.role);
        if legs.is_empty() && check.is_none() {
            self.sign_draft(draft, now, changes);
            return;
        }
        let inputs = self.inputs.clone();
        let terms = draft.terms.clone();
        tokio::spawn(async move {
            let shortfall = refusal(terms, legs, check).await;
            let _ = inputs.send(Input::Drafted { draft: Box::new(draft), shortfall }).await;
        });
    }

    pub(super) fn on_drafted(&mut self, draft: Draft, shortfall: Option<String>, now: u64, changes: &mut Changes) {
        match shortfall {
            Some(text) => {
                let _ = draft.reply.send(Err(Status::failed_precondition(format!("refused before signing: {text}"))));
            }
            None => self.sign_draft(draft, now, changes),
        }
    }

    /// Countersigns a received proposal once its payment is seen to be
    /// covered; answers `reply`, or without one (accepting by itself)
    /// registers the deal or withdraws it.
    pub(super) fn check_accept(
        &mut self,
        deal_id: DealId,
        reply: Option<Reply<(DealId, Sending)>>,
        now: u64,
        changes: &mut Changes,
    ) {
        let Some(deal) = self.deals.get(&deal_id) else {
            self.on_checked(deal_id, reply, None, now, changes);
            return;
        };
        let terms = (*deal.terms).clone();
        let (legs, check) = (self.leg_checks(&terms), self.payment_check(&terms, deal.role));
        if legs.is_empty() && check.is_none() {
            self.on_checked(deal_id, reply, None, now, changes);
            return;
        }
        let inputs = self.inputs.clone();
        tokio::spawn(async move {
            let shortfall = refusal(terms, legs, check).await;
            let _ = inputs.send(Input::Checked { deal_id, reply, shortfall }).await;
        });
    }

    pub(super) fn on_checked(
        &mut self,
        deal_id: DealId,
        reply: Option<Reply<(DealId, Sending)>>,
        shortfall: Option<String>,
        now: u64,
        changes: &mut Changes,
    ) {
        let accepted = match shortfall {
            Some(text) => Err(Status::failed_precondition(format!("refused before signing: {text}"))),
            None => self.accept(deal_id, now, changes),
        };
        match (accepted, reply) {
            (Ok(sending), Some(reply)) => changes.replies.push(super::Pending::Accept(deal_id, sending, reply)),
            (Ok(sending), None) => self.register(deal_id, sending),
            (Err(status), Some(reply)) => {
                let _ = reply.send(Err(status));
            }
            (Err(status), None) => {
                let received = self.deals.get(&deal_id).is_some_and(|deal| deal.state == DealState::Received);
                if received {
                    let why = format!("withdrawn: not accepted: {}", status.message());
                    self.withdraw(deal_id, now, changes, &why);
                }
            }
        }
    }

    /// Signs and records a proposal; its answer waits for the write.
    fn sign_draft(&mut self, draft: Draft, now: u64, changes: &mut Changes) {
        let Draft { terms, secret, role, counterparty, reply } = draft;
        let deal_id = terms.id();
        let mut signatures = [None, None];
        signatures[super::role_index(role)] = Some(self.key.sign_deal(deal_id));
        let (gateway, gateway_name) = match self.home_gateway(&terms, role) {
            Ok(found) => found,
            Err(status) => {
                let _ = reply.send(Err(status));
                return;
            }
        };
        let deal = super::signed_deal(&terms, &signatures);
        let state = DealState::Proposed;
        let terms = Arc::new(terms);
        let notice = Default::default();
        self.deals.insert(deal_id, AgentDeal { terms, signatures, role, state, secret, created_ms: now, notice });
        self.steps.insert(deal_id, Vec::new());
        changes.step(deal_id, now, format!("drafted for {counterparty} as {}", super::operator::role_word(role)));
        changes.replies.push(super::Pending::Propose(deal_id, Sending { gateway, gateway_name, deal }, reply));
    }

    /// A reservation of this party's `leg` on `network` was refused or did not
    /// land: tells the party why, once per reason.
    pub(super) fn on_refused(&mut self, deal_id: DealId, text: String, now: u64, changes: &mut Changes) {
        // Seen reserved since: whatever was refused, the leg is in place.
        let open = self.live.get(&deal_id).is_some_and(|live| live.saga.own_status() == LegStatus::Open);
        if !open {
            return;
        }
        let told = self.refusals_told.entry(deal_id).or_default();
        if told.contains(&text) || told.len() >= REFUSALS_TOLD_MAX {
            return;
        }
        told.push(text.clone());
        if !self.verbose {
            // A verbose agent logs every step, this one included.
            let _deal = super::deal_span(deal_id, &self.party.name).entered();
            tracing::warn!("{text}");
        }
        self.tell_notice(deal_id, now, text, None, changes);
    }

    /// Counts a submission of this party's reservation; from the second on
    /// (the first did not land), asks the gateway whether the account can
    /// fund it, and tells the party if not.
    pub(super) fn diagnose_reservation(&mut self, deal_id: DealId, network: NetworkId, leg: LegKind) {
        let attempts = self.reserve_attempts.entry(deal_id).or_default();
        *attempts = attempts.saturating_add(1);
        if *attempts < 2 || *attempts > RESERVE_DIAGNOSES_MAX + 1 {
            return;
        }
        let Some(deal) = self.deals.get(&deal_id) else { return };
        let Some(check) = self.own_leg_check(&deal.terms, leg, network) else { return };
        let inputs = self.inputs.clone();
        tokio::spawn(async move {
            if let Some(text) = check.run().await {
                let _ = inputs.send(Input::Refused { deal_id, text }).await;
            }
        });
    }

    /// The check of this party's own `leg` before it reserves it again.
    fn own_leg_check(&self, terms: &DealTerms, leg: LegKind, network: NetworkId) -> Option<FundsCheck> {
        let spec = terms.leg(leg);
        let Asset::Fungible { code, amount } = &spec.asset else { return None };
        if self.submitters.contains_key(&network) {
            return None;
        }
        let gateway = self.gateways.get(&network)?.clone();
        let account: [u8; 32] = spec.owner.as_bytes().try_into().ok()?;
        let (what, network_name, needed, code_text) =
            (leg_word(leg), self.network_name(network), *amount, code.to_string());
        let short = move |held: u128| {
            format!(
                "reserve {what} on {network_name} refused: the leg needs {needed} {code_text}, and this party's account there holds {held} {code_text}"
            )
        };
        let landed = Some(terms.reservation_id(terms.id(), leg));
        Some(FundsCheck { gateway, account, code: code.clone(), amount: *amount, short: Box::new(short), landed })
    }
}

/// Whether a refusal of a submission is news for the party: not a passing
/// condition, nor an operation already done.
pub(super) fn refusal_worth_telling(status: &Status) -> bool {
    let kind = status
        .metadata()
        .get(interlock_rpc::status::KIND_METADATA)
        .and_then(|value| value.to_str().ok())
        .and_then(interlock_chain::ChainErrorKind::from_wire);
    let passing = matches!(
        status.code(),
        Code::Unavailable | Code::DeadlineExceeded | Code::Cancelled | Code::ResourceExhausted | Code::AlreadyExists
    );
    !passing
        && !matches!(
            kind,
            Some(interlock_chain::ChainErrorKind::AlreadyDone | interlock_chain::ChainErrorKind::RetryLater)
        )
}
