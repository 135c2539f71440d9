//! Counters: server-wide gauges for `/healthz`, and the per-connection
//! tallies that make up the log line written when a connection ends.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Instant;

use serde::Serialize;

/// Server-wide counters, shared by every connection task.
#[derive(Debug)]
pub(crate) struct ServerStats {
    /// When the server started, for the uptime in `/healthz`.
    started: Instant,
    /// WebSocket connections open now.
    open: AtomicUsize,
    /// WebSocket connections accepted since start.
    total: AtomicU64,
}

impl ServerStats {
    pub(crate) fn new() -> Self {
        Self {
            started: Instant::now(),
            open: AtomicUsize::new(0),
            total: AtomicU64::new(0),
        }
    }

    /// Counts a WebSocket connection as open until the guard is dropped, so
    /// the gauge stays right whichever way the connection's task ends.
    pub(crate) fn open_connection(&self) -> OpenGuard<'_> {
        self.open.fetch_add(1, Ordering::Relaxed);
        self.total.fetch_add(1, Ordering::Relaxed);
        OpenGuard(self)
    }

    /// A snapshot for `/healthz`; `redis`: whether the cluster's Redis is
    /// reachable, when there is one. Redis down is `degraded`, still 200:
    /// a 503 would make a load balancer drop every instance at once during
    /// a Redis blip, when each can still serve echo and its connections.
    pub(crate) fn health(&self, redis: Option<bool>) -> Health {
        Health {
            status: if redis == Some(false) {
                "degraded"
            } else {
                "ok"
            },
            redis: redis.map(|up| if up { "up" } else { "down" }),
            version: env!("CARGO_PKG_VERSION"),
            uptime_secs: self.started.elapsed().as_secs(),
            connections: self.open.load(Ordering::Relaxed),
            connections_total: self.total.load(Ordering::Relaxed),
        }
    }
}

/// Decrements the open-connection gauge on drop.
pub(crate) struct OpenGuard<'a>(&'a ServerStats);

impl Drop for OpenGuard<'_> {
    fn drop(&mut self) {
        self.0.open.fetch_sub(1, Ordering::Relaxed);
    }
}

/// The body of `GET /healthz`.
#[derive(Debug, Serialize)]
pub(crate) struct Health {
    status: &'static str,
    /// Only with `--redis`.
    #[serde(skip_serializing_if = "Option::is_none")]
    redis: Option<&'static str>,
    version: &'static str,
    uptime_secs: u64,
    connections: usize,
    connections_total: u64,
}

/// What one connection did, logged when it ends.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Traffic {
    pub(crate) messages_in: u64,
    pub(crate) bytes_in: u64,
    pub(crate) messages_out: u64,
    pub(crate) bytes_out: u64,
}

impl Traffic {
    pub(crate) fn received(&mut self, len: usize) {
        self.messages_in += 1;
        self.bytes_in += len as u64;
    }

    pub(crate) fn sent(&mut self, len: usize) {
        self.messages_out += 1;
        self.bytes_out += len as u64;
    }
}
