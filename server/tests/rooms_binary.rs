//! Rooms: a binary publish (header + raw payload, no base64) reaches every
//! member as a binary delivery carrying the room, the sender's id and the
//! payload byte for byte.

use crate::common;

use crate::common::next_non_control;
use crate::common::rooms::{connect_rooms, join, send};
use crate::common::{TestServer, config};
use duplex_protocol::binary;
use tokio_tungstenite::tungstenite::Message;

#[tokio::test]
async fn binary_payloads_are_delivered_byte_exact_with_the_sender() {
    let server = TestServer::start(config()).await;
    let (mut ada, ada_id) = connect_rooms(server.addr).await;
    let (mut bob, _) = connect_rooms(server.addr).await;
    join(&mut bob, "files", "bob").await;
    join(&mut ada, "files", "ada").await;
    let _ = next_non_control(&mut bob).await; // ada's member_joined

    let payload = common::bytes(70_000, 9);
    let frame = binary::encode_publish("files", &payload).expect("encode");
    send(&mut ada, Message::binary(frame)).await;
    for ws in [&mut ada, &mut bob] {
        let Message::Binary(data) = next_non_control(ws).await else {
            panic!("expected a binary delivery");
        };
        let delivery = binary::decode_delivery(&data).expect("delivery header");
        assert_eq!((delivery.room, delivery.from), ("files", ada_id));
        assert!(delivery.payload == payload.as_slice(), "payload differs");
    }
}
