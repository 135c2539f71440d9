//! Rooms: deliveries written straight to a member's socket by the publisher
//! (see `rooms::outbox`) share that socket with the member's own session.
//! Frames must never interleave, a frame the socket could take only part
//! of must be finished before anything else, and the session's buffered
//! answers keep their place before the room's messages.

mod common;

use common::rooms::{connect_rooms, join, next_server, small_buffered_client};
use common::{TestServer, WAIT, config};
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
