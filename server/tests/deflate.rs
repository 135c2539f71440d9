//! permessage-deflate (RFC 7692) against the real server, with a client
//! that negotiates it (common::deflate): what the handshake answers to
//! each offer, byte-exact echo of compressed and plain messages in any
//! framing, what the server's compressed messages promise, the close codes
//! for every misuse, and rooms with deflate and plain members mixed.

use crate::common;

use crate::common::deflate::{
    ANSWER, CHROMIUM_OFFER, DeflateClient, RSV1, connect_offering, expect_close_code, extensions,
    frames,
};
use crate::common::rooms::{connect_rooms, join, next_server};
use crate::common::{TestServer, bytes, config, encode, op};
use duplex_protocol::ServerMessage;
use duplex_server::{Config, Deflate};

fn deflate_config() -> Config {
    let mut config = config();
    config.deflate = Deflate::On;
    config
}

/// Chat-like JSON that compresses as real traffic does (varied words, not
/// one repeated letter).
fn chat_json(len: usize) -> Vec<u8> {
    let words = [
        "hello", "room", "message", "typing", "duplex", "socket", "ok",
    ];
    let mut out = String::new();
    let mut i = 0usize;
    while out.len() < len {
        out.push_str(&format!(
            "{{\"type\":\"message\",\"room\":\"lobby\",\"from\":{},\"text\":\"{} {} {}\"}}",
            i % 97,
            words[i % 7],
            words[(i / 7) % 7],
            i
        ));
        i += 1;
    }
    out.truncate(len);
    out.into_bytes()
}

#[tokio::test]
async fn browser_offers_get_the_exact_answer_on_every_path() {
    let server = TestServer::start(deflate_config()).await;
    for path in ["/", "/echo", "/ws"] {
        for offer in [
            CHROMIUM_OFFER,       // Chromium
            "permessage-deflate", // Firefox: no client_max_window_bits at all
            "permessage-deflate; client_max_window_bits=15; client_no_context_takeover",
        ] {
            let raw = connect_offering(server.addr, path, Some(offer)).await;
            // One header line, one extension, no client_max_window_bits.
            assert_eq!(extensions(&raw.head), [ANSWER], "{path} {offer}");
        }
        let raw = connect_offering(
            server.addr,
            path,
            Some("permessage-deflate; server_max_window_bits=10; client_max_window_bits"),
        )
        .await;
        assert_eq!(
            extensions(&raw.head),
            [format!("{ANSWER}; server_max_window_bits=10")]
        );
    }
}

#[tokio::test]
async fn invalid_offers_and_deflate_off_get_no_extension_header() {
    let server = TestServer::start(deflate_config()).await;
    for offer in [
        "permessage-deflate; server_max_window_bits=16",
        "permessage-deflate; server_max_window_bits=09",
        "permessage-deflate; server_max_window_bits",
        "permessage-deflate; client_max_window_bits=7",
        "permessage-deflate; client_no_context_takeover=1",
        "permessage-deflate; server_no_context_takeover; server_no_context_takeover",
        "permessage-deflate; x-unknown",
        "x-webkit-deflate-frame",
    ] {
        let raw = connect_offering(server.addr, "/", Some(offer)).await;
        assert!(extensions(&raw.head).is_empty(), "{offer}: {}", raw.head);
    }
    // The first acceptable of several offers.
    let raw = connect_offering(
        server.addr,
        "/",
        Some("permessage-deflate; bogus, permessage-deflate; server_max_window_bits=12"),
    )
    .await;
    assert_eq!(
        extensions(&raw.head),
        [format!("{ANSWER}; server_max_window_bits=12")]
    );

    let mut off = deflate_config();
    off.deflate = Deflate::Off;
    let server = TestServer::start(off).await;
    let raw = connect_offering(server.addr, "/", Some(CHROMIUM_OFFER)).await;
    assert!(extensions(&raw.head).is_empty(), "{}", raw.head);
}

#[tokio::test]
async fn compressed_messages_echo_byte_exact() {
    let server = TestServer::start(deflate_config()).await;
    let mut client = DeflateClient::connect(server.addr, "/echo").await;
    let cases: [(&str, u8, Vec<u8>, bool); 6] = [
        ("empty", op::TEXT, Vec::new(), false),
        ("small", op::TEXT, b"hi there".to_vec(), false),
        ("16 KiB JSON", op::TEXT, chat_json(16 * 1024), true),
        ("1 MiB JSON", op::TEXT, chat_json(1 << 20), true),
        (
            "1 MiB compressible binary",
            op::BINARY,
            vec![7; 1 << 20],
            true,
        ),
        ("1 MiB random", op::BINARY, bytes(1 << 20, 5), false),
    ];
    for (name, opcode, payload, shrinks) in cases {
        client.send(opcode, &payload, true, 0, false).await;
        let echo = client.next_message().await;
        assert_eq!(echo.opcode, opcode, "{name}");
        assert!(echo.payload == payload, "{name}: echo differs");
        // Small messages are under the threshold; random bytes do not
        // shrink, so they come back as they are.
        assert_eq!(echo.compressed, shrinks, "{name}");
        if shrinks {
            assert!(
                echo.wire_len * 3 < payload.len(),
                "{name}: {}",
                echo.wire_len
            );
        }
    }
}

