//! The signed directory: round trip, tamper detection, validation, authorisation.

mod common;

use common::{expired, now, valid, Pki};
use interlock_core::{Address, NetworkId, NotaryAddress, PartyId, PartyKey};
use interlock_identity::{
    authorise, DependentEntry, Directory, GatewayEntry, IdentityError, LedgerEntry, Member, NetworkEntry, NotaryEntry,
    ObserverEntry, PartyEntry, PeerIdentity, Role, SignedDirectory, Validity,
};
use std::collections::BTreeMap;
use std::path::Path;
use time::Duration;

const ALPHA: NetworkId = NetworkId(1);
const BETA: NetworkId = NetworkId(31337);

fn party(name: &str, seed: u8) -> PartyEntry {
    let key = PartyKey::from_seed([seed; 32]).public();
    let accounts = BTreeMap::from([(ALPHA, Address::from_bytes(key.0)), (BETA, Address::from_bytes([seed; 20]))]);
    PartyEntry { name: name.to_owned(), key, accounts }
}

fn sample() -> Directory {
    Directory {
        networks: vec![
            NetworkEntry { id: ALPHA, name: "alpha".to_owned(), platform: "ledger".into(), config: Default::default() },
            NetworkEntry { id: BETA, name: "beta".to_owned(), platform: "evm".into(), config: Default::default() },
        ],
        gateways: vec![
            GatewayEntry {
                name: "gw-alpha".to_owned(),
                network: ALPHA,
                endpoint: "localhost:7001".to_owned(),
                key: PartyId([7; 32]),
            },
            GatewayEntry {
                name: "gw-beta".to_owned(),
                network: BETA,
                endpoint: "127.0.0.1:7002".to_owned(),
                key: PartyId([8; 32]),
            },
        ],
        ledgers: vec![LedgerEntry {
            name: "ledger-alpha".to_owned(),
            network: ALPHA,
            endpoint: "ledger.alpha.example:7100".to_owned(),
        }],
        parties: vec![party("alice", 1), party("bob", 2)],
        notaries: vec![NotaryEntry {
            name: "notary-1".to_owned(),
            endpoint: "[::1]:7200".to_owned(),
            address: NotaryAddress([0x11; 20]),
        }],
        observers: vec![ObserverEntry {
            name: "observer-1".to_owned(),
            endpoint: "localhost:7300".to_owned(),
            key: PartyId([0x33; 32]),
        }],
        dependents: vec![DependentEntry { name: "warranty".to_owned(), key: PartyKey::from_seed([9; 32]).public() }],
        links: None,
    }
}

fn saved(pki: &Pki) -> std::path::PathBuf {
    let path = pki.dir.path().join("directory.json");
    SignedDirectory::sign(sample(), &pki.ca).unwrap().save(&path).unwrap();
    path
}

#[test]
fn signed_directory_round_trips_and_answers_lookups() {
    let pki = Pki::new();
    let path = saved(&pki);
    let directory = SignedDirectory::load_verified(&path, pki.ca.certificate()).unwrap();
    assert_eq!(directory, sample());

    // Keys and addresses are hex in the file, accounts keyed by network id.
    let json: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    let alice = &json["directory"]["parties"][0];
    assert_eq!(alice["key"].as_str().unwrap().len(), 64);
    assert_eq!(alice["accounts"]["31337"], "0x0101010101010101010101010101010101010101");
    assert_eq!(json["directory"]["networks"][1]["platform"], "evm");
    assert_eq!(json["directory"]["notaries"][0]["address"], "0x1111111111111111111111111111111111111111");
    let signature_hex = json["signature"].as_str().unwrap().len();
    assert!(
        signature_hex.is_multiple_of(2) && (16..=144).contains(&signature_hex),
        "a DER P-256 signature in hex: {signature_hex}"
    );

    assert_eq!(directory.gateway_for(BETA).map(|gateway| gateway.name.as_str()), Some("gw-beta"));
    assert_eq!(directory.gateway_for(NetworkId(9)), None);
    assert_eq!(directory.party("bob").unwrap().account(BETA), Some(Address::from_bytes([2; 20])));
    assert!(matches!(directory.member(Role::Agent, "alice"), Some(Member::Party(entry)) if entry.name == "alice"));
    assert!(matches!(directory.member(Role::Ledger, "ledger-alpha"), Some(Member::Ledger(_))));
    assert!(matches!(directory.member(Role::Observer, "observer-1"), Some(Member::Observer(_))));
    assert_eq!(directory.member(Role::Notary, "gw-alpha"), None);
}

