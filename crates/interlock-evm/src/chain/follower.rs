//! [`EvmFollower`]: the escrow's logs, read at a confirmation depth and turned
//! back into the core's escrow events.

use super::logs::{logs_from, LogSpan};
use super::{core_address, reservations_on, AssetMap, ChainError};
use crate::bindings::InterlockEscrow;
use crate::error::EvmError;
use crate::platform::Finality;
use crate::reservation::EvmReservation;
use alloy::eips::BlockNumberOrTag;
use alloy::network::TransactionResponse;
use alloy::primitives::{Address, B256};
use alloy::providers::{DynProvider, Provider};
use alloy::rpc::types::Filter;
use alloy::sol_types::SolEvent;
use interlock_core::{
    Certificate, DealId, DealTerms, Decision, EscrowEvent, LegKind, NetworkId, Reservation, ReservationId,
    ReservationState, ReserveRequest, Token,
};
use std::collections::{BTreeSet, HashMap, VecDeque};

/// Blocks whose hashes a follower remembers to notice a reorg deeper than its depth.
const DELIVERED_REMEMBERED: usize = 64;
/// Reservation ids one lookup query names, at most.
pub const LOOKUP_IDS_MAX: usize = 100;

/// One escrow event, confirmed.
#[derive(Clone, Debug)]
pub struct FollowedEvent {
    pub height: u64,
    pub tx_hash: B256,
    pub event: EscrowEvent,
}

/// What one poll learned.
#[derive(Clone, Debug, Default)]
pub struct Followed {
    pub events: Vec<FollowedEvent>,
    /// Reservations of watched deals whose commitment is not the deal's terms.
    pub mismatched: Vec<ReservationId>,
    /// The timestamp of the newest confirmed block, unix milliseconds: every
    /// event up to it has been delivered.
    pub chain_time_ms: Option<u64>,
}

/// Reads the escrow's logs at a confirmation depth.
pub struct EvmFollower {
    network: NetworkId,
    provider: DynProvider,
    escrow: Address,
    assets: AssetMap,
    depth: u64,
    next_block: u64,
    /// Where the follower started: what it rolls back to when every block it
    /// remembers was reorganised away.
    start: interlock_chain::Cursor,
    watched: HashMap<ReservationId, (ReserveRequest, EvmReservation)>,
    delivered: VecDeque<(u64, B256)>,
    /// Confirmed logs of reservations no watched deal had when they were read,
    /// kept (up to [`UNMATCHED_MAX`]) for a deal the follower learns of later.
    unmatched: HashMap<ReservationId, Vec<RawLog>>,
    unmatched_count: usize,
    /// Logs of a deal watched after they were read, delivered by the next poll.
    late: Vec<RawLog>,
    /// Some unmatched logs were not kept: [`UNMATCHED_MAX`] was reached.
    unmatched_overflowed: bool,
    /// How many blocks the next log query spans.
    span: LogSpan,
    /// The first block that can hold the escrow's events, as far as the
    /// follower knows: the deploy height, else the first block it reads.
    origin: u64,
    /// Reservations watched after blocks the follower did not read itself
    /// may have held their events: the next poll looks them up on chain.
    lookups: BTreeSet<ReservationId>,
    /// Whether a block must also be at or below the node's `finalized` block.
    finality: Finality,
}

/// A confirmed escrow log, not yet turned into an event.
#[derive(Clone, Debug)]
struct RawLog {
    height: u64,
    /// Its place in its block.
    index: u64,
    tx_hash: B256,
    log: alloy::primitives::Log,
}

impl RawLog {
    /// A log the node returned, unless it is flagged removed (its block
    /// reorganised away while we read) or lacks its place on chain.
    fn confirmed(log: alloy::rpc::types::Log) -> Option<RawLog> {
        if log.removed {
            return None;
        }
        let (Some(height), Some(index), Some(tx_hash)) = (log.block_number, log.log_index, log.transaction_hash) else {
            return None;
        };
        Some(RawLog { height, index, tx_hash, log: log.inner })
    }

    /// Every escrow event indexes the reservation id as its one topic after the signature.
    fn reservation_id(&self) -> Option<ReservationId> {
        self.log.topics().get(1).map(|topic| ReservationId(interlock_core::Hash32(topic.0)))
    }
}

/// Logs of not-yet-watched reservations a follower keeps, at most.
pub const UNMATCHED_MAX: usize = 100_000;

