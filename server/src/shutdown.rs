//! The process's shutdown signal: SIGINT (Ctrl-C) or SIGTERM, whichever
//! comes first.

use tracing::{info, warn};

/// Resolves when the process is asked to stop. A signal that cannot be
/// registered is logged and simply never fires; the other one still works.
pub async fn signal() {
    let interrupt = async {
        match tokio::signal::ctrl_c().await {
            Ok(()) => info!("SIGINT received"),
            Err(error) => {
                warn!(%error, "cannot listen for SIGINT");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(unix)]
    let terminate = async {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut stream) => {
                stream.recv().await;
                info!("SIGTERM received");
            }
            Err(error) => {
                warn!(%error, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = interrupt => {}
        () = terminate => {}
    }
}
