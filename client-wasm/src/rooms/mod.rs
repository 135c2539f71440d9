//! The rooms model for `/ws` (see `docs/protocol.md`): which rooms this
//! client wants to be in and under which name, who is in each, and the chat
//! lines received. Plain Rust, unit-tested natively; the page and the
//! browser tests feed it the server's text messages and send what it
//! returns.
//!
//! Rejoining after a reconnect: the server forgets a connection's rooms when
//! it ends, so every open must start with a `join` for each wanted room,
//! *before* the connection manager flushes its offline queue (a queued
//! `publish` ahead of its `join` would be refused with `not_joined`).
//! [`Rooms::greeting`] is that list; give it to
//! [`crate::Connection::set_greeting`] after every [`Rooms::join`] and
//! [`Rooms::leave`]. Because the greeting joins every wanted room, a join or
//! leave asked for while the connection is not open needs no message of its
//! own: [`Rooms::join`] and [`Rooms::leave`] return one only when `open`.
//!
//! Joins in flight: the server's state follows the person's last wish
//! whatever the order of events. Leaving a room whose join the server has
//! not confirmed yet sends nothing (the join may still be refused); when
//! its `joined` arrives for a room no longer wanted, the model answers with
//! the `leave` ([`Change::Send`]). A duplicate join (one queued as a socket
//! closed, sent after the next connection's greeting) is answered with
//! `already_joined`, which only says the server has us where we asked to
//! be: it is not shown as an error.
//!
//! Refused joins: the server's `error` names the room it is about. When it
//! refuses the join of a room not confirmed yet (`too_many_rooms`,
//! `room_too_long`, `forbidden` for a room the token does not list, …),
//! the model stops wanting that room
//! ([`Change::JoinRefused`]), so the page does not show it as joining
//! forever and the next greeting does not ask again for what the server
//! refused. A server from before the `room` field sends none, and its join
//! refusals are reported as plain [`Change::Error`]s, as they always were.
//!
//! History (protocol 2): each room keeps a [`History`], the room's epoch
//! and the offset of the last message received. The greeting's joins carry
//! it as `since`, so the server replays what was published while this
//! client was away, or says it cannot; [`History`] counts the replay and
//! spots offsets that skip messages, and the model writes every such
//! finding into the room's chat as a line ([`Author::Note`] when nothing
//! was lost, [`Author::Warning`] when messages may be missing). The
//! greeting holds positions, so give the connection a new one when a
//! connection ends too ([`Rooms::disconnected`]): by then every message of
//! that connection has been handled.

mod codec;
pub mod url;

use duplex_protocol::binary;
use duplex_protocol::{
    BinaryError, ClientId, ClientMessage, ErrorCode, LeaveReason, Member, ServerMessage,
};

pub use self::codec::decode;
use self::codec::encode;
pub use self::url::{rooms_url, with_token};
use crate::format;
use crate::history::{Arrival, History, Notice};
use crate::message::Message;

/// Chat lines kept per room; older ones are dropped.
pub const LINES_PER_ROOM: usize = 500;

/// Who wrote a chat line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Author {
    /// A member (possibly this client).
    Member(Member),
    /// A push through the HTTP API (`duplex push`).
    Server,
    /// A note from the client itself (joined, someone left, what a rejoin
    /// recovered).
    Note,
    /// A note that messages may be missing (history expired or reset, a
    /// gap in the offsets): shown so it stands out.
    Warning,
}

/// One line of a room's chat log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    /// Who wrote it.
    pub author: Author,
    /// What it says.
    pub text: String,
}

/// One room this client wants to be in.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Room {
    /// The display name this client joins it with.
    pub name: String,
    /// Whether the server confirmed the join on the current connection.
    pub joined: bool,
    /// The members the server reported, in order of id.
    pub members: Vec<Member>,
    /// How many members the room has (may exceed `members.len()` in a room
    /// larger than the server's presence limit).
    pub member_count: usize,
    /// The chat log, oldest first, at most [`LINES_PER_ROOM`].
    pub lines: Vec<Line>,
    /// Where the room's history stands: the next rejoin's `since`. Kept
    /// across reconnects, dropped with the room when it is left.
    pub history: History,
}

