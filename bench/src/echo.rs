//! Echo load: every connection sends messages and checks every echo byte for
//! byte.
//!
//! Closed loop (default): a connection sends one message, waits for its
//! echo, sends the next; throughput is what the server sustains at that
//! concurrency. Open loop (`--rate`): messages leave on a fixed schedule
//! whatever the echoes do, and when a send is held up by the previous one
//! (the server pushes back) its latency counts from the scheduled time, so
//! a server that falls behind shows it in latency instead of hiding it (no
//! coordinated omission).
//!
//! Everything runs on one thread: connection tasks share the counters
//! through `Rc<RefCell<_>>`, with no atomics or locks on the hot path.

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::time::{Duration, Instant};

use clap::Args;
use tokio::sync::Notify;
use tokio::task::{JoinSet, LocalSet};
use tokio::time::Sleep;

use crate::connect::{ConnectOptions, Dialer, no_connection};
use crate::error::{BenchError, ClientError};
use crate::output::{OutputOptions, Progress};
use crate::payload::{ChatJson, ECHO_ROOM, Mismatch, Payload, PayloadKind, TIMED_LEN};
use crate::procfs::{CpuMeter, Process};
use crate::record::{CpuUse, Mode, RunRecord, WireBytes, human_count};
use crate::stats::Recorder;
use crate::ws::{Client, Message};
use duplex_protocol::frame::OpCode;

/// How long a connection waits for the server's Close frame at the end.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(2);

/// Options of `duplex-bench echo`.
#[derive(Debug, Clone, Args)]
pub struct EchoOptions {
    /// Where to connect and how fast.
    #[command(flatten)]
    pub connect: ConnectOptions,

    /// Payload bytes per message. B, KiB or MiB suffixes accepted.
    #[arg(short, long, default_value = "20", value_parser = parse_size)]
    pub size: usize,

    /// What the messages are: `binary` (a stamp, then a byte pattern that
    /// deflate shrinks to almost nothing) or `json` (text frames of
    /// chat-like JSON, `{"type":"publish","room":"lobby","text":"…"}`, whose
    /// words change from message to message: for deflate figures). JSON
    /// needs --size of at least 84 bytes.
    #[arg(long, value_enum, default_value_t = PayloadKind::Binary)]
    pub payload: PayloadKind,

    /// Length of the measurement window. Default 10 s, or no limit with
    /// --messages.
    #[arg(short, long, value_parser = humantime::parse_duration)]
    pub duration: Option<Duration>,

    /// Stop after this many echoes (all connections together).
    #[arg(short = 'n', long, conflicts_with = "warmup")]
    pub messages: Option<u64>,

    /// Load applied before the window opens, not counted (lets caches,
    /// allocators and JITs settle).
    #[arg(long, default_value = "0s", value_parser = humantime::parse_duration)]
    pub warmup: Duration,

    /// Open loop: total messages per second, spread evenly over the
    /// connections. Needs --size of at least 16 (the echo carries its send
    /// time).
    #[arg(long, value_name = "MSG_PER_SEC")]
    pub rate: Option<f64>,

    /// An echo that has not arrived after this long ends its connection
    /// with a timeout error (checked lazily: within 1.5× of it).
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    pub timeout: Duration,

    /// Result format, labels and what else to measure.
    #[command(flatten)]
    pub output: OutputOptions,
}

impl EchoOptions {
    /// Checks that the options make sense together.
    ///
    /// # Errors
    /// [`BenchError::Options`] naming the problem.
    pub fn validate(&self) -> Result<(), BenchError> {
        self.connect.validate().map_err(BenchError::Options)?;
        if let Some(rate) = self.rate {
            if !(rate > 0.0 && rate.is_finite()) {
                return Err(BenchError::Options(
                    "--rate must be a positive number".into(),
                ));
            }
            if self.size < TIMED_LEN {
                return Err(BenchError::Options(format!(
                    "open loop (--rate) needs --size of at least {TIMED_LEN} bytes"
                )));
            }
        }
        let min_json = ChatJson::min_size(ECHO_ROOM);
        if self.payload == PayloadKind::Json && self.size < min_json {
            return Err(BenchError::Options(format!(
                "--payload json needs --size of at least {min_json} bytes"
            )));
        }
        if self.timeout.is_zero() {
            return Err(BenchError::Options("--timeout must be above zero".into()));
        }
        if self.messages == Some(0) {
            return Err(BenchError::Options("--messages must be at least 1".into()));
        }
        Ok(())
    }

