//! `hold` opens every connection, keeps it for the duration and reads the
//! server's memory before and after; with `--echo-first`, after one echo
//! per connection.

mod common;

use common::{Behaviour, hold_options, start_server};
use duplex_bench::output::Progress;
use duplex_bench::record::Mode;

#[tokio::test]
async fn idle_connections_are_held_and_memory_is_read() {
    let addr = start_server(Behaviour::Echo).await;
    // The server runs in this process, so this process's memory is the
    // server's.
    let pid = std::process::id().to_string();
    let options = hold_options(
        addr,
        &[
            "-c",
            "200",
            "-d",
            "200ms",
            "--settle",
            "100ms",
            "--server-pid",
            &pid,
        ],
    );
    let record = duplex_bench::hold::run(&options, &Progress::hidden())
        .await
        .expect("run completes");
    assert_eq!(record.mode, Mode::Hold);
    assert_eq!(record.connected, 200);
    assert!(record.errors.is_empty(), "{:?}", record.error_samples);
    let memory = record.memory.expect("memory read");
    assert!(memory.server_rss_after_kib >= memory.server_rss_before_kib);
    assert_eq!(record.connect_ms.expect("connect times").count, 200);
}

#[tokio::test]
async fn echo_first_connections_are_echoed_then_held() {
    let addr = start_server(Behaviour::Echo).await;
    let options = hold_options(
        addr,
        &[
            "-c",
            "50",
            "-d",
            "100ms",
            "--settle",
            "50ms",
            "--echo-first",
        ],
    );
    assert_eq!(options.echo_size, 20, "the documented default");
    let record = duplex_bench::hold::run(&options, &Progress::hidden())
        .await
        .expect("run completes");
    assert_eq!(record.connected, 50);
    assert_eq!(record.payload_bytes, 20);
    assert!(record.errors.is_empty(), "{:?}", record.error_samples);
}

#[tokio::test]
async fn a_wrong_first_echo_is_an_error_not_a_held_connection() {
    let addr = start_server(Behaviour::CorruptFrom(0)).await;
    let options = hold_options(
        addr,
        &[
            "-c",
            "10",
            "-d",
            "100ms",
            "--settle",
            "50ms",
            "--echo-first",
            "--echo-size",
            "64",
        ],
    );
    let error = duplex_bench::hold::run(&options, &Progress::hidden())
        .await
        .expect_err("no connection survives its first echo");
    assert!(error.to_string().contains("wrong echo"), "{error}");
}
