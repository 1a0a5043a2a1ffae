//! Notary legs on a real regtest litecoind. Each refusal is the node's own,
//! asserted by its reject reason: the witnesses the platform's builder would
//! refuse are laid out by hand here, so what keeps a notary leg's rules is
//! the chain's script and lock-time checks. Each is paired with the spend the
//! script allows being taken.

mod common;

use bitcoin::absolute::LockTime;
use bitcoin::{OutPoint, Transaction};
use common::{notary_deal, pay_to_script, Chain};
use interlock_chain::conformance::Actor;
use interlock_core::crypto::{Decision, NotaryKey, RecoverableSignature};
use interlock_core::{Asset, DealTerms, LegKind};
use interlock_litecoin::notary::{
    notary_public_key, notary_spend, read_notary_spend, refund, sighash, signed_notary_spend, NotaryPath, NotaryScript,
};
use interlock_litecoin::tx::Key;

/// 2 of these 3 notaries decide; the fourth key is no notary of the deal.
const NOTARY_SEEDS: [u8; 3] = [0xa1, 0xa2, 0xa3];
const STRANGER_SEED: u8 = 0xee;
const THRESHOLD: u8 = 2;

fn notary(seed: u8) -> NotaryKey {
    NotaryKey::from_seed([seed; 32]).expect("a valid scalar")
}

fn notaries() -> [NotaryKey; 3] {
    NOTARY_SEEDS.map(notary)
}

/// A 2-of-3 notary deal between the chain's buyer and seller.
async fn deal(chain: &Chain, nonce: u64) -> DealTerms {
    let now_ms = chain.node.median_time().await.expect("time") * 1000;
    let addresses: Vec<_> = notaries().iter().map(NotaryKey::address).collect();
    notary_deal(chain, now_ms, &addresses, THRESHOLD, chain.fungible(300), chain.fungible(200), nonce)
}

/// A reserved, confirmed notary leg.
struct Reserved {
    script: NotaryScript,
    from: OutPoint,
    value: u64,
}

/// The deal's `leg` reserved by its owner, its output confirmed.
async fn reserve(chain: &mut Chain, terms: &DealTerms, leg: LegKind) -> Reserved {
    let keys: Vec<[u8; 33]> = notaries().iter().map(notary_public_key).collect();
    let script = NotaryScript::of(terms, leg, &keys).expect("a notary leg");
    let (owner, Asset::Fungible { amount, .. }) = (match leg {
        LegKind::Payment => (Actor::Buyer, &terms.payment.asset),
        LegKind::Delivery => (Actor::Seller, &terms.delivery.asset),
    }) else {
        panic!("a coin amount")
    };
    let amount = u64::try_from(*amount).expect("litoshis");
    let (from, value) = pay_to_script(chain, owner, script.script_pubkey(), amount).await;
    Reserved { script, from, value }
}

impl Reserved {
    fn spend(&self, decision: Decision) -> Transaction {
        notary_spend(&self.script, self.from, self.value, decision).expect("a notary spend")
    }

    fn digest(&self, decision: Decision) -> [u8; 32] {
        sighash(&self.script, &self.spend(decision), self.value).expect("a sighash")
    }

    /// The signatures of `signers` over the spend for `decision`.
    fn certificate(&self, decision: Decision, signers: &[&NotaryKey]) -> Vec<RecoverableSignature> {
        let digest = self.digest(decision);
        signers.iter().map(|key| key.sign_digest(&digest)).collect()
    }

    /// The spend for `decision`, its witness laid out by hand: `party`'s
    /// key and signature, the `selector` for `decision` as the script reads
    /// it, and `notary_signatures` in DER as given, unchecked.
    fn by_hand(&self, decision: Decision, party: &Key, notary_signatures: &[RecoverableSignature]) -> Transaction {
        let mut transaction = self.spend(decision);
        let signature = party.sign(self.digest(decision));
        let notary_signatures: Vec<Vec<u8>> = notary_signatures.iter().map(der).collect();
        transaction.input[0].witness =
            self.script.notary_witness(decision, &signature, &party.public_bytes(), &notary_signatures);
        transaction
    }

