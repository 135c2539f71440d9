//! Rooms: `joined` is the first thing a new member reads about its room,
//! before any of the room's messages, even while another worker thread
//! publishes to the room (issue 10, defect 5).
//!
//! The join adds the member to the room before its answer is written; a
//! publish on another thread in between found the member's socket idle and
//! wrote the room's message first. A `joined` of 4 KiB or more (a room of a
//! few hundred members with long names) went out through a path whose
//! first flush handed the socket to the hub, which widened the window.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use crate::common::rooms::{
    connect_rooms, join, joined_clients, next_server, publish, send_client,
};
use crate::common::{TestServer, config};
use duplex_protocol::{ClientMessage, ServerMessage};

/// Members already in the room; their names make `joined` over 4 KiB.
const MEMBERS: usize = 300;
/// New members that each check what they read first.
const JOINS: usize = 150;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn joined_comes_before_the_rooms_messages_under_a_steady_publish() {
    let mut config = config();
    // Nobody reads the room's traffic except the joiners: nobody may be
    // closed for it, and nobody is told of members joining.
    config.client_queue = 1024;
    config.slow_client_missed = u64::MAX;
    config.presence_limit = MEMBERS + JOINS + 10;
    let server = TestServer::start(config).await;
    let names = (0..MEMBERS).map(|i| format!("member-{i:04}-with-a-rather-long-display-name"));
    let members = joined_clients(server.addr, "r", names).await;

    let stop = Arc::new(AtomicBool::new(false));
    let publishing = {
        let stop = Arc::clone(&stop);
        let (mut publisher, _) = connect_rooms(server.addr).await;
        join(&mut publisher, "r", "publisher").await;
        tokio::spawn(async move {
            let mut sent = 0u64;
            while !stop.load(Ordering::Relaxed) && sent < 1_000_000 {
                publish(&mut publisher, "r", "tick").await;
                sent += 1;
                if sent.is_multiple_of(8) {
                    tokio::task::yield_now().await;
                }
            }
            sent
        })
    };

    for n in 0..JOINS {
        let (mut ws, _) = connect_rooms(server.addr).await;
        send_client(
            &mut ws,
            &ClientMessage::Join {
                room: "r".into(),
                name: format!("joiner-{n}"),
                since: None,
            },
        )
        .await;
        match next_server(&mut ws).await {
            ServerMessage::Joined {
                room, member_count, ..
            } => {
                assert_eq!(room, "r");
                assert!(member_count > MEMBERS);
            }
            other => panic!("join {n}: the first message after welcome is {other:?}"),
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    stop.store(true, Ordering::Relaxed);
    let sent = publishing.await.expect("publisher");
    assert!(sent > 0, "nothing was published during the joins");
    drop(members);
}
