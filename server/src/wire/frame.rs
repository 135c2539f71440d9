//! Data frames the server writes itself: encoded once, written as they are.
//!
//! Server frames are never masked, so the bytes on the wire are the same for
//! every receiver: a room's fan-out encodes a message once and writes that
//! one buffer to each member (a clone is a reference count).

use bytes::{Bytes, BytesMut};
use duplex_protocol::frame::{Header, MAX_HEADER_LEN, OpCode};

/// The opcode of a data frame (RFC 6455, section 5.2).
#[derive(Debug, Clone, Copy)]
pub(crate) enum DataOpcode {
    Text,
    Binary,
}

/// The header of a whole, unfragmented, unmasked data frame (the server
/// side of RFC 6455, section 5.2) and how many of its bytes are used,
/// encoded by the one frame codec (`duplex_protocol::frame`).
pub(super) fn frame_header(opcode: DataOpcode, len: usize) -> ([u8; MAX_HEADER_LEN], usize) {
    let opcode = match opcode {
        DataOpcode::Text => OpCode::Text,
        DataOpcode::Binary => OpCode::Binary,
    };
    let mut header = [0u8; MAX_HEADER_LEN];
    let used = Header::new(opcode, len as u64).encode(&mut header);
    (header, used)
}

/// A whole data frame, header included, encoded once and shared.
#[derive(Debug, Clone)]
pub(crate) struct Frame {
    bytes: Bytes,
    /// Bytes of `bytes` that are the header.
    header_len: u8,
}

impl Frame {
    pub(crate) fn new(opcode: DataOpcode, payload: &[u8]) -> Self {
        let (header, header_len) = frame_header(opcode, payload.len());
        let mut bytes = BytesMut::with_capacity(header_len + payload.len());
        bytes.extend_from_slice(&header[..header_len]);
        bytes.extend_from_slice(payload);
        Self {
            bytes: bytes.freeze(),
            header_len: header_len as u8,
        }
    }

    pub(crate) fn text(text: &str) -> Self {
        Self::new(DataOpcode::Text, text.as_bytes())
    }

    pub(crate) fn binary(payload: &[u8]) -> Self {
        Self::new(DataOpcode::Binary, payload)
    }

    /// The bytes on the wire.
    pub(crate) fn bytes(&self) -> &Bytes {
        &self.bytes
    }

    /// The payload's length (what the traffic counters count).
    pub(crate) fn payload_len(&self) -> usize {
        self.bytes.len() - usize::from(self.header_len)
    }

    /// The payload, for tests.
    #[cfg(test)]
    pub(crate) fn payload(&self) -> &[u8] {
        &self.bytes[usize::from(self.header_len)..]
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
            assert_eq!(&frame.bytes[..], reference(Data::Binary, &payload), "{len}");
            assert_eq!(frame.payload_len(), len);
            assert_eq!(frame.payload(), &payload[..]);
        }
        let text = Frame::text("héllo");
        assert_eq!(&text.bytes[..], reference(Data::Text, "héllo".as_bytes()));
    }
}
