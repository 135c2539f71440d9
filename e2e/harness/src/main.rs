//! `duplex-browser-harness`: runs a command (the browser test suites)
//! against a real release Duplex server.
//!
//! It starts the server on a free loopback port, opens a control endpoint
//! the tests can call to stop and restart that server on the same port
//! ([`control`]), runs the command with the URLs in its environment, then
//! stops the server (by its PID, with SIGTERM) and exits with the command's
//! status.
//!
//! Environment given to the command:
//! - `DUPLEX_TEST_WS_URL`: `ws://127.0.0.1:PORT/echo`
//! - `DUPLEX_TEST_HTTP_URL`: `http://127.0.0.1:PORT` (the page, with `--ui-dir`)
//! - `DUPLEX_TEST_CONTROL_URL`: `http://127.0.0.1:PORT2` (see [`control`])
//! - `DUPLEX_TEST_DEAD_WS_URL`: a WebSocket URL on a loopback port nothing
//!   listens on
//! - `DUPLEX_TEST_PUSH_TOKEN`: the server's `--push-token`, random for each
//!   run, so the tests can push into rooms (`POST /api/rooms/{room}/messages`
//!   or `duplex push`)
//! - `DUPLEX_TEST_SERVER_BIN`: the absolute path of the server binary, for
//!   tests that run its CLI (`duplex push`)
//!
//! ```text
//! duplex-browser-harness [--server target/release/duplex] [--server-arg=--ui-dir --server-arg=dist] \
//!     -- cargo test --target wasm32-unknown-unknown -p duplex-client
//! ```

mod control;
mod server;

use std::net::{SocketAddr, TcpListener};
use std::path::PathBuf;
use std::process::{Command, ExitCode};
use std::sync::{Arc, Mutex};

use anyhow::{Context, bail};
use clap::Parser;

use crate::control::Controlled;
use crate::server::{Launcher, Stop};

/// Runs COMMAND against a real Duplex server started on a free loopback
/// port; tests can stop and restart it through a control endpoint.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Cli {
    /// The server binary [default: target/release/duplex in this workspace].
    #[arg(long)]
    server: Option<PathBuf>,
    /// An extra argument for the server (repeat for more), e.g.
    /// `--server-arg=--ui-dir --server-arg=dist`.
    #[arg(long = "server-arg", allow_hyphen_values = true)]
    server_args: Vec<String>,
    /// The server's log file [default: target/browser-tests/server.log].
    #[arg(long)]
    log: Option<PathBuf>,
    /// The command to run, and its arguments.
    #[arg(last = true, required = true)]
    command: Vec<String>,
}

fn main() -> ExitCode {
    match run() {
        Ok(code) => code,
        Err(error) => {
            eprintln!("harness: error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> anyhow::Result<ExitCode> {
    let cli = Cli::parse();
    // The workspace root: two levels above this crate.
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let log = cli
        .log
        .unwrap_or_else(|| root.join("target/browser-tests/server.log"));
    if let Some(dir) = log.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    // One run per log: restarts append to it, a new run starts it afresh.
    std::fs::File::create(&log).with_context(|| format!("cannot create {}", log.display()))?;
    let binary = cli.server.unwrap_or_else(|| server::default_binary(&root));
    let binary = std::path::absolute(&binary)
        .with_context(|| format!("cannot resolve {}", binary.display()))?;
    let launcher = Launcher {
        binary,
        args: cli.server_args,
        log,
        push_token: random_token().context("cannot make a push token")?,
    };
    let loopback = SocketAddr::from(([127, 0, 0, 1], 0));
    let server = launcher
        .start(loopback)
        .context("cannot start the server")?;
    let addr = server.addr;
    let pid = server.pid();
    let push_token = launcher.push_token.clone();
    let server_bin = launcher.binary.clone();
    let shared = Arc::new(Mutex::new(Controlled {
        launcher,
        addr,
        server: Some(server),
    }));

    let control = TcpListener::bind(loopback).context("cannot bind the control endpoint")?;
    let control_addr = control.local_addr()?;
    {
        let shared = Arc::clone(&shared);
        std::thread::spawn(move || control::serve(control, shared));
    }
    // A port that was free a moment ago and that nothing binds on purpose.
    let dead_port = TcpListener::bind(loopback)?.local_addr()?.port();

    eprintln!(
        "harness: server pid {pid} on ws://{addr}/echo, control http://{control_addr}, running: {}",
        cli.command.join(" ")
    );
    let status = Command::new(&cli.command[0])
        .args(&cli.command[1..])
        .env("DUPLEX_TEST_WS_URL", format!("ws://{addr}/echo"))
        .env("DUPLEX_TEST_HTTP_URL", format!("http://{addr}"))
        .env("DUPLEX_TEST_CONTROL_URL", format!("http://{control_addr}"))
        .env(
            "DUPLEX_TEST_DEAD_WS_URL",
            format!("ws://127.0.0.1:{dead_port}/echo"),
        )
        .env("DUPLEX_TEST_PUSH_TOKEN", &push_token)
        .env("DUPLEX_TEST_SERVER_BIN", &server_bin)
        .status()
        .with_context(|| format!("cannot run {}", cli.command[0]));

    // Stop the server whatever happened to the command.
    let mut state = control::lock(&shared);
    if let Some(mut server) = state.server.take() {
        if let Some(status) = server.exited() {
            bail!("the server died during the run ({status}); see its log");
        }
        let exit = server.stop(Stop::Graceful)?;
        if !exit.success() {
            bail!("the server exited with {exit} after SIGTERM (expected success)");
        }
    }
    Ok(match status?.code() {
        Some(0) => ExitCode::SUCCESS,
        Some(code) => ExitCode::from(u8::try_from(code).unwrap_or(1)),
        None => ExitCode::FAILURE,
    })
}

/// A fresh push token for each run: 128 bits from the kernel, as hex. Not
/// a fixed string, so no test can pass by knowing it and no other local
/// process can push into the test server by guessing it.
fn random_token() -> std::io::Result<String> {
    use std::io::Read;

    let mut bytes = [0u8; 16];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut bytes)?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

#[cfg(test)]
mod tests {
    use super::random_token;

    #[test]
    fn push_tokens_are_random_hex() {
        let (a, b) = (
            random_token().expect("urandom"),
            random_token().expect("urandom"),
        );
        assert_eq!(a.len(), 32);
        assert!(a.bytes().all(|c| c.is_ascii_hexdigit()), "{a}");
        assert_ne!(a, b);
    }
}
