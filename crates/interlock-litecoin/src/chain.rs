//! What Interlock reads from litecoind: blocks as JSON (`getblock <hash> 2`,
//! never raw: Litecoin's MWEB extension is beyond rust-bitcoin), the mempool,
//! an account's coins, where a leg's output stands, and the node's verdict on a
//! transaction before it is sent.

use crate::leg::{read_leg_spend, LegScript};
use crate::rpc::{code, Call, Rpc, RpcError};
use crate::script::Spend;
use crate::tx::Coin;
use bitcoin::consensus::encode::serialize_hex;
use bitcoin::hashes::Hash as _;
use bitcoin::{OutPoint, ScriptBuf, Transaction, Txid};
use interlock_chain::{ChainError, Cursor};
use interlock_core::Hash32;
use serde::Deserialize;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::str::FromStr;

/// Blocks fetched per batched request.
const BLOCKS_PER_BATCH: u64 = 25;
/// Mempool transactions fetched per batched request.
const TXS_PER_BATCH: usize = 100;

/// A block as `getblock <hash> 2` shows it, with only what Interlock reads.
#[derive(Clone, Debug, Deserialize)]
pub struct BlockJson {
    pub hash: String,
    pub height: u64,
    /// The median time past: the clock lock times are checked against.
    pub mediantime: u64,
    #[serde(default)]
    pub previousblockhash: Option<String>,
    pub tx: Vec<TxJson>,
}

#[derive(Clone, Debug, Deserialize)]
pub struct TxJson {
    pub txid: String,
    #[serde(default)]
    pub vin: Vec<VinJson>,
    #[serde(default)]
    pub vout: Vec<VoutJson>,
}

#[derive(Clone, Debug, Deserialize)]
pub struct VinJson {
    #[serde(default)]
    pub txinwitness: Vec<String>,
}

#[derive(Clone, Debug, Deserialize)]
pub struct VoutJson {
    /// In LTC.
    #[serde(default)]
    pub value: f64,
    #[serde(default)]
    pub n: u32,
    #[serde(rename = "scriptPubKey", default)]
    pub script_pub_key: Option<ScriptJson>,
}

#[derive(Clone, Debug, Deserialize)]
pub struct ScriptJson {
    pub hex: String,
}

/// The highest block height the node may report: 2^63 - 1, what a SQLite
/// integer holds.
pub const HEIGHT_MAX: u64 = i64::MAX.unsigned_abs();

/// The most litoshis there are: litecoin's 84 million coins.
pub const LITOSHIS_MAX: u64 = 84_000_000 * 100_000_000;
/// [`LITOSHIS_MAX`] as a JSON number compares: exact, being below 2^53.
const LITOSHIS_MAX_F64: f64 = 8.4e15;

/// LTC as JSON numbers show it, in litoshis; 0 for what is no amount (not
/// finite, not positive, or more than all the coins there are).
pub fn litoshis(ltc: f64) -> u64 {
    let scaled = (ltc * 1e8).round();
    if !(scaled.is_finite() && scaled > 0.0 && scaled <= LITOSHIS_MAX_F64) {
        return 0;
    }
    // A whole number in 1..=8.4e15, checked above: exact as a u64.
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    let litoshis = scaled as u64;
    litoshis
}

/// A hash in the node's hex (display order) as the seam's 32 bytes.
pub fn hash_of(hex: &str) -> Result<Hash32, ChainError> {
    interlock_core::hash::from_hex(hex)
        .and_then(|bytes| <[u8; 32]>::try_from(bytes).ok())
        .map(Hash32)
        .ok_or_else(|| ChainError::fatal(format!("litecoind answered {hex:?} for a hash")))
}

/// The seam's 32 bytes back in the node's hex.
pub fn hex_of(hash: &Hash32) -> String {
    interlock_core::hash::to_hex(&hash.0)
}

