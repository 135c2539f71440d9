//! The WebSocket frame header of RFC 6455 §5.2, encoded and parsed in one
//! place for the server, its tests and the load generator: [`Header`] with
//! [`Header::encode`] and [`Header::parse`], whole frames with
//! [`encode_frame`], the masking XOR ([`apply_mask`]), and the checks a
//! receiver owes its peer's frames as a separate step
//! ([`Header::validate`]).
//!
//! Parsing reports what is on the wire and judges nothing: reserved bits
//! and opcodes, a mask where none belongs, a length in a longer form than
//! it needs or with its top bit set all parse. Callers differ here: the
//! server's frame scan follows headers that tungstenite will judge, the
//! tests read and write frames a conforming peer never sends, and the load
//! generator refuses a bad server frame, so it calls `validate`.
//!
//! Nothing here allocates but [`encode_frame`], which appends to the
//! caller's buffer, and nothing panics on any input: a peer controls the
//! bytes [`Header::parse`] reads.

/// Longest frame header: 2 bytes, 8 bytes of extended length, 4 of mask.
pub const MAX_HEADER_LEN: usize = 14;

/// Longest payload of a control frame (RFC 6455 §5.5).
pub const MAX_CONTROL_PAYLOAD: usize = 125;

/// The FIN bit in a header's first byte.
const FIN: u8 = 0x80;

/// The MASK bit in a header's second byte.
const MASKED: u8 = 0x80;

/// The 7-bit length that says a 16-bit length follows.
const LEN_16: u8 = 126;

/// The 7-bit length that says a 64-bit length follows.
const LEN_64: u8 = 127;

/// A frame's opcode (RFC 6455 §5.2). The reserved values have no variant:
/// [`Header`] keeps the wire value, so a reserved one still parses and
/// encodes, and [`OpCode::from_bits`] says which ones have a name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OpCode {
    /// Continues a fragmented message.
    Continuation,
    /// A UTF-8 text message.
    Text,
    /// A binary message.
    Binary,
    /// Starts or answers the closing handshake.
    Close,
    /// Asks for a pong.
    Ping,
    /// Answers a ping.
    Pong,
}

impl OpCode {
    /// The 4-bit wire value.
    #[must_use]
    pub const fn bits(self) -> u8 {
        match self {
            Self::Continuation => 0x0,
            Self::Text => 0x1,
            Self::Binary => 0x2,
            Self::Close => 0x8,
            Self::Ping => 0x9,
            Self::Pong => 0xA,
        }
    }

    /// The opcode for a wire value, `None` for the reserved ones (and for
    /// anything over 4 bits).
    #[must_use]
    pub const fn from_bits(bits: u8) -> Option<Self> {
        match bits {
            0x0 => Some(Self::Continuation),
            0x1 => Some(Self::Text),
            0x2 => Some(Self::Binary),
            0x8 => Some(Self::Close),
            0x9 => Some(Self::Ping),
            0xA => Some(Self::Pong),
            _ => None,
        }
    }

    /// Close, ping and pong: never fragmented, at most
    /// [`MAX_CONTROL_PAYLOAD`] bytes.
    #[must_use]
    pub const fn is_control(self) -> bool {
        matches!(self, Self::Close | Self::Ping | Self::Pong)
    }
}

/// Which end of a connection sent a frame: it decides whether the frame
/// must be masked (RFC 6455 §5.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// The client: masks every frame.
    Client,
    /// The server: masks none.
    Server,
}

/// A frame a receiver must refuse (RFC 6455 §5.1–5.5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FrameError {
    /// An RSV bit is set although no extension was negotiated.
    #[error("reserved bits set without an extension")]
    ReservedBits,
    /// An opcode RFC 6455 reserves.
    #[error("reserved opcode {0:#x}")]
    ReservedOpcode(u8),
    /// A server frame with a mask: servers must not mask.
    #[error("server frame is masked")]
    MaskedByServer,
    /// A client frame without a mask: clients must mask every frame.
    #[error("client frame is not masked")]
    UnmaskedByClient,
    /// A control frame that is fragmented or longer than 125 bytes.
    #[error("control frame fragmented or over 125 bytes")]
    BadControlFrame,
    /// A continuation without a message to continue, or a new message
    /// before the fragmented one ended. [`Header::validate`] sees one
    /// header and never returns it; receivers that follow the message
    /// sequence do.
    #[error("fragments out of order")]
    Fragmentation,
    /// A 64-bit length with the top bit set, or one that does not fit
    /// this machine's address space (or a message too long to assemble).
    #[error("frame length out of range")]
    LengthOverflow,
}

