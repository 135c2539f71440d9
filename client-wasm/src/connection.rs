//! The connection manager: keeps a connection to one URL, reconnects after
//! a close it did not ask for (with backoff and jitter), queues messages
//! while the connection is not open, measures round-trip times with probes,
//! and reports everything as a stream of [`Event`]s.
//!
//! The decisions are [`crate::session::Supervisor`]'s and the queue is an
//! [`Outbox`]; this module adds the browser: sockets, timers, a task.
//!
//! Delivery is at most once: a message written to a socket that then dies
//! before the server read it is lost (the echo protocol has no
//! acknowledgements). Messages queued while disconnected are sent in order
//! when the connection opens.

use std::cell::RefCell;
use std::pin::Pin;
use std::rc::Rc;
use std::task::Poll;
use std::time::Duration;

use futures_channel::mpsc;
use futures_util::StreamExt;

use crate::backoff::BackoffConfig;
use crate::error::TransportError;
use crate::message::{CLOSE_ABNORMAL, CloseInfo, CloseRequestError, Message, check_close_request};
use crate::outbox::{Outbox, OutboxFull, OutboxLimits};
use crate::probe::Prober;
use crate::session::{AfterClose, State, Supervisor};
use crate::time;
use crate::transport::Transport;

/// How a [`Connection`] behaves.
#[derive(Debug, Clone)]
pub struct ConnectionConfig {
    /// The WebSocket URL (`ws://` or `wss://`).
    pub url: String,
    /// Reconnect delays.
    pub backoff: BackoffConfig,
    /// Limits of the queue used while not open.
    pub outbox: OutboxLimits,
    /// How often an RTT probe is sent while open; `None` sends none. The
    /// server must echo text messages. Default 1 s: a live chart without
    /// measurable load.
    pub probe_interval: Option<Duration>,
    /// Reconnect after a close that was not asked for (default on).
    pub reconnect: bool,
    /// How long to wait for the server's answer to our Close before giving
    /// up on the handshake. Default 5 s, like the server's close timeout.
    pub close_timeout: Duration,
}

impl ConnectionConfig {
    /// The defaults for `url`.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            backoff: BackoffConfig::default(),
            outbox: OutboxLimits::default(),
            probe_interval: Some(Duration::from_secs(1)),
            reconnect: true,
            close_timeout: Duration::from_secs(5),
        }
    }
}

/// What happened, in order.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// The state changed.
    State(State),
    /// A data message arrived (probes are reported as [`Event::Rtt`]).
    Received(Message),
    /// A data message was written to the socket (at once, or from the queue
    /// after a reconnect).
    Sent(Message),
    /// A message was queued because the connection is not open.
    Queued {
        /// Its size in bytes.
        size: usize,
        /// Messages now queued.
        queued: usize,
    },
    /// A probe came back after this many milliseconds.
    Rtt(f64),
    /// The connection opened again after it was lost.
    Reconnected,
    /// The socket closed (or an attempt failed before opening).
    Closed(CloseInfo),
    /// Something failed; the state events say what happens next.
    Error(TransportError),
}

/// The receiving side of a connection's events.
pub type Events = mpsc::UnboundedReceiver<Event>;

/// How [`Connection::send`] handled a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    /// Written to the open socket.
    Sent,
    /// Queued until the connection opens; this many are queued now.
    Queued(usize),
}

/// Requests from the handle to the task.
#[derive(Debug)]
enum Command {
    Connect,
    Close { code: u16, reason: String },
}

/// What the handle and the task share.
#[derive(Debug)]
struct Inner {
    url: String,
    supervisor: Supervisor,
    /// The open socket, for sends from the handle.
    transport: Option<Rc<Transport>>,
    outbox: Outbox,
    /// Sent first on every open, before the queue (see
    /// [`Connection::set_greeting`]).
    greeting: Vec<Message>,
    prober: Prober,
    events: mpsc::UnboundedSender<Event>,
}

impl Inner {
    fn emit(&self, event: Event) {
        // Nobody listening is fine: the page may not care about events.
        let _ = self.events.unbounded_send(event);
    }

    fn emit_state(&self) {
        self.emit(Event::State(self.supervisor.state().clone()));
    }

