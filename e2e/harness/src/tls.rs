//! What the harness's TLS server and the browsers need to trust each other:
//! a self-signed certificate for `localhost` and `127.0.0.1`, made afresh
//! at each start (rcgen) and written as PEM for the server's `--tls-cert`
//! and `--tls-key`; the base64 SHA-256 of its public key (SPKI), which
//! Chromium's `--ignore-certificate-errors-spki-list` takes to trust
//! exactly this certificate (no blanket `acceptInsecureCerts`); and a
//! `webdriver.json` with that flag, which wasm-bindgen-test-runner reads
//! from `WASM_BINDGEN_TEST_WEBDRIVER_JSON` as the browser's capabilities.

use std::path::{Path, PathBuf};

use base64::Engine as _;
use rcgen::PublicKeyData as _;

/// Why the files could not be made.
#[derive(Debug, thiserror::Error)]
pub(crate) enum TlsError {
    /// rcgen could not make the key or the certificate.
    #[error("cannot make a certificate: {0}")]
    Generate(#[from] rcgen::Error),
    /// A file could not be written.
    #[error("cannot write {path}: {source}")]
    Write {
        /// The file.
        path: PathBuf,
        /// The operating system's answer.
        source: std::io::Error,
    },
}

/// The files of one run, under the directory given to [`TlsFiles::make`].
#[derive(Debug, Clone)]
pub(crate) struct TlsFiles {
    /// The certificate (PEM), for `--tls-cert` and for clients that trust
    /// it as a root.
    pub(crate) cert: PathBuf,
    /// Its private key (PEM, PKCS#8), for `--tls-key`.
    pub(crate) key: PathBuf,
    /// base64 of the SHA-256 of the certificate's SubjectPublicKeyInfo:
    /// what `--ignore-certificate-errors-spki-list` expects.
    pub(crate) spki_sha256: String,
    /// `{"goog:chromeOptions":{"args":["--ignore-certificate-errors-spki-list=…"]}}`.
    pub(crate) webdriver_json: PathBuf,
}

impl TlsFiles {
    /// Makes a new key and certificate and writes them, with the
    /// capabilities file, into `dir` (created if missing; earlier runs'
    /// files are replaced).
    pub(crate) fn make(dir: &Path) -> Result<Self, TlsError> {
        let write = |name: &str, contents: &[u8]| {
            let path = dir.join(name);
            std::fs::write(&path, contents).map_err(|source| TlsError::Write {
                path: path.clone(),
                source,
            })?;
            Ok::<_, TlsError>(path)
        };
        std::fs::create_dir_all(dir).map_err(|source| TlsError::Write {
            path: dir.to_owned(),
            source,
        })?;
        let made = rcgen::generate_simple_self_signed(vec![
            "localhost".to_owned(),
            "127.0.0.1".to_owned(),
        ])?;
        let spki_sha256 = spki_hash(&made.signing_key.subject_public_key_info());
        let capabilities = serde_json::json!({
            "goog:chromeOptions": {
                "args": [chromium_trust_flag(&spki_sha256)],
            },
        });
        Ok(Self {
            cert: write("cert.pem", made.cert.pem().as_bytes())?,
            key: write("key.pem", made.signing_key.serialize_pem().as_bytes())?,
            webdriver_json: write("webdriver.json", capabilities.to_string().as_bytes())?,
            spki_sha256,
        })
    }
}

/// base64 (standard, padded) of the SHA-256 of `spki` (DER).
fn spki_hash(spki: &[u8]) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, spki);
    base64::engine::general_purpose::STANDARD.encode(digest.as_ref())
}

/// The Chromium flag that trusts a certificate with this key hash (it
/// takes effect only with a `--user-data-dir`, which chromedriver sets).
pub(crate) fn chromium_trust_flag(spki_sha256: &str) -> String {
    format!("--ignore-certificate-errors-spki-list={spki_sha256}")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The hash `openssl x509 -pubkey | openssl pkey -pubin -outform der |
    /// openssl dgst -sha256 -binary | base64` gives: SHA-256 of the DER,
    /// standard base64 with padding (44 characters).
    #[test]
    fn the_spki_hash_is_base64_sha256() {
        assert_eq!(
            spki_hash(b""),
            "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="
        );
    }

    #[test]
    fn the_files_are_written_and_name_the_hash() {
        let dir = std::env::temp_dir().join(format!("duplex-harness-tls-{}", std::process::id()));
        let files = TlsFiles::make(&dir).expect("make the files");
        let cert = std::fs::read_to_string(&files.cert).expect("cert");
        assert!(cert.starts_with("-----BEGIN CERTIFICATE-----"), "{cert}");
        let key = std::fs::read_to_string(&files.key).expect("key");
        assert!(key.starts_with("-----BEGIN PRIVATE KEY-----"), "{key}");
        let json = std::fs::read_to_string(&files.webdriver_json).expect("json");
        assert!(
            json.contains(&chromium_trust_flag(&files.spki_sha256)),
            "{json}"
        );
        assert_eq!(files.spki_sha256.len(), 44);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
