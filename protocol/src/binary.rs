//! The binary frame format: a small header then the payload as is, so a
//! binary publish costs no base64 and the payload is never copied into JSON.
//!
//! ```text
//! client -> server  [version u8][room length u8][room, UTF-8][payload...]
//! server -> client  [version u8][room length u8][room, UTF-8][sender id u64 BE][payload...]
//! ```
//! The sender id is 0 for a push from the HTTP API (client ids start at 1).

use crate::VERSION;
use crate::error::BinaryError;
use crate::message::ClientId;

/// Bytes of the sender id in a delivery.
pub const SENDER_LEN: usize = 8;

/// A binary publish, as the server reads it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Publish<'a> {
    /// The room it is for.
    pub room: &'a str,
    /// The payload, untouched.
    pub payload: &'a [u8],
}

/// A binary delivery, as a client reads it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Delivery<'a> {
    /// The room it was published to.
    pub room: &'a str,
    /// Who published it (0: the HTTP API).
    pub from: ClientId,
    /// The payload, untouched.
    pub payload: &'a [u8],
}

/// Splits `[version][room length][room]` off the front of a frame.
fn split_room(frame: &[u8]) -> Result<(&str, &[u8]), BinaryError> {
    let [version, len, rest @ ..] = frame else {
        return Err(BinaryError::Truncated);
    };
    if *version != VERSION {
        return Err(BinaryError::Version(*version));
    }
    let len = usize::from(*len);
    let room = rest.get(..len).ok_or(BinaryError::Truncated)?;
    let room = std::str::from_utf8(room).map_err(|_| BinaryError::RoomNotUtf8)?;
    Ok((room, &rest[len..]))
}

fn header(room: &str, extra: usize, payload: usize) -> Result<Vec<u8>, BinaryError> {
    let len = u8::try_from(room.len()).map_err(|_| BinaryError::RoomTooLong)?;
    let mut out = Vec::with_capacity(2 + room.len() + extra + payload);
    out.push(VERSION);
    out.push(len);
    out.extend_from_slice(room.as_bytes());
    Ok(out)
}

/// Encodes a binary publish (what a client sends).
///
/// # Errors
/// [`BinaryError::RoomTooLong`] if `room` is over 255 bytes.
pub fn encode_publish(room: &str, payload: &[u8]) -> Result<Vec<u8>, BinaryError> {
    let mut out = header(room, 0, payload.len())?;
    out.extend_from_slice(payload);
    Ok(out)
}

/// Decodes a binary publish.
///
/// # Errors
/// See [`BinaryError`].
pub fn decode_publish(frame: &[u8]) -> Result<Publish<'_>, BinaryError> {
    let (room, payload) = split_room(frame)?;
    Ok(Publish { room, payload })
}

/// Encodes a binary delivery (what the server sends to every member).
///
/// # Errors
/// [`BinaryError::RoomTooLong`] if `room` is over 255 bytes.
pub fn encode_delivery(room: &str, from: ClientId, payload: &[u8]) -> Result<Vec<u8>, BinaryError> {
    let mut out = header(room, SENDER_LEN, payload.len())?;
    out.extend_from_slice(&from.to_be_bytes());
    out.extend_from_slice(payload);
    Ok(out)
}

/// Decodes a binary delivery.
///
/// # Errors
/// See [`BinaryError`].
pub fn decode_delivery(frame: &[u8]) -> Result<Delivery<'_>, BinaryError> {
    let (room, rest) = split_room(frame)?;
    let (from, payload) = rest
        .split_at_checked(SENDER_LEN)
        .ok_or(BinaryError::Truncated)?;
    let mut id = [0u8; SENDER_LEN];
    id.copy_from_slice(from);
    Ok(Delivery {
        room,
        from: ClientId::from_be_bytes(id),
        payload,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn publish_round_trips() {
        let frame = encode_publish("lobby", &[0, 1, 255]).expect("encode");
        assert_eq!(frame, [1, 5, b'l', b'o', b'b', b'b', b'y', 0, 1, 255]);
        let publish = decode_publish(&frame).expect("decode");
        assert_eq!(publish.room, "lobby");
        assert_eq!(publish.payload, [0, 1, 255]);
    }

    #[test]
    fn delivery_round_trips() {
        let frame = encode_delivery("r", 258, b"xy").expect("encode");
        assert_eq!(frame, [1, 1, b'r', 0, 0, 0, 0, 0, 0, 1, 2, b'x', b'y']);
        let delivery = decode_delivery(&frame).expect("decode");
        assert_eq!((delivery.room, delivery.from), ("r", 258));
        assert_eq!(delivery.payload, b"xy");
    }

    #[test]
    fn bad_headers_are_refused() {
        assert_eq!(decode_publish(&[1]), Err(BinaryError::Truncated));
        assert_eq!(decode_publish(&[2, 0]), Err(BinaryError::Version(2)));
        assert_eq!(decode_publish(&[1, 3, b'a']), Err(BinaryError::Truncated));
        assert_eq!(decode_publish(&[1, 1, 0xff]), Err(BinaryError::RoomNotUtf8));
        assert_eq!(decode_delivery(&[1, 0, 1, 2]), Err(BinaryError::Truncated));
        let long = "x".repeat(256);
        assert_eq!(encode_publish(&long, b""), Err(BinaryError::RoomTooLong));
        // An empty room name and an empty payload are well-formed here; the
        // server decides whether an empty room is acceptable.
        assert!(decode_publish(&[1, 0]).is_ok());
    }
}
