//! Rooms history on one instance (the memory engine): offsets, epochs,
//! and recovery with `join.since`, through the real server and real
//! WebSocket clients on loopback.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::common::rooms::{connect_rooms, join, join_since, next_offset, next_server, publish};
use crate::common::{TestServer, config, connect, next_non_control};
use duplex_protocol::{Position, ServerMessage, binary};
use futures_util::SinkExt;
use tokio_tungstenite::tungstenite::Message;

#[tokio::test]
async fn offsets_count_a_rooms_messages_from_one_text_and_binary_alike() {
    let server = TestServer::start(config()).await;
    let (mut ada, _) = connect_rooms(server.addr).await;
    let joined = join_since(&mut ada, "r", "ada", None).await;
    assert_eq!((joined.offset, joined.recovered), (0, None));
    assert_eq!(joined.epoch.len(), 16, "epoch {:?}", joined.epoch);
    publish(&mut ada, "r", "one").await;
    assert_eq!(next_offset(&mut ada).await, ("one".into(), 1));
    let frame = binary::encode_publish("r", b"\x00two").expect("publish header");
    ada.send(Message::binary(frame)).await.expect("send");
    match next_non_control(&mut ada).await {
        Message::Binary(data) => {
            let delivery = binary::decode_delivery(&data).expect("delivery");
            assert_eq!((delivery.offset, delivery.payload), (2, &b"\x00two"[..]));
        }
        other => panic!("expected a binary delivery, got {other:?}"),
    }
    publish(&mut ada, "r", "three").await;
    assert_eq!(next_offset(&mut ada).await, ("three".into(), 3));
    // Another room counts its own.
    let (mut bob, _) = connect_rooms(server.addr).await;
    let other = join_since(&mut bob, "elsewhere", "bob", None).await;
    assert_eq!(other.offset, 0);
    assert_ne!(other.epoch, joined.epoch);
    // A late joiner is told the latest offset.
    let late = join_since(&mut bob, "r", "bob", None).await;
    assert_eq!(
        (late.epoch.as_str(), late.offset),
        (joined.epoch.as_str(), 3)
    );
}

/// A member drops off, K messages are published, it rejoins with `since`:
/// `recovered: true`, then exactly the K messages, then live ones, each
/// once.
#[tokio::test]
async fn a_member_that_reconnects_recovers_exactly_what_it_missed() {
    let server = TestServer::start(config()).await;
    let (mut publisher, _) = connect_rooms(server.addr).await;
    join(&mut publisher, "r", "pub").await;
    let (mut reader, _) = connect_rooms(server.addr).await;
    let at = join_since(&mut reader, "r", "reader", None)
        .await
        .position();
    publish(&mut publisher, "r", "seen").await;
    let (_, seen) = next_offset(&mut reader).await;
    drop(reader);
    for i in 0..7 {
        publish(&mut publisher, "r", &format!("missed {i}")).await;
    }
    // The publisher's own copies confirm the messages are in the history.
    for _ in 0..8 {
        next_offset(&mut publisher).await;
    }
    let since = Position {
        epoch: at.epoch.clone(),
        offset: seen,
    };
    let (mut reader, _) = connect_rooms(server.addr).await;
    let joined = join_since(&mut reader, "r", "reader", Some(since)).await;
    assert_eq!((joined.offset, joined.recovered), (seen + 7, Some(true)));
    for i in 0..7 {
        assert_eq!(
            next_offset(&mut reader).await,
            (format!("missed {i}"), seen + 1 + i)
        );
    }
    publish(&mut publisher, "r", "live").await;
    assert_eq!(next_offset(&mut reader).await, ("live".into(), seen + 8));
}

/// `--history-size` is exact, and positions the history cannot vouch for
/// (another epoch, beyond the latest, too old) are refused without replay.
#[tokio::test]
async fn recovery_is_refused_past_the_history_size_and_for_other_epochs() {
    let mut config = config();
    config.history_size = 5;
    let server = TestServer::start(config).await;
    let (mut publisher, _) = connect_rooms(server.addr).await;
    let epoch = join_since(&mut publisher, "r", "pub", None).await.epoch;
    let mut latest = 0;
    for i in 1..=8 {
        publish(&mut publisher, "r", &format!("m{i}")).await;
        latest = next_offset(&mut publisher).await.1;
        assert_eq!(latest, i);
    }
    // (epoch, offset back from the latest, recovered, replayed)
    let other = "0123456789abcdef".to_owned();
    let cases: [(&String, i64, bool, u64); 5] = [
        // Missed 5 = the size: recovered.
        (&epoch, -5, true, 5),
        // Missed 6: lost.
        (&epoch, -6, false, 0),
        // At the latest: recovered, nothing to replay.
        (&epoch, 0, true, 0),
        (&epoch, 1, false, 0),
        (&other, 0, false, 0),
    ];
    for (n, (epoch, back, recovered, replayed)) in cases.into_iter().enumerate() {
        let since = Position {
            epoch: epoch.clone(),
            offset: latest.checked_add_signed(back).expect("an offset"),
        };
        let (mut ws, _) = connect_rooms(server.addr).await;
        let joined = join_since(&mut ws, "r", &format!("c{n}"), Some(since.clone())).await;
        assert_eq!(joined.recovered, Some(recovered), "since {since:?}");
        assert_eq!(joined.offset, latest);
        let mut got = Vec::new();
        for _ in 0..replayed {
            got.push(next_offset(&mut ws).await.1);
        }
        assert_eq!(got, (latest + 1 - replayed..=latest).collect::<Vec<_>>());
        // Nothing else was replayed: the next message is a live one.
        publish(&mut publisher, "r", "probe").await;
        let (text, offset) = next_offset(&mut ws).await;
        assert_eq!(text, "probe", "since {since:?}: a replay too many");
        latest = next_offset(&mut publisher).await.1;
        assert_eq!(offset, latest);
    }
}

