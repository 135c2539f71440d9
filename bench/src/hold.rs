//! Idle connections: open N, keep them open without sending anything
//! (pings are answered), and with `--server-pid` measure how much the
//! server's resident memory grew per connection. With `--echo-first` each
//! connection first sends one message and waits for its echo, so the
//! figure is that of a connection that has been used and gone quiet.
//! With `--join ROOM` (on `/ws`) each connection first joins a room, so
//! the figure is that of an idle room member.

use std::borrow::Cow;
use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::{Duration, Instant};

use clap::Args;
use tokio::sync::{Notify, watch};
use tokio::task::{JoinSet, LocalSet};

use crate::connect::{ConnectOptions, Dialer, no_connection};
use crate::echo::{check_opcode, parse_size, watch_ctrl_c};
use crate::error::{BenchError, ClientError};
use crate::output::{OutputOptions, Progress};
use crate::payload::Payload;
use crate::procfs::{CpuMeter, Process};
use crate::record::{CpuUse, MemoryUse, Mode, RunRecord};
use crate::stats::Recorder;
use crate::ws::Client;

/// How long each connection waits for the server's Close frame at the end.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(2);

/// How long a connection waits for the echo of its `--echo-first`
/// message: the echo run's default `--timeout`. A server that takes longer
/// for one small message is broken, not slow.
const ECHO_TIMEOUT: Duration = Duration::from_secs(10);

/// Options of `duplex-bench hold`.
#[derive(Debug, Clone, Args)]
pub struct HoldOptions {
    /// Where to connect and how fast.
    #[command(flatten)]
    pub connect: ConnectOptions,

    /// How long to keep the connections once all are open.
    #[arg(short, long, default_value = "10s", value_parser = humantime::parse_duration)]
    pub duration: Duration,

    /// Pause between the last connection opening (with --echo-first: the
    /// last echo) and reading the server's memory, so lazily allocated
    /// buffers and deferred frees have settled. A server may keep buffers
    /// until its keepalive finds a connection quiet: to measure after that,
    /// settle longer than two of its ping intervals (Duplex frees read
    /// buffers at the first tick with no input since the previous one), e.g.
    /// `duplex --ping-interval 1s` with `--settle 3s`.
    #[arg(long, default_value = "1s", value_parser = humantime::parse_duration)]
    pub settle: Duration,

    /// Before holding, each connection sends one binary message of
    /// --echo-size bytes and waits for its echo (checked byte for byte):
    /// memory as users see it, for connections that have been used and
    /// gone quiet, not only ones that never sent a byte. See --settle for
    /// reading memory after the server's keepalive tick.
    #[arg(long)]
    pub echo_first: bool,

    /// Payload bytes of the --echo-first message; the default is the echo
    /// run's default --size. B, KiB or MiB suffixes accepted.
    #[arg(long, default_value = "20", value_parser = parse_size, requires = "echo_first")]
    pub echo_size: usize,

    /// Before holding, each connection joins this room (the URL must be a
    /// Duplex rooms endpoint, `ws://HOST:PORT/ws`) and waits for `joined`:
    /// memory per idle room member. Anything the room sends meanwhile
    /// (presence events) is read and dropped. Give the server a
    /// `--presence-limit` below the connections, or the first members read
    /// an event for every later join.
    #[arg(long, value_name = "ROOM", conflicts_with = "echo_first")]
    pub join: Option<String>,

    /// With --join: spread the connections round-robin over this many
    /// rooms, ROOM-0 … ROOM-(N-1) (N = --connections: a room each). 1: all
    /// in ROOM.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..), requires = "join")]
    pub rooms: u64,

    /// Result format, labels and what else to measure.
    #[command(flatten)]
    pub output: OutputOptions,
}

/// State the connection tasks of a hold run share.
#[derive(Debug)]
struct Shared {
    recorder: Rc<RefCell<Recorder>>,
    /// Connections open right now.
    open: Cell<usize>,
    /// Connect attempts finished, successful or not.
    attempted: Cell<usize>,
    /// Signalled when every attempt has finished.
    all_attempted: Notify,
    total: usize,
    /// `--echo-size` with `--echo-first`: the message each connection
    /// sends before it is held.
    echo_first: Option<usize>,
    /// `--join` and `--rooms`: the room each connection joins before it is
    /// held.
    join: Option<(String, u64)>,
}

