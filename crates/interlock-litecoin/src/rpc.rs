//! A small JSON-RPC client for litecoind: single and batched calls over HTTP,
//! authenticated with the node's cookie file (read again on every call, so a
//! restarted node's new cookie is picked up).

use interlock_chain::ChainError;
use serde::de::DeserializeOwned;
use serde_json::{json, Value};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// How long one call may take before it counts as a passing failure.
const CALL_TIMEOUT: Duration = Duration::from_secs(30);

/// RPC error codes litecoind answers with (Bitcoin Core's `RPCErrorCode`).
pub mod code {
    /// The node is still loading its block index or wallet.
    pub const IN_WARMUP: i64 = -28;
    /// The transaction was refused by the mempool or the consensus rules.
    pub const VERIFY_REJECTED: i64 = -26;
    /// The transaction is already in the chain.
    pub const VERIFY_ALREADY_IN_CHAIN: i64 = -27;
    /// Inputs missing or already spent.
    pub const VERIFY_ERROR: i64 = -25;
    /// No such block, transaction or wallet.
    pub const INVALID_ADDRESS_OR_KEY: i64 = -5;
    /// Not enough fee data (`estimatesmartfee` on a young chain answers with
    /// an `errors` field instead; kept for older nodes).
    pub const MISC_ERROR: i64 = -1;
}

/// Why a call did not answer.
#[derive(Clone, PartialEq, Eq, Debug, thiserror::Error)]
pub enum RpcError {
    /// The node could not be reached or did not answer in time.
    #[error("litecoind at {url} is unreachable: {detail}")]
    Transport { url: String, detail: String },
    /// The node refused the credentials.
    #[error("litecoind at {url} refused the credentials of {cookie}: check `rpc_cookie`")]
    Auth { url: String, cookie: String },
    /// The node answered with an error.
    #[error("litecoind: {method}: {message} (code {code})")]
    Rpc { method: String, code: i64, message: String },
    /// The node answered with something that is not what the method returns.
    #[error("litecoind: {method}: unexpected answer: {detail}")]
    Malformed { method: String, detail: String },
}

impl RpcError {
    /// The node's error code, for an error the node answered with.
    pub fn code(&self) -> Option<i64> {
        match self {
            RpcError::Rpc { code, .. } => Some(*code),
            _ => None,
        }
    }
}

impl From<RpcError> for ChainError {
    /// Unreachable or warming up: retry later; anything else needs a person,
    /// unless the caller classified the node's error itself first.
    fn from(error: RpcError) -> ChainError {
        match &error {
            RpcError::Transport { .. } => ChainError::retry_later(error.to_string()),
            RpcError::Rpc { code, .. } if *code == code::IN_WARMUP => ChainError::retry_later(error.to_string()),
            _ => ChainError::fatal(error.to_string()),
        }
    }
}

/// One method and its parameters, for a batch.
#[derive(Clone, Debug)]
pub struct Call {
    pub method: &'static str,
    pub params: Value,
}

impl Call {
    pub fn new(method: &'static str, params: Value) -> Call {
        Call { method, params }
    }
}

/// A litecoind JSON-RPC endpoint. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Rpc {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    url: String,
    cookie: PathBuf,
    http: reqwest::Client,
    next_id: AtomicU64,
}

