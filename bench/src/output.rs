//! What the user sees: the options shared by every load command (label,
//! JSON, server PID, progress) and the progress bar on stderr.

use std::io::IsTerminal;
use std::time::Duration;

use clap::Args;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// Output options of `echo` and `hold`.
#[derive(Debug, Clone, Default, Args)]
pub struct OutputOptions {
    /// Name of the server under test, stored in the result; the report's
    /// column.
    #[arg(long)]
    pub label: Option<String>,

    /// Print the result as one JSON object on stdout instead of text (no
    /// progress bar).
    #[arg(long)]
    pub json: bool,

    /// PID of the server: its CPU use in the window is measured from /proc,
    /// and in `hold` its memory per connection.
    #[arg(long, value_name = "PID")]
    pub server_pid: Option<u32>,

    /// No progress bar. It is also off when stderr is not a terminal.
    #[arg(long)]
    pub no_progress: bool,
}

/// A progress bar on stderr, or nothing.
#[derive(Debug, Clone, Default)]
pub struct Progress {
    bar: Option<ProgressBar>,
}

impl Progress {
    /// A bar if `options` and the terminal allow one.
    #[must_use]
    pub fn new(options: &OutputOptions) -> Self {
        if options.json || options.no_progress || !std::io::stderr().is_terminal() {
            return Self::hidden();
        }
        let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr_with_hz(4));
        bar.enable_steady_tick(Duration::from_millis(250));
        Self { bar: Some(bar) }
    }

    /// No bar at all.
    #[must_use]
    pub fn hidden() -> Self {
        Self { bar: None }
    }

    /// A spinner with a message: phases of unknown length.
    pub fn spin(&self, message: String) {
        if let Some(bar) = &self.bar {
            bar.set_style(style("{spinner} {msg}"));
            bar.unset_length();
            bar.set_message(message);
        }
    }

    /// A bar of `length` steps (milliseconds or messages) named `unit`.
    pub fn bar(&self, length: u64, message: String) {
        if let Some(bar) = &self.bar {
            bar.set_style(style(
                "{spinner} [{elapsed_precise}] {wide_bar} {percent:>3}% {msg}",
            ));
            bar.set_length(length);
            bar.set_position(0);
            bar.set_message(message);
        }
    }

    /// Moves the bar and updates its message.
    pub fn update(&self, position: u64, message: String) {
        if let Some(bar) = &self.bar {
            bar.set_position(position);
            bar.set_message(message);
        }
    }

    /// Removes the bar, so the result prints on a clean line.
    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

fn style(template: &str) -> ProgressStyle {
    ProgressStyle::with_template(template).unwrap_or_else(|_| ProgressStyle::default_bar())
}
