//! The platforms this build of Interlock knows. A new kind of chain is a crate
//! that implements the seam (`interlock_chain`) and passes its conformance
//! suite, plus one line here.

// Integers from peers, chains and files are converted with `try_from` and
// checked arithmetic; a cast that could truncate, wrap or drop a sign is a
// build error (an `allow` on the smallest item says why a cast is safe).
#![deny(clippy::cast_possible_truncation, clippy::cast_possible_wrap, clippy::cast_sign_loss)]

use interlock_chain::Platforms;
use std::sync::Arc;

/// Every platform, by name.
pub fn all() -> Platforms {
    use interlock_litecoin::{Chain, LitecoinPlatform};
    Platforms::new()
        .with(Arc::new(interlock_ledger_node::LedgerPlatform))
        .with(Arc::new(interlock_evm::EvmPlatform))
        .with(Arc::new(LitecoinPlatform::new(Chain::Main)))
        .with(Arc::new(LitecoinPlatform::new(Chain::Test)))
        .with(Arc::new(LitecoinPlatform::new(Chain::Regtest)))
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_platform_is_registered_once_under_its_name() {
        let platforms = super::all();
        let names = vec!["ledger", "evm", "litecoin", "litecoin-test", "litecoin-regtest"];
        assert_eq!(platforms.names(), names);
        let unknown = platforms.get("solana").err().expect("an unknown platform is refused");
        assert!(unknown.message.contains(&names.join(", ")), "{}", unknown.message);
    }
}
