//! The accept loop and the wiring every connection shares: configuration,
//! the connection-limit semaphore, counters, and the shutdown signal.

use std::future::Future;
use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tower_http::services::ServeDir;
use tracing::{error, info, warn};

use crate::config::Config;
use crate::error::Error;
use crate::rooms::Hub;
use crate::stats::ServerStats;
use crate::tasks::Tasks;

/// First pause after an accept error that is not about one connection
/// (EMFILE, ENFILE, ENOBUFS, ENOMEM): the condition usually lasts a moment,
/// so retry soon, then back off to [`MAX_ACCEPT_BACKOFF`].
const MIN_ACCEPT_BACKOFF: Duration = Duration::from_millis(5);
/// Longest pause between two accept attempts while errors persist.
const MAX_ACCEPT_BACKOFF: Duration = Duration::from_secs(1);

/// What every connection task shares.
#[derive(Debug)]
pub(crate) struct Shared {
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
}

/// Serves WebSocket and HTTP clients on `listener` until `shutdown`
/// resolves, then closes every connection with 1001 and waits up to
/// `config.shutdown_grace` for the close handshakes.
///
/// # Errors
/// Fails only before serving starts: an invalid configuration or a
/// listener whose address cannot be read. Errors on a connection are logged
/// and end that connection alone.
pub async fn run(
    listener: TcpListener,
    config: Config,
    shutdown: impl Future<Output = ()>,
) -> Result<(), Error> {
    config.validate()?;
    let local = listener.local_addr().map_err(Error::LocalAddr)?;
    let grace = config.shutdown_grace;
    let shared = Arc::new(Shared {
        permits: Arc::new(Semaphore::new(config.max_connections)),
        stats: ServerStats::new(),
        shutdown: CancellationToken::new(),
        stopping: AtomicBool::new(false),
        tasks: Arc::new(Tasks::default()),
        ui: config.ui_dir.as_ref().map(ServeDir::new),
        hub: Arc::new(Hub::new(config.presence_limit)),
        config,
    });
    info!(%local, "listening: echo on ws://{local}/ and ws://{local}/echo, rooms on ws://{local}/ws, health on http://{local}/healthz");

    tokio::select! {
        () = accept_loop(&listener, &shared) => {}
        () = shutdown => {}
    }
    drop(listener);

    let open = shared.tasks.len();
    info!(
        open,
        ?grace,
        "shutting down: closing every connection with 1001"
    );
    shared.stopping.store(true, Ordering::Relaxed);
    shared.shutdown.cancel();
    shared.tasks.close();
    if tokio::time::timeout(grace, shared.tasks.wait())
        .await
        .is_err()
    {
        warn!(
            left = shared.tasks.len(),
            "grace period over: dropping the remaining connections"
        );
        shared.tasks.abort_all();
        // Aborted tasks end at their next poll; this only waits for that.
        shared.tasks.wait().await;
    }
    info!("shutdown complete");
    Ok(())
}

/// Accepts connections forever; each gets its own task.
async fn accept_loop(listener: &TcpListener, shared: &Arc<Shared>) {
    let mut backoff = MIN_ACCEPT_BACKOFF;
    loop {
        match listener.accept().await {
            Ok((tcp, peer)) => {
                backoff = MIN_ACCEPT_BACKOFF;
                // Echo replies are small and latency matters more than
                // packet count; frames are written whole anyway.
                if let Err(error) = tcp.set_nodelay(true) {
                    warn!(%peer, %error, "cannot set TCP_NODELAY");
                }
                shared
                    .tasks
                    .spawn(crate::http::serve(tcp, peer, Arc::clone(shared)));
            }
            // The peer gave up between SYN and accept: nothing to fix.
            Err(error) if is_connection_error(&error) => {}
            Err(error) => {
                error!(%error, ?backoff, "accept failed; retrying");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(MAX_ACCEPT_BACKOFF);
            }
        }
    }
}

/// Errors that concern the one connection being accepted, not the listener.
fn is_connection_error(error: &io::Error) -> bool {
    matches!(
        error.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
    )
}