impl EvmFollower {
    /// Follows the escrow at `escrow` from block `from_block`, delivering a block's
    /// events once `depth` blocks stand on it (1: the block itself).
    pub fn new(
        network: NetworkId,
        provider: DynProvider,
        escrow: Address,
        assets: AssetMap,
        depth: u64,
        from_block: u64,
    ) -> Result<EvmFollower, ChainError> {
        if depth == 0 {
            return Err(ChainError::ZeroDepth);
        }
        Ok(EvmFollower {
            network,
            provider,
            escrow,
            assets,
            depth,
            next_block: from_block,
            start: interlock_chain::Cursor::start(from_block.saturating_sub(1)),
            watched: HashMap::new(),
            delivered: VecDeque::new(),
            unmatched: HashMap::new(),
            unmatched_count: 0,
            late: Vec::new(),
            unmatched_overflowed: false,
            span: LogSpan::default(),
            origin: from_block.max(1),
            lookups: BTreeSet::new(),
            finality: Finality::Depth,
        })
    }

    /// Follows the escrow from `cursor` on: the blocks after it, checking first
    /// that the cursor's block is still on the chain (unless it is a start).
    pub fn resume(
        network: NetworkId,
        provider: DynProvider,
        escrow: Address,
        assets: AssetMap,
        depth: u64,
        cursor: interlock_chain::Cursor,
    ) -> Result<EvmFollower, ChainError> {
        let mut follower = EvmFollower::new(network, provider, escrow, assets, depth, cursor.height + 1)?;
        if !cursor.is_start() {
            follower.delivered.push_back((cursor.height, B256::from(cursor.hash.0)));
        }
        follower.start = cursor;
        Ok(follower)
    }

    /// Tells the follower the escrow's deploy height (`0`: unknown): no
    /// event is older, and a deal watched after a restart is looked up on
    /// chain from there (see [`EvmFollower::watch`]).
    pub fn with_origin(mut self, deploy_height: u64) -> EvmFollower {
        if deploy_height > 0 {
            self.origin = deploy_height;
        }
        self
    }

    /// Delivers a block's events only once the node's `finalized` block is
    /// at or past it as well (with [`Finality::Finalized`]).
    pub fn with_finality(mut self, finality: Finality) -> EvmFollower {
        self.finality = finality;
        self
    }

    pub fn network(&self) -> NetworkId {
        self.network
    }

    /// How many blocks the next log query spans.
    pub fn log_span_blocks(&self) -> u64 {
        self.span.blocks()
    }

    /// The last block delivered, or the cursor the follower started from.
    pub fn last_cursor(&self) -> interlock_chain::Cursor {
        match self.delivered.back() {
            Some((height, hash)) => interlock_chain::Cursor { height: *height, hash: interlock_core::Hash32(hash.0) },
            None => self.start,
        }
    }

    /// After a reorganisation took delivered blocks away: goes back to the newest
    /// delivered block still on the chain and returns it; the next poll reads on
    /// from there. Fails when none of the remembered blocks is left.
    pub async fn roll_back(&mut self) -> Result<interlock_chain::Cursor, ChainError> {
        while let Some(&(height, delivered)) = self.delivered.back() {
            let now = self.block_hash(height).await?;
            if now == delivered {
                self.forget_logs_after(height);
                return Ok(self.last_cursor());
            }
            self.delivered.pop_back();
        }
        let start = self.start;
        if !start.is_start() {
            let now = self.block_hash(start.height).await?;
            if now.0 != start.hash.0 {
                return Err(ChainError::ReorgBeyondDepth {
                    height: start.height,
                    delivered: B256::from(start.hash.0),
                    now,
                });
            }
        }
        self.forget_logs_after(start.height);
        Ok(start)
    }

    /// Drops the kept logs of blocks above `height` (reorganised away) and
    /// reads on from the block after it.
    fn forget_logs_after(&mut self, height: u64) {
        self.next_block = height + 1;
        self.late.retain(|log| log.height <= height);
        for logs in self.unmatched.values_mut() {
            logs.retain(|log| log.height <= height);
        }
        self.unmatched.retain(|_, logs| !logs.is_empty());
        self.unmatched_count = self.unmatched.values().map(Vec::len).sum();
    }

