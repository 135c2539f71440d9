//! One row of the soak's time series: the server's memory and descriptors,
//! what the load did since the previous row, and the errors so far; written
//! to `samples.csv` as it is taken and read back to redraw the plot.

use std::fmt::Write as _;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use crate::soak::SoakError;

/// The CSV header, one name per [`Sample`] field in order.
pub const HEADER: &str = "t_s,server_rss_kib,server_fds,server_cpu_percent,generator_rss_kib,\
open_connections,echoes_per_s,publishes_per_s,deliveries_per_s,echo_p99_ms,delivery_p99_ms,errors";

/// The server and the load at one moment of the run.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// Seconds since the load started (0: every connection open, no load
    /// yet).
    pub t_s: f64,
    /// The server's resident memory (`VmRSS` of `/proc/PID/status`).
    pub server_rss_kib: u64,
    /// The server's open file descriptors (entries of `/proc/PID/fd`).
    pub server_fds: u64,
    /// The server's CPU use since the previous sample, percent of one core;
    /// `None` in the first.
    pub server_cpu_percent: Option<f64>,
    /// The generator's own resident memory: a leak there would show as
    /// load that fades, not as the server's fault.
    pub generator_rss_kib: u64,
    /// Connections open (echo and room connections together).
    pub open_connections: usize,
    /// Echoes received and checked per second since the previous sample.
    pub echoes_per_s: f64,
    /// Publishes sent per second since the previous sample.
    pub publishes_per_s: f64,
    /// Deliveries received and checked per second since the previous
    /// sample.
    pub deliveries_per_s: f64,
    /// p99 of the echo round trips since the previous sample, ms.
    pub echo_p99_ms: Option<f64>,
    /// p99 of the delivery latencies (publish sent to delivery read) since
    /// the previous sample, ms.
    pub delivery_p99_ms: Option<f64>,
    /// Errors so far: connections that failed or dropped, wrong echoes or
    /// deliveries, lost or reordered deliveries, unexpected messages.
    pub errors: u64,
}

fn optional(value: Option<f64>, decimals: usize) -> String {
    value.map_or_else(String::new, |v| format!("{v:.decimals$}"))
}

impl Sample {
    /// The sample as one CSV line (no newline); absent values are empty
    /// fields.
    #[must_use]
    pub fn to_csv(&self) -> String {
        let mut line = String::new();
        let _ = write!(
            line,
            "{:.1},{},{},{},{},{},{:.1},{:.1},{:.1},{},{},{}",
            self.t_s,
            self.server_rss_kib,
            self.server_fds,
            optional(self.server_cpu_percent, 1),
            self.generator_rss_kib,
            self.open_connections,
            self.echoes_per_s,
            self.publishes_per_s,
            self.deliveries_per_s,
            optional(self.echo_p99_ms, 3),
            optional(self.delivery_p99_ms, 3),
            self.errors,
        );
        line
    }

    /// Parses a line written by [`Sample::to_csv`].
    ///
    /// # Errors
    /// The name of the first field that is missing or not a number.
    pub fn from_csv(line: &str) -> Result<Self, &'static str> {
        let mut fields = line.trim_end().split(',');
        let mut next = |name: &'static str| fields.next().ok_or(name);
        fn number<T: std::str::FromStr>(text: &str, name: &'static str) -> Result<T, &'static str> {
            text.parse().map_err(|_| name)
        }
        fn maybe(text: &str, name: &'static str) -> Result<Option<f64>, &'static str> {
            if text.is_empty() {
                Ok(None)
            } else {
                number(text, name).map(Some)
            }
        }
        Ok(Self {
            t_s: number(next("t_s")?, "t_s")?,
            server_rss_kib: number(next("server_rss_kib")?, "server_rss_kib")?,
            server_fds: number(next("server_fds")?, "server_fds")?,
            server_cpu_percent: maybe(next("server_cpu_percent")?, "server_cpu_percent")?,
            generator_rss_kib: number(next("generator_rss_kib")?, "generator_rss_kib")?,
            open_connections: number(next("open_connections")?, "open_connections")?,
            echoes_per_s: number(next("echoes_per_s")?, "echoes_per_s")?,
            publishes_per_s: number(next("publishes_per_s")?, "publishes_per_s")?,
            deliveries_per_s: number(next("deliveries_per_s")?, "deliveries_per_s")?,
            echo_p99_ms: maybe(next("echo_p99_ms")?, "echo_p99_ms")?,
            delivery_p99_ms: maybe(next("delivery_p99_ms")?, "delivery_p99_ms")?,
            errors: number(next("errors")?, "errors")?,
        })
    }
}

/// `samples.csv`, written a line at a time so a run that is cut short
/// still leaves what it measured. Opened before the first sample, so its
/// descriptor is counted in every one of them when the server runs in the
/// generator's process (the tests).
#[derive(Debug)]
pub struct SampleWriter {
    path: PathBuf,
    file: BufWriter<File>,
}

impl SampleWriter {
    /// Creates (or truncates) `path` and writes the header.
    ///
    /// # Errors
    /// [`SoakError::Write`] when the file cannot be created.
    pub fn create(path: &Path) -> Result<Self, SoakError> {
        let file = File::create(path).map_err(|source| SoakError::Write {
            path: path.to_owned(),
            source,
        })?;
        let mut writer = Self {
            path: path.to_owned(),
            file: BufWriter::new(file),
        };
        writer.line(HEADER)?;
        Ok(writer)
    }

