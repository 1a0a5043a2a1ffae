//! `eth_getLogs` over bounded block ranges that shrink when the node refuses
//! them as too large and grow back after it answers.
//!
//! Hosted providers cap a log query by its block range or by the logs it
//! matches, each with its own limit and words ([`crate::provider_error`]). A
//! [`LogSpan`] starts at [`LOG_BLOCKS_MAX`] blocks, halves on every such
//! refusal down to one block, and grows by a quarter after every answer, so
//! a follower settles just under whatever limit its provider has.

use crate::error::EvmError;
use crate::provider_error::{classify, Refusal};
use alloy::providers::{DynProvider, Provider};
use alloy::rpc::types::{Filter, Log};

/// Blocks one log query spans, at most.
pub const LOG_BLOCKS_MAX: u64 = 2_000;
/// Queries one range takes, at most: enough to halve from the widest span to
/// a single block, and one more.
const LOG_QUERY_ATTEMPTS_MAX: u32 = LOG_BLOCKS_MAX.ilog2() + 2;

/// How many blocks the next log query spans.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct LogSpan {
    blocks: u64,
}

impl Default for LogSpan {
    fn default() -> LogSpan {
        LogSpan { blocks: LOG_BLOCKS_MAX }
    }
}

impl LogSpan {
    pub fn blocks(self) -> u64 {
        self.blocks
    }

    /// The last block of a query from `from`, ending at `to_max` at the latest.
    fn end(self, from: u64, to_max: u64) -> u64 {
        to_max.min(from.saturating_add(self.blocks - 1))
    }

    /// After a refusal of `tried` blocks: half of them, at least one.
    fn halve(&mut self, tried: u64) {
        self.blocks = (tried / 2).max(1);
    }

    /// After an answer: a quarter more (at least one block), up to the cap.
    fn grow(&mut self) {
        self.blocks = (self.blocks + self.blocks / 4 + 1).min(LOG_BLOCKS_MAX);
    }
}

/// The logs `filter` matches from block `from` on, over as many blocks as
/// `span` allows and `to_max` at most; returns them with the last block
/// read. A range the node refuses as too large is asked again, halved.
pub async fn logs_from(
    provider: &DynProvider,
    filter: &Filter,
    from: u64,
    to_max: u64,
    span: &mut LogSpan,
) -> Result<(Vec<Log>, u64), EvmError> {
    assert!(from <= to_max, "a log query from block {from} to {to_max}");
    let mut refusal = None;
    for _ in 0..LOG_QUERY_ATTEMPTS_MAX {
        let to = span.end(from, to_max);
        let query = filter.clone().from_block(from).to_block(to);
        match provider.get_logs(&query).await {
            Ok(logs) => {
                span.grow();
                return Ok((logs, to));
            }
            Err(error) if to > from && classify(&error.to_string()) == Refusal::RangeTooLarge => {
                span.halve(to - from + 1);
                refusal = Some(error);
            }
            Err(error) => return Err(EvmError::Rpc(error.to_string())),
        }
    }
    let error = refusal.map_or_else(String::new, |error| error.to_string());
    Err(EvmError::Rpc(format!("logs of blocks {from} to {to_max}: refused at every range down to one block: {error}")))
}

#[cfg(test)]
mod tests {
    use super::{LogSpan, LOG_BLOCKS_MAX};

    #[test]
    fn a_span_halves_to_one_block_and_grows_back_to_the_cap() {
        let mut span = LogSpan::default();
        assert_eq!(span.end(10, u64::MAX), 10 + LOG_BLOCKS_MAX - 1);
        assert_eq!(span.end(10, 20), 20, "never past the last confirmed block");
        let mut halvings = 0;
        while span.blocks() > 1 {
            span.halve(span.blocks());
            halvings += 1;
        }
        assert_eq!(halvings, LOG_BLOCKS_MAX.ilog2(), "halves down to one block");
        span.halve(1);
        assert_eq!(span.blocks(), 1, "never below one block");
        let mut answers = 0;
        while span.blocks() < LOG_BLOCKS_MAX {
            span.grow();
            answers += 1;
        }
        assert!((20..40).contains(&answers), "grows back gradually: {answers} answers");
        span.grow();
        assert_eq!(span.blocks(), LOG_BLOCKS_MAX);
    }
}
