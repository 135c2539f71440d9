//! Keepalive and the idle timeout: a quiet connection is pinged every
//! `ping_interval`; one from which nothing arrives for `idle_timeout` (it
//! never answers the pings) is closed with 1001 "idle timeout"; a client
//! that answers pings, or keeps sending data, stays connected across many
//! idle periods.

use crate::common;

use std::time::Duration;

use crate::common::{RawClient, TestServer, connect, frame, op};
use tokio::time::{Instant, timeout_at};
use tokio_tungstenite::tungstenite::Message;

const PING_INTERVAL: Duration = Duration::from_millis(50);
const IDLE_TIMEOUT: Duration = Duration::from_millis(200);
/// Timers may start a little before the client's clock does.
const SLACK: Duration = Duration::from_millis(20);
/// How long the tests that expect the connection to survive watch it.
const WATCH: Duration = Duration::from_millis(1000);

async fn start() -> TestServer {
    let mut config = common::config();
    config.ping_interval = PING_INTERVAL;
    config.idle_timeout = IDLE_TIMEOUT;
    config.close_timeout = Duration::from_millis(500);
    TestServer::start(config).await
}

#[tokio::test]
async fn silent_client_is_pinged_then_closed_with_1001() {
    let server = start().await;
    // The raw client never answers a ping.
    let mut raw = RawClient::connect(server.addr, "/echo").await;
    let started = Instant::now();
    let mut pings = 0;
    let close = loop {
        let frame = raw.read_frame().await;
        assert!(frame.fin && frame.rsv == 0 && !frame.masked, "{frame:?}");
        match frame.opcode {
            op::PING => {
                assert!(frame.payload.is_empty(), "ping payload: {frame:?}");
                pings += 1;
                assert!(pings <= 10, "pinged {pings} times and never closed");
            }
            op::CLOSE => break frame,
            _ => panic!("expected pings then Close, got {frame:?}"),
        }
    };
    let elapsed = started.elapsed();
    assert_eq!(close.close(), (1001, "idle timeout".to_owned()));
    assert!(
        elapsed + SLACK >= IDLE_TIMEOUT,
        "closed as idle after {elapsed:?}, before the {IDLE_TIMEOUT:?} timeout"
    );
    // One ping per interval until the timeout: 50, 100, 150 ms; at 200 ms
    // the connection has been silent for the whole idle timeout.
    assert_eq!(pings, 3, "pings before the idle close");

    // Complete the close handshake; the server then hangs up.
    raw.send(&frame(true, op::CLOSE, &close.payload)).await;
    raw.expect_end().await;
    common::wait_for_connections(server.addr, 0, common::WAIT).await;
}

#[tokio::test]
async fn client_that_answers_pings_stays_connected() {
    let server = start().await;
    let mut ws = connect(server.addr, "/echo").await;
    // tokio-tungstenite answers each ping with a pong on the next read, so
    // reading continuously keeps the connection alive.
    let deadline = Instant::now() + WATCH;
    let mut pings = 0;
    while let Ok(next) = timeout_at(deadline, common::next_message(&mut ws)).await {
        match next {
            Message::Ping(payload) => {
                assert!(payload.is_empty());
                pings += 1;
            }
            other => panic!("expected only pings over {WATCH:?}, got {other:?}"),
        }
    }
    assert!(
        pings >= 2,
        "a quiet connection must be pinged; got {pings} pings in {WATCH:?}"
    );
    common::assert_echo(&mut ws, Message::text("still connected")).await;
    assert_eq!(common::open_connections(server.addr).await, 1);
}

#[tokio::test]
async fn client_that_keeps_sending_data_stays_connected() {
    let server = start().await;
    // The raw client never answers pings: only its data proves it is there.
    let mut raw = RawClient::connect(server.addr, "/echo").await;
    let deadline = Instant::now() + WATCH;
    let mut ticks = tokio::time::interval(PING_INTERVAL / 2);
    let mut echoes = 0u32;
    while Instant::now() < deadline {
        ticks.tick().await;
        raw.send(&frame(true, op::TEXT, format!("tick {echoes}").as_bytes()))
            .await;
        // Read until our echo; pings may come in between.
        loop {
            let got = raw.read_frame().await;
            match got.opcode {
                op::PING => {}
                op::TEXT => {
                    assert_eq!(got.payload, format!("tick {echoes}").as_bytes());
                    break;
                }
                _ => panic!("expected the echo of tick {echoes}, got {got:?}"),
            }
        }
        echoes += 1;
    }
    assert!(echoes >= 10, "only {echoes} round trips in {WATCH:?}");
}

/// Regression (fixed): the keepalive counted only complete messages as
/// "heard", not every byte received, so a client streaming one large
/// fragmented message (frames arriving steadily, each well within the idle
/// timeout) is closed as idle in the middle of the message. The same holds
/// for one large frame trickling in. RFC 6455 does not define an idle
/// timeout, but the documented one is "nothing (not even a pong) arrived".
#[tokio::test]
async fn client_streaming_a_fragmented_message_stays_connected() {
    let server = start().await;
    let mut raw = RawClient::connect(server.addr, "/echo").await;
    let deadline = Instant::now() + WATCH;
    let mut ticks = tokio::time::interval(PING_INTERVAL / 2);
    let mut sent = Vec::new();
    let mut fragments = 0u32;
    let started = Instant::now();
    while Instant::now() < deadline {
        tokio::select! {
            _ = ticks.tick() => {
                let chunk = format!("fragment {fragments};");
                let opcode = if fragments == 0 {
                    op::TEXT
                } else {
                    op::CONTINUATION
                };
                raw.send(&frame(false, opcode, chunk.as_bytes())).await;
                sent.extend_from_slice(chunk.as_bytes());
                fragments += 1;
            }
            // Watch what the server sends meanwhile: pings are fine.
            got = raw.read_frame_within(WATCH * 2) => match got {
                Some(got) if got.opcode == op::PING => {}
                got => panic!(
                    "after {fragments} fragments in {:?}, mid-message, the server sent {:?}",
                    started.elapsed(),
                    got.map(|frame| if frame.opcode == op::CLOSE { format!("Close {:?}", frame.close()) } else { format!("{frame:?}") }),
                ),
            },
        }
    }
    raw.send(&frame(true, op::CONTINUATION, b"end")).await;
    sent.extend_from_slice(b"end");
    let echo = loop {
        let got = raw.read_frame().await;
        match got.opcode {
            op::PING => {}
            _ => break got,
        }
    };
    assert_eq!(
        echo.opcode,
        op::TEXT,
        "expected the echo of the {fragments}-fragment message, got {echo:?}"
    );
    assert_eq!(echo.payload, sent);
}
