//! Rooms: a malformed or refused message gets a typed `error` back and the
//! connection stays up; one refused message too many closes it with 1008.
//! An error about a message that named a room carries that room, so the
//! client can tell which of its joins failed.

use crate::common;

use crate::common::rooms::{connect_rooms, join, next_server, publish, send, send_client};
use crate::common::{TestServer, config, expect_close, next_non_control};
use duplex_protocol::{ClientMessage, ErrorCode, ServerMessage, binary};
use tokio_tungstenite::tungstenite::Message;

/// Reads an `error` and checks its code and the room it names (`None`:
/// the message named no room).
async fn expect_error(ws: &mut common::Client, expected: ErrorCode, room: Option<&str>) {
    match next_server(ws).await {
        ServerMessage::Error {
            code,
            message,
            room: got,
        } => {
            assert_eq!(code, expected, "message: {message}");
            assert!(!message.is_empty());
            assert_eq!(got.as_deref(), room, "room of the {expected:?} error");
        }
        other => panic!("expected error {expected:?}, got {other:?}"),
    }
}

fn join_as(room: &str, name: &str) -> ClientMessage {
    ClientMessage::Join {
        room: room.into(),
        name: name.into(),
        since: None,
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
    expect_error(&mut ws, ErrorCode::BadJson, None).await;
    send(&mut ws, Message::text(r#"{"type":"dance"}"#)).await;
    expect_error(&mut ws, ErrorCode::UnknownType, None).await;
    send(&mut ws, Message::text(r#"{"type":"join","room":"r"}"#)).await;
    expect_error(&mut ws, ErrorCode::BadMessage, None).await;
    send_client(&mut ws, &join_as("r", "ninechars")).await;
    expect_error(&mut ws, ErrorCode::NameTooLong, Some("r")).await;
    send_client(&mut ws, &join_as("ninechars", "n")).await;
    expect_error(&mut ws, ErrorCode::RoomTooLong, Some("ninechars")).await;
    publish(&mut ws, "r", "hi").await;
    expect_error(&mut ws, ErrorCode::NotJoined, Some("r")).await;
    send_client(&mut ws, &ClientMessage::Leave { room: "r".into() }).await;
    expect_error(&mut ws, ErrorCode::NotJoined, Some("r")).await;
    send(&mut ws, Message::binary(vec![9, 0])).await;
    expect_error(&mut ws, ErrorCode::BadBinary, None).await;

    // Still up, and still served.
    join(&mut ws, "r", "ada").await;
    send_client(&mut ws, &join_as("r", "ada")).await;
    expect_error(&mut ws, ErrorCode::AlreadyJoined, Some("r")).await;
    publish(&mut ws, "r", "still here").await;
    match next_server(&mut ws).await {
        ServerMessage::Message { text, .. } => assert_eq!(text, "still here"),
        other => panic!("expected the message, got {other:?}"),
    }
}

/// A command's fields as a JSON array are not a command: serde's tagged
/// enums accept sequences, so `["join","r","ada"]` used to join (issue 10,
/// defect 3). A text frame is one JSON object (docs/protocol.md).
#[tokio::test]
async fn arrays_are_bad_json_not_commands() {
    let server = TestServer::start(config()).await;
    let (mut ws, _) = connect_rooms(server.addr).await;
    send(&mut ws, Message::text(r#"["join","r","ada"]"#)).await;
    expect_error(&mut ws, ErrorCode::BadJson, None).await;
    // Not a member: the array did not join.
    publish(&mut ws, "r", "x").await;
    expect_error(&mut ws, ErrorCode::NotJoined, Some("r")).await;
    join(&mut ws, "r", "ada").await;
    send(&mut ws, Message::text(r#"["publish","r","x"]"#)).await;
    expect_error(&mut ws, ErrorCode::BadJson, None).await;
    send(&mut ws, Message::text(r#"["leave","r"]"#)).await;
    expect_error(&mut ws, ErrorCode::BadJson, None).await;
    // Still a member, and nothing was published by the arrays.
    publish(&mut ws, "r", "object").await;
    match next_server(&mut ws).await {
        ServerMessage::Message { text, .. } => assert_eq!(text, "object"),
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
        expect_error(&mut ws, ErrorCode::BadJson, None).await;
    }
    send(&mut ws, Message::text("nope")).await;
    expect_close(&mut ws, 1008, "too many bad messages").await;
}

/// Every refusal of a join names the room, so a client with several joins
/// in flight can stop waiting for the one that failed (it used to show the
/// room as "joining…" forever); so do refusals of leave and of text and
/// binary publishes. Messages that name no room get errors without one,
/// and the key is left out of the JSON, as before the field existed.
#[tokio::test]
async fn errors_about_a_room_name_it_and_others_leave_it_out() {
    let mut config = config();
    config.max_name_len = 8;
    config.max_room_len = 8;
    config.max_rooms_per_client = 1;
    // More refusals below than the default allows before closing.
    config.max_protocol_errors = 100;
    let server = TestServer::start(config).await;
    let (mut ws, _) = connect_rooms(server.addr).await;

    // Join refusals, one per check.
    send_client(&mut ws, &join_as("r", "")).await;
    expect_error(&mut ws, ErrorCode::BadMessage, Some("r")).await;
    send_client(&mut ws, &join_as("", "ada")).await;
    expect_error(&mut ws, ErrorCode::BadMessage, Some("")).await;
    send_client(&mut ws, &join_as("r", "ninechars")).await;
    expect_error(&mut ws, ErrorCode::NameTooLong, Some("r")).await;
    send_client(&mut ws, &join_as("ninechars", "ada")).await;
    expect_error(&mut ws, ErrorCode::RoomTooLong, Some("ninechars")).await;
    join(&mut ws, "r", "ada").await;
    send_client(&mut ws, &join_as("s", "ada")).await;
    expect_error(&mut ws, ErrorCode::TooManyRooms, Some("s")).await;

    // Publish and leave, text and binary.
    publish(&mut ws, "s", "hi").await;
    expect_error(&mut ws, ErrorCode::NotJoined, Some("s")).await;
    send_client(&mut ws, &ClientMessage::Leave { room: "s".into() }).await;
    expect_error(&mut ws, ErrorCode::NotJoined, Some("s")).await;
    let frame = binary::encode_publish("s", b"bytes").expect("encode");
    send(&mut ws, Message::binary(frame)).await;
    expect_error(&mut ws, ErrorCode::NotJoined, Some("s")).await;
    let frame = binary::encode_publish("ninechars", b"bytes").expect("encode");
    send(&mut ws, Message::binary(frame)).await;
    expect_error(&mut ws, ErrorCode::RoomTooLong, Some("ninechars")).await;

    // No room named (or none readable): no `room` key at all on the wire.
    for (frame, code) in [
        (Message::text("{not json"), "bad_json"),
        (
            Message::text(r#"{"type":"dance","room":"r"}"#),
            "unknown_type",
        ),
        (Message::binary(vec![9, 1, b'r']), "bad_binary"),
    ] {
        send(&mut ws, frame).await;
        let Message::Text(json) = next_non_control(&mut ws).await else {
            panic!("expected the {code} error as a text frame");
        };
        let value: serde_json::Value = serde_json::from_str(json.as_str()).expect("JSON");
        assert_eq!(value["code"], code, "{json}");
        assert!(value.get("room").is_none(), "a room in {json}");
    }
}
