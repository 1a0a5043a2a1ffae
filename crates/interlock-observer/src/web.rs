//! The observer's web page: `/` lists the deals with their status,
//! `/deals/{id}` draws one deal's timeline on both networks, with its
//! deadlines, and polls `/api/deals/{id}` to follow it live. Plain HTML, CSS
//! and JavaScript, compiled into the binary.

use super::{is_final, leg_text, status_filter, ObserverService, DEAL_RECORDS_MAX, LIST_LIMIT_DEFAULT};
use axum::extract::{Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use interlock_core::hash::to_hex;
use interlock_core::{DealId, DealTerms, Hash32, LegKind, Settlement};
use interlock_identity::Directory;
use interlock_rpc::store::StoreError;
use serde_json::{json, Value};

const INDEX_HTML: &str = include_str!("page/index.html");
const DEAL_HTML: &str = include_str!("page/deal.html");
const STYLE_CSS: &str = include_str!("page/style.css");
const APP_JS: &str = include_str!("page/app.js");

/// The page's routes over `service`.
pub fn router(service: ObserverService) -> Router {
    Router::new()
        .route("/", get(|| async { html(INDEX_HTML) }))
        .route("/deals/{id}", get(|| async { html(DEAL_HTML) }))
        .route("/static/style.css", get(|| async { asset("text/css; charset=utf-8", STYLE_CSS) }))
        .route("/static/app.js", get(|| async { asset("text/javascript; charset=utf-8", APP_JS) }))
        .route("/api/deals", get(list))
        .route("/api/deals/{id}", get(deal))
        .fallback(|| async { problem(StatusCode::NOT_FOUND, "no such page: try / for the list of deals".into()) })
        .with_state(service)
}

/// Serves the page on `listener` until `shutdown` resolves.
pub async fn serve(
    service: ObserverService,
    listener: tokio::net::TcpListener,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router(service)).with_graceful_shutdown(shutdown).await
}

fn html(text: &'static str) -> Response {
    ([(header::CONTENT_TYPE, "text/html; charset=utf-8"), (header::CACHE_CONTROL, "no-store")], text).into_response()
}

fn asset(content_type: &'static str, text: &'static str) -> Response {
    ([(header::CONTENT_TYPE, content_type)], text).into_response()
}

fn problem(status: StatusCode, message: String) -> Response {
    (status, Json(json!({ "error": message }))).into_response()
}

fn storage(error: interlock_rpc::store::StoreError) -> Response {
    problem(StatusCode::INTERNAL_SERVER_ERROR, format!("observer storage failed: {error}"))
}

#[derive(serde::Deserialize)]
struct ListQuery {
    status: Option<String>,
}

fn network_name(directory: &Directory, network: u64) -> String {
    directory
        .network(interlock_core::NetworkId(network))
        .map_or_else(|| format!("network {network}"), |entry| entry.name.clone())
}

fn party_name(directory: &Directory, key: interlock_core::PartyId) -> String {
    directory.parties.iter().find(|p| p.key == key).map_or_else(|| to_hex(&key.0[..8]), |p| p.name.clone())
}

