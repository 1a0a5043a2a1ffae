//! Notary legs: a leg's output locked to a P2WSH script that k of the deal's
//! n notaries unlock together with the party their decision names (the
//! beneficiary on commit, the owner on abort), and that the owner alone takes
//! back once the deal's backstop expiry has passed, should the notaries never
//! decide.
//!
//! ```text
//! <reservation id> OP_DROP
//! OP_IF
//!     <k> <notary key 1> … <notary key n> <n> OP_CHECKMULTISIGVERIFY
//! OP_ELSE
//!     <backstop> OP_CHECKLOCKTIMEVERIFY OP_DROP OP_0
//! OP_ENDIF
//! OP_IF <beneficiary key hash> OP_ELSE <owner key hash> OP_ENDIF
//! OP_OVER OP_HASH160 OP_EQUALVERIFY OP_CHECKSIG
//! ```
//!
//! The first branch is the notaries' (`1`) or the backstop's (empty); the
//! second picks whose key signs last: the beneficiary's (`1`) or the owner's
//! (empty). The backstop branch pushes its own `0`, so after the backstop
//! only the owner's key opens the output. Both branches share the key-hash
//! check at the end, which keeps the script short: 199 bytes for 2 of 3.
//! The witnesses, script last:
//!
//! ```text
//! execute: <beneficiary sig> <beneficiary key> 1 <> <notary sig>… 1 <script>
//! cancel:  <owner sig>       <owner key>       <> <> <notary sig>… 1 <script>
//! refund:  <owner sig>       <owner key>       <> <script>
//! ```
//!
//! The empty item under the notary signatures is the extra element
//! `OP_CHECKMULTISIG` pops, which must be empty (NULLDUMMY); the notary
//! signatures are exactly k, in the order of their keys in the script (the
//! deal's notary order), since `OP_CHECKMULTISIG` walks both lists once.
//!
//! As in a hashlock leg, the reservation id makes every leg's output script
//! its own. What a notary signs is the spend that carries its decision out on
//! this leg ([`notary_spend`]): k notary signatures over that one transaction are the
//! certificate here, and a certificate for the other decision is a signature
//! of another transaction, which the script refuses.

mod keys;
mod spend;

pub use keys::{notary_address, notary_public_key};
pub use spend::{
    location_bytes, notary_signatures, notary_spend, notary_spend_fee, read_location, refund, sighash,
    signed_notary_spend, spend_digest, NOTARY_SPEND_RATE_SAT_VB,
};

use crate::script::expiry_seconds;
use bitcoin::blockdata::opcodes::all::{
    OP_CHECKMULTISIGVERIFY, OP_CHECKSIG, OP_CLTV, OP_DROP, OP_ELSE, OP_ENDIF, OP_EQUALVERIFY, OP_HASH160, OP_IF,
    OP_OVER, OP_PUSHBYTES_0,
};
use bitcoin::script::{Builder, Instruction};
use bitcoin::{Script, ScriptBuf};
use interlock_chain::ChainError;
use interlock_core::crypto::Decision;
use interlock_core::limits::NOTARIES_MAX;
use interlock_core::{reservation_id, DealTerms, LegKind, NotaryAddress, Settlement};

/// One notary leg's script parameters. Built only through
/// [`NotaryScript::new`], [`NotaryScript::of`] or [`NotaryScript::parse`], so
/// its threshold is always one a script can meet.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct NotaryScript {
    reservation: [u8; 32],
    beneficiary: [u8; 20],
    owner: [u8; 20],
    notaries: Vec<[u8; 33]>,
    threshold: u8,
    backstop_s: u32,
}

/// Which way a spend takes a notary leg's output.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum NotaryPath {
    /// k notaries and the beneficiary: the deal committed.
    Execute,
    /// k notaries and the owner: the deal aborted.
    Cancel,
    /// The owner alone, after the backstop expiry.
    Refund,
}

impl NotaryPath {
    /// The path a notary decision takes. A verdict of an inspection period
    /// takes none: a leg's output has two spend paths under the notaries, and
    /// holding an executed leg would need a third (see `Capabilities::inspection`).
    pub fn of(decision: Decision) -> Result<NotaryPath, ChainError> {
        match decision {
            Decision::Commit => Ok(NotaryPath::Execute),
            Decision::Abort => Ok(NotaryPath::Cancel),
            Decision::Release | Decision::Reverse => Err(ChainError::rejected(format!(
                "a {decision} verdict has no spend path on a Litecoin leg: this platform holds no executed leg"
            ))),
        }
    }
}

