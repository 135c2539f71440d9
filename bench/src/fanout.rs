//! Fan-out load on Duplex's rooms (`/ws`, `docs/protocol.md`): M members
//! join one room, P publishers (members too) each publish R binary
//! messages a second, and every member measures each delivery's latency.
//!
//! A publish carries its *scheduled* send time (nanoseconds since the run's
//! epoch) and its publisher's sequence number. Latency is measured from the
//! scheduled time, not the actual send, so a generator that falls behind
//! shows up as latency instead of hiding it (no coordinated omission).
//! Members check each publisher's sequence: a gap is a lost message, a
//! step back a reordering.
//!
//! With `--payload json` the publishes are text `publish` messages of
//! chat-like JSON ([`ChatJson`]), as a browser sends them, the stamp in hex
//! at the start of their `text`; members read it back from the server's
//! `message`. With `--deflate` every connection negotiates
//! permessage-deflate; wire bytes are counted either way.
//!
//! With `--member-url` (repeatable) the receiving members are spread
//! round-robin over those servers while the publishers stay on `--url`:
//! instances that share one Redis (`duplex --redis`) measured as one
//! Duplex. Each connection speaks the protocol version its server's
//! `welcome` announces ([`crate::rooms`]).

use std::borrow::Cow;
use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::Duration;

use clap::Args;
use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};
use tokio::task::{JoinSet, LocalSet};
use tokio::time::{Instant, MissedTickBehavior};

use crate::error::ClientError;
use crate::payload::{ChatJson, PayloadKind};
use crate::procfs::{CpuMeter, Process};
use crate::record::WireBytes;
use crate::rooms;
use crate::target::Target;
use crate::ws::{Client, Message};
use duplex_protocol::frame::OpCode;

/// Bytes of the measurement header at the start of every payload:
/// scheduled send time (u64), publisher index (u32), sequence (u64).
const STAMP: usize = 20;

/// `duplex-bench fanout`.
#[derive(Debug, Clone, Args)]
#[non_exhaustive]
pub struct FanoutOptions {
    /// The rooms endpoint of a Duplex server: the publishers', and the
    /// members' unless --member-url is given.
    #[arg(long, default_value = "ws://127.0.0.1:8080/ws")]
    pub url: Target,

    /// Where the receiving members connect instead of --url; repeat it to
    /// spread them round-robin (member i on the (i mod N)th URL). The
    /// publishers stay on --url. Members split over two instances sharing
    /// one Redis, publisher on the first: `--url ws://A/ws --member-url
    /// ws://A/ws --member-url ws://B/ws`.
    #[arg(long = "member-url", value_name = "URL")]
    pub member_urls: Vec<Target>,

    /// Members that only receive.
    #[arg(short, long, default_value_t = 1000)]
    pub members: usize,

    /// Members that also publish.
    #[arg(short, long, default_value_t = 1)]
    pub publishers: usize,

    /// Publishes per second, per publisher.
    #[arg(short, long, default_value_t = 10.0)]
    pub rate: f64,

    /// Payload bytes per publish (at least the 20-byte measurement stamp);
    /// with `--payload json` the size of the whole `publish` message.
    #[arg(short, long, default_value_t = 64, value_parser = crate::echo::parse_size)]
    pub size: usize,

    /// What is published: `binary` (binary publishes: a stamp, then zeros)
    /// or `json` (text `publish` messages of chat-like JSON, the stamp in
    /// their text; members parse the server's `message`).
    #[arg(long, value_enum, default_value_t = PayloadKind::Binary)]
    pub payload: PayloadKind,

    /// Length of the measurement window.
    #[arg(short, long, default_value = "10s", value_parser = humantime::parse_duration)]
    pub duration: Duration,

    /// Publishing before the window opens, not counted.
    #[arg(long, default_value = "2s", value_parser = humantime::parse_duration)]
    pub warmup: Duration,

    /// How long to wait after the last publish for deliveries in flight.
    #[arg(long, default_value = "2s", value_parser = humantime::parse_duration)]
    pub drain: Duration,

