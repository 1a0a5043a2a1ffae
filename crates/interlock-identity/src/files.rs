//! File helpers. Private keys are created with mode 0600 by `open` itself, so no
//! other user can read them even for the instant between creating and chmod-ing.

use crate::error::{IdentityError, Result};
use std::fs::{self, OpenOptions};
use std::io::Write as _;
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Path, PathBuf};

/// Mode of every private key file: owner read/write only.
pub const PRIVATE_KEY_MODE: u32 = 0o600;
/// Mode of certificates and directories: public material.
pub const PUBLIC_FILE_MODE: u32 = 0o644;

/// Creates `path` with `mode` and writes `bytes`; refuses if the file exists.
pub(crate) fn write_new(path: &Path, bytes: &[u8], mode: u32) -> Result<()> {
    let mut file = OpenOptions::new().write(true).create_new(true).mode(mode).open(path).map_err(|source| {
        if source.kind() == std::io::ErrorKind::AlreadyExists {
            IdentityError::FileExists { path: path.to_owned() }
        } else {
            io_error("create", path, source)
        }
    })?;
    file.write_all(bytes).map_err(|source| io_error("write", path, source))?;
    file.sync_all().map_err(|source| io_error("sync", path, source))
}

/// Replaces `path` atomically: writes a sibling temporary file, then renames it, so
/// a reader sees the old file or the new one, never half of one.
pub(crate) fn replace(path: &Path, bytes: &[u8], mode: u32) -> Result<()> {
    let temporary = temporary_sibling(path);
    // A temporary left behind by a crashed writer is ours to discard.
    match fs::remove_file(&temporary) {
        Ok(()) => {}
        Err(source) if source.kind() == std::io::ErrorKind::NotFound => {}
        Err(source) => return Err(io_error("remove", &temporary, source)),
    }
    write_new(&temporary, bytes, mode)?;
    fs::rename(&temporary, path).map_err(|source| io_error("rename into place", path, source))
}

/// Whether `path` is fit to hold a private key: a readable file that neither
/// its group nor others may read or write. Says what is wrong, and the fix.
pub fn check_private_file(path: &Path) -> std::result::Result<(), String> {
    use std::os::unix::fs::PermissionsExt as _;
    let metadata = fs::metadata(path).map_err(|error| format!("cannot be read: {error}"))?;
    if !metadata.is_file() {
        return Err("is not a file".to_owned());
    }
    fs::File::open(path).map_err(|error| format!("cannot be read: {error}"))?;
    let mode = metadata.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(format!(
            "has mode {mode:04o}: others than its owner may read or change it; run chmod 600 {}",
            path.display()
        ));
    }
    Ok(())
}

pub(crate) fn read(path: &Path) -> Result<Vec<u8>> {
    fs::read(path).map_err(|source| io_error("read", path, source))
}

pub(crate) fn io_error(action: &'static str, path: &Path, source: std::io::Error) -> IdentityError {
    IdentityError::Io { action, path: path.to_owned(), source }
}

fn temporary_sibling(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".tmp");
    path.with_file_name(name)
}
