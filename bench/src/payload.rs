//! The messages the generator sends and how their echoes are checked.
//!
//! Every message of a connection lives in one buffer, filled once with a
//! pattern that depends on the connection and the byte's position. Sending
//! only rewrites a 20-byte stamp at the front (little-endian):
//!
//! | bytes  | field                                           |
//! |--------|-------------------------------------------------|
//! | 0..8   | sequence number within the connection           |
//! | 8..16  | send time, nanoseconds since the run's origin   |
//! | 16..20 | connection id                                   |
//! | 20..   | filler: `(31 × position + 17 × connection) mod 256` |
//!
//! A message shorter than 20 bytes carries a prefix of the stamp. The echo
//! is compared byte for byte with the buffer, so a stale, shifted, truncated
//! or foreign echo is caught; no allocation or hashing per message.
//!
//! The filler repeats every 256 bytes, so deflate shrinks it to almost
//! nothing: for compression figures use `--payload json` ([`ChatJson`]),
//! text frames of chat-like JSON whose words change from message to
//! message, stamped and checked the same way.

use clap::ValueEnum;
use duplex_protocol::frame::OpCode;
use serde::{Deserialize, Serialize};
use thiserror::Error;

/// Bytes of the stamp at the front of each message.
pub const STAMP_LEN: usize = 20;

/// Shortest message that carries its send time (open loop reads latency
/// from the echo itself).
pub const TIMED_LEN: usize = 16;

/// What the generator's messages are.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PayloadKind {
    /// Binary frames: the stamp, then a byte pattern (see the module doc).
    #[default]
    Binary,
    /// Text frames of chat-like JSON, `{"type":"publish","room":…,"text":…}`,
    /// whose words vary from message to message ([`ChatJson`]).
    Json,
}

impl PayloadKind {
    /// How a report names it.
    #[must_use]
    pub const fn label(self) -> &'static str {
        match self {
            Self::Binary => "binary",
            Self::Json => "JSON text",
        }
    }

    /// The opcode its messages are sent with.
    #[must_use]
    pub const fn opcode(self) -> OpCode {
        match self {
            Self::Binary => OpCode::Binary,
            Self::Json => OpCode::Text,
        }
    }
}

/// How an echo differs from what was sent.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum Mismatch {
    /// The echo came back as another kind of message.
    #[error("a {got:?} message came back for a {expected:?} one")]
    Opcode {
        /// The opcode sent.
        expected: OpCode,
        /// The opcode received.
        got: OpCode,
    },
    /// The stamp of a JSON echo is not hexadecimal where it should be.
    #[error("no readable stamp at byte {offset}")]
    Stamp {
        /// Where the stamp starts.
        offset: usize,
    },
    /// The echo has another length.
    #[error("{got} bytes came back, {expected} were sent")]
    Length {
        /// Bytes sent.
        expected: usize,
        /// Bytes received.
        got: usize,
    },
    /// The echo is out of order (open loop): messages lost or reordered.
    #[error("message {got} came back when {expected} was due")]
    Sequence {
        /// The sequence number due.
        expected: u64,
        /// The sequence number received.
        got: u64,
    },
    /// A byte differs.
    #[error("byte {offset} is {got:#04x}, {expected:#04x} was sent")]
    Byte {
        /// Offset of the first differing byte.
        offset: usize,
        /// The byte sent.
        expected: u8,
        /// The byte received.
        got: u8,
    },
}

/// The filler byte at `position` of connection `connection`'s messages.
/// Consecutive bytes differ, so a shifted echo never matches.
#[must_use]
pub const fn filler(connection: u32, position: usize) -> u8 {
    (position as u32)
        .wrapping_mul(31)
        .wrapping_add(connection.wrapping_mul(17)) as u8
}

/// One connection's message buffer.
#[derive(Debug, Clone)]
pub struct Payload {
    inner: Inner,
}

#[derive(Debug, Clone)]
enum Inner {
    Binary(Vec<u8>),
    Json(Box<ChatJson>),
}

