//! The deal registry: the gateway's store together with what it keeps in
//! memory to route chain events (the registered deals, and events of deals not
//! registered yet). Every method writes one [`Batch`]: the notice or events
//! and the messages they owe the other networks' gateways commit together.

use super::checks::{other_network, sign_lock_assertion};
use super::error::GatewayError;
use crate::gateway_store::{
    Batch, Committed, EventKind, GatewayStore, NewEvent, Notice, NoticeKind, SettledEvent, SignedTerms,
};
use interlock_chain::Cursor;
use interlock_core::crypto::{PartyKey, Secret, Token};
use interlock_core::encoding::{Decode, Encode};
use interlock_core::{Address, DealId, DealTerms, EscrowEvent, Hash32, LegKind, NetworkId, Reservation, Settlement};
use interlock_identity::Directory;
use interlock_proto::v1;
use interlock_rpc::store::StoreError;
use prost::Message as _;
use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

/// Chain events of deals not registered (yet) kept for when they are.
pub const PENDING_EVENTS_MAX: usize = 100_000;
/// Most assertions or notifications in one message to a peer.
pub const PEER_BATCH_MAX: usize = 1_024;

/// Outbox message kinds.
pub(crate) const FORWARD: &str = "forward";
pub(crate) const ASSERT: &str = "assert";
pub(crate) const NOTIFY: &str = "notify";

/// An escrow event of this gateway's network, where it was committed.
pub(crate) use crate::gateway_store::ChainRecord as Observed;

/// Events of unregistered deals, oldest deal evicted first past the limit.
/// The store keeps the same events (`pending_events`), so they survive a
/// restart that resumes reading the chain after them; evicted deals are
/// forgotten there by the next write.
#[derive(Default)]
struct Pending {
    by_deal: HashMap<DealId, Vec<Observed>>,
    order: VecDeque<DealId>,
    count: usize,
    /// Deals evicted here and not yet forgotten in the store.
    evicted: Vec<DealId>,
}

impl Pending {
    fn push(&mut self, observed: Observed) {
        let deal_id = observed.event.deal_id();
        let events = self.by_deal.entry(deal_id).or_default();
        if events.is_empty() {
            self.order.push_back(deal_id);
        }
        events.push(observed);
        self.count += 1;
        while self.count > PENDING_EVENTS_MAX {
            let Some(oldest) = self.order.pop_front() else { break };
            if let Some(events) = self.by_deal.remove(&oldest) {
                self.count -= events.len();
                self.evicted.push(oldest);
            }
        }
    }

    fn take(&mut self, deal_id: DealId) -> Vec<Observed> {
        let events = self.by_deal.remove(&deal_id).unwrap_or_default();
        self.count -= events.len();
        // `order` forgets taken deals lazily; compact it once stale ids dominate,
        // so it stays bounded without a scan per registration.
        if self.order.len() > 2 * self.by_deal.len() + 1_024 {
            let by_deal = &self.by_deal;
            self.order.retain(|id| by_deal.contains_key(id));
        }
        events
    }
}

/// Assertions and notifications owed to each peer, gathered over one write.
#[derive(Default)]
struct Outgoing {
    assertions: HashMap<NetworkId, Vec<v1::LockAssertion>>,
    notifications: HashMap<NetworkId, Vec<v1::Notification>>,
}

impl Outgoing {
    fn flush(self, batch: &mut Batch<'_>) -> Result<(), StoreError> {
        for (peer, assertions) in self.assertions {
            for chunk in assertions.chunks(PEER_BATCH_MAX) {
                let message = v1::LockAssertions { assertions: chunk.to_vec() };
                batch.enqueue(peer, ASSERT, &message.encode_to_vec())?;
            }
        }
        for (peer, notifications) in self.notifications {
            for chunk in notifications.chunks(PEER_BATCH_MAX) {
                let message = v1::Notifications { notifications: chunk.to_vec() };
                batch.enqueue(peer, NOTIFY, &message.encode_to_vec())?;
            }
        }
        Ok(())
    }
}

/// What recording a peer's notifications did.
pub(crate) struct Notified {
    /// How many notifications were new.
    pub accepted: u32,
    /// Hashlock secrets revealed for the first time.
    pub learned: Vec<(DealId, Secret)>,
    /// Deals a peer's execution showed committed (with a certificate that verifies).
    pub commits: Vec<DealId>,
    pub committed: Committed,
}

