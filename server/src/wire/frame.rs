//! Data frames the server writes itself: encoded once, written as they are.
//!
//! Server frames are never masked, so the bytes on the wire are the same for
//! every receiver: a room's fan-out encodes a message once and writes that
//! one buffer to each member (a clone is a reference count). Compressed
//! with permessage-deflate and no context takeover, a message is the same
//! bytes for every receiver too: it is compressed once, by the first
//! member that negotiated deflate, and shared by the others.

use std::sync::{Arc, OnceLock};

use bytes::{Bytes, BytesMut};
use duplex_protocol::frame::{Header, MAX_HEADER_LEN, OpCode};

use crate::deflate::{Compression, WINDOWS};

/// RSV1 in a header: the message is compressed (RFC 7692 §6).
const RSV1: u8 = 0b100;

/// The opcode of a data frame (RFC 6455, section 5.2).
#[derive(Debug, Clone, Copy)]
pub(crate) enum DataOpcode {
    Text,
    Binary,
}

/// The header of a whole, unfragmented, unmasked data frame (the server
/// side of RFC 6455, section 5.2), RSV1 set if `compressed`, and how many
/// of its bytes are used, encoded by the one frame codec
/// (`duplex_protocol::frame`).
pub(super) fn frame_header(
    opcode: DataOpcode,
    len: usize,
    compressed: bool,
) -> ([u8; MAX_HEADER_LEN], usize) {
    let opcode = match opcode {
        DataOpcode::Text => OpCode::Text,
        DataOpcode::Binary => OpCode::Binary,
    };
    let mut header = [0u8; MAX_HEADER_LEN];
    let used = Header {
        rsv: if compressed { RSV1 } else { 0 },
        ..Header::new(opcode, len as u64)
    }
    .encode(&mut header);
    (header, used)
}

/// A whole data frame, header included, encoded once and shared.
#[derive(Debug, Clone)]
pub(crate) struct Frame(Arc<Encoded>);

#[derive(Debug)]
struct Encoded {
    bytes: Bytes,
    opcode: DataOpcode,
    /// Bytes of `bytes` that are the header.
    header_len: u8,
    /// This message compressed, per window size, made on first use;
    /// `None` inside when compressing does not make it smaller.
    compressed: [OnceLock<Option<Frame>>; WINDOWS],
}

impl Frame {
    pub(crate) fn new(opcode: DataOpcode, payload: &[u8]) -> Self {
        Self::encode(opcode, payload, false)
    }

    fn encode(opcode: DataOpcode, payload: &[u8], compressed: bool) -> Self {
        let (header, header_len) = frame_header(opcode, payload.len(), compressed);
        let mut bytes = BytesMut::with_capacity(header_len + payload.len());
        bytes.extend_from_slice(&header[..header_len]);
        bytes.extend_from_slice(payload);
        Self(Arc::new(Encoded {
            bytes: bytes.freeze(),
            opcode,
            header_len: header_len as u8,
            compressed: Default::default(),
        }))
    }

    pub(crate) fn text(text: &str) -> Self {
        Self::new(DataOpcode::Text, text.as_bytes())
    }

    pub(crate) fn binary(payload: &[u8]) -> Self {
        Self::new(DataOpcode::Binary, payload)
    }

    /// The frame a member with `compression` gets: this one, or this
    /// message compressed (once per window size, shared by every member).
    pub(crate) fn for_member(&self, compression: Option<Compression>) -> Frame {
        match compression {
            Some(compression) if compression.applies_to(self.payload_len()) => {
                let compressed = self.0.compressed[compression.window_index()].get_or_init(|| {
                    let payload = compression.compress(self.payload())?;
                    Some(Self::encode(self.0.opcode, &payload, true))
                });
                compressed.as_ref().unwrap_or(self).clone()
            }
            _ => self.clone(),
        }
    }

    /// The bytes on the wire.
    pub(crate) fn bytes(&self) -> &Bytes {
        &self.0.bytes
    }

    /// The payload's length (what the traffic counters count).
    pub(crate) fn payload_len(&self) -> usize {
        self.0.bytes.len() - usize::from(self.0.header_len)
    }

    /// The payload as on the wire (compressed, for a compressed frame).
    pub(crate) fn payload(&self) -> &[u8] {
        &self.0.bytes[usize::from(self.0.header_len)..]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio_tungstenite::tungstenite::protocol::frame::Frame as WsFrame;
    use tokio_tungstenite::tungstenite::protocol::frame::coding::{Data, OpCode};

    /// The bytes tungstenite itself would write for a final, unmasked frame.
    fn reference(opcode: Data, payload: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        WsFrame::message(payload.to_vec(), OpCode::Data(opcode), true)
            .format(&mut out)
            .expect("formats into a Vec");
        out
    }

    #[test]
    fn frames_encode_like_tungstenite_at_every_length_boundary() {
        for len in [0, 1, 125, 126, 127, 0xffff, 0x1_0000, 70_000] {
            let payload: Vec<u8> = (0..len).map(|i| i as u8).collect();
            let frame = Frame::binary(&payload);
            assert_eq!(
                &frame.bytes()[..],
                reference(Data::Binary, &payload),
                "{len}"
            );
            assert_eq!(frame.payload_len(), len);
            assert_eq!(frame.payload(), &payload[..]);
        }
        let text = Frame::text("héllo");
        assert_eq!(&text.bytes()[..], reference(Data::Text, "héllo".as_bytes()));
    }

    #[test]
    fn a_message_is_compressed_once_for_every_member() {
        use duplex_protocol::deflate::{Agreement, Inflater};
        let agreement = Agreement {
            server_max_window_bits: None,
        };
        let compression = Some(Compression::new(&agreement, 100));
        let text = "{\"type\":\"message\",\"text\":\"chat chat chat\"}".repeat(10);
        let frame = Frame::text(&text);
        let first = frame.for_member(compression);
        let second = frame.for_member(compression);
        assert!(Arc::ptr_eq(&first.0, &second.0), "compressed twice");
        assert_eq!(first.bytes()[0], 0x80 | 0x40 | 0x1, "FIN, RSV1, text");
        let mut out = Vec::new();
        Inflater::new()
            .inflate(first.payload(), text.len(), &mut out)
            .expect("inflates");
        assert_eq!(out, text.as_bytes());
        // Plain members, and messages under the threshold, get the frame
        // as it is.
        assert!(Arc::ptr_eq(&frame.for_member(None).0, &frame.0));
        let short = Frame::text("hi");
        assert!(Arc::ptr_eq(&short.for_member(compression).0, &short.0));
    }
}
