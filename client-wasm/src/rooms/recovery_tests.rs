//! The rooms model across reconnects with protocol 2's history (issue 11,
//! part 4): rejoins carry `since`, and what a rejoin recovered or lost
//! shows in the room's chat. Fed the server's JSON as text, as the page
//! does.

use duplex_protocol::binary;

use super::*;

/// Feeds `json` as the server's text frame.
fn server(rooms: &mut Rooms, json: &str) -> Change {
    rooms.handle_text(json).expect("a valid server message")
}

fn message(room: &str, offset: u64, text: &str) -> String {
    format!(
        r#"{{"type":"message","room":"{room}","from":{{"id":3,"name":"bob"}},"text":"{text}","offset":{offset}}}"#
    )
}

fn joined(room: &str, epoch: &str, offset: u64, recovered: Option<bool>) -> String {
    let recovered = recovered.map_or(String::new(), |r| format!(r#","recovered":{r}"#));
    format!(
        r#"{{"type":"joined","room":"{room}","members":[{{"id":7,"name":"ada"}}],"member_count":1,"epoch":"{epoch}","offset":{offset}{recovered}}}"#
    )
}

fn greeting(rooms: &Rooms) -> Vec<String> {
    rooms
        .greeting()
        .into_iter()
        .map(|m| match m {
            Message::Text(text) => text,
            Message::Binary(_) => panic!("a binary greeting"),
        })
        .collect()
}

/// The chat's lines as `"note: …"`, `"warning: …"` or `"name: …"`.
fn lines(rooms: &Rooms, room: &str) -> Vec<String> {
    rooms
        .room(room)
        .expect("wanted")
        .lines
        .iter()
        .map(|line| match &line.author {
            Author::Note => format!("note: {}", line.text),
            Author::Warning => format!("warning: {}", line.text),
            Author::Server => format!("server: {}", line.text),
            Author::Member(m) if m.name.is_empty() => format!("#{}: {}", m.id, line.text),
            Author::Member(m) => format!("{}: {}", m.name, line.text),
        })
        .collect()
}

/// In `lobby` as ada, at `epoch` with the messages up to `last` received.
fn in_lobby(epoch: &str, last: u64) -> Rooms {
    let mut rooms = Rooms::new();
    rooms.join("lobby", "ada", true);
    server(&mut rooms, &joined("lobby", epoch, 0, None));
    for offset in 1..=last {
        server(&mut rooms, &message("lobby", offset, &format!("m{offset}")));
    }
    rooms
}

#[test]
fn a_first_join_asks_for_no_replay_and_a_rejoin_asks_since_the_last_message() {
    let mut rooms = Rooms::new();
    rooms.join("lobby", "ada", false);
    assert_eq!(
        greeting(&rooms),
        [r#"{"type":"join","room":"lobby","name":"ada"}"#]
    );
    server(&mut rooms, &joined("lobby", "e1", 4, None));
    assert_eq!(
        rooms
            .room("lobby")
            .and_then(|r| r.history.position())
            .cloned(),
        Some(duplex_protocol::Position {
            epoch: "e1".into(),
            offset: 4
        })
    );
    server(&mut rooms, &message("lobby", 5, "hi"));
    server(&mut rooms, &message("lobby", 6, "there"));
    rooms.disconnected(true);
    assert_eq!(
        greeting(&rooms),
        [r#"{"type":"join","room":"lobby","name":"ada","since":{"epoch":"e1","offset":6}}"#]
    );
    // A room left forgets its position: joined again, it starts afresh.
    rooms.leave("lobby", false);
    rooms.join("lobby", "ada", false);
    assert_eq!(
        greeting(&rooms),
        [r#"{"type":"join","room":"lobby","name":"ada"}"#]
    );
}

#[test]
fn a_recovery_shows_the_replayed_messages_then_how_many() {
    let mut rooms = in_lobby("e1", 2);
    rooms.disconnected(true);
    // Rejoined since 2; 3 and 4 were published meanwhile.
    assert_eq!(
        server(&mut rooms, &joined("lobby", "e1", 4, Some(true))),
        Change::Room("lobby".into())
    );
    server(&mut rooms, &message("lobby", 3, "while away"));
    server(&mut rooms, &message("lobby", 4, "also away"));
    server(&mut rooms, &message("lobby", 5, "live"));
    assert_eq!(
        lines(&rooms, "lobby")[2..],
        [
            "bob: m2",
            "note: connection lost; rejoining",
            "note: joined as ada",
            "bob: while away",
            "bob: also away",
            "note: recovered 2 messages",
            "bob: live",
        ]
    );
    rooms.disconnected(true);
    assert_eq!(
        greeting(&rooms),
        [r#"{"type":"join","room":"lobby","name":"ada","since":{"epoch":"e1","offset":5}}"#]
    );
}

/// A close that will not be retried (the token expired, 4001; a close the
/// person asked for) does not promise a rejoin.
#[test]
fn a_final_close_says_closed_not_rejoining() {
    let mut rooms = in_lobby("e1", 2);
    rooms.disconnected(false);
    let lines = lines(&rooms, "lobby");
    assert_eq!(
        lines.last().map(String::as_str),
        Some("note: connection closed")
    );
    assert!(
        !lines.iter().any(|line| line.contains("rejoining")),
        "{lines:?}"
    );
}

#[test]
fn a_recovery_with_nothing_missed_is_shown_too() {
    let mut rooms = in_lobby("e1", 3);
    rooms.disconnected(true);
    server(&mut rooms, &joined("lobby", "e1", 3, Some(true)));
    assert_eq!(
        lines(&rooms, "lobby").last().map(String::as_str),
        Some("note: recovered 0 messages: nothing missed")
    );
}

#[test]
fn a_recovery_the_history_cannot_serve_says_messages_may_be_missing() {
    // The server restarted with the memory engine: another epoch.
    let mut rooms = in_lobby("e1", 2);
    rooms.disconnected(true);
    server(&mut rooms, &joined("lobby", "e2", 0, Some(false)));
    assert_eq!(
        lines(&rooms, "lobby").last().map(String::as_str),
        Some("warning: messages may be missing: history expired")
    );
    // Offsets start again in e2: 1 is new.
    server(&mut rooms, &message("lobby", 1, "after the restart"));
    assert_eq!(
        lines(&rooms, "lobby").last().map(String::as_str),
        Some("bob: after the restart")
    );
    rooms.disconnected(true);
    assert_eq!(
        greeting(&rooms),
        [r#"{"type":"join","room":"lobby","name":"ada","since":{"epoch":"e2","offset":1}}"#]
    );

    // The same epoch but expired: how many is known.
    let mut rooms = in_lobby("e1", 2);
    rooms.disconnected(true);
    server(&mut rooms, &joined("lobby", "e1", 9, Some(false)));
    assert_eq!(
        lines(&rooms, "lobby").last().map(String::as_str),
        Some("warning: messages may be missing: history expired (7 messages not recovered)")
    );
}

#[test]
fn a_history_reset_switches_epoch_and_is_shown() {
    let mut rooms = in_lobby("e1", 3);
    assert_eq!(
        server(
            &mut rooms,
            r#"{"type":"history_reset","room":"lobby","epoch":"e2","offset":0}"#
        ),
        Change::Room("lobby".into())
    );
    assert_eq!(
        lines(&rooms, "lobby").last().map(String::as_str),
        Some("warning: history was reset: messages may be missing")
    );
    // Offset 1 again, in the new epoch: shown, not taken for a duplicate.
    server(&mut rooms, &message("lobby", 1, "new epoch"));
    assert_eq!(
        lines(&rooms, "lobby").last().map(String::as_str),
        Some("bob: new epoch")
    );
    rooms.disconnected(true);
    assert_eq!(
        greeting(&rooms),
        [r#"{"type":"join","room":"lobby","name":"ada","since":{"epoch":"e2","offset":1}}"#]
    );
    // A reset for a room not wanted changes nothing.
    assert_eq!(
        server(
            &mut rooms,
            r#"{"type":"history_reset","room":"elsewhere","epoch":"e9","offset":0}"#
        ),
        Change::None
    );
}

#[test]
fn a_gap_in_the_offsets_is_shown_before_the_message_after_it() {
    let mut rooms = in_lobby("e1", 1);
    assert_eq!(
        server(&mut rooms, r#"{"type":"missed","count":3}"#),
        Change::Missed(3)
    );
    server(&mut rooms, &message("lobby", 5, "after the gap"));
    server(&mut rooms, &message("lobby", 7, "after one more"));
    assert_eq!(
        lines(&rooms, "lobby")[2..],
        [
            "warning: 3 messages missed",
            "bob: after the gap",
            "warning: 1 message missed",
            "bob: after one more",
        ]
    );
}

/// A replay from a `since` older than the last message received (the
/// greeting was taken before the old connection's last messages were
/// handled) brings messages already shown: they are not shown twice.
#[test]
fn replayed_duplicates_are_not_shown_twice() {
    let mut rooms = in_lobby("e1", 2);
    let stale = greeting(&rooms);
    server(&mut rooms, &message("lobby", 3, "m3"));
    rooms.disconnected(true);
    assert!(stale[0].contains(r#""offset":2"#), "{stale:?}");
    // The server replays 3..=4 from the stale since 2.
    server(&mut rooms, &joined("lobby", "e1", 4, Some(true)));
    server(&mut rooms, &message("lobby", 3, "m3"));
    server(&mut rooms, &message("lobby", 4, "m4"));
    let shown = lines(&rooms, "lobby");
    assert_eq!(shown.iter().filter(|l| *l == "bob: m3").count(), 1);
    assert_eq!(
        shown[shown.len() - 2..],
        ["bob: m4", "note: recovered 1 message"]
    );
}

#[test]
fn a_disconnect_during_a_replay_is_shown_and_the_next_rejoin_continues() {
    let mut rooms = in_lobby("e1", 1);
    rooms.disconnected(true);
    server(&mut rooms, &joined("lobby", "e1", 5, Some(true)));
    server(&mut rooms, &message("lobby", 2, "m2"));
    rooms.disconnected(true);
    assert!(
        lines(&rooms, "lobby").contains(
            &"warning: connection lost while recovering: 1 of 4 messages recovered".into()
        )
    );
    assert_eq!(
        greeting(&rooms),
        [r#"{"type":"join","room":"lobby","name":"ada","since":{"epoch":"e1","offset":2}}"#]
    );
}

#[test]
fn binary_deliveries_are_shown_and_move_the_position() {
    let mut rooms = in_lobby("e1", 2);
    let frame = binary::encode_delivery("lobby", 7, 3, &[1, 2, 3]).expect("a delivery");
    assert_eq!(
        rooms.handle_binary(&frame),
        Ok(Change::Room("lobby".into()))
    );
    // From the HTTP API (0), and from a member not in the list.
    let pushed = binary::encode_delivery("lobby", 0, 4, &[0; 2048]).expect("a delivery");
    rooms.handle_binary(&pushed).expect("valid");
    let stranger = binary::encode_delivery("lobby", 99, 6, b"").expect("a delivery");
    rooms.handle_binary(&stranger).expect("valid");
    assert_eq!(
        lines(&rooms, "lobby")[3..],
        [
            "ada: binary message, 3 B",
            "server: binary message, 2.0 KiB",
            "warning: 1 message missed",
            "#99: binary message, 0 B",
        ]
    );
    // A binary duplicate is dropped like a text one.
    assert_eq!(
        rooms.handle_binary(&frame),
        Ok(Change::Room("lobby".into()))
    );
    assert_eq!(lines(&rooms, "lobby").len(), 7);
    rooms.disconnected(true);
    assert_eq!(
        greeting(&rooms),
        [r#"{"type":"join","room":"lobby","name":"ada","since":{"epoch":"e1","offset":6}}"#]
    );
    // Another room's delivery, and frames that are not deliveries.
    let other = binary::encode_delivery("attic", 7, 1, b"x").expect("a delivery");
    assert_eq!(rooms.handle_binary(&other), Ok(Change::None));
    assert_eq!(
        rooms.handle_binary(&[1, 0, 0, 0, 0, 0, 0, 0, 0, 1]),
        Err(BinaryError::Version(1))
    );
    assert_eq!(rooms.handle_binary(&[2]), Err(BinaryError::Truncated));
}

#[test]
fn unavailable_is_reported_like_other_errors() {
    let mut rooms = in_lobby("e1", 0);
    assert_eq!(
        server(
            &mut rooms,
            r#"{"type":"error","code":"unavailable","message":"the cluster's store is unreachable: not delivered, try again","room":"lobby"}"#
        ),
        Change::Error {
            code: ErrorCode::Unavailable,
            message: "the cluster's store is unreachable: not delivered, try again".into(),
            room: Some("lobby".into()),
        }
    );
    assert!(rooms.room("lobby").is_some_and(|r| r.joined));
}
