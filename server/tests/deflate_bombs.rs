//! Compression bombs: a few KiB on the wire that inflate to 64 MiB, in
//! one frame and over a thousand. The real binary (default
//! `--max-message-size` 16 MiB) must close with 1009 at the limit, its
//! peak resident memory growing by less than 32 MiB: inflated data is made
//! only as tungstenite reads it and stops at the limit.

use crate::common::deflate::{DeflateClient, frames};
use crate::common::op;
use crate::common::process::Binary;
use duplex_protocol::deflate::{Deflater, TAIL};

const BOMB: usize = 64 << 20;
const COPY: usize = 1 << 20;

/// 64 MiB of one letter, compressed: 1 MiB compressed once, its copies
/// joined by the sync-flush marker (each copy a complete run of deflate
/// blocks), the last one without (the receiver appends it).
fn bomb() -> Vec<u8> {
    // The best level: deflate's ratio tops out near 1,000 to 1.
    let mut copy = Vec::new();
    Deflater::new(9, 15).compress(&vec![b'a'; COPY], &mut copy);
    let mut bomb = Vec::new();
    for i in 0..BOMB / COPY {
        if i > 0 {
            bomb.extend_from_slice(&TAIL);
        }
        bomb.extend_from_slice(&copy);
    }
    bomb
}

async fn survives(frame_size: usize) {
    let server = Binary::start(
        &["--workers", "1", "--deflate", "on"],
        "warn,duplex_server::server=info",
    )
    .await;
    let mut client = DeflateClient::connect(server.addr, "/").await;
    // A small message first, so the baseline has seen a compressed one.
    client
        .send(op::TEXT, b"warm up, warm up", true, 0, false)
        .await;
    client.next_message().await;
    let baseline = server.peak_rss();
    let bomb = bomb();
    assert!(bomb.len() < BOMB / 500, "{} bytes on the wire", bomb.len());
    client
        .raw
        .send(&frames(op::BINARY, &bomb, true, frame_size, false))
        .await;
    client.expect_close_code(1009).await;
    let grown = server.peak_rss().saturating_sub(baseline);
    assert!(
        grown < 32 << 20,
        "a {BOMB}-byte bomb grew the server's peak memory by {} KiB",
        grown / 1024
    );
    // And the server serves on.
    let mut next = DeflateClient::connect(server.addr, "/").await;
    next.send(op::TEXT, b"after the bomb", true, 0, false).await;
    assert_eq!(next.next_message().await.payload, b"after the bomb");
}

#[tokio::test]
async fn a_bomb_in_one_frame_is_closed_with_1009() {
    survives(0).await;
}

#[tokio::test]
async fn a_bomb_over_a_thousand_frames_is_closed_with_1009() {
    // The compressed bytes cut into 1,000 frames or so.
    survives(64).await;
}