    /// The owner's refund with `lock_time`, signed by `owner`.
    fn refund_at(&self, owner: &Key, lock_time: LockTime) -> Transaction {
        let mut transaction =
            refund(owner, &self.script, self.from, self.value, owner.script_pubkey(), 2).expect("a refund").transaction;
        transaction.lock_time = lock_time;
        let digest = sighash(&self.script, &transaction, self.value).expect("a sighash");
        transaction.input[0].witness = self.script.refund_witness(&owner.sign(digest), &owner.public_bytes());
        transaction
    }
}

/// A recoverable signature as `OP_CHECKMULTISIG` takes it, with no check.
fn der(signature: &RecoverableSignature) -> Vec<u8> {
    let compact = bitcoin::secp256k1::ecdsa::Signature::from_compact(&signature.0[..64]).expect("r || s");
    bitcoin::ecdsa::Signature::sighash_all(compact).to_vec()
}

/// Sends `transaction` and returns litecoind's reason for refusing it.
async fn refusal(chain: &Chain, transaction: &Transaction, what: &str) -> String {
    match chain.node().send(transaction).await {
        Ok(txid) => panic!("litecoind took {what} ({})", interlock_litecoin::chain::hex_of(&txid)),
        Err(error) => {
            eprintln!("{what}: {}", error.message);
            error.message
        }
    }
}

fn assert_refused(reason: &str, expected: &str, what: &str) {
    assert!(reason.contains(expected), "{what}: expected litecoind to say {expected:?}, it said {reason:?}");
}

/// A signature that fails its check must be empty (BIP 146, NULLFAIL): a
/// rule of the node's policy, checked before the consensus rules, so a notary
/// signature that does not verify (one too few, one of another transaction,
/// one by another key) is refused with it.
const NULLFAIL: &str = "Signature must be zero for failed CHECK(MULTI)SIG operation";
const EQUALVERIFY: &str = "Script failed an OP_EQUALVERIFY operation";

