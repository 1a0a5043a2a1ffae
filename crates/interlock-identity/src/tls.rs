//! Mutual-TLS configurations. Both sides trust exactly one root, the Interlock CA;
//! both present a certificate it issued. TLS 1.3 only: every Interlock service is
//! built from this crate, so there is no older peer to accommodate.
//!
//! The crypto provider is always rustls' `ring` provider, passed explicitly, so the
//! result never depends on which provider some other crate installed as the
//! process default.

use crate::certificate::{load_certificate, load_certificate_chain, load_private_key};
use crate::error::Result;
use rustls::crypto::CryptoProvider;
use rustls::server::WebPkiClientVerifier;
use rustls::{ClientConfig, RootCertStore, ServerConfig};
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use std::path::Path;
use std::sync::Arc;

static PROTOCOL_VERSIONS: &[&rustls::SupportedProtocolVersion] = &[&rustls::version::TLS13];

/// rustls' `ring` provider, the one every configuration here uses.
pub fn crypto_provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Makes ring the process's default rustls provider, for the HTTP clients
/// (webhooks, JSON-RPC) whose TLS stack comes without one; a no-op once set.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// A server configuration that completes a handshake only with a client presenting a
/// certificate that chains to `ca_certificate`, is within its validity and allows
/// client authentication. Who the client is, and whether the directory lists it, is
/// for the server to check afterwards ([`crate::PeerIdentity`], [`crate::authorise`]).
pub fn server_config(
    ca_certificate: &CertificateDer<'static>,
    own_certificate_chain: Vec<CertificateDer<'static>>,
    own_private_key: PrivateKeyDer<'static>,
) -> Result<ServerConfig> {
    let provider = crypto_provider();
    let verifier = WebPkiClientVerifier::builder_with_provider(roots(ca_certificate)?, provider.clone()).build()?;
    let config = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(PROTOCOL_VERSIONS)?
        .with_client_cert_verifier(verifier)
        .with_single_cert(own_certificate_chain, own_private_key)?;
    Ok(config)
}

/// A client configuration that trusts only servers whose certificate chains to
/// `ca_certificate` and names the host it connects to, and presents its own
/// certificate for the server to check.
pub fn client_config(
    ca_certificate: &CertificateDer<'static>,
    own_certificate_chain: Vec<CertificateDer<'static>>,
    own_private_key: PrivateKeyDer<'static>,
) -> Result<ClientConfig> {
    let config = ClientConfig::builder_with_provider(crypto_provider())
        .with_protocol_versions(PROTOCOL_VERSIONS)?
        .with_root_certificates(roots(ca_certificate)?)
        .with_client_auth_cert(own_certificate_chain, own_private_key)?;
    Ok(config)
}

/// [`server_config`] from PEM files: the CA certificate, the server's certificate
/// chain (leaf first) and its private key.
pub fn server_config_from_files(
    ca_certificate: &Path,
    certificate_chain: &Path,
    private_key: &Path,
) -> Result<ServerConfig> {
    server_config(
        &load_certificate(ca_certificate)?,
        load_certificate_chain(certificate_chain)?,
        load_private_key(private_key)?,
    )
}

/// [`client_config`] from PEM files, as [`server_config_from_files`].
pub fn client_config_from_files(
    ca_certificate: &Path,
    certificate_chain: &Path,
    private_key: &Path,
) -> Result<ClientConfig> {
    client_config(
        &load_certificate(ca_certificate)?,
        load_certificate_chain(certificate_chain)?,
        load_private_key(private_key)?,
    )
}

fn roots(ca_certificate: &CertificateDer<'static>) -> Result<Arc<RootCertStore>> {
    let mut roots = RootCertStore::empty();
    roots.add(ca_certificate.clone())?;
    Ok(Arc::new(roots))
}
