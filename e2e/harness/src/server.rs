//! The real Duplex server as a child process: start it on a loopback
//! address, learn the address it bound from its JSON "listening" log line,
//! stop it gracefully (SIGTERM) or abruptly (SIGKILL), and start it again on
//! the same address.

use std::fs::File;
use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// How long the server may take to print its "listening" line.
const START_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a graceful stop may take; the server's own shutdown grace is
/// 10 s by default, so this leaves it room.
const STOP_TIMEOUT: Duration = Duration::from_secs(15);
/// Attempts to bind the same address again after a stop (the port may be
/// in TIME_WAIT for a moment on some systems).
const REBIND_ATTEMPTS: u32 = 50;

/// Why the server could not be started or stopped.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ServerError {
    /// The binary could not be run at all.
    #[error("cannot run {binary}: {source}")]
    Spawn {
        /// The path tried.
        binary: PathBuf,
        /// The operating system's answer.
        source: std::io::Error,
    },
    /// The log file could not be written.
    #[error("cannot write the server log {path}: {source}")]
    Log {
        /// The log path.
        path: PathBuf,
        /// The operating system's answer.
        source: std::io::Error,
    },
    /// It exited before saying where it listens.
    #[error("the server exited at start ({status}); see {log}")]
    ExitedAtStart {
        /// Its exit status.
        status: ExitStatus,
        /// Its log.
        log: PathBuf,
    },
    /// It said nothing in time.
    #[error("the server did not report its address within {START_TIMEOUT:?}; see {log}")]
    StartTimeout {
        /// Its log.
        log: PathBuf,
    },
    /// It did not exit after SIGTERM in time (it was then killed).
    #[error("did not exit within {STOP_TIMEOUT:?} of SIGTERM; killed it")]
    StopTimeout,
    /// Waiting for or signalling the process failed.
    #[error("cannot signal or wait for the server: {0}")]
    Process(#[from] std::io::Error),
}

/// How to stop the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stop {
    /// SIGTERM: the server closes every client with 1001 and exits.
    Graceful,
    /// SIGKILL: sockets drop without a close frame (clients see 1006).
    Kill,
}

/// How to run the server.
#[derive(Debug, Clone)]
pub(crate) struct Launcher {
    /// The `duplex` binary.
    pub(crate) binary: PathBuf,
    /// Extra arguments (e.g. `--ui-dir dist`).
    pub(crate) args: Vec<String>,
    /// The server's `--push-token`, the same on every (re)start so the
    /// tests' token stays valid. Given through `DUPLEX_PUSH_TOKEN` rather
    /// than the command line, where any local user could read it in `ps`.
    pub(crate) push_token: String,
    /// Where its log goes (appended across restarts).
    pub(crate) log: PathBuf,
    /// More secrets for its environment (`DUPLEX_JWT_SECRET`), kept off
    /// the command line for the same reason as the push token.
    pub(crate) env: Vec<(&'static str, String)>,
}

/// A running server.
#[derive(Debug)]
pub(crate) struct Server {
    child: Child,
    /// The address it bound.
    pub(crate) addr: SocketAddr,
}

impl Launcher {
    /// Starts the server on `listen` (port 0 for a free one); retries a few
    /// times when a fixed address is briefly still taken.
    pub(crate) fn start(&self, listen: SocketAddr) -> Result<Server, ServerError> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            match self.start_once(listen) {
                Err(ServerError::ExitedAtStart { .. })
                    if listen.port() != 0 && attempt < REBIND_ATTEMPTS =>
                {
                    std::thread::sleep(Duration::from_millis(100));
                }
                result => return result,
            }
        }
    }

    fn start_once(&self, listen: SocketAddr) -> Result<Server, ServerError> {
        let log_error = |source| ServerError::Log {
            path: self.log.clone(),
            source,
        };
        let mut log = File::options()
            .create(true)
            .append(true)
            .open(&self.log)
            .map_err(log_error)?;
        writeln!(
            log,
            "--- harness: starting {} on {listen}",
            self.binary.display()
        )
        .map_err(log_error)?;
        let mut child = Command::new(&self.binary)
            .arg("--listen")
            .arg(listen.to_string())
            .args(["--log-format", "json"])
            .args(&self.args)
            .env("DUPLEX_PUSH_TOKEN", &self.push_token)
            .envs(self.env.iter().map(|(name, value)| (name, value)))
            .env(
                "RUST_LOG",
                std::env::var("RUST_LOG").unwrap_or_else(|_| "info".into()),
            )
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|source| ServerError::Spawn {
                binary: self.binary.clone(),
                source,
            })?;
        let (found_tx, found) = mpsc::channel();
        if let Some(stderr) = child.stderr.take() {
            // Copies the log and reports the address once; ends with the
            // process.
            std::thread::spawn(move || {
                let mut found_tx = Some(found_tx);
                for line in BufReader::new(stderr).lines() {
                    let Ok(line) = line else { break };
                    let _ = writeln!(log, "{line}");
                    if let Some(addr) = listening_addr(&line)
                        && let Some(tx) = found_tx.take()
                    {
                        let _ = tx.send(addr);
                    }
                }
            });
        }
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if let Ok(addr) = found.recv_timeout(Duration::from_millis(50)) {
                return Ok(Server { child, addr });
            }
            if let Some(status) = child.try_wait()? {
                return Err(ServerError::ExitedAtStart {
                    status,
                    log: self.log.clone(),
                });
            }
            if Instant::now() >= deadline {
                let _ = child.kill();
                let _ = child.wait();
                return Err(ServerError::StartTimeout {
                    log: self.log.clone(),
                });
            }
        }
    }
}

