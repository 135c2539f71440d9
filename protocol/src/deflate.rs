//! permessage-deflate (RFC 7692): the offer a server accepts and the answer
//! it gives, and the compression of one message, shared by the server, its
//! tests and the load generator (feature `deflate`).
//!
//! Duplex always works without context takeover in both directions: every
//! message is compressed and inflated with a fresh state, so nothing lives
//! between messages and an idle connection holds no compressor or inflater.
//! That also makes a compressed frame valid for every receiver, so a room
//! compresses a published message once.

use std::fmt;

use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress, Status};

/// The extension's name in `Sec-WebSocket-Extensions`.
pub const EXTENSION: &str = "permessage-deflate";

/// The bytes a sync flush ends with; RFC 7692 §7.2.1 strips them from every
/// message and §7.2.2 appends them before inflating.
pub const TAIL: [u8; 4] = [0x00, 0x00, 0xff, 0xff];

/// The smallest window zlib compresses raw deflate with: asked for 8
/// (`server_max_window_bits=8`), it uses 9, whose output window-8 decoders
/// read (zlib makes the same substitution when inflating).
pub const MIN_COMPRESS_WINDOW_BITS: u8 = 9;

/// The largest LZ77 window, and the one Duplex inflates with: it never
/// answers `client_max_window_bits`, so clients may use any window.
pub const MAX_WINDOW_BITS: u8 = 15;

/// What the server agreed to for one connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Agreement {
    /// The offer's `server_max_window_bits`, echoed in the answer.
    pub server_max_window_bits: Option<u8>,
}

impl Agreement {
    /// The `Sec-WebSocket-Extensions` value of the 101 answer.
    pub fn response(&self) -> String {
        let mut answer =
            format!("{EXTENSION}; server_no_context_takeover; client_no_context_takeover");
        if let Some(bits) = self.server_max_window_bits {
            answer.push_str(&format!("; server_max_window_bits={bits}"));
        }
        answer
    }

    /// The window the server compresses with.
    pub fn compress_window_bits(&self) -> u8 {
        self.server_max_window_bits
            .unwrap_or(MAX_WINDOW_BITS)
            .max(MIN_COMPRESS_WINDOW_BITS)
    }
}

/// The first acceptable `permessage-deflate` offer among the values of every
/// `Sec-WebSocket-Extensions` line of a request, in order (RFC 7692 §5:
/// offers are in the client's order of preference). Offers with unknown,
/// duplicate or invalid parameters are skipped; `None` means decline.
pub fn negotiate<'a>(header_values: impl IntoIterator<Item = &'a [u8]>) -> Option<Agreement> {
    header_values
        .into_iter()
        .filter_map(|value| std::str::from_utf8(value).ok())
        .flat_map(split_elements)
        .find_map(|element| accept(&element))
}

/// One element of an extension list: the name and its parameters, values
/// unquoted. `None` for a malformed element.
#[derive(Debug, PartialEq, Eq)]
struct Element {
    name: String,
    params: Vec<(String, Option<String>)>,
}

