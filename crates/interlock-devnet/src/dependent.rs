//! `interlock dependent`: a sample dependent (a warranty service) that
//! receives the gateways' webhooks. It subscribes at every gateway of the
//! directory under its own certificate, checks each POST's HMAC signature
//! (401 when it does not verify, 400 when the body is not an event), keeps
//! each event once by its Idempotency-Key in SQLite (a duplicate gets 200 and
//! is not logged again), logs every completion it receives, and lists what it
//! received at `GET /received`.

use crate::setup::seed_file;
use anyhow::Context as _;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use interlock_gateway::webhook::{verify_signature, IDEMPOTENCY_HEADER, SIGNATURE_HEADER};
use interlock_proto::v1;
use interlock_proto::v1::gateway_client::GatewayClient;
use interlock_rpc::server::ServiceFiles;
use rusqlite::{params, Connection};
use std::io::Write as _;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The HMAC secret it gives the gateways (64 hex digits, created 0600).
const SECRET_FILE: &str = "webhook.secret";
/// The events received, one row per Idempotency-Key.
const STORE_FILE: &str = "dependent.sqlite";
/// Largest webhook body accepted, in bytes.
const BODY_LEN_MAX: usize = 64 * 1024;
/// Most rows `GET /received` returns.
const RECEIVED_MAX: usize = 10_000;
/// Wait between subscription attempts while a gateway is unreachable.
const SUBSCRIBE_RETRY: Duration = Duration::from_millis(500);

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS received (
    event_id TEXT PRIMARY KEY,
    deal_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    body TEXT NOT NULL,
    received_ms INTEGER NOT NULL
);
";

pub struct DependentServe {
    pub data: PathBuf,
    pub listen: std::net::SocketAddr,
    pub files: ServiceFiles,
    /// The URL the gateways POST to (default: http://LISTEN/webhook).
    pub url: Option<String>,
    /// The event kinds to subscribe to; empty for all.
    pub kinds: Vec<String>,
}

/// A webhook body, as the gateways send it.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Event {
    event_id: String,
    deal_id: String,
    kind: String,
    network: u64,
    height: u64,
    timestamp_ms: u64,
    text: String,
}

struct Receiver {
    name: String,
    secret: [u8; 32],
    store: Mutex<Connection>,
}

/// Runs the dependent until interrupted. Prints `listening on ADDRESS` once it serves.
pub fn serve(options: DependentServe) -> anyhow::Result<()> {
    std::fs::create_dir_all(&options.data).with_context(|| format!("cannot create {}", options.data.display()))?;
    let secret = seed_file(&options.data.join(SECRET_FILE), "a webhook secret")?;
    let tls = options.files.tls();
    let directory = options.files.directory()?;
    if directory.dependent(&options.files.name).is_none() {
        anyhow::bail!("the directory lists no dependent named {}", options.files.name);
    }
    let store = Connection::open(options.data.join(STORE_FILE))?;
    store.execute_batch("PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL;")?;
    store.execute_batch(SCHEMA)?;
    let receiver = Arc::new(Receiver { name: options.files.name.clone(), secret, store: Mutex::new(store) });
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(options.listen)
            .await
            .with_context(|| format!("cannot listen on {}", options.listen))?;
        let address = listener.local_addr()?;
        let url = options.url.clone().unwrap_or_else(|| format!("http://{address}/webhook"));
        let app = axum::Router::new()
            .route("/webhook", axum::routing::post(webhook))
            .route("/received", axum::routing::get(received))
            .route("/health", axum::routing::get(|| async { "serving" }))
            .layer(DefaultBodyLimit::max(BODY_LEN_MAX))
            .with_state(receiver);
        println!("listening on {address} (dependent {}, webhooks at {url})", options.files.name);
        std::io::stdout().flush()?;
        for gateway in &directory.gateways {
            let client = GatewayClient::new(interlock_rpc::server::lazy_channel(&gateway.endpoint, &tls)?);
            let request =
                v1::SubscribeRequest { url: url.clone(), secret: secret.to_vec(), kinds: options.kinds.clone() };
            tokio::spawn(subscribe(client, gateway.name.clone(), request));
        }
        let shutdown = async {
            let _ = tokio::signal::ctrl_c().await;
        };
        axum::serve(listener, app).with_graceful_shutdown(shutdown).await?;
        anyhow::Ok(())
    })
}

