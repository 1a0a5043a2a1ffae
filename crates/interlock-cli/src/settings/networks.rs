//! A role instance's own settings for networks of the directory: the
//! `[networks.<name>]` tables of its config file. Each key of a table is
//! merged over that network's platform configuration from the signed
//! directory, for this instance only (a key replaces the directory's value
//! whole), and the merged object is what the role hands its platform. One key
//! is the role's own and never reaches the platform: `chain_key`, the key file
//! the instance signs with on that network.
//!
//! What identifies the network's contract and accounts stays the directory's:
//! every role must read the same one, and only the CA signs it.

use super::SettingsError;
use interlock_identity::NetworkEntry;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Keys of a network's configuration that a config file may not set: the
/// platform kind, the escrow contract, the asset bindings (contracts too) and
/// the keeper account. Generic names: a platform's configuration is opaque here.
pub const DIRECTORY_ONLY_KEYS: [&str; 4] = ["platform", "escrow", "assets", "keeper"];
/// The key of a network's table naming the instance's key file on that network.
pub const CHAIN_KEY: &str = "chain_key";
/// Most `[networks.*]` tables a file may hold.
const NETWORKS_MAX: usize = 64;

#[derive(Clone, Default, Debug, Serialize, Deserialize)]
#[serde(transparent)]
pub struct LocalNetworks {
    tables: BTreeMap<String, toml::Table>,
    /// The file the tables came from, for messages.
    #[serde(skip)]
    origin: Option<PathBuf>,
}

impl LocalNetworks {
    pub fn is_empty(&self) -> bool {
        self.tables.is_empty()
    }

    /// The names of the networks the file has a table for.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.tables.keys().map(String::as_str)
    }

    /// Where the tables came from, for messages.
    pub fn origin(&self) -> String {
        match &self.origin {
            Some(path) => format!("config file {}", path.display()),
            None => "the settings".to_owned(),
        }
    }

    /// Remembers the file the tables came from and makes its relative key
    /// paths relative to `base`, the file's directory.
    pub(super) fn loaded_from(&mut self, file: &Path, base: &Path) {
        self.origin = Some(file.to_owned());
        for table in self.tables.values_mut() {
            let Some(toml::Value::String(path)) = table.get_mut(CHAIN_KEY) else { continue };
            if Path::new(path.as_str()).is_relative() {
                *path = base.join(path.as_str()).to_string_lossy().into_owned();
            }
        }
    }

    /// What can be checked without the directory: no directory-only key, a
    /// `chain_key` that is a path, not too many tables.
    pub fn check(&self) -> Result<(), SettingsError> {
        if self.tables.len() > NETWORKS_MAX {
            return Err(SettingsError::Network {
                origin: self.origin(),
                network: "*".into(),
                problem: format!("holds {} tables, more than the {NETWORKS_MAX} allowed", self.tables.len()),
            });
        }
        for (network, table) in &self.tables {
            if let Some(key) = table.keys().find(|key| DIRECTORY_ONLY_KEYS.contains(&key.as_str())) {
                let (origin, network, key) = (self.origin(), network.clone(), key.clone());
                return Err(SettingsError::DirectoryOnly { origin, network, key });
            }
            match table.get(CHAIN_KEY) {
                None | Some(toml::Value::String(_)) => {}
                Some(other) => {
                    return Err(self.problem(network, format!("`{CHAIN_KEY}` must be a file path, found {other}")))
                }
            }
        }
        Ok(())
    }

    /// Every table names one of `networks`, the networks the role may have
    /// settings for (`described` says which those are, for the message).
    pub fn check_names<'a>(
        &self,
        networks: impl Iterator<Item = &'a NetworkEntry> + Clone,
        described: &str,
    ) -> Result<(), SettingsError> {
        for name in self.names() {
            if !networks.clone().any(|entry| entry.name == name) {
                let known: Vec<String> = networks.clone().map(|entry| format!("{:?}", entry.name)).collect();
                let listed = if known.is_empty() { "none".to_owned() } else { known.join(", ") };
                return Err(self.problem(name, format!("names no network {described} (expected one of: {listed})")));
            }
        }
        Ok(())
    }

    /// `entry`'s platform configuration with this instance's keys merged over
    /// it (the directory's own when the file has no table for the network).
    pub fn config(&self, entry: &NetworkEntry) -> Result<serde_json::Value, SettingsError> {
        self.check()?;
        let Some(table) = self.tables.get(&entry.name) else { return Ok(entry.config.clone()) };
        let mut merged = match &entry.config {
            serde_json::Value::Object(object) => object.clone(),
            serde_json::Value::Null => serde_json::Map::new(),
            _ => {
                let problem = "cannot be merged: the directory's configuration of that network is not a table";
                return Err(self.problem(&entry.name, problem.to_owned()));
            }
        };
        for (key, value) in table.iter().filter(|(key, _)| key.as_str() != CHAIN_KEY) {
            merged.insert(key.clone(), json(value));
        }
        Ok(serde_json::Value::Object(merged))
    }

    /// The key file this instance signs with on `network`, if its table names one.
    pub fn chain_key(&self, network: &str) -> Option<PathBuf> {
        match self.tables.get(network)?.get(CHAIN_KEY)? {
            toml::Value::String(path) => Some(PathBuf::from(path)),
            _ => None,
        }
    }

    fn problem(&self, network: &str, problem: String) -> SettingsError {
        SettingsError::Network { origin: self.origin(), network: network.to_owned(), problem }
    }
}

/// A TOML value as the JSON the platforms read (a date as its text).
fn json(value: &toml::Value) -> serde_json::Value {
    match value {
        toml::Value::String(text) => serde_json::Value::String(text.clone()),
        toml::Value::Integer(number) => serde_json::Value::from(*number),
        toml::Value::Float(number) => serde_json::Value::from(*number),
        toml::Value::Boolean(flag) => serde_json::Value::Bool(*flag),
        toml::Value::Datetime(datetime) => serde_json::Value::String(datetime.to_string()),
        toml::Value::Array(items) => serde_json::Value::Array(items.iter().map(json).collect()),
        toml::Value::Table(table) => {
            serde_json::Value::Object(table.iter().map(|(key, value)| (key.clone(), json(value))).collect())
        }
    }
}
