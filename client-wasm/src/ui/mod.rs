//! The page: binds the elements of `index.html` to a [`Connection`] and
//! draws its state, counters, RTT and log. Everything the page decides is
//! in the plain-Rust modules; this is wiring and drawing.
//!
//! Drawing happens at most once per animation frame, however many events
//! arrive, so a burst of thousands of messages costs a few frames.
//!
//! The page owns its listeners (removed if the page state is dropped) and
//! they hold only weak references to it, so there is no cycle and no
//! `Closure::forget`.

mod chart_view;
mod dom;
mod log_view;
mod rooms_view;

use std::cell::RefCell;
use std::rc::{Rc, Weak};
use std::time::Duration;

use futures_util::StreamExt;
use wasm_bindgen::JsCast;
use wasm_bindgen::closure::Closure;
use web_sys::{
    Document, Event, HtmlButtonElement, HtmlElement, HtmlInputElement, HtmlTextAreaElement,
    KeyboardEvent,
};

use self::chart_view::ChartView;
use self::dom::{Listener, UiError};
use self::log_view::LogView;
use crate::connection::{Connection, ConnectionConfig, Event as ConnEvent, Events};
use crate::format;
use crate::hex;
use crate::message::{CLOSE_NORMAL, Message};
use crate::message_log::{Body, Direction, MessageLog};
use crate::session::State;
use crate::stats::{Counters, RttStats};
use crate::time;

/// Largest file the page sends: the server's default message limit
/// (`--max-message-size 16MiB`); a larger one would be refused with 1009.
const MAX_FILE_BYTES: f64 = 16.0 * 1024.0 * 1024.0;
/// Most copies one press of "send" may write (the repeat field), enough to
/// fill the log for a smoothness check.
const MAX_REPEAT: u32 = 10_000;
/// Longest stretch of event handling before the page yields to the
/// browser: half a 60 Hz frame.
const EVENT_BUDGET_MS: f64 = 8.0;
/// How often the "reconnecting in N s" badge is refreshed.
const BADGE_TICK: Duration = Duration::from_millis(250);

thread_local! {
    /// The page, alive as long as the document.
    static PAGE: RefCell<Option<Page>> = const { RefCell::new(None) };
}

/// What keeps the page alive.
struct Page {
    _app: Rc<RefCell<App>>,
    _listeners: Vec<Listener>,
    /// The rooms panel; `None` if it failed to start (the rest works).
    _rooms: Option<rooms_view::RoomsPanel>,
}

/// The elements the page reads and writes.
struct Elements {
    root: HtmlElement,
    state: HtmlElement,
    compression: HtmlElement,
    url: HtmlInputElement,
    connect: HtmlButtonElement,
    disconnect: HtmlButtonElement,
    close_code: HtmlInputElement,
    close_reason: HtmlInputElement,
    text: HtmlTextAreaElement,
    repeat: HtmlInputElement,
    hex: HtmlInputElement,
    file: HtmlInputElement,
    send_status: HtmlElement,
    sent: HtmlElement,
    received: HtmlElement,
    queued: HtmlElement,
    refused: HtmlElement,
    reconnects: HtmlElement,
    rtt_last: HtmlElement,
    rtt_p50: HtmlElement,
    rtt_p99: HtmlElement,
    log_count: HtmlElement,
    log: HtmlElement,
}

impl Elements {
    fn find(document: &Document) -> Result<Self, UiError> {
        Ok(Self {
            root: dom::by_id(document, "duplex")?,
            state: dom::by_id(document, "state")?,
            compression: dom::by_id(document, "compression")?,
            url: dom::by_id(document, "url")?,
            connect: dom::by_id(document, "connect")?,
            disconnect: dom::by_id(document, "disconnect")?,
            close_code: dom::by_id(document, "close-code")?,
            close_reason: dom::by_id(document, "close-reason")?,
            text: dom::by_id(document, "send-text")?,
            repeat: dom::by_id(document, "send-repeat")?,
            hex: dom::by_id(document, "send-hex")?,
            file: dom::by_id(document, "send-file")?,
            send_status: dom::by_id(document, "send-status")?,
            sent: dom::by_id(document, "count-sent")?,
            received: dom::by_id(document, "count-received")?,
            queued: dom::by_id(document, "count-queued")?,
            refused: dom::by_id(document, "count-refused")?,
            reconnects: dom::by_id(document, "count-reconnects")?,
            rtt_last: dom::by_id(document, "rtt-last")?,
            rtt_p50: dom::by_id(document, "rtt-p50")?,
            rtt_p99: dom::by_id(document, "rtt-p99")?,
            log_count: dom::by_id(document, "log-count")?,
            log: dom::by_id(document, "log")?,
        })
    }
}

