//! Rooms: a member kicked by the slow-client policy reads only whole
//! frames, then Close 1013 (issue 10, defect 1).
//!
//! The kick used to abandon a write in the middle of a frame and write the
//! Close right behind the partial bytes: the client saw a data frame whose
//! payload ran into the Close, a protocol error or 1006, never the 1013 the
//! server logged. Here the member stops reading while large messages fill
//! its socket (partial writes certain), is kicked, then reads everything
//! the server sent and parses it frame by frame.

use crate::common;

use std::net::SocketAddr;
use std::time::Duration;

use crate::common::rooms::{connect_rooms, small_buffered_tcp};
use crate::common::{RawClient, TestServer, WAIT, config, frame, op};
use duplex_protocol::{LeaveReason, ServerMessage};
use futures_util::{SinkExt, StreamExt};
use tokio::time::{Instant, timeout};
use tokio_tungstenite::tungstenite::Message;

/// Large enough that a few fill a 4 KiB receive buffer and every write to
/// the stalled member comes back partial.
const SIZE: usize = 60 * 1024;

/// A raw client whose receive buffer is as small as the kernel allows.
async fn small_buffered_raw(addr: SocketAddr) -> RawClient {
    RawClient::handshake(small_buffered_tcp(addr).await, addr, "/ws", &[]).await
}

/// The server message in a text frame; fails the test on anything else.
fn server_message(frame: &common::RawFrame) -> ServerMessage {
    assert_eq!(frame.opcode, op::TEXT, "expected a text frame: {frame:?}");
    assert!(frame.fin, "server frames are unfragmented");
    let text = std::str::from_utf8(&frame.payload).expect("UTF-8 text frame");
    serde_json::from_str(text).unwrap_or_else(|error| {
        panic!(
            "not one server message ({error}); starts {:?}",
            &text[..text.len().min(80)]
        )
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kicked_member_reads_whole_frames_then_close_1013() {
    let mut config = config();
    config.client_queue = 4;
    config.slow_client_missed = 4;
    // Time for the test to come back and read: the server must finish the
    // partial frame, then send the Close.
    config.close_timeout = Duration::from_secs(20);
    config.write_timeout = Duration::from_secs(20);
    let server = TestServer::start(config).await;

    let mut stalled = small_buffered_raw(server.addr).await;
    let welcome = server_message(&stalled.read_frame().await);
    let ServerMessage::Welcome { client_id, .. } = welcome else {
        panic!("expected welcome, got {welcome:?}");
    };
    let join_json = r#"{"type":"join","room":"r","name":"stalled"}"#;
    stalled
        .send(&frame(true, op::TEXT, join_json.as_bytes()))
        .await;
    let joined = server_message(&stalled.read_frame().await);
    assert!(
        matches!(joined, ServerMessage::Joined { .. }),
        "expected joined, got {joined:?}"
    );
    // From here the stalled member reads nothing until it is kicked.

    let (publisher, _) = connect_rooms(server.addr).await;
    let (mut sink, mut stream) = publisher.split();
    let json = serde_json::json!({"type": "join", "room": "r", "name": "publisher"});
    sink.send(Message::text(json.to_string()))
        .await
        .expect("join");
    // The publisher reads its own messages (so it is never slow itself)
    // and stops at the news that the stalled member left as too slow.
    let kicked = tokio::spawn(async move {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let next = tokio::time::timeout_at(deadline, stream.next())
                .await
                .expect("the stalled member was never kicked");
            let Some(Ok(Message::Text(text))) = next else {
                continue;
            };
            if let Ok(ServerMessage::MemberLeft { member, reason, .. }) =
                serde_json::from_str(&text)
            {
                assert_eq!((member.id, reason), (client_id, LeaveReason::TooSlow));
                return;
            }
        }
    });
    let body = "x".repeat(SIZE);
    let mut published = 0;
    while !kicked.is_finished() {
        assert!(published < 2_000, "2,000 publishes and no kick");
        let json = serde_json::json!({"type": "publish", "room": "r", "text": body});
        timeout(WAIT, sink.send(Message::text(json.to_string())))
            .await
            .expect("publish timed out")
            .expect("publish");
        published += 1;
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    kicked.await.expect("publisher");

    // Everything the stalled member was sent: whole room messages, then
    // Close 1013, then the end of the connection.
    let mut messages = 0;
    loop {
        let frame = stalled
            .read_frame_within(Duration::from_secs(25))
            .await
            .expect("the connection ended without a Close");
        if frame.opcode == op::CLOSE {
            assert!(frame.fin && !frame.masked);
            assert_eq!(frame.close().0, 1013, "{:?}", frame.close());
            break;
        }
        match server_message(&frame) {
            ServerMessage::Message { text, .. } => {
                assert_eq!(text.len(), SIZE, "a message cut short");
                messages += 1;
            }
            ServerMessage::Missed { .. } | ServerMessage::MemberJoined { .. } => {}
            other => panic!("unexpected {other:?}"),
        }
    }
    assert!(messages > 0, "no message reached the stalled member");
}
