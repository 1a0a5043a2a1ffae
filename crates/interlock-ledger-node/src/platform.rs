//! The embedded ledger behind the platform seam, over gRPC: [`LedgerPlatform`]
//! (accounts are ed25519 keys in hex; a network's configuration names its node),
//! [`NodeSubmitter`], which signs ledger transactions as one account and sends
//! them to the node, waiting for their block, and [`NodeFollower`], which reads
//! the node's committed blocks from a cursor.
//!
//! A refusal crosses the wire as a status whose metadata carries the seam's
//! error kind ([`KIND_METADATA`]), so the caller acts on the kind, never on text.

use interlock_chain::{
    BlockEvents, BoxFuture, Capabilities, ChainError, ChainErrorKind, ChainEvent, Credentials, Cursor, Followed,
    Follower, Platform, Receipt, Submitter,
};
use interlock_core::crypto::PartyKey;
use interlock_core::encoding::{Decode, Encode};
use interlock_core::escrow::ReservationState;
use interlock_core::{
    reservation_id, Address, DealTerms, EscrowEvent, EscrowOp, Hash32, LegKind, NetworkId, NetworkTiming,
};
use interlock_ledger::{Op, Transaction};
use interlock_proto::v1;
use interlock_proto::v1::ledger_node_client::LedgerNodeClient;
use interlock_rpc::server::{lazy_channel, TlsFiles};
use interlock_rpc::status::KIND_METADATA;
use serde::{Deserialize, Serialize};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tonic::transport::Channel;
use tonic::{Code, Status};

/// How long a poll waits for the node's next block when none is ready.
const POLL_WAIT: Duration = Duration::from_millis(200);
/// Blocks one poll delivers, at most.
const POLL_BLOCKS_MAX: usize = 256;

/// A ledger network as its directory entry describes it.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LedgerConfig {
    /// The ledger node, `host:port`.
    pub node: String,
}

impl LedgerConfig {
    pub fn from_value(network: NetworkId, config: &serde_json::Value) -> Result<LedgerConfig, ChainError> {
        let config: LedgerConfig = serde_json::from_value(config.clone())
            .map_err(|error| ChainError::fatal(format!("{network}: invalid ledger configuration: {error}")))?;
        let port = config.node.rsplit_once(':').map(|(_, port)| port.parse::<u16>());
        if !matches!(port, Some(Ok(_))) {
            return Err(ChainError::fatal(format!(
                "{network}: ledger node {:?} is not host:port",
                config.node.chars().take(80).collect::<String>()
            )));
        }
        Ok(config)
    }

    fn client(&self, credentials: &Credentials) -> Result<LedgerNodeClient<Channel>, ChainError> {
        let (Some(dir), Some(name)) = (&credentials.tls_dir, &credentials.name) else {
            return Err(ChainError::fatal("a ledger node speaks mutual TLS: the role's certificate is needed"));
        };
        let channel = lazy_channel(&self.node, &TlsFiles::in_dir(dir, name))
            .map_err(|error| ChainError::fatal(format!("ledger node {}: {error}", self.node)))?;
        Ok(LedgerNodeClient::new(channel))
    }
}

/// The embedded ledger platform.
#[derive(Clone, Copy, Debug, Default)]
pub struct LedgerPlatform;

impl Platform for LedgerPlatform {
    fn name(&self) -> &'static str {
        "ledger"
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities::ALL
    }

    fn parse_address(&self, text: &str) -> Result<Address, ChainError> {
        interlock_core::hash::from_hex(text)
            .and_then(|bytes| <[u8; 32]>::try_from(bytes).ok())
            .map(Address::from_bytes)
            .ok_or_else(|| {
                ChainError::fatal(format!(
                    "{:?} is not a ledger account: expected 64 hex digits (an ed25519 key)",
                    text.chars().take(80).collect::<String>()
                ))
            })
    }

    /// An account's ed25519 key: 64 hex digits, no prefix.
    fn format_address(&self, address: &Address) -> String {
        interlock_core::hash::to_hex(address.as_bytes())
    }

    /// The gateway's own key: it is registered as an account on its network.
    fn keeper_account(
        &self,
        _network: NetworkId,
        _config: &serde_json::Value,
        gateway_key: interlock_core::PartyId,
    ) -> Result<Option<Address>, ChainError> {
        Ok(Some(Address::from_bytes(gateway_key.0)))
    }

    fn check_config(&self, network: NetworkId, config: &serde_json::Value) -> Result<(), ChainError> {
        LedgerConfig::from_value(network, config).map(|_| ())
    }

    /// A node seals a block every producer interval once a transaction waits,
    /// and a sealed block is final: one confirmation, no lag of its own.
    fn timing(&self, network: NetworkId, config: &serde_json::Value) -> Result<NetworkTiming, ChainError> {
        LedgerConfig::from_value(network, config)?;
        let interval = crate::Pace::default().block_interval.as_millis();
        let block_interval_ms = u64::try_from(interval).expect("the producer interval is short");
        Ok(NetworkTiming { block_interval_ms, confirmations: 1, time_lag_ms: 0 })
    }

    fn submitter<'a>(
        &'a self,
        network: NetworkId,
        config: &'a serde_json::Value,
        credentials: &'a Credentials,
    ) -> BoxFuture<'a, Result<Arc<dyn Submitter>, ChainError>> {
        Box::pin(async move {
            let client = LedgerConfig::from_value(network, config)?.client(credentials)?;
            let key = credentials.party_key.clone().ok_or_else(|| {
                ChainError::fatal(format!("{network} is a ledger network: an ed25519 key is needed to sign there"))
            })?;
            Ok(Arc::new(NodeSubmitter::new(network, client, key)) as Arc<dyn Submitter>)
        })
    }

    fn follower<'a>(
        &'a self,
        network: NetworkId,
        config: &'a serde_json::Value,
        credentials: &'a Credentials,
        from: Cursor,
    ) -> BoxFuture<'a, Result<Box<dyn Follower>, ChainError>> {
        Box::pin(async move {
            let client = LedgerConfig::from_value(network, config)?.client(credentials)?;
            Ok(Box::new(NodeFollower::new(network, client, from)) as Box<dyn Follower>)
        })
    }
}

