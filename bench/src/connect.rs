//! Opening many connections: the ramp (when each connection may start), a
//! cap on handshakes in flight, the connect timeout, and recording connect
//! times and failures.

use std::cell::RefCell;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::{Duration, Instant};

use clap::Args;
use tokio::sync::Semaphore;

use crate::error::{BenchError, ClientError};
use crate::stats::Recorder;
use crate::target::Target;
use crate::ws::{Client, DEFLATE_LEVEL};

/// Where to connect and how fast.
#[derive(Debug, Clone, Args)]
pub struct ConnectOptions {
    /// WebSocket URL to drive (ws:// only).
    #[arg(short, long, default_value = "ws://127.0.0.1:8080/")]
    pub url: Target,

    /// Connections to open.
    #[arg(short, long, default_value_t = 100)]
    pub connections: usize,

    /// Connections opened per second, evenly spaced. Default: as fast as
    /// --connect-concurrency allows.
    #[arg(long, value_name = "PER_SEC")]
    pub ramp_rate: Option<f64>,

    /// Most connects and handshakes in progress at once. Keeps a burst of
    /// thousands within the server's listen backlog (a full backlog drops
    /// SYNs, which then retry after a second and distort connect times).
    #[arg(long, default_value_t = 64)]
    pub connect_concurrency: usize,

    /// Longest a TCP connect plus upgrade may take.
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    pub connect_timeout: Duration,

    /// Offer permessage-deflate (RFC 7692) as Chromium does
    /// (`permessage-deflate; client_max_window_bits`) and fail a connection
    /// whose server declines it. Every message sent is compressed (no
    /// context takeover, --deflate-level); compressed messages received are
    /// inflated before they are checked.
    #[arg(long)]
    pub deflate: bool,

    /// The zlib level (0-9) messages are compressed at with --deflate. 1,
    /// as the Duplex server compresses. With the zlib-rs backend level 1 is
    /// zlib-ng's quick strategy (static Huffman codes only), which shrinks
    /// text markedly less than level 2 (docs/bench.md, permessage-deflate).
    #[arg(long, default_value_t = DEFLATE_LEVEL, value_parser = clap::value_parser!(u32).range(0..=9), requires = "deflate")]
    pub deflate_level: u32,
}

impl ConnectOptions {
    /// The compression level to offer deflate with, `None` without
    /// `--deflate`.
    #[must_use]
    pub fn deflate(&self) -> Option<u32> {
        self.deflate.then_some(self.deflate_level)
    }
}

impl ConnectOptions {
    /// The URL as given, and the address its host resolves to.
    ///
    /// # Errors
    /// [`BenchError::Resolve`] when the host does not resolve.
    pub async fn resolve(&self) -> Result<(String, SocketAddr), BenchError> {
        let url = self.url.to_string();
        match self.url.resolve().await {
            Ok(addr) => Ok((url, addr)),
            Err(source) => Err(BenchError::Resolve { url, source }),
        }
    }

    /// Checks the values make sense.
    ///
    /// # Errors
    /// A message naming the bad option.
    pub fn validate(&self) -> Result<(), String> {
        if self.connections == 0 {
            return Err("--connections must be at least 1".into());
        }
        if self.connect_concurrency == 0 {
            return Err("--connect-concurrency must be at least 1".into());
        }
        if self
            .ramp_rate
            .is_some_and(|rate| !(rate > 0.0 && rate.is_finite()))
        {
            return Err("--ramp-rate must be a positive number".into());
        }
        Ok(())
    }
}

/// The error for a run that opened no connection at all: the first error
/// the recorder saw says why ("interrupted" if none, Ctrl-C came first).
pub(crate) fn no_connection(url: String, attempted: usize, recorder: &Recorder) -> BenchError {
    let first = recorder
        .error_samples()
        .values()
        .next()
        .cloned()
        .unwrap_or_else(|| "interrupted".into());
    BenchError::NoConnection {
        url,
        attempted,
        first,
    }
}

/// When connection `index` may start, counted from the start of the ramp:
/// `index / rate` seconds, or at once without a rate.
#[must_use]
pub fn ramp_offset(index: usize, rate: Option<f64>) -> Duration {
    match rate {
        Some(rate) if rate > 0.0 => Duration::from_secs_f64(index as f64 / rate),
        _ => Duration::ZERO,
    }
}

/// Opens connections for one run; shared by that run's connection tasks.
#[derive(Debug)]
pub(crate) struct Dialer {
    addr: SocketAddr,
    options: ConnectOptions,
    /// Buffers are sized for messages of this many bytes.
    message_size: usize,
    /// Start of the ramp.
    start: Instant,
    /// One permit per handshake in flight.
    permits: Semaphore,
    recorder: Rc<RefCell<Recorder>>,
}

impl Dialer {
    pub(crate) fn new(
        addr: SocketAddr,
        options: &ConnectOptions,
        message_size: usize,
        recorder: Rc<RefCell<Recorder>>,
    ) -> Self {
        Self {
            addr,
            options: options.clone(),
            message_size,
            start: Instant::now(),
            permits: Semaphore::new(options.connect_concurrency),
            recorder,
        }
    }

    /// Opens connection `index` at its ramp time; records its connect time,
    /// or its error (then returns `None`).
    pub(crate) async fn open(&self, index: usize) -> Option<Client> {
        let at = self.start + ramp_offset(index, self.options.ramp_rate);
        tokio::time::sleep_until(at.into()).await;
        // The semaphore is never closed; without a permit, go on anyway.
        let _permit = self.permits.acquire().await.ok();
        let began = Instant::now();
        let timeout = self.options.connect_timeout;
        let connect = Client::connect(
            self.addr,
            &self.options.url,
            index as u64,
            self.message_size,
            self.options.deflate(),
        );
        let outcome = match tokio::time::timeout(timeout, connect).await {
            Ok(outcome) => outcome,
            Err(_) => Err(ClientError::ConnectTimeout(timeout)),
        };
        let mut recorder = self.recorder.borrow_mut();
        match outcome {
            Ok(client) => {
                recorder.record_connect(began.elapsed().as_nanos() as u64);
                Some(client)
            }
            Err(error) => {
                recorder.record_error(&error);
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ramp_spaces_connections_evenly() {
        assert_eq!(ramp_offset(0, Some(100.0)), Duration::ZERO);
        assert_eq!(ramp_offset(250, Some(100.0)), Duration::from_millis(2500));
        assert_eq!(ramp_offset(9999, None), Duration::ZERO);
    }

    #[test]
    fn nonsense_options_are_refused() {
        let mut options = ConnectOptions {
            url: "ws://127.0.0.1:1/".parse().expect("valid"),
            connections: 1,
            ramp_rate: None,
            connect_concurrency: 1,
            connect_timeout: Duration::from_secs(1),
            deflate: false,
            deflate_level: DEFLATE_LEVEL,
        };
        assert!(options.validate().is_ok());
        options.ramp_rate = Some(0.0);
        assert!(options.validate().is_err());
        options.ramp_rate = None;
        options.connections = 0;
        assert!(options.validate().is_err());
    }
}
