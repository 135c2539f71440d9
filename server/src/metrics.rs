//! `GET /metrics`: what an operator watches, in the Prometheus (OpenMetrics)
//! text format, every name prefixed `duplex_`.
//!
//! One registry per server (tests run many servers in one process), built
//! in [`Metrics::new`]. The hot path holds clones of the counters it moves
//! ([`ServiceCounters`], [`OutboxCounters`]): each increment is one atomic
//! add, no lookup, no lock. Counters move when the thing happens (a message
//! read, a frame written by the session or straight by the hub), not when
//! a connection ends. Gauges of the rooms are read from the hub at scrape
//! time.
//!
//! | name | type | labels |
//! |---|---|---|
//! | `duplex_connections_open` | gauge | `service` |
//! | `duplex_connections_total` | counter | `service` |
//! | `duplex_messages_received_total`, `duplex_bytes_received_total` | counter | `service` |
//! | `duplex_messages_sent_total`, `duplex_bytes_sent_total` | counter | `service` |
//! | `duplex_close_codes_sent_total` | counter | `code` |
//! | `duplex_handshake_refusals_total` | counter | `status` |
//! | `duplex_slow_client_kicks_total` | counter | |
//! | `duplex_room_messages_dropped_total` | counter | |
//! | `duplex_rate_limit_kicks_total` | counter | |
//! | `duplex_rooms`, `duplex_room_members` | gauge | (this instance's) |
//! | `duplex_redis_up` | gauge | (with `--redis`) |

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use crate::connection::Service;

/// The content type of [`Metrics::render`]'s text.
pub(crate) const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

