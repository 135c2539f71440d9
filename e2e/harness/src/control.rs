//! The control endpoint the browser tests call with `fetch()`: stop the
//! server (gracefully or abruptly) and start it again on the same address,
//! so a test can watch its client reconnect to a real restarted server.
//!
//! A minimal HTTP/1.1 responder on a loopback port: one request per
//! connection, CORS open (the tests run on another origin).
//!
//! - `POST /server/stop?how=term` (default) or `?how=kill`
//! - `POST /server/start`
//! - `GET /server`: `running ADDR` or `stopped`
//!
//! In the Redis variant (`--redis`), Redis too, on its port:
//! - `POST /redis/stop?how=term` (default) or `?how=kill`
//! - `POST /redis/start`: empty (it persists nothing), as after a crash
//!   of a Redis without persistence; the servers see their store come
//!   back without the rooms' history
//! - `GET /redis`: `running redis://ADDR`, `stopped`, or 404 without
//!   `--redis`

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use crate::redis::{Redis, RedisLauncher};
use crate::server::{Launcher, Server, Stop};

/// Largest request head read; ours are tiny.
const MAX_REQUEST: usize = 8 * 1024;
/// A client that sends nothing for this long is dropped.
const READ_TIMEOUT: Duration = Duration::from_secs(5);

/// The server the tests control, and how to start it again.
#[derive(Debug)]
pub(crate) struct Controlled {
    pub(crate) launcher: Launcher,
    /// The address every (re)start uses.
    pub(crate) addr: SocketAddr,
    /// `None` while stopped.
    pub(crate) server: Option<Server>,
    /// Redis, in the Redis variant.
    pub(crate) redis: Option<RedisControl>,
}

/// Redis as the tests control it.
#[derive(Debug)]
pub(crate) struct RedisControl {
    pub(crate) launcher: RedisLauncher,
    /// The port every (re)start uses: the servers' `--redis` names it.
    pub(crate) port: u16,
    /// `None` while stopped.
    pub(crate) running: Option<Redis>,
}

/// Shared between the control thread and the main thread.
pub(crate) type Shared = Arc<Mutex<Controlled>>;

/// Locks the state, even if a thread panicked while holding it (the state
/// is still a valid server handle).
pub(crate) fn lock(shared: &Shared) -> MutexGuard<'_, Controlled> {
    shared
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Serves control requests until the process exits.
pub(crate) fn serve(listener: TcpListener, shared: Shared) {
    for stream in listener.incoming() {
        let Ok(stream) = stream else { continue };
        if let Err(error) = handle(stream, &shared) {
            eprintln!("harness: control request failed: {error}");
        }
    }
}

fn handle(mut stream: TcpStream, shared: &Shared) -> std::io::Result<()> {
    stream.set_read_timeout(Some(READ_TIMEOUT))?;
    let mut head = Vec::with_capacity(512);
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < MAX_REQUEST {
        let n = stream.read(&mut buf)?;
        if n == 0 {
            break;
        }
        head.extend_from_slice(&buf[..n]);
    }
    let head = String::from_utf8_lossy(&head);
    let mut request_line = head.lines().next().unwrap_or_default().split(' ');
    let method = request_line.next().unwrap_or_default();
    let target = request_line.next().unwrap_or_default();
    let (status, body) = respond(method, target, shared);
    write!(
        stream,
        "HTTP/1.1 {status}\r\nContent-Type: text/plain; charset=utf-8\r\n\
         Access-Control-Allow-Origin: *\r\nAccess-Control-Allow-Methods: GET, POST\r\n\
         Cache-Control: no-store\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )?;
    stream.flush()
}

/// The status line and body for one request.
fn respond(method: &str, target: &str, shared: &Shared) -> (&'static str, String) {
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let how = || {
        if query.split('&').any(|kv| kv == "how=kill") {
            Stop::Kill
        } else {
            Stop::Graceful
        }
    };
    match (method, path) {
        ("OPTIONS", _) => ("204 No Content", String::new()),
        (_, "/redis" | "/redis/stop" | "/redis/start") => {
            let mut state = lock(shared);
            match state.redis.as_mut() {
                Some(redis) => redis_request(method, path, how(), redis),
                None => (
                    "404 Not Found",
                    "no Redis: the harness runs without --redis\n".into(),
                ),
            }
        }
        ("GET", "/server") => {
            let state = lock(shared);
            match &state.server {
                Some(server) => ("200 OK", format!("running {}", server.addr)),
                None => ("200 OK", "stopped".into()),
            }
        }
        ("POST", "/server/stop") => {
            let mut state = lock(shared);
            let Some(server) = state.server.take() else {
                return ("409 Conflict", "already stopped".into());
            };
            match server.stop(how()) {
                Ok(status) => ("200 OK", format!("stopped ({status})")),
                Err(error) => ("500 Internal Server Error", error.to_string()),
            }
        }
        ("POST", "/server/start") => {
            let mut state = lock(shared);
            if state.server.is_some() {
                return ("409 Conflict", "already running".into());
            }
            match state.launcher.start(state.addr) {
                Ok(server) => {
                    let body = format!("running {}", server.addr);
                    state.server = Some(server);
                    ("200 OK", body)
                }
                Err(error) => ("500 Internal Server Error", error.to_string()),
            }
        }
        _ => ("404 Not Found", "unknown control request\n".into()),
    }
}

/// The status line and body for a request about Redis.
fn redis_request(
    method: &str,
    path: &str,
    how: Stop,
    redis: &mut RedisControl,
) -> (&'static str, String) {
    match (method, path) {
        ("GET", "/redis") => match &redis.running {
            Some(running) => ("200 OK", format!("running {}", running.url())),
            None => ("200 OK", "stopped".into()),
        },
        ("POST", "/redis/stop") => {
            let Some(running) = redis.running.take() else {
                return ("409 Conflict", "already stopped".into());
            };
            match running.stop(how) {
                Ok(status) => ("200 OK", format!("stopped ({status})")),
                Err(error) => ("500 Internal Server Error", error.to_string()),
            }
        }
        ("POST", "/redis/start") => {
            if redis.running.is_some() {
                return ("409 Conflict", "already running".into());
            }
            match redis.launcher.start_on(redis.port) {
                Ok(running) => {
                    let body = format!("running {}", running.url());
                    redis.running = Some(running);
                    ("200 OK", body)
                }
                Err(error) => ("500 Internal Server Error", error.to_string()),
            }
        }
        _ => ("404 Not Found", "unknown control request\n".into()),
    }
}