/// The room named in the echo's JSON messages (the echo path ignores it).
pub const ECHO_ROOM: &str = "lobby";

impl Payload {
    /// A `size`-byte binary message for connection `connection`, stamped
    /// with sequence 0 and time 0.
    #[must_use]
    pub fn new(connection: u32, size: usize) -> Self {
        let mut bytes: Vec<u8> = (0..size).map(|i| filler(connection, i)).collect();
        let mut stamp = [0; STAMP_LEN];
        stamp[16..20].copy_from_slice(&connection.to_le_bytes());
        let n = size.min(STAMP_LEN);
        bytes[..n].copy_from_slice(&stamp[..n]);
        Self {
            inner: Inner::Binary(bytes),
        }
    }

    /// A `size`-byte message of `kind` for connection `connection`. JSON
    /// messages are at least [`ChatJson::min_size`] bytes for
    /// [`ECHO_ROOM`], whatever `size` says.
    #[must_use]
    pub fn of_kind(kind: PayloadKind, connection: u32, size: usize) -> Self {
        match kind {
            PayloadKind::Binary => Self::new(connection, size),
            PayloadKind::Json => {
                let mut json = ChatJson::new(ECHO_ROOM, connection, size);
                json.stamp(0, 0, connection);
                Self {
                    inner: Inner::Json(Box::new(json)),
                }
            }
        }
    }

    /// Stamps the next message and returns it.
    pub fn stamp(&mut self, seq: u64, sent_ns: u64) -> &[u8] {
        match &mut self.inner {
            Inner::Binary(bytes) => {
                let mut stamp = [0; TIMED_LEN];
                stamp[..8].copy_from_slice(&seq.to_le_bytes());
                stamp[8..].copy_from_slice(&sent_ns.to_le_bytes());
                let n = bytes.len().min(TIMED_LEN);
                bytes[..n].copy_from_slice(&stamp[..n]);
                bytes
            }
            Inner::Json(json) => {
                let id = json.id;
                json.stamp(seq, sent_ns, id)
            }
        }
    }

    /// The current message.
    #[must_use]
    pub fn bytes(&self) -> &[u8] {
        match &self.inner {
            Inner::Binary(bytes) => bytes,
            Inner::Json(json) => &json.bytes,
        }
    }

    /// Checks that `echo` is exactly the current message (closed loop: one
    /// message in flight, so the buffer still holds it).
    ///
    /// # Errors
    /// The first difference found.
    pub fn verify(&self, echo: &[u8]) -> Result<(), Mismatch> {
        let bytes = self.bytes();
        if echo == bytes {
            return Ok(());
        }
        Err(first_difference(bytes, echo, 0))
    }

    /// Checks an echo in open loop, where many messages are in flight and
    /// the buffer holds only the last one sent: the sequence must be
    /// `expected_seq`, everything after the send time must match, and the
    /// send time is returned.
    ///
    /// # Errors
    /// The first difference found. Messages shorter than [`TIMED_LEN`]
    /// bytes cannot be checked this way and always fail with `Length`.
    pub fn verify_timed(&self, echo: &[u8], expected_seq: u64) -> Result<u64, Mismatch> {
        let bytes = match &self.inner {
            Inner::Binary(bytes) => bytes,
            Inner::Json(json) => return json.verify_timed(echo, expected_seq),
        };
        if echo.len() != bytes.len() || echo.len() < TIMED_LEN {
            return Err(Mismatch::Length {
                expected: bytes.len(),
                got: echo.len(),
            });
        }
        let seq = read_u64(&echo[..8]);
        if seq != expected_seq {
            return Err(Mismatch::Sequence {
                expected: expected_seq,
                got: seq,
            });
        }
        if echo[TIMED_LEN..] != bytes[TIMED_LEN..] {
            return Err(first_difference(
                &bytes[TIMED_LEN..],
                &echo[TIMED_LEN..],
                TIMED_LEN,
            ));
        }
        Ok(read_u64(&echo[8..16]))
    }
}

