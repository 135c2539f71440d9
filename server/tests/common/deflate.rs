//! A client that negotiates permessage-deflate (RFC 7692), built on the raw
//! client and `duplex_protocol::deflate` (tokio-tungstenite has no
//! deflate): it compresses what it is told to, in the frames it is told
//! to, and inflates the server's compressed messages each with a fresh
//! inflater, which is what `server_no_context_takeover` promises.

use std::net::SocketAddr;

use duplex_protocol::deflate::{Deflater, Inflater};

use super::{RawClient, RawFrame, WAIT, encode, op, tcp};

/// What Chromium offers on every WebSocket.
pub const CHROMIUM_OFFER: &str = "permessage-deflate; client_max_window_bits";

/// The answer Duplex gives to an offer without `server_max_window_bits`.
pub const ANSWER: &str =
    "permessage-deflate; server_no_context_takeover; client_no_context_takeover";

/// RSV1: the message is compressed.
pub const RSV1: u8 = 0b100;

/// The `Sec-WebSocket-Extensions` values of a 101 answer, one per line.
pub fn extensions(head: &str) -> Vec<String> {
    head.lines()
        .filter_map(|line| line.split_once(':'))
        .filter(|(name, _)| name.trim().eq_ignore_ascii_case("sec-websocket-extensions"))
        .map(|(_, value)| value.trim().to_string())
        .collect()
}

/// Connects to `path` offering `offer` (`None`: no extension header).
pub async fn connect_offering(addr: SocketAddr, path: &str, offer: Option<&str>) -> RawClient {
    let headers = offer
        .map(|offer| format!("Sec-WebSocket-Extensions: {offer}\r\n"))
        .unwrap_or_default();
    RawClient::handshake_with(tcp(addr).await, addr, path, &headers, &[]).await
}

/// A message as the client received it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Received {
    pub opcode: u8,
    pub payload: Vec<u8>,
    /// Whether it came compressed (RSV1 on its first frame).
    pub compressed: bool,
    /// The payload bytes it took on the wire.
    pub wire_len: usize,
}

/// A client with permessage-deflate negotiated.
pub struct DeflateClient {
    pub raw: RawClient,
    deflater: Deflater,
}

impl DeflateClient {
    /// Connects offering what Chromium offers; fails the test unless the
    /// server agreed with [`ANSWER`].
    pub async fn connect(addr: SocketAddr, path: &str) -> Self {
        let raw = connect_offering(addr, path, Some(CHROMIUM_OFFER)).await;
        assert_eq!(extensions(&raw.head), [ANSWER], "{}", raw.head);
        Self {
            raw,
            deflater: Deflater::new(1, 15),
        }
    }

    /// `payload` compressed as one message (no context takeover).
    pub fn compress(&mut self, payload: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        self.deflater.compress(payload, &mut out);
        out
    }

    /// Sends a data message, compressed or not, its wire payload cut into
    /// frames of `frame_size` bytes (0: one frame), with a ping after the
    /// first frame if `ping_inside`.
    pub async fn send(
        &mut self,
        opcode: u8,
        payload: &[u8],
        compressed: bool,
        frame_size: usize,
        ping_inside: bool,
    ) {
        let body = if compressed {
            self.compress(payload)
        } else {
            payload.to_vec()
        };
        self.raw
            .send(&frames(opcode, &body, compressed, frame_size, ping_inside))
            .await;
    }

    /// The next data message, inflated if it came compressed; pongs are
    /// skipped, anything else fails the test.
    pub async fn next_message(&mut self) -> Received {
        let mut message: Option<Received> = None;
        loop {
            let frame = self.raw.read_frame().await;
            match frame.opcode {
                op::PONG => continue,
                op::TEXT | op::BINARY => {
                    assert!(message.is_none(), "a new message inside another");
                    message = Some(Received {
                        opcode: frame.opcode,
                        compressed: frame.rsv & RSV1 != 0,
                        wire_len: frame.payload.len(),
                        payload: frame.payload.clone(),
                    });
                    assert_eq!(frame.rsv & !RSV1, 0, "RSV2/RSV3 set: {frame:?}");
                }
                op::CONTINUATION => {
                    assert_eq!(frame.rsv, 0, "RSV bits on a continuation");
                    let current = message.as_mut().expect("a continuation outside a message");
                    current.payload.extend_from_slice(&frame.payload);
                    current.wire_len += frame.payload.len();
                }
                _ => panic!("expected a data message, got {frame:?}"),
            }
            if frame.fin {
                let mut done = message.take().expect("a message");
                if done.compressed {
                    done.payload = inflate(&done.payload);
                }
                return done;
            }
        }
    }

    /// Asserts the server closes with `code` (any reason).
    pub async fn expect_close_code(&mut self, code: u16) {
        expect_close_code(&mut self.raw, code).await;
    }
}

/// Inflates one compressed message payload with a fresh inflater.
pub fn inflate(compressed: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    Inflater::new()
        .inflate(compressed, usize::MAX / 2, &mut out)
        .expect("the server's compressed message inflates with a fresh inflater");
    out
}

/// A message's wire payload `body` as client frames: RSV1 on the first if
/// `compressed`, cut every `frame_size` bytes (0: one frame), a ping after
/// the first if `ping_inside`.
pub fn frames(
    opcode: u8,
    body: &[u8],
    compressed: bool,
    frame_size: usize,
    ping_inside: bool,
) -> Vec<u8> {
    let pieces: Vec<&[u8]> = if frame_size == 0 || body.is_empty() {
        vec![body]
    } else {
        body.chunks(frame_size).collect()
    };
    let mut out = Vec::new();
    for (i, piece) in pieces.iter().enumerate() {
        let fin = i == pieces.len() - 1;
        let rsv = if i == 0 && compressed { RSV1 } else { 0 };
        let opcode = if i == 0 { opcode } else { op::CONTINUATION };
        out.extend(encode(fin, rsv, opcode, piece, Some(super::MASK)));
        if i == 0 && ping_inside {
            out.extend(encode(true, 0, op::PING, b"inside", Some(super::MASK)));
        }
    }
    out
}

/// Asserts the next frame is a Close with `code`, skipping data and pongs
/// still in flight before it.
pub async fn expect_close_code(raw: &mut RawClient, code: u16) {
    loop {
        let frame: RawFrame = raw
            .read_frame_within(WAIT)
            .await
            .expect("the connection ended without a Close");
        if frame.opcode == op::CLOSE {
            assert_eq!(frame.close().0, code, "{frame:?}");
            return;
        }
    }
}
