//! The client side of the push API, behind `duplex push`: publish one
//! message into a room of a running server over plain HTTP/1.1, with the
//! bearer token. Written against a `TcpStream` directly: one request, one
//! response, no HTTP client library needed.

use std::time::Duration;

use clap::Args;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::timeout;

/// `duplex push`: what to publish, where, and with which token.
#[derive(Debug, Clone, Args)]
#[non_exhaustive]
pub struct PushArgs {
    /// The room to publish into; it must have members.
    #[arg(long)]
    pub room: String,

    /// The running server, as http://HOST:PORT (the scheme is optional).
    #[arg(long, env = "DUPLEX_SERVER", default_value = "http://127.0.0.1:8080")]
    pub server: String,

    /// The server's --push-token (the same variable configures both).
    #[arg(long, env = "DUPLEX_PUSH_TOKEN", hide_env_values = true)]
    pub token: String,

    /// Give up after this long (connecting, sending and the answer).
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    pub timeout: Duration,

    /// The message, sent to every member as text.
    pub message: String,
}

/// Why a push did not happen.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PushError {
    /// `--server` is not `http://HOST:PORT`.
    #[error("--server {0:?} is not http://HOST:PORT (https is not supported)")]
    BadServer(String),
    /// The connection or the exchange failed.
    #[error("cannot talk to {server}")]
    Io {
        /// The server's address.
        server: String,
        /// What failed.
        #[source]
        source: std::io::Error,
    },
    /// No complete answer within `--timeout`.
    #[error("no answer from {0} in time")]
    Timeout(String),
    /// The answer is not HTTP.
    #[error("the server's answer is not an HTTP response")]
    BadResponse,
    /// The server refused the push (401: wrong token, 403: push disabled,
    /// 404: no such room, ...).
    #[error("the server answered {status}: {body}")]
    Refused {
        /// The HTTP status code.
        status: u16,
        /// The server's explanation.
        body: String,
    },
}

/// Publishes `args.message` into `args.room`; returns the server's JSON
/// answer (`{"room":…,"delivered":N}`).
///
/// # Errors
/// See [`PushError`].
pub async fn push(args: &PushArgs) -> Result<String, PushError> {
    let authority = args
        .server
        .strip_prefix("http://")
        .unwrap_or(&args.server)
        .trim_end_matches('/');
    if authority.is_empty() || authority.contains(['/', ' ']) || args.server.starts_with("https:") {
        return Err(PushError::BadServer(args.server.clone()));
    }
    let io = |source| PushError::Io {
        server: authority.to_owned(),
        source,
    };
    let request = format!(
        "POST /api/rooms/{}/messages HTTP/1.1\r\nHost: {authority}\r\nConnection: close\r\n\
         Authorization: Bearer {}\r\nContent-Type: text/plain; charset=utf-8\r\n\
         Content-Length: {}\r\n\r\n",
        percent_encode(&args.room),
        args.token,
        args.message.len()
    );
    let exchange = async {
        let mut tcp = TcpStream::connect(authority).await.map_err(io)?;
        tcp.write_all(request.as_bytes()).await.map_err(io)?;
        tcp.write_all(args.message.as_bytes()).await.map_err(io)?;
        let mut raw = Vec::new();
        tcp.read_to_end(&mut raw).await.map_err(io)?;
        Ok::<_, PushError>(raw)
    };
    let raw = timeout(args.timeout, exchange)
        .await
        .map_err(|_| PushError::Timeout(authority.to_owned()))??;
    let text = String::from_utf8_lossy(&raw);
    let (head, body) = text.split_once("\r\n\r\n").ok_or(PushError::BadResponse)?;
    let status: u16 = head
        .strip_prefix("HTTP/1.1 ")
        .and_then(|rest| rest.get(..3))
        .and_then(|code| code.parse().ok())
        .ok_or(PushError::BadResponse)?;
    let body = body.trim().to_owned();
    if status == 200 {
        Ok(body)
    } else {
        Err(PushError::Refused { status, body })
    }
}

/// Escapes a room name for a path segment: everything but RFC 3986's
/// unreserved characters.
fn percent_encode(segment: &str) -> String {
    let mut out = String::with_capacity(segment.len());
    for byte in segment.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn room_names_are_escaped_for_the_path() {
        assert_eq!(percent_encode("lobby"), "lobby");
        assert_eq!(percent_encode("a b/é"), "a%20b%2F%C3%A9");
    }
}
