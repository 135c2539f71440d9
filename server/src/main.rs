//! The `duplex` binary: parse the command line, set up logging, bind, and
//! hand over to [`duplex_server::run`] until SIGINT or SIGTERM. `duplex
//! push` instead publishes one message into a running server's room
//! ([`duplex_server::push`]).

use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};
use duplex_server::push::PushArgs;
use duplex_server::{Config, LogFormat};

/// Duplex: a conformant, hardened, full-duplex WebSocket server.
///
/// Echo on ws://ADDR/ and ws://ADDR/echo; rooms on ws://ADDR/ws; health on
/// http://ADDR/healthz. Without a subcommand it serves. Every option can
/// also be set through the environment variable shown.
#[derive(Debug, Parser)]
#[command(version, about, long_about)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,

    #[command(flatten)]
    config: Config,

    /// Log format: text for people, json for log collectors. Filter with
    /// RUST_LOG (default: info; one line per connection when it ends).
    #[arg(long, env = "DUPLEX_LOG_FORMAT", value_enum, default_value = "text")]
    log_format: LogFormat,

    /// Runtime worker threads. 0: one per CPU this process may use (taskset
    /// and cgroup limits count). 1 runs everything on a single-threaded
    /// runtime, which skips the work-stealing scheduler's synchronisation and
    /// is the fastest choice on one core.
    #[arg(long, env = "DUPLEX_WORKERS", default_value_t = 0)]
    workers: usize,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Publish MESSAGE into a room of a running server (POST
    /// /api/rooms/ROOM/messages with the push token).
    Push(PushArgs),
}

fn main() -> ExitCode {
    let mut cli = Cli::parse();
    let result = match cli.command.take() {
        Some(Command::Push(args)) => runtime(1).and_then(|runtime| runtime.block_on(push(args))),
        None => runtime(cli.workers).and_then(|runtime| runtime.block_on(serve(cli))),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            // The whole chain on one line, without a backtrace: these are
            // operator errors (a bad flag, a busy port), not bugs.
            eprintln!("duplex: {error:#}");
            ExitCode::FAILURE
        }
    }
}

/// A single-threaded runtime for one worker, work-stealing otherwise.
fn runtime(workers: usize) -> anyhow::Result<tokio::runtime::Runtime> {
    let workers = match workers {
        0 => std::thread::available_parallelism().map_or(1, usize::from),
        n => n,
    };
    let mut builder = if workers == 1 {
        tokio::runtime::Builder::new_current_thread()
    } else {
        let mut builder = tokio::runtime::Builder::new_multi_thread();
        builder.worker_threads(workers);
        builder
    };
    builder
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

async fn push(args: PushArgs) -> anyhow::Result<()> {
    let answer = duplex_server::push::push(&args)
        .await
        .with_context(|| format!("cannot push into room {:?}", args.room))?;
    println!("{answer}");
    Ok(())
}

async fn serve(cli: Cli) -> anyhow::Result<()> {
    duplex_server::telemetry::init(cli.log_format);
    cli.config.validate().context("invalid configuration")?;

    // Each connection is a file descriptor; the usual soft limit (1024) is
    // far below --max-connections, the hard limit usually is not.
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(limit) => tracing::debug!(limit, "file descriptor limit"),
        Err(error) => tracing::warn!(%error, "cannot raise the file descriptor limit"),
    }

    let listener = tokio::net::TcpListener::bind(cli.config.listen)
        .await
        .with_context(|| format!("cannot listen on {}", cli.config.listen))?;
    duplex_server::run(listener, cli.config, duplex_server::shutdown::signal()).await?;
    Ok(())
}
