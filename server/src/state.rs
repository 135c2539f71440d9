//! The application state every connection shares: configuration, the
//! connection-limit semaphore, counters, the shutdown signal, the tasks,
//! the UI's files, the rooms hub and the listener's TLS. Built once by `run`; the HTTP layer,
//! the API and every connection reach it through an `Arc`.

use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tower_http::services::ServeDir;

use crate::admission::Admission;
use crate::cluster::Cluster;
use crate::config::{Config, ConfigError};
use crate::rooms::{Engine, Hub};
use crate::stats::ServerStats;
use crate::tasks::Tasks;
use crate::tls::Tls;

/// What every connection task shares.
#[derive(Debug)]
pub(crate) struct AppState {
    pub(crate) config: Config,
    /// One permit per open WebSocket connection (`--max-connections`).
    pub(crate) permits: Arc<Semaphore>,
    /// Gauges for `/healthz`.
    pub(crate) stats: ServerStats,
    /// Cancelled when shutdown starts: every connection sends Close 1001.
    pub(crate) shutdown: CancellationToken,
    /// Set with `shutdown`: a flag a busy connection can read for the price
    /// of an atomic load, where the token's own check takes a lock.
    pub(crate) stopping: AtomicBool,
    /// Every connection task, so shutdown can wait for them or stop them.
    pub(crate) tasks: Arc<Tasks>,
    /// The built UI's files (`--ui-dir`), if any.
    pub(crate) ui: Option<ServeDir>,
    /// Every room of `/ws`, also reached by the push API.
    pub(crate) hub: Arc<Hub>,
    /// The listener's TLS, with `--tls-cert`; `None` serves plain TCP.
    pub(crate) tls: Option<Tls>,
    /// Who may connect: Origin, tokens, connections per address.
    pub(crate) admission: Admission,
}

impl AppState {
    /// The state for a server with this (validated) configuration; its
    /// rooms live in `cluster` if there is one.
    ///
    /// # Errors
    /// A configured file that cannot be used (`--jwt-public-key`).
    pub(crate) fn new(
        config: Config,
        cluster: Option<Arc<Cluster>>,
        tls: Option<Tls>,
    ) -> Result<Self, ConfigError> {
        Ok(Self {
            admission: Admission::new(&config)?,
            permits: Arc::new(Semaphore::new(config.max_connections)),
            stats: ServerStats::new(cluster.is_some()),
            shutdown: CancellationToken::new(),
            stopping: AtomicBool::new(false),
            tasks: Arc::new(Tasks::default()),
            ui: config.ui_dir.as_ref().map(ServeDir::new),
            hub: Arc::new(Hub::new(
                config.presence_limit,
                match cluster {
                    Some(cluster) => Engine::Redis(cluster),
                    None => Engine::memory(config.history_size, config.history_ttl),
                },
            )),
            tls,
            config,
        })
    }
}
