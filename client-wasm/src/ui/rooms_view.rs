//! The rooms panel: a second [`Connection`], to `/ws` on the same server,
//! driven by the [`Rooms`] model. It connects on the first join, so the
//! echo page works without it; it keeps its own listeners and task, and
//! fails on its own (a missing element disables only this panel).
//!
//! A server with `--jwt-secret` opens `/ws` only with a token: the panel's
//! token field (prefilled from the page's `?token=`) goes into the URL as
//! `?token=` ([`with_token`]) when a join connects. The token then names
//! the member (its `sub`), so the name field is disabled while a token is
//! typed. A refused upgrade (401) reaches a browser only as a failed
//! connection, so the status line names the token as the likely cause; the
//! token itself is never shown.

use std::cell::RefCell;
use std::rc::{Rc, Weak};

use futures_util::StreamExt;
use web_sys::{Document, Element, HtmlElement, HtmlInputElement};

use super::dom::{self, Listener, UiError};
use crate::connection::{Connection, ConnectionConfig, Event as ConnEvent, Events};
use crate::error::TransportError;
use crate::message::Message;
use crate::rooms::{Author, Change, Rooms, rooms_url, with_token};
use crate::session::{self, State};

/// The close code of a connection whose token expired
/// (`docs/protocol.md`, "Close codes").
const CLOSE_TOKEN_EXPIRED: u16 = 4001;
/// The name field's label.
const NAME_LABEL: &str = "Your name";
/// Its label while a token is typed: the token's `sub` names the member.
const NAME_FROM_TOKEN: &str = "Name: from the token";

/// What keeps the panel alive.
pub(crate) struct RoomsPanel {
    _view: Rc<RefCell<RoomsView>>,
    _listeners: Vec<Listener>,
}

struct RoomsView {
    document: Document,
    name: HtmlInputElement,
    name_label: HtmlElement,
    token: HtmlInputElement,
    room: HtmlInputElement,
    text: HtmlInputElement,
    status: HtmlElement,
    title: HtmlElement,
    members: Element,
    chat: HtmlElement,
    connection: Connection,
    rooms: Rooms,
    /// The room the panel shows (the last one joined).
    current: Option<String>,
    /// `/ws` without the token: what the status line may show.
    url: String,
    /// The next connection attempt carries a token (set at each join).
    with_token: bool,
    /// The status line says the connection failed: cleared once it opens.
    connect_failed: bool,
}

fn with(weak: &Weak<RefCell<RoomsView>>, f: impl FnOnce(&mut RoomsView)) {
    if let Some(view) = weak.upgrade() {
        f(&mut view.borrow_mut());
    }
}

/// Binds the rooms panel of `index.html`; `echo_url` names the server,
/// `token` (the page's `?token=`) prefills the token field.
pub(crate) fn build(
    document: &Document,
    echo_url: &str,
    token: Option<&str>,
) -> Result<RoomsPanel, UiError> {
    let url = rooms_url(echo_url);
    let mut config = ConnectionConfig::new(url.clone());
    // The rooms protocol does not echo, so no RTT probes.
    config.probe_interval = None;
    let (connection, events) = Connection::new(config);
    let view = Rc::new(RefCell::new(RoomsView {
        document: document.clone(),
        name: dom::by_id(document, "room-name")?,
        name_label: dom::by_id(document, "room-name-label")?,
        token: dom::by_id(document, "room-token")?,
        room: dom::by_id(document, "room-room")?,
        text: dom::by_id(document, "room-text")?,
        status: dom::by_id(document, "room-status")?,
        title: dom::by_id(document, "room-members-title")?,
        members: dom::by_id(document, "room-members")?,
        chat: dom::by_id(document, "room-chat")?,
        connection,
        rooms: Rooms::new(),
        current: None,
        url,
        with_token: false,
        connect_failed: false,
    }));
    if let Some(token) = token {
        view.borrow().token.set_value(token);
    }
    let weak = Rc::downgrade(&view);
    let on = |id: &'static str, event: &'static str, f: fn(&mut RoomsView)| {
        let weak = weak.clone();
        let target: web_sys::EventTarget = dom::by_id(document, id)?;
        Ok::<_, UiError>(Listener::new(&target, event, move |e| {
            e.prevent_default();
            with(&weak, f);
        })?)
    };
    let listeners = vec![
        on("room-form", "submit", RoomsView::join)?,
        on("room-leave", "click", RoomsView::leave)?,
        on("room-send-form", "submit", RoomsView::send)?,
        on("room-token", "input", |view| view.token_changed())?,
    ];
    wasm_bindgen_futures::spawn_local(pump(weak, events));
    view.borrow().token_changed();
    view.borrow().draw();
    Ok(RoomsPanel {
        _view: view,
        _listeners: listeners,
    })
}

