//! `--max-messages-per-second`: a connection that keeps sending faster
//! than the limit is closed with 1008 within a second of emptying its
//! bucket, while one at half the rate beside it never is; control frames
//! are not counted; rooms connections are held to it like echo ones.

use crate::common;

use std::time::Duration;

use crate::common::rooms::{connect_rooms, join, send_client};
use crate::common::{Client, TestServer};
use duplex_protocol::ClientMessage;
use futures_util::{SinkExt, StreamExt};
use tokio::time::{Instant, MissedTickBehavior, interval, timeout};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;

const RATE: u32 = 50;

async fn start() -> TestServer {
    let mut config = common::config();
    config.max_messages_per_second = RATE;
    TestServer::start(config).await
}

/// How a paced sender's run ended.
#[derive(Debug)]
struct Run {
    /// When each message was sent.
    sent: Vec<Instant>,
    /// The server's Close and when it arrived, if it closed.
    closed: Option<(Instant, Option<CloseFrame>)>,
    /// Echoes received.
    echoes: usize,
}

/// Sends a text message every `every` for `during`, reading echoes in
/// between, until the time is up or the server closes.
async fn paced(mut ws: Client, every: Duration, during: Duration) -> Run {
    let end = Instant::now() + during;
    let mut ticks = interval(every);
    ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut run = Run {
        sent: Vec::new(),
        closed: None,
        echoes: 0,
    };
    let mut sending = true;
    while Instant::now() < end + common::WAIT {
        tokio::select! {
            _ = ticks.tick(), if sending => {
                if Instant::now() >= end {
                    break;
                }
                // A send refused after the server's Close: read it next.
                match ws.send(Message::text("tick")).await {
                    Ok(()) => run.sent.push(Instant::now()),
                    Err(_) => sending = false,
                }
            }
            message = timeout(common::WAIT, ws.next()) => match message {
                Ok(Some(Ok(Message::Close(frame)))) => {
                    run.closed = Some((Instant::now(), frame));
                    return run;
                }
                Ok(Some(Ok(Message::Text(_)))) => run.echoes += 1,
                Ok(Some(Ok(_))) => {}
                Ok(None | Some(Err(_))) => return run,
                Err(_) => panic!("nothing from the server for {:?}", common::WAIT),
            },
        }
    }
    run
}

/// When a client sending at `sent`'s times empties a full bucket of RATE
/// refilled at RATE a second, as far as the client can tell: the server
/// sees each message a little later, so it may find the bucket empty
/// before the last send this finds, never long after.
fn emptied_at(sent: &[Instant]) -> Option<Instant> {
    let first = *sent.first()?;
    let over = sent.iter().enumerate().find_map(|(i, at)| {
        let budget = f64::from(RATE) * (1.0 + at.duration_since(first).as_secs_f64());
        (i as f64 + 1.0 > budget).then_some(*at)
    });
    over.or(sent.last().copied())
}

#[tokio::test]
async fn twice_the_rate_is_closed_half_the_rate_never_is() {
    let server = start().await;
    let fast = common::connect(server.addr, "/echo").await;
    let slow = common::connect(server.addr, "/echo").await;
    let during = Duration::from_secs(3);
    let per_message = Duration::from_secs(1) / RATE;
    let (fast, slow) = tokio::join!(
        paced(fast, per_message / 2, during),
        paced(slow, per_message * 2, during),
    );

    let emptied = emptied_at(&fast.sent).expect("the fast client sent");
    let (closed_at, frame) = fast.closed.expect("the fast client was closed");
    let frame = frame.expect("with a code");
    assert_eq!(u16::from(frame.code), 1008);
    assert_eq!(frame.reason.as_str(), "message rate limit exceeded");
    assert!(
        closed_at.saturating_duration_since(emptied) <= Duration::from_secs(1),
        "closed {:?} after emptying its bucket",
        closed_at.saturating_duration_since(emptied)
    );
    // At 2× the rate the bucket lasts about a second: not much less.
    let lasted = closed_at.duration_since(fast.sent[0]);
    assert!(
        lasted >= Duration::from_millis(700),
        "closed after {lasted:?}"
    );
    assert!(
        fast.sent.len() > RATE as usize,
        "closed after {} messages",
        fast.sent.len()
    );

    assert!(
        slow.closed.is_none(),
        "the slow client was closed: {slow:?}"
    );
    assert!(
        slow.sent.len() >= 50,
        "the slow client sent only {}",
        slow.sent.len()
    );
    assert_eq!(slow.echoes, slow.sent.len(), "every slow message came back");
}

#[tokio::test]
async fn pings_are_not_counted() {
    let server = start().await;
    let mut ws = common::connect(server.addr, "/echo").await;
    // Three buckets' worth of pings at once, then a full bucket of data.
    for _ in 0..3 * RATE {
        ws.feed(Message::Ping("p".into())).await.expect("feed ping");
    }
    for i in 0..RATE {
        ws.feed(Message::text(format!("m{i}")))
            .await
            .expect("feed text");
    }
    ws.flush().await.expect("flush");
    let mut echoes = 0;
    while echoes < RATE {
        match common::next_message(&mut ws).await {
            Message::Text(_) => echoes += 1,
            Message::Pong(_) => {}
            other => panic!("expected echoes and pongs, got {other:?}"),
        }
    }
}

#[tokio::test]
async fn a_rooms_connection_is_held_to_the_rate_too() {
    let server = start().await;
    let (mut ws, _) = connect_rooms(server.addr).await;
    join(&mut ws, "lobby", "ada").await;
    // The join was one message; a burst of a bucket and more follows.
    for i in 0..RATE + 10 {
        let publish = ClientMessage::Publish {
            room: "lobby".into(),
            text: format!("m{i}"),
        };
        let json = serde_json::to_string(&publish).expect("serialise");
        if ws.feed(Message::text(json)).await.is_err() {
            break;
        }
    }
    let _ = ws.flush().await;
    let deadline = Instant::now() + common::WAIT;
    loop {
        assert!(Instant::now() < deadline, "not closed in time");
        match common::next_message(&mut ws).await {
            Message::Close(Some(frame)) => {
                assert_eq!(u16::from(frame.code), 1008);
                assert_eq!(frame.reason.as_str(), "message rate limit exceeded");
                break;
            }
            Message::Close(None) => panic!("closed without a code"),
            _ => {}
        }
    }
    // A member under the rate in the same room is fine.
    let (mut calm, _) = connect_rooms(server.addr).await;
    join(&mut calm, "lobby", "bob").await;
    let publish = ClientMessage::Publish {
        room: "lobby".into(),
        text: "hello".into(),
    };
    send_client(&mut calm, &publish).await;
    match common::rooms::next_server(&mut calm).await {
        duplex_protocol::ServerMessage::Message { text, .. } => assert_eq!(text, "hello"),
        other => panic!("expected the message, got {other:?}"),
    }
}
