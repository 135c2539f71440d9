//! Ping and pong: every ping gets a pong with exactly the same payload
//! (RFC 6455, section 5.5.3), from empty up to the 125-byte maximum, in
//! order; an unsolicited pong is ignored, not answered or echoed.

use crate::common;

use crate::common::{TestServer, config, connect, next_message};
use futures_util::SinkExt;
use tokio_tungstenite::tungstenite::{Bytes, Message};

#[tokio::test]
async fn ping_gets_pong_with_the_same_payload() {
    let server = TestServer::start(config()).await;
    let payloads: [Vec<u8>; 4] = [
        Vec::new(),
        b"are you there?".to_vec(),
        vec![0x00, 0xff, 0xc3, 0x28],
        common::bytes(125, 9),
    ];
    for path in ["/", "/echo"] {
        let mut ws = connect(server.addr, path).await;
        for payload in &payloads {
            ws.send(Message::Ping(Bytes::from(payload.clone())))
                .await
                .expect("send ping");
            match next_message(&mut ws).await {
                Message::Pong(pong) => assert_eq!(pong.as_ref(), payload.as_slice()),
                other => panic!("expected a pong, got {other:?}"),
            }
        }
    }
}

#[tokio::test]
async fn pings_in_a_row_get_pongs_in_order() {
    let server = TestServer::start(config()).await;
    let mut ws = connect(server.addr, "/echo").await;
    for i in 0..20u8 {
        ws.feed(Message::Ping(Bytes::from(vec![i; usize::from(i)])))
            .await
            .expect("queue ping");
    }
    ws.flush().await.expect("flush");
    // A pong may answer only the most recent of several pings (RFC 6455,
    // section 5.5.3), so pongs may be skipped but never reordered, and the
    // last ping is always answered.
    let mut last = None;
    for _ in 0..20 {
        match next_message(&mut ws).await {
            Message::Pong(pong) => {
                let i = pong.len();
                assert!(
                    pong.iter().all(|&b| usize::from(b) == i),
                    "pong payload corrupted: {pong:?}"
                );
                assert!(last < Some(i), "pong {i} after pong {last:?}");
                last = Some(i);
                if i == 19 {
                    return;
                }
            }
            other => panic!("expected pongs only, got {other:?}"),
        }
    }
    panic!("the last ping was never answered; last pong: {last:?}");
}

#[tokio::test]
async fn unsolicited_pong_is_ignored() {
    let server = TestServer::start(config()).await;
    let mut ws = connect(server.addr, "/echo").await;
    ws.send(Message::Pong(Bytes::from_static(b"unsolicited")))
        .await
        .expect("send pong");
    ws.send(Message::text("after the pong"))
        .await
        .expect("send text");
    // The server pings only after 10 s of silence: the next frame must be
    // the echo, not a pong or an echo of the pong.
    match next_message(&mut ws).await {
        Message::Text(text) => assert_eq!(text.as_str(), "after the pong"),
        other => panic!("expected the echo of the text, got {other:?}"),
    }
}
