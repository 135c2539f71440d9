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

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::Duration;

use clap::Args;
use duplex_protocol::{ServerMessage, binary};
use hdrhistogram::Histogram;
use serde::Serialize;
use tokio::task::{JoinSet, LocalSet};
use tokio::time::{Instant, MissedTickBehavior};

use crate::error::ClientError;
use crate::target::Target;
use crate::ws::Client;
use duplex_protocol::frame::OpCode;

/// Bytes of the measurement header at the start of every payload:
/// scheduled send time (u64), publisher index (u32), sequence (u64).
const STAMP: usize = 20;

/// `duplex-bench fanout`.
#[derive(Debug, Clone, Args)]
#[non_exhaustive]
pub struct FanoutOptions {
    /// The rooms endpoint of a Duplex server.
    #[arg(long, default_value = "ws://127.0.0.1:8080/ws")]
    pub url: Target,

    /// Members that only receive.
    #[arg(short, long, default_value_t = 1000)]
    pub members: usize,

    /// Members that also publish.
    #[arg(short, long, default_value_t = 1)]
    pub publishers: usize,

    /// Publishes per second, per publisher.
    #[arg(short, long, default_value_t = 10.0)]
    pub rate: f64,

    /// Payload bytes per publish (at least the 20-byte measurement stamp).
    #[arg(short, long, default_value_t = 64)]
    pub size: usize,

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
    /// Publishing connections.
    pub publishers: usize,
    /// Scheduled publishes per second, all publishers together.
    pub publish_rate: f64,
    /// Payload bytes per publish.
    pub size: usize,
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
    /// Set when publishing stops.
    stop: Cell<bool>,
}

/// Runs the fan-out load.
///
/// # Errors
/// See [`FanoutError`].
pub async fn run(options: &FanoutOptions) -> Result<FanoutReport, FanoutError> {
    if options.size < STAMP {
        return Err(FanoutError::Options("--size must be at least 20 bytes"));
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
        stop: Cell::new(false),
    });

    let joining = Instant::now();
    let mut clients = Vec::with_capacity(total);
    for index in 0..total {
        let join = |source| FanoutError::Join { index, source };
        let mut client = Client::connect(
            addr,
            &options.url,
            index as u64,
            options.size + 64,
            options.deflate,
        )
        .await
        .map_err(join)?;
        let request = serde_json::json!({
            "type": "join", "room": options.room, "name": format!("bench{index}")
        });
        client.send_text(&request.to_string()).await.map_err(join)?;
        // The welcome, presence events, then our `joined`.
        loop {
            let message = client.recv().await.map_err(join)?;
            let text = client.payload(&message);
            match serde_json::from_slice::<ServerMessage>(text) {
                Ok(ServerMessage::Joined { .. }) => break,
                Ok(
                    ServerMessage::Welcome { .. }
                    | ServerMessage::MemberJoined { .. }
                    | ServerMessage::MemberLeft { .. },
                ) => {}
                _ => {
                    return Err(FanoutError::JoinAnswer {
                        index,
                        answer: String::from_utf8_lossy(text).into_owned(),
                    });
                }
            }
        }
        clients.push(client);
        if (index + 1) % 1000 == 0 {
            eprintln!("joined {}/{total}", index + 1);
        }
    }
    let join_secs = joining.elapsed().as_secs_f64();

    let publishers = clients.split_off(options.members);
    let mut tasks = JoinSet::new();
    for client in clients {
        tasks.spawn_local(member(Rc::clone(&shared), client, options.publishers));
    }
    let ns = |d: Duration| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
    let start = shared.epoch.elapsed() + Duration::from_millis(100);
    let window = (
        ns(start + options.warmup),
        ns(start + options.warmup + options.duration),
    );
    shared.window.set(window);
    for (index, client) in publishers.into_iter().enumerate() {
        tasks.spawn_local(publisher(
            Rc::clone(&shared),
            client,
            index,
            options.clone(),
            // Spread the publishers over one interval.
            start
                + Duration::from_secs_f64(index as f64 / options.rate / options.publishers as f64),
            options.publishers,
        ));
    }
    let end = shared.epoch + start + options.warmup + options.duration;
    tokio::time::sleep_until(end).await;
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
    })
}

/// Reads deliveries and records the latency of those scheduled in the
/// window.
async fn member(shared: Rc<Shared>, mut client: Client, publishers: usize) {
    let mut last_seq = vec![None::<u64>; publishers];
    loop {
        let message = match client.recv().await {
            Ok(message) => message,
            Err(_) => {
                shared.dropped.set(shared.dropped.get() + 1);
                return;
            }
        };
        if message.opcode != OpCode::Binary {
            // `missed` notices show up as lost deliveries anyway.
            continue;
        }
        record(&shared, client.payload(&message), &mut last_seq);
    }
}

fn record(shared: &Shared, frame: &[u8], last_seq: &mut [Option<u64>]) {
    let now = u64::try_from(shared.epoch.elapsed().as_nanos()).unwrap_or(u64::MAX);
    let Ok(delivery) = binary::decode_delivery(frame) else {
        return;
    };
    let Some(stamp) = delivery.payload.get(..STAMP) else {
        return;
    };
    let field = |range: std::ops::Range<usize>| {
        let mut bytes = [0u8; 8];
        bytes[..range.len()].copy_from_slice(&stamp[range]);
        u64::from_le_bytes(bytes)
    };
    let (scheduled, publisher, seq) = (field(0..8), field(8..12) as usize, field(12..20));
    if let Some(last) = last_seq.get_mut(publisher) {
        if last.is_some_and(|last| seq <= last) {
            shared.reordered.set(shared.reordered.get() + 1);
        }
        *last = Some(seq);
    }
    let (open, close) = shared.window.get();
    if (open..close).contains(&scheduled) {
        shared.delivered.set(shared.delivered.get() + 1);
        let _ = shared
            .latency
            .borrow_mut()
            .record(now.saturating_sub(scheduled).max(1));
    }
}

/// Publishes at the fixed rate (stamped with the scheduled time) and reads
/// its own deliveries like any member.
async fn publisher(
    shared: Rc<Shared>,
    mut client: Client,
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
            while let Ok(message) = read.recv().await {
                if message.opcode == OpCode::Binary {
                    record(&shared, read.payload(&message), &mut last_seq);
                }
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
        for seq in 0u64.. {
            let scheduled = ticks.tick().await - shared.epoch;
            if shared.stop.get() {
                break;
            }
            let scheduled = u64::try_from(scheduled.as_nanos()).unwrap_or(u64::MAX);
            let (open, close) = shared.window.get();
            if (open..close).contains(&scheduled) {
                shared.published.set(shared.published.get() + 1);
            }
            payload[..8].copy_from_slice(&scheduled.to_le_bytes());
            payload[8..12].copy_from_slice(&(index as u32).to_le_bytes());
            payload[12..20].copy_from_slice(&seq.to_le_bytes());
            let Ok(frame) = binary::encode_publish(&options.room, &payload) else {
                break;
            };
            if write.send_binary(&frame).await.is_err() {
                break;
            }
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
        format!(
            "fan-out: {} receivers in one room, {} publisher(s), {:.1} publishes/s, {} B payloads\n\
             joined in {:.1} s; window {:.1} s\n\
             published {}, delivered {} of {} ({:.0} deliveries/s), lost {}, reordered {}, dropped connections {}\n\
             delivery latency ms: p50 {p50:.2}  p90 {p90:.2}  p99 {p99:.2}  p99.9 {p999:.2}  max {max:.2}\n",
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
        )
    }
}
