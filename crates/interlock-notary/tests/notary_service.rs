//! Three notaries (2 of 3), two ledger nodes and a gateway in front of each,
//! every one a gRPC server with mutual TLS on loopback: the notaries follow
//! both networks through the gateways and commit when both legs are reserved,
//! abort at the deadline otherwise; the certificate they form executes or
//! cancels on the real ledgers; a restarted notary signs the same.

use interlock_chain::Platform as _;
use interlock_core::crypto::{Certificate, NotaryKey, PartyKey, Token};
use interlock_core::encoding::{encode_terms, Encode};
use interlock_core::saga::expected_request;
use interlock_core::{
    reservation_id, Address, Asset, AssetCode, DealId, DealTerms, Decision, EscrowOp, Leg, LegKind, NetworkId, Policy,
    Settlement,
};
use interlock_gateway::testkit::{bind_loopback, endpoint, now_ms, Networks};
use interlock_gateway::WebhookPolicy;
use interlock_identity::{Directory, NotaryEntry, PartyEntry, Role};
use interlock_ledger::{Op, Transaction};
use interlock_ledger_node::LedgerPlatform;
use interlock_notary::{NotaryLog, NotaryService, PeerNotary};
use interlock_proto::v1;
use interlock_proto::v1::gateway_client::GatewayClient;
use interlock_proto::v1::ledger_node_client::LedgerNodeClient;
use interlock_proto::v1::notary_client::NotaryClient;
use interlock_rpc::server::TlsFiles;
use std::sync::Arc;
use std::time::Duration;
use tonic::transport::Channel;

const ALPHA: NetworkId = NetworkId(1);
const BETA: NetworkId = NetworkId(2);
/// The notaries' names, in the order of their keys.
const NOTARIES: [&str; 3] = ["n1", "n2", "n3"];

/// The key each network's gateway signs with; its keeper's account there.
fn gateway_key(network: NetworkId) -> PartyKey {
    PartyKey::from_seed([20 + u8::try_from(network.0).unwrap(); 32])
}

struct Cluster {
    dir: tempfile::TempDir,
    directory: Arc<Directory>,
    networks: Networks,
    operator: PartyKey,
    buyer: PartyKey,
    seller: PartyKey,
    notary_keys: Vec<NotaryKey>,
    /// Each notary's first listener, bound before the directory lists its
    /// address (a restarted notary binds anew).
    notary_listeners: std::sync::Mutex<Vec<Option<tokio::net::TcpListener>>>,
}

impl Cluster {
    async fn start() -> Cluster {
        let dir = tempfile::tempdir().unwrap();
        let mut networks = Networks::bind(dir.path(), &[(ALPHA, "alpha"), (BETA, "beta")]).await;
        let parties = [(Role::Party, "buyer"), (Role::Party, "seller")];
        let others: Vec<(Role, &str)> = NOTARIES.iter().map(|name| (Role::Notary, *name)).chain(parties).collect();
        networks.issue(&others);
        let (operator, buyer, seller) =
            (PartyKey::from_seed([1; 32]), PartyKey::from_seed([2; 32]), PartyKey::from_seed([3; 32]));
        let notary_keys: Vec<NotaryKey> = (11u8..14).map(|seed| NotaryKey::from_seed([seed; 32]).unwrap()).collect();
        let mut notary_listeners = Vec::new();
        let mut notary_addresses = Vec::new();
        for _ in 0..3 {
            let (listener, address) = bind_loopback().await;
            notary_listeners.push(Some(listener));
            notary_addresses.push(address);
        }
        let directory = Arc::new(Directory {
            networks: networks.network_entries(),
            ledgers: networks.ledger_entries(),
            gateways: networks.gateway_entries(gateway_key),
            parties: vec![
                PartyEntry { name: "buyer".into(), key: buyer.public(), accounts: Default::default() },
                PartyEntry { name: "seller".into(), key: seller.public(), accounts: Default::default() },
            ],
            notaries: NOTARIES
                .iter()
                .zip(&notary_keys)
                .zip(&notary_addresses)
                .map(|((name, key), address)| NotaryEntry {
                    name: (*name).into(),
                    endpoint: address.to_string(),
                    address: key.address(),
                })
                .collect(),
            ..Directory::default()
        });
        networks.start_ledger_nodes(operator.public(), &directory);
        for network in [ALPHA, BETA] {
            networks.start_gateway((network, gateway_key(network)), &directory, WebhookPolicy::default()).await;
        }
        let notary_listeners = std::sync::Mutex::new(notary_listeners);
        let cluster = Cluster { dir, directory, networks, operator, buyer, seller, notary_keys, notary_listeners };
        cluster.fund().await;
        cluster
    }

