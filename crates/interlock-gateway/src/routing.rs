//! Gateway messages routed through other gateways, pure: sealing a message
//! at its origin, opening it at a relay or at its destination, and choosing
//! the next hop.
//!
//! A routed message is end to end: the origin gateway signs its origin,
//! destination, id, kind, payload and hop limit with its directory key, so a
//! relay can carry it but not alter, forge or redirect it, and the
//! destination checks the origin's signature, not the relay's TLS identity.
//! Replays are refused by id (the store keeps every id handled). A relay
//! sees the payload, which holds nothing secret: deals, lock assertions and
//! notifications of settled legs, whose hashlock secrets are already on
//! chain.

use crate::checks;
use crate::error::GatewayError;
use crate::registry::{ASSERT, FORWARD, NOTIFY};
use interlock_core::crypto::{Ed25519Signature, PartyKey, PublicKey};
use interlock_core::{Hash32, NetworkId};
use interlock_identity::{Directory, GatewayEntry, ROUTE_NETWORKS_MAX};
use interlock_proto::v1;

/// The outbox kind of a routed message a relay hands on.
pub const ROUTE: &str = "route";

/// Prefixed to what an origin signs: its key signs lock assertions too.
const ROUTED_CONTEXT: &[u8] = b"interlock/routed-message/v1\0";
/// Largest payload a routed message may carry: one peer call's request.
pub const PAYLOAD_LEN_MAX: usize = interlock_rpc::server::MESSAGE_LEN_MAX;

/// Most routes ranked when choosing where to send a message.
const ROUTES_TRIED_MAX: usize = 16;

/// What a gateway learns from a routed message that verified.
#[derive(Clone, Debug)]
pub struct Opened {
    /// The gateway that wrote and signed it, as the directory lists it.
    pub origin: GatewayEntry,
    pub destination: NetworkId,
    pub message_id: [u8; 32],
    /// One of the peer calls' kinds (`forward`, `assert`, `notify`).
    pub kind: &'static str,
    pub payload: Vec<u8>,
    /// The networks it passed, its origin first.
    pub path: Vec<NetworkId>,
}

/// The id of the message `outbox_id` of `origin`'s outbox, bound to where it
/// goes and what it says: the same outbox entry sent again, by whichever
/// route, keeps its id.
pub fn message_id(origin: NetworkId, destination: NetworkId, outbox_id: u64, kind: &str, payload: &[u8]) -> [u8; 32] {
    let ends = [origin.0.to_be_bytes(), destination.0.to_be_bytes(), outbox_id.to_be_bytes()].concat();
    Hash32::sha256(&[b"interlock/message-id/v1\0", &ends, kind.as_bytes(), &[0], payload]).0
}

fn signed_bytes(
    origin: NetworkId,
    destination: NetworkId,
    message_id: &[u8],
    kind: &str,
    payload: &[u8],
    hops_max: u32,
) -> Vec<u8> {
    let body = Hash32::sha256(&[kind.as_bytes(), &[0], payload]);
    [
        ROUTED_CONTEXT,
        &origin.0.to_be_bytes(),
        &destination.0.to_be_bytes(),
        message_id,
        &hops_max.to_be_bytes(),
        &body.0,
    ]
    .concat()
}

/// Seals `payload` (a `kind` peer call) at its origin for `destination`.
pub fn seal(
    key: &PartyKey,
    origin: NetworkId,
    destination: NetworkId,
    message_id: [u8; 32],
    kind: &str,
    payload: Vec<u8>,
) -> v1::RoutedMessage {
    let hops_max = u32::try_from(ROUTE_NETWORKS_MAX).unwrap_or(u32::MAX);
    let signature = key.sign(&signed_bytes(origin, destination, &message_id, kind, &payload, hops_max));
    v1::RoutedMessage {
        origin: origin.0,
        destination: destination.0,
        message_id: message_id.to_vec(),
        kind: kind.to_owned(),
        payload,
        hops_max,
        path: vec![origin.0],
        signature: signature.0.to_vec(),
    }
}

