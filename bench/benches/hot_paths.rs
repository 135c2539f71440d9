//! Criterion benchmarks of the generator's per-message work: stamping a
//! message, encoding and masking it into a frame, parsing the echo's header
//! and verifying its bytes. Together they bound how many messages per second
//! one generator core can drive, apart from the system calls.
//!
//! Run with `cargo bench -p duplex-bench`.

use criterion::{BenchmarkId, Criterion, Throughput, criterion_main};
use duplex_bench::payload::Payload;
use duplex_bench::ws::frame::{OpCode, apply_mask, encode_frame, parse_header};
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
        encode_frame(&mut echo, OpCode::Binary, payload.bytes(), [0; 4]);
        echo[1] &= 0x7F; // a server frame: no mask bit
        echo.drain(echo.len() - size - 4..echo.len() - size); // no key
        let mut seq = 0_u64;
        group.bench_with_input(BenchmarkId::from_parameter(size), &size, |b, _| {
            b.iter(|| {
                seq += 1;
                out.clear();
                let message = payload.stamp(0, 0);
                encode_frame(
                    &mut out,
                    OpCode::Binary,
                    message,
                    (seq as u32).to_ne_bytes(),
                );
                let header = parse_header(black_box(&echo)).ok().flatten();
                let start = header.map_or(0, |h| h.header_len);
                black_box(payload.verify(&echo[start..]).is_ok())
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
    use super::{mask, message_cycle, verify};
    criterion::criterion_group!(benches, message_cycle, mask, verify);
}
use group::benches;
criterion_main!(benches);
