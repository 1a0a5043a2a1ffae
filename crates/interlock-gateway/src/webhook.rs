//! Webhooks: the subscriptions of parties and dependents, and the task that
//! POSTs the deliveries the store queued with each event.
//!
//! A delivery is a row of the store's `webhooks` table, written in the same
//! SQLite transaction as its event, so a crash between the event and the POST
//! loses nothing: the task finds the row again after a restart. Each attempt
//! that fails (no answer, or an answer other than 2xx) is counted and the next
//! one waits an exponential backoff with full jitter; after the last attempt
//! the delivery moves to the dead letters. Deliveries are at least once: the
//! `Idempotency-Key` (the event id) lets receivers keep each event once.

use super::error::GatewayError;
use super::GatewayService;
use crate::gateway_store::{EventKind, WebhookDelivery};
use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::time::Duration;

/// Longest subscription URL, in bytes.
pub const URL_LEN_MAX: usize = 2_048;
/// Shortest and longest HMAC secret, in bytes.
pub const SECRET_LEN_MIN: usize = 16;
pub const SECRET_LEN_MAX: usize = 256;
/// Deliveries attempted at once.
pub const WEBHOOK_BATCH_MAX: usize = 32;
/// Most attempts a policy may ask for.
pub const ATTEMPTS_MAX: u32 = 100;
/// How long an idle delivery task sleeps before looking at the table anyway.
const WEBHOOK_RECHECK: Duration = Duration::from_secs(1);
/// Longest error text kept with a delivery.
const ERROR_LEN_MAX: usize = 300;

/// The header carrying `sha256=<hex HMAC-SHA256(secret, body)>`.
pub const SIGNATURE_HEADER: &str = "Interlock-Signature";
/// The header carrying the event id.
pub const IDEMPOTENCY_HEADER: &str = "Idempotency-Key";

/// How hard a gateway tries to deliver each webhook.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct WebhookPolicy {
    /// The backoff before the second attempt is drawn from `0..=base`, the
    /// one before the third from `0..=2*base`, … never more than `cap`.
    pub base: Duration,
    pub cap: Duration,
    /// Attempts before a delivery becomes a dead letter (1 to [`ATTEMPTS_MAX`]).
    pub attempts: u32,
    /// Longest one POST may take.
    pub timeout: Duration,
}

impl Default for WebhookPolicy {
    fn default() -> WebhookPolicy {
        WebhookPolicy {
            base: Duration::from_millis(200),
            cap: Duration::from_secs(10),
            attempts: 8,
            timeout: Duration::from_secs(5),
        }
    }
}

impl WebhookPolicy {
    pub fn check(&self) -> Result<(), String> {
        if self.attempts == 0 || self.attempts > ATTEMPTS_MAX {
            return Err(format!("webhook attempts must be 1 to {ATTEMPTS_MAX}, found {}", self.attempts));
        }
        if self.base.is_zero() || self.cap < self.base {
            return Err(format!(
                "webhook backoff needs 0 < base <= cap, found base {:?} and cap {:?}",
                self.base, self.cap
            ));
        }
        Ok(())
    }

    /// The wait after failed attempt number `failed` (1 for the first), full
    /// jitter: uniform in `0..=min(cap, base * 2^(failed-1))`, drawn from `random`.
    pub fn backoff(&self, failed: u32, random: u64) -> Duration {
        let base_ms = u64::try_from(self.base.as_millis()).unwrap_or(u64::MAX);
        let cap_ms = u64::try_from(self.cap.as_millis()).unwrap_or(u64::MAX);
        let doublings = failed.saturating_sub(1).min(63);
        let ceiling_ms = base_ms.saturating_mul(1u64 << doublings).min(cap_ms);
        Duration::from_millis(random % (ceiling_ms + 1))
    }
}

/// `sha256=<hex>`: the HMAC-SHA256 of `body` under `secret`.
pub fn signature(secret: &[u8], body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes keys of any length");
    mac.update(body);
    format!("sha256={}", interlock_core::hash::to_hex(&mac.finalize().into_bytes()))
}

