//! The JSON messages, one enum per direction, tagged by `"type"`.

use serde::{Deserialize, Serialize};

use crate::error::{DecodeError, ErrorCode};

/// A connection's id, assigned by the server: unique among every instance
/// of a cluster while it runs, and below 2^53 so a JavaScript number holds
/// it exactly ([`MAX_CLIENT_ID`]).
pub type ClientId = u64;

/// The largest client id a server hands out: `Number.MAX_SAFE_INTEGER`.
pub const MAX_CLIENT_ID: ClientId = (1 << 53) - 1;

/// A message's place in its room's history: the room's epoch and the
/// message's offset in it. Offsets count the room's messages from 1, one
/// order for every member on every instance; the epoch changes whenever
/// the room's history is lost, and offsets start again at 1.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Position {
    /// The history's epoch, an opaque string.
    pub epoch: String,
    /// The offset of the last message received (0: none yet).
    pub offset: u64,
}

/// What a client may send as a text frame. Exhaustive on purpose: the
/// server must handle every message, and a new one means a new
/// [`crate::VERSION`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ClientMessage {
    /// Become a member of `room` (created if it does not exist), shown to
    /// the others as `name`.
    Join {
        /// The room's name.
        room: String,
        /// The display name in this room.
        name: String,
        /// Where a rejoining client left off: the server replays what it
        /// missed, if the room's history still holds all of it.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        since: Option<Position>,
    },
    /// Stop being a member of `room`.
    Leave {
        /// The room's name.
        room: String,
    },
    /// Send `text` to every member of `room`, the sender included.
    Publish {
        /// The room's name.
        room: String,
        /// The message.
        text: String,
    },
}

impl ClientMessage {
    /// The `"type"` values, for telling an unknown type from a malformed
    /// known one.
    const TYPES: [&'static str; 3] = ["join", "leave", "publish"];
}

/// Decodes one text frame from a client, telling bad JSON, an unknown type
/// and a malformed known type apart (each gets its own error code).
///
/// # Errors
/// See [`DecodeError`].
pub fn decode_client(text: &str) -> Result<ClientMessage, DecodeError> {
    // One JSON object, nothing else: serde's tagged enums also accept a
    // sequence (`["join","lobby","ada"]` would join), which the protocol
    // does not allow (issue 10, defect 3).
    if !text
        .trim_start_matches([' ', '\t', '\n', '\r'])
        .starts_with('{')
    {
        let not_an_object =
            serde_json::from_str::<serde_json::Map<String, serde_json::Value>>(text)
                .err()
                .unwrap_or_else(|| serde::de::Error::custom("expected a JSON object"));
        return Err(DecodeError::BadJson(not_an_object));
    }
    let error = match serde_json::from_str(text) {
        Ok(message) => return Ok(message),
        Err(error) => error,
    };
    /// Just the tag, to classify a failure (only on the error path).
    #[derive(Deserialize)]
    struct Tag {
        #[serde(rename = "type")]
        kind: Option<serde_json::Value>,
    }
    match serde_json::from_str::<Tag>(text) {
        Err(_) => Err(DecodeError::BadJson(error)),
        Ok(Tag {
            kind: Some(serde_json::Value::String(kind)),
        }) if ClientMessage::TYPES.contains(&kind.as_str()) => Err(DecodeError::BadMessage {
            kind,
            source: error,
        }),
        Ok(Tag { kind }) => Err(DecodeError::UnknownType(kind.map(|kind| match kind {
            serde_json::Value::String(kind) => kind,
            other => other.to_string(),
        }))),
    }
}

/// A member of a room as others see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Member {
    /// The member's connection id.
    pub id: ClientId,
    /// Its display name in this room.
    pub name: String,
}

/// Why a member is no longer in a room.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum LeaveReason {
    /// It sent `leave`.
    Left,
    /// Its connection ended.
    Disconnected,
    /// The server closed it (1013) for falling too far behind.
    TooSlow,
}

