//! `frame_header`: the one WebSocket frame header codec
//! (`duplex_protocol::frame`), on any bytes. The input starts with a
//! header (or part of one); what follows is a payload.
//!
//! Asserts: a header parses only when all of its bytes are there, and the
//! same from any longer input; it re-encodes to what it parsed from (byte
//! for byte when the input used the shortest length form, as every sender
//! should); tungstenite, which reads the frames after the server's scan,
//! sees the same header, or refuses exactly the reserved opcodes; what
//! `validate` accepts is consistent with the header; and a frame made of
//! the rest of the input, masked or not, reads back as its payload.
#![no_main]

use std::io::Cursor;

use duplex_protocol::frame::{
    Header, MAX_CONTROL_PAYLOAD, MAX_HEADER_LEN, Role, apply_mask, encode_frame,
};
use tungstenite::protocol::frame::FrameHeader;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let parsed = Header::parse(data);
    let mut cursor = Cursor::new(data);
    let theirs = FrameHeader::parse(&mut cursor);
    let Some((header, used)) = parsed else {
        assert!(data.len() < MAX_HEADER_LEN, "a whole header did not parse");
        assert!(matches!(theirs, Ok(None)), "tungstenite: {theirs:?}");
        return;
    };
    assert!((2..=MAX_HEADER_LEN).contains(&used) && used <= data.len());
    for short in 0..used {
        assert_eq!(
            Header::parse(&data[..short]),
            None,
            "{short} of {used} bytes"
        );
    }
    assert_eq!(Header::parse(&data[..used]), Some((header, used)));

    let mut out = [0; MAX_HEADER_LEN];
    let len = header.encode(&mut out);
    assert_eq!(len, header.encoded_len());
    assert!(len <= used, "the encoding is the shortest form");
    assert_eq!(Header::parse(&out[..len]), Some((header, len)));
    if len == used {
        assert_eq!(out[..len], data[..used]);
    }

    match theirs {
        Ok(Some((them, payload_len))) => {
            assert_eq!(payload_len, header.payload_len);
            assert_eq!(cursor.position(), used as u64);
            assert_eq!(them.is_final, header.fin);
            let rsv = u8::from(them.rsv1) << 2 | u8::from(them.rsv2) << 1 | u8::from(them.rsv3);
            assert_eq!(rsv, header.rsv);
            assert_eq!(u8::from(them.opcode), header.opcode_bits);
            assert_eq!(them.mask, header.mask);
            assert!(header.opcode().is_some());
        }
        Ok(None) => panic!("tungstenite wants more than {used} bytes"),
        Err(_) => assert_eq!(header.opcode(), None, "tungstenite refused a named opcode"),
    }

    for role in [Role::Client, Role::Server] {
        if let Ok(checked) = header.validate(role) {
            assert_eq!(header.rsv, 0);
            assert_eq!(Some(checked.opcode), header.opcode());
            assert_eq!(checked.mask, header.mask);
            assert_eq!(checked.mask.is_some(), role == Role::Client);
            assert_eq!(checked.payload_len as u64, header.payload_len);
            if checked.opcode.is_control() {
                assert!(checked.fin && checked.payload_len <= MAX_CONTROL_PAYLOAD);
            }
        }
    }

    // A whole frame of the rest, with this header's bits and its length.
    let payload = &data[used..];
    let frame_header = Header {
        payload_len: payload.len() as u64,
        ..header
    };
    let mut frame = Vec::new();
    encode_frame(&mut frame, &frame_header, payload);
    let (read, at) = Header::parse(&frame).expect("an encoded header parses");
    assert_eq!(read, frame_header);
    let mut body = frame[at..].to_vec();
    if let Some(key) = read.mask {
        apply_mask(&mut body, key);
    }
    assert_eq!(body, payload);
});
