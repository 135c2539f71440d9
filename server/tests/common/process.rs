//! The real `duplex` binary as a child process, for tests that measure
//! the process itself (resident memory) or need its real command line.

use std::net::SocketAddr;
use std::process::Stdio;
use std::sync::{Arc, Mutex, PoisonError};

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use tokio::time::timeout;

use super::WAIT;

/// `duplex` on a free loopback port, with JSON logs; killed on drop. Its
/// address comes from its "listening" log line; every later line is kept.
pub struct Binary {
    pub child: Child,
    pub addr: SocketAddr,
    log: Arc<Mutex<Vec<String>>>,
}

impl Binary {
    /// Starts it with `args` after `--listen 127.0.0.1:0 --log-format json`,
    /// logging at `rust_log`.
    pub async fn start(args: &[&str], rust_log: &str) -> Self {
        Self::start_with_env(args, rust_log, &[]).await
    }

    /// [`Binary::start`] with more environment variables.
    pub async fn start_with_env(args: &[&str], rust_log: &str, env: &[(&str, &str)]) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_duplex"))
            .args(["--listen", "127.0.0.1:0", "--log-format", "json"])
            .args(args)
            .env("RUST_LOG", rust_log)
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("start duplex");
        let stderr = child.stderr.take().expect("stderr");
        let mut lines = BufReader::new(stderr).lines();
        let addr = timeout(WAIT, async {
            while let Some(line) = lines.next_line().await.expect("server log") {
                let Ok(entry) = serde_json::from_str::<serde_json::Value>(&line) else {
                    continue;
                };
                let local = entry
                    .pointer("/fields/local")
                    .or_else(|| entry.get("local"));
                if let Some(addr) = local.and_then(|local| local.as_str()) {
                    return addr.parse().expect("listening address");
                }
            }
            panic!("the server exited before listening");
        })
        .await
        .expect("no listening line within the wait");
        // Keep reading its log, or it blocks on a full pipe.
        let log = Arc::new(Mutex::new(Vec::new()));
        let kept = Arc::clone(&log);
        tokio::spawn(async move {
            while let Ok(Some(line)) = lines.next_line().await {
                kept.lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .push(line);
            }
        });
        Self { child, addr, log }
    }

    /// Log lines so far that contain `needle`.
    pub fn logged(&self, needle: &str) -> usize {
        self.log
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .filter(|line| line.contains(needle))
            .count()
    }

    /// Its resident memory, in bytes.
    pub fn rss(&self) -> u64 {
        self.status_bytes("VmRSS:")
    }

    /// The most resident memory it has had, in bytes.
    pub fn peak_rss(&self) -> u64 {
        self.status_bytes("VmHWM:")
    }

    fn status_bytes(&self, field: &str) -> u64 {
        let pid = self.child.id().expect("server pid");
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("proc status");
        let kib: u64 = status
            .lines()
            .find_map(|line| line.strip_prefix(field))
            .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or_else(|| panic!("no {field} line"));
        kib * 1024
    }
}
