//! The result of one run: what `--json` prints, what the comparison script
//! collects, and what `duplex-bench report` reads back.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use crate::error::ErrorKind;
use crate::payload::PayloadKind;
use crate::stats::Percentiles;

/// How the load was applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Mode {
    /// Each connection sends, waits for the echo, sends again.
    ClosedLoop,
    /// Messages are sent on a schedule whatever the echoes do; latency is
    /// measured from the scheduled send time.
    OpenLoop,
    /// Connections are opened and kept idle.
    Hold,
}

/// CPU use during the measurement window, percent of one core.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct CpuUse {
    /// The generator process (near 100: the generator is the bottleneck).
    pub generator_percent: Option<f64>,
    /// The server (`--server-pid`).
    pub server_percent: Option<f64>,
    /// The server's CPU time (user + system, from `/proc/PID/stat` at the
    /// window's start and end) per message counted, microseconds.
    #[serde(default)]
    pub server_us_per_message: Option<f64>,
}

/// Bytes the generator moved through its sockets in the window: TCP
/// payload, so WebSocket frames with their headers (not TCP/IP headers).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct WireBytes {
    /// Written, all connections.
    pub sent: u64,
    /// Read, all connections.
    pub received: u64,
    /// `sent` per message counted (echo: per echo; fan-out: per publish).
    pub sent_per_message: f64,
    /// `received` per message counted (echo: per echo; fan-out: per
    /// delivery).
    pub received_per_message: f64,
}

impl WireBytes {
    /// The totals, and per message over `messages`.
    #[must_use]
    pub fn new(sent: u64, received: u64, messages: u64) -> Self {
        let per = |bytes: u64| {
            if messages == 0 {
                0.0
            } else {
                bytes as f64 / messages as f64
            }
        };
        Self {
            sent,
            received,
            sent_per_message: per(sent),
            received_per_message: per(received),
        }
    }
}

/// Server memory around a hold run.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct MemoryUse {
    /// Server RSS before the first connection, KiB.
    pub server_rss_before_kib: u64,
    /// Server RSS with every connection open and idle, KiB.
    pub server_rss_after_kib: u64,
    /// (after − before) / connections held, KiB.
    pub per_connection_kib: f64,
}

/// One run's result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunRecord {
    /// `duplex-bench` and its version.
    pub tool: String,
    /// The `--label` given, naming the server in comparisons.
    pub label: Option<String>,
    /// How the load was applied.
    pub mode: Mode,
    /// The URL driven.
    pub url: String,
    /// Connections requested.
    pub connections: usize,
    /// Connections that completed the upgrade.
    pub connected: usize,
    /// Payload bytes per message.
    pub payload_bytes: usize,
    /// What the messages were (`--payload`).
    #[serde(default)]
    pub payload: PayloadKind,
    /// permessage-deflate on every connection (`--deflate`).
    #[serde(default)]
    pub deflate: bool,
    /// Open loop: the requested total rate, messages per second.
    pub target_rate: Option<f64>,
    /// Length of the measurement window, seconds.
    pub seconds: f64,
    /// Echoes received and verified in the window.
    pub messages: u64,
    /// `messages / seconds`.
    pub messages_per_sec: f64,
    /// Payload megabytes (10^6) echoed per second, one direction.
    pub megabytes_per_sec: f64,
    /// Echo round trip, microseconds.
    pub latency_us: Option<Percentiles>,
    /// TCP connect plus upgrade, milliseconds.
    pub connect_ms: Option<Percentiles>,
    /// Connections ended by an error, by kind.
    pub errors: BTreeMap<ErrorKind, u64>,
    /// The first error message of each kind.
    #[serde(default)]
    pub error_samples: BTreeMap<ErrorKind, String>,
    /// CPU use in the window.
    pub cpu: CpuUse,
    /// Hold runs with `--server-pid`: server memory.
    pub memory: Option<MemoryUse>,
    /// Echo runs: bytes on the wire in the window.
    #[serde(default)]
    pub wire: Option<WireBytes>,
}

impl RunRecord {
    /// Connections that ended in error.
    #[must_use]
    pub fn error_total(&self) -> u64 {
        self.errors.values().sum()
    }

