//! The merge of flags over a config file, and what it refuses.

use super::*;
use clap::Parser as _;
use interlock_identity::NetworkEntry;
use std::path::Path;

/// A role's flags, parsed as the command line would.
#[derive(clap::Parser)]
struct Flags<T: clap::Args> {
    #[command(flatten)]
    settings: T,
}

fn flags<T: clap::Args>(args: &[&str]) -> T {
    Flags::<T>::try_parse_from(std::iter::once("role").chain(args.iter().copied())).unwrap().settings
}

/// `text` written as `name` in a fresh directory; the directory and the file's path.
fn file(name: &str, text: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(name);
    std::fs::write(&path, text).unwrap();
    (dir, path)
}

const LEDGER: &str = r#"
data = "alpha"
network = 1
listen = "127.0.0.1:7111"
tls_dir = "tls"
name = "alpha-ledger"
directory = "directory.json"
no_keeper = true
"#;

#[test]
fn a_file_alone_gives_every_setting_and_its_relative_paths_are_the_files() {
    let (dir, path) = file("alpha-ledger.toml", LEDGER);
    let path_text = path.to_str().unwrap();
    let options = merged(flags::<LedgerArgs>(&["--config", path_text])).unwrap().resolve().unwrap();
    assert_eq!(options.data, dir.path().join("alpha"));
    assert_eq!(options.files.tls_dir, dir.path().join("tls"));
    assert_eq!(options.files.directory, dir.path().join("directory.json"));
    assert_eq!((options.network, options.files.name.as_str()), (1, "alpha-ledger"));
    assert_eq!(options.listen.to_string(), "127.0.0.1:7111");
    assert!(!options.keeper, "no_keeper = true");
}

#[test]
fn flags_alone_give_every_setting_and_the_defaults_fill_the_rest() {
    let args = ["--data", "d", "--network", "2", "--tls-dir", "t", "--name", "n", "--directory", "dir.json"];
    let options = merged(flags::<LedgerArgs>(&args)).unwrap().resolve().unwrap();
    assert_eq!((options.data.as_path(), options.files.tls_dir.as_path()), (Path::new("d"), Path::new("t")));
    assert_eq!(options.listen.to_string(), "127.0.0.1:7101", "the ledger's default");
    assert!(options.keeper);
}

#[test]
fn a_flag_wins_over_the_file_and_the_file_over_the_default() {
    let (dir, path) = file("gw.toml", "data = \"gw\"\nnetwork = 1\nname = \"from-file\"\nwebhook_attempts = 24\n");
    let args = ["--config", path.to_str().unwrap(), "--name", "from-flag", "--tls-dir", "tls"];
    let args: Vec<&str> = args.into_iter().chain(["--directory", "d.json", "--webhook-base-ms", "50"]).collect();
    let options = merged(flags::<GatewayArgs>(&args)).unwrap().resolve().unwrap();
    assert_eq!(options.files.name, "from-flag");
    assert_eq!(options.data, dir.path().join("gw"), "from the file, relative to it");
    assert_eq!(options.files.tls_dir, Path::new("tls"), "a flag's path stays relative to the working directory");
    assert_eq!(options.webhooks.attempts, 24);
    assert_eq!(options.webhooks.base.as_millis(), 50);
    assert_eq!(options.webhooks.cap.as_millis(), u128::from(roles::WEBHOOK_CAP_MS_DEFAULT));
}

#[test]
fn a_switch_in_the_file_holds_unless_the_flag_is_given_and_lists_take_the_flags() {
    let (_dir, path) = file("agent.toml", "auto_accept = true\nkeep_withdrawn = 60\n");
    let settings = merged(flags::<AgentArgs>(&["--config", path.to_str().unwrap(), "--quiet"])).unwrap();
    assert!(settings.auto_accept && settings.quiet);
    assert_eq!(settings.keep_withdrawn, Some(60));
    let (_dir, path) = file("warranty.toml", "kinds = [\"completed\", \"refunded\"]\n");
    let from_file = merged(flags::<DependentArgs>(&["--config", path.to_str().unwrap()])).unwrap();
    assert_eq!(from_file.kinds, ["completed", "refunded"]);
    let from_flag =
        merged(flags::<DependentArgs>(&["--config", path.to_str().unwrap(), "--kind", "cancelled"])).unwrap();
    assert_eq!(from_flag.kinds, ["cancelled"]);
}

/// What reading `text` as a file of role `T` and resolving it says is wrong,
/// with `resolve` the role's own.
fn refusal<T: RoleSettings, R>(text: &str, resolve: impl FnOnce(T) -> Result<R, SettingsError>) -> String {
    let (_dir, path) = file("role.toml", text);
    match merged_from(&path).and_then(resolve) {
        Ok(_) => panic!("{text:?} was accepted"),
        Err(error) => error.to_string(),
    }
}

