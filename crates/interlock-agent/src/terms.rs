//! Drafting a deal's terms from an operator's proposal and the directory.

use interlock_core::crypto::Secret;
use interlock_core::limits::{DEPENDENTS_MAX, EXTENSION_MAX_MS, OBSERVERS_MAX};
use interlock_core::{
    Address, Asset, AssetCode, DealTerms, Disputer, Inspection, Leg, LegKind, NetworkId, NetworkTiming, OnTimeout,
    PartyId, Policy, Settlement,
};
use interlock_identity::{Directory, PartyEntry};
use interlock_proto::v1;
use interlock_rpc::access::quote;
use tonic::Status;

/// How long a deal may take when the proposal does not say.
pub const WINDOW_DEFAULT_MS: u64 = 60_000;
/// The shortest and longest windows a proposal may ask for.
pub const WINDOW_MIN_MS: u64 = 2_000;
pub const WINDOW_MAX_MS: u64 = 7 * 24 * 3_600_000;

/// Who proposes, and as what.
pub struct Proposer<'a> {
    pub entry: &'a PartyEntry,
    pub is_buyer: bool,
    /// The account each network's gateway keeps deals with, as its platform
    /// names it (absent where the gateway does not keep).
    pub keepers: &'a std::collections::HashMap<NetworkId, Address>,
    /// How fast each network's chain moves: the terms' deadlines must leave
    /// room on the two legs' networks.
    pub timings: &'a std::collections::HashMap<NetworkId, NetworkTiming>,
}

fn network(directory: &Directory, text: &str) -> Result<NetworkId, Status> {
    let found = directory.networks.iter().find(|n| n.name == text || n.id.0.to_string() == text);
    found.map(|n| n.id).ok_or_else(|| {
        let names: Vec<&str> = directory.networks.iter().map(|n| n.name.as_str()).collect();
        Status::invalid_argument(format!("no network {} in the directory; it lists {}", quote(text), names.join(", ")))
    })
}

fn asset(spec: &v1::LegSpec, leg: LegKind) -> Result<Asset, Status> {
    let code = AssetCode::new(&spec.asset).map_err(|error| Status::invalid_argument(format!("{leg} leg: {error}")))?;
    // "#7": item 7 of a class of unique items (an ERC-721 collection, a ledger title).
    if let Some(number) = spec.amount.strip_prefix('#') {
        let item: u128 = number.parse().map_err(|_| {
            Status::invalid_argument(format!("{leg} leg item {}: expected # and a whole number", quote(&spec.amount)))
        })?;
        return Ok(Asset::Unique { class: code, item: interlock_core::ItemId::from_u128(item) });
    }
    let amount: u128 = spec.amount.parse().map_err(|_| {
        Status::invalid_argument(format!("{leg} leg amount {}: expected a positive whole number", quote(&spec.amount)))
    })?;
    Ok(Asset::Fungible { code, amount })
}

fn account(party: &PartyEntry, network: NetworkId, leg: LegKind) -> Result<Address, Status> {
    party.account(network).ok_or_else(|| {
        Status::failed_precondition(format!(
            "{leg} leg: party {} has no account on network {network} in the directory",
            party.name
        ))
    })
}

/// The keys of the directory entries `names` stands for, in order, each once.
/// `what` names the list in messages; `lookup` finds one name's key.
fn named_keys(
    names: &[String],
    what: &str,
    max: usize,
    lookup: impl Fn(&str) -> Option<PartyId>,
    listed: impl Fn() -> Vec<String>,
) -> Result<Vec<PartyId>, Status> {
    if names.len() > max {
        return Err(Status::invalid_argument(format!("{} {what}: a deal names at most {max}", names.len())));
    }
    let mut keys = Vec::with_capacity(names.len());
    for name in names {
        let key = lookup(name).ok_or_else(|| {
            Status::invalid_argument(format!(
                "no {what} {} in the directory; it lists {}",
                quote(name),
                listed().join(", ")
            ))
        })?;
        if keys.contains(&key) {
            return Err(Status::invalid_argument(format!("{what} {} is named twice", quote(name))));
        }
        keys.push(key);
    }
    Ok(keys)
}

/// The observers a proposal names, by their directory names.
fn observers(directory: &Directory, names: &[String]) -> Result<Vec<PartyId>, Status> {
    named_keys(
        names,
        "observer",
        OBSERVERS_MAX,
        |name| directory.observer(name).map(|entry| entry.key),
        || directory.observers.iter().map(|entry| entry.name.clone()).collect(),
    )
}

