//! The soak: thousands of connections held for many minutes under steady
//! load, the server's memory and file descriptors sampled all along, every
//! error counted, and a verdict: no errors, every connection held, memory
//! flat after the warm-up, descriptors constant while loaded and all
//! released after.
//!
//! A share of the connections echo on `/echo` at a steady rate, each echo
//! checked byte for byte; the rest are members of rooms on `/ws`, one
//! member of each room publishing at a steady rate, each delivery checked
//! in order and byte for byte ([`load`]). Every `--sample-interval` a row
//! goes to `samples.csv` ([`sample`]); at the end `summary.json` has the
//! figures and the checks ([`summary`]) and `plot.svg` shows them
//! ([`plot`]). `scripts/soak.sh` starts the server and runs this.

pub mod load;
pub mod plot;
pub mod sample;
pub mod summary;

use std::cell::RefCell;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::time::{Duration, Instant};

use clap::Args;
use thiserror::Error;
use tokio::sync::watch;
use tokio::task::{JoinSet, LocalSet};

use crate::connect::{ConnectOptions, Dialer};
use crate::echo::parse_size;
use crate::payload::TIMED_LEN;
use crate::procfs::{CpuMeter, ProcError, Process};
use crate::record::kind_name;
use crate::report::group_thousands;
use crate::stats::Recorder;
use crate::target::Target;
use load::{Dialers, PUBLISH_STAMP, Phase, Plan, Shared};
use sample::{Sample, SampleWriter};
use summary::{Bounds, Summary};

/// How long the server may take, once every connection has closed, to
/// close its side of them: the descriptors are read until they are back
/// to the count before the run, or this has passed.
const RELEASE_WAIT: Duration = Duration::from_secs(10);

/// The longest drain, however long deliveries keep coming: a bound on the
/// run, far above any backlog a server that keeps up can build.
const DRAIN_LIMIT: Duration = Duration::from_secs(120);

/// Options of `duplex-bench soak`.
#[derive(Debug, Clone, Args)]
pub struct SoakOptions {
    /// The Duplex server: echo connections go to URL/echo, room members
    /// to URL/ws (a path in the URL is replaced).
    #[arg(short, long, default_value = "ws://127.0.0.1:8080")]
    pub url: Target,

    /// PID of the server: its memory, descriptors and CPU are read from
    /// /proc/PID.
    #[arg(long, value_name = "PID")]
    pub server_pid: u32,

    /// Connections held for the whole run, echo and rooms together.
    #[arg(short, long, default_value_t = 10_000)]
    pub connections: usize,

    /// Share of the connections on /echo (0 to 1); the rest join rooms.
    #[arg(long, default_value_t = 0.5)]
    pub echo_share: f64,

    /// Rooms the room connections are spread over; one member of each
    /// publishes. 10 rooms of 10,000 x 0.5 connections: 500 members each,
    /// below the server's default --presence-limit (1000), so presence is
    /// on as in a chat.
    #[arg(long, default_value_t = 10)]
    pub rooms: usize,

    /// Echoes per second of each echo connection (5,000/s with the
    /// defaults).
    #[arg(long, default_value_t = 1.0)]
    pub echo_rate: f64,

    /// Payload bytes of an echo (at least 16). B, KiB or MiB suffixes.
    #[arg(long, default_value = "128", value_parser = parse_size)]
    pub echo_size: usize,

    /// Publishes per second in each room (with the defaults 20/s, 10,000
    /// deliveries/s).
    #[arg(long, default_value_t = 2.0)]
    pub publish_rate: f64,

    /// Payload bytes of a publish (at least 20). B, KiB or MiB suffixes.
    #[arg(long, default_value = "64", value_parser = parse_size)]
    pub publish_size: usize,

    /// How long the load runs once every connection is open.
    #[arg(short, long, default_value = "10m", value_parser = humantime::parse_duration)]
    pub duration: Duration,

    /// Load before the memory baseline, so buffers, allocator arenas and
    /// the keepalive's first rounds have settled (the server frees an idle
    /// member's read buffer at its second ping tick, 40 s with its
    /// defaults). Default: a tenth of --duration, from 20 s to 1 min.
    #[arg(long, value_parser = humantime::parse_duration)]
    pub warmup: Option<Duration>,

    /// Time between two samples.
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    pub sample_interval: Duration,

