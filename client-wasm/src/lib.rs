//! Duplex's browser client, compiled to wasm.
//!
//! - [`transport`]: a WebSocket over `web_sys::WebSocket` as a `Stream` of
//!   messages and a `Sink`, owning its event listeners.
//! - [`connection`]: the connection manager: reconnect with backoff, a
//!   bounded queue while disconnected, RTT probes, events.
//! - Plain Rust, unit-tested natively: [`backoff`], [`outbox`],
//!   [`session`] (state and reconnect policy), [`stats`], [`probe`],
//!   [`message_log`], [`hex`], [`chart`], [`format`](mod@format), [`message`],
//!   [`history`] (a room's epoch and offset: recovery and gaps),
//!   [`rooms`] (the rooms model for `/ws`).
//! - The page (private `ui` module) starts itself when the document has a
//!   `#duplex` element, which trunk's `index.html` provides.

pub mod backoff;
pub mod chart;
pub mod connection;
pub mod error;
pub mod format;
pub mod hex;
pub mod history;
mod listener;
pub mod message;
pub mod message_log;
pub mod outbox;
pub mod probe;
pub mod rooms;
pub mod session;
pub mod stats;
pub mod time;
pub mod transport;
mod ui;

pub use connection::{Connection, ConnectionConfig, Delivery, Event, Events};
pub use error::TransportError;
pub use message::{CloseInfo, Message};
pub use transport::Transport;

use wasm_bindgen::prelude::wasm_bindgen;

/// The wasm entry point: starts the page if this document is the page (the
/// browser tests load the library into an empty document, where it does
/// nothing).
#[wasm_bindgen(start)]
pub fn start() {
    ui::start();
}