/// What the server sends as a text frame.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
#[non_exhaustive]
pub enum ServerMessage {
    /// First message on every connection.
    Welcome {
        /// [`crate::VERSION`].
        version: u8,
        /// This connection's id.
        client_id: ClientId,
        /// Longest display name accepted, in bytes.
        max_name_len: usize,
        /// Longest room name accepted, in bytes.
        max_room_len: usize,
    },
    /// Answer to `join`: the members, this client included, and where
    /// the room's history stands.
    Joined {
        /// The room's name.
        room: String,
        /// The members in order of id: all of them, or the first
        /// `--presence-limit` in a larger room.
        members: Vec<Member>,
        /// How many members the room has.
        member_count: usize,
        /// The room's epoch.
        epoch: String,
        /// The offset of the room's latest message (0: none). The member
        /// gets every message above it.
        offset: u64,
        /// Only when the `join` carried `since`: `true` when the messages
        /// after it follow at once (before any live one), `false` when the
        /// history no longer holds them (other epoch, too old, or an offset
        /// the room never reached) and nothing is replayed.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        recovered: Option<bool>,
    },
    /// Answer to `leave`.
    Left {
        /// The room's name.
        room: String,
    },
    /// Someone else joined a room this client is in (not sent in rooms
    /// larger than the server's presence limit).
    MemberJoined {
        /// The room's name.
        room: String,
        /// The new member.
        member: Member,
    },
    /// Someone else left a room this client is in (not sent in rooms
    /// larger than the server's presence limit).
    MemberLeft {
        /// The room's name.
        room: String,
        /// The member that left.
        member: Member,
        /// Why.
        reason: LeaveReason,
    },
    /// A text published to a room this client is in.
    Message {
        /// The room's name.
        room: String,
        /// The publisher; `null` for a push from the HTTP API.
        from: Option<Member>,
        /// The message.
        text: String,
        /// Its offset in the room's history.
        offset: u64,
    },
    /// The room's history was lost while this client was a member (the
    /// history expired, or the store restarted empty): offsets start again
    /// in a new epoch. Messages after `offset` in `epoch` follow.
    HistoryReset {
        /// The room's name.
        room: String,
        /// The new epoch.
        epoch: String,
        /// The offset in the new epoch after which this client gets every
        /// message (0 when the new epoch has none yet).
        offset: u64,
    },
    /// This client's queue overflowed: the `count` oldest messages queued
    /// for it were dropped. Sent before the next message it does get.
    Missed {
        /// How many messages were dropped.
        count: u64,
    },
    /// The last message from this client was refused; the connection
    /// stays up.
    Error {
        /// What was wrong.
        code: ErrorCode,
        /// A human-readable explanation.
        message: String,
        /// The room the refused message named, exactly as sent, when it
        /// named one (`join`, `leave`, `publish`, a binary publish whose
        /// header decoded): without it a client with several requests in
        /// flight cannot tell which join failed. Omitted from the JSON when
        /// `None`, and read as `None` when absent, so peers from before the
        /// field still understand each other (no new [`crate::VERSION`]).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        room: Option<String>,
    },
}

impl ServerMessage {
    /// The JSON text of this message.
    #[must_use]
    pub fn to_json(&self) -> String {
        // Serialising these types cannot fail: string keys, no maps with
        // non-string keys, no custom Serialize impls.
        serde_json::to_string(self).unwrap_or_default()
    }
}

/// One room in `GET /api/rooms`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoomInfo {
    /// The room's name.
    pub room: String,
    /// How many members it has.
    pub members: usize,
}

