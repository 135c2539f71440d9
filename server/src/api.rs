//! The HTTP API under `/api/`: list the rooms, and push a message into a
//! room from outside (`duplex push`, scripts, other services).
//!
//! - `GET /api/rooms`: every room and its member count (JSON, see
//!   `duplex_protocol::RoomList`);
//! - `POST /api/rooms/{room}/messages` with `Authorization: Bearer TOKEN`
//!   and the message as a UTF-8 body: every member gets it as a `message`
//!   whose `from` is `null`. 401 without the right token, 403 when the
//!   server has no `--push-token`, 404 when the room does not exist.

use duplex_protocol::RoomList;
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use hyper::header::{self, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use serde::Serialize;
use tracing::info;

use crate::http::{Body, json, method_not_allowed, text};
use crate::rooms;
use crate::state::AppState;

/// The answer to a request under `/api/`.
pub(crate) async fn handle(request: Request<Incoming>, shared: &AppState) -> Response<Body> {
    let path = request.uri().path().to_owned();
    // Once: `/api//api/rooms` is not `/api/rooms` (issue 10, defect 4).
    let Some(rest) = path.strip_prefix("/api/") else {
        return text(StatusCode::NOT_FOUND, "not found\n");
    };
    let segments: Vec<&str> = rest.split('/').collect();
    match segments[..] {
        ["rooms"] => {
            if request.method() != Method::GET && request.method() != Method::HEAD {
                return method_not_allowed("GET, HEAD");
            }
            json(
                StatusCode::OK,
                &RoomList {
                    rooms: shared.hub.list(),
                },
            )
        }
        ["rooms", room, "messages"] => {
            if request.method() != Method::POST {
                return method_not_allowed("POST");
            }
            let Some(room) = percent_decode(room) else {
                return text(
                    StatusCode::BAD_REQUEST,
                    "the room name is not valid UTF-8\n",
                );
            };
            push(request, &room, shared).await
        }
        _ => text(StatusCode::NOT_FOUND, "not found\n"),
    }
}

/// What a successful push answers.
#[derive(Serialize)]
struct Pushed<'a> {
    room: &'a str,
    /// Members the message was queued for.
    delivered: usize,
}

/// `POST /api/rooms/{room}/messages`.
async fn push(request: Request<Incoming>, room: &str, shared: &AppState) -> Response<Body> {
    let Some(expected) = &shared.config.push_token else {
        return text(
            StatusCode::FORBIDDEN,
            "the push API is disabled: start the server with --push-token\n",
        );
    };
    let presented = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "));
    if !presented.is_some_and(|token| same(token.trim().as_bytes(), expected.as_bytes())) {
        let mut response = text(
            StatusCode::UNAUTHORIZED,
            "missing or wrong token: send Authorization: Bearer TOKEN\n",
        );
        response
            .headers_mut()
            .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        return response;
    }
    if room.is_empty() || room.len() > shared.config.max_room_len {
        return text(StatusCode::BAD_REQUEST, "empty or too long room name\n");
    }
    let limit = shared.config.max_message_size;
    let body = match Limited::new(request.into_body(), limit).collect().await {
        Ok(body) => body.to_bytes(),
        Err(_) => {
            return text(
                StatusCode::PAYLOAD_TOO_LARGE,
                "the message is larger than --max-message-size\n",
            );
        }
    };
    let Ok(body) = String::from_utf8(body.to_vec()) else {
        return text(StatusCode::BAD_REQUEST, "the message is not UTF-8 text\n");
    };
    let post = rooms::Post {
        from: None,
        body: rooms::Body::Text(body),
    };
    match shared.hub.publish(room, post).await {
        Some(delivered) => {
            info!(room, delivered, "pushed a message");
            json(StatusCode::OK, &Pushed { room, delivered })
        }
        None => text(StatusCode::NOT_FOUND, "no such room (it has no members)\n"),
    }
}

/// Compares two tokens in time that depends only on their lengths, so the
/// answer's timing does not reveal how much of a guess was right.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Decodes `%XX` escapes of a path segment; `None` if the result is not
/// UTF-8 or an escape is malformed.
fn percent_decode(segment: &str) -> Option<String> {
    let bytes = segment.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut at = 0;
    while at < bytes.len() {
        if bytes[at] == b'%' {
            let hex = std::str::from_utf8(bytes.get(at + 1..at + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            at += 3;
        } else {
            out.push(bytes[at]);
            at += 1;
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_segments_are_percent_decoded() {
        assert_eq!(percent_decode("lobby").as_deref(), Some("lobby"));
        assert_eq!(percent_decode("a%20b%C3%A9").as_deref(), Some("a bé"));
        assert_eq!(percent_decode("%zz"), None);
        assert_eq!(percent_decode("%4"), None);
        assert_eq!(percent_decode("%ff"), None);
    }

    #[test]
    fn tokens_compare_exactly() {
        assert!(same(b"secret", b"secret"));
        assert!(!same(b"secret", b"secreT"));
        assert!(!same(b"secret", b"secret2"));
    }
}
