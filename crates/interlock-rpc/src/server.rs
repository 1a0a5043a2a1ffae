//! Serving a service over gRPC with mutual TLS, health and reflection.
//!
//! The TLS handshake refuses a caller without a certificate, with one from
//! another CA, or with an expired one. After it, every call passes the
//! [`Access`] checks (`crate::access`): the CA-signed directory lists the
//! caller, and the authorisation matrix lets its role call the method.
//!
//! A role serves its gRPC service with [`serve_with`], or, when it has more
//! than one, adds them to a [`base_router`] and serves that with
//! [`serve_router`].

use crate::access::Access;
use interlock_identity::Directory;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use tokio::net::TcpListener;
use tokio_stream::wrappers::TcpListenerStream;
use tokio_stream::StreamExt as _;
use tonic::transport::{Certificate, Identity, Server, ServerTlsConfig};

/// Largest message a service accepts or sends, in bytes.
pub const MESSAGE_LEN_MAX: usize = 4 << 20;

/// Where a service finds its TLS material.
#[derive(Clone, Debug)]
pub struct TlsFiles {
    pub ca_certificate: PathBuf,
    pub certificate: PathBuf,
    pub private_key: PathBuf,
}

impl TlsFiles {
    /// The CA certificate `ca.pem` and `<name>.pem` / `<name>.key`, all in `dir`.
    pub fn in_dir(dir: &Path, name: &str) -> TlsFiles {
        TlsFiles {
            ca_certificate: dir.join(interlock_identity::CA_CERTIFICATE_FILE),
            certificate: dir.join(format!("{name}.pem")),
            private_key: dir.join(format!("{name}.key")),
        }
    }

    fn read(path: &Path) -> Result<Vec<u8>, ServeError> {
        std::fs::read(path).map_err(|source| ServeError::Read { path: path.to_owned(), source })
    }

    pub fn server_config(&self) -> Result<ServerTlsConfig, ServeError> {
        let identity = Identity::from_pem(Self::read(&self.certificate)?, Self::read(&self.private_key)?);
        let ca = Certificate::from_pem(Self::read(&self.ca_certificate)?);
        Ok(ServerTlsConfig::new().identity(identity).client_ca_root(ca))
    }

    pub fn client_config(&self, server_name: &str) -> Result<tonic::transport::ClientTlsConfig, ServeError> {
        let identity = Identity::from_pem(Self::read(&self.certificate)?, Self::read(&self.private_key)?);
        let ca = Certificate::from_pem(Self::read(&self.ca_certificate)?);
        Ok(tonic::transport::ClientTlsConfig::new().domain_name(server_name).ca_certificate(ca).identity(identity))
    }
}

/// A service's own files: its certificate and key (`<name>.pem` /
/// `<name>.key`) with the CA's `ca.pem`, all in `tls_dir`, and the CA-signed
/// directory that says whom it deals with.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServiceFiles {
    pub tls_dir: PathBuf,
    /// The service's name, as its certificate and the directory state it.
    pub name: String,
    pub directory: PathBuf,
}

impl ServiceFiles {
    pub fn tls(&self) -> TlsFiles {
        TlsFiles::in_dir(&self.tls_dir, &self.name)
    }

    /// The directory, once the CA's signature on it is checked.
    pub fn directory(&self) -> interlock_identity::Result<Directory> {
        let ca = interlock_identity::load_certificate(&self.tls().ca_certificate)?;
        interlock_identity::SignedDirectory::load_verified(&self.directory, &ca)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("cannot read {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("invalid TLS configuration: {0}")]
    Tls(#[from] tonic::transport::Error),
    #[error("invalid endpoint {endpoint:?}: {reason}")]
    Endpoint { endpoint: String, reason: String },
    #[error("cannot build the reflection service: {0}")]
    Reflection(#[from] tonic_reflection::server::Error),
}

/// A server with mutual TLS, gRPC health and reflection (v1 and v1alpha), every
/// service behind `access`; add the role's own services to it, each through
/// [`Access::guard`].
pub fn base_router<H: tonic_health::pb::health_server::Health>(
    tls: &TlsFiles,
    access: &Access,
    health: tonic_health::pb::health_server::HealthServer<H>,
) -> Result<tonic::transport::server::Router, ServeError> {
    // Both reflection versions: generic clients in the wild still ask v1alpha.
    let reflection = || {
        tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(interlock_proto::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
    };
    Ok(Server::builder()
        .tls_config(tls.server_config()?)?
        .add_service(access.guard(health))
        .add_service(access.guard(reflection().build_v1()?))
        .add_service(access.guard(reflection().build_v1alpha()?)))
}

/// Serves `service` behind `access` (with health and reflection) on
/// `listener` until `shutdown` resolves.
pub async fn serve_with<S>(
    service: S,
    tls: &TlsFiles,
    access: Access,
    listener: TcpListener,
    shutdown: impl std::future::Future<Output = ()> + Send,
) -> Result<(), ServeError>
where
    // A role's generated gRPC server, as tonic serves it.
    S: tonic::server::NamedService
        + tonic::codegen::Service<
            tonic::codegen::http::Request<tonic::body::Body>,
            Response = tonic::codegen::http::Response<tonic::body::Body>,
            Error = std::convert::Infallible,
            Future: Send + 'static,
        > + Clone
        + Send
        + Sync
        + 'static,
{
    let (health, health_service) = tonic_health::server::health_reporter();
    health.set_serving::<S>().await;
    let router = base_router(tls, &access, health_service)?.add_service(access.guard(service));
    serve_router(router, listener, shutdown).await
}

/// Serves `router` (a [`base_router`] with the role's services added) on
/// `listener` until `shutdown` resolves.
pub async fn serve_router(
    router: tonic::transport::server::Router,
    listener: TcpListener,
    shutdown: impl std::future::Future<Output = ()> + Send,
) -> Result<(), ServeError> {
    // Tonic sets TCP_NODELAY only on the listeners it binds itself; without
    // it, Nagle's algorithm holds each small response back until the peer's
    // delayed acknowledgement (about 40 ms a round trip on loopback).
    let incoming = TcpListenerStream::new(listener).map(|accepted| {
        if let Ok(stream) = &accepted {
            let _ = stream.set_nodelay(true);
        }
        accepted
    });
    router.serve_with_incoming_shutdown(incoming, shutdown).await?;
    Ok(())
}

/// A channel to another service at `endpoint` (`host:port`, as the directory
/// lists it) with this service's certificate, connecting on first use and
/// again after a failure. An IP address is checked against the `localhost`
/// name the CA's certificates carry for loopback services.
pub fn lazy_channel(endpoint: &str, tls: &TlsFiles) -> Result<tonic::transport::Channel, ServeError> {
    let host = endpoint.rsplit_once(':').map_or("localhost", |(host, _)| host);
    let server_name =
        if host.trim_matches(['[', ']']).parse::<std::net::IpAddr>().is_ok() { "localhost" } else { host };
    let channel = tonic::transport::Channel::from_shared(format!("https://{endpoint}"))
        .map_err(|error| ServeError::Endpoint { endpoint: endpoint.to_owned(), reason: error.to_string() })?
        .connect_timeout(std::time::Duration::from_secs(5))
        .tls_config(tls.client_config(server_name)?)?
        .connect_lazy();
    Ok(channel)
}

/// Binds `address` (port 0 picks a free one) and returns the listener with the
/// address it got.
pub async fn bind(address: SocketAddr) -> std::io::Result<(TcpListener, SocketAddr)> {
    let listener = TcpListener::bind(address).await?;
    let local = listener.local_addr()?;
    Ok((listener, local))
}