    /// Most growth of the server's RSS from the first sample after the
    /// warm-up to the last, percent, for the run to pass.
    #[arg(long, default_value_t = 10.0)]
    pub max_rss_growth: f64,

    /// Directory for samples.csv, summary.json and plot.svg.
    #[arg(long, default_value = "target/soak")]
    pub out: PathBuf,

    /// Rooms are named PREFIX-0, PREFIX-1, ...
    #[arg(long, default_value = "soak")]
    pub room_prefix: String,

    /// Most connects and handshakes in progress at once, per endpoint.
    #[arg(long, default_value_t = 64)]
    pub connect_concurrency: usize,

    /// Longest a TCP connect plus upgrade may take.
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    pub connect_timeout: Duration,

    /// An echo or a join not answered within this fails its connection.
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    pub timeout: Duration,

    /// After the load, members read the publishes still in flight until
    /// every one has come, or none has come for this long (at most
    /// 2 min in all); what has not come then is lost. A server that is
    /// behind (a busy machine) delivers late, not never: the drain waits
    /// for as long as deliveries keep coming.
    #[arg(long, default_value = "5s", value_parser = humantime::parse_duration)]
    pub drain: Duration,

    /// Free text kept in summary.json and shown under the plot's title:
    /// date, commit, machine.
    #[arg(long)]
    pub describe: Option<String>,
}

impl SoakOptions {
    /// The warm-up: `--warmup`, or a tenth of the duration from 20 s to
    /// 1 min.
    #[must_use]
    pub fn warmup(&self) -> Duration {
        self.warmup.unwrap_or_else(|| {
            (self.duration / 10).clamp(Duration::from_secs(20), Duration::from_secs(60))
        })
    }

    /// Connections on /echo.
    #[must_use]
    pub fn echo_connections(&self) -> usize {
        ((self.connections as f64 * self.echo_share).round() as usize).min(self.connections)
    }

    /// Checks that the options make sense together.
    ///
    /// # Errors
    /// [`SoakError::Options`] naming the problem.
    pub fn validate(&self) -> Result<(), SoakError> {
        let fail = |why: &str| Err(SoakError::Options(why.into()));
        let rate_ok = |rate: f64| rate > 0.0 && rate.is_finite();
        let room_connections = self.connections - self.echo_connections();
        if self.connections == 0 {
            return fail("--connections must be at least 1");
        }
        if !(0.0..=1.0).contains(&self.echo_share) {
            return fail("--echo-share must be from 0 to 1");
        }
        if room_connections > 0 && (self.rooms == 0 || self.rooms > room_connections) {
            return fail("--rooms must be from 1 to the number of room connections");
        }
        if !rate_ok(self.echo_rate) || !rate_ok(self.publish_rate) {
            return fail("--echo-rate and --publish-rate must be positive numbers");
        }
        if self.echo_size < TIMED_LEN {
            return fail("--echo-size must be at least 16 bytes (the echo's stamp)");
        }
        if self.publish_size < PUBLISH_STAMP {
            return fail("--publish-size must be at least 20 bytes (the publish's stamp)");
        }
        if self.sample_interval.is_zero() || self.duration < self.sample_interval {
            return fail("--sample-interval must be above zero and at most --duration");
        }
        if self.warmup() >= self.duration {
            return fail("--warmup must be shorter than --duration");
        }
        if self.max_rss_growth.is_nan()
            || self.max_rss_growth <= 0.0
            || self.timeout.is_zero()
            || self.connect_concurrency == 0
        {
            return fail(
                "--max-rss-growth, --timeout and --connect-concurrency must be above zero",
            );
        }
        Ok(())
    }

    /// What each connection does.
    fn plan(&self) -> Plan {
        let echo = self.echo_connections();
        Plan {
            echo,
            room_connections: self.connections - echo,
            rooms: self.rooms,
            room_prefix: self.room_prefix.clone(),
            echo_interval: Duration::from_secs_f64(1.0 / self.echo_rate),
            echo_size: self.echo_size,
            publish_interval: Duration::from_secs_f64(1.0 / self.publish_rate),
            publish_size: self.publish_size,
            timeout: self.timeout,
        }
    }

