//! TLS on the listener (`--tls-cert`, `--tls-key`): wss:// echo and rooms
//! byte-exact, https:// for plain routes, a clean answer to a plain client
//! on the TLS port, and a SIGHUP reload that new connections see while an
//! open one keeps echoing. Certificates are made at test time (rcgen); the
//! client is rustls trusting only the test certificate.

use crate::common;

use std::time::Duration;

use crate::common::process::Binary;
use crate::common::tls::{TestCert, https_get, presented, try_tls, wss};
use crate::common::{TestServer, WAIT, bytes, text};
use duplex_protocol::{ClientMessage, ServerMessage};
use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::time::{Instant, timeout};
use tokio_tungstenite::tungstenite::Message;

fn tls_config(cert: &TestCert) -> duplex_server::Config {
    let mut config = common::config();
    config.tls_cert = Some(cert.cert.clone());
    config.tls_key = Some(cert.key.clone());
    config
}

async fn next<S>(ws: &mut tokio_tungstenite::WebSocketStream<S>) -> Message
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    loop {
        match timeout(WAIT, ws.next()).await {
            Err(_) => panic!("no message within {WAIT:?}"),
            Ok(None) => panic!("the connection ended"),
            Ok(Some(Err(error))) => panic!("read failed: {error}"),
            Ok(Some(Ok(Message::Ping(_) | Message::Pong(_)))) => continue,
            Ok(Some(Ok(message))) => return message,
        }
    }
}

#[tokio::test]
async fn wss_echo_is_byte_exact_small_large_and_pipelined() {
    let cert = TestCert::new("echo");
    let server = TestServer::start(tls_config(&cert)).await;
    let roots = [cert.der.clone()];
    for path in ["/", "/echo"] {
        let mut ws = wss(server.addr, path, &roots).await;
        let messages = [
            Message::text(""),
            Message::text(text(20, 1)),
            Message::binary(bytes(16 * 1024, 2)),
            // Larger than rustls's buffers and the socket's: the write path
            // must flush what TLS holds, in order.
            Message::binary(bytes(4 << 20, 3)),
            Message::text(text(100_000, 4)),
        ];
        for message in &messages {
            ws.send(message.clone()).await.expect("send");
            assert_eq!(&next(&mut ws).await, message, "{path}");
        }
        // 200 messages sent before any is read: replies batch and flush.
        let sent: Vec<Message> = (0..200)
            .map(|i| Message::binary(bytes(1 + i * 37, i as u64)))
            .collect();
        for message in &sent {
            ws.feed(message.clone()).await.expect("feed");
        }
        ws.flush().await.expect("flush");
        for message in &sent {
            assert_eq!(&next(&mut ws).await, message);
        }
        ws.close(None).await.expect("close");
    }
}

/// Reads exactly `len` bytes in small pieces with pauses: a reader slow
/// enough that the server's socket fills up and TLS holds encrypted bytes
/// the socket did not take, to be written when it drains.
async fn read_slowly<S: tokio::io::AsyncRead + Unpin>(stream: &mut S, len: usize) -> Vec<u8> {
    let mut got = Vec::with_capacity(len);
    let mut piece = vec![0u8; 8 * 1024];
    let deadline = Instant::now() + 4 * WAIT;
    while got.len() < len {
        let want = piece.len().min(len - got.len());
        let n = timeout(WAIT, stream.read(&mut piece[..want]))
            .await
            .unwrap_or_else(|_| panic!("stalled after {} of {len} bytes", got.len()))
            .expect("read");
        assert!(
            n > 0,
            "the connection ended after {} of {len} bytes",
            got.len()
        );
        got.extend_from_slice(&piece[..n]);
        assert!(Instant::now() < deadline, "too slow");
        tokio::time::sleep(Duration::from_micros(300)).await;
    }
    got
}

#[tokio::test]
async fn a_slow_reader_gets_every_byte_of_large_replies() {
    let cert = TestCert::new("slow");
    let server = TestServer::start(tls_config(&cert)).await;
    let mut stream = common::tls::tls(server.addr, std::slice::from_ref(&cert.der)).await;
    let request = common::upgrade_request(server.addr, "/echo");
    stream.write_all(&request).await.expect("upgrade");
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        let mut byte = [0u8; 1];
        stream.read_exact(&mut byte).await.expect("101");
        head.push(byte[0]);
    }
    assert!(
        head.starts_with(b"HTTP/1.1 101"),
        "{}",
        String::from_utf8_lossy(&head)
    );
    // Larger than both kernel buffers together (loopback autotunes them to
    // a few MiB), so the server writes against a full socket for a while.
    for (i, len) in [6 << 20, 200_000].into_iter().enumerate() {
        let payload = bytes(len, i as u64);
        let frame = common::encode(true, 0, common::op::BINARY, &payload, Some([1, 2, 3, 4]));
        stream.write_all(&frame).await.expect("send");
        let expected = common::encode(true, 0, common::op::BINARY, &payload, None);
        let got = read_slowly(&mut stream, expected.len()).await;
        assert!(got == expected, "reply {i} ({len} bytes) differs");
    }
}