/// The dependents a proposal names, by name: the directory's dependents, or
/// its parties.
fn dependents(directory: &Directory, names: &[String]) -> Result<Vec<PartyId>, Status> {
    named_keys(
        names,
        "dependent",
        DEPENDENTS_MAX,
        |name| {
            directory.dependent(name).map(|entry| entry.key).or_else(|| directory.party(name).map(|entry| entry.key))
        },
        || {
            let dependents = directory.dependents.iter().map(|entry| entry.name.clone());
            dependents.chain(directory.parties.iter().map(|entry| entry.name.clone())).collect()
        },
    )
}

/// The terms of `request` between `proposer` and its counterparty, stamped
/// `now_ms` and told apart from equal ones by `nonce`, with the buyer's secret
/// in hashlock mode.
pub fn draft(
    directory: &Directory,
    proposer: Proposer<'_>,
    request: &v1::ProposeDealRequest,
    now_ms: u64,
    nonce: u64,
    secret: Secret,
) -> Result<(DealTerms, Option<Secret>), Status> {
    let counterparty = directory.party(&request.counterparty).ok_or_else(|| {
        let names: Vec<&str> = directory.parties.iter().map(|p| p.name.as_str()).collect();
        Status::invalid_argument(format!(
            "no party {} in the directory; it lists {}",
            quote(&request.counterparty),
            names.join(", ")
        ))
    })?;
    if counterparty.name == proposer.entry.name {
        return Err(Status::invalid_argument("a party cannot deal with itself: choose another counterparty"));
    }
    let (buyer, seller) =
        if proposer.is_buyer { (proposer.entry, counterparty) } else { (counterparty, proposer.entry) };
    let window = match request.window_ms {
        0 => WINDOW_DEFAULT_MS,
        w if (WINDOW_MIN_MS..=WINDOW_MAX_MS).contains(&w) => w,
        w => {
            return Err(Status::invalid_argument(format!(
                "window {w} ms: expected {WINDOW_MIN_MS} to {WINDOW_MAX_MS} ms"
            )))
        }
    };
    let payment_spec =
        request.payment.as_ref().ok_or_else(|| Status::invalid_argument("the payment leg is missing"))?;
    let delivery_spec =
        request.delivery.as_ref().ok_or_else(|| Status::invalid_argument("the delivery leg is missing"))?;
    let (payment_network, delivery_network) =
        (network(directory, &payment_spec.network)?, network(directory, &delivery_spec.network)?);
    let hashlock = match request.mode.as_str() {
        "hashlock" => true,
        "notary" => false,
        other => return Err(Status::invalid_argument(format!("mode {}: expected hashlock or notary", quote(other)))),
    };
    if hashlock && !proposer.is_buyer {
        return Err(Status::invalid_argument(
            "in hashlock mode the buyer proposes: the buyer draws the secret whose hash the terms carry",
        ));
    }
    let policy = policy(request)?;
    let extension_ms = match policy.on_timeout {
        OnTimeout::ExtendOnce { by_ms } => by_ms,
        OnTimeout::Refund => 0,
    };
    // Bounded above: the window and the extension were checked against their
    // maxima, but the sum still says so rather than trusting the clock.
    let after = |offset_ms: u64| {
        now_ms.checked_add(offset_ms).ok_or_else(|| {
            Status::invalid_argument(format!("a deadline {offset_ms} ms after {now_ms} does not fit in 64 bits"))
        })
    };
    let settlement = if hashlock {
        Settlement::Hashlock {
            hash: secret.hash(),
            delivery_expiry_ms: after(window / 2)?,
            payment_expiry_ms: after(window)?,
            margin_ms: window / 2,
        }
    } else {
        if directory.notaries.is_empty() {
            return Err(Status::failed_precondition("notary mode needs notaries, and the directory lists none"));
        }
        let notaries: Vec<_> = directory.notaries.iter().map(|n| n.address).collect();
        let threshold = u8::try_from(notaries.len() / 2 + 1).unwrap_or(u8::MAX);
        Settlement::Notary {
            notaries,
            threshold,
            decision_deadline_ms: after(window)?,
            // The backstop leaves room for the policy's extension as well.
            backstop_expiry_ms: after(window.saturating_mul(2).saturating_add(extension_ms))?,
        }
    };
    // In hashlock mode the payment network's gateway keeps the seller's leg: it
    // executes with the revealed secret if the seller is away.
    let keeper = if hashlock { proposer.keepers.get(&payment_network).copied() } else { None };
    let terms = DealTerms {
        buyer: buyer.key,
        seller: seller.key,
        payment: Leg {
            network: payment_network,
            asset: asset(payment_spec, LegKind::Payment)?,
            owner: account(buyer, payment_network, LegKind::Payment)?,
            beneficiary: account(seller, payment_network, LegKind::Payment)?,
            keeper,
        },
        delivery: Leg {
            network: delivery_network,
            asset: asset(delivery_spec, LegKind::Delivery)?,
            owner: account(seller, delivery_network, LegKind::Delivery)?,
            beneficiary: account(buyer, delivery_network, LegKind::Delivery)?,
            keeper: None,
        },
        settlement,
        policy,
        observers: observers(directory, &request.observers)?,
        dependents: dependents(directory, &request.dependents)?,
        nonce,
    };
    terms.validate().map_err(|error| Status::invalid_argument(format!("the deal is not valid: {error}")))?;
    terms.check_timing_in(proposer.timings).map_err(|error| {
        Status::invalid_argument(format!("the deal is not valid: {error}; give it a longer --window"))
    })?;
    Ok((terms, hashlock.then_some(secret)))
}

