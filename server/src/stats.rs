//! Counters: the server's metrics with what `/healthz` shows, and each
//! connection's traffic, counted into both its log line and the metrics.

use std::time::Instant;

use serde::Serialize;

use crate::connection::Service;
use crate::metrics::{Metrics, OpenConnection, ServiceCounters};

/// Server-wide counters, shared by every connection task: the metrics
/// of `/metrics`, and what `/healthz` adds (the uptime).
#[derive(Debug)]
pub(crate) struct ServerStats {
    /// When the server started, for the uptime in `/healthz`.
    started: Instant,
    /// Everything `/metrics` exports; `/healthz` reads its connection
    /// counts.
    pub(crate) metrics: Metrics,
}

impl ServerStats {
    /// `redis`: whether the server runs in a cluster.
    pub(crate) fn new(redis: bool) -> Self {
        Self {
            started: Instant::now(),
            metrics: Metrics::new(redis),
        }
    }

    /// Counts a WebSocket connection of `service` as open until the guard
    /// is dropped, so the gauge stays right whichever way the connection's
    /// task ends.
    pub(crate) fn open_connection(&self, service: Service) -> OpenConnection {
        self.metrics.open_connection(service)
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
            connections: self.metrics.connections_open(),
            connections_total: self.metrics.connections_total(),
        }
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
    connections: u64,
    connections_total: u64,
}

/// What one connection did so far, for its log line.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Tally {
    pub(crate) messages_in: u64,
    pub(crate) bytes_in: u64,
    pub(crate) messages_out: u64,
    pub(crate) bytes_out: u64,
}

/// A connection's traffic: its own tally, and the server's counters of its
/// service, moved together.
#[derive(Debug, Default)]
pub(crate) struct Traffic {
    pub(crate) tally: Tally,
    live: ServiceCounters,
}

impl Traffic {
    /// Counts into `live` as well as the connection's own tally.
    pub(crate) fn new(live: ServiceCounters) -> Self {
        Self {
            tally: Tally::default(),
            live,
        }
    }

    #[inline]
    pub(crate) fn received(&mut self, len: usize) {
        self.tally.messages_in += 1;
        self.tally.bytes_in += len as u64;
        self.live.received(len);
    }

    #[inline]
    pub(crate) fn sent(&mut self, len: usize) {
        self.tally.messages_out += 1;
        self.tally.bytes_out += len as u64;
        self.live.sent(len);
    }
}