pub(crate) struct Registry {
    pub(crate) store: GatewayStore,
    context: Context,
    registered: HashMap<DealId, Arc<DealTerms>>,
    pending: Pending,
}

/// What the registry knows that never changes: whose gateway it is and who
/// is who.
struct Context {
    network: NetworkId,
    key: PartyKey,
    directory: Arc<Directory>,
    /// Networks whose gateway this one can reach.
    peers: Vec<NetworkId>,
    /// The account the gateway's keeper signs for on its network, when it keeps:
    /// executions and cancellations by it are the keeper's.
    keeper: Option<Address>,
}

/// A signed deal as the wire carries it.
pub(crate) fn signed_deal(deal: &SignedTerms) -> v1::SignedDeal {
    interlock_rpc::wire::signed_deal(&deal.terms, deal.buyer_signature.as_ref(), deal.seller_signature.as_ref())
}

pub(crate) fn notice_message(notice: &Notice) -> v1::DealNotice {
    v1::DealNotice {
        seq: notice.seq,
        deal_id: notice.deal.deal_id().0 .0.to_vec(),
        kind: notice.kind.as_str().into(),
        deal: Some(signed_deal(&notice.deal)),
    }
}

impl Registry {
    pub(crate) fn open(
        store: GatewayStore,
        network: NetworkId,
        key: PartyKey,
        directory: Arc<Directory>,
        peers: Vec<NetworkId>,
    ) -> Result<Registry, StoreError> {
        let (registered, pending) = remembered(&store)?;
        let context = Context { network, key, directory, peers, keeper: None };
        Ok(Registry { store, context, registered, pending })
    }

    /// Counts executions and cancellations by `keeper` (the account the
    /// gateway's keeper signs for) as the keeper's.
    pub(crate) fn keeping_with(mut self, keeper: Option<Address>) -> Registry {
        self.context.keeper = keeper;
        self
    }

    /// Records a proposal or registration (idempotent: a notice recorded before
    /// is returned as it was, and nothing is written). With `forward`, the
    /// notice is queued for the gateway of the deal's other network. A new
    /// registration also records the deal's chain events seen before it.
    pub(crate) fn accept(
        &mut self,
        kind: NoticeKind,
        deal: &SignedTerms,
        forward: bool,
        now_ms: u64,
    ) -> Result<(Notice, Committed), StoreError> {
        let deal_id = deal.deal_id();
        let mut batch = self.store.batch()?;
        let (seq, new) = batch.add_notice(kind, deal)?;
        let notice = Notice { seq, kind, deal: deal.clone() };
        if !new {
            return Ok((notice, Committed::default()));
        }
        batch.put_deal(deal, kind == NoticeKind::Registered)?;
        let (event_kind, text) = match kind {
            NoticeKind::Proposed => (EventKind::Proposed, format!("proposed: {}", self.context.summary(&deal.terms))),
            NoticeKind::Registered => (
                EventKind::Registered,
                format!("registered, signed by both parties: {}", self.context.summary(&deal.terms)),
            ),
        };
        batch.add_event(&NewEvent::of_deal(deal_id, event_kind, self.context.network, now_ms, text))?;
        if let Some(peer) = self.context.peer_of(&deal.terms).filter(|_| forward) {
            let message = notice_message(&Notice { seq: 0, kind, deal: deal.clone() });
            batch.enqueue(peer, FORWARD, &message.encode_to_vec())?;
        }
        let newly_registered = kind == NoticeKind::Registered && !self.registered.contains_key(&deal_id);
        let earlier = if newly_registered { self.pending.take(deal_id) } else { Vec::new() };
        let mut outgoing = Outgoing::default();
        let written = self
            .context
            .record_chain(&mut batch, &deal.terms, &earlier, &mut outgoing)
            .and_then(|()| if earlier.is_empty() { Ok(()) } else { batch.forget_pending(deal_id) })
            .and_then(|()| outgoing.flush(&mut batch))
            .and_then(|()| batch.commit());
        match written {
            Ok(mut committed) => {
                if newly_registered {
                    self.registered.insert(deal_id, deal.terms.clone());
                    committed.registered = Some(deal.terms.clone());
                }
                Ok((notice, committed))
            }
            Err(error) => {
                for observed in earlier {
                    self.pending.push(observed);
                }
                Err(error)
            }
        }
    }

