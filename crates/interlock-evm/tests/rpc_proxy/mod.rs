//! A JSON-RPC proxy in front of anvil: it records every call (method and
//! parameters) and, when told to, refuses `eth_getLogs` queries spanning more
//! blocks than a limit, with the error text a hosted provider sends.

#![allow(dead_code)]

use axum::body::Bytes;
use axum::extract::State;
use axum::http::header::CONTENT_TYPE;
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};
use std::sync::{Arc, Mutex};

/// One call the proxy saw.
#[derive(Clone, Debug)]
pub struct Call {
    pub method: String,
    pub params: Value,
    /// Refused by the proxy instead of forwarded.
    pub refused: bool,
}

#[derive(Default)]
struct Rules {
    /// `eth_getLogs` spanning more blocks than this is refused.
    log_blocks_max: Option<u64>,
    /// The provider's words for the refusal.
    refusal: String,
}

struct Shared {
    upstream: String,
    client: reqwest::Client,
    calls: Mutex<Vec<Call>>,
    rules: Mutex<Rules>,
}

/// The proxy; it stops when dropped.
pub struct RpcProxy {
    pub url: String,
    shared: Arc<Shared>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for RpcProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl RpcProxy {
    /// Listens on a free loopback port and forwards to `upstream`.
    pub async fn start(upstream: &str) -> RpcProxy {
        let shared = Arc::new(Shared {
            upstream: upstream.to_owned(),
            client: interlock_evm::http::http_client(None).expect("an HTTP client"),
            calls: Mutex::new(Vec::new()),
            rules: Mutex::new(Rules::default()),
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind a loopback port");
        let url = format!("http://{}", listener.local_addr().expect("bound address"));
        let router = axum::Router::new().route("/", axum::routing::post(handle)).with_state(shared.clone());
        let task = tokio::spawn(async move {
            axum::serve(listener, router).await.expect("proxy serves");
        });
        RpcProxy { url, shared, task }
    }

    /// Refuses `eth_getLogs` over more than `blocks` blocks with `refusal`.
    pub fn limit_log_blocks(&self, blocks: u64, refusal: &str) {
        let mut rules = self.shared.rules.lock().unwrap();
        rules.log_blocks_max = Some(blocks);
        rules.refusal = refusal.to_owned();
    }

    pub fn calls(&self) -> Vec<Call> {
        self.shared.calls.lock().unwrap().clone()
    }

    pub fn clear(&self) {
        self.shared.calls.lock().unwrap().clear();
    }

    /// The `[from, to]` block range of each `eth_getLogs` call, refused or not.
    pub fn log_ranges(&self) -> Vec<(u64, u64, bool)> {
        self.calls()
            .iter()
            .filter(|call| call.method == "eth_getLogs")
            .filter_map(|call| log_range(&call.params).map(|(from, to)| (from, to, call.refused)))
            .collect()
    }
}

fn quantity(value: &Value) -> Option<u64> {
    u64::from_str_radix(value.as_str()?.strip_prefix("0x")?, 16).ok()
}

fn log_range(params: &Value) -> Option<(u64, u64)> {
    let filter = params.get(0)?;
    Some((quantity(filter.get("fromBlock")?)?, quantity(filter.get("toBlock")?)?))
}

async fn handle(State(shared): State<Arc<Shared>>, body: Bytes) -> Response {
    let request: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let method = request.get("method").and_then(Value::as_str).unwrap_or("").to_owned();
    let params = request.get("params").cloned().unwrap_or(Value::Null);
    let refused = {
        let rules = shared.rules.lock().unwrap();
        let too_wide = |(from, to): (u64, u64)| rules.log_blocks_max.is_some_and(|max| to + 1 - from.min(to + 1) > max);
        (method == "eth_getLogs" && log_range(&params).is_some_and(too_wide)).then(|| rules.refusal.clone())
    };
    shared.calls.lock().unwrap().push(Call { method, params, refused: refused.is_some() });
    if let Some(message) = refused {
        let id = request.get("id").cloned().unwrap_or(Value::Null);
        let answer = json!({ "jsonrpc": "2.0", "id": id, "error": { "code": -32005, "message": message } });
        return ([(CONTENT_TYPE, "application/json")], answer.to_string()).into_response();
    }
    let forwarded = shared.client.post(&shared.upstream).header(CONTENT_TYPE, "application/json").body(body).send();
    match forwarded.await {
        Ok(answer) => {
            let status = answer.status();
            let bytes = answer.bytes().await.unwrap_or_default();
            (status, [(CONTENT_TYPE, "application/json")], bytes).into_response()
        }
        Err(error) => (axum::http::StatusCode::BAD_GATEWAY, error.to_string()).into_response(),
    }
}
