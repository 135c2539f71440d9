//! The opening handshake from the client's side (RFC 6455 §4.1): the
//! request, and the checks on the server's answer.

use tokio_tungstenite::tungstenite::handshake::derive_accept_key;

use crate::error::ClientError;
use crate::target::Target;

/// Longest response head accepted; a server answering with more is broken.
pub const MAX_RESPONSE_HEAD: usize = 8 * 1024;

/// The upgrade request for `target` with the client key `key`.
#[must_use]
pub fn request(target: &Target, key: &str) -> String {
    format!(
        "GET {path} HTTP/1.1\r\n\
         Host: {host}\r\n\
         Upgrade: websocket\r\n\
         Connection: Upgrade\r\n\
         Sec-WebSocket-Key: {key}\r\n\
         Sec-WebSocket-Version: 13\r\n\
         \r\n",
        path = target.path,
        host = target.host_header(),
    )
}

/// Checks the response head at the start of `buf`.
///
/// Returns `Ok(None)` while the head is incomplete, and `Ok(Some(len))`
/// with the length of the head once it is complete and accepts the upgrade;
/// bytes after it are already WebSocket frames.
///
/// # Errors
/// [`ClientError::HandshakeStatus`] for any status but 101, and
/// [`ClientError::Handshake`] for a 101 that misses a required header or
/// carries the wrong accept key.
pub fn parse_response(buf: &[u8], key: &str) -> Result<Option<usize>, ClientError> {
    let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
        if buf.len() > MAX_RESPONSE_HEAD {
            return Err(ClientError::Handshake("response head too long"));
        }
        return Ok(None);
    };
    let head = std::str::from_utf8(&buf[..end])
        .map_err(|_| ClientError::Handshake("response head is not UTF-8"))?;
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let mut parts = status_line.splitn(3, ' ');
    if !parts.next().is_some_and(|v| v.starts_with("HTTP/1.")) {
        return Err(ClientError::Handshake("no HTTP/1.x status line"));
    }
    let status: u16 = parts
        .next()
        .and_then(|code| code.parse().ok())
        .ok_or(ClientError::Handshake("unreadable status code"))?;
    if status != 101 {
        return Err(ClientError::HandshakeStatus { status });
    }
    let (mut upgrade, mut connection, mut accept) = (false, false, None);
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            return Err(ClientError::Handshake("malformed header line"));
        };
        let value = value.trim();
        if name.eq_ignore_ascii_case("upgrade") {
            upgrade = value.eq_ignore_ascii_case("websocket");
        } else if name.eq_ignore_ascii_case("connection") {
            connection = value
                .split(',')
                .any(|token| token.trim().eq_ignore_ascii_case("upgrade"));
        } else if name.eq_ignore_ascii_case("sec-websocket-accept") {
            accept = Some(value);
        }
    }
    if !upgrade {
        return Err(ClientError::Handshake("missing Upgrade: websocket"));
    }
    if !connection {
        return Err(ClientError::Handshake("missing Connection: upgrade"));
    }
    if accept != Some(derive_accept_key(key.as_bytes()).as_str()) {
        return Err(ClientError::Handshake("wrong Sec-WebSocket-Accept"));
    }
    Ok(Some(end + 4))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The key and accept value from RFC 6455 §1.3.
    const KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";
    const ACCEPT: &str = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=";

    fn ok_response() -> String {
        format!(
            "HTTP/1.1 101 Switching Protocols\r\nupgrade: WebSocket\r\n\
             Connection: keep-alive, Upgrade\r\nSec-WebSocket-Accept: {ACCEPT}\r\n\r\n"
        )
    }

    #[test]
    fn request_names_path_host_and_key() {
        let target = "ws://127.0.0.1:9/echo".parse().expect("valid");
        let text = request(&target, KEY);
        assert!(text.starts_with("GET /echo HTTP/1.1\r\nHost: 127.0.0.1:9\r\n"));
        assert!(text.contains(&format!("Sec-WebSocket-Key: {KEY}\r\n")));
        assert!(text.ends_with("\r\n\r\n"));
    }

    #[test]
    fn accepting_response_returns_head_length() {
        let mut bytes = ok_response().into_bytes();
        let head = bytes.len();
        bytes.extend_from_slice(&[0x82, 0x00]);
        assert_eq!(parse_response(&bytes, KEY).expect("valid"), Some(head));
    }

    #[test]
    fn incomplete_head_asks_for_more() {
        let bytes = ok_response().into_bytes();
        let cut = &bytes[..bytes.len() - 1];
        assert_eq!(parse_response(cut, KEY).expect("no error yet"), None);
    }

    #[test]
    fn refusals_and_bad_answers_are_errors() {
        let busy = b"HTTP/1.1 503 Service Unavailable\r\nRetry-After: 1\r\n\r\n";
        assert!(matches!(
            parse_response(busy, KEY),
            Err(ClientError::HandshakeStatus { status: 503 })
        ));
        let wrong_key = ok_response().replace(ACCEPT, "AAAA");
        assert!(matches!(
            parse_response(wrong_key.as_bytes(), KEY),
            Err(ClientError::Handshake(_))
        ));
        let no_upgrade = ok_response().replace("upgrade: WebSocket\r\n", "");
        assert!(matches!(
            parse_response(no_upgrade.as_bytes(), KEY),
            Err(ClientError::Handshake(_))
        ));
        let endless = vec![b'x'; MAX_RESPONSE_HEAD + 1];
        assert!(parse_response(&endless, KEY).is_err());
    }
}
