//! The certificate authority: one ECDSA P-256 key pair and its self-signed certificate,
//! kept in a directory as `ca.key` (mode 0600) and `ca.pem` (mode 0644).

use crate::certificate::{self, ca_public_key};
use crate::error::{IdentityError, Result};
use crate::files::{self, PRIVATE_KEY_MODE, PUBLIC_FILE_MODE};
use crate::role::{validate_name, Role};
use crate::{HOSTS_MAX, LEAF_VALIDITY_DAYS_MAX};
use interlock_core::Hash32;
use rcgen::string::Ia5String;
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, SanType, SigningKey as _, PKCS_ECDSA_P256_SHA256,
};
use rustls_pki_types::{CertificateDer, DnsName, PrivateKeyDer, PrivatePkcs8KeyDer};
use std::fmt;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use time::{Duration, OffsetDateTime, UtcOffset};

/// File name of the CA certificate inside the CA directory.
pub const CA_CERTIFICATE_FILE: &str = "ca.pem";
/// File name of the CA private key inside the CA directory.
pub const CA_KEY_FILE: &str = "ca.key";
/// How long a new CA certificate is valid, in days.
pub const CA_VALIDITY_DAYS: i64 = 3650;
/// How far a new CA certificate's validity starts in the past, so a peer whose clock
/// runs a little behind the CA's still accepts it.
pub const CA_BACKDATE: Duration = Duration::hours(1);

/// When a certificate is valid: from `not_before` to `not_after`, both inclusive,
/// to the second (x509 keeps no fractions of seconds).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Validity {
    pub not_before: OffsetDateTime,
    pub not_after: OffsetDateTime,
}

impl Validity {
    /// `days` days starting at `now`.
    pub fn days_from(now: OffsetDateTime, days: i64) -> Validity {
        Validity { not_before: now, not_after: now + Duration::days(days) }
    }

    /// Both ends in UTC and whole seconds: what the certificate will actually say.
    fn normalised(self) -> Validity {
        let whole = |t: OffsetDateTime| {
            let t = t.to_offset(UtcOffset::UTC);
            t - Duration::nanoseconds(i64::from(t.nanosecond()))
        };
        Validity { not_before: whole(self.not_before), not_after: whole(self.not_after) }
    }

    /// A validity in the past is allowed (tests issue expired certificates on
    /// purpose); an empty, inverted or overlong one is not.
    fn check(self, max_days: i64) -> Result<()> {
        if self.not_before >= self.not_after {
            return Err(IdentityError::InvalidValidity { not_before: self.not_before, not_after: self.not_after });
        }
        let length = self.not_after - self.not_before;
        if length > Duration::days(max_days) {
            // Round a part day up, so the message never reports the limit itself.
            let part_day = length > Duration::days(length.whole_days());
            let found_days = length.whole_days() + i64::from(part_day);
            return Err(IdentityError::ValidityTooLong { found_days, max_days });
        }
        Ok(())
    }
}

/// The certificate authority of one Interlock deployment.
pub struct CertificateAuthority {
    directory: PathBuf,
    key: KeyPair,
    /// The CA's own parameters; leaves take their issuer name from them, so they
    /// must encode the same subject as the CA certificate (checked on load).
    params: CertificateParams,
    certificate: CertificateDer<'static>,
}

impl CertificateAuthority {
    /// Creates a new CA in `directory` (created if missing), valid for
    /// [`CA_VALIDITY_DAYS`] from now (this reads the system clock). Refuses if a CA
    /// is already there, even half of one.
    pub fn init(directory: &Path) -> Result<CertificateAuthority> {
        let key_path = directory.join(CA_KEY_FILE);
        let certificate_path = directory.join(CA_CERTIFICATE_FILE);
        if let Some(existing) = [&key_path, &certificate_path].into_iter().find(|path| path.exists()) {
            return Err(IdentityError::CaExists { path: existing.clone() });
        }
        std::fs::create_dir_all(directory).map_err(|source| files::io_error("create directory", directory, source))?;

        let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)?;
        let validity = Validity::days_from(OffsetDateTime::now_utc() - CA_BACKDATE, CA_VALIDITY_DAYS).normalised();
        let mut params = ca_params(&key);
        params.not_before = validity.not_before;
        params.not_after = validity.not_after;
        let certificate = params.self_signed(&key)?;

