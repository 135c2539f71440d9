//! Echo: every data message sent to `/` or `/echo` comes back byte for byte
//! with the same type (text stays text, binary stays binary), including
//! empty and 1 MiB messages, in the order sent.

use crate::common;

use crate::common::{TestServer, assert_echo, config, connect, next_non_control};
use futures_util::SinkExt;
use tokio_tungstenite::tungstenite::Message;

const PATHS: [&str; 2] = ["/", "/echo"];

#[tokio::test]
async fn text_comes_back_byte_exact() {
    let server = TestServer::start(config()).await;
    for path in PATHS {
        let mut ws = connect(server.addr, path).await;
        assert_echo(&mut ws, Message::text("hello, duplex")).await;
        assert_echo(&mut ws, Message::text(common::text(1000, 1))).await;
        assert_echo(&mut ws, Message::text("ünïcødé ✓ 🦀 \u{0} \u{10ffff}")).await;
    }
}

#[tokio::test]
async fn binary_comes_back_byte_exact() {
    let server = TestServer::start(config()).await;
    for path in PATHS {
        let mut ws = connect(server.addr, path).await;
        // Every byte value, and bytes that are not UTF-8 (would be refused
        // as text).
        let all: Vec<u8> = (0..=255).collect();
        assert_echo(&mut ws, Message::binary(all)).await;
        assert_echo(&mut ws, Message::binary(vec![0xff, 0xfe, 0x00, 0xc3])).await;
        assert_echo(&mut ws, Message::binary(common::bytes(70_000, 2))).await;
    }
}

#[tokio::test]
async fn empty_messages_come_back_empty() {
    let server = TestServer::start(config()).await;
    for path in PATHS {
        let mut ws = connect(server.addr, path).await;
        assert_echo(&mut ws, Message::text("")).await;
        assert_echo(&mut ws, Message::binary(Vec::new())).await;
    }
}

#[tokio::test]
async fn one_mebibyte_messages_come_back_byte_exact() {
    let server = TestServer::start(config()).await;
    for path in PATHS {
        let mut ws = connect(server.addr, path).await;
        assert_echo(&mut ws, Message::binary(common::bytes(1 << 20, 3))).await;
        assert_echo(&mut ws, Message::text(common::text(1 << 20, 4))).await;
    }
}

/// Large data frames bypass tungstenite's write buffer (written header +
/// payload by the server itself): every length encoding (7-bit, 16-bit,
/// 64-bit) on both sides of that threshold, text and binary, interleaved
/// with small messages that still go through tungstenite, must come back
/// byte-exact and in order.
#[tokio::test]
async fn frames_on_both_sides_of_the_direct_write_threshold_come_back_exact() {
    let server = TestServer::start(config()).await;
    let mut ws = connect(server.addr, "/echo").await;
    let sizes = [125, 126, 4095, 4096, 4097, 65_535, 65_536, 70_000];
    let mut sent = Vec::new();
    for (i, size) in sizes.into_iter().enumerate() {
        sent.push(Message::binary(common::bytes(size, i as u64)));
        sent.push(Message::text(common::text(size, i as u64)));
        sent.push(Message::text(format!("small {i}")));
    }
    assert_pipelined_echo(&mut ws, &sent).await;
}

#[tokio::test]
async fn pipelined_messages_come_back_in_order() {
    let server = TestServer::start(config()).await;
    let mut ws = connect(server.addr, "/echo").await;
    let sent: Vec<Message> = (0..50u64)
        .map(|i| {
            if i % 2 == 0 {
                Message::text(common::text(i as usize * 97, i))
            } else {
                Message::binary(common::bytes(i as usize * 131, i))
            }
        })
        .collect();
    assert_pipelined_echo(&mut ws, &sent).await;
}

/// Regression: a burst longer than the server's batch (64 messages) lost
/// one message per batch: the batch's last round read one message more and
/// then ended without answering it. Found by the browser suite's burst test.
#[tokio::test]
async fn a_pipelined_burst_longer_than_a_batch_comes_back_whole() {
    const BURST: u64 = 1000;
    let server = TestServer::start(config()).await;
    let mut ws = connect(server.addr, "/echo").await;
    for i in 0..BURST {
        ws.feed(Message::text(format!("burst {i}")))
            .await
            .expect("queue message");
    }
    ws.flush().await.expect("flush");
    for i in 0..BURST {
        let got = next_non_control(&mut ws).await;
        assert_eq!(
            got,
            Message::text(format!("burst {i}")),
            "echo {i} of {BURST}"
        );
    }
}

/// Frames written in the same packet as the upgrade request are read by
/// the HTTP layer before the upgrade; they must reach the WebSocket session
/// and not be lost.
#[tokio::test]
async fn frames_sent_with_the_handshake_are_not_lost() {
    let server = TestServer::start(config()).await;
    let mut early = common::frame(true, common::op::TEXT, b"early bird");
    early.extend(common::frame(true, common::op::BINARY, &[1, 2, 3]));
    let tcp = common::tcp(server.addr).await;
    let mut raw = common::RawClient::handshake(tcp, server.addr, "/echo", &early).await;
    let first = raw.read_frame().await;
    assert_eq!(
        (first.fin, first.opcode, first.payload.as_slice()),
        (true, common::op::TEXT, &b"early bird"[..])
    );
    let second = raw.read_frame().await;
    assert_eq!(
        (second.fin, second.opcode, second.payload.as_slice()),
        (true, common::op::BINARY, &[1u8, 2, 3][..])
    );
}

/// Sends every message in one write, then checks that each echo comes back
/// byte-exact and in order.
async fn assert_pipelined_echo(ws: &mut common::Client, sent: &[Message]) {
    for message in sent {
        ws.feed(message.clone()).await.expect("queue message");
    }
    ws.flush().await.expect("flush");
    for (i, expected) in sent.iter().enumerate() {
        let got = next_non_control(ws).await;
        assert!(
            got == *expected,
            "message {i} ({} bytes) came back different or out of order",
            expected.len()
        );
    }
}
