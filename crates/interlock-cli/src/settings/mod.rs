//! One settings struct per service role, read from a TOML file (`--config
//! FILE`) and from flags. The struct is both: clap parses the flags into it,
//! serde reads the file into another of the same type, and `over` keeps each
//! setting the flags gave and takes the rest from the file. A key of the file
//! is its flag's name without the dashes, `-` written `_` (`--tls-dir` is
//! `tls_dir`); the file refuses keys it does not know, naming them.
//!
//! Relative paths in a file are relative to the file's directory, those of
//! flags to the working directory, so a file means the same wherever the
//! process starts.
//!
//! `resolve` turns the merged settings into what the role runs with, and says
//! which setting is missing (its flag and its key) or out of range.

mod networks;
mod roles;
#[cfg(test)]
mod tests;

pub use networks::LocalNetworks;
pub use roles::{AgentArgs, DependentArgs, GatewayArgs, LedgerArgs, NotaryArgs, ObserverArgs};

use serde::de::DeserializeOwned;
use serde::Serialize;
use std::path::{Path, PathBuf};

/// Largest config file read: far more than any role's settings need.
const CONFIG_BYTES_MAX: u64 = 1 << 20;

#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    #[error("cannot read config file {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("config file {path} is {size} bytes, more than the {CONFIG_BYTES_MAX} a config file may have")]
    TooLarge { path: PathBuf, size: u64 },
    /// Not TOML, an unknown key, or a value of the wrong kind: the message
    /// names the key and its line.
    #[error("config file {path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("the {role} needs {what}: pass {flag} or set `{key}` in its config file (--config FILE)")]
    Missing { role: &'static str, what: &'static str, flag: &'static str, key: &'static str },
    #[error("the {role}'s {key} (flag {flag}) must be {expected}, found {found}")]
    Invalid { role: &'static str, flag: &'static str, key: &'static str, expected: String, found: String },
    #[error(
        "{origin}: [networks.{network}] sets `{key}`, which only the directory may set: it is the network's, signed \
         by the CA, and every role must read the same one"
    )]
    DirectoryOnly { origin: String, network: String, key: String },
    #[error("{origin}: [networks.{network}] {problem}")]
    Network { origin: String, network: String, problem: String },
}

/// What every role's settings struct offers the shared plumbing.
pub trait RoleSettings: Sized + Clone + Default + DeserializeOwned + Serialize {
    /// The role, as its command names it.
    const ROLE: &'static str;
    /// The `--config` file the flags named.
    fn config_file(&self) -> Option<&Path>;
    /// These settings (the flags) over `file`'s: each one given here wins.
    fn over(self, file: Self) -> Self;
    /// Remembers that these settings came from `file` and makes their relative
    /// paths relative to `base`, the file's directory.
    fn loaded_from(&mut self, file: &Path, base: &Path);
    /// Fills in the defaults of what neither flags nor file gave.
    fn with_defaults(self) -> Self;
}

/// The settings the flags give, over those of their `--config` file when they
/// name one.
pub fn merged<T: RoleSettings>(flags: T) -> Result<T, SettingsError> {
    let Some(path) = flags.config_file().map(Path::to_path_buf) else { return Ok(flags.with_defaults()) };
    let file: T = read(&path)?;
    Ok(flags.over(file).with_defaults())
}

/// A role's settings from the TOML file at `path`, nothing else, its relative
/// paths made relative to the file's directory.
pub fn read<T: RoleSettings>(path: &Path) -> Result<T, SettingsError> {
    let read_error = |source| SettingsError::Read { path: path.to_owned(), source };
    let size = std::fs::metadata(path).map_err(read_error)?.len();
    if size > CONFIG_BYTES_MAX {
        return Err(SettingsError::TooLarge { path: path.to_owned(), size });
    }
    let text = std::fs::read_to_string(path).map_err(read_error)?;
    let mut settings: T = parse(path, &text)?;
    settings.loaded_from(path, path.parent().unwrap_or(Path::new("")));
    Ok(settings)
}

/// A role's settings from `text`, the contents of the file at `path`.
pub fn parse<T: RoleSettings>(path: &Path, text: &str) -> Result<T, SettingsError> {
    toml::from_str(text).map_err(|error| SettingsError::Parse {
        path: path.to_owned(),
        message: error.to_string().trim_end().to_owned(),
    })
}

/// How one setting the flags give goes over the file's, by its type.
trait Over {
    fn over(self, file: Self) -> Self;
}

/// The flag's value, or the file's.
impl<T> Over for Option<T> {
    fn over(self, file: Self) -> Self {
        self.or(file)
    }
}

/// A switch is on when the flag or the file turns it on.
impl Over for bool {
    fn over(self, file: Self) -> Self {
        self || file
    }
}

/// The flags' list, when they give one, replaces the file's whole.
impl<T> Over for Vec<T> {
    fn over(self, file: Self) -> Self {
        if self.is_empty() {
            file
        } else {
            self
        }
    }
}

/// A role's `config_file` and `over`: `config` and each of `flags_only` (the
/// file has no key for them) come from the flags, each of `file_only` from the
/// file, and each of `merged` goes over the file's by its `Over` rule.
macro_rules! over_file {
    (merged: [$($merged:ident),* $(,)?], flags_only: [$($flag:ident),* $(,)?], file_only: [$($file:ident),* $(,)?] $(,)?) => {
        fn config_file(&self) -> Option<&Path> {
            self.config.as_deref()
        }

        fn over(self, file: Self) -> Self {
            Self {
                config: self.config,
                $($flag: self.$flag,)*
                $($file: file.$file,)*
                $($merged: Over::over(self.$merged, file.$merged),)*
            }
        }
    };
}
use over_file;

/// Makes each of `paths` relative to `base` when it is relative.
fn rebase<'a>(base: &Path, paths: impl IntoIterator<Item = &'a mut Option<PathBuf>>) {
    for path in paths {
        *path = path.take().map(|path| if path.is_relative() { base.join(path) } else { path });
    }
}

/// A setting the role cannot run without.
fn required<T>(
    value: Option<T>,
    role: &'static str,
    what: &'static str,
    flag: &'static str,
    key: &'static str,
) -> Result<T, SettingsError> {
    value.ok_or(SettingsError::Missing { role, what, flag, key })
}

/// `value` within `range`, or an error naming the setting.
fn within(
    value: u64,
    range: std::ops::RangeInclusive<u64>,
    role: &'static str,
    flag: &'static str,
    key: &'static str,
) -> Result<u64, SettingsError> {
    if range.contains(&value) {
        return Ok(value);
    }
    let expected = format!("{} to {}", range.start(), range.end());
    Err(SettingsError::Invalid { role, flag, key, expected, found: value.to_string() })
}