/// The page's state.
struct App {
    el: Elements,
    connection: Connection,
    log: MessageLog,
    counters: Counters,
    rtt: RttStats,
    log_view: LogView,
    chart: ChartView,
    /// The animation-frame callback; holds a weak reference to the app.
    frame: Option<Closure<dyn FnMut()>>,
    /// A frame is requested and not drawn yet.
    frame_pending: bool,
    /// New RTT samples since the chart was drawn.
    chart_dirty: bool,
    /// Longest frame so far (ms), shown as `data-max-frame-ms` on the log
    /// so tests and people can check the log stays smooth.
    max_frame_ms: f64,
}

/// Starts the page if this document is the page.
pub(crate) fn start() {
    let Ok(document) = dom::document() else {
        return;
    };
    if document.get_element_by_id("duplex").is_none() {
        return;
    }
    std::panic::set_hook(Box::new(|info| {
        web_sys::console::error_1(&info.to_string().into());
    }));
    match build(&document) {
        Ok(page) => PAGE.with(|p| *p.borrow_mut() = Some(page)),
        Err(error) => {
            let message = format!("the page failed to start: {error}");
            web_sys::console::error_1(&message.clone().into());
            if let Some(state) = document.get_element_by_id("state") {
                state.set_text_content(Some(&message));
            }
        }
    }
}

/// The URL to connect to: `?url=` if given, else this page's origin at
/// `/echo` (`ws:` or `wss:` to match the page).
fn default_url() -> String {
    let Some(location) = web_sys::window().map(|w| w.location()) else {
        return "ws://127.0.0.1:8080/echo".into();
    };
    let search = location.search().unwrap_or_default();
    if let Some(url) = query_param(&search, "url") {
        return url;
    }
    let host = location.host().unwrap_or_default();
    let secure = location.protocol().is_ok_and(|p| p == "https:");
    if host.is_empty() {
        return "ws://127.0.0.1:8080/echo".into();
    }
    format!("{}://{host}/echo", if secure { "wss" } else { "ws" })
}

/// The value of `name` in a `?a=b&c=d` query, percent-decoded.
fn query_param(search: &str, name: &str) -> Option<String> {
    search
        .trim_start_matches('?')
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .find(|(key, _)| *key == name)
        .and_then(|(_, value)| js_sys::decode_uri_component(value).ok())
        .map(String::from)
}

fn build(document: &Document) -> Result<Page, UiError> {
    let el = Elements::find(document)?;
    let url = default_url();
    el.url.set_value(&url);
    let search = web_sys::window()
        .and_then(|w| w.location().search().ok())
        .unwrap_or_default();
    let token = query_param(&search, "token");
    let rooms = rooms_view::build(document, &url, token.as_deref())
        .map_err(|error| {
            let message = format!("the rooms panel failed to start: {error}");
            web_sys::console::error_1(&message.into());
        })
        .ok();
    let (connection, events) = Connection::new(ConnectionConfig::new(url));
    let app = Rc::new(RefCell::new(App {
        log_view: LogView::new(document)?,
        chart: ChartView::new(document)?,
        el,
        connection,
        log: MessageLog::default(),
        counters: Counters::default(),
        rtt: RttStats::default(),
        frame: None,
        frame_pending: false,
        chart_dirty: true,
        max_frame_ms: 0.0,
    }));
    let weak = Rc::downgrade(&app);
    app.borrow_mut().frame = Some(Closure::new({
        let weak = weak.clone();
        move || with(&weak, App::draw)
    }));

    let listeners = listen(document, &app, &weak)?;
    wasm_bindgen_futures::spawn_local(pump(weak.clone(), events));
    wasm_bindgen_futures::spawn_local(badge_ticker(weak.clone()));

    {
        let mut app = app.borrow_mut();
        if query_param(&search, "connect").as_deref() != Some("0") {
            app.connect();
        }
        app.update_state();
        app.request_frame();
        let ready = format::fixed(time::now_ms(), 0);
        dom::set_attr(&app.el.root, "data-ready-ms", &ready);
    }
    Ok(Page {
        _app: app,
        _listeners: listeners,
        _rooms: rooms,
    })
}

