//! Shared helpers for the integration tests: start the real server with
//! [`duplex_server::run`] on an ephemeral loopback port, talk to it with a
//! real WebSocket client (tokio-tungstenite), with a raw frame-level client
//! for what a conforming client never sends (unmasked frames, no pongs), and
//! with hand-written HTTP over a plain `TcpStream`.
//!
//! Every wait here is bounded: a helper that expects an event panics with a
//! message if it does not happen within [`WAIT`].

// Each test binary uses its own subset of these helpers, and `pub` here
// means "for the test files", not an API: the crate-wide lints for a
// library's public surface do not apply.
#![allow(dead_code, unreachable_pub)]

use std::net::SocketAddr;
use std::time::Duration;

pub mod admission;
pub mod deflate;
pub mod metrics;
pub mod process;
pub mod redis;
pub mod rooms;
pub mod tls;

use duplex_protocol::frame::{self, Header, OpCode};
use duplex_server::{Config, Error};
use futures_util::StreamExt;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;
use tokio::time::{Instant, timeout};
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, WebSocketConfig};
use tokio_tungstenite::tungstenite::{Error as WsError, Message};
use tokio_tungstenite::{WebSocketStream, client_async_with_config};
use tokio_util::sync::CancellationToken;

/// The longest any single expected event may take before the test fails.
/// Generous so a loaded 2-core CI machine does not flake; a passing test
/// never waits this long.
pub const WAIT: Duration = Duration::from_secs(5);

/// Interval between two polls of `/healthz` while waiting for a count.
pub const POLL: Duration = Duration::from_millis(10);

/// Opcodes of RFC 6455, section 5.2, for the raw client, as wire values:
/// it also sends the reserved ones.
pub mod op {
    use duplex_protocol::frame::OpCode;

    pub const CONTINUATION: u8 = OpCode::Continuation.bits();
    pub const TEXT: u8 = OpCode::Text.bits();
    pub const BINARY: u8 = OpCode::Binary.bits();
    pub const CLOSE: u8 = OpCode::Close.bits();
    pub const PING: u8 = OpCode::Ping.bits();
    pub const PONG: u8 = OpCode::Pong.bits();
}

/// A configuration for tests: the defaults, with timeouts long enough never
/// to fire by accident in a test about something else, and short enough
/// that a stuck connection does not stall the suite.
pub fn config() -> Config {
    let mut config = Config::default();
    config.handshake_timeout = Duration::from_secs(5);
    config.ping_interval = Duration::from_secs(10);
    config.idle_timeout = Duration::from_secs(30);
    config.write_timeout = Duration::from_secs(5);
    config.close_timeout = Duration::from_secs(1);
    config.shutdown_grace = Duration::from_secs(3);
    config
}

/// The smallest `max_outbound_buffer` that [`Config::validate`] accepts
/// with the other fields of `config`: tests that want a client throttled
/// early use it, whatever margin above `max_message_size` the server
/// requires.
pub fn smallest_valid_outbound(config: &Config) -> usize {
    let with = |outbound: usize| {
        let mut candidate = config.clone();
        candidate.max_outbound_buffer = outbound;
        candidate.validate().is_ok()
    };
    let mut invalid = config.max_message_size;
    if with(invalid) {
        return invalid;
    }
    let mut valid = invalid + (16 << 20);
    assert!(with(valid), "no valid outbound buffer size for {config:?}");
    // Acceptance is monotonic in the buffer size: bisect.
    while valid - invalid > 1 {
        let middle = invalid + (valid - invalid) / 2;
        if with(middle) {
            valid = middle;
        } else {
            invalid = middle;
        }
    }
    valid
}

/// The real server, running `run` in a task on `127.0.0.1:0`. Dropping it
/// starts the shutdown.
pub struct TestServer {
    pub addr: SocketAddr,
    shutdown: CancellationToken,
    handle: JoinHandle<Result<(), Error>>,
}

