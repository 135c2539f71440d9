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
//! `room_too_long`, …), the model stops wanting that room
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

use duplex_protocol::binary;
use duplex_protocol::{
    BinaryError, ClientId, ClientMessage, ErrorCode, LeaveReason, Member, ServerMessage,
};

pub use self::codec::decode;
use self::codec::encode;
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
    /// and positions are kept.
    pub fn disconnected(&mut self) {
        self.client_id = None;
        for (_, room) in &mut self.rooms {
            if let Some(notice) = room.history.disconnected() {
                room.tell(notice);
            }
            if room.joined {
                room.push(Author::Note, "connection lost; rejoining");
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
            } => self.with_room(room, |state| {
                state.joined = true;
                state.members = members;
                state.member_count = member_count;
                let text = format!("joined as {}", state.name);
                state.push(Author::Note, text);
                if let Some(notice) = state.history.joined(epoch, offset, recovered) {
                    state.tell(notice);
                }
            }),
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
mod tests {
    use super::*;

    fn text(message: Option<Message>) -> Option<String> {
        match message? {
            Message::Text(text) => Some(text),
            Message::Binary(_) => None,
        }
    }

    fn member(id: ClientId, name: &str) -> Member {
        Member {
            id,
            name: name.into(),
        }
    }

    #[test]
    fn join_sends_only_when_open_and_once() {
        let mut rooms = Rooms::new();
        assert_eq!(
            text(rooms.join("lobby", "ada", true)).as_deref(),
            Some(r#"{"type":"join","room":"lobby","name":"ada"}"#)
        );
        assert_eq!(rooms.join("lobby", "ada", true), None);
        assert_eq!(rooms.join("attic", "ada", false), None);
        assert_eq!(rooms.names().collect::<Vec<_>>(), ["attic", "lobby"]);
    }

    #[test]
    fn greeting_joins_every_wanted_room_and_forgets_left_ones() {
        let mut rooms = Rooms::new();
        rooms.join("lobby", "ada", false);
        rooms.join("attic", "bo", false);
        let greeting: Vec<_> = rooms.greeting().into_iter().map(Some).map(text).collect();
        assert_eq!(
            greeting,
            [
                Some(r#"{"type":"join","room":"attic","name":"bo"}"#.to_owned()),
                Some(r#"{"type":"join","room":"lobby","name":"ada"}"#.to_owned()),
            ]
        );
        // Not confirmed: nothing to tell the server.
        assert_eq!(rooms.leave("attic", true), None);
        assert_eq!(rooms.greeting().len(), 1);
    }

    #[test]
    fn leave_after_joined_sends_leave() {
        let mut rooms = Rooms::new();
        rooms.join("lobby", "ada", true);
        rooms.handle_text(
            r#"{"type":"joined","room":"lobby","members":[{"id":7,"name":"ada"}],"member_count":1,"epoch":"e1","offset":0}"#,
        )
        .expect("valid");
        assert_eq!(
            text(rooms.leave("lobby", true)).as_deref(),
            Some(r#"{"type":"leave","room":"lobby"}"#)
        );
        assert!(rooms.room("lobby").is_none());
        assert_eq!(
            rooms.handle_text(r#"{"type":"left","room":"lobby"}"#).ok(),
            Some(Change::None)
        );
    }

    /// Leaving before the server confirmed the join used to send nothing
    /// and leave the server with a member the person did not want.
    #[test]
    fn leaving_before_the_join_is_confirmed_leaves_once_it_is() {
        let mut rooms = Rooms::new();
        assert!(rooms.join("lobby", "ada", true).is_some());
        // The join may still be refused: no leave yet.
        assert_eq!(rooms.leave("lobby", true), None);
        let change = rooms
            .handle_text(
                r#"{"type":"joined","room":"lobby","members":[{"id":7,"name":"ada"}],"member_count":1,"epoch":"e1","offset":0}"#,
            )
            .expect("valid");
        assert_eq!(
            change,
            Change::Send(Message::Text(r#"{"type":"leave","room":"lobby"}"#.into()))
        );
        assert!(rooms.room("lobby").is_none());
        assert!(rooms.greeting().is_empty());
        assert_eq!(
            rooms.handle_text(r#"{"type":"left","room":"lobby"}"#).ok(),
            Some(Change::None)
        );
    }

    #[test]
    fn leaving_and_joining_again_before_the_confirmation_stays_joined() {
        let mut rooms = Rooms::new();
        rooms.join("lobby", "ada", true);
        rooms.leave("lobby", true);
        assert!(rooms.join("lobby", "ada", true).is_some());
        // The first join's answer, then the second join's refusal.
        let joined = ServerMessage::Joined {
            room: "lobby".into(),
            members: vec![member(7, "ada")],
            member_count: 1,
            epoch: "e1".into(),
            offset: 0,
            recovered: None,
        };
        assert_eq!(rooms.handle(joined), Change::Room("lobby".into()));
        assert_eq!(
            rooms.handle_text(
                r#"{"type":"error","code":"already_joined","message":"already a member of room \"lobby\""}"#
            ),
            Ok(Change::None)
        );
        let lobby = rooms.room("lobby").expect("wanted");
        assert!(lobby.joined);
        assert_eq!(lobby.lines.len(), 1, "no error line: {:?}", lobby.lines);
    }

    /// A join written as the socket closed is queued, and goes out after
    /// the next connection's greeting has joined the room already.
    #[test]
    fn a_duplicate_join_after_a_reconnect_is_not_an_error() {
        let mut rooms = Rooms::new();
        rooms.join("lobby", "ada", true);
        rooms.disconnected();
        rooms.handle(ServerMessage::Joined {
            room: "lobby".into(),
            members: vec![member(8, "ada")],
            member_count: 1,
            epoch: "e1".into(),
            offset: 0,
            recovered: None,
        });
        assert_eq!(
            rooms.handle(ServerMessage::Error {
                code: ErrorCode::AlreadyJoined,
                message: "already a member of room \"lobby\"".into(),
                room: Some("lobby".into()),
            }),
            Change::None
        );
        assert!(rooms.room("lobby").is_some_and(|r| r.joined));
        // Other refusals are still reported.
        assert!(matches!(
            rooms.handle(ServerMessage::Error {
                code: ErrorCode::TooManyRooms,
                message: "at most 16 rooms per connection".into(),
                room: None,
            }),
            Change::Error {
                code: ErrorCode::TooManyRooms,
                ..
            }
        ));
    }

    #[test]
    fn presence_and_messages_update_the_room() {
        let mut rooms = Rooms::new();
        assert_eq!(
            rooms
                .handle_text(
                    r#"{"type":"welcome","version":1,"client_id":7,"max_name_len":64,"max_room_len":64}"#
                )
                .ok(),
            Some(Change::Welcome(7))
        );
        assert_eq!(rooms.client_id(), Some(7));
        rooms.join("lobby", "ada", true);
        rooms.handle(ServerMessage::Joined {
            room: "lobby".into(),
            members: vec![member(3, "bob"), member(7, "ada")],
            member_count: 2,
            epoch: "e1".into(),
            offset: 0,
            recovered: None,
        });
        let change = rooms.handle(ServerMessage::MemberJoined {
            room: "lobby".into(),
            member: member(5, "cy"),
        });
        assert_eq!(change, Change::Room("lobby".into()));
        let lobby = rooms.room("lobby").expect("wanted");
        assert!(lobby.joined);
        assert_eq!(
            lobby.members.iter().map(|m| m.id).collect::<Vec<_>>(),
            [3, 5, 7]
        );
        assert_eq!(lobby.member_count, 3);

        rooms
            .handle_text(r#"{"type":"member_left","room":"lobby","member":{"id":3,"name":"bob"},"reason":"disconnected"}"#)
            .expect("valid");
        rooms
            .handle_text(
                r#"{"type":"message","room":"lobby","from":{"id":5,"name":"cy"},"text":"hi","offset":1}"#,
            )
            .expect("valid");
        rooms
            .handle_text(
                r#"{"type":"message","room":"lobby","from":null,"text":"deploy finished","offset":2}"#,
            )
            .expect("valid");
        let lobby = rooms.room("lobby").expect("wanted");
        assert_eq!(lobby.member_count, 2);
        let lines: Vec<_> = lobby.lines.iter().map(|l| l.text.as_str()).collect();
        assert_eq!(
            lines,
            [
                "joined as ada",
                "cy joined",
                "bob disconnected",
                "hi",
                "deploy finished"
            ]
        );
        assert_eq!(lobby.lines[3].author, Author::Member(member(5, "cy")));
        assert_eq!(lobby.lines[4].author, Author::Server);
    }

    #[test]
    fn messages_for_unknown_rooms_are_ignored_and_errors_reported() {
        let mut rooms = Rooms::new();
        assert_eq!(
            rooms
                .handle_text(r#"{"type":"message","room":"x","from":null,"text":"t","offset":1}"#)
                .ok(),
            Some(Change::None)
        );
        assert_eq!(
            rooms
                .handle_text(r#"{"type":"error","code":"not_joined","message":"m"}"#)
                .ok(),
            Some(Change::Error {
                code: ErrorCode::NotJoined,
                message: "m".into(),
                room: None,
            })
        );
        assert_eq!(
            rooms.handle_text(r#"{"type":"missed","count":12}"#).ok(),
            Some(Change::Missed(12))
        );
        assert!(rooms.handle_text("not json").is_err());
    }

    fn joined(rooms: &mut Rooms, room: &str) {
        rooms.handle(ServerMessage::Joined {
            room: room.into(),
            members: vec![member(7, "ada")],
            member_count: 1,
            epoch: "e1".into(),
            offset: 0,
            recovered: None,
        });
    }

    /// A refused join used to leave its room "joining…" for good, and the
    /// greeting asked for it again on every reconnect.
    #[test]
    fn a_refused_join_stops_wanting_the_room_and_is_reported() {
        let mut rooms = Rooms::new();
        rooms.join("lobby", "ada", true);
        joined(&mut rooms, "lobby");
        rooms.join("attic", "ada", true);
        let change = rooms.handle_text(
            r#"{"type":"error","code":"too_many_rooms","message":"at most 1 rooms per connection","room":"attic"}"#,
        );
        assert_eq!(
            change,
            Ok(Change::JoinRefused {
                room: "attic".into(),
                code: ErrorCode::TooManyRooms,
                message: "at most 1 rooms per connection".into(),
            })
        );
        assert!(rooms.room("attic").is_none());
        assert_eq!(rooms.names().collect::<Vec<_>>(), ["lobby"]);
        // The joined room stays, rejoined from where its history stands.
        assert_eq!(
            text(rooms.greeting().pop()).as_deref(),
            Some(
                r#"{"type":"join","room":"lobby","name":"ada","since":{"epoch":"e1","offset":0}}"#
            )
        );
        assert_eq!(rooms.greeting().len(), 1);
        assert!(rooms.room("lobby").is_some_and(|r| r.joined));
    }

    #[test]
    fn every_join_check_cancels_the_pending_join() {
        for code in [
            ErrorCode::BadMessage,
            ErrorCode::NameTooLong,
            ErrorCode::RoomTooLong,
            ErrorCode::TooManyRooms,
        ] {
            let mut rooms = Rooms::new();
            rooms.join("r", "a", true);
            let change = rooms.handle(ServerMessage::Error {
                code,
                message: "no".into(),
                room: Some("r".into()),
            });
            assert!(
                matches!(&change, Change::JoinRefused { room, code: c, .. } if room == "r" && *c == code),
                "{code:?}: {change:?}"
            );
            assert!(rooms.greeting().is_empty(), "{code:?}");
        }
    }

    /// A refusal after a reconnect (the greeting's join, say on a server
    /// restarted with a lower room limit) drops the room and its log too:
    /// it is no longer wanted.
    #[test]
    fn a_greeting_join_refused_after_a_reconnect_drops_the_room() {
        let mut rooms = Rooms::new();
        rooms.join("lobby", "ada", true);
        joined(&mut rooms, "lobby");
        rooms.disconnected();
        let change = rooms.handle(ServerMessage::Error {
            code: ErrorCode::TooManyRooms,
            message: "at most 0 rooms per connection".into(),
            room: Some("lobby".into()),
        });
        assert!(matches!(change, Change::JoinRefused { .. }), "{change:?}");
        assert!(rooms.room("lobby").is_none());
    }

    #[test]
    fn errors_that_are_not_join_refusals_keep_the_room() {
        let mut rooms = Rooms::new();
        // Left and joined again before the server confirmed: a publish sent
        // in between is refused with `not_joined` while the new join is on
        // its way, and must not cancel it.
        rooms.join("lobby", "ada", true);
        let error = |code, room: Option<&str>| ServerMessage::Error {
            code,
            message: "m".into(),
            room: room.map(str::to_owned),
        };
        assert_eq!(
            rooms.handle(error(ErrorCode::NotJoined, Some("lobby"))),
            Change::Error {
                code: ErrorCode::NotJoined,
                message: "m".into(),
                room: Some("lobby".into()),
            }
        );
        assert!(rooms.room("lobby").is_some());
        // A duplicate join: we are in, nothing to report.
        assert_eq!(
            rooms.handle(error(ErrorCode::AlreadyJoined, Some("lobby"))),
            Change::None
        );
        assert!(rooms.room("lobby").is_some());
        // A server from before the `room` field: reported, nothing dropped.
        assert!(matches!(
            rooms.handle_text(r#"{"type":"error","code":"too_many_rooms","message":"m"}"#),
            Ok(Change::Error { room: None, .. })
        ));
        assert!(rooms.room("lobby").is_some());
        // A confirmed room is not dropped by an error naming it.
        joined(&mut rooms, "lobby");
        assert!(matches!(
            rooms.handle(error(ErrorCode::BadMessage, Some("lobby"))),
            Change::Error { .. }
        ));
        assert!(rooms.room("lobby").is_some_and(|r| r.joined));
        // Nor is anything when the room named is not wanted.
        assert!(matches!(
            rooms.handle(error(ErrorCode::RoomTooLong, Some("elsewhere"))),
            Change::Error { room: Some(r), .. } if r == "elsewhere"
        ));
        assert_eq!(rooms.names().collect::<Vec<_>>(), ["lobby"]);
    }

    #[test]
    fn disconnect_clears_presence_but_keeps_rooms_and_logs() {
        let mut rooms = Rooms::new();
        rooms.join("lobby", "ada", true);
        rooms.handle(ServerMessage::Joined {
            room: "lobby".into(),
            members: vec![member(7, "ada")],
            member_count: 1,
            epoch: "e1".into(),
            offset: 0,
            recovered: None,
        });
        rooms.disconnected();
        let lobby = rooms.room("lobby").expect("still wanted");
        assert!(!lobby.joined);
        assert!(lobby.members.is_empty());
        assert_eq!(lobby.lines.len(), 2);
        assert_eq!(rooms.greeting().len(), 1);
        // Not confirmed on this connection: no leave to send.
        assert_eq!(rooms.leave("lobby", true), None);
    }

    #[test]
    fn the_log_is_capped() {
        let mut rooms = Rooms::new();
        rooms.join("r", "a", false);
        for i in 0..LINES_PER_ROOM + 5 {
            rooms.handle(ServerMessage::Message {
                room: "r".into(),
                from: None,
                text: i.to_string(),
                offset: i as u64 + 1,
            });
        }
        let lines = &rooms.room("r").expect("wanted").lines;
        assert_eq!(lines.len(), LINES_PER_ROOM);
        assert_eq!(lines[0].text, "5");
    }
}