async fn list(State(service): State<ObserverService>, Query(query): Query<ListQuery>) -> Response {
    let status = match status_filter(query.status.as_deref().unwrap_or("")) {
        Ok(status) => status,
        Err(message) => return problem(StatusCode::BAD_REQUEST, message),
    };
    let status = status.map(str::to_owned);
    let read =
        service.blocking("listing deals", move |service| service.log().deals(status.as_deref(), LIST_LIMIT_DEFAULT));
    let deals = match read.await {
        Ok(Ok(deals)) => deals,
        Ok(Err(error)) => return storage(error),
        Err(message) => return problem(StatusCode::INTERNAL_SERVER_ERROR, message),
    };
    let directory = service.directory();
    let deals: Vec<Value> = deals
        .iter()
        .map(|deal| {
            json!({
                "deal_id": deal.deal_id.0.to_hex(), "status": deal.status, "mode": deal.terms.mode().to_string(),
                "buyer": party_name(directory, deal.terms.buyer), "seller": party_name(directory, deal.terms.seller),
                "payment": leg_text(directory, &deal.terms, LegKind::Payment),
                "delivery": leg_text(directory, &deal.terms, LegKind::Delivery),
                "first_ms": deal.first_ms, "last_ms": deal.last_ms, "records": deal.records,
            })
        })
        .collect();
    Json(json!({ "deals": deals, "now_ms": now_ms() })).into_response()
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// The deal's deadlines, each with the network lane it belongs to (none: both).
fn deadlines(terms: &DealTerms) -> Vec<Value> {
    let mut deadlines = match &terms.settlement {
        Settlement::Hashlock { payment_expiry_ms, delivery_expiry_ms, .. } => vec![
            json!({ "label": "delivery expiry", "at_ms": delivery_expiry_ms, "network": terms.delivery.network.0 }),
            json!({ "label": "payment expiry", "at_ms": payment_expiry_ms, "network": terms.payment.network.0 }),
        ],
        Settlement::Notary { decision_deadline_ms, backstop_expiry_ms, .. } => vec![
            json!({ "label": "decision deadline", "at_ms": decision_deadline_ms, "network": null }),
            json!({ "label": "backstop expiry", "at_ms": backstop_expiry_ms, "network": null }),
        ],
    };
    if let Some(ends_ms) = terms.inspection_ends_ms() {
        deadlines.push(json!({ "label": "inspection window closes", "at_ms": ends_ms, "network": null }));
    }
    deadlines
}

/// The deal's inspection period (null without one): how long, who may
/// dispute, and when the window closes, which the page counts down to.
fn inspection(terms: &DealTerms) -> Value {
    match (terms.policy.inspection, terms.inspection_ends_ms()) {
        (Some(inspection), Some(ends_ms)) => json!({
            "window_ms": inspection.window_ms, "disputer": inspection.disputer.to_string(), "ends_ms": ends_ms,
        }),
        _ => Value::Null,
    }
}

fn parse_deal_id(text: &str) -> Option<DealId> {
    Hash32::from_hex(text).map(DealId)
}

async fn deal(State(service): State<ObserverService>, Path(id): Path<String>) -> Response {
    let Some(deal_id) = parse_deal_id(&id) else {
        return problem(StatusCode::BAD_REQUEST, format!("deal id {id:?}: expected 64 hex digits"));
    };
    let read = service.blocking("reading a deal", move |service| {
        let log = service.log();
        let deal = log.deal(deal_id)?;
        Ok::<_, StoreError>((deal, log.records_of(deal_id, DEAL_RECORDS_MAX)?))
    });
    let (deal, records) = match read.await {
        Ok(Ok((Some(deal), records))) => (deal, records),
        Ok(Ok((None, _))) => return problem(StatusCode::NOT_FOUND, format!("this observer records no deal {deal_id}")),
        Ok(Err(error)) => return storage(error),
        Err(message) => return problem(StatusCode::INTERNAL_SERVER_ERROR, message),
    };
    let directory = service.directory();
    let terms = &deal.terms;
    let leg = |kind: LegKind| {
        let network = terms.leg(kind).network.0;
        json!({
            "text": leg_text(directory, terms, kind), "network": network,
            "network_name": network_name(directory, network), "expiry_ms": terms.expiry_ms(kind),
        })
    };
    let records: Vec<Value> = records
        .into_iter()
        .map(|record| {
            let body: Value = serde_json::from_str(&record.entry.body).unwrap_or(Value::Null);
            json!({
                "seq": record.seq, "kind": record.entry.kind, "network": record.entry.network,
                "network_name": if record.entry.network == 0 { "both".to_owned() } else { network_name(directory, record.entry.network) },
                "height": record.entry.height, "timestamp_ms": record.entry.timestamp_ms,
                "text": body.get("text").cloned().unwrap_or(Value::Null), "body": body,
                "hash": record.hash.to_hex(), "prev_hash": record.prev_hash.to_hex(),
            })
        })
        .collect();
    Json(json!({
        "deal_id": deal_id.0.to_hex(), "status": deal.status, "final": is_final(&deal.status),
        "mode": terms.mode().to_string(),
        "buyer": party_name(directory, terms.buyer), "seller": party_name(directory, terms.seller),
        "payment": leg(LegKind::Payment), "delivery": leg(LegKind::Delivery),
        "deadlines": deadlines(terms), "inspection": inspection(terms), "records": records, "now_ms": now_ms(),
        "observer_key": to_hex(&service.observer_key().0),
    }))
    .into_response()
}
