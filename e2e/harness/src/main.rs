//! `duplex-browser-harness`: runs a command (the browser test suites)
//! against a real release Duplex server.
//!
//! It starts the server on a free loopback port with `--deflate on` given
//! explicitly, whatever the server's default (the harness's `--deflate off`
//! turns it off, to see the compression tests fail), a second server with
//! `--deflate off` on another port, and a third with TLS and tokens (below);
//! opens a control endpoint the tests can call to stop and restart the
//! first server on the same port ([`control`]); runs the command with the
//! URLs in its environment; then stops the servers (by their PIDs, with
//! SIGTERM) and exits with the command's status.
//!
//! A third server speaks TLS and wants tokens: `--tls-cert`/`--tls-key`
//! with a self-signed certificate for `localhost` and `127.0.0.1` made at
//! each start under `target/browser-tests/tls/` ([`tls`]), and
//! `--jwt-secret` with a random secret, so `/ws` needs a token there
//! (`/echo` does not). It serves the page too when the harness has
//! `--ui-dir`. Not controllable, not in the Redis cluster (memory engine).
//! Browsers trust exactly that certificate through Chromium's
//! `--ignore-certificate-errors-spki-list` with the key's hash: the page's
//! test passes the flag itself, and wasm-bindgen-test-runner reads it from
//! the `webdriver.json` written next to the certificate.
//!
//! The Redis variant (`--redis`, or `DUPLEX_HARNESS_REDIS=1` in the
//! environment, so `DUPLEX_HARNESS_REDIS=1 scripts/test-browser.sh` needs
//! no change to the script) first starts a real `redis-server` on a free
//! loopback port with persistence off ([`redis`]) and gives both servers
//! `--redis redis://127.0.0.1:PORT`: they become one cluster sharing the
//! rooms' history, so a restarted server still has it, and a message
//! pushed to the second server while the first is down is in the history
//! the first replays. Redis is stopped by its PID after the servers. The
//! control endpoint can then also stop and restart Redis (empty).
//!
//! Environment given to the command:
//! - `DUPLEX_TEST_WS_URL`: `ws://127.0.0.1:PORT/echo`
//! - `DUPLEX_TEST_HTTP_URL`: `http://127.0.0.1:PORT` (the page, with `--ui-dir`)
//! - `DUPLEX_TEST_CONTROL_URL`: `http://127.0.0.1:PORT2` (see [`control`])
//! - `DUPLEX_TEST_DEFLATE_OFF_WS_URL`: `ws://127.0.0.1:PORT3/echo`, the
//!   second server, which never accepts permessage-deflate (not
//!   controllable, no `--server-arg`s)
//! - `DUPLEX_TEST_DEAD_WS_URL`: a WebSocket URL on a loopback port nothing
//!   listens on
//! - `DUPLEX_TEST_PUSH_TOKEN`: the server's `--push-token`, random for each
//!   run, so the tests can push into rooms (`POST /api/rooms/{room}/messages`
//!   or `duplex push`)
//! - `DUPLEX_TEST_SERVER_BIN`: the absolute path of the server binary, for
//!   tests that run its CLI (`duplex push`)
//! - `DUPLEX_TEST_DEFLATE_OFF_HTTP_URL`: `http://127.0.0.1:PORT3`, the
//!   second server's HTTP API (with the same push token); in the Redis
//!   variant, the first server's cluster peer
//! - `DUPLEX_TEST_REDIS_URL`: `redis://127.0.0.1:PORT4`, only in the Redis
//!   variant (tests expect history to survive a server restart when it is
//!   set, and to be lost when it is not)
//! - `DUPLEX_TEST_TLS_HTTP_URL`: `https://127.0.0.1:PORT5`, the TLS server
//!   (the page at `/` with `--ui-dir`)
//! - `DUPLEX_TEST_TLS_WS_URL`: `wss://127.0.0.1:PORT5/echo` (its `/ws`
//!   needs a token)
//! - `DUPLEX_TEST_JWT_SECRET`: the TLS server's `--jwt-secret` (HS256),
//!   random for each run, for tests that sign their own tokens
//! - `DUPLEX_TEST_JWT`: a token signed with it, `sub` `harness`, valid for
//!   an hour, no `rooms` claim, for tests that cannot sign (wasm)
//! - `DUPLEX_TEST_TLS_CERT`: the certificate's PEM file (to trust it as a
//!   root, e.g. `NODE_EXTRA_CA_CERTS` or a rustls root store)
//! - `DUPLEX_TEST_TLS_SPKI`: base64 SHA-256 of its public key, for
//!   Chromium's `--ignore-certificate-errors-spki-list=…`
//! - `WASM_BINDGEN_TEST_WEBDRIVER_JSON`: the `webdriver.json` with that
//!   flag, which wasm-bindgen-test-runner reads as the browser's
//!   capabilities
//!
//! ```text
//! duplex-browser-harness [--server target/release/duplex] [--deflate on|off] [--redis] \
//!     [--ui-dir dist] [--server-arg=ARG]... -- cargo test --target wasm32-unknown-unknown -p duplex-client
//! ```

