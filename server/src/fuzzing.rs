//! Entry points for the cargo-fuzz targets in `fuzz/` (feature `fuzzing`,
//! off in every normal build): each takes the fuzzer's bytes, runs one of
//! the server's own crate-private parsers on them, and asserts what must
//! hold for any input. A panic is a finding; `docs/fuzzing.md` says how to
//! turn one into a regression test.
//!
//! The parsers stay `pub(crate)`; only these wrappers are public, and
//! hidden. Targets that need only public APIs (the protocol crate's) keep
//! their checks in `fuzz/fuzz_targets/` instead.
//!
//! Inputs are split by small fixed rules ([`Input`]), so a seed can be
//! written by hand: `docs/fuzzing.md` gives each target's layout.

use std::cell::RefCell;
use std::mem::MaybeUninit;
use std::time::Instant;

use clap::{Args, FromArgMatches};
use duplex_protocol::deflate::{self, Deflater, MAX_WINDOW_BITS, MIN_COMPRESS_WINDOW_BITS};
use duplex_protocol::frame::{Header, OpCode, encode_frame};
use hyper::header::{self, HeaderMap, HeaderName, HeaderValue};
use redis::{PushInfo, PushKind, Value};
use tokio::io::ReadBuf;

use crate::admission::{Admission, Refusal};
use crate::cluster;
use crate::config::{Config, parse_size};
use crate::connection::Service;
use crate::deflate::{Compression, DeflateError, WINDOWS};
use crate::http;
use crate::rooms::Post;
use crate::wire::Inflate;
use crate::wire::frame_scan::{FrameScan, LARGE_FRAME};

/// The fuzzer's bytes, read from the front.
struct Input<'a>(&'a [u8]);

impl<'a> Input<'a> {
    /// The next byte, 0 once the input is used up.
    fn byte(&mut self) -> u8 {
        match self.0.split_first() {
            Some((&first, rest)) => {
                self.0 = rest;
                first
            }
            None => 0,
        }
    }

    /// Up to `n` bytes.
    fn take(&mut self, n: usize) -> &'a [u8] {
        let (taken, rest) = self.0.split_at(n.min(self.0.len()));
        self.0 = rest;
        taken
    }

    /// A list of up to 15 piece sizes (1 to 256 bytes each, the last piece
    /// takes the rest): where a stream is cut into reads.
    fn cuts(&mut self) -> Vec<usize> {
        let count = usize::from(self.byte() % 16);
        self.take(count)
            .iter()
            .map(|&size| usize::from(size) + 1)
            .collect()
    }
}

/// `stream` cut at `cuts` (the last piece is the rest, possibly empty).
fn pieces<'a>(mut stream: &'a [u8], cuts: &[usize]) -> Vec<&'a [u8]> {
    let mut out = Vec::with_capacity(cuts.len() + 1);
    for &size in cuts {
        let (piece, rest) = stream.split_at(size.min(stream.len()));
        out.push(piece);
        stream = rest;
    }
    out.push(stream);
    out
}

// ---------------------------------------------------------------------------
// The handshake: headers before the upgrade.

/// Header names a one-character name stands for, so the fuzzer reaches the
/// headers the handshake reads without spelling them.
const KNOWN_HEADERS: [HeaderName; 6] = [
    header::CONNECTION,
    header::UPGRADE,
    header::SEC_WEBSOCKET_EXTENSIONS,
    header::USER_AGENT,
    header::SEC_WEBSOCKET_VERSION,
    header::SEC_WEBSOCKET_KEY,
];

/// The request headers in `data`: `name:value` lines; a name of one digit
/// 0-5 is one of [`KNOWN_HEADERS`]. Lines hyper would refuse (a bad name or
/// value) are skipped, repeated names are all kept, in order.
fn header_map(data: &[u8]) -> HeaderMap {
    let mut headers = HeaderMap::new();
    for line in data.split(|&b| b == b'\n') {
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            continue;
        };
        let (name, value) = (&line[..colon], line[colon + 1..].trim_ascii());
        let name = match name {
            [digit @ b'0'..=b'5'] => KNOWN_HEADERS[usize::from(digit - b'0')].clone(),
            _ => match HeaderName::from_bytes(name) {
                Ok(name) => name,
                Err(_) => continue,
            },
        };
        if let Ok(value) = HeaderValue::from_bytes(value) {
            headers.append(name, value);
        }
    }
    headers
}