async fn pump(weak: Weak<RefCell<RoomsView>>, mut events: Events) {
    while let Some(event) = events.next().await {
        let Some(view) = weak.upgrade() else { break };
        view.borrow_mut().on_event(event);
    }
}

impl RoomsView {
    fn is_open(&self) -> bool {
        self.connection.state() == State::Open
    }

    /// The token field, trimmed (a pasted token often ends in a newline).
    fn token(&self) -> String {
        self.token.value().trim().to_owned()
    }

    /// With a token the server takes the name from it: the name field
    /// says so and takes no input.
    fn token_changed(&self) {
        let from_token = !self.token().is_empty();
        self.name.set_disabled(from_token);
        let label = if from_token {
            NAME_FROM_TOKEN
        } else {
            NAME_LABEL
        };
        dom::set_text(&self.name_label, label);
    }

    fn join(&mut self) {
        let token = self.token();
        let name = self.name.value().trim().to_owned();
        let room = self.room.value().trim().to_owned();
        // With a token the `name` sent is ignored (the token's `sub` is the
        // name), so it may be empty.
        if (name.is_empty() && token.is_empty()) || room.is_empty() {
            self.set_status("type a name and a room first");
            return;
        }
        let open = self.is_open();
        let message = self.rooms.join(&room, &name, open);
        self.connection.set_greeting(self.rooms.greeting());
        // Sent now or never: if the socket is closing, the next greeting
        // asks for the room (Connection::send_or_drop).
        if let Some(message) = message {
            self.connection.send_or_drop(message);
        }
        // The token as it is now, for the next attempt; an open connection
        // keeps the one it opened with.
        let url = with_token(&self.url, &token);
        let changed = self.connection.url() != url;
        self.with_token = !token.is_empty();
        self.connection.set_url(url);
        // Closed, waiting to retry, or trying with another token (a token
        // typed after a refusal): try now; a connect restarts an attempt.
        match self.connection.state() {
            State::Closed | State::Reconnecting { .. } => self.connection.connect(),
            State::Connecting { .. } if changed => self.connection.connect(),
            _ => {}
        }
        self.current = Some(room);
        self.set_status("");
        self.draw();
    }

    fn leave(&mut self) {
        let Some(room) = self.current.take() else {
            self.set_status("not in a room");
            return;
        };
        let open = self.is_open();
        let message = self.rooms.leave(&room, open);
        self.connection.set_greeting(self.rooms.greeting());
        // Now or never, like a join: the next greeting leaves the room out.
        if let Some(message) = message {
            self.connection.send_or_drop(message);
        }
        self.current = self.rooms.names().next().map(str::to_owned);
        self.draw();
    }

    /// The server refused to join `room` and the model dropped it: the next
    /// greeting must not ask for it again, and the panel stops showing it
    /// as joining (it shows the next wanted room, as after a leave).
    fn join_refused(&mut self, room: &str, message: &str) {
        self.connection.set_greeting(self.rooms.greeting());
        if self.current.as_deref() == Some(room) {
            self.current = self.rooms.names().next().map(str::to_owned);
            self.draw();
        }
        // The server's explanation need not name the room (too_many_rooms).
        self.set_status(&format!("could not join {room}: {message}"));
    }

    fn send(&mut self) {
        let Some(room) = self.current.clone() else {
            self.set_status("join a room first");
            return;
        };
        let text = self.text.value();
        if text.is_empty() {
            return;
        }
        if self.send_message(Rooms::publish(&room, &text)) {
            self.text.set_value("");
        }
    }

    fn send_message(&mut self, message: Message) -> bool {
        match self.connection.send(message) {
            Ok(_) => true,
            Err(full) => {
                self.set_status(&full.to_string());
                false
            }
        }
    }

