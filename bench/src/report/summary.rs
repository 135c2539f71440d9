//! From many runs to one number per server and configuration: medians over
//! the rounds, errors summed, columns ordered as the script listed the
//! servers.

use std::collections::BTreeMap;

use crate::record::{Mode, RunRecord};
use crate::report::{Meta, ServerInfo};
use crate::stats::median;

/// A closed-loop echo configuration: connections × payload size.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Workload {
    /// Payload bytes; first, so rows sort from small to large messages.
    pub payload_bytes: usize,
    /// Concurrent connections.
    pub connections: usize,
}

impl Workload {
    /// "100 × 20 B", "10 × 16 KiB".
    #[must_use]
    pub fn title(&self) -> String {
        format!(
            "{} × {}",
            group_thousands(self.connections),
            human_bytes(self.payload_bytes)
        )
    }
}

/// One server in one echo configuration, over the rounds.
#[derive(Debug, Clone, PartialEq)]
pub struct EchoCell {
    /// Rounds found.
    pub runs: usize,
    /// Median messages per second.
    pub messages_per_sec: f64,
    /// Median p99 latency, microseconds.
    pub p99_us: Option<f64>,
    /// Median server CPU, percent of a core.
    pub server_cpu: Option<f64>,
    /// Highest generator CPU seen, percent of a core.
    pub generator_cpu_max: Option<f64>,
    /// Median over the rounds of messages per second divided by the
    /// generator's share of its core: what the generator could drive with
    /// its whole core at that cost per message.
    pub generator_ceiling: Option<f64>,
    /// Connection errors, all rounds together.
    pub errors: u64,
}

/// One server's idle-connection memory, over the rounds.
#[derive(Debug, Clone, PartialEq)]
pub struct MemoryCell {
    /// Rounds found.
    pub runs: usize,
    /// Median KiB of server RSS per idle connection.
    pub per_connection_kib: f64,
    /// Median connections held.
    pub connections: usize,
    /// Connection errors, all rounds together.
    pub errors: u64,
}

/// Everything the table and the chart show.
#[derive(Debug, Clone, PartialEq)]
pub struct Summary {
    /// Columns: the subject first, then the peers.
    pub servers: Vec<ServerInfo>,
    /// The label ratios are computed for.
    pub subject: String,
    /// Rows, small messages first.
    pub workloads: Vec<Workload>,
    /// Closed-loop echo results by (label, workload).
    pub echo: BTreeMap<(String, Workload), EchoCell>,
    /// Hold results by label.
    pub memory: BTreeMap<String, MemoryCell>,
    /// Most rounds any cell has.
    pub rounds: usize,
}

impl Summary {
    /// The subject's value divided by `label`'s (how many times the
    /// subject's figure the peer's is).
    #[must_use]
    pub fn echo_ratio(&self, label: &str, workload: Workload) -> Option<f64> {
        let subject = self.echo.get(&(self.subject.clone(), workload))?;
        let peer = self.echo.get(&(label.to_owned(), workload))?;
        ratio(subject.messages_per_sec, peer.messages_per_sec)
    }

    /// The subject's memory per connection divided by `label`'s.
    #[must_use]
    pub fn memory_ratio(&self, label: &str) -> Option<f64> {
        let subject = self.memory.get(&self.subject)?;
        let peer = self.memory.get(label)?;
        ratio(subject.per_connection_kib, peer.per_connection_kib)
    }
}

fn ratio(subject: f64, peer: f64) -> Option<f64> {
    (peer > 0.0 && subject.is_finite()).then(|| subject / peer)
}

/// Label of runs that carry none.
const UNLABELLED: &str = "unlabelled";

