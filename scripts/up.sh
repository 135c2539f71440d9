#!/usr/bin/env bash
# Brings Duplex up: builds and runs the release server on 127.0.0.1:8080
# (override with --listen or DUPLEX_LISTEN). Extra arguments go to duplex.
source "$(dirname "$0")/lib.sh"
cd "$ROOT"
cargo build --release --locked -p duplex-server
exec "$ROOT/target/release/duplex" "$@"