/// The settings of the file at `path` alone.
fn merged_from<T: RoleSettings>(path: &Path) -> Result<T, SettingsError> {
    read::<T>(path).map(RoleSettings::with_defaults)
}

#[test]
fn what_a_file_gets_wrong_is_named() {
    let gateway = |text: &str| refusal(text, GatewayArgs::resolve);
    let ledger = |text: &str| refusal(text, LedgerArgs::resolve);
    let cases: [(String, &[&str]); 7] = [
        (ledger("data = \"d\"\ntls_dri = \"tls\"\n"), &["role.toml", "unknown field `tls_dri`", "line 2"]),
        (ledger("data = \"d\"\nnetwork = \"one\"\n"), &["role.toml", "network", "line 2"]),
        (ledger("listen = \"nowhere\"\n"), &["role.toml", "invalid socket address"]),
        (ledger("data = \"d\"\nnetwork = 1\n"), &["ledger node", "--tls-dir", "`tls_dir`"]),
        (gateway("print_key = true\n"), &["unknown field `print_key`"]),
        (
            gateway("data = \"d\"\nnetwork = 1\ntls_dir = \"t\"\nname = \"g\"\ndirectory = \"d.json\"\nwebhook_cap_ms = 0\n"),
            &["webhook_cap_ms", "--webhook-cap-ms", "1 to 86400000", "found 0"],
        ),
        (
            gateway("data = \"d\"\nnetwork = 1\ntls_dir = \"t\"\nname = \"g\"\ndirectory = \"d.json\"\n[networks.beta]\nrpc = \"https://node.example\"\nescrow = \"0x01\"\n"),
            &["role.toml", "[networks.beta]", "`escrow`", "only the directory may set"],
        ),
    ];
    for (message, expected) in cases {
        for part in expected {
            assert!(message.contains(part), "{message:?} should contain {part:?}");
        }
    }
}

#[test]
fn a_missing_setting_names_its_flag_and_its_key() {
    let Err(error) = merged(flags::<AgentArgs>(&["--data", "d"])).unwrap().resolve() else { panic!("resolved") };
    assert!(matches!(error, SettingsError::Missing { flag: "--tls-dir DIR", key: "tls_dir", .. }), "{error}");
}

#[test]
fn neither_the_platform_nor_the_contract_nor_the_accounts_may_be_set_locally() {
    for key in networks::DIRECTORY_ONLY_KEYS {
        let text = format!("[networks.beta]\n{key} = \"x\"\n");
        let (_dir, path) = file("agent.toml", &text);
        let error = merged_from::<AgentArgs>(&path).unwrap().networks.check().unwrap_err();
        assert!(
            matches!(&error, SettingsError::DirectoryOnly { key: found, network, .. } if found == key && network == "beta"),
            "{error}"
        );
    }
}

fn entry(name: &str, config: serde_json::Value) -> NetworkEntry {
    NetworkEntry { id: interlock_core::NetworkId(2), name: name.into(), platform: "chain".into(), config }
}

#[test]
fn a_network_table_is_merged_over_the_directory_configuration_key_by_key() {
    let text = "[networks.beta]\nrpc = \"https://node.example:8545\"\nconfirmations = 12\nfees = { floor_gwei = 1, cap_gwei = 300 }\nchain_key = \"keys/beta.key\"\n";
    let (dir, path) = file("gateway.toml", text);
    let local = merged_from::<GatewayArgs>(&path).unwrap().networks;
    let directory = serde_json::json!({"rpc": "http://127.0.0.1:8545", "escrow": "0xabc", "confirmations": 2, "fees": {"floor_gwei": 0}});
    let merged = local.config(&entry("beta", directory)).unwrap();
    let expected = serde_json::json!({
        "rpc": "https://node.example:8545", "escrow": "0xabc", "confirmations": 12,
        "fees": {"floor_gwei": 1, "cap_gwei": 300},
    });
    assert_eq!(merged, expected, "a key replaces the directory's value whole; chain_key stays the role's");
    assert_eq!(local.chain_key("beta"), Some(dir.path().join("keys/beta.key")));
    let untouched = serde_json::json!({"node": "127.0.0.1:7101"});
    assert_eq!(local.config(&entry("alpha", untouched.clone())).unwrap(), untouched);
    let alpha = entry("alpha", untouched);
    let error = local.check_names(std::iter::once(&alpha), "this gateway fronts").unwrap_err();
    assert!(error.to_string().contains("[networks.beta] names no network this gateway fronts"), "{error}");
}