impl TestServer {
    /// Binds an ephemeral port and starts serving it with `config`.
    pub async fn start(config: Config) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("listener address");
        let shutdown = CancellationToken::new();
        let handle = tokio::spawn(duplex_server::run(
            listener,
            config,
            shutdown.clone().cancelled_owned(),
        ));
        Self {
            addr,
            shutdown,
            handle,
        }
    }

    /// `ws://127.0.0.1:PORT{path}`.
    pub fn url(&self, path: &str) -> String {
        format!("ws://{}{path}", self.addr)
    }

    /// Resolves the shutdown future given to `run`.
    pub fn shutdown(&self) {
        self.shutdown.cancel();
    }

    /// Waits for `run` to return, failing the test if it takes longer than
    /// `within` or panicked.
    pub async fn finished(&mut self, within: Duration) -> Result<(), Error> {
        timeout(within, &mut self.handle)
            .await
            .unwrap_or_else(|_| panic!("run did not return within {within:?}"))
            .expect("run panicked")
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// A WebSocket client over a plain TCP connection.
pub type Client = WebSocketStream<TcpStream>;

/// Connects a TCP socket to `addr` with TCP_NODELAY, within [`WAIT`].
pub async fn tcp(addr: SocketAddr) -> TcpStream {
    let tcp = timeout(WAIT, TcpStream::connect(addr))
        .await
        .expect("TCP connect timed out")
        .expect("TCP connect");
    tcp.set_nodelay(true).expect("TCP_NODELAY");
    tcp
}

/// Opens a WebSocket connection to `path`, failing the test if the
/// handshake does not succeed.
pub async fn connect(addr: SocketAddr, path: &str) -> Client {
    try_connect(addr, path, None)
        .await
        .unwrap_or_else(|error| panic!("WebSocket handshake to {path} failed: {error}"))
}

/// Opens a WebSocket connection with the client settings `config`,
/// returning the handshake error (for example a 503) instead of failing.
pub async fn try_connect(
    addr: SocketAddr,
    path: &str,
    config: Option<WebSocketConfig>,
) -> Result<Client, WsError> {
    let tcp = tcp(addr).await;
    let url = format!("ws://{addr}{path}");
    let (ws, _response) = timeout(WAIT, client_async_with_config(url, tcp, config))
        .await
        .expect("WebSocket handshake timed out")?;
    Ok(ws)
}

/// The next message of any kind, within [`WAIT`].
pub async fn next_message(ws: &mut Client) -> Message {
    match timeout(WAIT, ws.next()).await {
        Err(_) => panic!("no message within {WAIT:?}"),
        Ok(None) => panic!("the connection ended while a message was expected"),
        Ok(Some(Err(error))) => panic!("read failed while a message was expected: {error}"),
        Ok(Some(Ok(message))) => message,
    }
}

/// The next message that is not a ping or a pong (the server may ping a
/// client at any time).
pub async fn next_non_control(ws: &mut Client) -> Message {
    for _ in 0..100 {
        match next_message(ws).await {
            Message::Ping(_) | Message::Pong(_) => {}
            message => return message,
        }
    }
    panic!("100 pings or pongs in a row and nothing else");
}

/// Sends `message` and asserts it comes back byte for byte, with the same
/// type (text or binary).
pub async fn assert_echo(ws: &mut Client, message: Message) {
    use futures_util::SinkExt;
    timeout(WAIT, ws.send(message.clone()))
        .await
        .expect("send timed out")
        .expect("send");
    let reply = next_non_control(ws).await;
    assert_same_message(&reply, &message);
}

/// Asserts two data messages are equal, without printing megabytes when
/// they are not.
pub fn assert_same_message(got: &Message, expected: &Message) {
    let kind = |m: &Message| match m {
        Message::Text(_) => "text",
        Message::Binary(_) => "binary",
        Message::Ping(_) => "ping",
        Message::Pong(_) => "pong",
        Message::Close(_) => "close",
        Message::Frame(_) => "frame",
    };
    assert_eq!(kind(got), kind(expected), "message type differs");
    let (got, expected) = (got.clone().into_data(), expected.clone().into_data());
    assert_eq!(got.len(), expected.len(), "message length differs");
    if let Some(at) = got.iter().zip(expected.iter()).position(|(a, b)| a != b) {
        panic!(
            "message differs at byte {at}: got {:#04x}, expected {:#04x}",
            got[at], expected[at]
        );
    }
}

/// Asserts the next non-ping message is a Close frame with exactly `code`
/// and `reason`, then that the connection ends.
pub async fn expect_close(ws: &mut Client, code: u16, reason: &str) {
    match next_non_control(ws).await {
        Message::Close(Some(frame)) => {
            assert_eq!(
                (u16::from(frame.code), frame.reason.as_str()),
                (code, reason),
                "wrong close code or reason"
            );
        }
        other => panic!("expected Close {code} {reason:?}, got {other:?}"),
    }
    expect_end(ws).await;
}

/// Completes a client-initiated close handshake: sends Close 1000, expects
/// the server's Close 1000 back, then the end of the connection.
pub async fn close(ws: &mut Client) {
    use futures_util::SinkExt;
    let frame = CloseFrame {
        code: CloseCode::Normal,
        reason: "done".into(),
    };
    timeout(WAIT, ws.send(Message::Close(Some(frame))))
        .await
        .expect("sending Close timed out")
        .expect("send Close");
    expect_close(ws, 1000, "done").await;
}

/// Reads until the connection ends (cleanly or by a reset), within
/// [`WAIT`]; any message on the way fails the test. Reading also flushes
/// the client's own Close reply, completing the handshake.
pub async fn expect_end(ws: &mut Client) {
    match timeout(WAIT, ws.next()).await {
        Err(_) => panic!("the connection did not end within {WAIT:?}"),
        Ok(None | Some(Err(_))) => {}
        Ok(Some(Ok(message))) => panic!("expected the connection to end, got {message:?}"),
    }
}

/// A frame as the raw client reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawFrame {
    pub fin: bool,
    /// RSV1..3 as the three bits 0b100, 0b010, 0b001.
    pub rsv: u8,
    pub opcode: u8,
    pub masked: bool,
    pub payload: Vec<u8>,
}