    /// Records one block's escrow events: for registered deals as events (and
    /// lock assertions or notifications for the other leg's gateway), the rest
    /// kept in case their deal is registered later.
    /// The terms of every deal registered here.
    /// The terms of a deal registered here.
    pub(crate) fn registered(&self, deal_id: DealId) -> Option<Arc<DealTerms>> {
        self.registered.get(&deal_id).cloned()
    }

    pub(crate) fn registered_terms(&self) -> Vec<Arc<DealTerms>> {
        self.registered.values().cloned().collect()
    }

    ///
    /// With `cursor`, the follower's persisted position moves to it in the
    /// same commit. Without it and with no events (a heartbeat block whose
    /// cursor the caller saves later) nothing is written, so no fsync. A
    /// failed write changes nothing, here or in memory: the caller records
    /// the same block again.
    pub(crate) fn observe_block(
        &mut self,
        observed: Vec<Observed>,
        cursor: Option<Cursor>,
    ) -> Result<Committed, StoreError> {
        if observed.is_empty() && cursor.is_none() {
            return Ok(Committed::default());
        }
        let mut batch = self.store.batch()?;
        let mut outgoing = Outgoing::default();
        let mut unregistered = Vec::new();
        for event in observed {
            match self.registered.get(&event.event.deal_id()).cloned() {
                Some(terms) => {
                    self.context.record_chain(&mut batch, &terms, std::slice::from_ref(&event), &mut outgoing)?
                }
                None => unregistered.push(event),
            }
        }
        for event in &unregistered {
            batch.add_pending(event)?;
        }
        for deal_id in &self.pending.evicted {
            batch.forget_pending(*deal_id)?;
        }
        if let Some(cursor) = cursor {
            batch.set_cursor(cursor)?;
        }
        outgoing.flush(&mut batch)?;
        let committed = batch.commit()?;
        self.pending.evicted.clear();
        for event in unregistered {
            self.pending.push(event);
        }
        Ok(committed)
    }

