//! One `/ws` connection's side of the rooms protocol: decode what the
//! client sends, check it against the limits, act on the hub, and answer
//! with a typed error when something is wrong. Dropping it leaves every
//! room the client was in.

use std::collections::HashMap;
use std::sync::Arc;

use duplex_protocol::{
    ClientId, ClientMessage, ErrorCode, LeaveReason, Member, ServerMessage, VERSION, binary,
    decode_client,
};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;

use super::hub::{Hub, JoinError, text};
use super::outbox::Outbox;
use super::post::{Body, Post};
use crate::admission::Identity;
use crate::config::Config;
use crate::deflate::Compression;
use crate::metrics::OutboxCounters;

/// The limits a client is held to, from [`Config`].
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    max_name_len: usize,
    max_room_len: usize,
    max_rooms: usize,
    max_errors: u32,
    queue: usize,
    max_missed: u64,
}

impl Limits {
    pub(crate) fn new(config: &Config) -> Self {
        Self {
            max_name_len: config.max_name_len,
            max_room_len: config.max_room_len,
            max_rooms: config.max_rooms_per_client,
            max_errors: config.max_protocol_errors,
            queue: config.client_queue,
            max_missed: config.slow_client_missed,
        }
    }
}

/// The client sent more refused messages than `--max-protocol-errors`.
#[derive(Debug)]
pub(crate) struct Abusive;

/// A connected rooms client.
#[derive(Debug)]
pub(crate) struct Client {
    hub: Arc<Hub>,
    id: ClientId,
    /// Where the hub queues this client's room traffic.
    outbox: Arc<Outbox>,
    /// The rooms it is in and its display name in each: to check and sign
    /// publishes, and to leave them on drop.
    joined: HashMap<String, String>,
    /// Refused messages so far.
    errors: u32,
    limits: Limits,
    /// Who its token says it is (tokens on): its name in every room, and
    /// the rooms it may join.
    identity: Option<Identity>,
}

/// A refusal: what the `error` answer says.
#[derive(Debug)]
struct Refusal {
    code: ErrorCode,
    message: String,
    /// The room the refused message named, if it named one: the client
    /// may have several joins in flight and needs to know which failed.
    room: Option<String>,
}

impl Refusal {
    /// A refusal of a message that named no room (or could not be read
    /// far enough to find one).
    fn general(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            room: None,
        }
    }

    /// A refusal of a message about `room`, echoed as the client sent it
    /// (even empty or too long) so the client can match it to its request.
    fn about(room: &str, code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            room: Some(room.to_owned()),
        }
    }
}

impl Client {
    /// `socket`: the client's socket, which the hub may write to directly
    /// when its turn allows (`wire::shared`). `identity`: what its token
    /// says, when tokens are on.
    pub(crate) fn new(
        hub: Arc<Hub>,
        limits: Limits,
        socket: Option<Arc<TcpStream>>,
        compression: Option<Compression>,
        counters: OutboxCounters,
        identity: Option<Identity>,
    ) -> Self {
        let outbox = Outbox::new(
            limits.queue,
            limits.max_missed,
            socket,
            compression,
            counters,
        );
        Self {
            id: hub.next_id(),
            hub,
            outbox: Arc::new(outbox),
            joined: HashMap::new(),
            errors: 0,
            limits,
            identity,
        }
    }

    pub(crate) fn outbox(&self) -> &Arc<Outbox> {
        &self.outbox
    }

    /// What its token says, when tokens are on.
    pub(crate) fn identity(&self) -> Option<&Identity> {
        self.identity.as_ref()
    }

    /// The first message of the connection.
    pub(crate) fn welcome(&self) -> Message {
        text(&ServerMessage::Welcome {
            version: VERSION,
            client_id: self.id,
            max_name_len: self.limits.max_name_len,
            max_room_len: self.limits.max_room_len,
        })
    }

    /// Handles one data message; returns the direct answer, if any (room
    /// traffic, the client's own publishes included, arrives through the
    /// outbox).
    ///
    /// # Errors
    /// [`Abusive`] once the client has sent too many refused messages.
    pub(crate) async fn handle(&mut self, message: Message) -> Result<Option<Message>, Abusive> {
        let outcome = match message {
            Message::Text(json) => match decode_client(json.as_str()) {
                Ok(message) => self.on_message(message).await,
                Err(error) => Err(Refusal::general(error.code(), error.to_string())),
            },
            Message::Binary(frame) => self.on_binary(&frame).await.map(|()| None),
            Message::Ping(_) | Message::Pong(_) | Message::Close(_) | Message::Frame(_) => Ok(None),
        };
        match outcome {
            Ok(answer) => Ok(answer),
            // The server's own trouble (Redis away) is not the client's
            // abuse: a chat client retrying through a Redis blip is not
            // closed for it.
            Err(refusal)
                if refusal.code != ErrorCode::Unavailable
                    && self.errors >= self.limits.max_errors =>
            {
                Err(Abusive)
            }
            Err(Refusal {
                code,
                message,
                room,
            }) => {
                if code != ErrorCode::Unavailable {
                    self.errors += 1;
                }
                Ok(Some(text(&ServerMessage::Error {
                    code,
                    message,
                    room,
                })))
            }
        }
    }

