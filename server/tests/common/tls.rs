//! TLS for the tests: a certificate made at test time (rcgen) for
//! `localhost` and `127.0.0.1`, written to files the server loads, and a
//! rustls client that trusts exactly that certificate.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, RootCertStore};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::timeout;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Error as WsError;

use super::{HttpResponse, WAIT, parse_response, tcp};

/// A WebSocket client over TLS.
pub type TlsClient = WebSocketStream<TlsStream<TcpStream>>;

/// A self-signed certificate and its key, as PEM files in a directory of
/// their own (removed on drop).
pub struct TestCert {
    pub dir: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
    /// The certificate, for a client to trust.
    pub der: CertificateDer<'static>,
}

impl TestCert {
    /// A new certificate in a new directory named after `name`.
    pub fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!(
            "duplex-test-tls-{name}-{}-{:?}",
            std::process::id(),
            std::time::SystemTime::now()
        ));
        std::fs::create_dir_all(&dir).expect("certificate directory");
        let cert = dir.join("cert.pem");
        let key = dir.join("key.pem");
        let der = write_pair(&cert, &key);
        Self {
            dir,
            cert,
            key,
            der,
        }
    }

    /// Replaces the files with a new certificate and key; returns the new
    /// certificate.
    pub fn renew(&self) -> CertificateDer<'static> {
        write_pair(&self.cert, &self.key)
    }

    /// The server's arguments for these files.
    pub fn args(&self) -> [String; 4] {
        [
            "--tls-cert".into(),
            self.cert.display().to_string(),
            "--tls-key".into(),
            self.key.display().to_string(),
        ]
    }
}

impl Drop for TestCert {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A fresh self-signed certificate for localhost and 127.0.0.1, written
/// to `cert` and `key` (PEM); returns it in DER.
fn write_pair(cert: &PathBuf, key: &PathBuf) -> CertificateDer<'static> {
    let made =
        rcgen::generate_simple_self_signed(vec!["localhost".to_string(), "127.0.0.1".to_string()])
            .expect("generate a certificate");
    // Written under other names and renamed, so a server reloading at any
    // moment never reads half a file.
    let cert_tmp = cert.with_extension("tmp");
    let key_tmp = key.with_extension("tmp");
    std::fs::write(&cert_tmp, made.cert.pem()).expect("write certificate");
    std::fs::write(&key_tmp, made.signing_key.serialize_pem()).expect("write key");
    std::fs::rename(&key_tmp, key).expect("rename key");
    std::fs::rename(&cert_tmp, cert).expect("rename certificate");
    made.cert.der().clone()
}

/// A client configuration that trusts only `roots`.
pub fn client_config(roots: &[CertificateDer<'static>]) -> Arc<ClientConfig> {
    let mut store = RootCertStore::empty();
    for root in roots {
        store.add(root.clone()).expect("trust the test certificate");
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("protocol versions")
        .with_root_certificates(store)
        .with_no_client_auth();
    Arc::new(config)
}

/// A TLS connection to `addr` (as `localhost`), trusting `roots`, within
/// [`WAIT`]; the handshake's error if it fails.
pub async fn try_tls(
    addr: SocketAddr,
    roots: &[CertificateDer<'static>],
) -> std::io::Result<TlsStream<TcpStream>> {
    let connector = TlsConnector::from(client_config(roots));
    let name = ServerName::try_from("localhost").expect("server name");
    timeout(WAIT, connector.connect(name, tcp(addr).await))
        .await
        .expect("TLS handshake timed out")
}

/// A TLS connection that must succeed.
pub async fn tls(addr: SocketAddr, roots: &[CertificateDer<'static>]) -> TlsStream<TcpStream> {
    try_tls(addr, roots).await.expect("TLS handshake")
}

/// The certificate the server presents now.
pub async fn presented(
    addr: SocketAddr,
    roots: &[CertificateDer<'static>],
) -> CertificateDer<'static> {
    let stream = tls(addr, roots).await;
    let (_, session) = stream.get_ref();
    session
        .peer_certificates()
        .and_then(|chain| chain.first())
        .expect("a certificate")
        .clone()
        .into_owned()
}

/// A WebSocket handshake over TLS to `wss://localhost:PORT{path}`.
pub async fn try_wss(
    addr: SocketAddr,
    path: &str,
    roots: &[CertificateDer<'static>],
) -> Result<TlsClient, WsError> {
    let stream = tls(addr, roots).await;
    let url = format!("wss://localhost:{}{path}", addr.port());
    let (ws, _response) = timeout(WAIT, tokio_tungstenite::client_async(url, stream))
        .await
        .expect("WebSocket handshake timed out")?;
    Ok(ws)
}

/// A WebSocket connection over TLS that must succeed.
pub async fn wss(addr: SocketAddr, path: &str, roots: &[CertificateDer<'static>]) -> TlsClient {
    try_wss(addr, path, roots)
        .await
        .unwrap_or_else(|error| panic!("wss handshake to {path} failed: {error}"))
}

/// `GET path` over TLS with `Connection: close`; the whole response.
pub async fn https_get(
    addr: SocketAddr,
    path: &str,
    roots: &[CertificateDer<'static>],
) -> HttpResponse {
    let mut stream = tls(addr, roots).await;
    let request = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
    stream
        .write_all(request.as_bytes())
        .await
        .expect("write request");
    let mut raw = Vec::new();
    // The server may end with a close_notify or just a FIN: both are the
    // end of the response here.
    let _ = timeout(WAIT, stream.read_to_end(&mut raw))
        .await
        .expect("no response within the wait");
    parse_response(&raw)
}