impl Room {
    fn push(&mut self, author: Author, text: impl Into<String>) {
        if self.lines.len() == LINES_PER_ROOM {
            self.lines.remove(0);
        }
        self.lines.push(Line {
            author,
            text: text.into(),
        });
    }

    /// Writes what `notice` says into the chat.
    fn tell(&mut self, notice: Notice) {
        let plural = |n: u64| if n == 1 { "" } else { "s" };
        let (author, text) = match notice {
            Notice::Recovered(0) => (Author::Note, "recovered 0 messages: nothing missed".into()),
            Notice::Recovered(n) => (Author::Note, format!("recovered {n} message{}", plural(n))),
            Notice::RecoveryInterrupted { received, expected } => (
                Author::Warning,
                format!(
                    "connection lost while recovering: {received} of {expected} messages recovered"
                ),
            ),
            Notice::Expired { lost: Some(n) } if n > 0 => (
                Author::Warning,
                format!(
                    "messages may be missing: history expired ({n} message{} not recovered)",
                    plural(n)
                ),
            ),
            Notice::Expired { .. } => (
                Author::Warning,
                "messages may be missing: history expired".into(),
            ),
            Notice::Reset => (
                Author::Warning,
                "history was reset: messages may be missing".into(),
            ),
            Notice::Missed(n) => (Author::Warning, format!("{n} message{} missed", plural(n))),
        };
        self.push(author, text);
    }

    /// A delivered message at `offset`: shown unless it is a duplicate,
    /// with what its offset says about messages around it.
    fn deliver(&mut self, offset: u64, author: Author, text: impl Into<String>) {
        let Arrival::Show { missed, after } = self.history.message(offset) else {
            return;
        };
        if missed > 0 {
            self.tell(Notice::Missed(missed));
        }
        self.push(author, text);
        if let Some(notice) = after {
            self.tell(notice);
        }
    }
}

/// What a server message changed, for the page to redraw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// Nothing a view shows (or a message for a room we left).
    None,
    /// The connection's id is known.
    Welcome(ClientId),
    /// This room's members or lines changed.
    Room(String),
    /// The server refused something other than a pending join.
    Error {
        /// The error's code.
        code: ErrorCode,
        /// The server's explanation.
        message: String,
        /// The room the refused message named, if the server said.
        room: Option<String>,
    },
    /// The server refused to join `room`, whose join was not confirmed: it
    /// is no longer wanted (give the connection the new
    /// [`Rooms::greeting`]); show the message.
    JoinRefused {
        /// The room that could not be joined.
        room: String,
        /// The error's code.
        code: ErrorCode,
        /// The server's explanation.
        message: String,
    },
    /// This many messages were dropped by the server for this client.
    Missed(u64),
    /// Send this through the connection: the `leave` for a room whose join
    /// the server confirmed after this client stopped wanting it.
    Send(Message),
}

