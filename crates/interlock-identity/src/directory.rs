//! The directory: who is who in one Interlock deployment, signed by the CA so that
//! every service can trust the copy it was handed.

use crate::ca::{is_valid_host, CertificateAuthority};
use crate::certificate::{ca_public_key, PeerIdentity};
use crate::error::{IdentityError, Result};
use crate::files::{self, PUBLIC_FILE_MODE};
use crate::hex;
use crate::role::{validate_name, Role};
use crate::routes::GatewayLink;
use crate::{DIRECTORY_ENTRIES_MAX, DIRECTORY_FILE_LEN_MAX, ENDPOINT_LEN_MAX};
use interlock_core::{Address, NetworkId, NotaryAddress, PartyId};
use rustls_pki_types::CertificateDer;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::io::Read as _;
use std::path::Path;
use time::OffsetDateTime;

/// Prefixed to the directory's JSON before signing. The CA key also signs
/// certificates; the prefix keeps a directory signature from ever being mistaken
/// for anything else the key signed.
const SIGNING_CONTEXT: &[u8] = b"interlock/directory/v1\0";

/// Longest platform name a network entry may give.
pub const PLATFORM_NAME_LEN_MAX: usize = 32;
/// Largest platform configuration a network entry may carry, as compact JSON.
pub const NETWORK_CONFIG_LEN_MAX: usize = 16 * 1024;
/// The largest network id: every service stores ids as SQLite integers
/// (signed 64-bit), and a larger one would be stored as another network's.
pub const NETWORK_ID_MAX: u64 = i64::MAX.unsigned_abs();

/// Every network, service and party of a deployment.
#[derive(Clone, PartialEq, Eq, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Directory {
    pub networks: Vec<NetworkEntry>,
    pub gateways: Vec<GatewayEntry>,
    pub ledgers: Vec<LedgerEntry>,
    pub parties: Vec<PartyEntry>,
    pub notaries: Vec<NotaryEntry>,
    pub observers: Vec<ObserverEntry>,
    /// Absent from directories written before dependents existed; left out
    /// when empty so those directories' signatures still verify.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dependents: Vec<DependentEntry>,
    /// Which gateways may call which ([`crate::routes`]). Absent: every
    /// gateway may call every other, and the directory signs as it did
    /// before links existed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub links: Option<Vec<GatewayLink>>,
}

#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NetworkEntry {
    pub id: NetworkId,
    pub name: String,
    /// The platform the network runs on (such as `ledger`): a name the
    /// binary's platform registry knows.
    pub platform: String,
    /// The platform's own settings for this network (its node, contract,
    /// confirmation depth, asset bindings …), opaque to the directory: only
    /// the platform reads them ([`Directory::check_platforms`]).
    #[serde(default, skip_serializing_if = "serde_json::Value::is_null")]
    pub config: serde_json::Value,
}

impl NetworkEntry {
    /// The platform the entry names, from `platforms`.
    pub fn platform_in<'a>(
        &self,
        platforms: &'a interlock_chain::Platforms,
    ) -> Result<&'a std::sync::Arc<dyn interlock_chain::Platform>> {
        platforms.get(&self.platform).or_else(|error| invalid(format!("network {:?}: {}", self.name, error.message)))
    }
}

#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GatewayEntry {
    pub name: String,
    pub network: NetworkId,
    /// `host:port`.
    pub endpoint: String,
    /// The gateway's ed25519 public key, 64 hex digits: it signs the gateway's
    /// lock assertions, and it is the keeper's account on the gateway's network.
    #[serde(with = "hex::party_id")]
    pub key: PartyId,
}

#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LedgerEntry {
    pub name: String,
    pub network: NetworkId,
    /// `host:port`.
    pub endpoint: String,
}

#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PartyEntry {
    pub name: String,
    /// The party's ed25519 public key, 64 hex digits: what its deal signatures verify against.
    #[serde(with = "hex::party_id")]
    pub key: PartyId,
    /// The party's account on each network it trades on.
    #[serde(with = "hex::accounts")]
    pub accounts: BTreeMap<NetworkId, Address>,
}

impl PartyEntry {
    pub fn account(&self, network: NetworkId) -> Option<Address> {
        self.accounts.get(&network).copied()
    }
}

#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NotaryEntry {
    pub name: String,
    /// `host:port`.
    pub endpoint: String,
    /// The notary's secp256k1 signing address, `0x` and 40 hex digits.
    #[serde(with = "hex::notary_address")]
    pub address: NotaryAddress,
}

#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ObserverEntry {
    pub name: String,
    /// `host:port`.
    pub endpoint: String,
    /// The observer's ed25519 public key, 64 hex digits: deals name observers by
    /// it, and it signs every record of the observer's log.
    #[serde(with = "hex::party_id")]
    pub key: PartyId,
}