mod control;
mod redis;
mod server;
mod tls;
mod token;

use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, bail};
use clap::{Parser, ValueEnum};

use crate::control::{Controlled, RedisControl};
use crate::redis::{Redis, RedisLauncher};
use crate::server::{Launcher, Server, Stop};
use crate::tls::TlsFiles;

/// How long `DUPLEX_TEST_JWT` is valid: longer than any browser suite run.
const JWT_VALID_FOR: Duration = Duration::from_secs(3600);

/// The server's `--deflate` modes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Deflate {
    /// Accept permessage-deflate when the client offers it.
    On,
    /// Never accept it.
    Off,
}

impl Deflate {
    fn as_arg(self) -> &'static str {
        match self {
            Self::On => "on",
            Self::Off => "off",
        }
    }
}

/// Runs COMMAND against a real Duplex server started on a free loopback
/// port; tests can stop and restart it through a control endpoint.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Cli {
    /// The server binary [default: target/release/duplex in this workspace].
    #[arg(long)]
    server: Option<PathBuf>,
    /// An extra argument for the first server (repeat for more), e.g.
    /// `--server-arg=--max-connections --server-arg=50`.
    #[arg(long = "server-arg", allow_hyphen_values = true)]
    server_args: Vec<String>,
    /// The page (a `trunk build` output) for the first server and the TLS
    /// server to serve (their `--ui-dir`).
    #[arg(long)]
    ui_dir: Option<PathBuf>,
    /// permessage-deflate on the server (its `--deflate`, always passed
    /// explicitly, so a change of the server's default changes no test).
    /// `off` is for checking that the compression tests can fail.
    #[arg(long, value_enum, default_value = "on")]
    deflate: Deflate,
    /// The server's log file [default: target/browser-tests/server.log].
    #[arg(long)]
    log: Option<PathBuf>,
    /// Start a real redis-server on a free port and give both servers
    /// `--redis redis://127.0.0.1:PORT` (one cluster with a shared
    /// history). Its log goes next to the server's (`…-redis.log`).
    /// `DUPLEX_HARNESS_REDIS=1` (or true, yes, on) does the same.
    #[arg(long, env = "DUPLEX_HARNESS_REDIS", value_parser = clap::builder::BoolishValueParser::new())]
    redis: bool,
    /// The redis-server binary for `--redis`.
    #[arg(long, default_value = "redis-server")]
    redis_server: PathBuf,
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
    // Server flags the harness sets itself, and what to use instead.
    for (flag, own) in [
        ("--deflate", "--deflate on|off"),
        ("--redis", "--redis, which starts Redis"),
        ("--ui-dir", "--ui-dir, which the TLS server gets too"),
    ] {
        let assigned = format!("{flag}=");
        if let Some(arg) = cli
            .server_args
            .iter()
            .find(|arg| *arg == flag || arg.starts_with(&assigned))
        {
            bail!("{arg} in --server-arg: use the harness's own {own}");
        }
    }
    let binary = cli.server.unwrap_or_else(|| server::default_binary(&root));
    let binary = std::path::absolute(&binary)
        .with_context(|| format!("cannot resolve {}", binary.display()))?;
    let push_token = random_token().context("cannot make a push token")?;
    let plain_log = sibling_log(&log, "deflate-off");
    std::fs::File::create(&plain_log)
        .with_context(|| format!("cannot create {}", plain_log.display()))?;
    let tls_log = sibling_log(&log, "tls");
    std::fs::File::create(&tls_log)
        .with_context(|| format!("cannot create {}", tls_log.display()))?;
    let tls = TlsFiles::make(&root.join("target/browser-tests/tls"))
        .context("cannot make the TLS server's certificate")?;
    let jwt_secret = random_token().context("cannot make a JWT secret")?;
    let jwt = token::hs256(&jwt_secret, "harness", JWT_VALID_FOR)
        .context("cannot sign DUPLEX_TEST_JWT")?;
    let ui_args: Vec<String> = cli
        .ui_dir
        .iter()
        .flat_map(|dir| ["--ui-dir".to_owned(), dir.display().to_string()])
        .collect();
    let redis_launcher = cli.redis.then(|| RedisLauncher {
        binary: cli.redis_server.clone(),
        log: sibling_log(&log, "redis"),
    });
    if let Some(launcher) = &redis_launcher {
        std::fs::File::create(&launcher.log)
            .with_context(|| format!("cannot create {}", launcher.log.display()))?;
    }
    // Redis first: the servers connect to it at start.
    let redis = redis_launcher
        .as_ref()
        .map(RedisLauncher::start)
        .transpose()
        .context("cannot start redis-server (the harness's --redis)")?;
    let cluster: Vec<String> = redis
        .as_ref()
        .map(|redis| vec!["--redis".into(), redis.url()])
        .unwrap_or_default();
    let redis_url = redis.as_ref().map(Redis::url);
    let mut plain_args = vec!["--deflate".into(), Deflate::Off.as_arg().into()];
    plain_args.extend(cluster.iter().cloned());
    let plain_launcher = Launcher {
        binary: binary.clone(),
        args: plain_args,
        log: plain_log,
        push_token: push_token.clone(),
        env: Vec::new(),
    };
    let mut tls_args = vec![
        "--deflate".into(),
        Deflate::On.as_arg().into(),
        "--tls-cert".into(),
        tls.cert.display().to_string(),
        "--tls-key".into(),
        tls.key.display().to_string(),
    ];
    tls_args.extend(ui_args.iter().cloned());
    let tls_launcher = Launcher {
        binary: binary.clone(),
        args: tls_args,
        log: tls_log,
        push_token: push_token.clone(),
        env: vec![("DUPLEX_JWT_SECRET", jwt_secret.clone())],
    };
    let mut args = vec!["--deflate".into(), cli.deflate.as_arg().into()];
    args.extend(cluster);
    args.extend(ui_args);
    args.extend(cli.server_args);
    let launcher = Launcher {
        binary,
        args,
        log,
        push_token,
        env: Vec::new(),
    };
    let loopback = SocketAddr::from(([127, 0, 0, 1], 0));
    // Everything that can fail without a server running comes first, so
    // an error leaves no server behind (and no Redis: stopped on error).
    let stop_redis = |redis: Option<Redis>| {
        if let Some(redis) = redis {
            let _ = redis.stop(Stop::Kill);
        }
    };
    let (control, dead) = match (TcpListener::bind(loopback), TcpListener::bind(loopback)) {
        (Ok(control), Ok(dead)) => (control, dead),
        (Err(error), _) | (_, Err(error)) => {
            stop_redis(redis);
            return Err(error).context("cannot bind the control endpoint");
        }
    };
    let control_addr = control.local_addr()?;
    // `dead`: a port that was free a moment ago and that nothing binds on
    // purpose; held until the servers have their ports, so neither gets
    // this one.
    let dead_port = dead.local_addr()?.port();
    let plain = match plain_launcher.start(loopback) {
        Ok(plain) => plain,
        Err(error) => {
            stop_redis(redis);
            return Err(error).context("cannot start the --deflate off server");
        }
    };
    let server = match launcher.start(loopback) {
        Ok(server) => server,
        Err(error) => {
            let _ = plain.stop(Stop::Kill);
            stop_redis(redis);
            return Err(error).context("cannot start the server");
        }
    };
    let secure = match tls_launcher.start(loopback) {
        Ok(secure) => secure,
        Err(error) => {
            let _ = server.stop(Stop::Kill);
            let _ = plain.stop(Stop::Kill);
            stop_redis(redis);
            return Err(error).context("cannot start the TLS server");
        }
    };
    drop(dead);
    let addr = server.addr;
    let plain_addr = plain.addr;
    let tls_addr = secure.addr;
    let pid = server.pid();
    let push_token = launcher.push_token.clone();
    let server_bin = launcher.binary.clone();
    let redis_note = redis.as_ref().map_or(String::new(), |redis| {
        format!(", redis-server pid {} on {}", redis.pid(), redis.url())
    });
    let shared = Arc::new(Mutex::new(Controlled {
        launcher,
        addr,
        server: Some(server),
        redis: redis_launcher
            .zip(redis)
            .map(|(launcher, redis)| RedisControl {
                launcher,
                port: redis.addr.port(),
                running: Some(redis),
            }),
    }));

    {
        let shared = Arc::clone(&shared);
        std::thread::spawn(move || control::serve(control, shared));
    }

    eprintln!(
        "harness: server pid {pid} on ws://{addr}/echo (--deflate {}), --deflate off server pid {} \
         on ws://{plain_addr}/echo, TLS server pid {} on wss://{tls_addr}/echo{redis_note}, \
         control http://{control_addr}, running: {}",
        cli.deflate.as_arg(),
        plain.pid(),
        secure.pid(),
        cli.command.join(" ")
    );
    let mut command = Command::new(&cli.command[0]);
    if let Some(url) = &redis_url {
        command.env("DUPLEX_TEST_REDIS_URL", url);
    }
    let status = command
        .args(&cli.command[1..])
        .env("DUPLEX_TEST_WS_URL", format!("ws://{addr}/echo"))
        .env("DUPLEX_TEST_HTTP_URL", format!("http://{addr}"))
        .env("DUPLEX_TEST_CONTROL_URL", format!("http://{control_addr}"))
        .env(
            "DUPLEX_TEST_DEFLATE_OFF_WS_URL",
            format!("ws://{plain_addr}/echo"),
        )
        .env(
            "DUPLEX_TEST_DEAD_WS_URL",
            format!("ws://127.0.0.1:{dead_port}/echo"),
        )
        .env("DUPLEX_TEST_PUSH_TOKEN", &push_token)
        .env("DUPLEX_TEST_SERVER_BIN", &server_bin)
        .env(
            "DUPLEX_TEST_DEFLATE_OFF_HTTP_URL",
            format!("http://{plain_addr}"),
        )
        .env("DUPLEX_TEST_TLS_HTTP_URL", format!("https://{tls_addr}"))
        .env("DUPLEX_TEST_TLS_WS_URL", format!("wss://{tls_addr}/echo"))
        .env("DUPLEX_TEST_JWT_SECRET", &jwt_secret)
        .env("DUPLEX_TEST_JWT", &jwt)
        .env("DUPLEX_TEST_TLS_CERT", &tls.cert)
        .env("DUPLEX_TEST_TLS_SPKI", &tls.spki_sha256)
        .env("WASM_BINDGEN_TEST_WEBDRIVER_JSON", &tls.webdriver_json)
        .status()
        .with_context(|| format!("cannot run {}", cli.command[0]));

    // Stop the servers whatever happened to the command.
    let mut state = control::lock(&shared);
    let mut problems = Vec::new();
    if let Some(server) = state.server.take()
        && let Err(error) = finish(server)
    {
        problems.push(format!("the server {error:#}"));
    }
    if let Err(error) = finish(plain) {
        problems.push(format!("the --deflate off server {error:#}"));
    }
    if let Err(error) = finish(secure) {
        problems.push(format!("the TLS server {error:#}"));
    }
    // Redis last: the servers may write to it until they exit.
    if let Some(redis) = state.redis.take().and_then(|control| control.running)
        && let Err(error) = finish_redis(redis)
    {
        problems.push(format!("redis-server {error:#}"));
    }
    if !problems.is_empty() {
        bail!("{}", problems.join("; "));
    }
    Ok(match status?.code() {
        Some(0) => ExitCode::SUCCESS,
        Some(code) => ExitCode::from(u8::try_from(code).unwrap_or(1)),
        None => ExitCode::FAILURE,
    })
}