/// Sends `transaction`, mines it, and checks the chain holds it and that
/// its witness reads as `path`.
async fn taken(chain: &mut Chain, transaction: &Transaction, path: NotaryPath, what: &str) {
    if let Err(error) = chain.node().send(transaction).await {
        panic!("litecoind refused {what}: {}", error.message);
    }
    chain.mine(1).await.expect("mine");
    let txid = transaction.compute_txid().to_string();
    let rpc = chain.node.rpc();
    let tip: String = rpc.call("getbestblockhash", serde_json::json!([])).await.expect("the tip");
    let found: serde_json::Value =
        rpc.call("getrawtransaction", serde_json::json!([txid, true, tip])).await.expect("the spend is in the tip");
    assert_eq!(found["confirmations"].as_u64(), Some(1), "{what} is mined: {found}");
    let items: Vec<Vec<u8>> = transaction.input[0].witness.iter().map(<[u8]>::to_vec).collect();
    assert_eq!(read_notary_spend(&items).map(|(_, spend)| spend.path), Some(path), "{what} reads back");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn execute_takes_k_notaries_of_this_very_spend_and_the_beneficiary() {
    let mut chain = Chain::start().await;
    let terms = deal(&chain, 1).await;
    let leg = reserve(&mut chain, &terms, LegKind::Payment).await;
    let [first, second, third] = notaries();
    let stranger = notary(STRANGER_SEED);
    let (seller, buyer) = (chain.key(Actor::Seller).clone(), chain.key(Actor::Buyer).clone());
    let commit = leg.certificate(Decision::Commit, &[&first, &third]);

    // k - 1 notaries: the script refuses it, and so does the builder.
    let one = leg.by_hand(Decision::Commit, &seller, &commit[..1]);
    let short = refusal(&chain, &one, "one notary signature of two").await;
    assert_refused(&short, NULLFAIL, "one notary signature of two");
    let builder = signed_notary_spend(&leg.script, leg.from, leg.value, Decision::Commit, &seller, &commit[..1]);
    let error = builder.expect_err("the builder refuses one signature of two");
    assert!(error.message.contains("1 distinct notaries signed"), "{}", error.message);

    // The abort certificate (the notaries' signatures of the cancel) shown
    // on the execute.
    let abort = leg.certificate(Decision::Abort, &[&first, &second]);
    let other = refusal(&chain, &leg.by_hand(Decision::Commit, &seller, &abort), "the cancel's certificate").await;
    assert_refused(&other, NULLFAIL, "signatures of the cancel on the execute");
    let builder = signed_notary_spend(&leg.script, leg.from, leg.value, Decision::Commit, &seller, &abort);
    assert!(builder.expect_err("the builder refuses them").message.contains("not one of this leg's notaries"));

    // A notary and a key outside the set.
    let foreign = leg.certificate(Decision::Commit, &[&first, &stranger]);
    let outsider = refusal(&chain, &leg.by_hand(Decision::Commit, &seller, &foreign), "an outsider's signature").await;
    assert_refused(&outsider, NULLFAIL, "a key outside the notary set");
    let builder = signed_notary_spend(&leg.script, leg.from, leg.value, Decision::Commit, &seller, &foreign);
    let error = builder.expect_err("the builder refuses an outsider");
    assert!(error.message.contains(&stranger.address().to_string()), "{}", error.message);

    // The commit certificate in key order, but the owner's key at the end.
    let by_owner = refusal(&chain, &leg.by_hand(Decision::Commit, &buyer, &commit), "the owner's execute").await;
    assert_refused(&by_owner, EQUALVERIFY, "the owner on the execute path");

    // The same certificate, out of order, with the beneficiary: the builder
    // orders it and the node takes it.
    let reversed = [commit[1], commit[0]];
    let execute = signed_notary_spend(&leg.script, leg.from, leg.value, Decision::Commit, &seller, &reversed)
        .expect("k notaries and the beneficiary");
    taken(&mut chain, &execute, NotaryPath::Execute, "the beneficiary's execute").await;
    let paid = chain.node().unspent(&seller.script_pubkey()).await.expect("the seller's coins");
    let execute_txid = execute.compute_txid();
    assert!(paid.iter().any(|coin| coin.outpoint.txid == execute_txid), "the execute pays the beneficiary");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_takes_k_notaries_and_the_owner_and_the_refund_waits_for_the_backstop() {
    let mut chain = Chain::start().await;
    let terms = deal(&chain, 2).await;
    let payment = reserve(&mut chain, &terms, LegKind::Payment).await;
    let delivery = reserve(&mut chain, &terms, LegKind::Delivery).await;
    let [first, second, _] = notaries();
    let (seller, buyer) = (chain.key(Actor::Seller).clone(), chain.key(Actor::Buyer).clone());

    // The payment's cancel: its beneficiary cannot take the owner's path.
    let abort = payment.certificate(Decision::Abort, &[&second, &first]);
    let sorted = [abort[1], abort[0]];
    let wrong = refusal(&chain, &payment.by_hand(Decision::Abort, &seller, &sorted), "the beneficiary's cancel").await;
    assert_refused(&wrong, EQUALVERIFY, "the beneficiary on the cancel path");
    let cancel = signed_notary_spend(&payment.script, payment.from, payment.value, Decision::Abort, &buyer, &abort)
        .expect("k notaries and the owner");
    taken(&mut chain, &cancel, NotaryPath::Cancel, "the owner's cancel").await;

    // The delivery's refund: before the backstop its lock time is not final,
    // and a lock time that is final fails the script's CLTV.
    let backstop = LockTime::from_time(delivery.script.backstop_s()).expect("a time lock");
    let early = refusal(&chain, &delivery.refund_at(&seller, backstop), "a refund before the backstop").await;
    assert_refused(&early, "non-final", "a refund before the backstop");
    let median = u32::try_from(chain.node.median_time().await.expect("time")).expect("a u32 time");
    let final_now = LockTime::from_time(median - 60).expect("a time lock");
    let under = refusal(&chain, &delivery.refund_at(&seller, final_now), "a refund under the backstop").await;
    assert_refused(&under, "Locktime requirement not satisfied", "a refund whose lock time is under the backstop");

    // After the backstop the owner alone takes it back.
    chain.advance(7_200_000).await.expect("move past the backstop");
    let refund = refund(&seller, &delivery.script, delivery.from, delivery.value, seller.script_pubkey(), 2)
        .expect("the owner's refund");
    taken(&mut chain, &refund.transaction, NotaryPath::Refund, "the owner's refund after the backstop").await;
}
