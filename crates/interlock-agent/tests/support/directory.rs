//! The directory the agent's tests run against, shared by the engine's unit
//! tests and the integration tests.

use interlock_core::crypto::PartyKey;
use interlock_core::{Address, NetworkId};
use interlock_identity::{Directory, GatewayEntry, NetworkEntry, PartyEntry};

pub const ALPHA: NetworkId = NetworkId(1);
pub const BETA: NetworkId = NetworkId(2);

/// Two embedded-ledger networks, alpha and beta, each with a gateway at an
/// address nobody answers at (a test serves its own or needs none), and the
/// parties buyer and seller, each with the same account on both.
pub fn two_networks(buyer: &PartyKey, seller: &PartyKey) -> Directory {
    let party = |name: &str, key: &PartyKey| {
        let account = Address::from_bytes(key.public().0);
        PartyEntry { name: name.into(), key: key.public(), accounts: [(ALPHA, account), (BETA, account)].into() }
    };
    let network =
        |id, name: &str| NetworkEntry { id, name: name.into(), platform: "ledger".into(), config: Default::default() };
    let gateway = |network, name: &str, seed| GatewayEntry {
        name: name.into(),
        network,
        endpoint: "127.0.0.1:1".into(),
        key: PartyKey::from_seed([seed; 32]).public(),
    };
    Directory {
        networks: vec![network(ALPHA, "alpha"), network(BETA, "beta")],
        gateways: vec![gateway(ALPHA, "alpha-gateway", 0xa1), gateway(BETA, "beta-gateway", 0xa2)],
        parties: vec![party("buyer", buyer), party("seller", seller)],
        ..Directory::default()
    }
}