#[tokio::test]
async fn rooms_over_wss_deliver_to_every_member_in_order() {
    let cert = TestCert::new("rooms");
    let server = TestServer::start(tls_config(&cert)).await;
    let roots = [cert.der.clone()];
    let mut members = Vec::new();
    for name in ["ann", "bob", "cy"] {
        let mut ws = wss(server.addr, "/ws", &roots).await;
        let hello = next(&mut ws).await;
        assert!(
            hello.to_text().expect("text").contains("\"welcome\""),
            "{hello:?}"
        );
        let join = ClientMessage::Join {
            room: "lobby".into(),
            name: name.into(),
            since: None,
        };
        ws.send(Message::text(serde_json::to_string(&join).expect("json")))
            .await
            .expect("join");
        // Until `joined`: presence of the earlier members comes after it.
        loop {
            let text = next(&mut ws).await.into_text().expect("text");
            if let Ok(ServerMessage::Joined { .. }) = serde_json::from_str(&text) {
                break;
            }
        }
        members.push(ws);
    }
    let big = "x".repeat(256 * 1024);
    let bodies: Vec<String> = (0..50)
        .map(|i| {
            if i % 10 == 9 {
                big.clone()
            } else {
                format!("message {i}")
            }
        })
        .collect();
    for body in &bodies {
        let publish = ClientMessage::Publish {
            room: "lobby".into(),
            text: body.clone(),
        };
        members[0]
            .send(Message::text(
                serde_json::to_string(&publish).expect("json"),
            ))
            .await
            .expect("publish");
    }
    for ws in &mut members {
        let mut got = Vec::new();
        while got.len() < bodies.len() {
            let text = next(ws).await.into_text().expect("text");
            if let Ok(ServerMessage::Message { text, .. }) = serde_json::from_str(&text) {
                got.push(text);
            }
        }
        assert_eq!(got, bodies, "every message, in order, byte-exact");
    }
}

#[tokio::test]
async fn https_serves_healthz_and_metrics() {
    let cert = TestCert::new("health");
    let server = TestServer::start(tls_config(&cert)).await;
    let response = https_get(server.addr, "/healthz", std::slice::from_ref(&cert.der)).await;
    assert_eq!(response.status, 200, "{}", response.head);
    let health: serde_json::Value = serde_json::from_slice(&response.body).expect("json");
    assert_eq!(health["status"], "ok");
    let response = https_get(server.addr, "/metrics", std::slice::from_ref(&cert.der)).await;
    assert_eq!(response.status, 200, "{}", response.head);
    let metrics = common::metrics::Metrics::parse(&response.body_text());
    assert_eq!(
        metrics.value("duplex_connections_open", &[("service", "echo")]),
        0.0
    );
}

#[tokio::test]
async fn a_plain_client_on_the_tls_port_gets_400_and_tls_clients_are_undisturbed() {
    let cert = TestCert::new("plain");
    let server = TestServer::start(tls_config(&cert)).await;
    let roots = [cert.der.clone()];
    // A TLS client mid-conversation while plain clients knock.
    let mut ws = wss(server.addr, "/echo", &roots).await;
    ws.send(Message::text("before")).await.expect("send");
    assert_eq!(next(&mut ws).await, Message::text("before"));

    // A plain WebSocket handshake.
    let response = common::http(server.addr, &common::upgrade_request(server.addr, "/echo")).await;
    assert_eq!(response.status, 400, "{}", response.head);
    assert!(
        response.body_text().contains("TLS"),
        "{}",
        response.body_text()
    );
    // tokio-tungstenite's own ws:// client: a clean handshake error.
    let error = common::try_connect(server.addr, "/echo", None)
        .await
        .expect_err("ws:// on a TLS port");
    assert!(error.to_string().contains("400"), "{error}");
    // Not HTTP at all: the connection is closed, nothing else.
    let mut tcp = common::tcp(server.addr).await;
    tcp.write_all(&[0u8; 64]).await.expect("write");
    let mut rest = Vec::new();
    timeout(WAIT, tcp.read_to_end(&mut rest))
        .await
        .expect("closed within the wait")
        .ok();
    // A TLS client that gives up mid-handshake.
    let mut tcp = common::tcp(server.addr).await;
    tcp.write_all(&[0x16, 0x03, 0x01, 0x00, 0x40, 0x01])
        .await
        .expect("write");
    drop(tcp);

    ws.send(Message::text("after")).await.expect("send");
    assert_eq!(next(&mut ws).await, Message::text("after"));
    let health = https_get(server.addr, "/healthz", &roots).await;
    assert_eq!(health.status, 200);
}

