//! Reorganisations of the deep-chain network: its newest blocks are replaced
//! by others, and the transactions they held go back to the mempool, to be
//! mined again later (when they still apply) in the order they were sent.
//!
//! A seed draws only reorganisations shallower than the network's
//! confirmation depth: parties and notaries act only on confirmed blocks, so
//! such a reorganisation must never change what any of them did, and every
//! invariant must hold across it. (A deeper one would reverse blocks a party
//! already acted on: the roles survive it by the follower's `RolledBack`,
//! which the simulated participants do not model.)

use super::World;
use interlock_ledger::{Ledger, MemoryStore, Transaction};

/// One seed in this many per mille draws reorganisations (when its second
/// network has a confirmation depth above 1).
pub(super) const REORG_SEEDS_PER_MILLE: u64 = 500;
/// Most blocks one replay reads back, so a long run stays bounded.
const REPLAY_BLOCKS_MAX: u64 = 1_000_000;

impl World {
    /// Per step, with the seed's rate, drops a random number of the deep-chain
    /// network's newest blocks: fewer than its confirmation depth, and never
    /// a block that was ever confirmed (two shallow reorganisations in a row
    /// must not add up to a deep one: a confirmed block is final).
    pub(super) fn maybe_reorganise(&mut self) {
        let Some(deep) = self.deep_chain.as_mut() else { return };
        if deep.reorg_per_mille == 0 || deep.depth < 2 || !deep.rng.chance(deep.reorg_per_mille) {
            return;
        }
        let index = deep.index;
        let Some(ledger) = self.ledgers[index].ledger.as_ref() else { return };
        // `cursor` is the highest block ever confirmed: it never moves back.
        let unconfirmed = ledger.tip().height.saturating_sub(deep.cursor);
        let most = unconfirmed.min(deep.depth - 1);
        if most == 0 {
            return;
        }
        let blocks = deep.rng.range(1, most);
        deep.reorganisations += 1;
        self.reorganise(index, blocks);
    }

    /// Replaces the newest `blocks` blocks of ledger `index`: the chain is
    /// rebuilt from its genesis up to the block below them, and their
    /// transactions return to the mempool.
    pub(super) fn reorganise(&mut self, index: usize, blocks: u64) {
        let Some(ledger) = self.ledgers[index].ledger.take() else { return };
        let genesis = self.ledgers[index].genesis.clone();
        let keep = ledger.tip().height.saturating_sub(blocks);
        let (rebuilt, mut returned) = rebuild(&ledger, genesis, keep, index);
        self.note(|| format!("reorganise network {index}: {blocks} newest blocks dropped, back to {keep}"));
        self.checker.rolled_back(index, &rebuilt, &self.deals);
        let node = &mut self.ledgers[index];
        // The dropped transactions come first, as a node re-adds them on a reorganisation.
        returned.append(&mut node.inbox);
        node.inbox = returned;
        node.committed_digest = rebuilt.state().digest();
        node.ledger = Some(rebuilt);
    }
}

/// `ledger`'s chain up to block `keep`, replayed from `genesis` (each block
/// must come out the same), and the transactions of the blocks above it.
fn rebuild(
    ledger: &Ledger<MemoryStore>,
    genesis: interlock_ledger::Genesis,
    keep: u64,
    index: usize,
) -> (Ledger<MemoryStore>, Vec<Transaction>) {
    let tip = ledger.tip().height;
    assert!(tip <= REPLAY_BLOCKS_MAX, "a simulated chain stays short");
    let mut rebuilt = Ledger::open(MemoryStore::new(), genesis).expect("a new store opens");
    let mut returned = Vec::new();
    for height in 1..=tip {
        let block = ledger.block(height).expect("memory store reads").expect("every height up to the tip");
        if height > keep {
            returned.extend(block.transactions);
            continue;
        }
        let timestamp_ms = block.header.timestamp_ms;
        let empty = block.transactions.is_empty();
        for tx in block.transactions {
            rebuilt.submit(tx).expect("a committed transaction is admitted again");
        }
        let replayed = if empty {
            rebuilt.produce_heartbeat(timestamp_ms)
        } else {
            rebuilt.produce_block(timestamp_ms).map(|outcome| outcome.expect("transactions to seal"))
        };
        let header = replayed.expect("a replayed block seals").header;
        assert_eq!(header, block.header, "replaying block {height} of network {index} gives the same block");
    }
    (rebuilt, returned)
}