    /// A client of the ledger node of `network`, as that network's gateway:
    /// gateways are the ones that reach a ledger (the transactions carry their
    /// own signers).
    fn ledger(&self, network: NetworkId) -> LedgerNodeClient<Channel> {
        LedgerNodeClient::new(
            endpoint(&self.networks.tls, &self.networks.gateway_name(network), self.networks.ledgers[&network])
                .connect_lazy(),
        )
    }

    async fn submit(&self, network: NetworkId, tx: Transaction) -> Result<u64, tonic::Status> {
        let request = v1::SubmitTransactionRequest { transaction_encoded: tx.to_bytes(), wait: true };
        Ok(self.ledger(network).submit_transaction(request).await?.into_inner().height)
    }

    async fn fund(&self) {
        let usd = AssetCode::new("USD").unwrap();
        for network in [ALPHA, BETA] {
            let mut nonce = 0;
            for key in [&self.buyer, &self.seller] {
                nonce += 1;
                let tx = Transaction::sign(&self.operator, network, nonce, Op::Register { account: key.public() });
                self.submit(network, tx).await.unwrap();
                nonce += 1;
                let asset = Asset::Fungible { code: usd.clone(), amount: 1_000 };
                let op = Op::Issue { to: Address::from_bytes(key.public().0), asset };
                self.submit(network, Transaction::sign(&self.operator, network, nonce, op)).await.unwrap();
            }
            // The gateway's keeper signs with its key: an account there too.
            nonce += 1;
            let gateway = gateway_key(network).public();
            let tx = Transaction::sign(&self.operator, network, nonce, Op::Register { account: gateway });
            self.submit(network, tx).await.unwrap();
        }
    }

    /// Starts notary `index` (again, after a restart: same log file).
    async fn notary(&self, index: usize) -> NotaryClient<Channel> {
        self.notary_at(index).await.0
    }

    /// [`Cluster::notary`], with the address it serves on.
    async fn notary_at(&self, index: usize) -> (NotaryClient<Channel>, std::net::SocketAddr) {
        self.start_notary(index, true).await
    }

    /// [`Cluster::notary_at`]; with `peers` false it passes no dispute on.
    async fn start_notary(&self, index: usize, peers: bool) -> (NotaryClient<Channel>, std::net::SocketAddr) {
        let name = format!("n{}", index + 1);
        let log = NotaryLog::open(&self.dir.path().join(format!("{name}.sqlite"))).unwrap();
        let gateways = [ALPHA, BETA]
            .into_iter()
            .map(|network| {
                (
                    network,
                    GatewayClient::new(
                        endpoint(&self.networks.tls, &name, self.networks.gateways[&network]).connect_lazy(),
                    ),
                )
            })
            .collect();
        let registered = [self.buyer.public(), self.seller.public()].into_iter().collect();
        // Each network's pace, as a notary started from the CLI reads it.
        let timings = self
            .directory
            .networks
            .iter()
            .map(|network| (network.id, LedgerPlatform.timing(network.id, &network.config).unwrap()))
            .collect();
        let key = self.notary_keys[index].clone();
        let service = NotaryService::open(key, log, gateways, registered, timings, now_ms).unwrap();
        // The others, at the addresses the directory lists, hear its disputes.
        let others = self
            .directory
            .notaries
            .iter()
            .map(|notary| PeerNotary {
                name: notary.name.clone(),
                address: notary.address,
                client: NotaryClient::new(
                    endpoint(&self.networks.tls, &name, notary.endpoint.parse().unwrap()).connect_lazy(),
                ),
            })
            .collect();
        service.pass_disputes_to(if peers { others } else { Vec::new() });
        tokio::spawn(service.clone().tick());
        tokio::spawn(service.clone().follow(ALPHA));
        tokio::spawn(service.clone().follow(BETA));
        let first = self.notary_listeners.lock().unwrap()[index].take();
        let (listener, address) = match first {
            Some(listener) => {
                let address = listener.local_addr().unwrap();
                (listener, address)
            }
            None => bind_loopback().await,
        };
        let files = TlsFiles::in_dir(&self.networks.tls, &name);
        let directory = self.directory.clone();
        tokio::spawn(async move {
            interlock_notary::serve(service, &files, directory, listener, std::future::pending()).await.unwrap();
        });
        (NotaryClient::new(endpoint(&self.networks.tls, "buyer", address).connect_lazy()), address)
    }