    /// Writes queued messages in order while the socket takes them.
    /// Writes `message` if the socket is open, after the queue (flushed
    /// first); whether it was written.
    fn send_now(&mut self, message: &Message) -> bool {
        let (State::Open, Some(transport)) = (self.supervisor.state(), self.transport.clone())
        else {
            return false;
        };
        // Whatever is still queued goes first.
        self.flush(&transport);
        // NotOpen here means the close is on its way.
        self.outbox.is_empty() && transport.send(message).is_ok()
    }

    fn flush(&mut self, transport: &Transport) {
        while let Some(message) = self.outbox.pop() {
            if let Err(error) = transport.send(&message) {
                self.outbox.push_front(message);
                self.emit(Event::Error(error));
                break;
            }
            self.emit(Event::Sent(message));
        }
    }
}

/// A managed connection. Dropping it closes the socket and stops the task.
#[derive(Debug)]
pub struct Connection {
    inner: Rc<RefCell<Inner>>,
    commands: mpsc::UnboundedSender<Command>,
}

impl Connection {
    /// A connection manager for `config.url`, closed until
    /// [`Connection::connect`]. Its events arrive on the returned stream.
    pub fn new(config: ConnectionConfig) -> (Self, Events) {
        let (events_tx, events) = mpsc::unbounded();
        let (commands, commands_rx) = mpsc::unbounded();
        // The nonce only has to differ between tabs; 32 random bits do.
        let nonce = (time::random() * f64::from(u32::MAX)) as u32;
        let inner = Rc::new(RefCell::new(Inner {
            url: config.url.clone(),
            supervisor: Supervisor::new(config.backoff, config.reconnect),
            transport: None,
            outbox: Outbox::new(config.outbox),
            greeting: Vec::new(),
            prober: Prober::new(nonce),
            events: events_tx,
        }));
        wasm_bindgen_futures::spawn_local(drive(Rc::clone(&inner), commands_rx, config));
        (Self { inner, commands }, events)
    }

    /// Connects (again) to the configured URL. While waiting to reconnect,
    /// tries at once; while connecting, starts the attempt again (with the
    /// URL as it is now: [`Connection::set_url`]); while open, does
    /// nothing.
    pub fn connect(&self) {
        let _ = self.commands.unbounded_send(Command::Connect);
    }

    /// Connects to another URL from now on; takes effect on the next
    /// attempt (disconnect first to switch an open connection). The rooms
    /// panel puts the token in it this way ([`crate::rooms::with_token`]).
    pub fn set_url(&self, url: impl Into<String>) {
        self.inner.borrow_mut().url = url.into();
    }

    /// Messages to send first on every open, before the queued ones: what
    /// a protocol needs to restore its state after a reconnect (the rooms
    /// to join again, see [`crate::rooms`]). Replaces the previous
    /// greeting; takes effect on the next open.
    pub fn set_greeting(&self, messages: Vec<Message>) {
        self.inner.borrow_mut().greeting = messages;
    }

    /// The URL of the next attempt.
    pub fn url(&self) -> String {
        self.inner.borrow().url.clone()
    }

    /// Sends `message` now if the connection is open and nothing is queued;
    /// otherwise queues it, to be sent in order once the connection opens.
    ///
    /// # Errors
    /// [`OutboxFull`] when the queue cannot take it (see [`crate::outbox`]
    /// for the policy): the message is not sent.
    pub fn send(&self, message: Message) -> Result<Delivery, OutboxFull> {
        let mut inner = self.inner.borrow_mut();
        // Not sent now: the close is on its way, or the socket is not
        // open; queue it.
        if inner.send_now(&message) {
            inner.emit(Event::Sent(message));
            return Ok(Delivery::Sent);
        }
        let size = message.len();
        inner.outbox.push(message)?;
        let queued = inner.outbox.len();
        inner.emit(Event::Queued { size, queued });
        Ok(Delivery::Queued(queued))
    }

    /// Sends `message` now if the connection is open, after whatever is
    /// queued; otherwise drops it and returns `false`.
    ///
    /// For messages whose effect the greeting ([`Connection::set_greeting`])
    /// restores on the next open, like room joins and leaves: queued, they
    /// would go out after the greeting and repeat or undo it (a leave
    /// written as the socket closed was queued and earned `not_joined`
    /// after the reconnect).
    pub fn send_or_drop(&self, message: Message) -> bool {
        let mut inner = self.inner.borrow_mut();
        let sent = inner.send_now(&message);
        if sent {
            inner.emit(Event::Sent(message));
        }
        sent
    }

