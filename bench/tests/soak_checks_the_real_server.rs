//! `soak` against the real Duplex server, run in this process on
//! 127.0.0.1:0 (so this process's /proc figures are the server's): a short
//! soak passes with every echo and delivery checked, its samples written
//! and its plot drawn; refused connections and wrong echoes fail it.

mod common;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use clap::Parser;
use common::{Behaviour, start_server};
use duplex_bench::soak::sample::read_samples;
use duplex_bench::soak::{SoakOptions, SoakPlotOptions};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

#[derive(Parser)]
struct Cli {
    #[command(flatten)]
    options: SoakOptions,
}

/// A directory of its own for `name`'s results.
fn out_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("duplex-soak-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

/// A short soak of `addr` with `args`: 3 s of load sampled every 500 ms
/// after 1 s of warm-up, this process as the server.
fn options(addr: SocketAddr, out: &Path, args: &[&str]) -> SoakOptions {
    let url = format!("ws://{addr}");
    let pid = std::process::id().to_string();
    let out = out.to_string_lossy().into_owned();
    let mut argv = vec![
        "soak",
        "--url",
        &url,
        "--server-pid",
        &pid,
        "--out",
        &out,
        "--duration",
        "3s",
        "--warmup",
        "1s",
        "--sample-interval",
        "500ms",
        "--drain",
        "2s",
        "--timeout",
        "2s",
    ];
    argv.extend_from_slice(args);
    Cli::try_parse_from(argv).expect("valid options").options
}

/// The real server with `config` on a free port; cancel the token to stop
/// it.
async fn duplex(config: duplex_server::Config) -> (SocketAddr, CancellationToken) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("address");
    let shutdown = CancellationToken::new();
    tokio::spawn(duplex_server::run(
        listener,
        config,
        shutdown.clone().cancelled_owned(),
    ));
    (addr, shutdown)
}

#[tokio::test]
async fn a_short_soak_of_the_real_server_passes_and_leaves_its_results() {
    let (addr, shutdown) = duplex(duplex_server::Config::default()).await;
    let out = out_dir("pass");
    // 30 echo connections at 20/s, 30 members in 3 rooms with 10
    // publishes/s each; the in-process RSS is the generator's too, so its
    // bound is loose here (the checks' own tests hold it to the figure).
    let options = options(
        addr,
        &out,
        &[
            "--connections",
            "60",
            "--rooms",
            "3",
            "--echo-rate",
            "20",
            "--publish-rate",
            "10",
            "--max-rss-growth",
            "50",
        ],
    );
    let summary = duplex_bench::soak::run(&options).await.expect("soak runs");
    shutdown.cancel();
    assert!(summary.passed, "{}", summary.to_text());
    assert_eq!(
        (summary.echo_connections, summary.room_connections),
        (30, 30)
    );
    assert_eq!(summary.errors, 0, "{}", summary.to_text());
    // About 30 × 20 × 3 echoes and 3 × 10 × 3 publishes; every delivery
    // due arrived.
    assert!(summary.echoes_received > 1_000, "{}", summary.to_text());
    assert_eq!(summary.echoes_received, summary.echoes_sent);
    assert!(summary.published > 50, "{}", summary.to_text());
    assert_eq!(summary.delivered, summary.deliveries_expected);
    assert_eq!(
        summary.deliveries_expected,
        summary.published * 10,
        "each room has 10 members"
    );

    let samples = read_samples(&out.join("samples.csv")).expect("samples written");
    assert_eq!(samples.len(), 7, "at 0, 0.5, ... 3 s");
    assert!(samples.iter().all(|s| s.open_connections == 60));
    assert!(
        samples
            .iter()
            .all(|s| s.server_fds >= 60 && s.server_rss_kib > 0)
    );
    assert!(samples[1..].iter().all(|s| s.echoes_per_s > 300.0));
    let svg = std::fs::read_to_string(out.join("plot.svg")).expect("plot drawn");
    assert!(svg.starts_with("<svg") && svg.contains("PASS"));

    // The plot is redrawn from the files alone.
    std::fs::remove_file(out.join("plot.svg")).expect("removed");
    duplex_bench::soak::replot(&SoakPlotOptions { dir: out.clone() }).expect("redrawn");
    assert!(out.join("plot.svg").exists());
    std::fs::remove_dir_all(&out).expect("cleaned up");
}

#[tokio::test]
async fn connections_the_server_refuses_fail_the_soak() {
    let mut config = duplex_server::Config::default();
    config.max_connections = 30;
    let (addr, shutdown) = duplex(config).await;
    let out = out_dir("refused");
    let options = options(
        addr,
        &out,
        &[
            "--connections",
            "40",
            "--rooms",
            "2",
            "--max-rss-growth",
            "50",
        ],
    );
    let summary = duplex_bench::soak::run(&options).await.expect("soak runs");
    shutdown.cancel();
    assert!(!summary.passed);
    assert_eq!(summary.connection_errors.get("handshake"), Some(&10));
    let failed: Vec<&str> = summary
        .checks
        .iter()
        .filter(|c| !c.passed)
        .map(|c| c.name.as_str())
        .collect();
    assert_eq!(
        failed,
        ["no errors", "connections held"],
        "{}",
        summary.to_text()
    );
    std::fs::remove_dir_all(&out).expect("cleaned up");
}

#[tokio::test]
async fn a_wrong_echo_fails_the_soak() {
    // Not Duplex: a server that flips a bit of every connection's third
    // echo. All connections on /echo, so no rooms are needed.
    let addr = start_server(Behaviour::CorruptFrom(2)).await;
    let out = out_dir("corrupt");
    let options = options(
        addr,
        &out,
        &[
            "--connections",
            "10",
            "--echo-share",
            "1",
            "--echo-rate",
            "10",
        ],
    );
    let summary = duplex_bench::soak::run(&options).await.expect("soak runs");
    assert!(!summary.passed);
    assert_eq!(summary.connection_errors.get("mismatch"), Some(&10));
    assert_eq!(summary.echoes_received, 20, "two good echoes each");
    let samples = read_samples(&out.join("samples.csv")).expect("samples written");
    assert_eq!(samples.last().map(|s| s.errors), Some(10));
    assert_eq!(samples.last().map(|s| s.open_connections), Some(0));
    std::fs::remove_dir_all(&out).expect("cleaned up");
}