#[tokio::test]
async fn a_compressed_message_in_a_thousand_frames_with_a_ping_inside() {
    let server = TestServer::start(deflate_config()).await;
    let mut client = DeflateClient::connect(server.addr, "/").await;
    let payload = chat_json(1 << 20);
    let compressed = client.compress(&payload);
    let frame_size = compressed.len().div_ceil(1000);
    client
        .raw
        .send(&frames(op::TEXT, &compressed, true, frame_size, true))
        .await;
    let pong = client.raw.read_frame().await;
    assert_eq!((pong.opcode, &pong.payload[..]), (op::PONG, &b"inside"[..]));
    let echo = client.next_message().await;
    assert!(echo.payload == payload, "echo differs");
}

#[tokio::test]
async fn compressed_and_plain_messages_interleave() {
    let server = TestServer::start(deflate_config()).await;
    let mut client = DeflateClient::connect(server.addr, "/").await;
    let messages: Vec<Vec<u8>> = (0..20).map(|i| chat_json(600 + i * 300)).collect();
    for (i, message) in messages.iter().enumerate() {
        // Pipelined: compressed and plain, whole and fragmented.
        let frame_size = if i % 3 == 0 { 100 } else { 0 };
        client
            .send(op::TEXT, message, i % 2 == 0, frame_size, false)
            .await;
    }
    for message in &messages {
        let echo = client.next_message().await;
        assert!(&echo.payload == message, "echo differs");
        assert!(echo.compressed, "above the threshold and compressible");
    }
}

#[tokio::test]
async fn server_messages_use_a_fresh_context_and_the_window_asked_for() {
    let server = TestServer::start(deflate_config()).await;
    let mut raw = connect_offering(
        server.addr,
        "/",
        Some("permessage-deflate; server_max_window_bits=9"),
    )
    .await;
    assert_eq!(
        extensions(&raw.head),
        [format!("{ANSWER}; server_max_window_bits=9")]
    );
    let payload = chat_json(64 * 1024);
    let mut wire = Vec::new();
    for _ in 0..2 {
        raw.send(&frames(op::TEXT, &payload, false, 0, false)).await;
        let frame = raw.read_frame().await;
        assert!(frame.fin && frame.rsv == RSV1, "{:?}", frame.rsv);
        wire.push(frame.payload);
    }
    // No context taken over: the same message compresses to the same
    // bytes both times.
    assert_eq!(wire[0], wire[1]);
    // A decoder with a 512-byte window (9 bits) reads it.
    let mut input = wire[0].clone();
    input.extend_from_slice(&[0, 0, 0xff, 0xff]);
    let mut inflater = flate2::Decompress::new_with_window_bits(false, 9);
    let mut out = Vec::with_capacity(payload.len() + 1024);
    inflater
        .decompress_vec(&input, &mut out, flate2::FlushDecompress::Sync)
        .expect("inflates with window 9");
    assert!(out == payload, "window-9 inflate differs");
}