    /// Starts reporting the reservations of `terms`' legs on this network,
    /// including what was confirmed before it was told (from the next poll on):
    /// the logs it read itself come from memory; blocks it did not read (before
    /// it started, back to its origin) it asks the node for, by reservation id.
    /// Events it delivered before a restart may come again: callers take
    /// them idempotently.
    pub fn watch(&mut self, terms: &DealTerms) -> Result<(), ChainError> {
        for (request, reservation) in reservations_on(self.network, &self.assets, terms)? {
            let id = reservation.id();
            if self.watched.insert(id, (request, reservation)).is_some() {
                continue;
            }
            if let Some(logs) = self.unmatched.remove(&id) {
                self.unmatched_count -= logs.len();
                // Past the cap the lookup reads every block: memory would repeat it.
                if !self.unmatched_overflowed {
                    self.late.extend(logs);
                }
            }
            if self.lookup_end() >= self.origin {
                self.lookups.insert(id);
            }
        }
        Ok(())
    }

    /// The last block a lookup reads: the follower's start, whose blocks
    /// before it never read; every delivered block once unmatched logs were
    /// dropped.
    fn lookup_end(&self) -> u64 {
        match (self.unmatched_overflowed, self.delivered.back()) {
            (true, Some(&(height, _))) => height,
            _ => self.start.height.min(self.next_block.saturating_sub(1)),
        }
    }

    /// The logs of the reservations waiting for a lookup, from the origin to
    /// [`EvmFollower::lookup_end`], in chain order: [`LOOKUP_IDS_MAX`] ids per
    /// query, each over the bounded ranges of [`logs_from`].
    async fn look_up(&mut self) -> Result<Vec<RawLog>, ChainError> {
        let end = self.lookup_end();
        if self.lookups.is_empty() || end < self.origin {
            return Ok(Vec::new());
        }
        let ids: Vec<B256> = self.lookups.iter().map(|id| B256::from(id.0 .0)).collect();
        let mut found = Vec::new();
        for batch in ids.chunks(LOOKUP_IDS_MAX) {
            let filter = Filter::new().address(self.escrow).topic1(batch.to_vec());
            let mut from = self.origin;
            while from <= end {
                let (logs, to) = logs_from(&self.provider, &filter, from, end, &mut self.span).await?;
                found.extend(logs.into_iter().filter_map(RawLog::confirmed));
                from = to + 1;
            }
        }
        found.sort_by_key(|log| (log.height, log.index));
        Ok(found)
    }

    /// The newest block whose events were delivered, once there is one.
    pub fn confirmed_height(&self) -> Option<u64> {
        self.delivered.back().map(|(height, _)| *height)
    }

    pub fn is_watching(&self, deal_id: DealId) -> bool {
        LegKind::BOTH.iter().any(|leg| self.watched.contains_key(&interlock_core::reservation_id(deal_id, *leg)))
    }

    /// Stops reporting a deal (it ended).
    pub fn forget(&mut self, deal_id: DealId) {
        self.watched.retain(|_, (request, _)| request.deal_id != deal_id);
    }

    /// Reads what was confirmed since the last poll. Fails, delivering nothing,
    /// when a block it already delivered is no longer on the chain. Logs of
    /// deals watched late come with the next poll even when no new block is
    /// confirmed (then `chain_time_ms` is `None`).
    pub async fn poll(&mut self) -> Result<Followed, ChainError> {
        self.poll_blocks(false).await
    }

    /// [`EvmFollower::poll`], or `None` when no new block is confirmed; what
    /// waits to be delivered (logs of deals watched late, lookups) then waits
    /// for the next block, so every event comes with a block.
    pub async fn poll_block(&mut self) -> Result<Option<Followed>, ChainError> {
        let followed = self.poll_blocks(true).await?;
        Ok(followed.chain_time_ms.is_some().then_some(followed))
    }