impl RawFrame {
    /// The code and reason of a Close frame.
    pub fn close(&self) -> (u16, String) {
        assert_eq!(self.opcode, op::CLOSE, "not a Close frame: {self:?}");
        assert!(self.payload.len() >= 2, "Close frame without a code");
        let code = u16::from_be_bytes([self.payload[0], self.payload[1]]);
        let reason = String::from_utf8(self.payload[2..].to_vec()).expect("UTF-8 close reason");
        (code, reason)
    }
}

/// The mask the raw client uses by default: nonzero in every byte so an
/// unmasked payload would be visibly wrong.
pub const MASK: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];

/// Encodes one client frame, masked with [`MASK`].
pub fn frame(fin: bool, opcode: u8, payload: &[u8]) -> Vec<u8> {
    encode(fin, 0, opcode, payload, Some(MASK))
}

/// Encodes one frame exactly as told: RSV bits, opcode, mask or none.
pub fn encode(fin: bool, rsv: u8, opcode: u8, payload: &[u8], mask: Option<[u8; 4]>) -> Vec<u8> {
    let header = Header {
        fin,
        rsv,
        opcode_bits: opcode,
        mask,
        ..Header::new(OpCode::Binary, payload.len() as u64)
    };
    let mut out = Vec::new();
    frame::encode_frame(&mut out, &header, payload);
    out
}

/// The payload of a Close frame.
pub fn close_payload(code: u16, reason: &str) -> Vec<u8> {
    let mut payload = code.to_be_bytes().to_vec();
    payload.extend_from_slice(reason.as_bytes());
    payload
}

/// The example key of RFC 6455, section 1.3.
pub const KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";

/// A WebSocket upgrade request for `path`, as bytes.
pub fn upgrade_request(addr: SocketAddr, path: &str) -> Vec<u8> {
    upgrade_request_with(addr, path, "")
}

/// The same with `headers` (whole lines, each ending in `\r\n`) added.
pub fn upgrade_request_with(addr: SocketAddr, path: &str, headers: &str) -> Vec<u8> {
    format!(
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: {KEY}\r\nSec-WebSocket-Version: 13\r\n{headers}\r\n"
    )
    .into_bytes()
}

/// Reads from `tcp` into `buffer` until it holds an HTTP answer's head
/// (through the blank line); returns where the head ends. What came after
/// it stays in `buffer`.
pub async fn read_head(tcp: &mut TcpStream, buffer: &mut Vec<u8>) -> usize {
    loop {
        if let Some(at) = find(buffer, b"\r\n\r\n") {
            return at + 4;
        }
        let mut chunk = [0u8; 1024];
        let n = timeout(WAIT, tcp.read(&mut chunk))
            .await
            .expect("no answer's head in time")
            .expect("read the answer's head");
        assert!(
            n > 0,
            "connection closed before the answer's head: {buffer:?}"
        );
        buffer.extend_from_slice(&chunk[..n]);
        assert!(buffer.len() < 64 * 1024, "answer's head too long");
    }
}

