//! Round-trip times and traffic counters. Plain Rust.
//!
//! RTT percentiles are computed over a sliding window of the latest
//! samples, so they describe the connection now rather than since the page
//! loaded.

use std::collections::VecDeque;

/// Samples kept for the percentiles and the chart: at one probe a second,
/// the last five minutes.
pub const RTT_WINDOW: usize = 300;

/// Latest round-trip times, in milliseconds.
#[derive(Debug, Clone)]
pub struct RttStats {
    window: VecDeque<f64>,
    capacity: usize,
    /// Samples recorded since creation.
    total: u64,
}

/// A summary of the window.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RttSummary {
    /// The latest sample.
    pub last: f64,
    /// Median of the window.
    pub p50: f64,
    /// 99th percentile of the window.
    pub p99: f64,
    /// Samples in the window.
    pub samples: usize,
}

impl Default for RttStats {
    fn default() -> Self {
        Self::new(RTT_WINDOW)
    }
}

impl RttStats {
    /// Keeps the latest `capacity` samples (at least one).
    pub fn new(capacity: usize) -> Self {
        let capacity = capacity.max(1);
        Self {
            window: VecDeque::with_capacity(capacity),
            capacity,
            total: 0,
        }
    }

    /// Adds a sample; negative or non-finite values are ignored.
    pub fn record(&mut self, rtt_ms: f64) {
        if !rtt_ms.is_finite() || rtt_ms < 0.0 {
            return;
        }
        if self.window.len() == self.capacity {
            self.window.pop_front();
        }
        self.window.push_back(rtt_ms);
        self.total += 1;
    }

    /// The samples in the window, oldest first.
    pub fn samples(&self) -> impl ExactSizeIterator<Item = f64> + '_ {
        self.window.iter().copied()
    }

    /// Samples recorded since creation.
    pub fn total(&self) -> u64 {
        self.total
    }

    /// The `p`-th percentile of the window (nearest rank), `p` in 0..=100.
    pub fn percentile(&self, p: f64) -> Option<f64> {
        let mut sorted: Vec<f64> = self.window.iter().copied().collect();
        sorted.sort_by(f64::total_cmp);
        nearest_rank(&sorted, p)
    }

    /// Last, p50 and p99, or `None` before the first sample.
    pub fn summary(&self) -> Option<RttSummary> {
        let last = *self.window.back()?;
        let mut sorted: Vec<f64> = self.window.iter().copied().collect();
        sorted.sort_by(f64::total_cmp);
        Some(RttSummary {
            last,
            p50: nearest_rank(&sorted, 50.0)?,
            p99: nearest_rank(&sorted, 99.0)?,
            samples: sorted.len(),
        })
    }
}

/// Nearest-rank percentile of sorted data: the smallest value with at least
/// `p` percent of the data at or below it.
fn nearest_rank(sorted: &[f64], p: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let p = p.clamp(0.0, 100.0);
    let rank = (p / 100.0 * sorted.len() as f64).ceil() as usize;
    sorted.get(rank.saturating_sub(1)).copied()
}

/// Messages and bytes in each direction, for the page's counters. Probes are
/// counted apart, so the counters show the person's own traffic.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counters {
    /// Data messages written to the socket.
    pub sent_messages: u64,
    /// Their payload bytes.
    pub sent_bytes: u64,
    /// Data messages received.
    pub received_messages: u64,
    /// Their payload bytes.
    pub received_bytes: u64,
    /// RTT probes sent.
    pub probes: u64,
    /// Times the connection opened again after it was lost.
    pub reconnects: u64,
    /// Messages the outbox refused.
    pub refused: u64,
}

impl Counters {
    /// Counts one message written.
    pub fn sent(&mut self, bytes: usize) {
        self.sent_messages += 1;
        self.sent_bytes += bytes as u64;
    }

    /// Counts one message received.
    pub fn received(&mut self, bytes: usize) {
        self.received_messages += 1;
        self.received_bytes += bytes as u64;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_use_nearest_rank() {
        let mut stats = RttStats::new(1000);
        for ms in 1..=100 {
            stats.record(f64::from(ms));
        }
        assert_eq!(stats.percentile(50.0), Some(50.0));
        assert_eq!(stats.percentile(99.0), Some(99.0));
        assert_eq!(stats.percentile(100.0), Some(100.0));
        assert_eq!(stats.percentile(0.0), Some(1.0));
        let summary = stats.summary().expect("samples");
        assert_eq!((summary.last, summary.samples), (100.0, 100));
    }

    #[test]
    fn one_slow_sample_shows_in_p99_not_p50() {
        let mut stats = RttStats::new(100);
        for _ in 0..99 {
            stats.record(2.0);
        }
        stats.record(250.0);
        let summary = stats.summary().expect("samples");
        assert_eq!(summary.p50, 2.0);
        assert_eq!(summary.p99, 2.0);
        stats.record(240.0);
        let summary = stats.summary().expect("samples");
        assert_eq!(summary.p99, 240.0);
        assert_eq!(summary.last, 240.0);
    }

    #[test]
    fn the_window_slides_and_bad_samples_are_ignored() {
        let mut stats = RttStats::new(3);
        assert_eq!(stats.summary(), None);
        for ms in [10.0, f64::NAN, -1.0, 20.0, 30.0, 40.0] {
            stats.record(ms);
        }
        assert_eq!(stats.samples().collect::<Vec<_>>(), [20.0, 30.0, 40.0]);
        assert_eq!(stats.total(), 4);
        assert_eq!(stats.percentile(50.0), Some(30.0));
    }

    #[test]
    fn counters_add_up() {
        let mut counters = Counters::default();
        counters.sent(5);
        counters.sent(7);
        counters.received(12);
        assert_eq!((counters.sent_messages, counters.sent_bytes), (2, 12));
        assert_eq!(
            (counters.received_messages, counters.received_bytes),
            (1, 12)
        );
    }
}