/// The body of `GET /api/rooms`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoomList {
    /// Every room, by name.
    pub rooms: Vec<RoomInfo>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_messages_decode() {
        assert_eq!(
            decode_client(r#"{"type":"join","room":"lobby","name":"ada"}"#).ok(),
            Some(ClientMessage::Join {
                room: "lobby".into(),
                name: "ada".into(),
                since: None,
            })
        );
        assert_eq!(
            decode_client(r#"{"type":"publish","room":"r","text":"hi"}"#).ok(),
            Some(ClientMessage::Publish {
                room: "r".into(),
                text: "hi".into()
            })
        );
    }

    #[test]
    fn decode_errors_are_classified() {
        let code = |text| decode_client(text).err().map(|e| e.code());
        assert_eq!(code("not json"), Some(ErrorCode::BadJson));
        assert_eq!(code("[1,2]"), Some(ErrorCode::BadJson));
        // Arrays in the shape of a command are not commands.
        assert_eq!(code(r#"["join","room","ada"]"#), Some(ErrorCode::BadJson));
        assert_eq!(code(r#" ["publish","room","x"]"#), Some(ErrorCode::BadJson));
        assert_eq!(code(r#"["leave","room"]"#), Some(ErrorCode::BadJson));
        assert_eq!(code(r#""join""#), Some(ErrorCode::BadJson));
        assert_eq!(code(""), Some(ErrorCode::BadJson));
        // Whitespace before the object is still JSON.
        assert!(decode_client(" \n\t{\"type\":\"leave\",\"room\":\"r\"}").is_ok());
        assert_eq!(code(r#"{"type":"dance"}"#), Some(ErrorCode::UnknownType));
        assert_eq!(code(r#"{"room":"r"}"#), Some(ErrorCode::UnknownType));
        assert_eq!(code(r#"{"type":7}"#), Some(ErrorCode::UnknownType));
        assert_eq!(
            code(r#"{"type":"join","room":"r"}"#),
            Some(ErrorCode::BadMessage)
        );
        assert_eq!(
            code(r#"{"type":"leave","room":5}"#),
            Some(ErrorCode::BadMessage)
        );
    }

    #[test]
    fn server_messages_round_trip() {
        let message = ServerMessage::Message {
            room: "lobby".into(),
            from: None,
            text: "deploy done".into(),
            offset: 7,
        };
        let json = message.to_json();
        assert_eq!(
            json,
            r#"{"type":"message","room":"lobby","from":null,"text":"deploy done","offset":7}"#
        );
        let back: ServerMessage = serde_json::from_str(&json).expect("round trip");
        assert_eq!(back, message);
        let error = ServerMessage::Error {
            code: ErrorCode::NotJoined,
            message: "x".into(),
            room: None,
        };
        assert!(error.to_json().contains(r#""code":"not_joined""#));
    }

    /// `since` and `recovered` are optional: left out when absent, so a
    /// join without them reads as a join from before history existed.
    #[test]
    fn history_fields_are_optional_on_the_wire() {
        let join = decode_client(
            r#"{"type":"join","room":"r","name":"n","since":{"epoch":"e1","offset":4}}"#,
        )
        .expect("a join with since");
        assert_eq!(
            join,
            ClientMessage::Join {
                room: "r".into(),
                name: "n".into(),
                since: Some(Position {
                    epoch: "e1".into(),
                    offset: 4
                }),
            }
        );
        let joined = ServerMessage::Joined {
            room: "r".into(),
            members: Vec::new(),
            member_count: 0,
            epoch: "e1".into(),
            offset: 0,
            recovered: None,
        };
        assert_eq!(
            joined.to_json(),
            r#"{"type":"joined","room":"r","members":[],"member_count":0,"epoch":"e1","offset":0}"#
        );
        let reset = ServerMessage::HistoryReset {
            room: "r".into(),
            epoch: "e2".into(),
            offset: 0,
        };
        assert_eq!(
            reset.to_json(),
            r#"{"type":"history_reset","room":"r","epoch":"e2","offset":0}"#
        );
    }

    /// The error's `room` is optional both ways: left out when there is
    /// none (what a client from before the field expects to see), and
    /// read as `None` when a server from before the field leaves it out.
    #[test]
    fn error_room_is_optional_on_the_wire() {
        let general = ServerMessage::Error {
            code: ErrorCode::BadJson,
            message: "m".into(),
            room: None,
        };
        assert_eq!(
            general.to_json(),
            r#"{"type":"error","code":"bad_json","message":"m"}"#
        );
        let about_room = ServerMessage::Error {
            code: ErrorCode::TooManyRooms,
            message: "m".into(),
            room: Some("lobby".into()),
        };
        let json = about_room.to_json();
        assert_eq!(
            json,
            r#"{"type":"error","code":"too_many_rooms","message":"m","room":"lobby"}"#
        );
        let back: ServerMessage = serde_json::from_str(&json).expect("round trip");
        assert_eq!(back, about_room);
        let old: ServerMessage =
            serde_json::from_str(r#"{"type":"error","code":"bad_json","message":"m"}"#)
                .expect("an error without room");
        assert_eq!(old, general);
        let null: ServerMessage =
            serde_json::from_str(r#"{"type":"error","code":"bad_json","message":"m","room":null}"#)
                .expect("an error with a null room");
        assert_eq!(null, general);
    }
}
