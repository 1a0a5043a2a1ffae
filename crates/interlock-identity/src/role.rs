//! Roles and names: what a certificate says its holder is.

use crate::error::{IdentityError, Result};
use crate::NAME_LEN_MAX;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// What a certificate's holder is allowed to be. Issued certificates carry it as the
/// subject's organizationalUnitName, next to the holder's name as the commonName.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// An organisation acting for itself (an operator's command line).
    Party,
    /// The service in front of one network.
    Gateway,
    /// A notary of the k-of-n set.
    Notary,
    /// A service that records deals it is named in.
    Observer,
    /// A ledger node of an embedded network.
    Ledger,
    /// A party agent: the service that runs a party's saga. Its certificate carries
    /// the name of the party it acts for, so the directory lists it under `parties`.
    Agent,
    /// An actor told about the deals that name it (a warranty service, an
    /// invoicing system): it may subscribe to their events at the gateways.
    Dependent,
}

impl Role {
    pub const ALL: [Role; 7] =
        [Role::Party, Role::Gateway, Role::Notary, Role::Observer, Role::Ledger, Role::Agent, Role::Dependent];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Party => "party",
            Role::Gateway => "gateway",
            Role::Notary => "notary",
            Role::Observer => "observer",
            Role::Ledger => "ledger",
            Role::Agent => "agent",
            Role::Dependent => "dependent",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = IdentityError;
    fn from_str(text: &str) -> Result<Role> {
        Role::ALL
            .into_iter()
            .find(|role| role.as_str() == text)
            .ok_or_else(|| IdentityError::UnknownRole { found: text.chars().take(80).collect() })
    }
}

/// Checks a holder or directory name: 1 to [`NAME_LEN_MAX`] characters of `a-z`,
/// `0-9` and `-`. Names become file names (`<name>.pem`) and certificate subjects,
/// so nothing that could walk a path or need escaping gets through.
pub fn validate_name(name: &str) -> Result<()> {
    let valid = !name.is_empty()
        && name.len() <= NAME_LEN_MAX
        && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if !valid {
        return Err(IdentityError::InvalidName { found: name.chars().take(80).collect() });
    }
    Ok(())
}
