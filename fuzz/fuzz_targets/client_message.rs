//! `client_message`: a `/ws` text message, as the rooms service decodes it
//! (`duplex_protocol::decode_client`). The input is the message's text
//! (inputs that are not UTF-8 are skipped: tungstenite refuses those with
//! 1007 before the service sees them).
//!
//! Asserts: a message that decodes re-encodes to JSON that decodes to it
//! again; a refusal's answer (an `error` message with the refusal's text)
//! is JSON a client reads back as the same message.
#![no_main]

use duplex_protocol::{ServerMessage, decode_client};

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match decode_client(text) {
        Ok(message) => {
            let json = serde_json::to_string(&message).expect("a message serialises");
            let again = decode_client(&json).expect("its own JSON decodes");
            assert_eq!(again, message, "{json}");
        }
        Err(error) => {
            let answer = ServerMessage::Error {
                code: error.code(),
                message: error.to_string(),
                room: None,
            };
            let json = answer.to_json();
            let read: ServerMessage = serde_json::from_str(&json).expect("the answer is JSON");
            assert_eq!(read, answer, "{json}");
        }
    }
});
