//! Prometheus metrics of every service role, process-wide, and the HTTP
//! endpoint that serves them (`GET /metrics`, text exposition format).
//!
//! Names: `interlock_deal_events_total{role,event}` counts what happened to
//! deals (an agent's deals running, completed, refunded; a notary's commits and
//! aborts; a gateway's registrations); `interlock_deals{role,state}` is how many
//! deals are in each state now; `interlock_step_latency_seconds{role,step}` the
//! time steps take; `interlock_queue_depth{role,queue}` the length of queues
//! (a ledger's mempool, a gateway's outbox); `interlock_webhook_retries_total`
//! the webhook deliveries retried; `interlock_grpc_calls_total{method}` the
//! gRPC calls this process served (those the access matrix let through),
//! `interlock_signatures_checked_total{scheme}` the signatures it checked and
//! `interlock_durable_commits_total` the storage transactions it synced: what
//! `bench sandbox` divides by the deals settled.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;
use std::sync::OnceLock;
use std::time::Duration;

/// Declares a metric's label set: a struct of `&'static str` labels, each
/// field one label of the same name.
macro_rules! label_set {
    ($($name:ident { $($label:ident),+ })+) => {$(
        #[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
        pub struct $name {
            $(pub $label: &'static str,)+
        }
    )+};
}

label_set! {
    EventLabels { role, event }
    StateLabels { role, state }
    StepLabels { role, step }
    QueueLabels { role, queue }
    MethodLabels { method }
    SchemeLabels { scheme }
}

type HistogramFamily = Family<StepLabels, Histogram, fn() -> Histogram>;

/// Every metric of the process.
pub struct Metrics {
    registry: Registry,
    deal_events: Family<EventLabels, Counter>,
    deals: Family<StateLabels, Gauge>,
    step_latency: HistogramFamily,
    queue_depth: Family<QueueLabels, Gauge>,
    webhook_retries: Counter,
    grpc_calls: Family<MethodLabels, Counter>,
    signatures_checked: Family<SchemeLabels, Counter>,
    durable_commits: Counter,
}

/// Step latencies from 1 ms to about 65 s.
fn latency_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.001, 2.0, 17))
}

impl Metrics {
    fn new() -> Metrics {
        let mut registry = Registry::default();
        let deal_events = Family::<EventLabels, Counter>::default();
        registry.register("interlock_deal_events", "What happened to deals, by role and event", deal_events.clone());
        let deals = Family::<StateLabels, Gauge>::default();
        registry.register("interlock_deals", "Deals in each state now, by role", deals.clone());
        let step_latency = HistogramFamily::new_with_constructor(latency_histogram);
        registry.register(
            "interlock_step_latency_seconds",
            "How long steps of a deal's work take, by role and step",
            step_latency.clone(),
        );
        let queue_depth = Family::<QueueLabels, Gauge>::default();
        registry.register("interlock_queue_depth", "Items waiting in a queue, by role and queue", queue_depth.clone());
        let webhook_retries = Counter::default();
        registry.register("interlock_webhook_retries", "Webhook deliveries retried", webhook_retries.clone());
        let grpc_calls = Family::<MethodLabels, Counter>::default();
        registry.register("interlock_grpc_calls", "gRPC calls served, by method", grpc_calls.clone());
        let signatures_checked = Family::<SchemeLabels, Counter>::default();
        registry.register("interlock_signatures_checked", "Signatures checked, by scheme", signatures_checked.clone());
        let durable_commits = Counter::default();
        registry.register("interlock_durable_commits", "Storage transactions synced to disk", durable_commits.clone());
        Metrics {
            registry,
            deal_events,
            deals,
            step_latency,
            queue_depth,
            webhook_retries,
            grpc_calls,
            signatures_checked,
            durable_commits,
        }
    }

    /// One more `event` for a deal of `role`.
    pub fn deal_event(&self, role: &'static str, event: &'static str) {
        self.deal_events.get_or_create(&EventLabels { role, event }).inc();
    }

    /// `role` holds `count` deals in `state` now.
    pub fn deals_in_state(&self, role: &'static str, state: &'static str, count: usize) {
        let count = i64::try_from(count).unwrap_or(i64::MAX);
        self.deals.get_or_create(&StateLabels { role, state }).set(count);
    }

    /// A `step` of `role` took `took`.
    pub fn step_took(&self, role: &'static str, step: &'static str, took: Duration) {
        self.step_latency.get_or_create(&StepLabels { role, step }).observe(took.as_secs_f64());
    }

    /// `queue` of `role` holds `length` items now.
    pub fn queue_length(&self, role: &'static str, queue: &'static str, length: usize) {
        let length = i64::try_from(length).unwrap_or(i64::MAX);
        self.queue_depth.get_or_create(&QueueLabels { role, queue }).set(length);
    }

    /// The counter webhook delivery increments on each retry.
    pub fn webhook_retries(&self) -> &Counter {
        &self.webhook_retries
    }

    /// One more call of `method` served.
    pub fn grpc_call(&self, method: &'static str) {
        self.grpc_calls.get_or_create(&MethodLabels { method }).inc();
    }

    /// Every metric in the Prometheus text format.
    pub fn render(&self) -> String {
        let counts = interlock_core::counters::counts();
        let store = |counter: &Counter, value: u64| counter.inner().store(value, std::sync::atomic::Ordering::Relaxed);
        store(&self.signatures_checked.get_or_create(&SchemeLabels { scheme: "ed25519" }), counts.ed25519_verified);
        store(
            &self.signatures_checked.get_or_create(&SchemeLabels { scheme: "secp256k1" }),
            counts.secp256k1_recovered,
        );
        store(&self.durable_commits, counts.durable_commits);
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &self.registry).expect("writing to a String never fails");
        text
    }
}

/// The process's metrics.
pub fn metrics() -> &'static Metrics {
    static METRICS: OnceLock<Metrics> = OnceLock::new();
    METRICS.get_or_init(Metrics::new)
}

/// Serves `GET /metrics` on `listener` until the process ends.
pub async fn serve(listener: tokio::net::TcpListener) -> std::io::Result<()> {
    let router = axum::Router::new().route(
        "/metrics",
        axum::routing::get(|| async {
            ([(axum::http::header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], metrics().render())
        }),
    );
    axum::serve(listener, router).await
}

/// Starts the metrics endpoint on `address` in a thread of its own, so it
/// answers whatever the service's runtime is doing; returns the bound address.
pub fn serve_in_background(address: std::net::SocketAddr) -> std::io::Result<std::net::SocketAddr> {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let listener = runtime.block_on(tokio::net::TcpListener::bind(address))?;
    let bound = listener.local_addr()?;
    metrics(); // Registered before the first scrape.
    std::thread::Builder::new().name("metrics".into()).spawn(move || {
        if let Err(error) = runtime.block_on(serve(listener)) {
            eprintln!("metrics endpoint stopped: {error}");
        }
    })?;
    Ok(bound)
}

/// Writes the process's log lines (`tracing` events, with the fields of their
/// spans, such as a deal's `deal_id`) to stdout, one per line, without colour.
pub fn init_logs() {
    let _ = tracing_subscriber::fmt().with_target(false).with_ansi(false).with_writer(std::io::stdout).try_init();
}