    fn terms(&self, nonce: u64, deadline_ms: u64) -> DealTerms {
        let usd = AssetCode::new("USD").unwrap();
        let leg = |network, owner: &PartyKey, beneficiary: &PartyKey, amount| Leg {
            network,
            asset: Asset::Fungible { code: usd.clone(), amount },
            owner: Address::from_bytes(owner.public().0),
            beneficiary: Address::from_bytes(beneficiary.public().0),
            keeper: None,
        };
        DealTerms {
            buyer: self.buyer.public(),
            seller: self.seller.public(),
            payment: leg(ALPHA, &self.buyer, &self.seller, 30),
            delivery: leg(BETA, &self.seller, &self.buyer, 20),
            settlement: Settlement::Notary {
                notaries: self.notary_keys.iter().map(NotaryKey::address).collect(),
                threshold: 2,
                decision_deadline_ms: deadline_ms,
                backstop_expiry_ms: deadline_ms + 600_000,
            },
            policy: Policy::default(),
            observers: vec![],
            dependents: vec![],
            nonce,
        }
    }

    fn submission(&self, terms: &DealTerms) -> v1::SubmitDealRequest {
        let deal_id = terms.id();
        v1::SubmitDealRequest {
            terms_encoded: encode_terms(terms),
            buyer_signature: self.buyer.sign_deal(deal_id).0.to_vec(),
            seller_signature: self.seller.sign_deal(deal_id).0.to_vec(),
        }
    }
}

