//! Browser tests: the transport and the connection manager in headless
//! Chromium against the real release server.
//!
//! `scripts/test-browser.sh` builds these with the harness
//! (`duplex-browser-harness`) around them: it starts the server on a free
//! loopback port and passes its URLs at build time (`option_env!`), and
//! lets the reconnect test stop and restart the server through its control
//! endpoint. Run alone, they fail at once and say so.
#![cfg(target_arch = "wasm32")]

use std::future::Future;
use std::time::Duration;

use duplex_client::backoff::BackoffConfig;
use duplex_client::outbox::OutboxLimits;
use duplex_client::rooms::{self, Author, Change, Rooms};
use duplex_client::session::{self, State};
use duplex_client::time;
use duplex_client::{
    CloseInfo, Connection, ConnectionConfig, Delivery, Event, Events, Message, Transport,
    TransportError,
};
use duplex_protocol::{ErrorCode, LeaveReason, Member, ServerMessage, binary};
use futures_util::{SinkExt, StreamExt};
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;
use wasm_bindgen_test::{wasm_bindgen_test, wasm_bindgen_test_configure};

wasm_bindgen_test_configure!(run_in_browser);

/// The longest any single step may take before the test fails.
const STEP: Duration = Duration::from_secs(10);

/// One of the URLs the harness passes at build time.
fn given(value: Option<&'static str>, name: &str) -> &'static str {
    value.unwrap_or_else(|| {
        panic!(
            "{name} was not set when these tests were built: run them with \
             scripts/test-browser.sh, which starts the server and sets it"
        )
    })
}

fn ws_url() -> &'static str {
    given(option_env!("DUPLEX_TEST_WS_URL"), "DUPLEX_TEST_WS_URL")
}

fn dead_url() -> &'static str {
    given(
        option_env!("DUPLEX_TEST_DEAD_WS_URL"),
        "DUPLEX_TEST_DEAD_WS_URL",
    )
}

/// The harness's second server, started with `--deflate off`.
fn deflate_off_url() -> &'static str {
    given(
        option_env!("DUPLEX_TEST_DEFLATE_OFF_WS_URL"),
        "DUPLEX_TEST_DEFLATE_OFF_WS_URL",
    )
}

/// Set only in the harness's Redis variant (`--redis`): the servers share
/// the rooms' history through Redis, so it survives a server restart.
fn redis_url() -> Option<&'static str> {
    option_env!("DUPLEX_TEST_REDIS_URL")
}

/// The harness's TLS server (`--tls-cert`, `--jwt-secret`): its echo
/// endpoint, `wss://127.0.0.1:PORT/echo`. Chromium trusts its certificate
/// through the `webdriver.json` the harness writes
/// (`WASM_BINDGEN_TEST_WEBDRIVER_JSON`).
fn tls_ws_url() -> &'static str {
    given(
        option_env!("DUPLEX_TEST_TLS_WS_URL"),
        "DUPLEX_TEST_TLS_WS_URL",
    )
}

/// A valid HS256 token for the TLS server (`sub` `harness`, no `rooms`
/// claim), made by the harness with its `--jwt-secret`.
fn tls_token() -> &'static str {
    given(option_env!("DUPLEX_TEST_JWT"), "DUPLEX_TEST_JWT")
}

fn control_url() -> &'static str {
    given(
        option_env!("DUPLEX_TEST_CONTROL_URL"),
        "DUPLEX_TEST_CONTROL_URL",
    )
}

/// Awaits `future` for at most [`STEP`].
async fn within<T>(what: &str, future: impl Future<Output = T>) -> T {
    time::timeout(STEP, future)
        .await
        .unwrap_or_else(|| panic!("timed out after {STEP:?} waiting for {what}"))
}

/// Asks the harness to act on the server: `/server/stop`,
/// `/server/stop?how=kill`, `/server/start`.
async fn control(path: &str) -> String {
    let url = format!("{}{path}", control_url());
    let init = web_sys::RequestInit::new();
    init.set_method("POST");
    let window = web_sys::window().expect("tests run in a window");
    let response: web_sys::Response = within(
        path,
        JsFuture::from(window.fetch_with_str_and_init(&url, &init)),
    )
    .await
    .expect("the harness's control endpoint answers")
    .dyn_into()
    .expect("fetch gives a Response");
    let body = JsFuture::from(response.text().expect("a body"))
        .await
        .expect("the body reads")
        .as_string()
        .unwrap_or_default();
    assert!(
        response.ok(),
        "control {path}: HTTP {} {body}",
        response.status()
    );
    body
}

/// Reads events until one matches `pred`; returns all read, the match last.
async fn wait_for(
    events: &mut Events,
    what: &str,
    mut pred: impl FnMut(&Event) -> bool,
) -> Vec<Event> {
    let mut seen = Vec::new();
    let found = time::timeout(STEP, async {
        while let Some(event) = events.next().await {
            let hit = pred(&event);
            seen.push(event);
            if hit {
                return true;
            }
        }
        false
    })
    .await;
    assert_eq!(
        found,
        Some(true),
        "no {what} within {STEP:?}; events: {seen:#?}"
    );
    seen
}

fn is_state(event: &Event, name: &str) -> bool {
    matches!(event, Event::State(state) if state.name() == name)
}