/// Hex digits of the stamp at the start of a JSON message's text: the
/// sequence number (16), a time in nanoseconds (16) and the sender's id (8).
pub const JSON_STAMP_LEN: usize = 40;

/// How many different starting points in its word list a connection's
/// messages take their text from.
const TEXT_OFFSETS: usize = 512;

/// The words chat text is made of.
const WORDS: [&str; 96] = [
    "the", "a", "to", "and", "is", "it", "you", "i", "that", "of", "in", "for", "on", "this", "we",
    "be", "have", "not", "are", "with", "just", "so", "but", "can", "do", "at", "if", "was",
    "what", "me", "my", "all", "about", "now", "know", "like", "get", "will", "how", "there",
    "think", "yes", "no", "ok", "lol", "thanks", "good", "time", "today", "tomorrow", "meeting",
    "deploy", "server", "build", "test", "branch", "merge", "review", "please", "sure", "maybe",
    "later", "morning", "lunch", "coffee", "team", "update", "issue", "fix", "release", "room",
    "message", "link", "doc", "see", "look", "check", "works", "broken", "again", "still",
    "already", "soon", "here", "back", "done", "great", "nice", "sorry", "anyone", "seen",
    "latest", "version", "numbers", "chart", "bench",
];

/// A chat message as a browser client sends one to a room, of an exact
/// size: `{"type":"publish","room":ROOM,"text":"STAMP WORDS…"}`.
///
/// The text starts with a [`JSON_STAMP_LEN`]-digit hexadecimal stamp and
/// goes on with words, a window of this sender's word list that moves with
/// the sequence number, so consecutive messages differ the way chat lines
/// do and compress like them (JSON and English words), not like one
/// repeated letter. Stamping writes the stamp and copies the window: no
/// allocation. The JSON needs no escapes (lower-case words, digits,
/// punctuation), so the server passes the text on unchanged.
#[derive(Debug, Clone)]
pub struct ChatJson {
    bytes: Vec<u8>,
    /// This sender's words, [`TEXT_OFFSETS`] bytes longer than the text.
    words: Vec<u8>,
    /// Where the stamp starts.
    stamp_at: usize,
    /// Where the words start and how many there are.
    body_at: usize,
    body_len: usize,
    /// The id the sender was made with.
    id: u32,
}

/// The bytes before the text: `{"type":"publish","room":ROOM,"text":"`.
fn json_prefix(room: &str) -> String {
    let room = serde_json::to_string(room).unwrap_or_else(|_| "\"\"".into());
    format!("{{\"type\":\"publish\",\"room\":{room},\"text\":\"")
}

/// The bytes after the text.
const JSON_SUFFIX: &[u8] = b"\"}";

impl ChatJson {
    /// The shortest message for `room`: the JSON around a stamp and one
    /// space.
    #[must_use]
    pub fn min_size(room: &str) -> usize {
        json_prefix(room).len() + JSON_STAMP_LEN + 1 + JSON_SUFFIX.len()
    }

    /// A `size`-byte message to `room` from sender `id` (which also seeds
    /// its words), or [`ChatJson::min_size`] bytes if `size` is smaller.
    #[must_use]
    pub fn new(room: &str, id: u32, size: usize) -> Self {
        let prefix = json_prefix(room);
        let size = size.max(Self::min_size(room));
        let stamp_at = prefix.len();
        let body_at = stamp_at + JSON_STAMP_LEN + 1;
        let body_len = size - body_at - JSON_SUFFIX.len();
        let words = chat_words(id, body_len + TEXT_OFFSETS);
        let mut bytes = Vec::with_capacity(size);
        bytes.extend_from_slice(prefix.as_bytes());
        bytes.resize(body_at, b'0');
        bytes[body_at - 1] = b' ';
        bytes.extend_from_slice(&words[..body_len]);
        bytes.extend_from_slice(JSON_SUFFIX);
        Self {
            bytes,
            words,
            stamp_at,
            body_at,
            body_len,
            id,
        }
    }