    async fn on_message(&mut self, message: ClientMessage) -> Result<Option<Message>, Refusal> {
        match message {
            ClientMessage::Join { room, name, since } => {
                self.check_room(&room)?;
                // With a token, the token names the member (its `sub`,
                // checked against --max-name-len at the upgrade) and the
                // `name` sent is ignored: a client cannot pose as another.
                let name = match &self.identity {
                    Some(identity) if !identity.may_join(&room) => {
                        return Err(Refusal::about(
                            &room,
                            ErrorCode::Forbidden,
                            format!("this token does not allow room {room:?}"),
                        ));
                    }
                    Some(identity) => identity.name().to_owned(),
                    None => name,
                };
                if name.is_empty() {
                    return Err(Refusal::about(
                        &room,
                        ErrorCode::BadMessage,
                        "the name is empty",
                    ));
                }
                if name.len() > self.limits.max_name_len {
                    return Err(Refusal::about(
                        &room,
                        ErrorCode::NameTooLong,
                        format!("names are at most {} bytes", self.limits.max_name_len),
                    ));
                }
                if self.joined.contains_key(&room) {
                    return Err(already_joined(&room));
                }
                if self.joined.len() >= self.limits.max_rooms {
                    return Err(Refusal::about(
                        &room,
                        ErrorCode::TooManyRooms,
                        format!("at most {} rooms per connection", self.limits.max_rooms),
                    ));
                }
                // From here the member can be sent the room's messages:
                // `joined` goes first, so the hub writes nothing to us
                // until it is written (issue 10, defect 5).
                // A recovery's messages are queued behind it the same way.
                self.outbox.hold();
                let joined = self
                    .hub
                    .join(&room, self.id, &name, &self.outbox, since.as_ref())
                    .await
                    .map_err(|error| match error {
                        JoinError::AlreadyJoined => already_joined(&room),
                        JoinError::Unavailable => unavailable(&room),
                    })?;
                self.joined.insert(room.clone(), name);
                Ok(Some(text(&ServerMessage::Joined {
                    room,
                    members: joined.members,
                    member_count: joined.member_count,
                    epoch: joined.epoch.to_string(),
                    offset: joined.offset,
                    recovered: joined.recovered,
                })))
            }
            ClientMessage::Leave { room } => {
                self.check_member(&room)?;
                self.joined.remove(&room);
                self.hub.leave(&room, self.id, LeaveReason::Left).await;
                Ok(Some(text(&ServerMessage::Left { room })))
            }
            ClientMessage::Publish { room, text: body } => {
                self.check_member(&room)?;
                let post = Post {
                    from: Some(self.member(&room)),
                    body: Body::Text(body),
                };
                self.hub
                    .publish(&room, post, false)
                    .await
                    .map_err(|_| unavailable(&room))?;
                Ok(None)
            }
        }
    }

    async fn on_binary(&mut self, frame: &[u8]) -> Result<(), Refusal> {
        let publish = binary::decode_publish(frame)
            .map_err(|error| Refusal::general(ErrorCode::BadBinary, error.to_string()))?;
        self.check_member(publish.room)?;
        // Copied into the post, into the delivery header's buffer and into
        // the shared frame: per publish, not per member.
        let post = Post {
            from: Some(self.member(publish.room)),
            body: Body::Binary(publish.payload.to_vec()),
        };
        self.hub
            .publish(publish.room, post, false)
            .await
            .map_err(|_| unavailable(publish.room))?;
        Ok(())
    }

    /// This client as the members of `room` see it.
    fn member(&self, room: &str) -> Member {
        Member {
            id: self.id,
            name: self.joined.get(room).cloned().unwrap_or_default(),
        }
    }

    fn check_room(&self, room: &str) -> Result<(), Refusal> {
        if room.is_empty() {
            return Err(Refusal::about(
                room,
                ErrorCode::BadMessage,
                "the room name is empty",
            ));
        }
        if room.len() > self.limits.max_room_len {
            return Err(Refusal::about(
                room,
                ErrorCode::RoomTooLong,
                format!("room names are at most {} bytes", self.limits.max_room_len),
            ));
        }
        Ok(())
    }

    fn check_member(&self, room: &str) -> Result<(), Refusal> {
        self.check_room(room)?;
        if !self.joined.contains_key(room) {
            return Err(Refusal::about(
                room,
                ErrorCode::NotJoined,
                format!("not a member of room {room:?}: join it first"),
            ));
        }
        Ok(())
    }
}

/// The cluster's Redis did not answer: nothing happened, try again.
fn unavailable(room: &str) -> Refusal {
    Refusal::about(
        room,
        ErrorCode::Unavailable,
        "the cluster's store is unreachable: nothing was delivered, try again",
    )
}

fn already_joined(room: &str) -> Refusal {
    Refusal::about(
        room,
        ErrorCode::AlreadyJoined,
        format!("already a member of room {room:?}"),
    )
}

impl Drop for Client {
    fn drop(&mut self) {
        let reason = if self.outbox.is_kicked() {
            LeaveReason::TooSlow
        } else {
            LeaveReason::Disconnected
        };
        for (room, _name) in self.joined.drain() {
            self.hub.leave_detached(&room, self.id, reason);
        }
    }
}
