//! HTTP before the upgrade: route each request, answer plain requests
//! (`/healthz`, `/api/` through [`crate::api`], the UI's files, errors), and validate WebSocket handshakes
//! before handing the connection to [`crate::connection`]. Nothing a client
//! sends here can panic: malformed requests get hyper's 400, slow ones the
//! handshake timeout.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::header::{self, HeaderMap, HeaderValue};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode, Version};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::{Duration, Instant};
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tower_http::services::ServeDir;
use tracing::{debug, warn};

use duplex_protocol::deflate::{self, Agreement};

use crate::admission::{Admitted, Refusal};
use crate::config::Deflate;
use crate::connection::{self, Service};
use crate::state::AppState;
use crate::tls::{self, Tls};
use crate::transport::Transport;

/// Response bodies: small whole ones, or files streamed from `--ui-dir`.
pub(crate) type Body = UnsyncBoxBody<Bytes, std::io::Error>;

/// The only WebSocket protocol version (RFC 6455, section 4.1).
const WEBSOCKET_VERSION: &str = "13";

/// What a client that speaks plain HTTP (or ws://) to the TLS port gets:
/// an answer it can read, rather than a TLS alert it cannot.
const NOT_TLS: &[u8] = b"HTTP/1.1 400 Bad Request\r\n\
    Content-Type: text/plain; charset=utf-8\r\n\
    Connection: close\r\n\
    Content-Length: 46\r\n\r\n\
    This port speaks TLS: use https:// or wss://.\n";

/// How long a plain client on the TLS port has to read [`NOT_TLS`] before
/// the connection is dropped.
const NOT_TLS_LINGER: Duration = Duration::from_secs(1);

/// Serves the HTTP phase of one TCP connection (after the TLS handshake,
/// with `--tls-cert`): plain requests until the client upgrades, hangs up,
/// or the handshake timeout (TLS included) ends the phase.
pub(crate) async fn serve(tcp: TcpStream, peer: SocketAddr, shared: Arc<AppState>) {
    let timeout = shared.config.handshake_timeout;
    let deadline = Instant::now() + timeout;
    let shutdown = shared.shutdown.clone();
    let transport = match &shared.tls {
        None => Transport::plain(tcp),
        Some(tls) => {
            let accepted = tokio::select! {
                accepted = tokio::time::timeout_at(deadline, accept_tls(tcp, peer, tls)) => accepted,
                () = shutdown.cancelled() => return,
            };
            match accepted {
                Ok(Some(transport)) => transport,
                Ok(None) => return,
                Err(_elapsed) => {
                    debug!(%peer, "TLS handshake timed out");
                    return;
                }
            }
        }
    };
    let service = {
        let shared = Arc::clone(&shared);
        service_fn(move |request| {
            let shared = Arc::clone(&shared);
            async move { Ok::<_, Infallible>(route(request, peer, &shared).await) }
        })
    };
    let connection = http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(timeout)
        .serve_connection(TokioIo::new(transport), service)
        .with_upgrades();
    tokio::select! {
        result = tokio::time::timeout_at(deadline, connection) => match result {
            Ok(Ok(())) => {}
            Ok(Err(error)) => debug!(%peer, %error, "HTTP connection failed"),
            Err(_elapsed) => debug!(%peer, "HTTP phase timed out"),
        },
        () = shutdown.cancelled() => {}
    }
}