/// Runs `f` on the app if the page still exists.
fn with(weak: &Weak<RefCell<App>>, f: impl FnOnce(&mut App)) {
    if let Some(app) = weak.upgrade() {
        f(&mut app.borrow_mut());
    }
}

/// Registers every control's listener.
fn listen(
    document: &Document,
    app: &Rc<RefCell<App>>,
    weak: &Weak<RefCell<App>>,
) -> Result<Vec<Listener>, UiError> {
    let on = |id: &'static str, event: &'static str, f: fn(&mut App, &Event)| {
        let weak = weak.clone();
        let target: web_sys::EventTarget = dom::by_id(document, id)?;
        Ok::<_, UiError>(Listener::new(&target, event, move |e| {
            with(&weak, |app| f(app, &e))
        })?)
    };
    let mut listeners = vec![
        on("connect-form", "submit", |app, e| {
            e.prevent_default();
            app.connect();
        })?,
        on("disconnect", "click", |app, _| app.disconnect())?,
        on("text-form", "submit", |app, e| {
            e.prevent_default();
            app.send_text();
        })?,
        on("send-text", "keydown", |app, e| {
            // Enter sends; Shift+Enter makes a new line.
            if let Some(key) = e.dyn_ref::<KeyboardEvent>()
                && key.key() == "Enter"
                && !key.shift_key()
                && !key.is_composing()
            {
                e.prevent_default();
                app.send_text();
            }
        })?,
        on("hex-form", "submit", |app, e| {
            e.prevent_default();
            app.send_hex();
        })?,
        on("clear-log", "click", |app, _| {
            app.log.clear();
            // The frame statistics describe the log since it was cleared.
            app.max_frame_ms = 0.0;
            dom::set_attr(&app.el.log, "data-max-frame-ms", "0");
            app.request_frame();
        })?,
    ];
    {
        let weak = weak.clone();
        let target: web_sys::EventTarget = dom::by_id(document, "file-form")?;
        listeners.push(Listener::new(&target, "submit", move |e| {
            e.prevent_default();
            send_file(weak.clone());
        })?);
    }
    {
        let weak = weak.clone();
        let viewport = app.borrow().log_view.viewport().clone();
        listeners.push(Listener::new(&viewport, "scroll", move |_| {
            with(&weak, |app| {
                app.log_view.on_scroll();
                app.request_frame();
            });
        })?);
    }
    if let Some(window) = web_sys::window() {
        let weak = weak.clone();
        listeners.push(Listener::new(&window, "resize", move |_| {
            with(&weak, |app| {
                app.chart_dirty = true;
                app.request_frame();
            });
        })?);
    }
    Ok(listeners)
}

/// Feeds the connection's events to the app until the page goes away.
/// After [`EVENT_BUDGET_MS`] of work it yields to the browser, so a burst of
/// thousands of messages does not block input and drawing.
async fn pump(weak: Weak<RefCell<App>>, mut events: Events) {
    let mut slice_started = time::now_ms();
    while let Some(event) = events.next().await {
        let Some(app) = weak.upgrade() else { break };
        app.borrow_mut().on_event(event);
        drop(app);
        if time::now_ms() - slice_started > EVENT_BUDGET_MS {
            time::sleep(Duration::ZERO).await;
            slice_started = time::now_ms();
        }
    }
}

/// Keeps "reconnecting in N s" counting down.
async fn badge_ticker(weak: Weak<RefCell<App>>) {
    loop {
        time::sleep(BADGE_TICK).await;
        let Some(app) = weak.upgrade() else { break };
        let app = app.borrow();
        if matches!(app.connection.state(), State::Reconnecting { .. }) {
            app.update_state();
        }
    }
}