/// A frame header as it is on the wire, valid or not.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// Last frame of its message.
    pub fin: bool,
    /// RSV1, RSV2 and RSV3 as the bits 0b100, 0b010 and 0b001. Only the
    /// low three bits are encoded.
    pub rsv: u8,
    /// The 4-bit opcode as sent, reserved values included;
    /// [`Header::opcode`] names it. Only the low four bits are encoded.
    pub opcode_bits: u8,
    /// The masking key, present exactly when the MASK bit is set.
    pub mask: Option<[u8; 4]>,
    /// Length of the payload that follows the header.
    pub payload_len: u64,
}

impl Header {
    /// The header of a whole (final), unmasked frame with no RSV bits: what
    /// a server sends. [`Header::masked`] makes it a client's.
    #[must_use]
    pub const fn new(opcode: OpCode, payload_len: u64) -> Self {
        Self {
            fin: true,
            rsv: 0,
            opcode_bits: opcode.bits(),
            mask: None,
            payload_len,
        }
    }

    /// The same header, masked with `key`: what a client sends.
    #[must_use]
    pub const fn masked(self, key: [u8; 4]) -> Self {
        Self {
            mask: Some(key),
            ..self
        }
    }

    /// The opcode, `None` for a reserved one.
    #[must_use]
    pub const fn opcode(&self) -> Option<OpCode> {
        OpCode::from_bits(self.opcode_bits)
    }

    /// Bytes [`Header::encode`] writes: the shortest length form, plus the
    /// key if masked.
    #[must_use]
    pub const fn encoded_len(&self) -> usize {
        let extended = match self.payload_len {
            0..=125 => 0,
            126..=0xFFFF => 2,
            _ => 8,
        };
        let key = if self.mask.is_some() { 4 } else { 0 };
        2 + extended + key
    }

    /// Writes the header at the start of `out` and returns how many bytes
    /// it used ([`Header::encoded_len`]). The length takes the shortest
    /// form RFC 6455 allows; the payload is the caller's to write, masked
    /// with [`apply_mask`] if the header has a key.
    pub fn encode(&self, out: &mut [u8; MAX_HEADER_LEN]) -> usize {
        out[0] =
            if self.fin { FIN } else { 0 } | (self.rsv & 0b111) << 4 | (self.opcode_bits & 0x0F);
        let mask_bit = if self.mask.is_some() { MASKED } else { 0 };
        let mut used = 2;
        if let Ok(short @ 0..=125) = u8::try_from(self.payload_len) {
            out[1] = mask_bit | short;
        } else if let Ok(len) = u16::try_from(self.payload_len) {
            out[1] = mask_bit | LEN_16;
            out[2..4].copy_from_slice(&len.to_be_bytes());
            used = 4;
        } else {
            out[1] = mask_bit | LEN_64;
            out[2..10].copy_from_slice(&self.payload_len.to_be_bytes());
            used = 10;
        }
        if let Some(key) = self.mask {
            out[used..used + 4].copy_from_slice(&key);
            used += 4;
        }
        used
    }

    /// Parses the header at the start of `bytes`: the header and the bytes
    /// it takes, or `None` while `bytes` holds only part of it. Any bytes
    /// parse (see the module doc); judge the result with
    /// [`Header::validate`] where that is the caller's job.
    #[must_use]
    pub fn parse(bytes: &[u8]) -> Option<(Self, usize)> {
        let [first, second, ref rest @ ..] = *bytes else {
            return None;
        };
        let (payload_len, rest, mut used) = match second & 0x7F {
            LEN_16 => {
                let (len, rest) = rest.split_first_chunk::<2>()?;
                (u64::from(u16::from_be_bytes(*len)), rest, 4)
            }
            LEN_64 => {
                let (len, rest) = rest.split_first_chunk::<8>()?;
                (u64::from_be_bytes(*len), rest, 10)
            }
            short => (u64::from(short), rest, 2),
        };
        let mask = if second & MASKED != 0 {
            let (key, _) = rest.split_first_chunk::<4>()?;
            used += 4;
            Some(*key)
        } else {
            None
        };
        let header = Self {
            fin: first & FIN != 0,
            rsv: (first >> 4) & 0b111,
            opcode_bits: first & 0x0F,
            mask,
            payload_len,
        };
        Some((header, used))
    }

