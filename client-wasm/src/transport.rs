//! A WebSocket over the browser's `web_sys::WebSocket`: received messages as
//! a [`Stream`], sends through a [`Sink`] or [`Transport::send`], typed
//! errors, and a clean end.
//!
//! The transport owns its four event listeners (`open`, `message`, `error`,
//! `close`). They are registered with `addEventListener` and removed in
//! `Drop`, then dropped with it: no `Closure::forget`, so nothing leaks and
//! no callback can reach freed state. `binaryType` is `arraybuffer`, so
//! binary messages arrive as bytes, not blobs.
//!
//! Modelled on gloo-net's websocket module, which is no longer maintained.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};

use futures_core::Stream;
use futures_sink::Sink;
use wasm_bindgen::JsCast;
use web_sys::{BinaryType, CloseEvent, Event, MessageEvent, WebSocket};

use crate::error::{TransportError, js_error_text};
use crate::listener::Listener;
use crate::message::{CLOSE_ABNORMAL, CLOSE_NORMAL, CloseInfo, Message, check_close_request};

/// Where the socket is, as the events told us.
#[derive(Debug)]
enum Phase {
    Connecting,
    Open,
    Closed(CloseInfo),
}

/// What the event listeners write and the futures read.
#[derive(Debug)]
struct Shared {
    phase: Phase,
    /// Received and not yet taken. Unbounded: the browser has already
    /// buffered the data, and the page drains it as it arrives.
    incoming: VecDeque<Message>,
    /// Tasks waiting for an event (open, message, close).
    wakers: Vec<Waker>,
}

impl Shared {
    fn register(&mut self, waker: &Waker) {
        if !self.wakers.iter().any(|w| w.will_wake(waker)) {
            self.wakers.push(waker.clone());
        }
    }
}

/// Applies `change` to the shared state, then wakes every waiting task
/// (after the borrow ends, so a woken task can borrow again).
fn update(shared: &RefCell<Shared>, change: impl FnOnce(&mut Shared)) {
    let wakers = {
        let mut shared = shared.borrow_mut();
        change(&mut shared);
        std::mem::take(&mut shared.wakers)
    };
    for waker in wakers {
        waker.wake();
    }
}

/// Registers one of the socket's listeners.
fn listen(
    ws: &WebSocket,
    event: &'static str,
    callback: impl FnMut(Event) + 'static,
) -> Result<Listener, TransportError> {
    Listener::new(ws, event, callback).map_err(|e| TransportError::Listen(js_error_text(&e)))
}

/// A browser WebSocket. Dropping it closes the socket (1000) if it is still
/// open or connecting, and removes its listeners.
#[derive(Debug)]
pub struct Transport {
    ws: WebSocket,
    shared: Rc<RefCell<Shared>>,
    /// Declared after `ws`, dropped after the explicit close in `Drop`.
    _listeners: [Listener; 4],
}

impl Transport {
    /// Starts opening a socket to `url` and returns at once; await
    /// [`Transport::opened`] (or use [`Transport::connect`]) before sending.
    ///
    /// # Errors
    /// [`TransportError::InvalidUrl`] when the browser rejects the URL.
    pub fn open(url: &str) -> Result<Self, TransportError> {
        let ws = WebSocket::new(url).map_err(|e| TransportError::InvalidUrl {
            url: url.to_owned(),
            message: js_error_text(&e),
        })?;
        ws.set_binary_type(BinaryType::Arraybuffer);
        let shared = Rc::new(RefCell::new(Shared {
            phase: Phase::Connecting,
            incoming: VecDeque::new(),
            wakers: Vec::new(),
        }));

        let on_open = {
            let shared = Rc::clone(&shared);
            move |_: Event| {
                update(&shared, |s| {
                    if matches!(s.phase, Phase::Connecting) {
                        s.phase = Phase::Open;
                    }
                });
            }
        };
        let on_message = {
            let shared = Rc::clone(&shared);
            move |event: Event| {
                let Some(event) = event.dyn_ref::<MessageEvent>() else {
                    return;
                };
                if let Some(message) = decode(&event.data()) {
                    update(&shared, |s| s.incoming.push_back(message));
                }
            }
        };
        // The `error` event carries no detail (on purpose, for privacy);
        // the `close` event that always follows it says what we can know.
        let on_error = |_: Event| {};
        let on_close = {
            let shared = Rc::clone(&shared);
            move |event: Event| {
                let info = match event.dyn_ref::<CloseEvent>() {
                    Some(event) => CloseInfo {
                        code: event.code(),
                        reason: event.reason(),
                        was_clean: event.was_clean(),
                    },
                    None => CloseInfo {
                        code: CLOSE_ABNORMAL,
                        reason: String::new(),
                        was_clean: false,
                    },
                };
                update(&shared, |s| s.phase = Phase::Closed(info));
            }
        };
        let listeners = (|| {
            Ok::<_, TransportError>([
                listen(&ws, "open", on_open)?,
                listen(&ws, "message", on_message)?,
                listen(&ws, "error", on_error)?,
                listen(&ws, "close", on_close)?,
            ])
        })();
        let listeners = match listeners {
            Ok(listeners) => listeners,
            Err(error) => {
                // Do not leave a socket connecting that nobody listens to.
                let _ = ws.close();
                return Err(error);
            }
        };
        Ok(Self {
            ws,
            shared,
            _listeners: listeners,
        })
    }

