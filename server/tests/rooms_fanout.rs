//! Rooms: fan-out to 1,000 members of one room, each a real client on its
//! own connection: every member receives every published message exactly
//! once and in the order published.
//!
//! Presence is limited to the first 100 members here: with presence for
//! all, member i hears i-1 `member_joined` events, half a million in all,
//! which is what `--presence-limit` exists to avoid.

use crate::common;

use std::time::Duration;

use crate::common::rooms::{connect_rooms, join, next_text, publish};
use crate::common::{TestServer, config};
use duplex_protocol::ServerMessage;
use tokio::time::timeout;
use tokio_tungstenite::tungstenite::Message;

const MEMBERS: usize = 1000;
const MESSAGES: usize = 20;
/// The whole fan-out, joins excluded; generous for a debug build on a
/// loaded 2-core machine.
const WITHIN: Duration = Duration::from_secs(60);

/// Two descriptors per member (client and server side), plus slack.
fn ensure_file_descriptors() {
    let needed = (2 * MEMBERS + 64) as u64;
    let limit = rlimit::increase_nofile_limit(needed + 100).expect("raise RLIMIT_NOFILE");
    assert!(
        limit >= needed,
        "this test needs {needed} file descriptors; the limit is {limit}"
    );
}

/// The next room message's text. Presence events are skipped by their
/// first bytes, without parsing: half a million of them through serde in a
/// debug build would dominate the test.
async fn next_room_text(ws: &mut common::Client) -> String {
    for _ in 0..10 * MEMBERS {
        match common::next_non_control(ws).await {
            Message::Text(text) if text.as_str().starts_with(r#"{"type":"member_"#) => {}
            Message::Text(text) => match serde_json::from_str(text.as_str()) {
                Ok(ServerMessage::Message { text, .. }) => return text,
                other => panic!("expected a room message, got {other:?}"),
            },
            other => panic!("expected a text frame, got {other:?}"),
        }
    }
    panic!("no room message among {} frames", 10 * MEMBERS);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_members_each_receive_every_message_once_in_order() {
    ensure_file_descriptors();
    let mut config = config();
    // Early members hear ~1,000 joins while the others connect: room for
    // all of them, so the count of messages is exact.
    config.client_queue = 2 * MEMBERS;
    config.slow_client_missed = 4 * MEMBERS as u64;
    config.presence_limit = 100;
    let server = TestServer::start(config).await;

    let (mut publisher, _) = connect_rooms(server.addr).await;
    join(&mut publisher, "big", "publisher").await;
    let mut members = Vec::with_capacity(MEMBERS);
    for i in 1..MEMBERS {
        let (mut ws, _) = connect_rooms(server.addr).await;
        join(&mut ws, "big", &format!("m{i}")).await;
        members.push((i, ws));
    }
    // The readers start once everyone has joined: each waits at most WAIT
    // for its next message, and members past the presence limit hear
    // nothing while the others join (which took over 5 s on a loaded
    // machine).
    let mut readers = tokio::task::JoinSet::new();
    for (i, mut ws) in members {
        readers.spawn(async move {
            let mut got = Vec::with_capacity(MESSAGES + 1);
            // Everything up to the end marker: duplicates or reordering
            // show up as a different list.
            while got.last().map(String::as_str) != Some("end") {
                assert!(
                    got.len() <= MESSAGES,
                    "member {i}: too many messages: {got:?}"
                );
                got.push(next_room_text(&mut ws).await);
            }
            (i, got)
        });
    }
    for n in 0..MESSAGES {
        publish(&mut publisher, "big", &n.to_string()).await;
    }
    publish(&mut publisher, "big", "end").await;

    let expected: Vec<String> = (0..MESSAGES)
        .map(|n| n.to_string())
        .chain(["end".to_owned()])
        .collect();
    let mut finished = 0;
    timeout(WITHIN, async {
        while let Some(result) = readers.join_next().await {
            let (i, got) = result.expect("reader task");
            assert_eq!(got, expected, "member {i}");
            finished += 1;
        }
    })
    .await
    .unwrap_or_else(|_| {
        panic!("only {finished} of {MEMBERS} members got everything within {WITHIN:?}")
    });
    assert_eq!(finished, MEMBERS - 1);
    // The publisher is a member too and got its own messages.
    for n in expected {
        assert_eq!(next_text(&mut publisher).await.1, n);
    }
}