    /// Closes with `code` and `reason` and stays closed (no reconnect).
    /// Queued messages stay queued for the next connect.
    ///
    /// # Errors
    /// [`CloseRequestError`] for a code or reason browsers refuse.
    pub fn close(&self, code: u16, reason: &str) -> Result<(), CloseRequestError> {
        check_close_request(code, reason)?;
        let _ = self.commands.unbounded_send(Command::Close {
            code,
            reason: reason.to_owned(),
        });
        Ok(())
    }

    /// The current state.
    pub fn state(&self) -> State {
        self.inner.borrow().supervisor.state().clone()
    }

    /// The extensions the open socket negotiated (see
    /// [`Transport::extensions`]): `Some("permessage-deflate; …")` when the
    /// server compresses, `Some("")` when it does not, `None` while no
    /// socket is open or closing.
    pub fn extensions(&self) -> Option<String> {
        self.inner
            .borrow()
            .transport
            .as_ref()
            .map(|transport| transport.extensions())
    }

    /// Messages and bytes queued.
    pub fn queued(&self) -> (usize, usize) {
        let inner = self.inner.borrow();
        (inner.outbox.len(), inner.outbox.bytes())
    }
}

/// Why the open phase ended.
enum Ended {
    Closed(CloseInfo),
    /// The handle was dropped.
    Stopped,
}

/// The task behind a [`Connection`]: waits for a connect, then connects,
/// serves and reconnects until a close is final, and again.
async fn drive(
    inner: Rc<RefCell<Inner>>,
    mut commands: mpsc::UnboundedReceiver<Command>,
    config: ConnectionConfig,
) {
    // Closed: wait for a connect.
    'closed: while let Some(command) = commands.next().await {
        if matches!(command, Command::Close { .. }) {
            continue;
        }
        let mut by_person = true;
        loop {
            let url = {
                let mut inner = inner.borrow_mut();
                inner.supervisor.connecting(by_person);
                inner.emit_state();
                inner.url.clone()
            };
            by_person = false;

            // Connecting: the attempt, unless a command interrupts it
            // (dropping the attempt closes its socket).
            let attempt = std::pin::pin!(Transport::connect(&url));
            let outcome = std::future::poll_fn({
                let mut attempt = attempt;
                let commands = &mut commands;
                move |cx| {
                    if let Poll::Ready(command) = commands.poll_next_unpin(cx) {
                        return Poll::Ready(Err(command));
                    }
                    attempt.as_mut().poll(cx).map(Ok)
                }
            })
            .await;
            let info = match outcome {
                Err(None) => return,
                Err(Some(Command::Connect)) => {
                    by_person = true;
                    continue;
                }
                Err(Some(Command::Close { .. })) => {
                    let mut inner = inner.borrow_mut();
                    inner.supervisor.close_requested();
                    inner.emit_state();
                    continue 'closed;
                }
                Ok(Err(error)) => {
                    let info = match &error {
                        TransportError::ConnectFailed { code, .. } => CloseInfo {
                            code: *code,
                            reason: String::new(),
                            was_clean: false,
                        },
                        // A URL the browser rejects will not improve: stop.
                        _ => {
                            let mut inner = inner.borrow_mut();
                            inner.emit(Event::Error(error));
                            inner.supervisor.close_requested();
                            inner.emit_state();
                            continue 'closed;
                        }
                    };
                    inner.borrow().emit(Event::Error(error));
                    info
                }
                Ok(Ok(transport)) => match serve(&inner, &mut commands, transport, &config).await {
                    Ended::Closed(info) => info,
                    Ended::Stopped => return,
                },
            };

            // Closed or failed: reconnect or stop.
            let decision = {
                let mut inner = inner.borrow_mut();
                let decision = inner
                    .supervisor
                    .ended(&info, time::now_ms(), time::random());
                inner.emit_state();
                decision
            };
            let AfterClose::Reconnect(delay) = decision else {
                continue 'closed;
            };
            let mut wait = time::sleep(delay);
            let woken = std::future::poll_fn(|cx| {
                if let Poll::Ready(command) = commands.poll_next_unpin(cx) {
                    return Poll::Ready(Some(command));
                }
                Pin::new(&mut wait).poll(cx).map(|()| None)
            })
            .await;
            match woken {
                // The wait ended, or the person pressed connect: try now.
                None => {}
                Some(Some(Command::Connect)) => by_person = true,
                Some(Some(Command::Close { .. })) => {
                    let mut inner = inner.borrow_mut();
                    inner.supervisor.close_requested();
                    inner.emit_state();
                    continue 'closed;
                }
                Some(None) => return,
            }
        }
    }
}

