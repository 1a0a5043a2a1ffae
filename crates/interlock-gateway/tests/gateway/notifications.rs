//! Notifications: a deal's event stream resumed after a disconnect, and
//! webhooks — signed, retried with backoff, dead-lettered after the last
//! attempt, sent only to subscribers the deal names.

use super::{check, until, World, ALPHA, BETA};
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use hmac::{Hmac, Mac};
use interlock_core::crypto::{Secret, Token};
use interlock_core::{DealId, DealTerms, EscrowOp};
use interlock_gateway::webhook::{verify_signature, IDEMPOTENCY_HEADER, SIGNATURE_HEADER};
use interlock_gateway::WebhookPolicy;
use interlock_proto::v1;
use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio_stream::StreamExt as _;
use tonic::Code;

const SECRET: &[u8] = b"a webhook secret of some length";

/// What an in-test webhook receiver saw: every attempt, and the accepted ones.
#[derive(Default)]
struct Seen {
    /// Attempts still to refuse with 500.
    refuse: usize,
    attempts: usize,
    /// (Idempotency-Key, Interlock-Signature, body) of each accepted POST.
    accepted: Vec<(String, String, Bytes)>,
}

#[derive(Clone)]
struct Receiver {
    seen: Arc<Mutex<Seen>>,
    url: String,
}

async fn hook(State(seen): State<Arc<Mutex<Seen>>>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let header = |name: &str| headers.get(name).and_then(|value| value.to_str().ok()).unwrap_or("").to_owned();
    let mut seen = seen.lock().unwrap();
    seen.attempts += 1;
    if seen.refuse > 0 {
        seen.refuse -= 1;
        return StatusCode::INTERNAL_SERVER_ERROR;
    }
    seen.accepted.push((header(IDEMPOTENCY_HEADER), header(SIGNATURE_HEADER), body));
    StatusCode::OK
}

impl Receiver {
    /// A receiver on loopback that answers 500 to its first `refuse` POSTs.
    async fn start(refuse: usize) -> Receiver {
        let seen = Arc::new(Mutex::new(Seen { refuse, ..Seen::default() }));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        let app = axum::Router::new().route("/hook", axum::routing::post(hook)).with_state(seen.clone());
        tokio::spawn(async move { axum::serve(listener, app).await });
        Receiver { seen, url }
    }

    fn accepted(&self) -> Vec<(String, String, Bytes)> {
        self.seen.lock().unwrap().accepted.clone()
    }

    fn attempts(&self) -> usize {
        self.seen.lock().unwrap().attempts
    }
}

fn subscribe(url: &str, kinds: &[&str]) -> v1::SubscribeRequest {
    v1::SubscribeRequest {
        url: url.to_owned(),
        secret: SECRET.to_vec(),
        kinds: kinds.iter().map(|kind| (*kind).to_owned()).collect(),
    }
}

/// The events of `deal_id` at the gateway of `network`, as the buyer reads them.
async fn events(world: &World, network: interlock_core::NetworkId, deal_id: DealId) -> Vec<v1::DealEvent> {
    let request = v1::GetDealRequest { deal_id: deal_id.0 .0.to_vec() };
    world.gateway(network, "buyer").get_deal(request).await.unwrap().into_inner().events
}

/// Registers `terms` and runs the hashlock deal to the end through the
/// gateways: both reservations, then the buyer takes the delivery with the
/// secret and the seller the payment.
async fn run_deal(world: &World, terms: &DealTerms, secret: Secret) {
    let (payment, delivery) = world.reserve_both(terms).await;
    let take_delivery = EscrowOp::Execute { reservation: delivery, token: Token::Secret(secret) };
    world.submit(BETA, "buyer", &world.buyer, 2, take_delivery).await.unwrap();
    world.wait_reservation(BETA, delivery, "executed").await;
    let take_payment = EscrowOp::Execute { reservation: payment, token: Token::Secret(secret) };
    world.submit(ALPHA, "seller", &world.seller, 2, take_payment).await.unwrap();
    world.wait_reservation(ALPHA, payment, "executed").await;
}

