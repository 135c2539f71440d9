//! The `duplex-bench` binary: parses the command line and runs one of the
//! library's commands; prints the result as text or JSON; exits 0 when
//! every connection went well, 2 when some ended in error, 1 when the run
//! itself failed.

use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};
use duplex_bench::echo::EchoOptions;
use duplex_bench::fanout::FanoutOptions;
use duplex_bench::hold::HoldOptions;
use duplex_bench::output::Progress;
use duplex_bench::record::RunRecord;
use duplex_bench::report::ReportOptions;
use duplex_bench::soak::{SoakOptions, SoakPlotOptions};

/// duplex-bench: WebSocket load generator (echo, fan-out, idle hold, soak)
/// and the report of a comparison between servers.
///
/// Runs on one thread, so it can be pinned to one core (taskset -c 1)
/// apart from the server's. Every echo is checked byte for byte.
#[derive(Debug, Parser)]
#[command(version, about, long_about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Echo load: each connection sends messages and checks every echo
    /// (closed loop; open loop at a fixed rate with --rate).
    Echo(EchoOptions),
    /// Fan-out on Duplex's rooms (/ws): members x publishers x rate ->
    /// delivery latency and deliveries per second.
    Fanout(FanoutOptions),
    /// Open idle connections and keep them; with --server-pid, the server's
    /// memory per connection.
    Hold(HoldOptions),
    /// Render the comparison table (markdown) and chart (SVG) from a
    /// directory of --json results.
    Report(ReportOptions),
    /// Soak a Duplex server: connections held for minutes under echo and
    /// room fan-out load, its RSS and open descriptors sampled, every
    /// error counted; writes samples.csv, summary.json and plot.svg and
    /// exits 2 unless memory stayed flat with no error.
    Soak(SoakOptions),
    /// Redraw a soak's plot.svg from its samples.csv and summary.json.
    SoakPlot(SoakPlotOptions),
}

fn main() -> ExitCode {
    match run() {
        Ok(code) => code,
        Err(error) => {
            eprintln!("duplex-bench: error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> anyhow::Result<ExitCode> {
    let cli = Cli::parse();
    match cli.command {
        Command::Echo(options) => {
            raise_fd_limit();
            let progress = Progress::new(&options.output);
            let record = duplex_bench::block_on(duplex_bench::echo::run(&options, &progress))
                .context("cannot start the runtime")?
                .context("echo run failed")?;
            print(&record, options.output.json)
        }
        Command::Fanout(options) => {
            raise_fd_limit();
            let report = duplex_bench::block_on(duplex_bench::fanout::run(&options))
                .context("cannot start the runtime")?
                .context("fan-out run failed")?;
            if options.json {
                println!(
                    "{}",
                    serde_json::to_string(&report).context("cannot encode the result")?
                );
            } else {
                print!("{}", report.to_text());
            }
            Ok(if report.lost > 0 || report.dropped_connections > 0 {
                ExitCode::from(2)
            } else {
                ExitCode::SUCCESS
            })
        }
        Command::Hold(options) => {
            raise_fd_limit();
            let progress = Progress::new(&options.output);
            let record = duplex_bench::block_on(duplex_bench::hold::run(&options, &progress))
                .context("cannot start the runtime")?
                .context("hold run failed")?;
            print(&record, options.output.json)
        }
        Command::Soak(options) => {
            raise_fd_limit();
            let summary = duplex_bench::block_on(duplex_bench::soak::run(&options))
                .context("cannot start the runtime")?
                .context("soak failed")?;
            print!("{}", summary.to_text());
            eprintln!(
                "wrote {0}/samples.csv, {0}/summary.json and {0}/plot.svg",
                options.out.display()
            );
            Ok(if summary.passed {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(2)
            })
        }
        Command::SoakPlot(options) => {
            let plot = duplex_bench::soak::replot(&options).context("soak-plot failed")?;
            eprintln!("wrote {}", plot.display());
            Ok(ExitCode::SUCCESS)
        }
        Command::Report(options) => {
            let markdown = duplex_bench::report::run(&options).context("report failed")?;
            print!("{markdown}");
            eprintln!(
                "wrote {0}/results.md, {0}/chart.svg and {0}/results.json",
                options.out.display()
            );
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// Every connection is a file descriptor; the usual soft limit (1024) is
/// far below the connections a hold run opens.
fn raise_fd_limit() {
    if let Err(error) = rlimit::increase_nofile_limit(u64::MAX) {
        eprintln!("duplex-bench: warning: cannot raise the file descriptor limit: {error}");
    }
}

fn print(record: &RunRecord, json: bool) -> anyhow::Result<ExitCode> {
    if json {
        println!(
            "{}",
            serde_json::to_string(record).context("cannot encode the result")?
        );
    } else {
        print!("{}", record.to_text());
    }
    Ok(if record.error_total() > 0 {
        ExitCode::from(2)
    } else {
        ExitCode::SUCCESS
    })
}