    /// Refuses the whole batch if any item puts a leg of a registered deal on a
    /// network other than the asserting one.
    fn check_peer_legs<'e>(
        &self,
        from: NetworkId,
        events: impl Iterator<Item = &'e EscrowEvent>,
    ) -> Result<(), GatewayError> {
        for event in events {
            let Some(terms) = self.registered.get(&event.deal_id()) else { continue };
            let leg_network = terms.leg(event.leg()).network;
            if leg_network != from {
                return Err(GatewayError::Denied(format!(
                    "the gateway of {from} reports the {} leg of deal {}, which the terms put on {leg_network}",
                    event.leg(),
                    event.deal_id()
                )));
            }
        }
        Ok(())
    }

    /// Records reservations the gateway of `from` asserted, for registered
    /// deals. Returns how many were new.
    pub(crate) fn record_assertions(
        &mut self,
        from: NetworkId,
        assertions: Vec<(u64, Reservation)>,
    ) -> Result<(u32, Committed), GatewayError> {
        let events: Vec<(u64, EscrowEvent)> =
            assertions.into_iter().map(|(height, reservation)| (height, EscrowEvent::Reserved(reservation))).collect();
        self.check_peer_legs(from, events.iter().map(|(_, event)| event))?;
        let mut batch = self.store.batch()?;
        let mut accepted = 0u32;
        for (height, event) in &events {
            if !self.registered.contains_key(&event.deal_id()) {
                continue;
            }
            let EscrowEvent::Reserved(reservation) = event else { unreachable!("built as reservations") };
            let record = NewEvent {
                deal_id: event.deal_id(),
                kind: EventKind::PeerReserved,
                subject: reservation.id.0,
                network: from,
                height: *height,
                timestamp_ms: 0,
                event: event.to_bytes(),
                text: self.context.describe(EventKind::PeerReserved, event, from),
            };
            if batch.add_event(&record)?.is_some() {
                accepted += 1;
            }
        }
        Ok((accepted, batch.commit()?))
    }

    /// Records executions and cancellations the gateway of `from` reported,
    /// for registered deals, and learns each hashlock secret an execution
    /// revealed (if it opens the deal's hashlock). Returns how many were new
    /// and the secrets learned.
    pub(crate) fn record_notifications(
        &mut self,
        from: NetworkId,
        notifications: Vec<(u64, u64, EscrowEvent)>,
        learned_ms: u64,
    ) -> Result<Notified, GatewayError> {
        self.check_peer_legs(from, notifications.iter().map(|(_, _, event)| event))?;
        let mut batch = self.store.batch()?;
        let mut accepted = 0u32;
        let mut learned = Vec::new();
        let mut commits = Vec::new();
        for (height, timestamp_ms, event) in &notifications {
            let Some(terms) = self.registered.get(&event.deal_id()) else { continue };
            if commit_token(terms, event).is_some() {
                commits.push(event.deal_id());
            }
            let (kind, reservation, token) = match event {
                EscrowEvent::Executed { reservation, token, .. } => (EventKind::PeerExecuted, reservation, Some(token)),
                EscrowEvent::Cancelled { reservation, .. } => (EventKind::PeerCancelled, reservation, None),
                EscrowEvent::Reserved(_) | EscrowEvent::Held { .. } => {
                    unreachable!("notifications are decoded as executions or cancellations")
                }
            };
            let record = NewEvent {
                deal_id: event.deal_id(),
                kind,
                subject: reservation.0,
                network: from,
                height: *height,
                timestamp_ms: *timestamp_ms,
                event: event.to_bytes(),
                text: self.context.describe(kind, event, from),
            };
            if batch.add_event(&record)?.is_none() {
                continue;
            }
            accepted += 1;
            self.context.derive_outcome(&mut batch, terms)?;
            let hashlock = match &terms.settlement {
                Settlement::Hashlock { hash, .. } => Some(*hash),
                Settlement::Notary { .. } => None,
            };
            if let (Some(Token::Secret(secret)), Some(hash)) = (token, hashlock) {
                if secret.hash() == hash && batch.learn_secret(event.deal_id(), *secret, learned_ms)? {
                    learned.push((event.deal_id(), *secret));
                }
            }
        }
        Ok(Notified { accepted, learned, commits, committed: batch.commit()? })
    }

    /// Records that a party disputed `deal_id` inside its inspection window,
    /// as `notary` (one of the deal's notaries) recorded it: once per deal,
    /// on both gateways under the same event id.
    pub(crate) fn record_dispute(
        &mut self,
        deal_id: DealId,
        notary: &str,
        reason: &str,
        now_ms: u64,
    ) -> Result<Committed, GatewayError> {
        let mut batch = self.store.batch()?;
        if self.registered.contains_key(&deal_id) {
            let text = format!(
                "disputed inside the inspection window ({notary} recorded it): {reason:?}; the notaries' operators \
                 decide release or reverse"
            );
            batch.add_event(&NewEvent::of_deal(deal_id, EventKind::Disputed, self.context.network, now_ms, text))?;
        }
        Ok(batch.commit()?)
    }

    /// Registered deals whose recorded executions, here or reported by a peer,
    /// show the notaries committed: what the keeper must know again on restart.
    pub(crate) fn committed_deals(&mut self) -> Result<Vec<DealId>, StoreError> {
        let batch = self.store.batch()?;
        let mut found = Vec::new();
        for (deal_id, terms) in &self.registered {
            for settled in batch.settlements(*deal_id)? {
                let Ok(event) = EscrowEvent::from_bytes(&settled.event) else { continue };
                if commit_token(terms, &event).is_some() {
                    found.push(*deal_id);
                    break;
                }
            }
        }
        Ok(found)
    }
}

/// What the registry keeps in memory, read from the store: the registered
/// deals and the events of deals not registered yet.
fn remembered(store: &GatewayStore) -> Result<(HashMap<DealId, Arc<DealTerms>>, Pending), StoreError> {
    let registered = store
        .deals()?
        .into_iter()
        .filter(|record| record.registered)
        .map(|record| (record.deal.deal_id(), record.deal.terms))
        .collect();
    let mut pending = Pending::default();
    for observed in store.pending_events()? {
        pending.push(observed);
    }
    Ok((registered, pending))
}

/// The gateway's writes go through one [`GroupWriter`](interlock_rpc::store::GroupWriter):
/// each is a registry method (one [`Batch`], a savepoint) run in the group's
/// transaction.
impl interlock_rpc::store::GroupStore for Registry {
    fn connection(&self) -> &rusqlite::Connection {
        self.store.connection()
    }

    /// A group that did not commit may have registered deals or taken
    /// pending events in memory: read both back from the file.
    fn reload(&mut self) -> Result<(), StoreError> {
        let (registered, pending) = remembered(&self.store)?;
        self.registered = registered;
        self.pending = pending;
        Ok(())
    }
}

