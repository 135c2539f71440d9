//! TLS on the listener (`--tls-cert`, `--tls-key`): rustls with the ring
//! provider, one acceptor for the server's life, and a certificate that
//! [`Tls::reload`] replaces (on SIGHUP) without touching open connections.
//!
//! The acceptor asks a resolver of our own for the certificate at every
//! handshake, so a reload is one pointer swap: handshakes after it present
//! the new certificate, connections already open keep the session they
//! agreed. A reload that cannot read or parse the files, or whose key does
//! not match its certificate, changes nothing.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use rustls::ServerConfig;
use rustls::crypto::CryptoProvider;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::TlsAcceptor;

/// Why a certificate or key could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// The certificate file holds no PEM certificate, or a broken one.
    #[error("{path}: no PEM certificate in it ({reason})")]
    Certificate {
        /// The file.
        path: PathBuf,
        /// What the PEM parser said.
        reason: String,
    },
    /// The key file holds no PEM private key (PKCS#8, PKCS#1 or SEC1), or
    /// a broken one.
    #[error("{path}: no PEM private key in it ({reason})")]
    Key {
        /// The file.
        path: PathBuf,
        /// What the PEM parser said.
        reason: String,
    },
    /// rustls refused the pair: an unsupported key type, or a key that
    /// does not belong to the certificate.
    #[error("the key in {key} does not fit the certificate in {cert}: {source}")]
    Mismatch {
        /// The certificate file.
        cert: PathBuf,
        /// The key file.
        key: PathBuf,
        /// What rustls said.
        source: rustls::Error,
    },
    /// rustls refused the configuration (not expected with the ring
    /// provider's defaults).
    #[error("TLS configuration: {0}")]
    Config(#[source] rustls::Error),
}

/// The listener's TLS: an acceptor, and the files to reload it from.
pub(crate) struct Tls {
    acceptor: TlsAcceptor,
    resolver: Arc<Reloadable>,
    cert: PathBuf,
    key: PathBuf,
}

impl Tls {
    /// Loads the certificate chain and key (PEM) and builds the acceptor.
    ///
    /// # Errors
    /// A file that cannot be read or parsed, or a key that does not match
    /// the certificate.
    pub(crate) fn load(cert: &Path, key: &Path) -> Result<Self, TlsError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let resolver = Arc::new(Reloadable {
            current: RwLock::new(Arc::new(certified_key(cert, key, &provider)?)),
            provider: Arc::clone(&provider),
        });
        let mut config = ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(TlsError::Config)?
            .with_no_client_auth()
            .with_cert_resolver(Arc::clone(&resolver) as Arc<dyn ResolvesServerCert>);
        // Only HTTP/1.1 is served (WebSocket handshakes are HTTP/1.1): a
        // browser that offers h2 for a page is told so in the handshake.
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Self {
            acceptor: TlsAcceptor::from(Arc::new(config)),
            resolver,
            cert: cert.to_path_buf(),
            key: key.to_path_buf(),
        })
    }

    /// Reads both files again; from the next handshake on, the server
    /// presents what they hold now. On any error the certificate in use is
    /// kept.
    ///
    /// # Errors
    /// As [`Tls::load`]; nothing changed.
    pub(crate) fn reload(&self) -> Result<(), TlsError> {
        let fresh = certified_key(&self.cert, &self.key, &self.resolver.provider)?;
        *self
            .resolver
            .current
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Arc::new(fresh);
        Ok(())
    }

    /// The acceptor every connection's handshake goes through.
    pub(crate) fn acceptor(&self) -> &TlsAcceptor {
        &self.acceptor
    }

    /// The certificate file, for the logs.
    pub(crate) fn cert_path(&self) -> &Path {
        &self.cert
    }
}

impl std::fmt::Debug for Tls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tls")
            .field("cert", &self.cert)
            .field("key", &self.key)
            .finish_non_exhaustive()
    }
}