/// Edits the saved file and expects `load_verified` to refuse it with an error
/// matching `expected`.
fn check_tamper(case: &str, edit: impl FnOnce(&Path), expected: fn(&IdentityError) -> bool) {
    let pki = Pki::new();
    let path = saved(&pki);
    edit(&path);
    match SignedDirectory::load_verified(&path, pki.ca.certificate()) {
        Ok(_) => panic!("{case}: the edited directory was accepted"),
        Err(error) => assert!(expected(&error), "{case}: unexpected error {error}"),
    }
}

fn edit_text(path: &Path, from: &str, to: &str) {
    let text = std::fs::read_to_string(path).unwrap();
    assert!(text.contains(from), "{from:?} is in the file");
    std::fs::write(path, text.replacen(from, to, 1)).unwrap();
}

#[test]
fn load_verified_refuses_a_tampered_directory() {
    let signature = |error: &IdentityError| matches!(error, IdentityError::DirectorySignature);
    check_tamper(
        "one byte of a name flipped",
        |path| {
            let mut bytes = std::fs::read(path).unwrap();
            let at = bytes.windows(7).position(|window| window == b"\"alice\"").unwrap() + 2;
            bytes[at] ^= 0x01; // "alice" becomes "amice": still a valid name
            std::fs::write(path, bytes).unwrap();
        },
        signature,
    );
    check_tamper("endpoint moved", |path| edit_text(path, "localhost:7001", "localhost:7009"), signature);
    check_tamper(
        "gateway moved to another network",
        |path| edit_text(path, "\"network\": 31337", "\"network\": 1"),
        signature,
    );
    check_tamper(
        "signed by another ca",
        |path| {
            let other = Pki::new();
            SignedDirectory::sign(sample(), &other.ca).unwrap().save(path).unwrap();
        },
        signature,
    );
    check_tamper(
        "field added",
        |path| edit_text(path, "\"observers\"", "\"extra\": [],\n    \"observers\""),
        |error| matches!(error, IdentityError::DirectoryJson { source, .. } if source.to_string().contains("unknown field `extra`")),
    );
    check_tamper(
        "signature truncated",
        |path| {
            let text = std::fs::read_to_string(path).unwrap();
            let signature =
                serde_json::from_str::<serde_json::Value>(&text).unwrap()["signature"].as_str().unwrap().to_owned();
            // An odd number of hex digits can encode no signature.
            edit_text(path, &signature, &signature[..signature.len() - 1]);
        },
        |error| error.to_string().contains("invalid directory signature: expected 1 to 72 bytes in hex"),
    );
}

/// The ed25519 identity point: decodes, but has order 1.
fn identity_point() -> [u8; 32] {
    let mut bytes = [0; 32];
    bytes[0] = 1;
    bytes
}

/// A y coordinate with no matching x on the curve.
fn off_curve() -> [u8; 32] {
    let mut bytes = [0; 32];
    bytes[0] = 2;
    assert!(ed25519_dalek::VerifyingKey::from_bytes(&bytes).is_err(), "y = 2 is not on the curve");
    bytes
}

/// One change to `sample()`.
type Edit = fn(&mut Directory);

/// Signs `sample()` changed by `edit` and expects the refusal to contain `expected`.
fn check_invalid(edit: Edit, expected: &str) {
    let pki = Pki::new();
    let mut directory = sample();
    edit(&mut directory);
    let error = SignedDirectory::sign(directory, &pki.ca).unwrap_err();
    assert!(matches!(error, IdentityError::InvalidDirectory { .. }), "{error}");
    assert!(error.to_string().contains(expected), "{error} does not contain {expected:?}");
}

#[test]
fn sign_refuses_an_inconsistent_directory() {
    let cases: &[(Edit, &str)] = &[
        (|d| d.parties[1].name = "alice".to_owned(), "party \"alice\" is listed twice"),
        (|d| d.gateways[0].name = "GW".to_owned(), "gateway has an invalid name \"GW\""),
        (
            |d| d.gateways[1].network = NetworkId(5),
            "gateway \"gw-beta\" names network 5 which the directory does not list",
        ),
        (|d| d.gateways[1].network = ALPHA, "network 1 has two gateways"),
        (
            |d| d.ledgers[0].endpoint = "ledger-alpha".to_owned(),
            "ledger \"ledger-alpha\" endpoint \"ledger-alpha\": expected host:port",
        ),
        (|d| d.observers[0].endpoint = "localhost:0".to_owned(), "expected host:port"),
        (|d| d.networks[1].id = ALPHA, "network id 1 is listed twice"),
        (
            |d| d.networks[1].id = NetworkId(1 << 63),
            "network \"beta\" id 9223372036854775808 is out of range: expected 0 to 9223372036854775807",
        ),
        (|d| d.networks[0].platform = "Ledger!".to_owned(), "network \"alpha\" platform \"Ledger!\": expected"),
        (|d| d.parties[0].key.0 = identity_point(), "party \"alice\" key is not a valid ed25519 public key"),
        (|d| d.parties[1].key.0 = off_curve(), "party \"bob\" key is not a valid ed25519 public key"),
        (|d| d.dependents[0].key.0 = identity_point(), "dependent \"warranty\" key is not a valid ed25519 public key"),
        (|d| d.dependents.push(d.dependents[0].clone()), "dependent \"warranty\" is listed twice"),
    ];
    for (edit, expected) in cases {
        check_invalid(*edit, expected);
    }
}