/// The commit certificate `event` executed with, when it verifies against the
/// deal's notary set.
fn commit_token<'a>(terms: &DealTerms, event: &'a EscrowEvent) -> Option<&'a interlock_core::Certificate> {
    let (EscrowEvent::Executed { token: Token::Certificate(certificate), deal_id, .. }
    | EscrowEvent::Held { token: Token::Certificate(certificate), deal_id, .. }) = event
    else {
        return None;
    };
    let Settlement::Notary { notaries, threshold, .. } = &terms.settlement else { return None };
    certificate.verify(*deal_id, interlock_core::Decision::Commit, notaries, *threshold).ok().map(|_| certificate)
}

/// How one leg ended, where and when.
struct LegEnd {
    kind: LegKind,
    executed: bool,
    network: NetworkId,
    height: u64,
    timestamp_ms: u64,
}

/// Both legs' ends, when both legs ended the same way.
struct Outcome {
    executed: bool,
    payment: LegEnd,
    delivery: LegEnd,
}

/// The deal's outcome from its recorded executions and cancellations: `None`
/// while a leg is open, or when
/// the legs ended differently (no outcome to announce; the events say what
/// happened).
fn outcome(settlements: &[SettledEvent]) -> Option<Outcome> {
    let mut payment = None;
    let mut delivery = None;
    for settled in settlements {
        let Ok(event) = EscrowEvent::from_bytes(&settled.event) else { continue };
        let executed = match event {
            EscrowEvent::Executed { .. } => true,
            EscrowEvent::Cancelled { .. } => false,
            EscrowEvent::Reserved(_) | EscrowEvent::Held { .. } => continue,
        };
        let kind = event.leg();
        let (network, height, timestamp_ms) = (settled.network, settled.height, settled.timestamp_ms);
        let end = LegEnd { kind, executed, network, height, timestamp_ms };
        let slot = if kind == LegKind::Payment { &mut payment } else { &mut delivery };
        slot.get_or_insert(end);
    }
    let (payment, delivery) = (payment?, delivery?);
    (payment.executed == delivery.executed).then_some(Outcome { executed: payment.executed, payment, delivery })
}

impl Context {
    fn peer_of(&self, terms: &DealTerms) -> Option<NetworkId> {
        other_network(terms, self.network).filter(|peer| self.peers.contains(peer))
    }

    fn record_chain(
        &self,
        batch: &mut Batch<'_>,
        terms: &DealTerms,
        observed: &[Observed],
        outgoing: &mut Outgoing,
    ) -> Result<(), StoreError> {
        let peer = self.peer_of(terms);
        let gateway = self.keeper;
        let mut settled = false;
        for item in observed {
            let (kind, subject, by_keeper) = match &item.event {
                EscrowEvent::Reserved(reservation) => (EventKind::Reserved, reservation.id, None),
                EscrowEvent::Executed { reservation, by, .. } => {
                    (EventKind::Executed, *reservation, (Some(*by) == gateway).then_some(EventKind::KeeperExecuted))
                }
                EscrowEvent::Cancelled { reservation, by, .. } => {
                    (EventKind::Cancelled, *reservation, (Some(*by) == gateway).then_some(EventKind::KeeperCancelled))
                }
                EscrowEvent::Held { reservation, .. } => (EventKind::Held, *reservation, None),
            };
            let mut record = NewEvent {
                deal_id: item.event.deal_id(),
                kind,
                subject: subject.0,
                network: self.network,
                height: item.height,
                timestamp_ms: item.timestamp_ms,
                event: item.event.to_bytes(),
                text: self.describe(kind, &item.event, self.network),
            };
            if batch.add_event(&record)?.is_none() {
                continue;
            }
            if let Some(keeper_kind) = by_keeper {
                record.kind = keeper_kind;
                record.text = self.describe(keeper_kind, &item.event, self.network);
                batch.add_event(&record)?;
            }
            // Held is not an end: the verdict that follows is.
            settled |= !matches!(kind, EventKind::Reserved | EventKind::Held);
            let Some(peer) = peer else { continue };
            match &item.event {
                EscrowEvent::Reserved(reservation) => {
                    let assertion =
                        sign_lock_assertion(&self.key, self.network, item.height, item.block_hash, reservation);
                    outgoing.assertions.entry(peer).or_default().push(assertion);
                }
                EscrowEvent::Held { .. } => {}
                EscrowEvent::Executed { .. } | EscrowEvent::Cancelled { .. } => {
                    outgoing.notifications.entry(peer).or_default().push(v1::Notification {
                        network: self.network.0,
                        height: item.height,
                        timestamp_ms: item.timestamp_ms,
                        event_encoded: record.event,
                    });
                }
            }
        }
        if settled {
            self.derive_outcome(batch, terms)?;
        }
        Ok(())
    }