/// The TLS handshake, or for a client that sent something else first
/// (plain HTTP, ws://), the [`NOT_TLS`] answer and `None`.
async fn accept_tls(mut tcp: TcpStream, peer: SocketAddr, tls: &Tls) -> Option<Transport> {
    let mut first = [0u8; 1];
    match tcp.peek(&mut first).await {
        Ok(0) | Err(_) => return None,
        Ok(_) => {}
    }
    if !tls::starts_handshake(first[0]) {
        debug!(%peer, "plain bytes on the TLS port: answered 400");
        // Written, then the request read and dropped for a moment: closing
        // with unread input would reset the connection before the client
        // reads the answer.
        if tcp.write_all(NOT_TLS).await.is_ok() && tcp.shutdown().await.is_ok() {
            let mut sink = [0u8; 4096];
            let _ = tokio::time::timeout(NOT_TLS_LINGER, async {
                while matches!(tcp.read(&mut sink).await, Ok(n) if n > 0) {}
            })
            .await;
        }
        return None;
    }
    match tls.acceptor().accept(tcp).await {
        Ok(stream) => Some(Transport::Tls(Box::new(stream))),
        Err(error) => {
            debug!(%peer, %error, "TLS handshake failed");
            None
        }
    }
}

/// Chooses the answer to one request.
async fn route(
    request: Request<Incoming>,
    peer: SocketAddr,
    shared: &Arc<AppState>,
) -> Response<Body> {
    let path = request.uri().path();
    match (path, &shared.ui) {
        ("/healthz", _) => health(request.method(), shared),
        ("/metrics", _) => metrics(request.method(), shared),
        ("/echo", _) => upgrade(request, peer, Service::Echo, shared),
        ("/ws", _) => upgrade(request, peer, Service::Rooms, shared),
        (api, _) if api.starts_with("/api/") => crate::api::handle(request, shared).await,
        ("/", _) if is_websocket_upgrade(request.headers()) => {
            upgrade(request, peer, Service::Echo, shared)
        }
        ("/", None) => upgrade(request, peer, Service::Echo, shared),
        (_, Some(ui)) => static_file(request, ui).await,
        (_, None) => text(StatusCode::NOT_FOUND, "not found\n"),
    }
}

/// A file of the built UI (`--ui-dir`); `/` is its index.html.
async fn static_file(request: Request<Incoming>, ui: &ServeDir) -> Response<Body> {
    if request.method() != Method::GET && request.method() != Method::HEAD {
        return method_not_allowed("GET, HEAD");
    }
    match ui.clone().try_call(request).await {
        Ok(response) => response.map(|body| body.map_err(std::io::Error::other).boxed_unsync()),
        Err(error) => {
            warn!(%error, "cannot read a UI file");
            text(StatusCode::INTERNAL_SERVER_ERROR, "cannot read the file\n")
        }
    }
}

/// `GET /healthz`: liveness and a few gauges, as JSON.
fn health(method: &Method, shared: &AppState) -> Response<Body> {
    if method != Method::GET && method != Method::HEAD {
        return method_not_allowed("GET, HEAD");
    }
    let redis = shared.hub.cluster().map(|cluster| cluster.is_up());
    json(StatusCode::OK, &shared.stats.health(redis))
}