    async fn poll_blocks(&mut self, need_block: bool) -> Result<Followed, ChainError> {
        let rpc = |error: alloy::transports::TransportError| EvmError::Rpc(error.to_string());
        if let Some(&(height, delivered)) = self.delivered.back() {
            let now = self.block_hash(height).await?;
            if now != delivered {
                return Err(ChainError::ReorgBeyondDepth { height, delivered, now });
            }
        }
        let head = self.provider.get_block_number().await.map_err(rpc)?;
        let after_head = head
            .checked_add(1)
            .ok_or_else(|| EvmError::Rpc(format!("the node reports block number {head}: no chain is that long")))?;
        let mut confirmed = after_head.checked_sub(self.depth);
        if self.finality == Finality::Finalized {
            confirmed = confirmed.min(Some(self.finalized_block().await?));
        }
        let confirmed = confirmed.filter(|confirmed| *confirmed >= self.next_block);
        if need_block && confirmed.is_none() {
            return Ok(Followed::default());
        }
        // Nothing changes in the follower until every read succeeded: a failed
        // poll leaves it as it was, and the next one asks again.
        let mut raw = self.look_up().await?;
        raw.extend(self.late.iter().cloned());
        let mut newest = None;
        if let Some(confirmed) = confirmed {
            let filter = Filter::new().address(self.escrow);
            let (logs, to) = logs_from(&self.provider, &filter, self.next_block, confirmed, &mut self.span).await?;
            let block = self
                .provider
                .get_block_by_number(BlockNumberOrTag::Number(to))
                .await
                .map_err(rpc)?
                .ok_or_else(|| EvmError::Rpc(format!("the node has no block {to}")))?;
            newest = Some((to, block.header.hash, block.header.timestamp));
            raw.extend(logs.into_iter().filter_map(RawLog::confirmed));
        }
        let (followed, unmatched) = self.events(raw).await?;
        self.lookups.clear();
        self.late.clear();
        for (id, log) in unmatched {
            self.keep_unmatched(id, log);
        }
        // A block read after the logs: if it moved meanwhile, the next poll's check fails.
        let mut followed = followed;
        if let Some((to, hash, timestamp)) = newest {
            self.delivered.push_back((to, hash));
            if self.delivered.len() > DELIVERED_REMEMBERED {
                self.delivered.pop_front();
            }
            self.next_block = to + 1;
            followed.chain_time_ms = Some(timestamp.saturating_mul(1000));
        }
        Ok(followed)
    }

    /// The events of watched reservations among `raw`, and the logs of the others.
    async fn events(&self, raw: Vec<RawLog>) -> Result<(Followed, Vec<(ReservationId, RawLog)>), ChainError> {
        let mut followed = Followed::default();
        let mut unmatched = Vec::new();
        let mut senders: HashMap<B256, (Address, alloy::primitives::Bytes)> = HashMap::new();
        for raw in raw {
            let Some(id) = raw.reservation_id() else { continue };
            if !self.watched.contains_key(&id) {
                unmatched.push((id, raw));
                continue;
            }
            let RawLog { height, tx_hash, log, .. } = raw;
            if let Some(event) = self.decode(&log, &mut followed.mismatched) {
                let (by, input) = match senders.get(&tx_hash) {
                    Some(known) => known.clone(),
                    None => {
                        let sender = self.sender(tx_hash).await?;
                        senders.insert(tx_hash, sender.clone());
                        sender
                    }
                };
                let event = with_certificate(with_sender(event, by), &input);
                followed.events.push(FollowedEvent { height, tx_hash, event });
            }
        }
        Ok((followed, unmatched))
    }

    /// Keeps the log of a reservation no watched deal has, up to [`UNMATCHED_MAX`];
    /// past that, a deal watched later is looked up on chain instead.
    fn keep_unmatched(&mut self, id: ReservationId, log: RawLog) {
        if self.unmatched_count >= UNMATCHED_MAX {
            self.unmatched_overflowed = true;
            return;
        }
        self.unmatched.entry(id).or_default().push(log);
        self.unmatched_count += 1;
    }

    /// The number of the node's `finalized` block.
    async fn finalized_block(&self) -> Result<u64, ChainError> {
        let block = self
            .provider
            .get_block_by_number(BlockNumberOrTag::Finalized)
            .await
            .map_err(|error| EvmError::Rpc(format!("reading the finalized block: {error}")))?;
        let block = block.ok_or_else(|| {
            EvmError::Rpc("the node names no finalized block: set finality = \"depth\" for this chain".into())
        })?;
        Ok(block.header.number)
    }

    async fn block_hash(&self, height: u64) -> Result<B256, ChainError> {
        let block = self
            .provider
            .get_block_by_number(BlockNumberOrTag::Number(height))
            .await
            .map_err(|error| EvmError::Rpc(error.to_string()))?;
        Ok(block.map_or(B256::ZERO, |block| block.header.hash))
    }

    /// The transaction's sender and calldata.
    async fn sender(&self, tx_hash: B256) -> Result<(Address, alloy::primitives::Bytes), ChainError> {
        use alloy::consensus::Transaction as _;
        let tx = self
            .provider
            .get_transaction_by_hash(tx_hash)
            .await
            .map_err(|error| EvmError::Rpc(error.to_string()))?
            .ok_or_else(|| EvmError::Rpc(format!("the node does not know transaction {tx_hash}")))?;
        Ok((tx.from(), tx.input().clone()))
    }

