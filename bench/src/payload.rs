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

use thiserror::Error;

/// Bytes of the stamp at the front of each message.
pub const STAMP_LEN: usize = 20;

/// Shortest message that carries its send time (open loop reads latency
/// from the echo itself).
pub const TIMED_LEN: usize = 16;

/// How an echo differs from what was sent.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum Mismatch {
    /// A text frame came back for a binary message.
    #[error("a text message came back for a binary one")]
    Opcode,
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
    bytes: Vec<u8>,
}

impl Payload {
    /// A `size`-byte message for connection `connection`, stamped with
    /// sequence 0 and time 0.
    #[must_use]
    pub fn new(connection: u32, size: usize) -> Self {
        let mut bytes: Vec<u8> = (0..size).map(|i| filler(connection, i)).collect();
        let mut stamp = [0; STAMP_LEN];
        stamp[16..20].copy_from_slice(&connection.to_le_bytes());
        let n = size.min(STAMP_LEN);
        bytes[..n].copy_from_slice(&stamp[..n]);
        Self { bytes }
    }

    /// Stamps the next message and returns it.
    pub fn stamp(&mut self, seq: u64, sent_ns: u64) -> &[u8] {
        let mut stamp = [0; TIMED_LEN];
        stamp[..8].copy_from_slice(&seq.to_le_bytes());
        stamp[8..].copy_from_slice(&sent_ns.to_le_bytes());
        let n = self.bytes.len().min(TIMED_LEN);
        self.bytes[..n].copy_from_slice(&stamp[..n]);
        &self.bytes
    }

    /// The current message.
    #[must_use]
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// Checks that `echo` is exactly the current message (closed loop: one
    /// message in flight, so the buffer still holds it).
    ///
    /// # Errors
    /// The first difference found.
    pub fn verify(&self, echo: &[u8]) -> Result<(), Mismatch> {
        if echo == self.bytes.as_slice() {
            return Ok(());
        }
        Err(first_difference(&self.bytes, echo, 0))
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
        if echo.len() != self.bytes.len() || echo.len() < TIMED_LEN {
            return Err(Mismatch::Length {
                expected: self.bytes.len(),
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
        if echo[TIMED_LEN..] != self.bytes[TIMED_LEN..] {
            return Err(first_difference(
                &self.bytes[TIMED_LEN..],
                &echo[TIMED_LEN..],
                TIMED_LEN,
            ));
        }
        Ok(read_u64(&echo[8..16]))
    }
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
}