/// What woke the open phase.
enum Wake {
    Command(Option<Command>),
    Probe,
    CloseTimeout,
    Incoming(Option<Message>),
}

/// The open phase: flush the queue, then deliver messages, send probes and
/// follow commands until the socket closes.
async fn serve(
    inner: &Rc<RefCell<Inner>>,
    commands: &mut mpsc::UnboundedReceiver<Command>,
    transport: Transport,
    config: &ConnectionConfig,
) -> Ended {
    let transport = Rc::new(transport);
    {
        let mut inner = inner.borrow_mut();
        let reconnected = inner.supervisor.opened();
        inner.transport = Some(Rc::clone(&transport));
        inner.emit_state();
        if reconnected {
            inner.emit(Event::Reconnected);
        }
        // The greeting first, so the queue finds the state it expects.
        for message in inner.greeting.clone() {
            match transport.send(&message) {
                Ok(()) => inner.emit(Event::Sent(message)),
                Err(error) => inner.emit(Event::Error(error)),
            }
        }
        // Queued messages go out now, before the handle can send anything
        // new directly (this runs without yielding), so the order holds.
        inner.flush(&transport);
    }
    let mut probe = config.probe_interval.map(time::sleep);
    let mut close_deadline: Option<time::Sleep> = None;
    let ended = loop {
        let wake = std::future::poll_fn(|cx| {
            if let Poll::Ready(command) = commands.poll_next_unpin(cx) {
                return Poll::Ready(Wake::Command(command));
            }
            if let Some(timer) = probe.as_mut()
                && Pin::new(timer).poll(cx).is_ready()
            {
                return Poll::Ready(Wake::Probe);
            }
            if let Some(timer) = close_deadline.as_mut()
                && Pin::new(timer).poll(cx).is_ready()
            {
                return Poll::Ready(Wake::CloseTimeout);
            }
            transport.poll_recv(cx).map(Wake::Incoming)
        })
        .await;
        match wake {
            Wake::Command(None) => break Ended::Stopped,
            Wake::Command(Some(Command::Connect)) => {}
            Wake::Command(Some(Command::Close { code, reason })) => {
                let mut inner = inner.borrow_mut();
                if let Err(error) = transport.close(code, &reason) {
                    inner.emit(Event::Error(error));
                }
                inner.supervisor.close_requested();
                inner.emit_state();
                close_deadline = Some(time::sleep(config.close_timeout));
            }
            Wake::Probe => {
                let mut inner = inner.borrow_mut();
                let text = inner.prober.probe(time::now_ms());
                // A failed probe just means no sample this time.
                let _ = transport.send(&Message::Text(text));
                probe = config.probe_interval.map(time::sleep);
            }
            Wake::CloseTimeout => {
                break Ended::Closed(CloseInfo {
                    code: CLOSE_ABNORMAL,
                    reason: "no answer to our Close in time".into(),
                    was_clean: false,
                });
            }
            Wake::Incoming(Some(message)) => {
                let inner = inner.borrow();
                let rtt = match &message {
                    Message::Text(text) => inner.prober.reply(text, time::now_ms()),
                    Message::Binary(_) => None,
                };
                match rtt {
                    Some(reply) => inner.emit(Event::Rtt(reply.rtt_ms)),
                    None => inner.emit(Event::Received(message)),
                }
            }
            Wake::Incoming(None) => {
                let info = transport.close_info().unwrap_or(CloseInfo {
                    code: CLOSE_ABNORMAL,
                    reason: String::new(),
                    was_clean: false,
                });
                break Ended::Closed(info);
            }
        }
    };
    let mut inner = inner.borrow_mut();
    inner.transport = None;
    if let Ended::Closed(info) = &ended {
        inner.emit(Event::Closed(info.clone()));
    }
    ended
}