    /// Stamps the next message, `seq` choosing its words, and returns it.
    pub fn stamp(&mut self, seq: u64, time_ns: u64, id: u32) -> &[u8] {
        let stamp = &mut self.bytes[self.stamp_at..self.stamp_at + JSON_STAMP_LEN];
        write_hex(&mut stamp[..16], seq);
        write_hex(&mut stamp[16..32], time_ns);
        write_hex(&mut stamp[32..], u64::from(id));
        let from = text_offset(seq);
        self.bytes[self.body_at..self.body_at + self.body_len]
            .copy_from_slice(&self.words[from..from + self.body_len]);
        &self.bytes
    }

    /// The current message.
    #[must_use]
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// The stamp at the start of a message's text (the value of its
    /// `text`, here or in the server's `message`): sequence, time, id.
    #[must_use]
    pub fn read_stamp(text: &[u8]) -> Option<(u64, u64, u32)> {
        let stamp = text.get(..JSON_STAMP_LEN)?;
        let id = u32::try_from(read_hex(&stamp[32..])?).ok()?;
        Some((read_hex(&stamp[..16])?, read_hex(&stamp[16..32])?, id))
    }

    /// As [`Payload::verify_timed`]: the echo of message `expected_seq`,
    /// whichever message the buffer holds now.
    fn verify_timed(&self, echo: &[u8], expected_seq: u64) -> Result<u64, Mismatch> {
        if echo.len() != self.bytes.len() {
            return Err(Mismatch::Length {
                expected: self.bytes.len(),
                got: echo.len(),
            });
        }
        let (stamp, body, end) = (self.stamp_at, self.body_at, self.body_at + self.body_len);
        let Some((seq, time_ns, _)) = Self::read_stamp(&echo[stamp..]) else {
            return Err(Mismatch::Stamp { offset: stamp });
        };
        if seq != expected_seq {
            return Err(Mismatch::Sequence {
                expected: expected_seq,
                got: seq,
            });
        }
        let from = text_offset(seq);
        let expected_words = &self.words[from..from + self.body_len];
        // The JSON before the stamp; the id and the space; the words; the end.
        for (sent, got, base) in [
            (&self.bytes[..stamp], &echo[..stamp], 0),
            (
                &self.bytes[stamp + 32..body],
                &echo[stamp + 32..body],
                stamp + 32,
            ),
            (expected_words, &echo[body..end], body),
            (&self.bytes[end..], &echo[end..], end),
        ] {
            if sent != got {
                return Err(first_difference(sent, got, base));
            }
        }
        Ok(time_ns)
    }
}

/// Where in its word list message `seq` takes its text from.
fn text_offset(seq: u64) -> usize {
    (seq.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 32) as usize % TEXT_OFFSETS
}

/// `len` bytes of chat words for sender `id`: words from [`WORDS`] with
/// some punctuation and numbers, from a generator seeded by `id`.
fn chat_words(id: u32, len: usize) -> Vec<u8> {
    let mut state = u64::from(id).wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let mut out = Vec::with_capacity(len + 16);
    while out.len() < len {
        let r = next();
        match r % 16 {
            0 => out.extend_from_slice(format!("{}", (r >> 8) % 1000).as_bytes()),
            _ => out.extend_from_slice(WORDS[(r >> 8) as usize % WORDS.len()].as_bytes()),
        }
        match (r >> 40) % 12 {
            0 => out.extend_from_slice(b". "),
            1 => out.extend_from_slice(b", "),
            2 => out.extend_from_slice(b"? "),
            _ => out.push(b' '),
        }
    }
    out.truncate(len);
    out
}

/// Writes `value` as `out.len()` lower-case hex digits (the low ones).
fn write_hex(out: &mut [u8], mut value: u64) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    for digit in out.iter_mut().rev() {
        *digit = DIGITS[(value & 0xF) as usize];
        value >>= 4;
    }
}