type ServiceLabel = [(&'static str, &'static str); 1];
type CodeLabel = [(&'static str, u16); 1];

/// Every metric of one server.
#[derive(Debug)]
pub(crate) struct Metrics {
    registry: Registry,
    echo: ServiceMetrics,
    rooms: ServiceMetrics,
    close_codes_sent: Family<CodeLabel, Counter>,
    handshake_refusals: Family<CodeLabel, Counter>,
    outbox: OutboxCounters,
    rate_limit_kicks: Counter,
    room_count: Gauge,
    room_members: Gauge,
    redis_up: Option<Gauge>,
}

/// One service's connection gauge and counters.
#[derive(Debug, Clone, Default)]
struct ServiceMetrics {
    open: Gauge,
    total: Counter,
    traffic: ServiceCounters,
}

/// The message and byte counters of one service, moved by its connections.
/// `Default` gives counters registered nowhere (unit tests).
#[derive(Debug, Clone, Default)]
pub(crate) struct ServiceCounters {
    messages_received: Counter,
    bytes_received: Counter,
    messages_sent: Counter,
    bytes_sent: Counter,
}

impl ServiceCounters {
    /// A data message of `len` bytes was read.
    #[inline]
    pub(crate) fn received(&self, len: usize) {
        self.messages_received.inc();
        self.bytes_received.inc_by(len as u64);
    }

    /// A data message of `len` bytes (its payload) was written.
    #[inline]
    pub(crate) fn sent(&self, len: usize) {
        self.messages_sent.inc();
        self.bytes_sent.inc_by(len as u64);
    }
}

/// What a member's outbox moves: the rooms' sent counters (the hub writes
/// straight to idle members), the messages a slow member missed, and its
/// kick. `Default` gives counters registered nowhere (unit tests).
#[derive(Debug, Clone, Default)]
pub(crate) struct OutboxCounters {
    /// The rooms service's traffic.
    pub(crate) traffic: ServiceCounters,
    /// Messages dropped from a full outbox (`missed`).
    pub(crate) dropped: Counter,
    /// Members closed with 1013 for missing too many.
    pub(crate) kicks: Counter,
}

impl Metrics {
    /// A registry with every metric at zero; `redis`: whether the server
    /// runs in a cluster (only then is `duplex_redis_up` exported).
    pub(crate) fn new(redis: bool) -> Self {
        let mut registry = Registry::default();
        let open = Family::<ServiceLabel, Gauge>::default();
        let total = Family::<ServiceLabel, Counter>::default();
        let messages_received = Family::<ServiceLabel, Counter>::default();
        let bytes_received = Family::<ServiceLabel, Counter>::default();
        let messages_sent = Family::<ServiceLabel, Counter>::default();
        let bytes_sent = Family::<ServiceLabel, Counter>::default();
        registry.register(
            "duplex_connections_open",
            "WebSocket connections open now",
            open.clone(),
        );
        registry.register(
            "duplex_connections",
            "WebSocket connections accepted since start",
            total.clone(),
        );
        registry.register(
            "duplex_messages_received",
            "Data messages read from clients (after reassembly)",
            messages_received.clone(),
        );
        registry.register(
            "duplex_bytes_received",
            "Payload bytes of the data messages read (after inflation)",
            bytes_received.clone(),
        );
        registry.register(
            "duplex_messages_sent",
            "Data messages written to clients, by the session or by the hub directly",
            messages_sent.clone(),
        );
        registry.register(
            "duplex_bytes_sent",
            "Payload bytes of the data messages written (before compression)",
            bytes_sent.clone(),
        );
        let service = |name: &'static str| {
            let label = [("service", name)];
            ServiceMetrics {
                open: open.get_or_create_owned(&label),
                total: total.get_or_create_owned(&label),
                traffic: ServiceCounters {
                    messages_received: messages_received.get_or_create_owned(&label),
                    bytes_received: bytes_received.get_or_create_owned(&label),
                    messages_sent: messages_sent.get_or_create_owned(&label),
                    bytes_sent: bytes_sent.get_or_create_owned(&label),
                },
            }
        };
        let echo = service("echo");
        let rooms = service("rooms");

        let close_codes_sent = Family::<CodeLabel, Counter>::default();
        registry.register(
            "duplex_close_codes_sent",
            "Close frames sent, by code (answers to a client's Close included)",
            close_codes_sent.clone(),
        );
        let handshake_refusals = Family::<CodeLabel, Counter>::default();
        registry.register(
            "duplex_handshake_refusals",
            "WebSocket upgrades refused before the upgrade, by HTTP status",
            handshake_refusals.clone(),
        );
        let outbox = OutboxCounters {
            traffic: rooms.traffic.clone(),
            dropped: Counter::default(),
            kicks: Counter::default(),
        };
        registry.register(
            "duplex_slow_client_kicks",
            "Room members closed with 1013 for missing too many messages",
            outbox.kicks.clone(),
        );
        registry.register(
            "duplex_room_messages_dropped",
            "Room messages dropped from a slow member's full queue",
            outbox.dropped.clone(),
        );
        let rate_limit_kicks = Counter::default();
        registry.register(
            "duplex_rate_limit_kicks",
            "Connections closed with 1008 for sending above --max-messages-per-second",
            rate_limit_kicks.clone(),
        );
        let room_count = Gauge::default();
        registry.register(
            "duplex_rooms",
            "Rooms with a member on this instance",
            room_count.clone(),
        );
        let room_members = Gauge::default();
        registry.register(
            "duplex_room_members",
            "Room memberships on this instance (a client in two rooms counts twice)",
            room_members.clone(),
        );
        let redis_up = redis.then(|| {
            let gauge = Gauge::default();
            registry.register(
                "duplex_redis_up",
                "1 while the cluster's Redis answers, 0 while it does not",
                gauge.clone(),
            );
            gauge
        });
        Self {
            registry,
            echo,
            rooms,
            close_codes_sent,
            handshake_refusals,
            outbox,
            rate_limit_kicks,
            room_count,
            room_members,
            redis_up,
        }
    }

    fn service(&self, service: Service) -> &ServiceMetrics {
        match service {
            Service::Echo => &self.echo,
            Service::Rooms => &self.rooms,
        }
    }

    /// Counts a connection of `service` as open until the guard drops.
    pub(crate) fn open_connection(&self, service: Service) -> OpenConnection {
        let metrics = self.service(service);
        metrics.open.inc();
        metrics.total.inc();
        OpenConnection(metrics.open.clone())
    }

    /// WebSocket connections open now, every service.
    pub(crate) fn connections_open(&self) -> u64 {
        let open = self.echo.open.get() + self.rooms.open.get();
        u64::try_from(open).unwrap_or(0)
    }

    /// WebSocket connections accepted since start, every service.
    pub(crate) fn connections_total(&self) -> u64 {
        self.echo.total.get() + self.rooms.total.get()
    }

    /// The counters a connection of `service` moves.
    pub(crate) fn traffic(&self, service: Service) -> ServiceCounters {
        self.service(service).traffic.clone()
    }

    /// The counters every member's outbox moves.
    pub(crate) fn outbox(&self) -> OutboxCounters {
        self.outbox.clone()
    }

    /// A Close frame with `code` was sent.
    pub(crate) fn close_sent(&self, code: u16) {
        self.close_codes_sent.get_or_create(&[("code", code)]).inc();
    }

    /// An upgrade was refused with HTTP `status`.
    pub(crate) fn refused(&self, status: u16) {
        self.handshake_refusals
            .get_or_create(&[("status", status)])
            .inc();
    }

    /// A connection was closed for its message rate.
    pub(crate) fn rate_limited(&self) {
        self.rate_limit_kicks.inc();
    }

    /// The text for `GET /metrics`, with the gauges read at scrape time:
    /// `rooms` and `members` on this instance, `redis_up` if clustered.
    pub(crate) fn render(&self, rooms: usize, members: usize, redis_up: Option<bool>) -> String {
        self.room_count
            .set(i64::try_from(rooms).unwrap_or(i64::MAX));
        self.room_members
            .set(i64::try_from(members).unwrap_or(i64::MAX));
        if let (Some(gauge), Some(up)) = (&self.redis_up, redis_up) {
            gauge.set(i64::from(up));
        }
        let mut text = String::new();
        // Writing to a String cannot fail.
        let _ = encode(&mut text, &self.registry);
        text
    }
}

/// Decrements a service's open-connection gauge on drop.
#[derive(Debug)]
pub(crate) struct OpenConnection(Gauge);

impl Drop for OpenConnection {
    fn drop(&mut self) {
        self.0.dec();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_metric_is_exported_with_its_labels() {
        let metrics = Metrics::new(true);
        let guard = metrics.open_connection(Service::Echo);
        metrics.traffic(Service::Echo).received(5);
        metrics.traffic(Service::Rooms).sent(7);
        metrics.outbox().traffic.sent(3);
        metrics.close_sent(1000);
        metrics.refused(503);
        let text = metrics.render(2, 3, Some(true));
        for line in [
            "duplex_connections_open{service=\"echo\"} 1",
            "duplex_connections_total{service=\"echo\"} 1",
            "duplex_messages_received_total{service=\"echo\"} 1",
            "duplex_bytes_received_total{service=\"echo\"} 5",
            "duplex_messages_sent_total{service=\"rooms\"} 2",
            "duplex_bytes_sent_total{service=\"rooms\"} 10",
            "duplex_close_codes_sent_total{code=\"1000\"} 1",
            "duplex_handshake_refusals_total{status=\"503\"} 1",
            "duplex_slow_client_kicks_total 0",
            "duplex_room_messages_dropped_total 0",
            "duplex_rate_limit_kicks_total 0",
            "duplex_rooms 2",
            "duplex_room_members 3",
            "duplex_redis_up 1",
        ] {
            assert!(text.lines().any(|l| l == line), "{line} missing in\n{text}");
        }
        drop(guard);
        assert_eq!(metrics.connections_open(), 0);
        assert_eq!(metrics.connections_total(), 1);
        assert!(!Metrics::new(false).render(0, 0, None).contains("redis"));
    }
}
