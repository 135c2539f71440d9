//! The echo service: every data message goes back to its sender unchanged,
//! text as text and binary as binary, byte for byte. The payload is a
//! reference-counted buffer, so nothing is copied.

use tokio_tungstenite::tungstenite::Message;

/// The reply to one data message.
#[inline]
pub(crate) fn reply(message: Message) -> Option<Message> {
    match message {
        Message::Text(_) | Message::Binary(_) => Some(message),
        Message::Ping(_) | Message::Pong(_) | Message::Close(_) | Message::Frame(_) => None,
    }
}
