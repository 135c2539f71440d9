//! What can go wrong in the browser client, as typed errors.

use crate::message::CloseRequestError;

/// Errors of [`crate::transport::Transport`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TransportError {
    /// The browser rejected the URL before trying (not `ws:`/`wss:`, not
    /// absolute, or malformed). Nothing was sent.
    #[error("invalid WebSocket URL {url:?}: {message}")]
    InvalidUrl {
        /// The URL given.
        url: String,
        /// The browser's explanation.
        message: String,
    },
    /// The connection closed before it opened: nothing listens there, the
    /// host is unreachable, or the endpoint refused the WebSocket handshake.
    /// Browsers deliberately do not say which.
    #[error(
        "cannot connect to {url}: the connection failed before it opened (close code {code}); \
         check that the server is running and that the URL is a WebSocket endpoint"
    )]
    ConnectFailed {
        /// The URL tried.
        url: String,
        /// The close code the browser reported (1006 for a refused or
        /// failed connection).
        code: u16,
    },
    /// A send on a socket that is not open (still connecting, closing or
    /// closed): the message was not sent.
    #[error("the socket is {state}, not open: message not sent")]
    NotOpen {
        /// `connecting`, `closing` or `closed`.
        state: &'static str,
    },
    /// The browser threw while sending.
    #[error("the browser refused to send: {0}")]
    Send(String),
    /// The close code or reason breaks the browser's rules; nothing was sent.
    #[error(transparent)]
    CloseRequest(#[from] CloseRequestError),
    /// The browser refused to register an event listener on the socket.
    #[error("the browser refused an event listener: {0}")]
    Listen(String),
    /// The browser threw while closing.
    #[error("the browser refused to close: {0}")]
    Close(String),
}

/// The text of a JavaScript exception, for error messages.
pub(crate) fn js_error_text(value: &wasm_bindgen::JsValue) -> String {
    use wasm_bindgen::JsCast;
    if let Some(error) = value.dyn_ref::<js_sys::Error>() {
        return String::from(error.message());
    }
    value.as_string().unwrap_or_else(|| format!("{value:?}"))
}
