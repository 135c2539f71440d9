//! Rooms: ids are assigned by the server, joining answers the member list,
//! the other members hear of joins and leaves (and why), and a room
//! disappears from `GET /api/rooms` when its last member leaves.

use crate::common;

use crate::common::rooms::{connect_rooms, join, next_server, send, send_client};
use crate::common::{TestServer, close, config, get};
use duplex_protocol::{ClientMessage, LeaveReason, Member, RoomList, ServerMessage};
use tokio_tungstenite::tungstenite::Message;

async fn rooms(addr: std::net::SocketAddr) -> RoomList {
    let response = get(addr, "/api/rooms").await;
    assert_eq!(response.status, 200, "{}", response.head);
    serde_json::from_slice(&response.body).expect("room list JSON")
}

#[tokio::test]
async fn members_see_each_other_come_and_go() {
    let server = TestServer::start(config()).await;
    let (mut ada, ada_id) = connect_rooms(server.addr).await;
    let (mut bob, bob_id) = connect_rooms(server.addr).await;
    assert_ne!(ada_id, bob_id);

    let members = join(&mut ada, "lobby", "ada").await;
    assert_eq!(
        members,
        [Member {
            id: ada_id,
            name: "ada".into()
        }]
    );
    let members = join(&mut bob, "lobby", "bob").await;
    assert_eq!(members.len(), 2);
    assert!(members.contains(&Member {
        id: bob_id,
        name: "bob".into()
    }));
    match next_server(&mut ada).await {
        ServerMessage::MemberJoined { room, member } => {
            assert_eq!(
                (room.as_str(), member.id, member.name.as_str()),
                ("lobby", bob_id, "bob")
            );
        }
        other => panic!("expected member_joined, got {other:?}"),
    }
    assert_eq!(rooms(server.addr).await.rooms[0].members, 2);

    send_client(
        &mut bob,
        &ClientMessage::Leave {
            room: "lobby".into(),
        },
    )
    .await;
    assert_eq!(
        next_server(&mut bob).await,
        ServerMessage::Left {
            room: "lobby".into()
        }
    );
    match next_server(&mut ada).await {
        ServerMessage::MemberLeft { member, reason, .. } => {
            assert_eq!((member.id, reason), (bob_id, LeaveReason::Left));
        }
        other => panic!("expected member_left, got {other:?}"),
    }

    join(&mut bob, "lobby", "bob").await;
    next_server(&mut ada).await; // bob's second member_joined
    close(&mut bob).await;
    match next_server(&mut ada).await {
        ServerMessage::MemberLeft { member, reason, .. } => {
            assert_eq!((member.id, reason), (bob_id, LeaveReason::Disconnected));
        }
        other => panic!("expected member_left, got {other:?}"),
    }

    close(&mut ada).await;
    // The last member left: the room is gone. Bounded poll, the leave runs
    // in the server's connection task.
    for _ in 0..500 {
        if rooms(server.addr).await.rooms.is_empty() {
            return;
        }
        tokio::time::sleep(common::POLL).await;
    }
    panic!("the empty room was not removed");
}

/// A member the server closes (here for abuse, 1008) leaves its rooms when
/// the server sends its Close, not when the handshake ends: a client that
/// never answers the Close would otherwise stay listed for the whole close
/// timeout (an hour here, to make the difference plain).
#[tokio::test]
async fn a_member_closed_by_the_server_leaves_before_the_handshake_ends() {
    let mut config = config();
    config.close_timeout = std::time::Duration::from_secs(3600);
    config.max_protocol_errors = 1;
    let server = TestServer::start(config).await;
    let (mut ada, _) = connect_rooms(server.addr).await;
    let (mut eve, eve_id) = connect_rooms(server.addr).await;
    join(&mut ada, "lobby", "ada").await;
    join(&mut eve, "lobby", "eve").await;
    next_server(&mut ada).await; // eve's member_joined

    // Two bad messages, and eve reads nothing more: tungstenite's client
    // answers a Close only when it reads, so the handshake never ends.
    for _ in 0..2 {
        send(&mut eve, Message::text("nope")).await;
    }
    let left = tokio::time::timeout(std::time::Duration::from_secs(3), next_server(&mut ada))
        .await
        .expect("eve still listed 3 s after her Close was sent");
    match left {
        ServerMessage::MemberLeft { member, reason, .. } => {
            assert_eq!((member.id, reason), (eve_id, LeaveReason::Disconnected));
        }
        other => panic!("expected member_left, got {other:?}"),
    }
    assert_eq!(rooms(server.addr).await.rooms[0].members, 1);
    drop(eve);
}