/// Groups `records` by server and configuration and takes medians.
#[must_use]
pub fn summarize(records: &[RunRecord], meta: &Meta, subject: Option<&str>) -> Summary {
    let label_of = |r: &RunRecord| r.label.clone().unwrap_or_else(|| UNLABELLED.to_owned());

    let mut servers = meta.servers.clone();
    for record in records {
        let label = label_of(record);
        if !servers.iter().any(|s| s.label == label) {
            servers.push(ServerInfo {
                name: label.clone(),
                label,
                version: None,
            });
        }
    }
    let subject = subject
        .map(str::to_owned)
        .or_else(|| meta.subject.clone())
        .or_else(|| servers.first().map(|s| s.label.clone()))
        .unwrap_or_else(|| UNLABELLED.to_owned());
    // The subject's column comes first.
    if let Some(at) = servers.iter().position(|s| s.label == subject) {
        let first = servers.remove(at);
        servers.insert(0, first);
    }

    let mut echo_runs: BTreeMap<(String, Workload), Vec<&RunRecord>> = BTreeMap::new();
    let mut hold_runs: BTreeMap<String, Vec<&RunRecord>> = BTreeMap::new();
    for record in records {
        match record.mode {
            Mode::ClosedLoop => {
                let workload = Workload {
                    payload_bytes: record.payload_bytes,
                    connections: record.connections,
                };
                echo_runs
                    .entry((label_of(record), workload))
                    .or_default()
                    .push(record);
            }
            Mode::Hold => hold_runs.entry(label_of(record)).or_default().push(record),
            // Open loop answers another question (latency at a given rate);
            // the comparison is closed loop.
            Mode::OpenLoop => {}
        }
    }

    let mut workloads: Vec<Workload> = echo_runs.keys().map(|(_, w)| *w).collect();
    workloads.sort();
    workloads.dedup();

    let echo: BTreeMap<_, _> = echo_runs
        .into_iter()
        .map(|(key, runs)| {
            let cell = EchoCell {
                runs: runs.len(),
                messages_per_sec: median(runs.iter().map(|r| r.messages_per_sec)).unwrap_or(0.0),
                p99_us: median(runs.iter().filter_map(|r| r.latency_us.map(|l| l.p99))),
                server_cpu: median(runs.iter().filter_map(|r| r.cpu.server_percent)),
                generator_cpu_max: runs
                    .iter()
                    .filter_map(|r| r.cpu.generator_percent)
                    .reduce(f64::max),
                generator_ceiling: median(runs.iter().filter_map(|r| {
                    // Below 1% the tick-based CPU figure is mostly rounding.
                    let cpu = r.cpu.generator_percent.filter(|p| *p >= 1.0)?;
                    Some(r.messages_per_sec / (cpu / 100.0))
                })),
                errors: runs.iter().map(|r| r.error_total()).sum(),
            };
            (key, cell)
        })
        .collect();
    let memory: BTreeMap<_, _> = hold_runs
        .into_iter()
        .filter_map(|(label, runs)| {
            let per_connection_kib = median(
                runs.iter()
                    .filter_map(|r| r.memory.map(|m| m.per_connection_kib)),
            )?;
            let connections = median(runs.iter().map(|r| r.connected as f64)).unwrap_or(0.0);
            let cell = MemoryCell {
                runs: runs.len(),
                per_connection_kib,
                connections: connections.round() as usize,
                errors: runs.iter().map(|r| r.error_total()).sum(),
            };
            Some((label, cell))
        })
        .collect();
    let rounds = echo
        .values()
        .map(|c| c.runs)
        .chain(memory.values().map(|c| c.runs))
        .max()
        .unwrap_or(0);
    Summary {
        servers,
        subject,
        workloads,
        echo,
        memory,
        rounds,
    }
}

/// 20 → "20 B", 1024 → "1 KiB", 16384 → "16 KiB", 1536 → "1536 B".
#[must_use]
pub fn human_bytes(bytes: usize) -> String {
    if bytes >= 1 << 20 && bytes.is_multiple_of(1 << 20) {
        format!("{} MiB", bytes >> 20)
    } else if bytes >= 1 << 10 && bytes.is_multiple_of(1 << 10) {
        format!("{} KiB", bytes >> 10)
    } else {
        format!("{bytes} B")
    }
}

