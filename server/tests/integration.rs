//! The server's integration tests, one module per behaviour (each file's
//! header says what it pins down), built as one test binary.
//!
//! One binary, not one per file: each of ~40 binaries compiled the shared
//! helpers in `common/` again and linked the whole server again, about a
//! third of the test run's build on two cores. `cargo nextest` still runs
//! every test in a process of its own; under plain `cargo test` they share
//! one process, so a test must not change process-wide state another test
//! could see (the two that raise RLIMIT_NOFILE only ever raise it).
//! `autotests = false` in Cargo.toml: a new file here is a module to add
//! below, not a binary of its own.

mod common;

mod close_codes;
mod close_handshake;
mod cluster;
mod cluster_tls;
mod concurrency;
mod connection_limit;
mod deflate;
mod deflate_bombs;
mod echo;
mod fragmentation;
mod handshake_timeout;
mod http_routes;
mod idle_timeout;
mod large_frame_memory;
mod limits;
mod metrics;
mod origin;
mod per_ip;
mod ping_pong;
mod rate_limit;
mod readme_config;
mod redis_helper;
mod rooms_binary;
mod rooms_direct_writes;
mod rooms_errors;
mod rooms_fanout;
mod rooms_history;
mod rooms_joined_first;
mod rooms_kick_whole_frames;
mod rooms_order;
mod rooms_presence;
mod rooms_push_api;
mod rooms_push_cli;
mod rooms_slow_client;
mod shutdown;
mod startup;
mod tls;
mod tokens;
mod write_timeout;
