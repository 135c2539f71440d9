//! `GET /metrics`: every documented name is exported, parsed by a
//! Prometheus text parser, and the counters move with real traffic while
//! the connections are still open (not when they end): echo and rooms
//! messages and bytes both ways (room deliveries the hub writes straight
//! to a member's socket included), close codes sent, handshake refusals,
//! rooms and members.

use crate::common;

use std::time::Duration;

use crate::common::metrics::Metrics;
use crate::common::rooms::{connect_rooms, join, publish};
use crate::common::{TestServer, WAIT, config, connect, next_message};
use futures_util::SinkExt;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message;

const ECHO: &[(&str, &str)] = &[("service", "echo")];
const ROOMS: &[(&str, &str)] = &[("service", "rooms")];

/// Scrapes until `check` holds (the server counts a message just after it
/// handles it), within [`WAIT`].
async fn until(addr: std::net::SocketAddr, check: impl Fn(&Metrics) -> bool) -> Metrics {
    let deadline = Instant::now() + WAIT;
    loop {
        let metrics = Metrics::scrape(addr).await;
        if check(&metrics) {
            return metrics;
        }
        assert!(Instant::now() < deadline, "metrics never matched");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn every_documented_metric_is_exported_from_the_start() {
    let server = TestServer::start(config()).await;
    let metrics = Metrics::scrape(server.addr).await;
    for service in [ECHO, ROOMS] {
        for name in [
            "duplex_connections_open",
            "duplex_connections_total",
            "duplex_messages_received_total",
            "duplex_messages_sent_total",
            "duplex_bytes_received_total",
            "duplex_bytes_sent_total",
        ] {
            assert_eq!(metrics.value(name, service), 0.0, "{name}{service:?}");
        }
    }
    for name in [
        "duplex_slow_client_kicks_total",
        "duplex_room_messages_dropped_total",
        "duplex_rate_limit_kicks_total",
        "duplex_rooms",
        "duplex_room_members",
    ] {
        assert_eq!(metrics.value(name, &[]), 0.0, "{name}");
    }
    assert!(
        metrics.find("duplex_redis_up", &[]).is_none(),
        "no Redis, no gauge"
    );
}

#[tokio::test]
async fn echo_traffic_moves_the_counters_while_the_connection_is_open() {
    let server = TestServer::start(config()).await;
    let mut ws = connect(server.addr, "/echo").await;
    let sizes = [1usize, 100, 70_000];
    for &size in &sizes {
        let message = Message::binary(common::bytes(size, size as u64));
        ws.send(message.clone()).await.expect("send");
        assert_eq!(next_message(&mut ws).await, message);
    }
    // Pings are not data messages.
    ws.send(Message::Ping("p".into())).await.expect("ping");
    let total: usize = sizes.iter().sum();
    let metrics = until(server.addr, |m| {
        m.value("duplex_messages_sent_total", ECHO) == 3.0
    })
    .await;
    assert_eq!(metrics.value("duplex_connections_open", ECHO), 1.0);
    assert_eq!(metrics.value("duplex_connections_total", ECHO), 1.0);
    assert_eq!(metrics.value("duplex_messages_received_total", ECHO), 3.0);
    assert_eq!(
        metrics.value("duplex_bytes_received_total", ECHO),
        total as f64
    );
    assert_eq!(metrics.value("duplex_bytes_sent_total", ECHO), total as f64);
    assert_eq!(metrics.value("duplex_connections_open", ROOMS), 0.0);

    common::close(&mut ws).await;
    let metrics = until(server.addr, |m| {
        m.value("duplex_connections_open", ECHO) == 0.0
    })
    .await;
    assert_eq!(
        metrics.value("duplex_close_codes_sent_total", &[("code", "1000")]),
        1.0,
        "the answer to the client's Close"
    );

    // A server-initiated close: invalid UTF-8 in a text frame → 1007.
    let mut raw = common::RawClient::connect(server.addr, "/echo").await;
    let bad = common::encode(true, 0, common::op::TEXT, &[0xff, 0xfe], Some([9, 9, 9, 9]));
    raw.send(&bad).await;
    raw.expect_close(1007, "invalid UTF-8").await;
    until(server.addr, |m| {
        m.count("duplex_close_codes_sent_total", &[("code", "1007")]) == 1.0
    })
    .await;
}

#[tokio::test]
async fn room_deliveries_count_as_sent_also_when_written_straight_to_the_socket() {
    let server = TestServer::start(config()).await;
    let (mut ann, _) = connect_rooms(server.addr).await;
    join(&mut ann, "lobby", "ann").await;
    let (mut bob, _) = connect_rooms(server.addr).await;
    join(&mut bob, "lobby", "bob").await;
    // ann hears that bob joined.
    let _ = next_message(&mut ann).await;
    let before = until(server.addr, |m| m.value("duplex_room_members", &[]) == 2.0).await;
    assert_eq!(before.value("duplex_rooms", &[]), 1.0);
    assert_eq!(before.value("duplex_connections_open", ROOMS), 2.0);

    // Idle members: the hub writes the deliveries itself.
    let mut bytes = 0usize;
    for text in ["one", "two", "three"] {
        publish(&mut ann, "lobby", text).await;
        for ws in [&mut ann, &mut bob] {
            let delivery = next_message(ws).await.into_text().expect("text");
            assert!(delivery.contains(r#""type":"message""#), "{delivery}");
            assert!(delivery.contains(text), "{delivery}");
            bytes += delivery.len();
        }
    }
    let sent_before = before.value("duplex_messages_sent_total", ROOMS);
    let bytes_before = before.value("duplex_bytes_sent_total", ROOMS);
    let after = until(server.addr, |m| {
        m.value("duplex_messages_sent_total", ROOMS) == sent_before + 6.0
    })
    .await;
    assert_eq!(
        after.value("duplex_bytes_sent_total", ROOMS) - bytes_before,
        bytes as f64
    );
    assert_eq!(
        after.value("duplex_messages_received_total", ROOMS)
            - before.value("duplex_messages_received_total", ROOMS),
        3.0
    );
    drop(bob);
    until(server.addr, |m| m.value("duplex_room_members", &[]) == 1.0).await;
}

#[tokio::test]
async fn refused_upgrades_are_counted_by_status() {
    let mut config = config();
    config.max_connections = 2;
    config.max_connections_per_ip = 1;
    config.allowed_origins = Some(vec!["https://chat.example".into()]);
    config.jwt_secret = Some("metrics-test-secret".into());
    let server = TestServer::start(config).await;
    let addr = server.addr;
    let upgrade = common::admission::upgrade;
    // 403: an origin not in the list.
    let refused = upgrade(addr, "/echo", "Origin: https://evil.example\r\n").await;
    assert_eq!(refused.status, 403);
    // 401: /ws without a token.
    assert_eq!(upgrade(addr, "/ws", "").await.status, 401);
    // 429: a second connection from 127.0.0.1 while the first is open.
    let _held = connect(addr, "/echo").await;
    assert_eq!(upgrade(addr, "/echo", "").await.status, 429);
    // 503: the server's last slot taken from another address, then one more.
    let other = std::net::IpAddr::from([127, 0, 0, 2]);
    let (ok, _kept) = common::admission::upgrade_on(
        common::admission::tcp_from(other, addr).await,
        addr,
        "/echo",
        "",
    )
    .await;
    assert_eq!(ok.status, 101);
    let third = std::net::IpAddr::from([127, 0, 0, 3]);
    let (full, _) = common::admission::upgrade_on(
        common::admission::tcp_from(third, addr).await,
        addr,
        "/echo",
        "",
    )
    .await;
    assert_eq!(full.status, 503);
    let metrics = Metrics::scrape(addr).await;
    for status in ["401", "403", "429", "503"] {
        assert_eq!(
            metrics.count("duplex_handshake_refusals_total", &[("status", status)]),
            1.0,
            "{status}"
        );
    }
    assert_eq!(metrics.value("duplex_connections_total", ECHO), 2.0);
}

#[tokio::test]
async fn a_rate_limit_kick_is_counted() {
    let mut config = config();
    config.max_messages_per_second = 5;
    let server = TestServer::start(config).await;
    let mut ws = connect(server.addr, "/echo").await;
    // The bucket holds 5; the 6th message at once is over the rate.
    for i in 0..10 {
        if ws.send(Message::text(format!("{i}"))).await.is_err() {
            break;
        }
    }
    let metrics = until(server.addr, |m| {
        m.value("duplex_rate_limit_kicks_total", &[]) == 1.0
    })
    .await;
    assert_eq!(
        metrics.count("duplex_close_codes_sent_total", &[("code", "1008")]),
        1.0
    );
}