/// Whether `header` is the signature of `body` under `secret`, compared in
/// constant time.
pub fn verify_signature(secret: &[u8], body: &[u8], header: &str) -> bool {
    let Some(bytes) = header.strip_prefix("sha256=").and_then(interlock_core::hash::from_hex) else {
        return false;
    };
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes keys of any length");
    mac.update(body);
    mac.verify_slice(&bytes).is_ok()
}

/// Checks a subscription request's fields.
pub(crate) fn check_subscription(url: &str, secret: &[u8], kinds: &[String]) -> Result<Vec<EventKind>, GatewayError> {
    if url.len() > URL_LEN_MAX {
        return Err(GatewayError::malformed("url", format!("{} bytes, expected at most {URL_LEN_MAX}", url.len())));
    }
    let parsed = reqwest::Url::parse(url).map_err(|error| GatewayError::malformed("url", error))?;
    if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none() {
        return Err(GatewayError::malformed(
            "url",
            format!("expected http://host:port/path or https://host/path, found {}", interlock_rpc::access::quote(url)),
        ));
    }
    if !(SECRET_LEN_MIN..=SECRET_LEN_MAX).contains(&secret.len()) {
        return Err(GatewayError::malformed(
            "secret",
            format!("{} bytes, expected {SECRET_LEN_MIN} to {SECRET_LEN_MAX}", secret.len()),
        ));
    }
    if kinds.len() > EventKind::ALL.len() {
        return Err(GatewayError::TooMany { what: "kinds", count: kinds.len(), max: EventKind::ALL.len() });
    }
    kinds
        .iter()
        .map(|kind| {
            EventKind::parse(kind).ok_or_else(|| {
                let known: Vec<&str> = EventKind::ALL.iter().map(|kind| kind.as_str()).collect();
                GatewayError::malformed("kinds", format!("unknown kind {kind:?}, expected one of {}", known.join(", ")))
            })
        })
        .collect()
}

/// A small generator for the jitter; seeded from the system once per task.
struct Jitter(u64);

impl Jitter {
    fn new() -> Jitter {
        let mut seed = [0u8; 8];
        // A fixed seed only makes retries of several gateways line up.
        let _ = getrandom::getrandom(&mut seed);
        Jitter(u64::from_le_bytes(seed) | 1)
    }

    fn next(&mut self) -> u64 {
        // xorshift64*
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
}

fn shorten(mut text: String) -> String {
    if text.len() > ERROR_LEN_MAX {
        let mut end = ERROR_LEN_MAX;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
    }
    text
}

/// One POST; `Err` says why it did not count as delivered.
async fn post(client: &reqwest::Client, delivery: &WebhookDelivery) -> Result<(), String> {
    let response = client
        .post(&delivery.url)
        .header("content-type", "application/json")
        .header(IDEMPOTENCY_HEADER, &delivery.event_id)
        .header(SIGNATURE_HEADER, signature(&delivery.secret, &delivery.body))
        .body(delivery.body.clone())
        .send()
        .await
        .map_err(|error| format!("POST {} failed: {error}", delivery.url))?;
    let status = response.status();
    if status.is_success() {
        Ok(())
    } else {
        Err(format!("POST {} answered {status}", delivery.url))
    }
}

impl GatewayService {
    /// Delivers the webhooks the store holds, forever: each due delivery is
    /// POSTed (a batch at a time, concurrently), then removed, rescheduled or
    /// moved to the dead letters.
    pub(super) async fn deliver_webhooks(self, policy: WebhookPolicy) {
        interlock_identity::install_crypto_provider();
        let client = match reqwest::Client::builder().timeout(policy.timeout).build() {
            Ok(client) => client,
            Err(error) => {
                eprintln!("gateway {}: no webhook client, webhooks stay queued: {error}", self.shared.network);
                return;
            }
        };
        let mut jitter = Jitter::new();
        loop {
            let now_ms = (self.shared.clock)();
            let due = self
                .blocking("reading the due webhooks", move |service| {
                    Ok(service.registry().store.due_webhooks(now_ms, WEBHOOK_BATCH_MAX)?)
                })
                .await;
            let Some(due) = self.read_or_pause(due, "the webhooks", WEBHOOK_RECHECK).await else { continue };
            if due.is_empty() {
                self.wait_for_webhooks(now_ms).await;
                continue;
            }
            let outcomes =
                futures_join_all(due.iter().map(|delivery| post(&client, delivery)).collect::<Vec<_>>()).await;
            let settled: Vec<_> =
                due.into_iter().zip(outcomes).map(|(delivery, outcome)| (delivery, outcome, jitter.next())).collect();
            let written = self
                .blocking("recording webhook attempts", move |service| {
                    for (delivery, outcome, random) in &settled {
                        service.settle_webhook(&policy, delivery, outcome.clone(), *random);
                    }
                    Ok(())
                })
                .await;
            if let Err(error) = written {
                eprintln!("gateway {}: {error}", self.shared.network);
            }
        }
    }

