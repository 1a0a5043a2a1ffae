//! Spends of a hashlock leg that litecoind itself refuses. Each transaction
//! here is built by hand, past every check of the platform's own submitter,
//! and sent to the node as it is: the test asserts the node's reject reason,
//! so what keeps the escrow's rules is the chain's script and lock-time
//! checks, not Interlock's code. Each refusal is paired with the same builder
//! succeeding when it is given what the script asks for.

mod common;

use bitcoin::absolute::LockTime;
use bitcoin::hashes::Hash as _;
use bitcoin::sighash::{EcdsaSighashType, SighashCache};
use bitcoin::{Amount, OutPoint, ScriptBuf, Transaction, TxOut, Witness};
use common::{hashlock_deal, Chain};
use interlock_chain::conformance::Actor;
use interlock_core::crypto::Secret;
use interlock_core::saga::expected_request;
use interlock_core::{DealTerms, EscrowOp, LegKind};
use interlock_litecoin::chain::{Located, SpendIndex};
use interlock_litecoin::regtest::READY_HEIGHT;
use interlock_litecoin::script::HashlockScript;
use interlock_litecoin::tx::Key;

const SECRET: Secret = Secret([0x5a; 32]);
/// What every hand-built spend pays: well over the relay minimum.
const FEE: u64 = 2_000;

/// The deal's `leg` reserved and confirmed: its script, output and value.
async fn reserved(chain: &mut Chain, terms: &DealTerms, leg: LegKind) -> (HashlockScript, OutPoint, u64) {
    let owner = match leg {
        LegKind::Payment => Actor::Buyer,
        LegKind::Delivery => Actor::Seller,
    };
    let reserve = EscrowOp::Reserve(expected_request(terms, terms.id(), leg));
    chain.submitter(owner).submit(terms, &reserve).await.expect("reserve");
    chain.mine(1).await.expect("mine the reservation");
    let script = HashlockScript::of(terms, leg).expect("a hashlock leg");
    let amount = match leg {
        LegKind::Payment => &terms.payment.asset,
        LegKind::Delivery => &terms.delivery.asset,
    };
    let interlock_core::Asset::Fungible { amount, .. } = amount else { panic!("a coin amount") };
    let amount = u64::try_from(*amount).expect("litoshis");
    let mut index = SpendIndex::new(READY_HEIGHT);
    match chain
        .node()
        .locate(&mut index, &interlock_litecoin::leg::LegScript::Hashlock(script), amount)
        .await
        .expect("locate")
    {
        Located::Unspent { outpoint, value } => (script, outpoint, value),
        other => panic!("the leg's output is not there: {other:?}"),
    }
}

/// What a spend's witness holds besides the signature and the script.
enum Items {
    Claim { key: [u8; 33], preimage: Vec<u8> },
    Refund { key: [u8; 33] },
}

/// A spend of `from` to `to`, signed by `signer` and showing `items`, with
/// the lock time `lock_time`.
fn spend(
    signer: &Key,
    leg: &HashlockScript,
    (from, value): (OutPoint, u64),
    to: ScriptBuf,
    lock_time: LockTime,
    items: Items,
) -> Transaction {
    let output = TxOut { value: Amount::from_sat(value - FEE), script_pubkey: to };
    let mut transaction = interlock_litecoin::tx::one_input(from, lock_time, output);
    let script = leg.witness_script();
    let sighash = SighashCache::new(&transaction)
        .p2wsh_signature_hash(0, &script, Amount::from_sat(value), EcdsaSighashType::All)
        .expect("a sighash");
    let signature = signer.sign(sighash.to_byte_array());
    transaction.input[0].witness = match items {
        Items::Claim { key, preimage } => {
            Witness::from_slice(&[signature.as_slice(), &key, &preimage, &[1u8], script.as_bytes()])
        }
        Items::Refund { key } => Witness::from_slice(&[signature.as_slice(), &key, &[], script.as_bytes()]),
    };
    transaction
}

/// Sends `transaction` and asserts that litecoind refuses it, saying `expected`;
/// `what` names the attempt.
async fn assert_node_refuses(chain: &Chain, transaction: &Transaction, expected: &str, what: &str) {
    let reason = match chain.node().send(transaction).await {
        Ok(txid) => panic!("litecoind took {what} ({})", interlock_litecoin::chain::hex_of(&txid)),
        Err(error) => error.message,
    };
    assert!(reason.contains(expected), "{what}: expected litecoind to say {expected:?}, it said {reason:?}");
}