/// `GET /metrics`: the Prometheus text ([`crate::metrics`]).
fn metrics(method: &Method, shared: &AppState) -> Response<Body> {
    if method != Method::GET && method != Method::HEAD {
        return method_not_allowed("GET, HEAD");
    }
    let (rooms, members) = shared.hub.counts_here();
    let redis = shared.hub.cluster().map(|cluster| cluster.is_up());
    let text = shared.stats.metrics.render(rooms, members, redis);
    let mut response = Response::new(full(Bytes::from(text)));
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(crate::metrics::CONTENT_TYPE),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// A JSON answer that no cache keeps (`/healthz`, `/api/*`).
pub(crate) fn json(status: StatusCode, value: &impl serde::Serialize) -> Response<Body> {
    let body = serde_json::to_vec(value).unwrap_or_default();
    let mut response = Response::new(full(Bytes::from(body)));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// Validates a WebSocket handshake (RFC 6455, section 4.2.1) and, if it is
/// sound and a connection slot is free, answers 101 and hands the
/// connection to `service`.
fn upgrade(
    mut request: Request<Incoming>,
    peer: SocketAddr,
    service: Service,
    shared: &Arc<AppState>,
) -> Response<Body> {
    let headers = request.headers();
    if !is_websocket_upgrade(headers) {
        let mut response = text(
            StatusCode::UPGRADE_REQUIRED,
            "This is a WebSocket endpoint: connect with a WebSocket client, e.g. \
             new WebSocket(\"ws://HOST:PORT/echo\").\n",
        );
        let headers = response.headers_mut();
        headers.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
        headers.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
        headers.insert(
            header::SEC_WEBSOCKET_VERSION,
            HeaderValue::from_static(WEBSOCKET_VERSION),
        );
        return response;
    }
    if request.method() != Method::GET {
        return method_not_allowed("GET");
    }
    if request.version() != Version::HTTP_11 {
        return text(
            StatusCode::BAD_REQUEST,
            "WebSocket handshakes need HTTP/1.1\n",
        );
    }
    if headers
        .get(header::SEC_WEBSOCKET_VERSION)
        .map(HeaderValue::as_bytes)
        != Some(WEBSOCKET_VERSION.as_bytes())
    {
        let mut response = text(
            StatusCode::UPGRADE_REQUIRED,
            "unsupported Sec-WebSocket-Version: use 13\n",
        );
        response.headers_mut().insert(
            header::SEC_WEBSOCKET_VERSION,
            HeaderValue::from_static(WEBSOCKET_VERSION),
        );
        return response;
    }
    let Some(key) = headers
        .get(header::SEC_WEBSOCKET_KEY)
        .filter(|key| key.len() == 24)
    else {
        return text(
            StatusCode::BAD_REQUEST,
            "missing or malformed Sec-WebSocket-Key\n",
        );
    };
    let Ok(accept) = HeaderValue::from_str(&derive_accept_key(key.as_bytes())) else {
        return text(StatusCode::BAD_REQUEST, "malformed Sec-WebSocket-Key\n");
    };
    // Origin and token, then this address's slot, then the server's:
    // each refusal answered in one place, before the upgrade.
    let admission = &shared.admission;
    let admitted = admission
        .check(request.headers(), request.uri(), service)
        .and_then(|identity| {
            let ip_slot = admission.take_ip_slot(peer.ip())?;
            let permit = Arc::clone(&shared.permits)
                .try_acquire_owned()
                .map_err(|_| Refusal::Full)?;
            Ok((permit, Admitted { identity, ip_slot }))
        });
    let (permit, admitted) = match admitted {
        Ok(admitted) => admitted,
        Err(refusal) => {
            debug!(%peer, status = refusal.status().as_u16(), %refusal, "upgrade refused");
            shared.stats.metrics.refused(refusal.status().as_u16());
            return refusal.response();
        }
    };

    let deflate = match shared.config.deflate {
        Deflate::On => negotiate_deflate(request.headers()),
        Deflate::Off => None,
    };
    let on_upgrade = hyper::upgrade::on(&mut request);
    shared.tasks.spawn(connection::serve(
        on_upgrade,
        permit,
        peer,
        service,
        deflate,
        Arc::clone(shared),
        admitted,
    ));

    let mut response = Response::new(full(Bytes::new()));
    *response.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let headers = response.headers_mut();
    headers.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
    headers.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
    headers.insert(header::SEC_WEBSOCKET_ACCEPT, accept);
    // Declined: no header at all (Chromium refuses an empty one).
    if let Some(answer) = deflate.and_then(|agreed| HeaderValue::try_from(agreed.response()).ok()) {
        headers.insert(header::SEC_WEBSOCKET_EXTENSIONS, answer);
    }
    response
}

/// The permessage-deflate agreement for a handshake, from every
/// `Sec-WebSocket-Extensions` line (RFC 7692 §5), or `None` to decline.
///
/// Safari 15.0-15.3 offer permessage-deflate but do not honour
/// `client_no_context_takeover` (they compress each message with the
/// previous ones as context; uWebSockets issue #1347): every message after
/// the first would fail to inflate and close the connection with 1007.
/// Duplex declines their offer, so those browsers work, uncompressed.
pub(crate) fn negotiate_deflate(headers: &HeaderMap) -> Option<Agreement> {
    if headers
        .get(header::USER_AGENT)
        .is_some_and(|agent| is_broken_safari(agent.as_bytes()))
    {
        return None;
    }
    deflate::negotiate(
        headers
            .get_all(header::SEC_WEBSOCKET_EXTENSIONS)
            .iter()
            .map(HeaderValue::as_bytes),
    )
}

/// Safari 15.0 to 15.3: `Version/15.N` and `Safari/` without `Chrome/`.
/// Every browser on iOS 15.0-15.3 runs Safari's engine and sends the same
/// `Version/` token, so they are declined too, as they should be.
pub(crate) fn is_broken_safari(agent: &[u8]) -> bool {
    let Ok(agent) = std::str::from_utf8(agent) else {
        return false;
    };
    agent.contains("Safari/")
        && !agent.contains("Chrome/")
        && [
            "Version/15.0",
            "Version/15.1",
            "Version/15.2",
            "Version/15.3",
        ]
        .iter()
        .any(|version| {
            agent
                .split(' ')
                .any(|token| token == *version || token.starts_with(&format!("{version}.")))
        })
}

/// `Connection` lists `upgrade` and `Upgrade` is `websocket`, both compared
/// without regard to case as RFC 6455 requires.
pub(crate) fn is_websocket_upgrade(headers: &HeaderMap) -> bool {
    let connection_upgrade = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .any(|token| token.trim().eq_ignore_ascii_case("upgrade"));
    let upgrade_websocket = headers
        .get(header::UPGRADE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.trim().eq_ignore_ascii_case("websocket"));
    connection_upgrade && upgrade_websocket
}

pub(crate) fn full(bytes: Bytes) -> Body {
    Full::new(bytes)
        .map_err(|never| match never {})
        .boxed_unsync()
}

pub(crate) fn text(status: StatusCode, body: &'static str) -> Response<Body> {
    let mut response = Response::new(full(Bytes::from_static(body.as_bytes())));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

pub(crate) fn method_not_allowed(allow: &'static str) -> Response<Body> {
    let mut response = text(StatusCode::METHOD_NOT_ALLOWED, "method not allowed\n");
    response
        .headers_mut()
        .insert(header::ALLOW, HeaderValue::from_static(allow));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(*name, HeaderValue::from_static(value));
        }
        map
    }

    #[test]
    fn safari_15_0_to_15_3_are_declined_others_not() {
        let safari = |v: &str| {
            format!(
                "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 \
                 (KHTML, like Gecko) Version/{v} Safari/605.1.15"
            )
        };
        for broken in ["15.0", "15.1", "15.2.1", "15.3"] {
            assert!(is_broken_safari(safari(broken).as_bytes()), "{broken}");
        }
        for fine in ["15.4", "16.0", "14.1.2", "15.10"] {
            assert!(!is_broken_safari(safari(fine).as_bytes()), "{fine}");
        }
        let chrome = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 \
                      (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36";
        assert!(!is_broken_safari(chrome.as_bytes()));
    }

    #[test]
    fn offers_on_several_lines_are_read_in_order() {
        let offered = headers(&[
            (
                "sec-websocket-extensions",
                "x-unknown, permessage-deflate; bogus",
            ),
            (
                "sec-websocket-extensions",
                "permessage-deflate; server_max_window_bits=10",
            ),
        ]);
        assert_eq!(
            negotiate_deflate(&offered),
            Some(Agreement {
                server_max_window_bits: Some(10)
            })
        );
        assert_eq!(negotiate_deflate(&headers(&[])), None);
    }

    #[test]
    fn upgrade_headers_are_matched_without_case_and_in_lists() {
        assert!(is_websocket_upgrade(&headers(&[
            ("connection", "keep-alive, Upgrade"),
            ("upgrade", "WebSocket"),
        ])));
        assert!(!is_websocket_upgrade(&headers(&[("upgrade", "websocket")])));
        assert!(!is_websocket_upgrade(&headers(&[
            ("connection", "upgrade"),
            ("upgrade", "h2c"),
        ])));
    }
}
