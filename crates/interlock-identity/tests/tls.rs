//! Real mutual-TLS handshakes over loopback TCP, one thread per side.

mod common;

use common::{expired, valid, Pki};
use interlock_identity::{
    client_config, client_config_from_files, crypto_provider, server_config, server_config_from_files,
    CertificateAuthority, IdentityError, IssuedCertificate, PeerIdentity, Role,
};
use rustls::{ClientConfig, ClientConnection, ServerConfig, ServerConnection, StreamOwned};
use rustls_pki_types::ServerName;
use std::io::{Read as _, Write as _};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

const MESSAGE: &[u8] = b"hello interlock";
/// Long enough for a slow machine, short enough that a hung handshake fails the test.
const SOCKET_TIMEOUT: Duration = Duration::from_secs(10);

/// What each side saw: the server the client's identity (or its error), the client
/// the echoed bytes (or its error).
struct Outcome {
    server: Result<PeerIdentity, String>,
    client: Result<Vec<u8>, String>,
}

/// Runs one connection: the client sends [`MESSAGE`], the server reads it, records
/// who sent it and echoes it back.
fn handshake(server: ServerConfig, client: ClientConfig) -> Outcome {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap();
    let server_thread = thread::spawn(move || serve_once(&listener, server));
    let client = call(TcpStream::connect(address).unwrap(), client);
    let server = server_thread.join().expect("server thread");
    Outcome { server, client }
}

fn serve_once(listener: &TcpListener, config: ServerConfig) -> Result<PeerIdentity, String> {
    let (socket, _) = listener.accept().unwrap();
    socket.set_read_timeout(Some(SOCKET_TIMEOUT)).unwrap();
    let connection = ServerConnection::new(Arc::new(config)).unwrap();
    let mut stream = StreamOwned::new(connection, socket);
    let mut received = vec![0; MESSAGE.len()];
    stream.read_exact(&mut received).map_err(|error| error.to_string())?;
    let peer = PeerIdentity::from_peer_certificates(stream.conn.peer_certificates()).map_err(|e| e.to_string())?;
    stream.write_all(&received).map_err(|error| error.to_string())?;
    stream.flush().map_err(|error| error.to_string())?;
    stream.conn.send_close_notify();
    stream.flush().map_err(|error| error.to_string())?;
    Ok(peer)
}

fn call(socket: TcpStream, config: ClientConfig) -> Result<Vec<u8>, String> {
    socket.set_read_timeout(Some(SOCKET_TIMEOUT)).unwrap();
    let name = ServerName::try_from("localhost").unwrap();
    let connection = ClientConnection::new(Arc::new(config), name).unwrap();
    let mut stream = StreamOwned::new(connection, socket);
    stream.write_all(MESSAGE).map_err(|error| error.to_string())?;
    stream.flush().map_err(|error| error.to_string())?;
    let mut echoed = vec![0; MESSAGE.len()];
    stream.read_exact(&mut echoed).map_err(|error| error.to_string())?;
    Ok(echoed)
}

fn server_of(pki: &Pki, issued: &IssuedCertificate) -> ServerConfig {
    server_config(pki.ca.certificate(), vec![issued.certificate().clone()], issued.private_key()).unwrap()
}

fn client_of(pki: &Pki, issued: &IssuedCertificate) -> ClientConfig {
    client_config(pki.ca.certificate(), vec![issued.certificate().clone()], issued.private_key()).unwrap()
}

/// A client that trusts `pki`'s CA but presents no certificate.
fn anonymous_client(pki: &Pki) -> ClientConfig {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(pki.ca.certificate().clone()).unwrap();
    ClientConfig::builder_with_provider(crypto_provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth()
}

enum Expected {
    /// The server saw this caller and the client got its bytes back.
    Accepted(Role, &'static str),
    /// Both sides failed; the server's error contains this.
    Refused(&'static str),
}

fn check(case: &str, server: ServerConfig, client: ClientConfig, expected: Expected) {
    let outcome = handshake(server, client);
    match expected {
        Expected::Accepted(role, name) => {
            let peer = outcome.server.unwrap_or_else(|error| panic!("{case}: server failed: {error}"));
            assert_eq!((peer.role, peer.name.as_str()), (role, name), "{case}");
            assert_eq!(outcome.client.as_deref(), Ok(MESSAGE), "{case}");
        }
        Expected::Refused(server_error) => {
            let error = outcome.server.expect_err(case);
            assert!(error.contains(server_error), "{case}: server error {error:?}, expected {server_error:?}");
            assert!(outcome.client.is_err(), "{case}: the client got an answer");
        }
    }
}

#[test]
fn handshake_accepts_ca_issued_clients_and_refuses_the_rest() {
    let pki = Pki::new();
    let other = Pki::new();
    let server = pki.server("gw-alpha");
    let alice = pki.issue(Role::Party, "alice", &[], valid());
    let agent = pki.issue(Role::Agent, "bob", &[], valid());
    let expired_alice = pki.issue(Role::Party, "alice", &[], expired());
    // Same role and name as alice, signed by another CA; the client trusts the right CA.
    let stranger = other.issue(Role::Party, "alice", &[], valid());
    // A client whose chain is right but that trusts another CA refuses the server.
    let misled = client_config(other.ca.certificate(), vec![alice.certificate().clone()], alice.private_key()).unwrap();

    let cases = [
        ("ca-issued party", client_of(&pki, &alice), Expected::Accepted(Role::Party, "alice")),
        ("ca-issued agent", client_of(&pki, &agent), Expected::Accepted(Role::Agent, "bob")),
        ("client from another ca", client_of(&pki, &stranger), Expected::Refused("UnknownIssuer")),
        ("no client certificate", anonymous_client(&pki), Expected::Refused("peer sent no certificates")),
        ("expired client certificate", client_of(&pki, &expired_alice), Expected::Refused("certificate expired")),
        ("client trusts another ca", misled, Expected::Refused("UnknownCA")),
    ];
    for (case, client, expected) in cases {
        check(case, server_of(&pki, &server), client, expected);
    }
}

#[test]
fn configs_load_from_pem_files_and_a_reopened_ca_issues_trusted_leaves() {
    let pki = Pki::new();
    let out = pki.dir.path().join("out");
    std::fs::create_dir(&out).unwrap();
    let server = pki.server("gw-beta").write(&out).unwrap();
    // Issued by the CA reopened from disk: its leaves must chain to the same certificate.
    let reopened = CertificateAuthority::load(&pki.dir.path().join("ca")).unwrap();
    let client = reopened.issue(Role::Notary, "notary-1", &[], valid()).unwrap().write(&out).unwrap();
    let ca = pki.ca.certificate_path();

    let server_config = server_config_from_files(&ca, &server.certificate, &server.private_key).unwrap();
    let client_config = client_config_from_files(&ca, &client.certificate, &client.private_key).unwrap();
    check("from files", server_config, client_config, Expected::Accepted(Role::Notary, "notary-1"));

    let error = server_config_from_files(&ca, &server.private_key, &server.private_key).unwrap_err();
    assert!(matches!(error, IdentityError::Pem { expected: "certificate chain", .. }), "{error}");
}