    /// A human-readable summary, several lines.
    #[must_use]
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        let label = self
            .label
            .as_deref()
            .map(|l| format!(" [{l}]"))
            .unwrap_or_default();
        let mode = match self.mode {
            Mode::ClosedLoop => "closed-loop echo".to_owned(),
            Mode::OpenLoop => format!(
                "open-loop echo at {} msg/s",
                human_count(self.target_rate.unwrap_or_default())
            ),
            Mode::Hold => "hold idle connections".to_owned(),
        };
        let _ = writeln!(out, "{mode} against {}{label}", self.url);
        let window = if self.seconds < 1.0 {
            format!("{:.1} ms", self.seconds * 1e3)
        } else {
            format!("{:.2} s", self.seconds)
        };
        let kind = self.payload.label();
        let deflate = if self.deflate {
            ", permessage-deflate"
        } else {
            ""
        };
        let _ = writeln!(
            out,
            "  connections  {} of {} open, payload {} B {kind}{deflate}, {window} measured",
            self.connected, self.connections, self.payload_bytes
        );
        if self.mode != Mode::Hold {
            let _ = writeln!(
                out,
                "  throughput   {} msg/s, {:.2} MB/s ({} messages)",
                human_count(self.messages_per_sec),
                self.megabytes_per_sec,
                self.messages
            );
        }
        if let Some(w) = &self.wire {
            let _ = writeln!(
                out,
                "  wire         {:.0} B sent, {:.0} B received per message (frames and their headers)",
                w.sent_per_message, w.received_per_message
            );
        }
        if let Some(l) = &self.latency_us {
            let _ = writeln!(
                out,
                "  latency      p50 {}  p90 {}  p99 {}  p99.9 {}  max {}",
                human_us(l.p50),
                human_us(l.p90),
                human_us(l.p99),
                human_us(l.p999),
                human_us(l.max)
            );
        }
        if let Some(c) = &self.connect_ms {
            let _ = writeln!(
                out,
                "  connect      p50 {}  p99 {}  max {}",
                human_us(c.p50 * 1e3),
                human_us(c.p99 * 1e3),
                human_us(c.max * 1e3)
            );
        }
        if let Some(m) = &self.memory {
            let _ = writeln!(
                out,
                "  server RSS   {} KiB -> {} KiB: {:.1} KiB per connection",
                m.server_rss_before_kib, m.server_rss_after_kib, m.per_connection_kib
            );
        }
        let cpu = |p: Option<f64>| p.map_or_else(|| "-".to_owned(), |p| format!("{p:.0}%"));
        let per_message = self
            .cpu
            .server_us_per_message
            .map(|us| format!(" ({us:.2} µs per message)"))
            .unwrap_or_default();
        let _ = writeln!(
            out,
            "  cpu          generator {}  server {}{per_message}",
            cpu(self.cpu.generator_percent),
            cpu(self.cpu.server_percent)
        );
        if self.errors.is_empty() {
            let _ = writeln!(out, "  errors       none");
        } else {
            let list: Vec<String> = self
                .errors
                .iter()
                .map(|(kind, n)| format!("{} {n}", kind_name(*kind)))
                .collect();
            let _ = writeln!(out, "  errors       {}", list.join(", "));
            for (kind, sample) in &self.error_samples {
                let _ = writeln!(out, "    first {}: {sample}", kind_name(*kind));
            }
        }
        out
    }
}

/// The name an error kind has in JSON.
#[must_use]
pub fn kind_name(kind: ErrorKind) -> String {
    serde_json::to_value(kind)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_else(|| format!("{kind:?}"))
}

/// 65_800.0 → "65.8k", 1_250_000.0 → "1.25M", 950.0 → "950".
#[must_use]
pub fn human_count(value: f64) -> String {
    if value >= 1e6 {
        format!("{:.2}M", value / 1e6)
    } else if value >= 1e3 {
        format!("{:.1}k", value / 1e3)
    } else {
        format!("{value:.0}")
    }
}

/// Microseconds as "85 µs", "1.52 ms" or "2.10 s".
#[must_use]
pub fn human_us(us: f64) -> String {
    if us >= 1e6 {
        format!("{:.2} s", us / 1e6)
    } else if us >= 1e3 {
        format!("{:.2} ms", us / 1e3)
    } else {
        format!("{us:.0} µs")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn human_numbers() {
        assert_eq!(human_count(65_812.0), "65.8k");
        assert_eq!(human_count(1_250_000.0), "1.25M");
        assert_eq!(human_count(950.4), "950");
        assert_eq!(human_us(85.2), "85 µs");
        assert_eq!(human_us(1520.0), "1.52 ms");
        assert_eq!(human_us(2_100_000.0), "2.10 s");
    }

    #[test]
    fn kind_names_match_json() {
        assert_eq!(kind_name(ErrorKind::Closed), "closed");
    }
}
