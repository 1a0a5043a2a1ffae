//! Architecture invariants that are absences, checked over the source tree:
//! the core depends on no I/O crate, only platform crates (and the places this
//! list names) name a platform, and no source file outgrows a reader.

use std::path::{Path, PathBuf};

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The names in a manifest's `[dependencies]` table.
fn dependencies(manifest: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut inside = false;
    for line in manifest.lines().map(str::trim) {
        if line.starts_with('[') {
            inside = line == "[dependencies]";
            continue;
        }
        if inside && !line.is_empty() && !line.starts_with('#') {
            let name = line.split(['=', '.', ' ']).next().unwrap_or_default();
            names.push(name.to_owned());
        }
    }
    names
}

#[test]
fn the_core_depends_on_no_runtime_network_or_storage_crate() {
    let manifest = std::fs::read_to_string(workspace().join("crates/interlock-core/Cargo.toml")).unwrap();
    let found = dependencies(&manifest);
    assert!(found.iter().any(|name| name == "sha2"), "the manifest parses: {found:?}");
    let forbidden = ["tokio", "tonic", "prost", "hyper", "reqwest", "axum", "rusqlite", "sqlx", "alloy", "mio"];
    let io: Vec<&String> = found.iter().filter(|name| forbidden.contains(&name.as_str())).collect();
    assert!(io.is_empty(), "interlock-core must stay sans-IO, but depends on {io:?}");
}

/// Crates that may name platforms: the platforms themselves and their registration.
const PLATFORM_CRATES: [&str; 3] = ["interlock-evm", "interlock-ledger-node", "interlock-platforms"];

/// Source files outside those crates that still name the EVM platform, and why.
const NAMING_ALLOWED: &[(&str, &str)] = &[
    // The command line's flags and help (`--evm`, `--evm-key`, `bench gas`).
    ("crates/interlock-cli/src/main.rs", "flags"),
    // The sandbox's registration of the chains it can start: one arm per
    // platform crate's own sandbox module, nothing platform-specific besides.
    ("crates/interlock-devnet/src/sandbox/chains.rs", "sandbox chains"),
];

fn rust_files(dir: &Path, found: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap().map(Result::unwrap) {
        let path = entry.path();
        if path.is_dir() {
            rust_files(&path, found);
        } else if path.extension().is_some_and(|extension| extension == "rs") {
            found.push(path);
        }
    }
}

/// True when `text` holds `word` as a whole word, in any case.
fn names(text: &str, word: &str) -> bool {
    text.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).any(|token| token.eq_ignore_ascii_case(word))
}

#[test]
fn only_platform_crates_and_their_registration_name_a_platform() {
    let root = workspace();
    let mut naming = Vec::new();
    for entry in std::fs::read_dir(root.join("crates")).unwrap().map(Result::unwrap) {
        let name = entry.file_name().to_string_lossy().into_owned();
        if PLATFORM_CRATES.contains(&name.as_str()) {
            continue;
        }
        let mut files = Vec::new();
        rust_files(&entry.path().join("src"), &mut files);
        for file in files {
            let relative = file.strip_prefix(&root).unwrap().to_string_lossy().replace('\\', "/");
            if names(&std::fs::read_to_string(&file).unwrap(), "evm") {
                naming.push(relative);
            }
        }
    }
    let unexpected: Vec<&String> =
        naming.iter().filter(|file| !NAMING_ALLOWED.iter().any(|(allowed, _)| allowed == file)).collect();
    assert!(
        unexpected.is_empty(),
        "these sources name a platform outside its crate and the registry; go through interlock_chain instead: {unexpected:?}"
    );
    assert!(names("use interlock_chain; // an EVM note", "evm") && !names("interlock_evm::EvmPlatform", "evm"));
}

/// Longest non-test source file: a reader sees a file whole.
const SOURCE_LINES_MAX: usize = 800;

#[test]
fn no_source_file_is_longer_than_a_reader_can_hold() {
    let root = workspace();
    let mut files = Vec::new();
    for entry in std::fs::read_dir(root.join("crates")).unwrap().map(Result::unwrap) {
        rust_files(&entry.path().join("src"), &mut files);
    }
    assert!(files.len() > 50, "the walk finds the sources: {}", files.len());
    let long: Vec<(String, usize)> = files
        .iter()
        .map(|file| {
            (
                file.strip_prefix(&root).unwrap().display().to_string(),
                std::fs::read_to_string(file).unwrap().lines().count(),
            )
        })
        .filter(|(_, lines)| *lines > SOURCE_LINES_MAX)
        .collect();
    assert!(long.is_empty(), "split these along a seam (at most {SOURCE_LINES_MAX} lines): {long:?}");
}