    /// Sleeps until the next delivery is due, a new one is queued, or a while passed.
    async fn wait_for_webhooks(&self, now_ms: u64) {
        let next = self.blocking("reading the next webhook due", |service| {
            Ok(service.registry().store.next_webhook_due_ms().ok().flatten())
        });
        let next = next.await.ok().flatten();
        let wait = next.map_or(WEBHOOK_RECHECK, |due_ms| Duration::from_millis(due_ms.saturating_sub(now_ms)));
        let _ = tokio::time::timeout(wait.min(WEBHOOK_RECHECK), self.shared.webhook_wake.notified()).await;
    }

    fn settle_webhook(
        &self,
        policy: &WebhookPolicy,
        delivery: &WebhookDelivery,
        outcome: Result<(), String>,
        random: u64,
    ) {
        let network = self.shared.network;
        let mut registry = self.registry();
        let written = match outcome {
            Ok(()) => registry.store.webhook_delivered(delivery.id),
            Err(error) => {
                let error = shorten(error);
                let failed = delivery.attempts.saturating_add(1);
                if failed >= policy.attempts {
                    eprintln!(
                        "gateway {network}: webhook {} to {} failed {failed} times, now a dead letter: {error}",
                        delivery.event_id, delivery.subscriber
                    );
                    registry.store.webhook_dead(delivery, &error, (self.shared.clock)())
                } else {
                    if failed == 1 {
                        eprintln!(
                            "gateway {network}: webhook {} to {} failed, retrying: {error}",
                            delivery.event_id, delivery.subscriber
                        );
                    }
                    interlock_rpc::metrics::metrics().webhook_retries().inc();
                    let wait = policy.backoff(failed, random);
                    let due_ms = (self.shared.clock)().saturating_add(u64::try_from(wait.as_millis()).unwrap_or(0));
                    registry.store.webhook_retry(delivery.id, failed, due_ms, &error)
                }
            }
        };
        if let Err(error) = written {
            eprintln!("gateway {network}: recording a webhook attempt failed: {error}");
        }
    }
}

/// Runs the futures concurrently and returns their outputs in order.
async fn futures_join_all<F: std::future::Future>(futures: Vec<F>) -> Vec<F::Output> {
    let mut pinned: Vec<_> = futures.into_iter().map(Box::pin).collect();
    let mut outputs: Vec<Option<F::Output>> = pinned.iter().map(|_| None).collect();
    std::future::poll_fn(|context| {
        let mut pending = false;
        for (future, output) in pinned.iter_mut().zip(outputs.iter_mut()) {
            if output.is_none() {
                match future.as_mut().poll(context) {
                    std::task::Poll::Ready(value) => *output = Some(value),
                    std::task::Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            std::task::Poll::Pending
        } else {
            std::task::Poll::Ready(())
        }
    })
    .await;
    outputs.into_iter().map(|output| output.expect("every future finished")).collect()
}
