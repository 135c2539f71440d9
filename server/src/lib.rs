//! Duplex: a full-duplex WebSocket server.
//!
//! [`run`] serves a bound listener until a shutdown future resolves:
//! WebSocket echo on `/` and `/echo`, rooms with publish/subscribe and
//! presence on `/ws` (`docs/protocol.md`), `GET /healthz`, RFC 6455 close codes
//! for protocol errors, limits and timeouts from [`Config`], and a graceful
//! shutdown that closes every client with 1001.
//!
//! ```no_run
//! # async fn example() -> Result<(), Box<dyn std::error::Error>> {
//! let config = duplex_server::Config::default();
//! let listener = tokio::net::TcpListener::bind(config.listen).await?;
//! duplex_server::run(listener, config, duplex_server::shutdown::signal()).await?;
//! # Ok(())
//! # }
//! ```

mod admission;
mod api;
mod close;
mod cluster;
mod config;
mod connection;
mod deflate;
mod echo;
mod error;
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing;
mod http;
mod keepalive;
mod metrics;
pub mod push;
mod rate;
mod rooms;
mod server;
pub mod shutdown;
mod state;
mod stats;
mod tasks;
pub mod telemetry;
mod tls;
mod transport;
mod wire;

pub use cluster::ClusterError;
pub use config::{Config, ConfigError, Deflate, LogFormat, parse_size};
pub use error::Error;
pub use server::run;
pub use tls::TlsError;
