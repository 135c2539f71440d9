//! The rooms panel: a second [`Connection`], to `/ws` on the same server,
//! driven by the [`Rooms`] model. It connects on the first join, so the
//! echo page works without it; it keeps its own listeners and task, and
//! fails on its own (a missing element disables only this panel).

use std::cell::RefCell;
use std::rc::{Rc, Weak};

use futures_util::StreamExt;
use web_sys::{Document, Element, HtmlElement, HtmlInputElement};

use super::dom::{self, Listener, UiError};
use crate::connection::{Connection, ConnectionConfig, Event as ConnEvent, Events};
use crate::message::Message;
use crate::rooms::{Author, Change, Rooms};
use crate::session::State;

/// What keeps the panel alive.
pub(crate) struct RoomsPanel {
    _view: Rc<RefCell<RoomsView>>,
    _listeners: Vec<Listener>,
}

struct RoomsView {
    document: Document,
    name: HtmlInputElement,
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
}

/// The rooms URL for an echo URL: the same server's `/ws`.
pub(crate) fn rooms_url(echo_url: &str) -> String {
    let base = echo_url.trim_end_matches('/');
    let base = base.strip_suffix("/echo").unwrap_or(base);
    format!("{base}/ws")
}

fn with(weak: &Weak<RefCell<RoomsView>>, f: impl FnOnce(&mut RoomsView)) {
    if let Some(view) = weak.upgrade() {
        f(&mut view.borrow_mut());
    }
}

/// Binds the rooms panel of `index.html`; `echo_url` names the server.
pub(crate) fn build(document: &Document, echo_url: &str) -> Result<RoomsPanel, UiError> {
    let mut config = ConnectionConfig::new(rooms_url(echo_url));
    // The rooms protocol does not echo, so no RTT probes.
    config.probe_interval = None;
    let (connection, events) = Connection::new(config);
    let view = Rc::new(RefCell::new(RoomsView {
        document: document.clone(),
        name: dom::by_id(document, "room-name")?,
        room: dom::by_id(document, "room-room")?,
        text: dom::by_id(document, "room-text")?,
        status: dom::by_id(document, "room-status")?,
        title: dom::by_id(document, "room-members-title")?,
        members: dom::by_id(document, "room-members")?,
        chat: dom::by_id(document, "room-chat")?,
        connection,
        rooms: Rooms::new(),
        current: None,
    }));
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
    ];
    wasm_bindgen_futures::spawn_local(pump(weak, events));
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

    fn join(&mut self) {
        let name = self.name.value().trim().to_owned();
        let room = self.room.value().trim().to_owned();
        if name.is_empty() || room.is_empty() {
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
        if matches!(self.connection.state(), State::Closed) {
            self.connection.connect();
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
            ConnEvent::Closed(_) => {
                self.rooms.disconnected();
                // Every message of the ended connection has been handled
                // (events arrive in order), so the rooms' positions are
                // final: the next open rejoins `since` them.
                self.connection.set_greeting(self.rooms.greeting());
                self.draw();
            }
            ConnEvent::Error(error) => self.set_status(&error.to_string()),
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

#[cfg(test)]
mod tests {
    use super::rooms_url;

    #[test]
    fn rooms_url_is_ws_next_to_echo() {
        assert_eq!(rooms_url("ws://h:1/echo"), "ws://h:1/ws");
        assert_eq!(rooms_url("wss://h/"), "wss://h/ws");
        assert_eq!(rooms_url("ws://h:1"), "ws://h:1/ws");
    }
}
