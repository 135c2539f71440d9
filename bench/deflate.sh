#!/usr/bin/env bash
# permessage-deflate against none (issue 12): echo of chat JSON at 100 B,
# 1 KiB and 16 KiB, closed loop (messages per second) and open loop at
# 2,000 msg/s (the server's CPU per message at one load for all: per message
# it falls as load rises and wakes are shared), and a 1,000-member room
# fan-out of 1 KiB chat JSON, each with and without deflate, interleaved
# over ROUNDS rounds.
# Two Duplex servers (--deflate on, --deflate off) pinned to core 0 with
# one worker, the generator pinned to core 1; the server's CPU time is read
# from /proc/PID/stat at the start and end of each measurement window.
#
#   bench/deflate.sh [ROUNDS] [OUT]      # default 3 rounds, target/bench/deflate-DATE
#
# Needs the release binaries (cargo build --release -p duplex-server
# -p duplex-bench); BIN overrides their directory, DURATION the 5 s window. Prints the medians as a
# markdown table; every run's JSON stays in OUT. About 6 minutes.
set -euo pipefail
cd "$(dirname "$0")/.."
bin="${BIN:-target/release}"
rounds="${1:-3}"
out="${2:-target/bench/deflate-$(date -u +%Y%m%d-%H%M%S)}"
mkdir -p "$out"

duration="${DURATION:-5s}"
free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
declare -A port=([on]="$(free_port)" [off]="$(free_port)") pid=()
trap 'for p in "${pid[@]}"; do kill "$p" 2>/dev/null || true; done' EXIT
for mode in on off; do
    taskset -c 0 "$bin/duplex" --listen "127.0.0.1:${port[$mode]}" --workers 1 \
        --deflate "$mode" --presence-limit 100 --max-connections 5000 \
        >"$out/server-$mode.log" 2>&1 &
    pid[$mode]=$!
done
sleep 1
flag() { [ "$1" = on ] && echo --deflate || true; }

echo "load average at start: $(cut -d' ' -f1-3 /proc/loadavg)" | tee "$out/load"
head -n1 /proc/stat >"$out/stat-start"
for round in $(seq 1 "$rounds"); do
    # Alternate which goes first, so drift lands on both.
    order="on off"; [ $((round % 2)) -eq 0 ] && order="off on"
    for size in 100 1KiB 16KiB; do
        for mode in $order; do
            echo "round $round: echo $size deflate $mode" >&2
            # shellcheck disable=SC2046
            taskset -c 1 "$bin/duplex-bench" echo --url "ws://127.0.0.1:${port[$mode]}/" \
                --connections 100 --size "$size" --payload json $(flag "$mode") \
                --duration "$duration" --warmup 1s --server-pid "${pid[$mode]}" --json \
                >"$out/echo-$size-$mode-$round.json" || echo "  exit status $?" >&2
            # shellcheck disable=SC2046
            taskset -c 1 "$bin/duplex-bench" echo --url "ws://127.0.0.1:${port[$mode]}/" \
                --connections 100 --size "$size" --payload json $(flag "$mode") --rate 2000 \
                --duration "$duration" --warmup 1s --server-pid "${pid[$mode]}" --json \
                >"$out/rate-$size-$mode-$round.json" || echo "  exit status $?" >&2
        done
    done
    for mode in $order; do
        echo "round $round: fan-out deflate $mode" >&2
        # shellcheck disable=SC2046
        taskset -c 1 "$bin/duplex-bench" fanout --url "ws://127.0.0.1:${port[$mode]}/ws" \
            --members 1000 --publishers 1 --rate 20 --size 1KiB --payload json $(flag "$mode") \
            --duration "$duration" --warmup 2s --room "r$round" --server-pid "${pid[$mode]}" \
            --json >"$out/fanout-$mode-$round.json" || echo "  exit status $?" >&2
    done
done
echo "load average at end: $(cut -d' ' -f1-3 /proc/loadavg)" | tee -a "$out/load"
head -n1 /proc/stat >"$out/stat-end"

python3 - "$out" <<'EOF'
import json, statistics, sys, glob, os
out = sys.argv[1]
def load(pattern):
    return [json.load(open(f)) for f in sorted(glob.glob(os.path.join(out, pattern)))]
med = lambda xs: statistics.median(xs)
# How busy both cores were over the whole batch (ours and anything else).
ticks = [list(map(int, open(os.path.join(out, f)).read().split()[1:])) for f in ("stat-start", "stat-end")]
delta = [b - a for a, b in zip(*ticks)]
idle = delta[3] + delta[4]
print(f"both cores {100 * (1 - idle / sum(delta)):.0f}% busy over the batch (server and generator included)\n")
print("| echo, 100 connections | deflate | msg/s | bytes/msg sent | bytes/msg received | server µs/msg | server CPU | generator CPU | server µs/msg at 2,000/s | p50 at 2,000/s |")
print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|")
for size in ["100", "1KiB", "16KiB"]:
    for mode in ["off", "on"]:
        runs = load(f"echo-{size}-{mode}-*.json")
        if not runs:
            continue
        rate = load(f"rate-{size}-{mode}-*.json")
        errors = sum(sum(r["errors"].values()) for r in runs + rate)
        print(f"| {size} JSON | {mode} | {med([r['messages_per_sec'] for r in runs]) / 1e3:.1f}k"
              f" | {med([r['wire']['sent_per_message'] for r in runs]):.0f}"
              f" | {med([r['wire']['received_per_message'] for r in runs]):.0f}"
              f" | {med([r['cpu']['server_us_per_message'] for r in runs]):.2f}"
              f" | {med([r['cpu']['server_percent'] for r in runs]):.0f}%"
              f" | {med([r['cpu']['generator_percent'] for r in runs]):.0f}%"
              f" | {med([r['cpu']['server_us_per_message'] for r in rate]):.2f}"
              f" | {med([r['latency_us']['p50'] for r in rate]):.0f} µs"
              + (f" ({errors} errors)" if errors else "") + " |")
print()
print("| fan-out, 1,001 receivers, 20 publishes/s | deflate | deliveries/s | p50 | p99 | bytes/publish sent | bytes/delivery received | server µs/delivery | server CPU | lost |")
print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|")
for mode in ["off", "on"]:
    runs = load(f"fanout-{mode}-*.json")
    if not runs:
        continue
    print(f"| 1KiB JSON | {mode} | {med([r['delivered_per_sec'] for r in runs]):.0f}"
          f" | {med([r['latency_ms'][0] for r in runs]):.1f} ms"
          f" | {med([r['latency_ms'][2] for r in runs]):.1f} ms"
          f" | {med([r['wire']['sent_per_message'] for r in runs]):.0f}"
          f" | {med([r['wire']['received_per_message'] for r in runs]):.0f}"
          f" | {med([r['server_us_per_delivery'] for r in runs]):.2f}"
          f" | {med([r['server_cpu_percent'] for r in runs]):.0f}%"
          f" | {sum(r['lost'] for r in runs)} |")
EOF