    /// The window's length: `--duration`, else 10 s unless `--messages`
    /// bounds the run instead.
    #[must_use]
    pub fn window(&self) -> Option<Duration> {
        match (self.duration, self.messages) {
            (Some(duration), _) => Some(duration),
            (None, Some(_)) => None,
            (None, None) => Some(Duration::from_secs(10)),
        }
    }
}

/// Parses `20`, `1KiB`, `16KiB`, `1MiB` (also `K`, `KB`, `M`, `MB`: all
/// powers of 1024, as the server reads its own sizes).
///
/// # Errors
/// A message with the accepted forms.
pub fn parse_size(text: &str) -> Result<usize, String> {
    parse_size::Config::new()
        .with_binary()
        .parse_size(text)
        .ok()
        .and_then(|bytes| usize::try_from(bytes).ok())
        .ok_or_else(|| format!("{text:?} is not a size: write e.g. 20, 1KiB or 16KiB"))
}

/// Where the run is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Load is applied, echoes are not counted.
    Warmup,
    /// Echoes are counted.
    Measure,
    /// Connections finish their message in flight and close.
    Stop,
}

/// What the connection tasks of one run share.
#[derive(Debug)]
struct Shared {
    recorder: Rc<RefCell<Recorder>>,
    phase: Cell<Phase>,
    /// Zero of the send times stamped into messages.
    origin: Instant,
    /// Sends left with --messages; `None` for no limit.
    budget: Cell<Option<u64>>,
    /// When the latest counted echo arrived: the window's end with
    /// --messages.
    last_echo: Cell<Instant>,
    /// Every echo, warm-up included: the progress bar's rate.
    echoes_seen: Cell<u64>,
    size: usize,
    payload: PayloadKind,
    timeout: Duration,
}

impl Shared {
    /// Claims one send from the budget; false when it is spent.
    fn take_send(&self) -> bool {
        match self.budget.get() {
            None => true,
            Some(0) => false,
            Some(left) => {
                self.budget.set(Some(left - 1));
                true
            }
        }
    }

    fn stamp_ns(&self, at: Instant) -> u64 {
        at.saturating_duration_since(self.origin).as_nanos() as u64
    }

    /// One verified echo; `sent` and `received` are the bytes its
    /// connection moved on the wire since it last reported.
    fn echoed(&self, now: Instant, latency: Duration, sent: u64, received: u64) {
        self.echoes_seen.set(self.echoes_seen.get() + 1);
        if self.phase.get() == Phase::Measure {
            let mut recorder = self.recorder.borrow_mut();
            recorder.record_echo(latency.as_nanos() as u64, self.size);
            recorder.record_wire(sent, received);
            self.last_echo.set(now);
        }
    }

    /// Bytes written on the wire (open loop's sender).
    fn wrote(&self, sent: u64) {
        if self.phase.get() == Phase::Measure {
            self.recorder.borrow_mut().record_wire(sent, 0);
        }
    }

    fn running(&self) -> bool {
        self.phase.get() != Phase::Stop
    }
}

/// Detects a stalled connection without arming a timer per message: the
/// deadline moves only when less than `timeout` is left, to 1.5 × `timeout`
/// ahead, so most messages cost one comparison.
struct Watchdog {
    sleep: Pin<Box<Sleep>>,
    deadline: Instant,
    timeout: Duration,
}

impl Watchdog {
    fn new(timeout: Duration) -> Self {
        let deadline = Instant::now() + timeout + timeout / 2;
        Self {
            sleep: Box::pin(tokio::time::sleep_until(deadline.into())),
            deadline,
            timeout,
        }
    }