    /// The checks a receiver owes a frame from `sender` that this header
    /// alone can answer (RFC 6455 §5.1–5.5), for a connection without
    /// extensions: no RSV bit, a named opcode, masked by a client and
    /// only by a client, control frames final and short, and a length
    /// below 2^63 that fits in memory. The order of messages is the
    /// caller's to check ([`FrameError::Fragmentation`]).
    ///
    /// # Errors
    /// The first rule the header breaks.
    pub fn validate(&self, sender: Role) -> Result<Checked, FrameError> {
        if self.rsv != 0 {
            return Err(FrameError::ReservedBits);
        }
        let opcode = self
            .opcode()
            .ok_or(FrameError::ReservedOpcode(self.opcode_bits))?;
        match (sender, self.mask) {
            (Role::Server, Some(_)) => return Err(FrameError::MaskedByServer),
            (Role::Client, None) => return Err(FrameError::UnmaskedByClient),
            _ => {}
        }
        if self.payload_len >> 63 != 0 {
            return Err(FrameError::LengthOverflow);
        }
        let payload_len =
            usize::try_from(self.payload_len).map_err(|_| FrameError::LengthOverflow)?;
        if opcode.is_control() && (!self.fin || payload_len > MAX_CONTROL_PAYLOAD) {
            return Err(FrameError::BadControlFrame);
        }
        Ok(Checked {
            fin: self.fin,
            opcode,
            mask: self.mask,
            payload_len,
        })
    }
}

/// A header that passed [`Header::validate`], in the types a receiver acts
/// on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Checked {
    /// Last frame of its message.
    pub fin: bool,
    /// What the frame carries.
    pub opcode: OpCode,
    /// The key to unmask the payload with, for a client's frame.
    pub mask: Option<[u8; 4]>,
    /// Length of the payload, known to fit in memory.
    pub payload_len: usize,
}

/// Appends one whole frame to `out`: `header`, then `payload`, masked
/// with the header's key if it has one. One buffer, so one `write`.
///
/// The header is written as given; its `payload_len` should be
/// `payload.len()`, and a test that means to send a frame whose length
/// lies can make it anything else.
pub fn encode_frame(out: &mut Vec<u8>, header: &Header, payload: &[u8]) {
    let mut head = [0; MAX_HEADER_LEN];
    let used = header.encode(&mut head);
    out.reserve(used + payload.len());
    out.extend_from_slice(&head[..used]);
    let start = out.len();
    out.extend_from_slice(payload);
    if let Some(key) = header.mask {
        apply_mask(&mut out[start..], key);
    }
}