/// Polls a notary until it has voted.
async fn vote(notary: &mut NotaryClient<Channel>, deal_id: DealId) -> v1::NotaryVote {
    for _ in 0..200 {
        if let Ok(vote) = notary.get_vote(v1::GetVoteRequest { deal_id: deal_id.0 .0.to_vec() }).await {
            return vote.into_inner();
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("no vote on {deal_id} within 10 s");
}

fn certificate(deal_id: DealId, decision: Decision, votes: &[v1::NotaryVote]) -> Certificate {
    let signatures = votes
        .iter()
        .map(|vote| interlock_core::crypto::RecoverableSignature(vote.signature.clone().try_into().unwrap()))
        .collect();
    Certificate { deal_id, decision, signatures }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notaries_commit_when_both_legs_are_reserved_and_the_certificate_executes() {
    let cluster = Cluster::start().await;
    let mut notaries = Vec::new();
    for index in 0..3 {
        notaries.push(cluster.notary(index).await);
    }
    let terms = cluster.terms(1, now_ms() + 20_000);
    let deal_id = terms.id();
    for notary in &mut notaries {
        let answer = notary.submit_deal(cluster.submission(&terms)).await.unwrap().into_inner();
        assert_eq!(answer.deal_id, deal_id.0 .0.to_vec());
        assert!(answer.vote.is_none(), "nothing is reserved yet");
    }
    // Both parties reserve on their networks.
    for (leg, network, key) in [(LegKind::Payment, ALPHA, &cluster.buyer), (LegKind::Delivery, BETA, &cluster.seller)] {
        let op = Op::Escrow(EscrowOp::Reserve(expected_request(&terms, deal_id, leg)));
        cluster.submit(network, Transaction::sign(key, network, 1, op)).await.unwrap();
    }
    let votes = [vote(&mut notaries[0], deal_id).await, vote(&mut notaries[2], deal_id).await];
    assert!(votes.iter().all(|vote| vote.decision == "commit"), "{votes:?}");
    // A decided notary still serves: the other party, submitting late, gets the vote.
    for notary in &mut notaries {
        let again = tokio::time::timeout(Duration::from_secs(10), notary.submit_deal(cluster.submission(&terms)));
        let answer = again.await.expect("a decided notary answers").unwrap().into_inner();
        assert_eq!(answer.vote.map(|vote| vote.decision).as_deref(), Some("commit"));
    }
    let commit = certificate(deal_id, Decision::Commit, &votes);
    let Settlement::Notary { notaries: set, .. } = &terms.settlement else { unreachable!() };
    commit.verify(deal_id, Decision::Commit, set, 2).unwrap();

    // The seller executes the payment with it, on the real ledger.
    let execute = Op::Escrow(EscrowOp::Execute {
        reservation: reservation_id(deal_id, LegKind::Payment),
        token: Token::Certificate(commit),
    });
    cluster.submit(ALPHA, Transaction::sign(&cluster.seller, ALPHA, 2, execute)).await.unwrap();

    // A restarted notary signs the same decision from its log.
    let mut restarted = cluster.notary(1).await;
    assert_eq!(vote(&mut restarted, deal_id).await.decision, "commit");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notaries_abort_at_the_deadline_and_refuse_deals_not_signed_by_both() {
    let cluster = Cluster::start().await;
    let mut notaries = vec![cluster.notary(0).await, cluster.notary(1).await];
    // The seller never reserves: the notaries abort at the deadline, and the
    // abort certificate refunds the buyer at once.
    let terms = cluster.terms(2, now_ms() + 1_500);
    let deal_id = terms.id();
    for notary in &mut notaries {
        notary.submit_deal(cluster.submission(&terms)).await.unwrap();
    }
    let reserve = Op::Escrow(EscrowOp::Reserve(expected_request(&terms, deal_id, LegKind::Payment)));
    cluster.submit(ALPHA, Transaction::sign(&cluster.buyer, ALPHA, 1, reserve)).await.unwrap();
    let votes = [vote(&mut notaries[0], deal_id).await, vote(&mut notaries[1], deal_id).await];
    assert!(votes.iter().all(|vote| vote.decision == "abort"), "{votes:?}");
    let cancel = Op::Escrow(EscrowOp::Cancel {
        reservation: reservation_id(deal_id, LegKind::Payment),
        certificate: Some(certificate(deal_id, Decision::Abort, &votes)),
    });
    cluster.submit(ALPHA, Transaction::sign(&cluster.buyer, ALPHA, 2, cancel)).await.unwrap();

    // Signed by the buyer alone: refused, with a message naming the seller's signature.
    let other = cluster.terms(3, now_ms() + 60_000);
    let mut one_sided = cluster.submission(&other);
    one_sided.seller_signature = cluster.buyer.sign_deal(other.id()).0.to_vec();
    let status = notaries[0].submit_deal(one_sided).await.expect_err("one signature is not an agreement");
    assert_eq!(status.code(), tonic::Code::Unauthenticated);
    assert!(status.message().contains("seller signature"), "{}", status.message());
    // Malformed terms and short signatures: InvalidArgument.
    let mut garbage = cluster.submission(&other);
    garbage.terms_encoded = vec![9, 9, 9];
    assert_eq!(notaries[0].submit_deal(garbage).await.unwrap_err().code(), tonic::Code::InvalidArgument);
    let mut short = cluster.submission(&other);
    short.buyer_signature.truncate(10);
    assert_eq!(notaries[0].submit_deal(short).await.unwrap_err().code(), tonic::Code::InvalidArgument);
    // A deal whose notary set leaves this notary out: PermissionDenied.
    let mut elsewhere = cluster.terms(4, now_ms() + 60_000);
    if let Settlement::Notary { notaries: set, threshold, .. } = &mut elsewhere.settlement {
        set.remove(0);
        *threshold = 1;
    }
    let status = notaries[0].submit_deal(cluster.submission(&elsewhere)).await.expect_err("not in the set");
    assert_eq!(status.code(), tonic::Code::PermissionDenied);
    // Unknown deals: NotFound.
    let unknown = notaries[0].get_vote(v1::GetVoteRequest { deal_id: vec![5; 32] }).await.unwrap_err();
    assert_eq!(unknown.code(), tonic::Code::NotFound);
}

/// Flips one bit of a signature.
fn flipped(signature: &[u8]) -> Vec<u8> {
    let mut flipped = signature.to_vec();
    flipped[7] ^= 1;
    flipped
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_notary_checks_both_signatures_of_every_submission_known_deal_or_not() {
    let cluster = Cluster::start().await;
    let mut notary = cluster.notary(0).await;
    // One deal decided (nothing reserved by its deadline: abort), one undecided.
    let decided = cluster.terms(7, now_ms() + 500);
    notary.submit_deal(cluster.submission(&decided)).await.unwrap();
    let recorded = vote(&mut notary, decided.id()).await;
    assert_eq!(recorded.decision, "abort");
    let open = cluster.terms(8, now_ms() + 60_000);
    notary.submit_deal(cluster.submission(&open)).await.unwrap();

    for (name, terms) in [("decided", &decided), ("undecided", &open)] {
        let mut by_buyer = cluster.submission(terms);
        by_buyer.buyer_signature = flipped(&by_buyer.buyer_signature);
        let mut by_seller = cluster.submission(terms);
        by_seller.seller_signature = flipped(&by_seller.seller_signature);
        let mut swapped = cluster.submission(terms);
        swapped.seller_signature = swapped.buyer_signature.clone();
        let cases = [
            ("buyer", by_buyer, "buyer signature"),
            ("seller", by_seller, "seller signature"),
            ("swapped", swapped, "seller signature"),
        ];
        for (side, tampered, text) in cases {
            let answer = tokio::time::timeout(Duration::from_secs(10), notary.submit_deal(tampered)).await;
            let status = answer.expect("the notary answers").expect_err(&format!("{name} deal, {side}"));
            assert_eq!(status.code(), tonic::Code::Unauthenticated, "{name} deal, {side}: {}", status.message());
            assert!(status.message().contains(text), "{name} deal, {side}: {}", status.message());
        }
    }
    // Nothing changed: the genuine submission still gets the recorded vote,
    // and the undecided deal is still undecided.
    let again = notary.submit_deal(cluster.submission(&decided)).await.unwrap().into_inner();
    let vote_again = again.vote.expect("the decided deal's vote");
    assert_eq!((vote_again.decision, vote_again.signature), (recorded.decision, recorded.signature));
    let undecided = notary.get_vote(v1::GetVoteRequest { deal_id: open.id().0 .0.to_vec() }).await.unwrap_err();
    assert_eq!(undecided.code(), tonic::Code::FailedPrecondition);
}

/// A notary holds a new deal to its chains' pace: on two ledgers (50 ms
/// blocks) an execution needs two blocks, 100 ms, between the decision
/// deadline and the backstop, or a commit could reach one chain and not the other.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_notary_refuses_a_deal_whose_backstop_leaves_no_time_to_execute() {
    let cluster = Cluster::start().await;
    let mut notary = cluster.notary(0).await;
    let mut terms = cluster.terms(9, now_ms() + 60_000);
    let Settlement::Notary { decision_deadline_ms, backstop_expiry_ms, .. } = &mut terms.settlement else {
        unreachable!()
    };
    *backstop_expiry_ms = *decision_deadline_ms + 99;
    let status = notary.submit_deal(cluster.submission(&terms)).await.expect_err("99 ms is too little");
    assert_eq!(status.code(), tonic::Code::FailedPrecondition, "{}", status.message());
    assert!(status.message().contains("need at least 100 ms"), "{}", status.message());
    let Settlement::Notary { decision_deadline_ms, backstop_expiry_ms, .. } = &mut terms.settlement else {
        unreachable!()
    };
    *backstop_expiry_ms = *decision_deadline_ms + 100;
    notary.submit_deal(cluster.submission(&terms)).await.expect("100 ms is enough");
}

/// Deadlines beyond what the stores hold (signed 64-bit) are refused as
/// malformed terms naming the field, before the notary records the deal:
/// asked for its vote afterwards, it knows no such deal.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_notary_refuses_deadlines_beyond_the_stores_range_and_records_nothing() {
    let cluster = Cluster::start().await;
    let mut notary = cluster.notary(0).await;
    let beyond = 1u64 << 63;
    let cases: [(&str, u64, u64); 3] = [
        ("decision_deadline_ms", beyond, beyond + 600_000),
        ("backstop_expiry_ms", now_ms() + 60_000, beyond),
        ("decision_deadline_ms", u64::MAX - 600_000, u64::MAX),
    ];
    for (nonce, (field, deadline, backstop)) in (20..).zip(cases) {
        let mut terms = cluster.terms(nonce, deadline);
        let Settlement::Notary { backstop_expiry_ms, .. } = &mut terms.settlement else { unreachable!() };
        *backstop_expiry_ms = backstop;
        terms.validate().expect("the core's rules hold: only the range is wrong");
        let status = notary.submit_deal(cluster.submission(&terms)).await.expect_err(field);
        assert_eq!(status.code(), tonic::Code::InvalidArgument, "{field}: {}", status.message());
        let expected = format!("malformed terms_encoded: {field} out of range: expected 0 to 9223372036854775807");
        assert!(status.message().starts_with(&expected), "{field}: {}", status.message());
        let vote = notary.get_vote(v1::GetVoteRequest { deal_id: terms.id().0 .0.to_vec() }).await;
        assert_eq!(vote.expect_err("nothing recorded").code(), tonic::Code::NotFound, "{field}");
    }
}

#[path = "notary_service/inspection.rs"]
mod inspection;