/// Deterministic pseudo-random bytes (xorshift), so a mismatch is
/// reproducible and no two positions are trivially alike.
fn pattern(len: usize, seed: u32) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x.to_le_bytes()[0]
        })
        .collect()
}

#[wasm_bindgen_test]
async fn text_echoes_back() {
    let mut transport = within("open", Transport::connect(ws_url()))
        .await
        .expect("the server accepts");
    let text = "hello, Duplex ✓ — ünïcödé";
    transport
        .send(&Message::Text(text.into()))
        .expect("open socket sends");
    assert_eq!(
        within("echo", transport.next()).await,
        Some(Message::Text(text.into()))
    );
    // The same through the Sink and Stream traits.
    SinkExt::send(&mut transport, Message::Text("via sink".into()))
        .await
        .expect("sink sends");
    assert_eq!(
        within("echo", transport.next()).await,
        Some(Message::Text("via sink".into()))
    );
}

#[wasm_bindgen_test]
async fn binary_echoes_byte_exact_up_to_one_mebibyte() {
    let transport = within("open", Transport::connect(ws_url()))
        .await
        .expect("the server accepts");
    // Around each frame-length encoding boundary, and 1 MiB.
    for (i, len) in [0, 1, 125, 126, 65_535, 65_536, 1 << 20]
        .into_iter()
        .enumerate()
    {
        let bytes = pattern(len, 0x9e37_79b9 ^ i as u32);
        transport
            .send(&Message::Binary(bytes.clone()))
            .expect("open socket sends");
        match within("binary echo", transport.recv()).await {
            Some(Message::Binary(echo)) => {
                assert_eq!(echo.len(), len, "length of the {len}-byte echo");
                assert!(echo == bytes, "the {len}-byte echo differs");
            }
            other => panic!("expected {len} binary bytes, got {other:?}"),
        }
    }
}

/// Regression: the server answered pipelined messages in batches of 64 and
/// dropped the 65th of each full batch, so a burst lost messages.
#[wasm_bindgen_test]
async fn a_burst_of_messages_echoes_whole_and_in_order() {
    let transport = within("open", Transport::connect(ws_url()))
        .await
        .expect("the server accepts");
    const BURST: usize = 2000;
    for i in 0..BURST {
        transport
            .send(&Message::Text(format!("burst {i}")))
            .expect("open socket sends");
    }
    let mut echoed = Vec::with_capacity(BURST);
    let complete = time::timeout(STEP, async {
        while echoed.len() < BURST {
            match transport.recv().await {
                Some(Message::Text(text)) => echoed.push(text),
                other => panic!("unexpected {other:?}"),
            }
        }
    })
    .await;
    let expected: Vec<String> = (0..BURST).map(|i| format!("burst {i}")).collect();
    let missing: Vec<&String> = expected.iter().filter(|m| !echoed.contains(m)).collect();
    assert!(
        complete.is_some() && echoed == expected,
        "{} of {BURST} echoes arrived; missing: {missing:?}",
        echoed.len()
    );
}

#[wasm_bindgen_test]
async fn close_code_and_reason_reach_the_client() {
    let transport = within("open", Transport::connect(ws_url()))
        .await
        .expect("the server accepts");
    transport.close(4001, "done here").expect("a valid close");
    assert_eq!(within("end of stream", transport.recv()).await, None);
    // The server answers with our code and reason (RFC 6455, 5.5.1).
    assert_eq!(
        transport.close_info(),
        Some(CloseInfo {
            code: 4001,
            reason: "done here".into(),
            was_clean: true,
        })
    );
    // Codes a browser may not send are refused before anything happens.
    let other = within("open", Transport::connect(ws_url()))
        .await
        .expect("the server accepts");
    assert!(matches!(
        other.close(1001, ""),
        Err(TransportError::CloseRequest(_))
    ));
    assert!(other.is_open());
}

#[wasm_bindgen_test]
async fn unreachable_url_fails_with_a_clear_error() {
    let error = within("the failure", Transport::connect(dead_url()))
        .await
        .expect_err("nothing listens there");
    assert_eq!(
        error,
        TransportError::ConnectFailed {
            url: dead_url().into(),
            code: 1006,
        }
    );
    let message = error.to_string();
    assert!(
        message.starts_with(&format!("cannot connect to {}", dead_url())),
        "{message}"
    );
    assert!(message.contains("server is running"), "{message}");
    // A malformed URL fails before any connection attempt.
    assert!(matches!(
        Transport::open("ws://[::1"),
        Err(TransportError::InvalidUrl { .. })
    ));
}