impl TxJson {
    /// Each input's witness items, decoded.
    pub fn witnesses(&self) -> impl Iterator<Item = Vec<Vec<u8>>> + '_ {
        self.vin.iter().map(|input| {
            input.txinwitness.iter().map(|item| interlock_core::hash::from_hex(item).unwrap_or_default()).collect()
        })
    }

    /// The legs this transaction spends, and how.
    pub fn spends(&self) -> impl Iterator<Item = (LegScript, Spend)> + '_ {
        self.witnesses().filter_map(|items| read_leg_spend(&items))
    }

    /// Outputs paying `script`, with their value in litoshis.
    pub fn outputs_to<'a>(&'a self, script: &'a str) -> impl Iterator<Item = (u32, u64)> + 'a {
        self.vout
            .iter()
            .filter(move |output| output.script_pub_key.as_ref().is_some_and(|spk| spk.hex == script))
            .map(|output| (output.n, litoshis(output.value)))
    }
}

/// Where a leg's output stands.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum Located {
    /// No output of the leg's amount pays its script.
    Nothing,
    /// Reserved: the output is there, unspent.
    Unspent { outpoint: OutPoint, value: u64 },
    /// Claimed or refunded by `transaction`, still in the mempool when `pending`.
    Spent { transaction: Hash32, spend: Spend, pending: bool },
}

/// Every spend of a leg in the chain's blocks, by the leg's output script
/// (a look-alike script that only shares the reservation id is another output):
/// what tells a reservation that was taken from one never made once its
/// output is gone from the UTXO set. Kept up to the tip, rebuilt after a
/// reorganisation.
#[derive(Clone, Debug)]
pub struct SpendIndex {
    start: u64,
    scanned: Cursor,
    spends: HashMap<ScriptBuf, (Hash32, Spend)>,
}

impl SpendIndex {
    /// An index of the blocks after `start`.
    pub fn new(start: u64) -> SpendIndex {
        SpendIndex { start, scanned: Cursor::start(start), spends: HashMap::new() }
    }

    pub fn get(&self, leg: &LegScript) -> Option<&(Hash32, Spend)> {
        self.spends.get(&leg.script_pubkey())
    }

    /// Reads the blocks since the last update.
    pub async fn update(&mut self, node: &Node) -> Result<(), ChainError> {
        if !self.scanned.is_start() && node.block_hash(self.scanned.height).await?.as_ref() != Some(&self.scanned.hash)
        {
            *self = SpendIndex::new(self.start);
        }
        let tip = node.tip().await?;
        let mut from = self.scanned.height + 1;
        while from <= tip {
            let to = tip.min(from + BLOCKS_PER_BATCH - 1);
            for block in node.blocks(from, to).await? {
                let transaction_spends = block.tx.iter().flat_map(|tx| tx.spends().map(move |spend| (tx, spend)));
                for (tx, (leg, spend)) in transaction_spends {
                    self.spends.entry(leg.script_pubkey()).or_insert((hash_of(&tx.txid)?, spend));
                }
                self.scanned = Cursor { height: block.height, hash: hash_of(&block.hash)? };
            }
            from = to + 1;
        }
        Ok(())
    }
}

/// A litecoind node, as the platform reads and writes it.
#[derive(Clone, Debug)]
pub struct Node {
    pub rpc: Rpc,
}

impl Node {
    pub fn new(rpc: Rpc) -> Node {
        Node { rpc }
    }

    pub async fn tip(&self) -> Result<u64, ChainError> {
        let count: u64 = self.rpc.call("getblockcount", json!([])).await?;
        // Every height the followers compute (tip + 1, a batch's end) stays
        // below this, and so do the cursors stored as SQLite integers.
        if count > HEIGHT_MAX {
            return Err(ChainError::fatal(format!(
                "litecoind: getblockcount answered {count}: expected at most {HEIGHT_MAX}"
            )));
        }
        Ok(count)
    }

