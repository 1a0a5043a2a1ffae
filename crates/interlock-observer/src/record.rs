//! One record of the observer's log, its canonical bytes and its hash, and
//! what each gateway event says in a record's body. Pure: no I/O.

use interlock_core::crypto::{verify_ed25519, Ed25519Signature, PartyKey, Token};
use interlock_core::encoding::Decode;
use interlock_core::hash::to_hex;
use interlock_core::{DealId, DealTerms, EscrowEvent, Hash32, LegKind, PartyId, Settlement};

/// Prefixed to every record's canonical bytes, so a record hash is never
/// mistaken for anything else the observer's key signs.
const RECORD_CONTEXT: &[u8] = b"interlock/observer-record/v1\0";

/// A record as stored: everything hashed, the hash and its signature.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Record {
    /// The record's place in the log, from 1.
    pub seq: u64,
    pub entry: Entry,
    pub prev_hash: Hash32,
    pub hash: Hash32,
    pub signature: Ed25519Signature,
}

/// What a record says before it is chained and signed.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Entry {
    pub deal_id: DealId,
    pub kind: String,
    pub network: u64,
    pub height: u64,
    pub timestamp_ms: u64,
    /// JSON text; hashed as stored.
    pub body: String,
}

fn put_text(out: &mut Vec<u8>, text: &str) {
    let length = u32::try_from(text.len()).expect("record texts are bounded well below 4 GiB");
    out.extend_from_slice(&length.to_be_bytes());
    out.extend_from_slice(text.as_bytes());
}

/// The canonical bytes of a record: context, seq, deal id, kind, network,
/// height, time and body, integers big-endian, texts length-prefixed.
pub fn canonical(seq: u64, entry: &Entry) -> Vec<u8> {
    let mut out = Vec::with_capacity(RECORD_CONTEXT.len() + 80 + entry.kind.len() + entry.body.len());
    out.extend_from_slice(RECORD_CONTEXT);
    out.extend_from_slice(&seq.to_be_bytes());
    out.extend_from_slice(&entry.deal_id.0 .0);
    put_text(&mut out, &entry.kind);
    out.extend_from_slice(&entry.network.to_be_bytes());
    out.extend_from_slice(&entry.height.to_be_bytes());
    out.extend_from_slice(&entry.timestamp_ms.to_be_bytes());
    put_text(&mut out, &entry.body);
    out
}

/// `sha256(prev_hash || canonical record)`.
pub fn record_hash(prev_hash: Hash32, seq: u64, entry: &Entry) -> Hash32 {
    Hash32::sha256(&[&prev_hash.0, &canonical(seq, entry)])
}

impl Record {
    /// Chains `entry` after `prev_hash` as record `seq` and signs its hash.
    pub fn seal(key: &PartyKey, seq: u64, prev_hash: Hash32, entry: Entry) -> Record {
        let hash = record_hash(prev_hash, seq, &entry);
        let signature = key.sign(&hash.0);
        Record { seq, entry, prev_hash, hash, signature }
    }

    /// What is wrong with this record as the successor of a record with
    /// `expected_seq - 1` and hash `expected_prev`, signed by `observer`.
    pub fn check(&self, expected_seq: u64, expected_prev: Hash32, observer: PartyId) -> Option<String> {
        if self.seq != expected_seq {
            return Some(format!("expected record {expected_seq} next, found record {}", self.seq));
        }
        if self.prev_hash != expected_prev {
            return Some(format!(
                "prev_hash {} does not link to the previous record's hash {}",
                self.prev_hash.to_hex(),
                expected_prev.to_hex()
            ));
        }
        let computed = record_hash(self.prev_hash, self.seq, &self.entry);
        if computed != self.hash {
            return Some(format!(
                "stored hash {} does not match its contents, which hash to {}",
                self.hash.to_hex(),
                computed.to_hex()
            ));
        }
        if verify_ed25519(observer, &self.hash.0, &self.signature).is_err() {
            return Some(format!("signature does not verify against the observer key {}", to_hex(&observer.0)));
        }
        None
    }
}

/// A gateway's `DealEvent`, decoded from the wire.
#[derive(Clone, Debug)]
pub struct GatewayEvent {
    /// The gateway's network and its sequence number of the event.
    pub gateway_network: u64,
    pub gateway_seq: u64,
    pub deal_id: DealId,
    pub kind: String,
    pub network: u64,
    pub height: u64,
    pub timestamp_ms: u64,
    pub event_encoded: Vec<u8>,
    pub text: String,
    /// The gateway gave no time (a lock assertion carries none), so
    /// `timestamp_ms` is the observer's clock when it received the event.
    pub time_from_observer: bool,
}

/// What a gateway event changes in the observer's view of a deal's legs.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum LegChange {
    Reserved(LegKind),
    /// Executed into escrow for an inspection period: paid out or reversed later.
    Held(LegKind),
    Executed(LegKind),
    Cancelled(LegKind),
}

