//! Rooms: deliveries written straight to a member's socket by the publisher
//! (see `rooms::outbox`) share that socket with the member's own session.
//! Frames must never interleave, a frame the socket could take only part
//! of must be finished before anything else, and the session's buffered
//! answers keep their place before the room's messages.

use crate::common;

use crate::common::rooms::{
    connect_rooms, join, joined_clients, next_server, small_buffered_client,
};
use crate::common::{TestServer, WAIT, config};
use duplex_protocol::{ClientMessage, ServerMessage, binary};
use futures_util::{SinkExt, Stream, StreamExt};
use tokio::time::timeout;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};

/// Far larger than the socket buffers of a member that stops reading, so
/// direct writes to it come back partial and then blocked.
const SIZE: usize = 64 * 1024;
const TOTAL: usize = 200;

fn payload(n: usize) -> Vec<u8> {
    common::bytes(SIZE, n as u64)
}

/// Reads `TOTAL` binary deliveries and checks each, byte for byte, in order.
async fn expect_every_delivery<S>(ws: &mut S, who: &str)
where
    S: Stream<Item = Result<Message, WsError>> + Unpin,
{
    let mut next = 0;
    while next < TOTAL {
        match timeout(WAIT, ws.next()).await {
            Ok(Some(Ok(Message::Binary(data)))) => {
                let delivery = binary::decode_delivery(&data)
                    .unwrap_or_else(|error| panic!("{who}: delivery {next}: {error}"));
                assert!(
                    delivery.payload == payload(next).as_slice(),
                    "{who}: delivery {next} differs"
                );
                next += 1;
            }
            Ok(Some(Ok(Message::Text(text)))) => panic!("{who}: unexpected {text}"),
            Ok(Some(Ok(_))) => {}
            other => panic!("{who}: stream ended after {next}: {other:?}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_that_pauses_gets_every_large_delivery_intact_and_in_order() {
    let mut config = config();
    // Room enough that nothing is dropped: this is about the bytes.
    config.client_queue = 10 * TOTAL;
    config.slow_client_missed = 1_000_000;
    let server = TestServer::start(config).await;
    let (mut paused, _) = small_buffered_client(server.addr).await;
    join(&mut paused, "r", "paused").await;
    let (mut publisher, _) = connect_rooms(server.addr).await;
    join(&mut publisher, "r", "publisher").await;
    // The member_joined for the publisher, read before pausing.
    assert!(matches!(
        next_server(&mut paused).await,
        ServerMessage::MemberJoined { .. }
    ));

    let (mut sink, mut stream) = publisher.split();
    // The publisher is a member too: it reads its own deliveries.
    let own = tokio::spawn(async move { expect_every_delivery(&mut stream, "publisher").await });
    for n in 0..TOTAL {
        let frame = binary::encode_publish("r", &payload(n)).expect("encode");
        timeout(WAIT, sink.send(Message::binary(frame)))
            .await
            .expect("publish timed out")
            .expect("publish");
    }
    own.await.expect("the publisher got its own deliveries");
    // 12.5 MiB waited for the paused member, partly in its socket, the
    // rest queued; now it reads them all.
    expect_every_delivery(&mut paused, "paused").await;
}

#[tokio::test]
async fn the_answer_to_a_join_comes_before_the_rooms_messages() {
    let server = TestServer::start(config()).await;
    let (mut ada, _) = connect_rooms(server.addr).await;
    // A join and a publish in one write: the server reads them in one
    // batch, buffers the `joined` answer, and fans the message out while
    // the answer is still buffered.
    for message in [
        ClientMessage::Join {
            room: "r".into(),
            name: "ada".into(),
            since: None,
        },
        ClientMessage::Publish {
            room: "r".into(),
            text: "first words".into(),
        },
    ] {
        let json = serde_json::to_string(&message).expect("serialise");
        timeout(WAIT, ada.feed(Message::text(json)))
            .await
            .expect("feed timed out")
            .expect("feed");
    }
    timeout(WAIT, ada.flush())
        .await
        .expect("flush timed out")
        .expect("flush");
    let first = next_server(&mut ada).await;
    assert!(
        matches!(first, ServerMessage::Joined { .. }),
        "got {first:?} before the joined answer"
    );
    match next_server(&mut ada).await {
        ServerMessage::Message { text, .. } => assert_eq!(text, "first words"),
        other => panic!("expected the message, got {other:?}"),
    }
}

/// Four publishers at once on a two-thread runtime, to members with small
/// socket buffers (so the hub's direct writes come back partial) whose own
/// sessions keep writing large answers in between (joining a room of 100
/// long-named members answers with an 8 KiB member list, then leaving it):
/// every member must get every message of every publisher, in each
/// publisher's order, in frames that parse.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_publishers_and_answers_never_interleave() {
    const PUBLISHERS: usize = 4;
    const READERS: usize = 6;
    const EACH: usize = 100;
    // Text big enough to fill a small socket buffer in a few messages.
    let padding = ".".repeat(16 * 1024);
    let mut config = config();
    // Every publish, and every presence event of the other readers
    // joining and leaving the crowd while this one is in it: a queue too
    // short for those drops publishes (and the reader sees a gap).
    config.client_queue = PUBLISHERS * EACH + READERS * 2 * 50;
    config.slow_client_missed = 1_000_000;
    let server = TestServer::start(config).await;

    // The crowd whose member list makes each `joined` answer large; it
    // never reads (its drops do not matter here).
    let mut crowd = Vec::new();
    for i in 0..100 {
        let (mut ws, _) = connect_rooms(server.addr).await;
        join(&mut ws, "crowd", &format!("{i:03}{}", "n".repeat(57))).await;
        crowd.push(ws);
    }
    let mut readers = Vec::new();
    for i in 0..READERS {
        let (mut ws, _) = small_buffered_client(server.addr).await;
        join(&mut ws, "r", &format!("reader{i}")).await;
        readers.push(ws);
    }
    let publishers = joined_clients(
        server.addr,
        "r",
        (0..PUBLISHERS).map(|i| format!("publisher{i}")),
    )
    .await;

    let mut reading = tokio::task::JoinSet::new();
    for (i, ws) in readers.into_iter().enumerate() {
        reading.spawn(async move {
            let (mut sink, mut stream) = ws.split();
            // The side traffic: answers the session writes itself.
            let side = tokio::spawn(async move {
                for _ in 0..50 {
                    for message in [
                        ClientMessage::Join {
                            room: "crowd".into(),
                            name: format!("reader{i}"),
                            since: None,
                        },
                        ClientMessage::Leave {
                            room: "crowd".into(),
                        },
                    ] {
                        let json = serde_json::to_string(&message).expect("serialise");
                        if sink.send(Message::text(json)).await.is_err() {
                            return;
                        }
                    }
                }
            });
            let mut next = [0usize; PUBLISHERS];
            while next.iter().sum::<usize>() < PUBLISHERS * EACH {
                let text = match timeout(WAIT, stream.next()).await {
                    Ok(Some(Ok(Message::Text(text)))) => text,
                    Ok(Some(Ok(_))) => continue,
                    other => panic!("reader {i}: stream ended: {other:?}"),
                };
                let message: ServerMessage = serde_json::from_str(text.as_str())
                    .unwrap_or_else(|error| panic!("reader {i}: {error}"));
                if let ServerMessage::Missed { count } = message {
                    panic!("reader {i}: missed {count} (the queue is too short)");
                }
                if let ServerMessage::Message { text, .. } = message {
                    let mut fields = text.splitn(3, ':');
                    let publisher: usize = fields
                        .next()
                        .and_then(|f| f.parse().ok())
                        .expect("publisher");
                    let n: usize = fields.next().and_then(|f| f.parse().ok()).expect("n");
                    assert_eq!(n, next[publisher], "reader {i}: publisher {publisher}");
                    next[publisher] += 1;
                }
            }
            side.await.expect("side traffic");
        });
    }
    // Publishers stay connected until every reader is done: closing a
    // socket with unread input resets it, and the reset would discard
    // publishes the server has not read yet.
    let (done, _) = tokio::sync::broadcast::channel::<()>(1);
    let mut publishing = tokio::task::JoinSet::new();
    for (p, ws) in publishers.into_iter().enumerate() {
        let padding = padding.clone();
        let mut done = done.subscribe();
        publishing.spawn(async move {
            let (mut sink, mut stream) = ws.split();
            // Drains its own copies meanwhile, so it never falls behind.
            let drain = tokio::spawn(async move {
                while let Ok(Some(Ok(_))) = timeout(WAIT, stream.next()).await {}
            });
            for n in 0..EACH {
                let message = ClientMessage::Publish {
                    room: "r".into(),
                    text: format!("{p}:{n}:{padding}"),
                };
                let json = serde_json::to_string(&message).expect("serialise");
                timeout(WAIT, sink.send(Message::text(json)))
                    .await
                    .expect("publish timed out")
                    .expect("publish");
            }
            let _ = done.recv().await;
            drain.abort();
            drop(sink);
        });
    }
    while let Some(result) = reading.join_next().await {
        result.expect("a reader failed");
    }
    let _ = done.send(());
    while let Some(result) = publishing.join_next().await {
        result.expect("a publisher failed");
    }
    drop(crowd);
}