async fn next_event(stream: &mut tonic::Streaming<v1::DealEvent>) -> v1::DealEvent {
    let next = tokio::time::timeout(Duration::from_secs(10), stream.next()).await;
    next.expect("an event within 10 s").expect("the stream is open").expect("an event, not an error")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_party_resumes_a_deal_stream_without_loss_and_sees_it_complete_on_both_gateways() {
    let (world, secret, terms) = World::with_deal(21).await;
    let deal_id = terms.id();
    let watch = |from_seq| {
        let mut client = world.gateway(ALPHA, "seller");
        async move {
            let request = v1::WatchDealRequest { deal_id: deal_id.0 .0.to_vec(), from_seq };
            client.watch_deal(request).await.unwrap().into_inner()
        }
    };
    let mut stream = watch(0).await;
    let first = next_event(&mut stream).await;
    assert_eq!(first.kind, "registered");
    // The party disconnects; the deal runs on without it.
    drop(stream);
    run_deal(&world, &terms, secret).await;

    let mut resumed = watch(first.seq + 1).await;
    let mut seen = vec![first];
    while seen.last().unwrap().kind != "completed" {
        seen.push(next_event(&mut resumed).await);
    }
    let recorded = events(&world, ALPHA, deal_id).await;
    let ids = |events: &[v1::DealEvent]| events.iter().map(|e| (e.seq, e.event_id.clone())).collect::<Vec<_>>();
    assert_eq!(ids(&seen), ids(&recorded), "the stream and its resumption hold every recorded event, once, in order");
    let kinds: Vec<&str> = seen.iter().map(|event| event.kind.as_str()).collect();
    for kind in ["registered", "reserved", "peer_reserved", "peer_executed", "executed", "completed"] {
        assert!(kinds.contains(&kind), "{kind} missing from {kinds:?}");
    }
    let completed = seen.last().unwrap();
    assert_eq!(completed.event_id, format!("{deal_id}:completed"));
    assert!(completed.text.contains("both legs executed"), "{}", completed.text);

    // The other gateway derives the same completion, with the same id.
    let at_beta = until("beta's completion", || async {
        events(&world, BETA, deal_id).await.into_iter().find(|event| event.kind == "completed")
    })
    .await;
    assert_eq!(
        (&at_beta.event_id, at_beta.network, at_beta.height, at_beta.timestamp_ms),
        (&completed.event_id, completed.network, completed.height, completed.timestamp_ms)
    );
    // Resuming past the end waits for more rather than repeating anything.
    let mut past_end = watch(completed.seq + 1).await;
    let nothing = tokio::time::timeout(Duration::from_millis(300), past_end.next()).await;
    assert!(nothing.is_err(), "resuming after the last event yielded {nothing:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscribing_is_for_parties_and_dependents_with_a_sound_url_and_secret() {
    let world = World::start().await;
    let url = "http://127.0.0.1:9/hook";
    let ok = world.gateway(ALPHA, "warranty").subscribe(subscribe(url, &["completed"])).await.unwrap();
    assert_eq!(ok.into_inner().subscriber, "dependent:warranty");
    let ok = world.gateway(ALPHA, "carol").subscribe(subscribe(url, &[])).await.unwrap();
    assert_eq!(ok.into_inner().subscriber, "party:carol");
    let short_secret = v1::SubscribeRequest { secret: vec![1; 8], ..subscribe(url, &[]) };
    let cases = [
        ("a notary", "n1", subscribe(url, &[]), Code::PermissionDenied, "Subscribe is for parties"),
        ("not http", "warranty", subscribe("ftp://127.0.0.1/x", &[]), Code::InvalidArgument, "malformed url"),
        ("no url", "warranty", subscribe("", &[]), Code::InvalidArgument, "malformed url"),
        ("short secret", "warranty", short_secret, Code::InvalidArgument, "malformed secret"),
        ("unknown kind", "warranty", subscribe(url, &["finished"]), Code::InvalidArgument, "unknown kind \"finished\""),
    ];
    for (name, caller, request, code, text) in cases {
        check(name, world.gateway(ALPHA, caller).subscribe(request).await, code, text);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhooks_are_signed_retried_with_backoff_and_dead_lettered_after_the_last_attempt() {
    let world = World::start().await;
    // The dependent's receiver refuses its first two POSTs.
    let flaky = Receiver::start(2).await;
    let stranger = Receiver::start(0).await;
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}/hook", listener.local_addr().unwrap())
    };
    world.gateway(ALPHA, "warranty").subscribe(subscribe(&flaky.url, &[])).await.unwrap();
    world.gateway(ALPHA, "carol").subscribe(subscribe(&stranger.url, &[])).await.unwrap();
    world.gateway(BETA, "buyer").subscribe(subscribe(&closed, &["completed"])).await.unwrap();
    let secret = Secret([22; 32]);
    let mut terms = world.open_terms(1, &secret);
    terms.dependents = vec![super::warranty_key().public()];
    let deal_id = terms.id();
    run_deal(&world, &terms, secret).await;

    // Every event alpha recorded reaches the dependent once it accepts.
    let recorded = until("alpha's completion", || async {
        let events = events(&world, ALPHA, deal_id).await;
        events.iter().any(|event| event.kind == "completed").then_some(events)
    })
    .await;
    let expected: BTreeSet<String> = recorded.iter().map(|event| event.event_id.clone()).collect();
    until("every event delivered", || async {
        let delivered: BTreeSet<String> = flaky.accepted().into_iter().map(|(key, _, _)| key).collect();
        (delivered == expected && world.service(ALPHA).webhooks_len().unwrap() == 0).then_some(())
    })
    .await;
    let accepted = flaky.accepted();
    assert_eq!(accepted.len(), expected.len(), "each event accepted once");
    assert_eq!(flaky.attempts(), accepted.len() + 2, "the two refused attempts were retried");
    for (key, signature, body) in &accepted {
        let mut mac = Hmac::<sha2::Sha256>::new_from_slice(SECRET).unwrap();
        mac.update(body);
        let hex = interlock_core::hash::to_hex(&mac.finalize().into_bytes());
        assert_eq!(signature, &format!("sha256={hex}"), "signature of {key}");
        assert!(verify_signature(SECRET, body, signature));
        assert!(!verify_signature(b"another secret of some length", body, signature), "wrong secret");
        assert!(!verify_signature(SECRET, &[body.as_ref(), b" "].concat(), signature), "changed body");
        let json: serde_json::Value = serde_json::from_slice(body).unwrap();
        assert_eq!(json["event_id"], key.as_str());
        assert_eq!(json["deal_id"], deal_id.to_string());
        let event = recorded.iter().find(|event| &event.event_id == key).unwrap();
        assert_eq!(
            (json["kind"].as_str(), json["network"].as_u64(), json["height"].as_u64()),
            (Some(event.kind.as_str()), Some(event.network), Some(event.height))
        );
        assert_eq!(
            (json["timestamp_ms"].as_u64(), json["text"].as_str()),
            (Some(event.timestamp_ms), Some(&*event.text))
        );
    }
    assert!(stranger.accepted().is_empty() && stranger.attempts() == 0, "carol is not in the deal");

    // Beta's subscriber never answers: after the last attempt, a dead letter.
    let letters = until("beta's dead letter", || async {
        let letters = world.service(BETA).dead_letters(10).unwrap();
        (!letters.is_empty()).then_some(letters)
    })
    .await;
    assert_eq!(letters.len(), 1, "{letters:?}");
    let letter = &letters[0];
    assert_eq!((letter.subscriber.as_str(), letter.url.as_str()), ("party:buyer", closed.as_str()));
    assert_eq!((letter.event_id.clone(), letter.attempts), (format!("{deal_id}:completed"), 4));
    assert!(letter.last_error.contains("POST"), "{}", letter.last_error);
    assert_eq!(world.service(BETA).webhooks_len().unwrap(), 0);
}

#[test]
fn backoff_is_full_jitter_below_an_exponential_ceiling_and_the_cap() {
    let policy = WebhookPolicy::default();
    let check = |failed: u32, random: u64, expected_ms: u64| {
        assert_eq!(policy.backoff(failed, random), Duration::from_millis(expected_ms), "failed {failed}, {random}");
    };
    // Ceilings 200, 400, 800 ms ... 10 s; the draw is taken modulo ceiling + 1.
    check(1, 200, 200);
    check(1, 201, 0);
    check(2, 400, 400);
    check(3, 801, 0);
    check(3, 800, 800);
    check(7, 10_000, 10_000);
    check(7, 10_001, 0);
    check(60, u64::MAX, u64::MAX % 10_001);
    assert!(WebhookPolicy { attempts: 0, ..policy }.check().is_err());
    assert!(WebhookPolicy { cap: Duration::from_millis(10), ..policy }.check().is_err());
    assert!(policy.check().is_ok());
}
