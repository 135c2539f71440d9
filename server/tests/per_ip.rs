//! `--max-connections-per-ip`: with N WebSocket connections open from one
//! address, its next upgrade gets 429 with Retry-After before the upgrade;
//! closing one frees its slot at once; other addresses are unaffected;
//! plain HTTP requests are not counted.

use crate::common;

use std::net::{IpAddr, Ipv4Addr};

use crate::common::admission::{tcp_from, upgrade_on};
use crate::common::{TestServer, WAIT};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::timeout;

const LIMIT: usize = 2;
const HOST_A: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 1));
const HOST_B: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2));

async fn start() -> TestServer {
    let mut config = common::config();
    config.max_connections_per_ip = LIMIT;
    TestServer::start(config).await
}

/// An upgrade to `/echo` from `from`: the status and, on 101, the socket.
async fn open(server: &TestServer, from: IpAddr) -> (common::HttpResponse, TcpStream) {
    let tcp = tcp_from(from, server.addr).await;
    upgrade_on(tcp, server.addr, "/echo", "").await
}

async fn open_ok(server: &TestServer, from: IpAddr) -> TcpStream {
    let (answer, tcp) = open(server, from).await;
    assert_eq!(answer.status, 101, "from {from}: {}", answer.head);
    tcp
}

#[tokio::test]
async fn the_next_upgrade_over_the_limit_gets_429_with_retry_after() {
    let server = start().await;
    let _held = [
        open_ok(&server, HOST_A).await,
        open_ok(&server, HOST_A).await,
    ];
    let (answer, _) = open(&server, HOST_A).await;
    assert_eq!(answer.status, 429, "{}", answer.head);
    assert!(answer.header("retry-after").is_some(), "{}", answer.head);
    let health = common::health(server.addr).await;
    assert_eq!(
        health["connections_total"], 2,
        "the refused one was counted"
    );
}

#[tokio::test]
async fn closing_one_frees_its_slot_at_once() {
    let server = start().await;
    let mut first = common::RawClient::handshake(
        tcp_from(HOST_A, server.addr).await,
        server.addr,
        "/echo",
        &[],
    )
    .await;
    let _second = open_ok(&server, HOST_A).await;
    assert_eq!(open(&server, HOST_A).await.0.status, 429);

    // A close handshake: once the server's Close is read, the slot is free.
    first
        .send(&common::frame(
            true,
            common::op::CLOSE,
            &common::close_payload(1000, ""),
        ))
        .await;
    first.expect_close(1000, "").await;
    let _third = open_ok(&server, HOST_A).await;
    assert_eq!(open(&server, HOST_A).await.0.status, 429);
}

#[tokio::test]
async fn other_addresses_are_unaffected() {
    let server = start().await;
    let _a = [
        open_ok(&server, HOST_A).await,
        open_ok(&server, HOST_A).await,
    ];
    assert_eq!(open(&server, HOST_A).await.0.status, 429);
    let _b = [
        open_ok(&server, HOST_B).await,
        open_ok(&server, HOST_B).await,
    ];
    assert_eq!(open(&server, HOST_B).await.0.status, 429);
}

#[tokio::test]
async fn plain_http_requests_are_not_counted() {
    let server = start().await;
    // Two keep-alive HTTP connections stay open, each after a request.
    let mut idle = Vec::new();
    for _ in 0..2 {
        let mut tcp = tcp_from(HOST_A, server.addr).await;
        let request = format!("GET /healthz HTTP/1.1\r\nHost: {}\r\n\r\n", server.addr);
        tcp.write_all(request.as_bytes()).await.expect("write");
        let mut chunk = [0u8; 1024];
        let n = timeout(WAIT, tcp.read(&mut chunk))
            .await
            .expect("an answer in time")
            .expect("read");
        assert!(chunk[..n].starts_with(b"HTTP/1.1 200"));
        idle.push(tcp);
    }
    let _held = [
        open_ok(&server, HOST_A).await,
        open_ok(&server, HOST_A).await,
    ];
    assert_eq!(open(&server, HOST_A).await.0.status, 429);
}
