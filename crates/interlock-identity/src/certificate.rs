//! Reading certificates: PEM files for rustls, and the identity a peer's
//! certificate states.

use crate::error::{IdentityError, Result};
use crate::files;
use crate::role::{validate_name, Role};
use interlock_core::Hash32;
use rustls_pki_types::pem::PemObject as _;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use std::path::Path;
use time::OffsetDateTime;
use x509_parser::certificate::X509Certificate;
use x509_parser::oid_registry::OID_KEY_TYPE_EC_PUBLIC_KEY;
use x509_parser::x509::{AttributeTypeAndValue, X509Name};

/// Most certificates a PEM chain file may hold: a leaf and its CA, with room to spare.
pub const CHAIN_LEN_MAX: usize = 4;

/// Who is on the other end of a mutually authenticated connection, as its
/// certificate states it. Parsing does not check the signature: the TLS handshake
/// already chained the certificate to the CA before a server gets to see it.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct PeerIdentity {
    pub role: Role,
    pub name: String,
    pub not_before: OffsetDateTime,
    pub not_after: OffsetDateTime,
    /// sha256 of the certificate's DER encoding.
    pub fingerprint: Hash32,
}

impl PeerIdentity {
    /// Reads role (subject organizationalUnitName), name (subject commonName),
    /// validity and fingerprint from a certificate this crate's CA issued.
    pub fn from_certificate(certificate: &CertificateDer<'_>) -> Result<PeerIdentity> {
        let parsed = parse(certificate)?;
        let subject = parsed.subject();
        let role: Role = single_attribute(subject.iter_organizational_unit(), "organizationalUnitName")?.parse()?;
        let name = single_attribute(subject.iter_common_name(), "commonName")?;
        validate_name(name)?;
        Ok(PeerIdentity {
            role,
            name: name.to_owned(),
            not_before: parsed.validity().not_before.to_datetime(),
            not_after: parsed.validity().not_after.to_datetime(),
            fingerprint: Hash32::sha256(&[certificate.as_ref()]),
        })
    }

    /// The identity of a connection's peer from what rustls reports after the
    /// handshake (`peer_certificates()`): the first certificate is the peer's own.
    pub fn from_peer_certificates(certificates: Option<&[CertificateDer<'_>]>) -> Result<PeerIdentity> {
        match certificates.and_then(|chain| chain.first()) {
            Some(leaf) => PeerIdentity::from_certificate(leaf),
            None => Err(IdentityError::NoPeerCertificate),
        }
    }
}

/// Reads the first certificate of a PEM file.
pub fn load_certificate(path: &Path) -> Result<CertificateDer<'static>> {
    let bytes = files::read(path)?;
    CertificateDer::from_pem_slice(&bytes).map_err(|error| pem_error(path, "certificate", error))
}

/// Reads every certificate of a PEM file, leaf first; refuses an empty file and one
/// of more than [`CHAIN_LEN_MAX`] certificates.
pub fn load_certificate_chain(path: &Path) -> Result<Vec<CertificateDer<'static>>> {
    let bytes = files::read(path)?;
    let chain = CertificateDer::pem_slice_iter(&bytes)
        .take(CHAIN_LEN_MAX + 1)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|error| pem_error(path, "certificate", error))?;
    if chain.is_empty() || chain.len() > CHAIN_LEN_MAX {
        let detail = format!("expected 1 to {CHAIN_LEN_MAX} certificates, found {}", chain.len());
        return Err(IdentityError::Pem { path: path.to_owned(), expected: "certificate chain", detail });
    }
    Ok(chain)
}

/// Reads a PEM private key (PKCS#8, as this crate writes them) for rustls.
pub fn load_private_key(path: &Path) -> Result<PrivateKeyDer<'static>> {
    let bytes = files::read(path)?;
    PrivateKeyDer::from_pem_slice(&bytes).map_err(|error| pem_error(path, "private key", error))
}

/// The raw EC public key (an uncompressed P-256 point) of a CA certificate: what
/// verifies directory signatures.
pub(crate) fn ca_public_key(certificate: &CertificateDer<'_>) -> Result<Vec<u8>> {
    let parsed = parse(certificate)?;
    let spki = parsed.public_key();
    if spki.algorithm.algorithm != OID_KEY_TYPE_EC_PUBLIC_KEY {
        return Err(IdentityError::CaCertificateKey { found: format!("algorithm {}", spki.algorithm.algorithm) });
    }
    let key = spki.subject_public_key.data.to_vec();
    if key.len() != 65 || key[0] != 4 {
        return Err(IdentityError::CaCertificateKey { found: format!("{} key bytes", key.len()) });
    }
    Ok(key)
}

/// The commonName of a subject that has nothing else: the shape of a CA subject.
pub(crate) fn subject_common_name(certificate: &CertificateDer<'_>) -> Result<String> {
    let parsed = parse(certificate)?;
    let subject: &X509Name<'_> = parsed.subject();
    let attributes = subject.iter_attributes().count();
    if attributes != 1 {
        let problem = format!("expected a subject of one commonName, found {attributes} attributes");
        return Err(IdentityError::CaMismatch { problem });
    }
    Ok(single_attribute(subject.iter_common_name(), "commonName")?.to_owned())
}

fn parse<'a>(certificate: &'a CertificateDer<'_>) -> Result<X509Certificate<'a>> {
    let (rest, parsed) = x509_parser::parse_x509_certificate(certificate.as_ref())
        .map_err(|error| IdentityError::CertificateParse { detail: error.to_string() })?;
    if !rest.is_empty() {
        return Err(IdentityError::CertificateParse { detail: format!("{} bytes after the certificate", rest.len()) });
    }
    Ok(parsed)
}

fn single_attribute<'a, 'b: 'a>(
    values: impl Iterator<Item = &'a AttributeTypeAndValue<'b>>,
    attribute: &'static str,
) -> Result<&'a str> {
    let values: Vec<_> = values.collect();
    let [value] = values[..] else {
        return Err(IdentityError::SubjectAttribute { attribute, found: values.len() });
    };
    value.as_str().map_err(|_| IdentityError::SubjectEncoding { attribute })
}

fn pem_error(path: &Path, expected: &'static str, error: rustls_pki_types::pem::Error) -> IdentityError {
    IdentityError::Pem { path: path.to_owned(), expected, detail: error.to_string() }
}