    /// Progress was made at `now`.
    fn feed(&mut self, now: Instant) {
        if self.deadline.saturating_duration_since(now) < self.timeout {
            self.deadline = now + self.timeout + self.timeout / 2;
            self.sleep.as_mut().reset(self.deadline.into());
        }
    }

    /// Runs `work` unless the deadline passes first.
    async fn guard<T>(
        &mut self,
        work: impl Future<Output = Result<T, ClientError>>,
    ) -> Result<T, ClientError> {
        tokio::select! {
            biased;
            outcome = work => outcome,
            () = &mut self.sleep => Err(ClientError::Timeout(self.timeout)),
        }
    }
}

/// Runs an echo load as `options` say and returns its result.
///
/// # Errors
/// Invalid options, a URL that does not resolve, or not one connection
/// opened. Errors on single connections are counted in the result instead.
pub async fn run(options: &EchoOptions, progress: &Progress) -> Result<RunRecord, BenchError> {
    options.validate()?;
    LocalSet::new()
        .run_until(run_local(options, progress))
        .await
}

async fn run_local(options: &EchoOptions, progress: &Progress) -> Result<RunRecord, BenchError> {
    let (url, addr) = options.connect.resolve().await?;
    let recorder = Rc::new(RefCell::new(Recorder::new()));
    let interrupted = Rc::new(Cell::new(false));
    let _ctrl_c = watch_ctrl_c(Rc::clone(&interrupted));

    // Connect every client before any load, so the window sees them all.
    let clients = connect_all(addr, options, &recorder, progress, &interrupted).await;
    if clients.is_empty() {
        return Err(no_connection(
            url,
            options.connect.connections,
            &recorder.borrow(),
        ));
    }
    let connected = clients.len();

    let now = Instant::now();
    let shared = Rc::new(Shared {
        recorder: Rc::clone(&recorder),
        phase: Cell::new(if options.warmup.is_zero() {
            Phase::Measure
        } else {
            Phase::Warmup
        }),
        origin: now,
        budget: Cell::new(options.messages),
        last_echo: Cell::new(now),
        echoes_seen: Cell::new(0),
        size: options.size,
        payload: options.payload,
        timeout: options.timeout,
    });
    let mut tasks = JoinSet::new();
    for (index, client) in clients {
        let shared = Rc::clone(&shared);
        match options.rate {
            None => tasks.spawn_local(connection(shared, client, index, None)),
            Some(rate) => {
                // Connection i sends every n/rate s, offset by i/rate s: the
                // total is `rate`, evenly spread.
                let interval = Duration::from_secs_f64(connected as f64 / rate);
                let first = now + Duration::from_secs_f64(index as f64 / rate);
                tasks.spawn_local(connection(shared, client, index, Some((interval, first))))
            }
        };
    }

    let window = options.window();
    let ticker = tokio::task::spawn_local(show_progress(
        Rc::clone(&shared),
        progress.clone(),
        window,
        options.messages,
        connected,
    ));

    // Warm-up, then the measurement window.
    if !options.warmup.is_zero() {
        let warmup_end = now + options.warmup;
        wait_until(&mut tasks, Some(warmup_end), &interrupted).await;
        shared.phase.set(Phase::Measure);
        recorder.borrow_mut().reset_echoes();
    }
    let started = Instant::now();
    let generator_cpu = CpuMeter::start(Process::Current).ok();
    let server_cpu = match options.output.server_pid {
        Some(pid) => Some(CpuMeter::start(Process::Pid(pid))?),
        None => None,
    };
    let deadline = window.map(|window| started + window);
    if shared.running() {
        wait_until(&mut tasks, deadline, &interrupted).await;
    }
    let ended = if options.messages.is_some() && deadline.is_none_or(|d| Instant::now() < d) {
        shared.last_echo.get().max(started)
    } else {
        Instant::now()
    };
    let server_used = server_cpu.as_ref().and_then(CpuMeter::used);
    let cpu = CpuUse {
        generator_percent: generator_cpu.and_then(|m| m.percent()),
        server_percent: server_cpu.and_then(|m| m.percent()),
        server_us_per_message: None,
    };
    shared.phase.set(Phase::Stop);
    progress.spin("closing connections".into());
    while tasks.join_next().await.is_some() {}
    ticker.abort();
    progress.finish();

    let seconds = ended.saturating_duration_since(started).as_secs_f64();
    let recorder = recorder.borrow();
    let messages = recorder.messages();
    let per_second = |n: f64| if seconds > 0.0 { n / seconds } else { 0.0 };
    let (wire_sent, wire_received) = recorder.wire();
    let cpu = CpuUse {
        server_us_per_message: server_used
            .filter(|_| messages > 0)
            .map(|used| used.as_secs_f64() * 1e6 / messages as f64),
        ..cpu
    };
    Ok(RunRecord {
        tool: crate::TOOL.into(),
        label: options.output.label.clone(),
        mode: if options.rate.is_some() {
            Mode::OpenLoop
        } else {
            Mode::ClosedLoop
        },
        url,
        connections: options.connect.connections,
        connected,
        payload_bytes: options.size,
        payload: options.payload,
        deflate: options.connect.deflate,
        target_rate: options.rate,
        seconds,
        messages,
        messages_per_sec: per_second(messages as f64),
        megabytes_per_sec: per_second(recorder.bytes() as f64) / 1e6,
        latency_us: recorder.latency_us(),
        connect_ms: recorder.connect_ms(),
        errors: recorder.errors().clone(),
        error_samples: recorder.error_samples().clone(),
        cpu,
        memory: None,
        wire: Some(WireBytes::new(wire_sent, wire_received, messages)),
    })
}

