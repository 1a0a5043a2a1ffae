//! A leg's escrow script, whichever the deal's mode: what the submitter, the
//! follower and the spend index find a leg by (its reservation id and output
//! script) and how they read what spent it.

use crate::notary::{read_notary_spend, NotaryPath, NotaryScript};
use crate::script::{read_spend, HashlockScript, Spend};
use bitcoin::ScriptBuf;
use interlock_chain::ChainError;
use interlock_core::crypto::Decision;
use interlock_core::{DealTerms, LegKind, Settlement};

/// The script one leg's output is locked to.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum LegScript {
    Hashlock(HashlockScript),
    Notary(NotaryScript),
}

impl LegScript {
    /// The script of `leg` of `terms`; a notary leg names its notaries by
    /// their compressed keys, taken from `notary_keys`.
    /// A deal with an inspection period has none: a script output cannot hold
    /// an executed leg (see `Capabilities::inspection`), and locking it as a
    /// plain notary leg would pay out at the commit, before the window.
    pub fn of(terms: &DealTerms, leg: LegKind, notary_keys: &[[u8; 33]]) -> Result<LegScript, ChainError> {
        if terms.policy.inspection.is_some() {
            return Err(ChainError::fatal(
                "a Litecoin leg cannot be held for an inspection period: propose the deal without one",
            ));
        }
        match terms.settlement {
            Settlement::Hashlock { .. } => Ok(LegScript::Hashlock(HashlockScript::of(terms, leg)?)),
            Settlement::Notary { .. } => Ok(LegScript::Notary(NotaryScript::of(terms, leg, notary_keys)?)),
        }
    }

    pub fn reservation(&self) -> [u8; 32] {
        match self {
            LegScript::Hashlock(script) => script.reservation,
            LegScript::Notary(script) => script.reservation(),
        }
    }

    pub fn script_pubkey(&self) -> ScriptBuf {
        match self {
            LegScript::Hashlock(script) => script.script_pubkey(),
            LegScript::Notary(script) => script.script_pubkey(),
        }
    }
}

/// What an input's witness items did to a leg, when it spends one.
pub fn read_leg_spend(items: &[Vec<u8>]) -> Option<(LegScript, Spend)> {
    if let Some((script, spend)) = read_spend(items) {
        return Some((LegScript::Hashlock(script), spend));
    }
    let (script, spend) = read_notary_spend(items)?;
    let key = spend.key;
    let spend = match spend.path {
        NotaryPath::Execute => Spend::Decided { decision: Decision::Commit, key },
        NotaryPath::Cancel => Spend::Decided { decision: Decision::Abort, key },
        NotaryPath::Refund => Spend::Refund { key },
    };
    Some((LegScript::Notary(script), spend))
}
