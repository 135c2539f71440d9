//! Size limits: a message over `max_message_size` (after reassembly) or a
//! single frame over `max_frame_size` is refused with close code 1009
//! (RFC 6455, section 7.4.1), as soon as the frame header announces it;
//! messages and frames exactly at the limits are echoed.

use crate::common;

use crate::common::{Client, RawClient, TestServer, connect, expect_close};
use duplex_protocol::frame::{Header, MAX_HEADER_LEN};
use duplex_server::Config;
use futures_util::SinkExt;
use tokio_tungstenite::tungstenite::protocol::frame::Frame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::{Data, OpCode};
use tokio_tungstenite::tungstenite::{Bytes, Message};

const MAX_MESSAGE: usize = 1024;
const MAX_FRAME: usize = 512;
const TOO_BIG: (u16, &str) = (1009, "message too big");

fn small_limits() -> Config {
    let mut config = common::config();
    config.max_message_size = MAX_MESSAGE;
    config.max_frame_size = MAX_FRAME;
    config
}

/// Sends `payload` as a binary message cut into frames of `frame_len`.
async fn send_in_frames(ws: &mut Client, payload: &[u8], frame_len: usize) {
    let chunks: Vec<&[u8]> = payload.chunks(frame_len).collect();
    for (i, chunk) in chunks.iter().enumerate() {
        let opcode = if i == 0 { Data::Binary } else { Data::Continue };
        let frame = Frame::message(
            Bytes::copy_from_slice(chunk),
            OpCode::Data(opcode),
            i + 1 == chunks.len(),
        );
        ws.feed(Message::Frame(frame)).await.expect("queue frame");
    }
    ws.flush().await.expect("flush");
}

#[tokio::test]
async fn frame_and_message_at_the_limits_are_echoed() {
    let server = TestServer::start(small_limits()).await;
    let mut ws = connect(server.addr, "/echo").await;
    common::assert_echo(&mut ws, Message::binary(common::bytes(MAX_FRAME, 1))).await;
    common::assert_echo(&mut ws, Message::text(common::text(MAX_FRAME, 2))).await;
    let whole = common::bytes(MAX_MESSAGE, 3);
    send_in_frames(&mut ws, &whole, MAX_FRAME).await;
    common::assert_same_message(
        &common::next_non_control(&mut ws).await,
        &Message::binary(whole),
    );
}

#[tokio::test]
async fn frame_over_max_frame_size_gets_1009() {
    let server = TestServer::start(small_limits()).await;
    let mut ws = connect(server.addr, "/echo").await;
    // One byte over the frame limit, well under the message limit.
    ws.send(Message::binary(common::bytes(MAX_FRAME + 1, 4)))
        .await
        .expect("send");
    expect_close(&mut ws, TOO_BIG.0, TOO_BIG.1).await;
}

#[tokio::test]
async fn message_over_max_message_size_gets_1009() {
    let server = TestServer::start(small_limits()).await;
    let mut ws = connect(server.addr, "/echo").await;
    // Every frame is within the frame limit; the message is one byte over.
    send_in_frames(&mut ws, &common::bytes(MAX_MESSAGE + 1, 5), MAX_FRAME).await;
    expect_close(&mut ws, TOO_BIG.0, TOO_BIG.1).await;
}

#[tokio::test]
async fn huge_announced_length_gets_1009_before_any_payload() {
    let server = TestServer::start(small_limits()).await;
    let mut raw = RawClient::connect(server.addr, "/echo").await;
    // A header announcing 1 GiB, and no payload: the server must answer
    // from the header alone instead of waiting for (or buffering) the data.
    let header = Header::new(duplex_protocol::frame::OpCode::Binary, 1 << 30).masked(common::MASK);
    let mut bytes = [0; MAX_HEADER_LEN];
    let used = header.encode(&mut bytes);
    raw.send(&bytes[..used]).await;
    raw.expect_close(TOO_BIG.0, TOO_BIG.1).await;
}

/// Regression test for a server bug: `Config::validate` accepted
/// `max_outbound_buffer == max_message_size`, but tungstenite counts the
/// frame header (and any queued bytes) against `max_write_buffer_size`, so
/// echoing a message of exactly the maximum size failed with
/// `WriteBufferFull` and the connection was dropped without a Close frame.
/// Whatever margin `validate` demands, its smallest accepted outbound buffer
/// must carry the largest message.
#[tokio::test]
async fn largest_message_is_echoed_with_the_smallest_valid_outbound_buffer() {
    let mut config = small_limits();
    config.max_frame_size = MAX_MESSAGE;
    config.max_outbound_buffer = common::smallest_valid_outbound(&config);
    let server = TestServer::start(config).await;
    let mut ws = connect(server.addr, "/echo").await;
    common::assert_echo(&mut ws, Message::binary(common::bytes(MAX_MESSAGE, 6))).await;
    common::assert_echo(&mut ws, Message::text(common::text(MAX_MESSAGE, 7))).await;
}
