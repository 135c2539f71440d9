//! The `/ws` URL the rooms panel and the browser tests connect to: the
//! same server's rooms endpoint next to its echo endpoint, and, when the
//! server needs one (`--jwt-secret`), the token as `?token=`: a browser's
//! `WebSocket` cannot set an `Authorization` header (`docs/protocol.md`,
//! "Tokens").

/// The rooms endpoint of the server whose echo endpoint is `echo_url`:
/// `ws://h:1/echo` → `ws://h:1/ws`, `wss://h/` → `wss://h/ws`.
pub fn rooms_url(echo_url: &str) -> String {
    let base = echo_url.trim_end_matches('/');
    let base = base.strip_suffix("/echo").unwrap_or(base);
    format!("{base}/ws")
}

/// `url` with `token` as its `token` query parameter, percent-encoded by
/// the browser's `encodeURIComponent` (as the server decodes it); `url`
/// itself when `token` is empty.
///
/// Browser only (`js_sys`); the joining is [`with_query`], tested natively.
pub fn with_token(url: &str, token: &str) -> String {
    if token.is_empty() {
        return url.to_owned();
    }
    let encoded = String::from(js_sys::encode_uri_component(token));
    with_query(url, "token", &encoded)
}

/// `url` with `key=value` added to its query: after `?`, or after `&`
/// when it has a query already. `value` must be percent-encoded.
pub fn with_query(url: &str, key: &str, value: &str) -> String {
    let separator = match url.find('?') {
        None => "?",
        // `…?` or `…?a=b&`: nothing to separate from.
        Some(_) if url.ends_with(['?', '&']) => "",
        Some(_) => "&",
    };
    format!("{url}{separator}{key}={value}")
}

#[cfg(test)]
mod tests {
    use super::{rooms_url, with_query};

    #[test]
    fn rooms_url_is_ws_next_to_echo() {
        assert_eq!(rooms_url("ws://h:1/echo"), "ws://h:1/ws");
        assert_eq!(rooms_url("wss://h/"), "wss://h/ws");
        assert_eq!(rooms_url("wss://h/echo/"), "wss://h/ws");
        assert_eq!(rooms_url("ws://h:1"), "ws://h:1/ws");
    }

    #[test]
    fn a_token_starts_the_query_or_joins_the_one_there() {
        assert_eq!(
            with_query("wss://h/ws", "token", "a.b.c"),
            "wss://h/ws?token=a.b.c"
        );
        assert_eq!(
            with_query("wss://h/ws?x=1", "token", "a.b.c"),
            "wss://h/ws?x=1&token=a.b.c"
        );
        assert_eq!(
            with_query("wss://h/ws?", "token", "t"),
            "wss://h/ws?token=t"
        );
        assert_eq!(
            with_query("wss://h/ws?x=1&", "token", "t"),
            "wss://h/ws?x=1&token=t"
        );
    }
}
