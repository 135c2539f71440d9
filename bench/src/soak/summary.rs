//! What a soak run found: its figures (`summary.json`) and the verdict, a
//! list of checks that each pass or fail with the numbers that decided it.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use crate::report::group_thousands;
use crate::soak::sample::Sample;
use crate::stats::Percentiles;

/// One check of the verdict.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Check {
    /// What it checks, e.g. "memory flat".
    pub name: String,
    /// Whether it passed.
    pub passed: bool,
    /// The figures that decided it.
    pub detail: String,
}

/// The figures of a whole run, written to `summary.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    /// The generator's name and version.
    pub tool: String,
    /// `--describe`: the run's circumstances (date, commit, machine).
    pub description: Option<String>,
    /// The server's base URL.
    pub url: String,
    /// Connections asked for.
    pub connections: usize,
    /// Of them, on `/echo`.
    pub echo_connections: usize,
    /// Of them, members of rooms on `/ws` (the publishers included).
    pub room_connections: usize,
    /// Rooms, one publisher each.
    pub rooms: usize,
    /// Echoes per second per echo connection.
    pub echo_rate: f64,
    /// Payload bytes of an echo.
    pub echo_size: usize,
    /// Publishes per second per room.
    pub publish_rate: f64,
    /// Payload bytes of a publish.
    pub publish_size: usize,
    /// Seconds of load.
    pub duration_s: f64,
    /// Seconds of load before the memory baseline.
    pub warmup_s: f64,
    /// Seconds between samples.
    pub sample_interval_s: f64,
    /// Seconds to open (and join) every connection.
    pub connect_s: f64,
    /// Seconds from the end of the load until every delivery due had come
    /// (or the drain gave up): how far behind the deliveries were. Absent
    /// from summaries written before it was measured.
    #[serde(default)]
    pub drain_s: f64,
    /// The server's RSS before the first connection, KiB.
    pub rss_before_kib: u64,
    /// Its open descriptors then.
    pub fds_before: u64,
    /// RSS at the first sample after the warm-up: the baseline, KiB.
    pub rss_baseline_kib: Option<u64>,
    /// RSS at the last sample, KiB.
    pub rss_end_kib: Option<u64>,
    /// Highest RSS sampled, KiB.
    pub rss_max_kib: Option<u64>,
    /// `(end - baseline) / baseline`, percent.
    pub rss_growth_percent: Option<f64>,
    /// The bound on it (`--max-rss-growth`).
    pub max_rss_growth_percent: f64,
    /// Fewest and most open descriptors sampled.
    pub fds_min: Option<u64>,
    /// See `fds_min`.
    pub fds_max: Option<u64>,
    /// Open descriptors once every connection had closed.
    pub fds_after_close: u64,
    /// RSS then, KiB (the allocator may keep freed memory).
    pub rss_after_close_kib: u64,
    /// Echoes sent.
    pub echoes_sent: u64,
    /// Echoes received and found byte for byte equal to what was sent.
    pub echoes_received: u64,
    /// Publishes sent.
    pub published: u64,
    /// Deliveries due: each publish times the members of its room.
    pub deliveries_expected: u64,
    /// Deliveries received in order and byte for byte as published.
    pub delivered: u64,
    /// Deliveries that never came (gaps, or not there after the drain),
    /// to members that stayed connected.
    pub lost: u64,
    /// Deliveries that came after a later one.
    pub reordered: u64,
    /// Messages that have no place in the run (`missed`, `error`, or data
    /// on an echo connection between echoes).
    pub unexpected: u64,
    /// The first unexpected message, as it came.
    pub unexpected_sample: Option<String>,
    /// Connections that failed (connect, join, timeout, wrong echo, closed
    /// by the server), by kind.
    pub connection_errors: BTreeMap<String, u64>,
    /// The first message of each kind.
    pub connection_error_samples: BTreeMap<String, String>,
    /// Everything that went wrong: connection errors, lost, reordered and
    /// unexpected.
    pub errors: u64,
    /// Echo round trips over the whole load, ms.
    pub echo_latency_ms: Option<Percentiles>,
    /// Delivery latencies over the whole load, ms.
    pub delivery_latency_ms: Option<Percentiles>,
    /// The checks, in order.
    pub checks: Vec<Check>,
    /// Every check passed.
    pub passed: bool,
}

/// The sample the memory baseline is read from: the first at or after the
/// warm-up.
#[must_use]
pub fn baseline(samples: &[Sample], warmup_s: f64) -> Option<&Sample> {
    // A tenth of a second of slack: samples are taken on a timer.
    samples.iter().find(|sample| sample.t_s + 0.1 >= warmup_s)
}

/// `KiB` as "61.3 MiB".
#[must_use]
pub fn mib(kib: u64) -> String {
    format!("{:.1} MiB", kib as f64 / 1024.0)
}

