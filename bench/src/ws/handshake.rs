//! The opening handshake from the client's side (RFC 6455 §4.1): the
//! request, and the checks on the server's answer, including its answer to
//! a permessage-deflate offer (RFC 7692 §5, §7.1).

use duplex_protocol::deflate::{EXTENSION, MAX_WINDOW_BITS};
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;

use crate::error::ClientError;
use crate::target::Target;

/// Longest response head accepted; a server answering with more is broken.
pub const MAX_RESPONSE_HEAD: usize = 8 * 1024;

/// The offer `--deflate` sends: what Chromium sends.
pub const DEFLATE_OFFER: &str = "permessage-deflate; client_max_window_bits";

/// The upgrade request for `target` with the client key `key`, offering
/// permessage-deflate ([`DEFLATE_OFFER`]) if `deflate`.
#[must_use]
pub fn request(target: &Target, key: &str, deflate: bool) -> String {
    let extensions = if deflate {
        format!("Sec-WebSocket-Extensions: {DEFLATE_OFFER}\r\n")
    } else {
        String::new()
    };
    format!(
        "GET {path} HTTP/1.1\r\n\
         Host: {host}\r\n\
         Upgrade: websocket\r\n\
         Connection: Upgrade\r\n\
         Sec-WebSocket-Key: {key}\r\n\
         Sec-WebSocket-Version: 13\r\n\
         {extensions}\
         \r\n",
        path = target.path,
        host = target.host_header(),
    )
}

/// A 101 that accepted the upgrade.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Accepted {
    /// Length of the response head; bytes after it are already frames.
    pub head_len: usize,
    /// The permessage-deflate terms, when it was offered and accepted.
    pub deflate: Option<DeflateTerms>,
}

/// What the server's answer to the permessage-deflate offer binds the
/// client to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeflateTerms {
    /// The largest window the client may compress with
    /// (`client_max_window_bits=N`; 15 when the answer names none).
    pub client_window_bits: u8,
}

/// Checks the response head at the start of `buf`; `deflate` says whether
/// the request offered permessage-deflate.
///
/// Returns `Ok(None)` while the head is incomplete, and `Ok(Some(_))` once
/// it is complete and accepts the upgrade.
///
/// # Errors
/// [`ClientError::HandshakeStatus`] for any status but 101, and
/// [`ClientError::Handshake`] for a 101 that misses a required header,
/// carries the wrong accept key, declines a deflate offer, or answers with
/// an extension or parameters that were not offered.
pub fn parse_response(
    buf: &[u8],
    key: &str,
    deflate: bool,
) -> Result<Option<Accepted>, ClientError> {
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
    let mut extensions = Vec::new();
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
        } else if name.eq_ignore_ascii_case("sec-websocket-extensions") {
            extensions.extend(value.split(',').map(str::trim).filter(|e| !e.is_empty()));
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
    let deflate = match (deflate, extensions.as_slice()) {
        (_, []) if deflate => {
            return Err(ClientError::Handshake(
                "the server declined permessage-deflate (no Sec-WebSocket-Extensions in its 101)",
            ));
        }
        (_, []) => None,
        (true, [answer]) => Some(deflate_terms(answer)?),
        (true, _) => {
            return Err(ClientError::Handshake(
                "more than one extension in the answer to one offer",
            ));
        }
        (false, _) => {
            return Err(ClientError::Handshake(
                "an extension in the answer that was not offered",
            ));
        }
    };
    Ok(Some(Accepted {
        head_len: end + 4,
        deflate,
    }))
}

