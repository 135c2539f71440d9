//! Hex for binary messages: parsing what a person types into the send box,
//! and the short preview the log shows. Plain Rust.

use std::fmt::Write as _;

/// Why typed hex could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HexError {
    /// A character that is neither a hex digit nor a separator.
    #[error("'{found}' at position {position} is not a hex digit")]
    InvalidDigit {
        /// The character.
        found: char,
        /// Its position, counted in characters from 0.
        position: usize,
    },
    /// An odd number of digits: the last byte is incomplete.
    #[error("odd number of hex digits ({0}): each byte needs two")]
    OddLength(usize),
}

/// Parses hex digits into bytes. Whitespace, `:`, `,`, `-` and `0x`
/// prefixes are ignored, so `de ad be ef`, `DEADBEEF`, `de:ad:be:ef` and
/// `0xde, 0xad` all work.
///
/// # Errors
/// [`HexError`] points at the first problem.
pub fn parse(text: &str) -> Result<Vec<u8>, HexError> {
    let mut bytes = Vec::with_capacity(text.len() / 2);
    let mut high: Option<u8> = None;
    let mut digits = 0usize;
    let mut chars = text.chars().enumerate().peekable();
    while let Some((position, c)) = chars.next() {
        // A "0x" prefix: a 0 directly followed by x, at the start of a byte.
        if c == '0' && high.is_none() && matches!(chars.peek(), Some((_, 'x' | 'X'))) {
            chars.next();
            continue;
        }
        if c.is_whitespace() || matches!(c, ':' | ',' | '-') {
            continue;
        }
        let Some(value) = c.to_digit(16) else {
            return Err(HexError::InvalidDigit { found: c, position });
        };
        digits += 1;
        // to_digit(16) is below 16, so this is lossless.
        let value = value as u8;
        match high.take() {
            None => high = Some(value),
            Some(h) => bytes.push(h << 4 | value),
        }
    }
    if high.is_some() {
        return Err(HexError::OddLength(digits));
    }
    Ok(bytes)
}

/// The first `max_bytes` bytes as spaced lowercase hex, with `…` when there
/// is more.
pub fn preview(bytes: &[u8], max_bytes: usize) -> String {
    let shown = &bytes[..bytes.len().min(max_bytes)];
    let mut out = String::with_capacity(shown.len() * 3 + 2);
    for (i, byte) in shown.iter().enumerate() {
        if i > 0 {
            out.push(' ');
        }
        // Writing to a String cannot fail.
        let _ = write!(out, "{byte:02x}");
    }
    if bytes.len() > shown.len() {
        out.push_str(" …");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_common_spellings() {
        let want = vec![0xde, 0xad, 0xbe, 0xef];
        for text in [
            "deadbeef",
            "DE AD BE EF",
            "de:ad:be:ef",
            "0xde, 0xad, 0xbe, 0xef",
            " de-ad\nbe\tef ",
        ] {
            assert_eq!(parse(text), Ok(want.clone()), "{text:?}");
        }
        assert_eq!(parse(""), Ok(Vec::new()));
        assert_eq!(parse("00 0a"), Ok(vec![0, 10]));
    }

    #[test]
    fn points_at_mistakes() {
        assert_eq!(
            parse("de ag"),
            Err(HexError::InvalidDigit {
                found: 'g',
                position: 4
            })
        );
        assert_eq!(parse("abc"), Err(HexError::OddLength(3)));
    }

    #[test]
    fn preview_is_short_and_marks_the_rest() {
        assert_eq!(preview(&[0, 1, 0xff], 8), "00 01 ff");
        assert_eq!(preview(&[1, 2, 3, 4], 2), "01 02 …");
        assert_eq!(preview(&[], 8), "");
    }
}