/// Opens the connections, holds them, and returns the result.
///
/// # Errors
/// Invalid options, a URL that does not resolve, not one connection opened,
/// or a `--server-pid` whose memory cannot be read.
pub async fn run(options: &HoldOptions, progress: &Progress) -> Result<RunRecord, BenchError> {
    options.connect.validate().map_err(BenchError::Options)?;
    LocalSet::new()
        .run_until(run_local(options, progress))
        .await
}

async fn run_local(options: &HoldOptions, progress: &Progress) -> Result<RunRecord, BenchError> {
    let (url, addr) = options.connect.resolve().await?;
    let server = options.output.server_pid.map(Process::Pid);
    let rss_before = server.map(Process::rss_kib).transpose()?;

    let interrupted = Rc::new(Cell::new(false));
    let _ctrl_c = watch_ctrl_c(Rc::clone(&interrupted));
    let recorder = Rc::new(RefCell::new(Recorder::new()));
    let total = options.connect.connections;
    let shared = Rc::new(Shared {
        recorder: Rc::clone(&recorder),
        open: Cell::new(0),
        attempted: Cell::new(0),
        all_attempted: Notify::new(),
        total,
        echo_first: options.echo_first.then_some(options.echo_size),
        join: options.join.clone().map(|room| (room, options.rooms)),
    });
    let message_size = shared.echo_first.unwrap_or(0);
    let dialer = Rc::new(Dialer::new(
        addr,
        &options.connect,
        message_size,
        Rc::clone(&recorder),
    ));
    let (stop, stopped) = watch::channel(false);

    progress.spin(format!("connecting 0/{total}"));
    let mut tasks = JoinSet::new();
    for index in 0..total {
        tasks.spawn_local(hold_one(
            Rc::clone(&shared),
            Rc::clone(&dialer),
            index,
            stopped.clone(),
            Rc::clone(&interrupted),
        ));
    }

    // Every attempt finished (or Ctrl-C), reporting progress meanwhile.
    loop {
        tokio::select! {
            () = shared.all_attempted.notified() => break,
            () = tokio::time::sleep(Duration::from_millis(250)) => {
                if interrupted.get() {
                    break;
                }
                progress.spin(format!(
                    "connecting {}/{total} ({} open)",
                    shared.attempted.get(),
                    shared.open.get()
                ));
            }
        }
    }
    let connected = shared.open.get();
    if connected == 0 {
        return Err(no_connection(url, total, &recorder.borrow()));
    }

    progress.spin(format!("{connected} open: settling"));
    sleep_unless(options.settle, &interrupted).await;
    let held_at_reading = shared.open.get();
    let memory = match (server, rss_before) {
        (Some(server), Some(before)) => {
            let after = server.rss_kib()?;
            Some(MemoryUse {
                server_rss_before_kib: before,
                server_rss_after_kib: after,
                per_connection_kib: after.saturating_sub(before) as f64
                    / held_at_reading.max(1) as f64,
            })
        }
        _ => None,
    };

    let started = Instant::now();
    let generator_cpu = CpuMeter::start(Process::Current).ok();
    let server_cpu = server.and_then(|s| CpuMeter::start(s).ok());
    progress.bar(
        options.duration.as_millis() as u64,
        format!("holding {held_at_reading}"),
    );
    let hold = async {
        while started.elapsed() < options.duration && !interrupted.get() {
            tokio::time::sleep(Duration::from_millis(100)).await;
            progress.update(
                started.elapsed().as_millis() as u64,
                format!("holding {}", shared.open.get()),
            );
        }
    };
    hold.await;
    let seconds = started.elapsed().as_secs_f64();
    let cpu = CpuUse {
        generator_percent: generator_cpu.and_then(|m| m.percent()),
        server_percent: server_cpu.and_then(|m| m.percent()),
        server_us_per_message: None,
    };

    progress.spin("closing connections".into());
    // Receivers live in the tasks; a send error only means all have ended.
    let _ = stop.send(true);
    while tasks.join_next().await.is_some() {}
    progress.finish();

    let recorder = recorder.borrow();
    Ok(RunRecord {
        tool: crate::TOOL.into(),
        label: options.output.label.clone(),
        mode: Mode::Hold,
        url,
        connections: total,
        connected,
        payload_bytes: message_size,
        payload: crate::payload::PayloadKind::Binary,
        deflate: options.connect.deflate,
        target_rate: None,
        seconds,
        messages: 0,
        messages_per_sec: 0.0,
        megabytes_per_sec: 0.0,
        latency_us: None,
        connect_ms: recorder.connect_ms(),
        errors: recorder.errors().clone(),
        error_samples: recorder.error_samples().clone(),
        cpu,
        memory,
        wire: None,
    })
}

