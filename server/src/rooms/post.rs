//! A message published to a room, before the room's history gives it an
//! offset; then encoded once into the frame every member gets.

use duplex_protocol::{ClientId, Member, ServerMessage, binary};

use crate::wire::Frame;

/// What was published, and by whom.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Post {
    /// The publisher; `None` for the HTTP API.
    pub(crate) from: Option<Member>,
    pub(crate) body: Body,
}

/// A post's content: a JSON `message` or a binary delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Body {
    Text(String),
    Binary(Vec<u8>),
}

impl Post {
    /// The frame members of `room` get for this post at `offset`. A binary
    /// post's room fits its header: the publish it came from had it.
    pub(crate) fn frame(self, room: &str, offset: u64) -> Frame {
        match self.body {
            Body::Text(text) => Frame::text(
                &ServerMessage::Message {
                    room: room.to_owned(),
                    from: self.from,
                    text,
                    offset,
                }
                .to_json(),
            ),
            Body::Binary(payload) => {
                let from: ClientId = self.from.map_or(0, |member| member.id);
                // Room names are checked against --max-room-len (at most
                // 255) before anything is published.
                let delivery =
                    binary::encode_delivery(room, from, offset, &payload).unwrap_or_default();
                Frame::binary(&delivery)
            }
        }
    }
}
