//! A real `redis-server` as a child process, for the Redis engine's tests:
//! on a free loopback port and without persistence (`--save ''
//! --appendonly no`), so every start, and every restart, begins empty.
//! Tests talk to it in RESP over a plain `TcpStream`, with no client
//! library, so they can send anything (`CLIENT KILL TYPE pubsub`,
//! `FLUSHALL`, `DBSIZE`) and see the reply as redis wrote it.
//!
//! `scripts/setup.sh` installs redis-server. Every wait here is bounded by
//! [`WAIT`]; the process is killed by PID on drop.

use std::fmt::Write as _;
use std::fs::{self, OpenOptions};
use std::io::ErrorKind;
use std::net::{Ipv4Addr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::time::{Instant, sleep, timeout};

use super::{POLL, WAIT};

/// How many times a start tries again when redis cannot bind its port:
/// the free port is found by binding `127.0.0.1:0` and releasing it, so
/// another process can take it in between.
const BIND_TRIES: usize = 5;

/// The longest one readiness probe may take: a redis that has bound its
/// port but not yet loaded answers within this, and a stuck probe must not
/// eat the whole [`WAIT`].
const PROBE_TIMEOUT: Duration = Duration::from_millis(500);

/// Distinguishes the working directories of servers in one test process.
static NEXT_DIR: AtomicUsize = AtomicUsize::new(0);

/// `redis-server` on `127.0.0.1`, no persistence; killed by PID on drop.
pub struct RedisServer {
    /// The program started: `redis-server` from PATH unless a test chose
    /// another ([`RedisServer::start_program`]).
    program: String,
    /// Kept across [`RedisServer::restart`], so a client configured with
    /// [`RedisServer::url`] reconnects to the same address.
    port: u16,
    /// `None` after [`RedisServer::kill9`], until the restart.
    child: Option<Child>,
    /// Its working directory (`--dir`, where it would write a dump if asked
    /// to) and its log, `redis.log`; removed on drop.
    dir: PathBuf,
    /// More arguments, kept across restarts ([`RedisServer::start_with`]).
    extra: Vec<String>,
}

/// Why one start on one port did not give a ready server.
enum StartError {
    /// The port was taken: try another (or wait, on a restart).
    PortTaken,
    /// Anything else: redis exited, or never answered; the text says which.
    Failed(String),
}

impl RedisServer {
    /// Starts `redis-server` from PATH on a free port and waits until it
    /// answers PING. Panics, saying to run `scripts/setup.sh`, if it is
    /// not installed.
    pub async fn start() -> Self {
        Self::start_program("redis-server").await
    }

    /// [`RedisServer::start`] with another program in place of
    /// `redis-server` (a path, or a name looked up on PATH).
    pub async fn start_program(program: &str) -> Self {
        Self::start_with(program, Vec::new()).await
    }

    /// [`RedisServer::start_program`] with `extra` arguments after ours
    /// (e.g. a TLS port beside the plain one the tests probe).
    pub async fn start_with(program: &str, extra: Vec<String>) -> Self {
        let index = NEXT_DIR.fetch_add(1, Ordering::Relaxed);
        let dir =
            std::env::temp_dir().join(format!("duplex-test-redis-{}-{index}", std::process::id()));
        fs::create_dir_all(&dir)
            .unwrap_or_else(|error| panic!("create redis directory {}: {error}", dir.display()));
        let mut server = Self {
            program: program.to_owned(),
            port: 0,
            child: None,
            dir,
            extra,
        };
        for _ in 0..BIND_TRIES {
            server.port = free_port();
            match server.spawn_and_wait().await {
                Ok(()) => return server,
                Err(StartError::PortTaken) => continue,
                Err(StartError::Failed(why)) => panic!("{why}"),
            }
        }
        panic!(
            "redis-server could not bind a free port in {BIND_TRIES} tries\n{}",
            server.log_tail()
        );
    }

    /// `redis://127.0.0.1:PORT`, for the server's `--redis`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Its port: the same after a restart.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Its process id; `None` while it is killed.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// SIGKILL by PID, then waits until it has exited (and is reaped): no
    /// shutdown, no goodbye to its clients, exactly a crash. Afterwards
    /// the port refuses connections until [`RedisServer::restart`].
    pub fn kill9(&mut self) {
        if let Err(why) = self.kill_child() {
            panic!("{why}");
        }
    }

    /// Starts it again on the same port, killing it first if it runs.
    /// Nothing was persisted, so it comes back empty. Panics if the port
    /// stays taken by another process for the whole [`WAIT`].
    pub async fn restart(&mut self) {
        self.kill9();
        let deadline = Instant::now() + WAIT;
        loop {
            match self.spawn_and_wait().await {
                Ok(()) => return,
                Err(StartError::PortTaken) if Instant::now() < deadline => sleep(POLL).await,
                Err(StartError::PortTaken) => panic!(
                    "redis could not bind port {} again within {WAIT:?}: another process took it\n{}",
                    self.port,
                    self.log_tail()
                ),
                Err(StartError::Failed(why)) => panic!("{why}"),
            }
        }
    }

    /// Sends one command and returns the whole reply, raw, as redis wrote
    /// it (`+OK\r\n`, `$1\r\nv\r\n`, `:0\r\n`, `-ERR …\r\n`, arrays in
    /// full), on a connection of its own. Panics if redis does not reply
    /// within [`WAIT`] (it is down, or the command sends no reply).
    pub async fn command(&self, args: &[&str]) -> String {
        match timeout(WAIT, request(self.port, args)).await {
            Ok(Ok(reply)) => reply,
            Ok(Err(error)) => panic!(
                "redis on port {}: {args:?} failed: {error}\n{}",
                self.port,
                self.log_tail()
            ),
            Err(_) => panic!(
                "redis on port {}: no reply to {args:?} within {WAIT:?}",
                self.port
            ),
        }
    }

    /// Whether something on its port answers PING with PONG now (false
    /// while it is killed); waits at most [`PROBE_TIMEOUT`].
    pub async fn answers_ping(&self) -> bool {
        matches!(
            timeout(PROBE_TIMEOUT, request(self.port, &["PING"])).await,
            Ok(Ok(reply)) if reply == "+PONG\r\n"
        )
    }

    /// Spawns redis on `self.port` and waits until it, and not some other
    /// process on that port, answers PING.
    async fn spawn_and_wait(&mut self) -> Result<(), StartError> {
        let log_path = self.dir.join("redis.log");
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .unwrap_or_else(|error| panic!("open {}: {error}", log_path.display()));
        let log_err = log
            .try_clone()
            .unwrap_or_else(|error| panic!("dup {}: {error}", log_path.display()));
        let port = self.port.to_string();
        let spawned = Command::new(&self.program)
            .args(["--port", &port, "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no", "--daemonize", "no"])
            .arg("--dir")
            .arg(&self.dir)
            .args(&self.extra)
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log_err)
            .spawn();
        let child = match spawned {
            Ok(child) => child,
            Err(error) if error.kind() == ErrorKind::NotFound => panic!(
                "{} is not installed (not found on PATH): run scripts/setup.sh",
                self.program
            ),
            Err(error) => panic!("start {}: {error}", self.program),
        };
        let pid = child.id();
        self.child = Some(child);

        let deadline = Instant::now() + WAIT;
        loop {
            // Exited first: a redis that failed to bind exits at once, and
            // a PING might meanwhile reach whoever holds the port.
            if let Some(status) = self.try_wait() {
                self.child = None;
                // Only this process's lines: the log is appended across
                // restarts, and each line starts with the PID.
                let prefix = format!("{pid}:");
                let bind_failed = read_log(&log_path).lines().any(|line| {
                    line.starts_with(&prefix) && line.contains("Address already in use")
                });
                if bind_failed {
                    return Err(StartError::PortTaken);
                }
                return Err(StartError::Failed(format!(
                    "redis-server on port {} exited at start ({status})\n{}",
                    self.port,
                    self.log_tail()
                )));
            }
            if let Ok(Ok(info)) =
                timeout(PROBE_TIMEOUT, request(self.port, &["INFO", "server"])).await
            {
                if info.contains(&format!("process_id:{pid}\r\n")) {
                    return Ok(());
                }
                // Another redis holds the port: ours will fail to bind.
                if let Err(why) = self.kill_child() {
                    return Err(StartError::Failed(why));
                }
                return Err(StartError::PortTaken);
            }
            if Instant::now() >= deadline {
                let _ = self.kill_child();
                return Err(StartError::Failed(format!(
                    "redis-server on port {} did not answer within {WAIT:?}\n{}",
                    self.port,
                    self.log_tail()
                )));
            }
            sleep(POLL).await;
        }
    }

    /// The child's exit status if it has exited (reaping it).
    fn try_wait(&mut self) -> Option<std::process::ExitStatus> {
        let child = self.child.as_mut()?;
        child.try_wait().ok().flatten()
    }

    /// SIGKILL and a bounded wait for the exit; no panic, for drop.
    fn kill_child(&mut self) -> Result<(), String> {
        let Some(mut child) = self.child.take() else {
            return Ok(());
        };
        let pid = child.id();
        // Fails only if it has already exited, which the wait below reaps.
        let _ = child.kill();
        let deadline = std::time::Instant::now() + WAIT;
        loop {
            match child.try_wait() {
                Ok(Some(_)) => return Ok(()),
                Ok(None) if std::time::Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(1));
                }
                Ok(None) => {
                    return Err(format!(
                        "redis-server (pid {pid}) still runs {WAIT:?} after SIGKILL"
                    ));
                }
                Err(error) => return Err(format!("wait for redis-server (pid {pid}): {error}")),
            }
        }
    }

    /// The last lines of its log, for failure messages.
    fn log_tail(&self) -> String {
        let log = read_log(&self.dir.join("redis.log"));
        let lines: Vec<&str> = log.lines().collect();
        let mut tail = format!("--- {}/redis.log (last lines) ---\n", self.dir.display());
        for line in &lines[lines.len().saturating_sub(20)..] {
            let _ = writeln!(tail, "{line}");
        }
        tail
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        let killed = self.kill_child();
        if std::thread::panicking() {
            // The test failed: its redis log may say why.
            eprintln!("{}", self.log_tail());
        }
        if let Err(why) = killed {
            eprintln!("{why}");
        }
        let _ = fs::remove_dir_all(&self.dir);
    }
}