/// What a caller does about a status from a ledger node: the kind the node put
/// in its metadata, or else what the code says.
pub fn status_error(status: &Status) -> ChainError {
    let named = status.metadata().get(KIND_METADATA).and_then(|value| value.to_str().ok());
    let kind = named.and_then(ChainErrorKind::from_wire).unwrap_or(match status.code() {
        Code::Unavailable | Code::DeadlineExceeded | Code::ResourceExhausted | Code::Aborted | Code::Cancelled => {
            ChainErrorKind::RetryLater
        }
        Code::Unknown | Code::Internal => ChainErrorKind::RetryLater,
        Code::PermissionDenied | Code::Unauthenticated | Code::Unimplemented => ChainErrorKind::Fatal,
        _ => ChainErrorKind::Rejected,
    });
    ChainError::new(kind, format!("ledger node: {}", status.message()))
}

/// Signs escrow operations as one account and sends them to a ledger node.
/// It numbers the account's nonces itself, reading the last one from the node
/// at first and again after a refusal says the count went wrong.
pub struct NodeSubmitter {
    network: NetworkId,
    client: LedgerNodeClient<Channel>,
    key: PartyKey,
    last_nonce: Mutex<Option<u64>>,
}

impl NodeSubmitter {
    pub fn new(network: NetworkId, client: LedgerNodeClient<Channel>, key: PartyKey) -> NodeSubmitter {
        NodeSubmitter { network, client, key, last_nonce: Mutex::new(None) }
    }

    fn nonce_lock(&self) -> std::sync::MutexGuard<'_, Option<u64>> {
        self.last_nonce.lock().expect("nothing panics while holding the nonce")
    }

    async fn next_nonce(&self) -> Result<u64, ChainError> {
        if let Some(last) = self.nonce_lock().as_mut() {
            *last += 1;
            return Ok(*last);
        }
        let request = v1::GetAccountRequest { account: self.key.public().0.to_vec() };
        let account = self.client.clone().get_account(request).await.map_err(|status| status_error(&status))?;
        let mut last = self.nonce_lock();
        // Another submission may have read it meanwhile: the first answer stands.
        let next = last.get_or_insert(account.into_inner().nonce);
        *next += 1;
        Ok(*next)
    }

    async fn send(&self, op: &EscrowOp) -> Result<Receipt, ChainError> {
        let nonce = self.next_nonce().await?;
        let transaction = Transaction::sign(&self.key, self.network, nonce, Op::Escrow(op.clone()));
        let request = v1::SubmitTransactionRequest { transaction_encoded: transaction.to_bytes(), wait: true };
        match self.client.clone().submit_transaction(request).await {
            Ok(response) => {
                let response = response.into_inner();
                Ok(Receipt { transaction: transaction.id(), height: Some(response.height) })
            }
            Err(status) => {
                let error = status_error(&status);
                if error.kind != ChainErrorKind::AlreadyDone {
                    // The nonce may not have been used, or was already: ask the node again.
                    *self.nonce_lock() = None;
                }
                Err(error)
            }
        }
    }
}

impl Submitter for NodeSubmitter {
    fn network(&self) -> NetworkId {
        self.network
    }

    fn account(&self) -> Address {
        Address::from_bytes(self.key.public().0)
    }