    /// Opens a socket to `url` and waits until it is open.
    ///
    /// # Errors
    /// [`TransportError::InvalidUrl`] for a URL the browser rejects,
    /// [`TransportError::ConnectFailed`] when the connection fails before
    /// it opens (refused, unreachable, not a WebSocket endpoint).
    pub async fn connect(url: &str) -> Result<Self, TransportError> {
        let transport = Self::open(url)?;
        transport.opened().await?;
        Ok(transport)
    }

    /// Completes when the socket is open.
    ///
    /// # Errors
    /// [`TransportError::ConnectFailed`] when it closed before opening.
    pub async fn opened(&self) -> Result<(), TransportError> {
        std::future::poll_fn(|cx| {
            let mut shared = self.shared.borrow_mut();
            match &shared.phase {
                Phase::Open => Poll::Ready(Ok(())),
                Phase::Closed(info) => Poll::Ready(Err(TransportError::ConnectFailed {
                    url: self.ws.url(),
                    code: info.code,
                })),
                Phase::Connecting => {
                    shared.register(cx.waker());
                    Poll::Pending
                }
            }
        })
        .await
    }

    /// The next received message, or `None` once the socket has closed and
    /// everything received before was taken. This is [`Stream::poll_next`]
    /// through a shared reference.
    pub fn poll_recv(&self, cx: &mut Context<'_>) -> Poll<Option<Message>> {
        let mut shared = self.shared.borrow_mut();
        if let Some(message) = shared.incoming.pop_front() {
            return Poll::Ready(Some(message));
        }
        if matches!(shared.phase, Phase::Closed(_)) {
            return Poll::Ready(None);
        }
        shared.register(cx.waker());
        Poll::Pending
    }

    /// Waits for the next received message (see [`Transport::poll_recv`]).
    pub async fn recv(&self) -> Option<Message> {
        std::future::poll_fn(|cx| self.poll_recv(cx)).await
    }

    /// Sends a message now. The browser queues it (see
    /// [`Transport::buffered_amount`]); this never waits.
    ///
    /// # Errors
    /// [`TransportError::NotOpen`] unless the socket is open (a browser
    /// would silently discard data sent while closing),
    /// [`TransportError::Send`] if the browser throws.
    pub fn send(&self, message: &Message) -> Result<(), TransportError> {
        let state = self.ready_state_name();
        if state != "open" {
            return Err(TransportError::NotOpen { state });
        }
        let sent = match message {
            Message::Text(text) => self.ws.send_with_str(text),
            Message::Binary(bytes) => self.ws.send_with_u8_array(bytes),
        };
        sent.map_err(|e| TransportError::Send(js_error_text(&e)))
    }

    /// Starts the close handshake with `code` (1000 or 3000–4999) and
    /// `reason` (at most 123 bytes). The stream ends when it completes; the
    /// code the server answered with is then in [`Transport::close_info`].
    ///
    /// # Errors
    /// [`TransportError::CloseRequest`] for a code or reason browsers
    /// refuse; [`TransportError::Close`] if the browser throws anyway.
    pub fn close(&self, code: u16, reason: &str) -> Result<(), TransportError> {
        check_close_request(code, reason)?;
        self.ws
            .close_with_code_and_reason(code, reason)
            .map_err(|e| TransportError::Close(js_error_text(&e)))
    }

