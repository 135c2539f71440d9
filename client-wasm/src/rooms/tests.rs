//! The rooms model's behaviour before history: joins, leaves, refusals,
//! presence and the log (the history tests are in `recovery_tests.rs`).

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
    rooms.disconnected(true);
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
        Some(r#"{"type":"join","room":"lobby","name":"ada","since":{"epoch":"e1","offset":0}}"#)
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
        ErrorCode::Forbidden,
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

/// With a token the server names the member by its `sub` (docs/protocol.md,
/// "Tokens"): the note says that name, not the one the join sent.
#[test]
fn with_a_token_the_joined_note_gives_the_servers_name() {
    let mut rooms = Rooms::new();
    rooms
        .handle_text(
            r#"{"type":"welcome","version":2,"client_id":7,"max_name_len":64,"max_room_len":64}"#,
        )
        .expect("valid");
    rooms.join("lobby", "guest", true);
    rooms
        .handle_text(
            r#"{"type":"joined","room":"lobby","members":[{"id":3,"name":"bob"},{"id":7,"name":"alice"}],"member_count":2,"epoch":"e1","offset":0}"#,
        )
        .expect("valid");
    let room = rooms.room("lobby").expect("wanted");
    assert_eq!(
        room.lines.first().map(|l| l.text.as_str()),
        Some("joined as alice")
    );
    // Not in the list (a room past the presence limit): the name sent.
    rooms.join("big", "guest", true);
    rooms.handle(ServerMessage::Joined {
        room: "big".into(),
        members: vec![member(3, "bob")],
        member_count: 2000,
        epoch: "e1".into(),
        offset: 0,
        recovered: None,
    });
    let room = rooms.room("big").expect("wanted");
    assert_eq!(
        room.lines.first().map(|l| l.text.as_str()),
        Some("joined as guest")
    );
}

/// A room the token's `rooms` claim does not list: the join is refused
/// with `forbidden` and the room dropped, the rooms joined stay.
#[test]
fn a_forbidden_join_drops_the_room_and_keeps_the_others() {
    let mut rooms = Rooms::new();
    rooms.join("lobby", "ada", true);
    joined(&mut rooms, "lobby");
    rooms.join("kitchen", "ada", true);
    let change = rooms.handle_text(
        r#"{"type":"error","code":"forbidden","message":"this token does not allow room \"kitchen\"","room":"kitchen"}"#,
    );
    assert_eq!(
        change,
        Ok(Change::JoinRefused {
            room: "kitchen".into(),
            code: ErrorCode::Forbidden,
            message: r#"this token does not allow room "kitchen""#.into(),
        })
    );
    assert_eq!(rooms.names().collect::<Vec<_>>(), ["lobby"]);
    assert!(rooms.room("lobby").is_some_and(|r| r.joined));
}

/// A refusal after a reconnect (the greeting's join, say on a server
/// restarted with a lower room limit) drops the room and its log too:
/// it is no longer wanted.
#[test]
fn a_greeting_join_refused_after_a_reconnect_drops_the_room() {
    let mut rooms = Rooms::new();
    rooms.join("lobby", "ada", true);
    joined(&mut rooms, "lobby");
    rooms.disconnected(true);
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
    rooms.disconnected(true);
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