async fn sleep_unless(duration: Duration, interrupted: &Cell<bool>) {
    let end = Instant::now() + duration;
    while Instant::now() < end && !interrupted.get() {
        let left = end.saturating_duration_since(Instant::now());
        tokio::time::sleep(left.min(Duration::from_millis(100))).await;
    }
}

/// Opens connection `index`, with `--echo-first` has one message echoed,
/// and keeps it until `stop` turns true, answering pings; a connection the
/// server ends, or whose echo is wrong or late, counts as an error.
async fn hold_one(
    shared: Rc<Shared>,
    dialer: Rc<Dialer>,
    index: usize,
    mut stop: watch::Receiver<bool>,
    interrupted: Rc<Cell<bool>>,
) {
    let mut client = if interrupted.get() {
        None
    } else {
        dialer.open(index).await
    };
    // Counted as attempted only after the echo, so memory is read after
    // every connection has had its message answered.
    if let (Some(open), Some(size)) = (client.as_mut(), shared.echo_first)
        && let Err(error) = echo_once(open, index, size).await
    {
        shared.recorder.borrow_mut().record_error(&error);
        client = None;
    }
    if let (Some(open), Some((room, rooms))) = (client.as_mut(), shared.join.as_ref())
        && let Err(error) = join_room(open, index, room, *rooms).await
    {
        shared.recorder.borrow_mut().record_error(&error);
        client = None;
    }
    shared.attempted.set(shared.attempted.get() + 1);
    if shared.attempted.get() == shared.total {
        shared.all_attempted.notify_one();
    }
    let Some(mut client) = client else {
        return;
    };
    shared.open.set(shared.open.get() + 1);
    let ended = loop {
        tokio::select! {
            received = client.recv() => match received {
                // An idle connection should receive nothing; ignore it.
                Ok(_) => {}
                Err(error) => break Some(error),
            },
            _ = stop.wait_for(|stop| *stop) => break None,
        }
    };
    shared.open.set(shared.open.get() - 1);
    match ended {
        None => drop(client.close(CLOSE_TIMEOUT).await),
        Some(error) => shared.recorder.borrow_mut().record_error(&error),
    }
}

/// Which room connection `index` joins: `room`, or with `rooms` above 1
/// `room-(index mod rooms)`.
fn room_of(room: &str, rooms: u64, index: usize) -> Cow<'_, str> {
    if rooms <= 1 {
        Cow::Borrowed(room)
    } else {
        Cow::Owned(format!("{room}-{}", index as u64 % rooms))
    }
}

/// Joins connection `index` to its room ([`room_of`]), within the time an
/// echo may take.
async fn join_room(
    client: &mut Client,
    index: usize,
    room: &str,
    rooms: u64,
) -> Result<(), ClientError> {
    let (room, name) = (room_of(room, rooms, index), format!("hold{index}"));
    tokio::time::timeout(ECHO_TIMEOUT, crate::rooms::join(client, &room, &name))
        .await
        .map_err(|_| ClientError::Timeout(ECHO_TIMEOUT))?
        .map(drop)
}

/// Sends connection `index`'s `size`-byte message and checks its echo.
async fn echo_once(client: &mut Client, index: usize, size: usize) -> Result<(), ClientError> {
    // Only the filler pattern depends on the id; wrapping is harmless.
    let payload = Payload::new(index as u32, size);
    let round_trip = async {
        client.send_binary(payload.bytes()).await?;
        let echo = client.recv().await?;
        check_opcode(echo, duplex_protocol::frame::OpCode::Binary)?;
        payload.verify(client.payload(&echo))?;
        Ok(())
    };
    tokio::time::timeout(ECHO_TIMEOUT, round_trip)
        .await
        .map_err(|_| ClientError::Timeout(ECHO_TIMEOUT))?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connections_join_one_room_or_spread_over_several() {
        assert_eq!(room_of("r", 1, 7), "r");
        let spread: Vec<_> = (0..4).map(|index| room_of("r", 3, index)).collect();
        assert_eq!(spread, ["r-0", "r-1", "r-2", "r-0"]);
    }
}