/// Replay and live traffic meet without a gap or a duplicate, while a
/// publisher keeps publishing during the rejoin.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_seam_between_replay_and_live_has_no_gap_and_no_duplicate() {
    let mut config = config();
    // Whatever this machine's speed, the history holds what the reader
    // misses while it is away.
    config.history_size = 10_000;
    let server = TestServer::start(config).await;
    let (mut reader, _) = connect_rooms(server.addr).await;
    let start = join_since(&mut reader, "r", "reader", None).await;
    drop(reader);
    let stop = Arc::new(AtomicBool::new(false));
    let publishing = {
        let (mut publisher, _) = connect_rooms(server.addr).await;
        join(&mut publisher, "r", "pub").await;
        let stop = Arc::clone(&stop);
        tokio::spawn(async move {
            let mut sent = 0u64;
            // Bounded in count.
            while !stop.load(Ordering::Relaxed) && sent < 5_000 {
                publish(&mut publisher, "r", "tick").await;
                sent += 1;
                // Its own copies, read so its socket never fills.
                next_offset(&mut publisher).await;
            }
            sent
        })
    };
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    let (mut reader, _) = connect_rooms(server.addr).await;
    let joined = join_since(&mut reader, "r", "reader", Some(start.position())).await;
    assert_eq!(joined.recovered, Some(true), "missed more than the history");
    // Replayed up to joined.offset, then live: one contiguous run.
    for expected in start.offset + 1..=joined.offset + 200 {
        let (_, offset) = next_offset(&mut reader).await;
        assert_eq!(offset, expected, "after a replay up to {}", joined.offset);
    }
    stop.store(true, Ordering::Relaxed);
    let sent = publishing.await.expect("publisher");
    assert!(
        sent > joined.offset,
        "the publisher stopped before the rejoin"
    );
}

/// A restarted instance (memory engine) has lost every history: a client
/// that rejoins with its old position learns so, with a new epoch.
#[tokio::test]
async fn a_restarted_instance_answers_recovered_false_with_a_new_epoch() {
    let first = TestServer::start(config()).await;
    let (mut ws, _) = connect_rooms(first.addr).await;
    let before = join_since(&mut ws, "r", "ada", None).await;
    publish(&mut ws, "r", "lost").await;
    let (_, offset) = next_offset(&mut ws).await;
    drop(ws);
    drop(first);
    let second = TestServer::start(config()).await;
    let (mut ws, _) = connect_rooms(second.addr).await;
    let since = Position {
        epoch: before.epoch.clone(),
        offset,
    };
    let after = join_since(&mut ws, "r", "ada", Some(since)).await;
    assert_eq!((after.offset, after.recovered), (0, Some(false)));
    assert_ne!(after.epoch, before.epoch);
    publish(&mut ws, "r", "first again").await;
    assert_eq!(next_offset(&mut ws).await, ("first again".into(), 1));
}

/// A room's history outlives its members for `--history-ttl`, then goes:
/// members sitting in a room whose history expired are told, with
/// `history_reset`, before the new epoch's first message.
#[tokio::test]
async fn an_expired_history_is_announced_to_its_members() {
    let mut config = config();
    config.history_ttl = std::time::Duration::from_millis(300);
    let server = TestServer::start(config).await;
    let (mut ws, _) = connect_rooms(server.addr).await;
    let joined = join_since(&mut ws, "r", "ada", None).await;
    publish(&mut ws, "r", "old").await;
    assert_eq!(next_offset(&mut ws).await.1, 1);
    tokio::time::sleep(std::time::Duration::from_millis(400)).await;
    publish(&mut ws, "r", "new").await;
    match next_server(&mut ws).await {
        ServerMessage::HistoryReset {
            room,
            epoch,
            offset,
        } => {
            assert_eq!((room.as_str(), offset), ("r", 0));
            assert_ne!(epoch, joined.epoch);
        }
        other => panic!("expected history_reset, got {other:?}"),
    }
    assert_eq!(next_offset(&mut ws).await, ("new".into(), 1));
    // An empty room keeps its history for the TTL, not past it.
    drop(ws);
    let mut ws = connect(server.addr, "/ws").await;
    next_server(&mut ws).await;
    let kept = join_since(&mut ws, "r", "bob", None).await;
    assert_eq!(kept.offset, 1);
}
