//! Rooms: the HTTP push API. `POST /api/rooms/{room}/messages` needs the
//! configured bearer token (401 without or with a wrong one, 403 when the
//! server has none), reaches every member as a `message` from `null`, and
//! `GET /api/rooms` lists the rooms with their member counts.

use std::net::SocketAddr;

use crate::common::rooms::{connect_rooms, join, next_text};
use crate::common::{HttpResponse, TestServer, config, get, http};
use duplex_protocol::{RoomInfo, RoomList};

const TOKEN: &str = "test-token-1234";

async fn post(addr: SocketAddr, path: &str, token: Option<&str>, body: &str) -> HttpResponse {
    let auth = token.map_or(String::new(), |t| format!("Authorization: Bearer {t}\r\n"));
    let request = format!(
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n{auth}\
         Content-Type: text/plain\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    http(addr, request.as_bytes()).await
}

#[tokio::test]
async fn a_push_with_the_token_reaches_every_member() {
    let mut config = config();
    config.push_token = Some(TOKEN.into());
    let server = TestServer::start(config).await;
    let (mut ada, _) = connect_rooms(server.addr).await;
    let (mut bob, _) = connect_rooms(server.addr).await;
    join(&mut ada, "ops", "ada").await;
    join(&mut bob, "ops", "bob").await;

    let response = post(
        server.addr,
        "/api/rooms/ops/messages",
        Some(TOKEN),
        "deploy done",
    )
    .await;
    assert_eq!(response.status, 200, "{}", response.body_text());
    let answer: serde_json::Value = serde_json::from_slice(&response.body).expect("JSON");
    assert_eq!(answer["delivered"], 2);
    for ws in [&mut ada, &mut bob] {
        assert_eq!(next_text(ws).await, (None, "deploy done".to_owned()));
    }

    let response = get(server.addr, "/api/rooms").await;
    assert_eq!(response.status, 200);
    let list: RoomList = serde_json::from_slice(&response.body).expect("room list");
    assert_eq!(
        list.rooms,
        [RoomInfo {
            room: "ops".into(),
            members: 2
        }]
    );

    let response = post(server.addr, "/api/rooms/nobody/messages", Some(TOKEN), "x").await;
    assert_eq!(response.status, 404);
}

#[tokio::test]
async fn a_push_without_the_right_token_is_refused() {
    let mut config = config();
    config.push_token = Some(TOKEN.into());
    let server = TestServer::start(config).await;
    let (mut ada, _) = connect_rooms(server.addr).await;
    join(&mut ada, "ops", "ada").await;

    for token in [None, Some("wrong"), Some("test-token-123")] {
        let response = post(server.addr, "/api/rooms/ops/messages", token, "sneaky").await;
        assert_eq!(response.status, 401, "token {token:?}");
        assert_eq!(response.header("www-authenticate"), Some("Bearer"));
    }
    // Nothing got through: the next message ada sees is the real one.
    let response = post(server.addr, "/api/rooms/ops/messages", Some(TOKEN), "real").await;
    assert_eq!(response.status, 200);
    assert_eq!(next_text(&mut ada).await.1, "real");
}

#[tokio::test]
async fn without_a_configured_token_the_push_api_is_disabled() {
    let server = TestServer::start(config()).await;
    let response = post(
        server.addr,
        "/api/rooms/ops/messages",
        Some("anything"),
        "x",
    )
    .await;
    assert_eq!(response.status, 403);
}
