//! The application protocol spoken on `/ws`: rooms, publish/subscribe and
//! presence. Shared by the server, the browser client and the load
//! generator, so it depends on neither tokio nor web-sys and builds for
//! wasm32 as well as natively.
//!
//! Control messages are JSON text frames tagged by `"type"`
//! ([`ClientMessage`], [`ServerMessage`]); binary payloads travel in binary
//! frames behind a small header ([`binary`]). `docs/protocol.md` lists every
//! message with an example.
//!
//! Below the messages, [`frame`] is the one WebSocket frame header codec
//! (RFC 6455 §5.2) that the server, its tests and the load generator share,
//! and [`deflate`] (feature `deflate`) permessage-deflate's negotiation and
//! message compression (RFC 7692).

pub mod binary;
#[cfg(feature = "deflate")]
pub mod deflate;
mod error;
pub mod frame;
mod message;

pub use error::{BinaryError, DecodeError, ErrorCode};
pub use message::{
    ClientId, ClientMessage, LeaveReason, MAX_CLIENT_ID, Member, Position, RoomInfo, RoomList,
    ServerMessage, decode_client,
};

/// The protocol version, sent in [`ServerMessage::Welcome`] and as the first
/// byte of every binary frame. Raised on any change an older peer would
/// misread; not for a field an older peer can ignore, such as the optional
/// `room` of [`ServerMessage::Error`] (every peer ignores fields it does not
/// know, and the field is omitted when absent). Raising it also changes the
/// first byte of every binary frame, so it is not done lightly.
///
/// Version 2 added the offset to binary deliveries (history and recovery);
/// JSON messages only gained optional or additional fields. Binary publishes
/// did not change, and servers read version 1 publishes as well.
pub const VERSION: u8 = 2;
