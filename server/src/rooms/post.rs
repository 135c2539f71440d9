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

/// A post's bytes in the cluster's store and on its channel:
/// `[kind u8][sender id u64 BE][name length u16 BE][name][body]`; kind 0
/// is text from a member, 1 binary from a member, 2 text from the HTTP
/// API (sender 0, no name).
impl Post {
    const TEXT: u8 = 0;
    const BINARY: u8 = 1;
    const API: u8 = 2;

    pub(crate) fn encode(&self) -> Vec<u8> {
        let (kind, body): (u8, &[u8]) = match (&self.from, &self.body) {
            (None, Body::Text(text)) => (Self::API, text.as_bytes()),
            (_, Body::Text(text)) => (Self::TEXT, text.as_bytes()),
            (_, Body::Binary(payload)) => (Self::BINARY, payload),
        };
        let (id, name) = self
            .from
            .as_ref()
            .map_or((0, ""), |member| (member.id, member.name.as_str()));
        // Names are at most --max-name-len bytes, far below u16::MAX.
        let name = &name.as_bytes()[..name.len().min(usize::from(u16::MAX))];
        let mut out = Vec::with_capacity(11 + name.len() + body.len());
        out.push(kind);
        out.extend_from_slice(&id.to_be_bytes());
        out.extend_from_slice(&(name.len() as u16).to_be_bytes());
        out.extend_from_slice(name);
        out.extend_from_slice(body);
        out
    }

    /// `None` if the bytes are not a post (another version's, or damaged).
    pub(crate) fn decode(bytes: &[u8]) -> Option<Self> {
        let (&kind, rest) = bytes.split_first()?;
        let (id, rest) = rest.split_first_chunk::<8>()?;
        let (len, rest) = rest.split_first_chunk::<2>()?;
        let (name, body) = rest.split_at_checked(usize::from(u16::from_be_bytes(*len)))?;
        let from = Some(Member {
            id: ClientId::from_be_bytes(*id),
            name: std::str::from_utf8(name).ok()?.to_owned(),
        });
        let text = || String::from_utf8(body.to_vec()).ok();
        match kind {
            Self::TEXT => Some(Self {
                from,
                body: Body::Text(text()?),
            }),
            Self::BINARY => Some(Self {
                from,
                body: Body::Binary(body.to_vec()),
            }),
            Self::API => Some(Self {
                from: None,
                body: Body::Text(text()?),
            }),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn posts_round_trip_through_their_bytes() {
        let member = Some(Member {
            id: (1 << 53) - 1,
            name: "ada lovelace".into(),
        });
        for post in [
            Post {
                from: member.clone(),
                body: Body::Text("hello, {room}".into()),
            },
            Post {
                from: member,
                body: Body::Binary(vec![0, 255, b' ', 10]),
            },
            Post {
                from: None,
                body: Body::Text(String::new()),
            },
        ] {
            assert_eq!(Post::decode(&post.encode()), Some(post));
        }
        assert_eq!(Post::decode(&[]), None);
        assert_eq!(Post::decode(&[7; 20]), None);
        assert_eq!(Post::decode(&[0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 9, b'x']), None);
    }
}
