//! What a run measures: echo latencies and connect times in HDR histograms,
//! message and byte counts, errors by kind; and the summaries computed from
//! them (percentiles, medians across rounds).

use std::collections::BTreeMap;

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

use crate::error::{ClientError, ErrorKind};

/// Longest time a histogram tracks exactly (100 s, in nanoseconds); longer
/// values are recorded as this. Far beyond any echo or connect timeout.
const HIGHEST_TRACKABLE_NS: u64 = 100_000_000_000;

/// Significant decimal digits the histograms keep: 3 means a value is known
/// to within 0.1%, at 2 × 2048 counters per power of two.
const SIGNIFICANT_DIGITS: u8 = 3;

fn histogram() -> Histogram<u64> {
    // Constant, valid bounds: cannot fail (checked by a unit test).
    Histogram::new_with_bounds(1, HIGHEST_TRACKABLE_NS, SIGNIFICANT_DIGITS)
        .expect("constant histogram bounds are valid")
}

/// The counters of one run. One per run, shared by every connection task
/// of the generator's single thread.
#[derive(Debug, Clone)]
pub struct Recorder {
    /// Echo round trips, nanoseconds.
    latency: Histogram<u64>,
    /// TCP connect plus upgrade, nanoseconds.
    connect: Histogram<u64>,
    /// Echoes received and verified in the measurement window.
    messages: u64,
    /// Their payload bytes.
    bytes: u64,
    /// Bytes written and read by the sockets in the measurement window.
    wire_sent: u64,
    wire_received: u64,
    /// Connections ended by an error, by kind.
    errors: BTreeMap<ErrorKind, u64>,
    /// The first error message of each kind, to say what went wrong.
    error_samples: BTreeMap<ErrorKind, String>,
}

impl Default for Recorder {
    fn default() -> Self {
        Self::new()
    }
}

impl Recorder {
    /// Empty counters.
    #[must_use]
    pub fn new() -> Self {
        Self {
            latency: histogram(),
            connect: histogram(),
            messages: 0,
            bytes: 0,
            wire_sent: 0,
            wire_received: 0,
            errors: BTreeMap::new(),
            error_samples: BTreeMap::new(),
        }
    }

    /// One verified echo of `bytes` payload bytes after `latency_ns`.
    #[inline]
    pub fn record_echo(&mut self, latency_ns: u64, bytes: usize) {
        self.latency.saturating_record(latency_ns.max(1));
        self.messages += 1;
        self.bytes += bytes as u64;
    }

    /// Bytes a connection wrote and read on the wire since it last
    /// reported.
    #[inline]
    pub fn record_wire(&mut self, sent: u64, received: u64) {
        self.wire_sent += sent;
        self.wire_received += received;
    }

    /// One successful connect and upgrade that took `ns`.
    pub fn record_connect(&mut self, ns: u64) {
        self.connect.saturating_record(ns.max(1));
    }

    /// One connection ended by `error`.
    pub fn record_error(&mut self, error: &ClientError) {
        let kind = error.kind();
        *self.errors.entry(kind).or_default() += 1;
        self.error_samples
            .entry(kind)
            .or_insert_with(|| error.to_string());
    }

    /// Forgets the echoes so far (the warm-up); connects and errors stay.
    pub fn reset_echoes(&mut self) {
        self.latency.reset();
        self.messages = 0;
        self.bytes = 0;
        self.wire_sent = 0;
        self.wire_received = 0;
    }

    /// Bytes written and read on the wire, as reported.
    #[must_use]
    pub fn wire(&self) -> (u64, u64) {
        (self.wire_sent, self.wire_received)
    }

    /// Echoes counted.
    #[must_use]
    pub fn messages(&self) -> u64 {
        self.messages
    }

    /// Payload bytes echoed.
    #[must_use]
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// Errors by kind.
    #[must_use]
    pub fn errors(&self) -> &BTreeMap<ErrorKind, u64> {
        &self.errors
    }

    /// The first error message of each kind.
    #[must_use]
    pub fn error_samples(&self) -> &BTreeMap<ErrorKind, String> {
        &self.error_samples
    }

    /// Connections that ended in error.
    #[must_use]
    pub fn error_total(&self) -> u64 {
        self.errors.values().sum()
    }

    /// Echo latency in microseconds; `None` before the first echo.
    #[must_use]
    pub fn latency_us(&self) -> Option<Percentiles> {
        Percentiles::of(&self.latency, 1e3)
    }