    /// How the socket closed, once it has.
    pub fn close_info(&self) -> Option<CloseInfo> {
        match &self.shared.borrow().phase {
            Phase::Closed(info) => Some(info.clone()),
            Phase::Connecting | Phase::Open => None,
        }
    }

    /// Whether the socket is open (not connecting, closing or closed).
    pub fn is_open(&self) -> bool {
        self.ws.ready_state() == WebSocket::OPEN
    }

    /// Bytes sent but not yet handed to the network by the browser.
    pub fn buffered_amount(&self) -> u32 {
        self.ws.buffered_amount()
    }

    /// The URL, as the browser resolved it.
    pub fn url(&self) -> String {
        self.ws.url()
    }

    /// The extensions the server accepted, as the browser reports them
    /// (`WebSocket.extensions`): `permessage-deflate; …` when messages are
    /// compressed both ways, empty when nothing was negotiated, and empty
    /// until the socket opens. Browsers offer permessage-deflate on every
    /// socket and compress on their own: the client has nothing to do but
    /// read the outcome.
    pub fn extensions(&self) -> String {
        self.ws.extensions()
    }

    /// The underlying browser socket, to inspect it (tests use it to check
    /// that dropping the transport closed it).
    pub fn as_web_sys(&self) -> &WebSocket {
        &self.ws
    }

    fn ready_state_name(&self) -> &'static str {
        match self.ws.ready_state() {
            WebSocket::CONNECTING => "connecting",
            WebSocket::OPEN => "open",
            WebSocket::CLOSING => "closing",
            _ => "closed",
        }
    }
}

/// A `message` event's data as a message: strings are text, array buffers
/// binary. Anything else (a Blob, if someone changed `binaryType`) is
/// skipped.
fn decode(data: &wasm_bindgen::JsValue) -> Option<Message> {
    if let Some(text) = data.as_string() {
        return Some(Message::Text(text));
    }
    let buffer = data.dyn_ref::<js_sys::ArrayBuffer>()?;
    Some(Message::Binary(js_sys::Uint8Array::new(buffer).to_vec()))
}

impl Drop for Transport {
    fn drop(&mut self) {
        let state = self.ws.ready_state();
        if state == WebSocket::CONNECTING || state == WebSocket::OPEN {
            // Nothing useful to do if the browser refuses; the listeners
            // are removed next either way.
            let _ = self.ws.close_with_code(CLOSE_NORMAL);
        }
        // `_listeners` drop after this: each removes itself, then its
        // closure is freed.
    }
}

impl Stream for Transport {
    type Item = Message;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Message>> {
        self.get_mut().poll_recv(cx)
    }
}

impl Sink<Message> for Transport {
    type Error = TransportError;

    /// Ready once the socket is open; an error once it is closing or closed.
    fn poll_ready(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), TransportError>> {
        match self.ready_state_name() {
            "open" => Poll::Ready(Ok(())),
            "connecting" => {
                self.shared.borrow_mut().register(cx.waker());
                // The open event may have fired between the check and the
                // registration: look again.
                if self.is_open() {
                    Poll::Ready(Ok(()))
                } else {
                    Poll::Pending
                }
            }
            state => Poll::Ready(Err(TransportError::NotOpen { state })),
        }
    }

    fn start_send(self: Pin<&mut Self>, item: Message) -> Result<(), TransportError> {
        self.send(&item)
    }

    /// The browser offers no way to wait for its send buffer to drain, so
    /// a flush completes at once; [`Transport::buffered_amount`] shows what
    /// is still queued.
    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<Result<(), TransportError>> {
        Poll::Ready(Ok(()))
    }

    /// Closes with 1000 and waits for the close handshake to finish.
    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), TransportError>> {
        let state = self.ws.ready_state();
        if state == WebSocket::CONNECTING || state == WebSocket::OPEN {
            self.close(CLOSE_NORMAL, "")?;
        }
        let mut shared = self.shared.borrow_mut();
        if matches!(shared.phase, Phase::Closed(_)) {
            Poll::Ready(Ok(()))
        } else {
            shared.register(cx.waker());
            Poll::Pending
        }
    }
}