/// A fresh chain with a hashlock deal on [`SECRET`] (300 paid for 200, nonce
/// `nonce`) whose `leg` is reserved and confirmed: see [`reserved`].
async fn chain_with_reserved(nonce: u64, leg: LegKind) -> (Chain, DealTerms, (HashlockScript, OutPoint, u64)) {
    let mut chain = Chain::start().await;
    let now_ms = chain.node.median_time().await.expect("time") * 1000;
    let terms = hashlock_deal(&chain, now_ms, &SECRET, chain.fungible(300), chain.fungible(200), nonce);
    let output = reserved(&mut chain, &terms, leg).await;
    (chain, terms, output)
}

/// The script check that fails for a wrong preimage or key.
const EQUALVERIFY: &str = "Script failed an OP_EQUALVERIFY operation";

/// A signature that fails its check must be empty (BIP 146, NULLFAIL): a
/// wrong one is refused as such.
const NULLFAIL: &str = "Signature must be zero for failed CHECK(MULTI)SIG operation";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn claims_the_script_does_not_allow_are_refused_by_the_node() {
    let (mut chain, terms, (leg, from, value)) = chain_with_reserved(1, LegKind::Payment).await;
    let (seller, stranger) = (chain.key(Actor::Seller).clone(), chain.key(Actor::Stranger).clone());
    let to = seller.script_pubkey();
    let claim = |signer: &Key, key: &Key, preimage: &[u8]| {
        let items = Items::Claim { key: key.public_bytes(), preimage: preimage.to_vec() };
        spend(signer, &leg, (from, value), to.clone(), LockTime::ZERO, items)
    };

    assert_node_refuses(&chain, &claim(&seller, &seller, &[0x11; 32]), EQUALVERIFY, "a wrong preimage").await;
    let mut short = SECRET.0.to_vec();
    short.pop();
    assert_node_refuses(&chain, &claim(&seller, &seller, &short), EQUALVERIFY, "a 31-byte preimage").await;
    assert_node_refuses(&chain, &claim(&stranger, &stranger, &SECRET.0), EQUALVERIFY, "another key's claim").await;
    let forged = claim(&stranger, &seller, &SECRET.0);
    assert_node_refuses(&chain, &forged, NULLFAIL, "the beneficiary's key, another's signature").await;
    let owner = chain.key(Actor::Buyer).clone();
    assert_node_refuses(&chain, &claim(&owner, &owner, &SECRET.0), EQUALVERIFY, "the owner's claim").await;

    // The same builder, given the secret and the beneficiary's key, is taken:
    // the refusals above were the script's, not a malformed transaction's.
    chain.node().send(&claim(&seller, &seller, &SECRET.0)).await.expect("the beneficiary's claim");
    chain.mine(1).await.expect("mine the claim");
    let state = chain.submitter(Actor::Stranger).leg_state(&terms, LegKind::Payment).await.expect("state");
    assert_eq!(state, Some(interlock_core::escrow::ReservationState::Executed));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn early_refunds_and_second_spends_are_refused_by_the_node() {
    let (mut chain, terms, (leg, from, value)) = chain_with_reserved(2, LegKind::Delivery).await;
    let seller = chain.key(Actor::Seller).clone();
    let expiry = LockTime::from_time(leg.expiry_s).expect("a time lock");
    let refund = |lock_time: LockTime, to: ScriptBuf| {
        spend(&seller, &leg, (from, value), to, lock_time, Items::Refund { key: seller.public_bytes() })
    };

    // Before the expiry a refund with the leg's lock time is not yet final;
    // one with an earlier lock time, final now, fails the script's CLTV.
    let own = seller.script_pubkey();
    assert_node_refuses(&chain, &refund(expiry, own.clone()), "non-final", "a refund before the expiry").await;
    let median = u32::try_from(chain.node.median_time().await.expect("time")).expect("a u32 time");
    let final_now = LockTime::from_time(median - 60).expect("a time lock");
    let under = "a refund whose lock time is under the script's";
    assert_node_refuses(&chain, &refund(final_now, own.clone()), "Locktime requirement not satisfied", under).await;

    // After the expiry the owner's refund is taken; a second spend of the
    // same output is refused while the first waits and once it is mined.
    chain.advance(3_600_000).await.expect("move past the expiry");
    chain.node().send(&refund(expiry, own)).await.expect("the owner's refund after the expiry");
    let stranger = chain.key(Actor::Stranger).script_pubkey();
    let waiting = "a second spend while the first waits";
    assert_node_refuses(&chain, &refund(expiry, stranger.clone()), "txn-mempool-conflict", waiting).await;
    chain.mine(1).await.expect("mine the refund");
    let mined = "a second spend once the first is mined";
    assert_node_refuses(&chain, &refund(expiry, stranger), "missing-inputs", mined).await;
    let state = chain.submitter(Actor::Buyer).leg_state(&terms, LegKind::Delivery).await.expect("state");
    assert_eq!(state, Some(interlock_core::escrow::ReservationState::Cancelled));
}
