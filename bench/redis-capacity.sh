#!/usr/bin/env bash
# How far one Redis carries the Redis engine (issue 11):
#  1. redis-benchmark runs the publish script (server/src/cluster/publish.lua,
#     the step every publish takes) with 0 and 2 subscribers on its channel
#     (an instance subscribes once per room), one request at a time per
#     client and pipelined 16 deep, 3 runs each: publishes/s of one Redis at
#     100% of a core, and INFO commandstats' time per call.
#  2. The whole stack at rising rates: two instances sharing that Redis,
#     4 publishers on A and 1 member on B (5 receivers), 64 B binary;
#     Redis and both instances on core 0 (as bench/cluster.sh), the
#     generator on core 1. Each process's CPU (from /proc) at each rate,
#     Redis's per publish, and where the stack stops keeping up. (With the
#     instances on the generator's core instead, a publisher's session
#     waits for the core after each Redis reply, and latency climbs at
#     half the rate.)
#  3. Memory per room: INFO memory before and after ROOMS rooms (after 16
#     rooms that take the one-time costs) get 100
#     publishes of 64 B each through an instance (bench/examples/fill_rooms.rs),
#     first with their member gone (history only), then with it still joined;
#     MEMORY USAGE of one room's keys. The memory engine's server RSS per
#     room the same way, for comparison.
#
#   bench/redis-capacity.sh [OUT]       # target/bench/redis-DATE
#
# BIN (default target/release) must hold duplex, duplex-bench and
# examples/fill_rooms (cargo build --release -p duplex-server -p duplex-bench
# --example fill_rooms). ROOMS (1000), RATES ("500 1000 1500 2000 2500", per
# publisher). About 8 minutes.
set -euo pipefail
cd "$(dirname "$0")/.."
bin="${BIN:-target/release}"
out="${1:-target/bench/redis-$(date -u +%Y%m%d-%H%M%S)}"
rooms="${ROOMS:-1000}"
rates="${RATES:-500 1000 1500 2000 2500}"
export RATES="$rates"
mkdir -p "$out"
ulimit -n 20000
# shellcheck source=bench/lib.sh
. bench/lib.sh
machine_mark start

echo "== 1. redis-benchmark on publish.lua" >&2
start_redis 0 "$out/redis-1.log"
sha=$(redis-cli -p "$redis_port" script load "$(cat server/src/cluster/publish.lua)")
# A post of the size an instance stores for a 64 B publish by a member
# named "fill" (kind 1 B, sender id 8, name length 2, name 4, payload 64:
# 79 B), in printable bytes.
post="b0000000704fill$(printf 'x%.0s' $(seq 64))"
room='{cap}'
publish=(evalsha "$sha" 3 "duplex:$room:meta" "duplex:$room:log" "duplex:$room:members"
         0123456789abcdef 100 300000 "duplex:$room" "$post" 0)
{
    echo "subscribers,pipeline,requests_per_sec,usec_per_call"
    for subscribers in 0 2; do
        subs=()
        for _ in $(seq "$subscribers"); do
            taskset -c 1 redis-cli -p "$redis_port" subscribe "duplex:$room" >/dev/null &
            subs+=("$!")
        done
        sleep 0.5
        for pipeline in 1 16 1 16 1 16; do
            redis-cli -p "$redis_port" config resetstat >/dev/null
            rps=$(taskset -c 1 redis-benchmark -p "$redis_port" -c 50 -n 200000 -P "$pipeline" \
                --csv "${publish[@]}" | tail -n1 | cut -d, -f2 | tr -d '"')
            usec=$(redis-cli -p "$redis_port" info commandstats \
                | sed -n 's/^cmdstat_evalsha:.*usec_per_call=\([0-9.]*\).*/\1/p')
            echo "$subscribers,$pipeline,$rps,$usec"
        done
        for s in "${subs[@]}"; do stop "$s"; done
    done
} | tee "$out/benchmark.csv" >&2
stop "$redis_pid"

echo "== 2. the stack at rising rates" >&2
start_redis 0 "$out/redis-2.log"
common=(--workers 1 --presence-limit 100 --max-connections 30000 --redis "redis://127.0.0.1:$redis_port")
start_duplex 0 "$bin/duplex" "$out/a.log" "${common[@]}"
a_port=$port a_pid=$pid
start_duplex 0 "$bin/duplex" "$out/b.log" "${common[@]}"
b_port=$port b_pid=$pid
for rate in $rates; do
    echo "  4 publishers × $rate/s" >&2
    taskset -c 1 "$bin/duplex-bench" fanout --url "ws://127.0.0.1:$a_port/ws" \
        --member-url "ws://127.0.0.1:$b_port/ws" --members 1 --publishers 4 --rate "$rate" \
        --duration 5s --warmup 1s --room "ramp-$rate" --server-pid "$a_pid" \
        --cpu-pid "$redis_pid" --cpu-pid "$b_pid" --json \
        >"$out/ramp-$rate.json" 2>"$out/ramp-$rate.err" || echo "  exit status $?" >&2
    sleep 2
done
stop "$a_pid"; stop "$b_pid"; stop "$redis_pid"

