//! A gateway in front of an EVM network.
//!
//! Parties send their escrow transactions to the chain themselves (an EVM
//! account signs its own transactions), so this gateway relays none: it follows
//! the `InterlockEscrow` contract at the network's confirmation depth, records
//! the events of registered deals exactly as a ledger gateway does (lock
//! assertions and notifications to the peer gateway included), and serves them
//! to agents and notaries as a block stream. Each block of that stream is one
//! poll of the chain: its height is the newest confirmed EVM block number, its
//! time that block's, and it carries the escrow events confirmed since.
//!
//! The keeper works as on a ledger when the directory names the network's
//! keeper account and the gateway holds its key (`EvmLink::keeper`): it cancels
//! reservations past their expiry and executes revealed hashlocks that name it,
//! sending from that account. Without a key, agents cancel their own expired
//! reservations, and deals with an EVM payment leg name no keeper.

use super::{locked, GatewayService, Observed};
use crate::GatewayError;
use interlock_core::encoding::Encode;
use interlock_core::{DealTerms, EscrowEvent, Hash32, NetworkId, ReservationId};
use interlock_evm::alloy::primitives::Address as EvmAddress;
use interlock_evm::alloy::providers::{DynProvider, Provider as _, ProviderBuilder};
use interlock_evm::chain::{AssetBinding, AssetMap, EvmEscrow, EvmFollower};
use interlock_identity::{EvmAssetEntry, EvmNetworkEntry};
use interlock_proto::v1;
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::Mutex;
use std::time::Duration;
use tokio::sync::watch;
use tonic::Status;

/// How often the follower asks the node for new blocks.
const POLL_EVERY: Duration = Duration::from_millis(200);
/// Synthesised blocks kept for streams, at most (the oldest go first).
const BLOCKS_KEPT_MAX: usize = 100_000;

/// What a gateway needs to follow an EVM network.
pub struct EvmLink {
    /// The node's JSON-RPC endpoint, for messages.
    pub rpc: String,
    pub provider: DynProvider,
    pub escrow: EvmAddress,
    pub assets: AssetMap,
    pub confirmations: u64,
    /// The keeper's account and a client signing for it, when the gateway keeps.
    pub keeper: Option<(EvmAddress, EvmEscrow)>,
}

impl EvmLink {
    /// The link the directory describes: a read-only provider for its node.
    pub fn from_directory(network: NetworkId, entry: &EvmNetworkEntry) -> Result<EvmLink, String> {
        let url = entry.rpc.parse().map_err(|error| format!("network {network} rpc {:?}: {error}", entry.rpc))?;
        let provider = ProviderBuilder::new().connect_http(url).erased();
        Ok(EvmLink {
            rpc: entry.rpc.clone(),
            provider,
            escrow: evm_address(&entry.escrow)?,
            assets: asset_map(entry)?,
            confirmations: entry.confirmations,
            keeper: None,
        })
    }

    /// Lets the gateway keep the network, signing with `signer`, which must be
    /// the keeper account the directory names.
    pub fn with_keeper(
        mut self,
        network: NetworkId,
        entry: &EvmNetworkEntry,
        signer: interlock_evm::alloy::signers::local::PrivateKeySigner,
    ) -> Result<EvmLink, String> {
        let address = signer.address();
        let listed = entry.keeper.as_deref().map(evm_address).transpose()?;
        if listed != Some(address) {
            return Err(format!(
                "the key is {address}'s, but the directory names {} as network {network}'s keeper",
                entry.keeper.as_deref().unwrap_or("no account")
            ));
        }
        let provider = interlock_evm::connect(&entry.rpc, &[signer]).map_err(|error| error.to_string())?;
        let client = interlock_evm::EscrowClient::at(self.escrow, provider.clone());
        let escrow = EvmEscrow::new(network, client, provider, self.assets.clone());
        self.keeper = Some((address, escrow));
        Ok(self)
    }

    /// The keeper's account as the core names it, when the gateway keeps.
    pub fn keeper_address(&self) -> Option<interlock_core::Address> {
        self.keeper.as_ref().map(|(address, _)| interlock_evm::chain::core_address(*address))
    }
}