/// The terms of a permessage-deflate answer (RFC 7692 §7.1). The client
/// inflates every message on its own (it resets its inflater after each),
/// so it needs `server_no_context_takeover`; it compresses each message on
/// its own anyway, so `client_no_context_takeover` costs it nothing.
fn deflate_terms(answer: &str) -> Result<DeflateTerms, ClientError> {
    let mut params = answer.split(';').map(str::trim);
    if !params
        .next()
        .is_some_and(|name| name.eq_ignore_ascii_case(EXTENSION))
    {
        return Err(ClientError::Handshake(
            "the answer names an extension other than permessage-deflate",
        ));
    }
    let mut terms = DeflateTerms {
        client_window_bits: MAX_WINDOW_BITS,
    };
    let mut server_no_context_takeover = false;
    for param in params {
        let (name, value) = match param.split_once('=') {
            Some((name, value)) => (name.trim(), Some(value.trim().trim_matches('"'))),
            None => (param, None),
        };
        let bits = || {
            value
                .filter(|v| !v.starts_with('0'))
                .and_then(|v| v.parse::<u8>().ok())
                .filter(|bits| (8..=15).contains(bits))
                .ok_or(ClientError::Handshake(
                    "window bits in the deflate answer are not 8 to 15",
                ))
        };
        match name.to_ascii_lowercase().as_str() {
            "server_no_context_takeover" if value.is_none() => server_no_context_takeover = true,
            "client_no_context_takeover" if value.is_none() => {}
            "server_max_window_bits" => {
                // duplex-bench inflates with the largest window: any is fine.
                bits()?;
            }
            "client_max_window_bits" => terms.client_window_bits = bits()?,
            _ => {
                return Err(ClientError::Handshake(
                    "a parameter in the deflate answer that was not offered",
                ));
            }
        }
    }
    if !server_no_context_takeover {
        return Err(ClientError::Handshake(
            "the server keeps its deflate context between messages (no \
             server_no_context_takeover): duplex-bench inflates each message on its own",
        ));
    }
    Ok(terms)
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
        let text = request(&target, KEY, false);
        assert!(!text.contains("Extensions"));
        assert!(text.starts_with("GET /echo HTTP/1.1\r\nHost: 127.0.0.1:9\r\n"));
        assert!(text.contains(&format!("Sec-WebSocket-Key: {KEY}\r\n")));
        assert!(text.ends_with("\r\n\r\n"));
    }

    #[test]
    fn accepting_response_returns_head_length() {
        let mut bytes = ok_response().into_bytes();
        let head = bytes.len();
        bytes.extend_from_slice(&[0x82, 0x00]);
        assert_eq!(
            parse_response(&bytes, KEY, false).expect("valid"),
            Some(Accepted {
                head_len: head,
                deflate: None
            })
        );
    }

    #[test]
    fn incomplete_head_asks_for_more() {
        let bytes = ok_response().into_bytes();
        let cut = &bytes[..bytes.len() - 1];
        assert_eq!(parse_response(cut, KEY, false).expect("no error yet"), None);
    }

    #[test]
    fn refusals_and_bad_answers_are_errors() {
        let busy = b"HTTP/1.1 503 Service Unavailable\r\nRetry-After: 1\r\n\r\n";
        assert!(matches!(
            parse_response(busy, KEY, false),
            Err(ClientError::HandshakeStatus { status: 503 })
        ));
        let wrong_key = ok_response().replace(ACCEPT, "AAAA");
        assert!(matches!(
            parse_response(wrong_key.as_bytes(), KEY, false),
            Err(ClientError::Handshake(_))
        ));
        let no_upgrade = ok_response().replace("upgrade: WebSocket\r\n", "");
        assert!(matches!(
            parse_response(no_upgrade.as_bytes(), KEY, false),
            Err(ClientError::Handshake(_))
        ));
        let endless = vec![b'x'; MAX_RESPONSE_HEAD + 1];
        assert!(parse_response(&endless, KEY, false).is_err());
    }

    fn with_extensions(value: &str) -> String {
        ok_response().replace(
            "\r\n\r\n",
            &format!("\r\nSec-WebSocket-Extensions: {value}\r\n\r\n"),
        )
    }

    fn terms(value: &str) -> Result<Option<DeflateTerms>, ClientError> {
        parse_response(with_extensions(value).as_bytes(), KEY, true)
            .map(|accepted| accepted.and_then(|a| a.deflate))
    }

    #[test]
    fn a_deflate_offer_is_what_chromium_sends() {
        let target = "ws://127.0.0.1:9/".parse().expect("valid");
        let text = request(&target, KEY, true);
        assert!(
            text.contains(
                "\r\nSec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n"
            ),
            "{text}"
        );
        assert!(text.ends_with("\r\n\r\n"));
    }

    #[test]
    fn duplex_answers_are_accepted() {
        let answer = "permessage-deflate; server_no_context_takeover; client_no_context_takeover";
        assert_eq!(
            terms(answer).expect("accepted"),
            Some(DeflateTerms {
                client_window_bits: 15
            })
        );
        let windows = format!("{answer}; server_max_window_bits=10; client_max_window_bits=\"9\"");
        assert_eq!(
            terms(&windows).expect("accepted"),
            Some(DeflateTerms {
                client_window_bits: 9
            })
        );
    }

    #[test]
    fn a_declined_or_unusable_deflate_answer_fails_clearly() {
        let declined = parse_response(ok_response().as_bytes(), KEY, true);
        assert!(
            matches!(declined, Err(ClientError::Handshake(why)) if why.contains("declined")),
            "{declined:?}"
        );
        let takeover = terms("permessage-deflate; client_no_context_takeover");
        assert!(
            matches!(takeover, Err(ClientError::Handshake(why)) if why.contains("context")),
            "{takeover:?}"
        );
        for bad in [
            "x-webkit-deflate-frame",
            "permessage-deflate; server_no_context_takeover; bogus",
            "permessage-deflate; server_no_context_takeover; client_max_window_bits=16",
            "permessage-deflate; server_no_context_takeover; client_max_window_bits",
            "permessage-deflate; server_no_context_takeover, permessage-deflate",
        ] {
            assert!(terms(bad).is_err(), "{bad:?} was accepted");
        }
        // An answer to an offer that was never made.
        let unasked = with_extensions("permessage-deflate; server_no_context_takeover");
        assert!(parse_response(unasked.as_bytes(), KEY, false).is_err());
    }
}