/// Reads the chosen file and sends it as one binary message.
fn send_file(weak: Weak<RefCell<App>>) {
    let file = {
        let Some(app) = weak.upgrade() else { return };
        let app = app.borrow();
        let Some(file) = app.el.file.files().and_then(|files| files.get(0)) else {
            app.status("choose a file first");
            return;
        };
        if file.size() > MAX_FILE_BYTES {
            app.status(&format!(
                "{} is {}: the server takes messages up to {}",
                file.name(),
                format::bytes(file.size() as u64),
                format::bytes(MAX_FILE_BYTES as u64)
            ));
            return;
        }
        file
    };
    wasm_bindgen_futures::spawn_local(async move {
        let read = wasm_bindgen_futures::JsFuture::from(file.array_buffer()).await;
        with(&weak, |app| match read {
            Ok(buffer) => {
                let bytes = js_sys::Uint8Array::new(&buffer).to_vec();
                app.note(format!(
                    "file {} ({})",
                    file.name(),
                    format::bytes(bytes.len() as u64)
                ));
                app.send(Message::Binary(bytes));
            }
            Err(error) => app.status(&format!(
                "cannot read {}: {}",
                file.name(),
                crate::error::js_error_text(&error)
            )),
        });
    });
}

impl App {
    fn connect(&mut self) {
        let url = self.el.url.value().trim().to_owned();
        self.connection.set_url(url);
        self.connection.connect();
    }

    fn disconnect(&mut self) {
        let code = self
            .el
            .close_code
            .value()
            .trim()
            .parse::<u16>()
            .unwrap_or(CLOSE_NORMAL);
        let reason = self.el.close_reason.value();
        if let Err(error) = self.connection.close(code, &reason) {
            self.status(&error.to_string());
        }
    }

    fn send_text(&mut self) {
        let text = self.el.text.value();
        if text.is_empty() {
            self.status("type a message first");
            return;
        }
        let repeat = self
            .el
            .repeat
            .value()
            .trim()
            .parse::<u32>()
            .unwrap_or(1)
            .clamp(1, MAX_REPEAT);
        for _ in 0..repeat {
            if !self.send(Message::Text(text.clone())) {
                break;
            }
        }
        self.el.text.set_value("");
    }

    fn send_hex(&mut self) {
        match hex::parse(&self.el.hex.value()) {
            Ok(bytes) => {
                self.send(Message::Binary(bytes));
            }
            Err(error) => self.status(&format!("hex: {error}")),
        }
    }

    /// Sends or queues one message; false if it was refused.
    fn send(&mut self, message: Message) -> bool {
        match self.connection.send(message) {
            Ok(_) => {
                self.status("");
                true
            }
            Err(full) => {
                self.counters.refused += 1;
                self.log.push(
                    time::local_wall_ms(),
                    Direction::Event,
                    Body::Error(full.to_string()),
                );
                self.status(&full.to_string());
                self.request_frame();
                false
            }
        }
    }

    fn status(&self, text: &str) {
        dom::set_text(&self.el.send_status, text);
    }

    fn note(&mut self, text: String) {
        self.log
            .push(time::local_wall_ms(), Direction::Event, Body::Note(text));
        self.request_frame();
    }

    fn on_event(&mut self, event: ConnEvent) {
        let now = time::local_wall_ms();
        match event {
            ConnEvent::State(state) => {
                let note = match &state {
                    State::Connecting { .. } => format!("connecting to {}", self.connection.url()),
                    State::Reconnecting { delay, attempt, .. } => format!(
                        "reconnecting in {} s (retry {attempt})",
                        format::fixed(delay.as_secs_f64(), 1)
                    ),
                    other => other.name().to_owned(),
                };
                self.log.push(now, Direction::Event, Body::Note(note));
                self.update_state();
            }
            ConnEvent::Received(message) => {
                self.counters.received(message.len());
                self.log
                    .push(now, Direction::Received, Body::of_message(&message));
            }
            ConnEvent::Sent(message) => {
                self.counters.sent(message.len());
                self.log
                    .push(now, Direction::Sent, Body::of_message(&message));
            }
            ConnEvent::Queued { size, queued } => {
                self.log.push(
                    now,
                    Direction::Event,
                    Body::Note(format!(
                        "queued {} ({queued} waiting)",
                        format::bytes(size as u64)
                    )),
                );
            }
            ConnEvent::Rtt(ms) => {
                self.counters.probes += 1;
                self.rtt.record(ms);
                self.chart_dirty = true;
            }
            ConnEvent::Reconnected => {
                self.counters.reconnects += 1;
                self.log
                    .push(now, Direction::Event, Body::Note("reconnected".into()));
            }
            ConnEvent::Closed(info) => self.log.push(now, Direction::Event, Body::Closed(info)),
            ConnEvent::Error(error) => {
                self.log
                    .push(now, Direction::Event, Body::Error(error.to_string()));
            }
        }
        self.request_frame();
    }