    /// The connect options of one endpoint.
    fn connect(&self, path: &str, connections: usize) -> ConnectOptions {
        ConnectOptions {
            url: Target {
                path: path.into(),
                ..self.url.clone()
            },
            connections,
            ramp_rate: None,
            connect_concurrency: self.connect_concurrency,
            connect_timeout: self.connect_timeout,
            deflate: false,
            deflate_level: crate::ws::DEFLATE_LEVEL,
        }
    }
}

/// Options of `duplex-bench soak-plot`.
#[derive(Debug, Clone, Args)]
pub struct SoakPlotOptions {
    /// A soak's directory: samples.csv and summary.json are read, plot.svg
    /// is written.
    pub dir: PathBuf,
}

/// Why a soak could not run, or its results not be written or read.
#[derive(Debug, Error)]
pub enum SoakError {
    /// The options contradict each other.
    #[error("invalid options: {0}")]
    Options(String),
    /// The server's address does not resolve.
    #[error("cannot resolve {url}: {source}")]
    Resolve {
        /// The URL as given.
        url: String,
        /// The resolver's error.
        source: std::io::Error,
    },
    /// Not one connection could be opened; the first error says why.
    #[error("no connection could be opened ({attempted} tried); first error: {first}")]
    NoConnection {
        /// Connections attempted.
        attempted: usize,
        /// The first failure's message.
        first: String,
    },
    /// The server's figures cannot be read from /proc (it has gone?).
    #[error(transparent)]
    Proc(#[from] ProcError),
    /// A result file cannot be written.
    #[error("cannot write {path}: {source}")]
    Write {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A result file cannot be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A result file is not what a soak writes.
    #[error("{path}:{line}: {what}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// The line, from 1.
        line: usize,
        /// What is wrong with it.
        what: String,
    },
    /// plotters failed to draw the chart.
    #[error("cannot draw the plot: {0}")]
    Chart(String),
}

/// Runs the soak as `options` say, writes its results into `--out` and
/// returns the summary (the verdict is [`Summary::passed`]). Prints one
/// line per sample on stderr.
///
/// # Errors
/// Invalid options, a URL that does not resolve, not one connection
/// opened, the server's /proc unreadable, or results that cannot be
/// written. Errors of single connections are counted in the summary.
pub async fn run(options: &SoakOptions) -> Result<Summary, SoakError> {
    options.validate()?;
    LocalSet::new().run_until(run_local(options)).await
}

async fn run_local(options: &SoakOptions) -> Result<Summary, SoakError> {
    let url = options.url.to_string();
    let addr = options
        .url
        .resolve()
        .await
        .map_err(|source| SoakError::Resolve {
            url: url.clone(),
            source,
        })?;
    std::fs::create_dir_all(&options.out).map_err(|source| SoakError::Write {
        path: options.out.clone(),
        source,
    })?;
    let mut csv = SampleWriter::create(&options.out.join("samples.csv"))?;
    let server = Process::Pid(options.server_pid);
    let (rss_before_kib, fds_before) = (server.rss_kib()?, server.open_fds()?);

    let plan = options.plan();
    let recorder = Rc::new(RefCell::new(Recorder::new()));
    let dialers = Rc::new(Dialers {
        echo: Dialer::new(
            addr,
            &options.connect("/echo", plan.echo),
            plan.echo_size,
            Rc::clone(&recorder),
        ),
        rooms: Dialer::new(
            addr,
            &options.connect("/ws", plan.room_connections),
            plan.publish_size + 64,
            Rc::clone(&recorder),
        ),
    });
    let shared = Rc::new(Shared::new(plan, Rc::clone(&recorder)));
    let total = shared.plan.total();
    let (phase, watching) = watch::channel(Phase::Connect);

    // Open every connection, reporting progress every two seconds.
    let connecting = Instant::now();
    let mut tasks = JoinSet::new();
    for index in 0..total {
        tasks.spawn_local(load::connection(
            Rc::clone(&shared),
            Rc::clone(&dialers),
            index,
            watching.clone(),
        ));
    }
    let counters = &shared.counters;
    while counters.attempted.get() < total {
        tokio::select! {
            () = shared.all_attempted.notified() => {}
            () = tokio::time::sleep(Duration::from_secs(2)) => eprintln!(
                "soak: connecting {}/{} ({} open)",
                group_thousands(counters.attempted.get()),
                group_thousands(total),
                group_thousands(counters.open.get())
            ),
        }
    }
    let connect_s = connecting.elapsed().as_secs_f64();
    if counters.open.get() == 0 {
        let first = recorder
            .borrow()
            .error_samples()
            .values()
            .next()
            .cloned()
            .unwrap_or_default();
        return Err(SoakError::NoConnection {
            attempted: total,
            first,
        });
    }
    eprintln!(
        "soak: {} of {} connections open in {connect_s:.1} s; load for {}",
        group_thousands(counters.open.get()),
        group_thousands(total),
        summary::minutes(options.duration.as_secs_f64())
    );

    // The load, sampled from its start to its end.
    let started = Instant::now();
    shared.load_started.set(started);
    // Receivers live in the tasks; a send error only means all have ended.
    let _ = phase.send(Phase::Load);
    let samples = sample_load(options, &shared, server, started, &mut csv).await?;

    // Drain: publishing stops; members read what is in flight.
    let _ = phase.send(Phase::Drain);
    let draining = Instant::now();
    let drain_limit = draining + DRAIN_LIMIT;
    let mut progress = (Instant::now(), shared.counters.delivered.get());
    while shared.outstanding() > 0 && Instant::now() < drain_limit {
        tokio::time::sleep(Duration::from_millis(20)).await;
        let delivered = shared.counters.delivered.get();
        if delivered != progress.1 {
            progress = (Instant::now(), delivered);
        } else if progress.0.elapsed() >= options.drain {
            break;
        }
    }
    let tail_lost = shared.outstanding();
    let drain_s = draining.elapsed().as_secs_f64();
    if tail_lost > 0 {
        eprintln!(
            "soak: {} deliveries still owed after the drain: lost",
            group_thousands(tail_lost as usize)
        );
    }
    let _ = phase.send(Phase::Close);
    while tasks.join_next().await.is_some() {}

    // The server closes its side of each connection after ours.
    let released = Instant::now() + RELEASE_WAIT;
    let mut fds_after_close = server.open_fds()?;
    while fds_after_close != fds_before && Instant::now() < released {
        tokio::time::sleep(Duration::from_millis(100)).await;
        fds_after_close = server.open_fds()?;
    }
    let rss_after_close_kib = server.rss_kib()?;

    let summary = summarize(
        options,
        &shared,
        &samples,
        Figures {
            url,
            connect_s,
            rss_before_kib,
            fds_before,
            fds_after_close,
            rss_after_close_kib,
            tail_lost,
            drain_s,
        },
    );
    write_results(&options.out, &samples, &summary)?;
    Ok(summary)
}

/// Takes a sample at the load's start and every interval up to its end,
/// writing each to the CSV and a line to stderr as it comes.
async fn sample_load(
    options: &SoakOptions,
    shared: &Shared,
    server: Process,
    started: Instant,
    csv: &mut SampleWriter,
) -> Result<Vec<Sample>, SoakError> {
    let interval = options.sample_interval;
    let end = started + options.duration;
    let mut samples = Vec::new();
    let mut cpu = CpuMeter::start(server)?;
    let mut previous = (started, Totals::of(shared));
    let mut next = started;
    loop {
        tokio::time::sleep_until(next.into()).await;
        let now = Instant::now();
        let totals = Totals::of(shared);
        let seconds = now.duration_since(previous.0).as_secs_f64();
        let rate = |count: u64| {
            if seconds > 0.0 {
                count as f64 / seconds
            } else {
                0.0
            }
        };
        let sample = Sample {
            t_s: now.duration_since(started).as_secs_f64(),
            server_rss_kib: server.rss_kib()?,
            server_fds: server.open_fds()?,
            server_cpu_percent: if samples.is_empty() {
                None
            } else {
                cpu.percent()
            },
            generator_rss_kib: Process::Current.rss_kib()?,
            open_connections: shared.counters.open.get(),
            echoes_per_s: rate(totals.echoes - previous.1.echoes),
            publishes_per_s: rate(totals.published - previous.1.published),
            deliveries_per_s: rate(totals.delivered - previous.1.delivered),
            echo_p99_ms: shared.echo_latency.borrow_mut().take_window_p99_ms(),
            delivery_p99_ms: shared.delivery_latency.borrow_mut().take_window_p99_ms(),
            errors: errors_so_far(shared),
        };
        cpu = CpuMeter::start(server)?;
        previous = (now, totals);
        csv.write(&sample)?;
        eprintln!(
            "soak: {:>6}  rss {:>10}  fds {:>6}  open {:>6}  echoes {:>7}/s  deliveries {:>7}/s  errors {}",
            summary::minutes(sample.t_s),
            summary::mib(sample.server_rss_kib),
            group_thousands(sample.server_fds as usize),
            group_thousands(sample.open_connections),
            crate::record::human_count(sample.echoes_per_s),
            crate::record::human_count(sample.deliveries_per_s),
            sample.errors
        );
        samples.push(sample);
        if now >= end {
            return Ok(samples);
        }
        next = (next + interval).min(end);
    }
}

/// The counters a sample takes rates of.
#[derive(Debug, Clone, Copy)]
struct Totals {
    echoes: u64,
    published: u64,
    delivered: u64,
}

impl Totals {
    fn of(shared: &Shared) -> Self {
        let counters = &shared.counters;
        Self {
            echoes: counters.echoes_received.get(),
            published: counters.published.get(),
            delivered: counters.delivered.get(),
        }
    }
}

/// Everything that went wrong so far: connections ended by an error, and
/// deliveries lost, reordered or unexpected.
fn errors_so_far(shared: &Shared) -> u64 {
    let counters = &shared.counters;
    shared.recorder.borrow().error_total()
        + counters.lost.get()
        + counters.reordered.get()
        + counters.unexpected.get()
}

/// Figures of the run measured outside the samples.
struct Figures {
    url: String,
    connect_s: f64,
    rss_before_kib: u64,
    fds_before: u64,
    fds_after_close: u64,
    rss_after_close_kib: u64,
    /// Deliveries still owed after the drain.
    tail_lost: u64,
    /// How long the drain took.
    drain_s: f64,
}

fn summarize(
    options: &SoakOptions,
    shared: &Shared,
    samples: &[Sample],
    figures: Figures,
) -> Summary {
    let plan = &shared.plan;
    let counters = &shared.counters;
    let warmup_s = options.warmup().as_secs_f64();
    let lost = counters.lost.get() + figures.tail_lost;
    let recorder = shared.recorder.borrow();
    let errors =
        recorder.error_total() + lost + counters.reordered.get() + counters.unexpected.get();
    let checks = summary::evaluate(
        samples,
        &Bounds {
            connections: plan.total(),
            warmup_s,
            max_rss_growth_percent: options.max_rss_growth,
            fds_before: figures.fds_before,
            fds_after_close: figures.fds_after_close,
            errors,
        },
    );
    let baseline = summary::baseline(samples, warmup_s).map(|s| s.server_rss_kib);
    let end = samples.last().map(|s| s.server_rss_kib);
    let deliveries_expected = (0..plan.rooms)
        .map(|room| shared.published[room].get() * plan.members_of(room))
        .sum();
    Summary {
        tool: crate::TOOL.into(),
        description: options.describe.clone(),
        url: figures.url,
        connections: plan.total(),
        echo_connections: plan.echo,
        room_connections: plan.room_connections,
        rooms: if plan.room_connections > 0 {
            plan.rooms
        } else {
            0
        },
        echo_rate: options.echo_rate,
        echo_size: options.echo_size,
        publish_rate: options.publish_rate,
        publish_size: options.publish_size,
        duration_s: options.duration.as_secs_f64(),
        warmup_s,
        sample_interval_s: options.sample_interval.as_secs_f64(),
        connect_s: figures.connect_s,
        drain_s: figures.drain_s,
        rss_before_kib: figures.rss_before_kib,
        fds_before: figures.fds_before,
        rss_baseline_kib: baseline,
        rss_end_kib: end,
        rss_max_kib: samples.iter().map(|s| s.server_rss_kib).max(),
        rss_growth_percent: baseline
            .zip(end)
            .map(|(b, e)| summary::growth_percent(b, e)),
        max_rss_growth_percent: options.max_rss_growth,
        fds_min: samples.iter().map(|s| s.server_fds).min(),
        fds_max: samples.iter().map(|s| s.server_fds).max(),
        fds_after_close: figures.fds_after_close,
        rss_after_close_kib: figures.rss_after_close_kib,
        echoes_sent: counters.echoes_sent.get(),
        echoes_received: counters.echoes_received.get(),
        published: counters.published.get(),
        deliveries_expected,
        delivered: counters.delivered.get(),
        lost,
        reordered: counters.reordered.get(),
        unexpected: counters.unexpected.get(),
        unexpected_sample: shared.unexpected_sample.borrow().clone(),
        connection_errors: recorder
            .errors()
            .iter()
            .map(|(kind, n)| (kind_name(*kind), *n))
            .collect(),
        connection_error_samples: recorder
            .error_samples()
            .iter()
            .map(|(kind, sample)| (kind_name(*kind), sample.clone()))
            .collect(),
        errors,
        echo_latency_ms: shared.echo_latency.borrow().all_ms(),
        delivery_latency_ms: shared.delivery_latency.borrow().all_ms(),
        passed: checks.iter().all(|check| check.passed),
        checks,
    }
}

/// Writes `summary.json` and `plot.svg` into `dir` (`samples.csv` is
/// already there).
fn write_results(dir: &Path, samples: &[Sample], summary: &Summary) -> Result<(), SoakError> {
    let path = dir.join("summary.json");
    let json = serde_json::to_string_pretty(summary).map_err(|error| SoakError::Write {
        path: path.clone(),
        source: error.into(),
    })?;
    std::fs::write(&path, json + "\n").map_err(|source| SoakError::Write { path, source })?;
    plot::draw(samples, summary, &dir.join("plot.svg"))
}

/// `duplex-bench soak-plot`: redraws a soak's plot from its samples.csv
/// and summary.json; returns the plot's path.
///
/// # Errors
/// The files cannot be read or are not a soak's, or the plot cannot be
/// written.
pub fn replot(options: &SoakPlotOptions) -> Result<PathBuf, SoakError> {
    let samples = sample::read_samples(&options.dir.join("samples.csv"))?;
    let path = options.dir.join("summary.json");
    let text = std::fs::read_to_string(&path).map_err(|source| SoakError::Read {
        path: path.clone(),
        source,
    })?;
    let summary: Summary = serde_json::from_str(&text).map_err(|error| SoakError::Parse {
        path: path.clone(),
        line: error.line(),
        what: error.to_string(),
    })?;
    let plot = options.dir.join("plot.svg");
    plot::draw(&samples, &summary, &plot)?;
    Ok(plot)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        soak: SoakOptions,
    }

