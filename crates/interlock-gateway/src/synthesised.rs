//! The block stream a gateway serves for a network whose parties send to the
//! chain themselves: one entry per block the follower delivered, and a
//! rollback notice where the chain reorganised below what was delivered.
//!
//! Entries are numbered in the order they were added, and none is removed
//! but the oldest: a rollback notice follows the blocks it took away, and the
//! blocks that replace them follow it. A reader that asks for the blocks from
//! a height starts at the first block that high, or at an earlier rollback
//! notice below it (it may have read the blocks that notice took away).

use interlock_chain::Cursor;
use interlock_proto::v1;
use std::collections::VecDeque;

/// Synthesised entries kept for streams, at most (the oldest go first).
const ENTRIES_KEPT_MAX: usize = 100_000;

#[derive(Default)]
pub(crate) struct Synthesised {
    entries: VecDeque<v1::BlockEvents>,
    /// The number of the oldest entry kept.
    first: u64,
}

impl Synthesised {
    /// The number the next entry will have.
    pub(crate) fn next(&self) -> u64 {
        self.first + self.entries.len() as u64
    }

    pub(crate) fn push(&mut self, block: v1::BlockEvents) {
        self.entries.push_back(block);
        while self.entries.len() > ENTRIES_KEPT_MAX {
            self.entries.pop_front();
            self.first += 1;
        }
    }

    /// The chain went back to `to`: the blocks above it are gone, and the
    /// blocks that replace them come next.
    pub(crate) fn roll_back(&mut self, network: u64, to: Cursor) {
        self.push(rollback_notice(network, to));
    }

    /// Where a reader that read every block below `from_height` starts.
    pub(crate) fn start(&self, from_height: u64) -> u64 {
        let block = self.entries.iter().position(|entry| !entry.rolled_back && height(entry) >= from_height);
        let notice =
            self.entries.iter().rposition(|entry| entry.rolled_back && height(entry).saturating_add(1) < from_height);
        let index = match (block, notice) {
            (Some(block), Some(notice)) => block.min(notice),
            (block, notice) => block.or(notice).unwrap_or(self.entries.len()),
        };
        self.first + index as u64
    }

    /// The entries from number `from` on (from the oldest kept, when those
    /// before it are gone).
    pub(crate) fn from(&self, from: u64) -> Vec<v1::BlockEvents> {
        let skip = usize::try_from(from.saturating_sub(self.first)).unwrap_or(usize::MAX);
        self.entries.iter().skip(skip).cloned().collect()
    }
}

fn height(entry: &v1::BlockEvents) -> u64 {
    entry.header.as_ref().map_or(0, |header| header.height)
}

fn rollback_notice(network: u64, to: Cursor) -> v1::BlockEvents {
    v1::BlockEvents {
        header: Some(v1::BlockHeader { network, height: to.height, hash: to.hash.0.to_vec(), ..Default::default() }),
        events: Vec::new(),
        rolled_back: true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use interlock_core::Hash32;

    fn block(height: u64) -> v1::BlockEvents {
        v1::BlockEvents {
            header: Some(v1::BlockHeader { height, ..Default::default() }),
            events: Vec::new(),
            rolled_back: false,
        }
    }

    fn heights(entries: &[v1::BlockEvents]) -> Vec<(u64, bool)> {
        entries.iter().map(|entry| (height(entry), entry.rolled_back)).collect()
    }

    #[test]
    fn a_rollback_replaces_the_blocks_above_it_and_is_told_to_readers_that_went_past_it() {
        let mut stream = Synthesised::default();
        for h in 1..=6 {
            stream.push(block(h));
        }
        let reader = stream.start(1);
        stream.roll_back(7, Cursor { height: 3, hash: Hash32([3; 32]) });
        stream.push(block(4));
        stream.push(block(5));
        // A reader streaming all along reads the notice, then the new blocks.
        assert_eq!(heights(&stream.from(reader + 6)), vec![(3, true), (4, false), (5, false)]);
        // One that read up to 6 and comes back is told first.
        assert_eq!(heights(&stream.from(stream.start(7))), vec![(3, true), (4, false), (5, false)]);
        // One that is below the rollback reads on, and is told when it reaches it.
        assert_eq!(
            heights(&stream.from(stream.start(5))),
            vec![(5, false), (6, false), (3, true), (4, false), (5, false)]
        );
        // After a restart only the notice is left: it is told to readers above it.
        let mut restarted = Synthesised::default();
        restarted.roll_back(7, Cursor { height: 3, hash: Hash32([3; 32]) });
        assert_eq!(heights(&restarted.from(restarted.start(9))), vec![(3, true)]);
        assert_eq!(heights(&restarted.from(restarted.start(4))), Vec::<(u64, bool)>::new());
        assert_eq!(stream.next(), 9);
    }
}