/// The handshake checks before the upgrade (`http.rs`) and the
/// permessage-deflate negotiation on any request headers.
///
/// Asserts: `Connection`/`Upgrade` are matched without case; a broken
/// Safari is never offered deflate; an agreement's answer is a valid header
/// value (the 101 would otherwise go out without it while the server
/// compresses), reads back as the same agreement, and names a window the
/// compressor pool has.
pub fn handshake(data: &[u8]) {
    let headers = header_map(data);
    let upgrade = http::is_websocket_upgrade(&headers);
    let mut shouted = HeaderMap::new();
    for (name, value) in &headers {
        if let Ok(value) = HeaderValue::from_bytes(&value.as_bytes().to_ascii_uppercase()) {
            shouted.append(name.clone(), value);
        }
    }
    assert_eq!(
        http::is_websocket_upgrade(&shouted),
        upgrade,
        "Connection and Upgrade are case-insensitive"
    );

    let agreed = http::negotiate_deflate(&headers);
    if headers
        .get(header::USER_AGENT)
        .is_some_and(|agent| http::is_broken_safari(agent.as_bytes()))
    {
        assert_eq!(agreed, None, "Safari 15.0-15.3 is declined");
    }
    let offers: Vec<&[u8]> = headers
        .get_all(header::SEC_WEBSOCKET_EXTENSIONS)
        .iter()
        .map(HeaderValue::as_bytes)
        .collect();
    let plain = deflate::negotiate(offers.iter().copied());
    let upper: Vec<Vec<u8>> = offers.iter().map(|o| o.to_ascii_uppercase()).collect();
    assert_eq!(
        deflate::negotiate(upper.iter().map(Vec::as_slice)),
        plain,
        "extension names and parameters are case-insensitive"
    );
    if let Some(agreement) = plain {
        let answer = agreement.response();
        assert!(
            HeaderValue::from_str(&answer).is_ok(),
            "the answer {answer:?} is a header value"
        );
        assert_eq!(
            deflate::negotiate([answer.as_bytes()]),
            Some(agreement),
            "the answer reads back as the agreement"
        );
        let bits = agreement.compress_window_bits();
        assert!((MIN_COMPRESS_WINDOW_BITS..=MAX_WINDOW_BITS).contains(&bits));
        assert!(Compression::new(&agreement, 0).window_index() < WINDOWS);
    }
}

// ---------------------------------------------------------------------------
// Frames: the scan and the inflater.

/// What a [`FrameScan`] answers.
fn answers(scan: &FrameScan) -> (bool, bool) {
    (scan.at_message_boundary(), scan.saw_large_frame())
}

/// The same answers for `stream` read from its start by a plain loop over
/// whole frames: the model the scan must agree with.
fn model(mut stream: &[u8]) -> (bool, bool) {
    let (mut fragmented, mut large) = (false, false);
    loop {
        if stream.is_empty() {
            return (!fragmented, large);
        }
        let Some((header, len)) = Header::parse(stream) else {
            return (false, large);
        };
        match header.opcode() {
            Some(OpCode::Text | OpCode::Binary) => fragmented = !header.fin,
            Some(OpCode::Continuation) if header.fin => fragmented = false,
            _ => {}
        }
        large |= header.payload_len > LARGE_FRAME;
        let rest = &stream[len..];
        match usize::try_from(header.payload_len) {
            Ok(payload) if payload <= rest.len() => stream = &rest[payload..],
            _ => return (false, large),
        }
    }
}

/// `wire::frame_scan`: `[cuts][stream]`. The stream is fed in the pieces
/// the cuts make; after each piece the scan's answers must equal those of
/// a scan fed everything so far at once, and those of [`model`].
pub fn frame_scan(data: &[u8]) {
    let mut input = Input(data);
    let cuts = input.cuts();
    let stream = input.0;
    let mut scan = FrameScan::default();
    let mut fed = 0;
    for piece in pieces(stream, &cuts) {
        scan.feed(piece);
        fed += piece.len();
        let mut whole = FrameScan::default();
        whole.feed(&stream[..fed]);
        assert_eq!(answers(&scan), answers(&whole), "after {fed} bytes");
        assert_eq!(answers(&scan), model(&stream[..fed]), "after {fed} bytes");
    }
}

/// The message limits the inflate target picks from (`--max-message-size`,
/// and the frame limit the same or smaller): small, so a compression bomb
/// reaches them within the fuzzer's input sizes.
const INFLATE_LIMITS: [usize; 6] = [1, 125, 1000, 4096, 16 * 1024, 100_000];

