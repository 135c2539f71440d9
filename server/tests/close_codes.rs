//! Protocol errors are answered with the close code RFC 6455 names before
//! the connection is dropped: 1002 for protocol violations (reserved bits,
//! a continuation with nothing to continue, an unmasked client frame, bad
//! opcodes, malformed control frames) and 1007 for text that is not UTF-8,
//! whether in one frame or split over fragments. (1009 is in `limits.rs`.)

use crate::common;

use crate::common::{Client, RawClient, TestServer, config, connect, expect_close, op};
use futures_util::SinkExt;
use tokio_tungstenite::tungstenite::protocol::frame::coding::{Data, OpCode};
use tokio_tungstenite::tungstenite::protocol::frame::{Frame, FrameHeader};
use tokio_tungstenite::tungstenite::{Bytes, Message};

const PROTOCOL: (u16, &str) = (1002, "protocol error");
const INVALID_UTF8: (u16, &str) = (1007, "invalid UTF-8");

async fn send_frames(ws: &mut Client, frames: Vec<Frame>) {
    for frame in frames {
        ws.feed(Message::Frame(frame)).await.expect("queue frame");
    }
    ws.flush().await.expect("flush");
}

fn data(opcode: Data, payload: &'static [u8], fin: bool) -> Frame {
    Frame::message(Bytes::from_static(payload), OpCode::Data(opcode), fin)
}

/// A fresh connection sends `frames` and must get Close `code` `reason`.
async fn assert_fails_with(server: &TestServer, frames: Vec<Frame>, (code, reason): (u16, &str)) {
    let mut ws = connect(server.addr, "/echo").await;
    send_frames(&mut ws, frames).await;
    expect_close(&mut ws, code, reason).await;
}

#[tokio::test]
async fn nonzero_reserved_bits_get_1002() {
    let server = TestServer::start(config()).await;
    for bit in 0..3 {
        let mut frame = data(Data::Text, b"rsv", true);
        let header: &mut FrameHeader = frame.header_mut();
        match bit {
            0 => header.rsv1 = true,
            1 => header.rsv2 = true,
            _ => header.rsv3 = true,
        }
        assert_fails_with(&server, vec![frame], PROTOCOL).await;
    }
}

#[tokio::test]
async fn continuation_without_a_start_gets_1002() {
    let server = TestServer::start(config()).await;
    assert_fails_with(
        &server,
        vec![data(Data::Continue, b"orphan", true)],
        PROTOCOL,
    )
    .await;
    // Also right after a complete message, which ended the previous one:
    // the message is echoed, then the orphan fails the connection.
    let mut ws = connect(server.addr, "/echo").await;
    send_frames(
        &mut ws,
        vec![
            data(Data::Text, b"complete", true),
            data(Data::Continue, b"orphan", true),
        ],
    )
    .await;
    common::assert_same_message(
        &common::next_non_control(&mut ws).await,
        &Message::text("complete"),
    );
    expect_close(&mut ws, PROTOCOL.0, PROTOCOL.1).await;
}

#[tokio::test]
async fn new_message_inside_a_fragmented_one_gets_1002() {
    let server = TestServer::start(config()).await;
    assert_fails_with(
        &server,
        vec![
            data(Data::Text, b"start", false),
            data(Data::Binary, b"interloper", true),
        ],
        PROTOCOL,
    )
    .await;
}

#[tokio::test]
async fn unmasked_client_frame_gets_1002() {
    let server = TestServer::start(config()).await;
    let mut raw = RawClient::connect(server.addr, "/echo").await;
    raw.send(&common::encode(true, 0, op::TEXT, b"naked", None))
        .await;
    raw.expect_close(PROTOCOL.0, PROTOCOL.1).await;
    raw.expect_end().await;
}

