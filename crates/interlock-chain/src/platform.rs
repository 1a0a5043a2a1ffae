//! What a kind of chain is, and the registry of the kinds a binary knows.

use crate::{BoxFuture, ChainError, Cursor, Follower, NotarySigner, SpendDigest, Submitter};
use interlock_core::crypto::PartyKey;
use interlock_core::{Address, Asset, DealTerms, LegKind, NetworkId, NetworkTiming, PartyId, Settlement};
use std::path::PathBuf;
use std::sync::Arc;

/// The settlement modes and asset kinds a platform's escrow can hold.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Capabilities {
    pub hashlock: bool,
    pub notary: bool,
    pub fungible: bool,
    pub unique: bool,
    /// Parties send their transactions through the network's gateway, which
    /// relays them to the network's node; otherwise each party signs and sends
    /// to the chain itself.
    pub relayed: bool,
    /// After a leg's expiry anyone may cancel it (the asset still goes back to
    /// its owner), so a keeper can tidy up for an absent owner; otherwise only
    /// the owner's key takes a lapsed leg back (a script platform, whose
    /// escrow cannot say where an unsigned spend pays).
    pub open_cancel: bool,
    /// Executed legs can be held for an inspection period and then released
    /// or reversed on the notaries' verdict (see `interlock_core::inspection`).
    pub inspection: bool,
}

impl Capabilities {
    /// Everything: each mode and asset kind, relayed, open cancel, inspection.
    /// A platform names what it lacks against it.
    pub const ALL: Capabilities = Capabilities {
        hashlock: true,
        notary: true,
        fungible: true,
        unique: true,
        relayed: true,
        open_cancel: true,
        inspection: true,
    };

    /// Why the legs of `terms` on `network` cannot live on this platform, if
    /// they cannot: a settlement mode, an asset kind or an inspection period
    /// its escrow cannot hold.
    pub fn refusal(&self, platform: &str, terms: &DealTerms, network: NetworkId) -> Option<String> {
        let legs = [(LegKind::Payment, &terms.payment), (LegKind::Delivery, &terms.delivery)];
        for (kind, leg) in legs.into_iter().filter(|(_, leg)| leg.network == network) {
            let (mode, mode_ok) = match terms.settlement {
                Settlement::Hashlock { .. } => ("hashlock", self.hashlock),
                Settlement::Notary { .. } => ("notary", self.notary),
            };
            if !mode_ok {
                return Some(format!(
                    "the {kind} leg is on {platform} network {network}, which cannot settle in {mode} mode"
                ));
            }
            let (asset_kind, kind_ok) = match leg.asset {
                Asset::Fungible { .. } => ("fungible amounts", self.fungible),
                Asset::Unique { .. } => ("unique items", self.unique),
            };
            if !kind_ok {
                return Some(format!(
                    "the {kind} leg is on {platform} network {network}, which cannot hold {asset_kind}"
                ));
            }
            if terms.policy.inspection.is_some() && !self.inspection {
                return Some(format!(
                    "the {kind} leg is on {platform} network {network}, which cannot hold an executed leg for an inspection period: propose the deal without one"
                ));
            }
        }
        None
    }
}

/// What a role holds that a platform may need to reach its node and sign there.
#[derive(Clone, Default)]
pub struct Credentials {
    /// The role's ed25519 key (a party's, or a gateway's for its keeper).
    pub party_key: Option<PartyKey>,
    /// A key file for the chain's own signature scheme (an account's
    /// secp256k1 key, say), readable only by its owner.
    pub chain_key_file: Option<PathBuf>,
    /// The role's certificate directory and its name there, for platforms whose
    /// nodes speak mutual TLS with the deployment's CA.
    pub tls_dir: Option<PathBuf>,
    pub name: Option<String>,
    /// Where a party's spends get the notaries' signatures, on platforms whose
    /// escrow takes them over the spend ([`Platform::spend_digest`]).
    pub notary_signer: Option<Arc<dyn NotarySigner>>,
}