/// Issues a certificate for `role`/`name` with `validity` and authorises it against
/// `sample()` at the current time: `None` expects success, `Some` an error starting so.
fn check_authorise(pki: &Pki, role: Role, name: &str, validity: Validity, expected: Option<&str>) {
    let issued = pki.issue(role, name, &[], validity);
    let peer = PeerIdentity::from_certificate(issued.certificate()).unwrap();
    let outcome = authorise(&peer, &sample(), now());
    match (outcome, expected) {
        (Ok(()), None) => {}
        (Ok(()), Some(expected)) => panic!("{role} {name} was authorised, expected {expected:?}"),
        (Err(error), None) => panic!("{role} {name} was refused: {error}"),
        (Err(error), Some(expected)) => assert!(error.to_string().starts_with(expected), "{role} {name}: {error}"),
    }
}

#[test]
fn authorise_accepts_listed_peers_and_refuses_the_rest() {
    let pki = Pki::new();
    let future = Validity::days_from(now() + Duration::days(1), 30);
    let cases: &[(Role, &str, Validity, Option<&str>)] = &[
        (Role::Gateway, "gw-alpha", valid(), None),
        (Role::Party, "alice", valid(), None),
        (Role::Agent, "bob", valid(), None),
        (Role::Ledger, "ledger-alpha", valid(), None),
        (Role::Notary, "notary-1", valid(), None),
        (Role::Observer, "observer-1", valid(), None),
        (Role::Dependent, "warranty", valid(), None),
        (Role::Dependent, "alice", valid(), Some("dependent \"alice\" is not listed")),
        (Role::Party, "mallory", valid(), Some("party \"mallory\" is not listed in the directory")),
        (Role::Notary, "gw-alpha", valid(), Some("notary \"gw-alpha\" is not listed in the directory")),
        (Role::Gateway, "alice", valid(), Some("gateway \"alice\" is not listed")),
        (Role::Gateway, "gw-alpha", expired(), Some("certificate of gateway \"gw-alpha\" expired at")),
        (Role::Party, "alice", future, Some("certificate of party \"alice\" is not valid before")),
    ];
    for (role, name, validity, expected) in cases {
        check_authorise(&pki, *role, name, *validity, *expected);
    }
}

/// `sample()` with each network configured as its platform expects.
fn configured() -> Directory {
    let mut directory = sample();
    directory.networks[0].config = serde_json::json!({ "node": "localhost:7000" });
    directory.networks[1].config = serde_json::json!({
        "rpc": "http://127.0.0.1:8545",
        "escrow": format!("0x{}", "ab".repeat(20)),
        "confirmations": 2,
        "assets": { "USDC": { "erc20": format!("0x{}", "cd".repeat(20)) } },
    });
    directory
}

#[test]
fn check_platforms_refuses_unknown_platforms_bad_configurations_and_foreign_accounts() {
    let platforms = interlock_platforms::all();
    configured().check_platforms(&platforms).expect("a directory its platforms accept");
    let cases: &[(Edit, &str)] = &[
        (|d| d.networks[1].platform = "solana".to_owned(), "network \"beta\": unknown platform \"solana\""),
        (|d| d.networks[0].config = serde_json::json!({}), "network \"alpha\": network-1: invalid ledger configuration: missing field `node`"),
        (|d| d.networks[1].config["confirmations"] = 0.into(), "confirmations must be at least 1"),
        (|d| d.networks[1].config["escrow"] = "0x12".into(), "\"0x12\" is not an EVM address"),
        (
            |d| {
                d.parties[0].accounts.insert(ALPHA, Address::from_bytes([1; 20]));
            },
            "party \"alice\" account 0101010101010101010101010101010101010101 is not an account of network \"alpha\" (platform ledger)",
        ),
    ];
    for (edit, expected) in cases {
        let mut directory = configured();
        edit(&mut directory);
        let error = directory.check_platforms(&platforms).expect_err(expected);
        assert!(error.to_string().contains(expected), "{error} does not contain {expected:?}");
    }
}