/// Sets `flag` on Ctrl-C, for as long as the returned handle lives.
pub(crate) fn watch_ctrl_c(flag: Rc<Cell<bool>>) -> AbortOnDrop {
    AbortOnDrop(tokio::task::spawn_local(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            flag.set(true);
        }
    }))
}

/// Aborts a task when dropped.
pub(crate) struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Waits until `deadline`, every task has ended, or Ctrl-C.
async fn wait_until(tasks: &mut JoinSet<()>, deadline: Option<Instant>, interrupted: &Cell<bool>) {
    let all_done = async { while tasks.join_next().await.is_some() {} };
    let deadline = async {
        match deadline {
            Some(at) => tokio::time::sleep_until(at.into()).await,
            None => std::future::pending().await,
        }
    };
    let interrupt = async {
        // Polled a few times a second: cheap, and no waker plumbing.
        while !interrupted.get() {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    };
    tokio::select! {
        () = all_done => {}
        () = deadline => {}
        () = interrupt => {}
    }
}

/// Opens every connection (ramped) and returns them with their index.
async fn connect_all(
    addr: std::net::SocketAddr,
    options: &EchoOptions,
    recorder: &Rc<RefCell<Recorder>>,
    progress: &Progress,
    interrupted: &Rc<Cell<bool>>,
) -> Vec<(u32, Client)> {
    let total = options.connect.connections;
    progress.spin(format!("connecting 0/{total}"));
    let dialer = Rc::new(Dialer::new(
        addr,
        &options.connect,
        options.size,
        Rc::clone(recorder),
    ));
    let mut pending = JoinSet::new();
    for index in 0..total {
        let dialer = Rc::clone(&dialer);
        let interrupted = Rc::clone(interrupted);
        pending.spawn_local(async move {
            if interrupted.get() {
                return None;
            }
            let index = u32::try_from(index).unwrap_or(u32::MAX);
            dialer
                .open(index as usize)
                .await
                .map(|client| (index, client))
        });
    }
    let mut clients = Vec::with_capacity(total);
    let mut done = 0;
    while let Some(outcome) = pending.join_next().await {
        done += 1;
        if let Ok(Some(client)) = outcome {
            clients.push(client);
        }
        if done % 64 == 0 {
            progress.spin(format!("connecting {done}/{total}"));
        }
    }
    clients
}

/// One connection's life: load, then close; an error is counted instead.
async fn connection(
    shared: Rc<Shared>,
    mut client: Client,
    index: u32,
    schedule: Option<(Duration, Instant)>,
) {
    let outcome = match schedule {
        None => closed_loop(&shared, &mut client, index).await,
        Some((interval, first)) => open_loop(&shared, &mut client, index, interval, first).await,
    };
    match outcome {
        // A server that does not finish the closing handshake is not what
        // this run measures; the Autobahn suite checks that.
        Ok(()) => drop(client.close(CLOSE_TIMEOUT).await),
        Err(error) => shared.recorder.borrow_mut().record_error(&error),
    }
}

/// Send, wait for the echo, check it, repeat.
async fn closed_loop(shared: &Shared, client: &mut Client, index: u32) -> Result<(), ClientError> {
    let mut payload = Payload::of_kind(shared.payload, index, shared.size);
    let opcode = shared.payload.opcode();
    let mut watchdog = Watchdog::new(shared.timeout);
    let mut seq = 0;
    let mut wire = (client.bytes_sent(), client.bytes_received());
    while shared.running() && shared.take_send() {
        let sent = Instant::now();
        watchdog.feed(sent);
        let message = payload.stamp(seq, shared.stamp_ns(sent));
        let echo = watchdog.guard(round_trip(client, opcode, message)).await?;
        check_opcode(echo, opcode)?;
        payload.verify(client.payload(&echo))?;
        let now = Instant::now();
        let moved = (client.bytes_sent(), client.bytes_received());
        shared.echoed(now, now - sent, moved.0 - wire.0, moved.1 - wire.1);
        wire = moved;
        seq += 1;
    }
    Ok(())
}

async fn round_trip(
    client: &mut Client,
    opcode: OpCode,
    message: &[u8],
) -> Result<Message, ClientError> {
    client.send(opcode, message).await?;
    client.recv().await
}

/// Checks that an echo came back with the opcode it was sent with.
pub(crate) fn check_opcode(message: Message, sent: OpCode) -> Result<(), Mismatch> {
    if message.opcode == sent {
        Ok(())
    } else {
        Err(Mismatch::Opcode {
            expected: sent,
            got: message.opcode,
        })
    }
}

/// Send on schedule while a second future receives and checks.
async fn open_loop(
    shared: &Shared,
    client: &mut Client,
    index: u32,
    interval: Duration,
    first: Instant,
) -> Result<(), ClientError> {
    let (mut receiver, mut sender) = client.split();
    let sent = Cell::new(0_u64);
    let sending_done = Cell::new(false);
    let wake_receiver = Notify::new();

    let opcode = shared.payload.opcode();
    let send = async {
        let mut payload = Payload::of_kind(shared.payload, index, shared.size);
        let mut wrote = sender.bytes_sent();
        let mut next = first;
        let mut seq = 0;
        let mut previous_done = first;
        loop {
            tokio::time::sleep_until(next.into()).await;
            if !shared.running() || !shared.take_send() {
                break;
            }
            // Still busy with the previous send at the scheduled time (the
            // server pushed back): latency counts from the schedule, so the
            // wait shows. Idle then: only the timer was late (tokio's fires
            // up to a millisecond after the deadline), which is the
            // generator's delay, not the server's: count from now.
            let sent_at = if previous_done > next {
                next
            } else {
                Instant::now()
            };
            sender
                .send(opcode, payload.stamp(seq, shared.stamp_ns(sent_at)))
                .await?;
            shared.wrote(sender.bytes_sent() - wrote);
            wrote = sender.bytes_sent();
            previous_done = Instant::now();
            seq += 1;
            sent.set(seq);
            next += interval;
        }
        sending_done.set(true);
        wake_receiver.notify_one();
        Ok::<(), ClientError>(())
    };

    let receive = async {
        let expected_payload = Payload::of_kind(shared.payload, index, shared.size);
        let mut read = receiver.bytes_received();
        let mut expected = 0;
        let mut drain_deadline = None;
        loop {
            if sending_done.get() && expected == sent.get() {
                return Ok::<(), ClientError>(());
            }
            let echo = if sending_done.get() {
                // Only the echoes in flight are left: bounded wait.
                let at = *drain_deadline.get_or_insert_with(|| Instant::now() + shared.timeout);
                tokio::time::timeout_at(at.into(), receiver.recv())
                    .await
                    .map_err(|_| ClientError::Timeout(shared.timeout))??
            } else {
                tokio::select! {
                    echo = receiver.recv() => echo?,
                    () = wake_receiver.notified() => continue,
                }
            };
            check_opcode(echo, opcode)?;
            let sent_ns = expected_payload.verify_timed(receiver.payload(&echo), expected)?;
            let now = Instant::now();
            let scheduled = shared.origin + Duration::from_nanos(sent_ns);
            let moved = receiver.bytes_received();
            shared.echoed(
                now,
                now.saturating_duration_since(scheduled),
                0,
                moved - read,
            );
            read = moved;
            expected += 1;
        }
    };

    tokio::try_join!(send, receive)?;
    Ok(())
}

/// Updates the progress bar four times a second.
async fn show_progress(
    shared: Rc<Shared>,
    progress: Progress,
    window: Option<Duration>,
    messages: Option<u64>,
    connections: usize,
) {
    let mut tick = tokio::time::interval(Duration::from_millis(250));
    let mut last = (Instant::now(), 0_u64);
    let mut window_start = None;
    loop {
        tick.tick().await;
        let now = Instant::now();
        let seen = shared.echoes_seen.get();
        let elapsed = now.duration_since(last.0).as_secs_f64();
        let rate = if elapsed > 0.0 {
            seen.saturating_sub(last.1) as f64 / elapsed
        } else {
            0.0
        };
        last = (now, seen);
        let recorder = shared.recorder.borrow();
        let (count, errors) = (recorder.messages(), recorder.error_total());
        drop(recorder);
        let status = format!(
            "{connections} conns  {} msg/s  {count} echoes  {errors} errors",
            human_count(rate)
        );
        match shared.phase.get() {
            Phase::Warmup => progress.spin(format!("warming up: {status}")),
            Phase::Measure => {
                let start = *window_start.get_or_insert_with(|| {
                    let length = match (window, messages) {
                        (Some(window), _) => window.as_millis() as u64,
                        (None, Some(n)) => n,
                        (None, None) => 0,
                    };
                    progress.bar(length, status.clone());
                    now
                });
                let position = match window {
                    Some(_) => now.duration_since(start).as_millis() as u64,
                    None => count,
                };
                progress.update(position, status);
            }
            Phase::Stop => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        echo: EchoOptions,
    }

    fn parse(args: &[&str]) -> Result<EchoOptions, clap::Error> {
        let mut argv = vec!["echo"];
        argv.extend_from_slice(args);
        Cli::try_parse_from(argv).map(|cli| cli.echo)
    }

    #[test]
    fn sizes_accept_binary_units() {
        assert_eq!(parse_size("20"), Ok(20));
        assert_eq!(parse_size("1KiB"), Ok(1024));
        assert_eq!(parse_size("16k"), Ok(16 * 1024));
        assert_eq!(parse_size("1 MiB"), Ok(1 << 20));
        assert!(parse_size("KiB").is_err());
    }

    #[test]
    fn window_defaults_to_ten_seconds_unless_counting_messages() {
        let options = parse(&[]).expect("defaults parse");
        assert_eq!(options.window(), Some(Duration::from_secs(10)));
        let counted = parse(&["-n", "500"]).expect("parses");
        assert_eq!(counted.window(), None);
        let both = parse(&["-n", "500", "-d", "2s"]).expect("parses");
        assert_eq!(both.window(), Some(Duration::from_secs(2)));
    }

    #[test]
    fn contradictory_options_are_refused() {
        assert!(parse(&["-n", "5", "--warmup", "1s"]).is_err());
        let tiny_open_loop = parse(&["--rate", "1000", "--size", "8"]).expect("parses");
        assert!(matches!(
            tiny_open_loop.validate(),
            Err(BenchError::Options(_))
        ));
        let zero = parse(&["-n", "0"]).expect("parses");
        assert!(zero.validate().is_err());
        assert!(
            parse(&["--rate", "1000", "--size", "16"])
                .expect("parses")
                .validate()
                .is_ok()
        );
    }
}