impl Server {
    /// The process id.
    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Stops the server and waits for it; returns its exit status.
    pub(crate) fn stop(mut self, how: Stop) -> Result<ExitStatus, ServerError> {
        stop_child(&mut self.child, how)
    }

    /// Whether the process has exited (without being asked to).
    pub(crate) fn exited(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().ok().flatten()
    }
}

/// Stops `child` (SIGTERM, or SIGKILL for [`Stop::Kill`]) and waits for
/// it; returns its exit status. Killed after [`STOP_TIMEOUT`] if SIGTERM
/// was not enough.
pub(crate) fn stop_child(child: &mut Child, how: Stop) -> Result<ExitStatus, ServerError> {
    match how {
        Stop::Kill => {
            child.kill()?;
            Ok(child.wait()?)
        }
        Stop::Graceful => {
            // std has no SIGTERM and unsafe code is forbidden here, so
            // ask kill(1), by this child's PID only.
            let status = Command::new("kill")
                .args(["-TERM", &child.id().to_string()])
                .status()?;
            if !status.success() {
                // Already gone: collect it.
                return Ok(child.wait()?);
            }
            let deadline = Instant::now() + STOP_TIMEOUT;
            loop {
                if let Some(status) = child.try_wait()? {
                    return Ok(status);
                }
                if Instant::now() >= deadline {
                    let _ = child.kill();
                    let _ = child.wait();
                    return Err(ServerError::StopTimeout);
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }
}

/// The bound address in the server's JSON "listening" line:
/// `{..."message":"listening: ...","local":"127.0.0.1:PORT",...}`.
pub(crate) fn listening_addr(line: &str) -> Option<SocketAddr> {
    if !line.contains("listening") {
        return None;
    }
    let start = line.find("\"local\":\"")? + "\"local\":\"".len();
    let end = start + line[start..].find('"')?;
    line[start..end].parse().ok()
}

/// The default server binary: the release build of this workspace.
pub(crate) fn default_binary(root: &Path) -> PathBuf {
    root.join("target/release/duplex")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_address_in_the_listening_line() {
        let line = r#"{"timestamp":"2026-11-25T17:00:00Z","level":"INFO","fields":{"message":"listening: echo on ws://127.0.0.1:40123/","local":"127.0.0.1:40123"},"target":"duplex_server::server"}"#;
        assert_eq!(
            listening_addr(line),
            Some(SocketAddr::from(([127, 0, 0, 1], 40123)))
        );
        assert_eq!(
            listening_addr(r#"{"local":"127.0.0.1:1","message":"other"}"#),
            None
        );
        assert_eq!(listening_addr("listening but no address"), None);
    }
}
