//! `/metrics` read the way Prometheus reads it: the text parsed by a
//! Prometheus text-format parser (prometheus-parse), samples looked up by
//! name and labels.

use std::net::SocketAddr;

use prometheus_parse::{Scrape, Value};

use super::get;

/// One scrape of `/metrics`.
pub struct Metrics(Scrape);

impl Metrics {
    /// `GET /metrics` on `addr`, parsed.
    pub async fn scrape(addr: SocketAddr) -> Self {
        let response = get(addr, "/metrics").await;
        assert_eq!(response.status, 200, "{}", response.head);
        assert!(
            response
                .header("content-type")
                .is_some_and(|kind| kind.contains("openmetrics-text")),
            "{}",
            response.head
        );
        Self::parse(&response.body_text())
    }

    /// Parses a body of `/metrics`.
    pub fn parse(text: &str) -> Self {
        let lines = text.lines().map(|line| Ok(line.to_owned()));
        Self(Scrape::parse(lines).expect("Prometheus text format"))
    }

    /// The value of `name` with exactly `labels`; `None` if there is no
    /// such sample.
    pub fn find(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        self.0
            .samples
            .iter()
            .find(|sample| {
                sample.metric == name
                    && sample.labels.iter().count() == labels.len()
                    && labels
                        .iter()
                        .all(|(key, value)| sample.labels.get(key) == Some(*value))
            })
            .map(|sample| match sample.value {
                Value::Counter(v) | Value::Gauge(v) | Value::Untyped(v) => v,
                ref other => panic!("{name}: not a number: {other:?}"),
            })
    }

    /// The value of `name` with `labels`, which must be exported.
    pub fn value(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.find(name, labels)
            .unwrap_or_else(|| panic!("no sample {name}{labels:?}"))
    }

    /// The value of `name` with `labels`, 0 when not exported yet (a
    /// labelled counter appears at its first increment).
    pub fn count(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.find(name, labels).unwrap_or(0.0)
    }
}