    /// The core's event for one of the escrow's logs, with a placeholder sender.
    fn decode(&self, log: &alloy::primitives::Log, mismatched: &mut Vec<ReservationId>) -> Option<EscrowEvent> {
        use InterlockEscrow::{Cancelled, Executed, ExecutedByCertificate, Held, Released, Reserved};
        let topics = log.topics();
        let topic = *topics.first()?;
        // Every escrow event names the contract's reservation id first, indexed.
        let (request, reservation) = self.watched.get(&ReservationId(interlock_core::Hash32(topics.get(1)?.0)))?;
        let event = match topic {
            topic if topic == Reserved::SIGNATURE_HASH => {
                let event = Reserved::decode_log_data(&log.data).ok()?;
                if event.commitment != reservation.commitment() {
                    mismatched.push(reservation.id());
                    return None;
                }
                EscrowEvent::Reserved(core_reservation(request))
            }
            topic if topic == Executed::SIGNATURE_HASH => {
                let event = Executed::decode_log_data(&log.data).ok()?;
                executed(request, Token::Secret(interlock_core::Secret(event.secret.0)))
            }
            // The log does not repeat the signatures: `with_certificate` reads them
            // from the transaction's calldata, which the contract checked.
            topic if topic == ExecutedByCertificate::SIGNATURE_HASH => {
                executed(request, unsigned(request, Decision::Commit))
            }
            topic if topic == Released::SIGNATURE_HASH => executed(request, unsigned(request, Decision::Release)),
            topic if topic == Held::SIGNATURE_HASH => EscrowEvent::Held {
                reservation: interlock_core::reservation_id(request.deal_id, request.leg),
                deal_id: request.deal_id,
                leg: request.leg,
                by: request.beneficiary,
                beneficiary: request.beneficiary,
                asset: request.asset.clone(),
                token: unsigned(request, Decision::Commit),
            },
            topic if topic == Cancelled::SIGNATURE_HASH => EscrowEvent::Cancelled {
                reservation: interlock_core::reservation_id(request.deal_id, request.leg),
                deal_id: request.deal_id,
                leg: request.leg,
                by: request.owner,
                to: request.owner,
                asset: request.asset.clone(),
            },
            _ => return None,
        };
        Some(event)
    }
}

/// A certificate of `decision` on the request's deal, its signatures still to
/// be read from the transaction that presented it.
fn unsigned(request: &ReserveRequest, decision: Decision) -> Token {
    Token::Certificate(Certificate { deal_id: request.deal_id, decision, signatures: vec![] })
}

fn executed(request: &ReserveRequest, token: Token) -> EscrowEvent {
    EscrowEvent::Executed {
        reservation: interlock_core::reservation_id(request.deal_id, request.leg),
        deal_id: request.deal_id,
        leg: request.leg,
        by: request.beneficiary,
        to: request.beneficiary,
        asset: request.asset.clone(),
        token,
    }
}

fn core_reservation(request: &ReserveRequest) -> Reservation {
    Reservation {
        id: interlock_core::reservation_id(request.deal_id, request.leg),
        deal_id: request.deal_id,
        leg: request.leg,
        asset: request.asset.clone(),
        owner: request.owner,
        beneficiary: request.beneficiary,
        keeper: request.keeper,
        condition: request.condition.clone(),
        expiry_ms: request.expiry_ms,
        state: ReservationState::Reserved,
    }
}

/// Puts the certificate an `executeNotary` (commit) or `releaseInspectedByNotaries`
/// call carried into the event its log gave (the log names the decision but not
/// the signatures). The contract checked the signatures before it acted.
fn with_certificate(event: EscrowEvent, input: &[u8]) -> EscrowEvent {
    match event {
        EscrowEvent::Executed { reservation, deal_id, leg, by, to, asset, token: Token::Certificate(certificate) } => {
            let token = Token::Certificate(with_signatures(certificate, input));
            EscrowEvent::Executed { reservation, deal_id, leg, by, to, asset, token }
        }
        EscrowEvent::Held {
            reservation,
            deal_id,
            leg,
            by,
            beneficiary,
            asset,
            token: Token::Certificate(certificate),
        } => {
            let token = Token::Certificate(with_signatures(certificate, input));
            EscrowEvent::Held { reservation, deal_id, leg, by, beneficiary, asset, token }
        }
        other => other,
    }
}