        // Key first: a crash between the two writes leaves a CA that `load` refuses
        // and `init` will not overwrite, rather than a certificate without its key.
        let refuse_existing = |error| match error {
            IdentityError::FileExists { path } => IdentityError::CaExists { path },
            other => other,
        };
        files::write_new(&key_path, key.serialize_pem().as_bytes(), PRIVATE_KEY_MODE).map_err(refuse_existing)?;
        files::write_new(&certificate_path, certificate.pem().as_bytes(), PUBLIC_FILE_MODE).map_err(refuse_existing)?;
        Ok(CertificateAuthority {
            directory: directory.to_owned(),
            key,
            params,
            certificate: certificate.der().clone(),
        })
    }

    /// Opens the CA in `directory`, checking that its certificate belongs to its key.
    pub fn load(directory: &Path) -> Result<CertificateAuthority> {
        let key_path = directory.join(CA_KEY_FILE);
        let key_pem = String::from_utf8(files::read(&key_path)?).map_err(|_| IdentityError::Pem {
            path: key_path.clone(),
            expected: "private key",
            detail: "the file is not utf-8 text".to_owned(),
        })?;
        let key = KeyPair::from_pem(&key_pem).map_err(|error| IdentityError::Pem {
            path: key_path,
            expected: "private key",
            detail: error.to_string(),
        })?;
        if key.algorithm() != &PKCS_ECDSA_P256_SHA256 {
            return Err(IdentityError::CaKeyType { found: format!("{:?}", key.algorithm()) });
        }
        let certificate = certificate::load_certificate(&directory.join(CA_CERTIFICATE_FILE))?;
        check_certificate_matches_key(&certificate, &key)?;
        let params = ca_params(&key);
        Ok(CertificateAuthority { directory: directory.to_owned(), key, params, certificate })
    }

    /// The CA certificate: the one trust anchor of every Interlock service.
    pub fn certificate(&self) -> &CertificateDer<'static> {
        &self.certificate
    }

    /// Where the CA certificate is stored.
    pub fn certificate_path(&self) -> PathBuf {
        self.directory.join(CA_CERTIFICATE_FILE)
    }

    /// Signs a certificate for `name` in `role`, valid for connections to `hosts`
    /// (dns names or ip addresses; none for a pure client) and usable both as a TLS
    /// client and a TLS server. A fresh ECDSA P-256 key pair is generated for it.
    pub fn issue(&self, role: Role, name: &str, hosts: &[&str], validity: Validity) -> Result<IssuedCertificate> {
        validate_name(name)?;
        let subject_alt_names = parse_hosts(hosts)?;
        let validity = validity.normalised();
        validity.check(LEAF_VALIDITY_DAYS_MAX)?;

        let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)?;
        let params = leaf_params(role, name, subject_alt_names, validity);
        let issuer = Issuer::from_params(&self.params, &self.key);
        let certificate = params.signed_by(&key, &issuer)?;
        Ok(IssuedCertificate {
            role,
            name: name.to_owned(),
            certificate: certificate.der().clone(),
            certificate_pem: certificate.pem(),
            key_pkcs8: key.serialize_der(),
            key_pem: key.serialize_pem(),
        })
    }

    /// The CA's ECDSA P-256 / SHA-256 signature over `message`, DER-encoded.
    pub(crate) fn sign(&self, message: &[u8]) -> Result<Vec<u8>> {
        let signature = self.key.sign(message)?;
        assert!(signature.len() <= crate::directory::SIGNATURE_LEN_MAX, "a DER P-256 signature is at most 72 bytes");
        Ok(signature)
    }
}

impl fmt::Debug for CertificateAuthority {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CertificateAuthority").field("directory", &self.directory).finish_non_exhaustive()
    }
}

/// The subject and extensions of the CA certificate. The common name carries a
/// fingerprint of the key so two CAs never share a subject: a certificate from
/// another CA then fails as "unknown issuer", not as a confusing bad signature.
fn ca_params(key: &KeyPair) -> CertificateParams {
    let fingerprint = Hash32::sha256(&[key.public_key_raw()]).to_hex();
    let mut distinguished_name = DistinguishedName::new();
    distinguished_name.push(DnType::CommonName, ca_common_name(&fingerprint));
    let mut params = CertificateParams::default();
    params.distinguished_name = distinguished_name;
    // Path length 0: the CA signs leaves only, never another CA.
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign, KeyUsagePurpose::DigitalSignature];
    params
}

fn ca_common_name(key_fingerprint_hex: &str) -> String {
    format!("interlock ca {}", &key_fingerprint_hex[..16])
}