/// A loopback port that was free a moment ago: bound on port 0, released.
pub fn free_port() -> u16 {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind 127.0.0.1:0");
    listener.local_addr().expect("listener address").port()
}

/// The log so far; empty if there is none yet.
fn read_log(path: &Path) -> String {
    fs::read_to_string(path).unwrap_or_default()
}

/// One command on a fresh connection: `args` as a RESP array of bulk
/// strings; the reply read in full and returned as it came.
async fn request(port: u16, args: &[&str]) -> std::io::Result<String> {
    let stream = TcpStream::connect((Ipv4Addr::LOCALHOST, port)).await?;
    let mut stream = BufReader::new(stream);
    let mut command = format!("*{}\r\n", args.len());
    for arg in args {
        let _ = write!(command, "${}\r\n{arg}\r\n", arg.len());
    }
    stream.get_mut().write_all(command.as_bytes()).await?;
    let reply = read_reply(&mut stream).await?;
    Ok(String::from_utf8_lossy(&reply).into_owned())
}

/// Reads one whole RESP2 reply, nested arrays included, and returns its
/// bytes unchanged.
async fn read_reply(stream: &mut BufReader<TcpStream>) -> std::io::Result<Vec<u8>> {
    let invalid = |what: String| std::io::Error::new(ErrorKind::InvalidData, what);
    let mut reply = Vec::new();
    // Values still to read: an array header adds its elements.
    let mut pending = 1usize;
    while pending > 0 {
        pending -= 1;
        let start = reply.len();
        if stream.read_until(b'\n', &mut reply).await? == 0 {
            return Err(ErrorKind::UnexpectedEof.into());
        }
        let line = &reply[start..];
        let header = String::from_utf8_lossy(line.get(1..).unwrap_or_default());
        let header = header.trim_end();
        match line.first() {
            Some(b'+' | b'-' | b':') => {}
            Some(b'$') => {
                let length: i64 = header
                    .parse()
                    .map_err(|_| invalid(format!("bad bulk length {header:?}")))?;
                if length >= 0 {
                    // The payload and its CRLF.
                    let length = usize::try_from(length).map_err(|_| invalid(header.into()))?;
                    let mut payload = vec![0; length + 2];
                    stream.read_exact(&mut payload).await?;
                    reply.extend_from_slice(&payload);
                }
            }
            Some(b'*') => {
                let count: i64 = header
                    .parse()
                    .map_err(|_| invalid(format!("bad array length {header:?}")))?;
                // -1 is the null array.
                pending += usize::try_from(count).unwrap_or(0);
            }
            _ => {
                return Err(invalid(format!(
                    "not a RESP2 reply: {:?}",
                    String::from_utf8_lossy(line)
                )));
            }
        }
    }
    Ok(reply)
}
