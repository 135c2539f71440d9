//! permessage-deflate on the server side (RFC 7692): what a connection
//! agreed to, the compressors each worker thread keeps, and the failures a
//! compressed message can end a connection with.
//!
//! Negotiation and the codec itself are `duplex_protocol::deflate`'s; the
//! inbound frames are inflated by the Wire (`wire::inflate`) and outbound
//! messages compressed here, by the session for its own replies and once per
//! published message for a room (`wire::Frame::for_member`).

use std::cell::RefCell;
use std::io;

use duplex_protocol::deflate::{
    Agreement, Deflater, InflateError, Inflater, MAX_WINDOW_BITS, MIN_COMPRESS_WINDOW_BITS,
};

/// The compression level. zlib-rs's level 1 is its quick strategy (static
/// Huffman codes): 1 KiB of chat JSON becomes 565 B in 7.9 µs; level 2
/// makes 426 B of it but takes 18.3 µs, level 6 418 B in 21 µs. A server
/// compresses every message it sends, so the cheapest bytes saved per µs
/// win (docs/bench.md, permessage-deflate).
pub(crate) const LEVEL: u32 = 1;

/// Inflaters kept per worker thread for the next compressed message
/// (~47 KB each); more in use at once are created and freed.
const INFLATERS_KEPT: usize = 16;

/// How one connection compresses what it sends: negotiated, and above
/// which size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Compression {
    /// The window the client let us use (`server_max_window_bits`).
    window_bits: u8,
    /// Data messages smaller than this go uncompressed
    /// (`--deflate-threshold`).
    threshold: usize,
}

impl Compression {
    pub(crate) fn new(agreement: &Agreement, threshold: usize) -> Self {
        Self {
            window_bits: agreement.compress_window_bits(),
            threshold,
        }
    }

    /// Whether a payload of `len` bytes is compressed.
    #[inline]
    pub(crate) fn applies_to(&self, len: usize) -> bool {
        len >= self.threshold
    }

    /// The window bits, as an index from 0 (the smallest zlib uses).
    pub(crate) fn window_index(&self) -> usize {
        usize::from(self.window_bits - MIN_COMPRESS_WINDOW_BITS)
    }

    /// `payload` compressed as one permessage-deflate message, or `None`
    /// when compression would not make it smaller (random or already
    /// compressed data): then it is sent as it is, RSV1 clear.
    pub(crate) fn compress(&self, payload: &[u8]) -> Option<Vec<u8>> {
        let mut out = Vec::new();
        with_deflater(self.window_index(), self.window_bits, |deflater| {
            deflater.compress(payload, &mut out);
        });
        (out.len() < payload.len()).then_some(out)
    }
}

/// How many window sizes a compressor can have (9 to 15 bits).
pub(crate) const WINDOWS: usize = (MAX_WINDOW_BITS - MIN_COMPRESS_WINDOW_BITS + 1) as usize;

thread_local! {
    /// One compressor per window size per worker thread: compressing never
    /// awaits, so one at a time is ever in use on a thread, and an idle
    /// connection holds none (a compressor is ~380 KB at 15 bits).
    static DEFLATERS: RefCell<[Option<Deflater>; WINDOWS]> =
        const { RefCell::new([const { None }; WINDOWS]) };
    /// Inflaters between messages. A message may take several reads, so a
    /// connection borrows one for the whole message (`wire::inflate`).
    static INFLATERS: RefCell<Vec<Inflater>> = const { RefCell::new(Vec::new()) };
}

/// Runs `f` with this thread's compressor for `window_bits` (at `index`,
/// [`Compression::window_index`]).
fn with_deflater<T>(index: usize, window_bits: u8, f: impl FnOnce(&mut Deflater) -> T) -> T {
    DEFLATERS.with(|deflaters| {
        let mut deflaters = deflaters.borrow_mut();
        let deflater = deflaters[index].get_or_insert_with(|| Deflater::new(LEVEL, window_bits));
        f(deflater)
    })
}

/// An inflater for one message, from this thread's pool.
pub(crate) fn take_inflater() -> Inflater {
    INFLATERS
        .with(|pool| pool.borrow_mut().pop())
        .unwrap_or_default()
}

/// Gives an inflater back after its message (it is reset here).
pub(crate) fn give_back_inflater(mut inflater: Inflater) {
    inflater.reset();
    INFLATERS.with(|pool| {
        let mut pool = pool.borrow_mut();
        if pool.len() < INFLATERS_KEPT {
            pool.push(inflater);
        }
    });
}

/// Why a compressed message ends its connection, and with which close code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum DeflateError {
    /// Not a valid deflate stream: 1007 (RFC 7692 §8.1: invalid data).
    #[error("corrupt compressed data: {0}")]
    Corrupt(String),
    /// It inflates past `--max-message-size`, or a compressed frame is
    /// over `--max-frame-size`: 1009.
    #[error("compressed message too big")]
    TooLarge,
    /// Frames that break RFC 7692's rules on RSV1 (a continuation with it
    /// set, a new message inside a compressed one): 1002.
    #[error("compressed frames out of order")]
    Protocol,
}

impl From<InflateError> for DeflateError {
    fn from(error: InflateError) -> Self {
        match error {
            InflateError::Corrupt(why) => Self::Corrupt(why),
            InflateError::TooLarge { .. } => Self::TooLarge,
        }
    }
}

impl From<DeflateError> for io::Error {
    /// Carried through tungstenite as the cause of a read error; `close.rs`
    /// finds it there and picks the close code.
    fn from(error: DeflateError) -> Self {
        io::Error::new(io::ErrorKind::InvalidData, error)
    }
}

impl DeflateError {
    /// The deflate failure behind an I/O error, if that is what it is.
    pub(crate) fn in_io(error: &io::Error) -> Option<&Self> {
        error.get_ref()?.downcast_ref()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compression_is_skipped_when_it_does_not_shrink() {
        let agreement = Agreement {
            server_max_window_bits: None,
        };
        let compression = Compression::new(&agreement, 16);
        assert!(!compression.applies_to(15));
        assert!(compression.applies_to(16));
        let text = "{\"type\":\"message\",\"text\":\"hello hello hello\"}".repeat(20);
        let compressed = compression.compress(text.as_bytes()).expect("shrinks");
        let mut out = Vec::new();
        Inflater::new()
            .inflate(&compressed, text.len(), &mut out)
            .expect("inflates");
        assert_eq!(out, text.as_bytes());
        // Bytes with no repetition do not shrink.
        let mut state = 0x2545_f491_4f6c_dd1d_u64;
        let noise: Vec<u8> = (0..4096)
            .map(|_| {
                // xorshift64: no run or repeat for deflate to find.
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                (state >> 24) as u8
            })
            .collect();
        assert_eq!(compression.compress(&noise), None);
    }

    #[test]
    fn the_cause_survives_an_io_error() {
        let error: io::Error = DeflateError::TooLarge.into();
        assert_eq!(DeflateError::in_io(&error), Some(&DeflateError::TooLarge));
        assert_eq!(
            DeflateError::in_io(&io::ErrorKind::InvalidData.into()),
            None
        );
    }
}