/// Splits a header value into its comma-separated elements, commas inside
/// quoted strings included in the element they belong to. A malformed
/// element comes back as `None` in its place.
fn split_elements(value: &str) -> impl Iterator<Item = Option<Element>> + '_ {
    let mut parts = Vec::new();
    let (mut start, mut quoted, mut escaped) = (0, false, false);
    for (i, c) in value.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            ',' if !quoted => {
                parts.push(&value[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&value[start..]);
    parts
        .into_iter()
        .filter(|part| !part.trim().is_empty())
        .map(parse_element)
}

fn parse_element(element: &str) -> Option<Element> {
    let mut pieces = element.split(';');
    let name = pieces.next()?.trim();
    if !is_token(name) {
        return None;
    }
    let mut params = Vec::new();
    for piece in pieces {
        let (key, value) = match piece.split_once('=') {
            Some((key, value)) => (key.trim(), Some(unquote(value.trim())?)),
            None => (piece.trim(), None),
        };
        if !is_token(key) {
            return None;
        }
        params.push((key.to_ascii_lowercase(), value));
    }
    Some(Element {
        name: name.to_ascii_lowercase(),
        params,
    })
}

/// A token or a quoted string holding a token (RFC 7692 §5: a quoted value
/// must still be a token after unquoting).
fn unquote(value: &str) -> Option<String> {
    let inner = match value.strip_prefix('"') {
        Some(rest) => {
            let rest = rest.strip_suffix('"')?;
            let mut out = String::new();
            let mut chars = rest.chars();
            while let Some(c) = chars.next() {
                out.push(if c == '\\' { chars.next()? } else { c });
            }
            out
        }
        None => value.to_string(),
    };
    is_token(&inner).then_some(inner)
}

/// RFC 7230 §3.2.6 token.
fn is_token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// Window bits as RFC 7692 §7.1.2 writes them: 8 to 15, decimal, no
/// leading zero.
fn window_bits(value: &str) -> Option<u8> {
    if value.starts_with('0') || value.len() > 2 {
        return None;
    }
    value.parse().ok().filter(|bits| (8..=15).contains(bits))
}

/// The agreement for one offer, or `None` if it is not permessage-deflate
/// or not valid.
fn accept(element: &Option<Element>) -> Option<Agreement> {
    let element = element.as_ref()?;
    if element.name != EXTENSION {
        return None;
    }
    let mut seen: Vec<&str> = Vec::new();
    let mut agreement = Agreement {
        server_max_window_bits: None,
    };
    for (key, value) in &element.params {
        if seen.contains(&key.as_str()) {
            return None; // §7: a parameter given twice
        }
        seen.push(key);
        match (key.as_str(), value.as_deref()) {
            ("server_no_context_takeover" | "client_no_context_takeover", None) => {}
            ("server_max_window_bits", Some(bits)) => {
                agreement.server_max_window_bits = Some(window_bits(bits)?);
            }
            // Without a value it only says the client supports it; we
            // never use it (we inflate with the largest window).
            ("client_max_window_bits", None) => {}
            ("client_max_window_bits", Some(bits)) => {
                window_bits(bits)?;
            }
            _ => return None,
        }
    }
    Some(agreement)
}

/// What went wrong inflating a message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InflateError {
    /// The data is not a valid deflate stream (close code 1007).
    #[error("corrupt compressed data: {0}")]
    Corrupt(String),
    /// The message inflates past the limit (close code 1009).
    #[error("message inflates past {limit} bytes")]
    TooLarge {
        /// The limit it passed.
        limit: usize,
    },
}

/// Compresses whole messages, each with a fresh context.
pub struct Deflater {
    inner: Compress,
    window_bits: u8,
}

impl fmt::Debug for Deflater {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Deflater")
            .field("window_bits", &self.window_bits)
            .finish_non_exhaustive()
    }
}

impl Deflater {
    /// A raw-deflate compressor at `level` (0-9) with a window of
    /// `window_bits` (raised to [`MIN_COMPRESS_WINDOW_BITS`]).
    pub fn new(level: u32, window_bits: u8) -> Self {
        let window_bits = window_bits.clamp(MIN_COMPRESS_WINDOW_BITS, MAX_WINDOW_BITS);
        Self {
            inner: Compress::new_with_window_bits(Compression::new(level), false, window_bits),
            window_bits,
        }
    }

    /// The window it compresses with.
    pub fn window_bits(&self) -> u8 {
        self.window_bits
    }

    /// Appends `payload` compressed to `out`, as a permessage-deflate
    /// message carries it (sync-flushed, [`TAIL`] removed), then resets.
    pub fn compress(&mut self, payload: &[u8], out: &mut Vec<u8>) {
        let start = out.len();
        // Deflate's worst case: 5 bytes per stored block of up to 16 KiB
        // (zlib's), plus the flush.
        out.reserve(payload.len() + payload.len() / 1024 + 32);
        let base_in = self.inner.total_in();
        loop {
            let consumed = (self.inner.total_in() - base_in) as usize;
            let result = self
                .inner
                .compress_vec(&payload[consumed..], out, FlushCompress::Sync);
            let done = (self.inner.total_in() - base_in) as usize == payload.len()
                && out.len() < out.capacity();
            // compress_vec fails only on a stream misuse, impossible here.
            if result.is_err() || done {
                break;
            }
            out.reserve(1024);
        }
        debug_assert!(out[start..].ends_with(&TAIL));
        if out[start..].ends_with(&TAIL) {
            out.truncate(out.len() - TAIL.len());
        }
        self.inner.reset();
    }
}