    /// The state badge, the negotiated compression next to it, and which
    /// buttons make sense.
    fn update_state(&self) {
        let state = self.connection.state();
        dom::set_text(&self.el.state, &state.label(time::now_ms()));
        dom::set_attr(&self.el.state, "data-state", state.name());
        dom::set_attr(&self.el.root, "data-state", state.name());
        // Read from the socket, not assumed: the browser offers
        // permessage-deflate and the server decides (`--deflate`).
        let extensions = self.connection.extensions();
        dom::set_text(
            &self.el.compression,
            &format::compression(extensions.as_deref()),
        );
        let title = match extensions.as_deref() {
            None => "no socket open",
            Some("") => "no WebSocket extensions negotiated",
            Some(list) => list,
        };
        dom::set_attr(&self.el.compression, "title", title);
        let list = extensions.as_deref().unwrap_or_default();
        dom::set_attr(&self.el.compression, "data-extensions", list);
        self.el
            .connect
            .set_disabled(!matches!(state, State::Closed | State::Reconnecting { .. }));
        self.el
            .disconnect
            .set_disabled(matches!(state, State::Closed | State::Closing));
    }

    fn request_frame(&mut self) {
        if self.frame_pending {
            return;
        }
        let (Some(window), Some(frame)) = (web_sys::window(), self.frame.as_ref()) else {
            return;
        };
        if window
            .request_animation_frame(frame.as_ref().unchecked_ref())
            .is_ok()
        {
            self.frame_pending = true;
        }
    }

    /// Draws everything that may have changed; called once per frame.
    fn draw(&mut self) {
        self.frame_pending = false;
        let started = time::now_ms();
        if let Err(error) = self.log_view.render(&self.log) {
            web_sys::console::error_1(&error.to_string().into());
        }
        let c = &self.counters;
        let (queued, queued_bytes) = self.connection.queued();
        dom::set_text(
            &self.el.sent,
            &format!("{} · {}", c.sent_messages, format::bytes(c.sent_bytes)),
        );
        dom::set_text(
            &self.el.received,
            &format!(
                "{} · {}",
                c.received_messages,
                format::bytes(c.received_bytes)
            ),
        );
        dom::set_text(
            &self.el.queued,
            &format!("{queued} · {}", format::bytes(queued_bytes as u64)),
        );
        dom::set_text(&self.el.refused, &c.refused.to_string());
        dom::set_text(&self.el.reconnects, &c.reconnects.to_string());
        let dropped = self.log.dropped();
        let count = if dropped > 0 {
            format!("{} entries ({dropped} older dropped)", self.log.len())
        } else {
            format!("{} entries", self.log.len())
        };
        dom::set_text(&self.el.log_count, &count);
        if self.chart_dirty {
            self.chart_dirty = false;
            let dash = "–".to_owned();
            let summary = self.rtt.summary();
            let show = |f: fn(&crate::stats::RttSummary) -> f64| {
                summary
                    .as_ref()
                    .map_or(dash.clone(), |s| format::millis(f(s)))
            };
            dom::set_text(&self.el.rtt_last, &show(|s| s.last));
            dom::set_text(&self.el.rtt_p50, &show(|s| s.p50));
            dom::set_text(&self.el.rtt_p99, &show(|s| s.p99));
            self.chart.render(&self.rtt);
        }
        let took = time::now_ms() - started;
        if took > self.max_frame_ms {
            self.max_frame_ms = took;
            dom::set_attr(&self.el.log, "data-max-frame-ms", &format::fixed(took, 1));
        }
    }
}
