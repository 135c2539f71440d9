//! Graceful shutdown: when the shutdown future resolves, the listener stops
//! accepting, every connected client receives Close 1001 "server shutting
//! down", and `run` returns `Ok` as soon as the close handshakes complete,
//! or after `shutdown_grace` when a client does not answer.

use crate::common;

use std::time::Duration;

use crate::common::{RawClient, TestServer, connect, expect_close, frame, op};
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpSocket, TcpStream};
use tokio::time::{Instant, timeout};
use tokio_tungstenite::tungstenite::Message;

const SHUTTING_DOWN: (u16, &str) = (1001, "server shutting down");

async fn assert_refused(server: &TestServer) {
    match timeout(common::WAIT, TcpStream::connect(server.addr)).await {
        Ok(Err(error)) => assert_eq!(error.kind(), std::io::ErrorKind::ConnectionRefused),
        Ok(Ok(_)) => panic!("a connection was accepted after shutdown"),
        Err(_) => panic!("connecting after shutdown neither failed nor succeeded"),
    }
}

#[tokio::test]
async fn every_client_gets_1001_and_run_returns_ok() {
    let mut config = common::config();
    let grace = Duration::from_secs(5);
    config.shutdown_grace = grace;
    let mut server = TestServer::start(config).await;
    let mut clients = Vec::new();
    for i in 0..10 {
        let mut ws = connect(server.addr, if i % 2 == 0 { "/" } else { "/echo" }).await;
        common::assert_echo(&mut ws, Message::text(format!("client {i}"))).await;
        clients.push(ws);
    }
    common::wait_for_connections(server.addr, 10, common::WAIT).await;

    let started = Instant::now();
    server.shutdown();
    for ws in &mut clients {
        // Reading the Close also sends our reply, completing the handshake.
        expect_close(ws, SHUTTING_DOWN.0, SHUTTING_DOWN.1).await;
    }
    server
        .finished(grace)
        .await
        .expect("run returns Ok after a graceful shutdown");
    let elapsed = started.elapsed();
    assert!(
        elapsed < grace,
        "run took {elapsed:?}: it should return once every handshake completed, not wait out the {grace:?} grace"
    );
    assert_refused(&server).await;
}

#[tokio::test]
async fn run_returns_after_the_grace_when_a_client_does_not_answer() {
    let mut config = common::config();
    let grace = Duration::from_millis(300);
    config.shutdown_grace = grace;
    let mut server = TestServer::start(config).await;
    let mut polite = connect(server.addr, "/echo").await;
    // The raw client reads the server's Close but never answers it.
    let mut silent = RawClient::connect(server.addr, "/echo").await;
    common::wait_for_connections(server.addr, 2, common::WAIT).await;

    let started = Instant::now();
    server.shutdown();
    expect_close(&mut polite, SHUTTING_DOWN.0, SHUTTING_DOWN.1).await;
    silent.expect_close(SHUTTING_DOWN.0, SHUTTING_DOWN.1).await;
    server
        .finished(grace + common::WAIT)
        .await
        .expect("run returns Ok after the grace period");
    let elapsed = started.elapsed();
    assert!(
        elapsed >= grace,
        "run returned after {elapsed:?}, before the {grace:?} grace for the silent client"
    );
    // The unanswered connection is dropped.
    silent.expect_end().await;
    assert_refused(&server).await;
}

#[tokio::test]
async fn clients_still_in_the_http_phase_are_cut_at_shutdown() {
    // A long handshake timeout: shutdown, not the timeout, must end these.
    let mut config = common::config();
    config.handshake_timeout = Duration::from_secs(30);
    let mut server = TestServer::start(config).await;
    let mut half = common::tcp(server.addr).await;
    let request = common::upgrade_request(server.addr, "/echo");
    half.write_all(&request[..20]).await.expect("write");
    // Wait until the server has the connection: a full round trip on
    // another connection after ours was accepted.
    assert_eq!(common::open_connections(server.addr).await, 0);

    let started = Instant::now();
    server.shutdown();
    server.finished(common::WAIT).await.expect("run returns Ok");
    let mut rest = Vec::new();
    let read = timeout(
        common::WAIT,
        tokio::io::AsyncReadExt::read_to_end(&mut half, &mut rest),
    )
    .await
    .expect("the half-open HTTP connection was not closed");
    assert!(
        read.is_err() || rest.is_empty(),
        "expected no response, got {:?}",
        String::from_utf8_lossy(&rest)
    );
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "shutdown waited {:?} for a client in the HTTP phase",
        started.elapsed()
    );
}