/// A frame-level client: does the handshake by hand, then writes whatever
/// bytes it is told and parses the server's frames itself. It never answers
/// a ping or a close on its own.
pub struct RawClient {
    pub tcp: TcpStream,
    /// The server's 101 answer: status line and headers.
    pub head: String,
    /// Bytes read but not yet parsed.
    buffer: Vec<u8>,
}

impl RawClient {
    /// Connects and completes the handshake to `path`.
    pub async fn connect(addr: SocketAddr, path: &str) -> Self {
        Self::handshake(tcp(addr).await, addr, path, &[]).await
    }

    /// Sends the upgrade request followed immediately by `early` (frames
    /// sent before the 101 arrives), checks the 101 and its accept key,
    /// and keeps whatever the server sent after the response.
    pub async fn handshake(tcp: TcpStream, addr: SocketAddr, path: &str, early: &[u8]) -> Self {
        Self::handshake_with(tcp, addr, path, "", early).await
    }

    /// [`RawClient::handshake`] with `headers` added to the request.
    pub async fn handshake_with(
        mut tcp: TcpStream,
        addr: SocketAddr,
        path: &str,
        headers: &str,
        early: &[u8],
    ) -> Self {
        let mut request = upgrade_request_with(addr, path, headers);
        request.extend_from_slice(early);
        timeout(WAIT, tcp.write_all(&request))
            .await
            .expect("request write timed out")
            .expect("request write");
        let mut buffer = Vec::new();
        let end = read_head(&mut tcp, &mut buffer).await;
        let head = String::from_utf8_lossy(&buffer[..end]).into_owned();
        assert!(
            head.starts_with("HTTP/1.1 101 "),
            "expected 101, got: {head}"
        );
        let accept = derive_accept_key(KEY.as_bytes());
        assert!(
            head.to_ascii_lowercase().contains(&format!(
                "sec-websocket-accept: {}",
                accept.to_ascii_lowercase()
            )),
            "wrong or missing Sec-WebSocket-Accept in: {head}"
        );
        buffer.drain(..end);
        Self { tcp, head, buffer }
    }

    /// Writes raw bytes (one or more encoded frames).
    pub async fn send(&mut self, bytes: &[u8]) {
        timeout(WAIT, self.tcp.write_all(bytes))
            .await
            .expect("write timed out")
            .expect("write");
    }

    /// The next frame from the server, or `None` when the connection ends
    /// (EOF or reset); fails the test if nothing comes within `within`.
    pub async fn read_frame_within(&mut self, within: Duration) -> Option<RawFrame> {
        let deadline = Instant::now() + within;
        loop {
            if let Some((frame, used)) = parse(&self.buffer) {
                self.buffer.drain(..used);
                return Some(frame);
            }
            let mut chunk = vec![0u8; 64 * 1024];
            let read = tokio::time::timeout_at(deadline, self.tcp.read(&mut chunk))
                .await
                .unwrap_or_else(|_| panic!("no frame from the server within {within:?}"));
            match read {
                Ok(0) | Err(_) => {
                    assert!(
                        self.buffer.is_empty(),
                        "connection ended inside a frame: {} bytes left",
                        self.buffer.len()
                    );
                    return None;
                }
                Ok(n) => self.buffer.extend_from_slice(&chunk[..n]),
            }
        }
    }

    /// The next frame, within [`WAIT`]; fails the test if the connection
    /// ends instead.
    pub async fn read_frame(&mut self) -> RawFrame {
        self.read_frame_within(WAIT)
            .await
            .expect("connection ended while a frame was expected")
    }

    /// Asserts the next frame is Close with `code` and `reason`, sent
    /// unmasked by the server.
    pub async fn expect_close(&mut self, code: u16, reason: &str) {
        let frame = self.read_frame().await;
        assert_eq!(frame.opcode, op::CLOSE, "expected Close, got {frame:?}");
        assert!(!frame.masked, "a server must not mask its frames");
        assert_eq!(frame.close(), (code, reason.to_owned()));
    }

    /// Asserts the connection ends (EOF or reset) within [`WAIT`] with no
    /// further frame.
    pub async fn expect_end(&mut self) {
        if let Some(frame) = self.read_frame_within(WAIT).await {
            panic!("expected the connection to end, got {frame:?}");
        }
    }
}

