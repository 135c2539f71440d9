//! The message log on the page, virtualised: a scroll container whose
//! spacer is as tall as every row, and a small pool of row elements moved
//! to the viewport and refilled. Drawing costs the same with 20 rows or
//! 20,000. Follows the newest entry while scrolled to the bottom.

use web_sys::{Document, Element, HtmlElement};

use super::dom::{self, UiError};
use crate::format;
use crate::message_log::{Direction, Entry, MessageLog, visible_rows};

/// Row height in CSS pixels; must match `--row-height` in style.css.
pub(crate) const ROW_HEIGHT: f64 = 26.0;
/// Rows drawn beyond each edge of the viewport.
const OVERSCAN: usize = 8;

/// The elements of one drawn row.
struct Row {
    root: Element,
    time: Element,
    direction: Element,
    kind: Element,
    size: Element,
    content: Element,
}

impl Row {
    fn new(document: &Document, parent: &Element) -> Result<Self, UiError> {
        let root = dom::create(document, "div", "entry")?;
        root.set_attribute("role", "listitem")?;
        let cell = |class: &str| -> Result<Element, UiError> {
            let element = dom::create(document, "span", class)?;
            root.append_child(&element)?;
            Ok(element)
        };
        let row = Self {
            time: cell("time")?,
            direction: cell("dir")?,
            kind: cell("kind")?,
            size: cell("size")?,
            content: cell("content")?,
            root,
        };
        parent.append_child(&row.root)?;
        Ok(row)
    }

    fn fill(&self, entry: &Entry) {
        let (arrow, label, class) = match entry.direction {
            Direction::Sent => ("↑", "sent", "entry out"),
            Direction::Received => ("↓", "received", "entry in"),
            Direction::Event => ("•", "event", "entry ev"),
        };
        dom::set_attr(&self.root, "class", class);
        dom::set_attr(&self.root, "data-kind", entry.body.kind());
        dom::set_text(&self.time, &format::clock(entry.time_ms));
        dom::set_text(&self.direction, arrow);
        dom::set_attr(&self.direction, "aria-label", label);
        dom::set_text(&self.kind, entry.body.kind());
        dom::set_text(&self.size, &entry.body.size());
        let content = entry.body.content();
        dom::set_attr(&self.content, "title", &content);
        dom::set_text(&self.content, &content);
        if self.root.has_attribute("hidden") {
            let _ = self.root.remove_attribute("hidden");
        }
    }

    fn hide(&self) {
        dom::set_attr(&self.root, "hidden", "");
    }
}

/// The virtualised log.
pub(crate) struct LogView {
    document: Document,
    /// The scroll container (`#log`).
    viewport: HtmlElement,
    /// As tall as all rows, so the scrollbar is right.
    spacer: HtmlElement,
    /// Holds the drawn rows; moved to the first drawn row's position.
    window: HtmlElement,
    pool: Vec<Row>,
    /// Keep the newest entry in view (true while scrolled to the bottom).
    follow: bool,
}

impl LogView {
    pub(crate) fn new(document: &Document) -> Result<Self, UiError> {
        Ok(Self {
            document: document.clone(),
            viewport: dom::by_id(document, "log")?,
            spacer: dom::by_id(document, "log-spacer")?,
            window: dom::by_id(document, "log-rows")?,
            pool: Vec::new(),
            follow: true,
        })
    }

    /// The scroll container, for its scroll listener.
    pub(crate) fn viewport(&self) -> &HtmlElement {
        &self.viewport
    }

    /// After a scroll: follow again only when at the bottom.
    pub(crate) fn on_scroll(&mut self) {
        let bottom = f64::from(self.viewport.scroll_top() + self.viewport.client_height());
        self.follow = bottom >= f64::from(self.viewport.scroll_height()) - ROW_HEIGHT;
    }

    /// Draws the rows in view.
    pub(crate) fn render(&mut self, log: &MessageLog) -> Result<(), UiError> {
        let len = log.len();
        let total = len as f64 * ROW_HEIGHT;
        // Setting the same height again still costs a style recalculation.
        let height = format::fixed(total, 0) + "px";
        if self
            .spacer
            .style()
            .get_property_value("height")
            .ok()
            .as_deref()
            != Some(height.as_str())
        {
            self.spacer.style().set_property("height", &height)?;
        }
        let viewport_height = f64::from(self.viewport.client_height());
        if self.follow {
            let bottom = (total - viewport_height).max(0.0);
            // scroll_top is an i32 of CSS pixels; a log this tall is far
            // below that limit at 20,000 rows.
            self.viewport.set_scroll_top(bottom.ceil() as i32);
        }
        let scroll_top = f64::from(self.viewport.scroll_top());
        let rows = visible_rows(scroll_top, viewport_height, ROW_HEIGHT, len, OVERSCAN);
        while self.pool.len() < rows.len() {
            self.pool.push(Row::new(&self.document, &self.window)?);
        }
        self.window.style().set_property(
            "transform",
            &format!(
                "translateY({}px)",
                format::fixed(rows.start as f64 * ROW_HEIGHT, 0)
            ),
        )?;
        let mut drawn = 0;
        for (row, entry) in self.pool.iter().zip(log.range(rows)) {
            row.fill(entry);
            drawn += 1;
        }
        for row in &self.pool[drawn..] {
            row.hide();
        }
        Ok(())
    }
}
