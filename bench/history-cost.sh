#!/usr/bin/env bash
# The memory engine's cost (issue 11): the server before room history
# against the one with it, on one instance, interleaved over ROUNDS rounds:
#  - fan-out to a 10,000-member room, 64 B binary publishes twice a second
#    (the write path section's choice on this machine): p50/p99 delivery
#    latency, deliveries/s, the server's CPU per delivery;
#  - idle memory per room member: 10,000 connections that each joined a
#    room and went idle (all in one room, then a room each), the server's
#    RSS growth per connection after the keepalive tick freed the read
#    buffers (--ping-interval 1s, --settle 3s).
# Every run gets a fresh server pinned to core 0 with one worker; the
# generator is pinned to core 1. One generator binary drives both servers:
# it speaks protocol 1 to a server whose welcome says 1.
#
#   BASE=/path/to/old/release bench/history-cost.sh [ROUNDS] [OUT]
#
# BASE: the directory of the old `duplex` (e.g. a0593a3 built in its own
# worktree); BIN: the new `duplex` and `duplex-bench` (target/release).
# PARTS ("fanout hold") picks what runs; HOLDS ("1 10000") the idle kinds:
# N rooms for the 10,000 members, 0 for connections on /ws that join none.
# Default 5 rounds (about 2 minutes each), OUT target/bench/history-DATE.
# Prints the medians as markdown tables; every run's JSON stays in OUT.
set -euo pipefail
cd "$(dirname "$0")/.."
bin="${BIN:-target/release}"
base="${BASE:?BASE=directory of the old duplex binary}"
rounds="${1:-5}"
out="${2:-target/bench/history-$(date -u +%Y%m%d-%H%M%S)}"
mkdir -p "$out"
ulimit -n 20000

# shellcheck source=bench/lib.sh
. bench/lib.sh
declare -A server=([base]="$base/duplex" [new]="$bin/duplex")
bench="$bin/duplex-bench"

machine_mark start
for round in $(seq 1 "$rounds"); do
    # Alternate which goes first, so drift lands on both.
    order="base new"; [ $((round % 2)) -eq 0 ] && order="new base"
    for name in $order; do
        [[ " ${PARTS:-fanout hold} " == *" fanout "* ]] || continue
        echo "round $round: $name fan-out" >&2
        start_duplex 0 "${server[$name]}" "$out/server-fanout-$name-$round.log" --workers 1 \
            --presence-limit 100 --max-connections 20000
        taskset -c 1 "$bench" fanout --url "ws://127.0.0.1:$port/ws" --members 10000 \
            --publishers 1 --rate 2 --duration 10s --warmup 2s --server-pid "$pid" --json \
            >"$out/fanout-$name-$round.json" 2>"$out/fanout-$name-$round.err" \
            || echo "  exit status $?" >&2
        stop "$pid"
    done
    [[ " ${PARTS:-fanout hold} " == *" hold "* ]] || continue
    for rooms in ${HOLDS:-1 10000}; do
        join=(--join bench --rooms "$rooms"); [ "$rooms" = 0 ] && join=()
        for name in $order; do
            echo "round $round: $name hold, 10,000 members of $rooms room(s)" >&2
            start_duplex 0 "${server[$name]}" "$out/server-hold$rooms-$name-$round.log" \
                --workers 1 --presence-limit 100 --max-connections 30000 --ping-interval 1s
            taskset -c 1 "$bench" hold --url "ws://127.0.0.1:$port/ws" --connections 10000 \
                "${join[@]}" --duration 2s --settle 3s --server-pid "$pid" \
                --json >"$out/hold$rooms-$name-$round.json" 2>/dev/null \
                || echo "  exit status $?" >&2
            stop "$pid"
        done
    done
done
machine_mark end

python3 - "$out" <<'EOF'
import json, statistics, sys, glob, os
out = sys.argv[1]
def load(pattern):
    return [json.load(open(f)) for f in sorted(glob.glob(os.path.join(out, pattern)))]
med = statistics.median
ticks = [list(map(int, open(os.path.join(out, f)).read().split()[1:])) for f in ("stat-start", "stat-end")]
delta = [b - a for a, b in zip(*ticks)]
print(f"both cores {100 * (1 - (delta[3] + delta[4]) / sum(delta)):.0f}% busy over the batch (ours included)\n")
rows = {name: load(f"fanout-{name}-*.json") for name in ("base", "new")}
print("| fan-out, 10,001 receivers, 2 publishes/s, 64 B | runs | deliveries/s | p50 | p99 | server µs/delivery | lost |")
print("|---|---:|---:|---:|---:|---:|---:|")
for name, runs in rows.items():
    if runs:
        print(f"| {name} | {len(runs)} | {med([r['delivered_per_sec'] for r in runs]):,.0f}"
              f" | {med([r['latency_ms'][0] for r in runs]):.1f} ms"
              f" | {med([r['latency_ms'][2] for r in runs]):.1f} ms"
              f" | {med([r['server_us_per_delivery'] for r in runs]):.2f}"
              f" | {sum(r['lost'] for r in runs)} |")
# Ratios paired round by round (new ÷ base), then their median.
def paired(key):
    pairs = {}
    for name in ("base", "new"):
        for f in glob.glob(os.path.join(out, f"fanout-{name}-*.json")):
            rnd = f.rsplit("-", 1)[1].split(".")[0]
            pairs.setdefault(rnd, {})[name] = key(json.load(open(f)))
    return [p["new"] / p["base"] for p in pairs.values() if len(p) == 2 and p["base"]]
for label, key in (("p50", lambda r: r["latency_ms"][0]), ("p99", lambda r: r["latency_ms"][2]),
                   ("server µs/delivery", lambda r: r["server_us_per_delivery"])):
    ratios = paired(key)
    if ratios:
        print(f"\nnew ÷ base {label}, per round: " + ", ".join(f"{x:.2f}" for x in sorted(ratios))
              + f" (median {med(ratios):.2f})", end="")
print("\n")
print("| idle members, 10,000 connections | runs | base KiB/conn | new KiB/conn | new − base (median of pairs) |")
print("|---|---:|---:|---:|---:|")
for rooms, label in ((0, "on /ws, no room"), (1, "all in one room"), (10000, "a room each")):
    per = {}
    for name in ("base", "new"):
        for f in glob.glob(os.path.join(out, f"hold{rooms}-{name}-*.json")):
            r = json.load(open(f))
            if r.get("memory") and not r["errors"]:
                rnd = f.rsplit("-", 1)[1].split(".")[0]
                per.setdefault(rnd, {})[name] = r["memory"]["per_connection_kib"]
    b = [p["base"] for p in per.values() if "base" in p]
    n = [p["new"] for p in per.values() if "new" in p]
    d = [p["new"] - p["base"] for p in per.values() if len(p) == 2]
    if b and n:
        print(f"| {label} | {len(d)} | {med(b):.2f} ({min(b):.2f}–{max(b):.2f})"
              f" | {med(n):.2f} ({min(n):.2f}–{max(n):.2f})"
              f" | {med(d):+.2f} ({min(d):+.2f} to {max(d):+.2f}) |")
EOF