/// Subscribes at one gateway, retrying while it is unreachable.
async fn subscribe(
    mut client: GatewayClient<tonic::transport::Channel>,
    gateway: String,
    request: v1::SubscribeRequest,
) {
    let mut complained = false;
    loop {
        match client.subscribe(request.clone()).await {
            Ok(response) => {
                println!("subscribed at {gateway} as {}", response.into_inner().subscriber);
                return;
            }
            Err(status) if status.code() == tonic::Code::Unavailable => {
                if !complained {
                    println!("{gateway} unreachable, subscribing again soon: {}", status.message());
                    complained = true;
                }
                tokio::time::sleep(SUBSCRIBE_RETRY).await;
            }
            Err(status) => {
                println!("{gateway} refused the subscription: {}", status.message());
                return;
            }
        }
    }
}

fn header<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers.get(name).and_then(|value| value.to_str().ok())
}

async fn webhook(State(receiver): State<Arc<Receiver>>, headers: HeaderMap, body: Bytes) -> impl IntoResponse {
    let signed = header(&headers, SIGNATURE_HEADER).is_some_and(|sig| verify_signature(&receiver.secret, &body, sig));
    if !signed {
        return (StatusCode::UNAUTHORIZED, format!("{SIGNATURE_HEADER} missing or not the body's HMAC-SHA256"));
    }
    let event: Event = match serde_json::from_slice(&body) {
        Ok(event) => event,
        Err(error) => return (StatusCode::BAD_REQUEST, format!("the body is not an Interlock event: {error}")),
    };
    if header(&headers, IDEMPOTENCY_HEADER) != Some(event.event_id.as_str()) {
        return (StatusCode::BAD_REQUEST, format!("{IDEMPOTENCY_HEADER} must be the event id {:?}", event.event_id));
    }
    let inserted = {
        let store = receiver.store.lock().expect("nothing panics while holding the store");
        store
            .prepare_cached(
                "INSERT OR IGNORE INTO received (event_id, deal_id, kind, body, received_ms) VALUES (?1, ?2, ?3, ?4, ?5)",
            )
            .and_then(|mut statement| {
                let body = String::from_utf8_lossy(&body);
                let now_ms = i64::try_from(crate::setup::now_ms()).unwrap_or(i64::MAX);
                statement.execute(params![event.event_id, event.deal_id, event.kind, body, now_ms])
            })
    };
    match inserted {
        Ok(0) => (StatusCode::OK, "duplicate".to_owned()),
        Ok(_) => {
            log_event(&receiver.name, &event);
            (StatusCode::OK, "recorded".to_owned())
        }
        Err(error) => (StatusCode::SERVICE_UNAVAILABLE, format!("storage failed: {error}")),
    }
}

fn log_event(name: &str, event: &Event) {
    if event.kind == "completed" {
        println!("{name}: deal {} completed — starting warranty", event.deal_id);
    } else {
        println!(
            "{name}: deal {} {} (network {}, height {}, {} ms): {}",
            event.deal_id, event.kind, event.network, event.height, event.timestamp_ms, event.text
        );
    }
    let _ = std::io::stdout().flush();
}

async fn received(State(receiver): State<Arc<Receiver>>) -> impl IntoResponse {
    let rows = {
        let store = receiver.store.lock().expect("nothing panics while holding the store");
        read_received(&store)
    };
    match rows {
        Ok(rows) => {
            let json = serde_json::Value::Array(rows).to_string();
            (StatusCode::OK, [(axum::http::header::CONTENT_TYPE, "application/json")], json).into_response()
        }
        Err(error) => (StatusCode::SERVICE_UNAVAILABLE, format!("storage failed: {error}")).into_response(),
    }
}

fn read_received(store: &Connection) -> rusqlite::Result<Vec<serde_json::Value>> {
    let mut statement = store.prepare_cached(
        "SELECT event_id, deal_id, kind, received_ms FROM received ORDER BY received_ms, event_id LIMIT ?1",
    )?;
    let limit = i64::try_from(RECEIVED_MAX).unwrap_or(i64::MAX);
    let rows = statement.query_map([limit], |row| {
        Ok(serde_json::json!({
            "event_id": row.get::<_, String>(0)?,
            "deal_id": row.get::<_, String>(1)?,
            "kind": row.get::<_, String>(2)?,
            "received_ms": row.get::<_, i64>(3)?,
        }))
    })?;
    rows.collect()
}