#[tokio::test]
async fn every_misuse_gets_its_close_code() {
    let server = TestServer::start(deflate_config()).await;
    let addr = server.addr;
    let mask = Some(common::MASK);
    let hello = {
        let mut client = DeflateClient::connect(addr, "/").await;
        client.compress(b"hello hello hello")
    };

    // Corrupt compressed data: 1007.
    let mut client = DeflateClient::connect(addr, "/").await;
    client
        .raw
        .send(&encode(true, RSV1, op::BINARY, &[0xff; 32], mask))
        .await;
    client.expect_close_code(1007).await;

    // Invalid UTF-8, compressed, in a text message: 1007.
    let mut client = DeflateClient::connect(addr, "/").await;
    client
        .send(op::TEXT, &[0xc3, 0x28, 0xff, 0xfe], true, 0, false)
        .await;
    client.expect_close_code(1007).await;

    // RSV1 on a control frame: 1002.
    let mut client = DeflateClient::connect(addr, "/").await;
    client
        .raw
        .send(&encode(true, RSV1, op::PING, b"", mask))
        .await;
    client.expect_close_code(1002).await;

    // RSV1 on a continuation: 1002.
    let mut client = DeflateClient::connect(addr, "/").await;
    let mut bytes = encode(false, RSV1, op::TEXT, &hello[..4], mask);
    bytes.extend(encode(true, RSV1, op::CONTINUATION, &hello[4..], mask));
    client.raw.send(&bytes).await;
    client.expect_close_code(1002).await;

    // RSV2 stays reserved with deflate on: 1002.
    let mut client = DeflateClient::connect(addr, "/").await;
    client
        .raw
        .send(&encode(true, RSV1 | 0b010, op::TEXT, &hello, mask))
        .await;
    client.expect_close_code(1002).await;

    // RSV1 without negotiation, and after a declined offer: 1002.
    for offer in [None, Some("permessage-deflate; x-unknown")] {
        let mut raw = connect_offering(addr, "/", offer).await;
        assert!(extensions(&raw.head).is_empty());
        raw.send(&encode(true, RSV1, op::TEXT, &hello, mask)).await;
        expect_close_code(&mut raw, 1002).await;
    }

    // The server is fine afterwards.
    let mut client = DeflateClient::connect(addr, "/").await;
    client.send(op::TEXT, b"still here", true, 0, false).await;
    assert_eq!(client.next_message().await.payload, b"still here");
}

#[tokio::test]
async fn the_message_limit_is_on_the_inflated_size() {
    let mut config = deflate_config();
    config.max_message_size = 64 * 1024;
    config.max_frame_size = 64 * 1024;
    config.max_outbound_buffer = 1 << 20;
    let server = TestServer::start(config).await;
    // Exactly the limit: accepted, in one frame and in many.
    let mut client = DeflateClient::connect(server.addr, "/").await;
    let at_limit = chat_json(64 * 1024);
    client.send(op::TEXT, &at_limit, true, 0, false).await;
    assert!(client.next_message().await.payload == at_limit);
    client.send(op::TEXT, &at_limit, true, 50, false).await;
    assert!(client.next_message().await.payload == at_limit);
    // One byte more: 1009, though it is a few KiB on the wire.
    let over = chat_json(64 * 1024 + 1);
    client.send(op::TEXT, &over, true, 0, false).await;
    client.expect_close_code(1009).await;
}

#[tokio::test]
async fn rooms_with_deflate_and_plain_members_mixed() {
    let server = TestServer::start(deflate_config()).await;
    let addr = server.addr;
    let (mut plain, _) = connect_rooms(addr).await;
    join(&mut plain, "mixed", "plain").await;
    let mut squeezed = DeflateClient::connect(addr, "/ws").await;
    let welcome = squeezed.next_message().await;
    assert!(!welcome.compressed, "a short welcome goes as it is");
    let join_json = br#"{"type":"join","room":"mixed","name":"squeezed"}"#;
    squeezed.send(op::TEXT, join_json, true, 0, false).await;
    let joined = squeezed.next_message().await;
    assert!(
        std::str::from_utf8(&joined.payload).is_ok_and(|j| j.contains("\"joined\"")),
        "{joined:?}"
    );
    match next_server(&mut plain).await {
        ServerMessage::MemberJoined { .. } => {}
        other => panic!("expected member_joined, got {other:?}"),
    }

    // Published by the deflate member, compressed: both get it, the plain
    // member uncompressed, the deflate member compressed.
    let text = String::from_utf8(chat_json(4096)).expect("ASCII");
    let publish = serde_json::json!({"type": "publish", "room": "mixed", "text": text});
    let publish = serde_json::to_vec(&publish).expect("json");
    squeezed.send(op::TEXT, &publish, true, 0, false).await;
    let got = squeezed.next_message().await;
    assert!(
        got.compressed,
        "a 4 KiB delivery is compressed for its member"
    );
    let delivered: ServerMessage = serde_json::from_slice(&got.payload).expect("json");
    let seen = next_server(&mut plain).await;
    assert_eq!(delivered, seen);
    match seen {
        ServerMessage::Message { text: body, .. } => assert_eq!(body, text),
        other => panic!("expected the message, got {other:?}"),
    }

    // Published by the plain member: the same.
    let text = String::from_utf8(chat_json(2048)).expect("ASCII");
    common::rooms::publish(&mut plain, "mixed", &text).await;
    let got = squeezed.next_message().await;
    assert!(got.compressed);
    let delivered: ServerMessage = serde_json::from_slice(&got.payload).expect("json");
    assert_eq!(delivered, next_server(&mut plain).await);
}