/// The escrow event a gateway event carries, if any.
pub fn escrow_event(event: &GatewayEvent) -> Option<EscrowEvent> {
    if event.event_encoded.is_empty() {
        return None;
    }
    EscrowEvent::from_bytes(&event.event_encoded).ok()
}

/// The leg change an event stands for (peer assertions and notifications
/// count: they are the other network's events seen through its gateway).
pub fn leg_change(escrow: Option<&EscrowEvent>) -> Option<LegChange> {
    match escrow? {
        EscrowEvent::Reserved(reservation) => Some(LegChange::Reserved(reservation.leg)),
        EscrowEvent::Executed { leg, .. } => Some(LegChange::Executed(*leg)),
        EscrowEvent::Cancelled { leg, .. } => Some(LegChange::Cancelled(*leg)),
        EscrowEvent::Held { leg, .. } => Some(LegChange::Held(*leg)),
    }
}

/// The notary decision an execution's certificate proves: (decision, signatures).
pub fn decision(escrow: Option<&EscrowEvent>) -> Option<(String, usize)> {
    match escrow? {
        EscrowEvent::Executed { token: Token::Certificate(certificate), .. }
        | EscrowEvent::Held { token: Token::Certificate(certificate), .. } => {
            Some((certificate.decision.to_string(), certificate.signatures.len()))
        }
        _ => None,
    }
}

/// The body of a record for a gateway event: what happened, in JSON.
pub fn event_body(event: &GatewayEvent, terms: Option<&DealTerms>, escrow: Option<&EscrowEvent>) -> String {
    let mut body = serde_json::json!({
        "text": event.text,
        "gateway_network": event.gateway_network,
        "gateway_seq": event.gateway_seq,
    });
    if event.time_from_observer {
        body["time"] = "the observer's clock on receipt: the gateway's event carries no time".into();
    }
    if let Some(escrow) = escrow {
        let (leg, reservation, asset) = match escrow {
            EscrowEvent::Reserved(r) => (r.leg, r.id.0, r.asset.to_string()),
            EscrowEvent::Executed { leg, reservation, asset, .. }
            | EscrowEvent::Cancelled { leg, reservation, asset, .. }
            | EscrowEvent::Held { leg, reservation, asset, .. } => (*leg, reservation.0, asset.to_string()),
        };
        body["leg"] = leg.to_string().into();
        body["reservation"] = reservation.to_hex().into();
        body["asset"] = asset.into();
        body["event"] = to_hex(&event.event_encoded).into();
        match escrow {
            EscrowEvent::Reserved(r) => body["expiry_ms"] = r.expiry_ms.into(),
            EscrowEvent::Executed { token, .. } | EscrowEvent::Held { token, .. } => {
                body["token"] = match token {
                    Token::Secret(_) => "hashlock secret (revealed)".into(),
                    Token::Certificate(c) => {
                        format!("notary certificate: {} with {} signatures", c.decision, c.signatures.len()).into()
                    }
                };
            }
            EscrowEvent::Cancelled { .. } => {
                if let Some(terms) = terms {
                    let expiry = terms.expiry_ms(leg);
                    body["after_expiry"] = (event.timestamp_ms >= expiry).into();
                }
            }
        }
    }
    body.to_string()
}

/// The body of a deal's first record: the terms in words.
pub fn terms_body(terms: &DealTerms) -> serde_json::Value {
    let leg = |kind: LegKind| {
        let leg = terms.leg(kind);
        serde_json::json!({
            "network": leg.network.0, "asset": leg.asset.to_string(),
            "owner": leg.owner.to_string(), "beneficiary": leg.beneficiary.to_string(),
            "expiry_ms": terms.expiry_ms(kind),
        })
    };
    let mut body = serde_json::json!({
        "mode": terms.mode().to_string(),
        "buyer": to_hex(&terms.buyer.0),
        "seller": to_hex(&terms.seller.0),
        "payment": leg(LegKind::Payment),
        "delivery": leg(LegKind::Delivery),
    });
    match &terms.settlement {
        Settlement::Hashlock { payment_expiry_ms, delivery_expiry_ms, margin_ms, .. } => {
            body["deadlines"] = serde_json::json!({
                "delivery_expiry_ms": delivery_expiry_ms, "payment_expiry_ms": payment_expiry_ms, "margin_ms": margin_ms,
            });
        }
        Settlement::Notary { notaries, threshold, decision_deadline_ms, backstop_expiry_ms } => {
            body["deadlines"] = serde_json::json!({
                "decision_deadline_ms": decision_deadline_ms, "backstop_expiry_ms": backstop_expiry_ms,
            });
            body["notaries"] = serde_json::json!({ "threshold": threshold, "of": notaries.len() });
        }
    }
    body
}
