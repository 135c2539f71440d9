//! Rooms: the slow-client policy. A member whose queue overflows loses the
//! oldest messages and is told how many; one that never reads is closed
//! (1013) and leaves its rooms as `too_slow`, while the other members keep
//! receiving every message in order without delay.

use crate::common;

use crate::common::rooms::{connect_rooms, join, next_server, small_buffered_client};
use crate::common::{TestServer, WAIT, config};
use duplex_protocol::{LeaveReason, ServerMessage};
use futures_util::StreamExt;
use tokio::time::timeout;
use tokio_tungstenite::tungstenite::Message;

/// Messages big enough that a few hundred fill the socket buffers of a
/// client that does not read.
const SIZE: usize = 16 * 1024;

fn numbered(n: usize) -> String {
    format!("{n:06}{}", ".".repeat(SIZE - 6))
}

fn number(text: &str) -> usize {
    text[..6].parse().expect("numbered message")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_member_is_closed_and_delays_no_one() {
    let mut config = config();
    config.client_queue = 64;
    config.slow_client_missed = 64;
    let server = TestServer::start(config).await;
    let (mut stalled, stalled_id) = small_buffered_client(server.addr).await;
    join(&mut stalled, "r", "stalled").await;
    let (mut publisher, _) = connect_rooms(server.addr).await;
    join(&mut publisher, "r", "publisher").await;
    let (mut reader, _) = connect_rooms(server.addr).await;
    join(&mut reader, "r", "reader").await;
    // The publisher hears its own messages; read them so it is no slow
    // member itself.
    let (mut sink, mut stream) = publisher.split();
    const TOTAL: usize = 2000;
    let echo = tokio::spawn(async move {
        let mut n = 0;
        for _ in 0..TOTAL + 10 {
            if n == TOTAL {
                return;
            }
            match timeout(WAIT, stream.next()).await {
                Ok(Some(Ok(Message::Text(text)))) => {
                    if let Ok(ServerMessage::Message { text, .. }) = serde_json::from_str(&text) {
                        assert_eq!(number(&text), n);
                        n += 1;
                    }
                }
                Ok(Some(Ok(_))) => {}
                other => panic!("publisher stream ended: {other:?}"),
            }
        }
        panic!("the publisher got only {n} of its own messages");
    });
    // Paced by the reader: never more than WINDOW ahead of it, so the
    // reader never overflows its queue however slow this debug build is,
    // while the stalled member falls behind without bound.
    const WINDOW: usize = 32;
    let (progress_tx, mut progress) = tokio::sync::watch::channel(0usize);
    let publishing = tokio::spawn(async move {
        use futures_util::SinkExt;
        for n in 0..TOTAL {
            timeout(WAIT, progress.wait_for(|read| n < read + WINDOW))
                .await
                .expect("the reader fell behind")
                .expect("reader gone");
            let json = serde_json::json!({"type": "publish", "room": "r", "text": numbered(n)});
            timeout(WAIT, sink.send(Message::text(json.to_string())))
                .await
                .expect("publish timed out")
                .expect("publish");
        }
    });

    // The reader gets every message, in order, each within WAIT, and hears
    // that the stalled member was dropped for being too slow.
    let mut next = 0;
    let mut dropped = false;
    for _ in 0..TOTAL + 10 {
        if next == TOTAL && dropped {
            break;
        }
        match next_server(&mut reader).await {
            ServerMessage::Message { text, .. } => {
                assert_eq!(number(&text), next, "the reader missed or reordered");
                next += 1;
                let _ = progress_tx.send(next);
            }
            ServerMessage::MemberLeft { member, reason, .. } => {
                assert_eq!((member.id, reason), (stalled_id, LeaveReason::TooSlow));
                dropped = true;
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(next, TOTAL);
    assert!(dropped, "the stalled member was never dropped");
    publishing.await.expect("publisher");
    echo.await.expect("publisher's own messages");

    // What the stalled client finds when it finally reads: some messages
    // in order, then the end of the connection (a Close, if one got
    // through, says 1013).
    let mut last = None;
    for _ in 0..TOTAL + 10 {
        match timeout(WAIT, stalled.next())
            .await
            .expect("stalled client: no end")
        {
            Some(Ok(Message::Text(text))) => {
                if let Ok(ServerMessage::Message { text, .. }) = serde_json::from_str(&text) {
                    let n = number(&text);
                    assert!(last.is_none_or(|last| n > last), "out of order");
                    last = Some(n);
                }
            }
            Some(Ok(Message::Close(Some(frame)))) => {
                assert_eq!(u16::from(frame.code), 1013);
            }
            Some(Ok(_)) => {}
            None | Some(Err(_)) => break,
        }
    }
    // What /metrics says about it: one kick, its drops, the 1013 sent.
    let metrics = common::metrics::Metrics::scrape(server.addr).await;
    assert_eq!(metrics.value("duplex_slow_client_kicks_total", &[]), 1.0);
    assert!(metrics.value("duplex_room_messages_dropped_total", &[]) > 64.0);
    assert_eq!(
        metrics.count("duplex_close_codes_sent_total", &[("code", "1013")]),
        1.0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_behind_loses_the_oldest_and_is_told_how_many() {
    let mut config = config();
    config.client_queue = 4;
    // Never closed in this test: only drops.
    config.slow_client_missed = 1_000_000;
    let server = TestServer::start(config).await;
    let (mut behind, _) = small_buffered_client(server.addr).await;
    join(&mut behind, "r", "behind").await;
    let (mut publisher, _) = connect_rooms(server.addr).await;
    join(&mut publisher, "r", "publisher").await;

    // Far more than the socket buffers hold: drops are certain.
    const TOTAL: usize = 800;
    let (mut sink, mut stream) = publisher.split();
    // The publisher's own queue is small too: read until its newest
    // message, which drop-oldest always keeps.
    let drain = tokio::spawn(async move {
        for _ in 0..2 * TOTAL {
            match timeout(WAIT, stream.next()).await {
                Ok(Some(Ok(Message::Text(text)))) => {
                    if let Ok(ServerMessage::Message { text, .. }) = serde_json::from_str(&text)
                        && number(&text) == TOTAL - 1
                    {
                        return;
                    }
                }
                Ok(Some(Ok(_))) => {}
                other => panic!("publisher stream ended: {other:?}"),
            }
        }
        panic!("the publisher never got its last message");
    });
    for n in 0..TOTAL {
        use futures_util::SinkExt;
        let json = serde_json::json!({"type": "publish", "room": "r", "text": numbered(n)});
        timeout(WAIT, sink.send(Message::text(json.to_string())))
            .await
            .expect("publish timed out")
            .expect("publish");
    }
    drain.await.expect("drain");

    // Every message is either received (in order) or counted as missed.
    let (mut received, mut missed, mut last) = (0u64, 0u64, None);
    while received + missed < TOTAL as u64 {
        match next_server(&mut behind).await {
            ServerMessage::Message { text, .. } => {
                let n = number(&text);
                assert!(last.is_none_or(|last| n > last), "out of order");
                last = Some(n);
                received += 1;
            }
            ServerMessage::Missed { count } => missed += count,
            ServerMessage::MemberJoined { .. } => {}
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(received + missed, TOTAL as u64);
    assert!(
        missed > 0,
        "nothing was dropped: the test did not fill the queue"
    );
    assert_eq!(last, Some(TOTAL - 1), "the newest message is kept");
}
