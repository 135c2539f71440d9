//! Rooms: one order per room. Messages published at the same time by
//! different members (on different worker threads) reach every member of
//! the room in the same order, so two people who chat at once see the same
//! conversation. The room is larger than one delivery chunk, so a publish
//! reaches its members in more than one step.

use crate::common::rooms::{joined_clients, publish};
use crate::common::{TestServer, WAIT, config};
use duplex_protocol::ServerMessage;
use futures_util::StreamExt;
use tokio::time::timeout;
use tokio_tungstenite::tungstenite::Message;

const RECEIVERS: usize = 300;
const PUBLISHERS: usize = 4;
const EACH: usize = 100;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_publishes_reach_every_member_in_one_order() {
    let mut config = config();
    // Only the messages: no presence events in between.
    config.presence_limit = 1;
    config.client_queue = PUBLISHERS * EACH;
    let server = TestServer::start(config).await;

    let receivers = joined_clients(
        server.addr,
        "order",
        (0..RECEIVERS).map(|i| format!("r{i}")),
    )
    .await;
    let publishers = joined_clients(
        server.addr,
        "order",
        (0..PUBLISHERS).map(|i| format!("p{i}")),
    )
    .await;

    let mut reading = tokio::task::JoinSet::new();
    for (i, mut ws) in receivers.into_iter().enumerate() {
        reading.spawn(async move {
            let mut seen = Vec::with_capacity(PUBLISHERS * EACH);
            while seen.len() < PUBLISHERS * EACH {
                let text = match timeout(WAIT, ws.next()).await {
                    Ok(Some(Ok(Message::Text(text)))) => text,
                    Ok(Some(Ok(_))) => continue,
                    other => panic!("receiver {i}: stream ended: {other:?}"),
                };
                match serde_json::from_str(text.as_str()) {
                    Ok(ServerMessage::Message { text, .. }) => seen.push(text),
                    Ok(other) => panic!("receiver {i}: unexpected {other:?}"),
                    Err(error) => panic!("receiver {i}: {error}: {text}"),
                }
            }
            (i, seen, ws)
        });
    }
    let mut publishing = tokio::task::JoinSet::new();
    for (p, mut ws) in publishers.into_iter().enumerate() {
        publishing.spawn(async move {
            for n in 0..EACH {
                publish(&mut ws, "order", &format!("{p}:{n}")).await;
            }
            ws
        });
    }
    // Publishers stay connected until every receiver is done (closing with
    // unread input would reset the connection and lose publishes).
    let publishers = publishing.join_all().await;

    let mut first: Option<Vec<String>> = None;
    let mut receivers = Vec::new();
    while let Some(done) = reading.join_next().await {
        let (i, seen, ws) = done.expect("receiver task");
        match &first {
            None => first = Some(seen),
            Some(order) => {
                let at = order.iter().zip(&seen).position(|(a, b)| a != b);
                assert_eq!(
                    at,
                    None,
                    "receiver {i} saw another order from message {at:?} on: {:?} vs {:?}",
                    at.map(|at| &order[at..(at + 3).min(order.len())]),
                    at.map(|at| &seen[at..(at + 3).min(seen.len())]),
                );
            }
        }
        receivers.push(ws);
    }
    // Each publisher's own order holds within the one order.
    let order = first.expect("receivers");
    for p in 0..PUBLISHERS {
        let own: Vec<&String> = order
            .iter()
            .filter(|text| text.starts_with(&format!("{p}:")))
            .collect();
        let expected: Vec<String> = (0..EACH).map(|n| format!("{p}:{n}")).collect();
        assert_eq!(own, expected.iter().collect::<Vec<_>>(), "publisher {p}");
    }
    drop((publishers, receivers));
}
