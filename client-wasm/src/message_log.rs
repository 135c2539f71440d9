//! The message log's model: what happened, in order, with a cap on how much
//! is kept, and which rows a scrolled viewport shows. Plain Rust.
//!
//! Entries keep a short preview, never the payload, so 20,000 entries of
//! 1 MiB messages cost kilobytes. Rendering is virtualised: the page draws
//! only the rows [`visible_rows`] names, so the log stays smooth however
//! many entries it holds.

use std::collections::VecDeque;
use std::ops::Range;

use crate::format;
use crate::hex;
use crate::message::{CloseInfo, Message};

/// Entries kept by default; older ones are dropped (and counted).
pub const DEFAULT_CAPACITY: usize = 20_000;
/// Characters of a text message shown in its row.
pub const TEXT_PREVIEW_CHARS: usize = 200;
/// Bytes of a binary message shown as hex in its row.
pub const HEX_PREVIEW_BYTES: usize = 24;

/// Which way an entry went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Written to the socket.
    Sent,
    /// Received from the socket.
    Received,
    /// Something that happened to the connection.
    Event,
}

/// What an entry says.
#[derive(Debug, Clone, PartialEq)]
pub enum Body {
    /// A text message: its first characters and its size.
    Text {
        /// Up to [`TEXT_PREVIEW_CHARS`] characters, line breaks shown as ⏎.
        preview: String,
        /// Size in bytes.
        bytes: usize,
    },
    /// A binary message: its size and first bytes in hex.
    Binary {
        /// Up to [`HEX_PREVIEW_BYTES`] bytes as hex.
        preview: String,
        /// Size in bytes.
        bytes: usize,
    },
    /// The connection closed.
    Closed(CloseInfo),
    /// A state change or other note.
    Note(String),
    /// Something failed.
    Error(String),
}

/// One row of the log.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    /// Position since the log was created; survives dropping old entries.
    pub seq: u64,
    /// Wall-clock time, milliseconds since the Unix epoch.
    pub time_ms: f64,
    /// Which way it went.
    pub direction: Direction,
    /// What it says.
    pub body: Body,
}

impl Body {
    /// The row for a data message.
    pub fn of_message(message: &Message) -> Self {
        match message {
            Message::Text(text) => Self::Text {
                preview: text_preview(text, TEXT_PREVIEW_CHARS),
                bytes: text.len(),
            },
            Message::Binary(bytes) => Self::Binary {
                preview: hex::preview(bytes, HEX_PREVIEW_BYTES),
                bytes: bytes.len(),
            },
        }
    }

    /// A short word for the kind of entry, for the row's badge.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Text { .. } => "text",
            Self::Binary { .. } => "binary",
            Self::Closed(_) => "close",
            Self::Note(_) => "event",
            Self::Error(_) => "error",
        }
    }

    /// The size column: bytes for messages, empty otherwise.
    pub fn size(&self) -> String {
        match self {
            Self::Text { bytes, .. } | Self::Binary { bytes, .. } => format::bytes(*bytes as u64),
            Self::Closed(_) | Self::Note(_) | Self::Error(_) => String::new(),
        }
    }

    /// The content column.
    pub fn content(&self) -> String {
        match self {
            Self::Text { preview, .. } | Self::Binary { preview, .. } => preview.clone(),
            Self::Closed(info) => format!("closed: {info}"),
            Self::Note(note) | Self::Error(note) => note.clone(),
        }
    }
}

/// A one-line preview: at most `max_chars` characters, line breaks as ⏎.
pub fn text_preview(text: &str, max_chars: usize) -> String {
    let mut out = String::with_capacity(text.len().min(max_chars * 2));
    let mut chars = text.chars();
    for c in chars.by_ref().take(max_chars) {
        match c {
            '\n' => out.push('⏎'),
            '\r' => {}
            c if c.is_control() => out.push('·'),
            c => out.push(c),
        }
    }
    if chars.next().is_some() {
        out.push('…');
    }
    out
}

/// The entries, oldest first, at most `capacity` of them.
#[derive(Debug, Clone)]
pub struct MessageLog {
    entries: VecDeque<Entry>,
    capacity: usize,
    /// Entries dropped from the front to respect `capacity`.
    dropped: u64,
    next_seq: u64,
}

impl Default for MessageLog {
    fn default() -> Self {
        Self::new(DEFAULT_CAPACITY)
    }
}

