//! The client-initiated close handshake (RFC 6455, section 5.5.1): the
//! server answers a Close with the peer's own code and reason, or an empty
//! Close for an empty one, then closes the TCP connection and frees the
//! connection's place in the open-connection count.

use crate::common;

use crate::common::{Client, TestServer, config, connect, expect_end, next_message};
use futures_util::SinkExt;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

async fn close_with(ws: &mut Client, frame: Option<CloseFrame>) {
    ws.send(Message::Close(frame)).await.expect("send Close");
}

async fn expect_close_reply(ws: &mut Client, expected: Option<(u16, &str)>) {
    match next_message(ws).await {
        Message::Close(frame) => {
            let got = frame
                .as_ref()
                .map(|frame| (u16::from(frame.code), frame.reason.as_str()));
            assert_eq!(got, expected, "the Close reply does not echo ours");
        }
        other => panic!("expected the Close reply, got {other:?}"),
    }
    expect_end(ws).await;
}

#[tokio::test]
async fn close_is_answered_with_the_peers_code_and_reason() {
    let server = TestServer::start(config()).await;
    for path in ["/", "/echo"] {
        let mut ws = connect(server.addr, path).await;
        close_with(
            &mut ws,
            Some(CloseFrame {
                code: CloseCode::from(4000),
                reason: "bye".into(),
            }),
        )
        .await;
        expect_close_reply(&mut ws, Some((4000, "bye"))).await;
    }
}

#[tokio::test]
async fn standard_codes_and_long_reasons_are_echoed() {
    let server = TestServer::start(config()).await;
    // 123 bytes: the longest reason a 125-byte control frame can carry.
    let long_reason = common::text(123, 5);
    let cases = [
        (1000, ""),
        (1001, "going away"),
        (1008, "policy"),
        (3000, "registered"),
        (4999, long_reason.as_str()),
    ];
    for (code, reason) in cases {
        let mut ws = connect(server.addr, "/echo").await;
        close_with(
            &mut ws,
            Some(CloseFrame {
                code: CloseCode::from(code),
                reason: reason.into(),
            }),
        )
        .await;
        expect_close_reply(&mut ws, Some((code, reason))).await;
    }
}

#[tokio::test]
async fn empty_close_is_answered_with_an_empty_close() {
    let server = TestServer::start(config()).await;
    let mut ws = connect(server.addr, "/echo").await;
    close_with(&mut ws, None).await;
    expect_close_reply(&mut ws, None).await;
}

#[tokio::test]
async fn data_after_close_is_not_echoed() {
    let server = TestServer::start(config()).await;
    let mut raw = common::RawClient::connect(server.addr, "/echo").await;
    let mut bytes = common::frame(
        true,
        common::op::CLOSE,
        &common::close_payload(4001, "done"),
    );
    // Not allowed after a Close (section 5.5.1); must not come back.
    bytes.extend(common::frame(true, common::op::TEXT, b"too late"));
    raw.send(&bytes).await;
    raw.expect_close(4001, "done").await;
    raw.expect_end().await;
}

#[tokio::test]
async fn closed_connections_leave_the_open_count() {
    let server = TestServer::start(config()).await;
    let mut clients = Vec::new();
    for _ in 0..3 {
        clients.push(connect(server.addr, "/echo").await);
    }
    common::wait_for_connections(server.addr, 3, common::WAIT).await;
    for mut ws in clients {
        close_with(&mut ws, None).await;
        expect_close_reply(&mut ws, None).await;
    }
    common::wait_for_connections(server.addr, 0, common::WAIT).await;
}
