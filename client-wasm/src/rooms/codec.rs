//! The `/ws` JSON, both ways, without serde_json in the .wasm (it would add
//! about 65 KiB): client messages are written by hand in exactly the JSON
//! serde writes (a native test compares them), and server messages are
//! read with `JSON.parse` in the browser and with serde_json natively. The
//! two decoders must agree: the browser tests feed the wasm one the same
//! texts the native tests give serde (`client-wasm/tests/browser.rs`).

use duplex_protocol::{ClientMessage, ServerMessage};

use super::NotAServerMessage;
use crate::message::Message;

/// Appends `text` as a JSON string literal.
fn json_string(out: &mut String, text: &str) {
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if u32::from(c) < 0x20 => {
                const HEX: &[u8; 16] = b"0123456789abcdef";
                let byte = c as u8;
                out.push_str("\\u00");
                out.push(char::from(HEX[usize::from(byte >> 4)]));
                out.push(char::from(HEX[usize::from(byte & 15)]));
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// Appends `,"key":"value"`.
fn string_field(out: &mut String, key: &str, value: &str) {
    out.push_str(",\"");
    out.push_str(key);
    out.push_str("\":");
    json_string(out, value);
}

/// A client message as a text frame, in the JSON serde would write.
pub(super) fn encode(message: &ClientMessage) -> Message {
    let mut out = String::from(r#"{"type":""#);
    match message {
        ClientMessage::Join { room, name, since } => {
            out.push_str("join\"");
            string_field(&mut out, "room", room);
            string_field(&mut out, "name", name);
            if let Some(since) = since {
                out.push_str(r#","since":{"epoch":"#);
                json_string(&mut out, &since.epoch);
                out.push_str(r#","offset":"#);
                out.push_str(&since.offset.to_string());
                out.push('}');
            }
        }
        ClientMessage::Leave { room } => {
            out.push_str("leave\"");
            string_field(&mut out, "room", room);
        }
        ClientMessage::Publish { room, text } => {
            out.push_str("publish\"");
            string_field(&mut out, "room", room);
            string_field(&mut out, "text", text);
        }
    }
    out.push('}');
    Message::Text(out)
}

/// The server message in a text frame, as the rooms model reads it:
/// natively (tests) with serde_json.
///
/// # Errors
/// [`NotAServerMessage`] when it is not one of the messages in
/// `docs/protocol.md`.
#[cfg(not(target_arch = "wasm32"))]
pub fn decode(text: &str) -> Result<ServerMessage, NotAServerMessage> {
    serde_json::from_str(text).map_err(|_| NotAServerMessage("not valid JSON of a known type"))
}

/// The server message in a text frame, as the rooms model reads it: in the
/// browser with `JSON.parse`, field by field as serde would (a missing or
/// mistyped field is an error, an optional one, `recovered` or an error's
/// `room`, may be absent).
///
/// Numbers arrive as JavaScript numbers, exact up to 2^53: client ids stay
/// below it (`MAX_CLIENT_ID`), and so do offsets (one message a
/// microsecond would take 285 years to get there).
///
/// # Errors
/// [`NotAServerMessage`] when it is not one of the messages in
/// `docs/protocol.md`.
#[cfg(target_arch = "wasm32")]
pub fn decode(text: &str) -> Result<ServerMessage, NotAServerMessage> {
    use duplex_protocol::{LeaveReason, Member};
    use js_sys::{Array, JSON, Reflect};
    use wasm_bindgen::{JsCast, JsValue};

    let bad = |_: &str| NotAServerMessage("a field is missing or mistyped");
    let get = |value: &JsValue, key: &str| {
        Reflect::get(value, &JsValue::from_str(key))
            .ok()
            .filter(|v| !v.is_undefined())
    };
    let string = |value: &JsValue, key: &str| {
        get(value, key)
            .and_then(|v| v.as_string())
            .ok_or_else(|| bad(key))
    };
    let number = |value: &JsValue, key: &str| {
        get(value, key)
            .and_then(|v| v.as_f64())
            .filter(|n| *n >= 0.0)
            .map(|n| n as u64)
            .ok_or_else(|| bad(key))
    };
    let member = |value: &JsValue| -> Result<Member, NotAServerMessage> {
        Ok(Member {
            id: number(value, "id")?,
            name: string(value, "name")?,
        })
    };
    let value = JSON::parse(text).map_err(|_| NotAServerMessage("not JSON"))?;
    if !value.is_object() {
        return Err(NotAServerMessage("not a JSON object"));
    }
    let room = || string(&value, "room");
    let kind = string(&value, "type")?;
    Ok(match kind.as_str() {
        "welcome" => ServerMessage::Welcome {
            version: u8::try_from(number(&value, "version")?).unwrap_or(u8::MAX),
            client_id: number(&value, "client_id")?,
            max_name_len: number(&value, "max_name_len")? as usize,
            max_room_len: number(&value, "max_room_len")? as usize,
        },
        "joined" => ServerMessage::Joined {
            room: room()?,
            members: get(&value, "members")
                .and_then(|v| v.dyn_into::<Array>().ok())
                .ok_or_else(|| bad("members"))?
                .iter()
                .map(|m| member(&m))
                .collect::<Result<_, _>>()?,
            member_count: number(&value, "member_count")? as usize,
            epoch: string(&value, "epoch")?,
            offset: number(&value, "offset")?,
            // Only when the join carried `since`.
            recovered: match get(&value, "recovered") {
                Some(recovered) if !recovered.is_null() => {
                    Some(recovered.as_bool().ok_or_else(|| bad("recovered"))?)
                }
                _ => None,
            },
        },
        "left" => ServerMessage::Left { room: room()? },
        "member_joined" => ServerMessage::MemberJoined {
            room: room()?,
            member: member(&get(&value, "member").ok_or_else(|| bad("member"))?)?,
        },
        "member_left" => ServerMessage::MemberLeft {
            room: room()?,
            member: member(&get(&value, "member").ok_or_else(|| bad("member"))?)?,
            reason: match string(&value, "reason")?.as_str() {
                "left" => LeaveReason::Left,
                "too_slow" => LeaveReason::TooSlow,
                _ => LeaveReason::Disconnected,
            },
        },
        "message" => ServerMessage::Message {
            room: room()?,
            from: match get(&value, "from") {
                Some(from) if !from.is_null() => Some(member(&from)?),
                _ => None,
            },
            text: string(&value, "text")?,
            offset: number(&value, "offset")?,
        },
        "history_reset" => ServerMessage::HistoryReset {
            room: room()?,
            epoch: string(&value, "epoch")?,
            offset: number(&value, "offset")?,
        },
        "missed" => ServerMessage::Missed {
            count: number(&value, "count")?,
        },
        "error" => ServerMessage::Error {
            code: error_code(&string(&value, "code")?),
            message: string(&value, "message")?,
            // Optional: absent from servers older than the field, and from
            // errors about no room.
            room: match get(&value, "room") {
                Some(room) if !room.is_null() => Some(room.as_string().ok_or_else(|| bad("room"))?),
                _ => None,
            },
        },
        _ => return Err(NotAServerMessage("unknown type")),
    })
}

/// An error code by its name; a code newer than this client reads as
/// `bad_message` (the message text still says what happened).
#[cfg(target_arch = "wasm32")]
fn error_code(code: &str) -> duplex_protocol::ErrorCode {
    use duplex_protocol::ErrorCode;

    match code {
        "bad_json" => ErrorCode::BadJson,
        "unknown_type" => ErrorCode::UnknownType,
        "name_too_long" => ErrorCode::NameTooLong,
        "room_too_long" => ErrorCode::RoomTooLong,
        "not_joined" => ErrorCode::NotJoined,
        "already_joined" => ErrorCode::AlreadyJoined,
        "too_many_rooms" => ErrorCode::TooManyRooms,
        "bad_binary" => ErrorCode::BadBinary,
        "unavailable" => ErrorCode::Unavailable,
        "forbidden" => ErrorCode::Forbidden,
        _ => ErrorCode::BadMessage,
    }
}

// serde_json is a native-only dependency (see Cargo.toml).
#[cfg(all(test, not(target_arch = "wasm32")))]
mod tests {
    use duplex_protocol::Position;

    use super::*;

    fn json(message: &ClientMessage) -> String {
        let Message::Text(json) = encode(message) else {
            panic!("text");
        };
        json
    }

    /// Every client message, tricky strings included, as serde writes it
    /// and reads it back.
    #[test]
    fn encoding_matches_serde() {
        let tricky = "q\"b\\n\nt\tc\u{1}é🙂";
        let messages = [
            ClientMessage::Publish {
                room: "r".into(),
                text: tricky.into(),
            },
            ClientMessage::Leave { room: "r".into() },
            ClientMessage::Join {
                room: tricky.into(),
                name: "ada".into(),
                since: None,
            },
            ClientMessage::Join {
                room: "lobby".into(),
                name: "ada".into(),
                since: Some(Position {
                    epoch: tricky.into(),
                    offset: u64::MAX,
                }),
            },
        ];
        for message in messages {
            let json = json(&message);
            assert_eq!(
                json,
                serde_json::to_string(&message).expect("serialises"),
                "{message:?}"
            );
            let back: ClientMessage = serde_json::from_str(&json).expect("valid JSON");
            assert_eq!(back, message);
        }
    }

    #[test]
    fn a_rejoin_carries_since() {
        let join = ClientMessage::Join {
            room: "lobby".into(),
            name: "ada".into(),
            since: Some(Position {
                epoch: "e1".into(),
                offset: 7,
            }),
        };
        assert_eq!(
            json(&join),
            r#"{"type":"join","room":"lobby","name":"ada","since":{"epoch":"e1","offset":7}}"#
        );
    }
}
