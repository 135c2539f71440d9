//! The RTT chart: the latest samples as a line on a canvas, with the scale
//! and the p50 and p99 marks. Geometry comes from [`crate::chart`].

use wasm_bindgen::JsCast;
use web_sys::{CanvasRenderingContext2d, Document, HtmlCanvasElement};

use super::dom::{self, UiError};
use crate::chart;
use crate::format;
use crate::stats::RttStats;

/// Samples across the chart: two minutes at one probe a second.
const SLOTS: usize = 120;
/// Colours, matching style.css.
const LINE: &str = "#2f7df6";
const GRID: &str = "rgba(127,127,127,0.35)";
const P99: &str = "#e0793a";
const TEXT: &str = "#8a8f98";

/// The canvas and its 2D context.
pub(crate) struct ChartView {
    canvas: HtmlCanvasElement,
    context: CanvasRenderingContext2d,
}

impl ChartView {
    pub(crate) fn new(document: &Document) -> Result<Self, UiError> {
        let canvas: HtmlCanvasElement = dom::by_id(document, "rtt-chart")?;
        let context = canvas
            .get_context("2d")?
            .ok_or(UiError::Js("no 2D canvas context".into()))?
            .dyn_into::<CanvasRenderingContext2d>()
            .map_err(|_| UiError::WrongType("rtt-chart", "2D context"))?;
        Ok(Self { canvas, context })
    }

    /// Redraws the chart from `stats`.
    pub(crate) fn render(&self, stats: &RttStats) {
        // Match the canvas to its laid-out size, in device pixels.
        let ratio = web_sys::window().map_or(1.0, |w| w.device_pixel_ratio());
        let css_width = f64::from(self.canvas.client_width());
        let css_height = f64::from(self.canvas.client_height());
        let (width, height) = ((css_width * ratio) as u32, (css_height * ratio) as u32);
        if width == 0 || height == 0 {
            return;
        }
        if self.canvas.width() != width || self.canvas.height() != height {
            self.canvas.set_width(width);
            self.canvas.set_height(height);
        }
        let cx = &self.context;
        let _ = cx.set_transform(ratio, 0.0, 0.0, ratio, 0.0, 0.0);
        cx.clear_rect(0.0, 0.0, css_width, css_height);

        let samples: Vec<f64> = stats.samples().collect();
        let recent = &samples[samples.len().saturating_sub(SLOTS)..];
        let peak = recent.iter().copied().fold(0.0, f64::max);
        let y_max = chart::nice_ceiling(peak * 1.1);
        let (top, bottom) = (14.0, css_height - 2.0);
        let plot_height = bottom - top;

        // Grid: top and middle lines with their values.
        cx.set_line_width(1.0);
        cx.set_stroke_style_str(GRID);
        cx.set_fill_style_str(TEXT);
        cx.set_font("11px system-ui, sans-serif");
        for fraction in [1.0, 0.5] {
            let y = bottom - fraction * plot_height;
            cx.begin_path();
            cx.move_to(0.0, y.round() + 0.5);
            cx.line_to(css_width, y.round() + 0.5);
            cx.stroke();
            let _ = cx.fill_text(&format::millis(y_max * fraction), 4.0, y - 3.0);
        }
        if recent.is_empty() {
            let _ = cx.fill_text("waiting for RTT probes…", 4.0, bottom - 6.0);
            return;
        }

        // p99 as a dashed line.
        if let Some(p99) = stats.percentile(99.0) {
            let y = bottom - (p99 / y_max).min(1.0) * plot_height;
            cx.set_stroke_style_str(P99);
            let dash = js_sys::Array::of2(&4.0.into(), &3.0.into());
            let _ = cx.set_line_dash(&dash);
            cx.begin_path();
            cx.move_to(0.0, y);
            cx.line_to(css_width, y);
            cx.stroke();
            let _ = cx.set_line_dash(&js_sys::Array::new());
        }

        // The samples.
        let points = chart::points(recent, SLOTS, css_width, plot_height, y_max);
        cx.set_stroke_style_str(LINE);
        cx.set_line_width(1.5);
        cx.begin_path();
        for (i, (x, y)) in points.iter().enumerate() {
            if i == 0 {
                cx.move_to(*x, top + y);
            } else {
                cx.line_to(*x, top + y);
            }
        }
        cx.stroke();
    }
}
