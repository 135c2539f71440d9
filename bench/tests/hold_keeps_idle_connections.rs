//! `hold` opens every connection, keeps it for the duration and reads the
//! server's memory before and after.

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