fn leaf_params(role: Role, name: &str, subject_alt_names: Vec<SanType>, validity: Validity) -> CertificateParams {
    let mut distinguished_name = DistinguishedName::new();
    distinguished_name.push(DnType::OrganizationalUnitName, role.as_str());
    distinguished_name.push(DnType::CommonName, name);
    let mut params = CertificateParams::default();
    params.distinguished_name = distinguished_name;
    params.subject_alt_names = subject_alt_names;
    params.is_ca = IsCa::ExplicitNoCa;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth, ExtendedKeyUsagePurpose::ClientAuth];
    params.use_authority_key_identifier_extension = true;
    params.not_before = validity.not_before;
    params.not_after = validity.not_after;
    params
}

fn parse_hosts(hosts: &[&str]) -> Result<Vec<SanType>> {
    if hosts.len() > HOSTS_MAX {
        return Err(IdentityError::TooManyHosts { found: hosts.len() });
    }
    hosts.iter().map(|host| parse_host(host)).collect()
}

fn parse_host(host: &str) -> Result<SanType> {
    let invalid = || IdentityError::InvalidHost { found: host.chars().take(80).collect() };
    if let Ok(address) = host.parse::<IpAddr>() {
        return Ok(SanType::IpAddress(address));
    }
    if !is_valid_host(host) {
        return Err(invalid());
    }
    Ok(SanType::DnsName(Ia5String::try_from(host).map_err(|_| invalid())?))
}

/// Whether `host` is an ip address or a syntactically valid dns name.
pub(crate) fn is_valid_host(host: &str) -> bool {
    host.parse::<IpAddr>().is_ok() || DnsName::try_from(host).is_ok()
}

/// Refuses a CA directory whose certificate was replaced or belongs to another key:
/// leaves signed with the key would name an issuer the certificate does not have.
fn check_certificate_matches_key(certificate: &CertificateDer<'_>, key: &KeyPair) -> Result<()> {
    let public_key = ca_public_key(certificate)?;
    if public_key.as_slice() != key.public_key_raw() {
        return Err(IdentityError::CaMismatch { problem: "the certificate holds a different public key".to_owned() });
    }
    let fingerprint = Hash32::sha256(&[key.public_key_raw()]).to_hex();
    let subject = certificate::subject_common_name(certificate)?;
    if subject != ca_common_name(&fingerprint) {
        return Err(IdentityError::CaMismatch {
            problem: format!("expected subject {:?}, found {subject:?}", ca_common_name(&fingerprint)),
        });
    }
    Ok(())
}

/// A certificate the CA just signed, with the private key generated for it.
pub struct IssuedCertificate {
    role: Role,
    name: String,
    certificate: CertificateDer<'static>,
    certificate_pem: String,
    key_pkcs8: Vec<u8>,
    key_pem: String,
}

/// Where [`IssuedCertificate::write`] put the two files.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct IssuedFiles {
    pub certificate: PathBuf,
    pub private_key: PathBuf,
}

impl IssuedCertificate {
    pub fn role(&self) -> Role {
        self.role
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn certificate(&self) -> &CertificateDer<'static> {
        &self.certificate
    }

    pub fn certificate_pem(&self) -> &str {
        &self.certificate_pem
    }

    /// The private key in the form rustls takes.
    pub fn private_key(&self) -> PrivateKeyDer<'static> {
        PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(self.key_pkcs8.clone()))
    }

    /// Writes `<name>.pem` (mode 0644) and `<name>.key` (mode 0600) into `directory`.
    /// Refuses to overwrite either file.
    pub fn write(&self, directory: &Path) -> Result<IssuedFiles> {
        let paths = IssuedFiles {
            certificate: directory.join(format!("{}.pem", self.name)),
            private_key: directory.join(format!("{}.key", self.name)),
        };
        if let Some(existing) = [&paths.certificate, &paths.private_key].into_iter().find(|path| path.exists()) {
            return Err(IdentityError::FileExists { path: existing.clone() });
        }
        files::write_new(&paths.private_key, self.key_pem.as_bytes(), PRIVATE_KEY_MODE)?;
        files::write_new(&paths.certificate, self.certificate_pem.as_bytes(), PUBLIC_FILE_MODE)?;
        Ok(paths)
    }
}

impl fmt::Debug for IssuedCertificate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IssuedCertificate")
            .field("role", &self.role)
            .field("name", &self.name)
            .field("private_key", &"[elided]")
            .finish_non_exhaustive()
    }
}