    /// Records `completed` (both legs executed) or `refunded` (both
    /// cancelled) once both legs are final as this gateway has seen them: its
    /// own network's events and the other gateway's notifications. The event
    /// takes the network, height and time of the later leg, so both gateways
    /// record the same one.
    fn derive_outcome(&self, batch: &mut Batch<'_>, terms: &DealTerms) -> Result<(), StoreError> {
        let deal_id = terms.id();
        let settlements = batch.settlements(deal_id)?;
        let Some(outcome) = outcome(&settlements) else { return Ok(()) };
        let describe = |leg: &LegEnd| format!("{} on {} at height {}", leg.kind, leg.network, leg.height);
        let (kind, verb) =
            if outcome.executed { (EventKind::Completed, "executed") } else { (EventKind::Refunded, "cancelled") };
        let text = format!(
            "{}: both legs {verb} ({}; {})",
            kind.as_str(),
            describe(&outcome.payment),
            describe(&outcome.delivery)
        );
        let later = if (outcome.payment.timestamp_ms, outcome.payment.network.0)
            >= (outcome.delivery.timestamp_ms, outcome.delivery.network.0)
        {
            &outcome.payment
        } else {
            &outcome.delivery
        };
        batch.add_event(&NewEvent {
            deal_id,
            kind,
            subject: Hash32([0; 32]),
            network: later.network,
            height: later.height,
            timestamp_ms: later.timestamp_ms,
            event: Vec::new(),
            text,
        })?;
        Ok(())
    }

    fn name(&self, address: &Address, network: NetworkId) -> String {
        let party = self.directory.parties.iter().find(|party| party.account(network) == Some(*address));
        if let Some(party) = party {
            return party.name.clone();
        }
        let gateway = self.directory.gateways.iter().find(|gateway| Address::from_bytes(gateway.key.0) == *address);
        match gateway {
            Some(gateway) => format!("gateway {}", gateway.name),
            None => {
                let hex = address.to_string();
                format!("{}…", &hex[..hex.len().min(10)])
            }
        }
    }

    fn summary(&self, terms: &DealTerms) -> String {
        let party = |key: interlock_core::PartyId| {
            super::checks::party_by_key(&self.directory, key)
                .map_or_else(|| interlock_core::hash::to_hex(&key.0[..4]), |party| party.name.clone())
        };
        format!(
            "{} pays {} on {} to {} for {} on {} ({})",
            party(terms.buyer),
            terms.payment.asset,
            terms.payment.network,
            party(terms.seller),
            terms.delivery.asset,
            terms.delivery.network,
            terms.mode()
        )
    }

    /// A sentence about an escrow event, for people.
    fn describe(&self, kind: EventKind, event: &EscrowEvent, network: NetworkId) -> String {
        let prefix = match kind {
            EventKind::PeerReserved | EventKind::PeerExecuted | EventKind::PeerCancelled => {
                format!("the gateway of {network} reports: ")
            }
            EventKind::KeeperExecuted | EventKind::KeeperCancelled => "this gateway's keeper acted: ".to_string(),
            _ => String::new(),
        };
        let sentence = match event {
            EscrowEvent::Reserved(reservation) => format!(
                "{} leg reserved on {network}: {} from {} for {}, expires at {} ms",
                reservation.leg,
                reservation.asset,
                self.name(&reservation.owner, network),
                self.name(&reservation.beneficiary, network),
                reservation.expiry_ms
            ),
            EscrowEvent::Executed { leg, by, to, asset, .. } => format!(
                "{leg} leg executed on {network}: {asset} to {} (signed by {})",
                self.name(to, network),
                self.name(by, network)
            ),
            EscrowEvent::Cancelled { leg, by, to, asset, .. } => format!(
                "{leg} leg cancelled on {network}: {asset} back to {} (signed by {})",
                self.name(to, network),
                self.name(by, network)
            ),
            EscrowEvent::Held { leg, by, beneficiary, asset, .. } => format!(
                "{leg} leg executed on {network} and held for inspection: {asset} for {} (signed by {})",
                self.name(beneficiary, network),
                self.name(by, network)
            ),
        };
        format!("{prefix}{sentence}")
    }
}
