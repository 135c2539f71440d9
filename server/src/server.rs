//! The accept loop, and the server's life: start serving, then shut down
//! gracefully (Close 1001 to everyone, a grace period, then abort).

use std::future::Future;
use std::io;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::signal::unix::{SignalKind, signal};
use tracing::{error, info, warn};

use redis::PushInfo;
use tokio::sync::mpsc::UnboundedReceiver;

use crate::cluster::{Cluster, Settings};
use crate::config::Config;
use crate::error::Error;
use crate::state::AppState;
use crate::tls::Tls;

/// First pause after an accept error that is not about one connection
/// (EMFILE, ENFILE, ENOBUFS, ENOMEM): the condition usually lasts a moment,
/// so retry soon, then back off to [`MAX_ACCEPT_BACKOFF`].
const MIN_ACCEPT_BACKOFF: Duration = Duration::from_millis(5);
/// Longest pause between two accept attempts while errors persist.
const MAX_ACCEPT_BACKOFF: Duration = Duration::from_secs(1);

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
    let tls = match (&config.tls_cert, &config.tls_key) {
        (Some(cert), Some(key)) => Some(Tls::load(cert, key)?),
        _ => None,
    };
    let (cluster, pushes) = match &config.redis {
        Some(url) => {
            let settings = Settings {
                history_size: config.history_size,
                history_ttl: config.history_ttl,
                presence_ttl: config.presence_ttl,
                presence_limit: config.presence_limit,
            };
            let (cluster, pushes) = Cluster::connect(url, settings).await?;
            (Some(Arc::new(cluster)), Some(pushes))
        }
        None => (None, None),
    };
    let shared = Arc::new(AppState::new(config, cluster, tls)?);
    let (ws, http) = match &shared.tls {
        Some(_) => ("wss", "https"),
        None => ("ws", "http"),
    };
    info!(%local, "listening: echo on {ws}://{local}/ and {ws}://{local}/echo, rooms on {ws}://{local}/ws, health on {http}://{local}/healthz");
    shared.admission.warn_if_open(local);

    tokio::select! {
        () = accept_loop(&listener, &shared) => {}
        () = shared.hub.sweep_history() => {}
        () = follow(&shared, pushes) => {}
        () = hangups(&shared) => {}
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
    if let Some(cluster) = shared.hub.cluster() {
        cluster.shutdown().await;
    }
    info!("shutdown complete");
    Ok(())
}

/// Follows the cluster, if there is one; otherwise waits forever.
async fn follow(shared: &AppState, pushes: Option<UnboundedReceiver<PushInfo>>) {
    match pushes {
        Some(pushes) => shared.hub.follow_cluster(pushes).await,
        None => std::future::pending().await,
    }
}

/// SIGHUP, forever: reloads the TLS certificate and key, or with no TLS
/// only says it was ignored (its default action would end the process).
/// Open connections are not touched either way.
async fn hangups(shared: &AppState) {
    let mut hangup = match signal(SignalKind::hangup()) {
        Ok(hangup) => hangup,
        Err(error) => {
            warn!(%error, "cannot listen for SIGHUP: certificate reloads need a restart");
            return std::future::pending().await;
        }
    };
    while hangup.recv().await.is_some() {
        match &shared.tls {
            Some(tls) => match tls.reload() {
                Ok(()) => {
                    info!(cert = %tls.cert_path().display(), "SIGHUP: TLS certificate reloaded")
                }
                Err(error) => {
                    error!(%error, "SIGHUP: TLS certificate not reloaded; keeping the one in use")
                }
            },
            None => info!("SIGHUP ignored: no TLS certificate to reload"),
        }
    }
    std::future::pending().await
}

/// Accepts connections forever; each gets its own task.
async fn accept_loop(listener: &TcpListener, shared: &Arc<AppState>) {
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
