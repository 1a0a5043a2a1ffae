//! The certificate authority: creating, reopening, refusing to overwrite, issuing.

mod common;

use common::{expired, now, valid, Pki};
use interlock_core::Hash32;
use interlock_identity::{
    load_certificate, load_private_key, CertificateAuthority, IdentityError, PeerIdentity, Role, Validity,
    CA_CERTIFICATE_FILE, CA_KEY_FILE, HOSTS_MAX, NAME_LEN_MAX,
};
use rustls_pki_types::PrivateKeyDer;
use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;
use time::Duration;

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).expect("metadata").permissions().mode() & 0o777
}

/// Private keys are exactly 0600; certificates are 0644 less whatever the umask
/// takes away, but never writable by others nor executable.
fn assert_modes(certificate: &Path, key: &Path) {
    assert_eq!(mode(key), 0o600, "{}", key.display());
    let certificate_mode = mode(certificate);
    assert_eq!(certificate_mode & 0o600, 0o600, "{}", certificate.display());
    assert_eq!(certificate_mode & 0o133, 0, "{}", certificate.display());
}

#[test]
fn init_writes_the_ca_and_load_reopens_it() {
    let pki = Pki::new();
    let dir = pki.dir.path().join("ca");
    assert_modes(&dir.join(CA_CERTIFICATE_FILE), &dir.join(CA_KEY_FILE));
    assert_eq!(pki.ca.certificate_path(), dir.join(CA_CERTIFICATE_FILE));
    assert_eq!(&load_certificate(&pki.ca.certificate_path()).unwrap(), pki.ca.certificate());

    let loaded = CertificateAuthority::load(&dir).unwrap();
    assert_eq!(loaded.certificate(), pki.ca.certificate());

    // A server trusting the original certificate accepts the reopened CA's leaves
    // (a handshake in tls.rs proves it); here, that the identity reads back.
    let leaf = loaded.issue(Role::Notary, "notary-1", &[], valid()).unwrap();
    let peer = PeerIdentity::from_certificate(leaf.certificate()).unwrap();
    assert_eq!((peer.role, peer.name.as_str()), (Role::Notary, "notary-1"));
}

#[test]
fn init_refuses_to_overwrite_an_existing_ca() {
    let pki = Pki::new();
    let dir = pki.dir.path().join("ca");
    let before = std::fs::read(dir.join(CA_KEY_FILE)).unwrap();
    let error = CertificateAuthority::init(&dir).unwrap_err();
    assert!(matches!(&error, IdentityError::CaExists { path } if path == &dir.join(CA_KEY_FILE)), "{error}");
    assert_eq!(std::fs::read(dir.join(CA_KEY_FILE)).unwrap(), before, "the key is untouched");

    // Half a CA (only the certificate) is refused too, not completed with a new key.
    let half = pki.dir.path().join("half");
    std::fs::create_dir(&half).unwrap();
    std::fs::copy(dir.join(CA_CERTIFICATE_FILE), half.join(CA_CERTIFICATE_FILE)).unwrap();
    let error = CertificateAuthority::init(&half).unwrap_err();
    assert!(matches!(error, IdentityError::CaExists { .. }), "{error}");
    assert!(!half.join(CA_KEY_FILE).exists());
}

#[test]
fn load_refuses_a_certificate_of_another_ca() {
    let pki = Pki::new();
    let other = Pki::new();
    let dir = pki.dir.path().join("ca");
    std::fs::remove_file(dir.join(CA_CERTIFICATE_FILE)).unwrap();
    std::fs::copy(other.ca.certificate_path(), dir.join(CA_CERTIFICATE_FILE)).unwrap();
    let error = CertificateAuthority::load(&dir).unwrap_err();
    assert!(matches!(error, IdentityError::CaMismatch { .. }), "{error}");

    let error = CertificateAuthority::load(&pki.dir.path().join("missing")).unwrap_err();
    assert!(error.to_string().starts_with("cannot read "), "{error}");
}

#[test]
fn issued_files_have_private_key_mode_and_load_back() {
    let pki = Pki::new();
    let issued = pki.server("gw-alpha");
    let out = pki.dir.path().join("out");
    std::fs::create_dir(&out).unwrap();
    let files = issued.write(&out).unwrap();
    assert_eq!(files.certificate, out.join("gw-alpha.pem"));
    assert_eq!(files.private_key, out.join("gw-alpha.key"));
    assert_modes(&files.certificate, &files.private_key);

    assert_eq!(&load_certificate(&files.certificate).unwrap(), issued.certificate());
    let key = load_private_key(&files.private_key).unwrap();
    assert!(matches!(key, PrivateKeyDer::Pkcs8(_)));
    assert_eq!(key.secret_der(), issued.private_key().secret_der());

    let error = issued.write(&out).unwrap_err();
    assert!(matches!(&error, IdentityError::FileExists { path } if path == &files.certificate), "{error}");
}

