//! A lean WebSocket client, just what a load generator needs: connect and
//! upgrade (optionally with permessage-deflate), send single-frame binary
//! and text messages, receive messages (answering pings, reassembling
//! fragments, inflating compressed ones), close.
//!
//! Why not tokio-tungstenite: the generator runs on one core and must outrun
//! the fastest server on the other, so each message costs one `write` of a
//! buffer reused for the connection's life and reads into a buffer reused the
//! same way; no `Message` values, no per-message allocation. Frame headers
//! are the shared codec's, [`duplex_protocol::frame`].

pub mod handshake;
pub mod mask;

mod client;

pub use client::{Client, DEFLATE_LEVEL, Message, ReadSide, WriteSide};
