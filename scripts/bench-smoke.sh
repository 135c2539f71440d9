#!/usr/bin/env bash
# Smoke test of the load generator against the real server (DUPLEX_BUILD), so the
# benchmark tool keeps working: a few hundred closed-loop echoes, a short
# open-loop run, a short idle hold, a short fan-out on rooms, and chat JSON
# with and without permessage-deflate, each bounded in time. Fails if any
# echo differs from what was sent or any connection fails (duplex-bench
# exits 2 then). A few seconds once built.
source "$(dirname "$0")/lib.sh"
cd "$ROOT"

build_binaries
bench="$BIN_DIR/duplex-bench"

log="$(mktemp)"
trap 'stop_server; rm -f "$log"' EXIT
start_server "$log" --deflate on
url="ws://$SERVER_ADDR"

say "bench smoke: closed loop, 500 echoes of 1 KiB over 10 connections"
timeout 30 "$bench" echo --url "$url/" --connections 10 --messages 500 --size 1KiB \
    --timeout 5s --no-progress

say "bench smoke: open loop, 400 msg/s for 1 s over 4 connections on /echo"
timeout 30 "$bench" echo --url "$url/echo" --connections 4 --duration 1s --rate 400 \
    --size 64 --timeout 5s --no-progress

say "bench smoke: hold 100 idle connections, server memory from /proc"
timeout 30 "$bench" hold --url "$url/" --connections 100 --duration 500ms --settle 200ms \
    --server-pid "$SERVER_PID" --no-progress

say "bench smoke: fan-out on /ws, 100 members, 2 publishers at 10/s for 1 s"
timeout 30 "$bench" fanout --url "$url/ws" --members 100 --publishers 2 --rate 10 \
    --duration 1s --warmup 200ms --drain 2s

say "bench smoke: permessage-deflate, 200 echoes of 1 KiB chat JSON with and without --deflate"
received_per_message() { sed -n 's/.*"received_per_message":\([0-9.]*\).*/\1/p'; }
plain="$(timeout 30 "$bench" echo --url "$url/" --connections 4 --messages 200 --size 1KiB \
    --payload json --timeout 5s --json | received_per_message)"
deflated="$(timeout 30 "$bench" echo --url "$url/" --connections 4 --messages 200 --size 1KiB \
    --payload json --deflate --timeout 5s --json | received_per_message)"
say "  bytes received per echo: $plain without deflate, $deflated with"
awk -v plain="$plain" -v deflated="$deflated" \
    'BEGIN { exit !(plain > 1024 && deflated > 0 && deflated < 0.85 * plain) }' \
    || die "deflate did not shrink 1 KiB chat JSON on the wire ($plain -> $deflated bytes)"

say "bench smoke: fan-out of 1 KiB chat JSON with --deflate, 50 members at 10/s for 1 s"
timeout 30 "$bench" fanout --url "$url/ws" --members 50 --publishers 1 --rate 10 \
    --size 1KiB --payload json --deflate --duration 1s --warmup 200ms --drain 2s

stop_server
say "bench smoke passed"