/// Regression (fixed): `run` logged "grace period over: dropping the
/// remaining connections" and returned without dropping them: their tasks
/// kept running on the caller's runtime. A session blocked writing to a
/// client that does not read only notices the shutdown when its write
/// times out (here 30 s), so the connection outlives `run`.
#[tokio::test]
async fn connections_left_after_the_grace_are_dropped() {
    const MESSAGE: usize = 16 * 1024;
    let mut config = common::config();
    let grace = Duration::from_millis(300);
    config.shutdown_grace = grace;
    config.write_timeout = Duration::from_secs(30);
    config.max_message_size = MESSAGE;
    config.max_frame_size = MESSAGE;
    // Small, so the client is throttled early, but with room for a few
    // echoes beyond any margin `validate` requires.
    config.max_outbound_buffer = common::smallest_valid_outbound(&config).max(4 * MESSAGE);
    let mut server = TestServer::start(config).await;

    let socket = TcpSocket::new_v4().expect("socket");
    socket.set_recv_buffer_size(4096).expect("SO_RCVBUF");
    let tcp = timeout(common::WAIT, socket.connect(server.addr))
        .await
        .expect("connect timed out")
        .expect("connect");
    let mut tcp = RawClient::handshake(tcp, server.addr, "/echo", &[])
        .await
        .tcp;
    // Send without reading until our writes stall: the server is then
    // blocked writing its echoes to us.
    let message = frame(true, op::BINARY, &common::bytes(MESSAGE, 1));
    let mut stalled = false;
    for _ in 0..4096 {
        match timeout(Duration::from_millis(200), tcp.write_all(&message)).await {
            Ok(Ok(())) => {}
            Ok(Err(error)) => panic!("dropped before shutdown: {error}"),
            Err(_) => {
                stalled = true;
                break;
            }
        }
    }
    assert!(
        stalled,
        "the server kept reading from a client that never reads"
    );

    server.shutdown();
    server
        .finished(grace + common::WAIT)
        .await
        .expect("run returns Ok");
    // Once run has returned the connection must be gone: a blocked write
    // fails as soon as the server resets it.
    match timeout(Duration::from_secs(2), tcp.write_all(&message)).await {
        Ok(Err(_)) => {}
        Ok(Ok(())) => panic!("the server read from a connection it should have dropped"),
        Err(_) => panic!("the connection is still open 2 s after run returned"),
    }
}

/// The session polls input before its shutdown waiter, so a client that
/// never stops sending must still be told promptly (the session reads a
/// stop flag on every turn, and tokio's cooperative budget also makes a
/// busy input yield). The client keeps a stream of messages in flight,
/// reading the echoes as it goes, and must receive Close 1001 within 1 s.
#[tokio::test]
async fn a_client_flooding_the_server_still_gets_1001() {
    use futures_util::{SinkExt, StreamExt};

    let mut config = common::config();
    let grace = Duration::from_secs(2);
    config.shutdown_grace = grace;
    let mut server = TestServer::start(config).await;
    let ws = connect(server.addr, "/echo").await;
    let (mut sink, mut stream) = ws.split();
    // Keep a pipeline of messages in flight for as long as the server takes
    // them, bounded in count.
    let flood = tokio::spawn(async move {
        for i in 0..200_000u32 {
            if sink
                .send(Message::binary(i.to_be_bytes().to_vec()))
                .await
                .is_err()
            {
                break;
            }
        }
    });
    // Let the flood get going: wait for some echoes.
    for _ in 0..100 {
        timeout(common::WAIT, stream.next())
            .await
            .expect("echo within the wait")
            .expect("stream open")
            .expect("echo");
    }
    let started = Instant::now();
    server.shutdown();
    let close = timeout(grace, async {
        while let Some(Ok(message)) = stream.next().await {
            if let Message::Close(frame) = message {
                return frame;
            }
        }
        None
    })
    .await
    .expect("Close within the grace period");
    let frame = close.expect("a Close frame with a code");
    assert_eq!(u16::from(frame.code), SHUTTING_DOWN.0);
    assert_eq!(frame.reason.as_str(), SHUTTING_DOWN.1);
    assert!(
        started.elapsed() < grace,
        "1001 took {:?}",
        started.elapsed()
    );
    flood.abort();
    // Our Close reply never goes out (the sink went with the flood), so
    // `run` waits out the whole grace: allow for that, plus slack.
    server
        .finished(grace + common::WAIT)
        .await
        .expect("run returns Ok");
}
