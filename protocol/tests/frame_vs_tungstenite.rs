//! The frame codec agrees with tungstenite's, both ways: what we encode,
//! tungstenite parses to the same header, length and payload; what
//! tungstenite formats, we parse the same. The server hands our bytes to
//! tungstenite and scans tungstenite's view of the stream with our parser,
//! so a disagreement here would be a bug there.

use std::io::Cursor;

use duplex_protocol::frame::{Header, MAX_HEADER_LEN, OpCode, apply_mask, encode_frame};
use proptest::prelude::*;
use tungstenite::protocol::frame::coding::OpCode as WsOpCode;
use tungstenite::protocol::frame::{Frame, FrameHeader};

/// Every opcode tungstenite parses (it refuses the reserved ones).
fn opcode() -> impl Strategy<Value = OpCode> {
    prop::sample::select(vec![
        OpCode::Continuation,
        OpCode::Text,
        OpCode::Binary,
        OpCode::Close,
        OpCode::Ping,
        OpCode::Pong,
    ])
}

/// Lengths at and near each change of form, and anything at all.
fn payload_len() -> impl Strategy<Value = u64> {
    prop_oneof![
        prop::sample::select(vec![
            0,
            1,
            125,
            126,
            127,
            65_535,
            65_536,
            1 << 32,
            (1 << 63) - 1,
            1 << 63,
            u64::MAX,
        ]),
        0..=130_u64,
        65_530..=65_540_u64,
        (1_u64 << 32) - 2..=(1 << 32) + 2,
        any::<u64>(),
    ]
}

/// Payloads of every short length and around the 16-bit limit; the long
/// ones repeat a random run, since random megabytes would only be slow.
fn payload() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        prop::collection::vec(any::<u8>(), 0..300),
        (
            prop::collection::vec(any::<u8>(), 1..64),
            65_530..65_541_usize
        )
            .prop_map(|(run, len)| run.iter().cycle().take(len).copied().collect()),
    ]
}

/// A header with every field free but the opcode, which is a named one.
fn header(len: impl Strategy<Value = u64>) -> impl Strategy<Value = Header> {
    (
        any::<bool>(),
        0..8_u8,
        opcode(),
        any::<Option<[u8; 4]>>(),
        len,
    )
        .prop_map(|(fin, rsv, opcode, mask, payload_len)| Header {
            fin,
            rsv,
            opcode_bits: opcode.bits(),
            mask,
            payload_len,
        })
}

/// Our header in tungstenite's terms.
fn theirs(header: &Header) -> FrameHeader {
    FrameHeader {
        is_final: header.fin,
        rsv1: header.rsv & 0b100 != 0,
        rsv2: header.rsv & 0b010 != 0,
        rsv3: header.rsv & 0b001 != 0,
        opcode: WsOpCode::from(header.opcode_bits),
        mask: header.mask,
    }
}

/// RFC 6455 §5.3 as written, independent of [`apply_mask`].
fn rfc_mask(bytes: &[u8], mask: Option<[u8; 4]>) -> Vec<u8> {
    match mask {
        Some(key) => bytes
            .iter()
            .enumerate()
            .map(|(i, b)| b ^ key[i % 4])
            .collect(),
        None => bytes.to_vec(),
    }
}

proptest! {
    #[test]
    fn tungstenite_parses_our_headers(header in header(payload_len())) {
        let mut out = [0; MAX_HEADER_LEN];
        let used = header.encode(&mut out);
        let mut cursor = Cursor::new(&out[..used]);
        let parsed = FrameHeader::parse(&mut cursor).expect("a named opcode");
        prop_assert_eq!(parsed, Some((theirs(&header), header.payload_len)));
        prop_assert_eq!(usize::try_from(cursor.position()).ok(), Some(used));
        // And tungstenite's idea of our header's size.
        prop_assert_eq!(theirs(&header).len(header.payload_len), used);
    }

    #[test]
    fn we_parse_tungstenites_headers(header in header(payload_len())) {
        let mut out = Vec::new();
        theirs(&header).format(header.payload_len, &mut out).expect("a Vec takes it");
        prop_assert_eq!(Header::parse(&out), Some((header, out.len())));
        prop_assert_eq!(header.encoded_len(), out.len());
    }

    #[test]
    fn tungstenite_reads_our_frames(
        (header, payload) in (header(Just(0)), payload()),
    ) {
        let header = Header { payload_len: payload.len() as u64, ..header };
        let mut frame = Vec::new();
        encode_frame(&mut frame, &header, &payload);
        let mut cursor = Cursor::new(&frame[..]);
        let (parsed, len) = FrameHeader::parse(&mut cursor)
            .expect("a named opcode")
            .expect("complete");
        prop_assert_eq!(&parsed, &theirs(&header));
        prop_assert_eq!(len, payload.len() as u64);
        let at = usize::try_from(cursor.position()).expect("a header's length");
        prop_assert_eq!(rfc_mask(&frame[at..], parsed.mask), payload);
    }

    #[test]
    fn we_read_tungstenites_frames(
        (header, payload) in (header(Just(0)), payload()),
    ) {
        let header = Header { payload_len: payload.len() as u64, ..header };
        let mut frame = Frame::message(payload.clone(), WsOpCode::from(OpCode::Binary.bits()), true);
        *frame.header_mut() = theirs(&header);
        let mut out = Vec::new();
        frame.format(&mut out).expect("a Vec takes it");
        let (parsed, used) = Header::parse(&out).expect("complete");
        prop_assert_eq!(parsed, header);
        prop_assert_eq!(out.len(), used + payload.len());
        let body = &mut out[used..];
        if let Some(key) = parsed.mask {
            apply_mask(body, key);
        }
        prop_assert_eq!(&body[..], &payload[..]);
    }

    #[test]
    fn split_input_asks_for_more(header in header(payload_len()), cut in 0..MAX_HEADER_LEN) {
        let mut out = [0; MAX_HEADER_LEN];
        let used = header.encode(&mut out);
        let cut = cut % used;
        prop_assert_eq!(Header::parse(&out[..cut]), None);
    }

    #[test]
    fn any_bytes_parse_without_panic(bytes in prop::collection::vec(any::<u8>(), 0..20)) {
        if let Some((header, used)) = Header::parse(&bytes) {
            prop_assert!(used <= bytes.len());
            prop_assert!(used <= MAX_HEADER_LEN);
            // What tungstenite makes of the same bytes, where it parses them.
            if let Ok(Some((theirs, len))) = FrameHeader::parse(&mut Cursor::new(&bytes)) {
                prop_assert_eq!(theirs.mask, header.mask);
                prop_assert_eq!(len, header.payload_len);
                prop_assert_eq!(u8::from(theirs.opcode), header.opcode_bits);
            }
        }
    }
}