#[test]
fn peer_identity_reads_role_name_validity_and_fingerprint() {
    let pki = Pki::new();
    let validity = expired();
    let issued = pki.issue(Role::Observer, "observer-1", &["observer.example"], validity);
    let peer = PeerIdentity::from_certificate(issued.certificate()).unwrap();
    assert_eq!(peer.role, Role::Observer);
    assert_eq!(peer.name, "observer-1");
    assert_eq!((peer.not_before, peer.not_after), (validity.not_before, validity.not_after));
    assert_eq!(peer.fingerprint, Hash32::sha256(&[issued.certificate().as_ref()]));

    // The CA certificate names no role: it is nobody's identity.
    let error = PeerIdentity::from_certificate(pki.ca.certificate()).unwrap_err();
    assert_eq!(error.to_string(), "certificate subject has 0 organizationalUnitName attributes: expected exactly one");
    let error = PeerIdentity::from_peer_certificates(None).unwrap_err();
    assert!(matches!(error, IdentityError::NoPeerCertificate));
}

#[test]
fn roles_have_lowercase_string_forms() {
    for role in Role::ALL {
        assert_eq!(role.as_str(), role.to_string().to_lowercase());
        assert_eq!(role.as_str().parse::<Role>().unwrap(), role);
    }
    let names: Vec<_> = Role::ALL.iter().map(|role| role.as_str()).collect();
    assert_eq!(names, ["party", "gateway", "notary", "observer", "ledger", "agent", "dependent"]);
    let error = "Gateway".parse::<Role>().unwrap_err();
    assert_eq!(
        error.to_string(),
        "unknown role \"Gateway\": expected one of party, gateway, notary, observer, ledger, agent"
    );
}

/// Issues with one input changed from a valid baseline and compares the outcome:
/// `None` for success, or the start of the expected error message.
fn check(pki: &Pki, name: &str, hosts: &[&str], validity: Validity, expected: Option<&str>) {
    let outcome = pki.ca.issue(Role::Party, name, hosts, validity);
    match (outcome, expected) {
        (Ok(_), None) => {}
        (Ok(_), Some(expected)) => panic!("issue({name:?}, {hosts:?}) succeeded, expected {expected:?}"),
        (Err(error), None) => panic!("issue({name:?}, {hosts:?}) failed: {error}"),
        (Err(error), Some(expected)) => {
            assert!(error.to_string().starts_with(expected), "issue({name:?}, {hosts:?}): {error}")
        }
    }
}

#[test]
fn issue_validates_names_hosts_and_validity() {
    let pki = Pki::new();
    let longest = "a".repeat(NAME_LEN_MAX);
    let too_long = "a".repeat(NAME_LEN_MAX + 1);
    let many_hosts = vec!["localhost"; HOSTS_MAX + 1];
    let inverted = Validity { not_before: now(), not_after: now() - Duration::seconds(1) };
    let invalid_name = "invalid name";
    let cases: &[(&str, &[&str], Validity, Option<&str>)] = &[
        ("alice", &[], valid(), None),
        ("party-7", &["localhost", "127.0.0.1", "::1", "agent.example.com"], valid(), None),
        (&longest, &[], valid(), None),
        ("", &[], valid(), Some(invalid_name)),
        (&too_long, &[], valid(), Some(invalid_name)),
        ("Alice", &[], valid(), Some(invalid_name)),
        ("alice_b", &[], valid(), Some(invalid_name)),
        ("../alice", &[], valid(), Some(invalid_name)),
        ("alice", &["not a host"], valid(), Some("invalid host \"not a host\"")),
        ("alice", &["localhost:443"], valid(), Some("invalid host")),
        ("alice", &many_hosts, valid(), Some("17 hosts for one certificate: expected at most 16")),
        ("alice", &[], inverted, Some("invalid validity: expected not_before")),
        ("alice", &[], Validity::days_from(now(), 826), Some("validity of 826 days is too long")),
        ("alice", &[], expired(), None),
    ];
    for (name, hosts, validity, expected) in cases {
        check(&pki, name, hosts, *validity, *expected);
    }
}