/// `certificate` with the signatures of the call `input` whose log gave it, when
/// that call is one of the entry points that act on its decision: `executeNotary`
/// or the inspection module's hold (commit), the module's release. Each takes
/// `executeNotary`'s arguments. A log from any other call (a contract of the
/// sender's own calling the escrow) keeps the certificate without signatures.
fn with_signatures(certificate: Certificate, input: &[u8]) -> Certificate {
    use crate::bindings::InterlockInspection as I;
    use alloy::sol_types::SolCall;
    let entry_points: &[[u8; 4]] = match certificate.decision {
        Decision::Commit => &[InterlockEscrow::executeNotaryCall::SELECTOR, I::holdInspectedByNotariesCall::SELECTOR],
        Decision::Release => &[I::releaseInspectedByNotariesCall::SELECTOR],
        Decision::Abort | Decision::Reverse => &[],
    };
    let bytes = input
        .split_first_chunk::<4>()
        .filter(|(selector, _)| entry_points.contains(selector))
        .and_then(|(_, arguments)| InterlockEscrow::executeNotaryCall::abi_decode_raw(arguments).ok())
        .map(|call| call.certificate);
    let bytes = bytes.as_ref().and_then(|certificate| crate::reservation::certificate_signatures(certificate));
    let signatures = bytes.filter(|bytes| bytes.len() % 65 == 0).map(|bytes| {
        bytes
            .chunks_exact(65)
            .map(|chunk| interlock_core::crypto::RecoverableSignature(chunk.try_into().expect("65-byte chunks")))
            .collect()
    });
    match signatures {
        Some(signatures) => Certificate { signatures, ..certificate },
        None => certificate,
    }
}

/// Puts the transaction's sender into an event decoded from its log.
fn with_sender(event: EscrowEvent, sender: Address) -> EscrowEvent {
    match event {
        EscrowEvent::Executed { reservation, deal_id, leg, to, asset, token, .. } => {
            EscrowEvent::Executed { reservation, deal_id, leg, by: core_address(sender), to, asset, token }
        }
        EscrowEvent::Cancelled { reservation, deal_id, leg, to, asset, .. } => {
            EscrowEvent::Cancelled { reservation, deal_id, leg, by: core_address(sender), to, asset }
        }
        EscrowEvent::Held { reservation, deal_id, leg, beneficiary, asset, token, .. } => {
            EscrowEvent::Held { reservation, deal_id, leg, by: core_address(sender), beneficiary, asset, token }
        }
        other @ EscrowEvent::Reserved(_) => other,
    }
}

#[cfg(test)]
mod tests {
    use super::with_signatures;
    use crate::bindings::InterlockEscrow::executeNotaryCall;
    use crate::bindings::InterlockInspection as I;
    use alloy::primitives::{Address, Bytes, B256, U256};
    use alloy::sol_types::SolCall;
    use interlock_core::{Certificate, DealId, Decision, Hash32};

    fn input(selector: [u8; 4]) -> Vec<u8> {
        let call = executeNotaryCall {
            dealId: B256::ZERO,
            held: U256::ZERO,
            token: Address::ZERO,
            value: U256::ZERO,
            beneficiary: Address::ZERO,
            keeper: Address::ZERO,
            // One member (1 of 1), then one signature.
            certificate: Bytes::from([&[1u8, 1][..], &[1u8; 20], &[7u8; 65]].concat()),
        };
        let mut input = call.abi_encode();
        input[..4].copy_from_slice(&selector);
        input
    }

    fn found(decision: Decision, selector: [u8; 4]) -> usize {
        let certificate = Certificate { deal_id: DealId(Hash32([0; 32])), decision, signatures: Vec::new() };
        with_signatures(certificate, &input(selector)).signatures.len()
    }

    #[test]
    fn signatures_come_only_from_the_entry_points_that_act_on_the_decision() {
        assert_eq!(found(Decision::Commit, executeNotaryCall::SELECTOR), 1);
        assert_eq!(found(Decision::Commit, I::holdInspectedByNotariesCall::SELECTOR), 1);
        assert_eq!(found(Decision::Release, I::releaseInspectedByNotariesCall::SELECTOR), 1);
        // The same arguments under another function's selector carry nothing.
        assert_eq!(found(Decision::Commit, I::releaseInspectedByNotariesCall::SELECTOR), 0);
        assert_eq!(found(Decision::Release, executeNotaryCall::SELECTOR), 0);
        assert_eq!(found(Decision::Commit, [0xde, 0xad, 0xbe, 0xef]), 0);
    }
}