/// One kind of chain.
pub trait Platform: Send + Sync {
    /// Its name in configuration files and the directory, such as `ledger`.
    fn name(&self) -> &'static str;
    fn capabilities(&self) -> Capabilities;
    /// An account in this platform's text form, as a person writes it.
    fn parse_address(&self, text: &str) -> Result<Address, ChainError>;
    /// The text form of an account of this platform.
    fn format_address(&self, address: &Address) -> String;
    /// What a notary signs, besides its vote, so that k signatures settle a
    /// leg on a network of this platform. `None` (the default): the escrow
    /// checks the decision certificate itself (k votes over the decision
    /// digest, [`decision_digest`](interlock_core::crypto::decision_digest)),
    /// so the votes are all it takes. A script platform instead gives the
    /// digest of the spend that carries a decision out on a leg
    /// ([`SpendToSign`](crate::SpendToSign)), which each notary signs for the
    /// decision it recorded ([`NotarySigner`](crate::NotarySigner)).
    fn spend_digest(&self, network: NetworkId, config: &serde_json::Value) -> Result<Option<SpendDigest>, ChainError> {
        self.check_config(network, config)?;
        Ok(None)
    }
    /// The account a network's gateway keeps deals with (cancels what expired,
    /// executes revealed hashlocks for absent beneficiaries), given the
    /// gateway's ed25519 key; `None` when the network names no keeper.
    fn keeper_account(
        &self,
        network: NetworkId,
        config: &serde_json::Value,
        gateway_key: PartyId,
    ) -> Result<Option<Address>, ChainError>;
    /// How fast the network's chain moves (block interval, confirmation
    /// depth, clock lag), read from its configuration: what a deal's
    /// deadlines must leave room for ([`DealTerms::check_timing`](interlock_core::DealTerms::check_timing)).
    fn timing(&self, network: NetworkId, config: &serde_json::Value) -> Result<NetworkTiming, ChainError>;
    /// Checks a network's platform-specific configuration (the directory entry's
    /// opaque part) without reaching the chain; the error says what is wrong.
    fn check_config(&self, network: NetworkId, config: &serde_json::Value) -> Result<(), ChainError>;
    /// A submitter for the network `config` describes, signing with `credentials`.
    fn submitter<'a>(
        &'a self,
        network: NetworkId,
        config: &'a serde_json::Value,
        credentials: &'a Credentials,
    ) -> BoxFuture<'a, Result<Arc<dyn Submitter>, ChainError>>;
    /// Where a follower of a network that was never followed starts: before
    /// the first block that can hold the escrow's events (the contract's
    /// deploy block, for a chain that holds more than Interlock), so a first
    /// start never reads the chain from its genesis. A restart resumes from
    /// the cursor its caller saved instead.
    fn first_cursor(&self, network: NetworkId, config: &serde_json::Value) -> Result<Cursor, ChainError> {
        self.check_config(network, config)?;
        Ok(Cursor::start(0))
    }
    /// Checks a network's configuration against its live node: that the node
    /// answers, is the chain the configuration names, and holds the escrow
    /// where it says. Each check reports whether it passed and what it found;
    /// by default a platform has no live checks.
    fn check_live<'a>(&'a self, network: NetworkId, config: &'a serde_json::Value) -> BoxFuture<'a, Vec<LiveCheck>> {
        let _ = (network, config);
        Box::pin(async { Vec::new() })
    }
    /// A follower of the network `config` describes, from `from`.
    fn follower<'a>(
        &'a self,
        network: NetworkId,
        config: &'a serde_json::Value,
        credentials: &'a Credentials,
        from: Cursor,
    ) -> BoxFuture<'a, Result<Box<dyn Follower>, ChainError>>;
}

/// One check of a network's configuration against its live node.
#[derive(Clone, PartialEq, Eq, Debug, serde::Serialize)]
pub struct LiveCheck {
    /// What was checked (`chain id`, `escrow code`, …).
    pub check: String,
    pub passed: bool,
    /// What was found, or what is wrong and what was expected.
    pub detail: String,
}

impl LiveCheck {
    pub fn passed(check: &str, detail: impl Into<String>) -> LiveCheck {
        LiveCheck { check: check.to_owned(), passed: true, detail: detail.into() }
    }

