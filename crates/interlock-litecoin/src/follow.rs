//! Following a Litecoin chain's escrow: block by block from a durable cursor,
//! each block delivered once it is `confirmations` deep, with the legs of the
//! watched deals recognised by their output script (reserved) and by the
//! witness script of the inputs that spend them (executed with the secret, or
//! cancelled). A cursor whose block left the main chain turns into
//! [`ChainEvent::RolledBack`] to the last block both chains share.

use crate::chain::{hash_of, BlockJson, Node};
use crate::leg::LegScript;
use crate::script::Spend;
use interlock_chain::{BlockEvents, BoxFuture, ChainError, ChainEvent, Cursor, Followed, Follower};
use interlock_core::crypto::{Certificate, Decision, Secret, Token};
use interlock_core::saga::expected_request;
use interlock_core::{Address, Asset, DealId, DealTerms, EscrowEvent, LegKind, NetworkId};
use std::collections::{HashMap, HashSet};

/// Blocks delivered per poll at most, so a far-behind follower reports progress.
const BLOCKS_PER_POLL: u64 = 200;

/// One watched leg.
#[derive(Clone, Debug)]
struct Watched {
    deal_id: DealId,
    kind: LegKind,
    terms: DealTerms,
    script: LegScript,
    /// The output script, in the node's hex.
    script_hex: String,
    amount: u64,
}

/// Follows one Litecoin network.
pub struct LitecoinFollower {
    network: NetworkId,
    node: Node,
    confirmations: u64,
    cursor: Cursor,
    /// The cursor this follower was made from: a leg watched after blocks
    /// beyond it were delivered has those blocks read again for it.
    origin: Cursor,
    legs: HashMap<[u8; 32], Watched>,
    by_script: HashMap<String, [u8; 32]>,
    /// Legs watched late, whose delivered blocks are read again at the next poll.
    rescan: Vec<[u8; 32]>,
    /// Legs whose reservation was delivered, with the height it came at.
    reserved_at: HashMap<[u8; 32], u64>,
    /// The compressed keys notary legs name their notaries by.
    notary_keys: Vec<[u8; 33]>,
}

impl LitecoinFollower {
    /// A follower of the node behind `node` from `from`, delivering blocks
    /// `confirmations` deep (1: as soon as they are mined).
    pub fn new(network: NetworkId, node: Node, confirmations: u64, from: Cursor) -> LitecoinFollower {
        LitecoinFollower {
            network,
            node,
            confirmations: confirmations.max(1),
            cursor: from,
            origin: from,
            legs: HashMap::new(),
            by_script: HashMap::new(),
            rescan: Vec::new(),
            reserved_at: HashMap::new(),
            notary_keys: Vec::new(),
        }
    }

    /// Follows notary legs too, whose scripts name the notaries by these keys.
    pub fn with_notary_keys(mut self, keys: Vec<[u8; 33]>) -> LitecoinFollower {
        self.notary_keys = keys;
        self
    }

    fn amount_of(terms: &DealTerms, kind: LegKind) -> Result<u64, ChainError> {
        match &terms.leg(kind).asset {
            Asset::Fungible { amount, .. } => u64::try_from(*amount)
                .map_err(|_| ChainError::fatal(format!("{amount} litoshis is more than a Litecoin output holds"))),
            Asset::Unique { .. } => Err(ChainError::fatal("a Litecoin network holds no unique items")),
        }
    }

    /// The events of the watched legs in `block`, in chain order; `only` limits
    /// them to some legs (a rescan).
    fn events_in(&mut self, block: &BlockJson, only: Option<&HashSet<[u8; 32]>>) -> Result<Vec<Followed>, ChainError> {
        let mut events = Vec::new();
        for tx in &block.tx {
            let transaction = hash_of(&tx.txid)?;
            for output in &tx.vout {
                let Some(script) = &output.script_pub_key else { continue };
                let Some(reservation) = self.by_script.get(&script.hex).copied() else { continue };
                if only.is_some_and(|only| !only.contains(&reservation)) {
                    continue;
                }
                let watched = &self.legs[&reservation];
                let first = !self.reserved_at.contains_key(&reservation);
                if crate::chain::litoshis(output.value) == watched.amount && first {
                    self.reserved_at.insert(reservation, block.height);
                    let request = expected_request(&watched.terms, watched.deal_id, watched.kind);
                    events.push(Followed { transaction, event: EscrowEvent::Reserved(request.reservation()) });
                }
            }
            for (script, spend) in tx.spends() {
                let reservation = script.reservation();
                let Some(watched) = self.legs.get(&reservation) else { continue };
                if script != watched.script || only.is_some_and(|only| !only.contains(&reservation)) {
                    continue;
                }
                let leg = watched.terms.leg(watched.kind);
                let reservation = interlock_core::reservation_id(watched.deal_id, watched.kind);
                let by_key = |key: &[u8; 33]| {
                    bitcoin::secp256k1::PublicKey::from_slice(key)
                        .map(|key| crate::address::account_of(&key))
                        .unwrap_or(Address::from_bytes([0u8; 20]))
                };
                let executed = |key: &[u8; 33], token| EscrowEvent::Executed {
                    reservation,
                    deal_id: watched.deal_id,
                    leg: watched.kind,
                    by: by_key(key),
                    to: leg.beneficiary,
                    asset: leg.asset.clone(),
                    token,
                };
                let event = match spend {
                    Spend::Claim { secret, key } => executed(&key, Token::Secret(Secret(secret))),
                    // The notaries signed the spend, not the decision digest:
                    // their signatures stay on the chain, and the event
                    // carries the decision alone.
                    Spend::Decided { decision: Decision::Commit, key } => executed(
                        &key,
                        Token::Certificate(Certificate {
                            deal_id: watched.deal_id,
                            decision: Decision::Commit,
                            signatures: Vec::new(),
                        }),
                    ),
                    // A leg's output has no path for a verdict (`NotaryPath::of`).
                    Spend::Decided { decision: Decision::Release | Decision::Reverse, .. } => continue,
                    Spend::Refund { key } | Spend::Decided { decision: Decision::Abort, key } => {
                        EscrowEvent::Cancelled {
                            reservation,
                            deal_id: watched.deal_id,
                            leg: watched.kind,
                            by: by_key(&key),
                            to: leg.owner,
                            asset: leg.asset.clone(),
                        }
                    }
                };
                events.push(Followed { transaction, event });
            }
        }
        Ok(events)
    }

