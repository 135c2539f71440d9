//! Where the bytes handed to tungstenite stand in the frame sequence.
//!
//! tungstenite reserves room for a whole frame in its read buffer when it
//! parses the frame's header, and keeps that capacity afterwards: one
//! 16 MiB message and the connection holds 16 MiB until it ends (measured:
//! 50 idle clients that had each echoed one 8 MB message kept the server at
//! 397 MB). It offers no way to shrink the buffer, so the session replaces
//! its codec instead, at a moment when the codec holds nothing: every byte
//! it was given belonged to frames it has returned, and no fragmented
//! message is half assembled. [`FrameScan`] follows the frame headers in
//! the byte stream, as tungstenite will see it, to tell when that is.
//!
//! It reads headers only; validation (reserved bits, opcodes, masking,
//! sizes) stays tungstenite's, which fails the connection on anything
//! wrong, so the scan never needs to be right about a bad stream.

/// A frame whose payload is larger than this may have grown tungstenite's
/// buffer past the size it starts with ([`crate::wire::FRAME_CHUNK`]).
pub(crate) const LARGE_FRAME: u64 = crate::wire::FRAME_CHUNK as u64;

/// Longest frame header: 2 bytes, an 8-byte length, a 4-byte mask key.
const MAX_HEADER: usize = 14;

/// Follows frame boundaries in a WebSocket byte stream.
#[derive(Debug, Default)]
pub(crate) struct FrameScan {
    /// Payload bytes of the current frame still to come.
    payload_left: u64,
    /// The header read so far, while one is split across reads.
    header: [u8; MAX_HEADER],
    header_len: u8,
    /// Inside a fragmented data message (its first frame had FIN clear).
    fragmented: bool,
    /// A frame over [`LARGE_FRAME`] went by since the last [`FrameScan::reset_large`].
    large: bool,
}

impl FrameScan {
    /// Takes note of bytes about to be handed to the parser.
    pub(crate) fn feed(&mut self, mut bytes: &[u8]) {
        while !bytes.is_empty() {
            if self.payload_left > 0 {
                let skip = usize::try_from(self.payload_left)
                    .unwrap_or(usize::MAX)
                    .min(bytes.len());
                self.payload_left -= skip as u64;
                bytes = &bytes[skip..];
                continue;
            }
            // The usual case, a whole header in this read: no copy.
            if self.header_len == 0
                && let Some(len) = header_len(bytes)
            {
                self.on_header(&bytes[..len]);
                bytes = &bytes[len..];
                continue;
            }
            // A header split across reads: gather it.
            let have = usize::from(self.header_len);
            let take = (MAX_HEADER - have).min(bytes.len());
            self.header[have..have + take].copy_from_slice(&bytes[..take]);
            match header_len(&self.header[..have + take]) {
                Some(len) => {
                    let header = self.header;
                    self.header_len = 0;
                    self.on_header(&header[..len]);
                    // The bytes copied past the header belong to the
                    // payload or the next frame.
                    bytes = &bytes[len - have..];
                }
                None => {
                    self.header_len = (have + take) as u8;
                    bytes = &bytes[take..];
                }
            }
        }
    }

    /// Takes note of one complete frame header.
    fn on_header(&mut self, header: &[u8]) {
        let (first, second) = (header[0], header[1]);
        let fin = first & 0x80 != 0;
        let payload = match second & 0x7f {
            126 => u64::from(u16::from_be_bytes([header[2], header[3]])),
            127 => {
                let mut bytes = [0; 8];
                bytes.copy_from_slice(&header[2..10]);
                u64::from_be_bytes(bytes)
            }
            short => u64::from(short),
        };
        match first & 0x0f {
            // Text or binary: starts a message, whole or fragmented.
            0x1 | 0x2 => self.fragmented = !fin,
            // Continuation: the last one ends the message.
            0x0 if fin => self.fragmented = false,
            // Control frames (and bad opcodes, which end the connection)
            // do not touch a message in progress.
            _ => {}
        }
        self.large |= payload > LARGE_FRAME;
        self.payload_left = payload;
    }

