//! JSON-RPC over `https://`: a node behind TLS (here a TLS terminator in front
//! of anvil, with a certificate from a private CA) is reached when the
//! network's `rpc_ca` names that CA, and refused when nothing trusts it.

use interlock_chain::{Credentials, Cursor, Platform};
use interlock_core::NetworkId;
use interlock_evm::alloy::providers::Provider as _;
use interlock_identity::{CertificateAuthority, Role, Validity};
use std::path::Path;
use std::sync::Arc;

/// Accepts TLS on a loopback port and forwards the plain bytes to `upstream`.
async fn tls_terminator(dir: &Path, upstream: String) -> u16 {
    let ca = CertificateAuthority::init(&dir.join("ca")).unwrap();
    let valid = Validity::days_from(time::OffsetDateTime::now_utc() - time::Duration::minutes(5), 1);
    let files = ca.issue(Role::Ledger, "rpc", &["localhost"], valid).unwrap().write(dir).unwrap();
    let chain = interlock_identity::load_certificate_chain(&files.certificate).unwrap();
    let key = interlock_identity::load_private_key(&files.private_key).unwrap();
    let config = rustls::ServerConfig::builder_with_provider(interlock_identity::crypto_provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let upstream = upstream.trim_start_matches("http://").to_owned();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let (acceptor, upstream) = (acceptor.clone(), upstream.clone());
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(stream).await else { return };
                let Ok(mut node) = tokio::net::TcpStream::connect(&upstream).await else { return };
                let _ = tokio::io::copy_bidirectional(&mut tls, &mut node).await;
            });
        }
    });
    port
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_https_node_is_reached_through_its_ca_and_refused_without_it() {
    let devnet = interlock_evm::devnet::Devnet::start(1).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let port = tls_terminator(dir.path(), devnet.anvil.endpoint().to_owned()).await;
    let url = format!("https://localhost:{port}");
    let ca_file = dir.path().join("ca").join(interlock_identity::CA_CERTIFICATE_FILE);

    let trusted = interlock_evm::http::read_only(&url, Some(&ca_file)).unwrap();
    let head = trusted.get_block_number().await.expect("the node answers over TLS");
    assert_eq!(head, devnet.provider.get_block_number().await.unwrap());

    let untrusted = interlock_evm::http::read_only(&url, None).unwrap();
    let refused = untrusted.get_block_number().await.expect_err("no root trusts a private CA");
    assert!(
        refused.to_string().to_lowercase().contains("certificate") || refused.to_string().contains("error sending"),
        "{refused}"
    );

    // The platform follows the same node through a directory entry that names the CA.
    let config = serde_json::json!({
        "rpc": url,
        "rpc_ca": ca_file.display().to_string(),
        "escrow": devnet.escrow.address().to_string(),
        "confirmations": 1,
        "assets": {},
        "deploy_height": devnet.escrow.deploy_height().unwrap_or(0),
    });
    let platform = interlock_evm::EvmPlatform;
    let from: Cursor = platform.first_cursor(NetworkId(2), &config).unwrap();
    let mut follower = platform.follower(NetworkId(2), &config, &Credentials::default(), from).await.unwrap();
    let delivered = follower.poll().await.expect("the follower reads over TLS");
    assert!(!delivered.is_empty(), "the first poll delivers the blocks since the deployment");
}