    /// The room's name.
    #[arg(long, default_value = "bench")]
    pub room: String,

    /// Print the result as one JSON object.
    #[arg(long)]
    pub json: bool,

    /// Offer permessage-deflate as Chromium does and fail if the server
    /// declines (see `duplex-bench echo --help`).
    #[arg(long)]
    pub deflate: bool,

    /// The zlib level publishes are compressed at with --deflate (see
    /// `duplex-bench echo --help`).
    #[arg(long, default_value_t = crate::ws::DEFLATE_LEVEL, value_parser = clap::value_parser!(u32).range(0..=9), requires = "deflate")]
    pub deflate_level: u32,

    /// PID of the server: its CPU time in the window, per delivery, from
    /// /proc.
    #[arg(long, value_name = "PID")]
    pub server_pid: Option<u32>,

    /// Another process whose CPU time in the window is reported, per
    /// publish and per delivery (repeatable): a second instance, or the
    /// redis-server instances share with --redis.
    #[arg(long = "cpu-pid", value_name = "PID")]
    pub cpu_pids: Vec<u32>,
}

/// Why a fan-out run could not be made.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FanoutError {
    /// The options cannot work.
    #[error("{0}")]
    Options(&'static str),
    /// The server's address does not resolve.
    #[error("cannot resolve the server's address")]
    Resolve(#[source] std::io::Error),
    /// A member could not connect or join.
    #[error("member {index} could not join")]
    Join {
        /// Which connection.
        index: usize,
        /// What failed.
        #[source]
        source: ClientError,
    },
    /// The server's CPU time cannot be read (`--server-pid`).
    #[error("cannot read the server's CPU time")]
    Cpu(#[source] crate::procfs::ProcError),
    /// The server answered the join with something else.
    #[error("member {index}: unexpected answer to join: {answer}")]
    JoinAnswer {
        /// Which connection.
        index: usize,
        /// What came instead.
        answer: String,
    },
}

/// The result of a run.
#[derive(Debug, Clone, Serialize)]
pub struct FanoutReport {
    /// Receiving connections (members + publishers).
    pub receivers: usize,
    /// `--member-url`, each with the members it got, in the order given;
    /// absent without it (every connection on `url`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub member_urls: Vec<MemberUrl>,
    /// Publishing connections.
    pub publishers: usize,
    /// Scheduled publishes per second, all publishers together.
    pub publish_rate: f64,
    /// Payload bytes per publish.
    pub size: usize,
    /// What was published.
    pub payload: PayloadKind,
    /// permessage-deflate on every connection.
    pub deflate: bool,
    /// Seconds spent connecting and joining every connection.
    pub join_secs: f64,
    /// The measurement window, in seconds.
    pub window_secs: f64,
    /// Publishes scheduled in the window.
    pub published: u64,
    /// Deliveries of window publishes that arrived.
    pub delivered: u64,
    /// `published × receivers`.
    pub expected: u64,
    /// Deliveries that never arrived (gaps, `missed` notices, or still in
    /// flight after the drain).
    pub lost: u64,
    /// Deliveries that arrived after a later one of the same publisher.
    pub reordered: u64,
    /// Deliveries per second in the window.
    pub delivered_per_sec: f64,
    /// Delivery latency percentiles, milliseconds: p50, p90, p99, p99.9,
    /// max.
    pub latency_ms: [f64; 5],
    /// Connections that ended during the run.
    pub dropped_connections: u64,
    /// Bytes on the wire: sent by the publishers per publish in the window,
    /// received by the members per delivery counted (frames with their
    /// headers).
    pub wire: WireBytes,
    /// The server's CPU use in the window, percent of one core
    /// (`--server-pid`).
    pub server_cpu_percent: Option<f64>,
    /// The server's CPU time in the window per delivery counted,
    /// microseconds (`--server-pid`).
    pub server_us_per_delivery: Option<f64>,
    /// `--cpu-pid`: each process's CPU use in the window; absent without
    /// it.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub cpu_pids: Vec<ProcessCpu>,
}

/// The CPU use of one `--cpu-pid` process in the window.
#[derive(Debug, Clone, Serialize)]
pub struct ProcessCpu {
    /// Its PID.
    pub pid: u32,
    /// Percent of one core.
    pub percent: Option<f64>,
    /// Its CPU time per publish in the window, microseconds.
    pub us_per_publish: Option<f64>,
    /// Its CPU time per delivery counted, microseconds.
    pub us_per_delivery: Option<f64>,
}

/// One `--member-url` and the members that connected to it.
#[derive(Debug, Clone, Serialize)]
pub struct MemberUrl {
    /// The URL as given.
    pub url: String,
    /// Receiving members on it.
    pub members: usize,
}

/// Which `--member-url` connection `index` uses: `Some(i)` for the i-th,
/// `None` for `--url`. Connections `0..members` are the receiving members,
/// spread round-robin over the `member_urls` URLs; the publishers, after
/// them, stay on `--url`, as every connection does when there are none.
fn member_url_of(index: usize, members: usize, member_urls: usize) -> Option<usize> {
    (index < members && member_urls > 0).then(|| index % member_urls)
}

/// State every task shares (one thread: no atomics).
struct Shared {
    epoch: Instant,
    /// The window, as offsets from `epoch` in ns: publishes scheduled
    /// inside it are counted.
    window: Cell<(u64, u64)>,
    latency: RefCell<Histogram<u64>>,
    delivered: Cell<u64>,
    reordered: Cell<u64>,
    /// Publishes scheduled in the window, all publishers.
    published: Cell<u64>,
    dropped: Cell<u64>,
    /// Wire bytes of the publishes scheduled in the window, and of the
    /// deliveries counted.
    wire_sent: Cell<u64>,
    wire_received: Cell<u64>,
    /// Set when publishing stops.
    stop: Cell<bool>,
    payload: PayloadKind,
}

/// Runs the fan-out load.
///
/// # Errors
/// See [`FanoutError`].
pub async fn run(options: &FanoutOptions) -> Result<FanoutReport, FanoutError> {
    if options.size < STAMP {
        return Err(FanoutError::Options("--size must be at least 20 bytes"));
    }
    if options.payload == PayloadKind::Json && options.size < ChatJson::min_size(&options.room) {
        return Err(FanoutError::Options(
            "--payload json needs --size of at least 84 bytes plus the room name's length",
        ));
    }
    if options.publishers == 0 || options.rate <= 0.0 {
        return Err(FanoutError::Options(
            "need a publisher and a positive --rate",
        ));
    }
    LocalSet::new().run_until(run_local(options)).await
}

async fn run_local(options: &FanoutOptions) -> Result<FanoutReport, FanoutError> {
    let addr = options.url.resolve().await.map_err(FanoutError::Resolve)?;
    let mut member_addrs = Vec::with_capacity(options.member_urls.len());
    for url in &options.member_urls {
        member_addrs.push(url.resolve().await.map_err(FanoutError::Resolve)?);
    }
    let total = options.members + options.publishers;
    let latency = Histogram::new(3)
        .map_err(|_| FanoutError::Options("cannot build the latency histogram"))?;
    let shared = Rc::new(Shared {
        epoch: Instant::now(),
        window: Cell::new((u64::MAX, u64::MAX)),
        latency: RefCell::new(latency),
        delivered: Cell::new(0),
        reordered: Cell::new(0),
        published: Cell::new(0),
        dropped: Cell::new(0),
        wire_sent: Cell::new(0),
        wire_received: Cell::new(0),
        stop: Cell::new(false),
        payload: options.payload,
    });

    let joining = Instant::now();
    let mut clients = Vec::with_capacity(total);
    let mut per_member_url = vec![0; options.member_urls.len()];
    for index in 0..total {
        let join = |source| match source {
            ClientError::Unexpected(answer) => FanoutError::JoinAnswer { index, answer },
            source => FanoutError::Join { index, source },
        };
        let (url, addr) = match member_url_of(index, options.members, member_addrs.len()) {
            Some(at) => {
                per_member_url[at] += 1;
                (&options.member_urls[at], member_addrs[at])
            }
            None => (&options.url, addr),
        };
        let mut client = Client::connect(
            addr,
            url,
            index as u64,
            options.size + 64,
            options.deflate.then_some(options.deflate_level),
        )
        .await
        .map_err(join)?;
        let version = rooms::join(&mut client, &options.room, &format!("bench{index}"))
            .await
            .map_err(join)?;
        clients.push((client, version));
        if (index + 1) % 1000 == 0 {
            eprintln!("joined {}/{total}", index + 1);
        }
    }
    let join_secs = joining.elapsed().as_secs_f64();

    let publishers = clients.split_off(options.members);
    let mut tasks = JoinSet::new();
    for (client, _) in clients {
        tasks.spawn_local(member(Rc::clone(&shared), client, options.publishers));
    }
    let ns = |d: Duration| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
    let start = shared.epoch.elapsed() + Duration::from_millis(100);
    let window = (
        ns(start + options.warmup),
        ns(start + options.warmup + options.duration),
    );
    shared.window.set(window);
    for (index, (client, version)) in publishers.into_iter().enumerate() {
        tasks.spawn_local(publisher(
            Rc::clone(&shared),
            client,
            version,
            index,
            options.clone(),
            // Spread the publishers over one interval.
            start
                + Duration::from_secs_f64(index as f64 / options.rate / options.publishers as f64),
            options.publishers,
        ));
    }
    let end = shared.epoch + start + options.warmup + options.duration;
    tokio::time::sleep_until(shared.epoch + start + options.warmup).await;
    let server_cpu = match options.server_pid {
        Some(pid) => Some(CpuMeter::start(Process::Pid(pid)).map_err(FanoutError::Cpu)?),
        None => None,
    };
    let others = options
        .cpu_pids
        .iter()
        .map(|&pid| CpuMeter::start(Process::Pid(pid)).map(|meter| (pid, meter)))
        .collect::<Result<Vec<_>, _>>()
        .map_err(FanoutError::Cpu)?;
    tokio::time::sleep_until(end).await;
    let server_percent = server_cpu.as_ref().and_then(CpuMeter::percent);
    let server_used = server_cpu.as_ref().and_then(CpuMeter::used);
    let others: Vec<_> = others
        .iter()
        .map(|(pid, meter)| (*pid, meter.percent(), meter.used()))
        .collect();
    shared.stop.set(true);
    let expected_per_publish = total as u64;
    let drain_until = Instant::now() + options.drain;
    while Instant::now() < drain_until
        && shared.delivered.get() < shared.published.get() * expected_per_publish
    {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    tasks.abort_all();

    let published = shared.published.get();
    let delivered = shared.delivered.get();
    let expected = published * expected_per_publish;
    let histogram = shared.latency.borrow();
    let ms = |q: f64| histogram.value_at_quantile(q) as f64 / 1e6;
    Ok(FanoutReport {
        receivers: total,
        member_urls: options
            .member_urls
            .iter()
            .zip(per_member_url)
            .map(|(url, members)| MemberUrl {
                url: url.to_string(),
                members,
            })
            .collect(),
        publishers: options.publishers,
        publish_rate: options.rate * options.publishers as f64,
        size: options.size,
        join_secs,
        window_secs: options.duration.as_secs_f64(),
        published,
        delivered,
        expected,
        lost: expected.saturating_sub(delivered),
        reordered: shared.reordered.get(),
        delivered_per_sec: delivered as f64 / options.duration.as_secs_f64(),
        latency_ms: [
            ms(0.5),
            ms(0.9),
            ms(0.99),
            ms(0.999),
            histogram.max() as f64 / 1e6,
        ],
        dropped_connections: shared.dropped.get(),
        payload: options.payload,
        deflate: options.deflate,
        wire: WireBytes {
            sent_per_message: if published > 0 {
                shared.wire_sent.get() as f64 / published as f64
            } else {
                0.0
            },
            ..WireBytes::new(
                shared.wire_sent.get(),
                shared.wire_received.get(),
                delivered,
            )
        },
        server_cpu_percent: server_percent,
        server_us_per_delivery: server_used
            .filter(|_| delivered > 0)
            .map(|used| used.as_secs_f64() * 1e6 / delivered as f64),
        cpu_pids: others
            .into_iter()
            .map(|(pid, percent, used)| {
                let per = |count: u64| {
                    used.filter(|_| count > 0)
                        .map(|used| used.as_secs_f64() * 1e6 / count as f64)
                };
                ProcessCpu {
                    pid,
                    percent,
                    us_per_publish: per(published),
                    us_per_delivery: per(delivered),
                }
            })
            .collect(),
    })
}

/// Reads deliveries and records the latency of those scheduled in the
/// window.
async fn member(shared: Rc<Shared>, mut client: Client, publishers: usize) {
    let mut last_seq = vec![None::<u64>; publishers];
    let mut read = client.bytes_received();
    loop {
        let message = match client.recv().await {
            Ok(message) => message,
            Err(_) => {
                shared.dropped.set(shared.dropped.get() + 1);
                return;
            }
        };
        let moved = client.bytes_received();
        // `missed` notices show up as lost deliveries anyway.
        if let Some(stamp) = stamp_of(shared.payload, message, client.payload(&message)) {
            record(&shared, stamp, moved - read, &mut last_seq);
        }
        read = moved;
    }
}

/// A delivery's stamp: scheduled time, publisher, sequence.
type Stamp = (u64, usize, u64);

/// The stamp of a delivery, `None` for any other message.
fn stamp_of(kind: PayloadKind, message: Message, payload: &[u8]) -> Option<Stamp> {
    match (kind, message.opcode) {
        (PayloadKind::Binary, OpCode::Binary) => {
            let stamp = rooms::delivery_payload(payload)?.get(..STAMP)?;
            let field = |range: std::ops::Range<usize>| {
                let mut bytes = [0u8; 8];
                bytes[..range.len()].copy_from_slice(&stamp[range]);
                u64::from_le_bytes(bytes)
            };
            Some((field(0..8), field(8..12) as usize, field(12..20)))
        }
        (PayloadKind::Json, OpCode::Text) => {
            /// The fields of a `message` the stamp is read from.
            #[derive(Deserialize)]
            struct Delivered<'a> {
                #[serde(rename = "type", borrow)]
                kind: Cow<'a, str>,
                #[serde(borrow, default)]
                text: Option<Cow<'a, str>>,
            }
            let delivered: Delivered<'_> = serde_json::from_slice(payload).ok()?;
            if delivered.kind != "message" {
                return None;
            }
            let (seq, scheduled, publisher) = ChatJson::read_stamp(delivered.text?.as_bytes())?;
            Some((scheduled, publisher as usize, seq))
        }
        _ => None,
    }
}

/// Counts one delivery, and the `wire` bytes read for it, if its publish
/// was scheduled in the window.
fn record(shared: &Shared, stamp: Stamp, wire: u64, last_seq: &mut [Option<u64>]) {
    let now = u64::try_from(shared.epoch.elapsed().as_nanos()).unwrap_or(u64::MAX);
    let (scheduled, publisher, seq) = stamp;
    if let Some(last) = last_seq.get_mut(publisher) {
        if last.is_some_and(|last| seq <= last) {
            shared.reordered.set(shared.reordered.get() + 1);
        }
        *last = Some(seq);
    }
    let (open, close) = shared.window.get();
    if (open..close).contains(&scheduled) {
        shared.delivered.set(shared.delivered.get() + 1);
        shared.wire_received.set(shared.wire_received.get() + wire);
        let _ = shared
            .latency
            .borrow_mut()
            .record(now.saturating_sub(scheduled).max(1));
    }
}

/// Publishes at the fixed rate (stamped with the scheduled time) in its
/// server's protocol `version`, and reads its own deliveries like any
/// member.
async fn publisher(
    shared: Rc<Shared>,
    mut client: Client,
    version: u8,
    index: usize,
    options: FanoutOptions,
    first: Duration,
    publishers: usize,
) {
    let (mut read, mut write) = client.split();
    let reading = {
        let shared = Rc::clone(&shared);
        async move {
            let mut last_seq = vec![None::<u64>; publishers];
            let mut received = read.bytes_received();
            while let Ok(message) = read.recv().await {
                let moved = read.bytes_received();
                if let Some(stamp) = stamp_of(shared.payload, message, read.payload(&message)) {
                    record(&shared, stamp, moved - received, &mut last_seq);
                }
                received = moved;
            }
            shared.dropped.set(shared.dropped.get() + 1);
        }
    };
    let publishing = async {
        let mut ticks = tokio::time::interval_at(
            shared.epoch + first,
            Duration::from_secs_f64(1.0 / options.rate),
        );
        // Late ticks fire at once: each is still stamped with its
        // scheduled time, so lateness counts as latency.
        ticks.set_missed_tick_behavior(MissedTickBehavior::Burst);
        let mut payload = vec![0u8; options.size];
        let mut json = (options.payload == PayloadKind::Json)
            .then(|| ChatJson::new(&options.room, index as u32, options.size));
        let mut sent = write.bytes_sent();
        for seq in 0u64.. {
            let scheduled = ticks.tick().await - shared.epoch;
            if shared.stop.get() {
                break;
            }
            let scheduled = u64::try_from(scheduled.as_nanos()).unwrap_or(u64::MAX);
            let (open, close) = shared.window.get();
            let counted = (open..close).contains(&scheduled);
            if counted {
                shared.published.set(shared.published.get() + 1);
            }
            let outcome = if let Some(json) = json.as_mut() {
                let text = json.stamp(seq, scheduled, index as u32);
                write.send(OpCode::Text, text).await
            } else {
                payload[..8].copy_from_slice(&scheduled.to_le_bytes());
                payload[8..12].copy_from_slice(&(index as u32).to_le_bytes());
                payload[12..20].copy_from_slice(&seq.to_le_bytes());
                let Ok(frame) = rooms::encode_publish(version, &options.room, &payload) else {
                    break;
                };
                write.send_binary(&frame).await
            };
            if outcome.is_err() {
                break;
            }
            let moved = write.bytes_sent();
            if counted {
                shared.wire_sent.set(shared.wire_sent.get() + moved - sent);
            }
            sent = moved;
        }
    };
    // Joined, not raced: when publishing stops, this member still reads
    // the deliveries in flight, its own last publish included (with
    // latencies above the publish interval, racing the two lost it).
    tokio::join!(reading, publishing);
}

impl FanoutReport {
    /// The result as lines of text.
    #[must_use]
    pub fn to_text(&self) -> String {
        let [p50, p90, p99, p999, max] = self.latency_ms;
        let kind = self.payload.label();
        let deflate = if self.deflate {
            ", permessage-deflate"
        } else {
            ""
        };
        let server = match (self.server_cpu_percent, self.server_us_per_delivery) {
            (Some(percent), Some(us)) => {
                format!("server cpu {percent:.0}% ({us:.2} µs per delivery)\n")
            }
            (Some(percent), None) => format!("server cpu {percent:.0}%\n"),
            _ => String::new(),
        };
        let others: String = self
            .cpu_pids
            .iter()
            .map(|cpu| {
                let percent = cpu.percent.map_or("?".into(), |p| format!("{p:.0}%"));
                let publish = cpu
                    .us_per_publish
                    .map_or("?".into(), |us| format!("{us:.1}"));
                format!("pid {} cpu {percent} ({publish} µs per publish)\n", cpu.pid)
            })
            .collect();
        let spread = if self.member_urls.is_empty() {
            String::new()
        } else {
            let urls: Vec<String> = self
                .member_urls
                .iter()
                .map(|url| format!("{} ({})", url.url, url.members))
                .collect();
            format!("members on {}; publishers on --url\n", urls.join(", "))
        };
        format!(
            "fan-out: {} receivers in one room, {} publisher(s), {:.1} publishes/s, {} B {kind} payloads{deflate}\n\
             {spread}\
             joined in {:.1} s; window {:.1} s\n\
             published {}, delivered {} of {} ({:.0} deliveries/s), lost {}, reordered {}, dropped connections {}\n\
             delivery latency ms: p50 {p50:.2}  p90 {p90:.2}  p99 {p99:.2}  p99.9 {p999:.2}  max {max:.2}\n\
             wire: {:.0} B sent per publish, {:.0} B received per delivery (frames and their headers)\n\
             {server}{others}",
            self.receivers,
            self.publishers,
            self.publish_rate,
            self.size,
            self.join_secs,
            self.window_secs,
            self.published,
            self.delivered,
            self.expected,
            self.delivered_per_sec,
            self.lost,
            self.reordered,
            self.dropped_connections,
            self.wire.sent_per_message,
            self.wire.received_per_message,
        )
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    /// `duplex-bench fanout`'s options alone.
    #[derive(Debug, Parser)]
    struct Cli {
        #[command(flatten)]
        options: FanoutOptions,
    }

    fn options(args: &[&str]) -> FanoutOptions {
        let argv = std::iter::once("fanout").chain(args.iter().copied());
        Cli::try_parse_from(argv).expect("valid options").options
    }

    #[test]
    fn members_go_round_robin_over_member_urls_and_publishers_stay_on_url() {
        let options = options(&[
            "--url",
            "ws://a:1/ws",
            "--member-url",
            "ws://a:1/ws",
            "--member-url",
            "ws://b:2/ws",
            "--members",
            "5",
            "--publishers",
            "2",
        ]);
        let urls: Vec<String> = options.member_urls.iter().map(Target::to_string).collect();
        assert_eq!(urls, ["ws://a:1/ws", "ws://b:2/ws"]);
        let total = options.members + options.publishers;
        let slots: Vec<Option<usize>> = (0..total)
            .map(|index| member_url_of(index, options.members, options.member_urls.len()))
            .collect();
        // Members 0..5 alternate A, B; the two publishers are on --url.
        assert_eq!(
            slots,
            [Some(0), Some(1), Some(0), Some(1), Some(0), None, None]
        );
    }

    #[test]
    fn without_member_urls_every_connection_is_on_url() {
        let options = options(&["--members", "3"]);
        assert!(options.member_urls.is_empty());
        assert!((0..4).all(|index| member_url_of(index, 3, 0).is_none()));
    }

    #[test]
    fn the_text_names_the_member_urls_only_when_there_are_some() {
        let mut report = FanoutReport {
            receivers: 3,
            member_urls: Vec::new(),
            publishers: 1,
            publish_rate: 1.0,
            size: 64,
            payload: PayloadKind::Binary,
            deflate: false,
            join_secs: 0.1,
            window_secs: 1.0,
            published: 1,
            delivered: 3,
            expected: 3,
            lost: 0,
            reordered: 0,
            delivered_per_sec: 3.0,
            latency_ms: [1.0; 5],
            dropped_connections: 0,
            wire: WireBytes::new(0, 0, 0),
            server_cpu_percent: None,
            server_us_per_delivery: None,
            cpu_pids: Vec::new(),
        };
        assert!(!report.to_text().contains("members on"));
        let json = serde_json::to_value(&report).expect("serialises");
        assert!(
            json.get("member_urls").is_none(),
            "unchanged without the flag"
        );
        report.member_urls = vec![
            MemberUrl {
                url: "ws://a:1/ws".into(),
                members: 1,
            },
            MemberUrl {
                url: "ws://b:2/ws".into(),
                members: 1,
            },
        ];
        assert!(
            report
                .to_text()
                .contains("members on ws://a:1/ws (1), ws://b:2/ws (1); publishers on --url\n")
        );
    }
}