/// Reads up to 16 hex digits; `None` for anything else.
fn read_hex(digits: &[u8]) -> Option<u64> {
    digits.iter().try_fold(0_u64, |value, &digit| {
        let nibble = match digit {
            b'0'..=b'9' => digit - b'0',
            b'a'..=b'f' => digit - b'a' + 10,
            _ => return None,
        };
        Some(value << 4 | u64::from(nibble))
    })
}

fn read_u64(bytes: &[u8]) -> u64 {
    let mut word = [0; 8];
    word.copy_from_slice(bytes);
    u64::from_le_bytes(word)
}

/// The first difference between `sent` and `got`, which differ; `base` is
/// the offset of `sent[0]` in the message.
fn first_difference(sent: &[u8], got: &[u8], base: usize) -> Mismatch {
    if sent.len() != got.len() {
        return Mismatch::Length {
            expected: sent.len() + base,
            got: got.len() + base,
        };
    }
    let (offset, (expected, got)) = sent
        .iter()
        .zip(got)
        .enumerate()
        .find(|(_, (a, b))| a != b)
        .map_or((0, (&0, &0)), |(i, pair)| (i, pair));
    Mismatch::Byte {
        offset: base + offset,
        expected: *expected,
        got: *got,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_faithful_echo_passes() {
        let mut payload = Payload::new(7, 1024);
        let sent = payload.stamp(3, 99).to_vec();
        assert_eq!(payload.verify(&sent), Ok(()));
        assert_eq!(payload.verify_timed(&sent, 3), Ok(99));
    }

    #[test]
    fn stamp_fields_are_where_documented() {
        let mut payload = Payload::new(0x0102_0304, 32);
        let bytes = payload.stamp(5, 6).to_vec();
        assert_eq!(bytes[0], 5);
        assert_eq!(bytes[8], 6);
        assert_eq!(&bytes[16..20], &[4, 3, 2, 1]);
        assert_eq!(bytes[20], filler(0x0102_0304, 20));
    }

    #[test]
    fn short_messages_carry_a_prefix_of_the_stamp() {
        for size in [0, 1, 8, 15, 19, 20] {
            let mut payload = Payload::new(1, size);
            let sent = payload.stamp(u64::MAX, u64::MAX).to_vec();
            assert_eq!(sent.len(), size);
            assert_eq!(payload.verify(&sent), Ok(()));
        }
    }

    #[test]
    fn a_flipped_byte_is_located() {
        let mut payload = Payload::new(2, 100);
        let mut echo = payload.stamp(1, 1).to_vec();
        echo[60] ^= 0x10;
        assert_eq!(
            payload.verify(&echo),
            Err(Mismatch::Byte {
                offset: 60,
                expected: filler(2, 60),
                got: filler(2, 60) ^ 0x10
            })
        );
        assert!(matches!(
            payload.verify_timed(&echo, 1),
            Err(Mismatch::Byte { offset: 60, .. })
        ));
    }

    #[test]
    fn stale_truncated_and_foreign_echoes_fail() {
        let mut payload = Payload::new(3, 64);
        let stale = payload.stamp(1, 10).to_vec();
        payload.stamp(2, 20);
        assert!(matches!(
            payload.verify(&stale),
            Err(Mismatch::Byte { offset: 0, .. })
        ));
        assert_eq!(
            payload.verify(&stale[..10]),
            Err(Mismatch::Length {
                expected: 64,
                got: 10
            })
        );
        let mut other = Payload::new(4, 64);
        let foreign = other.stamp(2, 20).to_vec();
        assert!(payload.verify(&foreign).is_err());
        assert!(payload.verify_timed(&foreign, 2).is_err());
    }

    #[test]
    fn open_loop_catches_lost_messages() {
        let mut payload = Payload::new(5, 32);
        let third = payload.stamp(2, 0).to_vec();
        assert_eq!(
            payload.verify_timed(&third, 1),
            Err(Mismatch::Sequence {
                expected: 1,
                got: 2
            })
        );
        let tiny = Payload::new(5, 8);
        assert!(matches!(
            tiny.verify_timed(&[0; 8], 0),
            Err(Mismatch::Length { .. })
        ));
    }

    #[test]
    fn filler_never_repeats_a_neighbour() {
        for i in 0..1000 {
            assert_ne!(filler(9, i), filler(9, i + 1));
        }
    }

    #[test]
    fn json_messages_are_exact_valid_chat_json() {
        for size in [ChatJson::min_size(ECHO_ROOM), 100, 1024, 16 * 1024] {
            let mut payload = Payload::of_kind(PayloadKind::Json, 7, size);
            let sent = payload.stamp(3, 99).to_vec();
            assert_eq!(sent.len(), size);
            let message: duplex_protocol::ClientMessage =
                serde_json::from_slice(&sent).expect("valid JSON");
            let duplex_protocol::ClientMessage::Publish { room, text } = message else {
                panic!("not a publish");
            };
            assert_eq!(room, ECHO_ROOM);
            assert_eq!(ChatJson::read_stamp(text.as_bytes()), Some((3, 99, 7)));
            assert_eq!(payload.verify(&sent), Ok(()));
            assert_eq!(payload.verify_timed(&sent, 3), Ok(99));
        }
        // `duplex-bench echo --help` names it.
        assert_eq!(ChatJson::min_size(ECHO_ROOM), 84);
        // Too small a size gives the smallest message.
        let tiny = ChatJson::new("r", 1, 10);
        assert_eq!(tiny.bytes().len(), ChatJson::min_size("r"));
    }

    #[test]
    fn json_text_is_words_that_change_from_message_to_message() {
        let mut payload = Payload::of_kind(PayloadKind::Json, 2, 1024);
        let first = payload.stamp(0, 0).to_vec();
        let second = payload.stamp(1, 0).to_vec();
        // Beyond the stamp the words differ, not only the digits.
        let differing = first[100..]
            .iter()
            .zip(&second[100..])
            .filter(|(a, b)| a != b)
            .count();
        assert!(differing > 500, "{differing} bytes differ");
        let text = String::from_utf8(first).expect("ASCII");
        assert!(
            text.contains(' ') && text.split(' ').count() > 150,
            "{text}"
        );
        assert!(!text.contains('\\'), "{text}");
        // And chat-like: it compresses, but far less than the binary
        // filler's 256-byte period does.
        let mut deflater = duplex_protocol::deflate::Deflater::new(1, 15);
        let (mut json, mut binary) = (Vec::new(), Vec::new());
        deflater.compress(text.as_bytes(), &mut json);
        deflater.compress(Payload::new(2, 1024).bytes(), &mut binary);
        assert!(
            (250..700).contains(&json.len()),
            "1 KiB of chat JSON deflates to {} bytes",
            json.len()
        );
        assert!(binary.len() < json.len() / 2, "{} bytes", binary.len());
    }

    #[test]
    fn json_echoes_of_older_messages_verify_in_open_loop() {
        let mut payload = Payload::of_kind(PayloadKind::Json, 4, 300);
        let old = payload.stamp(5, 55).to_vec();
        payload.stamp(6, 66);
        payload.stamp(7, 77);
        assert_eq!(payload.verify_timed(&old, 5), Ok(55));
        assert!(matches!(
            payload.verify_timed(&old, 6),
            Err(Mismatch::Sequence {
                expected: 6,
                got: 5
            })
        ));
        let mut bad = old.clone();
        bad[250] ^= 1;
        assert!(matches!(
            payload.verify_timed(&bad, 5),
            Err(Mismatch::Byte { offset: 250, .. })
        ));
        let mut unreadable = old.clone();
        let at = json_prefix(ECHO_ROOM).len();
        unreadable[at] = b'x';
        assert_eq!(
            payload.verify_timed(&unreadable, 5),
            Err(Mismatch::Stamp { offset: at })
        );
        // Another connection's message is foreign.
        let mut other = Payload::of_kind(PayloadKind::Json, 9, 300);
        assert!(payload.verify_timed(other.stamp(5, 55), 5).is_err());
    }
}