/// Why [`Rooms::handle_text`] could not use a text message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a rooms message from the server: {0}")]
pub struct NotAServerMessage(&'static str);

/// The rooms model.
#[derive(Debug, Clone, Default)]
pub struct Rooms {
    client_id: Option<ClientId>,
    /// By name, sorted (a few rooms: a Vec is smaller in the .wasm than a
    /// map).
    rooms: Vec<(String, Room)>,
}

/// Whether an error with `code` that names a room can be the answer to
/// its `join`. `not_joined` cannot: a `publish` sent between leaving a room
/// and joining it again is refused with it while the new join is on its
/// way, and must not cancel that join. `already_joined` does not either: it
/// says the server has us in the room. (The browser reads a code newer than
/// itself as `bad_message`, so such a code naming a room whose join is
/// pending counts as a refusal of that join.)
fn refuses_join(code: ErrorCode) -> bool {
    matches!(
        code,
        ErrorCode::BadMessage
            | ErrorCode::NameTooLong
            | ErrorCode::RoomTooLong
            | ErrorCode::TooManyRooms
            | ErrorCode::Forbidden
    )
}

impl Rooms {
    /// No rooms, no id.
    pub fn new() -> Self {
        Self::default()
    }

    /// This connection's id, once the server's `welcome` arrived.
    pub fn client_id(&self) -> Option<ClientId> {
        self.client_id
    }

    /// The names of the wanted rooms, sorted.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.rooms.iter().map(|(name, _)| name.as_str())
    }

    fn find(&self, room: &str) -> Result<usize, usize> {
        self.rooms
            .binary_search_by(|(name, _)| name.as_str().cmp(room))
    }

    /// One wanted room.
    pub fn room(&self, room: &str) -> Option<&Room> {
        let at = self.find(room).ok()?;
        Some(&self.rooms[at].1)
    }

    /// Wants `room` under `name`. Returns the `join` to send when the
    /// connection is `open`; otherwise the next [`Rooms::greeting`] joins
    /// it. `None` too when the room is wanted already.
    pub fn join(&mut self, room: &str, name: &str, open: bool) -> Option<Message> {
        let Err(at) = self.find(room) else {
            return None;
        };
        self.rooms.insert(
            at,
            (
                room.to_owned(),
                Room {
                    name: name.to_owned(),
                    ..Room::default()
                },
            ),
        );
        open.then(|| {
            encode(&ClientMessage::Join {
                room: room.to_owned(),
                name: name.to_owned(),
                since: None,
            })
        })
    }

    /// Stops wanting `room` (its log goes too). Returns the `leave` to send
    /// when the connection is `open` and the server had confirmed the join;
    /// a join still on its way is left when its `joined` arrives
    /// ([`Change::Send`]), so a refused join costs no `not_joined` error.
    pub fn leave(&mut self, room: &str, open: bool) -> Option<Message> {
        let (_, was) = self.rooms.remove(self.find(room).ok()?);
        (open && was.joined).then(|| {
            encode(&ClientMessage::Leave {
                room: room.to_owned(),
            })
        })
    }

    /// The `publish` of `text` to `room` (send it through the connection,
    /// which queues it while offline). The text shows in the log when the
    /// server's copy comes back.
    pub fn publish(room: &str, text: &str) -> Message {
        encode(&ClientMessage::Publish {
            room: room.to_owned(),
            text: text.to_owned(),
        })
    }

    /// A `join` for every wanted room: what each connection must send
    /// first. A room whose history this client knows is joined `since`
    /// the last message received, so the server replays what was missed.
    /// The positions move with every message: take the greeting again when
    /// a connection ends ([`Rooms::disconnected`]).
    pub fn greeting(&self) -> Vec<Message> {
        self.rooms
            .iter()
            .map(|(room, state)| {
                encode(&ClientMessage::Join {
                    room: room.clone(),
                    name: state.name.clone(),
                    since: state.history.position().cloned(),
                })
            })
            .collect()
    }

    /// The connection ended: the server forgot our rooms and members; the
    /// greeting will join them again, from where each room's history
    /// stands now (give the connection the new [`Rooms::greeting`]). Logs
    /// and positions are kept. `rejoining`: whether the connection will
    /// be tried again ([`crate::session::retryable`]); each joined room's
    /// log says which.
    pub fn disconnected(&mut self, rejoining: bool) {
        self.client_id = None;
        for (_, room) in &mut self.rooms {
            if let Some(notice) = room.history.disconnected() {
                room.tell(notice);
            }
            if room.joined {
                let note = if rejoining {
                    "connection lost; rejoining"
                } else {
                    "connection closed"
                };
                room.push(Author::Note, note);
            }
            room.joined = false;
            room.members.clear();
            room.member_count = 0;
        }
    }

    /// Applies one binary frame from the server: a delivery to a room
    /// (`[version][room length][room][sender][offset][payload]`), shown as
    /// a line that gives its size, under its sender's name when the sender
    /// is a member this client knows.
    ///
    /// # Errors
    /// [`BinaryError`] when the frame is not a delivery of this protocol
    /// version.
    pub fn handle_binary(&mut self, frame: &[u8]) -> Result<Change, BinaryError> {
        let delivery = binary::decode_delivery(frame)?;
        let Ok(at) = self.find(delivery.room) else {
            return Ok(Change::None);
        };
        let state = &mut self.rooms[at].1;
        // 0: a push through the HTTP API; an id not in the member list: a
        // member past the presence limit, or one that left since.
        let author = match delivery.from {
            0 => Author::Server,
            id => Author::Member(
                state
                    .members
                    .iter()
                    .find(|m| m.id == id)
                    .cloned()
                    .unwrap_or(Member {
                        id,
                        name: String::new(),
                    }),
            ),
        };
        let size = delivery.payload.len() as u64;
        let text = format!("binary message, {}", format::bytes(size));
        state.deliver(delivery.offset, author, text);
        Ok(Change::Room(delivery.room.to_owned()))
    }

    /// Applies one text frame from the server.
    ///
    /// # Errors
    /// [`NotAServerMessage`] when it is not one of the messages in
    /// `docs/protocol.md`.
    pub fn handle_text(&mut self, text: &str) -> Result<Change, NotAServerMessage> {
        Ok(self.handle(decode(text)?))
    }

    /// Applies one server message.
    pub fn handle(&mut self, message: ServerMessage) -> Change {
        match message {
            ServerMessage::Welcome { client_id, .. } => {
                self.client_id = Some(client_id);
                Change::Welcome(client_id)
            }
            // Left while the join was on its way: leave on the server too.
            ServerMessage::Joined { room, .. } if self.find(&room).is_err() => {
                Change::Send(encode(&ClientMessage::Leave { room }))
            }
            ServerMessage::Joined {
                room,
                members,
                member_count,
                epoch,
                offset,
                recovered,
            } => {
                // The name the server gave us: with a token its `sub`, not
                // the name the join sent (docs/protocol.md, "Tokens").
                let me = self.client_id;
                self.with_room(room, |state| {
                    state.joined = true;
                    let named = members.iter().find(|m| Some(m.id) == me);
                    let text = format!("joined as {}", named.map_or(&state.name, |m| &m.name));
                    state.members = members;
                    state.member_count = member_count;
                    state.push(Author::Note, text);
                    if let Some(notice) = state.history.joined(epoch, offset, recovered) {
                        state.tell(notice);
                    }
                })
            }
            // We asked to leave and dropped the room already.
            ServerMessage::Left { .. } => Change::None,
            ServerMessage::MemberJoined { room, member } => self.with_room(room, |state| {
                let text = format!("{} joined", member.name);
                if let Err(at) = state.members.binary_search_by_key(&member.id, |m| m.id) {
                    state.members.insert(at, member);
                    state.member_count += 1;
                }
                state.push(Author::Note, text);
            }),
            ServerMessage::MemberLeft {
                room,
                member,
                reason,
            } => self.with_room(room, |state| {
                let before = state.members.len();
                state.members.retain(|m| m.id != member.id);
                if state.members.len() < before {
                    state.member_count = state.member_count.saturating_sub(1);
                }
                let why = match reason {
                    LeaveReason::Left => "left",
                    LeaveReason::TooSlow => "was disconnected for being too slow",
                    _ => "disconnected",
                };
                state.push(Author::Note, format!("{} {why}", member.name));
            }),
            ServerMessage::Message {
                room,
                from,
                text,
                offset,
            } => self.with_room(room, |state| {
                let author = from.map_or(Author::Server, Author::Member);
                state.deliver(offset, author, text);
            }),
            ServerMessage::HistoryReset {
                room,
                epoch,
                offset,
            } => self.with_room(room, |state| {
                let notice = state.history.reset(epoch, offset);
                state.tell(notice);
            }),
            ServerMessage::Missed { count } => Change::Missed(count),
            // Joins go out only for wanted rooms (an unwanted one was left
            // at its `joined`), so this is a duplicate join: harmless.
            ServerMessage::Error {
                code: ErrorCode::AlreadyJoined,
                ..
            } => Change::None,
            ServerMessage::Error {
                code,
                message,
                room: Some(room),
            } if refuses_join(code) && self.room(&room).is_some_and(|r| !r.joined) => {
                if let Ok(at) = self.find(&room) {
                    self.rooms.remove(at);
                }
                Change::JoinRefused {
                    room,
                    code,
                    message,
                }
            }
            ServerMessage::Error {
                code,
                message,
                room,
            } => Change::Error {
                code,
                message,
                room,
            },
            _ => Change::None,
        }
    }

    fn with_room(&mut self, room: String, apply: impl FnOnce(&mut Room)) -> Change {
        match self.find(&room) {
            Ok(at) => {
                apply(&mut self.rooms[at].1);
                Change::Room(room)
            }
            Err(_) => Change::None,
        }
    }
}

#[cfg(test)]
mod recovery_tests;

#[cfg(test)]
mod tests;
