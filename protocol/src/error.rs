//! What can be wrong with a message, for the receiver (typed errors) and for
//! the sender (the [`ErrorCode`] the server answers with).

use serde::{Deserialize, Serialize};

/// Why a text message from a client is not a [`crate::ClientMessage`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// Not JSON at all (or not a JSON object).
    #[error("not a JSON object: {0}")]
    BadJson(#[source] serde_json::Error),
    /// A JSON object whose `"type"` is missing or not one we know.
    #[error("unknown message type {0:?}")]
    UnknownType(Option<String>),
    /// A known `"type"` with missing or mistyped fields.
    #[error("malformed {kind:?} message: {source}")]
    BadMessage {
        /// The message's `"type"`.
        kind: String,
        /// What serde found wrong.
        #[source]
        source: serde_json::Error,
    },
}

impl DecodeError {
    /// The code the server answers this error with.
    #[must_use]
    pub fn code(&self) -> ErrorCode {
        match self {
            Self::BadJson(_) => ErrorCode::BadJson,
            Self::UnknownType(_) => ErrorCode::UnknownType,
            Self::BadMessage { .. } => ErrorCode::BadMessage,
        }
    }
}

/// Why a binary frame is not a valid binary publish or delivery.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BinaryError {
    /// The frame ends before its header does.
    #[error("binary frame too short for its header")]
    Truncated,
    /// The first byte is not a version this peer reads ([`crate::VERSION`];
    /// a server also reads publishes of version 1, whose layout is the
    /// same).
    #[error("binary frame version {0}, expected {v}", v = crate::VERSION)]
    Version(u8),
    /// The room name in the header is not UTF-8.
    #[error("room name in the binary header is not UTF-8")]
    RoomNotUtf8,
    /// The room name is longer than a header can carry (255 bytes).
    #[error("room name longer than 255 bytes")]
    RoomTooLong,
}

/// The machine-readable reason in a [`crate::ServerMessage::Error`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ErrorCode {
    /// The text frame is not a JSON object.
    BadJson,
    /// The `"type"` is missing or unknown.
    UnknownType,
    /// A known type with missing or mistyped fields, or an empty name or room.
    BadMessage,
    /// The display name is longer than the server allows.
    NameTooLong,
    /// The room name is longer than the server allows.
    RoomTooLong,
    /// Leave or publish in a room this client has not joined.
    NotJoined,
    /// Join of a room this client is already in.
    AlreadyJoined,
    /// This client is in as many rooms as the server allows.
    TooManyRooms,
    /// A binary frame without a valid header.
    BadBinary,
    /// The server cannot take the publish now (its cluster's store is
    /// unreachable); nothing was delivered to anyone. Try again.
    Unavailable,
    /// The client's token does not allow the room (its `rooms` claim
    /// does not list it). The connection stays up; other rooms may be
    /// joined.
    Forbidden,
}