/// The harness starts [`ws_url`]'s server with `--deflate on`; Chromium
/// offers permessage-deflate on every socket, so once open the browser
/// reports the extension the server accepted.
#[wasm_bindgen_test]
async fn the_browser_negotiates_permessage_deflate_with_a_deflate_on_server() {
    let transport = Transport::open(ws_url()).expect("a valid URL");
    // Nothing is negotiated before the handshake's answer.
    assert_eq!(transport.extensions(), "");
    within("open", transport.opened())
        .await
        .expect("the server accepts");
    let extensions = transport.extensions();
    assert!(
        extensions.contains("permessage-deflate"),
        "WebSocket.extensions against a --deflate on server: {extensions:?}"
    );

    // The connection manager reports it while open, and nothing without a
    // socket.
    let mut config = ConnectionConfig::new(ws_url());
    config.probe_interval = None;
    let (connection, mut events) = Connection::new(config);
    assert_eq!(connection.extensions(), None);
    connection.connect();
    wait_for(&mut events, "open", |e| is_state(e, "open")).await;
    let managed = connection.extensions().unwrap_or_default();
    assert!(
        managed.contains("permessage-deflate"),
        "Connection::extensions against a --deflate on server: {managed:?}"
    );
    connection.close(1000, "").expect("a valid close");
    wait_for(&mut events, "closed", |e| is_state(e, "closed")).await;
    assert_eq!(connection.extensions(), None);
}

/// Against the harness's `--deflate off` server the same browser offer is
/// declined: no extensions, and messages still flow.
#[wasm_bindgen_test]
async fn no_extension_is_negotiated_with_a_deflate_off_server() {
    let transport = within("open", Transport::connect(deflate_off_url()))
        .await
        .expect("the server accepts");
    assert_eq!(transport.extensions(), "", "WebSocket.extensions");
    let text = compressible_text(16 * 1024);
    transport
        .send(&Message::Text(text.clone()))
        .expect("open socket sends");
    assert_text_echo(
        "16 KiB uncompressed",
        within("echo", transport.recv()).await,
        &text,
    );

    let mut config = ConnectionConfig::new(deflate_off_url());
    config.probe_interval = None;
    let (connection, mut events) = Connection::new(config);
    connection.connect();
    wait_for(&mut events, "open", |e| is_state(e, "open")).await;
    assert_eq!(connection.extensions().as_deref(), Some(""));
}

/// Large text through a compressed connection: the server inflates what
/// Chromium deflates and deflates its echo (both sizes are far above its
/// `--deflate-threshold`), and every byte comes back, including a
/// repeat of the first message (no context is carried between messages).
#[wasm_bindgen_test]
async fn large_text_echoes_byte_exact_through_permessage_deflate() {
    let transport = within("open", Transport::connect(ws_url()))
        .await
        .expect("the server accepts");
    let extensions = transport.extensions();
    assert!(
        extensions.contains("permessage-deflate"),
        "this test needs a compressed connection; WebSocket.extensions: {extensions:?}"
    );
    let small = compressible_text(16 * 1024);
    let large = records_text(100 * 1024);
    let sent = [
        ("16 KiB", &small),
        ("100 KiB", &large),
        ("16 KiB again", &small),
    ];
    // All three in flight at once, then their echoes in order.
    for (_, text) in sent {
        transport
            .send(&Message::Text(text.clone()))
            .expect("open socket sends");
    }
    for (what, text) in sent {
        assert_text_echo(what, within(what, transport.recv()).await, text);
    }
}

/// Exactly `len` bytes of chat-like UTF-8 that deflates well: the same
/// line over and over, with a multi-byte character in each.
fn compressible_text(len: usize) -> String {
    let line = "the quick brown fox jumps over the lazy dog ✓ hello, Duplex\n";
    let mut text = String::with_capacity(len);
    while text.len() + line.len() <= len {
        text.push_str(line);
    }
    text.extend(std::iter::repeat_n('.', len - text.len()));
    text
}

/// Exactly `len` bytes of JSON-like records with counters and noise: it
/// deflates, but not to almost nothing.
fn records_text(len: usize) -> String {
    let noise = pattern(len, 0x5eed);
    let mut text = String::with_capacity(len);
    let mut seq = 0usize;
    loop {
        let byte = noise[seq % noise.len()];
        let record = format!(
            "{{\"seq\":{seq},\"room\":\"lobby-{}\",\"text\":\"héllo {byte:02x}{:02x}\"}}\n",
            byte % 7,
            noise[(seq * 31) % noise.len()]
        );
        if text.len() + record.len() > len {
            break;
        }
        text.push_str(&record);
        seq += 1;
    }
    text.extend(std::iter::repeat_n(' ', len - text.len()));
    text
}

/// `got` is the text `want`, byte for byte; says where it differs rather
/// than printing kilobytes.
fn assert_text_echo(what: &str, got: Option<Message>, want: &str) {
    let Some(Message::Text(got)) = got else {
        panic!("expected the {what} text echo, got {got:?}");
    };
    if got != want {
        let at = got
            .bytes()
            .zip(want.bytes())
            .position(|(a, b)| a != b)
            .unwrap_or(got.len().min(want.len()));
        panic!(
            "the {what} echo differs: {} bytes back for {} sent, first difference at byte {at}",
            got.len(),
            want.len()
        );
    }
}

