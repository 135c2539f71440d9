//! The handshake timeout: a TCP client that does not complete its HTTP
//! request within `handshake_timeout` is disconnected without a response,
//! whether it sends nothing, half a request, or a request dribbled a byte
//! at a time (slowloris); a connection that completed its upgrade is not
//! affected by it.

use crate::common;

use std::time::Duration;

use crate::common::{TestServer, connect, tcp};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::{Instant, timeout};
use tokio_tungstenite::tungstenite::Message;

const HANDSHAKE_TIMEOUT: Duration = Duration::from_millis(200);
/// Timers may start a little before the client's clock does.
const SLACK: Duration = Duration::from_millis(50);

async fn start() -> TestServer {
    let mut config = common::config();
    config.handshake_timeout = HANDSHAKE_TIMEOUT;
    TestServer::start(config).await
}

/// Reads until the server closes the connection; returns what it sent.
/// A reset counts as a close.
async fn read_until_closed(tcp: &mut TcpStream) -> Vec<u8> {
    let mut received = Vec::new();
    let mut chunk = [0u8; 1024];
    loop {
        match timeout(common::WAIT, tcp.read(&mut chunk)).await {
            Err(_) => panic!(
                "the server kept the connection open past {:?}",
                common::WAIT
            ),
            Ok(Ok(0) | Err(_)) => return received,
            Ok(Ok(n)) => received.extend_from_slice(&chunk[..n]),
        }
    }
}

fn assert_cut_in_time(started: Instant, received: &[u8]) {
    let elapsed = started.elapsed();
    assert!(
        received.is_empty(),
        "expected no response, got {:?}",
        String::from_utf8_lossy(received)
    );
    assert!(
        elapsed + SLACK >= HANDSHAKE_TIMEOUT,
        "cut after {elapsed:?}, before the {HANDSHAKE_TIMEOUT:?} timeout"
    );
}

#[tokio::test]
async fn client_that_sends_nothing_is_cut() {
    let server = start().await;
    let started = Instant::now();
    let mut tcp = tcp(server.addr).await;
    let received = read_until_closed(&mut tcp).await;
    assert_cut_in_time(started, &received);
}

#[tokio::test]
async fn client_that_sends_half_a_request_is_cut() {
    let server = start().await;
    let started = Instant::now();
    let mut tcp = tcp(server.addr).await;
    let request = common::upgrade_request(server.addr, "/echo");
    tcp.write_all(&request[..request.len() / 2])
        .await
        .expect("write half a request");
    let received = read_until_closed(&mut tcp).await;
    assert_cut_in_time(started, &received);
}

#[tokio::test]
async fn client_that_dribbles_its_request_is_cut() {
    let server = start().await;
    let started = Instant::now();
    let tcp = tcp(server.addr).await;
    let (mut reader, mut writer) = tcp.into_split();
    let request = common::upgrade_request(server.addr, "/echo");
    // One byte every 20 ms: bytes keep arriving, but the whole request
    // would take seconds, far past the timeout.
    let dribble = tokio::spawn(async move {
        let mut ticks = tokio::time::interval(Duration::from_millis(20));
        for byte in request {
            ticks.tick().await;
            if writer.write_all(&[byte]).await.is_err() {
                break;
            }
        }
    });
    let mut received = Vec::new();
    timeout(common::WAIT, reader.read_to_end(&mut received))
        .await
        .expect("the server kept a dribbling client past the time limit")
        .ok();
    assert_cut_in_time(started, &received);
    let elapsed = started.elapsed();
    assert!(
        elapsed < HANDSHAKE_TIMEOUT * 5,
        "a dribbling client lasted {elapsed:?}: the timeout must bound the whole request"
    );
    dribble.abort();
}

#[tokio::test]
async fn upgraded_connection_outlives_the_handshake_timeout() {
    let server = start().await;
    let mut ws = connect(server.addr, "/echo").await;
    // Nothing must arrive (in particular no close) for a few handshake
    // timeouts; the server pings only after 10 s.
    let quiet = timeout(HANDSHAKE_TIMEOUT * 3, common::next_message(&mut ws)).await;
    assert!(quiet.is_err(), "unexpected {quiet:?}");
    common::assert_echo(&mut ws, Message::text("still here")).await;
}