    /// The hash of the main chain's block at `height`, if the chain is that long.
    pub async fn block_hash(&self, height: u64) -> Result<Option<Hash32>, ChainError> {
        match self.rpc.call::<String>("getblockhash", json!([height])).await {
            Ok(hex) => Ok(Some(hash_of(&hex)?)),
            Err(RpcError::Rpc { code: -8, .. }) => Ok(None),
            Err(error) => Err(error.into()),
        }
    }

    /// The main chain's blocks `from..=to`, in order, in two batched requests.
    pub async fn blocks(&self, from: u64, to: u64) -> Result<Vec<BlockJson>, ChainError> {
        let calls: Vec<Call> = (from..=to).map(|height| Call::new("getblockhash", json!([height]))).collect();
        let hashes = self.rpc.batch(&calls).await?;
        let mut calls = Vec::with_capacity(hashes.len());
        for hash in hashes {
            calls.push(Call::new("getblock", json!([hash?, 2])));
        }
        let mut blocks = Vec::with_capacity(calls.len());
        for (height, block) in (from..=to).zip(self.rpc.batch(&calls).await?) {
            let block: BlockJson = serde_json::from_value(block?)
                .map_err(|error| ChainError::fatal(format!("litecoind: getblock: unexpected answer: {error}")))?;
            // The followers take their cursors from these heights.
            if block.height != height {
                return Err(ChainError::fatal(format!(
                    "litecoind: getblock answered height {} for the block at height {height}",
                    block.height
                )));
            }
            blocks.push(block);
        }
        Ok(blocks)
    }

    /// The header of the block `hash`, on the main chain or not: its height,
    /// its parent, and whether the main chain holds it.
    pub async fn header(&self, hash: &Hash32) -> Result<(u64, Option<Hash32>, bool), ChainError> {
        let header: Value = self.rpc.call("getblockheader", json!([hex_of(hash)])).await?;
        let height = header.get("height").and_then(Value::as_u64).unwrap_or(0);
        let parent = header.get("previousblockhash").and_then(Value::as_str).map(hash_of).transpose()?;
        let on_main = header.get("confirmations").and_then(Value::as_i64).unwrap_or(-1) >= 0;
        Ok((height, parent, on_main))
    }

    /// The chain's median time past, unix seconds: what lock times are held to.
    pub async fn median_time(&self) -> Result<u64, ChainError> {
        let info: Value = self.rpc.call("getblockchaininfo", json!([])).await?;
        info.get("mediantime")
            .and_then(Value::as_u64)
            .ok_or_else(|| ChainError::fatal("litecoind: getblockchaininfo has no mediantime"))
    }

    /// Every transaction in the node's mempool.
    pub async fn mempool(&self) -> Result<Vec<TxJson>, ChainError> {
        let txids: Vec<String> = self.rpc.call("getrawmempool", json!([])).await?;
        let mut transactions = Vec::with_capacity(txids.len());
        for chunk in txids.chunks(TXS_PER_BATCH) {
            let calls: Vec<Call> =
                chunk.iter().map(|txid| Call::new("getrawtransaction", json!([txid, true]))).collect();
            for answer in self.rpc.batch(&calls).await? {
                // A transaction that left the mempool since the list was read.
                let Ok(value) = answer else { continue };
                if let Ok(transaction) = serde_json::from_value(value) {
                    transactions.push(transaction);
                }
            }
        }
        Ok(transactions)
    }