    fn submit<'a>(&'a self, _terms: &'a DealTerms, op: &'a EscrowOp) -> BoxFuture<'a, Result<Receipt, ChainError>> {
        Box::pin(self.send(op))
    }

    fn leg_state<'a>(
        &'a self,
        terms: &'a DealTerms,
        leg: LegKind,
    ) -> BoxFuture<'a, Result<Option<ReservationState>, ChainError>> {
        let request = v1::GetReservationRequest { reservation_id: reservation_id(terms.id(), leg).0 .0.to_vec() };
        Box::pin(async move {
            match self.client.clone().get_reservation(request).await {
                Ok(reservation) => match reservation.into_inner().state.as_str() {
                    "reserved" => Ok(Some(ReservationState::Reserved)),
                    "executed" => Ok(Some(ReservationState::Executed)),
                    "cancelled" => Ok(Some(ReservationState::Cancelled)),
                    "held" => Ok(Some(ReservationState::Held)),
                    other => Err(ChainError::fatal(format!("{}: a reservation in state {other:?}", self.network))),
                },
                Err(status) if status.code() == Code::NotFound => Ok(None),
                Err(status) => Err(status_error(&status)),
            }
        })
    }
}

/// Reads a ledger node's committed blocks from a cursor. An embedded ledger
/// never reorganises: a node whose next block does not follow the cursor's is
/// an error (the wrong node, or lost data), not a rollback.
pub struct NodeFollower {
    network: NetworkId,
    client: LedgerNodeClient<Channel>,
    cursor: Cursor,
    stream: Option<tonic::Streaming<v1::BlockEvents>>,
}

impl NodeFollower {
    pub fn new(network: NetworkId, client: LedgerNodeClient<Channel>, from: Cursor) -> NodeFollower {
        NodeFollower { network, client, cursor: from, stream: None }
    }

    /// The next block of the open stream, if one comes within `wait`.
    async fn next_block(&mut self, wait: Duration) -> Result<Option<v1::BlockEvents>, ChainError> {
        if self.stream.is_none() {
            let request = v1::StreamBlocksRequest { from_height: self.cursor.height + 1 };
            let response = self.client.stream_blocks(request).await.map_err(|status| status_error(&status))?;
            self.stream = Some(response.into_inner());
        }
        let stream = self.stream.as_mut().expect("opened above");
        match tokio::time::timeout(wait, stream.message()).await {
            Err(_) => Ok(None),
            Ok(Ok(Some(block))) => Ok(Some(block)),
            Ok(Ok(None)) => {
                self.stream = None;
                Err(ChainError::retry_later(format!("{}: the ledger node ended its block stream", self.network)))
            }
            Ok(Err(status)) => {
                self.stream = None;
                Err(status_error(&status))
            }
        }
    }

    fn accept(&mut self, block: &v1::BlockEvents) -> Result<BlockEvents, ChainError> {
        let malformed = |what: &str| ChainError::fatal(format!("{}: the ledger node sent {what}", self.network));
        let header = block.header.as_ref().ok_or_else(|| malformed("a block without a header"))?;
        let hash = |bytes: &[u8], what: &str| {
            <[u8; 32]>::try_from(bytes).map(Hash32).map_err(|_| malformed(&format!("a {what} that is not 32 bytes")))
        };
        let cursor = Cursor { height: header.height, hash: hash(&header.hash, "block hash")? };
        if header.height != self.cursor.height + 1 {
            return Err(malformed(&format!("block {} after block {}", header.height, self.cursor.height)));
        }
        if !self.cursor.is_start() && hash(&header.parent, "parent hash")? != self.cursor.hash {
            return Err(ChainError::fatal(format!(
                "{}: block {} does not follow {}: the node is not the ledger this follower read",
                self.network, header.height, self.cursor
            )));
        }
        let mut events = Vec::with_capacity(block.events.len());
        for event in &block.events {
            let decoded = EscrowEvent::from_bytes(&event.event_encoded)
                .map_err(|error| malformed(&format!("an undecodable escrow event ({error})")))?;
            let transaction = hash(&event.transaction_id, "transaction id")?;
            events.push(Followed { transaction, event: decoded });
        }
        self.cursor = cursor;
        Ok(BlockEvents { cursor, time_ms: header.timestamp_ms, events })
    }

    async fn read(&mut self) -> Result<Vec<ChainEvent>, ChainError> {
        let mut delivered = Vec::new();
        let mut wait = POLL_WAIT;
        while delivered.len() < POLL_BLOCKS_MAX {
            let Some(block) = self.next_block(wait).await? else { break };
            let block = self.accept(&block).inspect_err(|_| self.stream = None)?;
            delivered.push(ChainEvent::Block(block));
            // Drain what is ready, without waiting for blocks not yet sealed.
            wait = Duration::from_millis(1);
        }
        Ok(delivered)
    }
}

impl Follower for NodeFollower {
    fn network(&self) -> NetworkId {
        self.network
    }

    fn cursor(&self) -> Cursor {
        self.cursor
    }

    fn poll(&mut self) -> BoxFuture<'_, Result<Vec<ChainEvent>, ChainError>> {
        Box::pin(self.read())
    }
}
