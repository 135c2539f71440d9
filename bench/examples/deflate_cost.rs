//! What compressing one message costs the server, by size and level: the
//! figures behind `--deflate-threshold` and the server's level 1
//! (docs/bench.md, permessage-deflate).
//!
//! ```sh
//! cargo run --release -p duplex-bench --example deflate_cost -- [LEVEL]   # default 1
//! ```
//!
//! Chat-like JSON with words drawn at random from a small vocabulary,
//! compressed and inflated 20,000 times per size with a fresh context each
//! (as the server does: no context takeover); the best of 5 rounds.

use std::time::Instant;

use duplex_protocol::deflate::{Deflater, Inflater};

/// A chat message of `len` bytes, different for each `seed`.
fn chat(len: usize, seed: u64) -> Vec<u8> {
    const WORDS: [&str; 40] = [
        "the", "a", "to", "and", "you", "i", "is", "it", "that", "for", "on", "we", "are", "this",
        "be", "with", "can", "have", "meeting", "lunch", "tomorrow", "deploy", "fixed", "thanks",
        "ok", "sure", "see", "later", "room", "message", "build", "failed", "passed", "review",
        "please", "check", "link", "today", "now", "great",
    ];
    if len == 0 {
        return Vec::new();
    }
    let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let mut out = format!(
        "{{\"type\":\"message\",\"room\":\"lobby\",\"from\":{{\"id\":{},\"name\":\"user{}\"}},\"text\":\"",
        next() % 100_000,
        next() % 1000
    );
    while out.len() + 2 < len {
        out.push_str(WORDS[(next() % 40) as usize]);
        out.push(' ');
    }
    out.truncate(len.saturating_sub(2));
    out.push_str("\"}");
    out.into_bytes()
}

fn main() {
    let level: u32 = std::env::args()
        .nth(1)
        .and_then(|arg| arg.parse().ok())
        .unwrap_or(1);
    let mut deflater = Deflater::new(level, 15);
    let mut inflater = Inflater::new();
    const N: usize = 20_000;
    println!("level {level}: size, compressed (ratio), compress µs, inflate µs");
    for len in [0usize, 64, 128, 256, 512, 1024, 2048, 4096, 16384] {
        let messages: Vec<Vec<u8>> = (0..64).map(|seed| chat(len, seed + 1)).collect();
        let compressed: Vec<Vec<u8>> = messages
            .iter()
            .map(|message| {
                let mut out = Vec::new();
                deflater.compress(message, &mut out);
                out
            })
            .collect();
        let (mut compress_ns, mut inflate_ns) = (f64::MAX, f64::MAX);
        let mut out = Vec::with_capacity(2 * len + 64);
        for _round in 0..5 {
            let start = Instant::now();
            for i in 0..N {
                out.clear();
                deflater.compress(&messages[i % 64], &mut out);
            }
            compress_ns = compress_ns.min(start.elapsed().as_nanos() as f64 / N as f64);
            let start = Instant::now();
            for i in 0..N {
                out.clear();
                if let Err(error) = inflater.inflate(&compressed[i % 64], len, &mut out) {
                    eprintln!("inflate failed: {error}");
                    std::process::exit(1);
                }
            }
            inflate_ns = inflate_ns.min(start.elapsed().as_nanos() as f64 / N as f64);
        }
        let size = compressed.iter().map(Vec::len).sum::<usize>() as f64 / 64.0;
        let ratio = if size > 0.0 { len as f64 / size } else { 0.0 };
        println!(
            "{len:>6} B  {size:>7.1} B ({ratio:.2}×)  {:>6.2} µs  {:>6.2} µs",
            compress_ns / 1000.0,
            inflate_ns / 1000.0
        );
    }
}
