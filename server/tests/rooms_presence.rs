//! Rooms: ids are assigned by the server, joining answers the member list,
//! the other members hear of joins and leaves (and why), and a room
//! disappears from `GET /api/rooms` when its last member leaves.

mod common;

use common::rooms::{connect_rooms, join, next_server, send_client};
use common::{TestServer, close, config, get};
use duplex_protocol::{ClientMessage, LeaveReason, Member, RoomList, ServerMessage};

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