/// What tungstenite would read: `stream` through `inflate`, in reads cut
/// at `cuts`, handed on `out` bytes at a time. Asserts progress: a call
/// that has output to give and room for it gives some, and no input is
/// left untaken at the end (the Wire would wait for the peer with it).
fn transform(
    inflate: &mut Inflate,
    stream: &[u8],
    cuts: &[usize],
    out: usize,
) -> Result<Vec<u8>, DeflateError> {
    let mut reads = pieces(stream, cuts).into_iter();
    let mut pending: Vec<u8> = Vec::new();
    let mut result = Vec::new();
    let mut storage = vec![MaybeUninit::uninit(); out];
    let mut ended = false;
    loop {
        let mut fresh = false;
        if !ended {
            match reads.next() {
                Some(read) => {
                    pending.extend_from_slice(read);
                    fresh = !read.is_empty();
                }
                None => ended = true,
            }
        }
        let had_output = inflate.has_output();
        let mut buf = ReadBuf::uninit(&mut storage);
        let used = inflate.fill(&mut pending, &mut buf)?;
        assert!(used <= pending.len(), "used {used} of {}", pending.len());
        pending.drain(..used);
        let filled = buf.filled().len();
        result.extend_from_slice(buf.filled());
        if had_output {
            assert!(filled > 0, "has_output() but nothing came out");
        }
        if ended && filled == 0 && used == 0 && !fresh && !inflate.has_output() {
            assert!(
                pending.is_empty(),
                "{} input bytes never taken",
                pending.len()
            );
            return Ok(result);
        }
    }
}

/// One message as a client sends it: `body` in frames of the sizes `cuts`
/// makes, the first with RSV1 (compressed), masked with `key`.
fn compressed_frames(text: bool, body: &[u8], cuts: &[usize], key: [u8; 4]) -> Vec<u8> {
    let parts = pieces(body, cuts);
    let mut out = Vec::new();
    for (i, part) in parts.iter().enumerate() {
        let opcode = match (i, text) {
            (0, true) => OpCode::Text,
            (0, false) => OpCode::Binary,
            _ => OpCode::Continuation,
        };
        let header = Header {
            fin: i + 1 == parts.len(),
            rsv: if i == 0 { 0b100 } else { 0 },
            ..Header::new(opcode, part.len() as u64).masked(key)
        };
        encode_frame(&mut out, &header, part);
    }
    out
}

/// The one message in a plain frame stream the inflater made, checked
/// frame by frame: opcode then continuations, FIN only on the last, no
/// RSV, a zero mask, at most `chunk` bytes each.
fn plain_message(mut stream: &[u8], text: bool, chunk: usize) -> Vec<u8> {
    let mut message = Vec::new();
    let mut first = true;
    let mut done = false;
    while !stream.is_empty() {
        assert!(!done, "bytes after the message's last frame");
        let Some((header, len)) = Header::parse(stream) else {
            panic!("a cut frame header in the inflater's output");
        };
        let want = match (first, text) {
            (true, true) => OpCode::Text,
            (true, false) => OpCode::Binary,
            (false, _) => OpCode::Continuation,
        };
        assert_eq!(header.opcode(), Some(want));
        assert_eq!((header.rsv, header.mask), (0, Some([0; 4])));
        let payload = usize::try_from(header.payload_len).unwrap_or(usize::MAX);
        assert!(payload <= chunk, "a plain frame of {payload} > {chunk}");
        let payload = stream
            .get(len..len + payload)
            .unwrap_or_else(|| panic!("a cut frame in the inflater's output"));
        message.extend_from_slice(payload);
        stream = &stream[len + payload.len()..];
        first = false;
        done = header.fin;
    }
    message
}