impl MessageLog {
    /// An empty log keeping at most `capacity` entries (at least one).
    pub fn new(capacity: usize) -> Self {
        Self {
            entries: VecDeque::new(),
            capacity: capacity.max(1),
            dropped: 0,
            next_seq: 0,
        }
    }

    /// Appends an entry, dropping the oldest when full.
    pub fn push(&mut self, time_ms: f64, direction: Direction, body: Body) {
        if self.entries.len() == self.capacity {
            self.entries.pop_front();
            self.dropped += 1;
        }
        self.entries.push_back(Entry {
            seq: self.next_seq,
            time_ms,
            direction,
            body,
        });
        self.next_seq += 1;
    }

    /// Entries held.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the log is empty.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Entries dropped because of the cap.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    /// The entry at `index` (0 is the oldest held).
    pub fn get(&self, index: usize) -> Option<&Entry> {
        self.entries.get(index)
    }

    /// The entries in `range` (clamped to what is held).
    pub fn range(&self, range: Range<usize>) -> impl Iterator<Item = &Entry> {
        let end = range.end.min(self.entries.len());
        let start = range.start.min(end);
        self.entries.range(start..end)
    }

    /// Forgets every entry.
    pub fn clear(&mut self) {
        self.entries.clear();
        self.dropped = 0;
    }
}

/// Which rows of a virtualised list to draw: those in the viewport plus
/// `overscan` rows either side, so a fast scroll does not show gaps.
pub fn visible_rows(
    scroll_top: f64,
    viewport_height: f64,
    row_height: f64,
    len: usize,
    overscan: usize,
) -> Range<usize> {
    if len == 0 || row_height <= 0.0 || !row_height.is_finite() {
        return 0..0;
    }
    let scroll_top = if scroll_top.is_finite() {
        scroll_top.max(0.0)
    } else {
        0.0
    };
    let viewport = if viewport_height.is_finite() {
        viewport_height.max(0.0)
    } else {
        0.0
    };
    let first = ((scroll_top / row_height).floor() as usize).min(len);
    let last = (((scroll_top + viewport) / row_height).ceil() as usize).min(len);
    first.saturating_sub(overscan)..last.saturating_add(overscan).min(len)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cap_drops_the_oldest_and_counts_them() {
        let mut log = MessageLog::new(3);
        for i in 0..5 {
            log.push(f64::from(i), Direction::Event, Body::Note(i.to_string()));
        }
        assert_eq!(log.len(), 3);
        assert_eq!(log.dropped(), 2);
        let seqs: Vec<u64> = log.range(0..10).map(|e| e.seq).collect();
        assert_eq!(seqs, [2, 3, 4]);
        assert_eq!(log.get(0).map(|e| e.body.content()), Some("2".into()));
    }

    #[test]
    fn messages_become_short_rows() {
        let long = "x".repeat(1000);
        let body = Body::of_message(&Message::Text(format!("a\nb{long}")));
        let Body::Text { preview, bytes } = &body else {
            panic!("text body expected");
        };
        assert_eq!(*bytes, 1003);
        assert!(preview.starts_with("a⏎bx"));
        assert_eq!(preview.chars().count(), TEXT_PREVIEW_CHARS + 1);
        let binary = Body::of_message(&Message::Binary(vec![0xab; 1 << 20]));
        assert_eq!(binary.kind(), "binary");
        assert_eq!(binary.size(), "1.0 MiB");
        assert!(binary.content().starts_with("ab ab ab"));
        assert!(binary.content().ends_with('…'));
    }

    #[test]
    fn close_rows_show_code_and_reason() {
        let body = Body::Closed(CloseInfo {
            code: 4001,
            reason: "done".into(),
            was_clean: true,
        });
        assert_eq!(body.content(), "closed: 4001 application \"done\"");
        assert_eq!(body.size(), "");
    }

    #[test]
    fn visible_rows_cover_the_viewport_plus_overscan() {
        // 10,000 rows of 24 px, viewport 480 px scrolled to row 100.
        assert_eq!(visible_rows(2400.0, 480.0, 24.0, 10_000, 5), 95..125);
        assert_eq!(visible_rows(0.0, 480.0, 24.0, 10_000, 5), 0..25);
        // Scrolled past the end (the list shrank): clamped.
        assert_eq!(visible_rows(1e9, 480.0, 24.0, 10, 5), 5..10);
        assert_eq!(visible_rows(0.0, 480.0, 24.0, 0, 5), 0..0);
        assert_eq!(visible_rows(f64::NAN, 480.0, 0.0, 10, 5), 0..0);
    }
}