    /// Whether the bytes so far end exactly at the end of a frame, outside
    /// any fragmented message: a parser that has returned everything it was
    /// given holds nothing.
    pub(crate) fn at_message_boundary(&self) -> bool {
        self.payload_left == 0 && self.header_len == 0 && !self.fragmented
    }

    /// Whether a frame over [`LARGE_FRAME`] went by since the last reset.
    pub(crate) fn saw_large_frame(&self) -> bool {
        self.large
    }

    /// Forgets large frames seen so far (the parser was replaced).
    pub(crate) fn reset_large(&mut self) {
        self.large = false;
    }
}

/// The length of the frame header at the start of `bytes`, once all of it
/// is there.
fn header_len(bytes: &[u8]) -> Option<usize> {
    let second = *bytes.get(1)?;
    let extended = match second & 0x7f {
        126 => 2,
        127 => 8,
        _ => 0,
    };
    let mask = if second & 0x80 != 0 { 4 } else { 0 };
    let len = 2 + extended + mask;
    (bytes.len() >= len).then_some(len)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A masked client frame.
    fn frame(fin: bool, opcode: u8, payload_len: usize) -> Vec<u8> {
        let mut out = vec![if fin { 0x80 } else { 0 } | opcode];
        match payload_len {
            0..=125 => out.push(0x80 | payload_len as u8),
            126..=0xffff => {
                out.push(0x80 | 126);
                out.extend_from_slice(&(payload_len as u16).to_be_bytes());
            }
            _ => {
                out.push(0x80 | 127);
                out.extend_from_slice(&(payload_len as u64).to_be_bytes());
            }
        }
        out.extend_from_slice(&[1, 2, 3, 4]);
        out.extend(std::iter::repeat_n(0xAA, payload_len));
        out
    }

    /// Feeds `stream` in pieces of `step` bytes and returns the boundary
    /// state after each piece.
    fn boundaries(stream: &[u8], step: usize) -> (FrameScan, Vec<bool>) {
        let mut scan = FrameScan::default();
        let states = stream
            .chunks(step)
            .map(|piece| {
                scan.feed(piece);
                scan.at_message_boundary()
            })
            .collect();
        (scan, states)
    }

    #[test]
    fn follows_every_length_form_in_any_split() {
        let mut stream = Vec::new();
        for len in [0, 1, 125, 126, 127, 65_535, 65_536, 70_000] {
            stream.extend(frame(true, 0x2, len));
        }
        for step in [1, 2, 3, 7, 13, 14, 15, 1000, stream.len()] {
            let (scan, states) = boundaries(&stream, step);
            assert_eq!(states.last(), Some(&true), "step {step}");
            assert!(
                scan.saw_large_frame(),
                "70,000 bytes is large (step {step})"
            );
        }
        // Mid-frame is not a boundary, header or payload.
        let (_, states) = boundaries(&frame(true, 0x1, 300), 1);
        assert!(states[..states.len() - 1].iter().all(|&at| !at));
    }

    #[test]
    fn a_fragmented_message_is_not_a_boundary_until_its_last_frame() {
        let mut scan = FrameScan::default();
        scan.feed(&frame(false, 0x1, 10));
        assert!(!scan.at_message_boundary());
        // A ping in between changes nothing.
        scan.feed(&frame(true, 0x9, 4));
        assert!(!scan.at_message_boundary());
        scan.feed(&frame(false, 0x0, 10));
        assert!(!scan.at_message_boundary());
        scan.feed(&frame(true, 0x0, 10));
        assert!(scan.at_message_boundary());
        assert!(!scan.saw_large_frame());
    }

    #[test]
    fn large_is_remembered_until_reset() {
        let mut scan = FrameScan::default();
        scan.feed(&frame(true, 0x2, LARGE_FRAME as usize));
        assert!(!scan.saw_large_frame(), "the limit itself is not large");
        scan.feed(&frame(true, 0x2, LARGE_FRAME as usize + 1));
        scan.feed(&frame(true, 0x2, 5));
        assert!(scan.saw_large_frame());
        scan.reset_large();
        assert!(!scan.saw_large_frame());
        assert!(scan.at_message_boundary());
    }
}