impl Rpc {
    /// A client of the node at `url` (`http://host:port`, a wallet path
    /// appended by [`Rpc::wallet`]) that authenticates with the cookie file
    /// the node writes in its data directory.
    pub fn new(url: &str, cookie: impl Into<PathBuf>) -> Result<Rpc, ChainError> {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let http = reqwest::Client::builder()
            .timeout(CALL_TIMEOUT)
            // No idle connections: litecoind waits for open ones before it stops.
            .pool_max_idle_per_host(0)
            .build()
            .map_err(|error| ChainError::fatal(format!("cannot build an HTTP client: {error}")))?;
        let url = url.trim_end_matches('/').to_owned();
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            return Err(ChainError::fatal(format!("rpc {url:?} must start with http:// or https://")));
        }
        Ok(Rpc { inner: Arc::new(Inner { url, cookie: cookie.into(), http, next_id: AtomicU64::new(1) }) })
    }

    /// The same node, calling wallet methods of the wallet `name`.
    pub fn wallet(&self, name: &str) -> Rpc {
        let base = self.inner.url.split("/wallet/").next().unwrap_or(&self.inner.url);
        Rpc {
            inner: Arc::new(Inner {
                url: format!("{base}/wallet/{name}"),
                cookie: self.inner.cookie.clone(),
                http: self.inner.http.clone(),
                next_id: AtomicU64::new(1),
            }),
        }
    }

    pub fn url(&self) -> &str {
        &self.inner.url
    }

    fn credentials(&self) -> Result<(String, String), RpcError> {
        let text = std::fs::read_to_string(&self.inner.cookie).map_err(|error| RpcError::Transport {
            url: self.inner.url.clone(),
            detail: format!("cannot read the cookie file {}: {error}", self.inner.cookie.display()),
        })?;
        let (user, password) = text.trim().split_once(':').ok_or_else(|| RpcError::Auth {
            url: self.inner.url.clone(),
            cookie: self.inner.cookie.display().to_string(),
        })?;
        Ok((user.to_owned(), password.to_owned()))
    }

    async fn post(&self, body: &Value, method: &str) -> Result<Value, RpcError> {
        let (user, password) = self.credentials()?;
        let transport = |detail: String| RpcError::Transport { url: self.inner.url.clone(), detail };
        let response = self
            .inner
            .http
            .post(&self.inner.url)
            .basic_auth(user, Some(password))
            .header("content-type", "application/json")
            .body(body.to_string())
            .send()
            .await
            .map_err(|error| transport(error.to_string()))?;
        let status = response.status();
        if status == reqwest::StatusCode::UNAUTHORIZED || status == reqwest::StatusCode::FORBIDDEN {
            return Err(RpcError::Auth {
                url: self.inner.url.clone(),
                cookie: self.inner.cookie.display().to_string(),
            });
        }
        let text = response.text().await.map_err(|error| transport(error.to_string()))?;
        serde_json::from_str(&text).map_err(|_| RpcError::Malformed {
            method: method.to_owned(),
            detail: format!("HTTP {status}: {}", text.chars().take(200).collect::<String>()),
        })
    }

    /// Calls `method` and returns its raw result.
    pub async fn call_value(&self, method: &str, params: Value) -> Result<Value, RpcError> {
        let id = self.inner.next_id.fetch_add(1, Ordering::Relaxed);
        let body = json!({ "jsonrpc": "1.0", "id": id, "method": method, "params": params });
        let answer = self.post(&body, method).await?;
        result_of(method, answer)
    }

    /// Calls `method` and reads its result as `T`.
    pub async fn call<T: DeserializeOwned>(&self, method: &str, params: Value) -> Result<T, RpcError> {
        let value = self.call_value(method, params).await?;
        serde_json::from_value(value)
            .map_err(|error| RpcError::Malformed { method: method.to_owned(), detail: error.to_string() })
    }

    /// Sends `calls` in one HTTP request; the answers come back in the same
    /// order, each a result or that call's own error.
    pub async fn batch(&self, calls: &[Call]) -> Result<Vec<Result<Value, RpcError>>, RpcError> {
        if calls.is_empty() {
            return Ok(Vec::new());
        }
        let first = self.inner.next_id.fetch_add(calls.len() as u64, Ordering::Relaxed);
        let body: Vec<Value> = calls
            .iter()
            .zip(first..)
            .map(|(call, id)| json!({ "jsonrpc": "1.0", "id": id, "method": call.method, "params": call.params }))
            .collect();
        let answer = self.post(&Value::Array(body), "batch").await?;
        let Value::Array(answers) = answer else {
            return Err(RpcError::Malformed { method: "batch".into(), detail: "not an array".into() });
        };
        let mut results: Vec<Option<Result<Value, RpcError>>> = (0..calls.len()).map(|_| None).collect();
        for answer in answers {
            let index = answer
                .get("id")
                .and_then(Value::as_u64)
                .and_then(|id| id.checked_sub(first))
                .and_then(|offset| usize::try_from(offset).ok())
                .filter(|index| *index < calls.len());
            let Some(index) = index else {
                return Err(RpcError::Malformed {
                    method: "batch".into(),
                    detail: "an answer with an unknown id".into(),
                });
            };
            results[index] = Some(result_of(calls[index].method, answer));
        }
        results
            .into_iter()
            .zip(calls)
            .map(|(result, call)| {
                result.ok_or_else(|| RpcError::Malformed {
                    method: call.method.to_owned(),
                    detail: "no answer in the batch".into(),
                })
            })
            .collect()
    }
}

fn result_of(method: &str, mut answer: Value) -> Result<Value, RpcError> {
    match answer.get("error") {
        Some(Value::Null) | None => Ok(answer.get_mut("result").map(Value::take).unwrap_or(Value::Null)),
        Some(error) => Err(RpcError::Rpc {
            method: method.to_owned(),
            code: error.get("code").and_then(Value::as_i64).unwrap_or(0),
            message: error.get("message").and_then(Value::as_str).unwrap_or("no message").to_owned(),
        }),
    }
}