    /// The confirmed unspent outputs paying `script` that no mempool
    /// transaction spends yet.
    pub async fn unspent(&self, script: &ScriptBuf) -> Result<Vec<Coin>, ChainError> {
        let descriptor = format!("raw({})", script.to_hex_string());
        let scan: Value = loop {
            match self.rpc.call("scantxoutset", json!(["start", [{ "desc": descriptor }]])).await {
                Err(RpcError::Rpc { code: -8, ref message, .. }) if message.contains("in progress") => {
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                }
                other => break other?,
            }
        };
        let mut coins = Vec::new();
        for unspent in scan.get("unspents").and_then(Value::as_array).into_iter().flatten() {
            let txid = unspent.get("txid").and_then(Value::as_str).and_then(|txid| Txid::from_str(txid).ok());
            let vout = unspent.get("vout").and_then(Value::as_u64).and_then(|vout| u32::try_from(vout).ok());
            let value = litoshis(unspent.get("amount").and_then(Value::as_f64).unwrap_or(0.0));
            if let (Some(txid), Some(vout)) = (txid, vout) {
                coins.push(Coin { outpoint: OutPoint { txid, vout }, value });
            }
        }
        // Leave out what a mempool transaction already spends.
        let calls: Vec<Call> = coins
            .iter()
            .map(|coin| Call::new("gettxout", json!([coin.outpoint.txid.to_string(), coin.outpoint.vout, true])))
            .collect();
        let answers = self.rpc.batch(&calls).await?;
        let mut free = Vec::with_capacity(coins.len());
        for (coin, answer) in coins.into_iter().zip(answers) {
            if !answer?.is_null() {
                free.push(coin);
            }
        }
        Ok(free)
    }

    /// Where `leg`'s output of `amount` litoshis stands, counting the mempool.
    pub async fn locate(&self, index: &mut SpendIndex, leg: &LegScript, amount: u64) -> Result<Located, ChainError> {
        let mempool = self.mempool().await?;
        for tx in &mempool {
            if let Some((_, spend)) = tx.spends().find(|(spent, _)| spent == leg) {
                return Ok(Located::Spent { transaction: hash_of(&tx.txid)?, spend, pending: true });
            }
        }
        index.update(self).await?;
        if let Some((transaction, spend)) = index.get(leg) {
            return Ok(Located::Spent { transaction: *transaction, spend: *spend, pending: false });
        }
        let script = leg.script_pubkey();
        if let Some(coin) = self.unspent(&script).await?.into_iter().find(|coin| coin.value == amount) {
            return Ok(Located::Unspent { outpoint: coin.outpoint, value: coin.value });
        }
        let hex = script.to_hex_string();
        for tx in &mempool {
            if let Some((vout, value)) = tx.outputs_to(&hex).find(|(_, value)| *value == amount) {
                let txid = Txid::from_str(&tx.txid)
                    .map_err(|error| ChainError::fatal(format!("litecoind: txid {:?}: {error}", tx.txid)))?;
                return Ok(Located::Unspent { outpoint: OutPoint { txid, vout }, value });
            }
        }
        Ok(Located::Nothing)
    }

    /// The fee rate to pay now, litoshis per vbyte: the node's estimate for the
    /// next two blocks, never under `floor` nor the node's relay minimum, never
    /// over `cap`.
    pub async fn fee_rate(&self, floor: u64, cap: u64) -> Result<u64, ChainError> {
        let answers = self
            .rpc
            .batch(&[Call::new("estimatesmartfee", json!([2])), Call::new("getnetworkinfo", json!([]))])
            .await?;
        let mut answers = answers.into_iter();
        // The next answer's `field`, a rate in LTC per kvB, in litoshis per vbyte.
        let mut next_rate = |field: &str, otherwise: u64| {
            answers
                .next()
                .and_then(Result::ok)
                .and_then(|answer| answer.get(field).and_then(Value::as_f64))
                .map_or(otherwise, |ltc| litoshis(ltc).div_ceil(1000))
        };
        let estimate = next_rate("feerate", 0);
        let relay = next_rate("relayfee", 1);
        Ok(estimate.max(floor).max(relay).min(cap.max(relay)))
    }