    /// Where the chain forked from the blocks this follower delivered: the
    /// newest delivered block still on the main chain.
    async fn fork_point(&self) -> Result<Cursor, ChainError> {
        let mut at = self.cursor;
        loop {
            if at.is_start() {
                return Ok(at);
            }
            let (height, parent, on_main) = self.node.header(&at.hash).await?;
            if on_main {
                return Ok(Cursor { height, hash: at.hash });
            }
            match parent {
                Some(parent) => at = Cursor { height: height.saturating_sub(1), hash: parent },
                None => return Ok(Cursor::start(0)),
            }
        }
    }

    async fn poll_once(&mut self) -> Result<Vec<ChainEvent>, ChainError> {
        let tip = self.node.tip().await?;
        if !self.cursor.is_start() && self.node.block_hash(self.cursor.height).await? != Some(self.cursor.hash) {
            let to = self.fork_point().await?;
            self.reserved_at.retain(|_, height| *height <= to.height);
            self.cursor = to;
            return Ok(vec![ChainEvent::RolledBack { to }]);
        }
        let Some(final_height) = (tip + 1).checked_sub(self.confirmations) else { return Ok(Vec::new()) };
        if final_height <= self.cursor.height {
            return Ok(Vec::new());
        }
        let mut late = Vec::new();
        if !self.rescan.is_empty() && self.cursor.height > self.origin.height {
            let only: HashSet<[u8; 32]> = self.rescan.drain(..).collect();
            let mut from = self.origin.height + 1;
            while from <= self.cursor.height {
                let to = self.cursor.height.min(from + 24);
                for block in self.node.blocks(from, to).await? {
                    late.extend(self.events_in(&block, Some(&only))?);
                }
                from = to + 1;
            }
        }
        self.rescan.clear();
        let last = final_height.min(self.cursor.height + BLOCKS_PER_POLL);
        let blocks = self.node.blocks(self.cursor.height + 1, last).await?;
        let mut delivered = Vec::with_capacity(blocks.len());
        for block in blocks {
            let parent = block.previousblockhash.as_deref().map(hash_of).transpose()?;
            if !self.cursor.is_start() && parent != Some(self.cursor.hash) {
                // The chain moved under this poll: the next one sees the fork.
                break;
            }
            let mut events = std::mem::take(&mut late);
            events.extend(self.events_in(&block, None)?);
            self.cursor = Cursor { height: block.height, hash: hash_of(&block.hash)? };
            let time_ms = block.mediantime.saturating_mul(1000);
            delivered.push(ChainEvent::Block(BlockEvents { cursor: self.cursor, time_ms, events }));
        }
        Ok(delivered)
    }
}

impl Follower for LitecoinFollower {
    fn network(&self) -> NetworkId {
        self.network
    }

    fn cursor(&self) -> Cursor {
        self.cursor
    }

    fn watch(&mut self, terms: &DealTerms) -> Result<(), ChainError> {
        let deal_id = terms.id();
        for kind in [LegKind::Payment, LegKind::Delivery] {
            if terms.leg(kind).network != self.network {
                continue;
            }
            let script = LegScript::of(terms, kind, &self.notary_keys)?;
            let reservation = script.reservation();
            if self.legs.contains_key(&reservation) {
                continue;
            }
            let script_hex = script.script_pubkey().to_hex_string();
            let amount = Self::amount_of(terms, kind)?;
            self.by_script.insert(script_hex.clone(), reservation);
            let watched = Watched { deal_id, kind, terms: terms.clone(), script, script_hex, amount };
            if self.cursor.height > self.origin.height {
                self.rescan.push(reservation);
            }
            self.legs.insert(reservation, watched);
        }
        Ok(())
    }

    fn forget(&mut self, deal_id: DealId) {
        let gone: Vec<[u8; 32]> =
            self.legs.iter().filter(|(_, watched)| watched.deal_id == deal_id).map(|(id, _)| *id).collect();
        for reservation in gone {
            if let Some(watched) = self.legs.remove(&reservation) {
                self.by_script.remove(&watched.script_hex);
            }
            self.reserved_at.remove(&reservation);
        }
    }

    fn poll(&mut self) -> BoxFuture<'_, Result<Vec<ChainEvent>, ChainError>> {
        Box::pin(self.poll_once())
    }
}