    /// Appends `sample` and flushes it to the file.
    ///
    /// # Errors
    /// [`SoakError::Write`] when the disk refuses.
    pub fn write(&mut self, sample: &Sample) -> Result<(), SoakError> {
        self.line(&sample.to_csv())
    }

    fn line(&mut self, line: &str) -> Result<(), SoakError> {
        writeln!(self.file, "{line}")
            .and_then(|()| self.file.flush())
            .map_err(|source| SoakError::Write {
                path: self.path.clone(),
                source,
            })
    }
}

/// Reads a `samples.csv` written by [`SampleWriter`].
///
/// # Errors
/// [`SoakError::Read`] when it cannot be read, [`SoakError::Parse`] when
/// its header or a line is not the soak's.
pub fn read_samples(path: &Path) -> Result<Vec<Sample>, SoakError> {
    let text = std::fs::read_to_string(path).map_err(|source| SoakError::Read {
        path: path.to_owned(),
        source,
    })?;
    let mut lines = text.lines();
    let parse = |line: usize, what: String| SoakError::Parse {
        path: path.to_owned(),
        line,
        what,
    };
    if lines.next() != Some(HEADER) {
        return Err(parse(1, "the header is not the soak's".into()));
    }
    lines
        .enumerate()
        .filter(|(_, line)| !line.trim().is_empty())
        .map(|(index, line)| {
            Sample::from_csv(line).map_err(|field| parse(index + 2, format!("bad {field}")))
        })
        .collect()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A sample at `t_s` with `rss` KiB and `fds` descriptors, quiet
    /// otherwise.
    pub(crate) fn sample(t_s: f64, rss: u64, fds: u64) -> Sample {
        Sample {
            t_s,
            server_rss_kib: rss,
            server_fds: fds,
            server_cpu_percent: Some(12.5),
            generator_rss_kib: 30_000,
            open_connections: 100,
            echoes_per_s: 50.0,
            publishes_per_s: 2.0,
            deliveries_per_s: 100.0,
            echo_p99_ms: Some(0.25),
            delivery_p99_ms: None,
            errors: 0,
        }
    }

    #[test]
    fn a_sample_survives_its_csv_line() {
        let mut first = sample(0.0, 60_000, 10_012);
        first.server_cpu_percent = None;
        let later = sample(10.0, 61_000, 10_012);
        for original in [first, later] {
            let line = original.to_csv();
            assert_eq!(line.split(',').count(), HEADER.split(',').count());
            assert_eq!(Sample::from_csv(&line), Ok(original));
        }
        assert_eq!(Sample::from_csv("1.0,2,x"), Err("server_fds"));
    }

    #[test]
    fn the_file_is_read_back_and_a_foreign_one_refused() {
        let dir = std::env::temp_dir().join(format!("duplex-soak-csv-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let path = dir.join("samples.csv");
        let samples = [sample(0.0, 1, 2), sample(10.0, 3, 4)];
        let mut writer = SampleWriter::create(&path).expect("created");
        for sample in &samples {
            writer.write(sample).expect("written");
        }
        drop(writer);
        assert_eq!(read_samples(&path).expect("read back"), samples);
        std::fs::write(&path, "a,b\n1,2\n").expect("overwrite");
        assert!(matches!(
            read_samples(&path),
            Err(SoakError::Parse { line: 1, .. })
        ));
        std::fs::remove_dir_all(&dir).expect("cleaned up");
    }
}