/// The policy a proposal asks for (fields 40 on of `ProposeDealRequest`).
fn policy(request: &v1::ProposeDealRequest) -> Result<Policy, Status> {
    let amount = |field: &str, text: &str| -> Result<Option<u128>, Status> {
        if text.is_empty() {
            return Ok(None);
        }
        text.parse().map(Some).map_err(|_| {
            Status::invalid_argument(format!(
                "{field} {}: expected a whole number (or nothing for no limit)",
                quote(text)
            ))
        })
    };
    let on_timeout = match request.on_timeout.as_str() {
        "" | "refund" => OnTimeout::Refund,
        other => match other.strip_prefix("extend:").map(duration_ms) {
            Some(Some(by_ms)) if (1..=EXTENSION_MAX_MS).contains(&by_ms) => OnTimeout::ExtendOnce { by_ms },
            Some(Some(by_ms)) => {
                return Err(Status::invalid_argument(format!(
                    "on_timeout {}: the extension of {by_ms} ms is out of range: expected 1 to {EXTENSION_MAX_MS} ms",
                    quote(other)
                )))
            }
            _ => {
                return Err(Status::invalid_argument(format!(
                    "on_timeout {}: expected refund or extend:DURATION (e.g. extend:30s, extend:500ms, extend:2m)",
                    quote(other)
                )))
            }
        },
    };
    let allowed_assets = request
        .allow_assets
        .iter()
        .map(|code| AssetCode::new(code.trim()).map_err(|e| Status::invalid_argument(format!("allow_assets: {e}"))))
        .collect::<Result<_, _>>()?;
    Ok(Policy {
        amount_max: amount("max_amount", &request.max_amount)?,
        on_timeout,
        allowed_assets,
        amount_max_per_day: amount("max_per_day", &request.max_per_day)?,
        inspection: inspection(request)?,
    })
}

/// The inspection period a proposal asks for: `inspect` ("30s", "5m") and who
/// may dispute. The terms' own checks (notaries, length) follow in `validate`,
/// and the gateways refuse it where a platform cannot hold an executed leg.
fn inspection(request: &v1::ProposeDealRequest) -> Result<Option<Inspection>, Status> {
    if request.inspect.is_empty() {
        if !request.disputer.is_empty() {
            return Err(Status::invalid_argument("disputer: given without inspect (an inspection period)"));
        }
        return Ok(None);
    }
    let window_ms = duration_ms(&request.inspect).ok_or_else(|| {
        Status::invalid_argument(format!(
            "inspect {}: expected a duration (e.g. 30s, 500ms, 5m)",
            quote(&request.inspect)
        ))
    })?;
    let disputer = match request.disputer.as_str() {
        "" | "buyer" => Disputer::Buyer,
        "seller" => Disputer::Seller,
        "either" => Disputer::Either,
        other => {
            return Err(Status::invalid_argument(format!(
                "disputer {}: expected buyer, seller or either",
                quote(other)
            )))
        }
    };
    Ok(Some(Inspection { window_ms, disputer }))
}

/// `500ms`, `30s` or `2m` in milliseconds.
pub fn duration_ms(text: &str) -> Option<u64> {
    let (number, unit_ms) = if let Some(number) = text.strip_suffix("ms") {
        (number, 1)
    } else if let Some(number) = text.strip_suffix('s') {
        (number, 1_000)
    } else if let Some(number) = text.strip_suffix('m') {
        (number, 60_000)
    } else {
        return None;
    };
    number.parse::<u64>().ok()?.checked_mul(unit_ms)
}