/// An actor that deals may name as a dependent (`DealTerms::dependents` holds
/// its key); it subscribes to their events at the gateways.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DependentEntry {
    pub name: String,
    /// The dependent's ed25519 public key, 64 hex digits: what deal terms name.
    #[serde(with = "hex::party_id")]
    pub key: PartyId,
}

/// A directory entry found by role and name.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Member<'a> {
    Party(&'a PartyEntry),
    Gateway(&'a GatewayEntry),
    Ledger(&'a LedgerEntry),
    Notary(&'a NotaryEntry),
    Observer(&'a ObserverEntry),
    Dependent(&'a DependentEntry),
}

impl Directory {
    /// The entry a certificate of `role` named `name` stands for. A party agent acts
    /// for the party of the same name, so [`Role::Agent`] looks among the parties.
    pub fn member(&self, role: Role, name: &str) -> Option<Member<'_>> {
        match role {
            Role::Party | Role::Agent => self.party(name).map(Member::Party),
            Role::Gateway => self.gateways.iter().find(|entry| entry.name == name).map(Member::Gateway),
            Role::Ledger => self.ledgers.iter().find(|entry| entry.name == name).map(Member::Ledger),
            Role::Notary => self.notaries.iter().find(|entry| entry.name == name).map(Member::Notary),
            Role::Observer => self.observers.iter().find(|entry| entry.name == name).map(Member::Observer),
            Role::Dependent => self.dependent(name).map(Member::Dependent),
        }
    }

    pub fn observer(&self, name: &str) -> Option<&ObserverEntry> {
        self.observers.iter().find(|entry| entry.name == name)
    }

    pub fn dependent(&self, name: &str) -> Option<&DependentEntry> {
        self.dependents.iter().find(|entry| entry.name == name)
    }

    pub fn party(&self, name: &str) -> Option<&PartyEntry> {
        self.parties.iter().find(|entry| entry.name == name)
    }

    pub fn network(&self, id: NetworkId) -> Option<&NetworkEntry> {
        self.networks.iter().find(|entry| entry.id == id)
    }

    pub fn gateway_for(&self, network: NetworkId) -> Option<&GatewayEntry> {
        self.gateways.iter().find(|entry| entry.network == network)
    }

    /// Checks everything the types cannot: names and endpoints well formed, names
    /// unique within each list, every network reference resolves, one gateway per
    /// network, party keys are ed25519 points, accounts fit their network's kind.
    pub fn validate(&self) -> Result<()> {
        self.check_sizes()?;
        self.check_networks()?;
        self.check_services()?;
        self.check_links()?;
        self.check_parties()?;
        unique_names("notary", self.notaries.iter().map(|entry| entry.name.as_str()))?;
        unique_names("observer", self.observers.iter().map(|entry| entry.name.as_str()))?;
        unique_names("dependent", self.dependents.iter().map(|entry| entry.name.as_str()))?;
        for entry in &self.dependents {
            check_key("dependent", &entry.name, entry.key)?;
        }
        for entry in &self.notaries {
            check_endpoint("notary", &entry.name, &entry.endpoint)?;
        }
        for entry in &self.observers {
            check_endpoint("observer", &entry.name, &entry.endpoint)?;
        }
        Ok(())
    }

    fn check_sizes(&self) -> Result<()> {
        let lengths = [
            ("networks", self.networks.len()),
            ("gateways", self.gateways.len()),
            ("ledgers", self.ledgers.len()),
            ("parties", self.parties.len()),
            ("notaries", self.notaries.len()),
            ("observers", self.observers.len()),
            ("dependents", self.dependents.len()),
            ("links", self.links.as_ref().map_or(0, Vec::len)),
        ];
        match lengths.into_iter().find(|(_, length)| *length > DIRECTORY_ENTRIES_MAX) {
            Some((list, length)) => {
                invalid(format!("{length} {list}: expected at most {DIRECTORY_ENTRIES_MAX} entries in each list"))
            }
            None => Ok(()),
        }
    }

    fn check_networks(&self) -> Result<()> {
        unique_names("network", self.networks.iter().map(|entry| entry.name.as_str()))?;
        let mut ids = BTreeSet::new();
        if let Some(entry) = self.networks.iter().find(|entry| !ids.insert(entry.id)) {
            return invalid(format!("network id {} is listed twice: expected unique ids", entry.id.0));
        }
        for entry in &self.networks {
            let name = &entry.name;
            if entry.id.0 > NETWORK_ID_MAX {
                return invalid(format!(
                    "network {name:?} id {} is out of range: expected 0 to {NETWORK_ID_MAX}",
                    entry.id.0
                ));
            }
            let platform_ok = !entry.platform.is_empty()
                && entry.platform.len() <= PLATFORM_NAME_LEN_MAX
                && entry.platform.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
            if !platform_ok {
                return invalid(format!(
                    "network {name:?} platform {:?}: expected 1 to {PLATFORM_NAME_LEN_MAX} lowercase letters, digits or dashes",
                    entry.platform.chars().take(40).collect::<String>()
                ));
            }
            let config_len = entry.config.to_string().len();
            if config_len > NETWORK_CONFIG_LEN_MAX {
                return invalid(format!(
                    "network {name:?} config is {config_len} bytes of JSON: expected at most {NETWORK_CONFIG_LEN_MAX}"
                ));
            }
        }
        Ok(())
    }

    /// Checks what only the platforms can: every network's platform is one of
    /// `platforms`, its configuration is valid for it, and every party's
    /// account there is an account of that platform.
    pub fn check_platforms(&self, platforms: &interlock_chain::Platforms) -> Result<()> {
        for entry in &self.networks {
            let platform = entry.platform_in(platforms)?;
            if let Err(error) = platform.check_config(entry.id, &entry.config) {
                return invalid(format!("network {:?}: {}", entry.name, error.message));
            }
        }
        for party in &self.parties {
            for (&network, address) in &party.accounts {
                let Some(entry) = self.network(network) else { continue };
                let platform = entry.platform_in(platforms)?;
                let text = platform.format_address(address);
                if platform.parse_address(&text).ok() != Some(*address) {
                    return invalid(format!(
                        "party {:?} account {text} is not an account of network {:?} (platform {})",
                        party.name, entry.name, entry.platform
                    ));
                }
            }
        }
        Ok(())
    }

    fn check_services(&self) -> Result<()> {
        unique_names("gateway", self.gateways.iter().map(|entry| entry.name.as_str()))?;
        unique_names("ledger", self.ledgers.iter().map(|entry| entry.name.as_str()))?;
        let mut served = BTreeSet::new();
        for entry in &self.gateways {
            self.check_network_listed("gateway", &entry.name, entry.network)?;
            check_endpoint("gateway", &entry.name, &entry.endpoint)?;
            if !served.insert(entry.network) {
                return invalid(format!("network {} has two gateways: expected at most one", entry.network.0));
            }
        }
        for entry in &self.ledgers {
            self.check_network_listed("ledger", &entry.name, entry.network)?;
            check_endpoint("ledger", &entry.name, &entry.endpoint)?;
        }
        Ok(())
    }

    fn check_parties(&self) -> Result<()> {
        unique_names("party", self.parties.iter().map(|entry| entry.name.as_str()))?;
        for entry in &self.parties {
            check_key("party", &entry.name, entry.key)?;
            if entry.accounts.len() > self.networks.len() {
                return invalid(format!("party {:?} has more accounts than there are networks", entry.name));
            }
            for &network in entry.accounts.keys() {
                self.check_account(entry, network)?;
            }
        }
        Ok(())
    }

    fn check_account(&self, party: &PartyEntry, network: NetworkId) -> Result<()> {
        self.check_network_listed("party", &party.name, network)
    }

    fn check_network_listed(&self, kind: &str, name: &str, network: NetworkId) -> Result<()> {
        match self.network(network) {
            Some(_) => Ok(()),
            None => invalid(format!("{kind} {name:?} names network {} which the directory does not list", network.0)),
        }
    }

    /// The bytes the CA signs: the context label, then the compact JSON of the
    /// directory. Field order is the struct's, map order is sorted, so the same
    /// directory always gives the same bytes.
    fn signing_message(&self) -> Vec<u8> {
        let json = serde_json::to_vec(self).expect("a directory always serialises: its map keys are integers");
        [SIGNING_CONTEXT, json.as_slice()].concat()
    }
}

/// A small-order key verifies forged signatures under lax checking; refuse it.
fn check_key(kind: &str, name: &str, key: PartyId) -> Result<()> {
    let key = ed25519_dalek::VerifyingKey::from_bytes(&key.0);
    if key.map_or(true, |key| key.is_weak()) {
        return invalid(format!(
            "{kind} {name:?} key is not a valid ed25519 public key: expected a point of large order"
        ));
    }
    Ok(())
}

fn unique_names<'a>(kind: &str, names: impl Iterator<Item = &'a str>) -> Result<()> {
    let mut seen = BTreeSet::new();
    for name in names {
        validate_name(name)
            .map_err(|error| IdentityError::InvalidDirectory { problem: format!("{kind} has an {error}") })?;
        if !seen.insert(name) {
            return invalid(format!("{kind} {name:?} is listed twice: expected unique names"));
        }
    }
    Ok(())
}

/// `host:port`, where host is a dns name, an ipv4 address or a bracketed ipv6 address.
fn check_endpoint(kind: &str, name: &str, endpoint: &str) -> Result<()> {
    let split = endpoint.rsplit_once(':');
    let host = split.map(|(host, _)| host.strip_prefix('[').and_then(|h| h.strip_suffix(']')).unwrap_or(host));
    let port = split.and_then(|(_, port)| port.parse::<u16>().ok()).filter(|port| *port != 0);
    let valid = endpoint.len() <= ENDPOINT_LEN_MAX && host.is_some_and(is_valid_host) && port.is_some();
    if !valid {
        let found: String = endpoint.chars().take(80).collect();
        return invalid(format!("{kind} {name:?} endpoint {found:?}: expected host:port"));
    }
    Ok(())
}

fn invalid<T>(problem: String) -> Result<T> {
    Err(IdentityError::InvalidDirectory { problem })
}

/// Longest DER-encoded ECDSA P-256 signature.
pub const SIGNATURE_LEN_MAX: usize = 72;

/// A directory with the CA's ECDSA P-256 signature over [`Directory`]'s signing bytes.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignedDirectory {
    pub directory: Directory,
    /// The DER signature in hex (at most 144 hex digits).
    #[serde(with = "hex::signature")]
    pub signature: Vec<u8>,
}

impl SignedDirectory {
    /// Validates `directory` and signs it with the CA key.
    pub fn sign(directory: Directory, ca: &CertificateAuthority) -> Result<SignedDirectory> {
        directory.validate()?;
        let signature = ca.sign(&directory.signing_message())?;
        Ok(SignedDirectory { directory, signature })
    }

    /// Checks the signature against the CA certificate's key, then the contents.
    pub fn verify(&self, ca_certificate: &CertificateDer<'_>) -> Result<()> {
        let key = ca_public_key(ca_certificate)?;
        let key = ring::signature::UnparsedPublicKey::new(&ring::signature::ECDSA_P256_SHA256_ASN1, key);
        key.verify(&self.directory.signing_message(), &self.signature)
            .map_err(|_| IdentityError::DirectorySignature)?;
        self.directory.validate()
    }

    /// Writes the signed directory as pretty JSON, replacing any previous file atomically.
    pub fn save(&self, path: &Path) -> Result<()> {
        let json = serde_json::to_vec_pretty(self).expect("a directory always serialises: its map keys are integers");
        assert!(json.len() <= DIRECTORY_FILE_LEN_MAX, "a validated directory fits the file limit");
        files::replace(path, &json, PUBLIC_FILE_MODE)
    }

    /// Reads a signed directory without checking it. Prefer [`SignedDirectory::load_verified`].
    pub fn load(path: &Path) -> Result<SignedDirectory> {
        let bytes = read_bounded(path)?;
        serde_json::from_slice(&bytes).map_err(|source| IdentityError::DirectoryJson { path: path.to_owned(), source })
    }

    /// Reads a signed directory and returns its contents only if the CA signed them.
    pub fn load_verified(path: &Path, ca_certificate: &CertificateDer<'_>) -> Result<Directory> {
        let signed = SignedDirectory::load(path)?;
        signed.verify(ca_certificate)?;
        Ok(signed.directory)
    }
}

fn read_bounded(path: &Path) -> Result<Vec<u8>> {
    let file = std::fs::File::open(path).map_err(|source| files::io_error("open", path, source))?;
    let mut bytes = Vec::new();
    let limit = u64::try_from(DIRECTORY_FILE_LEN_MAX).expect("usize fits u64") + 1;
    file.take(limit).read_to_end(&mut bytes).map_err(|source| files::io_error("read", path, source))?;
    if bytes.len() > DIRECTORY_FILE_LEN_MAX {
        return invalid(format!("{} is larger than {DIRECTORY_FILE_LEN_MAX} bytes", path.display()));
    }
    Ok(bytes)
}

/// Whether `peer` may call: its certificate is valid at `now` and the directory lists
/// its name under its role. The TLS handshake has already proved the certificate
/// chains to the CA; this is the rest of invariant 5.
pub fn authorise(peer: &PeerIdentity, directory: &Directory, now: OffsetDateTime) -> Result<()> {
    if now < peer.not_before {
        let (role, name, not_before) = (peer.role, peer.name.clone(), peer.not_before);
        return Err(IdentityError::NotYetValid { role, name, not_before, now });
    }
    if now > peer.not_after {
        return Err(IdentityError::Expired {
            role: peer.role,
            name: peer.name.clone(),
            not_after: peer.not_after,
            now,
        });
    }
    if directory.member(peer.role, &peer.name).is_none() {
        return Err(IdentityError::NotListed { role: peer.role, name: peer.name.clone() });
    }
    Ok(())
}
