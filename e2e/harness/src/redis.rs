//! A real `redis-server` as a child process, for the harness's Redis
//! variant (`--redis`): the servers share it as their cluster's store, so a
//! restarted server finds the rooms' history where it left it. Started on a
//! free loopback port with persistence off (`--save '' --appendonly no`: a
//! restart of Redis itself starts empty, which is what a history reset
//! test wants), ready once it answers `PING`, stopped by its PID.

use std::fs::File;
use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use crate::server::{ServerError, Stop, stop_child};

/// How long Redis may take to answer its first `PING`.
const START_TIMEOUT: Duration = Duration::from_secs(10);
/// How long one `PING` may take.
const PING_TIMEOUT: Duration = Duration::from_millis(500);

/// Why Redis could not be started.
#[derive(Debug, thiserror::Error)]
pub(crate) enum RedisError {
    /// No free port, or the log could not be written.
    #[error("cannot prepare redis-server: {0}")]
    Setup(#[source] std::io::Error),
    /// The binary could not be run.
    #[error("cannot run {binary} ({source}); install it with `apt-get install redis-server`")]
    Spawn {
        /// The path tried.
        binary: PathBuf,
        /// The operating system's answer.
        source: std::io::Error,
    },
    /// It exited before answering.
    #[error("redis-server exited at start ({status}); see {log}")]
    ExitedAtStart {
        /// Its exit status.
        status: ExitStatus,
        /// Its log.
        log: PathBuf,
    },
    /// It did not answer `PING` in time (it was then killed).
    #[error("redis-server did not answer PING within {START_TIMEOUT:?}; see {log}")]
    StartTimeout {
        /// Its log.
        log: PathBuf,
    },
    /// Waiting for or signalling the process failed.
    #[error("redis-server: {0}")]
    Stop(#[from] ServerError),
}

/// How to run Redis.
#[derive(Debug, Clone)]
pub(crate) struct RedisLauncher {
    /// The `redis-server` binary.
    pub(crate) binary: PathBuf,
    /// Where its log goes (appended across restarts).
    pub(crate) log: PathBuf,
}

/// A running Redis.
#[derive(Debug)]
pub(crate) struct Redis {
    child: Child,
    /// The loopback address it listens on.
    pub(crate) addr: SocketAddr,
}

/// A loopback port that was free a moment ago (redis-server has no "port
/// 0, tell me which": it is picked here and given to it).
fn free_port() -> std::io::Result<u16> {
    Ok(TcpListener::bind(("127.0.0.1", 0))?.local_addr()?.port())
}

/// Whether Redis at `addr` answers `PING` with `+PONG`.
fn pong(addr: SocketAddr) -> bool {
    let Ok(mut stream) = TcpStream::connect_timeout(&addr, PING_TIMEOUT) else {
        return false;
    };
    if stream.set_read_timeout(Some(PING_TIMEOUT)).is_err()
        || stream.write_all(b"PING\r\n").is_err()
    {
        return false;
    }
    let mut line = String::new();
    BufReader::new(stream).read_line(&mut line).is_ok() && line.starts_with("+PONG")
}

impl RedisLauncher {
    /// Starts Redis on a free loopback port.
    pub(crate) fn start(&self) -> Result<Redis, RedisError> {
        let port = free_port().map_err(RedisError::Setup)?;
        self.start_on(port)
    }

    /// Starts Redis on `port` (again, after a stop: empty, since it
    /// persists nothing).
    pub(crate) fn start_on(&self, port: u16) -> Result<Redis, RedisError> {
        let mut log = File::options()
            .create(true)
            .append(true)
            .open(&self.log)
            .map_err(RedisError::Setup)?;
        writeln!(
            log,
            "--- harness: starting {} on port {port}",
            self.binary.display()
        )
        .map_err(RedisError::Setup)?;
        let stderr = log.try_clone().map_err(RedisError::Setup)?;
        let mut child = Command::new(&self.binary)
            .args(["--port", &port.to_string()])
            .args(["--bind", "127.0.0.1"])
            // Nothing on disk: no dump, no append-only file, so a restart
            // is empty and no file is left behind.
            .args(["--save", "", "--appendonly", "no"])
            .args(["--daemonize", "no"])
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(stderr)
            .spawn()
            .map_err(|source| RedisError::Spawn {
                binary: self.binary.clone(),
                source,
            })?;
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if pong(addr) {
                return Ok(Redis { child, addr });
            }
            if let Some(status) = child.try_wait().map_err(ServerError::from)? {
                return Err(RedisError::ExitedAtStart {
                    status,
                    log: self.log.clone(),
                });
            }
            if Instant::now() >= deadline {
                let _ = child.kill();
                let _ = child.wait();
                return Err(RedisError::StartTimeout {
                    log: self.log.clone(),
                });
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Redis {
    /// The process id.
    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The URL the servers' `--redis` takes.
    pub(crate) fn url(&self) -> String {
        format!("redis://{}", self.addr)
    }

    /// Stops Redis (SIGTERM: it exits at once, having nothing to save) and
    /// waits for it.
    pub(crate) fn stop(mut self, how: Stop) -> Result<ExitStatus, ServerError> {
        stop_child(&mut self.child, how)
    }

    /// Whether the process has exited (without being asked to).
    pub(crate) fn exited(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().ok().flatten()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nothing_listening_is_no_pong() {
        let port = free_port().expect("a free port");
        assert!(!pong(SocketAddr::from(([127, 0, 0, 1], port))));
    }

    /// The real thing, when this machine has it (the Redis variant needs
    /// it; the default runs do not).
    #[test]
    fn starts_answers_and_stops_when_installed() {
        let dir = std::env::temp_dir().join(format!("duplex-harness-redis-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("a temp dir");
        let launcher = RedisLauncher {
            binary: "redis-server".into(),
            log: dir.join("redis.log"),
        };
        let redis = match launcher.start() {
            Ok(redis) => redis,
            Err(RedisError::Spawn { .. }) => {
                eprintln!("redis-server is not installed: skipped");
                return;
            }
            Err(error) => panic!("{error}"),
        };
        assert!(pong(redis.addr));
        assert!(redis.url().starts_with("redis://127.0.0.1:"));
        let addr = redis.addr;
        let status = redis.stop(Stop::Graceful).expect("stops");
        assert!(status.success(), "{status}");
        assert!(!pong(addr));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
