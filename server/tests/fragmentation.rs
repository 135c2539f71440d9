//! Fragmentation: a message sent as several frames (RFC 6455, section 5.4)
//! is reassembled and echoed as one message, byte for byte, also when a
//! fragment boundary splits a UTF-8 character and when a ping is
//! interleaved between fragments (the ping is answered with its pong).

use crate::common;

use crate::common::{Client, TestServer, assert_same_message, config, connect, next_message};
use futures_util::SinkExt;
use tokio::time::timeout;
use tokio_tungstenite::tungstenite::protocol::frame::Frame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::{Data, OpCode};
use tokio_tungstenite::tungstenite::{Bytes, Message};

async fn send_frame(ws: &mut Client, frame: Frame) {
    timeout(common::WAIT, ws.send(Message::Frame(frame)))
        .await
        .expect("send timed out")
        .expect("send frame");
}

/// Sends `payload` as a message of type `data` cut at `cuts` (offsets),
/// with a ping carrying `ping` after the first fragment.
async fn send_fragmented(ws: &mut Client, data: Data, payload: &[u8], cuts: &[usize], ping: &[u8]) {
    let mut bounds = vec![0];
    bounds.extend_from_slice(cuts);
    bounds.push(payload.len());
    let last = bounds.len() - 2;
    for (i, pair) in bounds.windows(2).enumerate() {
        let opcode = if i == 0 { data } else { Data::Continue };
        let chunk = Bytes::copy_from_slice(&payload[pair[0]..pair[1]]);
        send_frame(ws, Frame::message(chunk, OpCode::Data(opcode), i == last)).await;
        if i == 0 {
            send_frame(ws, Frame::ping(Bytes::copy_from_slice(ping))).await;
        }
    }
}

/// Reads the pong for `ping` and the echoed message, in whichever order
/// they come, ignoring pings from the server.
async fn expect_pong_and(ws: &mut Client, ping: &[u8], expected: &Message) {
    let mut pong = false;
    let mut echoed = false;
    for _ in 0..10 {
        if pong && echoed {
            return;
        }
        match next_message(ws).await {
            Message::Pong(payload) => {
                assert!(!pong, "a second pong");
                assert_eq!(
                    payload.as_ref(),
                    ping,
                    "pong payload differs from the ping's"
                );
                pong = true;
            }
            Message::Ping(_) => {}
            message => {
                assert!(!echoed, "a second data message: {message:?}");
                assert_same_message(&message, expected);
                echoed = true;
            }
        }
    }
    assert!(
        pong && echoed,
        "pong received: {pong}, echo received: {echoed}"
    );
}

#[tokio::test]
async fn fragmented_text_is_reassembled_across_split_characters() {
    let server = TestServer::start(config()).await;
    let text = "Hello, wörld ✓ 🦀!";
    let bytes = text.as_bytes();
    // Cut inside 'ö' (2 bytes), inside '✓' (3 bytes) and inside the crab
    // (4 bytes), so no fragment but the first is valid UTF-8 on its own.
    let o = text.find('ö').expect("ö");
    let check = text.find('✓').expect("✓");
    let crab = text.find('🦀').expect("🦀");
    let cuts = [3, o + 1, check + 2, crab + 1, crab + 3];
    for path in ["/", "/echo"] {
        let mut ws = connect(server.addr, path).await;
        send_fragmented(&mut ws, Data::Text, bytes, &cuts, b"between fragments").await;
        expect_pong_and(&mut ws, b"between fragments", &Message::text(text)).await;
    }
}

#[tokio::test]
async fn fragmented_binary_is_reassembled() {
    let server = TestServer::start(config()).await;
    let payload = common::bytes(100_000, 7);
    // 100 fragments of uneven sizes, one of them empty.
    let mut cuts: Vec<usize> = (1..100).map(|i| i * 1000 + (i * 37) % 500).collect();
    cuts[50] = cuts[49];
    for path in ["/", "/echo"] {
        let mut ws = connect(server.addr, path).await;
        send_fragmented(&mut ws, Data::Binary, &payload, &cuts, b"\x00\xffping").await;
        expect_pong_and(&mut ws, b"\x00\xffping", &Message::binary(payload.clone())).await;
    }
}

#[tokio::test]
async fn fragmented_messages_interleave_in_order_with_whole_ones() {
    let server = TestServer::start(config()).await;
    let mut ws = connect(server.addr, "/echo").await;
    let first = common::text(5000, 1);
    let second = common::bytes(5000, 2);
    send_fragmented(&mut ws, Data::Text, first.as_bytes(), &[1, 2, 4000], b"1").await;
    send_frame(
        &mut ws,
        Frame::message(Bytes::from_static(b"whole"), OpCode::Data(Data::Text), true),
    )
    .await;
    send_fragmented(&mut ws, Data::Binary, &second, &[0, 2500], b"2").await;

    let mut data = Vec::new();
    let mut pongs = Vec::new();
    for _ in 0..10 {
        if data.len() == 3 && pongs.len() == 2 {
            break;
        }
        match next_message(&mut ws).await {
            Message::Pong(payload) => pongs.push(payload),
            Message::Ping(_) => {}
            message => data.push(message),
        }
    }
    assert_eq!(pongs, [Bytes::from_static(b"1"), Bytes::from_static(b"2")]);
    assert_eq!(data.len(), 3, "expected three echoed messages");
    assert_same_message(&data[0], &Message::text(first));
    assert_same_message(&data[1], &Message::text("whole"));
    assert_same_message(&data[2], &Message::binary(second));
}