/// Checks a routed message that reached the gateway of `here`: well formed,
/// from and for gateways the directory lists, within its hop limit, and
/// signed by its origin. Nothing about `here` being its destination: the
/// caller relays what is not for it.
pub fn open(message: &v1::RoutedMessage, directory: &Directory, here: NetworkId) -> Result<Opened, GatewayError> {
    let (origin, destination) = (NetworkId(message.origin), NetworkId(message.destination));
    let origin_entry = directory
        .gateway_for(origin)
        .ok_or_else(|| GatewayError::malformed("origin", format!("the directory lists no gateway for {origin}")))?;
    if directory.gateway_for(destination).is_none() {
        return Err(GatewayError::malformed(
            "destination",
            format!("the directory lists no gateway for {destination}"),
        ));
    }
    if origin == destination || origin == here && destination != here {
        return Err(GatewayError::malformed(
            "origin",
            format!("a message from {origin} to {destination} does not travel through {here}"),
        ));
    }
    let message_id: [u8; 32] = checks::fixed("message_id", &message.message_id)?;
    let kind = [FORWARD, ASSERT, NOTIFY].into_iter().find(|kind| *kind == message.kind).ok_or_else(|| {
        let found: String = message.kind.chars().take(40).collect();
        GatewayError::malformed("kind", format!("expected \"forward\", \"assert\" or \"notify\", found {found:?}"))
    })?;
    if message.payload.len() > PAYLOAD_LEN_MAX {
        let length = message.payload.len();
        return Err(GatewayError::malformed("payload", format!("{length} bytes exceed the limit {PAYLOAD_LEN_MAX}")));
    }
    let limit = u32::try_from(ROUTE_NETWORKS_MAX).unwrap_or(u32::MAX);
    if message.hops_max > limit {
        return Err(GatewayError::malformed("hops_max", format!("{}: expected at most {limit}", message.hops_max)));
    }
    let passed = message.path.len();
    let distinct = message.path.iter().collect::<std::collections::BTreeSet<_>>().len() == passed;
    let within = u32::try_from(passed).is_ok_and(|passed| passed < message.hops_max);
    if message.path.first() != Some(&origin.0) || !distinct || !within || message.path.contains(&here.0) {
        return Err(GatewayError::malformed(
            "path",
            format!(
                "{:?}: expected the origin {} first, then distinct relays other than {here}, fewer than {} in all",
                message.path, origin.0, message.hops_max
            ),
        ));
    }
    let signature = checks::fixed("signature", &message.signature)?;
    let signed = signed_bytes(origin, destination, &message_id, &message.kind, &message.payload, message.hops_max);
    let verified =
        PublicKey::decode(origin_entry.key).and_then(|key| key.verify(&signed, &Ed25519Signature(signature)));
    if verified.is_err() {
        return Err(GatewayError::Unauthenticated(format!(
            "the routed message's signature is not {origin}'s gateway's ({}): it was altered or forged",
            origin_entry.name
        )));
    }
    let path = message.path.iter().map(|network| NetworkId(*network)).collect();
    Ok(Opened { origin: origin_entry.clone(), destination, message_id, kind, payload: message.payload.clone(), path })
}

/// The networks to hand a message for `destination` to from `here`, best
/// route first, each once, avoiding every network in `passed` (where the
/// message has been).
pub fn next_hops(
    directory: &Directory,
    here: NetworkId,
    destination: NetworkId,
    passed: &[NetworkId],
) -> Vec<NetworkId> {
    let mut hops = Vec::new();
    for route in directory.routes(here, destination, ROUTES_TRIED_MAX) {
        let clear = route.networks[1..].iter().all(|network| !passed.contains(network));
        if clear && !hops.contains(&route.next_hop()) {
            hops.push(route.next_hop());
        }
    }
    hops
}
