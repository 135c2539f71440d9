//! Memory after large messages: tungstenite grows its read buffer to the
//! size of the largest frame and never shrinks it, so before the codec was
//! renewed at keepalive ticks, clients that had each sent one large
//! message kept that much of the server's memory for as long as they stayed
//! connected. Runs the real `duplex` binary and reads its resident memory
//! from /proc; the connections must keep working after the renewal (echo,
//! fragmented messages, pings, room deliveries written straight to the
//! socket).

use crate::common;

use std::time::Duration;

use crate::common::process::Binary;
use crate::common::rooms::{connect_rooms, join, next_server, publish, send};
use crate::common::{Client, WAIT, assert_echo, bytes, connect, next_message};
use duplex_protocol::ServerMessage;
use tokio::time::{Instant, sleep, timeout};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::frame::coding::{Data, OpCode};
use tokio_tungstenite::tungstenite::protocol::frame::{Frame, FrameHeader};

const CLIENTS: usize = 8;
const LARGE: usize = 4 * 1024 * 1024;

/// The real server on a free port, with a short keepalive tick.
struct Server(Binary);

impl std::ops::Deref for Server {
    type Target = Binary;
    fn deref(&self) -> &Binary {
        &self.0
    }
}

impl Server {
    /// Waits (bounded) until the server has logged `at_least` renewals.
    async fn renewed(&self, at_least: usize) {
        let deadline = Instant::now() + WAIT;
        while self.logged("codec renewed") < at_least {
            assert!(
                Instant::now() < deadline,
                "{} codec renewals logged, expected {at_least}",
                self.logged("codec renewed")
            );
            sleep(common::POLL).await;
        }
    }
}

async fn start_server() -> Server {
    let args = [
        "--workers",
        "1",
        "--ping-interval",
        "200ms",
        "--idle-timeout",
        "30s",
    ];
    let log = "warn,duplex_server::server=info,duplex_server::connection=debug";
    Server(Binary::start(&args, log).await)
}

/// Sends a text message as three frames, a ping between two of them.
async fn send_fragmented(ws: &mut Client, parts: [&str; 3]) {
    let frame = |fin: bool, opcode: OpCode, payload: &str| {
        let header = FrameHeader {
            is_final: fin,
            opcode,
            ..FrameHeader::default()
        };
        Message::Frame(Frame::from_payload(
            header,
            payload.as_bytes().to_vec().into(),
        ))
    };
    send(ws, frame(false, OpCode::Data(Data::Text), parts[0])).await;
    send(ws, Message::Ping(b"mid".to_vec().into())).await;
    send(ws, frame(false, OpCode::Data(Data::Continue), parts[1])).await;
    send(ws, frame(true, OpCode::Data(Data::Continue), parts[2])).await;
}

#[tokio::test]
async fn a_large_message_leaves_no_buffer_behind_and_the_connection_works_on() {
    let server = start_server().await;
    let addr = server.addr;

    let mut clients = Vec::new();
    for _ in 0..CLIENTS {
        clients.push(connect(addr, "/").await);
    }
    let baseline = server.rss();
    let payload = bytes(LARGE, 7);
    for ws in &mut clients {
        assert_echo(ws, Message::binary(payload.clone())).await;
    }

    server.renewed(CLIENTS).await;
    // Holding the buffers would be CLIENTS × 4 MiB = 32 MiB over the
    // baseline. Two of them are margin for the allocator, which may keep
    // freed blocks of a size it has seen for reuse.
    let limit = baseline + 2 * LARGE as u64;
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut now = server.rss();
    while now > limit && Instant::now() < deadline {
        sleep(Duration::from_millis(50)).await;
        now = server.rss();
    }
    assert!(
        now <= limit,
        "{CLIENTS} idle clients that each sent {LARGE} bytes hold {} KiB over the \
         {} KiB before (limit {} KiB)",
        (now - baseline) / 1024,
        baseline / 1024,
        (limit - baseline) / 1024,
    );

    // The renewed codec serves everything as before.
    for ws in &mut clients {
        assert_echo(ws, Message::text("small, after")).await;
        send_fragmented(ws, ["frag", "men", "ted"]).await;
        let mut texts = Vec::new();
        while texts.is_empty() {
            match next_message(ws).await {
                Message::Text(text) => texts.push(text.to_string()),
                Message::Pong(pong) => assert_eq!(&pong[..], b"mid"),
                other => panic!("expected the echo or a pong, got {other:?}"),
            }
        }
        assert_eq!(texts, ["fragmented"]);
        assert_echo(ws, Message::binary(payload.clone())).await;
    }
}

#[tokio::test]
async fn a_rooms_connection_renewed_after_a_large_publish_still_gets_deliveries() {
    let server = start_server().await;
    let addr = server.addr;
    let (mut ada, _) = connect_rooms(addr).await;
    let (mut bob, _) = connect_rooms(addr).await;
    join(&mut ada, "big", "ada").await;
    join(&mut bob, "big", "bob").await;
    next_server(&mut ada).await; // bob's member_joined

    let large = "x".repeat(256 * 1024);
    publish(&mut ada, "big", &large).await;
    for ws in [&mut ada, &mut bob] {
        match next_server(ws).await {
            ServerMessage::Message { text, .. } => assert_eq!(text.len(), large.len()),
            other => panic!("expected the large message, got {other:?}"),
        }
    }
    // Ada's codec is renewed at a tick. (Bob's is not: what he got was
    // written, and only reads grow a codec's buffer.)
    server.renewed(1).await;
    for round in 0..3 {
        let text = format!("after {round}");
        publish(&mut bob, "big", &text).await;
        for ws in [&mut ada, &mut bob] {
            match next_server(ws).await {
                ServerMessage::Message { text: got, .. } => assert_eq!(got, text),
                other => panic!("expected {text:?}, got {other:?}"),
            }
        }
        publish(&mut ada, "big", &text).await;
        for ws in [&mut ada, &mut bob] {
            match next_server(ws).await {
                ServerMessage::Message { text: got, .. } => assert_eq!(got, text),
                other => panic!("expected {text:?}, got {other:?}"),
            }
        }
    }
    timeout(WAIT, ada.close(None))
        .await
        .expect("close in time")
        .expect("close");
}
