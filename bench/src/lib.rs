//! duplex-bench: a WebSocket load generator and the report of a comparison
//! between servers.
//!
//! - [`echo`]: closed-loop or open-loop echo load over N connections, every
//!   echo checked byte for byte ([`payload`]); latency in HDR histograms
//!   ([`stats`]).
//! - [`fanout`]: rooms on Duplex's `/ws`: members × publishers × rate,
//!   delivery latency from the scheduled publish time to each member;
//!   joins and deliveries of protocol 1 and 2 ([`rooms`]).
//! - [`hold`]: N idle connections, and the server's memory per connection
//!   ([`procfs`]); with `--join`, idle members of rooms ([`rooms`]).
//! - [`soak`]: thousands of connections held for minutes under echo and
//!   fan-out load, the server's RSS and descriptors sampled into a CSV and
//!   a plot, and a verdict (no errors, memory flat, descriptors constant).
//! - [`report`]: the comparison table (medians, ratios) and chart from the
//!   [`record`]s of many runs.
//!
//! The generator runs on one thread (a current-thread runtime): connection
//! tasks share counters without atomics, and the whole generator can be
//! pinned to one core, apart from the server's. Its client ([`ws`]) reuses
//! one read and one write buffer per connection.

pub mod connect;
pub mod echo;
pub mod error;
pub mod fanout;
pub mod hold;
pub mod output;
pub mod payload;
pub mod procfs;
pub mod record;
pub mod report;
pub mod rooms;
pub mod soak;
pub mod stats;
pub mod target;
pub mod ws;

/// Name and version, stored in every result.
pub const TOOL: &str = concat!("duplex-bench ", env!("CARGO_PKG_VERSION"));

/// Runs `future` on a current-thread runtime: the generator's one thread.
///
/// # Errors
/// The runtime cannot be built (out of file descriptors or memory).
pub fn block_on<F: std::future::Future>(future: F) -> std::io::Result<F::Output> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    Ok(runtime.block_on(future))
}