/// Seconds as "90 s" or "10 min" / "1.5 min".
#[must_use]
pub fn minutes(seconds: f64) -> String {
    if seconds < 120.0 {
        format!("{seconds:.0} s")
    } else if (seconds / 60.0).fract().abs() < 0.05 {
        format!("{:.0} min", seconds / 60.0)
    } else {
        format!("{:.1} min", seconds / 60.0)
    }
}

/// What the verdict is decided on, besides the samples.
#[derive(Debug, Clone, Copy)]
pub struct Bounds {
    /// Connections that should be open in every sample.
    pub connections: usize,
    /// Seconds of load before the memory baseline.
    pub warmup_s: f64,
    /// Most RSS growth allowed from the baseline to the end, percent.
    pub max_rss_growth_percent: f64,
    /// The server's descriptors before the first connection.
    pub fds_before: u64,
    /// Its descriptors after the last connection closed.
    pub fds_after_close: u64,
    /// Everything that went wrong.
    pub errors: u64,
}

/// The checks of a run: no errors, every connection held, memory flat
/// after the warm-up, descriptors constant while loaded and released after.
#[must_use]
pub fn evaluate(samples: &[Sample], bounds: &Bounds) -> Vec<Check> {
    let check = |name: &str, passed: bool, detail: String| Check {
        name: name.into(),
        passed,
        detail,
    };
    let mut checks = vec![check(
        "no errors",
        bounds.errors == 0,
        format!("{} errors", group_thousands(bounds.errors as usize)),
    )];

    let fewest_open = samples.iter().map(|s| s.open_connections).min();
    checks.push(check(
        "connections held",
        fewest_open == Some(bounds.connections),
        match fewest_open {
            Some(open) => format!(
                "{} of {} open in every sample at least",
                group_thousands(open),
                group_thousands(bounds.connections)
            ),
            None => "no sample".into(),
        },
    ));

    let memory = match (baseline(samples, bounds.warmup_s), samples.last()) {
        (Some(first), Some(last)) if first.server_rss_kib > 0 => {
            let growth = growth_percent(first.server_rss_kib, last.server_rss_kib);
            check(
                "memory flat",
                growth < bounds.max_rss_growth_percent,
                format!(
                    "RSS {} at {} -> {} at {} ({growth:+.1}%, bound {:.0}%)",
                    mib(first.server_rss_kib),
                    minutes(first.t_s),
                    mib(last.server_rss_kib),
                    minutes(last.t_s),
                    bounds.max_rss_growth_percent
                ),
            )
        }
        _ => check(
            "memory flat",
            false,
            format!("no sample after the {} warm-up", minutes(bounds.warmup_s)),
        ),
    };
    checks.push(memory);

    let fds = samples.iter().map(|s| s.server_fds);
    let (low, high) = (fds.clone().min(), fds.max());
    checks.push(match (low, high) {
        (Some(low), Some(high)) => check(
            "descriptors constant",
            low == high,
            if low == high {
                format!("{} in every sample", group_thousands(low as usize))
            } else {
                format!(
                    "from {} to {}",
                    group_thousands(low as usize),
                    group_thousands(high as usize)
                )
            },
        ),
        _ => check("descriptors constant", false, "no sample".into()),
    });

    checks.push(check(
        "descriptors released",
        bounds.fds_after_close == bounds.fds_before,
        format!(
            "{} after the connections closed, {} before they opened",
            bounds.fds_after_close, bounds.fds_before
        ),
    ));
    checks
}

/// Growth from `from` to `to`, percent of `from`.
#[must_use]
pub fn growth_percent(from: u64, to: u64) -> f64 {
    (to as f64 - from as f64) / from.max(1) as f64 * 100.0
}

