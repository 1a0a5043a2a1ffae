//! Crashes and restarts: what a participant keeps on its disk survives, the
//! rest is lost; a restarted ledger must hold every block it committed.

use super::World;
use interlock_core::notary::NotaryDeal;
use interlock_core::saga::Saga;
use interlock_ledger::Ledger;

/// The fault rates one seed draws.
#[derive(Clone, Debug)]
pub struct Faults {
    pub loss_per_mille: u64,
    pub duplicate_per_mille: u64,
    pub delay_max_ms: u64,
    pub crash_per_mille: u64,
    pub skew_max_ms: u64,
    pub adversary: bool,
    pub absence: bool,
}

impl World {
    pub(super) fn inject_faults(&mut self) {
        let rate = self.faults.crash_per_mille;
        for index in 0..self.ledgers.len() {
            if self.ledgers[index].ledger.is_some() && self.rng.chance(rate) {
                let down_ms = self.rng.range(50, 1_500);
                self.crash_ledger(index, down_ms);
            }
        }
        for index in 0..self.notaries.len() {
            if self.notaries[index].online && self.rng.chance(rate) {
                let down_ms = self.rng.range(50, 1_500);
                self.crash_notary(index, down_ms);
            }
        }
        for index in 0..self.parties.len() {
            if self.parties[index].online && self.rng.chance(rate) {
                let down_ms = self.rng.range(50, 800);
                self.crash_party(index, down_ms);
            }
        }
        // A party absent across a deadline: down from shortly before the first
        // deadline of some deal to well after it.
        if self.faults.absence && self.rng.chance(3) {
            let index = usize::from(self.rng.chance(500));
            if self.parties[index].online {
                let down_ms = self.rng.range(2_000, 6_000);
                self.crash_party(index, down_ms);
            }
        }
    }

    pub(super) fn crash_ledger(&mut self, index: usize, down_ms: u64) {
        self.note(|| format!("crash ledger {index} for {down_ms} ms"));
        let node = &mut self.ledgers[index];
        let ledger = node.ledger.take().expect("online");
        node.committed_digest = ledger.state().digest();
        node.disk = Some(ledger.into_store());
        node.inbox.clear();
        node.pool.clear();
        node.down_until_ms = self.now_ms + down_ms;
    }

    pub(super) fn crash_notary(&mut self, index: usize, down_ms: u64) {
        self.note(|| format!("crash notary {index} for {down_ms} ms"));
        let node = &mut self.notaries[index];
        node.online = false;
        node.deals.clear();
        node.pending.clear();
        node.inbox.clear();
        node.inspections.deals.clear();
        node.inspections.inbox.clear();
        node.down_until_ms = self.now_ms + down_ms;
    }

    pub(super) fn crash_party(&mut self, index: usize, down_ms: u64) {
        self.note(|| format!("crash party {index} for {down_ms} ms"));
        let node = &mut self.parties[index];
        node.online = false;
        node.sagas.clear();
        node.inbox.clear();
        node.down_until_ms = self.now_ms + down_ms;
    }

    pub(super) fn restart_due(&mut self) {
        let now_ms = self.now_ms;
        let rules: Vec<_> = (0..self.ledgers.len()).map(|index| self.rules_of(index)).collect();
        for (node, rules) in self.ledgers.iter_mut().zip(rules) {
            if node.ledger.is_none() && now_ms >= node.down_until_ms {
                let store = node.disk.take().expect("a crashed ledger left its disk");
                let ledger = Ledger::open(store, node.genesis.clone()).expect("the store reopens").with_rules(rules);
                assert_eq!(
                    ledger.state().digest(),
                    node.committed_digest,
                    "durability: the ledger lost committed state on restart"
                );
                node.ledger = Some(ledger);
            }
        }
        for node in &mut self.notaries {
            if !node.online && now_ms >= node.down_until_ms {
                node.online = true;
                node.deals = node
                    .disk
                    .iter()
                    .map(|(id, (terms, decision))| (*id, NotaryDeal::restore(terms.clone(), *decision)))
                    .collect();
            }
        }
        for node in &mut self.parties {
            if !node.online && now_ms >= node.down_until_ms {
                node.online = true;
                node.sagas = node
                    .disk
                    .sagas
                    .iter()
                    .map(|(id, bytes)| (*id, (Saga::decode_record(bytes).expect("records decode"), Some(0))))
                    .collect();
            }
        }
    }
}
