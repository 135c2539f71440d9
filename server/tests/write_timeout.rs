//! The write timeout: a client that keeps sending but never reads its
//! echoes fills the TCP buffers until the server cannot write; after
//! `write_timeout` the server drops it, its slot in the open-connection
//! count is freed, and other clients are served normally all along.

use crate::common;

use std::time::Duration;

use crate::common::{RawClient, TestServer, connect, frame, op};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpSocket;
use tokio::time::{Instant, timeout, timeout_at};
use tokio_tungstenite::tungstenite::Message;

const WRITE_TIMEOUT: Duration = Duration::from_millis(200);
const MESSAGE: usize = 16 * 1024;
/// At most this many messages are sent: 64 MiB, far more than any loopback
/// socket buffers, so the server's writes must block long before.
const MAX_MESSAGES: usize = 4096;

#[tokio::test]
async fn client_that_never_reads_is_dropped() {
    let mut config = common::config();
    config.max_message_size = MESSAGE;
    config.max_frame_size = MESSAGE;
    config.write_timeout = WRITE_TIMEOUT;
    // Small, so the client is throttled early, but with room for a few
    // echoes beyond any margin `validate` requires.
    config.max_outbound_buffer = common::smallest_valid_outbound(&config).max(4 * MESSAGE);
    let server = TestServer::start(config).await;

    // A small receive buffer (set before connecting, so the kernel does not
    // grow it) makes the server's writes block sooner.
    let socket = TcpSocket::new_v4().expect("socket");
    socket.set_recv_buffer_size(4096).expect("SO_RCVBUF");
    let tcp = timeout(common::WAIT, socket.connect(server.addr))
        .await
        .expect("connect timed out")
        .expect("connect");
    let raw = RawClient::handshake(tcp, server.addr, "/echo", &[]).await;
    common::wait_for_connections(server.addr, 1, common::WAIT).await;

    // Send echo requests and never read: once the buffers are full both
    // ways, our writes block too, until the server gives up on us and
    // resets the connection.
    let message = frame(true, op::BINARY, &common::bytes(MESSAGE, 1));
    let mut tcp = raw.tcp;
    let started = Instant::now();
    let writer = tokio::spawn(async move {
        let deadline = Instant::now() + common::WAIT * 2;
        for sent in 0..MAX_MESSAGES {
            match timeout_at(deadline, tcp.write_all(&message)).await {
                Err(_) => {
                    return Err(format!(
                        "still connected, writes blocked after {sent} messages"
                    ));
                }
                Ok(Err(error)) => return Ok((sent, error)),
                Ok(Ok(())) => {}
            }
        }
        Err(format!("the server accepted all {MAX_MESSAGES} messages"))
    });

    // Meanwhile another client is served as usual.
    let mut other = connect(server.addr, "/echo").await;
    common::assert_echo(&mut other, Message::text("unaffected")).await;

    let (sent, error) = timeout(common::WAIT * 3, writer)
        .await
        .expect("writer task timed out")
        .expect("writer task panicked")
        .unwrap_or_else(|why| panic!("the non-reading client was never dropped: {why}"));
    let elapsed = started.elapsed();
    assert!(
        matches!(
            error.kind(),
            std::io::ErrorKind::ConnectionReset | std::io::ErrorKind::BrokenPipe
        ),
        "the connection should have been dropped, got {error} after {sent} messages"
    );
    assert!(
        elapsed >= WRITE_TIMEOUT,
        "dropped after {elapsed:?}, before the {WRITE_TIMEOUT:?} write timeout"
    );

    // Only the well-behaved client is left.
    common::wait_for_connections(server.addr, 1, common::WAIT).await;
    common::close(&mut other).await;
    common::wait_for_connections(server.addr, 0, common::WAIT).await;
}
