//! `--allowed-origins`: an upgrade whose Origin is listed gets 101 on
//! every WebSocket path; one that is not (another host, port or scheme, a
//! trailing slash, `null`) gets 403 before the upgrade; one without
//! Origin (not a browser) gets 101; without a list every origin does.

use crate::common;

use crate::common::admission::upgrade;
use crate::common::{TestServer, http};

const ALLOWED: &str = "http://chat.example:8080";

async fn start(origins: Option<&[&str]>) -> TestServer {
    let mut config = common::config();
    config.allowed_origins = origins.map(|list| list.iter().map(|o| (*o).to_owned()).collect());
    TestServer::start(config).await
}

fn origin(value: &str) -> String {
    format!("Origin: {value}\r\n")
}

#[tokio::test]
async fn a_listed_origin_opens_every_websocket_path() {
    let server = start(Some(&["https://other.example", ALLOWED])).await;
    for path in ["/", "/echo", "/ws"] {
        let answer = upgrade(server.addr, path, &origin(ALLOWED)).await;
        assert_eq!(answer.status, 101, "{path}: {}", answer.head);
    }
}

#[tokio::test]
async fn unlisted_origins_get_403_before_the_upgrade_on_every_path() {
    let server = start(Some(&[ALLOWED])).await;
    let refused = [
        "http://evil.example:8080",
        "null",
        "http://chat.example:8081",
        "http://chat.example",
        "https://chat.example:8080",
        "http://chat.example:8080/",
        "http://CHAT.example:8080",
    ];
    for path in ["/", "/echo", "/ws"] {
        for value in refused {
            let answer = upgrade(server.addr, path, &origin(value)).await;
            assert_eq!(answer.status, 403, "{path} with {value:?}: {}", answer.head);
            assert!(
                answer.body_text().contains("origin"),
                "body: {:?}",
                answer.body_text()
            );
        }
    }
    // Two Origin lines, one of them allowed: refused, not guessed.
    let twice = format!("{}{}", origin(ALLOWED), origin("http://evil.example"));
    assert_eq!(upgrade(server.addr, "/echo", &twice).await.status, 403);
    // Nothing was counted as a connection.
    let health = common::health(server.addr).await;
    assert_eq!(health["connections_total"], 0);
}

#[tokio::test]
async fn a_request_without_origin_is_let_in() {
    let server = start(Some(&[ALLOWED])).await;
    for path in ["/", "/echo", "/ws"] {
        let answer = upgrade(server.addr, path, "").await;
        assert_eq!(answer.status, 101, "{path}: {}", answer.head);
    }
    // And a real client (which sends no Origin) talks as usual.
    let mut ws = common::connect(server.addr, "/echo").await;
    common::assert_echo(&mut ws, "hi".into()).await;
}

#[tokio::test]
async fn without_a_list_every_origin_is_let_in() {
    let server = start(None).await;
    for value in ["http://evil.example", "null", ALLOWED] {
        for path in ["/", "/echo", "/ws"] {
            let answer = upgrade(server.addr, path, &origin(value)).await;
            assert_eq!(answer.status, 101, "{path} with {value:?}: {}", answer.head);
        }
    }
}

#[tokio::test]
async fn plain_http_is_not_checked() {
    let server = start(Some(&[ALLOWED])).await;
    let request = format!(
        "GET /healthz HTTP/1.1\r\nHost: {}\r\nOrigin: http://evil.example\r\nConnection: close\r\n\r\n",
        server.addr
    );
    assert_eq!(http(server.addr, request.as_bytes()).await.status, 200);
}

#[tokio::test]
async fn an_entry_in_a_form_no_browser_sends_stops_the_start() {
    let mut config = common::config();
    config.allowed_origins = Some(vec![format!("{ALLOWED}/")]);
    let mut server = TestServer::start(config).await;
    let error = server
        .finished(common::WAIT)
        .await
        .expect_err("a trailing slash is refused at start");
    let chain = format!("{:?}", error);
    assert!(chain.contains("AllowedOrigin"), "{chain}");
}
