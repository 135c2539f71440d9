//! Rooms: a malformed or refused message gets a typed `error` back and the
//! connection stays up; one refused message too many closes it with 1008.

mod common;

use common::rooms::{connect_rooms, join, next_server, publish, send, send_client};
use common::{TestServer, config, expect_close};
use duplex_protocol::{ClientMessage, ErrorCode, ServerMessage};
use tokio_tungstenite::tungstenite::Message;

async fn expect_error(ws: &mut common::Client, expected: ErrorCode) {
    match next_server(ws).await {
        ServerMessage::Error { code, message } => {
            assert_eq!(code, expected, "message: {message}");
            assert!(!message.is_empty());
        }
        other => panic!("expected error {expected:?}, got {other:?}"),
    }
}

#[tokio::test]
async fn each_bad_message_gets_its_error_code_and_the_connection_stays_up() {
    let mut config = config();
    config.max_name_len = 8;
    config.max_room_len = 8;
    let server = TestServer::start(config).await;
    let (mut ws, _) = connect_rooms(server.addr).await;

    send(&mut ws, Message::text("{not json")).await;
    expect_error(&mut ws, ErrorCode::BadJson).await;
    send(&mut ws, Message::text(r#"{"type":"dance"}"#)).await;
    expect_error(&mut ws, ErrorCode::UnknownType).await;
    send(&mut ws, Message::text(r#"{"type":"join","room":"r"}"#)).await;
    expect_error(&mut ws, ErrorCode::BadMessage).await;
    let join_as = |room: &str, name: &str| ClientMessage::Join {
        room: room.into(),
        name: name.into(),
    };
    send_client(&mut ws, &join_as("r", "ninechars")).await;
    expect_error(&mut ws, ErrorCode::NameTooLong).await;
    send_client(&mut ws, &join_as("ninechars", "n")).await;
    expect_error(&mut ws, ErrorCode::RoomTooLong).await;
    publish(&mut ws, "r", "hi").await;
    expect_error(&mut ws, ErrorCode::NotJoined).await;
    send_client(&mut ws, &ClientMessage::Leave { room: "r".into() }).await;
    expect_error(&mut ws, ErrorCode::NotJoined).await;
    send(&mut ws, Message::binary(vec![9, 0])).await;
    expect_error(&mut ws, ErrorCode::BadBinary).await;

    // Still up, and still served.
    join(&mut ws, "r", "ada").await;
    send_client(&mut ws, &join_as("r", "ada")).await;
    expect_error(&mut ws, ErrorCode::AlreadyJoined).await;
    publish(&mut ws, "r", "still here").await;
    match next_server(&mut ws).await {
        ServerMessage::Message { text, .. } => assert_eq!(text, "still here"),
        other => panic!("expected the message, got {other:?}"),
    }
}

#[tokio::test]
async fn repeated_abuse_ends_in_close_1008() {
    let mut config = config();
    config.max_protocol_errors = 3;
    let server = TestServer::start(config).await;
    let (mut ws, _) = connect_rooms(server.addr).await;
    for _ in 0..3 {
        send(&mut ws, Message::text("nope")).await;
        expect_error(&mut ws, ErrorCode::BadJson).await;
    }
    send(&mut ws, Message::text("nope")).await;
    expect_close(&mut ws, 1008, "too many bad messages").await;
}
