//! Where a follower stands on its chain.

use interlock_core::Hash32;
use serde::{Deserialize, Serialize};
use std::fmt;

/// The last block whose events a follower delivered: its height and its hash.
/// The caller persists it in the same transaction as what it derived from those
/// events; a follower made from it delivers the blocks after it, and notices,
/// through the hash, when that block is no longer on the chain.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Serialize, Deserialize)]
pub struct Cursor {
    pub height: u64,
    pub hash: Hash32,
}

impl Cursor {
    /// Before a chain's first block that matters (a deploy height minus one, or
    /// the genesis): nothing delivered yet, nothing to check.
    pub const fn start(height: u64) -> Cursor {
        Cursor { height, hash: Hash32([0; 32]) }
    }

    /// True for a cursor made by [`Cursor::start`]: no block hash to check.
    pub fn is_start(&self) -> bool {
        self.hash.0 == [0; 32]
    }
}

impl fmt::Display for Cursor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_start() {
            write!(f, "before block {}", self.height + 1)
        } else {
            write!(f, "block {} ({})", self.height, self.hash)
        }
    }
}