#[tokio::test]
async fn a_client_that_does_not_trust_the_certificate_fails_the_handshake() {
    let cert = TestCert::new("untrusted");
    let stranger = TestCert::new("stranger");
    let server = TestServer::start(tls_config(&cert)).await;
    let error = try_tls(server.addr, std::slice::from_ref(&stranger.der))
        .await
        .expect_err("an unknown issuer");
    assert!(
        error.to_string().to_lowercase().contains("certificate"),
        "{error}"
    );
}

#[tokio::test]
async fn a_bad_certificate_at_start_stops_the_server_with_the_file_named() {
    let cert = TestCert::new("bad-start");
    std::fs::write(&cert.cert, "not PEM").expect("write");
    let mut server = TestServer::start(tls_config(&cert)).await;
    let error = server.finished(WAIT).await.expect_err("cannot serve");
    let chain = format!("{:?}", anyhow_chain(&error));
    assert!(chain.contains("cert.pem"), "{chain}");

    let mut half = common::config();
    half.tls_cert = Some(cert.cert.clone());
    assert!(half.validate().is_err(), "a certificate without its key");
}

fn anyhow_chain(error: &dyn std::error::Error) -> Vec<String> {
    let mut chain = vec![error.to_string()];
    let mut source = error.source();
    while let Some(next) = source {
        chain.push(next.to_string());
        source = next.source();
    }
    chain
}

fn hangup(server: &Binary) {
    let pid = server.child.id().expect("pid");
    let status = std::process::Command::new("kill")
        .args(["-HUP", &pid.to_string()])
        .status()
        .expect("kill -HUP");
    assert!(status.success());
}

#[tokio::test]
async fn sighup_reloads_the_certificate_for_new_connections_while_open_ones_echo_on() {
    let cert = TestCert::new("reload");
    let args = cert.args();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let server = Binary::start(&args, "info").await;
    let first = cert.der.clone();
    assert_eq!(
        presented(server.addr, std::slice::from_ref(&first)).await,
        first
    );
    let mut open = wss(server.addr, "/echo", std::slice::from_ref(&first)).await;

    let second = cert.renew();
    hangup(&server);
    // The reload is asynchronous to the signal: wait for it, bounded.
    let deadline = Instant::now() + WAIT;
    let both = [first.clone(), second.clone()];
    loop {
        if presented(server.addr, &both).await == second {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the new certificate was never presented"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // The connection opened before the reload still echoes.
    for i in 0..20 {
        let message = Message::binary(bytes(1000 + i, i as u64));
        open.send(message.clone()).await.expect("send");
        assert_eq!(next(&mut open).await, message);
    }
    assert_eq!(server.logged("TLS certificate reloaded"), 1);

    // A broken file: logged, the second certificate kept.
    std::fs::write(&cert.cert, "garbage").expect("write");
    hangup(&server);
    let deadline = Instant::now() + WAIT;
    while server.logged("not reloaded") == 0 {
        assert!(
            Instant::now() < deadline,
            "the failed reload was not logged"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(presented(server.addr, &both).await, second);
    open.send(Message::text("still here")).await.expect("send");
    assert_eq!(next(&mut open).await, Message::text("still here"));
}

#[tokio::test]
async fn sighup_without_tls_is_logged_and_harmless() {
    let server = Binary::start(&[], "info").await;
    let mut ws = common::connect(server.addr, "/echo").await;
    hangup(&server);
    let deadline = Instant::now() + WAIT;
    while server.logged("SIGHUP ignored") == 0 {
        assert!(Instant::now() < deadline, "SIGHUP was not logged");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    common::assert_echo(&mut ws, Message::text("alive")).await;
    let again = common::connect(server.addr, "/echo").await;
    drop(again);
}
