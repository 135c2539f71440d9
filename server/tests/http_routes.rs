//! HTTP before the upgrade: `GET /healthz` answers JSON with the live
//! open-connection count; plain requests to the WebSocket endpoints get 426
//! with an explanation; unknown paths 404; malformed requests 400; broken
//! handshakes the status that names the problem.

use crate::common;

use crate::common::{TestServer, config, connect, get, http, wait_for_connections};

#[tokio::test]
async fn healthz_reports_status_version_uptime_and_counts() {
    let server = TestServer::start(config()).await;
    let response = get(server.addr, "/healthz").await;
    assert_eq!(response.status, 200);
    assert_eq!(response.header("content-type"), Some("application/json"));
    assert_eq!(response.header("cache-control"), Some("no-store"));
    let health: serde_json::Value =
        serde_json::from_slice(&response.body).expect("healthz body is JSON");
    let object = health.as_object().expect("healthz body is a JSON object");
    let mut keys: Vec<&str> = object.keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        [
            "connections",
            "connections_total",
            "status",
            "uptime_secs",
            "version"
        ]
    );
    assert_eq!(health["status"], "ok");
    assert_eq!(health["version"], env!("CARGO_PKG_VERSION"));
    assert!(health["uptime_secs"].is_u64(), "uptime_secs: {health}");
    assert_eq!(health["connections"], 0);
    assert_eq!(health["connections_total"], 0);
}

#[tokio::test]
async fn healthz_counts_open_websocket_connections() {
    let server = TestServer::start(config()).await;
    let mut first = connect(server.addr, "/").await;
    let _second = connect(server.addr, "/echo").await;
    wait_for_connections(server.addr, 2, common::WAIT).await;
    // Plain HTTP requests (these healthz polls) are not counted.
    assert_eq!(common::health(server.addr).await["connections_total"], 2);

    common::close(&mut first).await;
    wait_for_connections(server.addr, 1, common::WAIT).await;
    let health = common::health(server.addr).await;
    assert_eq!(health["connections"], 1);
    assert_eq!(health["connections_total"], 2, "the total never goes down");
}

#[tokio::test]
async fn head_and_wrong_method_on_healthz() {
    let server = TestServer::start(config()).await;
    let head = http(
        server.addr,
        format!(
            "HEAD /healthz HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
            server.addr
        )
        .as_bytes(),
    )
    .await;
    assert_eq!(head.status, 200);
    assert!(head.body.is_empty(), "HEAD must have no body");

    let post = http(
        server.addr,
        format!(
            "POST /healthz HTTP/1.1\r\nHost: {}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            server.addr
        )
        .as_bytes(),
    )
    .await;
    assert_eq!(post.status, 405);
    assert_eq!(post.header("allow"), Some("GET, HEAD"));
}

#[tokio::test]
async fn plain_get_on_websocket_paths_gets_426_with_a_body() {
    let server = TestServer::start(config()).await;
    for path in ["/", "/echo"] {
        let response = get(server.addr, path).await;
        assert_eq!(response.status, 426, "GET {path}: {}", response.head);
        assert_eq!(response.header("upgrade"), Some("websocket"));
        assert_eq!(response.header("sec-websocket-version"), Some("13"));
        let body = response.body_text();
        assert!(
            body.contains("WebSocket") && body.contains("/echo"),
            "the 426 body should say how to connect, got {body:?}"
        );
    }
}

#[tokio::test]
async fn unknown_paths_get_404() {
    let server = TestServer::start(config()).await;
    for path in [
        "/nope",
        "/echo/",
        "/echo/more",
        "/healthz/",
        "/ECHO",
        // The API's prefix is taken once, not as often as it repeats.
        "/api//api/rooms",
        "/api/api/rooms",
        "/api/rooms/",
        "/api//rooms",
        "/api/",
        "/api",
        "/wss",
        "/ws/",
    ] {
        let response = get(server.addr, path).await;
        assert_eq!(response.status, 404, "GET {path}: {}", response.head);
    }
    // A WebSocket upgrade to an unknown path is a 404 too, not a 101.
    let request = String::from_utf8(common::upgrade_request(server.addr, "/chat"))
        .expect("ASCII request")
        .replace("\r\n\r\n", "\r\nConnection: close\r\n\r\n");
    let response = http(server.addr, request.as_bytes()).await;
    assert_eq!(response.status, 404, "{}", response.head);
}

#[tokio::test]
async fn garbage_request_bytes_get_400() {
    let server = TestServer::start(config()).await;
    let cases: [&[u8]; 3] = [
        b"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03\r\n\r\n", // a TLS ClientHello
        b"GET / HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n",
        b"GET /\x7f\x01 HTTP/1.1\r\nHost: x\r\n\r\n",
    ];
    for request in cases {
        let response = http(server.addr, request).await;
        assert_eq!(
            response.status,
            400,
            "for {:?}: {}",
            String::from_utf8_lossy(request),
            response.head
        );
    }
}

#[tokio::test]
async fn broken_handshakes_get_the_status_that_names_the_problem() {
    let server = TestServer::start(config()).await;
    let addr = server.addr;
    let upgrade = |method: &str, version: &str, extra: &str| {
        format!(
            "{method} /echo {version}\r\nHost: {addr}\r\nUpgrade: websocket\r\n\
             Connection: Upgrade, close\r\n{extra}Content-Length: 0\r\n\r\n"
        )
    };
    let key = format!("Sec-WebSocket-Key: {}\r\n", common::KEY);
    let cases = [
        (
            "unsupported version",
            upgrade(
                "GET",
                "HTTP/1.1",
                &format!("{key}Sec-WebSocket-Version: 8\r\n"),
            ),
            426,
        ),
        (
            "missing key",
            upgrade("GET", "HTTP/1.1", "Sec-WebSocket-Version: 13\r\n"),
            400,
        ),
        (
            "malformed key",
            upgrade(
                "GET",
                "HTTP/1.1",
                "Sec-WebSocket-Key: short\r\nSec-WebSocket-Version: 13\r\n",
            ),
            400,
        ),
        (
            "POST",
            upgrade(
                "POST",
                "HTTP/1.1",
                &format!("{key}Sec-WebSocket-Version: 13\r\n"),
            ),
            405,
        ),
    ];
    for (name, request, status) in cases {
        let response = http(addr, request.as_bytes()).await;
        assert_eq!(response.status, status, "{name}: {}", response.head);
    }
    // None of them opened a connection.
    assert_eq!(common::open_connections(addr).await, 0);
}