/// Stops a server that should still be running, gracefully; an error if it
/// died on its own or did not exit cleanly.
fn finish(mut server: Server) -> anyhow::Result<()> {
    if let Some(status) = server.exited() {
        bail!("died during the run ({status}); see its log");
    }
    let exit = server.stop(Stop::Graceful)?;
    if !exit.success() {
        bail!("exited with {exit} after SIGTERM (expected success)");
    }
    Ok(())
}

/// Stops Redis, which should still be running.
fn finish_redis(mut redis: Redis) -> anyhow::Result<()> {
    if let Some(status) = redis.exited() {
        bail!("died during the run ({status}); see its log");
    }
    let exit = redis.stop(Stop::Graceful)?;
    if !exit.success() {
        bail!("exited with {exit} after SIGTERM (expected success)");
    }
    Ok(())
}

/// `dir/server-wasm.log` with `tag`: `dir/server-wasm-TAG.log`.
fn sibling_log(log: &Path, tag: &str) -> PathBuf {
    let stem = log
        .file_stem()
        .map_or_else(|| "server".into(), |stem| stem.to_string_lossy());
    let name = match log.extension() {
        Some(ext) => format!("{stem}-{tag}.{}", ext.to_string_lossy()),
        None => format!("{stem}-{tag}"),
    };
    log.with_file_name(name)
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
    use std::path::Path;

    use super::{random_token, sibling_log};

    #[test]
    fn the_second_servers_log_sits_next_to_the_first() {
        assert_eq!(
            sibling_log(
                Path::new("target/browser-tests/server-wasm.log"),
                "deflate-off"
            ),
            Path::new("target/browser-tests/server-wasm-deflate-off.log")
        );
        assert_eq!(
            sibling_log(Path::new("logs/server"), "x"),
            Path::new("logs/server-x")
        );
    }

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
