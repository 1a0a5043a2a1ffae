//! What a node's free-text error means, where the adapter must act on it.
//!
//! JSON-RPC nodes and hosted providers refuse some requests with words only:
//! a log query over too many blocks, a nonce already used, a replacement
//! priced too low. [`classify`] is the one place the adapter reads such text;
//! everything else acts on the [`Refusal`] it returns or on typed errors.

/// A node's refusal the adapter knows what to do about.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Refusal {
    /// A log query spans too many blocks or matches too many logs: ask again
    /// over a smaller range.
    RangeTooLarge,
    /// The transaction's nonce is already used: the sender's nonce must be
    /// read from the node again (or one of its own transactions was mined).
    NonceTooLow,
    /// A transaction with this nonce is pending at fees the new one does not
    /// beat by enough.
    ReplacementUnderpriced,
    /// The node holds this very transaction already.
    AlreadyKnown,
    /// Anything else.
    Other,
}

/// The usual phrasings of a log query refused for its size: geth, Erigon,
/// Besu, Nethermind and the hosted providers (Infura, Alchemy, QuickNode,
/// Ankr, Chainstack, BSC nodes...), lowercase.
const RANGE_TOO_LARGE: &[&str] = &[
    "range too large",
    "range is too large",
    "range too wide",
    "range is too wide",
    "too many results",
    "returned more than",
    "maximum block range",
    "max block range",
    "block range limit",
    "block range exceeded",
    "exceeds max results",
    "exceeds limit of",
    "response size exceeded",
    "response size is larger",
    "is limited to a",
    "query timeout exceeded",
];
const NONCE_TOO_LOW: &[&str] = &["nonce too low", "nonce is too low", "invalid nonce", "oldnonce"];
const REPLACEMENT_UNDERPRICED: &[&str] =
    &["replacement transaction underpriced", "replacement fee too low", "underpriced replacement"];
const ALREADY_KNOWN: &[&str] = &["already known", "known transaction", "already imported", "already in mempool"];

/// What a node's or provider's error `message` says, by its usual phrasings
/// (case does not matter). The only text matching in the adapter: the words
/// come from third-party software that gives no error code for them.
pub fn classify(message: &str) -> Refusal {
    let message = message.to_lowercase();
    let says = |phrases: &[&str]| phrases.iter().any(|phrase| message.contains(phrase));
    if says(RANGE_TOO_LARGE) {
        Refusal::RangeTooLarge
    } else if says(NONCE_TOO_LOW) {
        Refusal::NonceTooLow
    } else if says(REPLACEMENT_UNDERPRICED) {
        Refusal::ReplacementUnderpriced
    } else if says(ALREADY_KNOWN) {
        Refusal::AlreadyKnown
    } else {
        Refusal::Other
    }
}

#[cfg(test)]
mod tests {
    use super::{classify, Refusal};

    fn check(message: &str, expected: Refusal) {
        assert_eq!(classify(message), expected, "{message}");
    }

    #[test]
    fn providers_phrasings_are_classified() {
        use Refusal::*;
        for (message, expected) in [
            (
                "server returned an error response: error code -32005: query returned more than 10000 results",
                RangeTooLarge,
            ),
            ("query returned more than 10000 results. Try with this block range [0x1, 0x2]", RangeTooLarge),
            ("block range is too large", RangeTooLarge),
            ("Block range too large", RangeTooLarge),
            ("exceed maximum block range: 5000", RangeTooLarge),
            ("eth_getLogs block range too large, range: 10001, max: 10000", RangeTooLarge),
            (
                "Log response size exceeded. You can make eth_getLogs requests with up to a 2K block range",
                RangeTooLarge,
            ),
            ("eth_getLogs is limited to a 10,000 range", RangeTooLarge),
            ("block range is too wide", RangeTooLarge),
            ("too many results, max 10000", RangeTooLarge),
            ("query exceeds max results 20000, retry with the range 1-2", RangeTooLarge),
            ("logs matched by query exceeds limit of 10000", RangeTooLarge),
            ("Block range limit exceeded", RangeTooLarge),
            ("nonce too low: next nonce 5, tx nonce 4", NonceTooLow),
            ("Nonce too low", NonceTooLow),
            ("replacement transaction underpriced", ReplacementUnderpriced),
            ("already known", AlreadyKnown),
            ("connection refused", Other),
            ("daily request count exceeded, request rate limited", Other),
            ("execution reverted", Other),
        ] {
            check(message, expected);
        }
    }
}