/// Inflates messages, each with a fresh context, a piece at a time.
pub struct Inflater {
    inner: Decompress,
    /// Bytes of [`TAIL`] fed so far at the end of the current message.
    tail_fed: usize,
    /// The stream's last block was marked final: anything after it in the
    /// message is ignored.
    ended: bool,
}

impl fmt::Debug for Inflater {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Inflater").finish_non_exhaustive()
    }
}

impl Default for Inflater {
    fn default() -> Self {
        Self::new()
    }
}

impl Inflater {
    /// A raw-deflate inflater with the largest window.
    pub fn new() -> Self {
        Self {
            inner: Decompress::new_with_window_bits(false, MAX_WINDOW_BITS),
            tail_fed: 0,
            ended: false,
        }
    }

    /// Inflates from `input` into the spare capacity of `out` (never past
    /// it); returns how many input bytes it consumed. Call again with the
    /// rest once `out` has room.
    pub fn push(&mut self, input: &[u8], out: &mut Vec<u8>) -> Result<usize, InflateError> {
        if self.ended {
            return Ok(input.len());
        }
        let before = self.inner.total_in();
        let status = self
            .inner
            .decompress_vec(input, out, FlushDecompress::None)
            .map_err(corrupt)?;
        if status == Status::StreamEnd {
            self.ended = true;
            return Ok(input.len());
        }
        Ok((self.inner.total_in() - before) as usize)
    }

    /// Ends the message: feeds [`TAIL`] and inflates what it flushes into
    /// the spare capacity of `out`. `true` when every byte is out; `false`
    /// when `out` filled first (call again once it has room).
    pub fn finish(&mut self, out: &mut Vec<u8>) -> Result<bool, InflateError> {
        while !self.ended {
            let before = self.inner.total_in();
            let status = self
                .inner
                .decompress_vec(&TAIL[self.tail_fed..], out, FlushDecompress::Sync)
                .map_err(corrupt)?;
            self.tail_fed += (self.inner.total_in() - before) as usize;
            if status == Status::StreamEnd {
                self.ended = true;
            }
            if out.len() == out.capacity() {
                return Ok(false);
            }
            if self.tail_fed == TAIL.len() {
                break;
            }
        }
        Ok(true)
    }

    /// Ready for the next message.
    pub fn reset(&mut self) {
        self.inner.reset(false);
        self.tail_fed = 0;
        self.ended = false;
    }

    /// Inflates one whole message (its frames' payloads joined) into `out`,
    /// failing once it would pass `limit` bytes; resets afterwards.
    pub fn inflate(
        &mut self,
        compressed: &[u8],
        limit: usize,
        out: &mut Vec<u8>,
    ) -> Result<(), InflateError> {
        let result = self.inflate_inner(compressed, limit, out);
        self.reset();
        result
    }

    fn inflate_inner(
        &mut self,
        mut compressed: &[u8],
        limit: usize,
        out: &mut Vec<u8>,
    ) -> Result<(), InflateError> {
        let start = out.len();
        let room = |out: &mut Vec<u8>| -> Result<(), InflateError> {
            if out.len() - start > limit {
                return Err(InflateError::TooLarge { limit });
            }
            if out.len() == out.capacity() {
                // One byte past the limit is enough to know it is too big.
                let left = limit + 1 - (out.len() - start);
                out.reserve_exact(left.min(out.capacity().max(1024)));
            }
            Ok(())
        };
        while !compressed.is_empty() {
            room(out)?;
            let consumed = self.push(compressed, out)?;
            compressed = &compressed[consumed..];
        }
        loop {
            room(out)?;
            if self.finish(out)? {
                break;
            }
        }
        room(out)
    }
}

