//! The echo load counts exactly the messages asked for when the server is
//! faithful, and reports a wrong echo as a mismatch instead of a success.

mod common;

use common::{Behaviour, echo_options, start_server};
use duplex_bench::error::ErrorKind;
use duplex_bench::output::Progress;
use duplex_bench::record::Mode;

#[tokio::test]
async fn closed_loop_counts_every_verified_echo() {
    let addr = start_server(Behaviour::Echo).await;
    let options = echo_options(addr, &["-c", "10", "-n", "300", "-s", "1KiB"]);
    let record = duplex_bench::echo::run(&options, &Progress::hidden())
        .await
        .expect("run completes");
    assert_eq!(record.mode, Mode::ClosedLoop);
    assert_eq!(record.connected, 10);
    assert_eq!(record.messages, 300);
    assert!(record.errors.is_empty(), "{:?}", record.error_samples);
    let latency = record.latency_us.expect("latency recorded");
    assert_eq!(latency.count, 300);
    assert!(latency.p50 > 0.0 && latency.p50 <= latency.p99 && latency.p99 <= latency.max);
    assert_eq!(record.connect_ms.expect("connect times").count, 10);
}

#[tokio::test]
async fn every_payload_size_round_trips() {
    let addr = start_server(Behaviour::Echo).await;
    // Each of the frame length encodings: 7-bit, 16-bit and 64-bit.
    for size in ["0", "20", "125", "126", "65535", "70000"] {
        let options = echo_options(addr, &["-c", "2", "-n", "20", "-s", size]);
        let record = duplex_bench::echo::run(&options, &Progress::hidden())
            .await
            .expect("run completes");
        assert_eq!(record.messages, 20, "size {size}");
        assert!(
            record.errors.is_empty(),
            "size {size}: {:?}",
            record.error_samples
        );
    }
}

#[tokio::test]
async fn a_corrupted_echo_is_a_mismatch() {
    let addr = start_server(Behaviour::CorruptFrom(5)).await;
    let options = echo_options(addr, &["-c", "4", "-n", "1000", "-s", "64"]);
    let record = duplex_bench::echo::run(&options, &Progress::hidden())
        .await
        .expect("run completes");
    assert_eq!(record.errors.get(&ErrorKind::Mismatch), Some(&4));
    // Each connection's first five echoes were right; nothing after them
    // counts.
    assert_eq!(record.messages, 20);
    let sample = &record.error_samples[&ErrorKind::Mismatch];
    assert!(sample.contains("byte 63"), "{sample}");
}

#[tokio::test]
async fn open_loop_sends_at_the_rate_and_checks_order() {
    let addr = start_server(Behaviour::Echo).await;
    let options = echo_options(
        addr,
        &["-c", "4", "-d", "500ms", "--rate", "2000", "-s", "32"],
    );
    let record = duplex_bench::echo::run(&options, &Progress::hidden())
        .await
        .expect("run completes");
    assert_eq!(record.mode, Mode::OpenLoop);
    assert!(record.errors.is_empty(), "{:?}", record.error_samples);
    // 2000/s for 0.5 s: never faster than asked; a loaded CI machine may
    // deliver fewer within the window.
    assert!(
        (300..=1100).contains(&record.messages),
        "{} messages",
        record.messages
    );

    let corrupt = start_server(Behaviour::CorruptFrom(3)).await;
    let options = echo_options(
        corrupt,
        &["-c", "2", "-d", "300ms", "--rate", "200", "-s", "32"],
    );
    let record = duplex_bench::echo::run(&options, &Progress::hidden())
        .await
        .expect("run completes");
    assert_eq!(record.errors.get(&ErrorKind::Mismatch), Some(&2));
}

#[tokio::test]
async fn refused_upgrades_fail_the_run_with_the_reason() {
    let addr = start_server(Behaviour::Refuse).await;
    let options = echo_options(addr, &["-c", "3", "-n", "10"]);
    let error = duplex_bench::echo::run(&options, &Progress::hidden())
        .await
        .expect_err("no connection can open");
    assert!(error.to_string().contains("HTTP 503"), "{error}");
}

#[tokio::test]
async fn json_text_round_trips_and_the_wire_is_counted() {
    let addr = start_server(Behaviour::Echo).await;
    let options = echo_options(
        addr,
        &["-c", "3", "-n", "90", "-s", "1KiB", "--payload", "json"],
    );
    let record = duplex_bench::echo::run(&options, &Progress::hidden())
        .await
        .expect("run completes");
    assert_eq!(record.messages, 90);
    assert!(record.errors.is_empty(), "{:?}", record.error_samples);
    // A 1 KiB frame: 2 bytes, a 16-bit length, and (sent) the mask key.
    let wire = record.wire.expect("wire counted");
    assert_eq!((wire.sent, wire.received), (90 * 1032, 90 * 1028));
    assert_eq!(wire.sent_per_message, 1032.0);

    // Open loop reads the stamp back from the JSON text.
    let options = echo_options(
        addr,
        &[
            "-c",
            "2",
            "-d",
            "300ms",
            "--rate",
            "400",
            "-s",
            "200",
            "--payload",
            "json",
        ],
    );
    let record = duplex_bench::echo::run(&options, &Progress::hidden())
        .await
        .expect("run completes");
    assert!(record.errors.is_empty(), "{:?}", record.error_samples);
    assert!(record.messages > 0);

    // Too small for the JSON around the stamp.
    let tiny = echo_options(addr, &["-n", "1", "-s", "83", "--payload", "json"]);
    assert!(tiny.validate().is_err());
}
