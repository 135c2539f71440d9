//! The connection limit: with `max_connections` WebSocket connections open,
//! a further upgrade gets HTTP 503 with Retry-After (not a silent drop or a
//! hang), plain HTTP still works, and a slot frees as soon as a client
//! closes.

use crate::common;

use std::time::Duration;

use crate::common::{Client, HttpResponse, TestServer, connect, http, try_connect};
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Error as WsError;

const LIMIT: usize = 2;

async fn start() -> TestServer {
    let mut config = common::config();
    config.max_connections = LIMIT;
    TestServer::start(config).await
}

/// An upgrade request sent by hand, so the whole 503 can be read.
async fn raw_upgrade(server: &TestServer) -> HttpResponse {
    let request = String::from_utf8(common::upgrade_request(server.addr, "/echo"))
        .expect("ASCII request")
        .replace("Connection: Upgrade", "Connection: Upgrade, close");
    http(server.addr, request.as_bytes()).await
}

fn assert_refused(result: Result<Client, WsError>) {
    match result {
        Err(WsError::Http(response)) => assert_eq!(response.status(), 503),
        Err(error) => panic!("expected HTTP 503, got {error}"),
        Ok(_) => panic!("expected HTTP 503, got a connection over the limit"),
    }
}

#[tokio::test]
async fn upgrade_over_the_limit_gets_503_with_retry_after() {
    let server = start().await;
    let _clients = [
        connect(server.addr, "/").await,
        connect(server.addr, "/echo").await,
    ];
    let response = raw_upgrade(&server).await;
    assert_eq!(response.status, 503, "{}", response.head);
    assert_eq!(response.header("retry-after"), Some("1"));
    assert!(
        response.body_text().contains("too many connections"),
        "body: {:?}",
        response.body_text()
    );
    assert_refused(try_connect(server.addr, "/", None).await);

    // Plain HTTP is not limited, and the refused attempts were not counted.
    let health = common::health(server.addr).await;
    assert_eq!(health["connections"], 2);
    assert_eq!(health["connections_total"], 2);
}

#[tokio::test]
async fn a_slot_frees_when_a_client_closes() {
    let server = start().await;
    let mut first = connect(server.addr, "/echo").await;
    let _second = connect(server.addr, "/echo").await;
    assert_refused(try_connect(server.addr, "/echo", None).await);

    common::close(&mut first).await;
    // The slot is released when the server's task for the closed
    // connection ends, a moment after the client sees the TCP close: retry
    // briefly, bounded in count and time.
    let deadline = Instant::now() + common::WAIT;
    let mut third = None;
    for _ in 0..500 {
        match try_connect(server.addr, "/echo", None).await {
            Ok(ws) => {
                third = Some(ws);
                break;
            }
            Err(WsError::Http(response)) if response.status() == 503 => {}
            Err(error) => panic!("unexpected handshake failure: {error}"),
        }
        assert!(Instant::now() < deadline, "no slot freed after a close");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let mut third = third.expect("a slot freed after a close");
    common::assert_echo(
        &mut third,
        tokio_tungstenite::tungstenite::Message::text("in the freed slot"),
    )
    .await;
    // Full again.
    assert_refused(try_connect(server.addr, "/echo", None).await);
}
