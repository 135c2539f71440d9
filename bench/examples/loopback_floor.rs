//! The loopback floor of a fan-out on this machine: the least time any
//! server could take to write one small message to each of N TCP sockets.
//!
//! One thread writes an 80-byte stamped message to each of N loopback
//! sockets in a tight loop: one non-blocking `send` per socket, no tasks,
//! no framing, no locks. Another thread reads them all and records each
//! message's latency. Ten rounds a second, like `duplex-bench fanout
//! --rate 10`. Compare its p99 with Duplex's at the same member count
//! (docs/bench.md, "Fan-out").
//!
//!     cargo run --release -p duplex-bench --example loopback_floor -- 9900
//!
//! Needs 2 × N file descriptors (it raises its own soft limit; with a hard
//! limit of 20,000 that is at most 9,968 sockets).

use std::time::{Duration, Instant};

use tokio::io::AsyncReadExt;
use tokio::net::{TcpListener, TcpStream};

/// Bytes per message; the first 16 are the send time in nanoseconds.
const MESSAGE: usize = 80;
const ROUNDS: usize = 50;

fn main() -> anyhow::Result<()> {
    let n: usize = match std::env::args().nth(1) {
        Some(arg) => arg.parse()?,
        None => 10_000,
    };
    let (soft, hard) = rlimit::getrlimit(rlimit::Resource::NOFILE)?;
    rlimit::setrlimit(rlimit::Resource::NOFILE, hard.max(soft), hard)?;
    // Both ends of every connection are in this process.
    let most = usize::try_from(hard.saturating_sub(64) / 2).unwrap_or(usize::MAX);
    anyhow::ensure!(
        n <= most,
        "{n} sockets need {} file descriptors; the hard limit allows {most} sockets",
        2 * n + 64
    );
    let epoch = Instant::now();
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    let address = listener.local_addr()?;
    listener.set_nonblocking(true)?;

    let reader = std::thread::spawn(move || -> anyhow::Result<Vec<u64>> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let local = tokio::task::LocalSet::new();
        local.block_on(&runtime, async move {
            let mut readers = Vec::with_capacity(n);
            for _ in 0..n {
                let mut socket = TcpStream::connect(address).await?;
                socket.set_nodelay(true)?;
                readers.push(tokio::task::spawn_local(async move {
                    let mut latencies = Vec::with_capacity(ROUNDS);
                    let mut buf = [0u8; 4 * MESSAGE];
                    let mut have = 0;
                    loop {
                        match socket.read(&mut buf[have..]).await {
                            Ok(0) | Err(_) => return latencies,
                            Ok(read) => have += read,
                        }
                        let now = epoch.elapsed().as_nanos();
                        let whole = have / MESSAGE * MESSAGE;
                        for message in buf[..whole].chunks_exact(MESSAGE) {
                            let mut sent = [0u8; 16];
                            sent.copy_from_slice(&message[..16]);
                            let sent = u128::from_le_bytes(sent);
                            latencies.push(u64::try_from(now - sent).unwrap_or(u64::MAX));
                        }
                        buf.copy_within(whole..have, 0);
                        have -= whole;
                    }
                }));
            }
            let mut all = Vec::with_capacity(n * ROUNDS);
            for reader in readers {
                all.extend(reader.await?);
            }
            Ok(all)
        })
    });

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let loops = runtime.block_on(async move {
        let listener = TcpListener::from_std(listener)?;
        let mut sockets = Vec::with_capacity(n);
        while sockets.len() < n {
            let (socket, _) = listener.accept().await?;
            socket.set_nodelay(true)?;
            sockets.push(socket);
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
        let mut ticks = tokio::time::interval(Duration::from_millis(100));
        let mut loops = Vec::with_capacity(ROUNDS);
        for _ in 0..ROUNDS {
            ticks.tick().await;
            let start = Instant::now();
            let mut message = [7u8; MESSAGE];
            message[..16].copy_from_slice(&epoch.elapsed().as_nanos().to_le_bytes());
            for socket in &sockets {
                // A full socket is not expected at this rate; count it as
                // a message that never arrives (the reader's total shows it).
                let _ = socket.try_write(&message);
            }
            loops.push(start.elapsed());
        }
        loops.sort();
        anyhow::Ok(loops)
    })?;
    let mut latencies = reader
        .join()
        .map_err(|_| anyhow::anyhow!("the reader panicked"))??;
    latencies.sort_unstable();
    let ms = |q: f64| {
        let at = ((latencies.len() as f64 * q) as usize).min(latencies.len().saturating_sub(1));
        latencies.get(at).map_or(f64::NAN, |&ns| ns as f64 / 1e6)
    };
    let median = loops[loops.len() / 2];
    println!(
        "{n} sockets: one round of sends takes {:.1} ms (median of {ROUNDS}; {:.2} µs per send)",
        median.as_secs_f64() * 1e3,
        median.as_secs_f64() * 1e6 / n as f64
    );
    println!(
        "{} of {} messages read; latency p50 {:.1} ms, p90 {:.1}, p99 {:.1}, max {:.1}",
        latencies.len(),
        n * ROUNDS,
        ms(0.5),
        ms(0.9),
        ms(0.99),
        ms(1.0)
    );
    Ok(())
}
