//! Notary certificates on platforms whose escrow is a script. Such an escrow
//! cannot check a decision certificate; it checks signatures over the very
//! transaction that spends the leg. So a party that holds the notaries'
//! decision (k votes) asks them for one more signature each: over the spend
//! that carries that decision out on its leg, which the platform computes
//! from the deal and from where the leg sits on the chain.
//!
//! A notary signs such a spend only for the decision it recorded, exactly as
//! it signs its vote only after recording it. What it signs commits to the
//! leg's script (and so to the deal, the leg and the notary set) and to where
//! the spend pays, so the signature can do nothing but carry out the decision
//! on that leg.

use crate::{BoxFuture, ChainError};
use interlock_core::crypto::{Decision, NotaryKey, RecoverableSignature};
use interlock_core::{DealId, DealTerms, LegKind};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

/// One leg's spend a party needs the notaries to sign.
#[derive(Clone, Debug)]
pub struct SpendToSign {
    pub terms: Arc<DealTerms>,
    pub leg: LegKind,
    pub decision: Decision,
    /// Where the leg sits on its chain, in the platform's own encoding (an
    /// outpoint and its value, say): what the spend spends.
    pub location: Vec<u8>,
}

/// What each notary signs for a [`SpendToSign`]: the platform's digest of
/// the spend, or why there is no such spend.
pub type SpendDigest = Arc<dyn Fn(&SpendToSign) -> Result<[u8; 32], ChainError> + Send + Sync>;

/// Where a party gets the notaries' signatures over a spend.
pub trait NotarySigner: Send + Sync {
    /// The signatures, over the spend's digest, of each of the deal's
    /// notaries that recorded `request.decision`: at most one per notary,
    /// possibly fewer than the deal's threshold (the caller checks).
    fn sign_spend<'a>(
        &'a self,
        request: &'a SpendToSign,
    ) -> BoxFuture<'a, Result<Vec<RecoverableSignature>, ChainError>>;
}

/// Notaries whose keys live in this process, with their recorded decisions:
/// the in-process runtime's, and tests'.
pub struct LocalNotaries {
    keys: Vec<NotaryKey>,
    recorded: Mutex<HashMap<(DealId, usize), Decision>>,
    digest: SpendDigest,
}

impl LocalNotaries {
    pub fn new(keys: Vec<NotaryKey>, digest: SpendDigest) -> LocalNotaries {
        LocalNotaries { keys, recorded: Mutex::new(HashMap::new()), digest }
    }

    /// Notary number `index` (of `keys`) recorded `decision` on `deal_id`.
    pub fn record(&self, deal_id: DealId, index: usize, decision: Decision) {
        self.recorded.lock().unwrap_or_else(PoisonError::into_inner).insert((deal_id, index), decision);
    }
}

impl NotarySigner for LocalNotaries {
    fn sign_spend<'a>(
        &'a self,
        request: &'a SpendToSign,
    ) -> BoxFuture<'a, Result<Vec<RecoverableSignature>, ChainError>> {
        Box::pin(async move {
            let digest = (self.digest)(request)?;
            let deal_id = request.terms.id();
            let recorded = self.recorded.lock().unwrap_or_else(PoisonError::into_inner);
            Ok(self
                .keys
                .iter()
                .enumerate()
                .filter(|(index, _)| recorded.get(&(deal_id, *index)) == Some(&request.decision))
                .map(|(_, key)| key.sign_digest(&digest))
                .collect())
        })
    }
}
