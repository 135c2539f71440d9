//! Fills N rooms with a full history, through a Duplex server: for the
//! memory a room's history costs its store (Redis's `INFO memory` before
//! and after, `bench/redis-capacity.sh`; docs/bench.md, "History and the
//! Redis engine").
//!
//! Rooms `PREFIX-0` … `PREFIX-(N-1)`; each gets MESSAGES binary publishes
//! of SIZE payload bytes (the server's `--history-size` is 100). A
//! connection joins up to 16 rooms (the server's default
//! `--max-rooms-per-client`), publishes into each and reads its own
//! deliveries back, so every publish has been stored when it moves on.
//! Then it leaves them (the history stays for `--history-ttl`), or with
//! `--stay` keeps them joined until it is killed. It prints `filled` on
//! stdout when every room is full.
//!
//!     cargo run --release -p duplex-bench --example fill_rooms -- \
//!         ws://127.0.0.1:PORT/ws 1000 [--messages 100] [--size 64] [--prefix fill] [--stay]

use anyhow::{Context, bail};
use duplex_bench::rooms;
use duplex_bench::target::Target;
use duplex_bench::ws::Client;
use duplex_protocol::frame::OpCode;

/// Rooms per connection: the server's default `--max-rooms-per-client`.
const ROOMS_PER_CONNECTION: usize = 16;

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let url: Target = args.next().context("usage: URL ROOMS [options]")?.parse()?;
    let count: usize = args.next().context("usage: URL ROOMS")?.parse()?;
    let (mut messages, mut size, mut prefix, mut stay) =
        (100usize, 64usize, "fill".to_owned(), false);
    while let Some(arg) = args.next() {
        let mut value = || args.next().with_context(|| format!("{arg} needs a value"));
        match arg.as_str() {
            "--messages" => messages = value()?.parse()?,
            "--size" => size = value()?.parse()?,
            "--prefix" => prefix = value()?,
            "--stay" => stay = true,
            other => bail!("unknown option {other}"),
        }
    }
    duplex_bench::block_on(fill(url, count, messages, size, prefix, stay))?
}

async fn fill(
    url: Target,
    count: usize,
    messages: usize,
    size: usize,
    prefix: String,
    stay: bool,
) -> anyhow::Result<()> {
    let addr = url.resolve().await?;
    let mut held = Vec::new();
    let payload = vec![0x5a; size];
    for first in (0..count).step_by(ROOMS_PER_CONNECTION) {
        let mut client = Client::connect(addr, &url, first as u64, size + 256, None).await?;
        let rooms: Vec<String> = (first..count.min(first + ROOMS_PER_CONNECTION))
            .map(|index| format!("{prefix}-{index}"))
            .collect();
        for room in &rooms {
            let version = rooms::join(&mut client, room, "fill").await?;
            let frame = rooms::encode_publish(version, room, &payload)?;
            for _ in 0..messages {
                client.send_binary(&frame).await?;
            }
            let mut delivered = 0;
            while delivered < messages {
                let message = client.recv().await?;
                if message.opcode == OpCode::Binary {
                    delivered += 1;
                }
            }
        }
        if !stay {
            for room in &rooms {
                let leave = serde_json::json!({ "type": "leave", "room": room });
                client.send_text(&leave.to_string()).await?;
            }
            let mut left = 0;
            while left < rooms.len() {
                let message = client.recv().await?;
                if client.payload(&message).starts_with(br#"{"type":"left""#) {
                    left += 1;
                }
            }
        }
        held.push(client);
        eprint!(
            "\rfilled {}/{count}",
            (first + ROOMS_PER_CONNECTION).min(count)
        );
    }
    eprintln!();
    println!("filled {count} rooms with {messages} messages of {size} B");
    if stay {
        // Joined until the caller kills us.
        std::future::pending::<()>().await;
    }
    drop(held);
    Ok(())
}