/// How a spend of a notary leg's output took it, and the party key it showed.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct NotarySpend {
    pub path: NotaryPath,
    pub key: [u8; 33],
}

/// Items a notary-path witness holds besides the k notary signatures: the
/// party's signature and key, the second selector, the dummy, the first
/// selector and the script.
const NOTARY_WITNESS_FIXED_ITEMS: usize = 6;
/// Instructions of the script besides the notary keys.
const TEMPLATE_FIXED_INSTRUCTIONS: usize = 21;

impl NotaryScript {
    /// A leg's script; refuses a threshold no spend could meet (0, or more
    /// than the notaries), no notaries, more than the deal limit, a key named
    /// twice, and a backstop that is not a time (a lock time under 500 000 000
    /// is a block height).
    pub fn new(
        reservation: [u8; 32],
        beneficiary: [u8; 20],
        owner: [u8; 20],
        notaries: Vec<[u8; 33]>,
        threshold: u8,
        backstop_s: u32,
    ) -> Result<NotaryScript, ChainError> {
        let count = notaries.len();
        if threshold == 0 || usize::from(threshold) > count || count > NOTARIES_MAX {
            return Err(ChainError::rejected(format!(
                "notary threshold {threshold} of {count}: expected 1 <= threshold <= notaries <= {NOTARIES_MAX}"
            )));
        }
        if let Some(index) = (1..count).find(|index| notaries[..*index].contains(&notaries[*index])) {
            return Err(ChainError::rejected(format!(
                "notary key {} is named twice: one notary would count as two",
                interlock_core::hash::to_hex(&notaries[index])
            )));
        }
        if backstop_s < bitcoin::absolute::LOCK_TIME_THRESHOLD {
            return Err(ChainError::rejected(format!(
                "backstop {backstop_s}: expected unix seconds, at least {}",
                bitcoin::absolute::LOCK_TIME_THRESHOLD
            )));
        }
        Ok(NotaryScript { reservation, beneficiary, owner, notaries, threshold, backstop_s })
    }

    /// The script of `leg` of a notary deal. The terms name notaries by
    /// address; `notary_keys` supplies their compressed public keys (in any
    /// order, extra keys ignored), each matched to the address it hashes to.
    pub fn of(terms: &DealTerms, leg: LegKind, notary_keys: &[[u8; 33]]) -> Result<NotaryScript, ChainError> {
        let Settlement::Notary { notaries, threshold, backstop_expiry_ms, .. } = &terms.settlement else {
            return Err(ChainError::fatal("not a notary deal"));
        };
        let mut supplied = Vec::with_capacity(notary_keys.len());
        for key in notary_keys {
            supplied.push((notary_address(key)?, *key));
        }
        let key_of = |address: &NotaryAddress| {
            supplied.iter().find(|(of_key, _)| of_key == address).map(|(_, key)| *key).ok_or_else(|| {
                ChainError::rejected(format!(
                    "notary {address} of deal {} has no public key among the {} supplied: the leg's script names \
                     each notary by its compressed key",
                    terms.id(),
                    notary_keys.len()
                ))
            })
        };
        let keys = notaries.iter().map(key_of).collect::<Result<Vec<_>, _>>()?;
        let side = terms.leg(leg);
        NotaryScript::new(
            reservation_id(terms.id(), leg).0 .0,
            crate::address::key_hash(&side.beneficiary)?,
            crate::address::key_hash(&side.owner)?,
            keys,
            *threshold,
            expiry_seconds(*backstop_expiry_ms)?,
        )
    }

    pub fn reservation(&self) -> [u8; 32] {
        self.reservation
    }

    pub fn beneficiary(&self) -> [u8; 20] {
        self.beneficiary
    }

    pub fn owner(&self) -> [u8; 20] {
        self.owner
    }

    /// The notaries' compressed keys, in the deal's notary order.
    pub fn notaries(&self) -> &[[u8; 33]] {
        &self.notaries
    }

    pub fn threshold(&self) -> u8 {
        self.threshold
    }

    /// The backstop expiry in unix seconds: the refund's lock time, checked
    /// against the chain's median time past.
    pub fn backstop_s(&self) -> u32 {
        self.backstop_s
    }