/// 10000 → "10,000".
#[must_use]
pub fn group_thousands(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::record::{CpuUse, MemoryUse};
    use crate::stats::Percentiles;

    pub(crate) fn echo_run(label: &str, connections: usize, size: usize, rate: f64) -> RunRecord {
        RunRecord {
            tool: "duplex-bench test".into(),
            label: Some(label.into()),
            mode: Mode::ClosedLoop,
            url: "ws://127.0.0.1:1/".into(),
            connections,
            connected: connections,
            payload_bytes: size,
            target_rate: None,
            seconds: 5.0,
            messages: (rate * 5.0) as u64,
            messages_per_sec: rate,
            megabytes_per_sec: rate * size as f64 / 1e6,
            latency_us: Some(Percentiles {
                count: 1,
                mean: 100.0,
                p50: 100.0,
                p90: 150.0,
                p99: 1e6 / rate,
                p999: 300.0,
                max: 400.0,
            }),
            connect_ms: None,
            errors: BTreeMap::new(),
            error_samples: BTreeMap::new(),
            cpu: CpuUse {
                generator_percent: Some(60.0),
                server_percent: Some(99.0),
                server_us_per_message: None,
            },
            memory: None,
            payload: crate::payload::PayloadKind::Binary,
            deflate: false,
            wire: None,
        }
    }

    pub(crate) fn hold_run(label: &str, kib: f64) -> RunRecord {
        RunRecord {
            mode: Mode::Hold,
            memory: Some(MemoryUse {
                server_rss_before_kib: 1000,
                server_rss_after_kib: 1000 + (kib * 100.0) as u64,
                per_connection_kib: kib,
            }),
            latency_us: None,
            messages_per_sec: 0.0,
            ..echo_run(label, 100, 0, 0.0)
        }
    }

    pub(crate) fn three_rounds() -> Vec<RunRecord> {
        let mut records = Vec::new();
        for (duplex, peer) in [
            (100_000.0, 50_000.0),
            (90_000.0, 60_000.0),
            (200_000.0, 40_000.0),
        ] {
            records.push(echo_run("duplex", 100, 20, duplex));
            records.push(echo_run("peer", 100, 20, peer));
            records.push(echo_run("duplex", 10, 16384, duplex / 2.0));
            records.push(echo_run("peer", 10, 16384, peer / 2.0));
        }
        records.push(hold_run("duplex", 10.0));
        records.push(hold_run("peer", 40.0));
        records
    }

    #[test]
    fn medians_per_server_and_workload() {
        let summary = summarize(&three_rounds(), &Meta::default(), Some("duplex"));
        let small = Workload {
            payload_bytes: 20,
            connections: 100,
        };
        let cell = &summary.echo[&("duplex".to_owned(), small)];
        assert_eq!(cell.runs, 3);
        assert_eq!(cell.messages_per_sec, 100_000.0);
        assert_eq!(
            summary.echo[&("peer".to_owned(), small)].messages_per_sec,
            50_000.0
        );
        assert_eq!(summary.echo_ratio("peer", small), Some(2.0));
        assert_eq!(summary.memory_ratio("peer"), Some(0.25));
        assert_eq!(summary.rounds, 3);
        // 100k msg/s with the generator at 60% of its core.
        let ceiling = cell.generator_ceiling.expect("estimated");
        assert!((ceiling - 100_000.0 / 0.6).abs() < 1.0, "{ceiling}");
        assert_eq!(summary.workloads.len(), 2);
        assert_eq!(summary.workloads[0], small, "small payloads first");
    }

    #[test]
    fn subject_column_comes_first_and_meta_names_servers() {
        let meta = Meta {
            servers: vec![
                ServerInfo {
                    label: "peer".into(),
                    name: "Peer".into(),
                    version: Some("1.0".into()),
                },
                ServerInfo {
                    label: "duplex".into(),
                    name: "Duplex".into(),
                    version: None,
                },
            ],
            subject: Some("duplex".into()),
            ..Meta::default()
        };
        let summary = summarize(&three_rounds(), &meta, None);
        let labels: Vec<&str> = summary.servers.iter().map(|s| s.label.as_str()).collect();
        assert_eq!(labels, ["duplex", "peer"]);
        assert_eq!(summary.servers[1].title(), "Peer 1.0");
    }

    #[test]
    fn sizes_and_counts_read_naturally() {
        assert_eq!(human_bytes(20), "20 B");
        assert_eq!(human_bytes(1024), "1 KiB");
        assert_eq!(human_bytes(16384), "16 KiB");
        assert_eq!(human_bytes(1536), "1536 B");
        assert_eq!(group_thousands(10_000), "10,000");
        assert_eq!(group_thousands(100), "100");
        let workload = Workload {
            payload_bytes: 128,
            connections: 1000,
        };
        assert_eq!(workload.title(), "1,000 × 128 B");
    }
}