    fn parse(args: &[&str]) -> SoakOptions {
        let argv = ["soak", "--server-pid", "1"]
            .into_iter()
            .chain(args.iter().copied());
        Cli::try_parse_from(argv).expect("parses").soak
    }

    #[test]
    fn the_defaults_are_the_issues_soak() {
        let options = parse(&[]);
        assert!(options.validate().is_ok());
        assert_eq!(options.connections, 10_000);
        assert_eq!(options.duration, Duration::from_secs(600));
        assert_eq!(options.sample_interval, Duration::from_secs(10));
        assert_eq!(options.warmup(), Duration::from_secs(60));
        let plan = options.plan();
        assert_eq!(
            (plan.echo, plan.room_connections, plan.rooms),
            (5_000, 5_000, 10)
        );
        assert_eq!(plan.members_of(0), 500);
    }

    #[test]
    fn the_warm_up_follows_the_duration_within_bounds() {
        assert_eq!(parse(&["-d", "1m"]).warmup(), Duration::from_secs(20));
        assert_eq!(parse(&["-d", "5m"]).warmup(), Duration::from_secs(30));
        assert_eq!(parse(&["-d", "1h"]).warmup(), Duration::from_secs(60));
        assert_eq!(
            parse(&["-d", "1m", "--warmup", "5s"]).warmup(),
            Duration::from_secs(5)
        );
    }

    #[test]
    fn contradictory_options_are_refused() {
        for args in [
            &["--echo-share", "1.5"][..],
            &["--connections", "5", "--rooms", "10"],
            &["--echo-rate", "0"],
            &["--echo-size", "8"],
            &["--publish-size", "10"],
            &["-d", "5s"],
            &["-d", "30s", "--warmup", "30s"],
        ] {
            assert!(
                matches!(parse(args).validate(), Err(SoakError::Options(_))),
                "{args:?}"
            );
        }
        // All on /echo: no rooms needed.
        assert!(
            parse(&["--echo-share", "1", "--rooms", "0"])
                .validate()
                .is_ok()
        );
    }
}