    /// The key hash the party of `path` must show.
    pub fn party(&self, path: NotaryPath) -> [u8; 20] {
        match path {
            NotaryPath::Execute => self.beneficiary,
            NotaryPath::Cancel | NotaryPath::Refund => self.owner,
        }
    }

    /// The witness script.
    pub fn witness_script(&self) -> ScriptBuf {
        let count = i64::try_from(self.notaries.len()).expect("at most NOTARIES_MAX notaries");
        let mut builder = Builder::new()
            .push_slice(self.reservation)
            .push_opcode(OP_DROP)
            .push_opcode(OP_IF)
            .push_int(i64::from(self.threshold));
        for key in &self.notaries {
            builder = builder.push_slice(key);
        }
        builder
            .push_int(count)
            .push_opcode(OP_CHECKMULTISIGVERIFY)
            .push_opcode(OP_ELSE)
            .push_int(i64::from(self.backstop_s))
            .push_opcode(OP_CLTV)
            .push_opcode(OP_DROP)
            .push_opcode(OP_PUSHBYTES_0)
            .push_opcode(OP_ENDIF)
            .push_opcode(OP_IF)
            .push_slice(self.beneficiary)
            .push_opcode(OP_ELSE)
            .push_slice(self.owner)
            .push_opcode(OP_ENDIF)
            .push_opcode(OP_OVER)
            .push_opcode(OP_HASH160)
            .push_opcode(OP_EQUALVERIFY)
            .push_opcode(OP_CHECKSIG)
            .into_script()
    }

    /// The output script a reservation pays: P2WSH of the witness script.
    pub fn script_pubkey(&self) -> ScriptBuf {
        ScriptBuf::new_p2wsh(&self.witness_script().wscript_hash())
    }

    /// The parameters of `script` when it is exactly a notary leg's script.
    pub fn parse(script: &Script) -> Option<NotaryScript> {
        let instructions = script.instructions().collect::<Result<Vec<_>, _>>().ok()?;
        let count = instructions.len().checked_sub(TEMPLATE_FIXED_INSTRUCTIONS)?;
        let bytes = |index: usize| instructions.get(index).and_then(Instruction::push_bytes).map(|b| b.as_bytes());
        let keys = (4..4 + count)
            .map(|index| bytes(index).and_then(|key| <[u8; 33]>::try_from(key).ok()))
            .collect::<Option<Vec<_>>>()?;
        let backstop = instructions.get(count + 7)?.script_num()?;
        let parsed = NotaryScript::new(
            bytes(0)?.try_into().ok()?,
            bytes(count + 13)?.try_into().ok()?,
            bytes(count + 15)?.try_into().ok()?,
            keys,
            u8::try_from(instructions.get(3)?.script_num()?).ok()?,
            u32::try_from(backstop).ok()?,
        )
        .ok()?;
        // Only the exact template counts: rebuilding must give the same bytes.
        (parsed.witness_script().as_script() == script).then_some(parsed)
    }

    /// The witness that executes (commit) or cancels (abort) with the party's
    /// `signature` and `key` and the notaries' DER `notary_signatures`, laid
    /// out as given: no check that they are k, valid or in key order.
    pub fn notary_witness(
        &self,
        decision: Decision,
        signature: &[u8],
        key: &[u8; 33],
        notary_signatures: &[Vec<u8>],
    ) -> bitcoin::Witness {
        let selector: &[u8] = match decision {
            Decision::Commit => &[1],
            // Verdicts never get here: `NotaryPath::of` refuses them first.
            Decision::Abort | Decision::Release | Decision::Reverse => &[],
        };
        let script = self.witness_script();
        let mut witness = bitcoin::Witness::new();
        witness.push(signature);
        witness.push(key);
        witness.push(selector);
        witness.push([]);
        for notary_signature in notary_signatures {
            witness.push(notary_signature);
        }
        witness.push([1]);
        witness.push(script.as_bytes());
        witness
    }

    /// The witness that refunds after the backstop, signed `signature` by `key`.
    pub fn refund_witness(&self, signature: &[u8], key: &[u8; 33]) -> bitcoin::Witness {
        crate::script::refund_witness(&self.witness_script(), signature, key)
    }
}