/// The certificate every handshake gets, replaceable at any time.
#[derive(Debug)]
struct Reloadable {
    current: RwLock<Arc<CertifiedKey>>,
    provider: Arc<CryptoProvider>,
}

impl ResolvesServerCert for Reloadable {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let current = self
            .current
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        Some(Arc::clone(&current))
    }
}

/// The chain in `cert` and the key in `key`, checked to belong together.
fn certified_key(
    cert: &Path,
    key: &Path,
    provider: &CryptoProvider,
) -> Result<CertifiedKey, TlsError> {
    let read = |path: &Path| {
        std::fs::read(path).map_err(|source| TlsError::Read {
            path: path.to_path_buf(),
            source,
        })
    };
    let chain = CertificateDer::pem_slice_iter(&read(cert)?)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|error| TlsError::Certificate {
            path: cert.to_path_buf(),
            reason: error.to_string(),
        })?;
    if chain.is_empty() {
        return Err(TlsError::Certificate {
            path: cert.to_path_buf(),
            reason: "the file has no CERTIFICATE block".into(),
        });
    }
    let private = PrivateKeyDer::from_pem_slice(&read(key)?).map_err(|error| TlsError::Key {
        path: key.to_path_buf(),
        reason: error.to_string(),
    })?;
    CertifiedKey::from_der(chain, private, provider).map_err(|source| TlsError::Mismatch {
        cert: cert.to_path_buf(),
        key: key.to_path_buf(),
        source,
    })
}

/// Whether the first byte a client sent can start a TLS handshake (a
/// handshake record, RFC 8446 §5.1). Anything else on a TLS port is a
/// client speaking plain HTTP or WebSocket to it.
pub(crate) fn starts_handshake(first: u8) -> bool {
    first == 0x16
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write_pair(dir: &Path, name: &str) -> (PathBuf, PathBuf) {
        let made =
            rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).expect("certificate");
        let cert = dir.join(format!("{name}.crt"));
        let key = dir.join(format!("{name}.key"));
        std::fs::write(&cert, made.cert.pem()).expect("write cert");
        std::fs::write(&key, made.signing_key.serialize_pem()).expect("write key");
        (cert, key)
    }

    fn temp_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("duplex-tls-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        dir
    }

    fn presented(tls: &Tls) -> Vec<u8> {
        let current = tls.resolver.current.read().expect("lock");
        current.cert[0].to_vec()
    }

    #[test]
    fn a_reload_swaps_the_certificate_and_a_bad_one_keeps_the_old() {
        let dir = temp_dir("reload");
        let (cert, key) = write_pair(&dir, "live");
        let tls = Tls::load(&cert, &key).expect("load");
        let first = presented(&tls);

        let (other_cert, other_key) = write_pair(&dir, "other");
        std::fs::copy(&other_cert, &cert).expect("copy");
        std::fs::copy(&other_key, &key).expect("copy");
        tls.reload().expect("reload");
        let second = presented(&tls);
        assert_ne!(first, second, "the new certificate is presented");

        std::fs::write(&cert, "not a certificate").expect("write");
        assert!(matches!(tls.reload(), Err(TlsError::Certificate { .. })));
        assert_eq!(presented(&tls), second, "a bad file changes nothing");

        // A key that is not the certificate's.
        std::fs::copy(&other_cert, &cert).expect("copy");
        let (_, stranger) = write_pair(&dir, "stranger");
        std::fs::copy(&stranger, &key).expect("copy");
        assert!(matches!(tls.reload(), Err(TlsError::Mismatch { .. })));
        assert_eq!(presented(&tls), second);
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn missing_files_are_named_in_the_error() {
        let missing = Path::new("/nonexistent/duplex.crt");
        let error = Tls::load(missing, missing).expect_err("no such file");
        assert!(
            error.to_string().contains("/nonexistent/duplex.crt"),
            "{error}"
        );
    }
}
