//! Joining a Duplex room on `/ws` (`docs/protocol.md`), for `fanout` and
//! `hold --join`, and reading binary deliveries, with servers of protocol
//! version 1 (before room history, issue 11) or 2.
//!
//! The two versions differ where the generator looks in two places: a
//! version 2 `joined` carries the room's `epoch` and `offset`, and a
//! version 2 binary delivery carries the message's offset after the sender
//! id. A version 1 server accepts only version 1 publishes (version 2
//! servers read both), so a publisher sends the version its server's
//! `welcome` announced. One generator binary then measures a server from
//! before protocol 2 and one from after it.

use std::borrow::Cow;

use duplex_protocol::binary;
use serde::Deserialize;

use crate::error::ClientError;
use crate::ws::Client;

/// The protocol version servers spoke before room history; they send no
/// offset in binary deliveries and refuse version 2 publishes.
pub const VERSION_1: u8 = 1;

/// The fields of the server's messages during a join that the generator
/// reads: the type, and the `welcome`'s protocol version.
#[derive(Deserialize)]
struct Answer<'a> {
    #[serde(rename = "type", borrow)]
    kind: Cow<'a, str>,
    #[serde(default)]
    version: Option<u8>,
}

/// Sends `join` for `room` as `name` and reads the server's messages up to
/// its `joined` (the `welcome` and presence events come first). Returns
/// the protocol version of the `welcome` ([`duplex_protocol::VERSION`]
/// when the server sent none before `joined`).
///
/// # Errors
/// The socket failed or the server closed, or
/// [`ClientError::Unexpected`] when it answered with something else (an
/// `error`, say), the message as it came.
pub async fn join(client: &mut Client, room: &str, name: &str) -> Result<u8, ClientError> {
    let request = serde_json::json!({ "type": "join", "room": room, "name": name });
    client.send_text(&request.to_string()).await?;
    let mut version = duplex_protocol::VERSION;
    loop {
        let message = client.recv().await?;
        let text = client.payload(&message);
        let answer = serde_json::from_slice::<Answer<'_>>(text).ok();
        match answer
            .as_ref()
            .map(|answer| (&*answer.kind, answer.version))
        {
            Some(("joined", _)) => return Ok(version),
            Some(("welcome", Some(announced))) => version = announced,
            Some(("welcome" | "member_joined" | "member_left", _)) => {}
            _ => {
                return Err(ClientError::Unexpected(
                    String::from_utf8_lossy(text).into_owned(),
                ));
            }
        }
    }
}

/// A binary publish of `payload` to `room` in protocol `version` (1 or 2:
/// the two are laid out alike and differ in their first byte).
///
/// # Errors
/// The room name is longer than a publish can carry.
pub fn encode_publish(
    version: u8,
    room: &str,
    payload: &[u8],
) -> Result<Vec<u8>, duplex_protocol::BinaryError> {
    let mut frame = binary::encode_publish(room, payload)?;
    if version == VERSION_1 {
        frame[0] = VERSION_1;
    }
    Ok(frame)
}

/// The payload of a binary delivery, of protocol 2 or of protocol 1 (no
/// offset); `None` if `frame` is neither.
#[must_use]
pub fn delivery_payload(frame: &[u8]) -> Option<&[u8]> {
    /// Version, room length; then the room and the sender id.
    const HEAD: usize = 2;
    const SENDER: usize = 8;
    if frame.first() == Some(&VERSION_1) {
        let room = usize::from(*frame.get(1)?);
        return frame.get(HEAD + room + SENDER..);
    }
    binary::decode_delivery(frame)
        .ok()
        .map(|delivery| delivery.payload)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deliveries_of_both_versions_give_their_payload() {
        let v2 = binary::encode_delivery("r", 258, 3, b"xy").expect("encode");
        assert_eq!(delivery_payload(&v2), Some(&b"xy"[..]));
        // Version 1: [1][room length][room][sender u64], no offset.
        let v1 = [1, 1, b'r', 0, 0, 0, 0, 0, 0, 1, 2, b'x', b'y'];
        assert_eq!(delivery_payload(&v1), Some(&b"xy"[..]));
        assert_eq!(delivery_payload(&[1, 5, b'r']), None, "truncated");
        assert_eq!(delivery_payload(&[9, 1, b'r']), None, "unknown version");
    }

    #[test]
    fn publishes_carry_the_servers_version() {
        let v2 = encode_publish(duplex_protocol::VERSION, "r", &[7]).expect("encode");
        assert_eq!(v2, [duplex_protocol::VERSION, 1, b'r', 7]);
        let v1 = encode_publish(VERSION_1, "r", &[7]).expect("encode");
        assert_eq!(v1, [1, 1, b'r', 7]);
    }
}