    fn set_status(&self, text: &str) {
        dom::set_text(&self.status, text);
    }

    fn on_event(&mut self, event: ConnEvent) {
        match event {
            ConnEvent::Received(Message::Text(text)) => match self.rooms.handle_text(&text) {
                Ok(Change::Error { message, .. }) => self.set_status(&message),
                Ok(Change::JoinRefused { room, message, .. }) => self.join_refused(&room, &message),
                Ok(Change::Missed(count)) => {
                    self.set_status(&format!("{count} messages dropped by the server"));
                }
                Ok(Change::Room(room)) if self.current.as_deref() == Some(room.as_str()) => {
                    self.draw();
                }
                // A leave for a join confirmed after it was left: now or
                // never, the greeting leaves the room out.
                Ok(Change::Send(message)) => {
                    self.connection.send_or_drop(message);
                }
                Ok(_) => {}
                Err(error) => self.set_status(&error.to_string()),
            },
            ConnEvent::Received(Message::Binary(frame)) => match self.rooms.handle_binary(&frame) {
                Ok(Change::Room(room)) if self.current.as_deref() == Some(room.as_str()) => {
                    self.draw();
                }
                Ok(_) => {}
                Err(error) => self.set_status(&format!("a binary frame from the server: {error}")),
            },
            ConnEvent::Closed(info) => {
                self.rooms.disconnected(session::retryable(&info));
                // Every message of the ended connection has been handled
                // (events arrive in order), so the rooms' positions are
                // final: the next open rejoins `since` them.
                self.connection.set_greeting(self.rooms.greeting());
                if info.code == CLOSE_TOKEN_EXPIRED {
                    // Final (not retried): the same token would fail again.
                    self.set_status("the token expired: enter a new one and join again");
                }
                self.draw();
            }
            // Its message would show the URL, token and all.
            ConnEvent::Error(TransportError::ConnectFailed { .. }) => {
                let hint = if self.with_token {
                    "token wrong or expired?"
                } else {
                    "server down, or token missing?"
                };
                self.set_status(&format!("cannot connect to {} ({hint})", self.url));
                self.connect_failed = true;
            }
            ConnEvent::Error(error) => self.set_status(&error.to_string()),
            ConnEvent::State(State::Open) if self.connect_failed => {
                self.connect_failed = false;
                self.set_status("");
            }
            _ => {}
        }
    }

    /// Redraws the member list and chat of the current room.
    fn draw(&self) {
        let room = self.current.as_deref().and_then(|r| self.rooms.room(r));
        let title = match (self.current.as_deref(), room) {
            (Some(name), Some(room)) if room.joined => {
                format!("Members of {name} ({})", room.member_count)
            }
            (Some(name), Some(_)) => format!("Members of {name} (joining…)"),
            _ => "Members".to_owned(),
        };
        dom::set_text(&self.title, &title);
        self.members.set_text_content(None);
        self.chat.set_text_content(None);
        let Some(room) = room else { return };
        let me = self.rooms.client_id();
        for member in &room.members {
            let you = if Some(member.id) == me { " (you)" } else { "" };
            self.append(
                &self.members,
                "li",
                "",
                &format!("{} #{}{you}", member.name, member.id),
            );
        }
        for line in &room.lines {
            let (class, who) = match &line.author {
                // A binary delivery from a member not in the list has no
                // name, only its id.
                Author::Member(member) if member.name.is_empty() => {
                    ("line", format!("#{}", member.id))
                }
                Author::Member(member) => ("line", format!("{} #{}", member.name, member.id)),
                Author::Server => ("line server", "server".to_owned()),
                Author::Note => ("line note", String::new()),
                Author::Warning => ("line note warning", String::new()),
            };
            let Some(row) = self.append(&self.chat, "div", class, "") else {
                continue;
            };
            if !who.is_empty() {
                self.append(&row, "span", "who", &who);
            }
            self.append(&row, "span", "what", &line.text);
        }
        self.chat.set_scroll_top(self.chat.scroll_height());
    }

    fn append(&self, parent: &Element, tag: &str, class: &str, text: &str) -> Option<Element> {
        let element = dom::create(&self.document, tag, class).ok()?;
        if !text.is_empty() {
            element.set_text_content(Some(text));
        }
        parent.append_child(&element).ok()?;
        Some(element)
    }
}