    pub fn failed(check: &str, detail: impl Into<String>) -> LiveCheck {
        LiveCheck { check: check.to_owned(), passed: false, detail: detail.into() }
    }
}

/// The platforms one binary knows, by name. The binary fills it once, in one
/// place; everything else looks platforms up here.
#[derive(Clone, Default)]
pub struct Platforms {
    known: Vec<Arc<dyn Platform>>,
}

impl Platforms {
    pub fn new() -> Platforms {
        Platforms::default()
    }

    /// Adds `platform`. Two platforms with one name are a programming error.
    pub fn with(mut self, platform: Arc<dyn Platform>) -> Platforms {
        assert!(self.find(platform.name()).is_none(), "platform {} registered twice", platform.name());
        self.known.push(platform);
        self
    }

    fn find(&self, name: &str) -> Option<&Arc<dyn Platform>> {
        self.known.iter().find(|platform| platform.name() == name)
    }

    /// The platform called `name`, or an error listing the known ones.
    pub fn get(&self, name: &str) -> Result<&Arc<dyn Platform>, ChainError> {
        self.find(name).ok_or_else(|| {
            ChainError::fatal(format!(
                "unknown platform {:?}: this binary knows {}",
                name.chars().take(40).collect::<String>(),
                self.names().join(", ")
            ))
        })
    }

    pub fn names(&self) -> Vec<&'static str> {
        self.known.iter().map(|platform| platform.name()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::Capabilities;
    use interlock_core::crypto::{NotaryKey, PartyKey};
    use interlock_core::{Asset, AssetCode, DealTerms, Disputer, Inspection, ItemId, NetworkId, Settlement};

    /// A script platform's capabilities: fungible legs in either mode, no items, no held legs.
    const SCRIPT: Capabilities = Capabilities {
        hashlock: true,
        notary: true,
        fungible: true,
        unique: false,
        relayed: false,
        open_cancel: false,
        inspection: false,
    };

    fn terms(delivery: Asset, inspection: Option<Inspection>) -> DealTerms {
        let settlement = Settlement::Notary {
            notaries: vec![NotaryKey::from_seed([7; 32]).unwrap().address()],
            threshold: 1,
            decision_deadline_ms: 5_000,
            backstop_expiry_ms: 20_000,
        };
        let usd = Asset::Fungible { code: AssetCode::new("USD").unwrap(), amount: 5 };
        let (buyer, seller) = (PartyKey::from_seed([1; 32]).public(), PartyKey::from_seed([2; 32]).public());
        let mut terms = DealTerms::swap(buyer, seller, (NetworkId(1), usd), (NetworkId(2), delivery), settlement);
        terms.policy.inspection = inspection;
        terms
    }

    #[test]
    fn a_platform_refuses_only_the_legs_on_its_network_that_it_cannot_hold() {
        let deed = Asset::Unique { class: AssetCode::new("DEED").unwrap(), item: ItemId::from_u128(1) };
        let gold = Asset::Fungible { code: AssetCode::new("GOLD").unwrap(), amount: 3 };
        let item = terms(deed, None);
        let refusal = SCRIPT.refusal("litecoin", &item, NetworkId(2)).expect("no items on a script chain");
        assert!(
            refusal.contains("delivery leg is on litecoin network") && refusal.contains("unique items"),
            "{refusal}"
        );
        assert_eq!(SCRIPT.refusal("litecoin", &item, NetworkId(1)), None, "the payment leg there is fungible");
        let window = Some(Inspection { window_ms: 60_000, disputer: Disputer::Buyer });
        let held = terms(gold.clone(), window);
        let refusal = SCRIPT.refusal("litecoin", &held, NetworkId(1)).expect("no held legs on a script chain");
        assert!(refusal.contains("inspection period"), "{refusal}");
        let accounts = Capabilities { unique: true, inspection: true, ..SCRIPT };
        assert_eq!(accounts.refusal("ledger", &held, NetworkId(1)), None);
        assert_eq!(SCRIPT.refusal("litecoin", &terms(gold, None), NetworkId(1)), None);
    }
}