/// What an input's witness (its items, the witness script last) did to a
/// notary leg, when it spends one: the path it took and the party key it
/// showed. Only a witness of the exact shape each path needs counts.
pub fn read_notary_spend(items: &[Vec<u8>]) -> Option<(NotaryScript, NotarySpend)> {
    let script = NotaryScript::parse(Script::from_bytes(items.last()?))?;
    let key: [u8; 33] = items.get(1)?.as_slice().try_into().ok()?;
    let notary_items = usize::from(script.threshold) + NOTARY_WITNESS_FIXED_ITEMS;
    let path = match items.len() {
        4 if items[2].is_empty() => NotaryPath::Refund,
        len if len == notary_items && items[len - 2] == [1] && items[3].is_empty() => match items[2].as_slice() {
            [1] => NotaryPath::Execute,
            [] => NotaryPath::Cancel,
            _ => return None,
        },
        _ => return None,
    };
    Some((script, NotarySpend { path, key }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use interlock_core::crypto::NotaryKey;

    pub(super) fn notary(seed: u8) -> NotaryKey {
        NotaryKey::from_seed([seed; 32]).expect("a valid scalar")
    }

    pub(super) fn sample(threshold: u8, count: u8) -> NotaryScript {
        let keys = (1..=count).map(|seed| notary_public_key(&notary(seed))).collect();
        NotaryScript::new([9; 32], [1; 20], [2; 20], keys, threshold, 1_800_000_000).expect("a valid script")
    }

    fn items(witness: &bitcoin::Witness) -> Vec<Vec<u8>> {
        witness.iter().map(<[u8]>::to_vec).collect()
    }

    #[test]
    fn the_script_reads_back_and_nothing_else_does() {
        for (threshold, count) in [(1, 1), (2, 3), (3, 5), (16, 16)] {
            let leg = sample(threshold, count);
            assert_eq!(NotaryScript::parse(&leg.witness_script()), Some(leg));
        }
        let script = sample(2, 3).witness_script();
        assert_eq!(script.len(), 199, "the length the module documents");
        let mut other = script.to_bytes();
        let last = other.len() - 1;
        other[last] = 0xad; // OP_CHECKSIGVERIFY instead of OP_CHECKSIG
        assert_eq!(NotaryScript::parse(Script::from_bytes(&other)), None);
        let hashlock = crate::script::HashlockScript {
            reservation: [9; 32],
            hash: [3; 32],
            beneficiary: [1; 20],
            owner: [2; 20],
            expiry_s: 1_800_000_000,
        };
        assert_eq!(NotaryScript::parse(&hashlock.witness_script()), None);
        assert_eq!(crate::script::HashlockScript::parse(&script), None);
        assert_eq!(NotaryScript::parse(Script::from_bytes(&[0x51])), None);
    }

    fn terms(notaries: &[NotaryKey], threshold: u8) -> DealTerms {
        use interlock_core::{Address, Asset, AssetCode, Leg, NetworkId, Policy};
        let leg = |owner: u8, beneficiary: u8| Leg {
            network: NetworkId(3),
            asset: Asset::Fungible { code: AssetCode::new("LTC").expect("a code"), amount: 50_000 },
            owner: Address::new(&[owner; 20]).expect("an address"),
            beneficiary: Address::new(&[beneficiary; 20]).expect("an address"),
            keeper: None,
        };
        DealTerms {
            buyer: interlock_core::PartyKey::from_seed([1; 32]).public(),
            seller: interlock_core::PartyKey::from_seed([2; 32]).public(),
            payment: leg(0xb1, 0x51),
            delivery: leg(0x51, 0xb1),
            settlement: Settlement::Notary {
                notaries: notaries.iter().map(NotaryKey::address).collect(),
                threshold,
                decision_deadline_ms: 1_800_000_000_000,
                backstop_expiry_ms: 1_800_003_600_500,
            },
            policy: Policy::default(),
            observers: Vec::new(),
            dependents: Vec::new(),
            nonce: 7,
        }
    }

    #[test]
    fn a_deals_script_names_its_notaries_keys_in_the_deals_order() {
        let notaries = [notary(3), notary(1), notary(2)];
        let terms = terms(&notaries, 2);
        // Supplied in another order, with a key the deal does not name.
        let supplied: Vec<[u8; 33]> = [1, 9, 2, 3].map(|seed| notary_public_key(&notary(seed))).to_vec();
        let payment = NotaryScript::of(&terms, LegKind::Payment, &supplied).expect("a script");
        let in_deal_order: Vec<[u8; 33]> = notaries.iter().map(notary_public_key).collect();
        assert_eq!(payment.notaries(), in_deal_order.as_slice());
        assert_eq!((payment.threshold(), payment.backstop_s()), (2, 1_800_003_601));
        assert_eq!((payment.owner(), payment.beneficiary()), ([0xb1; 20], [0x51; 20]));
        assert_eq!(payment.reservation(), reservation_id(terms.id(), LegKind::Payment).0 .0);
        let delivery = NotaryScript::of(&terms, LegKind::Delivery, &supplied).expect("a script");
        assert_eq!((delivery.owner(), delivery.beneficiary()), ([0x51; 20], [0xb1; 20]));
        assert_ne!(payment.script_pubkey(), delivery.script_pubkey());

        let missing = NotaryScript::of(&terms, LegKind::Payment, &supplied[..3]).expect_err("notary 3 has no key");
        assert!(missing.message.contains(&notary(3).address().to_string()), "{}", missing.message);
        assert!(NotaryScript::of(&terms, LegKind::Payment, &[[5; 33]]).is_err(), "not a key");
        let mut hashlock = terms.clone();
        hashlock.settlement = Settlement::Hashlock {
            hash: interlock_core::Hash32([0; 32]),
            payment_expiry_ms: 1_800_000_000_000,
            delivery_expiry_ms: 1_800_000_000_000,
            margin_ms: 0,
        };
        assert!(NotaryScript::of(&hashlock, LegKind::Payment, &supplied).is_err());
    }

    #[test]
    fn thresholds_no_spend_could_meet_are_refused() {
        let keys: Vec<[u8; 33]> = (1..=3).map(|seed| notary_public_key(&notary(seed))).collect();
        let new = |keys: Vec<[u8; 33]>, threshold| {
            NotaryScript::new([9; 32], [1; 20], [2; 20], keys, threshold, 1_800_000_000)
        };
        assert!(new(keys.clone(), 0).is_err());
        assert!(new(keys.clone(), 4).is_err());
        assert!(new(Vec::new(), 1).is_err());
        assert!(new(vec![keys[0]; 17], 1).is_err());
        let twice = new(vec![keys[0], keys[1], keys[0]], 2).expect_err("a key named twice");
        assert!(twice.message.contains("named twice"), "{}", twice.message);
        assert!(new(keys.clone(), 3).is_ok());
        assert!(NotaryScript::new([9; 32], [1; 20], [2; 20], keys, 2, 700_000).is_err(), "a block height");
    }

    #[test]
    fn each_path_reads_from_its_witness_and_malformed_ones_do_not() {
        let leg = sample(2, 3);
        let notary_signatures = vec![vec![0x30; 71], vec![0x30; 72]];
        let execute = leg.notary_witness(Decision::Commit, &[0x30; 71], &[2; 33], &notary_signatures);
        let spend = |path| Some((leg.clone(), NotarySpend { path, key: [2; 33] }));
        assert_eq!(read_notary_spend(&items(&execute)), spend(NotaryPath::Execute));
        let cancel = leg.notary_witness(Decision::Abort, &[0x30; 71], &[2; 33], &notary_signatures);
        assert_eq!(read_notary_spend(&items(&cancel)), spend(NotaryPath::Cancel));
        let refund = leg.refund_witness(&[0x30; 71], &[2; 33]);
        assert_eq!(read_notary_spend(&items(&refund)), spend(NotaryPath::Refund));

        let short = leg.notary_witness(Decision::Commit, &[0x30; 71], &[2; 33], &notary_signatures[..1]);
        assert_eq!(read_notary_spend(&items(&short)), None, "k - 1 notary signatures");
        let mut selector = items(&execute);
        selector[2] = vec![2];
        assert_eq!(read_notary_spend(&selector), None, "a selector that is neither 1 nor empty");
        let mut dummy = items(&execute);
        dummy[3] = vec![0];
        assert_eq!(read_notary_spend(&dummy), None, "a dummy that is not empty");
        let hashlock_refund = crate::script::HashlockScript {
            reservation: [9; 32],
            hash: [3; 32],
            beneficiary: [1; 20],
            owner: [2; 20],
            expiry_s: 1_800_000_000,
        }
        .refund_witness(&[0x30; 71], &[2; 33]);
        assert_eq!(read_notary_spend(&items(&hashlock_refund)), None);
    }
}