/// `wire::inflate`: `[mode][limit][out size][cuts][key, 4][...]`.
///
/// - mode 0: the rest is a raw client byte stream. It must not panic,
///   stall, or use more input than given.
/// - mode 1: the rest is the compressed body of one message (text if the
///   key's first byte is odd), in frames cut by a second `[cuts]`: its
///   plain frames must be well formed and, unless it fails, add up to at
///   most the limit (a compression bomb costs no more than that).
/// - mode 2: the rest is a payload, compressed here and framed the same
///   way: it must come out exactly, or fail as too large if it or one of
///   its compressed frames is over the limit.
pub fn inflate(data: &[u8]) {
    let mut input = Input(data);
    let mode = input.byte() % 3;
    let max_message = INFLATE_LIMITS[usize::from(input.byte()) % INFLATE_LIMITS.len()];
    let out = usize::from(input.byte()) * 64 + 1;
    let reads = input.cuts();
    let key: [u8; 4] = [input.byte(), input.byte(), input.byte(), input.byte()];
    let text = key[0] % 2 == 1;
    let mut inflate = Inflate::new(max_message, max_message);
    let chunk = max_message.min(16 * 1024);
    match mode {
        0 => {
            let _ = transform(&mut inflate, input.0, &reads, out);
        }
        1 => {
            let frames = input.cuts();
            let stream = compressed_frames(text, input.0, &frames, key);
            match transform(&mut inflate, &stream, &reads, out) {
                Ok(plain) => {
                    let message = plain_message(&plain, text, chunk);
                    assert!(message.len() <= max_message, "{} bytes", message.len());
                }
                Err(error) => assert_ne!(error, DeflateError::Protocol, "frames in order"),
            }
        }
        _ => {
            let frames = input.cuts();
            let payload = input.0;
            let mut body = Vec::new();
            Deflater::new(1, MAX_WINDOW_BITS).compress(payload, &mut body);
            let stream = compressed_frames(text, &body, &frames, key);
            // The frame limit applies to compressed frames as sent, and
            // deflate makes a short or random payload longer.
            let too_large = payload.len() > max_message
                || pieces(&body, &frames)
                    .iter()
                    .any(|frame| frame.len() > max_message);
            match transform(&mut inflate, &stream, &reads, out) {
                Ok(plain) => {
                    assert!(!too_large, "{} bytes passed", payload.len());
                    assert_eq!(plain_message(&plain, text, chunk), payload);
                }
                Err(error) => {
                    assert_eq!(error, DeflateError::TooLarge);
                    assert!(too_large, "{} bytes refused", payload.len());
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------
// What comes back from Redis.

/// `rooms::post` and the room channel's messages (`cluster::event`):
/// `[channel length][channel][payload]`.
///
/// Asserts: a post that decodes encodes to bytes that decode to it again;
/// an event's room names the channel it came on; a decoded post makes a
/// member's frame without panicking.
pub fn redis_post(data: &[u8]) {
    check_post(data);
    let mut input = Input(data);
    let len = usize::from(input.byte());
    let name = input.take(len).to_vec();
    let payload = input.0.to_vec();
    let push = PushInfo {
        kind: PushKind::Message,
        data: vec![Value::BulkString(name.clone()), Value::BulkString(payload)],
    };
    let Some((room, event)) = cluster::event(&push) else {
        return;
    };
    assert_eq!(
        cluster::channel(&room).as_bytes(),
        name,
        "the room's channel"
    );
    if let cluster::Event::Message { offset, post, .. } = event {
        check_post(&post.encode());
        let _ = post.frame(&room, offset);
    }
}

fn check_post(bytes: &[u8]) {
    if let Some(post) = Post::decode(bytes) {
        assert_eq!(Post::decode(&post.encode()).as_ref(), Some(&post));
    }
}

/// The join and range scripts' replies (`cluster::parse_join`,
/// `cluster::parse_range`): the input is RESP, as Redis sends it, parsed
/// with the redis crate's own parser; both readers must return without
/// panicking, whatever shape the value has.
pub fn redis_reply(data: &[u8]) {
    let Ok(value) = redis::parse_redis_value(data) else {
        return;
    };
    let _ = cluster::parse_join(value.clone());
    let _ = cluster::parse_range(value);
}

// ---------------------------------------------------------------------------
// Configuration.

/// Every option that takes a value, as its flag (`--ui-dir` left out: it
/// reads the file system).
const FLAGS: [&str; 26] = [
    "--listen",
    "--max-connections",
    "--max-message-size",
    "--max-frame-size",
    "--deflate",
    "--deflate-threshold",
    "--read-buffer-size",
    "--max-outbound-buffer",
    "--handshake-timeout",
    "--ping-interval",
    "--idle-timeout",
    "--write-timeout",
    "--close-timeout",
    "--shutdown-grace",
    "--client-queue",
    "--slow-client-missed",
    "--max-name-len",
    "--max-room-len",
    "--max-rooms-per-client",
    "--max-protocol-errors",
    "--presence-limit",
    "--history-size",
    "--history-ttl",
    "--redis",
    "--presence-ttl",
    "--push-token",
];

/// `parse_size`, humantime's durations, and the command line as `duplex`
/// parses it: lines of `[flag index][value]`, each the value of one of
/// [`FLAGS`].
///
/// Asserts: a size that parses reads back from its decimal form, and a
/// configuration that [`Config::validate`] accepts can be served: no
/// arithmetic on its values overflows, every timeout can be added to the
/// clock (`Instant + timeout` panics where it cannot).
pub fn config(data: &[u8]) {
    let mut args = Vec::new();
    for line in data.split(|&b| b == b'\n').take(8) {
        let Some((&pick, value)) = line.split_first() else {
            continue;
        };
        let Ok(value) = std::str::from_utf8(value) else {
            continue;
        };
        if let Ok(size) = parse_size(value) {
            assert_eq!(parse_size(&size.to_string()), Ok(size), "{value:?}");
        }
        // Durations go to the checks below through the command line; no
        // round trip of humantime's own is asserted (it refuses to read
        // back some durations it parses, e.g. 16384y as milliseconds,
        // which no Duplex code does).
        let _ = humantime::parse_duration(value);
        args.push(FLAGS[usize::from(pick) % FLAGS.len()].to_owned());
        args.push(value.to_owned());
    }
    thread_local! {
        /// Built once: building clap's command took most of each run.
        static COMMAND: RefCell<clap::Command> = RefCell::new(Config::augment_args(
            clap::Command::new("duplex").no_binary_name(true),
        ));
    }
    let Ok(matches) = COMMAND.with(|command| command.borrow_mut().try_get_matches_from_mut(&args))
    else {
        return;
    };
    let Ok(config) = Config::from_arg_matches(&matches) else {
        return;
    };
    if config.validate().is_err() {
        return;
    }
    let _ = config.websocket();
    let now = Instant::now();
    for (name, timeout) in config.durations() {
        assert!(
            now.checked_add(timeout).is_some(),
            "a valid --{name} {timeout:?} overflows the clock"
        );
    }
    // The frame header bound the rooms' outbox and tungstenite count on.
    assert!(config.max_outbound_buffer >= config.max_message_size);
}

/// The origins and the secret [`admission`] checks against.
const FUZZ_ORIGINS: [&str; 2] = ["https://chat.example", "http://localhost:8080"];

/// Who may connect (`admission/`): the Origin check on every path and the
/// token's extraction and verification on `/ws`, for any request. The
/// first line of `data` is the request target (`/ws?token=…`), the rest
/// header lines as in [`handshake`] (write `origin:` or `authorization:`
/// in full).
///
/// Asserts: `/echo` is never refused for its token; a request without an
/// `Origin` header passes the Origin check; one with exactly a listed
/// origin (and nothing else) does too; a token that verifies names a
/// member that fits `--max-name-len`.
pub fn admission(data: &[u8]) {
    static ADMISSION: std::sync::OnceLock<(Admission, usize)> = std::sync::OnceLock::new();
    let (admission, max_name_len) = ADMISSION.get_or_init(|| {
        let config = Config {
            allowed_origins: Some(FUZZ_ORIGINS.iter().map(|o| (*o).to_owned()).collect()),
            jwt_secret: Some("fuzz-secret".to_owned()),
            ..Config::default()
        };
        let admission = Admission::new(&config).expect("the fuzz configuration is valid");
        (admission, config.max_name_len)
    });
    let (target, rest) = match data.iter().position(|&b| b == b'\n') {
        Some(at) => (&data[..at], &data[at + 1..]),
        None => (data, &[][..]),
    };
    let Ok(uri) = hyper::Uri::try_from(target) else {
        return;
    };
    let headers = header_map(rest);
    let origins: Vec<&[u8]> = headers
        .get_all(header::ORIGIN)
        .iter()
        .map(HeaderValue::as_bytes)
        .collect();
    match admission.check(&headers, &uri, Service::Echo) {
        Ok(identity) => assert!(identity.is_none(), "/echo has no identity"),
        Err(Refusal::Origin) => {
            assert!(
                !origins.is_empty(),
                "refused for an Origin it does not have"
            );
            assert!(
                !(origins.len() == 1 && FUZZ_ORIGINS.iter().any(|o| o.as_bytes() == origins[0])),
                "refused a listed origin"
            );
        }
        Err(other) => panic!("/echo refused for {other:?}"),
    }
    if let Ok(Some(identity)) = admission.check(&headers, &uri, Service::Rooms) {
        let name = identity.name();
        assert!(!name.is_empty() && name.len() <= *max_name_len, "{name:?}");
    }
}