/// The directory's asset bindings as the adapter takes them.
pub fn asset_map(entry: &EvmNetworkEntry) -> Result<AssetMap, String> {
    let mut assets = AssetMap::new();
    for (code, asset) in &entry.assets {
        let code = interlock_core::AssetCode::new(code).map_err(|error| error.to_string())?;
        let binding = match asset {
            EvmAssetEntry::Native => AssetBinding::Native,
            EvmAssetEntry::Erc20(address) => AssetBinding::Erc20(evm_address(address)?),
            EvmAssetEntry::Erc721(address) => AssetBinding::Erc721(evm_address(address)?),
        };
        assets = assets.bind(code, binding);
    }
    Ok(assets)
}

fn evm_address(text: &str) -> Result<EvmAddress, String> {
    interlock_identity::parse_evm_address(text)
        .map(EvmAddress::from)
        .ok_or_else(|| format!("{text:?} is not an EVM address: expected 0x and 40 hex digits"))
}

/// The EVM side of a gateway's shared state.
pub(super) struct EvmShared {
    link: EvmLink,
    /// The synthesised block stream, oldest first.
    blocks: Mutex<Vec<v1::BlockEvents>>,
    /// The newest synthesised block's height.
    newest: watch::Sender<u64>,
}

impl EvmShared {
    pub(super) fn new(link: EvmLink) -> EvmShared {
        EvmShared { link, blocks: Mutex::new(Vec::new()), newest: watch::channel(0).0 }
    }
}

impl GatewayService {
    fn evm(&self) -> &EvmShared {
        self.shared.evm.as_ref().expect("only EVM gateways follow an EVM network")
    }

    /// Follows the contract forever: watches every registered deal, records what
    /// each poll confirmed, and extends the block stream.
    pub(super) async fn follow_evm(self) {
        let network = self.shared.network;
        let link = &self.evm().link;
        let follower =
            EvmFollower::new(network, link.provider.clone(), link.escrow, link.assets.clone(), link.confirmations, 0);
        let mut follower = match follower {
            Ok(follower) => follower,
            Err(error) => {
                eprintln!("gateway {network}: cannot follow the EVM network: {error}");
                return;
            }
        };
        let keeping = match &link.keeper {
            Some((address, _)) => format!("keeping with {address}"),
            None => "not keeping (no --evm-key)".to_owned(),
        };
        eprintln!(
            "gateway {network}: following the escrow {} at a depth of {} blocks, {keeping}",
            link.escrow, link.confirmations
        );
        // As on a ledger, the keeper acts only on blocks past the head at start:
        // replayed history triggers nothing.
        let act_from = loop {
            match link.provider.get_block_number().await {
                Ok(head) => break head,
                Err(error) => {
                    eprintln!("gateway {network}: the EVM node is unreachable: {error}");
                    tokio::time::sleep(POLL_EVERY * 5).await;
                }
            }
        };
        let mut carried: Vec<Observed> = Vec::new();
        let mut deals_by_reservation: HashMap<ReservationId, Arc<DealTerms>> = HashMap::new();
        loop {
            for terms in self.registry().registered_terms() {
                if !follower.is_watching(terms.id()) {
                    if let Err(error) = follower.watch(&terms) {
                        eprintln!("gateway {network}: deal {} cannot settle here: {error}", terms.id());
                    }
                    for leg in interlock_core::LegKind::BOTH {
                        deals_by_reservation.insert(interlock_core::reservation_id(terms.id(), leg), terms.clone());
                    }
                }
            }
            match follower.poll().await {
                Ok(followed) => {
                    for mismatch in &followed.mismatched {
                        eprintln!(
                            "gateway {network}: reservation {mismatch} was made with other terms than its deal's"
                        );
                    }
                    carried.extend(followed.events.into_iter().map(|event| Observed {
                        height: event.height,
                        timestamp_ms: 0,
                        block_hash: Hash32(event.tx_hash.0),
                        event: event.event,
                    }));
                    // Events reach the stream with the next confirmed block's time.
                    if let (Some(time_ms), Some(height)) = (followed.chain_time_ms, follower.confirmed_height()) {
                        let observed: Vec<Observed> =
                            carried.drain(..).map(|observed| Observed { timestamp_ms: time_ms, ..observed }).collect();
                        if let Err(error) = self.record_evm_block(height, time_ms, observed) {
                            eprintln!("gateway {network}: recording EVM events failed: {error}");
                        }
                        if height > act_from {
                            self.keep_evm(time_ms, &deals_by_reservation);
                        }
                    }
                }
                Err(error) => eprintln!("gateway {network}: following the EVM network failed: {error}"),
            }
            tokio::time::sleep(POLL_EVERY).await;
        }
    }