/// Parses one server frame at the start of `buffer`, whatever it breaks
/// (the tests check that themselves): the frame and the bytes it used, or
/// `None` if it is not all there yet.
fn parse(buffer: &[u8]) -> Option<(RawFrame, usize)> {
    let (header, at) = Header::parse(buffer)?;
    let len = usize::try_from(header.payload_len).expect("frame length fits usize");
    let end = at.checked_add(len).expect("frame length fits usize");
    let mut payload = buffer.get(at..end)?.to_vec();
    if let Some(mask) = header.mask {
        frame::apply_mask(&mut payload, mask);
    }
    let frame = RawFrame {
        fin: header.fin,
        rsv: header.rsv,
        opcode: header.opcode_bits,
        masked: header.mask.is_some(),
        payload,
    };
    Some((frame, end))
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// An HTTP response read off the wire.
#[derive(Debug)]
pub struct HttpResponse {
    pub status: u16,
    /// The status line and headers, as text.
    pub head: String,
    pub body: Vec<u8>,
}

impl HttpResponse {
    /// The value of header `name` (case-insensitive), if present.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.head.lines().skip(1).find_map(|line| {
            let (key, value) = line.split_once(':')?;
            key.trim()
                .eq_ignore_ascii_case(name)
                .then_some(value.trim())
        })
    }

    pub fn body_text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// Writes `request` on a new connection and reads the response until the
/// server closes the connection (send `Connection: close`), within [`WAIT`].
pub async fn http(addr: SocketAddr, request: &[u8]) -> HttpResponse {
    let mut tcp = tcp(addr).await;
    timeout(WAIT, tcp.write_all(request))
        .await
        .expect("request write timed out")
        .expect("request write");
    let mut raw = Vec::new();
    timeout(WAIT, tcp.read_to_end(&mut raw))
        .await
        .expect("the server did not answer and close within the time limit")
        .expect("read response");
    parse_response(&raw)
}

/// Parses a whole HTTP/1.1 response.
pub fn parse_response(raw: &[u8]) -> HttpResponse {
    let end = find(raw, b"\r\n\r\n").unwrap_or_else(|| {
        panic!(
            "no complete HTTP response head in {:?}",
            String::from_utf8_lossy(raw)
        )
    });
    let head = String::from_utf8_lossy(&raw[..end]).into_owned();
    let status = head
        .strip_prefix("HTTP/1.1 ")
        .and_then(|rest| rest.get(..3))
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("bad status line in {head:?}"));
    HttpResponse {
        status,
        head,
        body: raw[end + 4..].to_vec(),
    }
}

/// `GET path` with `Connection: close`.
pub async fn get(addr: SocketAddr, path: &str) -> HttpResponse {
    let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    http(addr, request.as_bytes()).await
}

/// The `/healthz` document.
pub async fn health(addr: SocketAddr) -> serde_json::Value {
    let response = get(addr, "/healthz").await;
    assert_eq!(response.status, 200, "healthz: {}", response.head);
    serde_json::from_slice(&response.body).expect("healthz body is JSON")
}

/// The open-connection gauge of `/healthz`.
pub async fn open_connections(addr: SocketAddr) -> u64 {
    health(addr).await["connections"]
        .as_u64()
        .expect("connections is a number")
}

/// Polls `/healthz` until it reports `expected` open connections; fails
/// the test with the last count seen after `within`.
pub async fn wait_for_connections(addr: SocketAddr, expected: u64, within: Duration) {
    let deadline = Instant::now() + within;
    let mut seen = open_connections(addr).await;
    while seen != expected {
        assert!(
            Instant::now() < deadline,
            "healthz still reports {seen} open connections after {within:?}, expected {expected}"
        );
        tokio::time::sleep(POLL).await;
        seen = open_connections(addr).await;
    }
}

/// `len` pseudo-random bytes, different for each `seed`.
pub fn bytes(len: usize, seed: u64) -> Vec<u8> {
    let mut state = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    (0..len)
        .map(|_| {
            // xorshift64: cheap, deterministic, covers every byte value.
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 24) as u8
        })
        .collect()
}

/// Exactly `len` bytes of valid UTF-8 mixing 1-, 2-, 3- and 4-byte
/// characters, different for each `seed`.
pub fn text(len: usize, seed: u64) -> String {
    const CHARS: [char; 8] = ['a', 'Z', ' ', 'é', 'ß', '€', '✓', '🦀'];
    let mut out = String::with_capacity(len);
    for b in bytes(len, seed) {
        let c = CHARS[usize::from(b) % CHARS.len()];
        if out.len() + c.len_utf8() > len {
            break;
        }
        out.push(c);
    }
    while out.len() < len {
        out.push('.');
    }
    out
}