impl Summary {
    /// The figures and the verdict as lines of text.
    #[must_use]
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        let count = |n: u64| group_thousands(n as usize);
        let _ = writeln!(
            out,
            "soak: {} connections ({} echo at {}/s, {} in {} rooms at {} publishes/s) for {}",
            count(self.connections as u64),
            count(self.echo_connections as u64),
            self.echo_rate,
            count(self.room_connections as u64),
            self.rooms,
            self.publish_rate,
            minutes(self.duration_s)
        );
        let _ = writeln!(
            out,
            "  opened in {:.1} s; server RSS {} empty, baseline {}, end {}, max {}; after close {}",
            self.connect_s,
            mib(self.rss_before_kib),
            self.rss_baseline_kib.map_or("-".into(), mib),
            self.rss_end_kib.map_or("-".into(), mib),
            self.rss_max_kib.map_or("-".into(), mib),
            mib(self.rss_after_close_kib),
        );
        let _ = writeln!(
            out,
            "  descriptors {} empty, {}-{} loaded, {} after close",
            self.fds_before,
            self.fds_min.map_or("-".into(), count),
            self.fds_max.map_or("-".into(), count),
            self.fds_after_close
        );
        let p99 = |p: &Option<Percentiles>| p.map_or("-".into(), |p| format!("{:.2} ms", p.p99));
        let _ = writeln!(
            out,
            "  echoes {} sent, {} checked (p99 {}); publishes {}, deliveries {} of {} (p99 {}; drained in {:.1} s)",
            count(self.echoes_sent),
            count(self.echoes_received),
            p99(&self.echo_latency_ms),
            count(self.published),
            count(self.delivered),
            count(self.deliveries_expected),
            p99(&self.delivery_latency_ms),
            self.drain_s,
        );
        let _ = writeln!(
            out,
            "  errors {}: lost {}, reordered {}, unexpected {}, connections {}",
            count(self.errors),
            self.lost,
            self.reordered,
            self.unexpected,
            self.connection_errors.values().sum::<u64>()
        );
        for (kind, sample) in &self.connection_error_samples {
            let _ = writeln!(out, "    first {kind}: {sample}");
        }
        if let Some(sample) = &self.unexpected_sample {
            let _ = writeln!(out, "    first unexpected: {sample}");
        }
        for check in &self.checks {
            let mark = if check.passed { "ok  " } else { "FAIL" };
            let _ = writeln!(out, "  {mark} {}: {}", check.name, check.detail);
        }
        let _ = writeln!(
            out,
            "verdict: {}",
            if self.passed { "PASS" } else { "FAIL" }
        );
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::soak::sample::tests::sample;

    fn bounds() -> Bounds {
        Bounds {
            connections: 100,
            warmup_s: 20.0,
            max_rss_growth_percent: 10.0,
            fds_before: 9,
            fds_after_close: 9,
            errors: 0,
        }
    }

    fn failed(checks: &[Check]) -> Vec<&str> {
        checks
            .iter()
            .filter(|c| !c.passed)
            .map(|c| c.name.as_str())
            .collect()
    }

    /// Memory that climbs during the warm-up and then stays.
    fn flat() -> Vec<Sample> {
        vec![
            sample(0.0, 30_000, 109),
            sample(10.0, 50_000, 109),
            sample(20.0, 60_000, 109),
            sample(30.0, 61_000, 109),
            sample(40.0, 60_500, 109),
        ]
    }

    #[test]
    fn a_flat_run_passes_every_check() {
        let checks = evaluate(&flat(), &bounds());
        assert_eq!(failed(&checks), Vec::<&str>::new(), "{checks:?}");
        let memory = &checks[2];
        assert_eq!(
            memory.detail,
            "RSS 58.6 MiB at 20 s -> 59.1 MiB at 40 s (+0.8%, bound 10%)"
        );
    }

    #[test]
    fn growth_after_the_warm_up_fails_but_growth_during_it_does_not() {
        let mut samples = flat();
        samples.push(sample(50.0, 66_000, 109));
        assert_eq!(failed(&evaluate(&samples, &bounds())), ["memory flat"]);
        // The same climb inside a longer warm-up is not counted.
        let longer = Bounds {
            warmup_s: 40.0,
            ..bounds()
        };
        assert!(failed(&evaluate(&samples, &longer)).is_empty());
        let too_long = Bounds {
            warmup_s: 60.0,
            ..bounds()
        };
        assert_eq!(failed(&evaluate(&samples, &too_long)), ["memory flat"]);
    }

    #[test]
    fn errors_drops_and_descriptor_changes_each_fail_their_check() {
        let errors = Bounds {
            errors: 1,
            ..bounds()
        };
        assert_eq!(failed(&evaluate(&flat(), &errors)), ["no errors"]);

        let mut dropped = flat();
        dropped[3].open_connections = 99;
        assert_eq!(failed(&evaluate(&dropped, &bounds())), ["connections held"]);

        let mut leak = flat();
        leak[4].server_fds = 110;
        let checks = evaluate(&leak, &bounds());
        assert_eq!(failed(&checks), ["descriptors constant"]);
        assert_eq!(checks[3].detail, "from 109 to 110");

        let kept = Bounds {
            fds_after_close: 10,
            ..bounds()
        };
        assert_eq!(failed(&evaluate(&flat(), &kept)), ["descriptors released"]);
        assert!(!failed(&evaluate(&[], &bounds())).is_empty());
    }

    #[test]
    fn durations_read_naturally() {
        assert_eq!(minutes(20.0), "20 s");
        assert_eq!(minutes(600.0), "10 min");
        assert_eq!(minutes(150.0), "2.5 min");
        assert_eq!(mib(62_771), "61.3 MiB");
    }
}