/// XORs `buf` with the repeating 4-byte `mask`, starting at the mask's
/// first byte. Applying it twice restores the input.
///
/// Works a machine word at a time; the compiler vectorises the loop, as
/// fast as hand-written SIMD here (see duplex-bench's criterion bench
/// `mask`).
pub fn apply_mask(buf: &mut [u8], mask: [u8; 4]) {
    let [a, b, c, d] = mask;
    let wide = u64::from_ne_bytes([a, b, c, d, a, b, c, d]);
    let mut words = buf.chunks_exact_mut(8);
    for word in &mut words {
        let mut bytes = [0; 8];
        bytes.copy_from_slice(word);
        word.copy_from_slice(&(u64::from_ne_bytes(bytes) ^ wide).to_ne_bytes());
    }
    // Each word was 8 bytes, a multiple of 4: the tail starts at mask[0].
    for (byte, key) in words.into_remainder().iter_mut().zip(mask.iter().cycle()) {
        *byte ^= key;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The lengths where the encoding changes form, and the ends of each.
    const BOUNDARIES: [u64; 9] = [0, 1, 125, 126, 127, 65_535, 65_536, 1 << 32, u64::MAX];

    fn encoded(header: &Header) -> Vec<u8> {
        let mut out = [0; MAX_HEADER_LEN];
        let used = header.encode(&mut out);
        out[..used].to_vec()
    }

    #[test]
    fn every_length_boundary_round_trips_masked_and_unmasked() {
        for len in BOUNDARIES {
            for mask in [None, Some([1, 2, 3, 4])] {
                let header = Header {
                    mask,
                    ..Header::new(OpCode::Binary, len)
                };
                let bytes = encoded(&header);
                assert_eq!(bytes.len(), header.encoded_len(), "len {len}");
                assert_eq!(
                    Header::parse(&bytes),
                    Some((header, bytes.len())),
                    "len {len}"
                );
            }
        }
    }

    #[test]
    fn lengths_take_the_shortest_form() {
        let second_and_len = |len| {
            let bytes = encoded(&Header::new(OpCode::Text, len));
            (bytes[1], bytes.len())
        };
        assert_eq!(second_and_len(0), (0, 2));
        assert_eq!(second_and_len(125), (125, 2));
        assert_eq!(second_and_len(126), (126, 4));
        assert_eq!(second_and_len(65_535), (126, 4));
        assert_eq!(second_and_len(65_536), (127, 10));
        assert_eq!(second_and_len(1 << 32), (127, 10));
    }

    #[test]
    fn a_server_header_is_the_rfc_example() {
        // RFC 6455 §5.7: an unmasked "Hello", then a 256-byte binary frame.
        assert_eq!(encoded(&Header::new(OpCode::Text, 5)), [0x81, 0x05]);
        assert_eq!(
            encoded(&Header::new(OpCode::Binary, 256)),
            [0x82, 0x7E, 0x01, 0x00]
        );
        let masked = Header::new(OpCode::Text, 5).masked([0x37, 0xFA, 0x21, 0x3D]);
        assert_eq!(encoded(&masked), [0x81, 0x85, 0x37, 0xFA, 0x21, 0x3D]);
    }

    #[test]
    fn every_bit_of_the_first_byte_survives() {
        for first in 0..=u8::MAX {
            let (header, used) = Header::parse(&[first, 0]).expect("two bytes are a header");
            assert_eq!(used, 2);
            assert_eq!(encoded(&header), [first, 0]);
        }
    }

    #[test]
    fn split_headers_ask_for_more() {
        for len in BOUNDARIES {
            let bytes = encoded(&Header::new(OpCode::Binary, len).masked([9, 8, 7, 6]));
            for cut in 0..bytes.len() {
                assert_eq!(Header::parse(&bytes[..cut]), None, "len {len}, cut {cut}");
            }
            // Bytes after the header are the payload's, not the header's.
            let mut longer = bytes.clone();
            longer.extend_from_slice(&[0xFF; 20]);
            assert_eq!(
                Header::parse(&longer).map(|(_, used)| used),
                Some(bytes.len())
            );
        }
    }

    #[test]
    fn non_minimal_and_top_bit_lengths_parse_as_sent() {
        // 5 in the 16- and 64-bit forms: tungstenite accepts them, and so
        // do we; the frame scan must follow whatever tungstenite reads.
        let (header, used) = Header::parse(&[0x82, 126, 0, 5]).expect("complete");
        assert_eq!((header.payload_len, used), (5, 4));
        let (header, used) = Header::parse(&[0x82, 127, 0, 0, 0, 0, 0, 0, 0, 5]).expect("complete");
        assert_eq!((header.payload_len, used), (5, 10));
        let top = [0x82, 127, 0x80, 0, 0, 0, 0, 0, 0, 0];
        let (header, _) = Header::parse(&top).expect("complete");
        assert_eq!(header.payload_len, 1 << 63);
        assert_eq!(
            header.validate(Role::Server),
            Err(FrameError::LengthOverflow)
        );
    }

    #[test]
    fn garbage_never_panics() {
        // Every two-byte start with every tail length up to a full header,
        // the tail all zeros and all ones: each parse either completes
        // inside the bytes or asks for more.
        for first in [0x00, 0x0F, 0x80, 0xFF] {
            for second in 0..=u8::MAX {
                for tail in [0x00, 0xFF] {
                    for extra in 0..=MAX_HEADER_LEN {
                        let mut bytes = vec![first, second];
                        bytes.resize(2 + extra, tail);
                        if let Some((header, used)) = Header::parse(&bytes) {
                            assert!(used <= bytes.len());
                            let _ = header.validate(Role::Client);
                            let _ = header.validate(Role::Server);
                            let _ = encoded(&header);
                        }
                    }
                }
            }
        }
        // And a pseudo-random stream, parsed at every offset.
        let mut x = 0x9E37_79B9_7F4A_7C15_u64;
        let noise: Vec<u8> = (0..4096)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x.to_le_bytes()[0]
            })
            .collect();
        for at in 0..noise.len() {
            if let Some((_, used)) = Header::parse(&noise[at..]) {
                assert!(at + used <= noise.len());
            }
        }
    }

    #[test]
    fn frames_a_client_must_refuse() {
        let check = |bytes: &[u8]| {
            Header::parse(bytes)
                .expect("complete")
                .0
                .validate(Role::Server)
        };
        assert_eq!(check(&[0xC2, 0]), Err(FrameError::ReservedBits));
        assert_eq!(check(&[0x83, 0]), Err(FrameError::ReservedOpcode(3)));
        assert_eq!(
            check(&[0x82, 0x80, 1, 2, 3, 4]),
            Err(FrameError::MaskedByServer)
        );
        assert_eq!(check(&[0x09, 0]), Err(FrameError::BadControlFrame));
        assert_eq!(
            check(&[0x89, 126, 0, 126]),
            Err(FrameError::BadControlFrame)
        );
        let checked = check(&[0x89, 125]).expect("a 125-byte ping is fine");
        assert_eq!((checked.opcode, checked.payload_len), (OpCode::Ping, 125));
        let checked = check(&[0x02, 127, 0, 0, 0, 0, 0, 1, 0, 0]).expect("a first fragment");
        assert_eq!(
            checked,
            Checked {
                fin: false,
                opcode: OpCode::Binary,
                mask: None,
                payload_len: 65_536,
            }
        );
    }

    #[test]
    fn frames_a_server_must_refuse() {
        let unmasked = Header::new(OpCode::Text, 3);
        assert_eq!(
            unmasked.validate(Role::Client),
            Err(FrameError::UnmaskedByClient)
        );
        let masked = unmasked.masked([1, 1, 1, 1]);
        assert_eq!(
            masked.validate(Role::Client).map(|c| c.mask),
            Ok(Some([1, 1, 1, 1]))
        );
    }

    #[test]
    fn opcodes_round_trip_and_reserved_ones_have_no_name() {
        for bits in 0..=0x0F {
            match OpCode::from_bits(bits) {
                Some(opcode) => {
                    assert_eq!(opcode.bits(), bits);
                    assert_eq!(opcode.is_control(), bits >= 0x8);
                }
                None => assert!(matches!(bits, 0x3..=0x7 | 0xB..=0xF), "{bits:#x}"),
            }
        }
        assert_eq!(OpCode::from_bits(0x10), None);
    }

    #[test]
    fn a_whole_frame_unmasks_to_its_payload() {
        for len in [0, 1, 125, 126, 127, 65_535, 65_536, 100_000] {
            let payload: Vec<u8> = (0..len).map(|i| (i * 7) as u8).collect();
            let mut frame = Vec::new();
            let header = Header::new(OpCode::Binary, len as u64).masked([1, 2, 3, 4]);
            encode_frame(&mut frame, &header, &payload);
            let (parsed, used) = Header::parse(&frame).expect("complete");
            assert_eq!(parsed, header);
            assert_eq!(frame.len(), used + len, "len {len}");
            let body = &mut frame[used..];
            if len > 0 {
                assert_ne!(body, &payload[..], "masked, len {len}");
            }
            apply_mask(body, [1, 2, 3, 4]);
            assert_eq!(body, &payload[..], "len {len}");
        }
    }

    #[test]
    fn masking_twice_restores_every_tail_length() {
        for len in 0..40 {
            let original: Vec<u8> = (0..len).map(|i| i as u8).collect();
            let mut buf = original.clone();
            apply_mask(&mut buf, [0xA5, 0x5A, 0xFF, 0x01]);
            if len > 0 {
                assert_ne!(buf, original);
            }
            apply_mask(&mut buf, [0xA5, 0x5A, 0xFF, 0x01]);
            assert_eq!(buf, original);
        }
    }

    #[test]
    fn masking_matches_the_rfc_definition() {
        let mask = [9, 8, 7, 6];
        let mut buf: Vec<u8> = (0..37).collect();
        apply_mask(&mut buf, mask);
        for (i, byte) in buf.iter().enumerate() {
            assert_eq!(*byte, (i as u8) ^ mask[i % 4]);
        }
    }
}
