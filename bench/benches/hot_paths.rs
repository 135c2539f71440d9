//! Criterion benchmarks of the generator's per-message work: stamping a
//! message, encoding and masking it into a frame, parsing the echo's header
//! and verifying its bytes. Together they bound how many messages per second
//! one generator core can drive, apart from the system calls.
//!
//! Run with `cargo bench -p duplex-bench`.

use criterion::{BenchmarkId, Criterion, Throughput, criterion_main};
use duplex_bench::payload::{Payload, PayloadKind};
use duplex_protocol::deflate::{Deflater, Inflater};
use duplex_protocol::frame::{Header, OpCode, Role, apply_mask, encode_frame};
use std::hint::black_box;

/// The payload sizes of the comparison's configurations.
const SIZES: [usize; 4] = [20, 128, 1024, 16 * 1024];

fn message_cycle(c: &mut Criterion) {
    let mut group = c.benchmark_group("message_cycle");
    for size in SIZES {
        group.throughput(Throughput::Bytes(size as u64));
        // Stamp, encode and mask; then parse the echo (an unmasked server
        // frame with the same payload) and verify it.
        let mut payload = Payload::new(7, size);
        let mut out = Vec::with_capacity(size + 14);
        let mut echo = Vec::new();
        let server_header = Header::new(OpCode::Binary, size as u64);
        encode_frame(&mut echo, &server_header, payload.bytes());
        let mut seq = 0_u64;
        group.bench_with_input(BenchmarkId::from_parameter(size), &size, |b, _| {
            b.iter(|| {
                seq += 1;
                out.clear();
                let message = payload.stamp(0, 0);
                let header = Header::new(OpCode::Binary, message.len() as u64)
                    .masked((seq as u32).to_ne_bytes());
                encode_frame(&mut out, &header, message);
                // Parse and check, as the client's reader does.
                let start = Header::parse(black_box(&echo))
                    .filter(|(header, _)| header.validate(Role::Server).is_ok())
                    .map_or(0, |(_, used)| used);
                black_box(payload.verify(&echo[start..]).is_ok())
            });
        });
    }
    group.finish();
}

/// With --deflate: compressing a chat JSON message (a fresh context each
/// time, as the client sends it) and inflating its level-1 form (as the
/// client reads the server's compressed echo).
fn deflate(c: &mut Criterion) {
    let mut group = c.benchmark_group("deflate");
    for size in [100, 1024, 16 * 1024] {
        group.throughput(Throughput::Bytes(size as u64));
        let mut payload = Payload::of_kind(PayloadKind::Json, 7, size);
        let message = payload.stamp(1, 1).to_vec();
        let mut inflater = Inflater::new();
        let mut compressed = Vec::with_capacity(size + 64);
        let mut inflated = Vec::with_capacity(size);
        // Level 1 is the default (zlib-rs: zlib-ng's quick strategy, static
        // Huffman codes only); 2 is the fastest with dynamic codes; 6 is
        // zlib's default.
        for level in [6, 2, 1] {
            let mut deflater = Deflater::new(level, 15);
            let name = format!("compress-level-{level}");
            group.bench_with_input(BenchmarkId::new(name, size), &size, |b, _| {
                b.iter(|| {
                    compressed.clear();
                    deflater.compress(black_box(&message), &mut compressed);
                });
            });
        }
        group.bench_with_input(BenchmarkId::new("inflate", size), &size, |b, _| {
            b.iter(|| {
                inflated.clear();
                black_box(inflater.inflate(black_box(&compressed), 1 << 20, &mut inflated))
            });
        });
    }
    group.finish();
}

fn mask(c: &mut Criterion) {
    let mut group = c.benchmark_group("mask");
    for size in SIZES {
        group.throughput(Throughput::Bytes(size as u64));
        let mut buf = vec![0x5A; size];
        group.bench_with_input(BenchmarkId::from_parameter(size), &size, |b, _| {
            b.iter(|| apply_mask(black_box(&mut buf), [1, 2, 3, 4]));
        });
    }
    group.finish();
}

fn verify(c: &mut Criterion) {
    let mut group = c.benchmark_group("verify");
    for size in SIZES {
        group.throughput(Throughput::Bytes(size as u64));
        let mut payload = Payload::new(3, size);
        let echo = payload.stamp(1, 1).to_vec();
        group.bench_with_input(BenchmarkId::new("closed_loop", size), &size, |b, _| {
            b.iter(|| black_box(payload.verify(black_box(&echo)).is_ok()));
        });
        if size >= 16 {
            group.bench_with_input(BenchmarkId::new("open_loop", size), &size, |b, _| {
                b.iter(|| black_box(payload.verify_timed(black_box(&echo), 1).is_ok()));
            });
        }
    }
    group.finish();
}

// The macro defines an undocumented `pub fn benches`.
#[allow(missing_docs)]
mod group {
    use super::{deflate, mask, message_cycle, verify};
    criterion::criterion_group!(benches, message_cycle, deflate, mask, verify);
}
use group::benches;
criterion_main!(benches);