#[wasm_bindgen_test]
async fn dropping_the_transport_closes_the_socket() {
    let transport = within("open", Transport::connect(ws_url()))
        .await
        .expect("the server accepts");
    let socket = transport.as_web_sys().clone();
    drop(transport);
    assert_ne!(socket.ready_state(), web_sys::WebSocket::OPEN);
    // The close completes with our listeners gone: no callback runs on
    // freed state (wasm-bindgen would throw if one did).
    within("the socket to close", async {
        while socket.ready_state() != web_sys::WebSocket::CLOSED {
            time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
}

#[wasm_bindgen_test]
async fn connection_measures_round_trip_times() {
    let mut config = ConnectionConfig::new(ws_url());
    config.probe_interval = Some(Duration::from_millis(50));
    let (connection, mut events) = Connection::new(config);
    connection.connect();
    let mut samples = Vec::new();
    let seen = wait_for(&mut events, "three RTT samples", |event| {
        if let Event::Rtt(ms) = event {
            samples.push(*ms);
        }
        samples.len() == 3
    })
    .await;
    for ms in samples {
        assert!((0.0..1000.0).contains(&ms), "RTT {ms} ms on loopback");
    }
    // Probes never show up as received messages.
    assert!(
        !seen.iter().any(|e| matches!(e, Event::Received(_))),
        "{seen:#?}"
    );
}

#[wasm_bindgen_test]
async fn connection_closes_with_the_requested_code_and_stays_closed() {
    let mut config = ConnectionConfig::new(ws_url());
    config.probe_interval = None;
    let (connection, mut events) = Connection::new(config);
    connection.connect();
    wait_for(&mut events, "open", |e| is_state(e, "open")).await;
    connection.close(4000, "bye").expect("a valid close");
    let seen = wait_for(&mut events, "closed", |e| is_state(e, "closed")).await;
    assert!(
        seen.contains(&Event::Closed(CloseInfo {
            code: 4000,
            reason: "bye".into(),
            was_clean: true,
        })),
        "{seen:#?}"
    );
    assert!(seen.contains(&Event::State(State::Closing)), "{seen:#?}");
    // No reconnect follows a requested close.
    time::sleep(Duration::from_millis(300)).await;
    assert_eq!(connection.state(), State::Closed);
    assert!(matches!(
        connection.close(1006, ""),
        Err(duplex_client::message::CloseRequestError::Code(1006))
    ));
}

#[wasm_bindgen_test]
async fn connection_refuses_messages_beyond_its_queue() {
    let mut config = ConnectionConfig::new(dead_url());
    config.outbox = OutboxLimits {
        max_messages: 2,
        max_bytes: 1 << 20,
    };
    let (connection, mut events) = Connection::new(config);
    connection.connect();
    let seen = wait_for(&mut events, "a reconnect wait", |e| {
        is_state(e, "reconnecting")
    })
    .await;
    assert!(
        seen.iter().any(|e| matches!(
            e,
            Event::Error(TransportError::ConnectFailed { code: 1006, .. })
        )),
        "{seen:#?}"
    );
    assert_eq!(
        connection.send(Message::Text("a".into())),
        Ok(Delivery::Queued(1))
    );
    assert_eq!(
        connection.send(Message::Text("b".into())),
        Ok(Delivery::Queued(2))
    );
    let full = connection
        .send(Message::Text("c".into()))
        .expect_err("the queue holds two");
    assert_eq!((full.queued, full.size), (2, 1));
    assert_eq!(connection.queued(), (2, 2));
    connection.close(1000, "").expect("a valid close");
    wait_for(&mut events, "closed", |e| is_state(e, "closed")).await;
}

/// `send_or_drop` (room joins and leaves, which the greeting restores):
/// written when open, dropped rather than queued otherwise, so a leave made
/// as the socket closes cannot go out after the next greeting.
#[wasm_bindgen_test]
async fn send_or_drop_sends_when_open_and_never_queues() {
    let mut config = ConnectionConfig::new(ws_url());
    config.probe_interval = None;
    let (connection, mut events) = Connection::new(config);
    assert!(!connection.send_or_drop(Message::Text("not yet".into())));
    assert_eq!(connection.queued(), (0, 0));

    connection.connect();
    wait_for(&mut events, "open", |e| is_state(e, "open")).await;
    assert!(connection.send_or_drop(Message::Text("now".into())));
    wait_for(&mut events, "the echo", |e| {
        *e == Event::Received(Message::Text("now".into()))
    })
    .await;

    // Closing: the state says so at once; nothing is written or queued.
    connection.close(1000, "").expect("a valid close");
    wait_for(&mut events, "closing", |e| is_state(e, "closing")).await;
    assert!(!connection.send_or_drop(Message::Text("too late".into())));
    assert_eq!(connection.queued(), (0, 0));
    wait_for(&mut events, "closed", |e| is_state(e, "closed")).await;
}

/// The server restarts twice, once gracefully (clients get 1001) and once
/// by SIGKILL (no close frame: 1006). Each time the client reconnects by
/// itself and the messages queued meanwhile arrive in order.
#[wasm_bindgen_test]
async fn reconnects_after_a_server_restart_and_delivers_the_queue_in_order() {
    let mut config = ConnectionConfig::new(ws_url());
    config.probe_interval = None;
    config.backoff = BackoffConfig {
        initial: Duration::from_millis(100),
        max: Duration::from_millis(800),
    };
    let (connection, mut events) = Connection::new(config);
    connection.connect();
    wait_for(&mut events, "open", |e| is_state(e, "open")).await;

    for (round, how, expected_close) in [
        (
            0,
            "",
            CloseInfo {
                code: 1001,
                reason: "server shutting down".into(),
                was_clean: true,
            },
        ),
        (
            1,
            "?how=kill",
            CloseInfo {
                code: 1006,
                reason: String::new(),
                was_clean: false,
            },
        ),
    ] {
        control(&format!("/server/stop{how}")).await;
        let seen = wait_for(&mut events, "the close", |e| matches!(e, Event::Closed(_))).await;
        assert_eq!(
            seen.last(),
            Some(&Event::Closed(expected_close)),
            "round {round}"
        );
        wait_for(&mut events, "a reconnect wait", |e| {
            is_state(e, "reconnecting")
        })
        .await;

        let queued: Vec<Message> = (0..5)
            .map(|i| Message::Text(format!("round {round} message {i}")))
            .chain([Message::Binary(pattern(70_000, round))])
            .collect();
        for (i, message) in queued.iter().enumerate() {
            assert_eq!(
                connection.send(message.clone()),
                Ok(Delivery::Queued(i + 1))
            );
        }
        // Let at least one attempt fail against the stopped server.
        wait_for(&mut events, "a failed attempt", |e| {
            matches!(e, Event::Error(TransportError::ConnectFailed { .. }))
        })
        .await;
        control("/server/start").await;

        let mut sent = Vec::new();
        let mut received = Vec::new();
        let seen = wait_for(&mut events, "every queued echo", |e| {
            match e {
                Event::Sent(m) => sent.push(m.clone()),
                Event::Received(m) => received.push(m.clone()),
                _ => {}
            }
            received.len() == queued.len()
        })
        .await;
        assert!(
            seen.contains(&Event::Reconnected),
            "round {round}: {seen:#?}"
        );
        assert_eq!(sent, queued, "round {round}: sent in queue order");
        assert_eq!(received, queued, "round {round}: echoed in order");
        assert_eq!(connection.queued(), (0, 0));
        assert_eq!(connection.state(), State::Open);
    }
    // Back to normal: direct sends go straight out, and a burst after the
    // reconnects arrives whole and in order.
    for i in 0..1000 {
        assert_eq!(
            connection.send(Message::Text(format!("after {i}"))),
            Ok(Delivery::Sent)
        );
    }
    let mut received = Vec::new();
    wait_for(&mut events, "the burst's echoes", |e| {
        if let Event::Received(Message::Text(t)) = e {
            received.push(t.clone());
        }
        received.len() == 1000
    })
    .await;
    let expected: Vec<String> = (0..1000).map(|i| format!("after {i}")).collect();
    assert_eq!(received, expected);
}

/// The rooms endpoint on the harness's server (`/ws` next to `/echo`).
fn rooms_url() -> String {
    rooms::rooms_url(ws_url())
}

/// A connection to `/ws` (no probes: the rooms protocol does not echo) and
/// a rooms model fed by its events.
struct RoomsClient {
    connection: Connection,
    events: Events,
    rooms: Rooms,
}

impl RoomsClient {
    fn new() -> Self {
        Self::at(&rooms_url())
    }

    /// A client of the `/ws` at `url`.
    fn at(url: &str) -> Self {
        let mut config = ConnectionConfig::new(url);
        config.probe_interval = None;
        let (connection, events) = Connection::new(config);
        Self {
            connection,
            events,
            rooms: Rooms::new(),
        }
    }

    /// A client connected to `/ws` and welcomed.
    async fn connected(who: &str) -> Self {
        let mut client = Self::new();
        client.connection.connect();
        client
            .until(&format!("{who}'s welcome"), |_, c| {
                matches!(c, Change::Welcome(_))
            })
            .await;
        client
    }

    /// Joins `room` as `name` and waits for the server's confirmation.
    async fn joined(&mut self, room: &str, name: &str) {
        self.join(room, name);
        self.until(&format!("{name}'s joined"), |r, _| {
            r.room(room).is_some_and(|r| r.joined)
        })
        .await;
    }

    fn join(&mut self, room: &str, name: &str) {
        let open = self.connection.state() == State::Open;
        if let Some(message) = self.rooms.join(room, name, open) {
            self.connection.send(message).expect("room in the queue");
        }
        self.connection.set_greeting(self.rooms.greeting());
    }

    fn leave(&mut self, room: &str) {
        let open = self.connection.state() == State::Open;
        if let Some(message) = self.rooms.leave(room, open) {
            self.connection.send(message).expect("room in the queue");
        }
        self.connection.set_greeting(self.rooms.greeting());
    }

    /// The texts of `room`'s chat lines.
    fn lines(&self, room: &str) -> Vec<String> {
        self.rooms
            .room(room)
            .map(|r| r.lines.iter().map(|l| l.text.clone()).collect())
            .unwrap_or_default()
    }

    /// Feeds server messages to the model (and sends what it answers, as
    /// the page does) until one gives a change matching `pred`; panics on
    /// a server error. A close is handled as the page does: the model
    /// forgets the connection and the greeting is taken again, from the
    /// rooms' positions.
    async fn until(&mut self, what: &str, mut pred: impl FnMut(&Rooms, &Change) -> bool) {
        let Self {
            events,
            rooms,
            connection,
        } = self;
        wait_for(events, what, |event| {
            let change = match event {
                Event::Received(Message::Text(text)) => {
                    rooms.handle_text(text).expect("a server message")
                }
                Event::Received(Message::Binary(frame)) => {
                    rooms.handle_binary(frame).expect("a binary delivery")
                }
                Event::Closed(info) => {
                    rooms.disconnected(session::retryable(info));
                    connection.set_greeting(rooms.greeting());
                    Change::None
                }
                _ => return false,
            };
            assert!(
                !matches!(change, Change::Error { .. } | Change::JoinRefused { .. }),
                "the server refused something: {change:?}"
            );
            if let Change::Send(message) = &change {
                connection.send(message.clone()).expect("room in the queue");
            }
            pred(rooms, &change)
        })
        .await;
    }
}

#[wasm_bindgen_test]
async fn two_clients_chat_in_a_room() {
    let room = "chat-two";
    let mut ada = RoomsClient::connected("ada").await;
    ada.joined(room, "ada").await;
    let ada_id = ada.rooms.client_id().expect("welcomed");

    let mut bob = RoomsClient::connected("bob").await;
    bob.joined(room, "bob").await;
    let bob_id = bob.rooms.client_id().expect("welcomed");
    assert_ne!(ada_id, bob_id);
    let names = |rooms: &Rooms| -> Vec<(u64, String)> {
        rooms
            .room(room)
            .expect("joined")
            .members
            .iter()
            .map(|m| (m.id, m.name.clone()))
            .collect()
    };
    let both = vec![(ada_id, "ada".to_owned()), (bob_id, "bob".to_owned())];
    assert_eq!(names(&bob.rooms), both);
    ada.until("bob in ada's member list", |r, _| {
        r.room(room).is_some_and(|r| r.members.len() == 2)
    })
    .await;
    assert_eq!(names(&ada.rooms), both);

    ada.connection
        .send(Rooms::publish(room, "hello, bob"))
        .expect("sent");
    bob.until("ada's message", |r, _| {
        r.room(room)
            .is_some_and(|r| r.lines.iter().any(|l| l.text == "hello, bob"))
    })
    .await;
    let line = bob
        .rooms
        .room(room)
        .and_then(|r| r.lines.last())
        .expect("a line")
        .clone();
    assert_eq!(
        line.author,
        Author::Member(Member {
            id: ada_id,
            name: "ada".into()
        })
    );
}

#[wasm_bindgen_test]
async fn the_greeting_rejoins_before_the_queue_is_sent() {
    let room = "chat-queued";
    let mut client = RoomsClient::new();
    // Offline: the join goes into the greeting, the publish into the queue.
    client.join(room, "cy");
    assert_eq!(
        client.connection.send(Rooms::publish(room, "queued hello")),
        Ok(Delivery::Queued(1))
    );
    client.connection.connect();
    // `until` fails on any server error, such as not_joined.
    client
        .until("the queued message", |r, _| {
            r.room(room)
                .is_some_and(|r| r.lines.iter().any(|l| l.text == "queued hello"))
        })
        .await;
    assert!(client.rooms.room(room).is_some_and(|r| r.joined));
}

/// Leaving a room before the server confirmed the join used to leave the
/// server with a member the person did not want: the others saw it stay.
#[wasm_bindgen_test]
async fn leaving_before_the_join_is_confirmed_leaves_on_the_server_too() {
    let room = "chat-left-early";
    let mut bob = RoomsClient::connected("bob").await;
    bob.joined(room, "bob").await;

    let mut ada = RoomsClient::connected("ada").await;
    // Join and leave in one go: the leave comes before any answer.
    ada.join(room, "ada");
    ada.leave(room);
    assert!(ada.rooms.room(room).is_none());
    // The model answers the late `joined` with a `leave`.
    ada.until("ada's leave going out", |_, c| matches!(c, Change::Send(_)))
        .await;
    let ada_id = ada.rooms.client_id().expect("welcomed");

    // Bob sees ada come and go, and is alone again.
    bob.until("ada leaving bob's room", |r, _| {
        r.room(room)
            .is_some_and(|r| r.lines.iter().any(|l| l.text == "ada left"))
    })
    .await;
    let state = bob.rooms.room(room).expect("joined");
    assert!(
        state.members.iter().all(|m| m.id != ada_id) && state.member_count == 1,
        "{state:?}"
    );
}

/// A join the server refuses (here a room over its 64-byte limit) is
/// dropped by the room the `error` names, read by the page's own JSON
/// decoder; it used to stay "joining…" for good, and the join next to it
/// goes through.
#[wasm_bindgen_test]
async fn a_refused_join_is_dropped_by_the_room_it_names() {
    let fine = "chat-next-to-a-refusal";
    let long = "x".repeat(65);
    let mut cy = RoomsClient::connected("cy").await;
    cy.join(&long, "cy");
    cy.join(fine, "cy");
    let RoomsClient { events, rooms, .. } = &mut cy;
    let mut refused = None;
    wait_for(events, "the refusal and the other join", |event| {
        let Event::Received(Message::Text(text)) = event else {
            return false;
        };
        if let Change::JoinRefused { room, code, .. } =
            rooms.handle_text(text).expect("a server message")
        {
            refused = Some((room, code));
        }
        refused.is_some() && rooms.room(fine).is_some_and(|r| r.joined)
    })
    .await;
    assert_eq!(refused, Some((long.clone(), ErrorCode::RoomTooLong)));
    assert!(cy.rooms.room(&long).is_none());
    assert_eq!(cy.rooms.names().collect::<Vec<_>>(), [fine]);
}

/// Issue 13: the browser client over `wss://`, and `/ws` behind a token.
/// The echo is byte-exact through TLS; `/ws` refuses the upgrade without
/// a token (the browser sees only a failed connection) and with one joins
/// under the token's `sub`, whatever name the join sent.
#[wasm_bindgen_test]
async fn over_wss_echo_is_byte_exact_and_ws_joins_only_with_a_token() {
    let echo = within("the wss echo to open", Transport::connect(tls_ws_url()))
        .await
        .expect("the TLS server accepts (is its certificate trusted?)");
    for (i, len) in [0, 126, 65_536, 1 << 20].into_iter().enumerate() {
        let bytes = pattern(len, 0x51ed_270b ^ i as u32);
        echo.send(&Message::Binary(bytes.clone()))
            .expect("open socket sends");
        match within("the wss binary echo", echo.recv()).await {
            Some(Message::Binary(back)) => assert!(back == bytes, "the {len}-byte echo differs"),
            other => panic!("expected {len} binary bytes, got {other:?}"),
        }
    }

    let ws = rooms::rooms_url(tls_ws_url());
    let refused = within("the refusal", Transport::connect(&ws))
        .await
        .expect_err("/ws without a token is refused");
    assert!(
        matches!(refused, TransportError::ConnectFailed { code: 1006, .. }),
        "{refused:?}"
    );

    let mut client = RoomsClient::at(&rooms::with_token(&ws, tls_token()));
    client.connection.connect();
    client
        .until("the welcome with a token", |_, c| {
            matches!(c, Change::Welcome(_))
        })
        .await;
    client.joined("tls-lobby", "not-the-token's-name").await;
    let me = client.rooms.client_id().expect("welcomed");
    let room = client.rooms.room("tls-lobby").expect("joined");
    assert_eq!(
        room.members,
        [Member {
            id: me,
            name: "harness".into()
        }]
    );
    assert_eq!(
        room.lines.first().map(|l| l.text.as_str()),
        Some("joined as harness")
    );
}

/// The page's own JSON decoder (`JSON.parse`, not serde) reads every
/// protocol 2 message as serde does natively: the values below are what
/// `duplex_protocol`'s serde types give for the same text.
#[wasm_bindgen_test]
fn the_browser_decoder_reads_protocol_2() {
    let ada = Member {
        id: 7,
        name: "ada".into(),
    };
    let cases = [
        (
            r#"{"type":"welcome","version":2,"client_id":9007199254740991,"max_name_len":64,"max_room_len":64}"#,
            ServerMessage::Welcome {
                version: 2,
                client_id: duplex_protocol::MAX_CLIENT_ID,
                max_name_len: 64,
                max_room_len: 64,
            },
        ),
        (
            r#"{"type":"joined","room":"r","members":[{"id":7,"name":"ada"}],"member_count":1,"epoch":"e1","offset":0}"#,
            ServerMessage::Joined {
                room: "r".into(),
                members: vec![ada.clone()],
                member_count: 1,
                epoch: "e1".into(),
                offset: 0,
                recovered: None,
            },
        ),
        (
            r#"{"type":"joined","room":"r","members":[],"member_count":0,"epoch":"e\"2","offset":12,"recovered":true}"#,
            ServerMessage::Joined {
                room: "r".into(),
                members: Vec::new(),
                member_count: 0,
                epoch: "e\"2".into(),
                offset: 12,
                recovered: Some(true),
            },
        ),
        (
            r#"{"type":"joined","room":"r","members":[],"member_count":0,"epoch":"e3","offset":0,"recovered":false}"#,
            ServerMessage::Joined {
                room: "r".into(),
                members: Vec::new(),
                member_count: 0,
                epoch: "e3".into(),
                offset: 0,
                recovered: Some(false),
            },
        ),
        (
            r#"{"type":"message","room":"r","from":{"id":7,"name":"ada"},"text":"hi","offset":4}"#,
            ServerMessage::Message {
                room: "r".into(),
                from: Some(ada.clone()),
                text: "hi".into(),
                offset: 4,
            },
        ),
        (
            r#"{"type":"message","room":"r","from":null,"text":"push","offset":5}"#,
            ServerMessage::Message {
                room: "r".into(),
                from: None,
                text: "push".into(),
                offset: 5,
            },
        ),
        (
            r#"{"type":"history_reset","room":"r","epoch":"NEW","offset":3}"#,
            ServerMessage::HistoryReset {
                room: "r".into(),
                epoch: "NEW".into(),
                offset: 3,
            },
        ),
        (
            r#"{"type":"error","code":"unavailable","message":"try again","room":"r"}"#,
            ServerMessage::Error {
                code: ErrorCode::Unavailable,
                message: "try again".into(),
                room: Some("r".into()),
            },
        ),
        (
            r#"{"type":"error","code":"forbidden","message":"not this room","room":"r"}"#,
            ServerMessage::Error {
                code: ErrorCode::Forbidden,
                message: "not this room".into(),
                room: Some("r".into()),
            },
        ),
        (
            r#"{"type":"member_left","room":"r","member":{"id":7,"name":"ada"},"reason":"too_slow"}"#,
            ServerMessage::MemberLeft {
                room: "r".into(),
                member: ada,
                reason: LeaveReason::TooSlow,
            },
        ),
        (
            r#"{"type":"missed","count":3}"#,
            ServerMessage::Missed { count: 3 },
        ),
    ];
    for (text, want) in cases {
        assert_eq!(rooms::decode(text).as_ref(), Ok(&want), "{text}");
    }
    // Protocol 1's message and joined (no offset, no epoch) are refused,
    // as serde refuses them, rather than read with a made-up offset.
    for old in [
        r#"{"type":"message","room":"r","from":null,"text":"t"}"#,
        r#"{"type":"joined","room":"r","members":[],"member_count":0}"#,
        r#"{"type":"joined","room":"r","members":[],"member_count":0,"epoch":"e","offset":0,"recovered":"yes"}"#,
    ] {
        assert!(rooms::decode(old).is_err(), "{old}");
    }
}

/// Issue 11, part 4: a room's client keeps its place in the history
/// across a server restart. It rejoins by itself with `since`; with the
/// memory engine the restarted server has lost the history, and the chat
/// says messages may be missing; in the harness's Redis variant the
/// history survives, a message published to the other server of the
/// cluster while this one was down is replayed, and the chat says how
/// many were recovered.
#[wasm_bindgen_test]
async fn a_rejoin_after_a_server_restart_recovers_or_says_what_was_lost() {
    let room = "history-restart";
    let mut ada = RoomsClient::connected("ada").await;
    ada.joined(room, "ada").await;
    // A text and a binary publish: both come back with offsets, and both
    // move the room's position.
    ada.connection
        .send(Rooms::publish(room, "before the restart"))
        .expect("sent");
    let frame = binary::encode_publish(room, &[1, 2, 3]).expect("a short room");
    ada.connection.send(Message::Binary(frame)).expect("sent");
    ada.until("both publishes back", |r, _| {
        r.room(room).is_some_and(|r| {
            r.lines.iter().any(|l| l.text == "binary message, 3 B")
                && r.lines.iter().any(|l| l.text == "before the restart")
        })
    })
    .await;
    let before = ada
        .rooms
        .room(room)
        .and_then(|r| r.history.position())
        .cloned()
        .expect("a position after joined");
    assert!(before.offset >= 2, "{before:?}");

    // In the Redis variant, bob is on the cluster's other server, where
    // he stays while ada's server is down.
    let mut bob = match redis_url() {
        Some(_) => {
            let peer = deflate_off_url();
            let peer = peer.strip_suffix("/echo").unwrap_or(peer);
            let mut bob = RoomsClient::at(&format!("{peer}/ws"));
            bob.connection.connect();
            bob.joined(room, "bob").await;
            Some(bob)
        }
        None => None,
    };

    control("/server/stop").await;
    ada.until("ada's close handled", |r, _| {
        r.room(room).is_some_and(|r| !r.joined)
    })
    .await;
    // The greeting the page takes on the close rejoins since the last
    // message received.
    let Some(Message::Text(join)) = ada.rooms.greeting().pop() else {
        panic!("a text greeting");
    };
    let since = format!(
        r#""since":{{"epoch":"{}","offset":{}}}"#,
        before.epoch, before.offset
    );
    assert!(join.contains(&since), "{join} lacks {since}");
    if let Some(bob) = bob.as_mut() {
        bob.connection
            .send(Rooms::publish(room, "while ada was away"))
            .expect("sent");
        bob.until("bob's own message back", |r, _| {
            r.room(room)
                .is_some_and(|r| r.lines.iter().any(|l| l.text == "while ada was away"))
        })
        .await;
    }
    control("/server/start").await;

    let want = if redis_url().is_some() {
        "recovered 1 message"
    } else {
        "messages may be missing: history expired"
    };
    ada.until(&format!("\"{want}\" in ada's chat"), |r, _| {
        r.room(room)
            .is_some_and(|r| r.lines.iter().any(|l| l.text.starts_with(want)))
    })
    .await;
    let lines = ada.lines(room);
    if redis_url().is_some() {
        // The replayed message, then the count.
        let at = lines
            .iter()
            .position(|l| l.starts_with(want))
            .expect("shown");
        assert_eq!(lines[at - 1], "while ada was away", "{lines:#?}");
    } else {
        // The restarted server is another epoch: offsets start again, and
        // the first message in it is shown, not taken for a duplicate.
        ada.connection
            .send(Rooms::publish(room, "after the restart"))
            .expect("sent");
        ada.until("the first message after the restart", |r, _| {
            r.room(room)
                .is_some_and(|r| r.lines.iter().any(|l| l.text == "after the restart"))
        })
        .await;
        let after = ada
            .rooms
            .room(room)
            .and_then(|r| r.history.position())
            .cloned()
            .expect("a position");
        assert_ne!(after.epoch, before.epoch, "a restart of the memory engine");
    }
    let warnings = ada
        .rooms
        .room(room)
        .map(|r| {
            r.lines
                .iter()
                .filter(|l| l.author == Author::Warning)
                .count()
        })
        .unwrap_or_default();
    assert_eq!(warnings, usize::from(redis_url().is_none()), "{lines:#?}");
}
