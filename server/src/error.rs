//! Typed errors of the library. A failure on one connection never becomes
//! one of these: it is logged in that connection's task and ends only it.

use std::io;

use crate::config::ConfigError;

/// Why [`crate::run`] could not start or keep serving.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The configuration is inconsistent; nothing was started.
    #[error("invalid configuration")]
    Config(#[from] ConfigError),
    /// `--redis` could not be used at start.
    #[error("cannot join the cluster")]
    Cluster(#[from] crate::cluster::ClusterError),
    /// `--tls-cert`/`--tls-key` could not be loaded at start.
    #[error("cannot load the TLS certificate")]
    Tls(#[from] crate::tls::TlsError),
    /// The listener's local address could not be read.
    #[error("cannot read the listening address")]
    LocalAddr(#[source] io::Error),
}
