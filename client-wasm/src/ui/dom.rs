//! Small DOM helpers for the page: typed element lookup, event listeners
//! that remove themselves when dropped, text and attribute updates.

use wasm_bindgen::JsCast;
use web_sys::{Document, Element};

use crate::error::js_error_text;

/// Why the page could not be set up.
#[derive(Debug, thiserror::Error)]
pub(crate) enum UiError {
    /// Not running in a window with a document.
    #[error("no window or document")]
    NoDocument,
    /// `index.html` lacks an element the page needs.
    #[error("index.html has no element #{0}")]
    Missing(&'static str),
    /// The element has another type than expected.
    #[error("#{0} is not a {1}")]
    WrongType(&'static str, &'static str),
    /// A browser call failed.
    #[error("{0}")]
    Js(String),
}

impl From<wasm_bindgen::JsValue> for UiError {
    fn from(value: wasm_bindgen::JsValue) -> Self {
        Self::Js(js_error_text(&value))
    }
}

/// The document.
pub(crate) fn document() -> Result<Document, UiError> {
    web_sys::window()
        .and_then(|w| w.document())
        .ok_or(UiError::NoDocument)
}

/// `#id` as a `T`.
pub(crate) fn by_id<T: JsCast>(document: &Document, id: &'static str) -> Result<T, UiError> {
    document
        .get_element_by_id(id)
        .ok_or(UiError::Missing(id))?
        .dyn_into::<T>()
        .map_err(|_| UiError::WrongType(id, std::any::type_name::<T>()))
}

/// A new `<tag class="class">`.
pub(crate) fn create(document: &Document, tag: &str, class: &str) -> Result<Element, UiError> {
    let element = document.create_element(tag)?;
    element.set_class_name(class);
    Ok(element)
}

/// Sets the text of `element` if it changed (writes to the DOM are what
/// costs).
pub(crate) fn set_text(element: &Element, text: &str) {
    if element.text_content().as_deref() != Some(text) {
        element.set_text_content(Some(text));
    }
}

/// Sets an attribute if it changed.
pub(crate) fn set_attr(element: &Element, name: &str, value: &str) {
    if element.get_attribute(name).as_deref() != Some(value) {
        // Only fails for invalid attribute names, which ours are not.
        let _ = element.set_attribute(name, value);
    }
}

pub(crate) use crate::listener::Listener;
