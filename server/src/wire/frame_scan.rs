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
//! It reads headers only, with the shared codec's parser, which judges
//! nothing; validation (reserved bits, opcodes, masking, sizes) stays
//! tungstenite's, which fails the connection on anything wrong, so the scan
//! never needs to be right about a bad stream.

use duplex_protocol::frame::{Header, MAX_HEADER_LEN, OpCode};

/// A frame whose payload is larger than this may have grown tungstenite's
/// buffer past the size it starts with ([`crate::config::FRAME_CHUNK`]).
pub(crate) const LARGE_FRAME: u64 = crate::config::FRAME_CHUNK as u64;

/// Follows frame boundaries in a WebSocket byte stream.
#[derive(Debug, Default)]
pub(crate) struct FrameScan {
    /// Payload bytes of the current frame still to come.
    payload_left: u64,
    /// The header read so far, while one is split across reads.
    header: [u8; MAX_HEADER_LEN],
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
                && let Some((header, len)) = Header::parse(bytes)
            {
                self.on_header(&header);
                bytes = &bytes[len..];
                continue;
            }
            // A header split across reads: gather it.
            let have = usize::from(self.header_len);
            let take = (MAX_HEADER_LEN - have).min(bytes.len());
            self.header[have..have + take].copy_from_slice(&bytes[..take]);
            match Header::parse(&self.header[..have + take]) {
                Some((header, len)) => {
                    self.header_len = 0;
                    self.on_header(&header);
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
    fn on_header(&mut self, header: &Header) {
        match header.opcode() {
            // Text or binary: starts a message, whole or fragmented.
            Some(OpCode::Text | OpCode::Binary) => self.fragmented = !header.fin,
            // Continuation: the last one ends the message.
            Some(OpCode::Continuation) if header.fin => self.fragmented = false,
            // Control frames (and bad opcodes, which end the connection)
            // do not touch a message in progress.
            _ => {}
        }
        self.large |= header.payload_len > LARGE_FRAME;
        self.payload_left = header.payload_len;
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

#[cfg(test)]
mod tests {
    use duplex_protocol::frame::encode_frame;

    use super::*;

    /// A masked client frame.
    fn frame(fin: bool, opcode: OpCode, payload_len: usize) -> Vec<u8> {
        let header = Header {
            fin,
            ..Header::new(opcode, payload_len as u64).masked([1, 2, 3, 4])
        };
        let mut out = Vec::new();
        encode_frame(&mut out, &header, &vec![0xAA; payload_len]);
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
            stream.extend(frame(true, OpCode::Binary, len));
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
        let (_, states) = boundaries(&frame(true, OpCode::Text, 300), 1);
        assert!(states[..states.len() - 1].iter().all(|&at| !at));
    }

    #[test]
    fn a_fragmented_message_is_not_a_boundary_until_its_last_frame() {
        let mut scan = FrameScan::default();
        scan.feed(&frame(false, OpCode::Text, 10));
        assert!(!scan.at_message_boundary());
        // A ping in between changes nothing.
        scan.feed(&frame(true, OpCode::Ping, 4));
        assert!(!scan.at_message_boundary());
        scan.feed(&frame(false, OpCode::Continuation, 10));
        assert!(!scan.at_message_boundary());
        scan.feed(&frame(true, OpCode::Continuation, 10));
        assert!(scan.at_message_boundary());
        assert!(!scan.saw_large_frame());
    }

    #[test]
    fn bad_frames_are_followed_not_judged() {
        // Reserved bits and opcode, and no mask: tungstenite will refuse
        // the frame; the scan only needs to find where it ends.
        let header = Header {
            fin: false,
            rsv: 0b111,
            opcode_bits: 0x3,
            ..Header::new(OpCode::Binary, 300)
        };
        let mut stream = Vec::new();
        encode_frame(&mut stream, &header, &[0; 300]);
        let (scan, states) = boundaries(&stream, 5);
        assert_eq!(states.last(), Some(&true));
        assert!(!scan.saw_large_frame());
    }

    #[test]
    fn large_is_remembered_until_reset() {
        let mut scan = FrameScan::default();
        scan.feed(&frame(true, OpCode::Binary, LARGE_FRAME as usize));
        assert!(!scan.saw_large_frame(), "the limit itself is not large");
        scan.feed(&frame(true, OpCode::Binary, LARGE_FRAME as usize + 1));
        scan.feed(&frame(true, OpCode::Binary, 5));
        assert!(scan.saw_large_frame());
        scan.reset_large();
        assert!(!scan.saw_large_frame());
        assert!(scan.at_message_boundary());
    }
}
