//! A room history's epoch: which run of offsets a position counts in.
//!
//! 64 random bits, random rather than counted, so a restarted server (or a
//! Redis that lost its data) cannot hand out an epoch a client still holds
//! from before. On the wire and in Redis it is 16 lowercase hex digits; in
//! memory a `u64`, so each room and each member entry carries 8 bytes
//! instead of a shared string (idle memory per connection is bounded: see
//! docs/bench.md, "History and the Redis engine").

use std::fmt;

/// An epoch. Its text form is [`Epoch`]'s `Display` and [`Epoch::parse`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct Epoch(u64);

/// The digits of an epoch's text form.
const DIGITS: usize = 16;

impl Epoch {
    /// A fresh epoch from the OS's generator; if that fails (it does not on
    /// Linux once booted), the clock still makes a restart's epochs differ.
    pub(crate) fn new() -> Self {
        let mut bytes = [0u8; 8];
        if getrandom::fill(&mut bytes).is_err() {
            let nanos = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |elapsed| elapsed.as_nanos());
            bytes = (nanos as u64).to_be_bytes();
        }
        Self(u64::from_be_bytes(bytes))
    }

    /// The epoch `text` names: exactly 16 lowercase hex digits, the form
    /// Duplex writes, so the text and the value correspond one to one (a
    /// client's `since` compares equal here exactly when it does as text in
    /// Redis's scripts). Anything else names no epoch Duplex handed out.
    pub(crate) fn parse(text: &str) -> Option<Self> {
        let digits = text.len() == DIGITS
            && text
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        digits
            .then(|| u64::from_str_radix(text, 16).ok())
            .flatten()
            .map(Self)
    }
}

impl fmt::Display for Epoch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:0width$x}", self.0, width = DIGITS)
    }
}

#[cfg(test)]
mod tests {
    use super::Epoch;

    #[test]
    fn epochs_differ_and_read_back() {
        let (a, b) = (Epoch::new(), Epoch::new());
        assert_ne!(a, b);
        assert_eq!(a.to_string().len(), 16);
        assert_eq!(Epoch::parse(&a.to_string()), Some(a));
        assert_eq!(Epoch(1).to_string(), "0000000000000001");
        assert_eq!(Epoch::parse("0000000000000001"), Some(Epoch(1)));
    }

    #[test]
    fn only_the_written_form_parses() {
        for text in [
            "",
            "1",
            "00000000000000001",
            "000000000000000A",
            "+00000000000000a",
            "another",
            "000000000000000g",
        ] {
            assert_eq!(Epoch::parse(text), None, "{text:?}");
        }
    }
}