echo "== 3. memory per room, $rooms rooms × 100 × 64 B" >&2
used() { redis-cli -p "$redis_port" info memory | sed -n "s/^$1:\([0-9]*\).*/\1/p"; }
fill() { taskset -c 1 "$bin/examples/fill_rooms" "ws://127.0.0.1:$port/ws" "$rooms" "$@"; }
start_redis 0 "$out/redis-3.log"
start_duplex 0 "$bin/duplex" "$out/fill.log" --workers 1 --redis "redis://127.0.0.1:$redis_port"
# A first few rooms load the scripts and grow the connection's buffers:
# one-time costs, not per room.
fill_rooms_warm() { taskset -c 1 "$bin/examples/fill_rooms" "ws://127.0.0.1:$port/ws" 16 --prefix warm >/dev/null; }
fill_rooms_warm
{
    echo "what,used_memory,used_memory_rss"
    echo "empty,$(used used_memory),$(used used_memory_rss)"
    fill --prefix left >/dev/null
    echo "history_only,$(used used_memory),$(used used_memory_rss)"
    # The member stays joined until fill is stopped.
    taskset -c 1 "$bin/examples/fill_rooms" "ws://127.0.0.1:$port/ws" "$rooms" --prefix stay \
        --stay >"$out/stay.out" &
    stay_pid=$!
    until grep -q filled "$out/stay.out" 2>/dev/null; do sleep 0.5; done
    echo "with_member,$(used used_memory),$(used used_memory_rss)"
    for key in meta log members; do
        echo "key_$key,$(redis-cli -p "$redis_port" memory usage "duplex:{stay-0}:$key" samples 0),"
    done
    stop "$stay_pid"
} | tee "$out/memory.csv" >&2
sleep 1
stop "$pid"
stop "$redis_pid"
start_duplex 0 "$bin/duplex" "$out/fill-memory.log" --workers 1
fill_rooms_warm
rss() { sed -n 's/^VmRSS:[[:space:]]*\([0-9]*\).*/\1/p' "/proc/$pid/status"; }
{
    echo "what,rss_kib"
    echo "empty,$(rss)"
    fill --prefix left >/dev/null
    echo "history_only,$(rss)"
} | tee "$out/memory-engine.csv" >&2
stop "$pid"
machine_mark end

python3 - "$out" "$rooms" <<'EOF'
import csv, json, os, sys, statistics
out, rooms = sys.argv[1], int(sys.argv[2])
print("| publish.lua, redis-benchmark -c 50, median of 3 | subscribers | pipeline | publishes/s | µs per call (Redis's own count) |")
print("|---|---:|---:|---:|---:|")
bench = {}
for row in csv.DictReader(open(os.path.join(out, "benchmark.csv"))):
    bench.setdefault((row["subscribers"], row["pipeline"]), []).append(row)
for (subs, pipe), rows in bench.items():
    rps = [float(r["requests_per_sec"]) for r in rows]
    usec = [float(r["usec_per_call"]) for r in rows]
    print(f"| | {subs} | {pipe} | {statistics.median(rps):,.0f} ({min(rps):,.0f}–{max(rps):,.0f})"
          f" | {statistics.median(usec):.1f} |")
print()
print("| 4 publishers × rate, 1 member on B | publishes/s asked | published/s | delivered/expected | p50 | p99 | Redis CPU | Redis µs/publish | A CPU | B CPU |")
print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
for rate in os.environ["RATES"].split():
    path = os.path.join(out, f"ramp-{rate}.json")
    if not os.path.exists(path) or not os.path.getsize(path):
        print(f"| {rate}/s each | {4 * int(rate):,} | (no result) | | | | | | | |")
        continue
    r = json.load(open(path))
    redis, b = r["cpu_pids"][0], r["cpu_pids"][1]
    pct = lambda x: f"{x:.0f}%" if x is not None else "–"
    print(f"| {rate}/s each | {r['publish_rate']:,.0f} | {r['published'] / r['window_secs']:,.0f}"
          f" | {r['delivered'] / max(r['expected'], 1):.4f} | {r['latency_ms'][0]:.1f} ms | {r['latency_ms'][2]:.1f} ms"
          f" | {pct(redis['percent'])} | {redis['us_per_publish']:.1f} | {pct(r['server_cpu_percent'])} | {pct(b['percent'])} |")
print()
m = {row["what"]: row for row in csv.DictReader(open(os.path.join(out, "memory.csv")))}
per = lambda a, b, k: (int(m[b][k]) - int(m[a][k])) / rooms
print(f"| Redis memory per room ({rooms:,} rooms × 100 × 64 B) | used_memory | used_memory_rss |")
print("|---|---:|---:|")
print(f"| history only (member left) | {per('empty', 'history_only', 'used_memory'):,.0f} B | {per('empty', 'history_only', 'used_memory_rss'):,.0f} B |")
print(f"| history and one member joined | {per('history_only', 'with_member', 'used_memory'):,.0f} B | {per('history_only', 'with_member', 'used_memory_rss'):,.0f} B |")
print("\nMEMORY USAGE of one room's keys: " + ", ".join(f"{k[4:]} {m[k]['used_memory']} B" for k in m if k.startswith("key_")))
e = {row["what"]: int(row["rss_kib"]) for row in csv.DictReader(open(os.path.join(out, "memory-engine.csv")))}
print(f"\nMemory engine, server RSS per room (history only): {(e['history_only'] - e['empty']) * 1024 / rooms:,.0f} B")
EOF
