//! The binary frame format: a small header then the payload as is, so a
//! binary publish costs no base64 and the payload is never copied into JSON.
//!
//! ```text
//! client -> server  [version u8][room length u8][room, UTF-8][payload...]
//! server -> client  [version u8][room length u8][room, UTF-8][sender id u64 BE][offset u64 BE][payload...]
//! ```
//! The sender id is 0 for a push from the HTTP API (client ids start at 1);
//! the offset is the message's place in the room's history, as in a JSON
//! `message`. Version 1 deliveries had no offset; version 1 publishes are
//! the same as version 2 ones, and [`decode_publish`] reads both.

use crate::VERSION;
use crate::error::BinaryError;
use crate::message::ClientId;

/// Bytes of the sender id in a delivery.
pub const SENDER_LEN: usize = 8;

/// Bytes of the offset in a delivery.
pub const OFFSET_LEN: usize = 8;

/// The oldest version whose publishes [`decode_publish`] reads.
const OLDEST_PUBLISH: u8 = 1;

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
    /// Its offset in the room's history.
    pub offset: u64,
    /// The payload, untouched.
    pub payload: &'a [u8],
}

/// Splits `[version][room length][room]` off the front of a frame whose
/// version is in `versions`.
fn split_room(
    frame: &[u8],
    versions: std::ops::RangeInclusive<u8>,
) -> Result<(&str, &[u8]), BinaryError> {
    let [version, len, rest @ ..] = frame else {
        return Err(BinaryError::Truncated);
    };
    if !versions.contains(version) {
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

/// Decodes a binary publish of this version or version 1.
///
/// # Errors
/// See [`BinaryError`].
pub fn decode_publish(frame: &[u8]) -> Result<Publish<'_>, BinaryError> {
    let (room, payload) = split_room(frame, OLDEST_PUBLISH..=VERSION)?;
    Ok(Publish { room, payload })
}

/// Encodes a binary delivery (what the server sends to every member).
///
/// # Errors
/// [`BinaryError::RoomTooLong`] if `room` is over 255 bytes.
pub fn encode_delivery(
    room: &str,
    from: ClientId,
    offset: u64,
    payload: &[u8],
) -> Result<Vec<u8>, BinaryError> {
    let mut out = header(room, SENDER_LEN + OFFSET_LEN, payload.len())?;
    out.extend_from_slice(&from.to_be_bytes());
    out.extend_from_slice(&offset.to_be_bytes());
    out.extend_from_slice(payload);
    Ok(out)
}

/// Decodes a binary delivery.
///
/// # Errors
/// See [`BinaryError`].
pub fn decode_delivery(frame: &[u8]) -> Result<Delivery<'_>, BinaryError> {
    let (room, rest) = split_room(frame, VERSION..=VERSION)?;
    let (from, rest) = rest
        .split_first_chunk::<SENDER_LEN>()
        .ok_or(BinaryError::Truncated)?;
    let (offset, payload) = rest
        .split_first_chunk::<OFFSET_LEN>()
        .ok_or(BinaryError::Truncated)?;
    Ok(Delivery {
        room,
        from: ClientId::from_be_bytes(*from),
        offset: u64::from_be_bytes(*offset),
        payload,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn publish_round_trips() {
        let frame = encode_publish("lobby", &[0, 1, 255]).expect("encode");
        assert_eq!(frame, [2, 5, b'l', b'o', b'b', b'b', b'y', 0, 1, 255]);
        let publish = decode_publish(&frame).expect("decode");
        assert_eq!(publish.room, "lobby");
        assert_eq!(publish.payload, [0, 1, 255]);
        // A version 1 publish is read the same way.
        let old = decode_publish(&[1, 1, b'r', 7]).expect("version 1");
        assert_eq!((old.room, old.payload), ("r", &[7][..]));
    }

    #[test]
    fn delivery_round_trips() {
        let frame = encode_delivery("r", 258, 3, b"xy").expect("encode");
        assert_eq!(
            frame,
            [
                2, 1, b'r', 0, 0, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 0, 0, 0, 3, b'x', b'y'
            ]
        );
        let delivery = decode_delivery(&frame).expect("decode");
        assert_eq!(
            (delivery.room, delivery.from, delivery.offset),
            ("r", 258, 3)
        );
        assert_eq!(delivery.payload, b"xy");
    }

    #[test]
    fn bad_headers_are_refused() {
        assert_eq!(decode_publish(&[2]), Err(BinaryError::Truncated));
        assert_eq!(decode_publish(&[3, 0]), Err(BinaryError::Version(3)));
        assert_eq!(decode_publish(&[0, 0]), Err(BinaryError::Version(0)));
        assert_eq!(decode_publish(&[2, 3, b'a']), Err(BinaryError::Truncated));
        assert_eq!(decode_publish(&[2, 1, 0xff]), Err(BinaryError::RoomNotUtf8));
        assert_eq!(decode_delivery(&[2, 0, 1, 2]), Err(BinaryError::Truncated));
        // A delivery with a sender but no offset is a version 1 delivery.
        assert_eq!(
            decode_delivery(&[2, 0, 0, 0, 0, 0, 0, 0, 0, 1]),
            Err(BinaryError::Truncated)
        );
        assert_eq!(
            decode_delivery(&[1, 0, 0, 0, 0, 0, 0, 0, 0, 1]),
            Err(BinaryError::Version(1))
        );
        let long = "x".repeat(256);
        assert_eq!(encode_publish(&long, b""), Err(BinaryError::RoomTooLong));
        // An empty room name and an empty payload are well-formed here; the
        // server decides whether an empty room is acceptable.
        assert!(decode_publish(&[2, 0]).is_ok());
    }
}
