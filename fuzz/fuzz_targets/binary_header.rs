//! `binary_header`: a binary frame's payload as the rooms service reads a
//! binary publish (`duplex_protocol::binary::decode_publish`), and as a
//! client reads a delivery (`decode_delivery`). The input is the payload.
//!
//! Asserts the round trips: a publish that decodes re-encodes to the same
//! bytes (with the version byte this side writes: version 1 publishes are
//! read too), and so does a delivery.
#![no_main]

use duplex_protocol::VERSION;
use duplex_protocol::binary::{decode_delivery, decode_publish, encode_delivery, encode_publish};

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok(publish) = decode_publish(data) {
        let bytes = encode_publish(publish.room, publish.payload).expect("its room fitted");
        assert_eq!(bytes[0], VERSION);
        assert_eq!(bytes[1..], data[1..]);
        assert_eq!(decode_publish(&bytes), Ok(publish));
    }
    if let Ok(delivery) = decode_delivery(data) {
        let bytes = encode_delivery(
            delivery.room,
            delivery.from,
            delivery.offset,
            delivery.payload,
        )
        .expect("its room fitted");
        assert_eq!(bytes, data);
    }
});