    /// Whether the node would refuse `outputs` as dust: it checks a
    /// transaction's outputs before it looks for its inputs, so a
    /// transaction that spends nothing real still gets that answer. The
    /// node's own reason when it is dust; `None` otherwise.
    pub async fn dust(&self, outputs: Vec<bitcoin::TxOut>) -> Result<Option<String>, ChainError> {
        let unreal = OutPoint { txid: Txid::from_byte_array([0x11; 32]), vout: 0 };
        let mut probe = crate::tx::one_input(unreal, bitcoin::absolute::LockTime::ZERO, outputs[0].clone());
        probe.output = outputs;
        let verdicts: Vec<Value> = self.rpc.call("testmempoolaccept", json!([[serialize_hex(&probe)]])).await?;
        let reason = verdicts.first().and_then(|verdict| verdict.get("reject-reason")).and_then(Value::as_str);
        Ok(reason.filter(|reason| reason.contains("dust")).map(str::to_owned))
    }

    /// Asks the node whether it would take `transaction`, then sends it.
    pub async fn send(&self, transaction: &Transaction) -> Result<Hash32, ChainError> {
        let hex = serialize_hex(transaction);
        let verdicts: Vec<Value> = self.rpc.call("testmempoolaccept", json!([[hex]])).await?;
        let verdict = verdicts.first().cloned().unwrap_or(Value::Null);
        if verdict.get("allowed").and_then(Value::as_bool) != Some(true) {
            let reason = verdict.get("reject-reason").and_then(Value::as_str).unwrap_or("no reason given");
            return Err(refusal(reason));
        }
        match self.rpc.call::<String>("sendrawtransaction", json!([hex])).await {
            Ok(txid) => hash_of(&txid),
            Err(RpcError::Rpc { code, message, .. })
                if code == code::VERIFY_REJECTED
                    || code == code::VERIFY_ERROR
                    || code == code::VERIFY_ALREADY_IN_CHAIN =>
            {
                Err(refusal(&message))
            }
            Err(error) => Err(error.into()),
        }
    }
}

/// What the node's refusal of a transaction means for the caller.
pub fn refusal(reason: &str) -> ChainError {
    let said = format!("litecoind refused the transaction: {reason}");
    if reason.contains("dust") {
        ChainError::rejected(format!("{said}: an output is below this node's dust limit"))
    } else if reason.contains("non-final") || reason.contains("non-BIP68-final") {
        ChainError::rejected(format!("{said}: its lock time is not yet below the chain's median time past"))
    } else if reason.contains("already") || reason.contains("txn-already") {
        ChainError::already_done(said)
    } else if reason.contains("missing")
        || reason.contains("conflict")
        || reason.contains("fee")
        || reason.contains("mempool full")
        || reason.contains("too-long-mempool-chain")
    {
        ChainError::retry_later(said)
    } else {
        ChainError::rejected(said)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_are_classified_by_what_the_caller_can_do() {
        use interlock_chain::ChainErrorKind::*;
        assert_eq!(refusal("dust").kind, Rejected);
        assert_eq!(refusal("non-final").kind, Rejected);
        assert_eq!(refusal("txn-already-in-mempool").kind, AlreadyDone);
        assert_eq!(refusal("bad-txns-inputs-missingorspent").kind, RetryLater);
        assert_eq!(refusal("txn-mempool-conflict").kind, RetryLater);
        assert_eq!(refusal("min relay fee not met").kind, RetryLater);
        assert_eq!(
            refusal("non-mandatory-script-verify-flag (Script failed an OP_EQUALVERIFY operation)").kind,
            Rejected
        );
    }

    #[test]
    fn amounts_convert_to_litoshis_exactly() {
        assert_eq!(litoshis(12.5), 1_250_000_000);
        assert_eq!(litoshis(0.00000001), 1);
        assert_eq!(litoshis(20999999.9769), 2_099_999_997_690_000);
        assert_eq!(litoshis(-1.0), 0);
        assert_eq!(litoshis(84_000_000.0), LITOSHIS_MAX);
        for not_an_amount in [84_000_000.01, 1e30, f64::INFINITY, f64::NAN, f64::MAX] {
            assert_eq!(litoshis(not_an_amount), 0, "{not_an_amount}");
        }
    }
}
