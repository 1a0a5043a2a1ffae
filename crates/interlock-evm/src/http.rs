//! How the adapter reaches a node's JSON-RPC endpoint: `http://` for a local
//! node, `https://` over rustls with the ring provider chosen explicitly
//! (never a default picked by a dependency), trusting the system's roots or,
//! for a node behind a private CA, only that CA's certificates
//! (`EvmConfig::rpc_ca`).

use crate::error::EvmError;
use alloy::providers::{DynProvider, Provider, ProviderBuilder};
use std::path::Path;

/// Makes ring the process's rustls provider, once, before any HTTP client is
/// built (the HTTP stack is built without a provider of its own).
pub fn install_crypto_provider() {
    // Fails only when a provider is installed already, which is the goal.
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// An HTTP client for a node: `ca_file` (PEM, one or more certificates) is
/// then the only trust for `https://`; without it, the system's roots.
pub fn http_client(ca_file: Option<&Path>) -> Result<reqwest::Client, EvmError> {
    install_crypto_provider();
    let mut builder = reqwest::Client::builder();
    if let Some(path) = ca_file {
        let pem = std::fs::read(path)
            .map_err(|error| EvmError::Rpc(format!("cannot read the rpc CA file {}: {error}", path.display())))?;
        let certificates = reqwest::Certificate::from_pem_bundle(&pem)
            .map_err(|error| EvmError::Rpc(format!("{} holds no PEM certificate: {error}", path.display())))?;
        builder = builder.tls_certs_only(certificates);
    }
    builder.build().map_err(|error| EvmError::Rpc(format!("cannot build an HTTP client: {error}")))
}

/// The endpoint as a URL, or what is wrong with it.
pub fn endpoint_url(endpoint: &str) -> Result<reqwest::Url, EvmError> {
    endpoint.parse().map_err(|error| EvmError::Rpc(format!("invalid endpoint {endpoint}: {error}")))
}

/// A provider that reads (no signer) from `endpoint`.
pub fn read_only(endpoint: &str, ca_file: Option<&Path>) -> Result<DynProvider, EvmError> {
    let client = http_client(ca_file)?;
    Ok(ProviderBuilder::new().connect_reqwest(client, endpoint_url(endpoint)?).erased())
}