    fn record_evm_block(&self, height: u64, time_ms: u64, observed: Vec<Observed>) -> Result<(), GatewayError> {
        let network = self.shared.network;
        let events: Vec<v1::LedgerEvent> = observed
            .iter()
            .map(|item| v1::LedgerEvent {
                network: network.0,
                height: item.height,
                transaction_id: item.block_hash.0.to_vec(),
                deal_id: item.event.deal_id().0 .0.to_vec(),
                kind: kind(&item.event).to_owned(),
                event_encoded: item.event.to_bytes(),
            })
            .collect();
        {
            let mut keeper = locked(&self.shared.keeper);
            keeper.now_ms = keeper.now_ms.max(time_ms);
            for item in &observed {
                keeper.observe(&item.event);
            }
        }
        let committed = self.registry().observe_block(observed)?;
        self.announce(&committed);
        let block = v1::BlockEvents {
            header: Some(v1::BlockHeader {
                network: network.0,
                height,
                parent: Vec::new(),
                timestamp_ms: time_ms,
                transactions_root: Vec::new(),
                transaction_count: u32::try_from(events.len()).unwrap_or(u32::MAX),
                hash: Vec::new(),
            }),
            events,
        };
        let evm = self.evm();
        {
            let mut blocks = locked(&evm.blocks);
            blocks.push(block);
            if blocks.len() > BLOCKS_KEPT_MAX {
                let excess = blocks.len() - BLOCKS_KEPT_MAX;
                blocks.drain(..excess);
            }
        }
        evm.newest.send_replace(height);
        Ok(())
    }

    /// Sends what the keeper owes at chain time `now_ms`, each on its own task.
    fn keep_evm(&self, now_ms: u64, deals: &HashMap<ReservationId, Arc<DealTerms>>) {
        let Some((address, escrow)) = &self.evm().link.keeper else { return };
        let actions = locked(&self.shared.keeper).act(now_ms);
        let network = self.shared.network;
        for op in actions {
            let Some(terms) = deals.get(&op.reservation_id()).cloned() else { continue };
            let (escrow, address) = (escrow.clone(), *address);
            tokio::spawn(async move {
                let what = match &op {
                    interlock_core::EscrowOp::Execute { .. } => "executed",
                    _ => "cancelled",
                };
                match escrow.submit(address, &terms, &op).await {
                    Ok(sent) => eprintln!(
                        "gateway {network}: keeper {what} reservation {} of deal {} (transaction {})",
                        op.reservation_id(),
                        terms.id(),
                        sent.tx_hash
                    ),
                    // Losing a race to the beneficiary or the owner is the normal case.
                    Err(error) if error.to_string().contains("settles once") => {}
                    Err(error) => eprintln!("gateway {network}: keeper transaction refused: {error}"),
                }
            });
        }
    }

    /// The synthesised blocks from `from_height` on, then each new one.
    pub(super) fn evm_blocks(&self, from_height: u64) -> super::handlers::Stream<v1::BlockEvents> {
        let service = self.clone();
        let mut newest = self.evm().newest.subscribe();
        let (sender, receiver) = tokio::sync::mpsc::channel(64);
        tokio::spawn(async move {
            let mut next = from_height;
            loop {
                let ready: Vec<v1::BlockEvents> = {
                    let blocks = locked(&service.evm().blocks);
                    let start = blocks.partition_point(|block| block.header.as_ref().is_some_and(|h| h.height < next));
                    blocks[start..].to_vec()
                };
                for block in ready {
                    next = block.header.as_ref().map_or(next, |header| header.height + 1);
                    if sender.send(Ok(block)).await.is_err() {
                        return;
                    }
                }
                if newest.changed().await.is_err() {
                    return;
                }
            }
        });
        Box::pin(tokio_stream::wrappers::ReceiverStream::new(receiver))
    }

    /// Refuses what only an embedded ledger's gateway does.
    pub(super) fn refuse_on_evm(&self, what: &str) -> Result<(), Status> {
        match &self.shared.evm {
            Some(_) => Err(Status::failed_precondition(format!(
                "network {} is an EVM chain: {what} goes to its node ({}); this gateway follows it and records deals",
                self.shared.network,
                self.evm().link.rpc
            ))),
            None => Ok(()),
        }
    }
}

fn kind(event: &EscrowEvent) -> &'static str {
    match event {
        EscrowEvent::Reserved(_) => "reserved",
        EscrowEvent::Executed { .. } => "executed",
        EscrowEvent::Cancelled { .. } => "cancelled",
    }
}