    /// Connect time in milliseconds; `None` before the first connection.
    #[must_use]
    pub fn connect_ms(&self) -> Option<Percentiles> {
        Percentiles::of(&self.connect, 1e6)
    }
}

/// A distribution's summary, in the unit the field's name says.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Percentiles {
    /// Values recorded.
    pub count: u64,
    /// Arithmetic mean.
    pub mean: f64,
    /// Median.
    pub p50: f64,
    /// 90th percentile.
    pub p90: f64,
    /// 99th percentile.
    pub p99: f64,
    /// 99.9th percentile.
    pub p999: f64,
    /// Largest value.
    pub max: f64,
}

impl Percentiles {
    /// Summarises `histogram` (in nanoseconds), dividing every value by
    /// `ns_per_unit`. `None` when it is empty.
    #[must_use]
    pub fn of(histogram: &Histogram<u64>, ns_per_unit: f64) -> Option<Self> {
        if histogram.is_empty() {
            return None;
        }
        let at = |q: f64| histogram.value_at_quantile(q) as f64 / ns_per_unit;
        Some(Self {
            count: histogram.len(),
            mean: histogram.mean() / ns_per_unit,
            p50: at(0.5),
            p90: at(0.9),
            p99: at(0.99),
            p999: at(0.999),
            max: histogram.max() as f64 / ns_per_unit,
        })
    }
}

/// The median of `values` (mean of the two middle ones for an even count);
/// `None` for none. NaNs sort last.
#[must_use]
pub fn median(values: impl IntoIterator<Item = f64>) -> Option<f64> {
    let mut values: Vec<f64> = values.into_iter().collect();
    if values.is_empty() {
        return None;
    }
    values.sort_by(f64::total_cmp);
    let mid = values.len() / 2;
    Some(if values.len() % 2 == 1 {
        values[mid]
    } else {
        (values[mid - 1] + values[mid]) / 2.0
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_of_a_uniform_distribution() {
        let mut recorder = Recorder::new();
        // 1..=1000 µs, one each.
        for us in 1..=1000_u64 {
            recorder.record_echo(us * 1000, 10);
        }
        let p = recorder.latency_us().expect("recorded");
        assert_eq!(p.count, 1000);
        let close = |got: f64, want: f64| (got - want).abs() <= want * 0.002 + 1e-9;
        assert!(close(p.p50, 500.0), "p50 {}", p.p50);
        assert!(close(p.p90, 900.0), "p90 {}", p.p90);
        assert!(close(p.p99, 990.0), "p99 {}", p.p99);
        assert!(close(p.p999, 999.0), "p999 {}", p.p999);
        assert!(close(p.max, 1000.0), "max {}", p.max);
        assert!(close(p.mean, 500.5), "mean {}", p.mean);
        assert_eq!((recorder.messages(), recorder.bytes()), (1000, 10_000));
    }

    #[test]
    fn warm_up_is_forgotten_but_connects_and_errors_stay() {
        let mut recorder = Recorder::new();
        recorder.record_connect(2_000_000);
        recorder.record_echo(5_000, 20);
        recorder.record_error(&ClientError::Timeout(std::time::Duration::from_secs(1)));
        recorder.record_error(&ClientError::Eof);
        recorder.reset_echoes();
        assert_eq!(recorder.messages(), 0);
        assert!(recorder.latency_us().is_none());
        let connect = recorder.connect_ms().expect("kept");
        assert!((connect.p50 - 2.0).abs() < 0.01);
        assert_eq!(recorder.error_total(), 2);
        assert_eq!(
            recorder.error_samples()[&ErrorKind::Timeout],
            "no echo within 1s"
        );
    }

    #[test]
    fn values_beyond_the_range_saturate_instead_of_failing() {
        let mut recorder = Recorder::new();
        recorder.record_echo(u64::MAX, 1);
        recorder.record_echo(0, 1);
        assert_eq!(recorder.latency_us().expect("recorded").count, 2);
    }

    #[test]
    fn medians() {
        assert_eq!(median([]), None);
        assert_eq!(median([3.0]), Some(3.0));
        assert_eq!(median([5.0, 1.0, 3.0]), Some(3.0));
        assert_eq!(median([4.0, 1.0, 3.0, 2.0]), Some(2.5));
    }
}