#[tokio::test]
async fn reserved_opcodes_get_1002() {
    let server = TestServer::start(config()).await;
    for opcode in [0x3, 0x7, 0xB, 0xF] {
        let mut raw = RawClient::connect(server.addr, "/echo").await;
        raw.send(&common::frame(true, opcode, b"what is this"))
            .await;
        raw.expect_close(PROTOCOL.0, PROTOCOL.1).await;
        raw.expect_end().await;
    }
}

#[tokio::test]
async fn malformed_control_frames_get_1002() {
    let server = TestServer::start(config()).await;
    let cases: [(&str, Vec<u8>); 3] = [
        ("fragmented ping", common::frame(false, op::PING, b"part")),
        (
            "ping over 125 bytes",
            common::frame(true, op::PING, &[b'p'; 126]),
        ),
        (
            "close with a 1-byte payload",
            common::frame(true, op::CLOSE, &[3]),
        ),
    ];
    for (name, bytes) in cases {
        let mut raw = RawClient::connect(server.addr, "/echo").await;
        raw.send(&bytes).await;
        let frame = raw.read_frame().await;
        assert_eq!(
            frame.close(),
            (PROTOCOL.0, PROTOCOL.1.to_owned()),
            "for a {name}"
        );
        raw.expect_end().await;
    }
}

#[tokio::test]
async fn close_codes_not_allowed_on_the_wire_get_1002() {
    let server = TestServer::start(config()).await;
    // Section 7.4: 1004-1006 and 1015 are reserved and must not be sent,
    // nor can anything below 1000; 2000-2999 are reserved for extensions.
    for code in [0, 999, 1004, 1005, 1006, 1015, 1100, 2000, 2999] {
        let mut raw = RawClient::connect(server.addr, "/echo").await;
        raw.send(&common::frame(
            true,
            op::CLOSE,
            &common::close_payload(code, "bad code"),
        ))
        .await;
        let frame = raw.read_frame().await;
        assert_eq!(
            frame.close().0,
            1002,
            "a Close with code {code} must be answered with 1002"
        );
        raw.expect_end().await;
    }
}

#[tokio::test]
async fn invalid_utf8_text_gets_1007() {
    let server = TestServer::start(config()).await;
    let cases: [&'static [u8]; 5] = [
        b"\xff",
        b"abc\xc3\x28def",              // bad continuation byte
        b"\xed\xa0\x80",                // a UTF-16 surrogate
        b"\xc0\xaf",                    // overlong '/'
        b"ends in the middle \xe2\x9c", // truncated '✓'
    ];
    for payload in cases {
        assert_fails_with(&server, vec![data(Data::Text, payload, true)], INVALID_UTF8).await;
    }
}

#[tokio::test]
async fn invalid_utf8_split_over_fragments_gets_1007() {
    let server = TestServer::start(config()).await;
    let cases: [Vec<Frame>; 3] = [
        // Invalid inside the first fragment, before the message is whole.
        vec![
            data(Data::Text, b"ok \xff", false),
            data(Data::Continue, b"rest", true),
        ],
        // Each fragment could be the start or end of a character, but the
        // join is not UTF-8: a 4-byte lead cut short by ASCII.
        vec![
            data(Data::Text, b"crab \xf0\x9f", false),
            data(Data::Continue, b"A", true),
        ],
        // The message ends inside a character.
        vec![
            data(Data::Text, b"check ", false),
            data(Data::Continue, b"\xe2\x9c", true),
        ],
    ];
    for frames in cases {
        assert_fails_with(&server, frames, INVALID_UTF8).await;
    }
}

#[tokio::test]
async fn invalid_utf8_close_reason_gets_1007() {
    let server = TestServer::start(config()).await;
    let mut raw = RawClient::connect(server.addr, "/echo").await;
    let mut payload = 1000u16.to_be_bytes().to_vec();
    payload.extend_from_slice(b"bad \xff reason");
    raw.send(&common::frame(true, op::CLOSE, &payload)).await;
    raw.expect_close(INVALID_UTF8.0, INVALID_UTF8.1).await;
    raw.expect_end().await;
}