fn corrupt(error: flate2::DecompressError) -> InflateError {
    InflateError::Corrupt(
        error
            .message()
            .unwrap_or("invalid deflate data")
            .to_string(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn offer(values: &[&str]) -> Option<Agreement> {
        negotiate(values.iter().map(|v| v.as_bytes()))
    }

    fn agreed(bits: Option<u8>) -> Option<Agreement> {
        Some(Agreement {
            server_max_window_bits: bits,
        })
    }

    #[test]
    fn what_browsers_offer_is_accepted() {
        // Chromium, Firefox, Safari.
        assert_eq!(
            offer(&["permessage-deflate; client_max_window_bits"]),
            agreed(None)
        );
        assert_eq!(offer(&["permessage-deflate"]), agreed(None));
        assert_eq!(
            offer(&["permessage-deflate; client_max_window_bits; server_max_window_bits=10"]),
            agreed(Some(10))
        );
    }

    #[test]
    fn the_answer_never_names_client_max_window_bits() {
        let answer = agreed(None).map(|a| a.response());
        assert_eq!(
            answer.as_deref(),
            Some("permessage-deflate; server_no_context_takeover; client_no_context_takeover")
        );
        let answer = agreed(Some(9)).map(|a| a.response()).unwrap_or_default();
        assert!(answer.ends_with("; server_max_window_bits=9"), "{answer}");
        assert!(!answer.contains("client_max_window_bits"));
        assert_eq!(agreed(Some(8)).map(|a| a.compress_window_bits()), Some(9));
        assert_eq!(agreed(None).map(|a| a.compress_window_bits()), Some(15));
    }

    #[test]
    fn invalid_offers_are_skipped_for_the_next() {
        for bad in [
            "permessage-deflate; foo",
            "permessage-deflate; server_no_context_takeover; server_no_context_takeover",
            "permessage-deflate; server_max_window_bits=16",
            "permessage-deflate; server_max_window_bits=7",
            "permessage-deflate; server_max_window_bits=09",
            "permessage-deflate; server_max_window_bits",
            "permessage-deflate; client_max_window_bits=7",
            "permessage-deflate; client_max_window_bits=16",
            "permessage-deflate; client_no_context_takeover=1",
            "permessage-deflate; server_no_context_takeover=\"\"",
            "permessage-deflate; client_max_window_bits; client_max_window_bits",
            "permessage-deflate;",
            "x-webkit-deflate-frame",
            "",
        ] {
            assert_eq!(offer(&[bad]), None, "{bad:?} was accepted");
            // The next offer, on the same line or the next, is taken.
            let same_line = format!("{bad}, permessage-deflate; server_max_window_bits=12");
            assert_eq!(offer(&[&same_line]), agreed(Some(12)), "{same_line:?}");
            assert_eq!(
                offer(&[bad, "permessage-deflate"]),
                agreed(None),
                "{bad:?} then a bare offer"
            );
        }
    }

    #[test]
    fn values_may_be_quoted_and_names_any_case() {
        assert_eq!(
            offer(&["Permessage-Deflate; Server_Max_Window_Bits=\"11\""]),
            agreed(Some(11))
        );
        // A comma inside quotes does not start a new offer.
        assert_eq!(
            offer(&["permessage-deflate; server_max_window_bits=\"1,permessage-deflate\""]),
            None
        );
    }

    #[test]
    fn messages_round_trip_at_every_window() {
        let text: Vec<u8> = (0..10_000u32)
            .flat_map(|i| format!("{{\"n\":{i},\"text\":\"hello\"}}").into_bytes())
            .collect();
        for bits in 8..=15 {
            let mut deflater = Deflater::new(1, bits);
            let mut inflater = Inflater::new();
            for payload in [&b""[..], b"a", &text[..100], &text] {
                let mut compressed = Vec::new();
                deflater.compress(payload, &mut compressed);
                assert!(!compressed.ends_with(&TAIL));
                let mut out = Vec::new();
                inflater
                    .inflate(&compressed, payload.len(), &mut out)
                    .expect("inflates");
                assert_eq!(out, payload, "window {bits}, {} bytes", payload.len());
            }
        }
    }

    #[test]
    fn the_limit_is_exact() {
        let payload = vec![b'a'; 100_000];
        let mut compressed = Vec::new();
        Deflater::new(1, 15).compress(&payload, &mut compressed);
        let mut inflater = Inflater::new();
        let mut out = Vec::new();
        assert!(inflater.inflate(&compressed, 100_000, &mut out).is_ok());
        out.clear();
        assert_eq!(
            inflater.inflate(&compressed, 99_999, &mut out),
            Err(InflateError::TooLarge { limit: 99_999 })
        );
        assert!(out.capacity() <= 100_000 + 1024, "{}", out.capacity());
    }

    #[test]
    fn corrupt_data_is_an_error() {
        let mut out = Vec::new();
        let result = Inflater::new().inflate(&[0xff; 16], 1 << 20, &mut out);
        assert!(
            matches!(result, Err(InflateError::Corrupt(_))),
            "{result:?}"
        );
    }
}
