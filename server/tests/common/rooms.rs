//! Helpers for the rooms protocol on `/ws`: connect and read the welcome,
//! send client messages, read server messages (skipping pings), join.

use std::net::SocketAddr;

use duplex_protocol::{ClientId, ClientMessage, Member, Position, ServerMessage};
use futures_util::SinkExt;
use tokio::net::TcpSocket;
use tokio::time::timeout;
use tokio_tungstenite::tungstenite::Message;

use super::{Client, WAIT, connect, next_non_control};

/// Connects to `/ws` and reads the welcome; returns the client and its id.
pub async fn connect_rooms(addr: SocketAddr) -> (Client, ClientId) {
    let mut ws = connect(addr, "/ws").await;
    match next_server(&mut ws).await {
        ServerMessage::Welcome {
            version, client_id, ..
        } => {
            assert_eq!(version, duplex_protocol::VERSION);
            (ws, client_id)
        }
        other => panic!("expected welcome, got {other:?}"),
    }
}

/// Connects one client per name to `/ws` and joins each to `room` under
/// its name.
pub async fn joined_clients(
    addr: SocketAddr,
    room: &str,
    names: impl IntoIterator<Item = String>,
) -> Vec<Client> {
    let mut clients = Vec::new();
    for name in names {
        let (mut ws, _) = connect_rooms(addr).await;
        join(&mut ws, room, &name).await;
        clients.push(ws);
    }
    clients
}

/// Sends one frame, within [`WAIT`].
pub async fn send(ws: &mut Client, message: Message) {
    timeout(WAIT, ws.send(message))
        .await
        .expect("send timed out")
        .expect("send");
}

/// Sends a client message as JSON.
pub async fn send_client(ws: &mut Client, message: &ClientMessage) {
    let json = serde_json::to_string(message).expect("serialise");
    send(ws, Message::text(json)).await;
}

/// The next server message (a text frame), within [`WAIT`].
pub async fn next_server(ws: &mut Client) -> ServerMessage {
    match next_non_control(ws).await {
        Message::Text(text) => serde_json::from_str(text.as_str())
            .unwrap_or_else(|error| panic!("not a server message: {error}: {text}")),
        other => panic!("expected a text frame, got {other:?}"),
    }
}

/// Joins `room` as `name`; returns the member list of the `joined` answer.
/// Presence events that arrive first are skipped (bounded).
pub async fn join(ws: &mut Client, room: &str, name: &str) -> Vec<Member> {
    join_since(ws, room, name, None).await.members
}

/// A `joined` answer's fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Joined {
    pub members: Vec<Member>,
    pub member_count: usize,
    pub epoch: String,
    pub offset: u64,
    pub recovered: Option<bool>,
}

impl Joined {
    /// Where this member stands: the room's epoch and latest offset.
    pub fn position(&self) -> Position {
        Position {
            epoch: self.epoch.clone(),
            offset: self.offset,
        }
    }
}

/// Joins `room` as `name`, recovering from `since` if given; returns the
/// `joined` answer. Presence events that arrive first are skipped
/// (bounded).
pub async fn join_since(
    ws: &mut Client,
    room: &str,
    name: &str,
    since: Option<Position>,
) -> Joined {
    send_client(
        ws,
        &ClientMessage::Join {
            room: room.into(),
            name: name.into(),
            since,
        },
    )
    .await;
    for _ in 0..10_000 {
        match next_server(ws).await {
            ServerMessage::Joined {
                room: r,
                members,
                member_count,
                epoch,
                offset,
                recovered,
            } if r == room => {
                return Joined {
                    members,
                    member_count,
                    epoch,
                    offset,
                    recovered,
                };
            }
            ServerMessage::MemberJoined { .. } | ServerMessage::MemberLeft { .. } => {}
            other => panic!("expected joined, got {other:?}"),
        }
    }
    panic!("no joined answer among 10,000 presence events");
}

/// The next `message`'s text and offset, skipping presence events
/// (bounded).
pub async fn next_offset(ws: &mut Client) -> (String, u64) {
    for _ in 0..10_000 {
        match next_server(ws).await {
            ServerMessage::Message { text, offset, .. } => return (text, offset),
            ServerMessage::MemberJoined { .. } | ServerMessage::MemberLeft { .. } => {}
            other => panic!("expected a room message, got {other:?}"),
        }
    }
    panic!("no room message among 10,000 presence events");
}

/// Publishes `text` to `room`.
pub async fn publish(ws: &mut Client, room: &str, text: &str) {
    send_client(
        ws,
        &ClientMessage::Publish {
            room: room.into(),
            text: text.into(),
        },
    )
    .await;
}

/// The next `message` (room text), skipping presence events (bounded);
/// returns its sender and text.
pub async fn next_text(ws: &mut Client) -> (Option<Member>, String) {
    for _ in 0..10_000 {
        match next_server(ws).await {
            ServerMessage::Message { from, text, .. } => return (from, text),
            ServerMessage::MemberJoined { .. } | ServerMessage::MemberLeft { .. } => {}
            other => panic!("expected a room message, got {other:?}"),
        }
    }
    panic!("no room message among 10,000 presence events");
}

/// A rooms client whose socket buffers are as small as the kernel allows,
/// so the server's writes to it block soon after it stops reading.
pub async fn small_buffered_client(addr: SocketAddr) -> (Client, ClientId) {
    let tcp = small_buffered_tcp(addr).await;
    let (mut ws, _) = timeout(
        WAIT,
        tokio_tungstenite::client_async(format!("ws://{addr}/ws"), tcp),
    )
    .await
    .expect("handshake timed out")
    .expect("handshake");
    match next_server(&mut ws).await {
        ServerMessage::Welcome { client_id, .. } => (ws, client_id),
        other => panic!("expected welcome, got {other:?}"),
    }
}

/// A TCP connection whose receive buffer is as small as the kernel allows.
pub async fn small_buffered_tcp(addr: SocketAddr) -> tokio::net::TcpStream {
    let socket = TcpSocket::new_v4().expect("socket");
    socket.set_recv_buffer_size(4096).expect("SO_RCVBUF");
    timeout(WAIT, socket.connect(addr))
        .await
        .expect("connect timed out")
        .expect("connect")
}
